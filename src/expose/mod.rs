//! Exposition: everything in a [`Registry`](crate::metrics::Registry) as Prometheus or
//! OpenMetrics text, served over HTTP.
//!
//! - [`text`]: the encoders ([`TextEncoder`], [`encode`]). Pure functions over snapshots:
//!   no I/O, always available. Metric and label names are fitted to the Prometheus grammar
//!   by [`sanitize_name`] and its siblings (`sanitize.rs`).
//! - `http` (feature `http`): a metrics server on your executor (`MetricsServer`) or on its
//!   own thread (`ThreadedMetricsServer`), and a handler (`metrics_response`) to mount in
//!   your own hyper service; HTTPS with the `tls` feature. Content negotiation
//!   (`Format::negotiate`) and the query string of `/api/metrics` (`Selector::from_query`)
//!   are HTTP's, and live there.
//! - `discovery` (feature `http`): register the server with a service discovery system
//!   (`ServiceDiscovery`), with a Consul agent implementation (`ConsulAgent`).

#[cfg(feature = "http")]
pub mod discovery;
#[cfg(feature = "http")]
pub mod http;
mod sanitize;
pub mod text;

/// The rustls version mvx's `tls` feature uses, to build a
/// [`ServerConfig::tls`](http::ServerConfig::tls) configuration with.
#[cfg(feature = "tls")]
pub use futures_rustls::rustls;

pub use self::sanitize::sanitize_name;
pub use self::text::{Encoded, Format, SKIPPED_FAMILIES, Skipped, TextEncoder, encode};

use std::net::SocketAddr;
use std::sync::Arc;

use crate::ErrorReason;
use crate::error::{Cause, CreateError, TerminateError};

/// Errors of exposition: encoder configuration, serving, service discovery.
#[derive(Clone, Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ExposeError {
    /// A label name that Prometheus does not accept, or one already added.
    #[error(
        "invalid label name {name:?}: want [a-zA-Z_][a-zA-Z0-9_]*, not `le`, not starting with `__`, not added twice"
    )]
    InvalidLabelName {
        /// The name refused.
        name: String,
    },
    /// The server's address could not be bound (in use, not local, not permitted).
    #[error("could not bind {addr}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// The operating system's error.
        #[source]
        source: Arc<std::io::Error>,
    },
    /// The executor refused to run the server's driver: it has shut down.
    #[error("the executor refused to run the server's driver: it has shut down")]
    EventLoopUnavailable,
    /// The server's thread could not be spawned.
    #[error("could not spawn the server's thread")]
    ThreadSpawn(#[source] Arc<CreateError>),
    /// The server's thread panicked, or could not be joined.
    #[error("the server's thread failed")]
    Runtime(#[source] TerminateError),
    /// A blocking `close()` was called on the server's own thread, which it would join.
    #[error("close() was called from the server's own thread, which it cannot join")]
    CalledFromRuntimeThread,
    /// Service discovery could not register the server (no answer): a server that
    /// registers from `start` does not start (see the `discovery` module).
    #[error("service discovery registration failed")]
    Registration(#[source] Cause),
    /// Service discovery answered and did not register the server: the server runs
    /// unregistered (see the `discovery` module).
    #[error("service discovery did not register the server")]
    RegistrationRefused(#[source] Cause),
    /// The deregistration run by `close()` failed; the server is closed all the same.
    #[error("service discovery deregistration failed")]
    Deregistration(#[source] Cause),
}

impl ExposeError {
    /// The stable reason code of this error: [`ExposeReason::InvalidArgument`] for a label
    /// name, [`ExposeReason::RegistrationRefused`] for a refused registration, the core's
    /// reason for everything else (`UNEXPECTED_ERROR` for a failed bind or service
    /// discovery).
    pub fn reason(&self) -> ExposeReason {
        match self {
            Self::InvalidLabelName { .. } => ExposeReason::InvalidArgument,
            Self::RegistrationRefused(_) => ExposeReason::RegistrationRefused,
            Self::Bind { .. } | Self::Registration(_) | Self::Deregistration(_) => {
                ErrorReason::Unexpected.into()
            }
            Self::EventLoopUnavailable => ErrorReason::EventLoopUnavailable.into(),
            Self::ThreadSpawn(error) => error.reason().into(),
            Self::Runtime(error) => error.reason().into(),
            Self::CalledFromRuntimeThread => ErrorReason::CalledFromRuntimeThread.into(),
        }
    }
}

crate::error::component_reason! {
    /// A stable code naming why exposition failed: the `reason()` of [`ExposeError`]. Its
    /// runtime failures are the core's, as `Core(ErrorReason)`.
    pub enum ExposeReason {
        /// An argument was rejected: a label name Prometheus does not accept.
        InvalidArgument = "INVALID_ARGUMENT",
        /// Service discovery answered and did not register the server, which runs
        /// unregistered.
        RegistrationRefused = "REGISTRATION_REFUSED",
    }
}
