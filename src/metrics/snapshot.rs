//! Snapshots: the aggregated state of a metric at one moment, and the barrier that takes
//! them once a recorder has applied every event accepted before ([`SnapshotNow`]).

use std::collections::BTreeMap;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use serde::ser::SerializeStruct;
use serde::{Deserialize, Serialize, Serializer};

use super::{MetricsRecorder, RecorderError};
use crate::sink::wait::Flush;

/// What a metric measures, which decides how exposition presents it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MetricKind {
    /// A monotonically increasing count.
    Counter,
    /// A value that goes up and down.
    Gauge,
    /// Observations counted into buckets, with their sum and count.
    Histogram,
    /// Quantiles of observations, with their sum and count (a
    /// [`LatencyHistogram`](super::LatencyHistogram)).
    Summary,
    /// Information that is not a measurement (versions, labels); values are usually 1.
    Info,
}

impl MetricKind {
    /// The kind in lower case, such as `"counter"`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Counter => "counter",
            Self::Gauge => "gauge",
            Self::Histogram => "histogram",
            Self::Summary => "summary",
            Self::Info => "info",
        }
    }
}

impl fmt::Display for MetricKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A number in a snapshot. Serializes as a plain JSON number.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Value {
    /// An unsigned integer (counts).
    U64(u64),
    /// A signed integer.
    I64(i64),
    /// A floating-point number (sums, gauges).
    F64(f64),
}

impl Value {
    /// The value as `u64`, when it is one exactly: a `U64`, a non-negative `I64`, or an
    /// `F64` that is a whole number within `u64`'s range. `None` otherwise (negative,
    /// fractional, NaN or too large), never a rounded or wrapped number.
    ///
    /// # Examples
    ///
    /// ```
    /// use mvx::metrics::Value;
    ///
    /// assert_eq!(Value::U64(7).as_u64(), Some(7));
    /// assert_eq!(Value::I64(7).as_u64(), Some(7));
    /// assert_eq!(Value::F64(7.0).as_u64(), Some(7));
    /// assert_eq!(Value::I64(-1).as_u64(), None);
    /// assert_eq!(Value::F64(0.5).as_u64(), None);
    /// ```
    pub fn as_u64(self) -> Option<u64> {
        match self {
            Self::U64(value) => Some(value),
            Self::I64(value) => u64::try_from(value).ok(),
            // 2^64 as f64 is exact; every whole f64 below it converts exactly.
            Self::F64(value) if (0.0..18_446_744_073_709_551_616.0).contains(&value) => {
                (value.fract() == 0.0).then_some(value as u64)
            }
            Self::F64(_) => None,
        }
    }

    /// The value as `f64` (large integers lose precision).
    pub fn as_f64(self) -> f64 {
        match self {
            Self::U64(value) => value as f64,
            Self::I64(value) => value as f64,
            Self::F64(value) => value,
        }
    }
}

impl fmt::Display for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::U64(value) => write!(f, "{value}"),
            Self::I64(value) => write!(f, "{value}"),
            Self::F64(value) => write!(f, "{value}"),
        }
    }
}

impl From<u64> for Value {
    fn from(value: u64) -> Self {
        Self::U64(value)
    }
}

impl From<u32> for Value {
    fn from(value: u32) -> Self {
        Self::U64(value.into())
    }
}

impl From<usize> for Value {
    fn from(value: usize) -> Self {
        Self::U64(value as u64)
    }
}

impl From<i64> for Value {
    fn from(value: i64) -> Self {
        Self::I64(value)
    }
}

impl From<i32> for Value {
    fn from(value: i32) -> Self {
        Self::I64(value.into())
    }
}

impl From<f64> for Value {
    fn from(value: f64) -> Self {
        Self::F64(value)
    }
}

