//! The periodic report: the `calculate()` figures as one `LogEvent`.

use std::borrow::Cow;
use std::time::Duration;

use super::FinalStatistics;
use crate::sink::{Level, LogEvent};

/// The target of report events.
pub const REPORT_TARGET: &str = "mvx::stats";

/// The report of `figures`: an `Info` event with target [`REPORT_TARGET`], the configured
/// message, and one field per figure (durations in milliseconds, rates per minute).
///
/// Its `Display` is one line:
/// `<time> INFO mvx::stats: Statistics requests_finished=3 requests_failed=1 ...`.
pub(crate) fn report_event(message: Cow<'static, str>, figures: &FinalStatistics) -> LogEvent {
    let millis = |duration: Duration| duration.as_secs_f64() * 1e3;
    let mut event = LogEvent::new(Level::Info, REPORT_TARGET, message)
        .with_field("requests_finished", figures.requests_finished)
        .with_field("requests_failed", figures.requests_failed)
        .with_field("requests_total", figures.requests_total)
        .with_field("requests_in_progress", figures.requests_in_progress)
        .with_field("retries", figures.retries);
    if let Some(average) = figures.request_avg_finished_duration {
        event = event.with_field("request_avg_finished_duration_ms", millis(average));
    }
    if let Some(average) = figures.request_avg_failed_duration {
        event = event.with_field("request_avg_failed_duration_ms", millis(average));
    }
    event
        .with_field(
            "request_total_duration_ms",
            millis(figures.request_total_duration),
        )
        .with_field(
            "requests_finished_per_minute",
            figures.requests_finished_per_minute,
        )
        .with_field(
            "requests_failed_per_minute",
            figures.requests_failed_per_minute,
        )
        .with_field("runtime_ms", millis(figures.runtime))
        .with_field("retry_histogram", format!("{:?}", figures.retry_histogram))
}
