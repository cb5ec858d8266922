//! The options of the `oAuthClientCredentials` middleware, with Traefik's
//! field names.
//!
//! [`Options`] is the configuration as written: field names match
//! case-insensitively ([`fields`]: `clientId` and `clientID` are one field, as in
//! Traefik), unknown fields are errors, and every [`OptionsError`] names
//! the path of its field. [`Options::from_value`] reads them from a JSON
//! value (the gateway converts its YAML to one); Rust users may also fill
//! the struct directly. Checks that need more than the value's type —
//! required fields, lengths, expressions, PEM — run when the middleware is
//! built ([`crate::Middleware::new`]), and name their field the same way.
//!
//! Secret values (`clientSecret`, `privateKey`, `introspection.clientSecret`, `store.secret`, `clientConfig.tls.key`,
//! the Redis passwords and `store.redis.tls.key`) are [`SecretString`]s: `Debug` redacts them and no error shows them.
//! Secret URNs (`urn:k8s:secret:NAME:KEY`) are resolved by the gateway
//! before the options reach this crate; an unresolved one is an error.
//!
//! # Example
//!
//! ```
//! use ccgate::options::Options;
//! use serde_json::json;
//!
//! let options = Options::from_value(json!({
//!     "url": "https://idp.example.com/oauth/token",
//!     "clientId": "gateway",            // any case, as in Traefik
//!     "clientSecret": "s3cret",
//!     "audience": "https://api.example.com",
//!     "claims": "Equals(`grp`, `admin`)",
//!     "forwardHeaders": {"Group": "grp"},
//!     "clientConfig": {"timeoutSeconds": 2}
//! }))?;
//! assert_eq!(options.client_id.as_deref(), Some("gateway"));
//! assert_eq!(options.client_config.timeout_seconds, 2);
//! assert!(!format!("{options:?}").contains("s3cret"));
//! # Ok::<(), ccgate::options::OptionsError>(())
//! ```

pub mod fields;

use std::collections::BTreeMap;
use std::fmt;

use secrecy::SecretString;
use serde::Deserialize;
use serde_json::Value;

pub use crate::token::AuthMethod;

/// The options of one `oAuthClientCredentials` middleware.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
#[non_exhaustive]
pub struct Options {
    /// The token endpoint, e.g. `https://tenant.auth0.com/oauth/token`. Required.
    pub url: String,
    /// The gateway's client id; set together with `client_secret` for
    /// gateway-level credentials. Unset (or empty): application level.
    #[serde(rename = "clientID", deserialize_with = "non_empty")]
    pub client_id: Option<String>,
    /// The gateway's client secret.
    #[serde(deserialize_with = "non_empty_secret")]
    pub client_secret: Option<SecretString>,
    /// Sent as the `audience` form parameter. Required.
    pub audience: String,
    /// A claims expression ([`crate::claims`]) the token must satisfy.
    #[serde(deserialize_with = "non_empty")]
    pub claims: Option<String>,
    /// Header name → claim path, set on the upstream request.
    pub forward_headers: BTreeMap<String, String>,
    /// Claim path whose value is the access log's `ClientUsername`.
    #[serde(deserialize_with = "non_empty")]
    pub username_claim: Option<String>,
    /// How to talk to the token endpoint.
    pub client_config: ClientConfig,
    /// The token cache.
    pub store: StoreOptions,
    /// ccgate extension: how the client authenticates to the token endpoint.
    pub auth_method: AuthMethod,
    /// ccgate extension: scopes requested, sent space-separated as `scope`.
    pub scopes: Vec<String>,
    /// ccgate extension: resource indicators (RFC 8707), a string or a
    /// list; one `resource` form parameter each. With `resource` or
    /// `scopes` set, `audience` may be left out (then none is sent).
    #[serde(deserialize_with = "one_or_many")]
    pub resource: Vec<String>,
    /// ccgate extension: extra form parameters of the token request. They
    /// cannot set `grant_type`, `client_id`, `client_secret`,
    /// `client_assertion`, `client_assertion_type`, `scope`, `audience`
    /// or `resource` (in any case).
    pub parameters: BTreeMap<String, String>,
    /// ccgate extension: the PEM private key of `authMethod:
    /// private_key_jwt` (PKCS#8, PKCS#1 RSA or SEC1 EC).
    #[serde(deserialize_with = "non_empty_secret")]
    pub private_key: Option<SecretString>,
    /// ccgate extension: the `kid` of `private_key_jwt` assertions.
    #[serde(rename = "privateKeyID", deserialize_with = "non_empty")]
    pub private_key_id: Option<String>,
    /// ccgate extension: introspect access tokens that are not JWTs
    /// (RFC 7662); the introspection response is then their claims set.
    pub introspection: Option<IntrospectionOptions>,
    /// ccgate extension: verify JWT access tokens against a JWKS.
    pub verify: Option<VerifyOptions>,
}

