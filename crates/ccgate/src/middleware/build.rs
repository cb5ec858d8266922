//! From [`Options`] to a [`Middleware`]: every check that needs more than
//! a value's type, each naming its field.

use std::sync::Arc;
use std::time::Duration;

use http::HeaderName;
use secrecy::{ExposeSecret, SecretString};

use super::{Inner, Middleware, UPSTREAM_401_MIN_AGE};
use crate::claims::{KeyPath, Rule};
use crate::credentials::Credentials;
use crate::decision::Rules;
use crate::metrics::Metrics;
use crate::options::{Options, OptionsError};
use crate::source::{Checks, TokenSource};
use crate::store::key::{KeyDeriver, KeyMaterial, Scope};
use crate::store::memory::{DEFAULT_MAX_ENTRIES, Memory};
#[cfg(feature = "redis")]
use crate::store::redis::{MAX_WAIT, Redis};
use crate::store::seal::Sealer;
use crate::token::{
    AuthMethod, BuildError, CredentialsLevel, Endpoint, EndpointSettings, Outcome, TlsSettings,
    check_parameter, http_client,
};
use crate::verify::Verifier;
use crate::verify::jwks::Jwks;

/// Longest accepted `clientConfig.timeoutSeconds`.
const MAX_TIMEOUT_SECONDS: u64 = 300;
/// Most accepted `clientConfig.maxRetries`: more would keep callers waiting
/// for minutes on a dead authorization server.
const MAX_RETRIES: u32 = 10;

/// Headers `forwardHeaders` may not set: they would replace the token,
/// misroute the request or break its framing.
const RESERVED_HEADERS: &[&str] = &[
    "authorization",
    "host",
    "content-length",
    "transfer-encoding",
    "connection",
    "keep-alive",
    "upgrade",
    "te",
    "trailer",
    "proxy-authorization",
    "proxy-connection",
];

/// Builds a [`Middleware`].
#[derive(Debug)]
#[must_use]
pub struct Builder {
    options: Options,
    name: String,
    metrics: Option<Metrics>,
    max_entries: u64,
    upstream_401_min_age: Duration,
    previous: Option<Middleware>,
}

impl Builder {
    pub(super) fn new(options: Options) -> Self {
        Self {
            options,
            name: "oauth-client-credentials".to_owned(),
            metrics: None,
            max_entries: DEFAULT_MAX_ENTRIES,
            upstream_401_min_age: UPSTREAM_401_MIN_AGE,
            previous: None,
        }
    }

