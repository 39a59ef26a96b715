//! loom models of slot reservation against the pending-event limit: producers racing each
//! other, the driver, a stop, a flush and a dropped driver, through the public `AsyncSink`
//! API and the real driver (polled by `loom::future::block_on` on a thread of its own).
//!
//! What the models check, in every interleaving loom explores:
//! - the limit is exact: never more than `capacity` events pending, and never fewer
//!   accepted than there was room for (a slot lost);
//! - no slot leaks: once everything has finished, `accepted == delivered + failed` and
//!   `pending == 0`, whether an event was accepted, refused or revoked;
//! - no lost wake-up: a parked driver is woken by a producer's push alone, a producer
//!   waiting for room is woken when the driver frees a slot, a flush waiter when its events
//!   are done (a lost wake-up is a deadlock, which loom reports). Each of these waits is
//!   written once (`crate::sync::Wait`) and waited on two ways, both modelled: blocked on
//!   (`log()` under `Block`, `flush_blocking()`: `crate::sync::block_on`, spin then park)
//!   and awaited (`send(..)`, `flush()` polled by `loom::future::block_on`:
//!   `crate::sync::Waiter`);
//! - no busy waiting: a driver that spins instead of parking exceeds loom's branch limit;
//! - no self-deadlock: a blocking wait made from inside the sink's own dispatch is refused
//!   at once (`WouldDeadlock`) in every interleaving, rather than parked for ever.
//!
//! Run with `RUSTFLAGS="--cfg loom" cargo test --profile loom --no-default-features
//! --features thread --test loom_queue` (see `.ci/run`); `LOOM_MAX_PREEMPTIONS` overrides
//! each model's preemption bound.
#![cfg(loom)]

#[path = "support/loom_harness.rs"]
mod loom_harness;

use loom::future::block_on;
use loom::sync::{Arc, Mutex};
use loom::thread;

use std::time::Duration;

use mvx::queue::{LogOutcome, OverflowPolicy, QueueStats};
use mvx::sink::{AsyncSink, Dispatch, PollBudget};
use mvx::{BoxError, ErrorReason};

use loom_harness::{Counted, Gated, config, model, spawn_driver};

/// `(accepted, delivered, failed, pending)`.
fn counts(stats: QueueStats) -> (u64, u64, u64, u64) {
    (stats.accepted, stats.delivered, stats.failed, stats.pending)
}

/// `log`, with the error reduced to its reason; checks that a refused event comes back.
fn log(sink: &AsyncSink<u32>, event: u32) -> Result<LogOutcome, ErrorReason> {
    sink.log(event).map_err(|error| {
        let reason = error.reason();
        assert_eq!(error.into_inner(), event, "the refused event comes back");
        reason
    })
}

/// Logs `event` on a new thread.
fn spawn_log(
    sink: &AsyncSink<u32>,
    event: u32,
) -> thread::JoinHandle<Result<LogOutcome, ErrorReason>> {
    let sink = sink.clone();
    thread::spawn(move || log(&sink, event))
}

/// Two producers log into a started sink whose driver parks whenever it runs out of work.
/// Only their pushes can wake it: the model waits for both deliveries before it lets the
/// sink stop (which would wake the driver itself).
///
/// Without a SeqCst fence after the push and after the driver marks itself asleep, loom
/// finds the interleaving where neither sees the other's write and the driver sleeps on
/// an event (see `seq_cst_for_loom` in `src/sync.rs`).
#[test]
fn producers_wake_the_parked_driver() {
    model(1, || {
        let counted = Counted::default();
        let (sink, driver) = AsyncSink::new(counted.clone(), config(2, OverflowPolicy::RaiseError));
        let start = sink.start();
        let driver = spawn_driver(driver);
        assert!(start.wait().success);

        let producer = spawn_log(&sink, 1);
        assert_eq!(log(&sink, 0), Ok(LogOutcome::Accepted));
        assert_eq!(producer.join().unwrap(), Ok(LogOutcome::Accepted));
        counted.wait_for(2);

        assert!(sink.stop().wait().success);
        driver.join().unwrap();
        let stats = sink.stats();
        assert_eq!(counts(stats), (2, 2, 0, 0), "{stats}");
    });
}

