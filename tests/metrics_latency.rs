//! `LatencyHistogram`: typed configuration errors; out-of-range, NaN and negative inputs
//! clamped or refused and counted; reads, percentile steps, recorded sub-buckets and
//! coordinated-omission corrections the same as the `hdrhistogram` crate's for the same
//! records; merging; intervals and resets that lose no record while threads race them;
//! its snapshot; the registry that holds it; the recorder metric that feeds it.
//!
//! Accuracy against the exact percentiles: tests/metrics_latency_accuracy.rs. Exposition:
//! tests/expose_latency.rs. Allocations: tests/metrics_latency_allocations.rs.
#![cfg(not(loom))]

#[path = "support/latency_samples.rs"]
mod latency_samples;
#[path = "support/watchdog.rs"]
mod watchdog;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Barrier};
use std::thread;
use std::time::Duration;

use mvx::ErrorReason;
use mvx::metrics::{
    LatencyConfig, LatencyConfigError, LatencyDistribution, LatencyHistogram, LatencyMetric,
    Metadata, MetricEvent, MetricKind, MetricsReason, MetricsRuntime, Registry, RegistryError,
    Selector, Value,
};
use mvx::queue::LogOutcome;

use latency_samples::{Rng, Shape};
use watchdog::within_guard;

/// One hour in nanoseconds: the default highest value.
const HOUR: u64 = 3_600_000_000_000;

/// An `hdrhistogram` histogram with the default configuration's layout.
fn hdr_default() -> hdrhistogram::Histogram<u64> {
    hdrhistogram::Histogram::new_with_bounds(1, HOUR, 2).expect("valid bounds")
}

fn nanos(duration: Duration) -> u64 {
    u64::try_from(duration.as_nanos()).expect("fits")
}

/// The recorded sub-buckets of `distribution`: `(highest value, count)`.
fn recorded(distribution: &LatencyDistribution) -> Vec<(u64, u64)> {
    distribution
        .recorded()
        .map(|bucket| (nanos(bucket.highest), bucket.count))
        .collect()
}

/// The recorded values of `hdr`, as [`recorded`] gives them.
fn hdr_recorded(hdr: &hdrhistogram::Histogram<u64>) -> Vec<(u64, u64)> {
    hdr.iter_recorded()
        .map(|value| (value.value_iterated_to(), value.count_at_value()))
        .collect()
}

