//! `WriterSink`: one line per event (the event's `Display`), in order, through a buffer
//! that is on its target once `flush_blocking()` or `terminate()` returns; a file that
//! cannot be opened fails the start with the `io::Error` as cause; any `Write` works, and
//! its errors are reported, not swallowed.
//!
//! Every test body runs under a watchdog so that a hang fails the test instead of the run.
#![cfg(not(loom))]

use std::io::{self, Write};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, UNIX_EPOCH};

use mvx::error::{CreateError, LogError, SinkError, TerminateError};
use mvx::queue::LogOutcome;
use mvx::sink::sinks::WriterSink;
use mvx::sink::{AsyncSink, Describe, JsonLines, Level, LogEvent, SinkConfig, SinkDescriptor};
use mvx::{ErrorReason, Op, State};

#[path = "support/watchdog.rs"]
mod watchdog;

use watchdog::within_guard;

fn config() -> SinkConfig {
    SinkConfig::default()
        .namespace("writer")
        .queue_capacity(256)
}

/// Event `n`, stamped `n` seconds after the epoch so that its line is known.
fn event(n: u32) -> LogEvent {
    let mut event = LogEvent::new(Level::Info, "app::db", "saved").with_field("n", n);
    event.timestamp = UNIX_EPOCH + Duration::from_secs(u64::from(n));
    event
}

/// The lines events `range` are written as: their `Display`, one per line.
fn lines(range: std::ops::Range<u32>) -> String {
    range.map(|n| format!("{}\n", event(n))).collect()
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).expect("the log file is readable")
}

fn log_range(sink: &AsyncSink<LogEvent>, range: std::ops::Range<u32>) {
    for n in range {
        assert_eq!(sink.log(event(n)), Ok(LogOutcome::Accepted));
    }
}

#[test]
fn an_event_is_one_line_of_its_display() {
    assert_eq!(
        lines(3..5),
        "1970-01-01T00:00:03.000Z INFO app::db: saved n=3\n\
         1970-01-01T00:00:04.000Z INFO app::db: saved n=4\n"
    );
}

#[test]
fn a_file_gets_one_line_per_event_in_order_on_flush_and_on_terminate() {
    within_guard(|| {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let path = dir.path().join("app.log");
        let (sink, terminator) =
            mvx::rt::thread::create(WriterSink::file(&path), config()).expect("the file opens");
        // Opened (created) by the start hook.
        assert_eq!(read(&path), "");

        log_range(&sink, 0..100);
        assert_eq!(sink.flush_blocking().map_err(|e| e.reason()), Ok(()));
        assert_eq!(read(&path), lines(0..100));

        log_range(&sink, 100..150);
        assert_eq!(
            terminator.terminate().map_err(|error| error.reason()),
            Ok(sink.stats())
        );
        assert_eq!(read(&path), lines(0..150));
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
            (150, 150, 0, 0, 0)
        );
        assert_eq!(sink.last_error().map(|e| e.reason()), None);
    });
}

#[test]
fn a_file_is_appended_to() {
    within_guard(|| {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let path = dir.path().join("app.log");
        std::fs::write(&path, "earlier line\n").expect("the file is writable");

        let (sink, terminator) =
            mvx::rt::thread::create(WriterSink::file(&path), config()).expect("the file opens");
        log_range(&sink, 0..3);
        assert_eq!(
            terminator.terminate().map_err(|error| error.reason()),
            Ok(sink.stats())
        );
        assert_eq!(read(&path), format!("earlier line\n{}", lines(0..3)));

        // A second sink on the same file appends after the first.
        let (sink, terminator) =
            mvx::rt::thread::create(WriterSink::file(&path), config()).expect("the file opens");
        log_range(&sink, 3..5);
        assert_eq!(
            terminator.terminate().map_err(|error| error.reason()),
            Ok(sink.stats())
        );
        assert_eq!(read(&path), format!("earlier line\n{}", lines(0..5)));
    });
}

fn assert_not_found(error: &SinkError) {
    match error {
        SinkError::OnStartingHookFailed(_) => {}
        other => panic!("expected OnStartingHookFailed, got {other:?}"),
    }
    assert_eq!(error.reason(), ErrorReason::OnStartingHookFailed);
    let cause = error.cause().expect("the hook's error is the cause");
    assert!(!cause.is_panic());
    let io_error = cause
        .downcast_ref::<io::Error>()
        .expect("the cause is the io::Error of opening the file");
    assert_eq!(io_error.kind(), io::ErrorKind::NotFound);
}

