//! One thread, one sink: each step applied to the real sink and to the model, compared.

use std::sync::Arc;
use std::thread::JoinHandle;

use mvx::error::{LogError, SinkError};
use mvx::queue::{LogOutcome, OverflowPolicy, QueueStats};
use mvx::rt::Terminator;
use mvx::sink::{AsyncSink, SinkConfig};
use mvx::{Op, OpResult, State, WaitHandle};

use super::backend::{Backend, Record, Refused, Valve};
use super::model::{Event, Expected, Logged, Model, OpExpect, Setup};

/// Where the sink's driver runs, and what the `Terminate` step does there.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Harness {
    /// `mvx::rt::thread::create`: mvx's own executor thread; the sink starts `Running`;
    /// `Terminate` is `Terminator::terminate()`.
    Thread,
    /// `mvx::rt::smol::spawn` on a smol executor run by a thread of the test; the sink
    /// starts `Virgin`; `Terminate` drops the executor, and the driver with it.
    Smol,
}

/// One operation of a sequence.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Step {
    Start,
    Stop,
    /// `log` an event of this value (the backend fails it when divisible by 7).
    Log(u32),
    /// `flush_blocking()`, or `flush().await` when `blocking` is false.
    Flush {
        blocking: bool,
    },
    /// Hold the backend: its hooks and dispatches wait until `Release`.
    Hold,
    Release,
    Terminate,
}

/// A sink, how it runs, and the steps applied to it.
#[derive(Clone, Debug)]
pub struct SinkCase {
    pub harness: Harness,
    pub capacity: usize,
    pub batch_size: usize,
    pub policy: OverflowPolicy,
    pub lazy_start: bool,
    pub start_fails: bool,
    pub steps: Vec<Step>,
}

enum Runtime {
    Thread(Terminator),
    Smol {
        executor: Option<Arc<smol::Executor<'static>>>,
        stop: async_channel::Sender<()>,
        runner: Option<JoinHandle<()>>,
    },
}

/// The real sink, the model, and the handles of operations the held backend keeps open.
struct SinkRun {
    sink: AsyncSink<Event>,
    valve: Valve,
    record: Record,
    runtime: Runtime,
    model: Model,
    held_handles: Vec<(Op, WaitHandle)>,
    previous: QueueStats,
}

/// Runs every step of `case` on a real sink and on the model, checking after each.
pub fn run(case: SinkCase) {
    let mut run = SinkRun::new(&case);
    run.check("created");
    for (index, step) in case.steps.iter().enumerate() {
        run.step(*step);
        run.check(&format!("step {index}: {step:?}"));
    }
}

impl SinkRun {
    fn new(case: &SinkCase) -> Self {
        let setup = Setup {
            capacity: case.capacity,
            policy: case.policy,
            lazy_start: case.lazy_start,
            start_fails: case.start_fails,
        };
        let backend = Backend::new(case.start_fails);
        let (valve, record) = (backend.valve.clone(), backend.record.clone());
        let config = SinkConfig::default()
            .namespace("prop")
            .queue_capacity(case.capacity)
            .batch_size(case.batch_size)
            .overflow(case.policy)
            .lazy_start(case.lazy_start)
            .stop_timeout(None);
        let (sink, runtime, model) = match case.harness {
            Harness::Thread => {
                let (sink, terminator) =
                    mvx::rt::thread::create(backend, config).expect("the sink starts");
                (sink, Runtime::Thread(terminator), Model::running(setup))
            }
            Harness::Smol => {
                let executor = Arc::new(smol::Executor::new());
                let sink = mvx::rt::smol::spawn(&executor, backend, config);
                let (stop, stopped) = async_channel::bounded::<()>(1);
                let running = executor.clone();
                let runner = std::thread::spawn(move || {
                    smol::block_on(running.run(async move {
                        let _ = stopped.recv().await;
                    }));
                });
                let runtime = Runtime::Smol {
                    executor: Some(executor),
                    stop,
                    runner: Some(runner),
                };
                (sink, runtime, Model::virgin(setup))
            }
        };
        Self {
            sink,
            valve,
            record,
            runtime,
            model,
            held_handles: Vec::new(),
            previous: QueueStats {
                capacity: case.capacity,
                ..QueueStats::default()
            },
        }
    }

