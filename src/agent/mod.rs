//! Agent lifecycle for long-running clients: run until stopped, stop once, report teardown.
//!
//! A user type implements [`Agent`]: [`connect`](Agent::connect) sets it up (opens
//! connections, starts recorders and sinks, spawns its tasks), [`teardown`](Agent::teardown)
//! undoes that, and [`on_signal`](Agent::on_signal) decides what a caught signal does (by
//! default: stop). A [`Runner`] owns the agent and supplies the rest:
//!
//! - [`Runner::run`] blocks the calling thread: it connects, then waits until the agent is
//!   stopped; SIGINT and SIGTERM (the set is [`AgentConfig::catch_signals`]) call
//!   `on_signal`. A connect failure returns [`AgentError::ConnectFailed`] with the cause.
//!   [`Runner::run_async`] is the same without signals, as a future for any executor.
//! - [`AgentHandle::stop`]`(error, silent)`: the first call wins, later calls are ignored.
//!   The error, unless silent, is what `run()` returns and what
//!   [`stopped().await`](AgentHandle::stopped) yields, to any number of waiters.
//! - The first stop runs `teardown` under [`AgentConfig::close_timeout`]. Its error, or
//!   [`AgentError::TeardownTimedOut`] for a teardown cut off at the timeout, is reported in
//!   the [`StopOutcome`] and by `run()`; never swallowed.
//! - Tasks spawned with [`AgentHandle::spawn`] run with the agent. A task that returns an
//!   error or panics is an *unhandled error*: with [`AgentConfig::cancel_on_error`] it stops
//!   the agent and is what `run()` returns ([`AgentError::TaskFailed`]); without it, it is
//!   kept in [`StopOutcome::task_errors`].
//!
//! ```
//! use mvx::BoxError;
//! use mvx::agent::{Agent, AgentConfig, AgentHandle, Runner};
//!
//! struct Poller;
//!
//! impl Agent for Poller {
//!     async fn connect(&self, agent: &AgentHandle) -> Result<(), BoxError> {
//!         // Open connections here; spawn the agent's own tasks.
//!         let stopper = agent.clone();
//!         agent.spawn(async move {
//!             // ... work until done, then:
//!             stopper.stop(None, false);
//!             Ok(())
//!         });
//!         Ok(())
//!     }
//! }
//!
//! let runner = Runner::new(Poller, AgentConfig::default().catch_signals([]));
//! runner.run()?; // connects, runs the task, which stops the agent; teardown; returns
//! # Ok::<(), mvx::agent::AgentError>(())
//! ```
//!
//! # Listing metrics
//!
//! An agent answers *which metrics do you have* through
//! [`Registry::get_metrics`](crate::metrics::Registry::get_metrics) with a [`Selector`]:
//! a regular expression or explicit names, `prefix`, `infix`, the `hidden` and `historic`
//! flags of the metrics' [`Metadata`](crate::metrics::Metadata), a `limit`, with or without
//! the metadata. The exposition server (feature `http`) serves the same answer as JSON at
//! `/api/metrics`. See [`selector`] for the exact semantics.
//!
//! # Choices
//!
//! - **Where the agent runs.** `run()` polls the agent's future — connect, the spawned tasks,
//!   the wait, teardown — on the calling thread, with `async_io::block_on`; timers and I/O
//!   come from `async-io`, so the agent's code may use them as under any executor. Signals
//!   are received on a thread of their own (`mvx-agent-signals`), which calls `on_signal`;
//!   it is joined before `run()` returns.
//! - **`stop` is synchronous.** It records the first request and wakes the runner, which
//!   runs teardown; [`stopped`](AgentHandle::stopped) waits for the end. So `stop` can be
//!   called from a signal handler's thread, a task, `connect`, or any other thread.
//! - **A failed connect does not run teardown**: `connect` undoes what it did before it
//!   failed. A stop requested during `connect` takes effect once it returns.
//! - **Silent stops** keep their error in [`StopOutcome::silenced`] instead of dropping it.
//! - **A panic** in `connect`, `teardown`, `on_signal` or a task is caught and reported like
//!   the error it stands for (`ConnectFailed`, `TeardownFailed`, a stop with that error, an
//!   unhandled task error).
//! - **Signals need the `signals` feature** (signal-hook). Without it the default set is
//!   empty, and `run()` with a non-empty set fails with [`AgentError::SignalsUnavailable`].

