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
//! Request statistics count what crawler-style applications need — requests started,
//! finished, failed and retried, their durations, status codes and error kinds — off the
//! hot path too, persisted so that a restarted process resumes its counts.
//!
//! ```
//! use mvx::stats::{MemoryStore, Statistics, StatsConfig};
//!
//! let store = MemoryStore::new(); // or FileStore (feature `persist`), RedisStore (`redis`)
//! let config = StatsConfig::default().persist_to(store.clone());
//! let (stats, driver) = Statistics::new(config.clone())?;
//! let driver = std::thread::spawn(move || futures::executor::block_on(driver));
//! stats.start().wait()?;                          // loads the persisted state, if any
//! stats.record_request_processing_start(1u64)?;   // no allocation for numeric ids
//! stats.register_status_code(200)?;
//! stats.record_request_processing_finish(1u64)?;
//! stats.stop().wait()?;                           // saves the final state
//! driver.join().unwrap();
//!
//! // A new process on the same store resumes the counts.
//! let (stats, driver) = Statistics::new(config)?;
//! let driver = std::thread::spawn(move || futures::executor::block_on(driver));
//! stats.start().wait()?;
//! assert_eq!(stats.calculate_blocking()?.requests_finished, 1); // a barrier
//! stats.stop().wait()?;
//! driver.join().unwrap();
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! Futures are instrumented in place, and everything in a registry is served to Prometheus
//! over HTTP, on a thread mvx owns or on the application's executor:
//!
//! ```
//! # #[cfg(feature = "http")]
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! use mvx::expose::http::{ServerConfig, ThreadedMetricsServer};
//! use mvx::instrument::InstrumentExt;
//! use mvx::metrics::{Metadata, Registry};
//!
//! let registry = Registry::new();
//! let seconds = Metadata::new().unit("s").description("time to look a key up");
//! let latency = registry.histogram_with("lookup.seconds", [0.01, 0.1, 1.0], seconds)?;
//! let failures = registry.counter("lookup.failures")?;
//! let found = futures::executor::block_on(
//!     async { Ok::<_, std::io::Error>(42) }.count_errors(&failures).timed(&latency),
//! )?;
//! assert_eq!((found, latency.count(), failures.get()), (42, 1, 0));
//!
//! // `http` feature: Prometheus scrapes http://127.0.0.1:<port>/metrics; the list of metrics
//! // with their metadata is JSON at /api/metrics (`?selector=^lookup&hidden=false`, ...).
//! let server = ThreadedMetricsServer::start(registry, ServerConfig::new("127.0.0.1:0".parse()?))?;
//! println!("metrics at {}, listed at {:?}", server.url(), server.api_url());
//! server.close()?; // stops, joins its thread; idempotent
//! # Ok(())
//! # }
//! # #[cfg(not(feature = "http"))]
//! # fn main() {}
//! ```
//!
//! Applications that already log through `log` or `tracing` and count through `metrics` keep
//! their code: the facades (features `log`, `tracing`, `metrics`) put mvx behind those
//! crates, and a Redis streams sink (feature `redis`) delivers to a real backend.
//!
//! ```
//! # #[cfg(all(feature = "tracing", feature = "metrics"))]
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! use mvx::facade::{metrics::RegistryRecorder, tracing::SinkLayer};
//! use mvx::sink::{JsonLines, SinkConfig, sinks::WriterSink};
//! use tracing_subscriber::layer::SubscriberExt;
//!
//! // `tracing` events as JSON lines on stderr, written by mvx's thread, not the caller's.
//! let (sink, terminator) = mvx::rt::thread::create(WriterSink::stderr().format(JsonLines), SinkConfig::default())?;
//! let subscriber = tracing_subscriber::Registry::default().with(SinkLayer::new(sink));
//! tracing::subscriber::with_default(subscriber, || tracing::info!(port = 8080, "ready"));
//! terminator.terminate()?;
//!
//! // `metrics` macros into mvx instruments, served by `expose` like any other.
//! let registry = mvx::metrics::Registry::new();
//! let recorder = RegistryRecorder::new(registry.clone()); // or `.install()` for the process
//! metrics::with_local_recorder(&recorder, || metrics::counter!("jobs", "queue" => "mail").increment(1));
//! assert_eq!(registry.counter_with_labels("jobs", &[("queue", "mail")])?.get(), 1);
//! # Ok(())
//! # }
//! # #[cfg(not(all(feature = "tracing", feature = "metrics")))]
//! # fn main() {}
//! ```
//!
//! # Map
//!
//! | layer | modules | what |
//! |---|---|---|
//! | core | [`lifecycle`], [`queue`], [`error`] | state machine, wait handles, exact pending-event accounting, errors with reason codes; no executor, no thread, no I/O |
//! | components | [`sink`], [`metrics`], [`stats`], [`instrument`], [`expose`] | a handle (`Clone + Send + Sync`) plus a driver future; line formats and built-in sinks (writer, memory, Redis streams); lock-free instruments with labeled series; request statistics with key-value stores; future instrumentation; Prometheus/OpenMetrics text and the HTTP server |
//! | facades | [`facade`] | mvx behind `log`, `tracing` and `metrics` |
//! | lifecycle of a client | [`agent`] | run until a signal or a stop, stop once, teardown under a timeout with its errors reported; [`agent::Selector`]: which metrics a registry has, by regex or names, prefix, infix, flags and limit |
//! | adapters | [`rt`] | run a driver on smol or on a dedicated thread; [`rt::Terminator`] |
//!
//! # Features
//!
//! | feature | default | pulls in | enables |
//! |---|---|---|---|
//! | `thread` | yes | nothing | [`rt::thread`]: a dedicated thread with mvx's own executor |
//! | `smol` | yes | `smol` | [`rt::smol`]: run on your smol executor or on one on a thread |
//! | `persist` | no | `blocking` | `stats::FileStore`: the statistics' state in files, written atomically |
//! | `redis` | no | `redis` (its smol runtime; no tokio runtime), and `persist` | `stats::RedisStore`: the state on a Redis server; `sink::sinks::RedisStreamSink`: log events appended to a Redis stream |
//! | `log` | no | `log` (with `kv`) | `facade::log`: an `AsyncSink<LogEvent>` as the `log` crate's logger |
//! | `tracing` | no | `tracing-core`, `tracing-subscriber` (`registry`) | `facade::tracing`: `SinkLayer`, a `tracing_subscriber::Layer` feeding an `AsyncSink<LogEvent>` |
//! | `metrics` | no | `metrics` | `facade::metrics`: `RegistryRecorder`, a `metrics::Recorder` on mvx instruments in a `Registry` |
//! | `http` | no | `hyper` (HTTP/1.1 server and client), `http-body-util`, `bytes`, `smol-hyper` (hyper's I/O traits over async-io), and `thread` | `expose::http`: `MetricsServer`, `ThreadedMetricsServer`, `metrics_response`, `get_metrics_response` (the list of metrics as JSON at `/api/metrics`); `expose::discovery`: `ServiceDiscovery`, `ConsulAgent` |
//! | `tls` | no | `futures-rustls` and `rustls` with the `ring` provider, and `http` | HTTPS for the metrics server (`ServerConfig::tls`), `expose::rustls` |
//! | `signals` | no | `signal-hook` | SIGINT / SIGTERM for [`agent::Runner::run`] |
//! | `metricq` | no | `lapin` 3 (AMQP 0-9-1; its default runtime: `async-io`'s reactor, `async-global-executor`, which starts threads of its own, and one I/O thread per connection; `amqps://` by rustls with the `ring` provider and the system's roots), `prost` (the data chunks), `url`; no tokio runtime | `agent::metricq`: MetricQ `Client`, `Source`, `Sink` agents, `RegistryBridge` |
//!
//! The text encoders ([`expose::text`]) need no feature: they are pure functions. Neither do
//! metric metadata and selectors ([`metrics::Metadata`], [`agent::selector`]), which always
//! pull in `regex` (the selectors' regular expressions) and `form_urlencoded` (the query
//! strings of `/api/metrics`).
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
//! - **Timeouts on user code.** A start hook is cut off after `start_timeout` (the start
//!   fails with `StartTimedOut`), a stop (draining, flushing, the stop hook) after
//!   `stop_timeout`; both default to 30 s and may be `None`. The start timeout exists because
//!   the adapters in [`rt`] wait for the start: a hook that never returned would block them
//!   for ever. A dispatch is not timed while running: only a stop bounds it.
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
//! - **Statistics are a recorder.** [`stats::Statistics`] is a sink whose dispatcher is the
//!   aggregation: each recording call stamps the caller's clock (`Instant::now()`) into an
//!   event and queues it, taking no lock; the driver applies events to the state and keeps
//!   the map of requests in progress. The queue's default policy for statistics is `Block`
//!   (a caller waits for room rather than losing a count). `calculate()` is `flush()`
//!   followed by a read of the state, so it reflects every call made before it;
//!   `calculate_blocking()` and `reset_blocking()` serve synchronous callers.
//! - **Request ids** are [`stats::RequestId`]: a `u64` (recorded without allocation) or a
//!   string key behind an `Arc<str>` (converting a `&str` allocates once). A start of a
//!   request already in progress is a retry, as in Crawlee; `record_request_retry` says it
//!   explicitly, and a retry of an unknown id tracks it from then with one retry. A finish
//!   or failure of an id not in progress is counted in `requests_unmatched`, nothing else.
//!   Requests in progress are not persisted: after a restart their ends are unmatched.
//! - **Durations and rates.** A request's duration runs from its last start (or retry) to
//!   its end. Min, max and total are kept apart for finished and failed requests. `runtime`
//!   adds up over every run on the persisted state (a killed run counts up to its last
//!   save), and the per-minute rates divide the counts — which also cover every run — by
//!   it; they are not rounded. Averages are rounded down to the nanosecond. The JSON shape
//!   keeps durations in whole microseconds and times in Unix milliseconds, with a `version`.
//! - **Stores.** [`stats::KeyValueStore`] addresses a value by store name and key (a store
//!   name is a directory of `FileStore`, a key prefix of `RedisStore`) and has `rename`
//!   besides get, set and delete, to move a corrupt value aside without reading it as
//!   JSON. Its futures are boxed once per store call (never per recording call) to share
//!   the store behind a [`stats::SharedStore`]. A panic in a store is caught and reported
//!   as `StoreError::Panicked`. `serde_json` is a public dependency: the trait speaks
//!   `serde_json::Value`.
//! - **Persistence is part of the lifecycle.** The state is loaded by the start hook
//!   (bounded by the queue's `start_timeout`; calls recorded meanwhile wait in the queue
//!   and land on top of it) and saved by the stop hook (bounded by `stop_timeout`); saves,
//!   loads and `reset()`'s removal pass one at a time through an async gate, so an older
//!   snapshot never overwrites a newer one, and nothing is saved after the final save.
//! - **A bad persisted state is never lost.** One that cannot be read (an I/O error, an
//!   unreachable server) fails the start with `StatsError::Store` and is left as it is,
//!   even with `reset_on_corrupt_state`: the next save would otherwise overwrite it. One
//!   that is read but is not a valid state (not JSON, another shape, another `version`) is
//!   renamed to `<key>.corrupt-<unix ms>` and fails the start with
//!   `StatsError::CorruptState`, or, with `reset_on_corrupt_state`, the statistics start
//!   from the defaults and keep the error in `last_error()`. If it cannot be moved aside,
//!   the start fails.
//! - **Periodic work** — saves every `persist_interval`, reports every `log_interval` —
//!   runs in the statistics' driver future beside the queue, on `async_io::Timer`s, each
//!   on its own schedule. A failed save or a refused report is kept in `last_error()` and
//!   the next one goes on schedule; a report to a log sink whose policy is `Block` waits
//!   asynchronously, never blocking the driver's thread.
//! - **Agents** (see [`agent`]): `stop` is synchronous and the runner runs teardown, so any
//!   thread, task or signal handler can stop an agent; `run()` polls the agent on the calling
//!   thread; a failed connect does not run teardown; a silent stop's error is kept in the
//!   outcome rather than dropped.
//! - **Metric metadata** ([`metrics::Metadata`]) has typed fields — `unit`, `description`,
//!   `rate` (Hz, finite and above zero), `hidden`, `historic` — and free-form string fields
//!   whose keys cannot be those five. It is set on a registry name (`describe`, or
//!   `counter_with` and its siblings, which refuse to change a name's metadata: `describe`
//!   replaces it) or given by a recorder's metric (`Metric::metadata`, read once at
//!   registration); a registry description replaces a source's metadata as a whole. In JSON
//!   a key is present only when set (a flag only when `true`), so empty metadata is `{}`.
//!   `hidden` hides a metric from listings that ask for visible metrics, never from
//!   Prometheus; `historic` is a flag to filter on.
//! - **Selectors** ([`agent::Selector`]) follow metricq's `get_metrics`: a regular
//!   expression is searched for anywhere in the name (anchor it for a whole-name match),
//!   explicit names that no metric has are left out without an error, `prefix` and `infix`
//!   are plain case-sensitive substrings, `hidden`/`historic` compare the flag when set, and
//!   `limit` keeps the first names in name order after every other filter. The candidates
//!   are the names of every snapshot: instruments and the metrics of every source (a
//!   recorder registered as one source lists each of its metrics). An invalid expression is
//!   [`agent::SelectorError::InvalidRegex`] (reason `INVALID_REGEX`), never a panic.
//! - **`/api/metrics`** takes an explicit list as repeated `name=` parameters, not a JSON
//!   array: a query string is then one format, decoded once (by `form_urlencoded`: percent
//!   escapes, `+` as a space), and each name is escaped on its own. Flags are `true` or
//!   `false` exactly, `limit` is decimal digits; an unknown or repeated parameter, or
//!   `selector` with `name`, is a `400` too, rather than being ignored: a typo never widens
//!   a selection silently. Errors are `{"error": "...", "reason": "<ErrorReason>"}`.
//! - **Blocking calls nest.** `ThreadedMetricsServer::start` and `close` wait with
//!   `async_io::block_on`, which may run inside another executor's `block_on`, so an agent's
//!   `connect` and `teardown` (polled by `Runner::run`) can start and close one.
//! - **Errors** keep their cause in `source()` rather than repeating it in the message;
//!   [`error::Report`] prints the chain on one line.
//! - **What `timed` observes.** [`instrument`]'s `timed` observes the seconds from the
//!   first poll to completion, for every completed future, `Ok` or `Err` alike (a failed
//!   call is a call, and its latency counts). A panic or a drop before completion (a
//!   timeout, a `select` that picked another branch) observes nothing: the operation did
//!   not complete and its partial duration would skew the distribution. `count_errors`
//!   counts panics that unwind through the future (always, whatever the error filter), and
//!   `track_in_progress` gives its +1 back on completion, panic or drop. None allocates.
//! - **Snapshots as Prometheus families.** A snapshot whose only dimension is `value` (a
//!   counter, a gauge) is one family; any other gives one family per dimension,
//!   `<name>_<dimension>`. Names become `[a-zA-Z0-9_]` (`.` and `:` are `_`); counters end
//!   in `_total`; info snapshots are exposed as gauges; a histogram's NaN count is not
//!   exposed, nor, in OpenMetrics, a negative sum. Two snapshots that sanitize to one name:
//!   the first in name order is exposed, the other reported in `Encoded::skipped`. Every
//!   family has a `HELP` — the metric's description, else the mvx name — so that
//!   `promtool check metrics` passes.
//! - **One driver serves every connection.** The HTTP server's driver multiplexes its
//!   connections itself instead of spawning a task per connection, so it runs under any
//!   executor with nothing but polling, and closing the driver closes everything. Bad
//!   clients are bounded: a request head (and a TLS handshake) must arrive within
//!   `header_read_timeout` (10 s, idle keep-alive connections included), a write of the
//!   answer may stall for at most `write_timeout` (10 s: a client that stops reading),
//!   heads are limited to `max_header_bytes` (16 KiB, `431` above), and connections above
//!   `max_connections` (64) are closed at once rather than queued behind slow ones.
//!   `close()` drops open connections (a scrape in progress is cut off), waits for the
//!   socket to be released, then deregisters from service discovery.
//! - **Service discovery** runs from `start` (after the socket is bound and served, so a
//!   health check finds it up) and its deregistration from `close()`; a failed
//!   registration closes the server and fails the start. The Consul client is tested
//!   against a local endpoint that records requests: no Consul server runs where mvx is
//!   developed.
//! - **Line formats.** Line-oriented sinks take a [`sink::LineFormat`]:
//!   [`sink::DisplayLines`] (the event's `Display`, the writer's default) or
//!   [`sink::JsonLines`], one JSON object per `LogEvent` with a fixed shape (`timestamp`,
//!   `level`, `target`, `message`, `fields`), a repeated field name written once with its last
//!   value, non-finite floats as strings. The line is built in a buffer the sink reuses.
//! - **Facades never wait and never fail the caller.** The `log` and `tracing` facades build
//!   a `LogEvent` on the caller's thread and `log()` it; the sink's refusals (full under
//!   `RaiseError`, not accepting) are counted in [`facade::Refused`], drops under `Drop` in
//!   the sink's `dropped`; only `Block` makes a caller wait, as that policy says. They
//!   allocate only what the facade forces (a rendered message, the fields vector, copies of
//!   borrowed strings); `'static` names, targets and paths are borrowed. `log`'s logger and
//!   the `metrics` recorder are process-wide and set once: their `install` functions fail if
//!   one is set.
//! - **Span context** in `tracing` events is the fields of every enclosing span, root first,
//!   then the event's own (so the event's win in JSON), and a `span` field with the span
//!   path (`request:db`). Span fields are kept once per span, their text behind an `Arc`
//!   ([`sink::FieldValue::Shared`]), so copying them into each event costs no allocation.
//! - **Labels.** A metric with labels is a series: an instrument created with
//!   [`metrics::Registry::counter_with_labels`] and its siblings, kept under
//!   [`metrics::series_key`] (the name, then the labels sorted by name). All series of one
//!   name have one kind, and the exposition writes them as one family with the labels on
//!   each sample. The `metrics` facade maps its keys onto series this way; `describe_*` is
//!   kept by the recorder (the registry has no metadata yet, so HELP stays the mvx name); a
//!   series the registry refuses is counted and its call sites get a handle that does
//!   nothing.
//! - **Redis streams: a transaction per batch, each event at most once in the stream.**
//!   [`RedisStreamSink`](sink::sinks) sends each batch as `MULTI`, one `XADD` per event
//!   (optionally `MAXLEN ~`), a `SET` of its acknowledgement key to the batch's sequence
//!   number, `EXEC` — one round trip, all or nothing. After a failure whose outcome is
//!   unknown (a dropped connection, a timeout, a server restart) it reconnects with backoff
//!   and reads the key under `WATCH` before resending: a batch the server already ran is
//!   counted delivered without being sent again. Events are `delivered` once the server
//!   acknowledged them (exactly once in the stream), `failed` when the server refuses them
//!   or the batch is not delivered within its delivery timeout. A single server or primary
//!   is required (the key and the stream are in one transaction): no Redis Cluster.
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

// The components above the core that the loom models do not reach (their timers and I/O
// come from async-io, which has no loom counterpart) are left out of `--cfg loom` builds.
#[cfg(not(loom))]
pub mod agent;
pub mod error;
#[cfg(not(loom))]
pub mod expose;
#[cfg(not(loom))]
pub mod facade;
#[cfg(not(loom))]
pub mod instrument;
pub mod lifecycle;
pub mod metrics;
pub mod queue;
pub mod rt;
pub mod sink;
#[cfg(not(loom))]
pub mod stats;
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
