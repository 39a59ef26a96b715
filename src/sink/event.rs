//! `LogEvent`: the event type of the common case, a structured log record.

use std::borrow::Cow;
use std::fmt;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

/// The severity of a [`LogEvent`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Level {
    /// Very detailed tracing.
    Trace,
    /// Debugging detail.
    Debug,
    /// Normal operation.
    Info,
    /// Something unexpected that was handled.
    Warn,
    /// A failure.
    Error,
}

impl Level {
    /// The level in upper case, such as `"INFO"`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Trace => "TRACE",
            Self::Debug => "DEBUG",
            Self::Info => "INFO",
            Self::Warn => "WARN",
            Self::Error => "ERROR",
        }
    }
}

impl fmt::Display for Level {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The value of a [`LogEvent`] field.
#[derive(Clone, Debug, PartialEq)]
pub enum FieldValue {
    /// Text.
    Str(Cow<'static, str>),
    /// Text shared by many events, such as a field of the `tracing` span an event is in:
    /// cloning it copies a pointer, not the text.
    Shared(Arc<str>),
    /// A signed integer.
    I64(i64),
    /// An unsigned integer.
    U64(u64),
    /// A floating-point number.
    F64(f64),
    /// A boolean.
    Bool(bool),
}

impl fmt::Display for FieldValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Str(text) => write!(f, "{text:?}"),
            Self::Shared(text) => write!(f, "{text:?}"),
            Self::I64(value) => write!(f, "{value}"),
            Self::U64(value) => write!(f, "{value}"),
            Self::F64(value) => write!(f, "{value}"),
            Self::Bool(value) => write!(f, "{value}"),
        }
    }
}

macro_rules! field_value_from {
    ($($ty:ty => $variant:ident as $as:ty),* $(,)?) => {
        $(impl From<$ty> for FieldValue {
            fn from(value: $ty) -> Self {
                Self::$variant(<$as>::from(value))
            }
        })*
    };
}

field_value_from!(
    i8 => I64 as i64, i16 => I64 as i64, i32 => I64 as i64, i64 => I64 as i64,
    u8 => U64 as u64, u16 => U64 as u64, u32 => U64 as u64, u64 => U64 as u64,
    f32 => F64 as f64, f64 => F64 as f64, bool => Bool as bool,
);

impl From<&'static str> for FieldValue {
    fn from(value: &'static str) -> Self {
        Self::Str(Cow::Borrowed(value))
    }
}

impl From<String> for FieldValue {
    fn from(value: String) -> Self {
        Self::Str(Cow::Owned(value))
    }
}

impl From<Arc<str>> for FieldValue {
    fn from(value: Arc<str>) -> Self {
        Self::Shared(value)
    }
}

impl FieldValue {
    /// The text of a `Str` or `Shared` value.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Self::Str(text) => Some(text),
            Self::Shared(text) => Some(text),
            _ => None,
        }
    }
}

/// A structured log record: timestamp, level, target, message and fields.
///
/// The core is generic over the event type; `LogEvent` is what the built-in writer sink
/// formats. Its [`Display`](fmt::Display) is one line:
/// `2026-11-29T02:47:53.123Z INFO app::db: saved rows=3`.
///
/// # Examples
///
/// ```
/// use mvx::sink::{Level, LogEvent};
///
/// let event = LogEvent::new(Level::Info, "app::db", "saved").with_field("rows", 3u32);
/// assert!(event.to_string().ends_with("INFO app::db: saved rows=3"));
/// ```
#[derive(Clone, Debug, PartialEq)]
pub struct LogEvent {
    /// When the event happened.
    pub timestamp: SystemTime,
    /// Its severity.
    pub level: Level,
    /// Where it comes from, usually a module path.
    pub target: Cow<'static, str>,
    /// The message.
    pub message: Cow<'static, str>,
    /// Named values, in order.
    pub fields: Vec<(Cow<'static, str>, FieldValue)>,
}

impl LogEvent {
    /// An event stamped now, without fields.
    pub fn new(
        level: Level,
        target: impl Into<Cow<'static, str>>,
        message: impl Into<Cow<'static, str>>,
    ) -> Self {
        Self {
            timestamp: SystemTime::now(),
            level,
            target: target.into(),
            message: message.into(),
            fields: Vec::new(),
        }
    }

    /// Adds a field.
    pub fn with_field(
        mut self,
        name: impl Into<Cow<'static, str>>,
        value: impl Into<FieldValue>,
    ) -> Self {
        self.fields.push((name.into(), value.into()));
        self
    }
}

impl fmt::Display for LogEvent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} {} {}: {}",
            Rfc3339(self.timestamp),
            self.level,
            self.target,
            self.message
        )?;
        for (name, value) in &self.fields {
            write!(f, " {name}={value}")?;
        }
        Ok(())
    }
}

/// Formats a time as RFC 3339 in UTC with milliseconds.
pub(crate) struct Rfc3339(pub(crate) SystemTime);

impl fmt::Display for Rfc3339 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let since_epoch = self.0.duration_since(UNIX_EPOCH).unwrap_or_default();
        let seconds = since_epoch.as_secs();
        let (days, rest) = (seconds / 86_400, seconds % 86_400);
        let (year, month, day) = crate::calendar::civil_from_days(i128::from(days));
        write!(
            f,
            "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:03}Z",
            rest / 3600,
            rest / 60 % 60,
            rest % 60,
            since_epoch.subsec_millis()
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn timestamps_format_as_rfc3339() {
        let at = UNIX_EPOCH + Duration::from_millis(1_795_920_473_123);
        assert_eq!(Rfc3339(at).to_string(), "2026-11-29T02:47:53.123Z");
        assert_eq!(Rfc3339(UNIX_EPOCH).to_string(), "1970-01-01T00:00:00.000Z");
        let leap = UNIX_EPOCH + Duration::from_secs(951_782_400); // 2000-02-29
        assert_eq!(Rfc3339(leap).to_string(), "2000-02-29T00:00:00.000Z");
    }

    #[test]
    fn display_is_one_line_with_fields() {
        let mut event = LogEvent::new(Level::Warn, "db", "slow query")
            .with_field("ms", 1200u64)
            .with_field("table", "users")
            .with_field("cached", false);
        event.timestamp = UNIX_EPOCH;
        assert_eq!(
            event.to_string(),
            "1970-01-01T00:00:00.000Z WARN db: slow query ms=1200 table=\"users\" cached=false"
        );
    }
}
