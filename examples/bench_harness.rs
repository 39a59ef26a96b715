//! A benchmark harness: a closed-loop load generator against an in-process service, every
//! request's latency recorded through mvx, running figures every second, a percentile
//! report at the end, the live figures on `/metrics`, and HdrHistogram's `.hgrm` percentile
//! tables written to files.
//!
//! - **The service** stands for an RPC server: a queue in front of [`WORKERS`] worker
//!   threads. Most requests cost a few microseconds of work; one in a hundred waits 0.8 ms
//!   and one in a thousand 5 ms, as on a slow dependency, and the requests queued behind a
//!   slow one wait too.
//! - **The load generator**: `--clients` threads, each sending a request, waiting for its
//!   answer (closed loop), and sending the next one `--interval-us` after the previous one
//!   was due (as soon as the answer is in, when it is late; `0`: as fast as answers come).
//!   Each thread records every request's latency into one
//!   [`LatencyHistogram`](mvx::metrics::LatencyHistogram) (lock-free, no allocation per
//!   record), and the same latency corrected for coordinated omission
//!   ([`record_corrected`](mvx::metrics::LatencyHistogram::record_corrected)) into a second
//!   one: a closed-loop client sends nothing while it waits for a slow answer, so the
//!   requests the schedule would have sent meanwhile, and that would have waited too, are
//!   never measured; the correction adds them.
//! - **Every second** a line with a progress bar and the figures of that second
//!   ([`take_interval`](mvx::metrics::LatencyHistogram::take_interval): the records of the
//!   interval, none lost to the recording threads racing with the read).
//! - **Live figures**: a [`ThreadedMetricsServer`] serves the registry that holds both
//!   histograms; each is a Prometheus summary (`quantile` 0.5 … 1, `_sum`, `_count`, in
//!   seconds) at `/metrics`, and listed with its accuracy at `/api/metrics`.
//! - **At the end**, the percentile report of both histograms, and each written in
//!   HdrHistogram's percentile distribution format (`--hgrm`, default `bench_harness.hgrm`,
//!   and the corrected one beside it, `bench_harness.corrected.hgrm`), values in
//!   microseconds: the files HdrHistogram's plotting tools read — drop both on
//!   <https://hdrhistogram.github.io/HdrHistogram/plotFiles.html> to see the two curves.
//!
//! Run with `cargo run --release --example bench_harness --features http -- [--seconds N]
//! [--clients N] [--interval-us N] [--hgrm PATH] [--listen ADDR]` (defaults: 10 s, 4
//! clients, one request every 1,000 µs each, `bench_harness.hgrm`, `127.0.0.1:0`: a free
//! port). `tests/examples.rs` runs it for two seconds.

use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, Sender};
use mvx::expose::http::{ServerConfig, ThreadedMetricsServer};
use mvx::metrics::{LatencyConfig, LatencyDistribution, LatencyHistogram, Registry};

/// Worker threads of the service.
pub const WORKERS: usize = 2;
/// The quantiles of the report at the end.
const REPORTED: [(&str, f64); 6] = [
    ("p50", 0.5),
    ("p90", 0.9),
    ("p99", 0.99),
    ("p99.9", 0.999),
    ("p99.99", 0.9999),
    ("max", 1.0),
];
/// Percentile steps per halving of the distance to 100 % in the `.hgrm` tables
/// (HdrHistogram's default).
const TICKS_PER_HALF_DISTANCE: u32 = 5;
/// The width of the progress bar, in characters.
const BAR: usize = 20;

/// What the harness is asked to do.
#[derive(Clone, Debug)]
pub struct Options {
    /// How long the load runs, in whole seconds (a line each).
    pub seconds: u64,
    /// Load generator threads.
    pub clients: usize,
    /// The time between a client's requests when answers keep up; zero: no pacing.
    pub interval: Duration,
    /// Where the `.hgrm` table of the latencies as measured goes; the corrected one goes
    /// beside it (see [`corrected_path`]).
    pub hgrm: PathBuf,
    /// The address `/metrics` is served on.
    pub listen: SocketAddr,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            seconds: 10,
            clients: 4,
            interval: Duration::from_micros(1_000),
            hgrm: PathBuf::from("bench_harness.hgrm"),
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
        }
    }
}

