//! SPEC §10 beyond the transport: an access log whose reader stalls, log
//! lines forged through a token's claims, a Redis store holding tokens in
//! clear, and a reload that changes the store.

use std::time::Duration;

use base64::Engine as _;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::support::echo::Echo;
use crate::support::fault_server::{FaultServer, Reply};
use crate::support::gateway::{Ccgate, TempDir};
use crate::support::idp::Idp;
use crate::support::redis_server::{RedisConfig, RedisServer, ask, until};
use crate::support::{basic, free_port};

/// `VmRSS` of process `pid`, in KiB.
fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("status");
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmRSS")
}

/// Sends `count` pipelined requests for `path` on one connection and
/// reads every answer.
async fn pipelined(port: u16, path: &str, count: usize) {
    let stream = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
    let (mut reader, mut writer) = stream.into_split();
    let request = format!("GET {path} HTTP/1.1\r\nHost: x\r\n\r\n");
    let last = format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    let writing = tokio::spawn(async move {
        let batch = request.repeat(100);
        for _ in 0..(count - 1) / 100 {
            writer.write_all(batch.as_bytes()).await.unwrap();
        }
        for _ in 0..(count - 1) % 100 {
            writer.write_all(request.as_bytes()).await.unwrap();
        }
        writer.write_all(last.as_bytes()).await.unwrap();
        writer
    });
    let mut answers = Vec::new();
    reader.read_to_end(&mut answers).await.unwrap();
    let _writer = writing.await.unwrap();
    let answers = String::from_utf8_lossy(&answers);
    assert_eq!(answers.matches("HTTP/1.1 404").count(), count);
}

async fn metric(ccgate: &Ccgate, name: &str) -> f64 {
    let text = reqwest::get(format!("{}/metrics", ccgate.url("internal")))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    text.lines()
        .find_map(|line| line.strip_prefix(name)?.trim().parse().ok())
        .unwrap_or_else(|| panic!("no {name} in\n{text}"))
}

#[tokio::test]
async fn a_stalled_access_log_drops_and_counts_records_in_bounded_memory() {
    let dir = TempDir::new();
    let fifo = dir.path().join("access.fifo");
    let made = std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .unwrap();
    assert!(made.success());
    // A reader that never reads: ccgate can open the FIFO, and its writes
    // block once the pipe's 64 KiB are full.
    let _stalled = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(&fifo)
        .unwrap();
    let (web, internal) = (free_port(), free_port());
    let config = format!(
        "entryPoints:\n  web: {{ address: \"127.0.0.1:{web}\" }}\n  internal: {{ address: \"127.0.0.1:{internal}\" }}\nmetrics: {{ prometheus: {{ entryPoint: internal }} }}\naccessLog: {{ format: json, filePath: {} }}\n",
        fifo.display()
    );
    let path = dir.write("ccgate.yaml", &config);
    let ccgate = Ccgate::start(&path, &[("web", web), ("internal", internal)]).await;
    // Records of about 2.3 KB (a 2 KB path), 24,000 a round: were they all
    // queued, each round would add some 60-100 MB. Bounded, the queue is
    // full after the first round, and the second adds nothing.
    let long_path = format!("/{}", "a".repeat(2000));
    let round = || async {
        let senders: Vec<_> = (0..8)
            .map(|_| tokio::spawn(pipelined_owned(web, long_path.clone(), 3000)))
            .collect();
        for sender in senders {
            sender.await.unwrap();
        }
    };
    let start = rss_kib(ccgate.pid());
    round().await;
    let first = rss_kib(ccgate.pid());
    round().await;
    let second = rss_kib(ccgate.pid());
    let dropped = metric(&ccgate, "ccgate_access_log_dropped_total").await;
    assert!(dropped > 25_000.0, "{dropped} records dropped of 48,000");
    assert!(
        second < first + 20 * 1024 && second < start + 200 * 1024,
        "RSS {start} KiB, then {first} KiB, then {second} KiB"
    );
}

async fn pipelined_owned(port: u16, path: String, count: usize) {
    pipelined(port, &path, count).await;
}

