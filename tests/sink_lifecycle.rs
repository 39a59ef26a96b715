//! Every lifecycle transition of a sink, and the error each refused or failed operation
//! reports (the reason codes themselves: `tests/error_reasons.rs`).
//!
//! Each test checks the exact state, the exact error variant with its `reason()` code, and
//! the exact counters. Timing inside user code is controlled with gates (an
//! `async_channel` the dispatcher awaits until the test releases it), never with sleeps;
//! every test body runs under a watchdog so that a hang fails the test instead of the run.
#![cfg(not(loom))]

use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, mpsc};
use std::task::Context;

use async_channel::Receiver;
use futures::executor::{LocalPool, block_on};
use futures::task::{SpawnExt, noop_waker_ref};
use mvx::error::{Cause, SinkError};
use mvx::queue::{LogOutcome, QueueStats};
use mvx::sink::{AsyncSink, BatchError, Discard, Dispatch, Driver};
use mvx::{BoxError, ErrorReason, Op, State};

#[path = "support/sink_harness.rs"]
mod sink_harness;
#[path = "support/watchdog.rs"]
mod watchdog;

use sink_harness::{
    Call, Probe, UserError, assert_invalid_state, assert_refused, assert_succeeded, config, failed,
    gate, no_events, on_thread,
};
use watchdog::{GUARD, within_guard};

// ---------------------------------------------------------------------------------------
// Harness
// ---------------------------------------------------------------------------------------

/// Spawns the driver on a pool the test polls by hand; the flag says when it completed.
fn on_pool(pool: &LocalPool, driver: Driver) -> Arc<AtomicBool> {
    let done = Arc::new(AtomicBool::new(false));
    let flag = done.clone();
    pool.spawner()
        .spawn(async move {
            driver.await;
            flag.store(true, Ordering::SeqCst);
        })
        .expect("the pool is alive");
    done
}

fn assert_flushed(result: Result<(), SinkError>) {
    if let Err(error) = result {
        panic!("flush failed: {error:?}");
    }
}

/// `cause` is the [`UserError`] with `text`, not a panic.
fn assert_user_cause(cause: &Cause, text: &str) {
    assert_eq!(cause.to_string(), text);
    assert!(!cause.is_panic());
    assert_eq!(cause.panic_message(), None);
    assert_eq!(
        cause.downcast_ref::<UserError>(),
        Some(&UserError(text.into()))
    );
}

fn assert_cancelled(error: &SinkError) {
    assert!(
        matches!(error, SinkError::DispatcherCancelled),
        "expected DispatcherCancelled, got {error:?}"
    );
    assert_eq!(error.reason(), ErrorReason::DispatcherCancelled);
}

// ---------------------------------------------------------------------------------------
// Virgin → Starting → Running, and start() in every state
// ---------------------------------------------------------------------------------------

#[test]
fn start_moves_a_virgin_sink_through_starting_to_running() {
    within_guard(|| {
        let (release_start, start_gate) = gate();
        let probe = Probe {
            start_gate: Some(start_gate),
            ..Probe::default()
        };
        let seen = probe.seen.clone();
        let (sink, driver) = AsyncSink::new(probe, config());
        assert_eq!(sink.state(), State::Virgin);
        let driver = on_thread(driver);

        let first = sink.start();
        assert_eq!(sink.state(), State::Starting);
        seen.wait_for(Call::Starting);
        assert_eq!(sink.state(), State::Starting);
        // A second start while starting attaches to the same operation.
        let second = sink.start();
        assert!(
            first.try_result().is_none(),
            "the start hook has not returned"
        );
        assert!(
            second.try_result().is_none(),
            "the start hook has not returned"
        );

        release_start.send_blocking(()).unwrap();
        assert_succeeded(block_on(first), Op::Start);
        assert_succeeded(second.wait(), Op::Start);
        assert_eq!(sink.state(), State::Running);

        // start() while running resolves at once with the same success.
        let third = sink.start();
        assert_succeeded(
            third.try_result().expect("the start already finished"),
            Op::Start,
        );
        assert_succeeded(third.wait(), Op::Start);
        assert_eq!(sink.stats(), no_events());

        assert_succeeded(sink.stop().wait(), Op::Stop);
        assert_eq!(sink.state(), State::Stopped);
        driver.join().unwrap();

        // A sink is never restarted.
        let error = failed(sink.start().wait(), Op::Start);
        assert_invalid_state(&error, State::Stopped, &[State::Virgin]);
        assert_eq!(sink.state(), State::Stopped);
        assert!(sink.last_error().is_none(), "{:?}", sink.last_error());
        // One start hook for three start() calls; no dispatch, so no flush.
        assert_eq!(seen.calls(), [Call::Starting, Call::Stopped]);
        assert_eq!(sink.stats(), no_events());
    });
}