impl Options {
    /// The options given as `--name value` pairs, over the defaults.
    ///
    /// # Errors
    ///
    /// An unknown option, a missing value, or a value that does not parse.
    pub fn parse(arguments: &[String]) -> Result<Self, Box<dyn std::error::Error>> {
        let mut options = Self::default();
        let mut arguments = arguments.iter();
        while let Some(name) = arguments.next() {
            let value = arguments
                .next()
                .ok_or_else(|| format!("{name} needs a value"))?;
            match name.as_str() {
                "--seconds" => options.seconds = value.parse()?,
                "--clients" => options.clients = value.parse()?,
                "--interval-us" => options.interval = Duration::from_micros(value.parse()?),
                "--hgrm" => options.hgrm = PathBuf::from(value),
                "--listen" => options.listen = value.parse()?,
                _ => {
                    return Err(format!(
                        "unknown option {name}; options: --seconds N --clients N \
                         --interval-us N --hgrm PATH --listen ADDR"
                    )
                    .into());
                }
            }
        }
        if options.seconds == 0 || options.clients == 0 {
            return Err("--seconds and --clients must be at least 1".into());
        }
        Ok(options)
    }
}

/// Where the `.hgrm` table of the corrected latencies goes, beside `hgrm`:
/// `bench_harness.hgrm` → `bench_harness.corrected.hgrm`.
pub fn corrected_path(hgrm: &std::path::Path) -> PathBuf {
    hgrm.with_extension("corrected.hgrm")
}

/// A request to the service, with where its answer goes.
struct Request {
    id: u64,
    reply: Sender<u64>,
}

/// A 64-bit mix (SplitMix64's finaliser): the service's work, and its choice of slow
/// requests.
fn mix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

/// The service's answer to request `id`: a slow dependency now and then, then a few
/// microseconds of work.
fn serve(id: u64) -> u64 {
    let hash = mix(id);
    match hash % 1000 {
        0 => thread::sleep(Duration::from_millis(5)),
        1..=9 => thread::sleep(Duration::from_micros(800)),
        _ => {}
    }
    (0..200 + hash % 800).fold(hash, |x, _| mix(x))
}

/// A running harness: the service, the load and the metrics server, started by
/// [`start`](Self::start); [`run`](Self::run) reports and ends it.
pub struct Harness {
    options: Options,
    started: Instant,
    latency: LatencyHistogram,
    corrected: LatencyHistogram,
    server: ThreadedMetricsServer,
    stop: Arc<AtomicBool>,
    clients: Vec<JoinHandle<()>>,
    workers: Vec<JoinHandle<()>>,
}

/// What a run measured.
#[derive(Debug)]
pub struct Summary {
    /// Every latency as measured.
    pub latency: LatencyDistribution,
    /// The same, corrected for coordinated omission.
    pub corrected: LatencyDistribution,
    /// How long the load ran.
    pub elapsed: Duration,
    /// The `.hgrm` files written: as measured, corrected.
    pub hgrm: [PathBuf; 2],
}

