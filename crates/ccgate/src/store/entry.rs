//! A cached token: the `Authorization` value to forward, when to stop
//! using it, when to refresh it, and its decision.

use std::sync::Arc;
#[cfg(feature = "redis")]
use std::sync::OnceLock;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use arc_swap::ArcSwap;
use http::HeaderValue;
use serde_json::Value;

use crate::decision::{Decision, Rules, jwt_payload};

/// Lifetime assumed when the server gives neither `expires_in` nor a JWT `exp`.
pub(crate) const DEFAULT_LIFETIME: Duration = Duration::from_secs(60);
/// Upper bound of the safety margin before expiry.
pub(crate) const MAX_MARGIN: Duration = Duration::from_secs(30);
/// Upper bound of how long before its end a token is refreshed.
pub(crate) const MAX_REFRESH_AHEAD: Duration = Duration::from_secs(300);

/// One cached access token.
pub(crate) struct Entry {
    authorization: HeaderValue,
    /// When this process obtained the token: its answer arrived from the
    /// token endpoint ([`Entry::new`]) or it was read from a shared store
    /// ([`Entry::restore`]). See [`Entry::obtained_at`].
    obtained_at: Instant,
    expires_at: Instant,
    refresh_at: Instant,
    refreshing: AtomicBool,
    /// Set when the cache stops holding this entry (replaced by a refresh,
    /// dropped after an upstream 401): a connection's
    /// [`Recall`](crate::middleware::Recall) then looks it up again.
    retired: AtomicBool,
    /// The introspection response of an opaque token (`introspection`):
    /// its claims set. `None`: the claims are the JWT payload, if any.
    introspected: Option<Arc<Value>>,
    decision: ArcSwap<Decided>,
    /// Digest of the value this token was written as (or read from) in a
    /// shared store, to delete it there only if it is still the same.
    #[cfg(feature = "redis")]
    #[cfg(feature = "redis")]
    stored_as: OnceLock<StoreTag>,
}

#[cfg(feature = "redis")]
/// The digest identifying one stored value (SHA-1, lowercase hex, as
/// Redis's `redis.sha1hex` prints it): values are sealed with a fresh
/// nonce per write, so a value, not a token, is what a shared store can
/// compare.
#[cfg(feature = "redis")]
pub(crate) type StoreTag = [u8; 40];

/// An entry's times as wall-clock milliseconds since the Unix epoch, the
/// form a shared store keeps them in (`Instant`s mean nothing to another
/// process).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg(feature = "redis")]
pub(crate) struct WallTimes {
    /// When the token stops being used ([`Entry::expires_at`]).
    pub(crate) expires_at_ms: u64,
    /// When a background refresh may start.
    pub(crate) refresh_at_ms: u64,
}

/// A decision and the rules it was made under.
struct Decided {
    rules: Arc<Rules>,
    decision: Arc<Decision>,
}

/// The server answered with a token that cannot be used.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Unusable {
    /// The token holds bytes not allowed in a header value.
    NotAHeaderValue,
    /// Its JWT `exp` (or introspected `exp`) has already passed and no
    /// `expires_in` says otherwise.
    Expired,
}

impl Entry {
    /// An entry for `access_token`, requested at `requested_at`, with the
    /// server's `expires_in` if it gave one.
    ///
    /// The lifetime `L` is `expires_in`, else the JWT `exp` minus now, else
    /// [`DEFAULT_LIFETIME`]. The token is used until `L` minus a margin of
    /// `min(30 s, L/10)` after the request was sent, and refreshed in the
    /// background from `min(5 min, a fifth of that)` before then.
    ///
    /// # Errors
    ///
    /// [`Unusable`] when the token cannot be forwarded.
    #[cfg(test)]
    pub(crate) fn new(
        access_token: &str,
        expires_in: Option<Duration>,
        requested_at: Instant,
        rules: &Arc<Rules>,
    ) -> Result<Self, Unusable> {
        Self::with_claims(access_token, expires_in, requested_at, rules, None)
    }

