//! One thread, one `MetricsRecorder` on a `MetricsRuntime`: each step applied to the real
//! recorder and to the model, compared.

use std::collections::BTreeMap;

use futures::executor::block_on;
use mvx::error::LogError;
use mvx::metrics::{
    Metric, MetricEvent, MetricKind, MetricsRecorder, MetricsRuntime, Snapshot, Snapshots, Value,
};
use mvx::queue::{LogOutcome, OverflowPolicy, QueueStats};
use mvx::sink::SinkConfig;
use mvx::{ErrorReason, Op};

use super::model::{Event, Logged, OpExpect, RecorderModel, Tally};
use super::sequential::assert_op;

impl MetricEvent for Event {
    fn event_type(&self) -> &str {
        if RecorderModel::handles(*self) {
            "reading"
        } else {
            "skipped"
        }
    }
}

/// Counts and sums the events whose value is not divisible by 5; leaves the others
/// unhandled.
#[derive(Default)]
pub struct TallyMetric {
    count: u64,
    sum: u64,
}

impl Metric<Event> for TallyMetric {
    fn name(&self) -> &str {
        "tally"
    }

    fn handle_event(&mut self, event: &Event) -> bool {
        if !RecorderModel::handles(*event) {
            return false;
        }
        self.count += 1;
        self.sum += u64::from(event.value);
        true
    }

    fn snapshot(&self) -> Snapshot {
        Snapshot::new("tally", MetricKind::Counter)
            .with("count", self.count)
            .with("sum", self.sum)
    }
}

/// Reads the tally out of the snapshots and the recorder's unhandled counts.
pub fn read_tally(snapshots: &Snapshots, unhandled: &BTreeMap<String, u64>) -> Tally {
    let snapshot = &snapshots["tally"];
    let read = |dimension: &str| match snapshot.get(dimension) {
        Some(Value::U64(value)) => value,
        other => panic!("{dimension} is {other:?}"),
    };
    let mut others = unhandled.clone();
    let skipped = others.remove("skipped").unwrap_or(0);
    assert!(others.is_empty(), "unhandled {unhandled:?}");
    Tally {
        count: read("count"),
        sum: read("sum"),
        unhandled: skipped,
    }
}

/// One operation on a recorder.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RecorderStep {
    /// `register_event` of an event of this value.
    Register(u32),
    /// `snapshot_now().await`: the barrier.
    SnapshotNow,
    /// `snapshots()`: the latest state, no barrier.
    Snapshots,
    Start,
    Stop,
    /// `MetricsRuntime::shutdown()`.
    Shutdown,
}

/// A recorder's configuration and the steps applied to it.
#[derive(Clone, Debug)]
pub struct RecorderCase {
    pub capacity: usize,
    pub policy: OverflowPolicy,
    pub steps: Vec<RecorderStep>,
}

/// Runs every step of `case` on a recorder of a fresh runtime and on the model.
pub fn run(case: RecorderCase) {
    let runtime = MetricsRuntime::new().expect("the runtime starts");
    let config = SinkConfig::default()
        .queue_capacity(case.capacity)
        .overflow(case.policy)
        .stop_timeout(None);
    let recorder = runtime
        .create_recorder_with::<Event>("prop", config)
        .expect("the recorder starts");
    recorder
        .register_metric(TallyMetric::default())
        .expect("the only metric");
    let mut model = RecorderModel::new(case.capacity, case.policy);
    let mut previous = QueueStats::default();
    check(&runtime, &recorder, &model, &mut previous, "created");
    for (index, step) in case.steps.iter().enumerate() {
        apply(&runtime, &recorder, &mut model, *step);
        check(
            &runtime,
            &recorder,
            &model,
            &mut previous,
            &format!("step {index}: {step:?}"),
        );
    }
}

