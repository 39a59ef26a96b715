//! The registry: instruments and snapshot sources by name, read together as [`Snapshots`].
//!
//! (For maintainers: one concept, the registry's instruments and sources; some 560 lines,
//! half of them docs.)
//!
//! This file holds the map and its reading; the labeled series and their limit (`series`),
//! the descriptions set on names (`descriptions`), what the registry lists (`listing`), the
//! names metrics take once exposed (`exposed_names`) and its error (`error`) are in files
//! of their own.

mod descriptions;
mod error;
pub(crate) mod exposed_names;
mod latency;
mod listing;
mod series;

use std::collections::BTreeMap;
use std::fmt;
use std::panic::{AssertUnwindSafe, catch_unwind};

pub use self::error::RegistryError;

use self::exposed_names::ExposedNames;

use super::instruments::validate_bounds;
use super::{
    Counter, Gauge, Histogram, LatencyHistogram, Metadata, MetricKind, SnapshotSource, Snapshots,
};
use crate::error::Cause;
use crate::sync::{Arc, AtomicU64, Mutex, Ordering, lock};

/// Instruments and snapshot sources by name: what exposition reads.
///
/// A cheap handle (`Clone + Send + Sync`, an `Arc` inside): clones share one map.
///
/// - [`counter`](Self::counter), [`gauge`](Self::gauge) and
///   [`histogram`](Self::histogram) get the instrument of that name, creating it the first
///   time. Asking for a name with another kind, or a histogram with other buckets, is an
///   error, never a silent second instrument.
/// - [`register_source`](Self::register_source) adds anything that implements
///   [`SnapshotSource`], such as a recorder; [`unregister`](Self::unregister) removes an
///   instrument or a source.
/// - [`snapshots`](Self::snapshots) collects everything, in name order.
/// - [`describe`](Self::describe) (or [`counter_with`](Self::counter_with),
///   [`gauge_with`](Self::gauge_with), [`histogram_with`](Self::histogram_with)) sets the
///   [`Metadata`] of a name; [`metadata`](Self::metadata) and
///   [`get_metrics`](Self::get_metrics) read it back.
///
/// **Metadata.** The metadata of a metric is the one described on the registry under its
/// name if there is one, else the one its source gives (a recorder gives its metrics'
/// [`Metric::metadata`](super::Metric::metadata)), else empty. A description replaces a
/// source's metadata as a whole; fields are not merged. Any name can be described, also one
/// that a source's snapshot will have, or that no metric has yet; a description stays
/// until it is replaced or the name is [`unregister`](Self::unregister)ed.
///
/// **Labels.** A metric with labels is a series: [`counter_with_labels`](Self::counter_with_labels)
/// and its siblings keep it under its [`series_key`](super::series_key), and one name has
/// one kind, whatever its labels. Metadata stays per name: the description of
/// `http.requests` is the `HELP` of the one family that exposition writes for all its
/// series. [`get_metrics`](Self::get_metrics) lists a labeled metric once, under its
/// name, with the metadata of its name.
///
/// **Names.** A valid name is any non-empty string. The registry does not restrict the
/// characters: fitting a name to an exposition format (Prometheus allows
/// `[a-zA-Z_:][a-zA-Z0-9_:]*`) is the exposition's job. Names are shared by instruments and
/// sources: one name, one entry. The map is keyed by text — a name, or a series key — so
/// a name or label names that read as the key of another metric's series (the name
/// `a{x="1"}` beside the series of `a` labeled `x="1"`; the label name `x="1",y` beside the
/// labels `x` and `y`) are refused with [`RegistryError::Duplicate`] rather than answered
/// with that metric's instrument.
/// Two instruments whose exposed names would collide — a
/// histogram `x` and a gauge `x_count` (both expose a sample `x_count`), a counter `y` and
/// a gauge `y_total`, a gauge `a.x` and a gauge `a_x` — cannot both be registered: the
/// later is refused with [`RegistryError::SampleNameCollision`] (the rules of exposed names
/// are in [`crate::expose::text`]). The names of a source's snapshots are known only when
/// it is read; the exposition leaves out and reports those that collide.
///
/// **Locking.** Looking up or creating an instrument takes a short lock on the map; record
/// through the returned handle, which needs no lock. The registry never calls a source while
/// holding its lock, so a source may use the registry from `collect`.
///
/// # Series limit
///
/// Each name has at most [`series_limit`](Self::series_limit) labeled series
/// ([`DEFAULT_SERIES_LIMIT`](Self::DEFAULT_SERIES_LIMIT), 2,000, as OpenTelemetry's
/// default cardinality limit, unless the registry was made by
/// [`with_series_limit`](Self::with_series_limit)), so that label values taken from
/// requests, users or errors cannot grow the registry (and each scrape) without bound.
///
/// - A series that exists is always found, whatever the limit.
/// - Once a name has its limit of labeled series, [`counter_with_labels`](Self::counter_with_labels),
///   [`gauge_with_labels`](Self::gauge_with_labels) and
///   [`histogram_with_labels`](Self::histogram_with_labels) answer a request for a new
///   label set with the name's **overflow series** rather than an error, so that
///   instrumented code goes on recording: the series of the name labeled
///   `mvx_overflow="true"` ([`OVERFLOW_LABEL`](Self::OVERFLOW_LABEL); OpenTelemetry's is
///   `otel_metric_overflow="true"`) and no other label, created by the first such request
///   (a histogram with that request's bounds). Everything recorded into it is exposed with
///   the name's other series: nothing is dropped, and the total over the series of a name
///   is every update. A handle tells which it is: [`Counter::is_overflow`] and its
///   siblings.
/// - Each such request is counted per name: [`series_refused`](Self::series_refused), and
///   in [`snapshots`](Self::snapshots) (so in every exposition) as the counter
///   `mvx.registry.series_refused` ([`SERIES_REFUSED`](Self::SERIES_REFUSED)) with the
///   label `metric` naming the name — `mvx_registry_series_refused_total{metric="..."}` in
///   Prometheus text — once a name has had one. A caller that looks its series up on every
///   update, as the `metrics` facade does past the limit, counts every such update.
/// - The unlabeled instrument of a name and its overflow series are not among its limited
///   series. Asking for the overflow series' label set gives the overflow series.
/// - [`unregister`](Self::unregister)ing a labeled series frees its place; unregistering
///   the overflow series frees none, and the next refused request creates a new one.
///
/// A limit of 0 sends every labeled series to the overflow series; `usize::MAX` is no
/// limit.
///
/// ```
/// use mvx::metrics::Registry;
///
/// let registry = Registry::with_series_limit(2);
/// for user in ["ann", "bob", "cy", "dee"] {
///     registry.counter_with_labels("logins", &[("user", user)])?.inc();
/// }
/// assert_eq!(
///     registry.names(),
///     [r#"logins{mvx_overflow="true"}"#, r#"logins{user="ann"}"#, r#"logins{user="bob"}"#]
/// );
/// let overflow = registry.counter_with_labels("logins", &[("user", "eve")])?;
/// assert!(overflow.is_overflow());
/// assert_eq!(overflow.get(), 2); // cy's and dee's logins
/// assert_eq!((registry.series_count("logins"), registry.series_refused("logins")), (2, 3));
/// # Ok::<(), mvx::metrics::RegistryError>(())
/// ```
///
/// # Examples
///
/// ```
/// use mvx::metrics::{Registry, RegistryError};
///
/// let registry = Registry::new();
/// let requests = registry.counter("http.requests")?;
/// requests.inc();
/// // The same name gives the same counter.
/// registry.counter("http.requests")?.inc();
/// assert_eq!(requests.get(), 2);
///
/// // The same name with another kind is refused.
/// let error = registry.gauge("http.requests").unwrap_err();
/// assert!(matches!(error, RegistryError::KindConflict { .. }));
///
/// let snapshots = registry.snapshots();
/// assert_eq!(snapshots["http.requests"].get("value"), Some(2u64.into()));
/// # Ok::<(), RegistryError>(())
/// ```
#[derive(Clone)]
pub struct Registry {
    inner: Arc<Inner>,
}

