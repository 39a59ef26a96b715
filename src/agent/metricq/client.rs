//! The public face of a plain client: [`Client`], the agent, and [`ClientHandle`], RPCs out
//! and handlers in from any thread; the connection and the RPCs themselves are
//! `management.rs`'s.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use serde_json::{Map, Value};

use super::config::MetricqConfig;
use super::error::MetricqError;
use super::management::Core;
use super::rpc::RpcHandlers;
use crate::BoxError;
use crate::agent::{Agent, AgentHandle, Selector};
use crate::metrics::Metadata;

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
    /// applies it. A selector the manager refuses ([`Selector::check`]) is refused before
    /// it is sent, as the registry refuses it. The metadata is read as [`Metadata`]: see
    /// the [module docs](super) for how metricq's free-form values map.
    ///
    /// # Errors
    ///
    /// As [`rpc`](Self::rpc); [`MetricqError::InvalidSelector`] for a selector the manager
    /// refuses (`prefix` with `infix`, either with a regular expression or names, an empty
    /// list of names); [`MetricqError::InvalidResponse`] for an answer without `metrics`.
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
        self.core.connected().await
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
