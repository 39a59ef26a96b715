//! Several threads, one sink (or one recorder), each thread with its own sequence of
//! operations; afterwards, the accounting must add up exactly.
//!
//! The threads race, so the model here is what holds whatever the interleaving: each
//! thread's own observations (states only move forward, a flush or a snapshot barrier
//! covers its own earlier events, its events are dispatched in the order it logged them —
//! each thread has a lane of its own) and, after the final termination, the exact
//! counters.

use std::collections::HashSet;
use std::sync::Barrier;

use futures::executor::block_on;
use mvx::error::{LogError, SinkError};
use mvx::metrics::{MetricsRecorder, MetricsRuntime};
use mvx::queue::{LogOutcome, OverflowPolicy, QueueStats};
use mvx::rt::Terminator;
use mvx::sink::{AsyncSink, SinkConfig};
use mvx::{ErrorReason, Op, OpResult, State, WaitHandle};

use super::backend::{Backend, Record};
use super::model::{Event, Tally, tally};
use super::recorder::{TallyMetric, read_tally};

/// One operation of one thread on a shared sink.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ThreadStep {
    /// `log` an event of this value (the backend fails it when divisible by 7).
    Log(u32),
    /// `flush_blocking()`.
    Flush,
    /// `start()`; wait for the result at once, or keep the handle until the end.
    Start { wait: bool },
    /// `stop()`; likewise.
    Stop { wait: bool },
    /// `Terminator::terminate()`.
    Terminate,
}

/// A shared sink's configuration and each thread's steps.
#[derive(Clone, Debug)]
pub struct ConcurrentCase {
    pub capacity: usize,
    pub batch_size: usize,
    pub policy: OverflowPolicy,
    pub threads: Vec<Vec<ThreadStep>>,
}

/// The unique id of the `index`-th step of thread `thread`.
fn event_id(thread: usize, index: usize) -> u32 {
    (thread * 1_000 + index) as u32
}

/// What one thread saw.
#[derive(Default)]
struct Seen {
    accepted: Vec<u32>,
    dropped: Vec<u32>,
    /// Events handed back in an error.
    refused: Vec<u32>,
    /// Lifecycle states this thread observed, in order.
    states: Vec<State>,
    /// Handles kept until the end, and results of the handles waited for at once.
    kept: Vec<(Op, WaitHandle)>,
    waited: Vec<OpResult>,
}

/// Runs every thread's steps on one sink created by `rt::thread::create`, terminates it,
/// and checks the accounting.
pub fn run(case: ConcurrentCase) {
    let backend = Backend::new(false);
    let record = backend.record.clone();
    let config = SinkConfig::default()
        .namespace("prop-conc")
        .queue_capacity(case.capacity)
        .batch_size(case.batch_size)
        .overflow(case.policy)
        .stop_timeout(None);
    let (sink, terminator) = mvx::rt::thread::create(backend, config).expect("the sink starts");
    let barrier = Barrier::new(case.threads.len());

    let seen: Vec<Seen> = std::thread::scope(|scope| {
        let threads: Vec<_> = case
            .threads
            .iter()
            .enumerate()
            .map(|(thread, steps)| {
                let (sink, terminator, record) = (&sink, &terminator, &record);
                let (barrier, policy, capacity) = (&barrier, case.policy, case.capacity);
                scope.spawn(move || {
                    barrier.wait();
                    let mut seen = Seen::default();
                    let mut previous = QueueStats::default();
                    for (index, step) in steps.iter().enumerate() {
                        let id = event_id(thread, index);
                        thread_step(sink, terminator, record, policy, *step, id, &mut seen);
                        // Each counter only grows, whatever the other threads do.
                        let stats = sink.stats();
                        assert!(stats.accepted >= previous.accepted, "{stats}");
                        assert!(stats.delivered >= previous.delivered, "{stats}");
                        assert!(stats.failed >= previous.failed, "{stats}");
                        assert!(stats.dropped >= previous.dropped, "{stats}");
                        assert!(stats.high_watermark <= capacity, "{stats}");
                        previous = stats;
                    }
                    seen
                })
            })
            .collect();
        threads
            .into_iter()
            .map(|thread| {
                thread
                    .join()
                    .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
            })
            .collect()
    });

    // The final counters, the same whichever thread terminated first.
    assert_terminated_with(
        terminator.terminate().map_err(|error| error.reason()),
        &sink,
    );
    assert_eq!(sink.state(), State::Stopped);
    check_accounting(&case, &sink, &record, seen);
}

