//! HdrHistogram's percentile distribution text (the `.hgrm` files that HdrHistogram's
//! `outputPercentileDistribution` writes and its plotting tools read).

use std::io;
use std::time::Duration;

use super::distribution::LatencyDistribution;

impl LatencyDistribution {
    /// Writes the distribution as HdrHistogram's `outputPercentileDistribution` does: the
    /// `.hgrm` percentile table that HdrHistogram's plotting tools (the
    /// [plotter page](https://hdrhistogram.github.io/HdrHistogram/plotFiles.html), `hdr-plot`,
    /// `HistogramLogAnalyzer`) draw.
    ///
    /// - A header line, `Value`, `Percentile`, `TotalCount`, `1/(1-Percentile)`, and an
    ///   empty line;
    /// - one line per step of [`percentiles(ticks_per_half_distance)`](Self::percentiles)
    ///   (HdrHistogram's default is 5): the value in multiples of `unit` (1 µs: microseconds,
    ///   as HdrHistogram's common scaling ratio of 1000 for nanosecond records) with as many
    ///   decimals as the histogram has significant digits, the quantile with 12, the count of
    ///   records at or below the value, and `1/(1-quantile)` with 2 — left out on the last
    ///   line, at quantile 1;
    /// - three footer lines: `#[Mean = …, StdDeviation = …]`, `#[Max = …, Total count = …]`,
    ///   `#[Buckets = …, SubBuckets = …]`.
    ///
    /// Column widths and formats are Java's (`%12.Nf %2.12f %10d %14.2f`). The numbers are
    /// HdrHistogram's for the same records and layout, except the mean, which is exact here
    /// (HdrHistogram computes it from the middle of each sub-bucket), and decimal rounding,
    /// which is Rust's (to the nearest, a tie to even, where Java rounds a tie up).
    /// A `unit` of zero is read as 1 ns.
    ///
    /// # Errors
    ///
    /// Any error of `out`.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use mvx::metrics::LatencyHistogram;
    ///
    /// let latency = LatencyHistogram::new("rpc.latency");
    /// latency.record(Duration::from_micros(100));
    /// latency.record(Duration::from_micros(200));
    /// let mut text = Vec::new();
    /// // Values in microseconds, 2 percentile steps per halving of the distance to 100 %.
    /// latency.distribution().write_percentile_distribution(&mut text, 2, Duration::from_micros(1))?;
    /// let text = String::from_utf8(text).unwrap();
    /// assert_eq!(
    ///     text.lines().collect::<Vec<_>>(),
    ///     [
    ///         "       Value     Percentile TotalCount 1/(1-Percentile)",
    ///         "",
    ///         "      100.35 0.000000000000          1           1.00",
    ///         "      100.35 0.250000000000          1           1.33",
    ///         "      100.35 0.500000000000          1           2.00",
    ///         "      200.70 0.625000000000          2           2.67",
    ///         "      200.70 1.000000000000          2",
    ///         "#[Mean    =       150.00, StdDeviation   =        50.05]",
    ///         "#[Max     =       200.70, Total count    =            2]",
    ///         "#[Buckets =           35, SubBuckets     =          256]",
    ///     ]
    /// );
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn write_percentile_distribution(
        &self,
        mut out: impl io::Write,
        ticks_per_half_distance: u32,
        unit: Duration,
    ) -> io::Result<()> {
        let unit = unit.as_nanos().max(1) as f64;
        let digits = self.significant_digits;
        writeln!(
            out,
            "{:>12} {:>14} {:>10} {:>14}\n",
            "Value", "Percentile", "TotalCount", "1/(1-Percentile)"
        )?;
        for step in self.percentiles(ticks_per_half_distance) {
            let value = step.value.as_nanos() as f64 / unit;
            if step.quantile == 1.0 {
                writeln!(
                    out,
                    "{value:12.digits$} {:.12} {:10}",
                    step.quantile, step.count
                )?;
            } else {
                writeln!(
                    out,
                    "{value:12.digits$} {:.12} {:10} {:14.2}",
                    step.quantile,
                    step.count,
                    1.0 / (1.0 - step.quantile)
                )?;
            }
        }
        let scaled = |duration: Option<Duration>| {
            duration.map_or(0.0, |duration| duration.as_nanos() as f64 / unit)
        };
        let mean = if self.total == 0 {
            0.0
        } else {
            self.sum as f64 / self.total as f64 / unit
        };
        writeln!(
            out,
            "#[Mean    = {mean:12.digits$}, StdDeviation   = {:12.digits$}]",
            scaled(self.stdev())
        )?;
        writeln!(
            out,
            "#[Max     = {:12.digits$}, Total count    = {:12}]",
            scaled(self.max()),
            self.total
        )?;
        writeln!(
            out,
            "#[Buckets = {:12}, SubBuckets     = {:12}]",
            self.layout.buckets(),
            self.layout.sub_buckets()
        )
    }
}
