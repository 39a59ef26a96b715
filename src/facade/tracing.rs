//! A `tracing_subscriber::Layer` that feeds an [`AsyncSink<LogEvent>`] (feature `tracing`).
//!
//! [`SinkLayer`] turns every `tracing` event that reaches it into a [`LogEvent`]:
//!
//! - level, target and message (the event's `message` field);
//! - the event's other fields, under their own names: integers, floats and booleans as
//!   numbers and booleans, strings as text, anything recorded with `Debug` or as an error as
//!   its text;
//! - the span context: the fields of every span the event is in, root first, then the
//!   event's own fields (so in JSON an event's field wins over a span field of the same
//!   name, and an inner span's over an outer's), and the field `span`, the names of those
//!   spans from the root, joined by `:` (`request:db`);
//! - the location, as the fields `module`, `file` and `line`, unless turned off with
//!   [`SinkLayer::location`].
//!
//! It is a layer like any other: stack it with `fmt` or any other layer, and give it a
//! filter of its own with `Layer::with_filter` (a level, an `EnvFilter`) so that it sees
//! only what it should, without changing what the other layers see. The caller never waits
//! for delivery; see [the facade docs](super) for what is allocated per event and what
//! happens when the sink refuses one (it is counted: see [`FacadeHandle::refused`]).
//!
//! Span fields are kept once per span, when it is created or records a value, with their
//! text behind an `Arc` ([`FieldValue::Shared`]): copying them into each event costs no
//! allocation.
//!
//! # Examples
//!
//! ```
//! use mvx::facade::tracing::SinkLayer;
//! use mvx::sink::{FieldValue, SinkConfig, sinks::MemorySink};
//! use tracing_subscriber::layer::SubscriberExt;
//! use tracing_subscriber::{Layer, Registry, filter::LevelFilter};
//!
//! let (memory, events) = MemorySink::new();
//! let (sink, terminator) = mvx::rt::thread::create(memory, SinkConfig::default())?;
//! let layer = SinkLayer::new(sink.clone());
//! let handle = layer.handle();
//! let subscriber = Registry::default().with(layer.with_filter(LevelFilter::INFO));
//!
//! tracing::subscriber::with_default(subscriber, || {
//!     let span = tracing::info_span!("request", id = 7);
//!     let _entered = span.enter();
//!     tracing::info!(rows = 3, "saved");
//!     tracing::debug!("filtered out");
//! });
//!
//! sink.flush_blocking()?;
//! let saved = &events.snapshot()[0];
//! assert_eq!(saved.message, "saved");
//! let field = |name: &str| saved.fields.iter().find(|(key, _)| key == name).map(|(_, v)| v.clone());
//! assert_eq!(field("id"), Some(FieldValue::I64(7)));
//! assert_eq!(field("rows"), Some(FieldValue::I64(3)));
//! assert_eq!(field("span").as_ref().and_then(FieldValue::as_str), Some("request"));
//! assert_eq!((events.len(), handle.refused().total()), (1, 0));
//! terminator.terminate()?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::borrow::Cow;
use std::fmt::{self, Write as _};
use std::sync::Arc;

use tracing_core::field::{Field, Visit};
use tracing_core::span::{Attributes, Id, Record};
use tracing_core::{Event, Subscriber};
use tracing_subscriber::layer::Context;
use tracing_subscriber::registry::LookupSpan;

use super::{FacadeHandle, RefusalCounters};
use crate::sink::{AsyncSink, FieldValue, Level, LogEvent};

/// A layer that turns `tracing` events into [`LogEvent`]s on an [`AsyncSink`] (or on any
/// other [`EventTarget`]).
///
/// See the [module docs](self) for the mapping and an example.
pub struct SinkLayer<T = AsyncSink<LogEvent>> {
    target: T,
    location: bool,
    refused: Arc<RefusalCounters>,
}

