//! mvx's statistics side by side with Crawlee for Python's (`crawlee` 1.11 from PyPI, its
//! clock scripted): the same 1,000 requests give the same counts, durations, averages and
//! histogram; the per-minute rates round as Crawlee rounds them; each side continues a
//! state the other persisted in the same file store; the persist key is per instance; the
//! report goes out once at the start. The rules are in the `stats` module docs, "Coming
//! from Crawlee".
#![cfg(not(loom))]

#[path = "support/crawlee.rs"]
mod crawlee;
#[path = "support/watchdog.rs"]
mod watchdog;

use std::path::Path;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use crawlee::{CRAWLEE_VERSION, Op, crawlee, ops_json};
use futures::executor::block_on;
use mvx::BoxError;
use mvx::sink::{Dispatch, LogEvent, SinkConfig};
use mvx::stats::{
    DEFAULT_PERSIST_STATE_KEY_PREFIX, FileStore, FinalStatistics, KeyValueStore, MemoryStore,
    ReportTo, Statistics, StatisticsState, StatsConfig,
};
use serde_json::{Value, json};
use watchdog::within_guard;

/// Deterministic numbers (a linear congruential generator).
struct Numbers(u64);

impl Numbers {
    fn below(&mut self, bound: u64) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        (self.0 >> 33) % bound
    }
}

/// What a script must add up to: requests retried at least once, and retries.
#[derive(Debug, Default, PartialEq)]
struct Retried {
    requests: u64,
    retries: u64,
}

/// `requests` requests, four at a time, each retried 0 to 3 times and then finished or
/// failed, with durations of microseconds that are not whole milliseconds; ids `<prefix>N`;
/// times from `start` µs on.
fn script(requests: u64, prefix: &str, start: u64, seed: u64) -> (Vec<Op>, Retried, u64) {
    let mut numbers = Numbers(seed);
    let mut ops = Vec::new();
    let mut retried = Retried::default();
    let mut now = start;
    let mut step = |numbers: &mut Numbers| {
        now += 50 + numbers.below(3_000);
        now
    };
    for group in (0..requests).collect::<Vec<_>>().chunks(4) {
        let plans: Vec<(String, u64, bool)> = group
            .iter()
            .map(|&n| {
                let retries = [0, 0, 0, 0, 1, 1, 2, 3][numbers.below(8) as usize];
                let fails = retries == 3 && numbers.below(2) == 0 || numbers.below(10) == 0;
                (format!("{prefix}{n}"), retries, fails)
            })
            .collect();
        for (id, _, _) in &plans {
            ops.push(Op::Start {
                id: id.clone(),
                at: step(&mut numbers),
            });
        }
        for round in 1..=3 {
            for (id, retries, _) in &plans {
                if *retries >= round {
                    ops.push(Op::Status(503));
                    ops.push(Op::Start {
                        id: id.clone(),
                        at: step(&mut numbers),
                    });
                }
            }
        }
        for (id, retries, fails) in &plans {
            retried.requests += u64::from(*retries > 0);
            retried.retries += retries;
            let at = step(&mut numbers);
            if *fails {
                ops.push(Op::Status(500));
                ops.push(Op::Fail { id: id.clone(), at });
            } else {
                ops.push(Op::Status(200));
                ops.push(Op::Finish { id: id.clone(), at });
            }
        }
    }
    (ops, retried, now)
}

/// Runs `ops` on `stats`, each at `base` + its time.
fn run(stats: &Statistics, ops: &[Op], base: Instant) {
    let at = |micros: u64| base + Duration::from_micros(micros);
    for op in ops {
        match op {
            Op::Start { id, at: when } => stats
                .record_request_processing_start_at(id.as_str(), at(*when))
                .unwrap(),
            Op::Finish { id, at: when } => stats
                .record_request_processing_finish_at(id.as_str(), at(*when))
                .unwrap(),
            Op::Fail { id, at: when } => stats
                .record_request_processing_failure_at(id.as_str(), at(*when))
                .unwrap(),
            Op::Status(code) => stats.register_status_code(*code).unwrap(),
        }
    }
}

