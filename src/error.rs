//! Errors, their stable reason codes, and the shared cause they carry.
//!
//! Every error of mvx has a [`reason()`](SinkError::reason): a stable code to match on, log
//! or count, independent of the message text. The core's errors return an [`ErrorReason`];
//! a component's return the component's reason enum, which carries the core's reason when
//! the failure is the core's (see [`ErrorReason`]). Errors that travel inside an
//! [`OpResult`](crate::OpResult) are seen by every waiter of that operation, so they are
//! `Clone`; the user error or panic behind them is a [`Cause`], which shares the original
//! behind an `Arc`.
//!
//! An error keeps its cause in [`source()`](std::error::Error::source) rather than
//! repeating it in its message; [`Report`] prints the whole chain on one line.
//!
//! Errors that hand a value back — an event the sink could not accept — are generic over
//! that value, like `async_channel::TrySendError<T>`: see [`LogError`].
//!
//! # Panics in user code
//!
//! A panic in user code that mvx calls — a dispatcher or a hook, a metric, a snapshot
//! source, a store, an agent's `connect`, `teardown`, `on_signal` or task — is caught, and
//! becomes an error whose [`Cause`] keeps the panic message; it never poisons or deadlocks
//! mvx. What the component does next is its own rule: see
//! [`Dispatch`](crate::sink::Dispatch) (the sink fails),
//! [`metrics`](crate::metrics#what-is-lost-and-when) (the metric is disabled), the agent's
//! docs ([`crate::agent`]). Catching needs `panic = "unwind"`, the default: under
//! `panic = "abort"` a panic in user code aborts the process.
//!
//! (For maintainers: `error.rs` is one concept, the core's errors, a little over 500 lines,
//! about a quarter of them docs; the reason codes are in `error/reason.rs`.)

use std::error::Error as StdError;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use crate::lifecycle::State;
use crate::queue::{AllocationFailure, QueueStats};

mod reason;

pub use self::reason::ErrorReason;
pub(crate) use self::reason::component_reason;

/// The error type user code returns from hooks and dispatch: any boxed error.
pub type BoxError = Box<dyn StdError + Send + Sync + 'static>;

/// The error or panic of user code behind an mvx error, shared by every waiter.
///
/// A returned error keeps its original type (see [`downcast_ref`](Self::downcast_ref)); a
/// caught panic keeps its message (see [`panic_message`](Self::panic_message)).
#[derive(Clone)]
pub struct Cause {
    inner: Arc<CauseInner>,
}

enum CauseInner {
    Error(BoxError),
    Panic(String),
}

impl Cause {
    /// Wraps an error returned by user code.
    pub fn from_error(error: impl Into<BoxError>) -> Self {
        Self {
            inner: Arc::new(CauseInner::Error(error.into())),
        }
    }

    /// Wraps a panic payload caught from user code, keeping its message.
    pub fn from_panic(payload: Box<dyn std::any::Any + Send>) -> Self {
        let message = if let Some(text) = payload.downcast_ref::<&'static str>() {
            (*text).to_owned()
        } else if let Some(text) = payload.downcast_ref::<String>() {
            text.clone()
        } else {
            String::from("panic with a non-string payload")
        };
        Self {
            inner: Arc::new(CauseInner::Panic(message)),
        }
    }

    /// The panic message, if this cause is a caught panic.
    pub fn panic_message(&self) -> Option<&str> {
        match &*self.inner {
            CauseInner::Panic(message) => Some(message),
            CauseInner::Error(_) => None,
        }
    }

    /// Whether this cause is a caught panic.
    pub fn is_panic(&self) -> bool {
        matches!(&*self.inner, CauseInner::Panic(_))
    }

    /// The returned error, if it is of type `T`.
    pub fn downcast_ref<T: StdError + 'static>(&self) -> Option<&T> {
        match &*self.inner {
            CauseInner::Error(error) => error.downcast_ref::<T>(),
            CauseInner::Panic(_) => None,
        }
    }
}

impl fmt::Debug for Cause {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &*self.inner {
            CauseInner::Error(error) => f.debug_tuple("Error").field(error).finish(),
            CauseInner::Panic(message) => f.debug_tuple("Panic").field(message).finish(),
        }
    }
}

