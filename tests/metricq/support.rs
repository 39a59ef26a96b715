//! Helpers of the metricq tests: the broker, the Python peers (tests/metricq/peer.py), an
//! agent run on a thread.

#![allow(dead_code)] // Each test binary uses its own part of it.

use std::io::{BufRead, BufReader, Write};
use std::path::PathBuf;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError, channel};
use std::sync::{Mutex, OnceLock};
use std::thread::JoinHandle;
use std::time::Duration;

use mvx::agent::{Agent, AgentConfig, AgentError, AgentHandle, Runner};

/// How long one answer of a peer may take before the test is declared hung.
pub const PATIENCE: Duration = Duration::from_secs(60);

/// The broker of the tests: `MVX_AMQP_URL` (`.ci/test` starts one). Without it the tests
/// fail and say how to get one: they never skip.
pub fn broker_url() -> String {
    std::env::var("MVX_AMQP_URL").unwrap_or_else(|_| {
        panic!(
            "the metricq tests need a RabbitMQ broker: run them with `bash .ci/test`, which \
             installs and starts one, or set MVX_AMQP_URL=amqp://guest:guest@127.0.0.1:5672/"
        )
    })
}

/// A name no other test (or earlier run) uses.
pub fn unique(prefix: &str) -> String {
    static COUNT: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |since| since.as_nanos());
    format!(
        "{prefix}-{}-{}-{}",
        std::process::id(),
        nanos % 1_000_000_007,
        COUNT.fetch_add(1, Ordering::Relaxed)
    )
}

/// A Python peer: its output lines, and its standard input, whose closing ends it.
pub struct Peer {
    child: Child,
    stdin: Option<ChildStdin>,
    lines: Receiver<String>,
    role: String,
}

impl Peer {
    /// Starts `python3 tests/metricq/peer.py <args>`.
    pub fn spawn(args: &[&str]) -> Self {
        let script: PathBuf = [env!("CARGO_MANIFEST_DIR"), "tests", "metricq", "peer.py"]
            .iter()
            .collect();
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
            role: args.first().copied().unwrap_or("peer").to_owned(),
        }
    }

    /// The next line, as JSON; panics if none comes within [`PATIENCE`].
    pub fn next(&self) -> serde_json::Value {
        match self.lines.recv_timeout(PATIENCE) {
            Ok(line) => serde_json::from_str(&line)
                .unwrap_or_else(|error| panic!("{}: not JSON ({error}): {line}", self.role)),
            Err(RecvTimeoutError::Timeout) => panic!("{}: no line within {PATIENCE:?}", self.role),
            Err(RecvTimeoutError::Disconnected) => panic!("{}: exited early", self.role),
        }
    }

    /// Waits for the line `"<word>"`, panicking on any other.
    pub fn expect(&self, word: &str) {
        assert_eq!(self.next(), serde_json::json!(word), "{}", self.role);
    }

    /// Closes its standard input and waits for it to exit (the test's guard catches a
    /// peer that does not).
    pub fn finish(mut self) {
        drop(self.stdin.take());
        let _ = self.child.wait();
    }

    /// Writes to its standard input.
    pub fn write(&mut self, text: &str) {
        if let Some(stdin) = &mut self.stdin {
            let _ = stdin.write_all(text.as_bytes());
        }
    }
}

