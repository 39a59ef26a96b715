//! `MetricsRecorder`: user-defined events aggregated into user-defined metrics.
//!
//! One concept in one file, a little over 500 lines: the recorder, the two traits users
//! implement for it ([`MetricEvent`], [`Metric`]) and its error.

use std::collections::BTreeMap;
use std::fmt;
use std::panic::{AssertUnwindSafe, catch_unwind};

use futures::task::Spawn;

use super::{Metadata, MetricsReason, Snapshot, SnapshotNow, SnapshotSource, Snapshots};
use crate::BoxError;
use crate::error::{Cause, ErrorReason, LogError, SinkError};
use crate::lifecycle::{State, WaitHandle};
use crate::queue::{LogOutcome, QueueStats};
use crate::sink::wait::Flush;
use crate::sink::{AsyncSink, BatchError, Dispatch, Driver, SinkConfig};
use crate::sync::{Arc, Mutex, lock};

/// An event a recorder aggregates.
///
/// Nothing to write for an event type of one kind: `impl MetricEvent for Saved {}`.
pub trait MetricEvent: Send + 'static {
    /// The kind of event, the key under which [`MetricsRecorder::unhandled`] counts events
    /// that no metric handled. Override it for an enum whose variants are kinds of their
    /// own.
    ///
    /// The default is the type's name without its module path, such as `"Saved"` for
    /// `my_app::events::Saved` (generic arguments keep theirs: `"Wrapper<alloc::string::String>"`).
    ///
    /// # Examples
    ///
    /// ```
    /// use mvx::metrics::MetricEvent;
    ///
    /// struct Saved;
    /// impl MetricEvent for Saved {}
    /// assert_eq!(Saved.event_type(), "Saved");
    ///
    /// enum Storage { Saved, Deleted }
    /// impl MetricEvent for Storage {
    ///     fn event_type(&self) -> &str {
    ///         match self {
    ///             Storage::Saved => "saved",
    ///             Storage::Deleted => "deleted",
    ///         }
    ///     }
    /// }
    /// assert_eq!(Storage::Deleted.event_type(), "deleted");
    /// ```
    fn event_type(&self) -> &str {
        short_type_name(std::any::type_name::<Self>())
    }
}

/// `full` (a `std::any::type_name`) without the module path of its outer type.
fn short_type_name(full: &'static str) -> &'static str {
    if full.starts_with(['(', '[', '&', '*']) {
        // A tuple, array, slice, reference or pointer: no one path to shorten.
        return full;
    }
    let outer = full.find('<').unwrap_or(full.len());
    match full[..outer].rfind("::") {
        Some(separator) => &full[separator + 2..],
        None => full,
    }
}

/// Aggregates events of type `E` into a [`Snapshot`].
///
/// The recorder calls a metric from its driver only, one call at a time, with `&mut self`:
/// a metric needs no synchronization. What a panic in it does: see
/// [the module docs](crate::metrics#what-is-lost-and-when).
pub trait Metric<E>: Send + 'static {
    /// The metric's name, unique within a recorder.
    fn name(&self) -> &str;

    /// Takes an event into account; returns whether this metric handled it.
    fn handle_event(&mut self, event: &E) -> bool;

    /// The current aggregated state.
    fn snapshot(&self) -> Snapshot;

    /// What the metric is: unit, description, rate, flags (see [`Metadata`]). Read once,
    /// when the metric is registered in a recorder; a [`Registry`](super::Registry) gives
    /// it as the metadata of the metric's name unless the name is described there. The
    /// default is empty metadata.
    fn metadata(&self) -> Metadata {
        Metadata::default()
    }

    /// Called once when the recorder stops, after the last event; for metrics that hold
    /// resources or publish a final state. The default does nothing.
    ///
    /// # Errors
    ///
    /// Any error (or a panic) is reported in the stop result as `OnStoppedHookFailed`; the
    /// other metrics' hooks still run.
    fn on_stopped(&mut self) -> Result<(), BoxError> {
        Ok(())
    }
}

