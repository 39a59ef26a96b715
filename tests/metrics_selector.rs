//! `Registry::get_metrics` with a `Selector`: every filter alone and in combination over a
//! registry of instruments and a recorder, each metric with its metadata; where metadata
//! comes from (descriptions, instruments created with metadata, recorder metrics); and what
//! the answer looks like as JSON.
#![cfg(not(loom))]

use std::collections::BTreeMap;
use std::sync::Arc;

use mvx::ErrorReason;
use mvx::agent::{Selector, SelectorError};
use mvx::metrics::{
    Metadata, Metric, MetricEvent, MetricKind, MetricsReason, MetricsRuntime, Registry,
    RegistryError, Snapshot, SnapshotSource, Snapshots,
};

/// An event nobody sends: the recorder's metrics only need to exist.
struct Tick;

impl MetricEvent for Tick {
    fn event_type(&self) -> &str {
        "tick"
    }
}

/// A recorder metric with a name and metadata of its own.
struct Described {
    name: &'static str,
    metadata: Metadata,
}

impl Metric<Tick> for Described {
    fn name(&self) -> &str {
        self.name
    }

    fn handle_event(&mut self, _: &Tick) -> bool {
        true
    }

    fn snapshot(&self) -> Snapshot {
        Snapshot::new(self.name, MetricKind::Gauge).with("value", 0u64)
    }

    fn metadata(&self) -> Metadata {
        self.metadata.clone()
    }
}

/// The registry every case selects from, and the runtime that must outlive it. `hidden`
/// and `historic` are as stored: blank is "not stored", which metricq's manager selects
/// neither with `true` nor with `false`.
///
/// | name | from | hidden | historic |
/// |---|---|---|---|
/// | Worker.threads | counter (no metadata) | | |
/// | debug.cpu.samples | counter | true | |
/// | debug.trace | counter | true | true |
/// | host.cpu.load | gauge | false | true |
/// | host.cpu.temperature | gauge | | false |
/// | host.disk.free | gauge | | true |
/// | http.requests | counter (no metadata) | | |
/// | http.seconds | histogram | | |
/// | worker.jobs | recorder metric | false | true |
/// | worker.queue | recorder metric | true | |
fn fixture() -> (Registry, MetricsRuntime) {
    let registry = Registry::new();
    registry.counter("Worker.threads").expect("counter");
    registry
        .counter_with("debug.cpu.samples", Metadata::new().hidden(true))
        .expect("counter");
    registry
        .counter_with("debug.trace", Metadata::new().hidden(true).historic(true))
        .expect("counter");
    registry
        .gauge_with(
            "host.cpu.load",
            Metadata::new()
                .unit("%")
                .hidden(false)
                .historic(true)
                .rate(1.0)
                .expect("rate"),
        )
        .expect("gauge");
    registry
        .gauge_with(
            "host.cpu.temperature",
            Metadata::new().unit("Cel").historic(false),
        )
        .expect("gauge");
    registry
        .gauge_with(
            "host.disk.free",
            Metadata::new()
                .unit("By")
                .historic(true)
                .field("device", "/dev/sda1")
                .expect("field")
                .field("bounds", serde_json::json!([0, 300]))
                .expect("field"),
        )
        .expect("gauge");
    registry.counter("http.requests").expect("counter");
    registry
        .histogram_with(
            "http.seconds",
            [0.1, 1.0],
            Metadata::new().unit("s").description("time to answer"),
        )
        .expect("histogram");
    // A description of a name that no metric has: never listed.
    registry
        .describe("ghost", Metadata::new().description("nobody"))
        .expect("describe");

    let runtime = MetricsRuntime::new().expect("runtime");
    let recorder = runtime.create_recorder::<Tick>("worker").expect("recorder");
    recorder
        .register_metric(Described {
            name: "worker.jobs",
            metadata: Metadata::new()
                .description("jobs done")
                .hidden(false)
                .historic(true),
        })
        .expect("metric");
    recorder
        .register_metric(Described {
            name: "worker.queue",
            metadata: Metadata::new().hidden(true),
        })
        .expect("metric");
    registry
        .register_source("worker", Arc::new(recorder))
        .expect("source");
    (registry, runtime)
}

