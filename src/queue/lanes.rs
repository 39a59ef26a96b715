//! The lanes of a sink's queue: one ring per producer thread, registered on the thread's
//! first event, and the shared lane of producers without one (see [the queue
//! module](super)).
//!
//! A producer finds its lane in a thread-local list of the lanes it has, one per sink it
//! logs to, keyed by the sink's queue id (never reused, unlike an address). The entry owns
//! the ring's producing end and what only the producer writes — its count of events pushed,
//! its copy of what the driver finished, the watermark it last raised — so that an event
//! costs the producer no write that another thread reads but the push and its count. When
//! the thread exits its entries are dropped, and each marks its lane as exited: the driver
//! drains it and removes it.
//!
//! # The count and the two handshakes
//!
//! A producer pushes its event into the ring (`rtrb`: two plain stores) and then publishes
//! the lane's count of events with a plain store, so counted events are always in the
//! ring: the driver never waits for a push, it takes what is counted. After the count the
//! producer passes the light side of [the asymmetric barrier](crate::sync::barrier) (a
//! compiler fence where `membarrier` is registered) and reads two flags the driver sets:
//!
//! - the queue's `PARKED` (the *gate*): before a park without a timeout the driver sets it,
//!   passes the heavy side of the barrier and re-checks every count. The barrier makes one
//!   of the two see the other: the producer sees the flag (and wakes the driver, once for
//!   all producers, clearing it), or the driver's re-check sees the count. Before a nap (a
//!   park of at most a millisecond) the driver uses a `SeqCst` fence instead: a producer
//!   may then miss the flag, and the driver finds its event when the nap ends — it then
//!   passes the heavy barrier before it parks for longer (`sink::driver`).
//! - the lane's `sealed_at`: at a stop (admission closed, the gate's `CLOSED`), the driver
//!   seals each lane under its reader lock: it marks it `SEALING`, passes the heavy barrier
//!   and reads the count, which is the lane's final count. A producer whose count the seal
//!   read is accepted. One whose count it did not read sees the mark: it takes the reader
//!   lock (so waits for the seal's end) and is accepted all the same while the driver has
//!   not taken the lane's last accepted event (the final count grows by its event), or
//!   takes its event back out of the ring — the only event there — and hands it back. A
//!   producer checks `CLOSED` before it pushes, and after it has seen a seal it sees
//!   `CLOSED`: a lane has at most one push in flight past its seal.

use std::any::Any;
use std::cell::RefCell;

use rtrb::{Consumer, Producer as RingProducer, PushError, RingBuffer};

use super::{CLOSED, PARKED, Pushed, Queue};
use crate::sync::barrier;
use crate::sync::{Arc, AtomicBool, AtomicU64, CachePadded, Mutex, Ordering, lock};

/// A lane's `sealed_at` before its seal.
const OPEN: u64 = u64::MAX;
/// A lane's `sealed_at` while the driver seals it (under the lane's reader lock).
const SEALING: u64 = u64::MAX - 1;

/// A ring of `capacity` events (at least 1), or `None` when the allocator refuses its
/// memory (asked for first, so that a refusal is not an abort of the process).
pub(super) fn ring<E>(capacity: usize) -> Option<(RingProducer<E>, Consumer<E>)> {
    let capacity = capacity.max(1);
    let mut probe = Vec::<E>::new();
    probe.try_reserve_exact(capacity).ok()?;
    drop(probe);
    Some(RingBuffer::new(capacity))
}

/// One ring of a sink's queue, and what the driver and its producers know of it.
pub(crate) struct Lane<E> {
    /// The events pushed to the ring and counted: written by the lane's producer only (the
    /// shared lane's by whoever holds the queue's `shared_writer`), a plain store after
    /// each push.
    count: CachePadded<AtomicU64>,
    /// `OPEN`, `SEALING`, or the lane's final count once sealed (see the module docs):
    /// written by the driver under `reader` (and by a late producer, under it, to add its
    /// event), read by the producer after each count.
    sealed_at: CachePadded<AtomicU64>,
    /// The ring's consuming end: the driver's, and a late producer's to take its event back.
    reader: Mutex<Consumer<E>>,
    /// Events of this lane the driver finished: written by the driver after each batch,
    /// read by the producer only when its own bound says the limit may be reached.
    finished: CachePadded<AtomicU64>,
    /// Events the driver took from the ring (written under `reader`).
    taken: AtomicU64,
    /// Events dropped because the lane was full: written by its producer (the shared lane's
    /// by whoever holds the queue's `shared_writer`).
    dropped: CachePadded<AtomicU64>,
    /// The events counted when the driver last took the flush targets (driver only).
    flush_target: AtomicU64,
    /// The thread whose lane this is has exited: once drained, the lane is removed.
    exited: AtomicBool,
    /// The sink is gone: a thread's entry for the lane is pruned.
    retired: AtomicBool,
}

