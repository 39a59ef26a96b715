//! The connections a server serves at once, and which of them makes room for a newcomer.
//!
//! Each connection has a [`Slot`]: it waits for a request head (since it was accepted, or
//! since its last answer was written), or it answers a request. At the limit, a new
//! connection takes the slot of a waiting connection: of those that have never completed a
//! request, the oldest; if there are none, the keep-alive connection idle the longest. A
//! connection that answers a request keeps its slot, and when every connection does, the
//! newcomer is refused. So connections that send nothing, or a request head a byte at a
//! time, or sit idle between keep-alive requests, cannot lock out a scraper; and a scraper
//! that keeps its connection alive loses it to a newcomer only once no connection that
//! never sent a request is left.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use futures::future::{AbortHandle, AbortRegistration};

/// [`Slot::state`]: the connection answers a request.
const ANSWERING: u64 = u64::MAX;
/// [`Slot::state`]: the answer is with hyper; the connection waits again once it is written.
const WRITING: u64 = u64::MAX - 1;
/// Set in [`Slot::state`] beside the tick when the connection waits after an answer: it
/// is evicted after every connection that has never completed a request.
const ANSWERED_BEFORE: u64 = 1 << 62;

/// What a connection is doing, told by the connection as it serves requests and read by the
/// driver when it must make room.
pub(super) struct Slot {
    /// The tick of [`Slots::clock`] since which the connection waits for a request head
    /// (with [`ANSWERED_BEFORE`] if it has completed a request), or [`ANSWERING`] or
    /// [`WRITING`]. The lowest value of waiting connections is the one to evict.
    state: AtomicU64,
    clock: Arc<AtomicU64>,
}

impl Slot {
    /// A request head is complete: the connection answers it, and keeps its slot until the
    /// answer is written.
    pub(super) fn answering(&self) {
        self.state.store(ANSWERING, Ordering::Relaxed);
    }

    /// hyper has taken the whole answer (its body is dropped): the connection waits for its
    /// next request once a flush has written what hyper buffered.
    pub(super) fn answered(&self) {
        self.state.store(WRITING, Ordering::Relaxed);
    }

    /// A flush of the connection completed: everything hyper buffered is written.
    pub(super) fn flushed(&self) {
        if self.state.load(Ordering::Relaxed) == WRITING {
            let now = self.clock.fetch_add(1, Ordering::Relaxed);
            self.state.store(ANSWERED_BEFORE | now, Ordering::Relaxed);
        }
    }

    /// The rank of the connection among those to evict, lowest first, while it waits for a
    /// request head; `None` while it answers one.
    fn waiting_since(&self) -> Option<u64> {
        let state = self.state.load(Ordering::Relaxed);
        (state < WRITING).then_some(state)
    }
}

/// A connection the driver serves: its slot, and the handle that closes it.
struct Open {
    id: u64,
    slot: Arc<Slot>,
    close: AbortHandle,
}

/// The slots of a server: at most `limit` connections.
pub(super) struct Slots {
    limit: usize,
    /// Counts the moments connections start waiting: the lowest waiting tick is the oldest.
    clock: Arc<AtomicU64>,
    next_id: u64,
    /// Few (the limit, 64 by default): scanned in full to make room.
    open: Vec<Open>,
}

/// A slot given to a new connection: serve the connection under `close` (an
/// [`Abortable`](futures::future::Abortable)), tell `slot` what it does, and report `id` to
/// [`Slots::finished`] when it ends.
pub(super) struct Ticket {
    pub(super) id: u64,
    pub(super) slot: Arc<Slot>,
    pub(super) close: AbortRegistration,
}

/// Whether a new connection is served.
pub(super) enum Admission {
    /// A slot was free.
    Free(Ticket),
    /// A connection waiting for a request head was closed to make room.
    Evicted(Ticket),
    /// Every connection is answering a request.
    Refused,
}

