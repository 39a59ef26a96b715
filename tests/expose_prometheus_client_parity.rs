//! What the official client writes, mvx writes: one set of metrics registered in mvx and,
//! the same, in the official Python client (`prometheus_client`), each exposed, both texts
//! read back by the official parsers and compared family by family and sample by sample —
//! names, types, OpenMetrics `UNIT`s, HELP, labels (`le` values to the character) and
//! values; the `_created` samples both clients write by default (and neither with the
//! switch off) hold each client's own creation times.
//!
//! The documented differences are held here too: mvx writes integers as integers
//! (`3`, where Python writes `3.0`; compared as numbers), writes no `_created` gauges in
//! the Prometheus 0.0.4 format, and does not rename a metric whose name does not end with
//! its unit (Python appends the unit): it leaves the `UNIT` line out.
#![cfg(not(loom))]

#[path = "support/prometheus_tools.rs"]
mod prometheus_tools;

use std::collections::BTreeMap;
use std::time::{SystemTime, UNIX_EPOCH};

use mvx::expose::{Format, TextEncoder};
use mvx::metrics::{Histogram, Metadata, Registry};
use prometheus_tools::{ParsedFamily, parse, python};

/// Bucket bounds of the labeled histogram: Python writes `1e-07`, `1e+06`.
const BOUNDS: [f64; 6] = [1e-7, 0.005, 0.25, 2.5, 100_000.0, 1e6];

/// Observations of both histograms.
const OBSERVED: [f64; 5] = [0.2, 0.3, 7.0, 2_000_000.0, 1e-8];

/// The same metrics in the official client; prints the creation window and its texts as
/// one JSON object.
const PYTHON_REGISTRY: &str = r#"
import json, sys, time
import prometheus_client
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.exposition import generate_latest
from prometheus_client.openmetrics.exposition import generate_latest as generate_openmetrics
bounds = json.loads(sys.argv[1])
observed = json.loads(sys.argv[2])
default_buckets = json.loads(sys.argv[3])

def build():
    registry = CollectorRegistry()
    requests = Counter("http_requests", "requests served", ["code"], unit="requests", registry=registry)
    requests.labels(code="200").inc(3)
    requests.labels(code="500").inc(1)
    seconds = Histogram("http_request_seconds", "time to answer", ["method"], unit="seconds",
                        buckets=bounds, registry=registry)
    latency = Histogram("rpc_latency", "rpc latency", buckets=default_buckets, registry=registry)
    for value in observed:
        seconds.labels(method="get").observe(value)
        latency.observe(value)
    Gauge("queue_depth", "items waiting", registry=registry).set(-1.5)
    Counter("jobs", "jobs run", registry=registry).inc(2)
    return registry

start = time.time()
registry = build()
end = time.time()
texts = {
    "start": start,
    "end": end,
    "openmetrics": generate_openmetrics(registry).decode(),
    "prometheus": generate_latest(registry).decode(),
}
# A switch of the whole process, read when the metrics are collected.
prometheus_client.disable_created_metrics()
texts["openmetrics_without_created"] = generate_openmetrics(build()).decode()
print(json.dumps(texts))
"#;

fn unix_now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("after 1970")
        .as_secs_f64()
}

/// The same metrics in mvx, and the window in which they were created.
fn mvx_registry() -> (Registry, f64, f64) {
    let start = unix_now();
    let registry = Registry::new();
    let requests = |code| {
        registry
            .counter_with_labels("http.requests", &[("code", code)])
            .expect("counter")
    };
    requests("200").inc_by(3);
    requests("500").inc();
    registry
        .describe(
            "http.requests",
            Metadata::new()
                .description("requests served")
                .unit("requests"),
        )
        .expect("described");
    let seconds = registry
        .histogram_with_labels("http.request.seconds", &[("method", "get")], BOUNDS)
        .expect("histogram");
    registry
        .describe(
            "http.request.seconds",
            Metadata::new()
                .description("time to answer")
                .unit("seconds"),
        )
        .expect("described");
    let latency = registry
        .histogram_with(
            "rpc.latency",
            Histogram::DEFAULT_BUCKETS.iter().copied(),
            Metadata::new().description("rpc latency"),
        )
        .expect("histogram");
    for value in OBSERVED {
        seconds.observe(value);
        latency.observe(value);
    }
    registry
        .gauge_with("queue.depth", Metadata::new().description("items waiting"))
        .expect("gauge")
        .set(-1.5);
    registry
        .counter_with("jobs", Metadata::new().description("jobs run"))
        .expect("counter")
        .inc_by(2);
    (registry, start, unix_now())
}

/// A family as compared: `(name, type, unit, help)` and its samples in name and label
/// order, each `(name, labels, value)`; a `_created` sample's value is checked to lie in
/// `[start, end]` and replaced by 0.
type Compared = (
    (String, String, String, String),
    Vec<(String, BTreeMap<String, String>, f64)>,
);

