//! Future instrumentation: time a future, count its errors, track how many are in progress,
//! as `prometheus_async.aio`'s `time`, `count_exceptions` and `track_inprogress` do.
//!
//! (For maintainers: one concept, the future adapters and their shared ending rules; some
//! 610 lines, 40 % of them docs.)
//!
//! [`InstrumentExt`] adds three adapters to every [`Future`], and the functions [`timed`],
//! [`count_errors`], [`count_errors_if`] and [`track_in_progress`] do the same for callers
//! who prefer a function to a method:
//!
//! | adapter | records | when |
//! |---|---|---|
//! | [`timed`](InstrumentExt::timed) | the time since the adapter was built, into a [`Histogram`] (seconds) or a [`LatencyHistogram`] (nanoseconds; any [`ObserveDuration`]) | the future completes (`Ok` or `Err`), a panic unwinds through it, or it is dropped after its first poll |
//! | [`count_errors`](InstrumentExt::count_errors) | one, into a [`Counter`] | the output is `Err`, a panic unwinds through the future, or it is dropped after its first poll (a cancellation) |
//! | [`count_errors_if`](InstrumentExt::count_errors_if) | one, into a [`Counter`] | the output is an `Err` that the [`ErrorFilter`] accepts, a panic unwinds, or it is cancelled and the filter admits cancellation |
//! | [`track_in_progress`](InstrumentExt::track_in_progress) | +1 / −1 on a [`Gauge`] | +1 when the adapter is built; −1 on completion, on a panic, or when dropped |
//!
//! Adapters compose: `request.timed(&latency).count_errors(&failures)` times the request
//! and counts its failures.
//!
//! # prometheus_async's `finally` and `except`, in Rust
//!
//! `time` awaits the future inside a `try` and observes in its `finally`; `count_exceptions`
//! counts in an `except exc`; `track_inprogress` increments when it wraps the future and
//! decrements in a `finally`. The `try` is entered when the future first runs: in Rust, at
//! its first poll. Then:
//!
//! - **Completion**, whatever the output, leaves the `try`: `timed` observes; an `Err`
//!   output is the exception that `count_errors` counts (when its filter accepts the error);
//!   the gauge goes down.
//! - **A panic** unwinding through the future is an exception that propagates: `timed`
//!   observes, `count_errors` counts (whatever the filter: a panic has no error value to
//!   filter), the gauge goes down — at once, while the panic unwinds, not when the future is
//!   dropped later.
//! - **A drop after the first poll, before completion**, is the cancellation (asyncio throws
//!   `CancelledError` in at the `await`): `timed` observes the time until the drop, the
//!   gauge goes down, and `count_errors` counts it if its filter admits cancellation.
//!   prometheus_async's default filter, `exc=BaseException`, admits `CancelledError`; so
//!   does [`AnyError`], the filter of [`count_errors`](InstrumentExt::count_errors). A
//!   filter over error values — a closure, like `exc=Exception` or any narrower class — does
//!   not: a cancellation is not an error value. [`WithCancellation`] makes a filter admit it.
//! - **A drop before the first poll** is a coroutine never awaited: its `try` was never
//!   entered, so nothing is observed or counted. The gauge, raised when the adapter was
//!   built, goes down (a Python coroutine never awaited would leave it raised for ever).
//!
//! A cancelled call's partial duration is in the histogram, as it is in prometheus_async's.
//! To time only the calls that end on their own, put the adapter outside the cancellation:
//! `timeout(deadline, call).timed(&latency)` completes, in time or not, and is never dropped
//! half-way by the timeout.
//!
//! # When the clock starts
//!
//! When the adapter is built, as `time(metric, future)` starts it when it wraps the future:
//! a future built and awaited later is timed from when it was built. prometheus_async's
//! decorator starts the clock when the call starts running; in Rust, build the adapter
//! inside the `async` block, which runs at its first poll:
//! `async move { lookup(key).timed(&latency).await }`.
//!
//! # Costs
//!
//! No allocation per wrapped call: each adapter keeps a clone of the instrument handle (a
//! reference count increment) and, for `timed`, an [`Instant`]. Recording is the
//! instrument's own lock-free record. Panics are detected with a drop guard, not
//! `catch_unwind`, so the adapters add no unwinding landing pad of their own to the happy
//! path beyond the guard's.
//!
//! # Examples
//!
//! ```
//! use mvx::instrument::InstrumentExt;
//! use mvx::metrics::{Counter, Gauge, Histogram};
//!
//! let latency = Histogram::new("lookup.seconds", Histogram::DEFAULT_BUCKETS.iter().copied())?;
//! let failures = Counter::new("lookup.failures");
//! let in_flight = Gauge::new("lookup.in_flight");
//!
//! async fn lookup(key: u32) -> Result<u32, String> {
//!     if key == 0 { Err("no such key".into()) } else { Ok(key * 2) }
//! }
//!
//! futures::executor::block_on(async {
//!     for key in [1, 0, 2] {
//!         let _ = lookup(key)
//!             .track_in_progress(&in_flight)
//!             .count_errors(&failures)
//!             .timed(&latency)
//!             .await;
//!     }
//! });
//! assert_eq!(latency.count(), 3); // errors are completed calls: timed too
//! assert_eq!(failures.get(), 1);
//! assert_eq!(in_flight.get(), 0.0);
//!
//! // A cancellation: polled once, then dropped. Timed, and counted by `count_errors`.
//! let mut call = Box::pin(
//!     std::future::pending::<Result<u32, String>>()
//!         .track_in_progress(&in_flight)
//!         .count_errors(&failures)
//!         .timed(&latency),
//! );
//! assert_eq!(in_flight.get(), 1.0); // in progress from when it was wrapped
//! let waker = futures::task::noop_waker();
//! assert!(call.as_mut().poll(&mut std::task::Context::from_waker(&waker)).is_pending());
//! drop(call);
//! assert_eq!((latency.count(), failures.get(), in_flight.get()), (4, 2, 0.0));
//! # Ok::<(), mvx::metrics::RegistryError>(())
//! ```

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use crate::metrics::{Counter, Gauge, Histogram, LatencyHistogram};