#[test]
fn stop_is_refused_in_every_state_but_running() {
    within_guard(|| {
        let (release_start, start_gate) = gate();
        let (release_dispatch, dispatch_gate) = gate();
        let probe = Probe {
            start_gate: Some(start_gate),
            dispatch_gate: Some(dispatch_gate),
            ..Probe::default()
        };
        let seen = probe.seen.clone();
        let (sink, driver) = AsyncSink::new(probe, config());
        let driver = on_thread(driver);

        let error = failed(sink.stop().wait(), Op::Stop);
        assert_invalid_state(&error, State::Virgin, &[State::Running]);
        assert_eq!(sink.state(), State::Virgin);

        let start = sink.start();
        seen.wait_for(Call::Starting);
        let error = failed(sink.stop().wait(), Op::Stop);
        assert_invalid_state(&error, State::Starting, &[State::Running]);
        assert_eq!(sink.state(), State::Starting);
        release_start.send_blocking(()).unwrap();
        assert_succeeded(start.wait(), Op::Start);

        // A dispatch in progress holds the stop open.
        assert_eq!(sink.log(1), Ok(LogOutcome::Accepted));
        seen.wait_for(Call::Dispatch(1));
        let stop = sink.stop();
        assert_eq!(sink.state(), State::Stopping);
        let error = failed(sink.stop().wait(), Op::Stop);
        assert_invalid_state(&error, State::Stopping, &[State::Running]);
        assert_eq!(sink.state(), State::Stopping);
        assert!(
            stop.try_result().is_none(),
            "the first stop is still draining"
        );

        release_dispatch.close();
        assert_succeeded(stop.wait(), Op::Stop);
        assert_eq!(sink.state(), State::Stopped);
        let error = failed(sink.stop().wait(), Op::Stop);
        assert_invalid_state(&error, State::Stopped, &[State::Running]);
        driver.join().unwrap();

        assert_eq!(
            sink.stats(),
            QueueStats {
                accepted: 1,
                delivered: 1,
                high_watermark: 1,
                ..no_events()
            }
        );
        assert_eq!(seen.delivered(), [1]);
        assert!(sink.last_error().is_none(), "{:?}", sink.last_error());
    });
}

// ---------------------------------------------------------------------------------------
// Running → Stopping → Stopped
// ---------------------------------------------------------------------------------------

#[test]
fn stop_delivers_every_event_accepted_before_it_and_refuses_later_ones() {
    within_guard(|| {
        let (release_dispatch, dispatch_gate) = gate();
        let probe = Probe {
            dispatch_gate: Some(dispatch_gate),
            ..Probe::default()
        };
        let seen = probe.seen.clone();
        let (sink, driver) = AsyncSink::new(probe, config());
        let driver = on_thread(driver);
        assert_succeeded(sink.start().wait(), Op::Start);

        for event in 0..5 {
            assert_eq!(sink.log(event), Ok(LogOutcome::Accepted));
        }
        // Nothing finishes before the gate opens.
        seen.wait_for(Call::Dispatch(0));
        let before_stop = QueueStats {
            accepted: 5,
            pending: 5,
            high_watermark: 5,
            ..no_events()
        };
        assert_eq!(sink.stats(), before_stop);

        let stop = sink.stop();
        assert_eq!(sink.state(), State::Stopping);
        assert_refused(sink.log(99), 99, State::Stopping);
        // A refused event is counted as refused, and nothing else.
        let before_stop = QueueStats {
            refused: 1,
            ..before_stop
        };
        assert_eq!(sink.stats(), before_stop);

        release_dispatch.close();
        assert_succeeded(stop.wait(), Op::Stop);
        assert_eq!(sink.state(), State::Stopped);
        assert_eq!(seen.delivered(), [0, 1, 2, 3, 4]);
        assert_eq!(
            sink.stats(),
            QueueStats {
                accepted: 5,
                delivered: 5,
                refused: 1,
                high_watermark: 5,
                ..no_events()
            }
        );
        // The stop flushed the dispatcher before its stop hook.
        assert_eq!(
            seen.calls(),
            [
                Call::Starting,
                Call::Dispatch(0),
                Call::Dispatch(1),
                Call::Dispatch(2),
                Call::Dispatch(3),
                Call::Dispatch(4),
                Call::Flush,
                Call::Stopped,
            ]
        );
        assert_refused(sink.log(100), 100, State::Stopped);
        driver.join().unwrap();
    });
}

// ---------------------------------------------------------------------------------------
// Lazy start and events accepted while starting
// ---------------------------------------------------------------------------------------

