//! [`Runner`]: owns an agent and runs it — connect, wait for a stop, teardown under a
//! timeout — with its tasks.

use std::fmt;
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::pin::pin;
use std::sync::Arc;
use std::task::Poll;
use std::time::Duration;

use futures::FutureExt;
use futures::stream::{FuturesUnordered, Stream, StreamExt};

use super::handle::{AgentTask, Shared};
use super::{Agent, AgentConfig, AgentError, AgentHandle, signals};
use crate::error::Cause;

/// Owns an [`Agent`] and runs it: see the [module docs](super).
pub struct Runner<A> {
    agent: Arc<A>,
    config: AgentConfig,
    handle: AgentHandle,
    tasks: async_channel::Receiver<AgentTask>,
}

impl<A> fmt::Debug for Runner<A> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Runner")
            .field("config", &self.config)
            .field("handle", &self.handle)
            .finish_non_exhaustive()
    }
}

impl<A: Agent> Runner<A> {
    /// A runner for `agent`; nothing runs until [`run`](Self::run).
    pub fn new(agent: A, config: AgentConfig) -> Self {
        let (tasks_tx, tasks_rx) = async_channel::unbounded();
        let handle = AgentHandle::new(tasks_tx, config.cancel_on_error);
        Self {
            agent: Arc::new(agent),
            config,
            handle,
            tasks: tasks_rx,
        }
    }

    /// A handle to stop the agent or wait for it from other threads and tasks.
    pub fn handle(&self) -> AgentHandle {
        self.handle.clone()
    }

    /// The agent.
    pub fn agent(&self) -> &Arc<A> {
        &self.agent
    }

    /// Connects, then blocks until the agent is stopped and torn down, catching
    /// [`AgentConfig::catch_signals`] meanwhile.
    ///
    /// # Errors
    ///
    /// [`AgentError::ConnectFailed`] if `connect` fails; otherwise what
    /// [`StopOutcome::result`](super::StopOutcome::result) says: the stop error, the unhandled task error under
    /// `cancel_on_error`, or teardown's error. Signal set-up errors:
    /// [`AgentError::SignalSetup`], [`AgentError::SignalsUnavailable`].
    pub fn run(self) -> Result<(), AgentError> {
        let signals = signals::Catcher::start(
            &self.config.catch_signals,
            self.agent.clone(),
            self.handle.clone(),
        )?;
        // async-io's `block_on` also drives its reactor on this thread while it waits, and
        // nests inside another executor's task, where `futures`' would panic.
        let result = async_io::block_on(self.run_async());
        signals.finish();
        result
    }

    /// [`run`](Self::run) as a future, for any executor, without catching signals: connect,
    /// wait for a stop, teardown. Dropping it before it completes ends the agent with
    /// [`AgentError::Cancelled`] (teardown does not run).
    ///
    /// # Errors
    ///
    /// As [`run`](Self::run).
    pub async fn run_async(self) -> Result<(), AgentError> {
        let Self {
            agent,
            config,
            handle,
            tasks,
        } = self;
        let cancelled = CancelOnDrop(Some(handle.shared.clone()));
        let shared = handle.shared.clone();
        let lifetime = async {
            // A stop requested while `connect` runs cancels it, as metricq's does.
            let connect = AssertUnwindSafe(agent.connect(&handle)).catch_unwind();
            let stop = handle.stop_requested_wait();
            let connected = match futures::future::select(pin!(connect), pin!(stop)).await {
                futures::future::Either::Left((connected, _)) => Some(connected),
                futures::future::Either::Right(((), _)) => None,
            };
            let connect_error = match connected {
                Some(Ok(Ok(()))) | None => None,
                Some(Ok(Err(error))) => Some(Cause::from_error(error)),
                Some(Err(payload)) => Some(Cause::from_panic(payload)),
            };
            if let Some(cause) = connect_error {
                return (Some(AgentError::ConnectFailed(cause)), Ok(()));
            }
            handle.stop_requested_wait().await;
            let torn_down = teardown(&*agent, config.close_timeout).await;
            shared.torn_down(&torn_down);
            (None, torn_down)
        };
        let (error, teardown) = with_tasks(lifetime, &tasks, &shared).await;
        tasks.close();
        shared.finish(error, teardown);
        drop(cancelled);
        handle.outcome().expect("the outcome was just set").result()
    }
}

/// Ends the agent with `Cancelled` if `run_async` is dropped before it finished.
struct CancelOnDrop(Option<Arc<Shared>>);

impl Drop for CancelOnDrop {
    fn drop(&mut self) {
        if let Some(shared) = self.0.take() {
            shared.finish(Some(AgentError::Cancelled), Ok(()));
        }
    }
}

/// Polls `main` and every task spawned meanwhile, until `main` completes; then the tasks
/// once more, so that those `main`'s end woke (a `stop_and_wait` waiting for teardown)
/// finish, and their errors are counted.
async fn with_tasks<T>(
    main: impl Future<Output = T>,
    tasks: &async_channel::Receiver<AgentTask>,
    shared: &Shared,
) -> T {
    let mut main = pin!(main);
    let mut incoming = pin!(tasks.clone());
    let mut running = FuturesUnordered::new();
    futures::future::poll_fn(|cx| {
        loop {
            let mut progressed = false;
            while let Poll::Ready(Some(task)) = incoming.as_mut().poll_next(cx) {
                running.push(AssertUnwindSafe(task).catch_unwind());
                progressed = true;
            }
            while let Poll::Ready(Some(ended)) = running.poll_next_unpin(cx) {
                progressed = true;
                record(shared, ended);
            }
            if let Poll::Ready(output) = main.as_mut().poll(cx) {
                while let Poll::Ready(Some(ended)) = running.poll_next_unpin(cx) {
                    record(shared, ended);
                }
                return Poll::Ready(output);
            }
            if !progressed {
                return Poll::Pending;
            }
        }
    })
    .await
}

/// How an agent task ended: an error or a panic is an unhandled error.
fn record(shared: &Shared, ended: std::thread::Result<Result<(), crate::error::BoxError>>) {
    match ended {
        Ok(Ok(())) => {}
        Ok(Err(error)) => shared.unhandled(Cause::from_error(error)),
        Err(payload) => shared.unhandled(Cause::from_panic(payload)),
    }
}

/// Runs `teardown` under `timeout`, catching a panic.
async fn teardown<A: Agent>(agent: &A, timeout: Option<Duration>) -> Result<(), AgentError> {
    let work = AssertUnwindSafe(agent.teardown()).catch_unwind();
    let outcome = match timeout {
        None => work.await,
        Some(timeout) => {
            let timer = async_io::Timer::after(timeout);
            match futures::future::select(pin!(work), timer).await {
                futures::future::Either::Left((outcome, _)) => outcome,
                futures::future::Either::Right(_) => {
                    return Err(AgentError::TeardownTimedOut { timeout });
                }
            }
        }
    };
    match outcome {
        Ok(Ok(())) => Ok(()),
        Ok(Err(error)) => Err(AgentError::TeardownFailed(Cause::from_error(error))),
        Err(payload) => Err(AgentError::TeardownFailed(Cause::from_panic(payload))),
    }
}
