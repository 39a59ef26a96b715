//! `StatisticsState`: everything the statistics count — Crawlee's `StatisticsState`, field
//! for field, and mvx's additions.

use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant, SystemTime};

use super::event::{RequestId, StatsEvent};
use super::rounding;

/// Everything the statistics count: Crawlee's `StatisticsState`, with its names and
/// meanings, then mvx's additions.
///
/// It is persisted as the JSON document Crawlee writes (camelCase keys, durations in whole
/// milliseconds, times in ISO 8601, mvx's additions under the key `mvx`): `Serialize` and
/// `Deserialize` write and read that document, and read the shape earlier versions of mvx
/// wrote too. The document, and what each form of each key loads as, is described in the
/// [module docs](super#the-persisted-document).
///
/// Durations are measured from the caller's timestamps (the monotonic clock, taken in the
/// recording call), each request's rounded up to the whole microsecond, as Crawlee does.
///
/// # Limits
///
/// No value, persisted or recorded, makes the statistics panic or fail: every count
/// saturates at `u64::MAX` (`requests_total` of [`FinalStatistics`](super::FinalStatistics)
/// too), every sum of durations and the runtime at `Duration::MAX`; a duration is
/// persisted as at most `u64::MAX` microseconds (some 584,000 years), and loads back as
/// that. What a persisted document may hold is in the [module docs](super#the-persisted-document).
///
/// # Examples
///
/// ```
/// use mvx::stats::StatisticsState;
///
/// let state = StatisticsState::default();
/// let json = serde_json::to_value(&state).unwrap();
/// assert_eq!(json["requestsFinished"], 0);
/// assert_eq!(json["requestTotalFinishedDurationMillis"], 0.0);
/// assert_eq!(json["requestRetryHistogram"], serde_json::json!([0]));
/// assert_eq!(json["crawlerStartedAt"], serde_json::Value::Null);
/// assert_eq!(json["mvx"]["version"], 2);
/// let back: StatisticsState = serde_json::from_value(json).unwrap();
/// assert_eq!(back, state);
/// ```
#[derive(Clone, Debug, PartialEq)]
pub struct StatisticsState {
    /// The id of the statistics that wrote the state (Crawlee's `stats_id`): the
    /// [`Statistics::id`](super::Statistics::id) of a fresh state, the persisted one of a
    /// loaded state (`None` if it had none).
    pub stats_id: Option<u64>,
    /// Requests that finished successfully (`record_request_processing_finish` of a
    /// request in progress).
    pub requests_finished: u64,
    /// Requests that failed for good (`record_request_processing_failure` of a request in
    /// progress).
    pub requests_failed: u64,
    /// Requests that were retried at least once, counted when they end (finish or fail):
    /// Crawlee's `requests_retries`. Every retry is counted in
    /// [`retry_attempts`](Self::retry_attempts).
    pub requests_retries: u64,
    /// `requests_failed` per minute of `crawler_runtime`, rounded down, as of the last
    /// refresh (as [`FinalStatistics::requests_failed_per_minute`](super::FinalStatistics::requests_failed_per_minute)).
    pub requests_failed_per_minute: u64,
    /// `requests_finished` per minute of `crawler_runtime`, rounded to the nearest whole
    /// number, as of the last refresh (as
    /// [`FinalStatistics::requests_finished_per_minute`](super::FinalStatistics::requests_finished_per_minute)).
    pub requests_finished_per_minute: u64,
    /// The shortest duration of a finished request; `None` before the first.
    pub request_min_duration: Option<Duration>,
    /// The longest duration of a finished request; `None` before the first.
    pub request_max_duration: Option<Duration>,
    /// The sum of the durations of failed requests, each from its last start (or retry)
    /// to its failure.
    pub request_total_failed_duration: Duration,
    /// The sum of the durations of finished requests, each from its last start (or
    /// retry) to its finish.
    pub request_total_finished_duration: Duration,
    /// When collection first started, over every run on this state.
    pub crawler_started_at: Option<SystemTime>,
    /// When the current (or latest) run started.
    pub crawler_last_started_at: Option<SystemTime>,
    /// When the latest run stopped; `None` while running.
    pub crawler_finished_at: Option<SystemTime>,
    /// How many requests each kind of error ended (`register_error`).
    pub errors: BTreeMap<String, u64>,
    /// How many retries each kind of error caused (`register_retry_error`).
    pub retry_errors: BTreeMap<String, u64>,
    /// How many responses came back with each status code (`register_status_code`).
    pub requests_with_status_code: BTreeMap<u16, u64>,
    /// When the state was last written to the store; `None` if never.
    pub stats_persisted_at: Option<SystemTime>,
    /// At index `n`: how many requests ended (finished or failed) after `n` retries. Never
    /// empty: `[0]` before the first request ends, as in Crawlee.
    pub request_retry_histogram: Vec<u64>,
    /// How long collection has been running, added up over every run on this state (on the
    /// monotonic clock; a run killed before it stopped counts up to its last save).
    pub crawler_runtime: Duration,
    /// mvx's addition: every retry, counted when it happens — each start of a request
    /// already in progress and each `record_request_retry` — whether or not the request
    /// has ended since.
    pub retry_attempts: u64,
    /// mvx's addition: finishes and failures of ids that were not in progress (never
    /// started, already ended, or started before a restart); they change no other count.
    /// Crawlee ignores them.
    pub requests_unmatched: u64,
    /// mvx's addition: the shortest duration of a failed request; `None` before the first.
    pub request_min_failed_duration: Option<Duration>,
    /// mvx's addition: the longest duration of a failed request; `None` before the first.
    pub request_max_failed_duration: Option<Duration>,
}

