//! `RedisStreamSink`: log events appended to a Redis stream with `XADD`, a batch per
//! transaction, exactly once per acknowledged event across reconnections.
//!
//! This file holds the sink and its settings; the entries and the transaction of a batch
//! (`entries`), delivery with its retries and counters (`delivery`), and the errors
//! (`error`) are in files of their own.

mod delivery;
mod entries;
mod error;

use std::borrow::Cow;
use std::collections::hash_map::RandomState;
use std::fmt;
use std::hash::{BuildHasher, Hasher};
use std::sync::Arc;
use std::time::Duration;

use redis::aio::MultiplexedConnection;
use redis::{Client, ConnectionAddr};

pub use self::delivery::RedisDeliveryStats;
pub use self::entries::{FieldMapping, MaxLen};
pub use self::error::{RedisSinkError, RedisSinkReason};
use crate::sink::{Describe, SinkDescriptor};

/// How long connecting and each command may take by default.
pub const DEFAULT_REDIS_TIMEOUT: Duration = Duration::from_secs(5);
/// How long a batch is retried by default before its events are counted as failed.
pub const DEFAULT_DELIVERY_TIMEOUT: Duration = Duration::from_secs(60);
/// How long the server keeps a sink's acknowledgement key by default after its last batch.
pub const DEFAULT_ACK_TTL: Duration = Duration::from_secs(24 * 3600);

/// A sink dispatcher that appends [`LogEvent`](crate::sink::LogEvent)s to a Redis stream (feature `redis`).
///
/// # Delivery
///
/// Each batch the driver hands over (up to [`SinkConfig::batch_size`](crate::sink::SinkConfig)
/// events) is sent as **one transaction in one round trip**: `MULTI`, one `XADD` per event
/// (with `MAXLEN` trimming if [`max_len`](Self::max_len) is set), a `SET` of this sink's
/// acknowledgement key to the batch's sequence number, `EXEC`. The server applies all of it
/// or none of it, and its `EXEC` reply says, per event, whether the `XADD` succeeded:
/// those are counted `delivered`, any the server refused `failed`.
///
/// When a batch fails — the connection drops, the server restarts, a command times out —
/// the sink does not know whether the server ran the transaction before the failure (the
/// request may have arrived and only the reply been lost). It reconnects, with pauses
/// doubling from 20 ms to 1 s, and asks the server: under `WATCH` of the acknowledgement
/// key it reads the last sequence number the key holds. If it is this batch's, the
/// transaction ran, and the batch is counted delivered without sending it again;
/// otherwise the same transaction is sent again (and `WATCH` makes it abort, to be checked
/// again, if the earlier one lands in between). So every event the sink counts as
/// delivered is in the stream **exactly once**, whatever fails when; none is sent twice.
///
/// Events are counted `failed` when:
///
/// - the server refuses their `XADD` inside the transaction (the key holds another type);
/// - the server answers with an error that no retry can fix (a syntax or permission
///   error: the whole batch);
/// - the batch could not be delivered within [`delivery_timeout`](Self::delivery_timeout)
///   (default [`DEFAULT_DELIVERY_TIMEOUT`]): the whole batch, and the sink goes on with the
///   next batch. A batch counted failed after an attempt whose outcome was unknown may be
///   in the stream all the same (at most once): the sink could not ask the server;
/// - the sink stops and its `stop_timeout` runs out while a batch is being retried (every
///   event still pending, as for any sink).
///
/// While a batch is retried, the driver is busy with it: the queue fills, and the overflow
/// policy decides what `log()` does (see [`crate::queue`]). Nothing blocks a producer unless
/// the policy is `Block`.
///
/// What the server keeps of acknowledged events across its own restart is its business: a
/// server without persistence loses the stream (and the acknowledgement keys with it, so
/// nothing is sent twice); with `appendonly yes` and `appendfsync always` it loses nothing
/// it acknowledged.
///
/// **The acknowledgement key** is `<stream>:mvx-ack:<producer id>`, a random producer id per
/// sink, holding the last batch sequence number; it expires [`ack_ttl`](Self::ack_ttl) after
/// the sink's last batch. Its `SET` sits in the same transaction as the `XADD`s, so a
/// single Redis server (or a primary) is required: Redis Cluster is not supported.
///
/// # Entries
///
/// Every entry gets a server-assigned ID (`*`). Its fields follow the
/// [`FieldMapping`]: by default one field, `event`, holding the [`JsonLines`](crate::sink::JsonLines) object.
///
/// # Runtime
///
/// The connection runs on the `redis` crate's smol runtime (`async-io` and smol's global
/// executor, which start threads of their own on first use): the sink's driver runs under
/// any executor, with no tokio runtime. It connects in the start hook, so an unreachable
/// server or a bad password fails the start (`OnStartingHookFailed`).
///
/// # Examples
///
/// ```no_run
/// use mvx::sink::{Level, LogEvent, SinkConfig, sinks::{FieldMapping, RedisStreamSink}};
///
/// let redis = RedisStreamSink::open("redis://127.0.0.1:6379/", "app:logs")?
///     .max_len(100_000) // MAXLEN ~ 100000
///     .fields(FieldMapping::json("event"));
/// let (sink, terminator) = mvx::rt::thread::create(redis, SinkConfig::default())?;
/// sink.log(LogEvent::new(Level::Info, "app", "ready")).unwrap();
/// terminator.terminate()?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct RedisStreamSink {
    client: Client,
    /// The server, without credentials: `redis://host:port/db`.
    server: String,
    stream: String,
    max_len: Option<MaxLen>,
    fields: FieldMapping,
    timeout: Duration,
    delivery_timeout: Duration,
    ack_ttl: Duration,
    ack_key: String,
    sequence: u64,
    connection: Option<MultiplexedConnection>,
    /// Text of the entry being built, reused from event to event.
    line: String,
    delivery: RedisDeliveryStats,
}

