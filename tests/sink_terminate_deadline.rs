//! `Terminator` deadlines: `terminate_within`, `terminate_deadline` and the configured
//! terminate timeout hold whatever the dispatcher does. Past the deadline the sink is ended
//! from outside its driver: every event still queued or in dispatch is counted failed, the
//! runtime thread is left to end on its own, and the error names what was abandoned —
//! also when the dispatcher blocks its thread, which no timer on that thread can cut off.
//!
//! The child-process test runs `examples/terminate_deadline.rs`: a program logging to a
//! stdout pipe nobody reads ends within its deadline. `cargo test` builds the example; run
//! alone, build it first with `cargo build --example terminate_deadline`.
//!
//! Every test body runs under a watchdog. The only timed assertions are generous upper
//! bounds on calls that must not hang ([`BOUND`], far above the deadline they enforce).
#![cfg(not(loom))]

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use mvx::error::{SinkError, TerminateError, TerminateStage};
use mvx::queue::{LogOutcome, QueueStats};
use mvx::rt::Terminator;
use mvx::sink::sinks::MemorySink;
use mvx::sink::{AsyncSink, DEFAULT_JOIN_GRACE, DEFAULT_STOP_TIMEOUT, Dispatch, SinkConfig};
use mvx::{BoxError, ErrorReason, State};

#[path = "support/sink_harness.rs"]
mod sink_harness;
#[path = "support/watchdog.rs"]
mod watchdog;

use sink_harness::{Probe, assert_refused};
use watchdog::{GUARD, within_guard};

/// The deadline the tests give `terminate_within`.
const DEADLINE: Duration = Duration::from_millis(200);

/// How long a terminate with [`DEADLINE`] may take at most: generous, it catches a
/// terminate held by user code (which would take ten seconds here), not slowness.
const BOUND: Duration = Duration::from_secs(3);

/// The adapters that own a runtime thread.
#[derive(Clone, Copy, Debug)]
enum Runtime {
    Thread,
    Smol,
}

impl Runtime {
    fn create<D: Dispatch<u32>>(
        self,
        dispatch: D,
        config: SinkConfig,
    ) -> (AsyncSink<u32>, Terminator) {
        match self {
            Self::Thread => mvx::rt::thread::create(dispatch, config),
            Self::Smol => mvx::rt::smol::create(dispatch, config),
        }
        .expect("the sink starts")
    }
}

fn config() -> SinkConfig {
    SinkConfig::default().queue_capacity(64)
}

/// `(accepted, delivered, failed, pending)`.
fn counts(stats: QueueStats) -> (u64, u64, u64, u64) {
    (stats.accepted, stats.delivered, stats.failed, stats.pending)
}

/// A dispatcher that tells the test which event it is dispatching, and sleeps — blocking
/// its thread, as synchronous user code does — for ten seconds on `sleeps_on`.
struct Sleeper {
    entered: mpsc::Sender<u32>,
    sleeps_on: u32,
}

impl Dispatch<u32> for Sleeper {
    async fn dispatch(&mut self, event: u32) -> Result<(), BoxError> {
        let _ = self.entered.send(event);
        if event == self.sleeps_on {
            std::thread::sleep(Duration::from_secs(10));
        }
        Ok(())
    }
}

/// A started sink whose dispatcher is asleep in `dispatch(0)`, with events 1..5 queued
/// behind it.
fn asleep(runtime: Runtime, config: SinkConfig) -> (AsyncSink<u32>, Terminator) {
    let (entered, dispatching) = mpsc::channel();
    let (sink, terminator) = runtime.create(
        Sleeper {
            entered,
            sleeps_on: 0,
        },
        config,
    );
    assert_eq!(sink.log(0), Ok(LogOutcome::Accepted));
    assert_eq!(dispatching.recv_timeout(GUARD), Ok(0));
    for event in 1..5 {
        assert_eq!(sink.log(event), Ok(LogOutcome::Accepted));
    }
    (sink, terminator)
}

