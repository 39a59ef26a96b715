//! Resurrection: a process recording statistics to a file store is killed with SIGKILL
//! mid-run, started again on the same store, and resumes the counts from the last state it
//! persisted.
//!
//! The child process is this test binary, re-executed with `MVX_RESURRECTION_STORE` set:
//! the same test function then runs the child's part. The child records requests without
//! end and prints a line each time its state is saved; the parent kills it after a few
//! saves, reads the state file, and checks what the next child loads.
#![cfg(not(loom))]
#![cfg(unix)]

use std::io::{BufRead, BufReader, Lines, Write};
use std::path::Path;
use std::process::{Child, ChildStdout, Command, Stdio};
use std::time::{Duration, Instant};

use mvx::stats::{
    FileStore, KeyValueStore, ReportTo, Statistics, StatisticsState, StatsConfig, StoreError,
};
use serde_json::Value;

const CHILD_STORE: &str = "MVX_RESURRECTION_STORE";
const TEST_NAME: &str = "counts_resume_from_the_last_persisted_state_after_sigkill";
/// The key of the state, the same in every process.
const KEY: &str = "statistics";

#[test]
fn counts_resume_from_the_last_persisted_state_after_sigkill() {
    if let Ok(storage) = std::env::var(CHILD_STORE) {
        child(Path::new(&storage));
    }
    let storage = tempfile::tempdir().unwrap();

    // First life: killed after three saves.
    let (mut first, mut lines) = spawn_child(storage.path());
    assert_eq!(next_line(&mut lines, "loaded"), (0, 0), "a fresh store");
    let mut seen = (0, 0);
    for _ in 0..3 {
        let saved = next_line(&mut lines, "saved");
        assert!(saved >= seen, "saves only grow: {saved:?} after {seen:?}");
        seen = saved;
    }
    first.kill(); // SIGKILL: no stop, no final save
    let persisted = read_state(storage.path());
    check_consistent(&persisted);
    let at_kill = (persisted.requests_finished, persisted.requests_failed);
    assert!(
        at_kill >= seen,
        "the file holds the last save: {at_kill:?}, {seen:?}"
    );
    assert!(at_kill.0 > 0);
    assert!(persisted.crawler_finished_at.is_none(), "it never stopped");

    // Second life: loads exactly what the first one persisted last, and goes on from it.
    let (mut second, mut lines) = spawn_child(storage.path());
    assert_eq!(next_line(&mut lines, "loaded"), at_kill);
    let mut saved = next_line(&mut lines, "saved");
    while saved == at_kill {
        saved = next_line(&mut lines, "saved");
    }
    assert!(saved > at_kill, "{saved:?} after {at_kill:?}");
    second.kill();
    let resumed = read_state(storage.path());
    check_consistent(&resumed);
    assert!((resumed.requests_finished, resumed.requests_failed) >= saved);
    assert!(
        resumed.crawler_runtime > persisted.crawler_runtime,
        "the runtime adds up over lives"
    );
    assert_eq!(resumed.crawler_started_at, persisted.crawler_started_at);

    // And this process, on the same store, sees the same counts.
    let config = StatsConfig::default()
        .persist_to(FileStore::new(storage.path()))
        .persist_state_key(KEY);
    let (stats, driver) = Statistics::new(config).unwrap();
    let driver = std::thread::spawn(move || futures::executor::block_on(driver));
    stats.start().wait().unwrap();
    let figures = stats.calculate_blocking().unwrap();
    assert_eq!(figures.requests_finished, resumed.requests_finished);
    assert_eq!(figures.requests_failed, resumed.requests_failed);
    stats.stop().wait().unwrap();
    driver.join().unwrap();
}

/// A child process, killed when dropped, so that a failing test leaves none behind.
struct KilledOnDrop(Child);

impl KilledOnDrop {
    /// SIGKILL, and reaping.
    fn kill(&mut self) {
        self.0.kill().unwrap();
        self.0.wait().unwrap();
    }
}

impl Drop for KilledOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn spawn_child(storage: &Path) -> (KilledOnDrop, Lines<BufReader<ChildStdout>>) {
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args(["--exact", TEST_NAME, "--nocapture", "--test-threads=1"])
        .env(CHILD_STORE, storage)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let lines = BufReader::new(child.stdout.take().unwrap()).lines();
    (KilledOnDrop(child), lines)
}