/// Every name, as the answer's map orders them (by bytes: upper case first).
const ALL: [&str; 10] = [
    "Worker.threads",
    "debug.cpu.samples",
    "debug.trace",
    "host.cpu.load",
    "host.cpu.temperature",
    "host.disk.free",
    "http.requests",
    "http.seconds",
    "worker.jobs",
    "worker.queue",
];

fn regex(pattern: &str) -> Selector {
    Selector::regex(pattern).expect("a valid regular expression")
}

fn names(selected: &BTreeMap<String, Metadata>) -> Vec<&str> {
    selected.keys().map(String::as_str).collect()
}

/// Runs each case against the fixture: the selected names, in the map's order.
fn check(cases: Vec<(&str, Selector, Vec<&str>)>) {
    let (registry, runtime) = fixture();
    for (case, selector, expected) in cases {
        let selected = registry.get_metrics(&selector).expect(case);
        assert_eq!(names(&selected), expected, "{case}: {selector}");
        // The same selector without metadata selects the same names.
        let bare = registry
            .get_metrics(&selector.clone().metadata(false))
            .expect(case);
        assert_eq!(names(&bare), expected, "{case} without metadata");
        assert!(
            bare.values().all(|metadata| *metadata == Metadata::new()),
            "{case}: {bare:?}"
        );
        // And it reads back from its query string, read by the exposition server's
        // `from_query` (feature `http`).
        #[cfg(feature = "http")]
        {
            let query = selector.to_string();
            assert_eq!(
                Selector::from_query(&query).as_ref(),
                Ok(&selector),
                "{case}: {query}"
            );
        }
    }
    runtime.shutdown().expect("runtime stops");
}

/// The cases follow metricq-manager's `get_metrics` (its source, metricq/metricq-manager
/// `manager.py`, and the CouchDB views and Mango queries it runs). The manager itself
/// cannot run here: it needs CouchDB, which neither Debian's packages nor PyPI provide, so
/// the expected answers are written from that source.
#[test]
fn each_filter_alone() {
    check(vec![
        ("everything", Selector::all(), ALL.to_vec()),
        ("the empty regex", regex(""), ALL.to_vec()),
        (
            "a regex matches anywhere in the name",
            regex("cpu"),
            vec!["debug.cpu.samples", "host.cpu.load", "host.cpu.temperature"],
        ),
        (
            "an anchored regex",
            regex(r"^http\."),
            vec!["http.requests", "http.seconds"],
        ),
        (
            "alternatives and an end anchor",
            regex(r"\.(load|free|jobs)$"),
            vec!["host.cpu.load", "host.disk.free", "worker.jobs"],
        ),
        ("a regex that matches nothing", regex("^cpu"), vec![]),
        ("regexes are case-sensitive", regex("CPU"), vec![]),
        (
            "explicit names, unknown ones left out",
            Selector::names(["worker.jobs", "http.requests", "missing", "ghost"]),
            vec!["http.requests", "worker.jobs"],
        ),
        (
            "an explicit name is not a pattern",
            Selector::names(["http"]),
            vec![],
        ),
        (
            "prefix",
            Selector::all().prefix("host."),
            vec!["host.cpu.load", "host.cpu.temperature", "host.disk.free"],
        ),
        ("an empty prefix", Selector::all().prefix(""), ALL.to_vec()),
        (
            "a prefix is the start only",
            Selector::all().prefix("cpu"),
            vec![],
        ),
        (
            "a prefix is case-sensitive",
            Selector::all().prefix("worker"),
            vec!["worker.jobs", "worker.queue"],
        ),
        (
            "infix: a component starts with it",
            Selector::all().infix("cpu"),
            vec!["debug.cpu.samples", "host.cpu.load", "host.cpu.temperature"],
        ),
        (
            "infix across components",
            Selector::all().infix("cpu.lo"),
            vec!["host.cpu.load"],
        ),
        (
            "infix inside a component matches nothing",
            Selector::all().infix("pu"),
            vec![],
        ),
        (
            "infix at the first component",
            Selector::all().infix("host"),
            vec!["host.cpu.load", "host.cpu.temperature", "host.disk.free"],
        ),
        (
            "infix s: the components samples and seconds",
            Selector::all().infix("s"),
            vec!["debug.cpu.samples", "http.seconds"],
        ),
        (
            "an infix starting with the dot starts no component",
            Selector::all().infix(".cpu"),
            vec![],
        ),
        ("an empty infix", Selector::all().infix(""), ALL.to_vec()),
        (
            "hidden",
            Selector::all().hidden(true),
            vec!["debug.cpu.samples", "debug.trace", "worker.queue"],
        ),
        (
            "not hidden: only where hidden=false is stored",
            Selector::all().hidden(false),
            vec!["host.cpu.load", "worker.jobs"],
        ),
        (
            "historic",
            Selector::all().historic(true),
            vec![
                "debug.trace",
                "host.cpu.load",
                "host.disk.free",
                "worker.jobs",
            ],
        ),
        (
            "not historic: only where historic=false is stored",
            Selector::all().historic(false),
            vec!["host.cpu.temperature"],
        ),
        ("limit 0", Selector::all().limit(0), vec![]),
        (
            "limit keeps the first in metricq's order, which ignores case",
            Selector::all().limit(2),
            vec!["debug.cpu.samples", "debug.trace"],
        ),
        (
            "Worker.threads comes after worker.queue in metricq's order",
            Selector::all().limit(9),
            ALL[1..].to_vec(),
        ),
        (
            "a limit above the count",
            Selector::all().limit(100),
            ALL.to_vec(),
        ),
        (
            "unset filters are no filters",
            Selector::all().hidden(None).historic(None).limit(None),
            ALL.to_vec(),
        ),
    ]);
}

