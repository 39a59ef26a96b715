//! What a file can hold where the statistics' state should be: arbitrary bytes (not UTF-8,
//! not JSON, a valid state cut short or with bytes flipped), JSON of another shape, and
//! documents of the state's shape with hostile contents (huge maps and arrays, deep
//! nesting, repeated and odd keys). Through a `FileStore` and a `MemoryStore`, each one is
//! either read as the state it is — its counts resume, are saved on stop and read back — or
//! refused as corrupt, moved aside byte for byte; never a panic, and within a bound of time
//! per input. tests/stats_extreme_values.rs covers the numbers of a state's fields.
#![cfg(not(loom))]

use std::path::Path;
use std::time::{Duration, Instant};

use futures::executor::block_on;
use mvx::State;
use mvx::stats::{
    FileStore, KeyValueStore, MemoryStore, Statistics, StatisticsState, StatsConfig, StatsError,
    StatsReason, StoreError,
};
use proptest::prelude::*;
use serde_json::{Value, json};

/// The most one input may take: a start that loads, a record, a stop that saves (with its
/// file syncs) and a reload. Far above what they need; a hang fails the case.
const BOUND: Duration = Duration::from_secs(10);

/// Where the statistics persist by default.
const STORE: &str = "default";
const KEY: &str = "statistics";

/// Runs `f`, failing the case if it took longer than [`BOUND`].
fn bounded<T>(what: &str, f: impl FnOnce() -> T) -> Result<T, TestCaseError> {
    let begin = Instant::now();
    let answer = f();
    let took = begin.elapsed();
    prop_assert!(took < BOUND, "{what} took {took:?}");
    Ok(answer)
}

/// A valid state document with some of everything.
fn valid_document() -> Value {
    let state = StatisticsState {
        requests_finished: 7,
        requests_failed: 3,
        requests_retries: 2,
        retry_attempts: 2,
        request_retry_histogram: vec![8, 2],
        requests_with_status_code: [(200, 7), (500, 3)].into(),
        errors: [("timeout".to_owned(), 3)].into(),
        ..StatisticsState::default()
    };
    serde_json::to_value(state).expect("a state serializes")
}

/// Bytes that could be found where the state should be.
fn bytes() -> impl Strategy<Value = Vec<u8>> {
    let valid = serde_json::to_vec(&valid_document()).expect("JSON");
    let length = valid.len();
    prop_oneof![
        prop::collection::vec(any::<u8>(), 0..200),
        // A valid state cut short.
        (0..length).prop_map({
            let valid = valid.clone();
            move |end| valid[..end].to_vec()
        }),
        // A valid state with one byte changed.
        (0..length, any::<u8>()).prop_map({
            let valid = valid.clone();
            move |(at, byte)| {
                let mut changed = valid.clone();
                changed[at] = byte;
                changed
            }
        }),
        // A valid state with bytes inserted.
        (0..length, prop::collection::vec(any::<u8>(), 1..8)).prop_map(move |(at, more)| {
            let mut changed = valid.clone();
            changed.splice(at..at, more);
            changed
        }),
        hostile_document().prop_map(|document| serde_json::to_vec(&document).expect("JSON")),
        Just(b"\xef\xbb\xbf{}".to_vec()),
        Just(b"\xff\xfe".to_vec()),
        Just(Vec::new()),
        Just(b"null".to_vec()),
        Just(format!("{}0{}", "[".repeat(100_000), "]".repeat(100_000)).into_bytes()),
    ]
}

