//! A metricq source: registration, metric declarations, data chunks on the data exchange.

use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use event_listener::{Event, listener};
use futures::future::{Either, select};
use lapin::options::{BasicPublishOptions, ConfirmSelectOptions};
use lapin::publisher_confirm::{Confirmation, PublisherConfirm};
use lapin::{BasicProperties, Channel, ExchangeKind};
use serde_json::{Map, Value};

use super::client::ClientHandle;
use super::connection::{Link, Setup};
use super::error::MetricqError;
use super::lock;
use super::management::{Core, find_exchange};
use super::metadata::metadata_to_json;
use super::proto::ChunkBuilder;
use super::publisher::{ChunkPublisher, validate_metric};
use super::rpc::RpcRequest;
use super::time::Timestamp;
use crate::BoxError;
use crate::agent::{Agent, AgentHandle};
use crate::metrics::Metadata;

/// Where a source's chunks go.
struct DataTarget {
    link: Arc<Link>,
    exchange: String,
}

pub(crate) struct SourceCore {
    pub(crate) client: Arc<Core>,
    data: Mutex<Option<Arc<DataTarget>>>,
    /// Notified when the data target is set.
    data_set: Event,
    config: Mutex<Option<Value>>,
}

impl fmt::Debug for SourceCore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let data = lock(&self.data);
        f.debug_struct("Source")
            .field("client", &self.client)
            .field("exchange", &data.as_ref().map(|data| data.exchange.clone()))
            .field("data", &data.as_ref().map(|data| data.link.clone()))
            .finish()
    }
}

impl SourceCore {
    /// Management connection, `source.register`, data connection, the `config` handler.
    /// `Ok(false)` if a stop was requested meanwhile.
    pub(crate) async fn connect(&self, agent: &AgentHandle) -> Result<bool, MetricqError> {
        if !self.client.connect(agent).await? {
            return Ok(false);
        }
        let answer = self
            .client
            .rpc("source.register", Value::Null, None)
            .await?;
        let text = |key: &str| match answer.get(key) {
            Some(Value::String(text)) if !text.is_empty() => Ok(text.clone()),
            _ => Err(MetricqError::invalid_response(
                "source.register",
                format!("no `{key}` string"),
            )),
        };
        let address = text("dataServerAddress")?;
        let exchange = text("dataExchange")?;
        let url = self.client.config.derive_address(&address)?;
        let declared = exchange.clone();
        let setup: Setup = Arc::new(move |channel: Channel| {
            let exchange = declared.clone();
            Box::pin(async move {
                find_exchange(
                    &channel,
                    &exchange,
                    ExchangeKind::Topic,
                    "(the data exchange)",
                )
                .await?;
                channel
                    .confirm_select(ConfirmSelectOptions::default())
                    .await
                    .map_err(|error| MetricqError::amqp("turning publisher confirms on", error))
            })
        });
        let link = Link::new(
            "data",
            url,
            self.client.config.clone(),
            self.client.config.data_connection_timeout,
            setup,
        );
        *lock(&self.data) = Some(Arc::new(DataTarget {
            link: link.clone(),
            exchange,
        }));
        self.data_set.notify(usize::MAX);
        if !link.open(agent).await? {
            return Ok(false);
        }
        if let Some(config) = answer.get("config").cloned() {
            *lock(&self.config) = Some(config.clone());
            if self.client.handlers().contains("config") {
                let arguments = match config {
                    Value::Object(fields) => fields,
                    _ => Map::new(),
                };
                let request = RpcRequest {
                    function: "config".into(),
                    from_token: None,
                    arguments,
                };
                let answer = self.client.handlers().dispatch(request).await;
                if let Some(error) = answer.get("error") {
                    return Err(MetricqError::Rpc {
                        function: "config".into(),
                        message: error
                            .as_str()
                            .map_or_else(|| error.to_string(), str::to_owned),
                    });
                }
            }
        }
        Ok(true)
    }

    /// Closes the data connection, then the management connection.
    pub(crate) async fn teardown(&self) -> Result<(), MetricqError> {
        let data = lock(&self.data).clone();
        let data_closed = match data {
            Some(data) => data.link.close().await,
            None => Ok(()),
        };
        let management_closed = self.client.teardown().await;
        data_closed.and(management_closed)
    }

