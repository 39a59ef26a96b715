//! `RedisStore`: values as JSON strings under `<prefix><store name>:<key>`.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use redis::aio::{ConnectionLike, MultiplexedConnection};
use redis::{AsyncConnectionConfig, Client, Cmd};
use serde_json::Value;

use super::{KeyValueStore, StoreError};

/// How long connecting to the server and each command may take by default.
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(5);

/// A [`KeyValueStore`] on a Redis server (feature `redis`): the value of `key` in store
/// `name` is a JSON string under the Redis key `<prefix><name>:<key>`.
///
/// Runs under any executor: the `redis` crate's smol runtime does the I/O on `async-io`'s
/// reactor and runs the connection's task on smol's global executor, which start their
/// own threads on first use; no tokio runtime is needed. One multiplexed connection is
/// opened on first use and shared by every call; after a connection error the next call
/// opens a new one. A write is one `SET`, atomic on the server; a rename is `RENAMENX`,
/// which never replaces a value.
///
/// # Examples
///
/// ```no_run
/// use mvx::stats::{RedisStore, StatsConfig};
///
/// let store = RedisStore::open("redis://127.0.0.1:6379/")?.prefix("crawler:");
/// let config = StatsConfig::default().persist_to(store);
/// # Ok::<(), mvx::stats::StoreError>(())
/// ```
pub struct RedisStore {
    client: Client,
    prefix: String,
    timeout: Duration,
    connection: Arc<futures::lock::Mutex<Option<MultiplexedConnection>>>,
}

impl RedisStore {
    /// A store on the server at `url` (`redis://host:port/db`, `redis+unix:///path`), with
    /// the key prefix `mvx:`. Connects on first use.
    ///
    /// # Errors
    ///
    /// [`StoreError::Backend`] when `url` is not a Redis URL.
    pub fn open(url: &str) -> Result<Self, StoreError> {
        let client = Client::open(url).map_err(StoreError::backend)?;
        Ok(Self {
            client,
            prefix: "mvx:".to_owned(),
            timeout: DEFAULT_TIMEOUT,
            connection: Arc::default(),
        })
    }

    /// Sets the prefix of every Redis key (default `mvx:`).
    pub fn prefix(mut self, prefix: impl Into<String>) -> Self {
        self.prefix = prefix.into();
        self
    }

    /// Sets how long connecting and each command may take (default 5 s); past it the call
    /// fails with [`StoreError::Backend`].
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// The Redis key of `key` in store `name`.
    pub fn redis_key(&self, name: &str, key: &str) -> String {
        format!("{}{name}:{key}", self.prefix)
    }

    async fn connection(&self) -> Result<MultiplexedConnection, StoreError> {
        let mut cached = self.connection.lock().await;
        if let Some(connection) = &*cached {
            return Ok(connection.clone());
        }
        let config = AsyncConnectionConfig::new()
            .set_connection_timeout(Some(self.timeout))
            .set_response_timeout(Some(self.timeout));
        let connection = self
            .client
            .get_multiplexed_async_connection_with_config(&config)
            .await
            .map_err(StoreError::backend)?;
        *cached = Some(connection.clone());
        Ok(connection)
    }

    /// Runs `command`; forgets the connection after an error that may have broken it.
    async fn query<T: redis::FromRedisValue>(&self, command: &Cmd) -> Result<T, StoreError> {
        let mut connection = self.connection().await?;
        match connection.req_packed_command(command).await {
            Ok(value) => redis::from_redis_value(value).map_err(StoreError::backend),
            Err(error) => {
                if error.is_io_error() || error.is_timeout() || error.is_unrecoverable_error() {
                    *self.connection.lock().await = None;
                }
                Err(StoreError::backend(error))
            }
        }
    }
}

impl KeyValueStore for RedisStore {
    async fn get(&self, store: &str, key: &str) -> Result<Option<Value>, StoreError> {
        let text: Option<String> = self
            .query(redis::cmd("GET").arg(self.redis_key(store, key)))
            .await?;
        match text {
            None => Ok(None),
            Some(text) => serde_json::from_str(&text)
                .map(Some)
                .map_err(|error| StoreError::InvalidJson(Arc::new(error))),
        }
    }

    async fn set(&self, store: &str, key: &str, value: &Value) -> Result<(), StoreError> {
        let text = value.to_string();
        self.query::<()>(redis::cmd("SET").arg(self.redis_key(store, key)).arg(text))
            .await
    }

    async fn delete(&self, store: &str, key: &str) -> Result<bool, StoreError> {
        let removed: u64 = self
            .query(redis::cmd("DEL").arg(self.redis_key(store, key)))
            .await?;
        Ok(removed > 0)
    }

    async fn rename(&self, store: &str, from: &str, to: &str) -> Result<bool, StoreError> {
        let from_key = self.redis_key(store, from);
        let exists: u64 = self.query(redis::cmd("EXISTS").arg(&from_key)).await?;
        if exists == 0 {
            return Ok(false);
        }
        let renamed: u64 = self
            .query(
                redis::cmd("RENAMENX")
                    .arg(&from_key)
                    .arg(self.redis_key(store, to)),
            )
            .await?;
        if renamed == 0 {
            return Err(StoreError::KeyTaken { key: to.to_owned() });
        }
        Ok(true)
    }
}

impl fmt::Debug for RedisStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisStore")
            .field("server", &self.client.get_connection_info().addr())
            .field("prefix", &self.prefix)
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}
