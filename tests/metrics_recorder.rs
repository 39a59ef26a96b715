//! Metrics recorders: aggregation, the snapshot barrier, panicking metrics, unhandled
//! events, and recorders under the caller's executor.
#![cfg(not(loom))]

use futures::executor::{LocalPool, block_on};
use mvx::metrics::{
    Detailed, Metric, MetricEvent, MetricKind, MetricsReason, MetricsRecorder, RecorderError,
    Snapshot, Snapshots,
};
use mvx::queue::LogOutcome;
use mvx::sink::SinkConfig;
use mvx::{ErrorReason, State};

#[path = "support/watchdog.rs"]
mod watchdog;

use watchdog::within_guard;

/// An event from producer `producer`, or of another type.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Event {
    From { producer: usize },
    Poison,
    Other,
}

impl MetricEvent for Event {
    fn event_type(&self) -> &str {
        match self {
            Event::From { .. } => "from",
            Event::Poison => "poison",
            Event::Other => "other",
        }
    }
}

/// Counts events per producer.
#[derive(Default)]
struct PerProducer([u64; 4]);

impl Metric<Event> for PerProducer {
    fn name(&self) -> &str {
        "per_producer"
    }

    fn handle_event(&mut self, event: &Event) -> bool {
        match event {
            Event::From { producer } => {
                self.0[*producer] += 1;
                true
            }
            _ => false,
        }
    }

    fn snapshot(&self) -> Snapshot {
        let mut snapshot = Snapshot::new("per_producer", MetricKind::Counter);
        for (producer, count) in self.0.iter().enumerate() {
            snapshot = snapshot.with(format!("p{producer}"), *count);
        }
        snapshot
    }
}

/// Panics on `Event::Poison` in `handle_event`, or in `snapshot` when told to.
struct Fragile {
    name: &'static str,
    seen: u64,
    panic_in_snapshot: bool,
}

impl Metric<Event> for Fragile {
    fn name(&self) -> &str {
        self.name
    }

    fn handle_event(&mut self, event: &Event) -> bool {
        if matches!(event, Event::Poison) {
            panic!("poisoned event reached {}", self.name);
        }
        self.seen += 1;
        false
    }

    fn snapshot(&self) -> Snapshot {
        if self.panic_in_snapshot {
            panic!("snapshot of {} failed", self.name);
        }
        Snapshot::new(self.name, MetricKind::Gauge).with("seen", self.seen)
    }
}

fn running_recorder(name: &str) -> (MetricsRecorder<Event>, std::thread::JoinHandle<()>) {
    let (recorder, driver) = MetricsRecorder::new(name, SinkConfig::default().queue_capacity(64));
    let driver = std::thread::spawn(move || block_on(driver));
    assert!(recorder.start().wait().success);
    (recorder, driver)
}

#[test]
fn the_snapshot_barrier_sees_every_event_accepted_before_it() {
    within_guard(|| {
        let (recorder, driver) = running_recorder("barrier");
        recorder.register_metric(PerProducer::default()).unwrap();
        std::thread::scope(|scope| {
            for producer in 0..4 {
                let recorder = recorder.clone();
                scope.spawn(move || {
                    let mut logged = 0u64;
                    for round in 0..50u64 {
                        for _ in 0..(round % 7 + 1) * 10 {
                            assert_eq!(
                                recorder.sink().log_blocking(Event::From { producer }),
                                Ok(LogOutcome::Accepted)
                            );
                            logged += 1;
                        }
                        // Only this producer writes its dimension, and it logs nothing while
                        // it waits: the barrier must show exactly what it logged.
                        let snapshots = block_on(recorder.snapshot_now()).unwrap();
                        assert_eq!(
                            snapshots["per_producer"].get(&format!("p{producer}")),
                            Some(logged.into()),
                            "producer {producer}, round {round}"
                        );
                    }
                });
            }
        });
        assert!(recorder.stop().wait().success);
        driver.join().unwrap();
        let stats = recorder.stats();
        assert_eq!(stats.accepted, stats.delivered);
        assert_eq!(stats.pending, 0);
        let expected: u64 = (0..50u64).map(|round| (round % 7 + 1) * 10).sum();
        let snapshot = &recorder.snapshots()["per_producer"];
        for producer in 0..4 {
            assert_eq!(snapshot.get(&format!("p{producer}")), Some(expected.into()));
        }
        assert_eq!(stats.accepted, expected * 4);
    });
}

