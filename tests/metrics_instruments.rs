//! Direct instruments (`Counter`, `Gauge`, `Histogram`): exact values, histogram bucket
//! edges, NaN and infinities, invalid bucket lists, totals under contention, snapshot
//! dimensions and shared clones. The registry that holds them: `tests/metrics_registry.rs`.
#![cfg(not(loom))]

use std::sync::{Arc, Barrier};
use std::thread;

use mvx::ErrorReason;
use mvx::metrics::{
    Counter, Gauge, Histogram, MetricKind, Registry, RegistryError, Snapshot, SnapshotSource,
    Snapshots, Value,
};

const THREADS: u64 = 4;
const PER_THREAD: u64 = 100_000;

/// The dimensions of a snapshot as `(name, value)` pairs, in order.
fn dimensions(snapshot: &Snapshot) -> Vec<(String, Value)> {
    snapshot
        .dimensions
        .iter()
        .map(|(name, value)| (name.clone(), *value))
        .collect()
}

/// Runs `record(thread, i)` for `PER_THREAD` values of `i` on each of `THREADS` threads,
/// released together by a barrier.
fn on_threads(record: impl Fn(u64, u64) + Send + Sync + 'static) {
    let record = Arc::new(record);
    let start = Arc::new(Barrier::new(THREADS as usize));
    let threads: Vec<_> = (0..THREADS)
        .map(|thread| {
            let record = Arc::clone(&record);
            let start = Arc::clone(&start);
            thread::spawn(move || {
                start.wait();
                for i in 0..PER_THREAD {
                    record(thread, i);
                }
            })
        })
        .collect();
    for thread in threads {
        thread.join().expect("recording thread panicked");
    }
}

// ---------------------------------------------------------------------------------------
// Counter
// ---------------------------------------------------------------------------------------

#[test]
fn counter_counts_exactly() {
    let counter = Counter::new("requests");
    assert_eq!(counter.get(), 0);
    counter.inc();
    counter.inc();
    counter.inc_by(40);
    counter.inc_by(0);
    assert_eq!(counter.get(), 42);
    assert_eq!(counter.name(), "requests");
}

#[test]
fn counter_wraps_at_u64_max() {
    let counter = Counter::new("wrapping");
    counter.inc_by(u64::MAX);
    assert_eq!(counter.get(), u64::MAX);
    counter.inc_by(2);
    assert_eq!(counter.get(), 1);
}

#[test]
fn counter_clones_share_the_count() {
    let counter = Counter::new("shared");
    let clone = counter.clone();
    clone.inc_by(5);
    counter.inc();
    assert_eq!(counter.get(), 6);
    assert_eq!(clone.get(), 6);
}

#[test]
fn counter_totals_are_exact_under_contention() {
    let counter = Counter::new("contended");
    let recorder = counter.clone();
    on_threads(move |_, i| {
        if i % 2 == 0 {
            recorder.inc();
        } else {
            recorder.inc_by(3);
        }
    });
    assert_eq!(counter.get(), THREADS * PER_THREAD / 2 * 4);
}

#[test]
fn counter_snapshot_has_one_value_dimension() {
    let counter = Counter::new("requests");
    counter.inc_by(7);
    let snapshot = counter.snapshot();
    assert_eq!(snapshot.name, "requests");
    assert_eq!(snapshot.kind, MetricKind::Counter);
    assert_eq!(dimensions(&snapshot), [("value".to_owned(), Value::U64(7))]);
    let mut collected = Snapshots::new();
    counter.collect(&mut collected);
    assert_eq!(collected.len(), 1);
    assert_eq!(collected["requests"], snapshot);
}

// ---------------------------------------------------------------------------------------
// Gauge
// ---------------------------------------------------------------------------------------