impl<E> Lane<E> {
    /// A lane; one created `closed` is sealed at once, at 0 — no push can be in flight on
    /// it.
    pub(super) fn new(reader: Consumer<E>, closed: bool) -> Self {
        Self {
            count: CachePadded(AtomicU64::new(0)),
            sealed_at: CachePadded(AtomicU64::new(if closed { 0 } else { OPEN })),
            reader: Mutex::new(reader),
            finished: CachePadded(AtomicU64::new(0)),
            taken: AtomicU64::new(0),
            dropped: CachePadded(AtomicU64::new(0)),
            flush_target: AtomicU64::new(0),
            exited: AtomicBool::new(false),
            retired: AtomicBool::new(false),
        }
    }

    /// The events accepted so far: counted, or the final count once sealed. (`SEALING` is
    /// seen only under the reader lock, by the driver sealing and a late producer; the
    /// driver seals under the lanes' lock, which every reader of this holds.)
    fn accepted(&self) -> u64 {
        match self.sealed_at.load(Ordering::Acquire) {
            OPEN | SEALING => self.count.load(Ordering::Acquire),
            sealed_at => sealed_at,
        }
    }

    /// Accepted events not taken yet.
    fn queued(&self) -> u64 {
        self.accepted()
            .saturating_sub(self.taken.load(Ordering::Acquire))
    }

    fn is_sealed(&self) -> bool {
        self.sealed_at.load(Ordering::Acquire) != OPEN
    }

    /// Whether every event accepted here was taken and finished.
    fn settled(&self) -> bool {
        let taken = self.taken.load(Ordering::Acquire);
        self.queued() == 0 && self.finished.load(Ordering::Acquire) == taken
    }

    /// Fixes the lane's final count (the driver, or whoever ended counting, under the
    /// lanes' lock; `sealed_at` under the reader lock, which the caller holds).
    fn seal(&self) {
        self.sealed_at.store(SEALING, Ordering::SeqCst);
        barrier::heavy();
        let count = self.count.load(Ordering::Acquire);
        self.sealed_at.store(count, Ordering::Release);
    }

    /// Takes up to `room` accepted events, handing each to `put`, sealing the lane first
    /// when admission is `closed`. Returns how many were taken.
    fn take(&self, room: usize, closed: bool, mut put: impl FnMut(E)) -> usize {
        let mut reader = lock(&self.reader);
        if closed && !self.is_sealed() {
            self.seal();
        }
        let taken = self.taken.load(Ordering::Relaxed);
        let wanted = (self.accepted() - taken).min(room as u64) as usize;
        if wanted == 0 {
            return 0;
        }
        let Ok(chunk) = reader.read_chunk(wanted) else {
            unreachable!("a counted event is in the ring: it was pushed before it was counted")
        };
        for event in chunk {
            put(event);
        }
        self.taken.store(taken + wanted as u64, Ordering::Release);
        wanted
    }
}

/// Every lane of a sink, the shared lane first, and what lanes registered later start with.
pub(crate) struct Lanes<E> {
    list: Vec<Arc<Lane<E>>>,
    /// Admission is closed: the driver seals each lane as it takes from it.
    closed: bool,
    /// Events dropped by the lanes removed so far.
    dropped_by_removed: u64,
}

impl<E> Lanes<E> {
    pub(super) fn new(shared_lane: Arc<Lane<E>>, closed: bool) -> Self {
        Self {
            list: vec![shared_lane],
            closed,
            dropped_by_removed: 0,
        }
    }

    /// How many lanes there are, the shared lane included.
    #[cfg(test)]
    pub(super) fn len(&self) -> usize {
        self.list.len()
    }

