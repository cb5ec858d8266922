//! The token source: credentials in, a cached and fresh token out.
//!
//! On each request, [`TokenSource::token`]:
//! 1. derives the cache key ([`crate::store::key`]);
//! 2. on a fresh hit, returns the entry, and if it is nearing expiry starts
//!    one background refresh while the current token keeps being served;
//! 3. if these credentials were rejected in the last
//!    [`NEGATIVE_TTL`], returns that rejection again without asking;
//! 4. otherwise fetches a token — once for all concurrent callers of the
//!    key ([`Memory::get_or_fetch`]) — and caches it.
//!
//! When an upstream answers 401 to a request that carried a cached token,
//! [`TokenSource::forget`] drops that entry if it still holds that token
//! and was obtained long enough before (the middleware's
//! [`UPSTREAM_401_MIN_AGE`](crate::middleware::UPSTREAM_401_MIN_AGE) by
//! default), so a revoked token is replaced on the next request.
//!
//! # Protecting the authorization server (SPEC §2.8)
//!
//! Every token request the fetch of step 4 is about to send passes, in
//! this order:
//! - the cool-down ([`breaker`]): after [`breaker::FAILURES_TO_OPEN`]
//!   failures in a row, requests are refused at once with
//!   [`FetchError::CoolingDown`] (503) until one probe gets an answer;
//! - at application level, the budget of its client id ([`throttle`]):
//!   [`throttle::BURST`] at once, [`throttle::RATE_PER_SECOND`] per
//!   second, else [`FetchError::Throttled`] (429). A background refresh
//!   skips it: its credentials are those of a cached token;
//! - the endpoint's bound on requests in flight
//!   ([`MAX_IN_FLIGHT`](crate::token::MAX_IN_FLIGHT), in [`Endpoint`]).
//!
//! A refusal is not a token request: it is counted in
//! `ccgate_token_requests_refused_total`, never negative-cached, and
//! shared by the callers waiting for the same fetch. Only a rejection of
//! application-level credentials with 400 or 401 is negative-cached.
//!
//! # Introspection and verification (SPEC §2.7)
//!
//! A fetched token is examined before it is cached ([`Checks`]): with
//! `introspection`, a token that is not a JWT is introspected once (its
//! response becomes the entry's claims; `active: false` is
//! [`FetchError::Inactive`], 403); with `verify`, a JWT's signature, `iss`
//! and `aud` are checked ([`FetchError::Unverified`], 502). Such a token
//! is never cached or forwarded. The introspection request is part of
//! the token request as far as SPEC §2.8 goes: it happens inside the
//! same breaker ticket (an introspection endpoint that fails — no
//! answer, a timeout, 429 or 5xx — counts towards the cool-down, so a
//! dead introspection endpoint does not turn every request into a token
//! request), after the throttle, and with its own bound on requests in
//! flight (its [`Endpoint`]) and the retries of `clientConfig`. An
//! inactive or unverified token is remembered like a rejection for
//! [`NEGATIVE_TTL`] (at both levels: the next token would most likely
//! fail the same way), so it costs at most one token request per key per
//! [`NEGATIVE_TTL`].
//!
//! # With Redis
//!
//! The memory store stays in front. Its fetch (still one per key per
//! process) becomes a read-through of the shared tier
//! (`store::redis::Redis::read_through`), which coordinates replicas so
//! that a cold key costs about one token request in all. A background
//! refresh takes the same path, accepting from Redis only a token newer
//! than the one it replaces. [`TokenSource::forget`] deletes the Redis
//! entry too, if it still holds the same stored value.

mod breaker;
mod throttle;

use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::FutureExt as _;
use moka::future::Cache;
use secrecy::ExposeSecret;

use crate::credentials::Credentials;
use crate::decision::Rules;
use crate::metrics::Handles;
use crate::store::entry::{Entry, Unusable};
use crate::store::key::{CacheKey, KeyDeriver};
use crate::store::memory::{Fetched, Memory};
#[cfg(feature = "redis")]
use crate::store::redis::Redis;
use crate::token::introspection::Introspection;
use crate::token::{CredentialsLevel, Endpoint, FetchError, Outcome, TokenResponse};
use crate::verify::Verifier;
use breaker::Breaker;
use throttle::Throttle;

