//! The synchronization primitives the core is built from.
//!
//! Every atomic, lock, shared pointer, waker slot and thread of the core comes from here,
//! so that the loom models (`RUSTFLAGS="--cfg loom"`, `tests/loom_*.rs`) exercise the real
//! code rather than a copy of it. Under `cfg(loom)` they are loom's, with small stand-ins
//! where loom has no equivalent (`OnceLock`, the stop `Timer`); `concurrent-queue` and
//! `event-listener`, which the core also builds on, switch to loom with it.

#[cfg(not(loom))]
pub(crate) use std::sync::atomic::{AtomicBool, AtomicU8, AtomicU64, AtomicUsize, Ordering, fence};
#[cfg(not(loom))]
pub(crate) use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
#[cfg(not(loom))]
pub(crate) use std::thread;

#[cfg(not(loom))]
pub(crate) use futures::task::AtomicWaker;

#[cfg(loom)]
pub(crate) use loom::sync::atomic::{
    AtomicBool, AtomicU8, AtomicU64, AtomicUsize, Ordering, fence,
};
#[cfg(loom)]
pub(crate) use loom::sync::{Arc, Mutex, MutexGuard};
#[cfg(loom)]
pub(crate) use loom::thread;

/// loom's `AtomicWaker` behind the signature of `futures::task::AtomicWaker`.
#[cfg(loom)]
#[derive(Debug, Default)]
pub(crate) struct AtomicWaker(loom::future::AtomicWaker);

#[cfg(loom)]
impl AtomicWaker {
    pub(crate) fn new() -> Self {
        Self::default()
    }

    pub(crate) fn register(&self, waker: &std::task::Waker) {
        self.0.register_by_ref(waker);
    }

    pub(crate) fn wake(&self) {
        self.0.wake();
    }
}

/// `std::sync::OnceLock` for the loom models (loom has none): the initializer runs under a
/// loom lock, so that concurrent callers wait for it as they do with std's, and loom sees
/// them wait. The value is leaked to hand out plain references without unsafe code; a model
/// creates a few.
#[cfg(loom)]
#[derive(Debug)]
pub(crate) struct OnceLock<T: 'static> {
    value: Mutex<Option<&'static T>>,
    init: Mutex<()>,
}

#[cfg(loom)]
impl<T> OnceLock<T> {
    pub(crate) fn new() -> Self {
        Self {
            value: Mutex::new(None),
            init: Mutex::new(()),
        }
    }

    pub(crate) fn get(&self) -> Option<&T> {
        *lock(&self.value)
    }

    pub(crate) fn get_or_init(&self, init: impl FnOnce() -> T) -> &T {
        if let Some(value) = self.get() {
            return value;
        }
        let _initializing = lock(&self.init);
        if let Some(value) = self.get() {
            return value;
        }
        let value: &'static T = Box::leak(Box::new(init()));
        *lock(&self.value) = Some(value);
        value
    }
}

/// The timer that cuts a dispatch off at the stop deadline.
#[cfg(not(loom))]
pub(crate) use async_io::Timer;

/// Stands in for `async_io::Timer` under loom, which has no clock: the models run without a
/// start or stop timeout, so a timer is never created.
#[cfg(loom)]
#[derive(Debug)]
pub(crate) struct Timer(());

#[cfg(loom)]
impl Timer {
    pub(crate) fn at(_deadline: std::time::Instant) -> Self {
        panic!(
            "start and stop timeouts are not modelled under loom: use `start_timeout(None)` and \
             `stop_timeout(None)`"
        )
    }
}

#[cfg(loom)]
impl std::future::Future for Timer {
    type Output = std::time::Instant;

    fn poll(
        self: std::pin::Pin<&mut Self>,
        _cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::time::Instant> {
        unreachable!("a loom timer is never created")
    }
}

/// A SeqCst fence under loom; nothing otherwise.
///
/// For a store-buffering pair whose four accesses are all SeqCst — one side writes `a` then
/// reads `b`, the other writes `b` then reads `a` — the memory model forbids both reads
/// missing the other side's write, so no fence is needed. loom, though, models SeqCst loads
/// and stores as acquire/release and would report that outcome (a lost wake-up); it does
/// model SeqCst fences, so one after each side's write restores, in the models, the order
/// the real code already has, and the ordinary build pays nothing for it.
#[inline(always)]
pub(crate) fn seq_cst_for_loom() {
    #[cfg(loom)]
    fence(Ordering::SeqCst);
}

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
///
/// `pub` (in this private module) so that `crate::__loom` can hand it to the loom models in
/// `tests/loom_signal.rs`; outside `--cfg loom` nothing outside the crate can name it.
#[derive(Debug, Default)]
pub struct Signal {
    event: event_listener::Event,
    waiters: AtomicUsize,
}

impl Signal {
    /// A signal nobody waits on.
    pub fn new() -> Self {
        Self::default()
    }

    /// The event waiters listen on.
    pub fn event(&self) -> &event_listener::Event {
        &self.event
    }

    /// Counts a waiter until the returned guard is dropped.
    pub fn enter(&self) -> Waiting<'_> {
        self.waiters.fetch_add(1, Ordering::Relaxed);
        Waiting(self)
    }

    /// Orders a waiter's registration before its re-check.
    pub fn settle(&self) {
        fence(Ordering::SeqCst);
    }

    /// Wakes every waiter.
    pub fn notify_all(&self) {
        fence(Ordering::SeqCst);
        if self.waiters.load(Ordering::Relaxed) != 0 {
            self.event.notify(usize::MAX);
        }
    }
}

/// A waiter counted by a [`Signal`].
#[derive(Debug)]
pub struct Waiting<'a>(&'a Signal);

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        self.0.waiters.fetch_sub(1, Ordering::Relaxed);
    }
}
