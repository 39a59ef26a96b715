//! Direct instruments: [`Counter`], [`Gauge`] and [`Histogram`], recorded in place by the
//! calling thread, without a queue.
//!
//! Every instrument is a cheap handle (`Clone + Send + Sync`, an `Arc` inside): clones share
//! one state. Recording is lock-free and never allocates. Reads (`get`, `count`, `sum`,
//! `buckets`, `snapshot`) are lock-free too.
//!
//! The state a histogram's records contend on is striped per thread; the public docs of
//! [`Histogram`] say how (this module is private: its docs are for maintainers).

use std::cell::Cell;
use std::collections::BTreeMap;
use std::fmt;
use std::num::NonZeroUsize;
use std::sync::OnceLock;

use super::{MetricKind, RegistryError, Snapshot, SnapshotSource, Snapshots};
use crate::sync::{Arc, AtomicU64, CachePadded, Ordering};

/// The dimension under which a counter or a gauge reports its value in a [`Snapshot`].
const VALUE: &str = "value";

// ---------------------------------------------------------------------------------------
// Counter
// ---------------------------------------------------------------------------------------

/// A monotonically increasing count of events.
///
/// `inc` is a single relaxed `fetch_add` on one atomic word, on cache lines of its own.
/// Clones share the count. The count wraps around at `u64::MAX` (at a billion increments a
/// second, after 584 years).
///
/// Unlike [`Histogram`], a counter is not striped per thread: striping would make every
/// counter a kibibyte or more, and pays only when several threads increment the very same
/// counter at once. Measured, `inc` costs what a bare `fetch_add` costs, alone or contended
/// (BENCHMARKS.md, "Instruments").
///
/// Its [`snapshot`](Self::snapshot) has kind [`MetricKind::Counter`] and one dimension,
/// `value`.
///
/// # Examples
///
/// ```
/// use mvx::metrics::Counter;
///
/// let requests = Counter::new("http.requests");
/// let handle = requests.clone(); // shares the count
/// handle.inc();
/// handle.inc_by(2);
/// assert_eq!(requests.get(), 3);
/// assert_eq!(requests.snapshot().get("value"), Some(3u64.into()));
/// ```
#[derive(Clone)]
pub struct Counter {
    inner: Arc<CounterInner>,
}

struct CounterInner {
    value: CachePadded<AtomicU64>,
    name: Box<str>,
    labels: BTreeMap<String, String>,
}

/// The labels of an instrument that is not a labeled series.
const NO_LABELS: [(String, String); 0] = [];

impl Counter {
    /// A counter at zero.
    ///
    /// Any name is accepted here; a [`Registry`](super::Registry) enforces its own naming
    /// rule when it creates instruments.
    pub fn new(name: impl Into<String>) -> Self {
        Self::with_labels(name, NO_LABELS)
    }

    /// A counter at zero for the series of `name` with `labels` (see
    /// [`Snapshot::labels`]).
    ///
    /// # Examples
    ///
    /// ```
    /// use mvx::metrics::Counter;
    ///
    /// let ok = Counter::with_labels("http.requests", [("code", "200")]);
    /// ok.inc();
    /// assert_eq!(ok.snapshot().labels["code"], "200");
    /// ```
    pub fn with_labels<K, V>(
        name: impl Into<String>,
        labels: impl IntoIterator<Item = (K, V)>,
    ) -> Self
    where
        K: Into<String>,
        V: Into<String>,
    {
        Self {
            inner: Arc::new(CounterInner {
                value: CachePadded(AtomicU64::new(0)),
                name: name.into().into_boxed_str(),
                labels: label_map(labels),
            }),
        }
    }

    /// Raises the count to `value` if it is below it (an atomic maximum): for counts kept
    /// elsewhere and mirrored here, such as the `metrics` facade's `Counter::absolute`.
    #[inline]
    pub fn raise_to(&self, value: u64) {
        self.inner.value.fetch_max(value, Ordering::Relaxed);
    }

    /// The labels of the counter's series; empty for most counters.
    pub fn labels(&self) -> &BTreeMap<String, String> {
        &self.inner.labels
    }

    /// Adds one.
    #[inline]
    pub fn inc(&self) {
        self.inner.value.fetch_add(1, Ordering::Relaxed);
    }

    /// Adds `n`.
    #[inline]
    pub fn inc_by(&self, n: u64) {
        self.inner.value.fetch_add(n, Ordering::Relaxed);
    }