#[test]
fn filters_combined() {
    check(vec![
        (
            "regex and not hidden",
            regex("cpu").hidden(false),
            vec!["host.cpu.load"],
        ),
        (
            "prefix and historic",
            Selector::all().prefix("host.").historic(true),
            vec!["host.cpu.load", "host.disk.free"],
        ),
        (
            "infix and historic",
            Selector::all().infix("cpu").historic(true),
            vec!["host.cpu.load"],
        ),
        (
            "hidden and historic",
            Selector::all().hidden(true).historic(true),
            vec!["debug.trace"],
        ),
        (
            "the limit applies after the other filters",
            regex("o").hidden(false).limit(1),
            vec!["host.cpu.load"],
        ),
        (
            "infix and limit",
            Selector::all().infix("cpu").limit(1),
            vec!["debug.cpu.samples"],
        ),
        (
            "names narrowed by flags and limit",
            Selector::names(["debug.trace", "host.disk.free", "worker.jobs"])
                .historic(true)
                .hidden(false)
                .limit(1),
            vec!["worker.jobs"],
        ),
        (
            "a limit over names that differ in case",
            regex("(?i)^worker\\.").limit(2),
            vec!["worker.jobs", "worker.queue"],
        ),
        (
            "every filter a prefix may go with",
            Selector::all()
                .prefix("w")
                .hidden(false)
                .historic(true)
                .limit(5),
            vec!["worker.jobs"],
        ),
    ]);
}

