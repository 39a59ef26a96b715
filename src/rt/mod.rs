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
//! down, joins its thread and returns the component's final [`QueueStats`](crate::queue::QueueStats)
//! (also inside the error of a failed stop): final but for `refused`, which goes on
//! counting the events that later `log()` calls are handed back. It does so within a deadline — configured
//! ([`SinkConfig::terminate_timeout`], by default the stop timeout plus a one-second
//! [`join_grace`](SinkConfig::join_grace)) or given per call
//! ([`Terminator::terminate_within`], [`Terminator::terminate_deadline`]) — that a
//! dispatcher blocking its thread cannot hold: past it, the sink is ended from outside its
//! driver, every event not yet finished is counted as failed, the thread is detached, and
//! the call returns [`TerminateError::TimedOut`] ([`Terminator`] has the details). It is
//! idempotent: every call after the first returns the first outcome at once, from any
//! thread. Called on the runtime's own thread it returns
//! [`TerminateError::CalledFromRuntimeThread`] instead of deadlocking; so do the blocking
//! waits of the components it runs, with `WouldDeadlock`
//! ([which calls block](crate::sink#which-calls-block)).
//!
//! # The guard
//!
//! Dropping the last clone of a `Terminator` terminates, within the configured deadline,
//! like `tracing-appender`'s worker guard: keep it in `main` and a return from `main`, or
//! a panic unwinding out of it, flushes the sink. Bind it to a named variable
//! (`let (sink, _terminator) = ...`), not to `_`, or the sink is stopped at once. If that
//! last drop happens on the runtime thread itself, the thread cannot be joined: the
//! executor is shut down and the sink is cancelled (its pending events counted as failed).
//! Where no destructor runs — `std::process::exit`, `panic = "abort"`, a terminator in a
//! `static` — call [`Terminator::terminate`] first, or install
//! [`Terminator::terminate_on_panic`]; the crate docs' ["What is lost,
//! when"](crate#what-is-lost-when) go through each way a program ends.
//!
//! [`AsyncSink::new`]: crate::sink::AsyncSink::new
//! [`SinkConfig::terminate_timeout`]: crate::sink::SinkConfig::terminate_timeout

#[cfg(feature = "smol")]
pub mod smol;
mod terminator;
#[cfg(feature = "thread")]
pub mod thread;
#[cfg(all(feature = "tokio", not(loom)))]
pub(crate) mod tokio;

pub use self::terminator::Terminator;

use std::task::Poll;
use std::time::Instant;

use futures::task::{FutureObj, Spawn};

use crate::error::{Cause, CreateError, SinkError, TerminateError};
use crate::lifecycle::WaitHandle;
use crate::sink::{AsyncSink, Dispatch, SinkConfig};
use crate::sync::thread::{JoinHandle, ThreadId};
use crate::sync::{Arc, AtomicBool, Mutex, Ordering, Signal, Wait, block_on, lock};

/// A dedicated thread running an executor.
pub(crate) struct RuntimeThread {
    thread_id: ThreadId,
    join: Mutex<Option<JoinHandle<()>>>,
    shutdown: Box<dyn Fn() + Send + Sync>,
    /// Set when the thread's body has returned or unwound: a join then takes no time.
    ended: Arc<ThreadEnd>,
}

/// Whether a runtime thread's body has ended, and the signal that announces it.
struct ThreadEnd {
    ended: AtomicBool,
    signal: Signal,
}

/// Marks the thread's body ended when dropped: on return and on unwinding.
#[cfg(any(feature = "smol", feature = "thread", loom))]
struct EndOnDrop(Arc<ThreadEnd>);

#[cfg(any(feature = "smol", feature = "thread", loom))]
impl Drop for EndOnDrop {
    fn drop(&mut self) {
        self.0.ended.store(true, Ordering::Release);
        self.0.signal.notify_all();
    }
}

/// The wait of a join with a deadline for the thread's body to end.
struct BodyEnded<'a>(&'a ThreadEnd);

impl Wait for BodyEnded<'_> {
    type Output = ();

    fn parts(&mut self) -> (&Signal, impl FnMut() -> Poll<()> + '_) {
        let end = self.0;
        (&end.signal, move || {
            if end.ended.load(Ordering::Acquire) {
                Poll::Ready(())
            } else {
                Poll::Pending
            }
        })
    }
}

/// How a join with a deadline ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Joined {
    /// The thread ended and was joined.
    Joined,
    /// The deadline passed first: the thread was detached, and ends on its own.
    Detached,
}

impl RuntimeThread {
    /// Spawns a thread named `name` running `body`; `shutdown` makes `body` return.
    #[cfg(any(feature = "smol", feature = "thread", loom))]
    pub(crate) fn spawn(
        name: String,
        body: impl FnOnce() + Send + 'static,
        shutdown: impl Fn() + Send + Sync + 'static,
    ) -> Result<Self, CreateError> {
        let ended = Arc::new(ThreadEnd {
            ended: AtomicBool::new(false),
            signal: Signal::new(),
        });
        let end = EndOnDrop(ended.clone());
        let handle = crate::sync::thread::Builder::new()
            .name(name)
            .spawn(move || {
                let _end = end;
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
            ended,
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
        self.join_until(None).map(|_| ())
    }

    /// Joins the thread once its body has ended, waiting until `deadline` at most; past
    /// it, detaches the thread (it ends on its own). Once; later calls return `Joined`.
    pub(crate) fn join_until(&self, deadline: Option<Instant>) -> Result<Joined, TerminateError> {
        let mut join = lock(&self.join);
        let Some(handle) = join.take() else {
            return Ok(Joined::Joined);
        };
        if deadline.is_some() && block_on(&mut BodyEnded(&self.ended), deadline).is_err() {
            drop(handle);
            return Ok(Joined::Detached);
        }
        drop(join);
        handle
            .join()
            .map(|()| Joined::Joined)
            .map_err(|payload| TerminateError::RuntimePanicked(Cause::from_panic(payload)))
    }

    pub(crate) fn shutdown_and_join(&self) -> Result<(), TerminateError> {
        self.shutdown();
        self.join()
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
