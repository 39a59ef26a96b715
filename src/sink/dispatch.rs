//! The trait users implement: delivery of events to a backend.

use std::fmt;
use std::future::Future;

use super::LossReport;
use crate::error::BoxError;

/// Delivers accepted events to a backend. The only part of a sink users write.
///
/// mvx owns everything around it: the queue, the lifecycle, the counters, the executor.
/// The driver calls these methods one at a time, never concurrently, with `&mut self`, so
/// an implementation needs no locks of its own.
///
/// # One event or a batch: write either
///
/// The driver hands events over only through [`dispatch_batch`](Self::dispatch_batch),
/// up to [`SinkConfig::batch_size`](super::SinkConfig::batch_size) at a time. Write the
/// form that suits the backend:
///
/// - [`dispatch`](Self::dispatch) alone: the default `dispatch_batch` calls it for each
///   event, in order, and counts each failure;
/// - [`dispatch_batch`](Self::dispatch_batch) alone, for a backend that takes batches (a
///   pipelined write, a bulk insert): `dispatch` is then never called;
/// - both, when `dispatch` is useful on its own.
///
/// The two defaults do not call each other in a circle: the default `dispatch` delivers
/// nothing and fails with [`MissingDispatch`]. A dispatcher that writes neither compiles,
/// but every event it is handed is counted as failed, and
/// [`last_error`](super::AsyncSink::last_error) says why.
///
/// Errors are counted, not fatal: an event whose dispatch returns `Err` is counted as
/// `failed`, the error is kept in [`AsyncSink::last_error`](super::AsyncSink::last_error),
/// and delivery goes on. A *panic* in any of these methods is caught: the events of that
/// call are counted as failed and the sink moves to `Failure` (a dispatcher that panicked
/// may hold broken state, so it is not called again) — unless the sink's
/// [`RestartPolicy`](super::RestartPolicy) restarts it, through
/// [`on_restart`](Self::on_restart); a panic in a start or stop hook fails that lifecycle
/// operation with the panic message.
///
/// Besides events, the driver hands the dispatcher a [`LossReport`] when events were lost
/// ([`on_loss`](Self::on_loss)): write it where the events go, and the loss shows where
/// people look.
///
/// # Examples
///
/// One event at a time:
///
/// ```
/// use mvx::BoxError;
/// use mvx::sink::Dispatch;
///
/// struct Stdout;
///
/// impl Dispatch<String> for Stdout {
///     async fn dispatch(&mut self, line: String) -> Result<(), BoxError> {
///         println!("{line}");
///         Ok(())
///     }
/// }
/// ```
///
/// A batch at a time, and nothing else:
///
/// ```
/// use std::io::Write;
/// use mvx::sink::{BatchError, Dispatch};
///
/// struct Lines(Vec<u8>);
///
/// impl Dispatch<String> for Lines {
///     async fn dispatch_batch(&mut self, lines: &mut Vec<String>) -> Result<(), BatchError> {
///         for line in lines.drain(..) {
///             writeln!(self.0, "{line}").map_err(|error| BatchError::new(1, error))?;
///         }
///         Ok(())
///     }
/// }
/// ```
pub trait Dispatch<E: Send + 'static>: Send + 'static {
    /// Delivers one event.
    ///
    /// Called by the default [`dispatch_batch`](Self::dispatch_batch) only. The default
    /// delivers nothing: it drops the event and fails with [`MissingDispatch`] (see "One
    /// event or a batch" above).
    ///
    /// # Errors
    ///
    /// Any error: the event is counted as failed and delivery goes on.
    fn dispatch(&mut self, event: E) -> impl Future<Output = Result<(), BoxError>> + Send {
        drop(event);
        // A unit struct: boxing it does not allocate.
        std::future::ready(Err(Box::new(MissingDispatch) as BoxError))
    }

    /// Delivers a batch of up to `batch_size` events, in order; override it to pipeline.
    ///
    /// On `Ok(())` every event of the batch counts as delivered. On `Err(BatchError)`,
    /// `failed` of them count as failed and the rest as delivered. Events left in `events`
    /// when the call returns are dropped by the driver (they are counted by the result).
    /// The default calls [`dispatch`](Self::dispatch) for each event; override it and
    /// `dispatch` need not be written.
    ///
    /// # Errors
    ///
    /// A [`BatchError`] saying how many events failed.
    fn dispatch_batch(
        &mut self,
        events: &mut Vec<E>,
    ) -> impl Future<Output = Result<(), BatchError>> + Send {
        async move {
            let mut failed = 0;
            let mut last_error = None;
            for event in events.drain(..) {
                if let Err(error) = self.dispatch(event).await {
                    failed += 1;
                    last_error = Some(error);
                }
            }
            match last_error {
                None => Ok(()),
                Some(source) => Err(BatchError { failed, source }),
            }
        }
    }

