//! The metrics endpoint over HTTP (and HTTPS with the `tls` feature), under any executor.
//!
//! HTTP/1.1 comes from hyper 1; its I/O is async-io's `Async<TcpStream>` (through
//! `smol-hyper`'s adapter) and its timer async-io's `Timer`, which work under every
//! executor. Three ways to run a server, from most to least control:
//!
//! 1. [`MetricsServer::bind`] binds the socket and returns the handle and a driver future:
//!    spawn the driver on your executor (`tokio::spawn(driver)`, `executor.spawn(driver)`).
//! 2. [`MetricsServer::start`] binds, spawns the driver with a [`Spawn`]er, and registers
//!    the server with the configured [`ServiceDiscovery`].
//! 3. [`ThreadedMetricsServer::start`] does the same on a dedicated thread running mvx's
//!    own executor ([`rt::thread`](crate::rt::thread)), for applications without one.
//!
//! To serve metrics from your own hyper service instead, call [`metrics_response`] from
//! it.
//!
//! # What the server answers
//!
//! - `GET` or `HEAD` on the configured path (default `/metrics`): `200` with everything in
//!   the registry, in the format negotiated from `Accept` ([`Format::negotiate`]);
//! - any other method on that path: `405 Method Not Allowed` with `Allow: GET, HEAD`;
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
//!   are served at once. A connection accepted above the limit is closed at once, without
//!   an answer: the client sees the connection end and may retry; the server never queues
//!   it behind slow clients.
//! - Request bodies are not read.
//!
//! Each connection is served inside the driver future (no task per connection), so the
//! server needs nothing from the executor but to be polled; a panic while serving a
//! connection (a bug) closes that connection only and is counted in
//! [`ServerStats::failed`].
//!
//! # Closing
//!
//! `close()` stops accepting, drops every open connection (a scrape in progress is cut
//! off), waits for the driver to release the socket, then runs the service discovery's
//! deregistration. It is idempotent: later calls return the first outcome. Dropping every
//! [`MetricsServer`] handle without closing stops the driver too, but runs no
//! deregistration.

use std::convert::Infallible;
use std::fmt;
use std::future::Future;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, TcpListener, TcpStream};
use std::pin::{Pin, pin};
use std::sync::OnceLock;
use std::task::Poll;
use std::time::Duration;

use async_io::Async;
use bytes::Bytes;
use event_listener::Event;
use futures::future::{Either, select};
use futures::io::{AsyncRead, AsyncWrite};
use futures::stream::{FuturesUnordered, Stream};
use futures::task::{Spawn, SpawnExt};
use futures::{FutureExt, StreamExt};
use http_body_util::Full;
use hyper::{Method, Request, Response, StatusCode, header};

use super::discovery::{Deregistration, ServerInfo, ServiceDiscovery};
use super::{ExposeError, Format, TextEncoder};
use crate::error::Cause;
use crate::metrics::Registry;
use crate::rt::RuntimeThread;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

/// The default path of the metrics endpoint.
pub const DEFAULT_PATH: &str = "/metrics";
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
    addr: SocketAddr,
    path: String,
    header_read_timeout: Duration,
    write_timeout: Duration,
    max_header_bytes: usize,
    max_connections: usize,
    encoder: TextEncoder,
    discovery: Option<Arc<dyn ServiceDiscovery>>,
    #[cfg(feature = "tls")]
    tls: Option<Arc<futures_rustls::rustls::ServerConfig>>,
}

