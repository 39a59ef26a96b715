//! Quick start: a sink on its own thread, events from several threads, a clean stop.
//!
//! The dispatcher below stands in for a slow backend: it formats each event into a line
//! and keeps the lines. mvx owns everything else — the bounded queue, the lifecycle, the
//! thread the dispatcher runs on — and counts every event.
//!
//! Run with `cargo run --example quickstart`.

use std::sync::{Arc, Mutex};

use mvx::BoxError;
use mvx::queue::QueueStats;
use mvx::sink::{Dispatch, Level, LogEvent, SinkConfig};

/// The user's part: deliver one event. Here, to an in-memory "backend".
struct Backend {
    lines: Arc<Mutex<Vec<String>>>,
}

impl Dispatch<LogEvent> for Backend {
    async fn dispatch(&mut self, event: LogEvent) -> Result<(), BoxError> {
        self.lines.lock().unwrap().push(event.to_string());
        Ok(())
    }
}

/// What the example produced.
pub struct Summary {
    /// The sink's counters after the stop.
    pub stats: QueueStats,
    /// How many lines reached the backend.
    pub lines: usize,
}

/// Logs `per_thread` events from each of `threads` threads, terminates, returns the counts.
pub fn run(threads: usize, per_thread: usize) -> Result<Summary, Box<dyn std::error::Error>> {
    let lines = Arc::new(Mutex::new(Vec::new()));
    let backend = Backend {
        lines: lines.clone(),
    };
    // A dedicated thread named `mvx-quickstart` runs the dispatcher; `create` returns once
    // the sink has started.
    let config = SinkConfig::default().namespace("quickstart");
    let (sink, terminator) = mvx::rt::thread::create(backend, config)?;

    std::thread::scope(|scope| {
        for thread in 0..threads {
            let sink = sink.clone();
            scope.spawn(move || {
                for i in 0..per_thread {
                    let event = LogEvent::new(Level::Info, "quickstart", "request served")
                        .with_field("thread", thread as u64)
                        .with_field("request", i as u64);
                    // Never blocks: under the default `RaiseError` policy a full queue hands
                    // the event back instead. Here we wait for room and try again.
                    let mut event = event;
                    loop {
                        match sink.log(event) {
                            Ok(_) => break,
                            Err(refused) if refused.is_overflow() => {
                                event = refused.into_inner();
                                std::thread::yield_now();
                            }
                            Err(refused) => panic!("sink stopped early: {refused}"),
                        }
                    }
                }
            });
        }
    });

    // Stops the sink (every accepted event is dispatched first) and joins its thread.
    terminator.terminate()?;
    let stats = sink.stats();
    let lines = lines.lock().unwrap().len();
    Ok(Summary { stats, lines })
}

pub fn main() -> Result<(), Box<dyn std::error::Error>> {
    let summary = run(4, 25_000)?;
    println!("lines at the backend: {}", summary.lines);
    println!("final stats: {}", summary.stats);
    Ok(())
}
