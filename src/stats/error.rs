//! `StatsError`: what the statistics report, with reason codes.

use crate::ErrorReason;
use crate::error::SinkError;
use crate::lifecycle::State;

/// Errors of [`Statistics`](super::Statistics).
///
/// `Clone`: a start or stop result is shared by every waiter. Each variant has a stable
/// [`reason()`](Self::reason) code.
#[derive(Clone, Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StatsError {
    /// A recording call while the statistics are not collecting (before `start()`, or
    /// after `stop()`); nothing was counted.
    #[error("statistics are not collecting while {state}")]
    NotRecording {
        /// The lifecycle state.
        state: State,
    },
    /// A recording call found the queue full under `OverflowPolicy::RaiseError`; nothing
    /// was counted.
    #[error("the statistics queue is full")]
    QueueOverflow,
    /// An error of the queue the statistics are built on (lifecycle, executor, a stop that
    /// timed out, a cancelled driver).
    #[error(transparent)]
    Recorder(#[from] SinkError),
    /// A configuration value was rejected.
    #[error("invalid statistics configuration: {field} {problem}")]
    InvalidConfig {
        /// The field, such as `"persist_interval"`.
        field: &'static str,
        /// What is wrong with it.
        problem: &'static str,
    },
}

impl StatsError {
    /// The stable reason code of this error.
    pub fn reason(&self) -> ErrorReason {
        match self {
            Self::NotRecording { .. } => ErrorReason::InvalidState,
            Self::QueueOverflow => ErrorReason::QueueOverflow,
            Self::Recorder(error) => error.reason(),
            Self::InvalidConfig { .. } => ErrorReason::InvalidArgument,
        }
    }

    /// A lifecycle error of the underlying queue, unwrapping a `StatsError` that a start or
    /// stop hook returned.
    pub(crate) fn from_lifecycle(error: SinkError) -> Self {
        let inner = match &error {
            SinkError::OnStartingHookFailed(cause) | SinkError::OnStoppedHookFailed(cause) => {
                cause.downcast_ref::<StatsError>().cloned()
            }
            _ => None,
        };
        inner.unwrap_or(Self::Recorder(error))
    }
}
