//! Handoff: `AsyncSink::log` beside crossbeam-channel, a naive async-channel consumer,
//! tracing-appender's non-blocking writer and slog-async (DESIGN.md section 7).
//!
//! One criterion group per regime (`handoff/saturated`, `handoff/paced`), one benchmark per
//! peer and producer count. Every peer gets the same 32-byte `Copy` event, the same capacity
//! (65,536), a no-op backend that only counts what it receives, and the same long-lived
//! producer threads. Each criterion iteration sends `PER_PRODUCER` events per producer and
//! reports the end-to-end time: from the first send until the consumer has received the
//! last event. Criterion prints those times; the derived figures (producer ns/event,
//! end-to-end M events/s, allocations per event, ratios against the targets) are printed to
//! stderr at the end of the run.
//!
//! Run with `cargo bench --bench handoff`. With `HANDOFF_PIN=1` (Linux), every consumer
//! thread is pinned to the last CPU and the producers to the other CPUs, round-robin, so
//! that the handoff always crosses cores; by default the scheduler places the threads.
//!
//! `mvx` runs the sink's default configuration, poll budget and loss reports on. With
//! `HANDOFF_BASELINE=1` the run also measures `mvx-baseline`, the same sink with both off
//! (`poll_budget(None)`, `loss_report_interval(None)`), in the same groups, interleaved
//! with the others; the summary then prints the same-run cost of the two (mvx against
//! mvx-baseline: producer ns/event and end-to-end throughput). `cargo bench --bench handoff
//! -- mvx` runs only the two.

use std::cell::Cell;
use std::collections::BTreeMap;
use std::fmt;
use std::hint::black_box;
use std::io::{self, Write};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Barrier, Mutex, OnceLock};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use criterion::{BenchmarkId, Criterion, SamplingMode, Throughput};
use mvx::BoxError;
use mvx::queue::{LogOutcome, OverflowPolicy};
use mvx::rt::Terminator;
use mvx::sink::{AsyncSink, BatchError, Dispatch, SinkConfig};

/// The bounded capacity every peer gets.
const CAPACITY: usize = 65_536;
/// Events each producer sends per criterion iteration.
const PER_PRODUCER: u64 = 200_000;
/// The producer counts measured.
const PRODUCERS: [usize; 2] = [1, 2];
/// The length of the line written to tracing-appender per event.
const LINE_LEN: usize = 64;
/// The work a paced producer does between two events.
const PACE_TARGET_NS: f64 = 75.0;
/// How long to wait for a consumer before declaring events lost.
const COMPLETION_TIMEOUT: Duration = Duration::from_secs(120);

// Allocation counting: producer threads leave the process-wide count, so that they do not
// contend on it; their allocations are read from their own thread's counter.
#[path = "../tests/support/counting_allocator.rs"]
mod counting_allocator;

// ---------------------------------------------------------------------------------------
// Clocks, pacing
// ---------------------------------------------------------------------------------------

fn epoch() -> Instant {
    static EPOCH: OnceLock<Instant> = OnceLock::new();
    *EPOCH.get_or_init(Instant::now)
}

/// Nanoseconds since the bench's epoch.
fn now_ns() -> u64 {
    epoch().elapsed().as_nanos() as u64
}

/// A cheap cycle counter for timing single calls in the paced regime.
#[cfg(target_arch = "x86_64")]
#[inline(always)]
fn ticks() -> u64 {
    #[allow(unused_unsafe)]
    // SAFETY: `rdtsc` has no preconditions on x86_64.
    unsafe {
        std::arch::x86_64::_rdtsc()
    }
}

#[cfg(not(target_arch = "x86_64"))]
#[inline(always)]
fn ticks() -> u64 {
    now_ns()
}

/// The busy work a paced producer does before each event.
#[inline(always)]
fn work(iterations: u32) {
    for i in 0..iterations {
        black_box(i);
    }
}

/// How many `work` iterations take about `PACE_TARGET_NS`.
fn work_iterations() -> u32 {
    static ITERATIONS: OnceLock<u32> = OnceLock::new();
    *ITERATIONS.get_or_init(|| {
        const PROBE: u32 = 10_000_000;
        work(PROBE / 10);
        let start = Instant::now();
        work(PROBE);
        let per_iteration = start.elapsed().as_nanos() as f64 / f64::from(PROBE);
        ((PACE_TARGET_NS / per_iteration).round() as u32).max(1)
    })
}