    /// As [`Entry::new`], for a token whose claims set is the
    /// introspection response `introspected` (when set): its `exp`, when
    /// earlier, bounds the lifetime, and decisions are made on it.
    ///
    /// # Errors
    ///
    /// [`Unusable`] when the token cannot be forwarded (its introspected
    /// `exp` has passed, among others).
    pub(crate) fn with_claims(
        access_token: &str,
        expires_in: Option<Duration>,
        requested_at: Instant,
        rules: &Arc<Rules>,
        introspected: Option<Arc<Value>>,
    ) -> Result<Self, Unusable> {
        let authorization = bearer(access_token)?;
        let mut lifetime = match expires_in {
            Some(lifetime) => lifetime,
            None => jwt_lifetime(access_token)?.unwrap_or(DEFAULT_LIFETIME),
        };
        if let Some(remaining) = exp_lifetime(introspected.as_deref())? {
            lifetime = lifetime.min(remaining);
        }
        let usable = lifetime - MAX_MARGIN.min(lifetime / 10);
        let expires_at = requested_at + usable;
        let refresh_at = expires_at - MAX_REFRESH_AHEAD.min(usable / 5);
        Ok(Self::assemble(
            authorization,
            expires_at,
            refresh_at,
            access_token,
            rules,
            introspected,
        ))
    }

    /// Rebuilds an entry read from a shared store: `access_token` with
    /// the wall-clock `times` another replica (or this one) stored, its
    /// decision made now under `rules`.
    ///
    /// The wall-clock times become `Instant`s by their distance from the
    /// current wall-clock time, so replicas whose clocks disagree by `d`
    /// disagree by `d` on when the token ends; the safety margin
    /// ([`MAX_MARGIN`], 10 % of the lifetime) absorbs small skews. A JWT's
    /// own `exp` is a bound too: a stored time past it is not believed.
    ///
    /// # Errors
    ///
    /// [`Unusable::Expired`] when the token's usable time has passed,
    /// [`Unusable::NotAHeaderValue`] when it cannot be forwarded.
    #[cfg(feature = "redis")]
    pub(crate) fn restore(
        access_token: &str,
        times: WallTimes,
        rules: &Arc<Rules>,
        introspected: Option<Arc<Value>>,
    ) -> Result<Self, Unusable> {
        let authorization = bearer(access_token)?;
        let now = Instant::now();
        let now_ms = wall_clock_ms();
        let mut remaining = Duration::from_millis(times.expires_at_ms.saturating_sub(now_ms));
        if let Some(jwt) = jwt_lifetime(access_token)? {
            remaining = remaining.min(jwt);
        }
        if let Some(exp) = exp_lifetime(introspected.as_deref())? {
            remaining = remaining.min(exp);
        }
        if remaining.is_zero() {
            return Err(Unusable::Expired);
        }
        let expires_at = now.checked_add(remaining).ok_or(Unusable::Expired)?;
        let refresh_in = Duration::from_millis(times.refresh_at_ms.saturating_sub(now_ms));
        let refresh_at = now
            .checked_add(refresh_in)
            .unwrap_or(expires_at)
            .min(expires_at);
        Ok(Self::assemble(
            authorization,
            expires_at,
            refresh_at,
            access_token,
            rules,
            introspected,
        ))
    }

    fn assemble(
        authorization: HeaderValue,
        expires_at: Instant,
        refresh_at: Instant,
        access_token: &str,
        rules: &Arc<Rules>,
        introspected: Option<Arc<Value>>,
    ) -> Self {
        let decided = Decided {
            rules: Arc::clone(rules),
            decision: Arc::new(decide(rules, access_token, introspected.as_deref())),
        };
        Self {
            authorization,
            obtained_at: Instant::now(),
            expires_at,
            refresh_at,
            refreshing: AtomicBool::new(false),
            retired: AtomicBool::new(false),
            introspected,
            decision: ArcSwap::from_pointee(decided),
            #[cfg(feature = "redis")]
            stored_as: OnceLock::new(),
        }
    }

    /// The entry's times as wall-clock milliseconds, for a shared store.
    #[must_use]
    #[cfg(feature = "redis")]
    pub(crate) fn wall_times(&self) -> WallTimes {
        let now = Instant::now();
        let now_ms = wall_clock_ms();
        let at = |instant: Instant| {
            let ahead = instant.saturating_duration_since(now).as_millis();
            now_ms.saturating_add(u64::try_from(ahead).unwrap_or(u64::MAX))
        };
        WallTimes {
            expires_at_ms: at(self.expires_at),
            refresh_at_ms: at(self.refresh_at),
        }
    }

    /// Records the digest of the value this entry is stored as.
    #[cfg(feature = "redis")]
    pub(crate) fn set_stored_as(&self, tag: StoreTag) {
        let _ = self.stored_as.set(tag);
    }

