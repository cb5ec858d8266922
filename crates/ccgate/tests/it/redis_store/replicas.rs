//! Cold replicas coordinating through one Redis: a key cold on every
//! replica at once costs about one token request in all.

use std::collections::HashSet;

use serde_json::json;

use super::{PREFIX, options, redis_lookups, registry, replica, store_errors, token};
use crate::support::idp::Idp;
use crate::support::redis_server::{RedisConfig, RedisServer};

/// Replicas (separate middlewares and memory stores) × callers each.
const REPLICAS: usize = 4;
const CALLERS: usize = 8;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cold_replicas_together_make_about_one_token_request() {
    let idp = Idp::start().await;
    let redis = RedisServer::start(RedisConfig::default()).await;
    let options = options(
        &idp,
        json!({"keyPrefix": PREFIX, "secret": "0123456789abcdef", "redis": {"endpoints": [redis.endpoint()]}}),
    );
    let (registry, metrics) = registry();
    // The token endpoint takes 300 ms, so all replicas miss while the
    // first request is in flight (well within the 2 s wait bound).
    idp.delay(300).await;
    let replicas: Vec<_> = (0..REPLICAS)
        .map(|i| replica(&options, &metrics, &format!("replica-{i}")))
        .collect();
    let mut tasks = Vec::new();
    for middleware in &replicas {
        for _ in 0..CALLERS {
            let middleware = middleware.clone();
            tasks.push(tokio::spawn(async move {
                token(&middleware, "basic-client", "basic-secret").await
            }));
        }
    }
    let mut tokens = HashSet::new();
    for task in tasks {
        tokens.insert(task.await.unwrap());
    }
    let stats = idp.stats().await;
    let (hits, misses, errors): (u64, u64, u64) = (0..REPLICAS)
        .map(|i| {
            let name = format!("replica-{i}");
            (
                redis_lookups(&registry, &name, "hit"),
                redis_lookups(&registry, &name, "miss"),
                store_errors(&registry, &name),
            )
        })
        .fold((0, 0, 0), |a, b| (a.0 + b.0, a.1 + b.1, a.2 + b.2));
    eprintln!(
        "{REPLICAS} cold replicas x {CALLERS} callers: {} token request(s), {} distinct token(s), \
         redis lookups {hits} hit / {misses} miss, {errors} store errors",
        stats.received,
        tokens.len()
    );
    assert_eq!(errors, 0);
    assert!(
        stats.received <= 2,
        "about one token request in all, not {}",
        stats.received
    );
    assert_eq!(
        hits + misses,
        REPLICAS as u64,
        "one Redis lookup per replica (single flight in each)"
    );
}