/// `introspection`: the RFC 7662 endpoint that tells what an opaque access
/// token stands for. The credentials default to the middleware's own (at
/// application level, the caller's), the method to its `authMethod`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
#[non_exhaustive]
pub struct IntrospectionOptions {
    /// The introspection endpoint, e.g.
    /// `https://hydra.example.com/admin/oauth2/introspect`. Required.
    pub url: String,
    /// The client id that authenticates to it; set together with
    /// `client_secret` (unless `auth_method` needs no secret).
    #[serde(rename = "clientID", deserialize_with = "non_empty")]
    pub client_id: Option<String>,
    /// Its client secret (a URN allowed, resolved by the gateway).
    #[serde(deserialize_with = "non_empty_secret")]
    pub client_secret: Option<SecretString>,
    /// How to authenticate to it; unset: the middleware's `authMethod`.
    pub auth_method: Option<AuthMethod>,
}

/// `verify`: the checks a JWT access token must pass before it is
/// forwarded.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
#[non_exhaustive]
pub struct VerifyOptions {
    /// Where the authorization server publishes its signing keys (its
    /// `jwks_uri`). Required.
    #[serde(rename = "jwksURL")]
    pub jwks_url: String,
    /// The `iss` the token must carry, when set.
    #[serde(deserialize_with = "non_empty")]
    pub issuer: Option<String>,
    /// A value the token's `aud` must be or contain, when set.
    #[serde(deserialize_with = "non_empty")]
    pub audience: Option<String>,
}

/// `clientConfig`: the connection to the authorization server.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
#[non_exhaustive]
pub struct ClientConfig {
    /// TLS to the token endpoint.
    pub tls: TlsOptions,
    /// Bound on each attempt, in seconds. Default 5.
    pub timeout_seconds: u64,
    /// Retries after a connection error, timeout, 429 or 5xx. Default 3.
    pub max_retries: u32,
}

impl Default for ClientConfig {
    fn default() -> Self {
        Self {
            tls: TlsOptions::default(),
            timeout_seconds: 5,
            max_retries: 3,
        }
    }
}

/// `clientConfig.tls`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
#[non_exhaustive]
pub struct TlsOptions {
    /// PEM bundle of CA certificates trusted besides the system's.
    #[serde(deserialize_with = "non_empty")]
    pub ca: Option<String>,
    /// PEM client certificate (chain) for mutual TLS.
    #[serde(deserialize_with = "non_empty")]
    pub cert: Option<String>,
    /// PEM private key of `cert`.
    #[serde(deserialize_with = "non_empty_secret")]
    pub key: Option<SecretString>,
    /// Do not verify the server's certificate. For tests only: logged
    /// loudly once when the middleware is built.
    pub insecure_skip_verify: bool,
}

