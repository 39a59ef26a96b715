//! The `log` crate's logger on an [`AsyncSink<LogEvent>`] (feature `log`).
//!
//! [`install`] makes a sink the process's logger in one call: every `log::info!` and its
//! siblings that passes the level filter becomes a [`LogEvent`] on the sink, with
//!
//! - the level, the target and the message (`format_args!` rendered once, on the caller's
//!   thread; a literal without arguments is borrowed, not copied);
//! - the key-values of `log`'s `kv` syntax (`info!(user = 7; "login")`) as fields, numbers
//!   and booleans as such, anything else as text;
//! - the location as the fields `module`, `file` and `line`, unless
//!   [`LogBridge::location`] turns them off.
//!
//! The caller never waits for delivery; see [the facade docs](super) for what is
//! allocated per event and what happens when the sink refuses one (it is counted: see
//! [`FacadeHandle::refused`]).
//!
//! `log` allows one logger per process, set once: [`install`] fails if one is set already.
//! The logger lives until the process ends; stopping or terminating its sink makes it count
//! every later event as refused (`not_accepting`).
//!
//! # Examples
//!
//! ```
//! use mvx::sink::{SinkConfig, sinks::MemorySink};
//!
//! let (memory, events) = MemorySink::new();
//! let (sink, terminator) = mvx::rt::thread::create(memory, SinkConfig::default())?;
//! let logger = mvx::facade::log::install(sink.clone(), log::LevelFilter::Info)?;
//!
//! log::info!(target: "app::db", rows = 3; "saved {} rows", 3);
//! log::debug!("filtered out");
//!
//! sink.flush_blocking()?;
//! let saved = &events.snapshot()[0];
//! assert_eq!((saved.target.as_ref(), saved.message.as_ref()), ("app::db", "saved 3 rows"));
//! assert_eq!(events.len(), 1);
//! assert_eq!(logger.refused().total(), 0);
//! terminator.terminate()?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::borrow::Cow;
use std::fmt;
use std::sync::Arc;

use ::log::kv::{self, Key, Value, VisitSource};
use ::log::{LevelFilter, Log, Metadata, Record, SetLoggerError};

use super::{FacadeHandle, RefusalCounters};
use crate::sink::{AsyncSink, FieldValue, Level, LogEvent};

/// A `log::Log` that turns records into [`LogEvent`]s on an [`AsyncSink`].
///
/// Use [`install`] for the usual set-up; build a `LogBridge` to choose its options, then
/// [`install`](Self::install) it, or call it as a `log::Log` yourself (inside a logger of
/// your own that dispatches to several, say).
///
/// # Examples
///
/// ```
/// use log::{Log, Record};
/// use mvx::facade::log::LogBridge;
/// use mvx::sink::{SinkConfig, sinks::MemorySink};
///
/// let (memory, events) = MemorySink::new();
/// let (sink, terminator) = mvx::rt::thread::create(memory, SinkConfig::default())?;
/// let bridge = LogBridge::new(sink.clone())
///     .max_level(log::LevelFilter::Warn)
///     .location(false);
/// bridge.log(&Record::builder().level(log::Level::Warn).args(format_args!("disk full")).build());
/// bridge.log(&Record::builder().level(log::Level::Info).args(format_args!("filtered")).build());
/// sink.flush_blocking()?;
/// assert_eq!(events.snapshot()[0].message, "disk full");
/// assert!(events.snapshot()[0].fields.is_empty());
/// assert_eq!(events.len(), 1);
/// terminator.terminate()?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct LogBridge {
    sink: AsyncSink<LogEvent>,
    max_level: LevelFilter,
    location: bool,
    refused: Arc<RefusalCounters>,
}

impl LogBridge {
    /// A bridge to `sink` that passes every level and records the location.
    pub fn new(sink: AsyncSink<LogEvent>) -> Self {
        Self {
            sink,
            max_level: LevelFilter::Trace,
            location: true,
            refused: Arc::default(),
        }
    }

    /// Passes records up to `level` (and sets `log`'s global maximum to it on
    /// [`install`](Self::install), so that the macros skip the others at the call site).
    pub fn max_level(mut self, level: LevelFilter) -> Self {
        self.max_level = level;
        self
    }

    /// Whether events carry the fields `module`, `file` and `line` (default `true`).
    pub fn location(mut self, location: bool) -> Self {
        self.location = location;
        self
    }

    /// A handle on the sink and the refusal counters, for after the bridge is installed.
    pub fn handle(&self) -> FacadeHandle {
        FacadeHandle::new(self.sink.clone(), self.refused.clone())
    }

