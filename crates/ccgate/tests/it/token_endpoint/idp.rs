//! Against the real test authorization server (`testing/idp`).

use std::time::Duration;

use ccgate::token::{AuthMethod, CredentialsLevel, EndpointSettings, FetchError, TlsSettings};
use secrecy::ExposeSecret;

use super::{AUDIENCE, checked, credentials, endpoint, jwt_payload, settings};
use crate::support::idp::{ClientStats, Idp, IdpOptions};
use crate::support::tls::Pki;

fn with_method(url: &str, auth_method: AuthMethod) -> EndpointSettings {
    EndpointSettings {
        auth_method,
        ..settings(url)
    }
}

const ONE_OK: ClientStats = ClientStats {
    total: 1,
    success: 1,
};

#[tokio::test]
async fn basic_client_authenticates_with_basic() {
    let idp = Idp::start().await;
    let endpoint = endpoint(with_method(
        idp.token_endpoint(),
        AuthMethod::ClientSecretBasic,
    ));
    let token = endpoint
        .fetch(&credentials("basic-client", "basic-secret"))
        .await
        .expect("token");
    let claims = jwt_payload(&token.access_token);
    assert_eq!(claims["client_id"], "basic-client");
    assert_eq!(claims["grp"], "admin");
    assert_eq!(idp.stats().await.client("basic-client"), ONE_OK);
}

#[tokio::test]
async fn post_client_authenticates_with_body_credentials() {
    let idp = Idp::start().await;
    let endpoint = endpoint(with_method(
        idp.token_endpoint(),
        AuthMethod::ClientSecretPost,
    ));
    let token = endpoint
        .fetch(&credentials("post-client", "post-secret"))
        .await
        .expect("token");
    assert_eq!(jwt_payload(&token.access_token)["grp"], "ops");
    assert_eq!(idp.stats().await.client("post-client"), ONE_OK);
}

#[tokio::test]
async fn an_explicit_method_never_falls_back() {
    let idp = Idp::start().await;
    let endpoint = endpoint(with_method(
        idp.token_endpoint(),
        AuthMethod::ClientSecretBasic,
    ));
    let error = endpoint
        .fetch(&credentials("post-client", "post-secret"))
        .await
        .expect_err("post-client cannot use Basic");
    assert!(
        matches!(error, FetchError::Rejected { status: 401, .. }),
        "{error:?}"
    );
    assert_eq!(idp.stats().await.total, 1);
}

#[tokio::test]
async fn auto_falls_back_to_body_credentials_and_remembers() {
    let idp = Idp::start().await;
    let endpoint = endpoint(settings(idp.token_endpoint()));
    assert_eq!(endpoint.auth_method(), AuthMethod::Auto);
    let post = credentials("post-client", "post-secret");

    endpoint
        .fetch(&post)
        .await
        .expect("token after the fallback");
    let stats = idp.stats().await;
    assert_eq!(
        (stats.total, stats.status(401), stats.status(200)),
        (2, 1, 1)
    );

    idp.reset().await;
    endpoint.fetch(&post).await.expect("token");
    assert_eq!(
        idp.stats().await.client("post-client"),
        ONE_OK,
        "straight to the body"
    );

    // Clones share what was learned; other clients still start with Basic.
    idp.reset().await;
    endpoint.clone().fetch(&post).await.expect("token");
    endpoint
        .fetch(&credentials("basic-client", "basic-secret"))
        .await
        .expect("token");
    let stats = idp.stats().await;
    assert_eq!(stats.client("post-client"), ONE_OK);
    assert_eq!(stats.client("basic-client"), ONE_OK);
}

#[tokio::test]
async fn reserved_characters_in_the_secret_are_urlencoded_in_basic() {
    let idp = Idp::start().await;
    let reserved = credentials("reserved-client", "s:e/c+r&e=t%?@x");
    for method in [AuthMethod::ClientSecretBasic, AuthMethod::Auto] {
        let endpoint = endpoint(with_method(idp.token_endpoint(), method));
        let token = endpoint.fetch(&reserved).await.expect("token");
        assert_eq!(jwt_payload(&token.access_token)["sub"], "reserved-client");
    }
    assert_eq!(
        idp.stats().await.client("reserved-client"),
        ClientStats {
            total: 2,
            success: 2
        }
    );
}

