//! The waits of a sink — a producer waiting for room (`send`), a flush, a lifecycle
//! operation (`WaitHandle`) — each awaited, blocked on, and blocked on with a deadline.
//!
//! The deadlines here are generous where the condition is met (they catch hangs), and
//! short only where nothing can meet the condition (a driver that is never polled), so
//! that no assertion depends on timing.
#![cfg(not(loom))]

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::channel::oneshot;
use futures::executor::block_on;
use mvx::error::{SendTimeoutError, SinkError};
use mvx::queue::{LogOutcome, OverflowPolicy, QueueStats};
use mvx::sink::sinks::MemorySink;
use mvx::sink::{AsyncSink, BatchError, Discard, Dispatch, Driver, SinkConfig};
use mvx::{ErrorReason, Op, State};

#[path = "support/watchdog.rs"]
mod watchdog;

use watchdog::{GUARD, within_guard};

/// Short: only for waits that nothing can end (the driver is never polled).
const SHORT: Duration = Duration::from_millis(20);

fn config(capacity: usize) -> SinkConfig {
    SinkConfig::default()
        .queue_capacity(capacity)
        .overflow(OverflowPolicy::Block)
}

/// A started sink whose driver is kept but never polled: its queue never drains.
fn stalled(capacity: usize) -> (AsyncSink<u32>, Driver) {
    let (sink, driver) = AsyncSink::new(Discard, config(capacity));
    drop(sink.start());
    (sink, driver)
}

fn counts(stats: QueueStats) -> (u64, u64, u64, u64) {
    (stats.accepted, stats.delivered, stats.failed, stats.pending)
}

#[test]
fn a_send_that_times_out_hands_the_event_back_uncounted() {
    within_guard(|| {
        let (sink, _driver) = stalled(1);
        assert_eq!(sink.send(1).wait(), Ok(LogOutcome::Accepted));

        let timed_out = sink.send(2).wait_timeout(SHORT).unwrap_err();
        assert!(timed_out.is_timeout());
        assert_eq!(timed_out.reason(), ErrorReason::WaitTimedOut);
        assert_eq!(timed_out.reason().as_str(), "WAIT_TIMED_OUT");
        assert_eq!(timed_out.into_inner(), 2);

        // A deadline already passed is one more try.
        let past = sink.send(3).wait_deadline(Instant::now()).unwrap_err();
        assert_eq!(past, SendTimeoutError::TimedOut(3));
        assert_eq!(counts(sink.stats()), (1, 0, 0, 1));
        assert_eq!(sink.stats().dropped, 0);
    });
}

#[test]
fn a_send_with_a_deadline_is_accepted_once_room_frees() {
    within_guard(|| {
        let (memory, events) = MemorySink::new();
        let (sink, driver) = AsyncSink::new(memory, config(1));
        let start = sink.start();
        assert_eq!(sink.send(1).wait_timeout(GUARD), Ok(LogOutcome::Accepted));
        // The queue is full until the driver runs.
        let driver = std::thread::spawn(move || block_on(driver));
        assert_eq!(
            sink.send(2).wait_deadline(Instant::now() + GUARD),
            Ok(LogOutcome::Accepted)
        );
        assert!(start.wait().success);
        assert!(sink.stop().wait().success);
        driver.join().unwrap();
        assert_eq!(events.take(), vec![1, 2]);
        assert_eq!(counts(sink.stats()), (2, 2, 0, 0));
    });
}

#[test]
fn a_send_to_a_sink_that_does_not_accept_is_refused_in_every_form() {
    within_guard(|| {
        let (sink, _driver) = AsyncSink::new(Discard, config(1));
        let not_accepting = SendTimeoutError::NotAccepting {
            event: 5u32,
            state: State::Virgin,
        };
        assert_eq!(sink.send(5).wait_timeout(GUARD), Err(not_accepting.clone()));
        assert_eq!(not_accepting.reason(), ErrorReason::InvalidState);
        assert_eq!(
            sink.send(5)
                .wait()
                .map_err(|error| (error.reason(), error.into_inner())),
            Err((ErrorReason::InvalidState, 5))
        );
        assert_eq!(
            block_on(sink.send(5)).map_err(|error| error.into_inner()),
            Err(5)
        );
    });
}

/// Holds its first batch until released; writes only `dispatch_batch`.
struct Held {
    release: Option<oneshot::Receiver<()>>,
    delivered: Arc<Mutex<Vec<u32>>>,
}

impl Dispatch<u32> for Held {
    async fn dispatch_batch(&mut self, events: &mut Vec<u32>) -> Result<(), BatchError> {
        if let Some(release) = self.release.take() {
            let _ = release.await;
        }
        self.delivered.lock().unwrap().extend(events.drain(..));
        Ok(())
    }
}

