//! [`LatencyDistribution`]: the counts of a [`LatencyHistogram`](super::LatencyHistogram) at
//! one moment, and what is read from them — quantiles, minimum, maximum, mean, the
//! percentile steps of a report ([`Percentiles`]) — and merging.

use std::fmt;
use std::time::Duration;

use super::layout::Layout;

/// The records of a [`LatencyHistogram`](super::LatencyHistogram) over some time: since it
/// was made or [reset](super::LatencyHistogram::reset) ([`distribution`]), or over one
/// interval ([`take_interval`]). A plain value: reading it takes no lock and sees no record
/// made after it was taken.
///
/// Every value read from it is a nanosecond count within the histogram's relative error
/// ([`relative_error_bound`](Self::relative_error_bound)) of a recorded value, as
/// HdrHistogram reports them: a quantile or the maximum is the highest value of the
/// sub-bucket it falls in, the minimum the lowest. The mean is exact (the sum of the
/// recorded values over their count); the standard deviation is computed from the middle
/// of each sub-bucket, as HdrHistogram does.
///
/// [`distribution`]: super::LatencyHistogram::distribution
/// [`take_interval`]: super::LatencyHistogram::take_interval
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use mvx::metrics::LatencyHistogram;
///
/// let latency = LatencyHistogram::new("rpc.latency");
/// for micros in 1..=1000 {
///     latency.record(Duration::from_micros(micros));
/// }
/// let distribution = latency.distribution();
/// assert_eq!(distribution.count(), 1000);
/// let p99 = distribution.quantile(0.99).unwrap();
/// // The exact p99 is 990 µs; the reported one is within 1 % of it.
/// assert!(p99 >= Duration::from_micros(990) && p99 <= Duration::from_micros(990) * 101 / 100);
/// assert_eq!(distribution.mean(), Some(Duration::from_nanos(500_500)));
/// # Ok::<(), mvx::metrics::RegistryError>(())
/// ```
#[derive(Clone, PartialEq)]
pub struct LatencyDistribution {
    pub(super) layout: Layout,
    /// Digits after the point in HdrHistogram's text output.
    pub(super) significant_digits: usize,
    /// One count per sub-bucket ([`Layout::index_of`]).
    pub(super) counts: Box<[u64]>,
    /// The sum of `counts`, saturating.
    pub(super) total: u64,
    /// The sum of the recorded values (clamped ones as the highest value), in nanoseconds.
    pub(super) sum: u128,
    /// Records above the highest value, counted as the highest value.
    pub(super) clamped: u64,
    /// Records refused: NaN or negative seconds.
    pub(super) refused: u64,
}

impl LatencyDistribution {
    /// An empty distribution of `layout`.
    pub(super) fn empty(layout: Layout, significant_digits: usize) -> Self {
        Self {
            layout,
            significant_digits,
            counts: vec![0; layout.len()].into_boxed_slice(),
            total: 0,
            sum: 0,
            clamped: 0,
            refused: 0,
        }
    }

    /// Adds the counts of one stripe: `counts` (one word per sub-bucket), and its sum,
    /// clamped and refused counts.
    pub(super) fn add_words(
        &mut self,
        counts: impl Iterator<Item = u64>,
        sum: u64,
        clamped: u64,
        refused: u64,
    ) {
        for (total, count) in self.counts.iter_mut().zip(counts) {
            *total = total.saturating_add(count);
        }
        self.sum += u128::from(sum);
        self.clamped = self.clamped.saturating_add(clamped);
        self.refused = self.refused.saturating_add(refused);
    }

    /// Sets `total` from the counts; call after the last [`add_words`](Self::add_words).
    pub(super) fn finish(mut self) -> Self {
        self.total = self
            .counts
            .iter()
            .fold(0_u64, |total, &count| total.saturating_add(count));
        self
    }

    /// What was recorded since `earlier`, a distribution of the same histogram read before
    /// this one: the difference of every count (the counts of a histogram only grow).
    pub(super) fn since(mut self, earlier: &Self) -> Self {
        for (count, before) in self.counts.iter_mut().zip(earlier.counts.iter()) {
            *count = count.saturating_sub(*before);
        }
        self.sum = self.sum.saturating_sub(earlier.sum);
        self.clamped = self.clamped.saturating_sub(earlier.clamped);
        self.refused = self.refused.saturating_sub(earlier.refused);
        self.finish()
    }

    /// The number of records (clamped ones included; refused ones not).
    pub fn count(&self) -> u64 {
        self.total
    }

