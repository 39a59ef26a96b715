//! `Terminator`: idempotent, callable from any number of threads at once, an error (not a
//! deadlock) on the runtime's own thread, run by the drop of the last clone (and, dropped
//! on the runtime thread, a shutdown that cancels the sink), and a faithful carrier of stop
//! and start errors, returned and panicked. Every behaviour is checked under both adapters
//! that own a thread: `rt::thread::create` and `rt::smol::create`.
//!
//! Whether the runtime thread is alive is read from `/proc/<pid>/task/<tid>`: the start
//! hook records the thread it runs on, and the thread must carry the name `mvx-<namespace>`
//! (every test uses a namespace of its own). Every test body runs under a watchdog so that
//! a hang fails the test instead of the run.
#![cfg(not(loom))]

use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::sync::{Arc, Barrier, Mutex, OnceLock};

use mvx::error::{CreateError, LogError, SinkError, TerminateError};
use mvx::queue::{LogOutcome, QueueStats};
use mvx::rt::Terminator;
use mvx::sink::sinks::MemorySink;
use mvx::sink::{AsyncSink, BatchError, Dispatch, SinkConfig};
use mvx::{BoxError, ErrorReason, State};

#[path = "support/sink_harness.rs"]
mod sink_harness;
#[path = "support/watchdog.rs"]
mod watchdog;

use sink_harness::{Call, Probe, Seen, UserError};
use watchdog::within_guard;

/// The pending-event limit of every sink here.
const CAPACITY: usize = 4_096;

/// The adapters that own a runtime thread.
#[derive(Clone, Copy, Debug)]
enum Runtime {
    Thread,
    Smol,
}

impl Runtime {
    /// Creates a sink on this adapter's thread, with a probe on that thread.
    fn create<D: Dispatch<u32>>(
        self,
        dispatch: D,
        config: SinkConfig,
    ) -> (
        Result<(AsyncSink<u32>, Terminator), CreateError>,
        ThreadProbe,
    ) {
        let name = match (&config.namespace, self) {
            (Some(namespace), _) => format!("mvx-{namespace}"),
            (None, Self::Thread) => String::from("mvx-sink"),
            (None, Self::Smol) => String::from("mvx-smol"),
        };
        let task = Arc::new(OnceLock::new());
        let dispatch = Probed {
            inner: dispatch,
            task: task.clone(),
        };
        let created = match self {
            Self::Thread => mvx::rt::thread::create(dispatch, config),
            Self::Smol => mvx::rt::smol::create(dispatch, config),
        };
        (created, ThreadProbe { name, task })
    }

    /// A namespace unique to one test and one adapter. Linux keeps 15 bytes of a thread
    /// name: `mvx-` plus at most 11.
    fn namespace(self, test: &str) -> String {
        let namespace = match self {
            Self::Thread => format!("{test}-t"),
            Self::Smol => format!("{test}-s"),
        };
        assert!(namespace.len() <= 11, "namespace {namespace} is too long");
        namespace
    }
}

fn config(namespace: &str) -> SinkConfig {
    SinkConfig::default()
        .namespace(namespace)
        .queue_capacity(CAPACITY)
}

/// Wraps a dispatcher to record which thread its start hook runs on: the runtime thread.
struct Probed<D> {
    inner: D,
    task: Arc<OnceLock<PathBuf>>,
}

impl<D: Dispatch<u32>> Dispatch<u32> for Probed<D> {
    async fn dispatch(&mut self, event: u32) -> Result<(), BoxError> {
        self.inner.dispatch(event).await
    }

    async fn dispatch_batch(&mut self, events: &mut Vec<u32>) -> Result<(), BatchError> {
        self.inner.dispatch_batch(events).await
    }

    async fn on_starting(&mut self) -> Result<(), BoxError> {
        // `/proc/thread-self` links to `<pid>/task/<tid>` of the calling thread.
        let task = std::fs::read_link("/proc/thread-self").expect("/proc/thread-self");
        let _ = self.task.set(Path::new("/proc").join(task));
        self.inner.on_starting().await
    }

