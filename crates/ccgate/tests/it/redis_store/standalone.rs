//! One Redis server: a password, an ACL user, TLS with a client
//! certificate; what is stored; Redis down at start; secrets.

use std::time::{Duration, Instant};

use serde_json::{Value, json};

use super::{
    PREFIX, dump, is_token_of, options, redis_lookups, registry, replica, store_errors, token,
};
use crate::support::LogCapture;
use crate::support::idp::Idp;
use crate::support::redis_server::{RedisConfig, RedisServer, connect, free_port, until};
use crate::support::tls::Pki;

const LIFETIME_MS: i64 = 300_000; // the IdP's default --ttl

#[tokio::test]
async fn a_second_replica_gets_the_first_ones_token_from_redis_with_a_password() {
    let idp = Idp::start().await;
    let redis = RedisServer::start(RedisConfig::default().password("redis-pw")).await;
    let options = options(
        &idp,
        json!({"keyPrefix": PREFIX, "redis": {"endpoints": [redis.endpoint()], "password": "redis-pw"}}),
    );
    let (registry, metrics) = registry();
    let first = replica(&options, &metrics, "first");
    let second = replica(&options, &metrics, "second");

    let token_a = token(&first, "basic-client", "basic-secret").await;
    let token_b = token(&second, "basic-client", "basic-secret").await;
    assert_eq!(token_a, token_b, "the second replica uses the stored token");
    assert_eq!(
        idp.stats().await.total,
        1,
        "no token request for the second"
    );
    assert_eq!(redis_lookups(&registry, "first", "miss"), 1);
    assert_eq!(redis_lookups(&registry, "second", "hit"), 1);
    assert_eq!(
        store_errors(&registry, "first") + store_errors(&registry, "second"),
        0
    );

    // What Redis holds: one entry, under the prefix, no lock left behind.
    let mut conn = connect(&redis.endpoint(), Some(("default", "redis-pw"))).await;
    let entries = dump(&mut conn).await;
    assert_eq!(entries.len(), 1, "{:?}", entries.keys());
    let (key, (value, ttl)) = entries.iter().next().unwrap();
    assert!(
        key.starts_with(PREFIX) && key.len() == PREFIX.len() + 43,
        "{key}"
    );
    for raw in ["basic-client", "basic-secret"] {
        assert!(!key.contains(raw), "{key}");
    }
    assert!(*ttl > 0 && *ttl <= LIFETIME_MS, "PTTL {ttl}");
    // Without store.secret: the documented plaintext record.
    let record: Value = serde_json::from_slice(value).expect("a JSON record");
    assert_eq!(record["v"], 1);
    assert_eq!(record["token"], token_a.as_str());
    let expires = record["expires_at_ms"].as_u64().unwrap();
    let refresh = record["refresh_at_ms"].as_u64().unwrap();
    assert!(refresh < expires, "{record}");
}

#[tokio::test]
async fn an_acl_user_limited_to_the_prefix_works_and_other_keys_fail_softly() {
    let idp = Idp::start().await;
    let redis = RedisServer::start(
        RedisConfig::default().line(format!("user app on >app-pw ~{PREFIX}* +@all")),
    )
    .await;
    let store = |prefix: &str| json!({"keyPrefix": prefix, "redis": {"endpoints": [redis.endpoint()], "username": "app", "password": "app-pw"}});
    let (registry, metrics) = registry();
    let first = replica(&options(&idp, store(PREFIX)), &metrics, "first");
    let second = replica(&options(&idp, store(PREFIX)), &metrics, "second");
    let token_a = token(&first, "tester-client", "tester-secret").await;
    assert_eq!(
        token(&second, "tester-client", "tester-secret").await,
        token_a
    );
    assert_eq!(idp.stats().await.total, 1);

    // A prefix outside the user's key pattern: NOPERM, absorbed.
    let outside = replica(&options(&idp, store("elsewhere:")), &metrics, "outside");
    let token_c = token(&outside, "tester-client", "tester-secret").await;
    assert!(is_token_of(&token_c, "tester-client"));
    assert!(store_errors(&registry, "outside") > 0);
    assert_eq!(idp.stats().await.total, 2, "served by the token endpoint");
}

