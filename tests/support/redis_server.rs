//! Redis servers for the tests that talk to one: [`shared`], the server at `MVX_REDIS_URL`
//! when it is set (`.ci/test` starts one), else one of our own; and [`RedisServer`], a
//! `redis-server` of the test's own, which it may kill and restart. Without `redis-server`
//! the tests fail and say how to get one: they never skip.
//!
//! Include it with `#[path = "support/redis_server.rs"] mod redis_server;`, and `free_port.rs`
//! beside it (`support/free_port.rs`).

#![allow(dead_code)] // Each test binary uses the part it needs.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use crate::free_port::free_port;

/// The URL of the server at `MVX_REDIS_URL`, or of one of our own, which is killed when the
/// second element is dropped: keep it for as long as the server is used.
pub fn shared() -> (String, Option<RedisServer>) {
    match std::env::var("MVX_REDIS_URL") {
        Ok(url) => (url, None),
        Err(_) => {
            let server = RedisServer::start();
            (server.url(), Some(server))
        }
    }
}

/// A plain connection to the server at `url`, to look at its keys directly.
pub fn connect(url: &str) -> redis::Connection {
    redis::Client::open(url)
        .expect("a Redis URL")
        .get_connection()
        .expect("a connection to the test server")
}

/// A `redis-server` this test started on a free loopback port; killed on drop.
///
/// It persists every write before it replies (`appendonly yes`, `appendfsync always`), so
/// that a [`restart`](Self::restart) keeps what it acknowledged.
pub struct RedisServer {
    port: u16,
    dir: tempfile::TempDir,
    child: Option<Child>,
}

impl RedisServer {
    /// Starts a server and waits until it says it is ready.
    pub fn start() -> Self {
        // A port found free may be taken before the server binds it: try a few.
        for _ in 0..3 {
            let mut server = Self {
                port: free_port(),
                dir: tempfile::tempdir().expect("a temporary directory"),
                child: None,
            };
            if server.spawn() {
                return server;
            }
        }
        panic!("redis-server did not start on a free port in three tries");
    }

    /// Starts the server process; whether it said it is ready.
    fn spawn(&mut self) -> bool {
        let mut child = Command::new("redis-server")
            .args(["--port", &self.port.to_string(), "--bind", "127.0.0.1"])
            .args([
                "--save",
                "",
                "--appendonly",
                "yes",
                "--appendfsync",
                "always",
            ])
            .args(["--daemonize", "no", "--dir"])
            .arg(self.dir.path())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|error| {
                panic!(
                    "the Redis tests need `redis-server` and could not start it ({error}): \
                     install it (`apt-get install -y redis-server`); the tests that need no \
                     server of their own also take one at MVX_REDIS_URL \
                     (MVX_REDIS_URL=redis://127.0.0.1:6379/)"
                )
            });
        let mut lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
        let ready = lines
            .by_ref()
            .map_while(Result::ok)
            .any(|line| line.contains("Ready to accept connections"));
        // Keep reading, so that the server never blocks on a full pipe.
        std::thread::spawn(move || lines.for_each(drop));
        self.child = Some(child);
        if !ready {
            self.kill();
        }
        ready
    }

    /// The port it listens on.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// `redis://127.0.0.1:<port>/`.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/", self.port)
    }

    /// SIGKILL: no shutdown, no last save.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// A new server process on the same port and directory, loading what the last one
    /// persisted.
    pub fn restart(&mut self) {
        self.kill();
        // The port may still be held for a moment by the killed process's sockets, and
        // nothing announces when it is free: try again, a while apart.
        for _ in 0..50 {
            if self.spawn() {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!("redis-server did not restart on port {}", self.port);
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.kill();
    }
}
