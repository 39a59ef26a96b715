//! The persisted document: Crawlee's `StatisticsState` JSON, with mvx's additions under
//! the key `mvx`; and the shape earlier versions of mvx wrote (`v1`), read and migrated.
//! The rules are stated in the `stats` module docs, "The persisted document".
//!
//! (For maintainers: one concept, the document both ways; some 750 lines, a third of them
//! its tests.)

mod iso8601;
mod v1;

use std::time::{Duration, SystemTime};

use serde::de::Error as _;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::{Map, Value, json};

use super::rounding;
use super::{FinalStatistics, StatisticsState};

/// The version of mvx's additions to the persisted document (`mvx.version`) that this mvx
/// writes and reads. Documents without `mvx` (written by Crawlee) load too, and so do the
/// whole-document shape of version 1 that earlier versions of mvx wrote (`"version": 1`
/// at the top), migrated on load.
pub const STATE_VERSION: u32 = 2;

/// Why a persisted document is not a valid state.
#[derive(Debug, thiserror::Error)]
pub(crate) enum DocumentError {
    /// Not a JSON object.
    #[error("the state is not a JSON object: {found}")]
    NotAnObject { found: String },
    /// A version of the document (or of mvx's additions) this mvx does not read.
    #[error(
        "state version {found} is not supported (this mvx reads version {STATE_VERSION} and version 1)"
    )]
    UnsupportedVersion { found: String },
    /// A key with a value out of its type.
    #[error("{key}: expected {expected}, found {found}")]
    Invalid {
        key: String,
        expected: &'static str,
        found: String,
    },
    /// A document of version 1 that is not valid by that version's rules.
    #[error("invalid state of version 1")]
    Version1(#[source] serde_json::Error),
}

/// A value, shortened for an error message.
fn shown(value: &Value) -> String {
    let mut text = value.to_string();
    if text.len() > 60 {
        let mut end = 57;
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        text.truncate(end);
        text.push_str("...");
    }
    text
}

// ---------------------------------------------------------------------------------------
// Writing
// ---------------------------------------------------------------------------------------

/// The document of `state`, as Crawlee writes it, with mvx's additions under `mvx`.
pub(crate) fn write(state: &StatisticsState) -> Value {
    let millis = |duration: Duration| json!(rounding::millis(duration));
    let optional_millis = |duration: Option<Duration>| duration.map_or(Value::Null, millis);
    let time = |time: Option<SystemTime>| {
        time.and_then(iso8601::format_time)
            .map_or(Value::Null, Value::String)
    };
    let micros = |duration: Duration| json!(rounding::micros(duration));
    let optional_micros = |duration: Option<Duration>| duration.map_or(Value::Null, micros);
    let figures = FinalStatistics::from_state(state);
    let status_codes: Map<String, Value> = state
        .requests_with_status_code
        .iter()
        .map(|(code, count)| (code.to_string(), json!(count)))
        .collect();
    json!({
        "statsId": state.stats_id,
        "requestsFinished": state.requests_finished,
        "requestsFailed": state.requests_failed,
        "requestsRetries": state.requests_retries,
        "requestsFailedPerMinute": state.requests_failed_per_minute as f64,
        "requestsFinishedPerMinute": state.requests_finished_per_minute as f64,
        "requestMinDurationMillis": optional_millis(state.request_min_duration),
        "requestMaxDurationMillis": optional_millis(state.request_max_duration),
        "requestTotalFailedDurationMillis": millis(state.request_total_failed_duration),
        "requestTotalFinishedDurationMillis": millis(state.request_total_finished_duration),
        "crawlerStartedAt": time(state.crawler_started_at),
        "crawlerLastStartTimestamp": time(state.crawler_last_started_at),
        "crawlerFinishedAt": time(state.crawler_finished_at),
        "errors": state.errors,
        "retryErrors": state.retry_errors,
        "requestsWithStatusCode": status_codes,
        "statsPersistedAt": time(state.stats_persisted_at),
        "requestRetryHistogram": figures.retry_histogram,
        "crawlerRuntimeMillis": millis(state.crawler_runtime),
        "requestTotalDurationMillis": millis(figures.request_total_duration),
        "requestAvgFailedDurationMillis": optional_millis(figures.request_avg_failed_duration),
        "requestAvgFinishedDurationMillis": optional_millis(figures.request_avg_finished_duration),
        "requestsTotal": figures.requests_total,
        "mvx": {
            "version": STATE_VERSION,
            "retryAttempts": state.retry_attempts,
            "requestsUnmatched": state.requests_unmatched,
            "micros": {
                "requestMinDuration": optional_micros(state.request_min_duration),
                "requestMaxDuration": optional_micros(state.request_max_duration),
                "requestTotalFailedDuration": micros(state.request_total_failed_duration),
                "requestTotalFinishedDuration": micros(state.request_total_finished_duration),
                "crawlerRuntime": micros(state.crawler_runtime),
                "requestMinFailedDuration": optional_micros(state.request_min_failed_duration),
                "requestMaxFailedDuration": optional_micros(state.request_max_failed_duration),
            },
        },
    })
}

