//! An idle sink's driver sleeps: once its queue is empty and nothing is due, it is not
//! polled again, and it uses no CPU, until something happens; and the first event after a
//! quiet period wakes it at once, as does each event of a stream sparse enough for the
//! driver to nap between them (issue 17).
//!
//! Not timed: the idle periods are sleeps the test lets pass on purpose, and the bounds
//! are generous — they catch a driver that spins or wakes periodically, not a slow one.
#![cfg(not(loom))]

#[path = "support/cpu_time.rs"]
mod cpu_time;
#[path = "support/watchdog.rs"]
mod watchdog;

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use mvx::queue::{LogOutcome, OverflowPolicy};
use mvx::sink::{AsyncSink, Discard, Driver, SinkConfig, sinks::MemorySink};

use watchdog::within_guard;

/// How long each test leaves its sink idle.
const IDLE: Duration = Duration::from_millis(1_500);

/// A driver future that counts its polls.
struct Counted {
    driver: Driver,
    polls: Arc<AtomicU64>,
}

impl Future for Counted {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        self.polls.fetch_add(1, Ordering::Relaxed);
        Pin::new(&mut self.driver).poll(cx)
    }
}

/// Runs `driver` on a thread of its own, counting its polls; the thread's CPU time is
/// handed back when the driver returns.
fn spawn_counted(driver: Driver) -> (Arc<AtomicU64>, std::thread::JoinHandle<Duration>) {
    let polls = Arc::new(AtomicU64::new(0));
    let counted = Counted {
        driver,
        polls: polls.clone(),
    };
    let thread = std::thread::spawn(move || {
        futures::executor::block_on(counted);
        cpu_time::thread_cpu_time()
    });
    (polls, thread)
}

/// With the default configuration (poll budget and loss reports on), a sink that delivered
/// its events and was flushed is polled at most a couple of times more over an idle period
/// (the wake-up of the flush may land after the flush returned), not once per period of
/// anything.
#[test]
fn an_idle_driver_is_not_polled() {
    within_guard(|| {
        let (memory, events) = MemorySink::new();
        let (sink, driver) = AsyncSink::new(memory, SinkConfig::default());
        let (polls, thread) = spawn_counted(driver);
        assert!(sink.start().wait().success);
        for id in 0..1_000u32 {
            assert_eq!(sink.log(id), Ok(LogOutcome::Accepted));
        }
        sink.flush_blocking().unwrap();

        let before = polls.load(Ordering::Relaxed);
        std::thread::sleep(IDLE);
        let idle_polls = polls.load(Ordering::Relaxed) - before;
        assert!(
            idle_polls <= 2,
            "the idle driver was polled {idle_polls} times in {IDLE:?}"
        );

        // The first event after the quiet period is delivered: the parked driver wakes.
        assert_eq!(sink.log(1_000), Ok(LogOutcome::Accepted));
        sink.flush_blocking().unwrap();
        assert_eq!(events.take().len(), 1_001);
        assert!(sink.stop().wait().success);
        thread.join().unwrap();
    });
}

/// A sink that dropped events (loss reports on, one due) wakes for the report when it is
/// due, and then sleeps again: over an idle period after the report it is not polled.
#[test]
fn an_idle_driver_wakes_for_a_loss_report_only_once() {
    within_guard(|| {
        let report_every = Duration::from_millis(200);
        let config = SinkConfig::default()
            .queue_capacity(1)
            .overflow(OverflowPolicy::Drop)
            .loss_report_interval(Some(report_every));
        let (sink, driver) = AsyncSink::new(Discard, config);
        // Not polled yet: the first event fills the queue, the second is dropped.
        drop(sink.start());
        assert_eq!(sink.log(1u32), Ok(LogOutcome::Accepted));
        assert_eq!(sink.log(2), Ok(LogOutcome::Dropped));
        let (polls, thread) = spawn_counted(driver);
        sink.flush_blocking().unwrap();

        // The report falls due within `report_every`; after it nothing is due.
        std::thread::sleep(report_every * 2);
        let before = polls.load(Ordering::Relaxed);
        std::thread::sleep(IDLE);
        let idle_polls = polls.load(Ordering::Relaxed) - before;
        assert!(
            idle_polls <= 1,
            "the idle driver was polled {idle_polls} times in {IDLE:?} after its loss report"
        );
        assert_eq!(sink.stats().dropped, 1);
        assert!(sink.stop().wait().success);
        thread.join().unwrap();
    });
}

