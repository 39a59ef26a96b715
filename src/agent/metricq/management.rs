//! The management side every client has: its connection, its RPC queue, RPCs out (with
//! their waiters, by correlation id) and in (answered by the client's [`RpcHandlers`]).
//! [`Client`](super::Client), [`Source`](super::Source) and [`Sink`](super::Sink) each hold
//! one [`Core`].

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

use event_listener::{Event, listener};
use futures::StreamExt;
use futures::channel::oneshot;
use futures::future::{Either, select};
use lapin::options::{
    BasicConsumeOptions, BasicPublishOptions, ExchangeDeclareOptions, QueueBindOptions,
    QueueDeclareOptions,
};
use lapin::types::FieldTable;
use lapin::{BasicProperties, Channel, ExchangeKind};
use serde_json::{Map, Value, json};

use super::client::ClientStats;
use super::config::{MetricqConfig, random_hex};
use super::connection::{Link, Setup};
use super::error::MetricqError;
use super::metadata::{get_metrics_arguments, parse_get_metrics};
use super::rpc::{Incoming, RpcHandlers, RpcRequest, classify};
use super::time::Timestamp;
use super::{BROADCAST_EXCHANGE, MANAGEMENT_EXCHANGE, lock};
use crate::agent::{AgentHandle, Selector};
use crate::metrics::Metadata;

type Waiters = HashMap<String, oneshot::Sender<Map<String, Value>>>;

#[derive(Default)]
struct Counters {
    rpcs_sent: AtomicU64,
    rpcs_answered: AtomicU64,
    unexpected_answers: AtomicU64,
    invalid_messages: AtomicU64,
    answers_failed: AtomicU64,
}

/// What a client, a source and a sink share: the management connection and the RPCs.
pub(crate) struct Core {
    pub(crate) config: Arc<MetricqConfig>,
    handlers: RpcHandlers,
    waiters: Mutex<Waiters>,
    link: Mutex<Option<Arc<Link>>>,
    agent: Mutex<Option<AgentHandle>>,
    /// Notified when the management link is created.
    link_set: Event,
    started: Timestamp,
    counters: Counters,
}

impl Core {
    pub(crate) fn new(config: MetricqConfig) -> Arc<Self> {
        let handlers = RpcHandlers::new();
        let started = Timestamp::now();
        handlers.register("discover", move |_request| async move {
            Ok(discover_answer(started))
        });
        Arc::new(Self {
            config: Arc::new(config),
            handlers,
            waiters: Mutex::new(HashMap::new()),
            link: Mutex::new(None),
            agent: Mutex::new(None),
            link_set: Event::new(),
            started,
            counters: Counters::default(),
        })
    }

    pub(crate) fn handlers(&self) -> &RpcHandlers {
        &self.handlers
    }

    pub(crate) fn token(&self) -> &str {
        self.config.token()
    }

    pub(crate) fn agent(&self) -> Option<AgentHandle> {
        lock(&self.agent).clone()
    }

    fn rpc_queue(&self) -> String {
        format!("{}-rpc", self.token())
    }

    pub(crate) fn stats(&self) -> ClientStats {
        let read = |counter: &AtomicU64| counter.load(Ordering::Relaxed);
        ClientStats {
            rpcs_sent: read(&self.counters.rpcs_sent),
            rpcs_answered: read(&self.counters.rpcs_answered),
            unexpected_answers: read(&self.counters.unexpected_answers),
            invalid_messages: read(&self.counters.invalid_messages),
            answers_failed: read(&self.counters.answers_failed),
        }
    }

