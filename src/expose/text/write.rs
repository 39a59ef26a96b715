//! Writing metric families as text: HELP, TYPE and samples, escaped, with numbers in the
//! formats' grammar.

use std::fmt::Write as _;

use super::families::{Family, Samples};
use super::number::{write_float, write_value};
use super::{Format, TextEncoder};
use crate::metrics::{MetricKind, Value};

impl TextEncoder {
    /// Writes `family` under `name` (its name in `format`): HELP, TYPE, in OpenMetrics its
    /// UNIT if it has one, then the samples of each series.
    pub(super) fn write_family(
        &self,
        name: &str,
        family: &Family<'_>,
        format: Format,
        out: &mut String,
    ) {
        out.push_str("# HELP ");
        out.push_str(name);
        out.push(' ');
        escape_help(&family.help, format, out);
        out.push('\n');
        let _ = writeln!(out, "# TYPE {name} {}", family.kind.as_str());
        let openmetrics = format == Format::OpenMetrics;
        if let (true, Some(unit)) = (openmetrics, family.unit) {
            let _ = writeln!(out, "# UNIT {name} {unit}");
        }
        // In OpenMetrics, a counter family `y` has the sample `y_total` (in the Prometheus
        // format, `name` is `y_total` already).
        let suffix = match (openmetrics, family.kind) {
            (true, MetricKind::Counter) => "_total",
            _ => "",
        };
        // `_created` only in OpenMetrics, and only for counters, histograms and summaries.
        let with_created = openmetrics
            && self.created
            && matches!(
                family.kind,
                MetricKind::Counter | MetricKind::Histogram | MetricKind::Summary
            );
        for series in &family.series {
            let labels = series.labels.as_str();
            match &series.samples {
                Samples::Single(value) => {
                    self.write_sample(name, suffix, labels, None, *value, out);
                }
                Samples::Histogram {
                    buckets,
                    sum,
                    count,
                } => {
                    for (bound, cumulative) in buckets {
                        let le = Some(("le", *bound));
                        self.write_sample(name, "_bucket", labels, le, **cumulative, out);
                    }
                    // OpenMetrics treats a histogram's sum like a counter: never negative.
                    if !openmetrics || sum.as_f64() >= 0.0 || sum.as_f64().is_nan() {
                        self.write_sample(name, "_sum", labels, None, *sum, out);
                    }
                    self.write_sample(name, "_count", labels, None, *count, out);
                }
                Samples::Summary {
                    quantiles,
                    sum,
                    count,
                } => {
                    for (quantile, value) in quantiles {
                        let label = Some(("quantile", *quantile));
                        self.write_sample(name, "", labels, label, *value, out);
                    }
                    // OpenMetrics treats a summary's sum like a counter: never negative.
                    if !openmetrics || sum.as_f64() >= 0.0 || sum.as_f64().is_nan() {
                        self.write_sample(name, "_sum", labels, None, *sum, out);
                    }
                    self.write_sample(name, "_count", labels, None, *count, out);
                }
            }
            if let (true, Some(created)) = (with_created, series.created) {
                self.write_sample(name, "_created", labels, None, Value::F64(created), out);
            }
        }
    }

    /// Writes the sample `name` + `suffix` with the encoder's labels, then
    /// `series_labels`, then `bound` if given: the label `le` of a histogram bucket or
    /// `quantile` of a summary, and its number.
    pub(super) fn write_sample(
        &self,
        name: &str,
        suffix: &str,
        series_labels: &str,
        bound: Option<(&str, f64)>,
        value: Value,
        out: &mut String,
    ) {
        out.push_str(name);
        out.push_str(suffix);
        if !self.labels.is_empty() || !series_labels.is_empty() || bound.is_some() {
            out.push('{');
            out.push_str(&self.labels);
            if !series_labels.is_empty() {
                if !self.labels.is_empty() {
                    out.push(',');
                }
                out.push_str(series_labels);
            }
            if let Some((label, bound)) = bound {
                if !self.labels.is_empty() || !series_labels.is_empty() {
                    out.push(',');
                }
                out.push_str(label);
                out.push_str("=\"");
                write_float(bound, out);
                out.push('"');
            }
            out.push('}');
        }
        out.push(' ');
        write_value(value, out);
        out.push('\n');
    }
}

/// Escapes a label value: `\` as `\\`, `"` as `\"`, line feed as `\n`.
pub(super) fn escape_label_value(value: &str, out: &mut String) {
    for c in value.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
}

/// Escapes HELP text: `\` and line feed, and in OpenMetrics `"` too.
pub(super) fn escape_help(help: &str, format: Format, out: &mut String) {
    for c in help.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '"' if format == Format::OpenMetrics => out.push_str("\\\""),
            c => out.push(c),
        }
    }
}
