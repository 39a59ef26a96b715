//! metricq's timestamps: nanoseconds since the Unix epoch.

use std::fmt;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// A point in time as metricq carries it: signed nanoseconds since the Unix epoch (UTC),
/// the unit of a data chunk's `time_delta` and of Python's `metricq.Timestamp`.
///
/// # Examples
///
/// ```
/// use std::time::{Duration, UNIX_EPOCH};
/// use mvx::agent::metricq::Timestamp;
///
/// let t = Timestamp::from_system_time(UNIX_EPOCH + Duration::from_millis(1_500));
/// assert_eq!(t.as_nanos(), 1_500_000_000);
/// assert_eq!(t.to_string(), "1970-01-01T00:00:01.500000000Z");
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timestamp(i64);

impl Timestamp {
    /// The timestamp `nanos` nanoseconds after the epoch (before it if negative).
    pub const fn from_nanos(nanos: i64) -> Self {
        Self(nanos)
    }

    /// Nanoseconds since the epoch.
    pub const fn as_nanos(self) -> i64 {
        self.0
    }

    /// Now, by the system clock.
    pub fn now() -> Self {
        Self::from_system_time(SystemTime::now())
    }

    /// `time` as nanoseconds since the epoch, saturating at the range of `i64` (about the
    /// years 1677 to 2262).
    pub fn from_system_time(time: SystemTime) -> Self {
        match time.duration_since(UNIX_EPOCH) {
            Ok(after) => Self(i64::try_from(after.as_nanos()).unwrap_or(i64::MAX)),
            Err(before) => Self(
                i64::try_from(before.duration().as_nanos())
                    .map(|nanos| -nanos)
                    .unwrap_or(i64::MIN),
            ),
        }
    }

    /// The timestamp as a `SystemTime`.
    pub fn to_system_time(self) -> SystemTime {
        if self.0 >= 0 {
            UNIX_EPOCH + Duration::from_nanos(self.0.unsigned_abs())
        } else {
            UNIX_EPOCH - Duration::from_nanos(self.0.unsigned_abs())
        }
    }
}

/// RFC 3339 in UTC with nanoseconds, such as `2026-03-01T12:00:00.000000001Z`.
impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let seconds = self.0.div_euclid(1_000_000_000);
        let nanos = self.0.rem_euclid(1_000_000_000);
        let days = seconds.div_euclid(86_400);
        let second_of_day = seconds.rem_euclid(86_400);
        let (year, month, day) = crate::calendar::civil_from_days(i128::from(days));
        write!(
            f,
            "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{nanos:09}Z",
            second_of_day / 3_600,
            second_of_day / 60 % 60,
            second_of_day % 60
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_dates_across_the_range() {
        let cases = [
            (0, "1970-01-01T00:00:00.000000000Z"),
            (-1, "1969-12-31T23:59:59.999999999Z"),
            (951_782_400_000_000_000, "2000-02-29T00:00:00.000000000Z"),
            (1_709_210_096_123_456_789, "2024-02-29T12:34:56.123456789Z"),
            (i64::MAX, "2262-04-11T23:47:16.854775807Z"),
            (i64::MIN, "1677-09-21T00:12:43.145224192Z"),
        ];
        for (nanos, text) in cases {
            assert_eq!(Timestamp::from_nanos(nanos).to_string(), text);
        }
    }

    #[test]
    fn converts_to_and_from_system_time() {
        for nanos in [0, 1, -1, 1_709_210_096_123_456_789, -86_400_000_000_000] {
            let t = Timestamp::from_nanos(nanos);
            assert_eq!(Timestamp::from_system_time(t.to_system_time()), t);
        }
    }
}
