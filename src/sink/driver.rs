//! The driver: the future that runs a sink's dispatcher wherever it is polled.
//!
//! (For maintainers: one concept, the driver's loop and every way it ends, restarts, serves
//! flushes and waits for work, which share its state and invariants; some 760 lines.)

use std::future::{Future, poll_fn};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::pin::{Pin, pin};
use std::task::Poll;
use std::time::{Duration, Instant};

use event_listener::listener;

use super::budget::Meter;
use super::loss::Ledger;
use super::{Dispatch, Shared};
use crate::error::{Cause, SinkError};
use crate::lifecycle::{Operation, State};
use crate::queue::Ended;
use crate::sync::suppression::suppress;
use crate::sync::{Arc, Ordering, Timer, lock};

/// How long a producer blocked for room keeps looking before it parks: `SPIN_ROUNDS` checks,
/// separated by 1, 2, 4, … CPU pause instructions (255 in all, a microsecond or a few:
/// a pause instruction takes from about 10 to about 140 cycles, depending on the CPU).
///
/// Under loom, one round: the models cover both a check that finds work and a park, and
/// each further round only multiplies the interleavings to explore.
pub(crate) const SPIN_ROUNDS: u32 = if cfg!(loom) { 1 } else { 8 };

/// How long the driver keeps looking for work before it parks: `IDLE_CHECKS` checks, the
/// first few separated by 1, 2, 4, 8 CPU pause instructions, the others by
/// [`IDLE_CHECK_GAP`] (about 255 pauses in all, as a blocked producer's spin). Work that
/// arrives meanwhile costs no wake-up, and waits at most one gap to be seen: the gaps stay
/// short so that spinning adds little to an event's delivery latency (issue 17).
const IDLE_CHECKS: u32 = if cfg!(loom) { 1 } else { 19 };

/// The largest number of pause instructions between two of the driver's idle checks.
const IDLE_CHECK_GAP: u32 = 16;

/// How long a nap lasts at most, and how long after a park made exact by the heavy barrier
/// (`sync::barrier`) the dispatch loop may nap instead. A nap is a park after a `SeqCst`
/// fence: a producer's count may miss its mark in a race of a few nanoseconds (see
/// `queue/lanes.rs`), and its event then waits for the nap's end, at most this long. So a
/// driver that parks often passes the heavy barrier — which interrupts every CPU running a
/// thread of the process — at most once this long, and registers a nap's timer at most
/// once too; an idle driver passes it once and then parks until it is woken.
const SHORT_PARK: Duration = Duration::from_millis(1);

/// A batch smaller than this was taken from a nearly empty lane…
const SMALL_BATCH: u64 = 64;

/// …and the driver then pauses, without touching the lanes, so that the producers' next
/// events accumulate and are taken as one batch rather than fought over slot by slot: for
/// `BATCH_PAUSE_PER_EVENT` CPU pause instructions per event of the batch, at most
/// [`BATCH_PAUSE`]. A batch of a few events says they arrive slowly, and the next one is
/// taken after a few dozen pauses (every event taken then waits that long: its delivery
/// latency); a batch of dozens says a flood, and the pause lets the next batch grow. (A
/// flat 256 pauses, the rule before, were 2.8 µs on an Intel Xeon whose pause takes about
/// 11 ns, added to the latency of every event of a paced stream.)
const BATCH_PAUSE_PER_EVENT: u32 = 8;

/// The longest pause after a small batch, in CPU pause instructions.
const BATCH_PAUSE: u32 = 256;

/// The shortest pause after a batch smaller than [`SMALL_BATCH`], in CPU pause
/// instructions (about 0.2 µs on the AMD EPYC of BENCHMARKS.md). Without a floor, a stream
/// whose events come further apart than `BATCH_PAUSE_PER_EVENT` pauses settles on batches
/// of one or two, the driver reading the producer's lane after nearly every event. While a
/// producer's count was a locked instruction (the first lanes of issue 17), that cost it two
/// to three times as much, and the floor was 64; with a plain store it costs little (issue
/// 17's paced runs, 1 producer: a floor of 16 gives 11.6–11.7 ns an event and a delivery
/// latency p50 of 0.50–0.53 µs, 64 gives 9.9–10.1 ns and 0.66 µs).
const BATCH_PAUSE_MIN: u32 = 16;

