//! Python peers of the metricq tests: [`Peer`], a process of `metricq_peer.py` (beside this
//! file) on the packaged `metricq` client — a Source, a Sink, a Client calling RPCs, the
//! test manager — and [`shared_manager`], the test manager on the broker at `MVX_AMQP_URL`.
//!
//! Include it with `#[path = "support/metricq_peer.rs"] mod metricq_peer;`, and `rabbitmq.rs`
//! and the watchdog beside it (`support/rabbitmq.rs`, `support/watchdog.rs`).

#![allow(dead_code)] // Each test binary uses the part it needs.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc::{Receiver, RecvTimeoutError, channel};
use std::sync::{Mutex, OnceLock};

use crate::rabbitmq::broker_url;
use crate::watchdog::GUARD;

/// A Python peer: its output lines, and its standard input, whose closing ends it.
pub struct Peer {
    child: Child,
    stdin: Option<ChildStdin>,
    lines: Receiver<String>,
    role: String,
}

impl Peer {
    /// Starts `python3 tests/support/metricq_peer.py <args>`.
    pub fn spawn(args: &[&str]) -> Self {
        let script: PathBuf = [
            env!("CARGO_MANIFEST_DIR"),
            "tests",
            "support",
            "metricq_peer.py",
        ]
        .iter()
        .collect();
        let role = args.first().copied().unwrap_or("peer");
        Self::script(&script, args, role)
    }

    /// Starts `python3 <script> <args>`, called `role` in its failures.
    pub fn script(script: &Path, args: &[&str], role: &str) -> Self {
        let mut child = Command::new("python3")
            .arg(script)
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("python3 runs (the metricq tests need `pip install metricq`)");
        let stdout = child.stdout.take().expect("stdout");
        let (sender, lines) = channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if sender.send(line).is_err() {
                    break;
                }
            }
        });
        Self {
            stdin: child.stdin.take(),
            child,
            lines,
            role: role.to_owned(),
        }
    }

    /// The next line; panics if none comes within [`GUARD`].
    pub fn next_line(&self) -> String {
        match self.lines.recv_timeout(GUARD) {
            Ok(line) => line,
            Err(RecvTimeoutError::Timeout) => panic!("{}: no line within {GUARD:?}", self.role),
            Err(RecvTimeoutError::Disconnected) => panic!("{}: exited early", self.role),
        }
    }

    /// The next line, as JSON; panics if none comes within [`GUARD`].
    pub fn next(&self) -> serde_json::Value {
        let line = self.next_line();
        serde_json::from_str(&line)
            .unwrap_or_else(|error| panic!("{}: not JSON ({error}): {line}", self.role))
    }

    /// Waits for the line `"<word>"`, panicking on any other.
    pub fn expect(&self, word: &str) {
        assert_eq!(self.next(), serde_json::json!(word), "{}", self.role);
    }

    /// Closes its standard input and waits for it to exit (the test's watchdog catches a
    /// peer that does not); whether it exited with success.
    pub fn finish(mut self) -> bool {
        drop(self.stdin.take());
        self.child.wait().is_ok_and(|status| status.success())
    }
}

impl Drop for Peer {
    fn drop(&mut self) {
        drop(self.stdin.take());
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The URL of the broker at `MVX_AMQP_URL`, with the test manager on it: started once per
/// test binary (two managers on one broker would share its `management` queue), it ends
/// when the binary exits and its standard input closes.
pub fn shared_manager() -> &'static str {
    static MANAGER: OnceLock<(Mutex<Peer>, String)> = OnceLock::new();
    &MANAGER
        .get_or_init(|| {
            let url = broker_url();
            let manager = Peer::spawn(&["manager", &url]);
            manager.expect("ready");
            (Mutex::new(manager), url)
        })
        .1
}
