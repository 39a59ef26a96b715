//! The metricq client against real parts: a RabbitMQ broker (`MVX_AMQP_URL`, started by
//! `.ci/test`), the Python `metricq` package's own Source, Sink and Client
//! (tests/support/metricq_peer.py), and a test manager written on that package (it stands
//! in for metricq-manager, which cannot be installed here).
//!
//! - an mvx source's points reach a Python sink with identical timestamps and values;
//! - a Python source's points reach an mvx sink, each acknowledged once handled;
//! - RPCs from a Python client (to the agent's queue, and by broadcast) are answered by an
//!   mvx agent's handlers, errors included;
//! - `get_metrics` over the network answers in `Registry::get_metrics`' types;
//! - a manager that never answers gives a typed timeout; a remote error is a typed error;
//! - a stop during connect abandons it; unreachable brokers fail fast or time out.
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

use std::net::TcpListener;
use std::sync::mpsc;
use std::time::Duration;

use agent_thread::Running;

use metricq_peer::{Peer, shared_manager};
use mvx::agent::metricq::{
    BridgeConfig, Client, DataPoint, MetricqConfig, MetricqError, MetricqReason, RegistryBridge,
    Sink, SinkHandle, Source, Timestamp,
};
use mvx::agent::{AgentError, Selector};
use mvx::metrics::{Metadata, Registry};
use rabbitmq::unique;
use serde_json::{Value, json};
use watchdog::{GUARD, within_guard};

fn config(url: &str, token: &str) -> MetricqConfig {
    MetricqConfig::new(url, token)
        .expect("a valid configuration")
        .rpc_timeout(Duration::from_secs(20))
        .reconnect_interval(Duration::from_millis(100))
}

/// Points with awkward values and timestamps: they must arrive bit for bit.
fn awkward_points(metric: &str) -> Vec<(i64, f64)> {
    let _ = metric;
    vec![
        (1_700_000_000_000_000_001, 0.1),
        (1_700_000_000_000_000_002, -1e300),
        (1_700_000_000_000_000_003, f64::MIN_POSITIVE),
        (1_700_000_001_000_000_000, 42.5),
        (1_699_999_999_999_999_999, -0.0), // backwards in time: a negative delta
        (1, 1.0 / 3.0),
    ]
}

#[test]
fn mvx_source_points_reach_a_python_sink_unchanged() {
    within_guard(|| {
        let url = shared_manager().to_owned();
        let explicit = unique("test.explicit").replace('-', "_");
        let gauge_name = unique("test.gauge").replace('-', "_");
        let points = awkward_points(&explicit);
        let wanted = points.len() + 1;
        let sink = Peer::spawn(&["sink", &url, &wanted.to_string(), &explicit, &gauge_name]);
        sink.expect("subscribed");

        let registry = Registry::new();
        let gauge = registry
            .gauge_with(
                &gauge_name,
                Metadata::new().unit("requests").description("in flight"),
            )
            .unwrap();
        gauge.set(7.25);
        let source = Source::new(config(&url, &unique("source-mvx")));
        // A long interval: the test publishes with `publish_now`.
        let bridge = RegistryBridge::new(
            source,
            registry,
            BridgeConfig::default().interval(Duration::from_secs(3600)),
        );
        let sink_handle = bridge.sink();
        let source_handle = bridge.source();
        let running = Running::start(bridge);
        assert!(async_io::block_on(source_handle.ready()));
        for (nanos, value) in &points {
            let _ = sink_handle
                .log(DataPoint::new(
                    explicit.as_str(),
                    Timestamp::from_nanos(*nanos),
                    *value,
                ))
                .unwrap();
        }
        let mut received = Vec::new();
        for _ in 0..wanted {
            received.push(sink.next());
        }
        running.stop().unwrap();
        let stats = sink_handle.stats();
        // The gauge was published by the first tick, the explicit points by the test.
        assert_eq!(
            (stats.delivered, stats.failed, stats.pending),
            (stats.accepted, 0, 0)
        );
        let mut explicit_received: Vec<(i64, u64)> = received
            .iter()
            .filter(|point| point["metric"] == explicit.as_str())
            .map(|point| {
                (
                    point["timestamp"].as_i64().unwrap(),
                    point["value"].as_f64().unwrap().to_bits(),
                )
            })
            .collect();
        let mut expected: Vec<(i64, u64)> = points
            .iter()
            .map(|(nanos, value)| (*nanos, value.to_bits()))
            .collect();
        explicit_received.sort_unstable();
        expected.sort_unstable();
        assert_eq!(explicit_received, expected);
        let gauge_points: Vec<&Value> = received
            .iter()
            .filter(|point| point["metric"] == gauge_name.as_str())
            .collect();
        assert_eq!(gauge_points.len(), 1);
        assert_eq!(gauge_points[0]["value"], json!(7.25));
        sink.finish();
    });
}

