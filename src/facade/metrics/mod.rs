//! A `metrics` crate [`Recorder`] backed by mvx instruments in a [`Registry`] (feature
//! `metrics`).
//!
//! With [`RegistryRecorder`] installed, `metrics::counter!`, `gauge!` and `histogram!` land
//! in mvx [`Counter`](crate::metrics::Counter)s, [`Gauge`](crate::metrics::Gauge)s and
//! [`Histogram`]s of the registry, which the mvx exposition
//! ([`crate::expose`], and its HTTP server) serves like any other instrument.
//!
//! # How names and labels map
//!
//! - A metric without labels is the registry's instrument of that name
//!   ([`Registry::counter`] and so on): a facade `counter!("jobs")` and a direct
//!   `registry.counter("jobs")` are the same counter.
//! - A metric with labels is one series of its name: the instrument of
//!   [`Registry::counter_with_labels`] and its siblings, kept under its
//!   [`series_key`](crate::metrics::series_key) (labels sorted by name), so the order in
//!   which a call site writes its labels does not matter.
//! - Names and label names are exposed as the exposition fits them to Prometheus
//!   (`http.requests` becomes `http_requests_total`; see [`crate::expose::text`]).
//! - `counter!(..).increment(n)` adds `n`; `absolute(n)` raises the count to `n` if it is
//!   below. `gauge!` maps `increment`, `decrement` and `set` one to one. `histogram!`
//!   observes into fixed buckets: [`Histogram::DEFAULT_BUCKETS`] unless
//!   [`RegistryRecorder::buckets`] or [`RegistryRecorder::buckets_for`] say otherwise.
//! - One name has one kind: a `gauge!` of a name already used by a counter (with any
//!   labels) is refused by the registry. The call site then gets a handle that does
//!   nothing, and the refusal is counted ([`RegistryRecorder::rejected`],
//!   [`RegistryRecorder::last_error`]): the facade has no way to return an error.
//!
//! `describe_counter!` and its siblings are kept by the recorder
//! ([`RegistryRecorder::description`]) and become the registry's metadata for that name
//! (`description`, and `unit` as the `metrics` crate's canonical label), which
//! [`Registry::metadata`] reads back. What a name's metadata does for `HELP` and for
//! listings, labeled series included, is in [`Registry`]'s docs.
//!
//! # Cost
//!
//! The facade's macros look the metric up on every call. The recorder answers from a map
//! keyed by the facade's `Key`, hashed with the hash the key already carries, under a read
//! lock: no allocation once a series exists (the facade itself allocates for labels whose
//! values are not `'static`). The first call of a series creates its instrument in the
//! registry. Recording is the mvx instrument's: a relaxed atomic add for counters, a
//! per-thread stripe for histograms, after one thread-local read: an update made in a
//! suppression scope (inside a sink's dispatcher code, or under
//! [`suppress`](crate::facade::suppress)) is left out and counted
//! ([`RegistryRecorder::suppressed`]; see
//! [the facade docs](crate::facade#telemetry-does-not-feed-on-itself-suppression)).
//!
//! # Examples
//!
//! ```
//! use mvx::expose::{Format, encode};
//! use mvx::facade::metrics::RegistryRecorder;
//! use mvx::metrics::Registry;
//!
//! let registry = Registry::new();
//! let recorder = RegistryRecorder::new(registry.clone());
//! metrics::with_local_recorder(&recorder, || {
//!     metrics::counter!("http.requests", "method" => "GET", "code" => "200").increment(3);
//!     metrics::counter!("http.requests", "code" => "500", "method" => "GET").increment(1);
//!     metrics::gauge!("queue.depth").set(7.0);
//! });
//! let text = encode(&registry, Format::Prometheus);
//! assert!(text.contains("http_requests_total{code=\"200\",method=\"GET\"} 3\n"), "{text}");
//! assert!(text.contains("http_requests_total{code=\"500\",method=\"GET\"} 1\n"), "{text}");
//! assert!(text.contains("queue_depth 7.0\n"), "{text}");
//! ```

mod handles;

use std::collections::HashMap;
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError, RwLock};

use metrics::{Key, KeyName, Metadata, Recorder, SetRecorderError, SharedString, Unit};

use self::handles::{CounterHandle, GaugeHandle, HistogramHandle, KeyMap, SuppressedUpdates};
use crate::metrics::{Histogram, Registry, RegistryError};

/// A `metrics` [`Recorder`] whose metrics are instruments in an mvx [`Registry`].
///
/// Cheap to clone: clones share the registry, the handles and the counters. See the
/// [module docs](self) for the mapping and an example.
#[derive(Clone)]
pub struct RegistryRecorder {
    inner: Arc<Inner>,
}

