//! Direct instruments: [`Counter`], [`Gauge`] and [`Histogram`], recorded in place by the
//! calling thread, without a queue.
//!
//! Every instrument is a cheap handle (`Clone + Send + Sync`, an `Arc` inside): clones share
//! one state. Recording is lock-free and never allocates. Reads (`get`, `count`, `sum`,
//! `buckets`, `snapshot`) are lock-free too.
//!
//! The state a histogram's records contend on is striped per thread ([`stripes`]); the
//! public docs of [`Histogram`] say how (this module is private: its docs are for
//! maintainers). This module holds what the three instruments share: their labels and the
//! atomic `f64` addition.

mod counter;
mod gauge;
mod histogram;
mod stripes;

use std::collections::BTreeMap;

pub use self::counter::Counter;
pub use self::gauge::Gauge;
pub use self::histogram::Histogram;
pub(super) use self::histogram::validate_bounds;

use super::Snapshot;
use crate::sync::{AtomicU64, Ordering};

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
