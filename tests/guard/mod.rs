//! A failure guard for tests that could hang: the body runs on a thread of its own, and the
//! test fails (rather than hanging CI) if it has not finished in time. It is a guard, not a
//! timed assertion: the limit is far beyond anything the body should need.

#![allow(dead_code)] // Each test binary uses the form it needs.

use std::sync::mpsc;
use std::time::Duration;

/// The limit of [`within_guard`].
pub const GUARD: Duration = Duration::from_secs(30);

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
