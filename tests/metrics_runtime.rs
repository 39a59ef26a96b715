//! `MetricsRuntime`: creation, lookup, duplicate names, shutdown (twice, with a failing stop
//! hook, by drop), and the smol flavour.
#![cfg(not(loom))]

use mvx::error::SinkError;
use mvx::metrics::{
    Metric, MetricEvent, MetricHookError, MetricKind, MetricsReason, MetricsRuntime, RecorderError,
    Snapshot,
};
use mvx::queue::LogOutcome;
use mvx::{BoxError, ErrorReason, State};

#[path = "support/watchdog.rs"]
mod watchdog;

use watchdog::within_guard;

#[derive(Debug, PartialEq)]
struct Tick;

impl MetricEvent for Tick {
    fn event_type(&self) -> &str {
        "tick"
    }
}

#[derive(Debug, PartialEq)]
struct Tock;

impl MetricEvent for Tock {
    fn event_type(&self) -> &str {
        "tock"
    }
}

/// Counts ticks; its stop hook fails when told to.
#[derive(Default)]
struct Ticks {
    count: u64,
    fail_on_stop: bool,
}

impl Metric<Tick> for Ticks {
    fn name(&self) -> &str {
        "ticks"
    }

    fn handle_event(&mut self, _: &Tick) -> bool {
        self.count += 1;
        true
    }

    fn snapshot(&self) -> Snapshot {
        Snapshot::new("ticks", MetricKind::Counter).with("total", self.count)
    }

    fn on_stopped(&mut self) -> Result<(), BoxError> {
        if self.fail_on_stop {
            Err("could not publish the final count".into())
        } else {
            Ok(())
        }
    }
}

fn total(recorder: &mvx::metrics::MetricsRecorder<Tick>) -> Option<mvx::metrics::Value> {
    recorder
        .snapshots()
        .get("ticks")
        .and_then(|s| s.get("total"))
}

#[test]
fn recorders_are_created_started_and_found_by_name() {
    within_guard(|| {
        let runtime = MetricsRuntime::new().unwrap();
        let ticks = runtime.create_recorder::<Tick>("ticks").unwrap();
        let tocks = runtime.create_recorder::<Tock>("tocks").unwrap();
        assert_eq!(ticks.state(), State::Running);
        assert_eq!(tocks.state(), State::Running);
        assert_eq!(
            runtime.recorders(),
            vec!["ticks".to_owned(), "tocks".to_owned()]
        );
        ticks.register_metric(Ticks::default()).unwrap();
        let found = runtime.recorder::<Tick>("ticks").expect("registered");
        assert_eq!(found.register_event(Tick), Ok(LogOutcome::Accepted));
        assert_eq!(
            futures::executor::block_on(ticks.snapshot_now()).unwrap()["ticks"].get("total"),
            Some(1u64.into())
        );
        assert!(
            runtime.recorder::<Tock>("ticks").is_none(),
            "wrong event type"
        );
        assert!(runtime.recorder::<Tick>("missing").is_none());
        runtime.shutdown().unwrap();
    });
}

#[test]
fn a_duplicate_recorder_name_is_a_typed_error() {
    within_guard(|| {
        let runtime = MetricsRuntime::new().unwrap();
        runtime.create_recorder::<Tick>("same").unwrap();
        let error = runtime.create_recorder::<Tock>("same").unwrap_err();
        assert!(
            matches!(&error, RecorderError::DuplicateRecorder { name } if name == "same"),
            "{error:?}"
        );
        assert_eq!(error.reason(), MetricsReason::DuplicateName);
        assert_eq!(runtime.recorders(), vec!["same".to_owned()]);
        runtime.shutdown().unwrap();
    });
}