    async fn flush(&mut self) -> Result<(), BoxError> {
        self.inner.flush().await
    }

    async fn on_stopped(&mut self) -> Result<(), BoxError> {
        self.inner.on_stopped().await
    }
}

/// Watches a runtime thread through `/proc/<pid>/task/<tid>`.
#[derive(Debug)]
struct ThreadProbe {
    /// The name the thread must have: `mvx-<namespace>`.
    name: String,
    task: Arc<OnceLock<PathBuf>>,
}

impl ThreadProbe {
    /// Whether the thread exists, has the expected name, and is not exiting.
    ///
    /// A joined thread may linger in `/proc` for a moment while the kernel finishes its
    /// exit; it has `PF_EXITING` set in its `stat` flags by then, so it is not alive.
    fn is_alive(&self) -> bool {
        const PF_EXITING: u64 = 0x4;
        let task = self
            .task
            .get()
            .expect("the start hook ran on the runtime thread");
        let (Ok(comm), Ok(stat)) = (
            std::fs::read_to_string(task.join("comm")),
            std::fs::read_to_string(task.join("stat")),
        ) else {
            return false;
        };
        // `pid (comm) state ppid pgrp session tty_nr tpgid flags ...`
        let after_comm = &stat[stat.rfind(')').expect("stat has a comm") + 1..];
        let fields: Vec<&str> = after_comm.split_whitespace().collect();
        let flags: u64 = fields[6].parse().expect("stat flags are a number");
        let exiting = matches!(fields[0], "Z" | "X") || flags & PF_EXITING != 0;
        comm.trim_end() == self.name && !exiting
    }
}

fn stats(accepted: u64, delivered: u64, failed: u64, high_watermark: usize) -> QueueStats {
    QueueStats {
        accepted,
        delivered,
        failed,
        dropped: 0,
        refused: 0,
        pending: accepted - delivered - failed,
        capacity: CAPACITY,
        high_watermark,
        restarts: 0,
    }
}

fn log_range(sink: &AsyncSink<u32>, events: std::ops::Range<u32>) {
    for event in events {
        assert_eq!(sink.log(event), Ok(LogOutcome::Accepted));
    }
}

// ---------------------------------------------------------------------------------------
// Twice, and from four threads at once
// ---------------------------------------------------------------------------------------

fn terminate_twice(runtime: Runtime) {
    let namespace = runtime.namespace("twice");
    let (memory, events) = MemorySink::new();
    let (created, thread) = runtime.create(memory, config(&namespace));
    let (sink, terminator) = created.expect("the sink starts");
    assert_eq!(sink.state(), State::Running);
    assert!(thread.is_alive(), "{thread:?}");
    assert!(!terminator.is_terminated());

    log_range(&sink, 0..100);
    let first = terminator.terminate();
    assert!(terminator.is_terminated());
    assert_eq!(sink.state(), State::Stopped);
    assert_eq!(events.take(), (0..100).collect::<Vec<_>>());
    let after_first = sink.stats();
    assert_eq!(after_first, stats(100, 100, 0, after_first.high_watermark));
    // The outcome is the final counters.
    assert_eq!(first.map_err(|error| error.reason()), Ok(after_first));
    assert!(!thread.is_alive(), "{thread:?}");

    // The second call has nothing left to do: same outcome, nothing changes.
    let second = terminator.terminate();
    assert_eq!(second.map_err(|error| error.reason()), Ok(after_first));
    assert_eq!(sink.state(), State::Stopped);
    assert_eq!(sink.stats(), after_first);
    // A clone shares the outcome.
    let clone = terminator.clone();
    assert!(clone.is_terminated());
    assert_eq!(
        clone.terminate().map_err(|error| error.reason()),
        Ok(after_first)
    );
}

