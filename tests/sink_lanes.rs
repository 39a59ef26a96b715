//! Per-producer lanes seen from outside: each producer thread's limit is its own, the lanes
//! of threads that exit are drained, and an event logged while a thread's thread-locals are
//! torn down still arrives (through the sink's shared lane).
#![cfg(not(loom))]

#[path = "support/watchdog.rs"]
mod watchdog;

use std::cell::RefCell;

use mvx::error::LogError;
use mvx::queue::{LogOutcome, OverflowPolicy};
use mvx::sink::{AsyncSink, SinkConfig, sinks::MemorySink};

use watchdog::within_guard;

/// Two threads each fill their own lane of a sink whose driver is not polled: each gets
/// exactly `capacity` events in, whatever the other did, and the sink holds both.
#[test]
fn the_limit_is_each_producer_threads_own() {
    within_guard(|| {
        let (memory, events) = MemorySink::new();
        let config = SinkConfig::default()
            .queue_capacity(3)
            .overflow(OverflowPolicy::RaiseError);
        let (sink, driver) = AsyncSink::new(memory, config);
        let start = sink.start(); // the driver is not polled yet: nothing is dispatched
        let fill = |sink: &AsyncSink<u32>, base: u32| {
            let accepted: Vec<_> = (0..3).map(|i| sink.log(base + i)).collect();
            assert_eq!(accepted, vec![Ok(LogOutcome::Accepted); 3]);
            assert!(matches!(
                sink.log(base + 3),
                Err(LogError::QueueOverflow(_))
            ));
        };
        std::thread::scope(|scope| {
            scope.spawn(|| fill(&sink, 100));
        });
        fill(&sink, 0);
        let stats = sink.stats();
        assert_eq!((stats.accepted, stats.pending, stats.refused), (6, 6, 2));
        assert_eq!(stats.high_watermark, 3);

        let driver = std::thread::spawn(move || futures::executor::block_on(driver));
        assert!(start.wait().success);
        sink.flush_blocking().unwrap();
        let mut delivered = events.take();
        delivered.sort_unstable();
        assert_eq!(delivered, [0, 1, 2, 100, 101, 102]);
        assert!(sink.stop().wait().success);
        driver.join().unwrap();
    });
}

/// Many short-lived threads log and exit; the flush that follows covers every lane, and the
/// counters add up once the sink stops.
#[test]
fn the_lanes_of_exited_threads_are_drained() {
    within_guard(|| {
        let (memory, events) = MemorySink::new();
        let config = SinkConfig::default().queue_capacity(16);
        let (sink, terminator) = mvx::rt::thread::create(memory, config).unwrap();
        for thread in 0..100u32 {
            let sink = sink.clone();
            std::thread::spawn(move || {
                for i in 0..10 {
                    assert_eq!(sink.log(thread * 10 + i), Ok(LogOutcome::Accepted));
                }
            })
            .join()
            .unwrap();
        }
        sink.flush_blocking().unwrap();
        let mut delivered = events.take();
        delivered.sort_unstable();
        assert_eq!(delivered, (0..1_000).collect::<Vec<_>>());
        let stats = terminator.terminate().unwrap();
        assert_eq!(
            (stats.accepted, stats.delivered, stats.failed, stats.pending),
            (1_000, 1_000, 0, 0)
        );
    });
}

/// Logs its sink's last event when the thread's thread-locals are dropped.
struct LogsOnExit(Option<AsyncSink<u32>>);

impl Drop for LogsOnExit {
    fn drop(&mut self) {
        if let Some(sink) = self.0.take() {
            assert_eq!(sink.log(999), Ok(LogOutcome::Accepted));
        }
    }
}

thread_local! {
    static ON_EXIT: RefCell<LogsOnExit> = const { RefCell::new(LogsOnExit(None)) };
}

/// An event logged from a thread-local's destructor — possibly after the thread's lanes
/// are gone — is accepted and delivered, not lost and not a panic.
#[test]
fn an_event_logged_while_the_thread_exits_arrives() {
    within_guard(|| {
        let (memory, events) = MemorySink::new();
        let (sink, terminator) = mvx::rt::thread::create(memory, SinkConfig::default()).unwrap();
        let producer = sink.clone();
        std::thread::spawn(move || {
            // Initialized before the thread's lanes: dropped after them, on most platforms.
            ON_EXIT.with(|on_exit| on_exit.borrow_mut().0 = Some(producer.clone()));
            assert_eq!(producer.log(1), Ok(LogOutcome::Accepted));
        })
        .join()
        .unwrap();
        sink.flush_blocking().unwrap();
        let mut delivered = events.take();
        delivered.sort_unstable();
        assert_eq!(delivered, [1, 999]);
        let stats = terminator.terminate().unwrap();
        assert_eq!((stats.accepted, stats.delivered, stats.pending), (2, 2, 0));
    });
}
