//! `loadBalancer.healthCheck` and `servers[].weight`, in Traefik's shapes
//! (SPEC §11): how often and how a service's servers are asked whether
//! they are up, and each server's share of the requests.
//!
//! As in Traefik: `interval` 30 s, `timeout` 5 s, `method` GET; a check
//! passes on any 2xx or 3xx answer, or exactly `status` when it is set;
//! `scheme` and `port` replace the server URL's; `hostname` is the `Host`
//! header; `headers` are added. `mode: grpc` asks
//! `grpc.health.v1.Health/Check` (the whole server, service `""`) and
//! passes on `SERVING`. A weight of 0 takes the server out of the
//! rotation (Traefik ignores a non-positive weight); a negative or
//! fractional weight is an error.

use std::collections::BTreeMap;
use std::time::Duration;

use http::uri::PathAndQuery;
use http::{HeaderName, HeaderValue, Method};
use serde::Deserialize;
use serde_json::Value;

use super::error::{ConfigError, Origin};
use super::transport::parse_duration;

/// `interval` default (Traefik's).
pub(crate) const DEFAULT_INTERVAL: Duration = Duration::from_secs(30);
/// `timeout` default (Traefik's).
pub(crate) const DEFAULT_TIMEOUT: Duration = Duration::from_secs(5);
/// The largest `weight`: the weighted rotation is laid out once per load,
/// one slot per unit of weight, so it must stay small.
pub(crate) const MAX_WEIGHT: u64 = 1000;
/// The most headers a check may add.
const MAX_HEADERS: usize = 64;

/// How a check asks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Mode {
    /// An HTTP/1.1 request to `path`.
    Http,
    /// `grpc.health.v1.Health/Check` over HTTP/2.
    Grpc,
}

/// A service's health check. `Debug` does not show header values, which
/// may hold credentials for the health endpoint.
#[derive(Clone, PartialEq, Eq)]
pub(crate) struct HealthCheck {
    pub(crate) mode: Mode,
    /// `path` (with its query); `/` when absent in gRPC mode.
    pub(crate) path: PathAndQuery,
    pub(crate) interval: Duration,
    pub(crate) timeout: Duration,
    /// `scheme`: replaces the server URL's (`http`, `https`, `h2c`).
    pub(crate) scheme: Option<String>,
    /// `hostname`: the `Host` header of the check.
    pub(crate) hostname: Option<HeaderValue>,
    /// `port`: replaces the server URL's.
    pub(crate) port: Option<u16>,
    /// `headers`, added to the check.
    pub(crate) headers: Vec<(HeaderName, HeaderValue)>,
    pub(crate) method: Method,
    /// `status`: the one status that passes; any 2xx or 3xx when `None`.
    pub(crate) status: Option<u16>,
}

impl HealthCheck {
    /// Whether an HTTP answer of `status` passes.
    pub(crate) fn passes(&self, status: u16) -> bool {
        match self.status {
            Some(expected) => status == expected,
            None => (200..400).contains(&status),
        }
    }
}

impl std::fmt::Debug for HealthCheck {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let headers: Vec<&str> = self.headers.iter().map(|(name, _)| name.as_str()).collect();
        f.debug_struct("HealthCheck")
            .field("mode", &self.mode)
            .field("path", &self.path)
            .field("interval", &self.interval)
            .field("timeout", &self.timeout)
            .field("scheme", &self.scheme)
            .field("hostname", &self.hostname)
            .field("port", &self.port)
            .field("headers", &headers)
            .field("method", &self.method)
            .field("status", &self.status)
            .finish()
    }
}

/// `healthCheck` as written.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(super) struct RawHealthCheck {
    mode: Option<String>,
    path: Option<String>,
    interval: Option<Value>,
    timeout: Option<Value>,
    scheme: Option<String>,
    hostname: Option<String>,
    port: Option<Value>,
    #[serde(default)]
    headers: BTreeMap<String, Value>,
    method: Option<String>,
    status: Option<Value>,
}