    /// Opens the management connection: the RPC queue `<token>-rpc` (exclusive), bound to
    /// `metricq.broadcast` with `#`, consumed; the exchanges `metricq.management` and
    /// `metricq.broadcast` must exist (declared passively, as the Python client does).
    /// `Ok(false)` if a stop was requested meanwhile.
    pub(crate) async fn connect(
        self: &Arc<Self>,
        agent: &AgentHandle,
    ) -> Result<bool, MetricqError> {
        *lock(&self.agent) = Some(agent.clone());
        let weak = Arc::downgrade(self);
        let handle = agent.clone();
        let setup: Setup = Arc::new(move |channel: Channel| {
            let core = weak.clone();
            let agent = handle.clone();
            Box::pin(async move {
                match core.upgrade() {
                    Some(core) => {
                        core.setup_management(channel, &agent, Arc::downgrade(&core))
                            .await
                    }
                    None => Err(MetricqError::Stopped),
                }
            })
        });
        let link = Link::new(
            "management",
            self.config.url().clone(),
            self.config.clone(),
            self.config.management_connection_timeout,
            setup,
        );
        *lock(&self.link) = Some(link.clone());
        self.link_set.notify(usize::MAX);
        link.open(agent).await
    }

    async fn setup_management(
        &self,
        channel: Channel,
        agent: &AgentHandle,
        core: Weak<Self>,
    ) -> Result<(), MetricqError> {
        let queue = self.rpc_queue();
        channel
            .queue_declare(
                &queue,
                QueueDeclareOptions {
                    exclusive: true,
                    ..QueueDeclareOptions::default()
                },
                FieldTable::default(),
            )
            .await
            .map_err(|error| MetricqError::amqp(format!("declaring queue {queue}"), error))?;
        for (exchange, kind) in [
            (BROADCAST_EXCHANGE, ExchangeKind::Fanout),
            (MANAGEMENT_EXCHANGE, ExchangeKind::Topic),
        ] {
            find_exchange(&channel, exchange, kind, "(is a manager running?)").await?;
        }
        channel
            .queue_bind(
                &queue,
                BROADCAST_EXCHANGE,
                "#",
                QueueBindOptions::default(),
                FieldTable::default(),
            )
            .await
            .map_err(|error| MetricqError::amqp(format!("binding queue {queue}"), error))?;
        let mut consumer = channel
            .basic_consume(
                &queue,
                "mvx-rpc",
                BasicConsumeOptions {
                    no_ack: true,
                    ..BasicConsumeOptions::default()
                },
                FieldTable::default(),
            )
            .await
            .map_err(|error| MetricqError::amqp(format!("consuming queue {queue}"), error))?;
        let spawner = agent.clone();
        agent.spawn(async move {
            while let Some(Ok(delivery)) = consumer.next().await {
                let Some(core) = core.upgrade() else { break };
                core.on_management_message(delivery, &channel, &spawner);
            }
            Ok(())
        });
        Ok(())
    }

    /// An RPC request is answered from a task of its own (a handler may itself make RPCs,
    /// whose answers arrive on this queue); an answer goes to its waiter.
    fn on_management_message(
        self: &Arc<Self>,
        delivery: lapin::message::Delivery,
        channel: &Channel,
        agent: &AgentHandle,
    ) {
        let properties = &delivery.properties;
        let from_token = properties.app_id().as_ref().map(|id| id.to_string());
        match classify(&delivery.data, from_token) {
            None => {
                self.counters
                    .invalid_messages
                    .fetch_add(1, Ordering::Relaxed);
            }
            Some(Incoming::Request(request)) => {
                let Some(reply_to) = properties.reply_to().as_ref().map(|q| q.to_string()) else {
                    self.counters
                        .invalid_messages
                        .fetch_add(1, Ordering::Relaxed);
                    return;
                };
                let correlation_id = properties.correlation_id().clone();
                let core = self.clone();
                let channel = channel.clone();
                agent.spawn(async move {
                    core.answer(request, reply_to, correlation_id, &channel)
                        .await;
                    Ok(())
                });
            }
            Some(Incoming::Answer(answer)) => {
                let waiter = properties
                    .correlation_id()
                    .as_ref()
                    .and_then(|id| lock(&self.waiters).remove(id.as_str()));
                let delivered = waiter.is_some_and(|waiter| waiter.send(answer).is_ok());
                if !delivered {
                    self.counters
                        .unexpected_answers
                        .fetch_add(1, Ordering::Relaxed);
                }
            }
        }
    }