struct Inner {
    entries: Mutex<BTreeMap<String, Entry>>,
    /// Metadata described on the registry, by name. Lock order: `descriptions`, then
    /// `entries`; never the other way round.
    descriptions: Mutex<BTreeMap<String, Metadata>>,
    /// The last failure of a source during [`Registry::snapshots`].
    last_error: Mutex<Option<RegistryError>>,
    /// How many times a source panicked during [`Registry::snapshots`].
    source_panics: AtomicU64,
    /// The most labeled series of one name (see [Series limit](Registry#series-limit)).
    series_limit: usize,
    /// The labeled series of each name, and the requests refused by the limit. Lock order:
    /// `entries`, then `series`; never the other way round.
    series: Mutex<BTreeMap<String, series::SeriesCount>>,
    /// The exposed names each registered instrument takes. Locked only with `entries`
    /// held: lock order `descriptions`, `entries`, `exposed_names`.
    exposed_names: Mutex<ExposedNames>,
}

#[derive(Clone)]
enum Entry {
    Counter(Counter),
    Gauge(Gauge),
    Histogram(Histogram),
    Latency(LatencyHistogram),
    // A value of the user's, not a synchronization primitive: std's `Arc` under loom too.
    Source(std::sync::Arc<dyn SnapshotSource>),
}