// ---------------------------------------------------------------------------------------
// Optional pinning
// ---------------------------------------------------------------------------------------

/// Whether `HANDOFF_PIN` asks for pinned threads.
fn pinning() -> bool {
    static PIN: OnceLock<bool> = OnceLock::new();
    *PIN.get_or_init(|| std::env::var_os("HANDOFF_PIN").is_some_and(|v| v != "0"))
}

/// Whether `HANDOFF_BASELINE` asks for `mvx-baseline` beside `mvx`.
fn baseline() -> bool {
    static BASELINE: OnceLock<bool> = OnceLock::new();
    *BASELINE.get_or_init(|| std::env::var_os("HANDOFF_BASELINE").is_some_and(|v| v != "0"))
}

/// The CPUs available to the bench, read once (before any thread is pinned).
fn cpus() -> usize {
    static CPUS: OnceLock<usize> = OnceLock::new();
    *CPUS.get_or_init(|| thread::available_parallelism().map_or(1, usize::from))
}

#[cfg(target_os = "linux")]
fn pin_current_thread(cpu: usize) {
    // SAFETY: `cpu_set_t` is plain data; the set outlives the call.
    let pinned = unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        libc::CPU_SET(cpu, &mut set);
        libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set)
    };
    assert_eq!(pinned, 0, "pin a thread to CPU {cpu}");
}

#[cfg(not(target_os = "linux"))]
fn pin_current_thread(_cpu: usize) {}

/// Pins a consumer thread to the last CPU, once per thread (with `HANDOFF_PIN`).
#[inline]
fn pin_consumer_once() {
    thread_local! {
        static PINNED: Cell<bool> = const { Cell::new(false) };
    }
    if !PINNED.get() && pinning() && cpus() > 1 {
        PINNED.set(true);
        pin_current_thread(cpus() - 1);
    }
}

/// Pins producer `index` to one of the CPUs other than the last (with `HANDOFF_PIN`).
fn pin_producer(index: usize) {
    if pinning() && cpus() > 1 {
        pin_current_thread(index % (cpus() - 1));
    }
}

// ---------------------------------------------------------------------------------------
// The event and the producers
// ---------------------------------------------------------------------------------------

#[derive(Clone, Copy, Debug)]
struct Event {
    id: u64,
    a: u64,
    b: u64,
    c: u64,
}

impl Event {
    #[inline(always)]
    fn new(id: u64) -> Self {
        Self {
            id,
            a: id ^ 0x5555,
            b: id.wrapping_mul(3),
            c: 7,
        }
    }
}

/// One producer's handle on a peer: `send` hands one event over, waiting for room if the
/// peer is full (every peer runs in its blocking / lossless mode).
trait Producer: Send + 'static {
    fn send(&mut self, event: Event);
}

/// Spins a little, then yields, while a bounded channel is full.
#[inline]
fn backoff(spins: &mut u32) {
    if *spins < 64 {
        *spins += 1;
        std::hint::spin_loop();
    } else {
        thread::yield_now();
    }
}

struct MvxProducer(AsyncSink<Event>);

impl Producer for MvxProducer {
    #[inline]
    fn send(&mut self, event: Event) {
        let outcome = self.0.log(event);
        assert!(
            matches!(outcome, Ok(LogOutcome::Accepted)),
            "mvx did not accept an event"
        );
    }
}

struct CrossbeamProducer(crossbeam_channel::Sender<Event>);

impl Producer for CrossbeamProducer {
    #[inline]
    fn send(&mut self, mut event: Event) {
        let mut spins = 0;
        loop {
            match self.0.try_send(event) {
                Ok(()) => return,
                Err(crossbeam_channel::TrySendError::Full(back)) => event = back,
                Err(crossbeam_channel::TrySendError::Disconnected(_)) => {
                    panic!("crossbeam consumer gone")
                }
            }
            backoff(&mut spins);
        }
    }
}

struct AsyncChannelProducer(async_channel::Sender<Event>);

impl Producer for AsyncChannelProducer {
    #[inline]
    fn send(&mut self, mut event: Event) {
        let mut spins = 0;
        loop {
            match self.0.try_send(event) {
                Ok(()) => return,
                Err(async_channel::TrySendError::Full(back)) => event = back,
                Err(async_channel::TrySendError::Closed(_)) => panic!("async-channel closed"),
            }
            backoff(&mut spins);
        }
    }
}

