//! Agent lifecycle for long-running clients: run until stopped, stop once, report teardown.
//!
//! A user type implements [`Agent`]: [`connect`](Agent::connect) sets it up (opens
//! connections, starts recorders and sinks, spawns its tasks), [`teardown`](Agent::teardown)
//! undoes that, and [`on_signal`](Agent::on_signal) decides what a caught signal does (by
//! default: stop). A [`Runner`] owns the agent and supplies the rest:
//!
//! - [`Runner::run`] blocks the calling thread: it connects, then waits until the agent is
//!   stopped; SIGINT and SIGTERM (the set is [`AgentConfig::catch_signals`]) call
//!   `on_signal`. A connect failure returns [`AgentError::ConnectFailed`] with the cause.
//!   [`Runner::run_async`] is the same without signals, as a future for any executor.
//! - [`AgentHandle::stop`]`(error, silent)`: the first call wins, later calls are ignored.
//!   The error is what `run()` returns and what
//!   [`stopped().await`](AgentHandle::stopped) yields, to any number of waiters; as in
//!   metricq, `silent` only keeps the stop call itself
//!   ([`stop_and_wait`](AgentHandle::stop_and_wait), metricq's `await stop()`) from
//!   returning it.
//! - A stop requested while `connect` runs cancels it (its future is dropped) and runs
//!   teardown at once, as metricq's `stop` during `connect()` does: teardown must undo a
//!   connect cut off anywhere.
//! - The first stop runs `teardown` under [`AgentConfig::close_timeout`]. Its error, or
//!   [`AgentError::TeardownTimedOut`] for a teardown cut off at the timeout, is reported in
//!   the [`StopOutcome`] and by `run()`; never swallowed.
//! - Tasks spawned with [`AgentHandle::spawn`] run with the agent. A task that returns an
//!   error or panics is an *unhandled error*: with [`AgentConfig::cancel_on_error`] it stops
//!   the agent and is what `run()` returns ([`AgentError::TaskFailed`]); without it, it is
//!   kept in [`StopOutcome::task_errors`].
//!
//! ```
//! use mvx::BoxError;
//! use mvx::agent::{Agent, AgentConfig, AgentHandle, Runner};
//!
//! struct Poller;
//!
//! impl Agent for Poller {
//!     async fn connect(&self, agent: &AgentHandle) -> Result<(), BoxError> {
//!         // Open connections here; spawn the agent's own tasks.
//!         let stopper = agent.clone();
//!         agent.spawn(async move {
//!             // ... work until done, then:
//!             stopper.stop(None, false);
//!             Ok(())
//!         });
//!         Ok(())
//!     }
//! }
//!
//! let runner = Runner::new(Poller, AgentConfig::default().catch_signals([]));
//! runner.run()?; // connects, runs the task, which stops the agent; teardown; returns
//! # Ok::<(), mvx::agent::AgentError>(())
//! ```
//!
//! # Listing metrics
//!
//! An agent answers *which metrics do you have* through
//! [`Registry::get_metrics`](crate::metrics::Registry::get_metrics) with a [`Selector`]
//! (re-exported here from [`metrics`](crate::metrics::selector), which says what it
//! selects); the exposition server (feature `http`) serves the same answer as JSON at
//! `/api/metrics`.
//!
//! # Choices
//!
//! - **Where the agent runs.** `run()` polls the agent's future — connect, the spawned tasks,
//!   the wait, teardown — on the calling thread, with `async_io::block_on`; timers and I/O
//!   come from `async-io`, so the agent's code may use them as under any executor, and
//!   `connect` and `teardown` may block (a `ThreadedMetricsServer` started in `connect`
//!   and closed in `teardown` is the usual case: its docs say why that nests). Signals
//!   are received on a thread of their own (`mvx-agent-signals`), which calls `on_signal`;
//!   it is joined before `run()` returns.
//! - **`stop` is synchronous.** It records the first request and wakes the runner, which
//!   runs teardown; [`stopped`](AgentHandle::stopped) waits for the end. So `stop` can be
//!   called from a signal handler's thread, a task, `connect`, or any other thread.
//! - **A failed connect does not run teardown**: `connect` undoes what it did before it
//!   failed. A stop requested during `connect` drops the connect future before teardown
//!   starts (metricq cancels `connect()` only when its loop closes, after teardown: mvx
//!   never runs the two at once).
//! - **Signals, as metricq's default `on_signal`**: SIGINT stops the agent cleanly; any
//!   other caught signal (SIGTERM) stops it with [`AgentError::ReceivedSignal`], which
//!   `run()` returns — a service that treats SIGTERM as a normal end says so where it
//!   handles `run()`'s result (`examples/agent.rs` does).
//! - **A panic** in `connect`, `teardown`, `on_signal` or a task is caught and reported like
//!   the error it stands for (`ConnectFailed`, `TeardownFailed`, a stop with that error, an
//!   unhandled task error).
//! - **Signals need the `signals` feature** (signal-hook). Without it the default set is
//!   empty, and `run()` with a non-empty set fails with [`AgentError::SignalsUnavailable`].

