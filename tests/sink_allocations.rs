//! `log()` and `register_event()` do not allocate: proved with a counting global
//! allocator.
//!
//! One test function only, so that no other test of this binary allocates while the
//! overall count is taken.
#![cfg(not(loom))]

use mvx::State;
use mvx::error::LogError;
use mvx::metrics::{Metric, MetricEvent, MetricKind, MetricsRuntime, Snapshot};
use mvx::queue::{LogOutcome, OverflowPolicy};
use mvx::sink::{Discard, SinkConfig};

#[path = "support/counting_allocator.rs"]
mod counting_allocator;

use counting_allocator::on_this_thread;

#[derive(Clone, Copy, Debug, PartialEq)]
struct Event {
    id: u64,
    payload: [u64; 3],
}

const EVENTS: u64 = 200_000;

#[test]
fn log_allocates_nothing_in_steady_state() {
    // Accepted events, with the dispatcher on its own thread.
    let config = SinkConfig::default()
        .queue_capacity(1024)
        .overflow(OverflowPolicy::Block);
    let (sink, terminator) = mvx::rt::thread::create(Discard, config).unwrap();
    let event = |id| Event {
        id,
        payload: [id; 3],
    };
    for id in 0..10_000 {
        let _ = sink.log(event(id)).unwrap();
    }
    sink.flush_blocking().unwrap();
    // A thread's first blocking wait (a full queue under `Block`) allocates the thread's
    // parker once; it is kept for the thread's life. Make that first wait happen here.
    let event = event_listener::Event::new();
    let listener = event.listen();
    assert_eq!(
        event_listener::Listener::wait_deadline(listener, std::time::Instant::now()),
        None
    );
    let event = |id| Event {
        id,
        payload: [id; 3],
    };

    let before_here = on_this_thread();
    let before_all = counting_allocator::all();
    for id in 0..EVENTS {
        assert_eq!(sink.log(event(id)), Ok(LogOutcome::Accepted));
    }
    let producer_allocations = on_this_thread() - before_here;
    sink.flush_blocking().unwrap();
    let overall_allocations = counting_allocator::all() - before_all;
    assert_eq!(producer_allocations, 0, "log() allocated on the producer");
    // The driver parks and wakes with a listener on its own stack; the flush above may
    // allocate one listener. Anything per event would show as thousands.
    assert!(
        overall_allocations * 1_000 <= EVENTS,
        "{overall_allocations} allocations for {EVENTS} events overall"
    );
    terminator.terminate().unwrap();
    assert_eq!(sink.stats().delivered, 10_000 + EVENTS);

    // Refused and dropped events do not allocate either.
    let (full, driver) = mvx::sink::AsyncSink::new(
        Discard,
        SinkConfig::default()
            .queue_capacity(1)
            .overflow(OverflowPolicy::Drop),
    );
    // Never started: every event is refused. Its driver is kept (dropping it would cancel).
    let (refused, _refused_driver) = mvx::sink::AsyncSink::new(Discard, SinkConfig::default());
    let start = full.start(); // the driver is never polled: the queue stays full
    assert_eq!(full.log(event(0)), Ok(LogOutcome::Accepted));
    let before_here = on_this_thread();
    for id in 0..10_000 {
        assert_eq!(full.log(event(id)), Ok(LogOutcome::Dropped));
        assert!(matches!(
            refused.log(event(id)),
            Err(LogError::NotAccepting {
                state: State::Virgin,
                ..
            })
        ));
    }
    assert_eq!(on_this_thread() - before_here, 0, "a refusal allocated");
    assert_eq!(full.stats().dropped, 10_000);
    drop((start, driver));

    // A recorder's register_event: the same path, plus the metrics applied on the driver.
    let runtime = MetricsRuntime::new().unwrap();
    let recorder = runtime
        .create_recorder_with::<Event>(
            "allocations",
            SinkConfig::default()
                .queue_capacity(1024)
                .overflow(OverflowPolicy::Block),
        )
        .unwrap();
    recorder.register_metric(Sum::default()).unwrap();
    for id in 0..10_000 {
        assert_eq!(recorder.register_event(event(id)), Ok(LogOutcome::Accepted));
    }
    futures::executor::block_on(recorder.snapshot_now()).unwrap();
    let before_here = on_this_thread();
    let before_all = counting_allocator::all();
    for id in 0..EVENTS {
        assert_eq!(recorder.register_event(event(id)), Ok(LogOutcome::Accepted));
    }
    let producer_allocations = on_this_thread() - before_here;
    recorder.sink().flush_blocking().unwrap();
    let overall_allocations = counting_allocator::all() - before_all;
    assert_eq!(
        producer_allocations, 0,
        "register_event allocated on the producer"
    );
    assert!(
        overall_allocations * 1_000 <= EVENTS,
        "{overall_allocations} allocations for {EVENTS} recorded events overall"
    );
    runtime.shutdown().unwrap();
    assert_eq!(
        recorder.snapshots()["sum"].get("events"),
        Some((10_000 + EVENTS).into())
    );
}

impl MetricEvent for Event {
    fn event_type(&self) -> &str {
        "event"
    }
}

/// Counts events: applying an event allocates nothing.
#[derive(Default)]
struct Sum(u64);

impl Metric<Event> for Sum {
    fn name(&self) -> &str {
        "sum"
    }

    fn handle_event(&mut self, _: &Event) -> bool {
        self.0 += 1;
        true
    }

    fn snapshot(&self) -> Snapshot {
        Snapshot::new("sum", MetricKind::Counter).with("events", self.0)
    }
}