    fn step(&mut self, step: Step) {
        match step {
            Step::Start => {
                let expect = self.model.start();
                let handle = self.sink.start();
                self.expect_op(Op::Start, handle, expect);
            }
            Step::Stop => {
                let expect = self.model.stop();
                let handle = self.sink.stop();
                self.expect_op(Op::Stop, handle, expect);
            }
            Step::Log(value) => self.log(value),
            Step::Flush { blocking } => self.flush(blocking),
            Step::Hold => self.hold(),
            Step::Release => self.release(),
            Step::Terminate => self.terminate(),
        }
    }

    fn log(&mut self, value: u32) {
        let (event, allowed, lazily_started) = self.model.log(value);
        let logged = match self.sink.log(event) {
            Ok(LogOutcome::Accepted) => Logged::Accepted,
            Ok(LogOutcome::Dropped) => Logged::Dropped,
            Err(error) => {
                let reason = error.reason();
                let logged = match &error {
                    LogError::QueueOverflow(_) => Logged::Overflow,
                    LogError::NotAccepting { state, .. } => Logged::NotAccepting(*state),
                    LogError::WouldDeadlock(_) => {
                        panic!("the test thread does not run the driver, yet {error:?}")
                    }
                };
                let expected_reason = match logged {
                    Logged::Overflow => mvx::ErrorReason::QueueOverflow,
                    _ => mvx::ErrorReason::InvalidState,
                };
                assert_eq!(reason, expected_reason, "{error:?}");
                assert_eq!(error.into_inner(), event, "the refused event comes back");
                logged
            }
        };
        assert!(
            allowed.contains(logged),
            "log({event:?}) returned {logged:?}, the model allows {allowed:?}"
        );
        self.model.logged(event, logged);
        if lazily_started && !self.model.held {
            // The caller has no handle on a lazy start: wait for it with a flush.
            self.flush(true);
        }
    }

    fn flush(&mut self, blocking: bool) {
        if self.model.held {
            self.release();
        }
        let expected = self.model.flush();
        let flushed = if blocking {
            self.sink.flush_blocking()
        } else {
            futures::executor::block_on(self.sink.flush())
        };
        assert_eq!(
            flushed.as_ref().map(|_| ()).map_err(SinkError::reason),
            expected,
            "flush returned {flushed:?}"
        );
        if let Err(SinkError::OnStartingHookFailed(cause)) = &flushed {
            assert!(cause.downcast_ref::<Refused>().is_some(), "{cause:?}");
        }
    }

    fn hold(&mut self) {
        if !self.model.exact {
            // The driver may be in the middle of a batch: let it finish first.
            self.flush(true);
        }
        self.model.hold();
        self.valve.hold();
    }

    fn release(&mut self) {
        if self.model.held && self.model.state == State::Starting {
            // A lazy start has no handle: take one on it, to wait for it.
            let expect = self.model.start();
            let handle = self.sink.start();
            self.expect_op(Op::Start, handle, expect);
        }
        let finished = self.model.release();
        self.valve.open();
        self.resolve(finished);
    }

    fn terminate(&mut self) {
        match &mut self.runtime {
            Runtime::Thread(terminator) => {
                let terminator = terminator.clone();
                if self.model.held {
                    self.release();
                }
                let expected = self.model.terminate();
                let outcome = terminator.terminate();
                assert_eq!(
                    outcome.as_ref().map(|_| ()).map_err(|error| error.reason()),
                    expected,
                    "terminate returned {outcome:?}"
                );
                assert!(terminator.is_terminated());
            }
            Runtime::Smol { .. } => {
                if !self.model.exact {
                    // Cancel at a known point: nothing in the middle of a batch.
                    self.flush(true);
                }
                let finished = self.model.cancel();
                self.drop_executor();
                self.resolve(finished);
            }
        }
    }

    /// Stops the smol executor's thread and drops the executor with the driver in it.
    fn drop_executor(&mut self) {
        if let Runtime::Smol {
            executor,
            stop,
            runner,
        } = &mut self.runtime
        {
            stop.close();
            if let Some(runner) = runner.take() {
                runner.join().expect("the executor thread ends");
            }
            drop(executor.take());
        }
    }

