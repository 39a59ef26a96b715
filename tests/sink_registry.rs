//! `SinkRegistry`: one sink per resource. The same resource with the same configuration
//! returns the sink already there; the same resource with another configuration is a
//! `DescriptorConflict`, found before anything is created; other resources get sinks of
//! their own; `shutdown()` terminates every sink.
//!
//! Every test body runs under a watchdog so that a hang fails the test instead of the run.
#![cfg(not(loom))]

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, mpsc};

use mvx::error::{CreateError, SinkError};
use mvx::queue::LogOutcome;
use mvx::rt::Terminator;
use mvx::sink::sinks::{MemoryEvents, MemorySink, WriterSink};
use mvx::sink::{AsyncSink, Describe, LogEvent, SinkConfig, SinkDescriptor, SinkRegistry};
use mvx::{ErrorReason, State};

#[path = "support/watchdog.rs"]
mod watchdog;

use watchdog::within_guard;

fn config() -> SinkConfig {
    SinkConfig::default()
        .namespace("registry")
        .queue_capacity(64)
}

fn descriptor(resource: &str, config_key: &str) -> SinkDescriptor {
    SinkDescriptor::new("memory")
        .resource("queue")
        .resource(resource)
        .config(config_key)
}

/// A creation closure for `configure_with` that counts its calls and keeps the reader of
/// the memory sink it creates.
struct Creator {
    calls: Arc<AtomicUsize>,
    events: mpsc::Sender<MemoryEvents<u32>>,
}

impl Creator {
    fn new() -> (Self, Arc<AtomicUsize>, mpsc::Receiver<MemoryEvents<u32>>) {
        let calls = Arc::new(AtomicUsize::new(0));
        let (events_tx, events_rx) = mpsc::channel();
        (
            Self {
                calls: calls.clone(),
                events: events_tx,
            },
            calls,
            events_rx,
        )
    }

    fn create(
        &self,
    ) -> impl FnOnce(SinkConfig) -> Result<(AsyncSink<u32>, Terminator), CreateError> + use<> {
        let calls = self.calls.clone();
        let events = self.events.clone();
        move |config| {
            calls.fetch_add(1, Ordering::SeqCst);
            let (memory, reader) = MemorySink::new();
            events.send(reader).expect("the test keeps the receiver");
            mvx::rt::thread::create(memory, config)
        }
    }
}

fn assert_conflict(
    result: Result<AsyncSink<u32>, CreateError>,
    resource: &[&str],
    existing: &[String],
    requested: &[String],
) {
    let error = result.expect_err("a conflicting configuration was accepted");
    assert_eq!(error.reason(), ErrorReason::DescriptorConflict);
    match error {
        CreateError::Sink(SinkError::DescriptorConflict {
            resource: got_resource,
            existing: got_existing,
            requested: got_requested,
        }) => {
            assert_eq!(got_resource, resource);
            assert_eq!(got_existing, existing);
            assert_eq!(got_requested, requested);
        }
        other => panic!("expected Sink(DescriptorConflict), got {other:?}"),
    }
}

/// The configuration part of a conflict's keys: the config key, then the `SinkConfig`.
fn key(config_key: &str, config: &SinkConfig) -> Vec<String> {
    vec![config_key.to_owned(), format!("{config:?}")]
}

#[test]
fn the_same_resource_and_config_return_the_same_sink() {
    within_guard(|| {
        let registry = SinkRegistry::<u32>::new();
        let (creator, calls, readers) = Creator::new();

        let first = registry
            .configure_with(descriptor("a", "k"), config(), creator.create())
            .expect("the first configuration creates the sink");
        assert_eq!(calls.load(Ordering::SeqCst), 1);
        assert_eq!(first.state(), State::Running);

        let again = registry
            .configure_with(descriptor("a", "k"), config(), creator.create())
            .expect("the same configuration is accepted");
        assert_eq!(calls.load(Ordering::SeqCst), 1, "a second sink was created");
        assert!(first.same_sink(&again));
        assert_eq!(registry.descriptors(), vec![descriptor("a", "k")]);

        // Both handles feed the one sink.
        let events = readers.recv().expect("the sink's reader");
        assert_eq!(first.log(1), Ok(LogOutcome::Accepted));
        assert_eq!(again.log(2), Ok(LogOutcome::Accepted));
        again.flush_blocking().expect("the flush is served");
        assert_eq!(events.take(), vec![1, 2]);

        assert!(matches!(registry.shutdown(), Ok(())));
        assert_eq!(first.state(), State::Stopped);
    });
}

