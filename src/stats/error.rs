//! `StatsError`: what the statistics report, with reason codes.

use std::fmt;

use super::StoreError;
use crate::ErrorReason;
use crate::error::{Cause, SinkError};
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
    /// The persisted state could not be loaded, saved, removed or moved aside: the store
    /// failed. Nothing was lost: a failed load leaves the value where it is (and the start
    /// fails), a failed save leaves the previous value.
    #[error("could not {operation} the statistics state under key {key:?} of store {store:?}")]
    Store {
        /// What was being done.
        operation: StoreOperation,
        /// The store name.
        store: String,
        /// The key.
        key: String,
        /// The store's error.
        #[source]
        source: StoreError,
    },
    /// The persisted state is not a valid state (not JSON, not the expected shape, or
    /// another version). It was moved to the key `moved_to` of the same store, never
    /// deleted. The start fails, unless `reset_on_corrupt_state` is set: the statistics
    /// then start from the defaults and keep this error in `last_error()`.
    #[error(
        "the statistics state under key {key:?} of store {store:?} is corrupt; it was moved to key {moved_to:?}"
    )]
    CorruptState {
        /// The store name.
        store: String,
        /// The key the state was under.
        key: String,
        /// The key it is under now.
        moved_to: String,
        /// Why it is not a valid state.
        #[source]
        cause: Cause,
    },
    /// A periodic report was not delivered: the log sink refused it (it was not running,
    /// or its queue was full under `RaiseError`) and `reason` is the sink's reason code; or
    /// the write to standard error failed (`DISPATCH_FAILED`). The next report is sent on
    /// schedule.
    #[error("the periodic report was not delivered ({reason})")]
    ReportRefused {
        /// Why the sink refused it.
        reason: ErrorReason,
    },
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
    pub fn reason(&self) -> StatsReason {
        match self {
            Self::NotRecording { .. } => ErrorReason::InvalidState.into(),
            Self::QueueOverflow => ErrorReason::QueueOverflow.into(),
            Self::Recorder(error) => error.reason().into(),
            Self::InvalidConfig { .. } => StatsReason::InvalidArgument,
            Self::Store { source, .. } => source.reason(),
            Self::CorruptState { .. } => StatsReason::CorruptState,
            Self::ReportRefused { reason } => (*reason).into(),
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

crate::error::component_reason! {
    /// A stable code naming why an operation of the statistics failed: the `reason()` of
    /// [`StatsError`] and [`StoreError`]. The failures of the queue the statistics are
    /// built on are the core's, as `Core(ErrorReason)`.
    ///
    /// # Examples
    ///
    /// ```
    /// use mvx::ErrorReason;
    /// use mvx::stats::{StatsError, StatsReason};
    ///
    /// assert_eq!(StatsError::QueueOverflow.reason(), ErrorReason::QueueOverflow);
    /// let refused = StatsError::InvalidConfig { field: "log_interval", problem: "must not be zero" };
    /// assert_eq!(refused.reason(), StatsReason::InvalidArgument);
    /// assert_eq!(refused.reason().as_str(), "INVALID_ARGUMENT");
    /// ```
    pub enum StatsReason {
        /// A key-value store failed to read, write or remove a value.
        StoreFailed = "STORE_FAILED",
        /// A persisted state is not valid (it is moved aside, never deleted).
        CorruptState = "CORRUPT_STATE",
        /// An argument was rejected (a configuration value, a store name or key).
        InvalidArgument = "INVALID_ARGUMENT",
    }
}

/// What was being done with the persisted state when a store failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum StoreOperation {
    /// Reading it on start.
    Load,
    /// Writing it (periodically, or on stop).
    Save,
    /// Removing it (`reset()`).
    Delete,
    /// Moving a corrupt state aside.
    MoveAside,
}

impl fmt::Display for StoreOperation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Load => "load",
            Self::Save => "save",
            Self::Delete => "delete",
            Self::MoveAside => "move aside",
        })
    }
}
