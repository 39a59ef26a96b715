//! A blocking call that could only wait for itself returns `WouldDeadlock` at once: called
//! from inside a dispatch or hook of the same sink, on the runtime thread that runs its
//! driver, or on a tokio current-thread runtime that runs it. Blocking calls that other
//! threads can serve still wait (no false alarm), and `terminate()` on the runtime thread is
//! still `CalledFromRuntimeThread`.
//!
//! On code without the detection each of the first tests hangs: every body runs under the
//! watchdog, so that a hang fails the test instead of the run.
#![cfg(not(loom))]

use std::sync::mpsc;
use std::sync::{Arc, OnceLock};

use async_channel::Receiver;
use futures::executor::block_on;
use mvx::error::{LogError, SendTimeoutError, SinkError, TerminateError};
use mvx::metrics::{
    Metric, MetricEvent, MetricKind, MetricsRecorder, MetricsRuntime, RecorderError, Snapshot,
};
use mvx::queue::{LogOutcome, OverflowPolicy};
use mvx::rt::Terminator;
use mvx::sink::{AsyncSink, Discard, Dispatch, SinkConfig};
use mvx::{BoxError, ErrorReason, Op, OpResult, State};

#[path = "support/watchdog.rs"]
mod watchdog;

use watchdog::{GUARD, within_guard};

/// What a [`Reentrant`] dispatcher does with its own sink, for each event.
type Inside = Box<dyn FnMut(&AsyncSink<u32>, u32) + Send>;

/// What a [`Reentrant`] dispatcher does with its own sink in its start hook.
type OnStarting = Box<dyn FnOnce(&AsyncSink<u32>) + Send>;

/// A dispatcher that calls into its own sink: from its start hook, and on each event
/// (after a gate, if it has one).
struct Reentrant {
    own: Arc<OnceLock<AsyncSink<u32>>>,
    on_starting: Option<OnStarting>,
    inside: Inside,
    gate: Option<Receiver<()>>,
}

impl Dispatch<u32> for Reentrant {
    async fn on_starting(&mut self) -> Result<(), BoxError> {
        if let Some(hook) = self.on_starting.take() {
            hook(self.own.get().expect("set before the start"));
        }
        Ok(())
    }

    async fn dispatch(&mut self, event: u32) -> Result<(), BoxError> {
        if let Some(gate) = &self.gate {
            let _ = gate.recv().await;
        }
        (self.inside)(self.own.get().expect("set before the start"), event);
        Ok(())
    }
}

/// A sink whose dispatcher is `dispatcher`, its driver polled on a thread of its own (with
/// `futures::executor::block_on`), started.
fn reentrant_sink(
    config: SinkConfig,
    on_starting: Option<OnStarting>,
    inside: Inside,
    gate: Option<Receiver<()>>,
) -> (AsyncSink<u32>, std::thread::JoinHandle<()>) {
    let own = Arc::new(OnceLock::new());
    let dispatcher = Reentrant {
        own: own.clone(),
        on_starting,
        inside,
        gate,
    };
    let (sink, driver) = AsyncSink::new(dispatcher, config);
    assert!(own.set(sink.clone()).is_ok());
    let driver = std::thread::spawn(move || block_on(driver));
    assert!(sink.start().wait().success);
    (sink, driver)
}

/// Stops the sink from the test thread (its dispatcher holds a handle, so dropping ours
/// does not) and joins the driver.
fn stop_and_join(sink: AsyncSink<u32>, driver: std::thread::JoinHandle<()>) {
    if sink.state() == State::Running {
        assert!(sink.stop().wait().success);
    }
    driver.join().expect("the driver returns");
}

/// `result` is `Err(SinkError::WouldDeadlock)`.
#[track_caller]
fn assert_would_deadlock<T: std::fmt::Debug>(result: Result<T, SinkError>) {
    match result {
        Err(error @ SinkError::WouldDeadlock) => {
            assert_eq!(error.reason(), ErrorReason::WouldDeadlock);
            assert_eq!(error.reason().as_str(), "WOULD_DEADLOCK");
        }
        other => panic!("expected WouldDeadlock, got {other:?}"),
    }
}

/// `result` is the failure of `op` with `WouldDeadlock`.
#[track_caller]
fn assert_refused_op(result: OpResult, op: Op) {
    assert_eq!(result.op, op);
    assert!(!result.success);
    assert_would_deadlock(result.into_result());
}

