//! `timed` into a `LatencyHistogram` (or any `ObserveDuration`): the same adapter as into a
//! `Histogram`, recording the duration to the nanosecond. What `timed` records and when
//! (completion, errors, panics, drops) is held by tests/instrumented_future.rs for every
//! instrument alike: the adapter is one, generic over the instrument.
#![cfg(not(loom))]

use std::sync::{Arc, Mutex};
use std::time::Duration;

use mvx::instrument::{InstrumentExt, ObserveDuration, timed};
use mvx::metrics::{Histogram, LatencyHistogram};

#[test]
fn timed_records_the_duration_into_a_latency_histogram() {
    let latency = LatencyHistogram::new("work.latency");
    let slept = futures::executor::block_on(
        async {
            std::thread::sleep(Duration::from_millis(2));
            Ok::<_, std::io::Error>(7)
        }
        .timed(&latency),
    );
    assert_eq!(slept.expect("ok"), 7);
    let distribution = latency.distribution();
    assert_eq!(distribution.count(), 1);
    // At least the sleep; the sum is the recorded duration to the nanosecond.
    assert!(
        distribution.sum() >= Duration::from_millis(2),
        "{distribution:?}"
    );
    assert_eq!(distribution.max(), distribution.quantile(1.0));

    let answer = futures::executor::block_on(timed(&latency, async { 42 }));
    assert_eq!(answer, 42);
    assert_eq!(latency.count(), 2);
    let debug = format!("{:?}", async {}.timed(&latency));
    assert!(
        debug.starts_with("Timed { histogram: \"work.latency\""),
        "{debug}"
    );
}

#[test]
fn a_histogram_observes_the_same_durations_in_seconds() {
    let histogram = Histogram::new("work.seconds", [0.5, 1.0]).expect("valid");
    histogram.observe_duration(Duration::from_millis(250));
    assert_eq!(histogram.sum(), 0.25);
    let latency = LatencyHistogram::new("work.latency");
    latency.observe_duration(Duration::from_micros(3));
    assert_eq!(latency.sum(), Duration::from_micros(3));
    assert_eq!(
        (
            ObserveDuration::name(&histogram),
            ObserveDuration::name(&latency)
        ),
        ("work.seconds", "work.latency")
    );
}

/// An instrument of the user's: every duration, in a list.
#[derive(Clone, Default)]
struct Durations(Arc<Mutex<Vec<Duration>>>);

impl ObserveDuration for Durations {
    fn observe_duration(&self, elapsed: Duration) {
        self.0.lock().expect("not poisoned").push(elapsed);
    }

    fn name(&self) -> &str {
        "durations"
    }
}

#[test]
fn any_observe_duration_can_be_timed_into() {
    let durations = Durations::default();
    futures::executor::block_on(async {}.timed(&durations));
    futures::executor::block_on(async {}.timed(&durations));
    // Dropped after its first poll, before completion: a cancellation, observed too.
    let cancelled =
        futures::FutureExt::now_or_never(std::future::pending::<()>().timed(&durations));
    assert_eq!(cancelled, None);
    // Dropped before its first poll: never ran, not observed.
    drop(async {}.timed(&durations));
    assert_eq!(durations.0.lock().expect("not poisoned").len(), 3);
}