#[test]
fn another_config_key_for_the_same_resource_is_a_conflict_and_creates_nothing() {
    within_guard(|| {
        let registry = SinkRegistry::<u32>::new();
        let (creator, calls, readers) = Creator::new();
        let existing = registry
            .configure_with(descriptor("a", "k1"), config(), creator.create())
            .expect("the first configuration creates the sink");
        assert_eq!(calls.load(Ordering::SeqCst), 1);

        let conflict = registry.configure_with(descriptor("a", "k2"), config(), creator.create());
        assert_conflict(
            conflict,
            &["queue", "a"],
            &key("k1", &config()),
            &key("k2", &config()),
        );
        assert_eq!(calls.load(Ordering::SeqCst), 1, "the closure was called");
        assert_eq!(registry.descriptors(), vec![descriptor("a", "k1")]);

        // The registered sink is untouched.
        let events = readers.recv().expect("the sink's reader");
        assert_eq!(existing.state(), State::Running);
        assert_eq!(existing.log(7), Ok(LogOutcome::Accepted));
        existing.flush_blocking().expect("the flush is served");
        assert_eq!(events.take(), vec![7]);

        assert!(matches!(registry.shutdown(), Ok(())));
        assert_eq!(existing.state(), State::Stopped);
    });
}

#[test]
fn another_sink_config_for_the_same_resource_is_a_conflict_and_creates_nothing() {
    within_guard(|| {
        let registry = SinkRegistry::<u32>::new();
        let (creator, calls, _readers) = Creator::new();
        let existing = registry
            .configure_with(descriptor("a", "k"), config(), creator.create())
            .expect("the first configuration creates the sink");

        let other = config().queue_capacity(128);
        let conflict =
            registry.configure_with(descriptor("a", "k"), other.clone(), creator.create());
        assert_conflict(
            conflict,
            &["queue", "a"],
            &key("k", &config()),
            &key("k", &other),
        );
        assert_eq!(calls.load(Ordering::SeqCst), 1, "the closure was called");

        // Checked before creation: a closure that would panic is never called.
        let lazy = config().lazy_start(true);
        let conflict = registry.configure_with(descriptor("a", "k"), lazy.clone(), |_| {
            panic!("the creation closure ran despite the conflict")
        });
        assert_conflict(
            conflict,
            &["queue", "a"],
            &key("k", &config()),
            &key("k", &lazy),
        );

        assert_eq!(registry.descriptors(), vec![descriptor("a", "k")]);
        assert_eq!(existing.state(), State::Running);
        assert!(matches!(registry.shutdown(), Ok(())));
        assert_eq!(existing.state(), State::Stopped);
    });
}

#[test]
fn configure_uses_the_dispatchers_descriptor() {
    within_guard(|| {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let path = dir.path().join("registry.log");
        let registry = SinkRegistry::<LogEvent>::new();

        let writer = WriterSink::file(&path);
        let expected = SinkDescriptor::new("writer")
            .resource("file")
            .resource(path.display().to_string());
        assert_eq!(writer.describe(), expected);

        let first = registry
            .configure(writer, config())
            .expect("the file sink starts");
        let again = registry
            .configure(WriterSink::file(&path), config())
            .expect("the same file and configuration are accepted");
        assert!(first.same_sink(&again));

        let other = config().batch_size(1);
        let conflict = registry.configure(WriterSink::file(&path), other.clone());
        let error = conflict.expect_err("another configuration of the file was accepted");
        assert_eq!(error.reason(), ErrorReason::DescriptorConflict);
        match error {
            CreateError::Sink(SinkError::DescriptorConflict {
                resource,
                existing,
                requested,
            }) => {
                assert_eq!(resource, ["file".to_owned(), path.display().to_string()]);
                assert_eq!(existing, [format!("{:?}", config())]);
                assert_eq!(requested, [format!("{other:?}")]);
            }
            other => panic!("expected Sink(DescriptorConflict), got {other:?}"),
        }
        assert_eq!(registry.descriptors(), vec![expected]);
        assert!(matches!(registry.shutdown(), Ok(())));
        assert_eq!(first.state(), State::Stopped);
    });
}

