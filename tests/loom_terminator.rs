//! loom models of `Terminator`: concurrent `terminate()` calls, a terminate racing a
//! `stop()`, and the drop of the last two clones at once.
//!
//! The terminator comes from `mvx::__loom::terminator`: the real `Terminator` over a
//! runtime thread that is a loom thread polling the driver (loom cannot run mvx's executor
//! thread). What the models check, in every interleaving loom explores:
//! - no deadlock: every call returns (loom reports a thread left blocked);
//! - one outcome: every call reports the same result, the first termination's, and the
//!   sink has stopped and its thread has been joined when any of them returns.
//!
//! Run with `RUSTFLAGS="--cfg loom" cargo test --profile loom --no-default-features
//! --features thread --test loom_terminator` (see `.ci/run`).
#![cfg(loom)]

#[path = "support/loom_harness.rs"]
mod loom_harness;

use loom::thread;

use mvx::error::TerminateError;
use mvx::queue::{LogOutcome, OverflowPolicy, QueueStats};
use mvx::rt::Terminator;
use mvx::sink::AsyncSink;
use mvx::{ErrorReason, State};

use loom_harness::{Counted, Failing, Hooks, config, model};

/// The outcome of `terminate()` reduced to its reason.
fn reason(outcome: Result<QueueStats, TerminateError>) -> Result<Counts, ErrorReason> {
    outcome
        .map(|stats| (stats.accepted, stats.delivered, stats.failed, stats.pending))
        .map_err(|error| error.reason())
}

/// `(accepted, delivered, failed, pending)` of the final counters.
type Counts = (u64, u64, u64, u64);

/// The final counters of a sink whose one event was delivered.
const ONE_DELIVERED: Counts = (1, 1, 0, 0);

/// Terminates on a new thread.
fn spawn_terminate(terminator: &Terminator) -> thread::JoinHandle<Result<Counts, ErrorReason>> {
    let terminator = terminator.clone();
    thread::spawn(move || reason(terminator.terminate()))
}

/// A started sink with one accepted event, and its terminator.
fn started_sink<D: mvx::sink::Dispatch<u32>>(dispatch: D) -> (AsyncSink<u32>, Terminator) {
    let (sink, driver) = AsyncSink::new(dispatch, config(1, OverflowPolicy::RaiseError));
    let start = sink.start();
    let terminator = mvx::__loom::terminator(&sink, driver);
    assert!(start.wait().success);
    assert_eq!(
        sink.log(7).map_err(|error| error.reason()),
        Ok(LogOutcome::Accepted)
    );
    (sink, terminator)
}

/// Two threads terminate at once: both return `Ok` with the final counters, after the
/// accepted event was delivered and the sink stopped.
#[test]
fn concurrent_terminates_both_return_the_outcome() {
    model(2, || {
        let counted = Counted::default();
        let (sink, terminator) = started_sink(counted.clone());

        let other = spawn_terminate(&terminator);
        assert_eq!(reason(terminator.terminate()), Ok(ONE_DELIVERED));
        assert_eq!(sink.state(), State::Stopped);
        assert_eq!(other.join().unwrap(), Ok(ONE_DELIVERED));
        assert!(terminator.is_terminated());
        assert_eq!(counted.delivered(), 1);
        let stats = sink.stats();
        assert_eq!(
            (stats.accepted, stats.delivered, stats.pending),
            (1, 1, 0),
            "{stats}"
        );
    });
}

/// Two threads terminate a sink whose `on_stopped` hook fails: both report that failure,
/// and a later call reports it again without blocking.
#[test]
fn concurrent_terminates_report_the_same_failure() {
    model(2, || {
        let (sink, terminator) = started_sink(Hooks(Failing::Stop));

        let other = spawn_terminate(&terminator);
        let mine = reason(terminator.terminate());
        let theirs = other.join().unwrap();
        assert_eq!(mine, Err(ErrorReason::OnStoppedHookFailed));
        assert_eq!(theirs, mine);
        assert_eq!(reason(terminator.terminate()), mine);
        assert_eq!(sink.state(), State::Stopped);
    });
}

/// A terminate races a `stop()` from a sink handle: the stop either succeeds or finds the
/// terminate's stop in progress; the terminate reports the stop's result either way.
#[test]
fn a_terminate_races_a_stop() {
    model(2, || {
        let counted = Counted::default();
        let (sink, terminator) = started_sink(counted.clone());

        let stopper = {
            let sink = sink.clone();
            thread::spawn(move || sink.stop().wait())
        };
        assert_eq!(reason(terminator.terminate()), Ok(ONE_DELIVERED));
        let stop = stopper.join().unwrap();
        match stop.error.as_ref().map(|error| error.reason()) {
            None => {}
            Some(ErrorReason::InvalidState) => {}
            other => panic!("unexpected stop result {other:?}"),
        }
        assert_eq!(sink.state(), State::Stopped);
        assert_eq!(counted.delivered(), 1);
    });
}

/// The last two clones of a terminator are dropped at once, on two threads: exactly one
/// drop is the last and terminates, so the sink is stopped (its event delivered) once
/// both drops have returned.
#[test]
fn dropping_the_last_clones_at_once_terminates() {
    model(2, || {
        let counted = Counted::default();
        let (sink, terminator) = started_sink(counted.clone());

        let other = terminator.clone();
        let dropper = thread::spawn(move || drop(other));
        drop(terminator);
        dropper.join().unwrap();
        assert_eq!(sink.state(), State::Stopped);
        assert_eq!(counted.delivered(), 1);
    });
}