/// Outputs that can be an error: implemented for `Result`.
///
/// [`count_errors`](InstrumentExt::count_errors) counts the outputs for which
/// [`error`](Self::error) is `Some`.
pub trait Fallible {
    /// The error type.
    type Error;

    /// The error, if the output is one.
    fn error(&self) -> Option<&Self::Error>;
}

impl<T, E> Fallible for Result<T, E> {
    type Error = E;

    #[inline]
    fn error(&self) -> Option<&E> {
        self.as_ref().err()
    }
}

/// Decides what [`CountErrors`] counts besides panics: which `Err` outputs, and whether a
/// cancellation (see the [module docs](self#prometheus_asyncs-finally-and-except-in-rust)).
///
/// Implemented by [`AnyError`] (every error, and cancellation), by every
/// `FnMut(&E) -> bool` (the errors it accepts; not cancellation) and by
/// [`WithCancellation`] (its filter's errors, and cancellation).
pub trait ErrorFilter<E> {
    /// Whether `error` is counted.
    fn matches(&mut self, error: &E) -> bool;

    /// Whether a cancellation — the future dropped after its first poll, before it
    /// completes — is counted. `false` unless the filter says otherwise. Asked once, when
    /// the adapter is built.
    fn admits_cancellation(&self) -> bool {
        false
    }
}

/// The [`ErrorFilter`] that counts every error and cancellation, as prometheus_async's
/// default `exc=BaseException` counts every exception and `CancelledError`.
#[derive(Clone, Copy, Debug, Default)]
pub struct AnyError;

impl<E> ErrorFilter<E> for AnyError {
    #[inline]
    fn matches(&mut self, _: &E) -> bool {
        true
    }

    #[inline]
    fn admits_cancellation(&self) -> bool {
        true
    }
}

impl<E, P: FnMut(&E) -> bool> ErrorFilter<E> for P {
    #[inline]
    fn matches(&mut self, error: &E) -> bool {
        self(error)
    }
}

/// An [`ErrorFilter`] that counts the errors its filter counts, and cancellation.
///
/// # Examples
///
/// ```
/// use mvx::BoxError;
/// use mvx::instrument::{InstrumentExt, WithCancellation};
/// use mvx::metrics::Counter;
///
/// // I/O errors and cancelled calls: `count_exceptions(c, exc=(OSError, CancelledError))`.
/// let lost = Counter::new("calls.lost");
/// let io_or_cancelled = WithCancellation(|error: &BoxError| error.is::<std::io::Error>());
/// let mut call = Box::pin(
///     std::future::pending::<Result<(), BoxError>>().count_errors_if(&lost, io_or_cancelled),
/// );
/// let waker = futures::task::noop_waker();
/// assert!(call.as_mut().poll(&mut std::task::Context::from_waker(&waker)).is_pending());
/// drop(call); // cancelled
/// assert_eq!(lost.get(), 1);
/// ```
#[derive(Clone, Copy, Debug, Default)]
pub struct WithCancellation<P>(pub P);

