//! Sinks: a synchronous, thread-safe `log(event)` in front of an asynchronous dispatcher.
//!
//! A sink is a handle, [`AsyncSink`], plus a [`Driver`] future. The handle is cheap to clone
//! and can be used from any thread or task; the driver does the work wherever it is polled
//! — spawn it on tokio, smol, a `futures` pool, or let [`crate::rt`] run it on a thread of
//! its own. The user writes only [`Dispatch`]: how one event is delivered.
//!
//! # Lifecycle
//!
//! A sink starts `Virgin`. [`start()`](AsyncSink::start) runs the dispatcher's
//! `on_starting` hook and moves it to `Running`; [`stop()`](AsyncSink::stop) closes
//! admission, dispatches every event accepted before it, flushes the dispatcher, runs
//! `on_stopped` and moves to `Stopped`. Both return a [`WaitHandle`].
//! Events are accepted in `Starting` and `Running`; events accepted while starting are
//! dispatched once the start hook succeeds. With [`SinkConfig::lazy_start`], the first
//! `log()` starts a `Virgin` sink.
//!
//! Dropping the last handle stops a running sink, as `stop()` would (a starting one once
//! its start completes); a `Virgin` sink is never started, and its driver returns. Dropping
//! the driver while the sink is live moves it to `Cancelled`: the events still queued are
//! counted as failed, every waiter gets `DispatcherCancelled`.
//!
//! # User code: errors, panics, timeouts
//!
//! What a failed or panicking [`Dispatch`] method or hook does to the sink is in
//! [`Dispatch`]'s docs. Time bounds the hooks and the stop, never a dispatch while the
//! sink runs: the start hook by [`SinkConfig::start_timeout`], a stop (draining, flushing,
//! the stop hook) by [`SinkConfig::stop_timeout`]; each field says what happens past it.
//! A dispatch that hangs while the sink runs is bounded only by the stop that follows.
//!
//! # Batches over latency
//!
//! The driver takes every queued event, up to [`SinkConfig::batch_size`], as one batch.
//! When a batch was small (the ring nearly empty) it pauses for a few hundred CPU pause
//! instructions before taking the next, and before it parks it keeps looking for work a
//! little longer; a producer blocked on a full queue likewise retries briefly before it
//! parks. An event may thus wait a microsecond or two longer to be dispatched; in exchange
//! producers and driver do not fight over the same ring slots event by event (figures in
//! BENCHMARKS.md).
//!
//! # Sharing an executor
//!
//! A driver with work keeps going: it yields to its executor when its queue runs empty,
//! or when it has spent its [`PollBudget`] — so that a sink flooded by its producers does
//! not starve the other tasks on its thread (another sink, a recorder's snapshot, the
//! statistics' periodic saves). [`PollBudget`] has the values and their cost.
//!
//! # What is lost, and when
//!
//! Nothing silently: every event a sink accepts ends as `delivered` or `failed`, and every
//! event it refuses is handed back and counted. [The queue module](crate::queue) has the
//! table of outcomes and the counter each one lands in. What was dropped, refused or
//! failed is also handed to the dispatcher, in the stream, as a [`LossReport`]; a
//! dispatcher that panicked is restarted, or not, by its [`RestartPolicy`].
//!
//! # Which calls block
//!
//! - [`log()`](AsyncSink::log) returns at once under the default
//!   [`OverflowPolicy::RaiseError`] and under `Drop`. Under [`OverflowPolicy::Block`],
//!   while the pending-event limit is reached, it waits for room and blocks the calling
//!   thread (it spins briefly, then parks) until the driver finishes an event or the sink
//!   stops accepting.
//! - [`log_blocking()`](AsyncSink::log_blocking), [`flush_blocking()`](AsyncSink::flush_blocking)
//!   and the `wait()`, `wait_timeout()` and `wait_deadline()` of every wait
//!   ([`Send`](wait::Send), [`Flush`](wait::Flush), [`WaitHandle`]) block the thread until
//!   the driver has done its part: never call them on the thread that polls the driver.
//! - [`send()`](AsyncSink::send), [`flush()`](AsyncSink::flush), [`start()`](AsyncSink::start)
//!   and [`stop()`](AsyncSink::stop) return at once; the futures they return wait when
//!   awaited, without blocking the thread. Async code uses those.
//!
//! # Allocation
//!
//! The ring is allocated once, by [`AsyncSink::new`]. `log()` on an accepted or refused
//! event does not allocate; neither does the driver while it dispatches, nor a blocking
//! wait (it listens from its own stack; a thread's first park allocates the thread's
//! parker, once). An awaited wait (`send().await`, `flush().await`, a lifecycle operation)
//! allocates a listener when it has to wait.

