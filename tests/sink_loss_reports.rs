//! Loss that shows where people look: a sink hands its dispatcher one summary record
//! ([`LossReport`], through [`Dispatch::on_loss`]) when events were dropped, refused or
//! failed since the previous report — at most once per `loss_report_interval`, and at stop —
//! and the writer sink writes it as one line. Refusals are counted (`QueueStats::refused`)
//! without touching `accepted == delivered + failed + pending`.
//!
//! Loss is made without gates: a sink is started (admission opens) before its driver is
//! polled, so its queue fills and overflows at once; the driver, spawned afterwards,
//! dispatches what was accepted.
#![cfg(not(loom))]

use std::io::{self, Write};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, SystemTime};

use mvx::error::{LogError, SendTimeoutError};
use mvx::queue::{LogOutcome, OverflowPolicy, QueueStats};
use mvx::sink::sinks::WriterSink;
use mvx::sink::{AsyncSink, Dispatch, Driver, JsonLines, Level, LogEvent, LossReport, SinkConfig};
use mvx::{BoxError, State};

#[path = "support/watchdog.rs"]
mod watchdog;

use watchdog::{GUARD, within_guard};

/// The reports a [`Reporting`] dispatcher was handed, in order.
#[derive(Clone, Default)]
struct Reports(Arc<(Mutex<Vec<LossReport>>, Condvar)>);

impl Reports {
    fn push(&self, report: LossReport) {
        let (reports, changed) = &*self.0;
        reports.lock().unwrap().push(report);
        changed.notify_all();
    }

    fn all(&self) -> Vec<LossReport> {
        self.0.0.lock().unwrap().clone()
    }

    /// Waits until `count` reports were handed over; returns them.
    fn wait_for(&self, count: usize) -> Vec<LossReport> {
        let (reports, changed) = &*self.0;
        let reports = reports.lock().unwrap();
        let (reports, wait) = changed
            .wait_timeout_while(reports, GUARD, |reports| reports.len() < count)
            .unwrap();
        assert!(!wait.timed_out(), "no report number {count}");
        reports.clone()
    }
}

/// Delivers every event but those in `fail_on`, and keeps the loss reports it is handed.
#[derive(Default)]
struct Reporting {
    fail_on: Vec<u32>,
    reports: Reports,
}

impl Dispatch<u32> for Reporting {
    async fn dispatch(&mut self, event: u32) -> Result<(), BoxError> {
        if self.fail_on.contains(&event) {
            return Err(format!("event {event} failed").into());
        }
        Ok(())
    }

    async fn on_loss(&mut self, report: &LossReport) -> Result<(), BoxError> {
        self.reports.push(report.clone());
        Ok(())
    }
}

/// Reports at most every hour: in these tests, only the stop reports.
fn hourly() -> SinkConfig {
    SinkConfig::default()
        .queue_capacity(2)
        .loss_report_interval(Some(Duration::from_secs(3_600)))
}

fn on_thread(driver: Driver) -> JoinHandle<()> {
    std::thread::spawn(move || futures::executor::block_on(driver))
}

/// A report's counts: `(dropped, refused, failed, restarts)`.
fn counts(report: &LossReport) -> (u64, u64, u64, u64) {
    (
        report.dropped,
        report.refused,
        report.failed,
        report.restarts,
    )
}

#[test]
fn refusals_and_failures_are_summarised_in_one_report_at_stop() {
    within_guard(|| {
        let created = SystemTime::now();
        let reports = Reports::default();
        let dispatcher = Reporting {
            fail_on: vec![2],
            reports: reports.clone(),
        };
        let (sink, driver) = AsyncSink::new(dispatcher, hourly());
        // Not started yet: handed back, and counted.
        assert!(matches!(
            sink.log(0),
            Err(LogError::NotAccepting {
                event: 0,
                state: State::Virgin
            })
        ));
        drop(sink.start());
        assert_eq!(sink.log(1), Ok(LogOutcome::Accepted));
        assert_eq!(sink.log(2), Ok(LogOutcome::Accepted));
        // Full, under the default `RaiseError`: handed back, and counted.
        assert!(matches!(sink.log(3), Err(LogError::QueueOverflow(3))));
        let driver = on_thread(driver);
        assert!(sink.start().wait().success);
        assert!(sink.stop().wait().success);
        driver.join().unwrap();

        let stats = sink.stats();
        assert_eq!(
            stats,
            QueueStats {
                accepted: 2,
                delivered: 1,
                failed: 1,
                refused: 2,
                capacity: 2,
                high_watermark: 2,
                ..QueueStats::default()
            }
        );
        let reports = reports.all();
        assert_eq!(reports.len(), 1, "{reports:?}");
        let report = &reports[0];
        assert_eq!(counts(report), (0, 2, 1, 0));
        assert!(created <= report.since, "{report:?}");
        assert!(report.since <= report.until, "{report:?}");
        assert!(report.until <= SystemTime::now(), "{report:?}");
    });
}

