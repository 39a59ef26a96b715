//! Loss reports: a summary of what a sink dropped, refused and failed, handed to its
//! dispatcher in the stream it delivers.

use std::fmt;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use super::event::Rfc3339;
use crate::queue::Losses;

/// How often a sink reports its losses by default, at most: every 10 seconds.
pub const DEFAULT_LOSS_REPORT_INTERVAL: Duration = Duration::from_secs(10);

/// What a sink lost since its previous report: one summary record, handed to its
/// dispatcher by [`Dispatch::on_loss`](super::Dispatch::on_loss).
///
/// Counters alone tell nobody who does not read them; a loss report puts the loss where
/// people look, in the stream itself (the [`WriterSink`](super::sinks::WriterSink) writes
/// it as a line: `mvx: 96 events dropped (queue full) since 2026-12-01T12:00:01.000Z`).
///
/// # When
///
/// When events were dropped, refused or failed, or the dispatcher was restarted, since
/// the previous report, the driver hands over one report — at most once per
/// [`loss_report_interval`](super::SinkConfig::loss_report_interval), and once more when
/// the sink stops, after its last dispatch and before its last flush. A loss after a quiet
/// interval is reported as soon as the driver sees it: after the batch it happened in, or
/// before the driver goes to sleep. Nothing lost, no report. With the interval set to
/// `None`, there are none (the counters in [`QueueStats`](crate::queue::QueueStats) are
/// kept all the same).
///
/// What a report cannot cover: events refused after the stop's report (the dispatcher is
/// gone; they are in [`QueueStats::refused`](crate::queue::QueueStats::refused)), events
/// abandoned by a stop that timed out or by a dispatcher that panicked for good (the stop
/// or the failure reports them), and a report the dispatcher fails to write (its error is
/// kept in `last_error()` as `LossReportFailed`; the next report does not repeat its
/// counts).
///
/// # Counts
///
/// Each count is the difference of a [`QueueStats`](crate::queue::QueueStats) counter
/// since the previous report (the first report counts from the sink's creation):
/// `dropped` (full queue under [`OverflowPolicy::Drop`](crate::queue::OverflowPolicy)),
/// `refused` (handed back to the caller), `failed` (accepted, then failed or abandoned),
/// `restarts` (dispatcher restarts after a panic).
///
/// # Examples
///
/// ```
/// use std::sync::{Arc, Mutex};
/// use mvx::BoxError;
/// use mvx::queue::OverflowPolicy;
/// use mvx::sink::{AsyncSink, Dispatch, LossReport, SinkConfig};
///
/// struct Lines(Arc<Mutex<Vec<String>>>);
///
/// impl Dispatch<u32> for Lines {
///     async fn dispatch(&mut self, event: u32) -> Result<(), BoxError> {
///         self.0.lock().unwrap().push(event.to_string());
///         Ok(())
///     }
///
///     async fn on_loss(&mut self, report: &LossReport) -> Result<(), BoxError> {
///         self.0.lock().unwrap().push(report.to_string());
///         Ok(())
///     }
/// }
///
/// let lines = Arc::new(Mutex::new(Vec::new()));
/// let config = SinkConfig::default().queue_capacity(1).overflow(OverflowPolicy::Drop);
/// let (sink, driver) = AsyncSink::new(Lines(lines.clone()), config);
/// drop(sink.start()); // admission is open; the driver has not run yet
/// sink.log(1).unwrap();
/// sink.log(2).unwrap(); // dropped: the queue is full
/// let driver = std::thread::spawn(move || futures::executor::block_on(driver));
/// assert!(sink.start().wait().success); // the start in flight
/// assert!(sink.stop().wait().success);
/// driver.join().unwrap();
/// let lines = lines.lock().unwrap();
/// assert_eq!(lines[0], "1");
/// assert!(lines[1].starts_with("mvx: 1 event dropped (queue full) since "));
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct LossReport {
    /// Events dropped because the queue was full under `OverflowPolicy::Drop`.
    pub dropped: u64,
    /// Events handed back to their caller: the sink was not accepting, or the queue was
    /// full under `OverflowPolicy::RaiseError` (or at the deadline of a `send`).
    pub refused: u64,
    /// Accepted events whose dispatch failed, or that were abandoned.
    pub failed: u64,
    /// Restarts of the dispatcher after a panic.
    pub restarts: u64,
    /// The start of the window: the previous report, or when the sink began dispatching.
    pub since: SystemTime,
    /// The end of the window: when this report was made.
    pub until: SystemTime,
}

impl LossReport {
    /// Events lost in the window: dropped, refused and failed.
    pub fn events(&self) -> u64 {
        self.dropped
            .saturating_add(self.refused)
            .saturating_add(self.failed)
    }

    /// The summary without the `mvx: ` prefix of its `Display`, such as
    /// `96 events dropped (queue full) since 2026-12-01T12:00:01.000Z`.
    pub fn message(&self) -> impl fmt::Display + '_ {
        Message(self)
    }
}

/// `mvx: ` and the [`message`](LossReport::message).
impl fmt::Display for LossReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "mvx: {}", self.message())
    }
}

struct Message<'a>(&'a LossReport);

