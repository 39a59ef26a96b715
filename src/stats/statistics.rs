//! `Statistics`: the handle, its driver, and the dispatcher that aggregates.
//!
//! One concept a little over 500 lines: some 40 % of it is the docs of the recording calls.

use std::fmt;
use std::future::{Future, poll_fn};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::pin::{Pin, pin};
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::Instant;

use futures::task::{FutureObj, Spawn};

use super::event::{ErrorKind, RequestId, StatsEvent};
use super::periodic::{self, Flag};
use super::persist::{self, Gate};
use super::report;
use super::state::Aggregator;
use super::wait::{Calculate, StatsWait};
use super::{
    DEFAULT_PERSIST_STATE_KEY_PREFIX, FinalStatistics, StatisticsState, StatsConfig, StatsError,
};
use crate::error::{BoxError, Cause, LogError, SinkError};
use crate::lifecycle::State;
use crate::queue::QueueStats;
use crate::sink::{AsyncSink, BatchError, Dispatch, Driver};
use crate::sync::{Arc, Mutex, lock, seated};

/// Request statistics: how many requests started, finished, failed and were retried, how
/// long they took, which status codes and errors came back.
///
/// A cheap, cloneable, thread-safe handle; the work is done by its [`StatsDriver`],
/// spawned on any executor. Recording calls are synchronous, take no lock and do not
/// allocate for numeric ids: each one queues an event, stamped with the caller's clock, and
/// the driver applies it. See the [module docs](super) for the lifecycle and what is lost
/// when.
///
/// # Examples
///
/// ```
/// use mvx::stats::{Statistics, StatsConfig};
///
/// let (stats, driver) = Statistics::new(StatsConfig::default())?;
/// let driver = std::thread::spawn(move || futures::executor::block_on(driver));
///
/// stats.start().wait()?;
/// stats.record_request_processing_start(1u64)?;
/// stats.register_status_code(200)?;
/// stats.record_request_processing_finish(1u64)?;
/// let figures = stats.calculate_blocking()?; // every call above is in it
/// assert_eq!(figures.requests_finished, 1);
/// assert_eq!(stats.state().requests_with_status_code[&200], 1);
/// stats.stop().wait()?;
/// driver.join().unwrap();
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone)]
pub struct Statistics {
    sink: AsyncSink<StatsEvent>,
    inner: Arc<Inner>,
}

/// The id of the next statistics created in this process (Crawlee's `Statistics.__next_id`).
static NEXT_ID: AtomicU64 = AtomicU64::new(0);

/// What the handles, the dispatcher and the periodic tasks share.
pub(crate) struct Inner {
    pub(crate) config: StatsConfig,
    /// The statistics' id in this process.
    pub(crate) id: u64,
    /// The key the state is persisted under: the configured one, or the statistics' own.
    pub(crate) persist_state_key: String,
    pub(crate) aggregator: Mutex<Aggregator>,
    pub(crate) last_error: Mutex<Option<StatsError>>,
    /// Orders loads, saves and removals of the persisted state.
    pub(crate) persist_gate: futures::lock::Mutex<Gate>,
    /// Raised once the state is loaded and collection has begun.
    pub(crate) collecting: Flag,
    /// Raised once the first report has been handed over (or there is none to make).
    pub(crate) reported: Flag,
    /// The outcome of the report being written to standard error, if one is.
    pub(crate) report_in_flight: Mutex<Option<async_channel::Receiver<bool>>>,
}

impl Inner {
    pub(crate) fn record_error(&self, error: StatsError) {
        *lock(&self.last_error) = Some(error);
    }

    /// The figures of the state applied so far, with the runtime as of now.
    pub(crate) fn figures(&self) -> FinalStatistics {
        let mut aggregator = lock(&self.aggregator);
        aggregator.refresh();
        FinalStatistics::from_state(&aggregator.state).with_in_progress(aggregator.in_progress())
    }
}

/// The dispatcher of the statistics' queue: applies each event to the state.
struct Collector {
    inner: Arc<Inner>,
}

impl Dispatch<StatsEvent> for Collector {
    async fn dispatch(&mut self, event: StatsEvent) -> Result<(), BoxError> {
        lock(&self.inner.aggregator).apply(event);
        Ok(())
    }

    async fn dispatch_batch(&mut self, events: &mut Vec<StatsEvent>) -> Result<(), BatchError> {
        let mut aggregator = lock(&self.inner.aggregator);
        for event in events.drain(..) {
            aggregator.apply(event);
        }
        Ok(())
    }

