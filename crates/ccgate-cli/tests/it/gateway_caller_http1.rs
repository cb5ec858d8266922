//! The gateway's own HTTP/1.1 path on the caller side (body-less requests;
//! `src/gateway/h1_server.rs`) and its hand-over to hyper, seen through
//! raw sockets against the real binary and an echo upstream: pipelined
//! requests, a body or an upgrade mid-connection, bytes behind a `GET`
//! that try to pass for a request, hyper's refusals on a connection the
//! own path served first, HTTP/1.0, `Connection: close` and shutdown.

use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

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

async fn connect(ccgate: &Ccgate) -> TcpStream {
    TcpStream::connect(("127.0.0.1", ccgate.ports["web"]))
        .await
        .expect("connect")
}

/// One answer read off `stream`, framed by its `Content-Length`: status,
/// head and body.
async fn answer(stream: &mut TcpStream) -> (u16, String, String) {
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        let n = tokio::time::timeout(Duration::from_secs(10), stream.read(&mut byte))
            .await
            .expect("an answer in time")
            .expect("read");
        assert_eq!(
            n,
            1,
            "closed mid-head: {:?}",
            String::from_utf8_lossy(&head)
        );
        head.push(byte[0]);
    }
    let head = String::from_utf8(head).expect("an ASCII head");
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .expect("a status");
    let length: usize = head
        .lines()
        .find_map(|line| {
            let (name, value) = line.split_once(':')?;
            name.eq_ignore_ascii_case("content-length")
                .then(|| value.trim().parse().ok())?
        })
        .unwrap_or_else(|| panic!("no Content-Length in {head:?}"));
    let mut body = vec![0u8; length];
    stream.read_exact(&mut body).await.expect("body");
    (status, head, String::from_utf8_lossy(&body).into_owned())
}

/// The path and body size the echo upstream saw, from its answer.
fn echoed(body: &str) -> (String, u64) {
    let json: serde_json::Value = serde_json::from_str(body).expect("the echo's JSON");
    (
        json["path"].as_str().expect("path").to_owned(),
        json["body_size"].as_u64().expect("body_size"),
    )
}

async fn send(stream: &mut TcpStream, bytes: &[u8]) {
    stream.write_all(bytes).await.expect("write");
}

/// Whether `stream` is closed by the gateway within `limit`.
async fn closed_within(stream: &mut TcpStream, limit: Duration) -> bool {
    let mut rest = Vec::new();
    matches!(
        tokio::time::timeout(limit, stream.read_to_end(&mut rest)).await,
        Ok(Ok(_))
    )
}

#[tokio::test]
async fn pipelined_requests_are_answered_in_order_on_one_connection() {
    let echo = Echo::start().await;
    let (ccgate, _dir) = gateway(&echo.url).await;
    let mut stream = connect(&ccgate).await;
    send(
        &mut stream,
        b"GET /one HTTP/1.1\r\nHost: x\r\n\r\nGET /two HTTP/1.1\r\nHost: x\r\n\r\n\
          DELETE /three HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n",
    )
    .await;
    for path in ["/one", "/two", "/three"] {
        let (status, head, body) = answer(&mut stream).await;
        assert_eq!(status, 200, "{head}");
        assert_eq!(echoed(&body).0, path);
    }
    assert_eq!(echo.hits(), 3);
}

#[tokio::test]
async fn a_request_with_a_body_moves_the_connection_to_hyper_with_every_byte() {
    let echo = Echo::start().await;
    let (ccgate, _dir) = gateway(&echo.url).await;
    let mut stream = connect(&ccgate).await;
    send(&mut stream, b"GET /first HTTP/1.1\r\nHost: x\r\n\r\n").await;
    assert_eq!(echoed(&answer(&mut stream).await.2).0, "/first");
    // A body, and a request behind it in the same write: hyper reads both.
    send(
        &mut stream,
        b"POST /body HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello\
          GET /behind HTTP/1.1\r\nHost: x\r\n\r\n",
    )
    .await;
    assert_eq!(
        echoed(&answer(&mut stream).await.2),
        ("/body".to_owned(), 5)
    );
    assert_eq!(echoed(&answer(&mut stream).await.2).0, "/behind");
    send(&mut stream, b"GET /last HTTP/1.1\r\nHost: x\r\n\r\n").await;
    assert_eq!(echoed(&answer(&mut stream).await.2).0, "/last");
    assert_eq!(echo.hits(), 4);
}

#[tokio::test]
async fn bytes_behind_a_get_with_a_length_are_its_body_never_a_request() {
    let echo = Echo::start().await;
    let (ccgate, _dir) = gateway(&echo.url).await;
    let mut stream = connect(&ccgate).await;
    send(&mut stream, b"GET /first HTTP/1.1\r\nHost: x\r\n\r\n").await;
    answer(&mut stream).await;
    let smuggled = "GET /smuggled HTTP/1.1\r\nHost: x\r\n\r\n";
    send(
        &mut stream,
        format!(
            "GET /a HTTP/1.1\r\nHost: x\r\nContent-Length: {}\r\n\r\n{smuggled}",
            smuggled.len()
        )
        .as_bytes(),
    )
    .await;
    let (status, _, body) = answer(&mut stream).await;
    assert_eq!(status, 200);
    assert_eq!(echoed(&body), ("/a".to_owned(), smuggled.len() as u64));
    send(&mut stream, b"GET /after HTTP/1.1\r\nHost: x\r\n\r\n").await;
    assert_eq!(echoed(&answer(&mut stream).await.2).0, "/after");
    assert_eq!(echo.hits(), 3, "/smuggled never reached the upstream");
}

