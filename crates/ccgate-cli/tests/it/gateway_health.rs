//! SPEC §11 load balancing, against real servers on 127.0.0.1: health
//! checks that take a server out and put it back (HTTP mode against a
//! real HTTP server, gRPC mode against a real `grpc.health.v1` server
//! from tonic-health), 503 when no server is healthy, the next server
//! when one refuses connections, no second server once the request was
//! written, weighted round robin, and the upstream metrics. No timing is
//! asserted: state is polled for with a bounded deadline.

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::sync::atomic::{AtomicU16, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::{Request, Response, StatusCode};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::support::gateway::{Ccgate, TempDir};
use crate::support::{ConfigDir, assert_contains, free_port};

/// A real HTTP/1.1 server that says who it is: `GET /health` answers the
/// status set with [`Backend::set_health`] (200 at first) and records the
/// check's head; every other request is counted, with the bytes of its
/// body, and answered `200 NAME`.
struct Backend {
    url: String,
    port: u16,
    state: Arc<State>,
    _server: tokio::task::JoinHandle<()>,
}

/// A health check's method, target and headers, as received.
type Check = (String, String, BTreeMap<String, String>);

#[derive(Default)]
struct State {
    health: AtomicU16,
    checks: AtomicUsize,
    last_check: Mutex<Option<Check>>,
    requests: AtomicUsize,
    body_bytes: AtomicUsize,
}

impl Backend {
    async fn start(name: &'static str) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let state = Arc::new(State::default());
        state.health.store(200, Ordering::Relaxed);
        let shared = Arc::clone(&state);
        let server = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let state = Arc::clone(&shared);
                tokio::spawn(async move {
                    let service = hyper::service::service_fn(move |request| {
                        answer(name, Arc::clone(&state), request)
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(hyper_util::rt::TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        Self {
            url: format!("http://127.0.0.1:{port}"),
            port,
            state,
            _server: server,
        }
    }

    fn set_health(&self, status: u16) {
        self.state.health.store(status, Ordering::Relaxed);
    }

    fn requests(&self) -> usize {
        self.state.requests.load(Ordering::Relaxed)
    }

    fn checks(&self) -> usize {
        self.state.checks.load(Ordering::Relaxed)
    }
}

async fn answer(
    name: &'static str,
    state: Arc<State>,
    request: Request<Incoming>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    if request.uri().path() == "/health" {
        let headers = request
            .headers()
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_str().unwrap_or("").to_owned()))
            .collect();
        *state.last_check.lock().unwrap() = Some((
            request.method().to_string(),
            request.uri().to_string(),
            headers,
        ));
        state.checks.fetch_add(1, Ordering::Relaxed);
        let mut response = Response::new(Full::new(Bytes::new()));
        *response.status_mut() =
            StatusCode::from_u16(state.health.load(Ordering::Relaxed)).unwrap();
        return Ok(response);
    }
    let size = request
        .into_body()
        .collect()
        .await
        .map(|b| b.to_bytes().len())
        .unwrap_or(0);
    state.body_bytes.fetch_add(size, Ordering::Relaxed);
    state.requests.fetch_add(1, Ordering::Relaxed);
    Ok(Response::new(Full::new(Bytes::from(name))))
}

/// `ccgate serve` with entry points `web` and `internal` (`/metrics`), a
/// router ``PathPrefix(`/`)`` on `web` to the service `s`, whose
/// `loadBalancer` is `balancer` (a YAML flow mapping).
async fn gateway(dir: &TempDir, balancer: &str) -> Ccgate {
    let (web, internal) = (free_port(), free_port());
    let config = format!(
        "entryPoints:\n  web: {{ address: \"127.0.0.1:{web}\" }}\n  internal: {{ address: \"127.0.0.1:{internal}\" }}\n\
         metrics: {{ prometheus: {{ entryPoint: internal }} }}\n\
         http:\n  routers:\n    all: {{ rule: \"PathPrefix(`/`)\", service: s, entryPoints: [web] }}\n\
         \x20 services:\n    s: {{ loadBalancer: {balancer} }}\n"
    );
    let path = dir.write("ccgate.yaml", &config);
    Ccgate::start(&path, &[("web", web), ("internal", internal)]).await
}

async fn metrics(ccgate: &Ccgate) -> String {
    reqwest::get(format!("{}/metrics", ccgate.url("internal")))
        .await
        .expect("metrics answer")
        .text()
        .await
        .unwrap()
}

/// Waits (at most 10 s) until `/metrics` holds `line`.
async fn until_metric(ccgate: &Ccgate, line: &str) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let text = metrics(ccgate).await;
        if text.lines().any(|l| l == line) {
            return;
        }
        assert!(Instant::now() < deadline, "never {line:?} in\n{text}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn up(server: &str, value: u8) -> String {
    format!(r#"ccgate_upstream_server_up{{service="s",server="{server}"}} {value}"#)
}

/// `GET /` through `web` `n` times: the bodies (the servers' names) counted.
async fn spread(ccgate: &Ccgate, n: usize) -> BTreeMap<String, usize> {
    let client = reqwest::Client::new();
    let mut counts = BTreeMap::new();
    for _ in 0..n {
        let response = client
            .get(format!("{}/", ccgate.url("web")))
            .send()
            .await
            .unwrap();
        let status = response.status().as_u16();
        let body = response.text().await.unwrap();
        *counts
            .entry(if status == 200 {
                body
            } else {
                format!("{status}")
            })
            .or_insert(0) += 1;
    }
    counts
}

#[tokio::test]
async fn a_server_failing_its_health_check_gets_no_requests_until_it_passes_again() {
    let (a, b) = (Backend::start("a").await, Backend::start("b").await);
    let dir = TempDir::new();
    let ccgate = gateway(
        &dir,
        &format!(
            "{{ servers: [{{ url: \"{}\" }}, {{ url: \"{}\" }}], healthCheck: {{ path: /health, interval: 100ms, timeout: 2s }} }}",
            a.url, b.url
        ),
    )
    .await;
    until_metric(&ccgate, &up(&a.url, 1)).await;
    assert_eq!(
        spread(&ccgate, 4).await,
        BTreeMap::from([("a".to_owned(), 2), ("b".to_owned(), 2)])
    );

    a.set_health(503);
    until_metric(&ccgate, &up(&a.url, 0)).await;
    ccgate
        .until_logged("health check failed: server taken out of the rotation")
        .await;
    let before = a.requests();
    assert_eq!(
        spread(&ccgate, 10).await,
        BTreeMap::from([("b".to_owned(), 10)])
    );
    assert_eq!(
        a.requests(),
        before,
        "a server out of the rotation got requests"
    );

    a.set_health(200);
    until_metric(&ccgate, &up(&a.url, 1)).await;
    ccgate
        .until_logged("health check passed: server back in the rotation")
        .await;
    let counts = spread(&ccgate, 10).await;
    assert_eq!(counts.get("a"), Some(&5), "{counts:?}");
    assert_eq!(counts.get("b"), Some(&5), "{counts:?}");
}

#[tokio::test]
async fn with_no_healthy_server_plain_callers_get_503_and_grpc_callers_unavailable() {
    let a = Backend::start("a").await;
    a.set_health(500);
    let dir = TempDir::new();
    let ccgate = gateway(
        &dir,
        &format!(
            "{{ servers: [{{ url: \"{}\" }}], healthCheck: {{ path: /health, interval: 100ms }} }}",
            a.url
        ),
    )
    .await;
    until_metric(&ccgate, &up(&a.url, 0)).await;
    let response = reqwest::get(format!("{}/", ccgate.url("web")))
        .await
        .unwrap();
    assert_eq!(response.status(), 503);
    assert_eq!(
        response.text().await.unwrap(),
        "service unavailable: no healthy upstream server\n"
    );
    // A gRPC caller (HTTP/2, application/grpc): a trailers-only answer.
    let client = reqwest::Client::builder()
        .http2_prior_knowledge()
        .build()
        .unwrap();
    let response = client
        .post(format!("{}/pkg.Service/Method", ccgate.url("web")))
        .header("content-type", "application/grpc")
        .header("te", "trailers")
        .body(vec![0_u8, 0, 0, 0, 0])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["grpc-status"], "14", "UNAVAILABLE");
    assert_eq!(a.requests(), 0);
    let text = metrics(&ccgate).await;
    // The gRPC caller's trailers-only answer is an HTTP 200.
    assert_contains(
        &text,
        &[
            r#"ccgate_requests_total{router="all",status="503"} 1"#,
            r#"ccgate_requests_total{router="all",status="200"} 1"#,
        ],
    );
}

#[tokio::test]
async fn the_check_asks_as_configured_with_port_hostname_headers_and_method() {
    let a = Backend::start("a").await;
    // The server URL names a closed port; the check's `port` names the
    // backend: the check passes, the requests fail.
    let closed = free_port();
    let dir = TempDir::new();
    let ccgate = gateway(
        &dir,
        &format!(
            "{{ servers: [{{ url: \"http://127.0.0.1:{closed}\" }}], healthCheck: {{ path: \"/health?deep=1\", port: {}, \
             hostname: health.internal, method: head, headers: {{ X-Probe: yes, Authorization: \"Bearer hunter2-probe\" }}, \
             interval: 100ms }} }}",
            a.port
        ),
    )
    .await;
    let deadline = Instant::now() + Duration::from_secs(10);
    while a.checks() == 0 {
        assert!(Instant::now() < deadline, "no check reached the port");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let (method, target, headers) = a.state.last_check.lock().unwrap().clone().unwrap();
    assert_eq!(method, "HEAD");
    assert_eq!(target, "/health?deep=1");
    assert_eq!(headers["host"], "health.internal");
    assert_eq!(headers["x-probe"], "yes");
    assert_eq!(headers["authorization"], "Bearer hunter2-probe");
    until_metric(&ccgate, &up(&format!("http://127.0.0.1:{closed}"), 1)).await;
    let response = reqwest::get(format!("{}/", ccgate.url("web")))
        .await
        .unwrap();
    assert_eq!(response.status(), 502);
    assert!(!ccgate.stderr().contains("hunter2-probe"));
    assert!(!metrics(&ccgate).await.contains("hunter2-probe"));
}

#[tokio::test]
async fn a_refused_connection_sends_the_request_to_the_next_server_with_its_body_once() {
    let b = Backend::start("b").await;
    let closed = free_port();
    let dir = TempDir::new();
    let ccgate = gateway(
        &dir,
        &format!(
            "{{ servers: [{{ url: \"http://127.0.0.1:{closed}\" }}, {{ url: \"{}\" }}] }}",
            b.url
        ),
    )
    .await;
    let client = reqwest::Client::new();
    let body = "x".repeat(10_000);
    for _ in 0..6 {
        let response = client
            .post(format!("{}/upload", ccgate.url("web")))
            .body(body.clone())
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
        assert_eq!(response.text().await.unwrap(), "b");
    }
    assert_eq!(b.requests(), 6);
    assert_eq!(b.state.body_bytes.load(Ordering::Relaxed), 6 * 10_000);
    let text = metrics(&ccgate).await;
    // Every other request picked the closed port first.
    let closed_line = format!(
        r#"ccgate_upstream_requests_total{{service="s",server="http://127.0.0.1:{closed}",code="502"}} 3"#
    );
    let b_line = format!(
        r#"ccgate_upstream_requests_total{{service="s",server="{}",code="200"}} 6"#,
        b.url
    );
    assert_contains(&text, &[&closed_line, &b_line]);
    ccgate
        .until_logged("upstream unreachable; trying the next server")
        .await;
}

#[tokio::test]
async fn every_server_refusing_is_502() {
    let (one, two) = (free_port(), free_port());
    let dir = TempDir::new();
    let ccgate = gateway(
        &dir,
        &format!(
            "{{ servers: [{{ url: \"http://127.0.0.1:{one}\" }}, {{ url: \"http://127.0.0.1:{two}\" }}] }}"
        ),
    )
    .await;
    let response = reqwest::get(format!("{}/", ccgate.url("web")))
        .await
        .unwrap();
    assert_eq!(response.status(), 502);
    let text = metrics(&ccgate).await;
    for port in [one, two] {
        let line = format!(
            r#"ccgate_upstream_requests_total{{service="s",server="http://127.0.0.1:{port}",code="502"}} 1"#
        );
        assert_contains(&text, &[&line]);
    }
}

#[tokio::test]
async fn a_request_already_written_is_not_sent_to_another_server() {
    // FAKE: a server that reads the request's head and closes without
    // answering (no real server does that on demand).
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let received = Arc::new(AtomicUsize::new(0));
    let seen = Arc::clone(&received);
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            let mut buffer = vec![0_u8; 65536];
            let mut head = Vec::new();
            while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                match stream.read(&mut buffer).await {
                    Ok(0) | Err(_) => break,
                    Ok(n) => head.extend_from_slice(&buffer[..n]),
                }
            }
            seen.fetch_add(1, Ordering::Relaxed);
            let _ = stream.shutdown().await;
        }
    });
    let b = Backend::start("b").await;
    let dir = TempDir::new();
    let ccgate = gateway(
        &dir,
        &format!(
            "{{ servers: [{{ url: \"http://{address}\" }}, {{ url: \"{}\" }}] }}",
            b.url
        ),
    )
    .await;
    // The first request goes to the first server.
    let response = reqwest::Client::new()
        .post(format!("{}/once", ccgate.url("web")))
        .body("must not be sent twice")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 502);
    assert_eq!(received.load(Ordering::Relaxed), 1);
    assert_eq!(b.requests(), 0, "a written request went to a second server");
}

