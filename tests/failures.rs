//! Panics and hangs in user code: a dispatch, a hook or a flush that panics, a dispatch, start
//! hook or stop hook that never returns.
//!
//! A panic is caught and turned into an error carrying its message; the sink ends in
//! `Failure` (or, for a panicking stop hook, `Stopped`), every accepted event is accounted
//! for, nothing deadlocks and nothing is poisoned. A hung dispatch or stop hook is cut off by
//! the stop timeout, a hung start hook by the start timeout.
//! The default panic hook prints the caught panics to stderr; it is left in place, since
//! the tests of this binary run in parallel threads.
#![cfg(not(loom))]

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use async_channel::{Receiver, Sender};
use futures::executor::{LocalPool, block_on};
use futures::task::SpawnExt;
use mvx::error::{Cause, CreateError, LogError, SinkError, TerminateError};
use mvx::queue::{LogOutcome, QueueStats};
use mvx::sink::{AsyncSink, Dispatch, Driver, SinkConfig};
use mvx::{BoxError, ErrorReason, Op, OpResult, State};

mod guard;

use guard::within_guard;

/// How long a test body may run before it is declared hung.
const GUARD: Duration = Duration::from_secs(30);

/// The pending-event limit of every sink here.
const CAPACITY: usize = 16;

/// The stop timeout of the tests with a hanging user future.
const STOP_TIMEOUT: Duration = Duration::from_millis(200);

// ---------------------------------------------------------------------------------------
// Harness
// ---------------------------------------------------------------------------------------

/// Polls the driver on a thread of its own.
fn on_thread(driver: Driver) -> JoinHandle<()> {
    std::thread::spawn(move || block_on(driver))
}

/// A gate a hook or dispatch awaits: one message lets one call through, closing the
/// sender lets every call through.
fn gate() -> (Sender<()>, Receiver<()>) {
    async_channel::unbounded()
}

fn config() -> SinkConfig {
    SinkConfig::default().queue_capacity(CAPACITY)
}

/// The counters of a sink that accepted nothing.
fn no_events() -> QueueStats {
    QueueStats {
        capacity: CAPACITY,
        ..QueueStats::default()
    }
}

fn assert_succeeded(result: OpResult, op: Op) {
    assert_eq!(result.op, op);
    assert!(result.success, "{op} failed: {:?}", result.error);
    assert!(result.error.is_none(), "{op} succeeded with an error");
}

/// The error of an operation that must have failed.
fn failed(result: OpResult, op: Op) -> SinkError {
    assert_eq!(result.op, op);
    assert!(!result.success, "{op} succeeded");
    result.error.expect("a failed operation carries its error")
}

fn assert_invalid_state(error: &SinkError, actual: State, expected: &[State]) {
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
fn assert_refused(result: Result<LogOutcome, LogError<u32>>, event: u32, state: State) {
    let error = result.expect_err("the event was accepted");
    assert_eq!(error.reason(), ErrorReason::InvalidState);
    assert_eq!(error, LogError::NotAccepting { event, state });
    assert_eq!(error.into_inner(), event);
}

/// `cause` is a caught panic with `message`.
fn assert_panic_cause(cause: &Cause, message: &str) {
    assert!(cause.is_panic(), "{cause:?} is not a panic");
    assert_eq!(cause.panic_message(), Some(message));
    assert_eq!(cause.to_string(), format!("panicked: {message}"));
}

/// `error` is `DispatcherPanicked` with a panic `message`.
fn assert_dispatcher_panicked(error: &SinkError, message: &str) {
    match error {
        SinkError::DispatcherPanicked(cause) => assert_panic_cause(cause, message),
        other => panic!("expected DispatcherPanicked, got {other:?}"),
    }
    assert_eq!(error.reason(), ErrorReason::DispatcherPanicked);
}

fn assert_stop_timed_out(error: &SinkError, abandoned: u64) {
    match error {
        SinkError::StopTimedOut {
            timeout,
            abandoned: count,
        } => {
            assert_eq!(*timeout, STOP_TIMEOUT);
            assert_eq!(*count, abandoned, "abandoned events");
        }
        other => panic!("expected StopTimedOut, got {other:?}"),
    }
    assert_eq!(error.reason(), ErrorReason::StopTimedOut);
}

/// Checks that a sink in `Failure` refuses everything without hanging or panicking.
fn assert_failed_sink(sink: &AsyncSink<u32>, message: &str) {
    assert_eq!(sink.state(), State::Failure);
    assert_dispatcher_panicked(&sink.last_error().expect("the panic is kept"), message);
    assert_dispatcher_panicked(
        &block_on(sink.flush()).expect_err("a failed sink does not flush"),
        message,
    );
    assert_dispatcher_panicked(
        &sink
            .flush_blocking()
            .expect_err("a failed sink does not flush"),
        message,
    );
    assert_invalid_state(
        &failed(sink.stop().wait(), Op::Stop),
        State::Failure,
        &[State::Running],
    );
    assert_invalid_state(
        &failed(sink.start().wait(), Op::Start),
        State::Failure,
        &[State::Virgin],
    );
    assert_refused(sink.log(1000), 1000, State::Failure);
    assert_eq!(sink.state(), State::Failure);
}

/// A hook or dispatch call seen by a [`Probe`], recorded when the call begins.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Call {
    Starting,
    Dispatch(u32),
    Flush,
    Stopped,
}

