//! loom models of `Signal`, the core's wake-up primitive: a waiter count and two SeqCst
//! fences in front of an `event_listener::Event`, so that a notifier pays a fence and a
//! load, not the event's lock, while nobody waits. It wakes producers blocked for room and
//! flush waiters.
//!
//! The models drive the crate's own `Signal` (`mvx::__loom::Signal`) with the protocol its
//! users follow — a waiter enters, listens, settles, re-checks its condition, waits; a
//! notifier changes the condition, then notifies — over a condition read and written with
//! `Relaxed` only, so that the fences alone order it. What they check, in every interleaving
//! loom explores: no lost wake-up (a waiter left blocked is a deadlock, which loom reports).
//! The fences carry it: without the waiter's `settle()`, each model deadlocks.
//!
//! Run with `RUSTFLAGS="--cfg loom" cargo test --profile loom --no-default-features
//! --features thread --test loom_signal` (see `.ci/run`).
#![cfg(loom)]

#[path = "support/loom_harness.rs"]
mod loom_harness;

use event_listener::Listener;
use loom::sync::Arc;
use loom::sync::atomic::{AtomicUsize, Ordering};
use loom::thread;

use mvx::__loom::Signal;

use loom_harness::model;

/// A condition behind a `Signal`: a counter that notifiers raise.
#[derive(Default)]
struct Counter {
    value: AtomicUsize,
    signal: Signal,
}

impl Counter {
    /// Raises the counter and wakes its waiters.
    fn raise(&self) {
        self.value.fetch_add(1, Ordering::Relaxed);
        self.signal.notify_all();
    }

    /// Blocks until the counter reaches `target`, as mvx's waiters do.
    fn wait_for(&self, target: usize) {
        loop {
            if self.value.load(Ordering::Relaxed) >= target {
                return;
            }
            let _waiting = self.signal.enter();
            let listener = self.signal.event().listen();
            self.signal.settle();
            if self.value.load(Ordering::Relaxed) >= target {
                return;
            }
            listener.wait();
        }
    }
}

/// One waiter, one notifier.
#[test]
fn a_waiter_is_woken_by_the_notifier() {
    model(6, || {
        let counter = Arc::new(Counter::default());
        let waiter = {
            let counter = counter.clone();
            thread::spawn(move || counter.wait_for(1))
        };
        counter.raise();
        waiter.join().unwrap();
    });
}

/// Two waiters, one notification: `notify_all` wakes both, including one that entered
/// after the other was counted.
#[test]
fn one_notification_wakes_every_waiter() {
    model(3, || {
        let counter = Arc::new(Counter::default());
        let waiters: Vec<_> = (0..2)
            .map(|_| {
                let counter = counter.clone();
                thread::spawn(move || counter.wait_for(1))
            })
            .collect();
        counter.raise();
        for waiter in waiters {
            waiter.join().unwrap();
        }
    });
}

/// A waiter waits twice in a row while the notifier raises twice: its count goes up and
/// down between the waits, and a notifier that reads it at zero (and skips the event) must
/// still be seen by the waiter's re-check.
#[test]
fn a_waiter_that_waits_again_is_not_missed() {
    model(4, || {
        let counter = Arc::new(Counter::default());
        let waiter = {
            let counter = counter.clone();
            thread::spawn(move || {
                counter.wait_for(1);
                counter.wait_for(2);
            })
        };
        counter.raise();
        counter.raise();
        waiter.join().unwrap();
    });
}
