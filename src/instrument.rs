//! Future instrumentation: time a future, count its errors, track how many are in progress.
//!
//! [`InstrumentExt`] adds three adapters to every [`Future`], and the functions [`timed`],
//! [`count_errors`], [`count_errors_if`] and [`track_in_progress`] do the same for callers
//! who prefer a function to a method:
//!
//! | adapter | records | when |
//! |---|---|---|
//! | [`timed`](InstrumentExt::timed) | the duration from the first poll into a [`Histogram`] (seconds) or a [`LatencyHistogram`] (any [`ObserveDuration`]) | the future completes, with any output (`Ok` or `Err`) |
//! | [`count_errors`](InstrumentExt::count_errors) | one into a [`Counter`] | the output is `Err` (or matches a predicate), or a panic unwinds through the future |
//! | [`track_in_progress`](InstrumentExt::track_in_progress) | +1 / −1 on a [`Gauge`] | +1 on the first poll; −1 on completion, on a panic, or when dropped before completion |
//!
//! Adapters compose: `request.timed(&latency).count_errors(&failures)` times the request
//! and counts its failures.
//!
//! # What `timed` does on error, panic and early drop
//!
//! `timed` observes a duration when the future **completes**, whatever its output: an `Err`
//! is a completed operation and its latency is observed like any other (count errors apart
//! with `count_errors`). A future that **panics** or is **dropped before completion**
//! (cancelled by a timeout or a `select`, or abandoned) observes nothing: it did not
//! complete, and its partial duration would skew the latency distribution. Count those with
//! `count_errors` (panics) and see them in flight with `track_in_progress` (drops). A future
//! that is never polled observes nothing either.
//!
//! The clock starts at the first poll, not when the adapter is built: a future created and
//! awaited later is timed from when it started running.
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

/// Decides which errors [`CountErrors`] counts.
///
/// Implemented by [`AnyError`] (every error) and by every `FnMut(&E) -> bool`.
pub trait ErrorFilter<E> {
    /// Whether `error` is counted.
    fn matches(&mut self, error: &E) -> bool;
}

/// The [`ErrorFilter`] that counts every error.
#[derive(Clone, Copy, Debug, Default)]
pub struct AnyError;

impl<E> ErrorFilter<E> for AnyError {
    #[inline]
    fn matches(&mut self, _: &E) -> bool {
        true
    }
}

impl<E, P: FnMut(&E) -> bool> ErrorFilter<E> for P {
    #[inline]
    fn matches(&mut self, error: &E) -> bool {
        self(error)
    }
}

/// Instrumentation adapters for every [`Future`].
///
/// See the [module docs](self) for what each adapter records and when.
pub trait InstrumentExt: Future + Sized {
    /// Observes the seconds from the first poll to completion into `histogram`.
    ///
    /// Observed on every completion, `Ok` or `Err`; not on a panic, nor when the future is
    /// dropped before it completes.
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

    /// Adds one to `counter` for each `Err` output, and for a panic that unwinds through the
    /// future.
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

    /// Adds one to `counter` for each `Err` output that `filter` accepts, and for a panic
    /// that unwinds through the future (a panic is never filtered: it has no error value).
    ///
    /// `filter` is any `FnMut(&E) -> bool`. To count errors of one type out of a boxed
    /// error, downcast: `|error: &BoxError| error.is::<std::io::Error>()`.
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

    /// Adds one to `gauge` on the first poll, and subtracts it again when the future
    /// completes, panics or is dropped before completion.
    ///
    /// # Examples
    ///
    /// ```
    /// use mvx::instrument::InstrumentExt;
    /// use mvx::metrics::Gauge;
    ///
    /// let in_flight = Gauge::new("work.in_flight");
    /// let seen = futures::executor::block_on(async { in_flight.get() }.track_in_progress(&in_flight));
    /// assert_eq!(seen, 1.0); // in progress while it ran
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
        started: None,
    }
}

/// `future`, counting its errors and panics into `counter`: the function form of
/// [`InstrumentExt::count_errors`].
pub fn count_errors<F>(counter: &Counter, future: F) -> CountErrors<F, AnyError>
where
    F: Future,
    F::Output: Fallible,
{
    count_errors_if(counter, future, AnyError)
}

/// `future`, counting the errors `filter` accepts and its panics into `counter`: the
/// function form of [`InstrumentExt::count_errors_if`].
pub fn count_errors_if<F, P>(counter: &Counter, future: F, filter: P) -> CountErrors<F, P>
where
    F: Future,
    F::Output: Fallible,
    P: ErrorFilter<<F::Output as Fallible>::Error>,
{
    CountErrors {
        future,
        counter: counter.clone(),
        filter,
    }
}

/// `future`, tracked in progress on `gauge`: the function form of
/// [`InstrumentExt::track_in_progress`].
pub fn track_in_progress<F: Future>(gauge: &Gauge, future: F) -> TrackInProgress<F> {
    TrackInProgress {
        future,
        gauge: gauge.clone(),
        entered: false,
    }
}

pin_project_lite::pin_project! {
    /// The future returned by [`InstrumentExt::timed`].
    #[must_use = "futures do nothing unless you .await or poll them"]
    pub struct Timed<F, H = Histogram> {
        #[pin]
        future: F,
        histogram: H,
        started: Option<Instant>,
    }
}

impl<F: Future, H: ObserveDuration> Future for Timed<F, H> {
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        let this = self.project();
        let started = *this.started.get_or_insert_with(Instant::now);
        // A panic unwinds from here: nothing is observed.
        let output = std::task::ready!(this.future.poll(cx));
        this.histogram.observe_duration(started.elapsed());
        Poll::Ready(output)
    }
}

impl<F, H: ObserveDuration> fmt::Debug for Timed<F, H> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Timed")
            .field("histogram", &self.histogram.name())
            .field("started", &self.started)
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
    }
}

/// Adds one to a counter if dropped while a panic unwinds (it is forgotten otherwise).
struct OnUnwind<'a>(&'a Counter);

impl Drop for OnUnwind<'_> {
    fn drop(&mut self) {
        self.0.inc();
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
        let guard = OnUnwind(this.counter);
        let polled = this.future.poll(cx);
        std::mem::forget(guard);
        let output = std::task::ready!(polled);
        if let Some(error) = output.error() {
            if this.filter.matches(error) {
                this.counter.inc();
            }
        }
        Poll::Ready(output)
    }
}

impl<F, P> fmt::Debug for CountErrors<F, P> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CountErrors")
            .field("counter", &self.counter.name())
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
        // Whether this future holds +1 on the gauge.
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
        self.gauge.dec();
        *self.entered = false;
    }
}

impl<F: Future> Future for TrackInProgress<F> {
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        let this = self.project();
        if !*this.entered {
            this.gauge.inc();
            *this.entered = true;
        }
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
    /// Records `elapsed`. Called once per timed future, on the polling thread: it should be
    /// as cheap as a record of the instrument.
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
