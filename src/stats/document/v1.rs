//! The shape earlier versions of mvx persisted (snake_case keys, `"version": 1`, durations
//! in `..._us`, times in `..._unix_ms`), read and migrated to the state. Read only: mvx
//! writes Crawlee's document.

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime};

use serde::Deserialize;

use super::iso8601::time_from_micros;
use crate::stats::StatisticsState;

/// The document of version 1, every field required, each value exactly of its type.
#[derive(Deserialize)]
struct Version1 {
    #[allow(dead_code)] // Checked by the caller.
    version: u32,
    requests_finished: u64,
    requests_failed: u64,
    retries: u64,
    requests_unmatched: u64,
    request_total_finished_duration_us: u64,
    request_min_finished_duration_us: Option<u64>,
    request_max_finished_duration_us: Option<u64>,
    request_total_failed_duration_us: u64,
    request_min_failed_duration_us: Option<u64>,
    request_max_failed_duration_us: Option<u64>,
    #[allow(dead_code)] // Derived: recomputed.
    requests_finished_per_minute: f64,
    #[allow(dead_code)] // Derived: recomputed.
    requests_failed_per_minute: f64,
    request_retry_histogram: Vec<u64>,
    requests_with_status_code: BTreeMap<u16, u64>,
    errors: BTreeMap<String, u64>,
    retry_errors: BTreeMap<String, u64>,
    runtime_started_at_unix_ms: Option<u64>,
    runtime_last_started_at_unix_ms: Option<u64>,
    runtime_finished_at_unix_ms: Option<u64>,
    runtime_us: u64,
    persisted_at_unix_ms: Option<u64>,
}

/// Reads a document of version 1 (the caller checked `version`), as the rules of that
/// version had it: every field present, each of its type; unknown fields were ignored, and
/// still are.
pub(super) fn read(value: serde_json::Value) -> Result<StatisticsState, serde_json::Error> {
    let old = Version1::deserialize(value)?;
    let micros = Duration::from_micros;
    let time = |millis: Option<u64>| -> Option<SystemTime> {
        millis.and_then(|millis| time_from_micros(i128::from(millis) * 1_000))
    };
    let mut histogram = old.request_retry_histogram;
    if histogram.is_empty() {
        histogram.push(0);
    }
    Ok(StatisticsState {
        stats_id: None,
        requests_finished: old.requests_finished,
        requests_failed: old.requests_failed,
        // Crawlee's meaning, from what version 1 kept: the requests that ended after one
        // retry or more.
        requests_retries: histogram
            .iter()
            .skip(1)
            .fold(0u64, |sum, &count| sum.saturating_add(count)),
        requests_failed_per_minute: 0,
        requests_finished_per_minute: 0,
        request_min_duration: old.request_min_finished_duration_us.map(micros),
        request_max_duration: old.request_max_finished_duration_us.map(micros),
        request_total_failed_duration: micros(old.request_total_failed_duration_us),
        request_total_finished_duration: micros(old.request_total_finished_duration_us),
        crawler_started_at: time(old.runtime_started_at_unix_ms),
        crawler_last_started_at: time(old.runtime_last_started_at_unix_ms),
        crawler_finished_at: time(old.runtime_finished_at_unix_ms),
        errors: old.errors,
        retry_errors: old.retry_errors,
        requests_with_status_code: old.requests_with_status_code,
        stats_persisted_at: time(old.persisted_at_unix_ms),
        request_retry_histogram: histogram,
        crawler_runtime: micros(old.runtime_us),
        retry_attempts: old.retries,
        requests_unmatched: old.requests_unmatched,
        request_min_failed_duration: old.request_min_failed_duration_us.map(micros),
        request_max_failed_duration: old.request_max_failed_duration_us.map(micros),
    })
}
