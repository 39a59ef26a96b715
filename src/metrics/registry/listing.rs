//! What the registry lists: the metadata of a name, and the metrics a [`Selector`]
//! selects, with their metadata.

use std::collections::BTreeMap;

use super::Registry;
use crate::metrics::{Metadata, Selector};
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

    /// The metrics that `selector` selects, by name in name order, with their metadata
    /// (empty metadata for each when the selector's `metadata` is `false`).
    ///
    /// The candidates are the names of every snapshot — every instrument, every labeled
    /// series (under its series key), and every metric of every source, as
    /// [`snapshots`](Self::snapshots) gives them — each with its metadata as
    /// [`metadata`](Self::metadata) gives it (empty if none). See [`Selector`] for the
    /// filters and their order. Sources are read as by `snapshots`.
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
}