#[tokio::test]
async fn weights_split_requests_exactly_and_metrics_count_them() {
    let (a, b) = (Backend::start("a").await, Backend::start("b").await);
    let dir = TempDir::new();
    let ccgate = gateway(
        &dir,
        &format!(
            "{{ servers: [{{ url: \"{}\", weight: 3 }}, {{ url: \"{}\", weight: 1 }}] }}",
            a.url, b.url
        ),
    )
    .await;
    assert_eq!(
        spread(&ccgate, 400).await,
        BTreeMap::from([("a".to_owned(), 300), ("b".to_owned(), 100)])
    );
    assert_eq!((a.requests(), b.requests()), (300, 100));
    let text = metrics(&ccgate).await;
    for (server, n) in [(&a.url, 300), (&b.url, 100)] {
        for line in [
            format!(
                r#"ccgate_upstream_requests_total{{service="s",server="{server}",code="200"}} {n}"#
            ),
            format!(
                r#"ccgate_upstream_response_seconds_count{{service="s",server="{server}"}} {n}"#
            ),
            format!(
                r#"ccgate_upstream_response_seconds_bucket{{le="+Inf",service="s",server="{server}"}} {n}"#
            ),
            up(server, 1),
        ] {
            assert!(text.lines().any(|l| l == line), "{line}\n{text}");
        }
    }
}