/// How a user future ended other than by returning.
pub(crate) enum Interrupt {
    /// It panicked.
    Panicked(Cause),
    /// A stop was requested and its timeout passed.
    TimedOut,
    /// The sink was ended from outside the driver (`Shared::end_from_outside`): it is
    /// terminal and its events are counted. The driver returns, calling no user code again.
    Ended,
}

/// Why the dispatch loop ended.
enum Exit {
    /// A stop was requested and every accepted event is finished.
    Stop { output: Output },
    /// The stop timeout passed during a dispatch; `abandoned` events of it are counted.
    TimedOut { abandoned: u64 },
    /// Dispatcher code panicked.
    Panicked(Cause),
    /// The sink was ended from outside the driver: nothing is left to do or to count.
    Ended,
}

/// Whether the dispatcher may hold output that it has not flushed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Output {
    /// Flushed since the last dispatch.
    Clean,
    /// Dispatched since the last flush.
    Dirty,
    /// The last flush failed.
    FlushFailed,
}

/// When the driver considers flushing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum When {
    /// After a batch, with more events queued: only to serve a ticket.
    AfterBatch,
    /// The queue ran empty.
    Idle,
    /// The last flush of a stop.
    Stop,
}

/// Cancels the sink if the driver is dropped before it finished.
pub(crate) struct CancelGuard<E> {
    shared: Arc<Shared<E>>,
    armed: bool,
}

impl<E> CancelGuard<E> {
    pub(crate) fn new(shared: Arc<Shared<E>>) -> Self {
        Self {
            shared,
            armed: true,
        }
    }
}

impl<E> Drop for CancelGuard<E> {
    fn drop(&mut self) {
        if self.armed {
            cancel(&self.shared);
        }
    }
}

/// Any live state → Cancelled: queued and in-dispatch events are counted as failed, later
/// pushes are revoked, every waiter gets `DispatcherCancelled`.
fn cancel<E>(shared: &Shared<E>) {
    let Some(operations) = end_live(shared, State::Cancelled, SinkError::DispatcherCancelled)
    else {
        // Already in `Failure`: the driver was dropped while it abandoned the rest, which may
        // wait for a producer to push a reserved event. Count what is left, and revoke later
        // pushes, so that the counters end final (flushes wait for that). Ended from
        // outside, counting has ended already: nothing is counted again.
        let _ = shared.queue.abandon_all();
        shared.queue.progress.notify_all();
        return;
    };
    // Dropping the abandoned events runs user code: not under the lifecycle lock.
    let _ = shared.queue.abandon_all();
    for operation in operations.into_iter().flatten() {
        operation.complete(Some(SinkError::DispatcherCancelled));
    }
    shared.queue.progress.notify_all();
}

/// Moves a live sink to the terminal state `to`, recording `error` first so that whoever
/// sees the terminal state also sees why, and closes admission. Returns the operations
/// left to complete, or `None` if the sink had already ended.
fn end_live<E>(
    shared: &Shared<E>,
    to: State,
    error: SinkError,
) -> Option<[Option<Arc<Operation<SinkError>>>; 2]> {
    let mut control = shared.lifecycle.lock();
    let state = shared.state();
    if state.is_terminal() {
        return None;
    }
    shared.set_terminal_error(error);
    shared
        .lifecycle
        .transition(&mut control, state, to)
        .expect("state changed under the lifecycle lock");
    shared.queue.close();
    Some([control.start.clone(), control.stop.clone()])
}

