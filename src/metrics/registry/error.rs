//! [`RegistryError`]: what the registry and instrument construction refuse.

use crate::ErrorReason;
use crate::error::Cause;
use crate::metrics::{Metadata, MetricKind, MetricsReason};

/// Errors of the metrics [`Registry`](crate::metrics::Registry) and of instrument construction.
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
    /// Once exposed, the metric would take a name that another registered metric takes:
    /// a histogram `x` and a gauge `x_count` would both expose a sample `x_count`, a
    /// counter `y` and a gauge `y_total` a sample `y_total`, a gauge `a.x` and a gauge
    /// `a_x` the family `a_x`. Each family takes its name and every sample name of its type
    /// (see [`crate::expose::text`]); the metric registered first keeps them.
    #[error(
        "metric {name:?} (a {requested}) would be exposed under the name {exposed:?}, which the {existing_kind} {existing:?} takes"
    )]
    SampleNameCollision {
        /// The name refused.
        name: String,
        /// The kind asked for.
        requested: MetricKind,
        /// The exposed (family or sample) name both would take.
        exposed: String,
        /// The registered metric that takes it.
        existing: String,
        /// That metric's kind.
        existing_kind: MetricKind,
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
    /// A latency histogram's configuration is not valid.
    #[error("latency histogram {name:?}: invalid configuration")]
    LatencyConfig {
        /// The histogram's name.
        name: String,
        /// What is wrong with the configuration.
        #[source]
        error: crate::metrics::LatencyConfigError,
    },
    /// The name is a latency histogram with another configuration.
    #[error("latency histogram {name:?} has another configuration")]
    LatencyConfigConflict {
        /// The name.
        name: String,
        /// The configuration registered under the name.
        existing: Box<crate::metrics::LatencyConfig>,
        /// The configuration asked for.
        requested: Box<crate::metrics::LatencyConfig>,
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
    /// Name conflicts (`KindConflict`, `BucketsConflict`, `LatencyConfigConflict`,
    /// `Duplicate`, `MetadataConflict`) are the core's [`ErrorReason::DescriptorConflict`]; a
    /// collision of exposed names (`SampleNameCollision`) is [`MetricsReason::NameConflict`];
    /// an invalid latency configuration is [`MetricsReason::InvalidArgument`]; invalid names
    /// and bucket bounds and panicking sources are [`ErrorReason::Unexpected`].
    pub fn reason(&self) -> MetricsReason {
        match self {
            Self::SampleNameCollision { .. } => MetricsReason::NameConflict,
            Self::LatencyConfig { error, .. } => error.reason(),
            Self::KindConflict { .. }
            | Self::BucketsConflict { .. }
            | Self::LatencyConfigConflict { .. }
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
            | Self::SampleNameCollision { name, .. }
            | Self::EmptyBuckets { name }
            | Self::NonFiniteBucket { name, .. }
            | Self::UnsortedBuckets { name, .. }
            | Self::LatencyConfig { name, .. }
            | Self::LatencyConfigConflict { name, .. }
            | Self::SourcePanicked { name, .. } => name,
        }
    }
}