/// Where a [`SinkLayer`] hands the events it builds: an [`AsyncSink<LogEvent>`], or
/// anything else that takes a [`LogEvent`] without making the caller wait.
///
/// # Examples
///
/// ```
/// use std::sync::Mutex;
/// use mvx::error::LogError;
/// use mvx::facade::tracing::{EventTarget, SinkLayer};
/// use mvx::sink::LogEvent;
/// use tracing_subscriber::layer::SubscriberExt;
///
/// #[derive(Default)]
/// struct Collect(Mutex<Vec<LogEvent>>);
///
/// impl EventTarget for Collect {
///     fn submit(&self, event: LogEvent) -> Result<(), LogError<LogEvent>> {
///         self.0.lock().unwrap().push(event);
///         Ok(())
///     }
/// }
///
/// let layer = SinkLayer::with_target(std::sync::Arc::new(Collect::default()));
/// let collected = layer.target().clone();
/// let subscriber = tracing_subscriber::Registry::default().with(layer);
/// tracing::subscriber::with_default(subscriber, || tracing::info!("hello"));
/// assert_eq!(collected.0.lock().unwrap()[0].message, "hello");
/// ```
pub trait EventTarget: Send + Sync + 'static {
    /// Takes `event`.
    ///
    /// # Errors
    ///
    /// The event back, with the reason, when the target refuses it; the layer counts it
    /// (see [`SinkLayer::refused`]).
    fn submit(&self, event: LogEvent) -> Result<(), crate::error::LogError<LogEvent>>;
}

impl EventTarget for AsyncSink<LogEvent> {
    /// [`AsyncSink::log`]: never blocks unless the sink's policy is `Block`.
    fn submit(&self, event: LogEvent) -> Result<(), crate::error::LogError<LogEvent>> {
        self.log(event).map(drop)
    }
}

impl<T: EventTarget> EventTarget for Arc<T> {
    fn submit(&self, event: LogEvent) -> Result<(), crate::error::LogError<LogEvent>> {
        (**self).submit(event)
    }
}

/// What a span keeps for the events in it: its path and its fields.
struct SpanContext {
    /// The names of the spans from the root to this one, joined by `:`.
    path: Arc<str>,
    fields: Vec<(&'static str, FieldValue)>,
}

impl SinkLayer {
    /// A layer feeding `sink`, recording the location of events.
    pub fn new(sink: AsyncSink<LogEvent>) -> Self {
        Self::with_target(sink)
    }

    /// A handle on the sink and the refusal counters, to keep once the layer is moved into
    /// a subscriber.
    pub fn handle(&self) -> FacadeHandle {
        FacadeHandle::new(self.target.clone(), self.refused.clone())
    }
}

impl<T: EventTarget> SinkLayer<T> {
    /// A layer handing its events to `target`, recording the location of events.
    pub fn with_target(target: T) -> Self {
        Self {
            target,
            location: true,
            refused: Arc::default(),
        }
    }

    /// Whether events carry the fields `module`, `file` and `line` (default `true`).
    pub fn location(mut self, location: bool) -> Self {
        self.location = location;
        self
    }

    /// The target the layer hands its events to.
    pub fn target(&self) -> &T {
        &self.target
    }

    /// The events the target refused, by reason (see [the facade docs](super)).
    pub fn refused(&self) -> super::Refused {
        self.refused.get()
    }
}

/// `tracing`'s level as an mvx [`Level`].
pub fn level(level: &tracing_core::Level) -> Level {
    match *level {
        tracing_core::Level::ERROR => Level::Error,
        tracing_core::Level::WARN => Level::Warn,
        tracing_core::Level::INFO => Level::Info,
        tracing_core::Level::DEBUG => Level::Debug,
        _ => Level::Trace,
    }
}

impl<S, T> tracing_subscriber::Layer<S> for SinkLayer<T>
where
    S: Subscriber + for<'lookup> LookupSpan<'lookup>,
    T: EventTarget,
{
    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, ctx: Context<'_, S>) {
        let Some(span) = ctx.span(id) else {
            return;
        };
        let name = span.name();
        let path: Arc<str> = match span.parent() {
            Some(parent) => match parent.extensions().get::<SpanContext>() {
                Some(context) => Arc::from(format!("{}:{name}", context.path)),
                None => Arc::from(name),
            },
            None => Arc::from(name),
        };
        let mut fields = Vec::with_capacity(attrs.fields().len());
        attrs.record(&mut SpanVisitor(&mut fields));
        span.extensions_mut().insert(SpanContext { path, fields });
    }

