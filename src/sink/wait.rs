//! The waits of a sink: a producer waiting for room ([`Send`]) and a caller waiting for
//! its flush ([`Flush`]).
//!
//! Each is written once, as a condition over the sink's queue (see `crate::sync::Wait`),
//! and comes out as a named future: `.await` it in async code, or block on it with
//! `wait()`, `wait_timeout(Duration)` or `wait_deadline(Instant)`. The blocking forms wait
//! for the driver; one that could only wait for itself returns `WouldDeadlock` at once
//! ([which calls block](super#which-calls-block)).
//!
//! `AsyncSink::send` / `log_blocking` and `AsyncSink::flush` / `flush_blocking` return and
//! use them.

use std::fmt;
use std::future::Future;
use std::marker;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use super::{AsyncSink, driver};
use crate::error::{LogError, SendTimeoutError, SinkError};
use crate::queue::{LogOutcome, OverflowPolicy, Queue};
use crate::sync::{
    AtomicU64, Interrupted, Mutex, Ordering, Signal, Wait, Waiter, deadline_after, lock,
};

/// Flush requests: each `flush()` takes a ticket; the driver serves tickets in order.
///
/// The events a ticket waits for are in lanes that finish independently, so a ticket's
/// target is one count per lane: when the driver first sees tickets waiting, it takes, for
/// every lane, the events pushed to it so far (`Queue::set_flush_targets`) — every event
/// accepted before those tickets were requested is among them — and serves the tickets once
/// every lane has finished its target. Tickets requested meanwhile wait for the next
/// targets, taken once these are served.
#[derive(Default)]
pub(crate) struct FlushTickets {
    pub(crate) requested: AtomicU64,
    /// The tickets the current flush targets cover, up to this one (driver only).
    pub(crate) covered: AtomicU64,
    pub(crate) served: AtomicU64,
    /// The tickets `(after, up_to]` served by the latest failed dispatcher flush.
    pub(crate) failure: Mutex<Option<(u64, u64, SinkError)>>,
}

impl FlushTickets {
    /// The tickets waiting, as `(served, up_to)`, if they can be served now: every event
    /// accepted before the latest of them is finished (driver only: it takes the flush
    /// targets when tickets are waiting that no targets cover).
    pub(crate) fn servable<E>(&self, queue: &Queue<E>) -> Option<(u64, u64)> {
        let served = self.served.load(Ordering::Acquire);
        let mut covered = self.covered.load(Ordering::Relaxed);
        if covered <= served {
            let requested = self.requested.load(Ordering::Acquire);
            if requested <= served {
                return None;
            }
            // Taken after `requested` was read: covers every event accepted before it.
            queue.set_flush_targets();
            self.covered.store(requested, Ordering::Relaxed);
            covered = requested;
        }
        queue.flush_targets_met().then_some((served, covered))
    }
}

/// The wait of a producer for room in the queue.
struct SendWait<'a, E> {
    sink: &'a AsyncSink<E>,
    /// The event, while it is not accepted.
    event: Option<E>,
}

impl<E: marker::Send + 'static> Wait for SendWait<'_, E> {
    type Output = Result<LogOutcome, LogError<E>>;

    /// The driver frees a batch of slots at a time, usually within microseconds: a blocked
    /// producer retries with growing pauses before it parks, so that neither side pays a
    /// wake-up.
    const SPIN_ROUNDS: u32 = driver::SPIN_ROUNDS;

    fn parts(&mut self) -> (&Signal, impl FnMut() -> Poll<Self::Output> + '_) {
        let sink = self.sink;
        let event = &mut self.event;
        (&sink.shared.queue.progress, move || {
            let Some(next) = event.take() else {
                panic!("`Send` polled after it completed")
            };
            // `Block`: a full queue hands the event back uncounted, to wait and retry.
            match sink.try_accept(next, OverflowPolicy::Block) {
                Err(LogError::QueueOverflow(back)) => {
                    *event = Some(back);
                    Poll::Pending
                }
                other => Poll::Ready(other),
            }
        })
    }

    fn would_deadlock(&self) -> bool {
        self.sink.shared.seat.would_deadlock()
    }
}

/// Accepts an event, waiting while the sink's pending-event limit is reached; returned by
/// [`AsyncSink::send`].
///
/// `.await` it, or block on it with [`wait`](Self::wait) (what
/// [`AsyncSink::log_blocking`] does), [`wait_timeout`](Self::wait_timeout) or
/// [`wait_deadline`](Self::wait_deadline). Dropped before it completes, the event is
/// dropped with it and was never accepted.
#[must_use = "futures do nothing unless you .await or poll them"]
pub struct Send<'a, E: marker::Send + 'static> {
    waiter: Waiter<SendWait<'a, E>>,
}

