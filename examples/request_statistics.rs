//! Request statistics of a simulated crawler, persisted to a file store.
//!
//! Four workers fetch requests concurrently; some attempts fail and are retried, up to
//! three times, after which the request fails for good. `Statistics` counts every start,
//! retry, finish, failure, status code and error kind; it reports its figures at the start
//! and every 20 ms through a log sink (printed to stdout), saves its state to a `FileStore`
//! every 100 ms and on stop, and prints the final statistics. Run it twice: the second run
//! resumes the counts of the first from the store.
//!
//! The store is laid out as Crawlee for Python lays out its storage directory, and the
//! state is under the key of a Python crawler's first statistics: a crawler run with
//! `CRAWLEE_STORAGE_DIR` set to the same directory (and `CRAWLEE_PURGE_ON_START=false`)
//! continues these counts, and this example continues the crawler's.
//!
//! Run with `cargo run --example request_statistics --features persist`.

use std::error::Error;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, mpsc};
use std::time::Duration;

use mvx::BoxError;
use mvx::sink::{Dispatch, LogEvent, SinkConfig};
use mvx::stats::{FileStore, FinalStatistics, Statistics, StatsConfig};

/// The key of the state: that of a Python crawler's first statistics (set explicitly, so
/// that every run — also two in one process — continues the same state).
pub const KEY: &str = "__CRAWLER_STATISTICS_0";

/// Retries before a request fails for good.
pub const MAX_RETRIES: u32 = 3;

/// Whether attempt `attempt` of request `request` fails: about one attempt in three,
/// decided by a hash so that every run has the same outcomes.
pub fn attempt_fails(request: u64, attempt: u32) -> bool {
    let mut x = request
        .wrapping_mul(0x9E37_79B9_7F4A_7C15)
        .wrapping_add(u64::from(attempt).wrapping_mul(0xBF58_476D_1CE4_E5B9));
    x ^= x >> 31;
    x = x.wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^= x >> 29;
    x % 3 == 0
}

/// What `requests` requests must add up to.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Expected {
    /// Requests that finished.
    pub finished: u64,
    /// Requests that failed after their last retry.
    pub failed: u64,
    /// Requests retried at least once (Crawlee's `requests_retries`).
    pub requests_retries: u64,
    /// Every retry (mvx's `retry_attempts`).
    pub retry_attempts: u64,
}

/// What `requests` requests must add up to.
pub fn expected(requests: u64) -> Expected {
    let mut expected = Expected::default();
    for request in 0..requests {
        let retries = match (0..=MAX_RETRIES).find(|&attempt| !attempt_fails(request, attempt)) {
            Some(attempt) => {
                expected.finished += 1;
                attempt
            }
            None => {
                expected.failed += 1;
                MAX_RETRIES
            }
        };
        expected.requests_retries += u64::from(retries > 0);
        expected.retry_attempts += u64::from(retries);
    }
    expected
}

/// The log backend: prints each report line and tells the example it did.
struct Printer {
    printed: Mutex<mpsc::Sender<()>>,
}

impl Dispatch<LogEvent> for Printer {
    async fn dispatch(&mut self, event: LogEvent) -> Result<(), BoxError> {
        println!("{event}");
        let _ = self.printed.lock().unwrap().send(());
        Ok(())
    }
}

/// What one run produced.
#[derive(Debug)]
pub struct Summary {
    /// The requests ended (finished or failed) found in the store at the start.
    pub resumed_from: u64,
    /// The final statistics, over this run and every run before it on the store.
    pub figures: FinalStatistics,
    /// How many periodic reports were printed.
    pub reports: u64,
}

/// Crawls `requests` simulated requests with `workers` workers, with the statistics
/// persisted under `storage`.
pub fn run(storage: &Path, requests: u64, workers: u64) -> Result<Summary, Box<dyn Error>> {
    let (printed_tx, printed) = mpsc::channel();
    let printer = Printer {
        printed: Mutex::new(printed_tx),
    };
    let (log, log_terminator) =
        mvx::rt::thread::create(printer, SinkConfig::default().namespace("report"))?;

    let config = StatsConfig::default()
        .persist_to(FileStore::crawlee(storage))
        .persist_state_key(KEY)
        .persist_interval(Duration::from_millis(100))
        .log_to(log.clone())
        .log_interval(Duration::from_millis(20))
        .log_message("Crawler request statistics");
    // The driver runs on a smol executor on a thread of its own; any executor would do.
    let (stats, driver) = Statistics::new(config)?;
    let driver = std::thread::spawn(move || smol::block_on(driver));
    stats.start().wait()?;
    let resumed_from = stats.calculate_blocking()?.requests_total;

    let next = AtomicU64::new(0);
    std::thread::scope(|scope| {
        let mut crawlers = Vec::new();
        for _ in 0..workers {
            crawlers.push(scope.spawn(|| crawl(&stats, &next, requests)));
        }
        crawlers
            .into_iter()
            .try_for_each(|crawler| crawler.join().expect("a worker panicked"))
    })?;

    // Let at least one periodic report through, even when the crawl was quick.
    printed.recv()?;
    stats.stop().wait()?; // applies every call, saves the final state
    driver.join().expect("the statistics driver panicked");
    let figures = stats.calculate_blocking()?;
    log_terminator.terminate()?;
    Ok(Summary {
        resumed_from,
        figures,
        reports: log.stats().delivered,
    })
}

/// One worker: takes request numbers until there are none left.
fn crawl(
    stats: &Statistics,
    next: &AtomicU64,
    requests: u64,
) -> Result<(), mvx::stats::StatsError> {
    loop {
        let request = next.fetch_add(1, Ordering::Relaxed);
        if request >= requests {
            return Ok(());
        }
        stats.record_request_processing_start(request)?;
        let mut attempt = 0;
        loop {
            // The "fetch".
            std::thread::sleep(Duration::from_micros(300 + request % 7 * 100));
            if !attempt_fails(request, attempt) {
                stats.register_status_code(200)?;
                stats.record_request_processing_finish(request)?;
                break;
            }
            if attempt == MAX_RETRIES {
                stats.register_status_code(503)?;
                stats.register_error("service unavailable")?;
                stats.record_request_processing_failure(request)?;
                break;
            }
            stats.register_retry_error("timeout")?;
            stats.record_request_retry(request)?;
            attempt += 1;
        }
    }
}

pub fn main() -> Result<(), Box<dyn Error>> {
    let storage = std::env::temp_dir().join("mvx-request-statistics");
    let summary = run(&storage, 400, 4)?;
    println!(
        "resumed from {} requests in {}",
        summary.resumed_from,
        storage.display()
    );
    println!("final statistics: {}", summary.figures);
    Ok(())
}
