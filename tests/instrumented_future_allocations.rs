//! Wrapping a future in `timed`, `count_errors` and `track_in_progress` and running it to
//! completion, or dropping it before (a cancellation), allocates nothing: proved with a
//! counting global allocator.
//!
//! Allocations are counted on the polling thread alone (a thread-local counter), so that
//! nothing else the test harness does is counted.
#![cfg(not(loom))]

use std::future::Future;
use std::hint::black_box;
use std::pin::{Pin, pin};
use std::task::{Context, Poll};

use futures::task::noop_waker;
use mvx::instrument::{self, InstrumentExt};
use mvx::metrics::{Counter, Gauge, Histogram};

#[path = "support/counting_allocator.rs"]
mod counting_allocator;

use counting_allocator::on_this_thread;

/// Pending once, then ready with `output`.
struct YieldOnce<T>(Option<T>, bool);

impl<T: Unpin> Future for YieldOnce<T> {
    type Output = T;
    fn poll(mut self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<T> {
        if !self.1 {
            self.1 = true;
            return Poll::Pending;
        }
        Poll::Ready(self.0.take().expect("polled after completion"))
    }
}

/// Polls `future` to completion with a no-op waker (which allocates nothing).
fn run<F: Future>(future: F) -> F::Output {
    let waker = noop_waker();
    let mut cx = Context::from_waker(&waker);
    let mut future = pin!(future);
    loop {
        if let Poll::Ready(output) = future.as_mut().poll(&mut cx) {
            return output;
        }
    }
}

const CALLS: u64 = 20_000;

#[test]
fn wrapped_calls_allocate_nothing() {
    let latency = Histogram::new("call.seconds", [0.001, 0.01, 0.1]).expect("valid bounds");
    let errors = Counter::new("call.errors");
    let in_progress = Gauge::new("call.in_progress");

    // Warm-up: the first observation assigns this thread its histogram stripe.
    latency.observe(0.0);

    let before = on_this_thread();
    let mut failed = 0;
    for i in 0..CALLS {
        let output = if i % 3 == 0 { Err(i) } else { Ok(i) };
        let call = YieldOnce(Some(black_box(output)), false);
        let result = if i % 2 == 0 {
            run(call
                .track_in_progress(&in_progress)
                .count_errors(&errors)
                .timed(&latency))
        } else {
            run(instrument::timed(
                &latency,
                instrument::count_errors_if(
                    &errors,
                    instrument::track_in_progress(&in_progress, call),
                    |error: &u64| black_box(*error) < u64::MAX,
                ),
            ))
        };
        failed += u64::from(result.is_err());
        // An early drop, after a first poll.
        {
            let waker = noop_waker();
            let mut cx = Context::from_waker(&waker);
            let mut abandoned = pin!(
                std::future::pending::<Result<(), u64>>()
                    .track_in_progress(&in_progress)
                    .count_errors(&errors)
                    .timed(&latency)
            );
            assert!(abandoned.as_mut().poll(&mut cx).is_pending());
        }
    }
    let allocations = on_this_thread() - before;
    assert_eq!(allocations, 0, "{allocations} allocations in {CALLS} calls");

    // Every call and every abandoned future is timed; each abandoned one is a cancellation,
    // which `count_errors` counts.
    assert_eq!(latency.count(), 1 + 2 * CALLS);
    assert_eq!(errors.get(), failed + CALLS);
    assert_eq!(failed, CALLS.div_ceil(3));
    assert_eq!(in_progress.get(), 0.0);
    // The counting allocator does see allocations.
    let before = on_this_thread();
    black_box(Box::new(black_box(1u64)));
    assert!(on_this_thread() > before);
}
