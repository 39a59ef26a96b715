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
//! # Persistence
//!
//! With [`StatsConfig::persist_to`] a [`KeyValueStore`] keeps the whole
//! [`StatisticsState`] as JSON under `(store_name, persist_state_key)`: loaded by
//! `start()`, saved every `persist_interval` and by `stop()`, removed by `reset()`. A
//! process that is killed resumes, on restart, from its last save. Stores: [`MemoryStore`],
//! `FileStore` (feature `persist`: one directory per store name, one file per key, atomic
//! writes), `RedisStore` (feature `redis`). A state that cannot be read fails the start
//! ([`StatsError::Store`]) and is left alone; a state that is not valid is moved aside and
//! fails the start ([`StatsError::CorruptState`]) unless `reset_on_corrupt_state` is set.
//!
//! # Periodic report
//!
//! With [`StatsConfig::log_to`], every `log_interval` the [`calculate()`] figures go to any
//! `AsyncSink<LogEvent>` as one `Info` event (target [`REPORT_TARGET`], message
//! `log_message`), whose `Display` is one line.
//!
//! # What is lost, and when
//!
//! - A recording call before `start()` or after `stop()` returns
//!   [`StatsError::NotRecording`] and counts nothing.
//! - The queue waits for room by default ([`OverflowPolicy::Block`]); under `Drop` a call
//!   made while it is full is counted in [`Statistics::queue_stats`]`.dropped` only, and
//!   under `RaiseError` it returns [`StatsError::QueueOverflow`].
//! - A finish or failure of an id that is not in progress changes nothing but
//!   `requests_unmatched`. Requests in progress are not persisted.
//! - A process killed between two saves loses the calls recorded since the last one; a
//!   failed save (kept in [`Statistics::last_error`]) loses nothing yet: the next save
//!   writes the whole state.
//! - A stop that times out (the queue's `stop_timeout`) may not have saved the final
//!   state; its result says so.
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
mod wait;

pub use self::config::{
    DEFAULT_LOG_INTERVAL, DEFAULT_LOG_MESSAGE, DEFAULT_PERSIST_INTERVAL, DEFAULT_PERSIST_STATE_KEY,
    DEFAULT_STORE_NAME, StatsConfig,
};
pub use self::error::{StatsError, StatsReason, StoreOperation};
pub use self::event::{ErrorKind, RequestId};
pub use self::final_statistics::FinalStatistics;
pub use self::report::REPORT_TARGET;
pub use self::state::{STATE_VERSION, StatisticsState};
pub use self::statistics::{Statistics, StatsDriver};
#[cfg(feature = "persist")]
pub use self::store::FileStore;
#[cfg(feature = "redis")]
pub use self::store::RedisStore;
pub use self::store::{KeyValueStore, MemoryStore, SharedStore, StoreError, check_name};
pub use self::wait::{Calculate, StatsWait};
