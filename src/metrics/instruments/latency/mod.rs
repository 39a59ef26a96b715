//! [`LatencyHistogram`]: latencies kept within a bounded relative error, HdrHistogram's
//! log-linear buckets in per-thread stripes, with interval reads that lose no record.
//!
//! (For maintainers: one concept, the histogram's stripes, records and reads, which depend
//! on one another; some 850 lines, 40 % of them the type's docs.)
//!
//! The parts, one file each: the bucket arithmetic and its error bound (`layout`), the
//! configuration (`config`), what is read (`distribution`), HdrHistogram's text output
//! (`hgrm`) and a recorder metric (`metric`). This file holds the histogram: its stripes,
//! recording, and the reads that add the stripes up.

mod config;
mod distribution;
mod hgrm;
mod layout;
mod metric;

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

pub use self::config::{LatencyConfig, LatencyConfigError};
pub use self::distribution::{LatencyDistribution, Percentile, Percentiles, Recorded};
pub use self::metric::LatencyMetric;

use self::config::nanos;
use self::layout::Layout;
use super::stripes::{SHARED_STRIPE, current_stripe, stripe_count};
use super::{NO_LABELS, Registration, label_map, labeled, unix_now};
use crate::metrics::{Metadata, MetricKind, RegistryError, Snapshot, SnapshotSource, Snapshots};
use crate::sync::{Arc, AtomicU64, Mutex, OnceLock, Ordering, lock};

/// Words of a stripe before its counts: the sum, the clamped and refused counts, then
/// padding to a 128-byte block, so that no other allocation's hot words share its lines.
#[cfg(not(loom))]
const HEADER: usize = 16;
/// Words of a stripe after its counts, padding as [`HEADER`]'s.
#[cfg(not(loom))]
const TRAILER: usize = 16;
// Under loom every word is a modelled atomic: no padding.
#[cfg(loom)]
const HEADER: usize = 3;
#[cfg(loom)]
const TRAILER: usize = 0;
/// The word of a stripe holding the sum of its records, in nanoseconds (saturating).
const SUM: usize = 0;
/// The word of a stripe counting its clamped records.
const CLAMPED: usize = 1;
/// The word of a stripe counting its refused records.
const REFUSED: usize = 2;