impl Slots {
    pub(super) fn new(limit: usize) -> Self {
        Self {
            limit,
            clock: Arc::new(AtomicU64::new(0)),
            next_id: 0,
            open: Vec::new(),
        }
    }

    /// A slot for a new connection, evicting a waiting connection if every slot is taken
    /// (see the [module docs](self) for which); [`Admission::Refused`] if every connection
    /// answers a request.
    pub(super) fn admit(&mut self) -> Admission {
        let evicted = self.open.len() >= self.limit;
        if evicted {
            let oldest = self
                .open
                .iter()
                .enumerate()
                .filter_map(|(index, open)| Some((open.slot.waiting_since()?, index)))
                .min();
            let Some((_, index)) = oldest else {
                return Admission::Refused;
            };
            self.open.swap_remove(index).close.abort();
        }
        let (close, registration) = AbortHandle::new_pair();
        let slot = Arc::new(Slot {
            state: AtomicU64::new(self.clock.fetch_add(1, Ordering::Relaxed)),
            clock: self.clock.clone(),
        });
        let id = self.next_id;
        self.next_id += 1;
        self.open.push(Open {
            id,
            slot: slot.clone(),
            close,
        });
        let ticket = Ticket {
            id,
            slot,
            close: registration,
        };
        if evicted {
            Admission::Evicted(ticket)
        } else {
            Admission::Free(ticket)
        }
    }

    /// The connection `id` has ended (or was evicted, and has already left its slot).
    pub(super) fn finished(&mut self, id: u64) {
        if let Some(index) = self.open.iter().position(|open| open.id == id) {
            self.open.swap_remove(index);
        }
    }

    /// How many connections are served.
    pub(super) fn len(&self) -> usize {
        self.open.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ticket(admission: Admission) -> (Ticket, bool) {
        match admission {
            Admission::Free(ticket) => (ticket, false),
            Admission::Evicted(ticket) => (ticket, true),
            Admission::Refused => panic!("refused"),
        }
    }

    #[test]
    fn at_the_limit_a_waiting_connection_makes_room() {
        let mut slots = Slots::new(3);
        let (a, _) = ticket(slots.admit());
        let (b, _) = ticket(slots.admit());
        let (c, evicted) = ticket(slots.admit());
        assert!(!evicted);
        let closed = |ticket: &Ticket| ticket.close.handle().is_aborted();
        // `a` answers a request; `b` has answered one and waits for the next.
        a.slot.answering();
        b.slot.answering();
        b.slot.answered();
        b.slot.flushed();
        assert_eq!(b.slot.waiting_since(), Some(ANSWERED_BEFORE | 3));
        // `a`'s answer is with hyper but not yet flushed: it keeps its slot.
        a.slot.answering();
        a.slot.answered();
        a.slot.flushed();
        a.slot.answering();
        a.slot.answered();
        assert_eq!(a.slot.waiting_since(), None);

        // The connection that never sent a request goes first, though `b` waits longer.
        let (d, evicted) = ticket(slots.admit());
        assert!(evicted);
        assert!(closed(&c) && !closed(&b) && !closed(&a));
        // Of those that never sent a request, the oldest: `d`, before `e`.
        let (e, evicted) = ticket(slots.admit());
        assert!(evicted && closed(&d) && !closed(&b));
        // None left: the keep-alive connection idle the longest.
        a.slot.flushed();
        e.slot.answering();
        let (f, evicted) = ticket(slots.admit());
        assert!(evicted && closed(&b) && !closed(&a));
        // Every connection answers a request: a newcomer is refused.
        a.slot.answering();
        f.slot.answering();
        assert!(matches!(slots.admit(), Admission::Refused));
        assert_eq!(slots.len(), 3);

        // An evicted connection that ends leaves the slots as they are; one that was served
        // frees its slot.
        slots.finished(c.id);
        assert_eq!(slots.len(), 3);
        slots.finished(a.id);
        assert_eq!(slots.len(), 2);
        assert!(matches!(slots.admit(), Admission::Free(_)));
    }
}
