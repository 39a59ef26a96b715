//! Adapters: run components on smol, or on a thread of their own.
//!
//! Three ways to run a sink, from most to least control:
//!
//! 1. [`AsyncSink::new`] returns the handle and a driver future: spawn it anywhere.
//! 2. [`smol::spawn`] spawns the driver on your `smol::Executor`.
//! 3. [`thread::create`] and [`smol::create`] start a dedicated, named thread with an
//!    executor, build and start the sink there, wait for the start result and return the
//!    sink with a [`Terminator`].
//!
//! A `Terminator` stops the component (flushing what was accepted), shuts the executor
//! down, joins its thread and returns the component's final [`QueueStats`] (also inside
//! the error of a failed stop). It is idempotent: every call after the first returns the
//! first outcome at once, from any thread. Called on the runtime's own thread it returns
//! [`TerminateError::CalledFromRuntimeThread`] instead of deadlocking; so do the blocking
//! waits of the components it runs, with `WouldDeadlock`
//! ([which calls block](crate::sink#which-calls-block)).
//!
//! Dropping the last clone of a `Terminator` terminates, like `tracing-appender`'s worker
//! guard: bind it to a named variable (`let (sink, _terminator) = ...`), not to `_`, or the
//! sink is stopped at once. If that last drop happens on the runtime thread itself, the
//! thread cannot be joined: the executor is shut down and the sink is cancelled (its
//! pending events counted as failed).
//!
//! [`AsyncSink::new`]: crate::sink::AsyncSink::new

#[cfg(feature = "smol")]
pub mod smol;
#[cfg(feature = "thread")]
pub mod thread;
#[cfg(all(feature = "tokio", not(loom)))]
pub(crate) mod tokio;

use std::fmt;

use futures::task::{FutureObj, Spawn};

use crate::error::{Cause, CreateError, SinkError, TerminateError};
use crate::lifecycle::WaitHandle;
use crate::queue::QueueStats;
use crate::sink::{AsyncSink, Dispatch, SinkConfig};
use crate::sync::thread::{JoinHandle, ThreadId};
use crate::sync::{Arc, Mutex, OnceLock, lock};

/// A dedicated thread running an executor.
pub(crate) struct RuntimeThread {
    thread_id: ThreadId,
    join: Mutex<Option<JoinHandle<()>>>,
    shutdown: Box<dyn Fn() + Send + Sync>,
}

impl RuntimeThread {
    /// Spawns a thread named `name` running `body`; `shutdown` makes `body` return.
    #[cfg(any(feature = "smol", feature = "thread", loom))]
    pub(crate) fn spawn(
        name: String,
        body: impl FnOnce() + Send + 'static,
        shutdown: impl Fn() + Send + Sync + 'static,
    ) -> Result<Self, CreateError> {
        let handle = crate::sync::thread::Builder::new()
            .name(name)
            .spawn(move || {
                // The thread runs one single-threaded executor and nothing else: a blocking
                // wait here for a driver it runs is refused (`crate::sync::DriverSeat`).
                crate::sync::mark_runtime_thread();
                body();
            })
            .map_err(CreateError::ThreadSpawn)?;
        Ok(Self {
            thread_id: handle.thread().id(),
            join: Mutex::new(Some(handle)),
            shutdown: Box::new(shutdown),
        })
    }

    pub(crate) fn is_current(&self) -> bool {
        crate::sync::thread::current().id() == self.thread_id
    }

    pub(crate) fn shutdown(&self) {
        (self.shutdown)();
    }

    /// Joins the thread (once; later calls return `Ok`).
    pub(crate) fn join(&self) -> Result<(), TerminateError> {
        let handle = lock(&self.join).take();
        match handle {
            Some(handle) => handle
                .join()
                .map_err(|payload| TerminateError::RuntimePanicked(Cause::from_panic(payload))),
            None => Ok(()),
        }
    }

    pub(crate) fn shutdown_and_join(&self) -> Result<(), TerminateError> {
        self.shutdown();
        self.join()
    }
}

/// Stops a component, shuts its executor down and joins its thread; idempotent.
///
/// `Clone + Send + Sync`. See the [module docs](self) for what dropping it does.
#[derive(Clone)]
pub struct Terminator {
    inner: Arc<TerminatorInner>,
}

struct TerminatorInner {
    stop: Box<dyn Fn() -> Result<(), SinkError> + Send + Sync>,
    stats: Box<dyn Fn() -> QueueStats + Send + Sync>,
    runtime: RuntimeThread,
    outcome: OnceLock<Result<QueueStats, TerminateError>>,
}

