//! The token cache (SPEC §2.3): hits, single flight, negative cache,
//! refresh ahead, expiry and drop-on-401, counted at the real IdP.

use std::convert::Infallible;
use std::time::{Duration, Instant};

use bytes::Bytes;
use ccgate::layer::ClientCredentialsLayer;
use http::{Request, Response, header};
use http_body_util::Full;
use serde_json::json;
use tower::{Layer, ServiceExt};

use super::{basic_headers, claims_of, middleware, options};
use crate::support::idp::{Idp, IdpOptions};
use crate::support::upstream::{STATUS_HEADER, Upstream, basic};

/// Polls the IdP until it has answered `total` token requests.
async fn until_total(idp: &Idp, total: u64) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while idp.stats().await.total < total {
        assert!(
            Instant::now() < deadline,
            "the IdP never reached {total} token requests"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn a_warm_cache_makes_one_token_request() {
    let idp = Idp::start().await;
    let upstream = Upstream::start(middleware(idp.token_endpoint(), json!({}))).await;
    let first = upstream
        .get_as("basic-client", "basic-secret")
        .await
        .bearer();
    for _ in 0..20 {
        assert_eq!(
            upstream
                .get_as("basic-client", "basic-secret")
                .await
                .bearer(),
            first
        );
    }
    assert_eq!(idp.stats().await.total, 1);
    assert_eq!(upstream.hits(), 21);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_concurrent_cold_requests_make_one_token_request() {
    let idp = Idp::start().await;
    idp.delay(500).await; // hold the one token request while all callers pile up
    let service = ClientCredentialsLayer::new(middleware(idp.token_endpoint(), json!({}))).layer(
        tower::service_fn(|request: Request<Full<Bytes>>| async move {
            let token = request.headers()[header::AUTHORIZATION].clone();
            Ok::<_, Infallible>(Response::new(Full::new(Bytes::copy_from_slice(
                token.as_bytes(),
            ))))
        }),
    );
    let authorization = basic("basic-client", "basic-secret");
    let tasks: Vec<_> = (0..1000)
        .map(|_| {
            let request = Request::builder()
                .header(header::AUTHORIZATION, &authorization)
                .body(Full::new(Bytes::new()))
                .unwrap();
            tokio::spawn(service.clone().oneshot(request))
        })
        .collect();
    let mut tokens = std::collections::HashSet::new();
    for task in tasks {
        let response = task.await.unwrap().unwrap();
        assert_eq!(response.status(), 200);
        let body = http_body_util::BodyExt::collect(response.into_body())
            .await
            .unwrap()
            .to_bytes();
        tokens.insert(body);
    }
    assert_eq!(tokens.len(), 1, "everyone got the same token");
    let stats = idp.stats().await;
    assert_eq!(
        (stats.received, stats.total),
        (1, 1),
        "exactly one token request"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn callers_that_hang_up_neither_cancel_nor_repeat_the_fetch() {
    let idp = Idp::start().await;
    idp.delay(400).await;
    let middleware = middleware(idp.token_endpoint(), json!({}));
    let headers = basic_headers("basic-client", "basic-secret");
    let mut callers = Vec::new();
    for _ in 0..10 {
        let (middleware, headers) = (middleware.clone(), headers.clone());
        callers.push(tokio::spawn(async move {
            middleware.authorize(&headers).await.map(|_| ())
        }));
    }
    until_in_flight(&idp).await;
    for early in &callers[..5] {
        early.abort(); // the first callers hang up while the fetch runs
    }
    for late in callers.drain(5..) {
        assert!(
            late.await.unwrap().is_ok(),
            "the remaining callers get the token"
        );
    }
    assert!(middleware.authorize(&headers).await.is_ok());
    assert_eq!(idp.stats().await.received, 1, "one token request in all");
}

/// Waits until the IdP holds a token request (it is delayed).
async fn until_in_flight(idp: &Idp) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while idp.stats().await.received == 0 {
        assert!(Instant::now() < deadline, "no token request arrived");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test]
async fn a_wrong_secret_is_remembered_briefly_and_never_blocks_the_right_one() {
    let idp = Idp::start().await;
    let extra = json!({"authMethod": "client_secret_basic"});
    let upstream = Upstream::start(middleware(idp.token_endpoint(), extra)).await;
    for _ in 0..5 {
        assert_eq!(upstream.get_as("basic-client", "wrong").await.status, 401);
    }
    assert_eq!(idp.stats().await.received, 1, "rejections are remembered");
    assert_eq!(
        upstream.get_as("basic-client", "basic-secret").await.status,
        200
    );
    assert_eq!(
        idp.stats().await.received,
        2,
        "the right secret has its own key"
    );
    assert_eq!(
        upstream.get_as("basic-client", "other-wrong").await.status,
        401
    );
    assert_eq!(idp.stats().await.received, 3);
}

#[tokio::test]
async fn a_token_nearing_expiry_is_refreshed_while_it_is_still_served() {
    // Lifetime 6 s: used for 5.4 s, refreshed from 4.32 s.
    let idp = Idp::start_with(IdpOptions::default().ttl(6)).await;
    let upstream = Upstream::start(middleware(idp.token_endpoint(), json!({}))).await;
    let started = Instant::now();
    let first = upstream
        .get_as("basic-client", "basic-secret")
        .await
        .bearer();
    tokio::time::sleep(Duration::from_millis(4_600).saturating_sub(started.elapsed())).await;

    idp.delay(300).await; // a refresh that takes a while must not hold the request
    let asked = Instant::now();
    let during = upstream
        .get_as("basic-client", "basic-secret")
        .await
        .bearer();
    assert!(
        asked.elapsed() < Duration::from_millis(300),
        "served from cache: {:?}",
        asked.elapsed()
    );
    assert_eq!(
        during, first,
        "the current token is served while the refresh runs"
    );

    until_total(&idp, 2).await;
    let after = upstream
        .get_as("basic-client", "basic-secret")
        .await
        .bearer();
    assert_ne!(after, first, "the refreshed token replaced it");
    assert_eq!(idp.stats().await.total, 2);
}

#[tokio::test]
async fn an_expired_token_is_never_forwarded() {
    // Lifetime 2 s: used for 1.8 s. No request in between, so no refresh.
    let idp = Idp::start_with(IdpOptions::default().ttl(2)).await;
    let upstream = Upstream::start(middleware(idp.token_endpoint(), json!({}))).await;
    let first = upstream
        .get_as("basic-client", "basic-secret")
        .await
        .bearer();
    tokio::time::sleep(Duration::from_millis(1_900)).await;
    let second = upstream
        .get_as("basic-client", "basic-secret")
        .await
        .bearer();
    assert_ne!(second, first);
    assert_eq!(idp.stats().await.total, 2);
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    assert!(claims_of(&second)["exp"].as_u64().unwrap() > now);
}

/// A middleware whose tokens an upstream 401 drops at once, whatever their
/// age (the 10 s default is tested in `protection`).
fn dropping_at_once(token_endpoint: &str) -> ccgate::Middleware {
    ccgate::Middleware::builder(options(token_endpoint, json!({})))
        .upstream_401_min_age(Duration::ZERO)
        .build()
        .expect("valid middleware")
}

#[tokio::test]
async fn an_upstream_401_drops_the_token() {
    let idp = Idp::start().await;
    let upstream = Upstream::start(dropping_at_once(idp.token_endpoint())).await;
    let authorization = basic("basic-client", "basic-secret");
    let first = upstream
        .get(&[("authorization", &authorization)])
        .await
        .bearer();
    let rejected = upstream
        .get(&[("authorization", &authorization), (STATUS_HEADER, "401")])
        .await;
    assert_eq!(rejected.status, 401, "the upstream's answer is passed on");
    assert_eq!(rejected.bearer(), first);
    let next = upstream
        .get(&[("authorization", &authorization)])
        .await
        .bearer();
    assert_ne!(
        next, first,
        "a new token after the upstream refused the old one"
    );
    assert_eq!(idp.stats().await.total, 2);
    let other_status = upstream
        .get(&[("authorization", &authorization), (STATUS_HEADER, "403")])
        .await;
    assert_eq!(other_status.bearer(), next, "only a 401 drops the token");
    assert_eq!(idp.stats().await.total, 2);
}

#[tokio::test]
async fn a_late_401_for_an_old_token_keeps_the_new_one() {
    let idp = Idp::start().await;
    let middleware = dropping_at_once(idp.token_endpoint());
    let headers = basic_headers("basic-client", "basic-secret");
    let old = middleware.authorize(&headers).await.unwrap();
    middleware.upstream_rejected(&old).await;
    let new = middleware.authorize(&headers).await.unwrap();
    assert_ne!(new.authorization(), old.authorization());
    middleware.upstream_rejected(&old).await; // a slow request's 401 for the old token
    let again = middleware.authorize(&headers).await.unwrap();
    assert_eq!(again.authorization(), new.authorization());
    assert_eq!(idp.stats().await.total, 2);
}