#[test]
fn configurations_are_checked_with_typed_errors() {
    let second = Duration::from_secs(1);
    let cases = [
        (
            LatencyConfig::default().relative_error(0.0),
            LatencyConfigError::RelativeError {
                relative_error: 0.0,
            },
        ),
        (
            LatencyConfig::default().relative_error(0.6),
            LatencyConfigError::RelativeError {
                relative_error: 0.6,
            },
        ),
        (
            LatencyConfig::default().relative_error(1e-6),
            LatencyConfigError::RelativeError {
                relative_error: 1e-6,
            },
        ),
        (
            LatencyConfig::default().significant_digits(0),
            LatencyConfigError::RelativeError {
                relative_error: 1.0,
            },
        ),
        (
            LatencyConfig::default().range(Duration::ZERO, second),
            LatencyConfigError::Range {
                lowest: Duration::ZERO,
                highest: second,
            },
        ),
        (
            LatencyConfig::default().range(second, second * 3 / 2),
            LatencyConfigError::Range {
                lowest: second,
                highest: second * 3 / 2,
            },
        ),
        (
            LatencyConfig::default().quantiles([0.5, 1.5]),
            LatencyConfigError::Quantile { quantile: 1.5 },
        ),
        (
            LatencyConfig::default().quantiles([-0.1]),
            LatencyConfigError::Quantile { quantile: -0.1 },
        ),
    ];
    for (config, expected) in cases {
        assert_eq!(config.validate(), Err(expected.clone()), "{config:?}");
        assert_eq!(expected.reason(), MetricsReason::InvalidArgument);
        match LatencyHistogram::with_config("latency", config.clone()) {
            Err(RegistryError::LatencyConfig { name, error }) => {
                assert_eq!((name.as_str(), error), ("latency", expected.clone()));
            }
            other => panic!("{config:?}: {other:?}"),
        }
        let error = Registry::new()
            .latency_histogram("latency", config)
            .expect_err("refused");
        assert_eq!(error.reason(), MetricsReason::InvalidArgument);
        assert_eq!(error.name(), "latency");
    }
    // NaN is refused too (and is not equal to itself, so it is matched here).
    let nan = LatencyConfig::default().relative_error(f64::NAN).validate();
    assert!(
        matches!(nan, Err(LatencyConfigError::RelativeError { relative_error }) if relative_error.is_nan())
    );
    let nan = LatencyConfig::default().quantiles([f64::NAN]).validate();
    assert!(matches!(nan, Err(LatencyConfigError::Quantile { quantile }) if quantile.is_nan()));

    assert_eq!(
        LatencyConfigError::Range {
            lowest: Duration::ZERO,
            highest: second
        }
        .to_string(),
        "latency range 0ns to 1s is not valid: lowest must be at least 1 ns and highest at least twice lowest"
    );
    // The bounds accepted: 0.00001 to 0.5, and a range exactly twice its lowest.
    for valid in [
        LatencyConfig::default().relative_error(0.5),
        LatencyConfig::default().significant_digits(5),
        LatencyConfig::default().range(second, second * 2),
        LatencyConfig::default().quantiles([]),
        LatencyConfig::default().quantiles([0.0, 1.0, 0.5, 0.5]),
    ] {
        assert_eq!(valid.validate(), Ok(()), "{valid:?}");
    }
    assert_eq!(
        LatencyConfig::default()
            .quantiles([1.0, 0.5, 0.5, 0.0])
            .get_quantiles(),
        [0.0, 0.5, 1.0]
    );
}

#[test]
fn values_above_the_range_are_clamped_and_counted() {
    let config = LatencyConfig::default().range(Duration::from_micros(1), Duration::from_secs(1));
    let latency = LatencyHistogram::with_config("latency", config).expect("valid");
    latency.record(Duration::from_secs(2));
    latency.record(Duration::MAX);
    latency.record_nanos(u64::MAX);
    latency.record_secs(f64::INFINITY);
    latency.record_secs(1e300);
    latency.record_n(Duration::from_secs(5), 3);
    latency.record(Duration::from_millis(1)); // in range

    let distribution = latency.distribution();
    assert_eq!(distribution.clamped(), 8);
    assert_eq!(latency.clamped(), 8);
    assert_eq!(distribution.count(), 9);
    // Clamped records count as the highest value, 1 s, in the sum too.
    assert_eq!(
        distribution.sum(),
        Duration::from_secs(8) + Duration::from_millis(1)
    );
    let max = distribution.max().expect("records");
    assert!(
        max >= Duration::from_secs(1) && max <= Duration::from_secs(1) * 1008 / 1000,
        "{max:?}"
    );
    assert_eq!(distribution.quantile(1.0), Some(max));
    assert_eq!(distribution.quantile(0.5), Some(max));
    let p10 = distribution.quantile(0.1).expect("records");
    assert!(
        p10 >= Duration::from_millis(1) && p10 <= Duration::from_micros(1008),
        "{p10:?}"
    );
}

#[test]
fn values_below_the_range_are_kept_within_its_resolution() {
    // From 1 µs with 128 sub-buckets: 4 ns wide below 1 µs (1000 / 128 = 7.8: 2^2).
    let config = LatencyConfig::default().range(Duration::from_micros(1), Duration::from_secs(1));
    let latency = LatencyHistogram::with_config("latency", config).expect("valid");
    for value in [0, 1, 3, 10, 999, 1000] {
        latency.record_nanos(value);
    }
    let buckets = recorded(&latency.distribution());
    assert_eq!(buckets, [(3, 3), (11, 1), (999, 1), (1003, 1)]);
    assert_eq!(latency.min(), Some(Duration::ZERO));
    assert_eq!(latency.clamped(), 0);
}

