//! Statistics never panic nor fail on the numbers they are given: a persisted state with
//! counts and durations at the limits of their types loads, and recording on top of it
//! saturates; counts that add up past `u64::MAX` and durations that add up past
//! `Duration::MAX` saturate; intervals of `Duration::MAX` mean "never". Property tests
//! plant arbitrary documents — in Crawlee's shape (every form of each key Crawlee writes,
//! keys left out, mvx's additions or not) and in the shape earlier versions of mvx wrote —
//! with extreme numbers and values of the wrong type: each one loads (and recording,
//! `calculate()`, the final save and a reload all work) or is refused as corrupt, exactly
//! when one of its values is out of its type.
#![cfg(not(loom))]

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use futures::executor::{LocalPool, block_on};
use futures::task::SpawnExt;
use mvx::State;
use mvx::stats::{
    FinalStatistics, KeyValueStore, MemoryStore, ReportTo, Statistics, StatisticsState,
    StatsConfig, StatsError, StatsReason,
};
use proptest::prelude::*;
use serde_json::{Map, Value, json};

#[path = "support/watchdog.rs"]
mod watchdog;

use watchdog::within_guard;

const MAX: u64 = u64::MAX;
const HALF: u64 = 1 << 63;

/// Where every test persists.
const STORE: &str = "default";
const KEY: &str = "statistics";

/// A document of the shape earlier versions of mvx wrote (version 1), with every count
/// `count`, every duration `count` microseconds and every wall-clock time `count`
/// milliseconds.
fn version_1(count: u64) -> Value {
    json!({
        "version": 1,
        "requests_finished": count,
        "requests_failed": count,
        "retries": count,
        "requests_unmatched": count,
        "request_total_finished_duration_us": count,
        "request_min_finished_duration_us": count,
        "request_max_finished_duration_us": count,
        "request_total_failed_duration_us": count,
        "request_min_failed_duration_us": count,
        "request_max_failed_duration_us": count,
        "requests_finished_per_minute": 1e300,
        "requests_failed_per_minute": count,
        "request_retry_histogram": [count, count],
        "requests_with_status_code": {"200": count},
        "errors": {"timeout": count},
        "retry_errors": {"timeout": count},
        "runtime_started_at_unix_ms": count,
        "runtime_last_started_at_unix_ms": count,
        "runtime_finished_at_unix_ms": count,
        "runtime_us": count,
        "persisted_at_unix_ms": count,
    })
}

/// A document in Crawlee's shape with every count `count` and every duration `count`
/// microseconds (in mvx's additions; the milliseconds agree).
fn crawlee_shape(count: u64) -> Value {
    let millis = (count as f64 / 1e6 * 1000.0).round_ties_even();
    json!({
        "statsId": count,
        "requestsFinished": count,
        "requestsFailed": count,
        "requestsRetries": count,
        "requestsFailedPerMinute": 1e300,
        "requestsFinishedPerMinute": count,
        "requestMinDurationMillis": millis,
        "requestMaxDurationMillis": millis,
        "requestTotalFailedDurationMillis": millis,
        "requestTotalFinishedDurationMillis": millis,
        "crawlerStartedAt": "9999-12-31T23:59:59.999999Z",
        "crawlerLastStartTimestamp": count,
        "crawlerFinishedAt": null,
        "errors": {"timeout": count},
        "retryErrors": {"timeout": count},
        "requestsWithStatusCode": {"200": count},
        "statsPersistedAt": null,
        "requestRetryHistogram": [count, count],
        "crawlerRuntimeMillis": millis,
        "requestTotalDurationMillis": millis,
        "requestAvgFailedDurationMillis": millis,
        "requestAvgFinishedDurationMillis": millis,
        "requestsTotal": count,
        "mvx": {
            "version": 2,
            "retryAttempts": count,
            "requestsUnmatched": count,
            "micros": {
                "requestMinDuration": count,
                "requestMaxDuration": count,
                "requestTotalFailedDuration": count,
                "requestTotalFinishedDuration": count,
                "crawlerRuntime": count,
                "requestMinFailedDuration": count,
                "requestMaxFailedDuration": count,
            },
        },
    })
}

/// A store holding `document` as the persisted state.
fn store_with(document: &Value) -> MemoryStore {
    let store = MemoryStore::new();
    block_on(store.set(STORE, KEY, document)).unwrap();
    store
}

fn config(store: &MemoryStore) -> StatsConfig {
    StatsConfig::default()
        .persist_to(store.clone())
        .persist_state_key(KEY)
        .report_to(ReportTo::Off)
}

/// Started statistics persisting to `store`, with their driver on a thread of its own.
fn running(store: &MemoryStore) -> (Statistics, std::thread::JoinHandle<()>) {
    let (stats, driver) = Statistics::new(config(store)).unwrap();
    let driver = std::thread::spawn(move || block_on(driver));
    stats.start().wait().unwrap();
    (stats, driver)
}

/// The persisted state, as JSON.
fn persisted(store: &MemoryStore) -> Value {
    serde_json::from_str(&store.get_raw(STORE, KEY).unwrap()).unwrap()
}

/// `total / count` as Crawlee averages: to the nearest microsecond, ties to even.
fn average(total: Duration, count: u64) -> Option<Duration> {
    let total = total.as_micros();
    let count = u128::from(count);
    if count == 0 {
        return None;
    }
    let (quotient, remainder) = (total / count, total % count);
    let micros = match (2 * remainder).cmp(&count) {
        std::cmp::Ordering::Greater => quotient + 1,
        std::cmp::Ordering::Equal => quotient + quotient % 2,
        std::cmp::Ordering::Less => quotient,
    };
    Some(Duration::new(
        u64::try_from(micros / 1_000_000).unwrap(),
        (micros % 1_000_000) as u32 * 1_000,
    ))
}

