//! SPEC §11 WebSocket, end to end: a real WebSocket client and server
//! (tokio-tungstenite) through `ccgate serve` with the middleware in
//! front and tokens from the real test IdP; hostile callers on raw
//! sockets (`Upgrade: h2c`, `Upgrade: foo`, an upgrade with a body) and a
//! FAKE server that answers `101` when it should not; `wss://` through a
//! TLS entry point to an `https://` server.

use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use rustls_pki_types::CertificateDer;
use rustls_pki_types::pem::PemObject;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::{self, Message};

use crate::support::echo::Echo;
use crate::support::gateway::{Ccgate, TempDir};
use crate::support::idp::Idp;
use crate::support::tls::Pki;
use crate::support::websocket::{CLOSE_PLEASE, WsServer};
use crate::support::{basic, free_port};

/// The middleware of these tests: application level, the caller's group
/// forwarded as `X-Group`, only `admin`s allowed.
const MIDDLEWARE: &str = "url: IDP\naudience: https://api.example.com\nforwardHeaders:\n  X-Group: grp\nclaims: Equals(`grp`, `admin`)";

/// `ccgate serve` with an entry point `web` (`transport` a YAML flow
/// mapping, or empty) and a router `/v1` through the middleware to
/// `upstream`; JSON access log, DEBUG log (the tunnels' ends).
async fn gateway(dir: &TempDir, idp: &Idp, upstream: &str, transport: &str) -> Ccgate {
    let web = free_port();
    let options = middleware_options(idp);
    let transport = if transport.is_empty() {
        String::new()
    } else {
        format!("    transport: {transport}\n")
    };
    let config = format!(
        r#"entryPoints:
  web:
    address: "127.0.0.1:{web}"
{transport}accessLog:
  format: json
log:
  level: DEBUG
http:
  routers:
    api:
      rule: "PathPrefix(`/v1`)"
      middlewares: [cc-auth]
      service: backend
  middlewares:
    cc-auth:
      plugin:
        oAuthClientCredentials:
{options}  services:
    backend:
      loadBalancer:
        servers:
          - url: "{upstream}"
"#
    );
    let path = dir.write("ccgate.yaml", &config);
    Ccgate::start(&path, &[("web", web)]).await
}

/// [`MIDDLEWARE`] for `idp`, indented as the plugin's options.
fn middleware_options(idp: &Idp) -> String {
    MIDDLEWARE
        .replace("IDP", idp.token_endpoint())
        .lines()
        .map(|l| format!("          {l}\n"))
        .collect()
}

type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// Opens a WebSocket to `path` through ccgate as the client `id:secret`.
async fn connect(
    ccgate: &Ccgate,
    path: &str,
    id: &str,
    secret: &str,
) -> Result<(Socket, tungstenite::handshake::client::Response), tungstenite::Error> {
    let url = format!("ws://127.0.0.1:{}{path}", ccgate.ports["web"]);
    let mut request = url.into_client_request().expect("a request");
    request
        .headers_mut()
        .insert("authorization", basic(id, secret).parse().unwrap());
    request
        .headers_mut()
        .insert("x-group", "spoofed".parse().unwrap());
    tokio::time::timeout(
        Duration::from_secs(10),
        tokio_tungstenite::connect_async(request),
    )
    .await
    .expect("the handshake ends in time")
}

/// The next message, at most 10 s away (`None`: the stream ended).
async fn next(socket: &mut Socket) -> Option<Result<Message, tungstenite::Error>> {
    tokio::time::timeout(Duration::from_secs(10), socket.next())
        .await
        .expect("a message or the end in time")
}