struct TracingProducer {
    writer: tracing_appender::non_blocking::NonBlocking,
    line: [u8; LINE_LEN],
}

impl Producer for TracingProducer {
    #[inline]
    fn send(&mut self, event: Event) {
        self.line[..8].copy_from_slice(&event.id.to_le_bytes());
        self.writer
            .write_all(&self.line)
            .expect("tracing-appender worker gone");
    }
}

struct SlogProducer(slog::Logger);

impl Producer for SlogProducer {
    #[inline]
    fn send(&mut self, event: Event) {
        slog::info!(self.0, "event"; "id" => event.id, "a" => event.a, "b" => event.b, "c" => event.c);
    }
}

/// Does nothing: measures the cost of timing single calls in the paced regime.
struct NoopProducer;

impl Producer for NoopProducer {
    #[inline]
    fn send(&mut self, event: Event) {
        black_box(event);
    }
}

// ---------------------------------------------------------------------------------------
// Consumers' completion signal
// ---------------------------------------------------------------------------------------

#[repr(align(128))]
struct Padded<T>(T);

/// Counts what a consumer received and stamps the moment it reached the target.
struct Completion {
    received: Padded<AtomicU64>,
    target: AtomicU64,
    done_at: AtomicU64,
    /// Batches handed to mvx's dispatcher (a diagnostic; mvx only).
    batches: AtomicU64,
    /// Units counted per event (bytes for a line writer, 1 elsewhere).
    unit: u64,
}

impl Completion {
    fn new(unit: u64) -> Arc<Self> {
        Arc::new(Self {
            received: Padded(AtomicU64::new(0)),
            target: AtomicU64::new(0),
            done_at: AtomicU64::new(0),
            batches: AtomicU64::new(0),
            unit,
        })
    }

    /// Called by the consumer for `units` received.
    #[inline]
    fn add(&self, units: u64) {
        pin_consumer_once();
        let before = self.received.0.fetch_add(units, Ordering::AcqRel);
        let target = self.target.load(Ordering::Acquire);
        if before < target && before + units >= target {
            self.done_at.store(now_ns(), Ordering::Release);
        }
    }

    /// Expects `events` more events (before the producers start).
    fn arm(&self, events: u64) {
        self.done_at.store(0, Ordering::Release);
        let received = self.received.0.load(Ordering::Acquire);
        self.target
            .store(received + events * self.unit, Ordering::Release);
    }

    /// Waits until the target is reached; returns the moment it was.
    fn wait(&self) -> u64 {
        let deadline = Instant::now() + COMPLETION_TIMEOUT;
        loop {
            let done_at = self.done_at.load(Ordering::Acquire);
            if done_at != 0 {
                return done_at;
            }
            assert!(
                Instant::now() < deadline,
                "consumer did not receive every event"
            );
            thread::yield_now();
        }
    }
}

/// mvx's no-op backend: counts the events it is handed.
struct CountingDispatch(Arc<Completion>);

impl Dispatch<Event> for CountingDispatch {
    async fn dispatch(&mut self, event: Event) -> Result<(), BoxError> {
        black_box(event);
        self.0.add(1);
        Ok(())
    }

    async fn dispatch_batch(&mut self, events: &mut Vec<Event>) -> Result<(), BatchError> {
        let count = events.len() as u64;
        events.clear();
        self.0.batches.fetch_add(1, Ordering::Relaxed);
        self.0.add(count);
        Ok(())
    }
}

/// tracing-appender's no-op backend: `io::sink()` that counts the bytes written.
struct CountingWriter(Arc<Completion>);

impl Write for CountingWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let written = io::sink().write(buf)?;
        self.0.add(written as u64);
        Ok(written)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// slog-async's no-op backend: `slog::Discard` that counts the records.
struct CountingDrain(Arc<Completion>);

impl slog::Drain for CountingDrain {
    type Ok = ();
    type Err = slog::Never;

    fn log(
        &self,
        record: &slog::Record<'_>,
        values: &slog::OwnedKVList,
    ) -> Result<(), slog::Never> {
        slog::Discard.log(record, values)?;
        self.0.add(1);
        Ok(())
    }
}

// ---------------------------------------------------------------------------------------
// The rig: long-lived producer threads driven one batch at a time
// ---------------------------------------------------------------------------------------

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Regime {
    Saturated,
    Paced,
}