    fn on_record(&self, id: &Id, values: &Record<'_>, ctx: Context<'_, S>) {
        let Some(span) = ctx.span(id) else {
            return;
        };
        let mut extensions = span.extensions_mut();
        if let Some(context) = extensions.get_mut::<SpanContext>() {
            let mut recorded = Vec::new();
            values.record(&mut SpanVisitor(&mut recorded));
            for (name, value) in recorded {
                match context.fields.iter_mut().find(|(known, _)| *known == name) {
                    Some((_, old)) => *old = value,
                    None => context.fields.push((name, value)),
                }
            }
        }
    }

    /// Builds the event and hands it to the target; counts it if the target refuses it,
    /// or if the calling thread is in a suppression scope (the event is then not built).
    fn on_event(&self, event: &Event<'_>, ctx: Context<'_, S>) {
        if self.refused.suppressed() {
            return;
        }
        let metadata = event.metadata();
        let location = if self.location {
            usize::from(metadata.module_path().is_some())
                + usize::from(metadata.file().is_some())
                + usize::from(metadata.line().is_some())
        } else {
            0
        };
        // Room for every field, counted before anything is pushed: one allocation.
        let mut span_fields = 0;
        let mut innermost = None;
        if let Some(scope) = ctx.event_scope(event) {
            for span in scope {
                if let Some(context) = span.extensions().get::<SpanContext>() {
                    span_fields += context.fields.len();
                    innermost.get_or_insert_with(|| context.path.clone());
                }
            }
        }
        let capacity =
            location + span_fields + usize::from(innermost.is_some()) + metadata.fields().len();
        let mut fields = Vec::with_capacity(capacity);
        if let Some(scope) = ctx.event_scope(event) {
            // The scope runs from the innermost span out: push each span's fields backwards,
            // then reverse the whole run, which puts the root first and keeps every span's
            // order, without collecting the scope.
            for span in scope {
                if let Some(context) = span.extensions().get::<SpanContext>() {
                    fields.extend(
                        context
                            .fields
                            .iter()
                            .rev()
                            .map(|(name, value)| (Cow::Borrowed(*name), value.clone())),
                    );
                }
            }
            fields.reverse();
        }
        if let Some(path) = innermost {
            fields.push((Cow::Borrowed("span"), FieldValue::Shared(path)));
        }
        if self.location {
            if let Some(module) = metadata.module_path() {
                fields.push((Cow::Borrowed("module"), FieldValue::from(module)));
            }
            if let Some(file) = metadata.file() {
                fields.push((Cow::Borrowed("file"), FieldValue::from(file)));
            }
            if let Some(line) = metadata.line() {
                fields.push((Cow::Borrowed("line"), FieldValue::from(line)));
            }
        }
        let mut visitor = EventVisitor {
            message: None,
            fields,
        };
        event.record(&mut visitor);
        let mut log_event = LogEvent::new(
            level(metadata.level()),
            metadata.target(),
            visitor.message.unwrap_or(Cow::Borrowed("")),
        );
        log_event.fields = visitor.fields;
        self.refused.count(self.target.submit(log_event));
    }
}

