//! Times and durations as text, the way Crawlee's models (pydantic) write and read them:
//! times as `2026-12-06T05:51:35.607896Z`, durations as `PT2.001627S`.

use crate::calendar::{civil_from_days, days_from_civil};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

const MICROS_PER_SEC: i128 = 1_000_000;
const SECS_PER_DAY: i128 = 86_400;

/// Microseconds since the Unix epoch of the first and the last instant Python's `datetime`
/// holds (years 1 to 9999), which is what Crawlee can read back.
const FIRST: i128 = -62_135_596_800 * MICROS_PER_SEC;
const LAST: i128 = 253_402_300_799 * MICROS_PER_SEC + 999_999;

/// A time as signed microseconds since the Unix epoch (truncated to the microsecond).
fn micros_since_epoch(time: SystemTime) -> i128 {
    match time.duration_since(UNIX_EPOCH) {
        Ok(after) => after.as_micros() as i128,
        Err(before) => -(before.duration().as_micros() as i128),
    }
}

/// The time `micros` microseconds from the Unix epoch, if Python's `datetime` and this
/// platform's `SystemTime` both hold it.
pub(crate) fn time_from_micros(micros: i128) -> Option<SystemTime> {
    if !(FIRST..=LAST).contains(&micros) {
        return None;
    }
    let magnitude = Duration::from_micros(u64::try_from(micros.unsigned_abs()).ok()?);
    if micros >= 0 {
        UNIX_EPOCH.checked_add(magnitude)
    } else {
        UNIX_EPOCH.checked_sub(magnitude)
    }
}

/// A time as Crawlee writes one: UTC, `Z`, microseconds when there are any
/// (`2026-12-06T05:51:35.607896Z`, `2026-01-02T03:04:05Z`); `None` outside years 1 to 9999.
pub(crate) fn format_time(time: SystemTime) -> Option<String> {
    let micros = micros_since_epoch(time);
    if !(FIRST..=LAST).contains(&micros) {
        return None;
    }
    let secs = micros.div_euclid(MICROS_PER_SEC);
    let subsec = micros.rem_euclid(MICROS_PER_SEC);
    let (days, rest) = (secs.div_euclid(SECS_PER_DAY), secs.rem_euclid(SECS_PER_DAY));
    let (year, month, day) = civil_from_days(days);
    let mut text = format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}",
        rest / 3600,
        rest / 60 % 60,
        rest % 60
    );
    if subsec != 0 {
        text.push_str(&format!(".{subsec:06}"));
    }
    text.push('Z');
    Some(text)
}

/// Parses a time as pydantic reads one: `YYYY-MM-DD`, then optionally `T` (or `t`, or a
/// space) and `HH:MM[:SS[.fraction]]`, then optionally `Z` (or `z`) or an offset
/// `±HH[:]MM`. No offset means UTC. Digits past the microsecond are dropped.
///
/// `Ok(None)`: a valid time outside what Python's `datetime` (years 1 to 9999) or this
/// platform's `SystemTime` hold.
pub(crate) fn parse_time(text: &str) -> Result<Option<SystemTime>, ()> {
    let mut cursor = Cursor::new(text);
    let year = cursor.digits(4)?;
    cursor.expect(b'-')?;
    let month = cursor.digits(2)?;
    cursor.expect(b'-')?;
    let day = cursor.digits(2)?;
    if year == 0 || !(1..=12).contains(&month) || day == 0 || day > days_in_month(year, month) {
        return Err(());
    }
    let (mut hour, mut minute, mut second, mut micros) = (0, 0, 0, 0);
    if matches!(cursor.peek(), Some(b'T' | b't' | b' ')) {
        cursor.next();
        hour = cursor.digits(2)?;
        cursor.expect(b':')?;
        minute = cursor.digits(2)?;
        if cursor.peek() == Some(b':') {
            cursor.next();
            second = cursor.digits(2)?;
            if cursor.peek() == Some(b'.') || cursor.peek() == Some(b',') {
                cursor.next();
                let (value, count) = cursor.fraction()?;
                micros = scale_fraction(value, count, 6, false);
            }
        }
        if hour > 23 || minute > 59 || second > 59 {
            return Err(());
        }
    }
    let mut offset_secs: i128 = 0;
    match cursor.next() {
        None => {}
        Some(b'Z' | b'z') => {}
        Some(sign @ (b'+' | b'-')) => {
            let hours = cursor.digits(2)?;
            if cursor.peek() == Some(b':') {
                cursor.next();
            }
            let minutes = cursor.digits(2)?;
            if hours > 23 || minutes > 59 {
                return Err(());
            }
            offset_secs = i128::from(hours * 3600 + minutes * 60);
            if sign == b'-' {
                offset_secs = -offset_secs;
            }
        }
        Some(_) => return Err(()),
    }
    if !cursor.at_end() {
        return Err(());
    }
    let days = days_from_civil(i128::from(year), month, day);
    let secs = days * SECS_PER_DAY + i128::from(hour * 3600 + minute * 60 + second) - offset_secs;
    Ok(time_from_micros(secs * MICROS_PER_SEC + micros as i128))
}