/// `outcome` is `TimedOut` after `timeout`, at `stage`, with `abandoned` events counted
/// failed; returns its final counters.
fn assert_timed_out(
    outcome: &Result<QueueStats, TerminateError>,
    timeout: Duration,
    stage: TerminateStage,
    abandoned: u64,
) -> QueueStats {
    let error = outcome.as_ref().expect_err("the terminate timed out");
    match error {
        TerminateError::TimedOut {
            timeout: took,
            stage: at,
            abandoned: count,
            ..
        } => {
            assert_eq!((*took, *at, *count), (timeout, stage, abandoned), "{error}");
        }
        other => panic!("expected TimedOut, got {other:?}"),
    }
    assert_eq!(error.reason(), ErrorReason::TerminateTimedOut);
    assert_eq!(error.reason().as_str(), "TERMINATE_TIMED_OUT");
    let stats = error
        .stats()
        .expect("a timed-out terminate has the final counters");
    assert_eq!(stats.pending, 0, "{stats}");
    assert_eq!(stats.accepted, stats.delivered + stats.failed, "{stats}");
    stats
}

/// The sink was ended by a terminator past its deadline: it is `state`, refuses events and
/// flushes with the terminator's error, at once.
fn assert_ended_from_outside(sink: &AsyncSink<u32>, state: State, abandoned: u64) {
    assert_eq!(sink.state(), state);
    let error = sink.last_error().expect("the sink keeps why it ended");
    match &error {
        SinkError::TerminateTimedOut {
            abandoned: count, ..
        } => assert_eq!(*count, abandoned),
        other => panic!("expected TerminateTimedOut, got {other:?}"),
    }
    assert_eq!(error.reason(), ErrorReason::TerminateTimedOut);
    assert_eq!(
        sink.flush_blocking().map_err(|e| e.reason()),
        Err(ErrorReason::TerminateTimedOut)
    );
    assert_refused(sink.log(99), 99, state);
}

fn a_dispatcher_asleep_cannot_hold_terminate_within(runtime: Runtime) {
    within_guard(move || {
        let (sink, terminator) = asleep(runtime, config());

        let started = Instant::now();
        let outcome = terminator.terminate_within(DEADLINE);
        let took = started.elapsed();
        assert!(
            took >= DEADLINE,
            "returned after {took:?}, before its deadline"
        );
        assert!(took < BOUND, "terminate_within({DEADLINE:?}) took {took:?}");

        // Event 0 was in dispatch, 1..5 queued: all five are counted failed.
        let stats = assert_timed_out(&outcome, DEADLINE, TerminateStage::Dispatch, 5);
        assert_eq!(counts(stats), (5, 0, 5, 0));
        assert_eq!(sink.stats(), stats);
        assert_ended_from_outside(&sink, State::Stopped, 5);

        // Later calls return the same outcome, without waiting again.
        assert_eq!(
            terminator.terminate().map_err(|e| e.to_string()),
            outcome.map_err(|e| e.to_string())
        );
        assert!(terminator.is_terminated());
        // The dispatcher still sleeps on the runtime thread; when it wakes, nothing is
        // counted again (the counters are final, but for the one event refused above).
        assert_eq!(
            sink.stats(),
            QueueStats {
                refused: stats.refused + 1,
                ..stats
            }
        );
    });
}

#[test]
fn a_dispatcher_asleep_for_ten_seconds_cannot_hold_terminate_within_on_thread() {
    a_dispatcher_asleep_cannot_hold_terminate_within(Runtime::Thread);
}

#[test]
fn a_dispatcher_asleep_for_ten_seconds_cannot_hold_terminate_within_on_smol() {
    a_dispatcher_asleep_cannot_hold_terminate_within(Runtime::Smol);
}

