//! Request statistics: how many requests started, finished, failed and were retried, how
//! long they took, which status codes and errors came back.
//!
//! [`Statistics`] is a sink whose dispatcher is the aggregation, as a
//! [`MetricsRecorder`](crate::metrics::MetricsRecorder) is one whose dispatcher is its
//! metrics: the same lifecycle, queue and counters, specialised for crawler-style request
//! accounting. Each recording call (`record_request_processing_start(id)`, `..._finish`,
//! `..._failure`, `record_request_retry`, `register_status_code`, `register_error`) stamps
//! the caller's clock (`Instant::now()`) into an event and queues it — synchronous,
//! thread-safe, no lock, no allocation for a numeric [`RequestId`] — and the
//! [`StatsDriver`] applies it to the [`StatisticsState`], including the map of requests in
//! progress. [`calculate()`] derives [`FinalStatistics`] once every call recorded before
//! it has been applied.
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
//! [`StatisticsState`] as JSON under `(store_name, persist_state_key)`. Persistence is part
//! of the lifecycle: the state is loaded by the start (bounded by the queue's
//! `start_timeout`; calls recorded meanwhile wait in the queue and land on top of it),
//! saved every `persist_interval` and by the stop (bounded by its `stop_timeout`), and
//! removed by `reset()`. Loads, saves and the removal pass one at a time, in the order
//! their snapshots were taken, so an older state never overwrites a newer one, and nothing
//! is saved after the final save. A process that is killed resumes, on restart, from its
//! last save. Stores: [`MemoryStore`], `FileStore` (feature `persist`), `RedisStore`
//! (feature `redis`).
//!
//! A bad persisted state is never lost:
//!
//! - one that cannot be read (an I/O error, an unreachable server) fails the start with
//!   [`StatsError::Store`] and is left as it is, even with `reset_on_corrupt_state`: the
//!   next save would otherwise overwrite it;
//! - one that is read but is not a valid state (not JSON, another shape, another
//!   `version`) is renamed to `<key>.corrupt-<unix ms>` and fails the start with
//!   [`StatsError::CorruptState`]; with `reset_on_corrupt_state` the statistics start from
//!   the defaults instead and keep that error in [`Statistics::last_error`]. If it cannot
//!   be moved aside, the start fails.
//!
//! # Periodic work
//!
//! Saves every `persist_interval` and, with [`StatsConfig::log_to`], reports every
//! `log_interval` run in the statistics' driver future beside the queue, on
//! `async_io::Timer`s, each on its own schedule (a slow store does not delay reports, nor a
//! full log sink saves). A report is the [`calculate()`] figures, sent to any
//! `AsyncSink<LogEvent>` as one `Info` event (target [`REPORT_TARGET`], message
//! `log_message`) whose `Display` is one line. Neither a failed save nor a refused report
//! stops the schedule (each is kept in [`Statistics::last_error`]); a report to a log sink
//! whose policy is `Block` waits for room asynchronously, never blocking the driver's
//! thread.
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
//! - Nothing is lost to arithmetic: counts saturate at `u64::MAX` and sums of durations
//!   at `Duration::MAX` rather than wrap, panic or fail the statistics, whatever was
//!   persisted or recorded (the limits are in [`StatisticsState`]'s docs).
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
