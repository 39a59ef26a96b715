//! Crawlee's arithmetic, to the last digit: how it rounds a request's duration, an average,
//! a duration in milliseconds and a per-minute rate (the rules are stated in the `stats`
//! module docs, "Coming from Crawlee").
//!
//! Crawlee for Python keeps durations as `timedelta`s (whole microseconds) and computes
//! with Python's floats and `round()` (ties to even); each function here does the same
//! operations in the same order, so that mvx and Crawlee give equal figures for equal input.

use std::time::Duration;

/// A duration as whole microseconds, at most `u64::MAX` (what is persisted and loaded).
pub(crate) fn micros(duration: Duration) -> u64 {
    u64::try_from(duration.as_micros()).unwrap_or(u64::MAX)
}

/// A request's duration as Crawlee records it: rounded up to the whole microsecond
/// (`RequestProcessingRecord.finish`: `ceil(ns / 1000)` µs).
pub(crate) fn request_duration(elapsed: Duration) -> Duration {
    let nanos = elapsed.subsec_nanos();
    let micros_up = nanos.div_ceil(1_000);
    if micros_up == 1_000_000 {
        Duration::new(elapsed.as_secs(), 0).saturating_add(Duration::from_secs(1))
    } else {
        Duration::new(elapsed.as_secs(), micros_up * 1_000)
    }
}

/// `total / count` as Python's `timedelta / int`: to the nearest microsecond, ties to even;
/// `None` for no count.
pub(crate) fn average(total: Duration, count: u64) -> Option<Duration> {
    if count == 0 {
        return None;
    }
    let total = total.as_micros();
    let count = u128::from(count);
    let (quotient, remainder) = (total / count, total % count);
    let up = match (2 * remainder).cmp(&count) {
        std::cmp::Ordering::Greater => true,
        std::cmp::Ordering::Equal => quotient % 2 == 1,
        std::cmp::Ordering::Less => false,
    };
    let micros = quotient + u128::from(up);
    // At most `total`, which came from a `Duration`.
    let secs = u64::try_from(micros / 1_000_000).unwrap_or(u64::MAX);
    let subsec_micros = u32::try_from(micros % 1_000_000).unwrap_or(0);
    Some(Duration::new(secs, subsec_micros * 1_000))
}

/// Seconds as Python's `timedelta.total_seconds()`: whole microseconds over 10⁶.
pub(crate) fn seconds(duration: Duration) -> f64 {
    duration.as_micros() as f64 / 1e6
}

/// Whole milliseconds as Crawlee persists a duration (`round(td.total_seconds() * 1000)`,
/// ties to even), of the duration as persisted (at most `u64::MAX` µs).
pub(crate) fn millis(duration: Duration) -> f64 {
    millis_of_micros(micros(duration))
}

/// [`millis`] of a number of microseconds.
pub(crate) fn millis_of_micros(micros: u64) -> f64 {
    (micros as f64 / 1e6 * 1000.0).round_ties_even()
}

/// The per-minute rates of `calculate()`: `round(finished / minutes)` and
/// `floor(failed / minutes)`, 0 for a zero runtime (Crawlee's `Statistics.calculate`).
pub(crate) fn per_minute(finished: u64, failed: u64, runtime: Duration) -> (u64, u64) {
    let minutes = seconds(runtime) / 60.0;
    if minutes == 0.0 {
        return (0, 0);
    }
    // `as u64` saturates: a rate past `u64::MAX` (a huge count over a tiny runtime) is
    // `u64::MAX`.
    (
        (finished as f64 / minutes).round_ties_even() as u64,
        (failed as f64 / minutes).floor() as u64,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_durations_round_up_to_the_microsecond() {
        assert_eq!(
            request_duration(Duration::from_nanos(1)),
            Duration::from_micros(1)
        );
        assert_eq!(
            request_duration(Duration::from_nanos(2_000)),
            Duration::from_micros(2)
        );
        assert_eq!(
            request_duration(Duration::from_nanos(2_001)),
            Duration::from_micros(3)
        );
        assert_eq!(
            request_duration(Duration::new(1, 999_999_001)),
            Duration::from_secs(2)
        );
        assert_eq!(request_duration(Duration::MAX), Duration::MAX);
    }

    #[test]
    fn averages_round_to_the_nearest_microsecond_ties_to_even() {
        let us = Duration::from_micros;
        assert_eq!(average(us(10), 4), Some(us(2))); // 2.5 → 2
        assert_eq!(average(us(14), 4), Some(us(4))); // 3.5 → 4
        assert_eq!(average(us(11), 4), Some(us(3))); // 2.75 → 3
        assert_eq!(average(us(1), 0), None);
        assert_eq!(
            average(Duration::from_nanos(1_999), 1),
            Some(us(1)),
            "durations are whole microseconds"
        );
        assert!(average(Duration::MAX, 1).is_some());
    }

    #[test]
    fn milliseconds_round_ties_to_even() {
        assert_eq!(millis_of_micros(2_500), 2.0);
        assert_eq!(millis_of_micros(3_500), 4.0);
        assert_eq!(millis_of_micros(1_499), 1.0);
        assert_eq!(millis(Duration::MAX), u64::MAX as f64 / 1000.0);
    }

    #[test]
    fn rates_round_and_floor() {
        let minute = Duration::from_secs(60);
        assert_eq!(per_minute(5, 5, minute * 2), (2, 2)); // 2.5 → 2, floor 2.5 → 2
        assert_eq!(per_minute(7, 7, minute * 2), (4, 3)); // 3.5 → 4, floor 3.5 → 3
        assert_eq!(per_minute(1, 1, Duration::ZERO), (0, 0));
        assert_eq!(
            per_minute(u64::MAX, 1, Duration::from_micros(1)),
            (u64::MAX, 60_000_000)
        );
    }
}