/// Documents of the state's shape (or nearly) with hostile contents.
fn hostile_document() -> impl Strategy<Value = Value> {
    let status_key = prop_oneof![
        (0u32..70_000).prop_map(|code| code.to_string()),
        prop::sample::select(vec![
            "-1", " 200", "200 ", "0x10", "2e2", "", "+200", "007", "65536"
        ])
        .prop_map(str::to_owned),
    ];
    prop_oneof![
        // Many status codes, valid or not.
        prop::collection::vec((status_key, 0u64..10), 0..50).prop_map(|codes| {
            let mut document = valid_document();
            document["requests_with_status_code"] = Value::Object(
                codes
                    .into_iter()
                    .map(|(code, n)| (code, json!(n)))
                    .collect(),
            );
            document
        }),
        // Huge maps and arrays.
        (0usize..20_000).prop_map(|kinds| {
            let mut document = valid_document();
            document["errors"] = Value::Object(
                (0..kinds)
                    .map(|kind| (format!("error {kind}"), json!(kind)))
                    .collect(),
            );
            document
        }),
        (0usize..100_000).prop_map(|retries| {
            let mut document = valid_document();
            document["request_retry_histogram"] = json!(vec![1u64; retries]);
            document
        }),
        (0usize..100_000).prop_map(|length| {
            let mut document = valid_document();
            document["retry_errors"] = json!({ "x".repeat(length): 1 });
            document
        }),
        // Unknown fields with anything in them, nested deep.
        (0usize..200).prop_map(|depth| {
            let mut nested = json!(1);
            for _ in 0..depth {
                nested = json!([nested]);
            }
            let mut document = valid_document();
            document["extra"] = nested;
            document
        }),
        // Other versions, and versions of other types.
        prop::sample::select(vec![
            json!(0),
            json!(2),
            json!(u64::MAX),
            json!(-1),
            json!("1"),
            json!(1.0),
            json!(null),
            json!(4_294_967_297_u64),
        ])
        .prop_map(|version| {
            let mut document = valid_document();
            document["version"] = version;
            document
        }),
        // A field missing, or of another type.
        (
            0usize..22,
            prop::sample::select(vec![json!(null), json!("1"), json!([]), json!({})])
        )
            .prop_map(|(field, value)| {
                let mut document = valid_document();
                let object = document.as_object_mut().expect("an object");
                let key = object.keys().nth(field).cloned().expect("a field");
                if value == json!({}) {
                    object.remove(&key);
                } else {
                    object.insert(key, value);
                }
                document
            }),
        // Not an object.
        prop::sample::select(vec![
            json!([]),
            json!(1),
            json!("state"),
            json!(true),
            json!([valid_document()])
        ]),
    ]
}

/// What the rules say `bytes` are: the state they load as, or `None` for a corrupt state.
/// A store reads JSON as a `serde_json::Value` (so nested at most 128 deep, the limit of
/// `serde_json`, even in a field the state ignores), which is then read as the state's
/// document (`StatisticsState`'s `Deserialize`: Crawlee's document, or mvx's earlier one).
fn expected(bytes: &[u8]) -> Option<StatisticsState> {
    let value: Value = serde_json::from_slice(bytes).ok()?;
    serde_json::from_value(value).ok()
}

/// The counts of a state: everything but its times and rates, which a run moves on.
fn counts(state: &StatisticsState) -> StatisticsState {
    StatisticsState {
        stats_id: None,
        requests_finished_per_minute: 0,
        requests_failed_per_minute: 0,
        crawler_started_at: None,
        crawler_last_started_at: None,
        crawler_finished_at: None,
        crawler_runtime: Duration::ZERO,
        stats_persisted_at: None,
        ..state.clone()
    }
}

/// Starts statistics on `config` with their driver on a thread of its own; the start's
/// outcome, the handle and the driver's thread.
fn start(
    config: StatsConfig,
) -> (
    Result<(), StatsError>,
    Statistics,
    std::thread::JoinHandle<()>,
) {
    let (stats, driver) = Statistics::new(config).expect("valid config");
    let driver = std::thread::spawn(move || block_on(driver));
    let started = stats.start().wait();
    (started, stats, driver)
}