impl RedisStreamSink {
    /// A sink appending to `stream` on the server at `url` (`redis://[user:password@]host:port/db`,
    /// `rediss://…` is refused without TLS support, `redis+unix:///path`). Connects when
    /// the sink starts.
    ///
    /// # Errors
    ///
    /// [`RedisSinkError::InvalidUrl`] when `url` is not a Redis URL;
    /// [`RedisSinkError::EmptyStream`] when `stream` is empty.
    pub fn open(url: &str, stream: impl Into<String>) -> Result<Self, RedisSinkError> {
        let stream = stream.into();
        if stream.is_empty() {
            return Err(RedisSinkError::EmptyStream);
        }
        let client =
            Client::open(url).map_err(|error| RedisSinkError::InvalidUrl(Arc::new(error)))?;
        let server = describe_server(&client);
        let ack_key = format!("{stream}:mvx-ack:{:016x}", producer_id());
        Ok(Self {
            client,
            server,
            stream,
            max_len: None,
            fields: FieldMapping::default(),
            timeout: DEFAULT_REDIS_TIMEOUT,
            delivery_timeout: DEFAULT_DELIVERY_TIMEOUT,
            ack_ttl: DEFAULT_ACK_TTL,
            ack_key,
            sequence: 0,
            connection: None,
            line: String::new(),
            delivery: RedisDeliveryStats::default(),
        })
    }

    /// A handle on this sink's delivery counters.
    pub fn delivery_stats(&self) -> RedisDeliveryStats {
        self.delivery.clone()
    }

    /// Trims the stream to about `len` entries on every `XADD` (`MAXLEN ~ len`).
    pub fn max_len(mut self, len: u64) -> Self {
        self.max_len = Some(MaxLen {
            len,
            approximate: true,
        });
        self
    }

    /// Trims the stream to exactly `len` entries on every `XADD` (`MAXLEN = len`), which
    /// costs the server more than [`max_len`](Self::max_len).
    pub fn max_len_exact(mut self, len: u64) -> Self {
        self.max_len = Some(MaxLen {
            len,
            approximate: false,
        });
        self
    }

    /// Sets how an event becomes the fields of an entry (default: JSON in `event`).
    pub fn fields(mut self, mapping: FieldMapping) -> Self {
        self.fields = mapping;
        self
    }

    /// Sets how long connecting and each round trip may take (default
    /// [`DEFAULT_REDIS_TIMEOUT`]); past it the attempt fails and is retried.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Sets how long a batch is retried before its events are counted as failed (default
    /// [`DEFAULT_DELIVERY_TIMEOUT`]).
    pub fn delivery_timeout(mut self, timeout: Duration) -> Self {
        self.delivery_timeout = timeout;
        self
    }

