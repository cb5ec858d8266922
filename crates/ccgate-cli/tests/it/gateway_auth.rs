//! `ccgate serve` end to end: a caller → ccgate → the echo upstream, with
//! tokens from the real test IdP; every row of SPEC §2.6.

use crate::support::echo::Echo;
use crate::support::gateway::{Ccgate, TempDir};
use crate::support::idp::Idp;
use crate::support::{basic, free_port};

/// A gateway with one entry point `web`, one router `api` for
/// `PathPrefix(/v1)` through the middleware `cc-auth` (its options given
/// as YAML lines) to `backend` at `upstream`.
pub(crate) fn config(web: u16, upstream: &str, middleware_options: &str) -> String {
    let options = middleware_options
        .lines()
        .map(|l| format!("          {l}\n"))
        .collect::<String>();
    format!(
        r#"entryPoints:
  web:
    address: "127.0.0.1:{web}"
accessLog:
  format: json
log:
  level: INFO
http:
  routers:
    api:
      entryPoints: [web]
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
    )
}

pub(crate) struct Setup {
    pub(crate) idp: Idp,
    pub(crate) echo: Echo,
    pub(crate) ccgate: Ccgate,
    pub(crate) client: reqwest::Client,
    _dir: TempDir,
}

pub(crate) async fn setup(options: &str) -> Setup {
    let idp = Idp::start().await;
    let echo = Echo::start().await;
    let options = options.replace("IDP", idp.token_endpoint());
    setup_with(idp, echo, &options).await
}

pub(crate) async fn setup_with(idp: Idp, echo: Echo, options: &str) -> Setup {
    let dir = TempDir::new();
    let web = free_port();
    let path = dir.write("ccgate.yaml", &config(web, &echo.url, options));
    let ccgate = Ccgate::start(&path, &[("web", web)]).await;
    let client = reqwest::Client::builder()
        .no_proxy()
        .build()
        .expect("client");
    Setup {
        idp,
        echo,
        ccgate,
        client,
        _dir: dir,
    }
}

impl Setup {
    pub(crate) async fn get(
        &self,
        path: &str,
        headers: &[(&str, &str)],
    ) -> (u16, reqwest::header::HeaderMap, String) {
        let mut request = self.client.get(format!("{}{path}", self.ccgate.url("web")));
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let response = request.send().await.expect("ccgate answers");
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        (status, headers, response.text().await.expect("body"))
    }
}

const APP_LEVEL: &str = "url: IDP\naudience: https://api.example.com\nforwardHeaders:\n  X-Group: grp\nusernameClaim: userId\nclaims: Equals(`grp`, `admin`)";