/// `count` per minute of `runtime`, rounded as Crawlee rounds finished requests.
fn rounded_per_minute(count: u64, runtime: Duration) -> u64 {
    let minutes = runtime.as_micros() as f64 / 1e6 / 60.0;
    (count as f64 / minutes).round_ties_even() as u64
}

/// Records on top of a loaded state: request 1 finishes after 1 ms, request 2 fails after
/// 2 ms, request 3 (retried once, not seen starting) finishes 3 ms after its retry; an
/// unmatched finish; status 200; an error and a retry error of kind `kind`.
fn record_on_top(stats: &Statistics, base: Instant, kind: &'static str) {
    let ms = Duration::from_millis;
    stats
        .record_request_processing_start_at(1u64, base)
        .unwrap();
    stats
        .record_request_processing_finish_at(1u64, base + ms(1))
        .unwrap();
    stats
        .record_request_processing_start_at(2u64, base)
        .unwrap();
    stats
        .record_request_processing_failure_at(2u64, base + ms(2))
        .unwrap();
    stats.record_request_retry_at(3u64, base).unwrap();
    stats
        .record_request_processing_finish_at(3u64, base + ms(3))
        .unwrap();
    stats.record_request_processing_finish(77u64).unwrap();
    stats.register_status_code(200).unwrap();
    stats.register_error(kind).unwrap();
    stats.register_retry_error(kind).unwrap();
}

#[test]
fn a_state_at_the_limits_loads_and_collection_goes_on() {
    within_guard(|| {
        for document in [version_1(MAX), crawlee_shape(MAX)] {
            let store = store_with(&document);
            let (stats, driver) = running(&store);
            record_on_top(&stats, Instant::now(), "timeout");
            stats.register_status_code(404).unwrap();

            let figures = stats.calculate_blocking().unwrap();
            let limit = Duration::from_micros(MAX);
            let ms = Duration::from_millis;
            assert_eq!(
                (
                    figures.requests_finished,
                    figures.requests_failed,
                    figures.requests_total,
                    figures.requests_in_progress,
                    figures.requests_retries,
                    figures.retry_attempts,
                ),
                (MAX, MAX, MAX, 0, MAX, MAX)
            );
            assert_eq!(figures.retry_histogram, vec![MAX, MAX]);
            assert_eq!(
                figures.request_total_duration,
                limit + ms(4) + limit + ms(2)
            );
            assert_eq!(
                figures.request_avg_finished_duration,
                average(limit + ms(4), MAX)
            );
            assert!(figures.crawler_runtime >= limit);
            assert_eq!(
                figures.requests_finished_per_minute,
                rounded_per_minute(MAX, figures.crawler_runtime)
            );
            let state = stats.state();
            assert_eq!(state.requests_unmatched, MAX);
            assert_eq!(state.requests_with_status_code[&200], MAX);
            assert_eq!(state.requests_with_status_code[&404], 1);
            assert_eq!(state.errors["timeout"], MAX);
            assert_eq!(state.retry_errors["timeout"], MAX);
            assert_eq!(state.request_min_duration, Some(ms(1)));
            assert_eq!(state.request_max_duration, Some(limit));
            assert_eq!(state.request_max_failed_duration, Some(limit));
            // Times past year 9999, which Crawlee cannot hold, load as unset.
            assert_eq!(stats.lifecycle_state(), State::Running);
            assert_eq!(stats.queue_stats().failed, 0);
            assert!(stats.last_error().is_none(), "{:?}", stats.last_error());

            stats.stop().wait().unwrap();
            driver.join().unwrap();
            // Saved as the limits of the persisted shape: the durations saturate at
            // u64::MAX µs.
            let saved = persisted(&store);
            assert_eq!(saved["requestsFinished"], MAX);
            assert_eq!(saved["mvx"]["micros"]["requestTotalFinishedDuration"], MAX);
            assert_eq!(
                saved["requestTotalFinishedDurationMillis"],
                (MAX as f64 / 1e6 * 1000.0).round_ties_even()
            );
            assert_eq!(saved["requestMinDurationMillis"], 1.0);
            assert_eq!(saved["mvx"]["micros"]["crawlerRuntime"], MAX);
            assert!(saved["crawlerStartedAt"].is_string());

            // And what was saved loads again.
            let (stats, driver) = running(&store);
            assert_eq!(stats.calculate_blocking().unwrap().requests_total, MAX);
            assert_eq!(stats.state().request_total_failed_duration, limit);
            stats.stop().wait().unwrap();
            driver.join().unwrap();
        }
    });
}

#[test]
fn counts_that_add_up_past_the_largest_count_saturate() {
    within_guard(|| {
        let mut document = crawlee_shape(0);
        document["requestsFinished"] = json!(HALF);
        document["requestsFailed"] = json!(HALF);
        let store = store_with(&document);
        let (stats, driver) = running(&store);
        let figures = stats.calculate_blocking().unwrap();
        assert_eq!(
            (
                figures.requests_finished,
                figures.requests_failed,
                figures.requests_total
            ),
            (HALF, HALF, MAX)
        );
        stats.stop().wait().unwrap();
        driver.join().unwrap();
    });
}