#[test]
fn drops_are_summarised_at_stop() {
    within_guard(|| {
        let reports = Reports::default();
        let dispatcher = Reporting {
            reports: reports.clone(),
            ..Reporting::default()
        };
        let (sink, driver) = AsyncSink::new(dispatcher, hourly().overflow(OverflowPolicy::Drop));
        drop(sink.start());
        let outcomes: Vec<_> = (1..=5).map(|event| sink.log(event)).collect();
        assert_eq!(
            outcomes,
            [
                Ok(LogOutcome::Accepted),
                Ok(LogOutcome::Accepted),
                Ok(LogOutcome::Dropped),
                Ok(LogOutcome::Dropped),
                Ok(LogOutcome::Dropped),
            ]
        );
        let driver = on_thread(driver);
        assert!(sink.start().wait().success);
        assert!(sink.stop().wait().success);
        driver.join().unwrap();

        let stats = sink.stats();
        assert_eq!(
            (
                stats.accepted,
                stats.delivered,
                stats.dropped,
                stats.refused
            ),
            (2, 2, 3, 0)
        );
        let reports = reports.all();
        assert_eq!(reports.len(), 1, "{reports:?}");
        assert_eq!(counts(&reports[0]), (3, 0, 0, 0));
        assert_eq!(
            reports[0].to_string(),
            format!(
                "mvx: 3 events dropped (queue full) since {}",
                rfc3339(reports[0].since)
            )
        );
    });
}

#[test]
fn while_the_sink_runs_a_report_comes_at_the_interval_and_only_after_loss() {
    within_guard(|| {
        let reports = Reports::default();
        let dispatcher = Reporting {
            fail_on: vec![7],
            reports: reports.clone(),
        };
        let config = SinkConfig::default()
            .queue_capacity(2)
            .overflow(OverflowPolicy::Drop)
            .loss_report_interval(Some(Duration::from_millis(50)));
        let (sink, driver) = AsyncSink::new(dispatcher, config);
        drop(sink.start());
        for event in 1..=5 {
            let _ = sink.log(event);
        }
        let driver = on_thread(driver);
        assert!(sink.start().wait().success);

        // The first report, while the sink runs: the three drops.
        let first = reports.wait_for(1)[0].clone();
        assert_eq!(sink.state(), State::Running);
        assert_eq!(counts(&first), (3, 0, 0, 0));

        // One failure later: a second report, covering only what came after the first.
        assert_eq!(sink.log(7), Ok(LogOutcome::Accepted));
        let second = reports.wait_for(2)[1].clone();
        assert_eq!(counts(&second), (0, 0, 1, 0));
        assert_eq!(second.since, first.until);

        // Nothing lost since: the stop hands over no report.
        sink.flush_blocking().unwrap();
        assert!(sink.stop().wait().success);
        driver.join().unwrap();
        assert_eq!(reports.all().len(), 2, "{:?}", reports.all());
    });
}

#[test]
fn a_sink_that_lost_nothing_reports_nothing() {
    within_guard(|| {
        let reports = Reports::default();
        let dispatcher = Reporting {
            reports: reports.clone(),
            ..Reporting::default()
        };
        let (sink, driver) = AsyncSink::new(dispatcher, hourly());
        let driver = on_thread(driver);
        assert!(sink.start().wait().success);
        assert_eq!(sink.log(1), Ok(LogOutcome::Accepted));
        assert!(sink.stop().wait().success);
        driver.join().unwrap();
        assert_eq!(reports.all(), []);
    });
}

#[test]
fn loss_reports_can_be_turned_off() {
    within_guard(|| {
        let reports = Reports::default();
        let dispatcher = Reporting {
            reports: reports.clone(),
            ..Reporting::default()
        };
        let config = hourly()
            .overflow(OverflowPolicy::Drop)
            .loss_report_interval(None);
        let (sink, driver) = AsyncSink::new(dispatcher, config);
        drop(sink.start());
        for event in 1..=5 {
            let _ = sink.log(event);
        }
        let driver = on_thread(driver);
        assert!(sink.start().wait().success);
        assert!(sink.stop().wait().success);
        driver.join().unwrap();
        assert_eq!(sink.stats().dropped, 3);
        assert_eq!(reports.all(), []);
    });
}

