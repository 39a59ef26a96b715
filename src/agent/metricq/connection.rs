//! One AMQP connection with one channel, re-established when it is lost: the management
//! connection of every client and the data connection of sources and sinks.
//!
//! # Semantics (those of the Python client)
//!
//! - **The first connect fails fast**: one attempt, bounded by the connect timeout, and
//!   abandoned at once if the agent is asked to stop meanwhile (aio-pika's `fail_fast`).
//! - **A lost connection is re-established** every reconnect interval (aio-pika's
//!   `connect_robust` with `reconnect_interval`); each new connection gets a new channel and
//!   runs the link's *setup* again (queues, bindings, consumers), as aio-pika restores a
//!   robust channel's topology.
//! - **If it stays lost for the connection timeout**, the agent is stopped with
//!   [`MetricqError::ReconnectTimedOut`] (metricq's `ConnectionWatchdog`, which stops the
//!   agent with `ReconnectTimeout`).
//! - **Users of the channel wait** for the connection to be up, each with its own deadline
//!   (Python's `await watchdog.established()` before publishing, which has none).
//!
//! A loss is noticed through a consumer on a server-named, exclusive queue of the link's
//! channel: lapin ends its stream when the server closes the connection or the channel,
//! and fails it when the connection breaks, so no polling is needed.

use std::fmt;
use std::future::Future;
use std::pin::{Pin, pin};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use event_listener::{Event, listener};
use futures::StreamExt;
use futures::future::{Either, select};
use lapin::options::{BasicConsumeOptions, QueueDeclareOptions};
use lapin::tcp::OwnedTLSConfig;
use lapin::types::FieldTable;
use lapin::{Channel, Connection, ConnectionProperties, uri::AMQPUri};
use url::Url;

use super::config::{MetricqConfig, redact};
use super::error::MetricqError;
use crate::agent::AgentHandle;

/// What a link runs on each fresh channel before it counts as up.
pub(crate) type Setup = Arc<
    dyn Fn(Channel) -> Pin<Box<dyn Future<Output = Result<(), MetricqError>> + Send>> + Send + Sync,
>;

/// The reply code of a normal close.
const REPLY_SUCCESS: u16 = 200;

/// A connection and channel, kept up.
pub(crate) struct Link {
    name: &'static str,
    url: Url,
    config: Arc<MetricqConfig>,
    connection_timeout: Duration,
    setup: Setup,
    state: Mutex<State>,
    changed: Event,
}

#[derive(Default)]
struct State {
    live: Option<Live>,
    /// Counts the connections established.
    generation: u64,
    /// Closed by teardown: nothing reconnects, every waiter gives up.
    closed: bool,
}

struct Live {
    connection: Arc<Connection>,
    channel: Channel,
}

impl fmt::Debug for Link {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = self.lock();
        f.debug_struct("Link")
            .field("name", &self.name)
            .field("url", &redact(&self.url))
            .field("up", &state.live.is_some())
            .field("generation", &state.generation)
            .field("closed", &state.closed)
            .finish()
    }
}