/// Runs the sink: waits for a start, runs the hooks, dispatches until a stop.
pub(crate) async fn drive<E, D>(guard: CancelGuard<E>, mut dispatch: D)
where
    E: Send + 'static,
    D: Dispatch<E>,
{
    let shared = guard.shared.clone();
    loop {
        match shared.state() {
            State::Virgin if shared.has_handles() => wait_for_work(&shared, State::Virgin).await,
            State::Starting => break,
            // No handle left to start it, or already cancelled: the guard does the rest.
            _ => return,
        }
    }

    match guarded(&shared, dispatch.on_starting()).await {
        Ok(Ok(())) => {
            let mut control = shared.lifecycle.lock();
            if shared
                .lifecycle
                .transition(&mut control, State::Starting, State::Running)
                .is_err()
            {
                // Ended from outside while the hook ran: that end completed the start.
                return;
            }
            let start = control.start.clone();
            drop(control);
            if let Some(start) = start {
                start.complete(None);
            }
        }
        Ok(Err(error)) => {
            return end_in_failure(
                guard,
                SinkError::OnStartingHookFailed(Cause::from_error(error)),
            )
            .await;
        }
        Err(Interrupt::Panicked(cause)) => {
            return end_in_failure(guard, SinkError::OnStartingHookFailed(cause)).await;
        }
        Err(Interrupt::TimedOut) => {
            let timeout = shared.config.start_timeout.unwrap_or_default();
            return end_in_failure(guard, SinkError::StartTimedOut { timeout }).await;
        }
        Err(Interrupt::Ended) => return,
    }

    let mut batch = Vec::with_capacity(shared.config.batch_size);
    match dispatch_loop(&shared, &mut dispatch, &mut batch).await {
        Exit::Stop { mut output } => {
            let flush_error =
                match serve_flushes(&shared, &mut dispatch, &mut output, When::Stop).await {
                    Ok(error) => error,
                    Err(Exit::Panicked(cause)) => {
                        return end_in_failure(guard, SinkError::DispatcherPanicked(cause)).await;
                    }
                    Err(Exit::Ended) => return,
                    Err(_) => Some(stop_timed_out(&shared, 0)),
                };
            let stop_error = match flush_error {
                Some(error @ SinkError::StopTimedOut { .. }) => Some(error),
                flush_error => match guarded(&shared, dispatch.on_stopped()).await {
                    Ok(Ok(())) => flush_error,
                    Ok(Err(error)) => {
                        Some(SinkError::OnStoppedHookFailed(Cause::from_error(error)))
                    }
                    Err(Interrupt::Panicked(cause)) => Some(SinkError::OnStoppedHookFailed(cause)),
                    Err(Interrupt::TimedOut) => Some(stop_timed_out(&shared, 0)),
                    Err(Interrupt::Ended) => return,
                },
            };
            end_stopped(guard, stop_error);
        }
        Exit::TimedOut { abandoned } => {
            let abandoned = abandoned + abandon_rest(&shared).await;
            let error = stop_timed_out(&shared, abandoned);
            end_stopped(guard, Some(error));
        }
        Exit::Panicked(cause) => {
            end_in_failure(guard, SinkError::DispatcherPanicked(cause)).await;
        }
        // Ended from outside: the guard, dropped, finds nothing left to do.
        Exit::Ended => {}
    }
}

fn stop_timed_out<E>(shared: &Shared<E>, abandoned: u64) -> SinkError {
    SinkError::StopTimedOut {
        timeout: shared.config.stop_timeout.unwrap_or_default(),
        abandoned,
    }
}

/// Stopping → Stopped, completing the stop with `error`.
fn end_stopped<E>(mut guard: CancelGuard<E>, error: Option<SinkError>) {
    let shared = &guard.shared;
    let mut control = shared.lifecycle.lock();
    if shared.state() != State::Stopping {
        // Ended from outside meanwhile: that end completed the stop, and its error stands.
        return;
    }
    if let Some(error) = &error {
        match error {
            // Events were abandoned: flushes still waiting must not report success.
            SinkError::StopTimedOut { .. } => shared.set_terminal_error(error.clone()),
            _ => shared.record_error(error.clone()),
        }
    }
    shared
        .lifecycle
        .transition(&mut control, State::Stopping, State::Stopped)
        .expect("state changed under the lifecycle lock");
    let stop = control.stop.clone();
    drop(control);
    if let Some(stop) = stop {
        stop.complete(error);
    }
    shared.queue.progress.notify_all();
    guard.armed = false;
}

