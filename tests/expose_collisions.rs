//! No sample is lost silently: families whose names collide — a histogram `x` beside a
//! gauge `x_count`, a counter `y` beside a gauge `y_total` — cannot both be exposed (the
//! official OpenMetrics parser refuses the whole text, Prometheus keeps one of the two
//! series). Snapshots the registry could not refuse (a source's, here) are left out of the
//! exposition, the later family in name order, and reported: in `Encoded::skipped`, in the
//! self-metric `mvx_exposition_skipped_families`, and, in the Prometheus format, in a
//! comment line. The text is held against the official Python parsers and promtool.
#![cfg(not(loom))]

#[path = "support/prometheus_tools.rs"]
mod prometheus_tools;

use std::collections::BTreeMap;
use std::sync::Arc;

use mvx::expose::{Format, Skipped, TextEncoder};
use mvx::metrics::{MetricKind, Registry, Snapshot, SnapshotSource, Snapshots};
use prometheus_tools::{parse, promtool_check};

/// Snapshots of user metrics whose exposed names collide, as a recorder gives them.
fn colliding() -> Snapshots {
    [
        Snapshot::new("x", MetricKind::Histogram)
            .with("le:1", 1u64)
            .with("le:+Inf", 1u64)
            .with("sum", 0.5)
            .with("count", 1u64),
        Snapshot::new("x_count", MetricKind::Gauge).with("value", 7u64),
        Snapshot::new("y", MetricKind::Counter).with("value", 3u64),
        Snapshot::new("y_total", MetricKind::Gauge).with("value", 5u64),
        Snapshot::new("z", MetricKind::Gauge).with("value", 1u64),
    ]
    .into_iter()
    .map(|snapshot| (snapshot.name.clone(), snapshot))
    .collect()
}

struct UserMetrics;

impl SnapshotSource for UserMetrics {
    fn collect(&self, into: &mut Snapshots) {
        into.append(&mut colliding());
    }
}

/// `(sample name, labels, value as Python's repr)` of every sample of `families`.
fn samples(
    families: &[prometheus_tools::ParsedFamily],
) -> Vec<(String, BTreeMap<String, String>, String)> {
    families
        .iter()
        .flat_map(|(_, samples)| samples.iter().cloned())
        .collect()
}

fn sample(name: &str, value: &str) -> (String, BTreeMap<String, String>, String) {
    (name.to_owned(), BTreeMap::new(), value.to_owned())
}

#[test]
fn colliding_families_are_skipped_and_the_openmetrics_text_parses() {
    let encoded = TextEncoder::new().encode(&colliding(), Format::OpenMetrics);
    assert_eq!(
        encoded.text,
        "# HELP x x\n# TYPE x histogram\n\
         x_bucket{le=\"1.0\"} 1\nx_bucket{le=\"+Inf\"} 1\nx_sum 0.5\nx_count 1\n\
         # HELP y y\n# TYPE y counter\ny_total 3\n\
         # HELP z z\n# TYPE z gauge\nz 1\n\
         # HELP mvx_exposition_skipped_families Families left out of this exposition because \
         a name of theirs is taken by a family before them: x_count (its sample x_count \
         collides with histogram x); y_total (its sample y_total collides with counter y).\n\
         # TYPE mvx_exposition_skipped_families gauge\n\
         mvx_exposition_skipped_families 2\n\
         # EOF\n"
    );
    let families = parse(&encoded.text, "openmetrics").unwrap_or_else(|error| {
        panic!("the OpenMetrics parser refused:\n{error}\n{}", encoded.text)
    });
    assert_eq!(
        samples(&families),
        [
            sample("x_bucket", "1"),
            sample("x_bucket", "1"),
            sample("x_sum", "0.5"),
            sample("x_count", "1"),
            sample("y_total", "3"),
            sample("z", "1"),
            sample("mvx_exposition_skipped_families", "2"),
        ]
        .into_iter()
        .enumerate()
        .map(|(index, (name, mut labels, value))| {
            if index < 2 {
                labels.insert("le".to_owned(), ["1.0", "+Inf"][index].to_owned());
            }
            (name, labels, value)
        })
        .collect::<Vec<_>>()
    );
    assert_eq!(
        encoded.skipped,
        [
            Skipped {
                family: "x_count".to_owned(),
                origin: "x_count".to_owned(),
                kind: MetricKind::Gauge,
                name: "x_count".to_owned(),
                taken_by: "x".to_owned(),
                taken_by_kind: MetricKind::Histogram,
            },
            Skipped {
                family: "y_total".to_owned(),
                origin: "y_total".to_owned(),
                kind: MetricKind::Gauge,
                name: "y_total".to_owned(),
                taken_by: "y".to_owned(),
                taken_by_kind: MetricKind::Counter,
            },
        ]
    );
}

