//! The `log` facade end to end: the real `log` macros, through the installed
//! `mvx::facade::log` logger, into a sink on its own thread.
//!
//! `log` takes one logger per process, set once: this behaviour has its own test binary,
//! and one test.
#![cfg(not(loom))]

#[path = "support/watchdog.rs"]
mod watchdog;

use log::LevelFilter;
use mvx::facade::Refused;
use mvx::sink::sinks::MemorySink;
use mvx::sink::{FieldValue, Level, SinkConfig};
use watchdog::within_guard;

#[test]
fn log_macros_land_in_the_sink_with_level_target_location_and_key_values() {
    within_guard(|| {
        let (memory, events) = MemorySink::new();
        let (sink, terminator) =
            mvx::rt::thread::create(memory, SinkConfig::default()).expect("the sink starts");
        let logger = mvx::facade::log::install(sink.clone(), LevelFilter::Debug)
            .expect("no logger is set yet");
        assert!(
            mvx::facade::log::install(sink.clone(), LevelFilter::Debug).is_err(),
            "a second logger is refused"
        );
        assert_eq!(log::max_level(), LevelFilter::Debug);

        let user = "ann";
        let line = line!() + 1;
        log::info!(user = user, attempts = 3, admin = false, ratio = 0.5; "login of {user}");
        log::warn!(target: "audit", "plain literal");
        log::debug!("debug passes");
        log::trace!("trace is filtered out");
        for n in 0..100u32 {
            log::error!(n = n; "burst");
        }
        log::logger().flush(); // waits for the sink
        let received = events.take();
        assert_eq!(received.len(), 103);

        let login = &received[0];
        assert_eq!(login.level, Level::Info);
        assert_eq!(login.target, module_path!());
        assert_eq!(login.message, "login of ann");
        let field = |name: &str| {
            login
                .fields
                .iter()
                .find(|(key, _)| key == name)
                .map(|(_, value)| value.clone())
        };
        assert_eq!(field("module"), Some(FieldValue::from(module_path!())));
        assert_eq!(field("file"), Some(FieldValue::from(file!())));
        assert_eq!(field("line"), Some(FieldValue::U64(line.into())));
        assert_eq!(field("user"), Some(FieldValue::from("ann")));
        assert_eq!(field("attempts"), Some(FieldValue::U64(3)));
        assert_eq!(field("admin"), Some(FieldValue::Bool(false)));
        assert_eq!(field("ratio"), Some(FieldValue::F64(0.5)));
        assert_eq!(login.fields.len(), 7);

        let audit = &received[1];
        assert_eq!(
            (audit.level, audit.target.as_ref(), audit.message.as_ref()),
            (Level::Warn, "audit", "plain literal")
        );
        assert_eq!(received[2].level, Level::Debug);
        for (n, event) in received[3..].iter().enumerate() {
            assert_eq!(event.level, Level::Error);
            assert_eq!(
                event.fields.last(),
                Some(&("n".into(), FieldValue::U64(n as u64)))
            );
        }
        assert_eq!(logger.refused(), Refused::default());

        // A terminated sink refuses: the caller is not blocked, the event is counted.
        terminator.terminate().expect("the sink stops");
        log::info!("after the end");
        assert_eq!(
            logger.refused(),
            Refused {
                not_accepting: 1,
                ..Refused::default()
            }
        );
        let stats = sink.stats();
        assert_eq!(
            (stats.accepted, stats.delivered, stats.failed),
            (103, 103, 0)
        );
    });
}
