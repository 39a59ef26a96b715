//! The `metrics` facade's series against the registry's changes: a series unregistered from
//! the registry counts again, into the exposition, on its next update through the facade
//! (through the macros and through a handle held across the `unregister`); past the
//! registry's series limit, facade updates land in the overflow series, every one counted.
//!
//! Each test installs its recorder for its own thread only (`with_local_recorder`).
#![cfg(not(loom))]

use mvx::expose::{Format, encode};
use mvx::facade::metrics::RegistryRecorder;
use mvx::metrics::{Histogram, MetricKind, Registry, RegistryError};

#[test]
fn an_unregistered_counter_counts_again_on_its_next_update_through_the_macros() {
    let registry = Registry::new();
    let recorder = RegistryRecorder::new(registry.clone());
    metrics::with_local_recorder(&recorder, || {
        metrics::counter!("jobs").increment(1);
        metrics::counter!("jobs", "queue" => "a").increment(1);
        assert!(registry.unregister("jobs"));
        assert!(registry.unregister("jobs{queue=\"a\"}"));
        assert_eq!(registry.names(), Vec::<String>::new());
        metrics::counter!("jobs").increment(2);
        metrics::counter!("jobs", "queue" => "a").increment(3);
    });
    assert_eq!(registry.counter("jobs").expect("jobs").get(), 2);
    assert_eq!(
        registry
            .counter_with_labels("jobs", &[("queue", "a")])
            .expect("jobs")
            .get(),
        3
    );
    let text = encode(&registry, Format::Prometheus);
    assert!(text.contains("jobs_total 2\n"), "{text}");
    assert!(text.contains("jobs_total{queue=\"a\"} 3\n"), "{text}");
    assert_eq!(recorder.rejected(), 0);
}

#[test]
fn a_handle_held_across_an_unregister_counts_into_the_registry_again() {
    let registry = Registry::new();
    let recorder = RegistryRecorder::new(registry.clone());
    let (counter, gauge, histogram) = metrics::with_local_recorder(&recorder, || {
        (
            metrics::counter!("held.count", "k" => "v"),
            metrics::gauge!("held.level"),
            metrics::histogram!("held.seconds"),
        )
    });
    counter.increment(1);
    gauge.set(4.0);
    histogram.record(0.2);
    for name in ["held.count{k=\"v\"}", "held.level", "held.seconds"] {
        assert!(registry.unregister(name), "{name}");
    }
    counter.increment(5);
    counter.increment(5);
    gauge.increment(1.5);
    histogram.record(0.3);
    assert_eq!(
        registry
            .counter_with_labels("held.count", &[("k", "v")])
            .expect("counter")
            .get(),
        10
    );
    // The gauge starts over from zero: it is a new series.
    assert_eq!(registry.gauge("held.level").expect("gauge").get(), 1.5);
    let seconds = registry
        .histogram("held.seconds", Histogram::DEFAULT_BUCKETS.iter().copied())
        .expect("histogram");
    assert_eq!((seconds.count(), seconds.sum()), (1, 0.3));

    // Unregistered again, and taken meanwhile by the registry's own instrument: the handle
    // counts into that one.
    assert!(registry.unregister("held.count{k=\"v\"}"));
    let direct = registry
        .counter_with_labels("held.count", &[("k", "v")])
        .expect("counter");
    counter.increment(7);
    assert_eq!(direct.get(), 7);
    let text = encode(&registry, Format::Prometheus);
    assert!(text.contains("held_count_total{k=\"v\"} 7\n"), "{text}");
}

#[test]
fn a_name_taken_by_another_kind_meanwhile_is_a_counted_refusal() {
    let registry = Registry::new();
    let recorder = RegistryRecorder::new(registry.clone());
    let counter = metrics::with_local_recorder(&recorder, || metrics::counter!("taken"));
    counter.increment(1);
    assert!(registry.unregister("taken"));
    registry.gauge("taken").expect("gauge").set(9.0);
    counter.increment(1);
    assert_eq!(registry.gauge("taken").expect("gauge").get(), 9.0);
    assert_eq!(recorder.rejected(), 1);
    assert!(matches!(
        recorder.last_error(),
        Some(RegistryError::KindConflict {
            existing: MetricKind::Gauge,
            requested: MetricKind::Counter,
            ..
        })
    ));
}

#[test]
fn past_the_series_limit_facade_updates_land_in_the_overflow_series() {
    let registry = Registry::with_series_limit(50);
    let recorder = RegistryRecorder::new(registry.clone());
    metrics::with_local_recorder(&recorder, || {
        for round in 0..3 {
            for user in 0..1_000u32 {
                metrics::counter!("logins", "user" => user.to_string()).increment(1);
                metrics::histogram!("login.seconds", "user" => user.to_string())
                    .record(f64::from(round));
            }
        }
    });
    let snapshots = registry.snapshots();
    let logins: Vec<u64> = snapshots
        .values()
        .filter(|snapshot| snapshot.name == "logins")
        .map(|snapshot| {
            snapshot
                .get("value")
                .and_then(|value| value.as_u64())
                .expect("count")
        })
        .collect();
    assert_eq!(logins.len(), 51);
    assert_eq!(logins.iter().sum::<u64>(), 3_000);
    let overflow = registry
        .counter_with_labels("logins", &[("mvx_overflow", "true")])
        .expect("the overflow series");
    assert_eq!(overflow.get(), 3 * 950);
    let seconds: u64 = snapshots
        .values()
        .filter(|snapshot| snapshot.name == "login.seconds")
        .map(|snapshot| {
            snapshot
                .get("count")
                .and_then(|value| value.as_u64())
                .expect("count")
        })
        .sum();
    assert_eq!(seconds, 3_000);
    assert_eq!(registry.series_count("logins"), 50);
    // The facade looks the series up on every call: every update past the limit is a
    // refused lookup.
    assert_eq!(registry.series_refused("logins"), 3 * 950);
    assert_eq!(recorder.rejected(), 0);
}
