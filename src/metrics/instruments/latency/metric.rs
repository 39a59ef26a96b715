//! [`LatencyMetric`]: a recorder [`Metric`] that records the latency its events carry into
//! a [`LatencyHistogram`].

use std::fmt;
use std::time::Duration;

use super::LatencyHistogram;
use crate::metrics::{Metadata, Metric, Snapshot};

/// A [`Metric`] for a [`MetricsRecorder`](crate::metrics::MetricsRecorder): records the
/// latency of each event that carries one into a [`LatencyHistogram`], on the recorder's
/// driver, so that the hot path only queues the event (`register_event`).
///
/// `latency_of` picks the latency out of an event, or `None` for events without one (which
/// the metric then does not handle). The metric's name, snapshot (a summary) and metadata
/// are the histogram's; the histogram stays readable through any clone of it — register
/// the same histogram in a [`Registry`](crate::metrics::Registry) to expose it without
/// reading the recorder.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use mvx::metrics::{LatencyHistogram, LatencyMetric, MetricEvent, MetricsRuntime};
///
/// enum Request {
///     Served { latency: Duration },
///     Refused,
/// }
/// impl MetricEvent for Request {}
///
/// let runtime = MetricsRuntime::new()?;
/// let recorder = runtime.create_recorder::<Request>("http")?;
/// let latency = LatencyHistogram::new("http.latency");
/// recorder.register_metric(LatencyMetric::new(latency.clone(), |request: &Request| {
///     match request {
///         Request::Served { latency } => Some(*latency),
///         Request::Refused => None,
///     }
/// }))?;
/// let _ = recorder.register_event(Request::Served { latency: Duration::from_millis(4) })?;
/// let _ = recorder.register_event(Request::Refused)?;
/// recorder.snapshot_now_blocking()?; // every event accepted before is applied
/// assert_eq!(latency.count(), 1);
/// assert_eq!(recorder.unhandled()["Request"], 1);
/// runtime.shutdown()?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct LatencyMetric<F> {
    histogram: LatencyHistogram,
    latency_of: F,
}

impl<F> LatencyMetric<F> {
    /// A metric recording into `histogram` the latency `latency_of` finds in each event.
    pub fn new(histogram: LatencyHistogram, latency_of: F) -> Self {
        Self {
            histogram,
            latency_of,
        }
    }

    /// The histogram the metric records into.
    pub fn histogram(&self) -> &LatencyHistogram {
        &self.histogram
    }
}

impl<E, F> Metric<E> for LatencyMetric<F>
where
    F: FnMut(&E) -> Option<Duration> + Send + 'static,
{
    fn name(&self) -> &str {
        self.histogram.name()
    }

    fn handle_event(&mut self, event: &E) -> bool {
        match (self.latency_of)(event) {
            Some(latency) => {
                self.histogram.record(latency);
                true
            }
            None => false,
        }
    }

    fn snapshot(&self) -> Snapshot {
        self.histogram.snapshot()
    }

    fn metadata(&self) -> Metadata {
        self.histogram.metadata()
    }
}

impl<F> fmt::Debug for LatencyMetric<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LatencyMetric")
            .field("histogram", &self.histogram.name())
            .finish_non_exhaustive()
    }
}
