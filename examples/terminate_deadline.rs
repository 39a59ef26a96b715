//! A program whose standard output nobody reads still ends on time: it logs through a
//! `WriterSink::stdout()`, then terminates its sink with a deadline. Once the pipe is full
//! the writes block (on the blocking pool, not on the sink's thread); at the deadline the
//! terminator gives up on them, counts every event not written as failed, and returns.
//!
//! Run it into a pipe that is never read — `sleep` does not read its input:
//!
//! ```text
//! cargo run --example terminate_deadline | sleep 3
//! ```
//!
//! It reports on standard error (standard output is the stuck pipe), for example
//! `terminate_deadline: TERMINATE_TIMED_OUT after 201 ms (dispatching, 18327 abandoned);
//! accepted=20000 delivered=1673 failed=18327 dropped=0 refused=0 pending=0
//! capacity=20000 high_watermark=20000 restarts=0`. Into a terminal or a file, every line is written and the report
//! says `stopped`.

use std::error::Error;
use std::time::{Duration, Instant};

use mvx::error::{Report, TerminateError};
use mvx::queue::QueueStats;
use mvx::sink::SinkConfig;
use mvx::sink::sinks::WriterSink;

/// How many lines the example logs: far more than a pipe holds (64 KiB on Linux).
pub const EVENTS: u32 = 20_000;

/// How long the example lets `terminate_within` take.
pub const DEADLINE: Duration = Duration::from_millis(200);

/// What a run ended with.
#[derive(Debug)]
pub struct Summary {
    /// What `terminate_within` returned.
    pub outcome: Result<QueueStats, TerminateError>,
    /// How long `terminate_within` took.
    pub took: Duration,
}

impl Summary {
    /// The one-line report the example prints.
    pub fn report(&self) -> String {
        let millis = self.took.as_millis();
        match &self.outcome {
            Ok(stats) => format!("terminate_deadline: stopped after {millis} ms; {stats}"),
            Err(error) => {
                let detail = match error {
                    TerminateError::TimedOut {
                        stage, abandoned, ..
                    } => format!(" ({stage}, {abandoned} abandoned)"),
                    other => format!(" ({})", Report(other)),
                };
                let stats = error.stats().map_or(String::new(), |s| s.to_string());
                format!(
                    "terminate_deadline: {} after {millis} ms{detail}; {stats}",
                    error.reason()
                )
            }
        }
    }
}

/// Logs `events` lines through `writer`, then terminates within `deadline`.
pub fn run(writer: WriterSink, events: u32, deadline: Duration) -> Result<Summary, Box<dyn Error>> {
    let config = SinkConfig::default()
        .namespace("deadline")
        .queue_capacity(events as usize);
    let (sink, terminator) = mvx::rt::thread::create::<String, _>(writer, config)?;
    for n in 0..events {
        // Accepted (the queue has room for all of them), or the error says why not.
        let _accepted = sink.log(format!("line {n} of the terminate_deadline example"))?;
    }
    let started = Instant::now();
    let outcome = terminator.terminate_within(deadline);
    Ok(Summary {
        outcome,
        took: started.elapsed(),
    })
}

fn main() -> Result<(), Box<dyn Error>> {
    let summary = run(WriterSink::stdout(), EVENTS, DEADLINE)?;
    eprintln!("{}", summary.report());
    Ok(())
}