impl ServerConfig {
    /// Listens on `addr` (port 0 picks a free port), with every other setting at its
    /// default.
    pub fn new(addr: SocketAddr) -> Self {
        Self {
            addr,
            path: DEFAULT_PATH.to_owned(),
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

    fn https(&self) -> bool {
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

/// The answer to a request for metrics, for use in your own hyper service.
///
/// Routing is yours: call this for the path you serve metrics on. It answers `GET` and
/// `HEAD` with `200` and the registry's text in the format negotiated from the request's
/// `Accept` header (see [`Format::negotiate`]), with `Content-Type` and `Vary: Accept`;
/// any other method with `405` and `Allow: GET, HEAD`. For `HEAD`, hyper sends the headers
/// without the body.
///
/// # Examples
///
/// ```
/// use mvx::expose::TextEncoder;
/// use mvx::expose::http::metrics_response;
/// use mvx::metrics::Registry;
///
/// let registry = Registry::new();
/// registry.counter("jobs")?.inc();
/// let encoder = TextEncoder::new();
///
/// // In a hyper `service_fn`: route `/metrics` here, everything else to your handlers.
/// let request = hyper::Request::get("/metrics").body(())?;
/// let response = metrics_response(&registry, &encoder, &request);
/// assert_eq!(response.status(), 200);
/// assert_eq!(
///     response.headers()["content-type"],
///     "text/plain; version=0.0.4; charset=utf-8"
/// );
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn metrics_response<B>(
    registry: &Registry,
    encoder: &TextEncoder,
    request: &Request<B>,
) -> Response<Full<Bytes>> {
    if request.method() != Method::GET && request.method() != Method::HEAD {
        let mut response = plain(StatusCode::METHOD_NOT_ALLOWED, "method not allowed\n");
        response
            .headers_mut()
            .insert(header::ALLOW, header::HeaderValue::from_static("GET, HEAD"));
        return response;
    }
    let accept = request
        .headers()
        .get_all(header::ACCEPT)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .collect::<Vec<_>>()
        .join(",");
    let format = Format::negotiate((!accept.is_empty()).then_some(accept.as_str()));
    let encoded = encoder.encode_registry(registry, format);
    let mut response = Response::new(Full::new(Bytes::from(encoded.text)));
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static(format.content_type()),
    );
    headers.insert(header::VARY, header::HeaderValue::from_static("Accept"));
    response
}

/// A plain-text response.
fn plain(status: StatusCode, body: &'static str) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from_static(body.as_bytes())));
    *response.status_mut() = status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    response
}

/// Counters of a server's connections.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ServerStats {
    /// Connections accepted and served.
    pub accepted: u64,
    /// Connections closed at once because `max_connections` were being served.
    pub refused: u64,
    /// Connections that ended with an error: a malformed request, oversized headers, a
    /// header read timeout, a failed TLS handshake, a reset, or a panic while serving.
    pub failed: u64,
    /// Connections being served now.
    pub active: u64,
}

/// A metrics server on your executor: a handle to a socket served by a driver future.
///
/// `Clone + Send + Sync`; clones share the server. See the [module docs](self) for what it
/// answers, how it treats bad clients and what `close()` does.
///
/// # Examples
///
/// ```
/// use mvx::expose::http::{MetricsServer, ServerConfig};
/// use mvx::metrics::Registry;
///
/// let registry = Registry::new();
/// registry.counter("jobs")?.inc();
/// let executor = smol::Executor::new();
/// smol::block_on(executor.run(async {
///     let config = ServerConfig::new("127.0.0.1:0".parse()?);
///     let (server, driver) = MetricsServer::bind(registry, config)?;
///     executor.spawn(driver).detach(); // or tokio::spawn(driver), or any executor
///     assert!(server.url().starts_with("http://127.0.0.1:"));
///     assert_ne!(server.local_addr().port(), 0);
///     server.close().await?;
///     server.close().await?; // idempotent
///     Ok::<(), Box<dyn std::error::Error>>(())
/// }))?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone)]
pub struct MetricsServer {
    shared: Arc<Shared>,
    /// Stops the driver when the last handle is dropped.
    _guard: Arc<HandleGuard>,
}

struct Shared {
    info: ServerInfo,
    /// Set by `close()` (or when the last handle goes); the driver then stops.
    stopping: AtomicBool,
    stop: Event,
    /// Set by the driver when it has stopped and released the socket.
    finished: AtomicBool,
    finish: Event,
    /// `close()`: who runs it, its outcome, and the wake-up of concurrent callers.
    closing: AtomicBool,
    closed: OnceLock<Result<(), ExposeError>>,
    close_done: Event,
    deregistration: Mutex<Option<Deregistration>>,
    counters: Counters,
}

#[derive(Default)]
struct Counters {
    accepted: AtomicU64,
    refused: AtomicU64,
    failed: AtomicU64,
    active: AtomicU64,
}

impl Shared {
    fn request_stop(&self) {
        self.stopping.store(true, Ordering::Release);
        self.stop.notify(usize::MAX);
    }
}

/// Makes the driver stop when the last [`MetricsServer`] handle is dropped.
struct HandleGuard(Arc<Shared>);

impl Drop for HandleGuard {
    fn drop(&mut self) {
        self.0.request_stop();
    }
}

/// The future that serves a [`MetricsServer`]'s connections: spawn it on any executor.
///
/// It returns once the server is closed (or every handle is dropped), after dropping the
/// open connections and the listening socket. Dropping it stops the server too.
#[must_use = "the server answers nothing unless its driver is polled"]
pub struct ServerDriver {
    // Declared first: dropped (releasing the socket) before `finish` says so.
    future: Pin<Box<dyn Future<Output = ()> + Send>>,
    finish: Finish,
}

/// Marks the driver finished, once its socket is released: when it returns or is dropped
/// (polled or not).
struct Finish(Arc<Shared>);

impl Finish {
    fn mark(&self) {
        self.0.finished.store(true, Ordering::Release);
        self.0.finish.notify(usize::MAX);
    }
}

impl Drop for Finish {
    fn drop(&mut self) {
        self.mark();
    }
}

impl Future for ServerDriver {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut std::task::Context<'_>) -> Poll<()> {
        std::task::ready!(self.future.as_mut().poll(cx));
        self.finish.mark();
        Poll::Ready(())
    }
}

impl fmt::Debug for ServerDriver {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ServerDriver").finish_non_exhaustive()
    }
}

