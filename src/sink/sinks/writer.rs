//! A sink that writes one line per event to stdout, stderr, a file, or any `Write`.

use std::fmt;
use std::fs::{File, OpenOptions};
use std::io::{self, BufWriter, Write};
use std::path::PathBuf;

use crate::error::BoxError;
use crate::sink::{
    Describe, Dispatch, DisplayLines, LineFormat, LineFormatName, LossReport, SinkDescriptor,
};

/// Writes one line per event, through a buffer: the event's `Display` by default, or any
/// [`LineFormat`], such as [`JsonLines`](crate::sink::JsonLines) (see [`format`](Self::format)).
///
/// A [loss report](crate::sink::LossReport) is written as one more line, in the sink's
/// format ([`LineFormat::format_loss`]), such as
/// `mvx: 96 events dropped (queue full) since 2026-12-01T12:00:01.000Z`.
///
/// The buffer is flushed when the queue runs empty, on [`flush()`](crate::sink::AsyncSink::flush)
/// and on stop; a file is opened (created, appended to) by the start hook, so a path that
/// cannot be opened fails the start with `OnStartingHookFailed`. Writes are blocking I/O:
/// run a writer sink on its own thread ([`crate::rt::thread::create`]) or accept that the
/// executor thread waits for the disk.
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
    writer: Option<BufWriter<Box<dyn Write + Send>>>,
    format: F,
    /// The line being written, reused from event to event.
    line: String,
}

enum Target {
    Stdout,
    Stderr,
    File(PathBuf),
    Writer(String),
}

impl WriterSink {
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
    pub fn writer(name: impl Into<String>, writer: impl Write + Send + 'static) -> Self {
        let writer: Box<dyn Write + Send> = Box::new(writer);
        Self::with_target(Target::Writer(name.into()), Some(BufWriter::new(writer)))
    }

    fn with_target(target: Target, writer: Option<BufWriter<Box<dyn Write + Send>>>) -> Self {
        Self {
            target,
            writer,
            format: DisplayLines,
            line: String::new(),
        }
    }
}

impl<F> WriterSink<F> {
    /// The same sink writing each event in `format`, such as
    /// [`JsonLines`](crate::sink::JsonLines).
    pub fn format<G>(self, format: G) -> WriterSink<G> {
        WriterSink {
            target: self.target,
            writer: self.writer,
            format,
            line: self.line,
        }
    }

    fn open(&mut self) -> io::Result<&mut BufWriter<Box<dyn Write + Send>>> {
        if self.writer.is_none() {
            let writer: Box<dyn Write + Send> = match &self.target {
                Target::Stdout => Box::new(io::stdout()),
                Target::Stderr => Box::new(io::stderr()),
                Target::File(path) => Box::new(open_append(path)?),
                Target::Writer(_) => unreachable!("a writer target is given its writer"),
            };
            self.writer = Some(BufWriter::new(writer));
        }
        Ok(self.writer.as_mut().expect("opened above"))
    }
}

fn open_append(path: &PathBuf) -> io::Result<File> {
    OpenOptions::new().create(true).append(true).open(path)
}

impl<E: Send + 'static, F: LineFormat<E>> Dispatch<E> for WriterSink<F> {
    async fn dispatch(&mut self, event: E) -> Result<(), BoxError> {
        let mut line = std::mem::take(&mut self.line);
        line.clear();
        self.format.format(&event, &mut line);
        line.push('\n');
        let written = self
            .open()
            .and_then(|writer| writer.write_all(line.as_bytes()));
        self.line = line;
        written?;
        Ok(())
    }

    async fn on_starting(&mut self) -> Result<(), BoxError> {
        self.open()?;
        Ok(())
    }

    async fn flush(&mut self) -> Result<(), BoxError> {
        if let Some(writer) = self.writer.as_mut() {
            writer.flush()?;
        }
        Ok(())
    }

    async fn on_stopped(&mut self) -> Result<(), BoxError> {
        if let Some(mut writer) = self.writer.take() {
            writer.flush()?;
        }
        Ok(())
    }

    async fn on_loss(&mut self, report: &LossReport) -> Result<(), BoxError> {
        self.write_loss_line::<E>(report)?;
        Ok(())
    }
}

/// Loss reports: one line each, among the events.
impl<F> WriterSink<F> {
    /// Writes `report` as one line in the sink's format (`mvx: 96 events dropped (queue
    /// full) since …` with [`DisplayLines`]), through the same buffer as the events.
    fn write_loss_line<E>(&mut self, report: &LossReport) -> io::Result<()>
    where
        F: LineFormat<E>,
    {
        let mut line = std::mem::take(&mut self.line);
        line.clear();
        <F as LineFormat<E>>::format_loss(&self.format, report, &mut line);
        line.push('\n');
        let written = self
            .open()
            .and_then(|writer| writer.write_all(line.as_bytes()));
        self.line = line;
        written
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
            .finish_non_exhaustive()
    }
}
