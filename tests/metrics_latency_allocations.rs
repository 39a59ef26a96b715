//! Recording into a `LatencyHistogram` does not allocate, once the recording thread's
//! stripe exists: proved with a counting global allocator.
//!
//! One test function only, and allocations are counted on the recording thread alone (a
//! thread-local counter), so that nothing else the test harness does is counted.
#![cfg(not(loom))]

use std::hint::black_box;
use std::time::Duration;

use mvx::metrics::LatencyHistogram;

#[path = "support/counting_allocator.rs"]
mod counting_allocator;

use counting_allocator::on_this_thread;

const RECORDS: u64 = 100_000;

#[test]
fn recording_allocates_nothing_after_the_first_record() {
    // Construction allocates (the shared state, the name, the stripe slots): not counted.
    let latency = LatencyHistogram::new("allocations.latency");

    // The first record of this thread allocates its stripe.
    let before = on_this_thread();
    latency.record_nanos(1);
    assert_eq!(on_this_thread() - before, 1, "one stripe");

    let interval = Duration::from_micros(10);
    let mut expected = 1;
    let before = on_this_thread();
    for i in 0..RECORDS {
        let nanos = black_box(i.wrapping_mul(2_654_435_761) % 10_000_000_000);
        latency.record_nanos(nanos);
        latency.record(Duration::from_nanos(nanos));
        latency.record_n(Duration::from_nanos(nanos), black_box(3));
        latency.record_secs(nanos as f64 / 1e9);
        if i % 1000 == 0 {
            latency.record_secs(f64::NAN);
            latency.record_secs(-1.0);
            latency.record(Duration::MAX);
            latency.record_corrected(Duration::from_nanos(nanos), interval);
            // Duration::MAX, and the corrected value with the values it stands for.
            let interval = interval.as_nanos() as u64;
            expected += 2 + (nanos / interval).saturating_sub(1);
        }
        expected += 6;
    }
    let allocations = on_this_thread() - before;
    assert_eq!(
        allocations, 0,
        "{allocations} allocations in {RECORDS} rounds of record_nanos, record, record_n, record_secs"
    );

    // The records happened (and the counting allocator does see allocations).
    let before = on_this_thread();
    let distribution = black_box(latency.distribution());
    assert!(on_this_thread() > before);
    assert_eq!(distribution.refused(), 2 * RECORDS / 1000);
    assert_eq!(distribution.clamped(), RECORDS / 1000);
    assert_eq!(distribution.count(), expected);
}