/// Three producers race for two slots of a sink that is starting (events are accepted
/// already; the driver has not run yet): exactly two are accepted and the third gets its
/// event back in `QueueOverflow`, whatever the interleaving. Then the driver delivers both.
#[test]
fn three_producers_get_exactly_the_free_slots() {
    model(1, || {
        let counted = Counted::default();
        let (sink, driver) = AsyncSink::new(counted.clone(), config(2, OverflowPolicy::RaiseError));
        let start = sink.start();

        let producers = [spawn_log(&sink, 1), spawn_log(&sink, 2)];
        let mut outcomes = vec![log(&sink, 0)];
        outcomes.extend(producers.map(|producer| producer.join().unwrap()));
        let accepted = outcomes
            .iter()
            .filter(|outcome| **outcome == Ok(LogOutcome::Accepted))
            .count();
        let overflowed = outcomes
            .iter()
            .filter(|outcome| **outcome == Err(ErrorReason::QueueOverflow))
            .count();
        assert_eq!((accepted, overflowed), (2, 1), "{outcomes:?}");
        let stats = sink.stats();
        assert_eq!(counts(stats), (2, 0, 0, 2), "{stats}");
        assert_eq!(stats.high_watermark, 2, "{stats}");
        // The event handed back is counted as refused, and only it.
        assert_eq!(stats.refused, 1, "{stats}");

        let driver = spawn_driver(driver);
        assert!(start.wait().success);
        assert!(sink.stop().wait().success);
        driver.join().unwrap();
        let stats = sink.stats();
        assert_eq!(counts(stats), (2, 2, 0, 0), "{stats}");
        assert_eq!(counted.delivered(), 2);
    });
}

/// Capacity 1 and a dispatcher that holds its first batch: of two producers racing each
/// other and the driver taking the first event, exactly one is accepted and the other gets
/// its event back in `QueueOverflow`. A slot is freed only when its event is finished, not
/// when the driver takes it from the ring.
#[test]
fn a_slot_stays_taken_while_its_event_is_in_dispatch() {
    model(1, || {
        let gated = Gated::default();
        let (sink, driver) = AsyncSink::new(gated.clone(), config(1, OverflowPolicy::RaiseError));
        let start = sink.start();
        let driver = spawn_driver(driver);
        assert!(start.wait().success);

        let producer = spawn_log(&sink, 1);
        let mine = log(&sink, 0);
        let theirs = producer.join().unwrap();
        let accepted = Ok(LogOutcome::Accepted);
        let overflow = Err(ErrorReason::QueueOverflow);
        assert!(
            (mine == accepted && theirs == overflow) || (mine == overflow && theirs == accepted),
            "{mine:?} and {theirs:?}"
        );
        let stats = sink.stats();
        assert_eq!(counts(stats), (1, 0, 0, 1), "{stats}");

        gated.open();
        assert!(sink.stop().wait().success);
        driver.join().unwrap();
        let stats = sink.stats();
        assert_eq!(counts(stats), (1, 1, 0, 0), "{stats}");
        assert_eq!(stats.high_watermark, 1, "{stats}");
        assert_eq!(gated.counted.delivered(), 1);
    });
}

/// Capacity 1, `OverflowPolicy::Block`: two producers, one of which must wait for the
/// driver to finish the other's event. The driver's `finish` must wake it.
#[test]
fn a_blocked_producer_is_woken_when_a_slot_frees() {
    model(1, || {
        let counted = Counted::default();
        let (sink, driver) = AsyncSink::new(counted.clone(), config(1, OverflowPolicy::Block));
        drop(sink.start());
        let driver = spawn_driver(driver);

        let producer = spawn_log(&sink, 1);
        assert_eq!(log(&sink, 0), Ok(LogOutcome::Accepted));
        assert_eq!(producer.join().unwrap(), Ok(LogOutcome::Accepted));

        // Running: the blocked producer got in once the driver had finished an event.
        assert!(sink.stop().wait().success);
        driver.join().unwrap();
        let stats = sink.stats();
        assert_eq!(counts(stats), (2, 2, 0, 0), "{stats}");
        // A producer measures pending after its push: the driver may have finished the
        // other event by then. Never above the limit, though.
        assert!(stats.high_watermark <= 1, "{stats}");
        assert_eq!(counted.delivered(), 2);
    });
}

/// A dispatcher that waits on its own sink from inside each dispatch: a blocking flush, and
/// a blocking log into its queue of one slot, which the event in dispatch holds.
struct WaitsOnItself {
    own: Arc<Mutex<Option<AsyncSink<u32>>>>,
    /// `(flushed, logged)` of each dispatch, reduced to reasons.
    refusals: Arc<Mutex<Vec<(Option<ErrorReason>, Option<ErrorReason>)>>>,
}

impl Dispatch<u32> for WaitsOnItself {
    async fn dispatch(&mut self, event: u32) -> Result<(), BoxError> {
        let own = self
            .own
            .lock()
            .unwrap()
            .clone()
            .expect("set before the start");
        let flushed = own.flush_blocking().err().map(|error| error.reason());
        let logged = own.log(event + 10).err().map(|error| error.reason());
        self.refusals.lock().unwrap().push((flushed, logged));
        Ok(())
    }
}

