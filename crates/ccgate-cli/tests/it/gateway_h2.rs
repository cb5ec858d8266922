//! HTTP/2 to upstreams (SPEC §11), against nginx from Debian: an `https`
//! server that picks `h2` in ALPN is spoken to in HTTP/2 (nginx's
//! `$server_protocol` says so), `disableHTTP2` keeps it HTTP/1.1, and an
//! `h2c://` server gets HTTP/2 by prior knowledge. `TE` other than
//! `trailers` is never forwarded; an HTTP/1.1 caller's chunked body goes
//! out as HTTP/2 data. Hostile HTTP/2 callers, in raw frames: a request
//! carrying connection-specific headers is refused as RFC 9113 §8.2.2
//! requires, and never reaches the upstream.

use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::support::echo::Echo;
use crate::support::free_port;
use crate::support::gateway::{Ccgate, TempDir};
use crate::support::proxies::Proxy;
use crate::support::tls::Pki;

/// nginx answering `PROTOCOL te=TE` on `tls` (TLS, ALPN `h2`) and on
/// `h2c` (cleartext HTTP/2 by prior knowledge).
struct H2Nginx {
    tls: u16,
    h2c: u16,
    _nginx: Proxy,
}

impl H2Nginx {
    async fn start(pki: &Pki) -> Self {
        let (tls, h2c) = (free_port(), free_port());
        let cert = pki.server_cert_file().display().to_string();
        let key = pki.server_key_file().display().to_string();
        // nginx 1.22 (Debian 12) spells `http2 on` as a `listen` parameter.
        let answer = "location / { return 200 \"$server_protocol te=$http_te\\n\"; }";
        let site = format!(
            "server {{\n\
             \x20   listen 127.0.0.1:{h2c} http2;\n\
             \x20   {answer}\n\
             }}\n\
             server {{\n\
             \x20   listen 127.0.0.1:{tls} ssl http2;\n\
             \x20   ssl_certificate {cert};\n\
             \x20   ssl_certificate_key {key};\n\
             \x20   {answer}\n\
             }}\n"
        );
        let nginx = Proxy::nginx(tls, &site).await;
        Self {
            tls,
            h2c,
            _nginx: nginx,
        }
    }
}

/// ccgate with a router `/NAME` → service `NAME` at `url` through the
/// servers transport `NAME` for each `(name, url, transport)`.
async fn gateway(dir: &TempDir, services: &[(&str, &str, &str)]) -> Ccgate {
    let web = free_port();
    let (mut routers, mut defined, mut transports) = (String::new(), String::new(), String::new());
    for (name, url, transport) in services {
        routers.push_str(&format!(
            "    {name}: {{ rule: \"PathPrefix(`/{name}`)\", service: {name} }}\n"
        ));
        defined.push_str(&format!(
            "    {name}: {{ loadBalancer: {{ servers: [{{ url: \"{url}\" }}], serversTransport: {name}@file }} }}\n"
        ));
        transports.push_str(&format!("    {name}: {transport}\n"));
    }
    let config = format!(
        "entryPoints:\n  web: {{ address: \"127.0.0.1:{web}\" }}\nhttp:\n  routers:\n{routers}  services:\n{defined}  serversTransports:\n{transports}"
    );
    let path = dir.write("ccgate.yaml", &config);
    Ccgate::start(&path, &[("web", web)]).await
}

async fn get(ccgate: &Ccgate, path: &str, headers: &[(&str, &str)]) -> (u16, String) {
    let client = reqwest::Client::builder().no_proxy().build().unwrap();
    let mut request = client.get(format!("{}{path}", ccgate.url("web")));
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let response = request.send().await.expect("ccgate answers");
    let status = response.status().as_u16();
    (status, response.text().await.expect("a body"))
}

