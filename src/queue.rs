//! Bounded queue accounting: the pending-event limit, overflow policies and counters.
//!
//! (For maintainers: one concept, the bounded queue and its exact counters, the lanes'
//! rings, counts and seals in `queue/lanes.rs`, its tests in `queue/tests.rs`.)
//!
//! A sink's queue is a set of *lanes*: one bounded single-producer ring per producer thread
//! (and sink), `rtrb`'s ring. A thread's first event for a sink registers its lane: the ring
//! is allocated then, once (see [Allocation](#allocation)); every later event of that thread
//! goes into its own ring, which no other thread writes, so producers on different threads
//! share no cache line on the way in. The driver drains every lane, a chunk at a time; the
//! lanes of threads that have exited are drained like the others and then removed.
//!
//! *Pending* events are those accepted and not yet finished: queued, or handed to a
//! dispatch that has not returned. **The limit, `queue_capacity`, applies to each lane: the
//! pending events of one producer thread.** It is exact for that thread: its events are
//! refused (or dropped, or waited for) exactly when `queue_capacity` of them are pending,
//! whatever other threads do. A sink with `N` producer threads therefore holds at most
//! `N × queue_capacity` pending events (plus, for the rare producer without a lane of its
//! own, at most `queue_capacity` more in the sink's shared lane, below), and its rings take
//! `(N + 1) × queue_capacity` slots of memory. [`QueueStats::high_watermark`] is the
//! largest number of pending events of one lane, so it never exceeds the limit.
//!
//! A producer checks its lane's limit against its own count of the events it pushed and a
//! copy of what the driver finished of them, refreshed only when that bound says the limit
//! may be reached: an accepted event costs its producer a push into its own ring (two plain
//! stores), a plain store of its lane's count, and two reads of flags the driver sets
//! (driver parked, lane sealed) — no locked instruction, no write to a line another thread
//! writes. What makes those reads sure to see the flags a driver set just before it read
//! the counts is an asymmetric barrier: a compiler fence on the producer's side and, on the
//! driver's, Linux's `membarrier` system call, which the driver makes at most once a
//! millisecond before it parks and when it seals a lane at a stop (elsewhere, a `SeqCst`
//! fence on both sides; the `sync::barrier` module has the details, and [the
//! sink's](crate::sink#batches-over-latency) the naps between two such parks). A stop closes
//! admission; the driver then *seals* each lane, fixing its final count: an event counted
//! before the seal is dispatched, and so is one counted after it while the driver has not
//! taken the lane's last accepted event; one counted after that is taken back out of the
//! ring by its producer and handed back, so no event slips in behind a stop unseen
//! (`queue/lanes.rs` has the rules).
//!
//! **The shared lane.** Each sink also has one ring that any thread may push to, allocated
//! when the sink is created: it takes the events of a thread that has no lane of its own —
//! one whose thread-local storage is being torn down (an event logged from another
//! thread-local's destructor), or whose lane's ring the allocator refused. Its limit is its
//! ring: `queue_capacity` events queued, an event leaving it when the driver takes it.
//!
//! # Allocation
//!
//! A lane's ring is allocated on its thread's first event for the sink, and a few words of
//! thread-local bookkeeping with it; nothing is allocated per event after that. A thread
//! that exits frees its entry; the driver frees the ring once the lane is drained. A ring
//! the allocator refuses is not an abort: that thread's events go to the shared lane.
//!
//! # What happens to each event
//!
//! | outcome | counted as | the caller gets |
//! |---|---|---|
//! | accepted | `accepted`, later `delivered` or `failed` | `Ok(LogOutcome::Accepted)` |
//! | limit of the producer's lane reached, [`OverflowPolicy::Drop`] | `dropped` | `Ok(LogOutcome::Dropped)` |
//! | limit reached, [`OverflowPolicy::RaiseError`] | `refused` | the event, in `LogError::QueueOverflow` |
//! | limit reached, [`OverflowPolicy::Block`] | waits for room, then as accepted | `log()` blocks the thread meanwhile |
//! | limit reached, [`OverflowPolicy::Block`], and only the calling thread could make room | nothing | the event, at once, in `LogError::WouldDeadlock` ([which calls block](crate::sink#which-calls-block)) |
//! | limit still reached at the deadline of `send(..).wait_timeout(..)` / `wait_deadline(..)` | `refused` | the event, in `SendTimeoutError::TimedOut` |
//! | sink not `Starting`/`Running` | `refused` | the event, in `LogError::NotAccepting` |
//! | dispatch returned an error | `failed` | (the error is in `last_error()`) |
//! | dispatcher panicked, restarted by its [`RestartPolicy`](crate::sink::RestartPolicy) | `failed` (the events of the call that panicked), `restarts` | (the panic is in `last_error()`) |
//! | abandoned: stop timed out, dispatcher panicked, start hook failed or timed out, driver dropped | `failed` | (the reason is in the operation result and `last_error()`) |
//! | abandoned by a [`Terminator`](crate::rt::Terminator) past its deadline: queued, or in a dispatch that had not returned | `failed`, counted by the terminator; an abandoned event may still reach the backend | `TerminateError::TimedOut` from the terminator, `TerminateTimedOut` in the stop result and `last_error()` |
//!
//! So at every quiescent point `accepted == delivered + failed + pending`, on every path,
//! and after a stop `pending == 0`. A refused or dropped event was never accepted: it is in
//! none of those four. What was dropped, refused or failed is also handed to the
//! dispatcher, as a summary, in the sink's [loss reports](crate::sink::LossReport).
//!
//! # Checked with loom
//!
//! The core's concurrency — the lanes and their limit, a stop racing producers, the
//! driver's parking and wake-ups, lifecycle transitions and wait handles, the [`Terminator`](crate::rt::Terminator),
//! and the wake-up that blocked producers and flushes wait on — is model-checked with
//! [loom](https://docs.rs/loom): the models in `tests/loom_*.rs` drive the real sink,
//! driver and terminator (the crate's private `sync` module switches the core's primitives
//! to loom's under `--cfg loom`) through every interleaving within a small preemption
//! bound, one to six per model. README's CI section has the command. `rtrb`'s ring is
//! outside the models (its atomics are the standard library's, which loom does not
//! explore): the models check the lane's count, the seal and the wake-up around them, and
//! take the ring's own single-producer, single-consumer order from `rtrb` (a push is
//! visible to the consumer once its producer's count is; the producer writes the ring only
//! from its own thread, the consumer reads it only under the lane's lock). Under loom both
//! sides of the asymmetric barrier are `fence(SeqCst)`: the models check the handshakes
//! under the barrier's guarantee, which `membarrier(2)` gives, and the driver parks
//! without the short first park that only a clock could end.