    /// The sum of the recorded values, clamped ones counted as the highest value (saturating
    /// at `Duration::MAX`).
    pub fn sum(&self) -> Duration {
        nanos_to_duration(self.sum)
    }

    /// The sum of the recorded values in nanoseconds, as [`sum`](Self::sum).
    pub fn sum_nanos(&self) -> u128 {
        self.sum
    }

    /// The mean of the recorded values, to the nanosecond (rounded); `None` if there is none.
    pub fn mean(&self) -> Option<Duration> {
        if self.total == 0 {
            return None;
        }
        let total = u128::from(self.total);
        Some(nanos_to_duration((self.sum + total / 2) / total))
    }

    /// The standard deviation of the recorded values, from the middle of each sub-bucket
    /// (as HdrHistogram computes it) around the exact mean; `None` if there is none.
    pub fn stdev(&self) -> Option<Duration> {
        if self.total == 0 {
            return None;
        }
        let mean = self.sum as f64 / self.total as f64;
        let squares: f64 = self
            .nonzero()
            .map(|(index, count)| {
                let middle = self.layout.median_equivalent(self.layout.value_at(index)) as f64;
                (middle - mean) * (middle - mean) * count as f64
            })
            .sum();
        Some(Duration::from_secs_f64(
            ((squares / self.total as f64).sqrt() / 1e9).min(Duration::MAX.as_secs_f64()),
        ))
    }

    /// The lowest recorded value, as the lowest value of its sub-bucket; `None` if there is
    /// none.
    pub fn min(&self) -> Option<Duration> {
        let (index, _) = self.nonzero().next()?;
        Some(Duration::from_nanos(self.layout.value_at(index)))
    }

    /// The highest recorded value, as the highest value of its sub-bucket (a clamped
    /// record counts as the configured highest value); `None` if there is none.
    pub fn max(&self) -> Option<Duration> {
        let (index, _) = self.nonzero().next_back()?;
        let value = self.layout.value_at(index);
        Some(Duration::from_nanos(self.layout.highest_equivalent(value)))
    }

    /// The value at quantile `q`: the lowest recorded value at or below which a fraction
    /// `q` of the records lie, as the highest value of its sub-bucket (the lowest for
    /// `q = 0`) — HdrHistogram's `valueAtQuantile`. `None` if there is no record.
    ///
    /// `q` above 1 is read as 1 (the maximum); below 0, or NaN, as 0 (the minimum).
    pub fn quantile(&self, q: f64) -> Option<Duration> {
        self.quantile_nanos(q).map(Duration::from_nanos)
    }

    /// [`quantile`](Self::quantile) in nanoseconds.
    pub(super) fn quantile_nanos(&self, q: f64) -> Option<u64> {
        if self.total == 0 {
            return None;
        }
        let q = if q > 1.0 {
            1.0
        } else if q > 0.0 {
            q
        } else {
            0.0
        };
        // The rank of the record at `q`, from 1: HdrHistogram's `ceil(q · count)`.
        let rank = ((q * self.total as f64).ceil() as u64).max(1);
        let mut running: u64 = 0;
        for (index, count) in self.nonzero() {
            running = running.saturating_add(count);
            if running >= rank {
                let value = self.layout.value_at(index);
                return Some(if q == 0.0 {
                    value
                } else {
                    self.layout.highest_equivalent(value)
                });
            }
        }
        // Unreachable while `total` is the sum of the counts; the maximum otherwise.
        self.max()
            .map(|max| u64::try_from(max.as_nanos()).unwrap_or(u64::MAX))
    }

    /// How many records were above the highest value of the range and were counted as
    /// that value (see [`LatencyHistogram::clamped`](super::LatencyHistogram::clamped)).
    pub fn clamped(&self) -> u64 {
        self.clamped
    }

    /// How many records were refused: NaN or negative seconds (see
    /// [`LatencyHistogram::refused`](super::LatencyHistogram::refused)).
    pub fn refused(&self) -> u64 {
        self.refused
    }

    /// The relative error every value read is within: `1 / 2^h`, at most the configured
    /// relative error (0.0078125 for the default 1 %).
    pub fn relative_error_bound(&self) -> f64 {
        1.0 / self.layout.half_count() as f64
    }