impl fmt::Display for Regime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Saturated => "saturated",
            Self::Paced => "paced",
        })
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Peer {
    Mvx,
    /// mvx with its poll budget and loss reports off (`HANDOFF_BASELINE`).
    MvxBaseline,
    Crossbeam,
    AsyncChannel,
    TracingAppender,
    SlogAsync,
}

impl Peer {
    const ALL: [Self; 5] = [
        Self::Mvx,
        Self::Crossbeam,
        Self::AsyncChannel,
        Self::TracingAppender,
        Self::SlogAsync,
    ];

    /// The peers of this run: [`ALL`](Self::ALL), and `mvx-baseline` right after `mvx`
    /// with `HANDOFF_BASELINE`.
    fn measured() -> Vec<Self> {
        let mut peers = Self::ALL.to_vec();
        if baseline() {
            peers.insert(1, Self::MvxBaseline);
        }
        peers
    }

    fn name(self) -> &'static str {
        match self {
            Self::Mvx => "mvx",
            Self::MvxBaseline => "mvx-baseline",
            Self::Crossbeam => "crossbeam",
            Self::AsyncChannel => "async-channel",
            Self::TracingAppender => "tracing-appender",
            Self::SlogAsync => "slog-async",
        }
    }
}

struct RigShared {
    start: Barrier,
    done: Barrier,
    stop: AtomicBool,
    regime: Regime,
    work_iterations: u32,
    /// The earliest first send of the current batch (ns since the epoch).
    first_send: AtomicU64,
    /// Nanoseconds spent inside `send` by all producers in the current batch.
    send_ns: AtomicU64,
    /// Allocations made on producer threads in the current batch.
    producer_allocs: AtomicU64,
}

/// What one batch measured.
#[derive(Clone, Copy, Debug)]
struct Sample {
    events: u64,
    send_ns: u64,
    end_to_end_ns: u64,
    producer_allocs: u64,
    total_allocs: u64,
}

struct Rig {
    producers: usize,
    shared: Arc<RigShared>,
    completion: Arc<Completion>,
    threads: Vec<JoinHandle<()>>,
}

impl Rig {
    fn new<P: Producer>(
        producers: usize,
        regime: Regime,
        completion: Arc<Completion>,
        mut make: impl FnMut() -> P,
    ) -> Self {
        let shared = Arc::new(RigShared {
            start: Barrier::new(producers + 1),
            done: Barrier::new(producers + 1),
            stop: AtomicBool::new(false),
            regime,
            work_iterations: work_iterations(),
            first_send: AtomicU64::new(u64::MAX),
            send_ns: AtomicU64::new(0),
            producer_allocs: AtomicU64::new(0),
        });
        let threads = (0..producers)
            .map(|index| {
                let mut producer = make();
                let shared = shared.clone();
                thread::Builder::new()
                    .name(format!("bench-producer-{index}"))
                    .spawn(move || {
                        pin_producer(index);
                        counting_allocator::leave_all();
                        loop {
                            shared.start.wait();
                            if shared.stop.load(Ordering::Acquire) {
                                break;
                            }
                            let allocs_before = counting_allocator::on_this_thread();
                            let send_ns = run_batch(&mut producer, index as u64, &shared);
                            shared.send_ns.fetch_add(send_ns, Ordering::AcqRel);
                            shared.producer_allocs.fetch_add(
                                counting_allocator::on_this_thread() - allocs_before,
                                Ordering::AcqRel,
                            );
                            shared.done.wait();
                        }
                        drop(producer);
                    })
                    .expect("spawn a producer thread")
            })
            .collect();
        Self {
            producers,
            shared,
            completion,
            threads,
        }
    }

    /// Runs one batch on every producer; returns what it measured.
    fn run(&self) -> Sample {
        let events = self.producers as u64 * PER_PRODUCER;
        self.completion.arm(events);
        self.shared.first_send.store(u64::MAX, Ordering::Release);
        self.shared.send_ns.store(0, Ordering::Release);
        self.shared.producer_allocs.store(0, Ordering::Release);
        let other_before = counting_allocator::all();

        self.shared.start.wait();
        self.shared.done.wait();
        let done_at = self.completion.wait();

        let producer_allocs = self.shared.producer_allocs.load(Ordering::Acquire);
        let other_allocs = counting_allocator::all() - other_before;
        let first_send = self.shared.first_send.load(Ordering::Acquire);
        Sample {
            events,
            send_ns: self.shared.send_ns.load(Ordering::Acquire),
            end_to_end_ns: done_at.saturating_sub(first_send).max(1),
            producer_allocs,
            total_allocs: producer_allocs + other_allocs,
        }
    }
}

