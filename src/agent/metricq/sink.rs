//! A metricq sink: subscriptions, the data queue, points handed to user code.

use std::collections::BTreeSet;
use std::fmt;
use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};

use futures::StreamExt;
use lapin::Channel;
use lapin::options::{
    BasicAckOptions, BasicConsumeOptions, BasicNackOptions, BasicQosOptions, QueueDeclareOptions,
};
use lapin::types::FieldTable;
use serde_json::{Map, Value};

use super::client::ClientHandle;
use super::config::MetricqConfig;
use super::connection::{Link, Setup};
use super::error::MetricqError;
use super::lock;
use super::management::Core;
use super::proto::decode_chunk;
use super::time::Timestamp;
use crate::BoxError;
use crate::agent::{Agent, AgentHandle};

/// How many unacknowledged messages the broker sends a sink at most (the Python client's
/// prefetch count).
const PREFETCH: u16 = 400;

/// User code that takes the points a [`Sink`] receives.
///
/// Called for each point, in the order of its chunk, one point at a time (never
/// concurrently). A chunk is acknowledged once every one of its points was taken (`Ok`);
/// an `Err` (or a panic) stops the chunk there: the chunk is returned to the queue once to
/// be delivered again, and dropped the second time (counted in
/// [`SinkStats::chunks_rejected`]). A chunk delivered again is handed over from its first
/// point.
///
/// Any `Fn(&str, Timestamp, f64) -> Result<(), BoxError>` closure is a handler.
pub trait DataHandler: Send + Sync + 'static {
    /// Takes one point of `metric`.
    ///
    /// # Errors
    ///
    /// Any error: the chunk is not acknowledged (see the trait docs).
    fn on_data(
        &self,
        metric: &str,
        timestamp: Timestamp,
        value: f64,
    ) -> impl Future<Output = Result<(), BoxError>> + Send;
}

impl<F> DataHandler for F
where
    F: Fn(&str, Timestamp, f64) -> Result<(), BoxError> + Send + Sync + 'static,
{
    fn on_data(
        &self,
        metric: &str,
        timestamp: Timestamp,
        value: f64,
    ) -> impl Future<Output = Result<(), BoxError>> + Send {
        std::future::ready(self(metric, timestamp, value))
    }
}

/// Counters of a sink's data traffic.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct SinkStats {
    /// Chunks acknowledged: every point handed over.
    pub chunks_acked: u64,
    /// Points the handler took.
    pub points: u64,
    /// Chunks the handler failed on, returned to the queue to be delivered again.
    pub chunks_requeued: u64,
    /// Chunks dropped: not decodable, or failed again after being delivered again.
    pub chunks_rejected: u64,
    /// `end` messages (a subscription ended by the manager).
    pub end_messages: u64,
    /// Times the data queue was subscribed again after its connection came back.
    pub resubscriptions: u64,
}

#[derive(Default)]
struct Counters {
    chunks_acked: AtomicU64,
    points: AtomicU64,
    chunks_requeued: AtomicU64,
    chunks_rejected: AtomicU64,
    end_messages: AtomicU64,
    resubscriptions: AtomicU64,
}

struct SinkCore<H> {
    client: Arc<Core>,
    handler: H,
    initial: Vec<String>,
    subscribed: Mutex<BTreeSet<String>>,
    queue: Mutex<Option<String>>,
    data: Mutex<Option<Arc<Link>>>,
    /// Serializes subscriptions.
    subscribing: futures::lock::Mutex<()>,
    counters: Counters,
}

impl<H> fmt::Debug for SinkCore<H> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Sink")
            .field("client", &self.client)
            .field("queue", &*lock(&self.queue))
            .field("subscribed", &lock(&self.subscribed).len())
            .finish_non_exhaustive()
    }
}