use std::fmt;
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::pin::{Pin, pin};
use std::sync::{Arc, Mutex};
use std::task::Poll;
use std::time::Duration;

use event_listener::{Event, listener};
use futures::FutureExt;
use futures::stream::{FuturesUnordered, Stream, StreamExt};

use crate::error::{BoxError, Cause, ErrorReason};
use crate::sync::lock;

#[cfg(feature = "metricq")]
pub mod metricq;
pub mod selector;

pub use self::selector::{Selector, SelectorError};

/// SIGINT (interrupt, Ctrl-C): 2 on every Unix.
pub const SIGINT: i32 = 2;
/// SIGTERM (termination request): 15 on every Unix.
pub const SIGTERM: i32 = 15;

/// How long teardown may take by default before it is cut off.
pub const DEFAULT_CLOSE_TIMEOUT: Duration = Duration::from_secs(30);

/// A long-running client: what it does on connect, on teardown and on a signal.
///
/// Methods take `&self`: `on_signal` may be called from the signal thread while `connect`
/// or a task runs; keep mutable state behind your own locks or in the agent's tasks.
pub trait Agent: Send + Sync + 'static {
    /// Sets the agent up: connects, starts what it needs, spawns its tasks with
    /// [`AgentHandle::spawn`]. Called once, by `run()`.
    ///
    /// # Errors
    ///
    /// Any error: `run()` returns [`AgentError::ConnectFailed`] with it as the cause.
    fn connect(&self, agent: &AgentHandle) -> impl Future<Output = Result<(), BoxError>> + Send;

    /// Undoes what `connect` did: flushes and stops sinks and recorders, closes connections.
    /// Called once, by the first stop, under [`AgentConfig::close_timeout`]. The default
    /// does nothing.
    ///
    /// # Errors
    ///
    /// Any error: reported in the [`StopOutcome`] and by `run()` as
    /// [`AgentError::TeardownFailed`].
    fn teardown(&self) -> impl Future<Output = Result<(), BoxError>> + Send {
        async { Ok(()) }
    }

    /// Called on the signal thread when one of [`AgentConfig::catch_signals`] arrives. The
    /// default stops the agent without an error.
    fn on_signal(&self, signal: i32, agent: &AgentHandle) {
        let _ = signal;
        agent.stop(None, false);
    }
}

/// The knobs of a [`Runner`].
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct AgentConfig {
    /// Signals that call [`Agent::on_signal`] while `run()` runs. Default: SIGINT and
    /// SIGTERM with the `signals` feature, none without it.
    pub catch_signals: Vec<i32>,
    /// Whether an unhandled error of an agent task (an `Err` or a panic) stops the agent
    /// and is returned by `run()`. Default `false`: such errors are kept in
    /// [`StopOutcome::task_errors`].
    pub cancel_on_error: bool,
    /// How long teardown may take; `None` waits for ever. Default
    /// [`DEFAULT_CLOSE_TIMEOUT`].
    pub close_timeout: Option<Duration>,
}

impl Default for AgentConfig {
    fn default() -> Self {
        Self {
            catch_signals: if cfg!(feature = "signals") {
                vec![SIGINT, SIGTERM]
            } else {
                Vec::new()
            },
            cancel_on_error: false,
            close_timeout: Some(DEFAULT_CLOSE_TIMEOUT),
        }
    }
}

impl AgentConfig {
    /// Sets [`catch_signals`](Self::catch_signals).
    pub fn catch_signals(mut self, signals: impl IntoIterator<Item = i32>) -> Self {
        self.catch_signals = signals.into_iter().collect();
        self
    }

    /// Sets [`cancel_on_error`](Self::cancel_on_error).
    pub fn cancel_on_error(mut self, cancel: bool) -> Self {
        self.cancel_on_error = cancel;
        self
    }

    /// Sets [`close_timeout`](Self::close_timeout).
    pub fn close_timeout(mut self, timeout: Option<Duration>) -> Self {
        self.close_timeout = timeout;
        self
    }
}

