//! The statistics' background work: periodic persistence and reports.

use async_io::Timer;
use event_listener::listener;

use super::report::report_event;
use super::statistics::Inner;
use super::{StatsError, persist};
use crate::queue::OverflowPolicy;
use crate::sync::Arc;

/// Once collection has begun, saves and reports, each loop on its own (the rules: the
/// `stats` module docs, "Periodic work"). Runs until the driver drops it, when the
/// statistics end.
pub(crate) async fn run(inner: Arc<Inner>) {
    inner.collecting.wait().await;
    futures::future::join(persist_loop(&inner), report_loop(&inner)).await;
}

/// A failed save is kept in `last_error()`; the next one is tried on schedule.
async fn persist_loop(inner: &Inner) {
    if !inner.config.persists() {
        return;
    }
    let every = inner.config.persist_interval;
    loop {
        // `Duration::MAX` (or any interval past the clock's range) never fires.
        Timer::after(every).await;
        if let Err(error) = persist::save(inner, false).await {
            inner.record_error(error);
        }
    }
}

/// Sends the figures to the log sink; a refusal is kept as [`StatsError::ReportRefused`].
async fn report_loop(inner: &Inner) {
    let Some(sink) = &inner.config.log_sink else {
        return;
    };
    let every = inner.config.log_interval;
    loop {
        // `Duration::MAX` (or any interval past the clock's range) never fires.
        Timer::after(every).await;
        let event = report_event(inner.config.log_message.clone(), &inner.figures());
        let sent = match sink.config().overflow {
            OverflowPolicy::Block => sink.send(event).await,
            _ => sink.log(event),
        };
        if let Err(error) = sent {
            inner.record_error(StatsError::ReportRefused {
                reason: error.reason(),
            });
        }
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
