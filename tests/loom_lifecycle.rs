//! loom models of the lifecycle state machine: `start()`, `stop()`, lazy starts, the
//! driver's own transitions and the drop of the driver racing each other.
//!
//! What the models check, in every interleaving loom explores:
//! - only legal transitions: every transition is a compare-and-swap from the state the
//!   caller saw under the lifecycle lock, so one made elsewhere fails its `expect`; the
//!   legal-transition `debug_assert!` is on (the `loom` profile keeps mvx's debug
//!   assertions); and the states each thread reads follow the transition graph;
//! - every `WaitHandle` resolves, once, with the result its operation ended with: handles
//!   on one operation agree, a refused operation names the state that refused it, and the
//!   waiting itself (blocking `wait()` or `.await`) never misses the completion (loom
//!   reports a waiter left blocked as a deadlock).
//!
//! Run with `RUSTFLAGS="--cfg loom" cargo test --profile loom --no-default-features
//! --features thread --test loom_lifecycle` (see `.ci/run`).
#![cfg(loom)]

#[path = "support/loom_harness.rs"]
mod loom_harness;

use futures::future::{Either, select};
use loom::future::block_on;
use loom::thread;

use mvx::error::SinkError;
use mvx::queue::{LogOutcome, OverflowPolicy};
use mvx::sink::AsyncSink;
use mvx::{ErrorReason, Op, OpResult, State};

use loom_harness::{Counted, Failing, Hooks, assert_lifecycle_order, config, model, spawn_driver};

/// What a result says, in a form the models compare: the operation, the reason of its
/// error, and for `InvalidState` the state that refused it.
fn outcome(result: &OpResult) -> (Op, Option<ErrorReason>, Option<State>) {
    assert_eq!(result.success, result.error.is_none(), "{result:?}");
    let actual = match &result.error {
        Some(SinkError::InvalidState { actual, .. }) => Some(*actual),
        _ => None,
    };
    (
        result.op,
        result.error.as_ref().map(SinkError::reason),
        actual,
    )
}

const STARTED: (Op, Option<ErrorReason>, Option<State>) = (Op::Start, None, None);
const STOPPED: (Op, Option<ErrorReason>, Option<State>) = (Op::Stop, None, None);

/// `start()` on one thread, `stop()` on another, the driver on a third. The start always
/// succeeds; the stop succeeds if it comes after the start completed, else it is refused by
/// the state it met (`Virgin` or `Starting`) and a second stop succeeds. The stop is
/// awaited as a future, the start waited on, so both ways of waiting are exercised.
#[test]
fn start_and_stop_race_the_driver() {
    model(2, || {
        let (sink, driver) =
            AsyncSink::new(Counted::default(), config(1, OverflowPolicy::RaiseError));
        let driver = spawn_driver(driver);
        let starter = {
            let sink = sink.clone();
            thread::spawn(move || sink.start().wait())
        };

        let mut states = vec![sink.state()];
        let first_stop = outcome(&block_on(sink.stop()));
        states.push(sink.state());
        let start = outcome(&starter.join().unwrap());
        assert_eq!(start, STARTED);
        states.push(sink.state());
        match first_stop {
            STOPPED => {}
            (Op::Stop, Some(ErrorReason::InvalidState), Some(State::Virgin | State::Starting)) => {
                assert_eq!(outcome(&sink.stop().wait()), STOPPED);
            }
            other => panic!("unexpected stop result {other:?}"),
        }
        driver.join().unwrap();
        states.push(sink.state());
        assert_lifecycle_order(&states);
        assert_eq!(sink.state(), State::Stopped);
        // A start after the end is refused by the terminal state.
        assert_eq!(
            outcome(&sink.start().wait()),
            (
                Op::Start,
                Some(ErrorReason::InvalidState),
                Some(State::Stopped)
            )
        );
    });
}

/// Two `start()` calls race: one makes the transition, the other attaches to the same
/// operation, and both handles resolve with its success.
#[test]
fn racing_starts_share_one_operation() {
    model(1, || {
        let (sink, driver) =
            AsyncSink::new(Counted::default(), config(1, OverflowPolicy::RaiseError));
        let driver = spawn_driver(driver);
        let starter = {
            let sink = sink.clone();
            thread::spawn(move || block_on(sink.start()))
        };
        let mine = outcome(&sink.start().wait());
        let theirs = outcome(&starter.join().unwrap());
        assert_eq!((mine, theirs), (STARTED, STARTED));
        assert_eq!(sink.state(), State::Running);

        assert_eq!(outcome(&sink.stop().wait()), STOPPED);
        driver.join().unwrap();
        assert_eq!(sink.state(), State::Stopped);
    });
}

