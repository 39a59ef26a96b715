//! Direct instruments: `Counter::inc` and `Histogram::observe` beside a bare
//! `AtomicU64::fetch_add` and the `prometheus`, `prometheus-client` and `metrics` crates
//! (DESIGN.md section 7), at 1 thread and at 2 threads recording into one shared instrument.
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
//! Run with `cargo bench --bench instruments` (about 70 s on 2 cores). Criterion's filter
//! applies to phase 1 only.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::thread;
use std::time::{Duration, Instant};

use criterion::{BenchmarkId, Criterion, SamplingMode};
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use mvx::metrics::Histogram;

/// The thread counts measured.
const THREADS: [usize; 2] = [1, 2];
/// Interleaved rounds of phase 2.
const ROUNDS: usize = 15;
/// Records per thread in one measurement of phase 2 (a tenth of it for slow peers).
const ROUND_RECORDS: u64 = 2_000_000;
/// The bucket bounds every histogram peer gets.
const BUCKETS: &[f64] = Histogram::DEFAULT_BUCKETS;

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

/// Every peer, counters first.
fn peers() -> Vec<Peer> {
    let exporter = prometheus_exporter();
    let slow = ROUND_RECORDS / 10;
    let mut peers = Vec::new();

    // Counters. The bare atomic gets cache lines of its own, as `Counter`'s value has: next
    // to other heap data (such as the pointer to it that the loop reads), a contended word
    // costs more.
    let atomic = Arc::new(Padded(AtomicU64::new(0)));
    peers.push(Peer::new(
        "counter",
        "fetch_add",
        ROUND_RECORDS,
        move |_, _| {
            atomic.0.fetch_add(1, Ordering::Relaxed);
        },
        || {},
    ));
    let counter = mvx::metrics::Counter::new("bench_counter");
    peers.push(Peer::new(
        "counter",
        "mvx",
        ROUND_RECORDS,
        move |_, _| counter.inc(),
        || {},
    ));
    let counter = prometheus::IntCounter::new("bench_counter", "bench").expect("counter");
    peers.push(Peer::new(
        "counter",
        "prometheus",
        ROUND_RECORDS,
        move |_, _| counter.inc(),
        || {},
    ));
    let counter = prometheus_client::metrics::counter::Counter::<u64>::default();
    peers.push(Peer::new(
        "counter",
        "prometheus-client",
        ROUND_RECORDS,
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

    // Histograms.
    let histogram = Histogram::new("bench_histogram", BUCKETS.iter().copied()).expect("buckets");
    peers.push(Peer::new(
        "histogram",
        "mvx",
        ROUND_RECORDS,
        move |thread, i| histogram.observe(value(thread, i)),
        || {},
    ));
    let histogram = prometheus_client::metrics::histogram::Histogram::new(BUCKETS.iter().copied());
    peers.push(Peer::new(
        "histogram",
        "prometheus-client",
        ROUND_RECORDS,
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
    let mut earlier_rounds = Vec::with_capacity(ROUNDS);
    for _ in 0..ROUNDS {
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
        "== instruments summary: median ns/record per thread over {ROUNDS} interleaved rounds \
         (min-max in brackets) =="
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
    eprintln!("== mvx against the DESIGN.md section 7 targets: per-round ratios mvx / peer ==");
    eprintln!("| target | threads | median ratio | lowest | highest | limit | |");
    eprintln!("|---|---|---|---|---|---|---|");
    let targets = [
        ("Counter::inc / fetch_add", "counter", "fetch_add", 1, 1.1),
        ("Counter::inc / fetch_add", "counter", "fetch_add", 2, 1.1),
        (
            "Histogram::observe / prometheus-client",
            "histogram",
            "prometheus-client",
            1,
            1.0,
        ),
        (
            "Histogram::observe / prometheus-client",
            "histogram",
            "prometheus-client",
            2,
            0.5,
        ),
    ];
    for (target, group, peer, threads, limit) in targets {
        let (Some(mvx), Some(other)) = (
            results.get(&(group, "mvx", threads)),
            results.get(&(group, peer, threads)),
        ) else {
            continue;
        };
        let ratios: Vec<f64> = mvx.iter().zip(other).map(|(a, b)| a / b).collect();
        let ratio = median(&ratios);
        let low = ratios.iter().copied().fold(f64::INFINITY, f64::min);
        let high = ratios.iter().copied().fold(0.0, f64::max);
        let verdict = if ratio <= limit { "met" } else { "NOT met" };
        eprintln!(
            "| {target} | {threads} | {ratio:.2} | {low:.2} | {high:.2} | <= {limit} | {verdict} |"
        );
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
