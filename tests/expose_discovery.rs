//! Service discovery: the Consul agent client against a local HTTP endpoint that records
//! what it receives (no Consul server can run here), and a custom `ServiceDiscovery`.
#![cfg(not(loom))]

#[path = "support/http_client.rs"]
mod http_client;
#[path = "support/watchdog.rs"]
mod watchdog;

use std::net::{SocketAddr, TcpListener};
use std::sync::{Arc, Mutex};

use async_io::Async;
use http_body_util::{BodyExt, Full};
use hyper::body::{Bytes, Incoming};
use mvx::BoxError;
use mvx::expose::ExposeError;
use mvx::expose::discovery::{
    BoxFuture, ConsulAgent, ConsulError, Deregistration, ServerInfo, ServiceDiscovery,
};
use mvx::expose::http::{MetricsServer, ServerConfig, ThreadedMetricsServer};
use mvx::metrics::Registry;

/// One request the fake agent received.
#[derive(Clone, Debug)]
struct Received {
    method: String,
    path: String,
    token: Option<String>,
    body: String,
}

/// A local HTTP endpoint answering like a Consul agent and recording every request.
struct FakeAgent {
    addr: SocketAddr,
    received: Arc<Mutex<Vec<Received>>>,
    stop: async_channel::Sender<()>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl FakeAgent {
    /// Answers `status(path)` to each request.
    fn start(status: fn(&str) -> u16) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = listener.local_addr().expect("address");
        let listener = Async::new(listener).expect("async listener");
        let received = Arc::new(Mutex::new(Vec::new()));
        let (stop, stopped) = async_channel::bounded::<()>(1);
        let record = received.clone();
        let thread = std::thread::spawn(move || {
            smol::block_on(async move {
                let serve = async {
                    loop {
                        let (stream, _) = listener.accept().await.expect("accept");
                        let record = record.clone();
                        let service =
                            hyper::service::service_fn(move |request: hyper::Request<Incoming>| {
                                let record = record.clone();
                                async move {
                                    let method = request.method().to_string();
                                    let path = request.uri().path().to_owned();
                                    let token = request
                                        .headers()
                                        .get("x-consul-token")
                                        .map(|value| value.to_str().unwrap_or("?").to_owned());
                                    let body = request.into_body().collect().await?.to_bytes();
                                    let answer = status(&path);
                                    record.lock().unwrap().push(Received {
                                        method,
                                        path,
                                        token,
                                        body: String::from_utf8_lossy(&body).into_owned(),
                                    });
                                    let mut response = hyper::Response::new(Full::new(
                                        Bytes::from_static(b"agent says no"),
                                    ));
                                    *response.status_mut() =
                                        hyper::StatusCode::from_u16(answer).unwrap();
                                    Ok::<_, hyper::Error>(response)
                                }
                            });
                        let _ = hyper::server::conn::http1::Builder::new()
                            .serve_connection(smol_hyper::rt::FuturesIo::new(stream), service)
                            .await;
                    }
                };
                futures::future::select(std::pin::pin!(serve), std::pin::pin!(stopped.recv()))
                    .await;
            })
        });
        Self {
            addr,
            received,
            stop,
            thread: Some(thread),
        }
    }

    fn received(&self) -> Vec<Received> {
        self.received.lock().unwrap().clone()
    }
}

impl Drop for FakeAgent {
    fn drop(&mut self) {
        let _ = self.stop.try_send(());
        if let Some(thread) = self.thread.take() {
            thread.join().expect("fake agent thread");
        }
    }
}

fn config() -> ServerConfig {
    ServerConfig::new("127.0.0.1:0".parse().expect("address"))
}

#[test]
fn consul_registers_with_the_metrics_url_and_deregisters_on_close() {
    let agent = FakeAgent::start(|_| 200);
    let consul = ConsulAgent::new(agent.addr)
        .name("billing-metrics")
        .service_id("billing-1")
        .tags(["billing", "prod"])
        .token("secret");
    let server = ThreadedMetricsServer::start(Registry::new(), config().service_discovery(consul))
        .expect("server starts");
    assert!(server.is_registered());

    let received = agent.received();
    assert_eq!(received.len(), 1, "{received:?}");
    let register = &received[0];
    assert_eq!(register.method, "PUT");
    assert_eq!(register.path, "/v1/agent/service/register");
    assert_eq!(register.token.as_deref(), Some("secret"));
    let body: serde_json::Value = serde_json::from_str(&register.body).expect("JSON body");
    let port = server.local_addr().port();
    assert_eq!(
        body,
        serde_json::json!({
            "Name": "billing-metrics",
            "ID": "billing-1",
            "Tags": ["billing", "prod"],
            "Address": "127.0.0.1",
            "Port": port,
            "Meta": {"metrics_path": "/metrics", "scheme": "http"},
            "Check": {"HTTP": server.url(), "Interval": "10s"},
        })
    );

    server.close().expect("closes");
    assert!(!server.is_registered());
    server.close().expect("idempotent");
    let received = agent.received();
    assert_eq!(received.len(), 2, "deregistered once: {received:?}");
    assert_eq!(received[1].method, "PUT");
    assert_eq!(received[1].path, "/v1/agent/service/deregister/billing-1");
    assert_eq!(received[1].token.as_deref(), Some("secret"));
}

