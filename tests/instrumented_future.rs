//! Future instrumentation: `timed`, `count_errors` and `track_in_progress` under tokio, smol
//! and `futures`, on success, error, panic and early drop (a cancellation), with
//! prometheus_async's semantics: what its `finally` and `except` do, mvx does on completion,
//! panic and drop (`instrumented_future_prometheus_async.rs` runs both side by side).
#![cfg(not(loom))]

use std::future::Future;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use futures::FutureExt;
use futures::task::noop_waker;
use mvx::BoxError;
use mvx::instrument::{self, InstrumentExt, WithCancellation};
use mvx::metrics::{Counter, Gauge, Histogram};

fn instruments() -> (Histogram, Counter, Gauge) {
    (
        Histogram::new("call.seconds", [0.001, 0.1, 10.0]).expect("valid bounds"),
        Counter::new("call.errors"),
        Gauge::new("call.in_progress"),
    )
}

/// Pending `polls` times (waking itself each time), then ready with `output`.
struct YieldThen<T> {
    polls: u32,
    output: Option<T>,
}

fn yield_then<T>(polls: u32, output: T) -> YieldThen<T> {
    YieldThen {
        polls,
        output: Some(output),
    }
}

impl<T: Unpin> Future for YieldThen<T> {
    type Output = T;
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<T> {
        if self.polls == 0 {
            return Poll::Ready(self.output.take().expect("polled after completion"));
        }
        self.polls -= 1;
        cx.waker().wake_by_ref();
        Poll::Pending
    }
}

/// Runs one call through all three adapters, checking the gauge while it is in flight.
async fn instrumented_call(
    (latency, errors, in_progress): &(Histogram, Counter, Gauge),
    output: Result<u32, &'static str>,
) -> Result<u32, &'static str> {
    let gauge = in_progress.clone();
    async move {
        assert!(gauge.get() >= 1.0, "in progress while running");
        yield_then(3, output).await
    }
    .track_in_progress(in_progress)
    .count_errors(errors)
    .timed(latency)
    .await
}

fn assert_recorded(instruments: &(Histogram, Counter, Gauge), calls: u64, errors: u64) {
    let (latency, error_count, in_progress) = instruments;
    assert_eq!(latency.count(), calls);
    assert_eq!(error_count.get(), errors);
    assert_eq!(in_progress.get(), 0.0);
    assert!(latency.sum() >= 0.0);
}

#[test]
fn records_under_futures_block_on() {
    let instruments = instruments();
    futures::executor::block_on(async {
        assert_eq!(instrumented_call(&instruments, Ok(1)).await, Ok(1));
        assert_eq!(instrumented_call(&instruments, Err("no")).await, Err("no"));
    });
    assert_recorded(&instruments, 2, 1);
}

#[test]
fn records_under_a_futures_thread_pool() {
    let instruments = instruments();
    let pool = futures::executor::ThreadPool::builder()
        .pool_size(2)
        .create()
        .expect("thread pool");
    let handles: Vec<_> = (0..20u32)
        .map(|i| {
            let instruments = instruments.clone();
            let output = if i % 4 == 0 { Err("no") } else { Ok(i) };
            let (task, handle) =
                async move { instrumented_call(&instruments, output).await }.remote_handle();
            pool.spawn_ok(task);
            handle
        })
        .collect();
    let outputs = futures::executor::block_on(futures::future::join_all(handles));
    assert_eq!(outputs.iter().filter(|output| output.is_err()).count(), 5);
    assert_recorded(&instruments, 20, 5);
}

#[test]
fn records_under_tokio() {
    let instruments = instruments();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .build()
        .expect("tokio runtime");
    runtime.block_on(async {
        let tasks: Vec<_> = (0..10u32)
            .map(|i| {
                let instruments = instruments.clone();
                let output = if i % 5 == 0 { Err("no") } else { Ok(i) };
                tokio::spawn(async move { instrumented_call(&instruments, output).await })
            })
            .collect();
        let mut failed = 0;
        for task in tasks {
            failed += usize::from(task.await.expect("task ran").is_err());
        }
        assert_eq!(failed, 2);
    });
    assert_recorded(&instruments, 10, 2);
}

#[test]
fn records_under_smol() {
    let instruments = instruments();
    let executor = smol::Executor::new();
    smol::block_on(executor.run(async {
        let tasks: Vec<_> = (0..10u32)
            .map(|i| {
                let instruments = instruments.clone();
                let output = if i % 2 == 0 { Err("no") } else { Ok(i) };
                executor.spawn(async move { instrumented_call(&instruments, output).await })
            })
            .collect();
        for task in tasks {
            let _ = task.await;
        }
    }));
    assert_recorded(&instruments, 10, 5);
}