#[test]
fn python_source_points_reach_an_mvx_sink() {
    within_guard(|| {
        let url = shared_manager().to_owned();
        let metric_a = unique("test.python.a").replace('-', "_");
        let metric_b = unique("test.python.b").replace('-', "_");
        let (sender, received) = mpsc::channel();
        let handler = move |metric: &str, timestamp: Timestamp, value: f64| {
            sender
                .send((metric.to_owned(), timestamp.as_nanos(), value.to_bits()))
                .map_err(Into::into)
        };
        let sink = Sink::new(
            config(&url, "sink-mvx-test").add_uuid().unwrap(),
            Vec::<String>::new(),
            handler,
        );
        let handle = sink.handle();
        let running = Running::start(sink);
        assert!(async_io::block_on(handle.client().connected()));
        let answer = async_io::block_on(handle.subscribe([metric_a.clone(), metric_b.clone()]))
            .expect("subscribed");
        let queue = handle.data_queue().expect("a data queue");
        assert_eq!(answer["dataQueue"], json!(queue));
        assert!(queue.starts_with("sink-mvx-test."), "{queue}");

        let mut sent = Vec::new();
        for (index, (nanos, value)) in awkward_points(&metric_a).into_iter().enumerate() {
            let metric = if index % 2 == 0 { &metric_a } else { &metric_b };
            sent.push((metric.clone(), nanos, value.to_bits()));
        }
        let points: Vec<Value> = sent
            .iter()
            .map(|(metric, nanos, bits)| json!([metric, nanos, f64::from_bits(*bits)]))
            .collect();
        let source_token = unique("source-python");
        let source = Peer::spawn(&[
            "source",
            &url,
            &source_token,
            &Value::Array(points).to_string(),
        ]);
        // The manager's configuration, dispatched to the source's `config` handler.
        assert_eq!(
            source.next(),
            json!({"config": {"rate": 10, "token": source_token}})
        );
        source.expect("sent");
        let mut got = Vec::new();
        for _ in 0..sent.len() {
            got.push(received.recv_timeout(GUARD).expect("a point"));
        }
        got.sort();
        sent.sort();
        assert_eq!(got, sent);
        source.finish();
        let stats = handle.stats();
        // The Python source sends one chunk per point (its chunk size is 1).
        assert_eq!(
            (stats.points, stats.chunks_acked, stats.chunks_rejected),
            (sent.len() as u64, sent.len() as u64, 0)
        );
        running.stop().unwrap();
    });
}