/// Records the fields of a span, text behind an `Arc`.
struct SpanVisitor<'a>(&'a mut Vec<(&'static str, FieldValue)>);

impl Visit for SpanVisitor<'_> {
    fn record_i64(&mut self, field: &Field, value: i64) {
        self.0.push((field.name(), FieldValue::I64(value)));
    }

    fn record_u64(&mut self, field: &Field, value: u64) {
        self.0.push((field.name(), FieldValue::U64(value)));
    }

    fn record_i128(&mut self, field: &Field, value: i128) {
        self.0.push((field.name(), wide(value)));
    }

    fn record_u128(&mut self, field: &Field, value: u128) {
        self.0.push((field.name(), wide(value)));
    }

    fn record_f64(&mut self, field: &Field, value: f64) {
        self.0.push((field.name(), FieldValue::F64(value)));
    }

    fn record_bool(&mut self, field: &Field, value: bool) {
        self.0.push((field.name(), FieldValue::Bool(value)));
    }

    fn record_str(&mut self, field: &Field, value: &str) {
        self.0
            .push((field.name(), FieldValue::Shared(Arc::from(value))));
    }

    fn record_error(&mut self, field: &Field, value: &(dyn std::error::Error + 'static)) {
        self.0.push((
            field.name(),
            FieldValue::Shared(Arc::from(value.to_string())),
        ));
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.0.push((
            field.name(),
            FieldValue::Shared(Arc::from(format!("{value:?}"))),
        ));
    }
}

/// Records an event's message and fields.
struct EventVisitor {
    message: Option<Cow<'static, str>>,
    fields: Vec<(Cow<'static, str>, FieldValue)>,
}

impl EventVisitor {
    fn push(&mut self, field: &Field, value: FieldValue) {
        self.fields.push((Cow::Borrowed(field.name()), value));
    }
}

impl Visit for EventVisitor {
    fn record_i64(&mut self, field: &Field, value: i64) {
        self.push(field, FieldValue::I64(value));
    }

    fn record_u64(&mut self, field: &Field, value: u64) {
        self.push(field, FieldValue::U64(value));
    }

    fn record_i128(&mut self, field: &Field, value: i128) {
        self.push(field, wide(value));
    }

    fn record_u128(&mut self, field: &Field, value: u128) {
        self.push(field, wide(value));
    }

    fn record_f64(&mut self, field: &Field, value: f64) {
        self.push(field, FieldValue::F64(value));
    }

    fn record_bool(&mut self, field: &Field, value: bool) {
        self.push(field, FieldValue::Bool(value));
    }

    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "message" {
            self.message = Some(Cow::Owned(value.to_owned()));
        } else {
            self.push(field, FieldValue::from(value.to_owned()));
        }
    }

    fn record_error(&mut self, field: &Field, value: &(dyn std::error::Error + 'static)) {
        self.push(field, FieldValue::from(value.to_string()));
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        let mut text = String::new();
        let _ = write!(text, "{value:?}");
        if field.name() == "message" {
            self.message = Some(Cow::Owned(text));
        } else {
            self.push(field, FieldValue::from(text));
        }
    }
}

/// A 128-bit integer as a 64-bit one when it fits, else as its decimal text.
fn wide<T>(value: T) -> FieldValue
where
    T: TryInto<i64> + TryInto<u64> + fmt::Display + Copy,
{
    if let Ok(value) = TryInto::<u64>::try_into(value) {
        FieldValue::U64(value)
    } else if let Ok(value) = TryInto::<i64>::try_into(value) {
        FieldValue::I64(value)
    } else {
        FieldValue::from(value.to_string())
    }
}

impl<T> fmt::Debug for SinkLayer<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SinkLayer")
            .field("location", &self.location)
            .field("refused", &self.refused.get())
            .finish_non_exhaustive()
    }
}

/// Installs `Registry + SinkLayer` (events up to `max_level`) as the process's default
/// subscriber, for applications that have none; with other layers, build the subscriber
/// yourself, as in the [module docs](self).
///
/// # Examples
///
/// ```
/// use mvx::sink::{SinkConfig, sinks::MemorySink};
/// use tracing_subscriber::filter::LevelFilter;
///
/// let (memory, events) = MemorySink::new();
/// let (sink, terminator) = mvx::rt::thread::create(memory, SinkConfig::default())?;
/// let handle = mvx::facade::tracing::init(sink, LevelFilter::INFO)?;
/// tracing::info!(port = 8080, "ready");
/// tracing::debug!("filtered out");
/// handle.sink().flush_blocking()?;
/// assert_eq!(events.snapshot()[0].message, "ready");
/// assert_eq!(events.len(), 1);
/// terminator.terminate()?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
///
/// # Errors
///
/// `tracing`'s `SetGlobalDefaultError` when a global default subscriber is already set.
pub fn init(
    sink: AsyncSink<LogEvent>,
    max_level: tracing_subscriber::filter::LevelFilter,
) -> Result<FacadeHandle, tracing_core::dispatcher::SetGlobalDefaultError> {
    use tracing_subscriber::Layer as _;
    use tracing_subscriber::layer::SubscriberExt as _;

    let layer = SinkLayer::new(sink);
    let handle = layer.handle();
    let subscriber = tracing_subscriber::Registry::default().with(layer.with_filter(max_level));
    tracing_core::dispatcher::set_global_default(tracing_core::Dispatch::new(subscriber))?;
    Ok(handle)
}