/// Latencies, each kept within a bounded relative error, for percentiles from the hot path
/// of a benchmark harness or a service: HdrHistogram's layout, recorded lock-free into
/// per-thread stripes, read while recording goes on, exposed as a Prometheus summary.
///
/// [`Histogram`](super::Histogram)'s fixed buckets answer "how many requests took under
/// 100 ms"; a p99 read from them can be off by a whole bucket. A latency histogram answers
/// "what was the p99" to within 1 %.
///
/// # Accuracy
///
/// Values are whole nanoseconds. A [`LatencyConfig`] sets the range, default 1 ns to 1 h,
/// and the relative error `ε`, default 1 %. The histogram keeps, for each power of two,
/// `2^h` sub-buckets, `2^h` the smallest power of two with `1 / 2^h <= ε` (128 for 1 %: the
/// layout of HdrHistogram with 2 significant digits). Every value read — a quantile, the
/// minimum, the maximum, a step of a percentile report — is a value of the sub-bucket of a
/// recorded value `x`, and a sub-bucket at `x` is less than `x / 2^h` wide; so the value
/// read is within `ε` of `x` (`|r - x| < x / 2^h <= ε·x`), for every `x` of the range. The
/// proof, and how the layout differs from HdrHistogram's for a `lowest` above `2^h`, are in
/// the docs of the `layout` module (src/metrics/instruments/latency/layout.rs). Quantiles are
/// HdrHistogram's (`valueAtQuantile`: the highest value of the sub-bucket of the record of
/// rank `ceil(q·count)`), so for the default configuration they are the same numbers the
/// `hdrhistogram` crate gives for the same records; tests/metrics_latency_accuracy.rs holds
/// both to the exact percentiles of uniform, log-normal and bimodal samples.
///
/// # Inputs that are out of range, or not latencies
///
/// No input panics:
/// - a value **above the range's highest** is recorded as the highest and counted in
///   [`clamped`](Self::clamped) (so a quantile that falls on it reads as the highest value
///   of the range, "at least this"); its sum counts it as the highest;
/// - a value **below the range's lowest** is recorded as it is, within `lowest · ε` of
///   itself (0 is recorded as 0);
/// - seconds given as an `f64` ([`record_secs`](Self::record_secs)) that are **NaN or
///   negative** are refused: not recorded, counted in [`refused`](Self::refused) (a
///   `Duration` is never negative); `+Inf` is clamped;
/// - [`record_corrected`](Self::record_corrected) with an expected interval of zero records
///   the value alone; its synthesized values are counted in bounded time (below).
///
/// # Recording
///
/// [`record`](Self::record), [`record_n`](Self::record_n), [`record_nanos`](Self::record_nanos),
/// [`record_secs`](Self::record_secs) and [`record_corrected`](Self::record_corrected) are
/// lock-free and allocation-free once the calling thread has recorded into the histogram
/// once (its first record allocates its stripe). The state is striped as
/// [`Histogram`](super::Histogram)'s is: each thread claims a stripe number of its own on
/// its first record into any histogram and keeps it until it exits; only that thread writes
/// its stripe, with a plain atomic load and store per word (no locked instruction), and two
/// threads recording at once never write the same cache line. A record writes two words of
/// its stripe: its sub-bucket's count, then the sum. Past twice as many threads as CPUs (at
/// least 8, at most 64 stripes), further threads share one stripe and record there with
/// atomic read-modify-write operations.
///
/// # Reading, intervals and resets
///
/// Counts only grow: no record is ever taken back out of a stripe. A read adds the stripes
/// up ([`distribution`](Self::distribution)); an interval
/// ([`take_interval`](Self::take_interval)) is the difference between this read and the
/// previous one, and a [`reset`](Self::reset) only moves the point reads count from. So a
/// record made while an interval is taken lands in exactly one interval — the first whose
/// read sees its count — and the intervals add up to every record, exactly: no record is
/// lost or counted twice, however reads and records race (tests/metrics_latency.rs checks
/// it with racing threads; tests/loom_latency.rs in every interleaving loom explores). A
/// record's two words (its count, then the sum) are read one after the other, so a read
/// that races with it may see one of them and not the other: its count without its value in
/// the sum, or its value in the sum without its count. The part the read missed lands in
/// the next interval, and the counts and the sums of the intervals each still add up to the
/// total. Reads (and resets) take a lock that only readers take, never the recording
/// threads.
///
/// # Memory
///
/// The counts are `(buckets + 1)·2^h` words of 8 bytes, where `2^h` is set by ε and
/// `buckets` by how many powers of two the range spans: for the default range and relative
/// error, 35 buckets (the first of 256 sub-buckets, 34 more of 128), 4,608 counts, 36,864
/// bytes. Each recording thread has a stripe of its own, the counts and 256 bytes of
/// padding: **37,120 bytes (36.25 KiB) per recording thread**
/// ([`bytes_per_thread`](Self::bytes_per_thread)), allocated on the thread's first record
/// into the histogram. With `n` recording threads a histogram takes `n × 37,120` bytes plus
/// a fixed part: 24 bytes per stripe slot (8 to 64 slots, twice the CPUs: 192 bytes to
/// 1.5 KiB) and a few hundred bytes of state, besides its name, labels and quantiles. Each
/// read allocates one more copy of the counts (36,864 bytes), and the histogram keeps one as
/// the base of intervals once `take_interval` is called and one as the base of reads once it
/// is `reset`. The `hdrhistogram` crate's histogram of the same range and 2 significant
/// digits is one array of the same 4,608 counts (36,864 bytes), and needs a lock, or one
/// histogram per thread, to be shared. tests/metrics_latency_allocations.rs checks these
/// figures against the allocation a first record makes and against the crate's.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use mvx::metrics::LatencyHistogram;
///
/// let latency = LatencyHistogram::new("rpc.latency"); // 1 ns to 1 h, within 1 %
/// latency.record(Duration::from_micros(250));
/// latency.record(Duration::from_micros(750));
/// latency.record_secs(f64::NAN); // refused, counted apart
///
/// let distribution = latency.distribution();
/// assert_eq!(distribution.count(), 2);
/// assert_eq!(distribution.mean(), Some(Duration::from_micros(500)));
/// let p50 = distribution.quantile(0.5).unwrap();
/// assert!(p50.abs_diff(Duration::from_micros(250)) <= Duration::from_micros(250) / 100);
/// assert_eq!(latency.refused(), 1);
/// ```
#[derive(Clone)]
pub struct LatencyHistogram {
    inner: Arc<Inner>,
}