impl Harness {
    /// Starts the service, the metrics server and the load generator.
    ///
    /// # Errors
    ///
    /// A histogram that cannot be registered, or a server that cannot listen.
    pub fn start(options: Options) -> Result<Self, Box<dyn std::error::Error>> {
        let registry = Registry::new();
        let latency =
            registry.latency_histogram("harness.request.seconds", LatencyConfig::new())?;
        let corrected = registry
            .latency_histogram("harness.request.corrected.seconds", LatencyConfig::new())?;
        let server = ThreadedMetricsServer::start(registry, ServerConfig::new(options.listen))?;

        let (requests, queue) = crossbeam_channel::unbounded::<Request>();
        let workers = (0..WORKERS)
            .map(|worker| spawn_worker(worker, queue.clone()))
            .collect::<io::Result<Vec<_>>>()?;
        let stop = Arc::new(AtomicBool::new(false));
        let started = Instant::now();
        let clients = (0..options.clients)
            .map(|client| {
                let (latency, corrected) = (latency.clone(), corrected.clone());
                let (requests, stop) = (requests.clone(), stop.clone());
                let interval = options.interval;
                thread::Builder::new()
                    .name(format!("client-{client}"))
                    .spawn(move || {
                        load(client, interval, &requests, &stop, &latency, &corrected);
                    })
            })
            .collect::<io::Result<Vec<_>>>()?;
        Ok(Self {
            options,
            started,
            latency,
            corrected,
            server,
            stop,
            clients,
            workers,
        })
    }

    /// The URL of the live figures.
    pub fn metrics_url(&self) -> &str {
        self.server.metrics_url()
    }

    /// The address the metrics server listens on.
    pub fn local_addr(&self) -> SocketAddr {
        self.server.local_addr()
    }

    /// Prints a line every second until the load has run for the asked seconds, stops it,
    /// prints the report and writes the `.hgrm` tables; then closes the server.
    ///
    /// # Errors
    ///
    /// An error writing to `out` or to the `.hgrm` files, or closing the server.
    pub fn run(self, out: &mut dyn Write) -> Result<Summary, Box<dyn std::error::Error>> {
        let Self {
            options,
            started,
            latency,
            corrected,
            server,
            stop,
            clients,
            workers,
        } = self;
        let pacing = if options.interval.is_zero() {
            "as fast as answers come".to_owned()
        } else {
            format!("one request every {} µs", options.interval.as_micros())
        };
        writeln!(
            out,
            "bench_harness: {} clients, {pacing} each, for {} s; live figures on {}",
            options.clients,
            options.seconds,
            server.metrics_url()
        )?;
        let mut total = 0;
        let mut previous = started;
        for second in 1..=options.seconds {
            let tick = started + Duration::from_secs(second);
            // The harness's clock: a line each second.
            thread::sleep(tick.saturating_duration_since(Instant::now()));
            let interval = latency.take_interval();
            let now = Instant::now();
            let rate = interval.count() as f64 / (now - previous).as_secs_f64();
            previous = now;
            total += interval.count();
            writeln!(
                out,
                "{} {second:>3}/{} s {rate:>8.0} req/s  p50 {}  p99 {}  p99.9 {}  max {}  total {total}",
                progress(second, options.seconds),
                options.seconds,
                millis(interval.quantile(0.5)),
                millis(interval.quantile(0.99)),
                millis(interval.quantile(0.999)),
                millis(interval.max()),
            )?;
        }
        stop.store(true, Ordering::Relaxed);
        for client in clients {
            client.join().map_err(|_| "a client panicked")?;
        }
        let elapsed = started.elapsed();
        // The clients held the last senders of the queue: the workers see it closed.
        for worker in workers {
            worker.join().map_err(|_| "a worker panicked")?;
        }

        let summary = Summary {
            latency: latency.distribution(),
            corrected: corrected.distribution(),
            elapsed,
            hgrm: [options.hgrm.clone(), corrected_path(&options.hgrm)],
        };
        report(out, &summary)?;
        for (distribution, path) in [&summary.latency, &summary.corrected]
            .into_iter()
            .zip(&summary.hgrm)
        {
            let file =
                File::create(path).map_err(|error| format!("{}: {error}", path.display()))?;
            let mut file = BufWriter::new(file);
            distribution.write_percentile_distribution(
                &mut file,
                TICKS_PER_HALF_DISTANCE,
                Duration::from_micros(1),
            )?;
            file.flush()?;
        }
        writeln!(
            out,
            "percentile tables (µs): {} and {}; plot them with HdrHistogram's plotter, \
             https://hdrhistogram.github.io/HdrHistogram/plotFiles.html",
            summary.hgrm[0].display(),
            summary.hgrm[1].display()
        )?;
        server.close()?;
        Ok(summary)
    }
}

