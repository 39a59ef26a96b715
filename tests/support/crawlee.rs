//! Crawlee for Python (`crawlee` 1.11 from PyPI), run on the same scripted requests as mvx:
//! its `crawlee.statistics.Statistics`, driven by a Python script, its clock scripted too.
//! `.ci/test` installs it; a missing package fails the test with the command that installs
//! it.
//!
//! Include it with `#[path = "support/crawlee.rs"] mod crawlee;`.

#![allow(dead_code)] // Each test binary uses the part it needs.

use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};

use serde_json::Value;

/// The version the comparisons are made with.
pub const CRAWLEE_VERSION: &str = "1.11.0";

/// One scripted call, at a time in microseconds from the start of the script.
#[derive(Clone, Debug)]
pub enum Op {
    /// `record_request_processing_start(id)` at `at` µs (again: a retry).
    Start { id: String, at: u64 },
    /// `record_request_processing_finish(id)` at `at` µs.
    Finish { id: String, at: u64 },
    /// `record_request_processing_failure(id)` at `at` µs.
    Fail { id: String, at: u64 },
    /// `register_status_code(code)`.
    Status(u16),
}

/// `ops` as the script reads them.
pub fn ops_json(ops: &[Op]) -> Value {
    Value::Array(
        ops.iter()
            .map(|op| match op {
                Op::Start { id, at } => serde_json::json!(["start", id, at]),
                Op::Finish { id, at } => serde_json::json!(["finish", id, at]),
                Op::Fail { id, at } => serde_json::json!(["fail", id, at]),
                Op::Status(code) => serde_json::json!(["status", code, 0]),
            })
            .collect(),
    )
}

/// Runs the script's command `command` with `input` as JSON on its standard input, in
/// `storage` (`CRAWLEE_STORAGE_DIR`, with the purge on start off) if given; its output,
/// parsed as JSON.
pub fn crawlee(command: &str, input: &Value, storage: Option<&Path>) -> Value {
    let mut python = Command::new("python3");
    python
        .arg("-c")
        .arg(SCRIPT)
        .arg(command)
        .env("CRAWLEE_PURGE_ON_START", "false")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    match storage {
        Some(storage) => python.env("CRAWLEE_STORAGE_DIR", storage),
        // Nothing is persisted; a directory nobody reads all the same.
        None => python.env(
            "CRAWLEE_STORAGE_DIR",
            std::env::temp_dir().join("mvx-crawlee-unused"),
        ),
    };
    let mut child = python.spawn().unwrap_or_else(|error| {
        panic!(
            "python3 is required for this test and could not be run ({error}); install it and \
             then `python3 -m pip install crawlee=={CRAWLEE_VERSION}` (.ci/test does)"
        )
    });
    let mut stdin = child.stdin.take().expect("stdin");
    let input = input.to_string();
    // Written from a thread of its own: a script that prints while it reads must not
    // deadlock on a full pipe.
    let writer = std::thread::spawn(move || {
        let _ = stdin.write_all(input.as_bytes());
    });
    let output = child.wait_with_output().expect("python3 ran");
    writer.join().expect("stdin writer");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        !stderr.contains("No module named 'crawlee'"),
        "the Python package crawlee is required for this test: run \
         `python3 -m pip install crawlee=={CRAWLEE_VERSION}` (.ci/test does)"
    );
    assert!(
        output.status.success(),
        "the crawlee script failed: {stderr}"
    );
    let stdout = String::from_utf8(output.stdout).expect("UTF-8 output");
    serde_json::from_str(&stdout).unwrap_or_else(|error| panic!("{error}: {stdout}"))
}

/// The Python side. Commands (the first argument), input on standard input as JSON,
/// output one JSON value:
///
/// - `version`: crawlee's version;
/// - `script`: runs `ops` on statistics without persistence; their state as Crawlee
///   persists it, and `str(calculate())`;
/// - `rates`: for each `[finished, failed, runtime µs]`, `calculate()`'s per-minute rates;
/// - `persist`: opens statistics persisted to the default key-value store (under `key` if
///   given, else their own), reports what they loaded — the state, the runtime Crawlee took
///   from it, and the runtime of the last run as the stored document has it — runs `ops`,
///   and saves on exit; the key and the state saved;
/// - `reset`: opens statistics on `key` and resets them (Crawlee stores "no value");
/// - `keys`: opens and closes two persisted statistics; their keys and the files written;
/// - `log`: opens statistics with `log_interval` one hour, records nothing, closes them;
///   the messages they logged.
pub const SCRIPT: &str = r#"
import asyncio, json, logging, os, sys, types
from datetime import datetime, timedelta, timezone

