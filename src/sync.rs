//! The synchronization primitives the core is built from, and the one way mvx waits.
//!
//! Every atomic, lock, shared pointer, waker slot and thread of the core comes from here,
//! so that the loom models (`RUSTFLAGS="--cfg loom"`, `tests/loom_*.rs`) exercise the real
//! code rather than a copy of it. Under `cfg(loom)` they are loom's, with small stand-ins
//! where loom has no equivalent (`OnceLock`, the stop `Timer`); `event-listener`, which the
//! core also builds on, switches to loom with it. The lanes' `rtrb` rings do not (see the
//! queue module's loom section).
//!
//! # Waiting
//!
//! Each wait of mvx — a producer waiting for room, a flush waiting for its events, a
//! caller waiting for a lifecycle operation — is written once, as a [`Wait`]: a condition
//! check and the [`Signal`] that announces changes of it. Two engines wait on any `Wait`:
//!
//! - [`Waiter`], an `event_listener_strategy::EventListenerFuture`: the named futures
//!   (`Send`, `Flush`, `WaitHandle`, …) poll it with the `NonBlocking` strategy;
//! - [`block_on`], the one place where a thread blocks on mvx: every `wait()`,
//!   `wait_timeout()` and `wait_deadline()` of those futures, and so `log_blocking`,
//!   `flush_blocking`, `stop_and_wait`, comes through it. It spins first when the wait asks
//!   for it, parks with a listener on its own stack (a blocked producer does not allocate),
//!   and honours a deadline.
//!
//! Both follow the `Signal` protocol (enter, listen, settle, re-check, wait), so a wait
//! cannot miss the change it waits for, whichever way it is waited on.
//!
//! # Waits that could only wait for themselves
//!
//! A blocking wait whose condition only a driver can make true, on a thread that is the
//! only one able to poll that driver, would never end. [`block_on`] asks the wait
//! ([`Wait::would_deadlock`]) once its condition is found false, before it spins or parks,
//! and returns [`Interrupted::WouldDeadlock`] at once. The driver's [`DriverSeat`] knows;
//! its module says exactly which cases are caught and which are not.
//!
//! # Thread-local scopes
//!
//! Besides the driver seat, the core keeps one more thread-local: the telemetry-suppression
//! scope ([`suppression`]), which a driver opens around its dispatcher's code and the
//! facades read.

#[cfg(not(loom))]
pub(crate) use std::sync::atomic::{AtomicBool, AtomicU8, AtomicU64, AtomicUsize, Ordering, fence};
#[cfg(not(loom))]
pub(crate) use std::sync::{Arc, Mutex, MutexGuard, OnceLock};

use std::pin::Pin;
use std::task::Poll;
use std::time::{Duration, Instant};

use event_listener::{EventListener, Listener, listener};
use event_listener_strategy::{EventListenerFuture, NonBlocking, Strategy};
#[cfg(not(loom))]
pub(crate) use std::thread;

#[cfg(not(loom))]
pub(crate) use futures::task::AtomicWaker;