struct Inner {
    registry: Registry,
    buckets: Vec<f64>,
    buckets_for: HashMap<String, Vec<f64>>,
    counters: RwLock<KeyMap<metrics::Counter>>,
    gauges: RwLock<KeyMap<metrics::Gauge>>,
    histograms: RwLock<KeyMap<metrics::Histogram>>,
    descriptions: RwLock<HashMap<String, Description>>,
    rejected: AtomicU64,
    last_error: Mutex<Option<RegistryError>>,
    suppressed: SuppressedUpdates,
}

/// What a `describe_counter!`, `describe_gauge!` or `describe_histogram!` said about a
/// metric.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Description {
    /// The kind it was described as: `counter`, `gauge` or `histogram`.
    pub kind: crate::metrics::MetricKind,
    /// The unit, if one was given.
    pub unit: Option<Unit>,
    /// The description.
    pub text: String,
}

impl RegistryRecorder {
    /// A recorder creating its instruments in `registry`, histograms with
    /// [`Histogram::DEFAULT_BUCKETS`].
    pub fn new(registry: Registry) -> Self {
        Self::with_inner(
            registry,
            Histogram::DEFAULT_BUCKETS.to_vec(),
            HashMap::new(),
        )
    }

    fn with_inner(
        registry: Registry,
        buckets: Vec<f64>,
        buckets_for: HashMap<String, Vec<f64>>,
    ) -> Self {
        Self {
            inner: Arc::new(Inner {
                registry,
                buckets,
                buckets_for,
                counters: RwLock::default(),
                gauges: RwLock::default(),
                histograms: RwLock::default(),
                descriptions: RwLock::default(),
                rejected: AtomicU64::new(0),
                last_error: Mutex::new(None),
                suppressed: SuppressedUpdates::default(),
            }),
        }
    }

    /// The same recorder with `bounds` as the bucket bounds of every histogram (unless
    /// [`buckets_for`](Self::buckets_for) names it). Call it before recording.
    ///
    /// # Errors
    ///
    /// The bounds are checked as [`Histogram::new`] checks them.
    pub fn buckets(self, bounds: impl IntoIterator<Item = f64>) -> Result<Self, RegistryError> {
        let bounds: Vec<f64> = bounds.into_iter().collect();
        Histogram::new("buckets", bounds.iter().copied())?;
        let (registry, _, buckets_for) = self.parts();
        Ok(Self::with_inner(registry, bounds, buckets_for))
    }

    /// The same recorder with `bounds` as the bucket bounds of the histogram `name` (every
    /// series of it). Call it before recording.
    ///
    /// # Errors
    ///
    /// The bounds are checked as [`Histogram::new`] checks them.
    ///
    /// # Examples
    ///
    /// ```
    /// use mvx::facade::metrics::RegistryRecorder;
    /// use mvx::metrics::Registry;
    ///
    /// let registry = Registry::new();
    /// let recorder = RegistryRecorder::new(registry.clone())
    ///     .buckets_for("body.bytes", [1024.0, 65536.0])?;
    /// metrics::with_local_recorder(&recorder, || metrics::histogram!("body.bytes").record(2048.0));
    /// assert_eq!(registry.histogram("body.bytes", [1024.0, 65536.0])?.count(), 1);
    /// # Ok::<(), mvx::metrics::RegistryError>(())
    /// ```
    pub fn buckets_for(
        self,
        name: impl Into<String>,
        bounds: impl IntoIterator<Item = f64>,
    ) -> Result<Self, RegistryError> {
        let name = name.into();
        let bounds: Vec<f64> = bounds.into_iter().collect();
        Histogram::new(name.clone(), bounds.iter().copied())?;
        let (registry, buckets, mut buckets_for) = self.parts();
        buckets_for.insert(name, bounds);
        Ok(Self::with_inner(registry, buckets, buckets_for))
    }

    /// The registry and the bucket configuration, to build a changed recorder from.
    fn parts(self) -> (Registry, Vec<f64>, HashMap<String, Vec<f64>>) {
        (
            self.inner.registry.clone(),
            self.inner.buckets.clone(),
            self.inner.buckets_for.clone(),
        )
    }

    /// Makes this recorder the process's `metrics` recorder.
    ///
    /// # Errors
    ///
    /// `metrics`' [`SetRecorderError`] (with the recorder) when one is already set.
    pub fn install(self) -> Result<Self, SetRecorderError<Self>> {
        metrics::set_global_recorder(self.clone())?;
        Ok(self)
    }

