//! Redis Cluster: a master killed during a stream of requests.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use serde_json::json;

use super::{
    Outcomes, PREFIX, options, redis_lookups, registry, replica, store_errors, token, traffic,
};
use crate::support::idp::Idp;
use crate::support::redis_server::{ClusterGroup, until};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cluster_master_killed_during_traffic_answers_every_request_right() {
    let _heavy = super::HEAVY.lock().await;
    let idp = Idp::start().await;
    let mut group = ClusterGroup::start().await;
    let options = options(
        &idp,
        json!({"keyPrefix": PREFIX, "redis": {"endpoints": group.endpoints(), "cluster": true}}),
    );
    let (registry, metrics) = registry();
    let primer = replica(&options, &metrics, "primer");
    token(&primer, "tester-client", "tester-secret").await; // stored for the fresh replicas
    assert_eq!(store_errors(&registry, "primer"), 0);
    // The master holding the token the fresh replicas read.
    let victim = group
        .master_with_keys()
        .await
        .expect("a master holds the token");

    let stop = Arc::new(AtomicBool::new(false));
    let outcomes = Arc::new(Outcomes::default());
    let tasks = traffic(
        &options,
        &metrics,
        "traffic",
        2,
        ("tester-client", "tester-secret"),
        ("basic-client", "basic-secret"),
        &stop,
        &outcomes,
    );
    until(Duration::from_secs(10), "traffic to flow", || {
        let outcomes = Arc::clone(&outcomes);
        async move { outcomes.requests.load(Ordering::SeqCst) >= 40 }
    })
    .await;

    let started = Instant::now();
    group.kill_and_fail_over(victim).await;
    let recovered_after = started.elapsed();
    let hits_at_recovery = redis_lookups(&registry, "traffic", "hit");
    until(
        Duration::from_secs(15),
        "Redis to serve after the failover",
        || async { redis_lookups(&registry, "traffic", "hit") > hits_at_recovery + 20 },
    )
    .await;
    stop.store(true, Ordering::SeqCst);
    for task in tasks {
        task.await.unwrap();
    }

    let stats = idp.stats().await;
    let requests = outcomes.requests.load(Ordering::SeqCst);
    let wrong = outcomes.wrong.load(Ordering::SeqCst);
    eprintln!(
        "Cluster master killed (cluster ok again after {recovered_after:?}): {requests} requests, \
         {wrong} wrong; redis hits {} / misses {}; store errors {}; token requests {} \
         (tester-client {}, basic-client {})",
        redis_lookups(&registry, "traffic", "hit"),
        redis_lookups(&registry, "traffic", "miss"),
        store_errors(&registry, "traffic"),
        stats.total,
        stats.client("tester-client").total,
        stats.client("basic-client").total,
    );
    assert_eq!(
        wrong, 0,
        "every request answered with a valid token of its client"
    );
}
