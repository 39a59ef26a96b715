//! `MetricsRecorder::register_event` against the `AsyncSink::log` it is built on.
//!
//! Same event, same capacity, same overflow policy (`Block`), one producer; the sink's
//! dispatcher does nothing, the recorder applies one counting metric. Each iteration logs a
//! fixed number of events and waits until every one was dispatched (or applied).
//! Run with `cargo bench --bench recorder`.

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{Criterion, criterion_group, criterion_main};
use mvx::metrics::{Metric, MetricEvent, MetricKind, MetricsRuntime, Snapshot};
use mvx::queue::OverflowPolicy;
use mvx::sink::{Discard, SinkConfig};

#[derive(Clone, Copy)]
struct Event {
    id: u64,
    _payload: [u64; 3],
}

impl MetricEvent for Event {
    fn event_type(&self) -> &str {
        "event"
    }
}

#[derive(Default)]
struct Count(u64);

impl Metric<Event> for Count {
    fn name(&self) -> &str {
        "count"
    }

    fn handle_event(&mut self, event: &Event) -> bool {
        self.0 = self.0.wrapping_add(black_box(event.id) & 1) + 1;
        true
    }

    fn snapshot(&self) -> Snapshot {
        Snapshot::new("count", MetricKind::Counter).with("total", self.0)
    }
}

const EVENTS: u64 = 100_000;

fn config() -> SinkConfig {
    SinkConfig::default()
        .queue_capacity(65_536)
        .overflow(OverflowPolicy::Block)
}

fn event(id: u64) -> Event {
    Event {
        id,
        _payload: [id; 3],
    }
}

fn bench(c: &mut Criterion) {
    let mut group = c.benchmark_group("recorder_vs_sink");
    group
        .sample_size(20)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(3));

    let (sink, terminator) = mvx::rt::thread::create(Discard, config()).unwrap();
    group.bench_function("AsyncSink::log", |b| {
        b.iter_custom(|iterations| {
            let start = Instant::now();
            for _ in 0..iterations {
                for id in 0..EVENTS {
                    let _ = sink.log(event(id));
                }
                sink.flush_blocking().unwrap();
            }
            start.elapsed() / EVENTS as u32
        })
    });
    terminator.terminate().unwrap();

    let runtime = MetricsRuntime::new().unwrap();
    let recorder = runtime
        .create_recorder_with::<Event>("bench", config())
        .unwrap();
    recorder.register_metric(Count::default()).unwrap();
    group.bench_function("MetricsRecorder::register_event", |b| {
        b.iter_custom(|iterations| {
            let start = Instant::now();
            for _ in 0..iterations {
                for id in 0..EVENTS {
                    let _ = recorder.register_event(event(id));
                }
                recorder.sink().flush_blocking().unwrap();
            }
            start.elapsed() / EVENTS as u32
        })
    });
    group.finish();
    runtime.shutdown().unwrap();
}

criterion_group!(benches, bench);
criterion_main!(benches);