impl Entry {
    /// Marks the instrument of this entry unregistered: the `metrics` facade's handles then
    /// look their series up again.
    fn mark_unregistered(&self) {
        match self {
            Self::Counter(counter) => counter.mark_unregistered(),
            Self::Gauge(gauge) => gauge.mark_unregistered(),
            Self::Histogram(histogram) => histogram.mark_unregistered(),
            Self::Latency(latency) => latency.mark_unregistered(),
            Self::Source(_) => {}
        }
    }

    /// The instrument kind of this entry; `None` for a source.
    fn kind(&self) -> Option<MetricKind> {
        match self {
            Self::Counter(_) => Some(MetricKind::Counter),
            Self::Gauge(_) => Some(MetricKind::Gauge),
            Self::Histogram(_) => Some(MetricKind::Histogram),
            Self::Latency(_) => Some(MetricKind::Summary),
            Self::Source(_) => None,
        }
    }

    /// The name and kind of this entry's instrument; `None` for a source.
    fn instrument(&self) -> Option<(&str, MetricKind)> {
        match self {
            Self::Counter(counter) => Some((counter.name(), MetricKind::Counter)),
            Self::Gauge(gauge) => Some((gauge.name(), MetricKind::Gauge)),
            Self::Histogram(histogram) => Some((histogram.name(), MetricKind::Histogram)),
            Self::Latency(latency) => Some((latency.name(), MetricKind::Summary)),
            Self::Source(_) => None,
        }
    }
}

impl Registry {
    /// The series limit of a registry made by [`new`](Self::new): 2,000 labeled series per
    /// name, as OpenTelemetry's default cardinality limit (see
    /// [Series limit](#series-limit)).
    pub const DEFAULT_SERIES_LIMIT: usize = 2_000;

    /// The label, and its value, of the overflow series of a name:
    /// `name{mvx_overflow="true"}` (see [Series limit](#series-limit)).
    pub const OVERFLOW_LABEL: (&'static str, &'static str) = ("mvx_overflow", "true");

    /// The name of the registry's own counter of the requests refused by the series limit,
    /// one series per name, labeled `metric` (see [Series limit](#series-limit)).
    pub const SERIES_REFUSED: &'static str = "mvx.registry.series_refused";

    /// An empty registry with the [`DEFAULT_SERIES_LIMIT`](Self::DEFAULT_SERIES_LIMIT).
    pub fn new() -> Self {
        Self::with_series_limit(Self::DEFAULT_SERIES_LIMIT)
    }

