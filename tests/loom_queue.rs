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
use mvx::sink::{AsyncSink, Dispatch, PollBudget, SinkConfig};
use mvx::{BoxError, ErrorReason};

use loom_harness::{Counted, Gated, config, model, spawn_driver};

/// `(accepted, delivered, failed, pending)`.
fn counts(stats: QueueStats) -> (u64, u64, u64, u64) {
    (stats.accepted, stats.delivered, stats.failed, stats.pending)
}

/// A started sink of `counted`, its driver on a thread of its own.
fn running(counted: &Counted, config: SinkConfig) -> (AsyncSink<u32>, thread::JoinHandle<()>) {
    let (sink, driver) = AsyncSink::new(counted.clone(), config);
    let start = sink.start();
    let driver = spawn_driver(driver);
    assert!(start.wait().success);
    (sink, driver)
}

/// Stops `sink`, joins its driver and returns its final counters.
fn stop(sink: &AsyncSink<u32>, driver: thread::JoinHandle<()>) -> QueueStats {
    assert!(sink.stop().wait().success);
    driver.join().unwrap();
    sink.stats()
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

/// How many of `outcomes` were accepted; the others were refused because the sink was
/// stopping (any other outcome fails the model).
fn accepted(outcomes: impl IntoIterator<Item = Result<LogOutcome, ErrorReason>>) -> u64 {
    outcomes
        .into_iter()
        .map(|outcome| match outcome {
            Ok(LogOutcome::Accepted) => 1,
            Err(ErrorReason::InvalidState) => 0,
            other => panic!("unexpected outcome {other:?}"),
        })
        .sum()
}

/// After a stop raced `sent` events: each accepted one was delivered, the others refused,
/// and nothing is pending.
fn assert_delivered_or_refused(sink: &AsyncSink<u32>, counted: &Counted, accepted: u64, sent: u64) {
    let stats = sink.stats();
    assert_eq!(counts(stats), (accepted, accepted, 0, 0), "{stats}");
    assert_eq!(stats.refused, sent - accepted, "{stats}");
    assert_eq!(counted.delivered(), accepted);
}

/// Two producers log into a started sink whose driver parks whenever it runs out of work.
/// Only their counts can wake it: the model waits for both deliveries before it lets the
/// sink stop (which would wake the driver itself).
///
/// The driver sets the queue's parked flag, passes the heavy side of the asymmetric barrier
/// and re-checks the counts; a producer stores its count, passes the light side and reads
/// the flag (both sides are `fence(SeqCst)` under loom), so one of the two sees the other
/// (see `src/queue/lanes.rs`): a lost wake-up here is a deadlock, which loom reports.
#[test]
fn producers_wake_the_parked_driver() {
    model(1, || {
        let counted = Counted::default();
        let (sink, driver) = running(&counted, config(2, OverflowPolicy::RaiseError));

        let producer = spawn_log(&sink, 1);
        assert_eq!(log(&sink, 0), Ok(LogOutcome::Accepted));
        assert_eq!(producer.join().unwrap(), Ok(LogOutcome::Accepted));
        counted.wait_for(2);

        let stats = stop(&sink, driver);
        assert_eq!(counts(stats), (2, 2, 0, 0), "{stats}");
    });
}

/// The limit applies to each producer thread's lane. Capacity 1, a sink that is starting
/// (events are accepted already; the driver has not run yet): two threads each log two
/// events while the main thread logs one. Whatever the interleaving, each thread gets
/// exactly its lane's one slot — its second event comes back in `QueueOverflow` — and no
/// thread's events take another's room. Then the driver delivers the three.
#[test]
fn each_producer_thread_gets_exactly_its_lane() {
    model(1, || {
        let counted = Counted::default();
        let (sink, driver) = AsyncSink::new(counted.clone(), config(1, OverflowPolicy::RaiseError));
        let start = sink.start();

        let producers = [1, 3].map(|first| {
            let sink = sink.clone();
            thread::spawn(move || (log(&sink, first), log(&sink, first + 1)))
        });
        assert_eq!(log(&sink, 0), Ok(LogOutcome::Accepted));
        for producer in producers {
            assert_eq!(
                producer.join().unwrap(),
                (Ok(LogOutcome::Accepted), Err(ErrorReason::QueueOverflow))
            );
        }
        let stats = sink.stats();
        assert_eq!(counts(stats), (3, 0, 0, 3), "{stats}");
        assert_eq!(stats.high_watermark, 1, "{stats}");
        // The events handed back are counted as refused, and only they.
        assert_eq!(stats.refused, 2, "{stats}");

        let driver = spawn_driver(driver);
        assert!(start.wait().success);
        let stats = stop(&sink, driver);
        assert_eq!(counts(stats), (3, 3, 0, 0), "{stats}");
        assert_eq!(counted.delivered(), 3);
    });
}

/// Capacity 1 and a dispatcher that holds its first batch: the main thread's first event
/// is accepted and its second gets `QueueOverflow`, whether the driver has taken the first
/// into its dispatch or not — a slot is freed when its event is finished, not when the
/// driver takes it from the ring. Meanwhile a producer on another thread has its own lane:
/// its event is accepted.
#[test]
fn a_slot_stays_taken_while_its_event_is_in_dispatch() {
    model(1, || {
        let gated = Gated::default();
        let (sink, driver) = AsyncSink::new(gated.clone(), config(1, OverflowPolicy::RaiseError));
        let start = sink.start();
        let driver = spawn_driver(driver);
        assert!(start.wait().success);

        let producer = spawn_log(&sink, 1);
        assert_eq!(log(&sink, 0), Ok(LogOutcome::Accepted));
        assert_eq!(log(&sink, 2), Err(ErrorReason::QueueOverflow));
        assert_eq!(producer.join().unwrap(), Ok(LogOutcome::Accepted));
        let stats = sink.stats();
        assert_eq!(counts(stats), (2, 0, 0, 2), "{stats}");

        gated.open();
        let stats = stop(&sink, driver);
        assert_eq!(counts(stats), (2, 2, 0, 0), "{stats}");
        assert_eq!(stats.high_watermark, 1, "{stats}");
        assert_eq!(gated.counted.delivered(), 2);
    });
}

/// Capacity 1, `OverflowPolicy::Block`: a producer logs two events, the second of which
/// must wait for the driver to finish the first; the main thread logs into its own lane
/// meanwhile. The driver's `finish` must wake the blocked producer.
#[test]
fn a_blocked_producer_is_woken_when_a_slot_frees() {
    model(1, || {
        let counted = Counted::default();
        let (sink, driver) = AsyncSink::new(counted.clone(), config(1, OverflowPolicy::Block));
        drop(sink.start());
        let driver = spawn_driver(driver);

        let producer = {
            let sink = sink.clone();
            thread::spawn(move || (log(&sink, 1), log(&sink, 2)))
        };
        assert_eq!(log(&sink, 0), Ok(LogOutcome::Accepted));
        assert_eq!(
            producer.join().unwrap(),
            (Ok(LogOutcome::Accepted), Ok(LogOutcome::Accepted))
        );

        // Running: the blocked producer got in once the driver had finished an event.
        let stats = stop(&sink, driver);
        assert_eq!(counts(stats), (3, 3, 0, 0), "{stats}");
        // A producer measures pending after its push: the driver may have finished the
        // other event by then. Never above the limit, though.
        assert!(stats.high_watermark <= 1, "{stats}");
        assert_eq!(counted.delivered(), 3);
    });
}

/// A dispatcher that waits on its own sink from inside its dispatches: a blocking flush in
/// each, and in the first, two blocking logs into its own lane of one slot (the lane of the
/// driver's thread): the first takes the slot, the second finds it held by an event only
/// this dispatch returning can let through.
struct WaitsOnItself {
    own: Arc<Mutex<Option<AsyncSink<u32>>>>,
    /// The flush of each dispatch of a producer's event, and the two logs of the first,
    /// reduced to reasons.
    waits: Arc<Mutex<Vec<Waits>>>,
}

type Flushed = Option<ErrorReason>;
type Logged = Result<LogOutcome, ErrorReason>;
/// What one dispatch's waits on its own sink returned.
type Waits = (Flushed, Option<(Logged, Logged)>);

impl Dispatch<u32> for WaitsOnItself {
    async fn dispatch(&mut self, event: u32) -> Result<(), BoxError> {
        if event >= 10 {
            return Ok(()); // logged by the dispatcher itself
        }
        let own = self
            .own
            .lock()
            .unwrap()
            .clone()
            .expect("set before the start");
        let flushed = own.flush_blocking().err().map(|error| error.reason());
        let first = self.waits.lock().unwrap().is_empty();
        let logged = first.then(|| (log(&own, event + 10), log(&own, event + 20)));
        self.waits.lock().unwrap().push((flushed, logged));
        Ok(())
    }
}

/// Capacity 1, `OverflowPolicy::Block`, and a dispatcher that waits on its own sink (see
/// [`WaitsOnItself`]) while a producer on another thread waits for room in its lane. In
/// every interleaving the dispatcher's waits are refused at once with `WouldDeadlock` (a
/// wait that parked could never be woken, which loom reports as a deadlock) — but for logs
/// after the stop closed admission, refused as ever — and the blocked producer is still
/// woken when the driver finishes its first event.
#[test]
fn a_dispatcher_waiting_on_its_own_sink_is_refused_and_producers_still_wake() {
    model(1, || {
        let own = Arc::new(Mutex::new(None));
        let waits = Arc::new(Mutex::new(Vec::new()));
        let dispatcher = WaitsOnItself {
            own: own.clone(),
            waits: waits.clone(),
        };
        let (sink, driver) = AsyncSink::new(dispatcher, config(1, OverflowPolicy::Block));
        *own.lock().unwrap() = Some(sink.clone());
        drop(sink.start());
        let driver = spawn_driver(driver);

        let producer = {
            let sink = sink.clone();
            thread::spawn(move || (log(&sink, 1), log(&sink, 2)))
        };
        let accepted = Ok(LogOutcome::Accepted);
        assert_eq!(producer.join().unwrap(), (accepted, accepted));

        assert!(sink.stop().wait().success);
        driver.join().unwrap();
        let waits = waits.lock().unwrap().clone();
        let refused = Some(ErrorReason::WouldDeadlock);
        let closed = Err(ErrorReason::InvalidState);
        assert_eq!(waits.len(), 2, "{waits:?}");
        assert!(
            waits.iter().all(|(flushed, _)| *flushed == refused),
            "{waits:?}"
        );
        // The stop may have closed admission before the first dispatch.
        let own_logs = waits[0].1.expect("the first dispatch logs");
        assert!(
            own_logs == (accepted, Err(ErrorReason::WouldDeadlock)) || own_logs == (closed, closed),
            "{waits:?}"
        );
        let accepted = 2 + u64::from(own_logs.0.is_ok());
        let stats = sink.stats();
        assert_eq!(counts(stats), (accepted, accepted, 0, 0), "{stats}");
    });
}

/// A producer races a stop: its event is either accepted and then delivered by the stop, or
/// refused with the event back. No slot is left pending either way.
#[test]
fn a_reservation_racing_a_stop_is_delivered_or_refused() {
    model(2, || {
        let counted = Counted::default();
        let (sink, driver) = running(&counted, config(2, OverflowPolicy::RaiseError));

        let producer = spawn_log(&sink, 1);
        assert!(sink.stop().wait().success);
        let accepted = accepted([producer.join().unwrap()]);
        driver.join().unwrap();
        assert_delivered_or_refused(&sink, &counted, accepted, 1);
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
        let accepted = accepted([producer.join().unwrap()]);
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

        let stats = stop(&sink, driver);
        assert_eq!(counts(stats), (1, 1, 0, 0), "{stats}");
    });
}

/// Capacity 1: a producer *awaits* room in its lane (`send(..).await`, the async path of
/// the wait) for its second event, while the main thread blocks for room in its own
/// (`log()` under `Block`, the blocking path). Each must be woken when the driver finishes
/// the event before its own.
#[test]
fn a_producer_awaiting_room_is_woken_when_a_slot_frees() {
    model(1, || {
        let counted = Counted::default();
        let (sink, driver) = AsyncSink::new(counted.clone(), config(1, OverflowPolicy::Block));
        drop(sink.start());
        let driver = spawn_driver(driver);

        let producer = {
            let sink = sink.clone();
            thread::spawn(move || {
                let first = block_on(sink.send(1)).map_err(|error| error.reason());
                let second = block_on(sink.send(2)).map_err(|error| error.reason());
                (first, second)
            })
        };
        assert_eq!(log(&sink, 0), Ok(LogOutcome::Accepted));
        assert_eq!(log(&sink, 3), Ok(LogOutcome::Accepted));
        assert_eq!(
            producer.join().unwrap(),
            (Ok(LogOutcome::Accepted), Ok(LogOutcome::Accepted))
        );

        let stats = stop(&sink, driver);
        assert_eq!(counts(stats), (4, 4, 0, 0), "{stats}");
        assert_eq!(counted.delivered(), 4);
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

        let stats = stop(&sink, driver);
        assert_eq!(counts(stats), (1, 1, 0, 0), "{stats}");
    });
}

/// A driver whose poll budget is one event yields after every batch: it wakes itself and
/// returns `Pending` while there is work. A producer blocked for room in its lane, a flush
/// and a stop are served all the same, whatever the interleaving: the yield loses no
/// wake-up, and the producer that waits for room is not counted as refused.
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
        let (sink, driver) = running(&counted, config);

        // The second event waits for the first to be finished.
        assert_eq!(log(&sink, 0), Ok(LogOutcome::Accepted));
        assert_eq!(log(&sink, 1), Ok(LogOutcome::Accepted));
        assert_eq!(
            sink.flush_blocking().map_err(|error| error.reason()),
            Ok(())
        );
        assert_eq!(counted.delivered(), 2);

        let stats = stop(&sink, driver);
        assert_eq!(counts(stats), (2, 2, 0, 0), "{stats}");
        assert_eq!(stats.refused, 0, "{stats}");
    });
}

