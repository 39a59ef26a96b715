//! Hostile names and labels through the `metrics` facade: whatever a call site passes (empty,
//! huge, with braces, quotes, control characters, a label given twice, the text of another
//! series' key), the recorder lands it where the registry itself would, or counts the
//! registry's refusal — never a panic, within a bound of CPU time per call.
#![cfg(not(loom))]

#[path = "support/cpu_time.rs"]
mod cpu_time;

use std::time::Duration;

use metrics::{Key, Label, Level, Recorder};
use mvx::facade::metrics::RegistryRecorder;
use mvx::metrics::{Histogram, MetricKind, Registry};
use proptest::prelude::*;

/// The most CPU time one call may take.
const BOUND: Duration = Duration::from_millis(100);

/// The metadata the facade's macros would pass.
const METADATA: metrics::Metadata<'static> =
    metrics::Metadata::new("facade_metrics_hostile_names", Level::INFO, None);

/// A name or a label: arbitrary text, or text built to trip a registry keyed by text.
fn text() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => any::<String>(),
        2 => "[a-c{}=\",\\\\\n. ]{0,8}",
        1 => prop::sample::select(vec![
            "", "a", "a{", "a{b=\"1\"}", "}", "le", "mvx_overflow", "_total", "\u{0}", "a\"b",
        ])
        .prop_map(str::to_owned),
        1 => (1usize..5_000).prop_map(|length| "n".repeat(length)),
    ]
}

/// One facade call: a kind, a name, labels (in the call site's order), a value.
type Call = (MetricKind, String, Vec<(String, String)>, u32);

fn call() -> impl Strategy<Value = Call> {
    (
        prop::sample::select(vec![
            MetricKind::Counter,
            MetricKind::Gauge,
            MetricKind::Histogram,
        ]),
        text(),
        prop::collection::vec((text(), text()), 0..3),
        1u32..1_000,
    )
}

/// Records `call` through the facade.
fn through_the_facade(recorder: &RegistryRecorder, (kind, name, labels, value): &Call) {
    let labels: Vec<Label> = labels
        .iter()
        .map(|(key, value)| Label::new(key.clone(), value.clone()))
        .collect();
    let key = Key::from_parts(name.clone(), labels);
    match kind {
        MetricKind::Counter => recorder
            .register_counter(&key, &METADATA)
            .increment(u64::from(*value)),
        MetricKind::Gauge => recorder
            .register_gauge(&key, &METADATA)
            .set(f64::from(*value)),
        _ => recorder
            .register_histogram(&key, &METADATA)
            .record(f64::from(*value)),
    }
}

/// Records `call` in `registry` directly; whether the registry refused it.
fn directly(registry: &Registry, (kind, name, labels, value): &Call) -> bool {
    let labels: Vec<(&str, &str)> = labels
        .iter()
        .map(|(key, value)| (key.as_str(), value.as_str()))
        .collect();
    let recorded = match kind {
        MetricKind::Counter => registry
            .counter_with_labels(name, &labels)
            .map(|counter| counter.inc_by(u64::from(*value))),
        MetricKind::Gauge => registry
            .gauge_with_labels(name, &labels)
            .map(|gauge| gauge.set(f64::from(*value))),
        _ => registry
            .histogram_with_labels(name, &labels, Histogram::DEFAULT_BUCKETS.iter().copied())
            .map(|histogram| histogram.observe(f64::from(*value))),
    };
    recorded.is_err()
}

/// What `registry` holds, series by series: key, name, labels, kind and values.
fn contents(registry: &Registry) -> String {
    let snapshots = registry.snapshots();
    let contents: Vec<_> = snapshots
        .iter()
        .map(|(key, snapshot)| {
            (
                key,
                &snapshot.name,
                &snapshot.labels,
                snapshot.kind,
                &snapshot.dimensions,
            )
        })
        .collect();
    format!("{contents:?}")
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 128, ..ProptestConfig::default() })]

    /// Any sequence of hostile facade calls: the registry ends as if the calls were made on
    /// it directly, and a refusal is counted exactly when the registry refused a call.
    #[test]
    fn hostile_facade_calls_land_as_direct_calls_would(calls in prop::collection::vec(call(), 1..16)) {
        let facade = Registry::new();
        let recorder = RegistryRecorder::new(facade.clone());
        let direct = Registry::new();
        let mut refused = false;
        for call in &calls {
            cpu_time::bounded(BOUND, "a facade call", || through_the_facade(&recorder, call))?;
            refused |= directly(&direct, call);
        }
        prop_assert_eq!(contents(&facade), contents(&direct));
        prop_assert_eq!(recorder.rejected() > 0, refused, "{:?}", recorder.last_error());
    }

    /// Hostile descriptions: kept as given, or refused and counted (an empty name).
    #[test]
    fn hostile_descriptions_are_kept_or_counted(name in text(), description in text()) {
        let registry = Registry::new();
        let recorder = RegistryRecorder::new(registry.clone());
        cpu_time::bounded(BOUND, "a description", || {
            recorder.describe_counter(name.clone().into(), Some(metrics::Unit::Bytes), description.clone().into());
        })?;
        if name.is_empty() {
            prop_assert_eq!(recorder.rejected(), 1);
        } else {
            let metadata = registry.metadata(&name).expect("described");
            prop_assert_eq!(metadata.get_description(), Some(description.as_str()));
            prop_assert_eq!(metadata.get_unit(), Some(metrics::Unit::Bytes.as_canonical_label()));
            prop_assert_eq!(recorder.rejected(), 0);
        }
        prop_assert_eq!(
            recorder.description(&name).map(|described| described.text),
            Some(description)
        );
    }
}
