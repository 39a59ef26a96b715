//! `ThreadedMetricsServer`: a metrics server on a thread of its own.

use std::fmt;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::OnceLock;

use futures::task::SpawnExt;

use super::{MetricsServer, ServerConfig, ServerStats};
use crate::expose::ExposeError;
use crate::metrics::Registry;
use crate::rt::RuntimeThread;

/// A metrics server on a dedicated thread running mvx's own executor.
///
/// For applications without an executor, or that keep exposition off theirs.
/// [`close`](Self::close) closes the server (running the deregistration), shuts the
/// executor down and joins the thread; it is idempotent, and runs on `Drop`.
///
/// `start` and `close` block the calling thread (with `async_io::block_on`, which may be
/// nested in another executor's `block_on`): they may be called from synchronous code and
/// from inside a future that is allowed to block, such as an agent's `connect` or
/// `teardown` run by [`Runner::run`](crate::agent::Runner::run).
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
/// println!("scrape {}", server.metrics_url());
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
    /// A registration the discovery refuses leaves the server running, not registered,
    /// with the refusal in [`registration_error`](Self::registration_error) (see
    /// [discovery](crate::expose::discovery)).
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
            match async_io::block_on(threaded.server.register(&*discovery)) {
                Ok(()) | Err(ExposeError::RegistrationRefused(_)) => {}
                Err(error) => {
                    let _ = threaded.close();
                    return Err(error);
                }
            }
        }
        Ok(threaded)
    }

    /// The address the server listens on.
    pub fn local_addr(&self) -> SocketAddr {
        self.server.local_addr()
    }

    /// The server's URL, its root (see [`MetricsServer::url`]).
    pub fn url(&self) -> &str {
        self.server.url()
    }

    /// The URL of the metrics endpoint (see [`MetricsServer::metrics_url`]).
    pub fn metrics_url(&self) -> &str {
        self.server.metrics_url()
    }

    /// The URL of the list of metrics as JSON (see [`MetricsServer::api_url`]).
    pub fn api_url(&self) -> Option<&str> {
        self.server.api_url()
    }

    /// Whether the server speaks HTTPS.
    pub fn is_https(&self) -> bool {
        self.server.is_https()
    }

    /// Whether the server is registered with a service discovery system.
    pub fn is_registered(&self) -> bool {
        self.server.is_registered()
    }

    /// Why the last registration did not register the server (see
    /// [`MetricsServer::registration_error`]).
    pub fn registration_error(&self) -> Option<ExposeError> {
        self.server.registration_error()
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
                let closed = async_io::block_on(self.server.close());
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