#[test]
fn different_resources_get_sinks_of_their_own() {
    within_guard(|| {
        let registry = SinkRegistry::<u32>::new();
        let (creator, calls, readers) = Creator::new();
        let a = registry
            .configure_with(descriptor("a", "k"), config(), creator.create())
            .expect("sink a starts");
        let b = registry
            .configure_with(descriptor("b", "k"), config(), creator.create())
            .expect("sink b starts");
        assert_eq!(calls.load(Ordering::SeqCst), 2);
        assert!(!a.same_sink(&b));
        assert_eq!(
            registry.descriptors(),
            vec![descriptor("a", "k"), descriptor("b", "k")]
        );
        // Another sink type on the same resource key is another resource too.
        let other_type = SinkDescriptor::new("other")
            .resource("queue")
            .resource("a")
            .config("k");
        let c = registry
            .configure_with(other_type.clone(), config(), creator.create())
            .expect("sink c starts");
        assert_eq!(calls.load(Ordering::SeqCst), 3);
        assert!(!c.same_sink(&a));

        let events_a = readers.recv().expect("reader of a");
        let events_b = readers.recv().expect("reader of b");
        let events_c = readers.recv().expect("reader of c");
        assert_eq!(a.log(1), Ok(LogOutcome::Accepted));
        assert_eq!(b.log(2), Ok(LogOutcome::Accepted));
        assert_eq!(c.log(3), Ok(LogOutcome::Accepted));
        for sink in [&a, &b, &c] {
            sink.flush_blocking().expect("the flush is served");
        }
        assert_eq!(
            (events_a.take(), events_b.take(), events_c.take()),
            (vec![1], vec![2], vec![3])
        );

        assert!(matches!(registry.shutdown(), Ok(())));
    });
}

#[test]
fn shutdown_terminates_every_sink_and_empties_the_registry() {
    within_guard(|| {
        let registry = SinkRegistry::<u32>::new();
        let (creator, _calls, readers) = Creator::new();
        let sinks: Vec<_> = ["a", "b", "c"]
            .into_iter()
            .map(|resource| {
                registry
                    .configure_with(descriptor(resource, "k"), config(), creator.create())
                    .expect("the sink starts")
            })
            .collect();
        let events: Vec<_> = (0..3).map(|_| readers.recv().expect("a reader")).collect();
        for (n, sink) in (0u32..).zip(&sinks) {
            for event in 0..10 {
                assert_eq!(sink.log(n * 100 + event), Ok(LogOutcome::Accepted));
            }
        }

        assert!(matches!(registry.shutdown(), Ok(())));
        assert_eq!(registry.descriptors(), Vec::<SinkDescriptor>::new());
        for (n, (sink, events)) in (0u32..).zip(sinks.iter().zip(&events)) {
            assert_eq!(sink.state(), State::Stopped);
            let stats = sink.stats();
            assert_eq!(
                (
                    stats.accepted,
                    stats.delivered,
                    stats.failed,
                    stats.dropped,
                    stats.pending
                ),
                (10, 10, 0, 0, 0)
            );
            assert_eq!(events.take(), (n * 100..n * 100 + 10).collect::<Vec<_>>());
        }

        // Empty now: a second shutdown has nothing to do, and the resource is free again.
        assert!(matches!(registry.shutdown(), Ok(())));
        let (creator, calls, _readers) = Creator::new();
        let fresh = registry
            .configure_with(descriptor("a", "other"), config(), creator.create())
            .expect("the resource is free after shutdown");
        assert_eq!(calls.load(Ordering::SeqCst), 1);
        assert!(!fresh.same_sink(&sinks[0]));
        assert!(matches!(registry.shutdown(), Ok(())));
        assert_eq!(fresh.state(), State::Stopped);
    });
}

#[test]
fn a_failed_creation_registers_nothing() {
    within_guard(|| {
        let registry = SinkRegistry::<u32>::new();
        let failed = registry.configure_with(descriptor("a", "k"), config(), |_| {
            Err(CreateError::RuntimeGone)
        });
        match failed {
            Err(CreateError::RuntimeGone) => {}
            other => panic!("expected RuntimeGone, got {other:?}"),
        }
        assert_eq!(registry.descriptors(), Vec::<SinkDescriptor>::new());

        // The resource is still free, under any configuration.
        let (creator, calls, _readers) = Creator::new();
        let sink = registry
            .configure_with(descriptor("a", "k2"), config(), creator.create())
            .expect("the resource is free");
        assert_eq!(calls.load(Ordering::SeqCst), 1);
        assert_eq!(registry.descriptors(), vec![descriptor("a", "k2")]);
        assert!(matches!(registry.shutdown(), Ok(())));
        assert_eq!(sink.state(), State::Stopped);
    });
}
