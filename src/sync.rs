//! The synchronization primitives the core is built from.
//!
//! Every atomic, lock and shared pointer of the core comes from here, so that the loom
//! models (`RUSTFLAGS="--cfg loom"`) exercise the real code rather than a copy of it.

#[cfg(loom)]
pub(crate) use loom::sync::atomic::{
    AtomicBool, AtomicU8, AtomicU64, AtomicUsize, Ordering, fence,
};
#[cfg(loom)]
pub(crate) use loom::sync::{Arc, Mutex, MutexGuard};

#[cfg(not(loom))]
pub(crate) use std::sync::atomic::{AtomicBool, AtomicU8, AtomicU64, AtomicUsize, Ordering, fence};
#[cfg(not(loom))]
pub(crate) use std::sync::{Arc, Mutex, MutexGuard};

/// Locks `mutex`, ignoring poisoning.
///
/// mvx never runs user code while holding one of its locks, so a poisoned lock can only
/// come from a panic in mvx itself between two consistent states; the data is still valid.
pub(crate) fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    #[cfg(loom)]
    {
        mutex.lock().unwrap()
    }
    #[cfg(not(loom))]
    {
        mutex
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// Pads and aligns a value to its own cache line pair, so that counters written by the
/// driver do not share a line with the word every producer writes.
#[derive(Debug, Default)]
#[repr(align(128))]
pub(crate) struct CachePadded<T>(pub(crate) T);

impl<T> std::ops::Deref for CachePadded<T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.0
    }
}

/// An [`Event`](event_listener::Event) that costs its notifier a fence and a load, not a
/// lock, while nobody waits.
///
/// A waiter [`enter`](Signal::enter)s, registers a listener on [`event`](Signal::event),
/// calls [`settle`](Signal::settle), re-checks its condition and only then waits. A notifier
/// changes the condition, then calls [`notify_all`](Signal::notify_all). Either the
/// notifier sees the waiter (the two fences are ordered that way) and notifies it, or the
/// waiter's re-check sees the change.
#[derive(Debug, Default)]
pub(crate) struct Signal {
    event: event_listener::Event,
    waiters: AtomicUsize,
}

impl Signal {
    pub(crate) fn new() -> Self {
        Self::default()
    }

    pub(crate) fn event(&self) -> &event_listener::Event {
        &self.event
    }

    /// Counts a waiter until the returned guard is dropped.
    pub(crate) fn enter(&self) -> Waiting<'_> {
        self.waiters.fetch_add(1, Ordering::Relaxed);
        Waiting(self)
    }

    /// Orders a waiter's registration before its re-check.
    pub(crate) fn settle(&self) {
        fence(Ordering::SeqCst);
    }

    /// Wakes every waiter.
    pub(crate) fn notify_all(&self) {
        fence(Ordering::SeqCst);
        if self.waiters.load(Ordering::Relaxed) != 0 {
            self.event.notify(usize::MAX);
        }
    }
}

/// A waiter counted by a [`Signal`].
#[derive(Debug)]
pub(crate) struct Waiting<'a>(&'a Signal);

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        self.0.waiters.fetch_sub(1, Ordering::Relaxed);
    }
}
