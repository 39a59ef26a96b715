//! The agent lifecycle: connect, stop once, teardown under a timeout, unhandled task errors,
//! any number of waiters, signals, and `run_async` under real executors (tokio, smol,
//! `futures`).
#![cfg(not(loom))]

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, mpsc};
use std::thread;
use std::time::{Duration, Instant};

use futures::executor::block_on;
use mvx::BoxError;
use mvx::agent::{Agent, AgentConfig, AgentError, AgentHandle, AgentReason, Runner};
use mvx::error::Cause;

#[path = "support/watchdog.rs"]
mod watchdog;

use watchdog::{GUARD, within_guard};

/// What a [`Probe`] does, and what it saw.
#[derive(Default)]
struct Probe {
    /// `connect` fails with this message.
    connect_error: Option<&'static str>,
    /// `connect` panics with this message.
    connect_panic: Option<&'static str>,
    /// `connect` spawns this task (taken on the first call).
    task: Mutex<Option<mvx::agent::AgentTask>>,
    /// `teardown` fails with this message.
    teardown_error: Option<&'static str>,
    /// `teardown` never returns.
    teardown_hangs: bool,
    /// Signals seen by `on_signal`; it stops the agent on the second.
    signals: Mutex<Vec<i32>>,
    /// Notified by `on_signal` after it recorded a signal.
    signalled: Condvar,
    connects: AtomicUsize,
    teardowns: AtomicUsize,
    /// Told when `connect` returned.
    connected: Mutex<Option<mpsc::Sender<()>>>,
}

impl Agent for Probe {
    async fn connect(&self, agent: &AgentHandle) -> Result<(), BoxError> {
        self.connects.fetch_add(1, Ordering::SeqCst);
        if let Some(message) = self.connect_panic {
            panic!("{message}");
        }
        if let Some(message) = self.connect_error {
            return Err(message.into());
        }
        if let Some(task) = self.task.lock().unwrap().take() {
            assert!(agent.spawn(task));
        }
        if let Some(connected) = self.connected.lock().unwrap().take() {
            let _ = connected.send(());
        }
        Ok(())
    }

    async fn teardown(&self) -> Result<(), BoxError> {
        self.teardowns.fetch_add(1, Ordering::SeqCst);
        if self.teardown_hangs {
            futures::future::pending::<()>().await;
        }
        match self.teardown_error {
            Some(message) => Err(message.into()),
            None => Ok(()),
        }
    }

    fn on_signal(&self, signal: i32, agent: &AgentHandle) {
        let mut signals = self.signals.lock().unwrap();
        signals.push(signal);
        self.signalled.notify_all();
        if signals.len() == 2 {
            agent.stop(None, false);
        }
    }
}

fn config() -> AgentConfig {
    AgentConfig::default().catch_signals([])
}

/// Runs `probe` on a thread; returns its handle once `connect` returned, and the thread.
fn running(
    probe: Probe,
    config: AgentConfig,
) -> (
    AgentHandle,
    Arc<Probe>,
    thread::JoinHandle<Result<(), AgentError>>,
) {
    let (connected_tx, connected_rx) = mpsc::channel();
    *probe.connected.lock().unwrap() = Some(connected_tx);
    let runner = Runner::new(probe, config);
    let handle = runner.handle();
    let probe = runner.agent().clone();
    let thread = thread::spawn(move || runner.run());
    connected_rx.recv().expect("connect returned");
    (handle, probe, thread)
}

fn message(cause: &Cause) -> String {
    cause.to_string()
}

#[test]
fn run_returns_ok_after_a_clean_stop_from_another_thread() {
    within_guard(|| {
        let (handle, probe, thread) = running(Probe::default(), config());
        assert!(!handle.stop_requested());
        assert!(handle.stop(None, false), "the first stop wins");
        thread.join().unwrap().expect("a clean stop");
        assert!(handle.is_stopped());
        assert_eq!(probe.connects.load(Ordering::SeqCst), 1);
        assert_eq!(probe.teardowns.load(Ordering::SeqCst), 1);
        let outcome = handle.outcome().expect("stopped");
        assert!(outcome.error.is_none() && !outcome.silent);
        assert!(outcome.teardown.is_ok() && outcome.task_errors.is_empty());
        block_on(handle.stopped()).expect("stopped() agrees with run()");
        assert!(!handle.stop(None, false), "a stop after the end is ignored");
    });
}