    /// Admission is closed (the queue's gate says so already): the driver seals the lanes
    /// from now on, and lanes registered later start sealed.
    pub(super) fn close(&mut self) {
        self.closed = true;
    }

    /// Takes up to `max` events into `batch`, lane after lane from lane `start`; returns
    /// the lane the next batch starts with.
    pub(super) fn take(&self, batch: &mut Vec<E>, max: usize, start: usize) -> usize {
        let count = self.list.len();
        let start = start % count;
        for offset in 0..count {
            if batch.len() >= max {
                break;
            }
            let room = max - batch.len();
            self.list[(start + offset) % count].take(room, self.closed, |event| batch.push(event));
        }
        start + 1
    }

    /// Takes one event from the first lane that has one (sealing the empty closed lanes on
    /// the way).
    pub(super) fn take_one(&self) -> Option<E> {
        let mut one = None;
        for lane in &self.list {
            if lane.take(1, self.closed, |event| one = Some(event)) > 0 {
                break;
            }
        }
        one
    }

    /// Every event taken is finished: their slots are free in their lanes.
    pub(super) fn finish_taken(&self) {
        for lane in &self.list {
            let taken = lane.taken.load(Ordering::Relaxed);
            if lane.finished.load(Ordering::Relaxed) != taken {
                lane.finished.store(taken, Ordering::Release);
            }
        }
    }

    /// Removes the lanes of exited threads whose events are all finished.
    pub(super) fn remove_exited(&mut self) {
        let mut dropped = 0;
        self.list.retain(|lane| {
            let remove = lane.exited.load(Ordering::Acquire) && lane.settled();
            if remove {
                lane.retired.store(true, Ordering::Relaxed);
                dropped += lane.dropped.load(Ordering::Acquire);
            }
            !remove
        });
        self.dropped_by_removed += dropped;
    }

    /// Whether the driver has nothing to take: no accepted event waits, and, once
    /// admission is closed, every lane is sealed.
    pub(super) fn is_empty(&self) -> bool {
        self.list
            .iter()
            .all(|lane| lane.queued() == 0 && (!self.closed || lane.is_sealed()))
    }

    /// Accepted events not taken yet, in every lane.
    pub(super) fn queued(&self) -> u64 {
        self.list.iter().map(|lane| lane.queued()).sum()
    }

    /// Whether admission is closed, every lane sealed and every accepted event finished.
    pub(super) fn settled(&self) -> bool {
        self.closed
            && self
                .list
                .iter()
                .all(|lane| lane.is_sealed() && lane.queued() == 0)
    }

    /// Events dropped by every lane, those removed included.
    pub(super) fn dropped(&self) -> u64 {
        let current: u64 = self
            .list
            .iter()
            .map(|lane| lane.dropped.load(Ordering::Relaxed))
            .sum();
        self.dropped_by_removed + current
    }

    pub(super) fn set_flush_targets(&self) {
        for lane in &self.list {
            lane.flush_target.store(lane.accepted(), Ordering::Relaxed);
        }
    }

    pub(super) fn flush_targets_met(&self) -> bool {
        self.list.iter().all(|lane| {
            lane.finished.load(Ordering::Relaxed) >= lane.flush_target.load(Ordering::Relaxed)
        })
    }

    /// Ends counting: closes and seals every lane, moves every accepted event not taken
    /// into `abandoned`; returns how many.
    pub(super) fn abandon(&mut self, abandoned: &mut Vec<E>) -> u64 {
        self.closed = true;
        let before = abandoned.len();
        for lane in &self.list {
            while lane.take(usize::MAX, true, |event| abandoned.push(event)) > 0 {}
        }
        (abandoned.len() - before) as u64
    }

    /// The sink is gone: every thread's entry for its lanes is to be pruned.
    pub(super) fn retire(&self) {
        for lane in &self.list {
            lane.retired.store(true, Ordering::Relaxed);
        }
    }
}

/// What a producer thread keeps for one of its lanes.
struct Producer<E> {
    lane: Arc<Lane<E>>,
    ring: RingProducer<E>,
    /// Events this thread pushed to the lane and that were accepted.
    pushed: u64,
    /// A value the lane's `finished` had: a lower bound of it.
    finished_hint: u64,
    /// The sink's high watermark as this thread last raised or saw it.
    watermark_seen: u64,
    /// Events this thread dropped because the lane was full (published in the lane).
    dropped: u64,
}