/// `store`: where tokens are cached.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
#[non_exhaustive]
pub struct StoreOptions {
    /// Prefix of every key ccgate writes to the store.
    pub key_prefix: String,
    /// 16, 24 or 32 bytes: the AES-GCM key sealing stored tokens (AES-128,
    /// -192 or -256) and the key of the cache-key HMAC.
    #[serde(deserialize_with = "non_empty_secret")]
    pub secret: Option<SecretString>,
    /// The Redis store, shared by every replica, behind the memory store.
    /// Unset: the memory store only. See `docs/redis.md`.
    pub redis: Option<RedisOptions>,
}

/// `store.redis`: where the shared store is and how to reach it.
///
/// The mode follows from the fields: `sentinel.masterSet` set ⇒ the
/// endpoints are Sentinels that name the master of that set; `cluster:
/// true` ⇒ the endpoints are seed nodes of a Redis Cluster; otherwise one
/// standalone server (the first endpoint; a standalone store has one).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
#[non_exhaustive]
pub struct RedisOptions {
    /// `host:port` of the server, the Sentinels or the Cluster seed nodes.
    /// Required.
    pub endpoints: Vec<String>,
    /// ACL user name (Redis 6+).
    #[serde(deserialize_with = "non_empty")]
    pub username: Option<String>,
    /// The password (`requirepass`, or the ACL user's).
    #[serde(deserialize_with = "non_empty_secret")]
    pub password: Option<SecretString>,
    /// The logical database, default 0. Ignored, with a warning, with
    /// `cluster: true` (a Cluster has database 0 only).
    pub database: u32,
    /// The endpoints are seed nodes of a Redis Cluster.
    pub cluster: bool,
    /// TLS to every endpoint. Present (even `{}`): TLS is on.
    pub tls: Option<RedisTlsOptions>,
    /// Sentinel: set `masterSet` to use Sentinel.
    pub sentinel: SentinelOptions,
}

/// `store.redis.tls`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
#[non_exhaustive]
pub struct RedisTlsOptions {
    /// PEM CA bundle trusted for Redis instead of the system's roots.
    #[serde(deserialize_with = "non_empty")]
    pub ca_bundle: Option<String>,
    /// PEM client certificate (chain) for `tls-auth-clients`.
    #[serde(deserialize_with = "non_empty")]
    pub cert: Option<String>,
    /// PEM private key of `cert`.
    #[serde(deserialize_with = "non_empty_secret")]
    pub key: Option<SecretString>,
    /// Do not verify the servers' certificates. For tests only: logged
    /// loudly once when the middleware is built.
    pub insecure_skip_verify: bool,
}

/// `store.redis.sentinel`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
#[non_exhaustive]
pub struct SentinelOptions {
    /// The name of the monitored master set. Set: the endpoints are
    /// Sentinels.
    #[serde(deserialize_with = "non_empty")]
    pub master_set: Option<String>,
    /// ACL user name for the Sentinels (may differ from `username`).
    #[serde(deserialize_with = "non_empty")]
    pub username: Option<String>,
    /// Password for the Sentinels (may differ from `password`).
    #[serde(deserialize_with = "non_empty_secret")]
    pub password: Option<SecretString>,
}

impl Options {
    /// Reads options from a JSON value, matching field names
    /// case-insensitively.
    ///
    /// # Errors
    ///
    /// An [`OptionsError`] naming the field: an unknown field, a field given
    /// twice in different cases, or a value of the wrong type. Values of
    /// secret fields are never shown.
    pub fn from_value(value: Value) -> Result<Self, OptionsError> {
        fields::from_value(value).map_err(|error| OptionsError::new(error.field(), error.reason()))
    }
}

fn non_empty<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    Ok(Option::<String>::deserialize(d)?.filter(|s| !s.is_empty()))
}

