//! Sink configuration.

use std::time::Duration;

use super::{DEFAULT_LOSS_REPORT_INTERVAL, DEFAULT_POLL_BUDGET, PollBudget, RestartPolicy};
use crate::queue::{DEFAULT_QUEUE_CAPACITY, OverflowPolicy};

/// How many events the driver hands to one `dispatch_batch` call at most, by default.
pub const DEFAULT_BATCH_SIZE: usize = 256;

/// How long a stop may take by default before the remaining events are abandoned.
pub const DEFAULT_STOP_TIMEOUT: Duration = Duration::from_secs(30);

/// How long the start hook may take by default before the start fails.
pub const DEFAULT_START_TIMEOUT: Duration = Duration::from_secs(30);

/// How long a terminator waits by default, past the stop timeout, for the runtime thread
/// to end.
pub const DEFAULT_JOIN_GRACE: Duration = Duration::from_secs(1);

/// The knobs of an [`AsyncSink`](super::AsyncSink).
///
/// Start from [`SinkConfig::default()`] and change what you need:
///
/// ```
/// use std::time::Duration;
/// use mvx::queue::OverflowPolicy;
/// use mvx::sink::SinkConfig;
///
/// let config = SinkConfig::default()
///     .namespace("audit")
///     .queue_capacity(1024)
///     .overflow(OverflowPolicy::Drop)
///     .lazy_start(true)
///     .stop_timeout(Some(Duration::from_secs(5)));
/// assert_eq!(config.queue_capacity, 1024);
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub struct SinkConfig {
    /// A name for the sink, used for the runtime thread's name (`mvx-<namespace>`).
    pub namespace: Option<String>,
    /// The pending-event limit (queued + in dispatch) of each producer thread: every thread
    /// that logs has a lane of its own with this limit, so a sink with `N` producer threads
    /// holds at most `N × queue_capacity` pending events, plus `queue_capacity` in its shared
    /// lane ([the queue module](crate::queue) has the rule and the memory). Default
    /// [`DEFAULT_QUEUE_CAPACITY`]; 0 is treated as 1; at most
    /// [`MAX_QUEUE_CAPACITY`](crate::queue::MAX_QUEUE_CAPACITY), which says how much memory the ring takes. A sink created
    /// with a larger one, or with a ring the allocator refuses, is in `Failure` with
    /// `SinkError::QueueAllocationFailed` (see
    /// [`AsyncSink::new`](super::AsyncSink::new)).
    pub queue_capacity: usize,
    /// What `log()` does when the limit is reached. Default [`OverflowPolicy::RaiseError`].
    pub overflow: OverflowPolicy,
    /// Whether the first `log()` on a `Virgin` sink starts it. Default `false`.
    pub lazy_start: bool,
    /// The most events handed to one `dispatch_batch` call. Default
    /// [`DEFAULT_BATCH_SIZE`]; 0 is treated as 1.
    pub batch_size: usize,
    /// How long `stop()` may take (draining, flushing, the stop hook) before the events
    /// still pending are abandoned and counted as failed. `None` waits for ever. Default
    /// [`DEFAULT_STOP_TIMEOUT`].
    pub stop_timeout: Option<Duration>,
    /// How long the start hook (`on_starting`) may take. Past it the hook is cut off (its
    /// future dropped), the start fails with `StartTimedOut`, the sink moves to `Failure`
    /// and the events logged while it was starting are counted as failed. Without it, a
    /// start hook that never returns would block `rt::thread::create` (which waits for the
    /// start) for ever. `None` waits for ever. Default [`DEFAULT_START_TIMEOUT`].
    pub start_timeout: Option<Duration>,
    /// How long [`Terminator::terminate`](crate::rt::Terminator::terminate) (and the drop of
    /// the last terminator) may take in all: stopping the sink, then joining its runtime
    /// thread. Past it the sink is ended from outside its driver — every event still queued
    /// or in dispatch counted as failed — the thread is detached, and the call returns
    /// [`TerminateError::TimedOut`](crate::error::TerminateError::TimedOut). Unlike the stop
    /// timeout, it holds when the dispatcher blocks its thread. `None` (the default): the
    /// stop timeout plus [`join_grace`](Self::join_grace), or for ever without a stop
    /// timeout (see [`effective_terminate_timeout`](Self::effective_terminate_timeout)).
    /// `terminate_within` and `terminate_deadline` take a deadline per call instead.
    pub terminate_timeout: Option<Duration>,
    /// The time a terminate gives the runtime thread to end, past the stop timeout, when
    /// [`terminate_timeout`](Self::terminate_timeout) is not set. Default
    /// [`DEFAULT_JOIN_GRACE`].
    pub join_grace: Duration,
    /// How much work the driver does in one poll before it lets its executor run other
    /// tasks (see [`PollBudget`]). `None`: it yields only when its queue runs empty, and a
    /// flooded sink keeps its executor thread. Default [`DEFAULT_POLL_BUDGET`].
    pub poll_budget: Option<PollBudget>,
    /// How often, at most, the dispatcher is handed a [loss report](super::LossReport)
    /// while events are dropped, refused or failed; one more comes at stop. `None` turns
    /// loss reports off. Default [`DEFAULT_LOSS_REPORT_INTERVAL`].
    pub loss_report_interval: Option<Duration>,
    /// What a panic of the dispatcher does: end the sink, or restart the dispatcher (see
    /// [`RestartPolicy`]). Default [`RestartPolicy::Never`].
    pub restart: RestartPolicy,
}

