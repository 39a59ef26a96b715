//! The asymmetric barrier of the lanes' handshakes: a producer's side that costs nothing at
//! run time, and a driver's side that does the work for both.
//!
//! Two handshakes of the queue have the shape of Dekker's: a producer publishes its lane's
//! count and then reads a flag the driver sets (driver parked, lane being sealed); the
//! driver sets the flag and then reads the counts. Either one must see the other's write.
//! With ordinary fences that takes a store-load fence on both sides, one per event on the
//! producer's — the cost of a locked instruction. Here the producer's side is a compiler
//! fence ([`light`]) and the driver's side ([`heavy`]) is Linux's
//! `membarrier(MEMBARRIER_CMD_PRIVATE_EXPEDITED)`, which makes every running thread of the
//! process pass a full memory barrier before it returns (a thread not running passed one
//! when it was switched out): after it, either a producer's count has reached memory, and
//! the driver's read sees it, or the producer has yet to read the flag, and sees it. This
//! is the pairing of Linux's own documentation of `membarrier(2)` and of userspace RCU.
//!
//! The process registers for the command once ([`prepare`], when a sink's queue is
//! created); until that succeeds, and on systems without it (not Linux, an old kernel, a
//! seccomp filter that refuses it), both sides are a `SeqCst` fence, the symmetric barrier.
//! A producer reads the mode before each light barrier: it uses the compiler fence only
//! once registration has succeeded, and the driver's heavy barrier, which waits for the
//! registration, is then `membarrier`.
//!
//! The heavy barrier costs the driver a system call, and each CPU that runs a thread of
//! the process an interrupt (about 14 µs with another thread busy on the 2-vCPU KVM guest
//! of BENCHMARKS.md, 0.1 µs alone): the driver uses it only where it would otherwise wait
//! for ever — before a park without a timeout, at most once a millisecond (the parks in
//! between are naps, `sink::driver`), and when it seals a lane at a stop.
//!
//! Under loom both sides are `fence(SeqCst)`, whose pairing the models check: they check
//! the handshakes under the barrier's guarantee, not `membarrier` itself.

#[cfg(not(loom))]
use std::sync::atomic::{AtomicU8, Ordering, compiler_fence, fence};

/// Registration not tried yet.
#[cfg(not(loom))]
const UNKNOWN: u8 = 0;
/// `membarrier` is registered: the light side is a compiler fence.
#[cfg(not(loom))]
const ASYMMETRIC: u8 = 1;
/// No `membarrier`: both sides are a `SeqCst` fence.
#[cfg(not(loom))]
const SYMMETRIC: u8 = 2;

#[cfg(not(loom))]
static MODE: AtomicU8 = AtomicU8::new(UNKNOWN);

/// Registers the process for the asymmetric barrier, once; returns the mode.
#[cfg(not(loom))]
fn mode() -> u8 {
    static REGISTER: std::sync::Once = std::sync::Once::new();
    REGISTER.call_once(|| {
        let mode = if register() { ASYMMETRIC } else { SYMMETRIC };
        MODE.store(mode, Ordering::Release);
    });
    MODE.load(Ordering::Acquire)
}

#[cfg(all(not(loom), target_os = "linux"))]
fn register() -> bool {
    use rustix::thread::{MembarrierCommand, membarrier, membarrier_query};
    membarrier_query().contains_command(MembarrierCommand::PrivateExpedited)
        && membarrier(MembarrierCommand::RegisterPrivateExpedited).is_ok()
}

#[cfg(all(not(loom), not(target_os = "linux")))]
fn register() -> bool {
    false
}

/// Registers the process for the asymmetric barrier, if it is not yet, so that producers
/// use the light side from their first event.
pub(crate) fn prepare() {
    #[cfg(not(loom))]
    mode();
}

/// The producer's side: orders its store of a count before its read of the driver's
/// flags, paired with [`heavy`].
#[inline]
pub(crate) fn light() {
    #[cfg(not(loom))]
    if MODE.load(Ordering::Relaxed) == ASYMMETRIC {
        compiler_fence(Ordering::SeqCst);
    } else {
        fence(Ordering::SeqCst);
    }
    #[cfg(loom)]
    loom::sync::atomic::fence(std::sync::atomic::Ordering::SeqCst);
}

/// The driver's side: orders its store of a flag before its read of the counts, paired
/// with [`light`] on every producer thread.
pub(crate) fn heavy() {
    #[cfg(all(not(loom), target_os = "linux"))]
    if mode() == ASYMMETRIC {
        use rustix::thread::{MembarrierCommand, membarrier};
        // It cannot fail once registered (membarrier(2): EINVAL, ENOSYS and EPERM are for
        // an unknown command, a kernel without it and a process not registered). The
        // registration is the process's memory map's: a forked child keeps it (the kernel
        // copies the map's state), and only an exec, which also resets this module's
        // statics, clears it.
        if membarrier(MembarrierCommand::PrivateExpedited).is_ok() {
            return;
        }
    }
    #[cfg(not(loom))]
    fence(Ordering::SeqCst);
    #[cfg(loom)]
    loom::sync::atomic::fence(std::sync::atomic::Ordering::SeqCst);
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    /// Where the kernel offers the private expedited command, the process registers for
    /// it and producers use the compiler fence; elsewhere both sides are fences. Either
    /// way both sides run.
    #[test]
    fn the_barrier_is_asymmetric_where_the_kernel_offers_membarrier() {
        prepare();
        #[cfg(target_os = "linux")]
        {
            use rustix::thread::{MembarrierCommand, membarrier_query};
            let offered = membarrier_query().contains_command(MembarrierCommand::PrivateExpedited);
            assert_eq!(mode() == ASYMMETRIC, offered);
        }
        #[cfg(not(target_os = "linux"))]
        assert_eq!(mode(), SYMMETRIC);
        light();
        heavy();
    }
}
