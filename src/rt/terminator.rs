//! The [`Terminator`]: stops a component, shuts its runtime down and joins its thread,
//! within a deadline that user code cannot hold.

use std::fmt;
use std::time::{Duration, Instant};

use super::{Joined, RuntimeThread};
use crate::error::{SinkError, TerminateError, TerminateStage};
use crate::queue::QueueStats;
use crate::sink::{AsyncSink, EndedFromOutside};
use crate::sync::{Arc, OnceLock};

/// Stops a component, shuts its executor down and joins its thread — within a deadline;
/// idempotent.
///
/// `Clone + Send + Sync`. The [module docs](super) say what dropping it does; the crate
/// docs' "What is lost, when" which tool fits which way a program ends.
///
/// # The deadline
///
/// [`terminate`](Self::terminate) takes at most the sink's
/// [`effective_terminate_timeout`](crate::sink::SinkConfig::effective_terminate_timeout)
/// (by default its stop timeout plus a one-second join grace);
/// [`terminate_within`](Self::terminate_within) and
/// [`terminate_deadline`](Self::terminate_deadline) take a deadline per call. Past the
/// deadline the terminator does not wait any more, for anything:
///
/// - a sink still stopping is ended from outside its driver — the driver may be blocked
///   inside user code (a dispatcher that sleeps, a write to a pipe nobody reads), which no
///   timer on its own thread can cut off. Every event still queued or in dispatch is
///   counted as `failed` at that moment, so `accepted == delivered + failed` and
///   `pending == 0` when the call returns, whatever the driver does later: when it comes
///   back from user code it sees that the sink has ended, counts nothing and returns
///   (an abandoned event may still reach its backend, counted as failed all the same);
/// - the runtime thread is detached rather than joined: it ends on its own once the user
///   code that holds it returns;
/// - the call returns [`TerminateError::TimedOut`], naming what it was waiting for
///   ([`TerminateStage`]), how many events it abandoned, and the final counters.
#[derive(Clone)]
pub struct Terminator {
    inner: Arc<TerminatorInner>,
}

struct TerminatorInner {
    component: Box<dyn Terminable>,
    runtime: RuntimeThread,
    /// The configured limit of `terminate()`.
    timeout: Option<Duration>,
    outcome: OnceLock<Result<QueueStats, TerminateError>>,
}

/// What a terminator ends: a sink, whatever its event type.
trait Terminable: Send + Sync {
    /// Stops, waiting until `deadline`; `None` when it passed first.
    fn stop_until(&self, deadline: Option<Instant>) -> Option<Result<(), SinkError>>;
    /// Requests a stop without waiting for it.
    #[cfg(loom)]
    fn request_stop(&self);
    /// Ends the sink from outside its driver; `None` when it had ended already.
    fn end_from_outside(&self, timeout: Duration) -> Option<EndedFromOutside>;
    fn stats(&self) -> QueueStats;
}

impl<E: Send + 'static> Terminable for AsyncSink<E> {
    fn stop_until(&self, deadline: Option<Instant>) -> Option<Result<(), SinkError>> {
        AsyncSink::stop_until(self, deadline)
    }

    #[cfg(loom)]
    fn request_stop(&self) {
        if self.state() == crate::State::Running {
            drop(self.stop());
        }
    }

    fn end_from_outside(&self, timeout: Duration) -> Option<EndedFromOutside> {
        AsyncSink::end_from_outside(self, timeout)
    }

    fn stats(&self) -> QueueStats {
        AsyncSink::stats(self)
    }
}

