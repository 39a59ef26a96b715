//! The reference model: what a sink must do, as documented, with nothing concurrent in it.
//!
//! The model is a plain struct that follows the documented lifecycle (`mvx::lifecycle`),
//! the table of outcomes of `mvx::queue` and the documented results of `start`, `stop`,
//! `log`, `flush` and termination. It knows about one thing the real sink cannot tell it:
//! whether the test's backend is *held* (its hooks and dispatches wait at a valve). While
//! it is held nothing finishes, so the model is exact; while it is open, the driver drains
//! in the background and the model knows only bounds until the next barrier (a flush, a
//! stop, a finished start).

use mvx::queue::{OverflowPolicy, QueueStats};
use mvx::{ErrorReason, Op, State};

/// An event of the properties. `id` is unique within a case; `value` decides its fate.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Event {
    pub id: u32,
    pub value: u32,
}

impl Event {
    /// Whether the test backend fails this event: its value is divisible by 7.
    pub fn fails(self) -> bool {
        self.value % 7 == 0
    }
}

/// The documented result of a `start()` or `stop()` operation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Expected {
    /// `success`, no error.
    Success,
    /// `InvalidState { actual, expected }`.
    InvalidState {
        actual: State,
        expected: &'static [State],
    },
    /// `OnStartingHookFailed` (the backend's start hook is told to fail).
    StartHookFailed,
    /// `DispatcherCancelled` (the driver was dropped).
    Cancelled,
}

/// When the result of a `start()` or `stop()` is known.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OpExpect {
    /// At once: `try_result()` already has it.
    Ready(Expected),
    /// Once the driver has done its work; nothing holds it back.
    Eventually(Expected),
    /// Not while the backend is held: `try_result()` is `None`; the result is given when
    /// the backend is released or the driver dropped.
    Held,
}

/// What `log()` returned, without the event.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Logged {
    /// `Ok(LogOutcome::Accepted)`.
    Accepted,
    /// `Ok(LogOutcome::Dropped)`.
    Dropped,
    /// `Err(LogError::QueueOverflow(event))`, with the event handed back.
    Overflow,
    /// `Err(LogError::NotAccepting { event, state })`, with the event handed back.
    NotAccepting(State),
}

/// The results `log()` may return: one, or two when the queue may or may not be full
/// because the driver is draining it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Allowed {
    pub first: Logged,
    pub or: Option<Logged>,
}

impl Allowed {
    fn only(logged: Logged) -> Self {
        Self {
            first: logged,
            or: None,
        }
    }

    pub fn contains(self, logged: Logged) -> bool {
        self.first == logged || self.or == Some(logged)
    }
}

/// The sink's configuration, as far as the model needs it.
#[derive(Clone, Copy, Debug)]
pub struct Setup {
    pub capacity: usize,
    pub policy: OverflowPolicy,
    pub lazy_start: bool,
    pub start_fails: bool,
}

/// The documented behaviour of one sink.
#[derive(Clone, Debug)]
pub struct Model {
    pub setup: Setup,
    pub state: State,
    /// Whether the test backend holds its hooks and dispatches at the valve.
    pub held: bool,
    /// Every accepted event, in order (one producer: the order of acceptance is the order
    /// of dispatch).
    pub accepted: Vec<Event>,
    /// How many of `accepted` are known to be finished (a prefix: FIFO).
    pub finished: usize,
    /// Whether the real sink has finished exactly `finished` events; otherwise it has
    /// finished between `finished` and all of `accepted`. It stays true while starting:
    /// nothing is dispatched before the start hook returns.
    pub exact: bool,
    /// The events the backend is known to have been handed, in order.
    pub dispatched: Vec<Event>,
    pub delivered: u64,
    pub failed: u64,
    pub dropped: u64,
    /// Events handed back by `log()`: overflow under `RaiseError`, not accepting.
    pub refused: u64,
    /// Bounds of the high watermark: exact while nothing can finish during a `log()`.
    pub high_watermark: (u64, u64),
    /// The reason of `last_error()`, when `exact`.
    pub last_error: Option<ErrorReason>,
    /// Whether a start or a stop operation is in flight, held by the backend.
    pub start_in_flight: bool,
    pub stop_in_flight: bool,
    next_id: u32,
}

impl Model {
    /// A `Virgin` sink, as `AsyncSink::new` returns it.
    pub fn virgin(setup: Setup) -> Self {
        Self {
            setup,
            state: State::Virgin,
            held: false,
            accepted: Vec::new(),
            finished: 0,
            exact: true,
            dispatched: Vec::new(),
            delivered: 0,
            failed: 0,
            dropped: 0,
            refused: 0,
            high_watermark: (0, 0),
            last_error: None,
            start_in_flight: false,
            stop_in_flight: false,
            next_id: 0,
        }
    }

