//! The registry: instruments and snapshot sources by name, read together as [`Snapshots`].

use std::collections::BTreeMap;
use std::fmt;
use std::ops::Bound;
use std::panic::{AssertUnwindSafe, catch_unwind};

use super::instruments::validate_bounds;
use super::{
    Counter, Gauge, Histogram, Metadata, MetricKind, MetricsReason, Selector, SnapshotSource,
    Snapshots, series_key,
};
use crate::ErrorReason;
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
/// **Names.** A valid name is any non-empty string. The registry does not restrict the
/// characters: fitting a name to an exposition format (Prometheus allows
/// `[a-zA-Z_:][a-zA-Z0-9_:]*`) is the exposition's job. Names are shared by instruments and
/// sources: one name, one entry.
///
/// **Locking.** Looking up or creating an instrument takes a short lock on the map; record
/// through the returned handle, which needs no lock. The registry never calls a source while
/// holding its lock, so a source may use the registry from `collect`.
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
}

#[derive(Clone)]
enum Entry {
    Counter(Counter),
    Gauge(Gauge),
    Histogram(Histogram),
    // A value of the user's, not a synchronization primitive: std's `Arc` under loom too.
    Source(std::sync::Arc<dyn SnapshotSource>),
}

impl Entry {
    /// The instrument kind of this entry; `None` for a source.
    fn kind(&self) -> Option<MetricKind> {
        match self {
            Self::Counter(_) => Some(MetricKind::Counter),
            Self::Gauge(_) => Some(MetricKind::Gauge),
            Self::Histogram(_) => Some(MetricKind::Histogram),
            Self::Source(_) => None,
        }
    }
}

impl Registry {
    /// An empty registry.
    pub fn new() -> Self {
        Self {
            inner: Arc::new(Inner {
                entries: Mutex::new(BTreeMap::new()),
                descriptions: Mutex::new(BTreeMap::new()),
                last_error: Mutex::new(None),
                source_panics: AtomicU64::new(0),
            }),
        }
    }

    /// The counter named `name`, created at zero if there is none.
    ///
    /// # Errors
    ///
    /// - [`RegistryError::InvalidName`] if `name` is empty;
    /// - [`RegistryError::KindConflict`] if `name` is a gauge or a histogram;
    /// - [`RegistryError::Duplicate`] if `name` is a registered source.
    pub fn counter(&self, name: &str) -> Result<Counter, RegistryError> {
        self.get_or_create(
            name,
            MetricKind::Counter,
            |entry| match entry {
                Entry::Counter(counter) => Some(counter.clone()),
                _ => None,
            },
            || {
                let counter = Counter::new(name);
                (Entry::Counter(counter.clone()), counter)
            },
        )
    }

    /// The gauge named `name`, created at `0.0` if there is none.
    ///
    /// # Errors
    ///
    /// - [`RegistryError::InvalidName`] if `name` is empty;
    /// - [`RegistryError::KindConflict`] if `name` is a counter or a histogram;
    /// - [`RegistryError::Duplicate`] if `name` is a registered source.
    pub fn gauge(&self, name: &str) -> Result<Gauge, RegistryError> {
        self.get_or_create(
            name,
            MetricKind::Gauge,
            |entry| match entry {
                Entry::Gauge(gauge) => Some(gauge.clone()),
                _ => None,
            },
            || {
                let gauge = Gauge::new(name);
                (Entry::Gauge(gauge.clone()), gauge)
            },
        )
    }

