//! The lanes of a sink's queue: one ring per producer thread, registered on the thread's
//! first event, and the shared lane of producers without one (see [the queue
//! module](super)).
//!
//! A producer finds its lane in a thread-local list of the lanes it has, one per sink it
//! logs to, keyed by the sink's queue id (never reused, unlike an address). The entry owns
//! what only the producer writes — its count of events pushed, its copy of what the driver
//! finished, the watermark it last raised — so that an event costs the producer no write
//! that another thread reads, but the push itself. When the thread exits its entries are
//! dropped, and each marks its lane as exited: the driver drains it and removes it.

use std::any::Any;
use std::cell::RefCell;

use concurrent_queue::{ConcurrentQueue, PushError};

use super::{Pushed, Queue, ring};
use crate::sync::{Arc, AtomicBool, AtomicU64, CachePadded, Ordering, lock};

/// One ring of a sink's queue, and what the driver and its producer know of it.
pub(crate) struct Lane<E> {
    ring: ConcurrentQueue<E>,
    /// Events of this lane the driver finished: written by the driver after each batch,
    /// read by the producer only when its own bound says the limit may be reached.
    finished: CachePadded<AtomicU64>,
    /// Events the driver took from the ring (driver only).
    taken: AtomicU64,
    /// Events dropped because the lane was full: written by its producer (the shared lane's
    /// by any thread).
    dropped: CachePadded<AtomicU64>,
    /// The events pushed when the driver last took the flush targets (driver only).
    flush_target: AtomicU64,
    /// The thread whose lane this is has exited: once drained, the lane is removed.
    exited: AtomicBool,
    /// The sink is gone: a thread's entry for the lane is pruned.
    retired: AtomicBool,
}

impl<E> Lane<E> {
    pub(super) fn new(ring: ConcurrentQueue<E>) -> Self {
        Self {
            ring,
            finished: CachePadded(AtomicU64::new(0)),
            taken: AtomicU64::new(0),
            dropped: CachePadded(AtomicU64::new(0)),
            flush_target: AtomicU64::new(0),
            exited: AtomicBool::new(false),
            retired: AtomicBool::new(false),
        }
    }

    pub(super) fn close(&self) {
        self.ring.close();
    }

    /// Whether every event pushed here was taken and finished.
    fn settled(&self) -> bool {
        self.ring.is_empty()
            && self.finished.load(Ordering::Relaxed) == self.taken.load(Ordering::Relaxed)
    }
}

/// Every lane of a sink, the shared lane first, and whether admission is closed.
pub(crate) struct Lanes<E> {
    list: Vec<Arc<Lane<E>>>,
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

    pub(super) fn is_closed(&self) -> bool {
        self.closed
    }