#[test]
fn the_configured_terminate_timeout_bounds_terminate_and_the_last_drop() {
    within_guard(|| {
        let config = config().terminate_timeout(Some(DEADLINE));
        assert_eq!(config.effective_terminate_timeout(), Some(DEADLINE));

        let (sink, terminator) = asleep(Runtime::Thread, config.clone());
        let started = Instant::now();
        let outcome = terminator.terminate();
        assert!(
            started.elapsed() < BOUND,
            "terminate() took {:?}",
            started.elapsed()
        );
        assert_eq!(
            counts(assert_timed_out(
                &outcome,
                DEADLINE,
                TerminateStage::Dispatch,
                5
            )),
            (5, 0, 5, 0)
        );

        // The drop of the last terminator is bounded the same way.
        let (sink_2, terminator) = asleep(Runtime::Thread, config);
        let started = Instant::now();
        drop(terminator);
        assert!(
            started.elapsed() < BOUND,
            "the drop took {:?}",
            started.elapsed()
        );
        assert_eq!(counts(sink_2.stats()), (5, 0, 5, 0));
        assert_ended_from_outside(&sink_2, State::Stopped, 5);
        drop(sink);
    });
}

#[test]
fn by_default_terminate_takes_at_most_the_stop_timeout_and_a_join_grace() {
    let config = SinkConfig::default();
    assert_eq!(DEFAULT_JOIN_GRACE, Duration::from_secs(1));
    assert_eq!(config.join_grace, DEFAULT_JOIN_GRACE);
    assert_eq!(config.terminate_timeout, None);
    assert_eq!(
        config.effective_terminate_timeout(),
        Some(DEFAULT_STOP_TIMEOUT + DEFAULT_JOIN_GRACE)
    );
    let short = config
        .clone()
        .stop_timeout(Some(Duration::from_millis(300)))
        .join_grace(Duration::from_millis(50));
    assert_eq!(
        short.effective_terminate_timeout(),
        Some(Duration::from_millis(350))
    );
    // Without a stop timeout, and none of its own, a terminate waits as long as it takes.
    assert_eq!(
        config
            .clone()
            .stop_timeout(None)
            .effective_terminate_timeout(),
        None
    );
    assert_eq!(
        config
            .stop_timeout(None)
            .terminate_timeout(Some(DEADLINE))
            .effective_terminate_timeout(),
        Some(DEADLINE)
    );
}

#[test]
fn the_default_deadline_ends_a_sink_whose_stop_timeout_cannot() {
    within_guard(|| {
        // A stop timeout cannot cut off a dispatcher that blocks its thread; the terminate
        // timeout derived from it (stop timeout + join grace) can.
        let config = config()
            .stop_timeout(Some(Duration::from_millis(100)))
            .join_grace(Duration::from_millis(100));
        let (sink, terminator) = asleep(Runtime::Thread, config);
        let started = Instant::now();
        let outcome = terminator.terminate();
        assert!(
            started.elapsed() < BOUND,
            "terminate() took {:?}",
            started.elapsed()
        );
        let stats = assert_timed_out(&outcome, DEADLINE, TerminateStage::Dispatch, 5);
        assert_eq!(counts(stats), (5, 0, 5, 0));
        assert_ended_from_outside(&sink, State::Stopped, 5);
    });
}

#[test]
fn a_deadline_already_passed_ends_a_stuck_sink_at_once() {
    within_guard(|| {
        let (sink, terminator) = asleep(Runtime::Thread, config());
        let started = Instant::now();
        let outcome = terminator.terminate_deadline(Instant::now());
        assert!(started.elapsed() < BOUND, "took {:?}", started.elapsed());
        let stats = assert_timed_out(&outcome, Duration::ZERO, TerminateStage::Dispatch, 5);
        assert_eq!(counts(stats), (5, 0, 5, 0));
        assert_ended_from_outside(&sink, State::Stopped, 5);
    });
}

