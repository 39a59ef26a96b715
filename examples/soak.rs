//! Soak: producers through start/stop cycles and overflow, for as long as you like.
//!
//! Each cycle creates a sink on its own runtime thread (`rt::thread::create`) with a small
//! queue, lets 4 producer threads log into it as fast as they can, and terminates it while
//! they are still logging. The overflow policy changes every cycle (`Drop`, `RaiseError`,
//! `Block`), and the dispatcher is slow now and then and fails some events, so the queue
//! is full most of the time and every outcome happens: accepted, dropped, refused with the
//! event handed back, delivered, failed.
//!
//! After every cycle the soak checks the accounting against what the producers and the
//! dispatcher saw, and stops with an error at the first mismatch:
//! - `accepted == delivered + failed` and nothing pending once the sink has stopped;
//! - `accepted` and `dropped` equal the `Accepted` and `Dropped` outcomes the producers got;
//! - `delivered` and `failed` equal what the dispatcher delivered and failed;
//! - every refused event came back to its producer, unchanged.
//!
//! At every interval it prints the throughput (`logged/s`: `log()` calls in the interval,
//! whatever their outcome; `avg delivered/s`: events delivered since the start, per second),
//! the resident memory (`VmRSS`) and the process's thread count (Linux; elsewhere they show as 0), so that a leak of memory or of
//! runtime threads shows as growth across the run. BENCHMARKS.md records a 10-minute run.
//!
//! Run with `cargo run --release --example soak -- [SECONDS] [INTERVAL_SECONDS]` (defaults:
//! 60 and 10). `tests/examples.rs` runs it for two seconds.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use mvx::BoxError;
use mvx::queue::{LogOutcome, OverflowPolicy, QueueStats};
use mvx::sink::{AsyncSink, Dispatch, SinkConfig};

/// Producer threads.
pub const PRODUCERS: usize = 4;
/// The queue capacity of every cycle's sink: small, so that producers overflow it.
const CAPACITY: usize = 256;
/// How long producers log into one sink before it is terminated under them.
const CYCLE: Duration = Duration::from_millis(100);
/// The dispatcher fails every event whose id is a multiple of this.
const FAIL_EVERY: u64 = 101;
/// The dispatcher stalls (as a slow backend would) on every event whose id is a multiple of
/// this.
const STALL_EVERY: u64 = 2048;
/// How long a stall lasts.
const STALL: Duration = Duration::from_micros(300);

/// What the dispatcher saw, shared with the checking thread.
#[derive(Default)]
struct Seen {
    delivered: AtomicU64,
    failed: AtomicU64,
}

/// A dispatcher standing in for a slow, sometimes failing backend.
struct Backend {
    seen: Arc<Seen>,
}

impl Dispatch<u64> for Backend {
    async fn dispatch(&mut self, event: u64) -> Result<(), BoxError> {
        if event % STALL_EVERY == 0 {
            // The dispatcher runs on the sink's own thread: blocking it stands for a backend
            // that is slow to answer.
            thread::sleep(STALL);
        }
        if event % FAIL_EVERY == 0 {
            self.seen.failed.fetch_add(1, Ordering::Relaxed);
            return Err(format!("backend refused event {event}").into());
        }
        self.seen.delivered.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }
}

/// What one producer got from `log()` during one cycle.
#[derive(Clone, Copy, Debug, Default)]
struct Outcomes {
    accepted: u64,
    dropped: u64,
    refused: u64,
}

/// Logs into `sink` until `over` is set; every event has an id unique across the run.
fn produce(sink: &AsyncSink<u64>, over: &AtomicBool, ids: &AtomicU64) -> Result<Outcomes, String> {
    let mut outcomes = Outcomes::default();
    while !over.load(Ordering::Relaxed) {
        let id = ids.fetch_add(1, Ordering::Relaxed);
        match sink.log(id) {
            Ok(LogOutcome::Accepted) => outcomes.accepted += 1,
            Ok(LogOutcome::Dropped) => outcomes.dropped += 1,
            Err(error) => {
                let event = error.into_inner();
                if event != id {
                    return Err(format!("logged event {id}, got {event} back"));
                }
                outcomes.refused += 1;
            }
        }
    }
    Ok(outcomes)
}