    /// A `Running` sink, as `rt::thread::create` returns it.
    pub fn running(setup: Setup) -> Self {
        assert!(!setup.start_fails, "create() would have failed");
        Self {
            state: State::Running,
            ..Self::virgin(setup)
        }
    }

    /// Accepted events not known to be finished.
    pub fn in_flight(&self) -> u64 {
        (self.accepted.len() - self.finished) as u64
    }

    /// `start()`: Virgin → Starting; attaches to the start in flight; in `Running` the
    /// finished start's success; otherwise `InvalidState`.
    pub fn start(&mut self) -> OpExpect {
        match self.state {
            State::Virgin => {
                self.state = State::Starting;
                self.start_in_flight = true;
                self.start_outcome()
            }
            // Only while held: otherwise the start is waited for as soon as it begins.
            State::Starting => OpExpect::Held,
            State::Running => OpExpect::Ready(Expected::Success),
            actual => OpExpect::Ready(Expected::InvalidState {
                actual,
                expected: &[State::Virgin],
            }),
        }
    }

    fn start_outcome(&mut self) -> OpExpect {
        if self.held {
            OpExpect::Held
        } else {
            OpExpect::Eventually(self.finish_start())
        }
    }

    /// The start hook returns: Running, or Failure with every accepted event abandoned.
    fn finish_start(&mut self) -> Expected {
        self.start_in_flight = false;
        if self.setup.start_fails {
            self.state = State::Failure;
            self.abandon();
            self.last_error = Some(ErrorReason::OnStartingHookFailed);
            Expected::StartHookFailed
        } else {
            self.state = State::Running;
            if self.in_flight() > 0 {
                // Events accepted while starting are dispatched now, in the background.
                self.exact = false;
            }
            Expected::Success
        }
    }

    /// `stop()`: Running → Stopping → Stopped, dispatching every accepted event; otherwise
    /// `InvalidState`.
    pub fn stop(&mut self) -> OpExpect {
        match self.state {
            State::Running => {
                self.state = State::Stopping;
                self.stop_in_flight = true;
                if self.held {
                    OpExpect::Held
                } else {
                    OpExpect::Eventually(self.finish_stop())
                }
            }
            actual => OpExpect::Ready(Expected::InvalidState {
                actual,
                expected: &[State::Running],
            }),
        }
    }

    fn finish_stop(&mut self) -> Expected {
        self.settle();
        self.stop_in_flight = false;
        self.state = State::Stopped;
        Expected::Success
    }

    /// `log(value)`, first half: the lifecycle part (a lazy start) and the results the
    /// sink may return. Returns the event, the allowed results, and whether the call
    /// started the sink.
    pub fn log(&mut self, value: u32) -> (Event, Allowed, bool) {
        let event = Event {
            id: self.next_id,
            value,
        };
        self.next_id += 1;
        let mut lazily_started = false;
        if self.state == State::Virgin && self.setup.lazy_start {
            // The start is not waited for here: the caller holds no handle on it.
            self.state = State::Starting;
            self.start_in_flight = true;
            lazily_started = true;
        }
        if !self.state.accepts_events() {
            return (
                event,
                Allowed::only(Logged::NotAccepting(self.state)),
                false,
            );
        }
        let full = match self.setup.policy {
            OverflowPolicy::Drop => Logged::Dropped,
            OverflowPolicy::RaiseError => Logged::Overflow,
            OverflowPolicy::Block => unreachable!("the sequential properties never block"),
        };
        let capacity = self.setup.capacity as u64;
        let allowed = if lazily_started && self.setup.start_fails && !self.held {
            // `log` starts the sink, then reserves a slot; meanwhile the driver may already
            // have run the start hook, failed and closed admission.
            Allowed {
                first: Logged::Accepted,
                or: Some(Logged::NotAccepting(State::Failure)),
            }
        } else if self.in_flight() < capacity {
            Allowed::only(Logged::Accepted)
        } else if self.exact {
            Allowed::only(full)
        } else {
            // The driver may have finished some of the in-flight events, or not.
            Allowed {
                first: Logged::Accepted,
                or: Some(full),
            }
        };
        (event, allowed, lazily_started)
    }

    /// `log(value)`, second half: records what the sink did.
    pub fn logged(&mut self, event: Event, logged: Logged) {
        match logged {
            Logged::Accepted => {
                self.accepted.push(event);
                let pending = self.in_flight();
                let (low, high) = &mut self.high_watermark;
                *high = (*high).max(pending);
                if self.held {
                    // Nothing finishes meanwhile: the watermark is exact.
                    *low = (*low).max(pending);
                }
                if self.state == State::Running && !self.held {
                    // Dispatched in the background. (While starting, nothing is dispatched
                    // before the start hook returns.)
                    self.exact = false;
                }
            }
            Logged::Dropped => self.dropped += 1,
            Logged::Overflow | Logged::NotAccepting(_) => self.refused += 1,
        }
    }