impl Serialize for StatisticsState {
    /// Writes the persisted document (see the [module docs](super#the-persisted-document)).
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        write(self).serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for StatisticsState {
    /// Reads a persisted document: Crawlee's, mvx's, or the shape of version 1 (see the
    /// [module docs](super#the-persisted-document)).
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        read(Value::deserialize(deserializer)?).map_err(D::Error::custom)
    }
}

// ---------------------------------------------------------------------------------------
// Reading
// ---------------------------------------------------------------------------------------

/// Reads a persisted document.
pub(crate) fn read(value: Value) -> Result<StatisticsState, DocumentError> {
    let Value::Object(object) = value else {
        return Err(DocumentError::NotAnObject {
            found: shown(&value),
        });
    };
    match object.get("version") {
        None => read_crawlee(&object),
        Some(version) if version.as_u64() == Some(1) => {
            v1::read(Value::Object(object)).map_err(DocumentError::Version1)
        }
        Some(version) => Err(DocumentError::UnsupportedVersion {
            found: shown(version),
        }),
    }
}

/// The keys of one JSON object, read by type; `key` names them in errors.
struct Keys<'a> {
    object: &'a Map<String, Value>,
    /// The path of the object, `""` at the top, `"mvx.micros."` inside.
    prefix: &'static str,
}

impl<'a> Keys<'a> {
    fn invalid<T>(
        &self,
        key: &str,
        expected: &'static str,
        found: &Value,
    ) -> Result<T, DocumentError> {
        Err(DocumentError::Invalid {
            key: format!("{}{key}", self.prefix),
            expected,
            found: shown(found),
        })
    }

