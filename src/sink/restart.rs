//! The restart policy: what a sink does when its dispatcher panics.

use std::time::Duration;

/// What a sink does when dispatcher code panics while it runs: end, or restart the
/// dispatcher.
///
/// A panic in [`dispatch`](super::Dispatch::dispatch),
/// [`dispatch_batch`](super::Dispatch::dispatch_batch), [`flush`](super::Dispatch::flush)
/// or [`on_loss`](super::Dispatch::on_loss) is caught, and the events of the call that
/// panicked are counted as failed. Then:
///
/// - [`Never`](Self::Never), the default: the sink moves to `Failure`, and the events
///   still queued are counted as failed, as every later event is refused.
/// - [`Limited`](Self::Limited): the panic is counted
///   ([`QueueStats::restarts`](crate::queue::QueueStats::restarts)) and kept in
///   `last_error()` as [`SinkError::DispatcherRestarted`](crate::error::SinkError), the
///   driver waits `backoff` — the sink keeps accepting events meanwhile; a stop, or the
///   last handle dropped, cuts the wait short — then calls the dispatcher's
///   [`on_restart`](super::Dispatch::on_restart) hook and resumes dispatching with it. The
///   restart is in the next [loss report](super::LossReport) too. After `max_restarts`
///   restarts in the sink's life, the next panic ends it as under `Never`.
///
/// # The same dispatcher
///
/// A restart resumes with the same dispatcher value, not a fresh one: a sink is built from
/// a value, by every constructor and adapter of mvx, and keeping that value keeps the
/// policy one field of [`SinkConfig`](super::SinkConfig). A panic may have left the value
/// inconsistent — half a write in a buffer, a connection in the middle of a request — so
/// `on_restart` is where a dispatcher puts itself right (reconnects, clears its buffer); it
/// may also refuse the restart by returning an error, and the sink then ends as under
/// `Never`. Its default does nothing: enable restarts for a dispatcher that either survives
/// its own panics or says how in `on_restart`. mvx's own state never needs it: no panic
/// of user code happens under one of mvx's locks.
///
/// Panics in the start and stop hooks, and in the last flush of a stop, are not restarted:
/// they fail their operation, as [`Dispatch`](super::Dispatch) describes.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use mvx::sink::{RestartPolicy, SinkConfig};
///
/// // At most 5 restarts in the sink's life, each after a second.
/// let config = SinkConfig::default().restart(RestartPolicy::limited(5, Duration::from_secs(1)));
/// assert_ne!(config.restart, RestartPolicy::Never);
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum RestartPolicy {
    /// A panic ends the sink (`Failure`).
    #[default]
    Never,
    /// A panic restarts the dispatcher after `backoff`, at most `max_restarts` times.
    Limited {
        /// How many restarts the sink allows in its life.
        max_restarts: u32,
        /// How long the driver waits before each restart.
        backoff: Duration,
    },
}

impl RestartPolicy {
    /// [`Limited`](Self::Limited): at most `max_restarts` restarts, each after `backoff`.
    pub const fn limited(max_restarts: u32, backoff: Duration) -> Self {
        Self::Limited {
            max_restarts,
            backoff,
        }
    }

    /// The backoff before a restart, when `done` restarts were made already and another
    /// one is allowed.
    pub(crate) fn backoff_after(self, done: u64) -> Option<Duration> {
        match self {
            Self::Never => None,
            Self::Limited {
                max_restarts,
                backoff,
            } => (done < u64::from(max_restarts)).then_some(backoff),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn restarts_are_bounded() {
        assert_eq!(RestartPolicy::Never.backoff_after(0), None);
        let policy = RestartPolicy::limited(2, Duration::from_millis(5));
        assert_eq!(policy.backoff_after(0), Some(Duration::from_millis(5)));
        assert_eq!(policy.backoff_after(1), Some(Duration::from_millis(5)));
        assert_eq!(policy.backoff_after(2), None);
        assert_eq!(
            RestartPolicy::limited(0, Duration::ZERO).backoff_after(0),
            None
        );
    }
}