    /// `flush()`: waits for every accepted event (the backend must not be held). `Ok` unless
    /// the sink ended abnormally, then the reason it ended.
    pub fn flush(&mut self) -> Result<(), ErrorReason> {
        assert!(!self.held, "a flush waits for a held backend");
        if self.state == State::Starting {
            // A lazy start in flight: the flush waits for it.
            self.finish_start();
        }
        match self.state {
            State::Running => {
                self.settle();
                Ok(())
            }
            State::Virgin | State::Stopped => Ok(()),
            State::Failure => Err(ErrorReason::OnStartingHookFailed),
            State::Cancelled => Err(ErrorReason::DispatcherCancelled),
            State::Starting | State::Stopping => unreachable!("waited for above"),
        }
    }

    /// Holds the backend. The caller has made the model exact first.
    pub fn hold(&mut self) {
        assert!(self.exact, "hold after a barrier");
        self.held = true;
    }

    /// Releases the backend: the operations in flight finish. Returns their results.
    pub fn release(&mut self) -> Vec<(Op, Expected)> {
        self.held = false;
        let mut finished = Vec::new();
        if self.start_in_flight {
            finished.push((Op::Start, self.finish_start()));
        }
        if self.stop_in_flight {
            finished.push((Op::Stop, self.finish_stop()));
        }
        if self.state == State::Running && self.in_flight() > 0 {
            // The events accepted while held are dispatched now, in the background.
            self.exact = false;
        }
        finished
    }

    /// `Terminator::terminate()` of `rt::thread::create` (backend released): stops a running
    /// sink, dispatching every accepted event; the outcome of a clean stop is `Ok`.
    pub fn terminate(&mut self) -> Result<(), ErrorReason> {
        assert!(!self.held && !self.start_in_flight && !self.stop_in_flight);
        if self.state == State::Running {
            self.finish_stop();
        }
        assert_eq!(self.state, State::Stopped, "thread::create sinks only stop");
        Ok(())
    }

    /// The driver is dropped (the executor running it is dropped): a live sink is
    /// cancelled, its pending events abandoned, its operations in flight fail with
    /// `DispatcherCancelled`. The caller has made the model exact first.
    pub fn cancel(&mut self) -> Vec<(Op, Expected)> {
        assert!(self.exact, "cancel after a barrier");
        if self.state.is_terminal() {
            return Vec::new();
        }
        self.state = State::Cancelled;
        self.abandon();
        self.last_error = Some(ErrorReason::DispatcherCancelled);
        let mut finished = Vec::new();
        if std::mem::take(&mut self.start_in_flight) {
            finished.push((Op::Start, Expected::Cancelled));
        }
        if std::mem::take(&mut self.stop_in_flight) {
            finished.push((Op::Stop, Expected::Cancelled));
        }
        finished
    }

    /// Every in-flight event is dispatched: delivered, or failed by the backend.
    pub fn settle(&mut self) {
        for event in &self.accepted[self.finished..] {
            self.dispatched.push(*event);
            if event.fails() {
                self.failed += 1;
                self.last_error = Some(ErrorReason::DispatchFailed);
            } else {
                self.delivered += 1;
            }
        }
        self.finished = self.accepted.len();
        self.exact = true;
    }

    /// Every in-flight event is abandoned, never dispatched: counted as failed.
    fn abandon(&mut self) {
        assert!(self.exact, "abandon after a barrier");
        self.failed += self.in_flight();
        self.finished = self.accepted.len();
    }

    /// The model once the driver has caught up with it.
    pub fn caught_up(&self) -> Model {
        let mut caught_up = self.clone();
        caught_up.settle();
        caught_up
    }

    /// The exact counters, when `exact`.
    pub fn stats(&self) -> QueueStats {
        let accepted = self.accepted.len() as u64;
        QueueStats {
            accepted,
            delivered: self.delivered,
            failed: self.failed,
            dropped: self.dropped,
            refused: self.refused,
            pending: accepted - self.delivered - self.failed,
            capacity: self.setup.capacity,
            high_watermark: self.high_watermark.0 as usize,
            restarts: 0,
        }
    }
}

/// The documented behaviour of a `MetricsRecorder` created by a `MetricsRuntime`, whose
/// one metric counts and sums the events it handles (values not divisible by 5) and leaves
/// the others unhandled.
#[derive(Clone, Debug)]
pub struct RecorderModel {
    pub capacity: usize,
    pub policy: OverflowPolicy,
    pub state: State,
    pub accepted: Vec<Event>,
    /// How many of `accepted` are known to be applied to the metric (a prefix).
    pub applied: usize,
    /// Whether the real recorder has applied exactly `applied` events.
    pub exact: bool,
    pub dropped: u64,
    /// Events handed back by `register_event()`.
    pub refused: u64,
    pub shut_down: bool,
    next_id: u32,
}