/// A worker of the service: answers requests until the queue closes.
fn spawn_worker(worker: usize, queue: Receiver<Request>) -> io::Result<JoinHandle<()>> {
    thread::Builder::new()
        .name(format!("service-{worker}"))
        .spawn(move || {
            for request in queue {
                // A client that has gone away no longer waits for its answer.
                let _ = request.reply.send(serve(request.id));
            }
        })
}

/// One client of the load generator: a request, its answer, its latency recorded, the next
/// request when it is due; until `stop`.
fn load(
    client: usize,
    interval: Duration,
    requests: &Sender<Request>,
    stop: &AtomicBool,
    latency: &LatencyHistogram,
    corrected: &LatencyHistogram,
) {
    let (reply, answers) = crossbeam_channel::bounded(1);
    let mut due = Instant::now();
    let mut sequence = 0_u64;
    while !stop.load(Ordering::Relaxed) {
        // The schedule: pacing is the load generator's job, not a wait for a condition.
        thread::sleep(due.saturating_duration_since(Instant::now()));
        let id = (client as u64) << 40 | sequence;
        sequence += 1;
        let sent = Instant::now();
        let request = Request {
            id,
            reply: reply.clone(),
        };
        if requests.send(request).is_err() {
            return;
        }
        let Ok(answer) = answers.recv() else {
            return;
        };
        let elapsed = sent.elapsed();
        std::hint::black_box(answer);
        latency.record(elapsed);
        corrected.record_corrected(elapsed, interval);
        // Late: the next request goes as soon as the answer is in.
        due = (due + interval).max(Instant::now());
    }
}

/// `[#####.....]` for `done` of `total`.
fn progress(done: u64, total: u64) -> String {
    let filled = (done * BAR as u64 / total.max(1)) as usize;
    format!(
        "[{}{}]",
        "#".repeat(filled),
        ".".repeat(BAR - filled.min(BAR))
    )
}

/// A latency in milliseconds with three decimals; `-` for none.
fn millis(latency: Option<Duration>) -> String {
    latency.map_or_else(
        || "-".to_owned(),
        |latency| format!("{:.3} ms", latency.as_secs_f64() * 1e3),
    )
}

/// The report at the end: both histograms side by side.
fn report(out: &mut dyn Write, summary: &Summary) -> io::Result<()> {
    let (latency, corrected) = (&summary.latency, &summary.corrected);
    writeln!(
        out,
        "{} requests in {:.3} s ({:.0} req/s); latency within {:.2} %",
        latency.count(),
        summary.elapsed.as_secs_f64(),
        latency.count() as f64 / summary.elapsed.as_secs_f64(),
        latency.relative_error_bound() * 100.0
    )?;
    writeln!(out, "{:>8} {:>14} {:>14}", "", "as measured", "corrected")?;
    let mut row = |name: &str, measured: Option<Duration>, corrected: Option<Duration>| {
        writeln!(
            out,
            "{name:>8} {:>14} {:>14}",
            millis(measured),
            millis(corrected)
        )
    };
    row("min", latency.min(), corrected.min())?;
    for (name, q) in REPORTED {
        row(name, latency.quantile(q), corrected.quantile(q))?;
    }
    row("mean", latency.mean(), corrected.mean())?;
    writeln!(
        out,
        "{:>8} {:>14} {:>14}",
        "count",
        latency.count(),
        corrected.count()
    )
}

pub fn main() -> Result<(), Box<dyn std::error::Error>> {
    let arguments: Vec<String> = std::env::args().skip(1).collect();
    let options = Options::parse(&arguments)?;
    let harness = Harness::start(options)?;
    harness.run(&mut io::stdout().lock())?;
    Ok(())
}
