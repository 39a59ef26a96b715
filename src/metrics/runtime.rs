//! `MetricsRuntime`: one thread that owns recorders.

use std::any::Any;
use std::collections::BTreeMap;
use std::fmt;
use std::sync::OnceLock;

use futures::task::Spawn;

use super::{MetricEvent, MetricsRecorder, RecorderError};
use crate::error::{SinkError, TerminateError};
use crate::rt::RuntimeThread;
use crate::sink::SinkConfig;
use crate::sync::{Arc, Mutex, lock};

/// Owns one executor thread and the recorders that run on it.
///
/// [`create_recorder`](Self::create_recorder) builds a recorder on the runtime's thread,
/// starts it, waits for the start result and registers it under its name.
/// [`shutdown`](Self::shutdown) stops every recorder (each applies the events it accepted),
/// reports every stop error, and joins the thread; it is idempotent and runs on `Drop`.
///
/// `Clone + Send + Sync`: clones share the runtime, which shuts down when the last clone is
/// dropped (or when `shutdown` is called).
///
/// # Examples
///
/// ```
/// use mvx::metrics::{Metric, MetricEvent, MetricKind, MetricsRuntime, Snapshot};
///
/// struct Request;
/// impl MetricEvent for Request {
///     fn event_type(&self) -> &str { "request" }
/// }
///
/// #[derive(Default)]
/// struct Requests(u64);
/// impl Metric<Request> for Requests {
///     fn name(&self) -> &str { "requests" }
///     fn handle_event(&mut self, _: &Request) -> bool { self.0 += 1; true }
///     fn snapshot(&self) -> Snapshot {
///         Snapshot::new("requests", MetricKind::Counter).with("total", self.0)
///     }
/// }
///
/// let runtime = MetricsRuntime::new()?;
/// let recorder = runtime.create_recorder::<Request>("http")?;
/// recorder.register_metric(Requests::default())?;
/// recorder.register_event(Request).unwrap();
/// runtime.shutdown()?; // stops every recorder after it applied its events
/// assert_eq!(recorder.snapshots()["requests"].get("total"), Some(1u64.into()));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone)]
pub struct MetricsRuntime {
    inner: Arc<RuntimeInner>,
}

struct RuntimeInner {
    spawner: Box<dyn Spawn + Send + Sync>,
    thread: RuntimeThread,
    recorders: Mutex<BTreeMap<String, Entry>>,
    outcome: OnceLock<Result<(), ShutdownError>>,
}

struct Entry {
    recorder: Box<dyn Any + Send + Sync>,
    stop: Box<dyn Fn() -> Result<(), SinkError> + Send + Sync>,
}

/// What went wrong while a [`MetricsRuntime`] shut down: every recorder's stop error, and
/// the runtime thread's.
#[derive(Clone, Debug, thiserror::Error)]
#[error("the metrics runtime did not shut down cleanly: {} recorder(s) failed to stop{}", .recorders.len(), if .thread.is_some() { ", and its thread failed" } else { "" })]
pub struct ShutdownError {
    /// Each recorder that did not stop cleanly, by name, with its error.
    pub recorders: Vec<(String, SinkError)>,
    /// The runtime thread's error, if it panicked; or `CalledFromRuntimeThread`.
    pub thread: Option<TerminateError>,
}

impl MetricsRuntime {
    /// Starts a runtime on a dedicated thread named `mvx-metrics`, with mvx's own executor.
    ///
    /// # Errors
    ///
    /// [`RecorderError::Runtime`] if the thread cannot be spawned.
    #[cfg(feature = "thread")]
    pub fn new() -> Result<Self, RecorderError> {
        let (spawner, thread) = crate::rt::thread::spawn_executor("mvx-metrics".into())
            .map_err(|error| RecorderError::Runtime(Arc::new(error)))?;
        Ok(Self::from_parts(Box::new(spawner), thread))
    }

    /// Starts a runtime on a dedicated thread named `mvx-metrics` running a smol executor.
    ///
    /// # Errors
    ///
    /// [`RecorderError::Runtime`] if the thread cannot be spawned.
    #[cfg(feature = "smol")]
    pub fn new_smol() -> Result<Self, RecorderError> {
        let (spawner, thread) = crate::rt::smol::spawn_executor("mvx-metrics".into())
            .map_err(|error| RecorderError::Runtime(Arc::new(error)))?;
        Ok(Self::from_parts(Box::new(spawner), thread))
    }

    #[cfg(any(feature = "smol", feature = "thread"))]
    fn from_parts(spawner: Box<dyn Spawn + Send + Sync>, thread: RuntimeThread) -> Self {
        Self {
            inner: Arc::new(RuntimeInner {
                spawner,
                thread,
                recorders: Mutex::new(BTreeMap::new()),
                outcome: OnceLock::new(),
            }),
        }
    }

