//! `MetricsServer`: the handle, its shared state and its driver future.

use std::fmt;
use std::future::Future;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, TcpListener};
use std::pin::{Pin, pin};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::task::Poll;
use std::time::Duration;

use async_io::Async;
use event_listener::Event;
use futures::future::{Either, select};
use futures::task::{Spawn, SpawnExt};

use super::ServerConfig;
use super::connection::serve;
use crate::error::Cause;
use crate::expose::ExposeError;
use crate::expose::discovery::{Deregistration, Registration, ServerInfo, ServiceDiscovery};
use crate::metrics::Registry;

/// Counters of a server's connections.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ServerStats {
    /// Connections accepted and served.
    pub accepted: u64,
    /// Connections closed at once because `max_connections` were being served, each
    /// answering a request.
    pub refused: u64,
    /// Connections closed to make room for a newcomer when `max_connections` were being
    /// served: each the one that had waited the longest for a request head (see the
    /// [module docs](super#bad-clients)).
    pub evicted: u64,
    /// Connections that ended with an error: a malformed request, oversized headers, a
    /// header read timeout, a failed TLS handshake, a reset, or a panic while serving.
    pub failed: u64,
    /// Connections being served now.
    pub active: u64,
}

/// A metrics server on your executor: a handle to a socket served by a driver future.
///
/// `Clone + Send + Sync`; clones share the server. See the [module docs](super) for what it
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
///     assert!(server.metrics_url().ends_with("/metrics"));
///     assert_ne!(server.local_addr().port(), 0);
///     server.close().await?;
///     server.close().await?; // idempotent
///     Ok::<(), Box<dyn std::error::Error>>(())
/// }))?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone)]
pub struct MetricsServer {
    pub(super) shared: Arc<Shared>,
    /// Stops the driver when the last handle is dropped.
    _guard: Arc<HandleGuard>,
}

pub(super) struct Shared {
    pub(super) info: ServerInfo,
    /// The URL of the list of metrics, if the server serves one.
    pub(super) api_url: Option<String>,
    /// Set by `close()` (or when the last handle goes); the driver then stops.
    pub(super) stopping: AtomicBool,
    pub(super) stop: Event,
    /// Set by the driver when it has stopped and released the socket.
    pub(super) finished: AtomicBool,
    pub(super) finish: Event,
    /// `close()`: who runs it, its outcome, and the wake-up of concurrent callers.
    pub(super) closing: AtomicBool,
    pub(super) closed: OnceLock<Result<(), ExposeError>>,
    pub(super) close_done: Event,
    pub(super) deregistration: Mutex<Option<Deregistration>>,
    /// The error of the last registration, if it did not register the server.
    pub(super) registration_error: Mutex<Option<ExposeError>>,
    pub(super) counters: Counters,
}

#[derive(Default)]
pub(super) struct Counters {
    pub(super) accepted: AtomicU64,
    pub(super) refused: AtomicU64,
    pub(super) evicted: AtomicU64,
    pub(super) failed: AtomicU64,
    pub(super) active: AtomicU64,
}

impl Shared {
    pub(super) fn request_stop(&self) {
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
            url: url_of(local_addr, https, "/"),
            metrics_url: url_of(local_addr, https, &config.path),
            path: config.path.clone(),
            https,
        };
        let api_url = config
            .api_path
            .as_deref()
            .map(|path| url_of(local_addr, https, path));
        let shared = Arc::new(Shared {
            info,
            api_url,
            stopping: AtomicBool::new(false),
            stop: Event::new(),
            finished: AtomicBool::new(false),
            finish: Event::new(),
            closing: AtomicBool::new(false),
            closed: OnceLock::new(),
            close_done: Event::new(),
            deregistration: Mutex::new(None),
            registration_error: Mutex::new(None),
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
    /// A registration the discovery refuses leaves the server running, not registered,
    /// with the refusal in [`registration_error`](Self::registration_error) (see
    /// [discovery](crate::expose::discovery)).
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
            match server.register(&*discovery).await {
                Ok(()) | Err(ExposeError::RegistrationRefused(_)) => {}
                Err(error) => {
                    let _ = server.close().await;
                    return Err(error);
                }
            }
        }
        Ok(server)
    }

    /// Registers the server with `discovery`; `close()` runs the deregistration.
    ///
    /// A server registered twice runs both deregistrations on close, the latest first. The
    /// outcome is kept: [`registration_error`](Self::registration_error) is this call's
    /// error, or `None` after a success.
    ///
    /// # Errors
    ///
    /// - [`ExposeError::RegistrationRefused`] with the reason the discovery gave for not
    ///   registering the server;
    /// - [`ExposeError::Registration`] with the discovery's error.
    pub async fn register(&self, discovery: &dyn ServiceDiscovery) -> Result<(), ExposeError> {
        let outcome = match discovery.register(&self.shared.info).await {
            Ok(Registration::Registered(deregistration)) => {
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
            Ok(Registration::Refused(reason)) => {
                Err(ExposeError::RegistrationRefused(Cause::from_error(reason)))
            }
            Err(error) => Err(ExposeError::Registration(Cause::from_error(error))),
        };
        *lock(&self.shared.registration_error) = outcome.as_ref().err().cloned();
        outcome
    }

    /// Why the last registration did not register the server — refused
    /// ([`ExposeError::RegistrationRefused`]) or failed ([`ExposeError::Registration`]) —
    /// or `None` if it did, or none was made.
    pub fn registration_error(&self) -> Option<ExposeError> {
        lock(&self.shared.registration_error).clone()
    }

    /// The address the server listens on (with the real port when bound to port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.shared.info.local_addr
    }

    /// The server's URL, its root, such as `http://127.0.0.1:9100/`, as prometheus_async's
    /// `url`: the root answers a page that links to the metrics (see the
    /// [module docs](super#what-the-server-answers)); scrape [`metrics_url`](Self::metrics_url).
    ///
    /// A server listening on an unspecified address (`0.0.0.0`, `::`) gives the loopback
    /// address of the same family in its URLs, which reaches it from this machine.
    pub fn url(&self) -> &str {
        &self.shared.info.url
    }

    /// The URL of the metrics endpoint, such as `http://127.0.0.1:9100/metrics`.
    pub fn metrics_url(&self) -> &str {
        &self.shared.info.metrics_url
    }

    /// The URL of the list of metrics as JSON, such as
    /// `http://127.0.0.1:9100/api/metrics`; `None` if the server serves none
    /// ([`ServerConfig::without_api`]).
    pub fn api_url(&self) -> Option<&str> {
        self.shared.api_url.as_deref()
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
            evicted: counters.evicted.load(Ordering::Relaxed),
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