/// Live → Failure with `error`; counts every event still pending as failed, then completes
/// the operations in flight, so that their results come with final counters.
async fn end_in_failure<E>(mut guard: CancelGuard<E>, error: SinkError) {
    let shared = guard.shared.clone();
    if let Some(operations) = end_live(&shared, State::Failure, error.clone()) {
        abandon_rest(&shared).await;
        for operation in operations.into_iter().flatten() {
            operation.complete(Some(error.clone()));
        }
    }
    shared.queue.progress.notify_all();
    guard.armed = false;
}

/// Dispatches batches until a stop has drained every accepted event.
///
/// Between batches it keeps to the poll budget (yielding to its executor once the budget is
/// spent), hands the dispatcher the loss reports that are due, and restarts a dispatcher
/// that panicked when the restart policy allows it.
async fn dispatch_loop<E, D>(shared: &Shared<E>, dispatch: &mut D, batch: &mut Vec<E>) -> Exit
where
    E: Send + 'static,
    D: Dispatch<E>,
{
    let batch_size = shared.config.batch_size;
    let mut output = Output::Clean;
    let mut meter = Meter::new(shared.config.poll_budget);
    let mut ledger = Ledger::new(shared.config.loss_report_interval);
    let mut naps = Naps::default();
    loop {
        if shared.queue.take(batch, batch_size).is_err() {
            return Exit::Ended;
        }
        if batch.is_empty() {
            let state = shared.state();
            if state.is_terminal() {
                // Ended from outside since the batch was taken: do not wait for work.
                return Exit::Ended;
            }
            // Drained, not merely all finished: `stop()` turns the state before it closes
            // admission, and an event reserved in between must be dispatched too.
            if state == State::Stopping && shared.queue.drained() {
                // The last report: what was lost up to the stop.
                let Err(exit) = report_loss(shared, dispatch, &mut ledger, &mut output).await
                else {
                    return Exit::Stop { output };
                };
                match recover(shared, dispatch, exit).await {
                    Ok(()) => continue,
                    Err(exit) => return exit,
                }
            }
            if let Err(exit) = serve_flushes(shared, dispatch, &mut output, When::Idle).await {
                match recover(shared, dispatch, exit).await {
                    Ok(()) => continue,
                    Err(exit) => return exit,
                }
            }
            if state == State::Running && !shared.has_handles() {
                drop(shared.stop());
                continue;
            }
            // Loss not reported yet: report it now if it is due, else wake up when it is.
            let report_at = if ledger.enabled() {
                ledger.unreported(shared.queue.losses())
            } else {
                None
            };
            if report_at.is_some_and(|at| at <= Instant::now()) {
                if let Err(exit) = report_loss(shared, dispatch, &mut ledger, &mut output).await {
                    match recover(shared, dispatch, exit).await {
                        Ok(()) => continue,
                        Err(exit) => return exit,
                    }
                }
                continue;
            }
            if wait_for_work_until(shared, state, report_at, Some(&mut naps)).await {
                // The executor had the thread back. (So it has whenever user code returns
                // `Pending`, which the meter does not see: the budget then runs out early,
                // which costs one yield more, never one less.)
                meter.refill();
            }
            continue;
        }

        let count = batch.len() as u64;
        let outcome = guarded(shared, dispatch.dispatch_batch(batch)).await;
        batch.clear();
        // Each outcome is counted unless the sink was ended from outside meanwhile: that
        // end counted these events (as failed), and the driver stops.
        let counted = match outcome {
            Ok(Ok(())) => shared.queue.finish(count, 0),
            Ok(Err(error)) => {
                let failed = (error.failed as u64).min(count);
                let counted = shared.queue.finish(count - failed, failed);
                if counted.is_ok() {
                    shared.record_error(SinkError::DispatchFailed(Cause::from_error(error.source)));
                }
                counted
            }
            Err(Interrupt::Panicked(cause)) => {
                if shared.queue.finish(0, count).is_err() {
                    return Exit::Ended;
                }
                match restart(shared, dispatch, cause).await {
                    Ok(()) => continue,
                    Err(exit) => return exit,
                }
            }
            Err(Interrupt::TimedOut) => {
                if shared.queue.finish(0, count).is_ok() {
                    return Exit::TimedOut { abandoned: count };
                }
                Err(Ended)
            }
            Err(Interrupt::Ended) => Err(Ended),
        };
        if counted.is_err() {
            return Exit::Ended;
        }
        output = Output::Dirty;
        if let Err(exit) = serve_flushes(shared, dispatch, &mut output, When::AfterBatch).await {
            match recover(shared, dispatch, exit).await {
                Ok(()) => continue,
                Err(exit) => return exit,
            }
        }
        // One clock read per batch serves the budget and the loss reports.
        let now = (meter.needs_clock() || ledger.enabled()).then(Instant::now);
        if now.is_some_and(|now| ledger.is_due(now)) {
            if let Err(exit) = report_loss(shared, dispatch, &mut ledger, &mut output).await {
                match recover(shared, dispatch, exit).await {
                    Ok(()) => continue,
                    Err(exit) => return exit,
                }
            }
        }
        if meter.spend(count, now) {
            // Others on this executor get their turn; producers meanwhile fill the ring.
            yield_now().await;
            meter.refill();
        } else if count < SMALL_BATCH {
            // The ring was nearly empty: producers and driver are working on the same few
            // slots. Give the producers the ring for a moment, without touching it, so the
            // next batch is larger and the slots are not fought over event by event.
            let pauses = (count as u32)
                .saturating_mul(BATCH_PAUSE_PER_EVENT)
                .clamp(BATCH_PAUSE_MIN, BATCH_PAUSE);
            for _ in 0..pauses {
                std::hint::spin_loop();
            }
        }
    }
}