/// The state of one metric: a name, a kind, named numeric dimensions, and the labels of
/// its series.
///
/// Dimensions are kept in name order. Labels (`method="GET"`) tell apart the series of one
/// metric, such as the instruments the `metrics` facade creates per label set; most
/// snapshots have none. A labeled snapshot is kept in [`Snapshots`] under its
/// [`series_key`], the name followed by its labels. A histogram's dimensions follow one convention, so
/// that exposition can read them: `count`, `sum`, and one `le:<bound>` per bucket with the
/// cumulative count of observations `<=` that bound, the last being `le:+Inf`.
///
/// # JSON
///
/// A snapshot serializes in the shape of the MVX Metrics documents, `{"name": ...,
/// "dimensions": {...}}`, and nothing else — but for `labels`, written when a series has
/// some (the documents' metrics never do), since without them two series of one metric
/// would read the same. [`Detailed`] writes every field: `kind`, and `created` when set.
/// Deserializing reads either form; a snapshot without `kind` reads as a
/// [`Gauge`](MetricKind::Gauge), which says nothing more of its values than they are
/// numbers.
///
/// # Examples
///
/// ```
/// use mvx::metrics::{Detailed, MetricKind, Snapshot};
///
/// let snapshot = Snapshot::new("document_storage.save.attempts", MetricKind::Counter)
///     .with("total", 3u64)
///     .with("success_total", 2u64);
/// assert_eq!(
///     serde_json::to_string(&snapshot).unwrap(),
///     r#"{"name":"document_storage.save.attempts","dimensions":{"success_total":2,"total":3}}"#
/// );
/// assert_eq!(
///     serde_json::to_string(&Detailed(&snapshot)).unwrap(),
///     r#"{"name":"document_storage.save.attempts","dimensions":{"success_total":2,"total":3},"kind":"counter"}"#
/// );
/// ```
#[derive(Clone, Debug, PartialEq, Deserialize)]
pub struct Snapshot {
    /// The metric's name.
    pub name: String,
    /// Named values.
    pub dimensions: BTreeMap<String, Value>,
    /// What the metric measures.
    #[serde(default = "unstated_kind")]
    pub kind: MetricKind,
    /// The labels of this series, by name; empty for most snapshots.
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    /// When the series was created (its counts started), in seconds since the Unix epoch:
    /// the OpenMetrics `_created` sample of a counter or a histogram. Set by
    /// [`Counter`](super::Counter) and [`Histogram`](super::Histogram) snapshots to the time
    /// the instrument was made; `None` otherwise.
    #[serde(default)]
    pub created: Option<f64>,
}

/// The kind of a snapshot read from JSON that has none (see [`Snapshot`]'s JSON).
fn unstated_kind() -> MetricKind {
    MetricKind::Gauge
}

impl Serialize for Snapshot {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let labeled = !self.labels.is_empty();
        let mut fields = serializer.serialize_struct("Snapshot", 2 + usize::from(labeled))?;
        fields.serialize_field("name", &self.name)?;
        fields.serialize_field("dimensions", &self.dimensions)?;
        if labeled {
            fields.serialize_field("labels", &self.labels)?;
        }
        fields.end()
    }
}

/// A [`Snapshot`], or [`Snapshots`], serialized with every field: `name`, `dimensions`,
/// `kind`, and `labels` and `created` when they are set.
///
/// See [`Snapshot`]'s JSON for the default form, which leaves `kind` and `created` out.
///
/// # Examples
///
/// ```
/// use mvx::metrics::{Detailed, MetricKind, Snapshot, Snapshots};
///
/// let snapshot = Snapshot::new("jobs", MetricKind::Counter).with("value", 1u64);
/// let snapshots = Snapshots::from([(snapshot.key(), snapshot)]);
/// assert_eq!(
///     serde_json::to_string(&Detailed(&snapshots)).unwrap(),
///     r#"{"jobs":{"name":"jobs","dimensions":{"value":1},"kind":"counter"}}"#
/// );
/// ```
#[derive(Clone, Copy, Debug)]
pub struct Detailed<'a, T: ?Sized>(pub &'a T);

impl Serialize for Detailed<'_, Snapshot> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let snapshot = self.0;
        let mut fields = serializer.serialize_struct("Snapshot", 5)?;
        fields.serialize_field("name", &snapshot.name)?;
        fields.serialize_field("dimensions", &snapshot.dimensions)?;
        fields.serialize_field("kind", &snapshot.kind)?;
        if snapshot.labels.is_empty() {
            fields.skip_field("labels")?;
        } else {
            fields.serialize_field("labels", &snapshot.labels)?;
        }
        match snapshot.created {
            Some(created) => fields.serialize_field("created", &created)?,
            None => fields.skip_field("created")?,
        }
        fields.end()
    }
}

impl Serialize for Detailed<'_, Snapshots> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_map(
            self.0
                .iter()
                .map(|(key, snapshot)| (key, Detailed(snapshot))),
        )
    }
}

impl Snapshot {
    /// A snapshot without dimensions.
    pub fn new(name: impl Into<String>, kind: MetricKind) -> Self {
        Self {
            name: name.into(),
            dimensions: BTreeMap::new(),
            kind,
            labels: BTreeMap::new(),
            created: None,
        }
    }

    /// Sets the time the series was created, in seconds since the Unix epoch (see
    /// [`created`](Self::created)).
    pub fn with_created(mut self, created: f64) -> Self {
        self.created = Some(created);
        self
    }

    /// Adds (or replaces) a label.
    pub fn with_label(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.labels.insert(name.into(), value.into());
        self
    }