/// How long rejected credentials are remembered: a wrong secret cannot
/// turn every request into a token request, and a fixed one works again
/// within seconds. The key includes the secret, so the right secret is
/// never blocked by a wrong one. Only application-level credentials
/// rejected with 400 or 401 are remembered (SPEC §2.8): a gateway-level
/// rejection is a configuration problem every request must show (502),
/// and other 4xx answers (403, 404, …) may be a policy or routing fault
/// of the server that changes without the credentials changing.
pub(crate) const NEGATIVE_TTL: Duration = Duration::from_secs(5);

/// Bound on remembered rejections.
const MAX_REJECTIONS: u64 = 10_000;

/// After a failed background refresh, how long until a request may start
/// another (the current token is still served meanwhile).
const REFRESH_RETRY: Duration = Duration::from_secs(1);

/// What a fetched token must pass before it is cached (module docs).
#[derive(Debug, Default)]
pub(crate) struct Checks {
    /// The introspection endpoint, and the credentials it takes (`None`:
    /// those of the token request).
    pub(crate) introspection: Option<(Endpoint, Option<Credentials>)>,
    /// The `verify` checks.
    pub(crate) verifier: Option<Verifier>,
}

/// Tokens for one middleware: its endpoint, key deriver and stores.
#[derive(Clone)]
pub(crate) struct TokenSource {
    inner: Arc<Inner>,
}

struct Inner {
    endpoint: Endpoint,
    keys: KeyDeriver,
    memory: Memory,
    #[cfg(feature = "redis")]
    redis: Option<Redis>,
    rejected: Cache<CacheKey, Arc<FetchError>>,
    level: CredentialsLevel,
    /// Per-client-id budgets; application level only.
    throttle: Option<Throttle>,
    breaker: Breaker,
    checks: Checks,
    metrics: Handles,
}

impl TokenSource {
    /// The source of a middleware whose credentials are of `level`: at
    /// application level, token requests are throttled per client id and
    /// rejections negative-cached.
    pub(crate) fn new(
        endpoint: Endpoint,
        keys: KeyDeriver,
        memory: Memory,
        #[cfg(feature = "redis")] redis: Option<Redis>,
        level: CredentialsLevel,
        checks: Checks,
        metrics: Handles,
    ) -> Self {
        let rejected = Cache::builder()
            .max_capacity(MAX_REJECTIONS)
            .time_to_live(NEGATIVE_TTL)
            .build();
        Self {
            inner: Arc::new(Inner {
                endpoint,
                keys,
                memory,
                #[cfg(feature = "redis")]
                redis,
                rejected,
                level,
                throttle: (level == CredentialsLevel::Application).then(Throttle::new),
                breaker: Breaker::default(),
                checks,
                metrics,
            }),
        }
    }

    /// A fresh token for `credentials`, with its cache key; its decision
    /// is made under `rules` when it is fetched.
    ///
    /// # Errors
    ///
    /// The token endpoint's error, possibly remembered from a recent
    /// rejection of the same credentials; or a refusal to send a token
    /// request ([`FetchError::Throttled`], [`FetchError::CoolingDown`]).
    pub(crate) async fn token(
        &self,
        credentials: &Credentials,
        rules: &Arc<Rules>,
    ) -> Result<(CacheKey, Arc<Entry>), Arc<FetchError>> {
        let inner = &self.inner;
        let key = inner.keys.derive(credentials);
        if let Some(entry) = inner.memory.get(&key).await {
            inner.metrics.memory_hit.inc();
            if entry.claim_refresh(Instant::now()) {
                self.refresh(
                    key,
                    credentials.clone(),
                    Arc::clone(&entry),
                    Arc::clone(rules),
                );
            }
            return Ok((key, entry));
        }
        if let Some(rejection) = inner.rejected.get(&key).await {
            inner.metrics.memory_negative.inc();
            return Err(rejection);
        }
        inner.metrics.memory_miss.inc();
        // Boxed: the load's state machine stays out of every caller's future.
        let fetch = Arc::clone(inner)
            .load(key, credentials.clone(), Arc::clone(rules), None)
            .boxed();
        inner
            .memory
            .get_or_fetch(key, fetch)
            .await
            .map(|entry| (key, entry))
    }

