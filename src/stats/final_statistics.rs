//! `FinalStatistics`: the figures derived from the state by `calculate()`.

use std::fmt;
use std::time::Duration;

use serde::ser::{Serialize, SerializeMap, Serializer};

use super::rounding;
use super::state::StatisticsState;

/// The figures [`Statistics::calculate`](super::Statistics::calculate) derives from the
/// state, at one moment: Crawlee's `FinalStatistics`, with its names, meanings and
/// rounding, then mvx's additions.
///
/// Every count covers every run on the persisted state (a resumed process continues the
/// counts of the one before it), and so does `crawler_runtime`, so the per-minute rates are
/// over the whole collection, not only the current process.
///
/// As JSON (`Serialize`) it is what Crawlee's `str(final_statistics)` prints — durations
/// as seconds, `null` for an average of nothing — followed by mvx's additions. Its
/// [`Display`](fmt::Display) is the same figures on one line, `name=value` separated by
/// spaces (the line of the periodic report).
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use mvx::stats::{FinalStatistics, StatisticsState};
///
/// let state = StatisticsState {
///     requests_finished: 5,
///     requests_failed: 5,
///     crawler_runtime: Duration::from_secs(120),
///     ..StatisticsState::default()
/// };
/// let figures = FinalStatistics::from_state(&state);
/// // 2.5 a minute: rounded (ties to even) for finished requests, rounded down for failed.
/// assert_eq!((figures.requests_finished_per_minute, figures.requests_failed_per_minute), (2, 2));
/// assert_eq!(figures.retry_histogram, vec![0]);
/// assert_eq!(serde_json::to_value(&figures)?["crawler_runtime"], 120.0);
/// # Ok::<(), serde_json::Error>(())
/// ```
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub struct FinalStatistics {
    /// Requests that finished successfully.
    pub requests_finished: u64,
    /// Requests that failed for good.
    pub requests_failed: u64,
    /// At index `n`: how many requests ended (finished or failed) after `n` retries; `[0]`
    /// before the first ended.
    pub retry_histogram: Vec<u64>,
    /// The total duration of failed requests divided by `requests_failed`, to the nearest
    /// microsecond (ties to even); `None` when no request failed.
    pub request_avg_failed_duration: Option<Duration>,
    /// The total duration of finished requests divided by `requests_finished`, to the
    /// nearest microsecond (ties to even); `None` when no request finished.
    pub request_avg_finished_duration: Option<Duration>,
    /// `requests_finished` per minute of `crawler_runtime`, rounded to the nearest whole
    /// number (ties to even); 0 for a zero runtime.
    pub requests_finished_per_minute: u64,
    /// `requests_failed` per minute of `crawler_runtime`, rounded down; 0 for a zero
    /// runtime.
    pub requests_failed_per_minute: u64,
    /// The total duration of finished requests plus that of failed requests (at most
    /// `Duration::MAX`: it saturates).
    pub request_total_duration: Duration,
    /// `requests_finished + requests_failed` (at most `u64::MAX`: it saturates).
    pub requests_total: u64,
    /// How long collection has run, added up over every run.
    pub crawler_runtime: Duration,
    /// mvx's addition: requests started and not ended yet, in this process (requests in
    /// progress are not persisted).
    pub requests_in_progress: u64,
    /// mvx's addition: requests retried at least once, counted when they ended
    /// ([`StatisticsState::requests_retries`]).
    pub requests_retries: u64,
    /// mvx's addition: every retry, counted when it happened
    /// ([`StatisticsState::retry_attempts`]).
    pub retry_attempts: u64,
}

impl FinalStatistics {
    /// The figures of `state`, whose `crawler_runtime` is taken as it is, with no request
    /// in progress: what [`Statistics::calculate`](super::Statistics::calculate) returns
    /// for statistics on that state.
    pub fn from_state(state: &StatisticsState) -> Self {
        let (requests_finished_per_minute, requests_failed_per_minute) = rounding::per_minute(
            state.requests_finished,
            state.requests_failed,
            state.crawler_runtime,
        );
        let mut retry_histogram = state.request_retry_histogram.clone();
        if retry_histogram.is_empty() {
            retry_histogram.push(0);
        }
        Self {
            requests_finished: state.requests_finished,
            requests_failed: state.requests_failed,
            retry_histogram,
            request_avg_failed_duration: rounding::average(
                state.request_total_failed_duration,
                state.requests_failed,
            ),
            request_avg_finished_duration: rounding::average(
                state.request_total_finished_duration,
                state.requests_finished,
            ),
            requests_finished_per_minute,
            requests_failed_per_minute,
            request_total_duration: state
                .request_total_finished_duration
                .saturating_add(state.request_total_failed_duration),
            requests_total: state
                .requests_finished
                .saturating_add(state.requests_failed),
            crawler_runtime: state.crawler_runtime,
            requests_in_progress: 0,
            requests_retries: state.requests_retries,
            retry_attempts: state.retry_attempts,
        }
    }

    /// The same figures with `requests_in_progress`.
    pub(crate) fn with_in_progress(mut self, in_progress: u64) -> Self {
        self.requests_in_progress = in_progress;
        self
    }