    /// An empty registry whose names have at most `limit` labeled series each (see
    /// [Series limit](#series-limit)): `0` sends every labeled series to the overflow
    /// series, `usize::MAX` is no limit.
    pub fn with_series_limit(limit: usize) -> Self {
        Self {
            inner: Arc::new(Inner {
                entries: Mutex::new(BTreeMap::new()),
                descriptions: Mutex::new(BTreeMap::new()),
                last_error: Mutex::new(None),
                source_panics: AtomicU64::new(0),
                series_limit: limit,
                series: Mutex::new(BTreeMap::new()),
                exposed_names: Mutex::new(ExposedNames::new()),
            }),
        }
    }

    /// The counter named `name`, created at zero if there is none: the series of `name`
    /// without labels ([`counter_with_labels`](Self::counter_with_labels) with none).
    ///
    /// # Errors
    ///
    /// - [`RegistryError::InvalidName`] if `name` is empty;
    /// - [`RegistryError::KindConflict`] if `name` (with any labels) is a gauge or a
    ///   histogram;
    /// - [`RegistryError::Duplicate`] if `name` is a registered source, or the key of
    ///   another metric's series (such as `a{x="1"}`, a series of `a`);
    /// - [`RegistryError::SampleNameCollision`] if the names `name` would take once exposed
    ///   are taken by another instrument's (see the type docs, **Names**).
    pub fn counter(&self, name: &str) -> Result<Counter, RegistryError> {
        self.counter_with_labels(name, &[])
    }

    /// The gauge named `name`, created at `0.0` if there is none: the series of `name`
    /// without labels ([`gauge_with_labels`](Self::gauge_with_labels) with none).
    ///
    /// # Errors
    ///
    /// - [`RegistryError::InvalidName`] if `name` is empty;
    /// - [`RegistryError::KindConflict`] if `name` (with any labels) is a counter or a
    ///   histogram;
    /// - [`RegistryError::Duplicate`] if `name` is a registered source, or the key of
    ///   another metric's series;
    /// - [`RegistryError::SampleNameCollision`] if the names `name` would take once exposed
    ///   are taken by another instrument's (see the type docs, **Names**).
    pub fn gauge(&self, name: &str) -> Result<Gauge, RegistryError> {
        self.gauge_with_labels(name, &[])
    }

    /// The histogram named `name`, created with the bucket bounds `bounds` if there is none:
    /// the series of `name` without labels
    /// ([`histogram_with_labels`](Self::histogram_with_labels) with none).
    ///
    /// # Errors
    ///
    /// - [`RegistryError::InvalidName`] if `name` is empty;
    /// - [`RegistryError::EmptyBuckets`], [`RegistryError::NonFiniteBucket`] or
    ///   [`RegistryError::UnsortedBuckets`] if `bounds` are not valid (see
    ///   [`Histogram::new`]);
    /// - [`RegistryError::KindConflict`] if `name` (with any labels) is a counter or a
    ///   gauge;
    /// - [`RegistryError::BucketsConflict`] if `name` is a histogram with other bounds;
    /// - [`RegistryError::Duplicate`] if `name` is a registered source, or the key of
    ///   another metric's series;
    /// - [`RegistryError::SampleNameCollision`] if the names `name` would take once exposed
    ///   are taken by another instrument's (see the type docs, **Names**).
    ///
    /// # Examples
    ///
    /// ```
    /// use mvx::metrics::{Histogram, Registry, RegistryError};
    ///
    /// let registry = Registry::new();
    /// let latency = registry.histogram("latency", Histogram::DEFAULT_BUCKETS.iter().copied())?;
    /// latency.observe(0.02);
    /// let error = registry.histogram("latency", [1.0, 2.0]).unwrap_err();
    /// assert!(matches!(error, RegistryError::BucketsConflict { .. }));
    /// # Ok::<(), RegistryError>(())
    /// ```
    pub fn histogram(
        &self,
        name: &str,
        bounds: impl IntoIterator<Item = f64>,
    ) -> Result<Histogram, RegistryError> {
        self.histogram_with_labels(name, &[], bounds)
    }

