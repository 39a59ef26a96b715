//! Publishing an mvx registry to metricq at an interval, through an mvx sink.

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::pin::pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::future::{Either, select};

use super::error::MetricqError;
use super::lock;
use super::publisher::DataPoint;
use super::source::{Source, SourceHandle};
use super::time::Timestamp;
use crate::BoxError;
use crate::agent::{Agent, AgentHandle};
use crate::metrics::{Metadata, Registry, Snapshot};
use crate::sink::{AsyncSink, Driver, SinkConfig};

/// How often a [`RegistryBridge`] publishes by default.
pub const DEFAULT_BRIDGE_INTERVAL: Duration = Duration::from_secs(1);

/// The knobs of a [`RegistryBridge`].
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct BridgeConfig {
    /// How often the registry is read and its values published. Default
    /// [`DEFAULT_BRIDGE_INTERVAL`].
    pub interval: Duration,
    /// The sink the points go through: its queue capacity, overflow policy (the default,
    /// `RaiseError`, refuses points when full rather than wait), batch size, stop timeout.
    /// Default: lazy start, so that points logged before the bridge connected are queued
    /// and published once it has.
    pub sink: SinkConfig,
}

impl Default for BridgeConfig {
    fn default() -> Self {
        Self {
            interval: DEFAULT_BRIDGE_INTERVAL,
            sink: SinkConfig::default().namespace("metricq").lazy_start(true),
        }
    }
}

impl BridgeConfig {
    /// Sets [`interval`](Self::interval).
    pub fn interval(mut self, interval: Duration) -> Self {
        self.interval = interval;
        self
    }

    /// Sets [`sink`](Self::sink).
    pub fn sink(mut self, sink: SinkConfig) -> Self {
        self.sink = sink;
        self
    }
}

/// Counters of a [`RegistryBridge`]. How many points were delivered or failed is in its
/// sink's [`QueueStats`](crate::queue::QueueStats) ([`RegistryBridge::sink`]).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct BridgeStats {
    /// Times the registry was read and published.
    pub ticks: u64,
    /// Points the sink accepted.
    pub points: u64,
    /// Points the sink refused (full under `RaiseError`, or not running).
    pub refused: u64,
    /// Metrics declared with `source.declare_metrics`.
    pub declared: u64,
    /// Declarations that failed (retried at the next tick).
    pub declare_failures: u64,
}

#[derive(Default)]
struct Counters {
    ticks: AtomicU64,
    points: AtomicU64,
    refused: AtomicU64,
    declared: AtomicU64,
    declare_failures: AtomicU64,
}

struct Shared {
    source: SourceHandle,
    registry: Registry,
    sink: AsyncSink<DataPoint>,
    /// Metric names, shared by their points; `true` once declared.
    names: Mutex<HashMap<String, (Arc<str>, bool)>>,
    last_error: Mutex<Option<MetricqError>>,
    counters: Counters,
}

/// Publishes an mvx [`Registry`] — its instruments and the snapshots of its sources
/// (recorders) — to metricq through a [`Source`], every interval.
///
/// Each tick reads [`Registry::snapshots`], declares the metrics not declared yet (with
/// the registry's [`Metadata`]), and logs one [`DataPoint`] per value into an
/// [`AsyncSink`] whose dispatcher is a [`ChunkPublisher`](super::ChunkPublisher): the tick
/// never waits for the network, and every point ends in the sink's counters — `delivered`
/// once the broker confirmed it, `failed` if it could not be, `dropped` or refused when the
/// queue is full (see [`BridgeConfig::sink`]). Other code may log its own points into
/// [`sink`](Self::sink).
///
/// **Names.** A snapshot whose only dimension is `value` (a counter, a gauge) is the
/// metric `<name>`; any other gives one metric per dimension, `<name>.<dimension>` (a
/// histogram's `count`, `sum`, ...). A labelled series puts its label values, in label-name
/// order, after the name: `http.requests.GET.200`. Each value is published as `f64`.
///
/// **Lifecycle.** As an [`Agent`]: `connect` connects the source, starts the sink and the
/// ticks (the first at once); teardown stops the sink — every point accepted before is
/// published or counted failed, within the sink's stop timeout — then closes the source.
pub struct RegistryBridge {
    source: Source,
    shared: Arc<Shared>,
    driver: Mutex<Option<Driver>>,
    interval: Duration,
}