mod budget;
mod config;
mod dispatch;
mod driver;
mod event;
mod format;
mod loss;
mod registry;
mod restart;
mod shared;
pub mod sinks;
pub mod wait;

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use futures::task::{FutureObj, Spawn};

pub use self::budget::{DEFAULT_POLL_BUDGET, PollBudget};
pub use self::config::{
    DEFAULT_BATCH_SIZE, DEFAULT_START_TIMEOUT, DEFAULT_STOP_TIMEOUT, SinkConfig,
};
pub use self::dispatch::{BatchError, Discard, Dispatch, MissingDispatch};
pub use self::event::{FieldValue, Level, LogEvent};
pub use self::format::{DisplayLines, JsonLines, LineFormat, LineFormatName};
pub use self::loss::{DEFAULT_LOSS_REPORT_INTERVAL, LossReport};
pub use self::registry::{Describe, SinkDescriptor, SinkRegistry};
pub use self::restart::RestartPolicy;

pub(crate) use self::shared::Shared;
use crate::error::{LogError, SinkError};
use crate::lifecycle::{State, WaitHandle};
use crate::queue::{LogOutcome, OverflowPolicy, QueueStats, Reserve};
use crate::sync::{Arc, Ordering, lock};

/// A cheap, cloneable, thread-safe handle on a sink.
///
/// Created by [`AsyncSink::new`] with its [`Driver`], or by the adapters in [`crate::rt`].
/// See the [module docs](self) for the lifecycle and what is lost when.
pub struct AsyncSink<E> {
    shared: Arc<Shared<E>>,
}

/// A [`Driver`] wraps the boxed future that runs a sink's dispatcher.
///
/// Spawn it on any executor, or poll it yourself; it completes when the sink reaches a
/// terminal state. Dropping it while the sink is live cancels the sink.
#[must_use = "a sink does nothing unless its driver is spawned or polled"]
pub struct Driver {
    future: Pin<Box<dyn Future<Output = ()> + Send + 'static>>,
}

impl Future for Driver {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        self.future.as_mut().poll(cx)
    }
}

impl fmt::Debug for Driver {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Driver").finish_non_exhaustive()
    }
}

impl Driver {
    /// The driver as a `FutureObj`, for `futures::task::Spawn` implementations.
    pub fn into_future_obj(self) -> FutureObj<'static, ()> {
        FutureObj::from(self.future)
    }
}