impl MetricsServer {
    /// Binds `config`'s address and returns the server and the driver that serves it.
    ///
    /// Nothing is answered until the driver is polled; connections made before that wait
    /// in the socket's backlog. No service discovery happens here: see
    /// [`start`](Self::start) or [`register`](Self::register).
    ///
    /// # Errors
    ///
    /// [`ExposeError::Bind`] if the address cannot be bound.
    pub fn bind(
        registry: Registry,
        config: ServerConfig,
    ) -> Result<(Self, ServerDriver), ExposeError> {
        let bind_error = |source: std::io::Error| ExposeError::Bind {
            addr: config.addr,
            source: Arc::new(source),
        };
        let listener = Async::<TcpListener>::bind(config.addr).map_err(bind_error)?;
        let local_addr = listener.get_ref().local_addr().map_err(bind_error)?;
        let https = config.https();
        let info = ServerInfo {
            local_addr,
            url: url_of(local_addr, https, &config.path),
            path: config.path.clone(),
            https,
        };
        let shared = Arc::new(Shared {
            info,
            stopping: AtomicBool::new(false),
            stop: Event::new(),
            finished: AtomicBool::new(false),
            finish: Event::new(),
            closing: AtomicBool::new(false),
            closed: OnceLock::new(),
            close_done: Event::new(),
            deregistration: Mutex::new(None),
            counters: Counters::default(),
        });
        let driver = ServerDriver {
            future: Box::pin(serve(listener, Arc::new(config), registry, shared.clone())),
            finish: Finish(shared.clone()),
        };
        // The handles own the guard; the driver only the shared state.
        let server = Self {
            _guard: Arc::new(HandleGuard(shared.clone())),
            shared,
        };
        Ok((server, driver))
    }

    /// Binds `config`'s address, spawns the driver with `spawner`, and registers the server
    /// with the configured service discovery.
    ///
    /// # Errors
    ///
    /// - [`ExposeError::Bind`] if the address cannot be bound;
    /// - [`ExposeError::EventLoopUnavailable`] if the spawner refuses the driver;
    /// - [`ExposeError::Registration`] if service discovery fails (the server is closed
    ///   before this returns).
    pub async fn start<S: Spawn + ?Sized>(
        registry: Registry,
        config: ServerConfig,
        spawner: &S,
    ) -> Result<Self, ExposeError> {
        let discovery = config.discovery.clone();
        let (server, driver) = Self::bind(registry, config)?;
        spawner
            .spawn(driver)
            .map_err(|_| ExposeError::EventLoopUnavailable)?;
        if let Some(discovery) = discovery {
            if let Err(error) = server.register(&*discovery).await {
                let _ = server.close().await;
                return Err(error);
            }
        }
        Ok(server)
    }