impl fmt::Debug for RegistryBridge {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RegistryBridge")
            .field("source", &self.source)
            .field("interval", &self.interval)
            .field("stats", &self.stats())
            .finish_non_exhaustive()
    }
}

impl RegistryBridge {
    /// A bridge publishing `registry` through `source`.
    pub fn new(source: Source, registry: Registry, config: BridgeConfig) -> Self {
        let handle = source.handle();
        let (sink, driver) = AsyncSink::new(handle.publisher(), config.sink);
        Self {
            source,
            shared: Arc::new(Shared {
                source: handle,
                registry,
                sink,
                names: Mutex::new(HashMap::new()),
                last_error: Mutex::new(None),
                counters: Counters::default(),
            }),
            driver: Mutex::new(Some(driver)),
            interval: config.interval,
        }
    }

    /// The sink the points go through: its `stats()` count them; `log()` publishes points
    /// of your own.
    pub fn sink(&self) -> AsyncSink<DataPoint> {
        self.shared.sink.clone()
    }

    /// The source.
    pub fn source(&self) -> SourceHandle {
        self.shared.source.clone()
    }

    /// The bridge's counters.
    pub fn stats(&self) -> BridgeStats {
        let read = |counter: &AtomicU64| counter.load(Ordering::Relaxed);
        let counters = &self.shared.counters;
        BridgeStats {
            ticks: read(&counters.ticks),
            points: read(&counters.points),
            refused: read(&counters.refused),
            declared: read(&counters.declared),
            declare_failures: read(&counters.declare_failures),
        }
    }

    /// The last error of a declaration, if any.
    pub fn last_error(&self) -> Option<MetricqError> {
        lock(&self.shared.last_error).clone()
    }

    /// Reads the registry and logs its values now, as a tick does (declaring new metrics
    /// first); returns how many points the sink accepted.
    pub async fn publish_now(&self) -> u64 {
        self.shared.tick().await
    }
}

impl Shared {
    async fn tick(&self) -> u64 {
        self.counters.ticks.fetch_add(1, Ordering::Relaxed);
        let snapshots = self.registry.snapshots();
        let now = Timestamp::now();
        let mut points = Vec::new();
        let mut undeclared: BTreeMap<String, Metadata> = BTreeMap::new();
        {
            let mut names = lock(&self.names);
            for snapshot in snapshots.values() {
                for_each_value(snapshot, |name, value| {
                    let (shared, declared) = names
                        .entry(name.clone())
                        .or_insert_with(|| (Arc::from(name.as_str()), false));
                    if !*declared {
                        undeclared.insert(name, Metadata::new());
                    }
                    points.push(DataPoint {
                        metric: shared.clone(),
                        timestamp: now,
                        value,
                    });
                });
            }
        }
        if !undeclared.is_empty() {
            self.declare(undeclared, &snapshots).await;
        }
        let mut accepted = 0;
        for point in points {
            match self.sink.log(point) {
                Ok(_) => accepted += 1,
                Err(_) => {
                    self.counters.refused.fetch_add(1, Ordering::Relaxed);
                }
            }
        }
        self.counters.points.fetch_add(accepted, Ordering::Relaxed);
        accepted
    }

