//! The bucket layout of a [`LatencyHistogram`](super::LatencyHistogram): which bucket a value
//! lands in, and which values a bucket stands for.
//!
//! The layout is HdrHistogram's, with one difference in where the resolution starts (below).
//! Values are whole nanoseconds (`u64`). With `half = 2^h` sub-buckets per half bucket and
//! a unit of `2^u` nanoseconds:
//!
//! - bucket 0 splits `[0, 2·half·2^u)` into `2·half` sub-buckets of width `2^u`;
//! - bucket `k ≥ 1` splits `[half·2^(u+k), 2·half·2^(u+k))` into `half` sub-buckets of width
//!   `2^(u+k)` (its lower half is bucket `k - 1`'s range, so it is not stored).
//!
//! The counts are one array: bucket 0's `2·half` sub-buckets, then `half` per further
//! bucket, `(buckets + 1)·half` counts in all.
//!
//! # The error bound
//!
//! A value `x` is reported as a value `r` of its sub-bucket `[lo, lo + w)` (the highest,
//! `lo + w - 1`, for quantiles, as HdrHistogram does), so `|r - x| < w`. If `x` is in bucket
//! `k ≥ 1`, then `x ≥ half·w`; if it is in bucket 0 at or above `half·2^u`, then
//! `x ≥ half·w` too. Either way `|r - x| < w ≤ x / half`: the relative error is below
//! `1 / half`, and `half` is the smallest power of two with `1 / half ≤ ε`, the configured
//! relative error. So every reported value is within `ε` of the value it stands for, for
//! every `x ≥ half·2^u`.
//!
//! HdrHistogram takes `2^u` as the largest power of two at or below its lowest discernible
//! value, so its bound holds only from `half` times that value up. mvx takes `u` as the
//! largest with `half·2^u ≤ lowest`, the configured lowest value, so the bound holds over
//! the whole configured range `[lowest, highest]` (and values below `lowest` are reported
//! within `2^u ≤ lowest / half` of themselves). With `lowest < half` — the default, 1 ns —
//! both have `u = 0` and the layouts are the same: bucket 0 is exact to the nanosecond.

/// The fewest sub-buckets per half bucket: a relative error of at most 50 %.
pub(super) const MIN_HALF_COUNT: u64 = 2;
/// The most sub-buckets per half bucket, HdrHistogram's limit (5 significant digits).
pub(super) const MAX_HALF_COUNT: u64 = 1 << 17;

/// The bucket layout derived from a configuration: constants of the bucket arithmetic.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Layout {
    /// The highest value recorded as itself; above it, values are clamped to it.
    pub(super) highest: u64,
    /// `h`: `half = 2^h` sub-buckets in the upper half of each bucket.
    half_magnitude: u32,
    /// `u`: the width of bucket 0's sub-buckets is `2^u` nanoseconds.
    unit_magnitude: u32,
    /// Buckets, bucket 0 included.
    buckets: u32,
    /// `(2·half - 1) << u`: ORed into a value, it maps every value of bucket 0 to bucket 0.
    sub_bucket_mask: u64,
    /// `64 - u - (h + 1)`: the bucket of a value is this minus its leading zeros (masked).
    leading_zero_count_base: u32,
}

impl Layout {
    /// The layout for values up to `highest`, with `half` sub-buckets per half bucket (a
    /// power of two between [`MIN_HALF_COUNT`] and [`MAX_HALF_COUNT`]) and the relative
    /// error bound holding from `lowest` up. `1 <= lowest` and `2 * lowest <= highest`
    /// (checked by the configuration).
    pub(super) fn new(lowest: u64, highest: u64, half: u64) -> Self {
        debug_assert!(half.is_power_of_two());
        debug_assert!((MIN_HALF_COUNT..=MAX_HALF_COUNT).contains(&half));
        debug_assert!(lowest >= 1 && highest / 2 >= lowest);
        let half_magnitude = half.trailing_zeros();
        // The largest `u` with `half << u <= lowest`: `2^u <= lowest / half`.
        let unit_magnitude = match lowest / half {
            0 => 0,
            ratio => 63 - ratio.leading_zeros(),
        };
        let sub_magnitude = half_magnitude + 1;
        // `half << u <= lowest <= highest / 2 < 2^63`, so `u + h <= 62`: the shifts below fit.
        let sub_bucket_mask = ((1_u64 << sub_magnitude) - 1) << unit_magnitude;
        let mut buckets = 1;
        // The values below `2·half << u` are bucket 0's; each further bucket doubles that.
        let mut smallest_untracked = (1_u64 << sub_magnitude) << unit_magnitude;
        while smallest_untracked <= highest {
            buckets += 1;
            match smallest_untracked.checked_mul(2) {
                Some(next) => smallest_untracked = next,
                // This bucket reaches `u64::MAX`.
                None => break,
            }
        }
        Self {
            highest,
            half_magnitude,
            unit_magnitude,
            buckets,
            sub_bucket_mask,
            leading_zero_count_base: 64 - unit_magnitude - sub_magnitude,
        }
    }

    /// The number of counts: `(buckets + 1) · half`.
    pub(crate) fn len(&self) -> usize {
        ((self.buckets as usize) + 1) << self.half_magnitude
    }

    /// Sub-buckets per half bucket: `half`.
    pub(crate) fn half_count(&self) -> u64 {
        1 << self.half_magnitude
    }

    /// Buckets, bucket 0 included (HdrHistogram's `bucketCount`).
    pub(crate) fn buckets(&self) -> u32 {
        self.buckets
    }

