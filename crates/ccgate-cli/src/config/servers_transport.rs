//! `http.serversTransports.NAME`, in Traefik's shapes: how ccgate reaches a
//! service's servers (SPEC §11) — the forwarding timeouts, the idle pool's
//! limits, and TLS to `https://` servers (`serverName`, `rootCAs`,
//! `certificates`, `insecureSkipVerify`). A service names one with
//! `loadBalancer.serversTransport`; without one it gets the defaults.
//!
//! Files are read and checked when the configuration loads: every
//! `rootCAs` entry must hold PEM certificates, every client certificate a
//! chain and the private key that belongs to it. Paths are relative to
//! the main configuration file's folder; an entry that starts with
//! `-----BEGIN` is PEM text rather than a path. Messages about keys never
//! quote their content.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use rustls::sign::CertifiedKey;
use rustls_pki_types::pem::{self, PemObject};
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use serde::Deserialize;
use serde_json::Value;

use super::dynamic::{DEFAULT_NAMESPACE, Defined};
use super::error::{ConfigError, Origin, join};
use super::secrets::Secrets;
use super::transport::parse_duration;

/// `forwardingTimeouts.dialTimeout` default (Traefik's).
pub(crate) const DEFAULT_DIAL_TIMEOUT: Duration = Duration::from_secs(30);
/// `forwardingTimeouts.responseHeaderTimeout` default: nginx's
/// `proxy_read_timeout` (Traefik's is 0, no limit).
pub(crate) const DEFAULT_RESPONSE_HEADER_TIMEOUT: Duration = Duration::from_secs(60);
/// `forwardingTimeouts.idleConnTimeout` default (Traefik's).
pub(crate) const DEFAULT_IDLE_CONN_TIMEOUT: Duration = Duration::from_secs(90);
/// `maxIdleConnsPerHost` default (Traefik's).
pub(crate) const DEFAULT_MAX_IDLE_CONNS_PER_HOST: usize = 200;
/// What `maxIdleConnsPerHost: 0` means, as in Go (and so Traefik).
const GO_DEFAULT_MAX_IDLE_CONNS_PER_HOST: usize = 2;
/// The most accepted `maxIdleConnsPerHost`.
const MAX_IDLE_CONNS_PER_HOST: u64 = 1 << 16;

/// A servers transport, its files read. `None` timeouts are off (0).
#[derive(Debug, Clone)]
pub(crate) struct ServersTransport {
    /// `serverName`: the TLS server name (SNI, and the name the
    /// certificate must carry); the URL's host when `None`.
    pub(crate) server_name: Option<String>,
    /// `insecureSkipVerify`: accept any server certificate.
    pub(crate) insecure_skip_verify: bool,
    /// `rootCAs`: certificates trusted in addition to the system's roots.
    pub(crate) root_cas: Vec<CertificateDer<'static>>,
    /// `rootCAs` as written, for the summary: paths, or `<PEM text>`.
    pub(crate) root_ca_sources: Vec<String>,
    /// `certificates[0]`: the client certificate for mutual TLS.
    pub(crate) certificate: Option<ClientCertificate>,
    /// `maxIdleConnsPerHost`: idle connections kept per server.
    pub(crate) max_idle_conns_per_host: usize,
    /// `forwardingTimeouts.dialTimeout`: the TCP connection and the TLS
    /// handshake.
    pub(crate) dial_timeout: Option<Duration>,
    /// `forwardingTimeouts.responseHeaderTimeout`: from sending the request
    /// until the response's head.
    pub(crate) response_header_timeout: Option<Duration>,
    /// `forwardingTimeouts.idleConnTimeout`: how long an idle connection
    /// is kept.
    pub(crate) idle_conn_timeout: Option<Duration>,
    /// `disableHTTP2`: ALPN to `https` servers offers only `http/1.1`.
    pub(crate) disable_http2: bool,
    /// Where it was defined, for messages.
    pub(crate) origin: Origin,
    /// Its path, `http.serversTransports.NAME`.
    pub(crate) path: String,
}

