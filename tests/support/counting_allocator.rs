//! A counting global allocator, for the tests that prove a path allocates nothing and for
//! the benches that report allocations per event.
//!
//! Including it installs it as the binary's global allocator: `#[path =
//! "support/counting_allocator.rs"] mod counting_allocator;` in a test,
//! `#[path = "../tests/support/counting_allocator.rs"]` in a bench.
//!
//! Every allocation and reallocation is counted in a counter of the calling thread
//! ([`on_this_thread`]), which tells a producer's own allocations from those of mvx's
//! threads and of the harness; and in a process-wide counter ([`all`]), unless the thread
//! has left it ([`leave_all`]). A thread whose allocations are timed — a bench's producer —
//! leaves it, so that it pays for a thread-local increment only and does not contend with
//! other threads on the shared counter; its allocations are then read with
//! [`on_this_thread`]. The bytes the calling thread's allocations ask for are counted too
//! ([`bytes_on_this_thread`]).

#![allow(dead_code)] // Each binary reads the counters it needs.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::sync::atomic::{AtomicU64, Ordering};

struct Counting;

static ALL: AtomicU64 = AtomicU64::new(0);

thread_local! {
    static ON_THIS_THREAD: Cell<u64> = const { Cell::new(0) };
    static BYTES_ON_THIS_THREAD: Cell<u64> = const { Cell::new(0) };
    static LEFT_ALL: Cell<bool> = const { Cell::new(false) };
}

fn count_one(bytes: usize) {
    // `try_with`: a thread being torn down has no thread-locals left to count in.
    let _ = ON_THIS_THREAD.try_with(|count| count.set(count.get() + 1));
    let _ = BYTES_ON_THIS_THREAD.try_with(|count| count.set(count.get() + bytes as u64));
    if !LEFT_ALL.try_with(Cell::get).unwrap_or(false) {
        ALL.fetch_add(1, Ordering::Relaxed);
    }
}

// SAFETY: every call is forwarded unchanged to the system allocator; counting touches only an
// atomic and const-initialized thread-local `Cell`s, none of which allocates.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        count_one(layout.size());
        // SAFETY: forwarded unchanged to the system allocator.
        unsafe { System.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        count_one(layout.size());
        // SAFETY: forwarded unchanged to the system allocator.
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: forwarded unchanged to the system allocator.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        count_one(new_size);
        // SAFETY: forwarded unchanged to the system allocator.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// Allocations made by the calling thread so far.
pub fn on_this_thread() -> u64 {
    ON_THIS_THREAD.with(Cell::get)
}

/// The bytes the calling thread's allocations asked for so far (a reallocation counts its
/// new size).
pub fn bytes_on_this_thread() -> u64 {
    BYTES_ON_THIS_THREAD.with(Cell::get)
}

/// Allocations made so far by every thread of the process but those that called
/// [`leave_all`].
pub fn all() -> u64 {
    ALL.load(Ordering::Relaxed)
}

/// From now on, the calling thread's allocations are counted in [`on_this_thread`] only,
/// not in [`all`].
pub fn leave_all() {
    LEFT_ALL.set(true);
}
