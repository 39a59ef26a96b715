//! Persistence of the statistics' state: saved on stop and every `persist_interval`,
//! loaded on start, removed by `reset()`; a corrupt state is moved aside and never lost; a
//! store that fails or panics is reported. On real files in temporary directories.
#![cfg(not(loom))]

#[path = "support/store_contract.rs"]
mod store_contract;
#[path = "support/watchdog.rs"]
mod watchdog;

use std::path::{Path, PathBuf};
use std::sync::{Mutex, mpsc};
use std::time::Duration;

use futures::executor::block_on;
use mvx::State;
use mvx::stats::{
    FileStore, KeyValueStore, MemoryStore, Statistics, StatisticsState, StatsConfig, StatsError,
    StatsReason, StoreError, StoreOperation,
};
use serde_json::{Value, json};
use store_contract::check_store_contract;
use watchdog::within_guard;

/// The key every test persists under (by default each statistics have a key of their own).
const KEY: &str = "statistics";

/// Started statistics on `config`, with their driver on a thread of its own.
fn running(config: StatsConfig) -> (Statistics, std::thread::JoinHandle<()>) {
    let (stats, driver) = Statistics::new(config).unwrap();
    let driver = std::thread::spawn(move || block_on(driver));
    stats.start().wait().unwrap();
    (stats, driver)
}

fn stop(stats: Statistics, driver: std::thread::JoinHandle<()>) {
    stats.stop().wait().unwrap();
    driver.join().unwrap();
}

/// `finished` requests that finish and `failed` that fail, with status codes.
fn record(stats: &Statistics, first_id: u64, finished: u64, failed: u64) {
    for id in first_id..first_id + finished + failed {
        stats.record_request_processing_start(id).unwrap();
        if id < first_id + finished {
            stats.register_status_code(200).unwrap();
            stats.record_request_processing_finish(id).unwrap();
        } else {
            stats.register_status_code(500).unwrap();
            stats.register_error("server error").unwrap();
            stats.record_request_processing_failure(id).unwrap();
        }
    }
}

fn state_file(root: &Path) -> PathBuf {
    root.join("default").join("statistics.json")
}

fn read_state(root: &Path) -> StatisticsState {
    serde_json::from_slice(&std::fs::read(state_file(root)).unwrap()).unwrap()
}

