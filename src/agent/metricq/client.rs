//! The management side every client has: its connection, its RPC queue, RPCs out and in.

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError, Weak};
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

use super::config::{MetricqConfig, random_hex};
use super::connection::{Link, Setup};
use super::error::MetricqError;
use super::rpc::{Incoming, RpcHandlers, RpcRequest, classify};
use super::time::Timestamp;
use super::{BROADCAST_EXCHANGE, MANAGEMENT_EXCHANGE};
use crate::BoxError;
use crate::agent::{Agent, AgentHandle, Selector};
use crate::metrics::Metadata;

type Waiters = HashMap<String, oneshot::Sender<Map<String, Value>>>;

/// Counters of a client's management traffic.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ClientStats {
    /// RPCs this client sent.
    pub rpcs_sent: u64,
    /// RPCs this client received and answered (with a result or an error).
    pub rpcs_answered: u64,
    /// Answers to RPCs received after their caller stopped waiting (timed out), or with an
    /// unknown correlation id.
    pub unexpected_answers: u64,
    /// Messages on the RPC queue that were not JSON objects, or requests without
    /// `reply_to`: dropped.
    pub invalid_messages: u64,
    /// Answers to received RPCs that could not be published.
    pub answers_failed: u64,
}

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
                .map_err(|error| {
                    MetricqError::amqp(
                        format!("finding exchange {exchange} (is a manager running?)"),
                        error,
                    )
                })?;
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
        let (arguments, with_metadata) = get_metrics_arguments(selector);
        let Some(arguments) = arguments else {
            return Ok(BTreeMap::new());
        };
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

pub(crate) fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
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

/// The arguments of `get_metrics` for `selector` (`None` for a selector that selects
/// nothing: an empty list of names), and whether metadata is wanted.
///
/// The selector's filters are read from its query string (`Display`), which holds each of
/// them: `selector` (a regular expression) or repeated `name`s, `prefix`, `infix`, `limit`,
/// `hidden`, `historic`, `metadata`.
fn get_metrics_arguments(selector: &Selector) -> (Option<Value>, bool) {
    let query = selector.to_string();
    let mut arguments = Map::new();
    let mut names = Vec::new();
    let mut with_metadata = true;
    for (key, value) in form_urlencoded::parse(query.as_bytes()) {
        let flag = || Value::Bool(value == "true");
        match &*key {
            "selector" => {
                arguments.insert("selector".into(), Value::String(value.to_string()));
            }
            "name" => names.push(Value::String(value.to_string())),
            "prefix" | "infix" => {
                arguments.insert(key.to_string(), Value::String(value.to_string()));
            }
            "limit" => {
                if let Ok(limit) = value.parse::<u64>() {
                    arguments.insert("limit".into(), Value::from(limit));
                }
            }
            "hidden" | "historic" => {
                arguments.insert(key.to_string(), flag());
            }
            "metadata" => with_metadata = value == "true",
            _ => {}
        }
    }
    if let Some(list) = selector.get_names() {
        if list.is_empty() {
            return (None, with_metadata);
        }
        arguments.insert("selector".into(), Value::Array(names));
    }
    arguments.insert(
        "format".into(),
        Value::String(if with_metadata { "object" } else { "array" }.into()),
    );
    (Some(Value::Object(arguments)), with_metadata)
}

/// Reads the `metrics` of a `get_metrics` answer: an object of metadata by name
/// (`format: object`) or an array of names (`format: array`).
fn parse_get_metrics(
    mut answer: Map<String, Value>,
    with_metadata: bool,
) -> Result<BTreeMap<String, Metadata>, MetricqError> {
    let invalid = |detail: &str| MetricqError::invalid_response("get_metrics", detail);
    match answer.remove("metrics") {
        Some(Value::Object(metrics)) => metrics
            .into_iter()
            .map(|(name, metadata)| match metadata {
                Value::Object(fields) => Ok((
                    name,
                    if with_metadata {
                        metadata_from_json(fields)
                    } else {
                        Metadata::new()
                    },
                )),
                _ => Err(invalid("the metadata of a metric is not an object")),
            })
            .collect(),
        Some(Value::Array(names)) => names
            .into_iter()
            .map(|name| match name {
                Value::String(name) => Ok((name, Metadata::new())),
                _ => Err(invalid("a metric name is not a string")),
            })
            .collect(),
        _ => Err(invalid("no `metrics` object or array")),
    }
}