#[test]
fn gauge_sets_adds_and_subtracts_exactly() {
    let gauge = Gauge::new("temperature");
    assert_eq!(gauge.get(), 0.0);
    gauge.set(21.5);
    assert_eq!(gauge.get(), 21.5);
    gauge.add(0.25);
    assert_eq!(gauge.get(), 21.75);
    gauge.sub(1.75);
    assert_eq!(gauge.get(), 20.0);
    gauge.inc();
    gauge.inc();
    gauge.dec();
    assert_eq!(gauge.get(), 21.0);
    gauge.set(-3.0);
    gauge.add(-0.5);
    assert_eq!(gauge.get(), -3.5);
    assert_eq!(gauge.name(), "temperature");
}

#[test]
fn gauge_keeps_non_finite_values_until_set() {
    let gauge = Gauge::new("odd");
    gauge.set(f64::NAN);
    assert!(gauge.get().is_nan());
    gauge.add(1.0);
    assert!(gauge.get().is_nan());
    gauge.set(f64::INFINITY);
    gauge.dec();
    assert_eq!(gauge.get(), f64::INFINITY);
    gauge.set(2.0);
    assert_eq!(gauge.get(), 2.0);
}

#[test]
fn gauge_clones_share_the_value() {
    let gauge = Gauge::new("shared");
    let clone = gauge.clone();
    clone.set(4.0);
    gauge.add(1.0);
    assert_eq!(clone.get(), 5.0);
}

#[test]
fn gauge_totals_are_exact_under_contention() {
    let gauge = Gauge::new("in_flight");
    let recorder = gauge.clone();
    // Every thread adds 2 and subtracts 1 alternately: integers, so f64 stays exact.
    on_threads(move |_, i| {
        if i % 2 == 0 {
            recorder.add(2.0);
        } else {
            recorder.dec();
        }
    });
    assert_eq!(gauge.get(), (THREADS * PER_THREAD / 2) as f64);
}

#[test]
fn gauge_snapshot_has_one_value_dimension() {
    let gauge = Gauge::new("temperature");
    gauge.set(-1.5);
    let snapshot = gauge.snapshot();
    assert_eq!(snapshot.name, "temperature");
    assert_eq!(snapshot.kind, MetricKind::Gauge);
    assert_eq!(
        dimensions(&snapshot),
        [("value".to_owned(), Value::F64(-1.5))]
    );
}

// ---------------------------------------------------------------------------------------
// Histogram
// ---------------------------------------------------------------------------------------

fn latency() -> Histogram {
    Histogram::new("latency", [0.1, 0.5, 1.0]).expect("valid bounds")
}

#[test]
fn histogram_starts_empty() {
    let histogram = latency();
    assert_eq!(histogram.count(), 0);
    assert_eq!(histogram.sum(), 0.0);
    assert_eq!(histogram.nan_count(), 0);
    assert_eq!(
        histogram.buckets(),
        [(0.1, 0), (0.5, 0), (1.0, 0), (f64::INFINITY, 0)]
    );
    assert_eq!(histogram.bounds(), [0.1, 0.5, 1.0]);
    assert_eq!(histogram.name(), "latency");
}

#[test]
fn observation_equal_to_a_bound_lands_in_that_bucket() {
    for (value, expected) in [
        (0.1, [1, 1, 1, 1]),
        (0.5, [0, 1, 1, 1]),
        (1.0, [0, 0, 1, 1]),
    ] {
        let histogram = latency();
        histogram.observe(value);
        let cumulative: Vec<u64> = histogram.buckets().iter().map(|&(_, n)| n).collect();
        assert_eq!(cumulative, expected, "observed {value}");
    }
}

#[test]
fn observation_just_above_a_bound_lands_in_the_next_bucket() {
    let histogram = latency();
    histogram.observe(0.1_f64.next_up());
    histogram.observe(1.0_f64.next_up());
    assert_eq!(
        histogram.buckets(),
        [(0.1, 0), (0.5, 1), (1.0, 1), (f64::INFINITY, 2)]
    );
}