#[test]
fn python_clients_rpcs_are_answered_by_an_mvx_agent() {
    within_guard(|| {
        let url = shared_manager().to_owned();
        let token = unique("client-mvx-rpc");
        let client = Client::new(config(&url, &token));
        let handle = client.handle();
        handle.handlers().register("test.echo", |request| async move {
            Ok(json!({
                "text": request.arguments["text"],
                "n": request.arguments["n"],
                "from": request.from_token.map(|from| from.split('.').next().unwrap_or_default().to_owned()),
            }))
        });
        let running = Running::start(client);
        assert!(async_io::block_on(handle.connected()));
        let caller = Peer::spawn(&["rpc", &url, &token]);
        let direct = caller.next();
        assert_eq!(direct["direct"]["alive"], json!(true));
        assert_eq!(
            direct["direct"]["metricqVersion"],
            json!(concat!("mvx/", env!("CARGO_PKG_VERSION")))
        );
        assert!(direct["direct"]["uptime"].as_i64().unwrap() >= 0);
        // The Python client hands over the answer's fields plus `from_token`, the
        // answering agent's `app_id`.
        assert_eq!(
            caller.next(),
            json!({"echo": {"text": "hello", "n": 3, "from": "client-python-rpc", "from_token": token}})
        );
        assert_eq!(
            caller.next(),
            json!({"missing": "RPCError", "message": "Missing rpc handler for test.missing"})
        );
        let broadcast = caller.next();
        assert_eq!(broadcast["broadcast"]["alive"], json!(true));
        assert_eq!(broadcast["broadcast"]["from_token"], json!(token));
        caller.finish();
        let stats = handle.stats();
        assert!(stats.rpcs_answered >= 4, "{stats:?}");
        assert_eq!(stats.answers_failed, 0);
        running.stop().unwrap();
    });
}

#[test]
fn get_metrics_over_the_network_answers_like_the_registry() {
    within_guard(|| {
        let url = shared_manager().to_owned();
        let prefix = unique("test.list").replace('-', "_");
        let registry = Registry::new();
        let metadata = [
            (
                format!("{prefix}.cpu"),
                Metadata::new()
                    .unit("%")
                    .description("load")
                    .rate(2.0)
                    .unwrap(),
            ),
            (format!("{prefix}.hidden"), Metadata::new().hidden(true)),
            (
                format!("{prefix}.disk"),
                Metadata::new()
                    .unit("bytes")
                    .field("scope", "root")
                    .unwrap()
                    .field("bounds", json!([0, 300]))
                    .unwrap(),
            ),
        ];
        for (name, metadata) in &metadata {
            registry.gauge_with(name, metadata.clone()).unwrap();
        }
        let source = Source::new(config(&url, &unique("source-mvx-list")));
        let source_handle = source.handle();
        let running = Running::start(source);
        assert!(async_io::block_on(source_handle.ready()));
        // What a bridge declares: the registry's metrics with their metadata.
        async_io::block_on(
            source_handle.declare_metrics(registry.get_metrics(&Selector::all()).unwrap()),
        )
        .unwrap();
        let client = source_handle.client();
        let selector = Selector::regex(&format!("^{}\\.", prefix.replace('.', "\\."))).unwrap();
        let remote = async_io::block_on(client.get_metrics(&selector)).unwrap();
        let local = registry.get_metrics(&selector).unwrap();
        assert_eq!(
            remote.keys().collect::<Vec<_>>(),
            local.keys().collect::<Vec<_>>()
        );
        for (name, local) in &local {
            let remote = &remote[name];
            assert_eq!(remote.get_unit(), local.get_unit(), "{name}");
            assert_eq!(remote.get_description(), local.get_description(), "{name}");
            assert_eq!(remote.get_rate(), local.get_rate(), "{name}");
            assert_eq!(remote.is_hidden(), local.is_hidden(), "{name}");
            // Free-form fields come back as the JSON values they were declared with.
            for field in ["scope", "bounds"] {
                assert_eq!(remote.get_field(field), local.get_field(field), "{name}");
            }
            // The manager records who declared it.
            assert!(
                remote
                    .get_field("source")
                    .and_then(Value::as_str)
                    .unwrap()
                    .starts_with("source-mvx-list")
            );
        }
        // Filters are the manager's: visible only, names only, at most one.
        let visible = async_io::block_on(
            client.get_metrics(&selector.clone().hidden(false).metadata(false).limit(1)),
        )
        .unwrap();
        assert_eq!(visible.len(), 1);
        assert_eq!(visible.values().next(), Some(&Metadata::new()));
        let named = async_io::block_on(client.get_metrics(&Selector::names([
            format!("{prefix}.disk"),
            "absent".into(),
        ])))
        .unwrap();
        assert_eq!(
            named.keys().collect::<Vec<_>>(),
            [&format!("{prefix}.disk")]
        );
        // What the manager refuses is refused before it is sent, as the registry refuses it.
        let sent_before = client.stats().rpcs_sent;
        for refused in [
            Selector::names(Vec::<String>::new()),
            selector.clone().prefix("x"),
            Selector::all().prefix("x").infix("y"),
        ] {
            let remote = async_io::block_on(client.get_metrics(&refused)).unwrap_err();
            let MetricqError::InvalidSelector(remote_refusal) = &remote else {
                panic!("{refused}: {remote:?}");
            };
            assert_eq!(remote.reason(), MetricqReason::InvalidArgument);
            assert_eq!(
                Some(remote_refusal),
                registry.get_metrics(&refused).err().as_ref(),
                "{refused}"
            );
        }
        assert_eq!(client.stats().rpcs_sent, sent_before);
        running.stop().unwrap();
    });
}

