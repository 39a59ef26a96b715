//! Line formats: how line-oriented sinks (the writer, the Redis streams sink) turn an event
//! into text ([`LineFormat`], whose docs are the rules, and the two built-in formats).

use std::fmt::{self, Write as _};

use super::event::Rfc3339;
use super::{FieldValue, LogEvent, LossReport};

/// Turns an event into one line of text, without the line break: what line-oriented sinks
/// (the writer, the Redis streams sink) write.
///
/// The built-in formats are [`DisplayLines`] (the event's `Display`, for any event type)
/// and [`JsonLines`] (a [`LogEvent`] as one JSON object of a fixed shape, for log shippers
/// and `jq`). Implement it, with [`LineFormatName`], to give a sink a format of your own. A
/// format appends to a `String` that the sink owns and reuses, so formatting an event
/// costs no allocation once the buffer has grown to the longest line.
///
/// # Examples
///
/// ```
/// use mvx::sink::{LineFormat, LineFormatName, Level, LogEvent};
///
/// struct LevelAndMessage;
///
/// impl LineFormat<LogEvent> for LevelAndMessage {
///     fn format(&self, event: &LogEvent, out: &mut String) {
///         out.push_str(event.level.as_str());
///         out.push(' ');
///         out.push_str(&event.message);
///     }
/// }
///
/// impl LineFormatName for LevelAndMessage {
///     fn name(&self) -> &'static str {
///         "level-and-message"
///     }
/// }
///
/// let mut line = String::new();
/// LevelAndMessage.format(&LogEvent::new(Level::Warn, "app", "slow"), &mut line);
/// assert_eq!(line, "WARN slow");
/// ```
pub trait LineFormat<E>: LineFormatName {
    /// Appends the line for `event` to `out` (without a line break).
    fn format(&self, event: &E, out: &mut String);

    /// Appends the line for a [loss report](super::LossReport) to `out` (without a line
    /// break), so that it reads like the events around it. The default writes the report's
    /// `Display`: `mvx: 96 events dropped (queue full) since 2026-12-01T12:00:01.000Z`.
    fn format_loss(&self, report: &LossReport, out: &mut String) {
        let _ = write!(out, "{report}");
    }
}

/// The name of a line format, whatever the event type.
///
/// Part of a sink's descriptor (its configuration key), which is built before any event
/// exists: two sinks on one resource with different formats are different configurations.
pub trait LineFormatName: Send + 'static {
    /// A short name, such as `"json-lines"`.
    fn name(&self) -> &'static str;
}

/// The event's [`Display`](fmt::Display), as is. The default format of
/// [`WriterSink`](super::sinks::WriterSink).
///
/// A `Display` that writes a line break makes a multi-line record.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct DisplayLines;

impl<E: fmt::Display> LineFormat<E> for DisplayLines {
    fn format(&self, event: &E, out: &mut String) {
        let _ = write!(out, "{event}");
    }
}

impl LineFormatName for DisplayLines {
    fn name(&self) -> &'static str {
        "display"
    }
}

/// A [`LogEvent`] as one JSON object on one line ([JSON Lines](https://jsonlines.org/)).
///
/// The shape is fixed, with the keys in this order:
///
/// ```json
/// {"timestamp":"2026-11-29T02:47:53.123Z","level":"INFO","target":"app::db","message":"saved","fields":{"rows":3,"table":"users"}}
/// ```
///
/// - `timestamp`: RFC 3339 in UTC with milliseconds, as the event's `Display` writes it.
/// - `level`: upper case (`TRACE` … `ERROR`).
/// - `fields`: always present (`{}` when there are none). Text is a JSON string, integers
///   and booleans are JSON numbers and booleans, finite floats are numbers, and the floats
///   JSON has no number for are the strings `"NaN"`, `"Infinity"` and `"-Infinity"`.
///   A name that appears more than once is written once, with its **last** value (an event
///   field over a field of its `tracing` span, an inner span's over an outer's), so that
///   every JSON parser reads the same object.
/// - Strings are escaped as RFC 8259 asks: `"` and `\`, and control characters as `\n`,
///   `\r`, `\t` or `\u00XX`. Nothing else is escaped (UTF-8 passes through), so a line
///   never contains a raw line break.
///
/// # Examples
///
/// ```
/// use std::time::{Duration, UNIX_EPOCH};
/// use mvx::sink::{JsonLines, Level, LineFormat, LogEvent};
///
/// let mut event = LogEvent::new(Level::Info, "app::db", "saved \"rows\"")
///     .with_field("rows", 3u32)
///     .with_field("ratio", 0.5)
///     .with_field("rows", 4u32); // the last value wins
/// event.timestamp = UNIX_EPOCH + Duration::from_millis(1_500);
///
/// let mut line = String::new();
/// JsonLines.format(&event, &mut line);
/// assert_eq!(
///     line,
///     r#"{"timestamp":"1970-01-01T00:00:01.500Z","level":"INFO","target":"app::db","message":"saved \"rows\"","fields":{"ratio":0.5,"rows":4}}"#
/// );
/// let parsed: serde_json::Value = serde_json::from_str(&line).unwrap();
/// assert_eq!(parsed["fields"]["rows"], 4);
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct JsonLines;