impl Drop for Rig {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::Release);
        self.shared.start.wait();
        for thread in self.threads.drain(..) {
            thread.join().expect("a producer thread panicked");
        }
    }
}

/// Sends one batch; returns the nanoseconds spent inside `send`.
fn run_batch<P: Producer>(producer: &mut P, index: u64, shared: &RigShared) -> u64 {
    let base = index << 40;
    match shared.regime {
        Regime::Saturated => {
            let start = Instant::now();
            shared.first_send.fetch_min(now_ns(), Ordering::AcqRel);
            for i in 0..PER_PRODUCER {
                producer.send(Event::new(base | i));
            }
            start.elapsed().as_nanos() as u64
        }
        Regime::Paced => paced_batch(producer, base, shared.work_iterations, Some(shared)),
    }
}

/// The paced loop: work, then one timed `send`, per event. Returns the nanoseconds inside
/// `send` (timer overhead included).
fn paced_batch<P: Producer>(
    producer: &mut P,
    base: u64,
    work_iterations: u32,
    shared: Option<&RigShared>,
) -> u64 {
    let start = Instant::now();
    let start_ticks = ticks();
    if let Some(shared) = shared {
        shared.first_send.fetch_min(now_ns(), Ordering::AcqRel);
    }
    let mut in_send = 0u64;
    for i in 0..PER_PRODUCER {
        work(work_iterations);
        let before = ticks();
        producer.send(Event::new(base | i));
        in_send += ticks().wrapping_sub(before);
    }
    let total_ticks = ticks().wrapping_sub(start_ticks).max(1);
    let total_ns = start.elapsed().as_nanos();
    (u128::from(in_send) * total_ns / u128::from(total_ticks)) as u64
}

/// The cost of timing one call in the paced loop, in ns (median of a few runs).
fn timer_overhead_ns() -> f64 {
    static OVERHEAD: OnceLock<f64> = OnceLock::new();
    *OVERHEAD.get_or_init(|| {
        let mut runs: Vec<f64> = (0..5)
            .map(|_| {
                paced_batch(&mut NoopProducer, 0, work_iterations(), None) as f64
                    / PER_PRODUCER as f64
            })
            .collect();
        median(&mut runs)
    })
}

/// The pace actually obtained, in ns of work per event.
fn pace_ns() -> f64 {
    static PACE: OnceLock<f64> = OnceLock::new();
    *PACE.get_or_init(|| {
        let iterations = work_iterations();
        let start = Instant::now();
        for _ in 0..PER_PRODUCER {
            work(iterations);
        }
        start.elapsed().as_nanos() as f64 / PER_PRODUCER as f64
    })
}

// ---------------------------------------------------------------------------------------
// Peers: consumers created once per benchmark, torn down after it
// ---------------------------------------------------------------------------------------

/// A peer set up for one benchmark: its rig, and how to stop its consumer afterwards.
struct Setup {
    rig: Option<Rig>,
    teardown: Option<Box<dyn FnOnce()>>,
}

impl Setup {
    fn rig(&self) -> &Rig {
        self.rig.as_ref().expect("rig present until drop")
    }
}

impl Drop for Setup {
    fn drop(&mut self) {
        // Producers first: that drops their handles, which lets the consumers end.
        drop(self.rig.take());
        if let Some(teardown) = self.teardown.take() {
            teardown();
        }
    }
}