    /// Loads the persisted state; calls recorded meanwhile wait in the queue. The start
    /// completes once the first report is handed over, as Crawlee logs its statistics
    /// before it activates them.
    async fn on_starting(&mut self) -> Result<(), BoxError> {
        persist::load(&self.inner).await?;
        lock(&self.inner.aggregator).begin_run();
        self.inner.collecting.raise();
        self.inner.reported.wait().await;
        Ok(())
    }

    /// Waits for a report still being written to standard error, then stops the runtime
    /// clock and saves the final state.
    async fn on_stopped(&mut self) -> Result<(), BoxError> {
        report::finish_in_flight(&self.inner).await;
        lock(&self.inner.aggregator).end_run();
        persist::save(&self.inner, true).await?;
        Ok(())
    }
}

/// The future that runs a [`Statistics`]: spawn it on any executor, or poll it yourself.
///
/// It completes when the statistics have stopped (or failed). Dropping it while they are
/// live cancels them: recording calls are refused from then on.
#[must_use = "statistics collect nothing unless their driver is spawned or polled"]
pub struct StatsDriver {
    future: Pin<Box<dyn Future<Output = ()> + Send + 'static>>,
}

impl Future for StatsDriver {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        self.future.as_mut().poll(cx)
    }
}

impl StatsDriver {
    /// The driver as a `FutureObj`, for `futures::task::Spawn` implementations.
    pub fn into_future_obj(self) -> FutureObj<'static, ()> {
        FutureObj::from(self.future)
    }
}

impl fmt::Debug for StatsDriver {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StatsDriver").finish_non_exhaustive()
    }
}

/// Runs the queue's driver and the periodic work beside it; ends with the queue's driver.
async fn drive(mut queue: Driver, inner: Arc<Inner>) {
    let mut periodic = pin!(periodic::run(inner.clone()));
    let mut periodic_done = false;
    poll_fn(|cx| {
        if Pin::new(&mut queue).poll(cx).is_ready() {
            return Poll::Ready(());
        }
        if !periodic_done {
            match catch_unwind(AssertUnwindSafe(|| periodic.as_mut().poll(cx))) {
                Ok(poll) => periodic_done = poll.is_ready(),
                Err(payload) => {
                    // Not expected (store panics are caught where they are called), but
                    // never silent: kept in `last_error()`; collection goes on.
                    periodic_done = true;
                    inner.reported.raise();
                    inner.record_error(StatsError::Recorder(SinkError::Unexpected(
                        Cause::from_panic(payload),
                    )));
                }
            }
        }
        Poll::Pending
    })
    .await;
}

impl Statistics {
    /// `Virgin` statistics and the driver to spawn on your executor.
    ///
    /// # Errors
    ///
    /// [`StatsError::InvalidConfig`] when `config` does not [`validate`](StatsConfig::validate);
    /// `StatsError::Recorder(SinkError::QueueAllocationFailed { .. })` when the queue's ring
    /// cannot be allocated (a `config.sink.queue_capacity` above
    /// [`MAX_QUEUE_CAPACITY`](crate::queue::MAX_QUEUE_CAPACITY), or memory the allocator
    /// refused).
    pub fn new(config: StatsConfig) -> Result<(Self, StatsDriver), StatsError> {
        config.validate()?;
        let id = NEXT_ID.fetch_add(1, Ordering::Relaxed);
        let persist_state_key = match &config.persist_state_key {
            Some(key) => key.clone(),
            None => format!("{DEFAULT_PERSIST_STATE_KEY_PREFIX}{id}"),
        };
        let inner = Arc::new(Inner {
            config,
            id,
            persist_state_key,
            aggregator: Mutex::new(Aggregator::new(id)),
            last_error: Mutex::new(None),
            persist_gate: futures::lock::Mutex::new(Gate::default()),
            collecting: Flag::default(),
            reported: Flag::default(),
            report_in_flight: Mutex::new(None),
        });
        let collector = Collector {
            inner: inner.clone(),
        };
        let (sink, queue) = AsyncSink::new(collector, inner.config.sink.clone());
        if let Some(error @ SinkError::QueueAllocationFailed { .. }) = sink.last_error() {
            return Err(StatsError::Recorder(error));
        }
        // Seated as the queue's driver is: the periodic work runs user code too (a store),
        // and a blocking wait there for these statistics could only wait for itself.
        let driver = StatsDriver {
            future: Box::pin(seated(sink.driver_seat(), drive(queue, inner.clone()))),
        };
        Ok((Self { sink, inner }, driver))
    }