mod lanes;

use std::fmt;

use event_listener::Event;

use self::lanes::{Lane, Lanes};

use crate::sync::barrier;
use crate::sync::{Arc, AtomicU8, AtomicU64, CachePadded, Mutex, Ordering, Signal, fence, lock};

/// The gate's flag: admission is closed, new events are handed back.
const CLOSED: u8 = 1;
/// The gate's flag: the driver is parked, or about to; a producer that counts an event
/// wakes it (and clears the flag).
const PARKED: u8 = 2;

/// The pending-event limit of a sink when none is configured.
///
/// It is the limit of each producer thread's lane, whose ring is allocated on the thread's
/// first event: a lane of `LogEvent`s with this capacity holds about 8,192 × 100 bytes.
/// Raise it for bursty producers, lower it for large events or many producer threads.
pub const DEFAULT_QUEUE_CAPACITY: usize = 8_192;

/// The largest capacity a sink accepts: 2^24 = 16,777,216 events, 2,048 times the default.
///
/// Each ring — the shared lane's, allocated when the sink is created, and each producer
/// thread's lane, allocated on its first event — is `capacity` slots of `size_of::<E>()`
/// bytes (`rtrb`'s ring: the events side by side, no per-slot stamp): 4 bytes a slot for a
/// `u32`, 96 for a `LogEvent` on 64-bit targets. At this maximum a ring of `u32`s takes 64
/// MiB and one of `LogEvent`s 1.5 GiB, which a machine that needs such a queue has; a
/// larger limit could not be honoured (2^36 `u32`s would be 256 GiB).
///
/// A larger `queue_capacity` is refused, and so is a ring the allocator cannot provide: the
/// sink is then created in `Failure`, with
/// [`SinkError::QueueAllocationFailed`](crate::error::SinkError::QueueAllocationFailed)
/// (see [`AsyncSink::new`](crate::sink::AsyncSink::new)); a producer thread's lane whose
/// ring the allocator refuses sends that thread's events to the shared lane. The memory is
/// asked for before a ring is built, so that a refusal is that error rather than an abort of the
/// process. (Under Linux's default overcommit policy the allocator refuses a ring larger
/// than the machine's memory and swap; one that fits that limit but not the free memory is
/// the kernel's to refuse when it is touched.)
pub const MAX_QUEUE_CAPACITY: usize = 1 << 24;

