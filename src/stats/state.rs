//! `StatisticsState`: everything the statistics count, in the shape they are persisted in.

use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant, SystemTime};

use serde::{Deserialize, Serialize};

use super::event::{RequestId, StatsEvent};

/// The version of the persisted shape of [`StatisticsState`] that this mvx writes and reads.
pub const STATE_VERSION: u32 = 1;

/// Everything the statistics count, serialized as persisted.
///
/// The JSON shape is stable: one object with the field names below, durations as whole
/// microseconds (`..._us`), wall-clock times as milliseconds since the Unix epoch
/// (`..._unix_ms`, `null` when unset), status codes as string keys. `version` is
/// [`STATE_VERSION`]. Unknown fields are ignored; a missing field makes the state invalid.
///
/// Durations are measured from the caller's timestamps (the monotonic clock, taken in the
/// recording call) and kept with nanosecond precision in memory; they are persisted with
/// microsecond precision.
///
/// # Limits
///
/// No value, persisted or recorded, makes the statistics panic or fail:
///
/// - every count saturates at `u64::MAX` (`requests_total` of
///   [`FinalStatistics`](super::FinalStatistics) too), every sum of durations and the
///   runtime at `Duration::MAX`; a duration is persisted as at most `u64::MAX`
///   microseconds (some 584,000 years), and loads back as that;
/// - a persisted state loads whatever its numbers, as long as each is a value of its
///   field's type: 0 to `u64::MAX` for counts, durations and times, any JSON number for
///   the rates, 0 to 65,535 for status codes. A value out of its type (negative,
///   fractional or beyond `u64::MAX` where an integer belongs, a string, `null` where a
///   number is required) or another `version` makes the state corrupt, which is moved
///   aside (see the [module docs](super#persistence)). A time past what `SystemTime` holds
///   on the platform loads as unset.
///
/// # Examples
///
/// ```
/// use mvx::stats::StatisticsState;
///
/// let state = StatisticsState::default();
/// let json = serde_json::to_value(&state).unwrap();
/// assert_eq!(json["version"], 1);
/// assert_eq!(json["requests_finished"], 0);
/// assert_eq!(json["request_total_finished_duration_us"], 0);
/// assert_eq!(json["runtime_started_at_unix_ms"], serde_json::Value::Null);
/// let back: StatisticsState = serde_json::from_value(json).unwrap();
/// assert_eq!(back, state);
/// ```
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct StatisticsState {
    /// The version of this shape: [`STATE_VERSION`].
    pub version: u32,
    /// Requests that finished successfully (`record_request_processing_finish` of a
    /// request in progress).
    pub requests_finished: u64,
    /// Requests that failed for good (`record_request_processing_failure` of a request in
    /// progress).
    pub requests_failed: u64,
    /// Retries: every `record_request_retry`, and every start of a request already in
    /// progress.
    pub retries: u64,
    /// Finishes and failures of ids that were not in progress (never started, already
    /// ended, or started before a restart); they change no other count.
    pub requests_unmatched: u64,
    /// The sum of the durations of finished requests, each from its last start (or
    /// retry) to its finish.
    #[serde(rename = "request_total_finished_duration_us", with = "micros")]
    pub request_total_finished_duration: Duration,
    /// The shortest duration of a finished request; `None` before the first.
    #[serde(rename = "request_min_finished_duration_us", with = "opt_micros")]
    pub request_min_finished_duration: Option<Duration>,
    /// The longest duration of a finished request; `None` before the first.
    #[serde(rename = "request_max_finished_duration_us", with = "opt_micros")]
    pub request_max_finished_duration: Option<Duration>,
    /// The sum of the durations of failed requests, each from its last start (or retry)
    /// to its failure.
    #[serde(rename = "request_total_failed_duration_us", with = "micros")]
    pub request_total_failed_duration: Duration,
    /// The shortest duration of a failed request; `None` before the first.
    #[serde(rename = "request_min_failed_duration_us", with = "opt_micros")]
    pub request_min_failed_duration: Option<Duration>,
    /// The longest duration of a failed request; `None` before the first.
    #[serde(rename = "request_max_failed_duration_us", with = "opt_micros")]
    pub request_max_failed_duration: Option<Duration>,
    /// `requests_finished` divided by `runtime` in minutes, as of the last refresh (0 for a
    /// zero runtime).
    pub requests_finished_per_minute: f64,
    /// `requests_failed` divided by `runtime` in minutes, as of the last refresh (0 for a
    /// zero runtime).
    pub requests_failed_per_minute: f64,
    /// At index `n`: how many requests ended (finished or failed) after `n` retries.
    pub request_retry_histogram: Vec<u64>,
    /// How many responses came back with each status code (`register_status_code`).
    pub requests_with_status_code: BTreeMap<u16, u64>,
    /// How many requests each kind of error ended (`register_error`).
    pub errors: BTreeMap<String, u64>,
    /// How many retries each kind of error caused (`register_retry_error`).
    pub retry_errors: BTreeMap<String, u64>,
    /// When collection first started, over every run on this state.
    #[serde(rename = "runtime_started_at_unix_ms", with = "opt_unix_ms")]
    pub runtime_started_at: Option<SystemTime>,
    /// When the current (or latest) run started.
    #[serde(rename = "runtime_last_started_at_unix_ms", with = "opt_unix_ms")]
    pub runtime_last_started_at: Option<SystemTime>,
    /// When the latest run stopped; `None` while running.
    #[serde(rename = "runtime_finished_at_unix_ms", with = "opt_unix_ms")]
    pub runtime_finished_at: Option<SystemTime>,
    /// How long collection has been running, added up over every run on this state (the
    /// monotonic clock; a run killed before it stopped counts up to its last persist).
    #[serde(rename = "runtime_us", with = "micros")]
    pub runtime: Duration,
    /// When the state was last written to the store; `None` if never.
    #[serde(rename = "persisted_at_unix_ms", with = "opt_unix_ms")]
    pub persisted_at: Option<SystemTime>,
}

