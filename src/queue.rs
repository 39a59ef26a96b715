//! Bounded queue accounting: the pending-event limit, overflow policies and counters.
//!
//! (For maintainers: one concept, the bounded queue and its exact counters; some 660 lines,
//! 30 % of them docs, its tests in `queue/tests.rs`.)
//!
//! A sink's queue is `concurrent-queue`'s bounded ring — the ring `async-channel` is built
//! on — used directly, allocated once, at construction, with room for exactly `capacity`
//! events, so accepting an event never allocates. (`async-channel`'s `try_send` pays two
//! wake-up fences per event for its own receivers and streams, which mvx does not use: the
//! driver has a wake-up of its own, which costs a producer one load while the driver is
//! awake.)
//!
//! *Pending* events are those accepted and not yet finished: queued, or handed to a
//! dispatch that has not returned. The limit applies to pending events, and it is exact
//! under any number of producers: a producer first reserves a slot in one
//! compare-and-swap on an admission word that holds both the count of accepted events and
//! whether the sink accepts at all, then pushes. A reservation can never exceed the limit,
//! so the ring is never full when pushed to; and a stop reads the final count in the same
//! word that closes admission, so no event slips in behind a stop unseen.
//!
//! # What happens to each event
//!
//! | outcome | counted as | the caller gets |
//! |---|---|---|
//! | accepted | `accepted`, later `delivered` or `failed` | `Ok(LogOutcome::Accepted)` |
//! | limit reached, [`OverflowPolicy::Drop`] | `dropped` | `Ok(LogOutcome::Dropped)` |
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
//! The core's concurrency — slot reservation against the limit, the driver's parking and
//! wake-ups, lifecycle transitions and wait handles, the [`Terminator`](crate::rt::Terminator),
//! and the wake-up that blocked producers and flushes wait on — is model-checked with
//! [loom](https://docs.rs/loom): the models in `tests/loom_*.rs` drive the real sink,
//! driver and terminator (the crate's private `sync` module switches the core's primitives
//! to loom's under `--cfg loom`) through every interleaving within a small preemption
//! bound, one to six per model. README's CI section has the command.

use std::fmt;
use std::mem::MaybeUninit;

use concurrent_queue::{ConcurrentQueue, PushError};
use event_listener::Event;

use crate::sync::{
    AtomicBool, AtomicU64, CachePadded, Mutex, Ordering, Signal, lock, seq_cst_for_loom,
};

/// The pending-event limit of a sink when none is configured.
///
/// The ring is allocated up front: a sink of `LogEvent`s with this capacity holds about
/// 8,192 × 100 bytes. Raise it for bursty producers, lower it for large events.
pub const DEFAULT_QUEUE_CAPACITY: usize = 8_192;

/// The largest capacity a sink accepts: 2^24 = 16,777,216 events, 2,048 times the default.
///
/// The ring is allocated when the sink is created, and it is memory in use at once, not
/// reserved address space: concurrent-queue writes a stamp into every slot, so every page
/// of the ring is touched. A slot is the event beside a `usize` stamp, `size_of::<E>() + 8`
/// bytes rounded up to `E`'s alignment (16 bytes for a `u32`, 104 for a `LogEvent` on
/// 64-bit targets). At this maximum the ring of `u32`s takes 256 MiB and the ring of
/// `LogEvent`s about 1.6 GiB, which a machine that needs such a queue has; a larger limit
/// could not be honoured (2^36 `u32`s would be 1 TiB). concurrent-queue itself supports
/// capacities below 2^62 on 64-bit targets (its stamps hold an index and a lap count in one
/// `usize`) and below 2^30 on 32-bit ones; this maximum is within both.
///
/// A larger `queue_capacity` is refused, and so is a ring the allocator cannot provide: the
/// sink is then created in `Failure`, with
/// [`SinkError::QueueAllocationFailed`](crate::error::SinkError::QueueAllocationFailed)
/// (see [`AsyncSink::new`](crate::sink::AsyncSink::new)). The memory is asked for
/// before the ring is built, so that a refusal is that error rather than an abort of the
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
    /// The pending-event limit.
    pub capacity: usize,
    /// The largest number of pending events seen.
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

/// Set in the admission word while events are not accepted.
const CLOSED: u64 = 1 << 63;

/// The outcome of a slot reservation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Reserve {
    /// A slot is reserved: the `slot`-th ever (counting from 1).
    Reserved { slot: u64 },
    /// The pending-event limit is reached.
    Full,
    /// Admission is closed.
    Closed,
}