#[test]
fn a_manager_that_never_answers_gives_a_typed_timeout() {
    within_guard(|| {
        let url = shared_manager().to_owned();
        let client = Client::new(config(&url, &unique("client-mvx-silent")));
        let handle = client.handle();
        let running = Running::start(client);
        assert!(async_io::block_on(handle.connected()));
        let timeout = Duration::from_millis(300);
        let silent = async_io::block_on(handle.rpc_with_timeout("test.silent", json!({}), timeout))
            .unwrap_err();
        assert!(
            matches!(&silent, MetricqError::RpcTimedOut { function, timeout: t } if function == "test.silent" && *t == timeout),
            "{silent:?}"
        );
        assert_eq!(silent.reason().as_str(), "RPC_TIMED_OUT");
        let unknown = async_io::block_on(handle.rpc("test.unknown", json!({"a": 1}))).unwrap_err();
        // The remote's error as it sent it: Python's `str(KeyError(...))`, quotes included.
        assert!(
            matches!(&unknown, MetricqError::Rpc { function, message } if function == "test.unknown" && message == "'Missing rpc handler for test.unknown'"),
            "{unknown:?}"
        );
        let refused = async_io::block_on(handle.rpc("x", json!([1]))).unwrap_err();
        assert_eq!(refused.reason(), MetricqReason::InvalidArgument);
        running.stop().unwrap();
    });
}

#[test]
fn a_stop_during_connect_abandons_it() {
    within_guard(|| {
        // A "broker" that accepts connections and never says a word.
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let (accepted_tx, accepted) = mpsc::channel();
        std::thread::spawn(move || {
            let mut kept = Vec::new();
            for stream in listener.incoming().take(4) {
                kept.push(stream);
                let _ = accepted_tx.send(());
            }
        });
        let url = format!("amqp://guest:guest@127.0.0.1:{port}/");
        let client = Client::new(
            MetricqConfig::new(&url, "client-mvx-hanging")
                .unwrap()
                .connect_timeout(Duration::from_secs(600)),
        );
        let mut running = Running::start(client);
        accepted.recv_timeout(GUARD).expect("connecting");
        running.handle.stop(None, false);
        assert!(running.join().is_ok());
        let outcome = running.handle.outcome().unwrap();
        assert!(outcome.teardown.is_ok());
        assert!(outcome.task_errors.is_empty());

        // The same broker with a short connect timeout: a typed timeout.
        let client = Client::new(
            MetricqConfig::new(&url, "client-mvx-hanging")
                .unwrap()
                .connect_timeout(Duration::from_millis(200)),
        );
        let mut running = Running::start(client);
        let failed = running.join().unwrap_err();
        assert_connect_failed(&failed, MetricqReason::ConnectTimedOut);

        // Nobody listening: fails fast.
        let port = free_port::free_port();
        let client = Client::new(
            MetricqConfig::new(&format!("amqp://127.0.0.1:{port}/"), "client-mvx-refused").unwrap(),
        );
        let mut running = Running::start(client);
        let failed = running.join().unwrap_err();
        assert_connect_failed(&failed, MetricqReason::ConnectFailed);
    });
}

