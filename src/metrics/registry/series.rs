//! Labeled series: the instrument of a name with a set of labels, kept under its
//! [`series_key`], and the limit on how many one name may have (the rules are in
//! [`Registry`]'s docs, "Series limit").

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::ops::Bound;

use super::{Entry, Registry, RegistryError, conflict, validate_bounds, validate_name};
use crate::metrics::{
    Counter, Gauge, Histogram, Metadata, MetricKind, Snapshot, Snapshots, series_key,
};
use crate::sync::lock;

impl Entry {
    /// The name and labels of this entry's instrument; `None` for a source.
    fn series(&self) -> Option<(&str, &BTreeMap<String, String>)> {
        match self {
            Self::Counter(counter) => Some((counter.name(), counter.labels())),
            Self::Gauge(gauge) => Some((gauge.name(), gauge.labels())),
            Self::Histogram(histogram) => Some((histogram.name(), histogram.labels())),
            Self::Latency(latency) => Some((latency.name(), latency.labels())),
            Self::Source(_) => None,
        }
    }

    /// Whether this entry is the overflow series of its name.
    fn is_overflow(&self) -> bool {
        match self {
            Self::Counter(counter) => counter.is_overflow(),
            Self::Gauge(gauge) => gauge.is_overflow(),
            Self::Histogram(histogram) => histogram.is_overflow(),
            Self::Latency(latency) => latency.is_overflow(),
            Self::Source(_) => false,
        }
    }
}

/// The labeled series of one name in the registry, and the requests its limit refused.
#[derive(Debug, Default)]
pub(super) struct SeriesCount {
    /// Labeled series of the name in the map, its overflow series left out.
    series: usize,
    /// Requests for a new labeled series answered with the overflow series.
    refused: u64,
}

impl Registry {
    /// The counter of the series of `name` with `labels`, created at zero if there is none.
    ///
    /// The series is kept under its [`series_key`] (`name{label="value",...}`, labels in
    /// name order; a label given twice keeps its last value), and the exposition writes every
    /// series of one name as one family with a sample per series. Without labels this is
    /// [`counter`](Self::counter).
    ///
    /// Past the registry's [series limit](Registry#series-limit), a new label set gets the
    /// overflow series of `name` (its labels `mvx_overflow="true"`,
    /// [`Counter::is_overflow`] true) rather than a series of its own, and the request is
    /// counted in [`series_refused`](Self::series_refused): never an error.
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
            |labels, overflow| {
                let counter = Counter::registered(name.to_owned(), labels, overflow);
                Ok((Entry::Counter(counter.clone()), counter))
            },
        )
    }

    /// The gauge of the series of `name` with `labels`, created at `0.0` if there is none.
    ///
    /// See [`counter_with_labels`](Self::counter_with_labels) for how series are kept, and
    /// the overflow series past the [series limit](Registry#series-limit).
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
            |labels, overflow| {
                let gauge = Gauge::registered(name.to_owned(), labels, overflow);
                Ok((Entry::Gauge(gauge.clone()), gauge))
            },
        )
    }

    /// The histogram of the series of `name` with `labels`, created with the bucket bounds
    /// `bounds` if there is none.
    ///
    /// See [`counter_with_labels`](Self::counter_with_labels) for how series are kept, and
    /// the overflow series past the [series limit](Registry#series-limit): the overflow
    /// histogram has the bounds of the request that created it.
    ///
    /// # Errors
    ///
    /// As [`histogram`](Self::histogram), for this series (past the limit, for the overflow
    /// series: a `BucketsConflict` if its bounds are not `bounds`); and a `KindConflict` (or
    /// `Duplicate`) when another series of `name` is of another kind.
    pub fn histogram_with_labels(
        &self,
        name: &str,
        labels: &[(&str, &str)],
        bounds: impl IntoIterator<Item = f64>,
    ) -> Result<Histogram, RegistryError> {
        validate_name(name)?;
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
            |labels, overflow| {
                let histogram =
                    Histogram::registered(name.to_owned(), labels, bounds.clone(), overflow)?;
                Ok((Entry::Histogram(histogram.clone()), histogram))
            },
        )
    }

    /// The most labeled series one name may have (see [Series limit](Registry#series-limit)).
    pub fn series_limit(&self) -> usize {
        self.inner.series_limit
    }

    /// How many labeled series `name` has, its overflow series left out: at most
    /// [`series_limit`](Self::series_limit).
    pub fn series_count(&self, name: &str) -> usize {
        lock(&self.inner.series)
            .get(name)
            .map_or(0, |count| count.series)
    }

    /// How many requests for a new labeled series of `name` the
    /// [series limit](Registry#series-limit) refused, answering each with the overflow
    /// series; also exposed as the counter [`SERIES_REFUSED`](Self::SERIES_REFUSED).
    pub fn series_refused(&self, name: &str) -> u64 {
        lock(&self.inner.series)
            .get(name)
            .map_or(0, |count| count.refused)
    }

    /// Looks up the series of `name` with `labels`: its instrument if `existing` accepts
    /// it, or a new one from `create` (given the labels, and whether it is the overflow
    /// series) if no series of `name` has another kind; past the limit, the overflow series.
    pub(super) fn series<T>(
        &self,
        name: &str,
        labels: &[(&str, &str)],
        requested: MetricKind,
        existing: impl FnOnce(&Entry) -> Option<Result<T, RegistryError>>,
        create: impl FnOnce(BTreeMap<String, String>, bool) -> Result<(Entry, T), RegistryError>,
    ) -> Result<T, RegistryError> {
        validate_name(name)?;
        let mut labels: BTreeMap<String, String> = labels
            .iter()
            .map(|&(label, value)| (label.to_owned(), value.to_owned()))
            .collect();
        // The unlabeled instrument's key is its name: looked up without an allocation.
        let mut key = match labels.is_empty() {
            true => Cow::Borrowed(name),
            false => Cow::Owned(series_key(name, &labels)),
        };
        let mut entries = lock(&self.inner.entries);
        if let Some(entry) = entries.get(&*key) {
            return found(entry, name, &labels, &key, requested, existing);
        }
        let mut counts = lock(&self.inner.series);
        let mut overflow = is_overflow_labels(&labels);
        // Only a new labeled series of its own is limited.
        let limited = !labels.is_empty() && !overflow;
        let refused =
            limited && counts.get(name).map_or(0, |count| count.series) >= self.inner.series_limit;
        if refused {
            labels = overflow_labels();
            key = Cow::Owned(series_key(name, &labels));
            overflow = true;
        }
        let instrument = match entries.get(&*key) {
            Some(entry) => found(entry, name, &labels, &key, requested, existing)?,
            None => {
                if let Some(error) = family_conflict(&entries, name, requested) {
                    return Err(error);
                }
                let (entry, instrument) = create(labels, overflow)?;
                self.claim_exposed_names(name, requested)?;
                entries.insert(key.into_owned(), entry);
                instrument
            }
        };
        if limited {
            let count = match counts.get_mut(name) {
                Some(count) => count,
                None => counts.entry(name.to_owned()).or_default(),
            };
            if refused {
                count.refused = count.refused.saturating_add(1);
            } else {
                count.series += 1;
            }
        }
        Ok(instrument)
    }

    /// After `removed` left the map: if it was a limited series, its place is free.
    pub(super) fn forget_series(&self, removed: &Entry) {
        let Some((name, labels)) = removed.series() else {
            return;
        };
        if labels.is_empty() || removed.is_overflow() {
            return;
        }
        let mut counts = lock(&self.inner.series);
        if let Some(count) = counts.get_mut(name) {
            count.series = count.series.saturating_sub(1);
            if count.series == 0 && count.refused == 0 {
                counts.remove(name);
            }
        }
    }

    /// Adds the [`SERIES_REFUSED`](Self::SERIES_REFUSED) counter of every name that had a
    /// request refused, and, given `metadata`, its description.
    pub(super) fn collect_series_refused(
        &self,
        snapshots: &mut Snapshots,
        metadata: Option<&mut BTreeMap<String, Metadata>>,
    ) {
        let counts = lock(&self.inner.series);
        let mut any = false;
        for (name, count) in counts.iter().filter(|(_, count)| count.refused > 0) {
            let snapshot = Snapshot::new(Self::SERIES_REFUSED, MetricKind::Counter)
                .with("value", count.refused)
                .with_label("metric", name.as_str());
            snapshots.insert(snapshot.key(), snapshot);
            any = true;
        }
        if let (true, Some(metadata)) = (any, metadata) {
            metadata.insert(
                Self::SERIES_REFUSED.to_owned(),
                Metadata::new().description(
                    "requests for a new labeled series of the metric refused by the registry's \
                     series limit and answered with its overflow series (mvx_overflow=\"true\")",
                ),
            );
        }
    }
}

