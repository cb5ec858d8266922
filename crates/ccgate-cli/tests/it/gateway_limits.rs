//! Protection against slow and oversized requests, and an upstream that
//! drops pooled connections.

use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::support::echo::Echo;
use crate::support::free_port;
use crate::support::gateway::{Ccgate, TempDir};

async fn gateway(upstream: &str) -> (Ccgate, TempDir) {
    let web = free_port();
    let dir = TempDir::new();
    let config = format!(
        "entryPoints:\n  web: {{ address: \"127.0.0.1:{web}\" }}\nhttp:\n  routers:\n    all: {{ rule: \"PathPrefix(`/`)\", service: up }}\n  services:\n    up: {{ loadBalancer: {{ servers: [{{ url: \"{upstream}\" }}] }} }}\n"
    );
    let path = dir.write("ccgate.yaml", &config);
    (Ccgate::start(&path, &[("web", web)]).await, dir)
}

#[tokio::test]
async fn oversized_headers_are_refused() {
    let echo = Echo::start().await;
    let (ccgate, _dir) = gateway(&echo.url).await;
    let mut stream = tokio::net::TcpStream::connect(("127.0.0.1", ccgate.ports["web"]))
        .await
        .unwrap();
    let huge = "a".repeat(100 * 1024);
    let request = format!("GET / HTTP/1.1\r\nHost: x\r\nX-Huge: {huge}\r\n\r\n");
    let _ = stream.write_all(request.as_bytes()).await;
    let mut answer = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(10), stream.read_to_end(&mut answer)).await;
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 431"), "{answer:?}");
    assert_eq!(echo.hits(), 0);
}

#[tokio::test]
async fn a_client_too_slow_to_send_its_headers_is_cut_off() {
    let echo = Echo::start().await;
    let (ccgate, _dir) = gateway(&echo.url).await;
    let mut stream = tokio::net::TcpStream::connect(("127.0.0.1", ccgate.ports["web"]))
        .await
        .unwrap();
    stream
        .write_all(b"GET / HTTP/1.1\r\nHost: x\r\n")
        .await
        .unwrap();
    let started = Instant::now();
    let mut answer = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(20), stream.read_to_end(&mut answer)).await;
    assert!(
        read.is_ok(),
        "the connection is closed by the header-read timeout"
    );
    let waited = started.elapsed();
    assert!(
        waited >= Duration::from_secs(9) && waited < Duration::from_secs(15),
        "{waited:?}"
    );
    assert_eq!(echo.hits(), 0);
}

/// A FAKE upstream (a real one cannot be told to do this on demand):
/// answers each request with `Connection: keep-alive` semantics, then
/// closes the socket right away, so ccgate's pooled connection is stale
/// when the next request comes.
async fn closing_upstream() -> (String, tokio::task::JoinHandle<()>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let task = tokio::spawn(async move {
        loop {
            let Ok((mut stream, _)) = listener.accept().await else {
                continue;
            };
            tokio::spawn(async move {
                let mut buffer = vec![0u8; 4096];
                let mut head = Vec::new();
                while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                    match stream.read(&mut buffer).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => head.extend_from_slice(&buffer[..n]),
                    }
                }
                let _ = stream
                    .write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
                    .await;
                let _ = stream.flush().await;
                // Close without saying so: the client pooled this connection.
            });
        }
    });
    (url, task)
}

#[tokio::test]
async fn a_stale_pooled_connection_is_retried_on_a_new_one() {
    let (url, _server) = closing_upstream().await;
    let (ccgate, _dir) = gateway(&url).await;
    let client = reqwest::Client::builder().no_proxy().build().unwrap();
    // Back to back, so that some requests go out on a connection whose
    // close is still on its way. (With hyper's `retry_canceled_requests`
    // turned off, this fails within a few dozen requests with a 502.)
    for i in 0..200 {
        let response = client
            .get(format!("{}/x", ccgate.url("web")))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200, "request {i}");
    }
}