impl<'a, E: marker::Send + 'static> Send<'a, E> {
    pub(super) fn new(sink: &'a AsyncSink<E>, event: E) -> Self {
        Self {
            waiter: Waiter::new(SendWait {
                sink,
                event: Some(event),
            }),
        }
    }

    /// Blocks the current thread until the event is accepted or refused.
    ///
    /// # Errors
    ///
    /// [`LogError::NotAccepting`] with the event when the sink is not accepting (also when
    /// it stops while this call waits); [`LogError::WouldDeadlock`] with the event, at once,
    /// when the limit is reached and only this thread could make room (it is inside the
    /// sink's own code, or on the single-threaded executor thread that runs its driver).
    pub fn wait(mut self) -> Result<LogOutcome, LogError<E>> {
        match self.waiter.block(None) {
            Ok(outcome) => outcome,
            Err(Interrupted::WouldDeadlock) => Err(LogError::WouldDeadlock(self.take_event())),
            Err(Interrupted::DeadlinePassed) => unreachable!("no deadline was set"),
        }
    }

    /// The event of a send that stopped waiting.
    /// The event, handed back for good (past the deadline, or because waiting would
    /// deadlock): counted as refused.
    fn take_event(&mut self) -> E {
        let wait = self.waiter.wait_mut();
        let event = wait.event.take();
        wait.sink.shared.queue.record_refused();
        event.expect("a send that is still waiting holds its event")
    }

    /// Blocks the current thread until the event is accepted or refused, or `timeout` has
    /// passed.
    ///
    /// # Errors
    ///
    /// [`SendTimeoutError::TimedOut`] with the event when the limit was still reached after
    /// `timeout`; [`SendTimeoutError::NotAccepting`] with the event when the sink is not
    /// accepting; [`SendTimeoutError::WouldDeadlock`] with the event, at once, when waiting
    /// would deadlock (as [`wait`](Self::wait) says).
    pub fn wait_timeout(self, timeout: Duration) -> Result<LogOutcome, SendTimeoutError<E>> {
        self.wait_until(deadline_after(timeout))
    }

    /// Blocks the current thread until the event is accepted or refused, or `deadline` has
    /// passed.
    ///
    /// # Errors
    ///
    /// As [`wait_timeout`](Self::wait_timeout).
    pub fn wait_deadline(self, deadline: Instant) -> Result<LogOutcome, SendTimeoutError<E>> {
        self.wait_until(Some(deadline))
    }

    fn wait_until(mut self, deadline: Option<Instant>) -> Result<LogOutcome, SendTimeoutError<E>> {
        match self.waiter.block(deadline) {
            Ok(Ok(outcome)) => Ok(outcome),
            Ok(Err(LogError::NotAccepting { event, state })) => {
                Err(SendTimeoutError::NotAccepting { event, state })
            }
            // Not returned by the wait, which retries an overflow; the limit was reached.
            Ok(Err(LogError::QueueOverflow(event))) => Err(SendTimeoutError::TimedOut(event)),
            // Not returned by the wait either: it is told so by `Interrupted`.
            Ok(Err(LogError::WouldDeadlock(event))) => Err(SendTimeoutError::WouldDeadlock(event)),
            Err(Interrupted::DeadlinePassed) => Err(SendTimeoutError::TimedOut(self.take_event())),
            Err(Interrupted::WouldDeadlock) => {
                Err(SendTimeoutError::WouldDeadlock(self.take_event()))
            }
        }
    }
}

impl<E: marker::Send + 'static> Future for Send<'_, E> {
    type Output = Result<LogOutcome, LogError<E>>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        self.get_mut().waiter.poll_async(cx)
    }
}

impl<E: marker::Send + 'static> fmt::Debug for Send<'_, E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Send").finish_non_exhaustive()
    }
}

/// The wait of a flush for its ticket to be served.
struct FlushWait<'a, E> {
    sink: &'a AsyncSink<E>,
    ticket: Option<u64>,
}

impl<E> Wait for FlushWait<'_, E> {
    type Output = Result<(), SinkError>;

    fn parts(&mut self) -> (&Signal, impl FnMut() -> Poll<Self::Output> + '_) {
        let sink = self.sink;
        let ticket = self.ticket;
        (&sink.shared.queue.progress, move || {
            flush_result(sink, ticket).map_or(Poll::Pending, Poll::Ready)
        })
    }

    fn would_deadlock(&self) -> bool {
        self.sink.shared.seat.would_deadlock()
    }
}