#[tokio::test]
async fn a_wrong_secret_is_rejected_without_retries() {
    let idp = Idp::start().await;
    let wrong = credentials("basic-client", "wrong-secret-3f9a");
    let basic = endpoint(with_method(
        idp.token_endpoint(),
        AuthMethod::ClientSecretBasic,
    ));
    let error = checked(
        basic.fetch(&wrong).await.expect_err("rejected"),
        &["wrong-secret-3f9a"],
    );
    assert_eq!(
        error,
        FetchError::Rejected {
            status: 401,
            oauth_error: Some("invalid_client".into())
        }
    );
    assert_eq!(
        error.http_status(CredentialsLevel::Application).as_u16(),
        401
    );
    assert_eq!(error.http_status(CredentialsLevel::Gateway).as_u16(), 502);
    assert_eq!(idp.stats().await.total, 1);

    // `auto` tries both methods once, then gives the body attempt's answer.
    idp.reset().await;
    let auto = endpoint(settings(idp.token_endpoint()));
    let error = checked(
        auto.fetch(&wrong).await.expect_err("rejected"),
        &["wrong-secret-3f9a"],
    );
    assert!(
        matches!(error, FetchError::Rejected { status: 401, .. }),
        "{error:?}"
    );
    assert_eq!(idp.stats().await.total, 2);
}

#[tokio::test]
async fn audience_and_scopes_reach_the_token() {
    let idp = Idp::start().await;
    let endpoint = endpoint(EndpointSettings {
        scopes: vec!["read".into(), "write".into()],
        ..EndpointSettings::new(idp.token_endpoint(), "https://api.example.com/v1 ü")
    });
    let token = endpoint
        .fetch(&credentials("basic-client", "basic-secret"))
        .await
        .expect("token");
    let claims = jwt_payload(&token.access_token);
    assert_eq!(claims["aud"], "https://api.example.com/v1 ü");
    assert_eq!(claims["scope"], "read write");
    assert_eq!(token.scope.as_deref(), Some("read write"));

    let plain = super::endpoint(settings(idp.token_endpoint()));
    let token = plain
        .fetch(&credentials("basic-client", "basic-secret"))
        .await
        .expect("token");
    assert_eq!(jwt_payload(&token.access_token)["aud"], AUDIENCE);
    assert_eq!(token.scope, None);
}

#[tokio::test]
async fn opaque_tokens_are_accepted() {
    let idp = Idp::start().await;
    let endpoint = endpoint(settings(idp.token_endpoint()));
    let token = endpoint
        .fetch(&credentials("opaque-client", "opaque-secret"))
        .await
        .expect("token");
    assert_ne!(token.access_token.expose_secret().split('.').count(), 3);
    assert_eq!(token.expires_in, Some(Duration::from_secs(300)));
}

#[tokio::test]
async fn expires_in_follows_the_server_ttl() {
    let idp = Idp::start_with(IdpOptions::default().ttl(4)).await;
    let endpoint = endpoint(settings(idp.token_endpoint()));
    let token = endpoint
        .fetch(&credentials("basic-client", "basic-secret"))
        .await
        .expect("token");
    assert_eq!(token.expires_in, Some(Duration::from_secs(4)));
    let claims = jwt_payload(&token.access_token);
    assert_eq!(
        claims["exp"]
            .as_u64()
            .zip(claims["iat"].as_u64())
            .map(|(e, i)| e - i),
        Some(4)
    );
}

#[tokio::test]
async fn https_with_the_test_ca() {
    let pki = Pki::new();
    let idp = Idp::start_with(IdpOptions::default().tls(&pki)).await;
    assert!(idp.token_endpoint().starts_with("https://127.0.0.1:"));
    let endpoint = endpoint(EndpointSettings {
        tls: TlsSettings {
            ca: Some(pki.ca_pem.clone()),
            ..TlsSettings::default()
        },
        ..settings(idp.token_endpoint())
    });
    endpoint
        .fetch(&credentials("basic-client", "basic-secret"))
        .await
        .expect("token over HTTPS");
}

/// Without the CA the certificate is unknown (or, on a machine without a
/// trust store, there is nothing to trust): the handshake fails, which is
/// `Unreachable` with the TLS reason, retried like any connection error.
#[tokio::test]
async fn https_without_the_ca_is_unreachable() {
    let pki = Pki::new();
    let idp = Idp::start_with(IdpOptions::default().tls(&pki)).await;
    let endpoint = endpoint(EndpointSettings {
        max_retries: 1,
        ..settings(idp.token_endpoint())
    });
    let error = checked(
        endpoint
            .fetch(&credentials("basic-client", "basic-secret"))
            .await
            .expect_err("untrusted"),
        &["basic-secret"],
    );
    let FetchError::Unreachable { detail } = &error else {
        panic!("expected Unreachable, got {error:?}");
    };
    assert!(detail.to_lowercase().contains("certificate"), "{detail}");
    assert_eq!(idp.stats().await.total, 0);
}