/// What a [`Probe`] saw, readable by the test.
#[derive(Clone, Default)]
struct Seen(Arc<SeenInner>);

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

    fn calls(&self) -> Vec<Call> {
        self.0.calls.lock().unwrap().clone()
    }

    fn delivered(&self) -> Vec<u32> {
        self.0.delivered.lock().unwrap().clone()
    }

    /// Blocks until `call` has begun.
    fn wait_for(&self, call: Call) {
        let calls = self.0.calls.lock().unwrap();
        let (_calls, wait) = self
            .0
            .changed
            .wait_timeout_while(calls, GUARD, |calls| !calls.contains(&call))
            .unwrap();
        assert!(!wait.timed_out(), "{call:?} never happened");
    }
}

/// A scriptable dispatcher of `u32` events; every knob is off by default. It never
/// panics while holding one of its locks.
#[derive(Default)]
struct Probe {
    /// `on_starting` waits here before it returns.
    start_gate: Option<Receiver<()>>,
    /// `on_starting` then panics with this message.
    start_panic: Option<&'static str>,
    /// `on_starting` then never returns.
    start_hangs: bool,
    /// Each dispatch waits here before it delivers.
    dispatch_gate: Option<Receiver<()>>,
    /// The dispatch of this event panics with "dispatch exploded on event N".
    panic_on: Option<u32>,
    /// The dispatch of this event never returns.
    hang_on: Option<u32>,
    /// `flush` panics with this message.
    flush_panic: Option<&'static str>,
    /// `on_stopped` panics with this message.
    stop_panic: Option<&'static str>,
    /// `on_stopped` never returns.
    stop_hangs: bool,
    seen: Seen,
}

impl Dispatch<u32> for Probe {
    async fn on_starting(&mut self) -> Result<(), BoxError> {
        self.seen.record(Call::Starting);
        if let Some(gate) = &self.start_gate {
            let _ = gate.recv().await;
        }
        if let Some(message) = self.start_panic {
            panic!("{message}");
        }
        if self.start_hangs {
            futures::future::pending::<()>().await;
        }
        Ok(())
    }

    async fn dispatch(&mut self, event: u32) -> Result<(), BoxError> {
        self.seen.record(Call::Dispatch(event));
        if let Some(gate) = &self.dispatch_gate {
            let _ = gate.recv().await;
        }
        if self.panic_on == Some(event) {
            panic!("dispatch exploded on event {event}");
        }
        if self.hang_on == Some(event) {
            futures::future::pending::<()>().await;
        }
        self.seen.deliver(event);
        Ok(())
    }

    async fn flush(&mut self) -> Result<(), BoxError> {
        self.seen.record(Call::Flush);
        if let Some(message) = self.flush_panic {
            panic!("{message}");
        }
        Ok(())
    }

    async fn on_stopped(&mut self) -> Result<(), BoxError> {
        self.seen.record(Call::Stopped);
        if let Some(message) = self.stop_panic {
            panic!("{message}");
        }
        if self.stop_hangs {
            futures::future::pending::<()>().await;
        }
        Ok(())
    }
}