/// Wakes the task and returns `Pending`, once: lets the executor run its other tasks
/// before it polls this one again.
async fn yield_now() {
    let mut yielded = false;
    poll_fn(|cx| {
        if std::mem::replace(&mut yielded, true) {
            Poll::Ready(())
        } else {
            cx.waker().wake_by_ref();
            Poll::Pending
        }
    })
    .await;
}

/// Hands the dispatcher the report of what was lost since the previous one, if anything
/// was. A failed report is kept in `last_error()`; a panic or the stop deadline ends the
/// call with the loop's exit.
async fn report_loss<E, D>(
    shared: &Shared<E>,
    dispatch: &mut D,
    ledger: &mut Ledger,
    output: &mut Output,
) -> Result<(), Exit>
where
    E: Send + 'static,
    D: Dispatch<E>,
{
    let Some(report) = ledger.take(shared.queue.losses()) else {
        return Ok(());
    };
    match guarded(shared, dispatch.on_loss(&report)).await {
        Ok(Ok(())) => {
            // The report may sit in the dispatcher's buffer, like an event.
            *output = Output::Dirty;
            Ok(())
        }
        Ok(Err(error)) => {
            shared.record_error(SinkError::LossReportFailed(Cause::from_error(error)));
            Ok(())
        }
        Err(Interrupt::Panicked(cause)) => Err(Exit::Panicked(cause)),
        Err(Interrupt::TimedOut) => Err(Exit::TimedOut { abandoned: 0 }),
        Err(Interrupt::Ended) => Err(Exit::Ended),
    }
}

/// Dispatcher code ended a step with `exit`: a panic is survived when the restart policy
/// restarts the dispatcher (`Ok`: go on); anything else ends the loop.
async fn recover<E, D>(shared: &Shared<E>, dispatch: &mut D, exit: Exit) -> Result<(), Exit>
where
    E: Send + 'static,
    D: Dispatch<E>,
{
    match exit {
        Exit::Panicked(cause) => restart(shared, dispatch, cause).await,
        exit => Err(exit),
    }
}

