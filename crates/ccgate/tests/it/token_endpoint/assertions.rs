//! Client assertions (RFC 7523 §2.2: `client_secret_jwt`,
//! `private_key_jwt`), resource indicators (RFC 8707) and extra form
//! parameters against the real test IdP, checked as the IdP received them.

use std::collections::BTreeMap;
use std::time::{SystemTime, UNIX_EPOCH};

use ccgate::token::{AuthMethod, CredentialsLevel, EndpointSettings, FetchError};
use secrecy::SecretString;
use serde_json::{Value, json};

use super::{checked, credentials, endpoint, jwt_payload, settings};
use crate::support::idp::{Idp, Recorded, test_key};

const JWT_CLIENT: &str = "jwt-secret-client";
const JWT_SECRET: &str = "jwt-secret-0123456789abcdef0123456789abcdef";
const KEY_CLIENT: &str = "key-client";

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock")
        .as_secs()
}

fn key_settings(url: &str, key: &str, kid: Option<&str>) -> EndpointSettings {
    EndpointSettings {
        auth_method: AuthMethod::PrivateKeyJwt,
        private_key: Some(SecretString::from(test_key(key))),
        private_key_id: kid.map(str::to_owned),
        ..settings(url)
    }
}

/// Checks the RFC 7523 claims of `request`'s assertion and returns its
/// `jti`.
fn check_assertion(request: &Recorded, client_id: &str, token_endpoint: &str, alg: &str) -> String {
    assert_eq!(request.params["client_id"], client_id, "{request:?}");
    assert_eq!(
        request.params["client_assertion_type"],
        "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
    );
    assert!(!request.params.contains_key("client_secret"), "{request:?}");
    let assertion = request.assertion.as_ref().expect("an assertion");
    assert_eq!(assertion.header["alg"], alg);
    let claims = &assertion.claims;
    assert_eq!(claims["iss"], client_id);
    assert_eq!(claims["sub"], client_id);
    assert_eq!(claims["aud"], token_endpoint);
    let iat = claims["iat"].as_u64().expect("iat");
    let exp = claims["exp"].as_u64().expect("exp");
    assert!(iat.abs_diff(now()) <= 5, "iat {iat}");
    assert!(exp > iat && exp - iat <= 60, "exp {exp} iat {iat}");
    let jti = claims["jti"].as_str().expect("jti");
    assert!(jti.len() >= 16, "{jti}");
    jti.to_owned()
}

#[tokio::test]
async fn client_secret_jwt_sends_an_hs256_assertion() {
    let idp = Idp::start().await;
    let endpoint = endpoint(EndpointSettings {
        auth_method: AuthMethod::ClientSecretJwt,
        ..settings(idp.token_endpoint())
    });
    let token = endpoint
        .fetch(&credentials(JWT_CLIENT, JWT_SECRET))
        .await
        .expect("token");
    assert_eq!(jwt_payload(&token.access_token)["grp"], "jwt");
    let again = endpoint
        .fetch(&credentials(JWT_CLIENT, JWT_SECRET))
        .await
        .expect("a second token: a fresh jti is not a replay");
    drop(again);
    let stats = idp.stats().await;
    assert_eq!(stats.requests.len(), 2);
    let first = check_assertion(
        &stats.requests[0],
        JWT_CLIENT,
        idp.token_endpoint(),
        "HS256",
    );
    let second = check_assertion(
        &stats.requests[1],
        JWT_CLIENT,
        idp.token_endpoint(),
        "HS256",
    );
    assert_ne!(first, second);

    let error = endpoint
        .fetch(&credentials(
            JWT_CLIENT,
            "wrong-secret-0123456789abcdef0123456789",
        ))
        .await
        .expect_err("wrong secret");
    let error = checked(error, &["wrong-secret", JWT_SECRET]);
    assert!(
        matches!(error, FetchError::Rejected { status: 401, .. }),
        "{error:?}"
    );
    assert_eq!(error.http_status(CredentialsLevel::Application), 401);
    assert_eq!(error.http_status(CredentialsLevel::Gateway), 502);
}

#[tokio::test]
async fn private_key_jwt_signs_with_each_supported_key() {
    let idp = Idp::start().await;
    for (file, alg, kid) in [
        ("rsa-2048.pkcs8.pem", "RS256", Some("rsa-2048.pkcs8")),
        ("rsa-2048.pkcs1.pem", "RS256", None),
        ("ec-p256.sec1.pem", "ES256", Some("ec-p256.sec1")),
        ("ec-p256.pkcs8.pem", "ES256", None),
        ("ed25519.pem", "EdDSA", Some("ed25519")),
    ] {
        idp.reset().await;
        let endpoint = endpoint(key_settings(idp.token_endpoint(), file, kid));
        let token = endpoint
            .fetch(&ccgate::credentials::Credentials::new(
                KEY_CLIENT,
                SecretString::from(""),
            ))
            .await
            .unwrap_or_else(|e| panic!("{file}: {e}"));
        assert_eq!(jwt_payload(&token.access_token)["grp"], "keys", "{file}");
        let stats = idp.stats().await;
        let request = stats.requests.last().expect("recorded");
        check_assertion(request, KEY_CLIENT, idp.token_endpoint(), alg);
        let header = &request.assertion.as_ref().expect("assertion").header;
        assert_eq!(header.get("kid").and_then(Value::as_str), kid, "{file}");
        let debug = format!("{endpoint:?}");
        assert!(debug.contains(alg), "{debug}");
        assert!(
            !debug.contains(test_key(file).lines().nth(1).expect("line")),
            "{debug}"
        );
    }
}