    /// Statistics whose driver is spawned with `spawner`; start them.
    ///
    /// # Errors
    ///
    /// As [`new`](Self::new); `StatsError::Recorder(SinkError::EventLoopUnavailable)` when
    /// the spawner refuses the driver.
    pub fn spawn_on<S: Spawn + ?Sized>(
        config: StatsConfig,
        spawner: &S,
    ) -> Result<Self, StatsError> {
        let (stats, driver) = Self::new(config)?;
        spawner
            .spawn_obj(driver.into_future_obj())
            .map_err(|_| crate::error::SinkError::EventLoopUnavailable)?;
        Ok(stats)
    }

    /// Begins collection: loads the persisted state (with persistence enabled), then the
    /// runtime counts from now on top of the persisted runtime, the first report is handed
    /// over ([`ReportTo`](super::ReportTo)), and the state is saved every
    /// `persist_interval`.
    ///
    /// Returns at once; the driver does the work. Recording calls are accepted from this
    /// call on: those made while the state loads wait in the queue and are applied on top
    /// of it. A second call while starting or running waits for the same start.
    ///
    /// # Errors
    ///
    /// The result carries
    /// - `StatsError::Recorder(SinkError::InvalidState { .. })` when the statistics are
    ///   stopping or have ended;
    /// - [`StatsError::Store`] with [`StoreOperation::Load`](super::StoreOperation::Load)
    ///   when the store could not be read (the value is left as it is);
    /// - [`StatsError::CorruptState`] when the persisted state is not valid, unless
    ///   `reset_on_corrupt_state` is set;
    /// - `StatsError::Recorder(SinkError::StartTimedOut { .. })` when the load took longer
    ///   than the queue's `start_timeout`.
    ///
    /// A failed start leaves the statistics in `Failure`; calls recorded while starting
    /// are counted as failed in [`queue_stats`](Self::queue_stats).
    pub fn start(&self) -> StatsWait {
        StatsWait::new(self.sink.start())
    }

    /// Ends collection: applies every call recorded before it, stops the runtime clock and
    /// saves the final state (with persistence enabled); no save happens after it.
    ///
    /// Valid only while running. Recording calls made after it are refused
    /// ([`StatsError::NotRecording`]). Dropping the last handle of running statistics
    /// stops them the same way.
    ///
    /// # Errors
    ///
    /// The result carries `StatsError::Recorder(SinkError::InvalidState { .. })` when not
    /// running, [`StatsError::Store`] with
    /// [`StoreOperation::Save`](super::StoreOperation::Save) when the final save failed
    /// (the statistics are stopped all the same), and
    /// `StatsError::Recorder(SinkError::StopTimedOut { .. })` when the stop took longer than
    /// the queue's `stop_timeout`.
    pub fn stop(&self) -> StatsWait {
        StatsWait::new(self.sink.stop())
    }

    /// The lifecycle state.
    pub fn lifecycle_state(&self) -> State {
        self.sink.state()
    }

    /// Whether recording calls are accepted (`Starting` or `Running`).
    pub fn is_active(&self) -> bool {
        self.lifecycle_state().accepts_events()
    }

    fn record(&self, event: StatsEvent) -> Result<(), StatsError> {
        match self.sink.log(event) {
            // `Dropped` (policy `Drop` only) is counted in the queue's `dropped`.
            Ok(_) => Ok(()),
            Err(LogError::QueueOverflow(_)) => Err(StatsError::QueueOverflow),
            Err(LogError::NotAccepting { state, .. }) => Err(StatsError::NotRecording { state }),
            Err(LogError::WouldDeadlock(_)) => Err(StatsError::Recorder(SinkError::WouldDeadlock)),
        }
    }

    /// Marks request `id` as started, now. A start of a request already in progress is a
    /// retry of it (as [`record_request_retry`](Self::record_request_retry)).
    ///
    /// Synchronous, thread-safe, no lock; no allocation for a numeric id.
    ///
    /// # Errors
    ///
    /// [`StatsError::NotRecording`] when not collecting; [`StatsError::QueueOverflow`]
    /// under `OverflowPolicy::RaiseError` with a full queue;
    /// `StatsError::Recorder(SinkError::WouldDeadlock)` under `Block` (the default) with a
    /// full queue, when only the calling thread could make room (see
    /// [`LogError::WouldDeadlock`]). Nothing is counted then.
    pub fn record_request_processing_start(
        &self,
        id: impl Into<RequestId>,
    ) -> Result<(), StatsError> {
        self.record_request_processing_start_at(id, Instant::now())
    }