impl fmt::Display for Cause {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &*self.inner {
            CauseInner::Error(error) => fmt::Display::fmt(error, f),
            CauseInner::Panic(message) => write!(f, "panicked: {message}"),
        }
    }
}

impl StdError for Cause {
    fn source(&self) -> Option<&(dyn StdError + 'static)> {
        match &*self.inner {
            CauseInner::Error(error) => error.source(),
            CauseInner::Panic(_) => None,
        }
    }
}

/// Errors of sinks and of everything built on them (lifecycle operations, dispatch,
/// registry).
#[derive(Clone, Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SinkError {
    /// The executor refused to run the driver: it has shut down.
    #[error("the executor refused to run the driver: it has shut down")]
    EventLoopUnavailable,
    /// The operation is not valid in the current state.
    #[error("invalid state {actual}: the operation needs {}", StateList(expected))]
    InvalidState {
        /// The state the component was in.
        actual: State,
        /// The states in which the operation is valid.
        expected: &'static [State],
    },
    /// The `on_starting` hook returned an error or panicked; the sink is in `Failure`.
    #[error("the on_starting hook failed")]
    OnStartingHookFailed(#[source] Cause),
    /// The `on_stopped` hook returned an error or panicked; the sink is `Stopped`.
    #[error("the on_stopped hook failed")]
    OnStoppedHookFailed(#[source] Cause),
    /// A dispatch returned an error; its events were counted as failed.
    #[error("dispatch failed")]
    DispatchFailed(#[source] Cause),
    /// The dispatcher's `flush` returned an error.
    #[error("flushing the dispatcher failed")]
    FlushFailed(#[source] Cause),
    /// Dispatcher code panicked; the sink is in `Failure` and accepts nothing more.
    #[error("the dispatcher panicked")]
    DispatcherPanicked(#[source] Cause),
    /// Dispatcher code panicked, and the sink's
    /// [`RestartPolicy`](crate::sink::RestartPolicy) restarted the dispatcher: the events of
    /// the call that panicked were counted as failed, delivery goes on. Kept in
    /// `last_error()`; never the result of an operation.
    #[error("the dispatcher panicked and was restarted (restart {restarts})")]
    DispatcherRestarted {
        /// How many restarts the sink has made, this one included.
        restarts: u64,
        /// The panic.
        #[source]
        cause: Cause,
    },
    /// The dispatcher's [`on_loss`](crate::sink::Dispatch::on_loss) returned an error: the
    /// loss report it was handed may not have been written. Delivery goes on.
    #[error("handing the loss report to the dispatcher failed")]
    LossReportFailed(#[source] Cause),
    /// The driver was dropped while the sink was live.
    #[error("the driver was dropped before the sink stopped")]
    DispatcherCancelled,
    /// The stop did not finish within `stop_timeout`.
    #[error("stop timed out after {timeout:?}: {abandoned} accepted events were abandoned")]
    StopTimedOut {
        /// The configured stop timeout.
        timeout: Duration,
        /// How many accepted events were never dispatched (counted as failed).
        abandoned: u64,
    },
    /// The start hook (`on_starting`) did not finish within `start_timeout`: it was cut off
    /// and the sink is in `Failure`. Events logged while it was starting are counted as
    /// failed.
    #[error("the start hook timed out after {timeout:?}")]
    StartTimedOut {
        /// The configured start timeout.
        timeout: Duration,
    },
    /// Another sink is registered for the same resource with another configuration.
    #[error(
        "sink conflict on resource {resource:?}: registered with config {existing:?}, requested {requested:?}"
    )]
    DescriptorConflict {
        /// The shared resource key.
        resource: Vec<String>,
        /// The configuration key already registered.
        existing: Vec<String>,
        /// The configuration key requested.
        requested: Vec<String>,
    },
    /// A blocking wait (`flush().wait_timeout(..)`, `wait_deadline(..)`) reached its deadline
    /// first. The operation is not cancelled: a flush is still served, later.
    #[error("the deadline passed before the operation finished; it is still in flight")]
    WaitTimedOut,
    /// The ring of the sink's queue could not be allocated: the capacity is above
    /// [`MAX_QUEUE_CAPACITY`](crate::queue::MAX_QUEUE_CAPACITY), or the allocator refused
    /// the memory. The sink was created in `Failure` and accepts nothing; its start and
    /// flushes return this error (see [`AsyncSink::new`](crate::sink::AsyncSink::new)).
    #[error("could not allocate a queue for {capacity} events: {failure}")]
    QueueAllocationFailed {
        /// The capacity asked for (`SinkConfig::queue_capacity`).
        capacity: usize,
        /// Why.
        failure: AllocationFailure,
    },
    /// A [`Terminator`](crate::rt::Terminator)'s deadline passed before the sink stopped:
    /// it ended the sink from outside its driver (which may still be inside user code),
    /// counting every event still queued or in dispatch as failed. What the stop, flushes
    /// and `last_error()` report then; the terminator's own error is
    /// [`TerminateError::TimedOut`].
    #[error(
        "terminated after {timeout:?}, before the sink stopped: {abandoned} accepted events were abandoned"
    )]
    TerminateTimedOut {
        /// The terminator's deadline, as a time from its call.
        timeout: Duration,
        /// How many accepted events were abandoned (counted as failed).
        abandoned: u64,
    },
    /// A blocking wait (`flush_blocking`, `flush().wait*()`, `stop().wait()`, ...) would
    /// have waited for the sink's driver on the one thread that can run it — from inside
    /// the sink's own code, or on the single-threaded executor thread that runs its driver
    /// — and returned at once instead of waiting forever. The operation goes on: a flush is
    /// still served, a stop still happens, once the driver runs. Async code awaits instead
    /// (`flush().await`). [Which waits are refused](crate::sink#which-calls-block).
    ///
    /// Returned to this waiter only; other waiters of the same operation are not affected.
    #[error("waiting here would deadlock: only this thread can run the sink's driver")]
    WouldDeadlock,
    /// Anything else.
    #[error("unexpected error")]
    Unexpected(#[source] Cause),
}

impl SinkError {
    /// The stable reason code of this error.
    pub fn reason(&self) -> ErrorReason {
        match self {
            Self::EventLoopUnavailable => ErrorReason::EventLoopUnavailable,
            Self::InvalidState { .. } => ErrorReason::InvalidState,
            Self::OnStartingHookFailed(_) => ErrorReason::OnStartingHookFailed,
            Self::OnStoppedHookFailed(_) => ErrorReason::OnStoppedHookFailed,
            Self::DispatchFailed(_) => ErrorReason::DispatchFailed,
            Self::FlushFailed(_) => ErrorReason::FlushFailed,
            Self::DispatcherPanicked(_) => ErrorReason::DispatcherPanicked,
            Self::DispatcherRestarted { .. } => ErrorReason::DispatcherRestarted,
            Self::LossReportFailed(_) => ErrorReason::LossReportFailed,
            Self::DispatcherCancelled => ErrorReason::DispatcherCancelled,
            Self::StopTimedOut { .. } => ErrorReason::StopTimedOut,
            Self::StartTimedOut { .. } => ErrorReason::StartTimedOut,
            Self::DescriptorConflict { .. } => ErrorReason::DescriptorConflict,
            Self::WaitTimedOut => ErrorReason::WaitTimedOut,
            Self::QueueAllocationFailed { .. } => ErrorReason::QueueAllocationFailed,
            Self::TerminateTimedOut { .. } => ErrorReason::TerminateTimedOut,
            Self::WouldDeadlock => ErrorReason::WouldDeadlock,
            Self::Unexpected(_) => ErrorReason::Unexpected,
        }
    }

    /// The user error or panic behind this error, if any.
    pub fn cause(&self) -> Option<&Cause> {
        match self {
            Self::OnStartingHookFailed(cause)
            | Self::OnStoppedHookFailed(cause)
            | Self::DispatchFailed(cause)
            | Self::FlushFailed(cause)
            | Self::DispatcherPanicked(cause)
            | Self::DispatcherRestarted { cause, .. }
            | Self::LossReportFailed(cause)
            | Self::Unexpected(cause) => Some(cause),
            _ => None,
        }
    }
}

struct StateList(&'static [State]);

impl fmt::Display for StateList {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, state) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(" or ")?;
            }
            fmt::Display::fmt(state, f)?;
        }
        Ok(())
    }
}

