//! Lifecycle states, operations and the handles that wait for them.
//!
//! A component (a sink, a recorder) moves through the states of [`State`]. Only these
//! transitions exist:
//!
//! ```text
//! Virgin ──start()──▶ Starting ──on_starting ok──▶ Running ──stop()──▶ Stopping ──▶ Stopped
//!                        │                           │                    │
//!                        └─ on_starting failed ──▶ Failure ◀── dispatcher panicked ─┘
//!
//! Virgin, Starting, Running, Stopping ── driver dropped ──▶ Cancelled
//! ```
//!
//! A [`Terminator`](crate::rt::Terminator) past its deadline ends a sink from outside its
//! driver along the same edges: `Stopping ──▶ Stopped`, any other live state `──▶
//! Cancelled`.
//!
//! `Stopped`, `Failure` and `Cancelled` are terminal: a component is not restarted.
//! ([`State::can_transition_to`] is the table.) The state lives in one atomic, so reading it
//! is a single load; transitions are made under a small lock that also holds the operation
//! records, so that an operation is never created after the transition that should have
//! completed it.
//!
//! [`start()`](crate::sink::AsyncSink::start) and [`stop()`](crate::sink::AsyncSink::stop)
//! return a [`WaitHandle`]: await it, or block on it from synchronous code with
//! [`WaitHandle::wait`] (or its deadline forms). All yield an [`OpResult`]. Every handle of
//! one operation sees the same result — but for a blocking wait refused with
//! [`WouldDeadlock`](crate::error::SinkError::WouldDeadlock), which is that waiter's
//! alone.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use crate::error::{SinkError, WaitTimeoutError};
use crate::sync::{
    Arc, AtomicU8, DriverSeat, Interrupted, Mutex, MutexGuard, Ordering, Signal, Wait, Waiter,
    deadline_after, lock,
};

/// The lifecycle state of a component.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum State {
    /// Created, not started yet.
    Virgin = 0,
    /// `start()` was called; the `on_starting` hook runs. Events are already accepted and
    /// wait in the queue until the hook succeeds.
    Starting = 1,
    /// Accepting and dispatching events.
    Running = 2,
    /// `stop()` was called: no new events are accepted; accepted ones are being drained.
    Stopping = 3,
    /// Stopped normally (terminal).
    Stopped = 4,
    /// A start hook failed or the dispatcher panicked (terminal).
    Failure = 5,
    /// The driver was dropped while the component was live (terminal).
    Cancelled = 6,
}

impl State {
    /// Every state, in declaration order.
    pub const ALL: [State; 7] = [
        State::Virgin,
        State::Starting,
        State::Running,
        State::Stopping,
        State::Stopped,
        State::Failure,
        State::Cancelled,
    ];

    /// The state's name in upper case, such as `"RUNNING"`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Virgin => "VIRGIN",
            Self::Starting => "STARTING",
            Self::Running => "RUNNING",
            Self::Stopping => "STOPPING",
            Self::Stopped => "STOPPED",
            Self::Failure => "FAILURE",
            Self::Cancelled => "CANCELLED",
        }
    }

    /// Whether no further transition can happen from this state.
    pub const fn is_terminal(self) -> bool {
        matches!(self, Self::Stopped | Self::Failure | Self::Cancelled)
    }

    /// Whether events are accepted in this state (`Starting` and `Running`).
    pub const fn accepts_events(self) -> bool {
        matches!(self, Self::Starting | Self::Running)
    }

    /// Whether `self → next` is one of the legal transitions.
    ///
    /// # Examples
    ///
    /// ```
    /// use mvx::State;
    ///
    /// assert!(State::Running.can_transition_to(State::Stopping));
    /// assert!(!State::Stopped.can_transition_to(State::Starting));
    /// ```
    pub const fn can_transition_to(self, next: State) -> bool {
        use State::*;
        matches!(
            (self, next),
            (Virgin, Starting)
                | (Starting, Running)
                | (Running, Stopping)
                | (Stopping, Stopped)
                | (Starting, Failure)
                | (Running, Failure)
                | (Stopping, Failure)
                | (Virgin, Cancelled)
                | (Starting, Cancelled)
                | (Running, Cancelled)
                | (Stopping, Cancelled)
        )
    }

    pub(crate) const fn from_u8(value: u8) -> State {
        match value {
            0 => Self::Virgin,
            1 => Self::Starting,
            2 => Self::Running,
            3 => Self::Stopping,
            4 => Self::Stopped,
            5 => Self::Failure,
            _ => Self::Cancelled,
        }
    }
}

impl fmt::Display for State {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A lifecycle operation.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Op {
    /// `start()`.
    Start,
    /// `stop()`.
    Stop,
}

impl fmt::Display for Op {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Start => "START",
            Self::Stop => "STOP",
        })
    }
}