#[test]
fn a_flush_waited_on_inside_dispatch_is_refused_at_once() {
    within_guard(|| {
        let (results_tx, results) = mpsc::channel();
        let inside: Inside = Box::new(move |own, event| {
            let blocking = own.flush_blocking();
            let with_deadline = own.flush().wait_timeout(GUARD);
            results_tx.send((event, blocking, with_deadline)).unwrap();
        });
        let (sink, driver) = reentrant_sink(SinkConfig::default(), None, inside, None);
        assert_eq!(sink.log(7), Ok(LogOutcome::Accepted));
        let (event, blocking, with_deadline) = results.recv().unwrap();
        assert_eq!(event, 7);
        assert_would_deadlock(blocking);
        assert_would_deadlock(with_deadline);
        // From another thread the same flush is served.
        sink.flush_blocking().expect("served from another thread");
        let stats = sink.stats();
        assert_eq!((stats.accepted, stats.delivered, stats.pending), (1, 1, 0));
        stop_and_join(sink, driver);
    });
}

#[test]
fn lifecycle_waits_inside_the_sinks_own_code_are_refused_at_once() {
    within_guard(|| {
        let (results_tx, results) = mpsc::channel();
        let hook_tx = results_tx.clone();
        let on_starting: OnStarting = Box::new(move |own| {
            // The start completes only once this hook returns.
            hook_tx
                .send(("start in on_starting", own.start().wait()))
                .unwrap();
        });
        let (deadline_tx, deadline_results) = mpsc::channel();
        let inside: Inside = Box::new(move |own, _event| {
            // Already running: the start has finished, there is nothing to wait for.
            results_tx
                .send(("start in dispatch", own.start().wait()))
                .unwrap();
            // The stop is requested, and goes on once this dispatch returns: waiting for it
            // here would be waiting for this very call to return.
            let still = own
                .stop()
                .wait_timeout(GUARD)
                .expect_err("the stop cannot finish");
            let refused = (still.op(), still.is_would_deadlock(), still.reason());
            deadline_tx.send(refused).unwrap();
            results_tx
                .send(("stop in dispatch", still.into_handle().wait()))
                .unwrap();
        });
        let (sink, driver) = reentrant_sink(SinkConfig::default(), Some(on_starting), inside, None);
        let (at, started) = results.recv().unwrap();
        assert_eq!(at, "start in on_starting");
        assert_refused_op(started, Op::Start);

        assert_eq!(sink.log(1), Ok(LogOutcome::Accepted));
        let (at, started) = results.recv().unwrap();
        assert_eq!(at, "start in dispatch");
        assert!(started.success, "{started:?}");
        assert_eq!(
            deadline_results.recv().unwrap(),
            (Op::Stop, true, ErrorReason::WouldDeadlock)
        );
        let (at, stopped) = results.recv().unwrap();
        assert_eq!(at, "stop in dispatch");
        assert_refused_op(stopped, Op::Stop);
        // The stop requested from inside goes on once the dispatch has returned.
        driver.join().expect("the driver returns once stopped");
        assert_eq!(sink.state(), State::Stopped);
        let stats = sink.stats();
        assert_eq!((stats.accepted, stats.delivered, stats.pending), (1, 1, 0));
    });
}

#[test]
fn logging_under_block_into_the_own_full_queue_hands_the_event_back() {
    within_guard(|| {
        let config = SinkConfig::default()
            .queue_capacity(2)
            .overflow(OverflowPolicy::Block);
        let (gate_tx, gate) = async_channel::unbounded();
        let (results_tx, results) = mpsc::channel();
        let inside: Inside = Box::new(move |own, event| {
            if event != 1 {
                return;
            }
            // The limit applies to each producer thread's lane: the dispatcher's logs go
            // into the lane of the driver's thread, which takes two. Then the limit is
            // reached, and only this dispatch returning can free a slot.
            let room = (own.log(101), own.log(102));
            let logged = own.log(103);
            let blocking = own.log_blocking(104);
            let with_deadline = own.send(105).wait_timeout(GUARD);
            results_tx
                .send((room, logged, blocking, with_deadline))
                .unwrap();
        });
        let (sink, driver) = reentrant_sink(config, None, inside, Some(gate));
        assert_eq!(sink.log(1), Ok(LogOutcome::Accepted));
        assert_eq!(sink.log(2), Ok(LogOutcome::Accepted));
        gate_tx.close();
        let (room, logged, blocking, with_deadline) = results.recv().unwrap();
        assert_eq!(room, (Ok(LogOutcome::Accepted), Ok(LogOutcome::Accepted)));
        assert_eq!(logged, Err(LogError::WouldDeadlock(103)));
        assert_eq!(blocking, Err(LogError::WouldDeadlock(104)));
        assert_eq!(with_deadline, Err(SendTimeoutError::WouldDeadlock(105)));
        assert_eq!(
            with_deadline.unwrap_err().reason(),
            ErrorReason::WouldDeadlock
        );
        // The sink is not stalled: the four accepted events are delivered, the three
        // handed back are counted as refused.
        sink.flush_blocking().expect("served");
        let stats = sink.stats();
        assert_eq!(
            (
                stats.accepted,
                stats.delivered,
                stats.dropped,
                stats.refused,
                stats.pending
            ),
            (4, 4, 0, 3, 0)
        );
        stop_and_join(sink, driver);
    });
}

