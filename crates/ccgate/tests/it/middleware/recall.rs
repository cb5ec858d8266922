//! `Middleware::authorize_on`: a caller connection's last grant recalled
//! for its next request with the same credentials, never for other
//! credentials, and never once the cache has let go of its token.
//! Tokens from the real test IdP.

use std::time::{Duration, Instant};

use ccgate::middleware::Recall;
use serde_json::json;

use super::{basic_headers, middleware, options};
use crate::support::idp::{Idp, IdpOptions};

#[tokio::test]
async fn a_wrong_secret_after_the_right_one_on_one_connection_is_refused() {
    let idp = Idp::start().await;
    let extra = json!({"authMethod": "client_secret_basic"});
    let cc = middleware(idp.token_endpoint(), extra);
    let recall = Recall::default();
    let right = basic_headers("basic-client", "basic-secret");
    let first = cc.authorize_on(&right, &recall).await.expect("granted");
    let wrong = cc
        .authorize_on(&basic_headers("basic-client", "basic-secreT"), &recall)
        .await
        .expect_err("a wrong secret is refused, not recalled");
    assert_eq!(wrong.status(), 401);
    assert_eq!(
        idp.stats().await.received,
        2,
        "the wrong secret was asked about"
    );
    let again = cc.authorize_on(&right, &recall).await.expect("granted");
    assert_eq!(again.authorization(), first.authorization());
    assert_eq!(idp.stats().await.received, 2);
}

#[tokio::test]
async fn a_token_dropped_after_an_upstream_401_is_not_recalled() {
    let idp = Idp::start().await;
    let cc = ccgate::Middleware::builder(options(idp.token_endpoint(), json!({})))
        .upstream_401_min_age(Duration::ZERO)
        .build()
        .unwrap();
    let (recall, headers) = (
        Recall::default(),
        basic_headers("basic-client", "basic-secret"),
    );
    let first = cc.authorize_on(&headers, &recall).await.unwrap();
    assert_eq!(
        cc.authorize_on(&headers, &recall)
            .await
            .unwrap()
            .authorization(),
        first.authorization()
    );
    cc.upstream_rejected(&first).await;
    let next = cc.authorize_on(&headers, &recall).await.unwrap();
    assert_ne!(next.authorization(), first.authorization());
    assert_eq!(idp.stats().await.total, 2);
}

#[tokio::test]
async fn a_recalled_token_is_still_refreshed_ahead_and_replaced() {
    // Lifetime 6 s: used for 5.4 s, refreshed from 4.32 s.
    let idp = Idp::start_with(IdpOptions::default().ttl(6)).await;
    let cc = middleware(idp.token_endpoint(), json!({}));
    let (recall, headers) = (
        Recall::default(),
        basic_headers("basic-client", "basic-secret"),
    );
    let started = Instant::now();
    let first = cc.authorize_on(&headers, &recall).await.unwrap();
    tokio::time::sleep(Duration::from_millis(4_600).saturating_sub(started.elapsed())).await;
    let during = cc.authorize_on(&headers, &recall).await.unwrap();
    assert_eq!(
        during.authorization(),
        first.authorization(),
        "served while refreshing"
    );
    let deadline = Instant::now() + Duration::from_secs(10);
    while idp.stats().await.total < 2 {
        assert!(Instant::now() < deadline, "the refresh never happened");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // The refresh stores the new token, then retires the old one.
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let now = cc.authorize_on(&headers, &recall).await.unwrap();
        if now.authorization() != first.authorization() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the recalled old token was never replaced"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(idp.stats().await.total, 2, "one refresh, no more");
}

#[tokio::test]
async fn two_middlewares_on_one_connection_each_use_their_own_token() {
    let idp = Idp::start().await;
    // Built alike, each with a cache of its own: two tokens.
    let read = middleware(idp.token_endpoint(), json!({}));
    let write = middleware(idp.token_endpoint(), json!({}));
    let (recall, headers) = (
        Recall::default(),
        basic_headers("basic-client", "basic-secret"),
    );
    let a = read.authorize_on(&headers, &recall).await.unwrap();
    let b = write.authorize_on(&headers, &recall).await.unwrap();
    assert_ne!(a.authorization(), b.authorization());
    for _ in 0..3 {
        assert_eq!(
            read.authorize_on(&headers, &recall)
                .await
                .unwrap()
                .authorization(),
            a.authorization()
        );
        assert_eq!(
            write
                .authorize_on(&headers, &recall)
                .await
                .unwrap()
                .authorization(),
            b.authorization()
        );
    }
    assert_eq!(idp.stats().await.total, 2);
}
