//! Request ids, error kinds, and what a recording call hands to the statistics driver.

use std::borrow::Cow;
use std::fmt;
use std::sync::Arc;
use std::time::Instant;

/// Identifies a request from its start to its end.
///
/// A numeric id costs nothing to record: no allocation, no lock. A string key (a URL, a
/// unique key) is kept behind an `Arc<str>`: converting a `&str` or a `String` allocates
/// once, at the conversion; an `Arc<str>` you already hold is shared.
///
/// # Examples
///
/// ```
/// use std::sync::Arc;
/// use mvx::stats::RequestId;
///
/// assert_eq!(RequestId::from(7u64), RequestId::Number(7));
/// let key: Arc<str> = Arc::from("https://example.com/");
/// assert_eq!(RequestId::from(key.clone()), RequestId::Key(key));
/// assert_eq!(RequestId::from("a").to_string(), "a");
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum RequestId {
    /// A numeric id.
    Number(u64),
    /// A string key.
    Key(Arc<str>),
}

impl From<u64> for RequestId {
    fn from(id: u64) -> Self {
        Self::Number(id)
    }
}

impl From<u32> for RequestId {
    fn from(id: u32) -> Self {
        Self::Number(id.into())
    }
}

impl From<usize> for RequestId {
    fn from(id: usize) -> Self {
        Self::Number(id as u64)
    }
}

impl From<Arc<str>> for RequestId {
    fn from(key: Arc<str>) -> Self {
        Self::Key(key)
    }
}

impl From<&Arc<str>> for RequestId {
    fn from(key: &Arc<str>) -> Self {
        Self::Key(key.clone())
    }
}

impl From<&str> for RequestId {
    /// Allocates the `Arc<str>`.
    fn from(key: &str) -> Self {
        Self::Key(Arc::from(key))
    }
}

impl From<String> for RequestId {
    /// Moves the text into an `Arc<str>` (one allocation).
    fn from(key: String) -> Self {
        Self::Key(Arc::from(key))
    }
}

impl fmt::Display for RequestId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Number(id) => write!(f, "{id}"),
            Self::Key(key) => f.write_str(key),
        }
    }
}

/// The kind of an error, as counted in [`StatisticsState::errors`] and
/// [`StatisticsState::retry_errors`]: a `&'static str` costs nothing to record, a `String`
/// is moved.
///
/// [`StatisticsState::errors`]: super::StatisticsState::errors
/// [`StatisticsState::retry_errors`]: super::StatisticsState::retry_errors
pub type ErrorKind = Cow<'static, str>;

/// One recording call, as queued for the driver. Timestamps are taken by the caller.
#[derive(Debug)]
pub(crate) enum StatsEvent {
    /// A request started; a start of a request already in progress is a retry.
    Start { id: RequestId, at: Instant },
    /// A request in progress is retried.
    Retry { id: RequestId, at: Instant },
    /// A request finished successfully.
    Finish { id: RequestId, at: Instant },
    /// A request failed for good.
    Failure { id: RequestId, at: Instant },
    /// A response came back with this status code.
    StatusCode(u16),
    /// An error of this kind ended a request (`retry: false`) or caused a retry.
    Error { kind: ErrorKind, retry: bool },
}
