//! The encoder end to end: snapshots in, exposition text out.

use super::*;
use crate::metrics::{Histogram, MetricKind, Snapshot};

/// `(family, origin)` of each family `encoded` left out.
fn skipped(encoded: &Encoded) -> Vec<(&str, &str)> {
    encoded
        .skipped
        .iter()
        .map(|skipped| (skipped.family.as_str(), skipped.origin.as_str()))
        .collect()
}

fn snapshots(list: impl IntoIterator<Item = Snapshot>) -> Snapshots {
    list.into_iter()
        .map(|snapshot| (snapshot.name.clone(), snapshot))
        .collect()
}

#[test]
fn label_values_and_help_are_escaped() {
    let encoder = TextEncoder::new()
        .label("path", "C:\\dir \"quoted\"\nnext")
        .expect("valid label");
    let text = encoder
        .encode(
            &snapshots([Snapshot::new("odd\\name\n\"x\"", MetricKind::Gauge).with("value", 1u64)]),
            Format::Prometheus,
        )
        .text;
    assert_eq!(
        text,
        "# HELP odd_name__x_ odd\\\\name\\n\"x\"\n\
         # TYPE odd_name__x_ gauge\n\
         odd_name__x_{path=\"C:\\\\dir \\\"quoted\\\"\\nnext\"} 1\n"
    );
    let text = encoder
        .encode(
            &snapshots([Snapshot::new("q\"", MetricKind::Gauge).with("value", 1u64)]),
            Format::OpenMetrics,
        )
        .text;
    assert!(text.starts_with("# HELP q_ q\\\"\n"), "{text}");
}

#[test]
fn descriptions_are_the_help_text_escaped_and_origins_name_what_was_skipped() {
    let histogram = Histogram::new("latency", [1.0]).expect("valid");
    histogram.observe(0.5);
    let list = snapshots([
        Snapshot::new("a.x", MetricKind::Gauge).with("value", 1u64),
        Snapshot::new("a_x", MetricKind::Gauge).with("value", 2u64),
        Snapshot::new("jobs", MetricKind::Counter)
            .with("ok_total", 3u64)
            .with("failed_total", 1u64),
        histogram.snapshot(),
        Snapshot::new("plain", MetricKind::Gauge).with("value", 0u64),
    ]);
    let metadata: BTreeMap<String, Metadata> = [
        ("a.x", Metadata::new().description("first")),
        ("a_x", Metadata::new().description("second")),
        ("jobs", Metadata::new().description("jobs \"run\"")),
        (
            "latency",
            Metadata::new().description("C:\\dir\nnext").unit("s"),
        ),
        ("plain", Metadata::new().unit("no description")),
    ]
    .into_iter()
    .map(|(name, metadata)| (name.to_owned(), metadata))
    .collect();
    let encoded = TextEncoder::new().encode_with_metadata(&list, &metadata, Format::Prometheus);
    let help: Vec<&str> = encoded
        .text
        .lines()
        .filter(|line| line.starts_with("# HELP "))
        .collect();
    assert_eq!(
        help,
        [
            "# HELP a_x first",
            "# HELP jobs_failed_total jobs \"run\" (failed_total)",
            "# HELP jobs_ok_total jobs \"run\" (ok_total)",
            "# HELP latency C:\\\\dir\\nnext",
            "# HELP plain plain",
            "# HELP mvx_exposition_skipped_families Families left out of this exposition \
             because a name of theirs is taken by a family before them: a_x (its sample a_x \
             collides with gauge a_x).",
        ]
    );
    assert_eq!(skipped(&encoded), [("a_x", "a_x")]);

    let openmetrics =
        TextEncoder::new().encode_with_metadata(&list, &metadata, Format::OpenMetrics);
    assert!(
        openmetrics
            .text
            .contains("# HELP jobs_ok jobs \\\"run\\\" (ok_total)\n"),
        "{}",
        openmetrics.text
    );
    // Without metadata, HELP is the mvx name as before.
    assert!(
        TextEncoder::new()
            .encode(&list, Format::Prometheus)
            .text
            .contains("# HELP latency latency\n")
    );
}

