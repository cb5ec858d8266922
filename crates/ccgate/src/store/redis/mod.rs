//! The Redis store: the tier that replicas share, behind each one's
//! memory store ([`super::memory`]).
//!
//! # Keys
//!
//! | key | value | TTL |
//! |---|---|---|
//! | `{keyPrefix}{hash}` | the token record (see `docs/redis.md`): sealed with `store.secret`, else versioned JSON | `PX` = the token's remaining usable time (until [`Entry::expires_at`]) |
//! | `{keyPrefix}lock:{hash}` | a random value of the holder | `PX` = the wait bound |
//!
//! `{hash}` is the cache key ([`CacheKey::store_key`]): 43 characters of
//! base64url, never a raw id or secret. `lock:` holds a `:`, which base64url
//! never does, so a lock never collides with an entry.
//!
//! # Failures
//!
//! Every operation is bounded (`link`'s connect, response, command and
//! establish timeouts); a failed one is counted in
//! `ccgate_store_errors_total{store="redis"}`, logged at most once per
//! [`WARN_INTERVAL`] per middleware (with the count of the ones not
//! logged), and otherwise absorbed: the caller goes on as on a miss, to
//! the token endpoint.
//!
//! See `docs/redis.md` for the options and the value format, and
//! [`read_through`] for the coordination of replicas.
//!
//! # Example
//!
//! Building a middleware with a Redis store sends nothing to the network:
//! it connects on first use, so a Redis that is down does not stop it.
//!
//! ```
//! use ccgate::{Middleware, options::Options};
//! use serde_json::json;
//!
//! let options = Options::from_value(json!({
//!     "url": "https://idp.example.com/oauth/token",
//!     "audience": "https://api.example.com",
//!     "store": {
//!         "keyPrefix": "ccgate:",
//!         "secret": "0123456789abcdef0123456789abcdef",
//!         "redis": {
//!             "endpoints": ["sentinel-0:26379", "sentinel-1:26379"],
//!             "sentinel": {"masterSet": "mymaster"},
//!             "password": "redis-password",
//!         },
//!     },
//! }))?;
//! let middleware = Middleware::new(options)?;
//! assert!(!format!("{middleware:?}").contains("redis-password"));
//! # Ok::<(), ccgate::options::OptionsError>(())
//! ```

mod config;
mod link;
mod read_through;
mod record;

use std::future::Future;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use aws_lc_rs::digest;
use aws_lc_rs::rand::{SecureRandom, SystemRandom};
use redis::Script;

pub(crate) use read_through::MAX_WAIT;

use self::link::{Failure, Link};
use super::key::CacheKey;
use super::seal::Sealer;
use crate::decision::Rules;
use crate::metrics::RedisHandles;
use crate::options::{OptionsError, RedisOptions};
use crate::store::entry::{Entry, StoreTag};

/// At most one warning per this interval per middleware.
pub(crate) const WARN_INTERVAL: Duration = Duration::from_secs(10);

/// Deletes the lock in `KEYS[1]` only if it still holds this holder's
/// value: a lock that expired and was taken by another is left alone.
const UNLOCK: &str = r"
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0";

/// Deletes the entry in `KEYS[1]` only if its value's SHA-1 is `ARGV[1]`:
/// the value this replica read or wrote. A newer token written by another
/// replica (a different value) stays.
const FORGET: &str = r"
local value = redis.call('GET', KEYS[1])
if value and redis.sha1hex(value) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0";

/// The Redis tier of one middleware.
pub(crate) struct Redis {
    link: Link,
    prefix: String,
    sealer: Option<Sealer>,
    wait: Duration,
    unlock: Script,
    forget: Script,
    random: SystemRandom,
    metrics: RedisHandles,
    warnings: Warnings,
}

/// A lock this replica holds: its key and value.
struct Lock {
    key: String,
    value: String,
}

/// Redis could not answer (the failure is counted and logged already).
#[derive(Debug)]
pub(crate) struct Unavailable;

