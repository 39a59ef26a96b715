//! The registry's series limit: a name has at most `limit` labeled series; past it, new
//! label sets share one overflow series, `name{mvx_overflow="true"}`, and each refused
//! lookup is counted — nothing recorded is lost, and memory stays bounded whatever the
//! label values.
#![cfg(not(loom))]

#[path = "support/prometheus_tools.rs"]
mod prometheus_tools;
use prometheus_tools::promtool_check;
use std::sync::{Arc, Barrier};
use std::thread;

use mvx::expose::{Format, encode};
use mvx::metrics::{Histogram, Registry, RegistryError, Snapshots, Value};

/// The series of `name` in `snapshots`, by series key.
fn series_of<'a>(
    snapshots: &'a Snapshots,
    name: &str,
) -> Vec<(&'a String, &'a mvx::metrics::Snapshot)> {
    snapshots
        .iter()
        .filter(|(_, snapshot)| snapshot.name == name && !snapshot.labels.is_empty())
        .collect()
}

fn as_u64(value: Option<Value>) -> u64 {
    match value {
        Some(Value::U64(value)) => value,
        other => panic!("not a count: {other:?}"),
    }
}

/// The overflow series' key of `name`.
fn overflow_key(name: &str) -> String {
    format!("{name}{{mvx_overflow=\"true\"}}")
}

#[test]
fn ten_thousand_label_values_make_the_default_limit_of_series_and_one_overflow_series() {
    let registry = Registry::new();
    for user in 0..10_000u64 {
        registry
            .counter_with_labels("http.requests", &[("user", &user.to_string())])
            .expect("a counter, its own series or the overflow series")
            .inc_by(2);
    }
    let snapshots = registry.snapshots();
    let series = series_of(&snapshots, "http.requests");
    assert_eq!(series.len(), 2_001, "2,000 series and the overflow series");
    let total: u64 = series
        .iter()
        .map(|(_, snapshot)| as_u64(snapshot.get("value")))
        .sum();
    assert_eq!(total, 20_000, "every increment is in some series");
    assert_eq!(
        as_u64(
            snapshots
                .get(&overflow_key("http.requests"))
                .and_then(|overflow| overflow.get("value"))
        ),
        16_000
    );
    // The series created first keep their own counts.
    assert_eq!(
        registry
            .counter_with_labels("http.requests", &[("user", "1999")])
            .expect("found")
            .get(),
        2
    );
}

#[test]
fn the_registry_counts_the_refused_series_and_hands_out_the_overflow_series() {
    let registry = Registry::new();
    assert_eq!(Registry::DEFAULT_SERIES_LIMIT, 2_000);
    assert_eq!(registry.series_limit(), Registry::DEFAULT_SERIES_LIMIT);
    for user in 0..10_000u64 {
        let counter = registry
            .counter_with_labels("http.requests", &[("user", &user.to_string())])
            .expect("a counter");
        assert_eq!(counter.is_overflow(), user >= 2_000, "{user}");
    }
    assert_eq!(registry.series_count("http.requests"), 2_000);
    assert_eq!(registry.series_refused("http.requests"), 8_000);
    registry
        .counter_with_labels("http.requests", &[("user", "1999")])
        .expect("found");
    assert_eq!(
        registry.series_refused("http.requests"),
        8_000,
        "a series found is no refusal"
    );
}

#[test]
fn histograms_and_gauges_overflow_the_same_way_and_every_observation_is_counted() {
    let registry = Registry::with_series_limit(10);
    let bounds = [0.1, 1.0];
    for path in 0..1_000u32 {
        let path = format!("/item/{path}");
        registry
            .histogram_with_labels("http.seconds", &[("path", &path)], bounds)
            .expect("a histogram")
            .observe(0.5);
        registry
            .gauge_with_labels("http.open", &[("path", &path)])
            .expect("a gauge")
            .add(1.0);
    }
    let snapshots = registry.snapshots();
    let histograms = series_of(&snapshots, "http.seconds");
    assert_eq!(histograms.len(), 11);
    let observed: u64 = histograms
        .iter()
        .map(|(_, snapshot)| as_u64(snapshot.get("count")))
        .sum();
    assert_eq!(observed, 1_000);
    assert_eq!(
        as_u64(snapshots[&overflow_key("http.seconds")].get("count")),
        990
    );
    let gauges = series_of(&snapshots, "http.open");
    assert_eq!(gauges.len(), 11);
    assert_eq!(
        snapshots[&overflow_key("http.open")].get("value"),
        Some(Value::F64(990.0))
    );
    assert_eq!(registry.series_refused("http.seconds"), 990);
    assert_eq!(registry.series_refused("http.open"), 990);

    // The overflow histogram has the bounds of the request that created it; a request
    // with other bounds is the same conflict as for any other series.
    let error = registry
        .histogram_with_labels("http.seconds", &[("path", "/new")], [5.0])
        .unwrap_err();
    assert!(
        matches!(&error, RegistryError::BucketsConflict { name, existing, .. }
            if name == "http.seconds" && existing == &[0.1, 1.0]),
        "{error:?}"
    );
    assert_eq!(
        registry.series_refused("http.seconds"),
        990,
        "a conflict is no refusal: nothing was handed out"
    );
}