/// An event that a sink did not accept, handed back to the caller.
///
/// Like `async_channel::TrySendError<T>`: nothing is lost, the caller decides what to do
/// with the event ([`into_inner`](Self::into_inner)). No case counts the event as
/// accepted; an overflow under [`OverflowPolicy::RaiseError`](crate::queue::OverflowPolicy)
/// is not counted as dropped either, since the caller still holds it.
#[derive(Clone, PartialEq, Eq)]
pub enum LogError<E> {
    /// The pending-event limit was reached (policy `RaiseError`).
    QueueOverflow(E),
    /// The sink is not accepting events in its current state.
    NotAccepting {
        /// The event, handed back.
        event: E,
        /// The state the sink was in.
        state: State,
    },
    /// The pending-event limit was reached under [`OverflowPolicy::Block`], and waiting for
    /// room would deadlock: only the calling thread can run the driver that frees it (the
    /// caller is the sink's own dispatcher, or on the single-threaded executor thread that
    /// runs its driver; see [`SinkError::WouldDeadlock`]). Returned at once, with the event.
    ///
    /// [`OverflowPolicy::Block`]: crate::queue::OverflowPolicy::Block
    WouldDeadlock(E),
}

impl<E> LogError<E> {
    /// The event that was not accepted.
    pub fn into_inner(self) -> E {
        match self {
            Self::QueueOverflow(event)
            | Self::NotAccepting { event, .. }
            | Self::WouldDeadlock(event) => event,
        }
    }

