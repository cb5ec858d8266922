//! Objects of the Kubernetes API (the Kubernetes provider's, feature
//! `kubernetes`), read as the file provider reads their manifests
//! ([`super::kubernetes`]): a Middleware's `spec` and a Secret's `data`
//! and `stringData`. Messages name the object (`Middleware
//! NAMESPACE/NAME (API version)`) where a file's would name the file.

use serde_json::{Map, Value};

use super::dynamic::{self, Definitions, RawMiddleware};
use super::error::{ConfigError, Origin};
use super::kubernetes::secret_data;
use super::model::Middleware;
use super::secrets::Secrets;

/// The Secrets the Kubernetes provider has read from the API, by
/// namespace and name: what its middlewares' URNs resolve from.
#[derive(Debug, Default)]
pub(crate) struct ApiSecrets(Secrets);

/// Where an object of the Kubernetes API is, for messages:
/// `Middleware NAMESPACE/NAME (API version)` in place of a file.
pub(crate) fn api_origin(kind: &str, namespace: &str, name: &str, api_version: &str) -> Origin {
    let label = if api_version.is_empty() {
        format!("{kind} {namespace}/{name}")
    } else {
        format!("{kind} {namespace}/{name} ({api_version})")
    };
    Origin::file(std::path::Path::new(&label))
}

impl ApiSecrets {
    /// Adds or replaces the Secret `namespace/name` from its `data`
    /// (base64 values) and `stringData` fields.
    ///
    /// # Errors
    ///
    /// A `data` value that is not base64 of UTF-8 text (the error names
    /// the Secret and key, never the value); the Secret is left as it was.
    pub(crate) fn apply(
        &mut self,
        namespace: &str,
        name: &str,
        fields: &Map<String, Value>,
    ) -> Result<(), ConfigError> {
        let origin = api_origin("Secret", namespace, name, "");
        let mut fields: Map<String, Value> = ["data", "stringData"]
            .into_iter()
            .filter_map(|key| Some((key.to_owned(), fields.get(key)?.clone())))
            .collect();
        let data = secret_data(&mut fields, &origin)?;
        self.0.replace(namespace, name, &origin, data);
        Ok(())
    }

    /// Removes the Secret `namespace/name`.
    pub(crate) fn remove(&mut self, namespace: &str, name: &str) {
        self.0.remove(namespace, name);
    }
}

/// The middleware of a Middleware object from the Kubernetes API
/// (`namespace/name`, of `api_version`, whose fields besides `metadata`
/// are `fields`), its secret URNs resolved from `secrets` of its own
/// namespace; `None` when its spec is not `plugin.oAuthClientCredentials`
/// (another kind of middleware, which ccgate leaves to others).
///
/// # Errors
///
/// An invalid `spec` or option, or an unresolvable URN, as a
/// [`ConfigError`] whose place is `Middleware NAMESPACE/NAME (API
/// version)` and the field path in the object (`spec.plugin…`).
pub(crate) fn api_middleware(
    namespace: &str,
    name: &str,
    api_version: &str,
    fields: &Map<String, Value>,
    secrets: &ApiSecrets,
) -> Result<Option<Middleware>, ConfigError> {
    let spec = fields.get("spec").cloned().unwrap_or(Value::Null);
    let ours = spec
        .get("plugin")
        .and_then(|plugin| plugin.get("oAuthClientCredentials"))
        .is_some();
    if !ours {
        return Ok(None);
    }
    let origin = api_origin("Middleware", namespace, name, api_version);
    let raw: RawMiddleware = origin.read(spec, "spec")?;
    let mut definitions = Definitions::default();
    definitions.add_middleware(name.to_owned(), namespace, raw, &origin, "spec".to_owned())?;
    let defined = definitions
        .middlewares
        .remove(name)
        .expect("the middleware just added");
    dynamic::resolve_middleware(defined, &secrets.0).map(Some)
}