impl Default for StatisticsState {
    fn default() -> Self {
        Self {
            version: STATE_VERSION,
            requests_finished: 0,
            requests_failed: 0,
            retries: 0,
            requests_unmatched: 0,
            request_total_finished_duration: Duration::ZERO,
            request_min_finished_duration: None,
            request_max_finished_duration: None,
            request_total_failed_duration: Duration::ZERO,
            request_min_failed_duration: None,
            request_max_failed_duration: None,
            requests_finished_per_minute: 0.0,
            requests_failed_per_minute: 0.0,
            request_retry_histogram: Vec::new(),
            requests_with_status_code: BTreeMap::new(),
            errors: BTreeMap::new(),
            retry_errors: BTreeMap::new(),
            runtime_started_at: None,
            runtime_last_started_at: None,
            runtime_finished_at: None,
            runtime: Duration::ZERO,
            persisted_at: None,
        }
    }
}

/// `count` per minute of `runtime`; 0 for a zero runtime.
pub(crate) fn per_minute(count: u64, runtime: Duration) -> f64 {
    let minutes = runtime.as_secs_f64() / 60.0;
    if minutes > 0.0 {
        count as f64 / minutes
    } else {
        0.0
    }
}

/// The wall-clock time now, to the millisecond, as persisted.
pub(crate) fn now_millis() -> SystemTime {
    let now = SystemTime::now();
    let millis = now
        .duration_since(std::time::UNIX_EPOCH)
        .ok()
        .and_then(|since| u64::try_from(since.as_millis()).ok());
    millis
        .and_then(|millis| std::time::UNIX_EPOCH.checked_add(Duration::from_millis(millis)))
        .unwrap_or(now)
}

/// A request between its start and its end.
#[derive(Clone, Copy, Debug)]
struct InProgress {
    /// Its last start (or retry).
    since: Instant,
    retries: u32,
}

/// The current run: when it began on the monotonic clock, and the runtime before it.
#[derive(Clone, Copy, Debug)]
struct Run {
    started: Instant,
    runtime_before: Duration,
}

/// The driver's side: the state, and the requests in progress (which are not persisted).
#[derive(Debug, Default)]
pub(crate) struct Aggregator {
    pub(crate) state: StatisticsState,
    in_progress: HashMap<RequestId, InProgress>,
    run: Option<Run>,
}

impl Aggregator {
    /// Begins a run: runtime counts from now, on top of the runtime of earlier runs.
    pub(crate) fn begin_run(&mut self) {
        let now = now_millis();
        self.state.runtime_started_at.get_or_insert(now);
        self.state.runtime_last_started_at = Some(now);
        self.state.runtime_finished_at = None;
        self.run = Some(Run {
            started: Instant::now(),
            runtime_before: self.state.runtime,
        });
    }

    /// Ends the run: the runtime stops counting.
    pub(crate) fn end_run(&mut self) {
        self.refresh();
        if self.run.take().is_some() {
            self.state.runtime_finished_at = Some(now_millis());
        }
    }

