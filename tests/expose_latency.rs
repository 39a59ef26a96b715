//! `LatencyHistogram` exposed as a Prometheus summary — `quantile` samples with the label
//! values written as the official clients write them, `_sum` and `_count` in seconds, and
//! in OpenMetrics `_created` — in both text formats; held against `promtool check metrics`,
//! both official Python parsers, and the same summary written by the official Python
//! client; listed with its metadata at `/api/metrics` (feature `http`).
#![cfg(not(loom))]

#[path = "support/prometheus_tools.rs"]
mod prometheus_tools;

use std::collections::BTreeMap;
use std::time::Duration;

use mvx::expose::{Format, TextEncoder};
use mvx::metrics::{LatencyConfig, Metadata, Registry};
use prometheus_tools::{ParsedFamily, parse, promtool_check, python};

/// A latency histogram with records, a labeled one whose labels include `quantile`, and an
/// empty one.
fn registry() -> Registry {
    let registry = Registry::new();
    let config = LatencyConfig::default();
    let rpc = registry
        .latency_histogram_with(
            "rpc.latency.seconds",
            config.clone(),
            Metadata::new()
                .unit("seconds")
                .description("time to answer"),
        )
        .expect("created");
    for micros in [100, 200, 300, 400, 10_000] {
        rpc.record(Duration::from_micros(micros));
    }
    registry
        .latency_histogram_with_labels(
            "disk.latency",
            &[("disk", "a"), ("quantile", "hostile")],
            config.clone().quantiles([0.5, 0.999]),
        )
        .expect("created")
        .record(Duration::from_millis(1));
    registry
        .latency_histogram("idle.latency", config)
        .expect("created");
    registry
}

