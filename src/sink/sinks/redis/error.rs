//! [`RedisSinkError`] and its reasons.

use std::sync::Arc;
use std::time::Duration;

use redis::RedisError;

use crate::ErrorReason;

/// Errors of the Redis streams sink.
#[derive(Clone, Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RedisSinkError {
    /// The URL is not a Redis URL.
    #[error("invalid Redis URL")]
    InvalidUrl(#[source] Arc<RedisError>),
    /// The stream name is empty.
    #[error("the stream name is empty")]
    EmptyStream,
    /// The server refused some `XADD`s of a batch it otherwise applied.
    #[error("the server refused {refused} of the batch's entries")]
    Refused {
        /// How many.
        refused: usize,
        /// The last refusal.
        #[source]
        source: Arc<RedisError>,
    },
    /// The server answered with an error that retrying cannot fix.
    #[error("the server refused the batch")]
    Server(#[source] Arc<RedisError>),
    /// The batch was not delivered within the delivery timeout.
    #[error("the batch was not delivered within {timeout:?} ({attempts} attempts)")]
    TimedOut {
        /// The delivery timeout.
        timeout: Duration,
        /// How many times the batch was tried.
        attempts: u32,
        /// The last failure.
        #[source]
        source: Arc<RedisError>,
    },
    /// Connecting to the server failed (in the start hook).
    #[error("could not connect to the Redis server")]
    Connect(#[source] Arc<RedisError>),
}

impl RedisSinkError {
    /// The stable reason code: [`RedisSinkReason::InvalidArgument`] for a bad URL or stream,
    /// the core's `DispatchFailed` for delivery, `OnStartingHookFailed` for a failed
    /// connection.
    pub fn reason(&self) -> RedisSinkReason {
        match self {
            Self::InvalidUrl(_) | Self::EmptyStream => RedisSinkReason::InvalidArgument,
            Self::Refused { .. } | Self::Server(_) | Self::TimedOut { .. } => {
                ErrorReason::DispatchFailed.into()
            }
            Self::Connect(_) => ErrorReason::OnStartingHookFailed.into(),
        }
    }
}

crate::error::component_reason! {
    /// A stable code naming why the Redis streams sink failed: the `reason()` of
    /// [`RedisSinkError`]. Delivery failures and a failed connection are the core's
    /// (`Core(DispatchFailed)`, `Core(OnStartingHookFailed)`), as the sink reports them.
    pub enum RedisSinkReason {
        /// An argument was rejected: a URL that is not a Redis URL, an empty stream name.
        InvalidArgument = "INVALID_ARGUMENT",
    }
}
