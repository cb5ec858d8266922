//! What one caller connection remembers of its last grant, so that its
//! next request with the same `Authorization` header skips the work a
//! cache hit costs: decoding the credentials, the HMAC of the cache key and
//! the cache look-up.
//!
//! A machine-to-machine caller sends the same credentials on every request
//! of a keep-alive connection; the gateway keeps one [`Recall`] per caller
//! connection and asks [`Middleware::authorize_on`] with it.
//!
//! # Security
//!
//! A recalled grant is used only for the same middleware (the same built
//! instance: a reload starts afresh), only when the request's one
//! `Authorization` header is byte for byte the remembered one (compared in
//! constant time: behind a proxy one connection can carry several callers'
//! requests), and only while its token is one the cache would hand out
//! without a look-up: before its refresh time, not expired, and not retired
//! from the cache (replaced by a refresh or dropped after an upstream 401).
//! A wrong secret therefore never reaches a recalled grant, as it never
//! reaches a cached one. The remembered header — the caller's secret — is
//! a copy, zeroed when it is dropped or replaced, and lives only as long as
//! the connection; `Debug` prints none of it. Refusals are never recalled.

use std::fmt;
use std::sync::{Arc, Mutex, Weak};
use std::time::Instant;

use aws_lc_rs::constant_time::verify_slices_are_equal;
use http::HeaderMap;
use secrecy::{ExposeSecret, SecretSlice};

use super::{Grant, Inner, Middleware, one_authorization};

/// One connection's memory of its last grant (see the module docs).
///
/// # Example
///
/// ```
/// use ccgate::middleware::Recall;
///
/// let recall = Recall::default(); // one per caller connection
/// assert_eq!(format!("{recall:?}"), "Recall { remembers: false }");
/// ```
#[derive(Default)]
pub struct Recall {
    last: Mutex<Option<Recalled>>,
}

struct Recalled {
    /// The middleware that granted it; weak, so a connection does not keep
    /// a replaced middleware (and its cache) alive, while its address
    /// cannot be taken by a new one.
    middleware: Weak<Inner>,
    /// The caller's `Authorization` value it was granted for (`None`: the
    /// middleware uses its own credentials, the header does not matter).
    authorization: Option<SecretSlice<u8>>,
    grant: Grant,
}

impl fmt::Debug for Recall {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let remembers = self.last.lock().is_ok_and(|last| last.is_some());
        f.debug_struct("Recall")
            .field("remembers", &remembers)
            .finish()
    }
}

impl Recall {
    /// The remembered grant, if `middleware` made it for these `headers`
    /// and its token may still be used without a look-up.
    pub(super) fn get(&self, middleware: &Middleware, headers: &HeaderMap) -> Option<Grant> {
        let last = self.last.lock().ok()?;
        let recalled = last.as_ref()?;
        if recalled.middleware.as_ptr() != Arc::as_ptr(&middleware.inner)
            || !recalled.grant.entry.recallable(Instant::now())
        {
            return None;
        }
        if let Some(remembered) = &recalled.authorization {
            let sent = one_authorization(headers).ok()?;
            verify_slices_are_equal(sent, remembered.expose_secret()).ok()?;
        }
        Some(recalled.grant.clone())
    }

