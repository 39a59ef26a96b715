//! The served text, read by real Prometheus tooling: the official Python client's parsers
//! (`prometheus_client`, which also fetches the page with Python's own HTTP client) and
//! `promtool check metrics`. `.ci/run` installs both; a missing tool fails these tests with
//! the command that installs it.
#![cfg(not(loom))]

#[path = "support/http_client.rs"]
mod http_client;
#[path = "support/prometheus_tools.rs"]
mod prometheus_tools;
#[path = "support/watchdog.rs"]
mod watchdog;

use prometheus_tools::promtool_check;
use std::process::Command;

use mvx::expose::TextEncoder;
use mvx::expose::http::{ServerConfig, ThreadedMetricsServer};
use mvx::metrics::{Metadata, Metric, MetricEvent, MetricKind, MetricsRuntime, Registry, Snapshot};
use mvx::queue::LogOutcome;

/// A served job, recorded by a recorder.
struct Job {
    failed: bool,
}

impl MetricEvent for Job {
    fn event_type(&self) -> &str {
        "job"
    }
}

#[derive(Default)]
struct Jobs {
    done: u64,
    failed: u64,
}

impl Metric<Job> for Jobs {
    fn name(&self) -> &str {
        "worker.jobs"
    }

    fn handle_event(&mut self, job: &Job) -> bool {
        self.done += 1;
        self.failed += u64::from(job.failed);
        true
    }

    fn snapshot(&self) -> Snapshot {
        Snapshot::new(self.name(), MetricKind::Counter)
            .with("done_total", self.done)
            .with("failed_total", self.failed)
    }

    fn metadata(&self) -> Metadata {
        Metadata::new().description(JOBS_HELP)
    }
}

/// The description of the recorder's metric: HELP of each of its families, with the
/// dimension after it.
const JOBS_HELP: &str = "jobs the worker ran";

/// The description of the gauge, with every character HELP escapes.
const QUEUE_HELP: &str = "items waiting in the \"spool\" queue, C:\\spool\nsecond line";

/// A server exposing instruments and a recorder; the runtime must outlive the scrapes.
fn serve() -> (ThreadedMetricsServer, MetricsRuntime) {
    let registry = Registry::new();
    registry
        .counter("http.requests")
        .expect("counter")
        .inc_by(42);
    registry
        .gauge_with("queue.depth", Metadata::new().description(QUEUE_HELP))
        .expect("gauge")
        .set(-1.5);
    let latency = registry
        .histogram("http.request.seconds", [0.005, 0.05, 0.5, 5.0])
        .expect("histogram");
    for value in [0.001, 0.01, 0.2, 0.3, 7.0] {
        latency.observe(value);
    }
    // Labeled series, as the `metrics` facade creates them.
    for (code, count) in [("200", 5), ("500", 1)] {
        registry
            .counter_with_labels("http.requests.by_code", &[("code", code)])
            .expect("labeled counter")
            .inc_by(count);
    }
    registry
        .histogram_with_labels("rpc.seconds", &[("method", "get"), ("le", "x")], [0.1, 1.0])
        .expect("labeled histogram")
        .observe(0.5);
    let runtime = MetricsRuntime::new().expect("runtime");
    let recorder = runtime.create_recorder::<Job>("worker").expect("recorder");
    recorder.register_metric(Jobs::default()).expect("metric");
    for i in 0..10 {
        let accepted = recorder.register_event(Job { failed: i % 5 == 0 });
        assert_eq!(accepted.ok(), Some(LogOutcome::Accepted));
    }
    futures::executor::block_on(recorder.snapshot_now()).expect("applied");
    registry
        .register_source("worker", std::sync::Arc::new(recorder))
        .expect("source");
    let encoder = TextEncoder::new()
        .label("service", "a \"quoted\" \\ name\nwith a line feed")
        .expect("label");
    let config = ServerConfig::new("127.0.0.1:0".parse().expect("address")).encoder(encoder);
    let server = ThreadedMetricsServer::start(registry, config).expect("server starts");
    (server, runtime)
}

const SERVICE: &str = "a \"quoted\" \\ name\nwith a line feed";

/// Runs `python3 -c script url`; its standard output.
fn python(script: &str, url: &str) -> String {
    let output = Command::new("python3")
        .args(["-c", script, url])
        .output()
        .unwrap_or_else(|error| {
            panic!(
                "python3 is required for this test and could not be run ({error}); \
                 install it and then `python3 -m pip install prometheus_client` (.ci/run does)"
            )
        });
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        !stderr.contains("No module named 'prometheus_client'"),
        "the Python package prometheus_client is required for this test: \
         run `python3 -m pip install prometheus_client` (.ci/run does)"
    );
    assert!(output.status.success(), "python3 failed: {stderr}");
    String::from_utf8(output.stdout).expect("UTF-8 output")
}