/// Writes `request` on a new connection to ccgate's `web` and reads the
/// answer: its head and its `Content-Length` body (at most 10 s).
async fn raw(ccgate: &Ccgate, request: &str) -> String {
    let mut stream = tokio::net::TcpStream::connect(("127.0.0.1", ccgate.ports["web"]))
        .await
        .unwrap();
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut answer = Vec::new();
    let mut buffer = [0u8; 4096];
    let read = async {
        loop {
            if let Some(end) = answer.windows(4).position(|w| w == b"\r\n\r\n") {
                let head = String::from_utf8_lossy(&answer[..end]).to_ascii_lowercase();
                let length = head
                    .lines()
                    .find_map(|line| line.strip_prefix("content-length: "))
                    .and_then(|length| length.trim().parse::<usize>().ok())
                    .unwrap_or(0);
                if answer.len() >= end + 4 + length {
                    break;
                }
            }
            match stream.read(&mut buffer).await {
                Ok(0) | Err(_) => break,
                Ok(n) => answer.extend_from_slice(&buffer[..n]),
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(10), read)
        .await
        .expect("an answer in time");
    String::from_utf8_lossy(&answer).into_owned()
}

/// The JSON the echo upstream answered with, from a raw answer.
fn echoed(answer: &str) -> serde_json::Value {
    let body = &answer[answer.find("\r\n\r\n").expect("a head") + 4..];
    serde_json::from_str(body).unwrap_or_else(|_| panic!("not the echo's JSON: {answer}"))
}

#[tokio::test]
async fn messages_flow_both_ways_and_the_server_sees_the_token_on_the_handshake() {
    let (idp, server, dir) = (Idp::start().await, WsServer::start().await, TempDir::new());
    let ccgate = gateway(&dir, &idp, &server.url, "").await;
    let (mut socket, response) = connect(&ccgate, "/v1/chat", "basic-client", "basic-secret")
        .await
        .expect("the upgrade goes through");
    assert_eq!(response.status(), 101);
    socket.send(Message::text("hello")).await.unwrap();
    assert_eq!(
        next(&mut socket).await.unwrap().unwrap(),
        Message::text("echo: hello")
    );
    socket.send(Message::binary(vec![1u8, 2, 3])).await.unwrap();
    assert_eq!(
        next(&mut socket).await.unwrap().unwrap(),
        Message::binary(vec![3u8, 2, 1])
    );
    // A message larger than any one read, both ways.
    let large = "x".repeat(256 * 1024);
    socket.send(Message::text(large.clone())).await.unwrap();
    assert_eq!(
        next(&mut socket).await.unwrap().unwrap(),
        Message::text(format!("echo: {large}"))
    );
    let handshakes = server.handshakes();
    assert_eq!(handshakes.len(), 1);
    let seen = &handshakes[0];
    let authorization = seen["authorization"].to_str().unwrap();
    assert!(authorization.starts_with("Bearer ey"), "{authorization}");
    assert_eq!(seen["x-group"], "admin", "the claim, not the caller's");
    assert_eq!(seen.get_all("x-group").iter().count(), 1);
    assert_eq!(seen["upgrade"], "websocket");
    assert_eq!(seen["connection"], "upgrade");
    assert!(seen.contains_key("sec-websocket-key"));
    assert_eq!(seen["sec-websocket-version"], "13");
    assert_eq!(seen["x-forwarded-for"], "127.0.0.1");
    socket.close(None).await.unwrap();
    // Both sides gone: the tunnel ends (a side that stays half open
    // would keep it until the idle timeout).
    drop(socket);
    ccgate.until_printed(r#""DownstreamStatus":101"#).await;
    ccgate.until_printed(r#""OriginStatus":101"#).await;
    ccgate.until_logged("websocket tunnel ended").await;
    // Neither the caller's secret nor the token in any output.
    let token = authorization.trim_start_matches("Bearer ");
    for output in [ccgate.stderr(), ccgate.stdout()] {
        assert!(!output.contains("basic-secret"), "{output}");
        assert!(!output.contains(token), "{output}");
    }
}

#[tokio::test]
async fn a_close_from_the_caller_ends_the_tunnel() {
    let (idp, server, dir) = (Idp::start().await, WsServer::start().await, TempDir::new());
    let ccgate = gateway(&dir, &idp, &server.url, "").await;
    let (mut socket, _) = connect(&ccgate, "/v1/chat", "basic-client", "basic-secret")
        .await
        .unwrap();
    socket.send(Message::text("hi")).await.unwrap();
    assert_eq!(
        next(&mut socket).await.unwrap().unwrap(),
        Message::text("echo: hi")
    );
    socket.close(None).await.unwrap();
    // The server's answering close, then the end of the stream: the
    // server closed its side and ccgate passed that on.
    loop {
        match next(&mut socket).await {
            Some(Ok(Message::Close(_))) => {}
            None | Some(Err(tungstenite::Error::ConnectionClosed)) => break,
            other => panic!("{other:?}"),
        }
    }
    server.until_ended(1).await;
}

#[tokio::test]
async fn a_close_from_the_server_ends_the_tunnel() {
    let (idp, server, dir) = (Idp::start().await, WsServer::start().await, TempDir::new());
    let ccgate = gateway(&dir, &idp, &server.url, "").await;
    let (mut socket, _) = connect(&ccgate, "/v1/chat", "basic-client", "basic-secret")
        .await
        .unwrap();
    socket.send(Message::text(CLOSE_PLEASE)).await.unwrap();
    assert!(
        matches!(next(&mut socket).await, Some(Ok(Message::Close(_)))),
        "the server's close frame comes through"
    );
    // tungstenite answers the close; the server then closes TCP.
    match next(&mut socket).await {
        None | Some(Err(tungstenite::Error::ConnectionClosed)) => {}
        other => panic!("{other:?}"),
    }
    server.until_ended(1).await;
}

#[tokio::test]
async fn a_denied_handshake_never_reaches_the_server() {
    let (idp, server, dir) = (Idp::start().await, WsServer::start().await, TempDir::new());
    let ccgate = gateway(&dir, &idp, &server.url, "").await;
    for (id, secret, status) in [
        ("basic-client", "wrong", 401),
        // Its group is not `admin`: the claims fail.
        ("tester-client", "tester-secret", 403),
    ] {
        match connect(&ccgate, "/v1/chat", id, secret).await {
            Err(tungstenite::Error::Http(response)) => {
                assert_eq!(response.status(), status, "{id}");
            }
            other => panic!("{id}: {:?}", other.map(|(_, response)| response)),
        }
    }
    assert!(server.handshakes().is_empty());
}

#[tokio::test]
async fn h2c_and_other_upgrades_never_reach_the_server() {
    let (idp, echo, dir) = (Idp::start().await, Echo::start().await, TempDir::new());
    let ccgate = gateway(&dir, &idp, &echo.url, "").await;
    let authorization = basic("basic-client", "basic-secret");
    // The h2c smuggling request (RFC 7540 §3.2), and an unknown protocol:
    // both answered as the plain GETs they also are.
    for (upgrade, connection) in [
        ("h2c", "Upgrade, HTTP2-Settings"),
        ("foo", "Upgrade"),
        ("websocket/13", "Upgrade"),
    ] {
        let answer = raw(
            &ccgate,
            &format!(
                "GET /v1/x HTTP/1.1\r\nHost: api.example.com\r\nAuthorization: {authorization}\r\n\
                 Connection: {connection}\r\nUpgrade: {upgrade}\r\n\
                 HTTP2-Settings: AAMAAABkAARAAAAAAAIAAAAA\r\n\r\n"
            ),
        )
        .await;
        assert!(answer.starts_with("HTTP/1.1 200 "), "{upgrade}: {answer}");
        let seen = &echoed(&answer)["headers"];
        for header in ["upgrade", "connection", "http2-settings"] {
            assert!(seen.get(header).is_none(), "{upgrade}: {header} in {seen}");
        }
        assert!(
            seen["authorization"][0]
                .as_str()
                .unwrap()
                .starts_with("Bearer ")
        );
    }
    // `websocket` listed beside `h2c` goes as `websocket` alone.
    let answer = raw(
        &ccgate,
        &format!(
            "GET /v1/x HTTP/1.1\r\nHost: api.example.com\r\nAuthorization: {authorization}\r\n\
             Connection: Upgrade\r\nUpgrade: h2c, websocket\r\n\
             Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
        ),
    )
    .await;
    assert_eq!(
        echoed(&answer)["headers"]["upgrade"][0],
        "websocket",
        "{answer}"
    );
}

#[tokio::test]
async fn an_upgrade_on_a_request_with_a_body_is_a_plain_request() {
    let (idp, echo, dir) = (Idp::start().await, Echo::start().await, TempDir::new());
    let ccgate = gateway(&dir, &idp, &echo.url, "").await;
    let authorization = basic("basic-client", "basic-secret");
    let answer = raw(
        &ccgate,
        &format!(
            "GET /v1/x HTTP/1.1\r\nHost: api.example.com\r\nAuthorization: {authorization}\r\n\
             Connection: Upgrade\r\nUpgrade: websocket\r\nContent-Length: 5\r\n\r\nhello"
        ),
    )
    .await;
    assert!(answer.starts_with("HTTP/1.1 200 "), "{answer}");
    let seen = echoed(&answer);
    assert!(seen["headers"].get("upgrade").is_none(), "{seen}");
    assert_eq!(seen["body_size"], 5);
}

#[tokio::test]
async fn a_server_that_does_not_upgrade_answers_as_usual() {
    // The echo upstream speaks plain HTTP: it answers the handshake 200.
    let (idp, echo, dir) = (Idp::start().await, Echo::start().await, TempDir::new());
    let ccgate = gateway(&dir, &idp, &echo.url, "").await;
    let authorization = basic("basic-client", "basic-secret");
    let answer = raw(
        &ccgate,
        &format!(
            "GET /v1/x HTTP/1.1\r\nHost: api.example.com\r\nAuthorization: {authorization}\r\n\
             Connection: keep-alive, Upgrade\r\nUpgrade: WebSocket\r\n\
             Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\
             Sec-WebSocket-Protocol: chat\r\n\r\n"
        ),
    )
    .await;
    assert!(answer.starts_with("HTTP/1.1 200 "), "{answer}");
    let seen = &echoed(&answer)["headers"];
    assert_eq!(seen["upgrade"][0], "websocket");
    assert_eq!(seen["connection"][0], "upgrade");
    assert_eq!(seen["sec-websocket-protocol"][0], "chat");
    assert_eq!(seen["sec-websocket-key"][0], "dGhlIHNhbXBsZSBub25jZQ==");
}

/// A FAKE upstream (a real server does not switch protocols unasked, nor
/// to another protocol than asked): answers every request with `101` and
/// `Upgrade: upgrade`, then bytes of the "new protocol", and keeps the
/// connection open. Returns its URL and the requests' heads it read.
async fn switching_server(
    upgrade: &'static str,
) -> (String, std::sync::Arc<std::sync::Mutex<Vec<String>>>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let heads = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let seen = std::sync::Arc::clone(&heads);
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            let seen = std::sync::Arc::clone(&seen);
            tokio::spawn(async move {
                let mut head = Vec::new();
                let mut buffer = [0u8; 4096];
                while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                    match stream.read(&mut buffer).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => head.extend_from_slice(&buffer[..n]),
                    }
                }
                seen.lock()
                    .unwrap()
                    .push(String::from_utf8_lossy(&head).into_owned());
                let answer = format!(
                    "HTTP/1.1 101 Switching Protocols\r\nUpgrade: {upgrade}\r\nConnection: Upgrade\r\n\
                     Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\nSMUGGLED"
                );
                let _ = stream.write_all(answer.as_bytes()).await;
                let _ = stream.read(&mut buffer).await;
            });
        }
    });
    (url, heads)
}

