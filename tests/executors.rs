//! One sink scenario under every executor mvx claims to run on: tokio (current-thread and
//! multi-thread), smol (`rt::smol::spawn` and `rt::smol::create`), `futures`' `LocalPool`
//! and `ThreadPool`, and mvx's own thread executor (`rt::thread::create`).
//!
//! The scenario is written once, [`scenario`]: start, log from the executor task and from
//! two plain threads, flush, check per-producer order, stop, check the exact counters, and
//! check that the driver finished. A spawner whose executor has shut down refuses the
//! driver with `EventLoopUnavailable`. Every test body runs under a watchdog so that a hang
//! fails the test instead of the run.
#![cfg(not(loom))]

use futures::channel::oneshot;
use futures::executor::{LocalPool, ThreadPool, block_on};
use futures::task::SpawnExt;
use mvx::error::{SinkError, TerminateError};
use mvx::queue::{DEFAULT_QUEUE_CAPACITY, LogOutcome, QueueStats};
use mvx::sink::sinks::{MemoryEvents, MemorySink};
use mvx::sink::{AsyncSink, BatchError, Dispatch, SinkConfig};
use mvx::{BoxError, ErrorReason, Op, State};

#[path = "support/watchdog.rs"]
mod watchdog;

use watchdog::within_guard;

/// Events logged by each producer.
const PER_PRODUCER: u32 = 1_000;

/// The executor task and two plain threads.
const PRODUCERS: u8 = 3;

/// `(producer, sequence number within that producer)`.
type Event = (u8, u32);

/// A [`MemorySink`] that says when it is dropped, which is when the driver that owns it
/// has finished (or was dropped; the scenario tells the two apart by the final state).
struct Tracked {
    memory: MemorySink<Event>,
    dropped: Option<oneshot::Sender<()>>,
}

impl Dispatch<Event> for Tracked {
    async fn dispatch(&mut self, event: Event) -> Result<(), BoxError> {
        self.memory.dispatch(event).await
    }

    async fn dispatch_batch(&mut self, events: &mut Vec<Event>) -> Result<(), BatchError> {
        self.memory.dispatch_batch(events).await
    }
}

impl Drop for Tracked {
    fn drop(&mut self) {
        if let Some(dropped) = self.dropped.take() {
            let _ = dropped.send(());
        }
    }
}

/// What the scenario needs besides the sink.
struct Probe {
    events: MemoryEvents<Event>,
    driver_done: oneshot::Receiver<()>,
}

fn tracked() -> (Tracked, Probe) {
    let (memory, events) = MemorySink::new();
    let (dropped, driver_done) = oneshot::channel();
    (
        Tracked {
            memory,
            dropped: Some(dropped),
        },
        Probe {
            events,
            driver_done,
        },
    )
}

fn config() -> SinkConfig {
    SinkConfig::default().namespace("executors")
}

fn log_all(sink: &AsyncSink<Event>, producer: u8) {
    for seq in 0..PER_PRODUCER {
        assert_eq!(sink.log((producer, seq)), Ok(LogOutcome::Accepted));
    }
}

/// The scenario every executor must pass. `sink` is `Virgin` or already started by an
/// adapter; its driver is being polled by the executor under test.
async fn scenario(sink: AsyncSink<Event>, probe: Probe) {
    let Probe {
        events,
        driver_done,
    } = probe;

    let started = sink.start().await;
    assert_eq!(started.op, Op::Start);
    assert!(started.success, "start failed: {:?}", started.error);
    assert!(started.error.is_none());
    assert_eq!(sink.state(), State::Running);

    // Two plain threads log while the executor task logs too.
    let mut threads = Vec::new();
    let mut finished = Vec::new();
    for producer in 1..PRODUCERS {
        let sink = sink.clone();
        let (done_tx, done_rx) = oneshot::channel::<()>();
        finished.push(done_rx);
        threads.push(std::thread::spawn(move || {
            log_all(&sink, producer);
            let _ = done_tx.send(());
        }));
    }
    log_all(&sink, 0);
    for done in finished {
        // `Canceled` here means the producer thread panicked: join it to see why.
        if done.await.is_err() {
            for thread in threads {
                if let Err(panic) = thread.join() {
                    std::panic::resume_unwind(panic);
                }
            }
            unreachable!("a producer ended without finishing and without panicking");
        }
    }
    for thread in threads {
        thread.join().expect("the producer finished");
    }

    let total = u64::from(PRODUCERS) * u64::from(PER_PRODUCER);
    assert_eq!(sink.flush().await.map_err(|e| e.reason()), Ok(()));
    let received = events.snapshot();
    assert_eq!(received.len() as u64, total);
    for producer in 0..PRODUCERS {
        let sequence: Vec<u32> = received
            .iter()
            .filter(|(from, _)| *from == producer)
            .map(|&(_, seq)| seq)
            .collect();
        assert_eq!(
            sequence,
            (0..PER_PRODUCER).collect::<Vec<_>>(),
            "events of producer {producer} out of order or missing"
        );
    }

    let stopped = sink.stop().await;
    assert_eq!(stopped.op, Op::Stop);
    assert!(stopped.success, "stop failed: {:?}", stopped.error);
    assert!(stopped.error.is_none());
    assert_eq!(sink.state(), State::Stopped);

    let stats = sink.stats();
    assert_eq!(
        stats,
        QueueStats {
            accepted: total,
            delivered: total,
            failed: 0,
            dropped: 0,
            refused: 0,
            pending: 0,
            capacity: DEFAULT_QUEUE_CAPACITY,
            // How far the queue filled depends on scheduling; checked below.
            high_watermark: stats.high_watermark,
            restarts: 0,
        }
    );
    assert!((1..=total as usize).contains(&stats.high_watermark));
    assert_eq!(events.len() as u64, total);

    // The driver owns the dispatcher: it is dropped when the driver future completes.
    assert_eq!(driver_done.await, Ok(()));
    assert_eq!(sink.state(), State::Stopped);
    assert_eq!(sink.last_error().map(|e| e.reason()), None);
}