/// Why the ring of a sink's queue could not be allocated: in
/// [`SinkError::QueueAllocationFailed`](crate::error::SinkError::QueueAllocationFailed).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum AllocationFailure {
    /// The capacity is above [`MAX_QUEUE_CAPACITY`]; nothing was allocated.
    AboveMaximum,
    /// The allocator refused the ring's memory: `bytes` (the capacity times the size of a
    /// slot, saturating at `usize::MAX`).
    OutOfMemory {
        /// The size of the ring that was asked for.
        bytes: usize,
    },
}

impl fmt::Display for AllocationFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::AboveMaximum => write!(
                f,
                "the capacity is above the maximum of {MAX_QUEUE_CAPACITY} events"
            ),
            Self::OutOfMemory { bytes } => {
                write!(f, "the allocator refused the ring's {bytes} bytes")
            }
        }
    }
}

/// What `log()` does when the pending-event limit is reached.
///
/// `log()` returns at once under `RaiseError` (the default) and `Drop`; under `Block` it
/// blocks the thread until there is room.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum OverflowPolicy {
    /// Destroy the event, count it in `dropped`, return `Ok(LogOutcome::Dropped)`.
    Drop,
    /// Hand the event back in `LogError::QueueOverflow`; nothing is counted.
    #[default]
    RaiseError,
    /// Wait for room: while the limit is reached, `log()` blocks the calling thread
    /// (spinning briefly, then parked) until the driver finishes an event or the sink stops
    /// accepting. In async code use `send(event).await`, which waits without blocking the
    /// thread. The only policy under which `log()` blocks.
    Block,
}

/// What happened to an event given to `log()` without error.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[must_use = "an event may have been dropped"]
pub enum LogOutcome {
    /// Accepted: it will be dispatched (or counted as failed).
    Accepted,
    /// Dropped because the limit was reached under [`OverflowPolicy::Drop`].
    Dropped,
}

/// Counters of a sink's queue.
///
/// Each field is read with its own atomic load, so a snapshot taken while producers run
/// can be off by the events in flight between two loads; at a quiescent point it is exact
/// and `accepted == delivered + failed + pending`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct QueueStats {
    /// Events accepted by `log()` (and its variants).
    pub accepted: u64,
    /// Accepted events whose dispatch succeeded.
    pub delivered: u64,
    /// Accepted events whose dispatch failed, or that were abandoned.
    pub failed: u64,
    /// Events destroyed by [`OverflowPolicy::Drop`]; never accepted.
    pub dropped: u64,
    /// Events handed back to the caller: refused because the sink was not accepting, or
    /// because the limit was reached under [`OverflowPolicy::RaiseError`] (or at the
    /// deadline of a `send(..).wait_timeout(..)`); never accepted. A `send` or blocking
    /// `log` that waits for room is not refused while it waits. The one counter that still
    /// moves once the sink has ended: every later `log()` is refused, and counted.
    pub refused: u64,
    /// Accepted events not finished yet: queued or in dispatch.
    pub pending: u64,
    /// The pending-event limit of each producer thread's lane.
    pub capacity: usize,
    /// The largest number of pending events of one lane seen (never above `capacity`).
    pub high_watermark: usize,
    /// How often the dispatcher was restarted after a panic, under its
    /// [`RestartPolicy`](crate::sink::RestartPolicy) (a restart its `on_restart` hook
    /// refused included).
    pub restarts: u64,
}

