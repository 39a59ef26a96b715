//! What a program can hand the metrics registry: arbitrary names, label names and values,
//! descriptions and metadata — empty, huge, with control characters, braces, quotes and
//! the text of another metric's series key — and sources whose snapshots have any names,
//! labels, dimensions and values. Each call gets a typed error or the right answer (checked
//! against a model of the registry's rules), never a panic, within a bound of CPU time per
//! input; and whatever was registered is read back, listed and encoded in both text
//! formats, the Prometheus text parsed by `promtool check metrics`.
#![cfg(not(loom))]

#[path = "support/cpu_time.rs"]
mod cpu_time;
#[path = "support/prometheus_tools.rs"]
mod prometheus_tools;

use prometheus_tools::promtool_parses;
use std::collections::BTreeMap;
use std::time::Duration;

use mvx::expose::{Format, encode};
use mvx::metrics::{
    Metadata, MetadataError, MetricKind, MetricsReason, RESERVED_KEYS, Registry, RegistryError,
    Selector, Snapshot, SnapshotSource, Snapshots, Value, series_key,
};
use proptest::prelude::*;

/// The most CPU time any one call may take.
const BOUND: Duration = Duration::from_millis(100);

/// The bucket bounds of every histogram here: bounds are not what these tests are about.
const BOUNDS: [f64; 2] = [0.5, 1.0];

/// Runs `f`, failing the case if the thread spent more than [`BOUND`] of CPU time in it.
fn bounded<T>(what: &str, f: impl FnOnce() -> T) -> Result<T, TestCaseError> {
    cpu_time::bounded(BOUND, what, f)
}

/// A name or a label: arbitrary text, or text built to trip a registry keyed by text.
fn text() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => any::<String>(),
        2 => "[a-c{}=\",\\\\\n. ]{0,8}",
        1 => prop::sample::select(vec![
            "", " ", "a", "a{", "a{b", "a{b=\"1\"}", "a{}", "}", "{", "le", "quantile", "__name__",
            "mvx_overflow", "true", "_total", "x_count", "\u{0}", "\u{feff}", "ü", "a\"b", "a\\",
            "\n", "a=\"1\",b",
        ])
        .prop_map(str::to_owned),
        1 => (1usize..5_000).prop_map(|length| "n".repeat(length)),
    ]
}

/// One request to the registry.
#[derive(Clone, Debug)]
enum Call {
    Instrument {
        kind: MetricKind,
        name: String,
        labels: Vec<(String, String)>,
    },
    Describe {
        name: String,
        unit: String,
        description: String,
    },
    Unregister(String),
}

fn kind() -> impl Strategy<Value = MetricKind> {
    prop::sample::select(vec![
        MetricKind::Counter,
        MetricKind::Gauge,
        MetricKind::Histogram,
    ])
}

fn call() -> impl Strategy<Value = Call> {
    prop_oneof![
        6 => (kind(), text(), prop::collection::vec((text(), text()), 0..4))
            .prop_map(|(kind, name, labels)| Call::Instrument { kind, name, labels }),
        1 => (text(), text(), text())
            .prop_map(|(name, unit, description)| Call::Describe { name, unit, description }),
        1 => text().prop_map(Call::Unregister),
    ]
}

/// A series as the model knows it.
#[derive(Clone, Debug, PartialEq)]
struct Series {
    name: String,
    labels: BTreeMap<String, String>,
    kind: MetricKind,
}

/// What the registry's rules say: its series by registry key, and descriptions by name.
#[derive(Default)]
struct Model {
    series: BTreeMap<String, Series>,
    descriptions: BTreeMap<String, Metadata>,
}

/// What a request for an instrument must get.
#[derive(Debug, PartialEq)]
enum Expected {
    /// The series found.
    Series,
    /// The series, new.
    NewSeries,
    InvalidName,
    KindConflict(MetricKind),
    /// Its key is taken by another metric (a name or labels that read as another's key).
    KeyTaken,
}