impl Redis {
    /// The store described by `options`, with keys under `prefix`, values
    /// sealed by `sealer` when set, and lock waits bounded by `wait`.
    /// Connects on first use, not now.
    ///
    /// # Errors
    ///
    /// An [`OptionsError`] naming the invalid `store.redis` field.
    pub(crate) fn new(
        options: &RedisOptions,
        prefix: &str,
        sealer: Option<Sealer>,
        wait: Duration,
        middleware: &str,
        metrics: RedisHandles,
    ) -> Result<Self, OptionsError> {
        let mode = config::mode(options)?;
        if sealer.is_none() {
            // SPEC §10: bearer tokens in clear in a shared store are loud.
            tracing::warn!(
                middleware,
                "store.redis without store.secret: bearer tokens are stored in Redis in clear, \
                 and cache keys are hashed with a public key; set store.secret to seal them"
            );
        }
        Ok(Self {
            link: Link::new(mode),
            prefix: prefix.to_owned(),
            sealer,
            wait,
            unlock: Script::new(UNLOCK),
            forget: Script::new(FORGET),
            random: SystemRandom::new(),
            metrics,
            warnings: Warnings::new(middleware),
        })
    }

    /// The usable token stored under `key`, its decision made under
    /// `rules`; `None` if there is none, it has expired, or it does not
    /// open (another key's value, another secret, another format).
    async fn read(&self, key: &CacheKey, rules: &Arc<Rules>) -> Result<Option<Entry>, Unavailable> {
        let store_key = key.store_key(&self.prefix);
        let value: Option<Vec<u8>> = self
            .attempt("GET", self.link.query(redis::cmd("GET").arg(&store_key)))
            .await?;
        let Some(value) = value else {
            return Ok(None);
        };
        let Some(stored) = record::decode(self.sealer.as_ref(), &store_key, &value) else {
            tracing::debug!(
                middleware = self.warnings.middleware,
                "a Redis value did not open as a token record of this key; treated as a miss"
            );
            return Ok(None);
        };
        let introspected = stored.introspection.map(Arc::new);
        let Ok(entry) = Entry::restore(&stored.token, stored.times, rules, introspected) else {
            return Ok(None);
        };
        entry.set_stored_as(tag(&value));
        Ok(Some(entry))
    }

    /// Stores `entry` under `key` until its usable end.
    async fn write(&self, key: &CacheKey, entry: &Entry) -> Result<(), Unavailable> {
        let store_key = key.store_key(&self.prefix);
        let times = entry.wall_times();
        let ttl = entry
            .expires_at()
            .saturating_duration_since(Instant::now())
            .as_millis();
        if ttl == 0 {
            return Ok(());
        }
        let value = record::encode(
            self.sealer.as_ref(),
            &store_key,
            entry.access_token(),
            times,
            entry.introspected().map(|claims| &**claims),
        );
        entry.set_stored_as(tag(&value));
        let set = redis::cmd("SET")
            .arg(&store_key)
            .arg(value)
            .arg("PX")
            .arg(u64::try_from(ttl).unwrap_or(u64::MAX))
            .clone();
        self.attempt("SET", self.link.query::<()>(&set)).await
    }

    /// Takes the lock of `key` if no replica holds it.
    async fn try_lock(&self, key: &CacheKey) -> Result<Option<Lock>, Unavailable> {
        let lock_key = self.lock_key(key);
        let mut random = [0u8; 16];
        self.random
            .fill(&mut random)
            .expect("the system random source works");
        let value: String = random.iter().map(|b| format!("{b:02x}")).collect();
        let set = redis::cmd("SET")
            .arg(&lock_key)
            .arg(&value)
            .arg("NX")
            .arg("PX")
            .arg(u64::try_from(self.wait.as_millis()).unwrap_or(u64::MAX))
            .clone();
        let taken: Option<String> = self.attempt("SET NX", self.link.query(&set)).await?;
        Ok(taken.map(|_| Lock {
            key: lock_key,
            value,
        }))
    }

    /// Whether a replica holds the lock of `key`.
    async fn is_locked(&self, key: &CacheKey) -> Result<bool, Unavailable> {
        let exists = redis::cmd("EXISTS").arg(self.lock_key(key)).clone();
        let count: u64 = self.attempt("EXISTS", self.link.query(&exists)).await?;
        Ok(count > 0)
    }

