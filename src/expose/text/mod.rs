//! The Prometheus text format 0.0.4 and the OpenMetrics 1.0 text format.
//!
//! [`TextEncoder`] turns [`Snapshots`] (or a whole [`Registry`]) into exposition text.
//! Picking the format from an HTTP `Accept` header is HTTP's: `Format::negotiate`, in
//! `expose::http` (feature `http`).
//!
//! The encoder first groups snapshots into metric families (`families`), then writes each
//! family in the chosen format (`write`).
//!
//! # From snapshots to metric families
//!
//! - **Names** are fitted to the Prometheus grammar by [`sanitize_name`]: every character
//!   outside `[a-zA-Z0-9_]` becomes `_` (so `http.requests` is `http_requests`; `:` is
//!   replaced too, as it is reserved for recording rules), and a leading digit gets a `_`
//!   in front.
//! - A snapshot whose only dimension is `value` (a [`Counter`](crate::metrics::Counter) or a
//!   [`Gauge`](crate::metrics::Gauge)) is one family named after the snapshot. Any other
//!   snapshot gives one family per dimension, named `<snapshot>_<dimension>`, of the
//!   snapshot's kind.
//! - **Counters** end in `_total`: in 0.0.4 the family and sample names get the suffix if
//!   they lack it; in OpenMetrics the family is named without it and its sample with it.
//! - **Histograms** (see [`Snapshot`](crate::metrics::Snapshot)'s convention: `le:<bound>`,
//!   `sum`, `count`) become `_bucket` samples with an `le` label in increasing bound order
//!   ending with `le="+Inf"`, then `_sum` and `_count`. In OpenMetrics a negative `_sum` is
//!   left out, as that format asks of histograms that observe negative values (Prometheus
//!   then has no sum for the histogram, its buckets and count are unaffected). Their `nan` dimension is not
//!   exposed: the Prometheus model has no place for NaN observations (read them with
//!   [`Histogram::nan_count`](crate::metrics::Histogram::nan_count)).
//! - **Labels.** A snapshot with [labels](crate::metrics::Snapshot::labels) — a series, such
//!   as those the `metrics` facade creates per label set — is exposed under its metric name
//!   with its labels on every sample, after the labels added to the encoder. The series of
//!   one name and kind are one family: HELP and TYPE once, then the samples of each series,
//!   in key order. Label names are fitted to `[a-zA-Z_][a-zA-Z0-9_]*` as metric names are;
//!   a reserved one (starting with `__`, or `le` in a histogram) gets the prefix `label_`;
//!   a series label named like a label added to the encoder is left out (the encoder's
//!   wins). Series of one name but of different kinds collide like names do (below).
//! - **Info** snapshots are exposed as gauges: their dimensions are numbers, not the
//!   labels an info metric carries.
//! - **HELP** is the metric's [`Metadata`] description when it has one — followed by
//!   ` (<dimension>)` for a family of one dimension of a snapshot with several — and
//!   otherwise the mvx name (and dimension) the family comes from; escaped either way.
//!   **TYPE** is the kind. Every family has both, as `promtool check metrics` asks. Other
//!   metadata (unit, rate, flags) is not part of the text: see
//!   [`Registry::get_metrics`](crate::metrics::Registry::get_metrics).
//! - **Order** is deterministic: families in byte order of their exposed names, buckets by
//!   bound, then `_sum`, `_count`. If two snapshots give the same exposed family name (say
//!   `a.b` and `a_b`), the one whose mvx name sorts first is exposed and the others are
//!   left out and reported by [`Encoded::skipped`].
//! - **Numbers**: integers as they are; floats in Rust's shortest round-trip form (`0.25`,
//!   `1.0`, `1e-7`), `NaN`, `+Inf` and `-Inf`.

mod families;
mod write;

use std::collections::BTreeMap;

pub use super::sanitize::sanitize_name;

use self::write::escape_label_value;
use super::ExposeError;
use super::sanitize::is_label_name;
use crate::metrics::{Metadata, Registry, Snapshots};

/// An exposition text format.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Format {
    /// The Prometheus text format, version 0.0.4.
    Prometheus,
    /// The OpenMetrics text format, version 1.0.0.
    OpenMetrics,
}

impl Format {
    /// The `Content-Type` of a response in this format.
    pub const fn content_type(self) -> &'static str {
        match self {
            Self::Prometheus => "text/plain; version=0.0.4; charset=utf-8",
            Self::OpenMetrics => "application/openmetrics-text; version=1.0.0; charset=utf-8",
        }
    }
}

