//! Built-in sinks: a writer (stdout, stderr, a file, any `Write`), an in-memory sink, and
//! (feature `redis`) a Redis streams sink.

mod memory;
#[cfg(feature = "redis")]
mod redis;
// Its I/O runs on the `blocking` crate's pool, which the loom builds leave out.
#[cfg(not(loom))]
mod writer;

pub use self::memory::{MemoryEvents, MemorySink};
#[cfg(feature = "redis")]
pub use self::redis::{
    DEFAULT_ACK_TTL, DEFAULT_DELIVERY_TIMEOUT, DEFAULT_REDIS_TIMEOUT, FieldMapping, MaxLen,
    RedisDeliveryStats, RedisSinkError, RedisSinkReason, RedisStreamSink,
};
#[cfg(not(loom))]
pub use self::writer::WriterSink;
