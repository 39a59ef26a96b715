//! Recording into an instrument does not allocate: proved with a counting global allocator.
//!
//! One test function only, and allocations are counted on the recording thread alone (a
//! thread-local counter), so that nothing else the test harness does is counted.
#![cfg(not(loom))]

use std::hint::black_box;

use mvx::metrics::{Counter, Gauge, Histogram};

#[path = "support/counting_allocator.rs"]
mod counting_allocator;

use counting_allocator::on_this_thread;

const RECORDS: u64 = 100_000;

#[test]
fn recording_allocates_nothing_after_warm_up() {
    // Construction allocates (the shared state, the name, the stripes): not counted.
    let counter = Counter::new("allocations.counter");
    let gauge = Gauge::new("allocations.gauge");
    let histogram =
        Histogram::new("allocations.histogram", [0.001, 0.01, 0.1, 1.0, 10.0]).expect("valid");

    // Warm-up: the first observation assigns this thread its histogram stripe.
    counter.inc();
    gauge.set(0.0);
    histogram.observe(0.0);

    let before = on_this_thread();
    for i in 0..RECORDS {
        let value = black_box(i as f64 * 0.0007 - 5.0);
        counter.inc();
        counter.inc_by(black_box(2));
        gauge.set(value);
        gauge.add(1.0);
        gauge.sub(0.5);
        gauge.inc();
        gauge.dec();
        histogram.observe(value);
        if i % 1000 == 0 {
            histogram.observe(f64::NAN);
            histogram.observe(f64::INFINITY);
        }
    }
    let allocations = on_this_thread() - before;
    assert_eq!(
        allocations, 0,
        "{allocations} allocations in {RECORDS} rounds of inc, set, add, observe"
    );

    // The records happened (and the counting allocator does see allocations).
    assert_eq!(counter.get(), 1 + 3 * RECORDS);
    assert_eq!(histogram.count(), 1 + RECORDS + RECORDS / 1000);
    assert_eq!(histogram.nan_count(), RECORDS / 1000);
    let before = on_this_thread();
    let snapshot = black_box(histogram.snapshot());
    assert!(on_this_thread() > before);
    assert_eq!(snapshot.dimensions.len(), 9);
}
