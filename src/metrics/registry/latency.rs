//! Latency histograms in the registry: [`Registry::latency_histogram`] and its siblings.

use super::{Entry, Registry, RegistryError, validate_name};
use crate::metrics::{LatencyConfig, LatencyHistogram, Metadata, MetricKind};

impl Registry {
    /// The latency histogram named `name`, created with `config` if there is none: the
    /// series of `name` without labels
    /// ([`latency_histogram_with_labels`](Self::latency_histogram_with_labels) with none).
    ///
    /// Exposed as a Prometheus summary (`quantile` samples, `_sum`, `_count`, in seconds);
    /// listed ([`get_metrics`](Self::get_metrics), `/api/metrics`) with the histogram's
    /// [`metadata`](LatencyHistogram::metadata) — its unit and accuracy — unless `name` is
    /// described on the registry.
    ///
    /// # Errors
    ///
    /// - [`RegistryError::InvalidName`] if `name` is empty;
    /// - [`RegistryError::LatencyConfig`] if `config` is not valid;
    /// - [`RegistryError::KindConflict`] if `name` (with any labels) is another kind of
    ///   metric;
    /// - [`RegistryError::LatencyConfigConflict`] if `name` is a latency histogram with
    ///   another configuration;
    /// - [`RegistryError::Duplicate`] if `name` is a registered source, or the key of
    ///   another metric's series;
    /// - [`RegistryError::SampleNameCollision`] if the names `name` would take once exposed
    ///   are taken by another instrument's.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use mvx::expose::{Format, encode};
    /// use mvx::metrics::{LatencyConfig, Registry, RegistryError};
    ///
    /// let registry = Registry::new();
    /// let config = LatencyConfig::default().quantiles([0.5, 0.99]);
    /// let latency = registry.latency_histogram("rpc.latency.seconds", config.clone())?;
    /// latency.record(Duration::from_millis(2));
    /// assert_eq!(
    ///     encode(&registry, Format::Prometheus),
    ///     "# HELP rpc_latency_seconds rpc.latency.seconds\n\
    ///      ## TYPE rpc_latency_seconds summary\n\
    ///      rpc_latency_seconds{quantile=\"0.5\"} 0.002007039\n\
    ///      rpc_latency_seconds{quantile=\"0.99\"} 0.002007039\n\
    ///      rpc_latency_seconds_sum 0.002\n\
    ///      rpc_latency_seconds_count 1\n"
    /// );
    /// let error = registry.latency_histogram("rpc.latency.seconds", LatencyConfig::default());
    /// assert!(matches!(error, Err(RegistryError::LatencyConfigConflict { .. })));
    /// # Ok::<(), RegistryError>(())
    /// ```
    pub fn latency_histogram(
        &self,
        name: &str,
        config: LatencyConfig,
    ) -> Result<LatencyHistogram, RegistryError> {
        self.latency_histogram_with_labels(name, &[], config)
    }

    /// The latency histogram of the series of `name` with `labels`, created with `config`
    /// if there is none.
    ///
    /// See [`counter_with_labels`](Self::counter_with_labels) for how series are kept, and
    /// the overflow series past the [series limit](Registry#series-limit): the overflow
    /// histogram has the configuration of the request that created it.
    ///
    /// # Errors
    ///
    /// As [`latency_histogram`](Self::latency_histogram), for this series (past the limit,
    /// for the overflow series).
    pub fn latency_histogram_with_labels(
        &self,
        name: &str,
        labels: &[(&str, &str)],
        config: LatencyConfig,
    ) -> Result<LatencyHistogram, RegistryError> {
        validate_name(name)?;
        if let Err(error) = config.validate() {
            return Err(RegistryError::LatencyConfig {
                name: name.to_owned(),
                error,
            });
        }
        self.series(
            name,
            labels,
            MetricKind::Summary,
            |entry| match entry {
                Entry::Latency(existing) if *existing.config() != config => {
                    Some(Err(RegistryError::LatencyConfigConflict {
                        name: name.to_owned(),
                        existing: Box::new(existing.config().clone()),
                        requested: Box::new(config.clone()),
                    }))
                }
                Entry::Latency(existing) => Some(Ok(existing.clone())),
                _ => None,
            },
            |labels, overflow| {
                let latency = LatencyHistogram::registered(
                    name.to_owned(),
                    labels,
                    config.clone(),
                    overflow,
                )?;
                Ok((Entry::Latency(latency.clone()), latency))
            },
        )
    }

    /// The latency histogram named `name` with the metadata `metadata` (which then replaces
    /// the histogram's own in listings), created with `config` if there is none.
    ///
    /// # Errors
    ///
    /// As [`latency_histogram`](Self::latency_histogram), and
    /// [`RegistryError::MetadataConflict`] as for [`counter_with`](Self::counter_with).
    pub fn latency_histogram_with(
        &self,
        name: &str,
        config: LatencyConfig,
        metadata: Metadata,
    ) -> Result<LatencyHistogram, RegistryError> {
        self.create_described(name, metadata, || self.latency_histogram(name, config))
    }
}