#[test]
fn durations_that_add_up_past_the_largest_duration_saturate() {
    within_guard(|| {
        let base = Instant::now();
        // 2^60 s per request: 16 of them pass `Duration::MAX` (2^64 s).
        let Some(later) = base.checked_add(Duration::from_secs(1 << 60)) else {
            eprintln!("this platform's Instant cannot reach 2^60 s ahead: nothing to test");
            return;
        };
        let store = MemoryStore::new();
        let (stats, driver) = running(&store);
        for id in 0..20u64 {
            stats.record_request_processing_start_at(id, base).unwrap();
            stats
                .record_request_processing_finish_at(id, later)
                .unwrap();
            stats
                .record_request_processing_start_at(100 + id, base)
                .unwrap();
            stats
                .record_request_processing_failure_at(100 + id, later)
                .unwrap();
        }
        let figures: FinalStatistics = stats.calculate_blocking().unwrap();
        assert_eq!(
            (figures.requests_finished, figures.requests_failed),
            (20, 20)
        );
        assert_eq!(figures.request_total_duration, Duration::MAX);
        assert_eq!(
            figures.request_avg_finished_duration,
            average(Duration::MAX, 20)
        );
        let state = stats.state();
        assert_eq!(state.request_total_finished_duration, Duration::MAX);
        assert_eq!(state.request_total_failed_duration, Duration::MAX);
        assert_eq!(
            state.request_max_duration,
            Some(Duration::from_secs(1 << 60))
        );
        assert_eq!(stats.lifecycle_state(), State::Running);
        stats.stop().wait().unwrap();
        driver.join().unwrap();
        assert_eq!(
            persisted(&store)["mvx"]["micros"]["requestTotalFailedDuration"],
            MAX
        );
        assert!(stats.last_error().is_none(), "{:?}", stats.last_error());
    });
}

#[test]
fn intervals_of_the_largest_duration_never_fire_and_never_fail() {
    within_guard(|| {
        let (log, _log_driver) =
            mvx::sink::AsyncSink::new(mvx::sink::Discard, mvx::sink::SinkConfig::default());
        let config = StatsConfig::default()
            .persist_to(MemoryStore::new())
            .persist_interval(Duration::MAX)
            .log_to(log)
            .log_interval(Duration::MAX);
        let (stats, driver) = Statistics::new(config).unwrap();
        let driver = std::thread::spawn(move || block_on(driver));
        stats.start().wait().unwrap();
        stats.record_request_processing_start(1u64).unwrap();
        stats.record_request_processing_finish(1u64).unwrap();
        assert_eq!(stats.calculate_blocking().unwrap().requests_finished, 1);
        stats.stop().wait().unwrap();
        driver.join().unwrap();
        // The periodic work was polled once collection began (before the stop): it waits
        // for ever rather than panicking on `now + Duration::MAX`. The report at the start
        // went to a sink that never started: refused, and kept.
        let error = stats.last_error();
        assert!(
            matches!(error, None | Some(StatsError::ReportRefused { .. })),
            "{error:?}"
        );
    });
}

// ---------------------------------------------------------------------------------------
// What a document must load as
// ---------------------------------------------------------------------------------------

/// What a valid document loads as: the values recording goes on from.
#[derive(Clone, Debug, Default)]
struct Loaded {
    finished: u64,
    failed: u64,
    requests_retries: u64,
    retry_attempts: u64,
    unmatched: u64,
    total_finished: Duration,
    total_failed: Duration,
    min: Option<Duration>,
    max: Option<Duration>,
    min_failed: Option<Duration>,
    max_failed: Option<Duration>,
    histogram: Vec<u64>,
    status_200: u64,
    errors_e: u64,
    retry_errors_e: u64,
    runtime: Duration,
}

