//! What the registry lists: the metadata of a name, and the metrics a [`Selector`]
//! selects, with their metadata.

use std::collections::{BTreeMap, BTreeSet};

use super::Registry;
use crate::metrics::{Metadata, Selector, SelectorError};
use crate::sync::lock;

impl Registry {
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

    /// The metrics that `selector` selects, by name, with their metadata (empty metadata
    /// for each when the selector's `metadata` is `false`).
    ///
    /// The candidates are the names of every metric — every instrument, every metric of
    /// every source, as [`snapshots`](Self::snapshots) gives them — each once, with its
    /// metadata as [`metadata`](Self::metadata) gives it (empty if none). A labeled metric
    /// is listed once under its name (`http.requests`), not once per series: its series
    /// are the exposition's business. See [`Selector`] for the filters and their order.
    /// Sources are read as by `snapshots`.
    ///
    /// # Errors
    ///
    /// A selector metricq's manager refuses: see [`Selector::check`].
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
    /// registry.counter_with_labels("http.errors", &[("code", "500")])?;
    /// registry.counter_with_labels("http.errors", &[("code", "503")])?;
    ///
    /// let selected = registry.get_metrics(&Selector::regex(r"^http\.")?)?;
    /// assert_eq!(
    ///     selected.keys().collect::<Vec<_>>(),
    ///     ["http.errors", "http.in_flight", "http.requests"]
    /// );
    /// assert_eq!(selected["http.requests"].get_unit(), Some("requests"));
    ///
    /// // As in metricq, hidden=true selects what is stored as hidden.
    /// let hidden = registry.get_metrics(&Selector::all().hidden(true))?;
    /// assert_eq!(hidden.keys().collect::<Vec<_>>(), ["http.in_flight"]);
    ///
    /// // The manager refuses prefix with infix; so does the registry.
    /// assert!(registry.get_metrics(&Selector::all().prefix("http").infix("errors")).is_err());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn get_metrics(
        &self,
        selector: &Selector,
    ) -> Result<BTreeMap<String, Metadata>, SelectorError> {
        selector.check()?;
        let (snapshots, mut metadata) = self.read(true);
        let names: BTreeSet<String> = snapshots
            .into_iter()
            .map(|(key, snapshot)| {
                // A labeled snapshot is kept under its series key: its name is the metric's.
                if snapshot.labels.is_empty() {
                    key
                } else {
                    snapshot.name
                }
            })
            .collect();
        selector.select(names.into_iter().map(|name| {
            let described = metadata.remove(&name).unwrap_or_default();
            (name, described)
        }))
    }
}