#[test]
fn lazy_start_starts_a_virgin_sink_on_the_first_log() {
    within_guard(|| {
        let (release_start, start_gate) = gate();
        let probe = Probe {
            start_gate: Some(start_gate),
            ..Probe::default()
        };
        let seen = probe.seen.clone();
        let (sink, driver) = AsyncSink::new(probe, config().lazy_start(true));
        let driver = on_thread(driver);
        assert_eq!(sink.state(), State::Virgin);

        assert_eq!(sink.log(7), Ok(LogOutcome::Accepted));
        assert_eq!(sink.state(), State::Starting);
        seen.wait_for(Call::Starting);
        // start() attaches to the start the log began.
        let start = sink.start();
        assert!(
            start.try_result().is_none(),
            "the start hook has not returned"
        );
        release_start.send_blocking(()).unwrap();
        assert_succeeded(start.wait(), Op::Start);
        assert_eq!(sink.state(), State::Running);

        assert_flushed(block_on(sink.flush()));
        assert_eq!(seen.delivered(), [7]);
        assert_eq!(
            sink.stats(),
            QueueStats {
                accepted: 1,
                delivered: 1,
                high_watermark: 1,
                ..no_events()
            }
        );
        assert_succeeded(sink.stop().wait(), Op::Stop);
        assert_eq!(sink.state(), State::Stopped);
        driver.join().unwrap();
        assert_eq!(
            seen.calls(),
            [
                Call::Starting,
                Call::Dispatch(7),
                Call::Flush,
                Call::Stopped
            ]
        );
    });
}

#[test]
fn without_lazy_start_a_virgin_sink_refuses_events() {
    within_guard(|| {
        let probe = Probe::default();
        let seen = probe.seen.clone();
        let (sink, driver) = AsyncSink::new(probe, config());
        let driver = on_thread(driver);

        assert_refused(sink.log(7), 7, State::Virgin);
        assert_eq!(sink.state(), State::Virgin);
        assert_eq!(
            sink.stats(),
            QueueStats {
                refused: 1,
                ..no_events()
            }
        );

        // Dropping the only handle of a virgin sink lets its driver finish, unstarted.
        drop(sink);
        driver.join().unwrap();
        assert_eq!(seen.calls(), []);
    });
}

#[test]
fn events_logged_while_starting_are_delivered_once_the_start_hook_succeeds() {
    within_guard(|| {
        let (release_start, start_gate) = gate();
        let probe = Probe {
            start_gate: Some(start_gate),
            ..Probe::default()
        };
        let seen = probe.seen.clone();
        let (sink, driver) = AsyncSink::new(probe, config());
        let driver = on_thread(driver);

        let start = sink.start();
        seen.wait_for(Call::Starting);
        for event in 1..=3 {
            assert_eq!(sink.log(event), Ok(LogOutcome::Accepted));
        }
        assert_eq!(
            sink.stats(),
            QueueStats {
                accepted: 3,
                pending: 3,
                high_watermark: 3,
                ..no_events()
            }
        );
        assert_eq!(seen.delivered(), [0u32; 0]);
        assert_eq!(seen.calls(), [Call::Starting]);

        release_start.send_blocking(()).unwrap();
        assert_succeeded(start.wait(), Op::Start);
        assert_flushed(block_on(sink.flush()));
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
        assert_succeeded(sink.stop().wait(), Op::Stop);
        driver.join().unwrap();
        assert_eq!(sink.state(), State::Stopped);
    });
}

// ---------------------------------------------------------------------------------------
// Failing hooks and dispatches
// ---------------------------------------------------------------------------------------

#[test]
fn a_failing_start_hook_moves_the_sink_to_failure_and_fails_events_logged_while_starting() {
    within_guard(|| {
        let (release_start, start_gate) = gate();
        let probe = Probe {
            start_gate: Some(start_gate),
            start_error: Some("backend unreachable"),
            ..Probe::default()
        };
        let seen = probe.seen.clone();
        let (sink, driver) = AsyncSink::new(probe, config());
        let driver = on_thread(driver);

        let start = sink.start();
        seen.wait_for(Call::Starting);
        assert_eq!(sink.log(1), Ok(LogOutcome::Accepted));
        assert_eq!(sink.log(2), Ok(LogOutcome::Accepted));
        let attached = sink.start();
        release_start.send_blocking(()).unwrap();

        // Every handle on the start sees the same failure.
        for handle in [start, attached] {
            let error = failed(handle.wait(), Op::Start);
            match &error {
                SinkError::OnStartingHookFailed(cause) => {
                    assert_user_cause(cause, "backend unreachable")
                }
                other => panic!("expected OnStartingHookFailed, got {other:?}"),
            }
            assert_eq!(error.reason(), ErrorReason::OnStartingHookFailed);
        }
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
        match sink.last_error() {
            Some(SinkError::OnStartingHookFailed(cause)) => {
                assert_user_cause(&cause, "backend unreachable")
            }
            other => panic!("expected OnStartingHookFailed, got {other:?}"),
        }
        match block_on(sink.flush()) {
            Err(SinkError::OnStartingHookFailed(cause)) => {
                assert_user_cause(&cause, "backend unreachable")
            }
            other => panic!("expected OnStartingHookFailed, got {other:?}"),
        }
        assert_refused(sink.log(3), 3, State::Failure);
        assert_invalid_state(
            &failed(sink.start().wait(), Op::Start),
            State::Failure,
            &[State::Virgin],
        );
        assert_invalid_state(
            &failed(sink.stop().wait(), Op::Stop),
            State::Failure,
            &[State::Running],
        );
        assert_eq!(sink.state(), State::Failure);
        // Nothing was dispatched, flushed or stopped.
        assert_eq!(seen.calls(), [Call::Starting]);
        assert_eq!(seen.delivered(), [0u32; 0]);
    });
}