#[test]
fn the_first_stop_wins_and_its_error_is_returned() {
    within_guard(|| {
        let (handle, probe, thread) = running(Probe::default(), config());
        assert!(handle.stop(Some("first".into()), false));
        assert!(!handle.stop(Some("second".into()), false));
        assert!(!handle.stop(None, false));
        let error = thread.join().unwrap().expect_err("stopped with an error");
        match &error {
            AgentError::Stopped(cause) => assert_eq!(message(cause), "first"),
            other => panic!("expected Stopped, got {other:?}"),
        }
        assert_eq!(error.reason(), AgentReason::AgentStopped);
        assert_eq!(
            probe.teardowns.load(Ordering::SeqCst),
            1,
            "teardown runs once"
        );
        let waited = block_on(handle.stopped()).expect_err("the same error");
        assert!(matches!(waited, AgentError::Stopped(cause) if message(&cause) == "first"));
    });
}

/// metricq's `silent` keeps only the stop call from raising: `run()` and `stopped()` return
/// the error all the same.
#[test]
fn a_silent_stop_s_error_is_returned_by_run_and_stopped() {
    within_guard(|| {
        let (handle, _probe, thread) = running(Probe::default(), config());
        assert!(handle.stop(Some("quietly".into()), true));
        let error = thread
            .join()
            .unwrap()
            .expect_err("run() returns a silent error");
        assert!(matches!(&error, AgentError::Stopped(cause) if message(cause) == "quietly"));
        let outcome = handle.outcome().unwrap();
        assert!(outcome.silent);
        let waited = block_on(handle.stopped()).expect_err("stopped() too");
        assert!(matches!(waited, AgentError::Stopped(cause) if message(&cause) == "quietly"));
    });
}

/// `stop_and_wait` (metricq's `await stop()`) waits for teardown and returns the error
/// unless silent; a later call is ignored at once.
#[test]
fn stop_and_wait_returns_after_teardown_with_the_error_unless_silent() {
    within_guard(|| {
        for silent in [false, true] {
            let (handle, probe, thread) = running(Probe::default(), config());
            let returned = block_on(handle.stop_and_wait(Some("loud".into()), silent));
            assert_eq!(
                probe.teardowns.load(Ordering::SeqCst),
                1,
                "teardown ran first"
            );
            match (silent, returned) {
                (true, Ok(())) => {}
                (false, Err(AgentError::Stopped(cause))) => assert_eq!(message(&cause), "loud"),
                (silent, other) => panic!("silent {silent}: {other:?}"),
            }
            assert!(
                thread.join().unwrap().is_err(),
                "run() returns it either way"
            );
            block_on(handle.stop_and_wait(Some("later".into()), false))
                .expect("a later stop is ignored");
        }
    });
}

/// A stop requested while `connect` has not returned drops the connect future and runs
/// teardown at once (metricq cancels `connect()`), instead of waiting for a connect that
/// may never finish.
#[test]
fn a_stop_during_connect_cancels_it_and_runs_teardown() {
    struct Hanging {
        entered: Mutex<Option<mpsc::Sender<()>>>,
        dropped: Arc<AtomicUsize>,
        teardowns: Arc<AtomicUsize>,
    }
    struct OnDrop(Arc<AtomicUsize>);
    impl Drop for OnDrop {
        fn drop(&mut self) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }
    impl Agent for Hanging {
        async fn connect(&self, _agent: &AgentHandle) -> Result<(), BoxError> {
            let _dropped = OnDrop(self.dropped.clone());
            if let Some(entered) = self.entered.lock().unwrap().take() {
                let _ = entered.send(());
            }
            futures::future::pending::<()>().await;
            Ok(())
        }
        async fn teardown(&self) -> Result<(), BoxError> {
            self.teardowns.fetch_add(1, Ordering::SeqCst);
            Ok(())
        }
    }
    within_guard(|| {
        let (entered_tx, entered_rx) = mpsc::channel();
        let dropped = Arc::new(AtomicUsize::new(0));
        let teardowns = Arc::new(AtomicUsize::new(0));
        let runner = Runner::new(
            Hanging {
                entered: Mutex::new(Some(entered_tx)),
                dropped: dropped.clone(),
                teardowns: teardowns.clone(),
            },
            config(),
        );
        let handle = runner.handle();
        let thread = thread::spawn(move || runner.run());
        entered_rx.recv().expect("connect started");
        assert!(handle.stop(None, false));
        thread.join().unwrap().expect("a clean stop");
        assert_eq!(
            dropped.load(Ordering::SeqCst),
            1,
            "the connect future was dropped"
        );
        assert_eq!(teardowns.load(Ordering::SeqCst), 1);
    });
}

