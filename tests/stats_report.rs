//! The periodic report: once at the start, then every `log_interval`, the `calculate()`
//! figures as one line through any `AsyncSink<LogEvent>`, with the configured message; or
//! as a line on standard error (checked in a child process: this test binary, re-executed).
#![cfg(not(loom))]

#[path = "support/watchdog.rs"]
mod watchdog;

use std::sync::{Mutex, mpsc};
use std::time::Duration;

use futures::executor::block_on;
use mvx::BoxError;
use mvx::sink::{Dispatch, FieldValue, Level, LogEvent, SinkConfig};
use mvx::stats::{REPORT_TARGET, ReportTo, Statistics, StatsConfig};
use watchdog::within_guard;

/// A log backend that hands every event to the test.
struct Channel(Mutex<mpsc::Sender<LogEvent>>);

impl Dispatch<LogEvent> for Channel {
    async fn dispatch(&mut self, event: LogEvent) -> Result<(), BoxError> {
        self.0.lock().unwrap().send(event)?;
        Ok(())
    }
}

fn field<'a>(event: &'a LogEvent, name: &str) -> Option<&'a FieldValue> {
    event
        .fields
        .iter()
        .find(|(field, _)| field == name)
        .map(|(_, value)| value)
}

#[test]
fn the_figures_are_reported_every_log_interval_with_the_configured_message() {
    within_guard(|| {
        let (events_tx, events) = mpsc::channel();
        let (log, log_terminator) =
            mvx::rt::thread::create(Channel(Mutex::new(events_tx)), SinkConfig::default()).unwrap();
        let config = StatsConfig::default()
            .log_to(log.clone())
            .log_interval(Duration::from_millis(20))
            .log_message("Crawler request statistics");
        let (stats, driver) = Statistics::new(config).unwrap();
        let driver = std::thread::spawn(move || block_on(driver));
        stats.start().wait().unwrap();
        for id in 0..4u64 {
            stats.record_request_processing_start(id).unwrap();
        }
        for id in 0..3u64 {
            stats.record_request_processing_finish(id).unwrap();
        }
        stats.record_request_retry(3u64).unwrap();
        stats.record_request_processing_failure(3u64).unwrap();
        stats.calculate_blocking().unwrap();

        // Reports taken before the barrier may miss calls; a later one has them all.
        let report = loop {
            let event = events.recv().unwrap();
            if field(&event, "requests_total") == Some(&FieldValue::U64(4)) {
                break event;
            }
        };
        assert_eq!(report.level, Level::Info);
        assert_eq!(report.target, REPORT_TARGET);
        assert_eq!(report.message, "Crawler request statistics");
        assert_eq!(
            field(&report, "requests_finished"),
            Some(&FieldValue::U64(3))
        );
        assert_eq!(field(&report, "requests_failed"), Some(&FieldValue::U64(1)));
        assert_eq!(
            field(&report, "requests_retries"),
            Some(&FieldValue::U64(1))
        );
        assert_eq!(field(&report, "retry_attempts"), Some(&FieldValue::U64(1)));
        assert_eq!(
            field(&report, "retry_histogram"),
            Some(&FieldValue::Str("[3,1]".into()))
        );
        // A duration in seconds, measured on the machine's clock.
        assert!(
            matches!(
                field(&report, "request_avg_failed_duration"),
                Some(FieldValue::F64(seconds)) if *seconds >= 0.0
            ),
            "{report:?}"
        );
        let line = report.to_string();
        assert!(!line.contains('\n'), "{line}");
        assert!(
            line.contains(
                " INFO mvx::stats: Crawler request statistics requests_finished=3 \
                 requests_failed=1 retry_histogram=\"[3,1]\" "
            ),
            "{line}"
        );
        // And it goes on.
        events.recv().unwrap();

        stats.stop().wait().unwrap();
        driver.join().unwrap();
        assert_eq!(stats.last_error().map(|error| error.to_string()), None);
        log_terminator.terminate().unwrap();
        assert!(log.stats().delivered >= 2);
    });
}

#[test]
fn a_zero_log_interval_is_refused() {
    let error = Statistics::new(StatsConfig::default().log_interval(Duration::ZERO)).unwrap_err();
    assert!(
        matches!(
            error,
            mvx::stats::StatsError::InvalidConfig {
                field: "log_interval",
                problem: "must not be zero"
            }
        ),
        "{error:?}"
    );
    assert_eq!(error.reason(), mvx::stats::StatsReason::InvalidArgument);
}