impl<E, P: ErrorFilter<E>> ErrorFilter<E> for WithCancellation<P> {
    #[inline]
    fn matches(&mut self, error: &E) -> bool {
        self.0.matches(error)
    }

    #[inline]
    fn admits_cancellation(&self) -> bool {
        true
    }
}

/// Instrumentation adapters for every [`Future`].
///
/// See the [module docs](self) for what each adapter records and when.
pub trait InstrumentExt: Future + Sized {
    /// Observes the time from now until the future ends into `histogram` (a [`Histogram`],
    /// in seconds, a [`LatencyHistogram`], to the nanosecond, or any [`ObserveDuration`]):
    /// once, when it completes (`Ok` or `Err`), when a panic unwinds through it, or when it
    /// is dropped after its first poll.
    ///
    /// # Examples
    ///
    /// ```
    /// use mvx::instrument::InstrumentExt;
    /// use mvx::metrics::Histogram;
    ///
    /// let latency = Histogram::new("work.seconds", [0.1, 1.0])?;
    /// let answer = futures::executor::block_on(async { 42 }.timed(&latency));
    /// assert_eq!(answer, 42);
    /// assert_eq!(latency.count(), 1);
    /// # Ok::<(), mvx::metrics::RegistryError>(())
    /// ```
    fn timed<H: ObserveDuration>(self, histogram: &H) -> Timed<Self, H> {
        timed(histogram, self)
    }

    /// Adds one to `counter` for an `Err` output, for a panic that unwinds through the
    /// future, and for its cancellation (dropped after its first poll, before completion).
    ///
    /// # Examples
    ///
    /// ```
    /// use mvx::instrument::InstrumentExt;
    /// use mvx::metrics::Counter;
    ///
    /// let failures = Counter::new("work.failures");
    /// let result = futures::executor::block_on(async { Err::<(), _>("refused") }.count_errors(&failures));
    /// assert_eq!(result, Err("refused"));
    /// assert_eq!(failures.get(), 1);
    /// ```
    fn count_errors(self, counter: &Counter) -> CountErrors<Self, AnyError>
    where
        Self::Output: Fallible,
    {
        count_errors(counter, self)
    }

    /// Adds one to `counter` for an `Err` output that `filter` accepts, for a panic that
    /// unwinds through the future (a panic is never filtered: it has no error value), and
    /// for its cancellation if `filter` admits it.
    ///
    /// `filter` is any `FnMut(&E) -> bool`, which does not admit cancellation, or one in
    /// [`WithCancellation`], which does. To count errors of one type out of a boxed error,
    /// downcast: `|error: &BoxError| error.is::<std::io::Error>()`.
    ///
    /// # Examples
    ///
    /// ```
    /// use mvx::BoxError;
    /// use mvx::instrument::InstrumentExt;
    /// use mvx::metrics::Counter;
    ///
    /// let timeouts = Counter::new("work.timeouts");
    /// let io_errors = |error: &BoxError| error.is::<std::io::Error>();
    /// futures::executor::block_on(async {
    ///     let timed_out: Result<(), BoxError> =
    ///         Err(std::io::Error::from(std::io::ErrorKind::TimedOut).into());
    ///     let refused: Result<(), BoxError> = Err("refused".into());
    ///     let _ = async { timed_out }.count_errors_if(&timeouts, io_errors).await;
    ///     let _ = async { refused }.count_errors_if(&timeouts, io_errors).await;
    /// });
    /// assert_eq!(timeouts.get(), 1);
    /// ```
    fn count_errors_if<P>(self, counter: &Counter, filter: P) -> CountErrors<Self, P>
    where
        Self::Output: Fallible,
        P: ErrorFilter<<Self::Output as Fallible>::Error>,
    {
        count_errors_if(counter, self, filter)
    }

    /// Adds one to `gauge` now, and subtracts it again when the future completes, panics or
    /// is dropped.
    ///
    /// # Examples
    ///
    /// ```
    /// use mvx::instrument::InstrumentExt;
    /// use mvx::metrics::Gauge;
    ///
    /// let in_flight = Gauge::new("work.in_flight");
    /// let work = async { 7 }.track_in_progress(&in_flight);
    /// assert_eq!(in_flight.get(), 1.0); // in progress from when it was wrapped
    /// assert_eq!(futures::executor::block_on(work), 7);
    /// assert_eq!(in_flight.get(), 0.0);
    /// ```
    fn track_in_progress(self, gauge: &Gauge) -> TrackInProgress<Self> {
        track_in_progress(gauge, self)
    }
}

