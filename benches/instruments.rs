//! Direct instruments: `Counter::inc` and `Histogram::observe` beside a bare
//! `AtomicU64::fetch_add` and the `prometheus`, `prometheus-client` and `metrics` crates
//! (DESIGN.md section 7), at 1 thread and at 2 threads recording into one shared instrument;
//! and labeled series of a `Registry`, the way programs reach them (issue 14: what the series
//! limit and the `metrics` facade's check for unregistered series cost).
//!
//! Every measurement spawns the threads, releases them together through a barrier, and each
//! thread times its own loop of a fixed number of records; the measurement's time is the
//! slowest thread's, divided by the records per thread: ns per record as each thread sees
//! it.
//!
//! Two phases:
//!
//! 1. **criterion**: groups `instruments/counter` and `instruments/histogram`, one benchmark
//!    per peer and thread count, with `iter_custom`: one criterion iteration is one record on
//!    each thread, so criterion's time per iteration is ns per record.
//! 2. **interleaved rounds**, for the ratios: `ROUNDS` rounds, each measuring every peer at
//!    every thread count once, one after the other (`ROUND_RECORDS` records per thread, a
//!    tenth of that for the slow peers), each round on instruments of its own, newly
//!    allocated (the earlier rounds' are kept alive, so the addresses differ). On this kind
//!    of machine the cost of a contended cache line depends on two things a single
//!    criterion benchmark cannot average out: where the hypervisor places the two threads,
//!    which changes over seconds (8 ns or 20 ns a record), and the address of the line, which
//!    is fixed for an allocation's life (one line costs 8.7 ns where its neighbours cost
//!    7.7 ns, every time). Criterion measures one peer for seconds on one allocation, then the
//!    next; a round measures all of them milliseconds apart, and the rounds vary the
//!    addresses. The summary printed to stderr at the end gives, per peer, the median ns per
//!    record over the rounds, and per target the median, lowest and highest of the per-round
//!    ratios mvx / peer.
//!
//! Every histogram peer gets the Prometheus default buckets (5 ms to 10 s) and the same
//! sequence of values, cycling over 64 values spread across the buckets (each thread starts
//! at another offset). The `metrics` peers go through the `counter!` / `histogram!` macros
//! on each record, with `metrics-exporter-prometheus`'s recorder installed globally
//! (histograms with the same buckets); its histogram samples are drained (`run_upkeep`)
//! after every measurement, outside the timed loop.
//!
//! **Labeled series** (`mvx-*` peers), each series labeled `code="200",method="GET"`:
//!
//! - `mvx-labeled`: a labeled series' handle from `Registry::counter_with_labels` (or
//!   `histogram_with_labels`), held: the same `inc` / `observe` as `mvx`'s unlabeled one;
//! - `mvx-lookup`: the series looked up in the registry on every record, then recorded
//!   (`registry.counter_with_labels(..)?.inc()`), the registry's default series limit on;
//!   `mvx-lookup-nolimit`: the same on a registry whose limit is `usize::MAX` (no limit);
//! - `mvx-facade`: through `mvx::facade::metrics::RegistryRecorder` as the facade's macros use
//!   it — `register_counter(&key, ..)` (or `register_histogram`) on every record, then
//!   `increment(1)` (`record(v)`) — the key built once, as a call site with static labels
//!   does; the recorder is called directly, without the facade's global-recorder dispatch,
//!   which is the same for any recorder. `mvx-facade-nolimit`: on a registry without a
//!   limit; `mvx-facade-overflow` (counters): on a registry whose limit is 0, so that every
//!   record lands in the overflow series, looked up in the registry each time (the facade
//!   keeps no handle for label sets past the limit);
//! - `mvx-facade-held`: the facade's handle of the series held, `increment(1)` (`record(v)`)
//!   per record: the check that its instrument is still registered, then the record;
//!   `mvx-facade-held-unchecked`: a facade handle without that check (a `CounterFn` /
//!   `HistogramFn` of the bench's own over the same instrument), as the facade's handles
//!   were before issue 14.
//!
//! The summary's ratios `mvx-labeled` / `mvx`, `mvx-lookup` / `mvx-lookup-nolimit`,
//! `mvx-facade` / `mvx-facade-nolimit` and `mvx-facade-held` / `mvx-facade-held-unchecked`
//! are the cost of the series limit and of the unregistered check on labeled series (the
//! target: within 1.1×); the unlabeled `mvx` rows against earlier runs (BENCHMARKS.md) show
//! that unlabeled instruments did not change.
//!
//! Run with `cargo bench --features metrics --bench instruments` (about 3 minutes on 2
//! cores). Criterion's filter applies to phase 1 only. With `-- --test` (a smoke test of every
//! peer), criterion runs each benchmark once and phase 2 one short round.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::thread;
use std::time::{Duration, Instant};