/// As prometheus_async's `time(metric, future)`: the clock starts when the future is wrapped.
#[test]
fn timed_starts_its_clock_when_the_future_is_wrapped() {
    let latency = Histogram::new("wait.seconds", [0.01, 60.0]).expect("valid bounds");
    let before = Instant::now();
    let future = async {}.timed(&latency);
    std::thread::sleep(Duration::from_millis(20));
    futures::executor::block_on(future);
    let outer = before.elapsed().as_secs_f64();
    assert_eq!(latency.count(), 1);
    // The time before the first poll counts; at most the time since it was wrapped.
    assert!(latency.sum() >= 0.02, "{}", latency.sum());
    assert!(latency.sum() <= outer, "{} > {outer}", latency.sum());
    assert_eq!(latency.buckets()[0], (0.01, 0));
}

/// As prometheus_async's decorator form, which starts the clock when the call starts
/// running: wrap inside the `async` block, which runs at its first poll.
#[test]
fn timed_inside_an_async_block_starts_its_clock_at_the_first_poll() {
    let latency = Histogram::new("work.seconds", [0.01, 60.0]).expect("valid bounds");
    let call = async { async {}.timed(&latency).await };
    std::thread::sleep(Duration::from_millis(20));
    let polled = Instant::now();
    futures::executor::block_on(call);
    let since_polled = polled.elapsed().as_secs_f64();
    assert_eq!(latency.count(), 1);
    assert!(
        latency.sum() <= since_polled,
        "{} > {since_polled}",
        latency.sum()
    );
}

#[test]
fn count_errors_if_counts_only_matching_errors() {
    let io_errors = Counter::new("io.errors");
    let is_io = |error: &BoxError| error.is::<std::io::Error>();
    futures::executor::block_on(async {
        for i in 0..6 {
            let output: Result<(), BoxError> = match i % 3 {
                0 => Ok(()),
                1 => Err(std::io::Error::other("disk").into()),
                _ => Err("parse".into()),
            };
            let _ = async { output }.count_errors_if(&io_errors, is_io).await;
        }
    });
    assert_eq!(io_errors.get(), 2);

    // A closure over the error value, and the function form.
    let big = Counter::new("big.errors");
    futures::executor::block_on(async {
        for value in [1u32, 50, 500, 5_000] {
            let _ =
                instrument::count_errors_if(&big, async move { Err::<(), _>(value) }, |v: &u32| {
                    *v >= 100
                })
                .await;
        }
    });
    assert_eq!(big.get(), 2);
}

/// A panic is the exception that unwinds: prometheus_async's `finally` observes, its `except`
/// counts, and the gauge is given back.
#[test]
fn a_panic_is_counted_timed_and_gives_the_gauge_back() {
    let (latency, errors, in_progress) = instruments();
    let mut future = Box::pin(
        async {
            yield_then(1, ()).await;
            panic!("boom");
            #[allow(unreachable_code)]
            Ok::<(), &str>(())
        }
        .track_in_progress(&in_progress)
        .count_errors(&errors)
        .timed(&latency),
    );
    let waker = noop_waker();
    let mut cx = Context::from_waker(&waker);
    assert!(future.as_mut().poll(&mut cx).is_pending());
    assert_eq!(in_progress.get(), 1.0);
    let unwound = catch_unwind(AssertUnwindSafe(|| future.as_mut().poll(&mut cx)));
    let payload = unwound.expect_err("the panic unwinds through the adapters");
    assert_eq!(payload.downcast_ref::<&str>(), Some(&"boom"));
    // Counted, timed and given back at once, while the panic unwinds (before the drop).
    assert_eq!(errors.get(), 1);
    assert_eq!(latency.count(), 1);
    assert_eq!(in_progress.get(), 0.0);
    drop(future);
    assert_eq!(
        (errors.get(), latency.count(), in_progress.get()),
        (1, 1, 0.0),
        "the drop after the panic records nothing twice"
    );
}

#[test]
fn a_panic_inside_a_spawned_task_is_counted_under_tokio() {
    let errors = Counter::new("task.errors");
    let in_progress = Gauge::new("task.in_progress");
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("tokio runtime");
    let seen = in_progress.clone();
    let task = async move {
        tokio::task::yield_now().await;
        if seen.get() > 0.0 {
            panic!("task failed");
        }
        Ok::<(), ()>(())
    }
    .track_in_progress(&in_progress)
    .count_errors(&errors);
    let joined = runtime.block_on(async { tokio::spawn(task).await });
    assert!(joined.expect_err("the task panicked").is_panic());
    assert_eq!(errors.get(), 1);
    assert_eq!(in_progress.get(), 0.0);
}

/// A drop after the first poll is the Rust cancellation: prometheus_async observes it in
/// `finally` and counts the `CancelledError` its default filter (`BaseException`) admits.
#[test]
fn a_dropped_future_is_cancelled_timed_counted_and_gives_the_gauge_back() {
    let (latency, errors, in_progress) = instruments();
    let mut future = Box::pin(
        yield_then(10, Err::<(), &str>("never seen"))
            .track_in_progress(&in_progress)
            .count_errors(&errors)
            .timed(&latency),
    );
    let waker = noop_waker();
    let mut cx = Context::from_waker(&waker);
    assert!(future.as_mut().poll(&mut cx).is_pending());
    assert!(future.as_mut().poll(&mut cx).is_pending());
    assert_eq!(in_progress.get(), 1.0, "+1 once, however many polls");
    assert_eq!(
        (errors.get(), latency.count()),
        (0, 0),
        "nothing until it ends"
    );
    drop(future);
    assert_eq!(in_progress.get(), 0.0);
    assert_eq!(errors.get(), 1);
    assert_eq!(latency.count(), 1);
}

