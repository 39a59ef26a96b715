//! Key-value stores that keep the statistics' state between runs: the [`KeyValueStore`]
//! trait (its docs are the rules), [`SharedStore`] and the store error here; one file per
//! built-in store.

#[cfg(feature = "persist")]
mod file;
mod memory;
#[cfg(feature = "redis")]
mod redis;

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use serde_json::Value;

use super::StatsReason;
use crate::error::Cause;

#[cfg(feature = "persist")]
pub use self::file::FileStore;
pub use self::memory::MemoryStore;
#[cfg(feature = "redis")]
pub use self::redis::RedisStore;

/// Async get, set, delete and rename of JSON values, under a store name and a key.
///
/// A store name is a namespace (a directory of `FileStore`, a key prefix of `RedisStore`),
/// a key names one value in it. Besides get, set and delete there is
/// [`rename`](Self::rename), which moves a corrupt value aside without reading it as JSON.
/// mvx ships [`MemoryStore`] (for tests: gone with the process), `FileStore` (feature
/// `persist`) and `RedisStore` (feature `redis`); implement the trait for any other
/// backend. It speaks `serde_json::Value`, so `serde_json` is a public dependency of mvx.
///
/// The futures are `Send` and need no particular executor: mvx calls them from the
/// statistics' driver, wherever it runs. A store is shared by reference (`&self`): calls
/// may overlap, and an implementation synchronizes what it needs to. The statistics hold
/// it behind a [`SharedStore`], which boxes each future once per store call (never per
/// recording call), and catch a panic in it as [`StoreError::Panicked`].
///
/// # Examples
///
/// ```
/// use mvx::stats::{KeyValueStore, MemoryStore};
///
/// futures::executor::block_on(async {
///     let store = MemoryStore::new();
///     store.set("default", "state", &serde_json::json!({"n": 1})).await?;
///     assert_eq!(store.get("default", "state").await?, Some(serde_json::json!({"n": 1})));
///     assert!(store.rename("default", "state", "state.old").await?);
///     assert_eq!(store.get("default", "state").await?, None);
///     assert!(store.delete("default", "state.old").await?);
///     Ok::<(), mvx::stats::StoreError>(())
/// })?;
/// # Ok::<(), mvx::stats::StoreError>(())
/// ```
pub trait KeyValueStore: fmt::Debug + Send + Sync + 'static {
    /// The value under `key`, or `None` if there is none.
    ///
    /// # Errors
    ///
    /// [`StoreError::InvalidJson`] when a value is there but is not JSON (it is left where
    /// it is); another [`StoreError`] when the store cannot be read.
    fn get(
        &self,
        store: &str,
        key: &str,
    ) -> impl Future<Output = Result<Option<Value>, StoreError>> + Send;

    /// Stores `value` under `key`, replacing what was there — all of it or nothing.
    ///
    /// # Errors
    ///
    /// A [`StoreError`] when the value could not be written; the previous value is then
    /// still there.
    fn set(
        &self,
        store: &str,
        key: &str,
        value: &Value,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Removes the value under `key`; returns whether there was one.
    ///
    /// # Errors
    ///
    /// A [`StoreError`] when the store cannot be written.
    fn delete(
        &self,
        store: &str,
        key: &str,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;

    /// Moves the value under `from` to `to` as it is, JSON or not; returns whether there
    /// was one. Used to set a corrupt value aside without destroying it.
    ///
    /// # Errors
    ///
    /// [`StoreError::KeyTaken`] when `to` holds a value already (nothing is moved); another
    /// [`StoreError`] when the store cannot be written.
    fn rename(
        &self,
        store: &str,
        from: &str,
        to: &str,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;
}

/// Why a store operation failed.
///
/// `Clone`: the errors it ends up in are shared. Every variant has the reason code
/// [`StatsReason::StoreFailed`], except [`InvalidJson`](Self::InvalidJson)
/// ([`StatsReason::CorruptState`]) and [`InvalidName`](Self::InvalidName)
/// ([`StatsReason::InvalidArgument`]).
#[derive(Clone, Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// A store name or key the store cannot hold.
    #[error("invalid {what} {name:?}: {problem}")]
    InvalidName {
        /// `"store name"` or `"key"`.
        what: &'static str,
        /// The name.
        name: String,
        /// What is wrong with it.
        problem: &'static str,
    },
    /// The value is there but is not valid JSON.
    #[error("the stored value is not valid JSON")]
    InvalidJson(#[source] Arc<serde_json::Error>),
    /// The destination of a rename holds a value already.
    #[error("key {key:?} is taken")]
    KeyTaken {
        /// The destination key.
        key: String,
    },
    /// Reading or writing a file failed.
    #[error("{operation} {path:?} failed")]
    Io {
        /// What was being done, such as `"writing"`.
        operation: &'static str,
        /// The file or directory.
        path: std::path::PathBuf,
        /// The I/O error.
        #[source]
        source: Arc<std::io::Error>,
    },
    /// The backend (a server, a client library) returned an error.
    #[error("the store backend failed")]
    Backend(#[source] Cause),
    /// The store's code panicked; the panic was caught.
    #[error("the store panicked")]
    Panicked(#[source] Cause),
}

impl StoreError {
    /// The stable reason code of this error.
    pub fn reason(&self) -> StatsReason {
        match self {
            Self::InvalidName { .. } => StatsReason::InvalidArgument,
            Self::InvalidJson(_) => StatsReason::CorruptState,
            Self::KeyTaken { .. } | Self::Io { .. } | Self::Backend(_) | Self::Panicked(_) => {
                StatsReason::StoreFailed
            }
        }
    }

    /// A backend error.
    pub fn backend(error: impl Into<crate::BoxError>) -> Self {
        Self::Backend(Cause::from_error(error))
    }

    /// An I/O error while `operation` on `path`.
    pub fn io(
        operation: &'static str,
        path: impl Into<std::path::PathBuf>,
        error: std::io::Error,
    ) -> Self {
        Self::Io {
            operation,
            path: path.into(),
            source: Arc::new(error),
        }
    }
}

/// Checks that `name` is a store name or key that every built-in store can hold: 1 to 200
/// bytes of ASCII letters, digits and `-_.!'()`, not starting with a dot.
///
/// # Errors
///
/// [`StoreError::InvalidName`] saying what is wrong.
pub fn check_name(what: &'static str, name: &str) -> Result<(), StoreError> {
    let problem = if name.is_empty() {
        Some("it is empty")
    } else if name.len() > 200 {
        Some("it is longer than 200 bytes")
    } else if name.starts_with('.') {
        Some("it starts with a dot")
    } else if !name
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b"-_.!'()".contains(&b))
    {
        Some("only ASCII letters, digits and -_.!'() are allowed")
    } else {
        None
    };
    match problem {
        None => Ok(()),
        Some(problem) => Err(StoreError::InvalidName {
            what,
            name: name.to_owned(),
            problem,
        }),
    }
}

type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// The object-safe face of a [`KeyValueStore`].
trait DynStore: fmt::Debug + Send + Sync {
    fn get<'a>(
        &'a self,
        store: &'a str,
        key: &'a str,
    ) -> BoxFuture<'a, Result<Option<Value>, StoreError>>;
    fn set<'a>(
        &'a self,
        store: &'a str,
        key: &'a str,
        value: &'a Value,
    ) -> BoxFuture<'a, Result<(), StoreError>>;
    fn delete<'a>(
        &'a self,
        store: &'a str,
        key: &'a str,
    ) -> BoxFuture<'a, Result<bool, StoreError>>;
    fn rename<'a>(
        &'a self,
        store: &'a str,
        from: &'a str,
        to: &'a str,
    ) -> BoxFuture<'a, Result<bool, StoreError>>;
}

