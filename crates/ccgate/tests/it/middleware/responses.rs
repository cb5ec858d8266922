//! Every row of SPEC §2.6 that the middleware answers itself.

use serde_json::json;

use super::{closed_port, middleware};
use crate::support::fault_server::{FaultServer, Reply};
use crate::support::idp::Idp;
use crate::support::upstream::{Echo, Upstream};

fn assert_challenge(echo: &Echo) {
    assert_eq!(echo.status, 401, "{echo:?}");
    assert_eq!(echo.headers["www-authenticate"], r#"Basic realm="ccgate""#);
}

#[tokio::test]
async fn missing_or_malformed_basic_credentials_get_401_with_a_challenge() {
    let idp = Idp::start().await;
    let upstream = Upstream::start(middleware(idp.token_endpoint(), json!({}))).await;
    let cases: Vec<Vec<(&str, &str)>> = vec![
        vec![],
        vec![("authorization", "Bearer some-token")],
        vec![("authorization", "Basic")],
        vec![("authorization", "Basic !!!not-base64!!!")],
        vec![("authorization", "Basic bm8tY29sb24=")], // "no-colon"
        vec![("authorization", "Basic OnNlY3JldA==")], // ":secret", empty id
        vec![("authorization", "Basic /w==")],         // not UTF-8
    ];
    for headers in &cases {
        let echo = upstream.get(headers).await;
        assert_challenge(&echo);
    }
    assert_eq!(upstream.hits(), 0, "the upstream is never called");
    assert_eq!(
        idp.stats().await.received,
        0,
        "no token request for malformed credentials"
    );
}

#[tokio::test]
async fn credentials_the_idp_rejects_are_401_at_application_level() {
    let idp = Idp::start().await;
    let upstream = Upstream::start(middleware(idp.token_endpoint(), json!({}))).await;
    let echo = upstream.get_as("basic-client", "wrong-secret").await;
    assert_challenge(&echo);
    let body = echo.seen["body"].as_str().expect("text body");
    assert!(
        body.contains("invalid_client"),
        "the OAuth error code may be named: {body}"
    );
    assert!(
        !body.contains("wrong-secret") && !body.contains("client authentication failed"),
        "{body}"
    );
    let unknown = upstream.get_as("nobody", "secret").await;
    assert_challenge(&unknown);
    assert_eq!(upstream.hits(), 0);
}

#[tokio::test]
async fn gateway_credentials_the_idp_rejects_are_502() {
    let idp = Idp::start().await;
    let extra = json!({"clientID": "basic-client", "clientSecret": "not-the-secret"});
    let upstream = Upstream::start(middleware(idp.token_endpoint(), extra)).await;
    let echo = upstream.get(&[]).await;
    assert_eq!(echo.status, 502, "{echo:?}");
    assert!(!echo.headers.contains_key("www-authenticate"));
    assert_eq!(upstream.hits(), 0);
}

#[tokio::test]
async fn claims_that_fail_are_403() {
    let idp = Idp::start().await;
    let extra = json!({"claims": "Equals(`grp`, `admin`)"});
    let upstream = Upstream::start(middleware(idp.token_endpoint(), extra)).await;
    assert_eq!(
        upstream
            .get_as("tester-client", "tester-secret")
            .await
            .status,
        403
    );
    assert_eq!(
        upstream.get_as("basic-client", "basic-secret").await.status,
        200
    );
    assert_eq!(upstream.hits(), 1);
}

#[tokio::test]
async fn claims_on_an_opaque_token_fail_closed_with_403() {
    let idp = Idp::start().await;
    let extra = json!({"claims": "!Equals(`grp`, `testers`)"});
    let upstream = Upstream::start(middleware(idp.token_endpoint(), extra)).await;
    assert_eq!(
        upstream
            .get_as("opaque-client", "opaque-secret")
            .await
            .status,
        403
    );
    assert_eq!(upstream.hits(), 0);
}

#[tokio::test]
async fn an_unreachable_token_endpoint_is_502() {
    let url = format!("http://127.0.0.1:{}/token", closed_port().await);
    let upstream = Upstream::start(middleware(&url, json!({}))).await;
    let echo = upstream.get_as("basic-client", "basic-secret").await;
    assert_eq!(echo.status, 502, "{echo:?}");
    assert!(echo.seen["body"].as_str().unwrap().contains("unreachable"));
}

#[tokio::test]
async fn server_errors_and_429_after_retries_are_502() {
    let idp = Idp::start().await;
    let upstream = Upstream::start(middleware(idp.token_endpoint(), json!({}))).await;
    idp.fail(503, 2).await; // the first attempt and the one retry
    assert_eq!(
        upstream.get_as("basic-client", "basic-secret").await.status,
        502
    );
    idp.fail(429, 2).await;
    assert_eq!(
        upstream.get_as("basic-client", "basic-secret").await.status,
        502
    );
    assert_eq!(idp.stats().await.injected, 4);
    // A burst shorter than the retries is ridden out.
    idp.fail(503, 1).await;
    assert_eq!(
        upstream.get_as("basic-client", "basic-secret").await.status,
        200
    );
}

#[tokio::test]
async fn a_malformed_token_response_is_502() {
    // Fake server: a 200 without `access_token`.
    let fake = FaultServer::always(Reply::json(200, r#"{"token_type":"Bearer"}"#)).await;
    let upstream = Upstream::start(middleware(fake.url(), json!({}))).await;
    let echo = upstream.get_as("basic-client", "basic-secret").await;
    assert_eq!(echo.status, 502, "{echo:?}");
    assert_eq!(fake.count(), 1, "a malformed answer is not retried");
}

#[tokio::test]
async fn a_last_attempt_that_times_out_is_504() {
    // Fake server: accepts and never answers.
    let fake = FaultServer::always(Reply::Stall).await;
    let extra = json!({"clientConfig": {"timeoutSeconds": 1, "maxRetries": 1}});
    let upstream = Upstream::start(middleware(fake.url(), extra)).await;
    let echo = upstream.get_as("basic-client", "basic-secret").await;
    assert_eq!(echo.status, 504, "{echo:?}");
    assert_eq!(fake.count(), 2, "one attempt and one retry");
}
