//! Handoff: `AsyncSink::log` beside crossbeam-channel, a naive async-channel consumer,
//! tracing-appender's non-blocking writer and slog-async (DESIGN.md section 7, issue 17), and
//! beside `rtrb`, the floor under mvx's lanes.
//!
//! One criterion group per mode (`handoff/lossy`, `handoff/block`, `handoff/paced`), one
//! benchmark per peer and producer count (1 and 2). Every peer gets the same 32-byte `Copy`
//! event, the same capacity (65,536), a no-op backend that only counts what it receives, and
//! the same long-lived producer threads. Each criterion iteration sends `PER_PRODUCER` events
//! per producer and reports the end-to-end time: from the first send until the consumer has
//! received the last event it will receive. The modes:
//!
//! - **lossy**: producers send back to back and never wait: a full queue drops the event
//!   (mvx `OverflowPolicy::Drop`, crossbeam and async-channel `try_send` without retry,
//!   tracing-appender `lossy(true)`, rtrb `push` without retry; slog-async has no countable
//!   lossy mode and is left out). End-to-end counts the events that were accepted.
//! - **block**: producers send back to back, waiting for room when the queue is full (mvx
//!   `OverflowPolicy::Block`, `try_send` and rtrb's `push` retried with a short backoff, the
//!   others' blocking modes).
//! - **paced**: before each event a producer does about 75 ns of work, so the consumer keeps
//!   up and must be woken; each send is timed. The event carries its send time (a cycle
//!   counter read just before the send), and the consumer reads the counter again when the
//!   event reaches it (mvx: when `dispatch_batch` is called with it): the delivery latency,
//!   kept in a log-linear histogram (1/16 octave) per benchmark, warm-up included. slog-async
//!   hands its consumer a record whose values the bench does not decode: no latency for it.
//!
//! `rtrb` is one bare `rtrb` ring per producer thread, which owns its producing end, and one
//! consumer thread that owns every consuming end: it reads each ring a chunk at a time, as
//! mvx's driver reads its lanes, and with every ring empty spins briefly and yields. mvx's
//! lanes are such rings, so the peer shows what a lane's handoff costs with nothing of mvx
//! around it, and thus whether issue 17's goals against crossbeam can be met on the machine
//! at all. It is a floor, not a sink: no wake-up (its consumer never parks, and takes a core
//! for as long as its benchmark lasts), no accounting of what is lost, no lifecycle. It is
//! measured lossy and block, not paced: there a consumer that never sleeps would be set
//! against consumers that must be woken.
//!
//! Criterion prints those times; the derived figures (producer ns/event, end-to-end M
//! events/s, allocations per event, latency percentiles, same-run ratios against the
//! targets of DESIGN.md section 7 and issue 17, and the floor's own ratios against crossbeam
//! beside mvx's) are printed to stderr at the end of the run.
//! After the groups the bench measures the CPU time an idle sink's driver thread uses over
//! `HANDOFF_IDLE_SECS` seconds (default 10; 0 skips it), read from
//! `/proc/self/task/*/stat`, and then the wake-up path (`HANDOFF_WAKE=0` skips it): a
//! sparse stream, 2,000 events 200 µs apart and 500 events 2 ms apart, into mvx's parked
//! driver and into crossbeam's blocked `recv`, with delivery latency and the cost of the
//! send that wakes the consumer (at 200 µs mvx's driver mostly naps, at 2 ms each of its
//! parks is exact: see `src/sink/driver.rs`).
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
/// Allocations a producer thread may make once, at its first event for a sink: its lane
/// (ring, lane, thread-local entry) and a thread's first park (its parker). Anything per
/// event would show as thousands.
const REGISTRATION_ALLOCS: u64 = 16;
/// How long to wait for a consumer before declaring events lost.
const COMPLETION_TIMEOUT: Duration = Duration::from_secs(120);

// Allocation counting: producer threads leave the process-wide count, so that they do not
// contend on it; their allocations are read from their own thread's counter.
#[path = "../tests/support/counting_allocator.rs"]
mod counting_allocator;
// The CPU time of the idle driver's thread.
#[path = "../tests/support/cpu_time.rs"]
mod cpu_time;

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

/// Cycle-counter ticks per nanosecond, measured once against `Instant`.
fn ticks_per_ns() -> f64 {
    static RATE: OnceLock<f64> = OnceLock::new();
    *RATE.get_or_init(|| {
        let (start, start_ticks) = (Instant::now(), ticks());
        thread::sleep(Duration::from_millis(50));
        let elapsed = start.elapsed().as_nanos() as f64;
        (ticks().wrapping_sub(start_ticks) as f64 / elapsed).max(f64::MIN_POSITIVE)
    })
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
    /// The cycle counter just before the send (paced mode), 0 when not stamped.
    sent_at: u64,
}

impl Event {
    #[inline(always)]
    fn new(id: u64) -> Self {
        Self::stamped(id, 0)
    }

    #[inline(always)]
    fn stamped(id: u64, sent_at: u64) -> Self {
        Self {
            id,
            a: id ^ 0x5555,
            b: id.wrapping_mul(3),
            sent_at,
        }
    }
}

/// One producer's handle on a peer: `send` hands one event over; returns whether the peer
/// took it. In the lossless modes a full peer is waited for (always `true`); in the lossy
/// mode it drops the event (`false`).
trait Producer: Send + 'static {
    fn send(&mut self, event: Event) -> bool;
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

/// `log()`: under `Drop` (lossy) it returns `Dropped` on a full queue, under `Block` it
/// waits for room.
struct MvxProducer(AsyncSink<Event>);

impl Producer for MvxProducer {
    #[inline]
    fn send(&mut self, event: Event) -> bool {
        match self.0.log(event) {
            Ok(LogOutcome::Accepted) => true,
            Ok(LogOutcome::Dropped) => false,
            Err(error) => panic!("mvx refused an event: {error}"),
        }
    }
}

struct CrossbeamProducer {
    tx: crossbeam_channel::Sender<Event>,
    lossy: bool,
}

