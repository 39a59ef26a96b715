//! Request statistics: how many requests started, finished, failed and were retried, how
//! long they took, which status codes and errors came back — Crawlee's `Statistics`, in
//! Rust.
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
//! # Coming from Crawlee
//!
//! The names, meanings and rounding are those of Crawlee for Python 1.11
//! (`crawlee.statistics`), checked side by side with it on the same scripted requests
//! (`tests/stats_crawlee.rs`); what mvx adds is an addition, under a name of its own.
//!
//! - **A retry** is a start of a request already in progress (Crawlee's
//!   `record_request_processing_start` again) or a [`Statistics::record_request_retry`].
//!   `requests_retries` counts the *requests* retried at least once, when they end
//!   (finish or fail), as Crawlee does; mvx adds `retry_attempts`, every retry when it
//!   happens. 1,000 scripted requests give Crawlee's `requests_retries` on both sides,
//!   and a larger `retry_attempts`.
//! - **Durations**: each request's, from its last start or retry to its end, is rounded up
//!   to the whole microsecond; averages are the total over the count to the nearest
//!   microsecond (ties to even), as Python divides a `timedelta`. The persisted document
//!   has them in whole milliseconds (`round()`, ties to even).
//! - **Per-minute rates** are whole numbers: `requests_finished_per_minute` is
//!   `round(finished / minutes)` (ties to even), `requests_failed_per_minute` is
//!   `floor(failed / minutes)`, both 0 for a zero runtime, `minutes` being
//!   `crawler_runtime` to the microsecond over 60.
//! - **Names**: `crawler_runtime` (how long collection has run, over every run),
//!   `retry_histogram` (`[0]` before any request ended), `request_min_duration` and
//!   `request_max_duration` (of finished requests), `stats_id`, `crawler_started_at`,
//!   `crawler_last_started_at`, `crawler_finished_at`, `stats_persisted_at`. mvx's
//!   additions: `retry_attempts`, `requests_unmatched`, `request_min_failed_duration`,
//!   `request_max_failed_duration`, and in [`FinalStatistics`] `requests_in_progress`,
//!   `requests_retries` and `retry_attempts`.
//! - **The persist key** is per instance: `__CRAWLER_STATISTICS_<id>` (Crawlee 1.x's),
//!   the id counting the statistics created in the process from 0
//!   ([`Statistics::id`]); [`StatsConfig::persist_state_key`] sets one. Crawlee 0.x and
//!   Crawlee for JavaScript used `SDK_CRAWLER_STATISTICS_<id>`: set that key to share their
//!   state.
//! - **The report** goes out by default ([`ReportTo::Default`]: through the `log` crate
//!   with the feature `log`, to standard error without it), once at the start, then every
//!   `log_interval`.
//! - **Errors**: Crawlee groups errors in an error tracker it does not persist and leaves
//!   `errors` and `retryErrors` empty; mvx counts [`register_error`](Statistics::register_error)
//!   and [`register_retry_error`](Statistics::register_retry_error) by kind there.
//! - **Not there**: `record_request_processing_deferral`, the error tracker and its
//!   snapshots, subclassed state models, and the `table` log format (the report is one
//!   line).
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
//! [`StatisticsState`] as JSON under `(store_name, key)`, the key being
//! [`Statistics::persist_state_key`]. Persistence is part of the lifecycle: the state is
//! loaded by the start (bounded by the queue's `start_timeout`; calls recorded meanwhile
//! wait in the queue and land on top of it), saved every `persist_interval` and by the
//! stop (bounded by its `stop_timeout`), and removed by `reset()`. Loads, saves and the
//! removal pass one at a time, in the order their snapshots were taken, so an older state
//! never overwrites a newer one, and nothing is saved after the final save. A process that
//! is killed resumes, on restart, from its last save. Stores: [`MemoryStore`], `FileStore`
//! (feature `persist`, in mvx's layout or Crawlee's), `RedisStore` (feature `redis`).
//!
//! A bad persisted state is never lost:
//!
//! - one that cannot be read (an I/O error, an unreachable server) fails the start with
//!   [`StatsError::Store`] and is left as it is, even with `reset_on_corrupt_state`: the
//!   next save would otherwise overwrite it;
//! - one that is read but is not a valid state (not JSON, not an object, a key out of its
//!   type, another version) is renamed to `<key>.corrupt-<unix ms>` and fails the start
//!   with [`StatsError::CorruptState`]; with `reset_on_corrupt_state` the statistics start
//!   from the defaults instead and keep that error in [`Statistics::last_error`]. If it
//!   cannot be moved aside, the start fails.
//!
//! ## Sharing a store with a Python crawler
//!
//! A Rust service and a Crawlee crawler read and write each other's statistics when both
//! point at the same store, name and key:
//!
//! - the store: `FileStore::crawlee(storage_dir)` on the crawler's `CRAWLEE_STORAGE_DIR`
//!   (its file-system storage client's layout);
//! - the name: [`DEFAULT_STORE_NAME`] (`default`) is the crawler's default key-value store;
//!   another is its `persist_state_kvs_name`;
//! - the key: the crawler's `persist_state_key`, or `__CRAWLER_STATISTICS_0` for its first
//!   statistics, set with [`StatsConfig::persist_state_key`];
//! - the crawler must not purge the store when it starts: Crawlee empties its default
//!   (unnamed) store on open unless `CRAWLEE_PURGE_ON_START=false`; a named store is not
//!   purged.
//!
//! Crawlee 1.11, loading a state, takes its runtime from `crawlerFinishedAt -
//! crawlerLastStartTimestamp` (the last run only; `now` for one that did not finish) and
//! ignores `crawlerRuntimeMillis`; mvx reads `crawlerRuntimeMillis`, the runtime over every
//! run. Crawlee drops `mvx` (and any key it does not know) when it saves.
//!
//! # The persisted document
//!
//! The state is persisted as Crawlee persists its `StatisticsState`: one JSON object with
//! `statsId`, `requestsFinished`, `requestsFailed`, `requestsRetries`,
//! `requestsFailedPerMinute`, `requestsFinishedPerMinute` (numbers),
//! `requestMinDurationMillis`, `requestMaxDurationMillis` (or `null`),
//! `requestTotalFailedDurationMillis`, `requestTotalFinishedDurationMillis`,
//! `crawlerRuntimeMillis` (whole milliseconds, as numbers: `50.0`), `crawlerStartedAt`,
//! `crawlerLastStartTimestamp`, `crawlerFinishedAt`, `statsPersistedAt` (ISO 8601 in UTC
//! to the microsecond, `2026-12-06T05:51:35.607896Z`, or `null`), `errors`,
//! `retryErrors` (counts by kind), `requestsWithStatusCode` (counts by code, the code
//! a string), `requestRetryHistogram` (a list of counts, `[0]` when empty), and the
//! figures Crawlee derives, `requestTotalDurationMillis`,
//! `requestAvgFailedDurationMillis`, `requestAvgFinishedDurationMillis` and
//! `requestsTotal`. mvx's additions are all under one key, `mvx`, which Crawlee ignores:
//! `version` ([`STATE_VERSION`]), `retryAttempts`, `requestsUnmatched`, and `micros`, the
//! durations in whole microseconds (`requestMinDuration`, `requestMaxDuration`,
//! `requestTotalFailedDuration`, `requestTotalFinishedDuration`, `crawlerRuntime`,
//! `requestMinFailedDuration`, `requestMaxFailedDuration`).
//!
//! Reading, mvx accepts every form Crawlee writes or has written, and refuses a value
//! out of its type as corrupt:
//!
//! - a missing key takes its default (`0`, empty, `null`), as in Crawlee's loader; keys
//!   mvx does not know are ignored;
//! - counts (and `statsId`, and the counts in the lists and objects) are integers from 0
//!   to `u64::MAX`; a status code is a decimal string from 0 to 65535; an error kind's
//!   value is a count (Crawlee for JavaScript's nested error groups are not read);
//! - a duration is milliseconds as a number (a fraction is kept to the microsecond), a
//!   number in a string (`"50"`), or an ISO 8601 duration (`"PT2.001627S"`, what Crawlee
//!   1.11 writes for `crawlerRuntimeMillis`; a year is 365 days and a month 30, as pydantic
//!   reads them); negative durations are refused, and durations past `u64::MAX` µs load as
//!   that;
//! - a time is ISO 8601 (`Z`, an offset, or none for UTC; digits past the microsecond
//!   dropped) or a number of seconds since 1970 (of milliseconds past 2 × 10¹⁰, as pydantic
//!   tells them apart); one outside years 1 to 9999, which Crawlee cannot hold, loads as
//!   unset;
//! - the derived figures and the per-minute rates are checked (numbers, or durations) and
//!   recomputed, not read;
//! - without `mvx` (a document Crawlee wrote), `retry_attempts` is the retries of the
//!   requests that ended (the sum of the histogram's index times count), and the mvx-only
//!   durations are unset; with `mvx`, its `version` must be [`STATE_VERSION`], and a
//!   duration in `micros` replaces the milliseconds Crawlee keeps only where it rounds to
//!   them (someone else may have changed the milliseconds since);
//! - a document with `"version": 1` at the top is the shape earlier versions of mvx wrote
//!   (snake_case keys, `..._us` durations, `..._unix_ms` times), read by that version's
//!   rules (every key present, each exactly of its type) and migrated: `retries` becomes
//!   `retry_attempts`, and `requests_retries` is the requests that ended after one retry or
//!   more (the histogram past index 0). Another top-level `version` is refused.
//!
//! Infinite durations, which Crawlee writes as `Infinity` for a `timedelta.max`, are not
//! JSON: such a document is corrupt to mvx.
//!
//! # Periodic work
//!
//! Saves every `persist_interval` and reports — once when collection starts, then every
//! `log_interval`, to where [`StatsConfig::report_to`] says ([`ReportTo`]) — run in the
//! statistics' driver future beside the queue, on `async_io::Timer`s, each on its own
//! schedule (a slow store does not delay reports, nor a slow report saves). A report is
//! the [`calculate()`] figures under `log_message`, at level `Info` with target
//! [`REPORT_TARGET`]. Neither a failed save nor an undelivered report stops the schedule
//! (each is kept in [`Statistics::last_error`]); a report to a log sink whose policy is
//! `Block` waits for room asynchronously, never blocking the driver's thread.
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
//! - A duration persisted by Crawlee, or changed by it, is in whole milliseconds: the
//!   microseconds are lost there.
//! - A report to a log sink under `Block` still waiting for room when the statistics stop
//!   is not sent; a line being written to standard error is waited for.
//! - Nothing is lost to arithmetic: counts saturate at `u64::MAX` and sums of durations
//!   at `Duration::MAX` rather than wrap, panic or fail the statistics, whatever was
//!   persisted or recorded (the limits are in [`StatisticsState`]'s docs).
//!
//! [`calculate()`]: Statistics::calculate
//! [`OverflowPolicy::Block`]: crate::queue::OverflowPolicy::Block

mod config;
mod document;
mod error;
mod event;
mod final_statistics;
mod periodic;
mod persist;
mod report;
mod rounding;
mod state;
mod statistics;
mod store;
mod wait;

pub use self::config::{
    DEFAULT_LOG_INTERVAL, DEFAULT_LOG_MESSAGE, DEFAULT_PERSIST_INTERVAL,
    DEFAULT_PERSIST_STATE_KEY_PREFIX, DEFAULT_STORE_NAME, ReportTo, StatsConfig,
};
pub use self::document::STATE_VERSION;
pub use self::error::{StatsError, StatsReason, StoreOperation};
pub use self::event::{ErrorKind, RequestId};
pub use self::final_statistics::FinalStatistics;
pub use self::report::REPORT_TARGET;
pub use self::state::StatisticsState;
pub use self::statistics::{Statistics, StatsDriver};
#[cfg(feature = "persist")]
pub use self::store::FileStore;
#[cfg(feature = "redis")]
pub use self::store::RedisStore;
pub use self::store::{KeyValueStore, MemoryStore, SharedStore, StoreError, check_name};
pub use self::wait::{Calculate, StatsWait};
