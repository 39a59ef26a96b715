//! Telemetry off the hot path.
//!
//! mvx takes events off an application's hot path — `log(event)` from any thread or task,
//! millions of times a second — and delivers them to slow backends without blocking,
//! without allocating, and without losing track of a single event, under whatever executor
//! the application already uses: tokio, smol, `futures`, or a plain thread.
//!
//! ```
//! use mvx::BoxError;
//! use mvx::sink::{Dispatch, SinkConfig};
//!
//! // The user writes delivery; mvx owns the queue, the lifecycle and the executor.
//! struct Collector;
//!
//! impl Dispatch<String> for Collector {
//!     async fn dispatch(&mut self, line: String) -> Result<(), BoxError> {
//!         // send `line` to the backend
//!         # let _ = line;
//!         Ok(())
//!     }
//! }
//!
//! let (sink, terminator) = mvx::rt::thread::create(Collector, SinkConfig::default())?;
//! sink.log("started".to_string()).unwrap(); // never blocks, never allocates, thread-safe
//! terminator.terminate()?;                  // flushes, stops, joins; idempotent
//! assert_eq!(sink.stats().delivered, 1);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! Metrics work the same way: user-defined events, user-defined aggregation, snapshots on
//! demand, on a runtime thread mvx owns.
//!
//! ```
//! use mvx::metrics::{Metric, MetricEvent, MetricKind, MetricsRuntime, Snapshot};
//!
//! enum Save { Ok, Failed }
//! impl MetricEvent for Save {
//!     fn event_type(&self) -> &str { "save" }
//! }
//!
//! #[derive(Default)]
//! struct Saves { ok: u64, failed: u64 }
//! impl Metric<Save> for Saves {
//!     fn name(&self) -> &str { "saves" }
//!     fn handle_event(&mut self, event: &Save) -> bool {
//!         match event { Save::Ok => self.ok += 1, Save::Failed => self.failed += 1 }
//!         true
//!     }
//!     fn snapshot(&self) -> Snapshot {
//!         Snapshot::new("saves", MetricKind::Counter)
//!             .with("ok_total", self.ok)
//!             .with("failed_total", self.failed)
//!     }
//! }
//!
//! let runtime = MetricsRuntime::new()?;                      // owns one thread
//! let recorder = runtime.create_recorder::<Save>("storage")?;
//! recorder.register_metric(Saves::default())?;
//! recorder.register_event(Save::Ok).unwrap();                // no allocation
//! let snapshots = futures::executor::block_on(recorder.snapshot_now())?; // a barrier
//! assert_eq!(snapshots["saves"].get("ok_total"), Some(1u64.into()));
//! runtime.shutdown()?;                                       // idempotent
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # Map
//!
//! | layer | modules | what |
//! |---|---|---|
//! | core | [`lifecycle`], [`queue`], [`error`] | state machine, wait handles, exact pending-event accounting, errors with reason codes; no executor, no thread, no I/O |
//! | components | [`sink`], [`metrics`] | a handle (`Clone + Send + Sync`) plus a driver future; lock-free instruments |
//! | adapters | [`rt`] | run a driver on smol or on a dedicated thread; [`rt::Terminator`] |
//!
//! # Features
//!
//! | feature | default | pulls in | enables |
//! |---|---|---|---|
//! | `thread` | yes | nothing | [`rt::thread`]: a dedicated thread with mvx's own executor |
//! | `smol` | yes | `smol` | [`rt::smol`]: run on your smol executor or on one on a thread |
//!
//! # Choices this crate makes
//!
//! Where the design leaves a choice open, mvx does this:
//!
//! - **The ring.** A sink's queue is `concurrent-queue`'s bounded ring — the ring
//!   `async-channel` is built on — used directly. `async-channel`'s `try_send` pays two
//!   wake-up fences per event for its own receivers and streams, which mvx does not use:
//!   the driver has its own wake-up, which costs a producer one load while the driver is
//!   awake. The pending limit is enforced before the ring by a reservation word, so the
//!   ring is never full when pushed to.
//! - **Batching over latency, by microseconds.** The driver takes every queued event up to
//!   `batch_size` in one batch. When a batch was small (the ring nearly empty), it waits a
//!   few hundred CPU pause instructions before taking the next, and before parking it looks
//!   for work a little longer; producers blocked on a full queue likewise retry briefly before
//!   parking. An event may thus wait a microsecond or two longer to be dispatched, and in
//!   exchange producers and driver do not fight over the same ring slots event by event
//!   (see BENCHMARKS.md).
//! - **Acceptance while starting.** Events are accepted in `Starting` as well as `Running`
//!   and dispatched once the start hook succeeds; if it fails, they are counted as failed.
//! - **Panics.** A panic in `dispatch`, `dispatch_batch` or `flush` moves the sink to
//!   `Failure` (the transition `Stopping → Failure` exists for a panic during a stop); the
//!   dispatcher is not called again. A panic in a hook fails that operation.
//! - **Abandoned events** (stop timeout, panic, failed start, dropped driver) are counted
//!   as `failed`, so `accepted == delivered + failed + pending` holds on every path.
//! - **Dropping handles.** When the last `AsyncSink` handle is dropped, a running sink
//!   stops as if `stop()` were called; a `Virgin` one lets its driver finish.
//! - **Recorders are sinks.** A `MetricsRecorder` is an `AsyncSink` whose dispatcher applies
//!   each event to the registered metrics under a lock; `snapshots()` takes that lock and
//!   asks each metric for its snapshot, `snapshot_now()` is `flush()` followed by
//!   `snapshots()`. A metric that panics is disabled and reported; the recorder and its other
//!   metrics go on (unlike a sink's dispatcher, whose panic fails the sink). Metrics may
//!   have an `on_stopped` hook, whose errors a stop (and `MetricsRuntime::shutdown`) report.
//! - **Errors** keep their cause in `source()` rather than repeating it in the message;
//!   [`error::Report`] prints the chain on one line.
//! - **Panic strategy.** Catching panics needs `panic = "unwind"` (the default); under
//!   `panic = "abort"` a panic in user code aborts the process.
//! - **Checked with loom.** The core's concurrency — slot reservation against the limit, the
//!   driver's parking and wake-ups, lifecycle transitions and wait handles, the
//!   [`rt::Terminator`], and the waiter-count wake-up that blocked producers and flushes
//!   wait on — is model-checked with [loom](https://docs.rs/loom). Under `--cfg loom` the
//!   crate's private `sync` module swaps std's atomics, locks, threads and waker slot for
//!   loom's (the ring and the events switch with them), and the models in
//!   `tests/loom_*.rs` drive the real sink, driver and terminator through every
//!   interleaving within a small preemption bound, one to six per model. Run them with
//!   `RUSTFLAGS="--cfg loom" cargo test --profile loom --no-default-features --features
//!   thread --test 'loom_*'` (`smol` does not build under loom); `LOOM_MAX_PREEMPTIONS`
//!   raises the bound. The other tests are compiled out under that cfg.

