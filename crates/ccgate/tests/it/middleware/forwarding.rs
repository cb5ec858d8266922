//! What reaches the upstream (SPEC §2.4, §2.5).

use serde_json::json;

use super::{AUDIENCE, claims_of, middleware};
use crate::support::idp::Idp;
use crate::support::upstream::{Upstream, basic};

#[tokio::test]
async fn a_good_client_reaches_the_upstream_with_a_bearer_token_and_its_claims() {
    let idp = Idp::start().await;
    let extra = json!({
        "claims": "Equals(`grp`, `admin`) && Contains(`areas`, `home`)",
        "forwardHeaders": {"X-Group": "grp", "X-Expires-At": "exp", "X-Areas": "areas", "X-User": "user.name", "X-None": "missing"},
        "usernameClaim": "userId",
    });
    let upstream = Upstream::start(middleware(idp.token_endpoint(), extra)).await;
    let echo = upstream
        .get(&[
            ("authorization", &basic("basic-client", "basic-secret")),
            ("x-group", "spoofed-by-caller"),
            ("x-areas", "spoofed-too"),
        ])
        .await;
    assert_eq!(echo.status, 200, "{echo:?}");

    let token = echo.bearer();
    let claims = claims_of(&token);
    assert_eq!(
        claims["aud"], AUDIENCE,
        "the audience reached the token request"
    );
    assert_eq!(claims["client_id"], "basic-client");
    assert_eq!(
        echo.seen_header("x-group"),
        ["admin"],
        "caller's value removed first"
    );
    assert_eq!(
        echo.seen_header("x-expires-at"),
        [claims["exp"].as_u64().unwrap().to_string()]
    );
    assert_eq!(
        echo.seen_header("x-areas"),
        ["office", "home"],
        "one value per element"
    );
    assert_eq!(echo.seen_header("x-user"), ["John Snow"]);
    assert_eq!(
        echo.seen_header("x-none"),
        [""],
        "a missing claim gives an empty value"
    );
    assert_eq!(echo.seen["username"], "john");
    let all_headers = echo.seen["headers"].to_string();
    assert!(
        !all_headers.contains("basic-secret") && !all_headers.contains("Basic "),
        "{all_headers}"
    );
}

#[tokio::test]
async fn gateway_level_uses_its_own_credentials_and_drops_the_callers() {
    let idp = Idp::start().await;
    let extra = json!({"clientId": "basic-client", "clientSecret": "basic-secret"});
    let upstream = Upstream::start(middleware(idp.token_endpoint(), extra)).await;
    let anonymous = upstream.get(&[]).await;
    assert_eq!(anonymous.status, 200, "{anonymous:?}");
    let with_junk = upstream
        .get(&[("authorization", "Basic c29tZTpvdGhlcg==")])
        .await;
    assert_eq!(with_junk.status, 200);
    assert_eq!(claims_of(&with_junk.bearer())["client_id"], "basic-client");
    assert_eq!(idp.stats().await.total, 1, "one token for every caller");
}

#[tokio::test]
async fn a_secret_with_reserved_characters_is_sent_correctly() {
    let idp = Idp::start().await;
    let upstream = Upstream::start(middleware(idp.token_endpoint(), json!({}))).await;
    let echo = upstream.get_as("reserved-client", "s:e/c+r&e=t%?@x").await;
    assert_eq!(echo.status, 200, "{echo:?}");
    assert_eq!(claims_of(&echo.bearer())["client_id"], "reserved-client");
}

#[tokio::test]
async fn auto_method_finds_body_credentials_for_a_post_client() {
    let idp = Idp::start().await;
    let upstream = Upstream::start(middleware(
        idp.token_endpoint(),
        json!({"authMethod": "auto"}),
    ))
    .await;
    let echo = upstream.get_as("post-client", "post-secret").await;
    assert_eq!(echo.status, 200, "{echo:?}");
    assert_eq!(claims_of(&echo.bearer())["grp"], "ops");
}

#[tokio::test]
async fn scopes_are_requested() {
    let idp = Idp::start().await;
    let upstream = Upstream::start(middleware(
        idp.token_endpoint(),
        json!({"scopes": ["read", "write"]}),
    ))
    .await;
    let echo = upstream.get_as("basic-client", "basic-secret").await;
    assert_eq!(claims_of(&echo.bearer())["scope"], "read write");
}

#[tokio::test]
async fn an_opaque_token_without_claims_passes_with_empty_forwarded_headers() {
    let idp = Idp::start().await;
    let extra = json!({"forwardHeaders": {"X-Group": "grp"}, "usernameClaim": "sub"});
    let upstream = Upstream::start(middleware(idp.token_endpoint(), extra)).await;
    let echo = upstream
        .get(&[
            ("authorization", &basic("opaque-client", "opaque-secret")),
            ("x-group", "spoofed"),
        ])
        .await;
    assert_eq!(echo.status, 200, "{echo:?}");
    assert_eq!(echo.bearer().split('.').count(), 1, "opaque");
    assert_eq!(echo.seen_header("x-group"), [""]);
    assert!(echo.seen["username"].is_null());
}
