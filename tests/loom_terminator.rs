//! loom models of `Terminator`: concurrent `terminate()` calls, a terminate racing a
//! `stop()`, the drop of the last two clones at once, and a terminate past its deadline —
//! the sink ended from outside its driver — racing the driver coming back from its
//! dispatch, and racing a producer.
//!
//! The terminator comes from `mvx::__loom::terminator`: the real `Terminator` over a
//! runtime thread that is a loom thread polling the driver (loom cannot run mvx's executor
//! thread). loom has no clock: a deadline that has passed is `mvx::__loom::
//! terminate_past_deadline`, the terminator's own path past its deadline, taken at once.
//! What the models check, in every interleaving loom explores:
//! - no deadlock: every call returns (loom reports a thread left blocked), and a driver
//!   ended from outside leaves on its own (its thread is joined without a deadline);
//! - one outcome: every call reports the same result, the first termination's, and the
//!   sink has stopped and its thread has been joined when any of them returns;
//! - each event counted once: after a terminate past its deadline the counters are final
//!   (`pending == 0`, `accepted == delivered + failed`) and stay so once the driver has
//!   returned, whichever of the driver and the end counted the event.
//!
//! Run with `RUSTFLAGS="--cfg loom" cargo test --profile loom --no-default-features
//! --features thread --test loom_terminator` (see `.ci/run`).
#![cfg(loom)]

#[path = "support/loom_harness.rs"]
mod loom_harness;

use loom::thread;

use mvx::error::{TerminateError, TerminateStage};
use mvx::queue::{LogOutcome, OverflowPolicy, QueueStats};
use mvx::rt::Terminator;
use mvx::sink::AsyncSink;
use mvx::{ErrorReason, State};

use loom_harness::{Counted, Failing, Gated, Hooks, config, model};

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

/// `(accepted, delivered, failed, pending)`.
fn counts(stats: QueueStats) -> Counts {
    (stats.accepted, stats.delivered, stats.failed, stats.pending)
}

/// A terminate past its deadline races the dispatcher returning from its batch (the gate
/// opening on another thread): the end from outside counts the event as failed, or the
/// driver counts it delivered first — never both, never neither — and the driver leaves
/// on its own either way.
#[test]
fn an_end_from_outside_races_the_driver_finishing_its_dispatch() {
    model(2, || {
        let gated = Gated::default();
        let (sink, terminator) = started_sink(gated.clone());

        let opener = {
            let gated = gated.clone();
            thread::spawn(move || gated.open())
        };
        let outcome = mvx::__loom::terminate_past_deadline(&terminator);
        opener.join().unwrap();

        let stats = match &outcome {
            // The driver stopped the sink first: the stop's result.
            Ok(stats) => {
                assert_eq!(counts(*stats), ONE_DELIVERED);
                *stats
            }
            Err(TerminateError::TimedOut {
                stage,
                abandoned,
                stats,
                ..
            }) => {
                match (*stage, *abandoned, counts(**stats)) {
                    // Ended with the event in dispatch, or still queued.
                    (TerminateStage::Dispatch | TerminateStage::Stop, 1, (1, 0, 1, 0)) => {}
                    // Ended after the driver counted it, before the stop was over.
                    (TerminateStage::Stop, 0, ONE_DELIVERED) => {}
                    other => panic!("unexpected end {other:?}"),
                }
                **stats
            }
            Err(other) => panic!("unexpected outcome {other:?}"),
        };
        // Final: the driver has returned (its thread is joined) and counted nothing more.
        assert_eq!(sink.stats(), stats);
        assert_eq!(sink.state(), State::Stopped);
        // What the backend saw: at least what was counted delivered (an abandoned event
        // may have reached it all the same).
        assert!(gated.counted.delivered() >= stats.delivered);
        assert_eq!(reason(terminator.terminate()), reason(outcome));
    });
}

/// The sink is ended from outside while a producer logs: the event is refused, or
/// accepted and then counted exactly once (delivered by the driver, or failed by the
/// end, or its reservation revoked); the counters are final when the end returns.
#[test]
fn an_end_from_outside_races_a_producer() {
    model(2, || {
        let counted = Counted::default();
        let (sink, driver) = AsyncSink::new(counted.clone(), config(2, OverflowPolicy::RaiseError));
        let start = sink.start();
        let terminator = mvx::__loom::terminator(&sink, driver);
        assert!(start.wait().success);

        let producer = {
            let sink = sink.clone();
            thread::spawn(move || sink.log(1).map_err(|error| error.reason()))
        };
        let abandoned = mvx::__loom::end_from_outside(&sink);
        let ended = counts(sink.stats());
        let logged = producer.join().unwrap();

        // The end found the sink live (nothing else ends it here), and its counters were
        // final when it returned.
        let abandoned = abandoned.expect("the sink was live");
        assert_eq!(ended.3, 0, "pending after the end: {ended:?}");
        assert_eq!(ended.0, ended.1 + ended.2, "{ended:?}");
        assert_eq!(ended.2, abandoned);
        match logged {
            Ok(LogOutcome::Accepted) => assert_eq!(ended.0, 1, "{ended:?}"),
            Err(reason) => {
                assert_eq!(reason, ErrorReason::InvalidState);
                assert_eq!(ended, (0, 0, 0, 0));
            }
            Ok(other) => panic!("unexpected {other:?}"),
        }
        assert_eq!(sink.state(), State::Cancelled);
        // The driver leaves on its own; nothing is counted after the end.
        let outcome = reason(terminator.terminate());
        assert_eq!(counts(sink.stats()), ended);
        assert_eq!(outcome, Err(ErrorReason::TerminateTimedOut));
        assert!(counted.delivered() >= ended.1);
    });
}

/// A terminate past its deadline while the dispatcher never returns (its gate stays
/// shut): the end counts the event failed, and its wake-up alone gets the driver out of
/// the pending dispatch, whenever it comes — also between the dispatch returning
/// `Pending` and the driver registering to be woken.
#[test]
fn an_end_from_outside_wakes_a_driver_pending_in_user_code() {
    model(2, || {
        let gated = Gated::default();
        let (sink, terminator) = started_sink(gated.clone());

        let outcome = mvx::__loom::terminate_past_deadline(&terminator);
        match &outcome {
            Err(TerminateError::TimedOut {
                stage,
                abandoned: 1,
                stats,
                ..
            }) => {
                assert!(
                    matches!(stage, TerminateStage::Dispatch | TerminateStage::Stop),
                    "{stage:?}"
                );
                assert_eq!(counts(**stats), (1, 0, 1, 0));
            }
            other => panic!("unexpected outcome {other:?}"),
        }
        assert_eq!(counts(sink.stats()), (1, 0, 1, 0));
        assert_eq!(sink.state(), State::Stopped);
        assert_eq!(gated.counted.delivered(), 0);
    });
}
