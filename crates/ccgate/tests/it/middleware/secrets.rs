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