#[test]
fn a_file_in_a_missing_directory_fails_the_start_with_the_io_error() {
    within_guard(|| {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let path = dir.path().join("missing").join("app.log");

        let created = mvx::rt::thread::create::<LogEvent, _>(WriterSink::file(&path), config());
        match &created {
            Err(CreateError::Sink(error)) => assert_not_found(error),
            Err(other) => panic!("expected Sink(OnStartingHookFailed), got {other:?}"),
            Ok(_) => panic!("a sink on a missing directory started"),
        }
        assert_eq!(
            created.err().map(|e| e.reason()),
            Some(ErrorReason::OnStartingHookFailed)
        );
        assert!(!path.exists());
        assert!(!dir.path().join("missing").exists());
    });
}

#[test]
fn a_file_in_a_missing_directory_fails_start_under_any_executor() {
    within_guard(|| {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let path = dir.path().join("missing").join("app.log");
        let (sink, driver) = AsyncSink::<LogEvent>::new(WriterSink::file(&path), config());
        let driver = std::thread::spawn(move || futures::executor::block_on(driver));

        let started = sink.start().wait();
        assert_eq!(started.op, Op::Start);
        assert!(!started.success);
        assert_not_found(started.error.as_ref().expect("a failed start has an error"));
        assert_eq!(sink.state(), State::Failure);
        driver
            .join()
            .expect("the driver completes after a failed start");

        // A sink in `Failure` hands events back.
        match sink.log(event(0)) {
            Err(LogError::NotAccepting { event: back, state }) => {
                assert_eq!(back, event(0));
                assert_eq!(state, State::Failure);
            }
            other => panic!("expected NotAccepting in Failure, got {other:?}"),
        }
        assert!(!path.exists());
    });
}

/// An in-memory `Write` whose bytes the test reads.
#[derive(Clone, Default)]
struct SharedBuffer(Arc<Mutex<Vec<u8>>>);

impl SharedBuffer {
    fn text(&self) -> String {
        String::from_utf8(self.0.lock().unwrap().clone()).expect("the sink writes UTF-8")
    }
}

impl Write for SharedBuffer {
    fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

#[test]
fn any_write_gets_one_line_per_event() {
    within_guard(|| {
        let buffer = SharedBuffer::default();
        let writer = WriterSink::writer("memory", buffer.clone());
        let (sink, terminator) =
            mvx::rt::thread::create::<String, _>(writer, config()).expect("the sink starts");

        for word in ["alpha", "beta", "gamma"] {
            assert_eq!(sink.log(word.to_owned()), Ok(LogOutcome::Accepted));
        }
        assert_eq!(sink.flush_blocking().map_err(|e| e.reason()), Ok(()));
        assert_eq!(buffer.text(), "alpha\nbeta\ngamma\n");

        assert_eq!(sink.log("delta".to_owned()), Ok(LogOutcome::Accepted));
        assert_eq!(
            terminator.terminate().map_err(|error| error.reason()),
            Ok(sink.stats())
        );
        assert_eq!(buffer.text(), "alpha\nbeta\ngamma\ndelta\n");
        let stats = sink.stats();
        assert_eq!((stats.accepted, stats.delivered, stats.failed), (4, 4, 0));
    });
}

#[test]
fn log_events_through_any_write_are_their_display() {
    within_guard(|| {
        let buffer = SharedBuffer::default();
        let (sink, terminator) = mvx::rt::thread::create::<LogEvent, _>(
            WriterSink::writer("memory", buffer.clone()),
            config(),
        )
        .expect("the sink starts");
        log_range(&sink, 0..20);
        assert_eq!(sink.flush_blocking().map_err(|e| e.reason()), Ok(()));
        assert_eq!(buffer.text(), lines(0..20));
        assert_eq!(
            terminator.terminate().map_err(|error| error.reason()),
            Ok(sink.stats())
        );
        assert_eq!(buffer.text(), lines(0..20));
    });
}

#[test]
fn json_lines_are_one_parseable_object_per_event() {
    within_guard(|| {
        let buffer = SharedBuffer::default();
        let writer = WriterSink::writer("memory", buffer.clone()).format(JsonLines);
        let (sink, terminator) =
            mvx::rt::thread::create::<LogEvent, _>(writer, config()).expect("the sink starts");
        log_range(&sink, 0..20);
        let multi_line = event(20).with_field("note", "two\nlines");
        assert_eq!(sink.log(multi_line), Ok(LogOutcome::Accepted));
        assert_eq!(
            terminator.terminate().map_err(|error| error.reason()),
            Ok(sink.stats())
        );

        let text = buffer.text();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 21, "{text}");
        for (n, line) in lines.iter().enumerate() {
            let json: serde_json::Value = serde_json::from_str(line).expect("a JSON object");
            assert_eq!(json["fields"]["n"], n as u64);
            assert_eq!(json["level"], "INFO");
            assert_eq!(json["target"], "app::db");
            assert_eq!(json["message"], "saved");
        }
        assert_eq!(
            lines[3],
            "{\"timestamp\":\"1970-01-01T00:00:03.000Z\",\"level\":\"INFO\",\
             \"target\":\"app::db\",\"message\":\"saved\",\"fields\":{\"n\":3}}"
        );
        let last: serde_json::Value = serde_json::from_str(lines[20]).unwrap();
        assert_eq!(last["fields"]["note"], "two\nlines");
    });
}