mod error;
mod handle;
mod runner;
mod signals;

use std::future::Future;
use std::time::Duration;

pub use self::error::{AgentError, AgentReason};
pub use self::handle::{AgentHandle, AgentTask, StopOutcome};
pub use self::runner::Runner;
use crate::error::BoxError;

#[cfg(feature = "metricq")]
pub mod metricq;

// Selecting metrics is a query over the registry, in `metrics::selector`; its names stay
// reachable here, where they were first.
pub use crate::metrics::selector;
pub use crate::metrics::{Selector, SelectorError};

/// SIGINT (interrupt, Ctrl-C): 2 on every Unix.
pub const SIGINT: i32 = 2;
/// SIGTERM (termination request): 15 on every Unix.
pub const SIGTERM: i32 = 15;

/// How long teardown may take by default before it is cut off: 600 s, metricq's default
/// `connection_timeout`, which bounds its teardown.
pub const DEFAULT_CLOSE_TIMEOUT: Duration = Duration::from_secs(600);

/// A long-running client: what it does on connect, on teardown and on a signal.
///
/// Methods take `&self`: `on_signal` may be called from the signal thread while `connect`
/// or a task runs; keep mutable state behind your own locks or in the agent's tasks.
pub trait Agent: Send + Sync + 'static {
    /// Sets the agent up: connects, starts what it needs, spawns its tasks with
    /// [`AgentHandle::spawn`]. Called once, by `run()`.
    ///
    /// # Errors
    ///
    /// Any error: `run()` returns [`AgentError::ConnectFailed`] with it as the cause.
    fn connect(&self, agent: &AgentHandle) -> impl Future<Output = Result<(), BoxError>> + Send;

    /// Undoes what `connect` did: flushes and stops sinks and recorders, closes connections.
    /// Called once, by the first stop, under [`AgentConfig::close_timeout`]. The default
    /// does nothing.
    ///
    /// # Errors
    ///
    /// Any error: reported in the [`StopOutcome`] and by `run()` as
    /// [`AgentError::TeardownFailed`].
    fn teardown(&self) -> impl Future<Output = Result<(), BoxError>> + Send {
        async { Ok(()) }
    }

    /// Called on the signal thread when one of [`AgentConfig::catch_signals`] arrives. The
    /// default is metricq's: [`AgentHandle::stop_on_signal`] — a clean stop on SIGINT, a
    /// stop with [`AgentError::ReceivedSignal`] on any other signal.
    fn on_signal(&self, signal: i32, agent: &AgentHandle) {
        agent.stop_on_signal(signal);
    }
}

/// The knobs of a [`Runner`].
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct AgentConfig {
    /// Signals that call [`Agent::on_signal`] while `run()` runs. Default: SIGINT and
    /// SIGTERM with the `signals` feature, none without it.
    pub catch_signals: Vec<i32>,
    /// Whether an unhandled error of an agent task (an `Err` or a panic) stops the agent
    /// and is returned by `run()`. Default `false`: such errors are kept in
    /// [`StopOutcome::task_errors`].
    pub cancel_on_error: bool,
    /// How long teardown may take; `None` waits for ever. Default
    /// [`DEFAULT_CLOSE_TIMEOUT`].
    pub close_timeout: Option<Duration>,
}

impl Default for AgentConfig {
    fn default() -> Self {
        Self {
            catch_signals: if cfg!(feature = "signals") {
                vec![SIGINT, SIGTERM]
            } else {
                Vec::new()
            },
            cancel_on_error: false,
            close_timeout: Some(DEFAULT_CLOSE_TIMEOUT),
        }
    }
}

impl AgentConfig {
    /// Sets [`catch_signals`](Self::catch_signals).
    pub fn catch_signals(mut self, signals: impl IntoIterator<Item = i32>) -> Self {
        self.catch_signals = signals.into_iter().collect();
        self
    }

    /// Sets [`cancel_on_error`](Self::cancel_on_error).
    pub fn cancel_on_error(mut self, cancel: bool) -> Self {
        self.cancel_on_error = cancel;
        self
    }

    /// Sets [`close_timeout`](Self::close_timeout).
    pub fn close_timeout(mut self, timeout: Option<Duration>) -> Self {
        self.close_timeout = timeout;
        self
    }
}