import crawlee
import crawlee.statistics._statistics as statistics_module
from crawlee.statistics import Statistics

command = sys.argv[1]
data = json.loads(sys.stdin.read() or "null")

# The scripted clock: every request's duration comes from the script, not from the machine.
clock = [0]
statistics_module.time = types.SimpleNamespace(perf_counter_ns=lambda: clock[0])

quiet = logging.getLogger("quiet")
quiet.addHandler(logging.NullHandler())
quiet.propagate = False


def open_statistics(**kwargs):
    kwargs.setdefault("periodic_message_logger", quiet)
    kwargs.setdefault("log_interval", timedelta(hours=1))
    return Statistics.with_default_state(**kwargs)


def run(statistics, ops):
    for op, id, at in ops:
        clock[0] = at * 1000
        if op == "start":
            statistics.record_request_processing_start(request_id_or_key=id)
        elif op == "finish":
            statistics.record_request_processing_finish(request_id_or_key=id)
        elif op == "fail":
            statistics.record_request_processing_failure(request_id_or_key=id)
        elif op == "status":
            statistics.register_status_code(code=id)


def dump(statistics):
    return statistics.state.model_dump(mode="json", by_alias=True)


def micros(delta):
    return (delta.days * 86400 + delta.seconds) * 1000000 + delta.microseconds


async def main():
    if command == "version":
        return crawlee.__version__
    if command == "script":
        statistics = open_statistics()
        async with statistics:
            run(statistics, data["ops"])
            return {"state": dump(statistics), "final": json.loads(str(statistics.calculate()))}
    if command == "rates":
        statistics = open_statistics()
        rates = []
        async with statistics:
            start = datetime(2026, 1, 1, tzinfo=timezone.utc)
            for finished, failed, runtime in data:
                state = statistics.state
                state.requests_finished = finished
                state.requests_failed = failed
                state.crawler_last_started_at = start
                state.crawler_finished_at = start + timedelta(microseconds=runtime)
                figures = statistics.calculate()
                rates.append([figures.requests_finished_per_minute, figures.requests_failed_per_minute])
            statistics.state.crawler_finished_at = None
        return rates
    if command == "persist":
        statistics = open_statistics(persistence_enabled=True, persist_state_key=data.get("key"))
        key = statistics._state._persist_state_key
        path = os.path.join(os.environ["CRAWLEE_STORAGE_DIR"], "key_value_stores", "default", key)
        stored = None
        if os.path.exists(path) and os.path.getsize(path) > 0:
            with open(path) as file:
                stored = json.load(file)
        async with statistics:
            loaded = dump(statistics)
            runtime_taken = micros(statistics.state._runtime_offset)
            run(statistics, data["ops"])
        last_run = None
        if stored and stored.get("crawlerFinishedAt") and stored.get("crawlerLastStartTimestamp"):
            last_run = micros(
                datetime.fromisoformat(stored["crawlerFinishedAt"].replace("Z", "+00:00"))
                - datetime.fromisoformat(stored["crawlerLastStartTimestamp"].replace("Z", "+00:00"))
            )
        return {
            "key": key,
            "loaded": loaded,
            "runtime_taken_us": runtime_taken,
            "last_run_us": last_run,
            "saved": dump(statistics),
        }
    if command == "reset":
        statistics = open_statistics(persistence_enabled=True, persist_state_key=data["key"])
        async with statistics:
            pass
        await statistics.reset()
        return {"key": data["key"]}
    if command == "keys":
        first = open_statistics(persistence_enabled=True)
        second = open_statistics(persistence_enabled=True)
        async with first:
            pass
        async with second:
            pass
        directory = os.path.join(os.environ["CRAWLEE_STORAGE_DIR"], "key_value_stores", "default")
        return {
            "keys": [first._state._persist_state_key, second._state._persist_state_key],
            "ids": [first.state.stats_id, second.state.stats_id],
            "files": sorted(os.listdir(directory)),
        }
    if command == "log":
        records = []

        class Keep(logging.Handler):
            def emit(self, record):
                records.append(record.getMessage())

        logger = logging.getLogger("kept")
        logger.addHandler(Keep())
        logger.setLevel(logging.INFO)
        logger.propagate = False
        statistics = open_statistics(periodic_message_logger=logger)
        async with statistics:
            await asyncio.sleep(0.05)
        return records
    raise SystemExit(f"unknown command {command}")


print(json.dumps(asyncio.run(main())))
"#;