#[test]
fn nan_and_negative_seconds_are_refused_and_counted() {
    let latency = LatencyHistogram::new("latency");
    latency.record_secs(f64::NAN);
    latency.record_secs(-1.0);
    latency.record_secs(f64::NEG_INFINITY);
    latency.record_secs(-0.0); // zero, not negative
    latency.record_secs(1.5e-9); // rounded to 2 ns
    latency.record_secs(0.25);
    latency.record_n(Duration::from_secs(1), 0); // nothing

    let distribution = latency.distribution();
    assert_eq!(distribution.refused(), 3);
    assert_eq!(distribution.count(), 3);
    assert_eq!(distribution.sum(), Duration::from_nanos(250_000_002));
    assert_eq!(recorded(&distribution)[..2], [(0, 1), (2, 1)]);
    assert_eq!(distribution.min(), Some(Duration::ZERO));
    // Refused records are in no read.
    assert_eq!(latency.snapshot().get("refused"), Some(Value::U64(3)));
    assert_eq!(latency.snapshot().get("count"), Some(Value::U64(3)));
}

#[test]
fn an_empty_histogram_reads_as_nothing() {
    let latency = LatencyHistogram::new("latency");
    let distribution = latency.distribution();
    assert_eq!(distribution.count(), 0);
    assert_eq!(distribution.sum(), Duration::ZERO);
    for read in [
        distribution.min(),
        distribution.max(),
        distribution.mean(),
        distribution.stdev(),
        distribution.quantile(0.5),
        latency.quantile(0.99),
    ] {
        assert_eq!(read, None);
    }
    assert_eq!(distribution.percentiles(5).count(), 0);
    assert_eq!(distribution.recorded().count(), 0);
}

#[test]
fn reads_are_hdrhistograms_for_the_same_records() {
    for (seed, shape) in Shape::ALL.into_iter().enumerate() {
        let latency = LatencyHistogram::new("latency");
        let mut hdr = hdr_default();
        let mut rng = Rng::new(seed as u64);
        let mut sum: u128 = 0;
        for i in 0..200_000_u64 {
            let value = shape.sample(&mut rng);
            sum += u128::from(value);
            // Every recording method, on the same values.
            match i % 4 {
                0 => latency.record(Duration::from_nanos(value)),
                1 => latency.record_nanos(value),
                2 => latency.record_secs(value as f64 / 1e9),
                _ => latency.record_n(Duration::from_nanos(value), 1),
            }
            hdr.record(value).expect("in range");
        }
        let distribution = latency.distribution();
        assert_eq!(distribution.count(), hdr.len(), "{shape:?}");
        assert_eq!(distribution.sum_nanos(), sum, "{shape:?}");
        for q in [
            0.0, 0.001, 0.1, 0.25, 0.5, 0.75, 0.9, 0.99, 0.999, 0.9999, 0.99999, 1.0,
        ] {
            let value = distribution.quantile(q).map(nanos);
            assert_eq!(value, Some(hdr.value_at_quantile(q)), "{shape:?} q {q}");
        }
        assert_eq!(distribution.min().map(nanos), Some(hdr.min()), "{shape:?}");
        assert_eq!(distribution.max().map(nanos), Some(hdr.max()), "{shape:?}");
        // The mean is exact here; HdrHistogram's is from the middle of each sub-bucket.
        let mean = distribution.mean().map(nanos).expect("records") as f64;
        assert!((mean - hdr.mean()).abs() <= hdr.mean() * distribution.relative_error_bound());
        let stdev = distribution.stdev().map(nanos).expect("records") as f64;
        assert!(
            (stdev - hdr.stdev()).abs() <= hdr.stdev() * 0.001,
            "{stdev} {}",
            hdr.stdev()
        );
        assert_eq!(recorded(&distribution), hdr_recorded(&hdr), "{shape:?}");
        for ticks in [1, 5, 20] {
            let ours: Vec<(u64, f64, u64)> = distribution
                .percentiles(ticks)
                .map(|step| (nanos(step.value), step.quantile, step.count))
                .collect();
            let mut count = 0;
            let theirs: Vec<(u64, f64, u64)> = hdr
                .iter_quantiles(ticks)
                .map(|step| {
                    count += step.count_since_last_iteration();
                    (step.value_iterated_to(), step.quantile_iterated_to(), count)
                })
                .collect();
            assert_eq!(ours, theirs, "{shape:?} ticks {ticks}");
        }
    }
}

