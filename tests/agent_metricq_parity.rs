//! mvx's agent lifecycle side by side with metricq's `Agent` (metricq 5.4 from PyPI, which
//! `.ci/test` installs), on the same scripted scenarios (tests/support/metricq_agent.py):
//! `connect` logs and then stops the agent from a task (cleanly, with an error, silently),
//! calls the default `on_signal` (SIGINT, SIGTERM, SIGUSR1), stops it while `connect` still
//! runs, or lets teardown fail. What `run()` returns, what the awaited stop
//! (`stop_and_wait`, metricq's `await stop()`) returns, what ran, and the default teardown
//! timeout must be metricq's.
//!
//! No broker is involved: the Python agent's `connect` is overridden, so its lifecycle runs
//! on its own, as mvx's does.
#![cfg(not(loom))]

#[path = "support/watchdog.rs"]
mod watchdog;

use std::collections::BTreeMap;
use std::process::Command;
use std::sync::{Arc, Mutex};

use mvx::BoxError;
use mvx::agent::{
    Agent, AgentConfig, AgentError, AgentHandle, DEFAULT_CLOSE_TIMEOUT, Runner, SIGINT, SIGTERM,
};
use serde_json::{Value, json};
use watchdog::within_guard;

const SCENARIOS: [&str; 8] = [
    "stop_clean",
    "stop_error",
    "stop_silent_error",
    "stop_during_connect",
    "SIGINT",
    "SIGTERM",
    "SIGUSR1",
    "teardown_error",
];

/// The signal named `name`, and back.
const SIGNALS: [(&str, i32); 3] = [
    ("SIGINT", SIGINT),
    ("SIGTERM", SIGTERM),
    ("SIGUSR1", libc::SIGUSR1),
];

/// The mvx agent of the Python script's `Scripted`, step for step.
struct Scripted {
    scenario: &'static str,
    log: Arc<Mutex<Vec<String>>>,
}

impl Scripted {
    fn push(log: &Mutex<Vec<String>>, entry: impl Into<String>) {
        log.lock().unwrap().push(entry.into());
    }

    /// metricq's `loop.create_task(self.stop_and_log(error, silent))`.
    fn spawn_stop(&self, agent: &AgentHandle, error: Option<&'static str>, silent: bool) {
        let log = self.log.clone();
        let handle = agent.clone();
        assert!(agent.spawn(async move {
            let error = error.map(BoxError::from);
            match handle.stop_and_wait(error, silent).await {
                Ok(()) => Self::push(&log, "stop returned"),
                Err(AgentError::Stopped(cause) | AgentError::TeardownFailed(cause)) => {
                    Self::push(&log, format!("stop raised from {cause}"));
                }
                Err(other) => Self::push(&log, format!("stop raised {other:?}")),
            }
            Ok(())
        }));
    }
}

/// Logs "connect cancelled" when the connect future is dropped before it returned.
struct Cancelled(Arc<Mutex<Vec<String>>>);

impl Drop for Cancelled {
    fn drop(&mut self) {
        Scripted::push(&self.0, "connect cancelled");
    }
}

impl Agent for Scripted {
    async fn connect(&self, agent: &AgentHandle) -> Result<(), BoxError> {
        Self::push(&self.log, "connect");
        match self.scenario {
            "stop_during_connect" => {
                self.spawn_stop(agent, None, false);
                let _cancelled = Cancelled(self.log.clone());
                futures::future::pending::<()>().await;
            }
            "stop_clean" => self.spawn_stop(agent, None, false),
            "stop_error" => self.spawn_stop(agent, Some("quietly"), false),
            "stop_silent_error" => self.spawn_stop(agent, Some("quietly"), true),
            "teardown_error" => self.spawn_stop(agent, None, false),
            name => {
                let (_, signal) = SIGNALS.iter().find(|(n, _)| *n == name).unwrap();
                self.on_signal(*signal, agent);
            }
        }
        Self::push(&self.log, "connected");
        Ok(())
    }

    async fn teardown(&self) -> Result<(), BoxError> {
        Self::push(&self.log, "teardown");
        if self.scenario == "teardown_error" {
            return Err("teardown broke".into());
        }
        Ok(())
    }
}

/// Runs `scenario` with mvx, as the script prints it.
fn mvx(scenario: &'static str) -> Value {
    let log = Arc::new(Mutex::new(Vec::new()));
    let agent = Scripted {
        scenario,
        log: log.clone(),
    };
    let config = AgentConfig::default().catch_signals([]);
    let close_timeout = config.close_timeout.expect("a default close timeout");
    let mut result = match Runner::new(agent, config).run() {
        Ok(()) => json!({"run": "ok"}),
        Err(AgentError::ReceivedSignal { signal }) => {
            let (name, _) = SIGNALS.iter().find(|(_, s)| *s == signal).unwrap();
            json!({"run": "ReceivedSignal", "signal": name})
        }
        Err(AgentError::Stopped(cause) | AgentError::TeardownFailed(cause)) => {
            json!({"run": "error", "message": cause.to_string()})
        }
        Err(other) => json!({"run": format!("{other:?}")}),
    };
    result["log"] = json!(*log.lock().unwrap());
    result["close_timeout"] = json!(close_timeout.as_secs());
    result
}

/// Runs every scenario with metricq.
fn metricq() -> BTreeMap<String, Value> {
    let script = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/support/metricq_agent.py"
    );
    let output = Command::new("python3")
        .arg(script)
        .args(SCENARIOS)
        .output()
        .unwrap_or_else(|error| {
            panic!(
                "python3 is required ({error}); `python3 -m pip install metricq==5.4.0` \
                 (.ci/test does)"
            )
        });
    assert!(
        output.status.success(),
        "the metricq script failed (is metricq installed? .ci/test installs it): {}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).expect("JSON from the script")
}

/// Where the two differ on purpose: metricq cancels a `connect` cut off by a stop when its
/// event loop closes, after teardown; mvx drops the connect future before teardown starts,
/// so the two never run at once. Both cancel it; the entry moves.
fn without_cancellation(mut result: Value) -> (Value, bool) {
    let log = result["log"].as_array_mut().unwrap();
    let before = log.len();
    log.retain(|entry| entry != "connect cancelled");
    let cancelled = log.len() != before;
    (result, cancelled)
}

#[test]
fn the_lifecycle_answers_as_metricq_s_on_every_scenario() {
    within_guard(|| {
        let python = metricq();
        for scenario in SCENARIOS {
            let ours = mvx(scenario);
            let theirs = python[scenario].clone();
            if scenario == "stop_during_connect" {
                assert_eq!(
                    ours["log"],
                    json!(["connect", "connect cancelled", "teardown", "stop returned"]),
                    "mvx drops the connect before teardown"
                );
                let (ours, ours_cancelled) = without_cancellation(ours);
                let (theirs, theirs_cancelled) = without_cancellation(theirs);
                assert!(ours_cancelled && theirs_cancelled, "{scenario}");
                assert_eq!(ours, theirs, "{scenario}");
            } else {
                assert_eq!(ours, theirs, "{scenario}");
            }
        }
    });
}

#[test]
fn the_default_close_timeout_is_metricq_s_connection_timeout() {
    assert_eq!(DEFAULT_CLOSE_TIMEOUT.as_secs(), 600);
    assert_eq!(
        AgentConfig::default().close_timeout,
        Some(DEFAULT_CLOSE_TIMEOUT)
    );
}