/// Waits until every event accepted before [`AsyncSink::flush`] was called has been
/// dispatched and the dispatcher flushed; returned by `flush()`.
///
/// The flush is requested when `flush()` is called, whether or not the future is polled.
/// `.await` it, or block on it with [`wait`](Self::wait) (what
/// [`AsyncSink::flush_blocking`] does), [`wait_timeout`](Self::wait_timeout) or
/// [`wait_deadline`](Self::wait_deadline).
#[must_use = "futures do nothing unless you .await or poll them"]
pub struct Flush<'a, E> {
    waiter: Waiter<FlushWait<'a, E>>,
}

impl<'a, E> Flush<'a, E> {
    pub(super) fn new(sink: &'a AsyncSink<E>) -> Self {
        Self {
            waiter: Waiter::new(FlushWait {
                sink,
                ticket: request_flush(sink),
            }),
        }
    }

    /// Blocks the current thread until the flush is done.
    ///
    /// # Errors
    ///
    /// As [`AsyncSink::flush`]; [`SinkError::WouldDeadlock`], at once, when only this
    /// thread could serve the flush (it is inside the sink's own code, or on the
    /// single-threaded executor thread that runs its driver): the flush is still served
    /// once the driver runs.
    pub fn wait(mut self) -> Result<(), SinkError> {
        match self.waiter.block(None) {
            Ok(result) => result,
            Err(Interrupted::WouldDeadlock) => Err(SinkError::WouldDeadlock),
            Err(Interrupted::DeadlinePassed) => unreachable!("no deadline was set"),
        }
    }

    /// Blocks the current thread until the flush is done or `timeout` has passed.
    ///
    /// # Errors
    ///
    /// [`SinkError::WaitTimedOut`] when the flush is not done after `timeout` (it is still
    /// served later); otherwise as [`wait`](Self::wait).
    pub fn wait_timeout(self, timeout: Duration) -> Result<(), SinkError> {
        self.wait_until(deadline_after(timeout))
    }

    /// Blocks the current thread until the flush is done or `deadline` has passed.
    ///
    /// # Errors
    ///
    /// As [`wait_timeout`](Self::wait_timeout).
    pub fn wait_deadline(self, deadline: Instant) -> Result<(), SinkError> {
        self.wait_until(Some(deadline))
    }

    fn wait_until(mut self, deadline: Option<Instant>) -> Result<(), SinkError> {
        match self.waiter.block(deadline) {
            Ok(result) => result,
            Err(Interrupted::DeadlinePassed) => Err(SinkError::WaitTimedOut),
            Err(Interrupted::WouldDeadlock) => Err(SinkError::WouldDeadlock),
        }
    }
}

impl<E> Future for Flush<'_, E> {
    type Output = Result<(), SinkError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        self.get_mut().waiter.poll_async(cx)
    }
}

impl<E> fmt::Debug for Flush<'_, E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Flush")
            .field("ticket", &self.waiter.wait_ref().ticket)
            .finish_non_exhaustive()
    }
}

/// Takes a flush ticket, or `None` when there is nothing the driver could flush: the sink
/// is `Virgin` or has ended.
fn request_flush<E>(sink: &AsyncSink<E>) -> Option<u64> {
    let shared = &sink.shared;
    let state = shared.state();
    if state.is_terminal() || state == crate::State::Virgin {
        return None;
    }
    let ticket = shared.flush.requested.fetch_add(1, Ordering::AcqRel) + 1;
    shared.wake_driver();
    Some(ticket)
}

/// The result of the flush with `ticket`, once known.
fn flush_result<E>(sink: &AsyncSink<E>, ticket: Option<u64>) -> Option<Result<(), SinkError>> {
    let shared = &sink.shared;
    let flush = &shared.flush;
    match ticket {
        Some(ticket) if flush.served.load(Ordering::Acquire) >= ticket => {
            return Some(match &*lock(&flush.failure) {
                Some((after, up_to, error)) if *after < ticket && ticket <= *up_to => {
                    Err(error.clone())
                }
                _ => Ok(()),
            });
        }
        // `Virgin` when asked: nothing was accepted before the call.
        None if !shared.state().is_terminal() => return Some(Ok(())),
        _ => {}
    }
    // The sink turns terminal before admission closes and before the driver has counted
    // the events it abandons (a failed start, a panic, a cancellation): answer once they
    // are counted, so that the counters read after the flush are final. Every reservation
    // ends finished or revoked, and both wake `progress`.
    if shared.state().is_terminal() && shared.queue.drained() {
        return Some(shared.terminal_result());
    }
    None
}
