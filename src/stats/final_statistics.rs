//! `FinalStatistics`: the figures derived from the state by `calculate()`.

use std::fmt;
use std::time::Duration;

use super::state::{StatisticsState, per_minute};

/// The figures [`Statistics::calculate`](super::Statistics::calculate) derives from the
/// state, at one moment.
///
/// Every count covers every run on the persisted state (a resumed process continues the
/// counts of the one before it), and so does `runtime`, so the per-minute rates are over
/// the whole collection, not only the current process.
///
/// Its [`Display`](fmt::Display) is the one-line summary of the periodic report:
/// `requests_finished=.. requests_failed=.. ...`, durations in milliseconds.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub struct FinalStatistics {
    /// Requests that finished successfully.
    pub requests_finished: u64,
    /// Requests that failed for good.
    pub requests_failed: u64,
    /// `requests_finished + requests_failed` (at most `u64::MAX`: it saturates).
    pub requests_total: u64,
    /// Requests started and not ended yet, in this process (requests in progress are not
    /// persisted).
    pub requests_in_progress: u64,
    /// Retries recorded.
    pub retries: u64,
    /// The total duration of finished requests divided by `requests_finished`, rounded
    /// down to the nanosecond; `None` when no request finished.
    pub request_avg_finished_duration: Option<Duration>,
    /// The total duration of failed requests divided by `requests_failed`, rounded down to
    /// the nanosecond; `None` when no request failed.
    pub request_avg_failed_duration: Option<Duration>,
    /// The total duration of finished requests plus that of failed requests (at most
    /// `Duration::MAX`: it saturates).
    pub request_total_duration: Duration,
    /// `requests_finished` divided by `runtime` in minutes (0 for a zero runtime).
    pub requests_finished_per_minute: f64,
    /// `requests_failed` divided by `runtime` in minutes (0 for a zero runtime).
    pub requests_failed_per_minute: f64,
    /// How long collection has run, added up over every run.
    pub runtime: Duration,
    /// At index `n`: how many requests ended (finished or failed) after `n` retries.
    pub retry_histogram: Vec<u64>,
}

impl FinalStatistics {
    /// Derives the figures from a state whose `runtime` is current.
    pub(crate) fn from_state(state: &StatisticsState, in_progress: u64) -> Self {
        Self {
            requests_finished: state.requests_finished,
            requests_failed: state.requests_failed,
            requests_total: state
                .requests_finished
                .saturating_add(state.requests_failed),
            requests_in_progress: in_progress,
            retries: state.retries,
            request_avg_finished_duration: average(
                state.request_total_finished_duration,
                state.requests_finished,
            ),
            request_avg_failed_duration: average(
                state.request_total_failed_duration,
                state.requests_failed,
            ),
            request_total_duration: state
                .request_total_finished_duration
                .saturating_add(state.request_total_failed_duration),
            requests_finished_per_minute: per_minute(state.requests_finished, state.runtime),
            requests_failed_per_minute: per_minute(state.requests_failed, state.runtime),
            runtime: state.runtime,
            retry_histogram: state.request_retry_histogram.clone(),
        }
    }
}

/// `total / count`, rounded down to the nanosecond; `None` for no count.
fn average(total: Duration, count: u64) -> Option<Duration> {
    const NANOS_PER_SEC: u128 = 1_000_000_000;
    let nanos = total.as_nanos().checked_div(u128::from(count))?;
    // At most `total`, so the seconds fit in a `u64` and this never saturates.
    let secs = u64::try_from(nanos / NANOS_PER_SEC).unwrap_or(u64::MAX);
    let subsec_nanos = u32::try_from(nanos % NANOS_PER_SEC).unwrap_or(0);
    Some(Duration::new(secs, subsec_nanos))
}

impl fmt::Display for FinalStatistics {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let millis = |duration: Option<Duration>| duration.map_or(0.0, |d| d.as_secs_f64() * 1e3);
        write!(
            f,
            "requests_finished={} requests_failed={} requests_total={} requests_in_progress={} \
             retries={} request_avg_finished_duration_ms={:.3} request_avg_failed_duration_ms={:.3} \
             request_total_duration_ms={:.3} requests_finished_per_minute={:.2} \
             requests_failed_per_minute={:.2} runtime_ms={:.3} retry_histogram={:?}",
            self.requests_finished,
            self.requests_failed,
            self.requests_total,
            self.requests_in_progress,
            self.retries,
            millis(self.request_avg_finished_duration),
            millis(self.request_avg_failed_duration),
            millis(Some(self.request_total_duration)),
            self.requests_finished_per_minute,
            self.requests_failed_per_minute,
            millis(Some(self.runtime)),
            self.retry_histogram,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn averages_round_down_and_need_a_count() {
        assert_eq!(
            average(Duration::from_nanos(10), 3),
            Some(Duration::from_nanos(3))
        );
        assert_eq!(average(Duration::from_secs(1), 0), None);
        // Past `u64::MAX` nanoseconds, to the nanosecond.
        assert_eq!(
            average(Duration::MAX, 2),
            Some(Duration::new(u64::MAX / 2, 999_999_999))
        );
        assert_eq!(average(Duration::MAX, 1), Some(Duration::MAX));
    }

    #[test]
    fn figures_derive_from_the_state() {
        let state = StatisticsState {
            requests_finished: 3,
            requests_failed: 1,
            retries: 2,
            request_total_finished_duration: Duration::from_millis(300),
            request_total_failed_duration: Duration::from_millis(50),
            request_retry_histogram: vec![2, 2],
            runtime: Duration::from_secs(30),
            ..StatisticsState::default()
        };
        let figures = FinalStatistics::from_state(&state, 5);
        assert_eq!(figures.requests_total, 4);
        assert_eq!(figures.requests_in_progress, 5);
        assert_eq!(
            figures.request_avg_finished_duration,
            Some(Duration::from_millis(100))
        );
        assert_eq!(
            figures.request_avg_failed_duration,
            Some(Duration::from_millis(50))
        );
        assert_eq!(figures.request_total_duration, Duration::from_millis(350));
        assert_eq!(figures.requests_finished_per_minute, 6.0);
        assert_eq!(figures.requests_failed_per_minute, 2.0);
        assert_eq!(
            figures.to_string(),
            "requests_finished=3 requests_failed=1 requests_total=4 requests_in_progress=5 \
             retries=2 request_avg_finished_duration_ms=100.000 \
             request_avg_failed_duration_ms=50.000 request_total_duration_ms=350.000 \
             requests_finished_per_minute=6.00 requests_failed_per_minute=2.00 \
             runtime_ms=30000.000 retry_histogram=[2, 2]"
        );
    }
}