impl Default for StatisticsState {
    fn default() -> Self {
        Self {
            stats_id: None,
            requests_finished: 0,
            requests_failed: 0,
            requests_retries: 0,
            requests_failed_per_minute: 0,
            requests_finished_per_minute: 0,
            request_min_duration: None,
            request_max_duration: None,
            request_total_failed_duration: Duration::ZERO,
            request_total_finished_duration: Duration::ZERO,
            crawler_started_at: None,
            crawler_last_started_at: None,
            crawler_finished_at: None,
            errors: BTreeMap::new(),
            retry_errors: BTreeMap::new(),
            requests_with_status_code: BTreeMap::new(),
            stats_persisted_at: None,
            request_retry_histogram: vec![0],
            crawler_runtime: Duration::ZERO,
            retry_attempts: 0,
            requests_unmatched: 0,
            request_min_failed_duration: None,
            request_max_failed_duration: None,
        }
    }
}

impl StatisticsState {
    /// The default state of statistics `stats_id`.
    pub(crate) fn with_id(stats_id: u64) -> Self {
        Self {
            stats_id: Some(stats_id),
            ..Self::default()
        }
    }
}

/// The wall-clock time now, to the microsecond (what Crawlee's times hold).
pub(crate) fn now_micros() -> SystemTime {
    let now = SystemTime::now();
    let micros = now
        .duration_since(std::time::UNIX_EPOCH)
        .ok()
        .and_then(|since| u64::try_from(since.as_micros()).ok());
    micros
        .and_then(|micros| std::time::UNIX_EPOCH.checked_add(Duration::from_micros(micros)))
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
#[derive(Debug)]
pub(crate) struct Aggregator {
    pub(crate) state: StatisticsState,
    /// The id of the statistics, for the state a reset starts from.
    stats_id: u64,
    in_progress: HashMap<RequestId, InProgress>,
    run: Option<Run>,
}

impl Aggregator {
    /// The aggregator of statistics `stats_id`, on their default state.
    pub(crate) fn new(stats_id: u64) -> Self {
        Self {
            state: StatisticsState::with_id(stats_id),
            stats_id,
            in_progress: HashMap::new(),
            run: None,
        }
    }

    /// Begins a run: runtime counts from now, on top of the runtime of earlier runs.
    pub(crate) fn begin_run(&mut self) {
        let now = now_micros();
        self.state.crawler_started_at.get_or_insert(now);
        self.state.crawler_last_started_at = Some(now);
        self.state.crawler_finished_at = None;
        self.run = Some(Run {
            started: Instant::now(),
            runtime_before: self.state.crawler_runtime,
        });
    }

    /// Ends the run: the runtime stops counting.
    pub(crate) fn end_run(&mut self) {
        self.refresh();
        if self.run.take().is_some() {
            self.state.crawler_finished_at = Some(now_micros());
        }
    }

    /// The runtime over every run, as of now.
    pub(crate) fn runtime(&self) -> Duration {
        match self.run {
            Some(run) => run.runtime_before.saturating_add(run.started.elapsed()),
            None => self.state.crawler_runtime,
        }
    }

    /// Brings `crawler_runtime` and the per-minute rates up to now.
    pub(crate) fn refresh(&mut self) {
        let runtime = self.runtime();
        let state = &mut self.state;
        state.crawler_runtime = runtime;
        (
            state.requests_finished_per_minute,
            state.requests_failed_per_minute,
        ) = rounding::per_minute(state.requests_finished, state.requests_failed, runtime);
    }

    /// How many requests are in progress.
    pub(crate) fn in_progress(&self) -> u64 {
        self.in_progress.len() as u64
    }

    /// Back to the defaults; a run in progress starts over from now.
    pub(crate) fn reset(&mut self) {
        let running = self.run.is_some();
        self.state = StatisticsState::with_id(self.stats_id);
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
                    saturate(&mut self.state.retry_attempts);
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
                    let duration =
                        rounding::request_duration(at.saturating_duration_since(request.since));
                    let state = &mut self.state;
                    saturate(&mut state.requests_finished);
                    add_up(&mut state.request_total_finished_duration, duration);
                    widen(
                        &mut state.request_min_duration,
                        &mut state.request_max_duration,
                        duration,
                    );
                    ended(state, request.retries);
                }
                None => saturate(&mut self.state.requests_unmatched),
            },
            StatsEvent::Failure { id, at } => match self.in_progress.remove(&id) {
                Some(request) => {
                    let duration =
                        rounding::request_duration(at.saturating_duration_since(request.since));
                    let state = &mut self.state;
                    saturate(&mut state.requests_failed);
                    add_up(&mut state.request_total_failed_duration, duration);
                    widen(
                        &mut state.request_min_failed_duration,
                        &mut state.request_max_failed_duration,
                        duration,
                    );
                    ended(state, request.retries);
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
    saturate(&mut state.retry_attempts);
    request.retries = request.retries.saturating_add(1);
    request.since = at;
}

fn widen(min: &mut Option<Duration>, max: &mut Option<Duration>, duration: Duration) {
    *min = Some(min.map_or(duration, |min| min.min(duration)));
    *max = Some(max.map_or(duration, |max| max.max(duration)));
}

/// A request ended after `retries` retries: counted in the histogram, and in
/// `requests_retries` if it was retried at all (Crawlee's `_save_retry_count_for_request`).
fn ended(state: &mut StatisticsState, retries: u32) {
    if retries > 0 {
        saturate(&mut state.requests_retries);
    }
    let histogram = &mut state.request_retry_histogram;
    let index = retries as usize;
    if histogram.len() <= index {
        histogram.resize(index.saturating_add(1), 0);
    }
    saturate(&mut histogram[index]);
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
        let mut aggregator = Aggregator::new(0);
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
        assert_eq!(state.retry_attempts, 2);
        assert_eq!(state.requests_retries, 1, "one request, retried");
        assert_eq!(state.requests_finished, 1);
        assert_eq!(
            state.request_total_finished_duration,
            Duration::from_millis(25)
        );
        assert_eq!(state.request_retry_histogram, vec![0, 0, 1]);
        assert_eq!(aggregator.in_progress(), 0);
    }

    #[test]
    fn requests_retries_are_counted_when_the_request_ends() {
        let base = Instant::now();
        let mut aggregator = Aggregator::new(0);
        let start = |aggregator: &mut Aggregator, id: u64| {
            aggregator.apply(StatsEvent::Start {
                id: RequestId::Number(id),
                at: base,
            })
        };
        start(&mut aggregator, 1);
        start(&mut aggregator, 1);
        start(&mut aggregator, 1);
        assert_eq!(
            (
                aggregator.state.retry_attempts,
                aggregator.state.requests_retries
            ),
            (2, 0),
            "in progress: not counted yet"
        );
        aggregator.apply(StatsEvent::Failure {
            id: RequestId::Number(1),
            at: base,
        });
        assert_eq!(
            (
                aggregator.state.retry_attempts,
                aggregator.state.requests_retries
            ),
            (2, 1)
        );
    }

    #[test]
    fn ends_without_a_start_are_counted_apart() {
        let mut aggregator = Aggregator::new(3);
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
        assert_eq!(aggregator.state.request_retry_histogram, vec![0]);
        assert_eq!(aggregator.state.stats_id, Some(3));
        aggregator.reset();
        assert_eq!(aggregator.state, StatisticsState::with_id(3));
    }

    #[test]
    fn runtime_adds_up_over_runs() {
        let mut aggregator = Aggregator::new(0);
        aggregator.state.crawler_runtime = Duration::from_secs(60);
        aggregator.state.requests_finished = 30;
        aggregator.begin_run();
        aggregator.end_run();
        let state = &aggregator.state;
        assert!(state.crawler_runtime >= Duration::from_secs(60));
        assert!(state.crawler_finished_at.is_some());
        assert_eq!(state.requests_finished_per_minute, 30);
    }
}
