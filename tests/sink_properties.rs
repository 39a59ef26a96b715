//! Property tests: random sequences of `start`, `stop`, `log`, `flush`, `snapshot_now` and
//! termination, against a reference model of the lifecycle and the counters.
//!
//! - **Sequential** ([`one_sink_follows_the_model`], [`one_recorder_follows_the_model`]):
//!   one thread applies each step to a real sink (on mvx's own executor thread,
//!   `rt::thread::create`, or on a smol executor, `rt::smol::spawn`) or to a recorder on a
//!   `MetricsRuntime`, and to the model in `sink_properties/model.rs`; after every step the
//!   state, every result and the counters must match the model. The test backend can be
//!   *held* (its hooks and dispatches wait at a valve), which makes overflow, `Starting`,
//!   `Stopping` and cancellation with queued events deterministic; while it runs freely,
//!   the model knows bounds, and exact values again after each barrier (a flush, a stop,
//!   a snapshot).
//! - **Concurrent** ([`threads_sharing_a_sink_account_for_every_event`],
//!   [`threads_sharing_a_recorder_lose_no_event`]): 2 or 3 threads, each with its own
//!   sequence, race on one sink or recorder; afterwards the accounting must add up exactly.
//!
//! Shrinking works on the generated sequences (proptest strategies only, no hand-rolled
//! randomness), so a failure is reported as a minimal sequence. Failures are persisted in
//! `tests/sink_properties.proptest-regressions`, replayed first on every run: commit that file.
//! Set `PROPTEST_CASES` to run more cases than the defaults below.
#![cfg(not(loom))]

#[path = "sink_properties/backend.rs"]
mod backend;
#[path = "sink_properties/concurrent.rs"]
mod concurrent;
#[path = "sink_properties/model.rs"]
mod model;
#[path = "sink_properties/recorder.rs"]
mod recorder;
#[path = "sink_properties/sequential.rs"]
mod sequential;
#[path = "support/watchdog.rs"]
mod watchdog;

use std::time::Duration;

use mvx::queue::OverflowPolicy;
use proptest::collection::vec;
use proptest::prelude::*;
use proptest::test_runner::FileFailurePersistence;

use self::concurrent::{ConcurrentCase, ConcurrentRecorderCase, RecorderThreadStep, ThreadStep};
use self::recorder::{RecorderCase, RecorderStep};
use self::sequential::{Harness, SinkCase, Step};
use self::watchdog::within;

/// How long one case may run before it is declared hung (a case takes milliseconds).
const CASE_GUARD: Duration = Duration::from_secs(20);

/// The configuration of every property: `cases` cases unless `PROPTEST_CASES` says
/// otherwise, failures persisted next to this file, shrinking bounded in time (a hang
/// costs [`CASE_GUARD`] per shrinking step).
///
/// The case counts keep the whole file at about 6 s in a debug build when its tests run
/// one at a time, 3.5 s on two idle cores (and well under 30 s on a loaded machine): a
/// sequential case costs a runtime thread and a few dozen wake-ups, about 1 ms; a
/// concurrent one two or three racing threads besides, about 3 ms. The rarer paths need
/// the numbers: of 1024 sequential cases only a few dozen reach a held `Starting` or a
/// held `Stopping`, and the recorder properties missed a mutant flush barrier at 64 cases.
/// Races need more: the stop race behind
/// [`regression_a_stop_racing_a_blocked_producer_applies_every_accepted_event`] showed up
/// in a run of 6000 cases per property (`PROPTEST_CASES=6000`, about 25 s), which is worth
/// running after a change to the driver or the queue.
///
/// Sequences are short (at most 40 steps) because the sink's behaviour depends on a few
/// events at a time (capacities of 1 to 6) and every terminal state absorbs the rest of a
/// sequence: longer ones repeat themselves rather than reach new states.
fn config(cases: u32) -> ProptestConfig {
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|cases| cases.parse().ok())
        .unwrap_or(cases);
    ProptestConfig {
        cases,
        failure_persistence: Some(Box::new(FileFailurePersistence::WithSource(
            "proptest-regressions",
        ))),
        max_shrink_time: 120_000,
        ..ProptestConfig::default()
    }
}

/// An event value; one in seven is divisible by 7, and the backend fails those.
fn value() -> impl Strategy<Value = u32> {
    0u32..50
}

