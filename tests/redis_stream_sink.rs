//! `RedisStreamSink` against a real `redis-server`: entries read back with `XRANGE`, both
//! field mappings, trimming, descriptors; and delivery across failures, each with a server
//! this test owns: killed (SIGKILL) and restarted on the same port mid-stream, and a
//! connection cut after the server ran a batch but before its reply arrived. After each:
//! `delivered + failed + dropped` adds up to the events logged, and every delivered event
//! is in the stream exactly once.
//!
//! The tests that do not restart a server use the one at `MVX_REDIS_URL` when it is set
//! (`.ci/test` starts one), else one they start (`support/redis_server.rs`).
#![cfg(not(loom))]

#[path = "support/free_port.rs"]
mod free_port;
#[path = "support/redis_server.rs"]
mod redis_server;
#[path = "support/watchdog.rs"]
mod watchdog;

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, UNIX_EPOCH};

use mvx::ErrorReason;
use mvx::error::CreateError;
use mvx::queue::{LogOutcome, OverflowPolicy};
use mvx::sink::sinks::{FieldMapping, RedisStreamSink};
use mvx::sink::{AsyncSink, Describe, Level, LogEvent, SinkConfig, SinkDescriptor, SinkRegistry};
use redis_server::RedisServer;
use watchdog::{wait_until, within_guard};

/// A stream name no other test (or run) uses.
fn stream_name(test: &str) -> String {
    static STREAMS: AtomicU64 = AtomicU64::new(0);
    format!(
        "mvx-test:{test}:{}:{}",
        std::process::id(),
        STREAMS.fetch_add(1, Ordering::Relaxed)
    )
}

/// Every entry of `stream`: its ID and its fields.
fn xrange(url: &str, stream: &str) -> Vec<(String, BTreeMap<String, String>)> {
    let entries: Vec<(String, Vec<String>)> = redis::cmd("XRANGE")
        .arg(stream)
        .arg("-")
        .arg("+")
        .query(&mut redis_server::connect(url))
        .expect("XRANGE");
    entries
        .into_iter()
        .map(|(id, fields)| {
            let map = fields
                .chunks(2)
                .map(|pair| (pair[0].clone(), pair[1].clone()))
                .collect();
            (id, map)
        })
        .collect()
}

/// Removes `stream` and the acknowledgement keys of its sinks from a shared server.
fn cleanup(url: &str, stream: &str) {
    let mut connection = redis_server::connect(url);
    let mut keys: Vec<String> = redis::cmd("KEYS")
        .arg(format!("{stream}:mvx-ack:*"))
        .query(&mut connection)
        .expect("KEYS");
    assert!(
        !keys.is_empty(),
        "every sink that sent a batch has an acknowledgement key"
    );
    keys.push(stream.to_owned());
    let removed: u64 = redis::cmd("DEL")
        .arg(&keys)
        .query(&mut connection)
        .expect("DEL");
    assert_eq!(removed, keys.len() as u64);
}

/// The event numbered `n`.
fn event(n: u64) -> LogEvent {
    let mut event = LogEvent::new(Level::Info, "app::jobs", "done")
        .with_field("n", n)
        .with_field("name", format!("job-{n}"));
    event.timestamp = UNIX_EPOCH + Duration::from_millis(1_000 + n);
    event
}

/// The `n` of every JSON entry, in stream order.
fn numbers(url: &str, stream: &str) -> Vec<u64> {
    xrange(url, stream)
        .iter()
        .map(|(_, fields)| {
            let json: serde_json::Value =
                serde_json::from_str(&fields["event"]).expect("a JSON event");
            json["fields"]["n"].as_u64().expect("a number")
        })
        .collect()
}

