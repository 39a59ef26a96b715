//! Service discovery: announce a metrics server so that Prometheus finds it.
//!
//! A [`ServiceDiscovery`] registers a server ([`ServerInfo`]) and answers with a
//! [`Registration`]: registered, with the [`Deregistration`] the server runs when it is
//! closed ([`MetricsServer::close`](super::http::MetricsServer::close)), or refused.
//! [`ConsulAgent`] speaks to a local Consul agent.
//!
//! A server registers from `start` (`MetricsServer::start`, `ThreadedMetricsServer::start`),
//! once its socket is bound and served, so that a health check finds it up. Then, as in
//! prometheus_async, whose `register` returns `None` when Consul answers anything but 200
//! and raises when the agent cannot be reached:
//!
//! - a **refused** registration ([`Registration::Refused`]; Consul's non-2xx answer) leaves
//!   the server running, not registered: `is_registered()` is false, and
//!   `registration_error()` is [`ExposeError::RegistrationRefused`](super::ExposeError::RegistrationRefused)
//!   with the refusal;
//! - a **failed** registration (`register` returns `Err`: the agent unreachable, no answer
//!   in time) closes the server and fails the start with
//!   [`ExposeError::Registration`](super::ExposeError::Registration).
//!
//! When `close()` deregisters: see [closing](super::http#closing).
//! [`MetricsServer::bind`](super::http::MetricsServer::bind) registers nothing:
//! [`MetricsServer::register`](super::http::MetricsServer::register) does it on demand.
//!
//! # Consul
//!
//! [`ConsulAgent`] registers the server with `PUT /v1/agent/service/register` and
//! deregisters it with `PUT /v1/agent/service/deregister/<id>`, over HTTP/1.1 (hyper's
//! client, on the same async-io sockets as the server). mvx's tests run it against a local
//! HTTP endpoint that records the requests it receives and answers as an agent does: no
//! Consul server can run where mvx is developed, so the exchange is checked against
//! Consul's documented API, not against a live agent.

use std::fmt;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::{Method, Request, StatusCode};

use crate::BoxError;

/// What a [`ServiceDiscovery`] learns about the server it registers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServerInfo {
    /// The address the server listens on (a real port, never 0).
    pub local_addr: SocketAddr,
    /// The server's URL, its root, such as `http://127.0.0.1:9100/`: prometheus_async's
    /// `url`, whose page links to the metrics (see
    /// [`MetricsServer::url`](super::http::MetricsServer::url)).
    pub url: String,
    /// The URL of the metrics endpoint, such as `http://127.0.0.1:9100/metrics`.
    pub metrics_url: String,
    /// The path of the metrics endpoint, such as `/metrics`.
    pub path: String,
    /// Whether the server speaks HTTPS.
    pub https: bool,
}

/// A boxed, sendable future: what [`ServiceDiscovery::register`] returns.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Registers metrics servers with a service discovery system.
///
/// The [`Deregistration`] of a [`Registration::Registered`] is run once by the server's
/// `close()`; its error, if any, is `close()`'s error.
///
/// # Examples
///
/// ```
/// use mvx::BoxError;
/// use mvx::expose::discovery::{BoxFuture, Deregistration, Registration, ServerInfo, ServiceDiscovery};
///
/// /// Announces servers in a log line, and their end in another.
/// struct LogAnnouncer;
///
/// impl ServiceDiscovery for LogAnnouncer {
///     fn register<'a>(
///         &'a self,
///         server: &'a ServerInfo,
///     ) -> BoxFuture<'a, Result<Registration, BoxError>> {
///         let url = server.metrics_url.clone();
///         Box::pin(async move {
///             println!("metrics at {url}");
///             Ok(Registration::Registered(Deregistration::new(async move {
///                 println!("metrics at {url} are gone");
///                 Ok(())
///             })))
///         })
///     }
/// }
/// ```
pub trait ServiceDiscovery: Send + Sync + 'static {
    /// Registers `server`: [`Registration::Registered`] with what undoes it, or
    /// [`Registration::Refused`] with the reason the system gave for not registering it
    /// (the server runs unregistered).
    ///
    /// # Errors
    ///
    /// The registration could not be made (the system unreachable, no answer): a server
    /// that registers from `start` does not start.
    fn register<'a>(
        &'a self,
        server: &'a ServerInfo,
    ) -> BoxFuture<'a, Result<Registration, BoxError>>;
}

