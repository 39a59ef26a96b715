//! Exposition: everything in a [`Registry`](crate::metrics::Registry) as Prometheus or
//! OpenMetrics text, served over HTTP.
//!
//! - [`text`]: the encoders ([`TextEncoder`], [`encode`]) and content negotiation
//!   ([`Format::negotiate`]). Pure functions over snapshots: no I/O, always available.
//! - `http` (feature `http`): a metrics server on your executor (`MetricsServer`) or on its
//!   own thread (`ThreadedMetricsServer`), and a handler (`metrics_response`) to mount in
//!   your own hyper service; HTTPS with the `tls` feature.
//! - `discovery` (feature `http`): register the server with a service discovery system
//!   (`ServiceDiscovery`), with a Consul agent implementation (`ConsulAgent`).

pub mod text;

pub use self::text::{Encoded, Format, TextEncoder, encode, sanitize_name};

use crate::ErrorReason;

/// Errors of exposition: encoder configuration, serving, service discovery.
#[derive(Debug, thiserror::Error)]
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
}

impl ExposeError {
    /// The stable reason code of this error.
    pub fn reason(&self) -> ErrorReason {
        match self {
            Self::InvalidLabelName { .. } => ErrorReason::InvalidArgument,
        }
    }
}
