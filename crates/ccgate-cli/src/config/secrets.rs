//! Secret URNs: `urn:k8s:secret:NAME:KEY` in a middleware's options stands
//! for the value under `KEY` of the Secret `NAME` in the middleware's
//! namespace (`default` for middlewares of `http.middlewares`).
//!
//! Every string of the options is looked at, wherever it stands: a string
//! starting with `urn:k8s:` (in any case) must have exactly the form
//! `urn:k8s:secret:NAME:KEY`, with non-empty `NAME` and `KEY` free of `:`.
//! Values are held as [`SecretString`]s and never appear in an error.

use std::collections::BTreeMap;

use secrecy::{ExposeSecret, SecretString};
use serde_json::Value;

use super::error::{ConfigError, Origin, join};

/// The prefix that marks a string as a Kubernetes URN.
const URN_PREFIX: &str = "urn:k8s:";
/// The one form ccgate resolves.
const URN_FORM: &str = "urn:k8s:secret:NAME:KEY";

/// Secrets read from `kind: Secret` manifests, by namespace and name.
#[derive(Debug, Default)]
pub(super) struct Secrets {
    by_name: BTreeMap<(String, String), Secret>,
}

#[derive(Debug)]
struct Secret {
    origin: Origin,
    data: BTreeMap<String, SecretString>,
}

/// What resolving one middleware's options did: where each URN stood,
/// and the values put there (to keep them out of later messages).
#[derive(Debug, Default)]
pub(super) struct Resolved {
    /// Option path as written (e.g. `clientSecret`) → the URN it held.
    pub(super) urns: BTreeMap<String, String>,
    values: Vec<SecretString>,
}

impl Secrets {
    /// Adds the Secret `namespace/name` defined at `origin`.
    ///
    /// # Errors
    ///
    /// The same Secret defined twice.
    pub(super) fn insert(
        &mut self,
        namespace: &str,
        name: &str,
        origin: &Origin,
        data: BTreeMap<String, SecretString>,
    ) -> Result<(), ConfigError> {
        let key = (namespace.to_owned(), name.to_owned());
        if let Some(first) = self.by_name.get(&key) {
            let reason = format!(
                "Secret \"{name}\" of namespace \"{namespace}\" is defined twice: also in {}",
                first.origin
            );
            return Err(origin.error("metadata.name", reason));
        }
        let origin = origin.clone();
        self.by_name.insert(key, Secret { origin, data });
        Ok(())
    }

    #[cfg(feature = "kubernetes")]
    /// Adds or replaces the Secret `namespace/name` (from the Kubernetes
    /// API, where a name is unique).
    pub(super) fn replace(
        &mut self,
        namespace: &str,
        name: &str,
        origin: &Origin,
        data: BTreeMap<String, SecretString>,
    ) {
        let key = (namespace.to_owned(), name.to_owned());
        let origin = origin.clone();
        self.by_name.insert(key, Secret { origin, data });
    }

    #[cfg(feature = "kubernetes")]
    /// Removes the Secret `namespace/name`, if there.
    pub(super) fn remove(&mut self, namespace: &str, name: &str) {
        self.by_name
            .remove(&(namespace.to_owned(), name.to_owned()));
    }

    /// Replaces every secret URN in `value` (the options at `path` of
    /// `origin`) by the Secret's value from `namespace`.
    ///
    /// # Errors
    ///
    /// A malformed URN (showing it and the expected form), or one naming a
    /// Secret or key that does not exist (naming the URN, the namespace
    /// and what is missing).
    pub(super) fn resolve(
        &self,
        value: &mut Value,
        namespace: &str,
        origin: &Origin,
        path: &str,
    ) -> Result<Resolved, ConfigError> {
        let mut resolved = Resolved::default();
        self.walk(value, namespace, origin, path, path, &mut resolved)?;
        Ok(resolved)
    }