fn policy() -> impl Strategy<Value = OverflowPolicy> {
    prop_oneof![Just(OverflowPolicy::RaiseError), Just(OverflowPolicy::Drop)]
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        10 => value().prop_map(Step::Log),
        2 => Just(Step::Start),
        1 => Just(Step::Stop),
        2 => any::<bool>().prop_map(|blocking| Step::Flush { blocking }),
        3 => Just(Step::Hold),
        2 => Just(Step::Release),
        1 => Just(Step::Terminate),
    ]
}

fn sink_case() -> impl Strategy<Value = SinkCase> {
    (
        prop_oneof![Just(Harness::Thread), Just(Harness::Smol)],
        1usize..=6,
        1usize..=3,
        policy(),
        any::<bool>(),
        // A failing start hook ends the case in `Failure` at its first start: rarer.
        prop::bool::weighted(0.25),
        vec(step(), 0..40),
    )
        .prop_map(
            |(harness, capacity, batch_size, policy, lazy_start, start_fails, steps)| {
                // `rt::thread::create` starts the sink and waits for the start: only a
                // sink under smol is ever `Virgin`, so only there do these matter.
                let smol = harness == Harness::Smol;
                SinkCase {
                    harness,
                    capacity,
                    batch_size,
                    policy,
                    lazy_start: lazy_start && smol,
                    start_fails: start_fails && smol,
                    steps,
                }
            },
        )
}

fn recorder_step() -> impl Strategy<Value = RecorderStep> {
    prop_oneof![
        10 => value().prop_map(RecorderStep::Register),
        3 => Just(RecorderStep::SnapshotNow),
        2 => Just(RecorderStep::Snapshots),
        1 => Just(RecorderStep::Start),
        1 => Just(RecorderStep::Stop),
        1 => Just(RecorderStep::Shutdown),
    ]
}

fn recorder_case() -> impl Strategy<Value = RecorderCase> {
    (1usize..=6, policy(), vec(recorder_step(), 0..40)).prop_map(|(capacity, policy, steps)| {
        RecorderCase {
            capacity,
            policy,
            steps,
        }
    })
}

fn thread_step() -> impl Strategy<Value = ThreadStep> {
    prop_oneof![
        12 => value().prop_map(ThreadStep::Log),
        2 => Just(ThreadStep::Flush),
        1 => any::<bool>().prop_map(|wait| ThreadStep::Start { wait }),
        1 => any::<bool>().prop_map(|wait| ThreadStep::Stop { wait }),
        1 => Just(ThreadStep::Terminate),
    ]
}

fn concurrent_case() -> impl Strategy<Value = ConcurrentCase> {
    (
        1usize..=6,
        1usize..=4,
        prop_oneof![policy(), Just(OverflowPolicy::Block)],
        vec(vec(thread_step(), 1..30), 2..=3),
    )
        .prop_map(|(capacity, batch_size, policy, threads)| ConcurrentCase {
            capacity,
            batch_size,
            policy,
            threads,
        })
}

fn recorder_thread_step() -> impl Strategy<Value = RecorderThreadStep> {
    prop_oneof![
        12 => value().prop_map(RecorderThreadStep::Register),
        3 => Just(RecorderThreadStep::SnapshotNow),
        1 => Just(RecorderThreadStep::Stop),
        1 => Just(RecorderThreadStep::Shutdown),
    ]
}

fn concurrent_recorder_case() -> impl Strategy<Value = ConcurrentRecorderCase> {
    (
        1usize..=6,
        prop_oneof![policy(), Just(OverflowPolicy::Block)],
        vec(vec(recorder_thread_step(), 1..30), 2..=3),
    )
        .prop_map(|(capacity, policy, threads)| ConcurrentRecorderCase {
            capacity,
            policy,
            threads,
        })
}

proptest! {
    #![proptest_config(config(1024))]

    /// A sink driven by one thread does exactly what the model says after every step: the
    /// state, the result of `start`/`stop` (success or `InvalidState` with the actual and
    /// expected states, `OnStartingHookFailed`, `DispatcherCancelled`), the result of
    /// `log` (accepted, dropped or the event handed back with the right reason), of
    /// `flush` and of termination, the counters with `accepted == delivered + failed +
    /// pending`, and the events the backend was handed, in order.
    #[test]
    fn one_sink_follows_the_model(case in sink_case()) {
        within(CASE_GUARD, move || sequential::run(case));
    }
}