/// Who counts the events taken from the ring: the driver, until counting ends.
///
/// Counting ends when the sink ends without its driver: the driver is dropped
/// ([`Queue::abandon_all`]), or a terminator past its deadline ends the sink from outside
/// while the driver may be inside user code ([`Queue::end_counting`]). Whoever ends it
/// counts, under this lock, every event still queued or in dispatch as failed; the driver
/// takes events from the ring and counts their outcome under the same lock, and refuses
/// to once counting has ended. So an event is counted once, by one of them, however the
/// driver's return from user code and the end interleave (`tests/loom_terminator.rs`).
/// The lock is never held while user code runs: events are dropped outside it.
#[derive(Debug)]
struct Claim {
    /// Events the driver took from the ring and has not finished.
    in_dispatch: u64,
    /// Whether counting has ended: nothing is taken or counted any more.
    ended: bool,
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
    /// Events still in the ring.
    pub(crate) queued: u64,
}

impl Abandoned {
    pub(crate) fn total(self) -> u64 {
        self.in_dispatch + self.queued
    }
}

/// The producers' side of the queue: one cache line, written by producers only.
#[derive(Debug)]
struct Admission {
    /// `CLOSED` bit and the number of slots ever reserved.
    word: AtomicU64,
    /// A value `Queue::finished` had, so a lower bound of it.
    finished_hint: AtomicU64,
    high_watermark: AtomicU64,
    capacity: u64,
}

/// The ring, the admission word, the counters and the wake-ups of one sink.
pub(crate) struct Queue<E> {
    /// What producers read and write on every event, on a line of their own.
    admission: CachePadded<Admission>,
    /// Events finished (delivered + failed); written by the driver only.
    finished: CachePadded<AtomicU64>,
    /// Set while the driver is parked waiting for work.
    driver_sleeping: CachePadded<AtomicBool>,
    ring: ConcurrentQueue<E>,
    delivered: AtomicU64,
    failed: AtomicU64,
    dropped: AtomicU64,
    /// Events handed back to their producer (written on the refusal path only).
    refused: AtomicU64,
    /// Restarts of the dispatcher (driver only).
    restarts: AtomicU64,
    /// Reservations whose push found the ring closed (counting had ended).
    revoked: AtomicU64,
    /// Who counts the events taken from the ring.
    claim: Mutex<Claim>,
    /// Wakes the driver.
    pub(crate) work: Event,
    /// Wakes producers waiting for room and flush waiters.
    pub(crate) progress: Signal,
}

/// The memory of one slot of the ring: concurrent-queue's `Slot<E>`, a stamp beside the
/// event.
struct RingSlot<E> {
    _stamp: usize,
    _event: MaybeUninit<E>,
}

impl<E> Queue<E> {
    /// A closed queue with room for `capacity` pending events (0 is taken as 1).
    ///
    /// # Errors
    ///
    /// [`AllocationFailure`] when `capacity` is above [`MAX_QUEUE_CAPACITY`] or the ring's
    /// memory cannot be allocated.
    pub(crate) fn new(capacity: usize) -> Result<Self, AllocationFailure> {
        let capacity = capacity.max(1);
        if capacity > MAX_QUEUE_CAPACITY {
            return Err(AllocationFailure::AboveMaximum);
        }
        if capacity > 1 {
            // concurrent-queue allocates the ring with `Vec::with_capacity`, which aborts the
            // process when the allocator refuses. Ask for the same memory first, where a
            // refusal is an error, and give it back for the ring to take.
            let mut ring = Vec::<RingSlot<E>>::new();
            ring.try_reserve_exact(capacity)
                .map_err(|_| AllocationFailure::OutOfMemory {
                    bytes: capacity.saturating_mul(size_of::<RingSlot<E>>()),
                })?;
        }
        // A ring of one is concurrent-queue's single slot, inline: nothing to allocate.
        Ok(Self::with_ring(
            ConcurrentQueue::bounded(capacity),
            capacity,
        ))
    }

    /// A closed queue with no room: the queue of a sink whose ring could not be allocated,
    /// which never accepts an event. Its `capacity` reads 0.
    pub(crate) fn unallocated() -> Self {
        Self::with_ring(ConcurrentQueue::bounded(1), 0)
    }

    fn with_ring(ring: ConcurrentQueue<E>, capacity: usize) -> Self {
        Self {
            admission: CachePadded(Admission {
                word: AtomicU64::new(CLOSED),
                finished_hint: AtomicU64::new(0),
                high_watermark: AtomicU64::new(0),
                capacity: capacity as u64,
            }),
            finished: CachePadded(AtomicU64::new(0)),
            driver_sleeping: CachePadded(AtomicBool::new(false)),
            ring,
            delivered: AtomicU64::new(0),
            failed: AtomicU64::new(0),
            dropped: AtomicU64::new(0),
            refused: AtomicU64::new(0),
            restarts: AtomicU64::new(0),
            revoked: AtomicU64::new(0),
            claim: Mutex::new(Claim {
                in_dispatch: 0,
                ended: false,
            }),
            work: Event::new(),
            progress: Signal::new(),
        }
    }