/// The combinations metricq's manager refuses are typed errors, from the registry, from a
/// selector and from a query string alike.
#[test]
fn the_combinations_the_manager_refuses_are_errors() {
    let (registry, runtime) = fixture();
    for (case, selector, refused) in [
        (
            "prefix and infix",
            Selector::all().prefix("host.").infix("cpu"),
            SelectorError::PrefixAndInfix,
        ),
        (
            "a regex and a prefix",
            regex("cpu").prefix("host."),
            SelectorError::SelectorAndFix,
        ),
        (
            "a regex and an infix",
            regex("cpu").infix("cpu"),
            SelectorError::SelectorAndFix,
        ),
        (
            "names and a prefix",
            Selector::names(["host.cpu.load"]).prefix("h"),
            SelectorError::SelectorAndFix,
        ),
        (
            "names and an infix",
            Selector::names(["host.cpu.load"]).infix("cpu"),
            SelectorError::SelectorAndFix,
        ),
        (
            "an empty list of names",
            Selector::names(Vec::<String>::new()),
            SelectorError::EmptyNameList,
        ),
    ] {
        assert_eq!(selector.check(), Err(refused.clone()), "{case}");
        assert_eq!(
            registry.get_metrics(&selector),
            Err(refused.clone()),
            "{case}"
        );
        assert_eq!(selector.select([]), Err(refused.clone()), "{case}");
        assert_eq!(refused.reason(), MetricsReason::InvalidArgument, "{case}");
        #[cfg(feature = "http")]
        if !matches!(refused, SelectorError::EmptyNameList) {
            // (A query string cannot say "an empty list".)
            let query = selector.to_string();
            assert_eq!(
                Selector::from_query(&query),
                Err(refused),
                "{case}: {query}"
            );
        }
    }
    runtime.shutdown().expect("runtime stops");
}

#[test]
fn metadata_comes_from_the_registry_then_the_source() {
    let (registry, runtime) = fixture();
    let selected = registry.get_metrics(&Selector::all()).expect("selected");
    assert_eq!(
        selected["host.disk.free"],
        Metadata::new()
            .unit("By")
            .historic(true)
            .field("device", "/dev/sda1")
            .expect("field")
            .field("bounds", serde_json::json!([0, 300]))
            .expect("field")
    );
    assert_eq!(selected["http.requests"], Metadata::new());
    assert_eq!(
        selected["worker.jobs"],
        Metadata::new()
            .description("jobs done")
            .hidden(false)
            .historic(true)
    );
    assert_eq!(
        registry.metadata("ghost").as_ref(),
        Some(&Metadata::new().description("nobody"))
    );
    assert_eq!(registry.metadata("http.requests"), None);
    assert_eq!(
        registry.metadata("worker.queue"),
        Some(Metadata::new().hidden(true))
    );

    // A description on the registry replaces the source's metadata as a whole.
    let visible = Metadata::new().unit("jobs").hidden(false);
    registry
        .describe("worker.queue", visible.clone())
        .expect("describe");
    let selected = registry
        .get_metrics(&Selector::names(["worker.queue"]).hidden(false))
        .expect("selected");
    assert_eq!(
        selected,
        BTreeMap::from([("worker.queue".to_owned(), visible)])
    );

    // Unregistering a name removes its description; a new counter has none.
    assert!(registry.unregister("host.cpu.load"));
    registry.gauge("host.cpu.load").expect("gauge");
    assert_eq!(registry.metadata("host.cpu.load"), None);
    runtime.shutdown().expect("runtime stops");
}

#[test]
fn instruments_created_with_metadata_refuse_other_metadata() {
    let registry = Registry::new();
    let metadata = Metadata::new().description("jobs run");
    let jobs = registry
        .counter_with("jobs", metadata.clone())
        .expect("counter");
    registry
        .counter_with("jobs", metadata.clone())
        .expect("the same metadata")
        .inc();
    assert_eq!(jobs.get(), 1);

    let error = registry
        .counter_with("jobs", Metadata::new())
        .expect_err("other metadata");
    assert_eq!(error.reason(), ErrorReason::DescriptorConflict);
    assert_eq!(error.name(), "jobs");
    let RegistryError::MetadataConflict {
        existing,
        requested,
        ..
    } = error
    else {
        panic!("{error:?}");
    };
    assert_eq!((*existing, *requested), (metadata.clone(), Metadata::new()));

    // A described name refuses other metadata before creating anything.
    registry
        .describe("depth", Metadata::new().unit("items"))
        .expect("describe");
    assert!(matches!(
        registry.gauge_with("depth", Metadata::new()),
        Err(RegistryError::MetadataConflict { .. })
    ));
    assert_eq!(registry.names(), ["jobs"]);
    registry
        .gauge_with("depth", Metadata::new().unit("items"))
        .expect("the described metadata");
    assert_eq!(registry.names(), ["depth", "jobs"]);

    // Kind and name rules come first; a refused creation describes nothing.
    assert!(matches!(
        registry.histogram_with("jobs", [1.0], Metadata::new()),
        Err(RegistryError::MetadataConflict { .. })
    ));
    assert!(matches!(
        registry.histogram_with("latency", [2.0, 1.0], Metadata::new().unit("s")),
        Err(RegistryError::UnsortedBuckets { .. })
    ));
    assert_eq!(registry.metadata("latency"), None);
    assert!(matches!(
        registry.counter_with("", Metadata::new()),
        Err(RegistryError::InvalidName { .. })
    ));
    assert!(matches!(
        registry.describe("", Metadata::new()),
        Err(RegistryError::InvalidName { .. })
    ));
    // `describe` replaces whatever was there.
    registry
        .describe("jobs", Metadata::new().unit("jobs"))
        .expect("describe");
    assert_eq!(
        registry.metadata("jobs"),
        Some(Metadata::new().unit("jobs"))
    );
}

