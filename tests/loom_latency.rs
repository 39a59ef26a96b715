//! loom models of `LatencyHistogram`'s intervals and resets against racing records: the
//! counts of a histogram only grow, and an interval (or a read after a reset) is the
//! difference of two reads, so every record lands in exactly one interval.
//!
//! What the models check, in every interleaving loom explores (relaxed loads seeing any
//! store they may see):
//! - the intervals taken while two threads record — one into a stripe it owns (a plain
//!   load and store per word), one into the shared stripe (read-modify-writes) — add up,
//!   sub-bucket by sub-bucket, to every record, with the sums and the clamped count: no
//!   record is lost or counted twice;
//! - after a reset racing with records, the reads are the intervals taken since, and
//!   the records discarded plus those kept are every record.
//!
//! Each model thread records into a stripe given to it (`mvx::__loom`): loom runs its
//! threads on one OS thread, whose thread-local stripe number they would share.
//!
//! Run with `RUSTFLAGS="--cfg loom" cargo test --profile loom --no-default-features
//! --features thread --test loom_latency` (see `.ci/run`); `LOOM_MAX_PREEMPTIONS` overrides
//! each model's preemption bound.
#![cfg(loom)]

#[path = "support/loom_harness.rs"]
mod loom_harness;

use std::time::Duration;

use loom::thread;

use mvx::__loom::record_latency_in_stripe;
use mvx::metrics::{LatencyConfig, LatencyDistribution, LatencyHistogram};

use loom_harness::model;

/// The shared stripe, which threads without a stripe of their own record into.
const SHARED: usize = 0;

/// A histogram with few sub-buckets (1 ns to 64 ns, 50 %), so that a read is a few loads.
fn histogram() -> LatencyHistogram {
    let config = LatencyConfig::default()
        .range(Duration::from_nanos(1), Duration::from_nanos(64))
        .relative_error(0.5);
    LatencyHistogram::with_config("latency", config).expect("valid")
}

/// `(highest value, count)` of each recorded sub-bucket.
fn buckets(distribution: &LatencyDistribution) -> Vec<(u128, u64)> {
    distribution
        .recorded()
        .map(|bucket| (bucket.highest.as_nanos(), bucket.count))
        .collect()
}

/// Two recording threads: one owning stripe 1, one on the shared stripe; each records
/// `values`. Returns their handles.
fn record_on_two_threads(
    latency: &LatencyHistogram,
    values: [u64; 2],
) -> Vec<thread::JoinHandle<()>> {
    [1, SHARED]
        .into_iter()
        .map(|stripe| {
            let latency = latency.clone();
            thread::spawn(move || {
                for value in values {
                    record_latency_in_stripe(&latency, stripe, value);
                }
            })
        })
        .collect()
}

#[test]
fn intervals_taken_while_threads_record_add_up_to_every_record() {
    model(2, || {
        let latency = histogram();
        // 3 ns exactly; 100 ns above the range, clamped to 64 ns (in the sub-bucket 64 to 95).
        let writers = record_on_two_threads(&latency, [3, 100]);
        let mut total = latency.take_interval();
        total.merge(&latency.take_interval());
        for writer in writers {
            writer.join().expect("writer ran");
        }
        total.merge(&latency.take_interval());

        assert_eq!(buckets(&total), [(3, 2), (95, 2)]);
        assert_eq!(total.count(), 4);
        assert_eq!(total.clamped(), 2);
        assert_eq!(total.sum_nanos(), 2 * (3 + 64));
        assert_eq!(total, latency.distribution());
    });
}

#[test]
fn a_reset_racing_with_records_keeps_or_discards_each_one_whole() {
    model(2, || {
        let latency = histogram();
        let writers = record_on_two_threads(&latency, [3, 9]);
        let before = latency.take_interval();
        latency.reset();
        let after = latency.take_interval();
        for writer in writers {
            writer.join().expect("writer ran");
        }
        let rest = latency.take_interval();
        let kept = latency.distribution();

        // What the reads see since the reset is what the intervals since took.
        let mut since = after;
        since.merge(&rest);
        assert_eq!(since, kept);
        // No record is both discarded and kept: what was taken before the reset is among
        // the discarded, so it and the kept records are at most every record, and at most
        // the two records of each value.
        let mut seen = before;
        seen.merge(&kept);
        assert!(seen.count() <= 4, "{seen:?}");
        for (value, count) in buckets(&seen) {
            assert!(count <= 2, "{value} ns counted {count} times");
        }
        assert!(kept.sum_nanos() <= 2 * (3 + 9));
    });
}