/// Started statistics on `config`, with their driver on a thread of its own.
fn running(config: StatsConfig) -> (Statistics, std::thread::JoinHandle<()>) {
    let (stats, driver) = Statistics::new(config.report_to(ReportTo::Off)).unwrap();
    let driver = std::thread::spawn(move || block_on(driver));
    stats.start().wait().unwrap();
    (stats, driver)
}

fn stop(stats: &Statistics, driver: std::thread::JoinHandle<()>) {
    stats.stop().wait().unwrap();
    driver.join().unwrap();
}

/// The keys of the persisted document that depend only on the requests (not on the
/// clock of the run, nor on who wrote it).
const REQUEST_KEYS: &[&str] = &[
    "requestsFinished",
    "requestsFailed",
    "requestsRetries",
    "requestMinDurationMillis",
    "requestMaxDurationMillis",
    "requestTotalFailedDurationMillis",
    "requestTotalFinishedDurationMillis",
    "errors",
    "retryErrors",
    "requestsWithStatusCode",
    "requestRetryHistogram",
    "requestTotalDurationMillis",
    "requestAvgFailedDurationMillis",
    "requestAvgFinishedDurationMillis",
    "requestsTotal",
];

/// `value` with its numbers as `f64`s, so that `2` and `2.0` compare equal.
fn numbers_as_floats(value: &Value) -> Value {
    match value {
        Value::Number(number) => json!(number.as_f64().unwrap()),
        Value::Array(items) => Value::Array(items.iter().map(numbers_as_floats).collect()),
        Value::Object(entries) => Value::Object(
            entries
                .iter()
                .map(|(key, value)| (key.clone(), numbers_as_floats(value)))
                .collect(),
        ),
        other => other.clone(),
    }
}

fn assert_same_keys(keys: &[&str], mvx: &Value, crawlee: &Value) {
    for key in keys {
        assert_eq!(
            numbers_as_floats(&mvx[*key]),
            numbers_as_floats(&crawlee[*key]),
            "{key}: mvx {} vs crawlee {}",
            mvx[*key],
            crawlee[*key]
        );
    }
}

#[test]
fn the_installed_crawlee_is_the_one_compared_with() {
    assert_eq!(
        crawlee("version", &Value::Null, None),
        json!(CRAWLEE_VERSION)
    );
}

#[test]
fn a_thousand_requests_count_as_crawlee_counts_them() {
    within_guard(|| {
        let (ops, retried, _) = script(1_000, "r", 0, 15);
        let python = crawlee("script", &json!({ "ops": ops_json(&ops) }), None);

        let (stats, driver) = running(StatsConfig::default());
        run(&stats, &ops, Instant::now());
        let figures = stats.calculate_blocking().unwrap();
        let state = stats.state();
        stop(&stats, driver);

        // Crawlee's requests_retries: requests retried at least once, counted at their end;
        // mvx's retry_attempts: every retry.
        assert_eq!(python["state"]["requestsRetries"], retried.requests);
        assert_eq!(state.requests_retries, retried.requests);
        assert_eq!(state.retry_attempts, retried.retries);
        assert!(retried.retries > retried.requests, "{retried:?}");
        eprintln!(
            "1,000 requests: requests_retries {} (crawlee {}), retry_attempts {}",
            state.requests_retries, python["state"]["requestsRetries"], state.retry_attempts
        );

        // The persisted document: every key that the requests decide.
        let document = serde_json::to_value(&state).unwrap();
        assert_same_keys(REQUEST_KEYS, &document, &python["state"]);
        // `str(calculate())`: every figure but those of the clock of the run.
        let final_statistics = serde_json::to_value(&figures).unwrap();
        assert_same_keys(
            &[
                "requests_finished",
                "requests_failed",
                "retry_histogram",
                "request_avg_failed_duration",
                "request_avg_finished_duration",
                "request_total_duration",
                "requests_total",
            ],
            &final_statistics,
            &python["final"],
        );
        // And the same names, in the same order, before mvx's additions.
        let names =
            |value: &Value| -> Vec<String> { value.as_object().unwrap().keys().cloned().collect() };
        let mut crawlee_names = names(&python["final"]);
        crawlee_names.extend(
            ["requests_in_progress", "requests_retries", "retry_attempts"].map(String::from),
        );
        let mut mvx_names = names(&final_statistics);
        crawlee_names.sort();
        mvx_names.sort();
        assert_eq!(mvx_names, crawlee_names);
        assert_eq!(
            figures
                .to_string()
                .split(' ')
                .map(|pair| pair.split('=').next().unwrap().to_owned())
                .take(10)
                .collect::<Vec<_>>(),
            [
                "requests_finished",
                "requests_failed",
                "retry_histogram",
                "request_avg_failed_duration",
                "request_avg_finished_duration",
                "requests_finished_per_minute",
                "requests_failed_per_minute",
                "request_total_duration",
                "requests_total",
                "crawler_runtime",
            ]
        );
    });
}

