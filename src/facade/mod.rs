//! Facades: mvx behind the crates applications already log and count through.
//!
//! | feature | module | what it does |
//! |---|---|---|
//! | `log` | `facade::log` | an [`AsyncSink<LogEvent>`](crate::sink::AsyncSink) as the `log` crate's logger, set up with one call |
//! | `tracing` | `facade::tracing` | a `tracing_subscriber::Layer` turning events, with their span context, into `LogEvent`s on a sink |
//! | `metrics` | `facade::metrics` | a `metrics::Recorder` whose `counter!`, `gauge!` and `histogram!` land in an mvx [`Registry`](crate::metrics::Registry) |
//!
//! # What the log facades cost, and what they lose
//!
//! Both log facades build one [`sink::LogEvent`](crate::sink::LogEvent) per event that passes
//! their level filter and hand it to [`AsyncSink::log`](crate::sink::AsyncSink::log): the
//! caller never waits for delivery. They allocate only what their facade forces on them —
//! the facade lends every string for the duration of the call, and the event outlives the
//! call on another thread: the message, unless it is a literal without arguments; the
//! vector of fields, when there are fields; and a copy of each borrowed name and text value.
//! Names, targets and paths that the facade offers as `'static` are borrowed, not copied.
//!
//! When the sink refuses an event the caller does not wait and does not see an error (the
//! facades have no way to report one): the event is counted, and nothing else happens.
//!
//! - `OverflowPolicy::Drop` and a full queue: counted by the sink, in
//!   [`QueueStats::dropped`](crate::queue::QueueStats::dropped).
//! - `OverflowPolicy::RaiseError` and a full queue: counted by the facade, in
//!   [`Refused::overflow`].
//! - A sink that is not accepting (not started, stopping, stopped, failed): counted by the
//!   facade, in [`Refused::not_accepting`].
//! - `OverflowPolicy::Block` and a full queue: the caller **waits** for room, as it asked.
//!   Never log under `Block` from the thread that polls the sink's driver.

#[cfg(feature = "log")]
pub mod log;
#[cfg(feature = "metrics")]
pub mod metrics;
#[cfg(feature = "tracing")]
pub mod tracing;

#[cfg(any(feature = "log", feature = "tracing"))]
use crate::sink::{AsyncSink, LogEvent};
#[cfg(any(feature = "log", feature = "tracing"))]
use std::sync::atomic::{AtomicU64, Ordering};

/// The events a log facade gave its sink and the sink handed back, by reason.
///
/// Events the sink dropped under `OverflowPolicy::Drop` are not here: the sink counts them
/// itself, in [`QueueStats::dropped`](crate::queue::QueueStats::dropped).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct Refused {
    /// Refused because the queue was full under `OverflowPolicy::RaiseError`.
    pub overflow: u64,
    /// Refused because the sink was not accepting events (not started, stopping, ended).
    pub not_accepting: u64,
}

impl Refused {
    /// Every refused event.
    pub fn total(&self) -> u64 {
        self.overflow + self.not_accepting
    }
}

/// A handle on a log facade once it is installed: its sink, and the events the sink
/// refused.
#[cfg(any(feature = "log", feature = "tracing"))]
#[derive(Clone)]
pub struct FacadeHandle {
    sink: AsyncSink<LogEvent>,
    refused: std::sync::Arc<RefusalCounters>,
}

#[cfg(any(feature = "log", feature = "tracing"))]
impl FacadeHandle {
    pub(crate) fn new(sink: AsyncSink<LogEvent>, refused: std::sync::Arc<RefusalCounters>) -> Self {
        Self { sink, refused }
    }

    /// The events the sink refused, by reason (see [the module docs](self)).
    pub fn refused(&self) -> Refused {
        self.refused.get()
    }

    /// The sink behind the facade.
    pub fn sink(&self) -> &AsyncSink<LogEvent> {
        &self.sink
    }
}

#[cfg(any(feature = "log", feature = "tracing"))]
impl std::fmt::Debug for FacadeHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FacadeHandle")
            .field("sink", &self.sink)
            .field("refused", &self.refused.get())
            .finish()
    }
}

/// The refusal counters a facade shares with its handles.
#[cfg(any(feature = "log", feature = "tracing"))]
#[derive(Debug, Default)]
pub(crate) struct RefusalCounters {
    overflow: AtomicU64,
    not_accepting: AtomicU64,
}

#[cfg(any(feature = "log", feature = "tracing"))]
impl RefusalCounters {
    /// Hands `event` to `sink`, counting a refusal; never blocks unless the sink's policy
    /// is `Block`.
    #[cfg(feature = "log")]
    pub(crate) fn submit(&self, sink: &AsyncSink<LogEvent>, event: LogEvent) {
        self.count(sink.log(event).map(drop));
    }

    /// Counts the refusal `result` reports, if any.
    pub(crate) fn count(&self, result: Result<(), crate::error::LogError<LogEvent>>) {
        match result {
            Ok(()) => {}
            Err(crate::error::LogError::QueueOverflow(_)) => {
                self.overflow.fetch_add(1, Ordering::Relaxed);
            }
            Err(_) => {
                self.not_accepting.fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    pub(crate) fn get(&self) -> Refused {
        Refused {
            overflow: self.overflow.load(Ordering::Relaxed),
            not_accepting: self.not_accepting.load(Ordering::Relaxed),
        }
    }
}