/// Runs one document through load, recording, `calculate()`, stop and reload on a
/// `LocalPool` on this thread. `loaded`: what it must load as, `None` if it is invalid.
fn check_document(document: &Value, loaded: Option<&Loaded>) -> Result<(), TestCaseError> {
    let store = store_with(document);
    let mut pool = LocalPool::new();
    let (stats, driver) = Statistics::new(config(&store)).unwrap();
    pool.spawner().spawn(driver).unwrap();

    let started = pool.run_until(stats.start());
    let Some(loaded) = loaded else {
        match started {
            Err(error @ StatsError::CorruptState { .. }) => {
                prop_assert_eq!(error.reason(), StatsReason::CorruptState);
            }
            other => prop_assert!(false, "expected CorruptState, got {:?}", other),
        }
        prop_assert_eq!(stats.lifecycle_state(), State::Failure);
        // Moved aside as it was, never lost.
        let keys = store.keys(STORE);
        prop_assert_eq!(keys.len(), 1);
        prop_assert!(keys[0].starts_with("statistics.corrupt-"), "{:?}", keys);
        let moved: Value = serde_json::from_str(&store.get_raw(STORE, &keys[0]).unwrap()).unwrap();
        prop_assert_eq!(&moved, document);
        return Ok(());
    };
    prop_assert!(
        started.is_ok(),
        "a valid document was refused: {:?}",
        started
    );
    prop_assert!(serde_json::from_value::<StatisticsState>(document.clone()).is_ok());

    let ms = Duration::from_millis;
    let (figures, state) = pool.run_until(async {
        record_on_top(&stats, Instant::now(), "e");
        let figures = stats.calculate().await.unwrap();
        (figures, stats.state())
    });

    let finished = loaded.finished.saturating_add(2);
    let failed = loaded.failed.saturating_add(1);
    prop_assert_eq!(figures.requests_finished, finished);
    prop_assert_eq!(figures.requests_failed, failed);
    prop_assert_eq!(figures.requests_total, finished.saturating_add(failed));
    prop_assert_eq!(
        figures.requests_retries,
        loaded.requests_retries.saturating_add(1)
    );
    prop_assert_eq!(
        figures.retry_attempts,
        loaded.retry_attempts.saturating_add(1)
    );
    prop_assert_eq!(state.requests_unmatched, loaded.unmatched.saturating_add(1));
    let finished_total = loaded.total_finished + ms(4);
    let failed_total = loaded.total_failed + ms(2);
    prop_assert_eq!(state.request_total_finished_duration, finished_total);
    prop_assert_eq!(state.request_total_failed_duration, failed_total);
    prop_assert_eq!(
        figures.request_total_duration,
        finished_total + failed_total
    );
    prop_assert_eq!(
        figures.request_avg_finished_duration,
        average(finished_total, finished)
    );
    prop_assert_eq!(
        figures.request_avg_failed_duration,
        average(failed_total, failed)
    );
    let min = |kept: Option<Duration>, new: Duration| Some(kept.map_or(new, |d| d.min(new)));
    let max = |kept: Option<Duration>, new: Duration| Some(kept.map_or(new, |d| d.max(new)));
    prop_assert_eq!(state.request_min_duration, min(loaded.min, ms(1)));
    prop_assert_eq!(state.request_max_duration, max(loaded.max, ms(3)));
    prop_assert_eq!(
        state.request_min_failed_duration,
        min(loaded.min_failed, ms(2))
    );
    prop_assert_eq!(
        state.request_max_failed_duration,
        max(loaded.max_failed, ms(2))
    );
    let mut histogram = loaded.histogram.clone();
    if histogram.len() < 2 {
        histogram.resize(2, 0);
    }
    histogram[0] = histogram[0].saturating_add(2);
    histogram[1] = histogram[1].saturating_add(1);
    prop_assert_eq!(&figures.retry_histogram, &histogram);
    prop_assert_eq!(
        state.requests_with_status_code[&200],
        loaded.status_200.saturating_add(1)
    );
    prop_assert_eq!(state.errors["e"], loaded.errors_e.saturating_add(1));
    prop_assert_eq!(
        state.retry_errors["e"],
        loaded.retry_errors_e.saturating_add(1)
    );
    prop_assert!(figures.crawler_runtime >= loaded.runtime);
    prop_assert_eq!(stats.lifecycle_state(), State::Running);
    prop_assert_eq!(stats.queue_stats().failed, 0);

    // The final save writes a state that loads again, with the same counts.
    pool.run_until(stats.stop()).unwrap();
    pool.run();
    let (again, driver) = Statistics::new(config(&store)).unwrap();
    pool.spawner().spawn(driver).unwrap();
    let reloaded = pool.run_until(async {
        again.start().await.unwrap();
        let figures = again.calculate().await.unwrap();
        again.stop().await.unwrap();
        figures
    });
    prop_assert_eq!(reloaded.requests_finished, finished);
    prop_assert_eq!(reloaded.requests_failed, failed);
    prop_assert_eq!(reloaded.retry_attempts, figures.retry_attempts);
    prop_assert_eq!(&reloaded.retry_histogram, &histogram);
    let saved: BTreeMap<String, Value> =
        serde_json::from_str(&store.get_raw(STORE, KEY).unwrap()).unwrap();
    prop_assert_eq!(saved["mvx"]["version"].clone(), json!(2));
    prop_assert!(!saved.contains_key("version"));
    Ok(())
}

// ---------------------------------------------------------------------------------------
// Values
// ---------------------------------------------------------------------------------------

/// A count at or near the limits, or any.
fn count() -> impl Strategy<Value = u64> {
    prop_oneof![
        Just(0),
        Just(1),
        Just(HALF),
        Just(MAX - 1),
        Just(MAX),
        any::<u64>(),
    ]
}

/// A JSON value that no count accepts: negative, fractional, beyond `u64::MAX`, NaN-like
/// strings, another type.
fn not_a_count() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(json!(-1)),
        Just(json!(i64::MIN)),
        Just(json!(1.5)),
        Just(json!(-0.5)),
        Just(json!(1e300)),
        Just(json!(18_446_744_073_709_551_616.0)),
        Just(json!("NaN")),
        Just(json!("inf")),
        Just(json!("-Infinity")),
        Just(json!("1")),
        Just(json!(true)),
        Just(json!([])),
        Just(json!({})),
    ]
}

/// Any number, as the rates and derived counts may be.
fn any_number() -> BoxedStrategy<Value> {
    prop_oneof![
        Just(json!(0.0)),
        Just(json!(-1.5)),
        Just(json!(1e300)),
        Just(json!(-1e300)),
        Just(json!(f64::MIN_POSITIVE)),
        count().prop_map(|n| json!(n)),
        any::<i64>().prop_map(|n| json!(n)),
    ]
    .boxed()
}

/// A duration in one of the forms Crawlee writes, and the microseconds it loads as.
fn millis() -> BoxedStrategy<(Value, u64)> {
    let small = 0u64..1_000_000_000_000;
    prop_oneof![
        // Whole milliseconds, as integers (Crawlee 0.3) or floats (1.x).
        count().prop_map(|ms| (json!(ms), ms.saturating_mul(1000))),
        (0u64..1 << 40).prop_map(|ms| (json!(ms as f64), ms * 1000)),
        // Milliseconds with a fraction, to the microsecond.
        small.clone().prop_map(|us| (json!(us as f64 / 1000.0), us)),
        // A number in a string.
        (0u64..1 << 40).prop_map(|ms| (json!(ms.to_string()), ms * 1000)),
        // An ISO 8601 duration, as Crawlee 1.11 writes `crawlerRuntimeMillis`.
        small.clone().prop_map(|us| (
            json!(format!("PT{}.{:06}S", us / 1_000_000, us % 1_000_000)),
            us
        )),
        (0u64..100_000, 0u64..86_400).prop_map(|(days, secs)| (
            json!(format!("P{days}DT{secs}S")),
            (days * 86_400 + secs) * 1_000_000
        )),
        // Past `u64::MAX` µs: saturates.
        Just((json!(1e300), MAX)),
    ]
    .boxed()
}

