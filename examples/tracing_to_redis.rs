//! `tracing` events into a Redis stream: the application logs with `tracing`'s macros
//! inside spans; mvx's `SinkLayer` turns each event into a `LogEvent` on a sink whose
//! dispatcher is a `RedisStreamSink`, on a thread of its own. The stream is read back
//! with `XRANGE` and printed.
//!
//! - The subscriber is `Registry + SinkLayer` (with an `INFO` filter of its own) `+ fmt`
//!   to stderr (`WARN` and above), the layers side by side.
//! - Each entry of the stream holds one event as a JSON object (field `event`): level,
//!   target, message, the span's fields and the event's.
//! - The stream is trimmed to about 10,000 entries (`MAXLEN ~`).
//!
//! Run with a Redis server: `MVX_REDIS_URL=redis://127.0.0.1:6379/ cargo run --example
//! tracing_to_redis --features tracing,redis` (the URL defaults to that one).

use std::collections::BTreeMap;

use mvx::facade::tracing::SinkLayer;
use mvx::queue::QueueStats;
use mvx::sink::SinkConfig;
use mvx::sink::sinks::RedisStreamSink;
use tracing_subscriber::filter::LevelFilter;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::{Layer, Registry};

/// What a run did.
#[derive(Debug)]
pub struct Summary {
    /// The sink's counters once it stopped.
    pub stats: QueueStats,
    /// The events the layer's sink refused (none when the queue is large enough).
    pub refused: u64,
    /// The entries of the stream, in order: ID and fields.
    pub entries: Vec<(String, BTreeMap<String, String>)>,
}

/// The application: requests handled in spans, events logged with `tracing`.
fn serve(requests: u64) {
    for request in 0..requests {
        let span = tracing::info_span!("request", id = request, path = "/orders");
        let _entered = span.enter();
        tracing::debug!("parsing the body"); // below the layer's filter
        if request % 5 == 4 {
            tracing::warn!(attempt = 1, "payment provider slow");
        }
        tracing::info!(items = request % 3 + 1, "order stored");
    }
}

/// Logs `requests` requests' events into `stream` on the server at `url`, stops the sink
/// (every event delivered), and reads the stream back.
///
/// # Errors
///
/// A bad URL, a server that cannot be reached (the sink's start fails), a failed read.
pub fn run(url: &str, stream: &str, requests: u64) -> Result<Summary, Box<dyn std::error::Error>> {
    let redis = RedisStreamSink::open(url, stream)?.max_len(10_000);
    let (sink, terminator) =
        mvx::rt::thread::create(redis, SinkConfig::default().namespace("redis"))?;
    let layer = SinkLayer::new(sink.clone());
    let handle = layer.handle();
    let subscriber = Registry::default()
        .with(layer.with_filter(LevelFilter::INFO))
        .with(
            tracing_subscriber::fmt::layer()
                .with_writer(std::io::stderr)
                .with_filter(LevelFilter::WARN),
        );
    tracing::subscriber::with_default(subscriber, || serve(requests));
    terminator.terminate()?; // flushes: every accepted event is delivered or failed
    let entries: Vec<(String, Vec<String>)> = redis::cmd("XRANGE")
        .arg(stream)
        .arg("-")
        .arg("+")
        .query(&mut redis::Client::open(url)?.get_connection()?)?;
    let entries = entries
        .into_iter()
        .map(|(id, fields)| {
            let fields = fields
                .chunks(2)
                .map(|pair| (pair[0].clone(), pair.get(1).cloned().unwrap_or_default()))
                .collect();
            (id, fields)
        })
        .collect();
    Ok(Summary {
        stats: sink.stats(),
        refused: handle.refused().total(),
        entries,
    })
}

pub fn main() -> Result<(), Box<dyn std::error::Error>> {
    let url = std::env::var("MVX_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379/".into());
    run_and_print(&url)
}

/// What `main` does, on the server at `url`: a run of 20 requests, printed, then the stream
/// removed.
///
/// # Errors
///
/// As [`run`].
pub fn run_and_print(url: &str) -> Result<(), Box<dyn std::error::Error>> {
    let url = url.to_owned();
    let stream = format!("mvx-example:orders:{}", std::process::id());
    let summary = run(&url, &stream, 20)?;
    println!("{}", summary.stats);
    for (id, fields) in summary.entries.iter().take(3) {
        println!("{stream} {id} {}", fields["event"]);
    }
    println!("... {} entries in {stream}", summary.entries.len());
    remove(&url, &stream)?;
    Ok(())
}

/// Removes `stream` and the acknowledgement keys its sinks left beside it.
///
/// # Errors
///
/// When the server cannot be reached.
pub fn remove(url: &str, stream: &str) -> Result<(), Box<dyn std::error::Error>> {
    let mut connection = redis::Client::open(url)?.get_connection()?;
    let mut keys: Vec<String> = redis::cmd("KEYS")
        .arg(format!("{stream}:mvx-ack:*"))
        .query(&mut connection)?;
    keys.push(stream.to_owned());
    let _: u64 = redis::cmd("DEL").arg(&keys).query(&mut connection)?;
    Ok(())
}
