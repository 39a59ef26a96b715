//! Run components on smol: on your executor, or on one on a dedicated thread.

use std::sync::Arc;

use futures::task::{FutureObj, Spawn, SpawnError};

use super::{RuntimeThread, Terminator, create_sink};
use crate::error::CreateError;
use crate::sink::{AsyncSink, Dispatch, SinkConfig};

/// Creates a sink whose driver runs on `executor`; the sink is `Virgin`: start it.
///
/// The driver runs as long as the executor runs it; if the executor is dropped first, the
/// sink is cancelled.
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
    let runtime = RuntimeThread::spawn(
        name,
        move || {
            smol::block_on(runner.run(async move {
                let _ = shutdown_rx.recv().await;
            }));
        },
        move || {
            closer.close();
        },
    )?;
    Ok((
        SmolSpawner {
            executor,
            shutdown: shutdown_tx,
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
}

impl Spawn for SmolSpawner {
    fn spawn_obj(&self, future: FutureObj<'static, ()>) -> Result<(), SpawnError> {
        self.status()?;
        self.executor.spawn(future).detach();
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