    /// The name in metrics and logs (the gateway uses the middleware's
    /// configured name).
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.name = name.into();
        self
    }

    /// Counts into `metrics` (see [`Metrics::register`]).
    pub fn metrics(mut self, metrics: &Metrics) -> Self {
        self.metrics = Some(metrics.clone());
        self
    }

    /// Bounds the memory store (default [`DEFAULT_MAX_ENTRIES`]).
    pub fn max_entries(mut self, max_entries: u64) -> Self {
        self.max_entries = max_entries;
        self
    }

    /// How old a cached token must be before an upstream 401 drops it
    /// (default [`UPSTREAM_401_MIN_AGE`], 10 s). Zero drops a token on
    /// every upstream 401, which lets an upstream that always answers 401
    /// turn each request into a token request: only for an upstream that
    /// is trusted to answer 401 for revoked tokens alone.
    pub fn upstream_401_min_age(mut self, min_age: Duration) -> Self {
        self.upstream_401_min_age = min_age;
        self
    }

    /// Keeps the cached tokens of `previous` (a reload) when every option
    /// that decides which token a request gets — url, audience, scopes,
    /// resource, parameters, authMethod and its key, credentials,
    /// clientConfig, store — is unchanged; the
    /// claims, forwarded headers and username may differ, and decisions
    /// on cached tokens are remade under the new ones.
    pub fn reuse(mut self, previous: &Middleware) -> Self {
        self.previous = Some(previous.clone());
        self
    }

    /// Validates the options and builds the middleware. Nothing is sent
    /// to the network: a Redis store connects on first use, so building
    /// neither fails nor waits when Redis is down.
    ///
    /// # Errors
    ///
    /// An [`OptionsError`] naming the first invalid field.
    pub fn build(self) -> Result<Middleware, OptionsError> {
        let options = self.options;
        reject_unresolved_urns(&options)?;
        let gateway_credentials = gateway_credentials(&options)?;
        let rules = Arc::new(rules(&options)?);
        let endpoint = endpoint(&options)?;
        let checks = checks(&options)?;
        let secret = options
            .store
            .secret
            .as_ref()
            .map(|secret| secret.expose_secret().as_bytes());
        let sealer = secret
            .map(Sealer::new)
            .transpose()
            .map_err(|error| OptionsError::new("store.secret", error.to_string()))?;
        let metrics = self.metrics.unwrap_or_else(Metrics::unregistered);
        let redis = redis_store(&options, sealer, &self.name, &metrics)?;
        let shared = redis.is_some();
        // Replicas sharing Redis must derive the same keys: from the
        // secret, or else from a public key (see `store::key`).
        let material = match (secret, shared) {
            (Some(secret), _) => KeyMaterial::Secret(secret),
            (None, true) => KeyMaterial::Public,
            (None, false) => KeyMaterial::PerProcess,
        };
        let keys = KeyDeriver::new(
            material,
            &Scope {
                url: &options.url,
                audience: &options.audience,
                scopes: &options.scopes,
                resource: &options.resource,
                parameters: &options.parameters,
                auth_method: options.auth_method.as_str(),
                private_key: options
                    .private_key
                    .as_ref()
                    .map(ExposeSecret::expose_secret),
                private_key_id: options.private_key_id.as_deref(),
                checks: check_parts(&options),
            },
        );
        let token_settings = fingerprint(&options, &self.name, self.max_entries);
        // With Redis the tokens live on in the shared tier, so a reload
        // simply builds a new source.
        let source = match self.previous {
            Some(previous) if !shared && previous.inner.token_settings == token_settings => {
                previous.inner.source.clone()
            }
            _ => {
                let handles = metrics.handles(&self.name);
                let memory = Memory::new(self.max_entries)
                    .counting_failures(handles.token_outcome(Outcome::Internal));
                TokenSource::new(
                    endpoint,
                    keys,
                    memory,
                    #[cfg(feature = "redis")]
                    redis,
                    if gateway_credentials.is_some() {
                        CredentialsLevel::Gateway
                    } else {
                        CredentialsLevel::Application
                    },
                    checks,
                    handles,
                )
            }
        };
        Ok(Middleware {
            inner: Arc::new(Inner {
                name: self.name,
                gateway_credentials,
                source,
                rules,
                upstream_401_min_age: self.upstream_401_min_age,
                token_settings,
            }),
        })
    }
}

/// A hash of every option that decides which token a request gets, so a
/// reload can tell whether cached tokens still apply. Secrets enter the
/// hash only.
fn fingerprint(options: &Options, name: &str, max_entries: u64) -> [u8; 32] {
    let tls = &options.client_config.tls;
    let secret =
        |s: &Option<secrecy::SecretString>| s.as_ref().map(|s| s.expose_secret().to_owned());
    let parts = [
        Some(name.to_owned()),
        Some(options.url.clone()),
        Some(options.audience.clone()),
        Some(options.scopes.join(" ")),
        Some(options.auth_method.as_str().to_owned()),
        secret(&options.private_key),
        options.private_key_id.clone(),
        options.client_id.clone(),
        secret(&options.client_secret),
        tls.ca.clone(),
        tls.cert.clone(),
        secret(&tls.key),
        Some(tls.insecure_skip_verify.to_string()),
        Some(options.client_config.timeout_seconds.to_string()),
        Some(options.client_config.max_retries.to_string()),
        Some(options.store.key_prefix.clone()),
        secret(&options.store.secret),
        Some(max_entries.to_string()),
    ];
    // `store.redis`: a reload that adds, changes or removes it must not
    // keep a source that reads and writes another store.
    let redis = options.store.redis.as_ref().map(|redis| {
        let tls = redis.tls.as_ref();
        [
            Some(redis.endpoints.join(",")),
            redis.username.clone(),
            secret(&redis.password),
            Some(redis.database.to_string()),
            Some(redis.cluster.to_string()),
            tls.map(|tls| tls.insecure_skip_verify.to_string()),
            tls.and_then(|tls| tls.ca_bundle.clone()),
            tls.and_then(|tls| tls.cert.clone()),
            tls.and_then(|tls| secret(&tls.key)),
            redis.sentinel.master_set.clone(),
            redis.sentinel.username.clone(),
            secret(&redis.sentinel.password),
        ]
    });
    let mut parts = parts.to_vec();
    parts.push(Some(options.resource.len().to_string()));
    parts.extend(options.resource.iter().cloned().map(Some));
    parts.push(Some(options.parameters.len().to_string()));
    for (name, value) in &options.parameters {
        parts.extend([Some(name.clone()), Some(value.clone())]);
    }
    parts.extend(check_parts(options).map(|part| part.map(str::to_owned)));
    parts.push(Some(redis.is_some().to_string()));
    parts.extend(redis.into_iter().flatten());
    let mut context = aws_lc_rs::digest::Context::new(&aws_lc_rs::digest::SHA256);
    for part in &parts {
        match part {
            Some(text) => {
                context.update(&[1]);
                context.update(&(text.len() as u64).to_be_bytes());
                context.update(text.as_bytes());
            }
            None => context.update(&[0]),
        }
    }
    let mut hash = [0u8; 32];
    hash.copy_from_slice(context.finish().as_ref());
    hash
}