/// Why an agent stopped abnormally or could not run.
#[derive(Clone, Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AgentError {
    /// `connect` returned an error or panicked.
    #[error("the agent failed to connect")]
    ConnectFailed(#[source] Cause),
    /// The agent was stopped with this error (not silent).
    #[error("the agent was stopped with an error")]
    Stopped(#[source] Cause),
    /// An agent task returned an error or panicked, with `cancel_on_error` set.
    #[error("an agent task failed")]
    TaskFailed(#[source] Cause),
    /// `teardown` returned an error or panicked.
    #[error("the agent's teardown failed")]
    TeardownFailed(#[source] Cause),
    /// `teardown` did not finish within the close timeout and was cut off.
    #[error("the agent's teardown timed out after {timeout:?}")]
    TeardownTimedOut {
        /// The configured close timeout.
        timeout: Duration,
    },
    /// The signal handlers could not be installed.
    #[error("installing the signal handlers failed")]
    SignalSetup(#[source] Cause),
    /// Signals were asked for without the `signals` feature.
    #[error("catching signals {signals:?} needs mvx's `signals` feature")]
    SignalsUnavailable {
        /// The signals asked for.
        signals: Vec<i32>,
    },
    /// The future of `run_async` was dropped before the agent stopped.
    #[error("the agent's runner was dropped before the agent stopped")]
    Cancelled,
}

impl AgentError {
    /// The stable reason code.
    pub fn reason(&self) -> ErrorReason {
        match self {
            Self::ConnectFailed(_) => ErrorReason::ConnectFailed,
            Self::Stopped(_) => ErrorReason::AgentStopped,
            Self::TaskFailed(_) => ErrorReason::TaskFailed,
            Self::TeardownFailed(_) => ErrorReason::TeardownFailed,
            Self::TeardownTimedOut { .. } => ErrorReason::TeardownTimedOut,
            Self::SignalSetup(_) => ErrorReason::SignalSetupFailed,
            Self::SignalsUnavailable { .. } => ErrorReason::SignalsUnavailable,
            Self::Cancelled => ErrorReason::AgentCancelled,
        }
    }
}

/// How an agent ended: why it stopped, what teardown returned, what went unhandled.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct StopOutcome {
    /// The error the agent stopped with: the one given to the first `stop` (as
    /// [`AgentError::Stopped`]), or [`AgentError::TaskFailed`] under `cancel_on_error`, or
    /// [`AgentError::ConnectFailed`] / [`AgentError::Cancelled`]. `None` for a clean stop.
    pub error: Option<AgentError>,
    /// The error given to a *silent* stop: not returned, but kept.
    pub silenced: Option<Cause>,
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
struct StopRequest {
    error: Option<AgentError>,
    silenced: Option<Cause>,
}

#[derive(Default)]
struct Status {
    stop: Option<StopRequest>,
    task_errors: Vec<Cause>,
    signals: Vec<i32>,
    outcome: Option<StopOutcome>,
}

struct Shared {
    status: Mutex<Status>,
    /// Notified when a stop is requested and when the outcome is set.
    changed: Event,
    tasks: async_channel::Sender<AgentTask>,
    cancel_on_error: bool,
}

impl Shared {
    /// Records the first stop; `true` if this was it.
    fn request_stop(&self, request: StopRequest) -> bool {
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
    fn unhandled(&self, cause: Cause) {
        if self.cancel_on_error {
            let request = StopRequest {
                error: Some(AgentError::TaskFailed(cause.clone())),
                silenced: None,
            };
            if self.request_stop(request) {
                return;
            }
        }
        lock(&self.status).task_errors.push(cause);
    }

    fn finish(&self, error: Option<AgentError>, teardown: Result<(), AgentError>) {
        let mut status = lock(&self.status);
        if status.outcome.is_some() {
            return;
        }
        let request = status.stop.take();
        let (stop_error, silenced) = match request {
            Some(request) => (request.error, request.silenced),
            None => (None, None),
        };
        status.outcome = Some(StopOutcome {
            error: error.or(stop_error),
            silenced,
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
    shared: Arc<Shared>,
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
    /// Stops the agent: the first call wins and returns `true`; later calls are ignored
    /// and return `false`. `error`, unless `silent`, is what `run()` returns and what
    /// [`stopped`](Self::stopped) yields; a silent error is kept in
    /// [`StopOutcome::silenced`].
    ///
    /// Does not wait: the runner runs teardown; await [`stopped`](Self::stopped) for the end.
    pub fn stop(&self, error: Option<BoxError>, silent: bool) -> bool {
        let cause = error.map(Cause::from_error);
        let request = if silent {
            StopRequest {
                error: None,
                silenced: cause,
            }
        } else {
            StopRequest {
                error: cause.map(AgentError::Stopped),
                silenced: None,
            }
        };
        self.shared.request_stop(request)
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
    /// An `Err` or a panic is an unhandled error (see [`AgentConfig::cancel_on_error`]).
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

/// Owns an [`Agent`] and runs it: see the [module docs](self).
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
        let shared = Arc::new(Shared {
            status: Mutex::new(Status::default()),
            changed: Event::new(),
            tasks: tasks_tx,
            cancel_on_error: config.cancel_on_error,
        });
        Self {
            agent: Arc::new(agent),
            config,
            handle: AgentHandle { shared },
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
    /// [`StopOutcome::result`] says: the stop error, the unhandled task error under
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
            let connected = AssertUnwindSafe(agent.connect(&handle))
                .catch_unwind()
                .await;
            let connect_error = match connected {
                Ok(Ok(())) => None,
                Ok(Err(error)) => Some(Cause::from_error(error)),
                Err(payload) => Some(Cause::from_panic(payload)),
            };
            if let Some(cause) = connect_error {
                return (Some(AgentError::ConnectFailed(cause)), Ok(()));
            }
            handle.stop_requested_wait().await;
            (None, teardown(&*agent, config.close_timeout).await)
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

/// Polls `main` and every task spawned meanwhile, until `main` completes.
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
                match ended {
                    Ok(Ok(())) => {}
                    Ok(Err(error)) => shared.unhandled(Cause::from_error(error)),
                    Err(payload) => shared.unhandled(Cause::from_panic(payload)),
                }
            }
            if let Poll::Ready(output) = main.as_mut().poll(cx) {
                return Poll::Ready(output);
            }
            if !progressed {
                return Poll::Pending;
            }
        }
    })
    .await
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

mod signals {
    //! The signal thread of `Runner::run`.

    use std::sync::Arc;

    use super::{Agent, AgentError, AgentHandle};

    #[cfg(feature = "signals")]
    pub(super) struct Catcher {
        handle: Option<signal_hook::iterator::Handle>,
        thread: Option<std::thread::JoinHandle<()>>,
    }

    #[cfg(feature = "signals")]
    impl Catcher {
        pub(super) fn start<A: Agent>(
            set: &[i32],
            agent: Arc<A>,
            handle: AgentHandle,
        ) -> Result<Self, AgentError> {
            use std::panic::{AssertUnwindSafe, catch_unwind};

            use crate::error::Cause;

            if set.is_empty() {
                return Ok(Self {
                    handle: None,
                    thread: None,
                });
            }
            let mut signals = signal_hook::iterator::Signals::new(set)
                .map_err(|error| AgentError::SignalSetup(Cause::from_error(error)))?;
            let closer = signals.handle();
            let thread = std::thread::Builder::new()
                .name("mvx-agent-signals".into())
                .spawn(move || {
                    for signal in signals.forever() {
                        super::lock(&handle.shared.status).signals.push(signal);
                        let called =
                            catch_unwind(AssertUnwindSafe(|| agent.on_signal(signal, &handle)));
                        if let Err(payload) = called {
                            let cause = Cause::from_panic(payload);
                            handle.shared.request_stop(super::StopRequest {
                                error: Some(AgentError::Stopped(cause)),
                                silenced: None,
                            });
                        }
                    }
                })
                .map_err(|error| {
                    closer.close();
                    AgentError::SignalSetup(Cause::from_error(error))
                })?;
            Ok(Self {
                handle: Some(closer),
                thread: Some(thread),
            })
        }

        /// Unregisters the handlers and joins the thread.
        pub(super) fn finish(mut self) {
            if let Some(handle) = self.handle.take() {
                handle.close();
            }
            if let Some(thread) = self.thread.take() {
                // The thread only runs `on_signal`, whose panics it catches.
                let _ = thread.join();
            }
        }
    }

    #[cfg(not(feature = "signals"))]
    pub(super) struct Catcher;

    #[cfg(not(feature = "signals"))]
    impl Catcher {
        pub(super) fn start<A: Agent>(
            set: &[i32],
            _agent: Arc<A>,
            _handle: AgentHandle,
        ) -> Result<Self, AgentError> {
            if set.is_empty() {
                Ok(Self)
            } else {
                Err(AgentError::SignalsUnavailable {
                    signals: set.to_vec(),
                })
            }
        }

        pub(super) fn finish(self) {}
    }
}