/// Creates a sink for `probe`, starts it with its start gate closed, logs `events` while
/// it is starting (so that they are all queued, in one batch or in batches of
/// `batch_size`), then lets the start hook return.
fn started_with_queued_events(
    mut probe: Probe,
    config: SinkConfig,
    events: std::ops::Range<u32>,
) -> (AsyncSink<u32>, JoinHandle<()>, Seen) {
    let (release_start, start_gate) = gate();
    probe.start_gate = Some(start_gate);
    let seen = probe.seen.clone();
    let (sink, driver) = AsyncSink::new(probe, config);
    let driver = on_thread(driver);
    let start = sink.start();
    seen.wait_for(Call::Starting);
    for event in events {
        assert_eq!(sink.log(event), Ok(LogOutcome::Accepted));
    }
    release_start.close();
    assert_succeeded(start.wait(), Op::Start);
    (sink, driver, seen)
}

// ---------------------------------------------------------------------------------------
// Panics
// ---------------------------------------------------------------------------------------

#[test]
fn a_panicking_dispatch_moves_the_sink_to_failure_and_fails_the_rest() {
    within_guard(|| {
        let probe = Probe {
            panic_on: Some(3),
            ..Probe::default()
        };
        // Batches [0, 1], [2, 3] (panics on 3), [4, 5].
        let (sink, driver, seen) = started_with_queued_events(probe, config().batch_size(2), 0..6);

        // The driver completes on its own.
        driver.join().unwrap();
        assert_failed_sink(&sink, "dispatch exploded on event 3");
        // The first batch is delivered; the panicking batch counts as failed as a whole
        // (event 2 reached the backend, but its batch did not return), and so does every
        // event queued behind it.
        assert_eq!(seen.delivered(), [0, 1, 2]);
        let stats = sink.stats();
        assert_eq!(
            stats,
            QueueStats {
                accepted: 6,
                delivered: 2,
                failed: 4,
                high_watermark: 6,
                ..no_events()
            }
        );
        assert_eq!(stats.accepted, stats.delivered + stats.failed);
        // The dispatcher is not called again, not even to flush or stop.
        assert_eq!(
            seen.calls(),
            [
                Call::Starting,
                Call::Dispatch(0),
                Call::Dispatch(1),
                Call::Dispatch(2),
                Call::Dispatch(3),
            ]
        );
        assert_eq!(Arc::strong_count(&seen.0), 1, "the dispatcher was dropped");
    });
}

#[test]
fn a_panicking_start_hook_fails_the_start_with_the_panic_message() {
    within_guard(|| {
        let probe = Probe {
            start_panic: Some("no credentials"),
            ..Probe::default()
        };
        let (release_start, start_gate) = gate();
        let probe = Probe {
            start_gate: Some(start_gate),
            ..probe
        };
        let seen = probe.seen.clone();
        let (sink, driver) = AsyncSink::new(probe, config());
        let driver = on_thread(driver);
        let start = sink.start();
        seen.wait_for(Call::Starting);
        assert_eq!(sink.log(1), Ok(LogOutcome::Accepted));
        assert_eq!(sink.log(2), Ok(LogOutcome::Accepted));
        release_start.close();

        let error = failed(start.wait(), Op::Start);
        match &error {
            SinkError::OnStartingHookFailed(cause) => assert_panic_cause(cause, "no credentials"),
            other => panic!("expected OnStartingHookFailed, got {other:?}"),
        }
        assert_eq!(error.reason(), ErrorReason::OnStartingHookFailed);
        assert_eq!(sink.state(), State::Failure);
        driver.join().unwrap();

        assert_eq!(
            sink.stats(),
            QueueStats {
                accepted: 2,
                failed: 2,
                high_watermark: 2,
                ..no_events()
            }
        );
        assert!(
            matches!(sink.last_error(), Some(SinkError::OnStartingHookFailed(_))),
            "{:?}",
            sink.last_error()
        );
        assert_refused(sink.log(3), 3, State::Failure);
        assert_invalid_state(
            &failed(sink.stop().wait(), Op::Stop),
            State::Failure,
            &[State::Running],
        );
        assert_eq!(seen.calls(), [Call::Starting]);
    });
}

#[test]
fn a_panicking_start_hook_fails_thread_create_with_the_panic_message() {
    within_guard(|| {
        let probe = Probe {
            start_panic: Some("no credentials"),
            ..Probe::default()
        };
        let seen = probe.seen.clone();
        let error = mvx::rt::thread::create(probe, config()).expect_err("the start hook panicked");
        match &error {
            CreateError::Sink(SinkError::OnStartingHookFailed(cause)) => {
                assert_panic_cause(cause, "no credentials")
            }
            other => panic!("expected Sink(OnStartingHookFailed), got {other:?}"),
        }
        assert_eq!(error.reason(), ErrorReason::OnStartingHookFailed);
        // The runtime thread was joined: the dispatcher is gone.
        assert_eq!(seen.calls(), [Call::Starting]);
        assert_eq!(Arc::strong_count(&seen.0), 1);
    });
}

