//! `tracing` events through mvx's layer beside tracing-appender's non-blocking writer, with
//! the same formatter (BENCHMARKS.md, "Facades").
//!
//! One producer thread emits `tracing::info!` events with a message and two fields; both
//! peers turn each event into the same `LogEvent` (mvx's `SinkLayer` conversion) and write
//! it as the same JSON line (`JsonLines`) to a backend that only counts lines:
//!
//! - **mvx**: `SinkLayer` → `AsyncSink<LogEvent>` (capacity 65,536, `Block`, on
//!   `rt::thread`) → a dispatcher that formats each event with `JsonLines` and counts it.
//!   The producer builds the event and hands it over; formatting happens on the consumer.
//! - **tracing-appender**: `SinkLayer::with_target` a target that formats the event with
//!   `JsonLines` on the producer and writes the line to `NonBlocking` (lossless, 65,536 lines),
//!   whose worker writes to a counting `io::sink()` — what a `fmt` layer over
//!   tracing-appender does, with mvx's formatter.
//!
//! Each criterion iteration emits `EVENTS` events and is timed on the producer only; between
//! iterations the bench waits (untimed) for the consumer to count every line. Producer-side
//! ns/event and heap allocations per event on the producer thread are printed to stderr at
//! the end, with the same-run ratio. Run with `cargo bench --bench tracing_layer --features tracing`.

use std::hint::black_box;
use std::io::{self, Write};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use criterion::{Criterion, criterion_group, criterion_main};
use mvx::BoxError;
use mvx::error::LogError;
use mvx::facade::tracing::{EventTarget, SinkLayer};
use mvx::queue::OverflowPolicy;
use mvx::sink::{BatchError, Dispatch, JsonLines, LineFormat, LogEvent, SinkConfig};
use tracing_appender::non_blocking::{NonBlocking, NonBlockingBuilder};
use tracing_subscriber::Registry;
use tracing_subscriber::layer::SubscriberExt;

/// Events per criterion iteration.
const EVENTS: u64 = 20_000;
/// The bounded capacity of both peers.
const CAPACITY: usize = 65_536;

// Allocations on the producer thread: it leaves the process-wide count (see `measure`), so
// that counting costs it a thread-local increment only.
#[path = "../tests/support/counting_allocator.rs"]
mod counting_allocator;

// ---------------------------------------------------------------------------------------
// The backends
// ---------------------------------------------------------------------------------------

/// mvx's dispatcher: formats each event as a JSON line and discards it (the sink counts
/// it as delivered).
struct JsonDiscard {
    line: String,
}

impl JsonDiscard {
    fn write(&mut self, event: &LogEvent) {
        self.line.clear();
        JsonLines.format(event, &mut self.line);
        self.line.push('\n');
        black_box(self.line.as_bytes());
    }
}

impl Dispatch<LogEvent> for JsonDiscard {
    async fn dispatch(&mut self, event: LogEvent) -> Result<(), BoxError> {
        self.write(&event);
        Ok(())
    }

    async fn dispatch_batch(&mut self, events: &mut Vec<LogEvent>) -> Result<(), BatchError> {
        for event in events.drain(..) {
            self.write(&event);
        }
        Ok(())
    }
}

/// tracing-appender's backend: `io::sink()` counting the lines written.
struct CountingSink(Arc<AtomicU64>);

