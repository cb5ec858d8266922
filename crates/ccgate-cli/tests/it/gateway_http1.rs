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
/// (chunked), `/empty` (204), `/closing` (`Connection: close` on every
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

/// ccgate with `/files`, `/empty` to nginx, `/closing` to its closing
/// server.
async fn gateway(dir: &TempDir, nginx: u16, closing: u16) -> (Ccgate, String) {
    let web = free_port();
    let config = format!(
        "entryPoints:\n  web: {{ address: \"127.0.0.1:{web}\" }}\n\
         http:\n  routers:\n\
         \x20   files: {{ rule: \"PathPrefix(`/files`) || Path(`/empty`)\", service: files }}\n\
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