#![warn(missing_docs, missing_debug_implementations, rust_2018_idioms)]
#![forbid(unsafe_code)]

pub mod error;
pub mod lifecycle;
pub mod metrics;
pub mod queue;
pub mod rt;
pub mod sink;
mod sync;

/// What the loom models (`tests/loom_*.rs`) drive besides the public API: the core's own
/// wake-up primitive, and a terminator whose runtime thread is a loom thread. Exists only
/// under `--cfg loom`.
#[cfg(loom)]
#[doc(hidden)]
pub mod __loom {
    pub use crate::sync::{Signal, Waiting};

    use crate::rt::{RuntimeThread, Terminator};
    use crate::sink::{AsyncSink, Driver};

    /// A terminator for `sink` whose runtime thread is a loom thread polling `driver` to
    /// completion: what `rt::thread::create` returns, without its executor, which loom
    /// cannot run. The driver returns once the sink has ended, so there is nothing to shut
    /// down; terminating stops the sink and joins the thread, as it does there.
    pub fn terminator<E: Send + 'static>(sink: &AsyncSink<E>, driver: Driver) -> Terminator {
        let runtime = RuntimeThread::spawn(
            "mvx-loom".into(),
            move || loom::future::block_on(driver),
            || {},
        )
        .expect("loom spawns threads");
        let stopper = sink.clone();
        Terminator::new(move || stopper.stop_and_wait(), runtime)
    }
}

pub use crate::error::{BoxError, ErrorReason};
pub use crate::lifecycle::{Op, OpResult, State, WaitHandle};
