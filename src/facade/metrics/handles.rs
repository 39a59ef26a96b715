//! The facade's handles: the map that finds a series' handle by the facade's `Key`, and
//! the adapters that make mvx instruments the facade's `Counter`, `Gauge` and `Histogram`
//! (each leaves out, and counts, an update made in a suppression scope).

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use metrics::{CounterFn, GaugeFn, HistogramFn, Key};

/// Handles by the facade's key, hashed with the hash the key carries.
pub(super) type KeyMap<T> = HashMap<Key, T, BuildHasherDefault<KeyHasher>>;

/// A hasher for `metrics::Key`, whose `Hash` writes one `u64`, its precomputed hash.
#[derive(Default)]
pub(super) struct KeyHasher(u64);

impl Hasher for KeyHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        // Not used by `Key`; kept correct for any other input.
        for &byte in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(byte);
        }
    }

    fn write_u64(&mut self, value: u64) {
        self.0 = value;
    }
}

/// How many updates the handles left out in a suppression scope; shared by a recorder and
/// every handle it made.
#[derive(Clone, Debug, Default)]
pub(super) struct SuppressedUpdates(Arc<AtomicU64>);

impl SuppressedUpdates {
    /// Whether the calling thread is in a suppression scope; if it is, counts one update
    /// left out. One thread-local read when it is not.
    #[inline]
    fn left_out(&self) -> bool {
        let suppressed = crate::facade::is_suppressed();
        if suppressed {
            self.0.fetch_add(1, Ordering::Relaxed);
        }
        suppressed
    }

    pub(super) fn get(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}

/// An mvx counter behind a facade `Counter`.
pub(super) struct CounterHandle {
    pub(super) counter: crate::metrics::Counter,
    pub(super) suppressed: SuppressedUpdates,
}

impl CounterFn for CounterHandle {
    fn increment(&self, value: u64) {
        if !self.suppressed.left_out() {
            self.counter.inc_by(value);
        }
    }

    fn absolute(&self, value: u64) {
        if !self.suppressed.left_out() {
            self.counter.raise_to(value);
        }
    }
}

/// An mvx gauge behind a facade `Gauge`.
pub(super) struct GaugeHandle {
    pub(super) gauge: crate::metrics::Gauge,
    pub(super) suppressed: SuppressedUpdates,
}

impl GaugeFn for GaugeHandle {
    fn increment(&self, value: f64) {
        if !self.suppressed.left_out() {
            self.gauge.add(value);
        }
    }

    fn decrement(&self, value: f64) {
        if !self.suppressed.left_out() {
            self.gauge.sub(value);
        }
    }

    fn set(&self, value: f64) {
        if !self.suppressed.left_out() {
            self.gauge.set(value);
        }
    }
}

/// An mvx histogram behind a facade `Histogram`.
pub(super) struct HistogramHandle {
    pub(super) histogram: crate::metrics::Histogram,
    pub(super) suppressed: SuppressedUpdates,
}

impl HistogramFn for HistogramHandle {
    fn record(&self, value: f64) {
        if !self.suppressed.left_out() {
            self.histogram.observe(value);
        }
    }
}