    /// Registers the server with `discovery`; `close()` runs the deregistration.
    ///
    /// A server registered twice runs both deregistrations on close, the latest first.
    ///
    /// # Errors
    ///
    /// [`ExposeError::Registration`] with the discovery's error.
    pub async fn register(&self, discovery: &dyn ServiceDiscovery) -> Result<(), ExposeError> {
        let deregistration = discovery
            .register(&self.shared.info)
            .await
            .map_err(|error| ExposeError::Registration(Cause::from_error(error)))?;
        let mut slot = lock(&self.shared.deregistration);
        *slot = Some(match slot.take() {
            None => deregistration,
            Some(earlier) => Deregistration::new(async move {
                let latest = deregistration.run().await;
                let first = earlier.run().await;
                latest.and(first)
            }),
        });
        Ok(())
    }

    /// The address the server listens on (with the real port when bound to port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.shared.info.local_addr
    }

    /// The URL of the metrics endpoint, such as `http://127.0.0.1:9100/metrics`.
    ///
    /// A server listening on an unspecified address (`0.0.0.0`, `::`) gives the loopback
    /// address of the same family in its URL, which reaches it from this machine.
    pub fn url(&self) -> &str {
        &self.shared.info.url
    }

    /// Whether the server speaks HTTPS.
    pub fn is_https(&self) -> bool {
        self.shared.info.https
    }

    /// Whether the server is registered with a service discovery system (and not yet
    /// closed).
    pub fn is_registered(&self) -> bool {
        lock(&self.shared.deregistration).is_some()
    }

    /// What service discovery learns about the server.
    pub fn info(&self) -> &ServerInfo {
        &self.shared.info
    }

    /// The connection counters.
    pub fn stats(&self) -> ServerStats {
        let counters = &self.shared.counters;
        ServerStats {
            accepted: counters.accepted.load(Ordering::Relaxed),
            refused: counters.refused.load(Ordering::Relaxed),
            failed: counters.failed.load(Ordering::Relaxed),
            active: counters.active.load(Ordering::Relaxed),
        }
    }

    /// Whether `close()` has finished.
    pub fn is_closed(&self) -> bool {
        self.shared.closed.get().is_some()
    }

    /// Stops the server: stops accepting, drops the open connections, waits for the driver
    /// to release the socket, then runs the deregistration.
    ///
    /// Idempotent: the first call does the work, later and concurrent calls wait for it and
    /// return its outcome. The wait for the driver needs the driver to be polled (or
    /// dropped): close a server whose driver you never spawned by dropping the driver.
    ///
    /// # Errors
    ///
    /// [`ExposeError::Deregistration`] if the deregistration failed (the server is closed
    /// all the same).
    pub async fn close(&self) -> Result<(), ExposeError> {
        let shared = &*self.shared;
        if shared.closing.swap(true, Ordering::AcqRel) {
            wait_for(|| shared.closed.get().is_some(), &shared.close_done).await;
            return shared.closed.get().cloned().unwrap_or(Ok(()));
        }
        shared.request_stop();
        wait_for(|| shared.finished.load(Ordering::Acquire), &shared.finish).await;
        let deregistration = lock(&shared.deregistration).take();
        let outcome = match deregistration {
            Some(deregistration) => deregistration
                .run()
                .await
                .map_err(|error| ExposeError::Deregistration(Cause::from_error(error))),
            None => Ok(()),
        };
        let outcome = shared.closed.get_or_init(|| outcome).clone();
        shared.close_done.notify(usize::MAX);
        outcome
    }
}

impl fmt::Debug for MetricsServer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MetricsServer")
            .field("url", &self.url())
            .field("stats", &self.stats())
            .field("closed", &self.is_closed())
            .finish()
    }
}