/// Dispatcher code panicked with `cause`; the events of that call are counted already.
/// When the restart policy allows another restart: counts it and keeps it in
/// `last_error()`, waits the backoff, and runs `on_restart` (`Ok`: dispatch again).
/// Otherwise, or when `on_restart` refuses, the loop ends with the panic.
async fn restart<E, D>(shared: &Shared<E>, dispatch: &mut D, cause: Cause) -> Result<(), Exit>
where
    E: Send + 'static,
    D: Dispatch<E>,
{
    let Some(backoff) = shared.config.restart.backoff_after(shared.queue.restarts()) else {
        return Err(Exit::Panicked(cause));
    };
    let restarts = shared.queue.record_restart();
    shared.record_error(SinkError::DispatcherRestarted {
        restarts,
        cause: cause.clone(),
    });
    back_off(shared, backoff).await;
    match guarded(shared, dispatch.on_restart()).await {
        Ok(Ok(())) => Ok(()),
        Ok(Err(_)) | Err(Interrupt::Panicked(_)) => Err(Exit::Panicked(cause)),
        Err(Interrupt::TimedOut) => Err(Exit::TimedOut { abandoned: 0 }),
        Err(Interrupt::Ended) => Err(Exit::Ended),
    }
}

/// Waits `backoff` before a restart, unless the sink is, or gets, asked to stop: the stop
/// drains at once (its own deadline bounds it).
async fn back_off<E>(shared: &Shared<E>, backoff: Duration) {
    if backoff.is_zero() {
        return;
    }
    // A backoff too long to represent waits for the stop alone.
    let mut timer = Instant::now().checked_add(backoff).map(Timer::at);
    poll_fn(|cx| {
        if shared.state() != State::Running {
            return Poll::Ready(());
        }
        if let Some(timer) = timer.as_mut() {
            if Pin::new(timer).poll(cx).is_ready() {
                return Poll::Ready(());
            }
        }
        shared.stop_waker.register(cx.waker());
        if shared.state() != State::Running {
            Poll::Ready(())
        } else {
            Poll::Pending
        }
    })
    .await;
}

/// Flushes the dispatcher when the queue ran empty after dispatches, when a flush ticket is
/// served, and at stop; serves the flush tickets whose events are all finished. Returns the
/// flush error, if any.
async fn serve_flushes<E, D>(
    shared: &Shared<E>,
    dispatch: &mut D,
    output: &mut Output,
    when: When,
) -> Result<Option<SinkError>, Exit>
where
    E: Send + 'static,
    D: Dispatch<E>,
{
    let tickets = &shared.flush;
    let servable = tickets.servable(&shared.queue);
    let serve = servable.is_some();
    let flush = match (*output, when) {
        (Output::Clean, _) => false,
        (Output::Dirty, When::Idle | When::Stop) | (Output::FlushFailed, When::Stop) => true,
        // A served ticket flushes whatever output may still be buffered.
        (Output::Dirty | Output::FlushFailed, _) => serve,
    };
    if !(serve || flush) {
        return Ok(None);
    }
    let mut error = None;
    if flush {
        match guarded(shared, dispatch.flush()).await {
            Ok(Ok(())) => {}
            Ok(Err(source)) => error = Some(SinkError::FlushFailed(Cause::from_error(source))),
            Err(Interrupt::Panicked(cause)) => return Err(Exit::Panicked(cause)),
            Err(Interrupt::TimedOut) => return Err(Exit::TimedOut { abandoned: 0 }),
            Err(Interrupt::Ended) => return Err(Exit::Ended),
        }
        // After a failure output may still be buffered: the next flush request, or the
        // stop, tries again; going idle does not.
        *output = match error {
            None => Output::Clean,
            Some(_) => Output::FlushFailed,
        };
    }
    if let Some(error) = &error {
        shared.record_error(error.clone());
    }
    if let Some((served, requested)) = servable {
        // Not once the sink was ended from outside: the flushes' events may be among those
        // it abandoned, and its error is their answer.
        let published = shared.queue.unless_ended(|| {
            if let Some(error) = &error {
                *lock(&tickets.failure) = Some((served, requested, error.clone()));
            }
            tickets.served.store(requested, Ordering::Release);
        });
        if published.is_err() {
            return Err(Exit::Ended);
        }
        shared.queue.progress.notify_all();
    }
    Ok(error)
}