/// Loads `bytes` planted by `plant` into statistics persisting to `store`, and checks the
/// outcome against the rules: the state resumes (its counts, one more request, saved and
/// read back), or it is corrupt — moved aside as it was, the start failed (or, opted in,
/// begun afresh).
fn check<S: KeyValueStore + Clone>(
    store: &S,
    bytes: &[u8],
    reset_on_corrupt: bool,
    aside: impl Fn() -> Vec<Vec<u8>>,
) -> Result<(), TestCaseError> {
    let expected = expected(bytes);
    let config = || {
        StatsConfig::default()
            .persist_to(store.clone())
            .persist_state_key(KEY)
            .reset_on_corrupt_state(reset_on_corrupt)
    };
    let (started, stats, driver) = bounded("starting", || start(config()))?;
    match (&expected, started) {
        (Some(state), Ok(())) => {
            prop_assert_eq!(counts(&stats.state()), counts(state));
            stats
                .record_request_processing_start(1u64)
                .expect("recording");
            stats
                .record_request_processing_finish(1u64)
                .expect("recording");
            let figures = bounded("calculating", || stats.calculate_blocking())?.expect("figures");
            prop_assert_eq!(
                figures.requests_finished,
                state.requests_finished.saturating_add(1)
            );
            bounded("stopping", || stats.stop().wait())?.expect("stopped");
            driver.join().expect("the driver");
            // Saved, and read back by the next start.
            let (started, again, driver) = bounded("starting again", || start(config()))?;
            started.expect("the saved state loads");
            prop_assert_eq!(
                again.state().requests_finished,
                state.requests_finished.saturating_add(1)
            );
            prop_assert_eq!(&again.state().errors, &state.errors);
            again.stop().wait().expect("stopped");
            driver.join().expect("the driver");
            prop_assert!(aside().is_empty());
        }
        (None, Err(error)) if !reset_on_corrupt => {
            prop_assert!(
                matches!(error, StatsError::CorruptState { .. }),
                "{error:?}"
            );
            prop_assert_eq!(error.reason(), StatsReason::CorruptState);
            driver.join().expect("the driver");
            prop_assert_eq!(stats.lifecycle_state(), State::Failure);
            prop_assert_eq!(aside(), vec![bytes.to_vec()]);
        }
        (None, Ok(())) if reset_on_corrupt => {
            let reported = stats.last_error().expect("the corrupt state is reported");
            prop_assert_eq!(reported.reason(), StatsReason::CorruptState);
            prop_assert_eq!(counts(&stats.state()), counts(&StatisticsState::default()));
            stats.stop().wait().expect("stopped");
            driver.join().expect("the driver");
            prop_assert_eq!(aside(), vec![bytes.to_vec()]);
        }
        (expected, started) => {
            prop_assert!(
                false,
                "the rules say {expected:?}, the start gave {started:?}"
            );
        }
    }
    Ok(())
}

/// The bytes of the files set aside in `root`'s store.
fn files_aside(root: &Path) -> Vec<Vec<u8>> {
    let Ok(entries) = std::fs::read_dir(root.join(STORE)) else {
        return Vec::new();
    };
    entries
        .map(|entry| entry.expect("an entry").path())
        .filter(|path| {
            path.file_name()
                .and_then(|name| name.to_str())
                .is_some_and(|name| name.starts_with("statistics.corrupt-"))
        })
        .map(|path| std::fs::read(path).expect("readable"))
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    /// Any bytes as the state's file: loaded as the state they are, or refused as corrupt
    /// and moved aside as they were.
    #[test]
    fn any_bytes_in_the_state_file_load_or_are_set_aside(
        bytes in bytes(),
        reset_on_corrupt in any::<bool>(),
    ) {
        let dir = tempfile::tempdir().expect("a directory");
        std::fs::create_dir_all(dir.path().join(STORE)).expect("the store");
        std::fs::write(dir.path().join(STORE).join(format!("{KEY}.json")), &bytes).expect("planted");
        let store = FileStore::new(dir.path());
        // The store alone: JSON exactly when the bytes are.
        let read = bounded("reading", || block_on(store.get(STORE, KEY)))?;
        match (serde_json::from_slice::<Value>(&bytes), read) {
            (Ok(value), Ok(Some(read))) => prop_assert_eq!(read, value),
            (Err(_), Err(StoreError::InvalidJson(_))) => {}
            (parsed, read) => prop_assert!(false, "{parsed:?} read as {read:?}"),
        }
        check(&store, &bytes, reset_on_corrupt, || files_aside(dir.path()))?;
    }

    /// Any text as the state in a memory store: the same rules.
    #[test]
    fn any_text_in_a_memory_store_loads_or_is_set_aside(
        bytes in bytes(),
        reset_on_corrupt in any::<bool>(),
    ) {
        let text = String::from_utf8_lossy(&bytes).into_owned();
        let store = MemoryStore::new();
        store.set_raw(STORE, KEY, &text);
        let aside = || {
            store
                .keys(STORE)
                .iter()
                .filter(|key| key.starts_with("statistics.corrupt-"))
                .map(|key| store.get_raw(STORE, key).expect("set aside").into_bytes())
                .collect()
        };
        check(&store, text.as_bytes(), reset_on_corrupt, aside)?;
    }
}