    /// The current count.
    pub fn get(&self) -> u64 {
        self.inner.value.load(Ordering::Relaxed)
    }

    /// The counter's name.
    pub fn name(&self) -> &str {
        &self.inner.name
    }

    /// The current count as a [`Snapshot`] of kind `counter` with the dimension `value`.
    pub fn snapshot(&self) -> Snapshot {
        labeled(
            Snapshot::new(self.name(), MetricKind::Counter).with(VALUE, self.get()),
            &self.inner.labels,
        )
    }
}

impl SnapshotSource for Counter {
    fn collect(&self, into: &mut Snapshots) {
        let snapshot = self.snapshot();
        into.insert(snapshot.key(), snapshot);
    }
}

impl fmt::Debug for Counter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Counter")
            .field("name", &self.name())
            .field("value", &self.get())
            .finish()
    }
}

// ---------------------------------------------------------------------------------------
// Gauge
// ---------------------------------------------------------------------------------------

/// A floating-point value that goes up and down.
///
/// The value is an `f64` kept as its bits in one atomic word: `set` is a store, `add` and
/// `sub` a compare-and-swap loop. Clones share the value. It starts at `0.0`. Any `f64` is
/// accepted, NaN and infinities included, with the usual floating-point arithmetic (a NaN
/// stays NaN through `add` until the next `set`).
///
/// Its [`snapshot`](Self::snapshot) has kind [`MetricKind::Gauge`] and one dimension, `value`.
///
/// # Examples
///
/// ```
/// use mvx::metrics::Gauge;
///
/// let in_flight = Gauge::new("http.in_flight");
/// in_flight.inc();
/// in_flight.inc();
/// in_flight.dec();
/// assert_eq!(in_flight.get(), 1.0);
/// in_flight.set(0.5);
/// in_flight.add(2.0);
/// in_flight.sub(0.25);
/// assert_eq!(in_flight.get(), 2.25);
/// ```
#[derive(Clone)]
pub struct Gauge {
    inner: Arc<GaugeInner>,
}

struct GaugeInner {
    bits: CachePadded<AtomicU64>,
    name: Box<str>,
    labels: BTreeMap<String, String>,
}

impl Gauge {
    /// A gauge at `0.0`.
    ///
    /// Any name is accepted here; a [`Registry`](super::Registry) enforces its own naming
    /// rule when it creates instruments.
    pub fn new(name: impl Into<String>) -> Self {
        Self::with_labels(name, NO_LABELS)
    }

    /// A gauge at `0.0` for the series of `name` with `labels` (see [`Snapshot::labels`]).
    pub fn with_labels<K, V>(
        name: impl Into<String>,
        labels: impl IntoIterator<Item = (K, V)>,
    ) -> Self
    where
        K: Into<String>,
        V: Into<String>,
    {
        Self {
            inner: Arc::new(GaugeInner {
                bits: CachePadded(AtomicU64::new(0.0_f64.to_bits())),
                name: name.into().into_boxed_str(),
                labels: label_map(labels),
            }),
        }
    }

    /// The labels of the gauge's series; empty for most gauges.
    pub fn labels(&self) -> &BTreeMap<String, String> {
        &self.inner.labels
    }

    /// Sets the value.
    #[inline]
    pub fn set(&self, value: f64) {
        self.inner.bits.store(value.to_bits(), Ordering::Relaxed);
    }

    /// Adds `delta` (which may be negative).
    #[inline]
    pub fn add(&self, delta: f64) {
        add_f64(&self.inner.bits, delta);
    }

    /// Subtracts `delta`.
    #[inline]
    pub fn sub(&self, delta: f64) {
        add_f64(&self.inner.bits, -delta);
    }

    /// Adds one.
    #[inline]
    pub fn inc(&self) {
        self.add(1.0);
    }

    /// Subtracts one.
    #[inline]
    pub fn dec(&self) {
        self.add(-1.0);
    }

    /// The current value.
    pub fn get(&self) -> f64 {
        f64::from_bits(self.inner.bits.load(Ordering::Relaxed))
    }

    /// The gauge's name.
    pub fn name(&self) -> &str {
        &self.inner.name
    }

    /// The current value as a [`Snapshot`] of kind `gauge` with the dimension `value`.
    pub fn snapshot(&self) -> Snapshot {
        labeled(
            Snapshot::new(self.name(), MetricKind::Gauge).with(VALUE, self.get()),
            &self.inner.labels,
        )
    }
}

