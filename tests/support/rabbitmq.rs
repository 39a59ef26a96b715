//! RabbitMQ brokers for the metricq tests: [`broker_url`], the broker at `MVX_AMQP_URL`
//! (`.ci/test` starts one), and [`OwnNode`], a node of the test's own, which it may stop
//! and restart. Without them the tests fail and say how to get them: they never skip.
//!
//! Include it with `#[path = "support/rabbitmq.rs"] mod rabbitmq;`, and `free_port.rs` and
//! the watchdog beside it (`support/free_port.rs`, `support/watchdog.rs`).

#![allow(dead_code)] // Each test binary uses the part it needs.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};

use crate::free_port::free_port;
use crate::watchdog::GUARD;

/// The broker at `MVX_AMQP_URL` (`.ci/test` starts one). Without it the tests fail and say
/// how to get one.
pub fn broker_url() -> String {
    std::env::var("MVX_AMQP_URL").unwrap_or_else(|_| {
        panic!(
            "the metricq tests need a RabbitMQ broker: run them with `bash .ci/test`, which \
             installs and starts one, or set MVX_AMQP_URL=amqp://guest:guest@127.0.0.1:5672/"
        )
    })
}

/// A name that no other test, and no earlier run on the same broker, uses: for tokens,
/// metrics, queues and nodes.
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

/// A RabbitMQ node of a test's own, on free loopback ports, in a temporary directory: for
/// the tests that stop and restart the broker. Stopped on drop.
pub struct OwnNode {
    pub name: String,
    pub port: u16,
    dist_port: u16,
    dir: tempfile::TempDir,
    child: Option<Child>,
}

/// A program of the Debian package: in `/usr/lib/rabbitmq/bin` (`/usr/sbin`'s wrappers
/// switch to the `rabbitmq` user), else on the `PATH`.
fn program(name: &str) -> PathBuf {
    let packaged = PathBuf::from("/usr/lib/rabbitmq/bin").join(name);
    if packaged.exists() {
        packaged
    } else {
        PathBuf::from(name)
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
        let pid_file = dir.join("node.pid");
        let _ = std::fs::remove_file(&pid_file);
        let child = Command::new(program("rabbitmq-server"))
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
        let waited = Command::new(program("rabbitmqctl"))
            .args(["-n", &self.name, "wait"])
            .arg(&pid_file)
            .args(["--timeout", &GUARD.as_secs().to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .expect("rabbitmqctl runs");
        assert!(waited.success(), "node {} did not start", self.name);
    }

    /// Stops the node (its clients see their connections closed), and waits until it is
    /// gone.
    pub fn stop(&mut self) {
        let stopped = Command::new(program("rabbitmqctl"))
            .args(["-n", &self.name, "stop"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|status| status.success());
        if let Some(mut child) = self.child.take() {
            if !stopped {
                let _ = child.kill();
            }
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