impl Default for SinkConfig {
    fn default() -> Self {
        Self {
            namespace: None,
            queue_capacity: DEFAULT_QUEUE_CAPACITY,
            overflow: OverflowPolicy::default(),
            lazy_start: false,
            batch_size: DEFAULT_BATCH_SIZE,
            stop_timeout: Some(DEFAULT_STOP_TIMEOUT),
            start_timeout: Some(DEFAULT_START_TIMEOUT),
            terminate_timeout: None,
            join_grace: DEFAULT_JOIN_GRACE,
            poll_budget: Some(DEFAULT_POLL_BUDGET),
            loss_report_interval: Some(DEFAULT_LOSS_REPORT_INTERVAL),
            restart: RestartPolicy::Never,
        }
    }
}

impl SinkConfig {
    /// Sets [`namespace`](Self::namespace).
    pub fn namespace(mut self, namespace: impl Into<String>) -> Self {
        self.namespace = Some(namespace.into());
        self
    }

    /// Sets [`queue_capacity`](Self::queue_capacity).
    pub fn queue_capacity(mut self, capacity: usize) -> Self {
        self.queue_capacity = capacity.max(1);
        self
    }

    /// Sets [`overflow`](Self::overflow).
    pub fn overflow(mut self, policy: OverflowPolicy) -> Self {
        self.overflow = policy;
        self
    }

    /// Sets [`lazy_start`](Self::lazy_start).
    pub fn lazy_start(mut self, lazy: bool) -> Self {
        self.lazy_start = lazy;
        self
    }

    /// Sets [`batch_size`](Self::batch_size).
    pub fn batch_size(mut self, size: usize) -> Self {
        self.batch_size = size.max(1);
        self
    }

    /// Sets [`stop_timeout`](Self::stop_timeout).
    pub fn stop_timeout(mut self, timeout: Option<Duration>) -> Self {
        self.stop_timeout = timeout;
        self
    }

    /// Sets [`start_timeout`](Self::start_timeout).
    pub fn start_timeout(mut self, timeout: Option<Duration>) -> Self {
        self.start_timeout = timeout;
        self
    }

    /// Sets [`terminate_timeout`](Self::terminate_timeout).
    pub fn terminate_timeout(mut self, timeout: Option<Duration>) -> Self {
        self.terminate_timeout = timeout;
        self
    }

    /// Sets [`join_grace`](Self::join_grace).
    pub fn join_grace(mut self, grace: Duration) -> Self {
        self.join_grace = grace;
        self
    }

    /// How long a terminate may take: [`terminate_timeout`](Self::terminate_timeout) if
    /// set, else the stop timeout plus [`join_grace`](Self::join_grace); `None` (for ever)
    /// when neither the terminate nor the stop has a timeout.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use mvx::sink::SinkConfig;
    ///
    /// let config = SinkConfig::default().stop_timeout(Some(Duration::from_secs(5)));
    /// assert_eq!(config.effective_terminate_timeout(), Some(Duration::from_secs(6)));
    /// let config = config.terminate_timeout(Some(Duration::from_secs(2)));
    /// assert_eq!(config.effective_terminate_timeout(), Some(Duration::from_secs(2)));
    /// ```
    pub fn effective_terminate_timeout(&self) -> Option<Duration> {
        self.terminate_timeout.or_else(|| {
            self.stop_timeout
                .map(|stop| stop.saturating_add(self.join_grace))
        })
    }

    /// Sets [`poll_budget`](Self::poll_budget).
    pub fn poll_budget(mut self, budget: Option<PollBudget>) -> Self {
        self.poll_budget = budget;
        self
    }

    /// Sets [`loss_report_interval`](Self::loss_report_interval).
    pub fn loss_report_interval(mut self, interval: Option<Duration>) -> Self {
        self.loss_report_interval = interval;
        self
    }

    /// Sets [`restart`](Self::restart).
    pub fn restart(mut self, policy: RestartPolicy) -> Self {
        self.restart = policy;
        self
    }

    /// The name of a runtime thread for this sink.
    #[cfg(any(feature = "smol", feature = "thread"))]
    pub(crate) fn thread_name(&self, default: &str) -> String {
        match &self.namespace {
            Some(namespace) => format!("mvx-{namespace}"),
            None => format!("mvx-{default}"),
        }
    }
}
