//! The settings of a metricq client: where the broker is, who the client is, how long each
//! wait may take.

use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use url::Url;

use super::error::MetricqError;

/// How long connecting (TCP, TLS, the AMQP handshake, the first declarations) may take by
/// default.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(30);
/// How long the management connection may stay lost by default before the agent is stopped
/// (the Python `Agent`'s `connection_timeout` default).
pub const DEFAULT_CONNECTION_TIMEOUT: Duration = Duration::from_secs(600);
/// How long a data connection may stay lost by default before the agent is stopped (the
/// Python `DataClient`'s watchdog default when no `connection_timeout` is given).
pub const DEFAULT_DATA_CONNECTION_TIMEOUT: Duration = Duration::from_secs(60);
/// The pause between two attempts to re-establish a lost connection by default (the
/// `reconnect_interval` the Python client gives `aio_pika.connect_robust`).
pub const DEFAULT_RECONNECT_INTERVAL: Duration = Duration::from_secs(5);
/// How long an RPC waits for its answer by default (Python's `Agent.rpc` default).
pub const DEFAULT_RPC_TIMEOUT: Duration = Duration::from_secs(60);
/// How long a data chunk may wait by default for its connection and the broker's
/// confirmation before it is counted failed.
pub const DEFAULT_DELIVERY_TIMEOUT: Duration = Duration::from_secs(60);

/// Where the MetricQ network is and how the client behaves on it.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use mvx::agent::metricq::MetricqConfig;
///
/// let config = MetricqConfig::new("amqp://user:secret@127.0.0.1:5672/", "source-example")?
///     .rpc_timeout(Duration::from_secs(10))
///     .connection_timeout(Duration::from_secs(120));
/// assert_eq!(config.token(), "source-example");
/// assert_eq!(config.redacted_url(), "amqp://user:******@127.0.0.1:5672/");
/// # Ok::<(), mvx::agent::metricq::MetricqError>(())
/// ```
#[derive(Clone, Debug)]
pub struct MetricqConfig {
    url: Url,
    token: String,
    pub(crate) connect_timeout: Duration,
    pub(crate) management_connection_timeout: Duration,
    pub(crate) data_connection_timeout: Duration,
    pub(crate) reconnect_interval: Duration,
    pub(crate) rpc_timeout: Duration,
    pub(crate) delivery_timeout: Duration,
    pub(crate) ca_certificates: Option<String>,
    pub(crate) persistent_data: bool,
}

impl MetricqConfig {
    /// A client of the network whose management broker is at `url` (`amqp://` or
    /// `amqps://`), known as `token`.
    ///
    /// # Errors
    ///
    /// [`MetricqError::InvalidConfig`] if `url` is not an `amqp`/`amqps` URL with a host,
    /// or `token` is empty or too long for its RPC queue name (`<token>-rpc`, at most 255
    /// bytes).
    pub fn new(url: &str, token: impl Into<String>) -> Result<Self, MetricqError> {
        let url = parse_url(url)?;
        let token = token.into();
        validate_token(&token)?;
        Ok(Self {
            url,
            token,
            connect_timeout: DEFAULT_CONNECT_TIMEOUT,
            management_connection_timeout: DEFAULT_CONNECTION_TIMEOUT,
            data_connection_timeout: DEFAULT_DATA_CONNECTION_TIMEOUT,
            reconnect_interval: DEFAULT_RECONNECT_INTERVAL,
            rpc_timeout: DEFAULT_RPC_TIMEOUT,
            delivery_timeout: DEFAULT_DELIVERY_TIMEOUT,
            ca_certificates: None,
            persistent_data: false,
        })
    }

    /// Appends `.` and 32 random hexadecimal digits to the token, as the Python client's
    /// `add_uuid` does for transient clients (every `Sink` by default).
    ///
    /// # Errors
    ///
    /// [`MetricqError::InvalidConfig`] if the token becomes too long.
    pub fn add_uuid(mut self) -> Result<Self, MetricqError> {
        let token = format!("{}.{}", self.token, random_hex());
        validate_token(&token)?;
        self.token = token;
        Ok(self)
    }

    /// Sets how long connecting may take (default [`DEFAULT_CONNECT_TIMEOUT`]); an attempt
    /// cut off fails with [`MetricqError::ConnectTimedOut`].
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// Sets how long a lost connection may stay lost before the agent is stopped with
    /// [`MetricqError::ReconnectTimedOut`], for the management and the data connections
    /// alike, as the Python client's `connection_timeout` does. Without it, the management
    /// connection has [`DEFAULT_CONNECTION_TIMEOUT`] and data connections
    /// [`DEFAULT_DATA_CONNECTION_TIMEOUT`].
    pub fn connection_timeout(mut self, timeout: Duration) -> Self {
        self.management_connection_timeout = timeout;
        self.data_connection_timeout = timeout;
        self
    }

    /// Sets the pause between two reconnection attempts (default
    /// [`DEFAULT_RECONNECT_INTERVAL`]).
    pub fn reconnect_interval(mut self, interval: Duration) -> Self {
        self.reconnect_interval = interval;
        self
    }

    /// Sets how long an RPC waits for its answer (default [`DEFAULT_RPC_TIMEOUT`]).
    pub fn rpc_timeout(mut self, timeout: Duration) -> Self {
        self.rpc_timeout = timeout;
        self
    }

    /// Sets how long a data chunk may wait for a lost data connection to come back and for
    /// the broker's confirmation before it is counted failed (default
    /// [`DEFAULT_DELIVERY_TIMEOUT`]).
    pub fn delivery_timeout(mut self, timeout: Duration) -> Self {
        self.delivery_timeout = timeout;
        self
    }