/// Applies one step of one thread and checks what it can on its own.
fn thread_step(
    sink: &AsyncSink<Event>,
    terminator: &Terminator,
    record: &Record,
    policy: OverflowPolicy,
    step: ThreadStep,
    id: u32,
    seen: &mut Seen,
) {
    match step {
        ThreadStep::Log(value) => {
            let event = Event { id, value };
            log(sink, policy, event, seen);
        }
        ThreadStep::Flush => {
            let flushed = sink.flush_blocking();
            assert!(flushed.is_ok(), "flush failed: {flushed:?}");
            // The barrier covers every event this thread had accepted before it.
            assert!(
                record.contains_all(&seen.accepted),
                "a flush returned before this thread's events were dispatched"
            );
        }
        ThreadStep::Start { wait } => keep_or_wait(sink.start(), Op::Start, wait, seen),
        ThreadStep::Stop { wait } => keep_or_wait(sink.stop(), Op::Stop, wait, seen),
        ThreadStep::Terminate => {
            let outcome = terminator.terminate();
            assert_terminated_with(outcome.map_err(|error| error.reason()), sink);
            assert_eq!(sink.state(), State::Stopped);
            seen.states.push(State::Stopped);
        }
    }
}

/// A clean termination's outcome is the sink's final counters: the same as now, but for
/// the events refused since (every `log()` after the stop is refused, and counted).
fn assert_terminated_with(outcome: Result<QueueStats, ErrorReason>, sink: &AsyncSink<Event>) {
    let now = sink.stats();
    let terminated = outcome.unwrap_or_else(|reason| panic!("terminate failed: {reason}"));
    assert!(terminated.refused <= now.refused, "{terminated} then {now}");
    assert_eq!(
        QueueStats {
            refused: now.refused,
            ..terminated
        },
        now
    );
}

/// `log(event)`, and what the thread was told.
fn log(sink: &AsyncSink<Event>, policy: OverflowPolicy, event: Event, seen: &mut Seen) {
    match sink.log(event) {
        Ok(LogOutcome::Accepted) => seen.accepted.push(event.id),
        Ok(LogOutcome::Dropped) => {
            assert_eq!(policy, OverflowPolicy::Drop, "dropped under {policy:?}");
            seen.dropped.push(event.id);
        }
        Err(LogError::QueueOverflow(back)) => {
            assert_eq!(back, event, "the refused event comes back");
            assert_eq!(
                policy,
                OverflowPolicy::RaiseError,
                "overflow under {policy:?}"
            );
            seen.refused.push(event.id);
        }
        Err(LogError::NotAccepting { event: back, state }) => {
            assert_eq!(back, event, "the refused event comes back");
            assert!(!state.accepts_events(), "refused while {state}");
            seen.states.push(state);
            seen.refused.push(event.id);
        }
        Err(error @ LogError::WouldDeadlock(_)) => {
            panic!("no producer here runs the driver, yet {error:?}")
        }
    }
}

/// Records the state a start or stop found, then waits for it or keeps its handle.
fn keep_or_wait(handle: WaitHandle, op: Op, wait: bool, seen: &mut Seen) {
    // A refusal is ready at once and names the state it found; any other call found the
    // sink `Running` (a start attaches to the finished start, a stop moves it on). Other
    // results are caught by `assert_legal` at the end.
    let found = match handle.try_result() {
        Some(OpResult {
            error: Some(SinkError::InvalidState { actual, .. }),
            ..
        }) => actual,
        _ => State::Running,
    };
    seen.states.push(found);
    if wait {
        seen.waited.push(handle.wait());
    } else {
        seen.kept.push((op, handle));
    }
}

/// The legal results of `start()` and `stop()` on a sink that starts `Running` and ends
/// `Stopped` cleanly: success, or `InvalidState` once it has left `Running`.
fn assert_legal(result: &OpResult) {
    let expected: &[State] = match result.op {
        Op::Start => &[State::Virgin],
        Op::Stop => &[State::Running],
    };
    match &result.error {
        None => assert!(result.success),
        Some(SinkError::InvalidState {
            actual,
            expected: needs,
        }) => {
            assert!(!result.success);
            assert!(
                matches!(actual, State::Stopping | State::Stopped),
                "{result:?}"
            );
            assert_eq!(*needs, expected, "{result:?}");
        }
        Some(other) => panic!("{} failed with {other:?}", result.op),
    }
}

/// A comparable summary of an operation result.
fn summary(result: &OpResult) -> (Op, bool, Option<ErrorReason>) {
    (
        result.op,
        result.success,
        result.error.as_ref().map(SinkError::reason),
    )
}