#[test]
fn a_failing_stop_hook_fails_the_stop_but_the_sink_stops_with_every_event_delivered() {
    within_guard(|| {
        let (release_start, start_gate) = gate();
        let probe = Probe {
            start_gate: Some(start_gate),
            stop_error: Some("connection reset on close"),
            ..Probe::default()
        };
        let seen = probe.seen.clone();
        let (sink, driver) = AsyncSink::new(probe, config());
        let driver = on_thread(driver);

        let start = sink.start();
        seen.wait_for(Call::Starting);
        for event in 1..=3 {
            assert_eq!(sink.log(event), Ok(LogOutcome::Accepted));
        }
        release_start.send_blocking(()).unwrap();
        assert_succeeded(start.wait(), Op::Start);

        let error = failed(sink.stop().wait(), Op::Stop);
        match &error {
            SinkError::OnStoppedHookFailed(cause) => {
                assert_user_cause(cause, "connection reset on close")
            }
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
        assert_eq!(seen.calls().last(), Some(&Call::Stopped));
        assert_refused(sink.log(4), 4, State::Stopped);
    });
}

#[test]
fn dispatch_errors_count_as_failed_and_delivery_goes_on() {
    within_guard(|| {
        let (release_start, start_gate) = gate();
        let probe = Probe {
            start_gate: Some(start_gate),
            fail_on: vec![2, 4],
            ..Probe::default()
        };
        let seen = probe.seen.clone();
        let (sink, driver) = AsyncSink::new(probe, config());
        let driver = on_thread(driver);

        let start = sink.start();
        seen.wait_for(Call::Starting);
        for event in 0..6 {
            assert_eq!(sink.log(event), Ok(LogOutcome::Accepted));
        }
        release_start.send_blocking(()).unwrap();
        assert_succeeded(start.wait(), Op::Start);

        // A dispatch error is not a flush error.
        assert_flushed(block_on(sink.flush()));
        assert_eq!(seen.delivered(), [0, 1, 3, 5]);
        assert_eq!(
            sink.stats(),
            QueueStats {
                accepted: 6,
                delivered: 4,
                failed: 2,
                high_watermark: 6,
                ..no_events()
            }
        );
        let error = sink.last_error().expect("the dispatch errors are kept");
        match &error {
            SinkError::DispatchFailed(cause) => assert_user_cause(cause, "event 4 failed"),
            other => panic!("expected DispatchFailed, got {other:?}"),
        }
        assert_eq!(error.reason(), ErrorReason::DispatchFailed);
        assert_eq!(sink.state(), State::Running);

        // Delivery goes on.
        assert_eq!(sink.log(6), Ok(LogOutcome::Accepted));
        assert_succeeded(sink.stop().wait(), Op::Stop);
        assert_eq!(sink.state(), State::Stopped);
        driver.join().unwrap();
        assert_eq!(seen.delivered(), [0, 1, 3, 5, 6]);
        assert_eq!(
            sink.stats(),
            QueueStats {
                accepted: 7,
                delivered: 5,
                failed: 2,
                high_watermark: 6,
                ..no_events()
            }
        );
    });
}

/// Reports `failed` failures for every batch it gets, recording the batches.
struct FailingBatches {
    start_gate: Receiver<()>,
    failed: usize,
    batches: Arc<Mutex<Vec<Vec<u32>>>>,
}

impl Dispatch<u32> for FailingBatches {
    async fn on_starting(&mut self) -> Result<(), BoxError> {
        let _ = self.start_gate.recv().await;
        Ok(())
    }

    async fn dispatch(&mut self, _event: u32) -> Result<(), BoxError> {
        unreachable!("dispatch_batch is overridden")
    }

    async fn dispatch_batch(&mut self, events: &mut Vec<u32>) -> Result<(), BatchError> {
        self.batches.lock().unwrap().push(std::mem::take(events));
        Err(BatchError::new(
            self.failed,
            UserError(format!("{} of the batch failed", self.failed)),
        ))
    }
}

/// Logs `events` while starting, so that they form one batch whose dispatch reports
/// `reported` failures; returns the counters, the batches seen and the last error.
fn one_failing_batch(events: u32, reported: usize) -> (QueueStats, Vec<Vec<u32>>, SinkError) {
    let (release_start, start_gate) = gate();
    let batches = Arc::new(Mutex::new(Vec::new()));
    let dispatch = FailingBatches {
        start_gate,
        failed: reported,
        batches: batches.clone(),
    };
    let (sink, driver) = AsyncSink::new(dispatch, config());
    let driver = on_thread(driver);
    let start = sink.start();
    for event in 0..events {
        assert_eq!(sink.log(event), Ok(LogOutcome::Accepted));
    }
    release_start.send_blocking(()).unwrap();
    assert_succeeded(start.wait(), Op::Start);
    assert_flushed(block_on(sink.flush()));
    assert_eq!(sink.state(), State::Running);
    assert_succeeded(sink.stop().wait(), Op::Stop);
    driver.join().unwrap();
    let last_error = sink.last_error().expect("the batch error is kept");
    let batches = batches.lock().unwrap().clone();
    (sink.stats(), batches, last_error)
}

#[test]
fn a_batch_error_counts_exactly_the_failures_it_reports() {
    within_guard(|| {
        let (stats, batches, error) = one_failing_batch(5, 2);
        assert_eq!(batches, [vec![0, 1, 2, 3, 4]]);
        assert_eq!(
            stats,
            QueueStats {
                accepted: 5,
                delivered: 3,
                failed: 2,
                high_watermark: 5,
                ..no_events()
            }
        );
        match &error {
            SinkError::DispatchFailed(cause) => assert_user_cause(cause, "2 of the batch failed"),
            other => panic!("expected DispatchFailed, got {other:?}"),
        }
        assert_eq!(error.reason(), ErrorReason::DispatchFailed);
    });
}

#[test]
fn a_batch_error_reporting_more_failures_than_events_counts_the_whole_batch() {
    within_guard(|| {
        let (stats, batches, error) = one_failing_batch(3, 10);
        assert_eq!(batches, [vec![0, 1, 2]]);
        assert_eq!(
            stats,
            QueueStats {
                accepted: 3,
                failed: 3,
                high_watermark: 3,
                ..no_events()
            }
        );
        assert_eq!(error.reason(), ErrorReason::DispatchFailed);
    });
}

#[test]
fn a_failing_flush_hook_fails_the_flush_it_serves() {
    within_guard(|| {
        let (release_dispatch, dispatch_gate) = gate();
        let probe = Probe {
            dispatch_gate: Some(dispatch_gate),
            flush_error: Some("disk full"),
            ..Probe::default()
        };
        let seen = probe.seen.clone();
        let (sink, driver) = AsyncSink::new(probe, config());
        let driver = on_thread(driver);
        assert_succeeded(sink.start().wait(), Op::Start);

        assert_eq!(sink.log(1), Ok(LogOutcome::Accepted));
        seen.wait_for(Call::Dispatch(1));
        // Take the flush ticket while the event is still in dispatch, so that this flush
        // is the one that runs the dispatcher's flush hook.
        let mut flush = Box::pin(sink.flush());
        let mut cx = Context::from_waker(noop_waker_ref());
        assert!(flush.as_mut().poll(&mut cx).is_pending());
        release_dispatch.close();

        let error = block_on(flush).expect_err("the flush hook failed");
        match &error {
            SinkError::FlushFailed(cause) => assert_user_cause(cause, "disk full"),
            other => panic!("expected FlushFailed, got {other:?}"),
        }
        assert_eq!(error.reason(), ErrorReason::FlushFailed);
        assert!(
            matches!(sink.last_error(), Some(SinkError::FlushFailed(_))),
            "{:?}",
            sink.last_error()
        );
        assert_eq!(sink.state(), State::Running);
        assert_eq!(
            sink.stats(),
            QueueStats {
                accepted: 1,
                delivered: 1,
                high_watermark: 1,
                ..no_events()
            }
        );

        // The failed flush may have left output buffered: the stop flushes again, fails
        // again, and says so; the stop hook still runs and the sink is stopped.
        let stopped = sink.stop().wait();
        assert_eq!(stopped.op, Op::Stop);
        match stopped.error {
            Some(SinkError::FlushFailed(cause)) => assert_user_cause(&cause, "disk full"),
            other => panic!("expected FlushFailed, got {other:?}"),
        }
        assert_eq!(sink.state(), State::Stopped);
        driver.join().unwrap();
        assert_eq!(
            seen.calls(),
            [
                Call::Starting,
                Call::Dispatch(1),
                Call::Flush,
                Call::Flush,
                Call::Stopped
            ]
        );
    });
}

// ---------------------------------------------------------------------------------------
// Cancellation: the driver dropped while the sink is live
// ---------------------------------------------------------------------------------------

/// Checks everything about a sink whose driver was dropped: the state, the last error,
/// and that every operation is refused.
fn assert_cancelled_sink(sink: &AsyncSink<u32>, stats: QueueStats) {
    assert_eq!(sink.state(), State::Cancelled);
    assert_eq!(sink.stats(), stats);
    assert_cancelled(&sink.last_error().expect("the cancellation is kept"));
    assert_cancelled(&block_on(sink.flush()).expect_err("a cancelled sink does not flush"));
    assert_refused(sink.log(1000), 1000, State::Cancelled);
    // Refused, and counted as such: nothing else changes.
    let stats = QueueStats {
        refused: stats.refused + 1,
        ..stats
    };
    assert_invalid_state(
        &failed(sink.start().wait(), Op::Start),
        State::Cancelled,
        &[State::Virgin],
    );
    assert_invalid_state(
        &failed(sink.stop().wait(), Op::Stop),
        State::Cancelled,
        &[State::Running],
    );
    assert_eq!(sink.stats(), stats);
}

#[test]
fn dropping_the_driver_of_a_virgin_sink_cancels_it() {
    within_guard(|| {
        // Never polled.
        let probe = Probe::default();
        let seen = probe.seen.clone();
        let (sink, driver) = AsyncSink::new(probe, config());
        drop(driver);
        assert_cancelled_sink(&sink, no_events());
        assert_eq!(seen.calls(), []);

        // Polled until it waits for a start.
        let probe = Probe::default();
        let seen = probe.seen.clone();
        let (sink, driver) = AsyncSink::new(probe, config());
        let mut pool = LocalPool::new();
        let done = on_pool(&pool, driver);
        pool.run_until_stalled();
        assert!(!done.load(Ordering::SeqCst), "the driver waits for a start");
        assert_eq!(sink.state(), State::Virgin);
        drop(pool);
        assert_cancelled_sink(&sink, no_events());
        assert_eq!(seen.calls(), []);
    });
}

#[test]
fn dropping_the_driver_while_starting_fails_the_start_in_flight() {
    within_guard(|| {
        let (_release_start, start_gate) = gate();
        let probe = Probe {
            start_gate: Some(start_gate),
            ..Probe::default()
        };
        let seen = probe.seen.clone();
        let (sink, driver) = AsyncSink::new(probe, config());
        let mut pool = LocalPool::new();
        on_pool(&pool, driver);

        let start = sink.start();
        pool.run_until_stalled();
        assert_eq!(seen.calls(), [Call::Starting]);
        assert_eq!(sink.log(1), Ok(LogOutcome::Accepted));
        assert_eq!(sink.log(2), Ok(LogOutcome::Accepted));
        assert_eq!(sink.state(), State::Starting);
        assert!(
            start.try_result().is_none(),
            "the start hook has not returned"
        );

        drop(pool);
        assert_cancelled(&failed(start.wait(), Op::Start));
        assert_cancelled_sink(
            &sink,
            QueueStats {
                accepted: 2,
                failed: 2,
                high_watermark: 2,
                ..no_events()
            },
        );
        assert_eq!(seen.calls(), [Call::Starting]);
    });
}

#[test]
fn dropping_the_driver_while_running_cancels_and_fails_queued_events() {
    within_guard(|| {
        let (_release_dispatch, dispatch_gate) = gate();
        let probe = Probe {
            dispatch_gate: Some(dispatch_gate),
            ..Probe::default()
        };
        let seen = probe.seen.clone();
        let (sink, driver) = AsyncSink::new(probe, config().batch_size(1));
        let mut pool = LocalPool::new();
        on_pool(&pool, driver);

        let start = sink.start();
        pool.run_until_stalled();
        assert_succeeded(start.try_result().expect("the start finished"), Op::Start);
        assert_eq!(sink.state(), State::Running);
        for event in 1..=3 {
            assert_eq!(sink.log(event), Ok(LogOutcome::Accepted));
        }
        // Event 1 is in dispatch, 2 and 3 are queued.
        pool.run_until_stalled();
        assert_eq!(seen.calls(), [Call::Starting, Call::Dispatch(1)]);
        let mut flush = Box::pin(sink.flush());
        let mut cx = Context::from_waker(noop_waker_ref());
        assert!(flush.as_mut().poll(&mut cx).is_pending());

        drop(pool);
        // The flush in flight learns why it will never be served.
        assert_cancelled(&block_on(flush).expect_err("the driver is gone"));
        assert_cancelled_sink(
            &sink,
            QueueStats {
                accepted: 3,
                failed: 3,
                high_watermark: 3,
                ..no_events()
            },
        );
        assert_eq!(seen.delivered(), [0u32; 0]);
        assert_eq!(seen.calls(), [Call::Starting, Call::Dispatch(1)]);
    });
}

#[test]
fn dropping_the_driver_while_stopping_fails_the_stop_in_flight() {
    within_guard(|| {
        let (_release_dispatch, dispatch_gate) = gate();
        let probe = Probe {
            dispatch_gate: Some(dispatch_gate),
            ..Probe::default()
        };
        let seen = probe.seen.clone();
        let (sink, driver) = AsyncSink::new(probe, config().batch_size(1));
        let mut pool = LocalPool::new();
        on_pool(&pool, driver);

        assert_succeeded(pool.run_until(sink.start()), Op::Start);
        for event in 1..=3 {
            assert_eq!(sink.log(event), Ok(LogOutcome::Accepted));
        }
        pool.run_until_stalled();
        let stop = sink.stop();
        pool.run_until_stalled();
        assert_eq!(sink.state(), State::Stopping);
        assert!(stop.try_result().is_none(), "event 1 is still in dispatch");
        assert_refused(sink.log(4), 4, State::Stopping);

        drop(pool);
        assert_cancelled(&failed(stop.wait(), Op::Stop));
        assert_cancelled_sink(
            &sink,
            QueueStats {
                accepted: 3,
                failed: 3,
                refused: 1,
                high_watermark: 3,
                ..no_events()
            },
        );
        assert_eq!(seen.calls(), [Call::Starting, Call::Dispatch(1)]);
    });
}

/// An event whose drop parks the dropping thread until the test releases it, so that the
/// test can look at a sink half-way through its cancellation.
struct Parking {
    arrived: mpsc::Sender<()>,
    release: mpsc::Receiver<()>,
}

impl Drop for Parking {
    fn drop(&mut self) {
        let _ = self.arrived.send(());
        let _ = self.release.recv_timeout(GUARD);
    }
}

#[test]
fn a_flush_racing_the_cancellation_reports_dispatcher_cancelled_with_final_counters() {
    within_guard(|| {
        let (sink, driver) = AsyncSink::<Parking>::new(Discard, config());
        let mut pool = LocalPool::new();
        on_pool(&pool, driver);
        assert_succeeded(pool.run_until(sink.start()), Op::Start);

        let (arrived_tx, arrived_rx) = mpsc::channel();
        let (release_tx, release_rx) = mpsc::channel();
        let event = Parking {
            arrived: arrived_tx,
            release: release_rx,
        };
        assert!(matches!(sink.log(event), Ok(LogOutcome::Accepted)));
        // The pool is not run again: the event stays queued until the driver is dropped,
        // which drops it while cancelling the sink, before counting it as failed.
        let observer = sink.clone();
        let flusher = std::thread::spawn(move || {
            arrived_rx
                .recv_timeout(GUARD)
                .expect("the cancellation drops the queued event");
            let state = observer.state();
            // The flush waits for the abandoned event to be counted, that is for its drop
            // to return: release the drop once the flush has begun.
            let (flushing_tx, flushing_rx) = mpsc::channel();
            let flushing = std::thread::spawn(move || {
                flushing_tx.send(()).unwrap();
                let flushed = observer.flush_blocking();
                (flushed, observer.stats())
            });
            flushing_rx.recv_timeout(GUARD).expect("the flush begins");
            release_tx.send(()).unwrap();
            let (flushed, stats) = flushing.join().unwrap();
            (state, flushed, stats)
        });
        drop(pool);
        let (state, flushed, stats_after_flush) = flusher.join().unwrap();

        assert_eq!(state, State::Cancelled);
        // The terminal error is recorded before the state turns terminal: a flush that
        // sees `Cancelled` also sees why.
        match flushed {
            Err(SinkError::DispatcherCancelled) => {}
            other => panic!("a flush of an abandoned event returned {other:?}"),
        }
        // And it returns only once the abandoned event is counted: the counters read after
        // it are final (found by tests/sink_properties.rs).
        assert_eq!(
            stats_after_flush,
            QueueStats {
                accepted: 1,
                failed: 1,
                high_watermark: 1,
                ..no_events()
            }
        );
        assert_eq!(sink.state(), State::Cancelled);
        assert_cancelled(&block_on(sink.flush()).expect_err("a cancelled sink does not flush"));
        assert_eq!(
            sink.stats(),
            QueueStats {
                accepted: 1,
                failed: 1,
                high_watermark: 1,
                ..no_events()
            }
        );
    });
}

// ---------------------------------------------------------------------------------------
// Spawning, dropping handles
// ---------------------------------------------------------------------------------------

#[test]
fn spawn_on_an_executor_that_shut_down_is_event_loop_unavailable() {
    within_guard(|| {
        let pool = LocalPool::new();
        let spawner = pool.spawner();
        drop(pool);
        let probe = Probe::default();
        let seen = probe.seen.clone();
        let error = AsyncSink::<u32>::spawn_on(probe, config(), &spawner)
            .expect_err("the executor has shut down");
        assert!(
            matches!(error, SinkError::EventLoopUnavailable),
            "expected EventLoopUnavailable, got {error:?}"
        );
        assert_eq!(error.reason(), ErrorReason::EventLoopUnavailable);
        // The dispatcher was dropped with the refused driver.
        assert_eq!(seen.holders(), 1);
        assert_eq!(seen.calls(), []);
    });
}

#[test]
fn spawn_on_a_live_executor_runs_the_driver_there() {
    within_guard(|| {
        let mut pool = LocalPool::new();
        let probe = Probe::default();
        let seen = probe.seen.clone();
        let sink = AsyncSink::spawn_on(probe, config(), &pool.spawner()).expect("spawned");
        assert_eq!(sink.state(), State::Virgin);
        assert_succeeded(pool.run_until(sink.start()), Op::Start);
        assert_eq!(sink.log(1), Ok(LogOutcome::Accepted));
        assert_succeeded(pool.run_until(sink.stop()), Op::Stop);
        pool.run_until_stalled();
        assert_eq!(sink.state(), State::Stopped);
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
        // The driver finished and dropped the dispatcher.
        assert_eq!(seen.holders(), 1);
    });
}

#[test]
fn dropping_every_handle_of_a_running_sink_stops_it() {
    within_guard(|| {
        let probe = Probe::default();
        let seen = probe.seen.clone();
        let (sink, driver) = AsyncSink::new(probe, config());
        let driver = on_thread(driver);
        assert_succeeded(sink.start().wait(), Op::Start);
        let other = sink.clone();
        for event in 1..=3 {
            assert_eq!(other.log(event), Ok(LogOutcome::Accepted));
        }
        drop(sink);
        assert_eq!(other.log(4), Ok(LogOutcome::Accepted));
        drop(other);

        // The driver completes: the sink stopped as if stop() were called.
        driver.join().unwrap();
        assert_eq!(seen.delivered(), [1, 2, 3, 4]);
        let calls = seen.calls();
        assert_eq!(calls.last(), Some(&Call::Stopped));
        assert_eq!(calls.iter().filter(|c| **c == Call::Stopped).count(), 1);
        assert_eq!(seen.holders(), 1, "the dispatcher was dropped");
    });
}

// ---------------------------------------------------------------------------------------
// The table of legal transitions
// ---------------------------------------------------------------------------------------

#[test]
fn legal_transitions_are_exactly_the_documented_table() {
    use State::*;

    assert_eq!(
        State::ALL,
        [
            Virgin, Starting, Running, Stopping, Stopped, Failure, Cancelled
        ]
    );
    const X: bool = true;
    const O: bool = false;
    // Rows: from; columns: to, in the order of `State::ALL`.
    #[rustfmt::skip]
    let table: [[bool; 7]; 7] = [
        //             Virgin Starting Running Stopping Stopped Failure Cancelled
        /* Virgin    */ [O,     X,       O,      O,       O,      O,      X],
        /* Starting  */ [O,     O,       X,      O,       O,      X,      X],
        /* Running   */ [O,     O,       O,      X,       O,      X,      X],
        /* Stopping  */ [O,     O,       O,      O,       X,      X,      X],
        /* Stopped   */ [O,     O,       O,      O,       O,      O,      O],
        /* Failure   */ [O,     O,       O,      O,       O,      O,      O],
        /* Cancelled */ [O,     O,       O,      O,       O,      O,      O],
    ];
    let mut checked = 0;
    for (row, from) in State::ALL.into_iter().enumerate() {
        for (column, to) in State::ALL.into_iter().enumerate() {
            assert_eq!(
                from.can_transition_to(to),
                table[row][column],
                "{from} -> {to}"
            );
            checked += 1;
        }
        // Exactly the states without a way out are terminal.
        let has_exit = table[row].contains(&X);
        assert_eq!(from.is_terminal(), !has_exit, "{from}");
        assert_eq!(from.accepts_events(), matches!(from, Starting | Running));
    }
    assert_eq!(checked, 49);

    let names = [
        "VIRGIN",
        "STARTING",
        "RUNNING",
        "STOPPING",
        "STOPPED",
        "FAILURE",
        "CANCELLED",
    ];
    for (state, name) in State::ALL.into_iter().zip(names) {
        assert_eq!(state.as_str(), name);
        assert_eq!(state.to_string(), name);
    }
    assert_eq!(Op::Start.to_string(), "START");
    assert_eq!(Op::Stop.to_string(), "STOP");
}