    /// The stable reason code: `QueueOverflow`, `InvalidState` or `WouldDeadlock`.
    pub fn reason(&self) -> ErrorReason {
        match self {
            Self::QueueOverflow(_) => ErrorReason::QueueOverflow,
            Self::NotAccepting { .. } => ErrorReason::InvalidState,
            Self::WouldDeadlock(_) => ErrorReason::WouldDeadlock,
        }
    }

    /// Whether the event was refused because the queue was full.
    pub fn is_overflow(&self) -> bool {
        matches!(self, Self::QueueOverflow(_))
    }
}

impl<E> fmt::Debug for LogError<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::QueueOverflow(_) => f.write_str("QueueOverflow(..)"),
            Self::NotAccepting { state, .. } => f
                .debug_struct("NotAccepting")
                .field("state", state)
                .finish_non_exhaustive(),
            Self::WouldDeadlock(_) => f.write_str("WouldDeadlock(..)"),
        }
    }
}

impl<E> fmt::Display for LogError<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::QueueOverflow(_) => f.write_str("the sink's pending-event limit is reached"),
            Self::NotAccepting { state, .. } => {
                write!(f, "the sink does not accept events while {state}")
            }
            Self::WouldDeadlock(_) => f.write_str(
                "the sink's pending-event limit is reached, and waiting for room here would \
                 deadlock: only this thread can run the sink's driver",
            ),
        }
    }
}

impl<E> StdError for LogError<E> {}

/// Displays an error followed by each of its sources, separated by `": "`, on one line.
///
/// # Examples
///
/// ```
/// use mvx::error::{Cause, Report, SinkError};
///
/// let error = SinkError::OnStartingHookFailed(Cause::from_error("connection refused"));
/// assert_eq!(
///     Report(&error).to_string(),
///     "the on_starting hook failed: connection refused"
/// );
/// ```
#[derive(Clone, Copy)]
pub struct Report<'a>(pub &'a (dyn StdError + 'a));

impl fmt::Debug for Report<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl fmt::Display for Report<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self.0, f)?;
        let mut source = self.0.source();
        while let Some(error) = source {
            write!(f, ": {error}")?;
            source = error.source();
        }
        Ok(())
    }
}