#[test]
fn a_metric_panicking_in_handle_event_is_disabled_and_the_others_go_on() {
    within_guard(|| {
        let (recorder, driver) = running_recorder("panics");
        recorder.register_metric(PerProducer::default()).unwrap();
        recorder
            .register_metric(Fragile {
                name: "fragile",
                seen: 0,
                panic_in_snapshot: false,
            })
            .unwrap();
        assert_eq!(
            recorder.register_event(Event::From { producer: 0 }),
            Ok(LogOutcome::Accepted)
        );
        assert_eq!(
            recorder.register_event(Event::Poison),
            Ok(LogOutcome::Accepted)
        );
        assert_eq!(
            recorder.register_event(Event::From { producer: 1 }),
            Ok(LogOutcome::Accepted)
        );
        let snapshots = block_on(recorder.snapshot_now()).unwrap();

        assert_eq!(recorder.state(), State::Running);
        assert_eq!(snapshots["per_producer"].get("p0"), Some(1u64.into()));
        assert_eq!(snapshots["per_producer"].get("p1"), Some(1u64.into()));
        assert!(
            !snapshots.contains_key("fragile"),
            "a disabled metric has no snapshot"
        );
        assert_eq!(recorder.disabled_metrics(), vec!["fragile".to_owned()]);
        match recorder.last_error() {
            Some(RecorderError::MetricPanicked {
                name,
                during,
                cause,
            }) => {
                assert_eq!(name, "fragile");
                assert_eq!(during, "handle_event");
                assert_eq!(
                    cause.panic_message(),
                    Some("poisoned event reached fragile")
                );
            }
            other => panic!("expected MetricPanicked, got {other:?}"),
        }
        assert_eq!(
            recorder.last_error().unwrap().reason(),
            MetricsReason::MetricPanicked
        );
        // The poison event was handled by no metric that survived.
        assert_eq!(recorder.unhandled().get("poison"), Some(&1));
        let stats = recorder.stats();
        assert_eq!((stats.accepted, stats.delivered, stats.failed), (3, 3, 0));
        assert!(recorder.stop().wait().success);
        driver.join().unwrap();
    });
}

#[test]
fn a_metric_panicking_in_snapshot_is_disabled_and_reported() {
    within_guard(|| {
        let (recorder, driver) = running_recorder("snapshot-panics");
        recorder.register_metric(PerProducer::default()).unwrap();
        recorder
            .register_metric(Fragile {
                name: "fragile",
                seen: 0,
                panic_in_snapshot: true,
            })
            .unwrap();
        assert_eq!(
            recorder.register_event(Event::From { producer: 2 }),
            Ok(LogOutcome::Accepted)
        );
        let snapshots = block_on(recorder.snapshot_now()).unwrap();
        assert_eq!(snapshots.keys().collect::<Vec<_>>(), vec!["per_producer"]);
        assert_eq!(snapshots["per_producer"].get("p2"), Some(1u64.into()));
        match recorder.last_error() {
            Some(RecorderError::MetricPanicked {
                name,
                during,
                cause,
            }) => {
                assert_eq!((name.as_str(), during), ("fragile", "snapshot"));
                assert_eq!(cause.panic_message(), Some("snapshot of fragile failed"));
            }
            other => panic!("expected MetricPanicked, got {other:?}"),
        }
        // Later events still reach the healthy metric.
        assert_eq!(
            recorder.register_event(Event::From { producer: 2 }),
            Ok(LogOutcome::Accepted)
        );
        let snapshots = block_on(recorder.snapshot_now()).unwrap();
        assert_eq!(snapshots["per_producer"].get("p2"), Some(2u64.into()));
        assert!(recorder.stop().wait().success);
        driver.join().unwrap();
    });
}

#[test]
fn unhandled_events_are_counted_per_event_type() {
    within_guard(|| {
        let (recorder, driver) = running_recorder("unhandled");
        recorder.register_metric(PerProducer::default()).unwrap();
        for _ in 0..3 {
            assert_eq!(
                recorder.register_event(Event::Other),
                Ok(LogOutcome::Accepted)
            );
        }
        assert_eq!(
            recorder.register_event(Event::From { producer: 3 }),
            Ok(LogOutcome::Accepted)
        );
        block_on(recorder.snapshot_now()).unwrap();
        let unhandled = recorder.unhandled();
        assert_eq!(unhandled.len(), 1);
        assert_eq!(unhandled.get("other"), Some(&3));
        assert!(recorder.stop().wait().success);
        driver.join().unwrap();
    });
}

