//! `introspection` and `verify` with a shared store (SPEC §2.7): the
//! introspection response is stored (sealed) with the token, so another
//! replica does not introspect again; a token read from Redis is verified
//! once when read, and one planted there that fails is never forwarded.

use serde_json::{Value, json};

use super::{PREFIX, caller, dump, registry, replica, token};
use crate::support::idp::Idp;
use crate::support::redis_server::{RedisConfig, RedisServer, connect};

const SECRET: &str = "0123456789abcdef0123456789abcdef";

fn with(mut options: Value, extra: Value) -> ccgate::options::Options {
    let (object, Value::Object(extra)) = (options.as_object_mut().unwrap(), extra) else {
        panic!("extra options are an object")
    };
    object.extend(extra);
    ccgate::options::Options::from_value(options).expect("valid options")
}

/// The options of `super::options`, as a value to extend.
fn base(idp: &Idp, redis: &RedisServer) -> Value {
    json!({
        "url": idp.token_endpoint(), "audience": super::AUDIENCE,
        "clientConfig": {"timeoutSeconds": 2, "maxRetries": 1},
        "store": {"keyPrefix": PREFIX, "secret": SECRET, "redis": {"endpoints": [redis.endpoint()]}},
    })
}

#[tokio::test]
async fn a_replica_reads_the_introspection_with_the_token_and_does_not_introspect_again() {
    let idp = Idp::start().await;
    let redis = RedisServer::start(RedisConfig::default()).await;
    let options = with(
        base(&idp, &redis),
        json!({"introspection": {"url": idp.introspection_endpoint()},
               "claims": "Equals(`grp`, `opaque`)",
               "forwardHeaders": {"X-User": "user.name"}}),
    );
    let (_registry, metrics) = registry();
    let first = replica(&options, &metrics, "first");
    let second = replica(&options, &metrics, "second");
    let token_a = token(&first, "opaque-client", "opaque-secret").await;
    let grant = second
        .authorize(&caller("opaque-client", "opaque-secret"))
        .await
        .expect("allowed by the stored introspection");
    assert_eq!(super::bearer(grant.authorization()), token_a);
    assert_eq!(grant.forward_headers()[0].1, "Opaque Olive");
    let stats = idp.stats().await;
    assert_eq!((stats.total, stats.introspections), (1, 1));
    // Sealed: neither the token nor the introspected claims in clear.
    let mut conn = connect(&redis.endpoint(), None).await;
    for (value, _) in dump(&mut conn).await.values() {
        for clear in [token_a.as_bytes(), b"Opaque Olive"] {
            assert!(!value.windows(clear.len()).any(|w| w == clear));
        }
    }
}

#[tokio::test]
async fn a_forged_token_planted_in_redis_is_not_forwarded() {
    let idp = Idp::start().await;
    let redis = RedisServer::start(RedisConfig::default()).await;
    let options = with(
        base(&idp, &redis),
        json!({"verify": {"jwksURL": idp.jwks_uri(), "issuer": idp.issuer()}}),
    );
    let (_registry, metrics) = registry();
    let first = replica(&options, &metrics, "first");
    let genuine = token(&first, "basic-client", "basic-secret").await;

    // An attacker who can write to Redis and knows store.secret plants
    // the genuine token with its claims changed (the signature no longer
    // fits), sealed under the right key.
    let mut conn = connect(&redis.endpoint(), None).await;
    let entries = dump(&mut conn).await;
    let (key, (value, _)) = entries.iter().next().expect("one entry");
    let sealer = ccgate::store::seal::Sealer::new(SECRET.as_bytes()).unwrap();
    let mut record: Value =
        serde_json::from_slice(&sealer.open(key.as_bytes(), value).expect("opens")).unwrap();
    let mut parts: Vec<String> = genuine.split('.').map(str::to_owned).collect();
    let mut claims = super::claims(&genuine);
    claims["grp"] = json!("root");
    parts[1] = base64::Engine::encode(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD,
        claims.to_string(),
    );
    let forged = parts.join(".");
    record["token"] = json!(forged);
    let planted = sealer.seal(key.as_bytes(), record.to_string().as_bytes());
    let _: () = redis::cmd("SET")
        .arg(key)
        .arg(planted)
        .arg("PX")
        .arg(60_000)
        .query_async(&mut conn)
        .await
        .unwrap();

    let second = replica(&options, &metrics, "second");
    let denial = second
        .authorize(&caller("basic-client", "basic-secret"))
        .await
        .expect_err("the planted token fails verification");
    assert_eq!(denial.status(), 502);
    assert!(!format!("{denial:?}").contains(&forged));
    assert!(
        dump(&mut conn).await.is_empty(),
        "the planted value is deleted"
    );
    // Not cached either: the next request gets a genuine token.
    let fresh = token(&second, "basic-client", "basic-secret").await;
    assert_ne!(fresh, forged);
    assert_eq!(super::claims(&fresh)["grp"], "admin");
}