impl Drop for Peer {
    fn drop(&mut self) {
        drop(self.stdin.take());
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The test manager on the broker at `MVX_AMQP_URL`, started once per test binary (two
/// managers on one broker would share its `management` queue). It ends when the binary
/// exits: its standard input closes.
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

/// An agent running on a thread of its own.
pub struct Running {
    pub handle: AgentHandle,
    thread: Option<JoinHandle<Result<(), AgentError>>>,
}

impl Running {
    /// Runs `agent` without signals.
    pub fn start<A: Agent>(agent: A) -> Self {
        Self::start_with(agent, AgentConfig::default().catch_signals([]))
    }

    /// Runs `agent` with `config`.
    pub fn start_with<A: Agent>(agent: A, config: AgentConfig) -> Self {
        let runner = Runner::new(agent, config);
        let handle = runner.handle();
        let thread = std::thread::spawn(move || runner.run());
        Self {
            handle,
            thread: Some(thread),
        }
    }

    /// Stops the agent and returns what `run()` returned.
    pub fn stop(mut self) -> Result<(), AgentError> {
        self.handle.stop(None, false);
        self.join()
    }

    /// Waits for `run()` to return.
    pub fn join(&mut self) -> Result<(), AgentError> {
        self.thread
            .take()
            .expect("joined once")
            .join()
            .expect("the runner thread does not panic")
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Some(thread) = self.thread.take() {
            self.handle.stop(None, true);
            let _ = thread.join();
        }
    }
}

/// A RabbitMQ node of a test's own, on free loopback ports, in a temporary directory:
/// for the tests that stop and restart the broker.
pub struct OwnNode {
    pub name: String,
    pub port: u16,
    dist_port: u16,
    dir: tempfile::TempDir,
    child: Option<Child>,
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .expect("a free port")
        .port()
}

fn ctl() -> PathBuf {
    let packaged = PathBuf::from("/usr/lib/rabbitmq/bin/rabbitmqctl");
    if packaged.exists() {
        packaged
    } else {
        PathBuf::from("rabbitmqctl")
    }
}

impl OwnNode {
    /// Starts a node and waits until it serves.
    pub fn start() -> Self {
        let mut node = Self {
            name: format!("{}@localhost", unique("mvx-test")),
            port: free_port(),
            dist_port: free_port(),
            dir: tempfile::tempdir().expect("a temporary directory"),
            child: None,
        };
        std::fs::write(node.dir.path().join("enabled_plugins"), "[].\n").expect("written");
        node.spawn();
        node
    }

    /// `amqp://guest:guest@127.0.0.1:<port>/`.
    pub fn url(&self) -> String {
        format!("amqp://guest:guest@127.0.0.1:{}/", self.port)
    }

    fn spawn(&mut self) {
        let dir = self.dir.path();
        let server = {
            let packaged = PathBuf::from("/usr/lib/rabbitmq/bin/rabbitmq-server");
            if packaged.exists() {
                packaged
            } else {
                PathBuf::from("rabbitmq-server")
            }
        };
        let pid_file = dir.join("node.pid");
        let _ = std::fs::remove_file(&pid_file);
        let child = Command::new(server)
            .env("RABBITMQ_NODENAME", &self.name)
            .env("RABBITMQ_NODE_IP_ADDRESS", "127.0.0.1")
            .env("RABBITMQ_NODE_PORT", self.port.to_string())
            .env("RABBITMQ_DIST_PORT", self.dist_port.to_string())
            .env("RABBITMQ_MNESIA_BASE", dir.join("mnesia"))
            .env("RABBITMQ_LOG_BASE", dir.join("log"))
            .env("RABBITMQ_PID_FILE", &pid_file)
            .env("RABBITMQ_ENABLED_PLUGINS_FILE", dir.join("enabled_plugins"))
            .env("RABBITMQ_CONFIG_FILE", dir.join("rabbitmq"))
            .env("ERL_EPMD_ADDRESS", "127.0.0.1")
            .env(
                "RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS",
                "-kernel inet_dist_use_interface {127,0,0,1}",
            )
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect(
                "the broker fault tests need rabbitmq-server (`apt-get install -y \
                 rabbitmq-server`; .ci/test installs it)",
            );
        self.child = Some(child);
        let waited = Command::new(ctl())
            .args(["-n", &self.name, "wait"])
            .arg(&pid_file)
            .args(["--timeout", "60"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .expect("rabbitmqctl runs");
        assert!(waited.success(), "node {} did not start", self.name);
    }

    /// Stops the node (its clients see their connections closed), and waits until it is
    /// gone.
    pub fn stop(&mut self) {
        let _ = Command::new(ctl())
            .args(["-n", &self.name, "stop"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        if let Some(mut child) = self.child.take() {
            let _ = child.wait();
        }
    }

    /// Starts the stopped node again, on the same ports with the same data.
    pub fn restart(&mut self) {
        self.spawn();
    }
}

impl Drop for OwnNode {
    fn drop(&mut self) {
        if self.child.is_some() {
            self.stop();
        }
    }
}