#[tokio::test]
async fn a_101_that_was_not_asked_for_is_502_and_nothing_is_relayed() {
    let (url, heads) = switching_server("websocket").await;
    let (idp, dir) = (Idp::start().await, TempDir::new());
    let ccgate = gateway(&dir, &idp, &url, "").await;
    let authorization = basic("basic-client", "basic-secret");
    let answer = raw(
        &ccgate,
        &format!(
            "GET /v1/x HTTP/1.1\r\nHost: api.example.com\r\nAuthorization: {authorization}\r\n\r\n"
        ),
    )
    .await;
    assert!(answer.starts_with("HTTP/1.1 502 "), "{answer}");
    assert!(!answer.contains("SMUGGLED"), "{answer}");
    assert!(!answer.to_ascii_lowercase().contains("upgrade"), "{answer}");
    assert_eq!(heads.lock().unwrap().len(), 1);
    ccgate
        .until_logged("101 Switching Protocols to a request that did not ask to upgrade")
        .await;
}

#[tokio::test]
async fn a_101_to_another_protocol_than_websocket_is_502_and_nothing_is_relayed() {
    let (url, heads) = switching_server("h2c").await;
    let (idp, dir) = (Idp::start().await, TempDir::new());
    let ccgate = gateway(&dir, &idp, &url, "").await;
    match connect(&ccgate, "/v1/chat", "basic-client", "basic-secret").await {
        Err(tungstenite::Error::Http(response)) => {
            assert_eq!(response.status(), 502);
            let body = String::from_utf8_lossy(response.body().as_deref().unwrap_or_default())
                .into_owned();
            assert!(!body.contains("SMUGGLED"), "{body}");
        }
        other => panic!("{:?}", other.map(|(_, response)| response)),
    }
    let heads = heads.lock().unwrap().clone();
    assert_eq!(heads.len(), 1);
    assert!(heads[0].contains("upgrade: websocket\r\n"), "{}", heads[0]);
    ccgate
        .until_logged("the server switched to a protocol other than websocket")
        .await;
}