impl<S: KeyValueStore> DynStore for S {
    fn get<'a>(
        &'a self,
        store: &'a str,
        key: &'a str,
    ) -> BoxFuture<'a, Result<Option<Value>, StoreError>> {
        Box::pin(KeyValueStore::get(self, store, key))
    }

    fn set<'a>(
        &'a self,
        store: &'a str,
        key: &'a str,
        value: &'a Value,
    ) -> BoxFuture<'a, Result<(), StoreError>> {
        Box::pin(KeyValueStore::set(self, store, key, value))
    }

    fn delete<'a>(
        &'a self,
        store: &'a str,
        key: &'a str,
    ) -> BoxFuture<'a, Result<bool, StoreError>> {
        Box::pin(KeyValueStore::delete(self, store, key))
    }

    fn rename<'a>(
        &'a self,
        store: &'a str,
        from: &'a str,
        to: &'a str,
    ) -> BoxFuture<'a, Result<bool, StoreError>> {
        Box::pin(KeyValueStore::rename(self, store, from, to))
    }
}

/// A [`KeyValueStore`] shared by the statistics' handles and driver; cheap to clone.
///
/// Built by [`StatsConfig::persist_to`](super::StatsConfig::persist_to).
#[derive(Clone, Debug)]
pub struct SharedStore {
    inner: Arc<dyn DynStore>,
}

impl SharedStore {
    /// Shares `store`.
    pub fn new(store: impl KeyValueStore) -> Self {
        Self {
            inner: Arc::new(store),
        }
    }

    pub(crate) async fn get(&self, store: &str, key: &str) -> Result<Option<Value>, StoreError> {
        caught(self.inner.get(store, key)).await
    }

    pub(crate) async fn set(
        &self,
        store: &str,
        key: &str,
        value: &Value,
    ) -> Result<(), StoreError> {
        caught(self.inner.set(store, key, value)).await
    }

    pub(crate) async fn delete(&self, store: &str, key: &str) -> Result<bool, StoreError> {
        caught(self.inner.delete(store, key)).await
    }

    pub(crate) async fn rename(
        &self,
        store: &str,
        from: &str,
        to: &str,
    ) -> Result<bool, StoreError> {
        caught(self.inner.rename(store, from, to)).await
    }
}

/// Runs a store future, turning a panic in it into [`StoreError::Panicked`].
async fn caught<T>(mut future: BoxFuture<'_, Result<T, StoreError>>) -> Result<T, StoreError> {
    std::future::poll_fn(|cx| {
        match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| future.as_mut().poll(cx))) {
            Ok(poll) => poll,
            Err(payload) => {
                std::task::Poll::Ready(Err(StoreError::Panicked(Cause::from_panic(payload))))
            }
        }
    })
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_checked() {
        for good in ["default", "SDK_CRAWLER_STATISTICS_0", "a.b-c_(1)!'"] {
            assert!(check_name("key", good).is_ok(), "{good}");
        }
        for (bad, problem) in [
            ("", "it is empty"),
            (".hidden", "it starts with a dot"),
            ("a/b", "only ASCII letters, digits and -_.!'() are allowed"),
            ("é", "only ASCII letters, digits and -_.!'() are allowed"),
        ] {
            match check_name("key", bad) {
                Err(StoreError::InvalidName { problem: found, .. }) => assert_eq!(found, problem),
                other => panic!("{bad:?}: {other:?}"),
            }
        }
        assert!(check_name("key", &"k".repeat(201)).is_err());
        assert_eq!(
            check_name("store name", "..").unwrap_err().to_string(),
            "invalid store name \"..\": it starts with a dot"
        );
    }
}
