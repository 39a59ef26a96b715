//! Which thread polls a driver: what tells a blocking wait that it would wait for itself.
//!
//! A blocking wait of mvx (see [`block_on`](super::block_on)) waits for a driver to make
//! its condition true. When the thread that would block is the only one that can poll
//! that driver, the wait can never end. Each driver has a [`DriverSeat`]; the driver
//! [`enter`](DriverSeat::enter)s it around every poll, and a blocking wait that finds its
//! condition false asks it [`would_deadlock`](DriverSeat::would_deadlock) before it waits.
//!
//! # Why what is refused could never end
//!
//! The calls refused, and those not refused, are listed for users in
//! [the sink docs](crate::sink#which-calls-block). A wait is refused in two cases only:
//!
//! 1. **The calling thread is polling the driver now** (its seat says `POLLING` with this
//!    thread's token): the caller is the driver's own code or code it calls, and the poll
//!    cannot return before the call does. Exact under every executor, nested `block_on`s
//!    included: a future is polled by one thread at a time.
//! 2. **The driver was last polled on the calling thread by a single-threaded executor,
//!    and the caller still runs inside it** (`SINGLE_THREADED` with this thread's token,
//!    and [`single_threaded_executor_here`] now): while the caller blocks, nothing polls
//!    the driver. An mvx runtime thread runs one executor and nothing else, whose tasks
//!    never move. A tokio current-thread runtime polls its tasks only on the thread inside
//!    its `block_on`, which holds the runtime's core while it polls a task.
//!
//! Whatever another thread may serve is never refused: that is why "last polled on this
//! thread" alone is not enough (a multi-threaded executor moves the driver).
//!
//! # Cost
//!
//! Each poll of a driver reads a thread-local, loads one atomic and stores it twice (all
//! relaxed); a driver that moves to another thread also asks that thread's executor, once,
//! whether it is single-threaded. A blocking wait pays nothing when it need not wait; when it must,
//! one relaxed load and a thread-local read before it spins or parks.
//!
//! # Why relaxed
//!
//! The seat holds the token of the thread that polls (or last polled) the driver. Only a
//! thread writes its own token, and a thread reads its own latest write or a later one of
//! another thread: it finds its own token only when it is that poller. A stale value of
//! another thread's write never carries the reader's token, so it can only fail to refuse
//! (and then the driver has moved on, and the wait can end). The seat orders nothing else,
//! so it is a plain `std` atomic under loom too: the models need not explore it.

use std::sync::atomic::{AtomicU64, Ordering};

thread_local_cell! {
    /// This thread's token, `0` until first asked for.
    static TOKEN: u64 = 0;
}

thread_local_cell! {
    /// Whether this thread is an mvx runtime thread: one that runs an executor of its own
    /// and nothing else.
    static RUNTIME_THREAD: bool = false;
}

/// The next thread token; `0` is never handed out.
static NEXT_TOKEN: AtomicU64 = AtomicU64::new(1);

/// Bits of the seat: the driver is being polled now…
const POLLING: u64 = 1;
/// …and the thread that polls it (or last did) runs a single-threaded executor.
const SINGLE_THREADED: u64 = 2;
/// How far the token is shifted left of the flags.
const FLAG_BITS: u32 = 2;

/// This thread's token: unique in the process, never `0`.
fn thread_token() -> u64 {
    TOKEN.with(|token| match token.get() {
        0 => {
            let new = NEXT_TOKEN.fetch_add(1, Ordering::Relaxed);
            token.set(new);
            new
        }
        known => known,
    })
}

/// Marks the calling thread as an mvx runtime thread, for the rest of its life: a
/// dedicated thread that runs one single-threaded executor and nothing else.
#[cfg(any(feature = "smol", feature = "thread", loom, test))]
pub(crate) fn mark_runtime_thread() {
    RUNTIME_THREAD.with(|runtime| runtime.set(true));
}