#[test]
fn colliding_families_are_skipped_and_reported_in_a_comment_in_the_prometheus_format() {
    let encoded = TextEncoder::new().encode(&colliding(), Format::Prometheus);
    assert_eq!(
        encoded.text,
        "# HELP x x\n# TYPE x histogram\n\
         x_bucket{le=\"1.0\"} 1\nx_bucket{le=\"+Inf\"} 1\nx_sum 0.5\nx_count 1\n\
         # HELP y_total y\n# TYPE y_total counter\ny_total 3\n\
         # HELP z z\n# TYPE z gauge\nz 1\n\
         # mvx: skipped family x_count: its sample x_count collides with histogram x\n\
         # mvx: skipped family y_total: its sample y_total collides with counter y_total\n\
         # HELP mvx_exposition_skipped_families Families left out of this exposition because \
         a name of theirs is taken by a family before them: x_count (its sample x_count \
         collides with histogram x); y_total (its sample y_total collides with counter y_total).\n\
         # TYPE mvx_exposition_skipped_families gauge\n\
         mvx_exposition_skipped_families 2\n"
    );
    let (passed, report) = promtool_check(&encoded.text);
    assert!(
        passed,
        "promtool found problems:\n{report}\nin:\n{}",
        encoded.text
    );
    assert_eq!(report.trim(), "", "{report}");
    let families = parse(&encoded.text, "prometheus")
        .unwrap_or_else(|error| panic!("the Prometheus parser refused:\n{error}"));
    let names: Vec<(&str, &str)> = families
        .iter()
        .map(|((name, kind, _, _), _)| (name.as_str(), kind.as_str()))
        .collect();
    assert_eq!(
        names,
        [
            ("x", "histogram"),
            ("y", "counter"),
            ("z", "gauge"),
            ("mvx_exposition_skipped_families", "gauge")
        ]
    );
    // Each exposed sample name once: no series is written twice.
    let all = samples(&families);
    for name in ["x_count", "y_total"] {
        assert_eq!(
            all.iter().filter(|(sample, ..)| sample == name).count(),
            1,
            "{name}"
        );
    }
    assert_eq!(encoded.skipped.len(), 2);
    assert_eq!(
        encoded.skipped[1].to_string(),
        "skipped family y_total: its sample y_total collides with counter y_total"
    );
}

#[test]
fn a_registry_source_with_colliding_names_is_exposed_without_them() {
    let registry = Registry::new();
    registry
        .register_source("user", Arc::new(UserMetrics))
        .expect("source");
    let encoder = TextEncoder::new().label("service", "api").expect("label");
    for (format, parser) in [
        (Format::OpenMetrics, "openmetrics"),
        (Format::Prometheus, "prometheus"),
    ] {
        let encoded = encoder.encode_registry(&registry, format);
        let families = parse(&encoded.text, parser)
            .unwrap_or_else(|error| panic!("{parser} parser refused:\n{error}\n{}", encoded.text));
        let skipped = families
            .iter()
            .find(|((name, ..), _)| name == "mvx_exposition_skipped_families")
            .expect("the self-metric");
        // The encoder's labels are on the self-metric too.
        let labels = BTreeMap::from([("service".to_owned(), "api".to_owned())]);
        assert_eq!(
            skipped.1,
            [(
                "mvx_exposition_skipped_families".to_owned(),
                labels,
                "2".to_owned()
            )],
            "{parser}"
        );
        assert_eq!(encoded.skipped.len(), 2, "{parser}");
    }
}

#[test]
fn nothing_skipped_means_no_self_metric() {
    let mut snapshots = colliding();
    snapshots.remove("x_count");
    snapshots.remove("y_total");
    for format in [Format::OpenMetrics, Format::Prometheus] {
        let encoded = TextEncoder::new().encode(&snapshots, format);
        assert!(encoded.skipped.is_empty());
        assert!(
            !encoded.text.contains("mvx_exposition_skipped"),
            "{}",
            encoded.text
        );
        assert!(!encoded.text.contains("# mvx:"), "{}", encoded.text);
    }
}