/// What [`ServiceDiscovery::register`] came to, when the discovery system answered.
#[derive(Debug)]
#[must_use = "a registration's deregistration does nothing unless it is run"]
pub enum Registration {
    /// The server is registered; the deregistration is run by the server's `close()`.
    Registered(Deregistration),
    /// The system answered and did not register the server (Consul's non-2xx answer): the
    /// server runs unregistered, and its `registration_error()` holds this reason.
    Refused(BoxError),
}

impl From<Deregistration> for Registration {
    fn from(deregistration: Deregistration) -> Self {
        Self::Registered(deregistration)
    }
}

/// Undoes a registration: returned by [`ServiceDiscovery::register`], run by the server's
/// `close()`.
#[must_use = "a deregistration does nothing unless it is run"]
pub struct Deregistration {
    future: Option<BoxFuture<'static, Result<(), BoxError>>>,
}

impl Deregistration {
    /// A deregistration that runs `future`.
    pub fn new(future: impl Future<Output = Result<(), BoxError>> + Send + 'static) -> Self {
        Self {
            future: Some(Box::pin(future)),
        }
    }

    /// A deregistration with nothing to do (for systems where registrations expire).
    pub fn nothing() -> Self {
        Self { future: None }
    }

    /// Runs the deregistration.
    ///
    /// # Errors
    ///
    /// The error of the deregistration's future.
    pub async fn run(self) -> Result<(), BoxError> {
        match self.future {
            Some(future) => future.await,
            None => Ok(()),
        }
    }
}

impl fmt::Debug for Deregistration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Deregistration")
            .field("has_work", &self.future.is_some())
            .finish()
    }
}

/// Service discovery through a local Consul agent's HTTP API.
///
/// Registers the server as a service named [`name`](Self::name) (default `app-metrics`)
/// with the ID [`service_id`](Self::service_id) (default: the name), the server's address
/// and port, the [`tags`](Self::tags), `Meta` entries `metrics_path` and `scheme`, and an
/// HTTP health check on the server's [`url`](ServerInfo::url) every 10 s — its root page,
/// as prometheus_async's `ConsulAgent` registers it: a cheap check that renders no
/// metrics. When the server listens on an
/// unspecified address (`0.0.0.0` or `::`), the registration leaves `Address` empty and the
/// agent uses its node's address. Closing the server deregisters the service, unless
/// [`deregister(false)`](Self::deregister) was set.
///
/// Requests carry the [`token`](Self::token) in `X-Consul-Token` if one is set, and time
/// out after [`timeout`](Self::timeout) (default 10 s). An answer other than 2xx to the
/// registration is a [`Registration::Refused`] carrying a [`ConsulError`]; no answer is an
/// error (see the [module docs](self)).
///
/// See the [module docs](self) for how this is tested.
///
/// # Examples
///
/// ```no_run
/// use mvx::expose::discovery::ConsulAgent;
/// use mvx::expose::http::{ServerConfig, ThreadedMetricsServer};
/// use mvx::metrics::Registry;
///
/// let consul = ConsulAgent::new("127.0.0.1:8500".parse()?)
///     .name("billing-metrics")
///     .tags(["billing", "prod"]);
/// let config = ServerConfig::new("0.0.0.0:0".parse()?).service_discovery(consul);
/// let server = ThreadedMetricsServer::start(Registry::new(), config)?; // registers
/// if let Some(refused) = server.registration_error() {
///     eprintln!("serving, not registered: {refused}");
/// }
/// server.close()?; // deregisters
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Debug)]
pub struct ConsulAgent {
    agent: SocketAddr,
    name: String,
    service_id: Option<String>,
    tags: Vec<String>,
    token: Option<String>,
    deregister: bool,
    timeout: Duration,
}