fn a_sink_that_stops_in_time_is_not_cut_off(runtime: Runtime) {
    within_guard(move || {
        let (memory, events) = MemorySink::new();
        let (sink, terminator) = runtime.create(memory, config());
        for event in 0..40 {
            assert_eq!(sink.log(event), Ok(LogOutcome::Accepted));
        }
        let stats = terminator
            .terminate_within(GUARD)
            .expect("the sink stops within the deadline");
        assert_eq!(counts(stats), (40, 40, 0, 0));
        assert_eq!(events.take(), (0..40).collect::<Vec<_>>());
        assert_eq!(sink.state(), State::Stopped);
        assert_eq!(sink.last_error().map(|e| e.reason()), None);
    });
}

#[test]
fn a_sink_that_stops_in_time_is_not_cut_off_on_thread() {
    a_sink_that_stops_in_time_is_not_cut_off(Runtime::Thread);
}

#[test]
fn a_sink_that_stops_in_time_is_not_cut_off_on_smol() {
    a_sink_that_stops_in_time_is_not_cut_off(Runtime::Smol);
}

#[test]
fn a_dispatch_that_never_completes_is_abandoned_at_the_deadline() {
    within_guard(|| {
        // Pending for ever, without blocking the thread; no stop timeout to cut it off.
        let probe = Probe {
            hang_on: Some(0),
            ..Probe::default()
        };
        let seen = probe.seen.clone();
        let (sink, terminator) =
            Runtime::Thread.create(probe, config().stop_timeout(None).batch_size(1));
        for event in 0..3 {
            assert_eq!(sink.log(event), Ok(LogOutcome::Accepted));
        }
        seen.wait_for(sink_harness::Call::Dispatch(0));
        let outcome = terminator.terminate_within(DEADLINE);
        let stats = assert_timed_out(&outcome, DEADLINE, TerminateStage::Dispatch, 3);
        assert_eq!(counts(stats), (3, 0, 3, 0));
        assert_ended_from_outside(&sink, State::Stopped, 3);
    });
}

#[test]
fn a_stop_hook_that_never_returns_is_abandoned_at_the_deadline() {
    within_guard(|| {
        let probe = Probe {
            stop_hangs: true,
            ..Probe::default()
        };
        let seen = probe.seen.clone();
        let (sink, terminator) = Runtime::Thread.create(probe, config().stop_timeout(None));
        for event in 0..3 {
            assert_eq!(sink.log(event), Ok(LogOutcome::Accepted));
        }
        let outcome = terminator.terminate_within(DEADLINE);
        // Every event was delivered before the stop hook hung: none is abandoned.
        let stats = assert_timed_out(&outcome, DEADLINE, TerminateStage::Stop, 0);
        assert_eq!(counts(stats), (3, 3, 0, 0));
        assert_eq!(seen.delivered(), [0, 1, 2]);
        assert_ended_from_outside(&sink, State::Stopped, 0);
    });
}

/// A dispatcher whose `Drop` blocks its thread until the test opens the gate: the sink
/// stops, but its runtime thread does not end.
struct DropBlocks {
    gate: Arc<(Mutex<bool>, Condvar)>,
    dropping: Arc<AtomicBool>,
}

impl Dispatch<u32> for DropBlocks {
    async fn dispatch(&mut self, _event: u32) -> Result<(), BoxError> {
        Ok(())
    }
}

impl Drop for DropBlocks {
    fn drop(&mut self) {
        self.dropping.store(true, Ordering::Release);
        let (open, changed) = &*self.gate;
        let open = open.lock().unwrap();
        let _open = changed.wait_while(open, |open| !*open).unwrap();
    }
}