impl SnapshotSource for Gauge {
    fn collect(&self, into: &mut Snapshots) {
        let snapshot = self.snapshot();
        into.insert(snapshot.key(), snapshot);
    }
}

/// `labels` as a map: a name given twice keeps its last value.
fn label_map<K, V>(labels: impl IntoIterator<Item = (K, V)>) -> BTreeMap<String, String>
where
    K: Into<String>,
    V: Into<String>,
{
    labels
        .into_iter()
        .map(|(name, value)| (name.into(), value.into()))
        .collect()
}

/// `snapshot` with the labels of its series.
fn labeled(mut snapshot: Snapshot, labels: &BTreeMap<String, String>) -> Snapshot {
    if !labels.is_empty() {
        snapshot.labels = labels.clone();
    }
    snapshot
}

impl fmt::Debug for Gauge {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Gauge")
            .field("name", &self.name())
            .field("value", &self.get())
            .finish()
    }
}

/// Adds `delta` to the `f64` whose bits `word` holds.
#[inline]
fn add_f64(word: &AtomicU64, delta: f64) {
    let mut current = word.load(Ordering::Relaxed);
    loop {
        let next = (f64::from_bits(current) + delta).to_bits();
        match word.compare_exchange_weak(current, next, Ordering::Relaxed, Ordering::Relaxed) {
            Ok(_) => return,
            Err(actual) => current = actual,
        }
    }
}

// ---------------------------------------------------------------------------------------
// Histogram
// ---------------------------------------------------------------------------------------

/// Atomic words per cache-padded block (128 bytes, the unit `CachePadded` aligns to).
const CELLS_PER_BLOCK: usize = 16;
/// The most stripes a histogram has; a power of two.
const MAX_STRIPES: usize = 64;
/// The fewest stripes a histogram has; a power of two.
const MIN_STRIPES: usize = 8;
/// Up to this many bounds, a bucket is found by a linear count rather than a binary search.
const LINEAR_SEARCH_MAX: usize = 32;

type Block = CachePadded<[AtomicU64; CELLS_PER_BLOCK]>;

/// Observations counted into fixed buckets, with their count and sum, Prometheus style.
///
/// The bucket upper bounds are given at construction: finite, strictly increasing, at least
/// one. An implicit last bucket, `+Inf`, takes everything above the last bound. An
/// observation `v` lands in the first bucket whose bound `b` satisfies `v <= b` (Prometheus'
/// `le`, "less than or equal"): a value equal to a bound lands in that bound's bucket.
///
/// - **Negative values** are ordinary observations: they land in the first bucket whose
///   bound is `>=` them, and are added to the sum.
/// - **Infinities** are observations too: `+Inf` lands in the `+Inf` bucket, `-Inf` in the
///   first bucket, and the sum becomes infinite (or NaN once it has seen both), as in the
///   Prometheus clients.
/// - **NaN is rejected**: a NaN observation is counted in [`nan_count`](Self::nan_count)
///   (the snapshot dimension `nan`) and nowhere else — not in `count`, not in any bucket,
///   not in the sum. A NaN is not `<=` any bound, so it has no `le` bucket; and added to
///   the sum it would make the sum NaN for the life of the process. Keeping it out leaves
///   `count` equal to the `+Inf` bucket, as Prometheus requires, and `sum / count` a mean
///   of real values, while the separate count still shows that NaNs were recorded.
///
/// Recording is lock-free and allocation-free. `count` is not a separate word: it is the
/// total of the buckets.
///
/// Its [`snapshot`](Self::snapshot) has kind [`MetricKind::Histogram`] and the dimensions
/// `count`, `sum`, one `le:<bound>` per bound with the cumulative count (the bound written
/// with Rust's `Display` for `f64`, the shortest text that parses back to the same value,
/// such as `le:0.005` or `le:1`), `le:+Inf`, and `nan`.
///
/// # Concurrency
///
/// A histogram keeps its state in stripes, each on cache lines of its own, and reads add the
/// stripes up. The first time a thread records into any histogram, it claims a stripe
/// number for itself (the same number in every histogram) and keeps it until it exits. Only
/// that thread writes its stripe, so it records with a plain atomic load and store, without
/// a locked instruction, and threads recording into one histogram at once never touch the
/// same cache line. There are twice as many stripes as CPUs, at least 8 and at most 64
/// (128 bytes each for up to 13 bounds); when every stripe is taken, further threads share
/// one stripe and record there with atomic read-modify-write operations: as exact, only
/// slower under contention.
///
/// Every update is a relaxed atomic operation. An observation updates two words (its
/// bucket, then the sum), so a read racing with it may count the observation before its
/// value reaches the sum. Within one [`snapshot`](Self::snapshot) or
/// [`buckets`](Self::buckets) call, `count` always equals the `+Inf` bucket. Once the
/// recording threads have finished (joined, or otherwise synchronized with the reader),
/// every read is exact.
///
/// # Examples
///
/// ```
/// use mvx::metrics::Histogram;
///
/// let latency = Histogram::new("http.latency_seconds", [0.1, 0.5, 1.0])?;
/// latency.observe(0.05);
/// latency.observe(0.5); // equal to a bound: lands in that bound's bucket
/// latency.observe(3.0); // above every bound: the +Inf bucket
/// latency.observe(f64::NAN); // rejected, counted apart
///
/// assert_eq!(latency.count(), 3);
/// assert_eq!(latency.sum(), 3.55);
/// assert_eq!(latency.nan_count(), 1);
/// assert_eq!(
///     latency.buckets(),
///     vec![(0.1, 1), (0.5, 2), (1.0, 2), (f64::INFINITY, 3)]
/// );
/// let snapshot = latency.snapshot();
/// assert_eq!(snapshot.get("le:0.5"), Some(2u64.into()));
/// assert_eq!(snapshot.get("le:+Inf"), Some(3u64.into()));
/// # Ok::<(), mvx::metrics::RegistryError>(())
/// ```
#[derive(Clone)]
pub struct Histogram {
    inner: Arc<HistogramInner>,
}