    /// Declares `metrics`, each with the metadata of the registry name it comes from.
    async fn declare(
        &self,
        mut metrics: BTreeMap<String, Metadata>,
        snapshots: &crate::metrics::Snapshots,
    ) {
        for snapshot in snapshots.values() {
            let metadata = self.registry.metadata(&snapshot.name);
            for_each_value(snapshot, |name, _| {
                if let (Some(slot), Some(metadata)) = (metrics.get_mut(&name), &metadata) {
                    *slot = metadata.clone();
                }
            });
        }
        let count = metrics.len() as u64;
        let names: Vec<String> = metrics.keys().cloned().collect();
        match self.source.declare_metrics(metrics).await {
            Ok(()) => {
                let mut known = lock(&self.names);
                for name in names {
                    if let Some((_, declared)) = known.get_mut(&name) {
                        *declared = true;
                    }
                }
                self.counters.declared.fetch_add(count, Ordering::Relaxed);
            }
            Err(error) => {
                self.counters
                    .declare_failures
                    .fetch_add(1, Ordering::Relaxed);
                *lock(&self.last_error) = Some(error);
            }
        }
    }
}

/// Calls `each(metric name, value)` for every value of `snapshot` (see the naming rules of
/// [`RegistryBridge`]).
fn for_each_value(snapshot: &Snapshot, mut each: impl FnMut(String, f64)) {
    let mut base = snapshot.name.clone();
    for value in snapshot.labels.values() {
        base.push('.');
        base.push_str(value);
    }
    let only_value = snapshot.dimensions.len() == 1 && snapshot.dimensions.contains_key("value");
    for (dimension, value) in &snapshot.dimensions {
        let name = if only_value {
            base.clone()
        } else {
            format!("{base}.{dimension}")
        };
        each(name, value.as_f64());
    }
}

impl Agent for RegistryBridge {
    async fn connect(&self, agent: &AgentHandle) -> Result<(), BoxError> {
        if !self.source.core.connect(agent).await? {
            return Ok(());
        }
        if let Some(driver) = lock(&self.driver).take() {
            agent.spawn(async move {
                driver.await;
                Ok(())
            });
        }
        self.shared.sink.start().await.into_result()?;
        let shared = self.shared.clone();
        let interval = self.interval;
        let ticker = agent.clone();
        agent.spawn(async move {
            loop {
                shared.tick().await;
                let stop = pin!(ticker.stop_requested_wait());
                if let Either::Right(_) = select(async_io::Timer::after(interval), stop).await {
                    return Ok(());
                }
            }
        });
        Ok(())
    }

    async fn teardown(&self) -> Result<(), BoxError> {
        // The driver may never have been spawned (a stop during connect): then the sink is
        // still `Virgin` and there is nothing to drain.
        let stopped = if self.shared.sink.state() == crate::State::Running {
            self.shared
                .sink
                .stop()
                .await
                .into_result()
                .map_err(BoxError::from)
        } else {
            Ok(())
        };
        let closed = self.source.core.teardown().await.map_err(BoxError::from);
        stopped.and(closed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::MetricKind;

    fn names(snapshot: &Snapshot) -> Vec<(String, f64)> {
        let mut out = Vec::new();
        for_each_value(snapshot, |name, value| out.push((name, value)));
        out
    }

    #[test]
    fn names_follow_the_documented_rules() {
        let gauge = Snapshot::new("cpu.load", MetricKind::Gauge).with("value", 0.5);
        assert_eq!(names(&gauge), [("cpu.load".to_string(), 0.5)]);
        let histogram = Snapshot::new("rpc.seconds", MetricKind::Histogram)
            .with("count", 3u64)
            .with("sum", 1.5);
        assert_eq!(
            names(&histogram),
            [
                ("rpc.seconds.count".to_string(), 3.0),
                ("rpc.seconds.sum".to_string(), 1.5)
            ]
        );
        let series = Snapshot::new("http.requests", MetricKind::Counter)
            .with_label("method", "GET")
            .with_label("code", "200")
            .with("value", 7u64);
        assert_eq!(names(&series), [("http.requests.200.GET".to_string(), 7.0)]);
    }
}
