//! The `tracing` facade end to end: the real `tracing` macros, through a subscriber made of
//! the registry, `mvx::facade::tracing::SinkLayer` (with a filter of its own) and the `fmt`
//! layer beside it, into sinks on their own threads.
#![cfg(not(loom))]

#[path = "support/watchdog.rs"]
mod watchdog;

use std::io::Write;
use std::sync::{Arc, Mutex};

use mvx::facade::Refused;
use mvx::facade::tracing::SinkLayer;
use mvx::queue::OverflowPolicy;
use mvx::sink::sinks::MemorySink;
use mvx::sink::{FieldValue, Level, LogEvent, SinkConfig};
use tracing_subscriber::filter::LevelFilter;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::{Layer, Registry};
use watchdog::within_guard;

fn field(event: &LogEvent, name: &str) -> Option<FieldValue> {
    event
        .fields
        .iter()
        .rev()
        .find(|(key, _)| key == name)
        .map(|(_, value)| value.clone())
}

/// Text written by the `fmt` layer.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[test]
fn tracing_events_land_in_the_sink_with_span_context_beside_another_layer() {
    within_guard(|| {
        let (memory, events) = MemorySink::new();
        let (sink, terminator) =
            mvx::rt::thread::create(memory, SinkConfig::default()).expect("the sink starts");
        let layer = SinkLayer::new(sink.clone());
        let handle = layer.handle();
        let captured = Captured::default();
        let writer = captured.clone();
        let subscriber = Registry::default()
            .with(layer.with_filter(LevelFilter::INFO))
            .with(
                tracing_subscriber::fmt::layer()
                    .with_ansi(false)
                    .with_writer(move || writer.clone())
                    .with_filter(LevelFilter::DEBUG),
            );

        let line = tracing::subscriber::with_default(subscriber, || {
            let request = tracing::info_span!(
                "request",
                id = 7u64,
                path = "/users",
                user = tracing::field::Empty
            );
            let _request = request.enter();
            request.record("user", "ann");
            let db = tracing::info_span!("db", table = "users", id = 8u64);
            let _db = db.enter();
            let line = line!() + 1;
            tracing::warn!(rows = 3, ratio = 0.5, ok = true, big = u128::MAX, who = ?("a", 1), "saved {} rows", 3);
            tracing::debug!("seen by fmt only");
            drop(_db);
            tracing::info!(target: "audit", "outside db");
            line
        });
        tracing::subscriber::with_default(Registry::default(), || {
            tracing::error!("no mvx layer here");
        });
        sink.flush_blocking().expect("the sink flushes");
        let received = events.take();
        assert_eq!(received.len(), 2, "{received:?}");

        let saved = &received[0];
        assert_eq!(saved.level, Level::Warn);
        assert_eq!(saved.target, module_path!());
        assert_eq!(saved.message, "saved 3 rows");
        // Span fields root first, then the path, the location and the event's fields.
        let names: Vec<&str> = saved.fields.iter().map(|(name, _)| name.as_ref()).collect();
        assert_eq!(
            names,
            [
                "id", "path", "user", "table", "id", "span", "module", "file", "line", "rows",
                "ratio", "ok", "big", "who"
            ]
        );
        assert_eq!(
            field(saved, "id"),
            Some(FieldValue::U64(8)),
            "the inner span wins"
        );
        assert_eq!(
            field(saved, "user").as_ref().and_then(FieldValue::as_str),
            Some("ann"),
            "recorded after the span was created"
        );
        assert_eq!(
            field(saved, "span").as_ref().and_then(FieldValue::as_str),
            Some("request:db")
        );
        assert_eq!(field(saved, "file"), Some(FieldValue::from(file!())));
        assert_eq!(field(saved, "line"), Some(FieldValue::U64(line.into())));
        assert_eq!(field(saved, "rows"), Some(FieldValue::I64(3)));
        assert_eq!(field(saved, "ratio"), Some(FieldValue::F64(0.5)));
        assert_eq!(field(saved, "ok"), Some(FieldValue::Bool(true)));
        assert_eq!(
            field(saved, "big"),
            Some(FieldValue::from(u128::MAX.to_string()))
        );
        assert_eq!(
            field(saved, "who"),
            Some(FieldValue::from("(\"a\", 1)".to_owned()))
        );

        let audit = &received[1];
        assert_eq!(
            (audit.target.as_ref(), audit.message.as_ref()),
            ("audit", "outside db")
        );
        assert_eq!(
            field(audit, "span").as_ref().and_then(FieldValue::as_str),
            Some("request")
        );
        assert_eq!(field(audit, "id"), Some(FieldValue::U64(7)));

        // The fmt layer saw its own selection, debug included.
        let text = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
        assert!(text.contains("saved 3 rows"), "{text}");
        assert!(text.contains("seen by fmt only"), "{text}");
        assert_eq!(handle.refused(), Refused::default());
        terminator.terminate().expect("the sink stops");
    });
}

#[test]
fn refused_events_are_counted_and_the_caller_goes_on() {
    within_guard(|| {
        // Never started: every event is refused, and tracing's caller does not wait.
        let config = SinkConfig::default()
            .queue_capacity(2)
            .overflow(OverflowPolicy::RaiseError);
        let (sink, driver) = mvx::sink::AsyncSink::<LogEvent>::new(mvx::sink::Discard, config);
        let layer = SinkLayer::new(sink.clone()).location(false);
        let handle = layer.handle();
        tracing::subscriber::with_default(Registry::default().with(layer), || {
            tracing::info!("refused: not started");
            drop(sink.start()); // starting, its driver not polled: two slots, then overflow
            for _ in 0..5 {
                tracing::info!("fills the queue");
            }
        });
        assert_eq!(
            handle.refused(),
            Refused {
                overflow: 3,
                not_accepting: 1,
                ..Refused::default()
            }
        );
        assert_eq!(handle.sink().stats().accepted, 2);
        drop(driver);
    });
}
