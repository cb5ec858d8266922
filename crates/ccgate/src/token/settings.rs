//! The options of one token endpoint and their validation.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::time::Duration;

use reqwest::Url;
use secrecy::SecretString;

use super::{AuthMethod, BuildError, TlsSettings};

/// Default of `clientConfig.timeoutSeconds`.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(5);

/// Default of `clientConfig.maxRetries`.
pub const DEFAULT_MAX_RETRIES: u32 = 3;

/// The options of one token endpoint (SPEC §2, §2.2).
#[derive(Debug, Clone)]
pub struct EndpointSettings {
    /// The token endpoint: an absolute `http` or `https` URL without
    /// credentials or fragment (RFC 6749 §3.2).
    pub url: String,
    /// Sent as the `audience` form parameter when not empty; may be empty
    /// only when `resource` or `scopes` is set.
    pub audience: String,
    /// Sent space-separated as `scope` when not empty (RFC 6749 §3.3).
    pub scopes: Vec<String>,
    /// Resource indicators (RFC 8707 §2): one `resource` form parameter
    /// each, in order; each an absolute URI without fragment.
    pub resource: Vec<String>,
    /// Extra form parameters, sent after the others. None may be one the
    /// endpoint sets itself ([`RESERVED_PARAMETERS`], in any case).
    pub parameters: BTreeMap<String, String>,
    /// How the client authenticates (`authMethod`).
    pub auth_method: AuthMethod,
    /// PEM private key of `private_key_jwt` (PKCS#8, PKCS#1 RSA or SEC1
    /// EC; RSA ≥ 2048 bits, P-256 or Ed25519). Required by that method and
    /// unused by the others.
    pub private_key: Option<SecretString>,
    /// The JWS `kid` of `private_key_jwt` assertions, when set.
    pub private_key_id: Option<String>,
    /// `clientConfig.tls`.
    pub tls: TlsSettings,
    /// Bound of each attempt, from connecting to the end of the answer
    /// (`clientConfig.timeoutSeconds`).
    pub timeout: Duration,
    /// Retries after the first attempt (`clientConfig.maxRetries`).
    pub max_retries: u32,
}

impl EndpointSettings {
    /// Settings with the defaults of SPEC §2: no scopes, `auto`, no TLS
    /// options, [`DEFAULT_TIMEOUT`], [`DEFAULT_MAX_RETRIES`].
    #[must_use]
    pub fn new(url: impl Into<String>, audience: impl Into<String>) -> Self {
        Self {
            url: url.into(),
            audience: audience.into(),
            scopes: Vec::new(),
            resource: Vec::new(),
            parameters: BTreeMap::new(),
            auth_method: AuthMethod::Auto,
            private_key: None,
            private_key_id: None,
            tls: TlsSettings::default(),
            timeout: DEFAULT_TIMEOUT,
            max_retries: DEFAULT_MAX_RETRIES,
        }
    }

    /// Checks everything but TLS; returns the parsed URL.
    pub(super) fn validate(&self) -> Result<Url, BuildError> {
        let url = parse_url(&self.url)?;
        if self.audience.is_empty() && self.resource.is_empty() && self.scopes.is_empty() {
            return Err(BuildError::invalid(
                "audience",
                "must not be empty unless resource or scopes is set",
            ));
        }
        for resource in &self.resource {
            check_resource(resource)?;
        }
        for name in self.parameters.keys() {
            check_parameter(name).map_err(|reason| BuildError::invalid("parameters", reason))?;
        }
        if self.auth_method == AuthMethod::PrivateKeyJwt && self.private_key.is_none() {
            return Err(BuildError::invalid(
                "privateKey",
                "required with authMethod private_key_jwt",
            ));
        }
        for scope in &self.scopes {
            let valid = !scope.is_empty()
                && scope
                    .bytes()
                    .all(|b| b == 0x21 || (0x23..=0x5b).contains(&b) || (0x5d..=0x7e).contains(&b));
            if !valid {
                return Err(BuildError::invalid(
                    "scopes",
                    "each scope must be non-empty printable ASCII without space, `\"` or `\\` \
                     (RFC 6749 §3.3)",
                ));
            }
        }
        if self.auth_method == AuthMethod::TlsClientAuth
            && (self.tls.cert.is_none() || self.tls.key.is_none())
        {
            let field = if self.tls.cert.is_none() {
                "clientConfig.tls.cert"
            } else {
                "clientConfig.tls.key"
            };
            return Err(BuildError::invalid(
                field,
                "required with authMethod tls_client_auth (the client certificate authenticates)",
            ));
        }
        if self.timeout.is_zero() {
            return Err(BuildError::invalid(
                "clientConfig.timeoutSeconds",
                "must be greater than zero",
            ));
        }
        Ok(url)
    }
}

/// Form parameters the endpoint sets itself; `parameters` may not name
/// them, in any case.
pub const RESERVED_PARAMETERS: &[&str] = &[
    "grant_type",
    "client_id",
    "client_secret",
    "client_assertion",
    "client_assertion_type",
    "scope",
    "audience",
    "resource",
];

/// Why `name` cannot be an extra form parameter, if it cannot.
pub fn check_parameter(name: &str) -> Result<(), String> {
    if name.is_empty() {
        return Err("a parameter name must not be empty".to_owned());
    }
    if let Some(reserved) = RESERVED_PARAMETERS
        .iter()
        .find(|reserved| reserved.eq_ignore_ascii_case(name))
    {
        return Err(format!(
            "`{reserved}` is set by ccgate and cannot be a parameter (use the option of its own, if any)"
        ));
    }
    Ok(())
}

