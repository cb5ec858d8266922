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
//! A caller whose miss is overtaken by a fetch that lands before it takes
//! the lock finds that fetch's token rather than starting another (see
//! [`Memory::get_or_fetch`] for why). A fetch that panics or whose task is
//! cancelled answers its waiters with [`FetchError::Internal`] and leaves
//! nothing behind: the next caller starts a fresh one.
//! The map of fetches in flight is locked only on a miss, briefly and
//! never across an await; a hit takes no lock.

use std::collections::HashMap;
use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use futures_util::FutureExt as _;
use futures_util::future::{BoxFuture, Shared};
use moka::Expiry;
use moka::future::Cache;
use moka::ops::compute::Op;
use prometheus_client::metrics::counter::Counter;
use tokio::sync::oneshot;

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
    /// How many entries have been stored, bumped after each store is
    /// visible in `tokens` (and, for a fetch, before it leaves
    /// `in_flight`): a caller that read it before missing knows, under the
    /// lock, whether its miss may have been overtaken.
    stored: Arc<AtomicU64>,
    /// Counts fetches that ended without an answer (panicked, cancelled):
    /// once per fetch, however many callers waited for it.
    failures: Counter,
    #[cfg(test)]
    seams: Arc<seams::Seams>,
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

/// What a caller that missed does, decided under the in-flight lock.
enum Next {
    /// Wait for the fetch in flight.
    Join(Flight),
    /// Run its own fetch, now in the map, by spawning this task.
    Start(Flight, BoxFuture<'static, ()>),
    /// Look in the cache again: a token for the key landed since the miss.
    Recheck,
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
            stored: Arc::default(),
            failures: Counter::default(),
            #[cfg(test)]
            seams: Arc::default(),
        }
    }

    /// The same store, counting into `failures` each fetch that ends
    /// without an answer (the `internal` outcome of token requests).
    #[must_use]
    pub(crate) fn counting_failures(mut self, failures: Counter) -> Self {
        self.failures = failures;
        self
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
    /// # Concurrency
    ///
    /// The cache check cannot happen under the in-flight lock (moka's
    /// `get` is async), so a fetch may land — store its token and leave
    /// the in-flight map — between a caller's miss and its taking the
    /// lock. The fetch bumps a counter of stores after storing and before
    /// leaving the map, and the caller reads it before its cache check;
    /// so, under the lock, a caller that finds no fetch in flight and an
    /// unchanged counter knows no token landed since its miss, and starts
    /// a fetch. When the counter moved, it asks moka (`contains_key`,
    /// which does not await) whether this key has an entry, and if so
    /// drops the lock and checks the cache again. It checks again only
    /// when a store landed meanwhile, so the loop ends as soon as stores
    /// stop overtaking it.
    ///
    /// Callers that are dropped while waiting neither cancel the fetch nor
    /// make another start. A fetch that panics, or whose task is cancelled
    /// (aborted, or its runtime shut down), answers every waiter with
    /// [`FetchError::Internal`] and leaves the in-flight map, so the next
    /// caller starts a fresh one.
    ///
    /// # Errors
    ///
    /// The fetch's error, shared by every caller that waited for it, and
    /// not cached.
    pub(crate) async fn get_or_fetch<F>(&self, key: CacheKey, fetch: F) -> Fetched
    where
        F: Future<Output = Fetched> + Send + 'static,
    {
        let mut fetch = Some(fetch);
        let mut seen = self.stored.load(Ordering::Acquire);
        let mut cached = self.get(&key).await;
        #[cfg(test)]
        if cached.is_none() {
            self.seams.after_miss().await;
        }
        loop {
            if let Some(entry) = cached {
                return Ok(entry);
            }
            match self.join_or_start(key, seen, &mut fetch) {
                Next::Join(flight) => return flight.await,
                Next::Start(flight, task) => {
                    // Spawned outside the lock: a runtime that is shutting
                    // down drops the task at once, and its guard takes the
                    // lock.
                    let task = tokio::spawn(task);
                    #[cfg(test)]
                    self.seams.spawned(task.abort_handle());
                    drop(task);
                    return flight.await;
                }
                Next::Recheck => {
                    seen = self.stored.load(Ordering::Acquire);
                    cached = self.get(&key).await;
                }
            }
        }
    }

    /// Under the in-flight lock, held without awaiting: joins the fetch
    /// for `key` in flight, or asks for a recheck when a store landed since
    /// the counter read `seen` and `key` has an entry, or registers the
    /// flight of `fetch` and returns the task to spawn.
    fn join_or_start<F>(&self, key: CacheKey, seen: u64, fetch: &mut Option<F>) -> Next
    where
        F: Future<Output = Fetched> + Send + 'static,
    {
        let mut in_flight = self
            .in_flight
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if let Some(flight) = in_flight.get(&key) {
            return Next::Join(flight.clone());
        }
        if self.stored.load(Ordering::Acquire) != seen && self.tokens.contains_key(&key) {
            return Next::Recheck;
        }
        let Some(fetch) = fetch.take() else {
            unreachable!("a caller starts at most one fetch: starting ends its loop")
        };
        let (answer, answered) = oneshot::channel();
        let flight = answered
            .map(|answer| {
                answer.unwrap_or_else(|_| {
                    Err(Arc::new(FetchError::Internal {
                        reason: "the token fetch ended without an answer",
                    }))
                })
            })
            .boxed()
            .shared();
        in_flight.insert(key, flight.clone());
        let landing = Landing {
            store: self.clone(),
            key,
            answer: Some(answer),
        };
        Next::Start(flight, run(landing, fetch).boxed())
    }

    /// Stores `entry` under `key`, replacing any other.
    pub(crate) async fn insert(&self, key: CacheKey, entry: Arc<Entry>) {
        self.tokens.insert(key, entry).await;
        self.stored.fetch_add(1, Ordering::AcqRel);
    }

    /// Removes the entry under `key` if it is still `entry` (not a newer
    /// token that replaced it meanwhile), and retires `entry`.
    pub(crate) async fn remove_if_same(&self, key: CacheKey, entry: &Arc<Entry>) {
        self.tokens
            .entry(key)
            .and_compute_with(|current| {
                let same = current.is_some_and(|c| Arc::ptr_eq(c.value(), entry));
                std::future::ready(if same { Op::Remove } else { Op::Nop })
            })
            .await;
        // Removed, or replaced before: either way the cache holds it no more.
        entry.retire();
    }

    /// How many tokens are cached (approximate, as moka counts).
    #[must_use]
    pub(crate) fn len(&self) -> u64 {
        self.tokens.entry_count()
    }
}