fn setup(peer: Peer, producers: usize, regime: Regime) -> Setup {
    match peer {
        Peer::Mvx | Peer::MvxBaseline => {
            let completion = Completion::new(1);
            let mut config = SinkConfig::default()
                .namespace("bench-handoff")
                .queue_capacity(CAPACITY)
                .overflow(OverflowPolicy::Block);
            if peer == Peer::MvxBaseline {
                config = config.poll_budget(None).loss_report_interval(None);
            }
            let (sink, terminator): (AsyncSink<Event>, Terminator) =
                mvx::rt::thread::create(CountingDispatch(completion.clone()), config)
                    .expect("create the mvx sink");
            let counted = completion.clone();
            let rig = Rig::new(producers, regime, completion, || MvxProducer(sink.clone()));
            Setup {
                rig: Some(rig),
                teardown: Some(Box::new(move || {
                    terminator.terminate().expect("terminate the mvx sink");
                    let stats = sink.stats();
                    assert_eq!(stats.accepted, stats.delivered, "mvx lost events: {stats}");
                    record_mvx_stats(
                        (regime, peer, producers),
                        MvxStats {
                            delivered: stats.delivered,
                            batches: counted.batches.load(Ordering::Relaxed),
                            high_watermark: stats.high_watermark,
                        },
                    );
                })),
            }
        }
        Peer::Crossbeam => {
            let completion = Completion::new(1);
            let (tx, rx) = crossbeam_channel::bounded::<Event>(CAPACITY);
            let counted = completion.clone();
            let consumer = thread::spawn(move || {
                while let Ok(event) = rx.recv() {
                    black_box(event);
                    counted.add(1);
                }
            });
            let rig = Rig::new(producers, regime, completion, || {
                CrossbeamProducer(tx.clone())
            });
            drop(tx);
            Setup {
                rig: Some(rig),
                teardown: Some(Box::new(move || {
                    consumer.join().expect("crossbeam consumer panicked");
                })),
            }
        }
        Peer::AsyncChannel => {
            let completion = Completion::new(1);
            let (tx, rx) = async_channel::bounded::<Event>(CAPACITY);
            let counted = completion.clone();
            let consumer = thread::spawn(move || {
                while let Ok(event) = futures::executor::block_on(rx.recv()) {
                    black_box(event);
                    counted.add(1);
                }
            });
            let rig = Rig::new(producers, regime, completion, || {
                AsyncChannelProducer(tx.clone())
            });
            drop(tx);
            Setup {
                rig: Some(rig),
                teardown: Some(Box::new(move || {
                    consumer.join().expect("async-channel consumer panicked");
                })),
            }
        }
        Peer::TracingAppender => {
            let completion = Completion::new(LINE_LEN as u64);
            let (writer, guard) = tracing_appender::non_blocking::NonBlockingBuilder::default()
                .lossy(false)
                .buffered_lines_limit(CAPACITY)
                .thread_name("bench-tracing-appender")
                .finish(CountingWriter(completion.clone()));
            let mut line = [b'x'; LINE_LEN];
            line[LINE_LEN - 1] = b'\n';
            let rig = Rig::new(producers, regime, completion, || TracingProducer {
                writer: writer.clone(),
                line,
            });
            drop(writer);
            Setup {
                rig: Some(rig),
                teardown: Some(Box::new(move || drop(guard))),
            }
        }
        Peer::SlogAsync => {
            let completion = Completion::new(1);
            let drain = slog_async::Async::new(CountingDrain(completion.clone()))
                .chan_size(CAPACITY)
                .overflow_strategy(slog_async::OverflowStrategy::Block)
                .thread_name("bench-slog-async".to_owned())
                .build();
            let logger = slog::Logger::root(slog::Drain::fuse(drain), slog::o!());
            let rig = Rig::new(producers, regime, completion, || {
                SlogProducer(logger.clone())
            });
            Setup {
                rig: Some(rig),
                // The last logger handle owns the drain, whose drop joins the worker.
                teardown: Some(Box::new(move || drop(logger))),
            }
        }
    }
}

// ---------------------------------------------------------------------------------------
// Results
// ---------------------------------------------------------------------------------------

type Key = (Regime, Peer, usize);

fn results() -> &'static Mutex<BTreeMap<Key, Vec<Sample>>> {
    static RESULTS: OnceLock<Mutex<BTreeMap<Key, Vec<Sample>>>> = OnceLock::new();
    RESULTS.get_or_init(Mutex::default)
}

/// What the mvx sink itself saw during one benchmark (diagnostics).
#[derive(Clone, Copy, Debug)]
struct MvxStats {
    delivered: u64,
    batches: u64,
    high_watermark: usize,
}

fn mvx_stats() -> &'static Mutex<BTreeMap<Key, MvxStats>> {
    static STATS: OnceLock<Mutex<BTreeMap<Key, MvxStats>>> = OnceLock::new();
    STATS.get_or_init(Mutex::default)
}

fn record(key: Key, sample: Sample) {
    results()
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .entry(key)
        .or_default()
        .push(sample);
}

