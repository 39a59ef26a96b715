//! Sinks: a synchronous, thread-safe `log(event)` in front of an asynchronous dispatcher.
//!
//! (For maintainers: one concept, `AsyncSink`'s public face; some 620 lines, half of them
//! docs: the state, the driver and the waits are in files of their own.)
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
//! Those timeouts are timers on the driver's own executor: they cut off user code that is
//! *pending*, not user code that *blocks* the thread (a `std::thread::sleep`, a blocking
//! write). Nothing on that thread can. A [`Terminator`](crate::rt::Terminator)'s deadline
//! can: past it the terminator ends the sink from outside the driver, counts what is left
//! as failed and leaves the thread behind ([`SinkConfig::terminate_timeout`]). The built-in
//! sinks never block their thread: the [writer](sinks::WriterSink) does its I/O on a
//! blocking pool.
//!
//! # Batches over latency
//!
//! The driver takes every queued event, up to [`SinkConfig::batch_size`], as one batch,
//! going round the producers' lanes (each batch starts with the lane after the one the
//! previous batch started with, so one producer's backlog does not hold the others back).
//! When a batch was small (the lanes nearly empty) it pauses for a few dozen CPU pause
//! instructions before taking the next, and before it parks it keeps looking for work a
//! little longer, checking every few dozen nanoseconds; a producer blocked on a full lane
//! likewise retries briefly before it parks. An event may thus wait a few hundred
//! nanoseconds longer to be dispatched; in exchange producers and driver do not fight over
//! the same ring slots event by event (figures in BENCHMARKS.md).
//!
//! A driver that finds no work parks, and the next event's producer wakes it. The
//! producer's side of that handshake costs nothing (see [the queue](crate::queue)); the
//! driver's side makes it exact with a `membarrier` system call on Linux, which interrupts
//! once every CPU running a thread of the process. So that a sink whose events come a few
//! microseconds apart does not interrupt its host's CPUs thousands of times a second, a
//! park within a millisecond of an exact one is a *nap*: the handshake is then not exact —
//! in a race of a few nanoseconds a producer can miss the driver's mark — and a nap lasts
//! at most a millisecond, so an event missed that way waits at most that long (the driver
//! then makes the handshake exact and parks until it is woken). The heavy barrier and the
//! naps' timer cost a driver at most one each a millisecond; an idle sink costs its driver
//! one barrier and then nothing.
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
//! table of outcomes and the counter each one lands in; the crate docs' ["What is lost,
//! when"](crate#what-is-lost-when) go through the ways a program ends. What was dropped,
//! refused or failed is also handed to the dispatcher, in the stream, as a [`LossReport`];
//! a dispatcher that panicked is restarted, or not, by its [`RestartPolicy`].
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
//!   the driver has done its part; so do what is built on them: a recorder's
//!   `snapshot_now_blocking()` and `flush_blocking()`, the statistics'
//!   `calculate_blocking()` and the `wait()` of their `start()` and `stop()`, the `log`
//!   facade's `log::logger().flush()`, and `Terminator::terminate()`.
//! - [`send()`](AsyncSink::send), [`flush()`](AsyncSink::flush), [`start()`](AsyncSink::start)
//!   and [`stop()`](AsyncSink::stop) return at once; the futures they return wait when
//!   awaited, without blocking the thread. **Async code uses those**: `send(event).await`,
//!   `flush().await`, `stop().await`.
//!
//! ## A blocking call that could only wait for itself returns `WouldDeadlock`
//!
//! A blocking wait needs the sink's driver to run. When only the calling thread can run
//! it, waiting would never end, so the call returns at once instead — only when it would
//! have had to wait (a flush already served, room in the queue, a finished operation come
//! back as usual, and `log()` under `Block` checks nothing until the queue is full):
//!
//! | call | returns at once |
//! |---|---|
//! | `log()` under `Block`, `log_blocking()`, `send(e).wait()` | [`LogError::WouldDeadlock`] with the event |
//! | `send(e).wait_timeout(..)`, `wait_deadline(..)` | [`SendTimeoutError::WouldDeadlock`](crate::error::SendTimeoutError::WouldDeadlock) with the event |
//! | `flush_blocking()`, `flush().wait*()`, a recorder's `snapshot_now_blocking()`, the statistics' `calculate_blocking()` | [`SinkError::WouldDeadlock`] (in `RecorderError::Sink`, `StatsError::Recorder`) |
//! | `start().wait()`, `stop().wait()` | a failed [`OpResult`](crate::OpResult) with [`SinkError::WouldDeadlock`] |
//! | `start().wait_timeout(..)`, `stop().wait_deadline(..)`, … | [`WaitTimeoutError`](crate::error::WaitTimeoutError) with the handle, [`is_would_deadlock()`](crate::error::WaitTimeoutError::is_would_deadlock) |
//! | `log::logger().flush()` (facade `log`) | returns without waiting |
//!
//! The reason code is [`ErrorReason::WouldDeadlock`](crate::ErrorReason::WouldDeadlock)
//! (`WOULD_DEADLOCK`). Whatever was requested goes on: a flush is served and a stop
//! completes once the driver runs again. `Terminator::terminate()` called on the runtime's
//! own thread is refused as before, with `CalledFromRuntimeThread`.
//!
//! Which calls are refused — exactly those that could never end:
//!
//! - **from inside the sink's own code**: a dispatch, a flush or a hook of that sink (or a
//!   metric of that recorder, a store of those statistics), under any executor — the
//!   driver is being polled by the very call that waits. Logging under `Block` from a
//!   dispatcher into its own full queue no longer stalls the sink for good;
//! - **on the single-threaded executor thread that runs the driver**: the sink's own
//!   `rt::thread` or `rt::smol::create` thread, a `MetricsRuntime` thread (a recorder
//!   waiting on another recorder of the same runtime), and, with the `tokio` feature, a
//!   tokio current-thread runtime whose task (or `block_on` future) waits for a driver it
//!   runs.
//!
//! Not refused, because another thread may end the wait, or because mvx cannot see that
//! the caller and the driver share a thread: a multi-threaded executor (a tokio
//! multi-thread runtime, a `futures` `ThreadPool`, a smol `Executor` run by several
//! threads) — there the call waits, and on a tokio multi-thread worker it may still hang
//! (the driver it wakes waits in that worker's LIFO slot, which other workers do not
//! steal: use `.await`, or `tokio::task::block_in_place`); other single-threaded
//! executors (`LocalPool`, smol's `LocalExecutor`, tokio's `LocalSet`, a tokio
//! current-thread runtime without the `tokio` feature); and an awaited wait driven by
//! another crate's nested `block_on`. The detection costs a driver's poll one
//! thread-local read and one relaxed load and two relaxed stores, and a blocking call that
//! must wait one relaxed load and one thread-local read; a call that need not wait, and
//! `log()` while there is room, pay nothing.
//!
//! # Allocation
//!
//! The shared lane's ring is allocated once, by [`AsyncSink::new`] (a ring that cannot be
//! allocated is an error, never an abort: see there), and each producer thread's lane on
//! that thread's first event for the sink ([the queue module](crate::queue#allocation)).
//! After a thread's first event, `log()` on an accepted or refused event does not
//! allocate; neither does the driver while it dispatches, nor a blocking
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
use std::time::Instant;