/// Reads `healthCheck` of the load balancer at `path`
/// (`http.services.NAME.loadBalancer`).
///
/// # Errors
///
/// A [`ConfigError`] naming the field: an unknown mode or scheme, a bad
/// duration, port, status, method, path or header. Header values are
/// never quoted.
pub(super) fn read(
    raw: RawHealthCheck,
    origin: &Origin,
    path: &str,
) -> Result<HealthCheck, ConfigError> {
    let field = |name: &str| format!("{path}.healthCheck.{name}");
    let error = |name: &str, reason: String| origin.error(&field(name), reason);
    let mode = match raw.mode.as_deref().map(str::to_ascii_lowercase).as_deref() {
        None | Some("http") => Mode::Http,
        Some("grpc") => Mode::Grpc,
        Some(_) => {
            let written = raw.mode.unwrap_or_default();
            return Err(error(
                "mode",
                format!("unknown mode {written:?}: expected http or grpc"),
            ));
        }
    };
    let check_path = match (&raw.path, mode) {
        (Some(text), _) => {
            let parsed = text
                .parse::<PathAndQuery>()
                .ok()
                .filter(|_| text.starts_with('/'));
            parsed.ok_or_else(|| {
                error(
                    "path",
                    format!("{text:?} is not a path: expected e.g. \"/health\""),
                )
            })?
        }
        (None, Mode::Grpc) => PathAndQuery::from_static("/"),
        (None, Mode::Http) => {
            return Err(error(
                "path",
                "required in http mode, e.g. \"/health\"".to_owned(),
            ));
        }
    };
    let positive = |value: &Option<Value>, name: &str, default: Duration| match value {
        None => Ok(default),
        Some(value) => match parse_duration(value) {
            Ok(d) if d.is_zero() => Err(error(name, "must be more than 0".to_owned())),
            Ok(d) => Ok(d),
            Err(reason) => Err(error(name, reason)),
        },
    };
    let interval = positive(&raw.interval, "interval", DEFAULT_INTERVAL)?;
    let timeout = positive(&raw.timeout, "timeout", DEFAULT_TIMEOUT)?;
    let scheme = match raw.scheme.as_deref().map(str::to_ascii_lowercase) {
        None => None,
        Some(scheme) if matches!(scheme.as_str(), "http" | "https" | "h2c") => Some(scheme),
        Some(other) => {
            return Err(error(
                "scheme",
                format!("unknown scheme {other:?}: expected http, https or h2c"),
            ));
        }
    };
    let hostname = match raw.hostname {
        None => None,
        Some(name) => Some(
            name.parse::<http::uri::Authority>()
                .ok()
                .filter(|a| !a.host().is_empty() && !a.as_str().contains('@'))
                .and_then(|a| HeaderValue::from_str(a.as_str()).ok())
                .ok_or_else(|| error("hostname", format!("{name:?} is not a host name")))?,
        ),
    };
    let port = match raw.port {
        None => None,
        Some(value) => Some(
            value
                .as_u64()
                .filter(|n| (1..=65535).contains(n))
                .and_then(|n| u16::try_from(n).ok())
                .ok_or_else(|| {
                    error(
                        "port",
                        format!("must be a port number from 1 to 65535, not {value}"),
                    )
                })?,
        ),
    };
    if raw.headers.len() > MAX_HEADERS {
        return Err(error("headers", format!("at most {MAX_HEADERS} headers")));
    }
    let mut headers = Vec::with_capacity(raw.headers.len());
    for (name, value) in raw.headers {
        let header_name = HeaderName::from_bytes(name.as_bytes())
            .map_err(|_| error("headers", format!("{name:?} is not a header name")))?;
        if header_name == http::header::HOST {
            return Err(error(
                &format!("headers.{name}"),
                "set the Host header with healthCheck.hostname".to_owned(),
            ));
        }
        // The value may be a credential: never quoted.
        let header_value = value
            .as_str()
            .and_then(|v| HeaderValue::from_str(v).ok())
            .ok_or_else(|| {
                error(
                    &format!("headers.{name}"),
                    "expected a string of visible characters".to_owned(),
                )
            })?;
        headers.push((header_name, header_value));
    }
    let method = match raw.method {
        None => Method::GET,
        Some(text) => Method::from_bytes(text.to_ascii_uppercase().as_bytes())
            .ok()
            .filter(|_| !text.is_empty())
            .ok_or_else(|| error("method", format!("{text:?} is not an HTTP method")))?,
    };
    let status = match raw.status {
        None => None,
        Some(value) => match value.as_u64() {
            // 0 is Traefik's "not set".
            Some(0) => None,
            Some(n @ 100..=599) => u16::try_from(n).ok(),
            _ => {
                return Err(error(
                    "status",
                    format!("must be an HTTP status code from 100 to 599, not {value}"),
                ));
            }
        },
    };
    Ok(HealthCheck {
        mode,
        path: check_path,
        interval,
        timeout,
        scheme,
        hostname,
        port,
        headers,
        method,
        status,
    })
}