#[tokio::test]
async fn tls_with_a_test_ca_and_a_client_certificate() {
    let idp = Idp::start().await;
    let pki = Pki::new();
    let redis = RedisServer::start(RedisConfig::default().tls(&pki)).await;
    let tls =
        json!({"caBundle": pki.ca_pem, "cert": pki.client_cert_pem, "key": pki.client_key_pem});
    let options_tls = options(
        &idp,
        json!({"keyPrefix": PREFIX, "redis": {"endpoints": [redis.tls_endpoint()], "tls": tls}}),
    );
    let (registry, metrics) = registry();
    let first = replica(&options_tls, &metrics, "first");
    let second = replica(&options_tls, &metrics, "second");
    let token_a = token(&first, "basic-client", "basic-secret").await;
    assert_eq!(
        token(&second, "basic-client", "basic-secret").await,
        token_a
    );
    assert_eq!(idp.stats().await.total, 1);
    assert_eq!(
        store_errors(&registry, "first") + store_errors(&registry, "second"),
        0
    );
    let mut conn = connect(&redis.endpoint(), None).await;
    assert_eq!(dump(&mut conn).await.len(), 1, "stored over TLS");

    // Without the client certificate the server refuses the handshake.
    let no_cert = options(
        &idp,
        json!({"keyPrefix": PREFIX, "redis": {"endpoints": [redis.tls_endpoint()], "tls": {"caBundle": pki.ca_pem}}}),
    );
    let refused = replica(&no_cert, &metrics, "no-cert");
    assert!(is_token_of(
        &token(&refused, "tester-client", "tester-secret").await,
        "tester-client"
    ));
    assert!(store_errors(&registry, "no-cert") > 0);
}

#[tokio::test]
async fn sealed_values_hide_the_token_and_do_not_open_under_another_key() {
    let idp = Idp::start().await;
    let redis = RedisServer::start(RedisConfig::default()).await;
    let options = options(
        &idp,
        json!({"keyPrefix": PREFIX, "secret": "0123456789abcdef0123456789abcdef", "redis": {"endpoints": [redis.endpoint()]}}),
    );
    let (_registry, metrics) = registry();
    let first = replica(&options, &metrics, "first");
    let mut conn = connect(&redis.endpoint(), None).await;

    let basic_token = token(&first, "basic-client", "basic-secret").await;
    let entries = dump(&mut conn).await;
    let (basic_key, (sealed, ttl)) = entries.into_iter().next().expect("one entry");
    assert!(ttl > 0 && ttl <= LIFETIME_MS);
    assert_eq!(sealed[0], 1, "sealed format version");
    let needle = &basic_token.as_bytes()[..16];
    assert!(
        !sealed.windows(16).any(|w| w == needle),
        "no token in the value"
    );
    assert!(!String::from_utf8_lossy(&sealed).contains("basic-client"));

    token(&first, "tester-client", "tester-secret").await;
    let entries = dump(&mut conn).await;
    let tester_key = entries
        .keys()
        .find(|k| **k != basic_key)
        .expect("the tester entry")
        .clone();
    // Move basic-client's value under tester-client's key.
    let () = redis::cmd("SET")
        .arg(&tester_key)
        .arg(&sealed)
        .arg("PX")
        .arg(60_000)
        .query_async(&mut conn)
        .await
        .unwrap();
    let before = idp.stats().await.total;
    let second = replica(&options, &metrics, "second");
    let got = token(&second, "tester-client", "tester-secret").await;
    assert!(
        is_token_of(&got, "tester-client"),
        "not basic-client's token"
    );
    assert_eq!(idp.stats().await.total, before + 1, "the copy was a miss");
    // And the right entry still opens for another replica.
    let third = replica(&options, &metrics, "third");
    assert_eq!(
        token(&third, "basic-client", "basic-secret").await,
        basic_token
    );
    assert_eq!(idp.stats().await.total, before + 1);
}