impl<E: Send + 'static> AsyncSink<E> {
    /// Creates a `Virgin` sink and the driver that runs `dispatch`.
    ///
    /// The ring of `config.queue_capacity` events is allocated here, once. Spawn the driver
    /// on the executor of your choice, then [`start`](Self::start) the sink.
    ///
    /// # Examples
    ///
    /// ```
    /// use mvx::sink::{AsyncSink, SinkConfig, sinks::MemorySink};
    ///
    /// # futures::executor::block_on(async {
    /// let (memory, events) = MemorySink::new();
    /// let (sink, driver) = AsyncSink::new(memory, SinkConfig::default());
    /// let driver = std::thread::spawn(move || futures::executor::block_on(driver));
    ///
    /// assert!(sink.start().await.success);
    /// sink.log("hello").unwrap();
    /// assert!(sink.stop().await.success);
    /// driver.join().unwrap();
    /// assert_eq!(events.take(), vec!["hello"]);
    /// # });
    /// ```
    pub fn new<D: Dispatch<E>>(dispatch: D, config: SinkConfig) -> (Self, Driver) {
        let shared = Arc::new(Shared::new(config));
        let driver = Driver {
            future: Box::pin(driver::drive(
                driver::CancelGuard::new(shared.clone()),
                dispatch,
            )),
        };
        (Self { shared }, driver)
    }

    /// Creates a sink and spawns its driver with `spawner`.
    ///
    /// # Errors
    ///
    /// [`SinkError::EventLoopUnavailable`] when the spawner refuses the driver (its executor
    /// has shut down); the dispatcher is dropped.
    pub fn spawn_on<D, S>(dispatch: D, config: SinkConfig, spawner: &S) -> Result<Self, SinkError>
    where
        D: Dispatch<E>,
        S: Spawn + ?Sized,
    {
        let (sink, driver) = Self::new(dispatch, config);
        spawner
            .spawn_obj(driver.into_future_obj())
            .map_err(|_| SinkError::EventLoopUnavailable)?;
        Ok(sink)
    }

    /// Accepts an event for asynchronous delivery, applying the overflow policy.
    ///
    /// Returns at once under [`OverflowPolicy::RaiseError`] (the default) and
    /// [`OverflowPolicy::Drop`]. Under [`OverflowPolicy::Block`], while the pending-event
    /// limit is reached, it blocks the thread until there is room: it is then
    /// [`log_blocking`](Self::log_blocking). Does not allocate. With lazy start, starts a
    /// `Virgin` sink first.
    ///
    /// # Errors
    ///
    /// The event comes back inside the error when the sink is not `Starting` or `Running`
    /// ([`LogError::NotAccepting`]) or, under `RaiseError`, when the pending-event limit is
    /// reached ([`LogError::QueueOverflow`]).
    ///
    /// # Examples
    ///
    /// ```
    /// use mvx::queue::OverflowPolicy;
    /// use mvx::sink::{AsyncSink, SinkConfig, Discard};
    /// use mvx::error::LogError;
    ///
    /// let (sink, _driver) = AsyncSink::new(Discard, SinkConfig::default());
    /// // Not started: the event comes back.
    /// let refused = sink.log(42u32).unwrap_err();
    /// assert!(matches!(refused, LogError::NotAccepting { .. }));
    /// assert_eq!(refused.into_inner(), 42);
    /// ```
    pub fn log(&self, event: E) -> Result<LogOutcome, LogError<E>> {
        match self.shared.config.overflow {
            OverflowPolicy::Block => self.log_blocking(event),
            policy => self.try_accept(event, policy),
        }
    }

    /// Accepts an event, blocking the thread while the pending-event limit is reached,
    /// whatever the overflow policy: [`send(event).wait()`](wait::Send::wait).
    ///
    /// # Errors
    ///
    /// [`LogError::NotAccepting`] with the event when the sink is not accepting (also when
    /// it stops while this call waits).
    pub fn log_blocking(&self, event: E) -> Result<LogOutcome, LogError<E>> {
        self.send(event).wait()
    }

    /// Accepts an event, waiting while the pending-event limit is reached, whatever the
    /// overflow policy.
    ///
    /// The returned [`Send`](wait::Send) is a future: `.await` it in async code, or block
    /// on it with `wait()`, `wait_timeout(Duration)` or `wait_deadline(Instant)`.
    ///
    /// # Errors
    ///
    /// The future resolves to [`LogError::NotAccepting`] with the event when the sink is
    /// not accepting (also when it stops while the future waits).
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use mvx::sink::{AsyncSink, Discard, SinkConfig};
    ///
    /// let (sink, _driver) = AsyncSink::new(Discard, SinkConfig::default().queue_capacity(1));
    /// drop(sink.start()); // started, but its driver is not polled: nothing is dispatched
    /// sink.send(1u32).wait().unwrap();
    /// // The queue is full: the deadline passes and the event comes back.
    /// let full = sink.send(2).wait_timeout(Duration::from_millis(10)).unwrap_err();
    /// assert_eq!(full.into_inner(), 2);
    /// ```
    pub fn send(&self, event: E) -> wait::Send<'_, E> {
        wait::Send::new(self, event)
    }

    /// One acceptance attempt; `Block` is treated by the callers: under it, a full queue
    /// hands the event back uncounted, for the caller to wait and try again.
    ///
    /// Counts every event it hands back for good (`refused`): off the accepting path.
    fn try_accept(&self, event: E, policy: OverflowPolicy) -> Result<LogOutcome, LogError<E>> {
        let queue = &self.shared.queue;
        let mut reserve = queue.try_reserve();
        // The state that decided a refusal: read when admission was found closed.
        let mut refused_in = State::Virgin;
        if reserve == Reserve::Closed {
            refused_in = self.shared.state();
            match refused_in {
                State::Virgin if self.shared.config.lazy_start => {
                    drop(self.shared.start());
                    reserve = queue.try_reserve();
                }
                // A start moves the sink to `Starting`, then opens admission, both under the
                // lifecycle lock: a producer between the two finds admission closed in a
                // state that accepts (`Starting`, or `Running` if the driver was quick).
                // Once it holds the lock, the start has opened admission (or the sink has
                // ended since). Off the hot path: admission was closed. (Under lazy start,
                // `tests/loom_lifecycle.rs` caught this: two first logs racing, the second
                // was refused while `Starting`.)
                State::Starting | State::Running => {
                    drop(self.shared.lifecycle.lock());
                    reserve = queue.try_reserve();
                }
                _ => {}
            }
        }
        match reserve {
            Reserve::Reserved { slot } => match queue.push(event, slot) {
                Ok(()) => Ok(LogOutcome::Accepted),
                Err(event) => {
                    queue.record_refused();
                    Err(LogError::NotAccepting {
                        event,
                        state: self.shared.state(),
                    })
                }
            },
            Reserve::Full => match policy {
                OverflowPolicy::Drop => {
                    queue.record_dropped();
                    Ok(LogOutcome::Dropped)
                }
                OverflowPolicy::RaiseError => {
                    queue.record_refused();
                    Err(LogError::QueueOverflow(event))
                }
                // A producer that waits for room tries again: not refused (yet).
                OverflowPolicy::Block => Err(LogError::QueueOverflow(event)),
            },
            Reserve::Closed => {
                queue.record_refused();
                // Report where the sink is now, unless a start has moved it since to a
                // state that accepts events: then the state that refused the event (a
                // `Virgin` sink refuses; saying `Starting` would contradict the table).
                let now = self.shared.state();
                let state = if now.accepts_events() {
                    refused_in
                } else {
                    now
                };
                Err(LogError::NotAccepting { event, state })
            }
        }
    }
}

