//! The families left out of an exposition, and how the text reports them (the rule is in
//! the [module docs](super)): a comment line each in the Prometheus format, and the
//! self-metric [`SKIPPED_FAMILIES`] in both formats.

use std::collections::HashMap;
use std::fmt::{self, Write as _};

use super::families::Left;
use super::write::escape_help;
use super::{Format, TextEncoder, exposed_family_name};
use crate::metrics::{MetricKind, Value};

/// The name of the gauge that an exposition with families left out ends with: how many
/// (see [`Skipped`]). Its HELP names each of them and why; it carries the labels added to
/// the encoder. Written only when a family is left out, and only if no exposed family
/// takes its name.
pub const SKIPPED_FAMILIES: &str = "mvx_exposition_skipped_families";

/// A family left out of an exposition: one of the names it would take — its own, or a
/// sample name of its type — is taken by a family before it in name order.
///
/// Names are those of the encoding's format (a counter family `y` is `y_total` in the
/// Prometheus format). `Display` gives the report the text carries:
/// `skipped family x_count: its sample x_count collides with histogram x`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Skipped {
    /// The family's exposed name.
    pub family: String,
    /// The mvx name (and dimension) it comes from.
    pub origin: String,
    /// Its kind.
    pub kind: MetricKind,
    /// The name it would take that is taken: its own, or one of its samples'.
    pub name: String,
    /// The exposed name of the family that takes `name`.
    pub taken_by: String,
    /// That family's kind.
    pub taken_by_kind: MetricKind,
}

impl Skipped {
    pub(super) fn new(left: Left, format: Format) -> Self {
        Self {
            family: exposed_family_name(&left.family, left.kind, format),
            origin: left.origin,
            kind: left.kind,
            name: left.name,
            taken_by: exposed_family_name(&left.taken_by, left.taken_by_kind, format),
            taken_by_kind: left.taken_by_kind,
        }
    }

    /// What `name` is to the skipped family: the name of a sample it writes, or only the
    /// family's name (a counter's or a histogram's, whose samples have suffixes).
    fn what(&self) -> &'static str {
        let bare = self.kind != MetricKind::Gauge
            && (self.name == self.family || self.family == format!("{}_total", self.name));
        if bare { "name" } else { "sample" }
    }
}

impl fmt::Display for Skipped {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "skipped family {}: its {} {} collides with {} {}",
            self.family,
            self.what(),
            self.name,
            self.taken_by_kind,
            self.taken_by
        )
    }
}

impl TextEncoder {
    /// Reports `skipped`: a `# mvx: <report>` comment line each in the Prometheus format
    /// (OpenMetrics allows no comments), then the gauge [`SKIPPED_FAMILIES`] unless a family
    /// in `taken` takes its name.
    pub(super) fn write_skipped(
        &self,
        skipped: &[Skipped],
        taken: &HashMap<String, (String, MetricKind)>,
        format: Format,
        out: &mut String,
    ) {
        if skipped.is_empty() {
            return;
        }
        if format == Format::Prometheus {
            for report in skipped {
                let _ = writeln!(out, "# mvx: {report}");
            }
        }
        if taken.contains_key(SKIPPED_FAMILIES) {
            return;
        }
        let mut help = String::from(
            "Families left out of this exposition because a name of theirs is taken by a family before them: ",
        );
        for (index, report) in skipped.iter().enumerate() {
            if index > 0 {
                help.push_str("; ");
            }
            let _ = write!(
                help,
                "{} (its {} {} collides with {} {})",
                report.family,
                report.what(),
                report.name,
                report.taken_by_kind,
                report.taken_by
            );
        }
        help.push('.');
        out.push_str("# HELP ");
        out.push_str(SKIPPED_FAMILIES);
        out.push(' ');
        escape_help(&help, format, out);
        let _ = writeln!(out, "\n# TYPE {SKIPPED_FAMILIES} gauge");
        self.write_sample(
            SKIPPED_FAMILIES,
            "",
            "",
            None,
            Value::U64(skipped.len() as u64),
            out,
        );
    }
}