/// A real `grpc.health.v1.Health` server (tonic-health) on 127.0.0.1,
/// h2c; its overall status ("") flips with the reporter.
async fn grpc_health_server() -> (String, tonic_health::server::HealthReporter) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let (reporter, service) = tonic_health::server::health_reporter();
    tokio::spawn(
        tonic::transport::Server::builder()
            .add_service(service)
            .serve_with_incoming(tonic::transport::server::TcpIncoming::from(listener)),
    );
    (url, reporter)
}

#[tokio::test]
async fn grpc_health_checks_follow_the_servers_serving_status() {
    use tonic_health::ServingStatus;
    let (url, reporter) = grpc_health_server().await;
    let dir = TempDir::new();
    let ccgate = gateway(
        &dir,
        &format!(
            "{{ servers: [{{ url: \"{url}\" }}], healthCheck: {{ mode: grpc, interval: 100ms, timeout: 2s }} }}"
        ),
    )
    .await;
    // SERVING: the check passes (the server stays in).
    until_metric(&ccgate, &up(&url, 1)).await;
    reporter
        .set_service_status("", ServingStatus::NotServing)
        .await;
    until_metric(&ccgate, &up(&url, 0)).await;
    ccgate.until_logged("status NOT_SERVING (2)").await;
    let response = reqwest::get(format!("{}/", ccgate.url("web")))
        .await
        .unwrap();
    assert_eq!(response.status(), 503);
    reporter
        .set_service_status("", ServingStatus::Serving)
        .await;
    until_metric(&ccgate, &up(&url, 1)).await;
    ccgate
        .until_logged("health check passed: server back in the rotation")
        .await;
}

