//! A local HTTP endpoint that answers like a Consul agent and records every request it
//! receives: no Consul server can run where mvx is developed, so the discovery tests hold
//! mvx's Consul client (and prometheus_async's, side by side) against it.
//!
//! Include it with `#[path = "support/consul_agent.rs"] mod consul_agent;`; it needs the
//! `http` and `smol` features.

#![allow(dead_code)] // Each test file uses its own part of this module.

use std::net::{SocketAddr, TcpListener};
use std::sync::{Arc, Mutex};

use async_io::Async;
use http_body_util::{BodyExt, Full};
use hyper::body::{Bytes, Incoming};

/// One request the fake agent received.
#[derive(Clone, Debug)]
pub struct Received {
    pub method: String,
    pub path: String,
    pub token: Option<String>,
    pub body: String,
}

/// A local HTTP endpoint answering like a Consul agent and recording every request.
pub struct FakeAgent {
    pub addr: SocketAddr,
    received: Arc<Mutex<Vec<Received>>>,
    stop: async_channel::Sender<()>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl FakeAgent {
    /// Answers `status(path)` to each request.
    pub fn start(status: fn(&str) -> u16) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = listener.local_addr().expect("address");
        let listener = Async::new(listener).expect("async listener");
        let received = Arc::new(Mutex::new(Vec::new()));
        let (stop, stopped) = async_channel::bounded::<()>(1);
        let record = received.clone();
        let thread = std::thread::spawn(move || {
            smol::block_on(async move {
                let serve = async {
                    loop {
                        let (stream, _) = listener.accept().await.expect("accept");
                        let record = record.clone();
                        let service =
                            hyper::service::service_fn(move |request: hyper::Request<Incoming>| {
                                let record = record.clone();
                                async move {
                                    let method = request.method().to_string();
                                    let path = request.uri().path().to_owned();
                                    let token = request
                                        .headers()
                                        .get("x-consul-token")
                                        .map(|value| value.to_str().unwrap_or("?").to_owned());
                                    let body = request.into_body().collect().await?.to_bytes();
                                    let answer = status(&path);
                                    record.lock().unwrap().push(Received {
                                        method,
                                        path,
                                        token,
                                        body: String::from_utf8_lossy(&body).into_owned(),
                                    });
                                    let mut response = hyper::Response::new(Full::new(
                                        Bytes::from_static(b"agent says no"),
                                    ));
                                    *response.status_mut() =
                                        hyper::StatusCode::from_u16(answer).unwrap();
                                    Ok::<_, hyper::Error>(response)
                                }
                            });
                        let _ = hyper::server::conn::http1::Builder::new()
                            .serve_connection(smol_hyper::rt::FuturesIo::new(stream), service)
                            .await;
                    }
                };
                futures::future::select(std::pin::pin!(serve), std::pin::pin!(stopped.recv()))
                    .await;
            })
        });
        Self {
            addr,
            received,
            stop,
            thread: Some(thread),
        }
    }

    pub fn received(&self) -> Vec<Received> {
        self.received.lock().unwrap().clone()
    }
}

impl Drop for FakeAgent {
    fn drop(&mut self) {
        let _ = self.stop.try_send(());
        if let Some(thread) = self.thread.take() {
            thread.join().expect("fake agent thread");
        }
    }
}
