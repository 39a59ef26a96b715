//! An agent that records metrics and serves them until SIGINT or SIGTERM, then flushes
//! everything and exits.
//!
//! `connect` starts a metrics runtime with a recorder, a log sink on its own thread, and a
//! metrics server on 127.0.0.1 (a free port) over a registry that holds the recorder and
//! two direct counters, each metric with its metadata (unit, description, flags). It prints
//! the server's URLs — `/metrics` for Prometheus, `/api/metrics` for the list of metrics as
//! JSON (try `/api/metrics?selector=jobs&metadata=false` or `?hidden=true`) — and spawns the
//! agent's one task: a simulated workload that records a job every millisecond. A caught
//! signal stops the agent (the default `on_signal`); `teardown` closes the server, shuts
//! the runtime down and terminates the sink — every accepted event is applied or written
//! before the process exits — and prints the final figures. A second signal during teardown
//! is harmless: the first stop won.
//!
//! Run with `cargo run --features signals,http --example agent`, then press Ctrl-C (or send
//! SIGTERM). `tests/agent_process.rs` runs it as a child process, scrapes it and signals it.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use mvx::BoxError;
use mvx::agent::{Agent, AgentConfig, AgentError, AgentHandle, Runner};
use mvx::expose::http::{ServerConfig, ThreadedMetricsServer};
use mvx::metrics::{
    Counter, Metadata, Metric, MetricEvent, MetricKind, MetricsRuntime, Registry, Snapshot,
};
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

    fn metadata(&self) -> Metadata {
        Metadata::new()
            .unit("jobs")
            .description("jobs the workload finished, by outcome")
            .historic(true)
    }
}

/// The log sink's backend: counts the lines it was given (a real agent would write them to
/// a file or a collector).
struct Lines(Counter);

impl Dispatch<String> for Lines {
    async fn dispatch(&mut self, _line: String) -> Result<(), BoxError> {
        self.0.inc();
        Ok(())
    }
}

/// What `connect` started and `teardown` stops.
struct Parts {
    runtime: MetricsRuntime,
    server: ThreadedMetricsServer,
    log: AsyncSink<String>,
    log_terminator: Terminator,
}

/// The agent: its parts, and the registry its server exposes.
pub struct Recording {
    parts: Mutex<Option<Parts>>,
    registry: Registry,
    /// The jobs the task ran.
    jobs_run: Counter,
    /// The lines the log sink wrote; hidden from listings that ask for visible metrics.
    lines_written: Counter,
}

impl Recording {
    /// An agent not yet connected, with its counters registered.
    ///
    /// # Errors
    ///
    /// Metadata or a counter name that the registry refuses.
    pub fn new() -> Result<Self, BoxError> {
        let registry = Registry::new();
        let jobs_run = registry.counter_with(
            "jobs_run",
            Metadata::new()
                .unit("jobs")
                .description("jobs the workload ran"),
        )?;
        let lines_written = registry.counter_with(
            "log.lines_written",
            Metadata::new()
                .unit("lines")
                .description("lines the log sink wrote")
                .hidden(true)
                .field("sink", "agent-log")?,
        )?;
        Ok(Self {
            parts: Mutex::new(None),
            registry,
            jobs_run,
            lines_written,
        })
    }
}

impl Agent for Recording {
    async fn connect(&self, agent: &AgentHandle) -> Result<(), BoxError> {
        let runtime = MetricsRuntime::new()?;
        let recorder = runtime.create_recorder::<Job>("workload")?;
        recorder.register_metric(Jobs::default())?;
        self.registry
            .register_source("workload", Arc::new(recorder.clone()))?;
        let (log, log_terminator) = mvx::rt::thread::create(
            Lines(self.lines_written.clone()),
            SinkConfig::default().namespace("agent-log"),
        )?;
        let server = ThreadedMetricsServer::start(
            self.registry.clone(),
            ServerConfig::new("127.0.0.1:0".parse()?),
        )?;
        println!(
            "agent: metrics at {}, list at {}",
            server.metrics_url(),
            server.api_url().ok_or("the server lists its metrics")?
        );

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
            server,
            log,
            log_terminator,
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
        // No more scrapes; then shutting down stops the recorder: every job accepted before
        // is applied.
        parts.server.close()?;
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
            self.lines_written.get(),
            log.pending,
        );
        Ok(())
    }
}

/// Runs the agent until SIGINT or SIGTERM. As in metricq, `run()` returns
/// `ReceivedSignal` after a SIGTERM (SIGINT is a clean stop); this service takes SIGTERM as
/// its normal end, once teardown has flushed everything.
pub fn main() -> Result<(), BoxError> {
    match Runner::new(Recording::new()?, AgentConfig::default()).run() {
        Ok(()) => println!("agent: stopped cleanly"),
        Err(AgentError::ReceivedSignal { signal }) => {
            println!("agent: stopped cleanly on signal {signal}");
        }
        Err(error) => return Err(error.into()),
    }
    Ok(())
}
