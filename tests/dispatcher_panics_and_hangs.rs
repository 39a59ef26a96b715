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

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use futures::executor::{LocalPool, block_on};
use futures::task::SpawnExt;
use mvx::error::{Cause, CreateError, SinkError, TerminateError};
use mvx::queue::{LogOutcome, QueueStats};
use mvx::sink::{AsyncSink, SinkConfig};
use mvx::{ErrorReason, Op, State};

#[path = "support/sink_harness.rs"]
mod sink_harness;
#[path = "support/watchdog.rs"]
mod watchdog;

use sink_harness::{
    Call, Probe, Seen, assert_invalid_state, assert_refused, assert_succeeded, config, failed,
    gate, no_events, on_thread,
};
use watchdog::within_guard;

/// The stop timeout of the tests with a hanging user future.
const STOP_TIMEOUT: Duration = Duration::from_millis(200);

// ---------------------------------------------------------------------------------------
// Harness
// ---------------------------------------------------------------------------------------

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
    let refused = sink.stats().refused;
    assert_refused(sink.log(1000), 1000, State::Failure);
    assert_eq!(
        sink.stats().refused,
        refused + 1,
        "a refused event is counted"
    );
    assert_eq!(sink.state(), State::Failure);
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
                // `assert_failed_sink` logged one event, refused.
                refused: 1,
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
        assert_eq!(seen.holders(), 1, "the dispatcher was dropped");
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
        assert_eq!(seen.holders(), 1);
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
                // `assert_failed_sink` logged one event, refused.
                refused: 1,
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
                // `assert_failed_sink` logged one event, refused.
                refused: 1,
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
                // `assert_failed_sink` logged one event, refused.
                refused: 1,
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
        assert_eq!(seen.holders(), 1, "the dispatcher was dropped");
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
        assert_eq!(seen.holders(), 1, "the dispatcher was dropped");
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
        assert_eq!(seen.holders(), 1, "the runtime thread was joined");
    });
}
