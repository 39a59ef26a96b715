//! `RedisStreamSink`: log events appended to a Redis stream with `XADD`, a batch per
//! transaction, exactly once per acknowledged event across reconnections.

use std::borrow::Cow;
use std::collections::hash_map::RandomState;
use std::fmt::{self, Write as _};
use std::hash::{BuildHasher, Hasher};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use redis::aio::MultiplexedConnection;
use redis::{
    AsyncConnectionConfig, Client, ConnectionAddr, ErrorKind, RedisError, RetryMethod, Value,
};

use crate::ErrorReason;
use crate::error::BoxError;
use crate::sink::event::Rfc3339;
use crate::sink::format::last_values;
use crate::sink::{
    BatchError, Describe, Dispatch, FieldValue, JsonLines, LineFormat, LogEvent, SinkDescriptor,
};

/// How long connecting and each command may take by default.
pub const DEFAULT_REDIS_TIMEOUT: Duration = Duration::from_secs(5);
/// How long a batch is retried by default before its events are counted as failed.
pub const DEFAULT_DELIVERY_TIMEOUT: Duration = Duration::from_secs(60);
/// How long the server keeps a sink's acknowledgement key by default after its last batch.
pub const DEFAULT_ACK_TTL: Duration = Duration::from_secs(24 * 3600);

/// The first pause before a retry; it doubles up to [`MAX_BACKOFF`].
const FIRST_BACKOFF: Duration = Duration::from_millis(20);
/// The longest pause between two retries.
const MAX_BACKOFF: Duration = Duration::from_secs(1);

/// A sink dispatcher that appends [`LogEvent`]s to a Redis stream (feature `redis`).
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
/// [`FieldMapping`]: by default one field, `event`, holding the [`JsonLines`] object.
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

/// Counters of a [`RedisStreamSink`]'s work with the server, readable while it runs.
///
/// Cheap to clone; take it with [`RedisStreamSink::delivery_stats`] before handing the
/// sink to its runtime. How many events were delivered or failed is in the sink's
/// [`QueueStats`](crate::queue::QueueStats); these say what it took.
#[derive(Clone, Debug, Default)]
pub struct RedisDeliveryStats {
    inner: Arc<DeliveryCounters>,
}

#[derive(Debug, Default)]
struct DeliveryCounters {
    batches: AtomicU64,
    failed_attempts: AtomicU64,
    connections: AtomicU64,
    recovered: AtomicU64,
}

impl RedisDeliveryStats {
    /// Batches sent (each counted once, however many attempts it took).
    pub fn batches(&self) -> u64 {
        self.inner.batches.load(Ordering::Relaxed)
    }

    /// Attempts that failed (a dropped connection, a timeout, a refused connection, an
    /// error) and were retried or given up.
    pub fn failed_attempts(&self) -> u64 {
        self.inner.failed_attempts.load(Ordering::Relaxed)
    }

    /// Connections opened: one at the start, one more after each failure that needed one.
    pub fn connections(&self) -> u64 {
        self.inner.connections.load(Ordering::Relaxed)
    }

    /// Batches found already applied when checked after an attempt whose outcome was
    /// unknown: counted delivered without being sent again.
    pub fn recovered_batches(&self) -> u64 {
        self.inner.recovered.load(Ordering::Relaxed)
    }
}

/// How the stream is trimmed on each `XADD`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct MaxLen {
    /// The length to trim to.
    pub len: u64,
    /// `MAXLEN ~`: trim only whole macro nodes, which is much cheaper; the stream may then
    /// keep somewhat more entries than `len`.
    pub approximate: bool,
}

/// How a [`LogEvent`] becomes the fields of a stream entry.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum FieldMapping {
    /// One field holding the event as a [`JsonLines`] object (without the line break).
    Json {
        /// The field's name.
        field: String,
    },
    /// One field per part: `timestamp` (RFC 3339, UTC, milliseconds), `level`, `target`,
    /// `message`, then each of the event's fields under `prefix` followed by its name, its
    /// value as text (a name that repeats keeps its last value).
    Flat {
        /// What goes before the name of each of the event's fields.
        prefix: String,
    },
}