#[test]
fn terminate_twice_returns_the_same_outcome_on_thread() {
    within_guard(|| terminate_twice(Runtime::Thread));
}

#[test]
fn terminate_twice_returns_the_same_outcome_on_smol() {
    within_guard(|| terminate_twice(Runtime::Smol));
}

fn terminate_from_four_threads(runtime: Runtime) {
    const EVENTS: u32 = 2_000;
    const CALLERS: usize = 4;
    let namespace = runtime.namespace("race");
    let (memory, events) = MemorySink::new();
    let (created, thread) = runtime.create(memory, config(&namespace));
    let (sink, terminator) = created.expect("the sink starts");
    assert!(thread.is_alive(), "{thread:?}");
    log_range(&sink, 0..EVENTS);

    let barrier = Arc::new(Barrier::new(CALLERS));
    let callers: Vec<_> = (0..CALLERS)
        .map(|_| {
            let terminator = terminator.clone();
            let barrier = barrier.clone();
            std::thread::spawn(move || {
                barrier.wait();
                terminator.terminate()
            })
        })
        .collect();
    for caller in callers {
        let outcome = caller.join().expect("terminate() does not panic");
        // Every caller gets the final counters.
        assert_eq!(outcome.map_err(|error| error.reason()), Ok(sink.stats()));
    }

    assert!(terminator.is_terminated());
    assert_eq!(sink.state(), State::Stopped);
    let stats_now = sink.stats();
    assert_eq!(
        stats_now,
        stats(
            u64::from(EVENTS),
            u64::from(EVENTS),
            0,
            stats_now.high_watermark
        )
    );
    assert_eq!(events.take(), (0..EVENTS).collect::<Vec<_>>());
    assert!(!thread.is_alive(), "{thread:?}");
}

#[test]
fn terminate_from_four_threads_at_once_on_thread() {
    within_guard(|| terminate_from_four_threads(Runtime::Thread));
}

#[test]
fn terminate_from_four_threads_at_once_on_smol() {
    within_guard(|| terminate_from_four_threads(Runtime::Smol));
}

// ---------------------------------------------------------------------------------------
// From the runtime's own thread
// ---------------------------------------------------------------------------------------

/// Calls `terminate()` from inside its first dispatch (on the runtime thread) and reports
/// the outcome; delivers every event to `delivered`.
struct TerminatesItself {
    terminator: Arc<Mutex<Option<Terminator>>>,
    outcome: mpsc::Sender<Result<QueueStats, TerminateError>>,
    delivered: Arc<Mutex<Vec<u32>>>,
}

impl Dispatch<u32> for TerminatesItself {
    async fn dispatch(&mut self, event: u32) -> Result<(), BoxError> {
        let terminator = self.terminator.lock().unwrap().take();
        if let Some(terminator) = terminator {
            let _ = self.outcome.send(terminator.terminate());
            // Dropped here, on the runtime thread: not the last clone, so nothing happens.
        }
        self.delivered.lock().unwrap().push(event);
        Ok(())
    }
}