#[test]
fn the_limit_is_per_name() {
    let registry = Registry::with_series_limit(3);
    assert_eq!(registry.series_limit(), 3);
    for code in 0..5 {
        let code = code.to_string();
        registry
            .counter_with_labels("a", &[("code", &code)])
            .expect("a")
            .inc();
    }
    for code in 0..3 {
        let code = code.to_string();
        registry
            .counter_with_labels("b", &[("code", &code)])
            .expect("b")
            .inc();
    }
    // The unlabeled instrument of a name is not one of its labeled series.
    registry.counter("b").expect("b").inc();
    assert_eq!(
        registry.names(),
        [
            "a{code=\"0\"}",
            "a{code=\"1\"}",
            "a{code=\"2\"}",
            "a{mvx_overflow=\"true\"}",
            "b",
            "b{code=\"0\"}",
            "b{code=\"1\"}",
            "b{code=\"2\"}",
        ]
    );
    assert_eq!(
        (registry.series_count("a"), registry.series_refused("a")),
        (3, 2)
    );
    assert_eq!(
        (registry.series_count("b"), registry.series_refused("b")),
        (3, 0)
    );
    assert_eq!(
        (registry.series_count("c"), registry.series_refused("c")),
        (0, 0)
    );
}

#[test]
fn a_limit_of_zero_sends_every_labeled_series_to_the_overflow_series() {
    let registry = Registry::with_series_limit(0);
    let first = registry
        .counter_with_labels("jobs", &[("queue", "a")])
        .expect("overflow");
    let second = registry
        .counter_with_labels("jobs", &[("queue", "b")])
        .expect("overflow");
    first.inc();
    second.inc();
    assert!(first.is_overflow() && second.is_overflow());
    assert_eq!(first.get(), 2, "one overflow series");
    assert_eq!(
        first.labels().get("mvx_overflow").map(String::as_str),
        Some("true")
    );
    registry.counter("jobs").expect("unlabeled").inc();
    assert!(!registry.counter("jobs").expect("unlabeled").is_overflow());
    assert_eq!(registry.names(), ["jobs", "jobs{mvx_overflow=\"true\"}"]);
}

#[test]
fn asking_for_the_overflow_label_set_gives_the_overflow_series() {
    let registry = Registry::with_series_limit(1);
    let overflow = registry
        .counter_with_labels("jobs", &[("mvx_overflow", "true")])
        .expect("the overflow series");
    assert!(overflow.is_overflow());
    overflow.inc();
    // Not one of the limited series: the one labeled series still fits.
    let own = registry
        .counter_with_labels("jobs", &[("queue", "a")])
        .expect("its own series");
    assert!(!own.is_overflow());
    let refused = registry
        .counter_with_labels("jobs", &[("queue", "b")])
        .expect("overflow");
    refused.inc();
    assert_eq!(overflow.get(), 2);
    assert_eq!(
        (
            registry.series_count("jobs"),
            registry.series_refused("jobs")
        ),
        (1, 1)
    );
}

