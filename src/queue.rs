//! Bounded queue accounting: the pending-event limit, overflow policies and counters.
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
//! | limit still reached at the deadline of `send(..).wait_timeout(..)` / `wait_deadline(..)` | `refused` | the event, in `SendTimeoutError::TimedOut` |
//! | sink not `Starting`/`Running` | `refused` | the event, in `LogError::NotAccepting` |
//! | dispatch returned an error | `failed` | (the error is in `last_error()`) |
//! | dispatcher panicked, restarted by its [`RestartPolicy`](crate::sink::RestartPolicy) | `failed` (the events of the call that panicked), `restarts` | (the panic is in `last_error()`) |
//! | abandoned: stop timed out, dispatcher panicked, start hook failed or timed out, driver dropped | `failed` | (the reason is in the operation result and `last_error()`) |
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

use concurrent_queue::{ConcurrentQueue, PushError};
use event_listener::Event;

use crate::sync::{AtomicBool, AtomicU64, CachePadded, Ordering, Signal, seq_cst_for_loom};

/// The pending-event limit of a sink when none is configured.
///
/// The ring is allocated up front: a sink of `LogEvent`s with this capacity holds about
/// 8,192 × 100 bytes. Raise it for bursty producers, lower it for large events.
pub const DEFAULT_QUEUE_CAPACITY: usize = 8_192;

/// The largest accepted capacity; larger values are clamped to it.
pub const MAX_QUEUE_CAPACITY: usize = 1 << 40;

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
    /// Reservations whose push found the ring closed (the driver was dropped).
    revoked: AtomicU64,
    /// Events popped by the driver and not finished yet.
    in_dispatch: AtomicU64,
    /// Wakes the driver.
    pub(crate) work: Event,
    /// Wakes producers waiting for room and flush waiters.
    pub(crate) progress: Signal,
}

impl<E> Queue<E> {
    /// A closed queue with room for `capacity` pending events (clamped to
    /// `1..=MAX_QUEUE_CAPACITY`).
    pub(crate) fn new(capacity: usize) -> Self {
        let capacity = capacity.clamp(1, MAX_QUEUE_CAPACITY);
        Self {
            admission: CachePadded(Admission {
                word: AtomicU64::new(CLOSED),
                finished_hint: AtomicU64::new(0),
                high_watermark: AtomicU64::new(0),
                capacity: capacity as u64,
            }),
            finished: CachePadded(AtomicU64::new(0)),
            driver_sleeping: CachePadded(AtomicBool::new(false)),
            ring: ConcurrentQueue::bounded(capacity),
            delivered: AtomicU64::new(0),
            failed: AtomicU64::new(0),
            dropped: AtomicU64::new(0),
            refused: AtomicU64::new(0),
            restarts: AtomicU64::new(0),
            revoked: AtomicU64::new(0),
            in_dispatch: AtomicU64::new(0),
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

    /// Takes the next queued event (driver only).
    pub(crate) fn pop(&self) -> Option<E> {
        self.ring.pop().ok()
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.ring.is_empty()
    }

    /// Records how many popped events are being dispatched (driver only).
    pub(crate) fn set_in_dispatch(&self, count: u64) {
        self.in_dispatch.store(count, Ordering::Relaxed);
    }

    /// Records the outcome of dispatched events, releasing their slots (driver only).
    pub(crate) fn finish(&self, delivered: u64, failed: u64) {
        if delivered > 0 {
            self.delivered.fetch_add(delivered, Ordering::Relaxed);
        }
        if failed > 0 {
            self.failed.fetch_add(failed, Ordering::Relaxed);
        }
        self.in_dispatch.store(0, Ordering::Relaxed);
        self.finished
            .fetch_add(delivered + failed, Ordering::AcqRel);
        self.progress.notify_all();
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

    /// Closes the ring for good and counts every event left in it, and those in dispatch,
    /// as failed. Used when the driver is dropped: later pushes are revoked.
    pub(crate) fn abandon_all(&self) -> u64 {
        self.ring.close();
        let mut abandoned = self.in_dispatch.load(Ordering::Relaxed);
        while self.ring.pop().is_ok() {
            abandoned += 1;
        }
        self.finish(0, abandoned);
        abandoned
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
mod tests {
    use super::*;

    #[test]
    fn reservation_respects_the_limit_and_admission() {
        let queue = Queue::<u32>::new(2);
        assert_eq!(queue.try_reserve(), Reserve::Closed);
        queue.open();
        assert_eq!(queue.try_reserve(), Reserve::Reserved { slot: 1 });
        queue.push(1, 1).unwrap();
        assert_eq!(queue.try_reserve(), Reserve::Reserved { slot: 2 });
        queue.push(2, 2).unwrap();
        assert_eq!(queue.try_reserve(), Reserve::Full);
        assert_eq!(queue.pop(), Some(1));
        // Popped but not finished: still pending.
        assert_eq!(queue.try_reserve(), Reserve::Full);
        queue.finish(1, 0);
        assert_eq!(queue.try_reserve(), Reserve::Reserved { slot: 3 });
        queue.push(3, 3).unwrap();
        assert!(!queue.drained(), "admission is open");
        assert_eq!(queue.close(), 3);
        assert_eq!(queue.try_reserve(), Reserve::Closed);
        assert!(!queue.drained(), "two events are pending");
        let stats = queue.stats();
        assert_eq!(
            (
                stats.accepted,
                stats.delivered,
                stats.pending,
                stats.high_watermark
            ),
            (3, 1, 2, 2)
        );
        assert_eq!((queue.pop(), queue.pop()), (Some(2), Some(3)));
        queue.finish(2, 0);
        assert!(queue.drained());
    }

    #[test]
    fn a_queue_is_drained_only_once_admission_is_closed() {
        let queue = Queue::<u32>::new(2);
        queue.open();
        // Nothing pending, but a producer may still reserve: not drained.
        assert!(queue.all_finished());
        assert!(!queue.drained());
        let Reserve::Reserved { slot } = queue.try_reserve() else {
            panic!("no slot")
        };
        // Closed with a reservation not pushed yet: not drained until it is finished.
        assert_eq!(queue.close(), 1);
        assert!(!queue.drained());
        queue.push(5, slot).unwrap();
        assert_eq!(queue.pop(), Some(5));
        assert!(!queue.drained());
        queue.finish(1, 0);
        assert!(queue.drained());
    }

    #[test]
    fn capacity_is_clamped() {
        assert_eq!(Queue::<u8>::new(0).capacity(), 1);
    }

    #[test]
    fn abandoning_revokes_later_pushes() {
        let queue = Queue::<u32>::new(4);
        queue.open();
        let Reserve::Reserved { slot } = queue.try_reserve() else {
            panic!("no slot")
        };
        queue.push(7, slot).unwrap();
        let Reserve::Reserved { slot } = queue.try_reserve() else {
            panic!("no slot")
        };
        assert_eq!(queue.abandon_all(), 1);
        assert_eq!(queue.push(8, slot), Err(8));
        let stats = queue.stats();
        assert_eq!((stats.accepted, stats.failed, stats.pending), (1, 1, 0));
        assert!(queue.all_finished());
    }
}
