//! The metricq bridge: points per second from `AsyncSink::log` through a `ChunkPublisher`
//! to a real RabbitMQ broker (confirmed by it), and the producer's cost per point.
//!
//! Needs a broker and a manager: `MVX_AMQP_URL` (`.ci/test` starts a broker; run
//! `sleep infinity | python3 tests/support/metricq_peer.py manager $MVX_AMQP_URL` beside it as
//! the manager, which stops when its standard input closes). Run
//! with `cargo bench --bench metricq --features metricq`. Without `MVX_AMQP_URL` nothing
//! is measured (the bench says so).

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use mvx::agent::metricq::{
    BridgeConfig, DataPoint, MetricqConfig, RegistryBridge, Source, Timestamp,
};
use mvx::agent::{AgentConfig, Runner};
use mvx::metrics::Registry;
use mvx::queue::OverflowPolicy;
use mvx::sink::SinkConfig;

const POINTS: u64 = 20_000;

fn bridge(url: &str, capacity: usize) -> RegistryBridge {
    let config = MetricqConfig::new(url, format!("source-mvx-bench-{}", std::process::id()))
        .expect("a valid URL");
    RegistryBridge::new(
        Source::new(config),
        Registry::new(),
        BridgeConfig::default()
            .interval(Duration::from_secs(3600))
            .sink(
                SinkConfig::default()
                    .queue_capacity(capacity)
                    .overflow(OverflowPolicy::Drop)
                    .lazy_start(true)
                    .batch_size(1_000),
            ),
    )
}

/// End to end: `POINTS` points over 10 metrics logged and flushed (confirmed by the
/// broker).
fn end_to_end(c: &mut Criterion) {
    let Ok(url) = std::env::var("MVX_AMQP_URL") else {
        eprintln!("metricq end-to-end bench skipped: MVX_AMQP_URL is not set");
        return;
    };
    let bridge = bridge(&url, 1 << 17);
    let sink = bridge.sink();
    let source = bridge.source();
    let runner = Runner::new(bridge, AgentConfig::default().catch_signals([]));
    let stopper = runner.handle();
    let running = std::thread::spawn(move || runner.run());
    assert!(async_io::block_on(source.ready()), "the bridge connects");
    let metrics: Vec<std::sync::Arc<str>> = (0..10)
        .map(|i| format!("bench.metricq.{i}").into())
        .collect();
    let mut group = c.benchmark_group("metricq_bridge");
    group.throughput(Throughput::Elements(POINTS));
    group.sample_size(10);
    group.bench_function("publish_confirmed", |b| {
        b.iter_custom(|iterations| {
            let started = Instant::now();
            for _ in 0..iterations {
                for n in 0..POINTS {
                    let metric = metrics[(n % 10) as usize].clone();
                    let _ = sink.log(DataPoint {
                        metric,
                        timestamp: Timestamp::from_nanos(n as i64),
                        value: n as f64,
                    });
                }
                sink.flush_blocking().expect("flushed");
            }
            started.elapsed()
        })
    });
    group.finish();

    // Producer cost: `log()` of one point into the running bridge's sink, which never
    // waits for the network; the flushes between rounds are not timed.
    let mut group = c.benchmark_group("metricq_producer");
    group.throughput(Throughput::Elements(1));
    group.bench_function("log_point", |b| {
        b.iter_custom(|iterations| {
            let mut timed = Duration::ZERO;
            let mut left = iterations;
            while left > 0 {
                let round = left.min(50_000);
                let started = Instant::now();
                for n in 0..round {
                    black_box(sink.log(DataPoint {
                        metric: metrics[(n % 10) as usize].clone(),
                        timestamp: Timestamp::from_nanos(n as i64),
                        value: n as f64,
                    }))
                    .ok();
                }
                timed += started.elapsed();
                sink.flush_blocking().expect("flushed");
                left -= round;
            }
            timed
        })
    });
    group.finish();
    stopper.stop(None, false);
    running.join().expect("joined").expect("stopped cleanly");
    let stats = sink.stats();
    eprintln!("metricq bridge: {stats}");
}

criterion_group!(benches, end_to_end);
criterion_main!(benches);
