//! The restart policy for dispatcher panics: `Never` (the default) ends the sink in
//! `Failure`; `Limited` counts the events of the panicking call as failed, waits its backoff
//! (cut short by a stop), runs the dispatcher's `on_restart` hook and resumes with the same
//! dispatcher, at most `max_restarts` times. Each restart is reported: `last_error()`,
//! `QueueStats::restarts`, and the next loss report.
//!
//! Events are logged before the driver is polled (the sink is started first, which opens
//! admission), so each test knows every batch: with a batch size of one, each event is a
//! call of its own.
#![cfg(not(loom))]

use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use mvx::error::SinkError;
use mvx::queue::LogOutcome;
use mvx::sink::{AsyncSink, Dispatch, Driver, LossReport, RestartPolicy, SinkConfig};
use mvx::{BoxError, ErrorReason, State};

#[path = "support/watchdog.rs"]
mod watchdog;

use watchdog::{wait_until, within_guard};

/// What a [`Fragile`] dispatcher saw, readable by the test.
#[derive(Clone, Default)]
struct Seen(Arc<Mutex<SeenInner>>);

#[derive(Default)]
struct SeenInner {
    delivered: Vec<u32>,
    /// For each `on_restart`: how many dispatches the value had made before it.
    restarted_after: Vec<u32>,
    reports: Vec<LossReport>,
}

impl Seen {
    fn delivered(&self) -> Vec<u32> {
        self.0.lock().unwrap().delivered.clone()
    }

    fn restarted_after(&self) -> Vec<u32> {
        self.0.lock().unwrap().restarted_after.clone()
    }

    fn reports(&self) -> Vec<LossReport> {
        self.0.lock().unwrap().reports.clone()
    }
}

/// Panics on the events in `panic_on`; refuses restarts when told to.
#[derive(Default)]
struct Fragile {
    panic_on: Vec<u32>,
    refuse_restart: bool,
    /// Dispatches made by this value: kept across a restart.
    dispatches: u32,
    seen: Seen,
}

impl Dispatch<u32> for Fragile {
    async fn dispatch(&mut self, event: u32) -> Result<(), BoxError> {
        self.dispatches += 1;
        if self.panic_on.contains(&event) {
            panic!("dispatch exploded on event {event}");
        }
        self.seen.0.lock().unwrap().delivered.push(event);
        Ok(())
    }

    async fn on_restart(&mut self) -> Result<(), BoxError> {
        self.seen
            .0
            .lock()
            .unwrap()
            .restarted_after
            .push(self.dispatches);
        if self.refuse_restart {
            return Err("the backend cannot be reset".into());
        }
        Ok(())
    }

    async fn on_loss(&mut self, report: &LossReport) -> Result<(), BoxError> {
        self.seen.0.lock().unwrap().reports.push(report.clone());
        Ok(())
    }
}

fn config(restart: RestartPolicy) -> SinkConfig {
    SinkConfig::default()
        .batch_size(1)
        .restart(restart)
        .loss_report_interval(Some(Duration::from_secs(3_600)))
}

/// A started sink holding `events`, its driver not polled yet.
fn loaded(dispatcher: Fragile, config: SinkConfig, events: &[u32]) -> (AsyncSink<u32>, Driver) {
    let (sink, driver) = AsyncSink::new(dispatcher, config);
    drop(sink.start());
    for &event in events {
        assert_eq!(sink.log(event), Ok(LogOutcome::Accepted));
    }
    (sink, driver)
}

fn on_thread(driver: Driver) -> JoinHandle<()> {
    std::thread::spawn(move || futures::executor::block_on(driver))
}

/// The panic message behind a `DispatcherPanicked` or `DispatcherRestarted` error.
fn panic_message(error: &SinkError) -> String {
    let cause = error.cause().expect("a cause");
    cause.panic_message().expect("a panic").to_owned()
}

#[test]
fn by_default_a_panic_ends_the_sink() {
    within_guard(|| {
        assert_eq!(RestartPolicy::default(), RestartPolicy::Never);
        assert_eq!(SinkConfig::default().restart, RestartPolicy::Never);
        let dispatcher = Fragile {
            panic_on: vec![2],
            ..Fragile::default()
        };
        let seen = dispatcher.seen.clone();
        let (sink, driver) = loaded(dispatcher, config(RestartPolicy::Never), &[1, 2, 3]);
        on_thread(driver).join().unwrap();

        assert_eq!(sink.state(), State::Failure);
        let error = sink.last_error().expect("the panic");
        assert_eq!(error.reason(), ErrorReason::DispatcherPanicked);
        assert_eq!(panic_message(&error), "dispatch exploded on event 2");
        let stats = sink.stats();
        assert_eq!((stats.delivered, stats.failed, stats.restarts), (1, 2, 0));
        assert_eq!(seen.delivered(), [1]);
        assert_eq!(seen.restarted_after(), Vec::<u32>::new());
    });
}