#[test]
fn no_requests_give_the_same_empty_figures() {
    within_guard(|| {
        let python = crawlee("script", &json!({ "ops": [] }), None);
        let (stats, driver) = running(StatsConfig::default());
        let figures = stats.calculate_blocking().unwrap();
        let document = serde_json::to_value(stats.state()).unwrap();
        stop(&stats, driver);
        assert_eq!(python["final"]["retry_histogram"], json!([0]));
        assert_eq!(figures.retry_histogram, vec![0]);
        assert_same_keys(REQUEST_KEYS, &document, &python["state"]);
        let final_statistics = serde_json::to_value(&figures).unwrap();
        assert_eq!(final_statistics["request_avg_failed_duration"], Value::Null);
        assert_same_keys(
            &[
                "requests_finished",
                "retry_histogram",
                "request_avg_failed_duration",
                "request_avg_finished_duration",
                "request_total_duration",
                "requests_total",
            ],
            &final_statistics,
            &python["final"],
        );
    });
}

#[test]
fn per_minute_rates_round_and_floor_as_crawlee_does() {
    let minute = 60_000_000u64;
    let table: Vec<(u64, u64, u64)> = vec![
        (5, 5, 2 * minute), // 2.5 a minute: rounds to even, floors
        (7, 7, 2 * minute), // 3.5
        (3, 3, 2 * minute), // 1.5
        (1, 1, 3 * minute), // a third
        (2, 2, 3 * minute), // two thirds
        (1, 0, 0),          // no runtime
        (3, 1, 7),          // seven microseconds
        (1_000_003, 999_999, 61_234_567),
        (u64::from(u32::MAX), 17, 1),
        (0, 0, minute),
    ];
    let python = crawlee(
        "rates",
        &json!(
            table
                .iter()
                .map(|&(finished, failed, runtime)| json!([finished, failed, runtime]))
                .collect::<Vec<_>>()
        ),
        None,
    );
    for (row, &(finished, failed, runtime)) in table.iter().enumerate() {
        let figures = FinalStatistics::from_state(&StatisticsState {
            requests_finished: finished,
            requests_failed: failed,
            crawler_runtime: Duration::from_micros(runtime),
            ..StatisticsState::default()
        });
        assert_eq!(
            json!([
                figures.requests_finished_per_minute,
                figures.requests_failed_per_minute
            ]),
            python[row],
            "{finished} finished, {failed} failed in {runtime} µs"
        );
    }
}

/// A file store shared with the Python side: Crawlee's layout under `storage`.
fn shared(storage: &Path) -> StatsConfig {
    StatsConfig::default()
        .persist_to(FileStore::crawlee(storage))
        .persist_state_key(format!("{DEFAULT_PERSIST_STATE_KEY_PREFIX}0"))
}

fn read_document(storage: &Path, key: &str) -> Value {
    let path = storage.join("key_value_stores").join("default").join(key);
    serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap()
}