impl Model {
    fn instrument(
        &mut self,
        kind: MetricKind,
        name: &str,
        labels: BTreeMap<String, String>,
    ) -> Expected {
        if name.is_empty() {
            return Expected::InvalidName;
        }
        let key = series_key(name, &labels);
        if let Some(found) = self.series.get(&key) {
            if found.name != name || found.labels != labels {
                return Expected::KeyTaken;
            }
            if found.kind != kind {
                return Expected::KindConflict(found.kind);
            }
            return Expected::Series;
        }
        // One name, one kind, whatever the labels.
        if let Some(sibling) = self
            .series
            .values()
            .find(|series| series.name == name && series.kind != kind)
        {
            return Expected::KindConflict(sibling.kind);
        }
        let series = Series {
            name: name.to_owned(),
            labels,
            kind,
        };
        self.series.insert(key, series);
        Expected::NewSeries
    }
}

/// Applies `call` to `registry` and to `model`; checks the answer against the model's.
fn apply(registry: &Registry, model: &mut Model, call: &Call) -> Result<(), TestCaseError> {
    match call {
        Call::Instrument { kind, name, labels } => {
            let pairs: Vec<(&str, &str)> = labels
                .iter()
                .map(|(label, value)| (label.as_str(), value.as_str()))
                .collect();
            let map: BTreeMap<String, String> = labels.iter().cloned().collect();
            let answer = bounded("an instrument", || match kind {
                MetricKind::Counter => registry
                    .counter_with_labels(name, &pairs)
                    .map(|counter| (counter.name().to_owned(), counter.labels().clone())),
                MetricKind::Gauge => registry
                    .gauge_with_labels(name, &pairs)
                    .map(|gauge| (gauge.name().to_owned(), gauge.labels().clone())),
                _ => registry
                    .histogram_with_labels(name, &pairs, BOUNDS)
                    .map(|histogram| (histogram.name().to_owned(), histogram.labels().clone())),
            })?;
            let expected = model.instrument(*kind, name, map.clone());
            match (&answer, &expected) {
                (Ok((got_name, got_labels)), Expected::Series | Expected::NewSeries) => {
                    prop_assert_eq!(got_name, name);
                    prop_assert_eq!(got_labels, &map);
                }
                (Err(RegistryError::InvalidName { name: refused }), Expected::InvalidName) => {
                    prop_assert_eq!(refused, name);
                }
                (
                    Err(RegistryError::KindConflict {
                        existing,
                        requested,
                        ..
                    }),
                    Expected::KindConflict(kind_there),
                ) => {
                    prop_assert_eq!((existing, requested), (kind_there, kind));
                }
                (Err(RegistryError::Duplicate { name: taken }), Expected::KeyTaken) => {
                    prop_assert_eq!(taken, &series_key(name, &map));
                }
                // A new series whose exposed names another metric's take: refused by the
                // exposition's rules (`NAME_CONFLICT`), which this model leaves to
                // tests/expose_collisions.rs. Nothing was created.
                (Err(error), Expected::NewSeries)
                    if error.reason() == MetricsReason::NameConflict =>
                {
                    model.series.remove(&series_key(name, &map));
                }
                _ => prop_assert!(
                    false,
                    "{call:?}: got {answer:?}, the rules say {expected:?}"
                ),
            }
            if let Err(error) = &answer {
                prop_assert!(!error.to_string().is_empty());
            }
        }
        Call::Describe {
            name,
            unit,
            description,
        } => {
            let metadata = Metadata::new()
                .unit(unit.as_str())
                .description(description.as_str());
            let answer = bounded("describe", || registry.describe(name, metadata.clone()))?;
            if name.is_empty() {
                let refused = matches!(answer, Err(RegistryError::InvalidName { .. }));
                prop_assert!(refused, "{:?}", answer);
            } else {
                prop_assert!(answer.is_ok(), "{answer:?}");
                model.descriptions.insert(name.clone(), metadata.clone());
                let read = bounded("metadata", || registry.metadata(name))?;
                prop_assert_eq!(read, Some(metadata));
            }
        }
        Call::Unregister(name) => {
            let removed = bounded("unregister", || registry.unregister(name))?;
            model.descriptions.remove(name);
            prop_assert_eq!(removed, model.series.remove(name).is_some());
        }
    }
    Ok(())
}