/// Two producer threads log one event each and exit; the main thread joins them and
/// flushes. The flush covers both lanes — including those of threads that have exited —
/// and returns once both events are delivered; the stop then finds nothing pending.
#[test]
fn a_flush_covers_every_lane() {
    model(1, || {
        let counted = Counted::default();
        let (sink, driver) = running(&counted, config(1, OverflowPolicy::RaiseError));

        let producer = spawn_log(&sink, 1);
        assert_eq!(log(&sink, 0), Ok(LogOutcome::Accepted));
        assert_eq!(producer.join().unwrap(), Ok(LogOutcome::Accepted));
        assert_eq!(
            sink.flush_blocking().map_err(|error| error.reason()),
            Ok(())
        );
        assert_eq!(counted.delivered(), 2);

        let stats = stop(&sink, driver);
        assert_eq!(counts(stats), (2, 2, 0, 0), "{stats}");
    });
}

/// Two producers, each on a lane of its own, race a stop: each event is either accepted
/// and then delivered by the stop, or refused with the event back. Nothing is stranded in
/// a lane: the counters add up exactly.
#[test]
fn producers_on_two_lanes_racing_a_stop_are_delivered_or_refused() {
    model(1, || {
        let counted = Counted::default();
        let (sink, driver) = running(&counted, config(1, OverflowPolicy::RaiseError));

        let producers = [spawn_log(&sink, 1), spawn_log(&sink, 2)];
        assert!(sink.stop().wait().success);
        let accepted = accepted(producers.map(|producer| producer.join().unwrap()));
        driver.join().unwrap();
        assert_delivered_or_refused(&sink, &counted, accepted, 2);
    });
}

/// A producer logs three events while a stop races them and the driver takes one event a
/// batch: the seal can read a count of two and miss the third, with an event still to be
/// taken. The third is then accepted all the same (the lane's final count grows by it), or
/// handed back once the others were taken; either way the counters add up exactly and
/// every accepted event is delivered. (Preemption bound 3: the first at which loom reaches
/// the late push that joins the events left, checked by making that branch panic.)
#[test]
fn a_late_push_after_a_seal_with_events_left_is_accepted_or_refused() {
    model(3, || {
        let counted = Counted::default();
        let (sink, driver) = running(
            &counted,
            config(3, OverflowPolicy::RaiseError).batch_size(1),
        );

        let producer = {
            let sink = sink.clone();
            thread::spawn(move || [log(&sink, 1), log(&sink, 2), log(&sink, 3)])
        };
        assert!(sink.stop().wait().success);
        let accepted = accepted(producer.join().unwrap());
        driver.join().unwrap();
        assert_delivered_or_refused(&sink, &counted, accepted, 3);
    });
}