/// The `introspection` and `verify` options as the cache key and the
/// token settings see them (secrets enter only hashes).
fn check_parts(options: &Options) -> [Option<&str>; 7] {
    let introspection = options.introspection.as_ref();
    let verify = options.verify.as_ref();
    [
        introspection.map(|i| i.url.as_str()),
        introspection.and_then(|i| i.client_id.as_deref()),
        introspection
            .and_then(|i| i.client_secret.as_ref())
            .map(ExposeSecret::expose_secret),
        introspection.and_then(|i| i.auth_method.map(AuthMethod::as_str)),
        verify.map(|v| v.jwks_url.as_str()),
        verify.and_then(|v| v.issuer.as_deref()),
        verify.and_then(|v| v.audience.as_deref()),
    ]
}

/// The `introspection` endpoint and the `verify` checks.
fn checks(options: &Options) -> Result<Checks, OptionsError> {
    let mut checks = Checks::default();
    if let Some(introspection) = &options.introspection {
        if introspection.url.is_empty() {
            return Err(OptionsError::new("introspection.url", "required"));
        }
        let method = introspection.auth_method.unwrap_or(options.auth_method);
        let credentials = match (&introspection.client_id, &introspection.client_secret) {
            (_, Some(_)) if !method.uses_secret() => {
                return Err(OptionsError::new(
                    "introspection.clientSecret",
                    format!("must not be set with authMethod {method} (no client secret is sent)"),
                ));
            }
            (Some(id), Some(secret)) => Some(Credentials::new(id.clone(), secret.clone())),
            (Some(id), None) if !method.uses_secret() => {
                Some(Credentials::new(id.clone(), SecretString::from("")))
            }
            (Some(_), None) => {
                return Err(OptionsError::new(
                    "introspection.clientSecret",
                    "must be set when introspection.clientID is set",
                ));
            }
            (None, Some(_)) => {
                return Err(OptionsError::new(
                    "introspection.clientID",
                    "must be set when introspection.clientSecret is set",
                ));
            }
            (None, None) => None,
        };
        let settings = EndpointSettings {
            url: introspection.url.clone(),
            auth_method: method,
            ..endpoint_settings(options)?
        };
        let endpoint = Endpoint::new(settings).map_err(|error| match error {
            BuildError::Invalid {
                field: "url",
                reason,
            } => OptionsError::new("introspection.url", reason),
            BuildError::Invalid { field, reason } => {
                OptionsError::new(field, format!("{reason} (for introspection)"))
            }
            other => OptionsError::new("introspection", other.to_string()),
        })?;
        checks.introspection = Some((endpoint, credentials));
    }
    if let Some(verify) = &options.verify {
        const FIELD: &str = "verify.jwksURL";
        if verify.jwks_url.is_empty() {
            return Err(OptionsError::new(FIELD, "required"));
        }
        let url = crate::token::parse_url(&verify.jwks_url)
            .map_err(|error| OptionsError::new(FIELD, field_reason(error)))?;
        let client = &options.client_config;
        let timeout = Duration::from_secs(client.timeout_seconds);
        let tls = TlsSettings {
            ca: client.tls.ca.clone(),
            cert: client.tls.cert.clone(),
            key: client.tls.key.clone(),
            insecure_skip_verify: client.tls.insecure_skip_verify,
        };
        let http = http_client(&tls, &url, timeout).map_err(|error| match error {
            BuildError::Invalid { field, reason } => OptionsError::new(field, reason),
            other => OptionsError::new(FIELD, other.to_string()),
        })?;
        checks.verifier = Some(Verifier::new(
            Jwks::new(http, url, timeout),
            verify.issuer.clone(),
            verify.audience.clone(),
        ));
    }
    Ok(checks)
}

