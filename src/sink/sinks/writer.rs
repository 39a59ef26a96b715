//! A sink that writes one line per event to stdout, stderr, a file, or any `Write`.

use std::fmt;
use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::error::BoxError;
use crate::sink::{
    BatchError, Describe, Dispatch, DisplayLines, LineFormat, LineFormatName, LossReport,
    SinkDescriptor,
};

/// Writes one line per event: the event's `Display` by default, or any [`LineFormat`], such
/// as [`JsonLines`](crate::sink::JsonLines) (see [`format`](Self::format)).
///
/// A [loss report](crate::sink::LossReport) is written as one more line, in the sink's
/// format ([`LineFormat::format_loss`]), such as
/// `mvx: 96 events dropped (queue full) since 2026-12-01T12:00:01.000Z`.
///
/// # Never on the driver's thread
///
/// Every blocking call — opening the file, each write, each flush, closing — runs on the
/// `blocking` crate's thread pool; the driver awaits it. A write that blocks (a full pipe
/// nobody reads, a stalled disk) therefore never blocks the sink's thread: the stop timeout
/// cuts it off, and a [`Terminator`](crate::rt::Terminator)'s deadline ends the sink
/// around it. The write itself cannot be interrupted: it goes on, on its pool thread, and
/// the writer is lost with it.
///
/// # Delivered means written
///
/// The lines of a batch are formatted into one buffer, which is written to the target
/// before the batch returns: an event counts as `delivered` once its whole line has been
/// written — handed to the target's `write` without error — and not before. A write
/// error counts the events whose lines it did not write completely as `failed` (the lines
/// before it are delivered), keeps the error in
/// [`last_error`](crate::sink::AsyncSink::last_error) as `DispatchFailed`, and delivery
/// goes on with the next batch. Nothing is buffered from one batch to the next.
///
/// A target that buffers on its own (a `BufWriter` given to [`writer`](Self::writer)) holds
/// delivered lines until it is flushed: when the queue runs empty, on
/// [`flush()`](crate::sink::AsyncSink::flush) and at stop, and under sustained load at least
/// every [`flush_interval`](Self::flush_interval). A failed flush is reported by the
/// `flush()` that asked for it, or at the next flush (as `FlushFailed`), or by the stop (as
/// `OnStoppedHookFailed`); the lines it could not push on were already counted delivered.
/// Stdout, stderr and files hold nothing back (stdout is line-buffered and gets whole
/// lines), so they are never flushed.
///
/// A file is opened (created, appended to) by the start hook, so a path that cannot be
/// opened fails the start with `OnStartingHookFailed`.
///
/// # Examples
///
/// ```
/// use mvx::sink::{Level, LogEvent, SinkConfig, sinks::WriterSink};
///
/// let dir = tempfile::tempdir()?;
/// let path = dir.path().join("app.log");
/// let (sink, terminator) = mvx::rt::thread::create(WriterSink::file(&path), SinkConfig::default())?;
/// sink.log(LogEvent::new(Level::Info, "app", "ready")).unwrap();
/// terminator.terminate()?;
/// assert!(std::fs::read_to_string(&path)?.ends_with("INFO app: ready\n"));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
///
/// JSON lines:
///
/// ```
/// use mvx::sink::{JsonLines, Level, LogEvent, SinkConfig, sinks::WriterSink};
///
/// let dir = tempfile::tempdir()?;
/// let path = dir.path().join("app.jsonl");
/// let writer = WriterSink::file(&path).format(JsonLines);
/// let (sink, terminator) = mvx::rt::thread::create(writer, SinkConfig::default())?;
/// sink.log(LogEvent::new(Level::Info, "app", "ready").with_field("port", 8080u16)).unwrap();
/// terminator.terminate()?;
/// let line: serde_json::Value = serde_json::from_str(std::fs::read_to_string(&path)?.trim_end())?;
/// assert_eq!((line["message"].as_str(), line["fields"]["port"].as_u64()), (Some("ready"), Some(8080)));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct WriterSink<F = DisplayLines> {
    target: Target,
    /// The writer and its buffers, while no call of it is in flight on the blocking pool.
    /// `None` before the start hook opens a target, and after a call was abandoned.
    output: Option<Output>,
    format: F,
    flush_interval: Duration,
    /// When the writer was last flushed, or opened.
    last_flush: Instant,
    /// Whether lines were written since the last successful flush.
    unflushed: bool,
    /// The error of a flush made under load (after a batch), for the next flush to report.
    flush_error: Option<io::Error>,
}

