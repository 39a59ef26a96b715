//! The agent example as a real process: it serves its metrics and their list over HTTP
//! while it runs; SIGTERM and SIGINT end it cleanly, with its sinks and recorders flushed,
//! and a second signal during the stop is harmless.
//!
//! The child is the example binary `target/<profile>/examples/agent`, which `cargo test`
//! builds with the other examples (it needs the `signals` and `http` features: `cargo test
//! --all-features`). Running this test file alone (`--test agent_process`) does not build
//! examples: build it first with `cargo build --all-features --example agent`.
#![cfg(all(not(loom), unix))]

#[path = "support/http_client.rs"]
mod http_client;
#[path = "support/watchdog.rs"]
mod watchdog;

use std::io::{BufRead, BufReader, Read};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;

use watchdog::{GUARD, wait_until};

fn example_binary() -> PathBuf {
    let test_binary = std::env::current_exe().expect("the test binary's path");
    // target/<profile>/deps/agent_process-<hash> → target/<profile>/examples/agent
    let profile_dir = test_binary
        .parent()
        .and_then(|deps| deps.parent())
        .expect("the test binary lives in target/<profile>/deps");
    let binary = profile_dir.join("examples").join("agent");
    assert!(
        binary.exists(),
        "{} is missing: `cargo test --all-features` builds it; alone, run \
         `cargo build --all-features --example agent` first",
        binary.display()
    );
    binary
}

/// A child process that is killed if the test lets go of it early (a failed assertion),
/// so that no agent outlives its test.
struct KillOnDrop(Option<Child>);

impl KillOnDrop {
    fn get(&self) -> &Child {
        self.0.as_ref().expect("the child is still ours")
    }
}

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        if let Some(mut child) = self.0.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// The child, the lines it prints (read on a thread of their own), and the address its
/// metrics server listens on.
struct Agent {
    child: KillOnDrop,
    lines: mpsc::Receiver<String>,
    server: SocketAddr,
}

/// The server's address in `agent: metrics at http://<addr>/metrics, list at
/// http://<addr>/api/metrics`.
fn server_address(line: &str) -> SocketAddr {
    let rest = line
        .strip_prefix("agent: metrics at http://")
        .unwrap_or_else(|| panic!("unexpected first line {line:?}"));
    let (addr, rest) = rest.split_once("/metrics, list at http://").expect(line);
    assert_eq!(rest, format!("{addr}/api/metrics"), "{line}");
    addr.parse().expect(line)
}

impl Agent {
    /// Starts the example and waits until it says where it serves and that it is ready.
    fn start() -> Self {
        let mut child = KillOnDrop(Some(
            Command::new(example_binary())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .expect("the agent example starts"),
        ));
        let stdout = child.0.as_mut().unwrap().stdout.take().unwrap();
        let (line_tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                let _ = line_tx.send(line);
            }
        });
        let serving = lines.recv_timeout(GUARD).expect("the agent printed a line");
        let server = server_address(&serving);
        let ready = lines.recv_timeout(GUARD).expect("the agent printed a line");
        assert_eq!(ready, "agent: ready");
        Self {
            child,
            lines,
            server,
        }
    }

    fn signal(&self, signal: i32) {
        // SAFETY: kill(2) on our own child's pid.
        let sent = unsafe { libc::kill(self.child.get().id() as i32, signal) };
        assert_eq!(sent, 0, "kill({}, {signal})", self.child.get().id());
    }

    /// Waits for the exit; returns whether it succeeded, its remaining output and stderr.
    fn finish(mut self) -> (bool, Vec<String>, String) {
        let (status_tx, status_rx) = mpsc::channel();
        let mut child = self.child.0.take().expect("the child is still ours");
        let pid = child.id() as i32;
        let mut stderr = child.stderr.take().unwrap();
        let waiter = std::thread::spawn(move || {
            let status = child.wait();
            let _ = status_tx.send(());
            status
        });
        if status_rx.recv_timeout(GUARD).is_err() {
            // SAFETY: kill(2) on our own child's pid; the waiter thread then reaps it.
            unsafe { libc::kill(pid, libc::SIGKILL) };
            panic!("the agent did not exit within {GUARD:?} of the signal");
        }
        let status = waiter.join().unwrap().expect("waited for the agent");
        let mut errors = String::new();
        stderr.read_to_string(&mut errors).unwrap();
        let lines = std::iter::from_fn(|| self.lines.recv_timeout(GUARD).ok()).collect();
        (status.success(), lines, errors)
    }
}

/// The figures of the final line: (jobs run, recorder accepted, applied, ok, failed,
/// pending, log accepted, written, pending).
fn figures(line: &str) -> Vec<u64> {
    line.split(|c: char| !c.is_ascii_digit())
        .filter(|part| !part.is_empty())
        .map(|part| part.parse().unwrap())
        .collect()
}