/// A metric's `on_stopped` hook failed; the cause of `OnStoppedHookFailed` in the stop result.
#[derive(Debug, thiserror::Error)]
#[error("the on_stopped hook of metric {metric:?} failed")]
pub struct MetricHookError {
    /// The metric's name.
    pub metric: String,
    /// The error it returned, or its panic.
    #[source]
    pub cause: Cause,
}

/// Errors of recorders and of the metrics runtime.
#[derive(Clone, Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RecorderError {
    /// An error of the sink the recorder is built on (lifecycle, executor, start hook).
    #[error(transparent)]
    Sink(#[from] SinkError),
    /// A metric with this name is already registered in the recorder.
    #[error("a metric named {name:?} is already registered")]
    DuplicateMetric {
        /// The metric's name.
        name: String,
    },
    /// A metric panicked; it is disabled and no longer receives events.
    #[error("metric {name:?} panicked in {during} and was disabled")]
    MetricPanicked {
        /// The metric's name.
        name: String,
        /// `"handle_event"` or `"snapshot"`.
        during: &'static str,
        /// The panic.
        #[source]
        cause: Cause,
    },
    /// A recorder with this name already exists in the runtime.
    #[error("a recorder named {name:?} already exists")]
    DuplicateRecorder {
        /// The recorder's name.
        name: String,
    },
    /// The runtime could not create its thread.
    #[error("could not create the metrics runtime")]
    Runtime(#[source] Arc<crate::error::CreateError>),
    /// A runtime operation was called from the runtime's own thread, which it would block.
    #[error("called from the metrics runtime's own thread")]
    CalledFromRuntimeThread,
}

impl RecorderError {
    /// The stable reason code of this error.
    pub fn reason(&self) -> MetricsReason {
        match self {
            Self::Sink(error) => error.reason().into(),
            Self::DuplicateMetric { .. } | Self::DuplicateRecorder { .. } => {
                MetricsReason::DuplicateName
            }
            Self::MetricPanicked { .. } => MetricsReason::MetricPanicked,
            Self::Runtime(error) => error.reason().into(),
            Self::CalledFromRuntimeThread => ErrorReason::CalledFromRuntimeThread.into(),
        }
    }
}

/// The metrics of a recorder and what they could not handle.
struct MetricSet<E> {
    metrics: Vec<Slot<E>>,
    unhandled: BTreeMap<String, u64>,
    last_error: Option<RecorderError>,
}

struct Slot<E> {
    metric: Box<dyn Metric<E>>,
    /// The metric's metadata, read when it was registered.
    metadata: Metadata,
    /// Set when the metric panicked; it is then skipped.
    disabled: bool,
}

impl<E: MetricEvent> MetricSet<E> {
    fn handle(&mut self, event: &E) {
        let mut handled = false;
        for slot in self.metrics.iter_mut().filter(|slot| !slot.disabled) {
            match catch_unwind(AssertUnwindSafe(|| slot.metric.handle_event(event))) {
                Ok(true) => handled = true,
                Ok(false) => {}
                Err(payload) => {
                    slot.disabled = true;
                    self.last_error = Some(RecorderError::MetricPanicked {
                        name: slot.metric.name().to_owned(),
                        during: "handle_event",
                        cause: Cause::from_panic(payload),
                    });
                }
            }
        }
        if !handled {
            // Allocates only the first time an event type goes unhandled.
            match self.unhandled.get_mut(event.event_type()) {
                Some(count) => *count += 1,
                None => {
                    self.unhandled.insert(event.event_type().to_owned(), 1);
                }
            }
        }
    }
}

impl<E: 'static> MetricSet<E> {
    fn metadata(&self, into: &mut BTreeMap<String, Metadata>) {
        for slot in self.metrics.iter().filter(|slot| !slot.disabled) {
            into.insert(slot.metric.name().to_owned(), slot.metadata.clone());
        }
    }

    fn snapshots(&mut self, into: &mut Snapshots) {
        for slot in self.metrics.iter_mut().filter(|slot| !slot.disabled) {
            match catch_unwind(AssertUnwindSafe(|| slot.metric.snapshot())) {
                Ok(snapshot) => {
                    into.insert(slot.metric.name().to_owned(), snapshot);
                }
                Err(payload) => {
                    slot.disabled = true;
                    self.last_error = Some(RecorderError::MetricPanicked {
                        name: slot.metric.name().to_owned(),
                        during: "snapshot",
                        cause: Cause::from_panic(payload),
                    });
                }
            }
        }
    }
}