    #[cfg(test)]
    pub(crate) fn capacity(&self) -> usize {
        self.admission.capacity as usize
    }

    /// Starts accepting events.
    pub(crate) fn open(&self) {
        self.admission.word.fetch_and(!CLOSED, Ordering::AcqRel);
    }

    /// Stops accepting events; returns how many slots were ever reserved. Every one of
    /// them is pushed, or revoked, by the producer that reserved it.
    pub(crate) fn close(&self) -> u64 {
        let word = self.admission.word.fetch_or(CLOSED, Ordering::AcqRel);
        // Producers blocked for room must see that admission closed.
        self.progress.notify_all();
        word & !CLOSED
    }

    /// Reserves one pending slot, unless the limit is reached or admission is closed.
    pub(crate) fn try_reserve(&self) -> Reserve {
        let admission = &self.admission;
        let mut word = admission.word.load(Ordering::Acquire);
        loop {
            if word & CLOSED != 0 {
                return Reserve::Closed;
            }
            // Pending is at most `word - hint`: the hint is a value `finished` had. Only when
            // that bound reaches the limit is the driver's counter itself read — a line the
            // driver writes after every batch, which would otherwise cost every event a
            // cache miss. (`finished` may be newer than `word`: the compare-and-swap then
            // fails anyway.)
            let hint = admission.finished_hint.load(Ordering::Relaxed);
            if word.saturating_sub(hint) >= admission.capacity
                && word.saturating_sub(self.refresh_finished_hint()) >= admission.capacity
            {
                return Reserve::Full;
            }
            match admission.word.compare_exchange_weak(
                word,
                word + 1,
                Ordering::AcqRel,
                Ordering::Acquire,
            ) {
                Ok(_) => return Reserve::Reserved { slot: word + 1 },
                Err(actual) => word = actual,
            }
        }
    }

    /// Reads the driver's `finished` counter and records it as the producers' hint.
    fn refresh_finished_hint(&self) -> u64 {
        let finished = self.finished.load(Ordering::Acquire);
        self.admission
            .finished_hint
            .fetch_max(finished, Ordering::Relaxed);
        finished
    }

    /// Pushes an event into its reserved slot and wakes the driver if it sleeps.
    ///
    /// Fails, handing the event back, only when the driver is gone (the ring is closed);
    /// the reservation is then revoked.
    pub(crate) fn push(&self, event: E, slot: u64) -> Result<(), E> {
        match self.ring.push(event) {
            Ok(()) => {}
            Err(PushError::Closed(event)) | Err(PushError::Full(event)) => {
                self.revoked.fetch_add(1, Ordering::AcqRel);
                // A flush of the cancelled sink waits until every reservation is finished
                // or revoked.
                self.progress.notify_all();
                return Err(event);
            }
        }
        // The push is a SeqCst compare-and-swap on the ring's tail, and the driver stores
        // `driver_sleeping` (SeqCst) before it re-checks the tail (SeqCst): either this load
        // sees the driver asleep, or the driver's check sees the event. The first producer
        // to see it asleep clears the flag and wakes it; the others skip the notification,
        // which takes a lock. (Under loom a fence stands in for what SeqCst already orders
        // here: see `seq_cst_for_loom`.)
        seq_cst_for_loom();
        if self.driver_sleeping.load(Ordering::SeqCst)
            && self.driver_sleeping.swap(false, Ordering::SeqCst)
        {
            self.work.notify(1);
        }
        // The watermark moves only when the cheap bound exceeds it; then the exact pending
        // count is taken.
        let admission = &self.admission;
        let high_watermark = admission.high_watermark.load(Ordering::Relaxed);
        let hint = admission.finished_hint.load(Ordering::Relaxed);
        if slot.saturating_sub(hint) > high_watermark {
            let pending = slot.saturating_sub(self.refresh_finished_hint());
            if pending > high_watermark {
                admission
                    .high_watermark
                    .fetch_max(pending, Ordering::Relaxed);
            }
        }
        Ok(())
    }

