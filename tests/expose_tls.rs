//! The metrics server over HTTPS, with a self-signed certificate made by the test.
#![cfg(not(loom))]

#[path = "support/http_client.rs"]
mod http_client;
#[path = "support/watchdog.rs"]
mod watchdog;

use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;
use std::time::Duration;

use async_io::Async;
use bytes::Bytes;
use http_body_util::Empty;
use http_client::{raw, read_to_end, send_and_read_to_end};
use mvx::expose::http::{ServerConfig, ThreadedMetricsServer};
use mvx::expose::rustls;
use mvx::metrics::Registry;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer, ServerName};

/// A certificate for `localhost` and the server configuration that uses it.
fn self_signed() -> (CertificateDer<'static>, Arc<rustls::ServerConfig>) {
    let certified =
        rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).expect("certificate");
    let certificate = certified.cert.der().clone();
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(
        certified.signing_key.serialize_der(),
    ));
    let config = rustls::ServerConfig::builder()
        .with_no_client_auth()
        .with_single_cert(vec![certificate.clone()], key)
        .expect("server configuration");
    (certificate, Arc::new(config))
}

/// `GET /metrics` over TLS, trusting `certificate` for `localhost`.
fn scrape_https(addr: SocketAddr, certificate: &CertificateDer<'static>) -> http_client::Answer {
    let mut roots = rustls::RootCertStore::empty();
    roots.add(certificate.clone()).expect("root certificate");
    let client = rustls::ClientConfig::builder()
        .with_root_certificates(roots)
        .with_no_client_auth();
    let connector = futures_rustls::TlsConnector::from(Arc::new(client));
    futures::executor::block_on(async {
        let stream = Async::<TcpStream>::connect(addr).await.expect("connect");
        let name = ServerName::try_from("localhost").expect("server name");
        let stream = connector
            .connect(name, stream)
            .await
            .expect("TLS handshake");
        let request = hyper::Request::get("/metrics")
            .header("host", "localhost")
            .body(Empty::<Bytes>::new())
            .expect("request");
        http_client::exchange(stream, request)
            .await
            .expect("answer")
    })
}

#[test]
fn serves_https_with_a_self_signed_certificate() {
    let (certificate, tls) = self_signed();
    let registry = Registry::new();
    registry.counter("tls.scrapes").expect("counter").inc_by(3);
    let config = ServerConfig::new("127.0.0.1:0".parse().expect("address")).tls(tls);
    let server = ThreadedMetricsServer::start(registry, config).expect("server starts");
    assert!(server.is_https());
    assert_eq!(server.url(), format!("https://{}/", server.local_addr()));
    assert_eq!(
        server.metrics_url(),
        format!("https://{}/metrics", server.local_addr())
    );

    let answer = scrape_https(server.local_addr(), &certificate);
    assert_eq!(answer.status, 200);
    assert_eq!(
        answer.body,
        "# HELP tls_scrapes_total tls.scrapes\n# TYPE tls_scrapes_total counter\ntls_scrapes_total 3\n"
    );

    // Plain HTTP on the TLS port is not answered in clear text.
    let answer = send_and_read_to_end(
        &mut raw(server.local_addr()),
        b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n",
    );
    assert!(!answer.contains("tls_scrapes_total"), "{answer:?}");
    assert_eq!(scrape_https(server.local_addr(), &certificate).status, 200);
    server.close().expect("closes");
    let stats = server.stats();
    assert_eq!((stats.accepted, stats.failed), (3, 1));
}

#[test]
fn a_client_that_never_finishes_the_handshake_is_cut_off() {
    let (certificate, tls) = self_signed();
    let config = ServerConfig::new("127.0.0.1:0".parse().expect("address"))
        .tls(tls)
        .header_read_timeout(Duration::from_millis(300));
    let server = ThreadedMetricsServer::start(Registry::new(), config).expect("server starts");
    let mut silent = raw(server.local_addr());
    assert_eq!(scrape_https(server.local_addr(), &certificate).status, 200);
    assert_eq!(read_to_end(&mut silent), "");
    server.close().expect("closes");
}
