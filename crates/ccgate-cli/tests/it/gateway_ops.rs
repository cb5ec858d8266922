//! Operating the gateway: `/ping`, `/metrics`, the access log, graceful
//! shutdown and hot reload.

use std::time::Duration;

use crate::support::echo::Echo;
use crate::support::gateway::{Ccgate, TempDir};
use crate::support::idp::Idp;
use crate::support::{basic, free_port};

/// The static part: entry points, ping, metrics, access log, provider.
fn config(web: u16, internal: u16, watch_dir: &str) -> String {
    format!(
        r#"
entryPoints:
  web: {{ address: "127.0.0.1:{web}" }}
  internal: {{ address: "127.0.0.1:{internal}" }}
ping: {{ entryPoint: internal }}
metrics: {{ prometheus: {{ entryPoint: internal }} }}
accessLog: {{ format: json }}
providers:
  file: {{ directory: "{watch_dir}", watch: true }}
"#
    )
}

/// The dynamic part, in `conf.d/api.yaml`.
fn dynamic(idp: &str, upstream: &str, claims: &str) -> String {
    format!(
        r#"
http:
  routers:
    api: {{ entryPoints: [web], rule: "PathPrefix(`/v1`)", middlewares: [cc-auth], service: backend }}
  middlewares:
    cc-auth:
      plugin:
        oAuthClientCredentials:
          url: "{idp}"
          audience: https://api.example.com
          usernameClaim: userId
          claims: "{claims}"
  services:
    backend: {{ loadBalancer: {{ servers: [{{ url: "{upstream}" }}] }} }}
"#
    )
}

struct Running {
    idp: Idp,
    ccgate: Ccgate,
    dir: TempDir,
    client: reqwest::Client,
    upstream: String,
    echo: Echo,
}

async fn start(claims: &str) -> Running {
    start_by(
        tokio::process::Command::new(env!("CARGO_BIN_EXE_ccgate")),
        claims,
    )
    .await
}

/// As [`start`], running ccgate through `command` (see [`Ccgate::start_by`]).
async fn start_by(command: tokio::process::Command, claims: &str) -> Running {
    let (idp, echo) = (Idp::start().await, Echo::start().await);
    let (web, internal) = (free_port(), free_port());
    let dir = TempDir::new();
    std::fs::create_dir_all(dir.path().join("conf.d")).unwrap();
    let path = dir.write("ccgate.yaml", &config(web, internal, "conf.d"));
    dir.write(
        "conf.d/api.yaml",
        &dynamic(idp.token_endpoint(), &echo.url, claims),
    );
    let ccgate = Ccgate::start_by(command, &path, &[("web", web), ("internal", internal)]).await;
    let client = reqwest::Client::builder().no_proxy().build().unwrap();
    Running {
        idp,
        ccgate,
        dir,
        client,
        upstream: echo.url.clone(),
        echo,
    }
}

impl Running {
    async fn call(&self, id: &str, secret: &str) -> u16 {
        self.client
            .get(format!("{}/v1/x", self.ccgate.url("web")))
            .header("authorization", basic(id, secret))
            .send()
            .await
            .unwrap()
            .status()
            .as_u16()
    }
}