/// The scripts of the persistence tests: whole milliseconds, so that Crawlee's rounding
/// to milliseconds loses nothing and the counts of two halves add up exactly.
fn whole_milliseconds(ops: Vec<Op>) -> Vec<Op> {
    ops.into_iter()
        .map(|op| match op {
            Op::Start { id, at } => Op::Start { id, at: at * 1000 },
            Op::Finish { id, at } => Op::Finish { id, at: at * 1000 },
            Op::Fail { id, at } => Op::Fail { id, at: at * 1000 },
            status => status,
        })
        .collect()
}

#[test]
fn crawlee_continues_a_state_mvx_wrote() {
    within_guard(|| {
        let storage = tempfile::tempdir().unwrap();
        let (first, _, end) = script(40, "a", 0, 1);
        let (second, _, _) = script(40, "b", end, 2);
        let (first, second) = (whole_milliseconds(first), whole_milliseconds(second));

        // mvx writes: the first half, an error kind, an unmatched end.
        let (stats, driver) = running(shared(storage.path()));
        run(&stats, &first, Instant::now());
        stats.register_error("timeout").unwrap();
        stats
            .record_request_processing_finish("never started")
            .unwrap();
        stop(&stats, driver);
        let written = read_document(storage.path(), "__CRAWLER_STATISTICS_0");
        let mvx_first = stats.state();

        // Crawlee (its first statistics: key `__CRAWLER_STATISTICS_0`) loads it...
        let python = crawlee(
            "persist",
            &json!({ "ops": ops_json(&second) }),
            Some(storage.path()),
        );
        assert_eq!(python["key"], "__CRAWLER_STATISTICS_0");
        let loaded = &python["loaded"];
        assert_same_keys(REQUEST_KEYS, loaded, &written);
        assert_eq!(loaded["statsId"], json!(stats.id()));
        assert_eq!(loaded["crawlerStartedAt"], written["crawlerStartedAt"]);
        // ... takes its runtime from the last run's times, not `crawlerRuntimeMillis` ...
        assert_eq!(python["runtime_taken_us"], python["last_run_us"]);
        assert!(python["runtime_taken_us"].as_u64().unwrap() > 0);
        // ... continues it, and saves it without mvx's additions.
        let saved = &python["saved"];
        assert_eq!(saved.get("mvx"), None);
        assert_eq!(saved["errors"], json!({"timeout": 1}));

        // One mvx run over both halves counts the same.
        let (whole, driver) = running(StatsConfig::default());
        let base = Instant::now();
        run(&whole, &first, base);
        run(&whole, &second, base);
        whole.register_error("timeout").unwrap();
        whole.calculate_blocking().unwrap();
        let both = serde_json::to_value(whole.state()).unwrap();
        stop(&whole, driver);
        assert_same_keys(REQUEST_KEYS, saved, &both);
        assert!(mvx_first.requests_finished > 0);
    });
}

