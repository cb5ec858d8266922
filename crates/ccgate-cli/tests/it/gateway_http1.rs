//! ccgate's own HTTP/1.1 client (requests without a body) against a real
//! nginx from Debian: bodies by `Content-Length` that span many reads,
//! `chunked` bodies (nginx compresses on the fly), `HEAD`, `204` and
//! `304` answers without a body, and `Connection: close`. After each
//! answer the next request must find the connection reused or not, as
//! the answer's framing allows: nginx's `$connection` (its connection
//! serial number) in a response header tells which connection carried it.

use crate::support::free_port;
use crate::support::gateway::{Ccgate, TempDir};
use crate::support::proxies::Proxy;

/// A text of `len` bytes that does not compress to nothing.
fn text(len: usize) -> String {
    (0..len)
        .map(|i| char::from(b'a' + u8::try_from((i * 7 + i / 13) % 26).unwrap()))
        .collect()
}

/// nginx serving `dir`'s files on `/files/`, with gzip on the fly
/// (chunked), `/empty` (204), `/hop` (hop-by-hop headers), `/closing` (`Connection: close` on every
/// answer, `keepalive_timeout 0`) and the connection serial in `x-conn`.
async fn nginx(dir: &TempDir, port: u16, closing_port: u16) -> Proxy {
    let root = dir.path().display();
    Proxy::nginx(
        port,
        &format!(
            "server {{\n\
             \x20 listen 127.0.0.1:{port};\n\
             \x20 keepalive_requests 1000;\n\
             \x20 add_header x-conn $connection always;\n\
             \x20 gzip on; gzip_min_length 1; gzip_types text/plain;\n\
             \x20 location /files/ {{ alias {root}/; default_type text/plain; etag on; }}\n\
             \x20 location = /empty {{ return 204; }}\n\
             \x20 location = /hop {{ add_header Connection X-Private; add_header X-Private secret;\
             add_header Keep-Alive timeout=5; add_header Upgrade h2c; add_header Trailer x-t;\
             add_header Proxy-Authenticate Basic; add_header X-Kept 1; return 200 hop; }}\n\
             }}\n\
             server {{\n\
             \x20 listen 127.0.0.1:{closing_port};\n\
             \x20 keepalive_timeout 0;\n\
             \x20 add_header x-conn $connection always;\n\
             \x20 location / {{ return 200 \"bye\"; }}\n\
             }}\n"
        ),
    )
    .await
}

/// ccgate with `/files`, `/empty`, `/hop` to nginx, `/closing` to its closing
/// server.
async fn gateway(dir: &TempDir, nginx: u16, closing: u16) -> (Ccgate, String) {
    let web = free_port();
    let config = format!(
        "entryPoints:\n  web: {{ address: \"127.0.0.1:{web}\" }}\n\
         http:\n  routers:\n\
         \x20   files: {{ rule: \"PathPrefix(`/files`) || Path(`/empty`) || Path(`/hop`)\", service: files }}\n\
         \x20   closing: {{ rule: \"PathPrefix(`/closing`)\", service: closing }}\n\
         \x20 services:\n\
         \x20   files: {{ loadBalancer: {{ servers: [{{ url: \"http://127.0.0.1:{nginx}\" }}] }} }}\n\
         \x20   closing: {{ loadBalancer: {{ servers: [{{ url: \"http://127.0.0.1:{closing}\" }}] }} }}\n"
    );
    let path = dir.write("ccgate.yaml", &config);
    let ccgate = Ccgate::start(&path, &[("web", web)]).await;
    let url = ccgate.url("web");
    (ccgate, url)
}

/// One HTTP/1.1 client connection to ccgate, so that ccgate's requests
/// upstream come one after another from one worker.
fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .pool_max_idle_per_host(1)
        .no_gzip()
        .build()
        .unwrap()
}

fn conn(response: &reqwest::Response) -> String {
    response.headers()["x-conn"].to_str().unwrap().to_owned()
}