#[test]
fn a_waiting_send_is_refused_when_the_sink_stops() {
    within_guard(|| {
        let (release, held) = oneshot::channel();
        let delivered = Arc::new(Mutex::new(Vec::new()));
        let dispatch = Held {
            release: Some(held),
            delivered: delivered.clone(),
        };
        let (sink, driver) = AsyncSink::new(dispatch, config(1));
        let driver = std::thread::spawn(move || block_on(driver));
        assert!(sink.start().wait().success);
        assert_eq!(sink.log(1), Ok(LogOutcome::Accepted));
        let waiting = {
            let sink = sink.clone();
            std::thread::spawn(move || sink.send(2).wait_timeout(GUARD))
        };
        // The slot stays taken until the first batch is released, after the stop closed
        // admission: the waiting send is refused, with its event back.
        let stop = sink.stop();
        match waiting.join().unwrap() {
            Err(SendTimeoutError::NotAccepting { event: 2, state }) => {
                assert!(matches!(state, State::Stopping), "{state}");
            }
            other => panic!("unexpected {other:?}"),
        }
        release.send(()).unwrap();
        assert!(stop.wait().success);
        driver.join().unwrap();
        assert_eq!(*delivered.lock().unwrap(), vec![1]);
        assert_eq!(counts(sink.stats()), (1, 1, 0, 0));
    });
}

#[test]
fn an_awaited_send_waits_for_room() {
    within_guard(|| {
        let (memory, events) = MemorySink::new();
        let (sink, driver) = AsyncSink::new(memory, config(1));
        drop(sink.start());
        assert_eq!(sink.log(1), Ok(LogOutcome::Accepted));
        let producer = {
            let sink = sink.clone();
            std::thread::spawn(move || block_on(sink.send(2)))
        };
        let driver = std::thread::spawn(move || block_on(driver));
        assert_eq!(producer.join().unwrap(), Ok(LogOutcome::Accepted));
        sink.flush_blocking().unwrap();
        assert_eq!(events.take(), vec![1, 2]);
        assert!(sink.stop().wait().success);
        driver.join().unwrap();
    });
}

#[test]
fn a_flush_that_times_out_is_served_later() {
    within_guard(|| {
        let (memory, events) = MemorySink::new();
        let (sink, driver) = AsyncSink::new(memory, config(4));
        drop(sink.start());
        assert_eq!(sink.log(1), Ok(LogOutcome::Accepted));

        let timed_out = sink.flush().wait_timeout(SHORT).unwrap_err();
        assert!(
            matches!(timed_out, SinkError::WaitTimedOut),
            "{timed_out:?}"
        );
        assert_eq!(timed_out.reason(), ErrorReason::WaitTimedOut);
        assert_eq!(
            sink.flush()
                .wait_deadline(Instant::now())
                .map_err(|e| e.reason()),
            Err(ErrorReason::WaitTimedOut)
        );

        // Requested when `flush()` was called: served once the driver runs.
        let flush = sink.flush();
        let driver = std::thread::spawn(move || block_on(driver));
        assert_eq!(flush.wait_timeout(GUARD).map_err(|e| e.reason()), Ok(()));
        assert_eq!(events.take(), vec![1]);
        assert_eq!(block_on(sink.flush()).map_err(|e| e.reason()), Ok(()));
        assert!(sink.stop().wait().success);
        driver.join().unwrap();
    });
}

#[test]
fn a_lifecycle_wait_that_times_out_hands_the_handle_back() {
    within_guard(|| {
        let (sink, driver) = AsyncSink::<u32>::new(Discard, config(1));
        let start = sink.start();
        assert_eq!(start.op(), Op::Start);
        let still_starting = start.wait_timeout(SHORT).unwrap_err();
        assert_eq!(still_starting.op(), Op::Start);
        assert_eq!(still_starting.reason(), ErrorReason::WaitTimedOut);
        assert_eq!(
            still_starting.to_string(),
            "the START operation is still in flight after the deadline"
        );
        let handle = still_starting.into_handle();
        assert!(handle.try_result().is_none());

        let driver = std::thread::spawn(move || block_on(driver));
        let started = handle
            .wait_deadline(Instant::now() + GUARD)
            .expect("the start finishes once the driver runs");
        assert!(started.success);
        let stopped = block_on(sink.stop());
        assert!(stopped.success);
        driver.join().unwrap();
        // A finished operation answers every form at once.
        assert!(
            sink.stop()
                .wait_timeout(Duration::ZERO)
                .unwrap()
                .error
                .is_some()
        );
    });
}