#[test]
fn the_first_report_goes_out_at_the_start() {
    within_guard(|| {
        let (events_tx, events) = mpsc::channel();
        let (log, log_terminator) =
            mvx::rt::thread::create(Channel(Mutex::new(events_tx)), SinkConfig::default()).unwrap();
        let config = StatsConfig::default()
            .log_to(log)
            .log_interval(Duration::from_secs(3600));
        let (stats, driver) = Statistics::new(config).unwrap();
        let driver = std::thread::spawn(move || block_on(driver));
        stats.start().wait().unwrap();
        // Within the hour: at the start.
        let report = events.recv().unwrap();
        assert_eq!(field(&report, "requests_total"), Some(&FieldValue::U64(0)));
        assert_eq!(
            field(&report, "retry_histogram"),
            Some(&FieldValue::Str("[0]".into()))
        );
        assert_eq!(field(&report, "request_avg_finished_duration"), None);
        stats.stop().wait().unwrap();
        driver.join().unwrap();
        log_terminator.terminate().unwrap();
        assert_eq!(events.try_iter().count(), 0);
    });
}

#[test]
fn no_report_when_turned_off() {
    within_guard(|| {
        let (stats, driver) =
            Statistics::new(StatsConfig::default().report_to(ReportTo::Off)).unwrap();
        let driver = std::thread::spawn(move || block_on(driver));
        stats.start().wait().unwrap();
        stats.calculate_blocking().unwrap();
        stats.stop().wait().unwrap();
        driver.join().unwrap();
        assert!(stats.last_error().is_none(), "{:?}", stats.last_error());
    });
}

/// Set in the child process: which report destination it runs with.
const CHILD: &str = "MVX_STATS_REPORT_CHILD";

/// Runs this test binary again, only `test`, with [`CHILD`] set to `destination`; its
/// standard error.
fn child_stderr(test: &str, destination: &str) -> String {
    let output = std::process::Command::new(std::env::current_exe().unwrap())
        .args(["--exact", test, "--nocapture", "--test-threads=1"])
        .env(CHILD, destination)
        .output()
        .unwrap();
    assert!(output.status.success(), "{output:?}");
    String::from_utf8(output.stderr).unwrap()
}

/// In the child: statistics reporting to `report_to` start, record one request, stop.
fn child_reports(report_to: ReportTo) {
    let config = StatsConfig::default()
        .report_to(report_to)
        .log_message("Crawler statistics")
        .log_interval(Duration::from_secs(3600));
    let (stats, driver) = Statistics::new(config).unwrap();
    let driver = std::thread::spawn(move || block_on(driver));
    stats.start().wait().unwrap();
    stats.record_request_processing_start(1u64).unwrap();
    stats.record_request_processing_finish(1u64).unwrap();
    stats.calculate_blocking().unwrap();
    stats.stop().wait().unwrap();
    driver.join().unwrap();
}

/// The report lines in a child's standard error.
fn report_lines(stderr: &str) -> Vec<&str> {
    stderr
        .lines()
        .filter(|line| line.contains(" INFO mvx::stats: "))
        .collect()
}

#[test]
fn to_standard_error_the_report_is_one_line() {
    if std::env::var(CHILD).as_deref() == Ok("stderr") {
        return child_reports(ReportTo::Stderr);
    }
    within_guard(|| {
        let stderr = child_stderr("to_standard_error_the_report_is_one_line", "stderr");
        let lines = report_lines(&stderr);
        assert_eq!(lines.len(), 1, "once, at the start: {stderr}");
        assert!(
            lines[0].contains(
                " INFO mvx::stats: Crawler statistics requests_finished=0 requests_failed=0 \
                 retry_histogram=[0] request_avg_failed_duration=None \
                 request_avg_finished_duration=None requests_finished_per_minute=0 \
                 requests_failed_per_minute=0 request_total_duration=0 requests_total=0 \
                 crawler_runtime="
            ),
            "{stderr}"
        );
    });
}

/// Without the `log` feature, the report goes to standard error by default.
#[cfg(not(feature = "log"))]
#[test]
fn by_default_without_the_log_feature_the_report_goes_to_standard_error() {
    if std::env::var(CHILD).as_deref() == Ok("default") {
        return child_reports(ReportTo::Default);
    }
    within_guard(|| {
        let stderr = child_stderr(
            "by_default_without_the_log_feature_the_report_goes_to_standard_error",
            "default",
        );
        assert_eq!(report_lines(&stderr).len(), 1, "{stderr}");
    });
}
