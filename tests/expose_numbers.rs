//! Numbers as the official clients write them: every float mvx writes — a sample value, and
//! above all an `le` label value — is the very string the official Python client
//! (`prometheus_client`, `floatToGoString`) writes for the same `f64`, so that one bucket
//! bound is one `le` series across a fleet of mixed services. The expected strings come
//! from running prometheus_client on the same values, never from a list typed here.
#![cfg(not(loom))]

#[path = "support/prometheus_tools.rs"]
mod prometheus_tools;

use proptest::prelude::*;
use proptest::strategy::ValueTree;
use proptest::test_runner::{Config, TestRunner};

use mvx::expose::{Format, TextEncoder};
use mvx::metrics::{Histogram, MetricKind, Snapshot, Snapshots};
use prometheus_tools::float_to_go_strings;

/// Bucket bounds where the formats of Rust, Python and Go part ways: exponents (`1e-07`,
/// `1e+21`), the switch to an exponent at a million (`1.234567e+06`) and at 1e16, whole
/// numbers (`1.0`), the smallest subnormal and the largest finite value.
const TRICKY: [f64; 32] = [
    -1.797_693_134_862_315_7e308,
    -1e21,
    -1.234_567e6,
    -1e6,
    -123_456.7,
    -1.0,
    -0.1,
    -1e-7,
    -5e-324,
    0.0,
    5e-324,
    1e-7,
    0.000_001,
    1e-5,
    0.000_1,
    0.001,
    0.1,
    0.25,
    1.0,
    2.5,
    10.0,
    100_000.0,
    123_456.7,
    999_999.999_9,
    1e6,
    1_234_567.0,
    10_000_000.5,
    1e15,
    1e16,
    1.234_567_890_123_456_7e19,
    1e21,
    1.797_693_134_862_315_7e308,
];

/// The `le` values of the `<name>_bucket` samples of `text`, in order, without `+Inf`.
fn le_values(text: &str, name: &str) -> Vec<String> {
    let prefix = format!("{name}_bucket{{");
    text.lines()
        .filter_map(|line| line.strip_prefix(&prefix))
        .map(|rest| {
            let start = rest.find("le=\"").expect("an le label") + 4;
            let end = start + rest[start..].find('"').expect("a closing quote");
            rest[start..end].to_owned()
        })
        .filter(|le| le != "+Inf")
        .collect()
}

/// The value written for each gauge `g<index>` of `text`, by index.
fn gauge_values(text: &str) -> Vec<String> {
    let mut values: Vec<(usize, String)> = text
        .lines()
        .filter(|line| line.starts_with('g'))
        .map(|line| {
            let (name, value) = line.split_once(' ').expect("a sample line");
            (name[1..].parse().expect("an index"), value.to_owned())
        })
        .collect();
    values.sort();
    values.into_iter().map(|(_, value)| value).collect()
}

/// One gauge per value, `g000000`, `g000001`, …
fn gauges(values: &[f64]) -> Snapshots {
    values
        .iter()
        .enumerate()
        .map(|(index, &value)| {
            let snapshot =
                Snapshot::new(format!("g{index:06}"), MetricKind::Gauge).with("value", value);
            (snapshot.name.clone(), snapshot)
        })
        .collect()
}

/// `values`, made valid bucket bounds: finite, sorted, without repeats.
fn bounds(values: &[f64]) -> Vec<f64> {
    let mut bounds: Vec<f64> = values.iter().copied().filter(|v| v.is_finite()).collect();
    bounds.sort_by(f64::total_cmp);
    bounds.dedup_by(|a, b| a == b);
    bounds
}

