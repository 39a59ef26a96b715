//! [`LatencyConfig`]: the range, the relative error and the exposed quantiles of a
//! [`LatencyHistogram`](super::LatencyHistogram), and [`LatencyConfigError`], what it refuses.

use std::fmt;
use std::time::Duration;

use super::layout::{Layout, MAX_HALF_COUNT, MIN_HALF_COUNT};
use crate::metrics::MetricsReason;

/// The range, relative error and exposed quantiles of a
/// [`LatencyHistogram`](super::LatencyHistogram).
///
/// - **Range**: `lowest..=highest`, default 1 ns to 1 h. Every value in it is kept within
///   the relative error. Values above `highest` are clamped to it (and counted, see
///   [`LatencyHistogram::clamped`](super::LatencyHistogram::clamped)); values below
///   `lowest` are kept within `lowest · relative_error` of themselves.
/// - **Relative error**: `relative_error`, default 0.01 (1 %): a reported value is within
///   that fraction of the value it stands for. The histogram keeps `2^h` sub-buckets per
///   power of two, the smallest power of two with `1 / 2^h <= relative_error` (128 for 1 %,
///   HdrHistogram's layout for 2 significant digits), so the bound actually met is
///   `1 / 2^h` (0.78 % for the default). Between 0.00001 (HdrHistogram's 5 significant
///   digits) and 0.5.
/// - **Quantiles**: the quantiles a [`snapshot`](super::LatencyHistogram::snapshot) — and
///   so the Prometheus summary — carries, default 0.5, 0.9, 0.99, 0.999 and 1 (the
///   maximum). Each between 0 and 1; kept sorted, without repeats.
///
/// A configuration is checked when a histogram is made from it
/// ([`LatencyHistogram::with_config`](super::LatencyHistogram::with_config), the registry's
/// [`latency_histogram`](crate::metrics::Registry::latency_histogram)), or by
/// [`validate`](Self::validate).
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use mvx::metrics::LatencyConfig;
///
/// let config = LatencyConfig::default()
///     .range(Duration::from_micros(1), Duration::from_secs(60))
///     .significant_digits(3) // a relative error of 0.001
///     .quantiles([0.5, 0.99]);
/// assert_eq!(config.get_relative_error(), 0.001);
/// assert_eq!(config.get_quantiles(), [0.5, 0.99]);
/// assert!(config.validate().is_ok());
/// assert!(LatencyConfig::default().relative_error(0.0).validate().is_err());
/// ```
#[derive(Clone, Debug, PartialEq)]
pub struct LatencyConfig {
    lowest: Duration,
    highest: Duration,
    relative_error: f64,
    quantiles: Vec<f64>,
}

impl Default for LatencyConfig {
    fn default() -> Self {
        Self {
            lowest: Duration::from_nanos(1),
            highest: Duration::from_secs(3600),
            relative_error: 0.01,
            quantiles: vec![0.5, 0.9, 0.99, 0.999, 1.0],
        }
    }
}

impl LatencyConfig {
    /// The default configuration: 1 ns to 1 h, 1 %, quantiles 0.5, 0.9, 0.99, 0.999 and 1.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets the range kept within the relative error: `lowest..=highest`, `lowest` at least
    /// 1 ns and `highest` at least twice `lowest`.
    pub fn range(mut self, lowest: Duration, highest: Duration) -> Self {
        self.lowest = lowest;
        self.highest = highest;
        self
    }

    /// Sets the relative error, between 0.00001 and 0.5.
    pub fn relative_error(mut self, relative_error: f64) -> Self {
        self.relative_error = relative_error;
        self
    }

    /// Sets the relative error to `10^-digits`, HdrHistogram's "significant digits"
    /// (2 is 1 %; 1 to 5 are valid).
    pub fn significant_digits(mut self, digits: u8) -> Self {
        self.relative_error = 1.0 / 10_f64.powi(i32::from(digits));
        self
    }

    /// Sets the quantiles a snapshot (and the Prometheus summary) carries, each between 0
    /// and 1; sorted and without repeats once set. None is allowed: the summary then has
    /// only its sum and count.
    pub fn quantiles(mut self, quantiles: impl IntoIterator<Item = f64>) -> Self {
        self.quantiles = quantiles.into_iter().collect();
        self.quantiles.sort_by(f64::total_cmp);
        self.quantiles.dedup();
        self
    }

    /// The lowest value of the range.
    pub fn get_lowest(&self) -> Duration {
        self.lowest
    }

    /// The highest value of the range.
    pub fn get_highest(&self) -> Duration {
        self.highest
    }

    /// The relative error asked for.
    pub fn get_relative_error(&self) -> f64 {
        self.relative_error
    }

    /// The quantiles a snapshot carries, in increasing order.
    pub fn get_quantiles(&self) -> &[f64] {
        &self.quantiles
    }

