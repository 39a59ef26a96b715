//! The statistics' background work: periodic persistence and reports.

use std::future::{Future, poll_fn};
use std::pin::pin;
use std::task::Poll;

use async_io::Timer;
use event_listener::listener;

use super::config::ReportTo;
use super::persist;
use super::report::report;
use super::statistics::Inner;
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

/// Reports at once, then every `log_interval` (the rules: [`ReportTo`]'s docs). The first
/// report is handed over before the start completes: `inner.reported` is raised once it
/// has been polled once (the figures taken, the line written or its write under way, the
/// event queued or waiting for room).
async fn report_loop(inner: &Inner) {
    if matches!(inner.config.report_to, ReportTo::Off) {
        inner.reported.raise();
        return;
    }
    let every = inner.config.log_interval;
    loop {
        let mut reporting = pin!(report(inner));
        let first = poll_fn(|cx| Poll::Ready(reporting.as_mut().poll(cx))).await;
        inner.reported.raise();
        if first.is_pending() {
            reporting.await;
        }
        // `Duration::MAX` (or any interval past the clock's range) never fires.
        Timer::after(every).await;
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