/// The next line `<word> finished=<n> failed=<n>` of the child, as `(finished, failed)`.
fn next_line(lines: &mut Lines<BufReader<ChildStdout>>, word: &str) -> (u64, u64) {
    for line in lines.by_ref() {
        let line = line.unwrap();
        // The test harness may have printed the test's name first, on the same line.
        let marker = format!("{word} finished=");
        let Some(at) = line.find(&marker) else {
            continue;
        };
        let rest = &line[at + word.len() + 1..];
        let numbers: Vec<u64> = rest
            .split(' ')
            .map(|pair| pair.split_once('=').unwrap().1.parse().unwrap())
            .collect();
        return (numbers[0], numbers[1]);
    }
    panic!("the child ended before printing a {word:?} line");
}

fn read_state(storage: &Path) -> StatisticsState {
    let path = storage.join("default").join("statistics.json");
    serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap()
}

/// A request is started, gets a status code, then ends: a save falls between two calls,
/// so at most the request in progress has its status code and no end yet.
fn check_consistent(state: &StatisticsState) {
    let ended = state.requests_finished + state.requests_failed;
    let codes: u64 = state.requests_with_status_code.values().sum();
    assert!(codes == ended || codes == ended + 1, "{state:?}");
    assert_eq!(state.request_retry_histogram.iter().sum::<u64>(), ended);
    assert_eq!(
        state.errors.get("server error").copied().unwrap_or(0),
        state.requests_failed
    );
}

/// A file store that prints `saved finished=<n> failed=<n>` after each save.
#[derive(Debug)]
struct Announcing(FileStore);

impl KeyValueStore for Announcing {
    async fn get(&self, store: &str, key: &str) -> Result<Option<Value>, StoreError> {
        self.0.get(store, key).await
    }

    async fn set(&self, store: &str, key: &str, value: &Value) -> Result<(), StoreError> {
        self.0.set(store, key, value).await?;
        say(&format!(
            "saved finished={} failed={}",
            value["requestsFinished"], value["requestsFailed"]
        ));
        Ok(())
    }

    async fn delete(&self, store: &str, key: &str) -> Result<bool, StoreError> {
        self.0.delete(store, key).await
    }

    async fn rename(&self, store: &str, from: &str, to: &str) -> Result<bool, StoreError> {
        self.0.rename(store, from, to).await
    }
}

fn say(line: &str) {
    let mut stdout = std::io::stdout().lock();
    writeln!(stdout, "{line}").unwrap();
    stdout.flush().unwrap();
}

/// The child: records requests until it is killed (or, should the parent be gone, for a
/// minute at most).
fn child(storage: &Path) -> ! {
    let config = StatsConfig::default()
        .persist_to(Announcing(FileStore::new(storage)))
        .persist_state_key(KEY)
        .report_to(ReportTo::Off)
        .persist_interval(Duration::from_millis(20));
    let (stats, driver) = Statistics::new(config).unwrap();
    std::thread::spawn(move || futures::executor::block_on(driver));
    stats.start().wait().unwrap();
    let loaded = stats.calculate_blocking().unwrap();
    say(&format!(
        "loaded finished={} failed={}",
        loaded.requests_finished, loaded.requests_failed
    ));
    let deadline = Instant::now() + Duration::from_secs(60);
    for id in 0u64.. {
        stats.record_request_processing_start(id).unwrap();
        if id % 4 == 0 {
            stats.register_status_code(500).unwrap();
            stats.register_error("server error").unwrap();
            stats.record_request_processing_failure(id).unwrap();
        } else {
            stats.register_status_code(200).unwrap();
            stats.record_request_processing_finish(id).unwrap();
        }
        if id % 16 == 0 {
            // The scenario: a process serving requests at a steady pace, not as fast as it
            // can, so that the parent's kill lands between saves with a few recorded since.
            std::thread::sleep(Duration::from_millis(1));
            if Instant::now() > deadline {
                break;
            }
        }
    }
    std::process::exit(1)
}
