//! The test backend: a deterministic dispatcher whose hooks and dispatches can be held at a
//! valve.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use mvx::BoxError;
use mvx::sink::Dispatch;

use super::model::Event;

/// Holds the backend's hooks and dispatches while closed. Cheap to clone.
#[derive(Clone, Default)]
pub struct Valve(Arc<ValveInner>);

#[derive(Default)]
struct ValveInner {
    held: AtomicBool,
    opened: event_listener::Event,
}

impl Valve {
    /// From now on, every hook and dispatch waits until [`open`](Self::open).
    pub fn hold(&self) {
        self.0.held.store(true, Ordering::SeqCst);
    }

    /// Lets every waiting and later call through.
    pub fn open(&self) {
        self.0.held.store(false, Ordering::SeqCst);
        self.0.opened.notify(usize::MAX);
    }

    /// Returns once the valve is open.
    async fn pass(&self) {
        loop {
            if !self.0.held.load(Ordering::SeqCst) {
                return;
            }
            let opened = self.0.opened.listen();
            if !self.0.held.load(Ordering::SeqCst) {
                return;
            }
            opened.await;
        }
    }
}

/// Every event the backend was handed, in order, failed ones included. Cheap to clone.
#[derive(Clone, Default)]
pub struct Record(Arc<Mutex<Vec<Event>>>);

impl Record {
    pub fn events(&self) -> Vec<Event> {
        self.0.lock().unwrap().clone()
    }

    /// Whether the backend was handed every event of `ids`.
    pub fn contains_all(&self, ids: &[u32]) -> bool {
        let events = self.0.lock().unwrap();
        ids.iter()
            .all(|id| events.iter().any(|event| event.id == *id))
    }
}

/// The error of an event the backend fails.
#[derive(Debug, thiserror::Error)]
#[error("event {0:?} rejected: its value is divisible by 7")]
pub struct Rejected(pub Event);

/// The error of a start hook told to fail.
#[derive(Debug, thiserror::Error)]
#[error("the backend refuses to start")]
pub struct Refused;

/// A deterministic dispatcher: fails exactly the events whose value is divisible by 7,
/// fails its start hook when told to, and waits at the valve in `on_starting`, `dispatch`
/// and `on_stopped` (its `flush` never waits).
pub struct Backend {
    pub valve: Valve,
    pub record: Record,
    pub start_fails: bool,
}

impl Backend {
    pub fn new(start_fails: bool) -> Self {
        Self {
            valve: Valve::default(),
            record: Record::default(),
            start_fails,
        }
    }
}

impl Dispatch<Event> for Backend {
    async fn on_starting(&mut self) -> Result<(), BoxError> {
        self.valve.pass().await;
        if self.start_fails {
            Err(Refused.into())
        } else {
            Ok(())
        }
    }

    async fn dispatch(&mut self, event: Event) -> Result<(), BoxError> {
        self.valve.pass().await;
        self.record.0.lock().unwrap().push(event);
        if event.fails() {
            Err(Rejected(event).into())
        } else {
            Ok(())
        }
    }

    async fn on_stopped(&mut self) -> Result<(), BoxError> {
        self.valve.pass().await;
        Ok(())
    }
}
