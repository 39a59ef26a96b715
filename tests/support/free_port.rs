//! A loopback port for a server a test starts: one nobody listened on a moment ago.
//!
//! Include it with `#[path = "support/free_port.rs"] mod free_port;` (the server helpers,
//! `redis_server.rs` and `rabbitmq.rs`, need it beside them).

#![allow(dead_code)] // A test binary may include it only for a server helper.

use std::net::TcpListener;

/// A loopback port nobody listened on a moment ago.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .expect("a free loopback port")
        .port()
}