fn record_mvx_stats(key: Key, stats: MvxStats) {
    mvx_stats()
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .insert(key, stats);
}

fn median(values: &mut [f64]) -> f64 {
    if values.is_empty() {
        return f64::NAN;
    }
    values.sort_by(f64::total_cmp);
    let middle = values.len() / 2;
    if values.len() % 2 == 1 {
        values[middle]
    } else {
        (values[middle - 1] + values[middle]) / 2.0
    }
}

/// The derived figures of one benchmark.
#[derive(Clone, Copy, Debug)]
struct Figures {
    /// Median producer ns/event, timer overhead removed in the paced regime.
    send_ns: f64,
    /// The same, raw.
    send_ns_raw: f64,
    /// Median end-to-end million events per second.
    meps: f64,
    /// Allocations on producer threads, over every iteration.
    producer_allocs: u64,
    /// Allocations on every thread, over every iteration.
    total_allocs: u64,
    events: u64,
    samples: usize,
}

fn figures(regime: Regime, samples: &[Sample]) -> Figures {
    let overhead = match regime {
        Regime::Saturated => 0.0,
        Regime::Paced => timer_overhead_ns(),
    };
    let mut raw: Vec<f64> = samples
        .iter()
        .map(|s| s.send_ns as f64 / s.events as f64)
        .collect();
    let mut meps: Vec<f64> = samples
        .iter()
        .map(|s| s.events as f64 * 1e3 / s.end_to_end_ns as f64)
        .collect();
    let events: u64 = samples.iter().map(|s| s.events).sum();
    let producer_allocs: u64 = samples.iter().map(|s| s.producer_allocs).sum();
    let total_allocs: u64 = samples.iter().map(|s| s.total_allocs).sum();
    let send_ns_raw = median(&mut raw);
    Figures {
        send_ns: (send_ns_raw - overhead).max(0.0),
        send_ns_raw,
        meps: median(&mut meps),
        producer_allocs,
        total_allocs,
        events,
        samples: samples.len(),
    }
}

fn verdict(met: bool) -> &'static str {
    if met { "met" } else { "NOT met" }
}

