//! Request statistics: recording from many threads with exact totals, the `calculate()`
//! barrier, refusals outside collection, reset, the lifecycle under several executors, and
//! a property test of `calculate()` against a reference computation.
#![cfg(not(loom))]

use std::collections::HashMap;
use std::time::{Duration, Instant};

use futures::executor::{LocalPool, block_on};
use futures::task::SpawnExt;
use mvx::error::SinkError;
use mvx::queue::OverflowPolicy;
use mvx::sink::SinkConfig;
use mvx::stats::{FinalStatistics, Statistics, StatsConfig, StatsError};
use mvx::{ErrorReason, State};
use proptest::prelude::*;

#[path = "support/watchdog.rs"]
mod watchdog;

use watchdog::{GUARD, within_guard};

/// Started statistics with their driver on a thread of its own.
fn running(config: StatsConfig) -> (Statistics, std::thread::JoinHandle<()>) {
    let (stats, driver) = Statistics::new(config).unwrap();
    let driver = std::thread::spawn(move || block_on(driver));
    stats.start().wait().unwrap();
    (stats, driver)
}

const THREADS: u64 = 4;
const PER_THREAD: u64 = 5_000;

#[test]
fn four_threads_recording_give_exact_totals() {
    within_guard(|| {
        let (stats, driver) = running(StatsConfig::default());
        std::thread::scope(|scope| {
            for thread in 0..THREADS {
                let stats = stats.clone();
                scope.spawn(move || {
                    for n in 0..PER_THREAD {
                        let id = thread * PER_THREAD + n;
                        stats.record_request_processing_start(id).unwrap();
                        if n % 10 == 0 {
                            stats.register_retry_error("timeout").unwrap();
                            stats.record_request_retry(id).unwrap();
                        }
                        if n % 4 == 0 {
                            stats.register_status_code(500).unwrap();
                            stats.register_error("server error").unwrap();
                            stats.record_request_processing_failure(id).unwrap();
                        } else {
                            stats.register_status_code(200).unwrap();
                            stats.record_request_processing_finish(id).unwrap();
                        }
                    }
                });
            }
        });
        // Every call above happened before this one: the barrier sees them all.
        let figures = stats.calculate_blocking().unwrap();
        let total = THREADS * PER_THREAD;
        let failed = THREADS * PER_THREAD.div_ceil(4);
        let retried = THREADS * PER_THREAD.div_ceil(10);
        assert_eq!(figures.requests_total, total);
        assert_eq!(figures.requests_failed, failed);
        assert_eq!(figures.requests_finished, total - failed);
        assert_eq!(figures.retry_attempts, retried);
        assert_eq!(figures.requests_retries, retried, "each retried once");
        assert_eq!(figures.requests_in_progress, 0);
        assert_eq!(figures.retry_histogram, vec![total - retried, retried]);
        let state = stats.state();
        assert_eq!(state.requests_with_status_code[&200], total - failed);
        assert_eq!(state.requests_with_status_code[&500], failed);
        assert_eq!(state.errors["server error"], failed);
        assert_eq!(state.retry_errors["timeout"], retried);
        assert_eq!(state.requests_unmatched, 0);
        let queue = stats.queue_stats();
        assert_eq!(queue.accepted, queue.delivered);
        assert_eq!(queue.dropped, 0);
        stats.stop().wait().unwrap();
        driver.join().unwrap();
        assert_eq!(stats.lifecycle_state(), State::Stopped);
    });
}

