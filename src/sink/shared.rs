//! The state a sink's handles share with its driver, and the lifecycle operations on it.

use std::time::Instant;

use super::SinkConfig;
use super::wait::FlushTickets;
use crate::error::SinkError;
use crate::lifecycle::{Lifecycle, Op, OpResult, Operation, State, WaitHandle};
use crate::queue::Queue;
use crate::sync::{Arc, AtomicU64, AtomicWaker, DriverSeat, Mutex, Ordering, lock};

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
    /// The state of a `Virgin` sink with one handle; its ring is allocated here.
    pub(super) fn new(config: SinkConfig) -> Self {
        Self {
            lifecycle: Lifecycle::new(),
            queue: Queue::new(config.queue_capacity),
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
                self.queue.open();
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

impl<E> Shared<E> {
    pub(crate) fn has_handles(&self) -> bool {
        self.handles.load(Ordering::Acquire) > 0
    }
}