enum Target {
    Stdout,
    Stderr,
    File(PathBuf),
    Writer(String),
}

/// What travels to the blocking pool and back: the writer, and the batch being written.
struct Output {
    writer: Box<dyn Write + Send>,
    /// The lines of the batch, each followed by a line break; reused from batch to batch.
    text: String,
    /// Where each line of `text` ends (after its line break).
    line_ends: Vec<usize>,
}

/// What writing a batch out did.
struct Written {
    /// How many of its lines were written whole.
    lines: usize,
    /// Why the rest were not.
    error: Option<io::Error>,
    /// The result of the flush made after it, if one was due.
    flushed: Option<io::Result<()>>,
}

impl Output {
    fn new(writer: Box<dyn Write + Send>) -> Self {
        Self {
            writer,
            text: String::new(),
            line_ends: Vec::new(),
        }
    }

    /// Writes `text` out, counting the lines written whole; then flushes if `flush`.
    fn write_out(&mut self, flush: bool) -> Written {
        let bytes = self.text.as_bytes();
        let mut written = 0;
        let mut error = None;
        while written < bytes.len() {
            match self.writer.write(&bytes[written..]) {
                Ok(0) => {
                    error = Some(io::Error::from(io::ErrorKind::WriteZero));
                    break;
                }
                // A writer that claims more than it was given wrote what it was given.
                Ok(count) => written = (written + count).min(bytes.len()),
                Err(interrupted) if interrupted.kind() == io::ErrorKind::Interrupted => {}
                Err(failed) => {
                    error = Some(failed);
                    break;
                }
            }
        }
        let lines = self.line_ends.partition_point(|&end| end <= written);
        let flushed = (flush && error.is_none()).then(|| self.writer.flush());
        Written {
            lines,
            error,
            flushed,
        }
    }
}

/// The error of a dispatch after a write of the writer was abandoned.
fn writer_lost() -> io::Error {
    io::Error::other("the writer was lost with a write abandoned at a deadline")
}

impl WriterSink {
    /// How often a target that buffers on its own is flushed under sustained load, by
    /// default (see [`flush_interval`](Self::flush_interval)).
    pub const DEFAULT_FLUSH_INTERVAL: Duration = Duration::from_secs(1);

    /// Writes to standard output.
    pub fn stdout() -> Self {
        Self::with_target(Target::Stdout, None)
    }

    /// Writes to standard error.
    pub fn stderr() -> Self {
        Self::with_target(Target::Stderr, None)
    }

    /// Appends to the file at `path`, created if missing, opened when the sink starts.
    pub fn file(path: impl Into<PathBuf>) -> Self {
        Self::with_target(Target::File(path.into()), None)
    }

    /// Writes to `writer`; `name` identifies it in the sink's descriptor.
    ///
    /// Its `write` and `flush` are called on the blocking pool, one call at a time; each
    /// batch is one `write_all`-like series of `write` calls. A `writer` that buffers is
    /// flushed as [described above](WriterSink#delivered-means-written).
    pub fn writer(name: impl Into<String>, writer: impl Write + Send + 'static) -> Self {
        Self::with_target(Target::Writer(name.into()), Some(Box::new(writer)))
    }