#[test]
fn out_of_range_quantiles_read_as_the_ends() {
    let latency = LatencyHistogram::new("latency");
    for micros in 1..=100 {
        latency.record(Duration::from_micros(micros));
    }
    let distribution = latency.distribution();
    assert_eq!(distribution.quantile(7.0), distribution.max());
    assert_eq!(distribution.quantile(f64::INFINITY), distribution.max());
    assert_eq!(distribution.quantile(-1.0), distribution.min());
    assert_eq!(distribution.quantile(f64::NAN), distribution.min());
    assert_eq!(distribution.quantile(0.0), distribution.min());
    // Zero ticks per half distance are read as one.
    assert_eq!(
        distribution.percentiles(0).collect::<Vec<_>>(),
        distribution.percentiles(1).collect::<Vec<_>>()
    );
}

#[test]
fn corrected_records_are_hdrhistograms() {
    let latency = LatencyHistogram::new("latency");
    let mut hdr = hdr_default();
    let mut expected_sum: u128 = 0;
    let mut record = |value: u64, interval: u64| {
        latency.record_corrected(Duration::from_nanos(value), Duration::from_nanos(interval));
        hdr.record_correct(value, interval).expect("in range");
        expected_sum += u128::from(value);
        if interval > 0 {
            let mut missing = value.saturating_sub(interval);
            while value > interval && missing >= interval {
                expected_sum += u128::from(missing);
                missing -= interval;
            }
        }
    };
    for (value, interval) in [
        (1_000, 100),
        (1_000_000, 1_000),
        (12_345_678, 12_345),
        (999, 1_000),
        (1_000, 1_000),
        (2_000, 1_000),
        (5_000, 0),
        (1_000_000, 1),
        (50_000_000, 10_000_000),
    ] {
        record(value, interval);
    }
    let mut rng = Rng::new(7);
    for _ in 0..200 {
        let value = rng.between(1, 10_000_000);
        let interval = rng.between((value / 10_000).max(1), 20_000_000);
        record(value, interval);
    }
    let distribution = latency.distribution();
    assert_eq!(distribution.count(), hdr.len());
    assert_eq!(recorded(&distribution), hdr_recorded(&hdr));
    assert_eq!(distribution.sum_nanos(), expected_sum);
}

#[test]
fn corrections_of_long_latencies_take_bounded_time() {
    within_guard(|| {
        // An hour against a nanosecond: 3.6 · 10^12 values, which HdrHistogram records one
        // at a time; here a few thousand steps, one per sub-bucket.
        let latency = LatencyHistogram::new("latency");
        latency.record_corrected(Duration::from_secs(3600), Duration::from_nanos(1));
        let distribution = latency.distribution();
        assert_eq!(distribution.count(), HOUR);
        assert_eq!(
            distribution
                .quantile(0.5)
                .map(nanos)
                .map(|p50| p50.abs_diff(HOUR / 2) <= HOUR / 200),
            Some(true)
        );
        // Their sum, about 6.5 · 10^24 ns, saturates the stripe's word.
        assert_eq!(distribution.sum_nanos(), u128::from(u64::MAX));

        // Above the range: clamped, and counted.
        let config =
            LatencyConfig::default().range(Duration::from_micros(1), Duration::from_millis(1));
        let latency = LatencyHistogram::with_config("latency", config).expect("valid");
        latency.record_corrected(Duration::from_millis(10), Duration::from_micros(1));
        let distribution = latency.distribution();
        // 10 ms, 9.999 ms, ..., 1 µs: 10,000 values, 9,000 of them above 1 ms.
        assert_eq!(distribution.count(), 10_000);
        assert_eq!(distribution.clamped(), 9_000);
        let below: u128 = (1..=1000).map(|micros| micros * 1000).sum();
        assert_eq!(distribution.sum_nanos(), below + 9_000 * 1_000_000);
    });
}

