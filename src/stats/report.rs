//! The periodic report: the `calculate()` figures, to wherever [`ReportTo`] says (the
//! rules are in [`ReportTo`]'s docs).

use std::borrow::Cow;

use super::config::ReportTo;
use super::final_statistics::Figure;
use super::statistics::Inner;
use super::{FinalStatistics, StatsError};
use crate::ErrorReason;
use crate::queue::OverflowPolicy;
use crate::sink::{FieldValue, Level, LogEvent};
use crate::sync::lock;

/// The target of report events and records.
pub const REPORT_TARGET: &str = "mvx::stats";

/// Sends one report of the figures as of now; what goes wrong is kept in `last_error()`.
pub(crate) async fn report(inner: &Inner) {
    let message = inner.config.log_message.clone();
    let figures = inner.figures();
    let failed = match &inner.config.report_to {
        ReportTo::Off => None,
        ReportTo::Sink(sink) => {
            let event = report_event(message, &figures);
            let sent = match sink.config().overflow {
                OverflowPolicy::Block => sink.send(event).await,
                _ => sink.log(event),
            };
            sent.err().map(|error| StatsError::ReportRefused {
                reason: error.reason(),
            })
        }
        #[cfg(feature = "log")]
        ReportTo::Default | ReportTo::Log => to_log(&message, &figures),
        #[cfg(not(feature = "log"))]
        ReportTo::Default => to_stderr(inner, &message, &figures).await,
        ReportTo::Stderr => to_stderr(inner, &message, &figures).await,
    };
    if let Some(error) = failed {
        inner.record_error(error);
    }
}

/// The report as a [`LogEvent`]: an `Info` event with target [`REPORT_TARGET`], the
/// configured message, and one field per figure (durations in seconds; an average of
/// nothing left out).
///
/// Its `Display` is one line:
/// `<time> INFO mvx::stats: Statistics requests_finished=3 requests_failed=1 ...`.
pub(crate) fn report_event(message: Cow<'static, str>, figures: &FinalStatistics) -> LogEvent {
    let mut event = LogEvent::new(Level::Info, REPORT_TARGET, message);
    for (name, figure) in figures.fields() {
        let value = match figure {
            Figure::Count(count) => FieldValue::U64(count),
            Figure::Counts(_) => FieldValue::Str(figure.to_string().into()),
            Figure::Seconds(seconds) => FieldValue::F64(seconds),
            Figure::None => continue,
        };
        event = event.with_field(name, value);
    }
    event
}

/// One line on standard error, written on the blocking pool. The write is not cancelled
/// when the driver drops the report: the stop waits for it ([`finish_in_flight`]).
async fn to_stderr(inner: &Inner, message: &str, figures: &FinalStatistics) -> Option<StatsError> {
    use std::io::Write;

    let event = LogEvent::new(Level::Info, REPORT_TARGET, format!("{message} {figures}"));
    let line = format!("{event}\n");
    let (written_tx, written) = async_channel::bounded(1);
    *lock(&inner.report_in_flight) = Some(written.clone());
    blocking::unblock(move || {
        let mut stderr = std::io::stderr().lock();
        let result = stderr
            .write_all(line.as_bytes())
            .and_then(|()| stderr.flush());
        let _ = written_tx.try_send(result.is_ok());
    })
    .detach();
    // `Err`: the stop took the outcome (the statistics are ending).
    match written.recv().await {
        Ok(false) => Some(StatsError::ReportRefused {
            reason: ErrorReason::DispatchFailed,
        }),
        Ok(true) | Err(_) => None,
    }
}

/// Waits for a report still being written to standard error, so that the stop does not
/// cut it off.
pub(crate) async fn finish_in_flight(inner: &Inner) {
    let in_flight = lock(&inner.report_in_flight).take();
    if let Some(written) = in_flight {
        let _ = written.recv().await;
    }
}

/// `log::info!` with target [`REPORT_TARGET`], the figures in the message and as
/// key-values. A logger that panics is caught.
#[cfg(feature = "log")]
fn to_log(message: &str, figures: &FinalStatistics) -> Option<StatsError> {
    use std::panic::{AssertUnwindSafe, catch_unwind};

    use crate::error::{Cause, SinkError};
    use log::kv::Value;

    let metadata = log::Metadata::builder()
        .level(log::Level::Info)
        .target(REPORT_TARGET)
        .build();
    if log::Level::Info > log::max_level() || !log::logger().enabled(&metadata) {
        return None;
    }
    let fields = figures.fields();
    let histogram = fields[2].1.to_string();
    let key_values: Vec<(&str, Value<'_>)> = fields
        .iter()
        .map(|&(name, figure)| {
            let value = match figure {
                Figure::Count(count) => Value::from(count),
                Figure::Counts(_) => Value::from(histogram.as_str()),
                Figure::Seconds(seconds) => Value::from(seconds),
                Figure::None => Value::null(),
            };
            (name, value)
        })
        .collect();
    let logged = catch_unwind(AssertUnwindSafe(|| {
        log::logger().log(
            &log::Record::builder()
                .metadata(metadata)
                .args(format_args!("{message} {figures}"))
                .module_path_static(Some(module_path!()))
                .file_static(Some(file!()))
                .line(Some(line!()))
                .key_values(&key_values.as_slice())
                .build(),
        );
    }));
    logged
        .err()
        .map(|payload| StatsError::Recorder(SinkError::Unexpected(Cause::from_panic(payload))))
}