#[test]
fn a_runtime_thread_that_outlives_the_deadline_is_left_to_end_on_its_own() {
    within_guard(|| {
        let gate = Arc::new((Mutex::new(false), Condvar::new()));
        let dropping = Arc::new(AtomicBool::new(false));
        let (sink, terminator) = Runtime::Thread.create(
            DropBlocks {
                gate: gate.clone(),
                dropping: dropping.clone(),
            },
            config(),
        );
        for event in 0..3 {
            assert_eq!(sink.log(event), Ok(LogOutcome::Accepted));
        }
        let started = Instant::now();
        let outcome = terminator.terminate_within(DEADLINE);
        assert!(started.elapsed() < BOUND, "took {:?}", started.elapsed());
        // The stop was clean; the thread, held in the dispatcher's drop, was not joined.
        let stats = assert_timed_out(&outcome, DEADLINE, TerminateStage::Join, 0);
        assert_eq!(counts(stats), (3, 3, 0, 0));
        assert!(dropping.load(Ordering::Acquire));
        assert_eq!(sink.state(), State::Stopped);
        assert_eq!(sink.last_error().map(|e| e.reason()), None);
        let (open, changed) = &*gate;
        *open.lock().unwrap() = true;
        changed.notify_all();
    });
}

// ---------------------------------------------------------------------------------------
// In a child process: a stdout pipe nobody reads
// ---------------------------------------------------------------------------------------

#[cfg(unix)]
mod child_process {
    use std::io::Read;
    use std::path::PathBuf;
    use std::process::{Command, Stdio};
    use std::time::{Duration, Instant};

    use super::{BOUND, watchdog::within_guard};

    fn example_binary() -> PathBuf {
        let test_binary = std::env::current_exe().expect("the test binary's path");
        // target/<profile>/deps/<test>-<hash> → target/<profile>/examples/terminate_deadline
        let profile_dir = test_binary
            .parent()
            .and_then(|deps| deps.parent())
            .expect("the test binary lives in target/<profile>/deps");
        let binary = profile_dir.join("examples").join("terminate_deadline");
        assert!(
            binary.exists(),
            "{} is missing: `cargo test` builds it; alone, run \
             `cargo build --example terminate_deadline` first",
            binary.display()
        );
        binary
    }

    /// The `key=value` counters of the example's report.
    fn counter(report: &str, key: &str) -> u64 {
        report
            .split([' ', ';'])
            .find_map(|word| word.strip_prefix(key)?.strip_prefix('='))
            .unwrap_or_else(|| panic!("no {key} in {report:?}"))
            .parse()
            .unwrap_or_else(|_| panic!("{key} is not a number in {report:?}"))
    }

    #[test]
    fn a_program_logging_to_a_pipe_nobody_reads_exits_within_its_deadline() {
        within_guard(|| {
            let started = Instant::now();
            let mut child = Command::new(example_binary())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .expect("the example starts");
            // Held open and never read: the child's writes block once the pipe is full.
            let _stdout = child.stdout.take().expect("a stdout pipe");
            let mut stderr = String::new();
            child
                .stderr
                .take()
                .expect("a stderr pipe")
                .read_to_string(&mut stderr)
                .expect("the child's stderr is readable");
            let status = child.wait().expect("the child exits");
            let took = started.elapsed();
            assert!(status.success(), "{status}: {stderr}");
            // The deadline is 200 ms; "about a second" with room for a loaded machine.
            assert!(took < BOUND, "the child ran for {took:?}: {stderr}");
            assert!(took >= Duration::from_millis(200), "{took:?}: {stderr}");

            let report = stderr.trim_end();
            assert!(
                report.starts_with("terminate_deadline: TERMINATE_TIMED_OUT after "),
                "{report}"
            );
            assert!(report.contains("(dispatching, "), "{report}");
            let (accepted, delivered, failed, pending) = (
                counter(report, "accepted"),
                counter(report, "delivered"),
                counter(report, "failed"),
                counter(report, "pending"),
            );
            assert_eq!(accepted, 20_000, "{report}");
            assert_eq!(pending, 0, "{report}");
            assert_eq!(delivered + failed, accepted, "{report}");
            // A pipe holds 64 KiB, a few thousand of these lines: most were lost, and counted.
            assert!(failed > 10_000, "{report}");
            assert!(report.contains(&format!("{failed} abandoned")), "{report}");
        });
    }
}