#[test]
fn negative_observations_are_ordinary_values() {
    let histogram = Histogram::new("delta", [-10.0, -1.0, 0.0, 5.0]).expect("valid bounds");
    histogram.observe(-20.0); // below every bound: first bucket
    histogram.observe(-10.0); // equal to the first bound
    histogram.observe(-3.0);
    histogram.observe(-0.0); // equal to 0.0
    histogram.observe(2.0);
    assert_eq!(histogram.count(), 5);
    assert_eq!(histogram.sum(), -31.0);
    assert_eq!(
        histogram.buckets(),
        [
            (-10.0, 2),
            (-1.0, 3),
            (0.0, 4),
            (5.0, 5),
            (f64::INFINITY, 5)
        ]
    );

    // Negative values below positive-only bounds land in the first bucket.
    let histogram = latency();
    histogram.observe(-0.25);
    assert_eq!(histogram.buckets()[0], (0.1, 1));
    assert_eq!(histogram.sum(), -0.25);
}

#[test]
fn nan_is_counted_apart_and_nowhere_else() {
    let histogram = latency();
    histogram.observe(0.3);
    histogram.observe(f64::NAN);
    histogram.observe(-f64::NAN);
    assert_eq!(histogram.nan_count(), 2);
    assert_eq!(histogram.count(), 1);
    assert_eq!(histogram.sum(), 0.3);
    assert_eq!(
        histogram.buckets(),
        [(0.1, 0), (0.5, 1), (1.0, 1), (f64::INFINITY, 1)]
    );
    let snapshot = histogram.snapshot();
    assert_eq!(snapshot.get("nan"), Some(Value::U64(2)));
    assert_eq!(snapshot.get("count"), Some(Value::U64(1)));
    assert_eq!(snapshot.get("le:+Inf"), Some(Value::U64(1)));
}

#[test]
fn infinities_are_observations() {
    let histogram = latency();
    histogram.observe(f64::INFINITY);
    assert_eq!(
        histogram.buckets(),
        [(0.1, 0), (0.5, 0), (1.0, 0), (f64::INFINITY, 1)]
    );
    assert_eq!(histogram.sum(), f64::INFINITY);

    let histogram = latency();
    histogram.observe(f64::NEG_INFINITY);
    assert_eq!(
        histogram.buckets(),
        [(0.1, 1), (0.5, 1), (1.0, 1), (f64::INFINITY, 1)]
    );
    assert_eq!(histogram.sum(), f64::NEG_INFINITY);

    // Both: the sum is NaN, as in every Prometheus client; the counts stay exact.
    histogram.observe(f64::INFINITY);
    assert_eq!(histogram.count(), 2);
    assert!(histogram.sum().is_nan());
    assert_eq!(histogram.nan_count(), 0);
}