    /// The digest of the value this entry is stored as, if it was stored.
    #[cfg(feature = "redis")]
    pub(crate) fn stored_as(&self) -> Option<&StoreTag> {
        self.stored_as.get()
    }

    /// `Bearer <access token>`, marked sensitive.
    #[must_use]
    pub(crate) fn authorization(&self) -> &HeaderValue {
        &self.authorization
    }

    /// The access token.
    #[must_use]
    pub(crate) fn access_token(&self) -> &str {
        // Built from a `&str` in `new`, after the 7 bytes of "Bearer ".
        std::str::from_utf8(&self.authorization.as_bytes()[7..]).unwrap_or_default()
    }

    /// The introspection response the token's claims come from, if any
    /// (kept with the token in the Redis record).
    #[cfg(feature = "redis")]
    #[must_use]
    pub(crate) fn introspected(&self) -> Option<&Arc<Value>> {
        self.introspected.as_ref()
    }

    /// When this process obtained the token: when the token endpoint's
    /// answer was made into this entry, or, for an entry read from a
    /// shared store, when it was read (another replica may have fetched
    /// it earlier, so the entry may be older than this says, never
    /// younger). An upstream 401 drops a token only once it is old enough
    /// by this clock (`middleware::UPSTREAM_401_MIN_AGE` by default), so a restored entry is
    /// kept at least as long as a fetched one.
    #[must_use]
    pub(crate) fn obtained_at(&self) -> Instant {
        self.obtained_at
    }

    /// When the token stops being used.
    #[must_use]
    pub(crate) fn expires_at(&self) -> Instant {
        self.expires_at
    }

    /// Whether the token may still be forwarded at `now`.
    #[must_use]
    pub(crate) fn is_fresh(&self, now: Instant) -> bool {
        now < self.expires_at
    }

    /// Whether a refresh should start at `now`: true once per entry, for the
    /// first caller past the refresh time, until [`Entry::refresh_failed`].
    pub(crate) fn claim_refresh(&self, now: Instant) -> bool {
        now >= self.refresh_at && !self.refreshing.swap(true, Ordering::AcqRel)
    }

    /// Whether a request may use this entry without asking the cache: it
    /// is neither due for a refresh (the look-up starts that) nor
    /// retired from the cache.
    #[must_use]
    pub(crate) fn recallable(&self, now: Instant) -> bool {
        now < self.refresh_at && now < self.expires_at && !self.retired.load(Ordering::Acquire)
    }

    /// Marks the entry as no longer the cache's ([`Entry::recallable`]).
    pub(crate) fn retire(&self) {
        self.retired.store(true, Ordering::Release);
    }

    /// Lets a later caller try the refresh again.
    pub(crate) fn refresh_failed(&self) {
        self.refreshing.store(false, Ordering::Release);
    }

    /// The decision under `rules`: the cached one when made under the same
    /// rules, else made now and kept (after a reload changed the rules).
    #[must_use]
    pub(crate) fn decision(&self, rules: &Arc<Rules>) -> Arc<Decision> {
        let current = self.decision.load();
        if Arc::ptr_eq(&current.rules, rules) {
            return Arc::clone(&current.decision);
        }
        let decision = Arc::new(decide(
            rules,
            self.access_token(),
            self.introspected.as_deref(),
        ));
        self.decision.store(Arc::new(Decided {
            rules: Arc::clone(rules),
            decision: Arc::clone(&decision),
        }));
        decision
    }
}

impl std::fmt::Debug for Entry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Entry")
            .field("token", &"[REDACTED]")
            .field("obtained_at", &self.obtained_at)
            .field("expires_at", &self.expires_at)
            .field("refresh_at", &self.refresh_at)
            .finish_non_exhaustive()
    }
}

/// Milliseconds since the Unix epoch, now.
#[cfg(feature = "redis")]
fn wall_clock_ms() -> u64 {
    let since = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    u64::try_from(since.as_millis()).unwrap_or(u64::MAX)
}

/// `Bearer <access_token>`, marked sensitive so that HTTP/2 never indexes it.
fn bearer(access_token: &str) -> Result<HeaderValue, Unusable> {
    let mut authorization = HeaderValue::try_from(format!("Bearer {access_token}"))
        .map_err(|_| Unusable::NotAHeaderValue)?;
    authorization.set_sensitive(true);
    Ok(authorization)
}