#[test]
fn a_failed_connect_is_connect_failed_with_the_cause_and_no_teardown() {
    within_guard(|| {
        let probe = Probe {
            connect_error: Some("broker unreachable"),
            ..Probe::default()
        };
        let runner = Runner::new(probe, config());
        let handle = runner.handle();
        let agent = runner.agent().clone();
        let error = runner.run().expect_err("connect failed");
        match &error {
            AgentError::ConnectFailed(cause) => assert_eq!(message(cause), "broker unreachable"),
            other => panic!("expected ConnectFailed, got {other:?}"),
        }
        assert_eq!(error.reason(), AgentReason::ConnectFailed);
        assert_eq!(agent.teardowns.load(Ordering::SeqCst), 0);
        assert!(matches!(
            block_on(handle.stopped()),
            Err(AgentError::ConnectFailed(_))
        ));
    });
}

#[test]
fn a_panicking_connect_is_connect_failed_with_the_panic_message() {
    within_guard(|| {
        let probe = Probe {
            connect_panic: Some("no credentials"),
            ..Probe::default()
        };
        match Runner::new(probe, config()).run() {
            Err(AgentError::ConnectFailed(cause)) => {
                assert_eq!(cause.panic_message(), Some("no credentials"))
            }
            other => panic!("expected ConnectFailed, got {other:?}"),
        }
    });
}

#[test]
fn a_teardown_error_is_returned_after_a_clean_stop_and_reported_after_a_failed_one() {
    within_guard(|| {
        let probe = Probe {
            teardown_error: Some("could not close the channel"),
            ..Probe::default()
        };
        let (handle, _probe, thread) = running(probe, config());
        handle.stop(None, false);
        let error = thread.join().unwrap().expect_err("teardown failed");
        match &error {
            AgentError::TeardownFailed(cause) => {
                assert_eq!(message(cause), "could not close the channel")
            }
            other => panic!("expected TeardownFailed, got {other:?}"),
        }
        assert_eq!(error.reason(), AgentReason::TeardownFailed);

        // With a stop error, run() returns that; teardown's error stays in the outcome.
        let probe = Probe {
            teardown_error: Some("could not close the channel"),
            ..Probe::default()
        };
        let (handle, _probe, thread) = running(probe, config());
        handle.stop(Some("lost the broker".into()), false);
        assert!(matches!(
            thread.join().unwrap(),
            Err(AgentError::Stopped(cause)) if message(&cause) == "lost the broker"
        ));
        let outcome = handle.outcome().unwrap();
        assert!(matches!(
            outcome.teardown,
            Err(AgentError::TeardownFailed(_))
        ));
    });
}

#[test]
fn a_hung_teardown_is_cut_off_at_the_close_timeout() {
    within_guard(|| {
        let timeout = Duration::from_millis(200);
        let probe = Probe {
            teardown_hangs: true,
            ..Probe::default()
        };
        let (handle, _probe, thread) = running(probe, config().close_timeout(Some(timeout)));
        let asked = Instant::now();
        handle.stop(None, false);
        let error = thread.join().unwrap().expect_err("teardown timed out");
        assert!(asked.elapsed() >= timeout, "{:?}", asked.elapsed());
        assert!(matches!(error, AgentError::TeardownTimedOut { timeout: t } if t == timeout));
        assert_eq!(error.reason(), AgentReason::TeardownTimedOut);
        assert!(handle.is_stopped());
    });
}

#[test]
fn with_cancel_on_error_a_failing_task_stops_the_agent_and_is_returned() {
    within_guard(|| {
        let probe = Probe::default();
        *probe.task.lock().unwrap() = Some(Box::pin(async {
            async_io::Timer::after(Duration::from_millis(10)).await;
            Err::<(), BoxError>("the subscription died".into())
        }));
        let runner = Runner::new(probe, config().cancel_on_error(true));
        let agent = runner.agent().clone();
        match runner.run() {
            Err(AgentError::TaskFailed(cause)) => {
                assert_eq!(message(&cause), "the subscription died")
            }
            other => panic!("expected TaskFailed, got {other:?}"),
        }
        assert_eq!(agent.teardowns.load(Ordering::SeqCst), 1);
    });
}