impl Terminator {
    /// A terminator that stops `sink` and then shuts `runtime` down, within the sink's
    /// configured terminate timeout.
    #[cfg(any(feature = "smol", feature = "thread", loom))]
    pub(crate) fn new<E: Send + 'static>(sink: AsyncSink<E>, runtime: RuntimeThread) -> Self {
        let timeout = sink.config().effective_terminate_timeout();
        Self {
            inner: Arc::new(TerminatorInner {
                component: Box::new(sink),
                runtime,
                timeout,
                outcome: OnceLock::new(),
            }),
        }
    }

    /// Stops the component (flushing what it accepted), shuts the executor down and joins
    /// the runtime thread, within the configured terminate timeout; returns the
    /// component's final counters.
    ///
    /// The counters are final: after a clean stop `pending == 0` and
    /// `accepted == delivered + failed`, and so they are after a timeout (see "The
    /// deadline" above). A caller that reports what was lost reads it here (`failed`,
    /// `dropped`), also after the last handle of the component is gone.
    ///
    /// The first call does the work; every later call returns the same outcome at once. A
    /// concurrent call waits for the first to finish (within the first's deadline).
    ///
    /// # Errors
    ///
    /// - [`TerminateError::CalledFromRuntimeThread`] when called on the runtime thread
    ///   (nothing is done; call it from another thread).
    /// - [`TerminateError::TimedOut`] when the deadline ([`SinkConfig::terminate_timeout`],
    ///   by default the stop timeout plus [`SinkConfig::join_grace`]) passed first.
    /// - [`TerminateError::Stop`] when the component did not stop cleanly: a failed stop
    ///   hook, a stop timeout, or a component that had already failed. It carries the
    ///   final counters too ([`TerminateError::stats`]). It is reported also when the
    ///   runtime thread then outlived the deadline (and was detached): what was lost
    ///   comes first.
    /// - [`TerminateError::RuntimePanicked`] when the runtime thread panicked.
    ///
    /// [`SinkConfig::terminate_timeout`]: crate::sink::SinkConfig::terminate_timeout
    /// [`SinkConfig::join_grace`]: crate::sink::SinkConfig::join_grace
    ///
    /// # Examples
    ///
    /// ```
    /// use mvx::sink::{Discard, SinkConfig};
    ///
    /// let (sink, terminator) = mvx::rt::thread::create(Discard, SinkConfig::default())?;
    /// sink.log(1u32).unwrap();
    /// drop(sink);
    /// let stats = terminator.terminate()?;
    /// assert_eq!((stats.accepted, stats.delivered, stats.pending), (1, 1, 0));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn terminate(&self) -> Result<QueueStats, TerminateError> {
        match self.inner.timeout {
            Some(timeout) => self.terminate_within(timeout),
            None => self.inner.terminate(None, Duration::MAX),
        }
    }

    /// [`terminate`](Self::terminate), within `timeout` from now instead of the configured
    /// terminate timeout.
    ///
    /// # Errors
    ///
    /// As [`terminate`](Self::terminate); [`TerminateError::TimedOut`] past `timeout`.
    ///
    /// # Examples
    ///
    /// A dispatcher that blocks its thread cannot hold the call:
    ///
    /// ```
    /// use std::time::Duration;
    /// use mvx::BoxError;
    /// use mvx::error::{TerminateError, TerminateStage};
    /// use mvx::sink::{Dispatch, SinkConfig};
    ///
    /// struct Stuck;
    /// impl Dispatch<u32> for Stuck {
    ///     async fn dispatch(&mut self, _event: u32) -> Result<(), BoxError> {
    ///         std::thread::sleep(Duration::from_secs(2)); // blocks the sink's thread
    ///         Ok(())
    ///     }
    /// }
    ///
    /// let (sink, terminator) = mvx::rt::thread::create(Stuck, SinkConfig::default())?;
    /// sink.log(1).unwrap();
    /// match terminator.terminate_within(Duration::from_millis(50)) {
    ///     Err(TerminateError::TimedOut { stage, abandoned, stats, .. }) => {
    ///         assert_eq!((stage, abandoned), (TerminateStage::Dispatch, 1));
    ///         assert_eq!((stats.accepted, stats.failed, stats.pending), (1, 1, 0));
    ///     }
    ///     other => panic!("{other:?}"),
    /// }
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn terminate_within(&self, timeout: Duration) -> Result<QueueStats, TerminateError> {
        let deadline = Instant::now().checked_add(timeout);
        self.inner.terminate(deadline, timeout)
    }

    /// [`terminate`](Self::terminate), by `deadline` instead of within the configured
    /// terminate timeout. A deadline already passed ends a sink that has not stopped at
    /// once.
    ///
    /// # Errors
    ///
    /// As [`terminate`](Self::terminate); [`TerminateError::TimedOut`] past `deadline`.
    pub fn terminate_deadline(&self, deadline: Instant) -> Result<QueueStats, TerminateError> {
        let timeout = deadline.saturating_duration_since(Instant::now());
        self.inner.terminate(Some(deadline), timeout)
    }

    /// Whether termination has finished.
    pub fn is_terminated(&self) -> bool {
        self.inner.outcome.get().is_some()
    }

    /// Installs a panic hook that terminates this component (within the configured
    /// terminate timeout), then runs the hook that was installed before.
    ///
    /// For the exits where no destructor runs, so that the drop of the terminator never
    /// comes: a process built with `panic = "abort"`, a terminator kept in a `static` or
    /// leaked, a panic that ends the program from another thread. With the default
    /// `panic = "unwind"`, a panic in `main` unwinds through `main`'s locals and the drop
    /// of the terminator terminates anyway; the hook then only makes it happen before the
    /// panic message is printed, so that the logs come first.
    ///
    /// A panic hook runs for every panic, also one that is caught later (by
    /// `catch_unwind`, a test harness, or mvx itself around a dispatcher): install it
    /// where a panic ends the program. Panics on this component's own runtime thread are
    /// the component's (mvx catches them) and do not terminate it. The hook holds no
    /// reference that keeps the terminator alive: dropping the last clone still
    /// terminates, and the hook then does nothing.
    ///
    /// # Examples
    ///
    /// ```no_run
    /// use mvx::sink::{SinkConfig, sinks::WriterSink};
    ///
    /// let (sink, terminator) = mvx::rt::thread::create(WriterSink::stderr(), SinkConfig::default())?;
    /// terminator.terminate_on_panic();
    /// sink.log("about to fail".to_string()).unwrap();
    /// panic!("the line above is written before this message");
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[cfg(not(loom))]
    pub fn terminate_on_panic(&self) {
        let terminator = Arc::downgrade(&self.inner);
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if let Some(inner) = terminator.upgrade()
                && !inner.runtime.is_current()
            {
                let _ = inner.terminate_configured();
            }
            previous(info);
        }));
    }

    /// Terminates as if the deadline had just passed: requests the stop, then at once ends
    /// the sink from outside its driver (unless the driver ended it first), and joins the
    /// runtime thread without a deadline. For the loom models, which have no clock: the
    /// race of that end with the driver coming back from user code.
    #[cfg(loom)]
    pub(crate) fn terminate_past_deadline(&self) -> Result<QueueStats, TerminateError> {
        let inner = &*self.inner;
        inner
            .outcome
            .get_or_init(|| {
                inner.component.request_stop();
                inner.finish(None, None, Duration::ZERO)
            })
            .clone()
    }
}