/// A filter over the error values, like prometheus_async's `exc=Exception` or any narrower
/// class, does not admit the cancellation; `WithCancellation` makes it.
#[test]
fn a_filter_counts_the_cancellation_only_with_cancellation() {
    let waker = noop_waker();
    let mut cx = Context::from_waker(&waker);
    let mut counted_on_drop = |filtered: &Counter, with_cancellation: &Counter| {
        let mut filtered_call = Box::pin(
            yield_then(1, Err::<(), u32>(7)).count_errors_if(filtered, |error: &u32| *error > 5),
        );
        let mut cancelled_too = Box::pin(yield_then(1, Err::<(), u32>(7)).count_errors_if(
            with_cancellation,
            WithCancellation(|error: &u32| *error > 5),
        ));
        assert!(filtered_call.as_mut().poll(&mut cx).is_pending());
        assert!(cancelled_too.as_mut().poll(&mut cx).is_pending());
        drop(filtered_call);
        drop(cancelled_too);
        (filtered.get(), with_cancellation.get())
    };
    let filtered = Counter::new("filtered.errors");
    let with_cancellation = Counter::new("cancelled.too");
    assert_eq!(counted_on_drop(&filtered, &with_cancellation), (0, 1));

    // Completed, both count the errors they admit and only those.
    futures::executor::block_on(async {
        for value in [1u32, 7] {
            let _ = yield_then(1, Err::<(), u32>(value))
                .count_errors_if(&filtered, |error: &u32| *error > 5)
                .await;
            let _ = yield_then(1, Err::<(), u32>(value))
                .count_errors_if(
                    &with_cancellation,
                    WithCancellation(|error: &u32| *error > 5),
                )
                .await;
        }
    });
    assert_eq!((filtered.get(), with_cancellation.get()), (1, 2));
}

/// As prometheus_async's `track_inprogress(metric, future)`: +1 when wrapped. Unlike its
/// coroutine, which is never closed if never awaited, a future dropped unpolled gives the
/// +1 back.
#[test]
fn track_in_progress_counts_from_when_the_future_is_wrapped() {
    let in_progress = Gauge::new("wrapped.in_progress");
    let first = yield_then(1, ()).track_in_progress(&in_progress);
    let second = yield_then(1, ()).track_in_progress(&in_progress);
    assert_eq!(in_progress.get(), 2.0);
    futures::executor::block_on(first);
    assert_eq!(in_progress.get(), 1.0);
    drop(second);
    assert_eq!(in_progress.get(), 0.0);
}

/// A future never polled never entered its `try`: no time observed, nothing counted (a
/// prometheus_async coroutine never awaited runs neither its `finally` nor its `except`).
#[test]
fn a_future_never_polled_is_neither_timed_nor_counted() {
    let (latency, errors, in_progress) = instruments();
    let future = instrument::timed(
        &latency,
        instrument::count_errors(
            &errors,
            instrument::track_in_progress(&in_progress, async { Err::<(), ()>(()) }),
        ),
    );
    assert_eq!(in_progress.get(), 1.0);
    drop(future);
    assert_eq!(
        (latency.count(), errors.get(), in_progress.get()),
        (0, 0, 0.0)
    );
}

#[test]
fn a_timeout_that_cancels_the_future_has_it_timed_and_counted() {
    let (latency, errors, in_progress) = instruments();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .expect("tokio runtime");
    let outcome = runtime.block_on(async {
        tokio::time::timeout(
            Duration::from_millis(10),
            futures::future::pending::<Result<(), ()>>()
                .track_in_progress(&in_progress)
                .count_errors(&errors)
                .timed(&latency),
        )
        .await
    });
    assert!(outcome.is_err(), "timed out");
    assert_eq!(latency.count(), 1);
    assert!(latency.sum() >= 0.01, "{}", latency.sum());
    assert_eq!(errors.get(), 1);
    assert_eq!(in_progress.get(), 0.0);
}

#[test]
fn concurrent_calls_are_all_in_progress_at_once() {
    let in_progress = Gauge::new("concurrent.in_progress");
    let waker = noop_waker();
    let mut cx = Context::from_waker(&waker);
    let mut futures: Vec<_> = (0..5)
        .map(|_| Box::pin(yield_then(1, ()).track_in_progress(&in_progress)))
        .collect();
    for future in &mut futures {
        assert!(future.as_mut().poll(&mut cx).is_pending());
    }
    assert_eq!(in_progress.get(), 5.0);
    for future in &mut futures {
        assert!(future.as_mut().poll(&mut cx).is_ready());
    }
    assert_eq!(in_progress.get(), 0.0);
}