/// Checks the accounting and that every delivered event is in the stream exactly once.
fn check_exactly_once(sink: &AsyncSink<LogEvent>, logged: u64, url: &str, stream: &str) {
    let stats = sink.stats();
    assert_eq!(stats.pending, 0, "{stats:?}");
    assert_eq!(stats.accepted + stats.dropped, logged, "{stats:?}");
    assert_eq!(
        stats.delivered + stats.failed + stats.dropped,
        logged,
        "{stats:?}"
    );
    let found = numbers(url, stream);
    let mut seen = std::collections::BTreeSet::new();
    for n in &found {
        assert!(seen.insert(*n), "event {n} is in the stream twice");
    }
    // Failed events may be in the stream (at most once) if an attempt's outcome was
    // unknown when their batch gave up; delivered ones are there, once.
    assert!(
        found.len() as u64 >= stats.delivered,
        "{stats:?}, {} entries",
        found.len()
    );
    assert!(
        found.len() as u64 <= stats.delivered + stats.failed,
        "{stats:?}"
    );
}

#[test]
fn events_are_entries_read_back_with_xrange_in_either_field_mapping() {
    within_guard(|| {
        let (url, _server) = redis_server::shared();
        let stream = stream_name("json");
        let redis = RedisStreamSink::open(&url, stream.clone()).expect("a valid URL");
        let config = SinkConfig::default().batch_size(64);
        let (sink, terminator) = mvx::rt::thread::create(redis, config).expect("the sink starts");
        for n in 0..1_000 {
            assert_eq!(sink.log(event(n)), Ok(LogOutcome::Accepted));
        }
        sink.flush_blocking().expect("flushed");
        let entries = xrange(&url, &stream);
        assert_eq!(entries.len(), 1_000);
        assert_eq!(
            numbers(&url, &stream),
            (0..1_000).collect::<Vec<_>>(),
            "in order"
        );
        assert_eq!(
            entries[7].1["event"],
            "{\"timestamp\":\"1970-01-01T00:00:01.007Z\",\"level\":\"INFO\",\
             \"target\":\"app::jobs\",\"message\":\"done\",\"fields\":{\"n\":7,\"name\":\"job-7\"}}"
        );
        terminator.terminate().expect("the sink stops");
        let stats = sink.stats();
        assert_eq!((stats.delivered, stats.failed), (1_000, 0));

        // Flat: one stream field per part; exact trimming to the last 10.
        let flat_stream = stream_name("flat");
        let redis = RedisStreamSink::open(&url, flat_stream.clone())
            .expect("a valid URL")
            .fields(FieldMapping::flat("f."))
            .max_len_exact(10);
        let (sink, terminator) =
            mvx::rt::thread::create(redis, SinkConfig::default()).expect("the sink starts");
        for n in 0..25 {
            assert_eq!(sink.log(event(n)), Ok(LogOutcome::Accepted));
        }
        terminator.terminate().expect("the sink stops");
        let entries = xrange(&url, &flat_stream);
        assert_eq!(entries.len(), 10, "MAXLEN = 10");
        let last = &entries[9].1;
        let expected: BTreeMap<String, String> = [
            ("timestamp", "1970-01-01T00:00:01.024Z"),
            ("level", "INFO"),
            ("target", "app::jobs"),
            ("message", "done"),
            ("f.n", "24"),
            ("f.name", "job-24"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
        assert_eq!(last, &expected);

        cleanup(&url, &stream);
        cleanup(&url, &flat_stream);
    });
}

#[test]
fn a_registry_creates_one_sink_per_server_and_stream() {
    within_guard(|| {
        let (url, _server) = redis_server::shared();
        let stream = stream_name("registry");
        let registry = SinkRegistry::<LogEvent>::new();
        let open = || RedisStreamSink::open(&url, stream.clone()).expect("a valid URL");
        let first = registry
            .configure(open(), SinkConfig::default())
            .expect("created");
        let again = registry
            .configure(open(), SinkConfig::default())
            .expect("the same");
        assert!(first.same_sink(&again));
        let conflict = registry.configure(open().max_len(5), SinkConfig::default());
        assert!(
            matches!(&conflict, Err(CreateError::Sink(error)) if error.reason() == ErrorReason::DescriptorConflict),
            "{conflict:?}"
        );
        let port = url
            .trim_start_matches("redis://127.0.0.1:")
            .trim_end_matches('/');
        assert_eq!(
            registry.descriptors(),
            [SinkDescriptor::new("redis-stream")
                .resource(format!("redis://127.0.0.1:{port}/0"))
                .resource(stream.clone())
                .config("maxlen=none")
                .config("fields=json:event")]
        );
        assert_eq!(open().describe(), registry.descriptors()[0]);
        assert_eq!(first.log(event(1)), Ok(LogOutcome::Accepted));
        registry.shutdown().expect("stopped, its events delivered");
        assert_eq!(numbers(&url, &stream), [1]);
        cleanup(&url, &stream);
    });
}

#[test]
fn an_unreachable_server_fails_the_start() {
    within_guard(|| {
        let url = format!("redis://127.0.0.1:{}/", free_port::free_port());
        let redis = RedisStreamSink::open(&url, "logs").expect("a valid URL");
        let created = mvx::rt::thread::create(redis, SinkConfig::default());
        match created {
            Err(CreateError::Sink(error)) => {
                assert_eq!(error.reason(), ErrorReason::OnStartingHookFailed)
            }
            other => panic!("expected a failed start, got {other:?}"),
        }
    });
}

#[test]
fn a_server_killed_and_restarted_mid_stream_loses_no_accepted_event_and_duplicates_none() {
    within_guard(|| {
        let mut server = RedisServer::start();
        let url = server.url();
        let stream = stream_name("restart");
        let redis = RedisStreamSink::open(&url, stream.clone())
            .expect("a valid URL")
            .timeout(Duration::from_secs(2));
        let delivery = redis.delivery_stats();
        let config = SinkConfig::default()
            .queue_capacity(65_536)
            .overflow(OverflowPolicy::Drop)
            .batch_size(128);
        let (sink, terminator) = mvx::rt::thread::create(redis, config).expect("the sink starts");
        let mut logged = 0;
        let mut log = |range: std::ops::Range<u64>| {
            for n in range {
                let outcome = sink.log(event(n));
                assert!(outcome.is_ok(), "{outcome:?}");
                logged += 1;
            }
        };
        // Killed while batches are on their way.
        log(0..3_000);
        server.kill();
        // Logged while the server is down: queued, the driver retrying.
        log(3_000..6_000);
        wait_until(|| delivery.failed_attempts() > 0);
        server.restart();
        log(6_000..9_000);
        terminator
            .terminate()
            .expect("the sink stops, every event dispatched");
        check_exactly_once(&sink, logged, &url, &stream);
        let stats = sink.stats();
        assert_eq!(
            (stats.delivered, stats.failed, stats.dropped),
            (9_000, 0, 0),
            "a short outage within the delivery timeout loses nothing"
        );
        assert_eq!(numbers(&url, &stream), (0..9_000).collect::<Vec<_>>());
        assert!(delivery.connections() >= 2, "reconnected: {delivery:?}");
        assert!(delivery.batches() >= 9_000 / 128, "{delivery:?}");
    });
}

/// A TCP proxy in front of the server that, when told, cuts the next connection that
/// carries a reply after the server has answered, without passing the reply on.
struct CuttingProxy {
    port: u16,
    cut_next_reply: Arc<AtomicBool>,
    cuts: Arc<AtomicU64>,
}

impl CuttingProxy {
    fn start(server_port: u16) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = listener.local_addr().expect("address").port();
        let cut_next_reply = Arc::new(AtomicBool::new(false));
        let cuts = Arc::new(AtomicU64::new(0));
        let (cut, count) = (cut_next_reply.clone(), cuts.clone());
        std::thread::spawn(move || {
            for client in listener.incoming() {
                let Ok(client) = client else { break };
                let Ok(server) = TcpStream::connect(("127.0.0.1", server_port)) else {
                    continue;
                };
                let (cut, count) = (cut.clone(), count.clone());
                let (client_in, server_out) =
                    (client.try_clone().unwrap(), server.try_clone().unwrap());
                std::thread::spawn(move || pipe(client_in, server_out));
                std::thread::spawn(move || {
                    let (mut server, mut client) = (server, client);
                    let mut buffer = [0u8; 64 * 1024];
                    while let Ok(read) = server.read(&mut buffer) {
                        if read == 0 {
                            break;
                        }
                        if cut.swap(false, Ordering::SeqCst) {
                            // The server ran the command; its answer is lost.
                            count.fetch_add(1, Ordering::SeqCst);
                            let _ = client.shutdown(Shutdown::Both);
                            let _ = server.shutdown(Shutdown::Both);
                            break;
                        }
                        if client.write_all(&buffer[..read]).is_err() {
                            break;
                        }
                    }
                });
            }
        });
        Self {
            port,
            cut_next_reply,
            cuts,
        }
    }
}

fn pipe(mut from: TcpStream, mut to: TcpStream) {
    let mut buffer = [0u8; 64 * 1024];
    loop {
        match from.read(&mut buffer) {
            Ok(0) | Err(_) => break,
            Ok(read) => {
                if to.write_all(&buffer[..read]).is_err() {
                    break;
                }
            }
        }
    }
    let _ = to.shutdown(Shutdown::Both);
}

#[test]
fn a_batch_the_server_ran_whose_reply_was_lost_is_not_sent_twice() {
    within_guard(|| {
        let server = RedisServer::start();
        let proxy = CuttingProxy::start(server.port());
        let proxied = format!("redis://127.0.0.1:{}/", proxy.port);
        let stream = stream_name("lost-reply");
        let redis = RedisStreamSink::open(&proxied, stream.clone())
            .expect("a valid URL")
            .timeout(Duration::from_secs(2));
        let delivery = redis.delivery_stats();
        let (sink, terminator) =
            mvx::rt::thread::create(redis, SinkConfig::default().batch_size(50))
                .expect("the sink starts");
        let mut logged = 0;
        for round in 0..3u64 {
            // Connected and idle: the next reply is the one to this round's first batch.
            proxy.cut_next_reply.store(true, Ordering::SeqCst);
            for n in round * 100..(round + 1) * 100 {
                assert_eq!(sink.log(event(n)), Ok(LogOutcome::Accepted));
                logged += 1;
            }
            sink.flush_blocking().expect("flushed");
            assert_eq!(proxy.cuts.load(Ordering::SeqCst), round + 1);
        }
        terminator.terminate().expect("the sink stops");
        check_exactly_once(&sink, logged, &server.url(), &stream);
        let stats = sink.stats();
        assert_eq!((stats.delivered, stats.failed), (300, 0));
        // Each cut batch was found applied on the server and not sent again.
        assert_eq!(delivery.recovered_batches(), 3, "{delivery:?}");
        assert_eq!(delivery.failed_attempts(), 3, "{delivery:?}");
        assert_eq!(delivery.connections(), 4, "{delivery:?}");
        assert_eq!(
            numbers(&server.url(), &stream),
            (0..300).collect::<Vec<_>>()
        );
    });
}

#[test]
fn a_delivery_timeout_too_long_to_reach_means_no_deadline() {
    within_guard(|| {
        let (url, _server) = redis_server::shared();
        let stream = stream_name("no-deadline");
        let redis = RedisStreamSink::open(&url, stream.clone())
            .expect("a valid URL")
            .delivery_timeout(Duration::MAX);
        let (sink, terminator) =
            mvx::rt::thread::create(redis, SinkConfig::default()).expect("the sink starts");
        for n in 0..3 {
            assert_eq!(sink.log(event(n)), Ok(LogOutcome::Accepted));
        }
        let stats = terminator.terminate().expect("the sink stops");
        assert_eq!((stats.delivered, stats.failed), (3, 0));
        assert_eq!(numbers(&url, &stream), [0, 1, 2]);
        cleanup(&url, &stream);
    });
}