    /// [`record_request_processing_start`](Self::record_request_processing_start) with a
    /// timestamp of your own (durations are measured between these timestamps).
    ///
    /// # Errors
    ///
    /// As [`record_request_processing_start`](Self::record_request_processing_start).
    pub fn record_request_processing_start_at(
        &self,
        id: impl Into<RequestId>,
        at: Instant,
    ) -> Result<(), StatsError> {
        self.record(StatsEvent::Start { id: id.into(), at })
    }

    /// Marks request `id`, in progress, as retried now: one more retry is counted, and its
    /// duration is measured from now. A request not in progress (started before a
    /// restart) is tracked from now with one retry.
    ///
    /// # Errors
    ///
    /// As [`record_request_processing_start`](Self::record_request_processing_start).
    pub fn record_request_retry(&self, id: impl Into<RequestId>) -> Result<(), StatsError> {
        self.record_request_retry_at(id, Instant::now())
    }

    /// [`record_request_retry`](Self::record_request_retry) with a timestamp of your own.
    ///
    /// # Errors
    ///
    /// As [`record_request_processing_start`](Self::record_request_processing_start).
    pub fn record_request_retry_at(
        &self,
        id: impl Into<RequestId>,
        at: Instant,
    ) -> Result<(), StatsError> {
        self.record(StatsEvent::Retry { id: id.into(), at })
    }

    /// Marks request `id` as finished successfully, now: counted in `requests_finished`,
    /// its duration (from its last start or retry) and its retry count recorded. An id
    /// not in progress is counted in `requests_unmatched` only.
    ///
    /// # Errors
    ///
    /// As [`record_request_processing_start`](Self::record_request_processing_start).
    pub fn record_request_processing_finish(
        &self,
        id: impl Into<RequestId>,
    ) -> Result<(), StatsError> {
        self.record_request_processing_finish_at(id, Instant::now())
    }

    /// [`record_request_processing_finish`](Self::record_request_processing_finish) with a
    /// timestamp of your own.
    ///
    /// # Errors
    ///
    /// As [`record_request_processing_start`](Self::record_request_processing_start).
    pub fn record_request_processing_finish_at(
        &self,
        id: impl Into<RequestId>,
        at: Instant,
    ) -> Result<(), StatsError> {
        self.record(StatsEvent::Finish { id: id.into(), at })
    }

    /// Marks request `id` as failed for good, now: counted in `requests_failed`, its
    /// duration and retry count recorded. An id not in progress is counted in
    /// `requests_unmatched` only.
    ///
    /// # Errors
    ///
    /// As [`record_request_processing_start`](Self::record_request_processing_start).
    pub fn record_request_processing_failure(
        &self,
        id: impl Into<RequestId>,
    ) -> Result<(), StatsError> {
        self.record_request_processing_failure_at(id, Instant::now())
    }

    /// [`record_request_processing_failure`](Self::record_request_processing_failure)
    /// with a timestamp of your own.
    ///
    /// # Errors
    ///
    /// As [`record_request_processing_start`](Self::record_request_processing_start).
    pub fn record_request_processing_failure_at(
        &self,
        id: impl Into<RequestId>,
        at: Instant,
    ) -> Result<(), StatsError> {
        self.record(StatsEvent::Failure { id: id.into(), at })
    }

    /// Counts one response with status `code`.
    ///
    /// # Errors
    ///
    /// As [`record_request_processing_start`](Self::record_request_processing_start).
    pub fn register_status_code(&self, code: u16) -> Result<(), StatsError> {
        self.record(StatsEvent::StatusCode(code))
    }

    /// Counts one request ended by an error of `kind` (in `errors`). A `&'static str` kind
    /// does not allocate.
    ///
    /// # Errors
    ///
    /// As [`record_request_processing_start`](Self::record_request_processing_start).
    pub fn register_error(&self, kind: impl Into<ErrorKind>) -> Result<(), StatsError> {
        self.record(StatsEvent::Error {
            kind: kind.into(),
            retry: false,
        })
    }

    /// Counts one retry caused by an error of `kind` (in `retry_errors`).
    ///
    /// # Errors
    ///
    /// As [`record_request_processing_start`](Self::record_request_processing_start).
    pub fn register_retry_error(&self, kind: impl Into<ErrorKind>) -> Result<(), StatsError> {
        self.record(StatsEvent::Error {
            kind: kind.into(),
            retry: true,
        })
    }

