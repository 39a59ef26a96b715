//! The errors of the metricq client and their stable reason codes.

use std::sync::Arc;
use std::time::Duration;

use crate::metrics::SelectorError;

crate::error::component_reason! {
    /// A stable code naming why a metricq operation failed: the `reason()` of
    /// [`MetricqError`].
    ///
    /// The codes do not change between releases; new ones may be added. Match on them, log
    /// or count them independently of the message text. The metricq client carries no core
    /// error, so `Core` is never its reason.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use mvx::agent::metricq::{MetricqError, MetricqReason};
    ///
    /// let error = MetricqError::RpcTimedOut {
    ///     function: "get_metrics".into(),
    ///     timeout: Duration::from_secs(60),
    /// };
    /// assert_eq!(error.reason(), MetricqReason::RpcTimedOut);
    /// assert_eq!(error.reason().as_str(), "RPC_TIMED_OUT");
    /// ```
    pub enum MetricqReason {
        /// A URL or a setting was refused before anything was sent.
        InvalidConfig = "INVALID_CONFIG",
        /// An argument was refused (an RPC's arguments are not a JSON object, a routing key
        /// is longer than 255 bytes, an empty metric name, a selector the manager refuses).
        InvalidArgument = "INVALID_ARGUMENT",
        /// The broker could not be reached, or refused the connection or the login.
        ConnectFailed = "CONNECT_FAILED",
        /// Connecting did not finish within the connect timeout.
        ConnectTimedOut = "CONNECT_TIMED_OUT",
        /// A lost connection was not re-established within the connection timeout.
        ReconnectTimedOut = "RECONNECT_TIMED_OUT",
        /// The client is not connected (never connected, or stopped).
        NotConnected = "NOT_CONNECTED",
        /// The agent was stopped while the operation waited.
        Stopped = "STOPPED",
        /// An AMQP operation (declare, bind, consume, close) failed.
        Amqp = "AMQP",
        /// A message could not be published, or the broker refused it.
        PublishFailed = "PUBLISH_FAILED",
        /// The remote answered an RPC with an error.
        RpcError = "RPC_ERROR",
        /// No answer to an RPC came within its timeout.
        RpcTimedOut = "RPC_TIMED_OUT",
        /// An answer could not be understood (not JSON, a field missing or of another type).
        InvalidResponse = "INVALID_RESPONSE",
    }
}

/// The AMQP library's error, shared so that [`MetricqError`] is `Clone`.
pub type AmqpError = Arc<lapin::Error>;

