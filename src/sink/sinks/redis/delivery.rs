//! Delivery: each batch as one transaction, retried across reconnections until the server
//! has run it once (see [`RedisStreamSink`]'s docs), and the counters of what it took.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use redis::aio::MultiplexedConnection;
use redis::{AsyncConnectionConfig, ErrorKind, RedisError, RetryMethod, Value};

use super::{RedisSinkError, RedisStreamSink};
use crate::error::BoxError;
use crate::sink::{BatchError, Dispatch, LogEvent};

/// The first pause before a retry; it doubles up to [`MAX_BACKOFF`].
const FIRST_BACKOFF: Duration = Duration::from_millis(20);
/// The longest pause between two retries.
const MAX_BACKOFF: Duration = Duration::from_secs(1);

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
    pub(super) async fn connection(&mut self) -> Result<MultiplexedConnection, RedisError> {
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
        // `None`: a timeout too long to reach is no deadline.
        let deadline = Instant::now().checked_add(self.delivery_timeout);
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
                    if deadline.is_some_and(|deadline| Instant::now() > deadline) {
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
                    let retry_at = Instant::now().checked_add(backoff);
                    if deadline.is_some_and(|deadline| retry_at.is_none_or(|at| at > deadline)) {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transient_errors_are_retried_and_others_are_not() {
        let io = RedisError::from(std::io::Error::from(std::io::ErrorKind::ConnectionReset));
        assert!(retryable(&io));
        let client = RedisError::from((ErrorKind::Client, "bad"));
        assert!(!retryable(&client));
    }
}