/// Whether the calling thread runs a single-threaded executor that mvx knows: an mvx
/// runtime thread, or (feature `tokio`) a tokio current-thread runtime it is inside.
fn single_threaded_executor_here() -> bool {
    if RUNTIME_THREAD.with(std::cell::Cell::get) {
        return true;
    }
    #[cfg(all(feature = "tokio", not(loom)))]
    if crate::rt::tokio::in_current_thread_runtime() {
        return true;
    }
    false
}

/// Who polls a driver: the poller's thread token, and whether it is polling now and runs a
/// single-threaded executor. See the [module docs](self).
#[derive(Debug, Default)]
pub(crate) struct DriverSeat {
    seat: AtomicU64,
}

impl DriverSeat {
    /// A seat nobody has polled from.
    pub(crate) fn new() -> Self {
        Self::default()
    }

    /// Records that the calling thread polls the driver, until the guard is dropped.
    /// Nested entries (a driver polled inside a driver polled on the same thread) keep the
    /// seat marked until the outermost one ends.
    pub(crate) fn enter(&self) -> Polling<'_> {
        let token = thread_token();
        let before = self.seat.load(Ordering::Relaxed);
        let single_threaded = if before >> FLAG_BITS == token {
            // Same thread as the last poll: same executor, no need to ask again.
            before & SINGLE_THREADED
        } else if single_threaded_executor_here() {
            SINGLE_THREADED
        } else {
            0
        };
        let polling = (token << FLAG_BITS) | single_threaded | POLLING;
        self.seat.store(polling, Ordering::Relaxed);
        Polling {
            seat: self,
            after: if before == polling {
                polling
            } else {
                polling & !POLLING
            },
        }
    }

    /// Whether the calling thread waiting for this driver could only wait forever: it is
    /// polling the driver now, or it runs the single-threaded executor that polls it.
    pub(crate) fn would_deadlock(&self) -> bool {
        let seat = self.seat.load(Ordering::Relaxed);
        if seat >> FLAG_BITS != thread_token() {
            return false;
        }
        seat & POLLING != 0 || (seat & SINGLE_THREADED != 0 && single_threaded_executor_here())
    }
}

/// `future`, entering `seat` around each of its polls: a driver future, seated.
pub(crate) async fn seated<F: std::future::Future>(
    seat: crate::sync::Arc<DriverSeat>,
    future: F,
) -> F::Output {
    let mut future = std::pin::pin!(future);
    std::future::poll_fn(|cx| {
        let _polling = seat.enter();
        future.as_mut().poll(cx)
    })
    .await
}

/// A poll of a driver in progress on this thread; see [`DriverSeat::enter`].
#[derive(Debug)]
pub(crate) struct Polling<'a> {
    seat: &'a DriverSeat,
    /// What the seat says once this poll is over.
    after: u64,
}

impl Drop for Polling<'_> {
    fn drop(&mut self) {
        self.seat.seat.store(self.after, Ordering::Relaxed);
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    #[test]
    fn only_the_polling_thread_would_deadlock() {
        let seat = DriverSeat::new();
        assert!(!seat.would_deadlock(), "never polled");
        {
            let _polling = seat.enter();
            assert!(seat.would_deadlock(), "inside the poll");
            {
                let _nested = seat.enter();
                assert!(seat.would_deadlock(), "inside a nested poll");
            }
            assert!(seat.would_deadlock(), "the outer poll goes on");
            std::thread::scope(|scope| {
                scope.spawn(|| assert!(!seat.would_deadlock(), "another thread"));
            });
        }
        assert!(
            !seat.would_deadlock(),
            "polled here last, by no known executor"
        );
    }

    #[test]
    fn a_runtime_thread_that_polled_the_driver_would_deadlock_outside_the_poll_too() {
        let seat = DriverSeat::new();
        std::thread::scope(|scope| {
            scope.spawn(|| {
                mark_runtime_thread();
                drop(seat.enter());
                assert!(seat.would_deadlock());
            });
        });
        assert!(!seat.would_deadlock(), "another thread");
        // The driver moved (it cannot, from a runtime thread; the seat follows it anyway).
        drop(seat.enter());
        assert!(!seat.would_deadlock());
    }
}