/// The samples of both texts, without the `_created` ones.
const PROMETHEUS_SAMPLES: &str = "\
disk_latency{disk=\"a\",label_quantile=\"hostile\",quantile=\"0.5\"} 0.001003519
disk_latency{disk=\"a\",label_quantile=\"hostile\",quantile=\"0.999\"} 0.001003519
disk_latency_sum{disk=\"a\",label_quantile=\"hostile\"} 0.001
disk_latency_count{disk=\"a\",label_quantile=\"hostile\"} 1
";

#[test]
fn summaries_are_written_in_the_prometheus_format() {
    let text = TextEncoder::new()
        .encode_registry(&registry(), Format::Prometheus)
        .text;
    assert_eq!(
        text,
        format!(
            "# HELP disk_latency disk.latency\n\
             # TYPE disk_latency summary\n\
             {PROMETHEUS_SAMPLES}\
             # HELP idle_latency idle.latency\n\
             # TYPE idle_latency summary\n\
             idle_latency_sum 0.0\n\
             idle_latency_count 0\n\
             # HELP rpc_latency_seconds time to answer\n\
             # TYPE rpc_latency_seconds summary\n\
             rpc_latency_seconds{{quantile=\"0.5\"}} 0.000301055\n\
             rpc_latency_seconds{{quantile=\"0.9\"}} 0.010027007\n\
             rpc_latency_seconds{{quantile=\"0.99\"}} 0.010027007\n\
             rpc_latency_seconds{{quantile=\"0.999\"}} 0.010027007\n\
             rpc_latency_seconds{{quantile=\"1.0\"}} 0.010027007\n\
             rpc_latency_seconds_sum 0.011\n\
             rpc_latency_seconds_count 5\n"
        )
    );
    let (passed, report) = promtool_check(&text);
    assert!(passed, "promtool found problems:\n{report}\nin:\n{text}");
    assert_eq!(report.trim(), "", "{report}");
    parse(&text, "prometheus").unwrap_or_else(|error| panic!("refused:\n{error}\n{text}"));
}

#[test]
fn summaries_are_written_in_openmetrics_with_their_creation_time() {
    let registry = registry();
    let text = TextEncoder::new()
        .created(false)
        .encode_registry(&registry, Format::OpenMetrics)
        .text;
    assert_eq!(
        text,
        format!(
            "# HELP disk_latency disk.latency\n\
             # TYPE disk_latency summary\n\
             {PROMETHEUS_SAMPLES}\
             # HELP idle_latency idle.latency\n\
             # TYPE idle_latency summary\n\
             idle_latency_sum 0.0\n\
             idle_latency_count 0\n\
             # HELP rpc_latency_seconds time to answer\n\
             # TYPE rpc_latency_seconds summary\n\
             # UNIT rpc_latency_seconds seconds\n\
             rpc_latency_seconds{{quantile=\"0.5\"}} 0.000301055\n\
             rpc_latency_seconds{{quantile=\"0.9\"}} 0.010027007\n\
             rpc_latency_seconds{{quantile=\"0.99\"}} 0.010027007\n\
             rpc_latency_seconds{{quantile=\"0.999\"}} 0.010027007\n\
             rpc_latency_seconds{{quantile=\"1.0\"}} 0.010027007\n\
             rpc_latency_seconds_sum 0.011\n\
             rpc_latency_seconds_count 5\n\
             # EOF\n"
        )
    );
    parse(&text, "openmetrics").unwrap_or_else(|error| panic!("refused:\n{error}\n{text}"));

    // With `_created`, after each series' `_count`: the time the histogram was made.
    let text = TextEncoder::new()
        .encode_registry(&registry, Format::OpenMetrics)
        .text;
    let families =
        parse(&text, "openmetrics").unwrap_or_else(|error| panic!("refused:\n{error}\n{text}"));
    let created: Vec<&str> = families
        .iter()
        .flat_map(|(_, samples)| samples)
        .filter(|(name, _, _)| name.ends_with("_created"))
        .map(|(name, _, _)| name.as_str())
        .collect();
    assert_eq!(
        created,
        [
            "disk_latency_created",
            "idle_latency_created",
            "rpc_latency_seconds_created"
        ]
    );
}

/// The same summaries in the official client, as a custom collector (its `Summary` has no
/// quantiles), with `floatToGoString` for the quantile label values as its own writers
/// use it; prints the text of `sys.argv[1]`'s format.
const PYTHON_SUMMARIES: &str = r#"
import sys
from prometheus_client import CollectorRegistry
from prometheus_client.exposition import generate_latest
from prometheus_client.metrics_core import Metric
from prometheus_client.openmetrics.exposition import generate_latest as generate_openmetrics
from prometheus_client.utils import floatToGoString

class Summaries:
    def collect(self):
        disk = Metric("disk_latency", "disk.latency", "summary")
        labels = {"disk": "a", "label_quantile": "hostile"}
        for q in [0.5, 0.999]:
            disk.add_sample("disk_latency", dict(labels, quantile=floatToGoString(q)), 0.001003519)
        disk.add_sample("disk_latency_sum", labels, 0.001)
        disk.add_sample("disk_latency_count", labels, 1)
        idle = Metric("idle_latency", "idle.latency", "summary")
        idle.add_sample("idle_latency_sum", {}, 0.0)
        idle.add_sample("idle_latency_count", {}, 0)
        rpc = Metric("rpc_latency_seconds", "time to answer", "summary", unit="seconds")
        for q, value in [(0.5, 0.000301055), (0.9, 0.010027007), (0.99, 0.010027007),
                         (0.999, 0.010027007), (1.0, 0.010027007)]:
            rpc.add_sample("rpc_latency_seconds", {"quantile": floatToGoString(q)}, value)
        rpc.add_sample("rpc_latency_seconds_sum", {}, 0.011)
        rpc.add_sample("rpc_latency_seconds_count", {}, 5)
        return [disk, idle, rpc]

registry = CollectorRegistry()
registry.register(Summaries())
generate = generate_openmetrics if sys.argv[1] == "openmetrics" else generate_latest
sys.stdout.write(generate(registry).decode())
"#;

/// `families` with every value read as a number (the official client writes counts as
/// `1.0`, mvx as `1`).
fn numeric(families: Vec<ParsedFamily>) -> Vec<ParsedFamily> {
    families
        .into_iter()
        .map(|(family, samples)| {
            let samples = samples
                .into_iter()
                .map(
                    |(name, labels, value): (String, BTreeMap<String, String>, String)| {
                        let value: f64 = value.parse().expect("a number");
                        (name, labels, value.to_string())
                    },
                )
                .collect();
            (family, samples)
        })
        .collect()
}

#[test]
fn the_official_client_writes_the_same_summaries() {
    let registry = registry();
    for (format, parser) in [
        (Format::Prometheus, "prometheus"),
        (Format::OpenMetrics, "openmetrics"),
    ] {
        let ours = TextEncoder::new()
            .created(false)
            .encode_registry(&registry, format)
            .text;
        let theirs = python(PYTHON_SUMMARIES, &[parser], "");
        let ours = numeric(parse(&ours, parser).expect("mvx's text parses"));
        let theirs = numeric(parse(&theirs, parser).expect("the client's text parses"));
        assert_eq!(ours, theirs, "{parser}");
    }
}

#[cfg(feature = "http")]
#[test]
fn the_metrics_api_lists_latency_histograms_with_their_accuracy() {
    use http_body_util::BodyExt;
    use mvx::expose::http::get_metrics_response;

    let registry = registry();
    let request = hyper::Request::get("/api/metrics?selector=latency")
        .body(())
        .expect("request");
    let response = get_metrics_response(&registry, &request);
    assert_eq!(response.status(), 200);
    let body = futures::executor::block_on(response.into_body().collect())
        .expect("a full body")
        .to_bytes();
    let listed: serde_json::Value = serde_json::from_slice(&body).expect("JSON");
    let own = serde_json::json!({
        "unit": "seconds",
        "relative_error": 0.01,
        "lowest_seconds": 1e-9,
        "highest_seconds": 3600.0,
    });
    assert_eq!(
        listed,
        serde_json::json!({
            "disk.latency": own,
            "idle.latency": own,
            "rpc.latency.seconds": {"unit": "seconds", "description": "time to answer"},
        })
    );
}