#[tokio::test]
async fn an_idle_tunnel_is_closed_after_the_idle_timeout() {
    let (idp, server, dir) = (Idp::start().await, WsServer::start().await, TempDir::new());
    let ccgate = gateway(
        &dir,
        &idp,
        &server.url,
        "{ respondingTimeouts: { idleTimeout: 300ms } }",
    )
    .await;
    let (mut socket, _) = connect(&ccgate, "/v1/chat", "basic-client", "basic-secret")
        .await
        .unwrap();
    socket.send(Message::text("hi")).await.unwrap();
    assert_eq!(
        next(&mut socket).await.unwrap().unwrap(),
        Message::text("echo: hi")
    );
    // Then nothing is sent: ccgate closes both sides, without a close
    // frame (it relays bytes, it does not speak WebSocket).
    match next(&mut socket).await {
        None | Some(Err(_)) => {}
        Some(Ok(message)) => panic!("{message:?}"),
    }
    server.until_ended(1).await;
    ccgate.until_logged("websocket tunnel ended").await;
    let stderr = ccgate.stderr();
    let line = stderr
        .lines()
        .find(|line| line.contains("websocket tunnel ended"))
        .unwrap();
    assert!(line.contains("idle"), "{line}");
}

#[tokio::test]
async fn a_tunnel_in_use_outlives_the_read_and_idle_timeouts() {
    // The connection's own deadlines are for requests: inside a tunnel
    // only the idle timeout applies, counted from the last byte.
    let (idp, server, dir) = (Idp::start().await, WsServer::start().await, TempDir::new());
    let ccgate = gateway(
        &dir,
        &idp,
        &server.url,
        "{ respondingTimeouts: { readTimeout: 400ms, idleTimeout: 400ms } }",
    )
    .await;
    let (mut socket, _) = connect(&ccgate, "/v1/chat", "basic-client", "basic-secret")
        .await
        .unwrap();
    for i in 0..8 {
        // The behaviour under test: time passing, 1.2 s in all (three
        // times either timeout), with bytes every 150 ms.
        tokio::time::sleep(Duration::from_millis(150)).await;
        socket.send(Message::text(format!("{i}"))).await.unwrap();
        assert_eq!(
            next(&mut socket).await.unwrap().unwrap(),
            Message::text(format!("echo: {i}"))
        );
    }
    assert_eq!(server.handshakes().len(), 1, "one tunnel all along");
}