#[test]
fn invalid_bucket_lists_are_typed_errors() {
    let error = Histogram::new("h", []).unwrap_err();
    assert!(matches!(&error, RegistryError::EmptyBuckets { name } if name == "h"));
    assert_eq!(error.to_string(), r#"histogram "h" has no bucket bounds"#);

    for (bounds, bad_index) in [
        (vec![f64::NAN], 0),
        (vec![1.0, f64::INFINITY], 1),
        (vec![f64::NEG_INFINITY, 1.0], 0),
        (vec![0.0, 1.0, f64::NAN], 2),
    ] {
        let error = Histogram::new("h", bounds.clone()).unwrap_err();
        match error {
            RegistryError::NonFiniteBucket { index, bound, .. } => {
                assert_eq!(index, bad_index, "{bounds:?}");
                assert_eq!(bound.to_bits(), bounds[bad_index].to_bits());
            }
            other => panic!("{bounds:?}: expected NonFiniteBucket, got {other:?}"),
        }
    }

    for (bounds, bad_index) in [
        (vec![1.0, 1.0], 1),
        (vec![1.0, 0.5], 1),
        (vec![0.0, 1.0, 2.0, 1.5], 3),
        (vec![-0.0, 0.0], 1),
    ] {
        let error = Histogram::new("h", bounds.clone()).unwrap_err();
        match &error {
            RegistryError::UnsortedBuckets {
                index,
                previous,
                bound,
                ..
            } => {
                assert_eq!(*index, bad_index, "{bounds:?}");
                assert_eq!(*previous, bounds[bad_index - 1]);
                assert_eq!(*bound, bounds[bad_index]);
            }
            other => panic!("{bounds:?}: expected UnsortedBuckets, got {other:?}"),
        }
        assert_eq!(error.reason(), ErrorReason::Unexpected);
    }

    let error = Histogram::new("h", [1.0, 0.5]).unwrap_err();
    assert_eq!(
        error.to_string(),
        r#"histogram "h": bucket bound 0.5 at index 1 does not exceed the bound before it, 1"#
    );
}

#[test]
fn histogram_clones_share_state() {
    let histogram = latency();
    let clone = histogram.clone();
    clone.observe(0.2);
    histogram.observe(2.0);
    assert_eq!(clone.count(), 2);
    assert_eq!(histogram.sum(), 2.2);
    assert_eq!(clone.buckets(), histogram.buckets());
}

#[test]
fn histogram_totals_are_exact_under_contention() {
    let histogram = Histogram::new("contended", [0.0, 10.0, 100.0]).expect("valid bounds");
    let recorder = histogram.clone();
    // Thread t records i % 200 + t: integers, so every partial sum is exact in f64. One
    // value in 1000 is NaN.
    on_threads(move |thread, i| {
        if i % 1000 == 999 {
            recorder.observe(f64::NAN);
        } else {
            recorder.observe((i % 200 + thread) as f64);
        }
    });

    let mut expected_buckets = [0_u64; 4];
    let mut expected_sum = 0.0;
    let mut expected_nan = 0;
    for thread in 0..THREADS {
        for i in 0..PER_THREAD {
            if i % 1000 == 999 {
                expected_nan += 1;
                continue;
            }
            let value = (i % 200 + thread) as f64;
            expected_sum += value;
            let bucket = [0.0, 10.0, 100.0]
                .iter()
                .position(|&bound| value <= bound)
                .unwrap_or(3);
            expected_buckets[bucket] += 1;
        }
    }
    let cumulative: Vec<u64> = expected_buckets
        .iter()
        .scan(0, |total, &n| {
            *total += n;
            Some(*total)
        })
        .collect();

    assert_eq!(histogram.count(), THREADS * PER_THREAD - expected_nan);
    assert_eq!(histogram.nan_count(), expected_nan);
    assert_eq!(histogram.sum(), expected_sum);
    assert_eq!(
        histogram.buckets(),
        [
            (0.0, cumulative[0]),
            (10.0, cumulative[1]),
            (100.0, cumulative[2]),
            (f64::INFINITY, cumulative[3]),
        ]
    );
}

#[test]
fn histogram_totals_are_exact_with_more_threads_than_stripes() {
    // Every thread records while all of them are alive, so that some have a stripe of their
    // own and the others share one (there are at most 64 stripes, 8 on a 2-CPU machine).
    const MANY: usize = 72;
    const RECORDS: u64 = 5_000;
    let histogram = Histogram::new("crowded", [1.0, 2.0]).expect("valid bounds");
    let all_alive = Arc::new(Barrier::new(MANY));
    let threads: Vec<_> = (0..MANY)
        .map(|_| {
            let histogram = histogram.clone();
            let all_alive = Arc::clone(&all_alive);
            thread::spawn(move || {
                histogram.observe(1.0);
                all_alive.wait();
                for i in 1..RECORDS {
                    histogram.observe((i % 3) as f64);
                }
                all_alive.wait();
            })
        })
        .collect();
    for thread in threads {
        thread.join().expect("recording thread panicked");
    }
    let many = MANY as u64;
    // Per thread: one 1.0, then i % 3 for i in 1..5000: 1667 ones, 1666 twos, 1666 zeros.
    assert_eq!(histogram.count(), many * RECORDS);
    assert_eq!(histogram.sum(), (many * (1 + 1667 + 2 * 1666)) as f64);
    assert_eq!(
        histogram.buckets(),
        [
            (1.0, many * (1 + 1667 + 1666)),
            (2.0, many * RECORDS),
            (f64::INFINITY, many * RECORDS)
        ]
    );
}

#[test]
fn many_bounds_keep_le_semantics() {
    // Past 32 bounds the bucket is found by binary search rather than a linear count.
    let bounds: Vec<f64> = (1..=100).map(f64::from).collect();
    let histogram = Histogram::new("many", bounds.clone()).expect("valid bounds");
    for value in [0.5, 1.0, 1.5, 33.0, 50.0, 99.99, 100.0, 100.5] {
        histogram.observe(value);
    }
    let buckets = histogram.buckets();
    let cumulative = |bound: f64| {
        buckets
            .iter()
            .find(|&&(b, _)| b == bound)
            .map(|&(_, n)| n)
            .expect("a bound")
    };
    assert_eq!(cumulative(1.0), 2);
    assert_eq!(cumulative(2.0), 3);
    assert_eq!(cumulative(32.0), 3);
    assert_eq!(cumulative(33.0), 4);
    assert_eq!(cumulative(50.0), 5);
    assert_eq!(cumulative(99.0), 5);
    assert_eq!(cumulative(100.0), 7);
    assert_eq!(cumulative(f64::INFINITY), 8);
}

#[test]
fn histogram_snapshot_has_the_documented_dimensions() {
    let histogram = Histogram::new("size", [0.005, 1.0, 2.5, 1000.0]).expect("valid bounds");
    for value in [0.001, 0.005, 2.0, 2.5, 3.0, 5000.0] {
        histogram.observe(value);
    }
    histogram.observe(f64::NAN);
    let snapshot = histogram.snapshot();
    assert_eq!(snapshot.name, "size");
    assert_eq!(snapshot.kind, MetricKind::Histogram);
    let expected: Vec<(String, Value)> = [
        ("count", Value::U64(6)),
        ("le:+Inf", Value::U64(6)),
        ("le:0.005", Value::U64(2)),
        ("le:1", Value::U64(2)),
        ("le:1000", Value::U64(5)),
        ("le:2.5", Value::U64(4)),
        ("nan", Value::U64(1)),
        ("sum", Value::F64(0.001 + 0.005 + 2.0 + 2.5 + 3.0 + 5000.0)),
    ]
    .into_iter()
    .map(|(name, value)| (name.to_owned(), value))
    .collect();
    assert_eq!(dimensions(&snapshot), expected);

    // Every `le:` label parses back to its bound.
    let bounds: Vec<f64> = snapshot
        .dimensions
        .keys()
        .filter_map(|name| name.strip_prefix("le:"))
        .filter(|bound| *bound != "+Inf")
        .map(|bound| bound.parse().expect("a bound"))
        .collect();
    let mut sorted = bounds.clone();
    sorted.sort_by(f64::total_cmp);
    assert_eq!(sorted, histogram.bounds());
}

#[test]
fn default_buckets_are_valid() {
    let histogram = Histogram::new("default", Histogram::DEFAULT_BUCKETS.iter().copied())
        .expect("valid bounds");
    assert_eq!(histogram.bounds().len(), 11);
}

#[test]
fn instruments_are_send_sync_clone_debug() {
    fn check<T: Send + Sync + Clone + std::fmt::Debug + 'static>() {}
    check::<Counter>();
    check::<Gauge>();
    check::<Histogram>();
    check::<Registry>();
    check::<RegistryError>();
    let histogram = latency();
    histogram.observe(0.3);
    assert_eq!(
        format!("{histogram:?}"),
        r#"Histogram { name: "latency", bounds: [0.1, 0.5, 1.0], count: 1, sum: 0.3, nan_count: 0 }"#
    );
    assert_eq!(
        format!("{:?}", Counter::new("c")),
        r#"Counter { name: "c", value: 0 }"#
    );
}
