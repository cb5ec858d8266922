//! Protecting the authorization server (SPEC §2.8), tested as an attacker
//! (or a failing server) would push it: bursts of wrong secrets, floods of
//! cold client ids, a dead token endpoint, an upstream that answers 401 to
//! everything, rejections that must not be remembered. Token requests are
//! counted where they land, at the real test IdP.
//!
//! Two tests wait for real time to pass, and say so: the cool-down (5 s)
//! and the age a token needs before an upstream 401 may drop it (10 s).

use std::sync::Arc;
use std::time::{Duration, Instant};

use ccgate::Middleware;
use ccgate::denial::Denial;
use ccgate::metrics::Metrics;
use ccgate::middleware::UPSTREAM_401_MIN_AGE;
use http::header;
use prometheus_client::registry::Registry;
use serde_json::{Value, json};
use tokio::task::JoinSet;

use super::{basic_headers as caller, closed_port, middleware, options};
use crate::support::LogCapture;
use crate::support::idp::{Idp, IdpOptions};
use crate::support::upstream::{STATUS_HEADER, Upstream, basic};

/// A middleware named `cc` counting into a fresh registry.
fn counted(token_endpoint: &str, extra: Value) -> (Middleware, Registry) {
    let mut registry = Registry::default();
    let metrics = Metrics::register(&mut registry);
    let middleware = Middleware::builder(options(token_endpoint, extra))
        .name("cc")
        .metrics(&metrics)
        .build()
        .expect("valid middleware");
    (middleware, registry)
}

/// The value of the series `series` (name and labels, exactly).
fn metric(registry: &Registry, series: &str) -> u64 {
    let mut text = String::new();
    prometheus_client::encoding::text::encode(&mut text, registry).unwrap();
    text.lines()
        .find_map(|line| line.strip_prefix(series)?.trim().parse().ok())
        .unwrap_or_else(|| panic!("no {series} in\n{text}"))
}

