//! Kubernetes manifests, accepted as they are in any file:
//!
//! - `kind: Middleware` (`apiVersion: traefik.io/v1alpha1`, or the older
//!   `traefik.containo.us/v1alpha1`) defines the middleware
//!   `metadata.name` from `spec`, in namespace `metadata.namespace`
//!   (default `default`);
//! - `kind: Secret` (`apiVersion: v1`) provides the values of secret URNs
//!   of its namespace: `data` holds base64 values, `stringData` plain
//!   ones (and wins for a key given in both, as in Kubernetes).
//!
//! A document is a manifest when it has a `kind` or `apiVersion` key
//! (Kubernetes' own spelling: these keys are case-sensitive). Any other
//! kind is an error naming it. Secret values never appear in errors.

use std::collections::BTreeMap;

use base64::Engine as _;
use secrecy::SecretString;
use serde_json::{Map, Value};

use super::dynamic::{DEFAULT_NAMESPACE, Definitions, RawMiddleware};
use super::error::{ConfigError, Origin};
use super::yaml::{Document, kind};

/// API versions of Traefik's Middleware resource.
const MIDDLEWARE_API_VERSIONS: &[&str] = &["traefik.io/v1alpha1", "traefik.containo.us/v1alpha1"];

/// Whether a document is a Kubernetes manifest.
pub(super) fn is_manifest(document: &Document) -> bool {
    document.value.contains_key("kind") || document.value.contains_key("apiVersion")
}

/// Reads a manifest into `definitions`.
///
/// # Errors
///
/// An unsupported kind or API version, an unknown field, a missing name,
/// or an invalid middleware `spec` or Secret `data`.
pub(super) fn read(document: Document, definitions: &mut Definitions) -> Result<(), ConfigError> {
    let Document { origin, mut value } = document;
    let kind = string(&mut value, "kind", "kind", &origin)?;
    let api_version = string(&mut value, "apiVersion", "apiVersion", &origin)?;
    match kind.as_str() {
        "Middleware" => {
            if !MIDDLEWARE_API_VERSIONS.contains(&api_version.as_str()) {
                let reason = format!(
                    "unsupported apiVersion {api_version:?} for kind Middleware (expected {})",
                    MIDDLEWARE_API_VERSIONS.join(" or ")
                );
                return Err(origin.error("apiVersion", reason));
            }
            only(&value, &["metadata", "spec"], &origin)?;
            let (name, namespace) = metadata(&mut value, &origin)?;
            let spec = value.remove("spec").unwrap_or(Value::Null);
            let raw: RawMiddleware = origin.read(spec, "spec")?;
            definitions.add_middleware(name, &namespace, raw, &origin, "spec".to_owned())
        }
        "Secret" => {
            if api_version != "v1" {
                let reason =
                    format!("unsupported apiVersion {api_version:?} for kind Secret (expected v1)");
                return Err(origin.error("apiVersion", reason));
            }
            only(
                &value,
                &["metadata", "type", "data", "stringData", "immutable"],
                &origin,
            )?;
            let (name, namespace) = metadata(&mut value, &origin)?;
            let data = secret_data(&mut value, &origin)?;
            definitions.secrets.insert(&namespace, &name, &origin, data)
        }
        other => Err(origin.error(
            "kind",
            format!("unsupported kind {other:?} (ccgate reads kind Middleware and kind Secret)"),
        )),
    }
}

/// Removes the string field `key`, found at `path` (required).
fn string(
    value: &mut Map<String, Value>,
    key: &str,
    path: &str,
    origin: &Origin,
) -> Result<String, ConfigError> {
    match value.remove(key) {
        Some(Value::String(text)) if !text.is_empty() => Ok(text),
        Some(Value::String(_) | Value::Null) | None => Err(origin.error(path, "required")),
        Some(other) => {
            Err(origin.error(path, format!("expected a string, found {}", kind(&other))))
        }
    }
}

/// Checks that `value` has no field besides `known` (and `kind` and
/// `apiVersion`, already taken).
fn only(value: &Map<String, Value>, known: &[&str], origin: &Origin) -> Result<(), ConfigError> {
    match value.keys().find(|key| !known.contains(&key.as_str())) {
        Some(key) => {
            let reason = format!(
                "unknown field (known: apiVersion, kind, {})",
                known.join(", ")
            );
            Err(origin.error(key, reason))
        }
        None => Ok(()),
    }
}

/// `metadata.name` and `metadata.namespace` (default `default`); other
/// metadata (labels, annotations, …) is accepted and ignored.
fn metadata(
    value: &mut Map<String, Value>,
    origin: &Origin,
) -> Result<(String, String), ConfigError> {
    let mut metadata = match value.remove("metadata") {
        Some(Value::Object(metadata)) => metadata,
        None | Some(Value::Null) => return Err(origin.error("metadata.name", "required")),
        Some(other) => {
            let reason = format!("expected a mapping, found {}", kind(&other));
            return Err(origin.error("metadata", reason));
        }
    };
    let name = string(&mut metadata, "name", "metadata.name", origin)?;
    let namespace = match metadata.remove("namespace") {
        None | Some(Value::Null) => DEFAULT_NAMESPACE.to_owned(),
        Some(Value::String(namespace)) if !namespace.is_empty() => namespace,
        Some(other) => {
            let reason = format!("expected a non-empty string, found {}", kind(&other));
            return Err(origin.error("metadata.namespace", reason));
        }
    };
    Ok((name, namespace))
}

