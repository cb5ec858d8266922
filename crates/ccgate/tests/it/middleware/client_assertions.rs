//! `authMethod: client_secret_jwt` and `private_key_jwt` through the
//! middleware: the SPEC §2.6 status of a wrong secret or key at each
//! level, and no key material in answers or `Debug`.

use serde_json::json;

use super::{claims_of, middleware, options};
use crate::support::idp::{Idp, test_key};
use crate::support::upstream::Upstream;

const JWT_SECRET: &str = "jwt-secret-0123456789abcdef0123456789abcdef";

#[tokio::test]
async fn client_secret_jwt_at_application_level_signs_with_the_callers_secret() {
    let idp = Idp::start().await;
    let upstream = Upstream::start(middleware(
        idp.token_endpoint(),
        json!({"authMethod": "client_secret_jwt"}),
    ))
    .await;
    let echo = upstream.get_as("jwt-secret-client", JWT_SECRET).await;
    assert_eq!(echo.status, 200, "{echo:?}");
    assert_eq!(claims_of(&echo.bearer())["grp"], "jwt");
    let stats = idp.stats().await;
    let assertion = stats.requests[0].assertion.as_ref().expect("assertion");
    assert_eq!(assertion.header["alg"], "HS256");

    let wrong = upstream
        .get_as("jwt-secret-client", "not-the-secret-0123456789abcdef0123")
        .await;
    assert_eq!(wrong.status, 401, "{wrong:?}");
    assert!(!wrong.seen.to_string().contains("not-the-secret"));
}

#[tokio::test]
async fn client_secret_jwt_at_gateway_level_with_a_wrong_secret_is_502() {
    let idp = Idp::start().await;
    let upstream = Upstream::start(middleware(
        idp.token_endpoint(),
        json!({"authMethod": "client_secret_jwt", "clientID": "jwt-secret-client",
               "clientSecret": "wrong-secret-0123456789abcdef0123456789"}),
    ))
    .await;
    let echo = upstream.get(&[]).await;
    assert_eq!(echo.status, 502, "{echo:?}");
    assert!(!echo.seen.to_string().contains("wrong-secret"));
}

#[tokio::test]
async fn private_key_jwt_at_gateway_level() {
    let idp = Idp::start().await;
    let key = test_key("rsa-2048.pkcs1.pem");
    let options = options(
        idp.token_endpoint(),
        json!({"authMethod": "private_key_jwt", "clientID": "key-client",
               "privateKey": key, "privateKeyID": "rsa-2048.pkcs8"}),
    );
    let line = key.lines().nth(1).expect("a key line");
    assert!(!format!("{options:?}").contains(line));
    let middleware = ccgate::Middleware::new(options).expect("valid");
    assert!(!format!("{middleware:?}").contains(line));
    let upstream = Upstream::start(middleware).await;
    let echo = upstream.get(&[]).await;
    assert_eq!(echo.status, 200, "{echo:?}");
    assert_eq!(claims_of(&echo.bearer())["client_id"], "key-client");
    let stats = idp.stats().await;
    let header = &stats.requests[0]
        .assertion
        .as_ref()
        .expect("assertion")
        .header;
    assert_eq!(
        (header["alg"].as_str(), header["kid"].as_str()),
        (Some("RS256"), Some("rsa-2048.pkcs8"))
    );

    let unregistered = Upstream::start(middleware_with_key(
        idp.token_endpoint(),
        &test_key("ec-p256-unregistered.sec1.pem"),
    ))
    .await;
    let echo = unregistered.get(&[]).await;
    assert_eq!(echo.status, 502, "{echo:?}");
}

fn middleware_with_key(url: &str, key: &str) -> ccgate::Middleware {
    middleware(
        url,
        json!({"authMethod": "private_key_jwt", "clientID": "key-client", "privateKey": key}),
    )
}

#[tokio::test]
async fn tls_client_auth_at_gateway_level() {
    let pki = crate::support::tls::Pki::new();
    let idp = Idp::start_with(
        crate::support::idp::IdpOptions::default()
            .tls(&pki)
            .require_client_cert(),
    )
    .await;
    let upstream = Upstream::start(middleware(
        idp.token_endpoint(),
        json!({"authMethod": "tls_client_auth", "clientID": "tls-client",
               "clientConfig": {"tls": {"ca": pki.ca_pem, "cert": pki.client_cert_pem,
                                        "key": pki.client_key_pem}}}),
    ))
    .await;
    let echo = upstream.get(&[]).await;
    assert_eq!(echo.status, 200, "{echo:?}");
    assert_eq!(claims_of(&echo.bearer())["client_id"], "tls-client");
}

#[tokio::test]
async fn tls_client_auth_with_a_certificate_of_another_subject_is_502() {
    // The handshake succeeds (same CA), but the IdP registered tls-client
    // by the DNS SAN `ccgate-test-client`: it answers 401 invalid_client,
    // a rejection of gateway-level credentials (SPEC §2.6: 502).
    let pki = crate::support::tls::Pki::new();
    let idp = Idp::start_with(
        crate::support::idp::IdpOptions::default()
            .tls(&pki)
            .require_client_cert(),
    )
    .await;
    let upstream = Upstream::start(middleware(
        idp.token_endpoint(),
        json!({"authMethod": "tls_client_auth", "clientID": "tls-client",
               "clientConfig": {"tls": {"ca": pki.ca_pem, "cert": pki.stranger_cert_pem,
                                        "key": pki.stranger_key_pem}}}),
    ))
    .await;
    let echo = upstream.get(&[]).await;
    assert_eq!(echo.status, 502, "{echo:?}");
    assert!(
        echo.seen["body"]
            .as_str()
            .is_some_and(|body| body.contains("invalid_client")),
        "{echo:?}"
    );
    assert_eq!(upstream.hits(), 0);
    let stats = idp.stats().await;
    assert_eq!((stats.total, stats.status(401)), (1, 1), "not retried");
}