/// A value no duration accepts.
fn not_a_duration() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(json!(-1)),
        Just(json!(-0.5)),
        Just(json!("-PT1S")),
        Just(json!("PT")),
        Just(json!("soon")),
        Just(json!("NaN")),
        Just(json!("inf")),
        Just(json!(true)),
        Just(json!([1])),
        Just(json!({})),
    ]
}

/// A time in one of the forms Crawlee's models read, or `null`.
fn time() -> BoxedStrategy<Value> {
    prop_oneof![
        Just(Value::Null),
        Just(json!("2026-12-06T05:51:35.607896Z")),
        Just(json!("0001-01-01T00:00:00Z")),
        Just(json!("9999-12-31T23:59:59.999999+00:00")),
        Just(json!("2026-12-06 05:51:35")),
        any::<i64>().prop_map(|n| json!(n)),
        Just(json!(1e300)),
        count().prop_map(|n| json!(n)),
    ]
    .boxed()
}

/// A value no time accepts.
fn not_a_time() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(json!("yesterday")),
        Just(json!("2026-13-01T00:00:00Z")),
        Just(json!("2026-02-29T00:00:00Z")),
        Just(json!("")),
        Just(json!(true)),
        Just(json!([])),
    ]
}

fn histogram() -> impl Strategy<Value = Vec<u64>> {
    prop::collection::vec(count(), 0..4)
}

fn not_a_histogram() -> impl Strategy<Value = Value> {
    prop_oneof![
        not_a_count().prop_map(|bad| json!([0, bad])),
        Just(json!({})),
        Just(json!(3)),
        Just(Value::Null),
    ]
}

fn status_codes() -> impl Strategy<Value = BTreeMap<u16, u64>> {
    prop::collection::btree_map(
        prop_oneof![
            Just(0u16),
            Just(200),
            Just(404),
            Just(u16::MAX),
            any::<u16>()
        ],
        count(),
        0..3,
    )
}

fn not_status_codes() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(json!({"65536": 1})),
        Just(json!({"-1": 1})),
        Just(json!({"abc": 1})),
        Just(json!({"": 1})),
        Just(json!({"1e2": 1})),
        not_a_count().prop_map(|bad| json!({"200": bad})),
        Just(json!([])),
    ]
}

fn error_counts() -> impl Strategy<Value = BTreeMap<String, u64>> {
    prop::collection::btree_map(
        prop_oneof![Just("e".to_owned()), Just(String::new()), "[a-z ]{1,8}"],
        count(),
        0..3,
    )
}

fn not_error_counts() -> impl Strategy<Value = Value> {
    prop_oneof![
        not_a_count().prop_map(|bad| json!({"e": bad})),
        Just(json!([])),
        Just(json!("e")),
    ]
}

fn codes_json(codes: &BTreeMap<u16, u64>) -> Value {
    Value::Object(
        codes
            .iter()
            .map(|(code, n)| (code.to_string(), json!(n)))
            .collect(),
    )
}

// ---------------------------------------------------------------------------------------
// Documents in Crawlee's shape
// ---------------------------------------------------------------------------------------

/// The valid values of a document in Crawlee's shape, each key with what it loads as.
#[derive(Clone, Debug)]
struct CrawleeValues {
    stats_id: Option<u64>,
    finished: u64,
    failed: u64,
    requests_retries: u64,
    rates: (Value, Value),
    min: Option<(Value, u64)>,
    max: Option<(Value, u64)>,
    total_failed: (Value, u64),
    total_finished: (Value, u64),
    times: [Value; 4],
    errors: BTreeMap<String, u64>,
    retry_errors: BTreeMap<String, u64>,
    status_codes: BTreeMap<u16, u64>,
    histogram: Vec<u64>,
    runtime: (Value, u64),
    derived: (Value, Option<(Value, u64)>),
    /// mvx's additions: retryAttempts, requestsUnmatched, min/max failed µs.
    mvx: Option<(u64, u64, Option<u64>, Option<u64>)>,
}

fn crawlee_values() -> impl Strategy<Value = CrawleeValues> {
    let counts = (
        prop::option::of(count()),
        count(),
        count(),
        count(),
        (any_number(), any_number()),
    )
        .boxed();
    let durations = (
        prop::option::of(millis()),
        prop::option::of(millis()),
        millis(),
        millis(),
        millis(),
    )
        .boxed();
    let rest = (
        [time(), time(), time(), time()],
        error_counts(),
        error_counts(),
        status_codes(),
        histogram(),
        (any_number(), prop::option::of(millis())),
        prop::option::of((
            count(),
            count(),
            prop::option::of(count()),
            prop::option::of(count()),
        )),
    )
        .boxed();
    (counts, durations, rest).prop_map(
        |(
            (stats_id, finished, failed, requests_retries, rates),
            (min, max, total_failed, total_finished, runtime),
            (times, errors, retry_errors, status_codes, histogram, derived, mvx),
        )| CrawleeValues {
            stats_id,
            finished,
            failed,
            requests_retries,
            rates,
            min,
            max,
            total_failed,
            total_finished,
            times,
            errors,
            retry_errors,
            status_codes,
            histogram,
            runtime,
            derived,
            mvx,
        },
    )
}

