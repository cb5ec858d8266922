//! Sentinel: a failover (`SENTINEL FAILOVER`) during a stream of requests.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use serde_json::json;

use super::{
    Outcomes, PREFIX, options, redis_lookups, registry, replica, store_errors, token, traffic,
};
use crate::support::idp::Idp;
use crate::support::redis_server::{SentinelGroup, ask, cli, until};

const MASTER_SET: &str = "ccgate-master";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sentinel_failover_during_traffic_answers_every_request_right() {
    let _heavy = super::HEAVY.lock().await;
    let idp = Idp::start().await;
    let group = SentinelGroup::start(MASTER_SET).await;
    let options = options(
        &idp,
        json!({"keyPrefix": PREFIX, "redis": {"endpoints": group.endpoints(), "sentinel": {"masterSet": MASTER_SET}}}),
    );
    let (registry, metrics) = registry();
    let primer = replica(&options, &metrics, "primer");
    token(&primer, "tester-client", "tester-secret").await; // stored for the fresh replicas
    assert_eq!(store_errors(&registry, "primer"), 0);

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

    let new_master = group.replica.port();
    assert_eq!(group.master_port().await, group.master.port());
    let started = Instant::now();
    group.failover().await;
    until(
        Duration::from_secs(15),
        "the Sentinels to switch masters",
        || async { group.master_port().await == new_master },
    )
    .await;
    let switched_after = started.elapsed();
    cli(&["-p", &new_master.to_string(), "CONFIG", "RESETSTAT"]).await;
    let hits_at_switch = redis_lookups(&registry, "traffic", "hit");
    // Go on until Redis serves again, and ccgate writes reach the new master.
    until(
        Duration::from_secs(15),
        "Redis to serve after the failover",
        || async {
            let stats = ask(&new_master.to_string(), &["INFO", "commandstats"]).await;
            redis_lookups(&registry, "traffic", "hit") > hits_at_switch + 20
                && stats.contains("cmdstat_set:")
        },
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
        "Sentinel failover (switched after {switched_after:?}): {requests} requests, {wrong} wrong; \
         redis hits {} / misses {}; store errors {}; token requests {} (tester-client {}, basic-client {})",
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
