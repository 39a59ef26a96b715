//! The metrics server over real sockets: what it answers, under which executors, how it
//! closes, and how it survives bad clients.
#![cfg(not(loom))]

#[path = "support/http_client.rs"]
mod http_client;
#[path = "support/watchdog.rs"]
mod watchdog;

use std::io::Write;
use std::net::SocketAddr;
use std::time::Duration;

use futures::task::SpawnExt;
use http_client::{get, get_when_a_slot_is_free, raw, read_to_end, request, send_and_read_to_end};
use mvx::expose::http::{MetricsServer, ServerConfig, ThreadedMetricsServer};
use mvx::expose::{Format, TextEncoder};
use mvx::metrics::Registry;

fn loopback() -> SocketAddr {
    "127.0.0.1:0".parse().expect("address")
}

fn registry() -> Registry {
    let registry = Registry::new();
    registry
        .counter("http.requests")
        .expect("counter")
        .inc_by(7);
    registry.gauge("queue.depth").expect("gauge").set(2.5);
    registry
        .histogram("http.seconds", [0.1, 1.0])
        .expect("histogram")
        .observe(0.5);
    registry
}

const PROMETHEUS_TEXT: &str = "\
# HELP http_requests_total http.requests
# TYPE http_requests_total counter
http_requests_total 7
# HELP http_seconds http.seconds
# TYPE http_seconds histogram
http_seconds_bucket{le=\"0.1\"} 0
http_seconds_bucket{le=\"1.0\"} 1
http_seconds_bucket{le=\"+Inf\"} 1
http_seconds_sum 0.5
http_seconds_count 1
# HELP queue_depth queue.depth
# TYPE queue_depth gauge
queue_depth 2.5
";

#[test]
fn a_scrape_gets_the_registry_in_the_negotiated_format() {
    let server = ThreadedMetricsServer::start(registry(), ServerConfig::new(loopback()))
        .expect("server starts");
    let addr = server.local_addr();
    assert_ne!(addr.port(), 0, "port 0 picks a free port");
    // As prometheus_async's `url`: the server's root, whose page links to the metrics.
    assert_eq!(server.url(), format!("http://{addr}/"));
    assert_eq!(server.metrics_url(), format!("http://{addr}/metrics"));
    assert!(!server.is_https());
    assert!(!server.is_registered());

    let answer = get(addr, "/metrics").expect("scrape");
    assert_eq!(answer.status, 200);
    assert_eq!(
        answer.headers["content-type"],
        Format::Prometheus.content_type()
    );
    assert_eq!(answer.body, PROMETHEUS_TEXT);

    let prometheus_accept =
        "application/openmetrics-text;version=1.0.0;q=0.5,text/plain;version=0.0.4;q=0.3,*/*;q=0.2";
    let answer =
        futures::executor::block_on(request(addr, "GET", "/metrics", Some(prometheus_accept)))
            .expect("scrape");
    assert_eq!(answer.status, 200);
    assert_eq!(
        answer.headers["content-type"],
        Format::OpenMetrics.content_type()
    );
    assert!(
        answer
            .body
            .contains("# TYPE http_requests counter\nhttp_requests_total 7\n")
    );
    assert!(answer.body.ends_with("# EOF\n"));

    server.close().expect("closes");
    assert_eq!(server.stats().accepted, 2);
}

#[test]
fn head_answers_headers_only_and_other_methods_get_405() {
    let server = ThreadedMetricsServer::start(registry(), ServerConfig::new(loopback()))
        .expect("server starts");
    let addr = server.local_addr();
    let head = futures::executor::block_on(request(addr, "HEAD", "/metrics", None)).expect("HEAD");
    assert_eq!(head.status, 200);
    assert_eq!(head.body, "");
    assert_eq!(
        head.headers["content-length"],
        PROMETHEUS_TEXT.len().to_string()
    );
    for method in ["POST", "PUT", "DELETE", "PATCH", "OPTIONS"] {
        let answer =
            futures::executor::block_on(request(addr, method, "/metrics", None)).expect(method);
        assert_eq!(answer.status, 405, "{method}");
        assert_eq!(answer.headers["allow"], "GET, HEAD", "{method}");
    }
    server.close().expect("closes");
}

#[test]
fn a_threaded_server_starts_and_closes_inside_another_executors_block_on() {
    // As an agent's connect and teardown do under `Runner::run`.
    let (closed, is_closed) = futures::executor::block_on(async {
        let server = ThreadedMetricsServer::start(registry(), ServerConfig::new(loopback()))
            .expect("server starts");
        let scraped = request(server.local_addr(), "GET", "/metrics", None).await;
        assert_eq!(scraped.expect("scrape").status, 200);
        let closed = server.close();
        (closed, server.server().is_closed())
    });
    assert!(closed.is_ok(), "{closed:?}");
    assert!(is_closed);
}

/// The page prometheus_async serves at `/`, letter for letter (`aio.web._REF`).
const ROOT_PAGE: &str = r#"<html><body><a href="/metrics">Metrics</a></body></html>"#;

#[test]
fn the_root_page_links_to_the_metrics() {
    let server = ThreadedMetricsServer::start(registry(), ServerConfig::new(loopback()))
        .expect("server starts");
    let addr = server.local_addr();
    let answer = get(addr, "/").expect("root page");
    assert_eq!(answer.status, 200);
    assert_eq!(answer.headers["content-type"], "text/html; charset=utf-8");
    assert_eq!(answer.body, ROOT_PAGE);
    let head = futures::executor::block_on(request(addr, "HEAD", "/", None)).expect("HEAD");
    assert_eq!(head.status, 200);
    assert_eq!(head.body, "");
    assert_eq!(head.headers["content-length"], ROOT_PAGE.len().to_string());
    let post = futures::executor::block_on(request(addr, "POST", "/", None)).expect("POST");
    assert_eq!(post.status, 405);
    assert_eq!(post.headers["allow"], "GET, HEAD");
    server.close().expect("closes");
}

#[test]
fn unknown_paths_get_404_and_the_path_is_configurable() {
    let config = ServerConfig::new(loopback()).path("internal/metrics");
    let server = ThreadedMetricsServer::start(registry(), config).expect("server starts");
    let addr = server.local_addr();
    assert_eq!(server.url(), format!("http://{addr}/"));
    assert_eq!(
        server.metrics_url(),
        format!("http://{addr}/internal/metrics")
    );
    for path in [
        "/metrics",
        "/internal/metrics/",
        "/favicon.ico",
        "/index.html",
    ] {
        assert_eq!(get(addr, path).expect(path).status, 404, "{path}");
    }
    let answer = get(addr, "/internal/metrics?x=1").expect("scrape");
    assert_eq!(answer.status, 200);
    assert_eq!(answer.body, PROMETHEUS_TEXT);
    // The root page links to the configured path, escaped for HTML.
    let root = get(addr, "/").expect("root page");
    assert_eq!(
        root.body,
        r#"<html><body><a href="/internal/metrics">Metrics</a></body></html>"#
    );
    server.close().expect("closes");

    let config = ServerConfig::new(loopback()).path("/m\"<&>");
    let server = ThreadedMetricsServer::start(registry(), config).expect("server starts");
    let root = get(server.local_addr(), "/").expect("root page");
    assert_eq!(
        root.body,
        r#"<html><body><a href="/m&quot;&lt;&amp;&gt;">Metrics</a></body></html>"#
    );
    server.close().expect("closes");
}

/// A server whose metrics are at `/` serves them there, not the page.
#[test]
fn metrics_at_the_root_replace_the_page() {
    let config = ServerConfig::new(loopback()).path("/");
    let server = ThreadedMetricsServer::start(registry(), config).expect("server starts");
    let addr = server.local_addr();
    assert_eq!(server.url(), server.metrics_url());
    let answer = get(addr, "/").expect("scrape");
    assert_eq!(
        (answer.status, answer.body.as_str()),
        (200, PROMETHEUS_TEXT)
    );
    server.close().expect("closes");
}

#[test]
fn labels_of_the_encoder_are_on_every_sample() {
    let encoder = TextEncoder::new()
        .label("service", "bill\"ing")
        .expect("valid label");
    let config = ServerConfig::new(loopback()).encoder(encoder);
    let server = ThreadedMetricsServer::start(registry(), config).expect("server starts");
    let body = get(server.local_addr(), "/metrics").expect("scrape").body;
    assert!(
        body.contains("http_requests_total{service=\"bill\\\"ing\"} 7\n"),
        "{body}"
    );
    assert!(body.contains("http_seconds_bucket{service=\"bill\\\"ing\",le=\"+Inf\"} 1\n"));
    server.close().expect("closes");
}

/// Runs a `MetricsServer` under an executor and scrapes it from another thread.
fn scrape_under(spawn: impl FnOnce(mvx::expose::http::ServerDriver)) -> (MetricsServer, String) {
    let (server, driver) =
        MetricsServer::bind(registry(), ServerConfig::new(loopback())).expect("binds");
    spawn(driver);
    let body = get(server.local_addr(), "/metrics").expect("scrape").body;
    (server, body)
}

#[test]
fn runs_under_tokio() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .build()
        .expect("tokio runtime");
    let (server, body) = scrape_under(|driver| {
        runtime.spawn(driver);
    });
    assert_eq!(body, PROMETHEUS_TEXT);
    runtime.block_on(server.close()).expect("closes");
    // The socket is released: the port refuses connections.
    assert!(std::net::TcpStream::connect(server.local_addr()).is_err());
}

#[test]
fn runs_under_smol() {
    let executor = std::sync::Arc::new(smol::Executor::new());
    let (stop, stopped) = async_channel::bounded::<()>(1);
    let runner = executor.clone();
    let thread = std::thread::spawn(move || {
        smol::block_on(runner.run(async move {
            let _ = stopped.recv().await;
        }))
    });
    let (server, body) = scrape_under(|driver| executor.spawn(driver).detach());
    assert_eq!(body, PROMETHEUS_TEXT);
    smol::block_on(server.close()).expect("closes");
    drop(stop);
    thread.join().expect("smol thread");
}

#[test]
fn runs_under_a_futures_thread_pool_with_start() {
    let pool = futures::executor::ThreadPool::builder()
        .pool_size(1)
        .create()
        .expect("thread pool");
    let server = futures::executor::block_on(MetricsServer::start(
        registry(),
        ServerConfig::new(loopback()),
        &pool,
    ))
    .expect("starts");
    assert_eq!(
        get(server.local_addr(), "/metrics").expect("scrape").body,
        PROMETHEUS_TEXT
    );
    // Close from a task on the same pool, and twice at once.
    let closer = server.clone();
    let first = pool
        .spawn_with_handle(async move { closer.close().await })
        .expect("spawn");
    let second = futures::executor::block_on(server.close());
    assert!(second.is_ok());
    assert!(futures::executor::block_on(first).is_ok());
    assert!(server.is_closed());
}

#[test]
fn start_refuses_a_shut_down_executor() {
    let pool = futures::executor::ThreadPool::builder()
        .pool_size(1)
        .create()
        .expect("thread pool");
    struct Refusing;
    impl futures::task::Spawn for Refusing {
        fn spawn_obj(
            &self,
            _: futures::task::FutureObj<'static, ()>,
        ) -> Result<(), futures::task::SpawnError> {
            Err(futures::task::SpawnError::shutdown())
        }
    }
    drop(pool);
    let error = futures::executor::block_on(MetricsServer::start(
        registry(),
        ServerConfig::new(loopback()),
        &Refusing,
    ))
    .expect_err("refused");
    assert!(matches!(
        error,
        mvx::expose::ExposeError::EventLoopUnavailable
    ));
    assert_eq!(error.reason(), mvx::ErrorReason::EventLoopUnavailable);
}

#[test]
fn binding_a_taken_port_is_an_error_naming_the_address() {
    let first = ThreadedMetricsServer::start(registry(), ServerConfig::new(loopback()))
        .expect("server starts");
    let taken = first.local_addr();
    let error = ThreadedMetricsServer::start(registry(), ServerConfig::new(taken))
        .expect_err("the port is taken");
    assert!(
        matches!(&error, mvx::expose::ExposeError::Bind { addr, .. } if *addr == taken),
        "{error:?}"
    );
    first.close().expect("closes");
}

#[test]
fn close_is_idempotent_releases_the_port_and_drop_closes() {
    let server = ThreadedMetricsServer::start(registry(), ServerConfig::new(loopback()))
        .expect("server starts");
    let addr = server.local_addr();
    assert_eq!(get(addr, "/metrics").expect("scrape").status, 200);
    let closers: Vec<_> = (0..3)
        .map(|_| {
            let server = &server;
            std::thread::scope(|scope| scope.spawn(move || server.close()).join())
        })
        .collect();
    for closed in closers {
        assert!(closed.expect("closer thread").is_ok());
    }
    assert!(server.close().is_ok());
    assert!(std::net::TcpStream::connect(addr).is_err());

    let dropped = ThreadedMetricsServer::start(registry(), ServerConfig::new(loopback()))
        .expect("server starts");
    let addr = dropped.local_addr();
    drop(dropped);
    assert!(std::net::TcpStream::connect(addr).is_err());
}

#[test]
fn dropping_every_handle_stops_the_driver() {
    let (server, driver) =
        MetricsServer::bind(registry(), ServerConfig::new(loopback())).expect("binds");
    let thread = std::thread::spawn(move || futures::executor::block_on(driver));
    assert_eq!(
        get(server.local_addr(), "/metrics").expect("scrape").status,
        200
    );
    drop(server);
    thread.join().expect("the driver returned");
}

#[test]
fn a_server_whose_driver_was_never_polled_closes_once_the_driver_is_dropped() {
    let (server, driver) =
        MetricsServer::bind(registry(), ServerConfig::new(loopback())).expect("binds");
    let addr = server.local_addr();
    drop(driver);
    futures::executor::block_on(server.close()).expect("closes");
    assert!(std::net::TcpStream::connect(addr).is_err());
}

#[test]
fn a_panicking_source_is_reported_and_the_scrape_still_answered() {
    struct Broken;
    impl mvx::metrics::SnapshotSource for Broken {
        fn collect(&self, _: &mut mvx::metrics::Snapshots) {
            panic!("source failed");
        }
    }
    let registry = registry();
    registry
        .register_source("broken", std::sync::Arc::new(Broken))
        .expect("registers");
    let server = ThreadedMetricsServer::start(registry.clone(), ServerConfig::new(loopback()))
        .expect("server starts");
    let answer = get(server.local_addr(), "/metrics").expect("scrape");
    assert_eq!(answer.status, 200);
    assert_eq!(answer.body, PROMETHEUS_TEXT);
    assert_eq!(registry.source_panics(), 1);
    server.close().expect("closes");
}

// ---------------------------------------------------------------------------------------
// Bad clients
// ---------------------------------------------------------------------------------------

#[test]
fn a_malformed_request_gets_400_and_scrapes_go_on() {
    let server = ThreadedMetricsServer::start(registry(), ServerConfig::new(loopback()))
        .expect("server starts");
    let addr = server.local_addr();
    for garbage in [
        &b"GARBAGE\r\n\r\n"[..],
        b"GET /metrics HTTP/9.9\r\n\r\n",
        b"GET /metrics HTTP/1.1\r\nHost: x\r\nBad Header\r\n\r\n",
        b"\x16\x03\x01\x00\xa5\x01\x00\x00\xa1\x03\x03\r\n\r\n",
    ] {
        let answer = send_and_read_to_end(&mut raw(addr), garbage);
        assert!(
            answer.starts_with("HTTP/1.1 400 Bad Request\r\n"),
            "{garbage:?}: {answer:?}"
        );
    }
    assert_eq!(get(addr, "/metrics").expect("scrape").body, PROMETHEUS_TEXT);
    let stats = server.stats();
    assert_eq!(stats.accepted, 5);
    assert_eq!(stats.failed, 4);
    server.close().expect("closes");
}

#[test]
fn oversized_headers_get_431() {
    let config = ServerConfig::new(loopback()).max_header_bytes(4 * 1024);
    let server = ThreadedMetricsServer::start(registry(), config).expect("server starts");
    let addr = server.local_addr();
    let big = format!(
        "GET /metrics HTTP/1.1\r\nHost: x\r\nX-Padding: {}\r\n\r\n",
        "a".repeat(64 * 1024)
    );
    let mut stream = raw(addr);
    // The server may answer and close before the whole request is written.
    let _ = stream.write_all(big.as_bytes());
    let answer = read_to_end(&mut stream);
    assert!(
        answer.starts_with("HTTP/1.1 431 Request Header Fields Too Large\r\n"),
        "{answer:?}"
    );
    // A request just under the limit is answered.
    let fits = format!(
        "GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\nX-Padding: {}\r\n\r\n",
        "a".repeat(3 * 1024)
    );
    let answer = send_and_read_to_end(&mut raw(addr), fits.as_bytes());
    assert!(answer.starts_with("HTTP/1.1 200 OK\r\n"), "{answer:?}");
    assert!(answer.ends_with(PROMETHEUS_TEXT));
    server.close().expect("closes");
}

#[test]
fn slow_clients_are_cut_off_while_scrapes_are_answered() {
    let config = ServerConfig::new(loopback()).header_read_timeout(Duration::from_millis(300));
    let server = ThreadedMetricsServer::start(registry(), config).expect("server starts");
    let addr = server.local_addr();

    // A client that connects and says nothing, one that stops in the middle of its headers,
    // and one that trickles a byte at a time.
    let mut silent = raw(addr);
    let mut partial = raw(addr);
    partial
        .write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\n")
        .expect("write");
    let trickle = std::thread::spawn(move || {
        let mut stream = raw(addr);
        let request = b"GET /metrics HTTP/1.1\r\nHost: x\r\nX-Slow: ";
        for (sent, byte) in request.iter().chain(std::iter::repeat(&b'a')).enumerate() {
            if stream.write_all(&[*byte]).is_err() || sent > 100_000 {
                return sent;
            }
            // The scenario: a client that sends one byte every 20 ms, never a whole header.
            std::thread::sleep(Duration::from_millis(20));
        }
        unreachable!()
    });

    // Well-formed scrapes are answered meanwhile.
    for _ in 0..3 {
        assert_eq!(get(addr, "/metrics").expect("scrape").body, PROMETHEUS_TEXT);
    }

    // The slow clients are disconnected (the read guard is 30 s; the timeout 300 ms).
    assert_eq!(read_to_end(&mut silent), "");
    let answer = read_to_end(&mut partial);
    assert!(
        answer.is_empty() || answer.starts_with("HTTP/1.1 408"),
        "{answer:?}"
    );
    let sent = trickle.join().expect("trickle thread");
    assert!(
        sent < 100_000,
        "the trickling client was cut off after {sent} bytes"
    );
    assert_eq!(get(addr, "/metrics").expect("scrape").status, 200);
    server.close().expect("closes");
}

#[test]
fn a_client_that_stops_reading_is_cut_off_while_scrapes_are_answered() {
    /// One gauge snapshot with enough dimensions for an answer of several megabytes: more
    /// than the socket buffers hold.
    struct Big;
    impl mvx::metrics::SnapshotSource for Big {
        fn collect(&self, into: &mut mvx::metrics::Snapshots) {
            let mut snapshot = mvx::metrics::Snapshot::new("big", mvx::metrics::MetricKind::Gauge);
            let padding = "_".repeat(100);
            for i in 0..25_000u32 {
                snapshot = snapshot.with(format!("d{i:06}{padding}"), i);
            }
            into.insert("big".into(), snapshot);
        }
    }
    let registry = Registry::new();
    registry
        .register_source("big", std::sync::Arc::new(Big))
        .expect("source");
    let config = ServerConfig::new(loopback())
        .write_timeout(Duration::from_millis(300))
        .max_connections(2);
    let server = ThreadedMetricsServer::start(registry, config).expect("server starts");
    let addr = server.local_addr();

    // Asks for the big answer and does not read it until the server gave up writing.
    let mut stalled = raw(addr);
    shrink_receive_buffer(&stalled);
    stalled
        .write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
        .expect("write");
    // Meanwhile a scraper that reads is answered in full.
    let full = get(addr, "/metrics").expect("scrape").body;
    assert!(full.len() > 8_000_000, "{} bytes", full.len());
    // The server disconnects the stalled client (it counts the failure when it does): what
    // the client reads afterwards ends early.
    watchdog::wait_until(|| server.stats().failed == 1);
    let received = read_to_end(&mut stalled);
    assert!(received.starts_with("HTTP/1.1 200 OK\r\n"));
    assert!(
        received.len() < full.len(),
        "{} of {}",
        received.len(),
        full.len()
    );
    assert_eq!(server.stats().failed, 1);
    server.close().expect("closes");
}

/// Keeps the kernel from buffering much for `stream` while the test does not read it.
fn shrink_receive_buffer(stream: &std::net::TcpStream) {
    use std::os::fd::AsRawFd;
    let size: libc::c_int = 16 * 1024;
    // SAFETY: a valid socket descriptor, and a pointer to a live `c_int` with its length.
    let result = unsafe {
        libc::setsockopt(
            stream.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_RCVBUF,
            (&raw const size).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    assert_eq!(result, 0, "setsockopt(SO_RCVBUF)");
}

#[test]
fn an_idle_keep_alive_connection_is_closed_after_the_header_timeout() {
    let config = ServerConfig::new(loopback()).header_read_timeout(Duration::from_millis(300));
    let server = ThreadedMetricsServer::start(registry(), config).expect("server starts");
    let mut stream = raw(server.local_addr());
    stream
        .write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
        .expect("write");
    // One answer, then the connection stays open for the next request, until the timeout.
    let received = read_to_end(&mut stream);
    assert!(received.starts_with("HTTP/1.1 200 OK\r\n"), "{received:?}");
    assert_eq!(received.matches("HTTP/1.1").count(), 1);
    server.close().expect("closes");
}

// The limit on connections, and which connection makes room for a newcomer: see
// tests/expose_http_attacks.rs.

#[test]
fn many_concurrent_clients_get_answers_or_refusals_and_the_server_goes_on() {
    const CLIENTS: usize = 48;
    let config = ServerConfig::new(loopback()).max_connections(8);
    let server = ThreadedMetricsServer::start(registry(), config).expect("server starts");
    let addr = server.local_addr();
    let barrier = std::sync::Barrier::new(CLIENTS);
    let outcomes: Vec<Result<String, String>> = std::thread::scope(|scope| {
        let clients: Vec<_> = (0..CLIENTS)
            .map(|_| {
                let barrier = &barrier;
                scope.spawn(move || {
                    barrier.wait();
                    get(addr, "/metrics")
                        .map(|answer| answer.body)
                        .map_err(|error| error.to_string())
                })
            })
            .collect();
        clients
            .into_iter()
            .map(|client| client.join().expect("client thread"))
            .collect()
    });
    let answered = outcomes.iter().filter(|outcome| outcome.is_ok()).count();
    assert!(answered >= 1, "{outcomes:?}");
    for body in outcomes.iter().flatten() {
        assert_eq!(body, PROMETHEUS_TEXT);
    }
    let stats = server.stats();
    assert_eq!(stats.accepted + stats.refused, CLIENTS as u64, "{stats:?}");
    assert_eq!(
        get_when_a_slot_is_free(addr, "/metrics").body,
        PROMETHEUS_TEXT
    );
    server.close().expect("closes");
}

#[test]
fn the_handler_serves_metrics_inside_a_users_own_service() {
    use http_body_util::Full;
    use hyper::body::Bytes;

    let registry = registry();
    let encoder = TextEncoder::new();
    let listener = std::net::TcpListener::bind(loopback()).expect("bind");
    let addr = listener.local_addr().expect("address");
    let listener = async_io::Async::new(listener).expect("async listener");
    let app = std::thread::spawn(move || {
        futures::executor::block_on(async {
            // The user's application: two routes, one of them the metrics.
            for _ in 0..2 {
                let (stream, _) = listener.accept().await.expect("accept");
                let service =
                    hyper::service::service_fn(|request: hyper::Request<hyper::body::Incoming>| {
                        let response = match request.uri().path() {
                            "/health" => hyper::Response::new(Full::new(Bytes::from_static(b"ok"))),
                            _ => mvx::expose::http::metrics_response(&registry, &encoder, &request),
                        };
                        std::future::ready(Ok::<_, std::convert::Infallible>(response))
                    });
                hyper::server::conn::http1::Builder::new()
                    .serve_connection(smol_hyper::rt::FuturesIo::new(stream), service)
                    .await
                    .expect("served");
            }
        })
    });
    assert_eq!(get(addr, "/health").expect("health").body, "ok");
    assert_eq!(
        get(addr, "/app/metrics").expect("scrape").body,
        PROMETHEUS_TEXT
    );
    app.join().expect("application thread");
}
