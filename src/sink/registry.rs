//! Sink identity: descriptors, and a registry that creates each sink once.
//!
//! A [`SinkDescriptor`] says which backend resource a sink writes to (`resource_key`: a
//! Redis URL and stream, a file path) and with which delivery options (`config_key`).
//! [`SinkRegistry::configure`] uses it to make configuration idempotent: configuring the
//! same resource with the same options returns the sink already running; configuring it
//! with other options is a [`SinkError::DescriptorConflict`], reported before anything is
//! created.

use std::fmt;

use crate::error::{CreateError, SinkError, TerminateError};
use crate::rt::Terminator;
use crate::sink::{AsyncSink, SinkConfig};
use crate::sync::{Mutex, lock};

/// What a sink delivers to, and how.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct SinkDescriptor {
    /// The kind of sink, such as `"writer"` or `"redis"`.
    pub sink_type: String,
    /// The backend resource: two sinks with the same resource key share it.
    pub resource_key: Vec<String>,
    /// The delivery options that must agree for two configurations to be the same sink.
    pub config_key: Vec<String>,
}

impl SinkDescriptor {
    /// A descriptor of `sink_type` with empty keys.
    pub fn new(sink_type: impl Into<String>) -> Self {
        Self {
            sink_type: sink_type.into(),
            resource_key: Vec::new(),
            config_key: Vec::new(),
        }
    }

    /// Appends a part to the resource key.
    pub fn resource(mut self, part: impl Into<String>) -> Self {
        self.resource_key.push(part.into());
        self
    }

    /// Appends a part to the configuration key.
    pub fn config(mut self, part: impl Into<String>) -> Self {
        self.config_key.push(part.into());
        self
    }

    fn resource_id(&self) -> (&str, &[String]) {
        (&self.sink_type, &self.resource_key)
    }
}

/// Describes the sink a dispatcher makes, before it is created.
pub trait Describe {
    /// The descriptor of this dispatcher's sink.
    fn describe(&self) -> SinkDescriptor;
}

/// Creates each sink once per resource and owns their runtimes.
///
/// # Examples
///
/// ```
/// use mvx::sink::{SinkConfig, SinkRegistry, sinks::WriterSink};
/// use mvx::sink::LogEvent;
///
/// let registry = SinkRegistry::<LogEvent>::new();
/// let first = registry.configure(WriterSink::stderr(), SinkConfig::default())?;
/// // Same resource, same configuration: the same sink.
/// let again = registry.configure(WriterSink::stderr(), SinkConfig::default())?;
/// assert!(first.same_sink(&again));
/// // Same resource, another configuration: a conflict, and nothing is created.
/// let conflict = registry.configure(WriterSink::stderr(), SinkConfig::default().queue_capacity(8));
/// assert!(conflict.is_err());
/// registry.shutdown()?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct SinkRegistry<E> {
    entries: Mutex<Vec<Entry<E>>>,
}

struct Entry<E> {
    descriptor: SinkDescriptor,
    config: SinkConfig,
    sink: AsyncSink<E>,
    terminator: Terminator,
}

impl<E: Send + 'static> SinkRegistry<E> {
    /// An empty registry.
    pub fn new() -> Self {
        Self {
            entries: Mutex::new(Vec::new()),
        }
    }

    /// Returns the sink for `dispatch`'s resource, creating it on a dedicated thread
    /// ([`crate::rt::thread::create`]) if there is none.
    ///
    /// # Errors
    ///
    /// [`SinkError::DescriptorConflict`] (inside [`CreateError::Sink`]) when the resource
    /// is registered with another configuration key or [`SinkConfig`]; any creation error.
    #[cfg(feature = "thread")]
    pub fn configure<D>(&self, dispatch: D, config: SinkConfig) -> Result<AsyncSink<E>, CreateError>
    where
        D: crate::sink::Dispatch<E> + Describe,
    {
        let descriptor = dispatch.describe();
        self.configure_with(descriptor, config, |config| {
            crate::rt::thread::create(dispatch, config)
        })
    }

    /// Returns the sink registered for `descriptor`'s resource, or creates one with
    /// `create`, which is called only when the resource is new.
    ///
    /// # Errors
    ///
    /// As [`configure`](Self::configure), with `create`'s error.
    pub fn configure_with<F>(
        &self,
        descriptor: SinkDescriptor,
        config: SinkConfig,
        create: F,
    ) -> Result<AsyncSink<E>, CreateError>
    where
        F: FnOnce(SinkConfig) -> Result<(AsyncSink<E>, Terminator), CreateError>,
    {
        // The lock is held across creation so two configurations of one resource cannot
        // both create it.
        let mut entries = lock(&self.entries);
        if let Some(entry) = entries
            .iter()
            .find(|entry| entry.descriptor.resource_id() == descriptor.resource_id())
        {
            if entry.descriptor.config_key == descriptor.config_key && entry.config == config {
                return Ok(entry.sink.clone());
            }
            return Err(SinkError::DescriptorConflict {
                resource: descriptor.resource_key.clone(),
                existing: describe_config(&entry.descriptor, &entry.config),
                requested: describe_config(&descriptor, &config),
            }
            .into());
        }
        let (sink, terminator) = create(config.clone())?;
        entries.push(Entry {
            descriptor,
            config,
            sink: sink.clone(),
            terminator,
        });
        Ok(sink)
    }

    /// The descriptors of the registered sinks, in registration order.
    pub fn descriptors(&self) -> Vec<SinkDescriptor> {
        lock(&self.entries)
            .iter()
            .map(|entry| entry.descriptor.clone())
            .collect()
    }

    /// Terminates every registered sink and empties the registry.
    ///
    /// # Errors
    ///
    /// The first termination error; every sink is terminated regardless.
    pub fn shutdown(&self) -> Result<(), TerminateError> {
        let entries = std::mem::take(&mut *lock(&self.entries));
        let mut first_error = None;
        for entry in entries {
            if let Err(error) = entry.terminator.terminate() {
                first_error.get_or_insert(error);
            }
        }
        first_error.map_or(Ok(()), Err)
    }
}

fn describe_config(descriptor: &SinkDescriptor, config: &SinkConfig) -> Vec<String> {
    let mut key = descriptor.config_key.clone();
    key.push(format!("{config:?}"));
    key
}

impl<E: Send + 'static> Default for SinkRegistry<E> {
    fn default() -> Self {
        Self::new()
    }
}

impl<E> fmt::Debug for SinkRegistry<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let descriptors: Vec<_> = lock(&self.entries)
            .iter()
            .map(|entry| entry.descriptor.clone())
            .collect();
        f.debug_struct("SinkRegistry")
            .field("sinks", &descriptors)
            .finish()
    }
}
