//! The `oAuthClientCredentials` middleware, independent of any HTTP stack:
//! built once from [`Options`], then asked per request to
//! [`Middleware::authorize`] it.
//!
//! A [`Grant`] carries what goes upstream (`Authorization: Bearer …`, the
//! `forwardHeaders`, the username); a [`Denial`] is the response to send
//! instead. The tower layer ([`crate::layer`]) and the gateway's
//! forward-auth endpoint are both built on these two calls.
//!
//! # Example
//!
//! ```
//! use ccgate::{Middleware, options::Options};
//! use serde_json::json;
//!
//! let options = Options::from_value(json!({
//!     "url": "https://idp.example.com/oauth/token",
//!     "audience": "https://api.example.com",
//!     "claims": "Equals(`grp`, `admin`)",
//! }))?;
//! let middleware = Middleware::builder(options).name("cc-auth").build()?;
//! assert!(middleware.is_application_level());
//! # Ok::<(), ccgate::options::OptionsError>(())
//! ```

mod build;
mod recall;

use std::sync::Arc;
use std::time::Duration;

use http::{HeaderMap, HeaderName, HeaderValue, header};

pub use build::Builder;
pub use recall::Recall;

use crate::credentials::{BasicError, Credentials};
use crate::decision::{Decision, Rules};
use crate::denial::Denial;
use crate::options::{Options, OptionsError};
use crate::source::TokenSource;
use crate::store::entry::Entry;
use crate::store::key::CacheKey;
use crate::token::CredentialsLevel;

/// How old a cached token must be (since this process obtained it) before
/// an upstream 401 drops it (SPEC §2.8), by default: an upstream that
/// answers 401 to everything then costs one token request per key per
/// 10 s, not one per request. Change it with
/// [`Builder::upstream_401_min_age`].
pub const UPSTREAM_401_MIN_AGE: Duration = Duration::from_secs(10);

/// A built middleware: cheap to clone, shared by every request.
#[derive(Clone, Debug)]
pub struct Middleware {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    name: String,
    gateway_credentials: Option<Credentials>,
    source: TokenSource,
    rules: Arc<Rules>,
    /// See [`Builder::upstream_401_min_age`].
    upstream_401_min_age: Duration,
    /// Hash of the options that decide the token, see [`Builder::reuse`].
    token_settings: [u8; 32],
}

/// What a request that passed carries upstream.
#[derive(Debug, Clone)]
pub struct Grant {
    key: CacheKey,
    entry: Arc<Entry>,
    decision: Arc<Decision>,
}

impl Middleware {
    /// A builder for the middleware described by `options`.
    pub fn builder(options: Options) -> Builder {
        Builder::new(options)
    }

    /// The middleware described by `options`, with default name and
    /// unexported metrics.
    ///
    /// # Errors
    ///
    /// An [`OptionsError`] naming the invalid field.
    pub fn new(options: Options) -> Result<Self, OptionsError> {
        Builder::new(options).build()
    }

    /// Its name, as in metrics.
    #[must_use]
    pub fn name(&self) -> &str {
        &self.inner.name
    }

    /// Whether callers must bring their own credentials (no `clientID`).
    #[must_use]
    pub fn is_application_level(&self) -> bool {
        self.inner.gateway_credentials.is_none()
    }

    /// Whose credentials token requests carry.
    #[must_use]
    pub fn credentials_level(&self) -> CredentialsLevel {
        if self.is_application_level() {
            CredentialsLevel::Application
        } else {
            CredentialsLevel::Gateway
        }
    }

