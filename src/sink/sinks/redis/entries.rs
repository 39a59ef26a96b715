//! Stream entries: how a [`LogEvent`] becomes the fields of an entry ([`FieldMapping`]), how
//! the stream is trimmed ([`MaxLen`]), and the transaction that appends a batch.

use std::fmt::{self, Write as _};

use super::RedisStreamSink;
use crate::sink::event::Rfc3339;
use crate::sink::format::last_values;
use crate::sink::{FieldValue, JsonLines, LineFormat, LogEvent};

/// How the stream is trimmed on each `XADD`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct MaxLen {
    /// The length to trim to.
    pub len: u64,
    /// `MAXLEN ~`: trim only whole macro nodes, which is much cheaper; the stream may then
    /// keep somewhat more entries than `len`.
    pub approximate: bool,
}

/// How a [`LogEvent`] becomes the fields of a stream entry.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum FieldMapping {
    /// One field holding the event as a [`JsonLines`] object (without the line break).
    Json {
        /// The field's name.
        field: String,
    },
    /// One field per part: `timestamp` (RFC 3339, UTC, milliseconds), `level`, `target`,
    /// `message`, then each of the event's fields under `prefix` followed by its name, its
    /// value as text (a name that repeats keeps its last value).
    Flat {
        /// What goes before the name of each of the event's fields.
        prefix: String,
    },
}

impl FieldMapping {
    /// The event as JSON in the field `field`.
    pub fn json(field: impl Into<String>) -> Self {
        Self::Json {
            field: field.into(),
        }
    }

    /// One stream field per part, the event's fields under `prefix` and their name.
    pub fn flat(prefix: impl Into<String>) -> Self {
        Self::Flat {
            prefix: prefix.into(),
        }
    }
}

impl Default for FieldMapping {
    /// `FieldMapping::json("event")`.
    fn default() -> Self {
        Self::json("event")
    }
}

impl fmt::Display for FieldMapping {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Json { field } => write!(f, "json:{field}"),
            Self::Flat { prefix } => write!(f, "flat:{prefix}"),
        }
    }
}

impl RedisStreamSink {
    /// The transaction of a batch: `XADD` per event, then the acknowledgement.
    pub(super) fn transaction(&mut self, events: &[LogEvent], sequence: u64) -> redis::Pipeline {
        let mut pipeline = redis::pipe();
        pipeline.atomic().ignore_errors();
        for event in events {
            let command = pipeline.cmd("XADD").arg(&self.stream);
            if let Some(MaxLen { len, approximate }) = self.max_len {
                command
                    .arg("MAXLEN")
                    .arg(if approximate { "~" } else { "=" })
                    .arg(len);
            }
            command.arg("*");
            match &self.fields {
                FieldMapping::Json { field } => {
                    self.line.clear();
                    JsonLines.format(event, &mut self.line);
                    command.arg(field).arg(&self.line);
                }
                FieldMapping::Flat { prefix } => {
                    self.line.clear();
                    let _ = write!(self.line, "{}", Rfc3339(event.timestamp));
                    command
                        .arg("timestamp")
                        .arg(&self.line)
                        .arg("level")
                        .arg(event.level.as_str())
                        .arg("target")
                        .arg(event.target.as_ref())
                        .arg("message")
                        .arg(event.message.as_ref());
                    for (name, value) in last_values(&event.fields) {
                        self.line.clear();
                        self.line.push_str(prefix);
                        self.line.push_str(name);
                        command.arg(&self.line);
                        match value.as_str() {
                            Some(text) => command.arg(text),
                            None => command.arg(plain_text(value)),
                        };
                    }
                }
            }
        }
        pipeline
            .cmd("SET")
            .arg(&self.ack_key)
            .arg(sequence)
            .arg("PX")
            .arg(self.ack_ttl.as_millis() as u64);
        pipeline
    }
}

/// A non-text field value as text.
fn plain_text(value: &FieldValue) -> String {
    match value {
        FieldValue::Str(text) => text.to_string(),
        FieldValue::Shared(text) => text.to_string(),
        FieldValue::I64(number) => number.to_string(),
        FieldValue::U64(number) => number.to_string(),
        FieldValue::F64(number) => number.to_string(),
        FieldValue::Bool(flag) => flag.to_string(),
    }
}
