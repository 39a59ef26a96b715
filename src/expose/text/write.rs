//! Writing metric families as text: HELP, TYPE and samples, escaped, with numbers in the
//! formats' grammar.

use std::fmt::Write as _;

use super::families::{Family, Samples};
use super::{Format, TextEncoder};
use crate::metrics::{MetricKind, Value};

impl TextEncoder {
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
        for series in &family.series {
            let labels = series.labels.as_str();
            match &series.samples {
                Samples::Single(value) => {
                    let suffix =
                        if format == Format::OpenMetrics && family.kind == MetricKind::Counter {
                            "_total"
                        } else {
                            ""
                        };
                    self.write_sample(name, suffix, labels, None, *value, out);
                }
                Samples::Histogram {
                    buckets,
                    sum,
                    count,
                } => {
                    for (bound, cumulative) in buckets {
                        self.write_sample(name, "_bucket", labels, Some(*bound), **cumulative, out);
                    }
                    // OpenMetrics treats a histogram's sum like a counter: never negative.
                    if format == Format::Prometheus || sum.as_f64() >= 0.0 || sum.as_f64().is_nan()
                    {
                        self.write_sample(name, "_sum", labels, None, *sum, out);
                    }
                    self.write_sample(name, "_count", labels, None, *count, out);
                }
            }
        }
    }

    fn write_sample(
        &self,
        name: &str,
        suffix: &str,
        series_labels: &str,
        le: Option<f64>,
        value: Value,
        out: &mut String,
    ) {
        out.push_str(name);
        out.push_str(suffix);
        if !self.labels.is_empty() || !series_labels.is_empty() || le.is_some() {
            out.push('{');
            out.push_str(&self.labels);
            if !series_labels.is_empty() {
                if !self.labels.is_empty() {
                    out.push(',');
                }
                out.push_str(series_labels);
            }
            if let Some(bound) = le {
                if !self.labels.is_empty() || !series_labels.is_empty() {
                    out.push(',');
                }
                out.push_str("le=\"");
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
fn escape_help(help: &str, format: Format, out: &mut String) {
    for c in help.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '"' if format == Format::OpenMetrics => out.push_str("\\\""),
            c => out.push(c),
        }
    }
}

fn write_value(value: Value, out: &mut String) {
    match value {
        Value::U64(value) => {
            let _ = write!(out, "{value}");
        }
        Value::I64(value) => {
            let _ = write!(out, "{value}");
        }
        Value::F64(value) => write_float(value, out),
    }
}

fn write_float(value: f64, out: &mut String) {
    if value.is_nan() {
        out.push_str("NaN");
    } else if value == f64::INFINITY {
        out.push_str("+Inf");
    } else if value == f64::NEG_INFINITY {
        out.push_str("-Inf");
    } else {
        let _ = write!(out, "{value:?}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn special_floats_and_integers_are_written_in_the_grammar() {
        let cases = [
            (Value::F64(f64::NAN), "NaN"),
            (Value::F64(f64::INFINITY), "+Inf"),
            (Value::F64(f64::NEG_INFINITY), "-Inf"),
            (Value::F64(1.0), "1.0"),
            (Value::F64(-0.25), "-0.25"),
            (Value::F64(1e-7), "1e-7"),
            (Value::F64(1e21), "1e21"),
            (Value::U64(u64::MAX), "18446744073709551615"),
            (Value::I64(-3), "-3"),
        ];
        for (value, expected) in cases {
            let mut out = String::new();
            write_value(value, &mut out);
            assert_eq!(out, expected);
        }
    }
}