#[test]
fn logging_under_block_inside_dispatch_with_room_is_accepted() {
    within_guard(|| {
        let config = SinkConfig::default()
            .queue_capacity(16)
            .overflow(OverflowPolicy::Block);
        let (results_tx, results) = mpsc::channel();
        let inside: Inside = Box::new(move |own, event| {
            if event < 100 {
                results_tx.send(own.log_blocking(event + 100)).unwrap();
            }
        });
        let (sink, driver) = reentrant_sink(config, None, inside, None);
        assert_eq!(sink.log(1), Ok(LogOutcome::Accepted));
        // No wait is needed: nothing to refuse.
        assert_eq!(results.recv().unwrap(), Ok(LogOutcome::Accepted));
        sink.flush_blocking().expect("served");
        let stats = sink.stats();
        assert_eq!((stats.accepted, stats.delivered, stats.pending), (2, 2, 0));
        stop_and_join(sink, driver);
    });
}

/// A dispatcher on an `rt` runtime thread that flushes its own sink and terminates its own
/// runtime from inside a dispatch.
struct OnRuntime {
    handles: Arc<OnceLock<(AsyncSink<u32>, Terminator)>>,
    results: mpsc::Sender<(Result<(), SinkError>, Result<(), TerminateError>)>,
}

impl Dispatch<u32> for OnRuntime {
    async fn dispatch(&mut self, _event: u32) -> Result<(), BoxError> {
        let (sink, terminator) = self.handles.get().expect("set before the first event");
        let flushed = sink.flush_blocking();
        let terminated = terminator.terminate().map(drop);
        self.results.send((flushed, terminated)).unwrap();
        Ok(())
    }
}

#[test]
fn on_the_runtime_thread_a_flush_is_refused_and_terminate_is_still_called_from_runtime_thread() {
    within_guard(|| {
        for smol in [false, true] {
            let handles = Arc::new(OnceLock::new());
            let (results_tx, results) = mpsc::channel();
            let dispatcher = OnRuntime {
                handles: handles.clone(),
                results: results_tx,
            };
            let (sink, terminator) = if smol {
                mvx::rt::smol::create(dispatcher, SinkConfig::default())
            } else {
                mvx::rt::thread::create(dispatcher, SinkConfig::default())
            }
            .expect("the sink starts");
            assert!(handles.set((sink.clone(), terminator.clone())).is_ok());
            assert_eq!(sink.log(1), Ok(LogOutcome::Accepted));
            let (flushed, terminated) = results.recv().unwrap();
            assert_would_deadlock(flushed);
            match terminated {
                Err(TerminateError::CalledFromRuntimeThread) => {}
                other => panic!("smol: {smol}: expected CalledFromRuntimeThread, got {other:?}"),
            }
            let stats = terminator.terminate().expect("stops cleanly");
            assert_eq!((stats.accepted, stats.delivered, stats.pending), (1, 1, 0));
            assert_eq!(sink.state(), State::Stopped);
        }
    });
}

/// A dispatcher that flushes another sink, whose driver runs on another thread.
struct FlushesNeighbour {
    neighbour: AsyncSink<u32>,
    results: mpsc::Sender<Result<(), SinkError>>,
}

impl Dispatch<u32> for FlushesNeighbour {
    async fn dispatch(&mut self, _event: u32) -> Result<(), BoxError> {
        self.results.send(self.neighbour.flush_blocking()).unwrap();
        Ok(())
    }
}

