//! `Terminator::terminate_on_panic`: a panic terminates the sink — every accepted event
//! delivered — before the panic hook installed earlier runs (which prints the message, by
//! default); the hook holds the terminator weakly, so dropping the last clone still
//! terminates, and a later panic then only runs the earlier hook.
//!
//! One test in a binary of its own: a panic hook is the whole process's.
#![cfg(not(loom))]

use std::sync::{Arc, Mutex};

use mvx::State;
use mvx::queue::{LogOutcome, QueueStats};
use mvx::sink::SinkConfig;
use mvx::sink::sinks::MemorySink;

#[path = "support/watchdog.rs"]
mod watchdog;

use watchdog::within_guard;

/// What the earlier hook saw of the sink each time it ran.
type Seen = Arc<Mutex<Vec<(State, QueueStats)>>>;

#[test]
fn a_panic_terminates_the_sink_before_the_earlier_hook_runs() {
    within_guard(|| {
        let (memory, events) = MemorySink::new();
        let (sink, terminator) =
            mvx::rt::thread::create(memory, SinkConfig::default().namespace("panic-hook"))
                .expect("the sink starts");

        let seen: Seen = Arc::default();
        let earlier = {
            let (seen, sink) = (seen.clone(), sink.clone());
            move |_: &std::panic::PanicHookInfo<'_>| {
                seen.lock().unwrap().push((sink.state(), sink.stats()));
            }
        };
        std::panic::set_hook(Box::new(earlier));
        terminator.terminate_on_panic();

        for event in 0..3u32 {
            assert_eq!(sink.log(event), Ok(LogOutcome::Accepted));
        }
        let panicked = std::thread::spawn(|| panic!("the program fails")).join();
        assert!(panicked.is_err());

        // The earlier hook ran once the sink had stopped with every event delivered.
        let first = seen.lock().unwrap().clone();
        assert_eq!(first.len(), 1, "{first:?}");
        let (state, stats) = first[0];
        assert_eq!(state, State::Stopped);
        assert_eq!(
            (stats.accepted, stats.delivered, stats.failed, stats.pending),
            (3, 3, 0, 0)
        );
        assert_eq!(events.take(), [0, 1, 2]);
        assert!(terminator.is_terminated());
        assert_eq!(terminator.terminate().map_err(|e| e.reason()), Ok(stats));

        // The hook does not keep the terminator: once it is gone, a panic only runs the
        // earlier hook.
        drop(terminator);
        let panicked = std::thread::spawn(|| panic!("again")).join();
        assert!(panicked.is_err());
        assert_eq!(seen.lock().unwrap().len(), 2);
        let _ = std::panic::take_hook();
    });
}