impl<E> Drop for Producer<E> {
    fn drop(&mut self) {
        self.lane.exited.store(true, Ordering::Release);
    }
}

/// A thread's entry for one of its lanes, its event type erased.
trait Entry {
    /// The sink is gone: the entry can be dropped.
    fn retired(&self) -> bool;

    fn as_any(&mut self) -> &mut dyn Any;
}

impl<E: Send + 'static> Entry for Producer<E> {
    fn retired(&self) -> bool {
        self.lane.retired.load(Ordering::Relaxed)
    }

    fn as_any(&mut self) -> &mut dyn Any {
        self
    }
}

/// A thread's lanes: `(queue id, entry)`, one per sink it logs to.
type Entries = RefCell<Vec<(u64, Box<dyn Entry>)>>;

#[cfg(not(loom))]
std::thread_local! {
    static LANES: Entries = const { RefCell::new(Vec::new()) };
}

#[cfg(loom)]
loom::thread_local! {
    static LANES: Entries = RefCell::new(Vec::new());
}

/// Pushes `event` into the calling thread's lane of `queue`, registering the lane on the
/// thread's first event; into the shared lane when the thread has none.
pub(super) fn push<E: Send + 'static>(
    queue: &Queue<E>,
    event: E,
    drop_when_full: bool,
) -> Pushed<E> {
    let mut event = Some(event);
    let pushed = LANES
        .try_with(|entries| push_own(queue, entries, &mut event, drop_when_full))
        .ok()
        .flatten();
    match (pushed, event) {
        (Some(pushed), _) => pushed,
        // No lane of its own: thread-local storage torn down, a nested call, or a ring the
        // allocator refused.
        (None, Some(event)) => push_shared(queue, event, drop_when_full),
        (None, None) => unreachable!("an event not pushed is still held"),
    }
}

/// Pushes into the thread's own lane; `None`, leaving `event` untouched, when it has none.
fn push_own<E: Send + 'static>(
    queue: &Queue<E>,
    entries: &Entries,
    event: &mut Option<E>,
    drop_when_full: bool,
) -> Option<Pushed<E>> {
    let mut entries = entries.try_borrow_mut().ok()?;
    let index = match entries.iter().position(|(id, _)| *id == queue.hot.id) {
        Some(index) => index,
        None => register(queue, &mut entries)?,
    };
    let producer = entries[index].1.as_any().downcast_mut::<Producer<E>>()?;
    let event = event.take()?;
    Some(push_to(queue, producer, event, drop_when_full))
}

/// Registers a lane of `queue` for the calling thread; returns its entry's index, or
/// `None` when its ring cannot be allocated. Prunes the entries of sinks that are gone.
#[cold]
fn register<E: Send + 'static>(
    queue: &Queue<E>,
    entries: &mut Vec<(u64, Box<dyn Entry>)>,
) -> Option<usize> {
    entries.retain(|(_, entry)| !entry.retired());
    if queue.hot.capacity == 0 {
        // A sink whose ring could not be allocated: it never accepts an event.
        return None;
    }
    // Allocated outside the lock the driver takes for each batch.
    let (ring, reader) = ring(queue.hot.capacity as usize)?;
    let lane = {
        let mut lanes = lock(&queue.lanes);
        let lane = Arc::new(Lane::new(reader, lanes.closed));
        lanes.list.push(lane.clone());
        lane
    };
    let watermark_seen = queue.high_watermark.load(Ordering::Relaxed);
    entries.push((
        queue.hot.id,
        Box::new(Producer {
            lane,
            ring,
            pushed: 0,
            finished_hint: 0,
            watermark_seen,
            dropped: 0,
        }),
    ));
    Some(entries.len() - 1)
}