#[tokio::test]
async fn a_reload_stops_the_checks_of_a_removed_service() {
    let (a, b) = (Backend::start("a").await, Backend::start("b").await);
    let (web, internal) = (free_port(), free_port());
    let dir = TempDir::new();
    let config = |service: &str| {
        format!(
            "entryPoints:\n  web: {{ address: \"127.0.0.1:{web}\" }}\n  internal: {{ address: \"127.0.0.1:{internal}\" }}\n\
             metrics: {{ prometheus: {{ entryPoint: internal }} }}\n\
             providers: {{ file: {{ filename: dynamic.yaml, watch: true }} }}\n{service}"
        )
    };
    let dynamic = |url: &str| {
        format!(
            "http:\n  routers:\n    all: {{ rule: \"PathPrefix(`/`)\", service: s, entryPoints: [web] }}\n\
             \x20 services:\n    s: {{ loadBalancer: {{ servers: [{{ url: \"{url}\" }}], healthCheck: {{ path: /health, interval: 100ms }} }} }}\n"
        )
    };
    dir.write("dynamic.yaml", &dynamic(&a.url));
    let path = dir.write("ccgate.yaml", &config(""));
    let ccgate = Ccgate::start(&path, &[("web", web), ("internal", internal)]).await;
    until_metric(&ccgate, &up(&a.url, 1)).await;

    // The service now has b instead of a.
    dir.write("dynamic.yaml", &dynamic(&b.url));
    ccgate.until_logged("configuration reloaded").await;
    until_metric(&ccgate, &up(&b.url, 1)).await;
    let text = metrics(&ccgate).await;
    assert!(
        !text.contains(&format!(r#"server="{}"}}"#, a.url)),
        "the removed server's gauge stays:\n{text}"
    );
    // a's checker stopped: b is checked several more times, a at most
    // once more (a check already in flight at the swap).
    let a_checks = a.checks();
    let b_checks = b.checks();
    let deadline = Instant::now() + Duration::from_secs(10);
    while b.checks() < b_checks + 5 {
        assert!(Instant::now() < deadline, "b is not checked");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(a.checks() <= a_checks + 1, "a is still checked");
}

#[test]
fn check_names_the_file_and_field_of_a_bad_health_check_or_weight() {
    for (balancer, expected) in [
        (
            "{ servers: [{ url: \"http://127.0.0.1:1\" }], healthCheck: { path: /h, mode: tcp } }",
            "dynamic.yaml: http.services.s.loadBalancer.healthCheck.mode: unknown mode \"tcp\": expected http or grpc",
        ),
        (
            "{ servers: [{ url: \"http://127.0.0.1:1\" }], healthCheck: { path: /h, interval: 5 parsecs } }",
            "dynamic.yaml: http.services.s.loadBalancer.healthCheck.interval: invalid duration",
        ),
        (
            "{ servers: [{ url: \"http://127.0.0.1:1\" }], healthCheck: { path: /h, status: 700 } }",
            "dynamic.yaml: http.services.s.loadBalancer.healthCheck.status: must be an HTTP status code from 100 to 599, not 700",
        ),
        (
            "{ servers: [{ url: \"http://127.0.0.1:1\", weight: 1.5 }] }",
            "dynamic.yaml: http.services.s.loadBalancer.servers[0].weight: must be a whole number from 0 to 1000, not 1.5",
        ),
        (
            "{ servers: [{ url: \"http://gateway:hunter2-client-secret@127.0.0.1:1\" }] }",
            "dynamic.yaml: http.services.s.loadBalancer.servers[0].url: credentials (user:password@) in a server URL are not supported",
        ),
    ] {
        let dir = ConfigDir::new(&[
            (
                "ccgate.yaml",
                "entryPoints:\n  web: { address: \"127.0.0.1:8080\" }\nproviders: { file: { filename: dynamic.yaml } }\n",
            ),
            (
                "dynamic.yaml",
                &format!(
                    "http:\n  routers:\n    all: {{ rule: \"PathPrefix(`/`)\", service: s }}\n  services:\n    s: {{ loadBalancer: {balancer} }}\n"
                ),
            ),
        ]);
        let error = dir.invalid();
        assert!(
            error.starts_with(expected),
            "{error}\n  expected: {expected}"
        );
    }
}

#[test]
fn check_shows_weights_and_health_checks_without_header_values() {
    let dir = ConfigDir::new(&[(
        "ccgate.yaml",
        "entryPoints:\n  web: { address: \"127.0.0.1:8080\" }\n\
         http:\n  routers:\n    all: { rule: \"PathPrefix(`/`)\", service: s }\n\
         \x20 services:\n    s:\n      loadBalancer:\n        servers: [{ url: \"http://127.0.0.1:1\", weight: 3 }, { url: \"http://127.0.0.1:2\" }]\n\
         \x20       healthCheck: { mode: grpc, interval: 10s, headers: { Authorization: \"Bearer hunter2-client-secret\" } }\n",
    )]);
    let summary = dir.valid();
    assert_contains(
        &summary,
        &[
            "servers: http://127.0.0.1:1/ (weight 3), http://127.0.0.1:2/",
            "healthCheck: grpc grpc.health.v1.Health/Check, every 10s, timeout 5s, passes on SERVING",
            "healthCheck.headers.authorization: <redacted>",
        ],
    );
}

#[tokio::test]
async fn a_check_that_gets_no_answer_fails_after_its_timeout() {
    // A real TCP server that accepts and never answers.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((stream, _)) = listener.accept().await {
            held.push(stream);
        }
    });
    let dir = TempDir::new();
    let url = format!("http://{address}");
    let ccgate = gateway(
        &dir,
        &format!(
            "{{ servers: [{{ url: \"{url}\" }}], healthCheck: {{ path: /health, interval: 100ms, timeout: 200ms }} }}"
        ),
    )
    .await;
    until_metric(&ccgate, &up(&url, 0)).await;
    ccgate
        .until_logged("no answer within 200ms (healthCheck.timeout)")
        .await;
}

