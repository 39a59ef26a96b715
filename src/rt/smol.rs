//! Run components on smol: on your executor, or on one on a dedicated thread.
//!
//! A panic in a task of the dedicated thread's executor (a driver whose dispatcher's `Drop`
//! panics, for one) does not end the executor — smol catches it, and a detached task's
//! panic would otherwise be lost. It is kept, the other tasks run on, and once the executor
//! is shut down the thread ends with that panic, so that the
//! [`Terminator`] (or [`MetricsRuntime`](crate::metrics::MetricsRuntime))
//! reports it as [`TerminateError::RuntimePanicked`](crate::error::TerminateError::RuntimePanicked), as the
//! [`thread`](super::thread) adapter does.

use std::any::Any;
use std::panic::AssertUnwindSafe;
use std::sync::{Arc, Mutex, PoisonError};

use futures::FutureExt;
use futures::task::{FutureObj, Spawn, SpawnError};

use super::{RuntimeThread, Terminator, create_sink};
use crate::error::CreateError;
use crate::sink::{AsyncSink, Dispatch, SinkConfig};

/// Creates a sink whose driver runs on `executor`; the sink is `Virgin`: start it.
///
/// The driver runs as long as the executor runs it; if the executor is dropped first, the
/// sink is cancelled. A sink whose queue's ring cannot be allocated comes back in
/// `Failure`, as [`AsyncSink::new`] describes.
///
/// # Examples
///
/// ```
/// use mvx::sink::{SinkConfig, sinks::MemorySink};
///
/// let executor = smol::Executor::new();
/// let (memory, events) = MemorySink::new();
/// let sink = mvx::rt::smol::spawn(&executor, memory, SinkConfig::default());
/// smol::block_on(executor.run(async {
///     assert!(sink.start().await.success);
///     sink.log("event").unwrap();
///     assert!(sink.stop().await.success);
/// }));
/// assert_eq!(events.take(), vec!["event"]);
/// ```
pub fn spawn<E, D>(executor: &smol::Executor<'_>, dispatch: D, config: SinkConfig) -> AsyncSink<E>
where
    E: Send + 'static,
    D: Dispatch<E>,
{
    let (sink, driver) = AsyncSink::new(dispatch, config);
    executor.spawn(driver).detach();
    sink
}

/// Creates a sink on a smol executor running on a dedicated thread, starts it and waits
/// for the start result.
///
/// # Errors
///
/// As [`thread::create`](super::thread::create).
pub fn create<E, D>(
    dispatch: D,
    config: SinkConfig,
) -> Result<(AsyncSink<E>, Terminator), CreateError>
where
    E: Send + 'static,
    D: Dispatch<E>,
{
    let (spawner, runtime) = spawn_executor(config.thread_name("smol"))?;
    create_sink(&spawner, runtime, dispatch, config)
}

/// Spawns a thread running a smol executor; returns its spawner and the thread.
pub(crate) fn spawn_executor(name: String) -> Result<(SmolSpawner, RuntimeThread), CreateError> {
    let executor = Arc::new(smol::Executor::new());
    let (shutdown_tx, shutdown_rx) = async_channel::bounded::<()>(1);
    let runner = executor.clone();
    let closer = shutdown_tx.clone();
    let panicked = Arc::new(FirstPanic::default());
    let thread_panicked = panicked.clone();
    let runtime = RuntimeThread::spawn(
        name,
        move || {
            smol::block_on(runner.run(async move {
                let _ = shutdown_rx.recv().await;
            }));
            // The thread ends as the first task that panicked did: its join reports it.
            if let Some(payload) = thread_panicked.take() {
                std::panic::resume_unwind(payload);
            }
        },
        move || {
            closer.close();
        },
    )?;
    Ok((
        SmolSpawner {
            executor,
            shutdown: shutdown_tx,
            panicked,
        },
        runtime,
    ))
}

/// Spawns detached tasks on the smol executor of an mvx runtime thread; refuses once the
/// runtime is shut down.
#[derive(Clone)]
pub(crate) struct SmolSpawner {
    executor: Arc<smol::Executor<'static>>,
    shutdown: async_channel::Sender<()>,
    panicked: Arc<FirstPanic>,
}

impl Spawn for SmolSpawner {
    fn spawn_obj(&self, future: FutureObj<'static, ()>) -> Result<(), SpawnError> {
        self.status()?;
        let panicked = self.panicked.clone();
        // The task is detached: a panic in it would go nowhere. Keep it for the thread.
        let task = AssertUnwindSafe(future).catch_unwind().map(move |ended| {
            if let Err(payload) = ended {
                panicked.keep(payload);
            }
        });
        self.executor.spawn(task).detach();
        Ok(())
    }

    fn status(&self) -> Result<(), SpawnError> {
        if self.shutdown.is_closed() {
            Err(SpawnError::shutdown())
        } else {
            Ok(())
        }
    }
}

impl std::fmt::Debug for SmolSpawner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SmolSpawner")
            .field("closed", &self.shutdown.is_closed())
            .finish()
    }
}

/// The payload of the first task that panicked on an mvx smol thread.
#[derive(Default)]
struct FirstPanic {
    payload: Mutex<Option<Box<dyn Any + Send>>>,
}

impl FirstPanic {
    /// Keeps `payload` unless an earlier panic is kept already.
    fn keep(&self, payload: Box<dyn Any + Send>) {
        let mut kept = self.payload.lock().unwrap_or_else(PoisonError::into_inner);
        if kept.is_none() {
            *kept = Some(payload);
        }
    }

    fn take(&self) -> Option<Box<dyn Any + Send>> {
        self.payload
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take()
    }
}
