//! The `Dispatch` trait: a dispatcher writes `dispatch`, `dispatch_batch`, or both; one
//! that writes neither fails its events, loudly, and never recurses.
#![cfg(not(loom))]

use std::sync::{Arc, Mutex};

use mvx::error::SinkError;
use mvx::queue::LogOutcome;
use mvx::sink::{BatchError, Dispatch, MissingDispatch, SinkConfig};
use mvx::{ErrorReason, State};

#[path = "support/watchdog.rs"]
mod watchdog;

use watchdog::within_guard;

/// Writes only the batch form: records each batch it is handed.
#[derive(Clone, Default)]
struct BatchesOnly {
    batches: Arc<Mutex<Vec<Vec<u32>>>>,
}

impl Dispatch<u32> for BatchesOnly {
    async fn dispatch_batch(&mut self, events: &mut Vec<u32>) -> Result<(), BatchError> {
        self.batches.lock().unwrap().push(std::mem::take(events));
        Ok(())
    }
}

/// Writes neither form.
struct Neither;

impl Dispatch<u32> for Neither {}

#[test]
fn a_dispatcher_may_write_only_the_batch_form() {
    within_guard(|| {
        let dispatch = BatchesOnly::default();
        let config = SinkConfig::default().queue_capacity(256).batch_size(16);
        let (sink, terminator) = mvx::rt::thread::create(dispatch.clone(), config).unwrap();
        for event in 0..100 {
            assert_eq!(sink.log(event), Ok(LogOutcome::Accepted));
        }
        let stats = terminator.terminate().unwrap();
        assert_eq!(
            (stats.accepted, stats.delivered, stats.failed),
            (100, 100, 0)
        );
        let batches = dispatch.batches.lock().unwrap();
        assert!(batches.iter().all(|batch| (1..=16).contains(&batch.len())));
        assert_eq!(
            batches.concat(),
            (0..100).collect::<Vec<_>>(),
            "every event, in order"
        );
    });
}

#[test]
fn a_dispatcher_that_writes_neither_form_fails_every_event_with_missing_dispatch() {
    within_guard(|| {
        let (sink, terminator) = mvx::rt::thread::create(Neither, SinkConfig::default()).unwrap();
        for event in 0..3 {
            assert_eq!(sink.log(event), Ok(LogOutcome::Accepted));
        }
        sink.flush_blocking().unwrap();
        let stats = sink.stats();
        assert_eq!((stats.accepted, stats.delivered, stats.failed), (3, 0, 3));
        // Failed, not fatal: the sink runs on, and says why.
        assert_eq!(sink.state(), State::Running);
        match sink.last_error() {
            Some(SinkError::DispatchFailed(cause)) => {
                assert_eq!(
                    cause.downcast_ref::<MissingDispatch>(),
                    Some(&MissingDispatch)
                );
                assert_eq!(
                    cause.to_string(),
                    "the dispatcher implements neither Dispatch::dispatch nor \
                     Dispatch::dispatch_batch"
                );
            }
            other => panic!("expected DispatchFailed(MissingDispatch), got {other:?}"),
        }
        let error = sink.last_error().unwrap();
        assert_eq!(error.reason(), ErrorReason::DispatchFailed);
        assert_eq!(terminator.terminate().unwrap(), stats);
    });
}