impl LineFormat<LogEvent> for JsonLines {
    fn format(&self, event: &LogEvent, out: &mut String) {
        let _ = write!(out, "{{\"timestamp\":\"{}\"", Rfc3339(event.timestamp));
        out.push_str(",\"level\":\"");
        out.push_str(event.level.as_str());
        out.push_str("\",\"target\":");
        write_json_string(&event.target, out);
        out.push_str(",\"message\":");
        write_json_string(&event.message, out);
        out.push_str(",\"fields\":{");
        let mut first = true;
        for (name, value) in last_values(&event.fields) {
            if !first {
                out.push(',');
            }
            first = false;
            write_json_string(name, out);
            out.push(':');
            write_json_value(value, out);
        }
        out.push_str("}}");
    }

    /// A loss report as a `WARN` record of target `mvx`, in the shape of the events: its
    /// message is the report's [`message`](LossReport::message), its timestamp the end of
    /// its window, its fields the counts and `since`.
    fn format_loss(&self, report: &LossReport, out: &mut String) {
        let _ = write!(
            out,
            "{{\"timestamp\":\"{}\",\"level\":\"WARN\",\"target\":\"mvx\",\"message\":",
            Rfc3339(report.until)
        );
        write_json_string(&report.message().to_string(), out);
        let _ = write!(
            out,
            ",\"fields\":{{\"dropped\":{},\"refused\":{},\"failed\":{},\"restarts\":{},\"since\":\"{}\"}}}}",
            report.dropped,
            report.refused,
            report.failed,
            report.restarts,
            Rfc3339(report.since)
        );
    }
}

impl LineFormatName for JsonLines {
    fn name(&self) -> &'static str {
        "json-lines"
    }
}

/// The fields of `fields` in order, leaving out every field whose name appears again later.
///
/// Quadratic in the number of fields, which is small; allocation-free.
pub(crate) fn last_values<'a>(
    fields: &'a [(std::borrow::Cow<'static, str>, FieldValue)],
) -> impl Iterator<Item = (&'a str, &'a FieldValue)> + 'a {
    fields
        .iter()
        .enumerate()
        .filter(move |(index, (name, _))| {
            !fields[index + 1..]
                .iter()
                .any(|(later, _)| later.as_ref() == name.as_ref())
        })
        .map(|(_, (name, value))| (name.as_ref(), value))
}

/// Writes `value` as a JSON value.
fn write_json_value(value: &FieldValue, out: &mut String) {
    match value {
        FieldValue::Str(text) => write_json_string(text, out),
        FieldValue::Shared(text) => write_json_string(text, out),
        FieldValue::I64(number) => {
            let _ = write!(out, "{number}");
        }
        FieldValue::U64(number) => {
            let _ = write!(out, "{number}");
        }
        FieldValue::F64(number) if number.is_nan() => out.push_str("\"NaN\""),
        FieldValue::F64(number) if number.is_infinite() => out.push_str(if *number > 0.0 {
            "\"Infinity\""
        } else {
            "\"-Infinity\""
        }),
        FieldValue::F64(number) => {
            let _ = write!(out, "{number:?}");
        }
        FieldValue::Bool(flag) => out.push_str(if *flag { "true" } else { "false" }),
    }
}