/// Propagates a panic of a task joined through tokio.
fn join_tokio<T>(joined: Result<T, tokio::task::JoinError>) -> T {
    match joined {
        Ok(value) => value,
        Err(error) => std::panic::resume_unwind(error.into_panic()),
    }
}

#[test]
fn tokio_current_thread_runtime() {
    within_guard(|| {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .build()
            .expect("a tokio runtime");
        runtime.block_on(async {
            let (dispatch, probe) = tracked();
            let (sink, driver) = AsyncSink::new(dispatch, config());
            let driver = tokio::spawn(driver);
            join_tokio(tokio::spawn(scenario(sink, probe)).await);
            join_tokio(driver.await);
        });
    });
}

#[test]
fn tokio_multi_thread_runtime() {
    within_guard(|| {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .build()
            .expect("a tokio runtime");
        runtime.block_on(async {
            let (dispatch, probe) = tracked();
            let (sink, driver) = AsyncSink::new(dispatch, config());
            let driver = tokio::spawn(driver);
            join_tokio(tokio::spawn(scenario(sink, probe)).await);
            join_tokio(driver.await);
        });
    });
}

#[test]
fn smol_executor_with_rt_smol_spawn() {
    within_guard(|| {
        let executor = smol::Executor::new();
        let (dispatch, probe) = tracked();
        let sink = mvx::rt::smol::spawn(&executor, dispatch, config());
        assert_eq!(sink.state(), State::Virgin);
        smol::block_on(executor.run(scenario(sink, probe)));
        // The driver task has completed: the executor holds no task any more.
        assert!(executor.is_empty());
    });
}

#[test]
fn smol_on_a_dedicated_thread_with_rt_smol_create() {
    within_guard(|| {
        let (dispatch, probe) = tracked();
        let (sink, terminator) =
            mvx::rt::smol::create(dispatch, config()).expect("the sink starts");
        assert_eq!(sink.state(), State::Running);
        block_on(scenario(sink, probe));
        // Already stopped: terminating only shuts the executor down and joins it.
        let stats = terminator.terminate().expect("terminated");
        assert_eq!(stats.pending, 0, "{stats}");
        assert_eq!(stats.accepted, stats.delivered + stats.failed, "{stats}");
        assert!(terminator.is_terminated());
    });
}

#[test]
fn futures_local_pool_with_spawn_on() {
    within_guard(|| {
        let mut pool = LocalPool::new();
        let (dispatch, probe) = tracked();
        let sink = AsyncSink::spawn_on(dispatch, config(), &pool.spawner())
            .expect("the pool accepts the driver");
        assert_eq!(sink.state(), State::Virgin);
        pool.run_until(scenario(sink, probe));
        // Returns only once every task, the driver included, has completed.
        pool.run();
    });
}

#[test]
fn futures_thread_pool_with_spawn_on() {
    within_guard(|| {
        let pool = ThreadPool::builder()
            .pool_size(2)
            .create()
            .expect("a thread pool");
        let (dispatch, probe) = tracked();
        let sink =
            AsyncSink::spawn_on(dispatch, config(), &pool).expect("the pool accepts the driver");
        assert_eq!(sink.state(), State::Virgin);
        // The scenario runs as a task of the pool too; a panic in it resumes here.
        let scenario = pool
            .spawn_with_handle(scenario(sink, probe))
            .expect("the pool accepts the scenario");
        block_on(scenario);
    });
}

#[test]
fn mvx_thread_executor_with_rt_thread_create() {
    within_guard(|| {
        let (dispatch, probe) = tracked();
        let (sink, terminator) =
            mvx::rt::thread::create(dispatch, config()).expect("the sink starts");
        assert_eq!(sink.state(), State::Running);
        block_on(scenario(sink, probe));
        let outcome: Result<QueueStats, TerminateError> = terminator.terminate();
        let stats = outcome.expect("terminated");
        assert_eq!(stats.pending, 0, "{stats}");
        assert_eq!(stats.accepted, stats.delivered + stats.failed, "{stats}");
        assert!(terminator.is_terminated());
    });
}

#[test]
fn a_spawner_whose_executor_has_shut_down_is_event_loop_unavailable() {
    within_guard(|| {
        let pool = LocalPool::new();
        let spawner = pool.spawner();
        drop(pool);
        let (dispatch, mut probe) = tracked();
        let refused = AsyncSink::spawn_on(dispatch, config(), &spawner);
        match &refused {
            Err(error @ SinkError::EventLoopUnavailable) => {
                assert_eq!(error.reason(), ErrorReason::EventLoopUnavailable)
            }
            Err(other) => panic!("expected EventLoopUnavailable, got {other:?}"),
            Ok(_) => panic!("a shut-down pool accepted the driver"),
        }
        // The driver, and the dispatcher with it, was dropped.
        assert_eq!(probe.driver_done.try_recv(), Ok(Some(())));
        assert!(probe.events.is_empty());
    });
}