impl<H: DataHandler> SinkCore<H> {
    fn stats(&self) -> SinkStats {
        let read = |counter: &AtomicU64| counter.load(Ordering::Relaxed);
        SinkStats {
            chunks_acked: read(&self.counters.chunks_acked),
            points: read(&self.counters.points),
            chunks_requeued: read(&self.counters.chunks_requeued),
            chunks_rejected: read(&self.counters.chunks_rejected),
            end_messages: read(&self.counters.end_messages),
            resubscriptions: read(&self.counters.resubscriptions),
        }
    }

    /// `sink.subscribe` for `metrics`, reusing the data queue once there is one; opens the
    /// data connection on the first subscription.
    async fn subscribe(
        self: &Arc<Self>,
        metrics: Vec<String>,
        agent: Option<&AgentHandle>,
    ) -> Result<Map<String, Value>, MetricqError> {
        let _one_at_a_time = self.subscribing.lock().await;
        let queue = lock(&self.queue).clone();
        let answer = self.subscribe_rpc(&metrics, queue.as_deref()).await?;
        lock(&self.subscribed).extend(metrics);
        let data_queue = match answer.get("dataQueue") {
            Some(Value::String(name)) if !name.is_empty() => name.clone(),
            _ => {
                return Err(MetricqError::invalid_response(
                    "sink.subscribe",
                    "no `dataQueue` string",
                ));
            }
        };
        if lock(&self.data).is_some() {
            return Ok(answer);
        }
        let address = match answer.get("dataServerAddress") {
            Some(Value::String(address)) if !address.is_empty() => address.clone(),
            _ => {
                return Err(MetricqError::invalid_response(
                    "sink.subscribe",
                    "no `dataServerAddress` string",
                ));
            }
        };
        let agent = match agent.cloned().or_else(|| self.client.agent()) {
            Some(agent) => agent,
            None => return Err(MetricqError::NotConnected { connection: "data" }),
        };
        *lock(&self.queue) = Some(data_queue);
        let url = self.client.config.derive_address(&address)?;
        let weak = Arc::downgrade(self);
        let spawner = agent.clone();
        let setup: Setup = Arc::new(move |channel: Channel| {
            let core = weak.clone();
            let agent = spawner.clone();
            Box::pin(async move {
                match core.upgrade() {
                    Some(core) => {
                        core.setup_data(channel, &agent, Arc::downgrade(&core))
                            .await
                    }
                    None => Err(MetricqError::Stopped),
                }
            })
        });
        let link = Link::new(
            "data",
            url,
            self.client.config.clone(),
            self.client.config.data_connection_timeout,
            setup,
        );
        *lock(&self.data) = Some(link.clone());
        link.open(&agent).await?;
        Ok(answer)
    }

    async fn subscribe_rpc(
        &self,
        metrics: &[String],
        queue: Option<&str>,
    ) -> Result<Map<String, Value>, MetricqError> {
        let mut arguments = Map::new();
        arguments.insert(
            "metrics".into(),
            Value::Array(metrics.iter().cloned().map(Value::String).collect()),
        );
        if let Some(queue) = queue {
            arguments.insert("dataQueue".into(), Value::String(queue.to_owned()));
        }
        arguments.insert("metadata".into(), Value::Bool(false));
        self.client
            .rpc("sink.subscribe", Value::Object(arguments), None)
            .await
    }