#[tokio::test]
async fn hypers_refusals_hold_on_a_connection_the_own_path_served_first() {
    let echo = Echo::start().await;
    let (ccgate, _dir) = gateway(&echo.url).await;
    let huge = format!(
        "GET / HTTP/1.1\r\nHost: x\r\nX-Huge: {}\r\n\r\n",
        "a".repeat(70 * 1024)
    );
    let cases: [(&[u8], u16); 5] = [
        (b"GET / HTTP/1.1\r\nHost: x\r\nX-A: 1\r\n 2\r\n\r\n", 400),
        (b"GET / HTTP/1.1\r\nHost: x\r\nX-A: 1\x002\r\n\r\n", 400),
        (
            b"GET / HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\nContent-Length: 3\r\n\r\nabc",
            400,
        ),
        (
            b"GET / HTTP/1.1\r\nHost: x\r\nContent-Length : 0\r\n\r\n",
            400,
        ),
        (huge.as_bytes(), 431),
    ];
    for (n, (request, refused)) in cases.into_iter().enumerate() {
        let mut stream = connect(&ccgate).await;
        send(&mut stream, b"GET /first HTTP/1.1\r\nHost: x\r\n\r\n").await;
        assert_eq!(answer(&mut stream).await.0, 200);
        let _ = stream.write_all(request).await;
        let mut rest = Vec::new();
        let _ = tokio::time::timeout(Duration::from_secs(10), stream.read_to_end(&mut rest)).await;
        let rest = String::from_utf8_lossy(&rest);
        assert!(
            rest.starts_with(&format!("HTTP/1.1 {refused} ")),
            "case {n}: {rest:?}"
        );
        assert_eq!(echo.hits(), n + 1, "case {n} never reached the upstream");
    }
}

#[tokio::test]
async fn http_1_0_and_bare_line_feeds_are_answered_as_hyper_answers_them() {
    let echo = Echo::start().await;
    let (ccgate, _dir) = gateway(&echo.url).await;
    let mut stream = connect(&ccgate).await;
    // Bare LF line ends: httparse (hyper's tokenizer) accepts them.
    send(&mut stream, b"GET /lf HTTP/1.1\nHost: x\n\n").await;
    assert_eq!(echoed(&answer(&mut stream).await.2).0, "/lf");
    // HTTP/1.0 is hyper's: kept alive when it asks to be.
    send(
        &mut stream,
        b"GET /ten HTTP/1.0\r\nHost: x\r\nConnection: keep-alive\r\n\r\n",
    )
    .await;
    let (status, head, body) = answer(&mut stream).await;
    assert_eq!(status, 200);
    assert_eq!(echoed(&body).0, "/ten");
    assert!(
        head.to_ascii_lowercase().contains("connection: keep-alive"),
        "{head}"
    );
    send(&mut stream, b"GET /again HTTP/1.0\r\nHost: x\r\n\r\n").await;
    assert_eq!(echoed(&answer(&mut stream).await.2).0, "/again");
    assert!(
        closed_within(&mut stream, Duration::from_secs(5)).await,
        "HTTP/1.0 without keep-alive closes"
    );
}

#[tokio::test]
async fn connection_close_is_answered_so_and_the_connection_closed() {
    let echo = Echo::start().await;
    let (ccgate, _dir) = gateway(&echo.url).await;
    let mut stream = connect(&ccgate).await;
    send(
        &mut stream,
        b"GET /bye HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\nGET /never HTTP/1.1\r\nHost: x\r\n\r\n",
    )
    .await;
    let (status, head, body) = answer(&mut stream).await;
    assert_eq!(status, 200);
    assert_eq!(echoed(&body).0, "/bye");
    assert!(head.contains("\r\nconnection: close\r\n"), "{head}");
    assert!(head.contains("\r\ndate: "), "{head}");
    assert!(closed_within(&mut stream, Duration::from_secs(5)).await);
    assert_eq!(echo.hits(), 1, "nothing after the request that closed");
}

#[tokio::test]
async fn shutdown_closes_idle_connections_and_lets_one_in_flight_finish() {
    let echo = Echo::start().await;
    let (mut ccgate, _dir) = gateway(&echo.url).await;
    let mut idle = connect(&ccgate).await;
    send(&mut idle, b"GET /idle HTTP/1.1\r\nHost: x\r\n\r\n").await;
    assert_eq!(answer(&mut idle).await.0, 200);
    let mut busy = connect(&ccgate).await;
    send(
        &mut busy,
        b"GET /slow HTTP/1.1\r\nHost: x\r\nx-upstream-delay-ms: 1500\r\n\r\n",
    )
    .await;
    echo.until_hits(2).await;
    ccgate.terminate();
    assert!(
        closed_within(&mut idle, Duration::from_secs(5)).await,
        "the idle connection is closed"
    );
    let (status, head, body) = answer(&mut busy).await;
    assert_eq!(status, 200);
    assert_eq!(echoed(&body).0, "/slow");
    assert!(head.contains("\r\nconnection: close\r\n"), "{head}");
    assert!(closed_within(&mut busy, Duration::from_secs(5)).await);
    assert_eq!(ccgate.wait(Duration::from_secs(10)).await, Some(0));
}
