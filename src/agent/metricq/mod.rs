//! A MetricQ client (feature `metricq`): mvx agents on a MetricQ network over RabbitMQ.
//!
//! [MetricQ](https://metricq.github.io/) moves metric data through RabbitMQ: *sources*
//! publish data chunks to a data exchange, *sinks* consume them from queues a *manager*
//! binds for them, and every client talks to the manager with JSON RPCs over AMQP. This
//! module makes mvx a client of such a network:
//!
//! - [`Client`]: the management connection every client has — its RPC queue, [`rpc`]
//!   calls to the manager or to another agent, [`RpcHandlers`] answering RPCs it receives
//!   (`discover` built in), [`get_metrics`] answering with the same types as
//!   [`Registry::get_metrics`](crate::metrics::Registry::get_metrics).
//! - [`Source`]: registers, declares its metrics from mvx [`Metadata`](crate::metrics::Metadata),
//!   publishes data points. [`RegistryBridge`] publishes an mvx [`Registry`](crate::metrics::Registry)
//!   (instruments and recorders' snapshots) at an interval through an mvx sink, so that
//!   publishing never blocks and every point ends `delivered` or `failed`.
//! - [`Sink`]: subscribes to metrics and hands each point to a [`DataHandler`],
//!   acknowledging a chunk only once the handler took all of its points.
//!
//! Each is an [`Agent`](crate::agent::Agent): run it with [`Runner`](crate::agent::Runner),
//! which connects it, stops it once, and runs its teardown (closing channels and
//! connections) under the close timeout.
//!
//! [`rpc`]: ClientHandle::rpc
//! [`get_metrics`]: ClientHandle::get_metrics
//!
//! ```no_run
//! use std::time::Duration;
//! use mvx::agent::{AgentConfig, Runner};
//! use mvx::agent::metricq::{BridgeConfig, MetricqConfig, RegistryBridge, Source};
//! use mvx::metrics::{Metadata, Registry};
//!
//! let registry = Registry::new();
//! let load = registry.gauge_with("example.load", Metadata::new().unit("%"))?;
//! let source = Source::new(MetricqConfig::new("amqp://127.0.0.1/", "source-example")?);
//! let bridge = RegistryBridge::new(source, registry, BridgeConfig::default().interval(Duration::from_secs(1)));
//! load.set(42.0);
//! Runner::new(bridge, AgentConfig::default()).run()?; // until SIGINT / SIGTERM
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # The protocol, and where each fact comes from
//!
//! The facts below are read from the Python `metricq` package (PyPI `metricq` 5.4:
//! `agent.py`, `client.py`, `data_client.py`, `source.py`, `source_metric.py`, `sink.py`,
//! `connection_watchdog.py`, the protobuf descriptors in `datachunk_pb2.py` and
//! `history_pb2.py`) and from the manager, `metricq-manager` (`manager.py`,
//! `queue_manager.py`, `config_parser.py`); the code here is mvx's own.
//!
//! | fact | value | source |
//! |---|---|---|
//! | management exchanges | `metricq.management` (topic; RPCs to the manager, routing key = function), `metricq.broadcast` (fanout; RPCs to every client); declared durable by the manager, passively by clients | `agent.py` `Agent.__init__`, `client.py` `Client.connect`, `manager.py` `Manager.connect` |
//! | a client's RPC queue | `<token>-rpc`, exclusive, bound to `metricq.broadcast` with `#`, consumed | `agent.py` `Agent.connect`, `client.py` `Client.connect` |
//! | the manager's queue | `management`, durable, bound to `metricq.management` with `#` | `manager.py` |
//! | an RPC request | JSON object: `function` and the arguments (`camelCase` names); properties `correlation_id`, `reply_to` (the caller's RPC queue), `app_id` (the caller's token), `content_type: application/json` | `agent.py` `Agent.rpc` |
//! | an RPC to one agent | default exchange, routing key `<token>-rpc` | `manager.py` `Manager.rpc` (`to_token`) |
//! | an RPC answer | JSON object to `reply_to` through the default exchange, same `correlation_id`, `app_id`; a field `error` makes it a failure (`RPCError`); a handler returning nothing answers `{}`; an unknown function answers an error | `agent.py` `_on_management_message`, `rpc.py` `rpc_dispatch` |
//! | RPC timeout | 60 s by default | `agent.py` `Agent.rpc` |
//! | `discover` | answered by every client: `alive`, `currentTime`, `startingTime`, `uptime` (ns), `metricqVersion`, `hostname`, … | `client.py` `_on_discover` |
//! | `get_metrics` | arguments `format` (`object` with metadata, `array` of names), `selector` (regular expression or list of names), `prefix`, `infix`, `limit`, `hidden`, `historic`; answer `{"metrics": …}` | `client.py` `get_metrics`, `manager.py` `handle_get_metrics` |
//! | `source.register` | answer `dataServerAddress`, `dataExchange` (`metricq.data`), `config` (dispatched to the source's `config` handler) | `source.py` `Source.connect`, `manager.py` `_source_register` |
//! | `source.declare_metrics` | argument `metrics`: object of metadata by metric name (or a list of names); `historic` and `source` are reserved and ignored by the manager | `source.py` `declare_metrics`, `manager.py` `handle_source_declare_metrics` |
//! | data connection | to `dataServerAddress`, with the management URL's credentials (`vhost:<name>`: the management URL with that virtual host); the data exchange is declared passively | `agent.py` `derive_address`, `data_client.py` `data_config` |
//! | data messages | protobuf `DataChunk`, delta-encoded, to the data exchange with the metric name as routing key (at most 255 bytes), `mandatory` false; one chunk per metric | `source.py` `_send`, `source_metric.py`, see [`proto`] |
//! | `sink.subscribe` | arguments `metrics` (list), optional `dataQueue` (to reuse), `expires` (s), `metadata`; answer `dataServerAddress`, `dataQueue` (`<token>-<hex>-data`, auto-delete, bound with each metric name), `metrics` | `sink.py` `subscribe`, `manager.py` `handle_subscribe`, `queue_manager.py` `sink_declare_data_queue` |
//! | sink consumption | data queue declared passively, prefetch 400, each message acknowledged after its points were handled (rejected with requeue on an error); routing key = metric; a message of `type` `end` ends a subscription | `sink.py` `_on_data_message`, `data_client.py`, `queue_manager.py` `publish_end_message` |
//! | sink tokens | a `Sink` adds `.<uuid hex>` to its token; the manager expects `sink-` in front | `sink.py`, `queue_manager.py` |
//! | reconnection | robust connections re-established every 5 s; the first connect fails fast; a connection not back within `connection_timeout` (600 s management, 60 s data by default) stops the agent with `ReconnectTimeout`; a sink re-subscribes its data queue after a reconnect | `agent.py` `make_connection`, `connection_watchdog.py`, `data_client.py`, `sink.py` `_resubscribe` |
//!
//! # Choices
//!
//! - **Runtime.** The AMQP connection is [`lapin`] 3 on its default runtime: the socket
//!   registered with `async-io`'s reactor, lapin's internal tasks (heartbeats, its RPC
//!   machinery) on `async-global-executor` (threads it starts on first use), and one I/O
//!   thread per connection (`lapin-io-loop`). No tokio runtime; the agent's own futures run
//!   wherever the [`Runner`](crate::agent::Runner) polls them. `amqps://` uses rustls with
//!   the ring provider and the system's root certificates, plus any given with
//!   [`MetricqConfig::ca_certificates`].
//! - **Data chunks are confirmed.** The data channel is in publisher-confirm mode (the
//!   Python client turns confirms off): a point counts as delivered once the broker
//!   confirmed its chunk. A chunk published while its connection is down waits for the
//!   reconnect, up to the delivery timeout, then is counted failed; a chunk whose
//!   confirmation is lost with its connection is counted failed too, though the broker may
//!   have routed it: at most once, never silently lost.
//! - **The management channel is not confirmed** (as in Python): an RPC that is lost is an
//!   RPC that times out.
//! - **Metadata both ways.** [`Metadata`](crate::metrics::Metadata) goes out as metricq's
//!   flat metadata object (`unit`, `description`, `rate`, `hidden`, free-form fields;
//!   `historic` is left out, the manager owns it). Metadata coming back from `get_metrics`
//!   keeps metricq's free-form values as the JSON values they are (`bounds: [0, 300]`);
//!   the database's `_id`/`_rev` are left out.
//! - **A stop during connect** abandons the attempt at once; `connect` then returns `Ok`
//!   with nothing connected, and teardown has nothing to close.
//! - **Every wait has a deadline**: connecting ([`MetricqConfig::connect_timeout`]),
//!   reconnecting (the connection timeout, then the agent stops), RPCs (the RPC timeout),
//!   chunks (the delivery timeout), teardown (the runner's close timeout).
//! - **Errors** are [`MetricqError`] with their own stable codes, [`MetricqReason`]; a
//!   client's errors reach the runner as the cause of `ConnectFailed`, `Stopped`
//!   (`RECONNECT_TIMED_OUT`) or `TeardownFailed`.