    /// Creates a recorder named `name` with the default [`SinkConfig`], starts it and
    /// registers it.
    ///
    /// # Errors
    ///
    /// See [`create_recorder_with`](Self::create_recorder_with).
    pub fn create_recorder<E: MetricEvent>(
        &self,
        name: impl Into<String>,
    ) -> Result<MetricsRecorder<E>, RecorderError> {
        self.create_recorder_with(name, SinkConfig::default())
    }

    /// Creates a recorder named `name` on the runtime's thread, starts it, waits for the
    /// start result and registers it.
    ///
    /// # Errors
    ///
    /// - [`RecorderError::DuplicateRecorder`] when the name is taken (nothing is created);
    /// - `RecorderError::Sink(SinkError::EventLoopUnavailable)` after a shutdown;
    /// - [`RecorderError::CalledFromRuntimeThread`] on the runtime's own thread (it would
    ///   wait for itself);
    /// - `RecorderError::Sink(SinkError::QueueAllocationFailed { .. })` when the queue's
    ///   ring cannot be allocated (a `queue_capacity` above
    ///   [`MAX_QUEUE_CAPACITY`](crate::queue::MAX_QUEUE_CAPACITY), or memory the allocator
    ///   refused); nothing is registered;
    /// - the start error otherwise.
    pub fn create_recorder_with<E: MetricEvent>(
        &self,
        name: impl Into<String>,
        config: SinkConfig,
    ) -> Result<MetricsRecorder<E>, RecorderError> {
        let name = name.into();
        if self.inner.thread.is_current() {
            return Err(RecorderError::CalledFromRuntimeThread);
        }
        // Held across creation: two creations of one name cannot both succeed.
        let mut recorders = lock(&self.inner.recorders);
        if recorders.contains_key(&name) {
            return Err(RecorderError::DuplicateRecorder { name });
        }
        let (recorder, start) =
            MetricsRecorder::<E>::build_on(name.clone(), config, &*self.inner.spawner).map_err(
                |error| match error {
                    crate::error::CreateError::Sink(error) => RecorderError::Sink(error),
                    other => RecorderError::Runtime(Arc::new(other)),
                },
            )?;
        start.wait().into_result()?;
        let stopper = recorder.sink().clone();
        recorders.insert(
            name,
            Entry {
                recorder: Box::new(recorder.clone()),
                stop: Box::new(move || stopper.stop_and_wait()),
            },
        );
        Ok(recorder)
    }

    /// The recorder named `name`, if there is one with events of type `E`.
    pub fn recorder<E: MetricEvent>(&self, name: &str) -> Option<MetricsRecorder<E>> {
        lock(&self.inner.recorders)
            .get(name)
            .and_then(|entry| entry.recorder.downcast_ref::<MetricsRecorder<E>>())
            .cloned()
    }

    /// The names of the registered recorders, in name order.
    pub fn recorders(&self) -> Vec<String> {
        lock(&self.inner.recorders).keys().cloned().collect()
    }

    /// Stops every recorder (each applies the events it accepted), then shuts the executor
    /// down and joins the thread.
    ///
    /// The first call does the work; later calls return the same outcome at once.
    ///
    /// # Errors
    ///
    /// A [`ShutdownError`] listing every recorder that did not stop cleanly and the thread's
    /// error; every recorder is stopped regardless. Called on the runtime's own thread, an
    /// error with `thread: Some(CalledFromRuntimeThread)` and nothing done.
    pub fn shutdown(&self) -> Result<(), ShutdownError> {
        self.inner.shutdown()
    }

    /// Whether the runtime has shut down.
    pub fn is_shut_down(&self) -> bool {
        self.inner.outcome.get().is_some()
    }
}

impl RuntimeInner {
    fn shutdown(&self) -> Result<(), ShutdownError> {
        if let Some(outcome) = self.outcome.get() {
            return outcome.clone();
        }
        if self.thread.is_current() {
            return Err(ShutdownError {
                recorders: Vec::new(),
                thread: Some(TerminateError::CalledFromRuntimeThread),
            });
        }
        self.outcome
            .get_or_init(|| {
                let recorders = std::mem::take(&mut *lock(&self.recorders));
                let failures: Vec<_> = recorders
                    .into_iter()
                    .filter_map(|(name, entry)| (entry.stop)().err().map(|error| (name, error)))
                    .collect();
                let thread = self.thread.shutdown_and_join().err();
                if failures.is_empty() && thread.is_none() {
                    Ok(())
                } else {
                    Err(ShutdownError {
                        recorders: failures,
                        thread,
                    })
                }
            })
            .clone()
    }
}

impl Drop for RuntimeInner {
    fn drop(&mut self) {
        if self.outcome.get().is_some() {
            return;
        }
        if self.thread.is_current() {
            self.thread.shutdown();
        } else {
            // Nobody is left to read the outcome; each recorder keeps its own last error.
            let _ = self.shutdown();
        }
    }
}

impl fmt::Debug for MetricsRuntime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MetricsRuntime")
            .field("recorders", &self.recorders())
            .field("shut_down", &self.is_shut_down())
            .finish()
    }
}
