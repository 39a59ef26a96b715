//! The poll budget: how much work a sink's driver does before it lets its executor run
//! other tasks.

use std::time::{Duration, Instant};

/// How much work a sink's driver does in one poll before it yields to its executor.
///
/// A driver with work never has to return `Pending`: while producers keep its queue full,
/// it would keep its executor thread, and every other task on that thread — another sink,
/// a recorder's snapshot, the statistics' periodic saves — would wait until the queue ran
/// empty. As tokio's cooperative budget does for its tasks, the driver counts what it does
/// in one poll: once it has dispatched `events` events or spent `time`, whichever comes
/// first, it wakes itself and returns `Pending` once, so the executor can run what else is
/// ready before it polls the driver again. The budget is whole again at each poll that
/// follows a yield or a sleep.
///
/// The budget is checked between batches: one
/// [`dispatch_batch`](super::Dispatch::dispatch_batch) call is never interrupted. A
/// dispatcher whose batches take longer than `time` keeps its thread for a whole batch;
/// give it a smaller [`batch_size`](super::SinkConfig::batch_size).
///
/// [`DEFAULT_POLL_BUDGET`] (16,384 events or 500 µs) keeps co-located work within about
/// half a millisecond of its schedule per flooded neighbour, and costs a flooded driver
/// one yield — a wake-up of its own task, well under a microsecond on the executors mvx
/// supports — per 500 µs or 16,384 events, a fraction of a percent of its throughput
/// (BENCHMARKS.md has the same-run figures). `None` in
/// [`SinkConfig::poll_budget`](super::SinkConfig::poll_budget) turns it off: the driver
/// then yields only when its queue runs empty.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use mvx::sink::{PollBudget, SinkConfig};
///
/// // A driver that shares its thread with latency-sensitive work: yield every 100 µs.
/// let config = SinkConfig::default().poll_budget(Some(PollBudget {
///     events: 4_096,
///     time: Duration::from_micros(100),
/// }));
/// assert_eq!(config.poll_budget.unwrap().events, 4_096);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct PollBudget {
    /// Events dispatched in one poll before the driver yields; 0 is treated as 1.
    pub events: u64,
    /// Time spent in one poll before the driver yields (read once per batch).
    pub time: Duration,
}

/// The poll budget of a sink when none is configured: 16,384 events or 500 µs.
pub const DEFAULT_POLL_BUDGET: PollBudget = PollBudget {
    events: 16_384,
    time: Duration::from_micros(500),
};

impl Default for PollBudget {
    fn default() -> Self {
        DEFAULT_POLL_BUDGET
    }
}

/// The driver's account of its budget in the current poll (driver only).
#[derive(Debug)]
pub(crate) struct Meter {
    budget: Option<PollBudget>,
    /// Events dispatched since the budget was last whole.
    spent: u64,
    /// When the budget was last whole, if the time is counted.
    since: Option<Instant>,
}

impl Meter {
    /// A whole budget.
    pub(crate) fn new(budget: Option<PollBudget>) -> Self {
        let mut meter = Self {
            budget,
            spent: 0,
            since: None,
        };
        meter.refill();
        meter
    }

    /// Whether [`spend`](Self::spend) needs the time. Under loom, never: the models have
    /// no clock, and the time would make their runs differ; the events are still counted.
    pub(crate) fn needs_clock(&self) -> bool {
        !cfg!(loom) && self.budget.is_some()
    }

    /// A new poll begins (after a yield or a sleep): the budget is whole again.
    pub(crate) fn refill(&mut self) {
        self.spent = 0;
        self.since = self.needs_clock().then(Instant::now);
    }

    /// Counts `events` dispatched, at `now` (if the time is counted); returns whether the
    /// budget is spent and the driver should yield.
    pub(crate) fn spend(&mut self, events: u64, now: Option<Instant>) -> bool {
        let Some(budget) = self.budget else {
            return false;
        };
        self.spent = self.spent.saturating_add(events);
        if self.spent >= budget.events.max(1) {
            return true;
        }
        match (self.since, now) {
            (Some(since), Some(now)) => now.saturating_duration_since(since) >= budget.time,
            _ => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_budget_is_spent_by_events_or_by_time() {
        let budget = PollBudget {
            events: 10,
            time: Duration::from_secs(3_600),
        };
        let mut meter = Meter::new(Some(budget));
        let now = Some(Instant::now());
        assert!(!meter.spend(9, now));
        assert!(meter.spend(1, now));
        meter.refill();
        assert!(!meter.spend(9, now));

        let budget = PollBudget {
            events: u64::MAX,
            time: Duration::ZERO,
        };
        let mut meter = Meter::new(Some(budget));
        assert!(meter.spend(1, Some(Instant::now())));
    }

    #[test]
    fn without_a_budget_the_driver_never_yields() {
        let mut meter = Meter::new(None);
        assert!(!meter.needs_clock());
        assert!(!meter.spend(u64::MAX, Some(Instant::now())));
    }

    #[test]
    fn a_budget_of_zero_events_is_one() {
        let budget = PollBudget {
            events: 0,
            time: Duration::from_secs(3_600),
        };
        let mut meter = Meter::new(Some(budget));
        assert!(meter.spend(1, None));
    }
}