/// The state of a histogram.
///
/// `blocks` holds `stripes` stripes of `stride` words each (`stride` a multiple of
/// [`CELLS_PER_BLOCK`], so that stripes never share a block). Within a stripe: one count per
/// bucket (`bounds.len() + 1` of them, the last for `+Inf`), then the sum's `f64` bits, then
/// the NaN count.
struct HistogramInner {
    bounds: Box<[f64]>,
    blocks: Box<[Block]>,
    stride: usize,
    stripes: usize,
    name: Box<str>,
    labels: BTreeMap<String, String>,
}

impl Histogram {
    /// The default bucket bounds of the Prometheus clients, for latencies in seconds:
    /// 5 ms to 10 s.
    pub const DEFAULT_BUCKETS: &'static [f64] = &[
        0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
    ];

    /// A histogram with the given bucket upper bounds, all counts at zero.
    ///
    /// Any name is accepted here; a [`Registry`](super::Registry) enforces its own naming
    /// rule when it creates instruments.
    ///
    /// # Errors
    ///
    /// The bounds are checked, never trusted:
    /// - [`RegistryError::EmptyBuckets`] if there is none;
    /// - [`RegistryError::NonFiniteBucket`] if one is NaN or infinite (the `+Inf` bucket is
    ///   implicit);
    /// - [`RegistryError::UnsortedBuckets`] if one is not greater than the one before it.
    ///
    /// # Examples
    ///
    /// ```
    /// use mvx::metrics::{Histogram, RegistryError};
    ///
    /// let sizes = Histogram::new("body.bytes", [1024.0, 65536.0, 1048576.0])?;
    /// assert_eq!(sizes.bounds(), &[1024.0, 65536.0, 1048576.0]);
    ///
    /// let error = Histogram::new("body.bytes", [10.0, 10.0]).unwrap_err();
    /// assert!(matches!(error, RegistryError::UnsortedBuckets { index: 1, .. }));
    /// # Ok::<(), RegistryError>(())
    /// ```
    pub fn new(
        name: impl Into<String>,
        bounds: impl IntoIterator<Item = f64>,
    ) -> Result<Self, RegistryError> {
        Self::with_labels(name, NO_LABELS, bounds)
    }

    /// A histogram for the series of `name` with `labels` (see [`Snapshot::labels`]).
    ///
    /// # Errors
    ///
    /// As [`new`](Self::new).
    pub fn with_labels<K, V>(
        name: impl Into<String>,
        labels: impl IntoIterator<Item = (K, V)>,
        bounds: impl IntoIterator<Item = f64>,
    ) -> Result<Self, RegistryError>
    where
        K: Into<String>,
        V: Into<String>,
    {
        let name = name.into();
        let bounds: Vec<f64> = bounds.into_iter().collect();
        validate_bounds(&name, &bounds)?;
        Ok(Self::from_valid(name, bounds, label_map(labels)))
    }

    /// The labels of the histogram's series; empty for most histograms.
    pub fn labels(&self) -> &BTreeMap<String, String> {
        &self.inner.labels
    }

    /// Builds a histogram from bounds already validated.
    fn from_valid(name: String, bounds: Vec<f64>, labels: BTreeMap<String, String>) -> Self {
        let cells = bounds.len() + 3;
        let stride = cells.div_ceil(CELLS_PER_BLOCK) * CELLS_PER_BLOCK;
        let stripes = stripe_count();
        let blocks = (0..stripes * stride / CELLS_PER_BLOCK)
            .map(|_| CachePadded(std::array::from_fn(|_| AtomicU64::new(0))))
            .collect();
        let inner = HistogramInner {
            bounds: bounds.into_boxed_slice(),
            blocks,
            stride,
            stripes,
            name: name.into_boxed_str(),
            labels,
        };
        // Every sum starts at +0.0, whose bits are 0: nothing more to initialize.
        debug_assert_eq!(0.0_f64.to_bits(), 0);
        Self {
            inner: Arc::new(inner),
        }
    }

    /// Records one observation.
    ///
    /// NaN is counted apart and otherwise ignored; see the [type docs](Self).
    #[inline]
    pub fn observe(&self, value: f64) {
        let inner = &*self.inner;
        let stripe = current_stripe();
        let owned = stripe != SHARED_STRIPE;
        let base = stripe * inner.stride;
        if value.is_nan() {
            inner.increment(base + inner.nan_cell(), owned);
            return;
        }
        let bucket = inner.bucket_of(value);
        inner.increment(base + bucket, owned);
        let sum = inner.cell(base + inner.sum_cell());
        if owned {
            let total = f64::from_bits(sum.load(Ordering::Relaxed)) + value;
            sum.store(total.to_bits(), Ordering::Relaxed);
        } else {
            add_f64(sum, value);
        }
    }

    /// The number of observations (NaN excluded).
    pub fn count(&self) -> u64 {
        self.bucket_counts().iter().sum()
    }

    /// The sum of every observation (NaN excluded).
    pub fn sum(&self) -> f64 {
        let inner = &*self.inner;
        inner
            .stripes()
            .map(|base| f64::from_bits(inner.cell(base + inner.sum_cell()).load(Ordering::Relaxed)))
            .sum()
    }

    /// The number of NaN observations, which nothing else counts.
    pub fn nan_count(&self) -> u64 {
        let inner = &*self.inner;
        inner
            .stripes()
            .map(|base| inner.cell(base + inner.nan_cell()).load(Ordering::Relaxed))
            .sum()
    }

    /// The cumulative bucket counts: for each bound, the number of observations `<=` it,
    /// then `(f64::INFINITY, count)`.
    ///
    /// Allocates the returned vector; meant for reading, not for the hot path.
    pub fn buckets(&self) -> Vec<(f64, u64)> {
        let counts = self.bucket_counts();
        let mut cumulative = 0;
        self.inner
            .bounds
            .iter()
            .copied()
            .chain(std::iter::once(f64::INFINITY))
            .zip(counts)
            .map(|(bound, count)| {
                cumulative += count;
                (bound, cumulative)
            })
            .collect()
    }

    /// The bucket upper bounds given at construction (without the implicit `+Inf`).
    pub fn bounds(&self) -> &[f64] {
        &self.inner.bounds
    }

    /// The histogram's name.
    pub fn name(&self) -> &str {
        &self.inner.name
    }

    /// The current state as a [`Snapshot`] of kind `histogram`: `count`, `sum`, cumulative
    /// `le:<bound>` counts ending with `le:+Inf`, and `nan`.
    ///
    /// # Examples
    ///
    /// ```
    /// use mvx::metrics::{MetricKind, Histogram, Value};
    ///
    /// let histogram = Histogram::new("queue.wait", [0.5, 2.0])?;
    /// histogram.observe(1.0);
    /// let snapshot = histogram.snapshot();
    /// assert_eq!(snapshot.kind, MetricKind::Histogram);
    /// let dimensions: Vec<(&str, Value)> =
    ///     snapshot.dimensions.iter().map(|(name, value)| (name.as_str(), *value)).collect();
    /// assert_eq!(
    ///     dimensions,
    ///     [
    ///         ("count", Value::U64(1)),
    ///         ("le:+Inf", Value::U64(1)),
    ///         ("le:0.5", Value::U64(0)),
    ///         ("le:2", Value::U64(1)),
    ///         ("nan", Value::U64(0)),
    ///         ("sum", Value::F64(1.0)),
    ///     ]
    /// );
    /// # Ok::<(), mvx::metrics::RegistryError>(())
    /// ```
    pub fn snapshot(&self) -> Snapshot {
        let buckets = self.buckets();
        let count = buckets.last().map_or(0, |&(_, count)| count);
        let mut snapshot = Snapshot::new(self.name(), MetricKind::Histogram)
            .with("count", count)
            .with("sum", self.sum())
            .with("nan", self.nan_count());
        for (bound, cumulative) in buckets {
            let dimension = if bound == f64::INFINITY {
                String::from("le:+Inf")
            } else {
                format!("le:{bound}")
            };
            snapshot.dimensions.insert(dimension, cumulative.into());
        }
        labeled(snapshot, &self.inner.labels)
    }

    /// The per-bucket (not cumulative) counts, `+Inf` last, added up over the stripes.
    fn bucket_counts(&self) -> Vec<u64> {
        let inner = &*self.inner;
        let mut counts = vec![0; inner.bounds.len() + 1];
        for base in inner.stripes() {
            for (bucket, count) in counts.iter_mut().enumerate() {
                *count += inner.cell(base + bucket).load(Ordering::Relaxed);
            }
        }
        counts
    }
}