/// Asserts that mvx writes `values` as prometheus_client does: as gauge values and as
/// bucket bounds, in both formats.
fn assert_written_as_prometheus_client_writes(values: &[f64]) {
    let expected = float_to_go_strings(values);
    let snapshots = gauges(values);
    for format in [Format::Prometheus, Format::OpenMetrics] {
        let written = gauge_values(&TextEncoder::new().encode(&snapshots, format).text);
        let wrong: Vec<String> = values
            .iter()
            .zip(expected.iter().zip(&written))
            .filter(|(_, (expected, written))| expected != written)
            .take(20)
            .map(|(value, (expected, written))| {
                format!(
                    "{value:e} ({:#018x}): prometheus_client {expected}, mvx {written}",
                    value.to_bits()
                )
            })
            .collect();
        assert_eq!(written.len(), values.len(), "{format:?}");
        assert!(
            wrong.is_empty(),
            "{format:?} values differ:\n{}",
            wrong.join("\n")
        );
    }

    let bounds = bounds(values);
    let expected = float_to_go_strings(&bounds);
    let histogram = Histogram::new("h", bounds.iter().copied()).expect("valid bounds");
    let snapshots: Snapshots = [("h".to_owned(), histogram.snapshot())].into();
    for format in [Format::Prometheus, Format::OpenMetrics] {
        let le = le_values(&TextEncoder::new().encode(&snapshots, format).text, "h");
        let wrong: Vec<String> = bounds
            .iter()
            .zip(expected.iter().zip(&le))
            .filter(|(_, (expected, le))| expected != le)
            .take(20)
            .map(|(bound, (expected, le))| {
                format!("{bound:e}: prometheus_client le=\"{expected}\", mvx le=\"{le}\"")
            })
            .collect();
        assert_eq!(le.len(), bounds.len(), "{format:?}");
        assert!(
            wrong.is_empty(),
            "{format:?} le values differ:\n{}",
            wrong.join("\n")
        );
    }
}

#[test]
fn le_values_of_tricky_bounds_are_prometheus_clients() {
    assert_written_as_prometheus_client_writes(&TRICKY);
    // The bounds of the default buckets, as every client has them.
    assert_written_as_prometheus_client_writes(Histogram::DEFAULT_BUCKETS);
}

#[test]
fn special_values_are_written_as_prometheus_client_writes_them() {
    let values = [f64::NAN, f64::INFINITY, f64::NEG_INFINITY, -0.0, 0.0];
    let expected = float_to_go_strings(&values);
    assert_eq!(expected, ["NaN", "+Inf", "-Inf", "-0.0", "0.0"]);
    let written = gauge_values(
        &TextEncoder::new()
            .encode(&gauges(&values), Format::OpenMetrics)
            .text,
    );
    assert_eq!(written, expected);
}

/// Finite floats of every shape: any bit pattern (subnormals, huge exponents), whole
/// numbers, values near the powers of ten where notations switch, and everyday values.
fn finite_float() -> impl Strategy<Value = f64> {
    let power_of_ten = (-30i32..=30, -3i64..=3).prop_map(|(exponent, ulps)| {
        let value = 10f64.powi(exponent);
        f64::from_bits(value.to_bits().wrapping_add_signed(ulps))
    });
    prop_oneof![
        any::<u64>().prop_map(f64::from_bits),
        any::<i64>().prop_map(|value| value as f64),
        (-1e7..1e7f64),
        power_of_ten.clone(),
        power_of_ten.prop_map(|value| -value),
        (0u32..1_000_000).prop_map(|value| f64::from(value) / 1000.0),
    ]
    .prop_filter("finite", |value| value.is_finite())
}

#[test]
fn random_finite_floats_are_written_as_prometheus_client_writes_them() {
    // One batch, one Python process: drawn with a fixed seed, so a failure names values
    // that fail again.
    let mut runner = TestRunner::new_with_rng(
        Config::default(),
        proptest::test_runner::TestRng::deterministic_rng(
            proptest::test_runner::RngAlgorithm::ChaCha,
        ),
    );
    let values = proptest::collection::vec(finite_float(), 20_000)
        .new_tree(&mut runner)
        .expect("a batch")
        .current();
    assert_written_as_prometheus_client_writes(&values);
}