/// Reads a string or a list of strings as a list (`resource`).
fn one_or_many<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    struct OneOrMany;
    impl<'de> serde::de::Visitor<'de> for OneOrMany {
        type Value = Vec<String>;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a string or a list of strings")
        }
        fn visit_str<E: serde::de::Error>(self, text: &str) -> Result<Self::Value, E> {
            Ok(vec![text.to_owned()])
        }
        fn visit_unit<E: serde::de::Error>(self) -> Result<Self::Value, E> {
            Ok(Vec::new())
        }
        fn visit_none<E: serde::de::Error>(self) -> Result<Self::Value, E> {
            Ok(Vec::new())
        }
        fn visit_seq<A: serde::de::SeqAccess<'de>>(
            self,
            mut seq: A,
        ) -> Result<Self::Value, A::Error> {
            let mut items = Vec::new();
            while let Some(item) = seq.next_element::<String>()? {
                items.push(item);
            }
            Ok(items)
        }
    }
    d.deserialize_any(OneOrMany)
}

/// Reads a secret field. A type error would quote the value, so it gets a
/// reason that does not.
fn non_empty_secret<'de, D: serde::Deserializer<'de>>(
    d: D,
) -> Result<Option<SecretString>, D::Error> {
    let text = non_empty(d).map_err(|_| {
        serde::de::Error::custom("expected a string (the value is a secret and not shown)")
    })?;
    Ok(text.map(SecretString::from))
}

/// An option that is missing, malformed or inconsistent: the path of the
/// field (e.g. `clientConfig.timeoutSeconds`) and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OptionsError {
    field: String,
    reason: String,
}

impl OptionsError {
    /// An error about `field` (a dotted path; empty for the whole object).
    #[must_use]
    pub fn new(field: &str, reason: impl Into<String>) -> Self {
        Self {
            field: field.to_owned(),
            reason: reason.into(),
        }
    }

    /// The dotted path of the field.
    #[must_use]
    pub fn field(&self) -> &str {
        &self.field
    }

    /// Why the field is rejected.
    #[must_use]
    pub fn reason(&self) -> &str {
        &self.reason
    }
}

impl fmt::Display for OptionsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.field.is_empty() || self.field == "." {
            f.write_str(&self.reason)
        } else {
            write!(f, "`{}`: {}", self.field, self.reason)
        }
    }
}

impl std::error::Error for OptionsError {}

#[cfg(test)]
mod tests {
    use super::*;
    use secrecy::ExposeSecret;
    use serde_json::json;

    #[test]
    fn reads_any_case_under_the_canonical_name() {
        let options = Options::from_value(json!({"URL": "u", "clientId": "i", "CLIENTSECRET": "s", "clientconfig": {"TIMEOUTSECONDS": 3, "Tls": {"InsecureSkipVerify": true}}})).unwrap();
        assert_eq!(
            (options.url.as_str(), options.client_id.as_deref()),
            ("u", Some("i"))
        );
        assert_eq!(options.client_secret.unwrap().expose_secret(), "s");
        assert_eq!(options.client_config.timeout_seconds, 3);
        assert!(options.client_config.tls.insecure_skip_verify);
    }

    #[test]
    fn keeps_forward_header_names_as_written() {
        let value = json!({"forwardheaders": {"X-Group": "grp", "expires-at": "exp"}});
        let headers = Options::from_value(value).unwrap().forward_headers;
        assert_eq!(
            headers.keys().collect::<Vec<_>>(),
            ["X-Group", "expires-at"]
        );
    }

    #[test]
    fn unknown_and_duplicate_fields_are_errors_with_paths() {
        let err = Options::from_value(json!({"clientConfig": {"timeout": 3}})).unwrap_err();
        assert_eq!(err.field(), "clientConfig.timeout");
        assert!(
            err.to_string()
                .contains("unknown field (known: tls, timeoutSeconds, maxRetries)"),
            "{err}"
        );
        let err = Options::from_value(json!({"clientID": "a", "clientId": "b"})).unwrap_err();
        assert_eq!(err.field(), "clientID");
        assert!(err.to_string().contains("given twice"), "{err}");
        let err = Options::from_value(json!({"store": "redis"})).unwrap_err();
        assert_eq!(
            err.to_string(),
            "`store`: expected a mapping, found a string"
        );
    }