/// Counts every event still pending as failed (admission is closed: nothing more can be
/// pushed). Returns how many were abandoned.
///
/// Stops counting, early, if the sink is ended from outside meanwhile (that end counts the
/// rest).
async fn abandon_rest<E>(shared: &Shared<E>) -> u64 {
    let mut abandoned = 0;
    loop {
        loop {
            match shared.queue.take_one() {
                Ok(Some(event)) => {
                    drop(event);
                    if shared.queue.finish(0, 1).is_err() {
                        return abandoned;
                    }
                    abandoned += 1;
                }
                Ok(None) => break,
                Err(Ended) => return abandoned,
            }
        }
        if shared.queue.drained() {
            return abandoned;
        }
        wait_for_work(shared, shared.state()).await;
    }
}

/// Whether the driver has something to do besides sleeping.
fn has_work<E>(shared: &Shared<E>, expected: State) -> bool {
    let state = shared.state();
    !shared.queue.is_empty()
        || state != expected
        // A flush request is work once the events it waits for are finished. Until then
        // they are queued (a ring is not empty): counting the request as work any earlier
        // would have the driver spin (`tests/loom_queue.rs` caught it).
        || shared.flush.servable(&shared.queue).is_some()
        || (matches!(state, State::Virgin | State::Running) && !shared.has_handles())
        // A stop closed admission after the driver saw `Stopping`: it may be done.
        || (state == State::Stopping && shared.queue.drained())
}

/// Returns when there is work: spins briefly, then parks until a producer, a lifecycle
/// operation or a flush request wakes the driver.
async fn wait_for_work<E>(shared: &Shared<E>, expected: State) {
    wait_for_work_until(shared, expected, None, None).await;
}

/// The dispatch loop's naps: parks after a `SeqCst` fence rather than the heavy barrier,
/// which a producer's count may miss (see [`SHORT_PARK`]).
#[derive(Default)]
struct Naps {
    /// When the driver last passed the heavy barrier before a park.
    exact_at: Option<Instant>,
    /// The timer that ends the naps, and when: naps within [`SHORT_PARK`] of each other
    /// share it, so that a driver that parks often registers a timer at most once a
    /// [`SHORT_PARK`].
    timer: Option<(Instant, Timer)>,
}

impl Naps {
    /// Whether the next park may be a nap: the heavy barrier was passed less than
    /// [`SHORT_PARK`] ago. (Under loom, which has no clock, every park is exact.)
    fn may_nap(&self, now: Instant) -> bool {
        !cfg!(loom) && self.exact_at.is_some_and(|at| now < at + SHORT_PARK)
    }

    /// The timer that ends a nap starting `now`: the pending one, or a new one.
    fn timer(&mut self, now: Instant) -> &mut Timer {
        if self.timer.as_ref().is_some_and(|(end, _)| *end <= now) {
            self.timer = None;
        }
        let (_, timer) = self.timer.get_or_insert_with(|| {
            let end = now + SHORT_PARK;
            (end, Timer::at(end))
        });
        timer
    }
}

/// How a park ended.
enum Woken {
    /// By a producer, a lifecycle operation or a flush request.
    Notified,
    /// At the end of a nap.
    NapOver,
    /// At `wake_at`.
    Due,
}