/// The state of a latency histogram.
struct Inner {
    layout: Layout,
    config: LatencyConfig,
    /// Digits after the point in HdrHistogram's text output.
    significant_digits: usize,
    /// One stripe per stripe number, allocated when a thread of that number first records:
    /// [`HEADER`] words, one count per sub-bucket, [`TRAILER`] words.
    stripes: Box<[OnceLock<Box<[AtomicU64]>>]>,
    name: Box<str>,
    labels: BTreeMap<String, String>,
    registration: Registration,
    /// What reads subtract and remember; recording never takes this lock.
    reads: Mutex<Reads>,
}

/// The bases of reads: the raw counts (every record since the histogram was made) at the
/// last reset, and at the last interval read.
struct Reads {
    reset: Option<LatencyDistribution>,
    interval: Option<LatencyDistribution>,
    /// When the counts read started: the histogram made, or last reset.
    created: Option<f64>,
}

impl LatencyHistogram {
    /// A latency histogram with the default [`LatencyConfig`]: 1 ns to 1 h, 1 % relative
    /// error, quantiles 0.5, 0.9, 0.99, 0.999 and 1 in its snapshots.
    pub fn new(name: impl Into<String>) -> Self {
        let config = LatencyConfig::default();
        // The default configuration is valid (a unit test checks it): this is its layout.
        let layout = config
            .layout()
            .unwrap_or_else(|_| Layout::new(1, 3_600_000_000_000, 128));
        Self::from_valid(name.into(), BTreeMap::new(), config, layout, false)
    }

    /// A latency histogram with `config`.
    ///
    /// # Errors
    ///
    /// [`RegistryError::LatencyConfig`] if `config` is not valid (see
    /// [`LatencyConfig::validate`]).
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use mvx::metrics::{LatencyConfig, LatencyHistogram, RegistryError};
    ///
    /// let config = LatencyConfig::default().range(Duration::from_micros(1), Duration::from_secs(10));
    /// let latency = LatencyHistogram::with_config("disk.read", config)?;
    /// latency.record(Duration::from_secs(60)); // above the range: counted as 10 s
    /// assert_eq!(latency.clamped(), 1);
    ///
    /// let refused = LatencyHistogram::with_config("x", LatencyConfig::default().relative_error(2.0));
    /// assert!(matches!(refused, Err(RegistryError::LatencyConfig { .. })));
    /// # Ok::<(), RegistryError>(())
    /// ```
    pub fn with_config(
        name: impl Into<String>,
        config: LatencyConfig,
    ) -> Result<Self, RegistryError> {
        Self::with_labels(name, NO_LABELS, config)
    }

    /// A latency histogram for the series of `name` with `labels` (see [`Snapshot::labels`]).
    ///
    /// # Errors
    ///
    /// As [`with_config`](Self::with_config).
    pub fn with_labels<K, V>(
        name: impl Into<String>,
        labels: impl IntoIterator<Item = (K, V)>,
        config: LatencyConfig,
    ) -> Result<Self, RegistryError>
    where
        K: Into<String>,
        V: Into<String>,
    {
        Self::registered(name.into(), label_map(labels), config, false)
    }

    /// A latency histogram made by a [`Registry`](crate::metrics::Registry): the overflow
    /// series of its name if `overflow`.
    ///
    /// # Errors
    ///
    /// As [`with_config`](Self::with_config).
    pub(crate) fn registered(
        name: String,
        labels: BTreeMap<String, String>,
        config: LatencyConfig,
        overflow: bool,
    ) -> Result<Self, RegistryError> {
        match config.layout() {
            Ok(layout) => Ok(Self::from_valid(name, labels, config, layout, overflow)),
            Err(error) => Err(RegistryError::LatencyConfig { name, error }),
        }
    }

    fn from_valid(
        name: String,
        labels: BTreeMap<String, String>,
        config: LatencyConfig,
        layout: Layout,
        overflow: bool,
    ) -> Self {
        let inner = Inner {
            layout,
            significant_digits: config.significant_digits_shown(),
            config,
            stripes: (0..stripe_count()).map(|_| OnceLock::new()).collect(),
            name: name.into_boxed_str(),
            labels,
            registration: Registration::new(overflow),
            reads: Mutex::new(Reads {
                reset: None,
                interval: None,
                created: unix_now(),
            }),
        };
        Self {
            inner: Arc::new(inner),
        }
    }

