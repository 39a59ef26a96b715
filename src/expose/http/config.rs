//! `ServerConfig`: how a metrics server listens and answers.

use std::fmt;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use super::{
    DEFAULT_API_PATH, DEFAULT_HEADER_READ_TIMEOUT, DEFAULT_MAX_CONNECTIONS,
    DEFAULT_MAX_HEADER_BYTES, DEFAULT_PATH, DEFAULT_WRITE_TIMEOUT,
};
use crate::expose::TextEncoder;
use crate::expose::discovery::ServiceDiscovery;

/// How a metrics server listens and answers.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use mvx::expose::TextEncoder;
/// use mvx::expose::http::ServerConfig;
///
/// let config = ServerConfig::new("127.0.0.1:0".parse()?)
///     .path("/internal/metrics")
///     .header_read_timeout(Duration::from_secs(5))
///     .max_connections(16)
///     .encoder(TextEncoder::new().label("service", "billing")?);
/// assert_eq!(config.get_path(), "/internal/metrics");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone)]
pub struct ServerConfig {
    pub(super) addr: SocketAddr,
    pub(super) path: String,
    pub(super) api_path: Option<String>,
    pub(super) header_read_timeout: Duration,
    pub(super) write_timeout: Duration,
    pub(super) max_header_bytes: usize,
    pub(super) max_connections: usize,
    pub(super) encoder: TextEncoder,
    pub(super) discovery: Option<Arc<dyn ServiceDiscovery>>,
    #[cfg(feature = "tls")]
    pub(super) tls: Option<Arc<futures_rustls::rustls::ServerConfig>>,
}

impl ServerConfig {
    /// Listens on `addr` (port 0 picks a free port), with every other setting at its
    /// default.
    pub fn new(addr: SocketAddr) -> Self {
        Self {
            addr,
            path: DEFAULT_PATH.to_owned(),
            api_path: Some(DEFAULT_API_PATH.to_owned()),
            header_read_timeout: DEFAULT_HEADER_READ_TIMEOUT,
            write_timeout: DEFAULT_WRITE_TIMEOUT,
            max_header_bytes: DEFAULT_MAX_HEADER_BYTES,
            max_connections: DEFAULT_MAX_CONNECTIONS,
            encoder: TextEncoder::new(),
            discovery: None,
            #[cfg(feature = "tls")]
            tls: None,
        }
    }

    /// The path of the metrics endpoint (default [`DEFAULT_PATH`]); a leading `/` is added
    /// if missing.
    pub fn path(mut self, path: impl Into<String>) -> Self {
        let path = path.into();
        self.path = if path.starts_with('/') {
            path
        } else {
            format!("/{path}")
        };
        self
    }

    /// The configured path.
    pub fn get_path(&self) -> &str {
        &self.path
    }

    /// The path of the list of metrics as JSON (default [`DEFAULT_API_PATH`]; see
    /// [`get_metrics_response`](super::get_metrics_response)); a leading `/` is added if
    /// missing. If it is the metrics path too, that path serves the metrics text.
    ///
    /// A regular expression in its query is held to the
    /// [selector budget](crate::metrics::selector#the-budget-of-a-regular-expression), so that
    /// no request for the list of metrics holds the scrapes up for more than about a
    /// millisecond beyond the listing.
    pub fn api_path(mut self, path: impl Into<String>) -> Self {
        let path = path.into();
        self.api_path = Some(if path.starts_with('/') {
            path
        } else {
            format!("/{path}")
        });
        self
    }

    /// Serves no list of metrics: the API path answers `404` like any other path.
    pub fn without_api(mut self) -> Self {
        self.api_path = None;
        self
    }

    /// The configured API path; `None` after [`without_api`](Self::without_api).
    pub fn get_api_path(&self) -> Option<&str> {
        self.api_path.as_deref()
    }

    /// How long a client has to send a complete request head, and for HTTPS to complete
    /// the TLS handshake (default [`DEFAULT_HEADER_READ_TIMEOUT`]). A zero duration is
    /// raised to one millisecond.
    pub fn header_read_timeout(mut self, timeout: Duration) -> Self {
        self.header_read_timeout = timeout.max(Duration::from_millis(1));
        self
    }

    /// How long a write of the answer may make no progress (a client that stops reading)
    /// before the client is disconnected (default [`DEFAULT_WRITE_TIMEOUT`]). A zero
    /// duration is raised to one millisecond.
    pub fn write_timeout(mut self, timeout: Duration) -> Self {
        self.write_timeout = timeout.max(Duration::from_millis(1));
        self
    }

    /// The largest request head accepted, in bytes (default [`DEFAULT_MAX_HEADER_BYTES`]);
    /// larger ones get `431`.
    pub fn max_header_bytes(mut self, bytes: usize) -> Self {
        self.max_header_bytes = bytes;
        self
    }

    /// How many connections are served at once (default [`DEFAULT_MAX_CONNECTIONS`]); a
    /// value of 0 is raised to 1.
    ///
    /// At the limit, a new connection evicts one that is waiting for a request head (one
    /// that never completed a request, the oldest first, else the keep-alive connection idle
    /// the longest) and is refused only when every connection is answering a request (see
    /// the [module docs](super#bad-clients)).
    pub fn max_connections(mut self, connections: usize) -> Self {
        self.max_connections = connections.max(1);
        self
    }

    /// The encoder (and so the labels added to every sample).
    pub fn encoder(mut self, encoder: TextEncoder) -> Self {
        self.encoder = encoder;
        self
    }

    /// Registers the server with `discovery` when it starts, and deregisters it on close.
    pub fn service_discovery(mut self, discovery: impl ServiceDiscovery) -> Self {
        self.discovery = Some(Arc::new(discovery));
        self
    }

    /// Serves HTTPS with this rustls configuration.
    ///
    /// The server speaks HTTP/1.1 only: if the configuration lists ALPN protocols, include
    /// `http/1.1`.
    #[cfg(feature = "tls")]
    pub fn tls(mut self, config: Arc<futures_rustls::rustls::ServerConfig>) -> Self {
        self.tls = Some(config);
        self
    }

    pub(super) fn https(&self) -> bool {
        #[cfg(feature = "tls")]
        {
            self.tls.is_some()
        }
        #[cfg(not(feature = "tls"))]
        {
            false
        }
    }
}

impl fmt::Debug for ServerConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ServerConfig")
            .field("addr", &self.addr)
            .field("path", &self.path)
            .field("api_path", &self.api_path)
            .field("header_read_timeout", &self.header_read_timeout)
            .field("write_timeout", &self.write_timeout)
            .field("max_header_bytes", &self.max_header_bytes)
            .field("max_connections", &self.max_connections)
            .field("encoder", &self.encoder)
            .field("service_discovery", &self.discovery.is_some())
            .field("https", &self.https())
            .finish()
    }
}