    /// Sets how long the acknowledgement key outlives the sink's last batch (default
    /// [`DEFAULT_ACK_TTL`], at least one second). It must outlast any outage the sink is to
    /// ride out without sending a batch twice.
    pub fn ack_ttl(mut self, ttl: Duration) -> Self {
        self.ack_ttl = ttl.max(Duration::from_secs(1));
        self
    }

    /// The stream's name.
    pub fn stream(&self) -> &str {
        &self.stream
    }

    /// The server, without credentials: `redis://host:port/db`.
    pub fn server(&self) -> &str {
        &self.server
    }

    /// This sink's acknowledgement key (see the [type docs](Self)).
    pub fn ack_key(&self) -> &str {
        &self.ack_key
    }
}

/// The server of `client` as a URL without credentials.
fn describe_server(client: &Client) -> String {
    let info = client.get_connection_info();
    let settings = info.redis_settings();
    let user = settings
        .username()
        .map(|user| format!("{user}@"))
        .unwrap_or_default();
    match info.addr() {
        ConnectionAddr::Unix(path) => {
            format!("redis+unix://{user}{}?db={}", path.display(), settings.db())
        }
        ConnectionAddr::TcpTls { host, port, .. } => {
            format!("rediss://{user}{host}:{port}/{}", settings.db())
        }
        addr => format!("redis://{user}{addr}/{}", settings.db()),
    }
}

/// A random producer id, different for every sink.
fn producer_id() -> u64 {
    let mut hasher = RandomState::new().build_hasher();
    hasher.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default()
            .as_nanos(),
    );
    hasher.write_u32(std::process::id());
    hasher.finish()
}

impl Describe for RedisStreamSink {
    /// Resource: the server (without credentials) and the stream; configuration: the
    /// trimming and the field mapping.
    fn describe(&self) -> SinkDescriptor {
        let max_len = match self.max_len {
            None => Cow::Borrowed("maxlen=none"),
            Some(MaxLen { len, approximate }) => Cow::Owned(format!(
                "maxlen={}{len}",
                if approximate { "~" } else { "=" }
            )),
        };
        SinkDescriptor::new("redis-stream")
            .resource(self.server.clone())
            .resource(self.stream.clone())
            .config(max_len)
            .config(format!("fields={}", self.fields))
    }
}

impl fmt::Debug for RedisStreamSink {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisStreamSink")
            .field("server", &self.server)
            .field("stream", &self.stream)
            .field("max_len", &self.max_len)
            .field("fields", &self.fields)
            .field("ack_key", &self.ack_key)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn descriptors_name_the_server_without_credentials_and_the_stream() {
        let sink = RedisStreamSink::open("redis://user:secret@localhost:6390/2", "logs")
            .unwrap()
            .max_len(1000);
        assert_eq!(
            sink.describe(),
            SinkDescriptor::new("redis-stream")
                .resource("redis://user@localhost:6390/2")
                .resource("logs")
                .config("maxlen=~1000")
                .config("fields=json:event")
        );
        assert!(!format!("{sink:?}").contains("secret"));
        let exact = RedisStreamSink::open("redis://127.0.0.1/", "logs")
            .unwrap()
            .max_len_exact(5)
            .fields(FieldMapping::flat("f."));
        assert_eq!(
            exact.describe().config_key,
            ["maxlen==5".to_owned(), "fields=flat:f.".to_owned()]
        );
        assert_eq!(exact.describe().resource_key[0], "redis://127.0.0.1:6379/0");
        assert!(matches!(
            RedisStreamSink::open("redis://127.0.0.1/", ""),
            Err(RedisSinkError::EmptyStream)
        ));
        let invalid = RedisStreamSink::open("not a url", "logs").unwrap_err();
        assert_eq!(invalid.reason(), RedisSinkReason::InvalidArgument);
    }

    #[test]
    fn every_sink_has_its_own_acknowledgement_key() {
        let a = RedisStreamSink::open("redis://127.0.0.1/", "logs").unwrap();
        let b = RedisStreamSink::open("redis://127.0.0.1/", "logs").unwrap();
        assert!(a.ack_key().starts_with("logs:mvx-ack:"));
        assert_ne!(a.ack_key(), b.ack_key());
    }
}