impl fmt::Display for QueueStats {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "accepted={} delivered={} failed={} dropped={} refused={} pending={} capacity={} \
             high_watermark={} restarts={}",
            self.accepted,
            self.delivered,
            self.failed,
            self.dropped,
            self.refused,
            self.pending,
            self.capacity,
            self.high_watermark,
            self.restarts
        )
    }
}

/// The counters a loss report summarises, as running totals.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Losses {
    pub(crate) dropped: u64,
    pub(crate) refused: u64,
    pub(crate) failed: u64,
    pub(crate) restarts: u64,
}

/// What a push did with an event.
#[derive(Debug)]
pub(crate) enum Pushed<E> {
    /// In a lane: accepted.
    Accepted,
    /// The lane's limit is reached, and the caller asked for the event to be dropped: it
    /// is counted in `dropped`.
    Dropped,
    /// The lane's limit is reached: the event comes back.
    Full(E),
    /// The sink's admission is closed (its lanes' rings are): the event comes back.
    Closed(E),
}

/// What every push reads (the queue's `hot`).
struct Hot {
    /// `CLOSED` and `PARKED`: read around each push; written only by the driver, a stop
    /// and the producer that wakes the driver (see the lanes module).
    gate: AtomicU8,
    /// The pending-event limit of each lane.
    capacity: u64,
    /// Which sink this is, for the producers' thread-local lanes (never reused).
    id: u64,
}

/// Who counts the events taken from the lanes: the driver, until counting ends.
///
/// Counting ends when the sink ends without its driver: the driver is dropped
/// ([`Queue::abandon_all`]), or a terminator past its deadline ends the sink from outside
/// while the driver may be inside user code ([`Queue::end_counting`]). Whoever ends it
/// counts, under this lock, every event still queued or in dispatch as failed; the driver
/// takes events from the lanes and counts their outcome under the same lock, and refuses
/// to once counting has ended. So an event is counted once, by one of them, however the
/// driver's return from user code and the end interleave (`tests/loom_terminator.rs`).
/// The lock is never held while user code runs: events are dropped outside it.
#[derive(Debug)]
struct Claim {
    /// Events the driver took from the lanes and has not finished.
    in_dispatch: u64,
    /// Whether counting has ended: nothing is taken or counted any more.
    ended: bool,
    /// The lane the next batch starts with: batches go round the lanes, so that one
    /// producer's backlog does not hold the others' events back.
    next_lane: usize,
}

/// Counting has ended: the driver may neither take nor count events any more. Whoever
/// ended it counted them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Ended;

/// What [`Queue::end_counting`] counted as failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Abandoned {
    /// Events the driver had taken and not finished: in dispatch.
    pub(crate) in_dispatch: u64,
    /// Events still in the lanes.
    pub(crate) queued: u64,
}

impl Abandoned {
    pub(crate) fn total(self) -> u64 {
        self.in_dispatch + self.queued
    }
}

/// The lanes, the counters and the wake-ups of one sink.
pub(crate) struct Queue<E> {
    /// Every lane of the sink, the shared lane first; and whether admission is closed.
    lanes: Mutex<Lanes<E>>,
    /// The lane of producers without one of their own…
    shared_lane: Arc<Lane<E>>,
    /// …and its producing end, behind a lock: any thread may push there.
    shared_writer: Mutex<rtrb::Producer<E>>,
    /// What every push reads, on a line of its own: no write of the driver's between two
    /// pushes (a counter, a lock it takes for each batch) makes the next push miss it.
    hot: CachePadded<Hot>,
    /// Events finished (delivered + failed); written by the driver only.
    finished: CachePadded<AtomicU64>,
    /// The largest number of pending events of one lane seen; raised by producers, rarely.
    high_watermark: CachePadded<AtomicU64>,
    delivered: AtomicU64,
    failed: AtomicU64,
    /// Events handed back to their producer (written on the refusal path only).
    refused: AtomicU64,
    /// Restarts of the dispatcher (driver only).
    restarts: AtomicU64,
    /// Who counts the events taken from the lanes.
    claim: Mutex<Claim>,
    /// The events counted as failed when counting ended, until they are dropped.
    abandoned: Mutex<Vec<E>>,
    /// Wakes the driver.
    pub(crate) work: Event,
    /// Wakes producers waiting for room and flush waiters.
    pub(crate) progress: Signal,
}

