//! `introspection` and `verify` through `ccgate serve`, read from YAML in
//! any case, against the real test IdP (SPEC §2.7).

use crate::gateway_auth::setup_with;
use crate::support::basic;
use crate::support::echo::Echo;
use crate::support::idp::Idp;

#[tokio::test]
async fn an_opaque_token_is_introspected_and_a_jwt_verified_through_the_gateway() {
    let idp = Idp::start().await;
    let echo = Echo::start().await;
    let options = format!(
        "url: {}\naudience: https://api.example.com\n\
         forwardHeaders:\n  X-Group: grp\n\
         Introspection:\n  URL: {}\n\
         VERIFY:\n  jwksUrl: {}\n  issuer: {}\n",
        idp.token_endpoint(),
        idp.introspection_endpoint(),
        idp.jwks_uri(),
        idp.issuer()
    );
    let s = setup_with(idp, echo, &options).await;
    // A JWT: verified with the IdP's JWKS, not introspected.
    let (status, _, body) = s
        .get(
            "/v1/things",
            &[("authorization", &basic("basic-client", "basic-secret"))],
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let seen: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(seen["headers"]["x-group"], serde_json::json!(["admin"]));
    // An opaque token with verify: refused (502), never forwarded.
    let (status, _, body) = s
        .get(
            "/v1/things",
            &[("authorization", &basic("opaque-client", "opaque-secret"))],
        )
        .await;
    assert_eq!(status, 502, "{body}");
    assert!(body.contains("verification"), "{body}");
    let stats = s.idp.stats().await;
    assert_eq!((stats.jwks, stats.introspections), (1, 0));
    let output = format!("{}{}", s.ccgate.stdout(), s.ccgate.stderr());
    assert!(!output.contains("basic-secret") && !output.contains("opaque-secret"));
}

#[tokio::test]
async fn an_inactive_token_is_403_through_the_gateway() {
    let idp = Idp::start().await;
    let echo = Echo::start().await;
    let options = format!(
        "url: {}\naudience: https://api.example.com\n\
         clientID: opaque-client\nclientSecret: opaque-secret\n\
         introspection:\n  url: {}\n  clientId: no-introspect-client\n  clientSecret: no-introspect-secret\n",
        idp.token_endpoint(),
        idp.introspection_endpoint(),
    );
    let s = setup_with(idp, echo, &options).await;
    let (status, _, body) = s.get("/v1/things", &[]).await;
    assert_eq!(status, 403, "{body}");
    assert_eq!(s.idp.stats().await.introspections, 1);
    let output = format!("{}{}", s.ccgate.stdout(), s.ccgate.stderr());
    assert!(!output.contains("no-introspect-secret"), "{output}");
}