    /// Makes this bridge the process's logger and sets `log`'s maximum level.
    ///
    /// # Errors
    ///
    /// `log`'s [`SetLoggerError`] when a logger is already set (by this or any crate).
    pub fn install(self) -> Result<FacadeHandle, SetLoggerError> {
        let handle = self.handle();
        let max_level = self.max_level;
        ::log::set_boxed_logger(Box::new(self))?;
        ::log::set_max_level(max_level);
        Ok(handle)
    }

    /// The event of `record`.
    fn event(&self, record: &Record<'_>) -> LogEvent {
        let args = record.args();
        let message = match args.as_str() {
            Some(literal) => Cow::Borrowed(literal),
            None => Cow::Owned(args.to_string()),
        };
        let target = match record.module_path_static() {
            Some(module) if module == record.target() => Cow::Borrowed(module),
            _ => Cow::Owned(record.target().to_owned()),
        };
        let mut event = LogEvent::new(level(record.level()), target, message);
        let kvs = record.key_values();
        let location = if self.location {
            usize::from(record.module_path().is_some())
                + usize::from(record.file().is_some())
                + usize::from(record.line().is_some())
        } else {
            0
        };
        let count = kvs.count() + location;
        if count == 0 {
            return event;
        }
        event.fields.reserve_exact(count);
        if self.location {
            if let Some(module) = static_or_owned(record.module_path_static(), record.module_path())
            {
                event
                    .fields
                    .push((Cow::Borrowed("module"), FieldValue::Str(module)));
            }
            if let Some(file) = static_or_owned(record.file_static(), record.file()) {
                event
                    .fields
                    .push((Cow::Borrowed("file"), FieldValue::Str(file)));
            }
            if let Some(line) = record.line() {
                event.fields.push((Cow::Borrowed("line"), line.into()));
            }
        }
        let _ = kvs.visit(&mut Fields(&mut event.fields));
        event
    }
}

fn static_or_owned(
    static_text: Option<&'static str>,
    text: Option<&str>,
) -> Option<Cow<'static, str>> {
    match static_text {
        Some(text) => Some(Cow::Borrowed(text)),
        None => text.map(|text| Cow::Owned(text.to_owned())),
    }
}

/// `log`'s level as an mvx [`Level`].
pub fn level(level: ::log::Level) -> Level {
    match level {
        ::log::Level::Error => Level::Error,
        ::log::Level::Warn => Level::Warn,
        ::log::Level::Info => Level::Info,
        ::log::Level::Debug => Level::Debug,
        ::log::Level::Trace => Level::Trace,
    }
}

/// Collects key-values as fields.
struct Fields<'a>(&'a mut Vec<(Cow<'static, str>, FieldValue)>);

impl<'kvs> VisitSource<'kvs> for Fields<'_> {
    fn visit_pair(&mut self, key: Key<'kvs>, value: Value<'kvs>) -> Result<(), kv::Error> {
        self.0
            .push((Cow::Owned(key.as_str().to_owned()), field_value(&value)));
        Ok(())
    }
}

/// A key-value's value: booleans and numbers as such, anything else as its text.
fn field_value(value: &Value<'_>) -> FieldValue {
    if let Some(flag) = value.to_bool() {
        FieldValue::Bool(flag)
    } else if let Some(number) = value.to_u64() {
        FieldValue::U64(number)
    } else if let Some(number) = value.to_i64() {
        FieldValue::I64(number)
    } else if let Some(number) = value.to_f64() {
        FieldValue::F64(number)
    } else if let Some(text) = value.to_borrowed_str() {
        FieldValue::Str(Cow::Owned(text.to_owned()))
    } else {
        FieldValue::Str(Cow::Owned(value.to_string()))
    }
}

impl Log for LogBridge {
    fn enabled(&self, metadata: &Metadata<'_>) -> bool {
        metadata.level() <= self.max_level
    }

    /// Hands the record's event to the sink; counts it if the sink refuses it, or if the
    /// calling thread is in a suppression scope (the event is then not built).
    fn log(&self, record: &Record<'_>) {
        if self.enabled(record.metadata()) && !self.refused.suppressed() {
            self.refused.submit(&self.sink, self.event(record));
        }
    }

    /// Waits until every event logged before is delivered ([`AsyncSink::flush_blocking`]).
    ///
    /// Returns at once, without waiting, where the wait could only wait for itself (on the
    /// thread that must run the sink's driver: see
    /// [which calls block](crate::sink#which-calls-block)).
    fn flush(&self) {
        let _ = self.sink.flush_blocking();
    }
}