#[test]
fn a_refused_registration_fails_the_start_and_releases_the_port() {
    let agent = FakeAgent::start(|_| 403);
    let taken = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = taken.local_addr().expect("address");
    drop(taken);
    let consul = ConsulAgent::new(agent.addr);
    let error = ThreadedMetricsServer::start(
        Registry::new(),
        ServerConfig::new(addr).service_discovery(consul),
    )
    .expect_err("registration refused");
    let ExposeError::Registration(cause) = &error else {
        panic!("{error:?}");
    };
    let refusal = cause.downcast_ref::<ConsulError>().expect("a consul error");
    assert_eq!(refusal.status, 403);
    assert_eq!(refusal.body, "agent says no");
    assert_eq!(refusal.path, "/v1/agent/service/register");
    assert!(std::net::TcpStream::connect(addr).is_err(), "closed");
    // Nothing to deregister.
    assert_eq!(agent.received().len(), 1);
}

#[test]
fn an_unreachable_agent_fails_the_start() {
    let unused = TcpListener::bind("127.0.0.1:0").expect("bind");
    let nobody = unused.local_addr().expect("address");
    drop(unused);
    let error = ThreadedMetricsServer::start(
        Registry::new(),
        config().service_discovery(ConsulAgent::new(nobody)),
    )
    .expect_err("no agent");
    let ExposeError::Registration(cause) = &error else {
        panic!("{error:?}");
    };
    let io = cause
        .downcast_ref::<std::io::Error>()
        .expect("an I/O error");
    assert_eq!(io.kind(), std::io::ErrorKind::ConnectionRefused);
}

#[test]
fn a_failed_deregistration_is_closes_error_and_the_server_is_closed_anyway() {
    let agent = FakeAgent::start(|path| {
        if path.contains("deregister") {
            500
        } else {
            200
        }
    });
    let server = ThreadedMetricsServer::start(
        Registry::new(),
        config().service_discovery(ConsulAgent::new(agent.addr)),
    )
    .expect("server starts");
    let addr = server.local_addr();
    let error = server.close().expect_err("deregistration failed");
    let ExposeError::Deregistration(cause) = &error else {
        panic!("{error:?}");
    };
    assert_eq!(
        cause.downcast_ref::<ConsulError>().expect("consul").status,
        500
    );
    assert!(matches!(
        server.close(),
        Err(ExposeError::Deregistration(_))
    ));
    assert!(std::net::TcpStream::connect(addr).is_err());
    let paths: Vec<String> = agent.received().into_iter().map(|r| r.path).collect();
    assert_eq!(
        paths,
        [
            "/v1/agent/service/register",
            "/v1/agent/service/deregister/app-metrics"
        ]
    );
}

#[test]
fn deregister_false_leaves_the_service_registered() {
    let agent = FakeAgent::start(|_| 200);
    let consul = ConsulAgent::new(agent.addr).deregister(false);
    let server = ThreadedMetricsServer::start(Registry::new(), config().service_discovery(consul))
        .expect("server starts");
    server.close().expect("closes");
    assert_eq!(agent.received().len(), 1);
}

/// A discovery that records what it was told, for the async server.
#[derive(Clone, Default)]
struct Recording {
    events: Arc<Mutex<Vec<String>>>,
}

impl ServiceDiscovery for Recording {
    fn register<'a>(
        &'a self,
        server: &'a ServerInfo,
    ) -> BoxFuture<'a, Result<Deregistration, BoxError>> {
        Box::pin(async move {
            self.events
                .lock()
                .unwrap()
                .push(format!("register {}", server.url));
            let events = self.events.clone();
            let url = server.url.clone();
            Ok(Deregistration::new(async move {
                events.lock().unwrap().push(format!("deregister {url}"));
                Ok(())
            }))
        })
    }
}

#[test]
fn a_custom_discovery_is_run_by_start_and_close_on_the_callers_executor() {
    let discovery = Recording::default();
    let executor = smol::Executor::new();
    let events = smol::block_on(executor.run(async {
        let server = MetricsServer::start(
            Registry::new(),
            config().service_discovery(discovery.clone()),
            &SmolSpawner(&executor),
        )
        .await
        .expect("starts");
        assert!(server.is_registered());
        let answer = http_client::request(server.local_addr(), "GET", "/metrics", None)
            .await
            .expect("scrape");
        assert_eq!(answer.status, 200);
        server.close().await.expect("closes");
        server.close().await.expect("idempotent");
        let url = server.url().to_owned();
        (url, discovery.events.lock().unwrap().clone())
    }));
    let (url, events) = events;
    assert_eq!(
        events,
        [format!("register {url}"), format!("deregister {url}")]
    );
}

/// `futures::task::Spawn` for a smol executor.
struct SmolSpawner<'a>(&'a smol::Executor<'static>);

impl futures::task::Spawn for SmolSpawner<'_> {
    fn spawn_obj(
        &self,
        future: futures::task::FutureObj<'static, ()>,
    ) -> Result<(), futures::task::SpawnError> {
        self.0.spawn(future).detach();
        Ok(())
    }
}