    /// Each figure by name, durations in seconds, in the order Crawlee's
    /// `FinalStatistics.to_dict()` gives them, then mvx's additions.
    pub(crate) fn fields(&self) -> [(&'static str, Figure<'_>); 13] {
        let seconds = |duration: Duration| Figure::Seconds(rounding::seconds(duration));
        let optional = |duration: Option<Duration>| duration.map_or(Figure::None, seconds);
        [
            ("requests_finished", Figure::Count(self.requests_finished)),
            ("requests_failed", Figure::Count(self.requests_failed)),
            ("retry_histogram", Figure::Counts(&self.retry_histogram)),
            (
                "request_avg_failed_duration",
                optional(self.request_avg_failed_duration),
            ),
            (
                "request_avg_finished_duration",
                optional(self.request_avg_finished_duration),
            ),
            (
                "requests_finished_per_minute",
                Figure::Count(self.requests_finished_per_minute),
            ),
            (
                "requests_failed_per_minute",
                Figure::Count(self.requests_failed_per_minute),
            ),
            (
                "request_total_duration",
                seconds(self.request_total_duration),
            ),
            ("requests_total", Figure::Count(self.requests_total)),
            ("crawler_runtime", seconds(self.crawler_runtime)),
            (
                "requests_in_progress",
                Figure::Count(self.requests_in_progress),
            ),
            ("requests_retries", Figure::Count(self.requests_retries)),
            ("retry_attempts", Figure::Count(self.retry_attempts)),
        ]
    }
}

/// One figure, as reported.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Figure<'a> {
    Count(u64),
    Counts(&'a [u64]),
    Seconds(f64),
    /// An average of nothing.
    None,
}

impl Serialize for Figure<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            Self::Count(count) => serializer.serialize_u64(*count),
            Self::Counts(counts) => counts.serialize(serializer),
            Self::Seconds(seconds) => serializer.serialize_f64(*seconds),
            Self::None => serializer.serialize_none(),
        }
    }
}

impl fmt::Display for Figure<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Count(count) => write!(f, "{count}"),
            Self::Counts(counts) => {
                // No spaces: the figures are `name=value` pairs separated by spaces.
                f.write_str("[")?;
                for (index, count) in counts.iter().enumerate() {
                    if index > 0 {
                        f.write_str(",")?;
                    }
                    write!(f, "{count}")?;
                }
                f.write_str("]")
            }
            Self::Seconds(seconds) => write!(f, "{seconds}"),
            Self::None => f.write_str("None"),
        }
    }
}

impl Serialize for FinalStatistics {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let fields = self.fields();
        let mut map = serializer.serialize_map(Some(fields.len()))?;
        for (name, figure) in fields {
            map.serialize_entry(name, &figure)?;
        }
        map.end()
    }
}

impl fmt::Display for FinalStatistics {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (index, (name, figure)) in self.fields().into_iter().enumerate() {
            if index > 0 {
                f.write_str(" ")?;
            }
            write!(f, "{name}={figure}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn figures_derive_from_the_state() {
        let state = StatisticsState {
            requests_finished: 3,
            requests_failed: 1,
            requests_retries: 1,
            retry_attempts: 2,
            request_total_finished_duration: Duration::from_millis(300),
            request_total_failed_duration: Duration::from_millis(50),
            request_retry_histogram: vec![3, 0, 1],
            crawler_runtime: Duration::from_secs(30),
            ..StatisticsState::default()
        };
        let figures = FinalStatistics::from_state(&state).with_in_progress(5);
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
        assert_eq!(figures.requests_finished_per_minute, 6);
        assert_eq!(figures.requests_failed_per_minute, 2);
        assert_eq!(
            figures.to_string(),
            "requests_finished=3 requests_failed=1 retry_histogram=[3,0,1] \
             request_avg_failed_duration=0.05 request_avg_finished_duration=0.1 \
             requests_finished_per_minute=6 requests_failed_per_minute=2 \
             request_total_duration=0.35 requests_total=4 crawler_runtime=30 \
             requests_in_progress=5 requests_retries=1 retry_attempts=2"
        );
        assert_eq!(
            serde_json::to_string(&figures).unwrap(),
            "{\"requests_finished\":3,\"requests_failed\":1,\"retry_histogram\":[3,0,1],\
             \"request_avg_failed_duration\":0.05,\"request_avg_finished_duration\":0.1,\
             \"requests_finished_per_minute\":6,\"requests_failed_per_minute\":2,\
             \"request_total_duration\":0.35,\"requests_total\":4,\"crawler_runtime\":30.0,\
             \"requests_in_progress\":5,\"requests_retries\":1,\"retry_attempts\":2}"
        );
    }

    #[test]
    fn no_requests_give_crawlee_s_empty_figures() {
        let figures = FinalStatistics::from_state(&StatisticsState {
            request_retry_histogram: Vec::new(),
            ..StatisticsState::default()
        });
        assert_eq!(figures.retry_histogram, vec![0]);
        assert_eq!(figures.request_avg_finished_duration, None);
        let json = serde_json::to_value(&figures).unwrap();
        assert_eq!(json["request_avg_failed_duration"], serde_json::Value::Null);
        assert_eq!(json["requests_finished_per_minute"], 0);
    }
}