impl Producer for CrossbeamProducer {
    #[inline]
    fn send(&mut self, mut event: Event) -> bool {
        let mut spins = 0;
        loop {
            match self.tx.try_send(event) {
                Ok(()) => return true,
                Err(crossbeam_channel::TrySendError::Full(_)) if self.lossy => return false,
                Err(crossbeam_channel::TrySendError::Full(back)) => event = back,
                Err(crossbeam_channel::TrySendError::Disconnected(_)) => {
                    panic!("crossbeam consumer gone")
                }
            }
            backoff(&mut spins);
        }
    }
}

/// A bare `rtrb` ring of its own: `push`, and under `Block` the same backoff as crossbeam's
/// `try_send` while the ring is full.
struct RtrbProducer {
    ring: rtrb::Producer<Event>,
    lossy: bool,
}

impl Producer for RtrbProducer {
    #[inline]
    fn send(&mut self, mut event: Event) -> bool {
        let mut spins = 0;
        loop {
            match self.ring.push(event) {
                Ok(()) => return true,
                Err(rtrb::PushError::Full(_)) if self.lossy => return false,
                Err(rtrb::PushError::Full(back)) => event = back,
            }
            backoff(&mut spins);
        }
    }
}

struct AsyncChannelProducer {
    tx: async_channel::Sender<Event>,
    lossy: bool,
}

impl Producer for AsyncChannelProducer {
    #[inline]
    fn send(&mut self, mut event: Event) -> bool {
        let mut spins = 0;
        loop {
            match self.tx.try_send(event) {
                Ok(()) => return true,
                Err(async_channel::TrySendError::Full(_)) if self.lossy => return false,
                Err(async_channel::TrySendError::Full(back)) => event = back,
                Err(async_channel::TrySendError::Closed(_)) => panic!("async-channel closed"),
            }
            backoff(&mut spins);
        }
    }
}

/// A 64-byte line: the event id in bytes 0..8, its send time in bytes 8..16. Lossy, the
/// writer drops lines silently; the rig counts them with its error counter.
struct TracingProducer {
    writer: tracing_appender::non_blocking::NonBlocking,
    line: [u8; LINE_LEN],
}

impl Producer for TracingProducer {
    #[inline]
    fn send(&mut self, event: Event) -> bool {
        self.line[..8].copy_from_slice(&event.id.to_le_bytes());
        self.line[8..16].copy_from_slice(&event.sent_at.to_le_bytes());
        self.writer
            .write_all(&self.line)
            .expect("tracing-appender worker gone");
        true
    }
}

struct SlogProducer(slog::Logger);

impl Producer for SlogProducer {
    #[inline]
    fn send(&mut self, event: Event) -> bool {
        slog::info!(self.0, "event"; "id" => event.id, "a" => event.a, "b" => event.b, "c" => event.sent_at);
        true
    }
}

/// Does nothing: measures the cost of timing single calls in the paced regime.
struct NoopProducer;

impl Producer for NoopProducer {
    #[inline]
    fn send(&mut self, event: Event) -> bool {
        black_box(event);
        true
    }
}

// ---------------------------------------------------------------------------------------
// Consumers' completion signal
// ---------------------------------------------------------------------------------------

#[repr(align(128))]
struct Padded<T>(T);

/// Delivery latencies in nanoseconds: a log-linear histogram, 16 buckets per octave (about
/// 6% wide), written by one consumer thread (relaxed adds, no allocation).
struct Latencies {
    buckets: Vec<AtomicU64>,
}

/// Buckets below 16 ns are 1 ns wide; above, 16 per octave up to 2^44 ns.
const LATENCY_BUCKETS: usize = 16 + 41 * 16;

impl Latencies {
    fn new() -> Self {
        Self {
            buckets: (0..LATENCY_BUCKETS).map(|_| AtomicU64::new(0)).collect(),
        }
    }

    fn index(ns: u64) -> usize {
        if ns < 16 {
            return ns as usize;
        }
        let octave = 63 - u64::from(ns.leading_zeros()); // ≥ 4
        let sub = (ns >> (octave - 4)) & 15;
        (16 + (octave - 4) * 16 + sub).min(LATENCY_BUCKETS as u64 - 1) as usize
    }

    /// The middle of bucket `index`, in ns.
    fn value(index: usize) -> f64 {
        if index < 16 {
            return index as f64;
        }
        let octave = (index - 16) / 16 + 4;
        let sub = ((index - 16) % 16) as u64;
        let low = (16 + sub) << (octave - 4);
        let width = 1u64 << (octave - 4);
        low as f64 + width as f64 / 2.0
    }

    #[inline]
    fn record(&self, sent_at: u64, now: u64) {
        if sent_at == 0 {
            return;
        }
        let ns = (now.saturating_sub(sent_at) as f64 / ticks_per_ns()) as u64;
        self.buckets[Self::index(ns)].fetch_add(1, Ordering::Relaxed);
    }

    fn counts(&self) -> Vec<u64> {
        self.buckets
            .iter()
            .map(|bucket| bucket.load(Ordering::Relaxed))
            .collect()
    }
}

/// Percentiles of a latency histogram's counts: `(count, p50, p99, p99.9)` in ns.
fn percentiles(counts: &[u64]) -> Option<(u64, f64, f64, f64)> {
    let total: u64 = counts.iter().sum();
    if total == 0 {
        return None;
    }
    let at = |quantile: f64| {
        let rank = ((total as f64) * quantile).ceil().max(1.0) as u64;
        let mut seen = 0;
        for (index, &count) in counts.iter().enumerate() {
            seen += count;
            if seen >= rank {
                return Latencies::value(index);
            }
        }
        Latencies::value(counts.len() - 1)
    };
    Some((total, at(0.50), at(0.99), at(0.999)))
}

/// Counts what a consumer received and stamps the moment it reached the target.
struct Completion {
    received: Padded<AtomicU64>,
    target: AtomicU64,
    done_at: AtomicU64,
    /// Batches handed to mvx's dispatcher (a diagnostic; mvx only).
    batches: AtomicU64,
    /// Units counted per event (bytes for a line writer, 1 elsewhere).
    unit: u64,
    /// Send-to-receive latencies of stamped events.
    latencies: Latencies,
}