/// Encodes snapshots in a text [`Format`], with labels added to every sample.
///
/// # Examples
///
/// ```
/// use mvx::expose::{Format, TextEncoder};
/// use mvx::metrics::Registry;
///
/// let registry = Registry::new();
/// registry.counter("http.requests")?.inc_by(3);
/// registry.histogram("http.seconds", [0.1, 1.0])?.observe(0.25);
///
/// let encoder = TextEncoder::new().label("service", "api")?;
/// let text = encoder.encode_registry(&registry, Format::Prometheus).text;
/// assert_eq!(
///     text.lines().collect::<Vec<_>>(),
///     [
///         "# HELP http_requests_total http.requests",
///         "# TYPE http_requests_total counter",
///         "http_requests_total{service=\"api\"} 3",
///         "# HELP http_seconds http.seconds",
///         "# TYPE http_seconds histogram",
///         "http_seconds_bucket{service=\"api\",le=\"0.1\"} 0",
///         "http_seconds_bucket{service=\"api\",le=\"1.0\"} 1",
///         "http_seconds_bucket{service=\"api\",le=\"+Inf\"} 1",
///         "http_seconds_sum{service=\"api\"} 0.25",
///         "http_seconds_count{service=\"api\"} 1",
///     ]
/// );
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Debug, Default)]
pub struct TextEncoder {
    /// `name="escaped value"` pairs, joined by commas, ready to write.
    labels: String,
    /// The names of `labels`.
    label_names: Vec<String>,
}

/// The result of an encoding: the text and the snapshots left out.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Encoded {
    /// The exposition text.
    pub text: String,
    /// The format of `text`.
    pub format: Format,
    /// Families left out because another snapshot gave the same exposed name first, as
    /// `(exposed name, the mvx name and dimension it came from)`.
    pub skipped: Vec<(String, String)>,
}

impl TextEncoder {
    /// An encoder that adds no labels.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds the label `name="value"` to every sample (after any added before).
    ///
    /// # Errors
    ///
    /// [`ExposeError::InvalidLabelName`] if `name` is not a label name Prometheus accepts
    /// (`[a-zA-Z_][a-zA-Z0-9_]*`, not starting with `__`, which is reserved), or is `le`
    /// (the histogram bucket label), or is already added.
    pub fn label(mut self, name: &str, value: &str) -> Result<Self, ExposeError> {
        let taken = self.label_names.iter().any(|label| label == name);
        if !is_label_name(name) || taken {
            return Err(ExposeError::InvalidLabelName {
                name: name.to_owned(),
            });
        }
        if !self.labels.is_empty() {
            self.labels.push(',');
        }
        self.labels.push_str(name);
        self.labels.push_str("=\"");
        escape_label_value(value, &mut self.labels);
        self.labels.push('"');
        self.label_names.push(name.to_owned());
        Ok(self)
    }

    /// Encodes everything in `registry` (instruments and sources) in `format`, with the
    /// metrics' descriptions as HELP.
    pub fn encode_registry(&self, registry: &Registry, format: Format) -> Encoded {
        let (snapshots, metadata) = registry.read(true);
        self.encode_with_metadata(&snapshots, &metadata, format)
    }

    /// Encodes `snapshots` in `format`; HELP is each family's mvx name.
    pub fn encode(&self, snapshots: &Snapshots, format: Format) -> Encoded {
        self.encode_with_metadata(snapshots, &BTreeMap::new(), format)
    }

    /// Encodes `snapshots` in `format`, with the description in `metadata` (by snapshot
    /// name) as the HELP of the snapshot's families where there is one.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::collections::BTreeMap;
    /// use mvx::expose::{Format, TextEncoder};
    /// use mvx::metrics::{Counter, Metadata};
    ///
    /// let jobs = Counter::new("jobs");
    /// let snapshots = BTreeMap::from([("jobs".to_string(), jobs.snapshot())]);
    /// let metadata = BTreeMap::from([(
    ///     "jobs".to_string(),
    ///     Metadata::new().description("jobs run, \\ and\nmore"),
    /// )]);
    /// let text = TextEncoder::new().encode_with_metadata(&snapshots, &metadata, Format::Prometheus).text;
    /// assert!(text.starts_with("# HELP jobs_total jobs run, \\\\ and\\nmore\n"));
    /// ```
    pub fn encode_with_metadata(
        &self,
        snapshots: &Snapshots,
        metadata: &BTreeMap<String, Metadata>,
        format: Format,
    ) -> Encoded {
        let (families, skipped) = self.families(snapshots, metadata, format);
        let mut text = String::new();
        for (name, family) in &families {
            self.write_family(name, family, format, &mut text);
        }
        if format == Format::OpenMetrics {
            text.push_str("# EOF\n");
        }
        Encoded {
            text,
            format,
            skipped,
        }
    }
}

/// Encodes everything in `registry` in `format`, without added labels.
///
/// # Examples
///
/// ```
/// use mvx::expose::{Format, encode};
/// use mvx::metrics::Registry;
///
/// let registry = Registry::new();
/// registry.gauge("queue.depth")?.set(7.5);
/// assert_eq!(
///     encode(&registry, Format::OpenMetrics),
///     "# HELP queue_depth queue.depth\n# TYPE queue_depth gauge\nqueue_depth 7.5\n# EOF\n"
/// );
/// # Ok::<(), mvx::metrics::RegistryError>(())
/// ```
pub fn encode(registry: &Registry, format: Format) -> String {
    TextEncoder::new().encode_registry(registry, format).text
}

#[cfg(test)]
mod tests;
