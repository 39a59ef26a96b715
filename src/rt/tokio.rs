//! What mvx asks tokio (feature `tokio`): whether the calling thread runs a tokio
//! current-thread runtime, so that a blocking wait on it for a driver it runs is refused
//! rather than hung (see `crate::sync::DriverSeat`). mvx has no tokio adapter: spawn a
//! driver with `tokio::spawn`, it is a plain future.

use ::tokio::runtime::{Handle, RuntimeFlavor};

/// Whether the calling thread is inside a tokio current-thread runtime: in its `block_on`,
/// one of its tasks, or under its `enter()` guard.
pub(crate) fn in_current_thread_runtime() -> bool {
    Handle::try_current()
        .is_ok_and(|handle| handle.runtime_flavor() == RuntimeFlavor::CurrentThread)
}