/// Locks `mutex`, ignoring poisoning (no user code runs under these locks).
fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Waits until `done()` holds; `event` is notified whenever it may have become true.
async fn wait_for(done: impl Fn() -> bool, event: &Event) {
    loop {
        if done() {
            return;
        }
        let listener = event.listen();
        if done() {
            return;
        }
        listener.await;
    }
}

/// The URL of a server at `addr`.
fn url_of(addr: SocketAddr, https: bool, path: &str) -> String {
    let ip = match addr.ip() {
        IpAddr::V4(ip) if ip.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
        IpAddr::V6(ip) if ip.is_unspecified() => IpAddr::V6(Ipv6Addr::LOCALHOST),
        ip => ip,
    };
    let scheme = if https { "https" } else { "http" };
    format!("{scheme}://{}{path}", SocketAddr::new(ip, addr.port()))
}

/// `future`'s output, or `None` if `duration` passes first.
pub(crate) async fn timeout<F: Future>(duration: Duration, future: F) -> Option<F::Output> {
    let future = pin!(future);
    match select(future, async_io::Timer::after(duration)).await {
        Either::Left((output, _)) => Some(output),
        Either::Right(_) => None,
    }
}

type Connection = Pin<Box<dyn Future<Output = ()> + Send>>;

/// The driver: accepts connections and serves them until told to stop; the listener and
/// the connections are dropped when it returns.
async fn serve(
    listener: Async<TcpListener>,
    config: Arc<ServerConfig>,
    registry: Registry,
    shared: Arc<Shared>,
) {
    let counters = &shared.counters;
    let mut incoming = pin!(listener.incoming());
    let mut connections: FuturesUnordered<Connection> = FuturesUnordered::new();
    let mut stop = shared.stop.listen();
    // After an accept error (too many open files, ...), a pause before accepting again.
    let mut backoff: Option<async_io::Timer> = None;

    futures::future::poll_fn(|cx| {
        loop {
            if shared.stopping.load(Ordering::Acquire) {
                return Poll::Ready(());
            }
            if Pin::new(&mut stop).poll(cx).is_pending() {
                break;
            }
            stop = shared.stop.listen();
        }
        if let Some(timer) = &mut backoff {
            if Pin::new(timer).poll(cx).is_ready() {
                backoff = None;
            }
        }
        while backoff.is_none() {
            match incoming.as_mut().poll_next(cx) {
                Poll::Ready(Some(Ok(stream))) => {
                    if connections.len() >= config.max_connections {
                        counters.refused.fetch_add(1, Ordering::Relaxed);
                        drop(stream);
                        continue;
                    }
                    counters.accepted.fetch_add(1, Ordering::Relaxed);
                    counters.active.fetch_add(1, Ordering::Relaxed);
                    connections.push(connection(stream, &config, &registry, &shared));
                }
                Poll::Ready(Some(Err(_))) => {
                    let mut timer = async_io::Timer::after(Duration::from_millis(50));
                    if Pin::new(&mut timer).poll(cx).is_pending() {
                        backoff = Some(timer);
                    }
                }
                Poll::Ready(None) | Poll::Pending => break,
            }
        }
        while let Poll::Ready(Some(())) = connections.poll_next_unpin(cx) {
            counters.active.fetch_sub(1, Ordering::Relaxed);
        }
        Poll::Pending
    })
    .await;
    let dropped = connections.len() as u64;
    drop(connections);
    counters.active.fetch_sub(dropped, Ordering::Relaxed);
}

/// Serves one connection: the TLS handshake if configured, then HTTP/1.1.
fn connection(
    stream: Async<TcpStream>,
    config: &Arc<ServerConfig>,
    registry: &Registry,
    shared: &Arc<Shared>,
) -> Connection {
    let config = config.clone();
    let registry = registry.clone();
    let shared = shared.clone();
    let served = async move {
        #[cfg(feature = "tls")]
        if let Some(tls) = &config.tls {
            let acceptor = futures_rustls::TlsAcceptor::from(tls.clone());
            return match timeout(config.header_read_timeout, acceptor.accept(stream)).await {
                Some(Ok(stream)) => http1(stream, &config, &registry).await,
                Some(Err(_)) | None => false,
            };
        }
        http1(stream, &config, &registry).await
    };
    Box::pin(
        std::panic::AssertUnwindSafe(served)
            .catch_unwind()
            .map(move |served| {
                if !matches!(served, Ok(true)) {
                    shared.counters.failed.fetch_add(1, Ordering::Relaxed);
                }
            }),
    )
}