use criterion::{BenchmarkId, Criterion, SamplingMode};
use metrics::{CounterFn, HistogramFn, Label, Level, Recorder};
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use mvx::facade::metrics::RegistryRecorder;
use mvx::metrics::{Histogram, Registry};

/// The thread counts measured.
const THREADS: [usize; 2] = [1, 2];
/// Interleaved rounds of phase 2.
const ROUNDS: usize = 15;
/// Records per thread in one measurement of phase 2 (a tenth of it for slow peers).
const ROUND_RECORDS: u64 = 2_000_000;
/// The bucket bounds every histogram peer gets.
const BUCKETS: &[f64] = Histogram::DEFAULT_BUCKETS;
/// The labels of every labeled series.
const LABELS: [(&str, &str); 2] = [("code", "200"), ("method", "GET")];
/// The metadata a facade call site passes.
const METADATA: metrics::Metadata<'static> =
    metrics::Metadata::new("instruments", Level::INFO, None);

/// Whether the bench runs as a smoke test (`cargo bench -- --test`).
fn smoke_test() -> bool {
    std::env::args().any(|argument| argument == "--test")
}

/// Interleaved rounds of phase 2: [`ROUNDS`], one for a smoke test.
fn rounds() -> usize {
    if smoke_test() { 1 } else { ROUNDS }
}

/// Records per thread in one measurement of phase 2: [`ROUND_RECORDS`], a thousand for a
/// smoke test.
fn round_records() -> u64 {
    if smoke_test() { 1_000 } else { ROUND_RECORDS }
}

/// 64 values from 1 ms to about 20 s, geometrically spaced: every bucket gets some.
fn values() -> &'static [f64; 64] {
    static VALUES: OnceLock<[f64; 64]> = OnceLock::new();
    VALUES.get_or_init(|| std::array::from_fn(|k| 0.001 * 1.17_f64.powi(k as i32)))
}

/// The value thread `thread` records at step `i`.
#[inline]
fn value(thread: usize, i: u64) -> f64 {
    values()[(i as usize).wrapping_add(thread * 17) & 63]
}

// ---------------------------------------------------------------------------------------
// Harness
// ---------------------------------------------------------------------------------------

