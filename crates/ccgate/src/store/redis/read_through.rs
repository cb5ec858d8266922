//! Read-through with replica coordination: a memory miss (or a refresh)
//! asks Redis first, and only one replica of many fetches a cold key.
//!
//! [`Redis::read_through`]:
//! 1. reads Redis: a usable token there is used (`tier="redis"` hit);
//! 2. else takes the key's lock (`SET NX PX`), fetches, writes the token
//!    (`PX` = its remaining usable time), releases the lock;
//! 3. if another replica holds the lock, polls Redis every
//!    [`POLL_INTERVAL`] for its token, for at most the wait bound
//!    (`clientConfig.timeoutSeconds`, capped at [`MAX_WAIT`]); if its lock
//!    goes away without a token, tries to take it; when the wait runs out,
//!    fetches anyway — a slow token endpoint or a dead replica never makes
//!    a caller fail;
//! 4. if Redis fails at any step, fetches (and serves) without it.
//!
//! With `verify`, a token read from Redis is verified before it is used
//! (once: the entry then lives in memory); one that fails is deleted from
//! Redis (if it still holds the same value), never forwarded, and the
//! caller gets the verification error (502).
//!
//! So N replicas missing on one key at once make one token request when
//! the token endpoint answers within the wait bound. A refresh passes the
//! entry it replaces and accepts from Redis only a newer token (another
//! replica's refresh).

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::Redis;
use crate::decision::Rules;
use crate::store::entry::Entry;
use crate::store::key::CacheKey;
use crate::store::memory::Fetched;
use crate::verify::Verifier;

/// Longest wait for another replica's token (the wait bound is
/// `clientConfig.timeoutSeconds`, capped at this).
pub(crate) const MAX_WAIT: Duration = Duration::from_secs(2);

/// How often a waiting replica looks for another one's token.
pub(crate) const POLL_INTERVAL: Duration = Duration::from_millis(25);

impl Redis {
    /// The token for `key`: from Redis when it holds a usable one (newer
    /// than `current`, for a refresh), else from `fetch`, whose token is
    /// then written to Redis. `fetch` runs at most once, and at most one
    /// replica runs it at a time while Redis answers (module docs).
    pub(crate) async fn read_through<F, Fut>(
        &self,
        key: &CacheKey,
        rules: &Arc<Rules>,
        verifier: Option<&Verifier>,
        current: Option<&Entry>,
        fetch: F,
    ) -> Fetched
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Fetched>,
    {
        let wanted = |entry: &Entry| {
            current.is_none_or(|current| {
                entry.access_token() != current.access_token()
                    && entry.expires_at() > current.expires_at()
            })
        };
        match self.read(key, rules).await {
            Ok(Some(entry)) if wanted(&entry) => {
                self.metrics.hit.inc();
                return self.admit(key, entry, verifier).await;
            }
            Ok(_) => {
                self.metrics.miss.inc();
            }
            Err(_) => return self.fetch_and_write(key, fetch).await,
        }
        let deadline = Instant::now() + self.wait;
        'lock: loop {
            match self.try_lock(key).await {
                Ok(Some(lock)) => {
                    let fetched = self.fetch_and_write(key, fetch).await;
                    self.unlock(lock).await;
                    return fetched;
                }
                Ok(None) => {}
                Err(_) => break 'lock,
            }
            // Another replica is fetching: wait for its token.
            loop {
                if Instant::now() + POLL_INTERVAL > deadline {
                    break 'lock;
                }
                tokio::time::sleep(POLL_INTERVAL).await;
                match self.read(key, rules).await {
                    Ok(Some(entry)) if wanted(&entry) => {
                        return self.admit(key, entry, verifier).await;
                    }
                    Ok(_) => {}
                    Err(_) => break 'lock,
                }
                match self.is_locked(key).await {
                    Ok(true) => {}
                    Ok(false) => continue 'lock, // it gave up without a token
                    Err(_) => break 'lock,
                }
            }
        }
        self.fetch_and_write(key, fetch).await
    }

    /// `entry`, read from Redis, if it passes `verifier`; else it is
    /// deleted there and its error returned.
    async fn admit(&self, key: &CacheKey, entry: Entry, verifier: Option<&Verifier>) -> Fetched {
        if let Some(verifier) = verifier
            && let Err(error) = verifier.verify(entry.access_token()).await
        {
            tracing::warn!(
                middleware = self.warnings.middleware,
                error = %error,
                "a token read from Redis failed verification: not forwarded, deleted from the store"
            );
            self.remove_if_same(key, &entry).await;
            return Err(Arc::new(error));
        }
        Ok(Arc::new(entry))
    }

    /// Runs `fetch` and writes its token to Redis (a failed write is
    /// counted and absorbed: the token is served all the same).
    async fn fetch_and_write<F, Fut>(&self, key: &CacheKey, fetch: F) -> Fetched
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Fetched>,
    {
        let fetched = fetch().await;
        if let Ok(entry) = &fetched {
            let _ = self.write(key, entry).await;
        }
        fetched
    }
}