/// Fetches the URL with urllib (with an `Accept` header) and prints every sample the
/// parser finds as one JSON list per line: family, type, sample name, labels, value.
const PARSE: &str = r#"
import json, sys, urllib.request
accept, parser = sys.argv[2], sys.argv[3]
request = urllib.request.Request(sys.argv[1], headers={"Accept": accept})
with urllib.request.urlopen(request, timeout=30) as response:
    content_type = response.headers["Content-Type"]
    text = response.read().decode("utf-8")
if parser == "openmetrics":
    from prometheus_client.openmetrics.parser import text_string_to_metric_families
else:
    from prometheus_client.parser import text_string_to_metric_families
print(json.dumps(content_type))
for family in text_string_to_metric_families(text):
    for sample in family.samples:
        print(json.dumps([family.name, family.type, family.documentation, sample.name, sample.labels, sample.value]))
"#;

/// The parsed samples: `(family, type, help, sample, labels, value)`.
type Parsed = Vec<(
    String,
    String,
    String,
    String,
    std::collections::BTreeMap<String, String>,
    f64,
)>;

fn parse_with_python(url: &str, accept: &str, parser: &str) -> (String, Parsed) {
    let script = format!(
        "import sys\nsys.argv = [sys.argv[0], sys.argv[1], {accept:?}, {parser:?}]\n{PARSE}"
    );
    let output = python(&script, url);
    let mut lines = output.lines();
    let content_type: String =
        serde_json::from_str(lines.next().expect("content type")).expect("JSON");
    let samples = lines
        .map(|line| serde_json::from_str(line).expect("a JSON sample"))
        .collect();
    (content_type, samples)
}

fn sample<'a>(
    parsed: &'a Parsed,
    name: &str,
    le: Option<&str>,
) -> &'a (
    String,
    String,
    String,
    String,
    std::collections::BTreeMap<String, String>,
    f64,
) {
    parsed
        .iter()
        .find(|(_, _, _, sample, labels, _)| {
            sample == name && labels.get("le").map(String::as_str) == le
        })
        .unwrap_or_else(|| panic!("no sample {name} (le {le:?}) in {parsed:#?}"))
}

#[test]
fn the_official_python_parser_reads_names_types_and_values() {
    let (server, runtime) = serve();
    let (content_type, parsed) =
        parse_with_python(server.metrics_url(), "text/plain", "prometheus");
    assert_eq!(content_type, "text/plain; version=0.0.4; charset=utf-8");

    // The Python parser strips `_total` from counter family names, as Prometheus does.
    let expected = [
        (
            "http_requests",
            "counter",
            "http_requests_total",
            None,
            42.0,
        ),
        ("queue_depth", "gauge", "queue_depth", None, -1.5),
        (
            "worker_jobs_done",
            "counter",
            "worker_jobs_done_total",
            None,
            10.0,
        ),
        (
            "worker_jobs_failed",
            "counter",
            "worker_jobs_failed_total",
            None,
            2.0,
        ),
        (
            "http_request_seconds",
            "histogram",
            "http_request_seconds_bucket",
            Some("0.005"),
            1.0,
        ),
        (
            "http_request_seconds",
            "histogram",
            "http_request_seconds_bucket",
            Some("0.05"),
            2.0,
        ),
        (
            "http_request_seconds",
            "histogram",
            "http_request_seconds_bucket",
            Some("0.5"),
            4.0,
        ),
        (
            "http_request_seconds",
            "histogram",
            "http_request_seconds_bucket",
            Some("5.0"),
            4.0,
        ),
        (
            "http_request_seconds",
            "histogram",
            "http_request_seconds_bucket",
            Some("+Inf"),
            5.0,
        ),
        (
            "http_request_seconds",
            "histogram",
            "http_request_seconds_count",
            None,
            5.0,
        ),
    ];
    for (family, kind, name, le, value) in expected {
        let found = sample(&parsed, name, le);
        assert_eq!(
            (found.0.as_str(), found.1.as_str()),
            (family, kind),
            "{name}"
        );
        assert_eq!(found.5, value, "{name} {le:?}");
        assert_eq!(found.4["service"], SERVICE, "the label value round-trips");
    }
    let sum = sample(&parsed, "http_request_seconds_sum", None).5;
    assert!((sum - 7.511).abs() < 1e-9, "{sum}");
    assert_eq!(
        sample(&parsed, "http_requests_total", None).2,
        "http.requests"
    );
    // Labeled series: each sample has its own labels beside the encoder's.
    for (code, value) in [("200", 5.0), ("500", 1.0)] {
        let found = parsed
            .iter()
            .find(|(_, _, _, name, labels, _)| {
                name == "http_requests_by_code_total"
                    && labels.get("code").map(String::as_str) == Some(code)
            })
            .unwrap_or_else(|| panic!("no series code={code} in {parsed:#?}"));
        assert_eq!(
            (found.0.as_str(), found.1.as_str(), found.5),
            ("http_requests_by_code", "counter", value)
        );
        assert_eq!(found.4["service"], SERVICE);
    }
    let rpc = sample(&parsed, "rpc_seconds_bucket", Some("1.0"));
    assert_eq!(rpc.5, 1.0);
    assert_eq!(
        (rpc.4["method"].as_str(), rpc.4["label_le"].as_str()),
        ("get", "x")
    );
    assert_eq!(parsed.len(), 4 + 7 + 2 + 5);

    server.close().expect("closes");
    runtime.shutdown().expect("runtime stops");
}