    async fn target(&self, deadline: Instant) -> Result<Arc<DataTarget>, MetricqError> {
        loop {
            if let Some(target) = lock(&self.data).clone() {
                return Ok(target);
            }
            listener!(self.data_set => set);
            if let Some(target) = lock(&self.data).clone() {
                return Ok(target);
            }
            let remaining = deadline.saturating_duration_since(Instant::now());
            if remaining.is_zero() {
                return Err(MetricqError::NotConnected { connection: "data" });
            }
            if let Either::Right(_) = select(set, async_io::Timer::after(remaining)).await {
                return Err(MetricqError::NotConnected { connection: "data" });
            }
        }
    }

    /// Publishes each `(metric, chunk)` and waits for the broker's confirmations, all by
    /// `deadline`; one result per chunk, in order.
    ///
    /// A chunk the channel refused (nothing was sent) waits for the next connection and is
    /// published again; a chunk sent whose confirmation is lost fails.
    pub(crate) async fn publish_chunks(
        &self,
        chunks: &[(&str, &[u8])],
        deadline: Instant,
        results: &mut Vec<Result<(), MetricqError>>,
    ) {
        results.clear();
        let target = match self.target(deadline).await {
            Ok(target) => target,
            Err(error) => {
                results.extend(chunks.iter().map(|_| Err(error.clone())));
                return;
            }
        };
        let mut confirms: Vec<Result<PublisherConfirm, MetricqError>> =
            Vec::with_capacity(chunks.len());
        let mut min_generation = 0;
        let properties = if self.client.config.persistent_data {
            BasicProperties::default().with_delivery_mode(2)
        } else {
            BasicProperties::default()
        };
        for (metric, payload) in chunks {
            let published = loop {
                let remaining = deadline.saturating_duration_since(Instant::now());
                let (channel, generation) =
                    match target.link.channel_from(min_generation, remaining).await {
                        Ok(found) => found,
                        Err(error) => break Err(error),
                    };
                match channel
                    .basic_publish(
                        &target.exchange,
                        metric,
                        BasicPublishOptions::default(),
                        payload,
                        properties.clone(),
                    )
                    .await
                {
                    Ok(confirm) => break Ok(confirm),
                    // Not sent: wait for the next connection.
                    Err(_) => min_generation = generation + 1,
                }
            };
            confirms.push(published);
        }
        for (confirm, (metric, _)) in confirms.into_iter().zip(chunks) {
            let failed = |detail: &str, source: Option<lapin::Error>| {
                Err(MetricqError::PublishFailed {
                    what: format!("a data chunk of {metric}"),
                    detail: detail.to_owned(),
                    source: source.map(Arc::new),
                })
            };
            let result = match confirm {
                Err(error) => Err(error),
                Ok(confirm) => {
                    let remaining = deadline.saturating_duration_since(Instant::now());
                    match select(confirm, async_io::Timer::after(remaining)).await {
                        Either::Left((Ok(Confirmation::Nack(_)), _)) => {
                            failed("the broker refused it (nack)", None)
                        }
                        Either::Left((Ok(_), _)) => Ok(()),
                        Either::Left((Err(error), _)) => failed(
                            "the connection was lost before the broker confirmed it",
                            Some(error),
                        ),
                        Either::Right(_) => failed("no confirmation by its deadline", None),
                    }
                }
            };
            results.push(result);
        }
    }

    pub(crate) fn delivery_timeout(&self) -> Duration {
        self.client.config.delivery_timeout
    }
}

/// A metricq source: registers with the manager (`source.register`), opens the data
/// connection it names, runs the `config` handler with the configuration it answers, and
/// publishes data chunks to the data exchange with the metric name as routing key.
///
/// Run it with an [`agent::Runner`](crate::agent::Runner); publish with its
/// [`SourceHandle`], or hand it to a [`RegistryBridge`](super::RegistryBridge) to publish a
/// registry at an interval.
#[derive(Debug)]
pub struct Source {
    pub(crate) core: Arc<SourceCore>,
}

impl Source {
    /// A source for `config`; nothing connects until it runs.
    pub fn new(config: super::MetricqConfig) -> Self {
        Self {
            core: Arc::new(SourceCore {
                client: Core::new(config),
                data: Mutex::new(None),
                data_set: Event::new(),
                config: Mutex::new(None),
            }),
        }
    }