/// The result of a lifecycle operation, shared by every waiter.
#[derive(Clone, Debug)]
#[must_use = "an operation result says whether the operation succeeded"]
pub struct OpResult<Err = SinkError> {
    /// The operation.
    pub op: Op,
    /// Whether it succeeded; `error` is `None` exactly when this is `true`.
    pub success: bool,
    /// Why it failed.
    pub error: Option<Err>,
}

impl<Err> OpResult<Err> {
    /// A successful result.
    pub fn succeeded(op: Op) -> Self {
        Self {
            op,
            success: true,
            error: None,
        }
    }

    /// A failed result.
    pub fn failed(op: Op, error: Err) -> Self {
        Self {
            op,
            success: false,
            error: Some(error),
        }
    }

    /// `Ok(())` on success, else the error.
    ///
    /// # Errors
    ///
    /// The operation's error when it failed.
    pub fn into_result(self) -> Result<(), Err> {
        match self.error {
            None => Ok(()),
            Some(error) => Err(error),
        }
    }
}

/// One lifecycle operation in flight: its result, once known, the signal its waiters
/// listen on, and the seat of the driver that completes it.
pub(crate) struct Operation<Err> {
    op: Op,
    result: Mutex<Option<OpResult<Err>>>,
    done: Signal,
    /// Who polls the driver that completes the operation; `None` for one already complete.
    driver: Option<Arc<DriverSeat>>,
}

impl<Err: Clone> Operation<Err> {
    /// An operation that the driver seated at `driver` completes.
    pub(crate) fn new(op: Op, driver: Option<Arc<DriverSeat>>) -> Arc<Self> {
        Arc::new(Self {
            op,
            result: Mutex::new(None),
            done: Signal::new(),
            driver,
        })
    }

    /// Records the result and wakes every waiter. Only the first completion counts.
    pub(crate) fn complete(&self, error: Option<Err>) {
        {
            let mut result = lock(&self.result);
            if result.is_some() {
                return;
            }
            *result = Some(OpResult {
                op: self.op,
                success: error.is_none(),
                error,
            });
        }
        self.done.notify_all();
    }

    pub(crate) fn result(&self) -> Option<OpResult<Err>> {
        lock(&self.result).clone()
    }
}

/// The wait for an operation's result, written once: [`WaitHandle`] awaits it or blocks on
/// it.
struct OpWait<Err> {
    operation: Arc<Operation<Err>>,
}

impl<Err: Clone> Wait for OpWait<Err> {
    type Output = OpResult<Err>;

    fn parts(&mut self) -> (&Signal, impl FnMut() -> Poll<OpResult<Err>> + '_) {
        let operation = &*self.operation;
        (&operation.done, move || {
            operation.result().map_or(Poll::Pending, Poll::Ready)
        })
    }

    fn would_deadlock(&self) -> bool {
        self.operation
            .driver
            .as_ref()
            .is_some_and(|driver| driver.would_deadlock())
    }
}

/// Waits for a lifecycle operation; returned by `start()` and `stop()`.
///
/// Await it from async code, or block on it from synchronous code with
/// [`wait`](Self::wait), [`wait_timeout`](Self::wait_timeout) or
/// [`wait_deadline`](Self::wait_deadline); each yields the operation's [`OpResult`], and
/// every handle of one operation sees the same result. Dropping the handle does not cancel
/// the operation, and neither does a wait that times out: its error hands the handle back.
///
/// The blocking forms wait for the driver. One that could only wait for itself — called
/// from inside the sink's own code, or on the single-threaded executor thread that runs
/// its driver — returns [`WouldDeadlock`](SinkError::WouldDeadlock) at once instead (see
/// [which calls block](crate::sink#which-calls-block)); the operation goes on.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use mvx::sink::{AsyncSink, Discard, SinkConfig};
///
/// let (sink, driver) = AsyncSink::<u32>::new(Discard, SinkConfig::default());
/// // Nobody polls the driver yet: the start cannot finish.
/// let start = sink.start();
/// let still_starting = start.wait_timeout(Duration::from_millis(10)).unwrap_err();
/// assert_eq!(still_starting.op(), mvx::Op::Start);
/// // Poll the driver, and keep waiting on the same start.
/// let driver = std::thread::spawn(move || futures::executor::block_on(driver));
/// assert!(still_starting.into_handle().wait().success);
/// assert!(sink.stop().wait().success);
/// driver.join().unwrap();
/// ```
#[must_use = "futures do nothing unless you .await or poll them"]
pub struct WaitHandle<Err: Clone = SinkError> {
    waiter: Waiter<OpWait<Err>>,
}

impl<Err: Clone> WaitHandle<Err> {
    /// A handle on an operation that has already finished with `result`.
    pub(crate) fn ready(result: OpResult<Err>) -> Self {
        let operation = Operation::new(result.op, None);
        operation.complete(result.error);
        Self::waiting(operation)
    }

