//! Recording into an instrument does not allocate: proved with a counting global allocator.
//!
//! One test function only, and allocations are counted on the recording thread alone (a
//! thread-local counter), so that nothing else the test harness does is counted.
#![cfg(not(loom))]

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::hint::black_box;

use mvx::metrics::{Counter, Gauge, Histogram};

struct Counting;

thread_local! {
    static ON_THIS_THREAD: Cell<u64> = const { Cell::new(0) };
}

fn count_one() {
    let _ = ON_THIS_THREAD.try_with(|count| count.set(count.get() + 1));
}

// SAFETY: every call is forwarded unchanged to the system allocator; counting touches only a
// const-initialized thread-local `Cell`, which never allocates.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        count_one();
        // SAFETY: forwarded unchanged to the system allocator.
        unsafe { System.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        count_one();
        // SAFETY: forwarded unchanged to the system allocator.
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: forwarded unchanged to the system allocator.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        count_one();
        // SAFETY: forwarded unchanged to the system allocator.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

fn on_this_thread() -> u64 {
    ON_THIS_THREAD.with(Cell::get)
}

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