/// The keys of Crawlee's document, and a value of the wrong type for each.
fn crawlee_invalid(key: &'static str) -> BoxedStrategy<Value> {
    match key {
        "statsId" | "requestsFinished" | "requestsFailed" | "requestsRetries" => {
            not_a_count().boxed()
        }
        "requestsFailedPerMinute" | "requestsFinishedPerMinute" | "requestsTotal" => {
            prop_oneof![Just(json!("1.0")), Just(json!(true)), Just(json!([1.0]))].boxed()
        }
        "requestMinDurationMillis"
        | "requestMaxDurationMillis"
        | "requestAvgFailedDurationMillis" => not_a_duration().boxed(),
        "requestTotalFailedDurationMillis"
        | "requestTotalFinishedDurationMillis"
        | "crawlerRuntimeMillis" => prop_oneof![not_a_duration(), Just(Value::Null)].boxed(),
        "crawlerStartedAt"
        | "crawlerLastStartTimestamp"
        | "crawlerFinishedAt"
        | "statsPersistedAt" => not_a_time().boxed(),
        "errors" | "retryErrors" => not_error_counts().boxed(),
        "requestsWithStatusCode" => not_status_codes().boxed(),
        "requestRetryHistogram" => not_a_histogram().boxed(),
        "mvx" => prop_oneof![
            Just(json!([])),
            Just(json!({"version": 3})),
            Just(json!({})),
            Just(json!({"version": 2, "retryAttempts": -1})),
            Just(json!({"version": 2, "micros": []})),
            Just(json!({"version": 2, "micros": {"requestMinFailedDuration": "1"}})),
        ]
        .boxed(),
        other => unreachable!("{other}"),
    }
}

const CRAWLEE_KEYS: &[&str] = &[
    "statsId",
    "requestsFinished",
    "requestsFailed",
    "requestsRetries",
    "requestsFailedPerMinute",
    "requestsFinishedPerMinute",
    "requestMinDurationMillis",
    "requestMaxDurationMillis",
    "requestTotalFailedDurationMillis",
    "requestTotalFinishedDurationMillis",
    "crawlerStartedAt",
    "crawlerLastStartTimestamp",
    "crawlerFinishedAt",
    "errors",
    "retryErrors",
    "requestsWithStatusCode",
    "statsPersistedAt",
    "requestRetryHistogram",
    "crawlerRuntimeMillis",
    "requestsTotal",
    "requestAvgFailedDurationMillis",
    "mvx",
];

/// The document of `values` (every key present), and what it loads as.
fn crawlee_document(values: &CrawleeValues) -> (Map<String, Value>, Loaded) {
    let optional = |duration: &Option<(Value, u64)>| {
        duration
            .as_ref()
            .map_or(Value::Null, |(value, _)| value.clone())
    };
    let mut document = Map::new();
    let mut put = |key: &str, value: Value| {
        document.insert(key.to_owned(), value);
    };
    put("statsId", json!(values.stats_id));
    put("requestsFinished", json!(values.finished));
    put("requestsFailed", json!(values.failed));
    put("requestsRetries", json!(values.requests_retries));
    put("requestsFailedPerMinute", values.rates.0.clone());
    put("requestsFinishedPerMinute", values.rates.1.clone());
    put("requestMinDurationMillis", optional(&values.min));
    put("requestMaxDurationMillis", optional(&values.max));
    put(
        "requestTotalFailedDurationMillis",
        values.total_failed.0.clone(),
    );
    put(
        "requestTotalFinishedDurationMillis",
        values.total_finished.0.clone(),
    );
    for (key, time) in [
        "crawlerStartedAt",
        "crawlerLastStartTimestamp",
        "crawlerFinishedAt",
        "statsPersistedAt",
    ]
    .into_iter()
    .zip(&values.times)
    {
        put(key, time.clone());
    }
    put("errors", json!(values.errors));
    put("retryErrors", json!(values.retry_errors));
    put("requestsWithStatusCode", codes_json(&values.status_codes));
    put("requestRetryHistogram", json!(values.histogram));
    put("crawlerRuntimeMillis", values.runtime.0.clone());
    put("requestsTotal", values.derived.0.clone());
    put(
        "requestAvgFailedDurationMillis",
        optional(&values.derived.1),
    );
    let histogram = if values.histogram.is_empty() {
        vec![0]
    } else {
        values.histogram.clone()
    };
    let us = |micros: u64| Duration::from_micros(micros);
    let mut loaded = Loaded {
        finished: values.finished,
        failed: values.failed,
        requests_retries: values.requests_retries,
        retry_attempts: retries_in(&histogram),
        unmatched: 0,
        total_finished: us(values.total_finished.1),
        total_failed: us(values.total_failed.1),
        min: values.min.as_ref().map(|(_, micros)| us(*micros)),
        max: values.max.as_ref().map(|(_, micros)| us(*micros)),
        min_failed: None,
        max_failed: None,
        histogram,
        status_200: values.status_codes.get(&200).copied().unwrap_or(0),
        errors_e: values.errors.get("e").copied().unwrap_or(0),
        retry_errors_e: values.retry_errors.get("e").copied().unwrap_or(0),
        runtime: us(values.runtime.1),
    };
    if let Some((attempts, unmatched, min_failed, max_failed)) = values.mvx {
        put(
            "mvx",
            json!({
                "version": 2,
                "retryAttempts": attempts,
                "requestsUnmatched": unmatched,
                "micros": {
                    "requestMinFailedDuration": min_failed,
                    "requestMaxFailedDuration": max_failed,
                },
            }),
        );
        loaded.retry_attempts = attempts;
        loaded.unmatched = unmatched;
        loaded.min_failed = min_failed.map(us);
        loaded.max_failed = max_failed.map(us);
    }
    (document, loaded)
}

