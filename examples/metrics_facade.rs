//! The `metrics` facade behind mvx: application code that knows only `metrics::counter!`,
//! `gauge!` and `histogram!` records into an mvx `Registry`, which the mvx exposition
//! server serves to Prometheus; this example scrapes it once and prints the text.
//!
//! - `mvx::facade::metrics::install` makes a `RegistryRecorder` the process's `metrics`
//!   recorder, once.
//! - Worker threads run the "application": labeled request counters, a latency histogram
//!   (buckets chosen for it on the recorder), an in-flight gauge.
//! - A `ThreadedMetricsServer` serves the registry on a free port; hyper's client fetches
//!   the page as Prometheus would, and the answer is printed.
//!
//! Run with `cargo run --example metrics_facade --features metrics,http`.

use std::net::TcpStream;
use std::sync::OnceLock;

use async_io::Async;
use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use mvx::expose::http::{ServerConfig, ThreadedMetricsServer};
use mvx::facade::metrics::RegistryRecorder;
use mvx::metrics::Registry;

/// One scrape of the server.
#[derive(Debug)]
pub struct Scrape {
    /// The status code.
    pub status: u16,
    /// The exposition text.
    pub body: String,
}

/// The application's code: it knows the `metrics` macros and nothing of mvx.
fn handle_request(worker: usize, request: u64) {
    metrics::gauge!("http.requests.in_flight").increment(1.0);
    let method = if request % 4 == 0 { "POST" } else { "GET" };
    let code = if request % 10 == 9 { "500" } else { "200" };
    metrics::counter!("http.requests", "method" => method, "code" => code).increment(1);
    let seconds = 0.001 * (1 + (request + worker as u64) % 300) as f64;
    metrics::histogram!("http.request.seconds", "method" => method).record(seconds);
    metrics::gauge!("http.requests.in_flight").decrement(1.0);
}

/// The process's recorder, installed on first use.
///
/// # Errors
///
/// When another `metrics` recorder is already installed.
pub fn recorder() -> Result<&'static RegistryRecorder, Box<dyn std::error::Error>> {
    static RECORDER: OnceLock<RegistryRecorder> = OnceLock::new();
    if let Some(recorder) = RECORDER.get() {
        return Ok(recorder);
    }
    let recorder = RegistryRecorder::new(Registry::new())
        .buckets_for("http.request.seconds", [0.01, 0.1, 0.25])?
        .install()
        .map_err(|_| "another metrics recorder is installed")?;
    metrics::describe_counter!("http.requests", "requests handled");
    Ok(RECORDER.get_or_init(|| recorder))
}

/// Runs `workers` threads of `requests` requests each, serves the registry and scrapes it.
///
/// # Errors
///
/// When the recorder cannot be installed, or the server cannot start or be scraped.
pub fn run(workers: usize, requests: u64) -> Result<Scrape, Box<dyn std::error::Error>> {
    let recorder = recorder()?;
    let threads: Vec<_> = (0..workers)
        .map(|worker| {
            std::thread::spawn(move || {
                for request in 0..requests {
                    handle_request(worker, request);
                }
            })
        })
        .collect();
    for thread in threads {
        thread.join().map_err(|_| "a worker panicked")?;
    }
    let server = ThreadedMetricsServer::start(
        recorder.registry().clone(),
        ServerConfig::new("127.0.0.1:0".parse()?),
    )?;
    let scrape = futures::executor::block_on(scrape(server.local_addr(), server.metrics_url()));
    server.close()?;
    if recorder.rejected() > 0 {
        return Err(format!("the registry refused a series: {:?}", recorder.last_error()).into());
    }
    scrape
}

/// `GET url` with hyper's HTTP/1.1 client over async-io, as a scraper would.
async fn scrape(
    addr: std::net::SocketAddr,
    url: &str,
) -> Result<Scrape, Box<dyn std::error::Error>> {
    let stream = Async::<TcpStream>::connect(addr).await?;
    let (mut sender, connection) =
        hyper::client::conn::http1::handshake(smol_hyper::rt::FuturesIo::new(stream)).await?;
    let request = hyper::Request::get(url)
        .header("host", addr.to_string())
        .body(Empty::<Bytes>::new())?;
    let exchange = async {
        let response = sender.send_request(request).await?;
        let status = response.status().as_u16();
        let body = response.into_body().collect().await?.to_bytes();
        Ok::<_, Box<dyn std::error::Error>>(Scrape {
            status,
            body: String::from_utf8(body.to_vec())?,
        })
    };
    // The connection future does the I/O; the exchange finishes first.
    match futures::future::select(std::pin::pin!(exchange), connection).await {
        futures::future::Either::Left((scrape, _)) => scrape,
        futures::future::Either::Right((closed, _)) => {
            closed?;
            Err("the server closed the connection before answering".into())
        }
    }
}

pub fn main() -> Result<(), Box<dyn std::error::Error>> {
    let scrape = run(4, 1_000)?;
    println!("GET /metrics -> {}", scrape.status);
    print!("{}", scrape.body);
    Ok(())
}