fn field_reason(error: BuildError) -> String {
    match error {
        BuildError::Invalid { reason, .. } => reason,
        other => other.to_string(),
    }
}

/// The Redis store of `store.redis`, if set, sealing with `sealer`.
#[cfg(feature = "redis")]
fn redis_store(
    options: &Options,
    sealer: Option<Sealer>,
    name: &str,
    metrics: &Metrics,
) -> Result<Option<Redis>, OptionsError> {
    let Some(redis) = &options.store.redis else {
        return Ok(None);
    };
    // A replica waits for another one's token (and a lock lives) for the
    // per-attempt timeout of the token endpoint, capped at MAX_WAIT.
    let wait = Duration::from_secs(options.client_config.timeout_seconds).min(MAX_WAIT);
    let store = Redis::new(
        redis,
        &options.store.key_prefix,
        sealer,
        wait,
        name,
        metrics.redis_handles(name),
    )?;
    Ok(Some(store))
}

/// Without the `redis` feature, `store.redis` is a configuration error:
/// silently caching per process would break what replicas rely on.
#[cfg(not(feature = "redis"))]
fn redis_store(
    options: &Options,
    _sealer: Option<Sealer>,
    _name: &str,
    _metrics: &Metrics,
) -> Result<Option<std::convert::Infallible>, OptionsError> {
    match options.store.redis {
        Some(_) => Err(OptionsError::new(
            "store.redis",
            "this build of ccgate has no Redis store (cargo feature `redis` is off)",
        )),
        None => Ok(None),
    }
}

fn gateway_credentials(options: &Options) -> Result<Option<Credentials>, OptionsError> {
    let method = options.auth_method;
    if options.private_key.is_some() && method != AuthMethod::PrivateKeyJwt {
        return Err(OptionsError::new(
            "privateKey",
            format!("only used with authMethod private_key_jwt (authMethod is {method})"),
        ));
    }
    if options.private_key_id.is_some() && method != AuthMethod::PrivateKeyJwt {
        return Err(OptionsError::new(
            "privateKeyID",
            format!("only used with authMethod private_key_jwt (authMethod is {method})"),
        ));
    }
    if !method.uses_secret() {
        // The key or the TLS client certificate authenticates: there is
        // no application level, where callers send a secret.
        if options.client_secret.is_some() {
            return Err(OptionsError::new(
                "clientSecret",
                format!("must not be set with authMethod {method} (no client secret is sent)"),
            ));
        }
        let Some(id) = &options.client_id else {
            return Err(OptionsError::new(
                "clientID",
                format!("required with authMethod {method} (it has no application level)"),
            ));
        };
        if method == AuthMethod::PrivateKeyJwt && options.private_key.is_none() {
            return Err(OptionsError::new(
                "privateKey",
                "required with authMethod private_key_jwt",
            ));
        }
        return Ok(Some(Credentials::new(id.clone(), SecretString::from(""))));
    }
    match (&options.client_id, &options.client_secret) {
        (Some(id), Some(secret)) => Ok(Some(Credentials::new(id.clone(), secret.clone()))),
        (None, None) => Ok(None),
        (Some(_), None) => Err(OptionsError::new(
            "clientSecret",
            "must be set when clientID is set",
        )),
        (None, Some(_)) => Err(OptionsError::new(
            "clientID",
            "must be set when clientSecret is set",
        )),
    }
}