    async fn answer(
        &self,
        request: RpcRequest,
        reply_to: String,
        correlation_id: Option<lapin::types::ShortString>,
        channel: &Channel,
    ) {
        let answer = self.handlers.dispatch(request).await;
        self.counters.rpcs_answered.fetch_add(1, Ordering::Relaxed);
        let body = answer.to_string().into_bytes();
        let mut properties = BasicProperties::default()
            .with_content_type("application/json".into())
            .with_app_id(self.token().into());
        if let Some(id) = correlation_id {
            properties = properties.with_correlation_id(id);
        }
        let published = channel
            .basic_publish(
                "",
                &reply_to,
                BasicPublishOptions::default(),
                &body,
                properties,
            )
            .await;
        if published.is_err() {
            self.counters.answers_failed.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Waits until the management connection is up, up to the connect timeout: whether it
    /// came up.
    pub(crate) async fn connected(&self) -> bool {
        let deadline = Instant::now() + self.config.connect_timeout;
        loop {
            if let Ok(link) = self.management() {
                let remaining = deadline.saturating_duration_since(Instant::now());
                return link.channel(remaining).await.is_ok();
            }
            listener!(self.link_set => set);
            if self.management().is_ok() {
                continue;
            }
            let remaining = deadline.saturating_duration_since(Instant::now());
            if remaining.is_zero() {
                return false;
            }
            if let Either::Right(_) = select(set, async_io::Timer::after(remaining)).await {
                return false;
            }
        }
    }

    pub(crate) fn management(&self) -> Result<Arc<Link>, MetricqError> {
        lock(&self.link).clone().ok_or(MetricqError::NotConnected {
            connection: "management",
        })
    }

    /// Invokes `function` on the management exchange with routing key `function` and waits
    /// for the answer: metricq's `Client.rpc`.
    pub(crate) async fn rpc(
        &self,
        function: &str,
        arguments: Value,
        timeout: Option<Duration>,
    ) -> Result<Map<String, Value>, MetricqError> {
        self.rpc_to(MANAGEMENT_EXCHANGE, function, function, arguments, timeout)
            .await
    }

    /// Invokes `function` with `routing_key` on `exchange` (`""` for a queue by name) and
    /// waits for the first answer.
    pub(crate) async fn rpc_to(
        &self,
        exchange: &str,
        routing_key: &str,
        function: &str,
        arguments: Value,
        timeout: Option<Duration>,
    ) -> Result<Map<String, Value>, MetricqError> {
        let timeout = timeout.unwrap_or(self.config.rpc_timeout);
        let mut body = match arguments {
            Value::Object(fields) => fields,
            Value::Null => Map::new(),
            other => {
                return Err(MetricqError::invalid_argument(format!(
                    "the arguments of RPC {function} are {other}, not a JSON object"
                )));
            }
        };
        if function.is_empty() {
            return Err(MetricqError::invalid_argument(
                "an RPC needs a function name",
            ));
        }
        if routing_key.len() > 255 {
            return Err(MetricqError::invalid_argument(format!(
                "routing key of {} bytes: at most 255",
                routing_key.len()
            )));
        }
        body.insert("function".into(), Value::String(function.to_owned()));
        let body = Value::Object(body).to_string().into_bytes();
        let deadline = Instant::now() + timeout;
        let link = self.management()?;
        let correlation_id = format!("mvx-rpc-{}-{}", self.token(), random_hex());
        let (sender, receiver) = oneshot::channel();
        lock(&self.waiters).insert(correlation_id.clone(), sender);
        let forget = || {
            lock(&self.waiters).remove(&correlation_id);
        };
        let channel = match link.channel(timeout).await {
            Ok(channel) => channel,
            Err(error) => {
                forget();
                return Err(error);
            }
        };
        let properties = BasicProperties::default()
            .with_content_type("application/json".into())
            .with_correlation_id(correlation_id.as_str().into())
            .with_app_id(self.token().into())
            .with_reply_to(self.rpc_queue().into());
        let published = channel
            .basic_publish(
                exchange,
                routing_key,
                BasicPublishOptions::default(),
                &body,
                properties,
            )
            .await;
        if let Err(source) = published {
            forget();
            return Err(MetricqError::PublishFailed {
                what: format!("RPC {function}"),
                detail: "the management channel refused it".into(),
                source: Some(Arc::new(source)),
            });
        }
        self.counters.rpcs_sent.fetch_add(1, Ordering::Relaxed);
        let remaining = deadline.saturating_duration_since(Instant::now());
        let answer = match select(receiver, async_io::Timer::after(remaining)).await {
            Either::Left((Ok(answer), _)) => answer,
            Either::Left((Err(_), _)) => return Err(MetricqError::Stopped),
            Either::Right(_) => {
                forget();
                return Err(MetricqError::RpcTimedOut {
                    function: function.to_owned(),
                    timeout,
                });
            }
        };
        match answer.get("error") {
            None | Some(Value::Null) => Ok(answer),
            Some(Value::String(message)) => Err(MetricqError::Rpc {
                function: function.to_owned(),
                message: message.clone(),
            }),
            Some(other) => Err(MetricqError::Rpc {
                function: function.to_owned(),
                message: other.to_string(),
            }),
        }
    }

    /// Closes the management connection; every RPC still waiting fails with `Stopped`.
    pub(crate) async fn teardown(&self) -> Result<(), MetricqError> {
        let link = lock(&self.link).clone();
        lock(&self.waiters).clear();
        match link {
            Some(link) => link.close().await,
            None => Ok(()),
        }
    }

    pub(crate) async fn get_metrics(
        &self,
        selector: &Selector,
        timeout: Option<Duration>,
    ) -> Result<BTreeMap<String, Metadata>, MetricqError> {
        let (arguments, with_metadata) = get_metrics_arguments(selector)?;
        let answer = self.rpc("get_metrics", arguments, timeout).await?;
        parse_get_metrics(answer, with_metadata)
    }
}

impl fmt::Debug for Core {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Core")
            .field("token", &self.token())
            .field("url", &self.config.redacted_url())
            .field("link", &*lock(&self.link))
            .field("started", &self.started)
            .finish_non_exhaustive()
    }
}

/// The answer to `discover`: the fields the Python client sends that mean something here.
fn discover_answer(started: Timestamp) -> Value {
    let now = Timestamp::now();
    let mut answer = json!({
        "alive": true,
        "currentTime": now.to_string(),
        "startingTime": started.to_string(),
        "uptime": now.as_nanos().saturating_sub(started.as_nanos()),
        "metricqVersion": concat!("mvx/", env!("CARGO_PKG_VERSION")),
    });
    if let Ok(hostname) = std::fs::read_to_string("/proc/sys/kernel/hostname") {
        answer["hostname"] = Value::String(hostname.trim().to_owned());
    }
    answer
}

/// Checks that `exchange` exists (a passive declaration: the manager declares the network's
/// exchanges, a client only uses them); the error names it, followed by `hint`.
pub(crate) async fn find_exchange(
    channel: &Channel,
    exchange: &str,
    kind: ExchangeKind,
    hint: &str,
) -> Result<(), MetricqError> {
    channel
        .exchange_declare(
            exchange,
            kind,
            ExchangeDeclareOptions {
                passive: true,
                ..ExchangeDeclareOptions::default()
            },
            FieldTable::default(),
        )
        .await
        .map_err(|error| MetricqError::amqp(format!("finding exchange {exchange} {hint}"), error))
}