    #[test]
    fn nothing_is_the_defaults() {
        let options = Options::from_value(json!({"clientConfig": null, "store": {"redis": null}}));
        let options = options.unwrap();
        assert_eq!(options.client_config.timeout_seconds, 5);
        assert!(options.store.redis.is_none());
        assert!(Options::from_value(Value::Null).is_ok());
    }

    #[test]
    fn defaults_follow_the_seed() {
        let options = Options::from_value(json!({"url": "http://x", "audience": "a"})).unwrap();
        assert_eq!(options.client_config.timeout_seconds, 5);
        assert_eq!(options.client_config.max_retries, 3);
        assert_eq!(options.store.key_prefix, "");
        assert_eq!(options.auth_method, AuthMethod::Auto);
        assert!(options.client_id.is_none() && options.client_secret.is_none());
        assert!(options.forward_headers.is_empty() && options.scopes.is_empty());
    }

    #[test]
    fn empty_strings_mean_unset_as_in_traefik() {
        let options =
            Options::from_value(json!({"clientID": "", "clientSecret": "", "claims": ""})).unwrap();
        assert!(
            options.client_id.is_none()
                && options.client_secret.is_none()
                && options.claims.is_none()
        );
    }

    #[test]
    fn extensions_are_read() {
        let options = Options::from_value(
            json!({"authMethod": "client_secret_post", "scopes": ["read", "write"]}),
        )
        .unwrap();
        assert_eq!(options.auth_method, AuthMethod::ClientSecretPost);
        assert_eq!(options.scopes, ["read", "write"]);
    }

    #[test]
    fn client_assertion_and_form_extensions_are_read() {
        let options = Options::from_value(json!({
            "AuthMethod": "private_key_jwt", "privatekey": "-----BEGIN PRIVATE KEY-----\nc2VjcmV0\n",
            "privateKeyId": "k1", "Resource": "https://api.example.com/",
            "parameters": {"Tenant": "a"}
        }))
        .unwrap();
        assert_eq!(options.auth_method, AuthMethod::PrivateKeyJwt);
        assert_eq!(options.resource, ["https://api.example.com/"]);
        assert_eq!(options.private_key_id.as_deref(), Some("k1"));
        assert_eq!(
            options.parameters.get("Tenant").map(String::as_str),
            Some("a")
        );
        assert!(
            options
                .private_key
                .as_ref()
                .unwrap()
                .expose_secret()
                .contains("c2VjcmV0")
        );
        assert!(!format!("{options:?}").contains("c2VjcmV0"));
        let options =
            Options::from_value(json!({"resource": ["https://a/", "https://b/"]})).unwrap();
        assert_eq!(options.resource, ["https://a/", "https://b/"]);
        let err = Options::from_value(json!({"resource": 3})).unwrap_err();
        assert_eq!(err.field(), "resource");
        let err = Options::from_value(json!({"privateKey": 3})).unwrap_err();
        assert_eq!(err.field(), "privateKey");
    }

    #[test]
    fn introspection_and_verify_are_read_in_any_case() {
        let options = Options::from_value(json!({
            "Introspection": {"URL": "https://idp/introspect", "clientId": "rs",
                "ClientSecret": "introspection-pw", "authmethod": "client_secret_post"},
            "verify": {"JWKSUrl": "https://idp/jwks", "Issuer": "https://idp", "AUDIENCE": "api"}
        }))
        .unwrap();
        let introspection = options.introspection.as_ref().unwrap();
        assert_eq!(introspection.url, "https://idp/introspect");
        assert_eq!(introspection.client_id.as_deref(), Some("rs"));
        assert_eq!(
            introspection.auth_method,
            Some(AuthMethod::ClientSecretPost)
        );
        let verify = options.verify.as_ref().unwrap();
        assert_eq!(verify.jwks_url, "https://idp/jwks");
        assert_eq!(verify.issuer.as_deref(), Some("https://idp"));
        assert_eq!(verify.audience.as_deref(), Some("api"));
        assert!(!format!("{options:?}").contains("introspection-pw"));
        let err =
            Options::from_value(json!({"introspection": {"clientSecret": 12345678}})).unwrap_err();
        assert_eq!(err.field(), "introspection.clientSecret");
        assert!(!err.to_string().contains("12345678"), "{err}");
        let err = Options::from_value(json!({"verify": {"jwks": "x"}})).unwrap_err();
        assert_eq!(err.field(), "verify.jwks");
    }

