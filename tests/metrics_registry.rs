//! The metrics `Registry`: get-or-create by name, shared clones, conflicts of name, kind
//! and buckets, names whose exposed samples collide, snapshot sources (duplicates, order, unregistering, a panicking source, a
//! source that uses the registry) and racing get-or-create calls.
#![cfg(not(loom))]

use std::sync::{Arc, Barrier};
use std::thread;

use mvx::ErrorReason;
use mvx::metrics::{
    Counter, MetricKind, MetricsReason, Registry, RegistryError, Snapshot, SnapshotSource,
    Snapshots, Value,
};

#[test]
fn registry_gets_or_creates_by_name() {
    let registry = Registry::new();
    let first = registry.counter("requests").expect("created");
    first.inc();
    let second = registry.counter("requests").expect("found");
    second.inc();
    assert_eq!(first.get(), 2);

    registry.gauge("temperature").expect("created").set(3.0);
    assert_eq!(registry.gauge("temperature").expect("found").get(), 3.0);

    registry
        .histogram("latency", [1.0, 2.0])
        .expect("created")
        .observe(1.5);
    assert_eq!(
        registry
            .histogram("latency", vec![1.0, 2.0])
            .expect("found")
            .count(),
        1
    );

    assert_eq!(registry.names(), ["latency", "requests", "temperature"]);
}

#[test]
fn registry_clones_share_the_map() {
    let registry = Registry::new();
    let clone = registry.clone();
    clone.counter("shared").expect("created").inc_by(4);
    assert_eq!(registry.counter("shared").expect("found").get(), 4);
    assert_eq!(registry.names(), ["shared"]);
}

