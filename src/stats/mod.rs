//! Request statistics: how many requests started, finished, failed and were retried, how
//! long they took, which status codes and errors came back.
//!
//! [`Statistics`] is the metrics recorder specialised for crawler-style request
//! accounting. Each recording call (`record_request_processing_start(id)`, `..._finish`,
//! `..._failure`, `record_request_retry`, `register_status_code`, `register_error`) stamps
//! the caller's clock into an event and queues it — synchronous, thread-safe, no lock, no
//! allocation for a numeric [`RequestId`] — and the [`StatsDriver`] applies it to the
//! [`StatisticsState`], including the map of requests in progress. [`calculate()`] derives
//! [`FinalStatistics`] once every call recorded before it has been applied.
//!
//! # Lifecycle
//!
//! Statistics start `Virgin`. [`start()`](Statistics::start) begins collection: the
//! runtime clock starts and recording calls are accepted. [`stop()`](Statistics::stop)
//! applies every call recorded before it, stops the runtime clock and ends in `Stopped`.
//! Both return a [`StatsWait`] to `.await` or [`wait()`](StatsWait::wait) on. Dropping the
//! last handle of running statistics stops them as `stop()` would; dropping the driver
//! cancels them. Statistics are not restarted: build new ones on the same state to resume.
//!
//! # What is lost, and when
//!
//! - A recording call before `start()` or after `stop()` returns
//!   [`StatsError::NotRecording`] and counts nothing.
//! - The queue waits for room by default ([`OverflowPolicy::Block`]); under `Drop` a call
//!   made while it is full is counted in [`Statistics::queue_stats`]`.dropped` only, and
//!   under `RaiseError` it returns [`StatsError::QueueOverflow`].
//! - A finish or failure of an id that is not in progress changes nothing but
//!   `requests_unmatched`.
//!
//! [`calculate()`]: Statistics::calculate
//! [`OverflowPolicy::Block`]: crate::queue::OverflowPolicy::Block

mod config;
mod error;
mod event;
mod final_statistics;
mod periodic;
mod persist;
mod report;
mod state;
mod statistics;
mod store;

pub use self::config::{
    DEFAULT_LOG_INTERVAL, DEFAULT_LOG_MESSAGE, DEFAULT_PERSIST_INTERVAL, DEFAULT_PERSIST_STATE_KEY,
    DEFAULT_STORE_NAME, StatsConfig,
};
pub use self::error::{StatsError, StoreOperation};
pub use self::event::{ErrorKind, RequestId};
pub use self::final_statistics::FinalStatistics;
pub use self::report::REPORT_TARGET;
pub use self::state::{STATE_VERSION, StatisticsState};
pub use self::statistics::{Statistics, StatsDriver, StatsWait};
#[cfg(feature = "persist")]
pub use self::store::FileStore;
#[cfg(feature = "redis")]
pub use self::store::RedisStore;
pub use self::store::{KeyValueStore, MemoryStore, SharedStore, StoreError, check_name};
