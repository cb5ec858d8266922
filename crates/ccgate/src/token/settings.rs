//! The options of one token endpoint and their validation.

use std::net::IpAddr;
use std::time::Duration;

use reqwest::Url;

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
    /// Sent as the `audience` form parameter; must not be empty.
    pub audience: String,
    /// Sent space-separated as `scope` when not empty (RFC 6749 §3.3).
    pub scopes: Vec<String>,
    /// How the client authenticates (`authMethod`).
    pub auth_method: AuthMethod,
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
            auth_method: AuthMethod::Auto,
            tls: TlsSettings::default(),
            timeout: DEFAULT_TIMEOUT,
            max_retries: DEFAULT_MAX_RETRIES,
        }
    }

    /// Checks everything but TLS; returns the parsed URL.
    pub(super) fn validate(&self) -> Result<Url, BuildError> {
        let url = parse_url(&self.url)?;
        if self.audience.is_empty() {
            return Err(BuildError::invalid("audience", "must not be empty"));
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
        if self.timeout.is_zero() {
            return Err(BuildError::invalid(
                "clientConfig.timeoutSeconds",
                "must be greater than zero",
            ));
        }
        Ok(url)
    }
}

fn parse_url(text: &str) -> Result<Url, BuildError> {
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