#[test]
fn same_name_with_another_kind_is_a_conflict() {
    let registry = Registry::new();
    registry.counter("x").expect("created");
    let error = registry.gauge("x").unwrap_err();
    assert!(matches!(
        &error,
        RegistryError::KindConflict { name, existing: MetricKind::Counter, requested: MetricKind::Gauge }
            if name == "x"
    ));
    assert_eq!(error.reason(), ErrorReason::DescriptorConflict);
    assert_eq!(error.name(), "x");
    assert_eq!(error.to_string(), r#"metric "x" is a counter, not a gauge"#);

    let error = registry.histogram("x", [1.0]).unwrap_err();
    assert!(matches!(
        error,
        RegistryError::KindConflict {
            existing: MetricKind::Counter,
            requested: MetricKind::Histogram,
            ..
        }
    ));

    registry.histogram("h", [1.0]).expect("created");
    assert!(matches!(
        registry.counter("h").unwrap_err(),
        RegistryError::KindConflict {
            existing: MetricKind::Histogram,
            requested: MetricKind::Counter,
            ..
        }
    ));
    // Nothing was replaced.
    assert_eq!(registry.names(), ["h", "x"]);
    assert_eq!(registry.snapshots()["x"].kind, MetricKind::Counter);
}

#[test]
fn same_histogram_with_other_buckets_is_a_conflict() {
    let registry = Registry::new();
    registry.histogram("latency", [0.1, 1.0]).expect("created");
    let error = registry.histogram("latency", [0.1, 2.0]).unwrap_err();
    match &error {
        RegistryError::BucketsConflict {
            name,
            existing,
            requested,
        } => {
            assert_eq!(name, "latency");
            assert_eq!(existing, &[0.1, 1.0]);
            assert_eq!(requested, &[0.1, 2.0]);
        }
        other => panic!("expected BucketsConflict, got {other:?}"),
    }
    assert_eq!(error.reason(), ErrorReason::DescriptorConflict);
    assert!(matches!(
        registry.histogram("latency", [0.1]).unwrap_err(),
        RegistryError::BucketsConflict { .. }
    ));
}

#[test]
fn registry_rejects_empty_names_and_invalid_buckets() {
    let registry = Registry::new();
    for error in [
        registry.counter("").unwrap_err(),
        registry.gauge("").unwrap_err(),
        registry.histogram("", [1.0]).unwrap_err(),
        registry
            .register_source("", Arc::new(Counter::new("c")))
            .unwrap_err(),
    ] {
        assert!(matches!(&error, RegistryError::InvalidName { name } if name.is_empty()));
        assert_eq!(error.reason(), ErrorReason::Unexpected);
    }
    assert!(matches!(
        registry.histogram("h", [2.0, 1.0]).unwrap_err(),
        RegistryError::UnsortedBuckets { index: 1, .. }
    ));
    assert!(matches!(
        registry.histogram("h", []).unwrap_err(),
        RegistryError::EmptyBuckets { .. }
    ));
    assert!(registry.names().is_empty());
}

/// A source with two snapshots, named after it.
struct Pair {
    name: &'static str,
    counter: Counter,
}

impl SnapshotSource for Pair {
    fn collect(&self, into: &mut Snapshots) {
        for suffix in ["a", "b"] {
            let name = format!("{}.{suffix}", self.name);
            let snapshot =
                Snapshot::new(name.clone(), MetricKind::Counter).with("value", self.counter.get());
            into.insert(name, snapshot);
        }
    }
}

#[test]
fn duplicate_source_names_are_refused() {
    let registry = Registry::new();
    let pair = Arc::new(Pair {
        name: "pair",
        counter: Counter::new("unused"),
    });
    registry
        .register_source("pair", pair.clone())
        .expect("registered");
    let error = registry.register_source("pair", pair.clone()).unwrap_err();
    assert!(matches!(&error, RegistryError::Duplicate { name } if name == "pair"));
    assert_eq!(error.reason(), ErrorReason::DescriptorConflict);
    assert_eq!(
        error.to_string(),
        r#"metric name "pair" is already registered"#
    );

    // A source and an instrument cannot share a name either, in either order.
    assert!(matches!(
        registry.counter("pair").unwrap_err(),
        RegistryError::Duplicate { .. }
    ));
    registry.gauge("g").expect("created");
    assert!(matches!(
        registry.register_source("g", pair).unwrap_err(),
        RegistryError::Duplicate { .. }
    ));
    assert_eq!(registry.names(), ["g", "pair"]);
}

#[test]
fn snapshots_hold_every_instrument_and_source_in_name_order() {
    let registry = Registry::new();
    registry.counter("c").expect("created").inc_by(3);
    registry.gauge("b").expect("created").set(1.5);
    registry
        .histogram("a", [1.0])
        .expect("created")
        .observe(0.5);
    let counter = Counter::new("inner");
    counter.inc();
    registry
        .register_source(
            "pair",
            Arc::new(Pair {
                name: "pair",
                counter,
            }),
        )
        .expect("registered");

    let snapshots = registry.snapshots();
    let names: Vec<&str> = snapshots.keys().map(String::as_str).collect();
    assert_eq!(names, ["a", "b", "c", "pair.a", "pair.b"]);
    assert_eq!(snapshots["a"].get("count"), Some(Value::U64(1)));
    assert_eq!(snapshots["b"].get("value"), Some(Value::F64(1.5)));
    assert_eq!(snapshots["c"].get("value"), Some(Value::U64(3)));
    assert_eq!(snapshots["pair.b"].get("value"), Some(Value::U64(1)));
    assert_eq!(registry.source_panics(), 0);
    assert!(registry.last_error().is_none());
}

#[test]
fn unregister_removes_the_entry_and_frees_the_name() {
    let registry = Registry::new();
    let old = registry.counter("x").expect("created");
    old.inc();
    registry
        .register_source("s", Arc::new(Counter::new("s")))
        .expect("registered");
    assert!(registry.unregister("x"));
    assert!(!registry.unregister("x"));
    assert!(registry.unregister("s"));
    assert!(registry.names().is_empty());
    assert!(registry.snapshots().is_empty());

    // The old handle still works; the name is free for anything.
    old.inc();
    assert_eq!(old.get(), 2);
    assert_eq!(registry.gauge("x").expect("created").get(), 0.0);
}

/// A source that panics in `collect` after writing a snapshot.
struct Panicking;

impl SnapshotSource for Panicking {
    fn collect(&self, into: &mut Snapshots) {
        into.insert(
            "half.written".to_owned(),
            Snapshot::new("half.written", MetricKind::Gauge),
        );
        panic!("collect failed on purpose");
    }
}

#[test]
fn a_panicking_source_is_contained_and_reported() {
    let registry = Registry::new();
    registry.counter("after").expect("created").inc();
    registry.counter("before").expect("created").inc_by(2);
    registry
        .register_source("broken", Arc::new(Panicking))
        .expect("registered");

    for round in 1..=2 {
        let snapshots = registry.snapshots();
        // The other entries are there; nothing of the broken source is.
        let names: Vec<&str> = snapshots.keys().map(String::as_str).collect();
        assert_eq!(names, ["after", "before"]);
        assert_eq!(registry.source_panics(), round);
    }

    let error = registry.last_error().expect("the panic is reported");
    match &error {
        RegistryError::SourcePanicked { name, cause } => {
            assert_eq!(name, "broken");
            assert_eq!(cause.panic_message(), Some("collect failed on purpose"));
        }
        other => panic!("expected SourcePanicked, got {other:?}"),
    }
    assert_eq!(error.reason(), ErrorReason::Unexpected);
    assert_eq!(
        mvx::error::Report(&error).to_string(),
        r#"snapshot source "broken" panicked: panicked: collect failed on purpose"#
    );

    // The registry still works: new entries, lookups, removal of the broken source.
    registry.gauge("later").expect("created");
    assert!(registry.unregister("broken"));
    assert_eq!(registry.snapshots().len(), 3);
    assert_eq!(registry.source_panics(), 2);
}

/// A source that uses the registry it is registered in.
struct Reentrant(Registry);

impl SnapshotSource for Reentrant {
    fn collect(&self, into: &mut Snapshots) {
        let reads = self.0.counter("reentrant.reads").expect("counter");
        reads.inc();
        into.insert("reentrant".to_owned(), reads.snapshot());
    }
}

#[test]
fn a_source_may_use_the_registry_while_collected() {
    let registry = Registry::new();
    registry
        .register_source("reentrant", Arc::new(Reentrant(registry.clone())))
        .expect("registered");
    let snapshots = registry.snapshots();
    assert_eq!(snapshots["reentrant"].get("value"), Some(Value::U64(1)));
    assert_eq!(registry.names(), ["reentrant", "reentrant.reads"]);
}

#[test]
fn registry_get_or_create_races_to_one_instrument() {
    const THREADS: u64 = 4;
    const PER_THREAD: u64 = 100;
    let registry = Registry::new();
    let start = Barrier::new(THREADS as usize);
    thread::scope(|scope| {
        for _ in 0..THREADS {
            scope.spawn(|| {
                start.wait();
                for _ in 0..PER_THREAD {
                    registry.counter("raced").expect("counter").inc();
                    registry
                        .histogram("raced.h", [1.0])
                        .expect("histogram")
                        .observe(0.5);
                }
            });
        }
    });
    assert_eq!(
        registry.counter("raced").expect("found").get(),
        THREADS * PER_THREAD
    );
    assert_eq!(
        registry.histogram("raced.h", [1.0]).expect("found").count(),
        THREADS * PER_THREAD
    );
}

/// Registrations of `(kind, name)`, in order.
type Steps<'a> = &'a [(MetricKind, &'a str)];

/// Registers every `(kind, name)` in order on a fresh registry and returns the result of
/// the last one.
fn register_in_order(steps: Steps<'_>) -> (Registry, Result<(), RegistryError>) {
    let registry = Registry::new();
    let mut last = Ok(());
    for &(kind, name) in steps {
        last = match kind {
            MetricKind::Counter => registry.counter(name).map(drop),
            MetricKind::Gauge => registry.gauge(name).map(drop),
            _ => registry.histogram(name, [1.0]).map(drop),
        };
    }
    (registry, last)
}

#[test]
fn a_name_whose_exposed_samples_collide_with_another_metric_is_refused() {
    let registry = Registry::new();
    registry.histogram("x", [1.0]).expect("created");
    let error = registry.gauge("x_count").unwrap_err();
    match &error {
        RegistryError::SampleNameCollision {
            name,
            requested,
            exposed,
            existing,
            existing_kind,
        } => {
            assert_eq!(
                (name.as_str(), *requested, exposed.as_str()),
                ("x_count", MetricKind::Gauge, "x_count")
            );
            assert_eq!(
                (existing.as_str(), *existing_kind),
                ("x", MetricKind::Histogram)
            );
        }
        other => panic!("expected SampleNameCollision, got {other:?}"),
    }
    assert_eq!(error.reason(), MetricsReason::NameConflict);
    assert_eq!(error.reason().as_str(), "NAME_CONFLICT");
    assert_eq!(error.name(), "x_count");
    assert_eq!(
        error.to_string(),
        r#"metric "x_count" (a gauge) would be exposed under the name "x_count", which the histogram "x" takes"#
    );
    // Nothing was created.
    assert_eq!(registry.names(), ["x"]);

    // Every name a family takes: the bare name, and each sample suffix of its type,
    // whatever the characters that fit the mvx name to the Prometheus grammar.
    let refused: [(Steps<'_>, &str, &str); 12] = [
        (
            &[
                (MetricKind::Histogram, "x"),
                (MetricKind::Gauge, "x_bucket"),
            ],
            "x_bucket",
            "x",
        ),
        (
            &[(MetricKind::Histogram, "x"), (MetricKind::Gauge, "x.sum")],
            "x_sum",
            "x",
        ),
        (
            &[
                (MetricKind::Histogram, "x"),
                (MetricKind::Counter, "x_created"),
            ],
            "x_created",
            "x",
        ),
        (
            &[
                (MetricKind::Histogram, "x"),
                (MetricKind::Counter, "x_bucket"),
            ],
            "x_bucket",
            "x",
        ),
        (
            &[(MetricKind::Counter, "y"), (MetricKind::Gauge, "y_total")],
            "y_total",
            "y",
        ),
        (
            &[(MetricKind::Counter, "y"), (MetricKind::Gauge, "y_created")],
            "y_created",
            "y",
        ),
        // `y` and `y_total` are one counter family `y` in OpenMetrics.
        (
            &[(MetricKind::Counter, "y"), (MetricKind::Counter, "y_total")],
            "y",
            "y",
        ),
        (
            &[(MetricKind::Gauge, "y"), (MetricKind::Counter, "y_total")],
            "y",
            "y",
        ),
        // The later one is refused, whichever it is.
        (
            &[(MetricKind::Gauge, "x_count"), (MetricKind::Histogram, "x")],
            "x_count",
            "x_count",
        ),
        (
            &[(MetricKind::Gauge, "y_total"), (MetricKind::Counter, "y")],
            "y_total",
            "y_total",
        ),
        // Two names that the grammar fits to one.
        (
            &[(MetricKind::Gauge, "a.x"), (MetricKind::Gauge, "a_x")],
            "a_x",
            "a.x",
        ),
        (
            &[(MetricKind::Gauge, "a-x"), (MetricKind::Counter, "a x")],
            "a_x",
            "a-x",
        ),
    ];
    for (steps, exposed_name, taken_by) in refused {
        let (registry, last) = register_in_order(steps);
        match last {
            Err(RegistryError::SampleNameCollision {
                exposed, existing, ..
            }) => {
                assert_eq!(
                    (exposed.as_str(), existing.as_str()),
                    (exposed_name, taken_by),
                    "{steps:?}"
                );
            }
            other => panic!("{steps:?}: expected SampleNameCollision, got {other:?}"),
        }
        assert_eq!(registry.names().len(), steps.len() - 1, "{steps:?}");
    }

    // Names that only look alike are accepted.
    let accepted: [Steps<'_>; 5] = [
        &[(MetricKind::Gauge, "x"), (MetricKind::Gauge, "x_total")],
        &[(MetricKind::Gauge, "x"), (MetricKind::Gauge, "x_count")],
        &[
            (MetricKind::Counter, "c"),
            (MetricKind::Counter, "c_seconds"),
        ],
        &[
            (MetricKind::Histogram, "h"),
            (MetricKind::Histogram, "h_seconds"),
        ],
        &[
            (MetricKind::Histogram, "h"),
            (MetricKind::Gauge, "h_count_max"),
        ],
    ];
    for steps in accepted {
        let (registry, last) = register_in_order(steps);
        assert!(last.is_ok(), "{steps:?}: {last:?}");
        assert_eq!(registry.names().len(), steps.len(), "{steps:?}");
    }
}

#[test]
fn the_series_of_a_name_share_its_exposed_names_until_the_last_is_unregistered() {
    let registry = Registry::new();
    registry
        .counter_with_labels("http.requests", &[("code", "200")])
        .expect("series");
    registry
        .counter_with_labels("http.requests", &[("code", "500")])
        .expect("another series of the same name");
    registry
        .counter("http.requests")
        .expect("the unlabeled series");
    assert!(matches!(
        registry.gauge("http_requests_total").unwrap_err(),
        RegistryError::SampleNameCollision { exposed, existing, .. }
            if exposed == "http_requests_total" && existing == "http.requests"
    ));
    assert!(matches!(
        registry
            .gauge_with_labels("http.requests.created", &[("code", "200")])
            .unwrap_err(),
        RegistryError::SampleNameCollision { exposed, .. } if exposed == "http_requests_created"
    ));

    assert!(registry.unregister(r#"http.requests{code="200"}"#));
    assert!(registry.unregister("http.requests"));
    assert!(
        registry.gauge("http_requests_total").is_err(),
        "a series of the name is left"
    );
    assert!(registry.unregister(r#"http.requests{code="500"}"#));
    registry
        .gauge("http_requests_total")
        .expect("the names are free once no series of the name is left");

    // Unregistering frees a plain instrument's names too.
    registry.histogram("x", [1.0]).expect("created");
    assert!(registry.gauge("x_count").is_err());
    assert!(registry.unregister("x"));
    registry.gauge("x_count").expect("free again");
}