/// A document in Crawlee's shape and what it loads as (`None`: invalid). Keys may be left
/// out (they load as their defaults, as in Crawlee), unknown ones added (ignored), and up
/// to three replaced by a value out of their type.
fn arbitrary_crawlee_document() -> impl Strategy<Value = (Value, Option<Loaded>)> {
    let left_out = prop::collection::vec(0..CRAWLEE_KEYS.len(), 0..3);
    let broken = prop::collection::vec(0..CRAWLEE_KEYS.len(), 0..4);
    (crawlee_values(), left_out, broken, any::<bool>()).prop_flat_map(
        |(values, left_out, mut broken, unknown)| {
            broken.sort_unstable();
            broken.dedup();
            let replacements: Vec<BoxedStrategy<(usize, Value)>> = broken
                .iter()
                .map(|&index| {
                    crawlee_invalid(CRAWLEE_KEYS[index])
                        .prop_map(move |bad| (index, bad))
                        .boxed()
                })
                .collect();
            (Just(values), Just(left_out), replacements, Just(unknown)).prop_map(
                |(values, left_out, replacements, unknown)| {
                    let (mut document, mut loaded) = crawlee_document(&values);
                    for index in left_out {
                        let key = CRAWLEE_KEYS[index];
                        if document.remove(key).is_some() {
                            left_out_loads_as_default(key, &mut loaded);
                        }
                    }
                    if !document.contains_key("mvx") {
                        // Written by Crawlee: the retries of the requests that ended.
                        loaded.retry_attempts = retries_in(&loaded.histogram);
                    }
                    if unknown {
                        document.insert("writtenBy".to_owned(), json!("a subclassed state"));
                    }
                    let valid = replacements.is_empty();
                    for (index, bad) in replacements {
                        document.insert(CRAWLEE_KEYS[index].to_owned(), bad);
                    }
                    (Value::Object(document), valid.then_some(loaded))
                },
            )
        },
    )
}

/// The retries of the requests a histogram counts: each index times its count.
fn retries_in(histogram: &[u64]) -> u64 {
    histogram
        .iter()
        .enumerate()
        .fold(0u64, |sum, (retries, &n)| {
            sum.saturating_add(n.saturating_mul(retries as u64))
        })
}

/// What `loaded` becomes when `key` is left out of the document.
fn left_out_loads_as_default(key: &str, loaded: &mut Loaded) {
    match key {
        "requestsFinished" => loaded.finished = 0,
        "requestsFailed" => loaded.failed = 0,
        "requestsRetries" => loaded.requests_retries = 0,
        "requestMinDurationMillis" => loaded.min = None,
        "requestMaxDurationMillis" => loaded.max = None,
        "requestTotalFailedDurationMillis" => loaded.total_failed = Duration::ZERO,
        "requestTotalFinishedDurationMillis" => loaded.total_finished = Duration::ZERO,
        "errors" => loaded.errors_e = 0,
        "retryErrors" => loaded.retry_errors_e = 0,
        "requestsWithStatusCode" => loaded.status_200 = 0,
        "crawlerRuntimeMillis" => loaded.runtime = Duration::ZERO,
        "requestRetryHistogram" => loaded.histogram = vec![0],
        "mvx" => {
            loaded.unmatched = 0;
            loaded.min_failed = None;
            loaded.max_failed = None;
        }
        _ => {}
    }
}

// ---------------------------------------------------------------------------------------
// Documents of version 1
// ---------------------------------------------------------------------------------------

/// The type of a field of the shape of version 1.
#[derive(Clone, Copy, Debug)]
enum Kind {
    Version,
    Count,
    OptionalCount,
    Rate,
    Histogram,
    StatusCodes,
    ErrorCounts,
}

const VERSION_1_FIELDS: &[(&str, Kind)] = &[
    ("version", Kind::Version),
    ("requests_finished", Kind::Count),
    ("requests_failed", Kind::Count),
    ("retries", Kind::Count),
    ("requests_unmatched", Kind::Count),
    ("request_total_finished_duration_us", Kind::Count),
    ("request_min_finished_duration_us", Kind::OptionalCount),
    ("request_max_finished_duration_us", Kind::OptionalCount),
    ("request_total_failed_duration_us", Kind::Count),
    ("request_min_failed_duration_us", Kind::OptionalCount),
    ("request_max_failed_duration_us", Kind::OptionalCount),
    ("requests_finished_per_minute", Kind::Rate),
    ("requests_failed_per_minute", Kind::Rate),
    ("request_retry_histogram", Kind::Histogram),
    ("requests_with_status_code", Kind::StatusCodes),
    ("errors", Kind::ErrorCounts),
    ("retry_errors", Kind::ErrorCounts),
    ("runtime_started_at_unix_ms", Kind::OptionalCount),
    ("runtime_last_started_at_unix_ms", Kind::OptionalCount),
    ("runtime_finished_at_unix_ms", Kind::OptionalCount),
    ("runtime_us", Kind::Count),
    ("persisted_at_unix_ms", Kind::OptionalCount),
];