    /// The runtime over every run, as of now.
    pub(crate) fn runtime(&self) -> Duration {
        match self.run {
            Some(run) => run.runtime_before.saturating_add(run.started.elapsed()),
            None => self.state.runtime,
        }
    }

    /// Brings `runtime` and the per-minute rates up to now.
    pub(crate) fn refresh(&mut self) {
        let runtime = self.runtime();
        let state = &mut self.state;
        state.runtime = runtime;
        state.requests_finished_per_minute = per_minute(state.requests_finished, runtime);
        state.requests_failed_per_minute = per_minute(state.requests_failed, runtime);
    }

    /// How many requests are in progress.
    pub(crate) fn in_progress(&self) -> u64 {
        self.in_progress.len() as u64
    }

    /// Back to the defaults; a run in progress starts over from now.
    pub(crate) fn reset(&mut self) {
        let running = self.run.is_some();
        self.state = StatisticsState::default();
        self.in_progress.clear();
        self.run = None;
        if running {
            self.begin_run();
        }
    }

    /// Applies one recording call.
    pub(crate) fn apply(&mut self, event: StatsEvent) {
        match event {
            StatsEvent::Start { id, at } => match self.in_progress.get_mut(&id) {
                Some(request) => retry(&mut self.state, request, at),
                None => {
                    self.in_progress.insert(
                        id,
                        InProgress {
                            since: at,
                            retries: 0,
                        },
                    );
                }
            },
            StatsEvent::Retry { id, at } => match self.in_progress.get_mut(&id) {
                Some(request) => retry(&mut self.state, request, at),
                None => {
                    // A request not seen starting here (started before a restart): it is
                    // tracked from this retry on.
                    saturate(&mut self.state.retries);
                    self.in_progress.insert(
                        id,
                        InProgress {
                            since: at,
                            retries: 1,
                        },
                    );
                }
            },
            StatsEvent::Finish { id, at } => match self.in_progress.remove(&id) {
                Some(request) => {
                    let duration = at.saturating_duration_since(request.since);
                    let state = &mut self.state;
                    saturate(&mut state.requests_finished);
                    add_up(&mut state.request_total_finished_duration, duration);
                    widen(
                        &mut state.request_min_finished_duration,
                        &mut state.request_max_finished_duration,
                        duration,
                    );
                    count_retries(&mut state.request_retry_histogram, request.retries);
                }
                None => saturate(&mut self.state.requests_unmatched),
            },
            StatsEvent::Failure { id, at } => match self.in_progress.remove(&id) {
                Some(request) => {
                    let duration = at.saturating_duration_since(request.since);
                    let state = &mut self.state;
                    saturate(&mut state.requests_failed);
                    add_up(&mut state.request_total_failed_duration, duration);
                    widen(
                        &mut state.request_min_failed_duration,
                        &mut state.request_max_failed_duration,
                        duration,
                    );
                    count_retries(&mut state.request_retry_histogram, request.retries);
                }
                None => saturate(&mut self.state.requests_unmatched),
            },
            StatsEvent::StatusCode(code) => {
                saturate(
                    self.state
                        .requests_with_status_code
                        .entry(code)
                        .or_default(),
                );
            }
            StatsEvent::Error { kind, retry } => {
                let counts = if retry {
                    &mut self.state.retry_errors
                } else {
                    &mut self.state.errors
                };
                // Allocates only the first time a kind is seen.
                match counts.get_mut(kind.as_ref()) {
                    Some(count) => saturate(count),
                    None => {
                        counts.insert(kind.into_owned(), 1);
                    }
                }
            }
        }
    }
}

/// One more in `count`, which stays at `u64::MAX` once there.
fn saturate(count: &mut u64) {
    *count = count.saturating_add(1);
}

/// `duration` more in `total`, which stays at `Duration::MAX` once there.
fn add_up(total: &mut Duration, duration: Duration) {
    *total = total.saturating_add(duration);
}

fn retry(state: &mut StatisticsState, request: &mut InProgress, at: Instant) {
    saturate(&mut state.retries);
    request.retries = request.retries.saturating_add(1);
    request.since = at;
}

fn widen(min: &mut Option<Duration>, max: &mut Option<Duration>, duration: Duration) {
    *min = Some(min.map_or(duration, |min| min.min(duration)));
    *max = Some(max.map_or(duration, |max| max.max(duration)));
}