use futures::task::{FutureObj, Spawn};

pub use self::budget::{DEFAULT_POLL_BUDGET, PollBudget};
pub use self::config::{
    DEFAULT_BATCH_SIZE, DEFAULT_JOIN_GRACE, DEFAULT_START_TIMEOUT, DEFAULT_STOP_TIMEOUT, SinkConfig,
};
pub use self::dispatch::{BatchError, Discard, Dispatch, MissingDispatch};
pub use self::event::{FieldValue, Level, LogEvent};
pub use self::format::{DisplayLines, JsonLines, LineFormat, LineFormatName};
pub use self::loss::{DEFAULT_LOSS_REPORT_INTERVAL, LossReport};
pub use self::registry::{Describe, SinkDescriptor, SinkRegistry};
pub use self::restart::RestartPolicy;

pub(crate) use self::shared::{EndedFromOutside, Shared};
use crate::error::{LogError, SinkError};
use crate::lifecycle::{State, WaitHandle};
use crate::queue::{LogOutcome, OverflowPolicy, Pushed, QueueStats};
use crate::sync::{Arc, DriverSeat, Ordering, lock, seated};

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
    /// The shared lane's ring of `config.queue_capacity` events is allocated here, once;
    /// each producer thread's lane on that thread's first event ([the queue
    /// module](crate::queue)). Spawn the driver on the executor of your choice, then
    /// [`start`](Self::start) the sink.
    ///
    /// # When the ring cannot be allocated
    ///
    /// A capacity above [`MAX_QUEUE_CAPACITY`](crate::queue::MAX_QUEUE_CAPACITY), or a ring
    /// the allocator refuses, never aborts the process: the sink comes back already ended,
    /// in `Failure`, with [`SinkError::QueueAllocationFailed`] (the capacity asked for, and
    /// why). Its [`start`](Self::start) and [`flush`](Self::flush) return that error, as
    /// does [`last_error`](Self::last_error); `log` hands every event back
    /// (`LogError::NotAccepting` in `Failure`); `stop` is `InvalidState`; `stats().capacity`
    /// is 0. Its driver returns when first polled, dropping `dispatch`. The adapters and
    /// the components built on sinks return the error instead of such a sink:
    /// [`spawn_on`](Self::spawn_on), `rt::thread::create`, `rt::smol::create`,
    /// `MetricsRuntime::create_recorder`, `Statistics::new`.
    ///
    /// ```
    /// use mvx::State;
    /// use mvx::error::SinkError;
    /// use mvx::queue::{AllocationFailure, MAX_QUEUE_CAPACITY};
    /// use mvx::sink::{AsyncSink, Discard, SinkConfig};
    ///
    /// let config = SinkConfig::default().queue_capacity(MAX_QUEUE_CAPACITY + 1);
    /// let (sink, _driver) = AsyncSink::<u32>::new(Discard, config);
    /// assert_eq!(sink.state(), State::Failure);
    /// let refused = sink.start().wait().into_result().unwrap_err();
    /// assert!(matches!(
    ///     refused,
    ///     SinkError::QueueAllocationFailed {
    ///         capacity: 16_777_217,
    ///         failure: AllocationFailure::AboveMaximum,
    ///     }
    /// ));
    /// assert_eq!(refused.reason().as_str(), "QUEUE_ALLOCATION_FAILED");
    /// ```
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
        // The driver's poll entry: every poll is seated, so that a blocking wait made inside
        // it (the dispatcher's code) or on the single-threaded executor thread that polls it
        // is refused rather than hung.
        let driver = Driver {
            future: Box::pin(seated(
                shared.seat.clone(),
                driver::drive(driver::CancelGuard::new(shared.clone()), dispatch),
            )),
        };
        (Self { shared }, driver)
    }

    /// Creates a sink and spawns its driver with `spawner`.
    ///
    /// # Errors
    ///
    /// [`SinkError::QueueAllocationFailed`] when the queue's ring cannot be allocated (see
    /// [`new`](Self::new)); [`SinkError::EventLoopUnavailable`] when the spawner refuses the
    /// driver (its executor has shut down). The dispatcher is dropped.
    pub fn spawn_on<D, S>(dispatch: D, config: SinkConfig, spawner: &S) -> Result<Self, SinkError>
    where
        D: Dispatch<E>,
        S: Spawn + ?Sized,
    {
        let (sink, driver) = Self::new(dispatch, config);
        if let Err(error @ SinkError::QueueAllocationFailed { .. }) = sink.shared.terminal_result()
        {
            return Err(error);
        }
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
    /// ([`LogError::NotAccepting`]), under `RaiseError` when the pending-event limit is
    /// reached ([`LogError::QueueOverflow`]), and under `Block` when it is reached and only
    /// the calling thread could make room ([`LogError::WouldDeadlock`]; see
    /// [which calls block](self#which-calls-block)).
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
    /// it stops while this call waits); [`LogError::WouldDeadlock`] with the event, at
    /// once, when the limit is reached and only the calling thread could make room (see
    /// [which calls block](self#which-calls-block)).
    pub fn log_blocking(&self, event: E) -> Result<LogOutcome, LogError<E>> {
        // The common case, room in the queue, without building the wait.
        match self.try_accept(event, OverflowPolicy::Block) {
            Err(LogError::QueueOverflow(event)) => self.send(event).wait(),
            other => other,
        }
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
        let mut state = self.shared.state();
        if !state.accepts_events() {
            if state == State::Virgin && self.shared.config.lazy_start {
                drop(self.shared.start());
                state = self.shared.state();
            }
            if !state.accepts_events() {
                queue.record_refused();
                return Err(LogError::NotAccepting { event, state });
            }
        }
        // The state is the sink's admission; its lanes' rings close right after it turns
        // (under the lifecycle lock): a push that finds its ring open is accepted before
        // the close, and dispatched by the stop.
        match queue.push(event, policy == OverflowPolicy::Drop) {
            Pushed::Accepted => Ok(LogOutcome::Accepted),
            Pushed::Dropped => Ok(LogOutcome::Dropped),
            Pushed::Full(event) => match policy {
                // Dropped by the push itself.
                OverflowPolicy::Drop => unreachable!("a full lane under `Drop` drops the event"),
                OverflowPolicy::RaiseError => {
                    queue.record_refused();
                    Err(LogError::QueueOverflow(event))
                }
                // A producer that waits for room tries again: not refused (yet).
                OverflowPolicy::Block => Err(LogError::QueueOverflow(event)),
            },
            Pushed::Closed(event) => {
                queue.record_refused();
                Err(LogError::NotAccepting {
                    event,
                    state: self.shared.state(),
                })
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
    /// As [`flush`](Self::flush); [`SinkError::WouldDeadlock`], at once, when only the
    /// calling thread could serve the flush (see
    /// [which calls block](self#which-calls-block)).
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
        match self.stop_until(None) {
            Some(result) => result,
            None => unreachable!("no deadline was set"),
        }
    }

    /// Stops (if running) and waits for the stop until `deadline`; `None` when the deadline
    /// passed first (the stop goes on). Returns the first error: a failed start, the
    /// stop's, or why the sink ended.
    pub(crate) fn stop_until(&self, deadline: Option<Instant>) -> Option<Result<(), SinkError>> {
        if self.state() == State::Starting {
            if let Err(error) = self.start().wait_until(deadline).ok()?.into_result() {
                return Some(Err(error));
            }
        }
        match self.state() {
            State::Running => match self.stop().wait_until(deadline).ok()?.into_result() {
                // Another caller stopped it first: wait for that stop instead.
                Err(SinkError::InvalidState { .. }) => self.wait_stop_operation(deadline),
                other => Some(other),
            },
            // A stop already requested or finished: its result, whoever asked for it.
            State::Stopping | State::Stopped => self.wait_stop_operation(deadline),
            _ => Some(self.shared.terminal_result()),
        }
    }

    /// Ends the sink from outside its driver, counting what is left as failed: what a
    /// terminator does past its deadline (see `Shared::end_from_outside`).
    pub(crate) fn end_from_outside(
        &self,
        timeout: std::time::Duration,
    ) -> Option<EndedFromOutside> {
        self.shared.end_from_outside(timeout)
    }

    fn wait_stop_operation(&self, deadline: Option<Instant>) -> Option<Result<(), SinkError>> {
        match self.shared.stop_operation() {
            Some(handle) => Some(handle.wait_until(deadline).ok()?.into_result()),
            None => Some(self.shared.terminal_result()),
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
    /// Who polls the sink's driver: for a driver future that wraps this sink's (the
    /// statistics'), to seat its own polls too. (Loom builds leave the statistics out.)
    #[cfg_attr(loom, allow(dead_code))]
    pub(crate) fn driver_seat(&self) -> Arc<DriverSeat> {
        self.shared.seat.clone()
    }

    /// Whether `self` and `other` are handles on the same sink.
    pub fn same_sink(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.shared, &other.shared)
    }
}