    /// Trusts the certificates in `pem` (one or more PEM blocks) for `amqps://` brokers,
    /// besides the system's roots.
    pub fn ca_certificates(mut self, pem: impl Into<String>) -> Self {
        self.ca_certificates = Some(pem.into());
        self
    }

    /// Publishes data chunks as persistent messages (AMQP `delivery_mode` 2), so that a
    /// durable queue (a database's) keeps them across a broker restart; the broker then
    /// confirms them once written to disk. Default `false`, as the Python client.
    pub fn persistent_data(mut self, persistent: bool) -> Self {
        self.persistent_data = persistent;
        self
    }

    /// The client's token: its name on the network, the prefix of its queues.
    pub fn token(&self) -> &str {
        &self.token
    }

    /// The management URL with the password replaced by `******`.
    pub fn redacted_url(&self) -> String {
        redact(&self.url)
    }

    pub(crate) fn url(&self) -> &Url {
        &self.url
    }

    /// The URL of a data server the manager named: metricq's `derive_address`. An address
    /// `vhost:<name>` is the management URL with that virtual host; any other address is a
    /// URL that gets the management URL's user name and password.
    pub(crate) fn derive_address(&self, address: &str) -> Result<Url, MetricqError> {
        if let Some(vhost) = address.strip_prefix("vhost:") {
            let mut derived = self.url.clone();
            derived.set_path(vhost);
            return Ok(derived);
        }
        let mut derived = parse_url(address)?;
        derived
            .set_username(self.url.username())
            .and_then(|()| derived.set_password(self.url.password()))
            .map_err(|()| MetricqError::InvalidConfig {
                detail: format!("cannot set credentials on the data server address {address}"),
            })?;
        Ok(derived)
    }
}

/// Parses an `amqp://` or `amqps://` URL with a host.
pub(crate) fn parse_url(text: &str) -> Result<Url, MetricqError> {
    let url = Url::parse(text).map_err(|error| MetricqError::InvalidConfig {
        detail: format!("not a URL ({error})"),
    })?;
    if !matches!(url.scheme(), "amqp" | "amqps") {
        return Err(MetricqError::InvalidConfig {
            detail: format!(
                "the scheme of {} is {}, not amqp or amqps",
                redact(&url),
                url.scheme()
            ),
        });
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err(MetricqError::InvalidConfig {
            detail: format!("{} has no host", redact(&url)),
        });
    }
    Ok(url)
}

/// `url` with its password replaced by `******`.
pub(crate) fn redact(url: &Url) -> String {
    let mut shown = url.clone();
    if shown.password().is_some() {
        let _ = shown.set_password(Some("******"));
    }
    shown.to_string()
}

fn validate_token(token: &str) -> Result<(), MetricqError> {
    if token.is_empty() {
        return Err(MetricqError::InvalidConfig {
            detail: "the token is empty".into(),
        });
    }
    // The RPC queue is `<token>-rpc`; a sink's data queue adds 38 more bytes.
    if token.len() + "-rpc".len() > 255 {
        return Err(MetricqError::InvalidConfig {
            detail: format!(
                "the token is {} bytes long; at most 251 fit a queue name",
                token.len()
            ),
        });
    }
    Ok(())
}

/// 32 random hexadecimal digits: a random 128-bit value from std's hasher keys (seeded
/// from the operating system), mixed with a process-wide counter.
pub(crate) fn random_hex() -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let count = COUNTER.fetch_add(1, Ordering::Relaxed);
    let mut high = RandomState::new().build_hasher();
    high.write_u64(count);
    let mut low = RandomState::new().build_hasher();
    low.write_u64(count ^ 0x9e37_79b9_7f4a_7c15);
    format!("{:016x}{:016x}", high.finish(), low.finish())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_bad_urls_and_tokens() {
        for url in ["", "127.0.0.1:5672", "http://host/", "amqp:///vhost"] {
            assert!(
                matches!(
                    MetricqConfig::new(url, "t"),
                    Err(MetricqError::InvalidConfig { .. })
                ),
                "{url}"
            );
        }
        assert!(MetricqConfig::new("amqp://h/", "").is_err());
        assert!(MetricqConfig::new("amqp://h/", "x".repeat(252)).is_err());
        assert!(MetricqConfig::new("amqp://h/", "x".repeat(251)).is_ok());
        assert!(MetricqConfig::new("amqps://h:5671/%2f", "t").is_ok());
    }

    #[test]
    fn derives_data_addresses_like_metricq() {
        let config = MetricqConfig::new("amqp://user:pw@manager:5672/mgmt", "t").unwrap();
        assert_eq!(
            config.derive_address("vhost:data").unwrap().as_str(),
            "amqp://user:pw@manager:5672/data"
        );
        assert_eq!(
            config
                .derive_address("amqps://data-host:5671/")
                .unwrap()
                .as_str(),
            "amqps://user:pw@data-host:5671/"
        );
        assert!(config.derive_address("not a url").is_err());
        assert_eq!(
            config.redacted_url(),
            "amqp://user:******@manager:5672/mgmt"
        );
    }

    #[test]
    fn uuids_differ() {
        let a = random_hex();
        let b = random_hex();
        assert_eq!(a.len(), 32);
        assert!(a.chars().all(|c| c.is_ascii_hexdigit()));
        assert_ne!(a, b);
        let config = MetricqConfig::new("amqp://h/", "sink-x")
            .unwrap()
            .add_uuid()
            .unwrap();
        assert!(config.token().starts_with("sink-x."));
        assert_eq!(config.token().len(), "sink-x.".len() + 32);
    }
}