#[tokio::test]
async fn ping_metrics_and_the_access_log() {
    let r = start("Equals(`grp`, `admin`)").await;
    assert_eq!(r.call("basic-client", "basic-secret").await, 200);
    assert_eq!(r.call("tester-client", "tester-secret").await, 403);
    let internal = r.ccgate.url("internal");
    let ping = r
        .client
        .get(format!("{internal}/ping"))
        .send()
        .await
        .unwrap();
    assert_eq!(
        (ping.status().as_u16(), ping.text().await.unwrap()),
        (200, "OK".to_owned())
    );
    assert_eq!(
        r.client
            .get(format!("{}/ping", r.ccgate.url("web")))
            .send()
            .await
            .unwrap()
            .status(),
        404
    );

    let metrics = r
        .client
        .get(format!("{internal}/metrics"))
        .send()
        .await
        .unwrap();
    assert!(
        metrics.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("application/openmetrics-text")
    );
    let text = metrics.text().await.unwrap();
    for series in [
        r#"ccgate_requests_total{router="api",status="200"} 1"#,
        r#"ccgate_requests_total{router="api",status="403"} 1"#,
        r#"ccgate_token_requests_total{middleware="cc-auth",outcome="success"} 2"#,
        r#"ccgate_cache_lookups_total{middleware="cc-auth",tier="memory",result="miss"} 2"#,
    ] {
        assert!(text.contains(series), "missing {series}:\n{text}");
    }

    r.ccgate.until_printed(r#""DownstreamStatus":200"#).await;
    r.ccgate.until_printed(r#""DownstreamStatus":403"#).await;
    let log = r.ccgate.stdout();
    let records: Vec<serde_json::Value> = log
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect();
    let ok = records
        .iter()
        .find(|r| r["DownstreamStatus"] == 200)
        .expect("a 200 record");
    assert_eq!(ok["RouterName"], "api");
    assert_eq!(ok["ServiceName"], "backend");
    assert_eq!(ok["ClientUsername"], "john");
    assert_eq!(ok["RequestMethod"], "GET");
    assert_eq!(ok["RequestPath"], "/v1/x");
    assert_eq!(ok["OriginStatus"], 200);
    assert_eq!(ok["entryPointName"], "web");
    assert!(ok["Duration"].as_u64().unwrap() > 0);
    let origin = ok["OriginDuration"].as_u64().unwrap();
    assert!(origin > 0 && origin <= ok["Duration"].as_u64().unwrap());
    let denied = records
        .iter()
        .find(|r| r["DownstreamStatus"] == 403)
        .expect("a 403 record");
    assert_eq!(denied["OriginStatus"], 0, "the upstream was not asked");
    assert_eq!(denied["OriginDuration"], 0);
}

#[tokio::test]
async fn sigterm_lets_in_flight_requests_finish_then_exits_0() {
    let mut r = start("Equals(`grp`, `admin`)").await;
    let url = format!("{}/v1/slow", r.ccgate.url("web"));
    let slow = tokio::spawn(
        r.client
            .get(url)
            .header("authorization", basic("basic-client", "basic-secret"))
            .header("x-upstream-delay-ms", "1500")
            .send(),
    );
    // In flight: the upstream has it, and answers in 1.5 s.
    r.echo.until_hits(1).await;
    r.ccgate.terminate();
    r.ccgate.until_logged("shutting down").await;
    let refused = tokio::net::TcpStream::connect(("127.0.0.1", r.ccgate.ports["web"])).await;
    assert!(refused.is_err(), "no new connections after SIGTERM");
    let response = slow
        .await
        .unwrap()
        .expect("the in-flight request is answered");
    assert_eq!(response.status(), 200);
    assert_eq!(r.ccgate.wait(Duration::from_secs(15)).await, Some(0));
}

/// Starts ccgate through `command`, sends 40 concurrent requests on its
/// `web` route and returns how many workers it logged.
async fn workers_serving_40_requests(command: tokio::process::Command) -> usize {
    let r = start_by(command, "Equals(`grp`, `admin`)").await;
    r.ccgate.until_logged("serving").await;
    let mut calls = tokio::task::JoinSet::new();
    for i in 0..40 {
        let call = r
            .client
            .get(format!("{}/v1/{i}", r.ccgate.url("web")))
            .header("authorization", basic("basic-client", "basic-secret"))
            .send();
        calls.spawn(call);
    }
    while let Some(response) = calls.join_next().await {
        assert_eq!(response.unwrap().unwrap().status(), 200);
    }
    assert_eq!(r.idp.stats().await.total, 1, "the workers share one token");
    let log = r.ccgate.stderr();
    let line = log
        .lines()
        .find(|line| line.contains("serving"))
        .expect("the serving line");
    line.split("workers=")
        .nth(1)
        .and_then(|rest| rest.split(|c: char| !c.is_ascii_digit()).next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no worker count in {line:?}"))
}

#[tokio::test]
async fn one_worker_per_core_it_may_use() {
    let binary = env!("CARGO_BIN_EXE_ccgate");
    let cores = std::thread::available_parallelism().unwrap().get();
    let all = workers_serving_40_requests(tokio::process::Command::new(binary)).await;
    assert_eq!(all, cores);
    let mut pinned = tokio::process::Command::new("taskset");
    pinned.args(["-c", "0", binary]);
    assert_eq!(workers_serving_40_requests(pinned).await, 1);
}

#[tokio::test]
async fn a_changed_file_is_reloaded_and_an_invalid_one_is_refused() {
    let r = start("Equals(`grp`, `admin`)").await;
    assert_eq!(r.call("tester-client", "tester-secret").await, 403);
    assert_eq!(r.call("basic-client", "basic-secret").await, 200);
    assert_eq!(r.idp.stats().await.total, 2);

    // Claims change: applies from the next request; cached tokens stay.
    r.dir.write(
        "conf.d/api.yaml",
        &dynamic(
            r.idp.token_endpoint(),
            &r.upstream,
            "Equals(`grp`, `testers`)",
        ),
    );
    r.ccgate.until_logged("configuration reloaded").await;
    assert_eq!(r.call("tester-client", "tester-secret").await, 200);
    assert_eq!(r.call("basic-client", "basic-secret").await, 403);
    assert_eq!(
        r.idp.stats().await.total,
        2,
        "no new token requests: the cache survived the reload"
    );

    // An invalid version is logged and the running configuration stays.
    r.dir.write(
        "conf.d/api.yaml",
        "http:\n  routers:\n    api: { rule: \"Nope(`x`)\", service: backend }\n",
    );
    r.ccgate.until_logged("configuration change rejected").await;
    assert_eq!(r.call("tester-client", "tester-secret").await, 200);
}

#[tokio::test]
async fn requests_in_flight_finish_on_the_configuration_they_started_with() {
    let r = start("Equals(`grp`, `admin`)").await;
    let slow = tokio::spawn(
        r.client
            .get(format!("{}/v1/slow", r.ccgate.url("web")))
            .header("authorization", basic("basic-client", "basic-secret"))
            .header("x-upstream-delay-ms", "1500")
            .send(),
    );
    r.echo.until_hits(1).await; // in flight: the upstream answers in 1.5 s
    // The new version routes /v1 nowhere.
    let moved = dynamic(
        r.idp.token_endpoint(),
        &r.upstream,
        "Equals(`grp`, `admin`)",
    )
    .replace("PathPrefix(`/v1`)", "PathPrefix(`/v2`)");
    r.dir.write("conf.d/api.yaml", &moved);
    r.ccgate.until_logged("configuration reloaded").await;
    assert_eq!(
        r.call("basic-client", "basic-secret").await,
        404,
        "new requests see the new routes"
    );
    let response = slow.await.unwrap().expect("answered");
    assert_eq!(
        response.status(),
        200,
        "the request in flight finished on the old routes"
    );
}