#[test]
fn mvx_continues_a_state_crawlee_wrote() {
    within_guard(|| {
        let storage = tempfile::tempdir().unwrap();
        let (first, retried, end) = script(40, "a", 0, 3);
        let (second, _, _) = script(40, "b", end, 4);
        let (first, second) = (whole_milliseconds(first), whole_milliseconds(second));

        // Crawlee writes the first half.
        let python = crawlee(
            "persist",
            &json!({ "ops": ops_json(&first) }),
            Some(storage.path()),
        );
        assert_eq!(python["key"], "__CRAWLER_STATISTICS_0");
        let written = read_document(storage.path(), "__CRAWLER_STATISTICS_0");
        // What Crawlee 1.11 writes for the runtime: an ISO 8601 duration.
        let runtime = written["crawlerRuntimeMillis"].as_str().unwrap();
        assert!(
            runtime.starts_with("PT") && runtime.ends_with('S'),
            "{runtime}"
        );

        // mvx loads it, on the same key of the same store.
        let before_start = Instant::now();
        let (stats, driver) = running(shared(storage.path()));
        let loaded = stats.state();
        let since_start = before_start.elapsed();
        assert_same_keys(
            REQUEST_KEYS,
            &serde_json::to_value(&loaded).unwrap(),
            &written,
        );
        assert_eq!(loaded.stats_id, Some(0));
        assert_eq!(loaded.retry_attempts, retried.retries, "from the histogram");
        // Its runtime goes on from the one Crawlee wrote.
        let seconds: f64 = runtime[2..runtime.len() - 1].parse().unwrap();
        let written_runtime = Duration::from_micros((seconds * 1e6).round() as u64);
        assert!(
            loaded.crawler_runtime >= written_runtime
                && loaded.crawler_runtime <= written_runtime + since_start,
            "{runtime}: {:?}",
            loaded.crawler_runtime
        );
        // ... and continues it.
        run(&stats, &second, Instant::now());
        stop(&stats, driver);
        let saved = read_document(storage.path(), "__CRAWLER_STATISTICS_0");
        assert_eq!(saved["mvx"]["version"], 2);

        let (whole, driver) = running(StatsConfig::default());
        let base = Instant::now();
        run(&whole, &first, base);
        run(&whole, &second, base);
        whole.calculate_blocking().unwrap();
        let both = serde_json::to_value(whole.state()).unwrap();
        stop(&whole, driver);
        assert_same_keys(REQUEST_KEYS, &saved, &both);

        // Crawlee reads back what mvx saved.
        let python = crawlee("persist", &json!({ "ops": [] }), Some(storage.path()));
        assert_same_keys(REQUEST_KEYS, &python["loaded"], &both);
    });
}

#[test]
fn a_state_crawlee_reset_is_no_state() {
    within_guard(|| {
        let storage = tempfile::tempdir().unwrap();
        let (stats, driver) = running(shared(storage.path()));
        stats.record_request_processing_start(1u64).unwrap();
        stats.record_request_processing_finish(1u64).unwrap();
        stop(&stats, driver);

        crawlee(
            "reset",
            &json!({"key": "__CRAWLER_STATISTICS_0"}),
            Some(storage.path()),
        );
        let path = storage
            .path()
            .join("key_value_stores/default/__CRAWLER_STATISTICS_0");
        assert_eq!(std::fs::read(&path).unwrap(), b"", "Crawlee's \"no value\"");
        let store = FileStore::crawlee(storage.path());
        assert_eq!(
            block_on(store.get("default", "__CRAWLER_STATISTICS_0")).unwrap(),
            None
        );
        let (stats, driver) = running(shared(storage.path()));
        assert_eq!(stats.calculate_blocking().unwrap().requests_total, 0);
        assert!(stats.last_error().is_none(), "{:?}", stats.last_error());
        stop(&stats, driver);
    });
}

#[test]
fn the_persist_key_is_per_instance() {
    within_guard(|| {
        let storage = tempfile::tempdir().unwrap();
        let python = crawlee("keys", &Value::Null, Some(storage.path()));
        assert_eq!(
            python["keys"],
            json!(["__CRAWLER_STATISTICS_0", "__CRAWLER_STATISTICS_1"])
        );
        assert_eq!(python["ids"], json!([0, 1]));

        // Two statistics of this process: keys of their own, states of their own.
        let store = MemoryStore::new();
        let (first, first_driver) = running(StatsConfig::default().persist_to(store.clone()));
        let (second, second_driver) = running(StatsConfig::default().persist_to(store.clone()));
        assert!(second.id() > first.id());
        for stats in [&first, &second] {
            assert_eq!(
                stats.persist_state_key(),
                format!("__CRAWLER_STATISTICS_{}", stats.id())
            );
        }
        first.record_request_processing_start(1u64).unwrap();
        first.record_request_processing_finish(1u64).unwrap();
        stop(&first, first_driver);
        stop(&second, second_driver);
        let saved = |stats: &Statistics| -> Value {
            serde_json::from_str(&store.get_raw("default", stats.persist_state_key()).unwrap())
                .unwrap()
        };
        assert_eq!(saved(&first)["requestsFinished"], 1);
        assert_eq!(saved(&first)["statsId"], json!(first.id()));
        assert_eq!(saved(&second)["requestsFinished"], 0);
        assert_eq!(saved(&second)["statsId"], json!(second.id()));

        // A key set explicitly is shared, as asked.
        let config = || {
            StatsConfig::default()
                .persist_to(store.clone())
                .persist_state_key("shared")
        };
        let (one, driver) = running(config());
        assert_eq!(one.persist_state_key(), "shared");
        one.record_request_processing_start(1u64).unwrap();
        one.record_request_processing_finish(1u64).unwrap();
        stop(&one, driver);
        let (other, driver) = running(config());
        assert_eq!(other.calculate_blocking().unwrap().requests_finished, 1);
        stop(&other, driver);
    });
}

