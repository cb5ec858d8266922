//! The Redis store (SPEC §2.3) against real Redis servers: standalone with
//! a password, an ACL user, TLS with client certificates, Sentinel with a
//! failover and Cluster with a master killed, during traffic; replicas
//! (separate `Middleware`s, each with its own memory store) sharing one
//! Redis; what is stored; and Redis failing.

mod checks;
mod cluster;
mod replicas;
mod sentinel;
mod standalone;

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use ccgate::Middleware;
use ccgate::metrics::Metrics;
use ccgate::options::Options;
use http::{HeaderMap, HeaderValue, header};
use prometheus_client::registry::Registry;
use serde_json::{Value, json};

use crate::support::idp::Idp;
use crate::support::upstream::basic;

const AUDIENCE: &str = "https://api.example.com";
const PREFIX: &str = "ccgate:";
/// Pause between two requests of one caller of [`traffic`].
const PACE: Duration = Duration::from_millis(15);

/// How often the steady replica of [`traffic`] drops its token: every
/// drop may cost a token request, and its client id may start 5 per
/// second (SPEC §2.8).
const STEADY_DROP_EVERY: Duration = Duration::from_millis(250);

/// Options for `idp` with `store` as the `store` section.
fn options(idp: &Idp, store: Value) -> Options {
    let mut value = json!({
        "url": idp.token_endpoint(),
        "audience": AUDIENCE,
        "clientConfig": {"timeoutSeconds": 2, "maxRetries": 1},
    });
    value["store"] = store;
    Options::from_value(value).expect("valid options")
}

/// A middleware ("replica") counting into `metrics` under `name`.
///
/// An upstream 401 drops its token at once (`upstream_401_min_age` zero):
/// these tests use `upstream_rejected` to make the next request miss
/// memory and go to Redis. The 10 s default is tested in
/// `middleware::protection`.
fn replica(options: &Options, metrics: &Metrics, name: &str) -> Middleware {
    Middleware::builder(options.clone())
        .name(name)
        .metrics(metrics)
        .upstream_401_min_age(Duration::ZERO)
        .build()
        .expect("valid middleware")
}

/// A registry with the metrics registered on it.
fn registry() -> (Registry, Metrics) {
    let mut registry = Registry::default();
    let metrics = Metrics::register(&mut registry);
    (registry, metrics)
}

/// The value of the series `series` (name and labels, as printed).
fn metric(registry: &Registry, series: &str) -> u64 {
    let mut text = String::new();
    prometheus_client::encoding::text::encode(&mut text, registry).expect("encode");
    text.lines()
        .find_map(|line| line.strip_prefix(series)?.trim().parse().ok())
        .unwrap_or(0)
}

fn store_errors(registry: &Registry, name: &str) -> u64 {
    metric(
        registry,
        &format!(r#"ccgate_store_errors_total{{middleware="{name}",store="redis"}}"#),
    )
}

fn redis_lookups(registry: &Registry, name: &str, result: &str) -> u64 {
    metric(
        registry,
        &format!(
            r#"ccgate_cache_lookups_total{{middleware="{name}",tier="redis",result="{result}"}}"#
        ),
    )
}

/// `Authorization: Basic` headers of a caller.
fn caller(id: &str, secret: &str) -> HeaderMap {
    let mut headers = HeaderMap::new();
    headers.insert(
        header::AUTHORIZATION,
        HeaderValue::try_from(basic(id, secret)).expect("header"),
    );
    headers
}

/// The token `middleware` forwards for the caller `id:secret`.
async fn token(middleware: &Middleware, id: &str, secret: &str) -> String {
    let grant = middleware
        .authorize(&caller(id, secret))
        .await
        .unwrap_or_else(|denial| panic!("{id} was denied: {denial:?}"));
    bearer(grant.authorization())
}

fn bearer(authorization: &HeaderValue) -> String {
    authorization
        .to_str()
        .expect("ASCII")
        .strip_prefix("Bearer ")
        .expect("Bearer")
        .to_owned()
}

/// The claims of a JWT.
fn claims(token: &str) -> Value {
    let payload = token.split('.').nth(1).expect("a JWT");
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload)
        .expect("base64url");
    serde_json::from_slice(&bytes).expect("JSON claims")
}