/// Applies one step to the real recorder and to the model, comparing the results.
fn apply(
    runtime: &MetricsRuntime,
    recorder: &MetricsRecorder<Event>,
    model: &mut RecorderModel,
    step: RecorderStep,
) {
    match step {
        RecorderStep::Register(value) => {
            let (event, allowed) = model.register(value);
            let logged = match recorder.register_event(event) {
                Ok(LogOutcome::Accepted) => Logged::Accepted,
                Ok(LogOutcome::Dropped) => Logged::Dropped,
                Err(LogError::QueueOverflow(back)) => {
                    assert_eq!(back, event, "the refused event comes back");
                    Logged::Overflow
                }
                Err(LogError::NotAccepting { event: back, state }) => {
                    assert_eq!(back, event, "the refused event comes back");
                    Logged::NotAccepting(state)
                }
                Err(error @ LogError::WouldDeadlock(_)) => {
                    panic!("no producer here runs the driver, yet {error:?}")
                }
            };
            assert!(
                allowed.contains(logged),
                "register_event({event:?}) returned {logged:?}, the model allows {allowed:?}"
            );
            model.registered(event, logged);
        }
        RecorderStep::SnapshotNow => {
            let expected = model.snapshot_now();
            let snapshots = block_on(recorder.snapshot_now()).expect("the barrier succeeds");
            assert_eq!(read_tally(&snapshots, &recorder.unhandled()), expected);
        }
        RecorderStep::Snapshots => {
            let tally = read_tally(&recorder.snapshots(), &recorder.unhandled());
            let (known, caught_up) = (model.tally(), model.caught_up());
            assert!(
                (known.count..=caught_up.count).contains(&tally.count),
                "{tally:?} not between {known:?} and {caught_up:?}"
            );
        }
        RecorderStep::Start => {
            let expect = model.start();
            expect_ready(recorder.start(), Op::Start, expect);
        }
        RecorderStep::Stop => {
            let expect = model.stop();
            let handle = recorder.stop();
            match expect {
                OpExpect::Eventually(expected) => assert_op(&handle.wait(), Op::Stop, expected),
                ready => expect_ready(handle, Op::Stop, ready),
            }
        }
        RecorderStep::Shutdown => {
            model.shutdown();
            if let Err(error) = runtime.shutdown() {
                panic!("shutdown failed: {error:?}");
            }
            assert!(runtime.is_shut_down());
        }
    }
}

/// Checks a handle whose result the model says is ready at once.
fn expect_ready(handle: mvx::WaitHandle, op: Op, expect: OpExpect) {
    let OpExpect::Ready(expected) = expect else {
        panic!("{op} on a recorder is ready at once or waited for, not {expect:?}");
    };
    let ready = handle.try_result().expect("the result is ready at once");
    assert_op(&ready, op, expected);
    assert_op(&handle.wait(), op, expected);
}

/// Compares the real recorder and runtime with the model after a step.
fn check(
    runtime: &MetricsRuntime,
    recorder: &MetricsRecorder<Event>,
    model: &RecorderModel,
    previous: &mut QueueStats,
    after: &str,
) {
    let stats = recorder.stats();
    let context = format!("after {after}: real {stats}, model {model:?}");
    assert_eq!(recorder.state(), model.state, "{context}");
    assert_eq!(stats.accepted, model.accepted.len() as u64, "{context}");
    assert_eq!(stats.dropped, model.dropped, "{context}");
    assert_eq!(stats.failed, 0, "{context}");
    assert_eq!(
        stats.accepted,
        stats.delivered + stats.failed + stats.pending,
        "{context}"
    );
    assert!(stats.pending <= model.capacity as u64, "{context}");
    assert!(stats.high_watermark <= model.capacity, "{context}");
    assert!(stats.delivered >= previous.delivered, "{context}");
    assert!(stats.high_watermark >= previous.high_watermark, "{context}");
    let tally = read_tally(&recorder.snapshots(), &recorder.unhandled());
    if model.exact {
        assert_eq!(stats, model.stats(stats.high_watermark), "{context}");
        assert_eq!(tally, model.tally(), "{context}");
    } else {
        let (known, caught_up) = (model.tally(), model.caught_up());
        assert!(
            (known.count..=caught_up.count).contains(&tally.count),
            "{context}"
        );
        assert!(
            (known.sum..=caught_up.sum).contains(&tally.sum),
            "{context}"
        );
        assert!(stats.pending <= model.in_flight(), "{context}");
    }
    assert!(
        recorder.last_error().is_none(),
        "{:?}: {context}",
        recorder.last_error()
    );
    let registered: Vec<String> = if model.shut_down {
        Vec::new()
    } else {
        vec!["prop".to_owned()]
    };
    assert_eq!(runtime.recorders(), registered, "{context}");
    assert_eq!(runtime.is_shut_down(), model.shut_down, "{context}");
    // A runtime that shut down refuses new recorders; one that runs refuses the name.
    if model.shut_down {
        let refused = runtime
            .create_recorder::<Event>("late")
            .expect_err("the runtime has shut down");
        assert_eq!(
            refused.reason(),
            ErrorReason::EventLoopUnavailable,
            "{context}"
        );
    }
    *previous = stats;
}