/// Parses a duration written in ISO 8601 as pydantic reads one:
/// `[+-]P[nY][nM][nW][nD][T[nH][nM][nS]]`, each `n` a decimal number (a fraction with `.`
/// or `,`), a year 365 days and a month 30; at least one part. Rounded to the nearest
/// microsecond, halves up, and at most `u64::MAX` µs. `Err` for anything else and for a
/// negative duration (a duration mvx cannot hold).
pub(crate) fn parse_duration(text: &str) -> Result<Duration, ()> {
    const DAY: u128 = 86_400;
    let mut cursor = Cursor::new(text);
    let negative = match cursor.peek() {
        Some(b'-') => {
            cursor.next();
            true
        }
        Some(b'+') => {
            cursor.next();
            false
        }
        _ => false,
    };
    cursor.expect(b'P')?;
    // Each unit in seconds, in the order the parts may come.
    let date_units: [(u8, u128); 4] = [
        (b'Y', 365 * DAY),
        (b'M', 30 * DAY),
        (b'W', 7 * DAY),
        (b'D', DAY),
    ];
    let time_units: [(u8, u128); 3] = [(b'H', 3600), (b'M', 60), (b'S', 1)];
    let mut total: u128 = 0;
    let mut parts = 0;
    let mut in_time = false;
    let mut next_unit = 0;
    while !cursor.at_end() {
        if cursor.peek() == Some(b'T') {
            if in_time {
                return Err(());
            }
            cursor.next();
            in_time = true;
            next_unit = 0;
            if cursor.at_end() {
                return Err(());
            }
            continue;
        }
        let (whole, fraction, count) = cursor.decimal()?;
        let unit = cursor.next().ok_or(())?;
        let units: &[(u8, u128)] = if in_time { &time_units } else { &date_units };
        let position = units[next_unit..]
            .iter()
            .position(|&(letter, _)| letter == unit)
            .ok_or(())?;
        let seconds = units[next_unit + position].1;
        next_unit += position + 1;
        let micros_per_unit = seconds * 1_000_000;
        let whole_micros = whole.saturating_mul(micros_per_unit);
        // The fraction times the unit, in microseconds, halves up.
        let fraction_micros =
            scale_fraction(fraction.saturating_mul(micros_per_unit), count, 0, true);
        total = total
            .saturating_add(whole_micros)
            .saturating_add(fraction_micros);
        parts += 1;
    }
    if parts == 0 || (negative && total != 0) {
        return Err(());
    }
    Ok(Duration::from_micros(
        u64::try_from(total).unwrap_or(u64::MAX),
    ))
}

/// `value / 10^count`, kept to `keep` decimal places: `value × 10^keep / 10^count`,
/// truncated, or rounded halves up with `round`.
fn scale_fraction(value: u128, count: u32, keep: u32, round: bool) -> u128 {
    if count <= keep {
        return value.saturating_mul(10u128.pow(keep - count));
    }
    let divisor = 10u128.saturating_pow(count - keep);
    let quotient = value / divisor;
    if round && (value % divisor).saturating_mul(2) >= divisor {
        quotient + 1
    } else {
        quotient
    }
}

fn is_leap(year: u32) -> bool {
    (year % 4 == 0 && year % 100 != 0) || year % 400 == 0
}