#[tokio::test]
async fn checks_of_an_https_server_go_through_the_services_servers_transport() {
    use crate::support::proxies::Proxy;
    use crate::support::tls::Pki;
    let (pki, other) = (Pki::new(), Pki::new());
    let port = free_port();
    let site = format!(
        "server {{\n\
         \x20   listen 127.0.0.1:{port} ssl;\n\
         \x20   ssl_certificate {};\n\
         \x20   ssl_certificate_key {};\n\
         \x20   location /health {{ return 204; }}\n\
         \x20   location / {{ return 200 \"nginx\\n\"; }}\n\
         }}\n",
        pki.server_cert_file().display(),
        pki.server_key_file().display()
    );
    let _nginx = Proxy::nginx(port, &site).await;
    let dir = TempDir::new();
    dir.write("ca.pem", &pki.ca_pem);
    dir.write("other-ca.pem", &other.ca_pem);
    let (web, internal) = (free_port(), free_port());
    let url = format!("https://127.0.0.1:{port}");
    let check = "healthCheck: { path: /health, interval: 100ms, status: 204 }";
    let config = format!(
        "entryPoints:\n  web: {{ address: \"127.0.0.1:{web}\" }}\n  internal: {{ address: \"127.0.0.1:{internal}\" }}\n\
         metrics: {{ prometheus: {{ entryPoint: internal }} }}\n\
         http:\n  routers:\n\
         \x20   trusted: {{ rule: \"PathPrefix(`/trusted`)\", service: s, entryPoints: [web] }}\n\
         \x20   untrusted: {{ rule: \"PathPrefix(`/untrusted`)\", service: u, entryPoints: [web] }}\n\
         \x20 services:\n\
         \x20   s: {{ loadBalancer: {{ servers: [{{ url: \"{url}\" }}], serversTransport: ours, {check} }} }}\n\
         \x20   u: {{ loadBalancer: {{ servers: [{{ url: \"{url}\" }}], serversTransport: theirs, {check} }} }}\n\
         \x20 serversTransports:\n    ours: {{ rootCAs: [ca.pem] }}\n    theirs: {{ rootCAs: [other-ca.pem] }}\n"
    );
    let path = dir.write("ccgate.yaml", &config);
    let ccgate = Ccgate::start(&path, &[("web", web), ("internal", internal)]).await;
    until_metric(
        &ccgate,
        &format!(r#"ccgate_upstream_server_up{{service="u",server="{url}"}} 0"#),
    )
    .await;
    until_metric(&ccgate, &up(&url, 1)).await;
    // The trusted check (status 204, as configured) keeps s's server in.
    let response = reqwest::get(format!("{}/trusted", ccgate.url("web")))
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.text().await.unwrap(), "nginx\n");
    let response = reqwest::get(format!("{}/untrusted", ccgate.url("web")))
        .await
        .unwrap();
    assert_eq!(response.status(), 503);
    ccgate.until_logged("TLS: invalid peer certificate").await;
}