    fn walk(
        &self,
        value: &mut Value,
        namespace: &str,
        origin: &Origin,
        root: &str,
        path: &str,
        resolved: &mut Resolved,
    ) -> Result<(), ConfigError> {
        match value {
            Value::String(text) => {
                let Some(urn) = parse_urn(text).map_err(|reason| origin.error(path, reason))?
                else {
                    return Ok(());
                };
                let secret = self.lookup(urn, namespace).map_err(|reason| {
                    origin.error(path, format!("cannot resolve secret URN {text}: {reason}"))
                })?;
                let relative = path.strip_prefix(root).unwrap_or(path);
                let relative = relative.strip_prefix('.').unwrap_or(relative);
                resolved.urns.insert(relative.to_owned(), text.clone());
                resolved.values.push(secret.clone());
                *text = secret.expose_secret().to_owned();
            }
            Value::Array(items) => {
                for (index, item) in items.iter_mut().enumerate() {
                    let path = join(path, &format!("[{index}]"));
                    self.walk(item, namespace, origin, root, &path, resolved)?;
                }
            }
            Value::Object(fields) => {
                for (key, item) in fields.iter_mut() {
                    let path = join(path, key);
                    self.walk(item, namespace, origin, root, &path, resolved)?;
                }
            }
            Value::Null | Value::Bool(_) | Value::Number(_) => {}
        }
        Ok(())
    }

    fn lookup(&self, urn: Urn<'_>, namespace: &str) -> Result<&SecretString, String> {
        let key = (namespace.to_owned(), urn.name.to_owned());
        let Some(secret) = self.by_name.get(&key) else {
            let known: Vec<&str> = self
                .by_name
                .keys()
                .filter(|(ns, _)| ns == namespace)
                .map(|(_, name)| name.as_str())
                .collect();
            return Err(format!(
                "no Secret \"{}\" in namespace \"{namespace}\" ({})",
                urn.name,
                known_list("Secrets there", &known)
            ));
        };
        secret.data.get(urn.key).ok_or_else(|| {
            let keys: Vec<&str> = secret.data.keys().map(String::as_str).collect();
            format!(
                "Secret \"{}\" in namespace \"{namespace}\" has no key \"{}\" ({})",
                urn.name,
                urn.key,
                known_list("its keys", &keys)
            )
        })
    }
}

impl Resolved {
    /// `reason`, unless it contains a value read from a Secret (a type
    /// error quoting it), in which case a reason that does not.
    pub(super) fn redact(&self, reason: String) -> String {
        let leaks = self.values.iter().any(|value| {
            let value = value.expose_secret();
            !value.is_empty() && reason.contains(value)
        });
        if leaks {
            "invalid value read from a Secret (the value is not shown)".to_owned()
        } else {
            reason
        }
    }
}

fn known_list(what: &str, names: &[&str]) -> String {
    if names.is_empty() {
        format!("{what}: none")
    } else {
        format!("{what}: {}", names.join(", "))
    }
}

/// A parsed `urn:k8s:secret:NAME:KEY`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Urn<'a> {
    name: &'a str,
    key: &'a str,
}