impl Completion {
    fn new(unit: u64) -> Arc<Self> {
        Arc::new(Self {
            received: Padded(AtomicU64::new(0)),
            target: AtomicU64::new(0),
            done_at: AtomicU64::new(0),
            batches: AtomicU64::new(0),
            unit,
            latencies: Latencies::new(),
        })
    }

    /// Records the latency of an event stamped `sent_at`, received now.
    #[inline]
    fn received_stamped(&self, sent_at: u64) {
        if sent_at != 0 {
            self.latencies.record(sent_at, ticks());
        }
    }

    /// Expects an unknown number of events (lossy mode): the target is set by
    /// [`expect_total`](Self::expect_total) once the producers are done.
    fn arm_unknown(&self) {
        self.done_at.store(0, Ordering::Release);
        self.target.store(u64::MAX, Ordering::Release);
    }

    /// Sets the target to `events` more than were received before [`arm_unknown`]: `before`.
    /// If the consumer is there already, the moment is now (an upper bound).
    fn expect_total(&self, before: u64, events: u64) {
        let target = before + events * self.unit;
        // SeqCst here and in `add`: the store of the target and the load of the count, and
        // the consumer's add and its load of the target, are a store-load handshake; with
        // weaker orders both could miss the other, and the run would wait for ever (seen
        // with the rtrb peer, whose consumer finishes as the producers do).
        self.target.store(target, Ordering::SeqCst);
        if self.received.0.load(Ordering::SeqCst) >= target {
            let _ = self
                .done_at
                .compare_exchange(0, now_ns(), Ordering::AcqRel, Ordering::Acquire);
        }
    }