    /// This snapshot serialized with every field (see [`Detailed`]).
    pub fn detailed(&self) -> Detailed<'_, Self> {
        Detailed(self)
    }

    /// The key of this snapshot in [`Snapshots`]: [`series_key`] of its name and labels.
    pub fn key(&self) -> String {
        series_key(&self.name, &self.labels)
    }

    /// Adds (or replaces) a dimension.
    pub fn with(mut self, dimension: impl Into<String>, value: impl Into<Value>) -> Self {
        self.dimensions.insert(dimension.into(), value.into());
        self
    }

    /// The value of a dimension.
    pub fn get(&self, dimension: &str) -> Option<Value> {
        self.dimensions.get(dimension).copied()
    }
}

/// Snapshots by metric name (by [`series_key`] for labeled series), in key order.
pub type Snapshots = BTreeMap<String, Snapshot>;

/// The key of a series: its name, then, if it has labels, its labels in name order as
/// Prometheus writes them, `name{code="200",method="GET"}` (in values, `\` is written `\\`, `"` is `\"` and a
/// line feed is `\n`).
///
/// A [`Registry`](super::Registry) keeps labeled instruments under this key, and
/// [`Snapshots`] holds labeled snapshots under it.
///
/// # Examples
///
/// ```
/// use std::collections::BTreeMap;
/// use mvx::metrics::series_key;
///
/// let labels = BTreeMap::from([("method".to_owned(), "GET".to_owned()), ("code".to_owned(), "200".to_owned())]);
/// assert_eq!(series_key("http.requests", &labels), r#"http.requests{code="200",method="GET"}"#);
/// assert_eq!(series_key("http.requests", &BTreeMap::new()), "http.requests");
/// ```
pub fn series_key(name: &str, labels: &BTreeMap<String, String>) -> String {
    if labels.is_empty() {
        return name.to_owned();
    }
    let mut key = String::with_capacity(name.len() + 16 * labels.len());
    key.push_str(name);
    key.push('{');
    for (index, (label, value)) in labels.iter().enumerate() {
        if index > 0 {
            key.push(',');
        }
        key.push_str(label);
        key.push_str("=\"");
        for c in value.chars() {
            match c {
                '\\' => key.push_str("\\\\"),
                '"' => key.push_str("\\\""),
                '\n' => key.push_str("\\n"),
                c => key.push(c),
            }
        }
        key.push('"');
    }
    key.push('}');
    key
}

/// The snapshots of a recorder once every event accepted before the call was applied;
/// returned by [`MetricsRecorder::snapshot_now`].
///
/// `.await` it, or block on it with [`wait`](Self::wait),
/// [`wait_timeout`](Self::wait_timeout) or [`wait_deadline`](Self::wait_deadline). The
/// snapshots are taken when the wait ends.
#[must_use = "futures do nothing unless you .await or poll them"]
pub struct SnapshotNow<'a, E> {
    flush: Flush<'a, E>,
    recorder: &'a MetricsRecorder<E>,
}

impl<'a, E: 'static> SnapshotNow<'a, E> {
    pub(super) fn new(flush: Flush<'a, E>, recorder: &'a MetricsRecorder<E>) -> Self {
        Self { flush, recorder }
    }

    /// Blocks the current thread until every event accepted before the call was applied.
    ///
    /// # Errors
    ///
    /// As [`MetricsRecorder::snapshot_now_blocking`].
    pub fn wait(self) -> Result<Snapshots, RecorderError> {
        self.flush.wait()?;
        Ok(self.recorder.snapshots())
    }

    /// As [`wait`](Self::wait), giving up after `timeout`.
    ///
    /// # Errors
    ///
    /// `RecorderError::Sink(SinkError::WaitTimedOut)` when the events are not all applied
    /// after `timeout`; otherwise as [`wait`](Self::wait).
    pub fn wait_timeout(self, timeout: Duration) -> Result<Snapshots, RecorderError> {
        self.flush.wait_timeout(timeout)?;
        Ok(self.recorder.snapshots())
    }

    /// As [`wait`](Self::wait), giving up at `deadline`.
    ///
    /// # Errors
    ///
    /// As [`wait_timeout`](Self::wait_timeout).
    pub fn wait_deadline(self, deadline: Instant) -> Result<Snapshots, RecorderError> {
        self.flush.wait_deadline(deadline)?;
        Ok(self.recorder.snapshots())
    }
}

impl<E: 'static> Future for SnapshotNow<'_, E> {
    type Output = Result<Snapshots, RecorderError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.get_mut();
        std::task::ready!(Pin::new(&mut this.flush).poll(cx))?;
        Poll::Ready(Ok(this.recorder.snapshots()))
    }
}

impl<E: 'static> fmt::Debug for SnapshotNow<'_, E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SnapshotNow")
            .field("recorder", &self.recorder.name())
            .finish_non_exhaustive()
    }
}