#[tokio::test]
async fn redis_down_at_start_is_absorbed_and_used_once_it_is_up() {
    let idp = Idp::start().await;
    let port = free_port();
    let options = options(
        &idp,
        json!({"keyPrefix": PREFIX, "redis": {"endpoints": [format!("127.0.0.1:{port}")]}}),
    );
    let (registry, metrics) = registry();
    let built = Instant::now();
    let middleware = replica(&options, &metrics, "m");
    assert!(
        built.elapsed() < Duration::from_millis(200),
        "building does not wait"
    );

    let headers = super::caller("basic-client", "basic-secret");
    let grant = middleware
        .authorize(&headers)
        .await
        .expect("served without Redis");
    assert!(is_token_of(
        &super::bearer(grant.authorization()),
        "basic-client"
    ));
    assert!(store_errors(&registry, "m") > 0);

    let redis = RedisServer::start(RedisConfig::default().port(port)).await;
    let mut conn = connect(&redis.endpoint(), None).await;
    // Drop the cached token after each request, so each one misses memory
    // and goes to the store, until the store has the token.
    let mut requests = 0;
    until(
        Duration::from_secs(15),
        "the middleware to use Redis again",
        || {
            let (middleware, headers, mut conn) =
                (middleware.clone(), headers.clone(), conn.clone());
            requests += 1;
            async move {
                let grant = middleware.authorize(&headers).await.expect("served");
                let stored: u64 = redis::cmd("DBSIZE").query_async(&mut conn).await.unwrap();
                if stored == 0 {
                    middleware.upstream_rejected(&grant).await;
                    // Each drop costs a token request, and the client id
                    // may start 5 per second (SPEC §2.8): pace the polls.
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
                stored > 0
            }
        },
    )
    .await;
    let errors = store_errors(&registry, "m");
    let before = idp.stats().await.total;
    let other = replica(&options, &metrics, "other");
    token(&other, "basic-client", "basic-secret").await;
    assert_eq!(idp.stats().await.total, before, "another replica reads it");
    assert_eq!(store_errors(&registry, "m"), errors, "no new errors");
    let _ = &mut conn;
    eprintln!("recovered after {requests} polls, {errors} store errors counted");
}

#[tokio::test]
async fn an_upstream_401_deletes_the_shared_entry_only_if_it_is_unchanged() {
    let idp = Idp::start().await;
    let redis = RedisServer::start(RedisConfig::default()).await;
    let options = options(
        &idp,
        json!({"keyPrefix": PREFIX, "secret": "0123456789abcdef", "redis": {"endpoints": [redis.endpoint()]}}),
    );
    let (_registry, metrics) = registry();
    let (a, b) = (
        replica(&options, &metrics, "a"),
        replica(&options, &metrics, "b"),
    );
    let headers = super::caller("basic-client", "basic-secret");
    let old = a.authorize(&headers).await.unwrap();
    let old_on_b = b.authorize(&headers).await.unwrap();
    assert_eq!(old.authorization(), old_on_b.authorization());
    a.upstream_rejected(&old).await; // deletes the Redis entry: same value
    let new = a.authorize(&headers).await.unwrap();
    assert_ne!(new.authorization(), old.authorization());
    assert_eq!(idp.stats().await.total, 2);
    b.upstream_rejected(&old_on_b).await; // a late 401 for the old token on b
    let c = replica(&options, &metrics, "c");
    let on_c = c.authorize(&headers).await.unwrap();
    assert_eq!(
        on_c.authorization(),
        new.authorization(),
        "the new token stayed"
    );
    assert_eq!(idp.stats().await.total, 2);
}

#[tokio::test]
async fn no_secret_reaches_logs_errors_or_debug() {
    let logs = LogCapture::start();
    let idp = Idp::start().await;
    let redis = RedisServer::start(RedisConfig::default().password("right-redis-pw")).await;
    let with_sentinel = options(
        &idp,
        json!({"keyPrefix": PREFIX, "secret": "store-secret-0123456789abcdefghi", "redis": {
            "endpoints": [redis.endpoint()], "password": "wrong-redis-pw-XYZ",
            "sentinel": {"password": "sentinel-pw-XYZ"}}}),
    );
    let (registry, metrics) = registry();
    let built = ccgate::Middleware::builder(with_sentinel.clone())
        .metrics(&metrics)
        .build()
        .expect_err("sentinel fields without masterSet");
    let mut shown = format!("{built} {built:?} {with_sentinel:?}");

    let options = options(
        &idp,
        json!({"keyPrefix": PREFIX, "secret": "store-secret-0123456789abcdefghi", "redis": {
            "endpoints": [redis.endpoint()], "password": "wrong-redis-pw-XYZ"}}),
    );
    let middleware = replica(&options, &metrics, "m");
    let token = token(&middleware, "basic-client", "basic-secret").await; // WRONGPASS, absorbed
    shown.push_str(&format!("{options:?} {middleware:?}"));
    // The failure path ran (its warning is logged unless another test's
    // thread raced tracing's per-callsite interest cache, so the metric is
    // what is asserted).
    assert!(
        store_errors(&registry, "m") > 0,
        "WRONGPASS is a store error"
    );
    let logged = logs.text();
    for secret in [
        "wrong-redis-pw-XYZ",
        "sentinel-pw-XYZ",
        "right-redis-pw",
        "store-secret-0123456789abcdefghi",
        "basic-secret",
        token.as_str(),
    ] {
        assert!(!logged.contains(secret), "{secret} in the logs:\n{logged}");
        assert!(!shown.contains(secret), "{secret} shown:\n{shown}");
    }
}