/// `Ok(None)` for a string that is not a URN, `Ok(Some)` for a well-formed
/// one, and an error showing the URN and the expected form otherwise.
fn parse_urn(text: &str) -> Result<Option<Urn<'_>>, String> {
    let is_urn = text
        .get(..URN_PREFIX.len())
        .is_some_and(|prefix| prefix.eq_ignore_ascii_case(URN_PREFIX));
    if !is_urn {
        return Ok(None);
    }
    let parts: Vec<&str> = text.split(':').collect();
    match parts[..] {
        ["urn", "k8s", "secret", name, key] if !name.is_empty() && !key.is_empty() => {
            Ok(Some(Urn { name, key }))
        }
        _ => Err(format!(
            "malformed secret URN {text}: expected {URN_FORM} (a Secret in the middleware's namespace and one of its keys)"
        )),
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;
    use serde_json::json;

    fn secrets() -> Secrets {
        let mut secrets = Secrets::default();
        let data = BTreeMap::from([
            ("clientID".to_owned(), SecretString::from("gateway-id")),
            (
                "clientSecret".to_owned(),
                SecretString::from("hunter2-value"),
            ),
        ]);
        let origin = Origin::file(Path::new("k8s.yaml"));
        secrets
            .insert("default", "my-secret", &origin, data)
            .unwrap();
        secrets
    }

    fn resolve(value: &mut Value, namespace: &str) -> Result<Resolved, String> {
        let origin = Origin::file(Path::new("c.yaml"));
        secrets()
            .resolve(
                value,
                namespace,
                &origin,
                "spec.plugin.oAuthClientCredentials",
            )
            .map_err(|e| e.to_string())
    }

    #[test]
    fn parses_only_the_secret_form() {
        assert_eq!(parse_urn("https://idp"), Ok(None));
        assert_eq!(parse_urn("urn:ietf:x"), Ok(None));
        assert_eq!(
            parse_urn("urn:k8s:secret:a:b"),
            Ok(Some(Urn {
                name: "a",
                key: "b"
            }))
        );
        for bad in [
            "urn:k8s:my-secret:my-secret:clientID",
            "urn:k8s:secret:a",
            "urn:k8s:secret:a:b:c",
            "urn:k8s:secret::b",
            "urn:k8s:secret:a:",
            "URN:K8S:secret:a:b",
        ] {
            let err = parse_urn(bad).unwrap_err();
            assert!(err.contains(bad) && err.contains(URN_FORM), "{err}");
        }
    }

    #[test]
    fn replaces_urns_anywhere_and_records_them() {
        let mut value = json!({
            "clientId": "urn:k8s:secret:my-secret:clientID",
            "clientSecret": "urn:k8s:secret:my-secret:clientSecret",
            "audience": "https://api",
            "scopes": ["urn:k8s:secret:my-secret:clientID"],
        });
        let resolved = resolve(&mut value, "default").unwrap();
        assert_eq!(
            value,
            json!({"clientId": "gateway-id", "clientSecret": "hunter2-value", "audience": "https://api", "scopes": ["gateway-id"]})
        );
        assert_eq!(
            resolved.urns.keys().collect::<Vec<_>>(),
            ["clientId", "clientSecret", "scopes[0]"]
        );
        assert_eq!(
            resolved.redact("invalid type: string \"hunter2-value\"".to_owned()),
            "invalid value read from a Secret (the value is not shown)"
        );
        assert_eq!(resolved.redact("required".to_owned()), "required");
    }

    #[test]
    fn errors_name_urn_namespace_and_what_is_missing() {
        let mut value = json!({"clientSecret": "urn:k8s:secret:other:clientSecret"});
        assert_eq!(
            resolve(&mut value, "default").unwrap_err(),
            "c.yaml: spec.plugin.oAuthClientCredentials.clientSecret: cannot resolve secret URN \
             urn:k8s:secret:other:clientSecret: no Secret \"other\" in namespace \"default\" (Secrets there: my-secret)"
        );
        let mut value = json!({"clientSecret": "urn:k8s:secret:my-secret:secret"});
        assert_eq!(
            resolve(&mut value, "default").unwrap_err(),
            "c.yaml: spec.plugin.oAuthClientCredentials.clientSecret: cannot resolve secret URN \
             urn:k8s:secret:my-secret:secret: Secret \"my-secret\" in namespace \"default\" has no key \"secret\" (its keys: clientID, clientSecret)"
        );
        let mut value = json!({"clientSecret": "urn:k8s:secret:my-secret:clientSecret"});
        let err = resolve(&mut value, "prod").unwrap_err();
        assert!(
            err.contains("no Secret \"my-secret\" in namespace \"prod\" (Secrets there: none)"),
            "{err}"
        );
        let mut value = json!({"clientID": "urn:k8s:my-secret:my-secret:clientID"});
        let err = resolve(&mut value, "default").unwrap_err();
        assert!(err.starts_with("c.yaml: spec.plugin.oAuthClientCredentials.clientID: malformed secret URN urn:k8s:my-secret:my-secret:clientID: expected urn:k8s:secret:NAME:KEY"), "{err}");
        assert!(!err.contains("hunter2-value") && !err.contains("gateway-id"));
    }

    #[test]
    fn a_secret_defined_twice_names_both_files() {
        let mut secrets = secrets();
        let origin = Origin::file(Path::new("b.yaml"));
        let err = secrets
            .insert("default", "my-secret", &origin, BTreeMap::new())
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "b.yaml: metadata.name: Secret \"my-secret\" of namespace \"default\" is defined twice: also in k8s.yaml"
        );
    }
}
