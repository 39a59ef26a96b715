//! The facade's handles: the map that finds a series' handle by the facade's `Key`, and
//! [`Handle`], which makes an mvx instrument the facade's `Counter`, `Gauge` or `Histogram`,
//! looks its series up again once the registry has unregistered it, and leaves out (and
//! counts) an update made in a suppression scope.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use metrics::{CounterFn, GaugeFn, HistogramFn, Key};

use crate::metrics::{Counter, Gauge, Histogram, Registry, RegistryError};

/// Values by the facade's key, hashed with the hash the key carries.
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

/// The registry's refusals: how many, and the last one.
#[derive(Debug, Default)]
pub(super) struct Rejections {
    count: AtomicU64,
    last: Mutex<Option<RegistryError>>,
}

impl Rejections {
    pub(super) fn record(&self, error: RegistryError) {
        self.count.fetch_add(1, Ordering::Relaxed);
        *lock(&self.last) = Some(error);
    }

    pub(super) fn count(&self) -> u64 {
        self.count.load(Ordering::Relaxed)
    }

    pub(super) fn last(&self) -> Option<RegistryError> {
        lock(&self.last).clone()
    }
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Where a series is in the registry: the facade's key (name and labels) and, for a
/// histogram, its bucket bounds.
pub(super) struct Lookup {
    pub(super) registry: Registry,
    pub(super) key: Key,
    pub(super) bounds: Vec<f64>,
}

impl Lookup {
    fn labels(&self) -> Vec<(&str, &str)> {
        self.key
            .labels()
            .map(|label| (label.key(), label.value()))
            .collect()
    }
}

/// An mvx instrument as the series of a facade handle.
pub(super) trait Series: Clone + Send + Sync + 'static {
    /// The instrument of `lookup`'s series in its registry, created if there is none.
    fn find(lookup: &Lookup) -> Result<Self, RegistryError>;
    fn is_unregistered(&self) -> bool;
    fn is_overflow(&self) -> bool;
}

impl Series for Counter {
    fn find(lookup: &Lookup) -> Result<Self, RegistryError> {
        lookup
            .registry
            .counter_with_labels(lookup.key.name(), &lookup.labels())
    }

    fn is_unregistered(&self) -> bool {
        Counter::is_unregistered(self)
    }

    fn is_overflow(&self) -> bool {
        Counter::is_overflow(self)
    }
}

impl Series for Gauge {
    fn find(lookup: &Lookup) -> Result<Self, RegistryError> {
        lookup
            .registry
            .gauge_with_labels(lookup.key.name(), &lookup.labels())
    }

    fn is_unregistered(&self) -> bool {
        Gauge::is_unregistered(self)
    }

    fn is_overflow(&self) -> bool {
        Gauge::is_overflow(self)
    }
}

impl Series for Histogram {
    fn find(lookup: &Lookup) -> Result<Self, RegistryError> {
        lookup.registry.histogram_with_labels(
            lookup.key.name(),
            &lookup.labels(),
            lookup.bounds.iter().copied(),
        )
    }

    fn is_unregistered(&self) -> bool {
        Histogram::is_unregistered(self)
    }

    fn is_overflow(&self) -> bool {
        Histogram::is_overflow(self)
    }
}

/// A facade handle of one series: the instrument found when the handle was made, and,
/// once the registry has unregistered that one, the instrument found again.
///
/// Recording first leaves out (and counts) an update made in a suppression scope (one
/// thread-local read), then checks the instrument's unregistered flag (a relaxed load of a word written
/// once, by `Registry::unregister`), then records into it. Only a handle whose instrument
/// was unregistered takes the slower path: under a lock of its own, it records into the
/// instrument found again (looked up again whenever that one is unregistered too). If the
/// registry refuses the new lookup (the name taken by another kind meanwhile), the refusal
/// is counted once and the handle does nothing from then on, as a handle refused at
/// creation.
pub(super) struct Handle<T> {
    series: T,
    lookup: Lookup,
    rejections: Arc<Rejections>,
    suppressed: SuppressedUpdates,
    again: Mutex<Again<T>>,
}

/// The series of a handle whose first one was unregistered.
enum Again<T> {
    NotLooked,
    Found(T),
    Refused,
}

impl<T: Series> Handle<T> {
    pub(super) fn new(
        series: T,
        lookup: Lookup,
        rejections: Arc<Rejections>,
        suppressed: SuppressedUpdates,
    ) -> Self {
        Self {
            series,
            lookup,
            rejections,
            suppressed,
            again: Mutex::new(Again::NotLooked),
        }
    }

    /// Whether the instrument found when the handle was made is still registered.
    pub(super) fn is_current(&self) -> bool {
        !self.series.is_unregistered()
    }

    /// Records with `record` into the registered instrument of the series, unless the
    /// calling thread is in a suppression scope.
    #[inline]
    fn record(&self, record: impl FnOnce(&T)) {
        if self.suppressed.left_out() {
            return;
        }
        if self.series.is_unregistered() {
            self.record_again(record);
        } else {
            record(&self.series);
        }
    }

    #[cold]
    fn record_again(&self, record: impl FnOnce(&T)) {
        let mut again = lock(&self.again);
        match &*again {
            Again::Found(series) if !series.is_unregistered() => return record(series),
            Again::Refused => return,
            Again::Found(_) | Again::NotLooked => {}
        }
        match T::find(&self.lookup) {
            Ok(series) => {
                record(&series);
                *again = Again::Found(series);
            }
            Err(error) => {
                self.rejections.record(error);
                *again = Again::Refused;
            }
        }
    }
}

impl CounterFn for Handle<Counter> {
    fn increment(&self, value: u64) {
        self.record(|counter| counter.inc_by(value));
    }

    fn absolute(&self, value: u64) {
        self.record(|counter| counter.raise_to(value));
    }
}

impl GaugeFn for Handle<Gauge> {
    fn increment(&self, value: f64) {
        self.record(|gauge| gauge.add(value));
    }

    fn decrement(&self, value: f64) {
        self.record(|gauge| gauge.sub(value));
    }

    fn set(&self, value: f64) {
        self.record(|gauge| gauge.set(value));
    }
}

impl HistogramFn for Handle<Histogram> {
    fn record(&self, value: f64) {
        Handle::record(self, |histogram| histogram.observe(value));
    }
}
