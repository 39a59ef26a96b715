//! Numbers as the official clients write them (the rule is in the [module docs](super)):
//! integers as they are, floats as `prometheus_client`'s `floatToGoString` writes them.

use std::fmt::{self, Write as _};

use crate::metrics::Value;

/// Writes `value`: an integer in decimal, a float with [`write_float`].
pub(super) fn write_value(value: Value, out: &mut String) {
    match value {
        Value::U64(value) => {
            let _ = write!(out, "{value}");
        }
        Value::I64(value) => {
            let _ = write!(out, "{value}");
        }
        Value::F64(value) => write_float(value, out),
    }
}

/// Writes `value` as the official Python client does (`floatToGoString`): `NaN`, `+Inf`,
/// `-Inf`; otherwise the shortest digits that read back as `value`, in Python's `repr`
/// notation (`0.25`, `1.0`, `1e-07`, `1e+16`) except that a positive value of a million or
/// more takes an exponent as Go's `%g` does (`1e+06`, `1.234567e+06`).
///
/// Without allocating: the digits come from Rust's `{:e}` (shortest round-trip, as Python's
/// and Go's) into a buffer on the stack.
pub(super) fn write_float(value: f64, out: &mut String) {
    if value.is_nan() {
        out.push_str("NaN");
        return;
    }
    if value.is_infinite() {
        out.push_str(if value > 0.0 { "+Inf" } else { "-Inf" });
        return;
    }
    let scientific = shortest_scientific(value);
    let text = scientific.as_str();
    // `{:e}` is `-?D(.DDD)?e-?X`: the sign, the significant digits, the exponent.
    let (negative, text) = match text.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, text),
    };
    let Some((mantissa, exponent)) = text.split_once('e') else {
        // Unreachable for a finite f64; written as Rust does rather than panicking.
        out.push_str(scientific.as_str());
        return;
    };
    let exponent: i32 = exponent.parse().unwrap_or(0);
    let (first, rest) = mantissa.split_at(1);
    let rest = rest.strip_prefix('.').unwrap_or(rest);
    if negative {
        out.push('-');
    }
    // Python's repr takes an exponent below 1e-4 and from 1e16 on; floatToGoString takes
    // one for positive values from 1e6 on, as Go does.
    let exponential = !(-4..16).contains(&exponent) || (!negative && exponent >= 6);
    if exponential {
        out.push_str(first);
        if !rest.is_empty() {
            out.push('.');
            out.push_str(rest);
        }
        let sign = if exponent < 0 { '-' } else { '+' };
        let _ = write!(out, "e{sign}{:02}", exponent.unsigned_abs());
    } else if exponent >= 0 {
        // `exponent + 1` digits before the point (padded with zeros), at least one after.
        let whole = exponent.unsigned_abs() as usize + 1;
        let taken = (whole - 1).min(rest.len());
        out.push_str(first);
        out.push_str(&rest[..taken]);
        out.extend(std::iter::repeat_n('0', whole - 1 - taken));
        out.push('.');
        match &rest[taken..] {
            "" => out.push('0'),
            fraction => out.push_str(fraction),
        }
    } else {
        out.push_str("0.");
        out.extend(std::iter::repeat_n(
            '0',
            exponent.unsigned_abs() as usize - 1,
        ));
        out.push_str(first);
        out.push_str(rest);
    }
}

/// `value` in Rust's `{:e}` notation (`-1.234567e6`) with the digits Python's `repr` gives:
/// the fewest that read back as `value`, and of those the closest to it, a tie going to
/// the even digit.
///
/// Rust's shortest form has the fewest digits but, when two candidates are equally close,
/// may pick the odd one (`1.0000000000000003e15` for 1e15 + 0.25, where Python writes
/// `…02e+15`); Rust's fixed-precision form rounds correctly, ties to even, so it is taken
/// at the same number of digits whenever it reads back as `value`.
fn shortest_scientific(value: f64) -> StackText {
    let mut shortest = StackText::default();
    let _ = write!(shortest, "{value:e}");
    let digits = shortest
        .as_str()
        .split('e')
        .next()
        .unwrap_or_default()
        .bytes()
        .filter(u8::is_ascii_digit)
        .count();
    let mut closest = StackText::default();
    let _ = write!(closest, "{value:.*e}", digits.saturating_sub(1));
    if closest.as_str() != shortest.as_str() && closest.as_str().parse() == Ok(value) {
        closest
    } else {
        shortest
    }
}