impl fmt::Display for Message<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let report = self.0;
        let plural = |count: u64| if count == 1 { "" } else { "s" };
        let parts = [
            (report.dropped, "dropped (queue full)"),
            (report.refused, "refused"),
            (report.failed, "failed"),
        ];
        let mut first = true;
        for (count, what) in parts {
            if count > 0 {
                let separator = if first { "" } else { ", " };
                write!(f, "{separator}{count} event{} {what}", plural(count))?;
                first = false;
            }
        }
        if report.restarts > 0 {
            let separator = if first { "" } else { ", " };
            write!(
                f,
                "{separator}dispatcher restarted {} time{}",
                report.restarts,
                plural(report.restarts)
            )?;
            first = false;
        }
        if first {
            f.write_str("nothing lost")?;
        }
        write!(f, " since {}", Rfc3339(report.since))
    }
}

/// The driver's account of what it has reported (driver only).
#[derive(Debug)]
pub(crate) struct Ledger {
    interval: Option<Duration>,
    /// The totals at the previous report: zero before the first.
    reported: Losses,
    /// When the window began.
    since: SystemTime,
    /// When the next report may be made, if reports are on.
    due: Option<Instant>,
}

impl Ledger {
    /// A ledger whose first window begins now; `None` turns reports off.
    pub(crate) fn new(interval: Option<Duration>) -> Self {
        let mut ledger = Self {
            interval,
            reported: Losses::default(),
            since: UNIX_EPOCH,
            due: None,
        };
        if interval.is_some() {
            ledger.open_window(SystemTime::now());
        }
        ledger
    }

    /// Whether reports are on.
    pub(crate) fn enabled(&self) -> bool {
        self.interval.is_some()
    }

    fn open_window(&mut self, since: SystemTime) {
        self.since = since;
        self.due = self
            .interval
            .and_then(|interval| Instant::now().checked_add(interval));
    }

    /// Whether the interval since the previous report has passed at `now`.
    pub(crate) fn is_due(&self, now: Instant) -> bool {
        self.due.is_some_and(|due| now >= due)
    }

    /// When a report of `losses` can be made, if they hold something not reported yet.
    /// `None` also when reports are off, or the interval is too long to be represented
    /// (the stop reports).
    pub(crate) fn unreported(&self, losses: Losses) -> Option<Instant> {
        if losses == self.reported {
            return None;
        }
        self.due
    }

    /// The report of what `losses` hold beyond the previous report, if anything, which
    /// opens the next window. `None`, and nothing changes, when nothing was lost or reports
    /// are off.
    pub(crate) fn take(&mut self, losses: Losses) -> Option<LossReport> {
        if !self.enabled() || losses == self.reported {
            return None;
        }
        let previous = std::mem::replace(&mut self.reported, losses);
        let until = SystemTime::now();
        let report = LossReport {
            dropped: losses.dropped.saturating_sub(previous.dropped),
            refused: losses.refused.saturating_sub(previous.refused),
            failed: losses.failed.saturating_sub(previous.failed),
            restarts: losses.restarts.saturating_sub(previous.restarts),
            since: self.since,
            until,
        };
        self.open_window(until);
        Some(report)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report(dropped: u64, refused: u64, failed: u64, restarts: u64) -> LossReport {
        LossReport {
            dropped,
            refused,
            failed,
            restarts,
            since: UNIX_EPOCH + Duration::from_millis(1_795_920_473_123),
            until: UNIX_EPOCH + Duration::from_millis(1_795_920_483_123),
        }
    }

    #[test]
    fn a_report_reads_as_one_line() {
        assert_eq!(
            report(96, 0, 0, 0).to_string(),
            "mvx: 96 events dropped (queue full) since 2026-11-29T02:47:53.123Z"
        );
        assert_eq!(
            report(1, 2, 1, 1).to_string(),
            "mvx: 1 event dropped (queue full), 2 events refused, 1 event failed, dispatcher \
             restarted 1 time since 2026-11-29T02:47:53.123Z"
        );
        assert_eq!(
            report(0, 0, 3, 2).message().to_string(),
            "3 events failed, dispatcher restarted 2 times since 2026-11-29T02:47:53.123Z"
        );
        assert_eq!(
            report(0, 0, 0, 0).to_string(),
            "mvx: nothing lost since 2026-11-29T02:47:53.123Z"
        );
        assert_eq!(report(1, 2, 3, 4).events(), 6);
    }

    #[test]
    fn each_report_counts_what_came_after_the_previous_one() {
        let mut ledger = Ledger::new(Some(Duration::from_secs(3_600)));
        let nothing = Losses::default();
        assert_eq!(ledger.unreported(nothing), None);
        assert_eq!(ledger.take(nothing), None);
        assert!(!ledger.is_due(Instant::now()));

        let lost = Losses {
            dropped: 3,
            refused: 1,
            failed: 0,
            restarts: 0,
        };
        assert!(ledger.unreported(lost).is_some());
        let first = ledger.take(lost).expect("a report");
        assert_eq!(
            (first.dropped, first.refused, first.failed, first.restarts),
            (3, 1, 0, 0)
        );
        assert_eq!(ledger.unreported(lost), None);

        let more = Losses { failed: 2, ..lost };
        let second = ledger.take(more).expect("a report");
        assert_eq!((second.dropped, second.refused, second.failed), (0, 0, 2));
        assert_eq!(second.since, first.until);
    }

    #[test]
    fn reports_can_be_off() {
        let mut ledger = Ledger::new(None);
        let lost = Losses {
            dropped: 1,
            ..Losses::default()
        };
        assert!(!ledger.enabled());
        assert_eq!(ledger.unreported(lost), None);
        assert_eq!(ledger.take(lost), None);
        assert!(!ledger.is_due(Instant::now()));
    }
}