impl HistogramInner {
    /// The index of the bucket `value` (not NaN) lands in: the first bound `>= value`, or
    /// `bounds.len()` (the `+Inf` bucket).
    #[inline]
    fn bucket_of(&self, value: f64) -> usize {
        if self.bounds.len() <= LINEAR_SEARCH_MAX {
            // The bounds are sorted, so the bounds below `value` are exactly those before its
            // bucket. Counting them has no data-dependent branch and vectorizes.
            self.bounds
                .iter()
                .map(|&bound| usize::from(bound < value))
                .sum()
        } else {
            self.bounds.partition_point(|&bound| bound < value)
        }
    }

    /// Adds one to the word at `index`, in a stripe this thread owns (`owned`) or in the
    /// shared stripe.
    #[inline]
    fn increment(&self, index: usize, owned: bool) {
        let cell = self.cell(index);
        if owned {
            // Only this thread writes this word (see `current_stripe`): a load and a store
            // lose no update, and readers still load the word atomically.
            cell.store(
                cell.load(Ordering::Relaxed).wrapping_add(1),
                Ordering::Relaxed,
            );
        } else {
            cell.fetch_add(1, Ordering::Relaxed);
        }
    }

    #[inline]
    fn sum_cell(&self) -> usize {
        self.bounds.len() + 1
    }

