//! Cache keys: a keyed hash (HMAC-SHA-256) of everything that decides
//! which token a request gets.
//!
//! The hash covers the token endpoint URL, audience, scopes, resource
//! indicators, extra form parameters, client authentication method and
//! its key (`privateKey`, `privateKeyID`), the `introspection` and
//! `verify` options (an entry holds their outcome), client id and client secret,
//! each length-prefixed so that no two different tuples encode alike. Raw ids
//! and secrets never appear in a key, and a wrong secret for a known
//! client id hashes to another key, so it can never hit the right one's
//! entry.
//!
//! The HMAC key comes from `store.secret` when set. Without it, a process
//! with only a memory store uses a random key of its own; a shared store
//! (Redis) without a secret must use one key on every replica, so a fixed,
//! public one is used: the keys then still hide ids and secrets from a
//! casual reader, but a weak client secret could be guessed offline from
//! them — set `store.secret` with a shared store.

use std::collections::BTreeMap;
use std::fmt;

use aws_lc_rs::hmac;
use aws_lc_rs::rand::{SecureRandom, SystemRandom};
use base64::Engine as _;
use secrecy::ExposeSecret;

use crate::credentials::Credentials;

/// Where the HMAC key comes from.
#[derive(Clone, Copy)]
pub(crate) enum KeyMaterial<'a> {
    /// Derived from `store.secret`.
    Secret(&'a [u8]),
    /// Random, for a store that lives in this process only.
    PerProcess,
    /// A fixed public key, for a shared store without `store.secret`.
    Public,
}

impl fmt::Debug for KeyMaterial<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Secret(_) => "Secret([REDACTED])",
            Self::PerProcess => "PerProcess",
            Self::Public => "Public",
        })
    }
}

/// Domain separation for the HMAC key derived from `store.secret`, so the
/// same secret used for sealing never serves as a MAC key directly.
const KEY_LABEL: &[u8] = b"ccgate cache key v1";

/// What decides a middleware's token besides the caller's credentials.
#[derive(Clone, Copy)]
pub(crate) struct Scope<'a> {
    /// The token endpoint URL.
    pub(crate) url: &'a str,
    /// `audience` (empty: none).
    pub(crate) audience: &'a str,
    /// `scopes`.
    pub(crate) scopes: &'a [String],
    /// `resource`.
    pub(crate) resource: &'a [String],
    /// `parameters`.
    pub(crate) parameters: &'a BTreeMap<String, String>,
    /// `authMethod` as configured (e.g. `auto`).
    pub(crate) auth_method: &'a str,
    /// `privateKey` (PEM text).
    pub(crate) private_key: Option<&'a str>,
    /// `privateKeyID`.
    pub(crate) private_key_id: Option<&'a str>,
    /// `introspection` (url, clientID, clientSecret, authMethod) and
    /// `verify` (jwksURL, issuer, audience), unset parts `None`.
    pub(crate) checks: [Option<&'a str>; 7],
}

/// Derives [`CacheKey`]s for one middleware: the parts that do not depend
/// on the caller are hashed once, when it is built.
#[derive(Clone)]
pub(crate) struct KeyDeriver {
    prefilled: hmac::Context,
}

