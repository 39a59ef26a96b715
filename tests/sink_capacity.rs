//! Queue capacities that cannot be honoured are a typed error, never an abort: a capacity
//! above `MAX_QUEUE_CAPACITY` (2^36, 2^40, `usize::MAX`) or a ring the allocator refuses
//! gives a sink in `Failure` with `QueueAllocationFailed`, and `spawn_on`,
//! `rt::thread::create`, `rt::smol::create`, `MetricsRuntime::create_recorder` and
//! `Statistics::new` return that error. The documented maximum itself is honoured.
//!
//! Each case runs in a child process — this test binary, re-executed for that one test
//! with `MVX_SINK_CAPACITY_CHILD` set — so that an abort (what these capacities did before)
//! fails the test instead of ending the whole run, and so that the rings of the cases that
//! succeed are freed with their process.
#![cfg(not(loom))]

use std::process::Command;

use futures::executor::{LocalPool, block_on};
use mvx::error::{CreateError, LogError, SinkError};
use mvx::metrics::{MetricEvent, MetricsReason, MetricsRecorder, MetricsRuntime, RecorderError};
use mvx::queue::{AllocationFailure, LogOutcome, MAX_QUEUE_CAPACITY, QueueStats};
use mvx::sink::sinks::MemorySink;
use mvx::sink::{AsyncSink, Discard, SinkConfig};
use mvx::stats::{Statistics, StatsConfig, StatsError, StatsReason};
use mvx::{ErrorReason, Op, State};

#[path = "support/watchdog.rs"]
mod watchdog;

const CHILD: &str = "MVX_SINK_CAPACITY_CHILD";

/// Runs `body` in a child process, when this is the parent; runs it here in the child.
fn in_child(test: &str, body: impl FnOnce()) {
    if std::env::var_os(CHILD).is_some() {
        body();
        return;
    }
    let output = Command::new(std::env::current_exe().unwrap())
        .args(["--exact", test, "--nocapture", "--test-threads=1"])
        .env(CHILD, "1")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "the child running {test} ended with {:?}\n--- stdout\n{stdout}\n--- stderr\n{stderr}",
        output.status
    );
    assert!(
        stdout.contains("test result: ok. 1 passed"),
        "the child did not run {test}:\n{stdout}"
    );
}

/// A recorder's event.
struct Request;

impl MetricEvent for Request {
    fn event_type(&self) -> &str {
        "request"
    }
}

fn is_refusal(error: &SinkError, capacity: usize, failure: AllocationFailure) -> bool {
    matches!(
        error,
        SinkError::QueueAllocationFailed { capacity: c, failure: f } if *c == capacity && *f == failure
    ) && error.reason() == ErrorReason::QueueAllocationFailed
}

/// Everything built on a queue of `capacity` events of `E` is refused with
/// `QueueAllocationFailed { capacity, failure }`.
fn check_refused<E: Send + 'static>(capacity: usize, failure: AllocationFailure, event: E) {
    let config = SinkConfig::default().queue_capacity(capacity);
    let refusal = |error: &SinkError| {
        assert!(
            is_refusal(error, capacity, failure),
            "expected QueueAllocationFailed {{ capacity: {capacity}, failure: {failure:?} }}, got {error:?}"
        );
    };

    // The sink: already ended, and saying why to every call.
    let (sink, driver) = AsyncSink::<E>::new(Discard, config.clone());
    assert_eq!(sink.state(), State::Failure);
    refusal(&sink.last_error().unwrap());
    let started = sink.start().wait();
    assert_eq!((started.op, started.success), (Op::Start, false));
    refusal(&started.error.unwrap());
    refusal(&sink.start().wait().into_result().unwrap_err());
    match sink.log(event) {
        Err(LogError::NotAccepting {
            state: State::Failure,
            ..
        }) => {}
        other => panic!("expected NotAccepting in Failure, got {other:?}"),
    }
    refusal(&sink.flush_blocking().unwrap_err());
    match sink.stop().wait().into_result() {
        Err(SinkError::InvalidState {
            actual: State::Failure,
            ..
        }) => {}
        other => panic!("expected InvalidState in Failure, got {other:?}"),
    }
    // The one event logged was handed back: refused, nothing else.
    assert_eq!(
        sink.stats(),
        QueueStats {
            refused: 1,
            ..QueueStats::default()
        }
    );
    block_on(driver); // returns at once
    assert_eq!(sink.state(), State::Failure);
    assert_eq!(
        SinkError::QueueAllocationFailed { capacity, failure }.to_string(),
        format!("could not allocate a queue for {capacity} events: {failure}")
    );

    // Everything that returns a `Result` returns the error.
    let pool = LocalPool::new();
    refusal(&AsyncSink::<E>::spawn_on(Discard, config.clone(), &pool.spawner()).unwrap_err());
    match mvx::rt::thread::create::<E, _>(Discard, config.clone().namespace("cap-t")) {
        Err(CreateError::Sink(error)) => refusal(&error),
        other => panic!("rt::thread::create: {:?}", other.map(|_| ())),
    }
    match mvx::rt::smol::create::<E, _>(Discard, config.clone().namespace("cap-s")) {
        Err(CreateError::Sink(error)) => refusal(&error),
        other => panic!("rt::smol::create: {:?}", other.map(|_| ())),
    }
}