    pub(crate) fn waiting(operation: Arc<Operation<Err>>) -> Self {
        Self {
            waiter: Waiter::new(OpWait { operation }),
        }
    }

    /// The operation waited for.
    pub fn op(&self) -> Op {
        self.waiter.wait_ref().operation.op
    }

    /// The result, if the operation has already finished. Does not wait.
    pub fn try_result(&self) -> Option<OpResult<Err>> {
        self.waiter.wait_ref().operation.result()
    }
}

impl<Err: Clone + From<SinkError>> WaitHandle<Err> {
    /// Blocks the current thread until the operation finishes.
    ///
    /// A finished operation's result comes back at once. If it is still in flight and only
    /// this thread can run the driver that finishes it (it is inside that component's own
    /// code, or on the single-threaded executor thread that runs its driver), the result is
    /// a failure with [`SinkError::WouldDeadlock`], at once: for this waiter only, the
    /// operation goes on. Async code awaits the handle instead.
    pub fn wait(mut self) -> OpResult<Err> {
        match self.waiter.block(None) {
            Ok(result) => result,
            Err(Interrupted::WouldDeadlock) => {
                OpResult::failed(self.op(), SinkError::WouldDeadlock.into())
            }
            Err(Interrupted::DeadlinePassed) => unreachable!("no deadline was set"),
        }
    }

    /// Blocks the current thread until the operation finishes or `timeout` has passed.
    ///
    /// # Errors
    ///
    /// [`WaitTimeoutError`] when the operation is still in flight after `timeout`, or at
    /// once when waiting would deadlock (as [`wait`](Self::wait) says;
    /// [`WaitTimeoutError::is_would_deadlock`]); it hands the handle back, to keep waiting.
    pub fn wait_timeout(self, timeout: Duration) -> Result<OpResult<Err>, WaitTimeoutError<Err>> {
        self.wait_until(deadline_after(timeout))
    }

    /// Blocks the current thread until the operation finishes or `deadline` has passed.
    ///
    /// # Errors
    ///
    /// As [`wait_timeout`](Self::wait_timeout).
    pub fn wait_deadline(self, deadline: Instant) -> Result<OpResult<Err>, WaitTimeoutError<Err>> {
        self.wait_until(Some(deadline))
    }

    /// Blocks until the operation finishes or `deadline` (if any) has passed.
    pub(crate) fn wait_until(
        mut self,
        deadline: Option<Instant>,
    ) -> Result<OpResult<Err>, WaitTimeoutError<Err>> {
        match self.waiter.block(deadline) {
            Ok(result) => Ok(result),
            Err(Interrupted::DeadlinePassed) => Err(WaitTimeoutError::new(self)),
            Err(Interrupted::WouldDeadlock) => Err(WaitTimeoutError::would_deadlock(self)),
        }
    }
}

impl<Err: Clone> Future for WaitHandle<Err> {
    type Output = OpResult<Err>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<OpResult<Err>> {
        self.get_mut().waiter.poll_async(cx)
    }
}

impl<Err: Clone> fmt::Debug for WaitHandle<Err> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WaitHandle").finish_non_exhaustive()
    }
}

/// The state of a component and the operations in flight.
pub(crate) struct Lifecycle<Err> {
    state: AtomicU8,
    control: Mutex<Control<Err>>,
}

/// What is changed only under the lifecycle lock.
pub(crate) struct Control<Err> {
    pub(crate) start: Option<Arc<Operation<Err>>>,
    pub(crate) stop: Option<Arc<Operation<Err>>>,
    pub(crate) stop_requested_at: Option<Instant>,
    pub(crate) start_requested_at: Option<Instant>,
}

impl<Err: Clone> Lifecycle<Err> {
    pub(crate) fn new() -> Self {
        Self {
            state: AtomicU8::new(State::Virgin as u8),
            control: Mutex::new(Control {
                start: None,
                stop: None,
                stop_requested_at: None,
                start_requested_at: None,
            }),
        }
    }

    /// The current state: one atomic load.
    pub(crate) fn state(&self) -> State {
        State::from_u8(self.state.load(Ordering::Acquire))
    }

    /// Takes the lifecycle lock. Transitions happen only while it is held.
    pub(crate) fn lock(&self) -> MutexGuard<'_, Control<Err>> {
        lock(&self.control)
    }

    /// Moves `from → to`; the caller holds the lifecycle lock.
    ///
    /// Returns the actual state when it is not `from`.
    pub(crate) fn transition(
        &self,
        _held: &mut MutexGuard<'_, Control<Err>>,
        from: State,
        to: State,
    ) -> Result<(), State> {
        debug_assert!(
            from.can_transition_to(to),
            "illegal transition {from} -> {to}"
        );
        self.state
            .compare_exchange(from as u8, to as u8, Ordering::AcqRel, Ordering::Acquire)
            .map(|_| ())
            .map_err(State::from_u8)
    }
}
