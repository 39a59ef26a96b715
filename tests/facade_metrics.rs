//! The `metrics` facade end to end: the real `metrics` macros, from several threads,
//! through the installed `mvx::facade::metrics::RegistryRecorder`, into an mvx `Registry`
//! served by the mvx exposition server and scraped over HTTP.
//!
//! `metrics` takes one global recorder per process, set once: this behaviour has its own
//! test binary.
#![cfg(not(loom))]

#[path = "support/http_client.rs"]
mod http_client;
#[path = "support/watchdog.rs"]
mod watchdog;

use mvx::expose::http::{ServerConfig, ThreadedMetricsServer};
use mvx::facade::metrics::RegistryRecorder;
use mvx::metrics::Registry;

#[test]
fn metrics_macros_land_in_the_registry_and_are_served_with_their_labels() {
    let registry = Registry::new();
    // A direct instrument and a facade one share the name space of the registry.
    registry.counter("jobs.done").expect("counter").inc_by(2);
    let recorder = RegistryRecorder::new(registry.clone())
        .buckets_for("http.request.seconds", [0.1, 1.0])
        .expect("valid buckets")
        .install()
        .expect("no recorder is set yet");
    assert!(
        RegistryRecorder::new(Registry::new()).install().is_err(),
        "a second recorder is refused"
    );

    metrics::describe_counter!("http.requests", "requests served");
    let workers: Vec<_> = (0..4)
        .map(|worker| {
            std::thread::spawn(move || {
                for i in 0..250u32 {
                    let code = if i % 10 == 0 { "500" } else { "200" };
                    metrics::counter!("http.requests", "method" => "GET", "code" => code)
                        .increment(1);
                    metrics::histogram!("http.request.seconds", "method" => "GET")
                        .record(if i % 2 == 0 { 0.05 } else { 0.5 });
                }
                metrics::gauge!("workers.busy", "worker" => worker.to_string()).set(1.0);
                metrics::counter!("jobs.done").increment(1);
            })
        })
        .collect();
    for worker in workers {
        worker.join().expect("worker");
    }

    let server = ThreadedMetricsServer::start(
        registry.clone(),
        ServerConfig::new("127.0.0.1:0".parse().expect("address")),
    )
    .expect("the server starts");
    let answer = http_client::get(server.local_addr(), "/metrics").expect("scrape");
    assert_eq!(answer.status, 200);
    let body = &answer.body;
    for expected in [
        "# TYPE http_requests_total counter\n\
         http_requests_total{code=\"200\",method=\"GET\"} 900\n\
         http_requests_total{code=\"500\",method=\"GET\"} 100\n",
        "# TYPE http_request_seconds histogram\n\
         http_request_seconds_bucket{method=\"GET\",le=\"0.1\"} 500\n\
         http_request_seconds_bucket{method=\"GET\",le=\"1.0\"} 1000\n\
         http_request_seconds_bucket{method=\"GET\",le=\"+Inf\"} 1000\n\
         http_request_seconds_sum{method=\"GET\"} ",
        "http_request_seconds_count{method=\"GET\"} 1000\n",
        "# TYPE workers_busy gauge\n\
         workers_busy{worker=\"0\"} 1.0\n\
         workers_busy{worker=\"1\"} 1.0\n\
         workers_busy{worker=\"2\"} 1.0\n\
         workers_busy{worker=\"3\"} 1.0\n",
        "# TYPE jobs_done_total counter\njobs_done_total 6\n",
        // The description of `describe_counter!` is the family's HELP.
        "# HELP http_requests_total requests served\n",
    ] {
        assert!(body.contains(expected), "{expected:?} not in:\n{body}");
    }
    assert_eq!(
        recorder.description("http.requests").map(|d| d.text),
        Some("requests served".to_owned())
    );
    assert_eq!(recorder.rejected(), 0);
    server.close().expect("the server closes");
}