#[tokio::test]
async fn mutual_tls_with_a_client_certificate() {
    let pki = Pki::new();
    let idp = Idp::start_with(IdpOptions::default().tls(&pki).require_client_cert()).await;
    let tls = TlsSettings {
        ca: Some(pki.ca_pem.clone()),
        cert: Some(pki.client_cert_pem.clone()),
        key: Some(pki.client_key_pem.as_str().into()),
        insecure_skip_verify: false,
    };
    let endpoint = endpoint(EndpointSettings {
        tls: tls.clone(),
        ..settings(idp.token_endpoint())
    });
    endpoint
        .fetch(&credentials("basic-client", "basic-secret"))
        .await
        .expect("token over mTLS");

    // Without the client certificate the handshake is refused.
    let without = super::endpoint(EndpointSettings {
        tls: TlsSettings {
            cert: None,
            key: None,
            ..tls
        },
        max_retries: 0,
        ..settings(idp.token_endpoint())
    });
    let error = without
        .fetch(&credentials("basic-client", "basic-secret"))
        .await
        .expect_err("no client certificate");
    assert!(matches!(error, FetchError::Unreachable { .. }), "{error:?}");
    assert_eq!(idp.stats().await.total, 1, "only the mTLS request arrived");
}

#[tokio::test]
async fn insecure_skip_verify_accepts_an_unknown_ca() {
    let pki = Pki::new();
    let idp = Idp::start_with(IdpOptions::default().tls(&pki)).await;
    let endpoint = endpoint(EndpointSettings {
        tls: TlsSettings {
            insecure_skip_verify: true,
            ..TlsSettings::default()
        },
        ..settings(idp.token_endpoint())
    });
    endpoint
        .fetch(&credentials("basic-client", "basic-secret"))
        .await
        .expect("token without verification");
}

#[tokio::test]
async fn injected_503s_are_retried() {
    let idp = Idp::start().await;
    let endpoint = endpoint(settings(idp.token_endpoint()));
    let basic = credentials("basic-client", "basic-secret");

    idp.fail(503, 2).await;
    endpoint.fetch(&basic).await.expect("token after two 503s");
    let stats = idp.stats().await;
    assert_eq!((stats.total, stats.injected, stats.success), (3, 2, 1));

    idp.reset().await;
    idp.fail(503, 4).await;
    let error = checked(
        endpoint.fetch(&basic).await.expect_err("503s"),
        &["basic-secret"],
    );
    assert_eq!(
        error,
        FetchError::Unavailable {
            status: 503,
            retry_after: Some(Duration::ZERO), // the test IdP sends Retry-After: 0
        }
    );
    assert_eq!(
        error.http_status(CredentialsLevel::Application).as_u16(),
        502
    );
    assert_eq!(idp.stats().await.total, 4, "one attempt and three retries");
}

#[tokio::test]
async fn injected_429_is_retried_and_400_is_not() {
    let idp = Idp::start().await;
    let basic = credentials("basic-client", "basic-secret");
    let endpoint = endpoint(with_method(
        idp.token_endpoint(),
        AuthMethod::ClientSecretBasic,
    ));

    idp.fail(429, 1).await;
    endpoint.fetch(&basic).await.expect("token after a 429");
    assert_eq!(idp.stats().await.status(429), 1);

    idp.reset().await;
    idp.fail(400, 1).await;
    let error = endpoint.fetch(&basic).await.expect_err("400");
    assert_eq!(
        error,
        FetchError::Rejected {
            status: 400,
            oauth_error: Some("server_error".into())
        }
    );
    assert_eq!(idp.stats().await.total, 1);
}

#[tokio::test]
async fn a_slow_server_times_out_per_attempt() {
    let idp = Idp::start().await;
    idp.delay(5_000).await;
    let endpoint = endpoint(EndpointSettings {
        timeout: Duration::from_millis(300),
        max_retries: 1,
        ..settings(idp.token_endpoint())
    });
    let error = endpoint
        .fetch(&credentials("basic-client", "basic-secret"))
        .await
        .expect_err("timeout");
    assert_eq!(error, FetchError::Timeout);
    assert_eq!(error.http_status(CredentialsLevel::Gateway).as_u16(), 504);
    assert_eq!(idp.stats().await.received, 2);
}
