//! The telemetry-suppression scope: while a thread is inside one, the facades hand nothing
//! to mvx; they count what they leave out.
//!
//! A sink's driver opens a scope around every poll of its dispatcher's code (a dispatch, a
//! flush, a hook), so that telemetry emitted while exporting telemetry does not feed on
//! itself; users open one with [`suppress`] around code of their own that exports.
//! Public as `mvx::facade::suppress`, `SuppressGuard` and `is_suppressed`; it lives in the
//! core because the driver opens it and the core imports no component.

use std::marker::PhantomData;

thread_local_cell! {
    /// How many suppression scopes the thread is in.
    static DEPTH: u32 = 0;
}

/// Suppresses, on the calling thread and until the guard is dropped, every event the mvx
/// facades would hand to mvx: `facade::log` records, `facade::tracing` events and
/// `facade::metrics` updates are left out and counted as `suppressed` by the facade.
///
/// mvx opens such a scope itself while a thread runs a sink's dispatcher code (a dispatch,
/// a flush, a hook): an exporter that logs, traces or counts through the installed facades
/// does not feed its own sink. Open one around code of your own that exports telemetry
/// outside a sink. Scopes nest; other threads are not affected.
///
/// # Examples
///
/// ```
/// use mvx::facade::{is_suppressed, suppress};
///
/// assert!(!is_suppressed());
/// {
///     let _quiet = suppress();
///     assert!(is_suppressed()); // the facades count and drop what is emitted here
/// }
/// assert!(!is_suppressed());
/// ```
pub fn suppress() -> SuppressGuard {
    DEPTH.with(|depth| depth.set(depth.get().saturating_add(1)));
    SuppressGuard {
        _this_thread: PhantomData,
    }
}

/// Whether the calling thread is inside a suppression scope (see [`suppress`]): one
/// thread-local read. (Loom builds leave the facades, its readers, out.)
#[cfg_attr(loom, allow(dead_code))]
pub fn is_suppressed() -> bool {
    DEPTH.with(std::cell::Cell::get) != 0
}

/// Ends a suppression scope when dropped; returned by [`suppress`].
///
/// Not `Send`: the scope belongs to the thread that opened it.
#[derive(Debug)]
#[must_use = "the scope ends when the guard is dropped: bind it to a variable"]
pub struct SuppressGuard {
    _this_thread: PhantomData<*const ()>,
}

impl Drop for SuppressGuard {
    fn drop(&mut self) {
        DEPTH.with(|depth| depth.set(depth.get().saturating_sub(1)));
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    #[test]
    fn scopes_nest_and_stay_on_their_thread() {
        assert!(!is_suppressed());
        let outer = suppress();
        let inner = suppress();
        std::thread::scope(|scope| {
            scope.spawn(|| assert!(!is_suppressed()));
        });
        drop(inner);
        assert!(is_suppressed());
        drop(outer);
        assert!(!is_suppressed());
    }
}
