//! `MetricsRecorder::register_event` against the `AsyncSink::log` it is built on, and what
//! `register_event` costs its caller with 1 and 2 threads recording at once (issue 17:
//! ≤ 30 ns / ≤ 40 ns).
//!
//! Same event, same capacity, same overflow policy (`Block`); the sink's dispatcher does
//! nothing, the recorder applies one counting metric.
//!
//! - `recorder_vs_sink`: one producer; each iteration logs a fixed number of events and
//!   waits until every one was dispatched (or applied): ns per event, the wait included.
//! - `register_event/threads/N`: N threads call `register_event` back to back, each timing
//!   its own calls only (the flush that follows is not timed): ns per call per thread. At
//!   the end of the run the medians are printed to stderr beside the goals.
//!
//! Run with `cargo bench --bench recorder`.

use std::collections::BTreeMap;
use std::hint::black_box;
use std::sync::{Barrier, Mutex};
use std::time::{Duration, Instant};

use criterion::{BenchmarkId, Criterion};
use mvx::metrics::{Metric, MetricEvent, MetricKind, MetricsRecorder, MetricsRuntime, Snapshot};
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

/// The goals of issue 17 for `register_event`, ns per call, by thread count.
const GOALS: [(usize, f64); 2] = [(1, 30.0), (2, 40.0)];

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

fn recorder_vs_sink(c: &mut Criterion) {
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

/// ns per call per thread, by thread count, one entry per criterion sample.
fn per_call() -> &'static Mutex<BTreeMap<usize, Vec<f64>>> {
    static PER_CALL: Mutex<BTreeMap<usize, Vec<f64>>> = Mutex::new(BTreeMap::new());
    &PER_CALL
}

/// `threads` threads each make `iterations × EVENTS` calls; returns the mean, over the
/// threads, of the time each spent in its calls.
fn record_from_threads(
    recorder: &MetricsRecorder<Event>,
    threads: usize,
    iterations: u64,
) -> Duration {
    let barrier = Barrier::new(threads);
    let spent: Vec<Duration> = std::thread::scope(|scope| {
        let workers: Vec<_> = (0..threads)
            .map(|index| {
                let barrier = &barrier;
                scope.spawn(move || {
                    let base = (index as u64) << 40;
                    // The thread's first call (which may set things up for the thread) is
                    // not timed.
                    let _ = recorder.register_event(event(base));
                    barrier.wait();
                    let start = Instant::now();
                    for id in 0..iterations * EVENTS {
                        let _ = recorder.register_event(event(base | id));
                    }
                    start.elapsed()
                })
            })
            .collect();
        workers
            .into_iter()
            .map(|worker| worker.join().unwrap())
            .collect()
    });
    recorder.sink().flush_blocking().unwrap();
    spent.iter().sum::<Duration>() / threads as u32
}

fn register_event(c: &mut Criterion) {
    let mut group = c.benchmark_group("register_event");
    group
        .sample_size(20)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(3));
    let runtime = MetricsRuntime::new().unwrap();
    let recorder = runtime
        .create_recorder_with::<Event>("bench-threads", config())
        .unwrap();
    recorder.register_metric(Count::default()).unwrap();
    for (threads, _) in GOALS {
        group.bench_function(BenchmarkId::new("threads", threads), |b| {
            b.iter_custom(|iterations| {
                let spent = record_from_threads(&recorder, threads, iterations);
                per_call()
                    .lock()
                    .unwrap()
                    .entry(threads)
                    .or_default()
                    .push(spent.as_nanos() as f64 / (iterations * EVENTS) as f64);
                spent / EVENTS as u32
            })
        });
    }
    group.finish();
    runtime.shutdown().unwrap();
}

fn print_summary() {
    let per_call = per_call().lock().unwrap();
    if per_call.is_empty() {
        return;
    }
    eprintln!();
    eprintln!("== MetricsRecorder::register_event, ns per call per thread (issue 17) ==");
    eprintln!("| threads | median ns/call | samples | goal |");
    eprintln!("|---|---|---|---|");
    for (threads, goal) in GOALS {
        let Some(samples) = per_call.get(&threads) else {
            continue;
        };
        let mut sorted = samples.clone();
        sorted.sort_by(f64::total_cmp);
        let median = sorted[sorted.len() / 2];
        eprintln!(
            "| {threads} | {median:.1} | {} | ≤ {goal:.0} ns ({}) |",
            sorted.len(),
            if median <= goal { "met" } else { "NOT met" }
        );
    }
    eprintln!();
}

fn main() {
    let mut criterion = Criterion::default().configure_from_args();
    recorder_vs_sink(&mut criterion);
    register_event(&mut criterion);
    criterion.final_summary();
    print_summary();
}
