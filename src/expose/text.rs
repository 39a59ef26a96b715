//! The Prometheus text format 0.0.4 and the OpenMetrics 1.0 text format.
//!
//! [`TextEncoder`] turns [`Snapshots`] (or a whole [`Registry`]) into exposition text;
//! [`Format::negotiate`] picks the format from an HTTP `Accept` header.
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

use std::collections::BTreeMap;
use std::collections::btree_map::Entry;
use std::fmt::Write as _;

use super::ExposeError;
use crate::metrics::{Metadata, MetricKind, Registry, Snapshots, Value};

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

    /// The format to answer a request with the given `Accept` header.
    ///
    /// OpenMetrics is chosen when the header accepts `application/openmetrics-text` (with
    /// no `version`, or `version=1.0.0`) with a quality (`q`) above zero and at least as
    /// high as that of the Prometheus text format (`text/plain`, with no version or
    /// `version=0.0.4`, `text/*` or `*/*`). Everything else — no header, a malformed one,
    /// only types mvx cannot produce — gets the Prometheus text format, which every scraper
    /// understands: there is no `406 Not Acceptable`.
    ///
    /// # Examples
    ///
    /// ```
    /// use mvx::expose::Format;
    ///
    /// // What Prometheus sends.
    /// let prometheus = "application/openmetrics-text;version=1.0.0;q=0.5,\
    ///                   application/openmetrics-text;version=0.0.1;q=0.4,\
    ///                   text/plain;version=0.0.4;q=0.3,*/*;q=0.2";
    /// assert_eq!(Format::negotiate(Some(prometheus)), Format::OpenMetrics);
    /// assert_eq!(Format::negotiate(Some("text/plain")), Format::Prometheus);
    /// assert_eq!(Format::negotiate(None), Format::Prometheus);
    /// ```
    pub fn negotiate(accept: Option<&str>) -> Self {
        let Some(accept) = accept else {
            return Self::Prometheus;
        };
        let mut openmetrics = 0.0_f64;
        let mut prometheus = 0.0_f64;
        for range in accept.split(',') {
            let mut parts = range.split(';').map(str::trim);
            let media_type = parts.next().unwrap_or_default().to_ascii_lowercase();
            let mut quality = 1.0_f64;
            let mut version = None;
            for parameter in parts {
                let Some((key, value)) = parameter.split_once('=') else {
                    continue;
                };
                let value = value.trim().trim_matches('"');
                match key.trim().to_ascii_lowercase().as_str() {
                    "q" => quality = value.parse().unwrap_or(0.0),
                    "version" => version = Some(value.to_owned()),
                    _ => {}
                }
            }
            if !(0.0..=1.0).contains(&quality) {
                quality = 0.0;
            }
            let version = version.as_deref();
            match media_type.as_str() {
                "application/openmetrics-text" if matches!(version, None | Some("1.0.0")) => {
                    openmetrics = openmetrics.max(quality);
                }
                "text/plain" if matches!(version, None | Some("0.0.4")) => {
                    prometheus = prometheus.max(quality);
                }
                "text/*" | "*/*" => prometheus = prometheus.max(quality),
                _ => {}
            }
        }
        if openmetrics > 0.0 && openmetrics >= prometheus {
            Self::OpenMetrics
        } else {
            Self::Prometheus
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

/// One metric family, ready to write: one or more series.
struct Family<'a> {
    /// The mvx name (and dimension) it comes from.
    origin: String,
    /// The HELP text: the description, or the origin.
    help: String,
    kind: MetricKind,
    series: Vec<Series<'a>>,
}

/// The samples of one series of a family, with its labels.
struct Series<'a> {
    /// The series' labels, ready to write (empty for an unlabeled series).
    labels: String,
    samples: Samples<'a>,
}

impl<'a> Family<'a> {
    fn new(
        origin: String,
        help: String,
        kind: MetricKind,
        labels: String,
        samples: Samples<'a>,
    ) -> Self {
        Self {
            origin,
            help,
            kind,
            series: vec![Series { labels, samples }],
        }
    }
}