/// The Secret's keys and values: `data` decoded from base64, then
/// `stringData`.
pub(super) fn secret_data(
    value: &mut Map<String, Value>,
    origin: &Origin,
) -> Result<BTreeMap<String, SecretString>, ConfigError> {
    let mut data = BTreeMap::new();
    for (field, encoded) in [("data", true), ("stringData", false)] {
        let entries = match value.remove(field) {
            None | Some(Value::Null) => continue,
            Some(Value::Object(entries)) => entries,
            Some(other) => {
                let reason = format!("expected a mapping of key to value, found {}", kind(&other));
                return Err(origin.error(field, reason));
            }
        };
        for (key, entry) in entries {
            let path = format!("{field}.{key}");
            let Value::String(text) = entry else {
                let reason = format!("expected a string, found {} (not shown)", kind(&entry));
                return Err(origin.error(&path, reason));
            };
            let text = if encoded {
                decode(&text).map_err(|reason| origin.error(&path, reason))?
            } else {
                text
            };
            data.insert(key, SecretString::from(text));
        }
    }
    Ok(data)
}

/// Decodes a `data` value. Errors never show the value or a byte of it.
fn decode(text: &str) -> Result<String, &'static str> {
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(text.trim())
        .map_err(|_| "not valid base64 (the value is not shown); use stringData for plain text")?;
    String::from_utf8(bytes).map_err(|_| "the decoded value is not UTF-8 text")
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use serde_json::json;

    use super::*;

    fn document(value: Value) -> Document {
        let Value::Object(value) = value else {
            panic!()
        };
        Document {
            origin: Origin::file(Path::new("k.yaml")),
            value,
        }
    }

    fn read_one(value: Value) -> Result<Definitions, String> {
        let mut definitions = Definitions::default();
        read(document(value), &mut definitions).map_err(|e| e.to_string())?;
        Ok(definitions)
    }

    #[test]
    fn reads_middlewares_of_both_api_versions() {
        for api_version in MIDDLEWARE_API_VERSIONS {
            let d = read_one(json!({
                "apiVersion": api_version, "kind": "Middleware",
                "metadata": {"name": "cc", "namespace": "prod", "labels": {"app": "x"}},
                "spec": {"plugin": {"oAuthClientCredentials": {"url": "http://idp"}}}
            }))
            .unwrap();
            assert_eq!(d.middlewares["cc"].path, "spec");
        }
    }

    #[test]
    fn reads_secret_data_and_string_data() {
        let d = read_one(json!({
            "apiVersion": "v1", "kind": "Secret", "type": "Opaque",
            "metadata": {"name": "s"},
            "data": {"a": "aHVudGVyMg==", "b": "b2xk"},
            "stringData": {"b": "new"}
        }))
        .unwrap();
        let mut options = json!({"x": "urn:k8s:secret:s:a", "y": "urn:k8s:secret:s:b"});
        let origin = Origin::file(Path::new("c.yaml"));
        d.secrets
            .resolve(&mut options, "default", &origin, "o")
            .unwrap();
        assert_eq!(options, json!({"x": "hunter2", "y": "new"}));
    }

    #[test]
    fn errors_name_the_field_and_never_the_value() {
        for (value, expected) in [
            (
                json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "m"}}),
                "k.yaml: kind: unsupported kind \"ConfigMap\" (ccgate reads kind Middleware and kind Secret)",
            ),
            (
                json!({"apiVersion": "traefik.io/v1", "kind": "Middleware"}),
                "k.yaml: apiVersion: unsupported apiVersion \"traefik.io/v1\" for kind Middleware (expected traefik.io/v1alpha1 or traefik.containo.us/v1alpha1)",
            ),
            (
                json!({"apiVersion": "apps/v1", "kind": "Secret"}),
                "k.yaml: apiVersion: unsupported apiVersion \"apps/v1\" for kind Secret (expected v1)",
            ),
            (json!({"kind": "Secret"}), "k.yaml: apiVersion: required"),
            (
                json!({"apiVersion": "v1", "kind": "Secret"}),
                "k.yaml: metadata.name: required",
            ),
            (
                json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"namespace": "x"}}),
                "k.yaml: metadata.name: required",
            ),
            (
                json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s"}, "status": {}}),
                "k.yaml: status: unknown field (known: apiVersion, kind, metadata, type, data, stringData, immutable)",
            ),
            (
                json!({"apiVersion": "traefik.io/v1alpha1", "kind": "Middleware", "metadata": {"name": "m"}, "spec": {"headers": {}}}),
                "k.yaml: spec.headers: unsupported middleware type `headers` (ccgate supports plugin.oAuthClientCredentials)",
            ),
            (
                json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s"}, "data": {"k": "not base64 hunter2!"}}),
                "k.yaml: data.k: not valid base64 (the value is not shown)",
            ),
            (
                json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s"}, "data": {"k": "/w=="}}),
                "k.yaml: data.k: the decoded value is not UTF-8 text",
            ),
            (
                json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s"}, "stringData": {"k": 1234567}}),
                "k.yaml: stringData.k: expected a string, found a number (not shown)",
            ),
        ] {
            let err = read_one(value).unwrap_err();
            assert!(err.contains(expected), "{err}\n  expected: {expected}");
            for secret in ["hunter2", "1234567"] {
                assert!(!err.contains(secret), "{err}");
            }
        }
    }
}