#[test]
fn recording_outside_collection_is_refused_and_counts_nothing() {
    within_guard(|| {
        let (stats, driver) = Statistics::new(StatsConfig::default()).unwrap();
        let refused = stats.record_request_processing_start(1u64).unwrap_err();
        assert!(matches!(
            refused,
            StatsError::NotRecording {
                state: State::Virgin
            }
        ));
        assert_eq!(refused.reason(), ErrorReason::InvalidState);
        assert_eq!(
            refused.to_string(),
            "statistics are not collecting while VIRGIN"
        );
        assert!(!stats.is_active());

        let driver = std::thread::spawn(move || block_on(driver));
        stats.start().wait().unwrap();
        assert!(stats.is_active());
        stats.record_request_processing_start("a").unwrap();
        stats.record_request_processing_finish("a").unwrap();
        stats.stop().wait().unwrap();
        driver.join().unwrap();

        let refused = stats.register_status_code(200).unwrap_err();
        assert!(matches!(
            refused,
            StatsError::NotRecording {
                state: State::Stopped
            }
        ));
        let figures = stats.calculate_blocking().unwrap();
        assert_eq!(figures.requests_finished, 1);
        assert!(stats.state().requests_with_status_code.is_empty());

        // A second stop, and a start after the stop, are lifecycle errors.
        let again = stats.stop().wait().unwrap_err();
        assert!(matches!(
            again,
            StatsError::Recorder(SinkError::InvalidState {
                actual: State::Stopped,
                ..
            })
        ));
        assert_eq!(
            stats.start().wait().unwrap_err().reason(),
            ErrorReason::InvalidState
        );
    });
}

#[test]
fn a_full_queue_under_raise_error_hands_back_an_overflow() {
    // The driver is never polled: the one slot stays taken.
    let config = StatsConfig::default().sink(
        SinkConfig::default()
            .queue_capacity(1)
            .overflow(OverflowPolicy::RaiseError),
    );
    let (stats, _driver) = Statistics::new(config).unwrap();
    let _start = stats.start();
    stats.register_status_code(200).unwrap();
    let overflow = stats.register_status_code(200).unwrap_err();
    assert!(matches!(overflow, StatsError::QueueOverflow));
    assert_eq!(overflow.reason(), ErrorReason::QueueOverflow);
}

#[test]
fn ends_of_unknown_requests_are_counted_apart() {
    within_guard(|| {
        let (stats, driver) = running(StatsConfig::default());
        stats.record_request_processing_finish(404u64).unwrap();
        stats
            .record_request_processing_failure(String::from("gone"))
            .unwrap();
        stats.record_request_processing_start(1u64).unwrap();
        let figures = stats.calculate_blocking().unwrap();
        assert_eq!(figures.requests_total, 0);
        assert_eq!(figures.requests_in_progress, 1);
        assert_eq!(stats.state().requests_unmatched, 2);
        stats.stop().wait().unwrap();
        driver.join().unwrap();
    });
}

#[test]
fn reset_clears_every_count_and_collection_goes_on() {
    within_guard(|| {
        let (stats, driver) = running(StatsConfig::default());
        for id in 0..10u64 {
            stats.record_request_processing_start(id).unwrap();
            stats.register_status_code(200).unwrap();
        }
        for id in 0..5u64 {
            stats.record_request_processing_finish(id).unwrap();
        }
        stats.reset_blocking().unwrap();
        let figures = stats.calculate_blocking().unwrap();
        assert_eq!(figures.requests_total, 0);
        assert_eq!(
            figures.requests_in_progress, 0,
            "in-progress requests forgotten"
        );
        let state = stats.state();
        assert!(state.requests_with_status_code.is_empty());
        assert!(state.crawler_started_at.is_some(), "still collecting");

        // The requests started before the reset are unknown to it now.
        stats.record_request_processing_finish(7u64).unwrap();
        stats.record_request_processing_start(100u64).unwrap();
        stats.record_request_processing_finish(100u64).unwrap();
        let figures = stats.calculate_blocking().unwrap();
        assert_eq!(figures.requests_finished, 1);
        assert_eq!(stats.state().requests_unmatched, 1);
        stats.stop().wait().unwrap();
        driver.join().unwrap();
    });
}