    /// Records one latency.
    ///
    /// A latency above the range's highest value is counted as that value (see
    /// [`clamped`](Self::clamped)).
    #[inline]
    pub fn record(&self, latency: Duration) {
        self.record_nanos(nanos(latency));
    }

    /// Records `count` latencies of the same value (nothing if `count` is 0).
    #[inline]
    pub fn record_n(&self, latency: Duration, count: u64) {
        if count > 0 {
            let (words, owned) = self.inner.stripe();
            self.inner.add_value(words, owned, nanos(latency), count);
        }
    }

    /// Records one latency given in nanoseconds.
    #[inline]
    pub fn record_nanos(&self, nanos: u64) {
        let (words, owned) = self.inner.stripe();
        self.inner.add_value(words, owned, nanos, 1);
    }

    /// Records one latency given in seconds (rounded to the nanosecond). NaN and negative
    /// values are refused and counted in [`refused`](Self::refused); `+Inf` is clamped.
    #[inline]
    pub fn record_secs(&self, seconds: f64) {
        let (words, owned) = self.inner.stripe();
        // Also false for NaN.
        if seconds >= 0.0 {
            // `as` saturates: +Inf and values past `u64::MAX` ns become `u64::MAX`.
            let nanos = (seconds * 1e9).round() as u64;
            self.inner.add_value(words, owned, nanos, 1);
        } else {
            add(&words[REFUSED], 1, owned);
        }
    }

    /// Records `latency`, corrected for coordinated omission as HdrHistogram's
    /// `recordValueWithExpectedInterval` (the `hdrhistogram` crate's `record_correct`) does.
    ///
    /// A load generator that waits for each answer before it sends the next request
    /// (closed loop) sends nothing while a slow answer is pending: the requests that a
    /// steady schedule would have sent meanwhile, and that would have waited too, are never
    /// measured. With `expected_interval` the time between requests of that schedule, a
    /// latency `L` above it is recorded together with the latencies those requests would
    /// have seen: `L - expected_interval`, `L - 2·expected_interval`, … down to the last one
    /// at or above `expected_interval`. An `expected_interval` of zero records `latency`
    /// alone.
    ///
    /// The synthesized values are added a sub-bucket at a time (a count of `n` values in
    /// one step), so a call costs at most one step per sub-bucket they cross, however long
    /// `latency` is against `expected_interval`; no allocation.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use mvx::metrics::LatencyHistogram;
    ///
    /// let latency = LatencyHistogram::new("rpc.latency");
    /// // One request every 10 ms; one answer took 50 ms.
    /// latency.record_corrected(Duration::from_millis(50), Duration::from_millis(10));
    /// let distribution = latency.distribution();
    /// assert_eq!(distribution.count(), 5); // 50, 40, 30, 20 and 10 ms
    /// assert_eq!(distribution.sum(), Duration::from_millis(150));
    /// ```
    pub fn record_corrected(&self, latency: Duration, expected_interval: Duration) {
        let (value, interval) = (nanos(latency), nanos(expected_interval));
        let inner = &*self.inner;
        let (words, owned) = inner.stripe();
        inner.add_value(words, owned, value, 1);
        if interval == 0 || value <= interval {
            return;
        }
        // The missing values, from the highest down: `missing`, `missing - interval`, ...,
        // while at or above `interval`.
        let mut missing = value - interval;
        while missing >= interval {
            let highest = inner.layout.highest;
            // The lowest value of the run of missing values that land where `missing` does.
            let floor = if missing > highest {
                highest + 1
            } else {
                inner.layout.lowest_equivalent(missing)
            }
            .max(interval);
            let run = (missing - floor) / interval + 1;
            // Their sum: `run` values from `missing` down, `interval` apart.
            let sum = u128::from(run) * u128::from(missing)
                - u128::from(interval) * (u128::from(run) * u128::from(run - 1) / 2);
            inner.add_run(words, owned, missing, run, sum);
            // `run·interval <= missing - floor + interval <= missing`: no underflow.
            missing -= run * interval;
        }
    }