/// A log backend that hands every event to the test.
struct Channel(std::sync::Mutex<mpsc::Sender<LogEvent>>);

impl Dispatch<LogEvent> for Channel {
    async fn dispatch(&mut self, event: LogEvent) -> Result<(), BoxError> {
        self.0.lock().unwrap().send(event)?;
        Ok(())
    }
}

#[test]
fn the_figures_are_reported_once_at_the_start_as_crawlee_logs_them() {
    within_guard(|| {
        // Crawlee logs once when its statistics start, however long its interval.
        let logged = crawlee("log", &Value::Null, None);
        let logged = logged.as_array().unwrap();
        assert_eq!(logged.len(), 1, "{logged:?}");
        assert!(logged[0].as_str().unwrap().starts_with("Statistics\n"));

        let (events_tx, events) = mpsc::channel();
        let (log, terminator) = mvx::rt::thread::create(
            Channel(std::sync::Mutex::new(events_tx)),
            SinkConfig::default(),
        )
        .unwrap();
        let config = StatsConfig::default()
            .report_to(ReportTo::Sink(log))
            .log_interval(Duration::from_secs(3600));
        let (stats, driver) = Statistics::new(config).unwrap();
        let driver = std::thread::spawn(move || block_on(driver));
        stats.start().wait().unwrap();
        let report = events.recv().unwrap();
        assert_eq!(report.message, "Statistics");
        stats.stop().wait().unwrap();
        driver.join().unwrap();
        terminator.terminate().unwrap();
        assert_eq!(events.try_iter().count(), 0, "once");
    });
}

#[test]
fn a_store_in_crawlee_s_layout_keeps_the_store_contract() {
    let storage = tempfile::tempdir().unwrap();
    let store = FileStore::crawlee(storage.path());
    block_on(async {
        // Keys as Crawlee quotes them.
        store.set("default", "a!'()", &json!(1)).await.unwrap();
        let directory = storage.path().join("key_value_stores").join("default");
        assert!(directory.join("a%21%27%28%29").is_file());
        let described: Value = serde_json::from_slice(
            &std::fs::read(directory.join("a%21%27%28%29.__metadata__.json")).unwrap(),
        )
        .unwrap();
        assert_eq!(
            described,
            json!({"key": "a!'()", "content_type": "application/json", "size": 1})
        );
        // A move aside takes its description along, under the new key.
        assert!(store.rename("default", "a!'()", "b").await.unwrap());
        assert!(!directory.join("a%21%27%28%29.__metadata__.json").exists());
        let described: Value =
            serde_json::from_slice(&std::fs::read(directory.join("b.__metadata__.json")).unwrap())
                .unwrap();
        assert_eq!(described["key"], "b");
        assert!(store.delete("default", "b").await.unwrap());
        assert_eq!(std::fs::read_dir(&directory).unwrap().count(), 0);
        assert!(matches!(
            store.set("default", "x.__metadata__.json", &json!(1)).await,
            Err(mvx::stats::StoreError::InvalidName { .. })
        ));
    });
}
