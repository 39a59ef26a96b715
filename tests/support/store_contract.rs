//! The contract every `KeyValueStore` keeps, checked against each store the statistics
//! tests use (`FileStore`, `RedisStore`).
//!
//! Include it with `#[path = "support/store_contract.rs"] mod store_contract;`.

use mvx::stats::{KeyValueStore, StoreError};
use serde_json::json;

/// What every store does with get, set, delete and rename, in store `name`.
pub async fn check_store_contract(store: &impl KeyValueStore, name: &str) {
    assert_eq!(store.get(name, "missing").await.unwrap(), None);
    store.set(name, "a", &json!({"n": 1})).await.unwrap();
    assert_eq!(store.get(name, "a").await.unwrap(), Some(json!({"n": 1})));
    store.set(name, "a", &json!([1, 2, 3])).await.unwrap();
    assert_eq!(store.get(name, "a").await.unwrap(), Some(json!([1, 2, 3])));

    // Store names are namespaces.
    let other = format!("{name}-other");
    assert_eq!(store.get(&other, "a").await.unwrap(), None);
    store.set(&other, "a", &json!("other")).await.unwrap();
    assert_eq!(store.get(name, "a").await.unwrap(), Some(json!([1, 2, 3])));

    // Rename moves; it never replaces.
    assert!(store.rename(name, "a", "b").await.unwrap());
    assert_eq!(store.get(name, "a").await.unwrap(), None);
    assert_eq!(store.get(name, "b").await.unwrap(), Some(json!([1, 2, 3])));
    assert!(!store.rename(name, "a", "c").await.unwrap());
    store.set(name, "a", &json!(null)).await.unwrap();
    match store.rename(name, "a", "b").await {
        Err(error @ StoreError::KeyTaken { .. }) => {
            assert_eq!(error.reason(), mvx::stats::StatsReason::StoreFailed);
        }
        other => panic!("a rename onto a taken key: {other:?}"),
    }
    assert_eq!(store.get(name, "a").await.unwrap(), Some(json!(null)));
    assert_eq!(store.get(name, "b").await.unwrap(), Some(json!([1, 2, 3])));

    assert!(store.delete(name, "a").await.unwrap());
    assert!(store.delete(name, "b").await.unwrap());
    assert!(!store.delete(name, "b").await.unwrap());
    assert!(store.delete(&other, "a").await.unwrap());
    assert_eq!(store.get(name, "b").await.unwrap(), None);
}
