//! The periodic report: every `log_interval`, the `calculate()` figures as one line through
//! any `AsyncSink<LogEvent>`, with the configured message.
#![cfg(not(loom))]

#[path = "support/watchdog.rs"]
mod watchdog;

use std::sync::{Mutex, mpsc};
use std::time::Duration;

use futures::executor::block_on;
use mvx::BoxError;
use mvx::sink::{Dispatch, FieldValue, Level, LogEvent, SinkConfig};
use mvx::stats::{REPORT_TARGET, Statistics, StatsConfig};
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
        assert_eq!(field(&report, "retries"), Some(&FieldValue::U64(1)));
        assert_eq!(
            field(&report, "retry_histogram"),
            Some(&FieldValue::Str("[3, 1]".into()))
        );
        let line = report.to_string();
        assert!(!line.contains('\n'), "{line}");
        assert!(
            line.contains(
                " INFO mvx::stats: Crawler request statistics requests_finished=3 \
                 requests_failed=1 requests_total=4 requests_in_progress=0 retries=1 "
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
