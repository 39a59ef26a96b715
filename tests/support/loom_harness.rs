//! What the loom models share: the bounded model runner, dispatchers that report to the
//! model, and a driver thread.
//!
//! Included by each `tests/loom_*.rs` with `#[path = "support/loom_harness.rs"] mod
//! loom_harness;`; not every model uses every item.
#![allow(dead_code)]

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Instant;

use loom::future::AtomicWaker;
use loom::sync::atomic::{AtomicBool, Ordering};
use loom::sync::{Arc, Condvar, Mutex};
use loom::thread::{self, JoinHandle};

use mvx::BoxError;
use mvx::queue::OverflowPolicy;
use mvx::sink::{BatchError, Dispatch, Driver, SinkConfig};

/// Runs `model` in every interleaving loom explores with at most `preemptions` preemptions
/// (`LOOM_MAX_PREEMPTIONS` overrides the bound), and prints how many it explored.
///
/// The bound keeps the run short: each model exercises the whole sink (the driver, the
/// lifecycle lock, `event-listener`'s wake-ups), so one more preemption multiplies the
/// interleavings by ten to a hundred. Most concurrency bugs need only one or two.
///
/// An execution may take up to 10,000 branches (loom's default is 1,000; `LOOM_MAX_BRANCHES`
/// overrides it): a model's whole life — start, logs, a dispatch that calls back into its
/// sink, the stop — reads each lane's word and counts several times, and the longest model
/// (`a_dispatcher_waiting_on_its_own_sink_is_refused_and_producers_still_wake`) needs more
/// than 1,000. A driver that spins without bound still fails the model: loom explores
/// the interleaving where nobody else runs, and the spin exceeds any bound there.
pub fn model(preemptions: usize, model: impl Fn() + Sync + Send + 'static) {
    let mut builder = loom::model::Builder::new();
    if std::env::var_os("LOOM_MAX_BRANCHES").is_none() {
        builder.max_branches = 10_000;
    }
    if builder.preemption_bound.is_none() {
        builder.preemption_bound = Some(preemptions);
    }
    let bound = builder.preemption_bound;
    let iterations = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counter = iterations.clone();
    let started = Instant::now();
    builder.check(move || {
        counter.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        model()
    });
    eprintln!(
        "{} interleavings (at most {} preemptions) in {:.1?}",
        iterations.load(std::sync::atomic::Ordering::Relaxed),
        bound.unwrap_or_default(),
        started.elapsed()
    );
}

/// A sink configuration for the models: no start or stop timeout and no loss reports
/// (loom has no clock, and they need one). The poll budget stays on: under loom it counts
/// events only.
pub fn config(capacity: usize, overflow: OverflowPolicy) -> SinkConfig {
    SinkConfig::default()
        .queue_capacity(capacity)
        .overflow(overflow)
        .stop_timeout(None)
        .start_timeout(None)
        .loss_report_interval(None)
}

/// Runs a sink's driver to completion on a thread of its own.
pub fn spawn_driver(driver: Driver) -> JoinHandle<()> {
    thread::spawn(move || loom::future::block_on(driver))
}

/// Counts what it is handed and lets the model wait for a count.
#[derive(Clone, Default)]
pub struct Counted {
    delivered: Arc<(Mutex<u64>, Condvar)>,
}

impl Counted {
    /// Blocks until at least `count` events were dispatched.
    pub fn wait_for(&self, count: u64) {
        let (delivered, changed) = &*self.delivered;
        let mut delivered = delivered.lock().unwrap();
        while *delivered < count {
            delivered = changed.wait(delivered).unwrap();
        }
    }

    /// Events dispatched so far.
    pub fn delivered(&self) -> u64 {
        *self.delivered.0.lock().unwrap()
    }
}

impl Dispatch<u32> for Counted {
    async fn dispatch(&mut self, _event: u32) -> Result<(), BoxError> {
        unreachable!("the driver dispatches batches")
    }

    async fn dispatch_batch(&mut self, events: &mut Vec<u32>) -> Result<(), BatchError> {
        let (delivered, changed) = &*self.delivered;
        *delivered.lock().unwrap() += events.len() as u64;
        events.clear();
        changed.notify_all();
        Ok(())
    }
}

/// A dispatcher whose batches stay in dispatch until the gate opens.
#[derive(Clone, Default)]
pub struct Gated {
    gate: Arc<Gate>,
    /// What went through the gate.
    pub counted: Counted,
}

#[derive(Default)]
struct Gate {
    open: AtomicBool,
    waker: AtomicWaker,
}

impl Gated {
    /// Lets every batch through.
    pub fn open(&self) {
        self.gate.open.store(true, Ordering::Release);
        self.gate.waker.wake();
    }
}

impl Dispatch<u32> for Gated {
    async fn dispatch(&mut self, _event: u32) -> Result<(), BoxError> {
        unreachable!("the driver dispatches batches")
    }

    async fn dispatch_batch(&mut self, events: &mut Vec<u32>) -> Result<(), BatchError> {
        GateOpen(&self.gate).await;
        self.counted.dispatch_batch(events).await
    }
}

struct GateOpen<'a>(&'a Gate);

impl Future for GateOpen<'_> {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if self.0.open.load(Ordering::Acquire) {
            return Poll::Ready(());
        }
        self.0.waker.register_by_ref(cx.waker());
        if self.0.open.load(Ordering::Acquire) {
            Poll::Ready(())
        } else {
            Poll::Pending
        }
    }
}

/// Which hook of a [`Hooks`] dispatcher fails.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Failing {
    /// `on_starting` returns an error.
    Start,
    /// `on_stopped` returns an error.
    Stop,
}

/// A dispatcher that delivers nowhere and whose `on_starting` or `on_stopped` hook fails.
#[derive(Clone, Copy, Debug)]
pub struct Hooks(pub Failing);

impl Dispatch<u32> for Hooks {
    async fn dispatch(&mut self, _event: u32) -> Result<(), BoxError> {
        Ok(())
    }

    async fn on_starting(&mut self) -> Result<(), BoxError> {
        match self.0 {
            Failing::Start => Err("start hook failed".into()),
            Failing::Stop => Ok(()),
        }
    }

    async fn on_stopped(&mut self) -> Result<(), BoxError> {
        match self.0 {
            Failing::Start => Ok(()),
            Failing::Stop => Err("stop hook failed".into()),
        }
    }
}

/// Asserts that a thread's successive readings of a sink's state follow the lifecycle:
/// each one equal to the previous or reachable from it by legal transitions (a reader can
/// miss the states in between).
pub fn assert_lifecycle_order(readings: &[mvx::State]) {
    for pair in readings.windows(2) {
        assert!(
            reachable(pair[0], pair[1]),
            "state {} read after {}: {readings:?}",
            pair[1],
            pair[0]
        );
    }
}

/// Whether `to` is `from` or follows it by one or more legal transitions.
fn reachable(from: mvx::State, to: mvx::State) -> bool {
    from == to
        || mvx::State::ALL
            .into_iter()
            .any(|next| next != from && from.can_transition_to(next) && reachable(next, to))
}