/// The fetch's task: runs `fetch`, stores a success, then hands the
/// result to the waiters through `landing`.
async fn run<F>(mut landing: Landing, fetch: F)
where
    F: Future<Output = Fetched>,
{
    let fetched = fetch.await;
    if let Ok(entry) = &fetched {
        landing.store.insert(landing.key, Arc::clone(entry)).await;
    }
    landing.answer(fetched);
}

/// The end of one fetch, however it ends. Owned by the fetch's task, so it
/// is dropped when the task finishes, panics or is cancelled (even before
/// its first poll); it then takes the flight out of the in-flight map
/// *before* the waiters learn the result, so that a waiter that calls
/// again never finds the finished flight.
struct Landing {
    store: Memory,
    key: CacheKey,
    answer: Option<oneshot::Sender<Fetched>>,
}

impl Landing {
    fn answer(&mut self, fetched: Fetched) {
        self.leave();
        if let Some(answer) = self.answer.take() {
            // No waiter left is fine: the token, if any, is stored.
            let _ = answer.send(fetched);
        }
    }

    /// Removes the flight: it is the only one for its key, since another
    /// is registered only when none is in the map, and only its own
    /// `Landing` removes it.
    fn leave(&self) {
        self.store
            .in_flight
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(&self.key);
    }
}

impl Drop for Landing {
    fn drop(&mut self) {
        if self.answer.is_none() {
            return;
        }
        self.store.failures.inc();
        // The panic's message is not logged: it could hold anything.
        let reason = if std::thread::panicking() {
            tracing::error!("a token fetch panicked; its callers get an internal error");
            "the token fetch panicked"
        } else {
            tracing::warn!("a token fetch was cancelled; its callers get an internal error");
            "the token fetch was cancelled"
        };
        self.answer(Err(Arc::new(FetchError::Internal { reason })));
    }
}

impl std::fmt::Debug for Memory {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Memory")
            .field("entries", &self.len())
            .finish()
    }
}

#[cfg(test)]
/// Test-only points to pause a caller between its miss and the lock, and
/// to reach the task of the last fetch started.
mod seams {
    use super::*;

    type Hook = Arc<dyn Fn() -> BoxFuture<'static, ()> + Send + Sync>;

    #[derive(Default)]
    pub(super) struct Seams {
        after_miss: Mutex<Option<Hook>>,
        last_task: Mutex<Option<tokio::task::AbortHandle>>,
    }