#[test]
fn help_carries_the_description_escaped_in_both_formats() {
    let (server, runtime) = serve();
    let cases = [
        ("text/plain", "prometheus"),
        ("application/openmetrics-text;version=1.0.0", "openmetrics"),
    ];
    for (accept, parser) in cases {
        let (_, parsed) = parse_with_python(server.metrics_url(), accept, parser);
        // The parser unescapes HELP: the description comes back as it was given.
        assert_eq!(
            sample(&parsed, "queue_depth", None).2,
            QUEUE_HELP,
            "{parser}"
        );
        assert_eq!(
            sample(&parsed, "worker_jobs_done_total", None).2,
            format!("{JOBS_HELP} (done_total)"),
            "{parser}"
        );
        assert_eq!(
            sample(&parsed, "worker_jobs_failed_total", None).2,
            format!("{JOBS_HELP} (failed_total)"),
            "{parser}"
        );
        // Without a description, HELP is the mvx name.
        assert_eq!(
            sample(&parsed, "http_requests_total", None).2,
            "http.requests",
            "{parser}"
        );
    }
    // On the wire, escaped.
    let text = http_client::get(server.local_addr(), "/metrics")
        .expect("scrape")
        .body;
    assert!(
        text.contains(
            "# HELP queue_depth items waiting in the \"spool\" queue, C:\\\\spool\\nsecond line\n"
        ),
        "{text}"
    );
    server.close().expect("closes");
    runtime.shutdown().expect("runtime stops");
}

#[test]
fn the_official_openmetrics_parser_reads_the_negotiated_openmetrics_text() {
    let (server, runtime) = serve();
    let (content_type, parsed) = parse_with_python(
        server.metrics_url(),
        "application/openmetrics-text;version=1.0.0;q=0.5,text/plain;version=0.0.4;q=0.3",
        "openmetrics",
    );
    assert_eq!(
        content_type,
        "application/openmetrics-text; version=1.0.0; charset=utf-8"
    );
    let requests = sample(&parsed, "http_requests_total", None);
    assert_eq!(
        (requests.0.as_str(), requests.1.as_str(), requests.5),
        ("http_requests", "counter", 42.0)
    );
    let inf = sample(&parsed, "http_request_seconds_bucket", Some("+Inf"));
    assert_eq!((inf.1.as_str(), inf.5), ("histogram", 5.0));
    assert_eq!(sample(&parsed, "queue_depth", None).5, -1.5);
    assert_eq!(sample(&parsed, "worker_jobs_failed_total", None).5, 2.0);
    assert_eq!(inf.4["service"], SERVICE);
    server.close().expect("closes");
    runtime.shutdown().expect("runtime stops");
}

#[test]
fn promtool_check_metrics_accepts_the_served_text() {
    let (server, runtime) = serve();
    let answer = http_client::get(server.local_addr(), "/metrics").expect("scrape");
    assert_eq!(answer.status, 200);
    let (passed, report) = promtool_check(&answer.body);
    assert!(
        passed,
        "promtool found problems:\n{report}\nin:\n{}",
        answer.body
    );
    assert_eq!(report.trim(), "", "{report}");

    // promtool does find problems when there are some: a counter without `_total` and a
    // family without HELP.
    let (passed, report) = promtool_check("# TYPE jobs counter\njobs 1\n");
    assert!(!passed);
    assert!(
        report.contains("counter metrics should have \"_total\" suffix"),
        "{report}"
    );

    server.close().expect("closes");
    runtime.shutdown().expect("runtime stops");
}