#[test]
fn a_panicking_stop_hook_fails_the_stop_with_the_panic_message_but_the_sink_stops() {
    within_guard(|| {
        let probe = Probe {
            stop_panic: Some("close failed"),
            ..Probe::default()
        };
        let (sink, driver, seen) = started_with_queued_events(probe, config(), 1..4);

        let error = failed(sink.stop().wait(), Op::Stop);
        match &error {
            SinkError::OnStoppedHookFailed(cause) => assert_panic_cause(cause, "close failed"),
            other => panic!("expected OnStoppedHookFailed, got {other:?}"),
        }
        assert_eq!(error.reason(), ErrorReason::OnStoppedHookFailed);
        assert_eq!(sink.state(), State::Stopped);
        driver.join().unwrap();

        assert_eq!(seen.delivered(), [1, 2, 3]);
        assert_eq!(
            sink.stats(),
            QueueStats {
                accepted: 3,
                delivered: 3,
                high_watermark: 3,
                ..no_events()
            }
        );
        assert!(
            matches!(sink.last_error(), Some(SinkError::OnStoppedHookFailed(_))),
            "{:?}",
            sink.last_error()
        );
        assert_eq!(
            seen.calls(),
            [
                Call::Starting,
                Call::Dispatch(1),
                Call::Dispatch(2),
                Call::Dispatch(3),
                Call::Flush,
                Call::Stopped,
            ]
        );
        assert_refused(sink.log(4), 4, State::Stopped);
        assert_invalid_state(
            &failed(sink.stop().wait(), Op::Stop),
            State::Stopped,
            &[State::Running],
        );
    });
}

#[test]
fn a_panicking_flush_hook_moves_the_sink_to_failure() {
    within_guard(|| {
        let probe = Probe {
            flush_panic: Some("flush exploded"),
            ..Probe::default()
        };
        let seen = probe.seen.clone();
        let (sink, driver) = AsyncSink::new(probe, config());
        // One thread polls both the driver and the flush, so the flush sees the failure
        // only once the driver has finished recording it.
        let mut pool = LocalPool::new();
        let done = Arc::new(AtomicBool::new(false));
        let flag = done.clone();
        pool.spawner()
            .spawn(async move {
                driver.await;
                flag.store(true, Ordering::SeqCst);
            })
            .unwrap();
        assert_succeeded(pool.run_until(sink.start()), Op::Start);
        assert_eq!(sink.log(1), Ok(LogOutcome::Accepted));

        let error = pool
            .run_until(sink.flush())
            .expect_err("the flush hook panicked");
        assert_dispatcher_panicked(&error, "flush exploded");
        pool.run_until_stalled();
        assert!(done.load(Ordering::SeqCst), "the driver completed");

        assert_failed_sink(&sink, "flush exploded");
        // The event was dispatched before the flush hook panicked.
        assert_eq!(seen.delivered(), [1]);
        assert_eq!(
            sink.stats(),
            QueueStats {
                accepted: 1,
                delivered: 1,
                high_watermark: 1,
                ..no_events()
            }
        );
        assert_eq!(
            seen.calls(),
            [Call::Starting, Call::Dispatch(1), Call::Flush]
        );
    });
}

#[test]
fn a_dispatch_panicking_during_a_stop_fails_the_stop_and_the_sink() {
    within_guard(|| {
        let (release_dispatch, dispatch_gate) = gate();
        let probe = Probe {
            dispatch_gate: Some(dispatch_gate),
            panic_on: Some(1),
            ..Probe::default()
        };
        let (sink, driver, seen) = started_with_queued_events(probe, config().batch_size(1), 0..3);
        seen.wait_for(Call::Dispatch(0));

        let stop = sink.stop();
        assert_eq!(sink.state(), State::Stopping);
        release_dispatch.close();
        let error = failed(stop.wait(), Op::Stop);
        assert_dispatcher_panicked(&error, "dispatch exploded on event 1");
        assert_eq!(sink.state(), State::Failure);
        driver.join().unwrap();

        assert_failed_sink(&sink, "dispatch exploded on event 1");
        assert_eq!(seen.delivered(), [0]);
        assert_eq!(
            sink.stats(),
            QueueStats {
                accepted: 3,
                delivered: 1,
                failed: 2,
                high_watermark: 3,
                ..no_events()
            }
        );
        // Neither flushed nor stopped after the panic.
        assert_eq!(
            seen.calls(),
            [Call::Starting, Call::Dispatch(0), Call::Dispatch(1)]
        );
    });
}