    impl Seams {
        pub(super) async fn after_miss(&self) {
            let hook = self.after_miss.lock().unwrap().clone();
            if let Some(hook) = hook {
                hook().await;
            }
        }
        pub(super) fn spawned(&self, task: tokio::task::AbortHandle) {
            *self.last_task.lock().unwrap() = Some(task);
        }
    }

    impl Memory {
        pub(super) fn pause_after_miss(
            &self,
            hook: impl Fn() -> BoxFuture<'static, ()> + Send + Sync + 'static,
        ) {
            *self.seams.after_miss.lock().unwrap() = Some(Arc::new(hook));
        }
        pub(super) fn last_fetch_task(&self) -> tokio::task::AbortHandle {
            self.seams.last_task.lock().unwrap().clone().unwrap()
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use futures_util::future::join_all;
    use secrecy::SecretString;
    use tokio::sync::{Barrier, oneshot};

    use super::*;
    use crate::credentials::Credentials;
    use crate::decision::Rules;
    use crate::store::key::{KeyDeriver, KeyMaterial};

    fn key(id: &str) -> CacheKey {
        KeyDeriver::new(
            KeyMaterial::Public,
            &crate::store::key::Scope {
                url: "https://idp/token",
                audience: "api",
                scopes: &[],
                resource: &[],
                parameters: &std::collections::BTreeMap::new(),
                auth_method: "auto",
                private_key: None,
                private_key_id: None,
                checks: [None; 7],
            },
        )
        .derive(&Credentials::new(id, SecretString::from("secret")))
    }

    fn entry(token: &str) -> Arc<Entry> {
        let rules = Arc::new(Rules::default());
        let lifetime = Some(Duration::from_secs(3600));
        Arc::new(Entry::new(token, lifetime, Instant::now(), &rules).unwrap())
    }

    /// Counts the fetches it starts; each runs `body` once polled.
    #[derive(Clone, Default)]
    struct Source {
        fetches: Arc<AtomicUsize>,
    }

    impl Source {
        fn fetch<B>(&self, body: B) -> impl Future<Output = Fetched> + Send + 'static
        where
            B: Future<Output = Fetched> + Send + 'static,
        {
            let fetches = Arc::clone(&self.fetches);
            async move {
                fetches.fetch_add(1, Ordering::SeqCst);
                body.await
            }
        }

        fn ok(&self, token: &'static str) -> impl Future<Output = Fetched> + Send + 'static {
            self.fetch(async move { Ok(entry(token)) })
        }

        fn count(&self) -> usize {
            self.fetches.load(Ordering::SeqCst)
        }
    }

    /// Polls `call` once: on return it has either finished or is waiting
    /// for a fetch in flight (the cache lookup of an idle moka cache does
    /// not wait).
    fn poll_once<F: Future + Unpin>(call: &mut F) -> Option<F::Output> {
        call.now_or_never()
    }

    fn token(entry: &Entry) -> &str {
        entry.authorization().to_str().unwrap()
    }

    fn is_internal(fetched: &Fetched) -> bool {
        matches!(fetched, Err(error) if matches!(**error, FetchError::Internal { .. }))
    }

    fn in_flight(store: &Memory) -> usize {
        store.in_flight.lock().unwrap().len()
    }

    /// Bug (a): a fetch that lands between a caller's cache miss and its
    /// taking the in-flight lock must not make that caller start another.
    #[tokio::test]
    async fn a_fetch_landing_between_miss_and_lock_is_not_repeated() {
        let store = Memory::new(100);
        let source = Source::default();
        let (reached_tx, reached) = oneshot::channel();
        let (resume, resume_rx) = oneshot::channel::<()>();
        let pause = Mutex::new(Some((reached_tx, resume_rx)));
        store.pause_after_miss(move || {
            let once = pause.lock().unwrap().take();
            async move {
                if let Some((reached, resume)) = once {
                    reached.send(()).unwrap();
                    resume.await.unwrap();
                }
            }
            .boxed()
        });

        let late = tokio::spawn({
            let (store, source) = (store.clone(), source.clone());
            async move { store.get_or_fetch(key("app"), source.ok("second")).await }
        });
        reached.await.unwrap(); // `late` missed and waits before the lock
        let first = store.get_or_fetch(key("app"), source.ok("first")).await;
        assert_eq!(token(&first.unwrap()), "Bearer first");
        assert_eq!(in_flight(&store), 0, "the first fetch has landed");

        resume.send(()).unwrap();
        let late = late.await.unwrap().unwrap();
        assert_eq!(token(&late), "Bearer first");
        assert_eq!(source.count(), 1, "the late caller took the stored token");
    }

    /// Bug (b): a fetch that panics answers its waiters with an internal
    /// error and leaves nothing behind.
    #[tokio::test]
    async fn a_panicking_fetch_answers_internal_and_leaves_no_flight() {
        let failures = Counter::default();
        let store = Memory::new(100).counting_failures(failures.clone());
        let source = Source::default();
        let (release, release_rx) = oneshot::channel::<()>();
        let fetch = source.fetch(async move {
            release_rx.await.unwrap();
            panic!("the token fetch blew up");
        });
        let mut first = store.get_or_fetch(key("app"), fetch).boxed();
        let mut second = store.get_or_fetch(key("app"), source.ok("unused")).boxed();
        assert!(poll_once(&mut first).is_none());
        assert!(poll_once(&mut second).is_none());
        release.send(()).unwrap();
        assert!(is_internal(&first.await));
        assert!(is_internal(&second.await));
        assert_eq!(in_flight(&store), 0);
        assert_eq!(failures.get(), 1, "counted once for both waiters");

        let again = store.get_or_fetch(key("app"), source.ok("fresh")).await;
        assert_eq!(token(&again.unwrap()), "Bearer fresh");
        assert_eq!(source.count(), 2);
        assert_eq!(failures.get(), 1, "a success is not a failure");
    }

    /// Bug (b): a fetch whose task is aborted answers its waiters with an
    /// internal error and leaves nothing behind.
    #[tokio::test]
    async fn an_aborted_fetch_answers_internal_and_leaves_no_flight() {
        let store = Memory::new(100);
        let source = Source::default();
        let (started_tx, started) = oneshot::channel();
        let fetch = source.fetch(async move {
            started_tx.send(()).unwrap();
            std::future::pending().await
        });
        let mut waiting = store.get_or_fetch(key("app"), fetch).boxed();
        assert!(poll_once(&mut waiting).is_none());
        started.await.unwrap(); // the fetch's task runs
        store.last_fetch_task().abort();
        assert!(is_internal(&waiting.await));
        assert_eq!(in_flight(&store), 0);

        let again = store.get_or_fetch(key("app"), source.ok("fresh")).await;
        assert_eq!(token(&again.unwrap()), "Bearer fresh");
        assert_eq!(source.count(), 2);
    }

    /// Bug (b): a fetch aborted before its task first ran still leaves.
    #[tokio::test]
    async fn a_fetch_aborted_before_it_ran_leaves_no_flight() {
        let store = Memory::new(100);
        let source = Source::default();
        let mut waiting = store.get_or_fetch(key("app"), source.ok("unused")).boxed();
        assert!(poll_once(&mut waiting).is_none());
        store.last_fetch_task().abort(); // this runtime has not run it yet
        assert!(is_internal(&waiting.await));
        assert_eq!(in_flight(&store), 0);
        assert_eq!(source.count(), 0);

        let again = store.get_or_fetch(key("app"), source.ok("fresh")).await;
        assert_eq!(token(&again.unwrap()), "Bearer fresh");
        assert_eq!(source.count(), 1);
    }

    /// Bug (b): a fetch cut off by its runtime shutting down answers the
    /// callers waiting elsewhere with an internal error.
    #[tokio::test]
    async fn a_fetch_cut_off_by_runtime_shutdown_leaves_no_flight() {
        let store = Memory::new(100);
        let source = Source::default();
        let other = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .build()
            .unwrap();
        let (started_tx, started) = oneshot::channel();
        let fetch = source.fetch(async move {
            started_tx.send(()).unwrap();
            std::future::pending().await
        });
        other.spawn({
            let store = store.clone();
            async move { store.get_or_fetch(key("app"), fetch).await }
        });
        started.await.unwrap();
        let mut waiting = store.get_or_fetch(key("app"), source.ok("unused")).boxed();
        assert!(poll_once(&mut waiting).is_none());
        other.shutdown_background();
        assert!(is_internal(&waiting.await));
        assert_eq!(in_flight(&store), 0);

        let again = store.get_or_fetch(key("app"), source.ok("fresh")).await;
        assert_eq!(token(&again.unwrap()), "Bearer fresh");
        assert_eq!(source.count(), 2);
    }

    /// 100 callers that all missed before any of them took the lock share
    /// one fetch, whether they join it in flight or find its token stored.
    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn hundred_racing_callers_share_one_fetch() {
        const CALLERS: usize = 100;
        let store = Memory::new(100);
        let source = Source::default();
        let barrier = Arc::new(Barrier::new(CALLERS));
        store.pause_after_miss(move || {
            let barrier = Arc::clone(&barrier);
            async move {
                barrier.wait().await;
            }
            .boxed()
        });
        let callers: Vec<_> = (0..CALLERS)
            .map(|_| {
                let (store, source) = (store.clone(), source.clone());
                tokio::spawn(async move { store.get_or_fetch(key("app"), source.ok("t")).await })
            })
            .collect();
        let entries: Vec<_> = join_all(callers)
            .await
            .into_iter()
            .map(|joined| joined.unwrap().unwrap())
            .collect();
        assert_eq!(source.count(), 1);
        assert!(entries.iter().all(|e| Arc::ptr_eq(e, &entries[0])));
        assert_eq!(in_flight(&store), 0);
    }

    #[tokio::test]
    async fn callers_that_hang_up_do_not_cancel_the_fetch() {
        let store = Memory::new(100);
        let source = Source::default();
        let (release, release_rx) = oneshot::channel();
        let (started_tx, started) = oneshot::channel();
        let fetch = source.fetch(async move {
            started_tx.send(()).unwrap();
            release_rx.await.unwrap();
            Ok(entry("t"))
        });
        let first = tokio::spawn({
            let store = store.clone();
            async move { store.get_or_fetch(key("app"), fetch).await }
        });
        started.await.unwrap();
        let mut second = store.get_or_fetch(key("app"), source.ok("unused")).boxed();
        assert!(poll_once(&mut second).is_none());
        // The first caller, whose fetch runs, hangs up; so does the second.
        first.abort();
        assert!(first.await.unwrap_err().is_cancelled());
        drop(second);

        let mut third = store.get_or_fetch(key("app"), source.ok("unused")).boxed();
        assert!(poll_once(&mut third).is_none(), "joins the fetch in flight");
        release.send(()).unwrap();
        assert_eq!(token(&third.await.unwrap()), "Bearer t");
        assert_eq!(source.count(), 1);
        let cached = store.get(&key("app")).await.unwrap();
        assert_eq!(token(&cached), "Bearer t");
    }

    #[tokio::test]
    async fn an_error_is_shared_by_all_waiters_and_not_cached() {
        let store = Memory::new(100);
        let source = Source::default();
        let (release, release_rx) = oneshot::channel::<()>();
        let failing = source.fetch(async move {
            release_rx.await.unwrap();
            Err(Arc::new(FetchError::Unavailable {
                status: 503,
                retry_after: None,
            }))
        });
        let mut callers = vec![store.get_or_fetch(key("app"), failing).boxed()];
        callers
            .extend((1..10).map(|_| store.get_or_fetch(key("app"), source.ok("unused")).boxed()));
        for call in &mut callers {
            assert!(poll_once(call).is_none());
        }
        release.send(()).unwrap();
        let errors: Vec<_> = join_all(callers)
            .await
            .into_iter()
            .map(|fetched| fetched.unwrap_err())
            .collect();
        assert_eq!(
            *errors[0],
            FetchError::Unavailable {
                status: 503,
                retry_after: None,
            }
        );
        assert!(errors.iter().all(|e| Arc::ptr_eq(e, &errors[0])));
        assert_eq!(source.count(), 1);
        assert!(
            store.get(&key("app")).await.is_none(),
            "errors are not cached"
        );
        assert_eq!(in_flight(&store), 0);

        let again = store.get_or_fetch(key("app"), source.ok("later")).await;
        assert_eq!(token(&again.unwrap()), "Bearer later");
        assert_eq!(source.count(), 2);
    }

    #[tokio::test]
    async fn keys_do_not_share_fetches() {
        let store = Memory::new(100);
        let source = Source::default();
        let a = store.get_or_fetch(key("a"), source.ok("a")).await.unwrap();
        let b = store.get_or_fetch(key("b"), source.ok("b")).await.unwrap();
        assert_eq!(token(&a), "Bearer a");
        assert_eq!(token(&b), "Bearer b");
        assert_eq!(source.count(), 2);
    }

    #[tokio::test]
    async fn remove_if_same_removes_only_the_same_entry() {
        let store = Memory::new(100);
        let stored = entry("t");
        store.insert(key("app"), Arc::clone(&stored)).await;
        let twin = entry("t"); // equal token, another entry
        store.remove_if_same(key("app"), &twin).await;
        let kept = store
            .get(&key("app"))
            .await
            .expect("a twin removes nothing");
        assert!(Arc::ptr_eq(&kept, &stored));
        store.remove_if_same(key("other"), &stored).await;
        assert!(
            store.get(&key("app")).await.is_some(),
            "another key's removal"
        );
        store.remove_if_same(key("app"), &stored).await;
        assert!(store.get(&key("app")).await.is_none());
    }
}