    /// The histogram named `name`, created with the bucket bounds `bounds` if there is none.
    ///
    /// # Errors
    ///
    /// - [`RegistryError::InvalidName`] if `name` is empty;
    /// - [`RegistryError::EmptyBuckets`], [`RegistryError::NonFiniteBucket`] or
    ///   [`RegistryError::UnsortedBuckets`] if `bounds` are not valid (see
    ///   [`Histogram::new`]);
    /// - [`RegistryError::KindConflict`] if `name` is a counter or a gauge;
    /// - [`RegistryError::BucketsConflict`] if `name` is a histogram with other bounds;
    /// - [`RegistryError::Duplicate`] if `name` is a registered source.
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
        validate_name(name)?;
        let bounds: Vec<f64> = bounds.into_iter().collect();
        validate_bounds(name, &bounds)?;
        let mut entries = lock(&self.inner.entries);
        if let Some(Entry::Histogram(existing)) = entries.get(name) {
            if existing.bounds() != bounds.as_slice() {
                return Err(RegistryError::BucketsConflict {
                    name: name.to_owned(),
                    existing: existing.bounds().to_vec(),
                    requested: bounds,
                });
            }
            return Ok(existing.clone());
        }
        if let Some(existing) = entries.get(name) {
            return Err(conflict(name, existing, MetricKind::Histogram));
        }
        let histogram = Histogram::new(name, bounds)?;
        entries.insert(name.to_owned(), Entry::Histogram(histogram.clone()));
        Ok(histogram)
    }

    /// The counter of the series of `name` with `labels`, created at zero if there is none.
    ///
    /// The series is kept under its [`series_key`] (`name{label="value",...}`, labels in
    /// name order; a label given twice keeps its last value), and the exposition writes every
    /// series of one name as one family with a sample per series. Without labels this is
    /// [`counter`](Self::counter).
    ///
    /// # Errors
    ///
    /// As [`counter`](Self::counter); also [`RegistryError::KindConflict`] (or `Duplicate`)
    /// when another series of `name` (with any labels, or none) is of another kind.
    ///
    /// # Examples
    ///
    /// ```
    /// use mvx::metrics::{Registry, RegistryError};
    ///
    /// let registry = Registry::new();
    /// registry.counter_with_labels("http.requests", &[("code", "200")])?.inc_by(3);
    /// registry.counter_with_labels("http.requests", &[("code", "500")])?.inc();
    /// let snapshots = registry.snapshots();
    /// let ok = &snapshots[r#"http.requests{code="200"}"#];
    /// assert_eq!((ok.name.as_str(), ok.get("value")), ("http.requests", Some(3u64.into())));
    /// // One name, one kind, whatever the labels.
    /// assert!(registry.gauge_with_labels("http.requests", &[("code", "404")]).is_err());
    /// # Ok::<(), RegistryError>(())
    /// ```
    pub fn counter_with_labels(
        &self,
        name: &str,
        labels: &[(&str, &str)],
    ) -> Result<Counter, RegistryError> {
        self.series(
            name,
            labels,
            MetricKind::Counter,
            |entry| match entry {
                Entry::Counter(counter) => Some(Ok(counter.clone())),
                _ => None,
            },
            |labels| {
                let counter = Counter::with_labels(name, labels);
                Ok((Entry::Counter(counter.clone()), counter))
            },
        )
    }

    /// The gauge of the series of `name` with `labels`, created at `0.0` if there is none.
    ///
    /// See [`counter_with_labels`](Self::counter_with_labels) for how series are kept.
    ///
    /// # Errors
    ///
    /// As [`counter_with_labels`](Self::counter_with_labels), for a gauge.
    pub fn gauge_with_labels(
        &self,
        name: &str,
        labels: &[(&str, &str)],
    ) -> Result<Gauge, RegistryError> {
        self.series(
            name,
            labels,
            MetricKind::Gauge,
            |entry| match entry {
                Entry::Gauge(gauge) => Some(Ok(gauge.clone())),
                _ => None,
            },
            |labels| {
                let gauge = Gauge::with_labels(name, labels);
                Ok((Entry::Gauge(gauge.clone()), gauge))
            },
        )
    }

    /// The histogram of the series of `name` with `labels`, created with the bucket bounds
    /// `bounds` if there is none.
    ///
    /// See [`counter_with_labels`](Self::counter_with_labels) for how series are kept.
    ///
    /// # Errors
    ///
    /// As [`histogram`](Self::histogram), for this series; and a `KindConflict` (or
    /// `Duplicate`) when another series of `name` is of another kind.
    pub fn histogram_with_labels(
        &self,
        name: &str,
        labels: &[(&str, &str)],
        bounds: impl IntoIterator<Item = f64>,
    ) -> Result<Histogram, RegistryError> {
        let bounds: Vec<f64> = bounds.into_iter().collect();
        validate_bounds(name, &bounds)?;
        self.series(
            name,
            labels,
            MetricKind::Histogram,
            |entry| match entry {
                Entry::Histogram(existing) if existing.bounds() != bounds.as_slice() => {
                    Some(Err(RegistryError::BucketsConflict {
                        name: name.to_owned(),
                        existing: existing.bounds().to_vec(),
                        requested: bounds.clone(),
                    }))
                }
                Entry::Histogram(existing) => Some(Ok(existing.clone())),
                _ => None,
            },
            |labels| {
                let histogram = Histogram::with_labels(name, labels, bounds.iter().copied())?;
                Ok((Entry::Histogram(histogram.clone()), histogram))
            },
        )
    }

    /// Looks up the series of `name` with `labels`: its instrument if `existing` accepts
    /// it, or a new one from `create` if no series of `name` has another kind.
    fn series<T>(
        &self,
        name: &str,
        labels: &[(&str, &str)],
        requested: MetricKind,
        existing: impl FnOnce(&Entry) -> Option<Result<T, RegistryError>>,
        create: impl FnOnce(BTreeMap<String, String>) -> Result<(Entry, T), RegistryError>,
    ) -> Result<T, RegistryError> {
        validate_name(name)?;
        let labels: BTreeMap<String, String> = labels
            .iter()
            .map(|&(label, value)| (label.to_owned(), value.to_owned()))
            .collect();
        let key = series_key(name, &labels);
        let mut entries = lock(&self.inner.entries);
        if let Some(entry) = entries.get(&key) {
            return existing(entry).unwrap_or_else(|| Err(conflict(name, entry, requested)));
        }
        // Every series of one name is one family: one kind.
        let family = format!("{name}{{");
        let siblings = entries.get(name).into_iter().chain(
            entries
                .range::<str, _>((Bound::Included(family.as_str()), Bound::Unbounded))
                .take_while(|(key, _)| key.starts_with(&family))
                .map(|(_, entry)| entry),
        );
        for sibling in siblings {
            if sibling.kind() != Some(requested) {
                return Err(conflict(name, sibling, requested));
            }
        }
        let (entry, instrument) = create(labels)?;
        entries.insert(key, entry);
        Ok(instrument)
    }

    /// The counter named `name` with the metadata `metadata`, created at zero if there is
    /// none.
    ///
    /// # Errors
    ///
    /// As [`counter`](Self::counter), and [`RegistryError::MetadataConflict`] if `name` is
    /// already described with other metadata (nothing is created then; use
    /// [`describe`](Self::describe) to replace a description).
    ///
    /// # Examples
    ///
    /// ```
    /// use mvx::metrics::{Metadata, Registry, RegistryError};
    ///
    /// let registry = Registry::new();
    /// let metadata = Metadata::new().unit("jobs").description("jobs run");
    /// let jobs = registry.counter_with("jobs", metadata.clone())?;
    /// // The same metadata again gives the same counter; other metadata is refused.
    /// registry.counter_with("jobs", metadata)?.inc();
    /// assert_eq!(jobs.get(), 1);
    /// let error = registry.counter_with("jobs", Metadata::new()).unwrap_err();
    /// assert!(matches!(error, RegistryError::MetadataConflict { .. }));
    /// # Ok::<(), RegistryError>(())
    /// ```
    pub fn counter_with(&self, name: &str, metadata: Metadata) -> Result<Counter, RegistryError> {
        self.create_described(name, metadata, || self.counter(name))
    }

    /// The gauge named `name` with the metadata `metadata`, created at `0.0` if there is
    /// none.
    ///
    /// # Errors
    ///
    /// As [`gauge`](Self::gauge), and [`RegistryError::MetadataConflict`] as for
    /// [`counter_with`](Self::counter_with).
    pub fn gauge_with(&self, name: &str, metadata: Metadata) -> Result<Gauge, RegistryError> {
        self.create_described(name, metadata, || self.gauge(name))
    }

    /// The histogram named `name` with the metadata `metadata`, created with the bucket
    /// bounds `bounds` if there is none.
    ///
    /// # Errors
    ///
    /// As [`histogram`](Self::histogram), and [`RegistryError::MetadataConflict`] as for
    /// [`counter_with`](Self::counter_with).
    pub fn histogram_with(
        &self,
        name: &str,
        bounds: impl IntoIterator<Item = f64>,
        metadata: Metadata,
    ) -> Result<Histogram, RegistryError> {
        self.create_described(name, metadata, || self.histogram(name, bounds))
    }

    /// Runs `create` and describes `name` with `metadata`, unless `name` is described with
    /// other metadata; one description lock held throughout.
    fn create_described<T>(
        &self,
        name: &str,
        metadata: Metadata,
        create: impl FnOnce() -> Result<T, RegistryError>,
    ) -> Result<T, RegistryError> {
        validate_name(name)?;
        let mut descriptions = lock(&self.inner.descriptions);
        if let Some(existing) = descriptions.get(name) {
            if *existing != metadata {
                return Err(RegistryError::MetadataConflict {
                    name: name.to_owned(),
                    existing: Box::new(existing.clone()),
                    requested: Box::new(metadata),
                });
            }
        }
        let instrument = create()?;
        descriptions.insert(name.to_owned(), metadata);
        Ok(instrument)
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
    /// Handles to a removed instrument keep working, but the registry no longer reads them:
    /// asking for the name again creates a new instrument. Descriptions of the names of a
    /// removed source's snapshots stay (they are listed again if a metric of that name
    /// comes back).
    pub fn unregister(&self, name: &str) -> bool {
        let mut descriptions = lock(&self.inner.descriptions);
        descriptions.remove(name);
        lock(&self.inner.entries).remove(name).is_some()
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

    /// Sets the metadata of `name`, replacing any described before (and, for a source's
    /// metric, the metadata the source gives).
    ///
    /// `name` need not be registered yet: describe an instrument before it is created, or a
    /// recorder's metric by the name of its snapshot.
    ///
    /// # Errors
    ///
    /// [`RegistryError::InvalidName`] if `name` is empty.
    ///
    /// # Examples
    ///
    /// ```
    /// use mvx::metrics::{Metadata, Registry};
    ///
    /// let registry = Registry::new();
    /// registry.counter("http.requests")?.inc();
    /// registry.describe("http.requests", Metadata::new().description("requests served"))?;
    /// let metadata = registry.metadata("http.requests").unwrap();
    /// assert_eq!(metadata.get_description(), Some("requests served"));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn describe(&self, name: &str, metadata: Metadata) -> Result<(), RegistryError> {
        validate_name(name)?;
        lock(&self.inner.descriptions).insert(name.to_owned(), metadata);
        Ok(())
    }

    /// The metadata of the metric `name`: described on the registry, else given by a
    /// source; `None` if there is neither.
    ///
    /// Sources are asked (without the registry's lock held) only when the registry has no
    /// description of `name`; a source that panics is skipped and reported as in
    /// [`snapshots`](Self::snapshots).
    pub fn metadata(&self, name: &str) -> Option<Metadata> {
        if let Some(described) = lock(&self.inner.descriptions).get(name) {
            return Some(described.clone());
        }
        self.read(true).1.remove(name)
    }

    /// The metrics that `selector` selects, by name in name order, with their metadata
    /// (empty metadata for each when the selector's `metadata` is `false`).
    ///
    /// The candidates are the names of every snapshot — every instrument and every metric
    /// of every source, as [`snapshots`](Self::snapshots) gives them — each with its
    /// metadata as [`metadata`](Self::metadata) gives it (empty if none). See
    /// [`Selector`] for the filters and their order. Sources are read as by `snapshots`.
    ///
    /// # Examples
    ///
    /// ```
    /// use mvx::metrics::{Metadata, Registry, Selector};
    ///
    /// let registry = Registry::new();
    /// registry.counter_with("http.requests", Metadata::new().unit("requests"))?;
    /// registry.gauge_with("http.in_flight", Metadata::new().hidden(true))?;
    /// registry.gauge("queue.depth")?;
    ///
    /// let selected = registry.get_metrics(&Selector::regex(r"^http\.")?.hidden(false));
    /// assert_eq!(selected.keys().collect::<Vec<_>>(), ["http.requests"]);
    /// assert_eq!(selected["http.requests"].get_unit(), Some("requests"));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn get_metrics(&self, selector: &Selector) -> BTreeMap<String, Metadata> {
        let (snapshots, mut metadata) = self.read(true);
        selector.select(snapshots.into_keys().map(|name| {
            let described = metadata.remove(&name).unwrap_or_default();
            (name, described)
        }))
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

    /// Looks `name` up and returns its instrument if `existing` accepts it, or creates one
    /// with `create` if the name is free.
    fn get_or_create<T>(
        &self,
        name: &str,
        requested: MetricKind,
        existing: impl FnOnce(&Entry) -> Option<T>,
        create: impl FnOnce() -> (Entry, T),
    ) -> Result<T, RegistryError> {
        validate_name(name)?;
        let mut entries = lock(&self.inner.entries);
        if let Some(entry) = entries.get(name) {
            return existing(entry).ok_or_else(|| conflict(name, entry, requested));
        }
        let (entry, instrument) = create();
        entries.insert(name.to_owned(), entry);
        Ok(instrument)
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

/// Errors of the metrics [`Registry`] and of instrument construction.
#[derive(Clone, Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RegistryError {
    /// The name breaks the naming rule: it is empty.
    #[error("invalid metric name {name:?}: a name must not be empty")]
    InvalidName {
        /// The name refused.
        name: String,
    },
    /// The name is taken by an instrument of another kind.
    #[error("metric {name:?} is a {existing}, not a {requested}")]
    KindConflict {
        /// The name.
        name: String,
        /// The kind registered under the name.
        existing: MetricKind,
        /// The kind asked for.
        requested: MetricKind,
    },
    /// The name is a histogram with other bucket bounds.
    #[error("histogram {name:?} has buckets {existing:?}, not {requested:?}")]
    BucketsConflict {
        /// The name.
        name: String,
        /// The bounds registered under the name.
        existing: Vec<f64>,
        /// The bounds asked for.
        requested: Vec<f64>,
    },
    /// The name is already taken, and the request cannot share it: a source registered
    /// under a taken name, or an instrument asked for under a source's name.
    #[error("metric name {name:?} is already registered")]
    Duplicate {
        /// The name.
        name: String,
    },
    /// The name is described with other metadata than the one asked for.
    #[error("metric {name:?} is described with other metadata")]
    MetadataConflict {
        /// The name.
        name: String,
        /// The metadata described under the name.
        existing: Box<Metadata>,
        /// The metadata asked for.
        requested: Box<Metadata>,
    },
    /// A histogram needs at least one bucket bound.
    #[error("histogram {name:?} has no bucket bounds")]
    EmptyBuckets {
        /// The histogram's name.
        name: String,
    },
    /// A bucket bound is NaN or infinite (the `+Inf` bucket is implicit).
    #[error("histogram {name:?}: bucket bound {bound} at index {index} is not finite")]
    NonFiniteBucket {
        /// The histogram's name.
        name: String,
        /// The position of the bound in the list.
        index: usize,
        /// The bound.
        bound: f64,
    },
    /// A bucket bound is not greater than the one before it.
    #[error(
        "histogram {name:?}: bucket bound {bound} at index {index} does not exceed the bound before it, {previous}"
    )]
    UnsortedBuckets {
        /// The histogram's name.
        name: String,
        /// The position of the bound in the list.
        index: usize,
        /// The bound before it.
        previous: f64,
        /// The bound.
        bound: f64,
    },
    /// A snapshot source panicked in `collect`; its snapshots were skipped.
    #[error("snapshot source {name:?} panicked")]
    SourcePanicked {
        /// The name the source is registered under.
        name: String,
        /// The panic.
        #[source]
        cause: Cause,
    },
}