    /// Counts a memory hit that needed no look-up (a recalled grant).
    pub(crate) fn count_memory_hit(&self) {
        self.inner.metrics.memory_hit.inc();
    }

    /// After an upstream 401 to a request that carried `entry`: drops the
    /// entry under `key` if it still holds `entry` (the token that was
    /// sent, not a newer one) and this process obtained it at least
    /// `min_age` before ([`Entry::obtained_at`]); from memory and from
    /// Redis (if Redis still holds the value this replica read or wrote
    /// for it: a newer token stored by another replica stays). A younger
    /// token is kept — the 401 is the upstream's answer, passed on, and
    /// the next request uses the same token — so an upstream that answers
    /// 401 to everything costs at most one token request per key per
    /// `min_age`.
    pub(crate) async fn forget(&self, key: CacheKey, entry: &Arc<Entry>, min_age: Duration) {
        if entry.obtained_at().elapsed() < min_age {
            tracing::debug!(
                min_age_ms = u64::try_from(min_age.as_millis()).unwrap_or(u64::MAX),
                "upstream 401 for a token obtained too recently to drop; keeping it"
            );
            return;
        }
        self.inner.memory.remove_if_same(key, entry).await;
        #[cfg(feature = "redis")]
        if let Some(redis) = &self.inner.redis {
            redis.remove_if_same(&key, entry).await;
        }
    }

    /// Replaces the entry under `key` in the background; on failure the
    /// current token is served on and another refresh may start after
    /// [`REFRESH_RETRY`].
    fn refresh(
        &self,
        key: CacheKey,
        credentials: Credentials,
        current: Arc<Entry>,
        rules: Arc<Rules>,
    ) {
        let inner = Arc::clone(&self.inner);
        tokio::spawn(async move {
            let current_entry = Some(Arc::clone(&current));
            match Arc::clone(&inner)
                .load(key, credentials, rules, current_entry)
                .await
            {
                Ok(fresh) => {
                    let replaced = !Arc::ptr_eq(&fresh, &current);
                    inner.memory.insert(key, fresh).await;
                    if replaced {
                        current.retire();
                    }
                }
                Err(error) => {
                    tracing::warn!(error = %error, "background token refresh failed; serving the current token");
                    tokio::time::sleep(REFRESH_RETRY).await;
                    current.refresh_failed();
                }
            }
        });
    }
}

impl Inner {
    /// A token for `key` after a memory miss, or to replace `current` (a
    /// refresh): read through Redis when there is a Redis store, else
    /// fetched.
    async fn load(
        self: Arc<Self>,
        key: CacheKey,
        credentials: Credentials,
        rules: Arc<Rules>,
        current: Option<Arc<Entry>>,
    ) -> Fetched {
        let refresh = current.is_some();
        #[cfg(feature = "redis")]
        if let Some(redis) = &self.redis {
            let fetch = || Arc::clone(&self).fetch(key, credentials, Arc::clone(&rules), refresh);
            let verifier = self.checks.verifier.as_ref();
            return redis
                .read_through(&key, &rules, verifier, current.as_deref(), fetch)
                .await;
        }
        Arc::clone(&self)
            .fetch(key, credentials, rules, refresh)
            .await
    }