fn assert_connect_failed(error: &AgentError, reason: MetricqReason) {
    let AgentError::ConnectFailed(cause) = error else {
        panic!("not a connect failure: {error:?}");
    };
    let source = std::error::Error::source(cause).map(ToString::to_string);
    let shown = cause.to_string();
    let matches = match reason {
        MetricqReason::ConnectTimedOut => shown.contains("timed out"),
        _ => shown.starts_with("connecting the management connection"),
    };
    assert!(matches, "{reason:?}: {shown} ({source:?})");
}

#[test]
fn a_sink_acknowledges_only_what_its_handler_took() {
    within_guard(|| {
        let url = shared_manager().to_owned();
        let metric = unique("test.refused").replace('-', "_");
        let (sender, received) = mpsc::channel();
        let (stats_sender, stats_seen) = mpsc::channel();
        let own_handle = std::sync::Arc::new(std::sync::OnceLock::<SinkHandle>::new());
        let reader = own_handle.clone();
        // Refuses every point of value 13: its chunk goes back once, then is dropped. At the
        // point 4 it reports the counters: every chunk before it is settled by then, its own
        // is not (a chunk is acknowledged after its points are handled).
        let handler = move |_: &str, _: Timestamp, value: f64| {
            if value == 4.0 {
                let _ = stats_sender.send(reader.get().map(SinkHandle::stats));
            }
            let _ = sender.send(value);
            if value == 13.0 {
                return Err("unlucky".into());
            }
            Ok(())
        };
        let sink = Sink::new(
            config(&url, "sink-mvx-refusing").add_uuid().unwrap(),
            Vec::<String>::new(),
            handler,
        );
        let handle = sink.handle();
        own_handle.set(handle.clone()).unwrap();
        let running = Running::start(sink);
        assert!(async_io::block_on(handle.client().connected()));
        async_io::block_on(handle.subscribe([metric.clone()])).unwrap();
        let source = Source::new(config(&url, &unique("source-mvx-unlucky")));
        let source_handle = source.handle();
        let source_running = Running::start(source);
        assert!(async_io::block_on(source_handle.ready()));
        for value in [1.0, 13.0, 2.0] {
            async_io::block_on(source_handle.send(&metric, Timestamp::now(), value)).unwrap();
        }
        let next = || received.recv_timeout(GUARD).unwrap();
        let mut seen = Vec::new();
        while seen.iter().filter(|value| **value == 13.0).count() < 2 {
            seen.push(next());
        }
        for value in [3.0, 4.0] {
            async_io::block_on(source_handle.send(&metric, Timestamp::now(), value)).unwrap();
        }
        while seen.last() != Some(&4.0) {
            seen.push(next());
        }
        seen.sort_by(f64::total_cmp);
        assert_eq!(seen, [1.0, 2.0, 3.0, 4.0, 13.0, 13.0]);
        let stats = stats_seen.recv_timeout(GUARD).unwrap().unwrap();
        assert_eq!(
            (
                stats.points,
                stats.chunks_acked,
                stats.chunks_requeued,
                stats.chunks_rejected
            ),
            (3, 3, 1, 1)
        );
        source_running.stop().unwrap();
        running.stop().unwrap();
    });
}