    /// Checks the configuration.
    ///
    /// # Errors
    ///
    /// - [`LatencyConfigError::RelativeError`] if the relative error is not between
    ///   0.00001 and 0.5;
    /// - [`LatencyConfigError::Range`] if `lowest` is zero, or `highest` below twice
    ///   `lowest`;
    /// - [`LatencyConfigError::Quantile`] if a quantile is not between 0 and 1.
    pub fn validate(&self) -> Result<(), LatencyConfigError> {
        self.layout().map(|_| ())
    }

    /// The layout of the configuration, once checked.
    pub(super) fn layout(&self) -> Result<Layout, LatencyConfigError> {
        let relative_error = self.relative_error;
        let half = half_count(relative_error)
            .ok_or(LatencyConfigError::RelativeError { relative_error })?;
        let lowest = nanos(self.lowest);
        let highest = nanos(self.highest);
        if lowest == 0 || highest / 2 < lowest {
            return Err(LatencyConfigError::Range {
                lowest: self.lowest,
                highest: self.highest,
            });
        }
        if let Some(&quantile) = self
            .quantiles
            .iter()
            .find(|quantile| !(0.0..=1.0).contains(*quantile))
        {
            return Err(LatencyConfigError::Quantile { quantile });
        }
        Ok(Layout::new(lowest, highest, half))
    }

    /// The digits HdrHistogram's text output writes after the point: the fewest `d` with
    /// `10^-d <= relative error`, at most 5.
    pub(super) fn significant_digits_shown(&self) -> usize {
        (0..5)
            .find(|&digits| 1.0 / 10_f64.powi(digits) <= self.relative_error * (1.0 + 1e-9))
            .map_or(5, |digits| digits as usize)
    }
}

/// `duration` in whole nanoseconds, `u64::MAX` if it has more.
pub(super) fn nanos(duration: Duration) -> u64 {
    u64::try_from(duration.as_nanos()).unwrap_or(u64::MAX)
}

/// The sub-buckets per half bucket for `relative_error`: the smallest power of two `half`
/// with `1 / half <= relative_error`; `None` outside the accepted range.
fn half_count(relative_error: f64) -> Option<u64> {
    if !(1e-5..=0.5).contains(&relative_error) {
        return None;
    }
    let mut half = ((1.0 / relative_error).ceil() as u64)
        .next_power_of_two()
        .max(MIN_HALF_COUNT);
    // `1 / relative_error` may have been rounded down.
    while 1.0 / (half as f64) > relative_error && half < MAX_HALF_COUNT {
        half *= 2;
    }
    Some(half.min(MAX_HALF_COUNT))
}

/// A [`LatencyConfig`] refused: its [`reason`](Self::reason) is
/// [`MetricsReason::InvalidArgument`].
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum LatencyConfigError {
    /// The relative error is not between 0.00001 and 0.5 (or is NaN).
    #[error("relative error {relative_error} is not between 0.00001 and 0.5")]
    RelativeError {
        /// The relative error asked for.
        relative_error: f64,
    },
    /// The range is empty or too narrow: `lowest` is zero, or `highest` is below twice
    /// `lowest`.
    #[error(
        "latency range {} to {} is not valid: lowest must be at least 1 ns and highest at least twice lowest",
        DebugDuration(*lowest),
        DebugDuration(*highest)
    )]
    Range {
        /// The lowest value asked for.
        lowest: Duration,
        /// The highest value asked for.
        highest: Duration,
    },
    /// A quantile is not between 0 and 1 (or is NaN).
    #[error("quantile {quantile} is not between 0 and 1")]
    Quantile {
        /// The quantile.
        quantile: f64,
    },
}

impl LatencyConfigError {
    /// The stable reason code of this error: [`MetricsReason::InvalidArgument`].
    pub fn reason(&self) -> MetricsReason {
        MetricsReason::InvalidArgument
    }
}

/// A `Duration` written with `Debug` (`1ns`, `3600s`) in a `Display` context.
struct DebugDuration(Duration);

impl fmt::Display for DebugDuration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relative_errors_map_to_hdrhistograms_sub_bucket_counts() {
        let cases = [
            (0.5, 2),
            (0.1, 16),
            (0.01, 128),
            (1.0 / 128.0, 128),
            (0.0078, 256),
            (0.001, 1024),
            (0.0001, 16_384),
            (0.00001, 131_072),
        ];
        for (relative_error, half) in cases {
            assert_eq!(half_count(relative_error), Some(half), "{relative_error}");
        }
        for refused in [0.0, -0.01, 0.51, 1.0, 9e-6, f64::NAN, f64::INFINITY] {
            assert_eq!(half_count(refused), None, "{refused}");
        }
    }

    #[test]
    fn significant_digits_shown_follow_the_relative_error() {
        for (digits, shown) in [(1, 1), (2, 2), (3, 3), (4, 4), (5, 5)] {
            let config = LatencyConfig::default().significant_digits(digits);
            assert_eq!(config.significant_digits_shown(), shown);
        }
        let config = LatencyConfig::default().relative_error(0.005);
        assert_eq!(config.significant_digits_shown(), 3);
        let config = LatencyConfig::default().relative_error(0.5);
        assert_eq!(config.significant_digits_shown(), 1);
    }
}
