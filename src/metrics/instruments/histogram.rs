//! [`Histogram`]: observations counted into fixed buckets, in per-thread stripes (see
//! [`stripes`](super::stripes)).
//!
//! One concept, kept whole at about 500 lines: the layout of the stripes, recording and
//! reading depend on each other, and much of the file is the type's docs and tests.

use std::collections::BTreeMap;
use std::fmt;

use super::stripes::{SHARED_STRIPE, current_stripe, stripe_count};
use super::{NO_LABELS, Registration, add_f64, label_map, labeled, unix_now};
use crate::metrics::{MetricKind, RegistryError, Snapshot, SnapshotSource, Snapshots};
use crate::sync::{Arc, AtomicU64, CachePadded, Ordering};

/// Atomic words per cache-padded block (128 bytes, the unit `CachePadded` aligns to).
const CELLS_PER_BLOCK: usize = 16;
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
    registration: Registration,
    /// When the histogram was made, in seconds since the Unix epoch.
    created: Option<f64>,
}

impl Histogram {
    /// The default bucket bounds of the Prometheus clients, for latencies in seconds:
    /// 5 ms to 10 s.
    pub const DEFAULT_BUCKETS: &'static [f64] = &[
        0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
    ];

    /// A histogram with the given bucket upper bounds, all counts at zero.
    ///
    /// Any name is accepted here; a [`Registry`](crate::metrics::Registry) enforces its own naming
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
        Self::registered(
            name.into(),
            label_map(labels),
            bounds.into_iter().collect(),
            false,
        )
    }

    /// A histogram made by a [`Registry`](crate::metrics::Registry): the overflow series of
    /// its name if `overflow`.
    ///
    /// # Errors
    ///
    /// As [`new`](Self::new).
    pub(crate) fn registered(
        name: String,
        labels: BTreeMap<String, String>,
        bounds: Vec<f64>,
        overflow: bool,
    ) -> Result<Self, RegistryError> {
        validate_bounds(&name, &bounds)?;
        Ok(Self::from_valid(name, bounds, labels, overflow))
    }

    /// Whether this is the overflow series of its name: the series a
    /// [`Registry`](crate::metrics::Registry) hands out for label sets past its
    /// [series limit](crate::metrics::Registry#series-limit).
    pub fn is_overflow(&self) -> bool {
        self.inner.registration.overflow
    }

    /// Whether the [`Registry`](crate::metrics::Registry) that made this histogram has
    /// unregistered it since ([`Registry::unregister`](crate::metrics::Registry::unregister)):
    /// the histogram still records, but no exposition reads it any more. Always `false` for
    /// a histogram made outside a registry.
    pub fn is_unregistered(&self) -> bool {
        self.inner.registration.is_unregistered()
    }

    /// Marks the histogram unregistered (see [`is_unregistered`](Self::is_unregistered)).
    pub(crate) fn mark_unregistered(&self) {
        self.inner.registration.mark_unregistered();
    }

    /// The labels of the histogram's series; empty for most histograms.
    pub fn labels(&self) -> &BTreeMap<String, String> {
        &self.inner.labels
    }

    /// Builds a histogram from bounds already validated.
    fn from_valid(
        name: String,
        bounds: Vec<f64>,
        labels: BTreeMap<String, String>,
        overflow: bool,
    ) -> Self {
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
            registration: Registration::new(overflow),
            created: unix_now(),
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
    /// `le:<bound>` counts ending with `le:+Inf`, and `nan`; the time the histogram was made
    /// is its [`created`](Snapshot::created).
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
        snapshot.created = self.inner.created;
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
pub(in crate::metrics) fn validate_bounds(name: &str, bounds: &[f64]) -> Result<(), RegistryError> {
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