    /// Registers a source of snapshots under `name`.
    ///
    /// On [`snapshots`](Self::snapshots), the source adds its own snapshots, under the names
    /// it chooses (by convention `name` or names starting with it).
    ///
    /// # Errors
    ///
    /// - [`RegistryError::InvalidName`] if `name` is empty;
    /// - [`RegistryError::Duplicate`] if `name` is already taken, by a source or an
    ///   instrument; the registry is unchanged.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::sync::Arc;
    /// use mvx::metrics::{MetricKind, Registry, Snapshot, SnapshotSource, Snapshots};
    ///
    /// struct BuildInfo;
    ///
    /// impl SnapshotSource for BuildInfo {
    ///     fn collect(&self, into: &mut Snapshots) {
    ///         let info = Snapshot::new("build_info", MetricKind::Info).with("value", 1u64);
    ///         into.insert(info.name.clone(), info);
    ///     }
    /// }
    ///
    /// let registry = Registry::new();
    /// registry.register_source("build_info", Arc::new(BuildInfo))?;
    /// assert!(registry.register_source("build_info", Arc::new(BuildInfo)).is_err());
    /// assert_eq!(registry.snapshots()["build_info"].kind, MetricKind::Info);
    /// # Ok::<(), mvx::metrics::RegistryError>(())
    /// ```
    pub fn register_source(
        &self,
        name: &str,
        source: std::sync::Arc<dyn SnapshotSource>,
    ) -> Result<(), RegistryError> {
        validate_name(name)?;
        let mut entries = lock(&self.inner.entries);
        if entries.contains_key(name) {
            return Err(RegistryError::Duplicate {
                name: name.to_owned(),
            });
        }
        entries.insert(name.to_owned(), Entry::Source(source));
        Ok(())
    }

    /// Removes the instrument or source named `name`, and the metadata described under
    /// `name`; whether there was an instrument or a source.
    ///
    /// `name` is a registry name: an instrument's name, a source's, or the
    /// [`series_key`](super::series_key) of a labeled series (which frees its place under the
    /// [series limit](#series-limit)).
    ///
    /// Handles to a removed instrument keep working, but the registry no longer reads them:
    /// asking for the name again creates a new instrument. The removed instrument reports
    /// [`is_unregistered`](Counter::is_unregistered), and the handles of the `metrics` facade
    /// (feature `metrics`) look their series up again on their next update, so that the
    /// facade goes on counting into the registry. Descriptions of the names of a
    /// removed source's snapshots stay (they are listed again if a metric of that name
    /// comes back).
    pub fn unregister(&self, name: &str) -> bool {
        let mut descriptions = lock(&self.inner.descriptions);
        descriptions.remove(name);
        let mut entries = lock(&self.inner.entries);
        let Some(removed) = entries.remove(name) else {
            return false;
        };
        removed.mark_unregistered();
        self.forget_series(&removed);
        self.release_exposed_names(&entries, &removed);
        true
    }

    /// The registered names (of instruments and sources), in order.
    pub fn names(&self) -> Vec<String> {
        lock(&self.inner.entries).keys().cloned().collect()
    }

    /// The snapshot of every instrument and every source, by name.
    ///
    /// Entries are read in name order; if two produce a snapshot of the same name, the later
    /// one wins. A source that panics in `collect` is skipped (none of its snapshots are
    /// kept), counted in [`source_panics`](Self::source_panics) and reported by
    /// [`last_error`](Self::last_error); the registry and the other entries are unaffected.
    /// Sources are called without the registry's lock held.
    pub fn snapshots(&self) -> Snapshots {
        self.read(false).0
    }