/// Runs `record(thread, i)` for `i` in `0..records` on `threads` threads released together;
/// returns the slowest thread's time.
///
/// The threads meet at a spinning barrier rather than `std::sync::Barrier`: a thread woken
/// from a futex can start milliseconds after the others, and a short measurement would then
/// see no contention at all.
fn run<F>(threads: usize, records: u64, record: &F) -> Duration
where
    F: Fn(usize, u64) + Sync,
{
    let arrived = AtomicUsize::new(0);
    thread::scope(|scope| {
        let handles: Vec<_> = (0..threads)
            .map(|thread| {
                let arrived = &arrived;
                scope.spawn(move || {
                    arrived.fetch_add(1, Ordering::SeqCst);
                    while arrived.load(Ordering::SeqCst) < threads {
                        std::hint::spin_loop();
                    }
                    let begin = Instant::now();
                    for i in 0..records {
                        record(thread, i);
                    }
                    begin.elapsed()
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|handle| handle.join().expect("bench thread panicked"))
            .max()
            .unwrap_or_default()
    })
}

/// One peer: how to measure `records` records on `threads` threads, and what to do after.
struct Peer {
    group: &'static str,
    name: &'static str,
    /// Records per thread in a phase-2 measurement.
    round_records: u64,
    measure: Box<dyn Fn(usize, u64) -> Duration>,
}

impl Peer {
    /// A peer recording with `record`, then calling `after` outside the timing.
    fn new<F>(
        group: &'static str,
        name: &'static str,
        round_records: u64,
        record: F,
        after: impl Fn() + 'static,
    ) -> Self
    where
        F: Fn(usize, u64) + Sync + 'static,
    {
        Self {
            group,
            name,
            round_records,
            measure: Box::new(move |threads, records| {
                let elapsed = run(threads, records, &record);
                after();
                elapsed
            }),
        }
    }
}

/// A value on 128 bytes of its own.
#[repr(align(128))]
struct Padded<T>(T);

fn prometheus_exporter() -> &'static PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE.get_or_init(|| {
        PrometheusBuilder::new()
            .set_buckets(BUCKETS)
            .expect("buckets")
            .install_recorder()
            .expect("install the metrics-exporter-prometheus recorder")
    })
}

/// The facade's key of the labeled series `name`, built once as a call site with static
/// labels does.
fn facade_key(name: &'static str) -> metrics::Key {
    let labels: Vec<Label> = LABELS
        .iter()
        .map(|&(label, value)| Label::from_static_parts(label, value))
        .collect();
    metrics::Key::from_parts(name, labels)
}

/// A facade handle without the check for an unregistered instrument: the facade's handles
/// before issue 14.
struct Unchecked<T>(T);

impl CounterFn for Unchecked<mvx::metrics::Counter> {
    fn increment(&self, value: u64) {
        self.0.inc_by(value);
    }

    fn absolute(&self, value: u64) {
        self.0.raise_to(value);
    }
}

impl HistogramFn for Unchecked<Histogram> {
    fn record(&self, value: f64) {
        self.0.observe(value);
    }
}

