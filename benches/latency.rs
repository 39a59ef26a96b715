//! `LatencyHistogram::record` beside the `hdrhistogram` crate's `record` (issue 18, "Cost"),
//! at 1 thread and at 2 threads recording at once, in the same run.
//!
//! The peers, each recording the same values (HdrHistogram's layout for 1 ns to 1 h with
//! 2 significant digits in every one, so each record does the same bucket arithmetic):
//!
//! - `mvx`: one `LatencyHistogram` (the default configuration) shared by the threads,
//!   `record_nanos(v)`; each thread writes its own stripe;
//! - `mvx-duration`: the same with `record(Duration)`, what a harness holding an
//!   `Instant::elapsed()` calls;
//! - `hdrhistogram`: one `hdrhistogram::Histogram<u64>` per thread, `record(v)` on it
//!   (`&mut`, no synchronisation), the copies merged into one after each measurement,
//!   outside the timing. At 1 thread this is the crate's plain `record`, the baseline of the
//!   1-thread target; at 2 threads, the crate's way to record from several threads without
//!   contention, paid for with a histogram per thread and a merge before every read;
//! - `hdrhistogram-mutex`: one `hdrhistogram::Histogram<u64>` behind a `std::sync::Mutex`,
//!   locked for each record: the crate's way to share one histogram, the baseline of the
//!   2-thread target.
//!
//! Targets (issue 18): `mvx` ≤ 1.0× `hdrhistogram` at 1 thread, ≤ 0.5× `hdrhistogram-mutex`
//! at 2 threads, and ≤ 20 ns per record in absolute terms. The summary also gives `mvx` /
//! `hdrhistogram` at 2 threads (per-thread copies do not contend: the ratio shows what
//! sharing one histogram costs mvx over private copies).
//!
//! Every measurement spawns the threads; each records once (its warm-up: mvx allocates the
//! thread's stripe on its first record) and they are released together through a spinning
//! barrier, then each times its own loop of a fixed number of records. The measurement's
//! time is the slowest thread's, divided by the records per thread: ns per record as each
//! thread sees it. Values cycle over 64 latencies from 1 µs to about 1.3 s, geometrically
//! spaced (every thread from another offset).
//!
//! Two phases, as in benches/instruments.rs (whose docs say why): criterion's group
//! `latency/record`, one benchmark per peer and thread count (`iter_custom`: one iteration
//! is one record on each thread); then `ROUNDS` interleaved rounds measuring every peer at
//! every thread count milliseconds apart, each round on new histograms, and a summary to
//! stderr with the median ns per record and the per-round ratios against the targets.
//!
//! Run with `cargo bench --bench latency` (about 2 minutes on 2 cores), on an idle machine:
//! the ratios are same-run ratios, but a busy machine spreads them. With `-- --test` (a smoke
//! test of every peer), criterion runs each benchmark once and phase 2 one short round.

use std::collections::BTreeMap;
use std::hint::black_box;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use criterion::{BenchmarkId, Criterion, SamplingMode};
use mvx::metrics::LatencyHistogram;

/// The thread counts measured.
const THREADS: [usize; 2] = [1, 2];
/// Interleaved rounds of phase 2.
const ROUNDS: usize = 15;
/// Records per thread in one measurement of phase 2 (a tenth of it for the locked peer).
const ROUND_RECORDS: u64 = 2_000_000;
/// The highest value of every histogram: 1 h in nanoseconds.
const HIGHEST: u64 = 3_600_000_000_000;

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

/// 64 latencies in nanoseconds, from 1 µs to about 1.3 s, geometrically spaced: they land
/// in 22 of the layout's buckets.
fn values() -> &'static [u64; 64] {
    static VALUES: std::sync::OnceLock<[u64; 64]> = std::sync::OnceLock::new();
    VALUES.get_or_init(|| std::array::from_fn(|k| (1_000.0 * 1.25_f64.powi(k as i32)) as u64))
}

/// The value thread `thread` records at step `i`.
#[inline]
fn value(thread: usize, i: u64) -> u64 {
    values()[(i as usize).wrapping_add(thread * 17) & 63]
}