/// The figures of one cycle, checked.
#[derive(Clone, Copy, Debug)]
pub struct Cycle {
    /// The sink's counters after it stopped.
    pub stats: QueueStats,
    /// Events the producers got back in an error.
    pub refused: u64,
}

/// One cycle: a new sink, producers until it is terminated under them, the checks.
fn cycle(index: u64, ids: &AtomicU64) -> Result<Cycle, Box<dyn std::error::Error>> {
    let overflow = match index % 3 {
        0 => OverflowPolicy::Drop,
        1 => OverflowPolicy::RaiseError,
        _ => OverflowPolicy::Block,
    };
    let seen = Arc::new(Seen::default());
    let backend = Backend { seen: seen.clone() };
    let config = SinkConfig::default()
        .namespace("soak")
        .queue_capacity(CAPACITY)
        .overflow(overflow);
    let (sink, terminator) = mvx::rt::thread::create(backend, config)?;

    let over = AtomicBool::new(false);
    let outcomes = thread::scope(|scope| {
        let producers: Vec<_> = (0..PRODUCERS)
            .map(|_| scope.spawn(|| produce(&sink, &over, ids)))
            .collect();
        thread::sleep(CYCLE);
        // Stopped under the producers: some of their events race the stop.
        let terminated = terminator.terminate();
        over.store(true, Ordering::Relaxed);
        let outcomes: Result<Vec<Outcomes>, String> = producers
            .into_iter()
            .map(|producer| producer.join().expect("a producer panicked"))
            .collect();
        terminated.map_err(|error| format!("cycle {index}: terminate failed: {error}"))?;
        outcomes.map_err(|error| format!("cycle {index}: {error}"))
    })?;

    let stats = sink.stats();
    let total = outcomes
        .iter()
        .fold(Outcomes::default(), |sum, one| Outcomes {
            accepted: sum.accepted + one.accepted,
            dropped: sum.dropped + one.dropped,
            refused: sum.refused + one.refused,
        });
    let delivered = seen.delivered.load(Ordering::Relaxed);
    let failed = seen.failed.load(Ordering::Relaxed);
    let checks = [
        (
            "accepted == delivered + failed",
            stats.accepted == stats.delivered + stats.failed,
        ),
        ("nothing pending after the stop", stats.pending == 0),
        (
            "accepted == Accepted outcomes",
            stats.accepted == total.accepted,
        ),
        (
            "dropped == Dropped outcomes",
            stats.dropped == total.dropped,
        ),
        (
            "delivered == dispatcher's deliveries",
            stats.delivered == delivered,
        ),
        ("failed == dispatcher's failures", stats.failed == failed),
        (
            "no drops unless Drop",
            overflow == OverflowPolicy::Drop || total.dropped == 0,
        ),
    ];
    for (check, holds) in checks {
        if !holds {
            return Err(format!(
                "cycle {index} ({overflow:?}): {check} does not hold: {stats:?}, producers \
                 {total:?}, dispatcher delivered {delivered} failed {failed}"
            )
            .into());
        }
    }
    Ok(Cycle {
        stats,
        refused: total.refused,
    })
}

/// Resident memory in KiB and the number of threads of this process, from
/// `/proc/self/status`; zeros where there is no such file.
pub fn resident_memory_and_threads() -> (u64, u64) {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find_map(|line| line.strip_prefix(name))
            .and_then(|rest| rest.split_whitespace().next())
            .and_then(|value| value.parse().ok())
            .unwrap_or(0)
    };
    (field("VmRSS:"), field("Threads:"))
}

/// One line printed at an interval.
#[derive(Clone, Copy, Debug)]
pub struct Sample {
    /// Time since the start of the run.
    pub elapsed: Duration,
    /// Cycles completed so far.
    pub cycles: u64,
    /// Resident memory, KiB.
    pub rss_kib: u64,
    /// Threads of the process, between cycles.
    pub threads: u64,
}