    /// Checks a handle against the model's expectation, or keeps it while held.
    fn expect_op(&mut self, op: Op, handle: WaitHandle, expect: OpExpect) {
        match expect {
            OpExpect::Ready(expected) => {
                let ready = handle.try_result().expect("the result is ready at once");
                assert_op(&ready, op, expected);
                assert_op(&handle.wait(), op, expected);
            }
            OpExpect::Eventually(expected) => assert_op(&handle.wait(), op, expected),
            OpExpect::Held => {
                assert!(
                    handle.try_result().is_none(),
                    "{op} finished while the backend is held"
                );
                self.held_handles.push((op, handle));
            }
        }
    }

    /// Waits for every held handle of the operations that `finished`, once each.
    fn resolve(&mut self, finished: Vec<(Op, Expected)>) {
        for (op, handle) in std::mem::take(&mut self.held_handles) {
            let (_, expected) = finished
                .iter()
                .find(|(finished_op, _)| *finished_op == op)
                .unwrap_or_else(|| panic!("a held {op} handle did not finish"));
            let result = futures::executor::block_on(handle);
            assert_op(&result, op, *expected);
        }
    }

    /// Compares the real sink with the model after a step.
    fn check(&mut self, after: &str) {
        let model = &self.model;
        let stats = self.sink.stats();
        let context = format!("after {after}: real {stats}, model {model:?}");
        assert_eq!(self.sink.state(), model.state, "{context}");

        // What always holds, whatever the driver is doing.
        assert_eq!(stats.accepted, model.accepted.len() as u64, "{context}");
        assert_eq!(stats.dropped, model.dropped, "{context}");
        assert_eq!(stats.capacity, model.setup.capacity, "{context}");
        assert_eq!(
            stats.accepted,
            stats.delivered + stats.failed + stats.pending,
            "{context}"
        );
        assert!(stats.pending <= stats.capacity as u64, "{context}");
        assert!(stats.high_watermark <= stats.capacity, "{context}");
        let (low, high) = model.high_watermark;
        assert!(
            (low..=high).contains(&(stats.high_watermark as u64)),
            "{context}"
        );
        let previous = self.previous;
        assert!(stats.delivered >= previous.delivered, "{context}");
        assert!(stats.failed >= previous.failed, "{context}");
        assert!(stats.high_watermark >= previous.high_watermark, "{context}");
        for (op, handle) in &self.held_handles {
            assert!(
                handle.try_result().is_none(),
                "{op} finished early: {context}"
            );
        }

        let record = self.record.events();
        if model.exact {
            let expected = QueueStats {
                high_watermark: stats.high_watermark,
                ..model.stats()
            };
            assert_eq!(stats, expected, "{context}");
            assert_eq!(record, model.dispatched, "{context}");
            let last_error = self.sink.last_error().map(|error| error.reason());
            assert_eq!(last_error, model.last_error, "{context}");
        } else {
            // Between what is known finished and everything accepted.
            let caught_up = model.caught_up();
            assert!(
                (model.delivered..=caught_up.delivered).contains(&stats.delivered),
                "{context}"
            );
            assert!(
                (model.failed..=caught_up.failed).contains(&stats.failed),
                "{context}"
            );
            assert!(stats.pending <= model.in_flight(), "{context}");
            assert!(record.len() >= model.dispatched.len(), "{context}");
            assert!(caught_up.dispatched.starts_with(&record), "{context}");
        }
        self.previous = stats;
    }
}

impl Drop for SinkRun {
    fn drop(&mut self) {
        // Nothing may wait at the valve once the case is over, passed or failed.
        self.valve.open();
        self.drop_executor();
    }
}

/// `result` is the documented result `expected` of `op`.
pub fn assert_op(result: &OpResult, op: Op, expected: Expected) {
    assert_eq!(result.op, op, "{result:?}");
    assert_eq!(result.success, result.error.is_none(), "{result:?}");
    match (expected, &result.error) {
        (Expected::Success, None) => {}
        (
            Expected::InvalidState { actual, expected },
            Some(SinkError::InvalidState {
                actual: was,
                expected: needs,
            }),
        ) if *was == actual && *needs == expected => {}
        (Expected::StartHookFailed, Some(SinkError::OnStartingHookFailed(cause)))
            if cause.downcast_ref::<Refused>().is_some() => {}
        (Expected::Cancelled, Some(SinkError::DispatcherCancelled)) => {}
        _ => panic!("{op} returned {result:?}, the model expects {expected:?}"),
    }
}