impl Default for ServersTransport {
    fn default() -> Self {
        Self {
            server_name: None,
            insecure_skip_verify: false,
            root_cas: Vec::new(),
            root_ca_sources: Vec::new(),
            certificate: None,
            max_idle_conns_per_host: DEFAULT_MAX_IDLE_CONNS_PER_HOST,
            dial_timeout: Some(DEFAULT_DIAL_TIMEOUT),
            response_header_timeout: Some(DEFAULT_RESPONSE_HEADER_TIMEOUT),
            idle_conn_timeout: Some(DEFAULT_IDLE_CONN_TIMEOUT),
            disable_http2: false,
            origin: Origin::file(Path::new("")),
            path: String::new(),
        }
    }
}

impl ServersTransport {
    /// Logs the one WARN line of `insecureSkipVerify` (at load, in `serve`
    /// and `check`).
    pub(crate) fn warn_if_insecure(&self) {
        if self.insecure_skip_verify {
            tracing::warn!(
                transport = %self.path,
                file = %self.origin.file.display(),
                "insecureSkipVerify is on: the certificates of https servers using this \
                 servers transport are NOT verified, so anyone on the network path can read \
                 and change the requests, tokens included"
            );
        }
    }
}

/// A client certificate chain (leaf first) and its key. `Debug` shows
/// where they came from (a path, `<PEM text>` or a secret URN), never the
/// key.
#[derive(Clone)]
pub(crate) struct ClientCertificate {
    /// `certFile` as written (a path or a secret URN), or `<PEM text>`.
    pub(crate) cert_source: String,
    /// `keyFile` as written (a path or a secret URN), or `<PEM text>`.
    pub(crate) key_source: String,
    pub(crate) chain: Vec<CertificateDer<'static>>,
    key: Arc<PrivateKeyDer<'static>>,
}

impl ClientCertificate {
    /// The private key.
    pub(crate) fn key(&self) -> PrivateKeyDer<'static> {
        self.key.clone_key()
    }
}

impl std::fmt::Debug for ClientCertificate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientCertificate")
            .field("cert_source", &self.cert_source)
            .field("key_source", &self.key_source)
            .finish_non_exhaustive()
    }
}

/// `http.serversTransports.NAME` as written.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(super) struct RawServersTransport {
    server_name: Option<String>,
    insecure_skip_verify: Option<bool>,
    #[serde(default, rename = "rootCAs")]
    root_cas: Vec<String>,
    #[serde(default)]
    certificates: Vec<RawCertificate>,
    max_idle_conns_per_host: Option<Value>,
    #[serde(default, deserialize_with = "ccgate::options::fields::section")]
    forwarding_timeouts: Option<RawForwardingTimeouts>,
    #[serde(rename = "disableHTTP2")]
    disable_http2: Option<bool>,
}

