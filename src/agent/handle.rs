//! [`AgentHandle`]: stop an agent, wait for it, spawn its tasks; and how it ended,
//! [`StopOutcome`].

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};

use event_listener::{Event, listener};

use super::AgentError;
use crate::error::{BoxError, Cause};
use crate::sync::lock;

/// How an agent ended: why it stopped, what teardown returned, what went unhandled.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct StopOutcome {
    /// The error the agent stopped with: the one given to the first `stop`, silent or not
    /// (as [`AgentError::Stopped`]), [`AgentError::ReceivedSignal`] from the default
    /// `on_signal`, [`AgentError::TaskFailed`] under `cancel_on_error`, or
    /// [`AgentError::ConnectFailed`] / [`AgentError::Cancelled`]. `None` for a clean stop.
    pub error: Option<AgentError>,
    /// Whether the first stop was silent. As in metricq, `silent` only keeps the stop call
    /// itself ([`AgentHandle::stop_and_wait`]) from returning the error; `run()` and
    /// [`stopped`](AgentHandle::stopped) return it all the same.
    pub silent: bool,
    /// What teardown returned: `Ok`, [`AgentError::TeardownFailed`] or
    /// [`AgentError::TeardownTimedOut`]. `Ok` when teardown did not run (failed connect).
    pub teardown: Result<(), AgentError>,
    /// Unhandled errors of agent tasks, without `cancel_on_error`, in the order they came.
    pub task_errors: Vec<Cause>,
    /// The signals that were caught, in order.
    pub signals: Vec<i32>,
}

impl StopOutcome {
    /// What `run()` returns: the stop error if there is one, else teardown's.
    ///
    /// # Errors
    ///
    /// [`error`](Self::error), else the error of [`teardown`](Self::teardown).
    pub fn result(&self) -> Result<(), AgentError> {
        match &self.error {
            Some(error) => Err(error.clone()),
            None => self.teardown.clone(),
        }
    }
}

/// A task of an agent, as [`AgentHandle::spawn`] keeps it.
pub type AgentTask = Pin<Box<dyn Future<Output = Result<(), BoxError>> + Send + 'static>>;

/// What the first stop asked for.
pub(super) struct StopRequest {
    pub(super) error: Option<AgentError>,
    pub(super) silent: bool,
}

/// What happened to the agent so far.
#[derive(Default)]
pub(super) struct Status {
    stop: Option<StopRequest>,
    task_errors: Vec<Cause>,
    /// The signals caught, in order (the signal thread adds them).
    pub(super) signals: Vec<i32>,
    /// What teardown returned, once it has (before the outcome is set: the agent's tasks
    /// still run, and a task awaiting `stop_and_wait` learns it).
    torn_down: Option<Result<(), AgentError>>,
    outcome: Option<StopOutcome>,
}

/// What an agent's handles and its runner share.
pub(super) struct Shared {
    pub(super) status: Mutex<Status>,
    /// Notified when a stop is requested and when the outcome is set.
    changed: Event,
    tasks: async_channel::Sender<AgentTask>,
    cancel_on_error: bool,
}

impl Shared {
    /// Records the first stop; `true` if this was it.
    pub(super) fn request_stop(&self, request: StopRequest) -> bool {
        let mut status = lock(&self.status);
        if status.stop.is_some() || status.outcome.is_some() {
            return false;
        }
        status.stop = Some(request);
        drop(status);
        self.changed.notify(usize::MAX);
        true
    }

    fn stop_requested(&self) -> bool {
        lock(&self.status).stop.is_some()
    }

    /// An agent task ended with an error or a panic.
    pub(super) fn unhandled(&self, cause: Cause) {
        if self.cancel_on_error {
            let request = StopRequest {
                error: Some(AgentError::TaskFailed(cause.clone())),
                silent: false,
            };
            if self.request_stop(request) {
                return;
            }
        }
        lock(&self.status).task_errors.push(cause);
    }

    /// Teardown has returned `result`; wakes `stop_and_wait`.
    pub(super) fn torn_down(&self, result: &Result<(), AgentError>) {
        lock(&self.status).torn_down = Some(result.clone());
        self.changed.notify(usize::MAX);
    }

    /// The first stop's error and teardown's result, once teardown has returned or the
    /// outcome is set.
    fn stop_result(&self) -> Option<(Option<AgentError>, Result<(), AgentError>)> {
        let status = lock(&self.status);
        if let Some(outcome) = &status.outcome {
            return Some((outcome.error.clone(), outcome.teardown.clone()));
        }
        let torn_down = status.torn_down.clone()?;
        let error = status.stop.as_ref().and_then(|stop| stop.error.clone());
        Some((error, torn_down))
    }

    /// Sets the outcome (once): `error` first, else the first stop's.
    pub(super) fn finish(&self, error: Option<AgentError>, teardown: Result<(), AgentError>) {
        let mut status = lock(&self.status);
        if status.outcome.is_some() {
            return;
        }
        let request = status.stop.take();
        let (stop_error, silent) = match request {
            Some(request) => (request.error, request.silent),
            None => (None, false),
        };
        status.outcome = Some(StopOutcome {
            error: error.or(stop_error),
            silent,
            teardown,
            task_errors: std::mem::take(&mut status.task_errors),
            signals: std::mem::take(&mut status.signals),
        });
        drop(status);
        self.changed.notify(usize::MAX);
    }
}

