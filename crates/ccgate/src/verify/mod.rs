//! `verify`: checks a JWT access token before it is forwarded — its
//! signature against the authorization server's JWKS, and its `iss` and
//! `aud` when configured (SPEC §2.7).
//!
//! Accepted algorithms are RS256, PS256, ES256 and EdDSA (Ed25519);
//! `none`, the HMACs (`HS*`) and every other `alg` are refused, as is a
//! header with `crit` (no extension is understood). The key is the JWKS
//! key with the token's `kid` (without a `kid`, any key of the right
//! type that verifies). The JWKS is fetched on first use and kept; an
//! unknown `kid` fetches it again at most once per
//! [`MIN_REFETCH`](jwks::MIN_REFETCH) (a key rotation), so forged `kid`s
//! cannot turn into JWKS requests. Its body is bounded
//! ([`MAX_JWKS_BODY`](jwks::MAX_JWKS_BODY)), as is each fetch (the
//! middleware's `clientConfig.timeoutSeconds`).
//!
//! A token is verified once: when it is obtained from the token endpoint,
//! or when it is read from a shared store (Redis). A memory hit is not
//! verified again — the outcome is kept with the entry, since only
//! verified tokens are cached.
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
//!     "verify": {
//!         "jwksURL": "https://idp.example.com/.well-known/jwks.json",
//!         "issuer": "https://idp.example.com/",
//!         "audience": "https://api.example.com",
//!     },
//! }))?;
//! let middleware = Middleware::new(options)?; // the JWKS is fetched on first use
//! # let _ = middleware;
//! # Ok::<(), ccgate::options::OptionsError>(())
//! ```

mod jwk;
pub mod jwks;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::Value;

use crate::token::FetchError;
use jwk::Alg;
use jwks::Jwks;

/// The `verify` checks of one middleware.
#[derive(Debug)]
pub(crate) struct Verifier {
    jwks: Jwks,
    issuer: Option<String>,
    audience: Option<String>,
}

impl Verifier {
    pub(crate) fn new(jwks: Jwks, issuer: Option<String>, audience: Option<String>) -> Self {
        Self {
            jwks,
            issuer,
            audience,
        }
    }

    /// Checks `token` (module docs).
    ///
    /// # Errors
    ///
    /// [`FetchError::Unverified`] naming what failed, never quoting the
    /// token.
    pub(crate) async fn verify(&self, token: &str) -> Result<(), FetchError> {
        let unverified = |reason| FetchError::Unverified { reason };
        let mut parts = token.split('.');
        let (Some(header), Some(payload), Some(signature), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(unverified("the access token is not a JWT"));
        };
        let header: Value = decode_json(header).ok_or(unverified("the JWT header is not JSON"))?;
        let alg = header
            .get("alg")
            .and_then(Value::as_str)
            .and_then(Alg::from_name)
            .ok_or(unverified(
                "the JWT alg is not one of RS256, PS256, ES256, EdDSA",
            ))?;
        if header.get("crit").is_some() {
            return Err(unverified("the JWT header has crit extensions"));
        }
        let kid = match header.get("kid") {
            None => None,
            Some(Value::String(kid)) => Some(kid.as_str()),
            Some(_) => return Err(unverified("the JWT kid is not a string")),
        };
        let signature = URL_SAFE_NO_PAD
            .decode(signature)
            .map_err(|_| unverified("the JWT signature is not base64url"))?;
        let signed = &token[..header_and_payload_len(token)];
        let keys = self
            .jwks
            .candidates(kid, alg)
            .await
            .map_err(|_| unverified("the JWKS could not be fetched"))?;
        if keys.is_empty() {
            return Err(unverified("no key of the JWKS matches the JWT kid and alg"));
        }
        if !keys
            .iter()
            .any(|key| key.verifies(alg, signed.as_bytes(), &signature))
        {
            return Err(unverified("the JWT signature does not verify"));
        }
        let claims: Value =
            decode_json(payload).ok_or(unverified("the JWT payload is not a JSON object"))?;
        if !claims.is_object() {
            return Err(unverified("the JWT payload is not a JSON object"));
        }
        if let Some(issuer) = &self.issuer
            && claims.get("iss").and_then(Value::as_str) != Some(issuer)
        {
            return Err(unverified("the JWT iss is not verify.issuer"));
        }
        if let Some(audience) = &self.audience {
            let fits = match claims.get("aud") {
                Some(Value::String(aud)) => aud == audience,
                Some(Value::Array(auds)) => auds.iter().any(|aud| aud.as_str() == Some(audience)),
                _ => false,
            };
            if !fits {
                return Err(unverified("the JWT aud does not hold verify.audience"));
            }
        }
        Ok(())
    }
}

/// The length of `header.payload`, the signed part of a compact JWS.
fn header_and_payload_len(token: &str) -> usize {
    token.rfind('.').unwrap_or(0)
}

fn decode_json(segment: &str) -> Option<Value> {
    let bytes = URL_SAFE_NO_PAD.decode(segment).ok()?;
    serde_json::from_slice(&bytes).ok()
}