/// With lazy start, two producers log into a `Virgin` sink at once: each starts it or
/// finds it started, one start operation results, and both events are accepted (the sink
/// is `Starting`, which accepts events) and then delivered.
///
/// Regression: a producer that found admission closed started the sink only if it still
/// read `Virgin`; when the other producer's start came in between, it refused its event
/// with `NotAccepting` in `Starting`.
#[test]
fn lazy_starts_from_racing_producers_start_once() {
    model(1, || {
        let counted = Counted::default();
        let (sink, driver) = AsyncSink::new(
            counted.clone(),
            config(2, OverflowPolicy::RaiseError).lazy_start(true),
        );
        let producer = {
            let sink = sink.clone();
            thread::spawn(move || sink.log(1).map_err(|error| error.reason()))
        };
        assert_eq!(
            sink.log(0).map_err(|error| error.reason()),
            Ok(LogOutcome::Accepted)
        );
        assert_eq!(producer.join().unwrap(), Ok(LogOutcome::Accepted));
        assert_eq!(sink.state(), State::Starting);

        // The driver, only now: the race is between the lazy starts.
        let driver = spawn_driver(driver);
        // Attaches to the lazy start's operation.
        assert_eq!(outcome(&sink.start().wait()), STARTED);
        assert_eq!(outcome(&sink.stop().wait()), STOPPED);
        driver.join().unwrap();
        assert_eq!(counted.delivered(), 2);
        let stats = sink.stats();
        assert_eq!(
            (stats.accepted, stats.delivered, stats.pending),
            (2, 2, 0),
            "{stats}"
        );
    });
}

/// A start whose hook fails races a stop: the start fails with the hook's error and the
/// sink ends in `Failure`; the stop never succeeds, it is refused by `Virgin`, `Starting`
/// or `Failure`.
#[test]
fn a_failing_start_races_a_stop() {
    model(2, || {
        let (sink, driver) =
            AsyncSink::new(Hooks(Failing::Start), config(1, OverflowPolicy::RaiseError));
        let driver = spawn_driver(driver);
        let starter = {
            let sink = sink.clone();
            thread::spawn(move || sink.start().wait())
        };

        let before = sink.state();
        let stop = outcome(&sink.stop().wait());
        let after = sink.state();
        assert!(
            matches!(
                stop,
                (
                    Op::Stop,
                    Some(ErrorReason::InvalidState),
                    Some(State::Virgin | State::Starting | State::Failure)
                )
            ),
            "{stop:?}"
        );
        assert_eq!(
            outcome(&starter.join().unwrap()),
            (Op::Start, Some(ErrorReason::OnStartingHookFailed), None)
        );
        driver.join().unwrap();
        assert_lifecycle_order(&[before, after, sink.state()]);
        assert_eq!(sink.state(), State::Failure);
    });
}

/// A stop races the drop of a driver that is dropped as soon as the start completed (as an
/// executor shutting down would drop it). The sink ends `Stopped` if the driver finished
/// the stop first, else `Cancelled`; the stop result says which: success, the cancellation,
/// or a refusal by the state the stop met. Nothing is left pending.
#[test]
fn a_stop_races_the_drop_of_the_driver() {
    // Small enough for three preemptions; with one, loom never lets the stop in between
    // the start and the drop.
    model(3, || {
        let (sink, driver) =
            AsyncSink::new(Counted::default(), config(1, OverflowPolicy::RaiseError));
        let start = sink.start();
        let driver = thread::spawn(move || {
            // The driver, polled until the start completes, then dropped; unless it ends
            // first, having stopped the sink.
            match block_on(select(driver, start)) {
                Either::Left(((), start)) => outcome(&start.wait()),
                Either::Right((start, driver)) => {
                    drop(driver);
                    outcome(&start)
                }
            }
        });

        let before = sink.state();
        let stop = outcome(&sink.stop().wait());
        assert_eq!(driver.join().unwrap(), STARTED);
        let end = sink.state();
        assert_lifecycle_order(&[before, end]);
        match (end, stop) {
            (State::Stopped, STOPPED)
            | (State::Cancelled, (Op::Stop, Some(ErrorReason::DispatcherCancelled), None))
            | (
                State::Cancelled,
                (
                    Op::Stop,
                    Some(ErrorReason::InvalidState),
                    Some(State::Starting | State::Cancelled),
                ),
            ) => {}
            other => panic!("unexpected end {other:?}"),
        }
        assert_eq!(sink.stats().pending, 0);
    });
}