impl KeyDeriver {
    /// A deriver for the token requests of `scope`.
    ///
    /// # Panics
    ///
    /// Only if the system's random source fails ([`KeyMaterial::PerProcess`]).
    #[must_use]
    pub(crate) fn new(material: KeyMaterial<'_>, scope: &Scope<'_>) -> Self {
        let key = match material {
            KeyMaterial::Secret(secret) => {
                let tag = hmac::sign(&hmac::Key::new(hmac::HMAC_SHA256, secret), KEY_LABEL);
                hmac::Key::new(hmac::HMAC_SHA256, tag.as_ref())
            }
            KeyMaterial::PerProcess => {
                let mut random = [0u8; 32];
                SystemRandom::new()
                    .fill(&mut random)
                    .expect("the system random source works");
                hmac::Key::new(hmac::HMAC_SHA256, &random)
            }
            KeyMaterial::Public => hmac::Key::new(hmac::HMAC_SHA256, KEY_LABEL),
        };
        let mut prefilled = hmac::Context::with_key(&key);
        for part in [scope.url, scope.audience, scope.auth_method] {
            update(&mut prefilled, part.as_bytes());
        }
        for list in [scope.scopes, scope.resource] {
            prefilled.update(&(list.len() as u64).to_be_bytes());
            for item in list {
                update(&mut prefilled, item.as_bytes());
            }
        }
        prefilled.update(&(scope.parameters.len() as u64).to_be_bytes());
        for (name, value) in scope.parameters {
            update(&mut prefilled, name.as_bytes());
            update(&mut prefilled, value.as_bytes());
        }
        let parts = [scope.private_key, scope.private_key_id];
        for part in parts.iter().chain(&scope.checks) {
            match part {
                Some(text) => {
                    prefilled.update(&[1]);
                    update(&mut prefilled, text.as_bytes());
                }
                None => prefilled.update(&[0]),
            }
        }
        Self { prefilled }
    }

    /// The key of `credentials`' token.
    #[must_use]
    pub(crate) fn derive(&self, credentials: &Credentials) -> CacheKey {
        let mut context = self.prefilled.clone();
        update(&mut context, credentials.id().as_bytes());
        update(
            &mut context,
            credentials.secret().expose_secret().as_bytes(),
        );
        let mut key = [0u8; 32];
        key.copy_from_slice(context.sign().as_ref());
        CacheKey(key)
    }
}

impl fmt::Debug for KeyDeriver {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("KeyDeriver([REDACTED])")
    }
}

/// Feeds `part` with its length first, so boundaries are unambiguous.
fn update(context: &mut hmac::Context, part: &[u8]) {
    context.update(&(part.len() as u64).to_be_bytes());
    context.update(part);
}

/// The key of one cached token: 32 bytes of HMAC-SHA-256.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) struct CacheKey([u8; 32]);

impl CacheKey {
    /// The key as written to a shared store: `prefix` then the hash in
    /// unpadded base64url (43 characters).
    #[must_use]
    pub(crate) fn store_key(&self, prefix: &str) -> String {
        let mut key = String::with_capacity(prefix.len() + 43);
        key.push_str(prefix);
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode_string(self.0, &mut key);
        key
    }
}