#[test]
fn with_cancel_on_error_a_panicking_task_stops_the_agent_with_the_panic_message() {
    within_guard(|| {
        let probe = Probe::default();
        *probe.task.lock().unwrap() = Some(Box::pin(async { panic!("task exploded") }));
        match Runner::new(probe, config().cancel_on_error(true)).run() {
            Err(AgentError::TaskFailed(cause)) => {
                assert_eq!(cause.panic_message(), Some("task exploded"))
            }
            other => panic!("expected TaskFailed, got {other:?}"),
        }
    });
}

#[test]
fn without_cancel_on_error_task_errors_are_kept_and_the_agent_runs_on() {
    within_guard(|| {
        let probe = Probe::default();
        *probe.task.lock().unwrap() = Some(Box::pin(async {
            Err::<(), BoxError>("one bad message".into())
        }));
        let (handle, _probe, thread) = running(probe, config());
        // The task's error does not stop the agent; a later task still runs.
        let (ran_tx, ran_rx) = mpsc::channel();
        assert!(handle.spawn(async move {
            ran_tx.send(()).unwrap();
            Ok(())
        }));
        ran_rx
            .recv_timeout(GUARD)
            .expect("the agent still runs tasks");
        assert!(!handle.stop_requested());
        handle.stop(None, false);
        thread
            .join()
            .unwrap()
            .expect("task errors are not run()'s error");
        let outcome = handle.outcome().unwrap();
        assert_eq!(outcome.task_errors.len(), 1);
        assert_eq!(message(&outcome.task_errors[0]), "one bad message");
        assert!(!handle.spawn(async { Ok(()) }), "no task after the end");
    });
}

#[test]
fn any_number_of_threads_and_tasks_wait_for_stopped() {
    within_guard(|| {
        let (handle, _probe, thread) = running(Probe::default(), config());
        let waiters: Vec<_> = (0..4)
            .map(|_| {
                let handle = handle.clone();
                thread::spawn(move || block_on(handle.stopped()))
            })
            .collect();
        let task_waiter = {
            let handle = handle.clone();
            let (seen_tx, seen_rx) = mpsc::channel();
            assert!(handle.clone().spawn(async move {
                // A task of the agent itself waits too; it is dropped after teardown, so it
                // reports through a channel once woken, if it runs that far.
                let _ = seen_tx.send(handle.stop_requested());
                Ok(())
            }));
            seen_rx
        };
        assert_eq!(task_waiter.recv_timeout(GUARD), Ok(false));
        handle.stop(Some("shutting down".into()), false);
        for waiter in waiters {
            assert!(matches!(
                waiter.join().unwrap(),
                Err(AgentError::Stopped(cause)) if message(&cause) == "shutting down"
            ));
        }
        assert!(thread.join().unwrap().is_err());
    });
}

/// A connect that uses async-io's timer and spawns a task that stops the agent: what
/// `run_async` must run under any executor.
struct SelfStopping;

impl Agent for SelfStopping {
    async fn connect(&self, agent: &AgentHandle) -> Result<(), BoxError> {
        async_io::Timer::after(Duration::from_millis(5)).await;
        let stopper = agent.clone();
        agent.spawn(async move {
            async_io::Timer::after(Duration::from_millis(5)).await;
            stopper.stop(None, false);
            Ok(())
        });
        Ok(())
    }
}

#[test]
fn run_async_runs_under_tokio() {
    within_guard(|| {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .build()
            .unwrap();
        let runner = Runner::new(SelfStopping, config());
        let handle = runner.handle();
        runtime.block_on(async move {
            let running = tokio::spawn(runner.run_async());
            handle.stopped().await.expect("stopped cleanly");
            running.await.unwrap().expect("run_async agrees");
        });
    });
}

#[test]
fn run_async_runs_under_smol() {
    within_guard(|| {
        let executor = smol::Executor::new();
        let runner = Runner::new(SelfStopping, config());
        let handle = runner.handle();
        smol::block_on(executor.run(async {
            let running = executor.spawn(runner.run_async());
            handle.stopped().await.expect("stopped cleanly");
            running.await.expect("run_async agrees");
        }));
    });
}

#[test]
fn run_async_runs_under_a_futures_thread_pool() {
    within_guard(|| {
        let pool = futures::executor::ThreadPool::builder()
            .pool_size(2)
            .create()
            .unwrap();
        let runner = Runner::new(SelfStopping, config());
        let handle = runner.handle();
        let (done_tx, done_rx) = mpsc::channel();
        pool.spawn_ok(async move {
            let _ = done_tx.send(runner.run_async().await);
        });
        block_on(handle.stopped()).expect("stopped cleanly");
        done_rx.recv().unwrap().expect("run_async agrees");
    });
}