    /// Remembers `grant`, made by `middleware` for `headers`, in place of
    /// what was remembered before.
    pub(super) fn remember(&self, middleware: &Middleware, headers: &HeaderMap, grant: &Grant) {
        let authorization = if middleware.is_application_level() {
            let Ok(sent) = one_authorization(headers) else {
                return;
            };
            Some(SecretSlice::from(sent.to_vec()))
        } else {
            None
        };
        if let Ok(mut last) = self.last.lock() {
            *last = Some(Recalled {
                middleware: Arc::downgrade(&middleware.inner),
                authorization,
                grant: grant.clone(),
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::time::Duration;

    use base64::Engine as _;
    use http::{HeaderValue, header};
    use secrecy::SecretString;
    use serde_json::json;

    use super::*;
    use crate::credentials::Credentials;
    use crate::options::Options;
    use crate::store::entry::Entry;
    use crate::store::key::{KeyDeriver, KeyMaterial, Scope};

    /// A middleware that is never asked for a token here.
    fn middleware(extra: serde_json::Value) -> Middleware {
        let mut options = json!({"url": "http://127.0.0.1:1/token", "audience": "api"});
        let serde_json::Value::Object(extra) = extra else {
            panic!("extra options are an object")
        };
        options.as_object_mut().unwrap().extend(extra);
        Middleware::new(Options::from_value(options).unwrap()).unwrap()
    }

    fn basic(id: &str, secret: &str) -> HeaderMap {
        let encoded = base64::engine::general_purpose::STANDARD.encode(format!("{id}:{secret}"));
        let mut headers = HeaderMap::new();
        headers.insert(
            header::AUTHORIZATION,
            HeaderValue::try_from(format!("Basic {encoded}")).unwrap(),
        );
        headers
    }

    /// A grant of `middleware` for a token obtained at `requested_at`
    /// that lives `lifetime`.
    fn grant(middleware: &Middleware, requested_at: Instant, lifetime: Duration) -> Grant {
        let rules = &middleware.inner.rules;
        let entry = Arc::new(Entry::new("token", Some(lifetime), requested_at, rules).unwrap());
        let scope = Scope {
            url: "u",
            audience: "a",
            scopes: &[],
            resource: &[],
            parameters: &BTreeMap::new(),
            auth_method: "auto",
            private_key: None,
            private_key_id: None,
            checks: [None; 7],
        };
        let key = KeyDeriver::new(KeyMaterial::Public, &scope)
            .derive(&Credentials::new("app", SecretString::from("s")));
        Grant {
            key,
            decision: entry.decision(rules),
            entry,
        }
    }

    fn hour() -> Duration {
        Duration::from_secs(3600)
    }

    #[test]
    fn the_same_header_to_the_same_middleware_is_recalled() {
        let (cc, recall) = (middleware(json!({})), Recall::default());
        let headers = basic("app", "secret");
        assert!(
            recall.get(&cc, &headers).is_none(),
            "nothing remembered yet"
        );
        let granted = grant(&cc, Instant::now(), hour());
        recall.remember(&cc, &headers, &granted);
        let recalled = recall.get(&cc, &headers).expect("recalled");
        assert!(Arc::ptr_eq(&recalled.entry, &granted.entry));
    }

    #[test]
    fn other_credentials_or_header_sets_are_never_recalled() {
        let (cc, recall) = (middleware(json!({})), Recall::default());
        recall.remember(
            &cc,
            &basic("app", "secret"),
            &grant(&cc, Instant::now(), hour()),
        );
        for (case, headers) in [
            ("a wrong secret for the same id", basic("app", "secreT")),
            ("a longer secret", basic("app", "secret2")),
            ("another id", basic("other", "secret")),
            ("no Authorization", HeaderMap::new()),
        ] {
            assert!(recall.get(&cc, &headers).is_none(), "{case}");
        }
        let mut twice = basic("app", "secret");
        let again = twice[header::AUTHORIZATION].clone();
        twice.append(header::AUTHORIZATION, again);
        assert!(
            recall.get(&cc, &twice).is_none(),
            "two Authorization headers"
        );
        assert!(recall.get(&cc, &basic("app", "secret")).is_some());
    }

    #[test]
    fn another_middleware_does_not_recall_it_even_when_built_alike() {
        let (cc, twin, recall) = (
            middleware(json!({})),
            middleware(json!({})),
            Recall::default(),
        );
        let headers = basic("app", "secret");
        recall.remember(&cc, &headers, &grant(&cc, Instant::now(), hour()));
        assert!(recall.get(&twin, &headers).is_none());
        drop(cc);
        let later = middleware(json!({}));
        assert!(
            recall.get(&later, &headers).is_none(),
            "nor one built after it was dropped"
        );
    }

    #[test]
    fn a_retired_entry_or_one_due_for_refresh_is_looked_up_again() {
        let (cc, recall) = (middleware(json!({})), Recall::default());
        let headers = basic("app", "secret");
        let granted = grant(&cc, Instant::now(), hour());
        recall.remember(&cc, &headers, &granted);
        granted.entry.retire();
        assert!(recall.get(&cc, &headers).is_none(), "retired");
        // 100 s of life, obtained 80 s ago: usable for 90 s, refreshed from 72 s.
        let due = grant(
            &cc,
            Instant::now() - Duration::from_secs(80),
            Duration::from_secs(100),
        );
        assert!(due.entry.is_fresh(Instant::now()), "still forwardable");
        recall.remember(&cc, &headers, &due);
        assert!(recall.get(&cc, &headers).is_none(), "past its refresh time");
    }

    #[test]
    fn with_the_gateways_own_credentials_the_header_does_not_matter() {
        let cc = middleware(json!({"clientId": "gateway", "clientSecret": "gateway-secret"}));
        let recall = Recall::default();
        recall.remember(&cc, &HeaderMap::new(), &grant(&cc, Instant::now(), hour()));
        assert!(recall.get(&cc, &basic("anyone", "anything")).is_some());
        assert!(recall.get(&cc, &HeaderMap::new()).is_some());
    }

    #[test]
    fn debug_shows_no_secret() {
        let (cc, recall) = (middleware(json!({})), Recall::default());
        recall.remember(
            &cc,
            &basic("app", "hunter2"),
            &grant(&cc, Instant::now(), hour()),
        );
        let printed = format!("{recall:?}");
        assert_eq!(printed, "Recall { remembers: true }");
    }
}