async fn setup() -> (H2Nginx, Ccgate, TempDir) {
    let pki = Pki::new();
    let nginx = H2Nginx::start(&pki).await;
    let dir = TempDir::new();
    dir.write("ca.pem", &pki.ca_pem);
    let tls = format!("https://127.0.0.1:{}", nginx.tls);
    let h2c = format!("h2c://127.0.0.1:{}", nginx.h2c);
    let ccgate = gateway(
        &dir,
        &[
            ("alpn", &tls, "{ rootCAs: [ca.pem] }"),
            ("only1", &tls, "{ rootCAs: [ca.pem], disableHTTP2: true }"),
            ("cleartext", &h2c, "{}"),
        ],
    )
    .await;
    (nginx, ccgate, dir)
}

#[tokio::test]
async fn https_speaks_http2_when_the_server_picks_h2_disable_http2_keeps_http1_and_h2c_is_http2() {
    let (_nginx, ccgate, _dir) = setup().await;
    for _ in 0..3 {
        let answer = get(&ccgate, "/alpn", &[]).await;
        assert_eq!(
            answer,
            (200, "HTTP/2.0 te=\n".into()),
            "{}",
            ccgate.stderr()
        );
    }
    assert_eq!(
        get(&ccgate, "/only1", &[]).await,
        (200, "HTTP/1.1 te=\n".into())
    );
    for _ in 0..3 {
        let answer = get(&ccgate, "/cleartext", &[]).await;
        assert_eq!(
            answer,
            (200, "HTTP/2.0 te=\n".into()),
            "{}",
            ccgate.stderr()
        );
    }
}

#[tokio::test]
async fn te_trailers_is_forwarded_and_no_other_te_value_is() {
    let (_nginx, ccgate, _dir) = setup().await;
    for (path, protocol) in [
        ("/alpn", "HTTP/2.0"),
        ("/only1", "HTTP/1.1"),
        ("/cleartext", "HTTP/2.0"),
    ] {
        let gzip = get(&ccgate, path, &[("te", "gzip"), ("connection", "te")]).await;
        assert_eq!(gzip, (200, format!("{protocol} te=\n")), "{path}");
        let both = get(
            &ccgate,
            path,
            &[("te", "gzip, trailers"), ("connection", "te")],
        )
        .await;
        assert_eq!(both, (200, format!("{protocol} te=trailers\n")), "{path}");
    }
}

#[tokio::test]
async fn an_http1_callers_chunked_body_goes_to_an_h2_server() {
    let (_nginx, ccgate, _dir) = setup().await;
    for path in ["/alpn", "/cleartext"] {
        let mut stream = TcpStream::connect(("127.0.0.1", ccgate.ports["web"]))
            .await
            .unwrap();
        let request = format!(
            "POST {path} HTTP/1.1\r\nHost: api.example\r\nTransfer-Encoding: chunked\r\n\
             Connection: keep-alive, close\r\nKeep-Alive: timeout=5\r\n\r\n\
             5\r\nhello\r\n0\r\n\r\n"
        );
        stream.write_all(request.as_bytes()).await.unwrap();
        let mut answer = Vec::new();
        tokio::time::timeout(Duration::from_secs(10), stream.read_to_end(&mut answer))
            .await
            .expect("an answer within 10 s")
            .unwrap();
        let answer = String::from_utf8_lossy(&answer);
        assert!(
            answer.starts_with("HTTP/1.1 200 OK\r\n"),
            "{path}: {answer}"
        );
        assert!(answer.ends_with("HTTP/2.0 te=\n"), "{path}: {answer}");
    }
}

// --- Raw HTTP/2 frames (RFC 9113 §4, §6), HPACK literals (RFC 7541 §6.2.2).

const HEADERS: u8 = 0x1;
const RST_STREAM: u8 = 0x3;
const SETTINGS: u8 = 0x4;
const GOAWAY: u8 = 0x7;

fn frame(kind: u8, flags: u8, stream: u32, payload: &[u8]) -> Vec<u8> {
    let length = u32::try_from(payload.len()).unwrap().to_be_bytes();
    let mut frame = vec![length[1], length[2], length[3], kind, flags];
    frame.extend_from_slice(&stream.to_be_bytes());
    frame.extend_from_slice(payload);
    frame
}

/// A header field as an HPACK literal without indexing, new name (short
/// names and values only: one-byte lengths, no Huffman).
fn literal(name: &str, value: &str) -> Vec<u8> {
    let mut field = vec![0x00, u8::try_from(name.len()).unwrap()];
    field.extend_from_slice(name.as_bytes());
    field.push(u8::try_from(value.len()).unwrap());
    field.extend_from_slice(value.as_bytes());
    field
}

