//! Manual recorder lifecycle: the application owns the executor the recorder runs on.
//!
//! First, a recorder cannot be built on an executor that is gone: construction fails with
//! `EventLoopUnavailable`. Then a recorder runs under a `futures` `LocalPool` the
//! application owns: start, check the result, register a metric, record three save
//! attempts, stop, check the result, print the snapshots as JSON in the document's shape,
//! `{name, dimensions}` (`mvx::metrics::Detailed` would add the kind).
//!
//! Run with `cargo run --example manual_recorder_lifecycle`.

use futures::executor::LocalPool;
use mvx::error::Report;
use mvx::metrics::{Metric, MetricEvent, MetricKind, MetricsRecorder, Snapshot, Snapshots};
use mvx::queue::LogOutcome;
use mvx::sink::SinkConfig;

/// How a document save attempt ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Saved.
    Success,
    /// Not saved.
    Failure,
}

/// One attempt to save a document.
pub struct SaveAttempt {
    /// How it ended.
    pub outcome: Outcome,
}

impl MetricEvent for SaveAttempt {
    fn event_type(&self) -> &str {
        "document_storage.save.attempt"
    }
}

/// Counts save attempts, successful and failed.
#[derive(Default)]
pub struct SaveAttempts {
    total: u64,
    success_total: u64,
    failure_total: u64,
}

impl Metric<SaveAttempt> for SaveAttempts {
    fn name(&self) -> &str {
        "document_storage.save.attempts"
    }

    fn handle_event(&mut self, event: &SaveAttempt) -> bool {
        self.total += 1;
        match event.outcome {
            Outcome::Success => self.success_total += 1,
            Outcome::Failure => self.failure_total += 1,
        }
        true
    }

    fn snapshot(&self) -> Snapshot {
        Snapshot::new(self.name(), MetricKind::Counter)
            .with("total", self.total)
            .with("success_total", self.success_total)
            .with("failure_total", self.failure_total)
    }
}

/// Tries to build a recorder on an executor that has shut down; returns the error line.
pub fn create_recorder_without_executor() -> String {
    let pool = LocalPool::new();
    let spawner = pool.spawner();
    drop(pool);
    match MetricsRecorder::<SaveAttempt>::spawn_on(
        "document_storage",
        SinkConfig::default(),
        &spawner,
    ) {
        Ok(_) => "recorder creation succeeded on a dropped executor".to_owned(),
        Err(error) => format!(
            "recorder creation failed: no running executor ({}: {})",
            error.reason(),
            Report(&error)
        ),
    }
}

/// Runs the recorder under an application-owned `LocalPool`; returns its snapshots.
pub fn run_manual_recorder() -> Result<Snapshots, Box<dyn std::error::Error>> {
    let mut pool = LocalPool::new();
    let recorder = MetricsRecorder::<SaveAttempt>::spawn_on(
        "document_storage",
        SinkConfig::default(),
        &pool.spawner(),
    )?;
    pool.run_until(async {
        recorder.start().await.into_result()?;
        let outcome = async {
            recorder.register_metric(SaveAttempts::default())?;
            for outcome in [Outcome::Success, Outcome::Success, Outcome::Failure] {
                // The default policy never drops: a full queue hands the event back (`?`).
                let accepted = recorder.register_event(SaveAttempt { outcome })?;
                assert_eq!(accepted, LogOutcome::Accepted);
            }
            Ok::<(), Box<dyn std::error::Error>>(())
        }
        .await;
        // Stop in every case, as a `finally` would; report the first error.
        let stopped = recorder.stop().await.into_result();
        outcome?;
        stopped?;
        Ok(recorder.snapshots())
    })
}

/// Everything the example prints: the refused construction, then the snapshots as JSON in
/// the shape of the MVX document's example (`{name, dimensions}` under each metric's name).
pub fn output() -> Result<String, Box<dyn std::error::Error>> {
    let refused = create_recorder_without_executor();
    let snapshots = run_manual_recorder()?;
    Ok(format!(
        "{refused}\n{}\n",
        serde_json::to_string_pretty(&snapshots)?
    ))
}

pub fn main() -> Result<(), Box<dyn std::error::Error>> {
    print!("{}", output()?);
    Ok(())
}
