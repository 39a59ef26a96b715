//! A busy sink shares its thread: a sink whose producers keep its queue full runs beside
//! quiet work on the same executor thread, and the quiet work keeps its schedule.
//!
//! Each test floods one sink for [`FLOOD`]: a producer logs under
//! [`OverflowPolicy::Block`] as fast as it can into a dispatcher slower than it (a busy
//! [`EVENT_COST`] per event), so the queue never runs empty and the driver always has work.
//! Beside it, on the same executor thread, something quiet must get its turns:
//!
//! - a quiet sink's `flush_blocking()` on a shared `smol::Executor` thread;
//! - a quiet recorder's `snapshot_now_blocking()` on a shared `MetricsRuntime`;
//! - statistics saving every 10 ms on a shared `smol::Executor` thread.
//!
//! The machines these run on are shared and noisy, so nothing here asserts a latency: the
//! quiet operations must all be done with at least [`SLACK`] of the flood left (a driver that
//! does not yield lets them through only when the flood ends), and the saves are counted over
//! a window of the flood (a driver that does not yield lets none through).
#![cfg(not(loom))]

use std::hint::spin_loop;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use mvx::metrics::{Metric, MetricEvent, MetricKind, MetricsRuntime, Snapshot};
use mvx::queue::{LogOutcome, OverflowPolicy};
use mvx::sink::{AsyncSink, BatchError, Discard, Dispatch, SinkConfig};
use mvx::stats::{KeyValueStore, MemoryStore, Statistics, StatsConfig, StoreError};
use serde_json::Value;

#[path = "support/watchdog.rs"]
mod watchdog;

use watchdog::{wait_until, within_guard};

/// How long each flood lasts.
const FLOOD: Duration = Duration::from_secs(4);

/// How much of the flood must be left when the quiet operations are done.
const SLACK: Duration = Duration::from_secs(2);

/// The quiet operations of a test, one after the other.
const ROUNDS: u64 = 20;

/// The busy work of the flooded dispatcher per event: far slower than a producer.
const EVENT_COST: Duration = Duration::from_micros(1);

/// The flooded queue: tens of milliseconds of work, so that a producer thread that the
/// scheduler leaves waiting for a while does not let the queue run empty.
const FLOOD_CAPACITY: usize = 65_536;

/// The interval of the statistics' saves.
const PERSIST_INTERVAL: Duration = Duration::from_millis(10);

/// The part of the flood over which the saves are counted.
const SAVE_WINDOW: Duration = Duration::from_secs(2);

/// Each flood keeps a core busy: one at a time, so that the tests of this file do not
/// starve each other on a small machine.
fn one_at_a_time() -> MutexGuard<'static, ()> {
    static LOCK: Mutex<()> = Mutex::new(());
    LOCK.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Busy-waits for `duration`: a dispatcher that keeps its thread.
fn busy(duration: Duration) {
    let until = Instant::now() + duration;
    while Instant::now() < until {
        spin_loop();
    }
}

/// The flooded sink's dispatcher: [`EVENT_COST`] of busy work per event.
struct Slow;

impl Dispatch<u64> for Slow {
    async fn dispatch_batch(&mut self, events: &mut Vec<u64>) -> Result<(), BatchError> {
        busy(EVENT_COST * events.len() as u32);
        events.clear();
        Ok(())
    }
}

/// The flooded sink's configuration: producers wait for room, so none of their events is
/// lost and the queue stays full.
fn flood_config() -> SinkConfig {
    SinkConfig::default()
        .namespace("flooded")
        .queue_capacity(FLOOD_CAPACITY)
        .overflow(OverflowPolicy::Block)
}

/// A producer logging as fast as it can, for [`FLOOD`].
struct Flood {
    ends_at: Instant,
    producer: JoinHandle<u64>,
}

impl Flood {
    /// Starts logging with `log` (which must accept every event), and returns once the
    /// queue, read by `pending`, holds at least half its capacity.
    fn start(log: impl Fn(u64) -> LogOutcome + Send + 'static, pending: impl Fn() -> u64) -> Self {
        let ends_at = Instant::now() + FLOOD;
        let producer = std::thread::spawn(move || {
            let mut logged = 0;
            while Instant::now() < ends_at {
                assert_eq!(log(logged), LogOutcome::Accepted);
                logged += 1;
            }
            logged
        });
        wait_until(|| pending() >= FLOOD_CAPACITY as u64 / 2);
        Self { ends_at, producer }
    }