#[test]
fn merging_adds_the_records_of_both() {
    let mut rng = Rng::new(11);
    let first: Vec<u64> = (0..50_000)
        .map(|_| Shape::LogNormal.sample(&mut rng))
        .collect();
    let second: Vec<u64> = (0..50_000)
        .map(|_| Shape::Bimodal.sample(&mut rng))
        .collect();

    // The same layout: count for count.
    let (a, b, both) = (
        LatencyHistogram::new("a"),
        LatencyHistogram::new("b"),
        LatencyHistogram::new("both"),
    );
    first.iter().for_each(|&value| a.record_nanos(value));
    second.iter().for_each(|&value| b.record_nanos(value));
    first
        .iter()
        .chain(&second)
        .for_each(|&value| both.record_nanos(value));
    let mut merged = a.distribution();
    merged.merge(&b.distribution());
    assert_eq!(merged, both.distribution());
    a.merge(&b.distribution());
    assert_eq!(a.distribution(), both.distribution());

    // Another layout: each sub-bucket at its lowest value, as HdrHistogram's `add`.
    let fine =
        LatencyHistogram::with_config("fine", LatencyConfig::default().significant_digits(3))
            .expect("valid");
    let mut hdr_fine = hdrhistogram::Histogram::<u64>::new_with_bounds(1, HOUR, 3).expect("valid");
    let mut hdr_coarse = hdr_default();
    for &value in &second {
        fine.record_nanos(value);
        hdr_fine.record(value).expect("in range");
    }
    hdr_coarse.add(&hdr_fine).expect("fits");
    let mut coarse = LatencyHistogram::new("coarse").distribution();
    coarse.merge(&fine.distribution());
    assert_eq!(recorded(&coarse), hdr_recorded(&hdr_coarse));
    assert_eq!(coarse.count(), second.len() as u64);
    assert_eq!(
        coarse.sum_nanos(),
        second.iter().map(|&value| u128::from(value)).sum::<u128>()
    );

    // Into a narrower range: what is above it is clamped, and counted.
    let narrow = LatencyHistogram::with_config(
        "narrow",
        LatencyConfig::default().range(Duration::from_micros(1), Duration::from_millis(10)),
    )
    .expect("valid");
    narrow.merge(&fine.distribution());
    let above = second.iter().filter(|&&value| value >= 10_000_000).count() as u64;
    assert!(above > 1_000, "{above}");
    let distribution = narrow.distribution();
    assert_eq!(distribution.count(), second.len() as u64);
    // Sub-buckets straddling 10 ms may go either way: within one sub-bucket's records.
    assert!(
        distribution.clamped().abs_diff(above) < 100,
        "{} {above}",
        distribution.clamped()
    );
}