/// Why a metricq operation failed.
///
/// `Clone`: an error may be seen by several waiters. Every variant has a stable
/// [`reason()`](Self::reason).
#[derive(Clone, Debug, thiserror::Error)]
#[non_exhaustive]
pub enum MetricqError {
    /// A URL or setting was refused.
    #[error("invalid metricq configuration: {detail}")]
    InvalidConfig {
        /// What was wrong.
        detail: String,
    },
    /// An argument was refused before anything was sent.
    #[error("invalid argument: {detail}")]
    InvalidArgument {
        /// What was wrong.
        detail: String,
    },
    /// The connection to `url` (shown without its password) failed.
    #[error("connecting the {connection} connection to {url} failed")]
    ConnectFailed {
        /// Which connection: `management` or `data`.
        connection: &'static str,
        /// The broker's URL, its password replaced by `******`.
        url: String,
        /// What the AMQP library said.
        #[source]
        source: AmqpError,
    },
    /// Connecting did not finish in time.
    #[error("connecting the {connection} connection to {url} timed out after {timeout:?}")]
    ConnectTimedOut {
        /// Which connection.
        connection: &'static str,
        /// The broker's URL without its password.
        url: String,
        /// The connect timeout.
        timeout: Duration,
    },
    /// A lost connection did not come back within the connection timeout; the agent is
    /// stopped with this error.
    #[error("the {connection} connection was not re-established within {timeout:?}")]
    ReconnectTimedOut {
        /// Which connection.
        connection: &'static str,
        /// The connection timeout.
        timeout: Duration,
    },
    /// Not connected: before `connect`, after teardown, or while a connection is down
    /// beyond the time the operation may wait.
    #[error("the {connection} connection is not established")]
    NotConnected {
        /// Which connection.
        connection: &'static str,
    },
    /// The agent was stopped while the operation was in progress.
    #[error("the agent was stopped")]
    Stopped,
    /// An AMQP operation failed.
    #[error("{operation} failed")]
    Amqp {
        /// What was attempted, such as `declaring queue sink-1-data`.
        operation: String,
        /// What the AMQP library said.
        #[source]
        source: AmqpError,
    },
    /// A selector that metricq's manager refuses (see
    /// [`Selector::check`](crate::metrics::Selector::check)), refused before it is sent, as
    /// [`Registry::get_metrics`](crate::metrics::Registry::get_metrics) refuses it.
    #[error("the selector is refused")]
    InvalidSelector(#[source] SelectorError),
    /// A message could not be published, or the broker did not take it.
    #[error("publishing {what} failed: {detail}")]
    PublishFailed {
        /// What was published, such as `RPC source.register` or `a data chunk of cpu.load`.
        what: String,
        /// Why: the channel is closed, the broker refused it (`nack`), the connection was
        /// lost before the broker confirmed it.
        detail: String,
        /// What the AMQP library said, if it said something.
        #[source]
        source: Option<AmqpError>,
    },
    /// The remote answered the RPC `function` with an error.
    #[error("RPC {function} failed on the remote: {message}")]
    Rpc {
        /// The RPC.
        function: String,
        /// The remote's error, as it sent it (the `error` field of its answer).
        message: String,
    },
    /// No answer to the RPC `function` came within `timeout`.
    #[error("no answer to RPC {function} within {timeout:?}")]
    RpcTimedOut {
        /// The RPC.
        function: String,
        /// How long it waited.
        timeout: Duration,
    },
    /// An answer could not be understood.
    #[error("invalid answer to {function}: {detail}")]
    InvalidResponse {
        /// The RPC (or message) whose answer it was.
        function: String,
        /// What was wrong with it.
        detail: String,
    },
}

impl MetricqError {
    /// The stable reason code.
    pub fn reason(&self) -> MetricqReason {
        match self {
            Self::InvalidConfig { .. } => MetricqReason::InvalidConfig,
            Self::InvalidArgument { .. } | Self::InvalidSelector(_) => {
                MetricqReason::InvalidArgument
            }
            Self::ConnectFailed { .. } => MetricqReason::ConnectFailed,
            Self::ConnectTimedOut { .. } => MetricqReason::ConnectTimedOut,
            Self::ReconnectTimedOut { .. } => MetricqReason::ReconnectTimedOut,
            Self::NotConnected { .. } => MetricqReason::NotConnected,
            Self::Stopped => MetricqReason::Stopped,
            Self::Amqp { .. } => MetricqReason::Amqp,
            Self::PublishFailed { .. } => MetricqReason::PublishFailed,
            Self::Rpc { .. } => MetricqReason::RpcError,
            Self::RpcTimedOut { .. } => MetricqReason::RpcTimedOut,
            Self::InvalidResponse { .. } => MetricqReason::InvalidResponse,
        }
    }

    pub(crate) fn amqp(operation: impl Into<String>, source: lapin::Error) -> Self {
        Self::Amqp {
            operation: operation.into(),
            source: Arc::new(source),
        }
    }

    pub(crate) fn invalid_argument(detail: impl Into<String>) -> Self {
        Self::InvalidArgument {
            detail: detail.into(),
        }
    }

    pub(crate) fn invalid_response(function: &str, detail: impl Into<String>) -> Self {
        Self::InvalidResponse {
            function: function.to_owned(),
            detail: detail.into(),
        }
    }
}