    /// How much of the flood is left.
    fn left(&self) -> Duration {
        self.ends_at.saturating_duration_since(Instant::now())
    }

    /// Waits for the end of the flood; returns how many events were logged.
    fn join(self) -> u64 {
        self.producer.join().expect("the flood's producer panicked")
    }
}

/// A `smol::Executor` running on one thread of its own.
struct SmolThread {
    executor: Arc<smol::Executor<'static>>,
    shutdown: async_channel::Sender<()>,
    thread: JoinHandle<()>,
}

impl SmolThread {
    fn new() -> Self {
        let executor = Arc::new(smol::Executor::new());
        let (shutdown, shut_down) = async_channel::bounded::<()>(1);
        let runner = executor.clone();
        let thread = std::thread::spawn(move || {
            smol::block_on(runner.run(async move {
                let _ = shut_down.recv().await;
            }));
        });
        Self {
            executor,
            shutdown,
            thread,
        }
    }

    fn join(self) {
        self.shutdown.close();
        self.thread.join().expect("the executor thread panicked");
    }
}

#[test]
fn a_quiet_sink_flushes_beside_a_flooded_one_on_a_shared_smol_thread() {
    let _alone = one_at_a_time();
    within_guard(|| {
        let runtime = SmolThread::new();
        let flooded = mvx::rt::smol::spawn(&runtime.executor, Slow, flood_config());
        let quiet = mvx::rt::smol::spawn(
            &runtime.executor,
            Discard,
            SinkConfig::default().namespace("quiet"),
        );
        assert!(flooded.start().wait().success);
        assert!(quiet.start().wait().success);

        let producer = flooded.clone();
        let stats = flooded.clone();
        let flood = Flood::start(
            move |event| producer.log(event).expect("the flooded sink accepts"),
            move || stats.stats().pending,
        );
        for round in 1..=ROUNDS {
            assert_eq!(quiet.log(round), Ok(LogOutcome::Accepted));
            quiet.flush_blocking().expect("the quiet sink flushes");
        }
        let left = flood.left();
        assert!(
            left >= SLACK,
            "{ROUNDS} flushes of the quiet sink were done with only {left:?} of the \
             {FLOOD:?} flood left: its neighbour kept the thread"
        );
        assert_eq!(quiet.stats().delivered, ROUNDS);

        let logged = flood.join();
        assert!(flooded.stop().wait().success);
        assert!(quiet.stop().wait().success);
        let stats = flooded.stats();
        assert_eq!(
            (stats.accepted, stats.delivered, stats.failed),
            (logged, logged, 0)
        );
        runtime.join();
    });
}

/// An event of either recorder.
#[derive(Debug, PartialEq)]
struct Tick;

impl MetricEvent for Tick {
    fn event_type(&self) -> &str {
        "tick"
    }
}

/// Counts ticks, spending `cost` of busy work on each.
struct Ticks {
    cost: Duration,
    count: u64,
}

impl Metric<Tick> for Ticks {
    fn name(&self) -> &str {
        "ticks"
    }

    fn handle_event(&mut self, _: &Tick) -> bool {
        busy(self.cost);
        self.count += 1;
        true
    }

    fn snapshot(&self) -> Snapshot {
        Snapshot::new("ticks", MetricKind::Counter).with("total", self.count)
    }
}