    fn with_target(target: Target, writer: Option<Box<dyn Write + Send>>) -> Self {
        Self {
            target,
            output: writer.map(Output::new),
            format: DisplayLines,
            flush_interval: Self::DEFAULT_FLUSH_INTERVAL,
            last_flush: Instant::now(),
            unflushed: false,
            flush_error: None,
        }
    }
}

impl<F> WriterSink<F> {
    /// The same sink writing each event in `format`, such as
    /// [`JsonLines`](crate::sink::JsonLines).
    pub fn format<G>(mut self, format: G) -> WriterSink<G> {
        WriterSink {
            target: std::mem::replace(&mut self.target, Target::Stdout),
            output: self.output.take(),
            format,
            flush_interval: self.flush_interval,
            last_flush: self.last_flush,
            unflushed: self.unflushed,
            flush_error: self.flush_error.take(),
        }
    }

    /// The same sink, flushing a target that buffers on its own at least every `interval`
    /// under sustained load (after the first batch written once `interval` has passed since
    /// the last flush). Default [`WriterSink::DEFAULT_FLUSH_INTERVAL`]. Without load it is
    /// flushed whenever the queue runs empty. Stdout, stderr and files need no flush.
    pub fn flush_interval(mut self, interval: Duration) -> Self {
        self.flush_interval = interval;
        self
    }

    /// Whether the target may hold lines back until flushed: only a writer given to
    /// [`writer`](WriterSink::writer).
    fn buffers(&self) -> bool {
        matches!(self.target, Target::Writer(_))
    }

    /// Writes the lines in the output's `text` out on the blocking pool, flushing after
    /// them if a flush is due. Returns how many were written whole, or the error that
    /// stopped the rest.
    ///
    /// Every line the sink writes comes through here. (A loss report — a line saying what
    /// the sink dropped — is one more line in `text`, written the same way.)
    async fn write_lines(&mut self, mut output: Output) -> (usize, Option<io::Error>) {
        let flush = self.buffers() && self.last_flush.elapsed() >= self.flush_interval;
        let (output, written) = blocking::unblock(move || {
            let written = output.write_out(flush);
            (output, written)
        })
        .await;
        self.output = Some(output);
        if written.lines > 0 {
            self.unflushed = true;
        }
        if let Some(flushed) = written.flushed {
            self.last_flush = Instant::now();
            match flushed {
                Ok(()) => self.unflushed = false,
                Err(error) => self.flush_error = Some(error),
            }
        }
        (written.lines, written.error)
    }

    /// Flushes the target on the blocking pool if it may hold lines back; reports the
    /// error of a flush made under load since the last one, if any.
    async fn flush_target(&mut self) -> io::Result<()> {
        if let Some(error) = self.flush_error.take() {
            return Err(error);
        }
        if !(self.buffers() && self.unflushed) {
            return Ok(());
        }
        let Some(mut output) = self.output.take() else {
            return Err(writer_lost());
        };
        let (output, flushed) = blocking::unblock(move || {
            let flushed = output.writer.flush();
            (output, flushed)
        })
        .await;
        self.output = Some(output);
        self.last_flush = Instant::now();
        flushed?;
        self.unflushed = false;
        Ok(())
    }
}

fn open(target: &Target) -> io::Result<Box<dyn Write + Send>> {
    Ok(match target {
        Target::Stdout => Box::new(io::stdout()),
        Target::Stderr => Box::new(io::stderr()),
        Target::File(path) => Box::new(open_append(path)?),
        Target::Writer(_) => {
            return Err(io::Error::other(
                "the writer given to WriterSink::writer was lost with an abandoned write",
            ));
        }
    })
}

fn open_append(path: &Path) -> io::Result<File> {
    OpenOptions::new().create(true).append(true).open(path)
}