    pub(crate) fn record_dropped(&self) {
        self.dropped.fetch_add(1, Ordering::Relaxed);
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
            dropped: self.dropped.load(Ordering::Relaxed),
            refused: self.refused.load(Ordering::Relaxed),
            failed: self.failed.load(Ordering::Relaxed),
            restarts: self.restarts.load(Ordering::Relaxed),
        }
    }

    /// Takes up to `max` queued events into `batch` (driver only); they are in dispatch
    /// until [`finish`](Self::finish)ed.
    pub(crate) fn take(&self, batch: &mut Vec<E>, max: usize) -> Result<(), Ended> {
        let mut claim = lock(&self.claim);
        if claim.ended {
            return Err(Ended);
        }
        while batch.len() < max {
            match self.ring.pop() {
                Ok(event) => batch.push(event),
                Err(_) => break,
            }
        }
        claim.in_dispatch = batch.len() as u64;
        Ok(())
    }

    /// Takes one queued event (driver only), in dispatch until finished.
    pub(crate) fn take_one(&self) -> Result<Option<E>, Ended> {
        let mut claim = lock(&self.claim);
        if claim.ended {
            return Err(Ended);
        }
        let event = self.ring.pop().ok();
        claim.in_dispatch = u64::from(event.is_some());
        Ok(event)
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.ring.is_empty()
    }

    /// Records the outcome of the events in dispatch, releasing their slots (driver only).
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

    /// Slots ever reserved, including those still being pushed.
    pub(crate) fn reserved(&self) -> u64 {
        self.admission.word.load(Ordering::Acquire) & !CLOSED
    }

    /// Events finished (delivered + failed).
    pub(crate) fn finished(&self) -> u64 {
        self.finished.load(Ordering::Acquire)
    }

    /// Whether every reserved slot is finished or revoked.
    pub(crate) fn all_finished(&self) -> bool {
        self.settled(self.reserved())
    }

    /// Whether the first `reserved` slots are all finished or revoked.
    fn settled(&self, reserved: u64) -> bool {
        self.finished() + self.revoked.load(Ordering::Acquire) >= reserved
    }

    /// Whether admission is closed and every slot reserved before it is finished or
    /// revoked: no event can be accepted any more, and none is left to finish.
    ///
    /// Not the same as `all_finished` once the lifecycle says `Stopping`: the state turns
    /// before admission closes, and producers may still reserve in between.
    pub(crate) fn drained(&self) -> bool {
        let word = self.admission.word.load(Ordering::Acquire);
        word & CLOSED != 0 && self.settled(word & !CLOSED)
    }

    /// Marks the driver asleep (before its last check for work) or awake.
    pub(crate) fn set_driver_sleeping(&self, sleeping: bool) {
        self.driver_sleeping.store(sleeping, Ordering::SeqCst);
        if sleeping {
            seq_cst_for_loom();
        }
    }

    /// Ends counting: closes the ring for good (later pushes are revoked) and counts every
    /// event left in it, and those in dispatch, as failed. The events stay in the ring until
    /// [`drop_abandoned`](Self::drop_abandoned): dropping them runs user code, which the
    /// caller does after releasing its locks.
    ///
    /// `Err(Ended)` when counting had already ended.
    pub(crate) fn end_counting(&self) -> Result<Abandoned, Ended> {
        let mut claim = lock(&self.claim);
        if claim.ended {
            return Err(Ended);
        }
        claim.ended = true;
        self.ring.close();
        // Exact: nobody pushes to a closed ring, and the driver takes under the claim.
        let queued = self.ring.len() as u64;
        let in_dispatch = std::mem::take(&mut claim.in_dispatch);
        self.count(0, in_dispatch + queued);
        Ok(Abandoned {
            in_dispatch,
            queued,
        })
    }

    /// Drops the events left in the ring once counting has ended (they are counted), and
    /// wakes the waiters for progress.
    pub(crate) fn drop_abandoned(&self) {
        debug_assert!(lock(&self.claim).ended, "counting has not ended");
        while self.ring.pop().is_ok() {}
        self.progress.notify_all();
    }

    /// Ends counting and drops what is left (the driver was dropped). Returns how many
    /// events were abandoned, or `Err(Ended)` when counting had already ended.
    pub(crate) fn abandon_all(&self) -> Result<u64, Ended> {
        let abandoned = self.end_counting()?;
        self.drop_abandoned();
        Ok(abandoned.total())
    }

    pub(crate) fn stats(&self) -> QueueStats {
        let delivered = self.delivered.load(Ordering::Acquire);
        let failed = self.failed.load(Ordering::Acquire);
        let revoked = self.revoked.load(Ordering::Acquire);
        let accepted = self.reserved().saturating_sub(revoked);
        QueueStats {
            accepted,
            delivered,
            failed,
            dropped: self.dropped.load(Ordering::Acquire),
            refused: self.refused.load(Ordering::Acquire),
            pending: accepted.saturating_sub(delivered + failed),
            capacity: self.admission.capacity as usize,
            high_watermark: self.admission.high_watermark.load(Ordering::Relaxed) as usize,
            restarts: self.restarts.load(Ordering::Acquire),
        }
    }
}

#[cfg(test)]
mod tests;
