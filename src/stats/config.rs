//! `StatsConfig`: the knobs of the statistics.

use std::borrow::Cow;
use std::time::Duration;

use crate::queue::OverflowPolicy;
use crate::sink::{AsyncSink, LogEvent, SinkConfig};

use super::StatsError;
use super::store::{KeyValueStore, SharedStore, check_name};

/// How often the state is saved by default while collecting.
pub const DEFAULT_PERSIST_INTERVAL: Duration = Duration::from_secs(60);

/// How often the figures are reported by default (Crawlee's `log_interval`).
pub const DEFAULT_LOG_INTERVAL: Duration = Duration::from_secs(60);

/// The message of the periodic report by default.
pub const DEFAULT_LOG_MESSAGE: &str = "Statistics";

/// The store name used by default.
pub const DEFAULT_STORE_NAME: &str = "default";

/// The key the state is saved under by default is this prefix and the statistics'
/// [`id`](super::Statistics::id): `__CRAWLER_STATISTICS_0` for the first statistics of a
/// process, as in Crawlee for Python 1.x.
pub const DEFAULT_PERSIST_STATE_KEY_PREFIX: &str = "__CRAWLER_STATISTICS_";

/// The longest key accepted, so that `<key>.corrupt-<unix ms>` is a valid key too.
const MAX_KEY_LEN: usize = 170;

/// The knobs of [`Statistics`](super::Statistics).
///
/// Start from [`StatsConfig::default()`] and change what you need.
///
/// ```
/// use std::time::Duration;
/// use mvx::stats::{MemoryStore, StatsConfig};
///
/// let config = StatsConfig::default()
///     .persist_to(MemoryStore::new())
///     .store_name("crawler")
///     .persist_state_key("run-1")
///     .persist_interval(Duration::from_secs(10));
/// assert!(config.persistence_enabled);
/// assert!(config.validate().is_ok());
/// ```
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct StatsConfig {
    /// Whether the state is loaded on start and saved every `persist_interval` and on stop.
    /// Needs a [`store`](Self::store). Default `false`.
    pub persistence_enabled: bool,
    /// Where the state is persisted. Default none.
    pub store: Option<SharedStore>,
    /// The store name (a namespace within the store). Default [`DEFAULT_STORE_NAME`].
    pub store_name: String,
    /// The key of the state within the store. Default `None`: a key of the statistics'
    /// own, [`DEFAULT_PERSIST_STATE_KEY_PREFIX`] and their [`id`](super::Statistics::id)
    /// (`__CRAWLER_STATISTICS_0`, `__CRAWLER_STATISTICS_1`, ... in the order statistics
    /// are created in the process), so that two statistics of one process never share a
    /// state. At most 170 bytes.
    pub persist_state_key: Option<String>,
    /// How often the state is saved while collecting. Default
    /// [`DEFAULT_PERSIST_INTERVAL`]; must not be zero. An interval past the clock's range
    /// (`Duration::MAX`) never comes: the state is saved on stop only.
    pub persist_interval: Duration,
    /// Whether to start from the defaults, rather than fail the start with
    /// [`StatsError::CorruptState`], when the persisted state is not valid (see
    /// [the module docs](super#persistence)). Default `false`.
    pub reset_on_corrupt_state: bool,
    /// Where the periodic report of the [`calculate()`](super::Statistics::calculate)
    /// figures goes: once when collection starts, then every `log_interval` (see
    /// [`ReportTo`]). Default [`ReportTo::Default`]: the `log` crate with the feature `log`,
    /// standard error without it.
    pub report_to: ReportTo,
    /// How often the report is sent after the first. Default [`DEFAULT_LOG_INTERVAL`]; must
    /// not be zero. An interval past the clock's range (`Duration::MAX`) never comes: the
    /// report is sent once, at the start.
    pub log_interval: Duration,
    /// The message of the report event. Default [`DEFAULT_LOG_MESSAGE`].
    pub log_message: Cow<'static, str>,
    /// The queue between the recording calls and the driver. Default: namespace `stats`,
    /// [`DEFAULT_QUEUE_CAPACITY`](crate::queue::DEFAULT_QUEUE_CAPACITY), and
    /// [`OverflowPolicy::Block`], so that no recording call is lost: a caller waits while
    /// the queue is full. Under `Drop`, dropped calls are counted in
    /// [`Statistics::queue_stats`](super::Statistics::queue_stats); under `RaiseError` the
    /// call returns [`StatsError::QueueOverflow`]. Its `start_timeout` also bounds the
    /// load of the persisted state, and its `stop_timeout` the final save.
    pub sink: SinkConfig,
}

