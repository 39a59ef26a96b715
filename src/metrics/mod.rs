//! Metrics: recorders that aggregate user-defined events into user-defined metrics, a
//! runtime that owns recorders on its own thread, and lock-free direct instruments.
//!
//! Two ways to measure:
//!
//! - **Recorders** ([`MetricsRecorder`]) for events that need aggregation logic of your own:
//!   you define the events ([`MetricEvent`]) and the metrics ([`Metric`]); the hot path only
//!   queues the event (`register_event`, no allocation) and the recorder's driver applies it
//!   to every metric. A recorder is a sink underneath: same lifecycle, queue, overflow
//!   policy, counters and error reasons. [`MetricsRuntime`] owns a thread for recorders.
//! - **Instruments** ([`Counter`], [`Gauge`], [`Histogram`], [`LatencyHistogram`]) for hot
//!   code that needs no queue: lock-free, no allocation per record, readable at any time.
//!   A [`LatencyHistogram`] keeps every percentile within a bounded relative error, for
//!   benchmark harnesses (examples/bench_harness.rs).
//!
//! Both produce [`Snapshot`]s; a [`Registry`] gathers them by name for exposition.
//!
//! Every metric may carry [`Metadata`] — unit, description, rate, the `hidden` and
//! `historic` flags, free-form fields: set on a registry name
//! ([`Registry::describe`], [`Registry::counter_with`] and its siblings) or given by a
//! recorder's metric ([`Metric::metadata`]). [`Registry::get_metrics`] lists names and
//! metadata through a [`Selector`].
//!
//! # What is lost, and when
//!
//! A recorder counts and loses events exactly as a sink does (see [`crate::queue`]). Events
//! that no metric handled are counted per `event_type` ([`MetricsRecorder::unhandled`]). A
//! metric that panics in `handle_event` or `snapshot` is disabled: it misses every later
//! event, and the panic is reported ([`RecorderError::MetricPanicked`]) in
//! [`MetricsRecorder::last_error`] and [`MetricsRecorder::disabled_metrics`]. The recorder
//! and its other metrics go on — unlike a sink, whose dispatcher's panic fails the sink.
//!
//! A [`Registry`] bounds the labeled series of each name: past its
//! [series limit](Registry#series-limit), new label sets share the name's overflow series,
//! so what they record is kept and exposed under the label `mvx_overflow="true"` rather
//! than under its own labels, and each such request is counted
//! ([`Registry::series_refused`]).

use std::collections::BTreeMap;

mod instruments;
mod metadata;
mod recorder;
mod registry;
mod runtime;
pub mod selector;
mod snapshot;

pub use self::instruments::{
    Counter, Gauge, Histogram, LatencyConfig, LatencyConfigError, LatencyDistribution,
    LatencyHistogram, LatencyMetric, Percentile, Percentiles, Recorded,
};
pub use self::metadata::{Metadata, MetadataError, RESERVED_KEYS};
pub use self::recorder::{Metric, MetricEvent, MetricHookError, MetricsRecorder, RecorderError};
// For the exposition, which `--cfg loom` builds leave out.
#[cfg(not(loom))]
pub(crate) use self::registry::exposed_names;
pub use self::registry::{Registry, RegistryError};
pub use self::runtime::{MetricsRuntime, ShutdownError};
pub use self::selector::{Selector, SelectorError};
pub use self::snapshot::{
    Detailed, MetricKind, Snapshot, SnapshotNow, Snapshots, Value, series_key,
};

crate::error::component_reason! {
    /// A stable code naming why an operation of the metrics failed: the `reason()` of
    /// [`RecorderError`], [`RegistryError`], [`MetadataError`] and [`SelectorError`].
    ///
    /// A recorder's error that is its sink's error reports the sink's reason, as
    /// `Core(ErrorReason)`; so do the registry's name conflicts (`DESCRIPTOR_CONFLICT`) and
    /// its other failures (`UNEXPECTED_ERROR`).
    ///
    /// # Examples
    ///
    /// ```
    /// use mvx::ErrorReason;
    /// use mvx::metrics::{MetricsReason, Registry, Selector};
    ///
    /// let error = Selector::regex("(").unwrap_err();
    /// assert_eq!(error.reason(), MetricsReason::InvalidRegex);
    /// assert_eq!(error.reason().as_str(), "INVALID_REGEX");
    ///
    /// let registry = Registry::new();
    /// registry.counter("jobs")?;
    /// let error = registry.gauge("jobs").unwrap_err();
    /// assert_eq!(error.reason(), ErrorReason::DescriptorConflict);
    /// assert_eq!(error.reason(), MetricsReason::Core(ErrorReason::DescriptorConflict));
    /// # Ok::<(), mvx::metrics::RegistryError>(())
    /// ```
    pub enum MetricsReason {
        /// A name (of a metric, a recorder) is already taken.
        DuplicateName = "DUPLICATE_NAME",
        /// A name is taken by something of another kind or type, or a metric would be
        /// exposed under a name that another metric's exposition takes
        /// ([`RegistryError::SampleNameCollision`]).
        NameConflict = "NAME_CONFLICT",
        /// A metric's `handle_event` or `snapshot` panicked; the metric is disabled.
        MetricPanicked = "METRIC_PANICKED",
        /// An argument was rejected (invalid metadata, a selector's query parameter).
        InvalidArgument = "INVALID_ARGUMENT",
        /// A [`Selector`]'s regular expression does not compile.
        InvalidRegex = "INVALID_REGEX",
    }
}

/// Anything a [`Registry`] can read snapshots from: instruments, recorders.
pub trait SnapshotSource: Send + Sync + 'static {
    /// Adds this source's current snapshots to `into`, keyed by metric name.
    fn collect(&self, into: &mut Snapshots);

    /// Adds the [`Metadata`] of this source's metrics to `into`, keyed by metric name (the
    /// names of the snapshots [`collect`](Self::collect) gives). A recorder gives each
    /// metric's [`Metric::metadata`]. The default adds nothing.
    fn collect_metadata(&self, into: &mut BTreeMap<String, Metadata>) {
        let _ = into;
    }
}