impl FieldMapping {
    /// The event as JSON in the field `field`.
    pub fn json(field: impl Into<String>) -> Self {
        Self::Json {
            field: field.into(),
        }
    }

    /// One stream field per part, the event's fields under `prefix` and their name.
    pub fn flat(prefix: impl Into<String>) -> Self {
        Self::Flat {
            prefix: prefix.into(),
        }
    }
}

impl Default for FieldMapping {
    /// `FieldMapping::json("event")`.
    fn default() -> Self {
        Self::json("event")
    }
}

impl fmt::Display for FieldMapping {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Json { field } => write!(f, "json:{field}"),
            Self::Flat { prefix } => write!(f, "flat:{prefix}"),
        }
    }
}

/// Errors of the Redis streams sink.
#[derive(Clone, Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RedisSinkError {
    /// The URL is not a Redis URL.
    #[error("invalid Redis URL")]
    InvalidUrl(#[source] Arc<RedisError>),
    /// The stream name is empty.
    #[error("the stream name is empty")]
    EmptyStream,
    /// The server refused some `XADD`s of a batch it otherwise applied.
    #[error("the server refused {refused} of the batch's entries")]
    Refused {
        /// How many.
        refused: usize,
        /// The last refusal.
        #[source]
        source: Arc<RedisError>,
    },
    /// The server answered with an error that retrying cannot fix.
    #[error("the server refused the batch")]
    Server(#[source] Arc<RedisError>),
    /// The batch was not delivered within the delivery timeout.
    #[error("the batch was not delivered within {timeout:?} ({attempts} attempts)")]
    TimedOut {
        /// The delivery timeout.
        timeout: Duration,
        /// How many times the batch was tried.
        attempts: u32,
        /// The last failure.
        #[source]
        source: Arc<RedisError>,
    },
    /// Connecting to the server failed (in the start hook).
    #[error("could not connect to the Redis server")]
    Connect(#[source] Arc<RedisError>),
}

impl RedisSinkError {
    /// The stable reason code: [`RedisSinkReason::InvalidArgument`] for a bad URL or stream,
    /// the core's `DispatchFailed` for delivery, `OnStartingHookFailed` for a failed
    /// connection.
    pub fn reason(&self) -> RedisSinkReason {
        match self {
            Self::InvalidUrl(_) | Self::EmptyStream => RedisSinkReason::InvalidArgument,
            Self::Refused { .. } | Self::Server(_) | Self::TimedOut { .. } => {
                ErrorReason::DispatchFailed.into()
            }
            Self::Connect(_) => ErrorReason::OnStartingHookFailed.into(),
        }
    }
}

crate::error::component_reason! {
    /// A stable code naming why the Redis streams sink failed: the `reason()` of
    /// [`RedisSinkError`]. Delivery failures and a failed connection are the core's
    /// (`Core(DispatchFailed)`, `Core(OnStartingHookFailed)`), as the sink reports them.
    pub enum RedisSinkReason {
        /// An argument was rejected: a URL that is not a Redis URL, an empty stream name.
        InvalidArgument = "INVALID_ARGUMENT",
    }
}

/// What one attempt at a batch came to.
enum Attempt {
    /// The transaction ran: `refused` of its `XADD`s failed (the last error kept).
    Applied {
        refused: usize,
        error: Option<RedisError>,
    },
    /// The attempt failed and may be retried; the transaction may have run.
    Retry(RedisError),
    /// The transaction was aborted by `WATCH`: check again, at once.
    Recheck,
    /// The server answered with an error retrying cannot fix.
    Fail(RedisError),
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

    async fn connection(&mut self) -> Result<MultiplexedConnection, RedisError> {
        if let Some(connection) = &self.connection {
            return Ok(connection.clone());
        }
        let config = AsyncConnectionConfig::new()
            .set_connection_timeout(Some(self.timeout))
            .set_response_timeout(Some(self.timeout));
        let connection = self
            .client
            .get_multiplexed_async_connection_with_config(&config)
            .await?;
        self.delivery
            .inner
            .connections
            .fetch_add(1, Ordering::Relaxed);
        self.connection = Some(connection.clone());
        Ok(connection)
    }

    /// The transaction of a batch: `XADD` per event, then the acknowledgement.
    fn transaction(&mut self, events: &[LogEvent], sequence: u64) -> redis::Pipeline {
        let mut pipeline = redis::pipe();
        pipeline.atomic().ignore_errors();
        for event in events {
            let command = pipeline.cmd("XADD").arg(&self.stream);
            if let Some(MaxLen { len, approximate }) = self.max_len {
                command
                    .arg("MAXLEN")
                    .arg(if approximate { "~" } else { "=" })
                    .arg(len);
            }
            command.arg("*");
            match &self.fields {
                FieldMapping::Json { field } => {
                    self.line.clear();
                    JsonLines.format(event, &mut self.line);
                    command.arg(field).arg(&self.line);
                }
                FieldMapping::Flat { prefix } => {
                    self.line.clear();
                    let _ = write!(self.line, "{}", Rfc3339(event.timestamp));
                    command
                        .arg("timestamp")
                        .arg(&self.line)
                        .arg("level")
                        .arg(event.level.as_str())
                        .arg("target")
                        .arg(event.target.as_ref())
                        .arg("message")
                        .arg(event.message.as_ref());
                    for (name, value) in last_values(&event.fields) {
                        self.line.clear();
                        self.line.push_str(prefix);
                        self.line.push_str(name);
                        command.arg(&self.line);
                        match value.as_str() {
                            Some(text) => command.arg(text),
                            None => command.arg(plain_text(value)),
                        };
                    }
                }
            }
        }
        pipeline
            .cmd("SET")
            .arg(&self.ack_key)
            .arg(sequence)
            .arg("PX")
            .arg(self.ack_ttl.as_millis() as u64);
        pipeline
    }

    /// One attempt at the batch `sequence` of `events` entries; `unsure` when an earlier
    /// attempt may have run the transaction.
    async fn attempt(
        &mut self,
        transaction: &redis::Pipeline,
        sequence: u64,
        events: usize,
        unsure: bool,
    ) -> Attempt {
        let mut connection = match self.connection().await {
            Ok(connection) => connection,
            Err(error) => return self.failed(error),
        };
        if unsure {
            let checked: Result<Option<u64>, RedisError> = async {
                redis::cmd("WATCH")
                    .arg(&self.ack_key)
                    .exec_async(&mut connection)
                    .await?;
                redis::cmd("GET")
                    .arg(&self.ack_key)
                    .query_async(&mut connection)
                    .await
            }
            .await;
            match checked {
                Ok(Some(acknowledged)) if acknowledged >= sequence => {
                    self.delivery
                        .inner
                        .recovered
                        .fetch_add(1, Ordering::Relaxed);
                    let _ = redis::cmd("UNWATCH").exec_async(&mut connection).await;
                    return Attempt::Applied {
                        refused: 0,
                        error: None,
                    };
                }
                Ok(_) => {}
                Err(error) => return self.failed(error),
            }
        }
        match transaction.query_async::<Value>(&mut connection).await {
            Ok(Value::Nil) => Attempt::Recheck,
            Ok(Value::Array(replies)) => {
                let mut refused = 0;
                let mut error = None;
                for reply in replies.into_iter().take(events) {
                    if let Value::ServerError(server_error) = reply {
                        refused += 1;
                        error = Some(RedisError::from(server_error));
                    }
                }
                Attempt::Applied { refused, error }
            }
            Ok(other) => self.failed(RedisError::from((
                ErrorKind::UnexpectedReturnType,
                "unexpected reply to EXEC",
                format!("{other:?}"),
            ))),
            Err(error) => self.failed(error),
        }
    }

    /// Forgets the connection after a failure; retry unless nothing can fix it.
    fn failed(&mut self, error: RedisError) -> Attempt {
        self.connection = None;
        self.delivery
            .inner
            .failed_attempts
            .fetch_add(1, Ordering::Relaxed);
        if retryable(&error) {
            Attempt::Retry(error)
        } else {
            Attempt::Fail(error)
        }
    }
}

/// Whether retrying (after reconnecting) may get past `error`.
fn retryable(error: &RedisError) -> bool {
    if error.is_io_error() || error.is_timeout() || error.is_connection_dropped() {
        return true;
    }
    if matches!(
        error.code(),
        Some("LOADING" | "BUSY" | "TRYAGAIN" | "MASTERDOWN" | "CLUSTERDOWN" | "READONLY" | "OOM")
    ) {
        return true;
    }
    !matches!(error.retry_method(), RetryMethod::NoRetry)
}

/// A non-text field value as text.
fn plain_text(value: &FieldValue) -> String {
    match value {
        FieldValue::Str(text) => text.to_string(),
        FieldValue::Shared(text) => text.to_string(),
        FieldValue::I64(number) => number.to_string(),
        FieldValue::U64(number) => number.to_string(),
        FieldValue::F64(number) => number.to_string(),
        FieldValue::Bool(flag) => flag.to_string(),
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

impl Dispatch<LogEvent> for RedisStreamSink {
    async fn dispatch(&mut self, event: LogEvent) -> Result<(), BoxError> {
        let mut events = vec![event];
        self.dispatch_batch(&mut events)
            .await
            .map_err(|error| error.source)
    }

    /// Delivers the batch as one transaction; see the [type docs](Self).
    async fn dispatch_batch(&mut self, events: &mut Vec<LogEvent>) -> Result<(), BatchError> {
        let count = events.len();
        if count == 0 {
            return Ok(());
        }
        self.sequence += 1;
        self.delivery.inner.batches.fetch_add(1, Ordering::Relaxed);
        let sequence = self.sequence;
        let transaction = self.transaction(events, sequence);
        events.clear();
        let deadline = Instant::now() + self.delivery_timeout;
        let mut backoff = FIRST_BACKOFF;
        let mut unsure = false;
        let mut attempts = 0;
        loop {
            attempts += 1;
            match self.attempt(&transaction, sequence, count, unsure).await {
                Attempt::Applied { refused: 0, .. } => return Ok(()),
                Attempt::Applied { refused, error } => {
                    let source = Arc::new(error.unwrap_or_else(|| {
                        RedisError::from((ErrorKind::Client, "entries refused"))
                    }));
                    return Err(BatchError::new(
                        refused,
                        RedisSinkError::Refused { refused, source },
                    ));
                }
                Attempt::Recheck => {
                    // An earlier attempt landed after this one's check: check again, unless
                    // the key keeps changing under us past the deadline.
                    unsure = true;
                    if Instant::now() > deadline {
                        return Err(BatchError::new(
                            count,
                            RedisSinkError::TimedOut {
                                timeout: self.delivery_timeout,
                                attempts,
                                source: Arc::new(RedisError::from((
                                    ErrorKind::Client,
                                    "the acknowledgement key kept changing",
                                ))),
                            },
                        ));
                    }
                }
                Attempt::Fail(error) => {
                    return Err(BatchError::new(
                        count,
                        RedisSinkError::Server(Arc::new(error)),
                    ));
                }
                Attempt::Retry(error) => {
                    // The request may have reached the server before the failure.
                    unsure = true;
                    if Instant::now() + backoff > deadline {
                        return Err(BatchError::new(
                            count,
                            RedisSinkError::TimedOut {
                                timeout: self.delivery_timeout,
                                attempts,
                                source: Arc::new(error),
                            },
                        ));
                    }
                    async_io::Timer::after(backoff).await;
                    backoff = (backoff * 2).min(MAX_BACKOFF);
                }
            }
        }
    }

    /// Connects, so that a wrong address or password fails the start.
    async fn on_starting(&mut self) -> Result<(), BoxError> {
        self.connection()
            .await
            .map_err(|error| RedisSinkError::Connect(Arc::new(error)))?;
        Ok(())
    }

    async fn on_stopped(&mut self) -> Result<(), BoxError> {
        self.connection = None;
        Ok(())
    }
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

    #[test]
    fn transient_errors_are_retried_and_others_are_not() {
        let io = RedisError::from(std::io::Error::from(std::io::ErrorKind::ConnectionReset));
        assert!(retryable(&io));
        let client = RedisError::from((ErrorKind::Client, "bad"));
        assert!(!retryable(&client));
    }
}