fn print_summary() {
    let results = results()
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .clone();
    if results.is_empty() {
        return;
    }
    let sink_stats = mvx_stats()
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .clone();
    let all: BTreeMap<Key, Figures> = results
        .iter()
        .map(|(&(regime, peer, producers), samples)| {
            ((regime, peer, producers), figures(regime, samples))
        })
        .collect();

    eprintln!();
    eprintln!(
        "== handoff summary: {PER_PRODUCER} events per producer per iteration, capacity {CAPACITY}, \
         paced work {:.0} ns/event, paced timer overhead {:.1} ns/event (subtracted), {} CPUs, {} ==",
        pace_ns(),
        timer_overhead_ns(),
        cpus(),
        if pinning() {
            "pinned (HANDOFF_PIN)"
        } else {
            "unpinned"
        }
    );
    eprintln!(
        "| regime | peer | producers | producer ns/event | (raw) | end-to-end M events/s | \
         producer allocs/event | overall allocs/event | allocs producer/overall | events | \
         iterations |"
    );
    eprintln!("|---|---|---|---|---|---|---|---|---|---|---|");
    for (&(regime, peer, producers), f) in &all {
        eprintln!(
            "| {regime} | {} | {producers} | {:.1} | {:.1} | {:.2} | {:.6} | {:.6} | {}/{} | {} | {} |",
            peer.name(),
            f.send_ns,
            f.send_ns_raw,
            f.meps,
            f.producer_allocs as f64 / f.events as f64,
            f.total_allocs as f64 / f.events as f64,
            f.producer_allocs,
            f.total_allocs,
            f.events,
            f.samples
        );
    }
    for ((regime, peer, producers), stats) in &sink_stats {
        eprintln!(
            "{} {regime}/{producers}: {} events in {} dispatch batches (mean batch {:.1}), \
             high watermark {} of {CAPACITY}",
            peer.name(),
            stats.delivered,
            stats.batches,
            stats.delivered as f64 / stats.batches.max(1) as f64,
            stats.high_watermark
        );
    }

    eprintln!();
    eprintln!("== mvx against the DESIGN.md section 7 targets (same run) ==");
    eprintln!(
        "| regime | producers | producer ns vs crossbeam (≤ 1.5×) | e2e vs crossbeam (≥ 0.5×) | \
         e2e vs tracing-appender (≥ 3×) | e2e vs slog-async (≥ 5×) | producer allocs (0) | \
         overall allocs (≤ 0.001) |"
    );
    eprintln!("|---|---|---|---|---|---|---|---|");
    for regime in [Regime::Saturated, Regime::Paced] {
        for producers in PRODUCERS {
            let get = |peer| all.get(&(regime, peer, producers));
            let Some(mvx) = get(Peer::Mvx) else { continue };
            let ratio = |peer, target: f64, at_most: bool, f: fn(&Figures) -> f64| {
                get(peer).map_or_else(
                    || "n/a".to_owned(),
                    |other| {
                        let r = f(mvx) / f(other);
                        let met = if at_most { r <= target } else { r >= target };
                        format!("{r:.2}× ({})", verdict(met))
                    },
                )
            };
            let total_allocs = mvx.total_allocs as f64 / mvx.events as f64;
            eprintln!(
                "| {regime} | {producers} | {} | {} | {} | {} | {} in {} events ({}) | {:.6} ({}) |",
                ratio(Peer::Crossbeam, 1.5, true, |f| f.send_ns),
                ratio(Peer::Crossbeam, 0.5, false, |f| f.meps),
                ratio(Peer::TracingAppender, 3.0, false, |f| f.meps),
                ratio(Peer::SlogAsync, 5.0, false, |f| f.meps),
                mvx.producer_allocs,
                mvx.events,
                verdict(mvx.producer_allocs == 0),
                total_allocs,
                verdict(total_allocs <= 0.001),
            );
        }
    }
    eprintln!();

    if !baseline() {
        return;
    }
    eprintln!(
        "== the cost of the poll budget and the loss reports: mvx (both on) against \
         mvx-baseline (both off), same run =="
    );
    eprintln!(
        "| regime | producers | producer ns/event mvx / baseline (≤ 1.10×) | \
         end-to-end M events/s mvx / baseline (≥ 0.90×) |"
    );
    eprintln!("|---|---|---|---|");
    for regime in [Regime::Saturated, Regime::Paced] {
        for producers in PRODUCERS {
            let (Some(mvx), Some(base)) = (
                all.get(&(regime, Peer::Mvx, producers)),
                all.get(&(regime, Peer::MvxBaseline, producers)),
            ) else {
                continue;
            };
            let send = mvx.send_ns / base.send_ns;
            let meps = mvx.meps / base.meps;
            eprintln!(
                "| {regime} | {producers} | {:.1} / {:.1} = {send:.2}× ({}) | {:.2} / {:.2} = \
                 {meps:.2}× ({}) |",
                mvx.send_ns,
                base.send_ns,
                verdict(send <= 1.10),
                mvx.meps,
                base.meps,
                verdict(meps >= 0.90),
            );
        }
    }
    eprintln!();
}

// ---------------------------------------------------------------------------------------
// Criterion
// ---------------------------------------------------------------------------------------

fn handoff(c: &mut Criterion, regime: Regime) {
    let mut group = c.benchmark_group(format!("handoff/{regime}"));
    group
        .sampling_mode(SamplingMode::Flat)
        .sample_size(10)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2));
    for producers in PRODUCERS {
        group.throughput(Throughput::Elements(producers as u64 * PER_PRODUCER));
        for peer in Peer::measured() {
            let mut state: Option<Setup> = None;
            group.bench_function(BenchmarkId::new(peer.name(), producers), |b| {
                let setup = state.get_or_insert_with(|| setup(peer, producers, regime));
                b.iter_custom(|iterations| {
                    let mut elapsed = Duration::ZERO;
                    for _ in 0..iterations {
                        let sample = setup.rig().run();
                        elapsed += Duration::from_nanos(sample.end_to_end_ns);
                        record((regime, peer, producers), sample);
                    }
                    elapsed
                });
            });
            drop(state);
        }
    }
    group.finish();
}

fn main() {
    // Calibrate before any consumer thread exists.
    epoch();
    cpus();
    baseline();
    work_iterations();
    pace_ns();
    timer_overhead_ns();

    let mut criterion = Criterion::default().configure_from_args();
    handoff(&mut criterion, Regime::Saturated);
    handoff(&mut criterion, Regime::Paced);
    criterion.final_summary();
    print_summary();
}