impl fmt::Debug for CacheKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "CacheKey({})", self.store_key(""))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use secrecy::SecretString;

    fn creds(id: &str, secret: &str) -> Credentials {
        Credentials::new(id, SecretString::from(secret))
    }

    fn base_scope<'a>(scopes: &'a [String], parameters: &'a BTreeMap<String, String>) -> Scope<'a> {
        Scope {
            url: "https://idp/token",
            audience: "api",
            scopes,
            resource: &[],
            parameters,
            auth_method: "auto",
            private_key: None,
            private_key_id: None,
            checks: [None; 7],
        }
    }

    fn deriver(material: KeyMaterial<'_>) -> KeyDeriver {
        let scopes = ["read".to_owned()];
        KeyDeriver::new(material, &base_scope(&scopes, &BTreeMap::new()))
    }

    #[test]
    fn equal_inputs_give_equal_keys() {
        let d = deriver(KeyMaterial::Secret(b"0123456789abcdef"));
        assert_eq!(d.derive(&creds("app", "s")), d.derive(&creds("app", "s")));
        let again = deriver(KeyMaterial::Secret(b"0123456789abcdef"));
        assert_eq!(
            d.derive(&creds("app", "s")),
            again.derive(&creds("app", "s")),
            "replicas agree"
        );
        let public = (deriver(KeyMaterial::Public), deriver(KeyMaterial::Public));
        assert_eq!(
            public.0.derive(&creds("app", "s")),
            public.1.derive(&creds("app", "s"))
        );
    }

    #[test]
    fn every_input_changes_the_key() {
        let secret = KeyMaterial::Secret(b"0123456789abcdef");
        let base = deriver(secret).derive(&creds("app", "s"));
        let read = ["read".to_owned()];
        let split = ["re".to_owned(), "ad".to_owned()];
        let resources = ["https://api/".to_owned()];
        let two_resources = ["https://api/".to_owned(), "https://api/".to_owned()];
        let none = BTreeMap::new();
        let tenant = BTreeMap::from([("tenant".to_owned(), "a".to_owned())]);
        let tenant_b = BTreeMap::from([("tenant".to_owned(), "b".to_owned())]);
        let scope = base_scope(&read, &none);
        let with = |scope: Scope<'_>| KeyDeriver::new(secret, &scope).derive(&creds("app", "s"));
        let variants = [
            deriver(secret).derive(&creds("app", "t")),
            deriver(secret).derive(&creds("apq", "s")),
            deriver(secret).derive(&creds("ap", "ps")),
            with(Scope {
                url: "https://idp/token2",
                ..scope
            }),
            with(Scope {
                audience: "api2",
                ..scope
            }),
            with(Scope {
                audience: "",
                ..scope
            }),
            with(Scope {
                scopes: &[],
                ..scope
            }),
            with(Scope {
                scopes: &split,
                ..scope
            }),
            with(Scope {
                auth_method: "client_secret_post",
                ..scope
            }),
            with(Scope {
                auth_method: "client_secret_jwt",
                ..scope
            }),
            with(Scope {
                resource: &resources,
                ..scope
            }),
            with(Scope {
                resource: &two_resources,
                ..scope
            }),
            with(Scope {
                parameters: &tenant,
                ..scope
            }),
            with(Scope {
                parameters: &tenant_b,
                ..scope
            }),
            with(Scope {
                private_key: Some("-----BEGIN PRIVATE KEY-----a"),
                ..scope
            }),
            with(Scope {
                private_key: Some("-----BEGIN PRIVATE KEY-----b"),
                ..scope
            }),
            with(Scope {
                private_key_id: Some("k1"),
                ..scope
            }),
            with(Scope {
                private_key: Some(""),
                ..scope
            }),
            with(Scope {
                checks: [
                    Some("https://idp/introspect"),
                    None,
                    None,
                    None,
                    None,
                    None,
                    None,
                ],
                ..scope
            }),
            with(Scope {
                checks: [None, None, None, None, Some("https://idp/jwks"), None, None],
                ..scope
            }),
            with(Scope {
                checks: [
                    None,
                    None,
                    None,
                    None,
                    Some("https://idp/jwks"),
                    Some("iss"),
                    None,
                ],
                ..scope
            }),
            deriver(KeyMaterial::Secret(b"fedcba9876543210")).derive(&creds("app", "s")),
            deriver(KeyMaterial::Public).derive(&creds("app", "s")),
        ];
        for (i, variant) in variants.iter().enumerate() {
            assert_ne!(*variant, base, "variant {i}");
            for (j, other) in variants.iter().enumerate().skip(i + 1) {
                assert_ne!(variant, other, "variants {i} and {j}");
            }
        }
    }

    #[test]
    fn per_process_keys_differ_between_derivers() {
        let a = deriver(KeyMaterial::PerProcess).derive(&creds("app", "s"));
        let b = deriver(KeyMaterial::PerProcess).derive(&creds("app", "s"));
        assert_ne!(a, b);
    }

    #[test]
    fn store_keys_carry_the_prefix_and_no_raw_input() {
        let key = deriver(KeyMaterial::Public).derive(&creds("my-client-id", "my-client-secret"));
        let stored = key.store_key("ccgate:");
        assert!(stored.starts_with("ccgate:"));
        assert_eq!(stored.len(), "ccgate:".len() + 43);
        assert!(!stored.contains("my-client"));
        assert!(!format!("{key:?}").contains("my-client"));
    }
}