fn terminate_from_the_runtime_thread(runtime: Runtime) {
    let namespace = runtime.namespace("self");
    let slot = Arc::new(Mutex::new(None));
    let delivered = Arc::new(Mutex::new(Vec::new()));
    let (outcome_tx, outcome_rx) = mpsc::channel();
    let dispatch = TerminatesItself {
        terminator: slot.clone(),
        outcome: outcome_tx,
        delivered: delivered.clone(),
    };
    let (created, thread) = runtime.create(dispatch, config(&namespace));
    let (sink, terminator) = created.expect("the sink starts");
    *slot.lock().unwrap() = Some(terminator.clone());

    log_range(&sink, 0..3);
    let from_runtime = outcome_rx
        .recv()
        .expect("the dispatcher reports the outcome of its terminate()");
    match &from_runtime {
        Err(TerminateError::CalledFromRuntimeThread) => {}
        other => panic!("expected CalledFromRuntimeThread, got {other:?}"),
    }
    assert_eq!(
        from_runtime.unwrap_err().reason(),
        ErrorReason::CalledFromRuntimeThread
    );
    // Nothing was done: the sink still runs, and the terminator has no outcome yet.
    assert!(!terminator.is_terminated());

    sink.flush_blocking().expect("the flush is served");
    assert_eq!(sink.state(), State::Running);
    assert_eq!(*delivered.lock().unwrap(), vec![0, 1, 2]);

    // From another thread it works.
    let outcome = terminator.terminate();
    assert_eq!(sink.state(), State::Stopped);
    let stats_now = sink.stats();
    assert_eq!(outcome.map_err(|error| error.reason()), Ok(stats_now));
    assert_eq!(stats_now, stats(3, 3, 0, stats_now.high_watermark));
    assert!(!thread.is_alive(), "{thread:?}");
    assert!(slot.lock().unwrap().is_none());
}

#[test]
fn terminate_from_the_runtime_thread_is_an_error_on_thread() {
    within_guard(|| terminate_from_the_runtime_thread(Runtime::Thread));
}

#[test]
fn terminate_from_the_runtime_thread_is_an_error_on_smol() {
    within_guard(|| terminate_from_the_runtime_thread(Runtime::Smol));
}

// ---------------------------------------------------------------------------------------
// Drop of the last clone
// ---------------------------------------------------------------------------------------

fn drop_of_the_last_clone_terminates(runtime: Runtime) {
    let namespace = runtime.namespace("drop");
    let (memory, events) = MemorySink::new();
    let (created, thread) = runtime.create(memory, config(&namespace));
    let (sink, terminator) = created.expect("the sink starts");
    log_range(&sink, 0..500);

    let clone = terminator.clone();
    drop(clone);
    // Another clone is alive: nothing happened.
    assert!(!terminator.is_terminated());
    assert_eq!(sink.state(), State::Running);
    assert!(thread.is_alive(), "{thread:?}");

    drop(terminator);
    assert_eq!(sink.state(), State::Stopped);
    let stats_now = sink.stats();
    assert_eq!(stats_now, stats(500, 500, 0, stats_now.high_watermark));
    assert_eq!(events.take(), (0..500).collect::<Vec<_>>());
    assert!(!thread.is_alive(), "{thread:?}");
}

#[test]
fn drop_of_the_last_terminator_clone_terminates_on_thread() {
    within_guard(|| drop_of_the_last_clone_terminates(Runtime::Thread));
}

#[test]
fn drop_of_the_last_terminator_clone_terminates_on_smol() {
    within_guard(|| drop_of_the_last_clone_terminates(Runtime::Smol));
}

// ---------------------------------------------------------------------------------------
// Failing hooks
// ---------------------------------------------------------------------------------------

/// A probe whose `on_stopped` hook fails with "close failed".
fn fails_to_stop() -> (Probe, Seen) {
    let probe = Probe {
        stop_error: Some("close failed"),
        ..Probe::default()
    };
    let seen = probe.seen.clone();
    (probe, seen)
}

fn assert_on_stopped_failed(outcome: &Result<QueueStats, TerminateError>) {
    match outcome {
        Err(TerminateError::Stop {
            error: SinkError::OnStoppedHookFailed(cause),
            ..
        }) => {
            assert_eq!(
                cause.downcast_ref::<UserError>(),
                Some(&UserError("close failed".into()))
            );
            assert!(!cause.is_panic());
        }
        other => panic!("expected Stop(OnStoppedHookFailed), got {other:?}"),
    }
    assert_eq!(
        outcome.as_ref().unwrap_err().reason(),
        ErrorReason::OnStoppedHookFailed
    );
}