/// `reset_blocking` and `calculate_blocking` may be called from inside another executor's
/// task (they block its thread); `reset_blocking` used `futures::executor::block_on`, which
/// panics there.
#[test]
fn blocking_calls_work_inside_another_executor() {
    within_guard(|| {
        let (stats, driver) = running(StatsConfig::default());
        stats.record_request_processing_start(1u64).unwrap();
        block_on(async {
            stats.reset_blocking().unwrap();
            assert_eq!(stats.calculate_blocking().unwrap().requests_total, 0);
        });
        stats.stop().wait().unwrap();
        driver.join().unwrap();
    });
}

#[test]
fn calculate_and_lifecycle_waits_have_deadline_forms() {
    within_guard(|| {
        let (stats, driver) = Statistics::new(StatsConfig::default()).unwrap();
        let short = Duration::from_millis(20);
        // The driver is not polled yet: the start cannot finish, the deadline passes.
        let timed_out = stats.start().wait_timeout(short).unwrap_err();
        assert!(
            matches!(timed_out, StatsError::Recorder(SinkError::WaitTimedOut)),
            "{timed_out:?}"
        );
        stats.record_request_processing_start(1u64).unwrap();
        let timed_out = stats.calculate().wait_timeout(short).unwrap_err();
        assert!(
            matches!(timed_out, StatsError::Recorder(SinkError::WaitTimedOut)),
            "{timed_out:?}"
        );

        let driver = std::thread::spawn(move || block_on(driver));
        // The start goes on: a later wait on it sees it finish.
        stats.start().wait_deadline(Instant::now() + GUARD).unwrap();
        stats.record_request_processing_finish(1u64).unwrap();
        let figures = stats
            .calculate()
            .wait_deadline(Instant::now() + GUARD)
            .unwrap();
        assert_eq!(figures.requests_finished, 1);
        assert_eq!(block_on(stats.calculate()).unwrap().requests_finished, 1);
        stats.stop().wait_timeout(GUARD).unwrap();
        driver.join().unwrap();
    });
}

#[test]
fn the_runtime_stops_with_collection() {
    within_guard(|| {
        let (stats, driver) = running(StatsConfig::default());
        stats.record_request_processing_start(1u64).unwrap();
        stats.record_request_processing_finish(1u64).unwrap();
        stats.stop().wait().unwrap();
        driver.join().unwrap();
        let first = stats.calculate_blocking().unwrap();
        let second = stats.calculate_blocking().unwrap();
        assert_eq!(
            first.crawler_runtime, second.crawler_runtime,
            "frozen at the stop"
        );
        assert!(first.crawler_runtime > Duration::ZERO);
        let state = stats.state();
        assert!(state.crawler_finished_at.is_some());
        assert!(state.crawler_finished_at >= state.crawler_last_started_at);
        assert_eq!(
            first.requests_finished_per_minute,
            per_minute(1, first.crawler_runtime)
        );
    });
}

#[test]
fn dropping_the_last_handle_stops_and_ends_the_driver() {
    within_guard(|| {
        let (stats, driver) = running(StatsConfig::default());
        stats.record_request_processing_start(1u64).unwrap();
        drop(stats);
        driver.join().unwrap();
    });
}

#[test]
fn statistics_run_under_local_pool_smol_and_tokio() {
    within_guard(|| {
        // futures' LocalPool, through spawn_on.
        let mut pool = LocalPool::new();
        let stats = Statistics::spawn_on(StatsConfig::default(), &pool.spawner()).unwrap();
        let figures = pool.run_until(scenario(stats));
        assert_eq!(figures.requests_finished, 3);

        // smol.
        let executor = smol::Executor::new();
        let (stats, driver) = Statistics::new(StatsConfig::default()).unwrap();
        let driver = executor.spawn(driver);
        let figures = smol::block_on(executor.run(async {
            let figures = scenario(stats).await;
            driver.await;
            figures
        }));
        assert_eq!(figures.requests_finished, 3);

        // tokio, current thread.
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let figures = runtime.block_on(async {
            let (stats, driver) = Statistics::new(StatsConfig::default()).unwrap();
            let driver = tokio::spawn(driver);
            let figures = scenario(stats).await;
            driver.await.unwrap();
            figures
        });
        assert_eq!(figures.requests_finished, 3);

        // A spawner whose executor is gone refuses the driver.
        let pool = LocalPool::new();
        let spawner = pool.spawner();
        drop(pool);
        let refused = Statistics::spawn_on(StatsConfig::default(), &spawner).unwrap_err();
        assert_eq!(refused.reason(), ErrorReason::EventLoopUnavailable);
        assert!(spawner.spawn(async {}).is_err());
    });
}

