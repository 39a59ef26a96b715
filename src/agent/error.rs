//! [`AgentError`]: why an agent stopped abnormally or could not run, and its reasons.

use std::time::Duration;

use crate::error::Cause;

/// Why an agent stopped abnormally or could not run.
#[derive(Clone, Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AgentError {
    /// `connect` returned an error or panicked.
    #[error("the agent failed to connect")]
    ConnectFailed(#[source] Cause),
    /// The agent was stopped with this error (not silent).
    #[error("the agent was stopped with an error")]
    Stopped(#[source] Cause),
    /// A caught signal other than SIGINT stopped the agent: the default
    /// [`on_signal`](super::Agent::on_signal), as metricq's raises `ReceivedSignal`.
    #[error("the agent received signal {signal} while running")]
    ReceivedSignal {
        /// The signal's number (15 for SIGTERM).
        signal: i32,
    },
    /// An agent task returned an error or panicked, with `cancel_on_error` set.
    #[error("an agent task failed")]
    TaskFailed(#[source] Cause),
    /// `teardown` returned an error or panicked.
    #[error("the agent's teardown failed")]
    TeardownFailed(#[source] Cause),
    /// `teardown` did not finish within the close timeout and was cut off.
    #[error("the agent's teardown timed out after {timeout:?}")]
    TeardownTimedOut {
        /// The configured close timeout.
        timeout: Duration,
    },
    /// The signal handlers could not be installed.
    #[error("installing the signal handlers failed")]
    SignalSetup(#[source] Cause),
    /// Signals were asked for without the `signals` feature.
    #[error("catching signals {signals:?} needs mvx's `signals` feature")]
    SignalsUnavailable {
        /// The signals asked for.
        signals: Vec<i32>,
    },
    /// The future of `run_async` was dropped before the agent stopped.
    #[error("the agent's runner was dropped before the agent stopped")]
    Cancelled,
}

impl AgentError {
    /// The stable reason code.
    pub fn reason(&self) -> AgentReason {
        match self {
            Self::ConnectFailed(_) => AgentReason::ConnectFailed,
            Self::Stopped(_) => AgentReason::AgentStopped,
            Self::ReceivedSignal { .. } => AgentReason::ReceivedSignal,
            Self::TaskFailed(_) => AgentReason::TaskFailed,
            Self::TeardownFailed(_) => AgentReason::TeardownFailed,
            Self::TeardownTimedOut { .. } => AgentReason::TeardownTimedOut,
            Self::SignalSetup(_) => AgentReason::SignalSetupFailed,
            Self::SignalsUnavailable { .. } => AgentReason::SignalsUnavailable,
            Self::Cancelled => AgentReason::AgentCancelled,
        }
    }
}

crate::error::component_reason! {
    /// A stable code naming why an agent stopped abnormally or could not run: the
    /// `reason()` of [`AgentError`].
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use mvx::agent::{AgentError, AgentReason};
    ///
    /// let error = AgentError::TeardownTimedOut { timeout: Duration::from_secs(30) };
    /// assert_eq!(error.reason(), AgentReason::TeardownTimedOut);
    /// assert_eq!(error.reason().as_str(), "TEARDOWN_TIMED_OUT");
    /// ```
    pub enum AgentReason {
        /// An agent's `connect` failed.
        ConnectFailed = "CONNECT_FAILED",
        /// An agent was stopped with an error.
        AgentStopped = "AGENT_STOPPED",
        /// A caught signal other than SIGINT stopped an agent.
        ReceivedSignal = "RECEIVED_SIGNAL",
        /// An agent task failed under `cancel_on_error`.
        TaskFailed = "TASK_FAILED",
        /// An agent's teardown failed.
        TeardownFailed = "TEARDOWN_FAILED",
        /// An agent's teardown did not finish within the close timeout.
        TeardownTimedOut = "TEARDOWN_TIMED_OUT",
        /// Signal handlers could not be installed.
        SignalSetupFailed = "SIGNAL_SETUP_FAILED",
        /// Signals were asked for without the `signals` feature.
        SignalsUnavailable = "SIGNALS_UNAVAILABLE",
        /// An agent's runner was dropped before the agent stopped.
        AgentCancelled = "AGENT_CANCELLED",
    }
}