/// Serves HTTP/1.1 on `io` until the client is done; whether it ended without an error.
async fn http1<IO>(io: IO, config: &ServerConfig, registry: &Registry) -> bool
where
    IO: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let service = hyper::service::service_fn(|request: Request<hyper::body::Incoming>| {
        let response = if request.uri().path() == config.path {
            metrics_response(registry, &config.encoder, &request)
        } else {
            plain(StatusCode::NOT_FOUND, "not found\n")
        };
        std::future::ready(Ok::<_, Infallible>(response))
    });
    hyper::server::conn::http1::Builder::new()
        .timer(smol_hyper::rt::SmolTimer::new())
        .header_read_timeout(config.header_read_timeout)
        .max_buf_size(config.max_header_bytes.max(MIN_READ_BUFFER))
        .max_header_size(config.max_header_bytes)
        .serve_connection(
            smol_hyper::rt::FuturesIo::new(WriteDeadline::new(io, config.write_timeout)),
            service,
        )
        .await
        .is_ok()
}

/// I/O whose writes fail with `TimedOut` after making no progress for `timeout`: a client
/// that stops reading its answer cannot hold a connection for ever.
struct WriteDeadline<IO> {
    io: IO,
    timeout: Duration,
    /// Runs while a write, flush or close is stalled; reset by any progress.
    stalled: Option<async_io::Timer>,
}

impl<IO> WriteDeadline<IO> {
    fn new(io: IO, timeout: Duration) -> Self {
        Self {
            io,
            timeout,
            stalled: None,
        }
    }

    /// Passes `polled` on, starting the stall timer on `Pending` and stopping it on progress;
    /// `TimedOut` once the timer fires.
    fn guard<T>(
        &mut self,
        cx: &mut std::task::Context<'_>,
        polled: Poll<std::io::Result<T>>,
    ) -> Poll<std::io::Result<T>> {
        if polled.is_ready() {
            self.stalled = None;
            return polled;
        }
        let timeout = self.timeout;
        let timer = self
            .stalled
            .get_or_insert_with(|| async_io::Timer::after(timeout));
        match Pin::new(timer).poll(cx) {
            Poll::Ready(_) => Poll::Ready(Err(std::io::ErrorKind::TimedOut.into())),
            Poll::Pending => Poll::Pending,
        }
    }
}

impl<IO: AsyncRead + Unpin> AsyncRead for WriteDeadline<IO> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &mut [u8],
    ) -> Poll<std::io::Result<usize>> {
        // Reads are bounded by hyper's header read timeout.
        Pin::new(&mut self.io).poll_read(cx, buf)
    }
}

