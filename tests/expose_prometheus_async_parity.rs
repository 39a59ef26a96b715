//! mvx's metrics server side by side with prometheus_async's (`aio.web.start_http_server`,
//! `pip install prometheus-async aiohttp`, which `.ci/test` runs): what each answers at
//! its root and elsewhere, what its `url` is, and what each does when a Consul agent
//! refuses the registration or accepts it. Both Consul clients speak to the same kind of
//! local endpoint (`support/consul_agent.rs`); prometheus_async's is pointed at it by
//! replacing its agent URL, fixed at `127.0.0.1:8500` otherwise.
#![cfg(not(loom))]

#[path = "support/consul_agent.rs"]
mod consul_agent;
#[path = "support/http_client.rs"]
mod http_client;
#[path = "support/prometheus_tools.rs"]
mod prometheus_tools;
#[path = "support/watchdog.rs"]
mod watchdog;

use consul_agent::FakeAgent;
use http_client::request;
use mvx::expose::discovery::ConsulAgent;
use mvx::expose::http::{ServerConfig, ThreadedMetricsServer};
use mvx::metrics::Registry;
use prometheus_tools::python;
use serde_json::{Value, json};

/// prometheus_async's server: its `url`, its answers to `GET`, `HEAD` and `POST` on `/`
/// and `GET` on another path, then, against the agents at the ports in `sys.argv[1]`
/// (refusing) and `sys.argv[2]` (accepting), whether it registered and still serves.
const PYTHON_SERVER: &str = r#"
import asyncio, json, sys
import aiohttp, yarl
from prometheus_async.aio import sd, web

async def answer(session, method, url):
    async with session.request(method, url) as response:
        return {
            "status": response.status,
            "content_type": response.headers.get("Content-Type"),
            "body": await response.text(),
        }

async def main():
    out = {}
    server = await web.start_http_server(addr="127.0.0.1")
    port = server.socket.port
    out["url"] = server.url.replace(str(port), "{port}")
    async with aiohttp.ClientSession() as session:
        for method in ["GET", "HEAD", "POST"]:
            out[method] = await answer(session, method, server.url)
        out["other"] = (await answer(session, "GET", server.url + "nothing"))["status"]
    await server.close()

    for name, agent_port in [("refused", sys.argv[1]), ("accepted", sys.argv[2])]:
        consul = sd.ConsulAgent()
        consul.consul.agent_url = yarl.URL.build(
            scheme="http", host="127.0.0.1", port=int(agent_port), path="/v1/agent"
        )
        server = await web.start_http_server(addr="127.0.0.1", service_discovery=consul)
        async with aiohttp.ClientSession() as session:
            scrape = await answer(session, "GET", server.url + "metrics")
        out[name] = {
            "port": server.socket.port,
            "is_registered": server.is_registered,
            "scrape": scrape["status"],
        }
        await server.close()
    print(json.dumps(out))

asyncio.run(main())
"#;

fn loopback() -> ServerConfig {
    ServerConfig::new("127.0.0.1:0".parse().expect("address"))
}

/// mvx's answer to `method` on `path`, in the Python side's shape.
fn answer(server: &ThreadedMetricsServer, method: &str, path: &str) -> Value {
    let answer = futures::executor::block_on(request(server.local_addr(), method, path, None))
        .expect("an answer");
    json!({
        "status": answer.status,
        "content_type": answer.headers.get("content-type").map(|value| value.to_str().expect("ASCII")),
        "body": answer.body,
    })
}

/// The registration an agent received, with the server's port written `{port}`.
fn registration(agent: &FakeAgent, port: u16) -> Value {
    let received = agent.received();
    let body: Value = serde_json::from_str(&received[0].body).expect("a JSON registration");
    let check = body["Check"]["HTTP"].as_str().expect("an HTTP check");
    json!({
        "Name": body["Name"],
        "ID": body["ID"],
        "Address": body["Address"],
        "Port": body["Port"] == port,
        "Check": {
            "HTTP": check.replace(&port.to_string(), "{port}"),
            "Interval": body["Check"]["Interval"],
        },
    })
}