/// Every peer, counters first.
fn peers() -> Vec<Peer> {
    let exporter = prometheus_exporter();
    let full = round_records();
    let slow = full / 10;
    let mut peers = Vec::new();

    // Counters. The bare atomic gets cache lines of its own, as `Counter`'s value has: next
    // to other heap data (such as the pointer to it that the loop reads), a contended word
    // costs more.
    let atomic = Arc::new(Padded(AtomicU64::new(0)));
    peers.push(Peer::new(
        "counter",
        "fetch_add",
        full,
        move |_, _| {
            atomic.0.fetch_add(1, Ordering::Relaxed);
        },
        || {},
    ));
    let counter = mvx::metrics::Counter::new("bench_counter");
    peers.push(Peer::new(
        "counter",
        "mvx",
        full,
        move |_, _| counter.inc(),
        || {},
    ));
    let counter = prometheus::IntCounter::new("bench_counter", "bench").expect("counter");
    peers.push(Peer::new(
        "counter",
        "prometheus",
        full,
        move |_, _| counter.inc(),
        || {},
    ));
    let counter = prometheus_client::metrics::counter::Counter::<u64>::default();
    peers.push(Peer::new(
        "counter",
        "prometheus-client",
        full,
        move |_, _| {
            counter.inc();
        },
        || {},
    ));
    peers.push(Peer::new(
        "counter",
        "metrics",
        slow,
        |_, _| metrics::counter!("bench_counter").increment(1),
        || {},
    ));

    // Labeled counters: held, looked up in the registry, through the facade.
    let registry = Registry::new();
    let counter = registry
        .counter_with_labels("bench_counter", &LABELS)
        .expect("a series");
    peers.push(Peer::new(
        "counter",
        "mvx-labeled",
        full,
        move |_, _| counter.inc(),
        || {},
    ));
    for (name, limit) in [
        ("mvx-lookup", Registry::DEFAULT_SERIES_LIMIT),
        ("mvx-lookup-nolimit", usize::MAX),
    ] {
        let registry = Registry::with_series_limit(limit);
        peers.push(Peer::new(
            "counter",
            name,
            slow,
            move |_, _| {
                registry
                    .counter_with_labels("bench_counter", &LABELS)
                    .expect("a series")
                    .inc();
            },
            || {},
        ));
    }
    let key = facade_key("bench_counter");
    for (name, limit, records) in [
        ("mvx-facade", Registry::DEFAULT_SERIES_LIMIT, full),
        ("mvx-facade-nolimit", usize::MAX, full),
        ("mvx-facade-overflow", 0, slow),
    ] {
        let recorder = RegistryRecorder::new(Registry::with_series_limit(limit));
        let key = key.clone();
        peers.push(Peer::new(
            "counter",
            name,
            records,
            move |_, _| recorder.register_counter(&key, &METADATA).increment(1),
            || {},
        ));
    }
    let registry = Registry::new();
    let held = RegistryRecorder::new(registry.clone()).register_counter(&key, &METADATA);
    peers.push(Peer::new(
        "counter",
        "mvx-facade-held",
        full,
        move |_, _| held.increment(1),
        || {},
    ));
    let counter = registry
        .counter_with_labels("bench_counter", &LABELS)
        .expect("the series");
    let unchecked = metrics::Counter::from_arc(Arc::new(Unchecked(counter)));
    peers.push(Peer::new(
        "counter",
        "mvx-facade-held-unchecked",
        full,
        move |_, _| unchecked.increment(1),
        || {},
    ));

    // Histograms.
    let histogram = Histogram::new("bench_histogram", BUCKETS.iter().copied()).expect("buckets");
    peers.push(Peer::new(
        "histogram",
        "mvx",
        full,
        move |thread, i| histogram.observe(value(thread, i)),
        || {},
    ));
    let histogram = prometheus_client::metrics::histogram::Histogram::new(BUCKETS.iter().copied());
    peers.push(Peer::new(
        "histogram",
        "prometheus-client",
        full,
        move |thread, i| histogram.observe(value(thread, i)),
        || {},
    ));
    let histogram = prometheus::Histogram::with_opts(
        prometheus::HistogramOpts::new("bench_histogram", "bench").buckets(BUCKETS.to_vec()),
    )
    .expect("histogram");
    peers.push(Peer::new(
        "histogram",
        "prometheus",
        slow,
        move |thread, i| histogram.observe(value(thread, i)),
        || {},
    ));
    peers.push(Peer::new(
        "histogram",
        "metrics",
        slow,
        |thread, i| metrics::histogram!("bench_histogram").record(value(thread, i)),
        || exporter.run_upkeep(),
    ));

    // Labeled histograms: held, looked up in the registry, through the facade.
    let registry = Registry::new();
    let histogram = registry
        .histogram_with_labels("bench_histogram", &LABELS, BUCKETS.iter().copied())
        .expect("a series");
    peers.push(Peer::new(
        "histogram",
        "mvx-labeled",
        full,
        move |thread, i| histogram.observe(value(thread, i)),
        || {},
    ));
    for (name, limit) in [
        ("mvx-lookup", Registry::DEFAULT_SERIES_LIMIT),
        ("mvx-lookup-nolimit", usize::MAX),
    ] {
        let registry = Registry::with_series_limit(limit);
        peers.push(Peer::new(
            "histogram",
            name,
            slow,
            move |thread, i| {
                registry
                    .histogram_with_labels("bench_histogram", &LABELS, BUCKETS.iter().copied())
                    .expect("a series")
                    .observe(value(thread, i));
            },
            || {},
        ));
    }
    let key = facade_key("bench_histogram");
    for (name, limit) in [
        ("mvx-facade", Registry::DEFAULT_SERIES_LIMIT),
        ("mvx-facade-nolimit", usize::MAX),
    ] {
        let recorder = RegistryRecorder::new(Registry::with_series_limit(limit))
            .buckets(BUCKETS.iter().copied())
            .expect("buckets");
        let key = key.clone();
        peers.push(Peer::new(
            "histogram",
            name,
            full,
            move |thread, i| {
                recorder
                    .register_histogram(&key, &METADATA)
                    .record(value(thread, i));
            },
            || {},
        ));
    }
    let registry = Registry::new();
    let held = RegistryRecorder::new(registry.clone())
        .buckets(BUCKETS.iter().copied())
        .expect("buckets")
        .register_histogram(&key, &METADATA);
    peers.push(Peer::new(
        "histogram",
        "mvx-facade-held",
        full,
        move |thread, i| held.record(value(thread, i)),
        || {},
    ));
    let histogram = registry
        .histogram_with_labels("bench_histogram", &LABELS, BUCKETS.iter().copied())
        .expect("the series");
    let unchecked = metrics::Histogram::from_arc(Arc::new(Unchecked(histogram)));
    peers.push(Peer::new(
        "histogram",
        "mvx-facade-held-unchecked",
        full,
        move |thread, i| unchecked.record(value(thread, i)),
        || {},
    ));
    peers
}