/// The driver thread of `rt::thread::create` uses next to no CPU while its sink is idle:
/// a spinning driver would use the whole interval.
#[test]
fn an_idle_runtime_thread_uses_no_cpu() {
    within_guard(|| {
        let config = SinkConfig::default().namespace("idle-cpu");
        let (sink, terminator) = mvx::rt::thread::create(Discard, config).unwrap();
        for id in 0..1_000u32 {
            assert_eq!(sink.log(id), Ok(LogOutcome::Accepted));
        }
        sink.flush_blocking().unwrap();
        let Some(before) = cpu_time::named_threads_cpu_time("mvx-idle-cpu") else {
            // No /proc: nothing to read the other thread's CPU time from.
            terminator.terminate().unwrap();
            return;
        };
        std::thread::sleep(IDLE);
        let spent = cpu_time::named_threads_cpu_time("mvx-idle-cpu").unwrap() - before;
        // 10% of the interval: far above a sleeping driver (0, at /proc's 10 ms
        // resolution), far below a spinning one (the whole interval).
        assert!(
            spent <= IDLE / 10,
            "the idle driver's thread used {spent:?} of CPU in {IDLE:?}"
        );
        terminator.terminate().unwrap();
        assert_eq!(sink.stats().delivered, 1_000);
    });
}

/// The driver of a sink whose thread used CPU only to deliver: its whole CPU time over a
/// run with a long idle period stays far below that period.
#[test]
fn a_driver_thread_sleeps_through_idle_periods() {
    within_guard(|| {
        let (sink, driver) = AsyncSink::new(Discard, SinkConfig::default());
        let (_polls, thread) = spawn_counted(driver);
        assert!(sink.start().wait().success);
        for round in 0..3u32 {
            for id in 0..100 {
                assert_eq!(sink.log(round * 100 + id), Ok(LogOutcome::Accepted));
            }
            sink.flush_blocking().unwrap();
            std::thread::sleep(IDLE / 3);
        }
        assert!(sink.stop().wait().success);
        let spent = thread.join().unwrap();
        assert!(
            spent <= IDLE / 10,
            "the driver's thread used {spent:?} of CPU over {IDLE:?} mostly idle"
        );
        assert_eq!(sink.stats().delivered, 300);
    });
}

/// A driver whose events come a few hundred microseconds apart parks between them, mostly
/// in naps (parks within a millisecond of one made exact by the heavy barrier, whose mark
/// a producer may miss in a race of nanoseconds; see `src/sink/driver.rs`): every event is
/// still delivered without a flush or any other wake-up but the producer's own, the missed
/// ones within the nap's millisecond. Each event's bound here is a second: it catches a
/// lost wake-up, not a slow one.
#[test]
fn events_between_naps_are_each_delivered() {
    within_guard(|| {
        let (sink, driver) = AsyncSink::new(Discard, SinkConfig::default());
        let (_polls, thread) = spawn_counted(driver);
        assert!(sink.start().wait().success);
        for id in 0..400u32 {
            std::thread::sleep(Duration::from_micros(150));
            assert_eq!(sink.log(id), Ok(LogOutcome::Accepted));
            let deadline = std::time::Instant::now() + Duration::from_secs(1);
            while sink.stats().delivered <= u64::from(id) {
                assert!(
                    std::time::Instant::now() < deadline,
                    "event {id} was not delivered within a second: {}",
                    sink.stats()
                );
                std::thread::yield_now();
            }
        }
        assert!(sink.stop().wait().success);
        thread.join().unwrap();
        assert_eq!(sink.stats().delivered, 400);
    });
}