    /// On each data connection: after a reconnect, subscribe again (the data queue is not
    /// durable: a restarted broker has lost it and the manager declares it anew); then the
    /// queue is declared passively and consumed.
    async fn setup_data(
        &self,
        channel: Channel,
        agent: &AgentHandle,
        core: Weak<Self>,
    ) -> Result<(), MetricqError> {
        let Some(queue) = lock(&self.queue).clone() else {
            return Err(MetricqError::NotConnected { connection: "data" });
        };
        let reconnect = lock(&self.data)
            .as_ref()
            .is_some_and(|link| link.generation() > 0);
        if reconnect {
            let metrics: Vec<String> = lock(&self.subscribed).iter().cloned().collect();
            self.subscribe_rpc(&metrics, Some(&queue)).await?;
            self.counters
                .resubscriptions
                .fetch_add(1, Ordering::Relaxed);
        }
        channel
            .queue_declare(
                &queue,
                QueueDeclareOptions {
                    passive: true,
                    ..QueueDeclareOptions::default()
                },
                FieldTable::default(),
            )
            .await
            .map_err(|error| MetricqError::amqp(format!("finding data queue {queue}"), error))?;
        channel
            .basic_qos(PREFETCH, BasicQosOptions::default())
            .await
            .map_err(|error| MetricqError::amqp("setting the prefetch count", error))?;
        let mut consumer = channel
            .basic_consume(
                &queue,
                "mvx-sink",
                BasicConsumeOptions::default(),
                FieldTable::default(),
            )
            .await
            .map_err(|error| MetricqError::amqp(format!("consuming data queue {queue}"), error))?;
        agent.spawn(async move {
            while let Some(Ok(delivery)) = consumer.next().await {
                let Some(core) = core.upgrade() else { break };
                core.on_data_message(delivery).await;
            }
            Ok(())
        });
        Ok(())
    }

    async fn on_data_message(&self, delivery: lapin::message::Delivery) {
        let counters = &self.counters;
        if delivery
            .properties
            .kind()
            .as_ref()
            .is_some_and(|kind| kind.as_str() == "end")
        {
            counters.end_messages.fetch_add(1, Ordering::Relaxed);
            let _ = delivery.acker.ack(BasicAckOptions::default()).await;
            return;
        }
        let points = match decode_chunk(&delivery.data) {
            Ok(points) => points,
            Err(_) => {
                counters.chunks_rejected.fetch_add(1, Ordering::Relaxed);
                let _ = delivery.acker.reject(Default::default()).await;
                return;
            }
        };
        let metric = delivery.routing_key.as_str();
        for (timestamp, value) in points {
            let taken =
                std::panic::AssertUnwindSafe(self.handler.on_data(metric, timestamp, value));
            let taken = futures::FutureExt::catch_unwind(taken).await;
            if !matches!(taken, Ok(Ok(()))) {
                let requeue = !delivery.redelivered;
                let counter = if requeue {
                    &counters.chunks_requeued
                } else {
                    &counters.chunks_rejected
                };
                counter.fetch_add(1, Ordering::Relaxed);
                let _ = delivery
                    .acker
                    .nack(BasicNackOptions {
                        requeue,
                        ..BasicNackOptions::default()
                    })
                    .await;
                return;
            }
            counters.points.fetch_add(1, Ordering::Relaxed);
        }
        if delivery.acker.ack(BasicAckOptions::default()).await.is_ok() {
            counters.chunks_acked.fetch_add(1, Ordering::Relaxed);
        }
    }

    async fn teardown(&self) -> Result<(), MetricqError> {
        let data = lock(&self.data).clone();
        let data_closed = match data {
            Some(link) => link.close().await,
            None => Ok(()),
        };
        data_closed.and(self.client.teardown().await)
    }
}

/// A metricq sink: subscribes to metrics (`sink.subscribe`), consumes its data queue,
/// decodes each chunk and hands every point to a [`DataHandler`], acknowledging the chunk
/// once the handler took all of its points — so nothing acknowledged is lost, and a chunk
/// the sink did not finish is delivered again (after a reconnect too: at least once).
///
/// After its data connection comes back, the sink subscribes again with its data queue
/// and every metric it subscribed to, as the Python `Sink` does (a restarted broker has
/// lost the queue; the manager declares and binds it anew). Run it with an
/// [`agent::Runner`](crate::agent::Runner); its token should start with `sink-` (the
/// manager warns otherwise), and [`MetricqConfig::add_uuid`] makes it unique.
pub struct Sink<H> {
    core: Arc<SinkCore<H>>,
}