    /// The steps of a percentile report, HdrHistogram's `PercentileIterator` (the Rust
    /// `hdrhistogram` crate's `iter_quantiles`): from quantile 0, `ticks_per_half_distance`
    /// steps to 0.5, as many from there to 0.75, to 0.875, and so on, halving the distance
    /// to 1 each time, until the highest record, then a last step at quantile 1. Each step
    /// is reported at the first recorded value that reaches it (a value reached by several
    /// steps is reported once per step). `ticks_per_half_distance` 0 is read as 1.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use mvx::metrics::LatencyHistogram;
    ///
    /// let latency = LatencyHistogram::new("rpc.latency");
    /// for millis in 1..=4 {
    ///     latency.record(Duration::from_millis(millis));
    /// }
    /// let steps: Vec<(f64, u64)> = latency
    ///     .distribution()
    ///     .percentiles(1)
    ///     .map(|step| (step.quantile, step.count))
    ///     .collect();
    /// assert_eq!(steps, [(0.0, 1), (0.5, 2), (0.75, 3), (0.875, 4), (1.0, 4)]);
    /// ```
    pub fn percentiles(&self, ticks_per_half_distance: u32) -> Percentiles<'_> {
        Percentiles {
            distribution: self,
            ticks_per_half_distance: ticks_per_half_distance.max(1),
            quantile_to_iterate_to: 0.0,
            reached_end: false,
            index: 0,
            total_to_index: 0,
            count_at_index: 0,
            fresh: true,
            ended: self.total == 0,
            last_picked: None,
            max_index: self.nonzero().next_back().map_or(0, |(index, _)| index),
        }
    }

    /// The sub-buckets that hold records, in value order (HdrHistogram's
    /// `RecordedValuesIterator`): the values each one stands for, and its count.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use mvx::metrics::LatencyHistogram;
    ///
    /// let latency = LatencyHistogram::new("rpc.latency");
    /// latency.record_n(Duration::from_nanos(100), 3);
    /// latency.record(Duration::from_micros(1));
    /// let recorded: Vec<(u128, u128, u64)> = latency
    ///     .distribution()
    ///     .recorded()
    ///     .map(|bucket| (bucket.lowest.as_nanos(), bucket.highest.as_nanos(), bucket.count))
    ///     .collect();
    /// // Exact to the nanosecond below 256 ns; 4 ns wide around 1 µs.
    /// assert_eq!(recorded, [(100, 100, 3), (1000, 1003, 1)]);
    /// ```
    pub fn recorded(&self) -> impl DoubleEndedIterator<Item = Recorded> + '_ {
        self.nonzero().map(|(index, count)| {
            let lowest = self.layout.value_at(index);
            Recorded {
                lowest: Duration::from_nanos(lowest),
                highest: Duration::from_nanos(self.layout.highest_equivalent(lowest)),
                count,
            }
        })
    }

    /// Adds the records of `other` to this distribution.
    ///
    /// Two distributions of the same range and relative error add count to count: the
    /// result is the distribution of both sets of records. Otherwise each sub-bucket of
    /// `other` is recorded at its lowest value (as HdrHistogram's `add` does), within this
    /// distribution's error of it if `other`'s buckets are finer; those above this
    /// distribution's highest value are clamped to it, and their part of the sum counted as
    /// that value.
    pub fn merge(&mut self, other: &LatencyDistribution) {
        if self.layout == other.layout {
            for (count, added) in self.counts.iter_mut().zip(other.counts.iter()) {
                *count = count.saturating_add(*added);
            }
            self.sum += other.sum;
        } else {
            let mut sum = other.sum;
            for (index, count) in other.nonzero() {
                let value = other.layout.value_at(index);
                let kept = if value > self.layout.highest {
                    self.clamped = self.clamped.saturating_add(count);
                    let middle = u128::from(other.layout.median_equivalent(value));
                    sum = sum.saturating_sub(middle * u128::from(count))
                        + u128::from(self.layout.highest) * u128::from(count);
                    self.layout.highest
                } else {
                    value
                };
                let slot = &mut self.counts[self.layout.index_of(kept)];
                *slot = slot.saturating_add(count);
            }
            self.sum += sum;
        }
        self.clamped = self.clamped.saturating_add(other.clamped);
        self.refused = self.refused.saturating_add(other.refused);
        self.total = self.total.saturating_add(other.total);
    }

    /// The indexes and counts of the sub-buckets that have records, in value order.
    fn nonzero(&self) -> impl DoubleEndedIterator<Item = (usize, u64)> + '_ {
        self.counts
            .iter()
            .enumerate()
            .filter(|&(_, &count)| count > 0)
            .map(|(index, &count)| (index, count))
    }
}

