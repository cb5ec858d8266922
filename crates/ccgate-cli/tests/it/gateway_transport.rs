//! SPEC §10 timeouts and connection limits, as an attacker meets them:
//! raw sockets that connect and say nothing, trickle a body, sit idle,
//! or hold every connection an entry point allows.

use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::support::echo::Echo;
use crate::support::free_port;
use crate::support::gateway::{Ccgate, TempDir};

/// `ccgate serve` with one entry point `web` whose `transport` is
/// `transport` (YAML flow mapping), proxying everything to `upstream`.
async fn gateway(transport: &str, upstream: &str) -> (Ccgate, TempDir) {
    let web = free_port();
    let dir = TempDir::new();
    let config = format!(
        "entryPoints:\n  web: {{ address: \"127.0.0.1:{web}\", transport: {transport} }}\nhttp:\n  routers:\n    all: {{ rule: \"PathPrefix(`/`)\", service: up }}\n  services:\n    up: {{ loadBalancer: {{ servers: [{{ url: \"{upstream}\" }}] }} }}\n"
    );
    let path = dir.write("ccgate.yaml", &config);
    (Ccgate::start(&path, &[("web", web)]).await, dir)
}

async fn connect(ccgate: &Ccgate) -> TcpStream {
    TcpStream::connect(("127.0.0.1", ccgate.ports["web"]))
        .await
        .expect("connect")
}

/// Reads one response (head and `Content-Length` body) off `stream`.
async fn read_response(stream: &mut TcpStream) -> String {
    let mut data = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        if let Some(end) = data.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&data[..end]).to_ascii_lowercase();
            let length: usize = head
                .lines()
                .find_map(|line| line.strip_prefix("content-length:"))
                .map_or(0, |n| n.trim().parse().expect("a length"));
            if data.len() >= end + 4 + length {
                return String::from_utf8_lossy(&data).into_owned();
            }
        }
        let n = stream.read(&mut chunk).await.expect("read");
        assert!(
            n > 0,
            "closed mid-response: {:?}",
            String::from_utf8_lossy(&data)
        );
        data.extend_from_slice(&chunk[..n]);
    }
}

/// Reads until the server closes `stream` (at most `limit`), returning
/// how long that took.
async fn closed_after(stream: &mut TcpStream, limit: Duration) -> Duration {
    let started = Instant::now();
    let mut sink = Vec::new();
    let read = tokio::time::timeout(limit, stream.read_to_end(&mut sink)).await;
    assert!(read.is_ok(), "still open after {limit:?}");
    started.elapsed()
}

const GET: &[u8] = b"GET /x HTTP/1.1\r\nHost: x\r\n\r\n";

#[tokio::test]
async fn a_connection_that_sends_nothing_is_closed_after_10_s() {
    let echo = Echo::start().await;
    let (ccgate, _dir) = gateway("{}", &echo.url).await;
    let mut silent = connect(&ccgate).await;
    let waited = closed_after(&mut silent, Duration::from_secs(20)).await;
    assert!(
        waited >= Duration::from_secs(9) && waited < Duration::from_secs(15),
        "{waited:?}"
    );
    assert_eq!(echo.hits(), 0);
}

#[tokio::test]
async fn a_body_trickled_past_read_timeout_is_cut_off() {
    let echo = Echo::start().await;
    let (ccgate, _dir) = gateway("{ respondingTimeouts: { readTimeout: 1s } }", &echo.url).await;
    let stream = connect(&ccgate).await;
    let (mut reader, mut writer) = stream.into_split();
    let started = Instant::now();
    writer
        .write_all(b"POST /upload HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n")
        .await
        .unwrap();
    // One byte every 100 ms: 10 s for the whole body, were it let through.
    let trickle = tokio::spawn(async move {
        let mut sent = 0;
        while sent < 100 && writer.write_all(b"x").await.is_ok() {
            sent += 1;
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        sent
    });
    let mut answer = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(8), reader.read_to_end(&mut answer)).await;
    let waited = started.elapsed();
    assert!(read.is_ok(), "the trickling client is still connected");
    assert!(
        waited >= Duration::from_millis(900) && waited < Duration::from_secs(5),
        "{waited:?}"
    );
    let answer = String::from_utf8_lossy(&answer);
    assert!(!answer.starts_with("HTTP/1.1 200"), "{answer}");
    let sent = trickle.await.unwrap();
    assert!(sent < 100, "the whole body went through ({sent} bytes)");
}

#[tokio::test]
async fn an_idle_kept_alive_connection_is_closed_after_idle_timeout() {
    let echo = Echo::start().await;
    let (ccgate, _dir) = gateway("{ respondingTimeouts: { idleTimeout: 1s } }", &echo.url).await;
    let mut stream = connect(&ccgate).await;
    stream.write_all(GET).await.unwrap();
    assert!(read_response(&mut stream).await.starts_with("HTTP/1.1 200"));
    let waited = closed_after(&mut stream, Duration::from_secs(10)).await;
    assert!(
        waited >= Duration::from_millis(900) && waited < Duration::from_secs(4),
        "{waited:?}"
    );
}

#[tokio::test]
async fn by_default_a_kept_alive_connection_outlives_the_header_timeout() {
    // hyper's header timer used to run through the wait between
    // requests, closing kept-alive connections after 10 s.
    let echo = Echo::start().await;
    let (ccgate, _dir) = gateway("{}", &echo.url).await;
    let mut stream = connect(&ccgate).await;
    stream.write_all(GET).await.unwrap();
    read_response(&mut stream).await;
    tokio::time::sleep(Duration::from_secs(12)).await;
    stream.write_all(GET).await.unwrap();
    assert!(read_response(&mut stream).await.starts_with("HTTP/1.1 200"));
}

#[tokio::test]
async fn past_max_connections_a_new_connection_waits_until_one_closes() {
    let echo = Echo::start().await;
    let (ccgate, _dir) = gateway("{ maxConnections: 5 }", &echo.url).await;
    let mut open = Vec::new();
    for _ in 0..5 {
        let mut stream = connect(&ccgate).await;
        stream.write_all(GET).await.unwrap();
        assert!(read_response(&mut stream).await.starts_with("HTTP/1.1 200"));
        open.push(stream);
    }
    // The kernel completes the handshake (the backlog), but ccgate does
    // not accept the sixth connection: its request stays unanswered.
    let mut sixth = connect(&ccgate).await;
    sixth.write_all(GET).await.unwrap();
    let mut byte = [0u8; 1];
    let early = tokio::time::timeout(Duration::from_secs(1), sixth.read(&mut byte)).await;
    assert!(early.is_err(), "the sixth connection was served");
    // One of the five closes: the sixth is accepted and served.
    drop(open.pop());
    let answer = tokio::time::timeout(Duration::from_secs(5), read_response(&mut sixth))
        .await
        .expect("served once a connection closed");
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    // The four others still work.
    for stream in &mut open {
        stream.write_all(GET).await.unwrap();
        assert!(read_response(stream).await.starts_with("HTTP/1.1 200"));
    }
}

#[tokio::test]
async fn an_invalid_duration_is_a_config_error_naming_the_field() {
    let dir = TempDir::new();
    let path = dir.write(
        "ccgate.yaml",
        "entryPoints:\n  web: { address: \"127.0.0.1:1\", transport: { respondingTimeouts: { idleTimeout: 10 parsecs } } }\n",
    );
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_ccgate"))
        .args(["check", "-c"])
        .arg(&path)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("ccgate.yaml: entryPoints.web.transport.respondingTimeouts.idleTimeout: invalid duration \"10 parsecs\""),
        "{stderr}"
    );
}