/// A cheap, cloneable, thread-safe handle on a running agent.
#[derive(Clone)]
pub struct AgentHandle {
    pub(super) shared: Arc<Shared>,
}

impl fmt::Debug for AgentHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AgentHandle")
            .field("stop_requested", &self.stop_requested())
            .field("stopped", &self.is_stopped())
            .finish_non_exhaustive()
    }
}

impl AgentHandle {
    /// The handle of a new agent whose tasks go to `tasks`.
    pub(super) fn new(tasks: async_channel::Sender<AgentTask>, cancel_on_error: bool) -> Self {
        Self {
            shared: Arc::new(Shared {
                status: Mutex::new(Status::default()),
                changed: Event::new(),
                tasks,
                cancel_on_error,
            }),
        }
    }

    /// Stops the agent: the first call wins and returns `true`; later calls are ignored
    /// and return `false`. `error`, silent or not, is what `run()` returns and what
    /// [`stopped`](Self::stopped) yields (as [`AgentError::Stopped`]); `silent` matters to
    /// [`stop_and_wait`](Self::stop_and_wait) only, as it does to metricq's `stop`.
    ///
    /// Does not wait: the runner runs teardown; await [`stopped`](Self::stopped) for the end.
    pub fn stop(&self, error: Option<BoxError>, silent: bool) -> bool {
        let request = StopRequest {
            error: error.map(|error| AgentError::Stopped(Cause::from_error(error))),
            silent,
        };
        self.shared.request_stop(request)
    }

    /// metricq's `await agent.stop(exception, silent)`: stops the agent as
    /// [`stop`](Self::stop) does and, if this was the first stop, waits until teardown has
    /// finished — also from one of the agent's own tasks, which run until teardown has
    /// returned and are polled once more after it. A later call is ignored and returns `Ok(())` at once (await
    /// [`stopped`](Self::stopped) to wait for the end from anywhere).
    ///
    /// # Errors
    ///
    /// Unless `silent`: what [`StopOutcome::result`] says — `error` as
    /// [`AgentError::Stopped`], else teardown's error (metricq raises `AgentStopped` from
    /// the same two). A silent call returns `Ok(())`; `run()` still returns the error.
    pub async fn stop_and_wait(
        &self,
        error: Option<BoxError>,
        silent: bool,
    ) -> Result<(), AgentError> {
        if !self.stop(error, silent) {
            return Ok(());
        }
        let (error, teardown) = loop {
            if let Some(result) = self.shared.stop_result() {
                break result;
            }
            listener!(self.shared.changed => changed);
            if let Some(result) = self.shared.stop_result() {
                break result;
            }
            changed.await;
        };
        match (silent, error) {
            (true, _) => Ok(()),
            (false, Some(error)) => Err(error),
            (false, None) => teardown,
        }
    }

    /// Stops the agent as metricq's default `on_signal` does, silently: cleanly on SIGINT,
    /// with [`AgentError::ReceivedSignal`] on any other signal (so `run()` returns that
    /// error after a SIGTERM). [`Agent::on_signal`](super::Agent::on_signal)'s default
    /// calls it. Returns `true` if this was the first stop.
    pub fn stop_on_signal(&self, signal: i32) -> bool {
        let error = (signal != super::SIGINT).then_some(AgentError::ReceivedSignal { signal });
        self.shared.request_stop(StopRequest {
            error,
            silent: true,
        })
    }

    /// Whether a stop was requested (teardown may still be running).
    pub fn stop_requested(&self) -> bool {
        self.shared.stop_requested() || self.is_stopped()
    }

    /// Whether the agent has stopped: teardown has finished or was cut off.
    pub fn is_stopped(&self) -> bool {
        lock(&self.shared.status).outcome.is_some()
    }

    /// How the agent ended, once it has.
    pub fn outcome(&self) -> Option<StopOutcome> {
        lock(&self.shared.status).outcome.clone()
    }

    /// Resolves once the agent has stopped (after teardown), with what `run()` returns.
    /// Any number of tasks and threads may wait.
    ///
    /// # Errors
    ///
    /// See [`StopOutcome::result`].
    pub async fn stopped(&self) -> Result<(), AgentError> {
        self.stopped_outcome().await.result()
    }

    /// Resolves once the agent has stopped, with the whole [`StopOutcome`].
    pub async fn stopped_outcome(&self) -> StopOutcome {
        loop {
            if let Some(outcome) = self.outcome() {
                return outcome;
            }
            listener!(self.shared.changed => changed);
            if let Some(outcome) = self.outcome() {
                return outcome;
            }
            changed.await;
        }
    }

    /// Runs `task` with the agent, concurrently with everything else it does, until it
    /// completes or the agent has stopped (tasks still running after teardown are dropped).
    /// An `Err` or a panic is an unhandled error (see [`AgentConfig::cancel_on_error`](super::AgentConfig::cancel_on_error)).
    ///
    /// Returns `false` (and drops `task`) if the agent has already stopped.
    pub fn spawn(&self, task: impl Future<Output = Result<(), BoxError>> + Send + 'static) -> bool {
        self.shared.tasks.try_send(Box::pin(task)).is_ok()
    }

    /// Resolves once a stop has been requested (or the agent has stopped): what a
    /// long `connect` races against, so that a stop during connect takes effect at once.
    pub async fn stop_requested_wait(&self) {
        loop {
            if self.stop_requested() {
                return;
            }
            listener!(self.shared.changed => changed);
            if self.stop_requested() {
                return;
            }
            changed.await;
        }
    }
}
