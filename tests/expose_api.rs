//! The list of metrics over real sockets: `GET /api/metrics?…` answers the selection as
//! JSON, refuses bad queries with `400` and a JSON reason, answers `HEAD`, refuses other
//! methods, and lives at a configurable path (or none).
#![cfg(not(loom))]

#[path = "support/http_client.rs"]
mod http_client;
#[path = "support/watchdog.rs"]
mod watchdog;

use std::net::SocketAddr;

use http_client::{get, request};
use mvx::expose::http::{DEFAULT_API_PATH, ServerConfig, ThreadedMetricsServer};
use mvx::metrics::{Metadata, Registry};
use serde_json::{Value, json};

fn loopback() -> SocketAddr {
    "127.0.0.1:0".parse().expect("address")
}

fn registry() -> Registry {
    let registry = Registry::new();
    registry
        .counter_with(
            "http.requests",
            Metadata::new()
                .unit("requests")
                .description("requests served"),
        )
        .expect("counter")
        .inc();
    registry
        .gauge_with("http.in_flight", Metadata::new().hidden(true))
        .expect("gauge");
    registry
        .histogram_with(
            "http.seconds",
            [0.1, 1.0],
            Metadata::new().unit("s").historic(true),
        )
        .expect("histogram");
    registry
        .gauge_with(
            "queue depth+1",
            Metadata::new()
                .hidden(false)
                .field("owner", "ops")
                .expect("field"),
        )
        .expect("gauge");
    registry
}

fn start(config: ServerConfig) -> ThreadedMetricsServer {
    ThreadedMetricsServer::start(registry(), config).expect("server starts")
}