/// Capacity 1, `OverflowPolicy::Block`, and a dispatcher that waits on its own sink (see
/// [`WaitsOnItself`]) while a producer on another thread waits for room. In every
/// interleaving the dispatcher's two waits are refused at once with `WouldDeadlock` (a
/// wait that parked could never be woken, which loom reports as a deadlock) — but for a
/// log after the stop closed admission, refused as ever — and the blocked producer is
/// still woken when the driver finishes the event before its own.
#[test]
fn a_dispatcher_waiting_on_its_own_sink_is_refused_and_producers_still_wake() {
    model(1, || {
        let own = Arc::new(Mutex::new(None));
        let refusals = Arc::new(Mutex::new(Vec::new()));
        let dispatcher = WaitsOnItself {
            own: own.clone(),
            refusals: refusals.clone(),
        };
        let (sink, driver) = AsyncSink::new(dispatcher, config(1, OverflowPolicy::Block));
        *own.lock().unwrap() = Some(sink.clone());
        drop(sink.start());
        let driver = spawn_driver(driver);

        let producer = spawn_log(&sink, 1);
        assert_eq!(log(&sink, 0), Ok(LogOutcome::Accepted));
        assert_eq!(producer.join().unwrap(), Ok(LogOutcome::Accepted));

        assert!(sink.stop().wait().success);
        driver.join().unwrap();
        let stats = sink.stats();
        assert_eq!(counts(stats), (2, 2, 0, 0), "{stats}");
        // The first event is finished before the second is accepted, and both before the
        // stop; the second may be dispatched after the stop closed admission, when a log
        // is refused without waiting.
        let refused = Some(ErrorReason::WouldDeadlock);
        let refusals = refusals.lock().unwrap().clone();
        assert_eq!(refusals[0], (refused, refused), "{refusals:?}");
        assert!(
            [
                (refused, refused),
                (refused, Some(ErrorReason::InvalidState))
            ]
            .contains(&refusals[1]),
            "{refusals:?}"
        );
        assert_eq!(refusals.len(), 2);
    });
}

/// A producer races a stop: its event is either accepted and then delivered by the stop, or
/// refused with the event back. No slot is left pending either way.
#[test]
fn a_reservation_racing_a_stop_is_delivered_or_refused() {
    model(2, || {
        let counted = Counted::default();
        let (sink, driver) = AsyncSink::new(counted.clone(), config(2, OverflowPolicy::RaiseError));
        let start = sink.start();
        let driver = spawn_driver(driver);
        assert!(start.wait().success);

        let producer = spawn_log(&sink, 1);
        assert!(sink.stop().wait().success);
        let outcome = producer.join().unwrap();
        driver.join().unwrap();

        let accepted = match outcome {
            Ok(LogOutcome::Accepted) => 1,
            Err(ErrorReason::InvalidState) => 0,
            other => panic!("unexpected outcome {other:?}"),
        };
        let stats = sink.stats();
        assert_eq!(counts(stats), (accepted, accepted, 0, 0), "{stats}");
        assert_eq!(counted.delivered(), accepted);
    });
}

/// A producer races the drop of the driver (the sink is `Starting`, the driver never
/// polled): its event is accepted and counted as failed, revoked (the ring closed between
/// its reservation and its push: it comes back) or refused. Nothing is left pending.
#[test]
fn a_reservation_racing_a_dropped_driver_is_failed_or_refused() {
    model(2, || {
        let (sink, driver) =
            AsyncSink::new(Counted::default(), config(2, OverflowPolicy::RaiseError));
        let start = sink.start();

        let producer = spawn_log(&sink, 1);
        drop(driver);
        let outcome = producer.join().unwrap();

        let accepted = match outcome {
            Ok(LogOutcome::Accepted) => 1,
            Err(ErrorReason::InvalidState) => 0,
            other => panic!("unexpected outcome {other:?}"),
        };
        let stats = sink.stats();
        assert_eq!(counts(stats), (accepted, 0, accepted, 0), "{stats}");
        let result = start.wait();
        assert_eq!(
            result.error.map(|error| error.reason()),
            Some(ErrorReason::DispatcherCancelled)
        );
    });
}