impl std::fmt::Debug for RawServersTransport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // `certificates[].keyFile` may be a key's PEM text: not shown.
        f.debug_struct("RawServersTransport")
            .finish_non_exhaustive()
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct RawCertificate {
    cert_file: String,
    key_file: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct RawForwardingTimeouts {
    dial_timeout: Option<Value>,
    response_header_timeout: Option<Value>,
    idle_conn_timeout: Option<Value>,
}

/// Reads a servers transport as written: its secret URNs (SPEC §6, in
/// the `default` namespace) resolved from `secrets`, its files relative to
/// `base` (the main file's folder).
///
/// # Errors
///
/// As [`read`]; also an unresolvable URN, or a Secret's value that is not
/// PEM text. No message quotes a Secret's value.
pub(super) fn resolve(
    defined: Defined<Value>,
    secrets: &Secrets,
    base: &Path,
) -> Result<ServersTransport, ConfigError> {
    let Defined {
        origin,
        path,
        mut value,
    } = defined;
    let resolved = secrets.resolve(&mut value, DEFAULT_NAMESPACE, &origin, &path)?;
    let raw: RawServersTransport = ccgate::options::fields::from_value(value).map_err(|error| {
        origin.error(
            &join(&path, error.field()),
            resolved.redact(error.reason().to_owned()),
        )
    })?;
    read(raw, &origin, &path, base, &resolved.urns)
}

/// Reads the servers transport defined at `path` of `origin`, its files
/// relative to `base` (the main file's folder); `urns` are the fields
/// (relative to `path`) that were secret URNs, and the URNs.
///
/// # Errors
///
/// A [`ConfigError`] naming the field: a bad duration or number, a file
/// that cannot be read or holds no PEM certificate or key, a key that does
/// not belong to its certificate, more than one client certificate.
fn read(
    raw: RawServersTransport,
    origin: &Origin,
    path: &str,
    base: &Path,
    urns: &BTreeMap<String, String>,
) -> Result<ServersTransport, ConfigError> {
    let urn = |field: &str| {
        urns.iter()
            .find(|(written, _)| written.eq_ignore_ascii_case(field))
            .map(|(_, urn)| urn.as_str())
    };
    let mut transport = ServersTransport {
        origin: origin.clone(),
        path: path.to_owned(),
        ..ServersTransport::default()
    };
    let field = |name: &str| format!("{path}.{name}");
    if let Some(name) = raw.server_name {
        if rustls_pki_types::ServerName::try_from(name.as_str()).is_err() {
            let reason = format!("{name:?} is neither a DNS name nor an IP address");
            return Err(origin.error(&field("serverName"), reason));
        }
        transport.server_name = Some(name);
    }
    transport.insecure_skip_verify = raw.insecure_skip_verify.unwrap_or(false);
    transport.disable_http2 = raw.disable_http2.unwrap_or(false);
    for (index, entry) in raw.root_cas.iter().enumerate() {
        let relative = format!("rootCAs[{index}]");
        let field = field(&relative);
        let (text, source) = pem_or_file(entry, urn(&relative), base, origin, &field)?;
        let certificates = CertificateDer::pem_slice_iter(&text)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| origin.error(&field, format!("invalid PEM in {source}: {e}")))?;
        if certificates.is_empty() {
            let reason = format!("no `-----BEGIN CERTIFICATE-----` block in {source}");
            return Err(origin.error(&field, reason));
        }
        transport.root_cas.extend(certificates);
        transport.root_ca_sources.push(source);
    }
    if raw.certificates.len() > 1 {
        let reason = "only one client certificate is supported for now";
        return Err(origin.error(&field("certificates"), reason));
    }
    if let Some(certificate) = raw.certificates.first() {
        let cert = "certificates[0].certFile";
        let key = "certificates[0].keyFile";
        transport.certificate = Some(client_certificate(
            certificate,
            base,
            origin,
            (&field(cert), urn(cert)),
            (&field(key), urn(key)),
        )?);
    }
    if let Some(value) = raw.max_idle_conns_per_host {
        let reason =
            format!("must be a whole number from 0 to {MAX_IDLE_CONNS_PER_HOST}, not {value}");
        transport.max_idle_conns_per_host = match value
            .as_u64()
            .filter(|n| *n <= MAX_IDLE_CONNS_PER_HOST)
            .and_then(|n| usize::try_from(n).ok())
        {
            Some(0) => GO_DEFAULT_MAX_IDLE_CONNS_PER_HOST,
            Some(n) => n,
            None => return Err(origin.error(&field("maxIdleConnsPerHost"), reason)),
        };
    }
    if let Some(timeouts) = raw.forwarding_timeouts {
        let duration = |value: &Value, name: &str| {
            parse_duration(value)
                .map(|d| (!d.is_zero()).then_some(d))
                .map_err(|reason| {
                    origin.error(&field(&format!("forwardingTimeouts.{name}")), reason)
                })
        };
        if let Some(value) = &timeouts.dial_timeout {
            transport.dial_timeout = duration(value, "dialTimeout")?;
        }
        if let Some(value) = &timeouts.response_header_timeout {
            transport.response_header_timeout = duration(value, "responseHeaderTimeout")?;
        }
        if let Some(value) = &timeouts.idle_conn_timeout {
            transport.idle_conn_timeout = duration(value, "idleConnTimeout")?;
        }
    }
    Ok(transport)
}