    /// The value of `key`, unless it is missing.
    fn get(&self, key: &str) -> Option<&'a Value> {
        self.object.get(key)
    }

    /// A count: an integer from 0 to `u64::MAX`; `None` when missing.
    fn count(&self, key: &str) -> Result<Option<u64>, DocumentError> {
        match self.get(key) {
            None => Ok(None),
            Some(value) => match value.as_u64() {
                Some(count) => Ok(Some(count)),
                None => self.invalid(key, COUNT, value),
            },
        }
    }

    /// A count or `null`; `None` when missing or `null`.
    fn optional_count(&self, key: &str) -> Result<Option<u64>, DocumentError> {
        match self.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(_) => self.count(key),
        }
    }

    /// A number (of any sign and size), checked and not kept: a derived figure.
    fn number(&self, key: &str) -> Result<(), DocumentError> {
        match self.get(key) {
            None | Some(Value::Number(_)) => Ok(()),
            Some(value) => self.invalid(key, "a number", value),
        }
    }

    /// A duration in milliseconds, in any form Crawlee writes; `None` when missing.
    fn duration(&self, key: &str) -> Result<Option<Duration>, DocumentError> {
        match self.get(key) {
            None => Ok(None),
            Some(value) => match millis_duration(value) {
                Some(duration) => Ok(Some(duration)),
                None => self.invalid(key, DURATION, value),
            },
        }
    }

    /// A duration in milliseconds or `null`; `None` when missing or `null`.
    fn optional_duration(&self, key: &str) -> Result<Option<Duration>, DocumentError> {
        match self.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(_) => self.duration(key),
        }
    }

    /// A time, or `null`; `None` when missing, `null`, or outside years 1 to 9999.
    fn time(&self, key: &str) -> Result<Option<SystemTime>, DocumentError> {
        match self.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(value) => match time(value) {
                Some(time) => Ok(time),
                None => self.invalid(key, TIME, value),
            },
        }
    }

    /// A list of counts; `None` when missing.
    fn counts(&self, key: &str) -> Result<Option<Vec<u64>>, DocumentError> {
        match self.get(key) {
            None => Ok(None),
            Some(Value::Array(items)) => items
                .iter()
                .map(|item| {
                    item.as_u64()
                        .map_or_else(|| self.invalid(key, COUNTS, item), Ok)
                })
                .collect::<Result<_, _>>()
                .map(Some),
            Some(value) => self.invalid(key, COUNTS, value),
        }
    }

    /// An object of counts by name; empty when missing.
    fn counts_by_name(
        &self,
        key: &str,
    ) -> Result<std::collections::BTreeMap<String, u64>, DocumentError> {
        const EXPECTED: &str = "an object of counts by name";
        match self.get(key) {
            None => Ok(Default::default()),
            Some(Value::Object(entries)) => entries
                .iter()
                .map(|(name, count)| match count.as_u64() {
                    Some(count) => Ok((name.clone(), count)),
                    None => self.invalid(key, EXPECTED, count),
                })
                .collect(),
            Some(value) => self.invalid(key, EXPECTED, value),
        }
    }

    /// An object of counts by status code (decimal, 0 to 65535); empty when missing.
    fn counts_by_status(
        &self,
        key: &str,
    ) -> Result<std::collections::BTreeMap<u16, u64>, DocumentError> {
        const EXPECTED: &str = "an object of counts by status code (0 to 65535)";
        match self.get(key) {
            None => Ok(Default::default()),
            Some(Value::Object(entries)) => entries
                .iter()
                .map(|(code, count)| {
                    let code = code
                        .bytes()
                        .all(|b| b.is_ascii_digit())
                        .then(|| code.parse::<u16>().ok())
                        .flatten();
                    match (code, count.as_u64()) {
                        (Some(code), Some(count)) => Ok((code, count)),
                        _ => self.invalid(key, EXPECTED, &Value::Object(entries.clone())),
                    }
                })
                .collect(),
            Some(value) => self.invalid(key, EXPECTED, value),
        }
    }
}

const COUNT: &str = "a count (an integer from 0 to 18446744073709551615)";
const COUNTS: &str = "a list of counts";
const DURATION: &str =
    "a duration: milliseconds (a number from 0, or one in a string) or an ISO 8601 duration";
const TIME: &str = "an ISO 8601 time, or seconds or milliseconds since 1970";

/// A duration in milliseconds as Crawlee writes or reads one: a number, a number in a
/// string, or an ISO 8601 duration; at most `u64::MAX` µs. `None` for anything else,
/// or a negative or non-finite number.
fn millis_duration(value: &Value) -> Option<Duration> {
    let from_millis = |millis: f64| {
        // `as u64` saturates at `u64::MAX` µs.
        (millis.is_finite() && millis >= 0.0)
            .then(|| Duration::from_micros((millis * 1000.0).round_ties_even() as u64))
    };
    match value {
        Value::Number(number) => match number.as_u64() {
            Some(millis) => Some(Duration::from_micros(millis.saturating_mul(1000))),
            None => from_millis(number.as_f64()?),
        },
        Value::String(text) => match text.parse::<f64>() {
            Ok(millis) => from_millis(millis),
            Err(_) => iso8601::parse_duration(text).ok(),
        },
        _ => None,
    }
}

