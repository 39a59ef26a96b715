//! Accepting and serving connections: the slots, TLS, HTTP/1.1 and the write deadline.

use std::convert::Infallible;
use std::future::Future;
use std::net::{TcpListener, TcpStream};
use std::pin::{Pin, pin};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::task::Poll;
use std::time::Duration;

use async_io::Async;
use bytes::Bytes;
use futures::future::Abortable;
use futures::io::{AsyncRead, AsyncWrite};
use futures::stream::{FuturesUnordered, Stream};
use futures::{FutureExt, StreamExt};
use http_body_util::Full;
use hyper::body::{Body, Frame, SizeHint};
use hyper::{Request, StatusCode};

use super::response::{plain, root_page};
use super::server::Shared;
use super::slots::{Admission, Slot, Slots, Ticket};
#[cfg(feature = "tls")]
use super::timeout;
use super::{MIN_READ_BUFFER, ServerConfig, get_metrics_response, metrics_response};
use crate::metrics::Registry;

/// A connection served by the driver; its output is its slot's id.
type Connection = Pin<Box<dyn Future<Output = u64> + Send>>;

/// The most connections the driver accepts before it serves those it has: a flood of
/// connections cannot starve the open ones.
const ACCEPTS_PER_TURN: usize = 8;

/// The driver: accepts connections and serves them until told to stop; the listener and
/// the connections are dropped when it returns.
pub(super) async fn serve(
    listener: Async<TcpListener>,
    config: Arc<ServerConfig>,
    registry: Registry,
    shared: Arc<Shared>,
) {
    let counters = &shared.counters;
    let mut incoming = pin!(listener.incoming());
    let mut connections: FuturesUnordered<Connection> = FuturesUnordered::new();
    let mut slots = Slots::new(config.max_connections);
    let mut stop = shared.stop.listen();
    // After an accept error (too many open files, ...), a pause before accepting again.
    let mut backoff: Option<async_io::Timer> = None;

    futures::future::poll_fn(|cx| {
        loop {
            if shared.stopping.load(Ordering::Acquire) {
                return Poll::Ready(());
            }
            if Pin::new(&mut stop).poll(cx).is_pending() {
                break;
            }
            stop = shared.stop.listen();
        }
        if let Some(timer) = &mut backoff {
            if Pin::new(timer).poll(cx).is_ready() {
                backoff = None;
            }
        }
        let mut accepts = 0;
        while backoff.is_none() {
            if accepts == ACCEPTS_PER_TURN {
                // The rest next turn, after the open connections.
                cx.waker().wake_by_ref();
                break;
            }
            accepts += 1;
            match incoming.as_mut().poll_next(cx) {
                Poll::Ready(Some(Ok(stream))) => {
                    let ticket = match slots.admit() {
                        Admission::Free(ticket) => ticket,
                        Admission::Evicted(ticket) => {
                            counters.evicted.fetch_add(1, Ordering::Relaxed);
                            ticket
                        }
                        Admission::Refused => {
                            counters.refused.fetch_add(1, Ordering::Relaxed);
                            drop(stream);
                            continue;
                        }
                    };
                    counters.accepted.fetch_add(1, Ordering::Relaxed);
                    let id = ticket.id;
                    let mut connection = connection(stream, ticket, &config, &registry, &shared);
                    // Polled at once: a request already received is read now, and answered
                    // before a later newcomer could take this slot.
                    if connection.as_mut().poll(cx).is_ready() {
                        slots.finished(id);
                    } else {
                        connections.push(connection);
                    }
                }
                Poll::Ready(Some(Err(_))) => {
                    let mut timer = async_io::Timer::after(Duration::from_millis(50));
                    if Pin::new(&mut timer).poll(cx).is_pending() {
                        backoff = Some(timer);
                    }
                }
                Poll::Ready(None) | Poll::Pending => break,
            }
        }
        while let Poll::Ready(Some(id)) = connections.poll_next_unpin(cx) {
            slots.finished(id);
        }
        counters.active.store(slots.len() as u64, Ordering::Relaxed);
        Poll::Pending
    })
    .await;
    drop(connections);
    counters.active.store(0, Ordering::Relaxed);
}

/// Serves one connection: the TLS handshake if configured, then HTTP/1.1; until it ends or
/// the driver evicts it (which drops it, and so closes it).
fn connection(
    stream: Async<TcpStream>,
    ticket: Ticket,
    config: &Arc<ServerConfig>,
    registry: &Registry,
    shared: &Arc<Shared>,
) -> Connection {
    let config = config.clone();
    let registry = registry.clone();
    let shared = shared.clone();
    let Ticket { id, slot, close } = ticket;
    let served = async move {
        #[cfg(feature = "tls")]
        if let Some(tls) = &config.tls {
            let acceptor = futures_rustls::TlsAcceptor::from(tls.clone());
            return match timeout(config.header_read_timeout, acceptor.accept(stream)).await {
                Some(Ok(stream)) => http1(stream, &slot, &config, &registry).await,
                Some(Err(_)) | None => false,
            };
        }
        http1(stream, &slot, &config, &registry).await
    };
    let served = std::panic::AssertUnwindSafe(served)
        .catch_unwind()
        .map(move |served| {
            if !matches!(served, Ok(true)) {
                shared.counters.failed.fetch_add(1, Ordering::Relaxed);
            }
        });
    Box::pin(Abortable::new(served, close).map(move |_| id))
}

