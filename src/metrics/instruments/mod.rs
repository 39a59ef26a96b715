//! Direct instruments: [`Counter`], [`Gauge`], [`Histogram`] and [`LatencyHistogram`],
//! recorded in place by the calling thread, without a queue.
//!
//! Every instrument is a cheap handle (`Clone + Send + Sync`, an `Arc` inside): clones share
//! one state. Recording is lock-free and never allocates. Reads (`get`, `count`, `sum`,
//! `buckets`, `snapshot`) are lock-free too.
//!
//! The state a histogram's records contend on is striped per thread ([`stripes`]); the
//! public docs of [`Histogram`] say how (this module is private: its docs are for
//! maintainers). This module holds what the three instruments share: their labels, their
//! [`Registration`] and the atomic `f64` addition.

mod counter;
mod gauge;
mod histogram;
mod latency;
mod stripes;

use std::collections::BTreeMap;

pub use self::counter::Counter;
pub use self::gauge::Gauge;
pub use self::histogram::Histogram;
pub(super) use self::histogram::validate_bounds;
pub use self::latency::{
    LatencyConfig, LatencyConfigError, LatencyDistribution, LatencyHistogram, LatencyMetric,
    Percentile, Percentiles, Recorded,
};

use super::Snapshot;
use crate::sync::{AtomicBool, AtomicU64, Ordering};

/// The dimension under which a counter or a gauge reports its value in a [`Snapshot`].
const VALUE: &str = "value";

/// The labels of an instrument that is not a labeled series.
const NO_LABELS: [(String, String); 0] = [];

/// `labels` as a map: a name given twice keeps its last value.
fn label_map<K, V>(labels: impl IntoIterator<Item = (K, V)>) -> BTreeMap<String, String>
where
    K: Into<String>,
    V: Into<String>,
{
    labels
        .into_iter()
        .map(|(name, value)| (name.into(), value.into()))
        .collect()
}

/// What a [`Registry`](super::Registry) says about an instrument it made: whether it is the
/// overflow series of its name, and whether it has been unregistered since.
///
/// Read on no recording path of the instrument itself: the `metrics` facade's handles check
/// [`is_unregistered`](Self::is_unregistered) (a relaxed load of a word that is written once,
/// at `unregister`, on another cache line than the instrument's values) before each update.
#[derive(Debug, Default)]
struct Registration {
    unregistered: AtomicBool,
    overflow: bool,
}

impl Registration {
    /// The registration of a new instrument, the overflow series of its name or not.
    fn new(overflow: bool) -> Self {
        Self {
            unregistered: AtomicBool::new(false),
            overflow,
        }
    }

    fn is_unregistered(&self) -> bool {
        self.unregistered.load(Ordering::Relaxed)
    }

    fn mark_unregistered(&self) {
        self.unregistered.store(true, Ordering::Relaxed);
    }
}

/// Now, in seconds since the Unix epoch: the creation time of a counter or a histogram
/// (its snapshots' [`created`](Snapshot::created)); `None` if the clock is before 1970.
fn unix_now() -> Option<f64> {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .ok()
        .map(|since| since.as_secs_f64())
}

/// `snapshot` with the labels of its series.
fn labeled(mut snapshot: Snapshot, labels: &BTreeMap<String, String>) -> Snapshot {
    if !labels.is_empty() {
        snapshot.labels = labels.clone();
    }
    snapshot
}

/// Adds `delta` to the `f64` whose bits `word` holds.
#[inline]
fn add_f64(word: &AtomicU64, delta: f64) {
    let mut current = word.load(Ordering::Relaxed);
    loop {
        let next = (f64::from_bits(current) + delta).to_bits();
        match word.compare_exchange_weak(current, next, Ordering::Relaxed, Ordering::Relaxed) {
            Ok(_) => return,
            Err(actual) => current = actual,
        }
    }
}
