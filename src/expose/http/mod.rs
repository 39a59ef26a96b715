//! The metrics endpoint over HTTP (and HTTPS with the `tls` feature), under any executor.
//!
//! HTTP/1.1 comes from hyper 1; its I/O is async-io's `Async<TcpStream>` (through
//! `smol-hyper`'s adapter) and its timer async-io's `Timer`, which work under every
//! executor. Three ways to run a server, from most to least control:
//!
//! 1. [`MetricsServer::bind`] binds the socket and returns the handle and a driver future:
//!    spawn the driver on your executor (`tokio::spawn(driver)`, `executor.spawn(driver)`).
//! 2. [`MetricsServer::start`] binds, spawns the driver with a [`Spawn`](futures::task::Spawn)er, and registers
//!    the server with the configured [`ServiceDiscovery`](crate::expose::discovery::ServiceDiscovery).
//! 3. [`ThreadedMetricsServer::start`] does the same on a dedicated thread running mvx's
//!    own executor ([`rt::thread`](crate::rt::thread)), for applications without one.
//!
//! To serve metrics from your own hyper service instead, call [`metrics_response`] (and
//! [`get_metrics_response`] for the list of metrics) from it.
//!
//! # What the server answers
//!
//! - `GET` or `HEAD` on `/`: `200` with prometheus_async's page,
//!   `<html><body><a href="/metrics">Metrics</a></body></html>` (`text/html; charset=utf-8`),
//!   linking to the configured path — for people, and for cheap health checks (the Consul
//!   check polls it). This root is the server's [`url`](MetricsServer::url), as it is
//!   prometheus_async's; scrapers use [`metrics_url`](MetricsServer::metrics_url). A metrics
//!   or API path configured as `/` serves that instead;
//! - `GET` or `HEAD` on the configured path (default `/metrics`): `200` with everything in
//!   the registry, in the format negotiated from `Accept` ([`Format::negotiate`](crate::expose::Format::negotiate));
//! - `GET` or `HEAD` on the API path (default `/api/metrics`, see
//!   [`ServerConfig::api_path`]): `200` with the metrics that the query string selects, as
//!   JSON — `GET /api/metrics?selector=…&prefix=…&infix=…&limit=…&hidden=…&historic=…&metadata=…`,
//!   or repeated `name=` parameters for an explicit list (see
//!   [`Selector::from_query`](crate::metrics::Selector::from_query) for the parameters and
//!   [`get_metrics_response`] for the answer); `400` with a JSON body
//!   `{"error": "...", "reason": "..."}` for a query that is not valid, among them a
//!   regular expression over the selector budget (see below);
//! - any other method on these paths: `405 Method Not Allowed` with `Allow: GET, HEAD`;
//! - any other path: `404 Not Found`;
//! - a malformed request: `400 Bad Request` (from hyper), and the connection is closed;
//! - request headers larger than [`ServerConfig::max_header_bytes`]:
//!   `431 Request Header Fields Too Large`, and the connection is closed.
//!
//! # Bad clients
//!
//! - A client that does not send a complete request head within
//!   [`header_read_timeout`](ServerConfig::header_read_timeout) (default 10 s) is
//!   disconnected; this includes idle keep-alive connections waiting for their next
//!   request, and for HTTPS the TLS handshake.
//! - A client that stops reading its answer is disconnected once a write has made no
//!   progress for [`write_timeout`](ServerConfig::write_timeout) (default 10 s).
//! - At most [`max_connections`](ServerConfig::max_connections) connections (default 64)
//!   are served at once. At the limit, a new connection takes the slot of a connection
//!   that is waiting for a request head — one that has never completed a request, the
//!   oldest first, else the keep-alive connection idle the longest — which is closed
//!   ([`ServerStats::evicted`]); a connection whose request is being answered keeps its
//!   slot, and only when every connection is answering one is the newcomer closed at once,
//!   without an answer ([`ServerStats::refused`]). So connections that send nothing, or a
//!   request head a byte at a time (a slowloris), cannot lock a scraper out: a newcomer
//!   whose request head arrives is served.
//! - A regular expression in a `/api/metrics` query has a budget (at most
//!   [`MAX_REGEX_LEN`](crate::metrics::Selector::MAX_REGEX_LEN) bytes of pattern, compiling
//!   to at most [`REGEX_SIZE_LIMIT`](crate::metrics::Selector::REGEX_SIZE_LIMIT) bytes; see
//!   [the selector budget](crate::metrics::selector#the-budget-of-a-regular-expression)):
//!   refusing or compiling one takes about a millisecond, so a request for the list of
//!   metrics delays the scrapes served beside it by no more than that plus the listing,
//!   which costs less than a scrape of the same registry.
//! - Request bodies are not read.
//!
//! Each connection is served inside the driver future (no task per connection), so the
//! server needs nothing from the executor but to be polled; the driver answers one request
//! at a time. A panic while serving a connection (a bug) closes that connection only and is
//! counted in [`ServerStats::failed`].
//!
//! # Closing
//!
//! `close()` stops accepting, drops every open connection (a scrape in progress is cut
//! off), waits for the driver to release the socket, then runs the service discovery's
//! deregistration. It is idempotent: later calls return the first outcome. Dropping every
//! [`MetricsServer`] handle without closing stops the driver too, but runs no
//! deregistration.

mod api;
mod config;
mod connection;
mod negotiation;
mod query;
mod response;
mod server;
mod slots;
mod threaded;

use std::time::Duration;

pub use self::api::get_metrics_response;
pub use self::config::ServerConfig;
pub use self::response::metrics_response;
pub use self::server::{MetricsServer, ServerDriver, ServerStats};
pub use self::threaded::ThreadedMetricsServer;

pub(crate) use self::server::timeout;

/// The default path of the metrics endpoint.
pub const DEFAULT_PATH: &str = "/metrics";
/// The default path of the list of metrics as JSON (see [`get_metrics_response`]).
pub const DEFAULT_API_PATH: &str = "/api/metrics";
/// The default time a client has to send a complete request head.
pub const DEFAULT_HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);
/// The default time a write to a client may stall before the client is disconnected.
pub const DEFAULT_WRITE_TIMEOUT: Duration = Duration::from_secs(10);
/// The default limit on the size of a request head, in bytes.
pub const DEFAULT_MAX_HEADER_BYTES: usize = 16 * 1024;
/// The default limit on connections served at once.
pub const DEFAULT_MAX_CONNECTIONS: usize = 64;

/// hyper's smallest read buffer; the read buffer is at least this, and at least the header
/// limit.
const MIN_READ_BUFFER: usize = 8 * 1024;