#[test]
fn intervals_lose_no_record_while_threads_race() {
    within_guard(|| {
        const THREADS: u64 = 4;
        const PER_THREAD: u64 = 200_000;
        let latency = LatencyHistogram::new("latency");
        let done = Arc::new(AtomicBool::new(false));
        // The writers start once the reader has taken its first interval.
        let start = Arc::new(Barrier::new(THREADS as usize + 1));
        let writers: Vec<_> = (0..THREADS)
            .map(|thread| {
                let (latency, start) = (latency.clone(), start.clone());
                thread::spawn(move || {
                    start.wait();
                    let mut rng = Rng::new(100 + thread);
                    for _ in 0..PER_THREAD {
                        latency.record_nanos(Shape::LogNormal.sample(&mut rng));
                    }
                })
            })
            .collect();
        let reader = {
            let (latency, done) = (latency.clone(), done.clone());
            thread::spawn(move || {
                let mut intervals = vec![latency.take_interval()];
                start.wait();
                let mut last_count = 0;
                while !done.load(Ordering::Acquire) {
                    intervals.push(latency.take_interval());
                    // Cumulative reads only grow.
                    let count = latency.count();
                    assert!(count >= last_count, "{count} < {last_count}");
                    last_count = count;
                }
                intervals
            })
        };
        for writer in writers {
            writer.join().expect("writer ran");
        }
        done.store(true, Ordering::Release);
        let mut intervals = reader.join().expect("reader ran");
        intervals.push(latency.take_interval());
        assert!(intervals.len() >= 2);

        // The same records, recorded on one thread.
        let reference = LatencyHistogram::new("reference");
        let mut expected_sum: u128 = 0;
        for thread in 0..THREADS {
            let mut rng = Rng::new(100 + thread);
            for _ in 0..PER_THREAD {
                let value = Shape::LogNormal.sample(&mut rng);
                reference.record_nanos(value);
                expected_sum += u128::from(value);
            }
        }
        let mut added = LatencyHistogram::new("added").distribution();
        for interval in &intervals {
            added.merge(interval);
        }
        assert_eq!(added.count(), THREADS * PER_THREAD);
        assert_eq!(added.sum_nanos(), expected_sum);
        assert_eq!(recorded(&added), recorded(&reference.distribution()));
        assert_eq!(latency.distribution(), reference.distribution());
        // Nothing after the last interval.
        assert_eq!(latency.take_interval().count(), 0);
    });
}

#[test]
fn a_reset_discards_what_came_before_it() {
    within_guard(|| {
        let latency = LatencyHistogram::new("latency");
        latency.record(Duration::from_millis(500));
        let created = latency.snapshot().created.expect("a clock after 1970");
        latency.take_interval();
        latency.record(Duration::from_millis(600));
        latency.reset();
        assert_eq!(latency.count(), 0);
        assert!(latency.snapshot().created.expect("set") >= created);
        latency.record(Duration::from_millis(1));
        let distribution = latency.distribution();
        assert_eq!(
            (distribution.count(), distribution.sum()),
            (1, Duration::from_millis(1))
        );
        // The interval after a reset starts at it: 600 ms is gone.
        assert_eq!(latency.take_interval().sum(), Duration::from_millis(1));

        // Racing: what is recorded after the reset returned is all kept.
        const PER_THREAD: u64 = 100_000;
        let latency = LatencyHistogram::new("latency");
        let reset_done = Arc::new(AtomicBool::new(false));
        let writers: Vec<_> = (0..2)
            .map(|_| {
                let (latency, reset_done) = (latency.clone(), reset_done.clone());
                thread::spawn(move || {
                    let mut before = 0;
                    while !reset_done.load(Ordering::Acquire) {
                        latency.record_nanos(1_000);
                        before += 1;
                    }
                    for _ in 0..PER_THREAD {
                        latency.record_nanos(2_000);
                    }
                    before
                })
            })
            .collect();
        // Some records before the reset, so that it has something to discard.
        watchdog::wait_until(|| latency.count() > 1_000);
        latency.reset();
        reset_done.store(true, Ordering::Release);
        let before: u64 = writers
            .into_iter()
            .map(|writer| writer.join().expect("ran"))
            .sum();
        let distribution = latency.distribution();
        let kept_after = distribution
            .recorded()
            .find(|bucket| bucket.lowest == Duration::from_nanos(2_000))
            .map_or(0, |bucket| bucket.count);
        assert_eq!(kept_after, 2 * PER_THREAD);
        assert!(distribution.count() < before + 2 * PER_THREAD);
    });
}