impl Terminator {
    /// A terminator that stops `sink` (blocking) and then shuts `runtime` down.
    #[cfg(any(feature = "smol", feature = "thread", loom))]
    pub(crate) fn new<E: Send + 'static>(sink: AsyncSink<E>, runtime: RuntimeThread) -> Self {
        let stopper = sink.clone();
        Self {
            inner: Arc::new(TerminatorInner {
                stop: Box::new(move || stopper.stop_and_wait()),
                stats: Box::new(move || sink.stats()),
                runtime,
                outcome: OnceLock::new(),
            }),
        }
    }

    /// Stops the component (flushing what it accepted), shuts the executor down and joins
    /// the runtime thread; returns the component's final counters.
    ///
    /// The counters are read once the thread is joined, so they are final: after a clean
    /// stop `pending == 0` and `accepted == delivered + failed`. A caller that reports
    /// what was lost reads it here (`failed`, `dropped`), also after the last handle of the
    /// component is gone.
    ///
    /// The first call does the work; every later or concurrent call returns the same
    /// outcome (concurrent callers wait for the first to finish).
    ///
    /// # Errors
    ///
    /// - [`TerminateError::CalledFromRuntimeThread`] when called on the runtime thread
    ///   (nothing is done; call it from another thread).
    /// - [`TerminateError::Stop`] when the component did not stop cleanly: a failed stop
    ///   hook, a stop timeout, or a component that had already failed. It carries the
    ///   final counters too ([`TerminateError::stats`]).
    /// - [`TerminateError::RuntimePanicked`] when the runtime thread panicked.
    ///
    /// # Examples
    ///
    /// ```
    /// use mvx::sink::{Discard, SinkConfig};
    ///
    /// let (sink, terminator) = mvx::rt::thread::create(Discard, SinkConfig::default())?;
    /// sink.log(1u32).unwrap();
    /// drop(sink);
    /// let stats = terminator.terminate()?;
    /// assert_eq!((stats.accepted, stats.delivered, stats.pending), (1, 1, 0));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn terminate(&self) -> Result<QueueStats, TerminateError> {
        self.inner.terminate()
    }

    /// Whether termination has finished.
    pub fn is_terminated(&self) -> bool {
        self.inner.outcome.get().is_some()
    }
}

impl TerminatorInner {
    fn terminate(&self) -> Result<QueueStats, TerminateError> {
        if let Some(outcome) = self.outcome.get() {
            return outcome.clone();
        }
        if self.runtime.is_current() {
            return Err(TerminateError::CalledFromRuntimeThread);
        }
        self.outcome
            .get_or_init(|| {
                let stopped = (self.stop)();
                let joined = self.runtime.shutdown_and_join();
                let stats = (self.stats)();
                match (stopped, joined) {
                    (Err(error), _) => Err(TerminateError::Stop {
                        error,
                        stats: Box::new(stats),
                    }),
                    (Ok(()), Err(error)) => Err(error),
                    (Ok(()), Ok(())) => Ok(stats),
                }
            })
            .clone()
    }
}

impl Drop for TerminatorInner {
    fn drop(&mut self) {
        if self.outcome.get().is_some() {
            return;
        }
        if self.runtime.is_current() {
            // The thread cannot join itself: shut the executor down and let it end.
            self.runtime.shutdown();
        } else {
            // The outcome has no one left to read it; it is in the component's
            // `last_error()` for the handles still alive.
            let _ = self.terminate();
        }
    }
}

impl fmt::Debug for Terminator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Terminator")
            .field("terminated", &self.is_terminated())
            .finish_non_exhaustive()
    }
}

/// Builds a sink on the executor behind `spawner` — the driver's task builds it when first
/// polled — and starts it. Returns the sink and its start handle without waiting.
pub(crate) fn build_on<E, D, S>(
    spawner: &S,
    dispatch: D,
    config: SinkConfig,
) -> Result<(AsyncSink<E>, WaitHandle), CreateError>
where
    E: Send + 'static,
    D: Dispatch<E>,
    S: Spawn + ?Sized,
{
    let (built_tx, built_rx) = std::sync::mpsc::sync_channel(1);
    let task = async move {
        let (sink, driver) = AsyncSink::new(dispatch, config);
        let start = sink.start();
        if built_tx.send((sink, start)).is_ok() {
            driver.await;
        }
    };
    spawner
        .spawn_obj(FutureObj::new(Box::new(task)))
        .map_err(|_| SinkError::EventLoopUnavailable)?;
    built_rx.recv().map_err(|_| CreateError::RuntimeGone)
}

/// Builds a sink on the runtime, starts it, waits for the start result, and returns it with
/// its terminator.
#[cfg(any(feature = "smol", feature = "thread"))]
pub(crate) fn create_sink<E, D, S>(
    spawner: &S,
    runtime: RuntimeThread,
    dispatch: D,
    config: SinkConfig,
) -> Result<(AsyncSink<E>, Terminator), CreateError>
where
    E: Send + 'static,
    D: Dispatch<E>,
    S: Spawn + ?Sized,
{
    let (sink, start) = match build_on(spawner, dispatch, config) {
        Ok(built) => built,
        Err(error) => {
            let _ = runtime.shutdown_and_join();
            return Err(error);
        }
    };
    let started = start.wait();
    let terminator = Terminator::new(sink.clone(), runtime);
    match started.error {
        None => Ok((sink, terminator)),
        Some(error) => {
            // The sink is in `Failure`; the outcome repeats the start error.
            let _ = terminator.terminate();
            Err(error.into())
        }
    }
}
