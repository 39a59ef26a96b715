//! Telemetry does not feed on itself: what a sink's dispatcher emits through the installed
//! facades (`log`, `tracing`, `metrics`) is left out and counted as suppressed, and a
//! `suppress()` guard does the same around any code; a suppressed event allocates nothing.
//!
//! Each facade is installed for the whole process, once: each has one test here. Without
//! suppression, a dispatcher that logs through the facade of its own sink turns one event
//! into a flood; the dispatchers here stop echoing after [`ECHO_LIMIT`] events, so that a
//! flood ends and fails the exact counts instead of running forever.
#![cfg(not(loom))]

use std::sync::mpsc;

use mvx::BoxError;
use mvx::facade::{Refused, is_suppressed, suppress};
use mvx::queue::LogOutcome;
use mvx::sink::{Dispatch, LogEvent, SinkConfig};

#[path = "support/counting_allocator.rs"]
mod counting_allocator;
#[path = "support/watchdog.rs"]
mod watchdog;

use counting_allocator::on_this_thread;
use watchdog::within_guard;

/// How many events an echoing dispatcher echoes at most.
const ECHO_LIMIT: usize = 10_000;

/// How each echoing dispatcher emits telemetry from inside its dispatch.
#[derive(Clone, Copy)]
enum Echo {
    Log,
    Tracing,
    Metrics,
}

/// A dispatcher that emits telemetry through a facade from inside each dispatch, and
/// reports the message of each event it is handed.
struct Echoing {
    echo: Echo,
    seen: usize,
    delivered: mpsc::Sender<(String, bool)>,
}

impl Dispatch<LogEvent> for Echoing {
    async fn dispatch(&mut self, event: LogEvent) -> Result<(), BoxError> {
        self.seen += 1;
        if self.seen <= ECHO_LIMIT {
            match self.echo {
                Echo::Log => log::info!(target: "echo", "echo of {}", event.message),
                Echo::Tracing => tracing::info!(target: "facade_suppression", "echo"),
                Echo::Metrics => metrics::counter!("dispatch.inside").increment(1),
            }
        }
        self.delivered
            .send((event.message.into_owned(), is_suppressed()))
            .unwrap();
        Ok(())
    }
}

/// An echoing sink on a thread of its own; the receiver gets `(message, suppressed)` for
/// each dispatched event.
fn echoing(
    echo: Echo,
) -> (
    mvx::sink::AsyncSink<LogEvent>,
    mvx::rt::Terminator,
    mpsc::Receiver<(String, bool)>,
) {
    let (delivered_tx, delivered) = mpsc::channel();
    let dispatcher = Echoing {
        echo,
        seen: 0,
        delivered: delivered_tx,
    };
    let (sink, terminator) =
        mvx::rt::thread::create(dispatcher, SinkConfig::default()).expect("the sink starts");
    (sink, terminator, delivered)
}

/// Every event delivered so far (the sink is flushed first).
fn delivered(
    sink: &mvx::sink::AsyncSink<LogEvent>,
    from: &mpsc::Receiver<(String, bool)>,
) -> Vec<(String, bool)> {
    sink.flush_blocking().expect("served");
    from.try_iter().collect()
}

#[test]
fn a_dispatcher_logging_through_the_log_facade_does_not_feed_its_sink() {
    within_guard(|| {
        let (sink, terminator, from) = echoing(Echo::Log);
        let logger = mvx::facade::log::install(sink.clone(), log::LevelFilter::Info)
            .expect("no logger is set yet");

        log::info!("app");
        assert_eq!(delivered(&sink, &from), [("app".to_owned(), true)]);
        assert_eq!(
            logger.refused(),
            Refused {
                suppressed: 1,
                ..Refused::default()
            }
        );

        // Outside any sink, under a guard: left out and counted, nothing allocated.
        let quiet = |n: u32| log::info!(n = n; "quiet {n}");
        quiet(0);
        let before = on_this_thread();
        {
            let _quiet = suppress();
            assert!(is_suppressed());
            for n in 1..=100 {
                quiet(n);
            }
        }
        assert_eq!(
            on_this_thread() - before,
            0,
            "a suppressed record allocates nothing"
        );
        assert!(!is_suppressed());
        log::info!("loud");
        assert_eq!(
            delivered(&sink, &from),
            [("quiet 0".to_owned(), true), ("loud".to_owned(), true)]
        );
        // The echoes of "app", "quiet 0" and "loud", and the 100 records under the guard.
        assert_eq!(logger.refused().suppressed, 3 + 100);
        assert_eq!(logger.refused().total(), 103);
        let stats = terminator.terminate().expect("stops");
        assert_eq!((stats.accepted, stats.delivered, stats.pending), (3, 3, 0));
    });
}

