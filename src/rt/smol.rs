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
    let executor = Arc::new(smol::Executor::new());
    let (shutdown_tx, shutdown_rx) = async_channel::bounded::<()>(1);
    let runner = executor.clone();
    let runtime = RuntimeThread::spawn(
        config.thread_name("smol"),
        move || {
            smol::block_on(runner.run(async move {
                let _ = shutdown_rx.recv().await;
            }));
        },
        move || {
            shutdown_tx.close();
        },
    )?;
    create_sink(&SmolSpawner(executor), runtime, dispatch, config)
}

/// Spawns detached tasks on a smol executor.
struct SmolSpawner(Arc<smol::Executor<'static>>);

impl Spawn for SmolSpawner {
    fn spawn_obj(&self, future: FutureObj<'static, ()>) -> Result<(), SpawnError> {
        self.0.spawn(future).detach();
        Ok(())
    }
}
