//! `forward-auth@internal` as the auth server of the real proxies: a
//! caller → nginx / Caddy / Traefik → (auth sub-request to ccgate) → the
//! echo upstream, with tokens from the real test IdP. Each proxy and
//! ccgate run the committed examples of `examples/forward-auth/`, their
//! example ports and URLs replaced by the test's.

use reqwest::header::HeaderMap;

use crate::support::echo::Echo;
use crate::support::gateway::{Ccgate, TempDir};
use crate::support::idp::Idp;
use crate::support::proxies::Proxy;
use crate::support::{basic, examples, free_port};

/// The token endpoint of the examples' ccgate.yaml.
const EXAMPLE_IDP: &str = "https://idp.example.com/oauth/token";
/// ccgate's forward-auth address in the examples.
const EXAMPLE_CCGATE: &str = "127.0.0.1:9091";
/// The API (upstream) address in the examples.
const EXAMPLE_UPSTREAM: &str = "127.0.0.1:9000";

const GOOD: (&str, &str) = ("basic-client", "basic-secret");
const WRONG: (&str, &str) = ("basic-client", "forward-auth-wrong-secret");
const TESTER: (&str, &str) = ("tester-client", "tester-secret");
/// Used only while the IdP fails, so that no token is cached for it.
const UNLUCKY: (&str, &str) = ("post-client", "post-secret");

/// An answer: status, headers, body.
struct Answer {
    status: u16,
    headers: HeaderMap,
    body: String,
}

impl Answer {
    /// What the echo upstream received, when it answered.
    fn seen(&self) -> serde_json::Value {
        serde_json::from_str(&self.body)
            .unwrap_or_else(|e| panic!("not the echo's answer ({e}): {}", self.body))
    }

    fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    fn all(&self, name: &str) -> Vec<&str> {
        self.headers
            .get_all(name)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .collect()
    }
}

async fn get(url: &str, credentials: Option<(&str, &str)>, headers: &[(&str, &str)]) -> Answer {
    let client = reqwest::Client::builder()
        .no_proxy()
        .build()
        .expect("client");
    let mut request = client.get(url);
    if let Some((id, secret)) = credentials {
        request = request.header("authorization", basic(id, secret));
    }
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let response = request
        .send()
        .await
        .unwrap_or_else(|e| panic!("{url}: {e}"));
    Answer {
        status: response.status().as_u16(),
        headers: response.headers().clone(),
        body: response.text().await.expect("body"),
    }
}

/// ccgate with `examples/forward-auth/<proxy>/ccgate.yaml`, its IdP and
/// address replaced (and `extra` replacements, for variants).
async fn start_ccgate(proxy: &str, idp: &Idp, extra: &[(&str, &str)]) -> (Ccgate, u16, TempDir) {
    let port = free_port();
    let address = format!("127.0.0.1:{port}");
    let mut replacements = vec![
        (EXAMPLE_IDP, idp.token_endpoint()),
        (EXAMPLE_CCGATE, address.as_str()),
    ];
    replacements.extend_from_slice(extra);
    let config = examples::read(&format!("forward-auth/{proxy}/ccgate.yaml"), &replacements);
    let dir = TempDir::new();
    let path = dir.write("ccgate.yaml", &config);
    let ccgate = Ccgate::start(&path, &[("auth", port)]).await;
    (ccgate, port, dir)
}

