//! The JWKS of `verify.jwksURL`: fetched on first use, kept, and fetched
//! again when a token names a `kid` it does not hold (a key rotation) —
//! such refetches at most once per [`MIN_REFETCH`], so tokens with
//! made-up `kid`s cannot turn into JWKS requests. Until a first fetch
//! succeeds, fetches are at least [`RETRY_AFTER_FAILURE`] apart. One fetch
//! runs at a time; callers that need one meanwhile wait for it.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use arc_swap::ArcSwapOption;
use reqwest::Url;
use serde_json::Value;

use super::jwk::{Alg, Jwk};

/// Least time between two refetches for an unknown `kid` (the first
/// fetch does not count: a rotation right after start is found at once).
pub const MIN_REFETCH: Duration = Duration::from_secs(60);
/// Least time between two fetches while none could be fetched yet.
pub const RETRY_AFTER_FAILURE: Duration = Duration::from_secs(5);
/// Largest JWKS body read.
pub const MAX_JWKS_BODY: usize = 256 * 1024;
/// Most keys taken from a JWKS (the rest are ignored).
pub const MAX_KEYS: usize = 64;

/// A cached JWKS.
pub(crate) struct Jwks {
    client: reqwest::Client,
    url: Url,
    timeout: Duration,
    keys: ArcSwapOption<Vec<Jwk>>,
    /// One fetch at a time.
    fetching: tokio::sync::Mutex<()>,
    /// When the last fetch started, and whether a key set was held then
    /// (a refetch).
    last_fetch: Mutex<Option<(Instant, bool)>>,
}

/// The JWKS could not be fetched or read; the reason is a fixed text (the
/// detail goes to the log).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Unavailable;

impl Jwks {
    pub(crate) fn new(client: reqwest::Client, url: Url, timeout: Duration) -> Self {
        Self {
            client,
            url,
            timeout,
            keys: ArcSwapOption::empty(),
            fetching: tokio::sync::Mutex::new(()),
            last_fetch: Mutex::new(None),
        }
    }

    /// The keys that may have signed a token with `kid` (or, without one,
    /// every key) and `alg`: from the held set, else after a fetch if one is
    /// allowed now.
    ///
    /// # Errors
    ///
    /// [`Unavailable`] when no key set was ever fetched and this fetch
    /// failed too (or is not allowed yet).
    pub(crate) async fn candidates(
        &self,
        kid: Option<&str>,
        alg: Alg,
    ) -> Result<Vec<Jwk>, Unavailable> {
        let held = self.keys.load_full();
        if let Some(keys) = &held {
            let found = select(keys, kid, alg);
            if !found.is_empty() {
                return Ok(found);
            }
        }
        // Unknown kid (or nothing held yet): fetch again if allowed.
        let _turn = self.fetching.lock().await;
        let current = self.keys.load_full();
        if !ptr_eq(&current, &held) {
            // Fetched by another caller while this one waited.
            return Ok(current
                .map(|keys| select(&keys, kid, alg))
                .unwrap_or_default());
        }
        if !self.may_fetch(current.is_some()) {
            return current
                .map(|keys| select(&keys, kid, alg))
                .ok_or(Unavailable);
        }
        match self.fetch().await {
            Ok(keys) => {
                let found = select(&keys, kid, alg);
                self.keys.store(Some(Arc::new(keys)));
                Ok(found)
            }
            Err(detail) => {
                tracing::warn!(url = %self.url, error = %detail, "cannot fetch the JWKS of verify.jwksURL");
                current
                    .map(|keys| select(&keys, kid, alg))
                    .ok_or(Unavailable)
            }
        }
    }

    /// Whether a fetch may start now; if so, records it.
    fn may_fetch(&self, holding: bool) -> bool {
        let mut last = self
            .last_fetch
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let now = Instant::now();
        let allowed = match *last {
            None => true,
            // The first fetch of a held set was not a refetch.
            Some((_, false)) if holding => true,
            Some((at, refetch)) => {
                let gap = if refetch {
                    MIN_REFETCH
                } else {
                    RETRY_AFTER_FAILURE
                };
                now.duration_since(at) >= gap
            }
        };
        if allowed {
            *last = Some((now, holding));
        }
        allowed
    }

    async fn fetch(&self) -> Result<Vec<Jwk>, String> {
        let request = async {
            let mut response = self
                .client
                .get(self.url.clone())
                .header(reqwest::header::ACCEPT, "application/json")
                .send()
                .await
                .map_err(|error| format!("{error}"))?;
            if !response.status().is_success() {
                return Err(format!("HTTP {}", response.status().as_u16()));
            }
            let mut body = Vec::new();
            while let Some(chunk) = response.chunk().await.map_err(|e| e.to_string())? {
                if body.len() + chunk.len() > MAX_JWKS_BODY {
                    return Err("the JWKS is larger than 256 KiB".to_owned());
                }
                body.extend_from_slice(&chunk);
            }
            parse(&body)
        };
        tokio::time::timeout(self.timeout, request)
            .await
            .unwrap_or_else(|_| Err("no answer in time".to_owned()))
    }
}

/// The usable keys of a JWKS document (`{"keys": [...]}`).
fn parse(body: &[u8]) -> Result<Vec<Jwk>, String> {
    let value: Value = serde_json::from_slice(body).map_err(|_| "the JWKS is not JSON")?;
    let keys = value
        .get("keys")
        .and_then(Value::as_array)
        .ok_or("the JWKS has no keys array")?;
    Ok(keys
        .iter()
        .take(MAX_KEYS)
        .filter_map(Jwk::from_value)
        .collect())
}

fn select(keys: &[Jwk], kid: Option<&str>, alg: Alg) -> Vec<Jwk> {
    keys.iter()
        .filter(|key| key.fits(alg) && kid.is_none_or(|kid| key.kid.as_deref() == Some(kid)))
        .cloned()
        .collect()
}

fn ptr_eq(a: &Option<Arc<Vec<Jwk>>>, b: &Option<Arc<Vec<Jwk>>>) -> bool {
    match (a, b) {
        (Some(a), Some(b)) => Arc::ptr_eq(a, b),
        (None, None) => true,
        _ => false,
    }
}

impl std::fmt::Debug for Jwks {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Jwks")
            .field("url", &self.url.as_str())
            .field("held", &self.keys.load().as_ref().map(|keys| keys.len()))
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_jwks_keeps_its_usable_keys_only() {
        let body = br#"{"keys":[{"kty":"oct","k":"AAAA"},{"kty":"OKP","crv":"Ed25519","kid":"e","x":"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"}]}"#;
        let keys = parse(body).unwrap();
        assert_eq!(keys.len(), 1);
        assert_eq!(select(&keys, Some("e"), Alg::EdDsa).len(), 1);
        assert!(select(&keys, Some("other"), Alg::EdDsa).is_empty());
        assert!(select(&keys, None, Alg::Es256).is_empty());
        assert!(parse(b"{}").is_err() && parse(b"nope").is_err());
    }
}