fn compared(families: Vec<ParsedFamily>, start: f64, end: f64) -> Vec<Compared> {
    let mut compared: Vec<Compared> = families
        .into_iter()
        .map(|(family, samples)| {
            let mut samples: Vec<(String, BTreeMap<String, String>, f64)> = samples
                .into_iter()
                .map(|(name, labels, value)| {
                    let mut value: f64 = match value.as_str() {
                        "inf" => f64::INFINITY,
                        "-inf" => f64::NEG_INFINITY,
                        other => other.parse().expect("a number"),
                    };
                    if name.ends_with("_created") {
                        // Python's clock and Rust's may round the same instant apart by
                        // less than a microsecond.
                        assert!(
                            (start - 1e-3..=end + 1e-3).contains(&value),
                            "{name} {value} not in [{start}, {end}]"
                        );
                        value = 0.0;
                    }
                    (name, labels, value)
                })
                .collect();
            samples.sort_by(|a, b| (&a.0, &a.1).cmp(&(&b.0, &b.1)));
            (family, samples)
        })
        .collect();
    compared.sort_by(|a, b| a.0.cmp(&b.0));
    compared
}

/// Python's texts and creation window.
fn python_texts() -> serde_json::Value {
    let bounds = serde_json::to_string(&BOUNDS).expect("JSON");
    let observed = serde_json::to_string(&OBSERVED).expect("JSON");
    let default_buckets = serde_json::to_string(Histogram::DEFAULT_BUCKETS).expect("JSON");
    let output = python(PYTHON_REGISTRY, &[&bounds, &observed, &default_buckets], "");
    serde_json::from_str(&output).expect("a JSON object")
}

fn parsed(text: &str, parser: &str) -> Vec<ParsedFamily> {
    parse(text, parser).unwrap_or_else(|error| panic!("{parser} parser refused:\n{error}\n{text}"))
}

#[test]
fn openmetrics_text_matches_prometheus_clients_with_units_and_created_series() {
    let python = python_texts();
    let (registry, start, end) = mvx_registry();
    let text = TextEncoder::new()
        .encode_registry(&registry, Format::OpenMetrics)
        .text;
    for unit in [
        "# UNIT http_request_seconds seconds\n",
        "# UNIT http_requests requests\n",
    ] {
        assert!(text.contains(unit), "{unit:?} not in:\n{text}");
    }
    assert!(
        text.contains("http_request_seconds_bucket{method=\"get\",le=\"1e-07\"} 1\n"),
        "{text}"
    );
    let theirs = compared(
        parsed(python["openmetrics"].as_str().expect("text"), "openmetrics"),
        python["start"].as_f64().expect("start"),
        python["end"].as_f64().expect("end"),
    );
    let ours = compared(parsed(&text, "openmetrics"), start, end);
    assert_eq!(
        ours, theirs,
        "mvx:\n{text}\nprometheus_client:\n{}",
        python["openmetrics"]
    );
    let created = ours
        .iter()
        .flat_map(|(_, samples)| samples)
        .filter(|(name, ..)| name.ends_with("_created"))
        .count();
    // Two counter series and one unlabeled counter, two histograms.
    assert_eq!(created, 5);
}

#[test]
fn without_created_series_openmetrics_text_matches_prometheus_clients_without_them() {
    let python = python_texts();
    let (registry, start, end) = mvx_registry();
    let text = TextEncoder::new()
        .created(false)
        .encode_registry(&registry, Format::OpenMetrics)
        .text;
    assert!(!text.contains("_created"), "{text}");
    let theirs = compared(
        parsed(
            python["openmetrics_without_created"]
                .as_str()
                .expect("text"),
            "openmetrics",
        ),
        0.0,
        0.0,
    );
    assert_eq!(compared(parsed(&text, "openmetrics"), start, end), theirs);
}

#[test]
fn prometheus_text_matches_prometheus_clients_but_for_its_created_gauges() {
    let python = python_texts();
    let (registry, start, end) = mvx_registry();
    let text = TextEncoder::new()
        .encode_registry(&registry, Format::Prometheus)
        .text;
    assert!(
        !text.contains("_created") && !text.contains("# UNIT"),
        "{text}"
    );
    let mut theirs = compared(
        parsed(python["prometheus"].as_str().expect("text"), "prometheus"),
        python["start"].as_f64().expect("start"),
        python["end"].as_f64().expect("end"),
    );
    // prometheus_client writes each `_created` sample of this format as a gauge family
    // of its own; mvx does not (see the `expose::text` docs).
    let before = theirs.len();
    theirs.retain(|((name, ..), _)| !name.ends_with("_created"));
    assert_eq!(
        before - theirs.len(),
        4,
        "one per metric with `_created` samples"
    );
    assert_eq!(compared(parsed(&text, "prometheus"), start, end), theirs);
}

#[test]
fn a_unit_the_name_does_not_end_with_is_left_out_rather_than_renaming_the_metric() {
    let registry = Registry::new();
    registry
        .gauge_with("temperature", Metadata::new().unit("celsius"))
        .expect("gauge")
        .set(21.5);
    registry
        .counter_with("written.bytes", Metadata::new().unit("bytes"))
        .expect("counter");
    let text = TextEncoder::new()
        .created(false)
        .encode_registry(&registry, Format::OpenMetrics)
        .text;
    assert_eq!(
        text,
        "# HELP temperature temperature\n# TYPE temperature gauge\ntemperature 21.5\n\
         # HELP written_bytes written.bytes\n# TYPE written_bytes counter\n\
         # UNIT written_bytes bytes\nwritten_bytes_total 0\n# EOF\n"
    );
    let families = parsed(&text, "openmetrics");
    let units: Vec<(&str, &str)> = families
        .iter()
        .map(|((name, _, unit, _), _)| (name.as_str(), unit.as_str()))
        .collect();
    assert_eq!(units, [("temperature", ""), ("written_bytes", "bytes")]);
}
