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
//! # When the registry changes
//!
//! - **Unregistered series.** A series removed by [`Registry::unregister`] is found again
//!   on its next update through the facade: the macros' call sites and the handles they
//!   returned (held across the `unregister`) look the series up in the registry again,
//!   creating it anew, and count into it, so the exposition sees every later update. Each
//!   handle checks whether its instrument was unregistered before each update (one
//!   relaxed load of a word that only `unregister` writes). If the registry refuses the new
//!   lookup (the name taken by another kind meanwhile), that is counted as any refusal and
//!   the handle does nothing from then on.
//! - **The series limit.** Past the registry's
//!   [series limit](crate::metrics::Registry#series-limit), a new label set is answered with
//!   the name's overflow series, as for direct callers. The recorder does not keep a handle
//!   for such a label set (keeping one per label set would grow without bound, which is
//!   what the limit prevents): each update of it looks the series up in the registry again,
//!   and is counted there as a refused request
//!   ([`Registry::series_refused`](crate::metrics::Registry::series_refused)). Those
//!   updates cost a registry lookup each (a lock, a few allocations) instead of the map
//!   lookup below.
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
//! registry. Recording is the mvx instrument's, after the check that it is still
//! registered: a relaxed atomic add for counters, a per-thread stripe for histograms; and
//! before both, one thread-local read: an update made in a suppression scope (inside a
//! sink's dispatcher code, or under [`suppress`](crate::facade::suppress)) is left out and
//! counted ([`RegistryRecorder::suppressed`]; see
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
use std::sync::{Arc, PoisonError, RwLock};

use metrics::{Key, KeyName, Metadata, Recorder, SetRecorderError, SharedString, Unit};

use self::handles::{Handle, KeyMap, Lookup, Rejections, Series, SuppressedUpdates};
use crate::metrics::{Histogram, Registry, RegistryError};

/// A cached handle: `None` for a series the registry refused (its call sites do nothing).
type Cached<T> = Option<Arc<Handle<T>>>;

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
    counters: RwLock<KeyMap<Cached<crate::metrics::Counter>>>,
    gauges: RwLock<KeyMap<Cached<crate::metrics::Gauge>>>,
    histograms: RwLock<KeyMap<Cached<Histogram>>>,
    descriptions: RwLock<HashMap<String, Description>>,
    /// Shared with the handles, which count the refusals of their lookups again.
    rejections: Arc<Rejections>,
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
                rejections: Arc::default(),
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
    /// does nothing. A series looked up again after it was unregistered (see
    /// [When the registry changes](self#when-the-registry-changes)) and refused is counted
    /// the same way, once per handle. A description the registry refused counts too. The
    /// overflow series past the registry's series limit is no refusal.
    pub fn rejected(&self) -> u64 {
        self.inner.rejections.count()
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
        self.inner.rejections.last()
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
            self.inner.rejections.record(error);
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

    /// The handle of `key` in `map`: the cached one while its instrument is registered,
    /// else one for the instrument the registry finds (or creates) now, cached unless it
    /// is the overflow series; `None` if the registry refuses the series.
    fn handle<T: Series>(
        &self,
        map: &RwLock<KeyMap<Cached<T>>>,
        key: &Key,
        bounds: &[f64],
    ) -> Cached<T> {
        let cached = |cached: Option<&Cached<T>>| match cached {
            Some(None) => Some(None),
            Some(Some(handle)) if handle.is_current() => Some(Some(Arc::clone(handle))),
            // Not looked up yet, or its instrument was unregistered: look it up (again).
            Some(Some(_)) | None => None,
        };
        let stale = {
            let map = read(map);
            let found = map.get(key);
            if let Some(handle) = cached(found) {
                return handle;
            }
            found.is_some()
        };
        let lookup = Lookup {
            registry: self.inner.registry.clone(),
            key: key.clone(),
            bounds: bounds.to_vec(),
        };
        // Looked up without the map's lock: a lookup past the series limit, repeated on
        // every update, must not hold up the call sites of other series.
        let found = T::find(&lookup);
        if let Ok(series) = &found {
            if series.is_overflow() && !stale {
                return Some(Arc::new(Handle::new(
                    series.clone(),
                    lookup,
                    Arc::clone(&self.inner.rejections),
                    self.inner.suppressed.clone(),
                )));
            }
        }
        let mut map = write(map);
        // Another call may have looked the series up meanwhile: its handle wins.
        if let Some(handle) = cached(map.get(key)) {
            return handle;
        }
        match found {
            Ok(series) => {
                let overflow = series.is_overflow();
                let handle = Arc::new(Handle::new(
                    series,
                    lookup,
                    Arc::clone(&self.inner.rejections),
                    self.inner.suppressed.clone(),
                ));
                if overflow {
                    map.remove(key);
                } else {
                    map.insert(key.clone(), Some(Arc::clone(&handle)));
                }
                Some(handle)
            }
            Err(error) => {
                self.inner.rejections.record(error);
                map.insert(key.clone(), None);
                None
            }
        }
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
        self.handle(&self.inner.counters, key, &[])
            .map_or_else(metrics::Counter::noop, metrics::Counter::from_arc)
    }

    fn register_gauge(&self, key: &Key, _metadata: &Metadata<'_>) -> metrics::Gauge {
        self.handle(&self.inner.gauges, key, &[])
            .map_or_else(metrics::Gauge::noop, metrics::Gauge::from_arc)
    }

    fn register_histogram(&self, key: &Key, _metadata: &Metadata<'_>) -> metrics::Histogram {
        let bounds = self.bounds_of(key.name());
        self.handle(&self.inner.histograms, key, bounds)
            .map_or_else(metrics::Histogram::noop, metrics::Histogram::from_arc)
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