    /// Called by the consumer for `units` received.
    #[inline]
    fn add(&self, units: u64) {
        pin_consumer_once();
        let before = self.received.0.fetch_add(units, Ordering::SeqCst);
        let target = self.target.load(Ordering::SeqCst);
        if before < target && before + units >= target {
            let _ = self
                .done_at
                .compare_exchange(0, now_ns(), Ordering::AcqRel, Ordering::Acquire);
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

/// A bounded crossbeam channel of `CAPACITY` and its consumer thread, which counts what it
/// receives into `completion` (and the latency of stamped events) until the channel closes.
fn crossbeam_consumer(
    completion: &Arc<Completion>,
) -> (crossbeam_channel::Sender<Event>, thread::JoinHandle<()>) {
    let (tx, rx) = crossbeam_channel::bounded::<Event>(CAPACITY);
    let counted = completion.clone();
    let consumer = thread::spawn(move || {
        while let Ok(event) = rx.recv() {
            counted.received_stamped(black_box(event).sent_at);
            counted.add(1);
        }
    });
    (tx, consumer)
}

/// The consumer thread of the bare rings: reads each ring a chunk at a time, as mvx's driver
/// reads its lanes, and counts each chunk into `completion` (and the latency of stamped
/// events) like mvx's no-op backend counts a batch. A ring has no wake-up: with every ring
/// empty the thread spins a little, then yields, and never parks. It ends once every
/// producer is gone and its ring drained.
fn rtrb_consumer(
    completion: &Arc<Completion>,
    mut rings: Vec<rtrb::Consumer<Event>>,
) -> thread::JoinHandle<()> {
    let counted = completion.clone();
    thread::Builder::new()
        .name("bench-rtrb-consumer".to_owned())
        .spawn(move || {
            let mut spins = 0;
            loop {
                // Looked at before the reads: a producer's last push comes before its drop,
                // so a ring found abandoned here is empty once read below.
                let abandoned = rings.iter().all(rtrb::Consumer::is_abandoned);
                let mut received = 0;
                for ring in &mut rings {
                    let slots = ring.slots();
                    let chunk = ring
                        .read_chunk(slots)
                        .expect("the slots just counted are readable");
                    for event in chunk {
                        counted.received_stamped(black_box(event).sent_at);
                    }
                    if slots > 0 {
                        counted.add(slots as u64);
                    }
                    received += slots;
                }
                if received > 0 {
                    spins = 0;
                } else if abandoned {
                    break;
                } else {
                    backoff(&mut spins);
                }
            }
        })
        .expect("spawn the rtrb consumer thread")
}

/// mvx's no-op backend: counts the events it is handed.
struct CountingDispatch(Arc<Completion>);

impl Dispatch<Event> for CountingDispatch {
    async fn dispatch(&mut self, event: Event) -> Result<(), BoxError> {
        self.0.received_stamped(black_box(event).sent_at);
        self.0.add(1);
        Ok(())
    }

    async fn dispatch_batch(&mut self, events: &mut Vec<Event>) -> Result<(), BatchError> {
        let count = events.len() as u64;
        if events.first().is_some_and(|event| event.sent_at != 0) {
            let now = ticks();
            for event in events.iter() {
                self.0.latencies.record(event.sent_at, now);
            }
        }
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
        if buf.len() % LINE_LEN == 0 {
            let now = ticks();
            for line in buf.chunks_exact(LINE_LEN) {
                let sent_at = u64::from_le_bytes(line[8..16].try_into().expect("8 bytes"));
                self.0.latencies.record(sent_at, now);
            }
        }
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
    /// Back to back; a full queue drops the event.
    Lossy,
    /// Back to back; a full queue is waited for.
    Block,
    /// Paced by a little work per event; a full queue is waited for; latency measured.
    Paced,
}

impl Regime {
    const ALL: [Self; 3] = [Self::Lossy, Self::Block, Self::Paced];
}

impl fmt::Display for Regime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Lossy => "lossy",
            Self::Block => "block",
            Self::Paced => "paced",
        })
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Peer {
    Mvx,
    /// mvx with its poll budget and loss reports off (`HANDOFF_BASELINE`).
    MvxBaseline,
    /// A bare `rtrb` ring per producer and one consumer thread that spins and yields over
    /// them: the floor of what an mvx lane's handoff can cost, not a usable sink (no
    /// wake-up, no accounting of what is lost, no lifecycle). Lossy and block only: paced,
    /// a consumer that never sleeps would be measured against consumers that are woken.
    Rtrb,
    Crossbeam,
    AsyncChannel,
    TracingAppender,
    SlogAsync,
}

impl Peer {
    const ALL: [Self; 6] = [
        Self::Mvx,
        Self::Rtrb,
        Self::Crossbeam,
        Self::AsyncChannel,
        Self::TracingAppender,
        Self::SlogAsync,
    ];

    /// The peers of this run in `regime`: [`ALL`](Self::ALL), and `mvx-baseline` right
    /// after `mvx` with `HANDOFF_BASELINE`; slog-async is not measured lossy, rtrb not paced.
    fn measured(regime: Regime) -> Vec<Self> {
        let mut peers = Self::ALL.to_vec();
        if baseline() {
            peers.insert(1, Self::MvxBaseline);
        }
        match regime {
            Regime::Lossy => peers.retain(|&peer| peer != Self::SlogAsync),
            Regime::Block => {}
            Regime::Paced => peers.retain(|&peer| peer != Self::Rtrb),
        }
        peers
    }

    fn name(self) -> &'static str {
        match self {
            Self::Mvx => "mvx",
            Self::MvxBaseline => "mvx-baseline",
            Self::Rtrb => "rtrb",
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
    /// Events the peer took (returned `true`) in the current batch.
    accepted: AtomicU64,
}

/// What one batch measured.
#[derive(Clone, Copy, Debug)]
struct Sample {
    events: u64,
    /// Events the consumer received: `events` but in the lossy mode.
    delivered: u64,
    send_ns: u64,
    end_to_end_ns: u64,
    producer_allocs: u64,
    total_allocs: u64,
}

/// Lines a lossy peer dropped so far without telling the producer (tracing-appender).
type DroppedCount = Box<dyn Fn() -> u64 + Send + Sync>;

struct Rig {
    producers: usize,
    shared: Arc<RigShared>,
    completion: Arc<Completion>,
    threads: Vec<JoinHandle<()>>,
    dropped: Option<DroppedCount>,
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
            accepted: AtomicU64::new(0),
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
                            let (send_ns, accepted) =
                                run_batch(&mut producer, index as u64, &shared);
                            shared.send_ns.fetch_add(send_ns, Ordering::AcqRel);
                            shared.accepted.fetch_add(accepted, Ordering::AcqRel);
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
            dropped: None,
        }
    }

    /// Counts as lost, in the lossy mode, what `dropped` says was dropped.
    fn with_dropped(mut self, dropped: DroppedCount) -> Self {
        self.dropped = Some(dropped);
        self
    }

    /// Runs one batch on every producer; returns what it measured.
    fn run(&self) -> Sample {
        let events = self.producers as u64 * PER_PRODUCER;
        let lossy = self.shared.regime == Regime::Lossy;
        let received_before = self.completion.received.0.load(Ordering::Acquire);
        if lossy {
            self.completion.arm_unknown();
        } else {
            self.completion.arm(events);
        }
        self.shared.first_send.store(u64::MAX, Ordering::Release);
        self.shared.send_ns.store(0, Ordering::Release);
        self.shared.producer_allocs.store(0, Ordering::Release);
        self.shared.accepted.store(0, Ordering::Release);
        let dropped_before = self.dropped.as_ref().map_or(0, |dropped| dropped());
        let other_before = counting_allocator::all();

        self.shared.start.wait();
        self.shared.done.wait();
        let mut delivered = events;
        if lossy {
            let dropped = self.dropped.as_ref().map_or(0, |dropped| dropped()) - dropped_before;
            delivered = self.shared.accepted.load(Ordering::Acquire) - dropped;
            self.completion
                .expect_total(received_before, delivered.max(1));
        }
        let done_at = self.completion.wait();

        let producer_allocs = self.shared.producer_allocs.load(Ordering::Acquire);
        let other_allocs = counting_allocator::all() - other_before;
        let first_send = self.shared.first_send.load(Ordering::Acquire);
        Sample {
            events,
            delivered,
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

/// Sends one batch; returns the nanoseconds spent inside `send` and the events taken.
fn run_batch<P: Producer>(producer: &mut P, index: u64, shared: &RigShared) -> (u64, u64) {
    let base = index << 40;
    match shared.regime {
        Regime::Lossy | Regime::Block => {
            let start = Instant::now();
            shared.first_send.fetch_min(now_ns(), Ordering::AcqRel);
            let mut accepted = 0;
            for i in 0..PER_PRODUCER {
                accepted += u64::from(producer.send(Event::new(base | i)));
            }
            (start.elapsed().as_nanos() as u64, accepted)
        }
        Regime::Paced => paced_batch(producer, base, shared.work_iterations, Some(shared)),
    }
}

/// The paced loop: work, then one timed `send` of an event stamped with its send time, per
/// event. Returns the nanoseconds inside `send` (timer overhead included) and the events
/// taken.
fn paced_batch<P: Producer>(
    producer: &mut P,
    base: u64,
    work_iterations: u32,
    shared: Option<&RigShared>,
) -> (u64, u64) {
    let start = Instant::now();
    let start_ticks = ticks();
    if let Some(shared) = shared {
        shared.first_send.fetch_min(now_ns(), Ordering::AcqRel);
    }
    let mut in_send = 0u64;
    let mut accepted = 0;
    for i in 0..PER_PRODUCER {
        work(work_iterations);
        let before = ticks();
        accepted += u64::from(producer.send(Event::stamped(base | i, before)));
        in_send += ticks().wrapping_sub(before);
    }
    let total_ticks = ticks().wrapping_sub(start_ticks).max(1);
    let total_ns = start.elapsed().as_nanos();
    (
        (u128::from(in_send) * total_ns / u128::from(total_ticks)) as u64,
        accepted,
    )
}

/// The cost of timing one call in the paced loop, in ns (median of a few runs).
fn timer_overhead_ns() -> f64 {
    static OVERHEAD: OnceLock<f64> = OnceLock::new();
    *OVERHEAD.get_or_init(|| {
        let mut runs: Vec<f64> = (0..5)
            .map(|_| {
                paced_batch(&mut NoopProducer, 0, work_iterations(), None).0 as f64
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
    key: Key,
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
        if let Some(rig) = &self.rig {
            record_latencies(self.key, rig.completion.latencies.counts());
        }
        // Producers first: that drops their handles, which lets the consumers end.
        drop(self.rig.take());
        if let Some(teardown) = self.teardown.take() {
            teardown();
        }
    }
}

fn setup(peer: Peer, producers: usize, regime: Regime) -> Setup {
    let key = (regime, peer, producers);
    let lossy = regime == Regime::Lossy;
    match peer {
        Peer::Mvx | Peer::MvxBaseline => {
            let completion = Completion::new(1);
            let mut config = SinkConfig::default()
                .namespace("bench-handoff")
                .queue_capacity(CAPACITY)
                .overflow(if lossy {
                    OverflowPolicy::Drop
                } else {
                    OverflowPolicy::Block
                });
            if peer == Peer::MvxBaseline {
                config = config.poll_budget(None).loss_report_interval(None);
            }
            let (sink, terminator): (AsyncSink<Event>, Terminator) =
                mvx::rt::thread::create(CountingDispatch(completion.clone()), config)
                    .expect("create the mvx sink");
            let counted = completion.clone();
            let rig = Rig::new(producers, regime, completion, || MvxProducer(sink.clone()));
            Setup {
                key,
                rig: Some(rig),
                teardown: Some(Box::new(move || {
                    terminator.terminate().expect("terminate the mvx sink");
                    let stats = sink.stats();
                    assert_eq!(stats.accepted, stats.delivered, "mvx lost events: {stats}");
                    record_mvx_stats(
                        key,
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
            let (tx, consumer) = crossbeam_consumer(&completion);
            let rig = Rig::new(producers, regime, completion, || CrossbeamProducer {
                tx: tx.clone(),
                lossy,
            });
            drop(tx);
            Setup {
                key,
                rig: Some(rig),
                teardown: Some(Box::new(move || {
                    consumer.join().expect("crossbeam consumer panicked");
                })),
            }
        }
        Peer::Rtrb => {
            let completion = Completion::new(1);
            let (mut rings, consumers): (Vec<_>, Vec<_>) = (0..producers)
                .map(|_| rtrb::RingBuffer::<Event>::new(CAPACITY))
                .unzip();
            let consumer = rtrb_consumer(&completion, consumers);
            let rig = Rig::new(producers, regime, completion, || RtrbProducer {
                ring: rings.pop().expect("a ring for every producer"),
                lossy,
            });
            Setup {
                key,
                rig: Some(rig),
                teardown: Some(Box::new(move || {
                    consumer.join().expect("rtrb consumer panicked");
                })),
            }
        }
        Peer::AsyncChannel => {
            let completion = Completion::new(1);
            let (tx, rx) = async_channel::bounded::<Event>(CAPACITY);
            let counted = completion.clone();
            let consumer = thread::spawn(move || {
                while let Ok(event) = futures::executor::block_on(rx.recv()) {
                    counted.received_stamped(black_box(event).sent_at);
                    counted.add(1);
                }
            });
            let rig = Rig::new(producers, regime, completion, || AsyncChannelProducer {
                tx: tx.clone(),
                lossy,
            });
            drop(tx);
            Setup {
                key,
                rig: Some(rig),
                teardown: Some(Box::new(move || {
                    consumer.join().expect("async-channel consumer panicked");
                })),
            }
        }
        Peer::TracingAppender => {
            let completion = Completion::new(LINE_LEN as u64);
            let (writer, guard) = tracing_appender::non_blocking::NonBlockingBuilder::default()
                .lossy(lossy)
                .buffered_lines_limit(CAPACITY)
                .thread_name("bench-tracing-appender")
                .finish(CountingWriter(completion.clone()));
            let mut line = [b'x'; LINE_LEN];
            line[LINE_LEN - 1] = b'\n';
            let rig = Rig::new(producers, regime, completion, || TracingProducer {
                writer: writer.clone(),
                line,
            });
            let errors = writer.error_counter();
            let rig = rig.with_dropped(Box::new(move || errors.dropped_lines() as u64));
            drop(writer);
            Setup {
                key,
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
                key,
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

fn latencies() -> &'static Mutex<BTreeMap<Key, Vec<u64>>> {
    static LATENCIES: OnceLock<Mutex<BTreeMap<Key, Vec<u64>>>> = OnceLock::new();
    LATENCIES.get_or_init(Mutex::default)
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

fn record_latencies(key: Key, counts: Vec<u64>) {
    if counts.iter().any(|&count| count > 0) {
        latencies()
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .insert(key, counts);
    }
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
    /// Median end-to-end million events per second (events delivered).
    meps: f64,
    /// Share of the events sent that were delivered (below 1 only in the lossy mode).
    delivered_share: f64,
    /// Allocations on producer threads, over every iteration.
    producer_allocs: u64,
    /// Allocations on every thread, over every iteration.
    total_allocs: u64,
    events: u64,
    samples: usize,
    /// Delivery latency: events measured, p50, p99, p99.9 in ns (paced mode).
    latency: Option<(u64, f64, f64, f64)>,
}

fn figures(regime: Regime, samples: &[Sample], latency: Option<&Vec<u64>>) -> Figures {
    let overhead = match regime {
        Regime::Lossy | Regime::Block => 0.0,
        Regime::Paced => timer_overhead_ns(),
    };
    let mut raw: Vec<f64> = samples
        .iter()
        .map(|s| s.send_ns as f64 / s.events as f64)
        .collect();
    let mut meps: Vec<f64> = samples
        .iter()
        .map(|s| s.delivered as f64 * 1e3 / s.end_to_end_ns as f64)
        .collect();
    let events: u64 = samples.iter().map(|s| s.events).sum();
    let delivered: u64 = samples.iter().map(|s| s.delivered).sum();
    let producer_allocs: u64 = samples.iter().map(|s| s.producer_allocs).sum();
    let total_allocs: u64 = samples.iter().map(|s| s.total_allocs).sum();
    let send_ns_raw = median(&mut raw);
    Figures {
        send_ns: (send_ns_raw - overhead).max(0.0),
        send_ns_raw,
        meps: median(&mut meps),
        delivered_share: delivered as f64 / events.max(1) as f64,
        producer_allocs,
        total_allocs,
        events,
        samples: samples.len(),
        latency: latency.and_then(|counts| percentiles(counts)),
    }
}

fn verdict(met: bool) -> &'static str {
    if met { "met" } else { "NOT met" }
}

/// A latency in µs with two decimals.
fn micros(ns: f64) -> String {
    format!("{:.2}", ns / 1e3)
}

fn print_summary(idle: Option<IdleCpu>) {
    let results = results()
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .clone();
    let sink_stats = mvx_stats()
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .clone();
    let latency = latencies()
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .clone();
    let all: BTreeMap<Key, Figures> = results
        .iter()
        .map(|(&key, samples)| (key, figures(key.0, samples, latency.get(&key))))
        .collect();

    if !all.is_empty() {
        print_figures(&all, &sink_stats);
        print_design_targets(&all);
        print_issue_17_goals(&all);
        print_issue_17_floor(&all);
        if baseline() {
            print_baseline(&all);
        }
    }
    if let Some(idle) = idle {
        print_idle(idle);
    }
}

fn print_figures(all: &BTreeMap<Key, Figures>, sink_stats: &BTreeMap<Key, MvxStats>) {
    eprintln!();
    eprintln!(
        "== handoff summary: {PER_PRODUCER} events per producer per iteration, capacity {CAPACITY}, \
         paced work {:.0} ns/event, paced timer overhead {:.1} ns/event (subtracted), \
         {:.3} ticks/ns, {} CPUs, {} ==",
        pace_ns(),
        timer_overhead_ns(),
        ticks_per_ns(),
        cpus(),
        if pinning() {
            "pinned (HANDOFF_PIN)"
        } else {
            "unpinned"
        }
    );
    eprintln!(
        "| mode | peer | producers | producer ns/event | (raw) | end-to-end M events/s | \
         delivered | latency p50 µs | p99 µs | p99.9 µs | producer allocs/event | \
         overall allocs/event | allocs producer/overall | events | iterations |"
    );
    eprintln!("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|");
    for (&(regime, peer, producers), f) in all {
        let (p50, p99, p999) = f.latency.map_or_else(
            || ("n/a".to_owned(), "n/a".to_owned(), "n/a".to_owned()),
            |(_, p50, p99, p999)| (micros(p50), micros(p99), micros(p999)),
        );
        eprintln!(
            "| {regime} | {} | {producers} | {:.1} | {:.1} | {:.2} | {:.1}% | {p50} | {p99} | \
             {p999} | {:.6} | {:.6} | {}/{} | {} | {} |",
            peer.name(),
            f.send_ns,
            f.send_ns_raw,
            f.meps,
            f.delivered_share * 100.0,
            f.producer_allocs as f64 / f.events as f64,
            f.total_allocs as f64 / f.events as f64,
            f.producer_allocs,
            f.total_allocs,
            f.events,
            f.samples
        );
    }
    for ((regime, peer, producers), stats) in sink_stats {
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
}

/// `key's peer / peer` of `f` (mvx's, or the floor's), with a verdict against `target`
/// (none for a NaN target).
fn ratio(
    all: &BTreeMap<Key, Figures>,
    key: Key,
    peer: Peer,
    target: f64,
    at_most: bool,
    f: fn(&Figures) -> Option<f64>,
) -> String {
    let (regime, _, producers) = key;
    let (Some(measured), Some(other)) = (
        all.get(&key).and_then(f),
        all.get(&(regime, peer, producers)).and_then(f),
    ) else {
        return "n/a".to_owned();
    };
    let r = measured / other;
    if target.is_nan() {
        return format!("{r:.2}×");
    }
    let met = if at_most { r <= target } else { r >= target };
    format!("{r:.2}× ({})", verdict(met))
}

fn print_design_targets(all: &BTreeMap<Key, Figures>) {
    eprintln!();
    eprintln!("== mvx against the DESIGN.md section 7 targets of issue 3 (same run) ==");
    eprintln!(
        "| mode | producers | producer ns vs crossbeam (≤ 1.5×) | e2e vs crossbeam (≥ 0.5×) | \
         e2e vs tracing-appender (≥ 3×) | e2e vs slog-async (≥ 5×) | producer allocs (0 per \
         event; a lane's registration allocates a few times per thread) | \
         overall allocs (≤ 0.001) |"
    );
    eprintln!("|---|---|---|---|---|---|---|---|");
    for regime in Regime::ALL {
        for producers in PRODUCERS {
            let key = (regime, Peer::Mvx, producers);
            let Some(mvx) = all.get(&key) else { continue };
            let send = |f: &Figures| Some(f.send_ns);
            let meps = |f: &Figures| Some(f.meps);
            let total_allocs = mvx.total_allocs as f64 / mvx.events as f64;
            eprintln!(
                "| {regime} | {producers} | {} | {} | {} | {} | {} in {} events ({}) | {:.6} ({}) |",
                ratio(all, key, Peer::Crossbeam, 1.5, true, send),
                ratio(all, key, Peer::Crossbeam, 0.5, false, meps),
                ratio(all, key, Peer::TracingAppender, 3.0, false, meps),
                ratio(all, key, Peer::SlogAsync, 5.0, false, meps),
                mvx.producer_allocs,
                mvx.events,
                verdict(mvx.producer_allocs <= REGISTRATION_ALLOCS * producers as u64),
                total_allocs,
                verdict(total_allocs <= 0.001),
            );
        }
    }
}

fn print_issue_17_goals(all: &BTreeMap<Key, Figures>) {
    eprintln!();
    eprintln!("== mvx against the goals of issue 17 (same run) ==");
    eprintln!(
        "| mode | producers | producer ns vs crossbeam (≤ 0.5×) | mvx per-producer ns, 2 vs 1 \
         producers (≤ 1.2×) | e2e vs crossbeam (≥ 1.5×, lossy and block) | latency p50 vs \
         crossbeam (≤ 1×, paced) | p99 vs crossbeam | p99.9 vs crossbeam | p50 vs \
         tracing-appender |"
    );
    eprintln!("|---|---|---|---|---|---|---|---|---|");
    for regime in Regime::ALL {
        for producers in PRODUCERS {
            let key = (regime, Peer::Mvx, producers);
            if !all.contains_key(&key) {
                continue;
            }
            let send = |f: &Figures| Some(f.send_ns);
            let meps = |f: &Figures| Some(f.meps);
            let p50 = |f: &Figures| f.latency.map(|l| l.1);
            let p99 = |f: &Figures| f.latency.map(|l| l.2);
            let p999 = |f: &Figures| f.latency.map(|l| l.3);
            let scaling = if producers == 2 {
                match (all.get(&key), all.get(&(regime, Peer::Mvx, 1))) {
                    (Some(two), Some(one)) => {
                        let r = two.send_ns / one.send_ns;
                        format!("{r:.2}× ({})", verdict(r <= 1.2))
                    }
                    _ => "n/a".to_owned(),
                }
            } else {
                "-".to_owned()
            };
            let e2e = if regime == Regime::Paced {
                format!(
                    "{} (no goal)",
                    ratio(all, key, Peer::Crossbeam, f64::NAN, false, meps)
                )
            } else {
                ratio(all, key, Peer::Crossbeam, 1.5, false, meps)
            };
            eprintln!(
                "| {regime} | {producers} | {} | {scaling} | {e2e} | {} | {} | {} | {} |",
                ratio(all, key, Peer::Crossbeam, 0.5, true, send),
                ratio(all, key, Peer::Crossbeam, 1.0, true, p50),
                ratio(all, key, Peer::Crossbeam, f64::NAN, true, p99),
                ratio(all, key, Peer::Crossbeam, 1.0, true, p999),
                ratio(all, key, Peer::TracingAppender, f64::NAN, true, p50),
            );
        }
    }
}

/// The floor under issue 17's goals: a bare `rtrb` ring per producer against crossbeam, with
/// mvx beside it. The goals are mvx's; a ratio of the floor that misses one says no sink on
/// these rings reaches it on this machine.
fn print_issue_17_floor(all: &BTreeMap<Key, Figures>) {
    let rows: Vec<(Regime, usize)> = Regime::ALL
        .into_iter()
        .flat_map(|regime| PRODUCERS.map(|producers| (regime, producers)))
        .filter(|&(regime, producers)| all.contains_key(&(regime, Peer::Rtrb, producers)))
        .collect();
    if rows.is_empty() {
        return;
    }
    eprintln!();
    eprintln!(
        "== the floor of issue 17's goals: a bare rtrb ring per producer (no wake-up, no \
         accounting, no lifecycle) beside mvx and crossbeam (same run; \"met\": the floor \
         itself meets mvx's goal) =="
    );
    eprintln!(
        "| mode | producers | producer ns/event mvx / rtrb / crossbeam | rtrb producer ns vs \
         crossbeam (≤ 0.5×) | mvx producer ns vs rtrb | e2e M events/s mvx / rtrb / \
         crossbeam | rtrb e2e vs crossbeam (≥ 1.5×) | mvx e2e vs rtrb |"
    );
    eprintln!("|---|---|---|---|---|---|---|---|");
    let send = |f: &Figures| Some(f.send_ns);
    let meps = |f: &Figures| Some(f.meps);
    for (regime, producers) in rows {
        let side_by_side = |value: fn(&Figures) -> Option<f64>, decimals: usize| {
            [Peer::Mvx, Peer::Rtrb, Peer::Crossbeam]
                .map(|peer| {
                    all.get(&(regime, peer, producers))
                        .and_then(value)
                        .map_or_else(|| "n/a".to_owned(), |v| format!("{v:.decimals$}"))
                })
                .join(" / ")
        };
        let floor = (regime, Peer::Rtrb, producers);
        let mvx = (regime, Peer::Mvx, producers);
        eprintln!(
            "| {regime} | {producers} | {} | {} | {} | {} | {} | {} |",
            side_by_side(send, 1),
            ratio(all, floor, Peer::Crossbeam, 0.5, true, send),
            ratio(all, mvx, Peer::Rtrb, f64::NAN, true, send),
            side_by_side(meps, 2),
            ratio(all, floor, Peer::Crossbeam, 1.5, false, meps),
            ratio(all, mvx, Peer::Rtrb, f64::NAN, false, meps),
        );
    }
}

fn print_baseline(all: &BTreeMap<Key, Figures>) {
    eprintln!();
    eprintln!(
        "== the cost of the poll budget and the loss reports: mvx (both on) against \
         mvx-baseline (both off), same run =="
    );
    eprintln!(
        "| mode | producers | producer ns/event mvx / baseline (≤ 1.10×) | \
         end-to-end M events/s mvx / baseline (≥ 0.90×) |"
    );
    eprintln!("|---|---|---|---|");
    for regime in Regime::ALL {
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
}

// ---------------------------------------------------------------------------------------
// The idle driver
// ---------------------------------------------------------------------------------------

/// What the idle driver's thread used while its sink had nothing to do.
#[derive(Clone, Copy, Debug)]
struct IdleCpu {
    interval: Duration,
    /// CPU time of the driver's thread over the interval.
    driver: Duration,
    /// CPU time of the whole process over the interval (the main thread sleeps).
    process: Duration,
}

/// How long the idle driver is watched: `HANDOFF_IDLE_SECS`, 10 s unless set; 0 skips it.
fn idle_interval() -> Duration {
    let seconds = std::env::var("HANDOFF_IDLE_SECS")
        .ok()
        .and_then(|value| value.parse::<u64>().ok())
        .unwrap_or(10);
    Duration::from_secs(seconds)
}

/// A started sink on its own thread (the default configuration: poll budget and loss
/// reports on), a thousand events logged and flushed, then nothing for `interval`: the CPU
/// time its driver's thread and the whole process use meanwhile.
fn idle_driver_cpu(interval: Duration) -> Option<IdleCpu> {
    const THREAD: &str = "mvx-bench-idle";
    let completion = Completion::new(1);
    let config = SinkConfig::default().namespace("bench-idle");
    let (sink, terminator): (AsyncSink<Event>, Terminator) =
        mvx::rt::thread::create(CountingDispatch(completion), config)
            .expect("create the idle sink");
    for id in 0..1_000 {
        let _ = sink.log(Event::new(id));
    }
    sink.flush_blocking().expect("flush the idle sink");
    let process_before = process_cpu_time();
    let Some(before) = cpu_time::named_threads_cpu_time(THREAD) else {
        eprintln!("idle driver: no thread named {THREAD} in /proc/self/task");
        return None;
    };
    thread::sleep(interval);
    let after = cpu_time::named_threads_cpu_time(THREAD)?;
    let process = process_cpu_time().saturating_sub(process_before);
    terminator.terminate().expect("terminate the idle sink");
    Some(IdleCpu {
        interval,
        driver: after.saturating_sub(before),
        process,
    })
}

/// The CPU time of the whole process so far (`getrusage(RUSAGE_SELF)`).
fn process_cpu_time() -> Duration {
    // SAFETY: `rusage` is plain data, and `getrusage` writes one through the pointer.
    let usage = unsafe {
        let mut usage: libc::rusage = std::mem::zeroed();
        libc::getrusage(libc::RUSAGE_SELF, &mut usage);
        usage
    };
    let time = |t: libc::timeval| {
        Duration::from_secs(t.tv_sec as u64) + Duration::from_micros(t.tv_usec as u64)
    };
    time(usage.ru_utime) + time(usage.ru_stime)
}

fn print_idle(idle: IdleCpu) {
    let share = idle.driver.as_secs_f64() / idle.interval.as_secs_f64();
    eprintln!();
    eprintln!("== an idle sink's driver (issue 17: ≤ 1% of a core) ==");
    eprintln!(
        "driver thread: {:.1} ms of CPU over {:.0?} = {:.3}% of a core ({}); whole process \
         meanwhile: {:.1} ms (the clock-tick resolution of /proc is 10 ms)",
        idle.driver.as_secs_f64() * 1e3,
        idle.interval,
        share * 100.0,
        verdict(share <= 0.01),
        idle.process.as_secs_f64() * 1e3,
    );
    eprintln!();
}

// ---------------------------------------------------------------------------------------
// The wake-up path
// ---------------------------------------------------------------------------------------

/// The wake-up measurement's streams: the gap between two events and how many events per
/// peer. Each gap is far longer than mvx's driver spins (a few microseconds) before it
/// parks, or crossbeam's `recv` before it blocks. At 200 µs mvx's driver mostly naps (a park
/// within a millisecond of one made exact by the heavy barrier, see `src/sink/driver.rs`);
/// at 2 ms every park is exact.
const WAKE_STREAMS: [(Duration, u64); 2] = [
    (Duration::from_micros(200), 2_000),
    (Duration::from_millis(2), 500),
];

/// A sparse stream's figures for one peer: delivery latency (send → receipt) and the
/// producer's cost of the send that wakes the consumer, each a latency histogram's counts.
struct WakeUp {
    peer: &'static str,
    gap: Duration,
    delivery: Vec<u64>,
    send: Vec<u64>,
}

/// The wake-up path (event-listener notify → park/unpark for mvx, crossbeam's own for
/// crossbeam): for each of `WAKE_STREAMS`, stamped events that far apart, so that the
/// consumer has gone to sleep before each; every event is delivered before the next is sent.
fn wake_up_path() -> Vec<WakeUp> {
    WAKE_STREAMS
        .iter()
        .flat_map(|&(gap, events)| wake_up_stream(gap, events))
        .collect()
}

/// One stream of the wake-up measurement, into mvx and into crossbeam.
fn wake_up_stream(gap: Duration, events: u64) -> Vec<WakeUp> {
    let sparse = |peer: &'static str, completion: &Completion, send: &mut dyn FnMut(Event)| {
        let costs = Latencies::new();
        for id in 1..=events {
            completion.arm(1);
            thread::sleep(gap);
            let sent_at = ticks();
            send(Event::stamped(id, sent_at));
            costs.record(sent_at, ticks());
            completion.wait();
        }
        WakeUp {
            peer,
            gap,
            delivery: completion.latencies.counts(),
            send: costs.counts(),
        }
    };

    let completion = Completion::new(1);
    let config = SinkConfig::default().namespace("bench-wake");
    let (sink, terminator): (AsyncSink<Event>, Terminator) =
        mvx::rt::thread::create(CountingDispatch(completion.clone()), config)
            .expect("create the wake-up sink");
    let mvx = sparse("mvx", &completion, &mut |event| {
        let accepted = sink.log(event).map_err(|error| error.reason());
        assert_eq!(accepted, Ok(mvx::queue::LogOutcome::Accepted));
    });
    terminator.terminate().expect("terminate the wake-up sink");

    let completion = Completion::new(1);
    let (tx, consumer) = crossbeam_consumer(&completion);
    let crossbeam = sparse("crossbeam", &completion, &mut |event| {
        tx.try_send(event).expect("the channel has room");
    });
    drop(tx);
    consumer.join().expect("crossbeam consumer panicked");
    vec![mvx, crossbeam]
}

fn print_wake_up(figures: &[WakeUp]) {
    eprintln!("== the wake-up path: sparse streams, the consumer asleep before each event ==");
    eprintln!(
        "| gap | peer | delivery p50 µs | p99 µs | p99.9 µs | send (wakes the consumer) p50 ns | p99 ns |"
    );
    eprintln!("|---|---|---|---|---|---|---|");
    for wake in figures {
        let (Some((_, d50, d99, d999)), Some((_, s50, s99, _))) =
            (percentiles(&wake.delivery), percentiles(&wake.send))
        else {
            continue;
        };
        eprintln!(
            "| {:?} | {} | {:.2} | {:.2} | {:.2} | {:.0} | {:.0} |",
            wake.gap,
            wake.peer,
            d50 / 1e3,
            d99 / 1e3,
            d999 / 1e3,
            s50,
            s99
        );
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
        for peer in Peer::measured(regime) {
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
    ticks_per_ns();
    work_iterations();
    pace_ns();
    timer_overhead_ns();

    let mut criterion = Criterion::default().configure_from_args();
    for regime in Regime::ALL {
        handoff(&mut criterion, regime);
    }
    criterion.final_summary();
    let interval = idle_interval();
    let idle = (!interval.is_zero())
        .then(|| idle_driver_cpu(interval))
        .flatten();
    print_summary(idle);
    if std::env::var_os("HANDOFF_WAKE").is_none_or(|value| value != "0") {
        print_wake_up(&wake_up_path());
    }
}