impl<F: Future> InstrumentExt for F {}

/// `future`, observing its duration into `histogram`: the function form of
/// [`InstrumentExt::timed`].
pub fn timed<F: Future, H: ObserveDuration>(histogram: &H, future: F) -> Timed<F, H> {
    Timed {
        future,
        histogram: histogram.clone(),
        started: Instant::now(),
        phase: Phase::Wrapped,
    }
}

/// `future`, counting its errors, panics and cancellation into `counter`: the function
/// form of [`InstrumentExt::count_errors`].
pub fn count_errors<F>(counter: &Counter, future: F) -> CountErrors<F, AnyError>
where
    F: Future,
    F::Output: Fallible,
{
    count_errors_if(counter, future, AnyError)
}

/// `future`, counting the errors `filter` accepts, its panics and, if `filter` admits it,
/// its cancellation into `counter`: the function form of [`InstrumentExt::count_errors_if`].
pub fn count_errors_if<F, P>(counter: &Counter, future: F, filter: P) -> CountErrors<F, P>
where
    F: Future,
    F::Output: Fallible,
    P: ErrorFilter<<F::Output as Fallible>::Error>,
{
    CountErrors {
        future,
        counter: counter.clone(),
        counts_cancellation: filter.admits_cancellation(),
        filter,
        phase: Phase::Wrapped,
    }
}

/// `future`, tracked in progress on `gauge` from now: the function form of
/// [`InstrumentExt::track_in_progress`].
pub fn track_in_progress<F: Future>(gauge: &Gauge, future: F) -> TrackInProgress<F> {
    gauge.inc();
    TrackInProgress {
        future,
        gauge: gauge.clone(),
        entered: true,
    }
}

/// Where an instrumented future stands in prometheus_async's `try`: not entered (never
/// polled), inside it, or out of it with its record made (completed, or a panic unwound
/// through it).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Phase {
    Wrapped,
    Running,
    Ended,
}

/// Makes a record once if dropped while a panic unwinds out of a poll (it is forgotten
/// otherwise), and marks the future ended.
struct OnUnwind<'a, R: FnMut()> {
    phase: &'a mut Phase,
    record: R,
}

impl<R: FnMut()> Drop for OnUnwind<'_, R> {
    fn drop(&mut self) {
        if *self.phase != Phase::Ended {
            *self.phase = Phase::Ended;
            (self.record)();
        }
    }
}

pin_project_lite::pin_project! {
    /// The future returned by [`InstrumentExt::timed`].
    #[must_use = "futures do nothing unless you .await or poll them"]
    pub struct Timed<F, H: ObserveDuration = Histogram> {
        #[pin]
        future: F,
        histogram: H,
        started: Instant,
        phase: Phase,
    }

    impl<F, H: ObserveDuration> PinnedDrop for Timed<F, H> {
        fn drop(this: Pin<&mut Self>) {
            let this = this.project();
            // Cancelled inside the `try`: the `finally` observes.
            if *this.phase == Phase::Running {
                this.histogram.observe_duration(this.started.elapsed());
            }
        }
    }
}

impl<F: Future, H: ObserveDuration> Future for Timed<F, H> {
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        let this = self.project();
        if *this.phase == Phase::Wrapped {
            *this.phase = Phase::Running;
        }
        let (histogram, started) = (&*this.histogram, *this.started);
        let observe = || histogram.observe_duration(started.elapsed());
        let guard = OnUnwind {
            phase: &mut *this.phase,
            record: observe,
        };
        let polled = this.future.poll(cx);
        std::mem::forget(guard);
        let output = std::task::ready!(polled);
        if *this.phase != Phase::Ended {
            *this.phase = Phase::Ended;
            observe();
        }
        Poll::Ready(output)
    }
}

impl<F, H: ObserveDuration> fmt::Debug for Timed<F, H> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Timed")
            .field("histogram", &self.histogram.name())
            .field("started", &self.started)
            .field("phase", &self.phase)
            .finish_non_exhaustive()
    }
}

