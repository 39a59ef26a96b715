//! [`Gauge`]: an `f64` that goes up and down, one atomic word.

use std::collections::BTreeMap;
use std::fmt;

use super::{NO_LABELS, Registration, VALUE, add_f64, label_map, labeled};
use crate::metrics::{MetricKind, Snapshot, SnapshotSource, Snapshots};
use crate::sync::{Arc, AtomicU64, CachePadded, Ordering};

/// A floating-point value that goes up and down.
///
/// The value is an `f64` kept as its bits in one atomic word: `set` is a store, `add` and
/// `sub` a compare-and-swap loop. Clones share the value. It starts at `0.0`. Any `f64` is
/// accepted, NaN and infinities included, with the usual floating-point arithmetic (a NaN
/// stays NaN through `add` until the next `set`).
///
/// Its [`snapshot`](Self::snapshot) has kind [`MetricKind::Gauge`] and one dimension, `value`.
///
/// # Examples
///
/// ```
/// use mvx::metrics::Gauge;
///
/// let in_flight = Gauge::new("http.in_flight");
/// in_flight.inc();
/// in_flight.inc();
/// in_flight.dec();
/// assert_eq!(in_flight.get(), 1.0);
/// in_flight.set(0.5);
/// in_flight.add(2.0);
/// in_flight.sub(0.25);
/// assert_eq!(in_flight.get(), 2.25);
/// ```
#[derive(Clone)]
pub struct Gauge {
    inner: Arc<GaugeInner>,
}

struct GaugeInner {
    bits: CachePadded<AtomicU64>,
    name: Box<str>,
    labels: BTreeMap<String, String>,
    registration: Registration,
}

impl Gauge {
    /// A gauge at `0.0`.
    ///
    /// Any name is accepted here; a [`Registry`](crate::metrics::Registry) enforces its own naming
    /// rule when it creates instruments.
    pub fn new(name: impl Into<String>) -> Self {
        Self::with_labels(name, NO_LABELS)
    }

    /// A gauge at `0.0` for the series of `name` with `labels` (see [`Snapshot::labels`]).
    pub fn with_labels<K, V>(
        name: impl Into<String>,
        labels: impl IntoIterator<Item = (K, V)>,
    ) -> Self
    where
        K: Into<String>,
        V: Into<String>,
    {
        Self::registered(name.into(), label_map(labels), false)
    }

    /// A gauge at `0.0` made by a [`Registry`](crate::metrics::Registry): the overflow series
    /// of its name if `overflow`.
    pub(crate) fn registered(
        name: String,
        labels: BTreeMap<String, String>,
        overflow: bool,
    ) -> Self {
        Self {
            inner: Arc::new(GaugeInner {
                bits: CachePadded(AtomicU64::new(0.0_f64.to_bits())),
                name: name.into_boxed_str(),
                labels,
                registration: Registration::new(overflow),
            }),
        }
    }

    /// Whether this is the overflow series of its name: the series a
    /// [`Registry`](crate::metrics::Registry) hands out for label sets past its
    /// [series limit](crate::metrics::Registry#series-limit).
    pub fn is_overflow(&self) -> bool {
        self.inner.registration.overflow
    }

    /// Whether the [`Registry`](crate::metrics::Registry) that made this gauge has
    /// unregistered it since ([`Registry::unregister`](crate::metrics::Registry::unregister)):
    /// the gauge still works, but no exposition reads it any more. Always `false` for a gauge
    /// made outside a registry.
    pub fn is_unregistered(&self) -> bool {
        self.inner.registration.is_unregistered()
    }

    /// Marks the gauge unregistered (see [`is_unregistered`](Self::is_unregistered)).
    pub(crate) fn mark_unregistered(&self) {
        self.inner.registration.mark_unregistered();
    }

    /// The labels of the gauge's series; empty for most gauges.
    pub fn labels(&self) -> &BTreeMap<String, String> {
        &self.inner.labels
    }

    /// Sets the value.
    #[inline]
    pub fn set(&self, value: f64) {
        self.inner.bits.store(value.to_bits(), Ordering::Relaxed);
    }

    /// Adds `delta` (which may be negative).
    #[inline]
    pub fn add(&self, delta: f64) {
        add_f64(&self.inner.bits, delta);
    }

    /// Subtracts `delta`.
    #[inline]
    pub fn sub(&self, delta: f64) {
        add_f64(&self.inner.bits, -delta);
    }

    /// Adds one.
    #[inline]
    pub fn inc(&self) {
        self.add(1.0);
    }

    /// Subtracts one.
    #[inline]
    pub fn dec(&self) {
        self.add(-1.0);
    }

    /// The current value.
    pub fn get(&self) -> f64 {
        f64::from_bits(self.inner.bits.load(Ordering::Relaxed))
    }

    /// The gauge's name.
    pub fn name(&self) -> &str {
        &self.inner.name
    }

    /// The current value as a [`Snapshot`] of kind `gauge` with the dimension `value`.
    pub fn snapshot(&self) -> Snapshot {
        labeled(
            Snapshot::new(self.name(), MetricKind::Gauge).with(VALUE, self.get()),
            &self.inner.labels,
        )
    }
}

impl SnapshotSource for Gauge {
    fn collect(&self, into: &mut Snapshots) {
        let snapshot = self.snapshot();
        into.insert(snapshot.key(), snapshot);
    }
}

impl fmt::Debug for Gauge {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Gauge")
            .field("name", &self.name())
            .field("value", &self.get())
            .finish()
    }
}