#[test]
fn shutdown_applies_accepted_events_and_is_idempotent() {
    within_guard(|| {
        let runtime = MetricsRuntime::new().unwrap();
        let ticks = runtime.create_recorder::<Tick>("ticks").unwrap();
        ticks.register_metric(Ticks::default()).unwrap();
        for _ in 0..1_000 {
            assert_eq!(ticks.sink().log_blocking(Tick), Ok(LogOutcome::Accepted));
        }
        runtime.shutdown().unwrap();
        assert!(runtime.is_shut_down());
        assert_eq!(ticks.state(), State::Stopped);
        assert_eq!(total(&ticks), Some(1_000u64.into()));
        // Every later call returns the same outcome at once.
        runtime.shutdown().unwrap();
        assert!(runtime.recorders().is_empty());
        // The executor is gone: no more recorders.
        let error = runtime.create_recorder::<Tick>("late").unwrap_err();
        assert!(
            matches!(error, RecorderError::Sink(SinkError::EventLoopUnavailable)),
            "{error:?}"
        );
    });
}

#[test]
fn shutdown_reports_every_recorder_whose_stop_hook_failed() {
    within_guard(|| {
        let runtime = MetricsRuntime::new().unwrap();
        for name in ["a", "b", "c"] {
            let recorder = runtime.create_recorder::<Tick>(name).unwrap();
            recorder
                .register_metric(Ticks {
                    count: 0,
                    fail_on_stop: name != "b",
                })
                .unwrap();
            assert_eq!(recorder.register_event(Tick), Ok(LogOutcome::Accepted));
        }
        let a = runtime.recorder::<Tick>("a").unwrap();
        let error = runtime.shutdown().unwrap_err();
        let names: Vec<_> = error
            .recorders
            .iter()
            .map(|(name, _)| name.as_str())
            .collect();
        assert_eq!(names, vec!["a", "c"]);
        for (_, stop_error) in &error.recorders {
            match stop_error {
                SinkError::OnStoppedHookFailed(cause) => {
                    let hook = cause.downcast_ref::<MetricHookError>().expect("hook error");
                    assert_eq!(hook.metric, "ticks");
                    assert_eq!(hook.cause.to_string(), "could not publish the final count");
                }
                other => panic!("expected OnStoppedHookFailed, got {other:?}"),
            }
            assert_eq!(stop_error.reason(), ErrorReason::OnStoppedHookFailed);
        }
        assert!(error.thread.is_none());
        // The events were applied before the hooks ran.
        assert_eq!(total(&a), Some(1u64.into()));
        assert_eq!(a.state(), State::Stopped);
        // A second shutdown repeats the outcome.
        let again = runtime.shutdown().unwrap_err();
        assert_eq!(again.recorders.len(), 2);
    });
}

#[test]
fn dropping_the_runtime_shuts_it_down() {
    within_guard(|| {
        let runtime = MetricsRuntime::new().unwrap();
        let ticks = runtime.create_recorder::<Tick>("ticks").unwrap();
        ticks.register_metric(Ticks::default()).unwrap();
        for _ in 0..500 {
            assert_eq!(ticks.sink().log_blocking(Tick), Ok(LogOutcome::Accepted));
        }
        drop(runtime);
        assert_eq!(ticks.state(), State::Stopped);
        assert_eq!(total(&ticks), Some(500u64.into()));
        let stats = ticks.stats();
        assert_eq!(
            (stats.accepted, stats.delivered, stats.pending),
            (500, 500, 0)
        );
    });
}

#[test]
fn a_runtime_runs_on_smol() {
    within_guard(|| {
        let runtime = MetricsRuntime::new_smol().unwrap();
        let ticks = runtime.create_recorder::<Tick>("ticks").unwrap();
        ticks.register_metric(Ticks::default()).unwrap();
        for _ in 0..100 {
            assert_eq!(ticks.sink().log_blocking(Tick), Ok(LogOutcome::Accepted));
        }
        runtime.shutdown().unwrap();
        assert_eq!(total(&ticks), Some(100u64.into()));
        let error = runtime.create_recorder::<Tick>("late").unwrap_err();
        assert_eq!(error.reason(), ErrorReason::EventLoopUnavailable);
    });
}
