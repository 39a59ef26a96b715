//! What the sink behaviour tests share: [`Probe`], a scriptable dispatcher of `u32` events
//! that records what it saw; gates that hold its hooks and dispatches until the test
//! releases them; the driver on a thread of its own; and assertions on operation results.
//!
//! Timing inside user code is controlled with gates, never with sleeps. Include it with
//! `#[path = "support/sink_harness.rs"] mod sink_harness;`, and the watchdog beside it
//! (`support/watchdog.rs`).

#![allow(dead_code)] // Each test binary uses the part it needs.

use std::error::Error as StdError;
use std::fmt;
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;

use async_channel::{Receiver, Sender};
use futures::executor::block_on;
use mvx::error::{LogError, SinkError};
use mvx::queue::{LogOutcome, QueueStats};
use mvx::sink::{Dispatch, Driver, SinkConfig};
use mvx::{BoxError, ErrorReason, Op, OpResult, State};

use crate::watchdog::GUARD;

/// The pending-event limit of every sink made with [`config`].
pub const CAPACITY: usize = 16;

/// Polls the driver on a thread of its own.
pub fn on_thread(driver: Driver) -> JoinHandle<()> {
    std::thread::spawn(move || block_on(driver))
}

/// A gate a hook or dispatch awaits: one message lets one call through, closing the
/// sender lets every call through.
pub fn gate() -> (Sender<()>, Receiver<()>) {
    async_channel::unbounded()
}

/// The default configuration with a capacity of [`CAPACITY`].
pub fn config() -> SinkConfig {
    SinkConfig::default().queue_capacity(CAPACITY)
}

/// The counters of a sink that accepted nothing.
pub fn no_events() -> QueueStats {
    QueueStats {
        capacity: CAPACITY,
        ..QueueStats::default()
    }
}

pub fn assert_succeeded(result: OpResult, op: Op) {
    assert_eq!(result.op, op);
    assert!(result.success, "{op} failed: {:?}", result.error);
    assert!(result.error.is_none(), "{op} succeeded with an error");
}

/// The error of an operation that must have failed.
pub fn failed(result: OpResult, op: Op) -> SinkError {
    assert_eq!(result.op, op);
    assert!(!result.success, "{op} succeeded");
    result.error.expect("a failed operation carries its error")
}

pub fn assert_invalid_state(error: &SinkError, actual: State, expected: &[State]) {
    match error {
        SinkError::InvalidState {
            actual: was,
            expected: needs,
        } => {
            assert_eq!(*was, actual);
            assert_eq!(*needs, expected);
        }
        other => panic!("expected InvalidState {{ actual: {actual} }}, got {other:?}"),
    }
    assert_eq!(error.reason(), ErrorReason::InvalidState);
}

/// `log(event)` was refused because the sink is in `state`, and the event came back.
pub fn assert_refused(result: Result<LogOutcome, LogError<u32>>, event: u32, state: State) {
    let error = result.expect_err("the event was accepted");
    assert_eq!(error.reason(), ErrorReason::InvalidState);
    assert!(!error.is_overflow());
    assert_eq!(error, LogError::NotAccepting { event, state });
    assert_eq!(error.into_inner(), event);
}

/// An error returned by user code.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UserError(pub String);

impl fmt::Display for UserError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl StdError for UserError {}

/// A hook or dispatch call seen by a [`Probe`], recorded when the call begins.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Call {
    Starting,
    Dispatch(u32),
    Flush,
    Stopped,
}

/// What a [`Probe`] saw, readable by the test.
#[derive(Clone, Default)]
pub struct Seen(Arc<SeenInner>);

#[derive(Default)]
struct SeenInner {
    calls: Mutex<Vec<Call>>,
    delivered: Mutex<Vec<u32>>,
    changed: Condvar,
}

impl Seen {
    fn record(&self, call: Call) {
        self.0.calls.lock().unwrap().push(call);
        self.0.changed.notify_all();
    }

    fn deliver(&self, event: u32) {
        self.0.delivered.lock().unwrap().push(event);
    }