/// Start, three requests from the task, calculate, stop; the figures after the stop.
async fn scenario(stats: Statistics) -> FinalStatistics {
    stats.start().await.unwrap();
    for id in 0..3u64 {
        stats.record_request_processing_start(id).unwrap();
        stats.record_request_processing_finish(id).unwrap();
    }
    let figures = stats.calculate().await.unwrap();
    stats.stop().await.unwrap();
    assert_eq!(stats.lifecycle_state(), State::Stopped);
    figures
}

// ---------------------------------------------------------------------------------------
// calculate() against a reference computation
// ---------------------------------------------------------------------------------------

#[derive(Clone, Copy, Debug)]
enum Op {
    Start,
    Retry,
    Finish,
    Failure,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        3 => Just(Op::Start),
        1 => Just(Op::Retry),
        2 => Just(Op::Finish),
        1 => Just(Op::Failure),
    ]
}

/// What the figures must be, computed the plain way.
#[derive(Debug, Default, PartialEq)]
struct Expected {
    finished: u64,
    failed: u64,
    /// Every retry, when it happens.
    retry_attempts: u64,
    /// Requests that ended after one retry or more.
    requests_retries: u64,
    unmatched: u64,
    finished_total: Duration,
    failed_total: Duration,
    finished_min: Option<Duration>,
    finished_max: Option<Duration>,
    failed_min: Option<Duration>,
    failed_max: Option<Duration>,
    histogram: Vec<u64>,
    in_progress: u64,
}

fn reference(ops: &[(Op, u8, u64)]) -> Expected {
    let mut expected = Expected::default();
    // id → (time of its last start, retries), times in microseconds from the base.
    let mut open: HashMap<u8, (u64, u64)> = HashMap::new();
    let mut now = 0;
    let mut ended = Vec::new();
    for &(op, id, advance) in ops {
        now += advance;
        match op {
            Op::Start | Op::Retry => match open.get_mut(&id) {
                Some((since, retries)) => {
                    *since = now;
                    *retries += 1;
                    expected.retry_attempts += 1;
                }
                None => {
                    let retries = u64::from(matches!(op, Op::Retry));
                    expected.retry_attempts += retries;
                    open.insert(id, (now, retries));
                }
            },
            Op::Finish | Op::Failure => match open.remove(&id) {
                None => expected.unmatched += 1,
                Some((since, retries)) => {
                    let duration = Duration::from_micros(now - since);
                    ended.push(retries);
                    expected.requests_retries += u64::from(retries > 0);
                    let finished = matches!(op, Op::Finish);
                    let (count, total, min, max) = if finished {
                        (
                            &mut expected.finished,
                            &mut expected.finished_total,
                            &mut expected.finished_min,
                            &mut expected.finished_max,
                        )
                    } else {
                        (
                            &mut expected.failed,
                            &mut expected.failed_total,
                            &mut expected.failed_min,
                            &mut expected.failed_max,
                        )
                    };
                    *count += 1;
                    *total += duration;
                    *min = Some(min.map_or(duration, |m: Duration| m.min(duration)));
                    *max = Some(max.map_or(duration, |m: Duration| m.max(duration)));
                }
            },
        }
    }
    // `[0]` before any request ended, as in Crawlee.
    let most = ended.iter().copied().max().unwrap_or(0);
    expected.histogram = vec![0; most as usize + 1];
    for retries in ended {
        expected.histogram[retries as usize] += 1;
    }
    expected.in_progress = open.len() as u64;
    expected
}