impl Default for StatsConfig {
    fn default() -> Self {
        Self {
            persistence_enabled: false,
            store: None,
            store_name: DEFAULT_STORE_NAME.to_owned(),
            persist_state_key: None,
            persist_interval: DEFAULT_PERSIST_INTERVAL,
            reset_on_corrupt_state: false,
            report_to: ReportTo::Default,
            log_interval: DEFAULT_LOG_INTERVAL,
            log_message: Cow::Borrowed(DEFAULT_LOG_MESSAGE),
            sink: SinkConfig::default()
                .namespace("stats")
                .overflow(OverflowPolicy::Block),
        }
    }
}

impl StatsConfig {
    /// Persists to `store`: sets [`store`](Self::store) and enables persistence.
    pub fn persist_to(mut self, store: impl KeyValueStore) -> Self {
        self.store = Some(SharedStore::new(store));
        self.persistence_enabled = true;
        self
    }

    /// Sets [`persistence_enabled`](Self::persistence_enabled).
    pub fn persistence_enabled(mut self, enabled: bool) -> Self {
        self.persistence_enabled = enabled;
        self
    }

    /// Sets [`store_name`](Self::store_name).
    pub fn store_name(mut self, name: impl Into<String>) -> Self {
        self.store_name = name.into();
        self
    }

    /// Sets [`persist_state_key`](Self::persist_state_key): the state is kept under `key`
    /// rather than under a key of the statistics' own.
    pub fn persist_state_key(mut self, key: impl Into<String>) -> Self {
        self.persist_state_key = Some(key.into());
        self
    }

    /// Sets [`persist_interval`](Self::persist_interval).
    pub fn persist_interval(mut self, interval: Duration) -> Self {
        self.persist_interval = interval;
        self
    }

    /// Sets [`reset_on_corrupt_state`](Self::reset_on_corrupt_state).
    pub fn reset_on_corrupt_state(mut self, reset: bool) -> Self {
        self.reset_on_corrupt_state = reset;
        self
    }

    /// Reports to `sink`: sets [`report_to`](Self::report_to) to [`ReportTo::Sink`].
    pub fn log_to(mut self, sink: AsyncSink<LogEvent>) -> Self {
        self.report_to = ReportTo::Sink(sink);
        self
    }

    /// Sets [`report_to`](Self::report_to).
    pub fn report_to(mut self, report_to: ReportTo) -> Self {
        self.report_to = report_to;
        self
    }

    /// Sets [`log_interval`](Self::log_interval).
    pub fn log_interval(mut self, interval: Duration) -> Self {
        self.log_interval = interval;
        self
    }

    /// Sets [`log_message`](Self::log_message).
    pub fn log_message(mut self, message: impl Into<Cow<'static, str>>) -> Self {
        self.log_message = message.into();
        self
    }

    /// Sets [`sink`](Self::sink).
    pub fn sink(mut self, sink: SinkConfig) -> Self {
        self.sink = sink;
        self
    }

    /// Whether the state is persisted: persistence enabled, and a store.
    pub(crate) fn persists(&self) -> bool {
        self.persistence_enabled && self.store.is_some()
    }