    /// Adds the records of `other` (a distribution of this histogram or of another one) to
    /// this histogram, as [`LatencyDistribution::merge`] does, from the calling thread.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use mvx::metrics::LatencyHistogram;
    ///
    /// let total = LatencyHistogram::new("all.latency");
    /// let worker = LatencyHistogram::new("worker.latency");
    /// worker.record(Duration::from_millis(3));
    /// total.record(Duration::from_millis(1));
    /// total.merge(&worker.distribution());
    /// assert_eq!(total.count(), 2);
    /// assert_eq!(total.sum(), Duration::from_millis(4));
    /// ```
    pub fn merge(&self, other: &LatencyDistribution) {
        let inner = &*self.inner;
        let converted;
        let other = if other.layout == inner.layout {
            other
        } else {
            let mut into = LatencyDistribution::empty(inner.layout, inner.significant_digits);
            into.merge(other);
            converted = into;
            &converted
        };
        let (words, owned) = inner.stripe();
        for (index, &count) in other
            .counts
            .iter()
            .enumerate()
            .filter(|(_, count)| **count > 0)
        {
            add(&words[HEADER + index], count, owned);
        }
        add(
            &words[SUM],
            u64::try_from(other.sum).unwrap_or(u64::MAX),
            owned,
        );
        add(&words[CLAMPED], other.clamped, owned);
        add(&words[REFUSED], other.refused, owned);
    }

    /// Every record since the histogram was made or last [`reset`](Self::reset).
    ///
    /// Allocates a copy of the counts (36 KiB for the default configuration) and adds the
    /// stripes up; take one distribution for several reads.
    pub fn distribution(&self) -> LatencyDistribution {
        self.inner.read().0
    }

    /// The records since the previous `take_interval` (or since the histogram was made or
    /// last [`reset`](Self::reset), whichever came last), and starts the next interval: for
    /// "every 10 s" reports while recording goes on.
    ///
    /// Loses no record: a record made while the interval is taken is in this interval or
    /// the next one, never in both or neither, and the intervals add up to
    /// [`distribution`](Self::distribution) (see the type docs, "Reading, intervals and
    /// resets"). The cumulative reads are not affected. One interval sequence per
    /// histogram: two readers taking intervals of one histogram split its records between
    /// them.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use mvx::metrics::LatencyHistogram;
    ///
    /// let latency = LatencyHistogram::new("rpc.latency");
    /// latency.record(Duration::from_millis(1));
    /// assert_eq!(latency.take_interval().count(), 1);
    /// latency.record(Duration::from_millis(2));
    /// latency.record(Duration::from_millis(3));
    /// let interval = latency.take_interval();
    /// assert_eq!((interval.count(), interval.sum()), (2, Duration::from_millis(5)));
    /// assert_eq!(latency.count(), 3);
    /// ```
    pub fn take_interval(&self) -> LatencyDistribution {
        let mut reads = lock(&self.inner.reads);
        let raw = self.inner.read_raw();
        let base = reads.interval.as_ref().or(reads.reset.as_ref());
        let interval = match base {
            Some(base) => raw.clone().since(base),
            None => raw.clone(),
        };
        reads.interval = Some(raw);
        interval
    }

    /// Discards every record made so far (for a benchmark: the warm-up): reads, intervals
    /// and the Prometheus summary start from zero, and the summary's `_created` time is now.
    ///
    /// A record made while the reset runs is discarded or kept, never half of it (its count
    /// and its value go the same way, except in the race of the type docs: one of them may
    /// be discarded and the other kept). Prometheus sees the summary's
    /// `_count` and `_sum` go down, a counter reset.
    pub fn reset(&self) {
        let mut reads = lock(&self.inner.reads);
        let raw = self.inner.read_raw();
        reads.interval = Some(raw.clone());
        reads.reset = Some(raw);
        reads.created = unix_now();
    }

    /// The number of records since the histogram was made or reset (clamped ones
    /// included, refused ones not). Reads a [`distribution`](Self::distribution).
    pub fn count(&self) -> u64 {
        self.distribution().count()
    }

    /// The sum of the records since the histogram was made or reset. Reads a
    /// [`distribution`](Self::distribution).
    pub fn sum(&self) -> Duration {
        self.distribution().sum()
    }

    /// The mean of the records; `None` if there is none. Reads a
    /// [`distribution`](Self::distribution).
    pub fn mean(&self) -> Option<Duration> {
        self.distribution().mean()
    }

    /// The lowest record (see [`LatencyDistribution::min`]). Reads a
    /// [`distribution`](Self::distribution).
    pub fn min(&self) -> Option<Duration> {
        self.distribution().min()
    }