pin_project_lite::pin_project! {
    /// The future returned by [`InstrumentExt::count_errors`] and
    /// [`InstrumentExt::count_errors_if`].
    #[must_use = "futures do nothing unless you .await or poll them"]
    pub struct CountErrors<F, P> {
        #[pin]
        future: F,
        counter: Counter,
        filter: P,
        // The filter's `admits_cancellation`, asked when built: `drop` has no bound on `P`.
        counts_cancellation: bool,
        phase: Phase,
    }

    impl<F, P> PinnedDrop for CountErrors<F, P> {
        fn drop(this: Pin<&mut Self>) {
            let this = this.project();
            // Cancelled inside the `try`: the `except` counts if the filter admits it.
            if *this.phase == Phase::Running && *this.counts_cancellation {
                this.counter.inc();
            }
        }
    }
}

impl<F, P> Future for CountErrors<F, P>
where
    F: Future,
    F::Output: Fallible,
    P: ErrorFilter<<F::Output as Fallible>::Error>,
{
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        let this = self.project();
        if *this.phase == Phase::Wrapped {
            *this.phase = Phase::Running;
        }
        let counter = &*this.counter;
        let guard = OnUnwind {
            phase: &mut *this.phase,
            record: || counter.inc(),
        };
        let polled = this.future.poll(cx);
        std::mem::forget(guard);
        let output = std::task::ready!(polled);
        if *this.phase != Phase::Ended {
            *this.phase = Phase::Ended;
            if let Some(error) = output.error() {
                if this.filter.matches(error) {
                    counter.inc();
                }
            }
        }
        Poll::Ready(output)
    }
}

impl<F, P> fmt::Debug for CountErrors<F, P> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CountErrors")
            .field("counter", &self.counter.name())
            .field("counts_cancellation", &self.counts_cancellation)
            .field("phase", &self.phase)
            .finish_non_exhaustive()
    }
}

pin_project_lite::pin_project! {
    /// The future returned by [`InstrumentExt::track_in_progress`].
    #[must_use = "futures do nothing unless you .await or poll them"]
    pub struct TrackInProgress<F> {
        #[pin]
        future: F,
        gauge: Gauge,
        // Whether this future holds +1 on the gauge: from when it is built until it ends.
        entered: bool,
    }

    impl<F> PinnedDrop for TrackInProgress<F> {
        fn drop(this: Pin<&mut Self>) {
            let this = this.project();
            if *this.entered {
                this.gauge.dec();
            }
        }
    }
}

/// Gives the +1 of a [`TrackInProgress`] back if dropped while a panic unwinds.
struct Leave<'a> {
    gauge: &'a Gauge,
    entered: &'a mut bool,
}

impl Drop for Leave<'_> {
    fn drop(&mut self) {
        if *self.entered {
            self.gauge.dec();
            *self.entered = false;
        }
    }
}

impl<F: Future> Future for TrackInProgress<F> {
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        let this = self.project();
        let leave = Leave {
            gauge: this.gauge,
            entered: this.entered,
        };
        match this.future.poll(cx) {
            // Completed: `leave` gives the +1 back.
            Poll::Ready(output) => Poll::Ready(output),
            Poll::Pending => {
                std::mem::forget(leave);
                Poll::Pending
            }
        }
    }
}

impl<F> fmt::Debug for TrackInProgress<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TrackInProgress")
            .field("gauge", &self.gauge.name())
            .field("entered", &self.entered)
            .finish_non_exhaustive()
    }
}

/// An instrument that [`timed`](InstrumentExt::timed) can record a duration into.
///
/// Implemented by [`Histogram`], which observes the duration in seconds (an `f64`), and by
/// [`LatencyHistogram`], which records it to the nanosecond. Implement it to time futures
/// into an instrument of your own; the adapter keeps a clone of the instrument.
pub trait ObserveDuration: Clone {
    /// Records `elapsed`. Called once per timed future, on the thread that polls it to its
    /// end or drops it: it should be as cheap as a record of the instrument.
    fn observe_duration(&self, elapsed: Duration);

    /// The instrument's name, for `Debug` output.
    fn name(&self) -> &str;
}

impl ObserveDuration for Histogram {
    #[inline]
    fn observe_duration(&self, elapsed: Duration) {
        self.observe(elapsed.as_secs_f64());
    }

    fn name(&self) -> &str {
        Histogram::name(self)
    }
}

impl ObserveDuration for LatencyHistogram {
    #[inline]
    fn observe_duration(&self, elapsed: Duration) {
        self.record(elapsed);
    }

    fn name(&self) -> &str {
        LatencyHistogram::name(self)
    }
}
