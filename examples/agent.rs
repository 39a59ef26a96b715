//! An agent that records metrics until SIGINT or SIGTERM, then flushes everything and exits.
//!
//! `connect` starts a metrics runtime with a recorder, a log sink on its own thread and a
//! direct counter, and spawns the agent's one task: a simulated workload that records a job
//! every millisecond. A caught signal stops the agent (the default `on_signal`); `teardown`
//! shuts the runtime down and terminates the sink — every accepted event is applied or
//! written before the process exits — and prints the final figures. A second signal during
//! teardown is harmless: the first stop won.
//!
//! Run with `cargo run --features signals --example agent`, then press Ctrl-C (or send
//! SIGTERM). `tests/agent_process.rs` runs it as a child process and signals it.

use std::sync::Mutex;
use std::time::Duration;

use mvx::BoxError;
use mvx::agent::{Agent, AgentConfig, AgentHandle, Runner};
use mvx::metrics::{Counter, Metric, MetricEvent, MetricKind, MetricsRuntime, Snapshot};
use mvx::queue::LogOutcome;
use mvx::rt::Terminator;
use mvx::sink::{AsyncSink, Dispatch, SinkConfig};

/// One finished job of the simulated workload.
pub struct Job {
    /// Whether it succeeded.
    pub ok: bool,
}

impl MetricEvent for Job {
    fn event_type(&self) -> &str {
        "job"
    }
}

/// Jobs by outcome.
#[derive(Default)]
struct Jobs {
    ok: u64,
    failed: u64,
}

impl Metric<Job> for Jobs {
    fn name(&self) -> &str {
        "jobs"
    }

    fn handle_event(&mut self, job: &Job) -> bool {
        if job.ok {
            self.ok += 1;
        } else {
            self.failed += 1;
        }
        true
    }

    fn snapshot(&self) -> Snapshot {
        Snapshot::new("jobs", MetricKind::Counter)
            .with("ok_total", self.ok)
            .with("failed_total", self.failed)
    }
}

/// The log sink's backend: counts the lines it was given (a real agent would write them to
/// a file or a collector).
struct Lines(std::sync::Arc<std::sync::atomic::AtomicU64>);

impl Dispatch<String> for Lines {
    async fn dispatch(&mut self, _line: String) -> Result<(), BoxError> {
        self.0.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        Ok(())
    }
}

/// What `connect` started and `teardown` stops.
struct Parts {
    runtime: MetricsRuntime,
    log: AsyncSink<String>,
    log_terminator: Terminator,
    written: std::sync::Arc<std::sync::atomic::AtomicU64>,
}

/// The agent: its parts, and a counter of the jobs its task ran.
pub struct Recording {
    parts: Mutex<Option<Parts>>,
    jobs_run: Counter,
}

impl Default for Recording {
    /// An agent not yet connected.
    fn default() -> Self {
        Self {
            parts: Mutex::new(None),
            jobs_run: Counter::new("jobs_run"),
        }
    }
}

impl Agent for Recording {
    async fn connect(&self, agent: &AgentHandle) -> Result<(), BoxError> {
        let runtime = MetricsRuntime::new()?;
        let recorder = runtime.create_recorder::<Job>("workload")?;
        recorder.register_metric(Jobs::default())?;
        let written = std::sync::Arc::default();
        let (log, log_terminator) = mvx::rt::thread::create(
            Lines(std::sync::Arc::clone(&written)),
            SinkConfig::default().namespace("agent-log"),
        )?;

        // The workload: one job a millisecond until the agent is asked to stop.
        let (handle, jobs_run, task_log) = (agent.clone(), self.jobs_run.clone(), log.clone());
        agent.spawn(async move {
            let mut n = 0u64;
            while !handle.stop_requested() {
                n += 1;
                let ok = n % 10 != 0;
                // Under the default overflow policy (`RaiseError`) an event is accepted or
                // handed back in an error: the task's `?` reports the latter.
                let recorded = recorder.register_event(Job { ok })?;
                debug_assert_eq!(recorded, LogOutcome::Accepted);
                if !ok {
                    let logged = task_log.log(format!("job {n} failed"))?;
                    debug_assert_eq!(logged, LogOutcome::Accepted);
                }
                jobs_run.inc();
                async_io::Timer::after(Duration::from_millis(1)).await;
            }
            Ok(())
        });

        *self.parts.lock().unwrap() = Some(Parts {
            runtime,
            log,
            log_terminator,
            written,
        });
        println!("agent: ready");
        Ok(())
    }

    async fn teardown(&self) -> Result<(), BoxError> {
        let Some(parts) = self.parts.lock().unwrap().take() else {
            return Ok(());
        };
        let recorder = parts
            .runtime
            .recorder::<Job>("workload")
            .ok_or("the workload recorder is registered")?;
        // Shutting down stops the recorder: every job accepted before is applied.
        parts.runtime.shutdown()?;
        parts.log_terminator.terminate()?;
        let snapshots = recorder.snapshots();
        let jobs = snapshots
            .get("jobs")
            .ok_or("the jobs metric has a snapshot")?;
        let (recorded, log) = (recorder.stats(), parts.log.stats());
        println!(
            "agent: {} jobs run; recorder: {} accepted, {} applied ({} ok, {} failed), {} pending; \
             log: {} accepted, {} written, {} pending",
            self.jobs_run.get(),
            recorded.accepted,
            recorded.delivered,
            jobs.get("ok_total").ok_or("ok_total")?,
            jobs.get("failed_total").ok_or("failed_total")?,
            recorded.pending,
            log.accepted,
            parts.written.load(std::sync::atomic::Ordering::Relaxed),
            log.pending,
        );
        Ok(())
    }
}

/// Runs the agent until SIGINT or SIGTERM.
pub fn main() -> Result<(), Box<dyn std::error::Error>> {
    Runner::new(Recording::default(), AgentConfig::default()).run()?;
    println!("agent: stopped cleanly");
    Ok(())
}