/// The dispatcher of a recorder's sink: applies each event to every metric.
struct Aggregate<E> {
    set: Arc<Mutex<MetricSet<E>>>,
}

impl<E: MetricEvent> Dispatch<E> for Aggregate<E> {
    async fn dispatch(&mut self, event: E) -> Result<(), BoxError> {
        lock(&self.set).handle(&event);
        Ok(())
    }

    async fn dispatch_batch(&mut self, events: &mut Vec<E>) -> Result<(), BatchError> {
        let mut set = lock(&self.set);
        for event in events.drain(..) {
            set.handle(&event);
        }
        Ok(())
    }

    async fn on_stopped(&mut self) -> Result<(), BoxError> {
        let mut set = lock(&self.set);
        let mut first_error: Option<BoxError> = None;
        for slot in set.metrics.iter_mut().filter(|slot| !slot.disabled) {
            let name = slot.metric.name().to_owned();
            let cause = match catch_unwind(AssertUnwindSafe(|| slot.metric.on_stopped())) {
                Ok(Ok(())) => continue,
                Ok(Err(error)) => Cause::from_error(error),
                Err(payload) => Cause::from_panic(payload),
            };
            first_error.get_or_insert(Box::new(MetricHookError {
                metric: name,
                cause,
            }));
        }
        first_error.map_or(Ok(()), Err)
    }
}

/// Aggregates events of type `E` into registered metrics, off the caller's thread.
///
/// A recorder is a sink whose dispatcher is the metrics: the same lifecycle, queue,
/// overflow policy, counters and error reasons as [`AsyncSink`].
/// [`register_event`](Self::register_event) is `AsyncSink::log`: synchronous, thread-safe,
/// no allocation. Metrics are applied on the recorder's driver, under a lock that
/// [`snapshots`](Self::snapshots) also takes.
///
/// Create one with [`MetricsRuntime::create_recorder`](super::MetricsRuntime::create_recorder)
/// (the runtime owns the thread), or run it yourself: [`new`](Self::new) returns the driver
/// to spawn on your executor.
///
/// # Examples
///
/// ```
/// use mvx::metrics::{Metric, MetricEvent, MetricKind, MetricsRecorder, Snapshot};
/// use mvx::sink::SinkConfig;
///
/// struct Saved;
/// impl MetricEvent for Saved {
///     fn event_type(&self) -> &str { "saved" }
/// }
///
/// #[derive(Default)]
/// struct Saves(u64);
/// impl Metric<Saved> for Saves {
///     fn name(&self) -> &str { "saves" }
///     fn handle_event(&mut self, _: &Saved) -> bool { self.0 += 1; true }
///     fn snapshot(&self) -> Snapshot {
///         Snapshot::new("saves", MetricKind::Counter).with("total", self.0)
///     }
/// }
///
/// let (recorder, driver) = MetricsRecorder::new("storage", SinkConfig::default());
/// let driver = std::thread::spawn(move || futures::executor::block_on(driver));
/// futures::executor::block_on(async {
///     assert!(recorder.start().await.success);
///     recorder.register_metric(Saves::default()).unwrap();
///     recorder.register_event(Saved).unwrap();
///     let snapshots = recorder.snapshot_now().await.unwrap();
///     assert_eq!(snapshots["saves"].get("total"), Some(1u64.into()));
///     assert!(recorder.stop().await.success);
/// });
/// driver.join().unwrap();
/// ```
pub struct MetricsRecorder<E> {
    // An immutable name, not a synchronization primitive: std's `Arc` under loom too.
    name: std::sync::Arc<str>,
    sink: AsyncSink<E>,
    set: Arc<Mutex<MetricSet<E>>>,
}