    /// A handle to publish and to make RPCs, usable from any thread.
    pub fn handle(&self) -> SourceHandle {
        SourceHandle {
            core: self.core.clone(),
        }
    }
}

impl Agent for Source {
    async fn connect(&self, agent: &AgentHandle) -> Result<(), BoxError> {
        self.core.connect(agent).await?;
        Ok(())
    }

    async fn teardown(&self) -> Result<(), BoxError> {
        self.core.teardown().await?;
        Ok(())
    }
}

/// A cheap, cloneable handle on a [`Source`].
#[derive(Clone, Debug)]
pub struct SourceHandle {
    pub(crate) core: Arc<SourceCore>,
}

impl SourceHandle {
    /// The management side: RPCs, handlers (register `config` before the source runs to
    /// receive its configuration), `get_metrics`.
    pub fn client(&self) -> ClientHandle {
        ClientHandle {
            core: self.core.client.clone(),
        }
    }

    /// The configuration `source.register` answered, once registered.
    pub fn config(&self) -> Option<Value> {
        lock(&self.core.config).clone()
    }

    /// Waits until the source is registered and its data connection is up: `true`, or
    /// `false` if that does not happen within the connect timeout.
    pub async fn ready(&self) -> bool {
        let timeout = self.core.client.config.connect_timeout;
        let deadline = Instant::now() + timeout;
        match self.core.target(deadline).await {
            Ok(target) => target
                .link
                .channel(deadline.saturating_duration_since(Instant::now()))
                .await
                .is_ok(),
            Err(_) => false,
        }
    }

    /// Declares `metrics` with their metadata (`source.declare_metrics`): a source declares
    /// a metric before it publishes it.
    ///
    /// # Errors
    ///
    /// As [`ClientHandle::rpc`].
    pub async fn declare_metrics<N: Into<String>>(
        &self,
        metrics: impl IntoIterator<Item = (N, Metadata)>,
    ) -> Result<(), MetricqError> {
        let metrics: Map<String, Value> = metrics
            .into_iter()
            .map(|(name, metadata)| (name.into(), metadata_to_json(&metadata)))
            .collect();
        let mut arguments = Map::new();
        arguments.insert("metrics".into(), Value::Object(metrics));
        self.core
            .client
            .rpc("source.declare_metrics", Value::Object(arguments), None)
            .await
            .map(drop)
    }

    /// Publishes one point of `metric` as a chunk of its own and waits for the broker's
    /// confirmation, up to the delivery timeout. For many points, use a
    /// [`ChunkPublisher`] (through an mvx sink) or [`send_chunk`](Self::send_chunk).
    ///
    /// # Errors
    ///
    /// - [`MetricqError::InvalidArgument`]: `metric` is empty or longer than 255 bytes;
    /// - [`MetricqError::NotConnected`]: no data connection by the deadline;
    /// - [`MetricqError::PublishFailed`]: refused (`nack`), or the connection was lost
    ///   before the confirmation.
    pub async fn send(
        &self,
        metric: &str,
        timestamp: Timestamp,
        value: f64,
    ) -> Result<(), MetricqError> {
        let mut chunk = ChunkBuilder::new();
        chunk.push(timestamp, value);
        self.send_chunk(metric, &mut chunk).await
    }

    /// Publishes the points of `chunk` as one chunk of `metric` (and empties it), waiting
    /// for the confirmation up to the delivery timeout.
    ///
    /// # Errors
    ///
    /// As [`send`](Self::send).
    pub async fn send_chunk(
        &self,
        metric: &str,
        chunk: &mut ChunkBuilder,
    ) -> Result<(), MetricqError> {
        validate_metric(metric)?;
        let mut payload = Vec::new();
        chunk.encode_and_clear(&mut payload);
        let deadline = Instant::now() + self.core.delivery_timeout();
        let mut results = Vec::with_capacity(1);
        self.core
            .publish_chunks(&[(metric, &payload)], deadline, &mut results)
            .await;
        results.pop().unwrap_or(Ok(()))
    }

    /// A sink dispatcher that publishes [`DataPoint`](super::DataPoint)s through this source.
    pub fn publisher(&self) -> ChunkPublisher {
        ChunkPublisher::new(self.clone())
    }
}