    /// Decides on a request from its headers: finds the credentials, gets
    /// a token (from the cache when it can) and checks its claims.
    ///
    /// # Errors
    ///
    /// A [`Denial`] holding the response to send instead (401, 403, 502 or 504).
    pub async fn authorize(&self, headers: &HeaderMap) -> Result<Grant, Denial> {
        let inner = &*self.inner;
        let caller_credentials;
        let credentials = match &inner.gateway_credentials {
            Some(credentials) => credentials,
            None => {
                caller_credentials = basic_credentials(headers).map_err(Denial::credentials)?;
                &caller_credentials
            }
        };
        let (key, entry) = inner
            .source
            .token(credentials, &inner.rules)
            .await
            .map_err(|error| Denial::token(&error, self.credentials_level()))?;
        let decision = entry.decision(&inner.rules);
        if !decision.allowed {
            return Err(Denial::claims());
        }
        Ok(Grant {
            key,
            entry,
            decision,
        })
    }

    /// [`Middleware::authorize`] for a request on the caller connection
    /// that `recall` belongs to: the connection's last grant from this
    /// middleware when the request brings the same `Authorization` header
    /// and its token needs no look-up ([`Recall`] says when), else a full
    /// authorization, remembered for the next request. A recalled grant
    /// counts as a memory hit in the metrics.
    ///
    /// # Errors
    ///
    /// As [`Middleware::authorize`]; refusals are not remembered.
    pub async fn authorize_on(
        &self,
        headers: &HeaderMap,
        recall: &Recall,
    ) -> Result<Grant, Denial> {
        if let Some(grant) = recall.get(self, headers) {
            self.inner.source.count_memory_hit();
            return Ok(grant);
        }
        let grant = self.authorize(headers).await?;
        recall.remember(self, headers, &grant);
        Ok(grant)
    }

    /// Tells the middleware that the upstream answered 401 to a request
    /// sent with `grant`: its token is dropped from the cache if the cache
    /// still holds that token (not a newer one) and it was obtained at
    /// least [`UPSTREAM_401_MIN_AGE`] before (see
    /// [`Builder::upstream_401_min_age`]), so the next request gets a new
    /// one. A younger token stays: an upstream that always answers 401
    /// cannot turn requests into token requests (SPEC §2.8).
    pub async fn upstream_rejected(&self, grant: &Grant) {
        let inner = &*self.inner;
        inner
            .source
            .forget(grant.key, &grant.entry, inner.upstream_401_min_age)
            .await;
    }
}

/// The caller's credentials from its one `Authorization` header.
fn basic_credentials(headers: &HeaderMap) -> Result<Credentials, BasicError> {
    Credentials::from_basic_authorization(one_authorization(headers)?)
}

/// The bytes of the request's one `Authorization` header: none is
/// [`BasicError::Missing`], two or more [`BasicError::NotBasic`].
fn one_authorization(headers: &HeaderMap) -> Result<&[u8], BasicError> {
    let mut values = headers.get_all(header::AUTHORIZATION).iter();
    let value = values.next().ok_or(BasicError::Missing)?;
    if values.next().is_some() {
        return Err(BasicError::NotBasic);
    }
    Ok(value.as_bytes())
}

impl Grant {
    /// `Bearer <access token>`, marked sensitive.
    #[must_use]
    pub fn authorization(&self) -> &HeaderValue {
        self.entry.authorization()
    }

    /// The `forwardHeaders` values, one pair per value.
    #[must_use]
    pub fn forward_headers(&self) -> &[(HeaderName, HeaderValue)] {
        &self.decision.headers
    }

    /// The rendered `usernameClaim`.
    #[must_use]
    pub fn username(&self) -> Option<&Arc<str>> {
        self.decision.username.as_ref()
    }

    /// Rewrites request headers for the upstream: the caller's
    /// `Authorization` (with its secret) and any header it sent under a
    /// `forwardHeaders` name are removed, then `Authorization: Bearer …`
    /// and the forwarded values are set.
    pub fn apply(&self, headers: &mut HeaderMap) {
        for (name, _) in self.forward_headers() {
            headers.remove(name);
        }
        // `insert` replaces every `Authorization` value the caller sent.
        headers.insert(header::AUTHORIZATION, self.authorization().clone());
        for (name, value) in self.forward_headers() {
            headers.append(name.clone(), value.clone());
        }
    }
}