/// Serves HTTP/1.1 on `io` until the client is done, telling `slot` when a request is
/// answered; whether it ended without an error.
async fn http1<IO>(io: IO, slot: &Arc<Slot>, config: &ServerConfig, registry: &Registry) -> bool
where
    IO: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let service = hyper::service::service_fn(|request: Request<hyper::body::Incoming>| {
        slot.answering();
        let path = request.uri().path();
        let response = if path == config.path {
            metrics_response(registry, &config.encoder, &request)
        } else if config.api_path.as_deref() == Some(path) {
            get_metrics_response(registry, &request)
        } else if path == "/" {
            root_page(&config.path, &request)
        } else {
            plain(StatusCode::NOT_FOUND, "not found\n")
        };
        let response = response.map(|body| Answer {
            body,
            slot: slot.clone(),
        });
        std::future::ready(Ok::<_, Infallible>(response))
    });
    let io = WriteDeadline::new(io, config.write_timeout, slot.clone());
    hyper::server::conn::http1::Builder::new()
        .timer(smol_hyper::rt::SmolTimer::new())
        .header_read_timeout(config.header_read_timeout)
        .max_buf_size(config.max_header_bytes.max(MIN_READ_BUFFER))
        .max_header_size(config.max_header_bytes)
        .serve_connection(smol_hyper::rt::FuturesIo::new(io), service)
        .await
        .is_ok()
}

/// The body of an answer, which tells the connection's slot when hyper is done with it.
struct Answer {
    body: Full<Bytes>,
    slot: Arc<Slot>,
}

impl Body for Answer {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        Pin::new(&mut self.body).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}

impl Drop for Answer {
    /// hyper drops the body once it has buffered all of it (or, for `HEAD`, none of it).
    fn drop(&mut self) {
        self.slot.answered();
    }
}

/// A connection's I/O, whose writes fail with `TimedOut` after making no progress for
/// `timeout` (a client that stops reading its answer cannot hold a connection for ever),
/// and whose completed flushes are told to the connection's slot.
struct WriteDeadline<IO> {
    io: IO,
    timeout: Duration,
    /// Runs while a write, flush or close is stalled; reset by any progress.
    stalled: Option<async_io::Timer>,
    slot: Arc<Slot>,
}

impl<IO> WriteDeadline<IO> {
    fn new(io: IO, timeout: Duration, slot: Arc<Slot>) -> Self {
        Self {
            io,
            timeout,
            stalled: None,
            slot,
        }
    }

    /// Passes `polled` on, starting the stall timer on `Pending` and stopping it on progress;
    /// `TimedOut` once the timer fires.
    fn guard<T>(
        &mut self,
        cx: &mut std::task::Context<'_>,
        polled: Poll<std::io::Result<T>>,
    ) -> Poll<std::io::Result<T>> {
        if polled.is_ready() {
            self.stalled = None;
            return polled;
        }
        let timeout = self.timeout;
        let timer = self
            .stalled
            .get_or_insert_with(|| async_io::Timer::after(timeout));
        match Pin::new(timer).poll(cx) {
            Poll::Ready(_) => Poll::Ready(Err(std::io::ErrorKind::TimedOut.into())),
            Poll::Pending => Poll::Pending,
        }
    }
}

impl<IO: AsyncRead + Unpin> AsyncRead for WriteDeadline<IO> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &mut [u8],
    ) -> Poll<std::io::Result<usize>> {
        // Reads are bounded by hyper's header read timeout.
        Pin::new(&mut self.io).poll_read(cx, buf)
    }
}

impl<IO: AsyncWrite + Unpin> AsyncWrite for WriteDeadline<IO> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        let polled = Pin::new(&mut self.io).poll_write(cx, buf);
        self.guard(cx, polled)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        let polled = Pin::new(&mut self.io).poll_write_vectored(cx, bufs);
        self.guard(cx, polled)
    }

    fn poll_flush(
        mut self: Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> Poll<std::io::Result<()>> {
        let polled = Pin::new(&mut self.io).poll_flush(cx);
        if let Poll::Ready(Ok(())) = polled {
            // hyper flushes its socket after writing all it buffered.
            self.slot.flushed();
        }
        self.guard(cx, polled)
    }

    fn poll_close(
        mut self: Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> Poll<std::io::Result<()>> {
        let polled = Pin::new(&mut self.io).poll_close(cx);
        self.guard(cx, polled)
    }
}