    /// The highest record (see [`LatencyDistribution::max`]). Reads a
    /// [`distribution`](Self::distribution).
    pub fn max(&self) -> Option<Duration> {
        self.distribution().max()
    }

    /// The value at quantile `q` (see [`LatencyDistribution::quantile`]). Reads a
    /// [`distribution`](Self::distribution).
    pub fn quantile(&self, q: f64) -> Option<Duration> {
        self.distribution().quantile(q)
    }

    /// How many records were above the range's highest value and counted as that value,
    /// since the histogram was made or reset.
    pub fn clamped(&self) -> u64 {
        self.distribution().clamped()
    }

    /// How many records were refused (NaN or negative seconds given to
    /// [`record_secs`](Self::record_secs)), since the histogram was made or reset. They are
    /// in no count, quantile or sum.
    pub fn refused(&self) -> u64 {
        self.distribution().refused()
    }

    /// The relative error every value read is within (see
    /// [`LatencyDistribution::relative_error_bound`]).
    pub fn relative_error_bound(&self) -> f64 {
        1.0 / self.inner.layout.half_count() as f64
    }

    /// The bytes of one recording thread's stripe, which its first record into the
    /// histogram allocates: 8 per count and 256 of padding. 37,120 for the default range and
    /// relative error (see the type docs, "Memory").
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use mvx::metrics::{LatencyConfig, LatencyHistogram};
    ///
    /// assert_eq!(LatencyHistogram::new("rpc.latency").bytes_per_thread(), 37_120);
    /// // 1 µs to 1 min within 0.1 %: 26 buckets, (26 + 1) × 1,024 counts.
    /// let config = LatencyConfig::default()
    ///     .range(Duration::from_micros(1), Duration::from_secs(60))
    ///     .significant_digits(3);
    /// let fine = LatencyHistogram::with_config("disk.read", config)?;
    /// assert_eq!(fine.bytes_per_thread(), 8 * 27 * 1024 + 256);
    /// # Ok::<(), mvx::metrics::RegistryError>(())
    /// ```
    pub fn bytes_per_thread(&self) -> usize {
        (HEADER + self.inner.layout.len() + TRAILER) * size_of::<AtomicU64>()
    }

    /// The configuration the histogram was made with.
    pub fn config(&self) -> &LatencyConfig {
        &self.inner.config
    }

    /// The histogram's name.
    pub fn name(&self) -> &str {
        &self.inner.name
    }

    /// The labels of the histogram's series; empty for most histograms.
    pub fn labels(&self) -> &BTreeMap<String, String> {
        &self.inner.labels
    }

    /// Whether this is the overflow series of its name (see
    /// [`Histogram::is_overflow`](super::Histogram::is_overflow)).
    pub fn is_overflow(&self) -> bool {
        self.inner.registration.overflow
    }

    /// Whether the [`Registry`](crate::metrics::Registry) that made this histogram has
    /// unregistered it since: it still records, but no exposition reads it any more.
    pub fn is_unregistered(&self) -> bool {
        self.inner.registration.is_unregistered()
    }

    /// Marks the histogram unregistered (see [`is_unregistered`](Self::is_unregistered)).
    pub(crate) fn mark_unregistered(&self) {
        self.inner.registration.mark_unregistered();
    }

    /// The current state as a [`Snapshot`] of kind [`MetricKind::Summary`], what
    /// exposition reads: `count`, `sum` (seconds), one `quantile:<q>` per configured
    /// quantile with its value in seconds (none while the histogram is empty: a quantile of
    /// nothing is undefined), `clamped` and `refused`; its
    /// [`created`](Snapshot::created) is when the histogram was made or last reset.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use mvx::metrics::{LatencyConfig, LatencyHistogram, MetricKind, Value};
    ///
    /// let config = LatencyConfig::default().quantiles([0.5, 1.0]);
    /// let latency = LatencyHistogram::with_config("rpc.latency", config)?;
    /// latency.record(Duration::from_millis(1));
    /// let snapshot = latency.snapshot();
    /// assert_eq!(snapshot.kind, MetricKind::Summary);
    /// let dimensions: Vec<&str> = snapshot.dimensions.keys().map(String::as_str).collect();
    /// assert_eq!(dimensions, ["clamped", "count", "quantile:0.5", "quantile:1", "refused", "sum"]);
    /// assert_eq!(snapshot.get("count"), Some(Value::U64(1)));
    /// assert_eq!(snapshot.get("sum"), Some(Value::F64(0.001)));
    /// # Ok::<(), mvx::metrics::RegistryError>(())
    /// ```
    pub fn snapshot(&self) -> Snapshot {
        let (distribution, created) = self.inner.read();
        let mut snapshot = Snapshot::new(self.name(), MetricKind::Summary)
            .with("count", distribution.count())
            .with("sum", distribution.sum_nanos() as f64 / 1e9)
            .with("clamped", distribution.clamped())
            .with("refused", distribution.refused());
        for &q in self.inner.config.get_quantiles() {
            if let Some(value) = distribution.quantile_nanos(q) {
                snapshot = snapshot.with(format!("quantile:{q}"), value as f64 / 1e9);
            }
        }
        snapshot.created = created;
        labeled(snapshot, &self.inner.labels)
    }