/// The answer to a request for the series of `name` with `labels` of kind `requested`,
/// whose key `key` holds `entry`: its instrument if `existing` accepts it; an error if it is
/// of another kind, or if it is another metric whose key reads the same (a name with braces,
/// such as `a{x="1"}`, or label names with quotes, as `x="1",y` for the labels `x` and `y`).
fn found<T>(
    entry: &Entry,
    name: &str,
    labels: &BTreeMap<String, String>,
    key: &str,
    requested: MetricKind,
    existing: impl FnOnce(&Entry) -> Option<Result<T, RegistryError>>,
) -> Result<T, RegistryError> {
    if entry
        .series()
        .is_some_and(|series| series != (name, labels))
    {
        return Err(RegistryError::Duplicate {
            name: key.to_owned(),
        });
    }
    existing(entry).unwrap_or_else(|| Err(conflict(name, entry, requested)))
}

/// The conflict of a new series of `name` of kind `requested` with the series of `name`
/// there are, if any: one name has one kind, whatever its labels. The keys of other metrics
/// that start with `name{` (`name{x` is a name of its own) are none of its series; a source
/// registered under such a key is a conflict.
fn family_conflict(
    entries: &BTreeMap<String, Entry>,
    name: &str,
    requested: MetricKind,
) -> Option<RegistryError> {
    let family = format!("{name}{{");
    let siblings = entries.get(name).into_iter().chain(
        entries
            .range::<str, _>((Bound::Included(family.as_str()), Bound::Unbounded))
            .take_while(|(key, _)| key.starts_with(&family))
            .map(|(_, entry)| entry),
    );
    siblings
        .filter(|sibling| sibling.series().is_none_or(|(sibling, _)| sibling == name))
        .find(|sibling| sibling.kind() != Some(requested))
        .map(|sibling| conflict(name, sibling, requested))
}

/// The labels of an overflow series.
fn overflow_labels() -> BTreeMap<String, String> {
    let (label, value) = Registry::OVERFLOW_LABEL;
    BTreeMap::from([(label.to_owned(), value.to_owned())])
}

/// Whether `labels` are those of an overflow series.
fn is_overflow_labels(labels: &BTreeMap<String, String>) -> bool {
    let (label, value) = Registry::OVERFLOW_LABEL;
    labels.len() == 1 && labels.get(label).map(String::as_str) == Some(value)
}
