//! The Prometheus text format 0.0.4 and the OpenMetrics 1.0 text format.
//!
//! [`TextEncoder`] turns [`Snapshots`] (or a whole [`Registry`]) into exposition text.
//! Picking the format from an HTTP `Accept` header is HTTP's: `Format::negotiate`, in
//! `expose::http` (feature `http`).
//!
//! The encoder first groups snapshots into metric families and leaves out those whose
//! names collide (`families`), then writes each family in the chosen format (`write`,
//! numbers by `number`), and reports what it left out (`skipped`).
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
//! - **Counters.** The OpenMetrics family of a counter is named without one trailing
//!   `_total` and its sample with it (`jobs` and `jobs_total` both give the family `jobs`
//!   and the sample `jobs_total`); in the 0.0.4 format family and sample are both named
//!   with it (`jobs_total`).
//! - **Histograms** (see [`Snapshot`](crate::metrics::Snapshot)'s convention: `le:<bound>`,
//!   `sum`, `count`) become `_bucket` samples with an `le` label in increasing bound order
//!   ending with `le="+Inf"`, then `_sum` and `_count`. In OpenMetrics a negative `_sum` is
//!   left out, as that format asks of histograms that observe negative values (Prometheus
//!   then has no sum for the histogram, its buckets and count are unaffected). Their `nan`
//!   dimension is not exposed: the Prometheus model has no place for NaN observations (read
//!   them with [`Histogram::nan_count`](crate::metrics::Histogram::nan_count)).
//! - **Labels.** A snapshot with [labels](crate::metrics::Snapshot::labels) — a series, such
//!   as those the `metrics` facade creates per label set — is exposed under its metric name
//!   with its labels on every sample, after the labels added to the encoder. The series of
//!   one name and kind are one family: HELP and TYPE once, then the samples of each series,
//!   in key order. Label names are fitted to `[a-zA-Z_][a-zA-Z0-9_]*` as metric names are;
//!   a reserved one (starting with `__`, or `le` in a histogram) gets the prefix `label_`;
//!   a series label named like a label added to the encoder is left out (the encoder's
//!   wins). Series of one name but of different kinds collide (below).
//! - **Info** snapshots are exposed as gauges: their dimensions are numbers, not the
//!   labels an info metric carries.
//! - **HELP** is the metric's [`Metadata`] description when it has one — followed by
//!   ` (<dimension>)` for a family of one dimension of a snapshot with several — and
//!   otherwise the mvx name (and dimension) the family comes from; escaped either way.
//!   **TYPE** is the kind. Every family has both, as `promtool check metrics` asks.
//! - **UNIT** (OpenMetrics only, after TYPE) is the metadata's unit when the family's
//!   OpenMetrics name ends with `_<unit>`, as OpenMetrics requires: `http.request.seconds`
//!   with the unit `seconds` has `# UNIT http_request_seconds seconds`, as prometheus_client
//!   writes it. Otherwise the family has no UNIT line, and keeps its name: where
//!   prometheus_client appends `_<unit>` to a metric's name, mvx does not rename, because
//!   a unit is metadata that may be described (or changed) after the series exist, and
//!   units such as `s` or `°C` are meant for listings. Other metadata (rate, flags) is not
//!   part of the text: see [`Registry::get_metrics`](crate::metrics::Registry::get_metrics).
//! - **`_created`** (OpenMetrics only): each series of a counter (after `_total`) and of a
//!   histogram (after `_count`) whose snapshot has a
//!   [`created`](crate::metrics::Snapshot::created) time has a `_created` sample with it,
//!   in seconds since the Unix epoch: the time the [`Counter`](crate::metrics::Counter) or
//!   [`Histogram`](crate::metrics::Histogram) was made (for a registry's labeled series,
//!   when the series was first asked for). On by default, as the official Python client
//!   writes them; [`TextEncoder::created`] switches them off (Go's client writes them only
//!   when asked). The 0.0.4 text never has them: prometheus_client writes them there as
//!   gauge families of their own (`<name>_created`), which Prometheus stores as one more
//!   plain series per counter and histogram series and gives no meaning; Go's client does
//!   not write them.
//! - **Order** is deterministic: families in byte order of their names in the format,
//!   buckets by bound, then `_sum`, `_count` and `_created`.
//! - **Numbers** are written as the official Python client (`prometheus_client`) writes
//!   them, so that one bucket bound is one `le` label value across a fleet of services in
//!   any language: integers (counts) as they are (`3`, where prometheus_client, whose
//!   counts are floats, writes `3.0`: the same number to every parser); floats — sample
//!   values, `le` label values, `_created` times — as its `floatToGoString` does: `NaN`,
//!   `+Inf`, `-Inf`, else the fewest digits that read back as the same `f64` (the closest
//!   of them, a tie to the even digit), in Python's `repr` notation (`0.25`, `1.0`,
//!   `100000.0`, `1e-07`, `1e+16`) except that a positive value of a million or more takes
//!   an exponent as Go's `%g` does (`1e+06`, `1.234567e+06`). Go's client writes the same
//!   `le` values in OpenMetrics; in the 0.0.4 format it writes whole numbers without `.0`
//!   (`le="1"`), which Prometheus 3 reads as the same bucket and Prometheus 2 does not.
//!   tests/expose_numbers.rs holds mvx against prometheus_client on random floats.
//!
//! # Collisions: no sample is lost silently
//!
//! A family takes its OpenMetrics name and the name of every sample its type may have,
//! written or not (the OpenMetrics parsers reserve them all): a gauge `g` takes `g`; a
//! counter `y` takes `y`, `y_total` and `y_created`; a histogram `x` takes `x`, `x_bucket`,
//! `x_sum`, `x_count` and `x_created`. Two families cannot take one name: Prometheus would
//! keep one of the two series and drop the other without a word, and the official
//! OpenMetrics parser refuses the whole text. So families are taken in byte order of their
//! OpenMetrics names (for one name, in order of the mvx names they come from, then of the
//! kinds in the order met), and a family one of whose names a family before it takes is
//! left out — the same families in both formats: of a histogram `x` and a gauge `x_count`
//! the gauge, of a counter `y` and a gauge `y_total` the gauge, of gauges `a.x` and `a_x`
//! the one from `a_x`, of two series of `jobs` of different kinds the later one.
//!
//! A [`Registry`] refuses such a collision between its instruments when the later one is
//! registered ([`RegistryError::SampleNameCollision`](crate::metrics::RegistryError::SampleNameCollision)).
//! What reaches the encoder comes from snapshot sources (a recorder's metrics, whose names
//! are known only when they are read) or from snapshots given to [`TextEncoder::encode`];
//! each family left out is reported:
//!
//! - in [`Encoded::skipped`], as a [`Skipped`];
//! - by the gauge [`SKIPPED_FAMILIES`], `mvx_exposition_skipped_families`, at the end of
//!   the text (with the encoder's labels): how many families this exposition left out,
//!   its HELP naming each and why. Alert on `mvx_exposition_skipped_families > 0`. It is
//!   a gauge, not a counter: the encoder keeps no state between scrapes, and each scrape
//!   says how many are missing from it. It is written only when a family is left out, and
//!   only if no exposed family takes its name;
//! - in the 0.0.4 format, by a comment line each, before that gauge:
//!   `# mvx: skipped family x_count: its sample x_count collides with histogram x`
//!   (OpenMetrics allows no comment lines; there the gauge's HELP is the report).
//!
//! Both official Python parsers and `promtool check metrics` accept the text
//! (tests/expose_collisions.rs).