#[test]
fn invalid_label_names_are_refused() {
    for name in ["", "1a", "a-b", "__reserved", "le", "é"] {
        assert!(
            matches!(
                TextEncoder::new().label(name, "v"),
                Err(ExposeError::InvalidLabelName { name: refused }) if refused == name
            ),
            "{name:?}"
        );
    }
    let encoder = TextEncoder::new().label("job", "a").expect("valid");
    assert!(encoder.clone().label("job", "b").is_err(), "duplicate");
    let encoder = encoder.label("_x9", "b").expect("valid");
    assert_eq!(encoder.labels, "job=\"a\",_x9=\"b\"");
}

#[test]
fn histogram_buckets_are_cumulative_in_bound_order_with_inf_last() {
    let histogram = Histogram::new("latency", [-1.0, 0.5, 2.0, 10.0, 100.0]).expect("valid");
    for value in [-5.0, 0.25, 0.5, 3.0, 50.0, 1e9, f64::NAN] {
        histogram.observe(value);
    }
    let text = TextEncoder::new()
        .encode(&snapshots([histogram.snapshot()]), Format::Prometheus)
        .text;
    assert_eq!(
        text,
        "# HELP latency latency\n\
         # TYPE latency histogram\n\
         latency_bucket{le=\"-1.0\"} 1\n\
         latency_bucket{le=\"0.5\"} 3\n\
         latency_bucket{le=\"2.0\"} 3\n\
         latency_bucket{le=\"10.0\"} 4\n\
         latency_bucket{le=\"100.0\"} 5\n\
         latency_bucket{le=\"+Inf\"} 6\n\
         latency_sum 1.00000004875e+09\n\
         latency_count 6\n"
    );
}

#[test]
fn openmetrics_leaves_a_negative_histogram_sum_out() {
    let histogram = Histogram::new("delta", [0.0]).expect("valid");
    histogram.observe(-2.0);
    let list = snapshots([histogram.snapshot()]);
    let openmetrics = TextEncoder::new()
        .created(false)
        .encode(&list, Format::OpenMetrics)
        .text;
    assert_eq!(
        openmetrics,
        "# HELP delta delta\n# TYPE delta histogram\n\
         delta_bucket{le=\"0.0\"} 1\ndelta_bucket{le=\"+Inf\"} 1\ndelta_count 1\n# EOF\n"
    );
    let prometheus = TextEncoder::new().encode(&list, Format::Prometheus).text;
    assert!(prometheus.contains("delta_sum -2.0\n"), "{prometheus}");
}

#[test]
fn a_histogram_snapshot_without_an_inf_bucket_gets_one_from_its_count() {
    let snapshot = Snapshot::new("h", MetricKind::Histogram)
        .with("le:1", 2u64)
        .with("count", 3u64)
        .with("sum", 4.5);
    let text = TextEncoder::new()
        .encode(&snapshots([snapshot]), Format::Prometheus)
        .text;
    assert!(
        text.ends_with("h_bucket{le=\"1.0\"} 2\nh_bucket{le=\"+Inf\"} 3\nh_sum 4.5\nh_count 3\n"),
        "{text}"
    );
    let empty = Snapshot::new("e", MetricKind::Histogram);
    assert_eq!(
        TextEncoder::new()
            .encode(&snapshots([empty]), Format::Prometheus)
            .text,
        ""
    );
}

#[test]
fn counters_get_the_total_suffix_in_each_format() {
    let list = snapshots([
        Snapshot::new("jobs", MetricKind::Counter).with("value", 2u64),
        Snapshot::new("done_total", MetricKind::Counter).with("value", 1u64),
    ]);
    assert_eq!(
        TextEncoder::new().encode(&list, Format::Prometheus).text,
        "# HELP done_total done_total\n# TYPE done_total counter\ndone_total 1\n\
         # HELP jobs_total jobs\n# TYPE jobs_total counter\njobs_total 2\n"
    );
    assert_eq!(
        TextEncoder::new().encode(&list, Format::OpenMetrics).text,
        "# HELP done done_total\n# TYPE done counter\ndone_total 1\n\
         # HELP jobs jobs\n# TYPE jobs counter\njobs_total 2\n# EOF\n"
    );
}

