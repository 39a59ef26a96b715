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
//! - `OverflowPolicy::Block` and a full queue: the caller **waits** for room, as it asked —
//!   unless only the calling thread could make room (it runs the sink's driver on a
//!   single-threaded executor): then the event is refused at once and counted in
//!   [`Refused::would_deadlock`] ([which calls block](crate::sink#which-calls-block)).
//! - Emitted inside a suppression scope: counted by the facade, in [`Refused::suppressed`],
//!   and never built (see below).
//!
//! # Telemetry does not feed on itself: suppression
//!
//! A dispatcher that logs, traces or counts through the installed facades while it
//! exports would feed its own sink — one application event turning into an endless stream.
//! So while a thread runs a sink's dispatcher code (a dispatch, a flush, a hook, of any mvx
//! sink), it is inside a **suppression scope**: the facades leave out what is emitted there
//! — `facade::log` records, `facade::tracing` events, `facade::metrics` updates — and count
//! it as `suppressed` ([`Refused::suppressed`], and
//! `facade::metrics::RegistryRecorder::suppressed`). The same goes for code of your own that
//! exports telemetry outside a sink: open a scope with [`suppress`]. What is left out is
//! lost: route an exporter's own diagnostics somewhere that is not an mvx facade (stderr,
//! a sink's `last_error`) if they matter.
//!
//! The check costs each event one thread-local read, and nothing is allocated for an event
//! left out: it is dropped before the facade builds anything.

pub use crate::sync::suppression::{SuppressGuard, is_suppressed, suppress};

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

/// The events a log facade did not get into its sink, by reason: those the sink handed
/// back, and those the facade left out in a suppression scope.
///
/// Events the sink dropped under `OverflowPolicy::Drop` are not here: the sink counts them
/// itself, in [`QueueStats::dropped`](crate::queue::QueueStats::dropped).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct Refused {
    /// Refused because the queue was full under `OverflowPolicy::RaiseError`.
    pub overflow: u64,
    /// Refused because the sink was not accepting events (not started, stopping, ended).
    pub not_accepting: u64,
    /// Refused because the queue was full under `OverflowPolicy::Block` and waiting for
    /// room would have deadlocked (`LogError::WouldDeadlock`).
    pub would_deadlock: u64,
    /// Left out, never handed to the sink: emitted inside a suppression scope — by a
    /// sink's dispatcher, or under a [`suppress`] guard (see [the module docs](self)).
    pub suppressed: u64,
}

impl Refused {
    /// Every event the facade did not get into its sink.
    pub fn total(&self) -> u64 {
        self.overflow + self.not_accepting + self.would_deadlock + self.suppressed
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
    would_deadlock: AtomicU64,
    suppressed: AtomicU64,
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
        let counter = match result {
            Ok(()) => return,
            Err(crate::error::LogError::QueueOverflow(_)) => &self.overflow,
            Err(crate::error::LogError::NotAccepting { .. }) => &self.not_accepting,
            Err(crate::error::LogError::WouldDeadlock(_)) => &self.would_deadlock,
        };
        counter.fetch_add(1, Ordering::Relaxed);
    }

    /// Whether the calling thread is in a suppression scope; if it is, counts one event
    /// left out. One thread-local read when it is not.
    #[inline]
    pub(crate) fn suppressed(&self) -> bool {
        let suppressed = is_suppressed();
        if suppressed {
            self.suppressed.fetch_add(1, Ordering::Relaxed);
        }
        suppressed
    }

    pub(crate) fn get(&self) -> Refused {
        Refused {
            overflow: self.overflow.load(Ordering::Relaxed),
            not_accepting: self.not_accepting.load(Ordering::Relaxed),
            would_deadlock: self.would_deadlock.load(Ordering::Relaxed),
            suppressed: self.suppressed.load(Ordering::Relaxed),
        }
    }
}