#[test]
fn waits_that_another_thread_serves_still_wait() {
    within_guard(|| {
        // From inside one sink's dispatch, for another sink on another runtime thread.
        let (neighbour, neighbour_terminator) =
            mvx::rt::thread::create(Discard, SinkConfig::default()).expect("starts");
        let (results_tx, results) = mpsc::channel();
        let dispatcher = FlushesNeighbour {
            neighbour: neighbour.clone(),
            results: results_tx,
        };
        let (sink, terminator) =
            mvx::rt::thread::create(dispatcher, SinkConfig::default()).expect("starts");
        assert_eq!(neighbour.log(1u32), Ok(LogOutcome::Accepted));
        assert_eq!(sink.log(1), Ok(LogOutcome::Accepted));
        results
            .recv()
            .unwrap()
            .expect("the neighbour's flush is served");
        assert_eq!(neighbour.stats().delivered, 1);
        terminator.terminate().expect("stops");
        neighbour_terminator.terminate().expect("stops");

        // On a thread of a multi-threaded pool, which may well be the one that polled the
        // driver last: another thread of the pool polls it now.
        let pool = futures::executor::ThreadPool::builder()
            .pool_size(2)
            .create()
            .expect("a pool");
        let (sink, driver) = AsyncSink::new(Discard, SinkConfig::default());
        pool.spawn_ok(driver);
        assert!(sink.start().wait().success);
        for round in 0..20u32 {
            let (flushed_tx, flushed) = mpsc::channel();
            let on_pool = sink.clone();
            pool.spawn_ok(async move {
                assert_eq!(on_pool.log(round), Ok(LogOutcome::Accepted));
                flushed_tx.send(on_pool.flush_blocking()).unwrap();
            });
            flushed.recv().unwrap().expect("served by the other thread");
        }
        assert_eq!(sink.stats().delivered, 20);
        assert!(sink.stop().wait().success);
    });
}

/// An event of the recorders below.
struct Tick;

impl MetricEvent for Tick {
    fn event_type(&self) -> &str {
        "tick"
    }
}

/// A metric of one recorder that takes a snapshot of another when it handles an event.
struct SnapshotsNeighbour {
    neighbour: MetricsRecorder<Tick>,
    results: mpsc::Sender<Result<usize, RecorderError>>,
}

impl Metric<Tick> for SnapshotsNeighbour {
    fn name(&self) -> &str {
        "snapshots_neighbour"
    }

    fn handle_event(&mut self, _event: &Tick) -> bool {
        let snapshot = self.neighbour.snapshot_now_blocking().map(|s| s.len());
        self.results.send(snapshot).unwrap();
        true
    }

    fn snapshot(&self) -> Snapshot {
        Snapshot::new("snapshots_neighbour", MetricKind::Counter)
    }
}

#[test]
fn a_recorder_waiting_on_a_neighbour_on_its_metrics_runtime_thread_is_refused() {
    within_guard(|| {
        let runtime = MetricsRuntime::new().expect("the runtime starts");
        let quiet = runtime.create_recorder::<Tick>("quiet").unwrap();
        let busy = runtime.create_recorder::<Tick>("busy").unwrap();
        let (results_tx, results) = mpsc::channel();
        let metric = SnapshotsNeighbour {
            neighbour: quiet.clone(),
            results: results_tx,
        };
        busy.register_metric(metric).unwrap();
        assert!(matches!(
            busy.register_event(Tick),
            Ok(LogOutcome::Accepted)
        ));
        // Both recorders' drivers run on the runtime's one thread, which `busy` is blocking.
        match results.recv().unwrap() {
            Err(error @ RecorderError::Sink(SinkError::WouldDeadlock)) => {
                assert_eq!(error.reason(), ErrorReason::WouldDeadlock);
            }
            other => panic!("expected WouldDeadlock, got {other:?}"),
        }
        // From another thread it is served.
        assert_eq!(quiet.snapshot_now_blocking().map(|s| s.len()).ok(), Some(0));
        runtime.shutdown().expect("both recorders stop");
    });
}

/// A `LogEvent` dispatcher that flushes the process's logger — the `log` facade on its own
/// sink — from inside each dispatch.
#[cfg(feature = "log")]
struct FlushesLogger(mpsc::Sender<String>);

#[cfg(feature = "log")]
impl Dispatch<mvx::sink::LogEvent> for FlushesLogger {
    async fn dispatch(&mut self, event: mvx::sink::LogEvent) -> Result<(), BoxError> {
        log::logger().flush();
        self.0.send(event.message.into_owned()).unwrap();
        Ok(())
    }
}