/// `GET path`: the status, the content type and the body as JSON.
fn get_json(addr: SocketAddr, path: &str) -> (u16, String, Value) {
    let answer = get(addr, path).expect(path);
    let content_type = answer
        .headers
        .get("content-type")
        .and_then(|value| value.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let body = serde_json::from_str(&answer.body)
        .unwrap_or_else(|error| panic!("{path}: not JSON ({error}): {:?}", answer.body));
    (answer.status, content_type, body)
}

#[test]
fn good_queries_get_the_selection_as_json() {
    let server = start(ServerConfig::new(loopback()));
    let addr = server.local_addr();
    assert_eq!(
        server.api_url(),
        Some(format!("http://{addr}{DEFAULT_API_PATH}").as_str())
    );
    let everything = json!({
        "http.in_flight": {"hidden": true},
        "http.requests": {"unit": "requests", "description": "requests served"},
        "http.seconds": {"unit": "s", "historic": true},
        "queue depth+1": {"hidden": false, "owner": "ops"},
    });
    let cases: Vec<(&str, Value)> = vec![
        ("/api/metrics", everything.clone()),
        ("/api/metrics?", everything),
        (
            "/api/metrics?selector=seconds",
            json!({"http.seconds": {"unit": "s", "historic": true}}),
        ),
        // `^http\.(r|s)`, percent-encoded.
        (
            "/api/metrics?selector=%5Ehttp%5C.%28r%7Cs%29&metadata=false",
            json!({"http.requests": {}, "http.seconds": {}}),
        ),
        // `+` is a space; `%2B` a plus.
        (
            "/api/metrics?name=queue+depth%2B1&name=http.requests&name=nothing&metadata=false",
            json!({"http.requests": {}, "queue depth+1": {}}),
        ),
        (
            "/api/metrics?infix=in&metadata=false",
            json!({"http.in_flight": {}}),
        ),
        // As in metricq, a flag set to false selects only metrics that store it.
        (
            "/api/metrics?hidden=false&metadata=false",
            json!({"queue depth+1": {}}),
        ),
        (
            "/api/metrics?hidden=true",
            json!({"http.in_flight": {"hidden": true}}),
        ),
        (
            "/api/metrics?historic=true&metadata=true",
            json!({"http.seconds": {"unit": "s", "historic": true}}),
        ),
        (
            "/api/metrics?limit=2&metadata=false",
            json!({"http.in_flight": {}, "http.requests": {}}),
        ),
        ("/api/metrics?limit=0", json!({})),
        ("/api/metrics?selector=%5E%24", json!({})),
    ];
    for (path, expected) in cases {
        let (status, content_type, body) = get_json(addr, path);
        assert_eq!(status, 200, "{path}: {body}");
        assert_eq!(content_type, "application/json", "{path}");
        assert_eq!(body, expected, "{path}");
    }
    server.close().expect("closes");
}

#[test]
fn bad_queries_get_400_with_a_json_error_and_reason() {
    let server = start(ServerConfig::new(loopback()));
    let addr = server.local_addr();
    let cases = [
        (
            "selector=(",
            "INVALID_REGEX",
            "invalid regular expression \"(\"",
        ),
        (
            "selector=%5B",
            "INVALID_REGEX",
            "invalid regular expression \"[\"",
        ),
        ("limit=ten", "INVALID_ARGUMENT", "invalid limit \"ten\""),
        ("limit=-1", "INVALID_ARGUMENT", "invalid limit \"-1\""),
        ("limit=", "INVALID_ARGUMENT", "invalid limit \"\""),
        (
            "hidden=yes",
            "INVALID_ARGUMENT",
            "invalid value \"yes\" for hidden",
        ),
        (
            "historic=1",
            "INVALID_ARGUMENT",
            "invalid value \"1\" for historic",
        ),
        (
            "metadata=FALSE",
            "INVALID_ARGUMENT",
            "invalid value \"FALSE\" for metadata",
        ),
        (
            "color=blue",
            "INVALID_ARGUMENT",
            "unknown parameter \"color\"",
        ),
        (
            "limit=1&limit=2",
            "INVALID_ARGUMENT",
            "parameter \"limit\" is given more than once",
        ),
        (
            "selector=a&name=b",
            "INVALID_ARGUMENT",
            "selector and name cannot be combined",
        ),
        ("name=", "INVALID_ARGUMENT", "empty name"),
    ];
    for (query, reason, error) in cases {
        let path = format!("/api/metrics?{query}");
        let (status, content_type, body) = get_json(addr, &path);
        assert_eq!(status, 400, "{path}: {body}");
        assert_eq!(content_type, "application/json", "{path}");
        assert_eq!(body["reason"], reason, "{path}: {body}");
        let message = body["error"].as_str().expect("an error message");
        assert!(message.starts_with(error), "{path}: {message}");
        assert_eq!(
            body.as_object().expect("an object").len(),
            2,
            "error and reason only: {body}"
        );
    }
    // The server goes on answering.
    assert_eq!(get_json(addr, "/api/metrics?limit=1").0, 200);
    server.close().expect("closes");
}

#[test]
fn head_answers_headers_only_and_other_methods_get_405() {
    let server = start(ServerConfig::new(loopback()));
    let addr = server.local_addr();
    let path = "/api/metrics?prefix=http.";
    let body = get(addr, path).expect("GET").body;
    let head = futures::executor::block_on(request(addr, "HEAD", path, None)).expect("HEAD");
    assert_eq!(head.status, 200);
    assert_eq!(head.body, "");
    assert_eq!(head.headers["content-type"], "application/json");
    assert_eq!(head.headers["content-length"], body.len().to_string());
    let bad = futures::executor::block_on(request(addr, "HEAD", "/api/metrics?limit=x", None))
        .expect("HEAD");
    assert_eq!((bad.status, bad.body.as_str()), (400, ""));
    for method in ["POST", "PUT", "DELETE", "PATCH", "OPTIONS"] {
        let answer =
            futures::executor::block_on(request(addr, method, "/api/metrics", None)).expect(method);
        assert_eq!(answer.status, 405, "{method}");
        assert_eq!(answer.headers["allow"], "GET, HEAD", "{method}");
    }
    server.close().expect("closes");
}

#[test]
fn the_api_path_is_configurable_and_can_be_left_out() {
    let server = start(ServerConfig::new(loopback()).api_path("internal/list"));
    let addr = server.local_addr();
    assert_eq!(
        server.api_url(),
        Some(format!("http://{addr}/internal/list").as_str())
    );
    let (status, _, body) = get_json(addr, "/internal/list?name=http.requests&metadata=false");
    assert_eq!((status, body), (200, json!({"http.requests": {}})));
    assert_eq!(get(addr, "/api/metrics").expect("GET").status, 404);
    assert_eq!(get(addr, "/metrics").expect("scrape").status, 200);
    server.close().expect("closes");

    let config = ServerConfig::new(loopback()).without_api();
    assert_eq!(config.get_api_path(), None);
    let server = start(config);
    assert_eq!(server.api_url(), None);
    assert_eq!(
        get(server.local_addr(), "/api/metrics")
            .expect("GET")
            .status,
        404
    );
    server.close().expect("closes");
}

#[test]
fn the_scrape_uses_the_descriptions_as_help() {
    let server = start(ServerConfig::new(loopback()));
    let body = get(server.local_addr(), "/metrics").expect("scrape").body;
    assert!(
        body.contains("# HELP http_requests_total requests served\n"),
        "{body}"
    );
    assert!(
        body.contains("# HELP http_seconds http.seconds\n"),
        "{body}"
    );
    server.close().expect("closes");
}

#[test]
fn a_labeled_metric_is_listed_once_under_its_name_with_its_metadata() {
    let registry = Registry::new();
    for code in ["200", "500"] {
        registry
            .counter_with_labels("http.requests", &[("code", code)])
            .expect("series")
            .inc();
    }
    registry
        .describe(
            "http.requests",
            Metadata::new()
                .unit("requests")
                .description("requests served"),
        )
        .expect("described");
    registry
        .histogram_with_labels("rpc.seconds", &[("method", "get")], [0.1])
        .expect("series");
    registry.gauge("queue.depth").expect("gauge");
    let server = ThreadedMetricsServer::start(registry.clone(), ServerConfig::new(loopback()))
        .expect("server starts");
    let addr = server.local_addr();
    let requests = json!({"unit": "requests", "description": "requests served"});
    let cases: Vec<(&str, Value)> = vec![
        (
            "/api/metrics",
            json!({"http.requests": requests, "queue.depth": {}, "rpc.seconds": {}}),
        ),
        (
            "/api/metrics?name=http.requests",
            json!({"http.requests": requests}),
        ),
        (
            "/api/metrics?prefix=http&metadata=false",
            json!({"http.requests": {}}),
        ),
        ("/api/metrics?limit=1", json!({"http.requests": requests})),
        // A series key is not a metric's name.
        (
            "/api/metrics?name=http.requests%7Bcode%3D%22200%22%7D",
            json!({}),
        ),
    ];
    for (path, expected) in cases {
        let (status, _, body) = get_json(addr, path);
        assert_eq!(status, 200, "{path}: {body}");
        assert_eq!(body, expected, "{path}");
    }
    server.close().expect("closes");
}

/// The JSON object comes in metricq's name order (letters without their case, lower case
/// first between names that differ only in case), and `limit` keeps the first names in
/// that order, not in byte order (where every upper-case name comes first).
#[test]
fn the_list_comes_in_metricq_s_name_order() {
    let registry = Registry::new();
    for name in ["b.x", "B.x", "a.x", "C.x", "A.x"] {
        registry.counter(name).expect("counter");
    }
    let server = ThreadedMetricsServer::start(registry, ServerConfig::new(loopback()))
        .expect("server starts");
    let addr = server.local_addr();
    let all = get(addr, "/api/metrics?metadata=false").expect("GET");
    assert_eq!(
        all.body,
        r#"{"a.x":{},"A.x":{},"b.x":{},"B.x":{},"C.x":{}}"#
    );
    let first = get(addr, "/api/metrics?metadata=false&limit=3").expect("GET");
    assert_eq!(first.body, r#"{"a.x":{},"A.x":{},"b.x":{}}"#);
    server.close().expect("closes");
}