/// How ccgate answered a raw HTTP/2 request on stream 1.
#[derive(Debug, PartialEq)]
enum Outcome {
    /// A response head.
    Answered,
    /// The stream reset with this error code.
    Reset(u32),
    /// The connection closed with this error code.
    GoAway(u32),
}

/// Sends one request whose head is `fields` (after the pseudo-headers of
/// `GET /` to `x`) on a new HTTP/2 connection to `port` and reads frames
/// until stream 1 is answered or refused.
async fn raw_h2_request(port: u16, fields: &[(&str, &str)]) -> Outcome {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
    let mut block = Vec::new();
    for (name, value) in [
        (":method", "GET"),
        (":scheme", "http"),
        (":path", "/"),
        (":authority", "x"),
    ]
    .iter()
    .chain(fields)
    {
        block.extend(literal(name, value));
    }
    let mut out = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".to_vec();
    out.extend(frame(SETTINGS, 0, 0, &[]));
    // END_STREAM | END_HEADERS.
    out.extend(frame(HEADERS, 0x1 | 0x4, 1, &block));
    stream.write_all(&out).await.unwrap();
    let read = async {
        loop {
            let mut head = [0u8; 9];
            stream.read_exact(&mut head).await.expect("a frame");
            let length =
                usize::from(head[0]) << 16 | usize::from(head[1]) << 8 | usize::from(head[2]);
            let (kind, flags) = (head[3], head[4]);
            let id = u32::from_be_bytes([head[5], head[6], head[7], head[8]]) & 0x7fff_ffff;
            let mut payload = vec![0u8; length];
            stream.read_exact(&mut payload).await.expect("a payload");
            let code = |at: usize| u32::from_be_bytes(payload[at..at + 4].try_into().unwrap());
            match kind {
                SETTINGS if flags & 0x1 == 0 => {
                    stream
                        .write_all(&frame(SETTINGS, 0x1, 0, &[]))
                        .await
                        .unwrap();
                }
                HEADERS if id == 1 => return Outcome::Answered,
                RST_STREAM if id == 1 => return Outcome::Reset(code(0)),
                GOAWAY => return Outcome::GoAway(code(4)),
                _ => {}
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(10), read)
        .await
        .expect("ccgate answers within 10 s")
}

#[tokio::test]
async fn connection_specific_headers_from_an_h2_caller_are_refused_before_the_upstream() {
    let echo = Echo::start().await;
    let dir = TempDir::new();
    let web = free_port();
    let config = format!(
        "entryPoints:\n  web: {{ address: \"127.0.0.1:{web}\" }}\nhttp:\n  routers:\n    all: {{ rule: \"PathPrefix(`/`)\", service: echo }}\n  services:\n    echo: {{ loadBalancer: {{ servers: [{{ url: \"{}\" }}] }} }}\n",
        echo.url
    );
    let path = dir.write("ccgate.yaml", &config);
    let ccgate = Ccgate::start(&path, &[("web", web)]).await;
    // The frames are right: a clean request is answered.
    assert_eq!(
        raw_h2_request(web, &[("te", "trailers")]).await,
        Outcome::Answered
    );
    assert_eq!(echo.hits(), 1);
    for field in [
        ("connection", "keep-alive"),
        ("te", "gzip"),
        ("te", "trailers, gzip"),
        ("transfer-encoding", "chunked"),
        ("upgrade", "websocket"),
        ("keep-alive", "timeout=5"),
        ("proxy-connection", "keep-alive"),
    ] {
        let outcome = raw_h2_request(web, &[field]).await;
        // PROTOCOL_ERROR (RFC 9113 §7), for the stream or the connection.
        assert!(
            matches!(outcome, Outcome::Reset(1) | Outcome::GoAway(1)),
            "{field:?}: {outcome:?}\n{}",
            ccgate.stderr()
        );
    }
    assert_eq!(echo.hits(), 1, "a refused request reached the upstream");
}
