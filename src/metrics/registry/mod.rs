//! The registry: instruments and snapshot sources by name, read together as [`Snapshots`].
//!
//! This file holds the map and its reading; the labeled series (`series`), the descriptions
//! set on names (`descriptions`), what the registry lists (`listing`) and its error
//! (`error`) are in files of their own.

mod descriptions;
mod error;
mod listing;
mod series;

use std::collections::BTreeMap;
use std::fmt;
use std::panic::{AssertUnwindSafe, catch_unwind};

pub use self::error::RegistryError;

use super::instruments::validate_bounds;
use super::{Counter, Gauge, Histogram, Metadata, MetricKind, SnapshotSource, Snapshots};
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
/// series. [`get_metrics`](Self::get_metrics) lists each series under its series key,
/// with the metadata described under that key if any, not the metadata of its name (read
/// that with [`metadata`](Self::metadata)).
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
