//! An in-memory sink, for tests and examples.

use std::fmt;

use crate::error::BoxError;
use crate::sink::{Describe, Dispatch, SinkDescriptor};
use crate::sync::{Arc, Mutex, lock};

/// A dispatcher that keeps every event in memory, readable through [`MemoryEvents`].
///
/// # Examples
///
/// ```
/// use mvx::sink::{SinkConfig, sinks::MemorySink};
///
/// let (memory, events) = MemorySink::new();
/// let (sink, terminator) = mvx::rt::thread::create(memory, SinkConfig::default()).unwrap();
/// sink.log("a").unwrap();
/// sink.flush_blocking().unwrap();
/// assert_eq!(events.len(), 1);
/// terminator.terminate().unwrap();
/// ```
pub struct MemorySink<E> {
    events: Arc<Mutex<Vec<E>>>,
}

/// Reads the events a [`MemorySink`] received. Cheap to clone.
pub struct MemoryEvents<E> {
    events: Arc<Mutex<Vec<E>>>,
}

impl<E> MemorySink<E> {
    /// A memory sink and the reader of its events.
    pub fn new() -> (Self, MemoryEvents<E>) {
        let events = Arc::new(Mutex::new(Vec::new()));
        (
            Self {
                events: events.clone(),
            },
            MemoryEvents { events },
        )
    }
}

impl<E: Send + 'static> Dispatch<E> for MemorySink<E> {
    async fn dispatch(&mut self, event: E) -> Result<(), BoxError> {
        lock(&self.events).push(event);
        Ok(())
    }

    async fn dispatch_batch(&mut self, events: &mut Vec<E>) -> Result<(), crate::sink::BatchError> {
        lock(&self.events).append(events);
        Ok(())
    }
}

impl<E> Describe for MemorySink<E> {
    /// Every memory sink is its own resource (keyed by its address).
    fn describe(&self) -> SinkDescriptor {
        SinkDescriptor::new("memory").resource(format!("{:p}", Arc::as_ptr(&self.events)))
    }
}

impl<E> MemoryEvents<E> {
    /// Takes every event received so far, in order, leaving none.
    pub fn take(&self) -> Vec<E> {
        std::mem::take(&mut *lock(&self.events))
    }

    /// How many events are held.
    pub fn len(&self) -> usize {
        lock(&self.events).len()
    }

    /// Whether no event is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl<E: Clone> MemoryEvents<E> {
    /// A copy of every event received so far, in order.
    pub fn snapshot(&self) -> Vec<E> {
        lock(&self.events).clone()
    }
}

impl<E> Clone for MemoryEvents<E> {
    fn clone(&self) -> Self {
        Self {
            events: self.events.clone(),
        }
    }
}

impl<E> fmt::Debug for MemorySink<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MemorySink").finish_non_exhaustive()
    }
}

impl<E> fmt::Debug for MemoryEvents<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MemoryEvents")
            .field("len", &self.len())
            .finish()
    }
}
