//! Every example in `examples/` runs here.
#![cfg(not(loom))]

#[path = "../examples/quickstart.rs"]
mod quickstart;

#[test]
fn quickstart_delivers_every_event_and_stops_clean() {
    let summary = quickstart::run(4, 5_000).unwrap();
    assert_eq!(summary.lines, 20_000);
    let stats = summary.stats;
    assert_eq!(
        (
            stats.accepted,
            stats.delivered,
            stats.failed,
            stats.dropped,
            stats.pending
        ),
        (20_000, 20_000, 0, 0, 0)
    );
}

#[test]
fn quickstart_main_runs() {
    quickstart::main().unwrap();
}

#[path = "../examples/manual_recorder_lifecycle.rs"]
mod manual_recorder_lifecycle;

#[test]
fn manual_recorder_lifecycle_matches_the_documented_output() {
    let refused = manual_recorder_lifecycle::create_recorder_without_executor();
    assert!(
        refused
            .starts_with("recorder creation failed: no running executor (EVENT_LOOP_UNAVAILABLE"),
        "{refused}"
    );
    let snapshots = manual_recorder_lifecycle::run_manual_recorder().unwrap();
    let json = serde_json::to_value(&snapshots).unwrap();
    let metric = &json["document_storage.save.attempts"];
    assert_eq!(metric["name"], "document_storage.save.attempts");
    assert_eq!(
        metric["dimensions"],
        serde_json::json!({"total": 3, "success_total": 2, "failure_total": 1})
    );
    assert_eq!(json.as_object().unwrap().len(), 1);
    manual_recorder_lifecycle::main().unwrap();
}

#[path = "../examples/metrics_runtime.rs"]
mod metrics_runtime;

#[test]
fn metrics_runtime_aggregates_every_event_from_every_thread() {
    let (http, cache) = metrics_runtime::run(4, 2_000).unwrap();
    let requests = &http["http.requests"];
    assert_eq!(requests.get("total"), Some(8_000u64.into()));
    assert_eq!(requests.get("errors_total"), Some(800u64.into()));
    let lookups = &cache["cache.lookups"];
    assert_eq!(lookups.get("hits_total"), Some(6_000u64.into()));
    assert_eq!(lookups.get("misses_total"), Some(2_000u64.into()));
    metrics_runtime::main().unwrap();
}
