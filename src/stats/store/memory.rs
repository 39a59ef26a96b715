//! `MemoryStore`: a key-value store in memory, for tests.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, PoisonError};

use serde_json::Value;

use super::{KeyValueStore, StoreError};

/// A [`KeyValueStore`] in memory; clones share the same values. Gone with the process:
/// for tests, and for statistics that need no persistence but a `reset()` that behaves
/// the same.
///
/// Values are kept as JSON text, so [`set_raw`](Self::set_raw) can plant a value that is
/// not JSON, as a damaged file would be.
///
/// # Examples
///
/// ```
/// use mvx::stats::{KeyValueStore, MemoryStore, StoreError};
///
/// let store = MemoryStore::new();
/// store.set_raw("default", "state", "{not json");
/// let error = futures::executor::block_on(store.get("default", "state")).unwrap_err();
/// assert!(matches!(error, StoreError::InvalidJson(_)));
/// assert_eq!(store.get_raw("default", "state").as_deref(), Some("{not json"));
/// ```
#[derive(Clone, Debug, Default)]
pub struct MemoryStore {
    values: Arc<Mutex<BTreeMap<(String, String), String>>>,
}

impl MemoryStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    fn values(&self) -> std::sync::MutexGuard<'_, BTreeMap<(String, String), String>> {
        self.values.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Stores `text` under `key` as it is, JSON or not.
    pub fn set_raw(&self, store: &str, key: &str, text: &str) {
        self.values()
            .insert((store.to_owned(), key.to_owned()), text.to_owned());
    }

    /// The text under `key`, as stored.
    pub fn get_raw(&self, store: &str, key: &str) -> Option<String> {
        self.values()
            .get(&(store.to_owned(), key.to_owned()))
            .cloned()
    }

    /// The keys of `store`, in order.
    pub fn keys(&self, store: &str) -> Vec<String> {
        self.values()
            .keys()
            .filter(|(name, _)| name == store)
            .map(|(_, key)| key.clone())
            .collect()
    }
}

impl KeyValueStore for MemoryStore {
    async fn get(&self, store: &str, key: &str) -> Result<Option<Value>, StoreError> {
        match self.get_raw(store, key) {
            None => Ok(None),
            Some(text) => serde_json::from_str(&text)
                .map(Some)
                .map_err(|error| StoreError::InvalidJson(Arc::new(error))),
        }
    }

    async fn set(&self, store: &str, key: &str, value: &Value) -> Result<(), StoreError> {
        self.set_raw(store, key, &value.to_string());
        Ok(())
    }

    async fn delete(&self, store: &str, key: &str) -> Result<bool, StoreError> {
        Ok(self
            .values()
            .remove(&(store.to_owned(), key.to_owned()))
            .is_some())
    }

    async fn rename(&self, store: &str, from: &str, to: &str) -> Result<bool, StoreError> {
        let mut values = self.values();
        let to = (store.to_owned(), to.to_owned());
        if values.contains_key(&to) {
            return Err(StoreError::KeyTaken { key: to.1 });
        }
        match values.remove(&(store.to_owned(), from.to_owned())) {
            None => Ok(false),
            Some(text) => {
                values.insert(to, text);
                Ok(true)
            }
        }
    }
}