/// Reads `servers[INDEX].weight` at `path`: default 1; 0 takes the server
/// out of the rotation.
///
/// # Errors
///
/// A negative, fractional or non-numeric weight, or one above
/// [`MAX_WEIGHT`].
pub(super) fn weight(
    value: Option<&Value>,
    origin: &Origin,
    path: &str,
) -> Result<u32, ConfigError> {
    let Some(value) = value else {
        return Ok(1);
    };
    value
        .as_u64()
        .filter(|n| *n <= MAX_WEIGHT)
        .and_then(|n| u32::try_from(n).ok())
        .ok_or_else(|| {
            origin.error(
                path,
                format!("must be a whole number from 0 to {MAX_WEIGHT}, not {value}"),
            )
        })
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;
    use serde_json::json;

    fn read_check(value: Value) -> Result<HealthCheck, String> {
        let origin = Origin::file(Path::new("d.yaml"));
        let raw: RawHealthCheck = origin
            .read(value, "http.services.s.loadBalancer.healthCheck")
            .map_err(|e| e.to_string())?;
        read(raw, &origin, "http.services.s.loadBalancer").map_err(|e| e.to_string())
    }

    #[test]
    fn defaults_are_traefiks() {
        let check = read_check(json!({"path": "/health"})).unwrap();
        assert_eq!(check.mode, Mode::Http);
        assert_eq!(check.interval, Duration::from_secs(30));
        assert_eq!(check.timeout, Duration::from_secs(5));
        assert_eq!(check.method, Method::GET);
        assert!(check.passes(200) && check.passes(204) && check.passes(302));
        assert!(!check.passes(199) && !check.passes(404) && !check.passes(503));
    }

    #[test]
    fn every_field_is_read() {
        let check = read_check(json!({
            "Mode": "GRPC", "path": "/h?deep=1", "interval": "100ms", "timeout": 2,
            "scheme": "HTTPS", "hostname": "health.internal", "port": 8443,
            "headers": {"X-Probe": "yes"}, "method": "head", "status": 204
        }))
        .unwrap();
        assert_eq!(check.mode, Mode::Grpc);
        assert_eq!(check.path.as_str(), "/h?deep=1");
        assert_eq!(check.interval, Duration::from_millis(100));
        assert_eq!(check.timeout, Duration::from_secs(2));
        assert_eq!(check.scheme.as_deref(), Some("https"));
        assert_eq!(check.hostname.as_ref().unwrap(), "health.internal");
        assert_eq!(check.port, Some(8443));
        assert_eq!(check.headers[0].0, "x-probe");
        assert_eq!(check.method, Method::HEAD);
        assert!(check.passes(204) && !check.passes(200));
        assert_eq!(
            read_check(json!({"mode": "grpc"})).unwrap().path.as_str(),
            "/"
        );
    }

    #[test]
    fn errors_name_the_field() {
        let at = "d.yaml: http.services.s.loadBalancer.healthCheck.";
        for (value, expected) in [
            (
                json!({"path": "/h", "mode": "tcp"}),
                "mode: unknown mode \"tcp\"",
            ),
            (json!({}), "path: required in http mode"),
            (json!({"path": "health"}), "path: \"health\" is not a path"),
            (
                json!({"path": "/h", "interval": "soon"}),
                "interval: invalid duration",
            ),
            (
                json!({"path": "/h", "interval": 0}),
                "interval: must be more than 0",
            ),
            (
                json!({"path": "/h", "timeout": "-1s"}),
                "timeout: invalid duration \"-1s\": must not be negative",
            ),
            (
                json!({"path": "/h", "scheme": "ftp"}),
                "scheme: unknown scheme \"ftp\"",
            ),
            (
                json!({"path": "/h", "hostname": "a b"}),
                "hostname: \"a b\" is not a host name",
            ),
            (
                json!({"path": "/h", "port": 70000}),
                "port: must be a port number from 1 to 65535, not 70000",
            ),
            (
                json!({"path": "/h", "port": "80"}),
                "port: must be a port number",
            ),
            (
                json!({"path": "/h", "method": "GE T"}),
                "method: \"GE T\" is not an HTTP method",
            ),
            (
                json!({"path": "/h", "status": 99}),
                "status: must be an HTTP status code from 100 to 599, not 99",
            ),
            (
                json!({"path": "/h", "status": "ok"}),
                "status: must be an HTTP status code",
            ),
            (
                json!({"path": "/h", "headers": {"Host": "x"}}),
                "headers.Host: set the Host header with healthCheck.hostname",
            ),
            (
                json!({"path": "/h", "followRedirects": true}),
                "followRedirects: unknown field",
            ),
        ] {
            let err = read_check(value).unwrap_err();
            assert!(err.starts_with(at), "{err}");
            assert!(err.contains(expected), "{err}\n  expected: {expected}");
        }
    }

    #[test]
    fn header_values_are_never_shown() {
        let secret = "Bearer hunter2-health";
        let check =
            read_check(json!({"path": "/h", "headers": {"Authorization": secret}})).unwrap();
        assert!(!format!("{check:?}").contains("hunter2"));
        let err = read_check(json!({"path": "/h", "headers": {"Authorization": "hunter2\u{7}"}}))
            .unwrap_err();
        assert!(err.contains("headers.Authorization"), "{err}");
        assert!(!err.contains("hunter2"), "{err}");
    }

    #[test]
    fn weights_are_whole_numbers_up_to_the_maximum() {
        let origin = Origin::file(Path::new("d.yaml"));
        let at = "http.services.s.loadBalancer.servers[1].weight";
        assert_eq!(weight(None, &origin, at).unwrap(), 1);
        assert_eq!(weight(Some(&json!(0)), &origin, at).unwrap(), 0);
        assert_eq!(weight(Some(&json!(1000)), &origin, at).unwrap(), 1000);
        for bad in [json!(-1), json!(1.5), json!("3"), json!(1001)] {
            let err = weight(Some(&bad), &origin, at).unwrap_err().to_string();
            assert!(
                err.starts_with(&format!(
                    "d.yaml: {at}: must be a whole number from 0 to 1000"
                )),
                "{err}"
            );
        }
    }
}