/// Room for the longest `{:e}` of an `f64` (`-2.2250738585072014e-308`, 24 bytes).
#[derive(Default)]
struct StackText {
    bytes: [u8; 32],
    len: usize,
}

impl StackText {
    fn as_str(&self) -> &str {
        // Only whole `&str`s are ever written in.
        std::str::from_utf8(&self.bytes[..self.len]).unwrap_or("")
    }
}

impl fmt::Write for StackText {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        let end = self.len + s.len();
        let room = self.bytes.get_mut(self.len..end).ok_or(fmt::Error)?;
        room.copy_from_slice(s.as_bytes());
        self.len = end;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn float(value: f64) -> String {
        let mut out = String::new();
        write_float(value, &mut out);
        out
    }

    /// What `prometheus_client.utils.floatToGoString` returns for each value (0.26; the
    /// integration tests in tests/expose_numbers.rs ask Python itself).
    #[test]
    fn floats_are_written_as_prometheus_client_writes_them() {
        let cases = [
            (f64::NAN, "NaN"),
            (f64::INFINITY, "+Inf"),
            (f64::NEG_INFINITY, "-Inf"),
            (0.0, "0.0"),
            (-0.0, "-0.0"),
            (1.0, "1.0"),
            (-0.25, "-0.25"),
            (2.5, "2.5"),
            (0.1, "0.1"),
            (0.0001, "0.0001"),
            (0.00012, "0.00012"),
            (1e-5, "1e-05"),
            (1e-7, "1e-07"),
            (-1e-7, "-1e-07"),
            (1.5e-7, "1.5e-07"),
            (5e-324, "5e-324"),
            (100_000.0, "100000.0"),
            (123_456.7, "123456.7"),
            (999_999.999_9, "999999.9999"),
            (1e6, "1e+06"),
            (1_234_567.0, "1.234567e+06"),
            (10_000_000.5, "1.00000005e+07"),
            (1e15, "1e+15"),
            (1_000_000_000_000.000_1, "1.0000000000000001e+12"),
            (1e16, "1e+16"),
            (1e21, "1e+21"),
            (1.797_693_134_862_315_7e308, "1.7976931348623157e+308"),
            // Negative values keep Python's repr up to 1e16 (floatToGoString only changes
            // positive ones, the only ones `le` and `quantile` take in its own metrics).
            (-1e6, "-1000000.0"),
            (-1_234_567.0, "-1234567.0"),
            (-123_456_789_012_345.6, "-123456789012345.6"),
            (-1e16, "-1e+16"),
            (-1e21, "-1e+21"),
            (-1.797_693_134_862_315_7e308, "-1.7976931348623157e+308"),
            (1_717_171_717.171_717_2, "1.7171717171717172e+09"),
            // 1e15 + 0.25: two 17-digit candidates equally close; the even one.
            (
                f64::from_bits(0x430c_6bf5_2634_0002),
                "1.0000000000000002e+15",
            ),
            (f64::from_bits(0xc30c_6bf5_2634_0002), "-1000000000000000.2"),
        ];
        for (value, expected) in cases {
            assert_eq!(float(value), expected, "{value:e}");
        }
    }

    #[test]
    fn integers_are_written_as_they_are() {
        let cases = [
            (Value::U64(u64::MAX), "18446744073709551615"),
            (Value::U64(0), "0"),
            (Value::I64(-3), "-3"),
            (Value::I64(i64::MIN), "-9223372036854775808"),
            (Value::F64(3.0), "3.0"),
        ];
        for (value, expected) in cases {
            let mut out = String::new();
            write_value(value, &mut out);
            assert_eq!(out, expected);
        }
    }

    #[test]
    fn every_written_float_reads_back_as_itself() {
        let mut bits: u64 = 0x9E37_79B9_7F4A_7C15;
        for _ in 0..100_000 {
            // xorshift: bit patterns of every exponent and sign.
            bits ^= bits << 13;
            bits ^= bits >> 7;
            bits ^= bits << 17;
            let value = f64::from_bits(bits);
            if !value.is_finite() {
                continue;
            }
            let written = float(value);
            let read: f64 = written.parse().expect("a float Rust reads");
            assert_eq!(read.to_bits(), value.to_bits(), "{written}");
        }
    }
}