#[test]
fn a_duplicate_metric_name_is_refused() {
    let (recorder, _driver) = MetricsRecorder::<Event>::new("dup", SinkConfig::default());
    recorder.register_metric(PerProducer::default()).unwrap();
    let error = recorder
        .register_metric(PerProducer::default())
        .unwrap_err();
    assert!(
        matches!(&error, RecorderError::DuplicateMetric { name } if name == "per_producer"),
        "{error:?}"
    );
    assert_eq!(error.reason(), MetricsReason::DuplicateName);
}

#[test]
fn a_recorder_on_a_gone_executor_fails_with_event_loop_unavailable() {
    let pool = LocalPool::new();
    let spawner = pool.spawner();
    drop(pool);
    let error =
        MetricsRecorder::<Event>::spawn_on("gone", SinkConfig::default(), &spawner).unwrap_err();
    assert!(
        matches!(
            error,
            RecorderError::Sink(mvx::error::SinkError::EventLoopUnavailable)
        ),
        "{error:?}"
    );
    assert_eq!(error.reason(), ErrorReason::EventLoopUnavailable);
}

#[test]
fn a_recorder_runs_under_tokio() {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    runtime.block_on(async {
        let (recorder, driver) = MetricsRecorder::<Event>::new("tokio", SinkConfig::default());
        let driver = tokio::spawn(driver);
        assert!(recorder.start().await.success);
        recorder.register_metric(PerProducer::default()).unwrap();
        for _ in 0..100 {
            assert_eq!(
                recorder.register_event(Event::From { producer: 1 }),
                Ok(LogOutcome::Accepted)
            );
        }
        let snapshots = recorder.snapshot_now().await.unwrap();
        assert_eq!(snapshots["per_producer"].get("p1"), Some(100u64.into()));
        assert!(recorder.stop().await.success);
        driver.await.unwrap();
        assert_eq!(recorder.state(), State::Stopped);
    });
}

