//! Instruments and a recorder, exposed over HTTP by a server on its own thread, scraped
//! once by this example with an HTTP client, and the scrape printed.
//!
//! - Three instruments measure simulated requests through `InstrumentExt`: a latency
//!   histogram (`timed`), an error counter (`count_errors`), an in-progress gauge
//!   (`track_in_progress`).
//! - A recorder on a `MetricsRuntime` aggregates cache lookups; the registry reads it as a
//!   snapshot source.
//! - A `ThreadedMetricsServer` serves the registry on a free port; hyper's client fetches
//!   the page as Prometheus would, and the answer is printed.
//!
//! Run with `cargo run --example expose_http --features http`.

use std::net::TcpStream;
use std::sync::Arc;
use std::time::Duration;

use async_io::Async;
use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use mvx::expose::http::{ServerConfig, ThreadedMetricsServer};
use mvx::instrument::InstrumentExt;
use mvx::metrics::{Metric, MetricEvent, MetricKind, MetricsRuntime, Registry, Snapshot};

/// A cache lookup.
pub enum Lookup {
    /// Found.
    Hit,
    /// Not found.
    Miss,
}

impl MetricEvent for Lookup {
    fn event_type(&self) -> &str {
        "cache.lookup"
    }
}

/// Hits and misses.
#[derive(Default)]
pub struct Lookups {
    hits: u64,
    misses: u64,
}

impl Metric<Lookup> for Lookups {
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

/// A simulated request handler: fails one request in four.
async fn handle(request: u32) -> Result<u32, String> {
    async_io::Timer::after(Duration::from_millis(u64::from(request % 3))).await;
    if request % 4 == 3 {
        Err(format!("request {request} failed"))
    } else {
        Ok(request)
    }
}

/// What the example's scrape got.
#[derive(Debug)]
pub struct Scrape {
    /// The URL scraped.
    pub url: String,
    /// The HTTP status.
    pub status: u16,
    /// The `Content-Type` of the answer.
    pub content_type: String,
    /// The exposition text.
    pub body: String,
}

/// Records `requests` simulated requests and `lookups` cache lookups, serves them, and
/// scrapes the server once.
pub fn run(requests: u32, lookups: u32) -> Result<Scrape, Box<dyn std::error::Error>> {
    let registry = Registry::new();
    let latency = registry.histogram("http.request.seconds", [0.001, 0.01, 0.1, 1.0])?;
    let errors = registry.counter("http.request.errors")?;
    let in_progress = registry.gauge("http.requests.in_progress")?;

    futures::executor::block_on(async {
        for request in 0..requests {
            let _ = handle(request)
                .track_in_progress(&in_progress)
                .count_errors(&errors)
                .timed(&latency)
                .await;
        }
    });

    let runtime = MetricsRuntime::new()?;
    let cache = runtime.create_recorder::<Lookup>("cache")?;
    cache.register_metric(Lookups::default())?;
    for lookup in 0..lookups {
        let event = if lookup % 3 == 0 {
            Lookup::Miss
        } else {
            Lookup::Hit
        };
        // The default overflow policy hands the event back when the queue is full.
        if cache.register_event(event).is_err() {
            eprintln!("cache lookup {lookup} not recorded: the queue is full");
        }
    }
    futures::executor::block_on(cache.snapshot_now())?; // every lookup applied
    registry.register_source("cache", Arc::new(cache))?;

    let server = ThreadedMetricsServer::start(registry, ServerConfig::new("127.0.0.1:0".parse()?))?;
    let scrape = futures::executor::block_on(scrape(server.local_addr(), server.metrics_url()));
    server.close()?;
    runtime.shutdown()?;
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
        .header("accept", "text/plain;version=0.0.4")
        .body(Empty::<Bytes>::new())?;
    let exchange = async {
        let response = sender.send_request(request).await?;
        let status = response.status().as_u16();
        let content_type = response
            .headers()
            .get("content-type")
            .and_then(|value| value.to_str().ok())
            .unwrap_or_default()
            .to_owned();
        let body = response.into_body().collect().await?.to_bytes();
        Ok::<_, Box<dyn std::error::Error>>(Scrape {
            url: url.to_owned(),
            status,
            content_type,
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
    let scrape = run(20, 30)?;
    println!(
        "GET {} -> {} ({})",
        scrape.url, scrape.status, scrape.content_type
    );
    print!("{}", scrape.body);
    Ok(())
}