/// Makes `sink` the process's logger, passing records up to `max_level`.
///
/// Shorthand for `LogBridge::new(sink).max_level(max_level).install()`; see
/// [`LogBridge`] for the options.
///
/// # Errors
///
/// `log`'s [`SetLoggerError`] when a logger is already set.
pub fn install(
    sink: AsyncSink<LogEvent>,
    max_level: LevelFilter,
) -> Result<FacadeHandle, SetLoggerError> {
    LogBridge::new(sink).max_level(max_level).install()
}

impl fmt::Debug for LogBridge {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LogBridge")
            .field("max_level", &self.max_level)
            .field("location", &self.location)
            .field("refused", &self.refused.get())
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::facade::Refused;
    use crate::queue::OverflowPolicy;
    use crate::sink::{Discard, SinkConfig};

    fn record_with(
        level: ::log::Level,
        f: impl FnOnce(&Record<'_>) -> LogEvent,
        kvs: &dyn kv::Source,
    ) -> LogEvent {
        let name = String::from("dynamic");
        f(&Record::builder()
            .level(level)
            .target("custom::target")
            .args(format_args!("hello {name}"))
            .module_path_static(Some("app::module"))
            .file(Some("src/app.rs"))
            .line(Some(42))
            .key_values(kvs)
            .build())
    }

    #[test]
    fn a_record_becomes_an_event_with_location_and_key_values() {
        let (sink, _driver) = AsyncSink::new(Discard, SinkConfig::default());
        let bridge = LogBridge::new(sink);
        let kvs: &[(&str, Value<'_>)] = &[
            ("n", Value::from(-3i32)),
            ("big", Value::from(u64::MAX)),
            ("ok", Value::from(true)),
            ("ratio", Value::from(0.25f64)),
            ("who", Value::from("ann")),
            ("debug", Value::from_debug(&[1, 2])),
        ];
        let event = record_with(::log::Level::Warn, |record| bridge.event(record), &kvs);
        assert_eq!(event.level, Level::Warn);
        assert_eq!(event.target, "custom::target");
        assert_eq!(event.message, "hello dynamic");
        assert_eq!(
            event.fields,
            vec![
                ("module".into(), FieldValue::from("app::module")),
                ("file".into(), FieldValue::from("src/app.rs".to_owned())),
                ("line".into(), FieldValue::U64(42)),
                ("n".into(), FieldValue::I64(-3)),
                ("big".into(), FieldValue::U64(u64::MAX)),
                ("ok".into(), FieldValue::Bool(true)),
                ("ratio".into(), FieldValue::F64(0.25)),
                ("who".into(), FieldValue::from("ann")),
                ("debug".into(), FieldValue::from("[1, 2]")),
            ]
        );
        assert_eq!(event.fields.capacity(), 9, "the vector is allocated once");
        // A module-path target and a literal message are borrowed.
        let event = bridge.location(false).event(
            &Record::builder()
                .args(format_args!("literal"))
                .target("app::module")
                .module_path_static(Some("app::module"))
                .build(),
        );
        assert!(matches!(event.message, Cow::Borrowed("literal")));
        assert!(matches!(event.target, Cow::Borrowed("app::module")));
        assert_eq!(event.fields.capacity(), 0, "no fields, no vector");
    }

    #[test]
    fn refusals_are_counted_by_reason_and_never_block() {
        let config = SinkConfig::default()
            .queue_capacity(1)
            .overflow(OverflowPolicy::RaiseError);
        let (sink, driver) = AsyncSink::new(Discard, config);
        let bridge = LogBridge::new(sink.clone());
        let handle = bridge.handle();
        let record = Record::builder()
            .level(::log::Level::Info)
            .args(format_args!("x"))
            .build();
        bridge.log(&record); // Virgin: not accepting.
        assert_eq!(
            handle.refused(),
            Refused {
                not_accepting: 1,
                ..Refused::default()
            }
        );
        // Started (its driver not polled: nothing is dispatched), one slot: the second overflows.
        drop(sink.start());
        bridge.log(&record);
        bridge.log(&record);
        assert_eq!(
            handle.refused(),
            Refused {
                overflow: 1,
                not_accepting: 1,
                ..Refused::default()
            }
        );
        assert_eq!(handle.refused().total(), 2);
        assert_eq!(handle.sink().stats().accepted, 1);
        drop(driver);
    }
}