/// An `hdrhistogram` histogram of mvx's default range and relative error.
fn hdr() -> hdrhistogram::Histogram<u64> {
    hdrhistogram::Histogram::new_with_bounds(1, HIGHEST, 2).expect("valid bounds")
}

// ---------------------------------------------------------------------------------------
// Harness
// ---------------------------------------------------------------------------------------

/// Runs `record(&mut state, thread, i)` for `i` in `0..records` on `threads` threads, each
/// with a `state` of its own from `make`, after one warm-up record, released together;
/// returns the slowest thread's time and the states.
///
/// The threads meet at a spinning barrier rather than `std::sync::Barrier`: a thread woken
/// from a futex can start milliseconds after the others, and a short measurement would then
/// see no contention at all.
fn run<S, M, R>(threads: usize, records: u64, make: &M, record: &R) -> (Duration, Vec<S>)
where
    S: Send,
    M: Fn() -> S + Sync,
    R: Fn(&mut S, usize, u64) + Sync,
{
    let arrived = AtomicUsize::new(0);
    thread::scope(|scope| {
        let handles: Vec<_> = (0..threads)
            .map(|thread| {
                let arrived = &arrived;
                scope.spawn(move || {
                    let mut state = make();
                    record(&mut state, thread, 0);
                    arrived.fetch_add(1, Ordering::SeqCst);
                    while arrived.load(Ordering::SeqCst) < threads {
                        std::hint::spin_loop();
                    }
                    let begin = Instant::now();
                    for i in 0..records {
                        record(&mut state, thread, i);
                    }
                    (begin.elapsed(), state)
                })
            })
            .collect();
        let mut slowest = Duration::ZERO;
        let mut states = Vec::with_capacity(threads);
        for handle in handles {
            let (elapsed, state) = handle.join().expect("bench thread panicked");
            slowest = slowest.max(elapsed);
            states.push(state);
        }
        (slowest, states)
    })
}

/// One peer: how to measure `records` records per thread on `threads` threads.
struct Peer {
    name: &'static str,
    /// Records per thread in a phase-2 measurement.
    round_records: u64,
    measure: Box<dyn Fn(usize, u64) -> Duration>,
}

/// Every peer, on histograms of their own.
fn peers() -> Vec<Peer> {
    let full = round_records();
    let mut peers = Vec::new();

    let latency = LatencyHistogram::new("bench.latency");
    peers.push(Peer {
        name: "mvx",
        round_records: full,
        measure: Box::new(move |threads, records| {
            let record = |_: &mut (), thread, i| latency.record_nanos(value(thread, i));
            run(threads, records, &|| (), &record).0
        }),
    });

    let latency = LatencyHistogram::new("bench.latency");
    peers.push(Peer {
        name: "mvx-duration",
        round_records: full,
        measure: Box::new(move |threads, records| {
            let record = |_: &mut (), thread, i| {
                latency.record(Duration::from_nanos(value(thread, i)));
            };
            run(threads, records, &|| (), &record).0
        }),
    });

    // One histogram per thread, merged into `total` after the timing, as a harness reading
    // the figures would.
    let total = Mutex::new(hdr());
    peers.push(Peer {
        name: "hdrhistogram",
        round_records: full,
        measure: Box::new(move |threads, records| {
            let record = |histogram: &mut hdrhistogram::Histogram<u64>, thread, i| {
                histogram.record(value(thread, i)).expect("in range");
            };
            let (elapsed, copies) = run(threads, records, &hdr, &record);
            let mut total = total.lock().expect("not poisoned");
            for copy in &copies {
                total.add(copy).expect("same bounds");
            }
            black_box(total.len());
            elapsed
        }),
    });

    let shared = Mutex::new(hdr());
    peers.push(Peer {
        name: "hdrhistogram-mutex",
        round_records: full / 10,
        measure: Box::new(move |threads, records| {
            let record = |_: &mut (), thread, i| {
                shared
                    .lock()
                    .expect("not poisoned")
                    .record(value(thread, i))
                    .expect("in range");
            };
            run(threads, records, &|| (), &record).0
        }),
    });
    peers
}

// ---------------------------------------------------------------------------------------
// Phase 1: criterion
// ---------------------------------------------------------------------------------------

