//! The metricq client when the broker goes away: each test starts a RabbitMQ node of its
//! own (loopback ports, a temporary directory) with the test manager on it, and stops and
//! restarts that node while an mvx source publishes.
//!
//! What must hold: every point logged is accounted — `delivered + failed` equals the points
//! accepted once the source has stopped — and every point counted delivered is in the
//! durable queue that stands in for a database (persistent messages, so the broker keeps
//! what it confirmed across its restart). Points logged while the broker was down are
//! delivered after the reconnect.
#![cfg(not(loom))]
#![cfg(feature = "metricq")]

#[path = "support/agent_thread.rs"]
mod agent_thread;
#[path = "support/free_port.rs"]
mod free_port;
#[path = "support/metricq_peer.rs"]
mod metricq_peer;
#[path = "support/rabbitmq.rs"]
mod rabbitmq;
#[path = "support/watchdog.rs"]
mod watchdog;

use std::collections::BTreeSet;
use std::time::Duration;

use agent_thread::Running;
use metricq_peer::Peer;
use mvx::agent::AgentError;
use mvx::agent::metricq::{
    BridgeConfig, DataPoint, MetricqConfig, RegistryBridge, Source, Timestamp,
};
use mvx::metrics::Registry;
use mvx::sink::AsyncSink;
use rabbitmq::{OwnNode, unique};
use serde_json::json;
use watchdog::{GUARD, within};

/// A test body that starts a node, stops it and starts it again: each node start (and
/// `rabbitmqctl`'s wait for it) may take up to [`GUARD`] on a loaded machine.
const NODE_TEST_LIMIT: Duration = Duration::from_secs(4 * GUARD.as_secs());

/// A node of the test's own, with the test manager on it.
fn network() -> (OwnNode, Peer) {
    let node = OwnNode::start();
    let manager = Peer::spawn(&["manager", &node.url()]);
    manager.expect("ready");
    (node, manager)
}

/// A bridge of an empty registry, running, through a source for `config` that is ready:
/// the test logs its points into the sink itself.
fn running_bridge(config: MetricqConfig) -> (AsyncSink<DataPoint>, Running) {
    let bridge = RegistryBridge::new(
        Source::new(config),
        Registry::new(),
        BridgeConfig::default().interval(Duration::from_secs(3600)),
    );
    let sink = bridge.sink();
    let source = bridge.source();
    let running = Running::start(bridge);
    assert!(async_io::block_on(source.ready()));
    (sink, running)
}

#[test]
fn a_broker_restarted_mid_stream_loses_no_point_silently() {
    within(NODE_TEST_LIMIT, || {
        let (mut node, manager) = network();
        let url = node.url();
        let metric = "test.restart.points";
        let queue = unique("db-test-durable");
        let durable = Peer::spawn(&["durable", &url, &queue, metric]);
        durable.expect("declared");
        durable.finish();

        let config = MetricqConfig::new(&url, "source-mvx-restart")
            .unwrap()
            .reconnect_interval(Duration::from_millis(100))
            .connection_timeout(Duration::from_secs(120))
            .delivery_timeout(Duration::from_secs(60))
            .rpc_timeout(Duration::from_secs(20))
            .persistent_data(true);
        let (sink, running) = running_bridge(config);
        let log = |range: std::ops::Range<i64>| {
            for n in range {
                let accepted = sink.log(DataPoint::new(metric, Timestamp::from_nanos(n), n as f64));
                assert!(accepted.is_ok());
            }
        };
        log(0..100);
        sink.flush_blocking().unwrap();
        assert_eq!(sink.stats().delivered, 100);

        node.stop();
        // Logged while the broker is down: the producer never waits.
        log(100..200);
        node.restart();
        log(200..300);
        manager.finish();
        let stopped = running.stop();
        assert!(stopped.is_ok(), "{stopped:?}");
        let stats = sink.stats();
        assert_eq!(stats.accepted, 300);
        assert_eq!(stats.delivered + stats.failed, 300, "{stats:?}");
        assert_eq!(stats.pending, 0);

        let drain = Peer::spawn(&["drain", &url, &queue]);
        let mut received = BTreeSet::new();
        loop {
            let line = drain.next();
            if line == json!("drained") {
                break;
            }
            assert_eq!(line["metric"], json!(metric));
            let n = line["timestamp"].as_i64().unwrap();
            assert_eq!(line["value"].as_f64(), Some(n as f64));
            assert!(received.insert(n), "point {n} received twice");
        }
        drain.finish();
        // Every delivered point is there; a point counted failed may be there too (its
        // confirmation was lost with the connection).
        assert!(
            received.len() as u64 >= stats.delivered,
            "{stats:?}, {}",
            received.len()
        );
        assert!(received.iter().all(|n| (0..300).contains(n)));
        // The points logged while the broker was down were delivered after the reconnect.
        assert!((100..200).all(|n| received.contains(&n)), "{stats:?}");
    });
}

#[test]
fn a_broker_that_stays_away_stops_the_agent_with_a_reconnect_timeout() {
    within(NODE_TEST_LIMIT, || {
        let (mut node, manager) = network();
        let url = node.url();
        let config = MetricqConfig::new(&url, "source-mvx-abandoned")
            .unwrap()
            .reconnect_interval(Duration::from_millis(100))
            .connection_timeout(Duration::from_millis(1_500))
            .delivery_timeout(Duration::from_millis(500));
        let (sink, mut running) = running_bridge(config);
        manager.finish();
        node.stop();
        for n in 0..10 {
            let accepted = sink.log(DataPoint::new(
                "test.abandoned",
                Timestamp::from_nanos(n),
                1.0,
            ));
            assert!(accepted.is_ok());
        }
        let ended = running.join().unwrap_err();
        let AgentError::Stopped(cause) = &ended else {
            panic!("{ended:?}");
        };
        let shown = cause.to_string();
        assert!(shown.contains("was not re-established within"), "{shown}");
        // Nothing logged is unaccounted: the points could not be delivered.
        let stats = sink.stats();
        assert_eq!(
            (stats.accepted, stats.failed, stats.pending),
            (10, 10, 0),
            "{stats:?}"
        );
    });
}