#[test]
fn multi_dimension_snapshots_give_one_family_per_dimension() {
    let snapshot = Snapshot::new("http.requests", MetricKind::Counter)
        .with("total", 10u64)
        .with("errors_total", 2u64)
        .with("latency_seconds_sum", 1.5);
    let text = TextEncoder::new()
        .encode(&snapshots([snapshot]), Format::Prometheus)
        .text;
    assert_eq!(
        text,
        "# HELP http_requests_errors_total http.requests errors_total\n\
         # TYPE http_requests_errors_total counter\n\
         http_requests_errors_total 2\n\
         # HELP http_requests_latency_seconds_sum_total http.requests latency_seconds_sum\n\
         # TYPE http_requests_latency_seconds_sum_total counter\n\
         http_requests_latency_seconds_sum_total 1.5\n\
         # HELP http_requests_total http.requests total\n\
         # TYPE http_requests_total counter\n\
         http_requests_total 10\n"
    );
}

#[test]
fn order_is_deterministic_and_collisions_keep_the_first() {
    let list = snapshots([
        Snapshot::new("b", MetricKind::Gauge).with("value", 1u64),
        Snapshot::new("a.x", MetricKind::Gauge).with("value", 2u64),
        Snapshot::new("a_x", MetricKind::Gauge).with("value", 3u64),
        Snapshot::new("info", MetricKind::Info).with("value", 1u64),
    ]);
    let first = TextEncoder::new().encode(&list, Format::Prometheus);
    assert_eq!(
        first.text,
        "# HELP a_x a.x\n# TYPE a_x gauge\na_x 2\n\
         # HELP b b\n# TYPE b gauge\nb 1\n\
         # HELP info info\n# TYPE info gauge\ninfo 1\n\
         # mvx: skipped family a_x: its sample a_x collides with gauge a_x\n\
         # HELP mvx_exposition_skipped_families Families left out of this exposition because \
         a name of theirs is taken by a family before them: a_x (its sample a_x collides with \
         gauge a_x).\n\
         # TYPE mvx_exposition_skipped_families gauge\n\
         mvx_exposition_skipped_families 1\n"
    );
    assert_eq!(skipped(&first), [("a_x", "a_x")]);
    let reversed: Snapshots = list.into_iter().rev().collect();
    assert_eq!(
        TextEncoder::new().encode(&reversed, Format::Prometheus),
        first
    );
}

#[test]
fn the_series_of_one_name_are_one_family_with_labels_on_every_sample() {
    let registry = Registry::new();
    registry
        .counter_with_labels("http.requests", &[("code", "500"), ("method", "GET")])
        .unwrap()
        .inc();
    registry
        .counter_with_labels("http.requests", &[("method", "GET"), ("code", "200")])
        .unwrap()
        .inc_by(3);
    registry.counter("http.requests").unwrap().inc_by(7);
    let latency = registry
        .histogram_with_labels("rpc.seconds", &[("le", "x"), ("a.b", "q\"")], [1.0])
        .unwrap();
    latency.observe(0.5);
    let encoder = TextEncoder::new()
        .label("method", "ignored-by-series")
        .unwrap();
    let text = encoder.encode_registry(&registry, Format::Prometheus).text;
    assert_eq!(
        text,
        "# HELP http_requests_total http.requests\n\
         # TYPE http_requests_total counter\n\
         http_requests_total{method=\"ignored-by-series\"} 7\n\
         http_requests_total{method=\"ignored-by-series\",code=\"200\"} 3\n\
         http_requests_total{method=\"ignored-by-series\",code=\"500\"} 1\n\
         # HELP rpc_seconds rpc.seconds\n\
         # TYPE rpc_seconds histogram\n\
         rpc_seconds_bucket{method=\"ignored-by-series\",a_b=\"q\\\"\",label_le=\"x\",le=\"1.0\"} 1\n\
         rpc_seconds_bucket{method=\"ignored-by-series\",a_b=\"q\\\"\",label_le=\"x\",le=\"+Inf\"} 1\n\
         rpc_seconds_sum{method=\"ignored-by-series\",a_b=\"q\\\"\",label_le=\"x\"} 0.5\n\
         rpc_seconds_count{method=\"ignored-by-series\",a_b=\"q\\\"\",label_le=\"x\"} 1\n"
    );
    let openmetrics = TextEncoder::new()
        .created(false)
        .encode_registry(&registry, Format::OpenMetrics);
    assert!(
        openmetrics.text.contains(
            "# TYPE http_requests counter\nhttp_requests_total 7\n\
             http_requests_total{code=\"200\",method=\"GET\"} 3\n"
        ),
        "{}",
        openmetrics.text
    );
}