    /// The registry the instruments are in.
    pub fn registry(&self) -> &Registry {
        &self.inner.registry
    }

    /// What `describe_*!` said about `name`, if anything (the last description wins).
    pub fn description(&self, name: &str) -> Option<Description> {
        read(&self.inner.descriptions).get(name).cloned()
    }

    /// How many series the registry refused (a name taken by another kind, histogram
    /// buckets that conflict); each is counted once, its call sites get a handle that
    /// does nothing.
    pub fn rejected(&self) -> u64 {
        self.inner.rejected.load(Ordering::Relaxed)
    }

    /// How many updates (`increment`, `absolute`, `set`, `record`, ...) were left out
    /// because they were made in a suppression scope: inside a sink's dispatcher code, or
    /// under a [`suppress`](crate::facade::suppress) guard (see
    /// [the facade docs](crate::facade#telemetry-does-not-feed-on-itself-suppression)).
    pub fn suppressed(&self) -> u64 {
        self.inner.suppressed.get()
    }

    /// The registry's last refusal, if any.
    pub fn last_error(&self) -> Option<RegistryError> {
        self.inner
            .last_error
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    fn describe(
        &self,
        key: KeyName,
        kind: crate::metrics::MetricKind,
        unit: Option<Unit>,
        text: SharedString,
    ) {
        // The registry's metadata: the description becomes the exposition's HELP text, and
        // both are listed by `Registry::get_metrics`.
        let mut metadata = crate::metrics::Metadata::new().description(text.as_ref());
        if let Some(unit) = unit {
            metadata = metadata.unit(unit.as_canonical_label());
        }
        if let Err(error) = self.inner.registry.describe(key.as_str(), metadata) {
            self.inner.rejected.fetch_add(1, Ordering::Relaxed);
            *self
                .inner
                .last_error
                .lock()
                .unwrap_or_else(PoisonError::into_inner) = Some(error);
        }
        write(&self.inner.descriptions).insert(
            key.as_str().to_owned(),
            Description {
                kind,
                unit,
                text: text.into_owned(),
            },
        );
    }

    /// The handle of `key` in `map`, created with `create` on the first call.
    fn handle<T: Clone>(
        &self,
        map: &RwLock<KeyMap<T>>,
        key: &Key,
        create: impl FnOnce(&str, &[(&str, &str)]) -> Result<T, RegistryError>,
        noop: T,
    ) -> T {
        if let Some(handle) = read(map).get(key) {
            return handle.clone();
        }
        let mut map = write(map);
        if let Some(handle) = map.get(key) {
            return handle.clone();
        }
        let labels: Vec<(&str, &str)> = key
            .labels()
            .map(|label| (label.key(), label.value()))
            .collect();
        let handle = match create(key.name(), &labels) {
            Ok(handle) => handle,
            Err(error) => {
                self.inner.rejected.fetch_add(1, Ordering::Relaxed);
                *self
                    .inner
                    .last_error
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner) = Some(error);
                noop
            }
        };
        map.insert(key.clone(), handle.clone());
        handle
    }

    fn bounds_of(&self, name: &str) -> &[f64] {
        self.inner
            .buckets_for
            .get(name)
            .unwrap_or(&self.inner.buckets)
    }
}

fn read<T>(lock: &RwLock<T>) -> std::sync::RwLockReadGuard<'_, T> {
    lock.read().unwrap_or_else(PoisonError::into_inner)
}

fn write<T>(lock: &RwLock<T>) -> std::sync::RwLockWriteGuard<'_, T> {
    lock.write().unwrap_or_else(PoisonError::into_inner)
}

impl Recorder for RegistryRecorder {
    fn describe_counter(&self, key: KeyName, unit: Option<Unit>, description: SharedString) {
        self.describe(key, crate::metrics::MetricKind::Counter, unit, description);
    }

    fn describe_gauge(&self, key: KeyName, unit: Option<Unit>, description: SharedString) {
        self.describe(key, crate::metrics::MetricKind::Gauge, unit, description);
    }

    fn describe_histogram(&self, key: KeyName, unit: Option<Unit>, description: SharedString) {
        self.describe(
            key,
            crate::metrics::MetricKind::Histogram,
            unit,
            description,
        );
    }

    fn register_counter(&self, key: &Key, _metadata: &Metadata<'_>) -> metrics::Counter {
        self.handle(
            &self.inner.counters,
            key,
            |name, labels| {
                let counter = self.inner.registry.counter_with_labels(name, labels)?;
                Ok(metrics::Counter::from_arc(Arc::new(CounterHandle {
                    counter,
                    suppressed: self.inner.suppressed.clone(),
                })))
            },
            metrics::Counter::noop(),
        )
    }

