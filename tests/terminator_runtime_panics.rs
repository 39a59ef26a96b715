//! A panic on the runtime thread after a clean stop — a dispatcher whose `Drop` panics —
//! is reported by `Terminator::terminate` as `RuntimePanicked`, with the panic message,
//! under both adapters that own a thread (`rt::thread::create` and `rt::smol::create`),
//! and every later call repeats it.
#![cfg(not(loom))]

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use mvx::error::{CreateError, TerminateError};
use mvx::queue::{LogOutcome, QueueStats};
use mvx::rt::Terminator;
use mvx::sink::{AsyncSink, Dispatch, SinkConfig};
use mvx::{BoxError, ErrorReason, State};

#[path = "support/watchdog.rs"]
mod watchdog;

use watchdog::within_guard;

const CAPACITY: usize = 64;
const MESSAGE: &str = "the dispatcher's drop panicked";

/// Counts what it dispatches; its `Drop` panics.
struct PanicsOnDrop {
    dispatched: Arc<AtomicU64>,
}

impl Dispatch<u32> for PanicsOnDrop {
    async fn dispatch(&mut self, _event: u32) -> Result<(), BoxError> {
        self.dispatched.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }
}

impl Drop for PanicsOnDrop {
    fn drop(&mut self) {
        panic!("{MESSAGE}");
    }
}

type Create = fn(PanicsOnDrop, SinkConfig) -> Result<(AsyncSink<u32>, Terminator), CreateError>;

fn a_panicking_drop_after_a_clean_stop_is_reported(create: Create, namespace: &'static str) {
    within_guard(move || {
        let dispatched = Arc::new(AtomicU64::new(0));
        let (sink, terminator) = create(
            PanicsOnDrop {
                dispatched: dispatched.clone(),
            },
            SinkConfig::default()
                .namespace(namespace)
                .queue_capacity(CAPACITY),
        )
        .unwrap();
        for event in 0..3 {
            assert_eq!(sink.log(event), Ok(LogOutcome::Accepted));
        }

        let outcome = terminator.terminate();
        match &outcome {
            Err(TerminateError::RuntimePanicked(cause)) => {
                assert_eq!(cause.panic_message(), Some(MESSAGE));
            }
            other => panic!("expected RuntimePanicked, got {other:?}"),
        }
        let error = outcome.unwrap_err();
        assert_eq!(error.reason(), ErrorReason::RuntimePanicked);
        assert_eq!(error.stats(), None);
        // The stop itself was clean: every event was delivered before the drop panicked.
        assert_eq!(sink.state(), State::Stopped);
        assert_eq!(dispatched.load(Ordering::Relaxed), 3);
        assert_eq!(
            sink.stats(),
            QueueStats {
                accepted: 3,
                delivered: 3,
                failed: 0,
                dropped: 0,
                refused: 0,
                restarts: 0,
                pending: 0,
                capacity: CAPACITY,
                high_watermark: sink.stats().high_watermark,
            }
        );
        assert_eq!(sink.last_error().map(|error| error.reason()), None);

        // Every later call repeats the outcome.
        match terminator.terminate() {
            Err(TerminateError::RuntimePanicked(cause)) => {
                assert_eq!(cause.panic_message(), Some(MESSAGE));
            }
            other => panic!("expected RuntimePanicked again, got {other:?}"),
        }
        assert!(terminator.is_terminated());
    });
}

#[test]
fn a_panicking_drop_after_a_clean_stop_is_reported_on_thread() {
    a_panicking_drop_after_a_clean_stop_is_reported(mvx::rt::thread::create, "drop-pnc-t");
}

#[test]
fn a_panicking_drop_after_a_clean_stop_is_reported_on_smol() {
    a_panicking_drop_after_a_clean_stop_is_reported(mvx::rt::smol::create, "drop-pnc-s");
}