    /// What the histogram is, for listings ([`Registry::get_metrics`](crate::metrics::Registry::get_metrics),
    /// `/api/metrics`) unless its name is described otherwise: the unit `seconds` (the
    /// unit of its exposition) and the fields `relative_error` (the configured one),
    /// `lowest_seconds` and `highest_seconds` (the range), as JSON numbers.
    pub fn metadata(&self) -> Metadata {
        let config = &self.inner.config;
        let fields = [
            ("relative_error", config.get_relative_error()),
            ("lowest_seconds", config.get_lowest().as_secs_f64()),
            ("highest_seconds", config.get_highest().as_secs_f64()),
        ];
        fields
            .into_iter()
            .fold(Metadata::new().unit("seconds"), |metadata, (key, value)| {
                // The keys are not reserved ones: `field` accepts them.
                metadata.clone().field(key, value).unwrap_or(metadata)
            })
    }

    /// Records `nanos` into stripe `stripe`, as if the calling thread owned it (or shared
    /// it, for the shared stripe): the loom models' way to give each model thread a stripe
    /// of its own, as real threads get (loom runs its threads on one OS thread, whose
    /// thread-local stripe number they would share).
    #[cfg(loom)]
    pub(crate) fn record_nanos_in_stripe(&self, stripe: usize, nanos: u64) {
        let inner = &*self.inner;
        let words = inner.stripe_words(stripe);
        inner.add_value(words, stripe != SHARED_STRIPE, nanos, 1);
    }
}

impl Inner {
    /// The calling thread's stripe, allocated on its first record, and whether the thread
    /// owns it.
    #[inline]
    fn stripe(&self) -> (&[AtomicU64], bool) {
        let stripe = current_stripe();
        (self.stripe_words(stripe), stripe != SHARED_STRIPE)
    }

    #[inline]
    fn stripe_words(&self, stripe: usize) -> &[AtomicU64] {
        self.stripes[stripe].get_or_init(|| {
            (0..HEADER + self.layout.len() + TRAILER)
                .map(|_| AtomicU64::new(0))
                .collect()
        })
    }

    /// Adds `count` records of `value` to `words`, a stripe the calling thread owns
    /// (`owned`) or the shared one.
    #[inline]
    fn add_value(&self, words: &[AtomicU64], owned: bool, value: u64, count: u64) {
        if value > self.layout.highest {
            self.add_clamped(words, owned, count);
            return;
        }
        add(&words[HEADER + self.layout.index_of(value)], count, owned);
        add(&words[SUM], value.saturating_mul(count), owned);
    }

    /// Adds `count` records above the highest value, as the highest value.
    #[cold]
    fn add_clamped(&self, words: &[AtomicU64], owned: bool, count: u64) {
        let highest = self.layout.highest;
        add(&words[HEADER + self.layout.index_of(highest)], count, owned);
        add(&words[SUM], highest.saturating_mul(count), owned);
        add(&words[CLAMPED], count, owned);
    }

    /// Adds `run` records that land where `value` does (clamped if it is above the
    /// highest value), whose values add up to `sum`.
    fn add_run(&self, words: &[AtomicU64], owned: bool, value: u64, run: u64, sum: u128) {
        if value > self.layout.highest {
            self.add_clamped(words, owned, run);
            return;
        }
        add(&words[HEADER + self.layout.index_of(value)], run, owned);
        add(&words[SUM], u64::try_from(sum).unwrap_or(u64::MAX), owned);
    }