#[tokio::test]
async fn shutdown_closes_open_tunnels_without_waiting_for_them() {
    let (idp, server, dir) = (Idp::start().await, WsServer::start().await, TempDir::new());
    let mut ccgate = gateway(&dir, &idp, &server.url, "").await;
    let (mut socket, _) = connect(&ccgate, "/v1/chat", "basic-client", "basic-secret")
        .await
        .unwrap();
    socket.send(Message::text("hi")).await.unwrap();
    assert_eq!(
        next(&mut socket).await.unwrap().unwrap(),
        Message::text("echo: hi")
    );
    ccgate.terminate();
    // No request is in flight: ccgate exits at once, and the tunnel's
    // two connections close with it.
    assert_eq!(ccgate.wait(Duration::from_secs(15)).await, Some(0));
    match next(&mut socket).await {
        None | Some(Err(_)) => {}
        Some(Ok(message)) => panic!("{message:?}"),
    }
    server.until_ended(1).await;
}

#[tokio::test]
async fn an_open_tunnel_holds_its_place_under_max_connections() {
    let (idp, server, dir) = (Idp::start().await, WsServer::start().await, TempDir::new());
    let ccgate = gateway(&dir, &idp, &server.url, "{ maxConnections: 1 }").await;
    let (mut socket, _) = connect(&ccgate, "/v1/chat", "basic-client", "basic-secret")
        .await
        .unwrap();
    // A second connection waits in the backlog while the tunnel is open...
    let second = tokio::spawn({
        let port = ccgate.ports["web"];
        async move {
            let mut stream = tokio::net::TcpStream::connect(("127.0.0.1", port))
                .await
                .unwrap();
            stream
                .write_all(b"GET /nowhere HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
                .await
                .unwrap();
            let mut answer = Vec::new();
            let _ = stream.read_to_end(&mut answer).await;
            String::from_utf8_lossy(&answer).into_owned()
        }
    });
    // ...so the tunnel still works, alone, and the second is unanswered.
    socket.send(Message::text("still here")).await.unwrap();
    assert_eq!(
        next(&mut socket).await.unwrap().unwrap(),
        Message::text("echo: still here")
    );
    assert!(!second.is_finished());
    // Closing the tunnel frees the place: the second is served.
    socket.close(None).await.unwrap();
    drop(socket);
    let answer = tokio::time::timeout(Duration::from_secs(10), second)
        .await
        .expect("served once the tunnel closed")
        .unwrap();
    assert!(answer.starts_with("HTTP/1.1 404 "), "{answer}");
}

#[tokio::test]
async fn http2_callers_are_not_offered_extended_connect() {
    // RFC 8441 (WebSocket over HTTP/2) needs the server's
    // SETTINGS_ENABLE_CONNECT_PROTOCOL; ccgate never sends it, so h2
    // resets a stream with `:protocol`, and HTTP/2 has no `Upgrade`.
    let (idp, echo, dir) = (Idp::start().await, Echo::start().await, TempDir::new());
    let ccgate = gateway(&dir, &idp, &echo.url, "").await;
    let stream = tokio::net::TcpStream::connect(("127.0.0.1", ccgate.ports["web"]))
        .await
        .unwrap();
    let (client, connection) = h2::client::handshake(stream).await.unwrap();
    tokio::spawn(connection);
    let mut client = client.ready().await.unwrap();
    let request = http::Request::get("http://api.example.com/v1/x")
        .header("authorization", basic("basic-client", "basic-secret"))
        .body(())
        .unwrap();
    let (response, _) = client.send_request(request, true).unwrap();
    let response = tokio::time::timeout(Duration::from_secs(10), response)
        .await
        .expect("an answer in time")
        .unwrap();
    assert_eq!(response.status(), 200);
    // The server's SETTINGS came before its answer, so they are known.
    assert!(!client.is_extended_connect_protocol_enabled());
}

#[tokio::test]
async fn wss_through_a_tls_entry_point_to_an_https_server() {
    let (idp, pki, dir) = (Idp::start().await, Pki::new(), TempDir::new());
    let server = WsServer::start_tls(&pki).await;
    dir.write("ca.pem", &pki.ca_pem);
    let secure = free_port();
    let config = format!(
        r#"entryPoints:
  secure:
    address: "127.0.0.1:{secure}"
    tls: {{ certFile: "{cert}", keyFile: "{key}" }}
http:
  routers:
    api:
      rule: "PathPrefix(`/v1`)"
      middlewares: [cc-auth]
      service: backend
  middlewares:
    cc-auth:
      plugin:
        oAuthClientCredentials:
{options}  services:
    backend:
      loadBalancer:
        servers: [{{ url: "{upstream}" }}]
        serversTransport: trusted
  serversTransports:
    trusted: {{ rootCAs: [ca.pem] }}
"#,
        cert = pki.server_cert_file().display(),
        key = pki.server_key_file().display(),
        options = middleware_options(&idp),
        upstream = server.url,
    );
    let _ccgate = Ccgate::start(&dir.write("ccgate.yaml", &config), &[("secure", secure)]).await;
    let mut roots = rustls::RootCertStore::empty();
    roots
        .add(CertificateDer::from_pem_slice(pki.ca_pem.as_bytes()).unwrap())
        .unwrap();
    let mut tls = rustls::ClientConfig::builder_with_provider(crate::support::crypto_provider())
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    // A WebSocket client over TLS asks for HTTP/1.1 (RFC 8441 aside).
    tls.alpn_protocols = vec![b"http/1.1".to_vec()];
    let stream = tokio::net::TcpStream::connect(("127.0.0.1", secure))
        .await
        .unwrap();
    let stream = tokio_rustls::TlsConnector::from(std::sync::Arc::new(tls))
        .connect("localhost".try_into().unwrap(), stream)
        .await
        .unwrap();
    let mut request = format!("wss://localhost:{secure}/v1/chat")
        .into_client_request()
        .unwrap();
    request.headers_mut().insert(
        "authorization",
        basic("basic-client", "basic-secret").parse().unwrap(),
    );
    let (mut socket, response) = tokio::time::timeout(
        Duration::from_secs(10),
        tokio_tungstenite::client_async(request, stream),
    )
    .await
    .expect("the handshake ends in time")
    .expect("the upgrade goes through");
    assert_eq!(response.status(), 101);
    socket.send(Message::text("over TLS")).await.unwrap();
    let answer = tokio::time::timeout(Duration::from_secs(10), socket.next())
        .await
        .expect("an answer in time");
    assert_eq!(answer.unwrap().unwrap(), Message::text("echo: over TLS"));
    let seen = &server.handshakes()[0];
    assert!(
        seen["authorization"]
            .to_str()
            .unwrap()
            .starts_with("Bearer ey")
    );
    assert_eq!(seen["x-forwarded-proto"], "https");
    socket.close(None).await.unwrap();
    server.until_ended(1).await;
}
