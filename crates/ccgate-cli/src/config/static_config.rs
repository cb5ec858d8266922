//! The static part of the main file, in Traefik's shapes: `entryPoints`,
//! `ping`, `metrics`, `log`, `accessLog` and `providers` (plus an inline
//! `http` section, handed to [`super::dynamic`]).

use std::collections::BTreeMap;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};

use ccgate::options::fields;
use serde::Deserialize;
use serde_json::{Map, Value};

use super::edge;
use super::error::{ConfigError, Origin};
use super::model::{AccessLog, EntryPoint, Log, LogFormat, TlsFiles};
use super::transport::{self, RawTransport};

/// Traefik's default entry point name, used by `ping` and
/// `metrics.prometheus` when they name none.
pub(super) const DEFAULT_ENTRY_POINT: &str = "traefik";

/// The main file's configuration document. A section given with nothing
/// after it (`accessLog:`) is on, with its defaults ([`fields::section`]).
#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct Raw {
    #[serde(default)]
    entry_points: BTreeMap<String, RawEntryPoint>,
    #[serde(default, deserialize_with = "fields::section")]
    ping: Option<RawEntryPointRef>,
    #[serde(default, deserialize_with = "fields::section")]
    metrics: Option<RawMetrics>,
    #[serde(default, deserialize_with = "fields::section")]
    log: Option<RawLog>,
    #[serde(default, deserialize_with = "fields::section")]
    access_log: Option<RawAccessLog>,
    #[serde(default, deserialize_with = "fields::section")]
    providers: Option<RawProviders>,
    http: Option<Value>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct RawEntryPoint {
    address: String,
    #[serde(default, deserialize_with = "fields::section")]
    tls: Option<RawTls>,
    #[serde(default)]
    http: edge::RawHttp,
    #[serde(default)]
    forwarded_headers: edge::RawForwardedHeaders,
    /// `transport` (timeouts, grace period, connection limit): [`transport`].
    #[serde(default, deserialize_with = "fields::section")]
    transport: Option<RawTransport>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct RawTls {
    cert_file: String,
    key_file: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct RawEntryPointRef {
    entry_point: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct RawMetrics {
    #[serde(default, deserialize_with = "fields::section")]
    prometheus: Option<RawEntryPointRef>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct RawLog {
    level: Option<String>,
    format: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct RawAccessLog {
    format: Option<String>,
    file_path: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct RawProviders {
    #[serde(default, deserialize_with = "fields::section")]
    file: Option<RawFileProvider>,
    /// `providers.kubernetesCRD`: [`super::kubernetes_crd`].
    #[serde(
        default,
        rename = "kubernetesCRD",
        deserialize_with = "fields::section"
    )]
    kubernetes_crd: Option<Value>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct RawFileProvider {
    filename: Option<String>,
    directory: Option<String>,
    watch: Option<bool>,
}

/// The static configuration, paths joined to the main file's directory.
/// `Debug` leaves out the `http` section, which may hold secrets.
pub(super) struct Static {
    pub(super) entry_points: BTreeMap<String, EntryPoint>,
    /// `ping.entryPoint` (Traefik's default `traefik` when `ping` names none).
    pub(super) ping: Option<String>,
    /// `metrics.prometheus.entryPoint`, defaulted like `ping`.
    pub(super) metrics: Option<String>,
    pub(super) log: Log,
    pub(super) access_log: Option<AccessLog>,
    pub(super) provider: Option<FileProvider>,
    /// `providers.kubernetesCRD`, as written (read by [`super::kubernetes_crd`]
    /// once the Secrets its `token` may name are known).
    pub(super) kubernetes_crd: Option<Value>,
    /// The inline `http` section, not yet read.
    pub(super) http: Option<Value>,
}

impl std::fmt::Debug for Static {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Static")
            .field("entry_points", &self.entry_points)
            .field("ping", &self.ping)
            .field("metrics", &self.metrics)
            .field("log", &self.log)
            .field("access_log", &self.access_log)
            .field("provider", &self.provider)
            .field("kubernetes_crd", &self.kubernetes_crd.is_some())
            .finish_non_exhaustive()
    }
}

/// `providers.file`.
#[derive(Debug)]
pub(super) struct FileProvider {
    pub(super) source: ProviderSource,
    pub(super) watch: bool,
}

/// Where the file provider reads.
#[derive(Debug)]
pub(super) enum ProviderSource {
    /// `filename`.
    File(PathBuf),
    /// `directory`.
    Directory(PathBuf),
}

/// Reads the static configuration from the main file's configuration
/// document; `base` is the main file's directory.
///
/// # Errors
///
/// A [`ConfigError`] naming the field.
pub(super) fn read(
    value: Map<String, Value>,
    origin: &Origin,
    base: &Path,
) -> Result<Static, ConfigError> {
    let raw: Raw = origin.read(Value::Object(value), "")?;
    let mut entry_points = BTreeMap::new();
    for (name, raw) in raw.entry_points {
        let path = format!("entryPoints.{name}");
        let entry_point = entry_point(raw, origin, &path, base)?;
        entry_points.insert(name, entry_point);
    }
    if entry_points.is_empty() {
        let reason = "at least one entry point is required, e.g. entryPoints: { web: { address: \":8080\" } }";
        return Err(origin.error("entryPoints", reason));
    }
    let entry_point_ref = |raw: Option<RawEntryPointRef>, path: &str| {
        let Some(raw) = raw else { return Ok(None) };
        let (name, defaulted) = match raw.entry_point {
            Some(name) => (name, ""),
            None => (
                DEFAULT_ENTRY_POINT.to_owned(),
                " (none is named, so Traefik's default `traefik` is used)",
            ),
        };
        if entry_points.contains_key(&name) {
            return Ok(Some(name));
        }
        let known: Vec<&str> = entry_points.keys().map(String::as_str).collect();
        let reason = format!(
            "no entry point named {name:?}{defaulted} (known: {})",
            known.join(", ")
        );
        Err(origin.error(path, reason))
    };
    let ping = entry_point_ref(raw.ping, "ping.entryPoint")?;
    let metrics = entry_point_ref(
        raw.metrics.and_then(|m| m.prometheus),
        "metrics.prometheus.entryPoint",
    )?;
    let (file, kubernetes_crd) = match raw.providers {
        Some(providers) => (providers.file, providers.kubernetes_crd),
        None => (None, None),
    };
    Ok(Static {
        entry_points,
        ping,
        metrics,
        log: log(raw.log, origin)?,
        access_log: raw
            .access_log
            .map(|raw| access_log(raw, origin, base))
            .transpose()?,
        provider: file
            .map(|raw| file_provider(raw, origin, base))
            .transpose()?,
        kubernetes_crd,
        http: raw.http,
    })
}

fn entry_point(
    raw: RawEntryPoint,
    origin: &Origin,
    path: &str,
    base: &Path,
) -> Result<EntryPoint, ConfigError> {
    let address = parse_address(&raw.address)
        .map_err(|reason| origin.error(&format!("{path}.address"), reason))?;
    let tls = match raw.tls {
        Some(tls) => Some(TlsFiles {
            cert_file: file_path(
                &tls.cert_file,
                base,
                origin,
                &format!("{path}.tls.certFile"),
            )?,
            key_file: file_path(&tls.key_file, base, origin, &format!("{path}.tls.keyFile"))?,
        }),
        None => None,
    };
    let edge = edge::rules(raw.http, raw.forwarded_headers, origin, path)?;
    let transport = transport::read(raw.transport, origin, path)?;
    Ok(EntryPoint {
        address,
        tls,
        edge,
        transport,
    })
}

/// `host:port`, `[v6]:port` or `:port` (every IPv4 interface); an
/// optional `/tcp` suffix as Traefik allows.
fn parse_address(text: &str) -> Result<SocketAddr, String> {
    let invalid = || {
        format!(
            "invalid address {text:?}: expected IP:PORT (e.g. 127.0.0.1:8080, [::1]:8080) \
             or :PORT for every interface; host names are not resolved"
        )
    };
    let address = match text.rsplit_once('/') {
        Some((address, protocol)) if protocol.eq_ignore_ascii_case("tcp") => address,
        Some((_, protocol)) if protocol.eq_ignore_ascii_case("udp") => {
            return Err(format!("invalid address {text:?}: UDP is not supported"));
        }
        Some(_) => return Err(invalid()),
        None => text,
    };
    if let Some(port) = address.strip_prefix(':') {
        let port: u16 = port.parse().map_err(|_| invalid())?;
        return Ok(SocketAddr::from((Ipv4Addr::UNSPECIFIED, port)));
    }
    address.parse().map_err(|_| invalid())
}

fn log(raw: Option<RawLog>, origin: &Origin) -> Result<Log, ConfigError> {
    let mut log = Log::default();
    let Some(raw) = raw else { return Ok(log) };
    if let Some(level) = raw.level {
        log.level = match level.to_ascii_uppercase().as_str() {
            "TRACE" => tracing::Level::TRACE,
            "DEBUG" => tracing::Level::DEBUG,
            "INFO" => tracing::Level::INFO,
            "WARN" => tracing::Level::WARN,
            "ERROR" => tracing::Level::ERROR,
            _ => {
                let reason =
                    format!("unknown level {level:?} (known: TRACE, DEBUG, INFO, WARN, ERROR)");
                return Err(origin.error("log.level", reason));
            }
        };
    }
    if let Some(format) = raw.format {
        log.format = log_format(&format, origin, "log.format")?;
    }
    Ok(log)
}

fn access_log(raw: RawAccessLog, origin: &Origin, base: &Path) -> Result<AccessLog, ConfigError> {
    Ok(AccessLog {
        format: match raw.format {
            Some(format) => log_format(&format, origin, "accessLog.format")?,
            None => LogFormat::Json,
        },
        file_path: raw
            .file_path
            .map(|file| file_path(&file, base, origin, "accessLog.filePath"))
            .transpose()?,
    })
}

fn log_format(text: &str, origin: &Origin, path: &str) -> Result<LogFormat, ConfigError> {
    if text.eq_ignore_ascii_case("json") {
        Ok(LogFormat::Json)
    } else if text.eq_ignore_ascii_case("common") {
        Ok(LogFormat::Common)
    } else {
        let reason = format!("unknown format {text:?} (known: common, json)");
        Err(origin.error(path, reason))
    }
}

fn file_provider(
    raw: RawFileProvider,
    origin: &Origin,
    base: &Path,
) -> Result<FileProvider, ConfigError> {
    let path = "providers.file";
    let source = match (raw.filename, raw.directory) {
        (Some(file), None) => {
            ProviderSource::File(file_path(&file, base, origin, "providers.file.filename")?)
        }
        (None, Some(dir)) => {
            ProviderSource::Directory(file_path(&dir, base, origin, "providers.file.directory")?)
        }
        (Some(_), Some(_)) => {
            return Err(origin.error(path, "set either filename or directory, not both"));
        }
        (None, None) => return Err(origin.error(path, "set filename or directory")),
    };
    Ok(FileProvider {
        source,
        watch: raw.watch.unwrap_or(false),
    })
}

/// `text` as a path, joined to `base` when relative.
pub(super) fn file_path(
    text: &str,
    base: &Path,
    origin: &Origin,
    path: &str,
) -> Result<PathBuf, ConfigError> {
    if text.is_empty() {
        return Err(origin.error(path, "must not be empty"));
    }
    Ok(base.join(text))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn read_json(value: Value) -> Result<Static, String> {
        let Value::Object(map) = value else { panic!() };
        read(
            map,
            &Origin::file(Path::new("etc/c.yaml")),
            Path::new("etc"),
        )
        .map_err(|e| e.to_string())
    }

    #[test]
    fn reads_every_section() {
        let s = read_json(json!({
            "entrypoints": {"web": {"address": ":8080"}, "traefik": {"address": "127.0.0.1:9100"}, "secure": {"address": "[::1]:8443/tcp", "tls": {"certFile": "c.pem", "keyFile": "/k.pem"}}},
            "ping": {"entryPoint": "web"},
            "metrics": {"prometheus": {}},
            "log": {"level": "debug", "format": "JSON"},
            "accessLog": {},
            "providers": {"file": {"directory": "conf.d", "watch": true}},
            "http": {"routers": {}}
        }))
        .unwrap();
        assert_eq!(
            s.entry_points["web"].address,
            "0.0.0.0:8080".parse().unwrap()
        );
        let tls = s.entry_points["secure"].tls.as_ref().unwrap();
        assert_eq!(tls.cert_file, Path::new("etc/c.pem"));
        assert_eq!(tls.key_file, Path::new("/k.pem"));
        assert_eq!(s.ping.as_deref(), Some("web"));
        assert_eq!(s.metrics.as_deref(), Some(DEFAULT_ENTRY_POINT));
        assert_eq!(
            s.log,
            Log {
                level: tracing::Level::DEBUG,
                format: LogFormat::Json
            }
        );
        assert_eq!(
            s.access_log,
            Some(AccessLog {
                format: LogFormat::Json,
                file_path: None
            })
        );
        let provider = s.provider.unwrap();
        assert!(provider.watch);
        assert!(
            matches!(provider.source, ProviderSource::Directory(ref d) if d == Path::new("etc/conf.d"))
        );
        assert!(s.http.is_some());
    }

    #[test]
    fn defaults() {
        let s = read_json(json!({"entryPoints": {"web": {"address": "127.0.0.1:80"}}})).unwrap();
        assert_eq!(s.log, Log::default());
        assert!(s.access_log.is_none() && s.ping.is_none() && s.metrics.is_none());
        assert!(s.provider.is_none() && s.http.is_none());
        let s = read_json(json!({"entryPoints": {"web": {"address": ":1"}}, "accessLog": {"format": "common", "filePath": "log/access.log"}})).unwrap();
        assert_eq!(
            s.access_log,
            Some(AccessLog {
                format: LogFormat::Common,
                file_path: Some(PathBuf::from("etc/log/access.log"))
            })
        );
    }

    #[test]
    fn errors_name_the_field() {
        let web = json!({"web": {"address": ":80"}});
        for (value, expected) in [
            (
                json!({}),
                "etc/c.yaml: entryPoints: at least one entry point is required",
            ),
            (
                json!({"entryPoints": {"web": {"address": "localhost:80"}}}),
                "etc/c.yaml: entryPoints.web.address: invalid address \"localhost:80\": expected IP:PORT",
            ),
            (
                json!({"entryPoints": {"web": {"address": ":http"}}}),
                "entryPoints.web.address: invalid address",
            ),
            (
                json!({"entryPoints": {"web": {"address": ":53/udp"}}}),
                "UDP is not supported",
            ),
            (
                json!({"entryPoints": {"web": {}}}),
                "etc/c.yaml: entryPoints.web.address: required",
            ),
            (
                json!({"entryPoints": {"web": {"address": ":1", "tls": {"certFile": "c"}}}}),
                "entryPoints.web.tls.keyFile: required",
            ),
            (
                json!({"entryPoints": web, "log": {"level": "fatal"}}),
                "log.level: unknown level \"fatal\" (known: TRACE, DEBUG, INFO, WARN, ERROR)",
            ),
            (
                json!({"entryPoints": web, "accessLog": {"format": "clf"}}),
                "accessLog.format: unknown format \"clf\" (known: common, json)",
            ),
            (
                json!({"entryPoints": web, "providers": {"file": {}}}),
                "providers.file: set filename or directory",
            ),
            (
                json!({"entryPoints": web, "providers": {"file": {"filename": "a", "directory": "b"}}}),
                "providers.file: set either filename or directory, not both",
            ),
            (
                json!({"entryPoints": web, "providers": {"file": {"filename": "a", "watch": "yes"}}}),
                "providers.file.watch: invalid type: string \"yes\", expected a boolean",
            ),
            (
                json!({"entryPoints": web, "providers": {"docker": {}}}),
                "providers.docker: unknown field (known: file, kubernetesCRD)",
            ),
            (
                json!({"entryPoints": web, "ping": {"entryPoint": "admin"}}),
                "etc/c.yaml: ping.entryPoint: no entry point named \"admin\" (known: web)",
            ),
            (
                json!({"entryPoints": web, "metrics": {"prometheus": null}}),
                "etc/c.yaml: metrics.prometheus.entryPoint: no entry point named \"traefik\" (none is named, so Traefik's default `traefik` is used) (known: web)",
            ),
            (
                json!({"entryPoints": web, "api": {"dashboard": true}}),
                "etc/c.yaml: api: unknown field (known: entryPoints, ping, metrics, log, accessLog, providers, http)",
            ),
        ] {
            let err = read_json(value).unwrap_err();
            assert!(err.contains(expected), "{err}\n  expected: {expected}");
        }
    }
}