/// A source whose metadata panics: skipped and reported like a panic in `collect`.
struct PanickyMetadata;

impl SnapshotSource for PanickyMetadata {
    fn collect(&self, into: &mut Snapshots) {
        into.insert(
            "panicky".to_owned(),
            Snapshot::new("panicky", MetricKind::Gauge).with("value", 1u64),
        );
    }

    fn collect_metadata(&self, _: &mut BTreeMap<String, Metadata>) {
        panic!("no metadata today");
    }
}

#[test]
fn a_source_that_panics_in_collect_metadata_is_skipped_and_reported() {
    let registry = Registry::new();
    registry.counter("steady").expect("counter");
    registry
        .register_source("panicky", Arc::new(PanickyMetadata))
        .expect("source");
    // Snapshots alone do not ask for metadata.
    assert_eq!(registry.snapshots().len(), 2);
    assert_eq!(registry.source_panics(), 0);

    let selected = registry.get_metrics(&Selector::all()).expect("selected");
    assert_eq!(names(&selected), ["steady"]);
    assert_eq!(registry.source_panics(), 1);
    let Some(RegistryError::SourcePanicked { name, cause }) = registry.last_error() else {
        panic!("{:?}", registry.last_error());
    };
    assert_eq!(name, "panicky");
    assert_eq!(cause.panic_message(), Some("no metadata today"));
}

#[test]
fn the_answer_serializes_as_a_json_object_of_names() {
    let (registry, runtime) = fixture();
    let selected = registry
        .get_metrics(&regex(r"^(host\.(cpu|disk)|worker)\.").historic(true))
        .expect("selected");
    assert_eq!(
        serde_json::to_value(&selected).expect("JSON"),
        serde_json::json!({
            "host.cpu.load": {"unit": "%", "rate": 1.0, "hidden": false, "historic": true},
            "host.disk.free": {
                "unit": "By", "historic": true, "device": "/dev/sda1", "bounds": [0, 300]
            },
            "worker.jobs": {"description": "jobs done", "hidden": false, "historic": true},
        })
    );
    let bare = registry
        .get_metrics(&regex(r"^(host\.cpu|worker)\.").metadata(false))
        .expect("selected");
    assert_eq!(
        serde_json::to_string(&bare).expect("JSON"),
        r#"{"host.cpu.load":{},"host.cpu.temperature":{},"worker.jobs":{},"worker.queue":{}}"#
    );
    runtime.shutdown().expect("runtime stops");
}

#[test]
fn an_invalid_regex_is_an_error_with_a_reason() {
    for pattern in ["(", "a{3,1}", "[z-a]", r"\k"] {
        let error = Selector::regex(pattern).expect_err(pattern);
        assert_eq!(error.reason(), MetricsReason::InvalidRegex, "{pattern}");
        assert_eq!(error.reason().as_str(), "INVALID_REGEX");
        assert!(
            matches!(&error, SelectorError::InvalidRegex { pattern: refused, .. } if refused == pattern),
            "{error:?}"
        );
    }
}