impl<IO: AsyncWrite + Unpin> AsyncWrite for WriteDeadline<IO> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        let polled = Pin::new(&mut self.io).poll_write(cx, buf);
        self.guard(cx, polled)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        let polled = Pin::new(&mut self.io).poll_write_vectored(cx, bufs);
        self.guard(cx, polled)
    }

    fn poll_flush(
        mut self: Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> Poll<std::io::Result<()>> {
        let polled = Pin::new(&mut self.io).poll_flush(cx);
        self.guard(cx, polled)
    }

    fn poll_close(
        mut self: Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> Poll<std::io::Result<()>> {
        let polled = Pin::new(&mut self.io).poll_close(cx);
        self.guard(cx, polled)
    }
}

/// A metrics server on a dedicated thread running mvx's own executor.
///
/// For applications without an executor, or that keep exposition off theirs.
/// [`close`](Self::close) closes the server (running the deregistration), shuts the
/// executor down and joins the thread; it is idempotent, and runs on `Drop`.
///
/// # Examples
///
/// ```
/// use mvx::expose::http::{ServerConfig, ThreadedMetricsServer};
/// use mvx::metrics::Registry;
///
/// let registry = Registry::new();
/// registry.gauge("temperature")?.set(21.5);
/// let server = ThreadedMetricsServer::start(registry, ServerConfig::new("127.0.0.1:0".parse()?))?;
/// println!("scrape {}", server.url());
/// server.close()?; // stops, joins the thread
/// server.close()?; // idempotent
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct ThreadedMetricsServer {
    server: MetricsServer,
    thread: RuntimeThread,
    outcome: OnceLock<Result<(), ExposeError>>,
}

impl ThreadedMetricsServer {
    /// Binds `config`'s address, serves it on a new thread named `mvx-metrics-http`, and
    /// registers the server with the configured service discovery (from the calling
    /// thread, which waits for the registration).
    ///
    /// # Errors
    ///
    /// - [`ExposeError::Bind`] if the address cannot be bound;
    /// - [`ExposeError::ThreadSpawn`] if the thread cannot be spawned;
    /// - [`ExposeError::Registration`] if service discovery fails (the server is closed
    ///   and the thread joined before this returns).
    pub fn start(registry: Registry, config: ServerConfig) -> Result<Self, ExposeError> {
        let discovery = config.discovery.clone();
        let (server, driver) = MetricsServer::bind(registry, config)?;
        let (spawner, thread) = crate::rt::thread::spawn_executor("mvx-metrics-http".into())
            .map_err(|error| ExposeError::ThreadSpawn(Arc::new(error)))?;
        let threaded = Self {
            server,
            thread,
            outcome: OnceLock::new(),
        };
        spawner
            .spawn(driver)
            .map_err(|_| ExposeError::EventLoopUnavailable)?;
        if let Some(discovery) = discovery {
            let registered = futures::executor::block_on(threaded.server.register(&*discovery));
            if let Err(error) = registered {
                let _ = threaded.close();
                return Err(error);
            }
        }
        Ok(threaded)
    }

    /// The address the server listens on.
    pub fn local_addr(&self) -> SocketAddr {
        self.server.local_addr()
    }

    /// The URL of the metrics endpoint (see [`MetricsServer::url`]).
    pub fn url(&self) -> &str {
        self.server.url()
    }

    /// Whether the server speaks HTTPS.
    pub fn is_https(&self) -> bool {
        self.server.is_https()
    }

    /// Whether the server is registered with a service discovery system.
    pub fn is_registered(&self) -> bool {
        self.server.is_registered()
    }

    /// The connection counters.
    pub fn stats(&self) -> ServerStats {
        self.server.stats()
    }

    /// The server running on the thread.
    pub fn server(&self) -> &MetricsServer {
        &self.server
    }

    /// Closes the server (see [`MetricsServer::close`]), shuts the executor down and joins
    /// the thread.
    ///
    /// The first call does the work; later calls return its outcome at once.
    ///
    /// # Errors
    ///
    /// - [`ExposeError::CalledFromRuntimeThread`] on the server's own thread (nothing is
    ///   done);
    /// - [`ExposeError::Deregistration`] if the deregistration failed;
    /// - [`ExposeError::Runtime`] if the thread panicked.
    pub fn close(&self) -> Result<(), ExposeError> {
        if let Some(outcome) = self.outcome.get() {
            return outcome.clone();
        }
        if self.thread.is_current() {
            return Err(ExposeError::CalledFromRuntimeThread);
        }
        self.outcome
            .get_or_init(|| {
                let closed = futures::executor::block_on(self.server.close());
                let joined = self
                    .thread
                    .shutdown_and_join()
                    .map_err(ExposeError::Runtime);
                closed.and(joined)
            })
            .clone()
    }
}

impl Drop for ThreadedMetricsServer {
    fn drop(&mut self) {
        if self.thread.is_current() {
            self.server.shared.request_stop();
            self.thread.shutdown();
        } else {
            // Nobody is left to read the outcome.
            let _ = self.close();
        }
    }
}

impl fmt::Debug for ThreadedMetricsServer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ThreadedMetricsServer")
            .field("server", &self.server)
            .field("closed", &self.outcome.get().is_some())
            .finish()
    }
}