#[test]
fn unregistering_a_series_frees_its_place() {
    let registry = Registry::with_series_limit(2);
    for queue in ["a", "b", "c"] {
        registry
            .counter_with_labels("jobs", &[("queue", queue)])
            .expect("jobs")
            .inc();
    }
    assert_eq!(
        (
            registry.series_count("jobs"),
            registry.series_refused("jobs")
        ),
        (2, 1)
    );
    assert!(registry.unregister("jobs{queue=\"a\"}"));
    assert_eq!(registry.series_count("jobs"), 1);
    let again = registry
        .counter_with_labels("jobs", &[("queue", "c")])
        .expect("jobs");
    assert!(!again.is_overflow(), "the freed place is taken");
    // Unregistering the overflow series frees no place; its count stays.
    assert!(registry.unregister("jobs{mvx_overflow=\"true\"}"));
    assert_eq!(
        (
            registry.series_count("jobs"),
            registry.series_refused("jobs")
        ),
        (2, 1)
    );
    let refused = registry
        .counter_with_labels("jobs", &[("queue", "d")])
        .expect("jobs");
    assert!(refused.is_overflow());
    assert_eq!(refused.get(), 0, "a new overflow series");
    assert_eq!(registry.series_refused("jobs"), 2);
}

#[test]
fn racing_threads_make_no_more_than_the_limit_and_lose_no_increment() {
    const THREADS: usize = 4;
    const VALUES: usize = 500;
    let registry = Registry::with_series_limit(100);
    let start = Arc::new(Barrier::new(THREADS));
    let workers: Vec<_> = (0..THREADS)
        .map(|thread| {
            let registry = registry.clone();
            let start = Arc::clone(&start);
            thread::spawn(move || {
                start.wait();
                for value in 0..VALUES {
                    // Half the values shared by every thread, half of this thread's own.
                    let value = if value % 2 == 0 {
                        value.to_string()
                    } else {
                        format!("{thread}-{value}")
                    };
                    registry
                        .counter_with_labels("racy", &[("v", &value)])
                        .expect("racy")
                        .inc();
                }
            })
        })
        .collect();
    for worker in workers {
        worker.join().expect("worker");
    }
    let snapshots = registry.snapshots();
    let series = series_of(&snapshots, "racy");
    assert_eq!(series.len(), 101);
    let total: u64 = series
        .iter()
        .map(|(_, snapshot)| as_u64(snapshot.get("value")))
        .sum();
    assert_eq!(total, (THREADS * VALUES) as u64);
    assert_eq!(registry.series_count("racy"), 100);
    let overflowed = as_u64(snapshots[&overflow_key("racy")].get("value"));
    assert_eq!(registry.series_refused("racy"), overflowed);
}

#[test]
fn the_overflow_series_and_the_refusals_are_exposed_and_pass_promtool() {
    let registry = Registry::with_series_limit(2);
    for code in ["200", "404", "500", "503"] {
        registry
            .counter_with_labels("http.requests", &[("code", code)])
            .expect("counter")
            .inc_by(5);
        registry
            .histogram_with_labels(
                "http.seconds",
                &[("code", code)],
                Histogram::DEFAULT_BUCKETS.iter().copied(),
            )
            .expect("histogram")
            .observe(0.2);
    }
    let text = encode(&registry, Format::Prometheus);
    for expected in [
        "http_requests_total{code=\"200\"} 5\n\
         http_requests_total{code=\"404\"} 5\n\
         http_requests_total{mvx_overflow=\"true\"} 10\n",
        "http_seconds_bucket{mvx_overflow=\"true\",le=\"+Inf\"} 2\n",
        "http_seconds_count{mvx_overflow=\"true\"} 2\n",
        "# TYPE mvx_registry_series_refused_total counter\n\
         mvx_registry_series_refused_total{metric=\"http.requests\"} 2\n\
         mvx_registry_series_refused_total{metric=\"http.seconds\"} 2\n",
    ] {
        assert!(text.contains(expected), "{expected:?} not in:\n{text}");
    }
    assert!(
        text.contains("# HELP mvx_registry_series_refused_total "),
        "the self-metric is described:\n{text}"
    );
    let (passed, report) = promtool_check(&text);
    assert!(passed, "promtool found problems:\n{report}\nin:\n{text}");

    let text = encode(&registry, Format::OpenMetrics);
    assert!(
        text.contains("http_requests_total{mvx_overflow=\"true\"} 10\n"),
        "{text}"
    );
    assert!(
        text.contains("mvx_registry_series_refused_total{metric=\"http.requests\"} 2\n"),
        "{text}"
    );
}

#[test]
fn nothing_is_exposed_about_the_limit_while_no_name_reaches_it() {
    let registry = Registry::with_series_limit(2);
    registry
        .counter_with_labels("jobs", &[("queue", "a")])
        .expect("jobs")
        .inc();
    let snapshots = registry.snapshots();
    assert_eq!(snapshots.keys().collect::<Vec<_>>(), ["jobs{queue=\"a\"}"]);
}
