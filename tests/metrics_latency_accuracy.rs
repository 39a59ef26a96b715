//! `LatencyHistogram`'s accuracy: on the same recorded data — uniform, log-normal and
//! bimodal samples — every reported percentile is within the configured relative error
//! (1 %) of the exact percentile of the data, and within it of the `hdrhistogram` crate's
//! answer for the same records (here: the same number, as both use HdrHistogram's layout
//! and rank).
//!
//! 10 M values per distribution, as issue 18 asks: the three tests together take about
//! 10 s in a debug build on 2 cores (80 MB of samples each). `MVX_LATENCY_VALUES` sets
//! another size:
//!
//! ```sh
//! MVX_LATENCY_VALUES=100000000 cargo test --release --test metrics_latency_accuracy
//! ```
#![cfg(not(loom))]

#[path = "support/latency_samples.rs"]
mod latency_samples;

use std::time::Duration;

use mvx::metrics::{LatencyConfig, LatencyHistogram};

use latency_samples::{Shape, exact_quantile};

/// The quantiles compared, from the minimum to the maximum.
const QUANTILES: [f64; 15] = [
    0.0, 0.001, 0.01, 0.1, 0.25, 0.5, 0.75, 0.9, 0.95, 0.99, 0.995, 0.999, 0.9999, 0.99999, 1.0,
];

/// Values per distribution: `MVX_LATENCY_VALUES`, 10 M by default.
fn values() -> usize {
    std::env::var("MVX_LATENCY_VALUES")
        .ok()
        .and_then(|values| values.parse().ok())
        .unwrap_or(10_000_000)
}

/// `|reported - exact| <= bound · exact`.
fn within(reported: u64, exact: u64, bound: f64) -> bool {
    reported.abs_diff(exact) as f64 <= bound * exact as f64
}

fn nanos(duration: Duration) -> u64 {
    u64::try_from(duration.as_nanos()).expect("fits")
}

/// Records `shape`'s samples into mvx (from two threads) and into `hdrhistogram`, then
/// holds every percentile against the exact one and against the crate's.
fn check(shape: Shape, seed: u64) {
    let count = values();
    let mut samples = shape.samples(count, seed);
    let config = LatencyConfig::default();
    let relative_error = config.get_relative_error();
    let latency = LatencyHistogram::with_config("latency", config).expect("valid");
    let mut hdr =
        hdrhistogram::Histogram::<u64>::new_with_bounds(1, 3_600_000_000_000, 2).expect("valid");
    let (first, second) = samples.split_at(count / 2);
    std::thread::scope(|scope| {
        for half in [first, second] {
            let latency = latency.clone();
            scope.spawn(move || half.iter().for_each(|&value| latency.record_nanos(value)));
        }
        samples
            .iter()
            .for_each(|&value| hdr.record(value).expect("in range"));
    });
    samples.sort_unstable();
    let distribution = latency.distribution();
    assert_eq!(distribution.count(), count as u64);
    assert_eq!(
        distribution.sum_nanos(),
        samples.iter().map(|&value| u128::from(value)).sum::<u128>()
    );

    for q in QUANTILES {
        let exact = exact_quantile(&samples, q);
        let reported = nanos(distribution.quantile(q).expect("records"));
        let theirs = hdr.value_at_quantile(q);
        assert!(
            within(reported, exact, relative_error),
            "{shape:?} q {q}: reported {reported}, exact {exact}"
        );
        assert!(
            within(reported, theirs, relative_error),
            "{shape:?} q {q}: reported {reported}, hdrhistogram {theirs}"
        );
        assert_eq!(reported, theirs, "{shape:?} q {q}");
    }
    let (lowest, highest) = (samples[0], samples[count - 1]);
    let min = nanos(distribution.min().expect("records"));
    let max = nanos(distribution.max().expect("records"));
    assert!(
        within(min, lowest, relative_error),
        "{shape:?}: min {min} vs {lowest}"
    );
    assert!(
        within(max, highest, relative_error),
        "{shape:?}: max {max} vs {highest}"
    );

    // Every step of a percentile report: the value of the record of rank ceil(q · n).
    let mut steps = 0;
    for step in distribution.percentiles(5) {
        let rank = ((step.quantile * count as f64).ceil() as usize).clamp(1, count);
        let exact = samples[rank - 1];
        let reported = nanos(step.value);
        assert!(
            within(reported, exact, relative_error),
            "{shape:?} step {}: reported {reported}, exact {exact}",
            step.quantile
        );
        assert!(step.count >= rank as u64);
        steps += 1;
    }
    assert!(steps > 30, "{steps} steps");
}

#[test]
fn uniform_percentiles_are_within_the_relative_error() {
    check(Shape::Uniform, 1);
}

#[test]
fn log_normal_percentiles_are_within_the_relative_error() {
    check(Shape::LogNormal, 2);
}

#[test]
fn bimodal_percentiles_are_within_the_relative_error() {
    check(Shape::Bimodal, 3);
}