fn days_in_month(year: u32, month: u32) -> u32 {
    match month {
        2 if is_leap(year) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Reads ASCII text byte by byte.
struct Cursor<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Cursor<'a> {
    fn new(text: &'a str) -> Self {
        Self {
            bytes: text.as_bytes(),
            at: 0,
        }
    }

    fn peek(&self) -> Option<u8> {
        self.bytes.get(self.at).copied()
    }

    fn next(&mut self) -> Option<u8> {
        let byte = self.peek()?;
        self.at += 1;
        Some(byte)
    }

    fn at_end(&self) -> bool {
        self.at == self.bytes.len()
    }

    fn expect(&mut self, byte: u8) -> Result<(), ()> {
        if self.next() == Some(byte) {
            Ok(())
        } else {
            Err(())
        }
    }

    /// Exactly `count` decimal digits.
    fn digits(&mut self, count: usize) -> Result<u32, ()> {
        let mut value = 0;
        for _ in 0..count {
            match self.next() {
                Some(digit @ b'0'..=b'9') => value = value * 10 + u32::from(digit - b'0'),
                _ => return Err(()),
            }
        }
        Ok(value)
    }

    /// One or more decimal digits: their value (saturating) and how many there were.
    fn run(&mut self) -> (u128, u32) {
        let (mut value, mut count) = (0u128, 0u32);
        while let Some(digit @ b'0'..=b'9') = self.peek() {
            self.at += 1;
            value = value
                .saturating_mul(10)
                .saturating_add(u128::from(digit - b'0'));
            count = count.saturating_add(1);
        }
        (value, count)
    }

    /// The digits of a fraction (at least one); past 30 digits the rest are dropped.
    fn fraction(&mut self) -> Result<(u128, u32), ()> {
        let start = self.at;
        let (mut value, mut count) = (0u128, 0u32);
        while let Some(digit @ b'0'..=b'9') = self.peek() {
            self.at += 1;
            if count < 30 {
                value = value * 10 + u128::from(digit - b'0');
                count += 1;
            }
        }
        if self.at == start {
            Err(())
        } else {
            Ok((value, count))
        }
    }

    /// A decimal number, `digits[(.|,)digits]`: the whole part, the fraction's digits and
    /// their count.
    fn decimal(&mut self) -> Result<(u128, u128, u32), ()> {
        let (whole, count) = self.run();
        if count == 0 {
            return Err(());
        }
        if matches!(self.peek(), Some(b'.' | b',')) {
            self.at += 1;
            let (fraction, digits) = self.fraction()?;
            return Ok((whole, fraction, digits));
        }
        Ok((whole, 0, 0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(micros: i128) -> SystemTime {
        time_from_micros(micros).unwrap()
    }

    #[test]
    fn times_are_written_as_crawlee_writes_them() {
        assert_eq!(
            format_time(at(1_796_111_495_607_896)).as_deref(),
            Some("2026-12-01T07:51:35.607896Z")
        );
        assert_eq!(
            format_time(UNIX_EPOCH).as_deref(),
            Some("1970-01-01T00:00:00Z")
        );
        assert_eq!(
            format_time(at(-1)).as_deref(),
            Some("1969-12-31T23:59:59.999999Z")
        );
        assert_eq!(
            format_time(at(FIRST)).as_deref(),
            Some("0001-01-01T00:00:00Z")
        );
        assert_eq!(
            format_time(at(LAST)).as_deref(),
            Some("9999-12-31T23:59:59.999999Z")
        );
    }

    #[test]
    fn times_parse_as_pydantic_reads_them() {
        let parse = |text| parse_time(text).unwrap().map(micros_since_epoch);
        assert_eq!(
            parse("2026-12-01T07:51:35.607896Z"),
            Some(1_796_111_495_607_896)
        );
        assert_eq!(
            parse("2026-12-01T07:51:35.6078969Z"),
            Some(1_796_111_495_607_896)
        );
        assert_eq!(
            parse("2026-12-01 07:51:35.607896"),
            Some(1_796_111_495_607_896)
        );
        assert_eq!(
            parse("2026-12-01T08:51:35.607896+01:00"),
            Some(1_796_111_495_607_896)
        );
        assert_eq!(
            parse("2026-12-01T06:51:35.607896-0100"),
            Some(1_796_111_495_607_896)
        );
        assert_eq!(parse("2026-12-01T07:51Z"), Some(1_796_111_460_000_000));
        assert_eq!(parse("2026-12-01"), Some(1_796_083_200_000_000));
        assert_eq!(parse("0001-01-01T00:00:00Z"), Some(FIRST));
        assert_eq!(parse("2000-02-29T00:00:00Z"), Some(951_782_400_000_000));
        for bad in [
            "",
            "2026-13-01T00:00:00Z",
            "2026-02-29T00:00:00Z",
            "2026-01-01T24:00:00Z",
            "2026-01-01T00:00:60Z",
            "2026-01-01T00:00:00ZZ",
            "2026-01-01T00:00:00.Z",
            "0000-01-01T00:00:00Z",
            "26-01-01",
            "2026-01-01T00:00:00+25:00",
            "tomorrow",
        ] {
            assert_eq!(parse_time(bad), Err(()), "{bad:?}");
        }
    }

    #[test]
    fn durations_parse_as_pydantic_reads_them() {
        let us = |text| parse_duration(text).map(|d| d.as_micros());
        assert_eq!(us("PT2.001627S"), Ok(2_001_627));
        assert_eq!(us("PT0S"), Ok(0));
        assert_eq!(us("-PT0S"), Ok(0));
        assert_eq!(us("+PT1S"), Ok(1_000_000));
        assert_eq!(us("PT2H"), Ok(7_200_000_000));
        assert_eq!(
            us("P3DT1H2M3.000004S"),
            Ok(((3 * 86_400 + 3_723) * 1_000_000) + 4)
        );
        assert_eq!(us("P1Y35D"), Ok(400 * 86_400_000_000));
        assert_eq!(us("P1M"), Ok(30 * 86_400_000_000));
        assert_eq!(us("P1W"), Ok(7 * 86_400_000_000));
        assert_eq!(us("PT1,5S"), Ok(1_500_000));
        assert_eq!(us("PT1.5M"), Ok(90_000_000));
        assert_eq!(us("P0.5D"), Ok(43_200_000_000));
        assert_eq!(us("PT0.0000005S"), Ok(1), "halves up");
        assert_eq!(us("PT0.0000001S"), Ok(0));
        assert_eq!(us("PT1.9999999S"), Ok(2_000_000));
        assert_eq!(us("P99999999999999999999999Y"), Ok(u128::from(u64::MAX)));
        for bad in [
            "", "P", "PT", "pt1s", "-PT1S", "-P1D", "P1DT-1S", "PT1S2H", "P1D1Y", "PTT1S", "P1",
            "PT1.S", "2.5", "P1DT", "PT1HT1S",
        ] {
            assert_eq!(parse_duration(bad), Err(()), "{bad:?}");
        }
    }
}