fn terminate_reports_a_failed_stop_hook(runtime: Runtime) {
    let namespace = runtime.namespace("stopf");
    let (dispatch, seen) = fails_to_stop();
    let (created, thread) = runtime.create(dispatch, config(&namespace));
    let (sink, terminator) = created.expect("the sink starts");
    log_range(&sink, 0..10);

    let first = terminator.terminate();
    assert_on_stopped_failed(&first);
    // The sink is stopped all the same, every event delivered, the thread joined.
    assert_eq!(sink.state(), State::Stopped);
    let stats_now = sink.stats();
    assert_eq!(stats_now, stats(10, 10, 0, stats_now.high_watermark));
    assert_eq!(seen.delivered(), (0..10).collect::<Vec<_>>());
    assert_eq!(
        sink.last_error().map(|error| error.reason()),
        Some(ErrorReason::OnStoppedHookFailed)
    );
    assert!(!thread.is_alive(), "{thread:?}");

    // Every later call, from any clone or thread, returns the same error.
    let second = terminator.terminate();
    assert_on_stopped_failed(&second);
    let clone = terminator.clone();
    let third = std::thread::spawn(move || clone.terminate())
        .join()
        .expect("terminate() does not panic");
    assert_on_stopped_failed(&third);
    assert_eq!(format!("{first:?}"), format!("{second:?}"));
    assert_eq!(format!("{first:?}"), format!("{third:?}"));
}

#[test]
fn terminate_reports_a_failed_on_stopped_hook_every_time_on_thread() {
    within_guard(|| terminate_reports_a_failed_stop_hook(Runtime::Thread));
}

#[test]
fn terminate_reports_a_failed_on_stopped_hook_every_time_on_smol() {
    within_guard(|| terminate_reports_a_failed_stop_hook(Runtime::Smol));
}

fn create_reports_a_failed_start_hook(runtime: Runtime) {
    let namespace = runtime.namespace("startf");
    let probe = Probe {
        start_error: Some("open failed"),
        ..Probe::default()
    };
    let seen = probe.seen.clone();
    let (created, thread) = runtime.create(probe, config(&namespace));
    match &created {
        Err(CreateError::Sink(SinkError::OnStartingHookFailed(cause))) => {
            assert_eq!(
                cause.downcast_ref::<UserError>(),
                Some(&UserError("open failed".into()))
            );
            assert!(!cause.is_panic());
        }
        Err(other) => panic!("expected Sink(OnStartingHookFailed), got {other:?}"),
        Ok(_) => panic!("a sink whose start hook fails was created"),
    }
    assert_eq!(
        created.err().map(|error| error.reason()),
        Some(ErrorReason::OnStartingHookFailed)
    );
    // The runtime thread was shut down and joined before `create` returned.
    assert!(!thread.is_alive(), "{thread:?}");
    assert_eq!(
        seen.calls(),
        [Call::Starting],
        "nothing after the failed start"
    );
}

#[test]
fn create_with_a_failing_on_starting_hook_joins_the_thread_on_thread() {
    within_guard(|| create_reports_a_failed_start_hook(Runtime::Thread));
}

#[test]
fn create_with_a_failing_on_starting_hook_joins_the_thread_on_smol() {
    within_guard(|| create_reports_a_failed_start_hook(Runtime::Smol));
}

/// A probe whose `on_stopped` hook panics, and its `on_starting` hook too if `on_starting`.
fn panicking_hooks(on_starting: bool) -> Probe {
    Probe {
        start_panic: on_starting.then_some("on_starting exploded"),
        stop_panic: Some("on_stopped exploded"),
        ..Probe::default()
    }
}