// ---------------------------------------------------------------------------------------
// Phase 1: criterion
// ---------------------------------------------------------------------------------------

fn criterion_phase(criterion: &mut Criterion, peers: &[Peer]) {
    for group in ["counter", "histogram"] {
        let mut benchmarks = criterion.benchmark_group(format!("instruments/{group}"));
        benchmarks
            .sampling_mode(SamplingMode::Flat)
            .sample_size(10)
            .warm_up_time(Duration::from_millis(500))
            .measurement_time(Duration::from_millis(1500));
        for peer in peers.iter().filter(|peer| peer.group == group) {
            for threads in THREADS {
                let id = BenchmarkId::new(peer.name, format!("{threads}t"));
                benchmarks.bench_function(id, |bencher| {
                    bencher.iter_custom(|iters| (peer.measure)(threads, iters));
                });
            }
        }
        benchmarks.finish();
    }
}

// ---------------------------------------------------------------------------------------
// Phase 2: interleaved rounds and the summary
// ---------------------------------------------------------------------------------------

type Key = (&'static str, &'static str, usize);

/// ns per record of every peer and thread count, one entry per round, each round on new
/// instruments.
fn interleaved_rounds() -> BTreeMap<Key, Vec<f64>> {
    let mut results: BTreeMap<Key, Vec<f64>> = BTreeMap::new();
    // Kept alive to the end, so that every round's instruments get new addresses.
    let mut earlier_rounds = Vec::with_capacity(rounds());
    for _ in 0..rounds() {
        let peers = peers();
        for peer in &peers {
            for threads in THREADS {
                let elapsed = (peer.measure)(threads, peer.round_records);
                results
                    .entry((peer.group, peer.name, threads))
                    .or_default()
                    .push(elapsed.as_nanos() as f64 / peer.round_records as f64);
            }
        }
        earlier_rounds.push(peers);
    }
    results
}

fn median(values: &[f64]) -> f64 {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    let middle = sorted.len() / 2;
    if sorted.len() % 2 == 0 {
        (sorted[middle - 1] + sorted[middle]) / 2.0
    } else {
        sorted[middle]
    }
}