impl fmt::Debug for LatencyDistribution {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LatencyDistribution")
            .field("count", &self.count())
            .field("min", &self.min())
            .field("p50", &self.quantile(0.5))
            .field("p99", &self.quantile(0.99))
            .field("max", &self.max())
            .field("mean", &self.mean())
            .field("clamped", &self.clamped)
            .field("refused", &self.refused)
            .finish_non_exhaustive()
    }
}

/// `nanos` as a `Duration`, `Duration::MAX` if it is longer.
fn nanos_to_duration(nanos: u128) -> Duration {
    let secs = nanos / 1_000_000_000;
    match u64::try_from(secs) {
        Ok(secs) => Duration::new(secs, (nanos % 1_000_000_000) as u32),
        Err(_) => Duration::MAX,
    }
}

/// A sub-bucket that holds records: see [`LatencyDistribution::recorded`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Recorded {
    /// The lowest value the sub-bucket stands for.
    pub lowest: Duration,
    /// The highest value the sub-bucket stands for.
    pub highest: Duration,
    /// How many records it holds.
    pub count: u64,
}

/// One step of a percentile report: see [`LatencyDistribution::percentiles`].
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Percentile {
    /// The recorded value the step reached, as the highest value of its sub-bucket.
    pub value: Duration,
    /// The quantile of the step (HdrHistogram's "percentile level iterated to", divided
    /// by 100): 0, then up by ever smaller steps, the last one 1.
    pub quantile: f64,
    /// How many records are at or below `value`.
    pub count: u64,
}

/// The steps of a percentile report, from [`LatencyDistribution::percentiles`].
#[derive(Debug)]
pub struct Percentiles<'a> {
    distribution: &'a LatencyDistribution,
    ticks_per_half_distance: u32,
    /// The quantile of the next step.
    quantile_to_iterate_to: f64,
    /// Whether the step at quantile 1 was reported.
    reached_end: bool,
    /// The sub-bucket looked at.
    index: usize,
    /// Records up to and including `index`.
    total_to_index: u64,
    /// Records at `index`.
    count_at_index: u64,
    /// Whether `index` is yet to be added to `total_to_index`.
    fresh: bool,
    ended: bool,
    /// The sub-bucket of the last step reported.
    last_picked: Option<usize>,
    /// The sub-bucket of the highest record.
    max_index: usize,
}

impl Percentiles<'_> {
    /// The quantile to report at the current sub-bucket, if any, and the one after it.
    fn pick(&mut self) -> Option<f64> {
        if self.count_at_index == 0 || self.reached_end {
            return None;
        }
        let current = self.total_to_index as f64 / self.distribution.total as f64;
        if current < self.quantile_to_iterate_to {
            return None;
        }
        if self.quantile_to_iterate_to == 1.0 {
            self.reached_end = true;
            return Some(1.0);
        }
        // Halvings of the distance to 1 so far: 1 at 0.5, 2 at 0.75, ...
        let halvings = (1.0 / (1.0 - self.quantile_to_iterate_to)).log2() as u32;
        let ticks = u64::from(self.ticks_per_half_distance)
            .saturating_mul(1_u64.checked_shl(halvings + 1).unwrap_or(u64::MAX));
        let picked = self.quantile_to_iterate_to;
        let next = picked + 1.0 / ticks as f64;
        // Past the precision of an f64 below 1: straight to 1.
        self.quantile_to_iterate_to = if next == picked { 1.0 } else { next };
        Some(picked)
    }
}

impl Iterator for Percentiles<'_> {
    type Item = Percentile;

    fn next(&mut self) -> Option<Percentile> {
        let counts = &self.distribution.counts;
        while !self.ended {
            if self.index == counts.len() {
                self.ended = true;
                return None;
            }
            if self.last_picked >= Some(self.max_index) {
                // The highest record was reported: once more, at quantile 1, unless that
                // was the step.
                if self.reached_end {
                    self.ended = true;
                    return None;
                }
                self.quantile_to_iterate_to = 1.0;
            } else if self.fresh {
                self.count_at_index = counts[self.index];
                self.total_to_index = self.total_to_index.saturating_add(self.count_at_index);
                self.fresh = false;
            }
            if let Some(quantile) = self.pick() {
                let layout = &self.distribution.layout;
                let value = layout.highest_equivalent(layout.value_at(self.index));
                self.last_picked = Some(self.index);
                return Some(Percentile {
                    value: Duration::from_nanos(value),
                    quantile,
                    count: self.total_to_index,
                });
            }
            self.index += 1;
            self.fresh = true;
        }
        None
    }
}
