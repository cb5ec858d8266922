//! `verify` (SPEC §2.7): JWT access tokens checked against a JWKS before
//! they are forwarded — the real IdP's, and, for keys and tokens a real
//! server will not produce, a FAKE JWKS server and a FAKE token server
//! ([`FaultServer`]) serving raw forged tokens.

use aws_lc_rs::hmac;
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{
    ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, Ed25519KeyPair, KeyPair as _,
};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Value, json};

use super::{AUDIENCE, middleware};
use crate::support::LogCapture;
use crate::support::fault_server::{FaultServer, Reply};
use crate::support::idp::Idp;
use crate::support::upstream::Upstream;

fn b64(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

/// `header.payload.signature` with `sign` over the first two.
fn jwt(header: &Value, claims: &Value, sign: impl FnOnce(&[u8]) -> Vec<u8>) -> String {
    let signed = format!(
        "{}.{}",
        b64(header.to_string().as_bytes()),
        b64(claims.to_string().as_bytes())
    );
    let signature = sign(signed.as_bytes());
    format!("{signed}.{}", b64(&signature))
}

/// An Ed25519 key of the test's own, with its public JWK under `kid`.
struct TestKey {
    pair: Ed25519KeyPair,
    kid: &'static str,
}

impl TestKey {
    fn new(kid: &'static str) -> Self {
        let pkcs8 = Ed25519KeyPair::generate_pkcs8(&SystemRandom::new()).expect("key");
        let pair = Ed25519KeyPair::from_pkcs8(pkcs8.as_ref()).expect("key");
        Self { pair, kid }
    }

    fn jwk(&self) -> Value {
        json!({"kty": "OKP", "crv": "Ed25519", "use": "sig", "kid": self.kid,
               "x": b64(self.pair.public_key().as_ref())})
    }

    fn token(&self, claims: &Value) -> String {
        let header = json!({"alg": "EdDSA", "typ": "at+jwt", "kid": self.kid});
        jwt(&header, claims, |signed| {
            self.pair.sign(signed).as_ref().to_vec()
        })
    }
}

fn claims() -> Value {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    json!({"iss": "https://issuer.test", "aud": ["other", AUDIENCE], "exp": now + 300,
           "client_id": "app", "grp": "admin"})
}

/// A FAKE token endpoint answering request `n` with `tokens[n]` (the
/// last one after that).
async fn token_server(tokens: Vec<String>) -> FaultServer {
    FaultServer::start(move |n| {
        let token = &tokens[n.min(tokens.len() - 1)];
        Reply::json(
            200,
            &format!(r#"{{"access_token":"{token}","token_type":"Bearer","expires_in":60}}"#),
        )
    })
    .await
}

/// A FAKE JWKS server answering fetch `n` with `sets[n]` (the last one
/// after that).
async fn jwks_server(sets: Vec<Vec<Value>>) -> FaultServer {
    FaultServer::start(move |n| {
        Reply::json(
            200,
            &json!({"keys": sets[n.min(sets.len() - 1)]}).to_string(),
        )
    })
    .await
}

#[tokio::test]
async fn the_idps_tokens_verify_with_its_jwks_fetched_once() {
    let idp = Idp::start().await;
    let extra = json!({"verify": {"jwksUrl": idp.jwks_uri(), "issuer": idp.issuer(),
                                  "audience": AUDIENCE}});
    let upstream = Upstream::start(middleware(idp.token_endpoint(), extra)).await;
    for (id, secret) in [
        ("basic-client", "basic-secret"),
        ("reserved-client", "s:e/c+r&e=t%?@x"),
        ("basic-client", "basic-secret"),
    ] {
        let echo = upstream.get_as(id, secret).await;
        assert_eq!(echo.status, 200, "{id}: {echo:?}");
    }
    let stats = idp.stats().await;
    assert_eq!(stats.jwks, 1, "fetched once, kept");
    assert_eq!(stats.total, 2, "a memory hit is not verified again");
}

#[tokio::test]
async fn a_token_that_fails_is_502_never_forwarded_nor_logged() {
    let logs = LogCapture::start();
    let idp = Idp::start().await;
    // The IdP's own kid, another key: a signature that does not verify.
    let jwks: Value = reqwest::get(idp.jwks_uri())
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let kid = jwks["keys"][0]["kid"].as_str().unwrap().to_owned();
    let impostor = EcdsaKeyPair::generate(&ECDSA_P256_SHA256_FIXED_SIGNING).expect("key");
    let point = impostor.public_key().as_ref().to_vec();
    let fake = jwks_server(vec![vec![json!({"kty": "EC", "crv": "P-256", "kid": kid,
        "x": b64(&point[1..33]), "y": b64(&point[33..65])})]])
    .await;
    let wrong_key = json!({"verify": {"jwksURL": fake.url()}});
    let wrong_issuer =
        json!({"verify": {"jwksURL": idp.jwks_uri(), "issuer": "https://not-the-idp"}});
    let wrong_audience =
        json!({"verify": {"jwksURL": idp.jwks_uri(), "audience": "https://other-api"}});
    for extra in [wrong_key, wrong_issuer, wrong_audience] {
        let upstream = Upstream::start(middleware(idp.token_endpoint(), extra.clone())).await;
        let echo = upstream.get_as("basic-client", "basic-secret").await;
        assert_eq!(echo.status, 502, "{extra}: {echo:?}");
        assert!(
            echo.seen["body"].as_str().unwrap().contains("verification"),
            "{echo:?}"
        );
        assert_eq!(upstream.hits(), 0, "{extra}: never forwarded");
    }
    assert_eq!(fake.count(), 1);
    let text = logs.text();
    assert!(text.contains("failed verification"), "{text}");
    assert!(!text.contains("eyJ"), "no token in the log:\n{text}");
}

#[tokio::test]
async fn forged_tokens_are_refused_raw() {
    let key = TestKey::new("k1");
    let claims = claims();
    let none = jwt(&json!({"alg": "none", "kid": "k1"}), &claims, |_| {
        Vec::new()
    });
    let hs256 = jwt(&json!({"alg": "HS256", "kid": "k1"}), &claims, |signed| {
        // Keyed with the public key, the classic confusion attack.
        let secret = hmac::Key::new(hmac::HMAC_SHA256, key.pair.public_key().as_ref());
        hmac::sign(&secret, signed).as_ref().to_vec()
    });
    let good = key.token(&claims);
    let mut altered_claims = claims.clone();
    altered_claims["grp"] = json!("root");
    let (head, rest) = good.split_once('.').unwrap();
    let signature = rest.split_once('.').unwrap().1;
    let altered = format!(
        "{head}.{}.{signature}",
        b64(altered_claims.to_string().as_bytes())
    );
    let critical = jwt(
        &json!({"alg": "EdDSA", "kid": "k1", "crit": ["exp"]}),
        &claims,
        |signed| key.pair.sign(signed).as_ref().to_vec(),
    );
    let tokens = vec![
        none,
        hs256,
        altered,
        critical,
        "an-opaque-token".to_owned(),
        good,
    ];
    let expected = [502, 502, 502, 502, 502, 200];
    let server = token_server(tokens).await;
    let jwks = jwks_server(vec![vec![key.jwk()]]).await;
    let extra = json!({"verify": {"jwksURL": jwks.url(), "issuer": "https://issuer.test",
                                  "audience": AUDIENCE}});
    let upstream = Upstream::start(middleware(server.url(), extra)).await;
    for (i, status) in expected.into_iter().enumerate() {
        // Another caller each time: a token request each.
        let echo = upstream.get_as(&format!("app-{i}"), "secret").await;
        assert_eq!(echo.status, status, "token {i}: {echo:?}");
    }
    assert_eq!(upstream.hits(), 1, "only the good token was forwarded");
}

#[tokio::test]
async fn an_unknown_kid_refetches_the_jwks_at_most_once_a_minute() {
    let (k1, k2, k3) = (TestKey::new("k1"), TestKey::new("k2"), TestKey::new("k3"));
    let claims = claims();
    let tokens = vec![
        k1.token(&claims),
        k2.token(&claims), // rotated in: one refetch finds it
        k3.token(&claims), // within the minute: no refetch
        k3.token(&claims),
        k1.token(&claims),
    ];
    let server = token_server(tokens).await;
    let jwks = jwks_server(vec![
        vec![k1.jwk()],
        vec![k1.jwk(), k2.jwk()],
        vec![k1.jwk(), k2.jwk(), k3.jwk()],
    ])
    .await;
    let upstream = Upstream::start(middleware(
        server.url(),
        json!({"verify": {"jwksURL": jwks.url()}}),
    ))
    .await;
    for (i, status) in [200, 200, 502, 502, 200].into_iter().enumerate() {
        let echo = upstream.get_as(&format!("app-{i}"), "secret").await;
        assert_eq!(echo.status, status, "token {i}: {echo:?}");
    }
    assert_eq!(jwks.count(), 2, "the first fetch and one refetch");
}

#[tokio::test]
async fn an_unreachable_jwks_is_502() {
    let key = TestKey::new("k1");
    let server = token_server(vec![key.token(&claims())]).await;
    let port = super::closed_port().await;
    let upstream = Upstream::start(middleware(
        server.url(),
        json!({"verify": {"jwksURL": format!("http://127.0.0.1:{port}/jwks")}}),
    ))
    .await;
    let echo = upstream.get_as("app", "secret").await;
    assert_eq!(echo.status, 502, "{echo:?}");
    assert_eq!(upstream.hits(), 0);
}

#[tokio::test]
async fn rsa_tokens_verify_with_rs256_and_ps256() {
    use aws_lc_rs::rsa::KeySize;
    use aws_lc_rs::signature::{
        RSA_PKCS1_SHA256, RSA_PSS_SHA256, RsaKeyPair, RsaPublicKeyComponents,
    };
    let pair = RsaKeyPair::generate(KeySize::Rsa2048).expect("RSA key");
    let public = RsaPublicKeyComponents::<Vec<u8>>::from(pair.public_key());
    let pair = &pair;
    let sign = |encoding: &'static dyn aws_lc_rs::signature::RsaEncoding| {
        move |signed: &[u8]| {
            let mut signature = vec![0; pair.public_modulus_len()];
            pair.sign(encoding, &SystemRandom::new(), signed, &mut signature)
                .expect("sign");
            signature
        }
    };
    let claims = claims();
    let rs256 = jwt(
        &json!({"alg": "RS256", "kid": "r1"}),
        &claims,
        sign(&RSA_PKCS1_SHA256),
    );
    let ps256 = jwt(
        &json!({"alg": "PS256", "kid": "r1"}),
        &claims,
        sign(&RSA_PSS_SHA256),
    );
    let pinned = jwt(
        &json!({"alg": "PS256", "kid": "r2"}),
        &claims,
        sign(&RSA_PSS_SHA256),
    );
    let jwk =
        |kid: &str| json!({"kty": "RSA", "kid": kid, "n": b64(&public.n), "e": b64(&public.e)});
    let mut rs256_only = jwk("r2");
    rs256_only["alg"] = json!("RS256");
    let server = token_server(vec![rs256, ps256, pinned]).await;
    let jwks = jwks_server(vec![vec![jwk("r1"), rs256_only]]).await;
    let upstream = Upstream::start(middleware(
        server.url(),
        json!({"verify": {"jwksURL": jwks.url()}}),
    ))
    .await;
    for (i, status) in [200, 200, 502].into_iter().enumerate() {
        let echo = upstream.get_as(&format!("app-{i}"), "secret").await;
        assert_eq!(echo.status, status, "token {i}: {echo:?}");
    }
}

#[tokio::test]
async fn a_jwks_too_large_or_never_answering_is_502() {
    let key = TestKey::new("k1");
    let server = token_server(vec![key.token(&claims())]).await;
    let huge = format!(
        r#"{{"keys":[{}],"padding":"{}"}}"#,
        key.jwk(),
        "x".repeat(300 * 1024)
    );
    let too_large = FaultServer::always(Reply::json(200, &huge)).await;
    let stalled = FaultServer::always(Reply::Stall).await;
    for jwks in [&too_large, &stalled] {
        let upstream = Upstream::start(middleware(
            server.url(),
            json!({"verify": {"jwksURL": jwks.url()}}),
        ))
        .await;
        let started = std::time::Instant::now();
        let echo = upstream.get_as("app", "secret").await;
        assert_eq!(echo.status, 502, "{echo:?}");
        // Bounded by clientConfig.timeoutSeconds (2 in these tests).
        assert!(started.elapsed() < std::time::Duration::from_secs(10));
        assert_eq!(upstream.hits(), 0);
    }
}