/// Reads everything back: the snapshots are the model's series, the listing holds them,
/// and both text formats encode.
fn read_back(registry: &Registry, model: &Model) -> Result<String, TestCaseError> {
    let snapshots = bounded("snapshots", || registry.snapshots())?;
    let read: BTreeMap<&String, (&str, &BTreeMap<String, String>, MetricKind)> = snapshots
        .iter()
        .map(|(key, snapshot)| {
            (
                key,
                (snapshot.name.as_str(), &snapshot.labels, snapshot.kind),
            )
        })
        .collect();
    let expected: BTreeMap<&String, (&str, &BTreeMap<String, String>, MetricKind)> = model
        .series
        .iter()
        .map(|(key, series)| (key, (series.name.as_str(), &series.labels, series.kind)))
        .collect();
    prop_assert_eq!(read, expected);
    // A series is listed under its series key, or under its name (a labeled metric listed
    // once).
    let listed = bounded("get_metrics", || registry.get_metrics(&Selector::all()))?
        .expect("Selector::all() is a valid selector");
    for (key, series) in &model.series {
        prop_assert!(
            listed.contains_key(key) || listed.contains_key(&series.name),
            "{key:?} is not listed"
        );
    }
    let openmetrics = bounded("OpenMetrics text", || encode(registry, Format::OpenMetrics))?;
    prop_assert!(openmetrics.ends_with("# EOF\n"), "{openmetrics}");
    bounded("Prometheus text", || encode(registry, Format::Prometheus))
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 128, ..ProptestConfig::default() })]

    /// Any sequence of hostile requests: each answered as the rules say, everything read
    /// back and encoded.
    #[test]
    fn hostile_names_and_labels_get_the_rules_answer(
        calls in prop::collection::vec(call(), 1..24)
    ) {
        let registry = Registry::new();
        let mut model = Model::default();
        for call in &calls {
            apply(&registry, &mut model, call)?;
        }
        read_back(&registry, &model)?;
    }

    /// Metadata with hostile keys, values and rates: a typed error exactly when a rule is
    /// broken, and what was set is what is read.
    #[test]
    fn hostile_metadata_is_refused_by_its_rules_or_kept_as_given(
        key in prop_oneof![text(), prop::sample::select(RESERVED_KEYS.to_vec()).prop_map(str::to_owned)],
        value in text(),
        rate in prop_oneof![
            any::<f64>(),
            Just(f64::NAN), Just(f64::INFINITY), Just(-0.0), Just(0.0), Just(f64::MIN_POSITIVE),
            Just(5e-324), Just(f64::MAX),
        ],
    ) {
        match bounded("field", || Metadata::new().field(key.as_str(), value.as_str()))? {
            Ok(metadata) => {
                prop_assert!(!key.is_empty() && !RESERVED_KEYS.contains(&key.as_str()));
                prop_assert_eq!(metadata.get_field(&key), Some(&serde_json::Value::from(value.as_str())));
                let json = serde_json::to_string(&metadata).expect("metadata serializes");
                let back: Metadata = serde_json::from_str(&json).expect("and reads back");
                prop_assert_eq!(back, metadata);
            }
            Err(error) => {
                prop_assert!(key.is_empty() || RESERVED_KEYS.contains(&key.as_str()));
                prop_assert!(
                    matches!(&error, MetadataError::ReservedKey { key: refused } if *refused == key),
                    "{error:?}"
                );
            }
        }
        match bounded("rate", || Metadata::new().rate(rate))? {
            Ok(metadata) => {
                prop_assert!(rate.is_finite() && rate > 0.0);
                prop_assert_eq!(metadata.get_rate(), Some(rate));
            }
            Err(MetadataError::InvalidRate { rate: refused }) => {
                prop_assert!(!(rate.is_finite() && rate > 0.0));
                prop_assert_eq!(refused.to_bits(), rate.to_bits());
            }
            Err(error) => prop_assert!(false, "{error:?}"),
        }
    }

    /// Any bytes as a metadata document: metadata that writes back to the same metadata,
    /// or a typed error.
    #[test]
    fn any_bytes_as_a_metadata_document_read_or_refused(
        bytes in prop_oneof![
            prop::collection::vec(any::<u8>(), 0..64),
            prop::collection::vec((text(), text()), 0..4).prop_map(|fields| {
                let object: serde_json::Map<String, serde_json::Value> = fields
                    .into_iter()
                    .map(|(key, value)| (key, serde_json::Value::String(value)))
                    .collect();
                serde_json::to_vec(&object).expect("an object serializes")
            }),
            Just(br#"{"rate": -1}"#.to_vec()),
            Just(br#"{"rate": 1e999}"#.to_vec()),
            Just(br#"{"hidden": "yes"}"#.to_vec()),
            Just(br#"{"x": 1}"#.to_vec()),
            Just(format!("{}1{}", "[".repeat(10_000), "]".repeat(10_000)).into_bytes()),
        ]
    ) {
        if let Ok(metadata) = bounded("reading metadata", || serde_json::from_slice::<Metadata>(&bytes))? {
            let json = serde_json::to_vec(&metadata).expect("metadata serializes");
            let back: Metadata = serde_json::from_slice(&json).expect("and reads back");
            prop_assert_eq!(back, metadata);
        }
    }
}

/// A source whose snapshots are whatever it was given.
struct Given(Snapshots);

impl SnapshotSource for Given {
    fn collect(&self, into: &mut Snapshots) {
        into.extend(
            self.0
                .iter()
                .map(|(key, snapshot)| (key.clone(), snapshot.clone())),
        );
    }
}

/// A snapshot value: any number, not-a-number and the infinities among them.
fn number() -> impl Strategy<Value = Value> {
    prop_oneof![
        any::<u64>().prop_map(Value::U64),
        any::<i64>().prop_map(Value::I64),
        any::<f64>().prop_map(Value::F64),
        prop::sample::select(vec![
            f64::NAN,
            f64::INFINITY,
            f64::NEG_INFINITY,
            -0.0,
            1e-300
        ])
        .prop_map(Value::F64),
    ]
}

/// A snapshot a source could give: any name, kind, labels and dimensions, the dimensions of
/// a histogram (`le:<bound>`, `count`, `sum`) among them, with bounds that do not parse.
fn snapshot() -> impl Strategy<Value = Snapshot> {
    let dimension = prop_oneof![
        text(),
        prop::sample::select(vec![
            "value", "count", "sum", "nan", "le:+Inf", "le:inf", "le:NaN", "le:-inf", "le:0.5",
            "le:1", "le:", "le:1e309", "le:-0", "le:x",
        ])
        .prop_map(str::to_owned),
    ];
    (
        text(),
        prop::sample::select(vec![
            MetricKind::Counter,
            MetricKind::Gauge,
            MetricKind::Histogram,
            MetricKind::Info,
        ]),
        prop::collection::btree_map(text(), text(), 0..3),
        prop::collection::btree_map(dimension, number(), 0..6),
    )
        .prop_map(|(name, kind, labels, dimensions)| {
            let mut snapshot = Snapshot::new(name, kind);
            snapshot.labels = labels;
            snapshot.dimensions = dimensions;
            snapshot
        })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 128, ..ProptestConfig::default() })]

    /// A source that gives hostile snapshots: read back as given, listed, and encoded in
    /// both formats within the bound.
    #[test]
    fn hostile_snapshots_of_a_source_are_read_back_and_encoded(
        given in prop::collection::vec(snapshot(), 0..8),
        source_name in text(),
    ) {
        let registry = Registry::new();
        let snapshots: Snapshots = given
            .into_iter()
            .map(|snapshot| (snapshot.key(), snapshot))
            .collect();
        let registered = registry.register_source(&source_name, std::sync::Arc::new(Given(snapshots.clone())));
        if source_name.is_empty() {
            let refused = matches!(registered, Err(RegistryError::InvalidName { .. }));
            prop_assert!(refused, "{:?}", registered);
            return Ok(());
        }
        prop_assert!(registered.is_ok(), "{:?}", registered);
        let read = bounded("snapshots", || registry.snapshots())?;
        prop_assert_eq!(format!("{read:?}"), format!("{snapshots:?}"));
        // Every snapshot listed, under its key or its name; nothing else.
        let listed = bounded("get_metrics", || registry.get_metrics(&Selector::all()))?
        .expect("Selector::all() is a valid selector");
        for (key, snapshot) in &snapshots {
            prop_assert!(listed.contains_key(key) || listed.contains_key(&snapshot.name), "{key:?}");
        }
        for name in listed.keys() {
            prop_assert!(
                snapshots.contains_key(name) || snapshots.values().any(|snapshot| &snapshot.name == name),
                "{name:?}"
            );
        }
        for format in [Format::Prometheus, Format::OpenMetrics] {
            bounded("encoding", || encode(&registry, format))?;
        }
        prop_assert_eq!(registry.source_panics(), 0);
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    /// Hostile snapshots of a source, in whatever the exposition makes of them: text that
    /// promtool parses.
    #[test]
    fn the_exposition_of_hostile_snapshots_passes_promtool(
        given in prop::collection::vec(snapshot(), 1..8),
    ) {
        let registry = Registry::new();
        let snapshots: Snapshots = given
            .into_iter()
            .map(|snapshot| (snapshot.key(), snapshot))
            .collect();
        registry
            .register_source("hostile", std::sync::Arc::new(Given(snapshots)))
            .expect("a source");
        let text = encode(&registry, Format::Prometheus);
        let (passed, report) = promtool_parses(&text);
        prop_assert!(passed, "promtool found problems:\n{}\nin:\n{}", report, text);
    }

    /// Hostile names and labels, in whatever the exposition makes of them: text that
    /// promtool parses.
    #[test]
    fn the_exposition_of_hostile_names_passes_promtool(
        calls in prop::collection::vec(call(), 1..16)
    ) {
        let registry = Registry::new();
        let mut model = Model::default();
        for call in &calls {
            apply(&registry, &mut model, call)?;
        }
        let text = read_back(&registry, &model)?;
        let (passed, report) = promtool_parses(&text);
        prop_assert!(passed, "promtool found problems:\n{}\nin:\n{}", report, text);
    }
}

#[test]
fn a_name_or_a_label_that_reads_as_another_series_key_is_a_typed_error() {
    let registry = Registry::new();
    registry
        .counter_with_labels("a", &[("x", "1")])
        .expect("a series")
        .inc();
    // The unlabeled counter named `a{x="1"}` is another metric than the series of `a`.
    let error = registry.counter("a{x=\"1\"}").unwrap_err();
    assert!(
        matches!(&error, RegistryError::Duplicate { name } if name == "a{x=\"1\"}"),
        "{error:?}"
    );
    // Two label sets whose keys read the same.
    registry
        .counter_with_labels("b", &[("x", "1"), ("y", "2")])
        .expect("a series");
    let error = registry
        .counter_with_labels("b", &[("x=\"1\",y", "2")])
        .unwrap_err();
    assert!(
        matches!(&error, RegistryError::Duplicate { .. }),
        "{error:?}"
    );
    // A name that starts like another's series is another name: no conflict of kinds.
    registry.gauge("c{d").expect("a gauge named c{d");
    registry
        .counter_with_labels("c", &[("d", "1")])
        .expect("a series of c");
    // One name, one kind, whatever the labels: also for the unlabeled instrument.
    let error = registry.gauge("a").unwrap_err();
    assert!(
        matches!(
            &error,
            RegistryError::KindConflict {
                existing: MetricKind::Counter,
                requested: MetricKind::Gauge,
                ..
            }
        ),
        "{error:?}"
    );
    let error = registry.histogram("a", BOUNDS).unwrap_err();
    assert!(
        matches!(
            &error,
            RegistryError::KindConflict {
                existing: MetricKind::Counter,
                ..
            }
        ),
        "{error:?}"
    );
    assert_eq!(
        registry
            .counter("a")
            .expect("a counter, as its series")
            .get(),
        0
    );
}
