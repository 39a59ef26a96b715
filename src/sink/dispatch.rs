//! The trait users implement: delivery of events to a backend.

use std::fmt;
use std::future::Future;

use crate::error::BoxError;

/// Delivers accepted events to a backend. The only part of a sink users write.
///
/// mvx owns everything around it: the queue, the lifecycle, the counters, the executor.
/// The driver calls these methods one at a time, never concurrently, with `&mut self`, so
/// an implementation needs no locks of its own. Only [`dispatch`](Self::dispatch) is
/// required.
///
/// Errors are counted, not fatal: an event whose dispatch returns `Err` is counted as
/// `failed`, the error is kept in [`AsyncSink::last_error`](super::AsyncSink::last_error),
/// and delivery goes on. A *panic* in any of these methods is caught: the events of that
/// call are counted as failed and the sink moves to `Failure` (a dispatcher that panicked
/// may hold broken state, so it is not called again); a panic in a hook fails that
/// lifecycle operation with the panic message.
///
/// # Examples
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
pub trait Dispatch<E: Send + 'static>: Send + 'static {
    /// Delivers one event.
    ///
    /// # Errors
    ///
    /// Any error: the event is counted as failed and delivery goes on.
    fn dispatch(&mut self, event: E) -> impl Future<Output = Result<(), BoxError>> + Send;

    /// Delivers a batch of up to `batch_size` events, in order; override it to pipeline.
    ///
    /// On `Ok(())` every event of the batch counts as delivered. On `Err(BatchError)`,
    /// `failed` of them count as failed and the rest as delivered. Events left in `events`
    /// when the call returns are dropped by the driver (they are counted by the result).
    /// The default calls [`dispatch`](Self::dispatch) for each event.
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
}

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