/// After the final termination: every handle, every thread's observations, the counters
/// and the backend's record against each other.
fn check_accounting(
    case: &ConcurrentCase,
    sink: &AsyncSink<Event>,
    record: &Record,
    mut seen: Vec<Seen>,
) {
    let stats = sink.stats();
    let dispatched = record.events();

    // Every handle resolves once the sink has stopped: to one result, the same every time
    // it is asked, and the same again when waited for.
    let mut results = Vec::new();
    for thread in &mut seen {
        for (op, handle) in thread.kept.drain(..) {
            let first = handle.try_result().expect("the operation has finished");
            let again = handle.try_result().expect("the operation has finished");
            assert_eq!(first.op, op);
            assert_eq!(summary(&first), summary(&again));
            assert_eq!(summary(&handle.wait()), summary(&first));
            results.push(first);
        }
        results.append(&mut thread.waited);
    }
    for result in &results {
        assert_legal(result);
    }
    let stops = results
        .iter()
        .filter(|result| result.op == Op::Stop && result.success)
        .count();
    assert!(stops <= 1, "{stops} stops succeeded");

    // Each thread saw the lifecycle only move forward.
    let rank = |state: &State| match state {
        State::Running => 0,
        State::Stopping => 1,
        State::Stopped => 2,
        other => panic!("a thread saw {other}"),
    };
    for thread in &seen {
        let ranks: Vec<_> = thread.states.iter().map(rank).collect();
        assert!(
            ranks.windows(2).all(|pair| pair[0] <= pair[1]),
            "states went back: {:?}",
            thread.states
        );
    }

    // The counters add up, and match what the threads were told.
    let accepted: Vec<u32> = seen.iter().flat_map(|t| t.accepted.clone()).collect();
    let dropped: Vec<u32> = seen.iter().flat_map(|t| t.dropped.clone()).collect();
    let refused: Vec<u32> = seen.iter().flat_map(|t| t.refused.clone()).collect();
    assert_eq!(stats.accepted, accepted.len() as u64, "{stats}");
    assert_eq!(stats.dropped, dropped.len() as u64, "{stats}");
    assert_eq!(stats.refused, refused.len() as u64, "{stats}");
    assert_eq!(stats.pending, 0, "{stats}");
    assert_eq!(stats.accepted, stats.delivered + stats.failed, "{stats}");
    assert!(stats.high_watermark <= case.capacity, "{stats}");

    // The backend got every accepted event once, and nothing else.
    let ids: Vec<u32> = dispatched.iter().map(|event| event.id).collect();
    let unique: HashSet<u32> = ids.iter().copied().collect();
    assert_eq!(unique.len(), ids.len(), "an event was dispatched twice");
    // Each thread's events reach the backend in the order the thread logged them: each
    // producer thread has a lane of its own, drained in order.
    for thread in 0..case.threads.len() {
        let lane: Vec<u32> = ids
            .iter()
            .copied()
            .filter(|&id| id / 1_000 == thread as u32)
            .collect();
        assert!(
            lane.windows(2).all(|pair| pair[0] < pair[1]),
            "thread {thread}'s events were dispatched out of order: {lane:?}"
        );
    }
    let accepted_set: HashSet<u32> = accepted.iter().copied().collect();
    assert_eq!(
        unique, accepted_set,
        "dispatched events are the accepted ones"
    );
    for id in refused.iter().chain(&dropped) {
        assert!(
            !unique.contains(id),
            "event {id} was refused yet dispatched"
        );
    }
    let failed = dispatched.iter().filter(|event| event.fails()).count() as u64;
    assert_eq!(stats.failed, failed, "{stats}");
    assert_eq!(stats.delivered, ids.len() as u64 - failed, "{stats}");
    let last_error = sink.last_error().map(|error| error.reason());
    let expected_error = (failed > 0).then_some(ErrorReason::DispatchFailed);
    assert_eq!(last_error, expected_error);

    // Each thread's events were dispatched in the order it logged them.
    for thread in 0..case.threads.len() {
        let own: Vec<u32> = ids
            .iter()
            .copied()
            .filter(|id| (*id as usize) / 1_000 == thread)
            .collect();
        assert!(own.windows(2).all(|pair| pair[0] < pair[1]), "{own:?}");
    }
}

/// One operation of one thread on a shared recorder.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RecorderThreadStep {
    /// `register_event` of an event of this value.
    Register(u32),
    /// `snapshot_now().await`.
    SnapshotNow,
    /// `stop()`, waited for.
    Stop,
    /// `MetricsRuntime::shutdown()`.
    Shutdown,
}

/// A shared recorder's configuration and each thread's steps.
#[derive(Clone, Debug)]
pub struct ConcurrentRecorderCase {
    pub capacity: usize,
    pub policy: OverflowPolicy,
    pub threads: Vec<Vec<RecorderThreadStep>>,
}

