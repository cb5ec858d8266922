//! Token requests and cache lookups are counted (SPEC §8).

use ccgate::Middleware;
use ccgate::metrics::Metrics;
use prometheus_client::registry::Registry;
use serde_json::json;

use super::options;
use crate::support::idp::Idp;
use crate::support::upstream::Upstream;

#[tokio::test]
async fn token_requests_and_cache_lookups_are_counted() {
    let idp = Idp::start().await;
    let mut registry = Registry::default();
    let metrics = Metrics::register(&mut registry);
    let middleware = Middleware::builder(options(
        idp.token_endpoint(),
        json!({"authMethod": "client_secret_basic"}),
    ))
    .name("cc-auth")
    .metrics(&metrics)
    .build()
    .unwrap();
    let upstream = Upstream::start(middleware).await;
    for _ in 0..3 {
        assert_eq!(
            upstream.get_as("basic-client", "basic-secret").await.status,
            200
        );
    }
    for _ in 0..2 {
        assert_eq!(upstream.get_as("basic-client", "wrong").await.status, 401);
    }
    let mut text = String::new();
    prometheus_client::encoding::text::encode(&mut text, &registry).unwrap();
    for line in [
        r#"ccgate_token_requests_total{middleware="cc-auth",outcome="success"} 1"#,
        r#"ccgate_token_requests_total{middleware="cc-auth",outcome="rejected"} 1"#,
        r#"ccgate_token_requests_total{middleware="cc-auth",outcome="timeout"} 0"#,
        r#"ccgate_cache_lookups_total{middleware="cc-auth",tier="memory",result="hit"} 2"#,
        r#"ccgate_cache_lookups_total{middleware="cc-auth",tier="memory",result="miss"} 2"#,
        r#"ccgate_cache_lookups_total{middleware="cc-auth",tier="memory",result="negative"} 1"#,
        r#"ccgate_token_request_duration_seconds_count{middleware="cc-auth"} 2"#,
    ] {
        assert!(text.contains(line), "missing {line} in\n{text}");
    }
    assert!(
        !text.contains("basic-secret") && !text.contains("basic-client"),
        "no credentials in labels"
    );
}

#[tokio::test]
async fn recalled_grants_count_as_memory_hits() {
    let idp = Idp::start().await;
    let mut registry = Registry::default();
    let metrics = Metrics::register(&mut registry);
    let middleware = Middleware::builder(options(idp.token_endpoint(), json!({})))
        .name("cc-auth")
        .metrics(&metrics)
        .build()
        .unwrap();
    let recall = ccgate::middleware::Recall::default();
    let headers = super::basic_headers("basic-client", "basic-secret");
    for _ in 0..4 {
        middleware.authorize_on(&headers, &recall).await.unwrap();
    }
    let mut text = String::new();
    prometheus_client::encoding::text::encode(&mut text, &registry).unwrap();
    for line in [
        r#"ccgate_cache_lookups_total{middleware="cc-auth",tier="memory",result="hit"} 3"#,
        r#"ccgate_cache_lookups_total{middleware="cc-auth",tier="memory",result="miss"} 1"#,
    ] {
        assert!(text.contains(line), "{line} missing from:\n{text}");
    }
}