/// A valid value of `kind`.
fn valid(kind: Kind) -> BoxedStrategy<Value> {
    match kind {
        Kind::Version => Just(json!(1)).boxed(),
        Kind::Count => count().prop_map(|n| json!(n)).boxed(),
        Kind::OptionalCount => {
            prop_oneof![Just(Value::Null), count().prop_map(|n| json!(n))].boxed()
        }
        Kind::Rate => any_number().boxed(),
        Kind::Histogram => histogram().prop_map(|counts| json!(counts)).boxed(),
        Kind::StatusCodes => status_codes().prop_map(|codes| codes_json(&codes)).boxed(),
        Kind::ErrorCounts => error_counts().prop_map(|counts| json!(counts)).boxed(),
    }
}

/// A value of the wrong type or range for `kind`. (A `version` other than 1 is not a
/// document of version 1: it is refused as a version this mvx does not read.)
fn invalid(kind: Kind) -> BoxedStrategy<Value> {
    match kind {
        Kind::Version => prop_oneof![
            Just(json!(0)),
            Just(json!(2)),
            Just(json!(MAX)),
            Just(json!("1")),
            Just(json!(1.5)),
            Just(json!(-1)),
            Just(Value::Null),
        ]
        .boxed(),
        Kind::Count => prop_oneof![not_a_count(), Just(Value::Null)].boxed(),
        Kind::OptionalCount => not_a_count().boxed(),
        Kind::Rate => prop_oneof![
            Just(json!("NaN")),
            Just(json!("inf")),
            Just(json!("1.0")),
            Just(Value::Null),
            Just(json!(true)),
            Just(json!([1.0])),
        ]
        .boxed(),
        Kind::Histogram => not_a_histogram().boxed(),
        Kind::StatusCodes => not_status_codes().boxed(),
        Kind::ErrorCounts => not_error_counts().boxed(),
    }
}

fn field(document: &Value, name: &str) -> u64 {
    document[name].as_u64().unwrap()
}

fn optional(document: &Value, name: &str) -> Option<Duration> {
    document[name].as_u64().map(Duration::from_micros)
}

/// `map[key]` in the document, 0 if none.
fn counted(document: &Value, map: &str, key: &str) -> u64 {
    document[map].get(key).and_then(Value::as_u64).unwrap_or(0)
}

/// What a valid document of version 1 loads as.
fn version_1_loads_as(document: &Value) -> Loaded {
    let mut histogram: Vec<u64> =
        serde_json::from_value(document["request_retry_histogram"].clone()).unwrap();
    if histogram.is_empty() {
        histogram.push(0);
    }
    Loaded {
        finished: field(document, "requests_finished"),
        failed: field(document, "requests_failed"),
        requests_retries: histogram
            .iter()
            .skip(1)
            .fold(0u64, |sum, &n| sum.saturating_add(n)),
        retry_attempts: field(document, "retries"),
        unmatched: field(document, "requests_unmatched"),
        total_finished: Duration::from_micros(field(
            document,
            "request_total_finished_duration_us",
        )),
        total_failed: Duration::from_micros(field(document, "request_total_failed_duration_us")),
        min: optional(document, "request_min_finished_duration_us"),
        max: optional(document, "request_max_finished_duration_us"),
        min_failed: optional(document, "request_min_failed_duration_us"),
        max_failed: optional(document, "request_max_failed_duration_us"),
        histogram,
        status_200: counted(document, "requests_with_status_code", "200"),
        errors_e: counted(document, "errors", "e"),
        retry_errors_e: counted(document, "retry_errors", "e"),
        runtime: Duration::from_micros(field(document, "runtime_us")),
    }
}

/// A document of version 1 and what it loads as (`None`: invalid): every field valid, or
/// up to three of them replaced by an invalid value.
fn arbitrary_version_1_document() -> impl Strategy<Value = (Value, Option<Loaded>)> {
    let fields: Vec<BoxedStrategy<Value>> = VERSION_1_FIELDS
        .iter()
        .map(|&(_, kind)| valid(kind))
        .collect();
    let broken = prop::collection::vec(0..VERSION_1_FIELDS.len(), 0..4);
    (fields, broken, any::<bool>()).prop_flat_map(|(values, mut indices, unknown_field)| {
        indices.sort_unstable();
        indices.dedup();
        let replacements: Vec<BoxedStrategy<(usize, Value)>> = indices
            .iter()
            .map(|&index| {
                invalid(VERSION_1_FIELDS[index].1)
                    .prop_map(move |bad| (index, bad))
                    .boxed()
            })
            .collect();
        (Just(values), replacements, Just(unknown_field)).prop_map(
            |(values, replacements, unknown_field)| {
                let mut document = Map::new();
                for (&(name, _), value) in VERSION_1_FIELDS.iter().zip(values) {
                    document.insert(name.to_owned(), value);
                }
                if unknown_field {
                    // Fields version 1 did not know are ignored.
                    document.insert("written_by".to_owned(), json!("a later version"));
                }
                let valid = replacements.is_empty();
                for (index, bad) in replacements {
                    document.insert(VERSION_1_FIELDS[index].0.to_owned(), bad);
                }
                let document = Value::Object(document);
                let loaded = valid.then(|| version_1_loads_as(&document));
                (document, loaded)
            },
        )
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 160, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_crawlee_documents_load_or_are_refused_as_corrupt_and_never_panic(
        (document, loaded) in arbitrary_crawlee_document()
    ) {
        check_document(&document, loaded.as_ref())?;
    }

    #[test]
    fn arbitrary_version_1_documents_load_or_are_refused_as_corrupt_and_never_panic(
        (document, loaded) in arbitrary_version_1_document()
    ) {
        check_document(&document, loaded.as_ref())?;
    }
}