    /// Checks the values.
    ///
    /// # Errors
    ///
    /// [`StatsError::InvalidConfig`] naming the first value rejected: persistence enabled
    /// without a store, a zero interval, a store name or key that is not a valid name
    /// (see [`check_name`](super::check_name)), an explicit key longer than 170 bytes.
    ///
    /// ```
    /// use mvx::stats::StatsReason;
    /// use mvx::stats::{StatsConfig, StatsError};
    ///
    /// let error = StatsConfig::default().persistence_enabled(true).validate().unwrap_err();
    /// assert_eq!(error.to_string(), "invalid statistics configuration: store must be set when persistence is enabled");
    /// assert_eq!(error.reason(), StatsReason::InvalidArgument);
    /// ```
    pub fn validate(&self) -> Result<(), StatsError> {
        let invalid = |field, problem| Err(StatsError::InvalidConfig { field, problem });
        if self.persistence_enabled && self.store.is_none() {
            return invalid("store", "must be set when persistence is enabled");
        }
        if self.persist_interval.is_zero() {
            return invalid("persist_interval", "must not be zero");
        }
        if self.log_interval.is_zero() {
            return invalid("log_interval", "must not be zero");
        }
        if let Err(error) = check_name("store name", &self.store_name) {
            return invalid("store_name", problem_of(&error));
        }
        if let Some(key) = &self.persist_state_key {
            if let Err(error) = check_name("key", key) {
                return invalid("persist_state_key", problem_of(&error));
            }
            if key.len() > MAX_KEY_LEN {
                return invalid("persist_state_key", "must be at most 170 bytes");
            }
        }
        Ok(())
    }
}

fn problem_of(error: &super::StoreError) -> &'static str {
    match error {
        super::StoreError::InvalidName { problem, .. } => problem,
        _ => "is invalid",
    }
}

/// Where the periodic report goes ([`StatsConfig::report_to`]).
///
/// Each report is the [`calculate()`](super::Statistics::calculate) figures under the
/// configured `log_message`, at level `Info` with target [`REPORT_TARGET`](super::REPORT_TARGET):
/// once when collection starts, after the persisted state is loaded — handed over before
/// [`start()`](super::Statistics::start) completes, as Crawlee logs its statistics before
/// it activates them — then every `log_interval`.
#[derive(Clone, Debug, Default)]
#[non_exhaustive]
pub enum ReportTo {
    /// With the feature `log`: through the `log` crate, as [`ReportTo::Log`] — to whatever
    /// logger the application installed, and nowhere if it installed none. Without it: to
    /// standard error, as [`ReportTo::Stderr`].
    #[default]
    Default,
    /// One line on standard error: `<time> INFO mvx::stats: <log_message> <figures>`, the
    /// figures as [`FinalStatistics`](super::FinalStatistics)'s `Display` writes them. The
    /// write runs on the `blocking` crate's thread pool, never on the driver's thread; a
    /// report waits for the one before it, and a stop for a line still being written
    /// (within its `stop_timeout`). A failed write is kept in
    /// [`Statistics::last_error`](super::Statistics::last_error) as
    /// [`StatsError::ReportRefused`] (`DISPATCH_FAILED`).
    Stderr,
    /// `log::info!` with target [`REPORT_TARGET`](super::REPORT_TARGET), the message
    /// `<log_message> <figures>` and one key-value per figure (the `log` crate's `kv`; an
    /// average of nothing is `null`). A logger that panics is caught: the panic is kept in
    /// [`Statistics::last_error`](super::Statistics::last_error).
    #[cfg(feature = "log")]
    Log,
    /// One `Info` [`LogEvent`] on this sink, with the message `log_message` and one field
    /// per figure. A sink whose overflow policy is `Block` is waited for asynchronously; a
    /// refusal is kept in [`Statistics::last_error`](super::Statistics::last_error) as
    /// [`StatsError::ReportRefused`].
    Sink(AsyncSink<LogEvent>),
    /// No report.
    Off,
}
