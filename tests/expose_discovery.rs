//! Service discovery: the Consul agent client against a local HTTP endpoint that records
//! what it receives (no Consul server can run here; `support/consul_agent.rs`), and a
//! custom `ServiceDiscovery`.
#![cfg(not(loom))]

#[path = "support/consul_agent.rs"]
mod consul_agent;
#[path = "support/http_client.rs"]
mod http_client;
#[path = "support/watchdog.rs"]
mod watchdog;

use std::net::TcpListener;
use std::sync::{Arc, Mutex};

use consul_agent::FakeAgent;

use mvx::BoxError;
use mvx::expose::discovery::{
    BoxFuture, ConsulAgent, ConsulError, Deregistration, Registration, ServerInfo, ServiceDiscovery,
};
use mvx::expose::http::{MetricsServer, ServerConfig, ThreadedMetricsServer};
use mvx::expose::{ExposeError, ExposeReason};
use mvx::metrics::Registry;

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
            // prometheus_async's check: the server's `url`, its root page.
            "Check": {"HTTP": format!("http://127.0.0.1:{port}/"), "Interval": "10s"},
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

/// As prometheus_async's `ConsulAgent`, whose `register` returns `None` on an answer other
/// than 200: the server runs, not registered; mvx keeps the refusal readable.
#[test]
fn a_refused_registration_leaves_the_server_running_unregistered() {
    let agent = FakeAgent::start(|_| 403);
    let consul = ConsulAgent::new(agent.addr);
    let server = ThreadedMetricsServer::start(Registry::new(), config().service_discovery(consul))
        .expect("the server starts all the same");
    assert!(!server.is_registered());
    let error = server.registration_error().expect("the refusal is kept");
    assert_eq!(error.reason(), ExposeReason::RegistrationRefused);
    assert_eq!(error.reason().as_str(), "REGISTRATION_REFUSED");
    let ExposeError::RegistrationRefused(cause) = &error else {
        panic!("{error:?}");
    };
    let refusal = cause.downcast_ref::<ConsulError>().expect("a consul error");
    assert_eq!(refusal.status, 403);
    assert_eq!(refusal.body, "agent says no");
    assert_eq!(refusal.path, "/v1/agent/service/register");

    let answer = http_client::get(server.local_addr(), "/metrics").expect("scrape");
    assert_eq!(answer.status, 200);
    server.close().expect("closes: nothing to deregister");
    assert_eq!(agent.received().len(), 1, "no deregistration");
}

/// A registration asked for on demand reports the refusal as its error, and a later
/// successful one clears it.
#[test]
fn register_on_demand_reports_a_refusal_and_a_success_clears_it() {
    let refusing = FakeAgent::start(|_| 500);
    let accepting = FakeAgent::start(|_| 200);
    let executor = smol::Executor::new();
    smol::block_on(executor.run(async {
        let server = MetricsServer::start(
            Registry::new(),
            config().service_discovery(ConsulAgent::new(refusing.addr)),
            &SmolSpawner(&executor),
        )
        .await
        .expect("starts, not registered");
        assert!(!server.is_registered());
        assert!(matches!(
            server.registration_error(),
            Some(ExposeError::RegistrationRefused(_))
        ));

        let again = server
            .register(&ConsulAgent::new(refusing.addr))
            .await
            .expect_err("refused again");
        let ExposeError::RegistrationRefused(cause) = &again else {
            panic!("{again:?}");
        };
        assert_eq!(
            cause.downcast_ref::<ConsulError>().expect("consul").status,
            500
        );
        assert!(!server.is_registered());

        server
            .register(&ConsulAgent::new(accepting.addr))
            .await
            .expect("registered");
        assert!(server.is_registered());
        assert!(server.registration_error().is_none());
        server.close().await.expect("closes");
    }));
    assert_eq!(refusing.received().len(), 2);
    let paths: Vec<String> = accepting.received().into_iter().map(|r| r.path).collect();
    assert_eq!(
        paths,
        [
            "/v1/agent/service/register",
            "/v1/agent/service/deregister/app-metrics"
        ]
    );
}

/// A discovery of one's own refuses with `Registration::Refused`.
struct Refusing;

impl ServiceDiscovery for Refusing {
    fn register<'a>(&'a self, _: &'a ServerInfo) -> BoxFuture<'a, Result<Registration, BoxError>> {
        Box::pin(async { Ok(Registration::Refused("not today".into())) })
    }
}

#[test]
fn a_custom_discovery_can_refuse() {
    let server =
        ThreadedMetricsServer::start(Registry::new(), config().service_discovery(Refusing))
            .expect("starts");
    assert!(!server.is_registered());
    let error = server.registration_error().expect("refused");
    assert_eq!(
        mvx::error::Report(&error).to_string(),
        "service discovery did not register the server: not today"
    );
    server.close().expect("closes");
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
    ) -> BoxFuture<'a, Result<Registration, BoxError>> {
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
            })
            .into())
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