impl<E: MetricEvent> MetricsRecorder<E> {
    /// A `Virgin` recorder named `name` and the driver to spawn on your executor.
    ///
    /// When the queue's ring cannot be allocated, the recorder is in `Failure` with
    /// `SinkError::QueueAllocationFailed`, as [`AsyncSink::new`] describes; its start
    /// returns that error.
    pub fn new(name: impl Into<String>, config: SinkConfig) -> (Self, Driver) {
        let set = new_set();
        let (sink, driver) = AsyncSink::new(Aggregate { set: set.clone() }, config);
        (Self::from_parts(name.into(), sink, set), driver)
    }

    /// A recorder whose driver is spawned with `spawner`; start it.
    ///
    /// # Errors
    ///
    /// `RecorderError::Sink(SinkError::QueueAllocationFailed { .. })` when the queue's ring
    /// cannot be allocated; `RecorderError::Sink(SinkError::EventLoopUnavailable)` when the
    /// spawner refuses the driver (its executor is gone).
    pub fn spawn_on<S: Spawn + ?Sized>(
        name: impl Into<String>,
        config: SinkConfig,
        spawner: &S,
    ) -> Result<Self, RecorderError> {
        let set = new_set();
        let sink = AsyncSink::spawn_on(Aggregate { set: set.clone() }, config, spawner)?;
        Ok(Self::from_parts(name.into(), sink, set))
    }

    /// Builds a recorder on `spawner`'s executor and starts it, without waiting.
    pub(crate) fn build_on<S: Spawn + ?Sized>(
        name: String,
        config: SinkConfig,
        spawner: &S,
    ) -> Result<(Self, WaitHandle), crate::error::CreateError> {
        let set = new_set();
        let (sink, start) = crate::rt::build_on(spawner, Aggregate { set: set.clone() }, config)?;
        Ok((Self::from_parts(name, sink, set), start))
    }

    fn from_parts(name: String, sink: AsyncSink<E>, set: Arc<Mutex<MetricSet<E>>>) -> Self {
        Self {
            name: name.into(),
            sink,
            set,
        }
    }

    /// Records an event: synchronous, thread-safe, no allocation.
    ///
    /// # Errors
    ///
    /// As [`AsyncSink::log`]: the event comes back when the recorder is not accepting, or
    /// under `RaiseError` when its queue is full.
    pub fn register_event(&self, event: E) -> Result<LogOutcome, LogError<E>> {
        self.sink.log(event)
    }
}

fn new_set<E>() -> Arc<Mutex<MetricSet<E>>> {
    Arc::new(Mutex::new(MetricSet {
        metrics: Vec::new(),
        unhandled: BTreeMap::new(),
        last_error: None,
    }))
}

