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

/// The registry every case selects from, and the runtime that must outlive it.
///
/// | name | from | hidden | historic |
/// |---|---|---|---|
/// | debug.cpu.samples | counter | yes | |
/// | debug.trace | counter | yes | yes |
/// | host.cpu.load | gauge | | yes |
/// | host.cpu.temperature | gauge | | |
/// | host.disk.free | gauge | | yes |
/// | http.requests | counter (no metadata) | | |
/// | http.seconds | histogram | | |
/// | worker.jobs | recorder metric | | yes |
/// | worker.queue | recorder metric | yes | |
fn fixture() -> (Registry, MetricsRuntime) {
    let registry = Registry::new();
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
                .historic(true)
                .rate(1.0)
                .expect("rate"),
        )
        .expect("gauge");
    registry
        .gauge_with("host.cpu.temperature", Metadata::new().unit("Cel"))
        .expect("gauge");
    registry
        .gauge_with(
            "host.disk.free",
            Metadata::new()
                .unit("By")
                .historic(true)
                .field("device", "/dev/sda1")
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
            metadata: Metadata::new().description("jobs done").historic(true),
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

const ALL: [&str; 9] = [
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

/// Runs each case against the fixture: the selected names, in order.
fn check(cases: Vec<(&str, Selector, Vec<&str>)>) {
    let (registry, runtime) = fixture();
    for (case, selector, expected) in cases {
        let selected = registry.get_metrics(&selector);
        assert_eq!(names(&selected), expected, "{case}: {selector}");
        // The same selector without metadata selects the same names.
        let bare = registry.get_metrics(&selector.clone().metadata(false));
        assert_eq!(names(&bare), expected, "{case} without metadata");
        assert!(
            bare.values().all(|metadata| *metadata == Metadata::new()),
            "{case}: {bare:?}"
        );
        // And it reads back from its query string (which cannot say "an empty list"); the
        // query string is read by the exposition server's `from_query` (feature `http`).
        #[cfg(feature = "http")]
        if !selector.get_names().is_some_and(|names| names.is_empty()) {
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
            "an empty list",
            Selector::names(Vec::<String>::new()),
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
            "infix",
            Selector::all().infix(".cpu."),
            vec!["debug.cpu.samples", "host.cpu.load", "host.cpu.temperature"],
        ),
        (
            "an infix anywhere",
            Selector::all().infix("s"),
            vec![
                "debug.cpu.samples",
                "host.cpu.load",
                "host.cpu.temperature",
                "host.disk.free",
                "http.requests",
                "http.seconds",
                "worker.jobs",
            ],
        ),
        (
            "hidden",
            Selector::all().hidden(true),
            vec!["debug.cpu.samples", "debug.trace", "worker.queue"],
        ),
        (
            "not hidden (no metadata counts as not hidden)",
            Selector::all().hidden(false),
            vec![
                "host.cpu.load",
                "host.cpu.temperature",
                "host.disk.free",
                "http.requests",
                "http.seconds",
                "worker.jobs",
            ],
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
            "not historic",
            Selector::all().historic(false),
            vec![
                "debug.cpu.samples",
                "host.cpu.temperature",
                "http.requests",
                "http.seconds",
                "worker.queue",
            ],
        ),
        ("limit 0", Selector::all().limit(0), vec![]),
        (
            "limit keeps the first in name order",
            Selector::all().limit(2),
            vec!["debug.cpu.samples", "debug.trace"],
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
            vec!["host.cpu.load", "host.cpu.temperature"],
        ),
        (
            "prefix and historic",
            Selector::all().prefix("host.").historic(true),
            vec!["host.cpu.load", "host.disk.free"],
        ),
        (
            "hidden and historic",
            Selector::all().hidden(true).historic(true),
            vec!["debug.trace"],
        ),
        (
            "the limit applies after the other filters",
            regex("o").hidden(false).limit(2),
            vec!["host.cpu.load", "host.cpu.temperature"],
        ),
        (
            "names narrowed by prefix",
            Selector::names(["host.cpu.load", "http.requests", "worker.queue"]).prefix("h"),
            vec!["host.cpu.load", "http.requests"],
        ),
        (
            "names narrowed by flags and limit",
            Selector::names(["debug.trace", "host.disk.free", "worker.jobs"])
                .historic(true)
                .hidden(false)
                .limit(1),
            vec!["host.disk.free"],
        ),
        (
            "regex, prefix and infix",
            regex(r"e\b|e$").prefix("host.").infix("cpu"),
            vec!["host.cpu.temperature"],
        ),
        (
            "every filter",
            regex("[a-z]+")
                .prefix("w")
                .infix(".")
                .hidden(false)
                .historic(true)
                .limit(5),
            vec!["worker.jobs"],
        ),
        (
            "prefix and infix that exclude each other",
            Selector::all().prefix("http.").infix("cpu"),
            vec![],
        ),
    ]);
}

#[test]
fn metadata_comes_from_the_registry_then_the_source() {
    let (registry, runtime) = fixture();
    let selected = registry.get_metrics(&Selector::all());
    assert_eq!(
        selected["host.disk.free"],
        Metadata::new()
            .unit("By")
            .historic(true)
            .field("device", "/dev/sda1")
            .expect("field")
    );
    assert_eq!(selected["http.requests"], Metadata::new());
    assert_eq!(
        selected["worker.jobs"],
        Metadata::new().description("jobs done").historic(true)
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
    registry
        .describe("worker.queue", Metadata::new().unit("jobs"))
        .expect("describe");
    let visible = registry.get_metrics(&Selector::names(["worker.queue"]).hidden(false));
    assert_eq!(
        visible,
        BTreeMap::from([("worker.queue".to_owned(), Metadata::new().unit("jobs"))])
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

    let selected = registry.get_metrics(&Selector::all());
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
    let selected = registry.get_metrics(&regex(r"^(host\.cpu|worker)\.").historic(true));
    assert_eq!(
        serde_json::to_value(&selected).expect("JSON"),
        serde_json::json!({
            "host.cpu.load": {"unit": "%", "rate": 1.0, "historic": true},
            "worker.jobs": {"description": "jobs done", "historic": true},
        })
    );
    let bare = registry.get_metrics(&regex(r"^(host\.cpu|worker)\.").metadata(false));
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
