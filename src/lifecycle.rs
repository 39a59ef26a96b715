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
//! `Stopped`, `Failure` and `Cancelled` are terminal: a component is not restarted.
//! ([`State::can_transition_to`] is the table.) The state lives in one atomic, so reading it
//! is a single load; transitions are made under a small lock that also holds the operation
//! records, so that an operation is never created after the transition that should have
//! completed it.
//!
//! [`start()`](crate::sink::AsyncSink::start) and [`stop()`](crate::sink::AsyncSink::stop)
//! return a [`WaitHandle`]: await it, or call [`WaitHandle::wait`] from synchronous code.
//! Both yield an [`OpResult`]. Every handle of one operation sees the same result.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Instant;

use event_listener::{Event, EventListener, Listener};

use crate::error::SinkError;
use crate::sync::{Arc, AtomicU8, Mutex, MutexGuard, Ordering, lock};

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

/// One lifecycle operation in flight: its result, once known, and the waiters' event.
pub(crate) struct Operation<Err> {
    op: Op,
    result: Mutex<Option<OpResult<Err>>>,
    done: Event,
}

impl<Err: Clone> Operation<Err> {
    pub(crate) fn new(op: Op) -> Arc<Self> {
        Arc::new(Self {
            op,
            result: Mutex::new(None),
            done: Event::new(),
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
        self.done.notify(usize::MAX);
    }

    pub(crate) fn result(&self) -> Option<OpResult<Err>> {
        lock(&self.result).clone()
    }
}

/// Waits for a lifecycle operation; returned by `start()` and `stop()`.
///
/// Await it from async code, or call [`wait`](Self::wait) from synchronous code; both yield
/// the operation's [`OpResult`]. Dropping the handle does not cancel the operation.
#[must_use = "a wait handle does nothing unless awaited or waited on; drop it to ignore the result"]
pub struct WaitHandle<Err = SinkError> {
    inner: WaitInner<Err>,
}

enum WaitInner<Err> {
    Ready(Option<OpResult<Err>>),
    Waiting {
        operation: Arc<Operation<Err>>,
        listener: Option<EventListener>,
    },
}

impl<Err: Clone> WaitHandle<Err> {
    pub(crate) fn ready(result: OpResult<Err>) -> Self {
        Self {
            inner: WaitInner::Ready(Some(result)),
        }
    }

    pub(crate) fn waiting(operation: Arc<Operation<Err>>) -> Self {
        Self {
            inner: WaitInner::Waiting {
                operation,
                listener: None,
            },
        }
    }

    /// The result, if the operation has already finished. Does not wait.
    pub fn try_result(&self) -> Option<OpResult<Err>> {
        match &self.inner {
            WaitInner::Ready(result) => result.clone(),
            WaitInner::Waiting { operation, .. } => operation.result(),
        }
    }

    /// Blocks the current thread until the operation finishes.
    ///
    /// Do not call this from a thread that must drive the operation (the executor thread the
    /// driver runs on): it would wait for itself.
    pub fn wait(self) -> OpResult<Err> {
        match self.inner {
            WaitInner::Ready(Some(result)) => result,
            WaitInner::Ready(None) => panic!("WaitHandle polled after completion"),
            WaitInner::Waiting { operation, .. } => loop {
                if let Some(result) = operation.result() {
                    return result;
                }
                let listener = operation.done.listen();
                if let Some(result) = operation.result() {
                    return result;
                }
                listener.wait();
            },
        }
    }
}

impl<Err> Unpin for WaitHandle<Err> {}

impl<Err: Clone> Future for WaitHandle<Err> {
    type Output = OpResult<Err>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<OpResult<Err>> {
        let this = self.get_mut();
        match &mut this.inner {
            WaitInner::Ready(result) => {
                Poll::Ready(result.take().expect("WaitHandle polled after completion"))
            }
            WaitInner::Waiting {
                operation,
                listener,
            } => loop {
                if let Some(result) = operation.result() {
                    return Poll::Ready(result);
                }
                match listener {
                    None => *listener = Some(operation.done.listen()),
                    Some(l) => {
                        std::task::ready!(Pin::new(l).poll(cx));
                        *listener = None;
                    }
                }
            },
        }
    }
}

impl<Err> fmt::Debug for WaitHandle<Err> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ready = matches!(self.inner, WaitInner::Ready(_));
        f.debug_struct("WaitHandle")
            .field("ready", &ready)
            .finish_non_exhaustive()
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