    /// Every snapshot and, if `with_metadata`, the metadata by name: sources' metadata
    /// overlaid with the registry's descriptions.
    pub(crate) fn read(&self, with_metadata: bool) -> (Snapshots, BTreeMap<String, Metadata>) {
        let entries: Vec<(String, Entry)> = lock(&self.inner.entries)
            .iter()
            .map(|(name, entry)| (name.clone(), entry.clone()))
            .collect();
        let mut snapshots = Snapshots::new();
        let mut metadata = BTreeMap::new();
        for (name, entry) in entries {
            match entry {
                Entry::Counter(counter) => counter.collect(&mut snapshots),
                Entry::Gauge(gauge) => gauge.collect(&mut snapshots),
                Entry::Histogram(histogram) => histogram.collect(&mut snapshots),
                Entry::Latency(latency) => {
                    latency.collect(&mut snapshots);
                    if with_metadata {
                        latency.collect_metadata(&mut metadata);
                    }
                }
                Entry::Source(source) => {
                    let mut collected = Snapshots::new();
                    let mut described = BTreeMap::new();
                    let read = catch_unwind(AssertUnwindSafe(|| {
                        source.collect(&mut collected);
                        if with_metadata {
                            source.collect_metadata(&mut described);
                        }
                    }));
                    match read {
                        Ok(()) => {
                            snapshots.append(&mut collected);
                            metadata.append(&mut described);
                        }
                        Err(payload) => {
                            self.inner.source_panics.fetch_add(1, Ordering::Relaxed);
                            *lock(&self.inner.last_error) = Some(RegistryError::SourcePanicked {
                                name,
                                cause: Cause::from_panic(payload),
                            });
                        }
                    }
                }
            }
        }
        self.collect_series_refused(&mut snapshots, with_metadata.then_some(&mut metadata));
        if with_metadata {
            let descriptions = lock(&self.inner.descriptions);
            metadata.extend(
                descriptions
                    .iter()
                    .map(|(name, described)| (name.clone(), described.clone())),
            );
        }
        (snapshots, metadata)
    }

    /// The last failure of a source during [`snapshots`](Self::snapshots) (or another read
    /// of the sources: [`metadata`](Self::metadata), [`get_metrics`](Self::get_metrics),
    /// exposition) — [`RegistryError::SourcePanicked`] — if any; it stays until a later
    /// failure replaces it.
    pub fn last_error(&self) -> Option<RegistryError> {
        lock(&self.inner.last_error).clone()
    }

    /// How many times a source panicked while it was read (see
    /// [`last_error`](Self::last_error)).
    pub fn source_panics(&self) -> u64 {
        self.inner.source_panics.load(Ordering::Relaxed)
    }
}

impl Default for Registry {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Debug for Registry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Registry")
            .field("names", &self.names())
            .field("source_panics", &self.source_panics())
            .finish()
    }
}

/// Checks the naming rule: not empty.
fn validate_name(name: &str) -> Result<(), RegistryError> {
    if name.is_empty() {
        return Err(RegistryError::InvalidName {
            name: name.to_owned(),
        });
    }
    Ok(())
}

/// The error for a request of kind `requested` on a name held by `existing`.
fn conflict(name: &str, existing: &Entry, requested: MetricKind) -> RegistryError {
    match existing.kind() {
        Some(existing) => RegistryError::KindConflict {
            name: name.to_owned(),
            existing,
            requested,
        },
        None => RegistryError::Duplicate {
            name: name.to_owned(),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conflict_names_the_existing_kind_or_a_duplicate() {
        let counter = Entry::Counter(Counter::new("a"));
        assert!(matches!(
            conflict("a", &counter, MetricKind::Gauge),
            RegistryError::KindConflict {
                existing: MetricKind::Counter,
                requested: MetricKind::Gauge,
                ..
            }
        ));
        let source = Entry::Source(std::sync::Arc::new(Counter::new("a")));
        assert!(matches!(
            conflict("a", &source, MetricKind::Gauge),
            RegistryError::Duplicate { .. }
        ));
    }

    #[test]
    fn empty_name_is_the_only_invalid_one() {
        assert!(matches!(
            validate_name(""),
            Err(RegistryError::InvalidName { .. })
        ));
        for name in [" ", "a", "http.requests", "ünïcödé", "le:+Inf"] {
            assert!(validate_name(name).is_ok(), "{name:?}");
        }
    }
}