#[tokio::test]
async fn an_http_check_with_scheme_h2c_speaks_http2_with_prior_knowledge() {
    // tonic serves HTTP/2 only: an HTTP/1.1 check fails, an h2c one gets
    // an answer (200, grpc-status 12 for an unknown path).
    let (url, _reporter) = grpc_health_server().await;
    let (web, internal) = (free_port(), free_port());
    let config = format!(
        "entryPoints:\n  web: {{ address: \"127.0.0.1:{web}\" }}\n  internal: {{ address: \"127.0.0.1:{internal}\" }}\n\
         metrics: {{ prometheus: {{ entryPoint: internal }} }}\n\
         http:\n  routers:\n    all: {{ rule: \"PathPrefix(`/`)\", service: h1 }}\n\
         \x20 services:\n\
         \x20   h1: {{ loadBalancer: {{ servers: [{{ url: \"{url}\" }}], healthCheck: {{ path: /anything, interval: 100ms }} }} }}\n\
         \x20   h2c: {{ loadBalancer: {{ servers: [{{ url: \"{url}\" }}], healthCheck: {{ path: /anything, scheme: h2c, interval: 100ms }} }} }}\n\
         \x20   h2c-204: {{ loadBalancer: {{ servers: [{{ url: \"{url}\" }}], healthCheck: {{ path: /anything, scheme: h2c, status: 204, interval: 100ms }} }} }}\n"
    );
    let dir = TempDir::new();
    let path = dir.write("ccgate.yaml", &config);
    let ccgate = Ccgate::start(&path, &[("web", web), ("internal", internal)]).await;
    until_metric(
        &ccgate,
        &format!(r#"ccgate_upstream_server_up{{service="h1",server="{url}"}} 0"#),
    )
    .await;
    // The h2c checks get tonic's answer: 200, which fails where 204 is
    // expected, and passes otherwise.
    until_metric(
        &ccgate,
        &format!(r#"ccgate_upstream_server_up{{service="h2c-204",server="{url}"}} 0"#),
    )
    .await;
    ccgate.until_logged("reason=answered 200 OK").await;
    let text = metrics(&ccgate).await;
    assert_contains(
        &text,
        &[&format!(
            r#"ccgate_upstream_server_up{{service="h2c",server="{url}"}} 1"#
        )],
    );
    let stderr = ccgate.stderr();
    let h2c_failed = stderr
        .lines()
        .filter(|line| line.contains("health check failed"))
        .any(|line| line.contains("h2c") && !line.contains("h2c-204"));
    assert!(!h2c_failed, "{stderr}");
}

#[tokio::test]
async fn grpc_checks_of_an_https_server_speak_tls_with_alpn_h2() {
    use crate::support::tls::Pki;
    use tonic::transport::{Identity, ServerTlsConfig};
    let pki = Pki::new();
    let cert = std::fs::read_to_string(pki.server_cert_file()).unwrap();
    let key = std::fs::read_to_string(pki.server_key_file()).unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("https://{}", listener.local_addr().unwrap());
    let (reporter, service) = tonic_health::server::health_reporter();
    // A real TLS gRPC server (tonic, rustls): it only offers `h2`.
    let server = tonic::transport::Server::builder()
        .tls_config(ServerTlsConfig::new().identity(Identity::from_pem(cert, key)))
        .unwrap()
        .add_service(service)
        .serve_with_incoming(tonic::transport::server::TcpIncoming::from(listener));
    tokio::spawn(server);
    let dir = TempDir::new();
    dir.write("ca.pem", &pki.ca_pem);
    let (web, internal) = (free_port(), free_port());
    let config = format!(
        "entryPoints:\n  web: {{ address: \"127.0.0.1:{web}\" }}\n  internal: {{ address: \"127.0.0.1:{internal}\" }}\n\
         metrics: {{ prometheus: {{ entryPoint: internal }} }}\n\
         http:\n  routers:\n    all: {{ rule: \"PathPrefix(`/`)\", service: s }}\n\
         \x20 services:\n    s: {{ loadBalancer: {{ servers: [{{ url: \"{url}\" }}], serversTransport: ours, \
         healthCheck: {{ mode: grpc, interval: 100ms }} }} }}\n\
         \x20 serversTransports:\n    ours: {{ rootCAs: [ca.pem] }}\n"
    );
    let path = dir.write("ccgate.yaml", &config);
    let ccgate = Ccgate::start(&path, &[("web", web), ("internal", internal)]).await;
    reporter
        .set_service_status("", tonic_health::ServingStatus::NotServing)
        .await;
    until_metric(&ccgate, &up(&url, 0)).await;
    ccgate.until_logged("status NOT_SERVING (2)").await;
    reporter
        .set_service_status("", tonic_health::ServingStatus::Serving)
        .await;
    until_metric(&ccgate, &up(&url, 1)).await;
}