/// The replacements of a proxy example: ccgate's and the upstream's
/// addresses.
fn addresses(ccgate: u16, echo: &Echo) -> [(&'static str, String); 2] {
    [
        (EXAMPLE_CCGATE, format!("127.0.0.1:{ccgate}")),
        (
            EXAMPLE_UPSTREAM,
            echo.url.trim_start_matches("http://").to_owned(),
        ),
    ]
}

fn read_example(path: &str, replacements: &[(&str, String)]) -> String {
    let pairs: Vec<(&str, &str)> = replacements
        .iter()
        .map(|(from, to)| (*from, to.as_str()))
        .collect();
    examples::read(path, &pairs)
}

async fn nginx(ccgate: u16, echo: &Echo, extra: &[(&str, String)]) -> Proxy {
    let port = free_port();
    let mut replacements = addresses(ccgate, echo).to_vec();
    replacements.push(("listen 8080;", format!("listen 127.0.0.1:{port};")));
    replacements.extend_from_slice(extra);
    let site = read_example("forward-auth/nginx/forward-auth.conf", &replacements);
    Proxy::nginx(port, &site).await
}

async fn caddy(ccgate: u16, echo: &Echo) -> Proxy {
    let port = free_port();
    let mut replacements = addresses(ccgate, echo).to_vec();
    replacements.push((":8080 {", format!(":{port} {{")));
    let site = read_example("forward-auth/caddy/Caddyfile", &replacements);
    Proxy::caddy(port, &site).await
}

async fn traefik(ccgate: u16, echo: &Echo) -> Proxy {
    let port = free_port();
    let static_config = read_example(
        "forward-auth/traefik/traefik.yml",
        &[(r#"":8080""#, format!(r#""127.0.0.1:{port}""#))],
    );
    let dynamic = read_example("forward-auth/traefik/dynamic.yml", &addresses(ccgate, echo));
    Proxy::traefik(port, &static_config, "dynamic.yml", &dynamic, "/").await
}

/// What a proxy does with ccgate's denials.
struct Behaviour {
    /// The status the caller gets when ccgate answers 502.
    unavailable: u16,
    /// Whether ccgate's body reaches the caller (else the proxy's own page).
    passes_body: bool,
}

/// Every row of the forward-auth contract through `proxy`, whose ccgate
/// uses `idp` and whose upstream is `echo`.
async fn proves_forward_auth(
    proxy: &Proxy,
    ccgate: &Ccgate,
    idp: &Idp,
    echo: &Echo,
    behaviour: &Behaviour,
) {
    let url = format!("{}/v1/things?x=1", proxy.url());
    let context = || format!("{}\n--- ccgate\n{}", proxy.output(), ccgate.stderr());

    // Allowed: the upstream gets the token and the claim, never the
    // caller's Basic credentials nor its own X-Group; the token is cached.
    let mut token = String::new();
    for _ in 0..3 {
        let answer = get(&url, Some(GOOD), &[("x-group", "spoofed")]).await;
        assert_eq!(answer.status, 200, "{}\n{}", answer.body, context());
        let seen = answer.seen();
        assert_eq!(seen["path"], "/v1/things?x=1");
        let authorization = &seen["headers"]["authorization"];
        assert_eq!(authorization.as_array().map(Vec::len), Some(1), "{seen}");
        let authorization = authorization[0].as_str().expect("string");
        assert!(authorization.starts_with("Bearer ey"), "{authorization}");
        assert!(!answer.body.contains("Basic "), "{seen}");
        assert_eq!(seen["headers"]["x-group"], serde_json::json!(["admin"]));
        token = authorization.trim_start_matches("Bearer ").to_owned();
    }
    assert_eq!(echo.hits(), 3);
    assert_eq!(
        idp.stats().await.client("basic-client").total,
        1,
        "one token request for three calls"
    );

    // Denied: the proxy answers, the upstream is never called.
    let answer = get(&url, Some(WRONG), &[]).await;
    assert_eq!(answer.status, 401, "{}\n{}", answer.body, context());
    assert_eq!(
        answer.header("www-authenticate"),
        Some(r#"Basic realm="ccgate""#),
        "the challenge passes"
    );
    if behaviour.passes_body {
        assert!(answer.body.contains("invalid_client"), "{}", answer.body);
    }

    let answer = get(&url, Some(TESTER), &[]).await;
    assert_eq!(answer.status, 403, "{}\n{}", answer.body, context());
    if behaviour.passes_body {
        assert!(answer.body.contains("claims"), "{}", answer.body);
    }

    let answer = get(&url, None, &[]).await;
    assert_eq!(answer.status, 401, "{}\n{}", answer.body, context());
    assert_eq!(
        answer.header("www-authenticate"),
        Some(r#"Basic realm="ccgate""#)
    );

    // The token endpoint fails (every attempt): ccgate answers 502.
    idp.fail(503, 4).await;
    let answer = get(&url, Some(UNLUCKY), &[]).await;
    assert_eq!(
        answer.status,
        behaviour.unavailable,
        "{}\n{}",
        answer.body,
        context()
    );
    if behaviour.passes_body {
        assert!(answer.body.contains("unavailable"), "{}", answer.body);
    }
    assert_eq!(idp.stats().await.injected, 4, "every attempt failed");
    assert_eq!(echo.hits(), 3, "no denied request reached the upstream");

    no_secret_in(ccgate, &token);
}

/// Neither a client secret nor the token appears in ccgate's output.
fn no_secret_in(ccgate: &Ccgate, token: &str) {
    let output = format!("{}\n{}", ccgate.stdout(), ccgate.stderr());
    for secret in [GOOD.1, WRONG.1, TESTER.1, UNLUCKY.1, token] {
        assert!(
            !secret.is_empty() && !output.contains(secret),
            "{secret:?} in ccgate output:\n{output}"
        );
    }
    assert!(
        output.contains(r#""ClientUsername":"john""#),
        "the access log names the user:\n{output}"
    );
}

/// With a claim the token lacks, ccgate answers an empty X-Group: the
/// caller's own X-Group must still not reach the upstream.
async fn ignores_a_callers_claim_header(proxy: &Proxy) {
    let url = format!("{}/v1/x", proxy.url());
    let answer = get(&url, Some(GOOD), &[("x-group", "spoofed")]).await;
    assert_eq!(answer.status, 200, "{}\n{}", answer.body, proxy.output());
    let group = &answer.seen()["headers"]["x-group"];
    assert!(
        group.is_null() || *group == serde_json::json!([""]),
        "the upstream saw X-Group {group}"
    );
}

/// The ccgate variant: X-Group is a claim the tokens lack, and a token
/// request gives up after one attempt of one second.
const VARIANT: [(&str, &str); 2] = [
    ("X-Group: grp", "X-Group: no.such.claim"),
    (
        "usernameClaim: userId",
        "usernameClaim: userId\n          clientConfig:\n            timeoutSeconds: 1\n            maxRetries: 0",
    ),
];

/// Through a proxy to the ccgate [`VARIANT`]: a caller's own X-Group
/// never reaches the upstream, and a token endpoint slower than the
/// timeout gives the caller `timeout_status` (ccgate's 504, as passed on).
async fn proves_the_variant(proxy: &Proxy, idp: &Idp, timeout_status: u16) {
    ignores_a_callers_claim_header(proxy).await;
    idp.delay(1_500).await;
    let answer = get(&format!("{}/v1/x", proxy.url()), Some(UNLUCKY), &[]).await;
    idp.delay(0).await;
    assert_eq!(
        answer.status,
        timeout_status,
        "{}\n{}",
        answer.body,
        proxy.output()
    );
}

#[tokio::test]
async fn nginx_auth_request() {
    let idp = Idp::start().await;
    let echo = Echo::start().await;
    let (ccgate, port, _dir) = start_ccgate("nginx", &idp, &[]).await;
    let proxy = nginx(port, &echo, &[]).await;
    let behaviour = Behaviour {
        // The example's error_page restores ccgate's 502.
        unavailable: 502,
        passes_body: false,
    };
    proves_forward_auth(&proxy, &ccgate, &idp, &echo, &behaviour).await;

    // Without the error_page recipe, auth_request turns 502 into 500.
    let plain = nginx(
        port,
        &echo,
        &[(
            "error_page 500 = @ccgate_error;",
            "# (no error_page)".to_owned(),
        )],
    )
    .await;
    idp.fail(503, 4).await;
    let answer = get(&format!("{}/v1/x", plain.url()), Some(UNLUCKY), &[]).await;
    assert_eq!(answer.status, 500, "{}", plain.output());
    assert!(
        plain
            .output()
            .contains("auth request unexpected status: 502"),
        "{}",
        plain.output()
    );

    let (_variant, port, _variant_dir) = start_ccgate("nginx", &idp, &VARIANT).await;
    proves_the_variant(&nginx(port, &echo, &[]).await, &idp, 504).await;
}

#[tokio::test]
async fn caddy_forward_auth() {
    let idp = Idp::start().await;
    let echo = Echo::start().await;
    let (ccgate, port, _dir) = start_ccgate("caddy", &idp, &[]).await;
    let proxy = caddy(port, &echo).await;
    let behaviour = Behaviour {
        unavailable: 502,
        passes_body: true,
    };
    proves_forward_auth(&proxy, &ccgate, &idp, &echo, &behaviour).await;

    let (_variant, port, _variant_dir) = start_ccgate("caddy", &idp, &VARIANT).await;
    proves_the_variant(&caddy(port, &echo).await, &idp, 504).await;
}

#[tokio::test]
async fn traefik_forward_auth() {
    let idp = Idp::start().await;
    let echo = Echo::start().await;
    let (ccgate, port, _dir) = start_ccgate("traefik", &idp, &[]).await;
    let proxy = traefik(port, &echo).await;
    let behaviour = Behaviour {
        unavailable: 502,
        passes_body: true,
    };
    proves_forward_auth(&proxy, &ccgate, &idp, &echo, &behaviour).await;

    let (_variant, port, _variant_dir) = start_ccgate("traefik", &idp, &VARIANT).await;
    proves_the_variant(&traefik(port, &echo).await, &idp, 504).await;
}

/// The endpoint itself, called as a proxy would: 200 with the upstream
/// headers as response headers, or the middleware's denial.
#[tokio::test]
async fn the_endpoint_answers_with_the_upstream_headers() {
    let idp = Idp::start().await;
    let (ccgate, port, _dir) = start_ccgate("traefik", &idp, &[]).await;
    let url = format!("http://127.0.0.1:{port}/auth");

    let mut token = String::new();
    for _ in 0..3 {
        let answer = get(&url, Some(GOOD), &[("x-group", "spoofed")]).await;
        assert_eq!(answer.status, 200, "{}", answer.body);
        assert_eq!(answer.body, "");
        let authorization = answer.all("authorization");
        assert_eq!(authorization.len(), 1, "{authorization:?}");
        assert!(
            authorization[0].starts_with("Bearer ey"),
            "{authorization:?}"
        );
        assert_eq!(answer.all("x-group"), ["admin"], "not the caller's X-Group");
        assert_eq!(
            answer.header("cache-control"),
            Some("no-store"),
            "a token is never cached"
        );
        token = authorization[0].trim_start_matches("Bearer ").to_owned();
    }
    assert_eq!(idp.stats().await.client("basic-client").total, 1, "cached");

    let answer = get(&url, None, &[]).await;
    assert_eq!(answer.status, 401);
    assert_eq!(
        answer.header("www-authenticate"),
        Some(r#"Basic realm="ccgate""#)
    );
    assert!(!answer.body.trim().is_empty());
    assert_eq!(answer.header("authorization"), None);

    let answer = get(&url, Some(WRONG), &[("x-group", "spoofed")]).await;
    assert_eq!(answer.status, 401, "{}", answer.body);
    assert_eq!(
        answer.header("www-authenticate"),
        Some(r#"Basic realm="ccgate""#)
    );
    assert!(answer.body.contains("invalid_client"), "{}", answer.body);
    assert_eq!(answer.header("authorization"), None);
    assert_eq!(answer.header("x-group"), None);

    let answer = get(&url, Some(TESTER), &[]).await;
    assert_eq!(answer.status, 403, "{}", answer.body);
    assert!(answer.body.contains("claims"), "{}", answer.body);
    assert_eq!(answer.header("authorization"), None, "no token on a 403");
    assert_eq!(answer.header("x-group"), None);

    idp.fail(503, 4).await;
    let answer = get(&url, Some(UNLUCKY), &[]).await;
    assert_eq!(answer.status, 502, "{}", answer.body);
    assert!(answer.body.contains("unavailable"), "{}", answer.body);

    // The caller's body is not needed: a POST is answered the same way.
    let client = reqwest::Client::builder().no_proxy().build().unwrap();
    let response = client
        .post(&url)
        .header("authorization", basic(GOOD.0, GOOD.1))
        .body("ignored")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);

    ccgate
        .until_printed(r#""ServiceName":"forward-auth@internal""#)
        .await;
    no_secret_in(&ccgate, &token);
    let log = ccgate.stdout();
    assert!(
        log.contains(r#""RouterName":"forward-auth""#)
            && log.contains(r#""ServiceName":"forward-auth@internal""#),
        "the access log names the router and the built-in service:\n{log}"
    );
}