/// `total / count` to the nearest microsecond, ties to even (Python's `timedelta / int`).
fn average(total: Duration, count: u64) -> Option<Duration> {
    (count > 0).then(|| {
        let (total, count) = (total.as_micros(), u128::from(count));
        let (quotient, remainder) = (total / count, total % count);
        let micros = match (2 * remainder).cmp(&count) {
            std::cmp::Ordering::Greater => quotient + 1,
            std::cmp::Ordering::Equal => quotient + quotient % 2,
            std::cmp::Ordering::Less => quotient,
        };
        Duration::from_micros(micros as u64)
    })
}

/// `count` per minute of `runtime` (to the microsecond), rounded ties to even.
fn per_minute(count: u64, runtime: Duration) -> u64 {
    let minutes = runtime.as_micros() as f64 / 1e6 / 60.0;
    (count as f64 / minutes).round_ties_even() as u64
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn calculate_matches_a_reference_computation(
        ops in prop::collection::vec((op(), 0u8..6, 0u64..5_000_000), 0..120)
    ) {
        let expected = reference(&ops);
        let mut pool = LocalPool::new();
        let (stats, driver) = Statistics::new(StatsConfig::default()).unwrap();
        pool.spawner().spawn(driver).unwrap();
        let (figures, state) = pool.run_until(async {
            stats.start().await.unwrap();
            let base = Instant::now();
            let mut now = 0;
            for &(op, id, advance) in &ops {
                now += advance;
                let at = base + Duration::from_micros(now);
                let id = u64::from(id);
                match op {
                    Op::Start => stats.record_request_processing_start_at(id, at),
                    Op::Retry => stats.record_request_retry_at(id, at),
                    Op::Finish => stats.record_request_processing_finish_at(id, at),
                    Op::Failure => stats.record_request_processing_failure_at(id, at),
                }
                .unwrap();
            }
            let figures = stats.calculate().await.unwrap();
            let state = stats.state();
            stats.stop().await.unwrap();
            (figures, state)
        });

        prop_assert_eq!(figures.requests_finished, expected.finished);
        prop_assert_eq!(figures.requests_failed, expected.failed);
        prop_assert_eq!(figures.requests_total, expected.finished + expected.failed);
        prop_assert_eq!(figures.retry_attempts, expected.retry_attempts);
        prop_assert_eq!(figures.requests_retries, expected.requests_retries);
        prop_assert_eq!(figures.requests_in_progress, expected.in_progress);
        prop_assert_eq!(figures.request_total_duration, expected.finished_total + expected.failed_total);
        prop_assert_eq!(figures.request_avg_finished_duration, average(expected.finished_total, expected.finished));
        prop_assert_eq!(figures.request_avg_failed_duration, average(expected.failed_total, expected.failed));
        prop_assert_eq!(&figures.retry_histogram, &expected.histogram);
        prop_assert_eq!(
            figures.retry_histogram.iter().sum::<u64>(),
            figures.requests_total
        );
        prop_assert_eq!(state.requests_unmatched, expected.unmatched);
        prop_assert_eq!(state.request_total_finished_duration, expected.finished_total);
        prop_assert_eq!(state.request_total_failed_duration, expected.failed_total);
        prop_assert_eq!(state.request_min_duration, expected.finished_min);
        prop_assert_eq!(state.request_max_duration, expected.finished_max);
        prop_assert_eq!(state.request_min_failed_duration, expected.failed_min);
        prop_assert_eq!(state.request_max_failed_duration, expected.failed_max);
        let minutes = figures.crawler_runtime.as_micros() as f64 / 1e6 / 60.0;
        prop_assert!(minutes > 0.0);
        prop_assert_eq!(figures.requests_finished_per_minute, per_minute(expected.finished, figures.crawler_runtime));
        prop_assert_eq!(figures.requests_failed_per_minute, (expected.failed as f64 / minutes).floor() as u64);
    }
}
