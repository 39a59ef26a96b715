//! Loading, saving and removing the persisted state (the rules are in the `stats` module
//! docs, "Persistence").
//!
//! Every save, the removal by `reset()` and the load on start take the persistence gate,
//! an async mutex, which keeps them in order; the final save of a stop closes it.

use std::time::{SystemTime, UNIX_EPOCH};

use serde_json::Value;

use super::document;
use super::state::now_micros;
use super::statistics::Inner;
use super::store::{SharedStore, StoreError};
use super::{StatisticsState, StatsError, StoreOperation};
use crate::error::Cause;
use crate::sync::lock;

/// What the gate protects.
#[derive(Debug, Default)]
pub(crate) struct Gate {
    /// Set by the final save of a stop.
    closed: bool,
}

/// Where the state is persisted: the store, the store name, the key.
struct Target<'a> {
    store: &'a SharedStore,
    name: &'a str,
    key: &'a str,
}

impl Target<'_> {
    fn error(&self, operation: StoreOperation, source: StoreError) -> StatsError {
        StatsError::Store {
            operation,
            store: self.name.to_owned(),
            key: self.key.to_owned(),
            source,
        }
    }
}

fn target(inner: &Inner) -> Option<Target<'_>> {
    let config = &inner.config;
    match (&config.store, config.persistence_enabled) {
        (Some(store), true) => Some(Target {
            store,
            name: &config.store_name,
            key: &inner.persist_state_key,
        }),
        _ => None,
    }
}

/// Loads the persisted state, if persistence is enabled and there is one, into the
/// aggregator. A corrupt state is moved aside (see [`StatsError::CorruptState`]).
pub(crate) async fn load(inner: &Inner) -> Result<(), StatsError> {
    let Some(target) = target(inner) else {
        return Ok(());
    };
    let _gate = inner.persist_gate.lock().await;
    let found = match target.store.get(target.name, target.key).await {
        Ok(found) => found,
        Err(error @ StoreError::InvalidJson(_)) => {
            return set_aside(inner, &target, Cause::from_error(error)).await;
        }
        Err(source) => return Err(target.error(StoreOperation::Load, source)),
    };
    let Some(value) = found else {
        return Ok(());
    };
    match decode(value) {
        Ok(state) => {
            lock(&inner.aggregator).state = state;
            Ok(())
        }
        Err(cause) => set_aside(inner, &target, cause).await,
    }
}

fn decode(value: Value) -> Result<StatisticsState, Cause> {
    document::read(value).map_err(Cause::from_error)
}

/// Moves a corrupt state to `<key>.corrupt-<unix ms>`, never deleting it; fails the start
/// unless the configuration opted in to a fresh state.
async fn set_aside(inner: &Inner, target: &Target<'_>, cause: Cause) -> Result<(), StatsError> {
    let millis = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_millis();
    let aside = format!("{}.corrupt-{millis}", target.key);
    match target.store.rename(target.name, target.key, &aside).await {
        Ok(true) => {
            let error = StatsError::CorruptState {
                store: target.name.to_owned(),
                key: target.key.to_owned(),
                moved_to: aside,
                cause,
            };
            if inner.config.reset_on_corrupt_state {
                inner.record_error(error);
                Ok(())
            } else {
                Err(error)
            }
        }
        // The value went away between the read and the move (someone else moved or removed
        // it): there is nothing left to protect, and nothing to resume from.
        Ok(false) => Ok(()),
        Err(source) => Err(target.error(StoreOperation::MoveAside, source)),
    }
}

/// Saves the state. `last`: the final save of a stop, after which nothing is saved.
pub(crate) async fn save(inner: &Inner, last: bool) -> Result<(), StatsError> {
    let Some(target) = target(inner) else {
        return Ok(());
    };
    let mut gate = inner.persist_gate.lock().await;
    if gate.closed {
        return Ok(());
    }
    gate.closed = last;
    let at = now_micros();
    let value = {
        let mut aggregator = lock(&inner.aggregator);
        aggregator.refresh();
        let mut state = aggregator.state.clone();
        state.stats_persisted_at = Some(at);
        document::write(&state)
    };
    target
        .store
        .set(target.name, target.key, &value)
        .await
        .map_err(|source| target.error(StoreOperation::Save, source))?;
    lock(&inner.aggregator).state.stats_persisted_at = Some(at);
    Ok(())
}

/// Back to the defaults, and the persisted state removed.
pub(crate) async fn reset(inner: &Inner) -> Result<(), StatsError> {
    let _gate = inner.persist_gate.lock().await;
    lock(&inner.aggregator).reset();
    if let Some(target) = target(inner) {
        target
            .store
            .delete(target.name, target.key)
            .await
            .map_err(|source| target.error(StoreOperation::Delete, source))?;
    }
    Ok(())
}