fn count_retries(histogram: &mut Vec<u64>, retries: u32) {
    let index = retries as usize;
    if histogram.len() <= index {
        histogram.resize(index.saturating_add(1), 0);
    }
    saturate(&mut histogram[index]);
}

/// Durations as whole microseconds (saturating at `u64::MAX`).
mod micros {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    pub(super) fn serialize<S: Serializer>(duration: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u64(u64::try_from(duration.as_micros()).unwrap_or(u64::MAX))
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        u64::deserialize(d).map(Duration::from_micros)
    }
}

/// Optional durations as whole microseconds or `null`.
mod opt_micros {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    pub(super) fn serialize<S: Serializer>(
        duration: &Option<Duration>,
        s: S,
    ) -> Result<S::Ok, S::Error> {
        match duration {
            Some(duration) => super::micros::serialize(duration, s),
            None => s.serialize_none(),
        }
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(
        d: D,
    ) -> Result<Option<Duration>, D::Error> {
        Option::<u64>::deserialize(d).map(|micros| micros.map(Duration::from_micros))
    }
}

/// Optional wall-clock times as milliseconds since the Unix epoch, or `null`.
mod opt_unix_ms {
    use std::time::{Duration, SystemTime, UNIX_EPOCH};

    use serde::{Deserialize, Deserializer, Serializer};

    pub(super) fn serialize<S: Serializer>(
        time: &Option<SystemTime>,
        s: S,
    ) -> Result<S::Ok, S::Error> {
        match time {
            Some(time) => {
                let since = time.duration_since(UNIX_EPOCH).unwrap_or_default();
                s.serialize_u64(u64::try_from(since.as_millis()).unwrap_or(u64::MAX))
            }
            None => s.serialize_none(),
        }
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(
        d: D,
    ) -> Result<Option<SystemTime>, D::Error> {
        let millis = Option::<u64>::deserialize(d)?;
        Ok(millis.and_then(|millis| UNIX_EPOCH.checked_add(Duration::from_millis(millis))))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(base: Instant, millis: u64) -> Instant {
        base + Duration::from_millis(millis)
    }

    #[test]
    fn a_second_start_is_a_retry_timed_from_its_own_start() {
        let base = Instant::now();
        let mut aggregator = Aggregator::default();
        let id = RequestId::Number(1);
        aggregator.apply(StatsEvent::Start {
            id: id.clone(),
            at: at(base, 0),
        });
        aggregator.apply(StatsEvent::Start {
            id: id.clone(),
            at: at(base, 100),
        });
        aggregator.apply(StatsEvent::Retry {
            id: id.clone(),
            at: at(base, 150),
        });
        aggregator.apply(StatsEvent::Finish {
            id,
            at: at(base, 175),
        });
        let state = &aggregator.state;
        assert_eq!(state.retries, 2);
        assert_eq!(state.requests_finished, 1);
        assert_eq!(
            state.request_total_finished_duration,
            Duration::from_millis(25)
        );
        assert_eq!(state.request_retry_histogram, vec![0, 0, 1]);
        assert_eq!(aggregator.in_progress(), 0);
    }

    #[test]
    fn ends_without_a_start_are_counted_apart() {
        let mut aggregator = Aggregator::default();
        let now = Instant::now();
        aggregator.apply(StatsEvent::Finish {
            id: RequestId::from("never started"),
            at: now,
        });
        aggregator.apply(StatsEvent::Failure {
            id: RequestId::Number(9),
            at: now,
        });
        assert_eq!(aggregator.state.requests_unmatched, 2);
        assert_eq!(aggregator.state.requests_finished, 0);
        assert_eq!(aggregator.state.requests_failed, 0);
        assert!(aggregator.state.request_retry_histogram.is_empty());
    }

    #[test]
    fn runtime_adds_up_over_runs() {
        let mut aggregator = Aggregator::default();
        aggregator.state.runtime = Duration::from_secs(60);
        aggregator.state.requests_finished = 30;
        aggregator.begin_run();
        aggregator.end_run();
        let state = &aggregator.state;
        assert!(state.runtime >= Duration::from_secs(60));
        assert!(state.runtime_finished_at.is_some());
        assert!(state.requests_finished_per_minute <= 30.0);
        assert!(state.requests_finished_per_minute > 0.0);
        assert_eq!(per_minute(5, Duration::ZERO), 0.0);
        assert_eq!(per_minute(5, Duration::from_secs(30)), 10.0);
    }
}
