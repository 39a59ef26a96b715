//! Statistics never panic nor fail on the numbers they are given: a persisted state with
//! counts and durations at the limits of their types loads, and recording on top of it
//! saturates; counts that add up past `u64::MAX` and durations that add up past
//! `Duration::MAX` saturate; intervals of `Duration::MAX` mean "never". A property test
//! plants arbitrary documents of the state's shape with extreme numbers and values of the
//! wrong type: each one loads (and recording, `calculate()`, the final save and a reload
//! all work) or is refused as corrupt, exactly when one of its values is out of its type.
#![cfg(not(loom))]

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use futures::executor::{LocalPool, block_on};
use futures::task::SpawnExt;
use mvx::State;
use mvx::stats::{
    FinalStatistics, KeyValueStore, MemoryStore, Statistics, StatisticsState, StatsConfig,
    StatsError, StatsReason,
};
use proptest::prelude::*;
use serde_json::{Map, Value, json};

#[path = "support/watchdog.rs"]
mod watchdog;

use watchdog::within_guard;

const MAX: u64 = u64::MAX;
const HALF: u64 = 1 << 63;

/// Where every test persists: the defaults.
const STORE: &str = "default";
const KEY: &str = "statistics";

/// A state document with every count `count`, every duration `count` microseconds and
/// every wall-clock time `count` milliseconds.
fn document(count: u64) -> Value {
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

/// A store holding `document` as the persisted state.
fn store_with(document: &Value) -> MemoryStore {
    let store = MemoryStore::new();
    block_on(store.set(STORE, KEY, document)).unwrap();
    store
}

/// Started statistics persisting to `store`, with their driver on a thread of its own.
fn running(store: &MemoryStore) -> (Statistics, std::thread::JoinHandle<()>) {
    let (stats, driver) =
        Statistics::new(StatsConfig::default().persist_to(store.clone())).unwrap();
    let driver = std::thread::spawn(move || block_on(driver));
    stats.start().wait().unwrap();
    (stats, driver)
}

/// The persisted state, as JSON.
fn persisted(store: &MemoryStore) -> Value {
    serde_json::from_str(&store.get_raw(STORE, KEY).unwrap()).unwrap()
}

/// `total / count`, to the nanosecond, rounded down.
fn average(total: Duration, count: u64) -> Option<Duration> {
    let nanos = total.as_nanos().checked_div(u128::from(count))?;
    let secs = u64::try_from(nanos / 1_000_000_000).unwrap();
    Some(Duration::new(secs, (nanos % 1_000_000_000) as u32))
}

#[test]
fn a_state_at_the_limits_loads_and_collection_goes_on() {
    within_guard(|| {
        let store = store_with(&document(MAX));
        let (stats, driver) = running(&store);
        let base = Instant::now();
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
        stats
            .record_request_processing_start_at(3u64, base)
            .unwrap();
        stats.record_request_retry_at(3u64, base).unwrap();
        stats
            .record_request_processing_finish_at(3u64, base + ms(3))
            .unwrap();
        stats.record_request_processing_finish(99u64).unwrap();
        stats.register_status_code(200).unwrap();
        stats.register_status_code(404).unwrap();
        stats.register_error("timeout").unwrap();
        stats.register_retry_error("timeout").unwrap();

        let figures = stats.calculate_blocking().unwrap();
        let limit = Duration::from_micros(MAX);
        assert_eq!(
            (
                figures.requests_finished,
                figures.requests_failed,
                figures.requests_total,
                figures.requests_in_progress,
                figures.retries,
            ),
            (MAX, MAX, MAX, 0, MAX)
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
        assert!(figures.runtime >= limit);
        let minutes = figures.runtime.as_secs_f64() / 60.0;
        assert_eq!(figures.requests_finished_per_minute, MAX as f64 / minutes);
        let state = stats.state();
        assert_eq!(state.requests_unmatched, MAX);
        assert_eq!(state.requests_with_status_code[&200], MAX);
        assert_eq!(state.requests_with_status_code[&404], 1);
        assert_eq!(state.errors["timeout"], MAX);
        assert_eq!(state.retry_errors["timeout"], MAX);
        assert_eq!(state.request_min_finished_duration, Some(ms(1)));
        assert_eq!(state.request_max_finished_duration, Some(limit));
        assert_eq!(stats.lifecycle_state(), State::Running);
        assert_eq!(stats.queue_stats().failed, 0);
        assert!(stats.last_error().is_none(), "{:?}", stats.last_error());

        stats.stop().wait().unwrap();
        driver.join().unwrap();
        // Saved as the limits of the persisted shape: the durations saturate at u64::MAX µs.
        let saved = persisted(&store);
        assert_eq!(saved["requests_finished"], MAX);
        assert_eq!(saved["request_total_finished_duration_us"], MAX);
        assert_eq!(saved["request_min_finished_duration_us"], 1_000);
        assert_eq!(saved["runtime_us"], MAX);

        // And what was saved loads again.
        let (stats, driver) = running(&store);
        assert_eq!(stats.calculate_blocking().unwrap().requests_total, MAX);
        stats.stop().wait().unwrap();
        driver.join().unwrap();
    });
}

#[test]
fn counts_that_add_up_past_the_largest_count_saturate() {
    within_guard(|| {
        let mut document = document(0);
        document["requests_finished"] = json!(HALF);
        document["requests_failed"] = json!(HALF);
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
            state.request_max_finished_duration,
            Some(Duration::from_secs(1 << 60))
        );
        assert_eq!(stats.lifecycle_state(), State::Running);
        stats.stop().wait().unwrap();
        driver.join().unwrap();
        assert_eq!(persisted(&store)["request_total_failed_duration_us"], MAX);
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
        // for ever rather than panicking on `now + Duration::MAX`.
        assert!(stats.last_error().is_none(), "{:?}", stats.last_error());
    });
}

// ---------------------------------------------------------------------------------------
// Arbitrary documents of the state's shape
// ---------------------------------------------------------------------------------------

/// The type of a field of the persisted shape.
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

const FIELDS: &[(&str, Kind)] = &[
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

/// A JSON value that no `u64` field accepts: negative, fractional, beyond `u64::MAX`,
/// NaN-like strings, another type.
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

/// A valid value of `kind`.
fn valid(kind: Kind) -> BoxedStrategy<Value> {
    match kind {
        Kind::Version => Just(json!(1)).boxed(),
        Kind::Count => count().prop_map(|n| json!(n)).boxed(),
        Kind::OptionalCount => {
            prop_oneof![Just(Value::Null), count().prop_map(|n| json!(n))].boxed()
        }
        Kind::Rate => prop_oneof![
            Just(json!(0.0)),
            Just(json!(-1.5)),
            Just(json!(1e300)),
            Just(json!(-1e300)),
            Just(json!(f64::MIN_POSITIVE)),
            count().prop_map(|n| json!(n)),
            any::<i64>().prop_map(|n| json!(n)),
        ]
        .boxed(),
        Kind::Histogram => prop::collection::vec(count(), 0..4)
            .prop_map(|counts| json!(counts))
            .boxed(),
        Kind::StatusCodes => prop::collection::btree_map(
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
        .prop_map(|codes| {
            Value::Object(
                codes
                    .into_iter()
                    .map(|(code, n)| (code.to_string(), json!(n)))
                    .collect(),
            )
        })
        .boxed(),
        Kind::ErrorCounts => prop::collection::btree_map(
            prop_oneof![Just("e".to_owned()), Just(String::new()), "[a-z ]{1,8}"],
            count(),
            0..3,
        )
        .prop_map(|counts| json!(counts))
        .boxed(),
    }
}

/// A value of the wrong type or range for `kind`.
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
        Kind::Histogram => prop_oneof![
            not_a_count().prop_map(|bad| json!([0, bad])),
            Just(json!({})),
            Just(json!(3)),
            Just(Value::Null),
        ]
        .boxed(),
        Kind::StatusCodes => prop_oneof![
            Just(json!({"65536": 1})),
            Just(json!({"-1": 1})),
            Just(json!({"abc": 1})),
            Just(json!({"": 1})),
            Just(json!({"1e2": 1})),
            not_a_count().prop_map(|bad| json!({"200": bad})),
            Just(json!([])),
        ]
        .boxed(),
        Kind::ErrorCounts => prop_oneof![
            not_a_count().prop_map(|bad| json!({"e": bad})),
            Just(json!([])),
            Just(json!("e")),
        ]
        .boxed(),
    }
}

/// A document of the state's shape, and whether it is valid: every field valid, or up to
/// three of them (fewer when the same one is drawn twice) replaced by an invalid value.
fn arbitrary_document() -> impl Strategy<Value = (Value, bool)> {
    let fields: Vec<BoxedStrategy<Value>> = FIELDS.iter().map(|&(_, kind)| valid(kind)).collect();
    let broken = prop::collection::vec(0..FIELDS.len(), 0..4);
    (fields, broken, any::<bool>()).prop_flat_map(|(values, mut indices, unknown_field)| {
        indices.sort_unstable();
        indices.dedup();
        let replacements: Vec<BoxedStrategy<(usize, Value)>> = indices
            .iter()
            .map(|&index| {
                invalid(FIELDS[index].1)
                    .prop_map(move |bad| (index, bad))
                    .boxed()
            })
            .collect();
        (Just(values), replacements, Just(unknown_field)).prop_map(
            |(values, replacements, unknown_field)| {
                let mut document = Map::new();
                for (&(name, _), value) in FIELDS.iter().zip(values) {
                    document.insert(name.to_owned(), value);
                }
                if unknown_field {
                    // Fields this mvx does not know are ignored.
                    document.insert("written_by".to_owned(), json!("a later version"));
                }
                let valid = replacements.is_empty();
                for (index, bad) in replacements {
                    document.insert(FIELDS[index].0.to_owned(), bad);
                }
                (Value::Object(document), valid)
            },
        )
    })
}

fn field(document: &Value, name: &str) -> u64 {
    document[name].as_u64().unwrap()
}

fn optional(document: &Value, name: &str) -> Option<Duration> {
    document[name].as_u64().map(Duration::from_micros)
}

/// `count` more in `map[key]`, from what the document had.
fn counted(document: &Value, map: &str, key: &str, more: u64) -> u64 {
    document[map]
        .get(key)
        .and_then(Value::as_u64)
        .unwrap_or(0)
        .saturating_add(more)
}

/// Runs one document through load, recording, `calculate()`, stop and reload on a
/// `LocalPool` on this thread.
fn check_document(document: &Value, valid: bool) -> Result<(), TestCaseError> {
    let store = store_with(document);
    let config = || StatsConfig::default().persist_to(store.clone());
    let mut pool = LocalPool::new();
    let (stats, driver) = Statistics::new(config()).unwrap();
    pool.spawner().spawn(driver).unwrap();

    let started = pool.run_until(stats.start());
    if !valid {
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
    }
    prop_assert!(
        started.is_ok(),
        "a valid document was refused: {:?}",
        started
    );
    prop_assert!(serde_json::from_value::<StatisticsState>(document.clone()).is_ok());

    let base = Instant::now();
    let ms = Duration::from_millis;
    let (figures, state) = pool.run_until(async {
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
        stats.register_error("e").unwrap();
        stats.register_retry_error("e").unwrap();
        let figures = stats.calculate().await.unwrap();
        (figures, stats.state())
    });

    let finished = field(document, "requests_finished").saturating_add(2);
    let failed = field(document, "requests_failed").saturating_add(1);
    prop_assert_eq!(figures.requests_finished, finished);
    prop_assert_eq!(figures.requests_failed, failed);
    prop_assert_eq!(figures.requests_total, finished.saturating_add(failed));
    prop_assert_eq!(
        figures.retries,
        field(document, "retries").saturating_add(1)
    );
    prop_assert_eq!(
        state.requests_unmatched,
        field(document, "requests_unmatched").saturating_add(1)
    );
    let finished_total =
        Duration::from_micros(field(document, "request_total_finished_duration_us")) + ms(4);
    let failed_total =
        Duration::from_micros(field(document, "request_total_failed_duration_us")) + ms(2);
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
    let min =
        |name: &str, new: Duration| Some(optional(document, name).map_or(new, |d| d.min(new)));
    let max =
        |name: &str, new: Duration| Some(optional(document, name).map_or(new, |d| d.max(new)));
    prop_assert_eq!(
        state.request_min_finished_duration,
        min("request_min_finished_duration_us", ms(1))
    );
    prop_assert_eq!(
        state.request_max_finished_duration,
        max("request_max_finished_duration_us", ms(3))
    );
    prop_assert_eq!(
        state.request_min_failed_duration,
        min("request_min_failed_duration_us", ms(2))
    );
    prop_assert_eq!(
        state.request_max_failed_duration,
        max("request_max_failed_duration_us", ms(2))
    );
    let mut histogram: Vec<u64> =
        serde_json::from_value(document["request_retry_histogram"].clone()).unwrap();
    if histogram.len() < 2 {
        histogram.resize(2, 0);
    }
    histogram[0] = histogram[0].saturating_add(2);
    histogram[1] = histogram[1].saturating_add(1);
    prop_assert_eq!(&figures.retry_histogram, &histogram);
    prop_assert_eq!(
        state.requests_with_status_code[&200],
        counted(document, "requests_with_status_code", "200", 1)
    );
    prop_assert_eq!(state.errors["e"], counted(document, "errors", "e", 1));
    prop_assert_eq!(
        state.retry_errors["e"],
        counted(document, "retry_errors", "e", 1)
    );
    prop_assert!(figures.runtime >= Duration::from_micros(field(document, "runtime_us")));
    prop_assert_eq!(stats.lifecycle_state(), State::Running);
    prop_assert_eq!(stats.queue_stats().failed, 0);

    // The final save writes a state that loads again, with the same counts.
    pool.run_until(stats.stop()).unwrap();
    pool.run();
    let (again, driver) = Statistics::new(config()).unwrap();
    pool.spawner().spawn(driver).unwrap();
    let reloaded = pool.run_until(async {
        again.start().await.unwrap();
        let figures = again.calculate().await.unwrap();
        again.stop().await.unwrap();
        figures
    });
    prop_assert_eq!(reloaded.requests_finished, finished);
    prop_assert_eq!(reloaded.requests_failed, failed);
    prop_assert_eq!(&reloaded.retry_histogram, &histogram);
    let saved: BTreeMap<String, Value> =
        serde_json::from_str(&store.get_raw(STORE, KEY).unwrap()).unwrap();
    prop_assert_eq!(saved["version"].clone(), json!(1));
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 192, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_documents_load_or_are_refused_as_corrupt_and_never_panic(
        (document, valid) in arbitrary_document()
    ) {
        check_document(&document, valid)?;
    }
}