/// The files in store `default`, by name.
fn files(root: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(root.join("default"))
        .unwrap()
        .map(|entry| entry.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    names
}

#[test]
fn the_file_and_memory_stores_keep_the_store_contract() {
    let dir = tempfile::tempdir().unwrap();
    let files = FileStore::new(dir.path());
    block_on(check_store_contract(&files, "contract"));
    // Every write went through a temporary file that is gone.
    let left: Vec<_> = std::fs::read_dir(dir.path().join("contract"))
        .unwrap()
        .map(|entry| entry.unwrap().file_name())
        .collect();
    assert!(left.is_empty(), "{left:?}");
    block_on(check_store_contract(&MemoryStore::new(), "contract"));
    let crawlee_layout = tempfile::tempdir().unwrap();
    block_on(check_store_contract(
        &FileStore::crawlee(crawlee_layout.path()),
        "contract",
    ));

    // Names that cannot be file names are refused before anything is touched.
    let refused = block_on(files.set("../escape", "k", &json!(1))).unwrap_err();
    assert!(matches!(
        refused,
        StoreError::InvalidName {
            what: "store name",
            ..
        }
    ));
    assert_eq!(refused.reason(), StatsReason::InvalidArgument);
    let refused = block_on(files.get("default", "a/b")).unwrap_err();
    assert!(matches!(
        refused,
        StoreError::InvalidName { what: "key", .. }
    ));
    assert!(!dir.path().join("..").join("escape").exists());
}

#[test]
fn the_state_survives_a_restart_on_a_file_store() {
    within_guard(|| {
        let dir = tempfile::tempdir().unwrap();
        let config = || {
            StatsConfig::default()
                .persist_to(FileStore::new(dir.path()))
                .persist_state_key(KEY)
        };

        let (stats, driver) = running(config());
        record(&stats, 0, 7, 3);
        stats.record_request_processing_start(99u64).unwrap(); // in progress at the stop
        stop(stats.clone(), driver);
        let first = stats.calculate_blocking().unwrap();

        // The file is the state, in its documented JSON shape: Crawlee's.
        let json: Value =
            serde_json::from_slice(&std::fs::read(state_file(dir.path())).unwrap()).unwrap();
        assert_eq!(json["mvx"]["version"], 2);
        assert_eq!(json["requestsFinished"], 7);
        assert_eq!(json["requestsFailed"], 3);
        assert_eq!(json["requestsTotal"], 10);
        assert_eq!(json["statsId"], json!(stats.id()));
        assert_eq!(json["requestsWithStatusCode"], json!({"200": 7, "500": 3}));
        assert_eq!(json["errors"], json!({"server error": 3}));
        assert!(json["statsPersistedAt"].as_str().unwrap().ends_with('Z'));
        assert!(json["crawlerFinishedAt"].is_string());
        let saved = read_state(dir.path());
        assert_eq!(stats.state().stats_persisted_at, saved.stats_persisted_at);

        // A new process on the same store resumes the counts.
        let (stats, driver) = running(config());
        let resumed = stats.calculate_blocking().unwrap();
        assert_eq!(resumed.requests_finished, 7);
        assert_eq!(resumed.requests_failed, 3);
        assert_eq!(
            resumed.requests_in_progress, 0,
            "in-progress requests are not persisted"
        );
        assert!(
            resumed.crawler_runtime >= first.crawler_runtime,
            "the runtime goes on from the saved one"
        );
        assert_eq!(stats.state().crawler_started_at, saved.crawler_started_at);
        assert_eq!(stats.state().crawler_finished_at, None);
        record(&stats, 100, 1, 1);
        stats.record_request_processing_finish(99u64).unwrap(); // started before the restart
        stop(stats.clone(), driver);
        let saved = read_state(dir.path());
        assert_eq!((saved.requests_finished, saved.requests_failed), (8, 4));
        assert_eq!(saved.requests_unmatched, 1);
        assert_eq!(saved.requests_with_status_code[&200], 8);
    });
}

/// A store that reports every successful save on a channel.
#[derive(Debug)]
struct Reporting<S> {
    inner: S,
    saved: Mutex<mpsc::Sender<Value>>,
}

impl<S: KeyValueStore> KeyValueStore for Reporting<S> {
    async fn get(&self, store: &str, key: &str) -> Result<Option<Value>, StoreError> {
        self.inner.get(store, key).await
    }

    async fn set(&self, store: &str, key: &str, value: &Value) -> Result<(), StoreError> {
        self.inner.set(store, key, value).await?;
        let _ = self.saved.lock().unwrap().send(value.clone());
        Ok(())
    }

    async fn delete(&self, store: &str, key: &str) -> Result<bool, StoreError> {
        self.inner.delete(store, key).await
    }

    async fn rename(&self, store: &str, from: &str, to: &str) -> Result<bool, StoreError> {
        self.inner.rename(store, from, to).await
    }
}

#[test]
fn the_state_is_saved_every_persist_interval() {
    within_guard(|| {
        let dir = tempfile::tempdir().unwrap();
        let (saved_tx, saved) = mpsc::channel();
        let store = Reporting {
            inner: FileStore::new(dir.path()),
            saved: Mutex::new(saved_tx),
        };
        let config = StatsConfig::default()
            .persist_to(store)
            .persist_state_key(KEY)
            .persist_interval(Duration::from_millis(20));
        let (stats, driver) = running(config);
        record(&stats, 0, 5, 0);
        stats.calculate_blocking().unwrap();
        // A save whose snapshot was taken before the barrier may miss some calls; every
        // later one has them all.
        let next = loop {
            let value = saved.recv().unwrap();
            if value["requestsFinished"] == 5 {
                break value;
            }
            assert!(value["requestsFinished"].as_u64() < Some(5));
        };
        assert_eq!(read_state(dir.path()).requests_finished, 5);
        let another = saved.recv().unwrap();
        let persisted_at = |value: Value| {
            serde_json::from_value::<StatisticsState>(value)
                .unwrap()
                .stats_persisted_at
        };
        assert!(persisted_at(another) >= persisted_at(next));
        stop(stats, driver);
        let last = saved.try_iter().last().expect("the stop saves");
        assert!(last["crawlerFinishedAt"].is_string());
        // Nothing is saved after the stop.
        assert!(saved.try_recv().is_err());
    });
}

#[test]
fn reset_removes_the_persisted_state() {
    within_guard(|| {
        let dir = tempfile::tempdir().unwrap();
        let config = || {
            StatsConfig::default()
                .persist_to(FileStore::new(dir.path()))
                .persist_state_key(KEY)
        };
        let (stats, driver) = running(config());
        record(&stats, 0, 4, 1);
        stop(stats.clone(), driver);
        assert!(state_file(dir.path()).exists());

        stats.reset_blocking().unwrap();
        assert!(!state_file(dir.path()).exists());
        let figures = stats.calculate_blocking().unwrap();
        assert_eq!(figures.requests_total, 0);

        // Resetting again finds nothing to remove, and that is fine.
        stats.reset_blocking().unwrap();
        let (stats, driver) = running(config());
        assert_eq!(stats.calculate_blocking().unwrap().requests_total, 0);
        stop(stats, driver);
    });
}

/// Writes `bytes` as the persisted state of store `default`.
fn plant(root: &Path, bytes: &[u8]) {
    std::fs::create_dir_all(root.join("default")).unwrap();
    std::fs::write(state_file(root), bytes).unwrap();
}

/// The name of the one corrupt file set aside, and its bytes.
fn set_aside(root: &Path) -> (String, Vec<u8>) {
    let names = files(root);
    let aside: Vec<_> = names
        .iter()
        .filter(|name| name.starts_with("statistics.corrupt-") && name.ends_with(".json"))
        .collect();
    assert_eq!(aside.len(), 1, "{names:?}");
    let bytes = std::fs::read(root.join("default").join(aside[0])).unwrap();
    (aside[0].clone(), bytes)
}

#[test]
fn a_corrupt_state_fails_the_start_and_is_moved_aside() {
    within_guard(|| {
        let dir = tempfile::tempdir().unwrap();
        let garbage = b"{\"version\": 1, \"requests_fini";
        plant(dir.path(), garbage);
        let config = || {
            StatsConfig::default()
                .persist_to(FileStore::new(dir.path()))
                .persist_state_key(KEY)
        };

        let (stats, driver) = Statistics::new(config()).unwrap();
        let driver = std::thread::spawn(move || block_on(driver));
        let error = stats.start().wait().unwrap_err();
        let StatsError::CorruptState {
            store,
            key,
            moved_to,
            ..
        } = &error
        else {
            panic!("{error:?}");
        };
        assert_eq!((store.as_str(), key.as_str()), ("default", "statistics"));
        assert_eq!(error.reason(), StatsReason::CorruptState);
        assert!(
            mvx::error::Report(&error)
                .to_string()
                .contains("the stored value is not valid JSON"),
            "{error}"
        );
        driver.join().unwrap();
        assert_eq!(stats.lifecycle_state(), State::Failure);

        // Moved, byte for byte; nothing is left under the key.
        let (name, bytes) = set_aside(dir.path());
        assert_eq!(name, format!("{moved_to}.json"));
        assert_eq!(bytes, garbage);
        assert!(!state_file(dir.path()).exists());

        // The next start finds no state and begins afresh; the corrupt one stays.
        let (stats, driver) = running(config());
        record(&stats, 0, 1, 0);
        stop(stats, driver);
        assert_eq!(read_state(dir.path()).requests_finished, 1);
        assert_eq!(set_aside(dir.path()).1, garbage);
    });
}

#[test]
fn with_the_opt_in_a_corrupt_state_is_moved_aside_and_collection_starts_afresh() {
    within_guard(|| {
        for (planted, why) in [
            (
                json!({"version": 1, "requests_finished": "many"}),
                "invalid type",
            ),
            (json!({"version": 99}), "state version 99 is not supported"),
            (json!([1, 2, 3]), "the state is not a JSON object"),
            (
                json!({"requestsFinished": -1}),
                "requestsFinished: expected a count",
            ),
        ] {
            let dir = tempfile::tempdir().unwrap();
            let bytes = serde_json::to_vec(&planted).unwrap();
            plant(dir.path(), &bytes);
            let config = StatsConfig::default()
                .persist_to(FileStore::new(dir.path()))
                .persist_state_key(KEY)
                .reset_on_corrupt_state(true);
            let (stats, driver) = running(config);
            let error = stats.last_error().expect("the corrupt state is reported");
            assert_eq!(error.reason(), StatsReason::CorruptState);
            let report = mvx::error::Report(&error).to_string();
            assert!(report.contains(why), "{report}");
            assert_eq!(stats.calculate_blocking().unwrap().requests_total, 0);
            record(&stats, 0, 2, 0);
            stop(stats, driver);
            assert_eq!(set_aside(dir.path()).1, bytes, "moved as it was");
            assert_eq!(read_state(dir.path()).requests_finished, 2);
        }
    });
}

#[test]
fn an_unreadable_state_fails_the_start_and_is_left_alone() {
    within_guard(|| {
        let dir = tempfile::tempdir().unwrap();
        // A directory where the file should be: it exists, and cannot be read as a file.
        std::fs::create_dir_all(state_file(dir.path())).unwrap();
        let config = StatsConfig::default()
            .persist_to(FileStore::new(dir.path()))
            .persist_state_key(KEY)
            .reset_on_corrupt_state(true);
        let (stats, driver) = Statistics::new(config).unwrap();
        let driver = std::thread::spawn(move || block_on(driver));
        let error = stats.start().wait().unwrap_err();
        assert!(
            matches!(
                &error,
                StatsError::Store {
                    operation: StoreOperation::Load,
                    source: StoreError::Io {
                        operation: "reading",
                        ..
                    },
                    ..
                }
            ),
            "{error:?}"
        );
        assert_eq!(error.reason(), StatsReason::StoreFailed);
        assert!(
            error.to_string().starts_with(
                "could not load the statistics state under key \"statistics\" of store \"default\""
            ),
            "{error}"
        );
        driver.join().unwrap();
        assert!(state_file(dir.path()).is_dir(), "left as it was");
        assert_eq!(files(dir.path()), ["statistics.json"]);
    });
}

/// A store whose writes panic.
#[derive(Debug, Default)]
struct Panicking(MemoryStore);

impl KeyValueStore for Panicking {
    async fn get(&self, store: &str, key: &str) -> Result<Option<Value>, StoreError> {
        self.0.get(store, key).await
    }

    async fn set(&self, _: &str, _: &str, _: &Value) -> Result<(), StoreError> {
        panic!("the disk caught fire")
    }

    async fn delete(&self, store: &str, key: &str) -> Result<bool, StoreError> {
        self.0.delete(store, key).await
    }

    async fn rename(&self, store: &str, from: &str, to: &str) -> Result<bool, StoreError> {
        self.0.rename(store, from, to).await
    }
}

#[test]
fn a_panicking_store_is_reported_and_the_statistics_go_on() {
    within_guard(|| {
        let config = StatsConfig::default().persist_to(Panicking::default());
        let (stats, driver) = running(config);
        record(&stats, 0, 3, 0);
        let error = stats.stop().wait().unwrap_err();
        match &error {
            StatsError::Store {
                operation: StoreOperation::Save,
                source: StoreError::Panicked(cause),
                ..
            } => assert_eq!(cause.panic_message(), Some("the disk caught fire")),
            other => panic!("{other:?}"),
        }
        driver.join().unwrap();
        assert_eq!(stats.lifecycle_state(), State::Stopped);
        assert_eq!(stats.calculate_blocking().unwrap().requests_finished, 3);
    });
}

#[test]
fn bad_configurations_are_refused_with_the_field_named() {
    let cases = [
        (StatsConfig::default().persistence_enabled(true), "store"),
        (
            StatsConfig::default().persist_interval(Duration::ZERO),
            "persist_interval",
        ),
        (StatsConfig::default().store_name("a/b"), "store_name"),
        (
            StatsConfig::default().persist_state_key(""),
            "persist_state_key",
        ),
        (
            StatsConfig::default().persist_state_key("k".repeat(171)),
            "persist_state_key",
        ),
    ];
    for (config, field) in cases {
        match Statistics::new(config) {
            Err(error @ StatsError::InvalidConfig { .. }) => {
                assert!(matches!(error, StatsError::InvalidConfig { field: f, .. } if f == field));
                assert_eq!(error.reason(), StatsReason::InvalidArgument);
            }
            other => panic!("{field}: {other:?}"),
        }
    }
    // A store without persistence enabled is kept but not used.
    let config = StatsConfig::default()
        .persist_to(MemoryStore::new())
        .persistence_enabled(false);
    assert!(config.validate().is_ok());
}