    fn register_gauge(&self, key: &Key, _metadata: &Metadata<'_>) -> metrics::Gauge {
        self.handle(
            &self.inner.gauges,
            key,
            |name, labels| {
                let gauge = self.inner.registry.gauge_with_labels(name, labels)?;
                Ok(metrics::Gauge::from_arc(Arc::new(GaugeHandle {
                    gauge,
                    suppressed: self.inner.suppressed.clone(),
                })))
            },
            metrics::Gauge::noop(),
        )
    }

    fn register_histogram(&self, key: &Key, _metadata: &Metadata<'_>) -> metrics::Histogram {
        self.handle(
            &self.inner.histograms,
            key,
            |name, labels| {
                let bounds = self.bounds_of(name).iter().copied();
                let histogram = self
                    .inner
                    .registry
                    .histogram_with_labels(name, labels, bounds)?;
                Ok(metrics::Histogram::from_arc(Arc::new(HistogramHandle {
                    histogram,
                    suppressed: self.inner.suppressed.clone(),
                })))
            },
            metrics::Histogram::noop(),
        )
    }
}

impl fmt::Debug for RegistryRecorder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RegistryRecorder")
            .field("registry", &self.inner.registry)
            .field("buckets", &self.inner.buckets)
            .field("rejected", &self.rejected())
            .field("suppressed", &self.suppressed())
            .finish_non_exhaustive()
    }
}

/// Makes a [`RegistryRecorder`] on `registry` the process's `metrics` recorder.
///
/// # Errors
///
/// `metrics`' [`SetRecorderError`] when a recorder is already set.
pub fn install(registry: Registry) -> Result<RegistryRecorder, SetRecorderError<RegistryRecorder>> {
    RegistryRecorder::new(registry).install()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::MetricKind;

    #[test]
    fn series_are_found_again_whatever_the_label_order() {
        let registry = Registry::new();
        let recorder = RegistryRecorder::new(registry.clone());
        metrics::with_local_recorder(&recorder, || {
            for _ in 0..3 {
                metrics::counter!("jobs", "a" => "1", "b" => "2").increment(1);
                metrics::counter!("jobs", "b" => "2", "a" => "1").increment(1);
            }
            metrics::counter!("jobs").absolute(5);
            metrics::counter!("jobs").absolute(2); // below: no change
            metrics::gauge!("depth").increment(2.0);
            metrics::gauge!("depth").decrement(0.5);
            metrics::histogram!("latency", "op" => "get").record(0.02);
        });
        assert_eq!(
            registry
                .counter_with_labels("jobs", &[("b", "2"), ("a", "1")])
                .unwrap()
                .get(),
            6
        );
        assert_eq!(registry.counter("jobs").unwrap().get(), 5);
        assert_eq!(registry.gauge("depth").unwrap().get(), 1.5);
        let latency = registry
            .histogram_with_labels(
                "latency",
                &[("op", "get")],
                Histogram::DEFAULT_BUCKETS.iter().copied(),
            )
            .unwrap();
        assert_eq!((latency.count(), latency.sum()), (1, 0.02));
        assert_eq!(recorder.rejected(), 0);
    }

    #[test]
    fn a_kind_conflict_is_counted_and_its_call_sites_do_nothing() {
        let registry = Registry::new();
        let recorder = RegistryRecorder::new(registry.clone());
        metrics::with_local_recorder(&recorder, || {
            metrics::counter!("name", "x" => "1").increment(1);
            for _ in 0..3 {
                metrics::gauge!("name", "x" => "2").set(9.0);
            }
            metrics::describe_gauge!("depth", metrics::Unit::Bytes, "queue depth");
        });
        assert_eq!(
            recorder.rejected(),
            1,
            "counted once, the noop handle is kept"
        );
        assert!(matches!(
            recorder.last_error(),
            Some(RegistryError::KindConflict {
                existing: MetricKind::Counter,
                requested: MetricKind::Gauge,
                ..
            })
        ));
        assert_eq!(registry.names(), ["name{x=\"1\"}"]);
        assert_eq!(
            recorder.description("depth"),
            Some(Description {
                kind: MetricKind::Gauge,
                unit: Some(metrics::Unit::Bytes),
                text: "queue depth".to_owned()
            })
        );
        assert!(
            RegistryRecorder::new(Registry::new())
                .buckets([2.0, 1.0])
                .is_err()
        );
    }
}
