//! mvx instruments published to a MetricQ network: a counter, a gauge and a histogram in a
//! `Registry`, updated by the application, published every 200 ms by a `RegistryBridge`
//! through a metricq `Source` (feature `metricq`).
//!
//! Run it against a MetricQ network (RabbitMQ and a manager) and watch the points arrive
//! with the Python package's sink:
//!
//! ```text
//! python3 examples/metricq_sink.py amqp://guest:guest@127.0.0.1:5672/ example.requests example.load
//! MVX_AMQP_URL=amqp://guest:guest@127.0.0.1:5672/ cargo run --example metricq_source --features metricq
//! ```
//!
//! Without a metricq-manager on the network, `python3 tests/support/metricq_peer.py manager <url>`
//! stands in for one.

use std::time::Duration;

use mvx::agent::metricq::{BridgeConfig, MetricqConfig, RegistryBridge, Source};
use mvx::agent::{AgentConfig, Runner};
use mvx::metrics::{Metadata, Registry};
use mvx::queue::QueueStats;

/// What a run did.
#[derive(Debug)]
pub struct Summary {
    /// The bridge's sink counters once it stopped: every point delivered or failed.
    pub stats: QueueStats,
}

/// Publishes the instruments for `rounds` rounds of simulated work (one every 200 ms) to
/// the network at `url` as `token`, then stops.
///
/// # Errors
///
/// A bad URL, a network that cannot be reached or has no manager.
pub fn run(url: &str, token: &str, rounds: u64) -> Result<Summary, Box<dyn std::error::Error>> {
    let registry = Registry::new();
    let requests = registry.counter_with(
        "example.requests",
        Metadata::new()
            .unit("requests")
            .description("requests served"),
    )?;
    let load = registry.gauge_with(
        "example.load",
        Metadata::new()
            .unit("%")
            .description("load of the example")
            .rate(5.0)?,
    )?;
    let latency = registry.histogram_with(
        "example.latency",
        [0.01, 0.1, 1.0],
        Metadata::new().unit("s").description("time to answer"),
    )?;
    let config = MetricqConfig::new(url, token)?.connect_timeout(Duration::from_secs(10));
    let bridge = RegistryBridge::new(
        Source::new(config),
        registry,
        BridgeConfig::default().interval(Duration::from_millis(200)),
    );
    let sink = bridge.sink();
    let runner = Runner::new(bridge, AgentConfig::default().catch_signals([]));
    let stopper = runner.handle();
    // The application: works, and updates its instruments (none of this waits for the
    // network).
    let work = std::thread::spawn(move || {
        for round in 0..rounds {
            requests.inc_by(10);
            load.set((round % 10) as f64 * 10.0);
            latency.observe(0.05);
            std::thread::sleep(Duration::from_millis(200));
        }
        stopper.stop(None, false);
    });
    let ran = runner.run();
    work.join().map_err(|_| "the work thread panicked")?;
    ran?;
    Ok(Summary {
        stats: sink.stats(),
    })
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let url = std::env::var("MVX_AMQP_URL")
        .unwrap_or_else(|_| "amqp://guest:guest@127.0.0.1:5672/".to_owned());
    let summary = run(&url, "source-mvx-example", 50)?;
    println!("published: {}", summary.stats);
    Ok(())
}