    /// Sub-buckets per bucket, `2·half` (HdrHistogram's `subBucketCount`).
    pub(crate) fn sub_buckets(&self) -> u64 {
        2 << self.half_magnitude
    }

    /// The bucket of `value`.
    #[inline]
    fn bucket_of(&self, value: u64) -> u32 {
        // `value | mask` has at most `64 - u - (h + 1)` leading zeros.
        self.leading_zero_count_base - (value | self.sub_bucket_mask).leading_zeros()
    }

    /// The index of the count `value` (at most [`highest`](Self::highest)) lands in.
    #[inline]
    pub(super) fn index_of(&self, value: u64) -> usize {
        let bucket = self.bucket_of(value);
        // Below `2·half` in bucket 0; in `[half, 2·half)` in any other.
        let sub_bucket = (value >> (bucket + self.unit_magnitude)) as usize;
        // Bucket `k` starts at index `(k + 1)·half`, its sub-buckets from `half` on.
        (((bucket as usize) + 1) << self.half_magnitude) + sub_bucket - self.half_count() as usize
    }

    /// The lowest value of the count at `index` (HdrHistogram's `valueFromIndex`).
    pub(crate) fn value_at(&self, index: usize) -> u64 {
        let half = self.half_count() as usize;
        let (bucket, sub_bucket) = match index >> self.half_magnitude {
            // The lower half of bucket 0.
            0 => (0, index),
            upper => (upper - 1, (index & (half - 1)) + half),
        };
        let shift = bucket as u32 + self.unit_magnitude;
        (sub_bucket as u64).checked_shl(shift).unwrap_or(u64::MAX)
    }

    /// The width of the sub-bucket of `value`, in nanoseconds.
    pub(crate) fn equivalent_range(&self, value: u64) -> u64 {
        1_u64 << (self.bucket_of(value) + self.unit_magnitude)
    }

    /// The lowest value in the sub-bucket of `value`.
    pub(crate) fn lowest_equivalent(&self, value: u64) -> u64 {
        value & !(self.equivalent_range(value) - 1)
    }

    /// The highest value in the sub-bucket of `value`.
    pub(crate) fn highest_equivalent(&self, value: u64) -> u64 {
        self.lowest_equivalent(value)
            .saturating_add(self.equivalent_range(value) - 1)
    }

    /// The middle of the sub-bucket of `value`, rounded up (HdrHistogram's
    /// `medianEquivalentValue`).
    pub(crate) fn median_equivalent(&self, value: u64) -> u64 {
        self.lowest_equivalent(value)
            .saturating_add(self.equivalent_range(value) >> 1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// HdrHistogram's default layout for 1 ns to 1 h with 2 significant digits.
    fn default_layout() -> Layout {
        Layout::new(1, 3_600_000_000_000, 128)
    }

    #[test]
    fn the_default_layout_is_hdrhistograms() {
        let layout = default_layout();
        assert_eq!(layout.buckets(), 35);
        assert_eq!(layout.sub_buckets(), 256);
        assert_eq!(layout.len(), 4608);
        assert_eq!(layout.index_of(0), 0);
        assert_eq!(layout.index_of(255), 255);
        assert_eq!(layout.index_of(256), 256);
        assert_eq!(layout.index_of(257), 256);
        assert_eq!(layout.index_of(258), 257);
        assert!(layout.index_of(layout.highest) < layout.len());
    }

    #[test]
    fn indexes_and_values_agree() {
        for layout in [
            default_layout(),
            Layout::new(1, 1_000, 2),
            Layout::new(1_000, 60_000_000_000, 1024),
            Layout::new(300, u64::MAX / 2, 128),
            Layout::new(1, u64::MAX, 131_072),
            Layout::new(u64::MAX / 4, u64::MAX, 2),
        ] {
            let top = layout.index_of(layout.highest);
            assert!(top < layout.len(), "{layout:?}");
            let mut previous = 0;
            for index in 0..=top {
                let value = layout.value_at(index);
                if index > 0 {
                    assert!(value > previous, "{layout:?} index {index}");
                }
                assert_eq!(layout.index_of(value), index, "{layout:?} value {value}");
                assert_eq!(layout.lowest_equivalent(value), value);
                let high = layout.highest_equivalent(value);
                assert_eq!(layout.index_of(high.min(layout.highest)), index);
                previous = value;
            }
        }
    }

    #[test]
    fn the_relative_error_is_below_one_over_half_from_lowest_up() {
        let mut state = 0x2545_f491_4f6c_dd1d_u64;
        for (lowest, highest, half) in [
            (1, 3_600_000_000_000, 128),
            (1_000, 60_000_000_000, 128),
            (5_000, 1_000_000_000, 1024),
            (7, 7_000_000, 2),
        ] {
            let layout = Layout::new(lowest, highest, half);
            for _ in 0..100_000 {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                // Log-uniform over [lowest, highest].
                let span = (highest as f64 / lowest as f64).ln();
                let fraction = (state >> 11) as f64 / (1_u64 << 53) as f64;
                let value = ((lowest as f64) * (span * fraction).exp()) as u64;
                let value = value.clamp(lowest, highest);
                let reported = layout.highest_equivalent(value);
                let error = (reported - value) as f64 / value as f64;
                assert!(
                    error < 1.0 / half as f64,
                    "{lowest}..{highest}/{half}: {value} reported as {reported}"
                );
            }
        }
    }
}
