//! The proleptic Gregorian calendar in UTC, after Howard Hinnant's `chrono`-compatible
//! algorithms: day numbers (days since 1970-01-01) to dates and back, for the places that
//! write or read timestamps (a sink's RFC 3339 lines, Crawlee's ISO 8601 times, metricq's
//! timestamps). `i128` day numbers, so that any `i64` of seconds or nanoseconds converts
//! without overflow.

/// The date `(year, month, day)` of day number `days` (days since 1970-01-01).
pub(crate) fn civil_from_days(days: i128) -> (i128, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let day_of_era = z.rem_euclid(146_097);
    let year_of_era =
        (day_of_era - day_of_era / 1_460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let month_index = (5 * day_of_year + 2) / 153;
    // Both fit a `u32`: a day of the month is 1 to 31, a month 1 to 12.
    let day = (day_of_year - (153 * month_index + 2) / 5 + 1) as u32;
    let month = if month_index < 10 {
        month_index + 3
    } else {
        month_index - 9
    } as u32;
    (year_of_era + era * 400 + i128::from(month <= 2), month, day)
}

/// The day number (days since 1970-01-01) of the date `year`-`month`-`day`. (Read by the
/// statistics only, which loom builds leave out.)
#[cfg_attr(loom, allow(dead_code))]
pub(crate) fn days_from_civil(year: i128, month: u32, day: u32) -> i128 {
    let year = if month <= 2 { year - 1 } else { year };
    let era = year.div_euclid(400);
    let year_of_era = year.rem_euclid(400);
    let month = i128::from(month);
    let day_of_year =
        (153 * (if month > 2 { month - 3 } else { month + 9 }) + 2) / 5 + i128::from(day) - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn days_and_dates_round_trip() {
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        assert_eq!(civil_from_days(-1), (1969, 12, 31));
        assert_eq!(civil_from_days(11_016), (2000, 2, 29));
        assert_eq!(civil_from_days(20_793), (2026, 12, 6));
        assert_eq!(days_from_civil(1, 1, 1), -719_162);
        for days in (-800_000..3_000_000).step_by(997) {
            let (year, month, day) = civil_from_days(days);
            assert_eq!(days_from_civil(year, month, day), days, "{days}");
        }
    }
}