#[test]
fn the_snapshot_is_a_summary_in_seconds() {
    let config = LatencyConfig::default().quantiles([0.5, 0.99, 1.0]);
    let latency =
        LatencyHistogram::with_labels("rpc.latency", [("method", "get")], config).expect("valid");
    let empty = latency.snapshot();
    assert_eq!(empty.kind, MetricKind::Summary);
    assert_eq!(empty.labels["method"], "get");
    assert_eq!(
        empty
            .dimensions
            .iter()
            .map(|(name, value)| (name.as_str(), *value))
            .collect::<Vec<_>>(),
        [
            ("clamped", Value::U64(0)),
            ("count", Value::U64(0)),
            ("refused", Value::U64(0)),
            ("sum", Value::F64(0.0)),
        ]
    );
    for micros in 1..=100 {
        latency.record(Duration::from_micros(micros));
    }
    let snapshot = latency.snapshot();
    assert_eq!(snapshot.get("count"), Some(Value::U64(100)));
    assert_eq!(snapshot.get("sum"), Some(Value::F64(0.00505)));
    // 50 µs is in a sub-bucket 256 ns wide; 99 µs and 100 µs in ones 512 ns wide.
    assert_eq!(snapshot.get("quantile:0.5"), Some(Value::F64(50_175e-9)));
    assert_eq!(snapshot.get("quantile:0.99"), Some(Value::F64(99_327e-9)));
    assert_eq!(snapshot.get("quantile:1"), Some(Value::F64(100_351e-9)));
    assert!(snapshot.created.is_some());
}

#[test]
fn the_registry_holds_latency_histograms_by_name() {
    let registry = Registry::with_series_limit(2);
    let config = LatencyConfig::default().quantiles([0.5]);
    let latency = registry
        .latency_histogram("rpc.latency", config.clone())
        .expect("created");
    registry
        .latency_histogram("rpc.latency", config.clone())
        .expect("the same")
        .record(Duration::from_millis(1));
    assert_eq!(latency.count(), 1);

    let conflict = registry
        .latency_histogram("rpc.latency", LatencyConfig::default())
        .expect_err("another configuration");
    assert!(matches!(
        &conflict,
        RegistryError::LatencyConfigConflict { existing, requested, .. }
            if **existing == config && **requested == LatencyConfig::default()
    ));
    assert_eq!(conflict.reason(), ErrorReason::DescriptorConflict);
    let kind = registry
        .histogram("rpc.latency", [1.0])
        .expect_err("a summary");
    assert!(matches!(
        kind,
        RegistryError::KindConflict {
            existing: MetricKind::Summary,
            requested: MetricKind::Histogram,
            ..
        }
    ));
    registry.histogram("io.wait", [1.0]).expect("created");
    let kind = registry
        .latency_histogram_with_labels("io.wait", &[("disk", "a")], LatencyConfig::default())
        .expect_err("a histogram");
    assert!(matches!(
        kind,
        RegistryError::KindConflict {
            existing: MetricKind::Histogram,
            requested: MetricKind::Summary,
            ..
        }
    ));
    // A summary `x` takes `x_sum` and `x_count`.
    let collision = registry.gauge("rpc.latency_count").expect_err("taken");
    assert!(matches!(
        collision,
        RegistryError::SampleNameCollision { .. }
    ));
    assert!(matches!(
        registry.latency_histogram("", LatencyConfig::default()),
        Err(RegistryError::InvalidName { .. })
    ));

    // Labeled series, and the overflow series past the limit.
    for disk in ["a", "b", "c", "d"] {
        registry
            .latency_histogram_with_labels("disk.latency", &[("disk", disk)], config.clone())
            .expect("a series")
            .record(Duration::from_micros(10));
    }
    let overflow = registry
        .latency_histogram_with_labels("disk.latency", &[("disk", "e")], config.clone())
        .expect("the overflow series");
    assert!(overflow.is_overflow());
    assert_eq!(overflow.count(), 2);
    assert_eq!(registry.series_refused("disk.latency"), 3);

    // Listed once per name, with its unit and accuracy unless described.
    let listed = registry
        .get_metrics(&Selector::regex("latency").expect("valid"))
        .expect("listed");
    assert_eq!(
        listed.keys().collect::<Vec<_>>(),
        ["disk.latency", "rpc.latency"]
    );
    assert_eq!(
        serde_json::to_value(&listed["rpc.latency"]).expect("JSON"),
        serde_json::json!({
            "unit": "seconds",
            "relative_error": 0.01,
            "lowest_seconds": 1e-9,
            "highest_seconds": 3600.0,
        })
    );
    let described = Metadata::new().unit("s").description("time to answer");
    registry
        .latency_histogram_with("http.latency", LatencyConfig::default(), described.clone())
        .expect("created");
    assert_eq!(registry.metadata("http.latency"), Some(described));
    assert_eq!(registry.metadata("rpc.latency"), Some(latency.metadata()));

    assert!(registry.unregister("rpc.latency"));
    assert!(latency.is_unregistered());
    assert!(!registry.snapshots().contains_key("rpc.latency"));
}

