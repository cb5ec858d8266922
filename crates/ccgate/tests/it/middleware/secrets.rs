//! Secrets and tokens never reach logs, responses or `Debug` (SPEC §2.6, §6).

use serde_json::json;

use super::{middleware, options};
use crate::support::LogCapture;
use crate::support::idp::Idp;
use crate::support::upstream::Upstream;

#[tokio::test]
async fn no_secret_or_token_in_logs_responses_or_debug() {
    let logs = LogCapture::start();
    let idp = Idp::start().await;
    let extra = json!({"clientConfig": {"timeoutSeconds": 2, "maxRetries": 1, "tls": {"insecureSkipVerify": true}}});
    let gateway_options = options(
        idp.token_endpoint(),
        json!({"clientID": "basic-client", "clientSecret": "gateway-wrong-secret"}),
    );
    let options_debug = format!("{gateway_options:?}");
    let app = Upstream::start(middleware(idp.token_endpoint(), extra)).await;
    let gateway = Upstream::start(ccgate::Middleware::new(gateway_options).unwrap()).await;

    let good = app.get_as("basic-client", "basic-secret").await;
    let token = good.bearer();
    let wrong = app.get_as("basic-client", "caller-wrong-secret").await;
    let rejected_gateway = gateway.get(&[]).await;
    idp.fail(503, 2).await;
    let unavailable = app.get_as("tester-client", "tester-secret").await;
    assert_eq!(
        (
            good.status,
            wrong.status,
            rejected_gateway.status,
            unavailable.status
        ),
        (200, 401, 502, 502)
    );

    let grant_debug = {
        let middleware = middleware(idp.token_endpoint(), json!({}));
        let mut headers = http::HeaderMap::new();
        headers.insert(
            "authorization",
            crate::support::upstream::basic("basic-client", "basic-secret")
                .parse()
                .unwrap(),
        );
        let grant = middleware.authorize(&headers).await.unwrap();
        format!("{grant:?} {middleware:?} {:?}", grant.authorization())
    };

    let outputs = [
        ("logs", logs.text()),
        (
            "responses",
            format!("{wrong:?} {rejected_gateway:?} {unavailable:?}"),
        ),
        ("Debug", format!("{options_debug} {grant_debug}")),
    ];
    let secrets = [
        "basic-secret",
        "caller-wrong-secret",
        "gateway-wrong-secret",
        "tester-secret",
        token.as_str(),
    ];
    for (place, text) in &outputs {
        for secret in secrets {
            assert!(
                !text.contains(secret),
                "{secret:?} found in {place}:\n{text}"
            );
        }
    }
    assert!(
        outputs[0].1.contains("insecure"),
        "the insecure option is warned about"
    );
}

#[tokio::test]
async fn no_private_key_or_assertion_secret_in_logs_responses_or_debug() {
    let logs = LogCapture::start();
    let idp = Idp::start().await;
    let good_key = crate::support::idp::test_key("ed25519.pem");
    let wrong_key = crate::support::idp::test_key("ec-p256-unregistered.sec1.pem");
    let key_options = |key: &str| {
        options(
            idp.token_endpoint(),
            json!({"authMethod": "private_key_jwt", "clientID": "key-client", "privateKey": key}),
        )
    };
    let debug = format!("{:?} {:?}", key_options(&good_key), key_options(&wrong_key));
    let good = Upstream::start(ccgate::Middleware::new(key_options(&good_key)).unwrap()).await;
    let wrong = Upstream::start(ccgate::Middleware::new(key_options(&wrong_key)).unwrap()).await;
    let jwt = Upstream::start(middleware(
        idp.token_endpoint(),
        json!({"authMethod": "client_secret_jwt"}),
    ))
    .await;
    idp.fail(503, 1).await;
    let retried = good.get(&[]).await;
    let rejected = wrong.get(&[]).await;
    let wrong_secret = jwt
        .get_as("jwt-secret-client", "caller-wrong-jwt-secret-0123456789")
        .await;
    assert_eq!(
        (retried.status, rejected.status, wrong_secret.status),
        (200, 502, 401)
    );
    let shown = format!("{} {rejected:?} {wrong_secret:?} {debug}", logs.text());
    for key in [&good_key, &wrong_key] {
        for line in key.lines().filter(|line| !line.starts_with("-----")) {
            assert!(
                !shown.contains(line),
                "key material {line:?} leaked: {shown}"
            );
        }
    }
    assert!(!shown.contains("caller-wrong-jwt-secret"), "{shown}");
    assert!(
        !shown.contains("client_assertion="),
        "no assertion is logged: {shown}"
    );
}