/// Writes `text` as a JSON string, quotes included.
pub(crate) fn write_json_string(text: &str, out: &mut String) {
    out.push('"');
    let mut start = 0;
    for (index, byte) in text.bytes().enumerate() {
        let escape = match byte {
            b'"' => "\\\"",
            b'\\' => "\\\\",
            b'\n' => "\\n",
            b'\r' => "\\r",
            b'\t' => "\\t",
            0..=0x1f => "",
            _ => continue,
        };
        out.push_str(&text[start..index]);
        if escape.is_empty() {
            let _ = write!(out, "\\u{byte:04x}");
        } else {
            out.push_str(escape);
        }
        start = index + 1;
    }
    out.push_str(&text[start..]);
    out.push('"');
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sink::Level;
    use std::sync::Arc;
    use std::time::UNIX_EPOCH;

    fn json(event: &LogEvent) -> String {
        let mut line = String::new();
        JsonLines.format(event, &mut line);
        line
    }

    #[test]
    fn strings_are_escaped_and_parse_back() {
        let nasty = "quote \" backslash \\ newline \n tab \t cr \r bell \u{7} nul \u{0} é ✓";
        let mut event = LogEvent::new(Level::Error, "t\"arget", nasty).with_field("k\n", nasty);
        event.timestamp = UNIX_EPOCH;
        let line = json(&event);
        assert!(!line.contains('\n'), "{line}");
        assert!(
            line.contains("\\u0007") && line.contains("\\u0000"),
            "{line}"
        );
        let parsed: serde_json::Value = serde_json::from_str(&line).unwrap();
        assert_eq!(parsed["message"], nasty);
        assert_eq!(parsed["target"], "t\"arget");
        assert_eq!(parsed["fields"]["k\n"], nasty);
        assert_eq!(parsed["level"], "ERROR");
        assert_eq!(parsed["timestamp"], "1970-01-01T00:00:00.000Z");
    }

    #[test]
    fn every_value_kind_has_its_json_form() {
        let mut event = LogEvent::new(Level::Debug, "t", "m")
            .with_field("i", -3i64)
            .with_field("u", u64::MAX)
            .with_field("f", 1.0)
            .with_field("tiny", 1e-7)
            .with_field("nan", f64::NAN)
            .with_field("inf", f64::INFINITY)
            .with_field("ninf", f64::NEG_INFINITY)
            .with_field("yes", true)
            .with_field("shared", FieldValue::Shared(Arc::from("s")));
        event.timestamp = UNIX_EPOCH;
        assert_eq!(
            json(&event),
            "{\"timestamp\":\"1970-01-01T00:00:00.000Z\",\"level\":\"DEBUG\",\"target\":\"t\",\
             \"message\":\"m\",\"fields\":{\"i\":-3,\"u\":18446744073709551615,\"f\":1.0,\
             \"tiny\":1e-7,\"nan\":\"NaN\",\"inf\":\"Infinity\",\"ninf\":\"-Infinity\",\
             \"yes\":true,\"shared\":\"s\"}}"
        );
        let parsed: serde_json::Value = serde_json::from_str(&json(&event)).unwrap();
        assert_eq!(parsed["fields"]["u"], u64::MAX);
    }

    #[test]
    fn no_fields_is_an_empty_object_and_repeated_names_keep_the_last() {
        let mut event = LogEvent::new(Level::Info, "t", "m");
        event.timestamp = UNIX_EPOCH;
        assert!(json(&event).ends_with(",\"fields\":{}}"));
        let event = event
            .with_field("a", 1u8)
            .with_field("b", 2u8)
            .with_field("a", 3u8);
        assert!(json(&event).ends_with(",\"fields\":{\"b\":2,\"a\":3}}"));
    }

    #[test]
    fn display_lines_is_the_display() {
        let mut line = String::new();
        DisplayLines.format(&42u32, &mut line);
        assert_eq!(line, "42");
        assert_eq!(DisplayLines.name(), "display");
    }
}