#[test]
fn a_send_that_gives_up_is_refused_and_one_that_waits_is_not() {
    within_guard(|| {
        let config = hourly().queue_capacity(1).overflow(OverflowPolicy::Block);
        let (sink, driver) = AsyncSink::new(Reporting::default(), config);
        drop(sink.start());
        assert_eq!(sink.log(1), Ok(LogOutcome::Accepted));
        // Full, and nobody dispatches: the deadline passes and the event comes back.
        let timed_out = sink.send(2).wait_timeout(Duration::from_millis(10));
        assert!(matches!(timed_out, Err(SendTimeoutError::TimedOut(2))));
        assert_eq!(sink.stats().refused, 1);

        // This one waits for room, however often it finds the queue full: not refused.
        let waiting = {
            let sink = sink.clone();
            std::thread::spawn(move || sink.log(3))
        };
        let driver = on_thread(driver);
        assert!(sink.start().wait().success);
        assert_eq!(waiting.join().unwrap(), Ok(LogOutcome::Accepted));
        assert!(sink.stop().wait().success);
        driver.join().unwrap();
        // After the stop: refused, and counted.
        assert!(matches!(
            sink.log(4),
            Err(LogError::NotAccepting {
                event: 4,
                state: State::Stopped
            })
        ));
        let stats = sink.stats();
        assert_eq!((stats.accepted, stats.delivered, stats.refused), (2, 2, 2));
    });
}

/// A `Write` whose bytes the test reads.
#[derive(Clone, Default)]
struct SharedBuffer(Arc<Mutex<Vec<u8>>>);

impl SharedBuffer {
    fn lines(&self) -> Vec<String> {
        let text = String::from_utf8(self.0.lock().unwrap().clone()).expect("UTF-8");
        text.lines().map(str::to_owned).collect()
    }
}

impl Write for SharedBuffer {
    fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// `time` as the sinks write it: RFC 3339 in UTC with milliseconds.
fn rfc3339(time: SystemTime) -> String {
    let mut event = LogEvent::new(Level::Info, "t", "m");
    event.timestamp = time;
    let line = event.to_string();
    line.split(' ').next().unwrap().to_owned()
}

#[test]
fn the_writer_sink_writes_a_report_as_one_line() {
    within_guard(|| {
        let buffer = SharedBuffer::default();
        let writer = WriterSink::writer("buffer", buffer.clone());
        let (sink, driver) = AsyncSink::new(writer, hourly().overflow(OverflowPolicy::Drop));
        drop(sink.start());
        for event in 1..=98u32 {
            let _ = sink.log(event);
        }
        let driver = on_thread(driver);
        assert!(sink.start().wait().success);
        assert!(sink.stop().wait().success);
        driver.join().unwrap();

        let lines = buffer.lines();
        assert_eq!(lines.len(), 3, "{lines:?}");
        assert_eq!(lines[..2], ["1", "2"]);
        let since = lines[2]
            .strip_prefix("mvx: 96 events dropped (queue full) since ")
            .unwrap_or_else(|| panic!("not a loss line: {:?}", lines[2]));
        let pattern = regex::Regex::new(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$").unwrap();
        assert!(pattern.is_match(since), "{since:?}");
    });
}

#[test]
fn the_writer_sink_writes_a_report_in_json_lines_as_json() {
    within_guard(|| {
        let buffer = SharedBuffer::default();
        let writer = WriterSink::writer("buffer", buffer.clone()).format(JsonLines);
        let config = hourly().overflow(OverflowPolicy::Drop);
        let (sink, driver) = AsyncSink::<LogEvent>::new(writer, config);
        drop(sink.start());
        for _ in 0..5 {
            let _ = sink.log(LogEvent::new(Level::Info, "app", "hello"));
        }
        let driver = on_thread(driver);
        assert!(sink.start().wait().success);
        let stopped = sink.stop().wait();
        assert!(stopped.success, "{:?}", stopped.error);
        driver.join().unwrap();

        let lines = buffer.lines();
        assert_eq!(lines.len(), 3, "{lines:?}");
        let report: serde_json::Value = serde_json::from_str(&lines[2]).expect("a JSON line");
        assert_eq!(report["level"], "WARN");
        assert_eq!(report["target"], "mvx");
        let fields = &report["fields"];
        assert_eq!(
            (
                &fields["dropped"],
                &fields["refused"],
                &fields["failed"],
                &fields["restarts"]
            ),
            (&3.into(), &0.into(), &0.into(), &0.into())
        );
        let since = fields["since"].as_str().expect("since, as text");
        assert_eq!(
            report["message"],
            format!("3 events dropped (queue full) since {since}")
        );
    });
}