#[test]
fn series_of_one_name_with_another_kind_are_skipped() {
    let list: Snapshots = [
        Snapshot::new("jobs", MetricKind::Gauge)
            .with("value", 1u64)
            .with_label("queue", "a"),
        Snapshot::new("jobs", MetricKind::Counter)
            .with("value", 2u64)
            .with_label("queue", "b"),
    ]
    .into_iter()
    .map(|snapshot| (snapshot.key(), snapshot))
    .collect();
    let encoded = TextEncoder::new().encode(&list, Format::OpenMetrics);
    assert_eq!(
        encoded.text,
        "# HELP jobs jobs\n# TYPE jobs gauge\njobs{queue=\"a\"} 1\n\
         # HELP mvx_exposition_skipped_families Families left out of this exposition because \
         a name of theirs is taken by a family before them: jobs (its name jobs collides \
         with gauge jobs).\n\
         # TYPE mvx_exposition_skipped_families gauge\n\
         mvx_exposition_skipped_families 1\n# EOF\n"
    );
    assert_eq!(skipped(&encoded), [("jobs", "jobs")]);
}

#[test]
fn a_family_named_like_the_self_metric_keeps_its_name() {
    let list = snapshots([
        Snapshot::new("mvx_exposition_skipped_families", MetricKind::Gauge).with("value", 9u64),
        Snapshot::new("a.x", MetricKind::Gauge).with("value", 1u64),
        Snapshot::new("a_x", MetricKind::Gauge).with("value", 2u64),
    ]);
    let encoded = TextEncoder::new().encode(&list, Format::Prometheus);
    assert_eq!(
        encoded.text,
        "# HELP a_x a.x\n# TYPE a_x gauge\na_x 1\n\
         # HELP mvx_exposition_skipped_families mvx_exposition_skipped_families\n\
         # TYPE mvx_exposition_skipped_families gauge\n\
         mvx_exposition_skipped_families 9\n\
         # mvx: skipped family a_x: its sample a_x collides with gauge a_x\n"
    );
    assert_eq!(skipped(&encoded), [("a_x", "a_x")]);
}

#[test]
fn a_report_names_the_sample_or_the_family_name_that_collides() {
    let list = snapshots([
        Snapshot::new("y", MetricKind::Gauge).with("value", 1u64),
        Snapshot::new("y_total", MetricKind::Counter).with("value", 2u64),
        Snapshot::new("h", MetricKind::Counter).with("value", 3u64),
        Snapshot::new("h_created", MetricKind::Histogram)
            .with("le:1", 1u64)
            .with("count", 1u64),
    ]);
    let reports: Vec<String> = TextEncoder::new()
        .encode(&list, Format::OpenMetrics)
        .skipped
        .iter()
        .map(ToString::to_string)
        .collect();
    assert_eq!(
        reports,
        [
            "skipped family h_created: its name h_created collides with counter h",
            "skipped family y: its name y collides with gauge y",
        ]
    );
    let reports: Vec<String> = TextEncoder::new()
        .encode(&list, Format::Prometheus)
        .skipped
        .iter()
        .map(ToString::to_string)
        .collect();
    assert_eq!(
        reports,
        [
            "skipped family h_created: its name h_created collides with counter h_total",
            "skipped family y_total: its name y collides with gauge y",
        ]
    );
}