/// The default [`ConsulAgent::name`].
pub const DEFAULT_CONSUL_SERVICE_NAME: &str = "app-metrics";

impl ConsulAgent {
    /// Speaks to the Consul agent at `agent` (usually `127.0.0.1:8500`).
    pub fn new(agent: SocketAddr) -> Self {
        Self {
            agent,
            name: DEFAULT_CONSUL_SERVICE_NAME.to_owned(),
            service_id: None,
            tags: Vec::new(),
            token: None,
            deregister: true,
            timeout: Duration::from_secs(10),
        }
    }

    /// The service name (default `app-metrics`).
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.name = name.into();
        self
    }

    /// The service ID (default: the name).
    pub fn service_id(mut self, id: impl Into<String>) -> Self {
        self.service_id = Some(id.into());
        self
    }

    /// The service's tags.
    pub fn tags<T: Into<String>>(mut self, tags: impl IntoIterator<Item = T>) -> Self {
        self.tags = tags.into_iter().map(Into::into).collect();
        self
    }

    /// An ACL token, sent as `X-Consul-Token`.
    pub fn token(mut self, token: impl Into<String>) -> Self {
        self.token = Some(token.into());
        self
    }

    /// Whether closing the server deregisters the service (default `true`).
    pub fn deregister(mut self, deregister: bool) -> Self {
        self.deregister = deregister;
        self
    }

    /// How long each request to the agent may take (default 10 s).
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// The ID the service is registered under.
    pub fn id(&self) -> &str {
        self.service_id.as_deref().unwrap_or(&self.name)
    }

    /// The JSON body of the registration of `server`.
    fn registration(&self, server: &ServerInfo) -> String {
        let ip = server.local_addr.ip();
        let address = if ip.is_unspecified() {
            String::new()
        } else {
            ip.to_string()
        };
        let tags: Vec<String> = self.tags.iter().map(|tag| json_string(tag)).collect();
        format!(
            r#"{{"Name":{},"ID":{},"Tags":[{}],"Address":{},"Port":{},"Meta":{{"metrics_path":{},"scheme":{}}},"Check":{{"HTTP":{},"Interval":"10s"}}}}"#,
            json_string(&self.name),
            json_string(self.id()),
            tags.join(","),
            json_string(&address),
            server.local_addr.port(),
            json_string(&server.path),
            json_string(if server.https { "https" } else { "http" }),
            json_string(&server.url),
        )
    }

    /// Sends a `PUT` to the agent: `Err` if no answer came, `Ok(Err)` for an answer other
    /// than 2xx.
    async fn put(&self, path: String, body: Vec<u8>) -> Result<Result<(), ConsulError>, BoxError> {
        let mut request = Request::builder()
            .method(Method::PUT)
            .uri(path.as_str())
            .header(hyper::header::HOST, self.agent.to_string())
            .header(hyper::header::CONTENT_TYPE, "application/json");
        if let Some(token) = &self.token {
            request = request.header("X-Consul-Token", token.as_str());
        }
        let request = request.body(Full::new(Bytes::from(body)))?;
        let exchange = async {
            let stream = async_io::Async::<std::net::TcpStream>::connect(self.agent).await?;
            let (mut sender, connection) =
                hyper::client::conn::http1::handshake(smol_hyper::rt::FuturesIo::new(stream))
                    .await?;
            let respond = async {
                let response = sender.send_request(request).await?;
                let status = response.status();
                let body = response.into_body().collect().await?.to_bytes();
                Ok::<_, BoxError>((status, body))
            };
            let respond = std::pin::pin!(respond);
            // Drive the connection until the answer is in.
            let (status, body) = match futures::future::select(respond, connection).await {
                futures::future::Either::Left((answer, _)) => answer?,
                futures::future::Either::Right((Ok(()), _)) => {
                    return Err(BoxError::from("the consul agent closed the connection"));
                }
                futures::future::Either::Right((Err(error), _)) => return Err(error.into()),
            };
            if status.is_success() {
                Ok(Ok(()))
            } else {
                Ok(Err(ConsulError {
                    path: path.clone(),
                    status,
                    body: String::from_utf8_lossy(&body).into_owned(),
                }))
            }
        };
        match super::http::timeout(self.timeout, exchange).await {
            Some(result) => result,
            None => {
                Err(format!("the consul agent did not answer within {:?}", self.timeout).into())
            }
        }
    }
}