/// A time as Crawlee's models read one: an ISO 8601 string, or a number of seconds since
/// 1970 (milliseconds past 2 × 10¹⁰, as pydantic tells them apart). `Some(None)`: valid,
/// but outside years 1 to 9999. `None`: not a time.
fn time(value: &Value) -> Option<Option<SystemTime>> {
    match value {
        Value::String(text) => iso8601::parse_time(text).ok(),
        Value::Number(number) => {
            let number = number.as_f64()?;
            if !number.is_finite() {
                return None;
            }
            let micros = if number.abs() > 2e10 {
                number * 1e3
            } else {
                number * 1e6
            };
            // Far outside years 1 to 9999 either way: `as i128` saturates.
            Some(iso8601::time_from_micros(micros.round() as i128))
        }
        _ => None,
    }
}

/// Reads Crawlee's document, and mvx's additions if it has them.
fn read_crawlee(object: &Map<String, Value>) -> Result<StatisticsState, DocumentError> {
    let keys = Keys { object, prefix: "" };
    let mut state = StatisticsState {
        stats_id: keys.optional_count("statsId")?,
        requests_finished: keys.count("requestsFinished")?.unwrap_or(0),
        requests_failed: keys.count("requestsFailed")?.unwrap_or(0),
        requests_retries: keys.count("requestsRetries")?.unwrap_or(0),
        request_min_duration: keys.optional_duration("requestMinDurationMillis")?,
        request_max_duration: keys.optional_duration("requestMaxDurationMillis")?,
        request_total_failed_duration: keys
            .duration("requestTotalFailedDurationMillis")?
            .unwrap_or_default(),
        request_total_finished_duration: keys
            .duration("requestTotalFinishedDurationMillis")?
            .unwrap_or_default(),
        crawler_started_at: keys.time("crawlerStartedAt")?,
        crawler_last_started_at: keys.time("crawlerLastStartTimestamp")?,
        crawler_finished_at: keys.time("crawlerFinishedAt")?,
        errors: keys.counts_by_name("errors")?,
        retry_errors: keys.counts_by_name("retryErrors")?,
        requests_with_status_code: keys.counts_by_status("requestsWithStatusCode")?,
        stats_persisted_at: keys.time("statsPersistedAt")?,
        crawler_runtime: keys.duration("crawlerRuntimeMillis")?.unwrap_or_default(),
        ..StatisticsState::default()
    };
    if let Some(histogram) = keys.counts("requestRetryHistogram")? {
        if !histogram.is_empty() {
            state.request_retry_histogram = histogram;
        }
    }
    // Derived figures: checked, and recomputed rather than read.
    for derived in [
        "requestsFailedPerMinute",
        "requestsFinishedPerMinute",
        "requestsTotal",
    ] {
        keys.number(derived)?;
    }
    for derived in [
        "requestTotalDurationMillis",
        "requestAvgFailedDurationMillis",
        "requestAvgFinishedDurationMillis",
    ] {
        keys.optional_duration(derived)?;
    }
    match object.get("mvx") {
        None => {
            // Written by Crawlee: every retry of the requests that ended is in the
            // histogram.
            state.retry_attempts = state
                .request_retry_histogram
                .iter()
                .enumerate()
                .fold(0u64, |sum, (retries, &count)| {
                    sum.saturating_add(count.saturating_mul(retries as u64))
                });
        }
        Some(Value::Object(mvx)) => read_additions(mvx, &mut state)?,
        Some(value) => return keys.invalid("mvx", "an object", value),
    }
    Ok(state)
}