mod families;
mod number;
mod skipped;
mod write;

use std::collections::BTreeMap;

pub use self::skipped::{SKIPPED_FAMILIES, Skipped};
pub use super::sanitize::sanitize_name;

use self::write::escape_label_value;
use super::ExposeError;
use super::sanitize::is_label_name;
use crate::metrics::{Metadata, MetricKind, Registry, Snapshots};

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
#[derive(Clone, Debug)]
pub struct TextEncoder {
    /// `name="escaped value"` pairs, joined by commas, ready to write.
    labels: String,
    /// The names of `labels`.
    label_names: Vec<String>,
    /// Whether OpenMetrics text has `_created` samples.
    created: bool,
}

impl Default for TextEncoder {
    fn default() -> Self {
        Self {
            labels: String::new(),
            label_names: Vec::new(),
            created: true,
        }
    }
}

/// The result of an encoding: the text and the families left out.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Encoded {
    /// The exposition text.
    pub text: String,
    /// The format of `text`.
    pub format: Format,
    /// The families left out because a name of theirs is taken by a family before them,
    /// in the order they were met (by OpenMetrics name; see the
    /// [module docs](self#collisions-no-sample-is-lost-silently)); the text reports them too.
    pub skipped: Vec<Skipped>,
}

impl TextEncoder {
    /// An encoder that adds no labels and writes `_created` samples.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets whether OpenMetrics text has a `_created` sample — the time the series was
    /// created, in seconds since the Unix epoch — after each counter's `_total` and each
    /// histogram's `_count`, for the series whose snapshot has a
    /// [`created`](crate::metrics::Snapshot::created) time (every registry
    /// [`Counter`](crate::metrics::Counter) and [`Histogram`](crate::metrics::Histogram)
    /// has one). Default `true`, as the official Python client writes them; `false` as its
    /// `disable_created_metrics()` or Go's client without `EnableOpenMetricsTextCreatedSamples`.
    /// The Prometheus 0.0.4 text never has them (see the [module docs](self)).
    ///
    /// # Examples
    ///
    /// ```
    /// use mvx::expose::{Format, TextEncoder};
    /// use mvx::metrics::Registry;
    ///
    /// let registry = Registry::new();
    /// registry.counter("jobs")?.inc();
    /// let text = TextEncoder::new().encode_registry(&registry, Format::OpenMetrics).text;
    /// assert!(text.contains("\njobs_total 1\njobs_created 1."), "{text}");
    /// let text = TextEncoder::new()
    ///     .created(false)
    ///     .encode_registry(&registry, Format::OpenMetrics)
    ///     .text;
    /// assert_eq!(text, "# HELP jobs jobs\n# TYPE jobs counter\njobs_total 1\n# EOF\n");
    /// # Ok::<(), mvx::metrics::RegistryError>(())
    /// ```
    pub fn created(mut self, created: bool) -> Self {
        self.created = created;
        self
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
        let families = self.families(snapshots, metadata);
        let mut written: Vec<(String, &families::Family<'_>)> = families
            .exposed
            .iter()
            .map(|(name, family)| (exposed_family_name(name, family.kind, format), family))
            .collect();
        // In the Prometheus format, counters' families are named with `_total`: in order
        // of the names written.
        written.sort_by(|a, b| a.0.cmp(&b.0));
        let mut text = String::new();
        for (name, family) in written {
            self.write_family(&name, family, format, &mut text);
        }
        let skipped: Vec<Skipped> = families
            .left_out
            .into_iter()
            .map(|left| Skipped::new(left, format))
            .collect();
        self.write_skipped(&skipped, &families.taken, format, &mut text);
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

/// The name a family whose OpenMetrics name is `name` has in `format`: a counter's ends
/// with `_total` in the Prometheus format (its sample's name in both).
fn exposed_family_name(name: &str, kind: MetricKind, format: Format) -> String {
    match (format, kind) {
        (Format::Prometheus, MetricKind::Counter) => format!("{name}_total"),
        _ => name.to_owned(),
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
