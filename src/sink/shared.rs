//! The state a sink's handles share with its driver, and the lifecycle operations on it.

use std::task::Poll;
use std::time::{Duration, Instant};

use super::SinkConfig;
use super::wait::FlushTickets;
use crate::error::{SinkError, TerminateStage};
use crate::lifecycle::{Lifecycle, Op, OpResult, Operation, State, WaitHandle};
use crate::queue::Queue;
use crate::sync::{
    Arc, AtomicU64, AtomicWaker, DriverSeat, Mutex, Ordering, Signal, Wait, block_on, lock,
};

/// The state shared by a sink's handles and its driver.
pub(crate) struct Shared<E> {
    pub(crate) lifecycle: Lifecycle<SinkError>,
    pub(crate) queue: Queue<E>,
    pub(crate) config: SinkConfig,
    /// Wakes the driver out of a pending user future when a stop is requested.
    pub(crate) stop_waker: AtomicWaker,
    pub(crate) last_error: Mutex<Option<SinkError>>,
    /// Why the sink ended abnormally (failure, cancellation, stop timeout).
    pub(crate) terminal_error: Mutex<Option<SinkError>>,
    pub(crate) flush: FlushTickets,
    pub(super) handles: AtomicU64,
    /// Who polls the driver: what a blocking wait asks before it waits for the driver.
    pub(crate) seat: Arc<DriverSeat>,
}

impl<E> Shared<E> {
    /// The state of a `Virgin` sink with one handle; its ring is allocated here. When the
    /// ring cannot be, the sink is in `Failure` with `QueueAllocationFailed` instead.
    pub(super) fn new(config: SinkConfig) -> Self {
        match Queue::new(config.queue_capacity) {
            Ok(queue) => Self::with_queue(config, queue),
            Err(failure) => {
                let error = SinkError::QueueAllocationFailed {
                    capacity: config.queue_capacity,
                    failure,
                };
                let shared = Self::with_queue(config, Queue::unallocated());
                shared.fail_before_start(error);
                shared
            }
        }
    }

    /// Virgin → Starting → Failure at once, with a start operation that failed with `error`:
    /// a sink that can never start (its queue is closed for good).
    fn fail_before_start(&self, error: SinkError) {
        let mut control = self.lifecycle.lock();
        for (from, to) in [
            (State::Virgin, State::Starting),
            (State::Starting, State::Failure),
        ] {
            self.lifecycle
                .transition(&mut control, from, to)
                .expect("nobody else holds a sink being built");
        }
        self.set_terminal_error(error.clone());
        let operation = Operation::new(Op::Start, Some(self.seat.clone()));
        operation.complete(Some(error));
        control.start = Some(operation);
    }

    fn with_queue(config: SinkConfig, queue: Queue<E>) -> Self {
        Self {
            lifecycle: Lifecycle::new(),
            queue,
            config,
            stop_waker: AtomicWaker::new(),
            last_error: Mutex::new(None),
            terminal_error: Mutex::new(None),
            flush: FlushTickets::default(),
            handles: AtomicU64::new(1),
            seat: Arc::new(DriverSeat::new()),
        }
    }

    pub(crate) fn state(&self) -> State {
        self.lifecycle.state()
    }

    pub(crate) fn record_error(&self, error: SinkError) {
        *lock(&self.last_error) = Some(error);
    }

    pub(crate) fn set_terminal_error(&self, error: SinkError) {
        self.record_error(error.clone());
        *lock(&self.terminal_error) = Some(error);
    }

    /// Asks the driver to look at the lifecycle, flush tickets and the queue.
    pub(crate) fn wake_driver(&self) {
        self.queue.work.notify(1);
        self.stop_waker.wake();
    }

    /// Virgin → Starting, or attach to the start in flight.
    pub(crate) fn start(&self) -> WaitHandle {
        let mut control = self.lifecycle.lock();
        match self.state() {
            State::Virgin => {
                self.lifecycle
                    .transition(&mut control, State::Virgin, State::Starting)
                    .expect("state changed under the lifecycle lock");
                control.start_requested_at = Some(Instant::now());
                let operation = Operation::new(Op::Start, Some(self.seat.clone()));
                control.start = Some(operation.clone());
                drop(control);
                self.wake_driver();
                WaitHandle::waiting(operation)
            }
            State::Starting | State::Running => WaitHandle::waiting(
                control
                    .start
                    .clone()
                    .expect("a started sink has a start operation"),
            ),
            // A sink whose queue could not be allocated could never start: every start
            // gets that error.
            State::Failure
                if matches!(
                    *lock(&self.terminal_error),
                    Some(SinkError::QueueAllocationFailed { .. })
                ) =>
            {
                WaitHandle::waiting(
                    control
                        .start
                        .clone()
                        .expect("a sink that failed before its start has a start operation"),
                )
            }
            actual => WaitHandle::ready(OpResult::failed(
                Op::Start,
                SinkError::InvalidState {
                    actual,
                    expected: &[State::Virgin],
                },
            )),
        }
    }

