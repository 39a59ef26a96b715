//! `WriterSink`: one line per event (the event's `Display`), in order, on its target once
//! `flush_blocking()` or `terminate()` returns; a file that cannot be opened fails the
//! start with the `io::Error` as cause; any `Write` works. An event is delivered only once
//! its line is written; a write error counts the lines it did not write whole as failed;
//! a flush error is reported, not swallowed; a writer that buffers is flushed every
//! `flush_interval` under sustained load; a write that never returns holds neither a flush
//! with a deadline nor a terminator's deadline.
//!
//! Every test body runs under a watchdog so that a hang fails the test instead of the run.
#![cfg(not(loom))]

use std::io::{self, Write};
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, OnceLock};
use std::time::{Duration, UNIX_EPOCH};

use mvx::error::{CreateError, LogError, SinkError, TerminateError, TerminateStage};
use mvx::queue::LogOutcome;
use mvx::sink::sinks::WriterSink;
use mvx::sink::{AsyncSink, Describe, JsonLines, Level, LogEvent, SinkConfig, SinkDescriptor};
use mvx::{ErrorReason, Op, State};

#[path = "support/watchdog.rs"]
mod watchdog;

use watchdog::{GUARD, wait_until, within_guard};

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

/// `(accepted, delivered, failed, pending)`.
fn counts(sink: &AsyncSink<String>) -> (u64, u64, u64, u64) {
    let stats = sink.stats();
    (stats.accepted, stats.delivered, stats.failed, stats.pending)
}

#[test]
fn a_write_error_counts_the_events_it_lost_as_failed() {
    within_guard(|| {
        let (sink, terminator) = mvx::rt::thread::create::<String, _>(
            WriterSink::writer("broken", BrokenPipe),
            config(),
        )
        .expect("the sink starts");
        for word in ["lost", "too"] {
            assert_eq!(sink.log(word.to_owned()), Ok(LogOutcome::Accepted));
        }

        // The flush serves once both events are finished: failed, not delivered.
        assert_eq!(sink.flush_blocking().map_err(|e| e.reason()), Ok(()));
        assert_eq!(counts(&sink), (2, 0, 2, 0));
        let error = sink.last_error().expect("the write error is kept");
        assert_eq!(error.reason(), ErrorReason::DispatchFailed);
        assert_broken_pipe(&error);

        // Failed events are counted, not fatal: the stop is clean.
        let stats = terminator.terminate().expect("the sink stops cleanly");
        assert_eq!(
            (stats.accepted, stats.delivered, stats.failed, stats.pending),
            (2, 0, 2, 0)
        );
        assert_eq!(sink.state(), State::Stopped);
    });
}

/// A `Write` that takes `room` bytes in all, then fails every write.
struct Short {
    room: usize,
    written: SharedBuffer,
}