/// A `Write` that refuses every byte.
struct BrokenPipe;

impl Write for BrokenPipe {
    fn write(&mut self, _bytes: &[u8]) -> io::Result<usize> {
        Err(io::Error::new(
            io::ErrorKind::BrokenPipe,
            "reader went away",
        ))
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

fn assert_broken_pipe(error: &SinkError) {
    let cause = error.cause().expect("the io::Error is the cause");
    let io_error = cause
        .downcast_ref::<io::Error>()
        .expect("the cause is an io::Error");
    assert_eq!(io_error.kind(), io::ErrorKind::BrokenPipe);
}

#[test]
fn write_errors_are_reported_by_flush_and_terminate() {
    within_guard(|| {
        let (sink, terminator) = mvx::rt::thread::create::<String, _>(
            WriterSink::writer("broken", BrokenPipe),
            config(),
        )
        .expect("the sink starts");
        assert_eq!(sink.log("lost".to_owned()), Ok(LogOutcome::Accepted));

        // The line sits in the buffer; pushing it to the writer fails, and says so.
        let flushed = sink.flush_blocking();
        match &flushed {
            Err(error @ SinkError::FlushFailed(_)) => assert_broken_pipe(error),
            other => panic!("expected FlushFailed, got {other:?}"),
        }
        assert_eq!(
            sink.last_error().map(|e| e.reason()),
            Some(ErrorReason::FlushFailed)
        );

        // The stop's last flush (in the stop hook) fails the same way.
        let terminated = terminator.terminate();
        match &terminated {
            Err(TerminateError::Stop {
                error: error @ SinkError::OnStoppedHookFailed(_),
                ..
            }) => assert_broken_pipe(error),
            other => panic!("expected Stop(OnStoppedHookFailed), got {other:?}"),
        }
        assert_eq!(sink.state(), State::Stopped);
    });
}

#[test]
fn descriptors_name_the_target() {
    let descriptor = |target: WriterSink| target.describe();
    assert_eq!(
        descriptor(WriterSink::stdout()),
        SinkDescriptor::new("writer").resource("stdout")
    );
    assert_eq!(
        descriptor(WriterSink::stderr()),
        SinkDescriptor::new("writer").resource("stderr")
    );
    assert_eq!(
        descriptor(WriterSink::file("/var/log/app.log")),
        SinkDescriptor::new("writer")
            .resource("file")
            .resource("/var/log/app.log")
    );
    assert_eq!(
        descriptor(WriterSink::writer("mem", SharedBuffer::default())),
        SinkDescriptor::new("writer")
            .resource("writer")
            .resource("mem")
    );
    // The format is part of the configuration, not of the resource.
    assert_eq!(
        WriterSink::stderr().format(JsonLines).describe(),
        SinkDescriptor::new("writer")
            .resource("stderr")
            .config("format=json-lines")
    );
}
