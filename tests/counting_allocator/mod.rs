//! A counting global allocator for the allocation tests: each of them includes this module
//! (`mod counting_allocator;`), which installs it as the test binary's global allocator.
//!
//! It counts every allocation and reallocation twice: in a process-wide counter
//! ([`all`]), and in a counter of the calling thread ([`on_this_thread`]), so that a test
//! can tell the producer's own allocations from those of mvx's threads and of the harness.

#![allow(dead_code)] // Each test binary reads the counters it needs.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::sync::atomic::{AtomicU64, Ordering};

struct Counting;

static ALL: AtomicU64 = AtomicU64::new(0);

thread_local! {
    static ON_THIS_THREAD: Cell<u64> = const { Cell::new(0) };
}

fn count_one() {
    ALL.fetch_add(1, Ordering::Relaxed);
    // `try_with`: a thread being torn down has no thread-locals left to count in.
    let _ = ON_THIS_THREAD.try_with(|count| count.set(count.get() + 1));
}

// SAFETY: every call is forwarded unchanged to the system allocator; counting touches only an
// atomic and a const-initialized thread-local `Cell`, neither of which allocates.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        count_one();
        // SAFETY: forwarded unchanged to the system allocator.
        unsafe { System.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        count_one();
        // SAFETY: forwarded unchanged to the system allocator.
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: forwarded unchanged to the system allocator.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        count_one();
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

/// Allocations made by every thread of the process so far.
pub fn all() -> u64 {
    ALL.load(Ordering::Relaxed)
}