fn print_summary(peers: &[Peer], results: &BTreeMap<Key, Vec<f64>>) {
    eprintln!();
    eprintln!(
        "== instruments summary: median ns/record per thread over {} interleaved rounds \
         (min-max in brackets) ==",
        rounds()
    );
    eprintln!("| group | peer | 1 thread | 2 threads |");
    eprintln!("|---|---|---|---|");
    for peer in peers {
        let cell = |threads| {
            results.get(&(peer.group, peer.name, threads)).map_or_else(
                || "-".to_owned(),
                |ns| {
                    let low = ns.iter().copied().fold(f64::INFINITY, f64::min);
                    let high = ns.iter().copied().fold(0.0, f64::max);
                    format!("{:.1} [{low:.1}-{high:.1}]", median(ns))
                },
            )
        };
        eprintln!(
            "| {} | {} | {} | {} |",
            peer.group,
            peer.name,
            cell(1),
            cell(2)
        );
    }

    eprintln!();
    eprintln!(
        "== mvx against its targets (DESIGN.md section 7, issue 14): per-round ratios \
         measured / baseline =="
    );
    eprintln!(
        "| target | measured / baseline | threads | median ratio | lowest | highest | limit | |"
    );
    eprintln!("|---|---|---|---|---|---|---|---|");
    // (target, group, measured peer, baseline peer, limit), at 1 and 2 threads.
    let targets = [
        (
            "Counter::inc / fetch_add",
            "counter",
            "mvx",
            "fetch_add",
            1.1,
            1.1,
        ),
        (
            "Histogram::observe / prometheus-client",
            "histogram",
            "mvx",
            "prometheus-client",
            1.0,
            0.5,
        ),
        (
            "labeled series, held / unlabeled",
            "counter",
            "mvx-labeled",
            "mvx",
            1.1,
            1.1,
        ),
        (
            "labeled series, held / unlabeled",
            "histogram",
            "mvx-labeled",
            "mvx",
            1.1,
            1.1,
        ),
        (
            "registry lookup per record: series limit / no limit",
            "counter",
            "mvx-lookup",
            "mvx-lookup-nolimit",
            1.1,
            1.1,
        ),
        (
            "registry lookup per record: series limit / no limit",
            "histogram",
            "mvx-lookup",
            "mvx-lookup-nolimit",
            1.1,
            1.1,
        ),
        (
            "facade per record: series limit / no limit",
            "counter",
            "mvx-facade",
            "mvx-facade-nolimit",
            1.1,
            1.1,
        ),
        (
            "facade per record: series limit / no limit",
            "histogram",
            "mvx-facade",
            "mvx-facade-nolimit",
            1.1,
            1.1,
        ),
        (
            "facade handle held: unregistered check / none",
            "counter",
            "mvx-facade-held",
            "mvx-facade-held-unchecked",
            1.1,
            1.1,
        ),
        (
            "facade handle held: unregistered check / none",
            "histogram",
            "mvx-facade-held",
            "mvx-facade-held-unchecked",
            1.1,
            1.1,
        ),
    ];
    for (target, group, measured, baseline, one_thread, two_threads) in targets {
        for (threads, limit) in [(1, one_thread), (2, two_threads)] {
            let (Some(measured_ns), Some(baseline_ns)) = (
                results.get(&(group, measured, threads)),
                results.get(&(group, baseline, threads)),
            ) else {
                continue;
            };
            let ratios: Vec<f64> = measured_ns
                .iter()
                .zip(baseline_ns)
                .map(|(a, b)| a / b)
                .collect();
            let ratio = median(&ratios);
            let low = ratios.iter().copied().fold(f64::INFINITY, f64::min);
            let high = ratios.iter().copied().fold(0.0, f64::max);
            let verdict = if ratio <= limit { "met" } else { "NOT met" };
            eprintln!(
                "| {target} ({group}) | {measured} / {baseline} | {threads} | {ratio:.2} | {low:.2} | \
                 {high:.2} | <= {limit} | {verdict} |"
            );
        }
    }
    eprintln!();
}

fn main() {
    let peers = peers();
    let mut criterion = Criterion::default().configure_from_args();
    criterion_phase(&mut criterion, &peers);
    criterion.final_summary();
    let results = interleaved_rounds();
    print_summary(&peers, &results);
}