#[test]
fn a_dispatcher_tracing_through_the_layer_does_not_feed_its_sink() {
    use tracing_subscriber::Layer;
    use tracing_subscriber::layer::SubscriberExt;

    within_guard(|| {
        let (sink, terminator, from) = echoing(Echo::Tracing);
        let layer = mvx::facade::tracing::SinkLayer::new(sink.clone()).location(false);
        let handle = layer.handle();
        // Only this test's events: the crates below mvx trace too.
        let only_here = tracing_subscriber::filter::filter_fn(|metadata| {
            metadata.target() == "facade_suppression"
        });
        let subscriber = tracing_subscriber::Registry::default().with(layer.with_filter(only_here));
        tracing::subscriber::set_global_default(subscriber).expect("no subscriber is set yet");

        tracing::info!(target: "facade_suppression", "app");
        assert_eq!(delivered(&sink, &from), [("app".to_owned(), true)]);
        assert_eq!(
            handle.refused(),
            Refused {
                suppressed: 1,
                ..Refused::default()
            }
        );

        // One call site, registered by its first, unsuppressed, call.
        let quiet = |n: u32| tracing::info!(target: "facade_suppression", n, "quiet");
        quiet(0);
        let before = on_this_thread();
        {
            let _quiet = suppress();
            for n in 1..=100 {
                quiet(n);
            }
        }
        assert_eq!(
            on_this_thread() - before,
            0,
            "a suppressed event allocates nothing"
        );
        assert_eq!(delivered(&sink, &from), [("quiet".to_owned(), true)]);
        // The echoes of "app" and "quiet", and the 100 events under the guard.
        assert_eq!(handle.refused().suppressed, 2 + 100);
        let stats = terminator.terminate().expect("stops");
        assert_eq!((stats.accepted, stats.delivered, stats.pending), (2, 2, 0));
    });
}

#[test]
fn a_counter_bumped_inside_dispatch_is_suppressed() {
    within_guard(|| {
        let registry = mvx::metrics::Registry::new();
        let recorder = mvx::facade::metrics::install(registry.clone())
            .unwrap_or_else(|_| panic!("no recorder is set yet"));
        let (sink, terminator, from) = echoing(Echo::Metrics);

        assert_eq!(
            sink.log(LogEvent::new(mvx::sink::Level::Info, "app", "app")),
            Ok(LogOutcome::Accepted)
        );
        assert_eq!(delivered(&sink, &from), [("app".to_owned(), true)]);
        let inside = registry.counter("dispatch.inside").expect("a counter");
        assert_eq!((inside.get(), recorder.suppressed()), (0, 1));

        // Outside any sink: counted without a guard, left out under one.
        metrics::counter!("outside").increment(5);
        metrics::gauge!("outside.gauge").set(2.0);
        metrics::histogram!("outside.seconds").record(0.5);
        let before = on_this_thread();
        {
            let _quiet = suppress();
            metrics::counter!("outside").increment(7);
            metrics::counter!("outside").absolute(100);
            metrics::gauge!("outside.gauge").set(1.0);
            metrics::histogram!("outside.seconds").record(0.5);
        }
        assert_eq!(
            on_this_thread() - before,
            0,
            "a suppressed update allocates nothing"
        );
        let outside = registry.counter("outside").expect("a counter");
        assert_eq!((outside.get(), recorder.suppressed()), (5, 1 + 4));
        assert_eq!(registry.gauge("outside.gauge").expect("a gauge").get(), 2.0);
        terminator.terminate().expect("stops");
    });
}
