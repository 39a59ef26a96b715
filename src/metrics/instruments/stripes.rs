//! Stripe numbers: which stripe of every [`Histogram`](crate::metrics::Histogram) a thread
//! records into.
//!
//! Each thread claims a number of its own the first time it records, the same number in
//! every histogram, and gives it back when it exits; only its owner writes a stripe, so a
//! record needs no locked instruction. When every number is taken, threads share
//! [`SHARED_STRIPE`] and record there with atomic read-modify-write operations.

use std::cell::Cell;
use std::num::NonZeroUsize;
use std::sync::OnceLock;

/// The most stripes a histogram has; a power of two.
const MAX_STRIPES: usize = 64;
/// The fewest stripes a histogram has; a power of two.
const MIN_STRIPES: usize = 8;

/// The number of stripes of every histogram: twice the available parallelism, rounded up
/// to a power of two, between [`MIN_STRIPES`] and [`MAX_STRIPES`].
pub(super) fn stripe_count() -> usize {
    static COUNT: OnceLock<usize> = OnceLock::new();
    *COUNT.get_or_init(|| {
        let cpus = std::thread::available_parallelism().map_or(1, NonZeroUsize::get);
        cpus.saturating_mul(2)
            .next_power_of_two()
            .clamp(MIN_STRIPES, MAX_STRIPES)
    })
}

/// The stripe of threads that have none of their own. Never claimed.
pub(super) const SHARED_STRIPE: usize = 0;
/// A thread's stripe before its first record.
const UNASSIGNED: usize = usize::MAX;

/// The stripe numbers claimed by live threads, one bit each; bit 0, the shared stripe, is
/// always set. A plain std atomic rather than one from `crate::sync`: a static needs a
/// `const` constructor.
static CLAIMED: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);

/// A thread's claim on a stripe number, given back when the thread exits.
struct StripeClaim(Cell<usize>);

impl Drop for StripeClaim {
    fn drop(&mut self) {
        let stripe = self.0.get();
        if stripe != UNASSIGNED && stripe != SHARED_STRIPE {
            release(&CLAIMED, stripe);
        }
    }
}

thread_local! {
    /// The stripe this thread records into.
    static STRIPE: StripeClaim = const { StripeClaim(Cell::new(UNASSIGNED)) };
}

/// The calling thread's stripe: its own, claimed on its first call, or [`SHARED_STRIPE`]
/// when every stripe is taken or while the thread's thread-local storage is torn down.
///
/// A stripe other than the shared one is written by its owner thread only, from its claim
/// until its `StripeClaim` is dropped at thread exit; after that drop this function returns
/// the shared stripe for the thread.
#[inline]
pub(super) fn current_stripe() -> usize {
    STRIPE
        .try_with(|claim| match claim.0.get() {
            UNASSIGNED => claim_stripe(&claim.0),
            stripe => stripe,
        })
        .unwrap_or(SHARED_STRIPE)
}

/// Claims a stripe for this thread and remembers it in `claim`.
#[cold]
fn claim_stripe(claim: &Cell<usize>) -> usize {
    let stripe = claim_from(&CLAIMED, stripe_count());
    claim.set(stripe);
    stripe
}

/// Sets the lowest clear bit below `count` in `claimed` and returns its number, or returns
/// [`SHARED_STRIPE`] if there is none.
fn claim_from(claimed: &std::sync::atomic::AtomicU64, count: usize) -> usize {
    use std::sync::atomic::Ordering::{Acquire, Relaxed};
    let usable = if count >= 64 {
        u64::MAX
    } else {
        (1_u64 << count) - 1
    };
    let mut current = claimed.load(Relaxed);
    loop {
        let free = usable & !current & !(1 << SHARED_STRIPE);
        if free == 0 {
            return SHARED_STRIPE;
        }
        let stripe = free.trailing_zeros() as usize;
        // Acquire: this thread sees every store of the stripe's previous owner.
        match claimed.compare_exchange_weak(current, current | (1 << stripe), Acquire, Relaxed) {
            Ok(_) => return stripe,
            Err(actual) => current = actual,
        }
    }
}

/// Gives `stripe` back.
fn release(claimed: &std::sync::atomic::AtomicU64, stripe: usize) {
    // Release: the next owner's claim (Acquire) sees every store of this thread.
    claimed.fetch_and(!(1 << stripe), std::sync::atomic::Ordering::Release);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stripe_count_is_a_power_of_two_in_range() {
        let count = stripe_count();
        assert!(count.is_power_of_two());
        assert!((MIN_STRIPES..=MAX_STRIPES).contains(&count));
    }

    #[test]
    fn each_thread_keeps_its_stripe() {
        let (first, second) = std::thread::spawn(|| (current_stripe(), current_stripe()))
            .join()
            .expect("thread ran");
        assert_eq!(first, second);
        assert!(first < stripe_count());
    }

    #[test]
    fn claims_take_the_lowest_free_stripe_and_fall_back_to_the_shared_one() {
        use std::sync::atomic::AtomicU64 as StdAtomicU64;
        let claimed = StdAtomicU64::new(1);
        assert_eq!(claim_from(&claimed, 4), 1);
        assert_eq!(claim_from(&claimed, 4), 2);
        assert_eq!(claim_from(&claimed, 4), 3);
        assert_eq!(claim_from(&claimed, 4), SHARED_STRIPE);
        release(&claimed, 2);
        assert_eq!(claim_from(&claimed, 4), 2);
        assert_eq!(claimed.load(std::sync::atomic::Ordering::Relaxed), 0b1111);

        let all = StdAtomicU64::new(1);
        let stripes: Vec<usize> = (0..64).map(|_| claim_from(&all, 64)).collect();
        assert_eq!(stripes[..63], (1..64).collect::<Vec<_>>()[..]);
        assert_eq!(stripes[63], SHARED_STRIPE);
    }

    #[test]
    fn live_threads_never_share_an_owned_stripe() {
        const THREADS: usize = 12;
        let barrier = std::sync::Barrier::new(THREADS);
        let stripes: Vec<usize> = std::thread::scope(|scope| {
            let threads: Vec<_> = (0..THREADS)
                .map(|_| {
                    scope.spawn(|| {
                        let stripe = current_stripe();
                        // Hold the claim until every thread has one.
                        barrier.wait();
                        stripe
                    })
                })
                .collect();
            threads
                .into_iter()
                .map(|thread| thread.join().expect("thread ran"))
                .collect()
        });
        let mut owned: Vec<usize> = stripes
            .iter()
            .copied()
            .filter(|&stripe| stripe != SHARED_STRIPE)
            .collect();
        let before = owned.len();
        owned.sort_unstable();
        owned.dedup();
        assert_eq!(owned.len(), before, "stripes {stripes:?}");
        assert!(owned.iter().all(|&stripe| stripe < stripe_count()));
    }
}