#[test]
fn a_recorder_metric_records_the_latencies_of_events() {
    #[derive(Debug)]
    struct Served(Option<Duration>);
    impl MetricEvent for Served {}

    let runtime = MetricsRuntime::new().expect("runtime");
    let recorder = runtime.create_recorder::<Served>("http").expect("recorder");
    let latency = LatencyHistogram::new("http.latency");
    let metric = LatencyMetric::new(latency.clone(), |served: &Served| served.0);
    assert_eq!(metric.histogram().name(), "http.latency");
    recorder.register_metric(metric).expect("registered");
    for millis in [1, 2, 3] {
        let outcome = recorder.register_event(Served(Some(Duration::from_millis(millis))));
        assert_eq!(outcome.expect("accepted"), LogOutcome::Accepted);
    }
    let outcome = recorder.register_event(Served(None));
    assert_eq!(outcome.expect("accepted"), LogOutcome::Accepted);
    let snapshots = recorder.snapshot_now_blocking().expect("applied");
    assert_eq!(snapshots["http.latency"].kind, MetricKind::Summary);
    assert_eq!(snapshots["http.latency"].get("count"), Some(Value::U64(3)));
    assert_eq!(latency.sum(), Duration::from_millis(6));
    assert_eq!(recorder.unhandled()["Served"], 1);

    // Its metadata is the histogram's, and a registry lists it from the recorder.
    let registry = Registry::new();
    registry
        .register_source("http", Arc::new(recorder.clone()))
        .expect("registered");
    assert_eq!(registry.metadata("http.latency"), Some(latency.metadata()));
    runtime.shutdown().expect("stopped");
}

#[test]
fn a_histogram_with_fine_resolution_keeps_its_bound() {
    let config = LatencyConfig::default()
        .range(Duration::from_micros(10), Duration::from_secs(10))
        .relative_error(0.001);
    let latency = LatencyHistogram::with_config("latency", config).expect("valid");
    assert_eq!(latency.relative_error_bound(), 1.0 / 1024.0);
    let mut rng = Rng::new(3);
    let mut values: Vec<u64> = (0..100_000)
        .map(|_| rng.between(10_000, 10_000_000_000))
        .collect();
    values.iter().for_each(|&value| latency.record_nanos(value));
    values.sort_unstable();
    let distribution = latency.distribution();
    for q in [0.0, 0.1, 0.5, 0.9, 0.99, 0.999, 1.0] {
        let exact = latency_samples::exact_quantile(&values, q) as f64;
        let reported = nanos(distribution.quantile(q).expect("records")) as f64;
        assert!(
            (reported - exact).abs() <= exact * 0.001,
            "q {q}: {reported} vs {exact}"
        );
    }
}
