//! A metrics runtime with two recorders fed from several threads.
//!
//! The runtime owns one thread; each recorder aggregates its own kind of event there. Four
//! worker threads record requests and cache lookups; the snapshots are printed, then the
//! runtime shuts down (every recorder applies what it accepted first).
//!
//! Run with `cargo run --example metrics_runtime`.

use std::time::Duration;

use mvx::metrics::{Metric, MetricEvent, MetricKind, MetricsRuntime, Snapshot, Snapshots};
use mvx::queue::LogOutcome;

/// A served HTTP request.
pub struct Request {
    /// The response status.
    pub status: u16,
    /// How long it took.
    pub latency: Duration,
}

impl MetricEvent for Request {
    fn event_type(&self) -> &str {
        "http.request"
    }
}

/// Requests by status class, and their latency.
#[derive(Default)]
pub struct RequestStats {
    total: u64,
    errors: u64,
    latency_sum: Duration,
    latency_max: Duration,
}

impl Metric<Request> for RequestStats {
    fn name(&self) -> &str {
        "http.requests"
    }

    fn handle_event(&mut self, request: &Request) -> bool {
        self.total += 1;
        if request.status >= 500 {
            self.errors += 1;
        }
        self.latency_sum += request.latency;
        self.latency_max = self.latency_max.max(request.latency);
        true
    }

    fn snapshot(&self) -> Snapshot {
        Snapshot::new(self.name(), MetricKind::Counter)
            .with("total", self.total)
            .with("errors_total", self.errors)
            .with("latency_seconds_sum", self.latency_sum.as_secs_f64())
            .with("latency_seconds_max", self.latency_max.as_secs_f64())
    }
}

/// A cache lookup.
pub enum Lookup {
    /// Found.
    Hit,
    /// Not found.
    Miss,
}

impl MetricEvent for Lookup {
    fn event_type(&self) -> &str {
        match self {
            Lookup::Hit => "cache.hit",
            Lookup::Miss => "cache.miss",
        }
    }
}

/// Hits and misses.
#[derive(Default)]
pub struct HitRatio {
    hits: u64,
    misses: u64,
}

impl Metric<Lookup> for HitRatio {
    fn name(&self) -> &str {
        "cache.lookups"
    }

    fn handle_event(&mut self, lookup: &Lookup) -> bool {
        match lookup {
            Lookup::Hit => self.hits += 1,
            Lookup::Miss => self.misses += 1,
        }
        true
    }

    fn snapshot(&self) -> Snapshot {
        Snapshot::new(self.name(), MetricKind::Counter)
            .with("hits_total", self.hits)
            .with("misses_total", self.misses)
    }
}

/// Feeds both recorders from `threads` threads, `per_thread` events each; returns the
/// snapshots of both recorders, taken after every event was applied.
pub fn run(
    threads: u64,
    per_thread: u64,
) -> Result<(Snapshots, Snapshots), Box<dyn std::error::Error>> {
    let runtime = MetricsRuntime::new()?;
    let http = runtime.create_recorder::<Request>("http")?;
    let cache = runtime.create_recorder::<Lookup>("cache")?;
    http.register_metric(RequestStats::default())?;
    cache.register_metric(HitRatio::default())?;

    std::thread::scope(|scope| {
        for thread in 0..threads {
            let (http, cache) = (http.clone(), cache.clone());
            scope.spawn(move || {
                for i in 0..per_thread {
                    let status = if i % 10 == 9 { 503 } else { 200 };
                    let latency = Duration::from_micros(100 + (thread * 7 + i) % 900);
                    // The default overflow policy hands an event back when the queue is
                    // full; a worker that must not lose one waits with `send` or
                    // `log_blocking` on the recorder's sink instead.
                    let accepted = http.sink().log_blocking(Request { status, latency });
                    assert_eq!(accepted.ok(), Some(LogOutcome::Accepted));
                    let lookup = if i % 4 == 0 {
                        Lookup::Miss
                    } else {
                        Lookup::Hit
                    };
                    let accepted = cache.sink().log_blocking(lookup);
                    assert_eq!(accepted.ok(), Some(LogOutcome::Accepted));
                }
            });
        }
    });

    let snapshots = futures::executor::block_on(async {
        Ok::<_, mvx::metrics::RecorderError>((
            http.snapshot_now().await?,
            cache.snapshot_now().await?,
        ))
    })?;
    runtime.shutdown()?;
    Ok(snapshots)
}

pub fn main() -> Result<(), Box<dyn std::error::Error>> {
    let (http, cache) = run(4, 10_000)?;
    println!("{}", serde_json::to_string_pretty(&http)?);
    println!("{}", serde_json::to_string_pretty(&cache)?);
    Ok(())
}
