//! The facade's handles: the map that finds a series' handle by the facade's `Key`, and
//! the adapters that make mvx instruments the facade's `Counter`, `Gauge` and `Histogram`.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

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

/// An mvx counter behind a facade `Counter`.
pub(super) struct CounterHandle(pub(super) crate::metrics::Counter);

impl CounterFn for CounterHandle {
    fn increment(&self, value: u64) {
        self.0.inc_by(value);
    }

    fn absolute(&self, value: u64) {
        self.0.raise_to(value);
    }
}

/// An mvx gauge behind a facade `Gauge`.
pub(super) struct GaugeHandle(pub(super) crate::metrics::Gauge);

impl GaugeFn for GaugeHandle {
    fn increment(&self, value: f64) {
        self.0.add(value);
    }

    fn decrement(&self, value: f64) {
        self.0.sub(value);
    }

    fn set(&self, value: f64) {
        self.0.set(value);
    }
}

/// An mvx histogram behind a facade `Histogram`.
pub(super) struct HistogramHandle(pub(super) crate::metrics::Histogram);

impl HistogramFn for HistogramHandle {
    fn record(&self, value: f64) {
        self.0.observe(value);
    }
}