/// The decision on a token: on its introspection response when it has
/// one, else on its JWT payload.
fn decide(rules: &Rules, access_token: &str, introspected: Option<&Value>) -> Decision {
    match introspected {
        Some(claims) => rules.decide_claims(Some(claims)),
        None => rules.decide(access_token),
    }
}

/// The remaining lifetime by the `exp` of an introspection response.
fn exp_lifetime(introspected: Option<&Value>) -> Result<Option<Duration>, Unusable> {
    let Some(exp) = introspected.and_then(|claims| claims.get("exp")?.as_f64()) else {
        return Ok(None);
    };
    remaining_until(exp).map(Some)
}

fn remaining_until(exp: f64) -> Result<Duration, Unusable> {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs_f64();
    let remaining = exp - now;
    if remaining <= 0.0 || !remaining.is_finite() {
        return Err(Unusable::Expired);
    }
    Ok(Duration::from_secs_f64(remaining.min(1e9)))
}

/// The remaining lifetime from a JWT's `exp`, if it is a JWT with one.
fn jwt_lifetime(token: &str) -> Result<Option<Duration>, Unusable> {
    let Some(exp) = jwt_payload(token).and_then(|claims| claims.get("exp")?.as_f64()) else {
        return Ok(None);
    };
    remaining_until(exp).map(Some)
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::Engine as _;

    fn rules() -> Arc<Rules> {
        Arc::new(Rules::default())
    }

    fn jwt_expiring_in(seconds: i64) -> String {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_secs() as i64;
        let payload = format!(r#"{{"exp":{}}}"#, now + seconds);
        let encode = |s: &str| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(s);
        format!("{}.{}.sig", encode("{}"), encode(&payload))
    }

    #[test]
    fn margins_follow_the_lifetime() {
        let t0 = Instant::now();
        let cases = [
            (300, 270.0, 216.0), // margin 30 s (the cap), refresh a fifth earlier
            (100, 90.0, 72.0),   // margin 10 %
            (4, 3.6, 2.88),
            (7200, 7170.0, 6870.0), // refresh ahead capped at 5 min
        ];
        for (lifetime, usable, refresh) in cases {
            let entry = Entry::new("t", Some(Duration::from_secs(lifetime)), t0, &rules()).unwrap();
            let usable_s = (entry.expires_at - t0).as_secs_f64();
            let refresh_s = (entry.refresh_at - t0).as_secs_f64();
            assert!((usable_s - usable).abs() < 1e-6, "{lifetime}: {usable_s}");
            assert!(
                (refresh_s - refresh).abs() < 1e-6,
                "{lifetime}: {refresh_s}"
            );
        }
    }

    #[test]
    fn lifetime_falls_back_to_jwt_exp_then_sixty_seconds() {
        let t0 = Instant::now();
        let entry = Entry::new(&jwt_expiring_in(1000), None, t0, &rules()).unwrap();
        let usable = (entry.expires_at - t0).as_secs_f64();
        assert!((968.0..=971.0).contains(&usable), "{usable}");
        let entry = Entry::new("opaque", None, t0, &rules()).unwrap();
        assert_eq!(entry.expires_at - t0, Duration::from_secs(54));
        let entry = Entry::new(
            &jwt_expiring_in(1000),
            Some(Duration::from_secs(10)),
            t0,
            &rules(),
        )
        .unwrap();
        assert_eq!(
            entry.expires_at - t0,
            Duration::from_secs(9),
            "expires_in wins"
        );
    }

    #[test]
    fn unusable_tokens_are_refused() {
        let t0 = Instant::now();
        assert_eq!(
            Entry::new(&jwt_expiring_in(-5), None, t0, &rules()).unwrap_err(),
            Unusable::Expired
        );
        assert_eq!(
            Entry::new("a\r\nb", None, t0, &rules()).unwrap_err(),
            Unusable::NotAHeaderValue
        );
    }

    #[test]
    fn a_refresh_is_claimed_once_until_it_fails() {
        let t0 = Instant::now();
        let entry = Entry::new("t", Some(Duration::from_secs(100)), t0, &rules()).unwrap();
        assert!(!entry.claim_refresh(t0));
        let later = t0 + Duration::from_secs(80);
        assert!(entry.claim_refresh(later));
        assert!(!entry.claim_refresh(later));
        entry.refresh_failed();
        assert!(entry.claim_refresh(later));
    }

    #[test]
    fn the_decision_is_remade_only_for_new_rules() {
        let first = rules();
        let entry = Entry::new("t", None, Instant::now(), &first).unwrap();
        let a = entry.decision(&first);
        assert!(Arc::ptr_eq(&a, &entry.decision(&first)), "cached");
        let strict = Arc::new(Rules::new(
            Some("Equals(`a`, `b`)".parse().unwrap()),
            vec![],
            None,
        ));
        assert!(
            !entry.decision(&strict).allowed,
            "an opaque token fails a claims rule"
        );
        assert!(entry.decision(&first).allowed);
    }

    #[test]
    #[cfg(feature = "redis")]
    fn an_entry_survives_the_trip_through_wall_clock_times() {
        let t0 = Instant::now();
        let entry = Entry::new("t", Some(Duration::from_secs(100)), t0, &rules()).unwrap();
        let times = entry.wall_times();
        assert_eq!(
            times.expires_at_ms - times.refresh_at_ms,
            18_000,
            "refresh 18 s before the end"
        );
        let restored = Entry::restore("t", times, &rules(), None).unwrap();
        let drift = |a: Instant, b: Instant| a.max(b) - a.min(b);
        assert!(drift(restored.expires_at, entry.expires_at) < Duration::from_millis(5));
        assert!(drift(restored.refresh_at, entry.refresh_at) < Duration::from_millis(5));
        assert_eq!(restored.access_token(), "t");
        assert!(
            restored.obtained_at() >= entry.obtained_at(),
            "a restored entry counts as obtained when it was read"
        );
        assert!(restored.decision(&rules()).allowed);
        assert!(restored.stored_as().is_none());
    }

    #[test]
    #[cfg(feature = "redis")]
    fn a_restored_entry_is_bounded_by_its_jwt_and_the_clock() {
        let now_ms = wall_clock_ms();
        let past = WallTimes {
            expires_at_ms: now_ms - 1,
            refresh_at_ms: now_ms - 10,
        };
        assert_eq!(
            Entry::restore("t", past, &rules(), None).unwrap_err(),
            Unusable::Expired
        );
        let far = WallTimes {
            expires_at_ms: now_ms + 3_600_000,
            refresh_at_ms: now_ms + 3_000_000,
        };
        let entry = Entry::restore(&jwt_expiring_in(10), far, &rules(), None).unwrap();
        let left = entry.expires_at - Instant::now();
        assert!(
            left <= Duration::from_secs(10),
            "the JWT exp wins: {left:?}"
        );
        assert!(entry.refresh_at <= entry.expires_at);
        assert_eq!(
            Entry::restore(&jwt_expiring_in(-1), far, &rules(), None).unwrap_err(),
            Unusable::Expired
        );
        assert_eq!(
            Entry::restore("a\nb", far, &rules(), None).unwrap_err(),
            Unusable::NotAHeaderValue
        );
    }

    #[test]
    fn an_introspected_exp_bounds_the_lifetime_and_gives_the_claims() {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_secs();
        let t0 = Instant::now();
        let claims = Arc::new(serde_json::json!({"active": true, "grp": "a", "exp": now + 20}));
        let rules = Arc::new(Rules::new(
            Some("Equals(`grp`, `a`)".parse().unwrap()),
            vec![],
            None,
        ));
        let entry = Entry::with_claims(
            "opaque",
            Some(Duration::from_secs(300)),
            t0,
            &rules,
            Some(Arc::clone(&claims)),
        )
        .unwrap();
        assert!(entry.expires_at - t0 <= Duration::from_secs(20), "exp wins");
        assert!(
            entry.decision(&rules).allowed,
            "claims from the introspection"
        );
        let later = Arc::new(serde_json::json!({"active": true, "exp": now + 1000}));
        let entry = Entry::with_claims(
            "opaque",
            Some(Duration::from_secs(100)),
            t0,
            &rules,
            Some(later),
        )
        .unwrap();
        assert_eq!(
            entry.expires_at - t0,
            Duration::from_secs(90),
            "expires_in wins"
        );
        assert!(!entry.decision(&rules).allowed, "no grp claim");
        let past = Arc::new(serde_json::json!({"active": true, "exp": now - 1}));
        assert_eq!(
            Entry::with_claims("opaque", None, t0, &rules, Some(past)).unwrap_err(),
            Unusable::Expired
        );
    }

    #[test]
    fn debug_hides_the_token() {
        let entry = Entry::new("secret-token", None, Instant::now(), &rules()).unwrap();
        assert!(!format!("{entry:?}").contains("secret-token"));
        assert_eq!(entry.access_token(), "secret-token");
    }
}
