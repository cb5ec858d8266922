//! A cached token: the `Authorization` value to forward, when to stop
//! using it, when to refresh it, and its decision.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use arc_swap::ArcSwap;
use http::HeaderValue;

use crate::decision::{Decision, Rules, jwt_payload};

/// Lifetime assumed when the server gives neither `expires_in` nor a JWT `exp`.
pub const DEFAULT_LIFETIME: Duration = Duration::from_secs(60);
/// Upper bound of the safety margin before expiry.
pub const MAX_MARGIN: Duration = Duration::from_secs(30);
/// Upper bound of how long before its end a token is refreshed.
pub const MAX_REFRESH_AHEAD: Duration = Duration::from_secs(300);

/// One cached access token.
pub struct Entry {
    authorization: HeaderValue,
    expires_at: Instant,
    refresh_at: Instant,
    refreshing: AtomicBool,
    decision: ArcSwap<Decided>,
}

/// A decision and the rules it was made under.
struct Decided {
    rules: Arc<Rules>,
    decision: Arc<Decision>,
}

/// The server answered with a token that cannot be used.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unusable {
    /// The token holds bytes not allowed in a header value.
    NotAHeaderValue,
    /// Its JWT `exp` has already passed and no `expires_in` says otherwise.
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
    pub fn new(
        access_token: &str,
        expires_in: Option<Duration>,
        requested_at: Instant,
        rules: &Arc<Rules>,
    ) -> Result<Self, Unusable> {
        let mut authorization = HeaderValue::try_from(format!("Bearer {access_token}"))
            .map_err(|_| Unusable::NotAHeaderValue)?;
        authorization.set_sensitive(true);
        let lifetime = match expires_in {
            Some(lifetime) => lifetime,
            None => jwt_lifetime(access_token)?.unwrap_or(DEFAULT_LIFETIME),
        };
        let usable = lifetime - MAX_MARGIN.min(lifetime / 10);
        let expires_at = requested_at + usable;
        let refresh_at = expires_at - MAX_REFRESH_AHEAD.min(usable / 5);
        let decided = Decided {
            rules: Arc::clone(rules),
            decision: Arc::new(rules.decide(access_token)),
        };
        Ok(Self {
            authorization,
            expires_at,
            refresh_at,
            refreshing: AtomicBool::new(false),
            decision: ArcSwap::from_pointee(decided),
        })
    }

    /// `Bearer <access token>`, marked sensitive.
    #[must_use]
    pub fn authorization(&self) -> &HeaderValue {
        &self.authorization
    }

    /// The access token.
    #[must_use]
    pub fn access_token(&self) -> &str {
        // Built from a `&str` in `new`, after the 7 bytes of "Bearer ".
        std::str::from_utf8(&self.authorization.as_bytes()[7..]).unwrap_or_default()
    }

    /// When the token stops being used.
    #[must_use]
    pub fn expires_at(&self) -> Instant {
        self.expires_at
    }

    /// Whether the token may still be forwarded at `now`.
    #[must_use]
    pub fn is_fresh(&self, now: Instant) -> bool {
        now < self.expires_at
    }

    /// Whether a refresh should start at `now`: true once per entry, for the
    /// first caller past the refresh time, until [`Entry::refresh_failed`].
    pub fn claim_refresh(&self, now: Instant) -> bool {
        now >= self.refresh_at && !self.refreshing.swap(true, Ordering::AcqRel)
    }

    /// Lets a later caller try the refresh again.
    pub fn refresh_failed(&self) {
        self.refreshing.store(false, Ordering::Release);
    }

    /// The decision under `rules`: the cached one when made under the same
    /// rules, else made now and kept (after a reload changed the rules).
    #[must_use]
    pub fn decision(&self, rules: &Arc<Rules>) -> Arc<Decision> {
        let current = self.decision.load();
        if Arc::ptr_eq(&current.rules, rules) {
            return Arc::clone(&current.decision);
        }
        let decision = Arc::new(rules.decide(self.access_token()));
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
            .field("expires_at", &self.expires_at)
            .field("refresh_at", &self.refresh_at)
            .finish_non_exhaustive()
    }
}

/// The remaining lifetime from a JWT's `exp`, if it is a JWT with one.
fn jwt_lifetime(token: &str) -> Result<Option<Duration>, Unusable> {
    let Some(exp) = jwt_payload(token).and_then(|claims| claims.get("exp")?.as_f64()) else {
        return Ok(None);
    };
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs_f64();
    let remaining = exp - now;
    if remaining <= 0.0 {
        return Err(Unusable::Expired);
    }
    Ok(Some(Duration::from_secs_f64(remaining.min(1e9))))
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
    fn debug_hides_the_token() {
        let entry = Entry::new("secret-token", None, Instant::now(), &rules()).unwrap();
        assert!(!format!("{entry:?}").contains("secret-token"));
        assert_eq!(entry.access_token(), "secret-token");
    }
}