/// Whether `token` is a valid-looking, unexpired token of `client`.
fn is_token_of(token: &str, client: &str) -> bool {
    let claims = claims(token);
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock")
        .as_secs();
    claims["client_id"] == client && claims["exp"].as_u64().is_some_and(|exp| exp > now)
}

/// Every key of a (non-cluster) server with its value and PTTL.
async fn dump(conn: &mut redis::aio::MultiplexedConnection) -> HashMap<String, (Vec<u8>, i64)> {
    let keys: Vec<String> = redis::cmd("KEYS")
        .arg("*")
        .query_async(conn)
        .await
        .expect("KEYS");
    let mut entries = HashMap::new();
    for key in keys {
        let value: Vec<u8> = redis::cmd("GET")
            .arg(&key)
            .query_async(conn)
            .await
            .expect("GET");
        let ttl: i64 = redis::cmd("PTTL")
            .arg(&key)
            .query_async(conn)
            .await
            .expect("PTTL");
        entries.insert(key, (value, ttl));
    }
    entries
}

/// Held by the fault tests (Sentinel, Cluster) so that their streams of
/// requests and servers do not compete for the machine's two cores.
static HEAVY: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// Counts of a stream of requests during a fault.
#[derive(Debug, Default)]
struct Outcomes {
    requests: AtomicU64,
    wrong: AtomicU64,
}

/// Runs callers until `stop`: `fresh` workers each build a new replica
/// per request for `fresh_client` (a memory miss every time, so every
/// request reads Redis), and one long-lived replica `steady` asks for
/// `steady_client` and drops the token (`upstream_rejected`) every
/// [`STEADY_DROP_EVERY`], so that it also deletes, locks and writes in
/// Redis. Every
/// answer is checked: a token of the right client, unexpired.
#[allow(clippy::too_many_arguments)]
fn traffic(
    options: &Options,
    metrics: &Metrics,
    name: &str,
    fresh: usize,
    fresh_client: (&'static str, &'static str),
    steady_client: (&'static str, &'static str),
    stop: &Arc<AtomicBool>,
    outcomes: &Arc<Outcomes>,
) -> Vec<tokio::task::JoinHandle<()>> {
    let mut tasks = Vec::new();
    for _ in 0..fresh {
        let (options, metrics, name) = (options.clone(), metrics.clone(), name.to_owned());
        let (stop, outcomes) = (Arc::clone(stop), Arc::clone(outcomes));
        tasks.push(tokio::spawn(async move {
            let headers = caller(fresh_client.0, fresh_client.1);
            while !stop.load(Ordering::SeqCst) {
                let middleware = replica(&options, &metrics, &name);
                check(
                    middleware.authorize(&headers).await,
                    fresh_client.0,
                    &outcomes,
                );
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        }));
    }
    let steady = replica(options, metrics, name);
    let (stop, outcomes) = (Arc::clone(stop), Arc::clone(outcomes));
    tasks.push(tokio::spawn(async move {
        let headers = caller(steady_client.0, steady_client.1);
        let mut dropped = std::time::Instant::now();
        while !stop.load(Ordering::SeqCst) {
            let grant = steady.authorize(&headers).await;
            // Within the client id's budget of token requests (5 per
            // second, SPEC §2.8): a drop costs one when Redis lost it.
            if let Ok(grant) = &grant
                && dropped.elapsed() >= STEADY_DROP_EVERY
            {
                steady.upstream_rejected(grant).await;
                dropped = std::time::Instant::now();
            }
            check(grant, steady_client.0, &outcomes);
            tokio::time::sleep(PACE).await;
        }
    }));
    tasks
}

fn check(
    grant: Result<ccgate::middleware::Grant, ccgate::denial::Denial>,
    client: &str,
    outcomes: &Outcomes,
) {
    outcomes.requests.fetch_add(1, Ordering::SeqCst);
    let right = grant.is_ok_and(|grant| is_token_of(&bearer(grant.authorization()), client));
    if !right {
        outcomes.wrong.fetch_add(1, Ordering::SeqCst);
    }
}
