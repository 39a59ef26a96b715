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

/// The CPU time (user + system) every thread of this process has used so far, with its
/// name: from `/proc/self/task/<tid>/stat` and `comm` (Linux), in clock ticks
/// (`_SC_CLK_TCK`, 10 ms on most systems). Empty where `/proc` cannot be read.
pub fn threads_cpu_times() -> Vec<(String, Duration)> {
    // SAFETY: `sysconf` reads a configuration value; it has no preconditions.
    let ticks_per_second = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    let ticks_per_second = u64::try_from(ticks_per_second).unwrap_or(100).max(1);
    let Ok(tasks) = std::fs::read_dir("/proc/self/task") else {
        return Vec::new();
    };
    let mut times = Vec::new();
    for task in tasks.flatten() {
        let path = task.path();
        let (Ok(stat), Ok(comm)) = (
            std::fs::read_to_string(path.join("stat")),
            std::fs::read_to_string(path.join("comm")),
        ) else {
            continue; // the thread exited meanwhile
        };
        // The fields after the name, which is in parentheses and may contain spaces:
        // utime and stime are the 14th and 15th fields of the line, the 12th and 13th
        // after it.
        let Some(rest) = stat.rsplit_once(')').map(|(_, rest)| rest) else {
            continue;
        };
        let fields: Vec<&str> = rest.split_whitespace().collect();
        let ticks = |index: usize| fields.get(index).and_then(|f| f.parse::<u64>().ok());
        let (Some(user), Some(system)) = (ticks(11), ticks(12)) else {
            continue;
        };
        let nanos = (user + system) * 1_000_000_000 / ticks_per_second;
        times.push((comm.trim().to_owned(), Duration::from_nanos(nanos)));
    }
    times
}

/// The CPU time used so far by the threads of this process whose name is `name`, summed;
/// `None` when there is none.
pub fn named_threads_cpu_time(name: &str) -> Option<Duration> {
    let matching: Vec<Duration> = threads_cpu_times()
        .into_iter()
        .filter(|(thread, _)| thread == name)
        .map(|(_, time)| time)
        .collect();
    (!matching.is_empty()).then(|| matching.into_iter().sum())
}