/// What a run did.
#[derive(Clone, Debug, Default)]
pub struct Summary {
    /// Cycles completed, each checked.
    pub cycles: u64,
    /// The counters of every cycle, added up.
    pub totals: QueueStats,
    /// Events handed back to producers, added up.
    pub refused: u64,
    /// One sample per interval.
    pub samples: Vec<Sample>,
}

/// Runs cycles for `duration`, printing a sample every `interval`; fails at the first cycle
/// whose accounting does not hold.
pub fn run(duration: Duration, interval: Duration) -> Result<Summary, Box<dyn std::error::Error>> {
    let ids = AtomicU64::new(1);
    let begin = Instant::now();
    let mut summary = Summary::default();
    let mut next_sample = interval;
    let mut last = (Duration::ZERO, 0u64);
    println!(
        "soak: {PRODUCERS} producers, capacity {CAPACITY}, {CYCLE:?} per cycle, for {duration:?}"
    );
    println!(
        "{:>8} {:>7} {:>14} {:>16} {:>12} {:>9} {:>8}",
        "elapsed", "cycles", "logged/s", "avg delivered/s", "dropped", "RSS MiB", "threads"
    );
    while begin.elapsed() < duration {
        let one = cycle(summary.cycles, &ids)?;
        summary.cycles += 1;
        summary.refused += one.refused;
        let totals = &mut summary.totals;
        totals.accepted += one.stats.accepted;
        totals.delivered += one.stats.delivered;
        totals.failed += one.stats.failed;
        totals.dropped += one.stats.dropped;

        let elapsed = begin.elapsed();
        if elapsed >= next_sample || elapsed >= duration {
            let (rss_kib, threads) = resident_memory_and_threads();
            let logged = ids.load(Ordering::Relaxed) - 1;
            let seconds = (elapsed - last.0).as_secs_f64();
            println!(
                "{:>7.0}s {:>7} {:>14.0} {:>16.0} {:>12} {:>9.1} {:>8}",
                elapsed.as_secs_f64(),
                summary.cycles,
                (logged - last.1) as f64 / seconds,
                summary.totals.delivered as f64 / elapsed.as_secs_f64(),
                summary.totals.dropped,
                rss_kib as f64 / 1024.0,
                threads,
            );
            summary.samples.push(Sample {
                elapsed,
                cycles: summary.cycles,
                rss_kib,
                threads,
            });
            last = (elapsed, logged);
            next_sample += interval;
        }
    }
    Ok(summary)
}

/// Parses `[SECONDS] [INTERVAL_SECONDS]` (defaults 60 and 10), runs the soak, prints the
/// totals and the memory figures.
pub fn run_with_args(args: &[String]) -> Result<Summary, Box<dyn std::error::Error>> {
    let seconds = |position: usize, default: u64| -> Result<Duration, String> {
        let seconds = match args.get(position) {
            Some(arg) => arg.parse().map_err(|_| {
                format!(
                    "argument {} must be a number of seconds, got {arg:?}",
                    position + 1
                )
            })?,
            None => default,
        };
        Ok(Duration::from_secs(seconds.max(1)))
    };
    let summary = run(seconds(0, 60)?, seconds(1, 10)?)?;
    let totals = summary.totals;
    println!(
        "soak: {} cycles checked; accepted {}, delivered {}, failed {}, dropped {}, refused {}",
        summary.cycles,
        totals.accepted,
        totals.delivered,
        totals.failed,
        totals.dropped,
        summary.refused
    );
    if let (Some(first), Some(last)) = (summary.samples.first(), summary.samples.last()) {
        let peak = summary
            .samples
            .iter()
            .map(|sample| sample.rss_kib)
            .max()
            .unwrap_or(0);
        println!(
            "soak: RSS {:.1} MiB at {:.0}s (cycle {}), {:.1} MiB at the end (cycle {}), peak {:.1} MiB; threads {} then {}",
            first.rss_kib as f64 / 1024.0,
            first.elapsed.as_secs_f64(),
            first.cycles,
            last.rss_kib as f64 / 1024.0,
            last.cycles,
            peak as f64 / 1024.0,
            first.threads,
            last.threads,
        );
    }
    Ok(summary)
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    run_with_args(&args).map(drop)
}