/// mvx [`Metadata`] from metricq's metadata object: `unit` and `description` (strings),
/// `rate` (a finite number above zero), `hidden` and `historic` (booleans) become the typed
/// fields; every other key becomes a free-form field, a string as it is and any other value
/// as its JSON text. Keys starting with `_` (the database's `_id`, `_rev`) are left out, and
/// so is a typed key whose value has another type.
pub(crate) fn metadata_from_json(fields: Map<String, Value>) -> Metadata {
    let mut metadata = Metadata::new();
    for (key, value) in fields {
        if key.starts_with('_') {
            continue;
        }
        metadata = match (key.as_str(), value) {
            ("unit", Value::String(unit)) => metadata.unit(unit),
            ("description", Value::String(text)) => metadata.description(text),
            ("rate", Value::Number(rate)) => match rate.as_f64() {
                Some(rate) => metadata.clone().rate(rate).unwrap_or(metadata),
                None => metadata,
            },
            ("hidden", Value::Bool(flag)) => metadata.hidden(flag),
            ("historic", Value::Bool(flag)) => metadata.historic(flag),
            ("unit" | "description" | "rate" | "hidden" | "historic", _) => metadata,
            (_, Value::String(text)) => metadata.clone().field(key, text).unwrap_or(metadata),
            (_, other) => metadata
                .clone()
                .field(key, other.to_string())
                .unwrap_or(metadata),
        };
    }
    metadata
}

/// metricq's metadata object for `metadata`, as `source.declare_metrics` sends it: the
/// typed fields and the free-form ones; `historic` is left out (the manager sets it from
/// the databases and ignores a source's).
pub(crate) fn metadata_to_json(metadata: &Metadata) -> Value {
    let mut value = serde_json::to_value(metadata).unwrap_or_else(|_| json!({}));
    if let Value::Object(fields) = &mut value {
        fields.remove("historic");
    }
    value
}

/// A metricq client: the management connection with its RPC queue, RPCs to the manager
/// and to other agents, and the RPCs it answers. Run it with an
/// [`agent::Runner`](crate::agent::Runner); [`Source`](super::Source) and [`Sink`](super::Sink) are clients
/// with a data connection besides.
///
/// # Examples
///
/// ```no_run
/// use mvx::agent::{AgentConfig, Runner, Selector};
/// use mvx::agent::metricq::{Client, MetricqConfig};
///
/// let client = Client::new(MetricqConfig::new("amqp://127.0.0.1/", "client-example")?);
/// let handle = client.handle();
/// let runner = Runner::new(client, AgentConfig::default().catch_signals([]));
/// let stopper = runner.handle();
/// std::thread::spawn(move || {
///     async_io::block_on(async {
///         // Wait until connected, then ask the manager.
///         if handle.connected().await {
///             println!("{:?}", handle.get_metrics(&Selector::all()).await);
///         }
///     });
///     stopper.stop(None, false);
/// });
/// runner.run()?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug)]
pub struct Client {
    core: Arc<Core>,
}

impl Client {
    /// A client for `config`; nothing connects until it runs.
    pub fn new(config: MetricqConfig) -> Self {
        Self {
            core: Core::new(config),
        }
    }

    /// A handle for RPCs and handlers, usable from any thread while the client runs.
    pub fn handle(&self) -> ClientHandle {
        ClientHandle {
            core: self.core.clone(),
        }
    }
}

impl Agent for Client {
    async fn connect(&self, agent: &AgentHandle) -> Result<(), BoxError> {
        self.core.connect(agent).await?;
        Ok(())
    }