mod bridge;
mod client;
mod config;
mod connection;
mod error;
mod management;
mod metadata;
pub mod proto;
mod publisher;
mod rpc;
mod sink;
mod source;
mod time;

pub use self::bridge::{BridgeConfig, BridgeStats, DEFAULT_BRIDGE_INTERVAL, RegistryBridge};
pub use self::client::{Client, ClientHandle, ClientStats};
pub use self::config::{
    DEFAULT_CONNECT_TIMEOUT, DEFAULT_CONNECTION_TIMEOUT, DEFAULT_DATA_CONNECTION_TIMEOUT,
    DEFAULT_DELIVERY_TIMEOUT, DEFAULT_RECONNECT_INTERVAL, DEFAULT_RPC_TIMEOUT, MetricqConfig,
};
pub use self::error::{AmqpError, MetricqError, MetricqReason};
pub use self::proto::{ChunkBuilder, ChunkDecodeError, ChunkPoints, decode_chunk};
pub use self::publisher::{ChunkPublisher, DataPoint};
pub use self::rpc::{RpcHandlers, RpcRequest, RpcResult};
pub use self::sink::{DataHandler, Sink, SinkHandle, SinkStats};
pub use self::source::{Source, SourceHandle};
pub use self::time::Timestamp;

/// The exchange of RPCs to the manager (routing key: the function).
pub const MANAGEMENT_EXCHANGE: &str = "metricq.management";
/// The exchange of RPCs to every client.
pub const BROADCAST_EXCHANGE: &str = "metricq.broadcast";
/// The data exchange the manager names in `source.register` answers.
pub const DATA_EXCHANGE: &str = "metricq.data";

/// Locks `mutex`, whether or not a holder panicked: what the metricq client keeps behind
/// its locks (waiters, links, names) stays consistent across a panic, which user code
/// (handlers) can only raise outside them.
pub(crate) fn lock<T>(mutex: &std::sync::Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}