#[test]
fn dropping_run_async_before_the_end_is_cancelled_for_every_waiter() {
    within_guard(|| {
        let runner = Runner::new(Probe::default(), config());
        let handle = runner.handle();
        let mut running = Box::pin(runner.run_async());
        // Connect, then wait for a stop that never comes.
        assert!(
            futures::FutureExt::now_or_never(running.as_mut()).is_none(),
            "the agent waits for a stop"
        );
        drop(running);
        let error = block_on(handle.stopped()).expect_err("cancelled");
        assert!(matches!(error, AgentError::Cancelled));
        assert_eq!(error.reason(), AgentReason::AgentCancelled);
    });
}

/// Signals reach `on_signal` on the signal thread; the probe stops on the second one. The
/// test sends SIGUSR2 to its own process (not SIGINT or SIGTERM: the test binary must not
/// die if something goes wrong; the handler is installed before `connect` runs). The other
/// signal test uses SIGUSR1, so that the two, running in parallel, do not see each other's.
#[cfg(feature = "signals")]
#[test]
fn caught_signals_reach_on_signal_which_decides_when_to_stop() {
    within_guard(|| {
        const SIGUSR2: i32 = libc::SIGUSR2;
        let (handle, probe, thread) = running(Probe::default(), config().catch_signals([SIGUSR2]));
        let pid = std::process::id() as i32;
        // SAFETY: kill(2) with our own pid and a signal whose handler is installed.
        assert_eq!(unsafe { libc::kill(pid, SIGUSR2) }, 0);
        drop(
            probe
                .signalled
                .wait_while(probe.signals.lock().unwrap(), |signals| signals.is_empty())
                .unwrap(),
        );
        assert!(
            !handle.stop_requested(),
            "the probe stops on the second signal"
        );
        // SAFETY: as above.
        assert_eq!(unsafe { libc::kill(pid, SIGUSR2) }, 0);
        thread.join().unwrap().expect("stopped by on_signal");
        assert_eq!(*probe.signals.lock().unwrap(), [SIGUSR2, SIGUSR2]);
        assert_eq!(handle.outcome().unwrap().signals, [SIGUSR2, SIGUSR2]);
    });
}

/// An agent that only connects (and says so): the default `on_signal` applies.
#[cfg(feature = "signals")]
struct Idle(Mutex<Option<mpsc::Sender<()>>>);

#[cfg(feature = "signals")]
impl Agent for Idle {
    async fn connect(&self, _agent: &AgentHandle) -> Result<(), BoxError> {
        if let Some(connected) = self.0.lock().unwrap().take() {
            let _ = connected.send(());
        }
        Ok(())
    }
}

/// The default `on_signal` is metricq's: a signal other than SIGINT stops the agent with
/// `ReceivedSignal`, which `run()` returns (SIGINT's clean stop: tests/agent_process.rs and
/// tests/agent_metricq_parity.rs).
#[cfg(feature = "signals")]
#[test]
fn the_default_on_signal_stops_with_received_signal_for_any_but_sigint() {
    within_guard(|| {
        const SIGUSR1: i32 = libc::SIGUSR1;
        let (connected_tx, connected_rx) = mpsc::channel();
        let runner = Runner::new(
            Idle(Mutex::new(Some(connected_tx))),
            config().catch_signals([SIGUSR1]),
        );
        let handle = runner.handle();
        let thread = thread::spawn(move || runner.run());
        // The handler is installed before `connect` runs.
        connected_rx.recv().expect("connect returned");
        // SAFETY: kill(2) with our own pid and a signal whose handler is installed.
        assert_eq!(unsafe { libc::kill(std::process::id() as i32, SIGUSR1) }, 0);
        let error = thread.join().unwrap().expect_err("SIGUSR1 is not SIGINT");
        assert!(matches!(
            error,
            AgentError::ReceivedSignal { signal: SIGUSR1 }
        ));
        assert_eq!(error.reason(), AgentReason::ReceivedSignal);
        assert_eq!(error.reason().as_str(), "RECEIVED_SIGNAL");
        assert_eq!(handle.outcome().unwrap().signals, [SIGUSR1]);
    });
}