    /// Prepares the backend (opens connections, files) before any dispatch.
    ///
    /// # Errors
    ///
    /// Any error fails the start: the sink moves to `Failure`, and the start result
    /// carries `OnStartingHookFailed`. Events accepted while starting are counted as failed.
    fn on_starting(&mut self) -> impl Future<Output = Result<(), BoxError>> + Send {
        async { Ok(()) }
    }

    /// Pushes buffered output to the backend.
    ///
    /// Called when the queue runs empty after some dispatches, before a
    /// [`flush()`](super::AsyncSink::flush) resolves, and once more during stop before
    /// [`on_stopped`](Self::on_stopped). The default does nothing.
    ///
    /// # Errors
    ///
    /// Any error is kept in `last_error()` and returned by the `flush()` it served.
    fn flush(&mut self) -> impl Future<Output = Result<(), BoxError>> + Send {
        async { Ok(()) }
    }

    /// Releases the backend after the last dispatch of a normal stop.
    ///
    /// Not called when the stop timed out or the dispatcher panicked: the dispatcher is then
    /// simply dropped.
    ///
    /// # Errors
    ///
    /// Any error is reported in the stop result as `OnStoppedHookFailed`; the sink is
    /// `Stopped` all the same.
    fn on_stopped(&mut self) -> impl Future<Output = Result<(), BoxError>> + Send {
        async { Ok(()) }
    }

    /// Takes a summary of what the sink dropped, refused and failed since the previous
    /// report: write it where the events go (the writer sink writes it as one line).
    ///
    /// Called between batches, at most once per
    /// [`loss_report_interval`](super::SinkConfig::loss_report_interval) and only after a
    /// loss, and once more at stop, after the last dispatch and before the last flush (see
    /// [`LossReport`] for when exactly). The default does nothing.
    ///
    /// # Errors
    ///
    /// Any error is kept in `last_error()` as `LossReportFailed`; delivery goes on, and the
    /// next report counts from this one. A panic is a dispatcher panic.
    fn on_loss(
        &mut self,
        report: &LossReport,
    ) -> impl Future<Output = Result<(), BoxError>> + Send {
        let _ = report;
        async { Ok(()) }
    }

    /// Puts the dispatcher right after a panic, before it dispatches again; called only
    /// under a [`RestartPolicy`](super::RestartPolicy) that restarts it, after the backoff.
    ///
    /// The dispatcher is the same value that panicked, which the panic may have left
    /// inconsistent: reconnect, clear half-written buffers, reset what the interrupted call
    /// was changing. The default does nothing, for a dispatcher whose state a panic cannot
    /// break.
    ///
    /// # Errors
    ///
    /// An error refuses the restart: the sink ends in `Failure` with the panic, as if the
    /// policy were `Never` (the error itself is dropped). So does a panic here.
    fn on_restart(&mut self) -> impl Future<Output = Result<(), BoxError>> + Send {
        async { Ok(()) }
    }
}

/// The error of the default [`Dispatch::dispatch`]: the dispatcher writes neither
/// `dispatch` nor `dispatch_batch`, so its events are not delivered (each is counted as
/// failed).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, thiserror::Error)]
#[error("the dispatcher implements neither Dispatch::dispatch nor Dispatch::dispatch_batch")]
pub struct MissingDispatch;

/// How a batch dispatch failed: how many of its events failed, and the last error.
#[derive(Debug, thiserror::Error)]
#[error("{failed} events of the batch failed")]
pub struct BatchError {
    /// How many events of the batch failed (at most the batch size).
    pub failed: usize,
    /// The last error seen.
    #[source]
    pub source: BoxError,
}

impl BatchError {
    /// A batch of which `failed` events failed with `source`.
    pub fn new(failed: usize, source: impl Into<BoxError>) -> Self {
        Self {
            failed,
            source: source.into(),
        }
    }
}

/// A dispatcher that accepts every event and does nothing with it.
///
/// Useful for benchmarks and as a placeholder.
#[derive(Clone, Copy, Debug, Default)]
pub struct Discard;

impl<E: Send + 'static> Dispatch<E> for Discard {
    async fn dispatch(&mut self, _event: E) -> Result<(), BoxError> {
        Ok(())
    }

    async fn dispatch_batch(&mut self, events: &mut Vec<E>) -> Result<(), BatchError> {
        events.clear();
        Ok(())
    }
}

impl fmt::Display for Discard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("discard")
    }
}