/// The components built on sinks refuse a capacity above the maximum, whatever their
/// events, with `QueueAllocationFailed { capacity, failure: AboveMaximum }`.
fn check_components_refuse(capacity: usize) {
    let config = SinkConfig::default().queue_capacity(capacity);
    let refusal = |error: &SinkError| {
        assert!(
            is_refusal(error, capacity, AllocationFailure::AboveMaximum),
            "expected QueueAllocationFailed {{ capacity: {capacity}, AboveMaximum }}, got {error:?}"
        );
    };
    let pool = LocalPool::new();
    let runtime = MetricsRuntime::new().unwrap();
    match runtime.create_recorder_with::<Request>("requests", config.clone()) {
        Err(error @ RecorderError::Sink(_)) => {
            assert_eq!(
                error.reason(),
                MetricsReason::Core(ErrorReason::QueueAllocationFailed)
            );
            let RecorderError::Sink(error) = error else {
                unreachable!()
            };
            refusal(&error);
        }
        other => panic!("create_recorder: {:?}", other.map(|_| ())),
    }
    assert!(runtime.recorders().is_empty());
    runtime.shutdown().unwrap();
    let (recorder, _driver) = MetricsRecorder::<Request>::new("requests", config.clone());
    assert_eq!(recorder.state(), State::Failure);
    match MetricsRecorder::<Request>::spawn_on("requests", config.clone(), &pool.spawner()) {
        Err(RecorderError::Sink(error)) => refusal(&error),
        other => panic!("MetricsRecorder::spawn_on: {:?}", other.map(|_| ())),
    }
    match Statistics::new(StatsConfig::default().sink(config.clone())) {
        Err(error @ StatsError::Recorder(_)) => {
            assert_eq!(
                error.reason(),
                StatsReason::Core(ErrorReason::QueueAllocationFailed)
            );
            let StatsError::Recorder(error) = error else {
                unreachable!()
            };
            refusal(&error);
        }
        other => panic!("Statistics::new: {:?}", other.map(|_| ())),
    }
}

#[test]
fn a_capacity_of_2_pow_36_is_refused_with_a_typed_error() {
    in_child(
        "a_capacity_of_2_pow_36_is_refused_with_a_typed_error",
        || {
            check_refused(1 << 36, AllocationFailure::AboveMaximum, 7u32);
            check_components_refuse(1 << 36);
        },
    );
}

#[test]
fn a_capacity_of_2_pow_40_is_refused_with_a_typed_error() {
    in_child(
        "a_capacity_of_2_pow_40_is_refused_with_a_typed_error",
        || {
            check_refused(1 << 40, AllocationFailure::AboveMaximum, 7u32);
            check_components_refuse(1 << 40);
        },
    );
}

#[test]
fn a_capacity_of_usize_max_is_refused_with_a_typed_error() {
    in_child(
        "a_capacity_of_usize_max_is_refused_with_a_typed_error",
        || {
            check_refused(usize::MAX, AllocationFailure::AboveMaximum, 7u32);
            check_components_refuse(usize::MAX);
        },
    );
}

#[test]
fn one_above_the_documented_maximum_is_refused() {
    in_child("one_above_the_documented_maximum_is_refused", || {
        check_refused(
            MAX_QUEUE_CAPACITY + 1,
            AllocationFailure::AboveMaximum,
            7u32,
        );
        check_components_refuse(MAX_QUEUE_CAPACITY + 1);
    });
}

#[test]
fn the_documented_maximum_is_honoured() {
    in_child("the_documented_maximum_is_honoured", || {
        watchdog::within_guard(|| {
            let (memory, events) = MemorySink::new();
            let config = SinkConfig::default()
                .namespace("cap-max")
                .queue_capacity(MAX_QUEUE_CAPACITY);
            let (sink, terminator) = mvx::rt::thread::create::<u32, _>(memory, config).unwrap();
            assert_eq!(sink.state(), State::Running);
            assert_eq!(sink.stats().capacity, MAX_QUEUE_CAPACITY);
            for event in 0..3 {
                assert_eq!(sink.log(event), Ok(LogOutcome::Accepted));
            }
            let stats = terminator.terminate().unwrap();
            assert_eq!(
                (
                    stats.accepted,
                    stats.delivered,
                    stats.pending,
                    stats.capacity
                ),
                (3, 3, 0, MAX_QUEUE_CAPACITY)
            );
            assert_eq!(events.take(), vec![0, 1, 2]);
        });
    });
}

/// A number from `/proc/meminfo`, in bytes.
fn meminfo(field: &str) -> Option<u64> {
    let text = std::fs::read_to_string("/proc/meminfo").ok()?;
    let line = text.lines().find(|line| line.starts_with(field))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

#[test]
fn a_ring_larger_than_the_machine_is_refused_by_the_allocator_with_a_typed_error() {
    in_child(
        "a_ring_larger_than_the_machine_is_refused_by_the_allocator_with_a_typed_error",
        || {
            // 2^24 slots of 4,096 bytes: 64 GiB.
            type Page = [u8; 4096];
            let bytes = MAX_QUEUE_CAPACITY * size_of::<Page>();
            // Only where the allocator refuses what the machine cannot hold: Linux with
            // the heuristic (0) or strict (2) overcommit policy, and less than half that
            // much memory and swap. Elsewhere the ring might really be built.
            let policy = std::fs::read_to_string("/proc/sys/vm/overcommit_memory");
            let machine = meminfo("MemTotal:").zip(meminfo("SwapTotal:"));
            match (policy.as_deref().map(str::trim), machine) {
                (Ok("0" | "2"), Some((memory, swap)))
                    if (memory + swap).saturating_mul(2) < bytes as u64 => {}
                other => {
                    println!("not run here: overcommit policy and memory {other:?}");
                    return;
                }
            }
            check_refused(
                MAX_QUEUE_CAPACITY,
                AllocationFailure::OutOfMemory { bytes },
                [0u8; 4096],
            );
        },
    );
}