#[test]
fn a_quiet_recorder_snapshots_beside_a_flooded_one_on_a_shared_metrics_runtime() {
    let _alone = one_at_a_time();
    within_guard(|| {
        let runtime = MetricsRuntime::new().expect("a metrics runtime");
        let flooded = runtime
            .create_recorder_with::<Tick>("flooded", flood_config())
            .expect("the flooded recorder");
        flooded
            .register_metric(Ticks {
                cost: EVENT_COST,
                count: 0,
            })
            .unwrap();
        let quiet = runtime
            .create_recorder::<Tick>("quiet")
            .expect("the quiet recorder");
        quiet
            .register_metric(Ticks {
                cost: Duration::ZERO,
                count: 0,
            })
            .unwrap();

        let producer = flooded.clone();
        let stats = flooded.clone();
        let flood = Flood::start(
            move |_| {
                producer
                    .register_event(Tick)
                    .expect("the flooded recorder accepts")
            },
            move || stats.stats().pending,
        );
        for round in 1..=ROUNDS {
            assert_eq!(quiet.register_event(Tick), Ok(LogOutcome::Accepted));
            let snapshots = quiet.snapshot_now_blocking().expect("a snapshot");
            assert_eq!(snapshots["ticks"].get("total"), Some(round.into()));
        }
        let left = flood.left();
        assert!(
            left >= SLACK,
            "{ROUNDS} snapshots of the quiet recorder were done with only {left:?} of the \
             {FLOOD:?} flood left: its neighbour kept the thread"
        );

        let logged = flood.join();
        runtime.shutdown().expect("a clean shutdown");
        let stats = flooded.stats();
        assert_eq!(
            (stats.accepted, stats.delivered, stats.failed),
            (logged, logged, 0)
        );
        assert_eq!(
            flooded.snapshots()["ticks"].get("total"),
            Some(logged.into())
        );
    });
}

/// A [`MemoryStore`] that notes when each value was saved.
#[derive(Debug, Clone, Default)]
struct TimedStore {
    values: MemoryStore,
    saves: Arc<Mutex<Vec<Instant>>>,
}

impl TimedStore {
    /// How many saves were made between `from` and `to`.
    fn saves_between(&self, from: Instant, to: Instant) -> usize {
        let saves = self.saves.lock().unwrap();
        saves.iter().filter(|&&at| from <= at && at < to).count()
    }
}

impl KeyValueStore for TimedStore {
    async fn get(&self, store: &str, key: &str) -> Result<Option<Value>, StoreError> {
        self.values.get(store, key).await
    }

    async fn set(&self, store: &str, key: &str, value: &Value) -> Result<(), StoreError> {
        self.saves.lock().unwrap().push(Instant::now());
        self.values.set(store, key, value).await
    }

    async fn delete(&self, store: &str, key: &str) -> Result<bool, StoreError> {
        self.values.delete(store, key).await
    }

    async fn rename(&self, store: &str, from: &str, to: &str) -> Result<bool, StoreError> {
        self.values.rename(store, from, to).await
    }
}

#[test]
fn statistics_keep_saving_every_10_ms_beside_a_flooded_sink_on_a_shared_smol_thread() {
    let _alone = one_at_a_time();
    within_guard(|| {
        let runtime = SmolThread::new();
        let flooded: AsyncSink<u64> = mvx::rt::smol::spawn(&runtime.executor, Slow, flood_config());
        let store = TimedStore::default();
        let (statistics, driver) = Statistics::new(
            StatsConfig::default()
                .persist_to(store.clone())
                .persist_interval(PERSIST_INTERVAL),
        )
        .expect("valid statistics");
        runtime.executor.spawn(driver).detach();
        assert!(flooded.start().wait().success);
        statistics.start().wait().expect("the statistics start");

        let producer = flooded.clone();
        let stats = flooded.clone();
        let flood = Flood::start(
            move |event| producer.log(event).expect("the flooded sink accepts"),
            move || stats.stats().pending,
        );
        let window_start = Instant::now();
        assert!(
            flood.left() > SAVE_WINDOW,
            "the flood began too late to count the saves"
        );
        let logged = flood.join();
        let saves = store.saves_between(window_start, window_start + SAVE_WINDOW);
        let ideal = (SAVE_WINDOW.as_millis() / PERSIST_INTERVAL.as_millis()) as usize;
        assert!(
            saves * 10 >= ideal * 6,
            "{saves} saves in {SAVE_WINDOW:?} at an interval of {PERSIST_INTERVAL:?} \
             (ideally {ideal}, at least 60% of that expected): the flooded sink kept the thread"
        );

        assert!(flooded.stop().wait().success);
        statistics.stop().wait().expect("the statistics stop");
        let stats = flooded.stats();
        assert_eq!(
            (stats.accepted, stats.delivered, stats.failed),
            (logged, logged, 0)
        );
        runtime.join();
    });
}