impl<E: Send + 'static, F: LineFormat<E>> Dispatch<E> for WriterSink<F> {
    /// One event is a batch of one: see [`dispatch_batch`](Self::dispatch_batch).
    async fn dispatch(&mut self, event: E) -> Result<(), BoxError> {
        let mut events = vec![event];
        self.dispatch_batch(&mut events)
            .await
            .map_err(|error| error.source)
    }

    /// Formats the batch into one buffer and writes it out (on the blocking pool) before
    /// returning: `Ok` when every line was written whole; otherwise a [`BatchError`]
    /// counting the lines not written whole as failed, with the write error.
    async fn dispatch_batch(&mut self, events: &mut Vec<E>) -> Result<(), BatchError> {
        let count = events.len();
        let Some(mut output) = self.output.take() else {
            events.clear();
            return Err(BatchError::new(count, writer_lost()));
        };
        output.text.clear();
        output.line_ends.clear();
        for event in events.drain(..) {
            self.format.format(&event, &mut output.text);
            output.text.push('\n');
            output.line_ends.push(output.text.len());
        }
        match self.write_lines(output).await {
            (_, None) => Ok(()),
            (lines, Some(error)) => Err(BatchError::new(count - lines, error)),
        }
    }

    /// Writes the report as one more line, in the sink's format
    /// ([`LineFormat::format_loss`]), the way the events' lines are written.
    async fn on_loss(&mut self, report: &LossReport) -> Result<(), BoxError> {
        let Some(mut output) = self.output.take() else {
            return Err(writer_lost().into());
        };
        output.text.clear();
        output.line_ends.clear();
        <F as LineFormat<E>>::format_loss(&self.format, report, &mut output.text);
        output.text.push('\n');
        output.line_ends.push(output.text.len());
        match self.write_lines(output).await {
            (_, None) => Ok(()),
            (_, Some(error)) => Err(error.into()),
        }
    }

    async fn on_starting(&mut self) -> Result<(), BoxError> {
        if self.output.is_none() {
            let target = match &self.target {
                Target::Stdout => Target::Stdout,
                Target::Stderr => Target::Stderr,
                Target::File(path) => Target::File(path.clone()),
                Target::Writer(name) => Target::Writer(name.clone()),
            };
            let writer = blocking::unblock(move || open(&target)).await?;
            self.output = Some(Output::new(writer));
        }
        self.last_flush = Instant::now();
        Ok(())
    }

    async fn flush(&mut self) -> Result<(), BoxError> {
        Ok(self.flush_target().await?)
    }

    /// Flushes a target that buffers, then closes the target (on the blocking pool).
    async fn on_stopped(&mut self) -> Result<(), BoxError> {
        let flushed = self.flush_target().await;
        if let Some(output) = self.output.take() {
            // Closing a file may block too.
            blocking::unblock(move || drop(output)).await;
        }
        Ok(flushed?)
    }
}

impl<F> Drop for WriterSink<F> {
    /// A writer still open (the sink failed, or was cancelled) is closed on the blocking
    /// pool: dropping it may flush, and block.
    fn drop(&mut self) {
        if let Some(output) = self.output.take() {
            blocking::unblock(move || drop(output)).detach();
        }
    }
}

impl<F: LineFormatName> Describe for WriterSink<F> {
    /// The resource is the target (`stdout`, `stderr`, `file` and its path, `writer` and its
    /// name); the configuration key names the format, unless it is the default
    /// [`DisplayLines`].
    fn describe(&self) -> SinkDescriptor {
        let mut descriptor = SinkDescriptor::new("writer");
        let format = self.format.name();
        if format != "display" {
            descriptor = descriptor.config(format!("format={format}"));
        }
        match &self.target {
            Target::Stdout => descriptor.resource("stdout"),
            Target::Stderr => descriptor.resource("stderr"),
            Target::File(path) => descriptor
                .resource("file")
                .resource(path.display().to_string()),
            Target::Writer(name) => descriptor.resource("writer").resource(name.clone()),
        }
    }
}

impl<F: LineFormatName> fmt::Debug for WriterSink<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WriterSink")
            .field("descriptor", &self.describe())
            .field("flush_interval", &self.flush_interval)
            .finish_non_exhaustive()
    }
}