fn panicking_hooks_are_reported(runtime: Runtime) {
    let namespace = runtime.namespace("panic");
    let (created, thread) = runtime.create(panicking_hooks(true), config(&namespace));
    match &created {
        Err(CreateError::Sink(SinkError::OnStartingHookFailed(cause))) => {
            assert_eq!(cause.panic_message(), Some("on_starting exploded"));
        }
        Err(other) => panic!("expected Sink(OnStartingHookFailed), got {other:?}"),
        Ok(_) => panic!("a sink whose start hook panics was created"),
    }
    assert!(!thread.is_alive(), "{thread:?}");

    let (created, thread) = runtime.create(panicking_hooks(false), config(&namespace));
    let (sink, terminator) = created.expect("the sink starts");
    log_range(&sink, 0..5);
    for _ in 0..2 {
        match terminator.terminate() {
            Err(TerminateError::Stop {
                error: SinkError::OnStoppedHookFailed(cause),
                stats: final_stats,
            }) => {
                assert_eq!(cause.panic_message(), Some("on_stopped exploded"));
                assert_eq!((final_stats.accepted, final_stats.delivered), (5, 5));
            }
            other => panic!("expected Stop(OnStoppedHookFailed), got {other:?}"),
        }
    }
    assert_eq!(sink.state(), State::Stopped);
    let stats_now = sink.stats();
    assert_eq!(stats_now, stats(5, 5, 0, stats_now.high_watermark));
    assert!(!thread.is_alive(), "{thread:?}");
}

#[test]
fn panicking_hooks_are_reported_with_their_message_on_thread() {
    within_guard(|| panicking_hooks_are_reported(Runtime::Thread));
}

#[test]
fn panicking_hooks_are_reported_with_their_message_on_smol() {
    within_guard(|| panicking_hooks_are_reported(Runtime::Smol));
}

// ---------------------------------------------------------------------------------------
// Drop of the last clone on the runtime thread
// ---------------------------------------------------------------------------------------

/// Drops the last `Terminator` clone inside its first dispatch, on the runtime thread;
/// says when it is dropped itself (when the executor drops the driver).
struct DropsTheLastClone {
    terminator: Arc<Mutex<Option<Terminator>>>,
    dropped_terminator: mpsc::Sender<()>,
    dropped: mpsc::Sender<()>,
    delivered: Arc<Mutex<Vec<u32>>>,
}

impl Dispatch<u32> for DropsTheLastClone {
    async fn dispatch(&mut self, event: u32) -> Result<(), BoxError> {
        let terminator = self.terminator.lock().unwrap().take();
        if let Some(terminator) = terminator {
            drop(terminator);
            let _ = self.dropped_terminator.send(());
        }
        self.delivered.lock().unwrap().push(event);
        Ok(())
    }
}

impl Drop for DropsTheLastClone {
    fn drop(&mut self) {
        let _ = self.dropped.send(());
    }
}

fn drop_of_the_last_clone_on_the_runtime_thread(runtime: Runtime) {
    let namespace = runtime.namespace("selfdrop");
    let slot = Arc::new(Mutex::new(None));
    let delivered = Arc::new(Mutex::new(Vec::new()));
    let (dropped_terminator_tx, dropped_terminator_rx) = mpsc::channel();
    let (dropped_tx, dropped_rx) = mpsc::channel();
    let dispatch = DropsTheLastClone {
        terminator: slot.clone(),
        dropped_terminator: dropped_terminator_tx,
        dropped: dropped_tx,
        delivered: delivered.clone(),
    };
    let (created, thread) = runtime.create(dispatch, config(&namespace));
    let (sink, terminator) = created.expect("the sink starts");
    assert!(thread.is_alive(), "{thread:?}");
    // The dispatcher holds the only clone from now on.
    *slot.lock().unwrap() = Some(terminator);

    assert_eq!(sink.log(0), Ok(LogOutcome::Accepted));
    dropped_terminator_rx
        .recv()
        .expect("the dispatcher dropped the terminator");
    // The runtime cannot join itself: it shuts its executor down, which drops the driver.
    dropped_rx
        .recv()
        .expect("the executor drops the driver and its dispatcher");
    // The driver is being dropped (it owns the dispatcher): nothing can serve this flush
    // any more, and it ends with the cancellation.
    match sink.flush_blocking() {
        Err(SinkError::DispatcherCancelled) => {}
        other => panic!("expected DispatcherCancelled, got {other:?}"),
    }
    assert_eq!(sink.state(), State::Cancelled);
    assert_eq!(
        sink.last_error().map(|error| error.reason()),
        Some(ErrorReason::DispatcherCancelled)
    );
    let stats_now = sink.stats();
    assert_eq!(stats_now, stats(1, 1, 0, stats_now.high_watermark));
    assert_eq!(*delivered.lock().unwrap(), vec![0]);
    match sink.log(1) {
        Err(LogError::NotAccepting { event, state }) => {
            assert_eq!((event, state), (1, State::Cancelled));
        }
        other => panic!("expected NotAccepting in Cancelled, got {other:?}"),
    }
}