impl TerminatorInner {
    fn terminate_configured(&self) -> Result<QueueStats, TerminateError> {
        match self.timeout {
            Some(timeout) => self.terminate(Instant::now().checked_add(timeout), timeout),
            None => self.terminate(None, Duration::MAX),
        }
    }

    /// Terminates by `deadline` (`None`: waits as long as it takes); `timeout` is the
    /// deadline as a time from the call, for the error.
    fn terminate(
        &self,
        deadline: Option<Instant>,
        timeout: Duration,
    ) -> Result<QueueStats, TerminateError> {
        if let Some(outcome) = self.outcome.get() {
            return outcome.clone();
        }
        if self.runtime.is_current() {
            return Err(TerminateError::CalledFromRuntimeThread);
        }
        self.outcome
            .get_or_init(|| {
                let stopped = self.component.stop_until(deadline);
                self.finish(stopped, deadline, timeout)
            })
            .clone()
    }

    /// After the stop (`None`: its deadline passed first): ends the component from
    /// outside if it has not stopped, shuts the runtime down, joins it by `deadline`, and
    /// makes the outcome.
    fn finish(
        &self,
        stopped: Option<Result<(), SinkError>>,
        deadline: Option<Instant>,
        timeout: Duration,
    ) -> Result<QueueStats, TerminateError> {
        let (stopped, abandoned) = match stopped {
            Some(stopped) => (stopped, None),
            None => match self.component.end_from_outside(timeout) {
                Some(ended) => (Ok(()), Some(ended)),
                // The driver ended the sink first, at the deadline: the result of its end
                // (no wait: the sink is terminal and its stop complete or about to be).
                None => (self.component.stop_until(None).unwrap_or(Ok(())), None),
            },
        };
        self.runtime.shutdown();
        let joined = self.runtime.join_until(deadline);
        // Final: either the thread was joined, or the sink was ended from outside and
        // counting with it (what the detached driver does later counts nothing).
        let stats = Box::new(self.component.stats());
        match (abandoned, stopped, joined) {
            (Some(ended), _, _) => Err(TerminateError::TimedOut {
                timeout,
                stage: ended.stage,
                abandoned: ended.abandoned,
                stats,
            }),
            (None, Err(error), _) => Err(TerminateError::Stop { error, stats }),
            (None, Ok(()), Ok(Joined::Joined)) => Ok(*stats),
            (None, Ok(()), Ok(Joined::Detached)) => Err(TerminateError::TimedOut {
                timeout,
                stage: TerminateStage::Join,
                abandoned: 0,
                stats,
            }),
            (None, Ok(()), Err(error)) => Err(error),
        }
    }
}

impl Drop for TerminatorInner {
    fn drop(&mut self) {
        if self.outcome.get().is_some() {
            return;
        }
        if self.runtime.is_current() {
            // The thread cannot join itself: shut the executor down and let it end.
            self.runtime.shutdown();
        } else {
            // The outcome has no one left to read it; it is in the component's
            // `last_error()` for the handles still alive.
            let _ = self.terminate_configured();
        }
    }
}

impl fmt::Debug for Terminator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Terminator")
            .field("terminated", &self.is_terminated())
            .finish_non_exhaustive()
    }
}