/// Why an adapter could not create a component on its runtime.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CreateError {
    /// The runtime thread could not be spawned.
    #[error("could not spawn the runtime thread")]
    ThreadSpawn(#[source] std::io::Error),
    /// The runtime thread ended before the component was built.
    #[error("the runtime thread ended before the component was built")]
    RuntimeGone,
    /// Building or starting the component failed: `EventLoopUnavailable`, a failed start
    /// (`OnStartingHookFailed`), or a registry conflict (`DescriptorConflict`).
    #[error(transparent)]
    Sink(#[from] SinkError),
}

impl CreateError {
    /// The stable reason code of this error.
    pub fn reason(&self) -> ErrorReason {
        match self {
            Self::ThreadSpawn(_) => ErrorReason::ThreadSpawnFailed,
            Self::RuntimeGone => ErrorReason::EventLoopUnavailable,
            Self::Sink(error) => error.reason(),
        }
    }
}

/// Why a [`Terminator`](crate::rt::Terminator) could not terminate cleanly.
#[derive(Clone, Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TerminateError {
    /// `terminate()` was called on the runtime's own thread, which it would have to join.
    #[error("terminate() was called from the runtime's own thread, which it cannot join")]
    CalledFromRuntimeThread,
    /// The component did not stop cleanly (the runtime was shut down all the same).
    #[error("the component did not stop cleanly")]
    Stop {
        /// Why the stop failed.
        #[source]
        error: SinkError,
        /// The component's final counters, read after its runtime thread was joined
        /// (boxed: they would double the size of every `TerminateError`).
        stats: Box<QueueStats>,
    },
    /// The runtime thread panicked.
    #[error("the runtime thread panicked")]
    RuntimePanicked(#[source] Cause),
    /// The deadline passed first, at `stage`: what was left was abandoned. The call
    /// returned at the deadline, with final counters: every event still queued or in
    /// dispatch was counted as failed (`abandoned` of them), and the runtime thread was
    /// detached (not joined) — it ends on its own once the user code it runs returns.
    #[error(
        "terminate timed out after {timeout:?} while {stage}: {abandoned} accepted events were abandoned"
    )]
    TimedOut {
        /// The deadline, as a time from the call.
        timeout: Duration,
        /// What was still running at the deadline.
        stage: TerminateStage,
        /// How many accepted events were abandoned at the deadline (counted as failed).
        abandoned: u64,
        /// The component's final counters, read after the events were abandoned
        /// (boxed, as in `Stop`).
        stats: Box<QueueStats>,
    },
}

/// What a [`Terminator`](crate::rt::Terminator) was still waiting for when its deadline
/// passed: [`TerminateError::TimedOut`]'s `stage`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum TerminateStage {
    /// The start: the start hook had not returned.
    Start,
    /// The stop: events were still queued, or a flush or the stop hook had not returned.
    Stop,
    /// A dispatch: the dispatcher had not returned from a batch (blocked, or waiting on
    /// its backend); those events, and the ones queued behind them, were abandoned.
    Dispatch,
    /// The join: the component had stopped, but its runtime thread had not ended (another
    /// task on its executor, or a `Drop`, held it). Nothing was abandoned.
    Join,
}

impl TerminateStage {
    /// The stage in lower case words, such as `"dispatching"`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Start => "starting",
            Self::Stop => "stopping",
            Self::Dispatch => "dispatching",
            Self::Join => "joining the runtime thread",
        }
    }
}

impl fmt::Display for TerminateStage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl TerminateError {
    /// The component's final counters, when they are known: after a failed stop or a
    /// timeout.
    ///
    /// After `RuntimePanicked` the stop had finished; its counters are still read through
    /// any handle of the component (`AsyncSink::stats`).
    pub fn stats(&self) -> Option<QueueStats> {
        match self {
            Self::Stop { stats, .. } | Self::TimedOut { stats, .. } => Some(**stats),
            _ => None,
        }
    }

    /// The stable reason code of this error.
    pub fn reason(&self) -> ErrorReason {
        match self {
            Self::CalledFromRuntimeThread => ErrorReason::CalledFromRuntimeThread,
            Self::Stop { error, .. } => error.reason(),
            Self::RuntimePanicked(_) => ErrorReason::RuntimePanicked,
            Self::TimedOut { .. } => ErrorReason::TerminateTimedOut,
        }
    }
}

/// An event that [`Send::wait_timeout`](crate::sink::wait::Send::wait_timeout) or
/// [`wait_deadline`](crate::sink::wait::Send::wait_deadline) did not get into the queue,
/// handed back to the caller.
///
/// Like `crossbeam_channel::SendTimeoutError<T>`: nothing is counted, the caller still
/// holds the event ([`into_inner`](Self::into_inner)).
#[derive(Clone, PartialEq, Eq)]
pub enum SendTimeoutError<E> {
    /// The pending-event limit was still reached at the deadline.
    TimedOut(E),
    /// The sink is not accepting events (it stopped, or was never started).
    NotAccepting {
        /// The event, handed back.
        event: E,
        /// The state the sink was in.
        state: State,
    },
    /// The pending-event limit was reached and waiting for room would deadlock: returned at
    /// once, without waiting for the deadline (see [`LogError::WouldDeadlock`]).
    WouldDeadlock(E),
}