/// [`wait_for_work`], or until `wake_at` when it is set (a loss report falls due then);
/// with `naps`, a park may be a nap. Returns whether the driver parked, and so gave its
/// executor back.
async fn wait_for_work_until<E>(
    shared: &Shared<E>,
    expected: State,
    wake_at: Option<Instant>,
    mut naps: Option<&mut Naps>,
) -> bool {
    for round in 0..IDLE_CHECKS {
        for _ in 0..(1u32 << round).min(IDLE_CHECK_GAP) {
            std::hint::spin_loop();
        }
        if has_work(shared, expected) {
            return false;
        }
    }
    listener!(shared.queue.work => woken);
    let mut now = Instant::now();
    let mut exact = !naps.as_ref().is_some_and(|naps| naps.may_nap(now));
    let mut parked = false;
    loop {
        shared.queue.mark_driver_parked(exact);
        if exact && let Some(naps) = naps.as_mut() {
            naps.exact_at = Some(now);
        }
        if has_work(shared, expected) {
            break;
        }
        parked = true;
        let mut due = wake_at.map(Timer::at);
        let mut nap = match naps.as_mut() {
            Some(naps) if !exact => Some(naps.timer(now)),
            _ => None,
        };
        let how = poll_fn(|cx| {
            if Pin::new(&mut woken).poll(cx).is_ready() {
                Poll::Ready(Woken::Notified)
            } else if nap
                .as_mut()
                .is_some_and(|nap| Pin::new(&mut **nap).poll(cx).is_ready())
            {
                Poll::Ready(Woken::NapOver)
            } else if due
                .as_mut()
                .is_some_and(|due| Pin::new(due).poll(cx).is_ready())
            {
                Poll::Ready(Woken::Due)
            } else {
                Poll::Pending
            }
        })
        .await;
        match how {
            Woken::Notified | Woken::Due => break,
            Woken::NapOver => {
                // A producer may have missed the mark: look again, sure this time.
                if let Some(naps) = naps.as_mut() {
                    naps.timer = None;
                }
                now = Instant::now();
                exact = true;
            }
        }
    }
    shared.queue.mark_driver_awake();
    parked
}

/// The deadline of user code: while starting, the start deadline; once a stop is
/// requested, the stop deadline; `None` while running or without a timeout.
fn deadline<E>(shared: &Shared<E>) -> Option<Instant> {
    let (timeout, requested_at) = match shared.state() {
        State::Starting => (
            shared.config.start_timeout?,
            shared.lifecycle.lock().start_requested_at?,
        ),
        State::Stopping => (
            shared.config.stop_timeout?,
            shared.lifecycle.lock().stop_requested_at?,
        ),
        _ => return None,
    };
    requested_at.checked_add(timeout)
}

/// Polls user code, catching its panics and cutting it off at the start or stop deadline,
/// or once the sink was ended from outside.
///
/// Each poll runs in a telemetry-suppression scope (`crate::sync::suppression`): what the
/// dispatcher emits through the mvx facades is counted and left out, rather than fed back
/// into a sink.
///
/// When `future` completes on its first poll — the common case for a fast dispatch — this
/// costs one `catch_unwind`, a load of the state and a thread-local counter raised and
/// lowered, nothing else.
pub(crate) async fn guarded<E, T>(
    shared: &Shared<E>,
    future: impl Future<Output = T>,
) -> Result<T, Interrupt> {
    let mut future = pin!(future);
    let mut timer: Option<Timer> = None;
    poll_fn(|cx| {
        // The driver itself calls user code only in a live state: a terminal one was set
        // from outside (`Shared::end_from_outside`), which wakes the driver.
        if shared.state().is_terminal() {
            return Poll::Ready(Err(Interrupt::Ended));
        }
        let suppressed = suppress();
        let polled = catch_unwind(AssertUnwindSafe(|| future.as_mut().poll(cx)));
        drop(suppressed);
        match polled {
            Ok(Poll::Ready(output)) => return Poll::Ready(Ok(output)),
            Ok(Poll::Pending) => {}
            Err(payload) => {
                return Poll::Ready(Err(Interrupt::Panicked(Cause::from_panic(payload))));
            }
        }
        loop {
            if let Some(timer) = timer.as_mut() {
                return match Pin::new(timer).poll(cx) {
                    Poll::Ready(_) => Poll::Ready(Err(Interrupt::TimedOut)),
                    Poll::Pending => Poll::Pending,
                };
            }
            match deadline(shared) {
                Some(deadline) => timer = Some(Timer::at(deadline)),
                None => {
                    shared.stop_waker.register(cx.waker());
                    // Re-checked after registering: a stop requested, or an end from
                    // outside, since the checks above woke no one. (Pending on a stop
                    // timer, the driver sees an end from outside when the timer fires, if
                    // its executor has not dropped it by then.)
                    if shared.state().is_terminal() {
                        return Poll::Ready(Err(Interrupt::Ended));
                    }
                    if deadline(shared).is_none() {
                        return Poll::Pending;
                    }
                }
            }
        }
    })
    .await
}