/// A thread-local `Cell`: std's, const-initialized (a read is one thread-local access; no
/// lazy registration, no allocation), or loom's under `cfg(loom)`, whose model threads
/// share one OS thread.
macro_rules! thread_local_cell {
    ($(#[$attribute:meta])* static $name:ident: $type:ty = $init:expr;) => {
        #[cfg(not(loom))]
        std::thread_local! {
            $(#[$attribute])*
            static $name: std::cell::Cell<$type> = const { std::cell::Cell::new($init) };
        }
        #[cfg(loom)]
        loom::thread_local! {
            $(#[$attribute])*
            static $name: std::cell::Cell<$type> = std::cell::Cell::new($init);
        }
    };
}

pub(crate) mod barrier;
mod driver_seat;
pub(crate) mod suppression;

#[cfg(any(feature = "smol", feature = "thread", loom))]
pub(crate) use self::driver_seat::mark_runtime_thread;
pub(crate) use self::driver_seat::{DriverSeat, seated};

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
/// start or stop timeout, without loss reports and without restarts, so a timer is never
/// created.
#[cfg(loom)]
#[derive(Debug)]
pub(crate) struct Timer(());

#[cfg(loom)]
impl Timer {
    pub(crate) fn at(_deadline: std::time::Instant) -> Self {
        panic!(
            "timers are not modelled under loom: use `start_timeout(None)`, \
             `stop_timeout(None)`, `loss_report_interval(None)` and no restart backoff"
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
/// driver, what a producer writes and what every producer reads do not share a line.
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
#[derive(Debug)]
pub struct Signal {
    event: event_listener::Event,
    waiters: AtomicUsize,
}

impl Default for Signal {
    fn default() -> Self {
        Self::new()
    }
}

impl Signal {
    /// A signal nobody waits on.
    ///
    /// The event's shared state is allocated here rather than by its first listener, so
    /// that waiting never allocates: a producer blocked for room, for one, may be the first
    /// to wait on its sink's signal long after the sink started.
    pub fn new() -> Self {
        let event = event_listener::Event::new();
        drop(event.listen());
        Self {
            event,
            waiters: AtomicUsize::new(0),
        }
    }

    /// The event waiters listen on.
    pub fn event(&self) -> &event_listener::Event {
        &self.event
    }

    /// Counts a waiter until the returned guard is dropped.
    pub fn enter(&self) -> Waiting<'_> {
        self.arrive();
        Waiting(self)
    }

    /// Counts a waiter, until [`leave`](Self::leave): for a waiter that cannot hold a
    /// [`Waiting`] guard (one stored beside the signal's owner).
    fn arrive(&self) {
        self.waiters.fetch_add(1, Ordering::Relaxed);
    }

    /// Stops counting a waiter counted by [`arrive`](Self::arrive).
    fn leave(&self) {
        self.waiters.fetch_sub(1, Ordering::Relaxed);
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
        self.0.leave();
    }
}

/// Waits `2^round` CPU pause instructions without touching shared memory.
pub(crate) fn pause(round: u32) {
    for _ in 0..1u32 << round {
        std::hint::spin_loop();
    }
}

/// One wait of mvx, written once: a condition, and the [`Signal`] that announces changes
/// of it. [`Waiter`] awaits it; [`block_on`] blocks a thread on it.
pub(crate) trait Wait {
    /// What the wait yields once its condition holds.
    type Output;

    /// How many times the blocking path re-checks, with growing pauses, before it parks.
    const SPIN_ROUNDS: u32 = 0;

    /// The signal, and the condition check: `Ready` with the output once the condition
    /// holds; called again after every wake-up, and never after it returned `Ready`.
    ///
    /// Split so that the blocking path can listen on the signal while it re-checks.
    fn parts(&mut self) -> (&Signal, impl FnMut() -> Poll<Self::Output> + '_);

    /// Whether waiting on this thread could never end: only this thread can run the driver
    /// that would make the condition true (see [`DriverSeat`]). Asked by [`block_on`] only
    /// once the condition was found false. The default: never.
    fn would_deadlock(&self) -> bool {
        false
    }
}

/// Why a blocking wait returned before its condition held.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Interrupted {
    /// The deadline passed first; the operation waited for goes on.
    DeadlinePassed,
    /// The condition did not hold, and waiting for it on this thread could never end
    /// ([`Wait::would_deadlock`]): nothing was waited for.
    WouldDeadlock,
}

/// The deadline `timeout` from now; `None` (no deadline) when that is not representable.
pub(crate) fn deadline_after(timeout: Duration) -> Option<Instant> {
    Instant::now().checked_add(timeout)
}

/// Blocks the current thread until `wait`'s condition holds, or `deadline` passes.
///
/// The one place where mvx blocks a thread on a wait: every blocking form of every named
/// future comes here, so a rule about blocking belongs here and nowhere else. The one rule:
/// a wait that [would deadlock](Wait::would_deadlock) — this thread must run the driver
/// that would make the condition true — is refused with [`Interrupted::WouldDeadlock`]
/// instead of waiting. Asked only once the first check failed: a wait that need not wait
/// pays nothing for it.
///
/// Checks first; then, for a wait with [`Wait::SPIN_ROUNDS`], re-checks with growing
/// pauses (work that frees a producer usually lands within microseconds, and neither side
/// pays a wake-up); then parks on a listener on this stack, following the `Signal`
/// protocol. The condition is checked once more after the deadline passed: `Err` means it
/// still did not hold.
pub(crate) fn block_on<W: Wait>(
    wait: &mut W,
    deadline: Option<Instant>,
) -> Result<W::Output, Interrupted> {
    if let Poll::Ready(output) = (wait.parts().1)() {
        return Ok(output);
    }
    if wait.would_deadlock() {
        return Err(Interrupted::WouldDeadlock);
    }
    let (signal, mut check) = wait.parts();
    loop {
        for round in 0..W::SPIN_ROUNDS {
            pause(round);
            if let Poll::Ready(output) = check() {
                return Ok(output);
            }
        }
        {
            let _waiting = signal.enter();
            listener!(signal.event() => woken);
            signal.settle();
            if let Poll::Ready(output) = check() {
                return Ok(output);
            }
            match deadline {
                None => woken.wait(),
                Some(deadline) => {
                    if woken.wait_deadline(deadline).is_none() {
                        return match check() {
                            Poll::Ready(output) => Ok(output),
                            Poll::Pending => Err(Interrupted::DeadlinePassed),
                        };
                    }
                }
            }
        }
        if let Poll::Ready(output) = check() {
            return Ok(output);
        }
    }
}

/// A [`Wait`] as an `EventListenerFuture`: what the named futures poll, with the
/// `NonBlocking` strategy, when they are awaited.
///
/// Its listener is allocated when it first has to wait, and stays registered (and the
/// waiter counted by the signal) until it is woken or dropped.
pub(crate) struct Waiter<W: Wait> {
    wait: W,
    listener: Option<EventListener>,
    /// Whether this waiter is counted by the wait's signal.
    counted: bool,
}

// Nothing of a waiter is pinned: its wait is polled through `&mut`, its listener is boxed.
impl<W: Wait> Unpin for Waiter<W> {}

impl<W: Wait> Waiter<W> {
    pub(crate) fn new(wait: W) -> Self {
        Self {
            wait,
            listener: None,
            counted: false,
        }
    }

    /// The wait.
    pub(crate) fn wait_ref(&self) -> &W {
        &self.wait
    }

    /// The wait, for what a timeout hands back.
    pub(crate) fn wait_mut(&mut self) -> &mut W {
        &mut self.wait
    }

    /// Polls from a task: the body of the named futures' `Future::poll`.
    pub(crate) fn poll_async(&mut self, cx: &mut std::task::Context<'_>) -> Poll<W::Output> {
        Pin::new(self).poll_with_strategy(&mut NonBlocking::default(), cx)
    }

    /// Blocks the thread (see [`block_on`]).
    pub(crate) fn block(&mut self, deadline: Option<Instant>) -> Result<W::Output, Interrupted> {
        // A listener left from earlier polls would be notified in vain.
        self.stop_listening();
        block_on(&mut self.wait, deadline)
    }

    fn stop_listening(&mut self) {
        self.listener = None;
        if std::mem::take(&mut self.counted) {
            self.wait.parts().0.leave();
        }
    }
}

impl<W: Wait> EventListenerFuture for Waiter<W> {
    type Output = W::Output;

    fn poll_with_strategy<'a, S: Strategy<'a>>(
        self: Pin<&mut Self>,
        strategy: &mut S,
        context: &mut S::Context,
    ) -> Poll<W::Output> {
        let this = self.get_mut();
        let (signal, mut check) = this.wait.parts();
        loop {
            if let Poll::Ready(output) = check() {
                if std::mem::take(&mut this.counted) {
                    signal.leave();
                }
                this.listener = None;
                return Poll::Ready(output);
            }
            if this.listener.is_none() {
                // Enter, listen, settle; the loop re-checks before waiting.
                if !std::mem::replace(&mut this.counted, true) {
                    signal.arrive();
                }
                this.listener = Some(signal.event().listen());
                signal.settle();
            } else {
                std::task::ready!(strategy.poll(&mut this.listener, context));
                // Woken: the strategy took the listener. Counted again before the next one.
                this.counted = false;
                signal.leave();
            }
        }
    }
}

impl<W: Wait> Drop for Waiter<W> {
    fn drop(&mut self) {
        self.stop_listening();
    }
}

impl<W: Wait> std::fmt::Debug for Waiter<W> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Waiter")
            .field("listening", &self.listener.is_some())
            .finish_non_exhaustive()
    }
}
