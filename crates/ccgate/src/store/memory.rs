//! The in-process token store: a bounded moka cache whose entries expire
//! with their tokens.
//!
//! # Concurrency
//!
//! [`Memory::get_or_fetch`] coalesces: when N callers miss on one key at
//! once, exactly one fetch runs and all N get its result. The fetch runs
//! in a spawned task that stores its token itself, and callers await a
//! shared handle to it, so callers that hang up — the first one included
//! — neither cancel the fetch nor make another caller start a second one.
//! (moka's `try_get_with` hands the init to a waiter when its first caller
//! is dropped, which would start a second token request: moka#240.)
//! The map of fetches in flight is locked only on a miss, briefly and
//! never across an await; a hit takes no lock.

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use futures_util::FutureExt as _;
use futures_util::future::{BoxFuture, Shared};
use moka::Expiry;
use moka::future::Cache;
use moka::ops::compute::Op;

use super::entry::Entry;
use super::key::CacheKey;
use crate::token::FetchError;

/// The outcome of one fetch, shared by every caller waiting for it.
pub(crate) type Fetched = Result<Arc<Entry>, Arc<FetchError>>;

type Flight = Shared<BoxFuture<'static, Fetched>>;

/// Default bound on cached tokens per middleware. At 1.4–2 KB per cached
/// JWT (measured: docs/benchmarks.md, scenario i), 100,000 tokens hold
/// about 140–200 MiB, depending on the allocator; the least recently used
/// go first.
pub(crate) const DEFAULT_MAX_ENTRIES: u64 = 100_000;

/// Tokens cached in this process.
#[derive(Clone)]
pub(crate) struct Memory {
    tokens: Cache<CacheKey, Arc<Entry>>,
    in_flight: Arc<Mutex<HashMap<CacheKey, Flight>>>,
}

/// Entries live until their token's usable end ([`Entry::expires_at`]).
struct UntilTokenExpiry;

impl Expiry<CacheKey, Arc<Entry>> for UntilTokenExpiry {
    fn expire_after_create(
        &self,
        _: &CacheKey,
        entry: &Arc<Entry>,
        created_at: Instant,
    ) -> Option<Duration> {
        Some(entry.expires_at().saturating_duration_since(created_at))
    }

    fn expire_after_update(
        &self,
        _: &CacheKey,
        entry: &Arc<Entry>,
        updated_at: Instant,
        _: Option<Duration>,
    ) -> Option<Duration> {
        Some(entry.expires_at().saturating_duration_since(updated_at))
    }
}

impl Memory {
    /// A store holding at most `max_entries` tokens.
    #[must_use]
    pub(crate) fn new(max_entries: u64) -> Self {
        Self {
            tokens: Cache::builder()
                .max_capacity(max_entries)
                .expire_after(UntilTokenExpiry)
                .build(),
            in_flight: Arc::default(),
        }
    }

    /// The entry under `key`, if present and fresh.
    pub(crate) async fn get(&self, key: &CacheKey) -> Option<Arc<Entry>> {
        self.tokens
            .get(key)
            .await
            .filter(|entry| entry.is_fresh(Instant::now()))
    }

    /// The entry under `key`, fetched by `fetch` if absent. Concurrent
    /// callers for one key share one fetch, which runs in a spawned task
    /// and stores a successful result before it is handed out.
    ///
    /// # Errors
    ///
    /// The fetch's error, shared by every caller that waited for it.
    pub(crate) async fn get_or_fetch<F>(&self, key: CacheKey, fetch: F) -> Fetched
    where
        F: Future<Output = Fetched> + Send + 'static,
    {
        if let Some(entry) = self.get(&key).await {
            return Ok(entry);
        }
        let flight = {
            let mut in_flight = self
                .in_flight
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            match in_flight.get(&key) {
                Some(flight) => flight.clone(),
                None => {
                    let flight = self.start(key, fetch);
                    in_flight.insert(key, flight.clone());
                    flight
                }
            }
        };
        flight.await
    }

    /// Spawns the fetch for `key`: on success it stores the entry, then
    /// leaves the in-flight map, so a caller arriving in between finds one
    /// or the other.
    fn start<F>(&self, key: CacheKey, fetch: F) -> Flight
    where
        F: Future<Output = Fetched> + Send + 'static,
    {
        let store = self.clone();
        let task = tokio::spawn(async move {
            let fetched = fetch.await;
            if let Ok(entry) = &fetched {
                store.tokens.insert(key, Arc::clone(entry)).await;
            }
            store
                .in_flight
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .remove(&key);
            fetched
        });
        async move {
            match task.await {
                Ok(fetched) => fetched,
                Err(join) => std::panic::resume_unwind(join.into_panic()),
            }
        }
        .boxed()
        .shared()
    }

    /// Stores `entry` under `key`, replacing any other.
    pub(crate) async fn insert(&self, key: CacheKey, entry: Arc<Entry>) {
        self.tokens.insert(key, entry).await;
    }

    /// Removes the entry under `key` if it is still `entry` (not a newer
    /// token that replaced it meanwhile).
    pub(crate) async fn remove_if_same(&self, key: CacheKey, entry: &Arc<Entry>) {
        self.tokens
            .entry(key)
            .and_compute_with(|current| {
                let same = current.is_some_and(|c| Arc::ptr_eq(c.value(), entry));
                std::future::ready(if same { Op::Remove } else { Op::Nop })
            })
            .await;
    }

    /// How many tokens are cached (approximate, as moka counts).
    #[must_use]
    pub(crate) fn len(&self) -> u64 {
        self.tokens.entry_count()
    }
}

impl std::fmt::Debug for Memory {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Memory")
            .field("entries", &self.len())
            .finish()
    }
}