impl<E> Queue<E> {
    /// An open queue with room for `capacity` pending events per lane (0 is taken as 1);
    /// the shared lane's ring is allocated here.
    ///
    /// # Errors
    ///
    /// [`AllocationFailure`] when `capacity` is above [`MAX_QUEUE_CAPACITY`] or the shared
    /// ring's memory cannot be allocated.
    pub(crate) fn new(capacity: usize) -> Result<Self, AllocationFailure> {
        let capacity = capacity.max(1);
        if capacity > MAX_QUEUE_CAPACITY {
            return Err(AllocationFailure::AboveMaximum);
        }
        let ring = lanes::ring(capacity).ok_or(AllocationFailure::OutOfMemory {
            bytes: capacity.saturating_mul(size_of::<E>()),
        })?;
        Ok(Self::with_shared_lane(ring, capacity))
    }

    /// A closed queue with no room: the queue of a sink whose ring could not be allocated,
    /// which never accepts an event. Its `capacity` reads 0.
    pub(crate) fn unallocated() -> Self {
        // A ring of one event, as any allocation of one event would, aborts only when the
        // allocator cannot provide that.
        Self::with_shared_lane(rtrb::RingBuffer::new(1), 0)
    }

    /// A queue whose shared lane is `ring`; closed, for good, when `capacity` is 0.
    fn with_shared_lane(ring: (rtrb::Producer<E>, rtrb::Consumer<E>), capacity: usize) -> Self {
        static NEXT_ID: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);
        let closed = capacity == 0;
        let (shared_writer, reader) = ring;
        let shared_lane = Arc::new(Lane::new(reader, closed));
        // Producers use the light side of the barrier from their first event.
        barrier::prepare();
        Self {
            lanes: Mutex::new(Lanes::new(shared_lane.clone(), closed)),
            shared_lane,
            shared_writer: Mutex::new(shared_writer),
            hot: CachePadded(Hot {
                gate: AtomicU8::new(if closed { CLOSED } else { 0 }),
                capacity: capacity as u64,
                id: NEXT_ID.fetch_add(1, std::sync::atomic::Ordering::Relaxed),
            }),
            finished: CachePadded(AtomicU64::new(0)),
            high_watermark: CachePadded(AtomicU64::new(0)),
            delivered: AtomicU64::new(0),
            failed: AtomicU64::new(0),
            refused: AtomicU64::new(0),
            restarts: AtomicU64::new(0),
            abandoned: Mutex::new(Vec::new()),
            claim: Mutex::new(Claim {
                in_dispatch: 0,
                ended: false,
                next_lane: 0,
            }),
            work: Event::new(),
            progress: Signal::new(),
        }
    }

    #[cfg(test)]
    pub(crate) fn capacity(&self) -> usize {
        self.hot.capacity as usize
    }

    /// Stops accepting events: closes every lane's ring, and those registered from now on.
    /// An event pushed before is in a ring, to be taken; a push after fails.
    pub(crate) fn close(&self) {
        {
            let mut lanes = lock(&self.lanes);
            // Under the lanes' lock, so that a seal, which the driver makes under it once
            // it sees the close, comes after the gate's flag (see the lanes module).
            self.hot.gate.fetch_or(CLOSED, Ordering::SeqCst);
            lanes.close();
        }
        // Producers blocked for room must see that admission closed.
        self.progress.notify_all();
    }

    /// Counts an event handed back to its producer.
    pub(crate) fn record_refused(&self) {
        self.refused.fetch_add(1, Ordering::Relaxed);
    }

    /// Counts a restart of the dispatcher (driver only); returns the count so far.
    pub(crate) fn record_restart(&self) -> u64 {
        self.restarts.fetch_add(1, Ordering::Relaxed) + 1
    }

    /// Restarts of the dispatcher so far.
    pub(crate) fn restarts(&self) -> u64 {
        self.restarts.load(Ordering::Relaxed)
    }

    /// What the sink lost so far: what its loss reports summarise.
    pub(crate) fn losses(&self) -> Losses {
        Losses {
            dropped: lock(&self.lanes).dropped(),
            refused: self.refused.load(Ordering::Relaxed),
            failed: self.failed.load(Ordering::Relaxed),
            restarts: self.restarts.load(Ordering::Relaxed),
        }
    }

    /// Takes up to `max` queued events into `batch` (driver only), going round the lanes;
    /// they are in dispatch until [`finish`](Self::finish)ed. Removes the lanes of exited
    /// threads that are drained.
    pub(crate) fn take(&self, batch: &mut Vec<E>, max: usize) -> Result<(), Ended> {
        let mut claim = lock(&self.claim);
        if claim.ended {
            return Err(Ended);
        }
        let mut lanes = lock(&self.lanes);
        claim.next_lane = lanes.take(batch, max, claim.next_lane);
        lanes.remove_exited();
        claim.in_dispatch = batch.len() as u64;
        Ok(())
    }

    /// Takes one queued event (driver only), in dispatch until finished.
    pub(crate) fn take_one(&self) -> Result<Option<E>, Ended> {
        let mut claim = lock(&self.claim);
        if claim.ended {
            return Err(Ended);
        }
        let event = lock(&self.lanes).take_one();
        claim.in_dispatch = u64::from(event.is_some());
        Ok(event)
    }

    /// Whether no lane holds an event.
    pub(crate) fn is_empty(&self) -> bool {
        lock(&self.lanes).is_empty()
    }

    /// Records the outcome of the events in dispatch, releasing their slots in their lanes
    /// (driver only).
    ///
    /// `Err(Ended)` when counting ended while they were in dispatch: whoever ended it has
    /// counted them, and nothing is recorded.
    pub(crate) fn finish(&self, delivered: u64, failed: u64) -> Result<(), Ended> {
        {
            let mut claim = lock(&self.claim);
            if claim.ended {
                return Err(Ended);
            }
            self.count(delivered, failed);
            claim.in_dispatch = 0;
            lock(&self.lanes).finish_taken();
        }
        self.progress.notify_all();
        Ok(())
    }

    /// Runs `serve` unless counting has ended, so that what it publishes (a served flush)
    /// cannot follow an end that counted the flushed events as failed.
    pub(crate) fn unless_ended(&self, serve: impl FnOnce()) -> Result<(), Ended> {
        let claim = lock(&self.claim);
        if claim.ended {
            return Err(Ended);
        }
        serve();
        drop(claim);
        Ok(())
    }

    /// Adds to the counters; the caller holds the claim.
    fn count(&self, delivered: u64, failed: u64) {
        if delivered > 0 {
            self.delivered.fetch_add(delivered, Ordering::Relaxed);
        }
        if failed > 0 {
            self.failed.fetch_add(failed, Ordering::Relaxed);
        }
        self.finished
            .fetch_add(delivered + failed, Ordering::AcqRel);
    }

    /// Whether admission is closed and every event accepted before it is finished (or,
    /// once counting has ended, counted and dropped): no event can be accepted any more,
    /// and none is left to finish.
    ///
    /// Not the same as an empty queue once the lifecycle says `Stopping`: the state turns
    /// before admission closes, and producers may still push in between.
    pub(crate) fn drained(&self) -> bool {
        let claim = lock(&self.claim);
        let lanes = lock(&self.lanes);
        lanes.settled() && (claim.ended || claim.in_dispatch == 0)
    }

    /// Takes the flush targets (driver only): for every lane, the events pushed to it so
    /// far, each of which a flush requested before now must see finished.
    pub(crate) fn set_flush_targets(&self) {
        lock(&self.lanes).set_flush_targets();
    }

    /// Whether every lane has finished the events of the flush targets.
    pub(crate) fn flush_targets_met(&self) -> bool {
        lock(&self.lanes).flush_targets_met()
    }

    /// Marks the driver parked, before its last check for work: a producer that counts an
    /// event from now on wakes it, or the check sees the event. With `exact`, the check is
    /// sure to see every event a producer counted without seeing the mark (the heavy
    /// barrier); without, a producer may miss the mark for an event the check misses too,
    /// and the driver must look again before long (see the lanes module).
    pub(crate) fn mark_driver_parked(&self, exact: bool) {
        self.hot.gate.fetch_or(PARKED, Ordering::SeqCst);
        if exact {
            barrier::heavy();
        } else {
            fence(Ordering::SeqCst);
        }
    }

    /// Clears the driver's parked mark (the driver, awake).
    pub(crate) fn mark_driver_awake(&self) {
        self.hot.gate.fetch_and(!PARKED, Ordering::SeqCst);
    }

    /// Wakes the driver if it is parked, once for all the producers that find it so.
    fn wake_parked_driver(&self) {
        if self.hot.gate.fetch_and(!PARKED, Ordering::SeqCst) & PARKED != 0 {
            self.work.notify(1);
        }
    }

    /// Ends counting: closes and seals every lane for good (later pushes are refused) and
    /// counts every event accepted and not taken, and those in dispatch, as failed. The
    /// events are kept until [`drop_abandoned`](Self::drop_abandoned): dropping them runs
    /// user code, which the caller does after releasing its locks.
    ///
    /// `Err(Ended)` when counting had already ended.
    pub(crate) fn end_counting(&self) -> Result<Abandoned, Ended> {
        let mut claim = lock(&self.claim);
        if claim.ended {
            return Err(Ended);
        }
        claim.ended = true;
        self.hot.gate.fetch_or(CLOSED, Ordering::SeqCst);
        let queued = {
            let mut abandoned = lock(&self.abandoned);
            // Exact: a sealed lane accepts nothing more, and the driver takes under the
            // claim.
            lock(&self.lanes).abandon(&mut abandoned)
        };
        let in_dispatch = std::mem::take(&mut claim.in_dispatch);
        self.count(0, in_dispatch + queued);
        Ok(Abandoned {
            in_dispatch,
            queued,
        })
    }

    /// Drops the events abandoned when counting ended (they are counted), outside the
    /// locks, and wakes the waiters for progress.
    pub(crate) fn drop_abandoned(&self) {
        debug_assert!(lock(&self.claim).ended, "counting has not ended");
        let abandoned = std::mem::take(&mut *lock(&self.abandoned));
        drop(abandoned);
        self.progress.notify_all();
    }

    /// Ends counting and drops what is left (the driver was dropped). Returns how many
    /// events were abandoned, or `Err(Ended)` when counting had already ended.
    pub(crate) fn abandon_all(&self) -> Result<u64, Ended> {
        let abandoned = self.end_counting()?;
        self.drop_abandoned();
        Ok(abandoned.total())
    }

    /// The counters. `accepted` is what was finished, is in dispatch or is queued, all read
    /// under the claim: a consistent snapshot, in which `accepted == delivered + failed +
    /// pending` holds by construction.
    pub(crate) fn stats(&self) -> QueueStats {
        let claim = lock(&self.claim);
        let delivered = self.delivered.load(Ordering::Acquire);
        let failed = self.failed.load(Ordering::Acquire);
        let (queued, dropped) = {
            let lanes = lock(&self.lanes);
            // Once counting ended, what is left in the rings is counted as failed already.
            let queued = if claim.ended { 0 } else { lanes.queued() };
            (queued, lanes.dropped())
        };
        let pending = claim.in_dispatch + queued;
        drop(claim);
        QueueStats {
            accepted: delivered + failed + pending,
            delivered,
            failed,
            dropped,
            refused: self.refused.load(Ordering::Acquire),
            pending,
            capacity: self.hot.capacity as usize,
            high_watermark: self.high_watermark.load(Ordering::Relaxed) as usize,
            restarts: self.restarts.load(Ordering::Acquire),
        }
    }
}

impl<E: Send + 'static> Queue<E> {
    /// Pushes an event into the calling thread's lane (registering it on the thread's first
    /// event), unless the lane's limit is reached (then, with `drop_when_full`, the event is
    /// dropped and counted in the lane) or admission is closed; wakes the driver if it
    /// sleeps.
    pub(crate) fn push(&self, event: E, drop_when_full: bool) -> Pushed<E> {
        lanes::push(self, event, drop_when_full)
    }
}

impl<E> Drop for Queue<E> {
    fn drop(&mut self) {
        // Threads that still hold an entry for one of these lanes prune it at their next
        // registration.
        lock(&self.lanes).retire();
    }
}

#[cfg(test)]
mod tests;
