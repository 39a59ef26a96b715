//! The waits of statistics, each a named future: a lifecycle operation ([`StatsWait`]) and
//! the figures barrier ([`Calculate`]). `.await` them, or block on them with `wait()`,
//! `wait_timeout(Duration)` or `wait_deadline(Instant)`; the blocking forms wait for the
//! driver, and one that could only wait for itself returns
//! `StatsError::Recorder(SinkError::WouldDeadlock)` at once
//! ([which calls block](crate::sink#which-calls-block)).

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use super::event::StatsEvent;
use super::{FinalStatistics, Statistics, StatsError};
use crate::error::{SinkError, WaitTimeoutError};
use crate::lifecycle::{OpResult, WaitHandle};
use crate::sink::wait::Flush;

/// Waits for a [`Statistics::start`] or [`Statistics::stop`]: `.await` it, or
/// [`wait`](Self::wait) from synchronous code.
#[must_use = "a wait handle does nothing unless awaited or waited on; drop it to ignore the result"]
#[derive(Debug)]
pub struct StatsWait {
    handle: WaitHandle,
}

impl StatsWait {
    pub(super) fn new(handle: WaitHandle) -> Self {
        Self { handle }
    }

    /// Blocks the current thread until the operation finishes.
    ///
    /// # Errors
    ///
    /// As the operation (see [`Statistics::start`] and [`Statistics::stop`]);
    /// `StatsError::Recorder(SinkError::WouldDeadlock)` at once when only this thread could
    /// run the driver that finishes it ([`WaitHandle::wait`]): the operation goes on.
    pub fn wait(self) -> Result<(), StatsError> {
        self.handle
            .wait()
            .into_result()
            .map_err(StatsError::from_lifecycle)
    }

    /// As [`wait`](Self::wait), giving up after `timeout`.
    ///
    /// # Errors
    ///
    /// `StatsError::Recorder(SinkError::WaitTimedOut)` when the operation is still in
    /// flight after `timeout` (it goes on); otherwise as [`wait`](Self::wait).
    pub fn wait_timeout(self, timeout: Duration) -> Result<(), StatsError> {
        Self::finished(self.handle.wait_timeout(timeout))
    }

    /// As [`wait`](Self::wait), giving up at `deadline`.
    ///
    /// # Errors
    ///
    /// As [`wait_timeout`](Self::wait_timeout).
    pub fn wait_deadline(self, deadline: Instant) -> Result<(), StatsError> {
        Self::finished(self.handle.wait_deadline(deadline))
    }

    fn finished(waited: Result<OpResult, WaitTimeoutError>) -> Result<(), StatsError> {
        match waited {
            Ok(result) => result.into_result().map_err(StatsError::from_lifecycle),
            Err(still_in_flight) if still_in_flight.is_would_deadlock() => {
                Err(StatsError::Recorder(SinkError::WouldDeadlock))
            }
            Err(_still_in_flight) => Err(StatsError::Recorder(SinkError::WaitTimedOut)),
        }
    }
}

impl Future for StatsWait {
    type Output = Result<(), StatsError>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        Pin::new(&mut self.handle)
            .poll(cx)
            .map(|result| result.into_result().map_err(StatsError::from_lifecycle))
    }
}

/// The figures once every call recorded before [`Statistics::calculate`] was applied;
/// returned by `calculate()`.
///
/// `.await` it, or block on it with [`wait`](Self::wait),
/// [`wait_timeout`](Self::wait_timeout) or [`wait_deadline`](Self::wait_deadline). The
/// figures are taken when the wait ends.
#[must_use = "futures do nothing unless you .await or poll them"]
pub struct Calculate<'a> {
    flush: Flush<'a, StatsEvent>,
    stats: &'a Statistics,
}

impl<'a> Calculate<'a> {
    pub(super) fn new(flush: Flush<'a, StatsEvent>, stats: &'a Statistics) -> Self {
        Self { flush, stats }
    }

    /// Blocks the current thread until every call recorded before was applied.
    ///
    /// # Errors
    ///
    /// As [`Statistics::calculate_blocking`].
    pub fn wait(self) -> Result<FinalStatistics, StatsError> {
        self.flush.wait()?;
        Ok(self.stats.figures())
    }

    /// As [`wait`](Self::wait), giving up after `timeout`.
    ///
    /// # Errors
    ///
    /// `StatsError::Recorder(SinkError::WaitTimedOut)` when the calls are not all applied
    /// after `timeout`; otherwise as [`wait`](Self::wait).
    pub fn wait_timeout(self, timeout: Duration) -> Result<FinalStatistics, StatsError> {
        self.flush.wait_timeout(timeout)?;
        Ok(self.stats.figures())
    }

    /// As [`wait`](Self::wait), giving up at `deadline`.
    ///
    /// # Errors
    ///
    /// As [`wait_timeout`](Self::wait_timeout).
    pub fn wait_deadline(self, deadline: Instant) -> Result<FinalStatistics, StatsError> {
        self.flush.wait_deadline(deadline)?;
        Ok(self.stats.figures())
    }
}

impl Future for Calculate<'_> {
    type Output = Result<FinalStatistics, StatsError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.get_mut();
        std::task::ready!(Pin::new(&mut this.flush).poll(cx))?;
        Poll::Ready(Ok(this.stats.figures()))
    }
}

impl fmt::Debug for Calculate<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Calculate").finish_non_exhaustive()
    }
}