    /// Every record since the histogram was made or last reset, and when that was.
    fn read(&self) -> (LatencyDistribution, Option<f64>) {
        let reads = lock(&self.reads);
        let raw = self.read_raw();
        let distribution = match &reads.reset {
            Some(base) => raw.since(base),
            None => raw,
        };
        (distribution, reads.created)
    }

    /// Every record since the histogram was made: the stripes added up.
    fn read_raw(&self) -> LatencyDistribution {
        let mut raw = LatencyDistribution::empty(self.layout, self.significant_digits);
        let len = self.layout.len();
        for stripe in self.stripes.iter() {
            if let Some(words) = stripe.get() {
                raw.add_words(
                    words[HEADER..HEADER + len]
                        .iter()
                        .map(|word| word.load(Ordering::Relaxed)),
                    words[SUM].load(Ordering::Relaxed),
                    words[CLAMPED].load(Ordering::Relaxed),
                    words[REFUSED].load(Ordering::Relaxed),
                );
            }
        }
        raw.finish()
    }
}

/// Adds `n` to `word` (saturating), in a stripe the calling thread owns (`owned`) or in the
/// shared one.
#[inline]
fn add(word: &AtomicU64, n: u64, owned: bool) {
    if owned {
        // Only this thread writes this word (see `current_stripe`): a load and a store
        // lose no update, and readers still load the word atomically.
        word.store(
            word.load(Ordering::Relaxed).saturating_add(n),
            Ordering::Relaxed,
        );
    } else if n == 1 {
        word.fetch_add(1, Ordering::Relaxed);
    } else {
        let _ = word.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |current| {
            Some(current.saturating_add(n))
        });
    }
}

impl SnapshotSource for LatencyHistogram {
    fn collect(&self, into: &mut Snapshots) {
        let snapshot = self.snapshot();
        into.insert(snapshot.key(), snapshot);
    }

    fn collect_metadata(&self, into: &mut BTreeMap<String, Metadata>) {
        into.insert(self.name().to_owned(), self.metadata());
    }
}

impl fmt::Debug for LatencyHistogram {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LatencyHistogram")
            .field("name", &self.name())
            .field("config", &self.inner.config)
            .field("distribution", &self.distribution())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_configuration_is_valid_and_hdrhistograms_layout() {
        let layout = LatencyConfig::default().layout().expect("valid");
        assert_eq!(layout, Layout::new(1, 3_600_000_000_000, 128));
        assert_eq!(layout.len() * 8, 36_864);
    }

    #[test]
    fn the_fixed_part_is_as_the_type_docs_state() {
        assert_eq!(size_of::<OnceLock<Box<[AtomicU64]>>>(), 24);
        assert!(size_of::<Inner>() <= 512, "{}", size_of::<Inner>());
        assert_eq!((HEADER + TRAILER) * 8, 256);
    }

    #[test]
    fn stripes_are_allocated_by_the_threads_that_record() {
        let latency = LatencyHistogram::new("h");
        let allocated = |latency: &LatencyHistogram| {
            latency
                .inner
                .stripes
                .iter()
                .filter(|stripe| stripe.get().is_some())
                .count()
        };
        assert_eq!(allocated(&latency), 0);
        latency.record_nanos(5);
        latency.record_nanos(7);
        assert_eq!(allocated(&latency), 1);
        std::thread::scope(|scope| {
            scope.spawn(|| latency.record_nanos(9));
        });
        assert_eq!(allocated(&latency), 2);
        assert_eq!(latency.count(), 3);
        assert_eq!(latency.sum(), Duration::from_nanos(21));
    }

    #[test]
    fn shared_stripe_words_add_with_read_modify_writes() {
        let latency = LatencyHistogram::new("h");
        let words = latency.inner.stripe_words(SHARED_STRIPE);
        latency.inner.add_value(words, false, 300, 2);
        latency.inner.add_value(words, false, 300, 1);
        latency.inner.add_value(words, false, u64::MAX, 1);
        let distribution = latency.distribution();
        assert_eq!(distribution.count(), 4);
        assert_eq!(distribution.clamped(), 1);
        assert_eq!(distribution.sum_nanos(), 900 + 3_600_000_000_000);
        add(&words[SUM], u64::MAX, false);
        assert_eq!(words[SUM].load(Ordering::Relaxed), u64::MAX);
    }
}