/// The bytes of `entry` (PEM text, or a file relative to `base`; the
/// value of the secret `urn` when it was one, which must be PEM text) and
/// how to name it in messages and the summary.
fn pem_or_file(
    entry: &str,
    urn: Option<&str>,
    base: &Path,
    origin: &Origin,
    field: &str,
) -> Result<(Vec<u8>, String), ConfigError> {
    let pem = entry.trim_start().starts_with("-----BEGIN");
    if let Some(urn) = urn {
        if !pem {
            let reason = format!("the value of {urn} is not PEM text (the value is not shown)");
            return Err(origin.error(field, reason));
        }
        return Ok((entry.as_bytes().to_vec(), urn.to_owned()));
    }
    if pem {
        return Ok((entry.as_bytes().to_vec(), "<PEM text>".to_owned()));
    }
    if entry.is_empty() {
        return Err(origin.error(field, "must not be empty"));
    }
    let file = base.join(entry);
    let text = std::fs::read(&file)
        .map_err(|e| origin.error(field, format!("cannot read {}: {e}", file.display())))?;
    Ok((text, entry.to_owned()))
}

/// The client certificate of `raw`; `cert` and `key` are the fields'
/// paths and the URNs they held.
fn client_certificate(
    raw: &RawCertificate,
    base: &Path,
    origin: &Origin,
    (cert_field, cert_urn): (&str, Option<&str>),
    (key_field, key_urn): (&str, Option<&str>),
) -> Result<ClientCertificate, ConfigError> {
    let (text, cert_source) = pem_or_file(&raw.cert_file, cert_urn, base, origin, cert_field)?;
    let chain = CertificateDer::pem_slice_iter(&text)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| origin.error(cert_field, format!("invalid PEM in {cert_source}: {e}")))?;
    if chain.is_empty() {
        let reason = format!("no `-----BEGIN CERTIFICATE-----` block in {cert_source}");
        return Err(origin.error(cert_field, reason));
    }
    let (text, key_source) = pem_or_file(&raw.key_file, key_urn, base, origin, key_field)?;
    let key = PrivateKeyDer::from_pem_slice(&text).map_err(|error| {
        let reason = match error {
            pem::Error::NoItemsFound => format!(
                "no private key (a PEM `PRIVATE KEY`, `RSA PRIVATE KEY` or `EC PRIVATE KEY` \
                 block) in {key_source}"
            ),
            // Other PEM errors may quote bytes of the key: not shown.
            _ => format!("invalid PEM in {key_source}"),
        };
        origin.error(key_field, reason)
    })?;
    let provider = rustls::crypto::aws_lc_rs::default_provider();
    CertifiedKey::from_der(chain.clone(), key.clone_key(), &provider).map_err(|error| {
        let reason = match error {
            rustls::Error::InconsistentKeys(_) => format!(
                "the key in {key_source} does not belong to the certificate in {cert_source}"
            ),
            _ => "unusable client certificate or key".to_owned(),
        };
        origin.error(key_field, reason)
    })?;
    Ok(ClientCertificate {
        cert_source,
        key_source,
        chain,
        key: Arc::new(key),
    })
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn load(value: Value, base: &Path) -> Result<ServersTransport, String> {
        let origin = Origin::file(Path::new("d.yaml"));
        let raw: RawServersTransport = origin
            .read(value, "http.serversTransports.t")
            .map_err(|e| e.to_string())?;
        read(
            raw,
            &origin,
            "http.serversTransports.t",
            base,
            &BTreeMap::new(),
        )
        .map_err(|e| e.to_string())
    }

    #[test]
    fn defaults_are_traefiks_with_nginxs_response_header_timeout() {
        let t = load(json!({}), Path::new(".")).unwrap();
        assert_eq!(t.dial_timeout, Some(Duration::from_secs(30)));
        assert_eq!(t.response_header_timeout, Some(Duration::from_secs(60)));
        assert_eq!(t.idle_conn_timeout, Some(Duration::from_secs(90)));
        assert_eq!(t.max_idle_conns_per_host, 200);
        assert!(!t.insecure_skip_verify);
        assert!(t.certificate.is_none());
        assert!(!t.disable_http2);
    }

    #[test]
    fn disable_http2_is_read_as_a_strict_boolean() {
        let t = load(json!({"disableHTTP2": true}), Path::new(".")).unwrap();
        assert!(t.disable_http2);
        let error = load(json!({"disableHTTP2": "yes"}), Path::new(".")).unwrap_err();
        assert!(error.contains("disableHTTP2"), "{error}");
    }

    #[test]
    fn timeouts_read_as_traefik_writes_them_and_zero_is_no_limit() {
        let t = load(
            json!({"forwardingTimeouts": {"dialTimeout": "500ms", "responseHeaderTimeout": 0, "idleConnTimeout": "2m"}, "maxIdleConnsPerHost": 0}),
            Path::new("."),
        )
        .unwrap();
        assert_eq!(t.dial_timeout, Some(Duration::from_millis(500)));
        assert_eq!(t.response_header_timeout, None);
        assert_eq!(t.idle_conn_timeout, Some(Duration::from_secs(120)));
        assert_eq!(t.max_idle_conns_per_host, 2);
    }

    #[test]
    fn errors_name_the_field() {
        for (value, expected) in [
            (
                json!({"forwardingTimeouts": {"dialTimeout": "1x"}}),
                "d.yaml: http.serversTransports.t.forwardingTimeouts.dialTimeout: invalid duration",
            ),
            (
                json!({"serverName": "bad name!"}),
                "d.yaml: http.serversTransports.t.serverName: \"bad name!\" is neither a DNS name nor an IP address",
            ),
            (
                json!({"maxIdleConnsPerHost": -1}),
                "d.yaml: http.serversTransports.t.maxIdleConnsPerHost: must be a whole number",
            ),
            (
                json!({"rootCAs": ["missing.pem"]}),
                "d.yaml: http.serversTransports.t.rootCAs[0]: cannot read ./missing.pem",
            ),
            (
                json!({"rootCAs": ["-----BEGIN CERTIFICATE-----\nnot base64\n-----END CERTIFICATE-----\n"]}),
                "d.yaml: http.serversTransports.t.rootCAs[0]: invalid PEM in <PEM text>",
            ),
            (
                json!({"certificates": [{"certFile": "a.pem", "keyFile": "b.pem"}, {"certFile": "a.pem", "keyFile": "b.pem"}]}),
                "d.yaml: http.serversTransports.t.certificates: only one client certificate",
            ),
            (
                json!({"pingTimeout": "1s"}),
                "d.yaml: http.serversTransports.t.pingTimeout: unknown field",
            ),
        ] {
            let error = load(value, Path::new(".")).unwrap_err();
            assert!(error.contains(expected), "{error}\n  expected: {expected}");
        }
    }

    #[test]
    fn a_file_without_pem_is_an_error_that_quotes_no_key() {
        let dir = std::env::temp_dir().join(format!("ccgate-st-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("junk.pem"), "secret-key-material").unwrap();
        let error = load(json!({"rootCAs": ["junk.pem"]}), &dir).unwrap_err();
        assert!(
            error.contains("rootCAs[0]: no `-----BEGIN CERTIFICATE-----` block in junk.pem"),
            "{error}"
        );
        let key = rcgen::KeyPair::generate().unwrap();
        let cert = rcgen::CertificateParams::new(vec!["c".to_owned()])
            .unwrap()
            .self_signed(&key)
            .unwrap();
        std::fs::write(dir.join("cert.pem"), cert.pem()).unwrap();
        let error = load(
            json!({"certificates": [{"certFile": "cert.pem", "keyFile": "junk.pem"}]}),
            &dir,
        )
        .unwrap_err();
        assert!(
            error.contains("certificates[0].keyFile: no private key"),
            "{error}"
        );
        assert!(!error.contains("secret-key-material"), "{error}");
        // PEM text works as well as a file, and Debug hides the key.
        let t = load(
            json!({"certificates": [{"certFile": "cert.pem", "keyFile": key.serialize_pem()}]}),
            &dir,
        )
        .unwrap();
        let certificate = t.certificate.unwrap();
        assert_eq!(certificate.key_source, "<PEM text>");
        assert!(!format!("{certificate:?}").contains("PRIVATE"));
        let _ = std::fs::remove_dir_all(&dir);
    }
}
