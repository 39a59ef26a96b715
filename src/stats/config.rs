//! `StatsConfig`: the knobs of the statistics.

use crate::queue::OverflowPolicy;
use crate::sink::SinkConfig;

use super::StatsError;

/// The knobs of [`Statistics`](super::Statistics).
///
/// Start from [`StatsConfig::default()`] and change what you need.
///
/// ```
/// use mvx::queue::OverflowPolicy;
/// use mvx::sink::SinkConfig;
/// use mvx::stats::StatsConfig;
///
/// let config = StatsConfig::default()
///     .sink(SinkConfig::default().queue_capacity(1024).overflow(OverflowPolicy::Drop));
/// assert_eq!(config.sink.queue_capacity, 1024);
/// ```
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct StatsConfig {
    /// The queue between the recording calls and the driver. Default: namespace `stats`,
    /// [`DEFAULT_QUEUE_CAPACITY`](crate::queue::DEFAULT_QUEUE_CAPACITY), and
    /// [`OverflowPolicy::Block`], so that no recording call is lost: a caller waits while
    /// the queue is full. Under `Drop`, dropped calls are counted in
    /// [`Statistics::queue_stats`](super::Statistics::queue_stats); under `RaiseError` the
    /// call returns [`StatsError::QueueOverflow`].
    pub sink: SinkConfig,
}

impl Default for StatsConfig {
    fn default() -> Self {
        Self {
            sink: SinkConfig::default()
                .namespace("stats")
                .overflow(OverflowPolicy::Block),
        }
    }
}

impl StatsConfig {
    /// Sets [`sink`](Self::sink).
    pub fn sink(mut self, sink: SinkConfig) -> Self {
        self.sink = sink;
        self
    }

    /// Checks the values.
    ///
    /// # Errors
    ///
    /// [`StatsError::InvalidConfig`] naming the first value rejected.
    pub fn validate(&self) -> Result<(), StatsError> {
        Ok(())
    }
}