/// The one test of this binary that installs a `log` logger.
#[cfg(feature = "log")]
#[test]
fn the_log_facades_flush_on_the_sinks_own_thread_returns() {
    within_guard(|| {
        let (flushed_tx, flushed) = mpsc::channel();
        let (sink, terminator) =
            mvx::rt::thread::create(FlushesLogger(flushed_tx), SinkConfig::default())
                .expect("starts");
        let logger = mvx::facade::log::install(sink.clone(), log::LevelFilter::Info)
            .expect("no logger is set yet");
        log::info!("flush from inside");
        assert_eq!(flushed.recv().unwrap(), "flush from inside");
        log::logger().flush(); // from this thread it waits, and is served
        assert_eq!(sink.stats().delivered, 1);
        assert_eq!(logger.refused().total(), 0);
        terminator.terminate().expect("stops");
    });
}

/// Blocking calls on a tokio current-thread runtime, for a sink, a recorder and statistics
/// whose drivers are tasks of that runtime.
#[cfg(feature = "tokio")]
#[test]
fn blocking_calls_on_a_tokio_current_thread_runtime_that_runs_the_driver_are_refused() {
    within_guard(|| {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a runtime");
        runtime.block_on(async {
            let config = SinkConfig::default()
                .queue_capacity(1)
                .overflow(OverflowPolicy::Block);
            let (sink, driver) = AsyncSink::new(Discard, config.clone());
            let driver = tokio::spawn(driver);
            assert!(sink.start().await.success);
            assert_eq!(sink.log(1u32), Ok(LogOutcome::Accepted));
            // The driver has not run since: the queue is full, and only this thread can
            // run it.
            assert_would_deadlock(sink.flush_blocking());
            assert_would_deadlock(sink.flush().wait_timeout(GUARD));
            assert_eq!(sink.log(2), Err(LogError::WouldDeadlock(2)));
            assert_eq!(sink.log_blocking(3), Err(LogError::WouldDeadlock(3)));
            assert_eq!(
                sink.send(4).wait_timeout(GUARD),
                Err(SendTimeoutError::WouldDeadlock(4))
            );
            // Awaited, the same waits are served.
            sink.flush().await.expect("served");
            assert_eq!(sink.send(5).await, Ok(LogOutcome::Accepted));
            let stop = sink.stop();
            let still = stop.wait_timeout(GUARD).expect_err("cannot finish");
            assert!(still.is_would_deadlock());
            assert_refused_op(still.into_handle().wait(), Op::Stop);
            driver.await.expect("the driver returns once stopped");
            let stats = sink.stats();
            assert_eq!((stats.accepted, stats.delivered, stats.pending), (2, 2, 0));

            let (recorder, driver) = MetricsRecorder::<Tick>::new("tokio", config);
            let driver = tokio::spawn(driver);
            assert!(recorder.start().await.success);
            assert!(matches!(
                recorder.register_event(Tick),
                Ok(LogOutcome::Accepted)
            ));
            assert!(matches!(
                recorder.register_event(Tick),
                Err(LogError::WouldDeadlock(Tick))
            ));
            match recorder.snapshot_now_blocking() {
                Err(RecorderError::Sink(SinkError::WouldDeadlock)) => {}
                other => panic!("expected WouldDeadlock, got {other:?}"),
            }
            assert!(recorder.snapshot_now().await.is_ok());
            assert!(recorder.stop().await.success);
            driver.await.expect("the driver returns once stopped");

            let (stats, driver) =
                mvx::stats::Statistics::new(mvx::stats::StatsConfig::default()).expect("valid");
            let driver = tokio::spawn(driver);
            stats.start().await.expect("starts");
            stats
                .record_request_processing_start(1u64)
                .expect("recorded");
            match stats.calculate_blocking() {
                Err(error @ mvx::stats::StatsError::Recorder(SinkError::WouldDeadlock)) => {
                    assert_eq!(error.reason(), ErrorReason::WouldDeadlock);
                }
                other => panic!("expected WouldDeadlock, got {other:?}"),
            }
            match stats.stop().wait_timeout(GUARD) {
                Err(mvx::stats::StatsError::Recorder(SinkError::WouldDeadlock)) => {}
                other => panic!("expected WouldDeadlock, got {other:?}"),
            }
            assert_eq!(
                stats
                    .calculate()
                    .await
                    .expect("served")
                    .requests_in_progress,
                1
            );
            driver.await.expect("the driver returns once stopped");
        });
    });
}