/// A flush racing a producer: it returns once every event accepted before it is
/// delivered, and the driver parks while it waits for one that is reserved but not pushed
/// yet.
///
/// Regression: the driver counted any unserved flush request as work, so with a flush
/// pending and a producer between its reservation and its push, it went round its loop
/// without parking until the push — a core busy for as long as the producer was
/// descheduled. loom reported it here as a model exceeding its branch limit.
#[test]
fn a_flush_waits_for_a_reserved_event_without_spinning() {
    model(1, || {
        let counted = Counted::default();
        let (sink, driver) = AsyncSink::new(counted.clone(), config(2, OverflowPolicy::RaiseError));
        let start = sink.start();
        let driver = spawn_driver(driver);
        let producer = spawn_log(&sink, 1);
        // Waiting here lets the producer run (and stop half-way) without a preemption.
        assert!(start.wait().success);

        let accepted_before = sink.stats().accepted;
        assert_eq!(
            sink.flush_blocking().map_err(|error| error.reason()),
            Ok(())
        );
        assert!(counted.delivered() >= accepted_before);
        assert_eq!(producer.join().unwrap(), Ok(LogOutcome::Accepted));

        assert!(sink.stop().wait().success);
        driver.join().unwrap();
        let stats = sink.stats();
        assert_eq!(counts(stats), (1, 1, 0, 0), "{stats}");
    });
}

/// Capacity 1: a producer *awaits* room (`send(..).await`, the async path of the wait)
/// while another blocks for it (`log()` under `Block`, the blocking path). Whichever gets
/// the slot second must be woken when the driver finishes the first event.
#[test]
fn a_producer_awaiting_room_is_woken_when_a_slot_frees() {
    model(1, || {
        let counted = Counted::default();
        let (sink, driver) = AsyncSink::new(counted.clone(), config(1, OverflowPolicy::Block));
        drop(sink.start());
        let driver = spawn_driver(driver);

        let producer = {
            let sink = sink.clone();
            thread::spawn(move || block_on(sink.send(1)).map_err(|error| error.reason()))
        };
        assert_eq!(log(&sink, 0), Ok(LogOutcome::Accepted));
        assert_eq!(producer.join().unwrap(), Ok(LogOutcome::Accepted));

        assert!(sink.stop().wait().success);
        driver.join().unwrap();
        let stats = sink.stats();
        assert_eq!(counts(stats), (2, 2, 0, 0), "{stats}");
        assert_eq!(counted.delivered(), 2);
    });
}

/// A flush *awaited* (the async path of the flush wait) racing a producer: it resolves once
/// every event accepted before it is delivered; its waker is not lost between the driver
/// serving the ticket and the waiter registering.
#[test]
fn an_awaited_flush_is_woken_when_its_events_are_done() {
    model(1, || {
        let counted = Counted::default();
        let (sink, driver) = AsyncSink::new(counted.clone(), config(2, OverflowPolicy::RaiseError));
        let start = sink.start();
        let driver = spawn_driver(driver);
        assert!(block_on(start).success);
        assert_eq!(log(&sink, 0), Ok(LogOutcome::Accepted));

        let flusher = {
            let sink = sink.clone();
            let counted = counted.clone();
            thread::spawn(move || {
                let flushed = block_on(sink.flush()).map_err(|error| error.reason());
                (flushed, counted.delivered())
            })
        };
        // The flush was requested after the event was accepted: it covers it.
        assert_eq!(flusher.join().unwrap(), (Ok(()), 1));

        assert!(sink.stop().wait().success);
        driver.join().unwrap();
        let stats = sink.stats();
        assert_eq!(counts(stats), (1, 1, 0, 0), "{stats}");
    });
}

/// A driver whose poll budget is one event yields after every batch: it wakes itself and
/// returns `Pending` while there is work. A producer blocked for room, a flush and a stop
/// are served all the same, whatever the interleaving: the yield loses no wake-up, and
/// the producer that waits for room is not counted as refused.
#[test]
fn a_driver_that_yields_after_every_batch_loses_no_wake_up() {
    model(1, || {
        let counted = Counted::default();
        let budget = PollBudget {
            events: 1,
            // Not read under loom: the models have no clock.
            time: Duration::MAX,
        };
        let config = config(1, OverflowPolicy::Block).poll_budget(Some(budget));
        let (sink, driver) = AsyncSink::new(counted.clone(), config);
        let start = sink.start();
        let driver = spawn_driver(driver);
        assert!(start.wait().success);

        let producer = spawn_log(&sink, 1);
        assert_eq!(log(&sink, 0), Ok(LogOutcome::Accepted));
        assert_eq!(producer.join().unwrap(), Ok(LogOutcome::Accepted));
        assert_eq!(
            sink.flush_blocking().map_err(|error| error.reason()),
            Ok(())
        );
        assert_eq!(counted.delivered(), 2);

        assert!(sink.stop().wait().success);
        driver.join().unwrap();
        let stats = sink.stats();
        assert_eq!(counts(stats), (2, 2, 0, 0), "{stats}");
        assert_eq!(stats.refused, 0, "{stats}");
    });
}