/// A JWT (unsigned: ccgate reads claims, the upstream verifies) with
/// `claims`.
fn jwt(claims: &serde_json::Value) -> String {
    let encode = |bytes: &[u8]| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes);
    format!(
        "{}.{}.c2ln",
        encode(br#"{"alg":"ES256","typ":"at+jwt"}"#),
        encode(claims.to_string().as_bytes())
    )
}

#[tokio::test]
async fn cr_lf_in_the_username_claim_does_not_split_a_common_log_line() {
    // The real test IdP issues fixed claims; this FAKE token server issues
    // a token whose username claim carries a forged log line.
    let forged = "john\r\n6.6.6.6 - admin [2026-01-01T00:00:00Z] \"GET /admin HTTP/1.1\" 200 - \"-\" \"-\" 1 \"api\" \"backend\" 0ms";
    let token = jwt(&serde_json::json!({"userId": forged, "grp": "admin"}));
    let idp = FaultServer::always(Reply::json(
        200,
        &format!(r#"{{"access_token":"{token}","token_type":"Bearer","expires_in":300}}"#),
    ))
    .await;
    let echo = Echo::start().await;
    let web = free_port();
    let dir = TempDir::new();
    let config = format!(
        r#"
entryPoints:
  web: {{ address: "127.0.0.1:{web}" }}
accessLog: {{ format: common }}
http:
  routers:
    api: {{ rule: "PathPrefix(`/`)", middlewares: [cc], service: backend }}
  middlewares:
    cc:
      plugin:
        oAuthClientCredentials: {{ url: "{}", audience: api, usernameClaim: userId }}
  services:
    backend: {{ loadBalancer: {{ servers: [{{ url: "{}" }}] }} }}
"#,
        idp.url(),
        echo.url
    );
    let path = dir.write("ccgate.yaml", &config);
    let ccgate = Ccgate::start(&path, &[("web", web)]).await;
    let response = reqwest::Client::builder()
        .no_proxy()
        .build()
        .unwrap()
        .get(format!("{}/v1", ccgate.url("web")))
        .header("authorization", basic("someone", "secret"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    ccgate.until_printed("\"GET /v1 HTTP/1.1\"").await;
    let log = ccgate.stdout();
    let lines: Vec<&str> = log.lines().collect();
    assert_eq!(lines.len(), 1, "{log}");
    assert!(
        lines[0].starts_with("127.0.0.1 - john\\x0d\\x0a6.6.6.6\\x20-\\x20admin"),
        "{log}"
    );
    assert!(!log.contains("\n6.6.6.6"), "{log}");
}

/// A main file with one middleware `cc` whose `store` is `store`.
fn store_config(web: u16, store: &str) -> String {
    format!(
        r#"
entryPoints:
  web: {{ address: "127.0.0.1:{web}" }}
http:
  routers:
    api: {{ rule: "PathPrefix(`/`)", middlewares: [cc], service: backend }}
  middlewares:
    cc:
      plugin:
        oAuthClientCredentials:
          url: http://127.0.0.1:1/token
          audience: api
          store: {store}
  services:
    backend: {{ loadBalancer: {{ servers: [{{ url: "http://127.0.0.1:1" }}] }} }}
"#
    )
}

const WARNING: &str = "store.redis without store.secret";

#[tokio::test]
async fn redis_without_a_secret_warns_in_serve_and_check() {
    let dir = TempDir::new();
    let web = free_port();
    let clear = dir.write(
        "clear.yaml",
        &store_config(
            web,
            "{ redis: { endpoints: [\"127.0.0.1:1\"], password: hunter2-redis } }",
        ),
    );
    let sealed = dir.write(
        "sealed.yaml",
        &store_config(
            web,
            "{ secret: 0123456789abcdef0123456789abcdef, redis: { endpoints: [\"127.0.0.1:1\"] } }",
        ),
    );
    let check = |path: &std::path::Path| {
        let output = std::process::Command::new(env!("CARGO_BIN_EXE_ccgate"))
            .args(["check", "-c"])
            .arg(path)
            .output()
            .unwrap();
        assert_eq!(output.status.code(), Some(0));
        String::from_utf8_lossy(&output.stderr).into_owned()
    };
    let stderr = check(&clear);
    assert_eq!(stderr.matches(WARNING).count(), 1, "{stderr}");
    let line = stderr.lines().find(|l| l.contains(WARNING)).unwrap();
    assert!(
        line.contains("WARN") && line.contains("middleware=\"cc\""),
        "{line}"
    );
    assert!(!stderr.contains("hunter2"), "{stderr}");
    assert!(!check(&sealed).contains(WARNING));

    let mut ccgate = Ccgate::start(&clear, &[("web", web)]).await;
    ccgate.until_logged("serving").await;
    let stderr = ccgate.stderr();
    assert_eq!(stderr.matches(WARNING).count(), 1, "{stderr}");
    let line = stderr.lines().find(|l| l.contains(WARNING)).unwrap();
    assert!(
        line.contains("WARN") && line.contains("middleware=\"cc\""),
        "{line}"
    );
    assert!(!stderr.contains("hunter2"), "{stderr}");
    ccgate.terminate();
    assert_eq!(ccgate.wait(Duration::from_secs(15)).await, Some(0));
}

/// The dynamic file of the reload test: middleware `cc` with `store`.
fn dynamic(idp: &str, upstream: &str, store: &str) -> String {
    format!(
        r#"
http:
  routers:
    api: {{ entryPoints: [web], rule: "PathPrefix(`/`)", middlewares: [cc], service: backend }}
  middlewares:
    cc:
      plugin:
        oAuthClientCredentials: {{ url: "{idp}", audience: https://api.example.com, store: {store} }}
  services:
    backend: {{ loadBalancer: {{ servers: [{{ url: "{upstream}" }}] }} }}
"#
    )
}

#[tokio::test]
async fn a_reload_that_removes_or_adds_redis_uses_the_new_store_next() {
    let (idp, echo) = (Idp::start().await, Echo::start().await);
    let redis = RedisServer::start(RedisConfig::default()).await;
    let port = redis.port().to_string();
    let with_redis = format!("{{ redis: {{ endpoints: [\"{}\"] }} }}", redis.endpoint());
    let web = free_port();
    let dir = TempDir::new();
    std::fs::create_dir_all(dir.path().join("conf.d")).unwrap();
    let main = dir.write(
        "ccgate.yaml",
        &format!(
            "entryPoints:\n  web: {{ address: \"127.0.0.1:{web}\" }}\nproviders:\n  file: {{ directory: conf.d, watch: true }}\n"
        ),
    );
    let write = |store: &str| {
        dir.write(
            "conf.d/api.yaml",
            &dynamic(idp.token_endpoint(), &echo.url, store),
        )
    };
    write(&with_redis);
    let ccgate = Ccgate::start(&main, &[("web", web)]).await;
    let client = reqwest::Client::builder().no_proxy().build().unwrap();
    let call = |id: &'static str, secret: &'static str| {
        let request = client
            .get(format!("{}/x", ccgate.url("web")))
            .header("authorization", basic(id, secret));
        async move { request.send().await.unwrap().status().as_u16() }
    };
    let stored = || async { ask(&port, &["DBSIZE"]).await.parse::<u64>().unwrap_or(0) };

    // With store.redis: the token is written to Redis.
    assert_eq!(call("basic-client", "basic-secret").await, 200);
    assert!(stored().await >= 1, "the token is in Redis");

    // Removed: the next request's token (another client, so fetched now)
    // is no longer written to Redis.
    ask(&port, &["FLUSHALL"]).await;
    write("{}");
    until(Duration::from_secs(10), "the reload", || async {
        ccgate.stderr().matches("configuration reloaded").count() == 1
    })
    .await;
    assert_eq!(call("tester-client", "tester-secret").await, 200);
    assert_eq!(
        stored().await,
        0,
        "a token was written to the removed store"
    );

    // Added back: the next request's token is written again.
    write(&with_redis);
    until(Duration::from_secs(10), "the second reload", || async {
        ccgate.stderr().matches("configuration reloaded").count() == 2
    })
    .await;
    assert_eq!(call("post-client", "post-secret").await, 200);
    assert!(stored().await >= 1, "the token is in the added store");
}
