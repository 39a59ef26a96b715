//! Snapshots: the aggregated state of a metric at one moment.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};

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

/// The state of one metric: a name, a kind and named numeric dimensions.
///
/// Dimensions are kept in name order. A histogram's dimensions follow one convention, so
/// that exposition can read them: `count`, `sum`, and one `le:<bound>` per bucket with the
/// cumulative count of observations `<=` that bound, the last being `le:+Inf`.
///
/// # Examples
///
/// ```
/// use mvx::metrics::{MetricKind, Snapshot};
///
/// let snapshot = Snapshot::new("document_storage.save.attempts", MetricKind::Counter)
///     .with("total", 3u64)
///     .with("success_total", 2u64);
/// assert_eq!(
///     serde_json::to_string(&snapshot).unwrap(),
///     r#"{"name":"document_storage.save.attempts","dimensions":{"success_total":2,"total":3},"kind":"counter"}"#
/// );
/// ```
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Snapshot {
    /// The metric's name.
    pub name: String,
    /// Named values.
    pub dimensions: BTreeMap<String, Value>,
    /// What the metric measures.
    pub kind: MetricKind,
}

impl Snapshot {
    /// A snapshot without dimensions.
    pub fn new(name: impl Into<String>, kind: MetricKind) -> Self {
        Self {
            name: name.into(),
            dimensions: BTreeMap::new(),
            kind,
        }
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

/// Snapshots by metric name, in name order.
pub type Snapshots = BTreeMap<String, Snapshot>;
