//! Per-client-id throttling of token requests at application level
//! (SPEC §2.8): a token bucket per client id, in a bounded map.
//!
//! Only a token request that is about to be sent consults the throttle —
//! once per flight of the memory store's single flight, for credentials
//! that are not cached — so a cache hit never touches it, and N callers
//! waiting for one fetch cost one token. A client id over its budget gets
//! [`FetchError::Throttled`](crate::token::FetchError::Throttled) (429
//! with `Retry-After`) without a token request.
//!
//! # Bounds
//!
//! At most [`MAX_CLIENTS`] buckets are kept (moka, least recently used
//! first out), and a bucket unused for [`BUCKET_IDLE`] is dropped: by then
//! it has refilled to [`BURST`], so forgetting it gives nothing away. An
//! evicted bucket comes back full; a caller that pushes other client ids
//! through the map to evict one gets no more than it would with as many
//! distinct ids, each of which has its own budget.
//!
//! # Concurrency
//!
//! A bucket is a small mutex of its own, held for a few arithmetic
//! operations and never across an await; different client ids never
//! contend.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use moka::future::Cache;

/// Token requests a client id may start per second, sustained, for
/// credentials that are not cached.
pub(crate) const RATE_PER_SECOND: u32 = 5;

/// Token requests a client id may start at once before the rate applies.
pub(crate) const BURST: u32 = 10;

/// Most client ids whose budgets are remembered at once.
pub(crate) const MAX_CLIENTS: u64 = 10_000;

/// How long an unused bucket is kept: the time an empty bucket takes to
/// refill to [`BURST`] (`BURST / RATE_PER_SECOND`), after which a fresh
/// bucket is the same.
pub(crate) const BUCKET_IDLE: Duration = Duration::from_secs((BURST / RATE_PER_SECOND) as u64);

/// The buckets of one middleware.
pub(crate) struct Throttle {
    buckets: Cache<String, Arc<Mutex<Bucket>>>,
}

/// A token bucket: `tokens` as of `at`.
#[derive(Debug)]
struct Bucket {
    tokens: f64,
    at: Instant,
}

impl Throttle {
    pub(crate) fn new() -> Self {
        Self {
            buckets: Cache::builder()
                .max_capacity(MAX_CLIENTS)
                .time_to_idle(BUCKET_IDLE)
                .build(),
        }
    }

    /// Takes one token request from the budget of `client_id`.
    ///
    /// # Errors
    ///
    /// How long until the budget allows one, when it is spent.
    pub(crate) async fn take(&self, client_id: &str) -> Result<(), Duration> {
        let now = Instant::now();
        let bucket = self
            .buckets
            .get_with_by_ref(
                client_id,
                async move { Arc::new(Mutex::new(Bucket::full(now))) },
            )
            .await;
        let mut bucket = bucket.lock().unwrap_or_else(PoisonError::into_inner);
        bucket.take(now)
    }
}

impl Bucket {
    fn full(now: Instant) -> Self {
        Self {
            tokens: f64::from(BURST),
            at: now,
        }
    }

    /// Refills for the time since the last take, then takes one token.
    fn take(&mut self, now: Instant) -> Result<(), Duration> {
        let elapsed = now.saturating_duration_since(self.at).as_secs_f64();
        self.tokens = elapsed
            .mul_add(f64::from(RATE_PER_SECOND), self.tokens)
            .min(f64::from(BURST));
        self.at = self.at.max(now);
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            Ok(())
        } else {
            Err(Duration::from_secs_f64(
                (1.0 - self.tokens) / f64::from(RATE_PER_SECOND),
            ))
        }
    }
}

impl std::fmt::Debug for Throttle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Throttle")
            .field("clients", &self.buckets.entry_count())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bucket_allows_the_burst_then_the_rate() {
        let t0 = Instant::now();
        let mut bucket = Bucket::full(t0);
        for _ in 0..BURST {
            assert!(bucket.take(t0).is_ok());
        }
        let wait = bucket.take(t0).expect_err("the burst is spent");
        assert_eq!(wait, Duration::from_millis(200), "one token per 200 ms");
        // A fifth of a second later, exactly one more.
        let later = t0 + Duration::from_millis(200);
        assert!(bucket.take(later).is_ok());
        assert!(bucket.take(later).is_err());
        // Two seconds of rest refill the whole burst, never more.
        let rested = later + Duration::from_secs(60);
        for _ in 0..BURST {
            assert!(bucket.take(rested).is_ok());
        }
        assert!(bucket.take(rested).is_err());
    }

    #[test]
    fn an_idle_bucket_is_full_when_it_is_forgotten() {
        assert_eq!(BUCKET_IDLE, Duration::from_secs(2));
        let t0 = Instant::now();
        let mut bucket = Bucket::full(t0);
        for _ in 0..BURST {
            bucket.take(t0).unwrap();
        }
        let mut refilled = bucket;
        refilled.take(t0 + BUCKET_IDLE).unwrap();
        assert!(
            (refilled.tokens - f64::from(BURST - 1)).abs() < 1e-9,
            "{}",
            refilled.tokens
        );
    }

    #[tokio::test]
    async fn client_ids_have_their_own_budgets() {
        let throttle = Throttle::new();
        for _ in 0..BURST {
            throttle.take("a").await.unwrap();
        }
        assert!(throttle.take("a").await.is_err());
        assert!(throttle.take("b").await.is_ok(), "b is not a's");
    }
}