impl Write for CountingSink {
    fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
        let lines = bytes.iter().filter(|&&byte| byte == b'\n').count() as u64;
        self.0.fetch_add(lines, Ordering::Release);
        io::sink().write(bytes)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// The tracing-appender peer: the event formatted on the producer, the line written to
/// `NonBlocking` (which copies it into its channel), as a `fmt` layer over it would.
struct AppenderTarget {
    writer: NonBlocking,
}

thread_local! {
    static LINE: std::cell::RefCell<String> = const { std::cell::RefCell::new(String::new()) };
}

impl EventTarget for AppenderTarget {
    fn submit(&self, event: LogEvent) -> Result<(), LogError<LogEvent>> {
        LINE.with_borrow_mut(|line| {
            line.clear();
            JsonLines.format(&event, line);
            line.push('\n');
            // `fmt`'s `MakeWriter` for `NonBlocking` clones it for every event.
            let _ = self.writer.clone().write_all(line.as_bytes());
        });
        Ok(())
    }
}

// ---------------------------------------------------------------------------------------
// The producer
// ---------------------------------------------------------------------------------------

#[inline(never)]
fn emit(events: u64) {
    for n in 0..events {
        tracing::info!(n, user = "ann", "request handled");
    }
}

/// Per-iteration producer figures of one peer.
#[derive(Default)]
struct Figures {
    ns_per_event: Vec<f64>,
    allocations: u64,
    events: u64,
}

impl Figures {
    fn median(&self) -> f64 {
        let mut sorted = self.ns_per_event.clone();
        sorted.sort_by(f64::total_cmp);
        sorted[sorted.len() / 2]
    }
}

/// Times `EVENTS` events per iteration under `subscriber`, waiting (untimed) until
/// `delivered` reaches the events emitted so far.
fn measure<S>(
    criterion: &mut criterion::BenchmarkGroup<'_, criterion::measurement::WallTime>,
    name: &str,
    subscriber: S,
    delivered: impl Fn() -> u64,
    figures: &Mutex<Figures>,
) where
    S: tracing::Subscriber + Send + Sync + 'static,
{
    let dispatch = tracing::Dispatch::new(subscriber);
    let mut emitted = 0;
    counting_allocator::leave_all();
    criterion.bench_function(name, |b| {
        b.iter_custom(|iterations| {
            let mut elapsed = Duration::ZERO;
            for _ in 0..iterations {
                let before = counting_allocator::on_this_thread();
                let start = Instant::now();
                tracing::dispatcher::with_default(&dispatch, || emit(EVENTS));
                let took = start.elapsed();
                let allocations = counting_allocator::on_this_thread() - before;
                elapsed += took;
                emitted += EVENTS;
                let mut figures = figures.lock().unwrap();
                figures
                    .ns_per_event
                    .push(took.as_nanos() as f64 / EVENTS as f64);
                figures.allocations += allocations;
                figures.events += EVENTS;
                drop(figures);
                while delivered() < emitted {
                    std::hint::spin_loop();
                    std::thread::yield_now();
                }
            }
            elapsed
        })
    });
}

fn bench(c: &mut Criterion) {
    let mut group = c.benchmark_group("tracing_layer");
    group
        .sample_size(10)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(4));

    let mvx_figures = Mutex::new(Figures::default());
    let appender_figures = Mutex::new(Figures::default());

    // mvx: the layer hands LogEvents to the sink; its driver formats them.
    let (sink, terminator) = mvx::rt::thread::create(
        JsonDiscard {
            line: String::new(),
        },
        SinkConfig::default()
            .queue_capacity(CAPACITY)
            .overflow(OverflowPolicy::Block),
    )
    .unwrap();
    let layer = SinkLayer::new(sink.clone());
    let counted = sink.clone();
    measure(
        &mut group,
        "mvx SinkLayer -> AsyncSink (JSON lines on the consumer)",
        Registry::default().with(layer),
        move || counted.stats().delivered,
        &mvx_figures,
    );
    terminator.terminate().unwrap();
    let stats = sink.stats();
    assert_eq!(
        stats.accepted, stats.delivered,
        "mvx lost events: {stats:?}"
    );

    // tracing-appender: the line is formatted on the producer and copied into its channel.
    let lines = Arc::new(AtomicU64::new(0));
    let (writer, guard) = NonBlockingBuilder::default()
        .lossy(false)
        .buffered_lines_limit(CAPACITY)
        .finish(CountingSink(lines.clone()));
    let layer = SinkLayer::with_target(AppenderTarget { writer });
    let counted = lines.clone();
    measure(
        &mut group,
        "tracing-appender non-blocking (JSON lines on the producer)",
        Registry::default().with(layer),
        move || counted.load(Ordering::Acquire),
        &appender_figures,
    );
    drop(guard);
    group.finish();

    let mvx = mvx_figures.into_inner().unwrap();
    let appender = appender_figures.into_inner().unwrap();
    eprintln!();
    eprintln!("tracing events, 1 producer thread, producer ns/event (median over iterations):");
    for (name, figures) in [("mvx", &mvx), ("tracing-appender", &appender)] {
        eprintln!(
            "  {name:<17} {:>7.1} ns/event  {:.2} allocations/event on the producer  ({} iterations)",
            figures.median(),
            figures.allocations as f64 / figures.events as f64,
            figures.ns_per_event.len()
        );
    }
    eprintln!(
        "  same-run ratio mvx / tracing-appender: {:.2}x",
        mvx.median() / appender.median()
    );
}

criterion_group!(benches, bench);
criterion_main!(benches);
