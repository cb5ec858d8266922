//! `introspection` (SPEC §2.7, RFC 7662) against the real test IdP: its
//! opaque tokens are introspected once, the response is the claims set,
//! an inactive token is refused, a failing introspection endpoint is 502.

use serde_json::json;

use super::{closed_port, middleware};
use crate::support::LogCapture;
use crate::support::idp::Idp;
use crate::support::upstream::{Upstream, basic};

#[tokio::test]
async fn an_opaque_token_is_introspected_once_and_its_response_is_the_claims_set() {
    let idp = Idp::start().await;
    let extra = json!({
        "introspection": {"url": idp.introspection_endpoint()},
        "claims": "Equals(`grp`, `opaque`)",
        "forwardHeaders": {"X-User": "user.name", "X-Client": "client_id"},
        "usernameClaim": "userId",
    });
    let upstream = Upstream::start(middleware(idp.token_endpoint(), extra)).await;
    for _ in 0..3 {
        let echo = upstream
            .get(&[
                ("authorization", &basic("opaque-client", "opaque-secret")),
                ("x-user", "spoofed"),
            ])
            .await;
        assert_eq!(echo.status, 200, "{echo:?}");
        assert_eq!(echo.bearer().split('.').count(), 1, "an opaque token");
        assert_eq!(echo.seen_header("x-user"), ["Opaque Olive"]);
        assert_eq!(echo.seen_header("x-client"), ["opaque-client"]);
        assert_eq!(echo.seen["username"], "olive");
    }
    let stats = idp.stats().await;
    assert_eq!(stats.total, 1, "one token");
    assert_eq!(
        stats.introspections, 1,
        "introspected once, not per request"
    );
}

#[tokio::test]
async fn a_jwt_is_not_introspected() {
    let idp = Idp::start().await;
    let extra = json!({"introspection": {"url": idp.introspection_endpoint()},
                       "claims": "Equals(`grp`, `admin`)"});
    let upstream = Upstream::start(middleware(idp.token_endpoint(), extra)).await;
    let echo = upstream.get_as("basic-client", "basic-secret").await;
    assert_eq!(echo.status, 200, "{echo:?}");
    assert_eq!(idp.stats().await.introspections, 0);
}

#[tokio::test]
async fn introspection_takes_its_own_credentials_and_logs_no_secret() {
    let logs = LogCapture::start();
    let idp = Idp::start().await;
    let extra = json!({
        "clientID": "opaque-client", "clientSecret": "opaque-secret",
        "introspection": {"url": idp.introspection_endpoint(), "clientID": "post-client",
                          "clientSecret": "post-secret", "authMethod": "client_secret_post"},
        "forwardHeaders": {"X-Group": "grp"},
    });
    let upstream = Upstream::start(middleware(idp.token_endpoint(), extra)).await;
    let echo = upstream.get(&[]).await;
    assert_eq!(echo.status, 200, "{echo:?}");
    assert_eq!(echo.seen_header("x-group"), ["opaque"]);
    let stats = idp.stats().await;
    assert_eq!(stats.introspections, 1);
    let text = logs.text();
    for secret in ["opaque-secret", "post-secret", &echo.bearer()] {
        assert!(!text.contains(secret), "{secret} in the log:\n{text}");
    }
}

#[tokio::test]
async fn an_inactive_token_is_403_and_never_forwarded() {
    let idp = Idp::start().await;
    // oidc-provider answers {"active": false} to every introspection by
    // no-introspect-client (testing/idp/README.md).
    let extra = json!({
        "clientID": "opaque-client", "clientSecret": "opaque-secret",
        "introspection": {"url": idp.introspection_endpoint(),
                          "clientID": "no-introspect-client", "clientSecret": "no-introspect-secret"},
    });
    let upstream = Upstream::start(middleware(idp.token_endpoint(), extra)).await;
    for _ in 0..3 {
        let echo = upstream.get(&[]).await;
        assert_eq!(echo.status, 403, "{echo:?}");
    }
    assert_eq!(upstream.hits(), 0, "never forwarded");
    let stats = idp.stats().await;
    assert_eq!(
        (stats.total, stats.introspections),
        (1, 1),
        "remembered for the negative-cache time, not fetched per request"
    );
}

#[tokio::test]
async fn a_failing_introspection_endpoint_is_502_and_nothing_is_forwarded() {
    let idp = Idp::start().await;
    let port = closed_port().await;
    let extra = json!({
        "introspection": {"url": format!("http://127.0.0.1:{port}/introspect")},
        "forwardHeaders": {"X-Group": "grp"},
    });
    let upstream = Upstream::start(middleware(idp.token_endpoint(), extra)).await;
    let echo = upstream.get_as("opaque-client", "opaque-secret").await;
    assert_eq!(echo.status, 502, "{echo:?}");
    let body = echo.seen["body"].as_str().unwrap_or_default().to_owned();
    assert!(
        body.contains("introspection") && !body.contains("127.0.0.1"),
        "{body}"
    );
    assert_eq!(upstream.hits(), 0);
    // Not cached: the next request tries again (a new token).
    let again = upstream.get_as("opaque-client", "opaque-secret").await;
    assert_eq!(again.status, 502);
    assert_eq!(idp.stats().await.total, 2);
}

#[tokio::test]
async fn an_oversized_or_malformed_introspection_response_is_502() {
    use crate::support::fault_server::{FaultServer, Reply};
    let idp = Idp::start().await;
    let huge = format!(r#"{{"active":true,"pad":"{}"}}"#, "x".repeat(70 * 1024));
    // FAKE introspection endpoints: answers oidc-provider never gives.
    let oversized = FaultServer::always(Reply::json(200, &huge)).await;
    let no_active = FaultServer::always(Reply::json(200, r#"{"scope":"read"}"#)).await;
    for server in [&oversized, &no_active] {
        let extra = json!({"introspection": {"url": server.url()}});
        let upstream = Upstream::start(middleware(idp.token_endpoint(), extra)).await;
        let echo = upstream.get_as("opaque-client", "opaque-secret").await;
        assert_eq!(echo.status, 502, "{echo:?}");
        assert_eq!(upstream.hits(), 0);
        assert_eq!(server.count(), 1, "a malformed answer is not retried");
    }
}

#[tokio::test]
async fn a_dead_introspection_endpoint_starts_the_cool_down() {
    let idp = Idp::start().await;
    let port = closed_port().await;
    let extra = json!({
        "clientID": "opaque-client", "clientSecret": "opaque-secret",
        "introspection": {"url": format!("http://127.0.0.1:{port}/introspect")},
    });
    let upstream = Upstream::start(middleware(idp.token_endpoint(), extra)).await;
    for _ in 0..5 {
        assert_eq!(upstream.get(&[]).await.status, 502);
    }
    let echo = upstream.get(&[]).await;
    assert_eq!(echo.status, 503, "cooling down: {echo:?}");
    assert!(echo.headers.contains_key("retry-after"));
    assert_eq!(
        idp.stats().await.total,
        5,
        "no token request while cooling down"
    );
}