/// `last` is the example's own line: SIGINT is a clean stop; after SIGTERM `run()` returns
/// `ReceivedSignal`, as metricq's does, which the example takes as its normal end.
fn assert_flushed_and_clean(lines: &[String], last: &str) {
    assert_eq!(lines.len(), 2, "{lines:?}");
    assert_eq!(lines[1], last);
    let numbers = figures(&lines[0]);
    let [
        run,
        accepted,
        applied,
        ok,
        failed,
        pending,
        logged,
        written,
        log_pending,
    ] = numbers[..]
    else {
        panic!("unexpected final line {:?}", lines[0]);
    };
    assert!(run >= 10, "{lines:?}");
    assert!(failed > 0, "every tenth job fails: {lines:?}");
    assert_eq!((accepted, applied, pending), (run, run, 0), "{lines:?}");
    assert_eq!(ok + failed, run, "{lines:?}");
    assert_eq!(
        (logged, written, log_pending),
        (failed, failed, 0),
        "{lines:?}"
    );
}

/// The running agent answers a scrape of `/metrics` with its metrics, described, and
/// `/api/metrics` with their list and metadata, as a real HTTP client asks.
fn scrape(agent: &Agent) {
    let scraped = http_client::get(agent.server, "/metrics").expect("scrape /metrics");
    assert_eq!(scraped.status, 200);
    assert_eq!(
        scraped.headers["content-type"],
        "text/plain; version=0.0.4; charset=utf-8"
    );
    for expected in [
        "# HELP jobs_run_total jobs the workload ran
# TYPE jobs_run_total counter
jobs_run_total ",
        "# HELP jobs_ok_total jobs the workload finished, by outcome (ok_total)
",
        "# HELP jobs_failed_total jobs the workload finished, by outcome (failed_total)
",
        "# HELP log_lines_written_total lines the log sink wrote
",
    ] {
        assert!(
            scraped.body.contains(expected),
            "{expected:?} in {}",
            scraped.body
        );
    }

    let listed = http_client::get(agent.server, "/api/metrics").expect("GET /api/metrics");
    assert_eq!(listed.status, 200);
    assert_eq!(listed.headers["content-type"], "application/json");
    let listed: serde_json::Value = serde_json::from_str(&listed.body).expect("JSON");
    assert_eq!(
        listed,
        serde_json::json!({
            "jobs": {
                "unit": "jobs",
                "description": "jobs the workload finished, by outcome",
                "historic": true,
            },
            "jobs_run": {"unit": "jobs", "description": "jobs the workload ran"},
            "log.lines_written": {
                "unit": "lines",
                "description": "lines the log sink wrote",
                "hidden": true,
                "sink": "agent-log",
            },
        })
    );
    // As in metricq, a flag selects what stores it: `hidden=false` would select none here.
    let hidden = http_client::get(agent.server, "/api/metrics?hidden=true&metadata=false")
        .expect("GET /api/metrics?hidden=true");
    assert_eq!(hidden.body, r#"{"log.lines_written":{}}"#);
    let historic = http_client::get(agent.server, "/api/metrics?historic=true&metadata=false")
        .expect("GET /api/metrics?historic=true");
    assert_eq!(historic.body, r#"{"jobs":{}}"#);
    let refused = http_client::get(agent.server, "/api/metrics?selector=%5B").expect("GET");
    assert_eq!(refused.status, 400);
    assert!(
        refused.body.contains(r#""reason":"INVALID_REGEX""#),
        "{}",
        refused.body
    );
}

/// Waits until the workload has run at least ten jobs, as the agent's own `jobs_run_total`
/// says on `/metrics`: the tenth fails, so the log sink has a line to flush at the stop.
fn wait_for_jobs(agent: &Agent) {
    wait_until(|| {
        let scraped = http_client::get(agent.server, "/metrics").expect("scrape /metrics");
        let run = scraped
            .body
            .lines()
            .find_map(|line| line.strip_prefix("jobs_run_total "))
            .expect("jobs_run_total is served");
        run.parse::<u64>().expect("a count") >= 10
    });
}

/// SIGTERM: the default `on_signal` stops the agent, teardown closes its server and flushes
/// the recorder and the log sink, the process exits 0.
#[test]
fn sigterm_flushes_and_exits_zero() {
    let agent = Agent::start();
    scrape(&agent);
    wait_for_jobs(&agent);
    agent.signal(libc::SIGTERM);
    // Exit 0: teardown closed the server (a failed close fails teardown and the exit).
    let (success, lines, errors) = agent.finish();
    assert!(success, "exit status not 0; stderr: {errors}");
    assert_flushed_and_clean(&lines, "agent: stopped cleanly on signal 15");
}

/// SIGINT twice in a row: the first stops the agent, the second finds it stopping and is
/// ignored; the process still exits 0 with everything flushed.
#[test]
fn a_second_sigint_is_harmless() {
    let agent = Agent::start();
    wait_for_jobs(&agent);
    agent.signal(libc::SIGINT);
    agent.signal(libc::SIGINT);
    let (success, lines, errors) = agent.finish();
    assert!(success, "exit status not 0; stderr: {errors}");
    assert_flushed_and_clean(&lines, "agent: stopped cleanly");
}