#[test]
fn terminate_after_a_dispatcher_panic_reports_it_every_time() {
    within_guard(|| {
        let (release_dispatch, dispatch_gate) = gate();
        let probe = Probe {
            dispatch_gate: Some(dispatch_gate),
            panic_on: Some(2),
            ..Probe::default()
        };
        let seen = probe.seen.clone();
        let (sink, terminator) =
            mvx::rt::thread::create(probe, config().batch_size(1)).expect("created");
        assert_eq!(sink.state(), State::Running);
        assert_eq!(sink.log(0), Ok(LogOutcome::Accepted));
        seen.wait_for(Call::Dispatch(0));
        for event in 1..4 {
            assert_eq!(sink.log(event), Ok(LogOutcome::Accepted));
        }
        release_dispatch.close();

        let mut final_stats = Vec::new();
        for _ in 0..2 {
            match terminator.terminate() {
                Err(TerminateError::Stop { error, stats }) => {
                    assert_dispatcher_panicked(&error, "dispatch exploded on event 2");
                    final_stats.push(*stats);
                }
                other => panic!("expected Stop(DispatcherPanicked), got {other:?}"),
            }
        }
        // The failed termination carries the final counters, the same every time.
        assert_eq!(final_stats, [sink.stats(), sink.stats()]);
        assert!(terminator.is_terminated());
        assert_failed_sink(&sink, "dispatch exploded on event 2");
        assert_eq!(seen.delivered(), [0, 1]);
        assert_eq!(
            sink.stats(),
            QueueStats {
                accepted: 4,
                delivered: 2,
                failed: 2,
                high_watermark: 4,
                ..no_events()
            }
        );
    });
}

// ---------------------------------------------------------------------------------------
// Hangs
// ---------------------------------------------------------------------------------------

#[test]
fn a_hung_dispatch_is_abandoned_when_the_stop_times_out() {
    within_guard(|| {
        let probe = Probe {
            hang_on: Some(1),
            ..Probe::default()
        };
        let config = config().batch_size(1).stop_timeout(Some(STOP_TIMEOUT));
        let (sink, driver, seen) = started_with_queued_events(probe, config, 0..4);
        // Event 0 delivered, event 1 hung in dispatch, events 2 and 3 queued.
        seen.wait_for(Call::Dispatch(1));
        assert_eq!(
            sink.stats(),
            QueueStats {
                accepted: 4,
                delivered: 1,
                pending: 3,
                high_watermark: 4,
                ..no_events()
            }
        );

        let asked = Instant::now();
        let stop = sink.stop();
        assert_eq!(sink.state(), State::Stopping);
        let error = failed(stop.wait(), Op::Stop);
        assert!(asked.elapsed() >= STOP_TIMEOUT, "{:?}", asked.elapsed());
        // The hung batch (1 event) and the 2 events queued behind it.
        assert_stop_timed_out(&error, 3);
        assert_eq!(sink.state(), State::Stopped);
        driver.join().unwrap();

        assert_eq!(seen.delivered(), [0]);
        assert_eq!(
            sink.stats(),
            QueueStats {
                accepted: 4,
                delivered: 1,
                failed: 3,
                high_watermark: 4,
                ..no_events()
            }
        );
        assert_stop_timed_out(&sink.last_error().expect("the timeout is kept"), 3);
        assert_stop_timed_out(
            &block_on(sink.flush()).expect_err("the stop abandoned events"),
            3,
        );
        assert_refused(sink.log(4), 4, State::Stopped);
        // Neither flushed nor stopped: the dispatcher was simply dropped.
        assert_eq!(
            seen.calls(),
            [Call::Starting, Call::Dispatch(0), Call::Dispatch(1)]
        );
        assert_eq!(Arc::strong_count(&seen.0), 1, "the dispatcher was dropped");
    });
}