impl<H> fmt::Debug for Sink<H> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&*self.core, f)
    }
}

impl<H: DataHandler> Sink<H> {
    /// A sink for `config` that subscribes to `metrics` when it connects (none: subscribe
    /// later with [`SinkHandle::subscribe`]) and hands their points to `handler`.
    pub fn new(
        config: MetricqConfig,
        metrics: impl IntoIterator<Item = impl Into<String>>,
        handler: H,
    ) -> Self {
        Self {
            core: Arc::new(SinkCore {
                client: Core::new(config),
                handler,
                initial: metrics.into_iter().map(Into::into).collect(),
                subscribed: Mutex::new(BTreeSet::new()),
                queue: Mutex::new(None),
                data: Mutex::new(None),
                subscribing: futures::lock::Mutex::new(()),
                counters: Counters::default(),
            }),
        }
    }

    /// A handle to subscribe, read the counters and make RPCs, from any thread.
    pub fn handle(&self) -> SinkHandle {
        let core = self.core.clone();
        let subscribe_core = self.core.clone();
        let stats_core = self.core.clone();
        SinkHandle {
            client: ClientHandle {
                core: core.client.clone(),
            },
            subscribe: Arc::new(move |metrics| {
                let core = subscribe_core.clone();
                Box::pin(async move { core.subscribe(metrics, None).await })
            }),
            stats: Arc::new(move || stats_core.stats()),
            queue: Arc::new(move || lock(&core.queue).clone()),
        }
    }
}

impl<H: DataHandler> Agent for Sink<H> {
    async fn connect(&self, agent: &AgentHandle) -> Result<(), BoxError> {
        if !self.core.client.connect(agent).await? {
            return Ok(());
        }
        if !self.core.initial.is_empty() {
            self.core
                .subscribe(self.core.initial.clone(), Some(agent))
                .await?;
        }
        Ok(())
    }

    async fn teardown(&self) -> Result<(), BoxError> {
        self.core.teardown().await?;
        Ok(())
    }
}

type SubscribeFn = Arc<
    dyn Fn(
            Vec<String>,
        ) -> std::pin::Pin<
            Box<dyn Future<Output = Result<Map<String, Value>, MetricqError>> + Send>,
        > + Send
        + Sync,
>;

/// A cheap, cloneable handle on a [`Sink`].
#[derive(Clone)]
pub struct SinkHandle {
    client: ClientHandle,
    subscribe: SubscribeFn,
    stats: Arc<dyn Fn() -> SinkStats + Send + Sync>,
    queue: Arc<dyn Fn() -> Option<String> + Send + Sync>,
}

impl fmt::Debug for SinkHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SinkHandle")
            .field("client", &self.client)
            .field("queue", &(self.queue)())
            .field("stats", &(self.stats)())
            .finish()
    }
}

impl SinkHandle {
    /// The management side: RPCs, handlers, `get_metrics`.
    pub fn client(&self) -> &ClientHandle {
        &self.client
    }

    /// Subscribes to `metrics` (`sink.subscribe`), on the sink's data queue once it has
    /// one; the manager's answer (`dataServerAddress`, `dataQueue`, `metrics`).
    ///
    /// # Errors
    ///
    /// As [`ClientHandle::rpc`]; [`MetricqError::InvalidResponse`] for an answer without
    /// `dataQueue`/`dataServerAddress`; the data connection's errors on the first
    /// subscription.
    pub async fn subscribe(
        &self,
        metrics: impl IntoIterator<Item = impl Into<String>>,
    ) -> Result<Map<String, Value>, MetricqError> {
        (self.subscribe)(metrics.into_iter().map(Into::into).collect()).await
    }

    /// The data queue, once subscribed.
    pub fn data_queue(&self) -> Option<String> {
        (self.queue)()
    }

    /// Counters of the data traffic.
    pub fn stats(&self) -> SinkStats {
        (self.stats)()
    }
}