#[tokio::test]
async fn a_burst_of_wrong_secrets_is_throttled_and_never_blocks_the_cached_right_secret() {
    let idp = Idp::start().await;
    let (middleware, registry) = counted(
        idp.token_endpoint(),
        json!({"authMethod": "client_secret_basic"}),
    );
    let upstream = Arc::new(Upstream::start(middleware).await);
    assert_eq!(
        upstream.get_as("basic-client", "basic-secret").await.status,
        200
    );
    idp.reset().await;

    // The attack: 200 distinct wrong secrets for one client id at once
    // (none can be negative-cached: each is new), with the right secret's
    // own traffic in the middle of it.
    let started = Instant::now();
    let mut wrong = JoinSet::new();
    let mut right = JoinSet::new();
    for i in 0..200 {
        let attacker = Arc::clone(&upstream);
        wrong.spawn(async move {
            let secret = format!("wrong-secret-{i}");
            (
                secret.clone(),
                attacker.get_as("basic-client", &secret).await,
            )
        });
        if i % 4 == 0 {
            let upstream = Arc::clone(&upstream);
            right.spawn(async move { upstream.get_as("basic-client", "basic-secret").await });
        }
    }
    let mut throttled = Vec::new();
    let mut rejected = 0;
    while let Some(joined) = wrong.join_next().await {
        let (secret, echo) = joined.unwrap();
        match echo.status {
            401 => rejected += 1,
            429 => {
                assert_eq!(echo.headers["retry-after"], "1", "{echo:?}");
                let body = echo.seen["body"].as_str().unwrap();
                assert!(body.len() < 100 && !body.contains(&secret), "{body}");
                throttled.push(secret);
            }
            other => panic!("HTTP {other}: {echo:?}"),
        }
    }
    let elapsed = started.elapsed();
    while let Some(joined) = right.join_next().await {
        assert_eq!(
            joined.unwrap().status,
            200,
            "the cached right secret is untouched"
        );
    }
    let stats = idp.stats().await;
    // The budget: a burst of 10, then 5 per second for as long as it ran.
    // The right secret's first (cold) request took one of the burst, so a
    // burst over in less than 200 ms lets only 9 wrong secrets through.
    let budget = 10 + (5.0 * elapsed.as_secs_f64()).ceil() as u64;
    assert!(
        (9..=budget).contains(&stats.received),
        "{} token requests in {elapsed:?} (budget {budget})",
        stats.received
    );
    assert_eq!(rejected, stats.received, "every token request was a 401");
    assert_eq!(throttled.len() as u64, 200 - stats.received);
    assert_eq!(
        stats.client("basic-client").success,
        0,
        "the right secret was served from the cache"
    );
    assert_eq!(
        metric(
            &registry,
            r#"ccgate_token_requests_refused_total{middleware="cc",reason="throttled"}"#
        ),
        throttled.len() as u64
    );
    assert_eq!(
        metric(
            &registry,
            r#"ccgate_token_requests_total{middleware="cc",outcome="rejected"}"#
        ),
        stats.received,
        "refusals are not token requests"
    );
    // Another client id has its own budget.
    assert_eq!(
        upstream
            .get_as("opaque-client", "opaque-secret")
            .await
            .status,
        200
    );

    // A throttled answer is not remembered: once the budget refills (a
    // real wait of one token's worth, 200 ms), the same secret is asked.
    tokio::time::sleep(Duration::from_millis(250)).await;
    let before = idp.stats().await.received;
    assert_eq!(
        upstream.get_as("basic-client", &throttled[0]).await.status,
        401
    );
    assert_eq!(idp.stats().await.received, before + 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hundred_cold_client_ids_never_have_more_than_64_token_requests_in_flight() {
    let idp = Idp::start_with(IdpOptions::default().bench_clients(100)).await;
    idp.delay(500).await; // hold every token request so that they pile up
    let middleware = middleware(
        idp.token_endpoint(),
        json!({"authMethod": "client_secret_basic", "clientConfig": {"timeoutSeconds": 5, "maxRetries": 0}}),
    );
    let mut callers = JoinSet::new();
    for i in 1..=100 {
        let middleware = middleware.clone();
        callers.spawn(async move {
            let headers = caller(&format!("bench-client-{i}"), &format!("bench-secret-{i}"));
            middleware.authorize(&headers).await.map(|_| ())
        });
    }
    while let Some(joined) = callers.join_next().await {
        joined
            .unwrap()
            .expect("every caller gets its token, after a wait");
    }
    let stats = idp.stats().await;
    assert_eq!(stats.received, 100);
    assert_eq!(
        stats.max_in_flight, 64,
        "the bound is reached, never passed"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_wait_for_a_free_slot_counts_against_the_timeout() {
    // Each token request takes 1.2 s, within the 2 s timeout; the 36
    // callers past the 64 slots wait 1.2 s for one, so 0.8 s are left.
    let idp = Idp::start_with(IdpOptions::default().bench_clients(100)).await;
    idp.delay(1_200).await;
    let middleware = middleware(
        idp.token_endpoint(),
        json!({"authMethod": "client_secret_basic", "clientConfig": {"timeoutSeconds": 2, "maxRetries": 0}}),
    );
    let started = Instant::now();
    let mut callers = JoinSet::new();
    for i in 1..=100 {
        let middleware = middleware.clone();
        callers.spawn(async move {
            let headers = caller(&format!("bench-client-{i}"), &format!("bench-secret-{i}"));
            middleware
                .authorize(&headers)
                .await
                .map(|_| ())
                .map_err(|denial| denial.status().as_u16())
        });
    }
    let mut statuses = std::collections::BTreeMap::new();
    while let Some(joined) = callers.join_next().await {
        let status = joined.unwrap().err().unwrap_or(200);
        *statuses.entry(status).or_insert(0) += 1;
    }
    assert_eq!(
        statuses,
        [(200, 64), (504, 36)].into_iter().collect(),
        "the late callers time out"
    );
    assert!(
        started.elapsed() < Duration::from_millis(2_400 + 500),
        "within one timeout of their slot: {:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn a_dead_token_endpoint_is_left_alone_for_a_cool_down_then_probed_once() {
    let mut idp = Idp::start_with(IdpOptions::default().bench_clients(20)).await;
    let (middleware, registry) = counted(
        idp.token_endpoint(),
        json!({"authMethod": "client_secret_basic"}),
    );
    let cached = caller("basic-client", "basic-secret");
    middleware.authorize(&cached).await.expect("a cached token");
    let cold = |i: u32| caller(&format!("bench-client-{i}"), &format!("bench-secret-{i}"));

    // The real IdP process goes away: its port refuses connections.
    idp.stop().await;
    for i in 1..=5 {
        let denial = middleware.authorize(&cold(i)).await.unwrap_err();
        assert_eq!(denial.status(), 502, "failure {i}: {}", denial.message());
    }
    let asked = Instant::now();
    let denial = middleware.authorize(&cold(6)).await.unwrap_err();
    let answered = asked.elapsed();
    assert_eq!(denial.status(), 503, "{}", denial.message());
    assert_eq!(denial.retry_after(), Some(5), "the cool-down, rounded up");
    assert!(
        answered < Duration::from_millis(100),
        "at once, no retries waited for: {answered:?}"
    );
    let response = denial.response();
    assert_eq!(response.headers()[header::RETRY_AFTER], "5");
    for _ in 0..20 {
        middleware
            .authorize(&cached)
            .await
            .expect("a cached token is still served");
    }

    // Back on the same port, but the cool-down holds: no token request.
    idp.restart().await;
    assert_eq!(
        middleware.authorize(&cold(7)).await.unwrap_err().status(),
        503
    );
    assert_eq!(idp.stats().await.received, 0);

    // A real wait for the cool-down (5 s) to end; then one probe, held
    // 300 ms at the IdP while ten cold callers arrive.
    idp.delay(300).await;
    tokio::time::sleep_until((asked + Duration::from_millis(5_050)).into()).await;
    let mut callers = JoinSet::new();
    for i in 8..18 {
        let (middleware, headers) = (middleware.clone(), cold(i));
        callers.spawn(async move { middleware.authorize(&headers).await.map(|_| ()) });
    }
    let (mut probes, mut refused) = (0, 0);
    while let Some(joined) = callers.join_next().await {
        match joined.unwrap() {
            Ok(()) => probes += 1,
            Err(denial) => {
                assert_eq!(
                    (denial.status().as_u16(), denial.retry_after()),
                    (503, Some(1))
                );
                refused += 1;
            }
        }
    }
    assert_eq!((probes, refused), (1, 9), "one probe");
    assert_eq!(idp.stats().await.received, 1, "one token request");
    idp.delay(0).await;
    middleware
        .authorize(&cold(18))
        .await
        .expect("the probe's success closed it");
    assert_eq!(idp.stats().await.received, 2);

    let series = |s: &str| metric(&registry, s);
    assert_eq!(
        series(r#"ccgate_token_requests_total{middleware="cc",outcome="unreachable"}"#),
        5
    );
    assert_eq!(
        series(r#"ccgate_token_requests_refused_total{middleware="cc",reason="cooling_down"}"#),
        11
    );
}

#[tokio::test]
async fn an_upstream_that_always_answers_401_cannot_turn_requests_into_token_requests() {
    let idp = Idp::start().await;
    let upstream = Upstream::start(middleware(idp.token_endpoint(), json!({}))).await;
    let authorization = basic("basic-client", "basic-secret");
    let refused = [
        ("authorization", authorization.as_str()),
        (STATUS_HEADER, "401"),
    ];
    let first = upstream.get(&refused).await;
    let fetched = Instant::now(); // the token was obtained before this
    assert_eq!(first.status, 401, "the upstream's answer is passed on");
    for _ in 0..50 {
        assert_eq!(upstream.get(&refused).await.bearer(), first.bearer());
    }
    assert_eq!(idp.stats().await.total, 1, "no token request per request");

    // A real wait: a token may be dropped once it is 10 s old.
    tokio::time::sleep_until((fetched + UPSTREAM_401_MIN_AGE).into()).await;
    assert_eq!(upstream.get(&refused).await.bearer(), first.bearer());
    let second = upstream.get(&refused).await.bearer();
    assert_ne!(second, first.bearer(), "the old token was dropped");
    for _ in 0..20 {
        assert_eq!(upstream.get(&refused).await.bearer(), second);
    }
    assert_eq!(idp.stats().await.total, 2);
}

#[tokio::test]
async fn a_gateway_level_400_or_401_is_not_negative_cached() {
    let idp = Idp::start().await;
    let wrong = Upstream::start(middleware(
        idp.token_endpoint(),
        json!({"clientID": "basic-client", "clientSecret": "not-the-secret", "authMethod": "client_secret_basic"}),
    ))
    .await;
    for _ in 0..3 {
        assert_eq!(wrong.get(&[]).await.status, 502);
    }
    assert_eq!(
        idp.stats().await.status(401),
        3,
        "every request shows the configuration error"
    );
    let right = Upstream::start(middleware(
        idp.token_endpoint(),
        json!({"clientID": "basic-client", "clientSecret": "basic-secret", "authMethod": "client_secret_basic"}),
    ))
    .await;
    idp.fail(400, 1).await;
    assert_eq!(right.get(&[]).await.status, 502);
    assert_eq!(
        right.get(&[]).await.status,
        200,
        "the 400 was not remembered"
    );
}

#[tokio::test]
async fn only_application_level_400_and_401_are_negative_cached() {
    let idp = Idp::start().await;
    let upstream = Upstream::start(middleware(
        idp.token_endpoint(),
        json!({"authMethod": "client_secret_basic"}),
    ))
    .await;
    idp.fail(403, 1).await;
    assert_eq!(
        upstream.get_as("basic-client", "basic-secret").await.status,
        401
    );
    assert_eq!(
        upstream.get_as("basic-client", "basic-secret").await.status,
        200,
        "a 403 is not remembered"
    );
    assert_eq!(idp.stats().await.received, 2);

    idp.fail(400, 1).await;
    for _ in 0..3 {
        assert_eq!(
            upstream
                .get_as("opaque-client", "opaque-secret")
                .await
                .status,
            401
        );
    }
    assert_eq!(idp.stats().await.received, 3, "a 400 is remembered");
    for _ in 0..3 {
        assert_eq!(upstream.get_as("opaque-client", "wrong").await.status, 401);
    }
    assert_eq!(idp.stats().await.received, 4, "so is a 401");
}

#[tokio::test]
async fn refusals_hold_no_secret() {
    let logs = LogCapture::start();
    let idp = Idp::start().await;
    let throttled = middleware(
        idp.token_endpoint(),
        json!({"authMethod": "client_secret_basic"}),
    );
    let url = format!("http://127.0.0.1:{}/token", closed_port().await);
    let dead = middleware(
        &url,
        json!({"clientConfig": {"timeoutSeconds": 1, "maxRetries": 0}}),
    );
    let mut denials: Vec<Denial> = Vec::new();
    for i in 0..12 {
        let secret = format!("attacker-secret-{i}");
        denials.push(
            throttled
                .authorize(&caller("basic-client", &secret))
                .await
                .unwrap_err(),
        );
        denials.push(
            dead.authorize(&caller("basic-client", &secret))
                .await
                .unwrap_err(),
        );
    }
    let statuses: std::collections::BTreeSet<u16> =
        denials.iter().map(|d| d.status().as_u16()).collect();
    assert_eq!(statuses, [401, 429, 502, 503].into_iter().collect());
    let mut shown = format!("{denials:?} {throttled:?} {dead:?}");
    for denial in &denials {
        shown.push_str(&format!("{:?}", denial.response()));
    }
    shown.push_str(&logs.text());
    for i in 0..12 {
        let secret = format!("attacker-secret-{i}");
        assert!(!shown.contains(&secret), "{secret} leaked:\n{shown}");
    }
    for denial in &denials {
        let message = denial.message();
        assert!(
            message.len() < 100 && !message.contains("os error") && !message.contains("127.0.0.1"),
            "no transport detail in a body: {message}"
        );
    }
}
