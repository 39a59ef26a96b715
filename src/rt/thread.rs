//! A dedicated, named thread running mvx's own small executor.
//!
//! The executor is a `futures` [`LocalPool`] fed by a channel: tasks spawned from any
//! thread are sent to it and run on it. It needs no reactor: timers come from `async-io`,
//! which works under any executor.

use std::fmt;

use futures::executor::LocalPool;
use futures::task::{FutureObj, Spawn, SpawnError};

use super::{RuntimeThread, Terminator, create_sink};
use crate::error::CreateError;
use crate::sink::{AsyncSink, Dispatch, SinkConfig};

/// Creates a sink on a dedicated thread, starts it and waits for the start result.
///
/// The thread is named after the sink's namespace (`mvx-<namespace>`, or `mvx-sink`).
///
/// # Errors
///
/// - [`CreateError::ThreadSpawn`] if the thread cannot be spawned;
/// - [`CreateError::Sink`] with the start error if the sink fails to start (the thread is
///   shut down and joined before this returns), among them
///   [`SinkError::QueueAllocationFailed`](crate::error::SinkError::QueueAllocationFailed)
///   when the queue's ring cannot be allocated (see
///   [`AsyncSink::new`](crate::sink::AsyncSink::new)).
///
/// # Examples
///
/// ```
/// use mvx::sink::{SinkConfig, sinks::MemorySink};
///
/// let (memory, events) = MemorySink::new();
/// let (sink, terminator) = mvx::rt::thread::create(memory, SinkConfig::default())?;
/// sink.log(1u32).unwrap();
/// sink.log(2u32).unwrap();
/// terminator.terminate()?; // flushes, stops, joins
/// assert_eq!(events.take(), vec![1, 2]);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn create<E, D>(
    dispatch: D,
    config: SinkConfig,
) -> Result<(AsyncSink<E>, Terminator), CreateError>
where
    E: Send + 'static,
    D: Dispatch<E>,
{
    let (spawner, runtime) = spawn_executor(config.thread_name("sink"))?;
    create_sink(&spawner, runtime, dispatch, config)
}

/// Spawns an executor thread; returns its spawner and the thread.
pub(crate) fn spawn_executor(name: String) -> Result<(ThreadSpawner, RuntimeThread), CreateError> {
    let (tasks_tx, tasks_rx) = async_channel::unbounded::<FutureObj<'static, ()>>();
    let closer = tasks_tx.clone();
    let runtime = RuntimeThread::spawn(
        name,
        move || {
            let mut pool = LocalPool::new();
            let local = pool.spawner();
            pool.run_until(async move {
                while let Ok(task) = tasks_rx.recv().await {
                    if local.spawn_obj(task).is_err() {
                        break;
                    }
                }
            });
            // Dropping the pool drops the tasks still in it: a live driver cancels its sink.
        },
        move || {
            closer.close();
        },
    )?;
    Ok((ThreadSpawner { tasks: tasks_tx }, runtime))
}

/// Spawns tasks onto an mvx executor thread, from any thread.
#[derive(Clone)]
pub(crate) struct ThreadSpawner {
    tasks: async_channel::Sender<FutureObj<'static, ()>>,
}

impl Spawn for ThreadSpawner {
    fn spawn_obj(&self, future: FutureObj<'static, ()>) -> Result<(), SpawnError> {
        self.tasks
            .try_send(future)
            .map_err(|_| SpawnError::shutdown())
    }

    fn status(&self) -> Result<(), SpawnError> {
        if self.tasks.is_closed() {
            Err(SpawnError::shutdown())
        } else {
            Ok(())
        }
    }
}

impl fmt::Debug for ThreadSpawner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ThreadSpawner")
            .field("closed", &self.tasks.is_closed())
            .finish()
    }
}