impl RegistryError {
    /// The stable reason code of this error.
    ///
    /// Name conflicts (`KindConflict`, `BucketsConflict`, `Duplicate`, `MetadataConflict`) are
    /// the core's [`ErrorReason::DescriptorConflict`]; invalid names and bucket bounds and
    /// panicking sources are [`ErrorReason::Unexpected`].
    pub fn reason(&self) -> MetricsReason {
        match self {
            Self::KindConflict { .. }
            | Self::BucketsConflict { .. }
            | Self::Duplicate { .. }
            | Self::MetadataConflict { .. } => ErrorReason::DescriptorConflict.into(),
            Self::InvalidName { .. }
            | Self::EmptyBuckets { .. }
            | Self::NonFiniteBucket { .. }
            | Self::UnsortedBuckets { .. }
            | Self::SourcePanicked { .. } => ErrorReason::Unexpected.into(),
        }
    }

    /// The name of the metric or source the error is about.
    pub fn name(&self) -> &str {
        match self {
            Self::InvalidName { name }
            | Self::KindConflict { name, .. }
            | Self::BucketsConflict { name, .. }
            | Self::Duplicate { name }
            | Self::MetadataConflict { name, .. }
            | Self::EmptyBuckets { name }
            | Self::NonFiniteBucket { name, .. }
            | Self::UnsortedBuckets { name, .. }
            | Self::SourcePanicked { name, .. } => name,
        }
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