impl Write for Short {
    fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
        if self.room == 0 {
            return Err(io::Error::new(io::ErrorKind::StorageFull, "disk full"));
        }
        let taken = bytes.len().min(self.room);
        self.room -= taken;
        self.written.write(&bytes[..taken])
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

#[test]
fn a_line_written_in_part_is_failed_and_the_lines_before_it_delivered() {
    within_guard(|| {
        let written = SharedBuffer::default();
        // Room for "alpha\n" and half of "beta\n".
        let short = Short {
            room: 8,
            written: written.clone(),
        };
        let (sink, terminator) =
            mvx::rt::thread::create::<String, _>(WriterSink::writer("short", short), config())
                .expect("the sink starts");
        for word in ["alpha", "beta", "gamma"] {
            assert_eq!(sink.log(word.to_owned()), Ok(LogOutcome::Accepted));
        }
        assert_eq!(sink.flush_blocking().map_err(|e| e.reason()), Ok(()));
        // However the driver batched them: one line whole, one in part, one not at all.
        assert_eq!(written.text(), "alpha\nbe");
        assert_eq!(counts(&sink), (3, 1, 2, 0));
        let error = sink.last_error().expect("the write error is kept");
        assert_eq!(error.reason(), ErrorReason::DispatchFailed);
        let cause = error.cause().expect("the io::Error is the cause");
        assert_eq!(
            cause.downcast_ref::<io::Error>().map(io::Error::kind),
            Some(io::ErrorKind::StorageFull)
        );
        terminator.terminate().expect("the sink stops cleanly");
    });
}

/// A `Write` whose bytes arrive, but whose `flush` fails.
struct FlushFails;

impl Write for FlushFails {
    fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
        Ok(bytes.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Err(io::Error::new(
            io::ErrorKind::BrokenPipe,
            "reader went away",
        ))
    }
}

#[test]
fn flush_errors_are_reported_by_flush_and_terminate() {
    within_guard(|| {
        let (sink, terminator) = mvx::rt::thread::create::<String, _>(
            WriterSink::writer("flush-fails", FlushFails),
            config(),
        )
        .expect("the sink starts");
        assert_eq!(sink.log("written".to_owned()), Ok(LogOutcome::Accepted));

        // The line reached the writer; pushing it on fails, and says so.
        let flushed = sink.flush_blocking();
        match &flushed {
            Err(error @ SinkError::FlushFailed(_)) => assert_broken_pipe(error),
            other => panic!("expected FlushFailed, got {other:?}"),
        }
        assert_eq!(
            sink.last_error().map(|e| e.reason()),
            Some(ErrorReason::FlushFailed)
        );
        assert_eq!(counts(&sink), (1, 1, 0, 0));

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

/// A `Write` whose `write` waits until the test opens it, and that tells the test when a
/// write has begun.
#[derive(Clone, Default)]
struct Gated {
    inner: Arc<GatedInner>,
    written: SharedBuffer,
}

#[derive(Default)]
struct GatedInner {
    /// `(writes begun, open)`.
    state: Mutex<(u64, bool)>,
    changed: Condvar,
}

impl Gated {
    /// Blocks until `count` writes have begun.
    fn wait_for_writes(&self, count: u64) {
        let state = self.inner.state.lock().unwrap();
        let (_state, wait) = self
            .inner
            .changed
            .wait_timeout_while(state, GUARD, |(begun, _)| *begun < count)
            .unwrap();
        assert!(!wait.timed_out(), "{count} writes never began");
    }

    /// Lets every write through, now and later.
    fn open(&self) {
        self.inner.state.lock().unwrap().1 = true;
        self.inner.changed.notify_all();
    }
}

impl Write for Gated {
    fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
        let mut state = self.inner.state.lock().unwrap();
        state.0 += 1;
        self.inner.changed.notify_all();
        let _open = self
            .inner
            .changed
            .wait_while(state, |(_, open)| !*open)
            .unwrap();
        self.written.write(bytes)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

#[test]
fn an_event_is_delivered_only_once_its_bytes_are_written() {
    within_guard(|| {
        let gated = Gated::default();
        let (sink, terminator) = mvx::rt::thread::create::<String, _>(
            WriterSink::writer("gated", gated.clone()),
            config(),
        )
        .expect("the sink starts");
        assert_eq!(sink.log("one".to_owned()), Ok(LogOutcome::Accepted));

        // Its bytes are on their way to the writer, not in it: not delivered yet.
        gated.wait_for_writes(1);
        assert_eq!(counts(&sink), (1, 0, 0, 1));
        assert_eq!(gated.written.text(), "");

        gated.open();
        assert_eq!(sink.flush_blocking().map_err(|e| e.reason()), Ok(()));
        assert_eq!(gated.written.text(), "one\n");
        assert_eq!(counts(&sink), (1, 1, 0, 0));
        terminator.terminate().expect("the sink stops cleanly");
    });
}

#[test]
fn a_flush_of_a_stuck_writer_returns_its_timeout_error() {
    within_guard(|| {
        let gated = Gated::default();
        let (sink, terminator) = mvx::rt::thread::create::<String, _>(
            WriterSink::writer("stuck", gated.clone()),
            config(),
        )
        .expect("the sink starts");
        assert_eq!(sink.log("stuck".to_owned()), Ok(LogOutcome::Accepted));
        gated.wait_for_writes(1);

        let flushed = sink.flush().wait_timeout(Duration::from_millis(50));
        assert_eq!(
            flushed.map_err(|e| e.reason()),
            Err(ErrorReason::WaitTimedOut)
        );
        assert_eq!(counts(&sink), (1, 0, 0, 1));

        // The write is still stuck at the terminator's deadline: abandoned, counted failed.
        let terminated = terminator.terminate_within(Duration::from_millis(200));
        match &terminated {
            Err(TerminateError::TimedOut {
                stage, abandoned, ..
            }) => {
                assert_eq!(*stage, TerminateStage::Dispatch);
                assert_eq!(*abandoned, 1);
            }
            other => panic!("expected TimedOut, got {other:?}"),
        }
        assert_eq!(
            terminated
                .as_ref()
                .err()
                .and_then(TerminateError::stats)
                .map(|s| (s.accepted, s.delivered, s.failed, s.pending)),
            Some((1, 0, 1, 0))
        );
        assert_eq!(counts(&sink), (1, 0, 1, 0));
        // The write, which went on on its own thread, may finish now: nothing changes.
        gated.open();
        assert_eq!(
            sink.flush_blocking().map_err(|e| e.reason()),
            Err(ErrorReason::TerminateTimedOut)
        );
        assert_eq!(counts(&sink), (1, 0, 1, 0));
    });
}

/// Wraps the writer of a sink with slow writes, and counts the flushes made while the sink
/// still has at least `UNDER_LOAD` events pending.
struct FlushProbe<W> {
    inner: W,
    sink: Arc<OnceLock<AsyncSink<String>>>,
    under_load: Arc<AtomicU64>,
}

const UNDER_LOAD: u64 = 16;

impl<W: Write> Write for FlushProbe<W> {
    fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
        // Stands for a slow device: the drain below takes a few hundred milliseconds.
        std::thread::sleep(Duration::from_millis(2));
        self.inner.write(bytes)
    }

    fn flush(&mut self) -> io::Result<()> {
        if let Some(sink) = self.sink.get()
            && sink.stats().pending >= UNDER_LOAD
        {
            self.under_load.fetch_add(1, Ordering::Relaxed);
        }
        self.inner.flush()
    }
}

#[test]
fn a_buffering_writer_is_flushed_every_flush_interval_under_sustained_load() {
    within_guard(|| {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let path = dir.path().join("app.log");
        let file = std::fs::File::create(&path).expect("the file is created");
        let sink_slot = Arc::new(OnceLock::new());
        let under_load = Arc::new(AtomicU64::new(0));
        let probe = FlushProbe {
            // Holds a megabyte: nothing reaches the file unless it is flushed.
            inner: io::BufWriter::with_capacity(1 << 20, file),
            sink: sink_slot.clone(),
            under_load: under_load.clone(),
        };
        let writer =
            WriterSink::writer("buffered", probe).flush_interval(Duration::from_millis(20));
        let (sink, driver) =
            AsyncSink::<String>::new(writer, config().queue_capacity(512).batch_size(4));
        let _ = sink_slot.set(sink.clone());

        // Every event is queued before the driver runs: the queue runs empty only once all
        // are written, so a flush with events pending is not the flush of an idle queue.
        let start = sink.start();
        for n in 0..400 {
            assert_eq!(sink.log(format!("line {n}")), Ok(LogOutcome::Accepted));
        }
        let driver = std::thread::spawn(move || futures::executor::block_on(driver));
        assert!(start.wait().success);

        // The file grows, by flushes made while events are pending.
        wait_until(|| {
            under_load.load(Ordering::Relaxed) >= 2
                && std::fs::metadata(&path).map_or(0, |m| m.len()) > 0
        });

        assert!(sink.stop().wait().success);
        driver.join().expect("the driver completes");
        assert_eq!(counts(&sink), (400, 400, 0, 0));
        let expected: String = (0..400).map(|n| format!("line {n}\n")).collect();
        assert!(
            read(&path) == expected,
            "the file holds every line once, in order"
        );
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