impl ServiceDiscovery for ConsulAgent {
    fn register<'a>(
        &'a self,
        server: &'a ServerInfo,
    ) -> BoxFuture<'a, Result<Registration, BoxError>> {
        Box::pin(async move {
            let body = self.registration(server).into_bytes();
            if let Err(refused) = self
                .put("/v1/agent/service/register".to_owned(), body)
                .await?
            {
                return Ok(Registration::Refused(refused.into()));
            }
            if !self.deregister {
                return Ok(Deregistration::nothing().into());
            }
            let agent = self.clone();
            Ok(Deregistration::new(async move {
                let path = format!(
                    "/v1/agent/service/deregister/{}",
                    percent_encode(agent.id())
                );
                Ok(agent.put(path, Vec::new()).await??)
            })
            .into())
        })
    }
}

/// The Consul agent answered with an error status.
#[derive(Debug, thiserror::Error)]
#[error("the consul agent answered {status} to {path}: {body}")]
pub struct ConsulError {
    /// The request path.
    pub path: String,
    /// The status of the answer.
    pub status: StatusCode,
    /// The body of the answer (Consul explains errors there).
    pub body: String,
}

/// `text` as a JSON string literal.
fn json_string(text: &str) -> String {
    let mut json = String::with_capacity(text.len() + 2);
    json.push('"');
    for c in text.chars() {
        match c {
            '"' => json.push_str("\\\""),
            '\\' => json.push_str("\\\\"),
            '\n' => json.push_str("\\n"),
            '\r' => json.push_str("\\r"),
            '\t' => json.push_str("\\t"),
            c if u32::from(c) < 0x20 => json.push_str(&format!("\\u{:04x}", u32::from(c))),
            c => json.push(c),
        }
    }
    json.push('"');
    json
}

/// `segment` with every byte outside the URL-safe unreserved set percent-encoded.
fn percent_encode(segment: &str) -> String {
    let mut encoded = String::with_capacity(segment.len());
    for byte in segment.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~') {
            encoded.push(char::from(byte));
        } else {
            encoded.push_str(&format!("%{byte:02X}"));
        }
    }
    encoded
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn service_ids_are_percent_encoded_in_the_path() {
        assert_eq!(percent_encode("app-metrics_1.x~"), "app-metrics_1.x~");
        assert_eq!(percent_encode("a b/c?ü"), "a%20b%2Fc%3F%C3%BC");
    }

    #[test]
    fn json_strings_are_escaped() {
        assert_eq!(json_string("plain"), r#""plain""#);
        assert_eq!(json_string("a\"b\\c\nd\u{1}é"), r#""a\"b\\c\nd\u0001é""#);
    }

    #[test]
    fn the_registration_names_the_server() {
        let agent = ConsulAgent::new("127.0.0.1:8500".parse().unwrap())
            .name("api")
            .tags(["a", "b\""]);
        let server = ServerInfo {
            local_addr: "10.1.2.3:9100".parse().unwrap(),
            url: "http://10.1.2.3:9100/".into(),
            metrics_url: "http://10.1.2.3:9100/metrics".into(),
            path: "/metrics".into(),
            https: false,
        };
        assert_eq!(
            agent.registration(&server),
            r#"{"Name":"api","ID":"api","Tags":["a","b\""],"Address":"10.1.2.3","Port":9100,"Meta":{"metrics_path":"/metrics","scheme":"http"},"Check":{"HTTP":"http://10.1.2.3:9100/","Interval":"10s"}}"#
        );
        let unspecified = ServerInfo {
            local_addr: "0.0.0.0:9100".parse().unwrap(),
            ..server
        };
        assert!(
            agent
                .registration(&unspecified)
                .contains(r#""Address":"","#)
        );
    }
}