    /// Closes admission: every ring, and those of lanes registered later.
    pub(super) fn close(&mut self) {
        self.closed = true;
        for lane in &self.list {
            lane.close();
        }
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
            let lane = &self.list[(start + offset) % count];
            let before = batch.len();
            while batch.len() < max {
                match lane.ring.pop() {
                    Ok(event) => batch.push(event),
                    Err(_) => break,
                }
            }
            let taken = (batch.len() - before) as u64;
            if taken > 0 {
                lane.taken.fetch_add(taken, Ordering::Relaxed);
            }
        }
        start + 1
    }

    /// Takes one event from the first lane that has one.
    pub(super) fn take_one(&self) -> Option<E> {
        self.list.iter().find_map(|lane| {
            let event = lane.ring.pop().ok()?;
            lane.taken.fetch_add(1, Ordering::Relaxed);
            Some(event)
        })
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

    /// Events dropped by every lane, those removed included.
    pub(super) fn dropped(&self) -> u64 {
        let current: u64 = self
            .list
            .iter()
            .map(|lane| lane.dropped.load(Ordering::Relaxed))
            .sum();
        self.dropped_by_removed + current
    }

    pub(super) fn is_empty(&self) -> bool {
        self.list.iter().all(|lane| lane.ring.is_empty())
    }

    /// Events queued in every lane.
    pub(super) fn queued(&self) -> u64 {
        self.list.iter().map(|lane| lane.ring.len() as u64).sum()
    }

    pub(super) fn set_flush_targets(&self) {
        for lane in &self.list {
            let pushed = lane.taken.load(Ordering::Relaxed) + lane.ring.len() as u64;
            lane.flush_target.store(pushed, Ordering::Relaxed);
        }
    }

    pub(super) fn flush_targets_met(&self) -> bool {
        self.list.iter().all(|lane| {
            lane.finished.load(Ordering::Relaxed) >= lane.flush_target.load(Ordering::Relaxed)
        })
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
    /// Events this thread pushed to the lane.
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
    let index = match entries.iter().position(|(id, _)| *id == queue.id) {
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
    if queue.capacity == 0 {
        // A sink whose ring could not be allocated: it never accepts an event.
        return None;
    }
    // Allocated (and its slots stamped) outside the lock the driver takes for each batch.
    let lane = Arc::new(Lane::new(ring(queue.capacity as usize).ok()?));
    {
        let mut lanes = lock(&queue.lanes);
        if lanes.closed {
            lane.close();
        }
        lanes.list.push(lane.clone());
    }
    let watermark_seen = queue.high_watermark.load(Ordering::Relaxed);
    entries.push((
        queue.id,
        Box::new(Producer {
            lane,
            pushed: 0,
            finished_hint: 0,
            watermark_seen,
            dropped: 0,
        }),
    ));
    Some(entries.len() - 1)
}

/// The hot path: the limit checked against the thread's own counts, one push.
#[inline]
fn push_to<E>(
    queue: &Queue<E>,
    producer: &mut Producer<E>,
    event: E,
    drop_when_full: bool,
) -> Pushed<E> {
    let capacity = queue.capacity;
    if producer.pushed - producer.finished_hint >= capacity {
        // Only when the cheap bound reaches the limit is the driver's counter read: a line
        // the driver writes after every batch.
        producer.finished_hint = producer.lane.finished.load(Ordering::Acquire);
        if producer.pushed - producer.finished_hint >= capacity {
            // A closed sink refuses the event rather than report its lane full.
            if producer.lane.ring.is_closed() {
                return Pushed::Closed(event);
            }
            if drop_when_full {
                // Counted on the lane's own line: no write another producer makes.
                producer.dropped += 1;
                producer
                    .lane
                    .dropped
                    .store(producer.dropped, Ordering::Relaxed);
                drop(event);
                return Pushed::Dropped;
            }
            return Pushed::Full(event);
        }
    }
    match producer.lane.ring.push(event) {
        Ok(()) => {}
        Err(PushError::Closed(event)) => return Pushed::Closed(event),
        // Not while the limit holds: the ring has room for `capacity` events.
        Err(PushError::Full(event)) => return Pushed::Full(event),
    }
    producer.pushed += 1;
    // The watermark moves only when the cheap bound exceeds it; then the exact pending
    // count is taken.
    if producer.pushed - producer.finished_hint > producer.watermark_seen {
        producer.finished_hint = producer.lane.finished.load(Ordering::Acquire);
        let pending = producer.pushed - producer.finished_hint;
        if pending > producer.watermark_seen {
            let before = queue.high_watermark.fetch_max(pending, Ordering::Relaxed);
            producer.watermark_seen = before.max(pending);
        }
    }
    Pushed::Accepted
}

/// Pushes into the shared lane, whose limit is its ring.
#[cold]
fn push_shared<E>(queue: &Queue<E>, event: E, drop_when_full: bool) -> Pushed<E> {
    match queue.shared_lane.ring.push(event) {
        Ok(()) => {
            let queued = queue.shared_lane.ring.len() as u64;
            queue.high_watermark.fetch_max(queued, Ordering::Relaxed);
            Pushed::Accepted
        }
        Err(PushError::Full(event)) if drop_when_full => {
            queue.shared_lane.dropped.fetch_add(1, Ordering::Relaxed);
            drop(event);
            Pushed::Dropped
        }
        Err(PushError::Full(event)) => Pushed::Full(event),
        Err(PushError::Closed(event)) => Pushed::Closed(event),
    }
}