/// The endpoint's settings; the endpoint checks URL, audience and scopes
/// itself ([`Endpoint::new`]), the bounds below are the middleware's.
fn endpoint_settings(options: &Options) -> Result<EndpointSettings, OptionsError> {
    let client = &options.client_config;
    if client.timeout_seconds == 0 || client.timeout_seconds > MAX_TIMEOUT_SECONDS {
        let reason = format!("must be between 1 and {MAX_TIMEOUT_SECONDS}");
        return Err(OptionsError::new("clientConfig.timeoutSeconds", reason));
    }
    if client.max_retries > MAX_RETRIES {
        let reason = format!("must be at most {MAX_RETRIES}");
        return Err(OptionsError::new("clientConfig.maxRetries", reason));
    }
    for name in options.parameters.keys() {
        check_parameter(name)
            .map_err(|reason| OptionsError::new(&format!("parameters.{name}"), reason))?;
    }
    Ok(EndpointSettings {
        url: options.url.clone(),
        audience: options.audience.clone(),
        scopes: options.scopes.clone(),
        resource: options.resource.clone(),
        parameters: options.parameters.clone(),
        auth_method: options.auth_method,
        private_key: options.private_key.clone(),
        private_key_id: options.private_key_id.clone(),
        tls: TlsSettings {
            ca: client.tls.ca.clone(),
            cert: client.tls.cert.clone(),
            key: client.tls.key.clone(),
            insecure_skip_verify: client.tls.insecure_skip_verify,
        },
        timeout: Duration::from_secs(client.timeout_seconds),
        max_retries: client.max_retries,
    })
}

fn endpoint(options: &Options) -> Result<Endpoint, OptionsError> {
    if options.url.is_empty() {
        return Err(OptionsError::new("url", "required"));
    }
    if options.audience.is_empty() && options.resource.is_empty() && options.scopes.is_empty() {
        return Err(OptionsError::new(
            "audience",
            "required (unless resource or scopes is set)",
        ));
    }
    Endpoint::new(endpoint_settings(options)?).map_err(|error| match error {
        BuildError::Invalid { field, reason } => OptionsError::new(field, reason),
        other => OptionsError::new("clientConfig", other.to_string()),
    })
}

fn rules(options: &Options) -> Result<Rules, OptionsError> {
    let claims = options
        .claims
        .as_deref()
        .map(Rule::parse)
        .transpose()
        .map_err(|error| OptionsError::new("claims", error.to_string()))?;
    let mut forward_headers = Vec::with_capacity(options.forward_headers.len());
    for (name, path) in &options.forward_headers {
        let field = format!("forwardHeaders.{name}");
        let header = HeaderName::from_bytes(name.as_bytes())
            .map_err(|_| OptionsError::new(&field, "not a valid HTTP header name"))?;
        if RESERVED_HEADERS.contains(&header.as_str()) {
            return Err(OptionsError::new(
                &field,
                "this header cannot be set from a claim",
            ));
        }
        let path = KeyPath::parse(path).map_err(|reason| OptionsError::new(&field, reason))?;
        forward_headers.push((header, path));
    }
    let username_claim = options
        .username_claim
        .as_deref()
        .map(KeyPath::parse)
        .transpose()
        .map_err(|reason| OptionsError::new("usernameClaim", reason))?;
    Ok(Rules::new(claims, forward_headers, username_claim))
}