    async fn teardown(&self) -> Result<(), BoxError> {
        self.core.teardown().await?;
        Ok(())
    }
}

/// A cheap, cloneable handle on a running client (or source, or sink): RPCs out, handlers
/// for RPCs in.
#[derive(Clone, Debug)]
pub struct ClientHandle {
    pub(crate) core: Arc<Core>,
}

impl ClientHandle {
    /// The client's token.
    pub fn token(&self) -> &str {
        self.core.token()
    }

    /// The RPCs this client answers. `discover` is answered from the start (with `alive`,
    /// `currentTime`, `startingTime`, `uptime` in nanoseconds, `metricqVersion` and
    /// `hostname`); register more, or replace it.
    pub fn handlers(&self) -> &RpcHandlers {
        self.core.handlers()
    }

    /// Invokes the RPC `function` on the management exchange (routing key `function`, so
    /// the manager answers it) with `arguments` (a JSON object, or `null` for none), and
    /// waits up to the configured RPC timeout for the answer. Argument names are
    /// `camelCase`, as metricq's are.
    ///
    /// # Errors
    ///
    /// - [`MetricqError::InvalidArgument`]: `arguments` is not an object, `function` is
    ///   empty or longer than 255 bytes;
    /// - [`MetricqError::NotConnected`]: the management connection is not up (and did not
    ///   come back within the timeout);
    /// - [`MetricqError::PublishFailed`]: the request could not be published;
    /// - [`MetricqError::Rpc`]: the remote answered with an `error`;
    /// - [`MetricqError::RpcTimedOut`]: no answer within the timeout;
    /// - [`MetricqError::Stopped`]: the client stopped while waiting.
    pub async fn rpc(
        &self,
        function: &str,
        arguments: Value,
    ) -> Result<Map<String, Value>, MetricqError> {
        self.core.rpc(function, arguments, None).await
    }

    /// [`rpc`](Self::rpc) with its own timeout.
    ///
    /// # Errors
    ///
    /// As [`rpc`](Self::rpc).
    pub async fn rpc_with_timeout(
        &self,
        function: &str,
        arguments: Value,
        timeout: Duration,
    ) -> Result<Map<String, Value>, MetricqError> {
        self.core.rpc(function, arguments, Some(timeout)).await
    }

    /// Invokes `function` on the agent whose token is `token`, through its RPC queue
    /// (`<token>-rpc` on the default exchange), as the manager calls a client.
    ///
    /// # Errors
    ///
    /// As [`rpc`](Self::rpc).
    pub async fn rpc_agent(
        &self,
        token: &str,
        function: &str,
        arguments: Value,
    ) -> Result<Map<String, Value>, MetricqError> {
        self.core
            .rpc_to("", &format!("{token}-rpc"), function, arguments, None)
            .await
    }

    /// The metrics the manager knows that `selector` selects, with their metadata (unless
    /// the selector's `metadata` is `false`): the same answer, in the same types, as
    /// [`Registry::get_metrics`](crate::metrics::Registry::get_metrics) gives locally.
    ///
    /// The selector is sent as metricq's `get_metrics` arguments — `selector` (the regular
    /// expression, or the list of names), `prefix`, `infix`, `limit`, `hidden`,
    /// `historic`, `format` (`object` with metadata, `array` without) — and the manager
    /// applies it (its semantics are the manager's: it refuses `prefix` with a `selector`,
    /// for one). An empty list of names selects nothing without asking. The metadata is
    /// read as [`Metadata`]: see the [module docs](super) for how metricq's free-form
    /// values map.
    ///
    /// # Errors
    ///
    /// As [`rpc`](Self::rpc), and [`MetricqError::InvalidResponse`] for an answer without
    /// `metrics`.
    pub async fn get_metrics(
        &self,
        selector: &Selector,
    ) -> Result<BTreeMap<String, Metadata>, MetricqError> {
        self.core.get_metrics(selector, None).await
    }