impl Link {
    pub(crate) fn new(
        name: &'static str,
        url: Url,
        config: Arc<MetricqConfig>,
        connection_timeout: Duration,
        setup: Setup,
    ) -> Arc<Self> {
        Arc::new(Self {
            name,
            url,
            config,
            connection_timeout,
            setup,
            state: Mutex::new(State::default()),
            changed: Event::new(),
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// How many connections were established so far.
    pub(crate) fn generation(&self) -> u64 {
        self.lock().generation
    }

    /// Connects once (fail fast), then keeps the link up from a task of `agent`.
    ///
    /// Returns `Ok(false)` if the agent was asked to stop before the link was up: the
    /// attempt is abandoned.
    pub(crate) async fn open(self: &Arc<Self>, agent: &AgentHandle) -> Result<bool, MetricqError> {
        let attempt = pin!(self.connect_once());
        let stop = pin!(agent.stop_requested_wait());
        let (live, watch) = match select(attempt, stop).await {
            Either::Left((connected, _)) => connected?,
            Either::Right(((), _)) => return Ok(false),
        };
        if !self.install(live) {
            return Ok(false);
        }
        let link = self.clone();
        let handle = agent.clone();
        agent.spawn(async move {
            link.keep_up(watch, handle).await;
            Ok(())
        });
        Ok(true)
    }

    /// Stores a fresh connection; `false` (and closes it) if the link was closed meanwhile.
    fn install(&self, live: Live) -> bool {
        let mut state = self.lock();
        if state.closed {
            drop(state);
            close_quietly(live);
            return false;
        }
        state.live = Some(live);
        state.generation += 1;
        drop(state);
        self.changed.notify(usize::MAX);
        true
    }

    /// Waits for each loss, reconnects, and stops the agent when reconnecting takes longer
    /// than the connection timeout.
    async fn keep_up(self: Arc<Self>, mut watch: lapin::Consumer, agent: AgentHandle) {
        loop {
            // Lost when the watch stream ends or fails, or closed by teardown.
            {
                let lost = pin!(async { while let Some(Ok(_)) = watch.next().await {} });
                let closed = pin!(self.closed_wait());
                if let Either::Right(((), _)) = select(lost, closed).await {
                    return;
                }
            }
            let lost_at = Instant::now();
            {
                let mut state = self.lock();
                if state.closed {
                    return;
                }
                if let Some(live) = state.live.take() {
                    close_quietly(live);
                }
            }
            self.changed.notify(usize::MAX);
            watch = loop {
                let elapsed = lost_at.elapsed();
                if elapsed >= self.connection_timeout {
                    agent.stop(
                        Some(Box::new(MetricqError::ReconnectTimedOut {
                            connection: self.name,
                            timeout: self.connection_timeout,
                        })),
                        false,
                    );
                    return;
                }
                let pause = self
                    .config
                    .reconnect_interval
                    .min(self.connection_timeout - elapsed);
                if !self.sleep_unless_closed(pause).await {
                    return;
                }
                let attempt = pin!(self.connect_once());
                let closed = pin!(self.closed_wait());
                match select(attempt, closed).await {
                    Either::Left((Ok((live, watch)), _)) => {
                        if !self.install(live) {
                            return;
                        }
                        break watch;
                    }
                    Either::Left((Err(_), _)) => {}
                    Either::Right(((), _)) => return,
                }
            };
        }
    }

    /// Sleeps `pause`; `false` if the link was closed meanwhile.
    async fn sleep_unless_closed(&self, pause: Duration) -> bool {
        let timer = async_io::Timer::after(pause);
        let closed = pin!(self.closed_wait());
        matches!(select(timer, closed).await, Either::Left(_))
    }

    /// One attempt: connection, channel, watch consumer, setup; bounded by the connect
    /// timeout.
    async fn connect_once(&self) -> Result<(Live, lapin::Consumer), MetricqError> {
        let timeout = self.config.connect_timeout;
        let attempt = pin!(self.connect_unbounded());
        match select(attempt, async_io::Timer::after(timeout)).await {
            Either::Left((result, _)) => result,
            Either::Right(_) => Err(MetricqError::ConnectTimedOut {
                connection: self.name,
                url: redact(&self.url),
                timeout,
            }),
        }
    }

    async fn connect_unbounded(&self) -> Result<(Live, lapin::Consumer), MetricqError> {
        let mut uri: AMQPUri = self
            .url
            .as_str()
            .parse()
            .map_err(|detail| MetricqError::InvalidConfig { detail })?;
        // lapin's parser reads only domain names; an IP address would become `localhost`.
        if let Some(host) = self.url.host_str() {
            uri.authority.host = host.trim_start_matches('[').trim_end_matches(']').into();
        }
        // As aio-pika (the Python client's AMQP library) reads it: no virtual host in the
        // path, or just `/`, is the default virtual host `/` (lapin would read `""`).
        if matches!(self.url.path(), "" | "/") {
            uri.vhost = "/".into();
        }
        if uri.query.connection_timeout.is_none() {
            let millis = u64::try_from(self.config.connect_timeout.as_millis()).unwrap_or(u64::MAX);
            uri.query.connection_timeout = Some(millis.max(1));
        }
        let properties = ConnectionProperties::default().with_connection_name(
            format!("{} connection {}", self.name, self.config.token()).into(),
        );
        let tls = OwnedTLSConfig {
            identity: None,
            cert_chain: self.config.ca_certificates.clone(),
        };
        let failed = |source: lapin::Error| MetricqError::ConnectFailed {
            connection: self.name,
            url: redact(&self.url),
            source: Arc::new(source),
        };
        let connection = Connection::connect_uri_with_config(uri, properties, tls)
            .await
            .map_err(failed)?;
        let connection = Arc::new(connection);
        let live = async {
            let channel = connection.create_channel().await.map_err(failed)?;
            let watch_queue = channel
                .queue_declare(
                    "",
                    QueueDeclareOptions {
                        exclusive: true,
                        auto_delete: true,
                        ..QueueDeclareOptions::default()
                    },
                    FieldTable::default(),
                )
                .await
                .map_err(|error| {
                    MetricqError::amqp("declaring the connection's watch queue", error)
                })?;
            let watch = channel
                .basic_consume(
                    watch_queue.name().as_str(),
                    "mvx-watch",
                    BasicConsumeOptions {
                        no_ack: true,
                        exclusive: true,
                        ..BasicConsumeOptions::default()
                    },
                    FieldTable::default(),
                )
                .await
                .map_err(|error| MetricqError::amqp("watching the connection", error))?;
            (self.setup)(channel.clone()).await?;
            Ok::<_, MetricqError>((channel, watch))
        }
        .await;
        match live {
            Ok((channel, watch)) => Ok((
                Live {
                    connection,
                    channel,
                },
                watch,
            )),
            Err(error) => {
                let _ = connection.close(REPLY_SUCCESS, "setup failed").await;
                Err(error)
            }
        }
    }

    /// The channel, once the link is up; waits at most `wait` for a lost link to come back.
    ///
    /// # Errors
    ///
    /// [`MetricqError::NotConnected`] if the link is closed (teardown) or not up in time.
    pub(crate) async fn channel(&self, wait: Duration) -> Result<Channel, MetricqError> {
        self.channel_from(0, wait).await.map(|(channel, _)| channel)
    }

    /// The channel of a connection counted `min_generation` or later, with its generation:
    /// after an operation failed on generation `g`, ask for `g + 1` to wait for the next
    /// connection rather than get the broken one again.
    ///
    /// # Errors
    ///
    /// As [`channel`](Self::channel).
    pub(crate) async fn channel_from(
        &self,
        min_generation: u64,
        wait: Duration,
    ) -> Result<(Channel, u64), MetricqError> {
        let deadline = Instant::now() + wait;
        loop {
            if let Some(found) = self.current(min_generation) {
                return found;
            }
            listener!(self.changed => changed);
            if let Some(found) = self.current(min_generation) {
                return found;
            }
            let remaining = deadline.saturating_duration_since(Instant::now());
            if remaining.is_zero() {
                return Err(self.not_connected());
            }
            if let Either::Right(_) = select(changed, async_io::Timer::after(remaining)).await {
                return self
                    .current(min_generation)
                    .unwrap_or_else(|| Err(self.not_connected()));
            }
        }
    }

    fn current(&self, min_generation: u64) -> Option<Result<(Channel, u64), MetricqError>> {
        let state = self.lock();
        if state.closed {
            return Some(Err(self.not_connected()));
        }
        if state.generation < min_generation {
            return None;
        }
        state
            .live
            .as_ref()
            .map(|live| Ok((live.channel.clone(), state.generation)))
    }

    fn not_connected(&self) -> MetricqError {
        MetricqError::NotConnected {
            connection: self.name,
        }
    }

    /// Whether the link is up now.
    pub(crate) fn is_up(&self) -> bool {
        self.lock().live.is_some()
    }

    async fn closed_wait(&self) {
        loop {
            if self.lock().closed {
                return;
            }
            listener!(self.changed => changed);
            if self.lock().closed {
                return;
            }
            changed.await;
        }
    }

    /// Closes the channel and the connection; nothing reconnects afterwards. Idempotent.
    ///
    /// # Errors
    ///
    /// [`MetricqError::Amqp`] if the broker did not accept the close of a live connection.
    pub(crate) async fn close(&self) -> Result<(), MetricqError> {
        let live = {
            let mut state = self.lock();
            state.closed = true;
            state.live.take()
        };
        self.changed.notify(usize::MAX);
        let Some(live) = live else {
            return Ok(());
        };
        if !live.connection.status().connected() {
            return Ok(());
        }
        let channel_closed = live.channel.close(REPLY_SUCCESS, "teardown").await;
        let connection_closed = live.connection.close(REPLY_SUCCESS, "teardown").await;
        let operation = format!("closing the {} connection", self.name);
        match (channel_closed, connection_closed) {
            (_, Ok(())) => Ok(()),
            (_, Err(error)) if !live.connection.status().connected() => {
                // Closed under us (the broker went away meanwhile): nothing left to close.
                let _ = error;
                Ok(())
            }
            (_, Err(error)) => Err(MetricqError::amqp(operation, error)),
        }
    }
}

/// Drops a connection that is not wanted any more: lapin closes a connection when its last
/// handle (the connection and its channels) is dropped.
fn close_quietly(live: Live) {
    drop(live);
}
