//! A bound on the work of one call that a busy machine cannot break: the CPU time the
//! calling thread spends in it, not the wall-clock time, which grows whenever the scheduler
//! hands the core to another process.
//!
//! Include it with `#[path = "support/cpu_time.rs"] mod cpu_time;` in a test that uses
//! proptest.

#![allow(dead_code)] // Each test binary uses the part it needs.

use std::time::Duration;

use proptest::test_runner::TestCaseError;

/// The CPU time the calling thread has used so far.
pub fn thread_cpu_time() -> Duration {
    let mut now = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `clock_gettime` writes one `timespec` through the pointer, which points to a
    // live, writable `timespec` of ours.
    let status = unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut now) };
    assert_eq!(status, 0, "clock_gettime(CLOCK_THREAD_CPUTIME_ID) failed");
    Duration::new(
        u64::try_from(now.tv_sec).expect("a CPU time is not negative"),
        u32::try_from(now.tv_nsec).expect("nanoseconds below a second"),
    )
}

/// Runs `f` on the calling thread; fails the proptest case if the thread spent more than
/// `bound` of CPU time in it. `what` names the call in the failure.
pub fn bounded<T>(bound: Duration, what: &str, f: impl FnOnce() -> T) -> Result<T, TestCaseError> {
    let begin = thread_cpu_time();
    let answer = f();
    let spent = thread_cpu_time().saturating_sub(begin);
    if spent > bound {
        return Err(TestCaseError::fail(format!(
            "{what} took {spent:?} of CPU time, more than {bound:?}"
        )));
    }
    Ok(answer)
}
