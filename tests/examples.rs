//! Every example in `examples/` runs here.

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