impl<E: 'static> MetricsRecorder<E> {
    /// The recorder's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Adds a metric; events accepted from now on reach it. Its
    /// [`metadata`](Metric::metadata) is read now, on the calling thread.
    ///
    /// # Errors
    ///
    /// [`RecorderError::DuplicateMetric`] when a metric of that name is registered.
    pub fn register_metric(&self, metric: impl Metric<E>) -> Result<(), RecorderError> {
        // User code: called before the lock is taken, so a panic leaves the recorder as it was.
        let metadata = metric.metadata();
        let mut set = lock(&self.set);
        if set
            .metrics
            .iter()
            .any(|slot| slot.metric.name() == metric.name())
        {
            return Err(RecorderError::DuplicateMetric {
                name: metric.name().to_owned(),
            });
        }
        set.metrics.push(Slot {
            metric: Box::new(metric),
            metadata,
            disabled: false,
        });
        Ok(())
    }

    /// Starts the recorder (see [`AsyncSink::start`]).
    pub fn start(&self) -> WaitHandle {
        self.sink.start()
    }

    /// Stops the recorder, applying every accepted event first (see [`AsyncSink::stop`]).
    pub fn stop(&self) -> WaitHandle {
        self.sink.stop()
    }

    /// The lifecycle state.
    pub fn state(&self) -> State {
        self.sink.state()
    }

    /// The queue counters: an event counts as delivered once every metric has seen it.
    pub fn stats(&self) -> QueueStats {
        self.sink.stats()
    }

    /// The current snapshots of every metric, by metric name, taken now from any thread.
    ///
    /// Reflects the events applied so far; events still queued are not in it — use
    /// [`snapshot_now`](Self::snapshot_now) for that.
    pub fn snapshots(&self) -> Snapshots {
        let mut snapshots = Snapshots::new();
        lock(&self.set).snapshots(&mut snapshots);
        snapshots
    }

    /// The snapshots, once every event accepted before this call has been applied.
    ///
    /// A barrier, like [`flush`](Self::flush): the returned [`SnapshotNow`] is a future;
    /// `.await` it, or block on it with `wait()`, `wait_timeout(Duration)` or
    /// `wait_deadline(Instant)`.
    ///
    /// # Errors
    ///
    /// The future resolves to an error when the recorder ended abnormally before applying
    /// those events (see [`AsyncSink::flush`]); a blocking form with a deadline to
    /// `RecorderError::Sink(SinkError::WaitTimedOut)` when the deadline passed first.
    pub fn snapshot_now(&self) -> SnapshotNow<'_, E> {
        SnapshotNow::new(self.sink.flush(), self)
    }

    /// [`snapshot_now`](Self::snapshot_now), blocking the current thread:
    /// `snapshot_now().wait()`.
    ///
    /// # Errors
    ///
    /// As [`snapshot_now`](Self::snapshot_now); `RecorderError::Sink(SinkError::WouldDeadlock)`,
    /// at once, when only the calling thread could run the recorder's driver — from a
    /// metric of this recorder, or of another recorder on the same `MetricsRuntime` (see
    /// [which calls block](crate::sink#which-calls-block)).
    pub fn snapshot_now_blocking(&self) -> Result<Snapshots, RecorderError> {
        self.snapshot_now().wait()
    }

    /// Resolves when every event accepted before the call has been applied to the metrics:
    /// [`AsyncSink::flush`] of the recorder's sink.
    ///
    /// # Errors
    ///
    /// As [`AsyncSink::flush`].
    pub fn flush(&self) -> Flush<'_, E> {
        self.sink.flush()
    }

    /// [`flush`](Self::flush), blocking the current thread: `flush().wait()`.
    ///
    /// # Errors
    ///
    /// As [`AsyncSink::flush_blocking`].
    pub fn flush_blocking(&self) -> Result<(), SinkError> {
        self.flush().wait()
    }

    /// The metadata of every metric that is not disabled, by metric name.
    pub fn metadata(&self) -> BTreeMap<String, Metadata> {
        let mut metadata = BTreeMap::new();
        lock(&self.set).metadata(&mut metadata);
        metadata
    }

    /// How many events of each `event_type` no metric handled.
    pub fn unhandled(&self) -> BTreeMap<String, u64> {
        lock(&self.set).unhandled.clone()
    }

    /// The most recent error: a metric that panicked, or an error of the sink.
    pub fn last_error(&self) -> Option<RecorderError> {
        let metric_error = lock(&self.set).last_error.clone();
        metric_error.or_else(|| self.sink.last_error().map(RecorderError::Sink))
    }

    /// The names of the metrics disabled because they panicked.
    pub fn disabled_metrics(&self) -> Vec<String> {
        lock(&self.set)
            .metrics
            .iter()
            .filter(|slot| slot.disabled)
            .map(|slot| slot.metric.name().to_owned())
            .collect()
    }

    /// The sink the recorder is built on.
    pub fn sink(&self) -> &AsyncSink<E> {
        &self.sink
    }
}

impl<E: Send + 'static> SnapshotSource for MetricsRecorder<E> {
    fn collect(&self, into: &mut Snapshots) {
        lock(&self.set).snapshots(into);
    }

    fn collect_metadata(&self, into: &mut BTreeMap<String, Metadata>) {
        lock(&self.set).metadata(into);
    }
}

impl<E> Clone for MetricsRecorder<E> {
    fn clone(&self) -> Self {
        Self {
            name: self.name.clone(),
            sink: self.sink.clone(),
            set: self.set.clone(),
        }
    }
}

impl<E: 'static> fmt::Debug for MetricsRecorder<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MetricsRecorder")
            .field("name", &self.name)
            .field("state", &self.state())
            .field("stats", &self.stats())
            .finish_non_exhaustive()
    }
}