    /// Releases `lock` if it is still ours.
    async fn unlock(&self, lock: Lock) {
        let args = [lock.value.as_bytes()];
        let released = self.link.eval::<i64>(&self.unlock, &lock.key, &args);
        let _ = self.attempt("unlock", released).await;
    }

    /// Deletes the entry under `key` if it still holds the value `entry`
    /// was read or written as.
    pub(crate) async fn remove_if_same(&self, key: &CacheKey, entry: &Entry) {
        let Some(stored_as) = entry.stored_as() else {
            return;
        };
        let store_key = key.store_key(&self.prefix);
        let args = [&stored_as[..]];
        let deleted = self.link.eval::<i64>(&self.forget, &store_key, &args);
        let _ = self.attempt("forget", deleted).await;
    }

    fn lock_key(&self, key: &CacheKey) -> String {
        key.store_key(&format!("{}lock:", self.prefix))
    }

    /// Awaits `operation`; a failure is counted and logged (rate-limited).
    async fn attempt<T>(
        &self,
        operation: &'static str,
        outcome: impl Future<Output = Result<T, Failure>>,
    ) -> Result<T, Unavailable> {
        match outcome.await {
            Ok(value) => Ok(value),
            Err(Failure::Skipped) => Err(Unavailable),
            Err(failure) => {
                self.metrics.errors.inc();
                self.warnings
                    .warn(self.link.mode().name(), operation, &failure);
                Err(Unavailable)
            }
        }
    }
}

/// The SHA-1 of a stored value, in lowercase hex as `redis.sha1hex`
/// prints it. An identity, not a security measure: whoever can write to
/// Redis can replace values anyway.
fn tag(value: &[u8]) -> StoreTag {
    let digest = digest::digest(&digest::SHA1_FOR_LEGACY_USE_ONLY, value);
    let mut tag = [0u8; 40];
    for (i, byte) in digest.as_ref().iter().enumerate() {
        let hex = b"0123456789abcdef";
        tag[2 * i] = hex[usize::from(byte >> 4)];
        tag[2 * i + 1] = hex[usize::from(byte & 0xf)];
    }
    tag
}

/// Rate-limited store warnings of one middleware.
struct Warnings {
    middleware: String,
    state: Mutex<WarnState>,
}

#[derive(Default)]
struct WarnState {
    last: Option<Instant>,
    suppressed: u64,
}

impl Warnings {
    fn new(middleware: &str) -> Self {
        Self {
            middleware: middleware.to_owned(),
            state: Mutex::default(),
        }
    }

    /// Logs `failure` unless a warning was logged in the last
    /// [`WARN_INTERVAL`]; then it is only counted, and the next warning
    /// says how many were not logged.
    fn warn(&self, mode: &str, operation: &str, failure: &Failure) {
        let suppressed = {
            let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
            let now = Instant::now();
            if state
                .last
                .is_some_and(|last| now.duration_since(last) < WARN_INTERVAL)
            {
                state.suppressed += 1;
                return;
            }
            state.last = Some(now);
            std::mem::take(&mut state.suppressed)
        };
        tracing::warn!(
            middleware = self.middleware,
            store = "redis",
            mode,
            operation,
            error = %failure,
            suppressed,
            "Redis store error; serving from memory and the token endpoint meanwhile \
             (`suppressed` = errors not logged since the last warning)"
        );
    }
}

impl std::fmt::Debug for Redis {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Redis")
            .field("link", &self.link)
            .field("prefix", &self.prefix)
            .field("sealed", &self.sealer.is_some())
            .field("wait", &self.wait)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tags_are_sha1_hex_as_redis_prints_them() {
        // redis-cli EVAL "return redis.sha1hex('abc')" 0
        assert_eq!(&tag(b"abc"), b"a9993e364706816aba3e25717850c26c9cd0d89d");
    }

    #[test]
    fn warnings_are_rate_limited_and_count_the_rest() {
        let warnings = Warnings::new("m");
        warnings.warn("standalone", "GET", &Failure::Timeout);
        warnings.warn("standalone", "GET", &Failure::Timeout);
        warnings.warn("standalone", "GET", &Failure::Timeout);
        let state = warnings.state.lock().unwrap();
        assert_eq!(state.suppressed, 2);
    }
}