/// What the metric's snapshot and the recorder's `unhandled()` say.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Tally {
    pub count: u64,
    pub sum: u64,
    pub unhandled: u64,
}

impl RecorderModel {
    /// A recorder as `create_recorder_with` returns it: `Running`.
    pub fn new(capacity: usize, policy: OverflowPolicy) -> Self {
        Self {
            capacity,
            policy,
            state: State::Running,
            accepted: Vec::new(),
            applied: 0,
            exact: true,
            dropped: 0,
            refused: 0,
            shut_down: false,
            next_id: 0,
        }
    }

    /// Whether the metric handles an event: its value is not divisible by 5.
    pub fn handles(event: Event) -> bool {
        event.value % 5 != 0
    }

    pub fn in_flight(&self) -> u64 {
        (self.accepted.len() - self.applied) as u64
    }

    /// `register_event(value)`, first half: the results the recorder may return.
    pub fn register(&mut self, value: u32) -> (Event, Allowed) {
        let event = Event {
            id: self.next_id,
            value,
        };
        self.next_id += 1;
        if self.state != State::Running {
            return (event, Allowed::only(Logged::NotAccepting(self.state)));
        }
        let full = match self.policy {
            OverflowPolicy::Drop => Logged::Dropped,
            OverflowPolicy::RaiseError => Logged::Overflow,
            OverflowPolicy::Block => unreachable!("the sequential properties never block"),
        };
        let allowed = if self.in_flight() < self.capacity as u64 {
            Allowed::only(Logged::Accepted)
        } else if self.exact {
            Allowed::only(full)
        } else {
            Allowed {
                first: Logged::Accepted,
                or: Some(full),
            }
        };
        (event, allowed)
    }

    /// `register_event(value)`, second half: records what the recorder did.
    pub fn registered(&mut self, event: Event, logged: Logged) {
        match logged {
            Logged::Accepted => {
                self.accepted.push(event);
                // Applied in the background.
                self.exact = false;
            }
            Logged::Dropped => self.dropped += 1,
            Logged::Overflow | Logged::NotAccepting(_) => self.refused += 1,
        }
    }

    /// `snapshot_now()`: a barrier in every state a runtime's recorder can be in.
    pub fn snapshot_now(&mut self) -> Tally {
        self.settle();
        self.tally()
    }

    /// `stop()`: Running → Stopped after applying every accepted event.
    pub fn stop(&mut self) -> OpExpect {
        match self.state {
            State::Running => {
                self.settle();
                self.state = State::Stopped;
                OpExpect::Eventually(Expected::Success)
            }
            actual => OpExpect::Ready(Expected::InvalidState {
                actual,
                expected: &[State::Running],
            }),
        }
    }

    /// `start()`: the finished start's success while running, `InvalidState` after.
    pub fn start(&mut self) -> OpExpect {
        match self.state {
            State::Running => OpExpect::Ready(Expected::Success),
            actual => OpExpect::Ready(Expected::InvalidState {
                actual,
                expected: &[State::Virgin],
            }),
        }
    }

    /// `MetricsRuntime::shutdown()`: stops the recorder if it runs; `Ok` every time.
    pub fn shutdown(&mut self) {
        self.settle();
        self.state = State::Stopped;
        self.shut_down = true;
    }

    fn settle(&mut self) {
        self.applied = self.accepted.len();
        self.exact = true;
    }

    /// The tally of the events known to be applied.
    pub fn tally(&self) -> Tally {
        tally(&self.accepted[..self.applied])
    }

    /// The tally once every accepted event is applied.
    pub fn caught_up(&self) -> Tally {
        tally(&self.accepted)
    }

    /// The exact counters, when `exact`.
    pub fn stats(&self, high_watermark: usize) -> QueueStats {
        let accepted = self.accepted.len() as u64;
        QueueStats {
            accepted,
            delivered: self.applied as u64,
            failed: 0,
            dropped: self.dropped,
            refused: self.refused,
            pending: accepted - self.applied as u64,
            capacity: self.capacity,
            high_watermark,
            restarts: 0,
        }
    }
}

/// The tally of `events`.
pub fn tally(events: &[Event]) -> Tally {
    let mut tally = Tally {
        count: 0,
        sum: 0,
        unhandled: 0,
    };
    for event in events {
        if RecorderModel::handles(*event) {
            tally.count += 1;
            tally.sum += u64::from(event.value);
        } else {
            tally.unhandled += 1;
        }
    }
    tally
}