/// Reads mvx's additions into `state`.
fn read_additions(
    mvx: &Map<String, Value>,
    state: &mut StatisticsState,
) -> Result<(), DocumentError> {
    let keys = Keys {
        object: mvx,
        prefix: "mvx.",
    };
    match mvx.get("version") {
        Some(version) if version.as_u64() == Some(u64::from(STATE_VERSION)) => {}
        Some(version) => {
            return Err(DocumentError::UnsupportedVersion {
                found: shown(version),
            });
        }
        None => return keys.invalid("version", "2", &Value::Null),
    }
    state.retry_attempts = keys.count("retryAttempts")?.unwrap_or(0);
    state.requests_unmatched = keys.count("requestsUnmatched")?.unwrap_or(0);
    let micros = match mvx.get("micros") {
        None => return Ok(()),
        Some(Value::Object(micros)) => Keys {
            object: micros,
            prefix: "mvx.micros.",
        },
        Some(value) => return keys.invalid("micros", "an object", value),
    };
    let exact = |key: &str| -> Result<Option<Duration>, DocumentError> {
        Ok(micros.optional_count(key)?.map(Duration::from_micros))
    };
    // The microseconds of a duration Crawlee keeps in milliseconds are taken only where
    // they agree with the milliseconds (someone else may have changed those since).
    let refine = |kept: &mut Duration, exact: Option<Duration>| {
        if let Some(exact) = exact {
            if rounding::millis(exact) == rounding::millis(*kept) {
                *kept = exact;
            }
        }
    };
    refine(
        &mut state.request_total_failed_duration,
        exact("requestTotalFailedDuration")?,
    );
    refine(
        &mut state.request_total_finished_duration,
        exact("requestTotalFinishedDuration")?,
    );
    refine(&mut state.crawler_runtime, exact("crawlerRuntime")?);
    if let Some(kept) = state.request_min_duration.as_mut() {
        refine(kept, exact("requestMinDuration")?);
    }
    if let Some(kept) = state.request_max_duration.as_mut() {
        refine(kept, exact("requestMaxDuration")?);
    }
    state.request_min_failed_duration = exact("requestMinFailedDuration")?;
    state.request_max_failed_duration = exact("requestMaxFailedDuration")?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What Crawlee 1.11 wrote for one finished and one failed request (its `crawlerRuntimeMillis`
    /// an ISO 8601 duration).
    fn written_by_crawlee() -> Value {
        json!({
            "statsId": 0,
            "requestsFinished": 1,
            "requestsFailed": 1,
            "requestsRetries": 1,
            "requestsFailedPerMinute": 0.0,
            "requestsFinishedPerMinute": 0.0,
            "requestMinDurationMillis": 0.0,
            "requestMaxDurationMillis": 0.0,
            "requestTotalFailedDurationMillis": 50.0,
            "requestTotalFinishedDurationMillis": 0.0,
            "crawlerStartedAt": "2026-12-06T05:51:35.607896Z",
            "crawlerLastStartTimestamp": "2026-12-06T05:51:35.607896Z",
            "crawlerFinishedAt": "2026-12-06T05:51:35.658843Z",
            "errors": {},
            "retryErrors": {},
            "requestsWithStatusCode": {"200": 1},
            "statsPersistedAt": "2026-12-06T05:51:35.658915Z",
            "requestRetryHistogram": [1, 1],
            "crawlerRuntimeMillis": "PT0.050947S",
            "requestTotalDurationMillis": 50.0,
            "requestAvgFailedDurationMillis": 50.0,
            "requestAvgFinishedDurationMillis": 0.0,
            "requestsTotal": 2
        })
    }

    #[test]
    fn a_document_crawlee_wrote_loads() {
        let state = read(written_by_crawlee()).unwrap();
        assert_eq!(state.stats_id, Some(0));
        assert_eq!((state.requests_finished, state.requests_failed), (1, 1));
        assert_eq!(state.requests_retries, 1);
        assert_eq!(state.retry_attempts, 1, "from the histogram");
        assert_eq!(
            state.request_total_failed_duration,
            Duration::from_millis(50)
        );
        assert_eq!(state.request_min_duration, Some(Duration::ZERO));
        assert_eq!(state.crawler_runtime, Duration::from_micros(50_947));
        assert_eq!(state.request_retry_histogram, vec![1, 1]);
        assert_eq!(state.requests_with_status_code[&200], 1);
        assert_eq!(
            state
                .crawler_finished_at
                .and_then(iso8601::format_time)
                .as_deref(),
            Some("2026-12-06T05:51:35.658843Z")
        );
        assert_eq!(state.request_min_failed_duration, None);
    }

    #[test]
    fn every_form_of_a_duration_crawlee_writes_loads() {
        for (form, micros) in [
            (json!("PT2.001627S"), 2_001_627),
            (json!(2001), 2_001_000),
            (json!(2001.0), 2_001_000),
            (json!(2001.627), 2_001_627),
            (json!("2001"), 2_001_000),
            (json!("2001.5"), 2_001_500),
            (json!(u64::MAX), u64::MAX),
            (json!(1e300), u64::MAX),
        ] {
            let mut document = written_by_crawlee();
            document["crawlerRuntimeMillis"] = form.clone();
            let state = read(document).unwrap();
            assert_eq!(
                state.crawler_runtime,
                Duration::from_micros(micros),
                "{form}"
            );
        }
        for bad in [
            json!(-1),
            json!("-PT1S"),
            json!("soon"),
            json!(null),
            json!(true),
            json!("NaN"),
        ] {
            let mut document = written_by_crawlee();
            document["crawlerRuntimeMillis"] = bad.clone();
            let error = read(document).unwrap_err();
            assert!(
                error
                    .to_string()
                    .starts_with("crawlerRuntimeMillis: expected a duration"),
                "{bad}: {error}"
            );
        }
    }

    #[test]
    fn what_mvx_writes_loads_back_exactly() {
        let state = StatisticsState {
            stats_id: Some(7),
            requests_finished: 3,
            requests_failed: 2,
            requests_retries: 1,
            request_min_duration: Some(Duration::from_micros(1_499)),
            request_max_duration: Some(Duration::from_micros(2_500)),
            request_total_finished_duration: Duration::from_micros(5_999),
            request_total_failed_duration: Duration::from_micros(10_001),
            request_min_failed_duration: Some(Duration::from_micros(5_000)),
            request_max_failed_duration: Some(Duration::from_micros(5_001)),
            crawler_started_at: iso8601::time_from_micros(1_796_111_495_607_896),
            crawler_last_started_at: iso8601::time_from_micros(1_796_111_495_607_896),
            crawler_finished_at: iso8601::time_from_micros(1_796_111_495_700_000),
            stats_persisted_at: iso8601::time_from_micros(1_796_111_495_700_001),
            crawler_runtime: Duration::from_micros(92_104),
            request_retry_histogram: vec![4, 1],
            retry_attempts: 3,
            requests_unmatched: 2,
            requests_with_status_code: [(200, 3), (500, 2)].into(),
            errors: [("timeout".to_owned(), 2)].into(),
            ..StatisticsState::default()
        };
        let document = write(&state);
        assert_eq!(document["requestMinDurationMillis"], 1.0);
        assert_eq!(document["requestMaxDurationMillis"], 2.0, "ties to even");
        assert_eq!(document["requestTotalFinishedDurationMillis"], 6.0);
        assert_eq!(document["requestAvgFinishedDurationMillis"], 2.0);
        assert_eq!(document["crawlerRuntimeMillis"], 92.0);
        assert_eq!(document["crawlerFinishedAt"], "2026-12-01T07:51:35.700000Z");
        assert_eq!(
            document["requestsWithStatusCode"],
            json!({"200": 3, "500": 2})
        );
        assert_eq!(document["mvx"]["micros"]["crawlerRuntime"], 92_104);
        assert_eq!(read(document.clone()).unwrap(), state);

        // Milliseconds changed by someone else win over mvx's microseconds.
        let mut changed = document;
        changed["requestTotalFinishedDurationMillis"] = json!(7.0);
        let read_back = read(changed).unwrap();
        assert_eq!(
            read_back.request_total_finished_duration,
            Duration::from_millis(7)
        );
        assert_eq!(read_back.crawler_runtime, Duration::from_micros(92_104));
    }

    #[test]
    fn documents_out_of_shape_are_refused_with_the_key_named() {
        for (key, bad, message) in [
            (
                "requestsFinished",
                json!(-1),
                "requestsFinished: expected a count",
            ),
            (
                "requestsFinished",
                json!(1.5),
                "requestsFinished: expected a count",
            ),
            (
                "requestRetryHistogram",
                json!([1, "x"]),
                "requestRetryHistogram: expected a list of counts",
            ),
            (
                "requestsWithStatusCode",
                json!({"abc": 1}),
                "requestsWithStatusCode: expected an object of counts by status code",
            ),
            (
                "requestsWithStatusCode",
                json!({"65536": 1}),
                "requestsWithStatusCode: expected",
            ),
            (
                "errors",
                json!({"e": {"nested": 1}}),
                "errors: expected an object of counts by name",
            ),
            (
                "crawlerStartedAt",
                json!("yesterday"),
                "crawlerStartedAt: expected an ISO 8601 time",
            ),
            (
                "requestsTotal",
                json!("2"),
                "requestsTotal: expected a number",
            ),
            ("mvx", json!([]), "mvx: expected an object"),
            (
                "mvx",
                json!({"version": 3}),
                "state version 3 is not supported",
            ),
            (
                "mvx",
                json!({"version": 2, "retryAttempts": -1}),
                "mvx.retryAttempts: expected a count",
            ),
            ("version", json!(99), "state version 99 is not supported"),
        ] {
            let mut document = written_by_crawlee();
            document[key] = bad;
            let error = read(document).unwrap_err();
            assert!(error.to_string().starts_with(message), "{key}: {error}");
        }
        assert!(matches!(
            read(json!([1, 2])),
            Err(DocumentError::NotAnObject { .. })
        ));
        // Crawlee's loader gives every missing key its default; so does mvx.
        assert_eq!(read(json!({})).unwrap(), StatisticsState::default());
    }

    #[test]
    fn a_document_of_version_1_is_migrated() {
        let old = json!({
            "version": 1,
            "requests_finished": 7,
            "requests_failed": 3,
            "retries": 5,
            "requests_unmatched": 1,
            "request_total_finished_duration_us": 7_500,
            "request_min_finished_duration_us": 500,
            "request_max_finished_duration_us": 2_000,
            "request_total_failed_duration_us": 3_000,
            "request_min_failed_duration_us": null,
            "request_max_failed_duration_us": 1_000,
            "requests_finished_per_minute": 1.5,
            "requests_failed_per_minute": 0.5,
            "request_retry_histogram": [6, 3, 1],
            "requests_with_status_code": {"200": 7},
            "errors": {"timeout": 3},
            "retry_errors": {},
            "runtime_started_at_unix_ms": 1_796_111_495_607u64,
            "runtime_last_started_at_unix_ms": 1_796_111_495_607u64,
            "runtime_finished_at_unix_ms": null,
            "runtime_us": 60_000_000,
            "persisted_at_unix_ms": 1_796_111_495_700u64,
        });
        let state = read(old).unwrap();
        assert_eq!((state.requests_finished, state.requests_failed), (7, 3));
        assert_eq!(state.retry_attempts, 5);
        assert_eq!(
            state.requests_retries, 4,
            "requests that ended after a retry"
        );
        assert_eq!(state.requests_unmatched, 1);
        assert_eq!(state.request_min_duration, Some(Duration::from_micros(500)));
        assert_eq!(
            state.request_max_failed_duration,
            Some(Duration::from_millis(1))
        );
        assert_eq!(state.crawler_runtime, Duration::from_secs(60));
        assert_eq!(
            state
                .crawler_started_at
                .and_then(iso8601::format_time)
                .as_deref(),
            Some("2026-12-01T07:51:35.607000Z")
        );
        assert_eq!(state.stats_id, None);
        // Written back in Crawlee's shape.
        assert_eq!(write(&state)["requestsRetries"], 4);
    }
}