/// Runs every thread's steps on one recorder, shuts the runtime down, and checks the
/// snapshots and counters.
pub fn run_recorder(case: ConcurrentRecorderCase) {
    let runtime = MetricsRuntime::new().expect("the runtime starts");
    let config = SinkConfig::default()
        .queue_capacity(case.capacity)
        .overflow(case.policy)
        .stop_timeout(None);
    let recorder: MetricsRecorder<Event> = runtime
        .create_recorder_with("prop", config)
        .expect("the recorder starts");
    recorder
        .register_metric(TallyMetric::default())
        .expect("the only metric");
    let barrier = Barrier::new(case.threads.len());

    let per_thread: Vec<Own> = std::thread::scope(|scope| {
        let threads: Vec<_> = case
            .threads
            .iter()
            .enumerate()
            .map(|(thread, steps)| {
                let (runtime, recorder, barrier) = (&runtime, &recorder, &barrier);
                scope.spawn(move || {
                    barrier.wait();
                    let mut own = Own::default();
                    for (index, step) in steps.iter().enumerate() {
                        let id = event_id(thread, index);
                        recorder_step(runtime, recorder, *step, id, &mut own);
                    }
                    own
                })
            })
            .collect();
        threads
            .into_iter()
            .map(|thread| {
                thread
                    .join()
                    .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
            })
            .collect()
    });

    if let Err(error) = runtime.shutdown() {
        panic!("shutdown failed: {error:?}");
    }
    assert_eq!(recorder.state(), State::Stopped);
    assert!(runtime.recorders().is_empty());
    let accepted: Vec<Event> = per_thread
        .iter()
        .flat_map(|own| own.accepted.clone())
        .collect();
    let dropped: u64 = per_thread.iter().map(|own| own.dropped).sum();
    let stats = recorder.stats();
    assert_eq!(stats.accepted, accepted.len() as u64, "{stats}");
    assert_eq!(stats.dropped, dropped, "{stats}");
    assert_eq!(stats.delivered, stats.accepted, "{stats}");
    assert_eq!((stats.failed, stats.pending), (0, 0), "{stats}");
    assert!(stats.high_watermark <= case.capacity, "{stats}");
    let final_tally = read_tally(&recorder.snapshots(), &recorder.unhandled());
    assert_eq!(final_tally, tally(&accepted));
    assert!(
        recorder.last_error().is_none(),
        "{:?}",
        recorder.last_error()
    );
}

/// What one thread's `register_event` calls returned.
#[derive(Default)]
struct Own {
    accepted: Vec<Event>,
    dropped: u64,
}

/// Applies one step of one thread on the shared recorder and checks what it can on its own.
fn recorder_step(
    runtime: &MetricsRuntime,
    recorder: &MetricsRecorder<Event>,
    step: RecorderThreadStep,
    id: u32,
    own: &mut Own,
) {
    match step {
        RecorderThreadStep::Register(value) => {
            let event = Event { id, value };
            match recorder.register_event(event) {
                Ok(LogOutcome::Accepted) => own.accepted.push(event),
                Ok(LogOutcome::Dropped) => own.dropped += 1,
                Err(LogError::QueueOverflow(back)) => assert_eq!(back, event),
                Err(LogError::NotAccepting { event: back, state }) => {
                    assert_eq!(back, event);
                    assert!(matches!(state, State::Stopping | State::Stopped), "{state}");
                }
                Err(error @ LogError::WouldDeadlock(_)) => {
                    panic!("no producer here runs the driver, yet {error:?}")
                }
            }
        }
        RecorderThreadStep::SnapshotNow => {
            let snapshots = block_on(recorder.snapshot_now()).expect("the barrier succeeds");
            let seen = read_tally(&snapshots, &recorder.unhandled());
            // Every event this thread had accepted before is in it (and others' too).
            let own: Tally = tally(&own.accepted);
            assert!(seen.count >= own.count, "{seen:?} misses {own:?}");
            assert!(seen.sum >= own.sum, "{seen:?} misses {own:?}");
            assert!(seen.unhandled >= own.unhandled, "{seen:?} misses {own:?}");
        }
        RecorderThreadStep::Stop => {
            let stopped = recorder.stop().wait();
            match &stopped.error {
                None => assert!(stopped.success),
                Some(SinkError::InvalidState { actual, .. }) => {
                    assert!(
                        matches!(actual, State::Stopping | State::Stopped),
                        "{stopped:?}"
                    )
                }
                Some(other) => panic!("stop failed with {other:?}"),
            }
        }
        RecorderThreadStep::Shutdown => {
            if let Err(error) = runtime.shutdown() {
                panic!("shutdown failed: {error:?}");
            }
            assert_eq!(recorder.state(), State::Stopped);
        }
    }
}