#[test]
fn the_server_answers_and_registers_as_prometheus_asyncs_does() {
    let refusing = [FakeAgent::start(|_| 403), FakeAgent::start(|_| 403)];
    let accepting = [FakeAgent::start(|_| 200), FakeAgent::start(|_| 200)];
    let python: Value = serde_json::from_str(&python(
        PYTHON_SERVER,
        &[
            &refusing[0].addr.port().to_string(),
            &accepting[0].addr.port().to_string(),
        ],
        "",
    ))
    .expect("JSON from the Python side");

    // The root page, the URL, and the other answers.
    let server = ThreadedMetricsServer::start(Registry::new(), loopback()).expect("starts");
    let port = server.local_addr().port();
    assert_eq!(
        server.url().replace(&port.to_string(), "{port}"),
        python["url"],
        "the url is the root"
    );
    assert_eq!(python["url"], "http://127.0.0.1:{port}/");
    assert_eq!(answer(&server, "GET", "/"), python["GET"]);
    let head = answer(&server, "HEAD", "/");
    assert_eq!(
        (&head["status"], &head["content_type"], &head["body"]),
        (
            &python["HEAD"]["status"],
            &python["HEAD"]["content_type"],
            &python["HEAD"]["body"]
        )
    );
    // Both refuse the method; each words the refusal its own way.
    assert_eq!(
        answer(&server, "POST", "/")["status"],
        python["POST"]["status"]
    );
    assert_eq!(python["POST"]["status"], 405);
    assert_eq!(
        answer(&server, "GET", "/nothing")["status"],
        python["other"]
    );
    server.close().expect("closes");

    // A refusing agent: running, not registered, still serving.
    let consul = ConsulAgent::new(refusing[1].addr);
    let server =
        ThreadedMetricsServer::start(Registry::new(), loopback().service_discovery(consul))
            .expect("starts all the same");
    let mvx_refused = json!({
        "is_registered": server.is_registered(),
        "scrape": answer(&server, "GET", "/metrics")["status"],
    });
    assert_eq!(
        mvx_refused,
        json!({
            "is_registered": python["refused"]["is_registered"],
            "scrape": python["refused"]["scrape"],
        })
    );
    assert_eq!(mvx_refused, json!({"is_registered": false, "scrape": 200}));
    let refused_port = server.local_addr().port();
    server.close().expect("closes");
    let python_refused_port = python["refused"]["port"].as_u64().expect("a port") as u16;
    assert_eq!(
        registration(&refusing[1], refused_port),
        registration(&refusing[0], python_refused_port)
    );
    assert_eq!(
        refusing[0].received().len(),
        1,
        "prometheus_async: no deregistration"
    );
    assert_eq!(refusing[1].received().len(), 1, "mvx: no deregistration");

    // An accepting agent: registered, with the same health check on the root page, and
    // deregistered on close.
    let consul = ConsulAgent::new(accepting[1].addr);
    let server =
        ThreadedMetricsServer::start(Registry::new(), loopback().service_discovery(consul))
            .expect("starts");
    assert_eq!(
        json!(server.is_registered()),
        python["accepted"]["is_registered"]
    );
    assert!(server.is_registered());
    let accepted_port = server.local_addr().port();
    server.close().expect("closes");
    let python_accepted_port = python["accepted"]["port"].as_u64().expect("a port") as u16;
    let mvx_registration = registration(&accepting[1], accepted_port);
    assert_eq!(
        mvx_registration,
        registration(&accepting[0], python_accepted_port)
    );
    assert_eq!(
        mvx_registration["Check"],
        json!({"HTTP": "http://127.0.0.1:{port}/", "Interval": "10s"})
    );
    let paths = |agent: &FakeAgent| -> Vec<(String, String)> {
        agent
            .received()
            .into_iter()
            .map(|received| (received.method, received.path))
            .collect()
    };
    assert_eq!(paths(&accepting[1]), paths(&accepting[0]));
    assert_eq!(
        paths(&accepting[1]),
        [
            ("PUT".to_owned(), "/v1/agent/service/register".to_owned()),
            (
                "PUT".to_owned(),
                "/v1/agent/service/deregister/app-metrics".to_owned()
            ),
        ]
    );
}