enum Samples<'a> {
    /// One sample.
    Single(Value),
    /// Cumulative buckets by bound (`+Inf` last), then sum and count.
    Histogram {
        buckets: Vec<(f64, &'a Value)>,
        sum: Value,
        count: Value,
    },
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
        let valid = name
            .chars()
            .enumerate()
            .all(|(i, c)| c == '_' || c.is_ascii_alphabetic() || (i > 0 && c.is_ascii_digit()));
        let taken = self.label_names.iter().any(|label| label == name);
        if name.is_empty() || !valid || name.starts_with("__") || name == "le" || taken {
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
        let mut families: BTreeMap<String, Family<'_>> = BTreeMap::new();
        let mut skipped = Vec::new();
        for (key, snapshot) in snapshots {
            // A labeled snapshot is kept under its series key: its name is the metric's.
            let name = if snapshot.labels.is_empty() {
                key
            } else {
                &snapshot.name
            };
            let base = sanitize_name(name);
            let description = metadata.get(name).and_then(Metadata::get_description);
            let histogram = snapshot.kind == MetricKind::Histogram;
            let labels = self.series_labels(&snapshot.labels, histogram);
            let candidates: Vec<(String, Family<'_>)> = match snapshot.kind {
                MetricKind::Histogram => histogram_family(name, &snapshot.dimensions)
                    .map(|(origin, samples)| {
                        let help = description.unwrap_or(name).to_owned();
                        let family = Family::new(
                            origin,
                            help,
                            MetricKind::Histogram,
                            labels.clone(),
                            samples,
                        );
                        (base.clone(), family)
                    })
                    .into_iter()
                    .collect(),
                kind => {
                    let single =
                        snapshot.dimensions.len() == 1 && snapshot.dimensions.contains_key("value");
                    snapshot
                        .dimensions
                        .iter()
                        .map(|(dimension, value)| {
                            let (exposed, origin, help) = if single {
                                let help = description.unwrap_or(name).to_owned();
                                (base.clone(), name.clone(), help)
                            } else {
                                let help = match description {
                                    Some(description) => format!("{description} ({dimension})"),
                                    None => format!("{name} {dimension}"),
                                };
                                (
                                    format!("{base}_{}", sanitize_name(dimension)),
                                    format!("{name} {dimension}"),
                                    help,
                                )
                            };
                            let kind = if kind == MetricKind::Info {
                                MetricKind::Gauge
                            } else {
                                kind
                            };
                            let family = Family::new(
                                origin,
                                help,
                                kind,
                                labels.clone(),
                                Samples::Single(*value),
                            );
                            (family_name(&exposed, kind, format), family)
                        })
                        .collect()
                }
            };
            for (exposed, mut family) in candidates {
                match families.entry(exposed) {
                    // Another series of the same metric: one more sample set in its family.
                    Entry::Occupied(mut taken)
                        if taken.get().origin == family.origin
                            && taken.get().kind == family.kind =>
                    {
                        taken.get_mut().series.append(&mut family.series);
                    }
                    Entry::Occupied(taken) => skipped.push((taken.key().clone(), family.origin)),
                    Entry::Vacant(free) => {
                        free.insert(family);
                    }
                }
            }
        }
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

    /// The labels of a series, ready to write: names fitted to the label grammar, values
    /// escaped; a name already added to the encoder, or seen before in the series, is left
    /// out.
    fn series_labels(&self, labels: &BTreeMap<String, String>, histogram: bool) -> String {
        let mut rendered = String::new();
        let mut written: Vec<String> = Vec::new();
        for (label, value) in labels {
            let exposed = exposed_label_name(label, histogram);
            if self.label_names.contains(&exposed) || written.contains(&exposed) {
                continue;
            }
            if !rendered.is_empty() {
                rendered.push(',');
            }
            rendered.push_str(&exposed);
            rendered.push_str("=\"");
            escape_label_value(value, &mut rendered);
            rendered.push('"');
            written.push(exposed);
        }
        rendered
    }

    fn write_family(&self, name: &str, family: &Family<'_>, format: Format, out: &mut String) {
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

/// The help and samples of a histogram snapshot, or `None` if it has neither buckets nor a
/// count.
fn histogram_family<'a>(
    name: &str,
    dimensions: &'a BTreeMap<String, Value>,
) -> Option<(String, Samples<'a>)> {
    let mut buckets: Vec<(f64, &'a Value)> = dimensions
        .iter()
        .filter_map(|(dimension, value)| {
            let bound = dimension.strip_prefix("le:")?;
            let bound = match bound {
                "+Inf" | "inf" | "+inf" => f64::INFINITY,
                other => other.parse::<f64>().ok().filter(|bound| !bound.is_nan())?,
            };
            Some((bound, value))
        })
        .collect();
    buckets.sort_by(|a, b| a.0.total_cmp(&b.0));
    let count = dimensions.get("count").copied();
    let last = buckets.last().map(|&(bound, value)| (bound, *value));
    let count = match (count, last) {
        (Some(count), _) => count,
        (None, Some((bound, value))) if bound == f64::INFINITY => value,
        _ => return None,
    };
    if buckets
        .last()
        .is_none_or(|&(bound, _)| bound != f64::INFINITY)
    {
        buckets.push((f64::INFINITY, dimensions.get("count")?));
    }
    Some((
        name.to_owned(),
        Samples::Histogram {
            buckets,
            sum: dimensions.get("sum").copied().unwrap_or(Value::U64(0)),
            count,
        },
    ))
}

/// A series label's name fitted to the label grammar `[a-zA-Z_][a-zA-Z0-9_]*`, as
/// [`sanitize_name`] fits metric names; a reserved name (starting with `__`, or `le` in a
/// histogram) gets the prefix `label_`.
fn exposed_label_name(name: &str, histogram: bool) -> String {
    let sanitized = sanitize_name(name);
    if sanitized.starts_with("__") || (histogram && sanitized == "le") {
        format!("label_{sanitized}")
    } else {
        sanitized
    }
}

/// The exposed family name of `name` for `kind` in `format` (counters' `_total` suffix).
fn family_name(name: &str, kind: MetricKind, format: Format) -> String {
    if kind != MetricKind::Counter {
        return name.to_owned();
    }
    match format {
        Format::Prometheus if name.ends_with("_total") => name.to_owned(),
        Format::Prometheus => format!("{name}_total"),
        Format::OpenMetrics => match name.strip_suffix("_total") {
            Some(stem) if !stem.is_empty() => stem.to_owned(),
            _ => name.to_owned(),
        },
    }
}

/// `name` fitted to the Prometheus metric name grammar without `:`: every character outside
/// `[a-zA-Z0-9_]` becomes `_`, and a name that is empty or starts with a digit gets a `_`
/// in front.
///
/// # Examples
///
/// ```
/// use mvx::expose::sanitize_name;
///
/// assert_eq!(sanitize_name("http.requests"), "http_requests");
/// assert_eq!(sanitize_name("5xx-rate"), "_5xx_rate");
/// assert_eq!(sanitize_name("naïve:name"), "na_ve_name");
/// ```
pub fn sanitize_name(name: &str) -> String {
    let mut sanitized = String::with_capacity(name.len() + 1);
    if name.chars().next().is_none_or(|c| c.is_ascii_digit()) {
        sanitized.push('_');
    }
    sanitized.extend(name.chars().map(|c| {
        if c.is_ascii_alphanumeric() || c == '_' {
            c
        } else {
            '_'
        }
    }));
    sanitized
}

/// Escapes a label value: `\` as `\\`, `"` as `\"`, line feed as `\n`.
fn escape_label_value(value: &str, out: &mut String) {
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
    use crate::metrics::{Histogram, Snapshot};

    fn snapshots(list: impl IntoIterator<Item = Snapshot>) -> Snapshots {
        list.into_iter()
            .map(|snapshot| (snapshot.name.clone(), snapshot))
            .collect()
    }

    #[test]
    fn names_are_sanitized_to_the_prometheus_grammar() {
        let cases = [
            ("http_requests", "http_requests"),
            ("http.requests", "http_requests"),
            ("a-b c/d", "a_b_c_d"),
            ("ns:sub", "ns_sub"),
            ("9lives", "_9lives"),
            ("", "_"),
            ("ünï", "_n_"),
            ("CamelCase42", "CamelCase42"),
        ];
        for (name, expected) in cases {
            assert_eq!(sanitize_name(name), expected, "{name:?}");
        }
    }

    #[test]
    fn label_values_and_help_are_escaped() {
        let encoder = TextEncoder::new()
            .label("path", "C:\\dir \"quoted\"\nnext")
            .expect("valid label");
        let text = encoder
            .encode(
                &snapshots([
                    Snapshot::new("odd\\name\n\"x\"", MetricKind::Gauge).with("value", 1u64)
                ]),
                Format::Prometheus,
            )
            .text;
        assert_eq!(
            text,
            "# HELP odd_name__x_ odd\\\\name\\n\"x\"\n\
             # TYPE odd_name__x_ gauge\n\
             odd_name__x_{path=\"C:\\\\dir \\\"quoted\\\"\\nnext\"} 1\n"
        );
        let text = encoder
            .encode(
                &snapshots([Snapshot::new("q\"", MetricKind::Gauge).with("value", 1u64)]),
                Format::OpenMetrics,
            )
            .text;
        assert!(text.starts_with("# HELP q_ q\\\"\n"), "{text}");
    }

    #[test]
    fn descriptions_are_the_help_text_escaped_and_origins_name_what_was_skipped() {
        let histogram = Histogram::new("latency", [1.0]).expect("valid");
        histogram.observe(0.5);
        let list = snapshots([
            Snapshot::new("a.x", MetricKind::Gauge).with("value", 1u64),
            Snapshot::new("a_x", MetricKind::Gauge).with("value", 2u64),
            Snapshot::new("jobs", MetricKind::Counter)
                .with("ok_total", 3u64)
                .with("failed_total", 1u64),
            histogram.snapshot(),
            Snapshot::new("plain", MetricKind::Gauge).with("value", 0u64),
        ]);
        let metadata: BTreeMap<String, Metadata> = [
            ("a.x", Metadata::new().description("first")),
            ("a_x", Metadata::new().description("second")),
            ("jobs", Metadata::new().description("jobs \"run\"")),
            (
                "latency",
                Metadata::new().description("C:\\dir\nnext").unit("s"),
            ),
            ("plain", Metadata::new().unit("no description")),
        ]
        .into_iter()
        .map(|(name, metadata)| (name.to_owned(), metadata))
        .collect();
        let encoded = TextEncoder::new().encode_with_metadata(&list, &metadata, Format::Prometheus);
        let help: Vec<&str> = encoded
            .text
            .lines()
            .filter(|line| line.starts_with("# HELP "))
            .collect();
        assert_eq!(
            help,
            [
                "# HELP a_x first",
                "# HELP jobs_failed_total jobs \"run\" (failed_total)",
                "# HELP jobs_ok_total jobs \"run\" (ok_total)",
                "# HELP latency C:\\\\dir\\nnext",
                "# HELP plain plain",
            ]
        );
        assert_eq!(encoded.skipped, [("a_x".to_owned(), "a_x".to_owned())]);

        let openmetrics =
            TextEncoder::new().encode_with_metadata(&list, &metadata, Format::OpenMetrics);
        assert!(
            openmetrics
                .text
                .contains("# HELP jobs_ok jobs \\\"run\\\" (ok_total)\n"),
            "{}",
            openmetrics.text
        );
        // Without metadata, HELP is the mvx name as before.
        assert!(
            TextEncoder::new()
                .encode(&list, Format::Prometheus)
                .text
                .contains("# HELP latency latency\n")
        );
    }

    #[test]
    fn invalid_label_names_are_refused() {
        for name in ["", "1a", "a-b", "__reserved", "le", "é"] {
            assert!(
                matches!(
                    TextEncoder::new().label(name, "v"),
                    Err(ExposeError::InvalidLabelName { name: refused }) if refused == name
                ),
                "{name:?}"
            );
        }
        let encoder = TextEncoder::new().label("job", "a").expect("valid");
        assert!(encoder.clone().label("job", "b").is_err(), "duplicate");
        let encoder = encoder.label("_x9", "b").expect("valid");
        assert_eq!(encoder.labels, "job=\"a\",_x9=\"b\"");
    }

    #[test]
    fn histogram_buckets_are_cumulative_in_bound_order_with_inf_last() {
        let histogram = Histogram::new("latency", [-1.0, 0.5, 2.0, 10.0, 100.0]).expect("valid");
        for value in [-5.0, 0.25, 0.5, 3.0, 50.0, 1e9, f64::NAN] {
            histogram.observe(value);
        }
        let text = TextEncoder::new()
            .encode(&snapshots([histogram.snapshot()]), Format::Prometheus)
            .text;
        assert_eq!(
            text,
            "# HELP latency latency\n\
             # TYPE latency histogram\n\
             latency_bucket{le=\"-1.0\"} 1\n\
             latency_bucket{le=\"0.5\"} 3\n\
             latency_bucket{le=\"2.0\"} 3\n\
             latency_bucket{le=\"10.0\"} 4\n\
             latency_bucket{le=\"100.0\"} 5\n\
             latency_bucket{le=\"+Inf\"} 6\n\
             latency_sum 1000000048.75\n\
             latency_count 6\n"
        );
    }

    #[test]
    fn openmetrics_leaves_a_negative_histogram_sum_out() {
        let histogram = Histogram::new("delta", [0.0]).expect("valid");
        histogram.observe(-2.0);
        let list = snapshots([histogram.snapshot()]);
        let openmetrics = TextEncoder::new().encode(&list, Format::OpenMetrics).text;
        assert_eq!(
            openmetrics,
            "# HELP delta delta\n# TYPE delta histogram\n\
             delta_bucket{le=\"0.0\"} 1\ndelta_bucket{le=\"+Inf\"} 1\ndelta_count 1\n# EOF\n"
        );
        let prometheus = TextEncoder::new().encode(&list, Format::Prometheus).text;
        assert!(prometheus.contains("delta_sum -2.0\n"), "{prometheus}");
    }

    #[test]
    fn a_histogram_snapshot_without_an_inf_bucket_gets_one_from_its_count() {
        let snapshot = Snapshot::new("h", MetricKind::Histogram)
            .with("le:1", 2u64)
            .with("count", 3u64)
            .with("sum", 4.5);
        let text = TextEncoder::new()
            .encode(&snapshots([snapshot]), Format::Prometheus)
            .text;
        assert!(
            text.ends_with(
                "h_bucket{le=\"1.0\"} 2\nh_bucket{le=\"+Inf\"} 3\nh_sum 4.5\nh_count 3\n"
            ),
            "{text}"
        );
        let empty = Snapshot::new("e", MetricKind::Histogram);
        assert_eq!(
            TextEncoder::new()
                .encode(&snapshots([empty]), Format::Prometheus)
                .text,
            ""
        );
    }

    #[test]
    fn counters_get_the_total_suffix_in_each_format() {
        let list = snapshots([
            Snapshot::new("jobs", MetricKind::Counter).with("value", 2u64),
            Snapshot::new("done_total", MetricKind::Counter).with("value", 1u64),
        ]);
        assert_eq!(
            TextEncoder::new().encode(&list, Format::Prometheus).text,
            "# HELP done_total done_total\n# TYPE done_total counter\ndone_total 1\n\
             # HELP jobs_total jobs\n# TYPE jobs_total counter\njobs_total 2\n"
        );
        assert_eq!(
            TextEncoder::new().encode(&list, Format::OpenMetrics).text,
            "# HELP done done_total\n# TYPE done counter\ndone_total 1\n\
             # HELP jobs jobs\n# TYPE jobs counter\njobs_total 2\n# EOF\n"
        );
    }

    #[test]
    fn multi_dimension_snapshots_give_one_family_per_dimension() {
        let snapshot = Snapshot::new("http.requests", MetricKind::Counter)
            .with("total", 10u64)
            .with("errors_total", 2u64)
            .with("latency_seconds_sum", 1.5);
        let text = TextEncoder::new()
            .encode(&snapshots([snapshot]), Format::Prometheus)
            .text;
        assert_eq!(
            text,
            "# HELP http_requests_errors_total http.requests errors_total\n\
             # TYPE http_requests_errors_total counter\n\
             http_requests_errors_total 2\n\
             # HELP http_requests_latency_seconds_sum_total http.requests latency_seconds_sum\n\
             # TYPE http_requests_latency_seconds_sum_total counter\n\
             http_requests_latency_seconds_sum_total 1.5\n\
             # HELP http_requests_total http.requests total\n\
             # TYPE http_requests_total counter\n\
             http_requests_total 10\n"
        );
    }

    #[test]
    fn order_is_deterministic_and_collisions_keep_the_first() {
        let list = snapshots([
            Snapshot::new("b", MetricKind::Gauge).with("value", 1u64),
            Snapshot::new("a.x", MetricKind::Gauge).with("value", 2u64),
            Snapshot::new("a_x", MetricKind::Gauge).with("value", 3u64),
            Snapshot::new("info", MetricKind::Info).with("value", 1u64),
        ]);
        let first = TextEncoder::new().encode(&list, Format::Prometheus);
        assert_eq!(
            first.text,
            "# HELP a_x a.x\n# TYPE a_x gauge\na_x 2\n\
             # HELP b b\n# TYPE b gauge\nb 1\n\
             # HELP info info\n# TYPE info gauge\ninfo 1\n"
        );
        assert_eq!(first.skipped, [("a_x".to_owned(), "a_x".to_owned())]);
        let reversed: Snapshots = list.into_iter().rev().collect();
        assert_eq!(
            TextEncoder::new().encode(&reversed, Format::Prometheus),
            first
        );
    }

    #[test]
    fn the_series_of_one_name_are_one_family_with_labels_on_every_sample() {
        let registry = Registry::new();
        registry
            .counter_with_labels("http.requests", &[("code", "500"), ("method", "GET")])
            .unwrap()
            .inc();
        registry
            .counter_with_labels("http.requests", &[("method", "GET"), ("code", "200")])
            .unwrap()
            .inc_by(3);
        registry.counter("http.requests").unwrap().inc_by(7);
        let latency = registry
            .histogram_with_labels("rpc.seconds", &[("le", "x"), ("a.b", "q\"")], [1.0])
            .unwrap();
        latency.observe(0.5);
        let encoder = TextEncoder::new()
            .label("method", "ignored-by-series")
            .unwrap();
        let text = encoder.encode_registry(&registry, Format::Prometheus).text;
        assert_eq!(
            text,
            "# HELP http_requests_total http.requests\n\
             # TYPE http_requests_total counter\n\
             http_requests_total{method=\"ignored-by-series\"} 7\n\
             http_requests_total{method=\"ignored-by-series\",code=\"200\"} 3\n\
             http_requests_total{method=\"ignored-by-series\",code=\"500\"} 1\n\
             # HELP rpc_seconds rpc.seconds\n\
             # TYPE rpc_seconds histogram\n\
             rpc_seconds_bucket{method=\"ignored-by-series\",a_b=\"q\\\"\",label_le=\"x\",le=\"1.0\"} 1\n\
             rpc_seconds_bucket{method=\"ignored-by-series\",a_b=\"q\\\"\",label_le=\"x\",le=\"+Inf\"} 1\n\
             rpc_seconds_sum{method=\"ignored-by-series\",a_b=\"q\\\"\",label_le=\"x\"} 0.5\n\
             rpc_seconds_count{method=\"ignored-by-series\",a_b=\"q\\\"\",label_le=\"x\"} 1\n"
        );
        let openmetrics = TextEncoder::new().encode_registry(&registry, Format::OpenMetrics);
        assert!(
            openmetrics.text.contains(
                "# TYPE http_requests counter\nhttp_requests_total 7\n\
                 http_requests_total{code=\"200\",method=\"GET\"} 3\n"
            ),
            "{}",
            openmetrics.text
        );
    }

    #[test]
    fn series_of_one_name_with_another_kind_are_skipped() {
        let list: Snapshots = [
            Snapshot::new("jobs", MetricKind::Gauge)
                .with("value", 1u64)
                .with_label("queue", "a"),
            Snapshot::new("jobs", MetricKind::Counter)
                .with("value", 2u64)
                .with_label("queue", "b"),
        ]
        .into_iter()
        .map(|snapshot| (snapshot.key(), snapshot))
        .collect();
        let encoded = TextEncoder::new().encode(&list, Format::OpenMetrics);
        assert_eq!(
            encoded.text,
            "# HELP jobs jobs\n# TYPE jobs gauge\njobs{queue=\"a\"} 1\n# EOF\n"
        );
        assert_eq!(encoded.skipped, [("jobs".to_owned(), "jobs".to_owned())]);
    }

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

    #[test]
    fn negotiation_follows_the_accept_header() {
        let cases = [
            (None, Format::Prometheus),
            (Some(""), Format::Prometheus),
            (Some("garbage;;;,,"), Format::Prometheus),
            (Some("application/json"), Format::Prometheus),
            (Some("application/openmetrics-text"), Format::OpenMetrics),
            (
                Some("application/openmetrics-text; version=1.0.0; charset=utf-8"),
                Format::OpenMetrics,
            ),
            (
                Some("application/openmetrics-text;version=0.0.1"),
                Format::Prometheus,
            ),
            (Some("application/openmetrics-text;q=0"), Format::Prometheus),
            (
                Some("text/plain;q=0.9, application/openmetrics-text;q=0.5"),
                Format::Prometheus,
            ),
            (
                Some(
                    "text/plain;version=0.0.4;q=0.3,application/openmetrics-text;version=1.0.0;q=0.5",
                ),
                Format::OpenMetrics,
            ),
            (Some("*/*"), Format::Prometheus),
            (
                Some("*/*, application/openmetrics-text"),
                Format::OpenMetrics,
            ),
            (
                Some("APPLICATION/OpenMetrics-Text; Q=0.8, text/plain; q=0.8"),
                Format::OpenMetrics,
            ),
            (Some("application/openmetrics-text;q=2"), Format::Prometheus),
        ];
        for (accept, expected) in cases {
            assert_eq!(Format::negotiate(accept), expected, "{accept:?}");
        }
    }
}