#[tokio::test]
async fn long_and_chunked_bodies_arrive_whole_and_their_connection_is_reused() {
    let files = TempDir::new();
    let big = text(300_000);
    files.write("big.txt", &big);
    let dir = TempDir::new();
    let (port, closing) = (free_port(), free_port());
    let _nginx = nginx(&files, port, closing).await;
    let (_ccgate, url) = gateway(&dir, port, closing).await;
    let client = client();

    // Content-Length, 300 kB: many reads of the upstream connection.
    let plain = client
        .get(format!("{url}/files/big.txt"))
        .send()
        .await
        .unwrap();
    assert_eq!(plain.status(), 200);
    assert_eq!(plain.headers()["content-length"], "300000");
    let first = conn(&plain);
    assert_eq!(plain.text().await.unwrap(), big);

    // gzip on the fly: nginx answers chunked; the chunks are decoded and
    // sent on (the caller gets the same gzip stream, chunked again).
    let zipped = client
        .get(format!("{url}/files/big.txt"))
        .header("accept-encoding", "gzip")
        .send()
        .await
        .unwrap();
    assert_eq!(zipped.status(), 200);
    assert_eq!(zipped.headers()["content-encoding"], "gzip");
    assert!(zipped.headers().get("content-length").is_none());
    assert_eq!(conn(&zipped), first, "reused after a Content-Length body");
    let through_ccgate = zipped.bytes().await.unwrap();
    // nginx's gzip of one file is the same each time: what ccgate passed
    // on is byte for byte what nginx sends directly.
    let direct = client
        .get(format!("http://127.0.0.1:{port}/files/big.txt"))
        .header("accept-encoding", "gzip")
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    assert!(through_ccgate.starts_with(&[0x1f, 0x8b]));
    assert_eq!(through_ccgate, direct);

    // And once more: the connection came back after the chunked body.
    let again = client
        .get(format!("{url}/files/big.txt"))
        .send()
        .await
        .unwrap();
    assert_eq!(conn(&again), first, "reused after a chunked body");
    assert_eq!(again.text().await.unwrap().len(), big.len());
}

#[tokio::test]
async fn answers_without_a_body_leave_the_connection_reusable() {
    let files = TempDir::new();
    files.write("small.txt", "hello");
    let dir = TempDir::new();
    let (port, closing) = (free_port(), free_port());
    let _nginx = nginx(&files, port, closing).await;
    let (_ccgate, url) = gateway(&dir, port, closing).await;
    let client = client();

    let head = client
        .head(format!("{url}/files/small.txt"))
        .send()
        .await
        .unwrap();
    assert_eq!(head.status(), 200);
    assert_eq!(head.headers()["content-length"], "5");
    let first = conn(&head);
    let etag = head.headers()["etag"].clone();
    assert!(head.bytes().await.unwrap().is_empty());

    let empty = client.get(format!("{url}/empty")).send().await.unwrap();
    assert_eq!(empty.status(), 204);
    assert_eq!(conn(&empty), first, "reused after a HEAD");

    let unchanged = client
        .get(format!("{url}/files/small.txt"))
        .header("if-none-match", etag)
        .send()
        .await
        .unwrap();
    assert_eq!(unchanged.status(), 304);
    assert_eq!(conn(&unchanged), first, "reused after a 204");

    let body = client
        .get(format!("{url}/files/small.txt"))
        .send()
        .await
        .unwrap();
    assert_eq!(conn(&body), first, "reused after a 304");
    assert_eq!(body.text().await.unwrap(), "hello");
}

#[tokio::test]
async fn an_answer_with_connection_close_is_never_followed_on_its_connection() {
    let files = TempDir::new();
    let dir = TempDir::new();
    let (port, closing) = (free_port(), free_port());
    let _nginx = nginx(&files, port, closing).await;
    let (_ccgate, url) = gateway(&dir, port, closing).await;
    let client = client();
    let mut seen = Vec::new();
    for _ in 0..3 {
        let response = client.get(format!("{url}/closing")).send().await.unwrap();
        assert_eq!(response.status(), 200);
        seen.push(conn(&response));
        assert_eq!(response.text().await.unwrap(), "bye");
    }
    seen.dedup();
    assert_eq!(seen.len(), 3, "a new connection each time: {seen:?}");
}

