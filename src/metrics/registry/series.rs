//! Labeled series: the instrument of a name with a set of labels, kept under its
//! [`series_key`].

use std::collections::BTreeMap;
use std::ops::Bound;

use super::{Entry, Registry, RegistryError, conflict, validate_bounds, validate_name};
use crate::metrics::{Counter, Gauge, Histogram, MetricKind, series_key};
use crate::sync::lock;

impl Registry {
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
}