#[tokio::test]
async fn a_good_client_gets_through_with_a_bearer_token() {
    let s = setup(APP_LEVEL).await;
    let (status, _, body) = s
        .get(
            "/v1/things?x=1",
            &[
                ("authorization", &basic("basic-client", "basic-secret")),
                ("x-group", "spoofed"),
            ],
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let seen: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(seen["path"], "/v1/things?x=1");
    let authorization = seen["headers"]["authorization"][0].as_str().unwrap();
    assert!(authorization.starts_with("Bearer ey"), "{authorization}");
    assert_eq!(seen["headers"]["x-group"], serde_json::json!(["admin"]));
    assert_eq!(seen["headers"]["x-forwarded-proto"][0], "http");
    assert_eq!(seen["headers"]["x-forwarded-for"][0], "127.0.0.1");
    assert!(
        seen["headers"]["x-forwarded-host"][0]
            .as_str()
            .unwrap()
            .starts_with("127.0.0.1:")
    );
    assert_eq!(s.idp.stats().await.total, 1);
}

#[tokio::test]
async fn an_upstream_401_drops_the_cached_token_once_it_is_ten_seconds_old() {
    let s = setup(APP_LEVEL).await;
    let good = basic("basic-client", "basic-secret");
    let (status, _, _) = s.get("/v1/a", &[("authorization", &good)]).await;
    assert_eq!(status, 200);
    let obtained = std::time::Instant::now(); // the token was obtained before this
    let (status, _, _) = s.get("/v1/a", &[("authorization", &good)]).await;
    assert_eq!(status, 200);
    assert_eq!(
        s.idp.stats().await.total,
        1,
        "the second request hit the cache"
    );
    let refused = [
        ("authorization", good.as_str()),
        ("x-upstream-status", "401"),
    ];
    // The upstream refuses the token: its 401 goes back to the caller, but
    // a token younger than 10 s stays (SPEC §2.8), so an upstream that
    // always answers 401 cannot turn requests into token requests.
    for _ in 0..5 {
        let (status, _, _) = s.get("/v1/a", &refused).await;
        assert_eq!(status, 401);
    }
    assert_eq!(s.idp.stats().await.total, 1, "no token request per 401");
    // A real wait: once the token is 10 s old, a 401 drops it and the next
    // request fetches a new token.
    tokio::time::sleep_until((obtained + std::time::Duration::from_secs(10)).into()).await;
    let (status, _, _) = s.get("/v1/a", &refused).await;
    assert_eq!(status, 401);
    let (status, _, _) = s.get("/v1/a", &[("authorization", &good)]).await;
    assert_eq!(status, 200);
    assert_eq!(s.idp.stats().await.total, 2);
}

#[tokio::test]
async fn every_denial_row_is_answered_by_ccgate() {
    let s = setup(APP_LEVEL).await;
    let (status, headers, _) = s.get("/v1/x", &[]).await;
    assert_eq!(
        (status, headers["www-authenticate"].to_str().unwrap()),
        (401, r#"Basic realm="ccgate""#)
    );
    let (status, headers, _) = s.get("/v1/x", &[("authorization", "Bearer abc")]).await;
    assert_eq!(status, 401);
    assert!(headers.contains_key("www-authenticate"));
    let (status, _, body) = s
        .get(
            "/v1/x",
            &[("authorization", &basic("basic-client", "wrong"))],
        )
        .await;
    assert_eq!(status, 401, "{body}");
    let (status, _, _) = s
        .get(
            "/v1/x",
            &[("authorization", &basic("tester-client", "tester-secret"))],
        )
        .await;
    assert_eq!(status, 403);
    let (status, _, _) = s
        .get(
            "/nowhere",
            &[("authorization", &basic("basic-client", "basic-secret"))],
        )
        .await;
    assert_eq!(status, 404, "no router matches");
    assert_eq!(s.echo.hits(), 0);
}

#[tokio::test]
async fn gateway_level_needs_no_caller_credentials() {
    let s = setup("url: IDP\naudience: https://api.example.com\nclientID: basic-client\nclientSecret: basic-secret").await;
    let (status, _, body) = s.get("/v1/x", &[]).await;
    assert_eq!(status, 200, "{body}");
    let s = setup(
        "url: IDP\naudience: https://api.example.com\nclientID: basic-client\nclientSecret: nope",
    )
    .await;
    assert_eq!(
        s.get("/v1/x", &[]).await.0,
        502,
        "rejected gateway credentials"
    );
}

#[tokio::test]
async fn an_unreachable_upstream_is_502() {
    let idp = Idp::start().await;
    let options = format!(
        "url: {}\naudience: https://api.example.com",
        idp.token_endpoint()
    );
    let dir = TempDir::new();
    let web = free_port();
    let closed = format!("http://127.0.0.1:{}", free_port());
    let path = dir.write("ccgate.yaml", &config(web, &closed, &options));
    let ccgate = Ccgate::start(&path, &[("web", web)]).await;
    let client = reqwest::Client::builder().no_proxy().build().unwrap();
    let response = client
        .get(format!("{}/v1/x", ccgate.url("web")))
        .header("authorization", basic("basic-client", "basic-secret"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 502);
}

#[tokio::test]
async fn an_unreachable_token_endpoint_is_502() {
    let no_idp = format!(
        "url: http://127.0.0.1:{}/token\naudience: https://api.example.com",
        free_port()
    );
    let s = setup_with(Idp::start().await, Echo::start().await, &no_idp).await;
    assert_eq!(
        s.get(
            "/v1/x",
            &[("authorization", &basic("basic-client", "basic-secret"))]
        )
        .await
        .0,
        502
    );
    assert_eq!(s.echo.hits(), 0);
}

#[tokio::test]
async fn no_secret_or_token_reaches_ccgate_output() {
    let s = setup(APP_LEVEL).await;
    let (_, _, body) = s
        .get(
            "/v1/x",
            &[("authorization", &basic("basic-client", "basic-secret"))],
        )
        .await;
    let seen: serde_json::Value = serde_json::from_str(&body).unwrap();
    let token = seen["headers"]["authorization"][0]
        .as_str()
        .unwrap()
        .trim_start_matches("Bearer ")
        .to_owned();
    s.get(
        "/v1/x",
        &[(
            "authorization",
            &basic("basic-client", "caller-wrong-secret"),
        )],
    )
    .await;
    s.idp.fail(503, 10).await;
    s.get(
        "/v1/x",
        &[("authorization", &basic("post-client", "post-secret"))],
    )
    .await;
    let output = format!("{}\n{}", s.ccgate.stdout(), s.ccgate.stderr());
    for secret in [
        "basic-secret",
        "caller-wrong-secret",
        "post-secret",
        token.as_str(),
    ] {
        assert!(
            !output.contains(secret),
            "{secret} in ccgate output:\n{output}"
        );
    }
    assert!(
        output.contains("\"ClientUsername\":\"john\""),
        "the access log names the user:\n{output}"
    );
}
