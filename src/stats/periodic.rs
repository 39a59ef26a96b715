//! The statistics' background work: periodic persistence.

use std::future::pending;
use std::time::Instant;

use async_io::Timer;
use event_listener::listener;

use super::persist;
use super::statistics::Inner;
use crate::sync::Arc;

/// Saves the state every `persist_interval` once collection has begun. Runs until the
/// driver drops it (when the statistics end); a failed save is kept in `last_error()` and
/// the next one is tried on schedule.
pub(crate) async fn run(inner: Arc<Inner>) {
    inner.collecting.wait().await;
    let persist_every = inner
        .config
        .persists()
        .then_some(inner.config.persist_interval);
    let Some(every) = persist_every else {
        return pending().await;
    };
    let mut next_persist = Instant::now() + every;
    loop {
        Timer::at(next_persist).await;
        if let Err(error) = persist::save(&inner, false).await {
            inner.record_error(error);
        }
        next_persist = Instant::now() + every;
    }
}

/// A flag raised once, and awaited.
#[derive(Debug, Default)]
pub(crate) struct Flag {
    raised: std::sync::atomic::AtomicBool,
    event: event_listener::Event,
}

impl Flag {
    pub(crate) fn raise(&self) {
        self.raised
            .store(true, std::sync::atomic::Ordering::Release);
        self.event.notify(usize::MAX);
    }

    pub(crate) async fn wait(&self) {
        loop {
            if self.raised.load(std::sync::atomic::Ordering::Acquire) {
                return;
            }
            listener!(self.event => raised);
            if self.raised.load(std::sync::atomic::Ordering::Acquire) {
                return;
            }
            raised.await;
        }
    }
}