/// Secret URNs are resolved by the gateway; one that reaches the library
/// was not, and would otherwise be sent as a literal secret.
fn reject_unresolved_urns(options: &Options) -> Result<(), OptionsError> {
    let tls = &options.client_config.tls;
    fn secret(value: &Option<SecretString>) -> Option<&str> {
        value.as_ref().map(ExposeSecret::expose_secret)
    }
    let mut fields = vec![
        ("clientID", options.client_id.as_deref()),
        ("clientSecret", secret(&options.client_secret)),
        ("privateKey", secret(&options.private_key)),
        ("privateKeyID", options.private_key_id.as_deref()),
        ("store.secret", secret(&options.store.secret)),
        ("clientConfig.tls.ca", tls.ca.as_deref()),
        ("clientConfig.tls.cert", tls.cert.as_deref()),
        ("clientConfig.tls.key", secret(&tls.key)),
    ];
    if let Some(introspection) = &options.introspection {
        fields.extend([
            ("introspection.clientID", introspection.client_id.as_deref()),
            (
                "introspection.clientSecret",
                secret(&introspection.client_secret),
            ),
        ]);
    }
    if let Some(redis) = &options.store.redis {
        fields.extend([
            ("store.redis.username", redis.username.as_deref()),
            ("store.redis.password", secret(&redis.password)),
            (
                "store.redis.sentinel.username",
                redis.sentinel.username.as_deref(),
            ),
            (
                "store.redis.sentinel.password",
                secret(&redis.sentinel.password),
            ),
        ]);
        if let Some(tls) = &redis.tls {
            fields.extend([
                ("store.redis.tls.caBundle", tls.ca_bundle.as_deref()),
                ("store.redis.tls.cert", tls.cert.as_deref()),
                ("store.redis.tls.key", secret(&tls.key)),
            ]);
        }
    }
    for (field, value) in fields {
        if let Some(urn) = value.filter(|v| v.starts_with("urn:k8s:")) {
            let reason = format!(
                "secret URN {urn} was not resolved (expected urn:k8s:secret:NAME:KEY, resolved by the gateway from a Secret)"
            );
            return Err(OptionsError::new(field, reason));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn fingerprint_of(store: &serde_json::Value) -> [u8; 32] {
        let options = Options::from_value(json!({
            "url": "http://127.0.0.1:1/token",
            "audience": "api",
            "store": store,
        }))
        .unwrap();
        fingerprint(&options, "cc", DEFAULT_MAX_ENTRIES)
    }

    #[test]
    fn client_authentication_and_form_options_are_part_of_the_token_settings() {
        let of = |extra: serde_json::Value| {
            let mut value = json!({"url": "http://127.0.0.1:1/token", "audience": "api"});
            value
                .as_object_mut()
                .unwrap()
                .extend(extra.as_object().unwrap().clone());
            fingerprint(
                &Options::from_value(value).unwrap(),
                "cc",
                DEFAULT_MAX_ENTRIES,
            )
        };
        let all = [
            of(json!({})),
            of(json!({"resource": "https://a/"})),
            of(json!({"resource": ["https://a/", "https://b/"]})),
            of(json!({"parameters": {"tenant": "a"}})),
            of(json!({"parameters": {"tenant": "b"}})),
            of(json!({"authMethod": "client_secret_jwt"})),
            of(json!({"authMethod": "private_key_jwt", "privateKey": "k1"})),
            of(json!({"authMethod": "private_key_jwt", "privateKey": "k2"})),
            of(json!({"authMethod": "private_key_jwt", "privateKey": "k2", "privateKeyID": "i"})),
        ];
        assert_eq!(all[1], of(json!({"resource": ["https://a/"]})));
        for (i, a) in all.iter().enumerate() {
            for b in &all[i + 1..] {
                assert_ne!(a, b, "{i}");
            }
        }
    }

    #[test]
    fn the_redis_store_is_part_of_the_token_settings() {
        let none = fingerprint_of(&json!({}));
        let one = fingerprint_of(&json!({"redis": {"endpoints": ["127.0.0.1:6379"]}}));
        let other = fingerprint_of(&json!({"redis": {"endpoints": ["127.0.0.1:6380"]}}));
        let db =
            fingerprint_of(&json!({"redis": {"endpoints": ["127.0.0.1:6379"], "database": 1}}));
        let password =
            fingerprint_of(&json!({"redis": {"endpoints": ["127.0.0.1:6379"], "password": "pw"}}));
        assert_eq!(none, fingerprint_of(&json!({})));
        assert_eq!(
            one,
            fingerprint_of(&json!({"redis": {"endpoints": ["127.0.0.1:6379"]}}))
        );
        let all = [none, one, other, db, password];
        for (i, a) in all.iter().enumerate() {
            for b in &all[i + 1..] {
                assert_ne!(a, b);
            }
        }
    }
}
