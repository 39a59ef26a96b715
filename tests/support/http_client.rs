//! An HTTP client for the exposition tests: hyper's, over async-io, as a scraper would use
//! it; and raw sockets for clients that misbehave. Reads and retries are bounded by the
//! watchdog's [`GUARD`].
//!
//! Include it with `#[path = "support/http_client.rs"] mod http_client;`, and the watchdog
//! beside it (`support/watchdog.rs`); it needs the `http` feature.

#![allow(dead_code)] // Each test file uses its own part of this module.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use async_io::Async;
use bytes::Bytes;
use futures::future::{Either, select};
use http_body_util::{BodyExt, Empty};
use hyper::Request;
use hyper::header::HeaderMap;

use crate::watchdog::GUARD;

/// An answer from the server.
#[derive(Debug)]
pub struct Answer {
    pub status: u16,
    pub headers: HeaderMap,
    pub body: String,
}

/// Sends `request` on `io` with hyper's HTTP/1.1 client and reads the whole answer.
pub async fn exchange<IO>(io: IO, request: Request<Empty<Bytes>>) -> Result<Answer, mvx::BoxError>
where
    IO: futures::io::AsyncRead + futures::io::AsyncWrite + Unpin + Send + 'static,
{
    let (mut sender, connection) =
        hyper::client::conn::http1::handshake(smol_hyper::rt::FuturesIo::new(io)).await?;
    let respond = async {
        let response = sender.send_request(request).await?;
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let body = response.into_body().collect().await?.to_bytes();
        Ok::<_, mvx::BoxError>(Answer {
            status,
            headers,
            body: String::from_utf8(body.to_vec())?,
        })
    };
    let respond = std::pin::pin!(respond);
    match select(respond, connection).await {
        Either::Left((answer, _)) => answer,
        Either::Right((Ok(()), _)) => Err("connection closed before the answer".into()),
        Either::Right((Err(error), _)) => Err(error.into()),
    }
}

/// `method path` on `addr`, with an optional `Accept` header.
pub async fn request(
    addr: SocketAddr,
    method: &str,
    path: &str,
    accept: Option<&str>,
) -> Result<Answer, mvx::BoxError> {
    let stream = Async::<TcpStream>::connect(addr).await?;
    let mut request = Request::builder()
        .method(method)
        .uri(path)
        .header("host", addr.to_string());
    if let Some(accept) = accept {
        request = request.header("accept", accept);
    }
    exchange(stream, request.body(Empty::new())?).await
}

/// `GET path` on `addr`, blocking.
pub fn get(addr: SocketAddr, path: &str) -> Result<Answer, mvx::BoxError> {
    futures::executor::block_on(request(addr, "GET", path, None))
}

/// A raw connection for clients that misbehave, with reads bounded by [`GUARD`].
pub fn raw(addr: SocketAddr) -> TcpStream {
    let stream = TcpStream::connect(addr).expect("connect");
    stream.set_read_timeout(Some(GUARD)).expect("read timeout");
    stream
}

/// Writes `bytes`, then reads until the server closes the connection; what it sent.
pub fn send_and_read_to_end(stream: &mut TcpStream, bytes: &[u8]) -> String {
    stream.write_all(bytes).expect("write");
    read_to_end(stream)
}

/// Reads until the server closes the connection (or resets it); what it sent.
pub fn read_to_end(stream: &mut TcpStream) -> String {
    let mut received = Vec::new();
    let mut buffer = [0u8; 4096];
    loop {
        match stream.read(&mut buffer) {
            Ok(0) => break,
            Ok(n) => received.extend_from_slice(&buffer[..n]),
            Err(error)
                if matches!(
                    error.kind(),
                    std::io::ErrorKind::ConnectionReset | std::io::ErrorKind::ConnectionAborted
                ) =>
            {
                break;
            }
            Err(error) => panic!("the server neither answered nor closed: {error}"),
        }
    }
    String::from_utf8_lossy(&received).into_owned()
}

/// Retries `get` until it answers, for a server that is freeing a connection slot (which
/// nothing outside the server announces); bounded by [`GUARD`].
pub fn get_when_a_slot_is_free(addr: SocketAddr, path: &str) -> Answer {
    let deadline = std::time::Instant::now() + GUARD;
    loop {
        match get(addr, path) {
            Ok(answer) => return answer,
            Err(error) if std::time::Instant::now() < deadline => {
                let _ = error;
                std::thread::sleep(Duration::from_millis(10));
            }
            Err(error) => panic!("no slot freed within {GUARD:?}: {error}"),
        }
    }
}