/// An event whose count a seal may not have read (its producer saw the lane sealing or
/// sealed after counting it): accepted, or taken back (`Err`) — see the module docs.
#[cold]
fn late<E>(queue: &Queue<E>, lane: &Lane<E>, count: u64) -> Result<(), E> {
    let mut reader = lock(&lane.reader);
    // The seal ended before this lock was released to us.
    let sealed_at = lane.sealed_at.load(Ordering::Acquire);
    if count <= sealed_at {
        return Ok(());
    }
    if lane.taken.load(Ordering::Acquire) < sealed_at {
        // The driver has accepted events of this lane still to take: this one joins them.
        lane.sealed_at.store(count, Ordering::Release);
        return Ok(());
    }
    // Not accepted. The event is the only one in the ring.
    let event = reader.pop();
    drop(reader);
    queue.progress.notify_all();
    Err(event.expect("an event counted after the seal is still in the ring"))
}

/// After a count: a seal it may have missed, a parked driver to wake.
#[inline]
fn published<E>(queue: &Queue<E>, lane: &Lane<E>, count: u64) -> Result<(), E> {
    barrier::light();
    if lane.sealed_at.load(Ordering::Acquire) != OPEN {
        late(queue, lane, count)?;
    }
    if queue.hot.gate.load(Ordering::Relaxed) & PARKED != 0 {
        queue.wake_parked_driver();
    }
    Ok(())
}

/// The hot path: the limit checked against the thread's own counts, one push, one count.
#[inline]
fn push_to<E>(
    queue: &Queue<E>,
    producer: &mut Producer<E>,
    event: E,
    drop_when_full: bool,
) -> Pushed<E> {
    let lane = &*producer.lane;
    if queue.hot.gate.load(Ordering::Acquire) & CLOSED != 0 {
        return Pushed::Closed(event);
    }
    let capacity = queue.hot.capacity;
    if producer.pushed - producer.finished_hint >= capacity {
        // Only when the cheap bound reaches the limit is the driver's counter read: a line
        // the driver writes after every batch.
        producer.finished_hint = lane.finished.load(Ordering::Acquire);
        if producer.pushed - producer.finished_hint >= capacity {
            if drop_when_full {
                // Counted on the lane's own line: no write another producer makes.
                producer.dropped += 1;
                lane.dropped.store(producer.dropped, Ordering::Relaxed);
                drop(event);
                return Pushed::Dropped;
            }
            return Pushed::Full(event);
        }
    }
    if let Err(PushError::Full(event)) = producer.ring.push(event) {
        // Not while the limit holds: the ring has room for `capacity` events.
        return Pushed::Full(event);
    }
    let count = producer.pushed + 1;
    lane.count.store(count, Ordering::Release);
    if let Err(event) = published(queue, lane, count) {
        return Pushed::Closed(event);
    }
    producer.pushed = count;
    // The watermark moves only when the cheap bound exceeds it; then the exact pending
    // count is taken.
    if producer.pushed - producer.finished_hint > producer.watermark_seen {
        producer.finished_hint = lane.finished.load(Ordering::Acquire);
        let pending = producer.pushed - producer.finished_hint;
        if pending > producer.watermark_seen {
            let before = queue.high_watermark.fetch_max(pending, Ordering::Relaxed);
            producer.watermark_seen = before.max(pending);
        }
    }
    Pushed::Accepted
}

/// Pushes into the shared lane, under the lock of its producing end.
#[cold]
fn push_shared<E>(queue: &Queue<E>, event: E, drop_when_full: bool) -> Pushed<E> {
    let lane = &*queue.shared_lane;
    let mut writer = lock(&queue.shared_writer);
    if queue.hot.gate.load(Ordering::Acquire) & CLOSED != 0 {
        return Pushed::Closed(event);
    }
    // Only the holder of `shared_writer` writes the count.
    let count = lane.count.load(Ordering::Relaxed);
    let pending = count - lane.finished.load(Ordering::Acquire);
    if pending >= queue.hot.capacity {
        if drop_when_full {
            lane.dropped.fetch_add(1, Ordering::Relaxed);
            drop(event);
            return Pushed::Dropped;
        }
        return Pushed::Full(event);
    }
    if let Err(PushError::Full(event)) = writer.push(event) {
        return Pushed::Full(event);
    }
    lane.count.store(count + 1, Ordering::Release);
    if let Err(event) = published(queue, lane, count + 1) {
        return Pushed::Closed(event);
    }
    queue
        .high_watermark
        .fetch_max(pending + 1, Ordering::Relaxed);
    Pushed::Accepted
}