    /// Every call so far, in the order they began.
    pub fn calls(&self) -> Vec<Call> {
        self.0.calls.lock().unwrap().clone()
    }

    /// The events delivered so far, in order.
    pub fn delivered(&self) -> Vec<u32> {
        self.0.delivered.lock().unwrap().clone()
    }

    /// Blocks until `call` has begun.
    pub fn wait_for(&self, call: Call) {
        let calls = self.0.calls.lock().unwrap();
        let (_calls, wait) = self
            .0
            .changed
            .wait_timeout_while(calls, GUARD, |calls| !calls.contains(&call))
            .unwrap();
        assert!(!wait.timed_out(), "{call:?} never happened");
    }

    /// How many hold this record: 1 once the probe that writes it has been dropped.
    pub fn holders(&self) -> usize {
        Arc::strong_count(&self.0)
    }
}

/// A scriptable dispatcher of `u32` events; every knob is off by default. Each hook or
/// dispatch records its call, waits at its gate, then panics, hangs, fails or succeeds, in
/// that order of precedence. It never panics while holding one of its locks.
#[derive(Default)]
pub struct Probe {
    /// `on_starting` waits here before it returns.
    pub start_gate: Option<Receiver<()>>,
    /// `on_starting` then panics with this message.
    pub start_panic: Option<&'static str>,
    /// `on_starting` then never returns.
    pub start_hangs: bool,
    /// `on_starting` then fails with this error.
    pub start_error: Option<&'static str>,
    /// Each dispatch waits here before it delivers.
    pub dispatch_gate: Option<Receiver<()>>,
    /// The dispatch of this event panics with "dispatch exploded on event N".
    pub panic_on: Option<u32>,
    /// The dispatch of this event never returns.
    pub hang_on: Option<u32>,
    /// These events fail with "event N failed".
    pub fail_on: Vec<u32>,
    /// `flush` panics with this message.
    pub flush_panic: Option<&'static str>,
    /// `flush` fails with this error.
    pub flush_error: Option<&'static str>,
    /// `on_stopped` panics with this message.
    pub stop_panic: Option<&'static str>,
    /// `on_stopped` never returns.
    pub stop_hangs: bool,
    /// `on_stopped` fails with this error.
    pub stop_error: Option<&'static str>,
    pub seen: Seen,
}

/// `Err(UserError(text))` for `Some(text)`, else `Ok(())`.
fn outcome(error: Option<&'static str>) -> Result<(), BoxError> {
    match error {
        Some(text) => Err(UserError(text.into()).into()),
        None => Ok(()),
    }
}

/// Panics with `message`, or never returns, as told.
async fn panic_or_hang(panic: Option<&'static str>, hangs: bool) {
    if let Some(message) = panic {
        panic!("{message}");
    }
    if hangs {
        futures::future::pending::<()>().await;
    }
}

impl Dispatch<u32> for Probe {
    async fn on_starting(&mut self) -> Result<(), BoxError> {
        self.seen.record(Call::Starting);
        if let Some(gate) = &self.start_gate {
            let _ = gate.recv().await;
        }
        panic_or_hang(self.start_panic, self.start_hangs).await;
        outcome(self.start_error)
    }

    async fn dispatch(&mut self, event: u32) -> Result<(), BoxError> {
        self.seen.record(Call::Dispatch(event));
        if let Some(gate) = &self.dispatch_gate {
            let _ = gate.recv().await;
        }
        if self.panic_on == Some(event) {
            panic!("dispatch exploded on event {event}");
        }
        panic_or_hang(None, self.hang_on == Some(event)).await;
        if self.fail_on.contains(&event) {
            return Err(UserError(format!("event {event} failed")).into());
        }
        self.seen.deliver(event);
        Ok(())
    }

    async fn flush(&mut self) -> Result<(), BoxError> {
        self.seen.record(Call::Flush);
        panic_or_hang(self.flush_panic, false).await;
        outcome(self.flush_error)
    }

    async fn on_stopped(&mut self) -> Result<(), BoxError> {
        self.seen.record(Call::Stopped);
        panic_or_hang(self.stop_panic, self.stop_hangs).await;
        outcome(self.stop_error)
    }
}