#[test]
fn a_hung_stop_hook_is_abandoned_when_the_stop_times_out() {
    within_guard(|| {
        let probe = Probe {
            stop_hangs: true,
            ..Probe::default()
        };
        let config = config().stop_timeout(Some(STOP_TIMEOUT));
        let (sink, driver, seen) = started_with_queued_events(probe, config, 1..3);

        let asked = Instant::now();
        let error = failed(sink.stop().wait(), Op::Stop);
        assert!(asked.elapsed() >= STOP_TIMEOUT, "{:?}", asked.elapsed());
        // Every event was delivered before the hook hung.
        assert_stop_timed_out(&error, 0);
        assert_eq!(sink.state(), State::Stopped);
        driver.join().unwrap();

        assert_eq!(seen.delivered(), [1, 2]);
        assert_eq!(
            sink.stats(),
            QueueStats {
                accepted: 2,
                delivered: 2,
                high_watermark: 2,
                ..no_events()
            }
        );
        assert_eq!(
            seen.calls(),
            [
                Call::Starting,
                Call::Dispatch(1),
                Call::Dispatch(2),
                Call::Flush,
                Call::Stopped,
            ]
        );
    });
}

/// The start timeout of the tests with a hanging start hook.
const START_TIMEOUT: Duration = Duration::from_millis(200);

fn assert_start_timed_out(error: &SinkError) {
    match error {
        SinkError::StartTimedOut { timeout } => assert_eq!(*timeout, START_TIMEOUT),
        other => panic!("expected StartTimedOut, got {other:?}"),
    }
    assert_eq!(error.reason(), ErrorReason::StartTimedOut);
}

/// A start hook that never returns is cut off at `start_timeout`: the start fails with
/// `StartTimedOut`, the sink is in `Failure`, the events logged while it was starting are
/// counted as failed (not silently forgotten), and the dispatcher is dropped.
#[test]
fn a_hung_start_hook_is_cut_off_at_the_start_timeout() {
    within_guard(|| {
        let probe = Probe {
            start_hangs: true,
            ..Probe::default()
        };
        let seen = probe.seen.clone();
        let config = config().start_timeout(Some(START_TIMEOUT));
        let (sink, driver) = AsyncSink::new(probe, config);
        let driver = on_thread(driver);

        let asked = Instant::now();
        let start = sink.start();
        seen.wait_for(Call::Starting);
        assert_eq!(sink.log(1), Ok(LogOutcome::Accepted));
        assert_eq!(sink.log(2), Ok(LogOutcome::Accepted));
        assert_start_timed_out(&failed(start.wait(), Op::Start));
        assert!(asked.elapsed() >= START_TIMEOUT, "{:?}", asked.elapsed());
        driver.join().unwrap();

        assert_eq!(sink.state(), State::Failure);
        assert_eq!(
            sink.stats(),
            QueueStats {
                accepted: 2,
                failed: 2,
                high_watermark: 2,
                ..no_events()
            }
        );
        assert_start_timed_out(&sink.last_error().expect("the timeout is kept"));
        assert_start_timed_out(&block_on(sink.flush()).expect_err("the sink failed"));
        assert_refused(sink.log(3), 3, State::Failure);
        assert_invalid_state(
            &failed(sink.stop().wait(), Op::Stop),
            State::Failure,
            &[State::Running],
        );
        assert_eq!(seen.calls(), [Call::Starting]);
        assert_eq!(Arc::strong_count(&seen.0), 1, "the dispatcher was dropped");
    });
}

/// `rt::thread::create` waits for the start; with a start hook that never returns it fails
/// with `StartTimedOut` once the start timeout passes, and joins its thread, instead of
/// blocking for ever.
#[test]
fn a_hung_start_hook_fails_thread_create_at_the_start_timeout() {
    within_guard(|| {
        let probe = Probe {
            start_hangs: true,
            ..Probe::default()
        };
        let seen = probe.seen.clone();
        let config = config().start_timeout(Some(START_TIMEOUT));
        let error = mvx::rt::thread::create(probe, config).expect_err("the start hook hangs");
        match &error {
            CreateError::Sink(error) => assert_start_timed_out(error),
            other => panic!("expected Sink(StartTimedOut), got {other:?}"),
        }
        assert_eq!(error.reason(), ErrorReason::StartTimedOut);
        assert_eq!(seen.calls(), [Call::Starting]);
        assert_eq!(
            Arc::strong_count(&seen.0),
            1,
            "the runtime thread was joined"
        );
    });
}