impl<E> AsyncSink<E> {
    /// Starts the sink: runs `on_starting`, then dispatches.
    ///
    /// Returns at once with a handle on the start operation. A second call while starting
    /// or running returns a handle on the same operation. The driver must be polled for the
    /// start to progress.
    ///
    /// The result fails with `InvalidState` when the sink is stopping or has ended, and with
    /// `OnStartingHookFailed` when the hook fails (the sink is then in `Failure`).
    pub fn start(&self) -> WaitHandle {
        self.shared.start()
    }

    /// Stops the sink: closes admission, dispatches every accepted event, flushes the
    /// dispatcher, runs `on_stopped`.
    ///
    /// Valid only while `Running`; otherwise the result carries `InvalidState`. Within
    /// `stop_timeout` (see [`SinkConfig`]); past it the remaining events are abandoned,
    /// counted as failed, and the result carries `StopTimedOut`.
    pub fn stop(&self) -> WaitHandle {
        self.shared.stop()
    }

    /// Resolves when every event accepted before the call has been dispatched and the
    /// dispatcher flushed.
    ///
    /// It is a barrier for the counters too: when it resolves, every event accepted before
    /// the call is counted as `delivered` or `failed` — also when the sink ended
    /// abnormally, whose abandoned events are counted as failed before a flush returns.
    ///
    /// The flush is requested by this call; the returned [`Flush`](wait::Flush) is a
    /// future: `.await` it in async code, or block on it with `wait()`,
    /// `wait_timeout(Duration)` or `wait_deadline(Instant)`.
    ///
    /// # Errors
    ///
    /// The future resolves to the dispatcher's flush error (`FlushFailed`), or the reason
    /// the sink ended abnormally if it ended before the flush was served; a blocking form
    /// with a deadline to `WaitTimedOut` when the deadline passed first.
    pub fn flush(&self) -> wait::Flush<'_, E> {
        wait::Flush::new(self)
    }

    /// [`flush`](Self::flush), blocking the current thread: `flush().wait()`.
    ///
    /// # Errors
    ///
    /// As [`flush`](Self::flush).
    pub fn flush_blocking(&self) -> Result<(), SinkError> {
        self.flush().wait()
    }

    /// The current lifecycle state: one atomic load.
    pub fn state(&self) -> State {
        self.shared.state()
    }

    /// The queue counters.
    pub fn stats(&self) -> QueueStats {
        self.shared.queue.stats()
    }

    /// The most recent error: a failed dispatch or flush, a panic, a failed hook, a
    /// cancellation.
    pub fn last_error(&self) -> Option<SinkError> {
        lock(&self.shared.last_error).clone()
    }

    /// The configuration the sink was created with.
    pub fn config(&self) -> &SinkConfig {
        &self.shared.config
    }

    /// Stops (if running), waiting; used by terminators. Returns the first error.
    pub(crate) fn stop_and_wait(&self) -> Result<(), SinkError> {
        if self.state() == State::Starting {
            self.start().wait().into_result()?;
        }
        match self.state() {
            State::Running => match self.stop().wait().into_result() {
                // Another caller stopped it first: wait for that stop instead.
                Err(SinkError::InvalidState { .. }) => self.wait_stop_operation(),
                other => other,
            },
            // A stop already requested or finished: its result, whoever asked for it.
            State::Stopping | State::Stopped => self.wait_stop_operation(),
            _ => self.shared.terminal_result(),
        }
    }

    fn wait_stop_operation(&self) -> Result<(), SinkError> {
        match self.shared.stop_operation() {
            Some(handle) => handle.wait().into_result(),
            None => self.shared.terminal_result(),
        }
    }
}

impl<E> Clone for AsyncSink<E> {
    fn clone(&self) -> Self {
        self.shared.handles.fetch_add(1, Ordering::Relaxed);
        Self {
            shared: self.shared.clone(),
        }
    }
}

impl<E> Drop for AsyncSink<E> {
    fn drop(&mut self) {
        if self.shared.handles.fetch_sub(1, Ordering::AcqRel) == 1 {
            // Nobody can log, stop or flush any more: let the driver finish.
            if self.shared.state() == State::Running {
                drop(self.shared.stop());
            } else {
                self.shared.wake_driver();
            }
        }
    }
}

impl<E> fmt::Debug for AsyncSink<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AsyncSink")
            .field("state", &self.state())
            .field("stats", &self.stats())
            .finish_non_exhaustive()
    }
}

impl<E> AsyncSink<E> {
    /// Whether `self` and `other` are handles on the same sink.
    pub fn same_sink(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.shared, &other.shared)
    }
}