/// By default a snapshot is JSON in the MVX document's shape, `{name, dimensions}`; every
/// field on request, with `Detailed`.
#[test]
fn snapshots_serialize_in_the_documents_shape_and_in_detail_on_request() {
    let snapshot = Snapshot::new("m", MetricKind::Histogram)
        .with("count", 2u64)
        .with("sum", 1.5f64)
        .with("delta", -3i64)
        .with_created(1_700_000_000.25);
    assert_eq!(
        serde_json::to_string(&snapshot).unwrap(),
        r#"{"name":"m","dimensions":{"count":2,"delta":-3,"sum":1.5}}"#
    );
    let detailed = serde_json::to_value(Detailed(&snapshot)).unwrap();
    assert_eq!(
        detailed,
        serde_json::json!({
            "name": "m",
            "dimensions": {"count": 2, "delta": -3, "sum": 1.5},
            "kind": "histogram",
            "created": 1_700_000_000.25,
        })
    );
    assert_eq!(serde_json::to_value(snapshot.detailed()).unwrap(), detailed);
    // The detailed form reads back whole.
    let back: Snapshot = serde_json::from_value(detailed).unwrap();
    assert_eq!(back, snapshot);

    // The document's shape reads back as a gauge: it says nothing of the kind.
    let document: Snapshot =
        serde_json::from_str(r#"{"name":"m","dimensions":{"total":3}}"#).unwrap();
    assert_eq!(
        document,
        Snapshot::new("m", MetricKind::Gauge).with("total", 3u64)
    );

    // A map of snapshots, both ways.
    let snapshots = Snapshots::from([(snapshot.key(), snapshot.clone())]);
    assert_eq!(
        serde_json::to_string(&snapshots).unwrap(),
        r#"{"m":{"name":"m","dimensions":{"count":2,"delta":-3,"sum":1.5}}}"#
    );
    assert_eq!(
        serde_json::to_value(Detailed(&snapshots)).unwrap()["m"]["kind"],
        "histogram"
    );

    // A labeled series keeps its labels in either form: without them two series of one
    // metric would read the same.
    let labeled = Snapshot::new("requests", MetricKind::Counter)
        .with("value", 1u64)
        .with_label("code", "200");
    assert_eq!(
        serde_json::to_string(&labeled).unwrap(),
        r#"{"name":"requests","dimensions":{"value":1},"labels":{"code":"200"}}"#
    );
    assert_eq!(
        serde_json::to_string(&labeled.detailed()).unwrap(),
        r#"{"name":"requests","dimensions":{"value":1},"kind":"counter","labels":{"code":"200"}}"#
    );
}

/// An event type of one kind: nothing to write for `event_type`.
#[derive(Debug, PartialEq)]
struct Saved;

impl MetricEvent for Saved {}

/// A generic event type, also with the default `event_type`.
struct Wrapped<T>(#[allow(dead_code)] T);

impl<T: Send + 'static> MetricEvent for Wrapped<T> {}

#[test]
fn event_type_defaults_to_the_type_name_without_its_path() {
    assert_eq!(Saved.event_type(), "Saved");
    assert_eq!(
        Wrapped(String::new()).event_type(),
        "Wrapped<alloc::string::String>"
    );
    // An event type that names its kinds keeps them.
    assert_eq!(Event::Other.event_type(), "other");
}

#[test]
fn events_of_a_default_event_type_are_counted_under_the_type_name() {
    within_guard(|| {
        let (recorder, driver) =
            MetricsRecorder::<Saved>::new("saved", SinkConfig::default().queue_capacity(8));
        let driver = std::thread::spawn(move || block_on(driver));
        assert!(recorder.start().wait().success);
        for _ in 0..2 {
            assert_eq!(recorder.register_event(Saved), Ok(LogOutcome::Accepted));
        }
        recorder.flush_blocking().unwrap();
        assert_eq!(
            recorder.unhandled().into_iter().collect::<Vec<_>>(),
            [("Saved".to_owned(), 2)]
        );
        assert!(recorder.stop().wait().success);
        driver.join().unwrap();
    });
}

#[test]
fn a_recorder_has_the_blocking_and_deadline_forms_of_the_sink() {
    within_guard(|| {
        let (recorder, driver) =
            MetricsRecorder::<Event>::new("blocking", SinkConfig::default().queue_capacity(8));
        recorder.register_metric(PerProducer::default()).unwrap();
        drop(recorder.start());
        assert_eq!(
            recorder.register_event(Event::From { producer: 1 }),
            Ok(LogOutcome::Accepted)
        );
        // The driver is not polled yet: nothing is applied, the deadline passes.
        let short = std::time::Duration::from_millis(20);
        let timed_out = recorder.snapshot_now().wait_timeout(short).unwrap_err();
        assert_eq!(timed_out.reason(), ErrorReason::WaitTimedOut);
        assert_eq!(
            recorder.flush().wait_timeout(short).map_err(|e| e.reason()),
            Err(ErrorReason::WaitTimedOut)
        );

        let driver = std::thread::spawn(move || block_on(driver));
        recorder.flush_blocking().unwrap();
        assert_eq!(recorder.stats().delivered, 1);
        assert_eq!(
            recorder.register_event(Event::From { producer: 2 }),
            Ok(LogOutcome::Accepted)
        );
        let snapshots = recorder.snapshot_now_blocking().unwrap();
        assert_eq!(snapshots["per_producer"].get("p1"), Some(1u64.into()));
        assert_eq!(snapshots["per_producer"].get("p2"), Some(1u64.into()));
        let deadline = std::time::Instant::now() + watchdog::GUARD;
        let snapshots = recorder.snapshot_now().wait_deadline(deadline).unwrap();
        assert_eq!(
            snapshots["per_producer"].get("p2").and_then(|v| v.as_u64()),
            Some(1)
        );
        assert!(recorder.stop().wait().success);
        driver.join().unwrap();
    });
}

#[test]
fn a_value_converts_to_u64_only_when_it_is_one_exactly() {
    use mvx::metrics::Value;

    assert_eq!(Value::U64(u64::MAX).as_u64(), Some(u64::MAX));
    assert_eq!(Value::I64(42).as_u64(), Some(42));
    assert_eq!(Value::I64(-1).as_u64(), None);
    assert_eq!(Value::F64(3.0).as_u64(), Some(3));
    assert_eq!(Value::F64(-0.0).as_u64(), Some(0));
    assert_eq!(Value::F64(3.5).as_u64(), None);
    assert_eq!(Value::F64(-3.0).as_u64(), None);
    assert_eq!(Value::F64(f64::NAN).as_u64(), None);
    assert_eq!(Value::F64(f64::INFINITY).as_u64(), None);
    // 2^64 is out of range; the largest f64 below it is not.
    assert_eq!(Value::F64(18_446_744_073_709_551_616.0).as_u64(), None);
    assert_eq!(
        Value::F64(18_446_744_073_709_549_568.0).as_u64(),
        Some(18_446_744_073_709_549_568)
    );
}