proptest! {
    #![proptest_config(config(512))]

    /// A recorder on a `MetricsRuntime`, driven by one thread, does what the model says:
    /// `register_event` results, `snapshot_now` reflecting exactly every event accepted
    /// before it (counted, summed or unhandled), `stop`, `start` and `shutdown` results,
    /// the counters, and the runtime's list of recorders.
    #[test]
    fn one_recorder_follows_the_model(case in recorder_case()) {
        within(CASE_GUARD, move || recorder::run(case));
    }
}

proptest! {
    #![proptest_config(config(768))]

    /// Two or three threads racing `log`, `flush`, `start`, `stop` and `terminate` on one
    /// sink: afterwards every accepted event was dispatched exactly once and in each
    /// thread's order, no refused or dropped one was, the counters equal what the threads
    /// were told, every handle resolved to one legal result, at most one stop succeeded,
    /// each thread saw the state only move forward, and the sink ended `Stopped`.
    #[test]
    fn threads_sharing_a_sink_account_for_every_event(case in concurrent_case()) {
        within(CASE_GUARD, move || concurrent::run(case));
    }
}

proptest! {
    #![proptest_config(config(512))]

    /// Two or three threads racing `register_event`, `snapshot_now`, `stop` and
    /// `shutdown` on one recorder: each snapshot barrier covers the events its thread had
    /// accepted, and after the shutdown the snapshot and the counters account for exactly
    /// the accepted events.
    #[test]
    fn threads_sharing_a_recorder_lose_no_event(case in concurrent_recorder_case()) {
        within(CASE_GUARD, move || concurrent::run_recorder(case));
    }
}

/// Regression, found by [`one_sink_follows_the_model`]: a flush that found the sink ended
/// returned before the driver had counted the events it abandoned, so the counters read
/// right after it still showed them pending (`failed: 0, pending: 1` in `Failure`). The
/// minimal case: a lazy start that fails, and the flush that waits for it. The driver lost
/// that race nearly every time; the case is repeated so that passing means something.
#[test]
fn regression_a_flush_after_a_failed_lazy_start_leaves_final_counters() {
    for _ in 0..50 {
        let case = SinkCase {
            harness: Harness::Smol,
            capacity: 1,
            batch_size: 1,
            policy: OverflowPolicy::RaiseError,
            lazy_start: true,
            start_fails: true,
            steps: vec![Step::Log(2)],
        };
        within(CASE_GUARD, move || sequential::run(case));
    }
}

/// Regression, found by [`threads_sharing_a_recorder_lose_no_event`] (its seed is in the
/// regressions file): `stop()` turns the state to `Stopping` before it closes admission,
/// and a driver that looked in between ended the stop while a producer blocked for room
/// could still reserve; four accepted events were never applied and the recorder said
/// `Stopped` with them pending. The race needs the stopping thread to be preempted inside
/// `stop()`, so this case, the one the property shrank to, loses it only seldom; the
/// queue's unit test `a_queue_is_drained_only_once_admission_is_closed` pins the rule the
/// fix rests on (a stop ends only once admission is closed and every reservation is
/// finished).
#[test]
fn regression_a_stop_racing_a_blocked_producer_applies_every_accepted_event() {
    use RecorderThreadStep::{Register, SnapshotNow, Stop};
    let first = [
        Register(3),
        Register(39),
        Register(37),
        SnapshotNow,
        Register(9),
        Register(3),
        Register(47),
        Register(45),
        Register(24),
        Register(17),
        SnapshotNow,
        Register(23),
        Register(3),
        Register(40),
        Register(12),
        Register(9),
        Register(19),
        Register(29),
        Register(3),
        Register(46),
    ];
    let second = [
        Register(36),
        Register(28),
        SnapshotNow,
        Register(12),
        SnapshotNow,
        Register(0),
        Register(11),
        Register(41),
        Register(15),
        Register(36),
        Register(0),
        SnapshotNow,
        Register(0),
        Register(14),
        Register(22),
        Register(3),
        Register(33),
        Register(25),
        Register(1),
        Register(17),
        Register(30),
        Register(42),
        Stop,
    ];
    for _ in 0..100 {
        let case = ConcurrentRecorderCase {
            capacity: 5,
            policy: OverflowPolicy::Block,
            threads: vec![first.to_vec(), second.to_vec()],
        };
        within(CASE_GUARD, move || concurrent::run_recorder(case));
    }
}
