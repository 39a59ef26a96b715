//! Built-in sinks: a writer (stdout, stderr, a file, any `Write`), an in-memory sink, and
//! (feature `redis`) a Redis streams sink.

mod memory;
#[cfg(feature = "redis")]
mod redis;
mod writer;

pub use self::memory::{MemoryEvents, MemorySink};
#[cfg(feature = "redis")]
pub use self::redis::{
    DEFAULT_ACK_TTL, DEFAULT_DELIVERY_TIMEOUT, DEFAULT_REDIS_TIMEOUT, FieldMapping, MaxLen,
    RedisDeliveryStats, RedisSinkError, RedisSinkReason, RedisStreamSink,
};
pub use self::writer::WriterSink;