    /// Waits until the management connection is up: `true` once it is (at once if it
    /// is), `false` if it is not up within the connect timeout (the client is not running,
    /// failed to connect, or stopped).
    pub async fn connected(&self) -> bool {
        let deadline = Instant::now() + self.core.config.connect_timeout;
        loop {
            if let Ok(link) = self.core.management() {
                let remaining = deadline.saturating_duration_since(Instant::now());
                return link.channel(remaining).await.is_ok();
            }
            listener!(self.core.link_set => set);
            if self.core.management().is_ok() {
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

    /// Counters of the management traffic.
    pub fn stats(&self) -> ClientStats {
        self.core.stats()
    }

    /// Whether the management connection is up now.
    pub fn is_connected(&self) -> bool {
        self.core.management().is_ok_and(|link| link.is_up())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn selectors_become_get_metrics_arguments() {
        let (arguments, metadata) =
            get_metrics_arguments(&Selector::regex("^cpu").unwrap().hidden(false).limit(3));
        assert!(metadata);
        assert_eq!(
            arguments.unwrap(),
            json!({"selector": "^cpu", "hidden": false, "limit": 3, "format": "object"})
        );
        let (arguments, metadata) = get_metrics_arguments(
            &Selector::names(["b", "a"])
                .metadata(false)
                .historic(true)
                .prefix("x"),
        );
        assert!(!metadata);
        assert_eq!(
            arguments.unwrap(),
            json!({"selector": ["a", "b"], "historic": true, "prefix": "x", "format": "array"})
        );
        assert_eq!(
            get_metrics_arguments(&Selector::all()).0.unwrap(),
            json!({"format": "object"})
        );
        assert!(
            get_metrics_arguments(&Selector::names(Vec::<String>::new()))
                .0
                .is_none()
        );
    }

    #[test]
    fn metricq_metadata_becomes_mvx_metadata() {
        let Value::Object(fields) = json!({
            "_id": "cpu.load", "_rev": "1-x", "unit": "%", "description": "load",
            "rate": 10, "hidden": true, "historic": true, "source": "source-x",
            "chunkSize": 1, "scope": {"a": 1}, "bad_rate": "x",
        }) else {
            unreachable!()
        };
        let metadata = metadata_from_json(fields);
        let expected = Metadata::new()
            .unit("%")
            .description("load")
            .rate(10.0)
            .unwrap()
            .hidden(true)
            .historic(true)
            .field("source", "source-x")
            .unwrap()
            .field("chunkSize", "1")
            .unwrap()
            .field("scope", r#"{"a":1}"#)
            .unwrap()
            .field("bad_rate", "x")
            .unwrap();
        assert_eq!(metadata, expected);
        let Value::Object(odd) = json!({"rate": -1, "unit": 3}) else {
            unreachable!()
        };
        assert_eq!(metadata_from_json(odd), Metadata::new());
        assert_eq!(
            metadata_to_json(&Metadata::new().unit("s").historic(true)),
            json!({"unit": "s"})
        );
    }

    #[test]
    fn answers_parse_or_are_refused() {
        let object = json!({"metrics": {"a": {"unit": "s"}, "b": {}}});
        let Value::Object(object) = object else {
            unreachable!()
        };
        let parsed = parse_get_metrics(object, true).unwrap();
        assert_eq!(parsed["a"], Metadata::new().unit("s"));
        assert_eq!(parsed["b"], Metadata::new());
        let Value::Object(array) = json!({"metrics": ["x", "y"]}) else {
            unreachable!()
        };
        assert_eq!(
            parse_get_metrics(array, false)
                .unwrap()
                .keys()
                .collect::<Vec<_>>(),
            ["x", "y"]
        );
        for bad in [json!({}), json!({"metrics": 3}), json!({"metrics": [1]})] {
            let Value::Object(bad) = bad else {
                unreachable!()
            };
            assert_eq!(
                parse_get_metrics(bad, true).unwrap_err().reason(),
                super::super::MetricqReason::InvalidResponse
            );
        }
    }
}
