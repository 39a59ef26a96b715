//! Descriptions: the [`Metadata`] set on a registry name, by [`Registry::describe`] or
//! when an instrument is created with it.

use super::{Registry, RegistryError, validate_name};
use crate::metrics::{Counter, Gauge, Histogram, Metadata};
use crate::sync::lock;

impl Registry {
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
    pub(super) fn create_described<T>(
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
}