/// A resource indicator must be an absolute URI without fragment (RFC 8707
/// §2).
fn check_resource(text: &str) -> Result<(), BuildError> {
    let invalid = |reason: &str| BuildError::invalid("resource", reason.to_owned());
    let url = Url::parse(text)
        .map_err(|_| invalid("each resource must be an absolute URI (RFC 8707 §2)"))?;
    if url.fragment().is_some() {
        return Err(invalid("a resource must not have a fragment (RFC 8707 §2)"));
    }
    Ok(())
}

pub(crate) fn parse_url(text: &str) -> Result<Url, BuildError> {
    let invalid = |reason: &str| BuildError::invalid("url", reason.to_owned());
    let url = Url::parse(text).map_err(|e| invalid(&format!("not an absolute URL ({e})")))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(invalid("the scheme must be http or https"));
    }
    if url.host().is_none() {
        return Err(invalid("has no host"));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(invalid(
            "must not hold credentials (user:password@); set clientID and clientSecret",
        ));
    }
    if url.fragment().is_some() {
        return Err(invalid("must not have a fragment (RFC 6749 §3.2)"));
    }
    Ok(url)
}

/// Whether `url` names this host, which is never reached through a proxy.
pub(super) fn is_loopback(url: &Url) -> bool {
    let Some(host) = url.host_str() else {
        return false;
    };
    let host = host.trim_start_matches('[').trim_end_matches(']');
    match host.parse::<IpAddr>() {
        Ok(ip) => ip.is_loopback(),
        Err(_) => {
            let host = host.to_ascii_lowercase();
            host == "localhost" || host.ends_with(".localhost")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(url: &str) -> EndpointSettings {
        EndpointSettings::new(url, "https://api.example.com")
    }

    #[test]
    fn urls_must_be_plain_http_or_https() {
        for (url, reason) in [
            ("", "not an absolute URL"),
            ("/token", "not an absolute URL"),
            ("ftp://idp.test/token", "scheme must be http or https"),
            ("file:///token", "scheme must be http or https"),
            (
                "https://user:pw@idp.test/token",
                "must not hold credentials",
            ),
            ("https://user@idp.test/token", "must not hold credentials"),
            ("https://idp.test/token#frag", "must not have a fragment"),
        ] {
            let error = settings(url).validate().expect_err(url);
            assert_eq!(error.field(), Some("url"), "{url}");
            assert!(error.to_string().contains(reason), "{url}: {error}");
            assert!(!error.to_string().contains("pw@"), "{error}");
        }
        let endpoint = settings("HTTP://IdP.Test:8080/oauth/token?tenant=a")
            .validate()
            .expect("valid");
        assert_eq!(
            endpoint.as_str(),
            "http://idp.test:8080/oauth/token?tenant=a"
        );
    }

    #[test]
    fn audience_scopes_and_timeout_are_checked() {
        let error = EndpointSettings::new("http://idp.test/token", "")
            .validate()
            .expect_err("empty");
        assert_eq!(error.field(), Some("audience"));
        for (resource, scopes) in [
            (vec!["https://api/".to_owned()], vec![]),
            (vec![], vec!["read".to_owned()]),
        ] {
            EndpointSettings {
                resource,
                scopes,
                ..EndpointSettings::new("http://idp.test/token", "")
            }
            .validate()
            .expect("audience may be left out with resource or scopes");
        }
        for scope in ["", "a b", "quo\"te", "back\\slash", "tab\t", "ü"] {
            let error = EndpointSettings {
                scopes: vec!["ok".into(), scope.into()],
                ..settings("http://idp.test/token")
            }
            .validate()
            .expect_err(scope);
            assert_eq!(error.field(), Some("scopes"), "{scope:?}");
        }
        let error = EndpointSettings {
            timeout: Duration::ZERO,
            ..settings("http://idp.test/token")
        }
        .validate()
        .expect_err("zero timeout");
        assert_eq!(error.field(), Some("clientConfig.timeoutSeconds"));
    }

    #[test]
    fn resources_parameters_and_private_key_are_checked() {
        for resource in ["api", "/relative", "https://api/#frag"] {
            let error = EndpointSettings {
                resource: vec![resource.into()],
                ..settings("http://idp.test/token")
            }
            .validate()
            .expect_err(resource);
            assert_eq!(error.field(), Some("resource"), "{resource}");
        }
        for name in [
            "grant_type",
            "Client_ID",
            "CLIENT_SECRET",
            "client_assertion",
            "client_assertion_type",
            "Scope",
            "audience",
            "RESOURCE",
            "",
        ] {
            assert!(check_parameter(name).is_err(), "{name:?}");
        }
        assert!(check_parameter("tenant").is_ok());
        let error = EndpointSettings {
            auth_method: AuthMethod::PrivateKeyJwt,
            ..settings("http://idp.test/token")
        }
        .validate()
        .expect_err("no key");
        assert_eq!(error.field(), Some("privateKey"));
    }

    #[test]
    fn loopback_hosts_bypass_proxies() {
        for (url, loopback) in [
            ("http://127.0.0.1:1/t", true),
            ("http://127.8.9.10/t", true),
            ("http://[::1]:8080/t", true),
            ("http://localhost/t", true),
            ("http://LocalHost./t", false),
            ("http://idp.localhost/t", true),
            ("https://idp.example.com/t", false),
            ("http://10.0.0.1/t", false),
            ("http://[::2]/t", false),
        ] {
            let url = Url::parse(url).expect("url");
            assert_eq!(is_loopback(&url), loopback, "{url}");
        }
    }
}