    /// The figures, once every call recorded before this one has been applied.
    ///
    /// A barrier: whatever thread recorded a call before `calculate()` was called, the call
    /// is in the result. Before `start()` the figures are those of the empty state.
    ///
    /// The returned [`Calculate`] is a future: `.await` it, or block on it with `wait()`,
    /// `wait_timeout(Duration)` or `wait_deadline(Instant)`.
    ///
    /// # Errors
    ///
    /// The future resolves to `StatsError::Recorder` with the reason the queue ended
    /// abnormally (a stop that timed out, a cancelled driver), when calls may be missing
    /// from the figures; a blocking form with a deadline to
    /// `StatsError::Recorder(SinkError::WaitTimedOut)` when the deadline passed first.
    pub fn calculate(&self) -> Calculate<'_> {
        Calculate::new(self.sink.flush(), self)
    }

    /// [`calculate`](Self::calculate), blocking the current thread: `calculate().wait()`.
    ///
    /// # Errors
    ///
    /// As [`calculate`](Self::calculate); `StatsError::Recorder(SinkError::WouldDeadlock)`,
    /// at once, when only the calling thread could run the statistics' driver (from one of
    /// its stores, or on a tokio current-thread runtime that runs it: see
    /// [which calls block](crate::sink#which-calls-block)).
    pub fn calculate_blocking(&self) -> Result<FinalStatistics, StatsError> {
        self.calculate().wait()
    }

    pub(super) fn figures(&self) -> FinalStatistics {
        self.inner.figures()
    }

    /// The state as applied so far, with `crawler_runtime` and the per-minute rates as of now.
    ///
    /// Not a barrier: calls still queued are not in it. After [`calculate`](Self::calculate)
    /// returned, every call recorded before it is.
    pub fn state(&self) -> StatisticsState {
        let mut aggregator = lock(&self.inner.aggregator);
        aggregator.refresh();
        aggregator.state.clone()
    }

    /// Back to the defaults: every count cleared, requests in progress forgotten, a
    /// running collection's runtime restarted from now, and the persisted state removed
    /// from the store (with persistence enabled; a running collection saves its fresh state
    /// again at the next `persist_interval`).
    ///
    /// Calls recorded before it are applied first (and so cleared).
    ///
    /// # Errors
    ///
    /// [`StatsError::Store`] with [`StoreOperation::Delete`](super::StoreOperation::Delete)
    /// when the store could not remove the persisted state (the counts in memory are reset
    /// all the same).
    pub async fn reset(&self) -> Result<(), StatsError> {
        // If the queue ended abnormally, nothing more will be applied: reset all the same.
        let _ = self.sink.flush().await;
        persist::reset(&self.inner).await
    }

    /// [`reset`](Self::reset), blocking the current thread. Callable from inside another
    /// executor's task too (it blocks that thread): `async_io::block_on` nests where
    /// `futures::executor::block_on` panics.
    ///
    /// # Errors
    ///
    /// As [`reset`](Self::reset).
    pub fn reset_blocking(&self) -> Result<(), StatsError> {
        // If the queue ended abnormally, nothing more will be applied: reset all the same.
        let _ = self.sink.flush().wait();
        async_io::block_on(persist::reset(&self.inner))
    }

    /// The counters of the queue between the recording calls and the driver.
    pub fn queue_stats(&self) -> QueueStats {
        self.sink.stats()
    }

    /// The most recent error of the background work (a failed periodic save, a corrupt
    /// state set aside under `reset_on_corrupt_state`), or else of the queue.
    pub fn last_error(&self) -> Option<StatsError> {
        let own = lock(&self.inner.last_error).clone();
        own.or_else(|| self.sink.last_error().map(StatsError::Recorder))
    }

    /// The configuration.
    pub fn config(&self) -> &StatsConfig {
        &self.inner.config
    }

    /// The statistics' id: 0 for the first statistics created in the process, then 1, 2,
    /// ... (Crawlee's `Statistics._id`). It is the `stats_id` of their fresh state and
    /// names the key they persist under unless one is configured.
    pub fn id(&self) -> u64 {
        self.inner.id
    }

    /// The key the state is persisted under: [`StatsConfig::persist_state_key`] if set,
    /// else [`DEFAULT_PERSIST_STATE_KEY_PREFIX`](super::DEFAULT_PERSIST_STATE_KEY_PREFIX)
    /// and the [`id`](Self::id), such as `__CRAWLER_STATISTICS_0`.
    pub fn persist_state_key(&self) -> &str {
        &self.inner.persist_state_key
    }
}

impl fmt::Debug for Statistics {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Statistics")
            .field("state", &self.lifecycle_state())
            .field("queue", &self.queue_stats())
            .finish_non_exhaustive()
    }
}
