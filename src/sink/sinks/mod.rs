//! Built-in sinks: a writer (stdout, stderr, a file, any `Write`) and an in-memory sink.

mod memory;
mod writer;

pub use self::memory::{MemoryEvents, MemorySink};
pub use self::writer::WriterSink;