    /// Running → Stopping.
    pub(crate) fn stop(&self) -> WaitHandle {
        let mut control = self.lifecycle.lock();
        match self.state() {
            State::Running => {
                self.lifecycle
                    .transition(&mut control, State::Running, State::Stopping)
                    .expect("state changed under the lifecycle lock");
                self.queue.close();
                control.stop_requested_at = Some(Instant::now());
                let operation = Operation::new(Op::Stop, Some(self.seat.clone()));
                control.stop = Some(operation.clone());
                drop(control);
                self.wake_driver();
                WaitHandle::waiting(operation)
            }
            actual => WaitHandle::ready(OpResult::failed(
                Op::Stop,
                SinkError::InvalidState {
                    actual,
                    expected: &[State::Running],
                },
            )),
        }
    }

    /// Ends the live sink from outside its driver: what a terminator does past its
    /// deadline, while the driver may be blocked or pending inside user code, or about to
    /// return from it.
    ///
    /// Under the lifecycle lock, it ends counting (the queue's claim): every event still
    /// queued or in dispatch is counted as failed, by this call, and the driver will count
    /// nothing more. Then the sink moves to its terminal state — `Stopped` from `Stopping`
    /// (the stop is over, with events abandoned), `Cancelled` otherwise — with
    /// [`SinkError::TerminateTimedOut`], admission closes, and the operations in flight
    /// complete with that error. The driver, when it comes back from user code, sees the
    /// terminal state and returns without calling user code again.
    ///
    /// Returns what was abandoned, or `None` when the sink had already ended (then its own
    /// end stands: the driver finished first).
    pub(crate) fn end_from_outside(&self, timeout: Duration) -> Option<EndedFromOutside> {
        let mut control = self.lifecycle.lock();
        let state = self.state();
        if state.is_terminal() {
            return None;
        }
        // Counting ends only with a terminal state (the driver's own ends move the state
        // first, under this lock), so it has not ended yet.
        let abandoned = self.queue.end_counting().ok()?;
        let stage = match state {
            State::Virgin | State::Starting => TerminateStage::Start,
            _ if abandoned.in_dispatch > 0 => TerminateStage::Dispatch,
            _ => TerminateStage::Stop,
        };
        let error = SinkError::TerminateTimedOut {
            timeout,
            abandoned: abandoned.total(),
        };
        self.set_terminal_error(error.clone());
        let to = match state {
            State::Stopping => State::Stopped,
            _ => State::Cancelled,
        };
        self.lifecycle
            .transition(&mut control, state, to)
            .expect("state changed under the lifecycle lock");
        self.queue.close();
        let operations = [control.start.clone(), control.stop.clone()];
        drop(control);
        // Dropping the abandoned events runs user code: not under the lifecycle lock.
        self.queue.drop_abandoned();
        for operation in operations.into_iter().flatten() {
            operation.complete(Some(error.clone()));
        }
        self.wake_driver();
        // Every ring is closed and emptied: the counters are final — `pending == 0`. (A
        // push is atomic with the close of its ring, so no producer is left half-way.)
        let _ = block_on(&mut Drained(&self.queue), None);
        Some(EndedFromOutside {
            stage,
            abandoned: abandoned.total(),
        })
    }

    /// A handle on the stop in flight or finished, if there is one.
    pub(crate) fn stop_operation(&self) -> Option<WaitHandle> {
        self.lifecycle.lock().stop.clone().map(WaitHandle::waiting)
    }

    /// The result of a flush or terminate on a sink that has ended.
    pub(crate) fn terminal_result(&self) -> Result<(), SinkError> {
        match lock(&self.terminal_error).clone() {
            Some(error) => Err(error),
            None => Ok(()),
        }
    }
}

/// The wait for every reserved slot to be finished or revoked, once admission is closed.
struct Drained<'a, E>(&'a Queue<E>);

impl<E> Wait for Drained<'_, E> {
    type Output = ();

    fn parts(&mut self) -> (&Signal, impl FnMut() -> Poll<()> + '_) {
        let queue = self.0;
        (&queue.progress, move || {
            if queue.drained() {
                Poll::Ready(())
            } else {
                Poll::Pending
            }
        })
    }
}

/// What [`Shared::end_from_outside`] abandoned.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct EndedFromOutside {
    /// What the driver was doing.
    pub(crate) stage: TerminateStage,
    /// The events counted as failed.
    pub(crate) abandoned: u64,
}

impl<E> Shared<E> {
    pub(crate) fn has_handles(&self) -> bool {
        self.handles.load(Ordering::Acquire) > 0
    }
}
