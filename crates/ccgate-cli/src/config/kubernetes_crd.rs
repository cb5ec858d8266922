//! `providers.kubernetesCRD` (SPEC §12), Traefik's name and fields:
//!
//! ```yaml
//! providers:
//!   kubernetesCRD:
//!     namespaces: [apps, payments]     # default: every namespace
//!     labelSelector: "team=payments"   # filters Middlewares
//!     endpoint: https://10.0.0.1:6443  # default: in-cluster, else kubeconfig
//!     token: urn:k8s:secret:kube:token # bearer token, a secret (§6)
//!     certAuthFilePath: ca.pem         # CA of the API server (PEM)
//!     forwardAuth: { entryPoint: auth } # /NAMESPACE/NAME on that entry point
//! ```
//!
//! Read here, whatever the binary was built with: the provider itself
//! (`crate::kubernetes`) is behind the `kubernetes` cargo feature, and a
//! configuration that needs it is an error in a build without it.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use secrecy::SecretString;
use serde::Deserialize;
use serde_json::Value;

use super::error::{ConfigError, Origin};
use super::secrets::Secrets;
use super::static_config::file_path;
use super::yaml::kind;

/// Where the fields stand, for messages.
const PATH: &str = "providers.kubernetesCRD";

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct Raw {
    #[serde(default)]
    namespaces: Vec<String>,
    label_selector: Option<String>,
    endpoint: Option<String>,
    /// Left as a value: a type error must not quote it.
    token: Option<Value>,
    cert_auth_file_path: Option<String>,
    #[serde(default, deserialize_with = "ccgate::options::fields::section")]
    forward_auth: Option<RawForwardAuth>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct RawForwardAuth {
    entry_point: String,
}

/// `providers.kubernetesCRD`, checked. `Debug` shows no token.
#[derive(Debug, Clone)]
pub(crate) struct KubernetesCrd {
    /// `namespaces`; empty means every namespace (cluster-wide requests).
    pub(crate) namespaces: Vec<String>,
    /// `labelSelector`, for Middlewares.
    pub(crate) label_selector: Option<String>,
    /// `endpoint`: the API server's URL.
    pub(crate) endpoint: Option<http::Uri>,
    /// `token`: the bearer token (a URN resolved), with `endpoint`.
    pub(crate) token: Option<SecretString>,
    /// `certAuthFilePath`, its certificates read and checked (DER).
    pub(crate) cert_authority: Option<(PathBuf, Vec<Vec<u8>>)>,
    /// `forwardAuth.entryPoint`.
    pub(crate) forward_auth_entry_point: Option<String>,
}

/// Reads `providers.kubernetesCRD` (`value`, from `origin`); a `token`
/// URN resolves from the file provider's Secrets of namespace `default`.
///
/// # Errors
///
/// A [`ConfigError`] naming the field: an unknown field, a namespace that
/// is not a DNS label, an endpoint that is not an http(s) URL, a token
/// that is not a string or an unresolvable URN (never showing a value), a
/// CA file that cannot be read or holds no PEM certificate, or a
/// forward-auth entry point that does not exist or is also ping's or
/// metrics'.
pub(super) fn read<E>(
    value: Value,
    origin: &Origin,
    base: &Path,
    secrets: &Secrets,
    entry_points: &BTreeMap<String, E>,
    shared: &[Option<&str>],
) -> Result<KubernetesCrd, ConfigError> {
    let raw: Raw = origin.read(value, PATH)?;
    for (index, namespace) in raw.namespaces.iter().enumerate() {
        if !is_dns_label(namespace) {
            let reason = format!(
                "invalid namespace {namespace:?}: expected a DNS label (lowercase letters, \
                 digits and `-`, at most 63)"
            );
            return Err(origin.error(&format!("{PATH}.namespaces[{index}]"), reason));
        }
    }
    let label_selector = match raw.label_selector {
        Some(selector) if selector.trim().is_empty() => None,
        other => other,
    };
    let endpoint = raw
        .endpoint
        .map(|text| {
            endpoint(&text).map_err(|reason| origin.error(&format!("{PATH}.endpoint"), reason))
        })
        .transpose()?;
    let token = match raw.token {
        None | Some(Value::Null) => None,
        Some(Value::String(text)) if text.is_empty() => {
            return Err(origin.error(&format!("{PATH}.token"), "must not be empty"));
        }
        Some(mut value @ Value::String(_)) => {
            secrets.resolve(
                &mut value,
                super::dynamic::DEFAULT_NAMESPACE,
                origin,
                &format!("{PATH}.token"),
            )?;
            let Value::String(text) = value else {
                unreachable!("a string resolves to a string")
            };
            Some(SecretString::from(text))
        }
        Some(other) => {
            let reason = format!("expected a string, found {} (not shown)", kind(&other));
            return Err(origin.error(&format!("{PATH}.token"), reason));
        }
    };
    let cert_authority = raw
        .cert_auth_file_path
        .map(|text| {
            let field = format!("{PATH}.certAuthFilePath");
            let file = file_path(&text, base, origin, &field)?;
            let certificates =
                certificates(&file).map_err(|reason| origin.error(&field, reason))?;
            Ok((file, certificates))
        })
        .transpose()?;
    let forward_auth_entry_point = match raw.forward_auth {
        None => None,
        Some(RawForwardAuth { entry_point }) => {
            let field = format!("{PATH}.forwardAuth.entryPoint");
            if !entry_points.contains_key(&entry_point) {
                let known: Vec<&str> = entry_points.keys().map(String::as_str).collect();
                let reason = format!(
                    "no entry point named {entry_point:?} (known: {})",
                    known.join(", ")
                );
                return Err(origin.error(&field, reason));
            }
            if shared.contains(&Some(entry_point.as_str())) {
                let reason = format!(
                    "entry point {entry_point:?} also serves ping or metrics; the forward-auth \
                     entry point answers only /NAMESPACE/NAME: give it one of its own"
                );
                return Err(origin.error(&field, reason));
            }
            Some(entry_point)
        }
    };
    Ok(KubernetesCrd {
        namespaces: raw.namespaces,
        label_selector,
        endpoint,
        token,
        cert_authority,
        forward_auth_entry_point,
    })
}

/// A DNS label (RFC 1123), as Kubernetes namespaces are.
pub(crate) fn is_dns_label(text: &str) -> bool {
    !text.is_empty()
        && text.len() <= 63
        && text
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !text.starts_with('-')
        && !text.ends_with('-')
}

fn endpoint(text: &str) -> Result<http::Uri, String> {
    let expected = "expected the API server's URL, such as https://10.0.0.1:6443";
    // A URL with user info may hold a password: it is never quoted.
    if text.contains('@') {
        return Err(format!(
            "credentials in the URL are not supported (the URL is not shown); use token: {expected}"
        ));
    }
    let uri: http::Uri = text
        .parse()
        .map_err(|_| format!("invalid URL {text:?}: {expected}"))?;
    if !matches!(uri.scheme_str(), Some("http" | "https")) || uri.host().is_none_or(str::is_empty) {
        return Err(format!("{text:?}: {expected}"));
    }
    Ok(uri)
}

/// The PEM certificates of `file`, as DER. Messages quote no content.
fn certificates(file: &Path) -> Result<Vec<Vec<u8>>, String> {
    use rustls_pki_types::CertificateDer;
    use rustls_pki_types::pem::PemObject as _;
    let text =
        std::fs::read(file).map_err(|error| format!("cannot read {}: {error}", file.display()))?;
    let certificates = CertificateDer::pem_slice_iter(&text)
        .map(|certificate| certificate.map(|c| c.as_ref().to_vec()))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|_| format!("{} is not PEM text", file.display()))?;
    if certificates.is_empty() {
        return Err(format!("{} holds no PEM certificate", file.display()));
    }
    Ok(certificates)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn read_json(value: Value, secrets: &Secrets) -> Result<KubernetesCrd, String> {
        let entry_points: BTreeMap<String, ()> = [
            ("web".to_owned(), ()),
            ("auth".to_owned(), ()),
            ("internal".to_owned(), ()),
        ]
        .into_iter()
        .collect();
        read(
            value,
            &Origin::file(Path::new("c.yaml")),
            Path::new(env!("CARGO_MANIFEST_DIR")),
            secrets,
            &entry_points,
            &[Some("internal"), None],
        )
        .map_err(|e| e.to_string())
    }

    #[test]
    fn reads_every_field() {
        let mut secrets = Secrets::default();
        let data = [("token".to_owned(), SecretString::from("hunter2-token"))]
            .into_iter()
            .collect();
        secrets
            .insert("default", "kube", &Origin::file(Path::new("s.yaml")), data)
            .unwrap();
        let dir = std::env::temp_dir().join(format!("ccgate-kcrd-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let ca = dir.join("ca.pem");
        let cert = rcgen::generate_simple_self_signed(vec!["kube".to_owned()]).unwrap();
        std::fs::write(&ca, cert.cert.pem()).unwrap();
        let k = read_json(
            json!({
                "namespaces": ["apps", "payments"],
                "LABELSELECTOR": "team=payments",
                "endpoint": "https://10.0.0.1:6443",
                "token": "urn:k8s:secret:kube:token",
                "certAuthFilePath": ca.to_str().unwrap(),
                "forwardAuth": {"entryPoint": "auth"},
            }),
            &secrets,
        )
        .unwrap();
        assert_eq!(k.namespaces, ["apps", "payments"]);
        assert_eq!(k.label_selector.as_deref(), Some("team=payments"));
        assert_eq!(
            k.endpoint.as_ref().unwrap().to_string(),
            "https://10.0.0.1:6443/"
        );
        use secrecy::ExposeSecret as _;
        assert_eq!(k.token.as_ref().unwrap().expose_secret(), "hunter2-token");
        assert_eq!(k.cert_authority.as_ref().unwrap().1.len(), 1);
        assert_eq!(k.forward_auth_entry_point.as_deref(), Some("auth"));
        let debug = format!("{k:?}");
        assert!(!debug.contains("hunter2"), "{debug}");
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn errors_name_the_field_and_never_the_token() {
        let secrets = Secrets::default();
        for (value, expected) in [
            (
                json!({"namespace": ["a"]}),
                "c.yaml: providers.kubernetesCRD.namespace: unknown field",
            ),
            (
                json!({"namespaces": ["ok", "Not_A_Label"]}),
                "c.yaml: providers.kubernetesCRD.namespaces[1]: invalid namespace \"Not_A_Label\"",
            ),
            (
                json!({"endpoint": "ftp://x"}),
                "c.yaml: providers.kubernetesCRD.endpoint: \"ftp://x\": expected the API server's URL",
            ),
            (
                json!({"endpoint": "https://user:hunter2@x"}),
                "c.yaml: providers.kubernetesCRD.endpoint: credentials in the URL are not supported (the URL is not shown)",
            ),
            (
                json!({"token": 123456789}),
                "c.yaml: providers.kubernetesCRD.token: expected a string, found a number (not shown)",
            ),
            (
                json!({"token": ""}),
                "c.yaml: providers.kubernetesCRD.token: must not be empty",
            ),
            (
                json!({"token": "urn:k8s:secret:kube:token"}),
                "c.yaml: providers.kubernetesCRD.token: cannot resolve secret URN urn:k8s:secret:kube:token: no Secret \"kube\" in namespace \"default\"",
            ),
            (
                json!({"certAuthFilePath": "no-such-ca.pem"}),
                "c.yaml: providers.kubernetesCRD.certAuthFilePath: cannot read ",
            ),
            (
                json!({"certAuthFilePath": "Cargo.toml"}),
                "c.yaml: providers.kubernetesCRD.certAuthFilePath: ",
            ),
            (
                json!({"forwardAuth": {"entryPoint": "nope"}}),
                "c.yaml: providers.kubernetesCRD.forwardAuth.entryPoint: no entry point named \"nope\" (known: auth, internal, web)",
            ),
            (
                json!({"forwardAuth": {"entryPoint": "internal"}}),
                "c.yaml: providers.kubernetesCRD.forwardAuth.entryPoint: entry point \"internal\" also serves ping or metrics",
            ),
        ] {
            let err = read_json(value, &secrets).unwrap_err();
            assert!(err.starts_with(expected), "{err}\n  expected: {expected}");
            assert!(
                !err.contains("hunter2") && !err.contains("123456789"),
                "{err}"
            );
        }
    }
}
