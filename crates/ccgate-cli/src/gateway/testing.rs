//! Test support for the gateway's unit tests: a configuration from YAML
//! text, and a gateway serving it on 127.0.0.1 in this test's runtime, to
//! be spoken to over raw sockets.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use hyper_util::server::graceful::GracefulShutdown;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;
use tokio::sync::watch;

use super::handler::Gateway;
use super::listener::EntryPoint;
use super::metrics::GatewayMetrics;
use super::routing::Routing;
use super::upstream::UpstreamPool;
use crate::config::{self, Config};

/// The configuration whose main file holds `yaml`; `{upstream}` in it is
/// replaced by `upstream`.
pub(crate) fn config(yaml: &str) -> Config {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    let dir: PathBuf = std::env::temp_dir().join(format!(
        "ccgate-gateway-test-{}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    ));
    std::fs::create_dir_all(&dir).expect("temporary directory");
    let path = dir.join("ccgate.yaml");
    std::fs::write(&path, yaml).expect("write the configuration");
    let loaded = config::load(&path);
    let _ = std::fs::remove_dir_all(&dir);
    loaded.unwrap_or_else(|error| panic!("invalid test configuration: {error}"))
}

/// A running gateway: the address of each entry point, by name.
pub(crate) struct Running {
    addresses: Vec<(String, SocketAddr)>,
    _stop: watch::Sender<bool>,
}

impl Running {
    /// Where entry point `name` listens.
    pub(crate) fn address(&self, name: &str) -> SocketAddr {
        self.addresses
            .iter()
            .find(|(n, _)| n == name)
            .map_or_else(|| panic!("no entry point {name}"), |(_, a)| *a)
    }
}

/// Serves `config` in the current runtime, every entry point on a free
/// port of 127.0.0.1 (their configured addresses are ignored).
pub(crate) fn serve(config: &Config) -> Running {
    let metrics = Arc::new(GatewayMetrics::new());
    let routing = Routing::compile(config, &metrics).expect("routing compiles");
    let gateway = Arc::new(Gateway::new(config, routing, &metrics, None));
    let upstream = Arc::new(UpstreamPool::default());
    let graceful = Arc::new(GracefulShutdown::new());
    let (stop, stopped) = watch::channel(false);
    let mut addresses = Vec::new();
    for (name, configured) in &config.entry_points {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        listener.set_nonblocking(true).expect("non-blocking");
        addresses.push((name.clone(), listener.local_addr().expect("address")));
        let entry_point = EntryPoint {
            name: Arc::from(name.as_str()),
            listener,
            tls: None,
            edge: Arc::new(configured.edge.clone()),
            transport: crate::config::Transport::default(),
            connections: Arc::new(tokio::sync::Semaphore::new(1000)),
        };
        tokio::spawn(entry_point.serve(
            Arc::clone(&gateway),
            Arc::clone(&upstream),
            Arc::clone(&graceful),
            stopped.clone(),
        ));
    }
    Running {
        addresses,
        _stop: stop,
    }
}

/// Sends `request` (raw bytes, sent as they are) to `address` and reads
/// until the server closes the connection or `Connection: close` takes
/// effect; the request should ask for `Connection: close`.
pub(crate) async fn exchange(address: SocketAddr, request: &str) -> String {
    let mut stream = TcpStream::connect(address).await.expect("connect");
    stream
        .write_all(request.as_bytes())
        .await
        .expect("write the request");
    let mut answer = Vec::new();
    let read = tokio::time::timeout(
        std::time::Duration::from_secs(10),
        stream.read_to_end(&mut answer),
    )
    .await;
    assert!(read.is_ok(), "no complete answer within 10 s");
    String::from_utf8_lossy(&answer).into_owned()
}

/// The status code of a raw HTTP/1.1 answer.
pub(crate) fn status(answer: &str) -> u16 {
    answer
        .split(' ')
        .nth(1)
        .and_then(|code| code.parse().ok())
        .unwrap_or_else(|| panic!("not an HTTP answer: {answer:?}"))
}