impl<E> SendTimeoutError<E> {
    /// The event that was not accepted.
    pub fn into_inner(self) -> E {
        match self {
            Self::TimedOut(event)
            | Self::NotAccepting { event, .. }
            | Self::WouldDeadlock(event) => event,
        }
    }

    /// The stable reason code: `WaitTimedOut`, `InvalidState` or `WouldDeadlock`.
    pub fn reason(&self) -> ErrorReason {
        match self {
            Self::TimedOut(_) => ErrorReason::WaitTimedOut,
            Self::NotAccepting { .. } => ErrorReason::InvalidState,
            Self::WouldDeadlock(_) => ErrorReason::WouldDeadlock,
        }
    }

    /// Whether the deadline passed while the queue was full.
    pub fn is_timeout(&self) -> bool {
        matches!(self, Self::TimedOut(_))
    }
}

impl<E> fmt::Debug for SendTimeoutError<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::TimedOut(_) => f.write_str("TimedOut(..)"),
            Self::NotAccepting { state, .. } => f
                .debug_struct("NotAccepting")
                .field("state", state)
                .finish_non_exhaustive(),
            Self::WouldDeadlock(_) => f.write_str("WouldDeadlock(..)"),
        }
    }
}

impl<E> fmt::Display for SendTimeoutError<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::TimedOut(_) => {
                f.write_str("the sink's pending-event limit was still reached at the deadline")
            }
            Self::NotAccepting { state, .. } => {
                write!(f, "the sink does not accept events while {state}")
            }
            Self::WouldDeadlock(_) => f.write_str(
                "the sink's pending-event limit is reached, and waiting for room here would \
                 deadlock: only this thread can run the sink's driver",
            ),
        }
    }
}

impl<E> StdError for SendTimeoutError<E> {}

/// A lifecycle operation still in flight when a [`WaitHandle`](crate::WaitHandle)'s
/// `wait_timeout` or `wait_deadline` gave up — its deadline passed, or waiting would have
/// deadlocked ([`is_would_deadlock`](Self::is_would_deadlock)); it hands the handle back.
///
/// The operation is not cancelled: [`into_handle`](Self::into_handle) and keep waiting
/// (from another thread, or awaiting it, after a `WouldDeadlock`), or drop it.
pub struct WaitTimeoutError<Err: Clone = SinkError> {
    handle: crate::WaitHandle<Err>,
    would_deadlock: bool,
}

impl<Err: Clone> WaitTimeoutError<Err> {
    /// The deadline passed.
    pub(crate) fn new(handle: crate::WaitHandle<Err>) -> Self {
        Self {
            handle,
            would_deadlock: false,
        }
    }

    /// Waiting would have deadlocked (see [`SinkError::WouldDeadlock`]).
    pub(crate) fn would_deadlock(handle: crate::WaitHandle<Err>) -> Self {
        Self {
            handle,
            would_deadlock: true,
        }
    }

    /// Whether the wait was refused because it would have deadlocked, rather than timed
    /// out.
    pub fn is_would_deadlock(&self) -> bool {
        self.would_deadlock
    }

    /// The operation still in flight.
    pub fn op(&self) -> crate::Op {
        self.handle.op()
    }

    /// The handle on the operation, to keep waiting.
    pub fn into_handle(self) -> crate::WaitHandle<Err> {
        self.handle
    }

    /// The stable reason code: `WaitTimedOut`, or `WouldDeadlock`.
    pub fn reason(&self) -> ErrorReason {
        if self.would_deadlock {
            ErrorReason::WouldDeadlock
        } else {
            ErrorReason::WaitTimedOut
        }
    }
}

impl<Err: Clone> fmt::Debug for WaitTimeoutError<Err> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WaitTimeoutError")
            .field("op", &self.op())
            .field("would_deadlock", &self.would_deadlock)
            .finish_non_exhaustive()
    }
}

impl<Err: Clone> fmt::Display for WaitTimeoutError<Err> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.would_deadlock {
            write!(
                f,
                "the {} operation is still in flight, and waiting for it here would deadlock",
                self.op()
            )
        } else {
            write!(
                f,
                "the {} operation is still in flight after the deadline",
                self.op()
            )
        }
    }
}

impl<Err: Clone> StdError for WaitTimeoutError<Err> {}