#[test]
fn drop_of_the_last_clone_on_the_runtime_thread_cancels_the_sink_on_thread() {
    within_guard(|| drop_of_the_last_clone_on_the_runtime_thread(Runtime::Thread));
}

#[test]
fn drop_of_the_last_clone_on_the_runtime_thread_cancels_the_sink_on_smol() {
    within_guard(|| drop_of_the_last_clone_on_the_runtime_thread(Runtime::Smol));
}

// ---------------------------------------------------------------------------------------
// A stop that failed before terminate()
// ---------------------------------------------------------------------------------------

fn terminate_after_a_failed_stop(runtime: Runtime) {
    let namespace = runtime.namespace("prestop");
    let (dispatch, seen) = fails_to_stop();
    let (created, thread) = runtime.create(dispatch, config(&namespace));
    let (sink, terminator) = created.expect("the sink starts");
    log_range(&sink, 0..4);

    // The user stops the sink first; its stop hook fails.
    let stopped = sink.stop().wait();
    match &stopped.error {
        Some(SinkError::OnStoppedHookFailed(cause)) => assert_eq!(
            cause.downcast_ref::<UserError>(),
            Some(&UserError("close failed".into()))
        ),
        other => panic!("expected OnStoppedHookFailed, got {other:?}"),
    }
    assert_eq!(sink.state(), State::Stopped);
    assert_eq!(seen.delivered(), [0, 1, 2, 3]);

    // The stop already finished: terminate reports its result, as it would have while
    // the stop was in progress.
    let outcome = terminator.terminate();
    assert_on_stopped_failed(&outcome);
    assert!(!thread.is_alive(), "{thread:?}");
}

#[test]
fn terminate_after_a_stop_whose_hook_failed_reports_it_on_thread() {
    within_guard(|| terminate_after_a_failed_stop(Runtime::Thread));
}

#[test]
fn terminate_after_a_stop_whose_hook_failed_reports_it_on_smol() {
    within_guard(|| terminate_after_a_failed_stop(Runtime::Smol));
}

// ---------------------------------------------------------------------------------------
// Thread names
// ---------------------------------------------------------------------------------------

#[test]
fn runtime_threads_without_a_namespace_are_named_after_the_adapter() {
    within_guard(|| {
        for (runtime, name) in [(Runtime::Thread, "sink"), (Runtime::Smol, "smol")] {
            let (memory, events) = MemorySink::new();
            let (created, thread) =
                runtime.create(memory, SinkConfig::default().queue_capacity(CAPACITY));
            let (sink, terminator) = created.expect("the sink starts");
            // The probe checks the thread has this name.
            assert_eq!(thread.name, format!("mvx-{name}"));
            assert!(thread.is_alive(), "{thread:?}");
            log_range(&sink, 0..2);
            assert_eq!(
                terminator.terminate().map_err(|error| error.reason()),
                Ok(sink.stats())
            );
            assert_eq!(events.take(), vec![0, 1]);
            assert!(!thread.is_alive(), "{thread:?}");
        }
    });
}
