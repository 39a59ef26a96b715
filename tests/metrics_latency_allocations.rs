//! Recording into a `LatencyHistogram` does not allocate, once the recording thread's
//! stripe exists: proved with a counting global allocator; and that stripe is the memory the
//! type docs state per recording thread.
//!
//! Allocations are counted on the recording thread alone (a
//! thread-local counter), so that nothing else the test harness does is counted.
#![cfg(not(loom))]

use std::hint::black_box;
use std::time::Duration;

use mvx::metrics::LatencyHistogram;

#[path = "support/counting_allocator.rs"]
mod counting_allocator;

use counting_allocator::{bytes_on_this_thread, on_this_thread};

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

#[test]
fn a_recording_thread_takes_the_memory_the_docs_state() {
    let latency = LatencyHistogram::new("memory.latency");
    let stripe = std::thread::scope(|scope| {
        scope
            .spawn(|| {
                let (allocations, bytes) = (on_this_thread(), bytes_on_this_thread());
                latency.record_nanos(1);
                (
                    on_this_thread() - allocations,
                    bytes_on_this_thread() - bytes,
                )
            })
            .join()
            .expect("recorded")
    });
    // One allocation: 4,608 counts of 8 bytes and 256 bytes of padding.
    assert_eq!(stripe, (1, 37_120));
    assert_eq!(latency.bytes_per_thread(), 37_120);

    // The same counts as the `hdrhistogram` crate's histogram of the same range and
    // 2 significant digits.
    let hdr =
        hdrhistogram::Histogram::<u64>::new_with_bounds(1, 3_600_000_000_000, 2).expect("valid");
    assert_eq!(hdr.distinct_values() * 8, 36_864);
    assert_eq!(latency.bytes_per_thread() - 256, 36_864);

    // A read copies the counts: one allocation of 36,864 bytes.
    let (allocations, bytes) = (on_this_thread(), bytes_on_this_thread());
    let distribution = latency.distribution();
    assert_eq!(
        (
            on_this_thread() - allocations,
            bytes_on_this_thread() - bytes
        ),
        (1, 36_864)
    );
    assert_eq!(distribution.count(), 1);
}