    #[test]
    fn type_errors_name_the_field() {
        let err =
            Options::from_value(json!({"clientConfig": {"timeoutSeconds": "soon"}})).unwrap_err();
        assert_eq!(err.field(), "clientConfig.timeoutSeconds");
        let err = Options::from_value(json!({"authMethod": "magic"})).unwrap_err();
        assert_eq!(err.field(), "authMethod");
    }

    #[test]
    fn redis_options_are_read_in_any_case() {
        let options = Options::from_value(json!({"Store": {"REDIS": {
            "Endpoints": ["a:1", "b:2"], "userName": "app", "PASSWORD": "redis-pw",
            "database": 2, "Cluster": false,
            "tls": {"CABundle": "ca", "cert": "c", "key": "k", "insecureskipverify": true},
            "sentinel": {"MasterSet": "m", "username": "su", "password": "sentinel-pw"}
        }}}))
        .unwrap();
        let redis = options.store.redis.as_ref().unwrap();
        assert_eq!(redis.endpoints, ["a:1", "b:2"]);
        assert_eq!(redis.username.as_deref(), Some("app"));
        assert_eq!(redis.password.as_ref().unwrap().expose_secret(), "redis-pw");
        assert_eq!((redis.database, redis.cluster), (2, false));
        let tls = redis.tls.as_ref().unwrap();
        assert_eq!(tls.ca_bundle.as_deref(), Some("ca"));
        assert!(tls.insecure_skip_verify);
        assert_eq!(redis.sentinel.master_set.as_deref(), Some("m"));
        let debug = format!("{options:?}");
        for secret in ["redis-pw", "sentinel-pw", "\"k\""] {
            assert!(!debug.contains(secret), "{debug}");
        }
        let plain = Options::from_value(json!({"store": {"redis": {"endpoints": ["a:1"]}}}));
        assert!(
            plain.unwrap().store.redis.unwrap().tls.is_none(),
            "TLS off unless present"
        );
        for field in ["password", "tls.key", "sentinel.password"] {
            let mut value = json!({"endpoints": ["a:1"]});
            let (head, tail) = field.split_once('.').unwrap_or((field, ""));
            value[head] = if tail.is_empty() {
                json!(12345678)
            } else {
                json!({ tail: 12345678 })
            };
            let err = Options::from_value(json!({"store": {"redis": value}})).unwrap_err();
            assert_eq!(err.field(), format!("store.redis.{field}"));
            assert!(!err.to_string().contains("12345678"), "{err}");
        }
    }

    #[test]
    fn secret_values_never_appear_in_errors_or_debug() {
        let err = Options::from_value(json!({"clientSecret": 1234567890123456_u64})).unwrap_err();
        assert_eq!(err.field(), "clientSecret");
        assert!(!err.to_string().contains("1234567890123456"), "{err}");
        let err =
            Options::from_value(json!({"store": {"secret": ["0123456789abcdef"]}})).unwrap_err();
        assert!(!err.to_string().contains("0123456789abcdef"), "{err}");

        let options = Options::from_value(json!({
            "clientID": "id", "clientSecret": "hunter2-secret",
            "store": {"secret": "0123456789abcdef"},
            "clientConfig": {"tls": {"key": "-----BEGIN PRIVATE KEY-----xyz"}}
        }))
        .unwrap();
        assert_eq!(
            options.client_secret.as_ref().unwrap().expose_secret(),
            "hunter2-secret"
        );
        let debug = format!("{options:?}");
        for secret in ["hunter2-secret", "0123456789abcdef", "BEGIN PRIVATE KEY"] {
            assert!(!debug.contains(secret), "{debug}");
        }
    }
}