    #[inline]
    fn nan_cell(&self) -> usize {
        self.bounds.len() + 2
    }

    #[inline]
    fn cell(&self, index: usize) -> &AtomicU64 {
        &self.blocks[index / CELLS_PER_BLOCK][index % CELLS_PER_BLOCK]
    }

    /// The first word of each stripe.
    fn stripes(&self) -> impl Iterator<Item = usize> + '_ {
        (0..self.stripes).map(|stripe| stripe * self.stride)
    }
}

impl SnapshotSource for Histogram {
    fn collect(&self, into: &mut Snapshots) {
        let snapshot = self.snapshot();
        into.insert(snapshot.key(), snapshot);
    }
}

impl fmt::Debug for Histogram {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Histogram")
            .field("name", &self.name())
            .field("bounds", &self.bounds())
            .field("count", &self.count())
            .field("sum", &self.sum())
            .field("nan_count", &self.nan_count())
            .finish()
    }
}

/// Checks bucket bounds: at least one, each finite, each greater than the one before.
pub(super) fn validate_bounds(name: &str, bounds: &[f64]) -> Result<(), RegistryError> {
    if bounds.is_empty() {
        return Err(RegistryError::EmptyBuckets {
            name: name.to_owned(),
        });
    }
    for (index, &bound) in bounds.iter().enumerate() {
        if !bound.is_finite() {
            return Err(RegistryError::NonFiniteBucket {
                name: name.to_owned(),
                index,
                bound,
            });
        }
        if let Some(&previous) = index.checked_sub(1).and_then(|before| bounds.get(before)) {
            // `previous` is finite (checked on the step before), so `<=` is a total order here.
            if bound <= previous {
                return Err(RegistryError::UnsortedBuckets {
                    name: name.to_owned(),
                    index,
                    previous,
                    bound,
                });
            }
        }
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------
// Stripes
// ---------------------------------------------------------------------------------------

/// The number of stripes of every histogram: twice the available parallelism, rounded up
/// to a power of two, between [`MIN_STRIPES`] and [`MAX_STRIPES`].
fn stripe_count() -> usize {
    static COUNT: OnceLock<usize> = OnceLock::new();
    *COUNT.get_or_init(|| {
        let cpus = std::thread::available_parallelism().map_or(1, NonZeroUsize::get);
        cpus.saturating_mul(2)
            .next_power_of_two()
            .clamp(MIN_STRIPES, MAX_STRIPES)
    })
}

/// The stripe of threads that have none of their own. Never claimed.
const SHARED_STRIPE: usize = 0;
/// A thread's stripe before its first record.
const UNASSIGNED: usize = usize::MAX;

/// The stripe numbers claimed by live threads, one bit each; bit 0, the shared stripe, is
/// always set. A plain std atomic rather than one from `crate::sync`: a static needs a
/// `const` constructor.
static CLAIMED: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);

/// A thread's claim on a stripe number, given back when the thread exits.
struct StripeClaim(Cell<usize>);

impl Drop for StripeClaim {
    fn drop(&mut self) {
        let stripe = self.0.get();
        if stripe != UNASSIGNED && stripe != SHARED_STRIPE {
            release(&CLAIMED, stripe);
        }
    }
}

thread_local! {
    /// The stripe this thread records into.
    static STRIPE: StripeClaim = const { StripeClaim(Cell::new(UNASSIGNED)) };
}

/// The calling thread's stripe: its own, claimed on its first call, or [`SHARED_STRIPE`]
/// when every stripe is taken or while the thread's thread-local storage is torn down.
///
/// A stripe other than the shared one is written by its owner thread only, from its claim
/// until its `StripeClaim` is dropped at thread exit; after that drop this function returns
/// the shared stripe for the thread.
#[inline]
fn current_stripe() -> usize {
    STRIPE
        .try_with(|claim| match claim.0.get() {
            UNASSIGNED => claim_stripe(&claim.0),
            stripe => stripe,
        })
        .unwrap_or(SHARED_STRIPE)
}

/// Claims a stripe for this thread and remembers it in `claim`.
#[cold]
fn claim_stripe(claim: &Cell<usize>) -> usize {
    let stripe = claim_from(&CLAIMED, stripe_count());
    claim.set(stripe);
    stripe
}

/// Sets the lowest clear bit below `count` in `claimed` and returns its number, or returns
/// [`SHARED_STRIPE`] if there is none.
fn claim_from(claimed: &std::sync::atomic::AtomicU64, count: usize) -> usize {
    use std::sync::atomic::Ordering::{Acquire, Relaxed};
    let usable = if count >= 64 {
        u64::MAX
    } else {
        (1_u64 << count) - 1
    };
    let mut current = claimed.load(Relaxed);
    loop {
        let free = usable & !current & !(1 << SHARED_STRIPE);
        if free == 0 {
            return SHARED_STRIPE;
        }
        let stripe = free.trailing_zeros() as usize;
        // Acquire: this thread sees every store of the stripe's previous owner.
        match claimed.compare_exchange_weak(current, current | (1 << stripe), Acquire, Relaxed) {
            Ok(_) => return stripe,
            Err(actual) => current = actual,
        }
    }
}

/// Gives `stripe` back.
fn release(claimed: &std::sync::atomic::AtomicU64, stripe: usize) {
    // Release: the next owner's claim (Acquire) sees every store of this thread.
    claimed.fetch_and(!(1 << stripe), std::sync::atomic::Ordering::Release);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stripes_never_share_a_block() {
        for bounds in [1_u32, 12, 13, 14, 29, 30] {
            let histogram = Histogram::new("h", (0..bounds).map(f64::from)).expect("valid bounds");
            let inner = &*histogram.inner;
            assert_eq!(inner.stride % CELLS_PER_BLOCK, 0);
            assert!(inner.stride >= inner.bounds.len() + 3);
            assert_eq!(
                inner.blocks.len() * CELLS_PER_BLOCK,
                inner.stride * stripe_count()
            );
        }
    }

    #[test]
    fn stripe_count_is_a_power_of_two_in_range() {
        let count = stripe_count();
        assert!(count.is_power_of_two());
        assert!((MIN_STRIPES..=MAX_STRIPES).contains(&count));
    }

    #[test]
    fn bucket_of_follows_le_semantics() {
        let histogram = Histogram::new("h", [-1.0, 0.0, 2.5]).expect("valid bounds");
        let inner = &*histogram.inner;
        let cases = [
            (f64::NEG_INFINITY, 0),
            (-7.0, 0),
            (-1.0, 0),
            (-0.5, 1),
            (-0.0, 1),
            (0.0, 1),
            (f64::MIN_POSITIVE, 2),
            (2.5, 2),
            (2.500_000_000_000_001, 3),
            (f64::INFINITY, 3),
        ];
        for (value, bucket) in cases {
            assert_eq!(inner.bucket_of(value), bucket, "value {value}");
        }
    }

    #[test]
    fn linear_count_and_binary_search_agree() {
        let bounds: Vec<f64> = (0..80).map(|i| f64::from(i) * 0.5 - 10.0).collect();
        for len in [1, 2, LINEAR_SEARCH_MAX, LINEAR_SEARCH_MAX + 1, 80] {
            let histogram = Histogram::new("h", bounds[..len].iter().copied()).expect("valid");
            let inner = &*histogram.inner;
            for step in -100..200 {
                let value = f64::from(step) * 0.25 - 10.0;
                let expected = bounds[..len].partition_point(|&bound| bound < value);
                let linear: usize = bounds[..len]
                    .iter()
                    .map(|&bound| usize::from(bound < value))
                    .sum();
                assert_eq!(linear, expected, "len {len}, value {value}");
                assert_eq!(inner.bucket_of(value), expected, "len {len}, value {value}");
            }
        }
    }

    #[test]
    fn each_thread_keeps_its_stripe() {
        let (first, second) = std::thread::spawn(|| (current_stripe(), current_stripe()))
            .join()
            .expect("thread ran");
        assert_eq!(first, second);
        assert!(first < stripe_count());
    }

    #[test]
    fn claims_take_the_lowest_free_stripe_and_fall_back_to_the_shared_one() {
        use std::sync::atomic::AtomicU64 as StdAtomicU64;
        let claimed = StdAtomicU64::new(1);
        assert_eq!(claim_from(&claimed, 4), 1);
        assert_eq!(claim_from(&claimed, 4), 2);
        assert_eq!(claim_from(&claimed, 4), 3);
        assert_eq!(claim_from(&claimed, 4), SHARED_STRIPE);
        release(&claimed, 2);
        assert_eq!(claim_from(&claimed, 4), 2);
        assert_eq!(claimed.load(std::sync::atomic::Ordering::Relaxed), 0b1111);

        let all = StdAtomicU64::new(1);
        let stripes: Vec<usize> = (0..64).map(|_| claim_from(&all, 64)).collect();
        assert_eq!(stripes[..63], (1..64).collect::<Vec<_>>()[..]);
        assert_eq!(stripes[63], SHARED_STRIPE);
    }

    #[test]
    fn live_threads_never_share_an_owned_stripe() {
        const THREADS: usize = 12;
        let barrier = std::sync::Barrier::new(THREADS);
        let stripes: Vec<usize> = std::thread::scope(|scope| {
            let threads: Vec<_> = (0..THREADS)
                .map(|_| {
                    scope.spawn(|| {
                        let stripe = current_stripe();
                        // Hold the claim until every thread has one.
                        barrier.wait();
                        stripe
                    })
                })
                .collect();
            threads
                .into_iter()
                .map(|thread| thread.join().expect("thread ran"))
                .collect()
        });
        let mut owned: Vec<usize> = stripes
            .iter()
            .copied()
            .filter(|&stripe| stripe != SHARED_STRIPE)
            .collect();
        let before = owned.len();
        owned.sort_unstable();
        owned.dedup();
        assert_eq!(owned.len(), before, "stripes {stripes:?}");
        assert!(owned.iter().all(|&stripe| stripe < stripe_count()));
    }

    #[test]
    fn reads_add_the_stripes_up() {
        let histogram = Histogram::new("h", [1.0]).expect("valid bounds");
        let threads: Vec<_> = (0..3)
            .map(|_| {
                let histogram = histogram.clone();
                std::thread::spawn(move || histogram.observe(0.5))
            })
            .collect();
        for thread in threads {
            thread.join().expect("thread ran");
        }
        assert_eq!(histogram.count(), 3);
        assert_eq!(histogram.sum(), 1.5);
    }
}