    /// One token request, timed and counted, unless the cool-down or the
    /// client id's budget refuses it (module docs); a rejection of
    /// application-level credentials with 400 or 401 is remembered.
    async fn fetch(
        self: Arc<Self>,
        key: CacheKey,
        credentials: Credentials,
        rules: Arc<Rules>,
        refresh: bool,
    ) -> Fetched {
        let ticket = match self.breaker.admit(Instant::now()) {
            Ok(ticket) => ticket,
            Err(retry_after) => return Err(self.refuse(FetchError::CoolingDown { retry_after })),
        };
        if let Some(throttle) = self.throttle.as_ref().filter(|_| !refresh)
            && let Err(retry_after) = throttle.take(credentials.id()).await
        {
            // The ticket goes unused: a probe's turn passes on.
            return Err(self.refuse(FetchError::Throttled { retry_after }));
        }
        let requested_at = Instant::now();
        let response = match self.endpoint.fetch(&credentials).await {
            Ok(token) => self
                .examine(&credentials, &token)
                .await
                .map(|claims| (token, claims)),
            Err(error) => Err(error),
        };
        ticket.finish(response.as_ref().err(), Instant::now());
        self.metrics
            .token_duration
            .observe(requested_at.elapsed().as_secs_f64());
        let entry = response.and_then(|(token, claims)| {
            Entry::with_claims(
                token.access_token.expose_secret(),
                token.expires_in,
                requested_at,
                &rules,
                claims,
            )
            .map_err(unusable)
        });
        match entry {
            Ok(entry) => {
                self.metrics.token_request(Outcome::Success);
                Ok(Arc::new(entry))
            }
            Err(error) => {
                if let Some(outcome) = error.outcome() {
                    self.metrics.token_request(outcome);
                }
                let error = Arc::new(error);
                let remembered =
                    matches!(*error, FetchError::Inactive | FetchError::Unverified { .. })
                        || (self.level == CredentialsLevel::Application
                            && matches!(
                                *error,
                                FetchError::Rejected {
                                    status: 400 | 401,
                                    ..
                                }
                            ));
                if remembered {
                    self.rejected.insert(key, Arc::clone(&error)).await;
                }
                Err(error)
            }
        }
    }

    /// The checks of a fetched token (module docs): its introspection
    /// response when it was introspected.
    async fn examine(
        &self,
        credentials: &Credentials,
        token: &TokenResponse,
    ) -> Result<Option<Arc<serde_json::Value>>, FetchError> {
        let access_token = token.access_token.expose_secret();
        let is_jwt = crate::decision::jwt_payload(access_token).is_some();
        if let Some(verifier) = &self.checks.verifier
            && let Err(error) = verifier.verify(access_token).await
        {
            tracing::warn!(error = %error, "the token endpoint's token failed verification; not forwarded");
            return Err(error);
        }
        let Some((endpoint, own)) = self.checks.introspection.as_ref().filter(|_| !is_jwt) else {
            return Ok(None);
        };
        let credentials = own.as_ref().unwrap_or(credentials);
        let introspection: Introspection = endpoint
            .introspect(credentials, access_token)
            .await
            .map_err(|error| {
                tracing::warn!(error = %error, "introspection of a new access token failed");
                FetchError::Introspection(Box::new(error))
            })?;
        if !introspection.active {
            tracing::info!(
                "the introspection endpoint says a new access token is not active; not forwarded"
            );
            return Err(FetchError::Inactive);
        }
        if introspection.remaining() == Some(Duration::ZERO) {
            return Err(FetchError::Inactive);
        }
        Ok(Some(introspection.claims))
    }

    /// A token request not sent, counted by its reason.
    fn refuse(&self, error: FetchError) -> Arc<FetchError> {
        if let Some(refusal) = error.refusal() {
            self.metrics.token_refused(refusal);
        }
        tracing::debug!(error = %error, "token request refused");
        Arc::new(error)
    }
}

/// The error for a token that came back but cannot be used.
fn unusable(why: Unusable) -> FetchError {
    FetchError::Malformed {
        status: 200,
        reason: match why {
            Unusable::NotAHeaderValue => "the access token holds bytes not allowed in a header",
            Unusable::Expired => "the access token's JWT exp has already passed",
        },
    }
}

impl std::fmt::Debug for TokenSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut debug = f.debug_struct("TokenSource");
        debug.field("memory", &self.inner.memory);
        debug.field("throttle", &self.inner.throttle);
        debug.field("breaker", &self.inner.breaker);
        #[cfg(feature = "redis")]
        debug.field("redis", &self.inner.redis);
        debug.finish_non_exhaustive()
    }
}
