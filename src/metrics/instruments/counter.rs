//! [`Counter`]: a count of events, one atomic word.

use std::collections::BTreeMap;
use std::fmt;

use super::{NO_LABELS, Registration, VALUE, label_map, labeled, unix_now};
use crate::metrics::{MetricKind, Snapshot, SnapshotSource, Snapshots};
use crate::sync::{Arc, AtomicU64, CachePadded, Ordering};

/// A monotonically increasing count of events.
///
/// `inc` is a single relaxed `fetch_add` on one atomic word, on cache lines of its own.
/// Clones share the count. The count wraps around at `u64::MAX` (at a billion increments a
/// second, after 584 years).
///
/// Unlike [`Histogram`](crate::metrics::Histogram), a counter is not striped per thread: striping would make every
/// counter a kibibyte or more, and pays only when several threads increment the very same
/// counter at once. Measured, `inc` costs what a bare `fetch_add` costs, alone or contended
/// (BENCHMARKS.md, "Instruments").
///
/// Its [`snapshot`](Self::snapshot) has kind [`MetricKind::Counter`] and one dimension,
/// `value`.
///
/// # Examples
///
/// ```
/// use mvx::metrics::Counter;
///
/// let requests = Counter::new("http.requests");
/// let handle = requests.clone(); // shares the count
/// handle.inc();
/// handle.inc_by(2);
/// assert_eq!(requests.get(), 3);
/// assert_eq!(requests.snapshot().get("value"), Some(3u64.into()));
/// ```
#[derive(Clone)]
pub struct Counter {
    inner: Arc<CounterInner>,
}

struct CounterInner {
    value: CachePadded<AtomicU64>,
    name: Box<str>,
    labels: BTreeMap<String, String>,
    registration: Registration,
    /// When the counter was made, in seconds since the Unix epoch.
    created: Option<f64>,
}

impl Counter {
    /// A counter at zero.
    ///
    /// Any name is accepted here; a [`Registry`](crate::metrics::Registry) enforces its own naming
    /// rule when it creates instruments.
    pub fn new(name: impl Into<String>) -> Self {
        Self::with_labels(name, NO_LABELS)
    }

    /// A counter at zero for the series of `name` with `labels` (see
    /// [`Snapshot::labels`]).
    ///
    /// # Examples
    ///
    /// ```
    /// use mvx::metrics::Counter;
    ///
    /// let ok = Counter::with_labels("http.requests", [("code", "200")]);
    /// ok.inc();
    /// assert_eq!(ok.snapshot().labels["code"], "200");
    /// ```
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

    /// A counter at zero made by a [`Registry`](crate::metrics::Registry): the overflow
    /// series of its name if `overflow`.
    pub(crate) fn registered(
        name: String,
        labels: BTreeMap<String, String>,
        overflow: bool,
    ) -> Self {
        Self {
            inner: Arc::new(CounterInner {
                value: CachePadded(AtomicU64::new(0)),
                name: name.into_boxed_str(),
                labels,
                registration: Registration::new(overflow),
                created: unix_now(),
            }),
        }
    }

    /// Whether this is the overflow series of its name: the series a
    /// [`Registry`](crate::metrics::Registry) hands out for label sets past its
    /// [series limit](crate::metrics::Registry#series-limit).
    pub fn is_overflow(&self) -> bool {
        self.inner.registration.overflow
    }

    /// Whether the [`Registry`](crate::metrics::Registry) that made this counter has
    /// unregistered it since ([`Registry::unregister`](crate::metrics::Registry::unregister)):
    /// the counter still counts, but no exposition reads it any more. Always `false` for a
    /// counter made outside a registry.
    pub fn is_unregistered(&self) -> bool {
        self.inner.registration.is_unregistered()
    }

    /// Marks the counter unregistered (see [`is_unregistered`](Self::is_unregistered)).
    pub(crate) fn mark_unregistered(&self) {
        self.inner.registration.mark_unregistered();
    }

    /// Raises the count to `value` if it is below it (an atomic maximum): for counts kept
    /// elsewhere and mirrored here, such as the `metrics` facade's `Counter::absolute`.
    #[inline]
    pub fn raise_to(&self, value: u64) {
        self.inner.value.fetch_max(value, Ordering::Relaxed);
    }

    /// The labels of the counter's series; empty for most counters.
    pub fn labels(&self) -> &BTreeMap<String, String> {
        &self.inner.labels
    }

    /// Adds one.
    #[inline]
    pub fn inc(&self) {
        self.inner.value.fetch_add(1, Ordering::Relaxed);
    }

    /// Adds `n`.
    #[inline]
    pub fn inc_by(&self, n: u64) {
        self.inner.value.fetch_add(n, Ordering::Relaxed);
    }

    /// The current count.
    pub fn get(&self) -> u64 {
        self.inner.value.load(Ordering::Relaxed)
    }

    /// The counter's name.
    pub fn name(&self) -> &str {
        &self.inner.name
    }

    /// The current count as a [`Snapshot`] of kind `counter` with the dimension `value`,
    /// and the time the counter was made as its [`created`](Snapshot::created).
    pub fn snapshot(&self) -> Snapshot {
        let mut snapshot = Snapshot::new(self.name(), MetricKind::Counter).with(VALUE, self.get());
        snapshot.created = self.inner.created;
        labeled(snapshot, &self.inner.labels)
    }
}

impl SnapshotSource for Counter {
    fn collect(&self, into: &mut Snapshots) {
        let snapshot = self.snapshot();
        into.insert(snapshot.key(), snapshot);
    }
}

impl fmt::Debug for Counter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Counter")
            .field("name", &self.name())
            .field("value", &self.get())
            .finish()
    }
}
