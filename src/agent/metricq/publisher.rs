//! Points through an mvx sink: [`DataPoint`], the event, and [`ChunkPublisher`], the
//! dispatcher that turns each batch into one data chunk per metric and publishes them
//! through a [`Source`](super::Source), counting each point `delivered` once the broker
//! confirmed its chunk.

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;
use std::time::Instant;

use super::error::MetricqError;
use super::proto::ChunkBuilder;
use super::source::SourceHandle;
use super::time::Timestamp;
use crate::BoxError;
use crate::sink::{BatchError, Dispatch};

/// A data point on its way to the network: the metric (its name, shared so that a point is
/// cloned and queued without allocating), when, and the value.
#[derive(Clone, Debug, PartialEq)]
pub struct DataPoint {
    /// The metric's name: the routing key of its chunk.
    pub metric: Arc<str>,
    /// When the value was measured.
    pub timestamp: Timestamp,
    /// The value.
    pub value: f64,
}

impl DataPoint {
    /// A point of `metric`.
    pub fn new(metric: impl Into<Arc<str>>, timestamp: Timestamp, value: f64) -> Self {
        Self {
            metric: metric.into(),
            timestamp,
            value,
        }
    }
}

/// A metric name is a routing key: 1 to 255 bytes.
pub(crate) fn validate_metric(metric: &str) -> Result<(), MetricqError> {
    if metric.is_empty() || metric.len() > 255 {
        return Err(MetricqError::invalid_argument(format!(
            "a metric name is 1 to 255 bytes, not {}",
            metric.len()
        )));
    }
    Ok(())
}

/// A sink dispatcher ([`Dispatch<DataPoint>`]) that publishes points through a
/// [`Source`](super::Source): each batch the sink's driver hands over becomes one chunk per metric (points
/// in the order they were logged), all published, then all confirmations awaited.
///
/// A point is `delivered` when the broker confirmed its chunk; `failed` when its metric
/// name is empty or longer than 255 bytes, or its chunk was refused, not confirmed by the
/// delivery timeout, or lost with its connection before the confirmation (see the
/// [module docs](super) for the delivery semantics). Put it in an
/// [`AsyncSink`](crate::sink::AsyncSink) so that producers never wait for the network.
pub struct ChunkPublisher {
    source: SourceHandle,
    index: HashMap<Arc<str>, usize>,
    chunks: Vec<(Arc<str>, ChunkBuilder, usize)>,
    payloads: Vec<Vec<u8>>,
    results: Vec<Result<(), MetricqError>>,
}

impl fmt::Debug for ChunkPublisher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ChunkPublisher")
            .field("source", &self.source)
            .finish_non_exhaustive()
    }
}

impl ChunkPublisher {
    /// A publisher through `source`.
    pub fn new(source: SourceHandle) -> Self {
        Self {
            source,
            index: HashMap::new(),
            chunks: Vec::new(),
            payloads: Vec::new(),
            results: Vec::new(),
        }
    }
}

impl Dispatch<DataPoint> for ChunkPublisher {
    async fn dispatch(&mut self, point: DataPoint) -> Result<(), BoxError> {
        let mut batch = vec![point];
        self.dispatch_batch(&mut batch)
            .await
            .map_err(|error| error.source)
    }

    async fn dispatch_batch(&mut self, points: &mut Vec<DataPoint>) -> Result<(), BatchError> {
        self.index.clear();
        let mut used = 0;
        let mut invalid = 0;
        let mut last_error: Option<MetricqError> = None;
        for point in points.drain(..) {
            if let Err(error) = validate_metric(&point.metric) {
                invalid += 1;
                last_error = Some(error);
                continue;
            }
            let slot = match self.index.get(&point.metric) {
                Some(&slot) => slot,
                None => {
                    if used == self.chunks.len() {
                        self.chunks
                            .push((point.metric.clone(), ChunkBuilder::new(), 0));
                    } else {
                        self.chunks[used].0 = point.metric.clone();
                        self.chunks[used].1.clear();
                        self.chunks[used].2 = 0;
                    }
                    self.index.insert(point.metric.clone(), used);
                    used += 1;
                    used - 1
                }
            };
            let (_, chunk, count) = &mut self.chunks[slot];
            chunk.push(point.timestamp, point.value);
            *count += 1;
        }
        while self.payloads.len() < used {
            self.payloads.push(Vec::new());
        }
        for ((_, chunk, _), payload) in self.chunks[..used].iter_mut().zip(&mut self.payloads) {
            payload.clear();
            chunk.encode_and_clear(payload);
        }
        let deadline = Instant::now() + self.source.core.delivery_timeout();
        let chunks: Vec<(&str, &[u8])> = self.chunks[..used]
            .iter()
            .zip(&self.payloads)
            .map(|((metric, _, _), payload)| (&**metric, payload.as_slice()))
            .collect();
        self.source
            .core
            .publish_chunks(&chunks, deadline, &mut self.results)
            .await;
        let mut failed = invalid;
        for (result, (_, _, count)) in self.results.drain(..).zip(&self.chunks[..used]) {
            if let Err(error) = result {
                failed += count;
                last_error = Some(error);
            }
        }
        match last_error {
            Some(error) if failed > 0 => Err(BatchError::new(failed, error)),
            _ => Ok(()),
        }
    }
}