fn criterion_phase(criterion: &mut Criterion, peers: &[Peer]) {
    let mut benchmarks = criterion.benchmark_group("latency/record");
    benchmarks
        .sampling_mode(SamplingMode::Flat)
        .sample_size(10)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_millis(1500));
    for peer in peers {
        for threads in THREADS {
            let id = BenchmarkId::new(peer.name, format!("{threads}t"));
            benchmarks.bench_function(id, |bencher| {
                bencher.iter_custom(|iters| (peer.measure)(threads, iters));
            });
        }
    }
    benchmarks.finish();
}

// ---------------------------------------------------------------------------------------
// Phase 2: interleaved rounds and the summary
// ---------------------------------------------------------------------------------------

type Key = (&'static str, usize);

/// ns per record of every peer and thread count, one entry per round, each round on new
/// histograms.
fn interleaved_rounds() -> BTreeMap<Key, Vec<f64>> {
    let mut results: BTreeMap<Key, Vec<f64>> = BTreeMap::new();
    // Kept alive to the end, so that every round's histograms get new addresses.
    let mut earlier_rounds = Vec::with_capacity(rounds());
    for _ in 0..rounds() {
        let peers = peers();
        for peer in &peers {
            for threads in THREADS {
                let elapsed = (peer.measure)(threads, peer.round_records);
                results
                    .entry((peer.name, threads))
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

/// The lowest and highest of `values`.
fn spread(values: &[f64]) -> (f64, f64) {
    let low = values.iter().copied().fold(f64::INFINITY, f64::min);
    let high = values.iter().copied().fold(0.0, f64::max);
    (low, high)
}

fn print_summary(peers: &[Peer], results: &BTreeMap<Key, Vec<f64>>) {
    eprintln!();
    eprintln!(
        "== latency summary: median ns/record per thread over {} interleaved rounds \
         (min-max in brackets) ==",
        rounds()
    );
    eprintln!("| peer | 1 thread | 2 threads |");
    eprintln!("|---|---|---|");
    for peer in peers {
        let cell = |threads| {
            results.get(&(peer.name, threads)).map_or_else(
                || "-".to_owned(),
                |ns| {
                    let (low, high) = spread(ns);
                    format!("{:.1} [{low:.1}-{high:.1}]", median(ns))
                },
            )
        };
        eprintln!("| {} | {} | {} |", peer.name, cell(1), cell(2));
    }

    eprintln!();
    eprintln!(
        "== mvx against its targets (issue 18, Cost): per-round ratios measured / baseline =="
    );
    eprintln!("| measured / baseline | threads | median ratio | lowest | highest | limit | |");
    eprintln!("|---|---|---|---|---|---|---|");
    // (measured, baseline, threads, limit); a limit of `None` is reported for reference.
    let targets = [
        ("mvx", "hdrhistogram", 1, Some(1.0)),
        ("mvx", "hdrhistogram-mutex", 2, Some(0.5)),
        ("mvx", "hdrhistogram", 2, None),
        ("mvx-duration", "hdrhistogram", 1, None),
    ];
    for (measured, baseline, threads, limit) in targets {
        let (Some(measured_ns), Some(baseline_ns)) = (
            results.get(&(measured, threads)),
            results.get(&(baseline, threads)),
        ) else {
            continue;
        };
        let ratios: Vec<f64> = measured_ns
            .iter()
            .zip(baseline_ns)
            .map(|(a, b)| a / b)
            .collect();
        let ratio = median(&ratios);
        let (low, high) = spread(&ratios);
        let (limit, verdict) = match limit {
            Some(limit) if ratio <= limit => (format!("<= {limit}"), "met"),
            Some(limit) => (format!("<= {limit}"), "NOT met"),
            None => ("-".to_owned(), "for reference"),
        };
        eprintln!(
            "| {measured} / {baseline} | {threads} | {ratio:.2} | {low:.2} | {high:.2} | \
             {limit} | {verdict} |"
        );
    }
    for threads in THREADS {
        if let Some(ns) = results.get(&("mvx", threads)) {
            let ns = median(ns);
            let verdict = if ns <= 20.0 { "met" } else { "NOT met" };
            eprintln!("| mvx ns/record | {threads} | {ns:.1} ns | | | <= 20 ns | {verdict} |");
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