#[test]
fn a_restarted_dispatcher_resumes_with_the_same_value() {
    within_guard(|| {
        let dispatcher = Fragile {
            panic_on: vec![3],
            ..Fragile::default()
        };
        let seen = dispatcher.seen.clone();
        let policy = RestartPolicy::limited(3, Duration::ZERO);
        let (sink, driver) = loaded(dispatcher, config(policy), &[1, 2, 3, 4, 5]);
        let driver = on_thread(driver);
        assert!(sink.start().wait().success);
        sink.flush_blocking().expect("the flush after the restart");

        assert_eq!(sink.state(), State::Running);
        assert_eq!(seen.delivered(), [1, 2, 4, 5]);
        // The same value: it had made three dispatches when it was restarted.
        assert_eq!(seen.restarted_after(), [3]);
        let stats = sink.stats();
        assert_eq!(
            (
                stats.accepted,
                stats.delivered,
                stats.failed,
                stats.pending,
                stats.restarts
            ),
            (5, 4, 1, 0, 1)
        );
        match sink.last_error() {
            Some(error @ SinkError::DispatcherRestarted { restarts: 1, .. }) => {
                assert_eq!(error.reason(), ErrorReason::DispatcherRestarted);
                assert_eq!(panic_message(&error), "dispatch exploded on event 3");
            }
            other => panic!("expected DispatcherRestarted, got {other:?}"),
        }

        assert!(sink.stop().wait().success);
        driver.join().unwrap();
        let reports = seen.reports();
        assert_eq!(reports.len(), 1, "{reports:?}");
        assert_eq!((reports[0].failed, reports[0].restarts), (1, 1));
        assert!(
            reports[0]
                .to_string()
                .contains("dispatcher restarted 1 time"),
            "{}",
            reports[0]
        );
    });
}

#[test]
fn restarts_are_bounded() {
    within_guard(|| {
        let dispatcher = Fragile {
            panic_on: vec![2, 4],
            ..Fragile::default()
        };
        let seen = dispatcher.seen.clone();
        let policy = RestartPolicy::limited(1, Duration::ZERO);
        let (sink, driver) = loaded(dispatcher, config(policy), &[1, 2, 3, 4, 5]);
        on_thread(driver).join().unwrap();

        assert_eq!(sink.state(), State::Failure);
        let error = sink.last_error().expect("the second panic");
        assert_eq!(error.reason(), ErrorReason::DispatcherPanicked);
        assert_eq!(panic_message(&error), "dispatch exploded on event 4");
        assert_eq!(seen.delivered(), [1, 3]);
        assert_eq!(seen.restarted_after(), [2]);
        let stats = sink.stats();
        assert_eq!(
            (
                stats.accepted,
                stats.delivered,
                stats.failed,
                stats.pending,
                stats.restarts
            ),
            (5, 2, 3, 0, 1)
        );
    });
}

#[test]
fn a_stop_cuts_the_backoff_short() {
    within_guard(|| {
        let dispatcher = Fragile {
            panic_on: vec![1],
            ..Fragile::default()
        };
        let seen = dispatcher.seen.clone();
        let policy = RestartPolicy::limited(1, Duration::from_secs(3_600));
        let (sink, driver) = loaded(dispatcher, config(policy), &[1, 2, 3]);
        let driver = on_thread(driver);
        assert!(sink.start().wait().success);
        // The panic is counted before the backoff begins.
        wait_until(|| sink.stats().restarts == 1);
        assert_eq!(sink.state(), State::Running);

        assert!(sink.stop().wait().success);
        driver.join().unwrap();
        assert_eq!(seen.delivered(), [2, 3]);
        assert_eq!(seen.restarted_after(), [1]);
        let stats = sink.stats();
        assert_eq!((stats.delivered, stats.failed, stats.restarts), (2, 1, 1));
    });
}

#[test]
fn a_dispatcher_can_refuse_a_restart() {
    within_guard(|| {
        let dispatcher = Fragile {
            panic_on: vec![2],
            refuse_restart: true,
            ..Fragile::default()
        };
        let seen = dispatcher.seen.clone();
        let policy = RestartPolicy::limited(3, Duration::ZERO);
        let (sink, driver) = loaded(dispatcher, config(policy), &[1, 2, 3]);
        on_thread(driver).join().unwrap();

        assert_eq!(sink.state(), State::Failure);
        let error = sink.last_error().expect("the panic");
        assert_eq!(error.reason(), ErrorReason::DispatcherPanicked);
        assert_eq!(panic_message(&error), "dispatch exploded on event 2");
        assert_eq!(seen.delivered(), [1]);
        assert_eq!(seen.restarted_after(), [2]);
        let stats = sink.stats();
        assert_eq!((stats.delivered, stats.failed, stats.restarts), (1, 2, 1));
    });
}