#[tokio::test]
async fn an_unregistered_key_is_rejected_without_showing_the_key() {
    let idp = Idp::start().await;
    let endpoint = endpoint(key_settings(
        idp.token_endpoint(),
        "ec-p256-unregistered.sec1.pem",
        None,
    ));
    let error = endpoint
        .fetch(&ccgate::credentials::Credentials::new(
            KEY_CLIENT,
            SecretString::from(""),
        ))
        .await
        .expect_err("unknown key");
    let key = test_key("ec-p256-unregistered.sec1.pem");
    let error = checked(error, &[key.lines().nth(1).expect("line")]);
    assert!(
        matches!(error, FetchError::Rejected { status: 401, .. }),
        "{error:?}"
    );
    assert_eq!(error.http_status(CredentialsLevel::Gateway), 502);
}

#[tokio::test]
async fn a_retry_signs_a_new_assertion() {
    let idp = Idp::start().await;
    idp.fail(503, 1).await;
    let endpoint = endpoint(key_settings(
        idp.token_endpoint(),
        "ed25519.pem",
        Some("ed25519"),
    ));
    endpoint
        .fetch(&ccgate::credentials::Credentials::new(
            KEY_CLIENT,
            SecretString::from(""),
        ))
        .await
        .expect("the retry succeeds");
    let stats = idp.stats().await;
    assert_eq!((stats.injected, stats.success), (1, 1));
    let jtis: Vec<String> = stats
        .requests
        .iter()
        .map(|request| check_assertion(request, KEY_CLIENT, idp.token_endpoint(), "EdDSA"))
        .collect();
    assert_eq!(jtis.len(), 2);
    assert_ne!(jtis[0], jtis[1], "the retry must not replay the jti");
}

#[tokio::test]
async fn resource_and_parameters_are_sent_and_audience_may_be_left_out() {
    let idp = Idp::start().await;
    let endpoint = endpoint(EndpointSettings {
        auth_method: AuthMethod::ClientSecretBasic,
        resource: vec!["https://api.example.com/orders".into()],
        parameters: BTreeMap::from([("tenant".to_owned(), "a b&c".to_owned())]),
        ..EndpointSettings {
            audience: String::new(),
            ..settings(idp.token_endpoint())
        }
    });
    let token = endpoint
        .fetch(&credentials("basic-client", "basic-secret"))
        .await
        .expect("token");
    assert_eq!(
        jwt_payload(&token.access_token)["aud"],
        "https://api.example.com/orders"
    );
    let stats = idp.stats().await;
    let params = &stats.requests[0].params;
    assert_eq!(params["resource"], "https://api.example.com/orders");
    assert_eq!(params["tenant"], "a b&c");
    assert!(!params.contains_key("audience"), "{params:?}");

    // Two resources are two parameters; this server allows one per
    // client credentials grant and says so.
    idp.reset().await;
    let two = endpoint_with_resources(
        idp.token_endpoint(),
        &["https://a.example/", "https://b.example/"],
    );
    let error = two
        .fetch(&credentials("basic-client", "basic-secret"))
        .await
        .expect_err("one resource only");
    assert!(
        matches!(error, FetchError::Rejected { status: 400, .. }),
        "{error:?}"
    );
    assert!(error.to_string().contains("invalid_target"), "{error}");
    let stats = idp.stats().await;
    assert_eq!(
        stats.requests[0].params["resource"],
        json!(["https://a.example/", "https://b.example/"])
    );
}

fn endpoint_with_resources(url: &str, resources: &[&str]) -> ccgate::token::Endpoint {
    endpoint(EndpointSettings {
        auth_method: AuthMethod::ClientSecretBasic,
        resource: resources.iter().map(|r| (*r).to_owned()).collect(),
        ..settings(url)
    })
}

#[tokio::test]
async fn tls_client_auth_sends_only_the_client_id_over_mutual_tls() {
    let pki = crate::support::tls::Pki::new();
    let idp = Idp::start_with(
        crate::support::idp::IdpOptions::default()
            .tls(&pki)
            .require_client_cert(),
    )
    .await;
    let endpoint = endpoint(EndpointSettings {
        auth_method: AuthMethod::TlsClientAuth,
        tls: ccgate::token::TlsSettings {
            ca: Some(pki.ca_pem.clone()),
            cert: Some(pki.client_cert_pem.clone()),
            key: Some(pki.client_key_pem.as_str().into()),
            insecure_skip_verify: false,
        },
        ..settings(idp.token_endpoint())
    });
    let no_secret = |id: &str| ccgate::credentials::Credentials::new(id, SecretString::from(""));
    let token = endpoint
        .fetch(&no_secret("tls-client"))
        .await
        .expect("the certificate authenticates");
    assert_eq!(jwt_payload(&token.access_token)["grp"], "mtls");
    let stats = idp.stats().await;
    let request = &stats.requests[0];
    assert_eq!(request.params["client_id"], "tls-client");
    assert!(
        !request.params.contains_key("client_secret") && request.assertion.is_none(),
        "{request:?}"
    );

    // The certificate is not registered for another client.
    let error = endpoint
        .fetch(&no_secret("basic-client"))
        .await
        .expect_err("basic-client is not a tls_client_auth client");
    assert!(
        matches!(error, FetchError::Rejected { status: 401, .. }),
        "{error:?}"
    );
    assert_eq!(error.http_status(CredentialsLevel::Gateway), 502);
}
