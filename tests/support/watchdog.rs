//! The one limit of every test wait, and a watchdog for test bodies that could hang.
//!
//! A body that could hang runs under [`within_guard`]: on a thread of its own, and the test
//! fails (rather than hanging CI) if it has not finished within [`GUARD`]. A state that no
//! event announces — a counter the server bumps, a process that has done some work — is
//! waited for with [`wait_until`], which polls it under the same limit. Neither is a timed
//! assertion: the limit is far beyond anything a test should need.
//!
//! Include it with `#[path = "support/watchdog.rs"] mod watchdog;`.

#![allow(dead_code)] // Each test binary uses the part it needs.

use std::sync::mpsc;
use std::time::{Duration, Instant};

/// How long a test body, or any wait in it, may take before it is declared hung.
pub const GUARD: Duration = Duration::from_secs(60);

/// Runs `body` on a helper thread and fails if it does not finish within [`GUARD`]; a panic
/// in `body` is the test's panic.
pub fn within_guard(body: impl FnOnce() + Send + 'static) {
    within(GUARD, body);
}

/// [`within_guard`] with another limit.
pub fn within(limit: Duration, body: impl FnOnce() + Send + 'static) {
    let (done_tx, done_rx) = mpsc::channel();
    let runner = std::thread::spawn(move || {
        body();
        let _ = done_tx.send(());
    });
    match done_rx.recv_timeout(limit) {
        Ok(()) => runner.join().expect("the test body finished"),
        Err(mpsc::RecvTimeoutError::Disconnected) => {
            std::panic::resume_unwind(runner.join().expect_err("the test body panicked"))
        }
        Err(mpsc::RecvTimeoutError::Timeout) => {
            panic!("the test body did not finish within {limit:?}: something hangs")
        }
    }
}

/// Waits until `condition` holds, checking every few milliseconds; panics after [`GUARD`].
/// Only for a state that nothing announces (a counter, another process's progress): where
/// there is an event, a channel or a handle, wait on that instead.
pub fn wait_until(condition: impl Fn() -> bool) {
    let deadline = Instant::now() + GUARD;
    while !condition() {
        assert!(
            Instant::now() < deadline,
            "the condition did not hold within {GUARD:?}"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
}