/// The answer to `request` on a new connection, read to its end.
async fn raw(url: &str, request: &str) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(url.trim_start_matches("http://"))
        .await
        .unwrap();
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut answer = Vec::new();
    tokio::time::timeout(
        std::time::Duration::from_secs(10),
        stream.read_to_end(&mut answer),
    )
    .await
    .expect("an answer within 10 s")
    .unwrap();
    String::from_utf8(answer).unwrap()
}

/// The header names of an HTTP/1.1 answer, as written.
fn names(answer: &str) -> Vec<&str> {
    let head = answer.split("\r\n\r\n").next().unwrap();
    head.split("\r\n")
        .skip(1)
        .map(|line| line.split(':').next().unwrap())
        .collect()
}

#[tokio::test]
async fn a_servers_hop_by_hop_headers_never_reach_the_caller() {
    let files = TempDir::new();
    let dir = TempDir::new();
    let (port, closing) = (free_port(), free_port());
    let _nginx = nginx(&files, port, closing).await;
    let (_ccgate, url) = gateway(&dir, port, closing).await;
    let dropped = [
        "x-private",
        "keep-alive",
        "upgrade",
        "trailer",
        "proxy-authenticate",
    ];
    // nginx does send them all.
    let direct = raw(
        &format!("127.0.0.1:{port}"),
        "GET /hop HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    )
    .await;
    let direct_names = names(&direct);
    for name in dropped {
        assert!(
            direct_names.iter().any(|n| n.eq_ignore_ascii_case(name)),
            "{name}: {direct}"
        );
    }
    assert!(direct.contains("\r\nConnection: X-Private\r\n"), "{direct}");
    // The gateway's own writer (a GET) and hyper's (a HEAD).
    for method in ["GET", "HEAD"] {
        let answer = raw(
            &url,
            &format!("{method} /hop HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"),
        )
        .await;
        assert!(answer.starts_with("HTTP/1.1 200 OK\r\n"), "{answer}");
        let names = names(&answer);
        for name in dropped {
            assert!(
                !names.iter().any(|n| n.eq_ignore_ascii_case(name)),
                "{method}: {answer}"
            );
        }
        assert!(answer.contains("\r\nx-kept: 1\r\n"), "{method}: {answer}");
        assert!(answer.contains("\r\nserver: nginx"), "{method}: {answer}");
        assert_eq!(
            names.iter().filter(|n| **n == "content-length").count(),
            1,
            "{method}: {answer}"
        );
        assert_eq!(
            names.iter().filter(|n| **n == "date").count(),
            1,
            "nginx's date, no second one: {answer}"
        );
        assert_eq!(
            names.iter().filter(|n| **n == "connection").count(),
            1,
            "ccgate's own `close` only: {answer}"
        );
        assert!(answer.contains("\r\nconnection: close\r\n"), "{answer}");
        let body = if method == "GET" { "hop" } else { "" };
        assert!(answer.ends_with(&format!("\r\n\r\n{body}")), "{answer}");
    }
    // An HTTP/2 caller: hyper's server, with a map made of the lines.
    let h2 = reqwest::Client::builder()
        .http2_prior_knowledge()
        .build()
        .unwrap();
    let answer = h2.get(format!("{url}/hop")).send().await.unwrap();
    assert_eq!(answer.version(), reqwest::Version::HTTP_2);
    assert_eq!(answer.headers()["x-kept"], "1");
    for name in dropped {
        assert!(answer.headers().get(name).is_none(), "{name}");
    }
    assert_eq!(answer.text().await.unwrap(), "hop");
}
