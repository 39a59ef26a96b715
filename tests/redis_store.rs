//! `RedisStore` against a real `redis-server`: the store contract, under `futures`' and
//! tokio's executors, and the statistics persisted, resumed and set aside when corrupt.
//!
//! The server is the one at `MVX_REDIS_URL` when it is set (`.ci/test` starts one), else a
//! `redis-server` this test starts (`support/redis_server.rs`).
#![cfg(not(loom))]

#[path = "support/free_port.rs"]
mod free_port;
#[path = "support/redis_server.rs"]
mod redis_server;
#[path = "support/store_contract.rs"]
mod store_contract;
#[path = "support/watchdog.rs"]
mod watchdog;

use std::sync::atomic::{AtomicU64, Ordering};

use futures::executor::block_on;
use mvx::stats::{
    KeyValueStore, RedisStore, Statistics, StatsConfig, StatsError, StatsReason, StoreError,
};
use redis_server::RedisServer;
use store_contract::check_store_contract;
use watchdog::within_guard;

/// The server the tests use: see [`redis_server::shared`].
struct Server {
    url: String,
    _own: Option<RedisServer>,
}

impl Server {
    fn get() -> Self {
        let (url, own) = redis_server::shared();
        Self { url, _own: own }
    }

    /// A store with a prefix of its own, so that tests sharing a server do not meet.
    fn store(&self) -> RedisStore {
        static STORES: AtomicU64 = AtomicU64::new(0);
        let prefix = format!(
            "mvx-test-{}-{}:",
            std::process::id(),
            STORES.fetch_add(1, Ordering::Relaxed)
        );
        RedisStore::open(&self.url).unwrap().prefix(prefix)
    }

    /// A plain connection, to look at the keys directly.
    fn direct(&self) -> redis::Connection {
        redis_server::connect(&self.url)
    }
}

#[test]
fn the_redis_store_keeps_the_store_contract_under_any_executor() {
    within_guard(|| {
        let server = Server::get();
        // futures' block_on: no runtime at all.
        block_on(check_store_contract(&server.store(), "contract"));
        // tokio's current-thread runtime: the store does not need tokio's reactor.
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let store = server.store();
        runtime.block_on(check_store_contract(&store, "contract"));
        // smol.
        smol::block_on(check_store_contract(&server.store(), "contract"));

        // A value that is not JSON is reported as such and left alone.
        let store = server.store();
        let mut direct = server.direct();
        let key = store.redis_key("default", "raw");
        redis::cmd("SET")
            .arg(&key)
            .arg("{not json")
            .exec(&mut direct)
            .unwrap();
        let error = block_on(store.get("default", "raw")).unwrap_err();
        assert!(matches!(error, StoreError::InvalidJson(_)), "{error:?}");
        let left: String = redis::cmd("GET").arg(&key).query(&mut direct).unwrap();
        assert_eq!(left, "{not json");
        redis::cmd("DEL").arg(&key).exec(&mut direct).unwrap();
    });
}

#[test]
fn an_unreachable_server_is_a_store_error() {
    within_guard(|| {
        // A port nobody listens on.
        let port = free_port::free_port();
        let store = RedisStore::open(&format!("redis://127.0.0.1:{port}/")).unwrap();
        let error = block_on(store.get("default", "statistics")).unwrap_err();
        assert!(matches!(error, StoreError::Backend(_)), "{error:?}");
        assert_eq!(error.reason(), StatsReason::StoreFailed);
        assert!(RedisStore::open("not a url").is_err());

        // The statistics refuse to start without their state.
        let (stats, driver) = Statistics::new(StatsConfig::default().persist_to(store)).unwrap();
        let driver = std::thread::spawn(move || block_on(driver));
        let error = stats.start().wait().unwrap_err();
        assert!(matches!(error, StatsError::Store { .. }), "{error:?}");
        driver.join().unwrap();
    });
}

#[test]
fn statistics_persist_resume_and_set_a_corrupt_state_aside_on_redis() {
    within_guard(|| {
        let server = Server::get();
        let store = server.store();
        let key = store.redis_key("default", "statistics");
        let config = || {
            StatsConfig::default()
                .persist_to(store_clone(&server, &key))
                .persist_state_key("statistics")
        };

        let (stats, driver) = Statistics::new(config()).unwrap();
        let driver = std::thread::spawn(move || block_on(driver));
        stats.start().wait().unwrap();
        for id in 0..6u64 {
            stats.record_request_processing_start(id).unwrap();
            stats.record_request_processing_finish(id).unwrap();
        }
        stats.stop().wait().unwrap();
        driver.join().unwrap();

        let mut direct = server.direct();
        let text: String = redis::cmd("GET").arg(&key).query(&mut direct).unwrap();
        let json: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(json["requestsFinished"], 6);

        // Resumed by new statistics on the same key.
        let (stats, driver) = Statistics::new(config()).unwrap();
        let driver = std::thread::spawn(move || block_on(driver));
        stats.start().wait().unwrap();
        assert_eq!(stats.calculate_blocking().unwrap().requests_finished, 6);
        stats.stop().wait().unwrap();
        driver.join().unwrap();

        // Corrupt: moved aside under a new key, byte for byte; the start fails.
        redis::cmd("SET")
            .arg(&key)
            .arg("[\"garbage\"")
            .exec(&mut direct)
            .unwrap();
        let (stats, driver) = Statistics::new(config()).unwrap();
        let driver = std::thread::spawn(move || block_on(driver));
        let error = stats.start().wait().unwrap_err();
        let StatsError::CorruptState { moved_to, .. } = &error else {
            panic!("{error:?}");
        };
        driver.join().unwrap();
        let aside_key = key.replace("statistics", moved_to);
        let aside: String = redis::cmd("GET")
            .arg(&aside_key)
            .query(&mut direct)
            .unwrap();
        assert_eq!(aside, "[\"garbage\"");
        let exists: u64 = redis::cmd("EXISTS").arg(&key).query(&mut direct).unwrap();
        assert_eq!(exists, 0);

        // reset() removes the state from the server.
        let (stats, driver) = Statistics::new(config()).unwrap();
        let driver = std::thread::spawn(move || block_on(driver));
        stats.start().wait().unwrap();
        stats.stop().wait().unwrap();
        driver.join().unwrap();
        let exists: u64 = redis::cmd("EXISTS").arg(&key).query(&mut direct).unwrap();
        assert_eq!(exists, 1);
        stats.reset_blocking().unwrap();
        let exists: u64 = redis::cmd("EXISTS").arg(&key).query(&mut direct).unwrap();
        assert_eq!(exists, 0);
        redis::cmd("DEL").arg(&aside_key).exec(&mut direct).unwrap();
    });
}

/// A store on the same server with the prefix of the Redis key `key`.
fn store_clone(server: &Server, key: &str) -> RedisStore {
    let prefix = key.trim_end_matches("default:statistics");
    RedisStore::open(&server.url).unwrap().prefix(prefix)
}
