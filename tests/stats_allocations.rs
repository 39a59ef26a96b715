//! Recording calls with numeric ids do not allocate: proved with a counting global
//! allocator.
//!
//! One test function only, so that no other test of this binary allocates while the
//! overall count is taken.
#![cfg(not(loom))]

use mvx::stats::{ReportTo, Statistics, StatsConfig};

#[path = "support/counting_allocator.rs"]
mod counting_allocator;

use counting_allocator::on_this_thread;

/// Requests recorded in the measured loop; each makes six recording calls.
const REQUESTS: u64 = 50_000;

/// One request: start, a retry, a status code, an error kind, and its end.
fn record(stats: &Statistics, id: u64) {
    stats.record_request_processing_start(id).unwrap();
    if id % 3 == 0 {
        stats.register_retry_error("timeout").unwrap();
        stats.record_request_retry(id).unwrap();
    }
    if id % 5 == 0 {
        stats.register_status_code(503).unwrap();
        stats.register_error("unavailable").unwrap();
        stats.record_request_processing_failure(id).unwrap();
    } else {
        stats.register_status_code(200).unwrap();
        stats.record_request_processing_finish(id).unwrap();
    }
}

#[test]
fn recording_with_numeric_ids_allocates_nothing() {
    // No report: one falling due in the measured loop would allocate its text.
    let (stats, driver) = Statistics::new(StatsConfig::default().report_to(ReportTo::Off)).unwrap();
    let driver = std::thread::spawn(move || futures::executor::block_on(driver));
    stats.start().wait().unwrap();

    // Warm-up: the driver's map of requests in progress and the error-kind keys reach their
    // size; a thread's first blocking wait (a full queue under `Block`) allocates its parker
    // once, kept for the thread's life.
    for id in 0..10_000 {
        record(&stats, id);
    }
    stats.calculate_blocking().unwrap();
    let event = event_listener::Event::new();
    let listener = event.listen();
    assert_eq!(
        event_listener::Listener::wait_deadline(listener, std::time::Instant::now()),
        None
    );

    let before_here = on_this_thread();
    let before_all = counting_allocator::all();
    for id in 10_000..10_000 + REQUESTS {
        record(&stats, id);
    }
    let producer_allocations = on_this_thread() - before_here;
    stats.calculate_blocking().unwrap();
    let overall_allocations = counting_allocator::all() - before_all;
    assert_eq!(
        producer_allocations, 0,
        "a recording call allocated on the caller's thread"
    );
    // The driver parks and wakes with a listener on its stack; the barrier may allocate a
    // listener and calculate() the histogram's copy. Anything per call would show as
    // thousands.
    assert!(
        overall_allocations * 1_000 <= REQUESTS,
        "{overall_allocations} allocations for {REQUESTS} requests overall"
    );

    let figures = stats.calculate_blocking().unwrap();
    let total = 10_000 + REQUESTS;
    assert_eq!(figures.requests_total, total);
    assert_eq!(figures.requests_failed, total / 5);
    assert_eq!(figures.retry_attempts, total.div_ceil(3));
    assert_eq!(figures.requests_retries, total.div_ceil(3));
    stats.stop().wait().unwrap();
    driver.join().unwrap();
}
