//! [`ConfigError`]: what is wrong with a configuration, and where.

use std::fmt;
use std::path::{Path, PathBuf};

use ccgate::options::fields;
use serde::de::DeserializeOwned;
use serde_json::Value;

/// Where a value was read: a file, and in a file of several YAML documents
/// the line its document starts on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Origin {
    /// The file, as the configuration names it (relative paths are joined
    /// to the main file's directory).
    pub(crate) file: PathBuf,
    /// The first line of the document, when the file holds several.
    pub(crate) document: Option<u64>,
}

impl Origin {
    /// A whole file.
    pub(crate) fn file(file: &Path) -> Self {
        Self {
            file: file.to_owned(),
            document: None,
        }
    }

    /// An error about the field at `path` (dotted, e.g.
    /// `http.routers.api.service`) of this document.
    pub(crate) fn error(&self, path: &str, reason: impl Into<String>) -> ConfigError {
        ConfigError {
            origin: self.clone(),
            place: if path.is_empty() {
                Place::Whole
            } else {
                Place::Field(path.to_owned())
            },
            reason: reason.into(),
        }
    }

    /// Reads `value`, found at `path` of this document, into `T`
    /// ([`fields::from_value`]: names match case-insensitively). Only for
    /// values that hold no secret: a type error quotes the value.
    pub(crate) fn read<T: DeserializeOwned>(
        &self,
        value: Value,
        path: &str,
    ) -> Result<T, ConfigError> {
        fields::from_value(value)
            .map_err(|error| self.error(&join(path, error.field()), error.reason()))
    }
}

/// `path.key`, `path[i]`, or `key` at the top (or `path` for no key).
pub(crate) fn join(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_owned()
    } else if key.is_empty() {
        path.to_owned()
    } else if key.starts_with('[') {
        format!("{path}{key}")
    } else {
        format!("{path}.{key}")
    }
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file.display())?;
        if let Some(line) = self.document {
            write!(f, " (document at line {line})")?;
        }
        Ok(())
    }
}

/// Where in its file an error is.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Place {
    /// The file or document as a whole.
    Whole,
    /// A field, by its dotted path.
    Field(String),
    /// A position in the text (YAML syntax errors), 1-based.
    Position { line: u64, column: u64 },
}

/// A configuration that cannot be used: the file, the place in it and the
/// reason.
///
/// `Display` gives `FILE: PATH: REASON`, e.g.
/// `conf.d/api.yaml: http.routers.api.service: no service named "backnd" (known: backend)`;
/// `FILE:LINE:COLUMN: REASON` for YAML syntax errors; and, in a file of
/// several documents, `FILE (document at line N): PATH: REASON`.
///
/// # Security
///
/// No error carries a secret value: reasons about secret fields and about
/// values read from Secrets name the field or the URN, never the value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ConfigError {
    origin: Origin,
    place: Place,
    reason: String,
}

impl ConfigError {
    /// A YAML syntax error at `line`:`column` of `file`.
    pub(crate) fn syntax(file: &Path, line: u64, column: u64, reason: impl Into<String>) -> Self {
        Self {
            origin: Origin::file(file),
            place: Place::Position { line, column },
            reason: reason.into(),
        }
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.place {
            Place::Whole => write!(f, "{}: {}", self.origin, self.reason),
            Place::Field(path) => write!(f, "{}: {path}: {}", self.origin, self.reason),
            Place::Position { line, column } => write!(
                f,
                "{}:{line}:{column}: {}",
                self.origin.file.display(),
                self.reason
            ),
        }
    }
}

impl std::error::Error for ConfigError {}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use serde::Deserialize;
    use serde_json::json;

    use super::*;

    #[derive(Debug, Deserialize)]
    #[serde(rename_all = "camelCase", deny_unknown_fields)]
    #[allow(dead_code)]
    struct Shape {
        #[serde(default)]
        entry_points: BTreeMap<String, Address>,
        #[serde(default)]
        servers: Vec<Server>,
        kind: Option<Kind>,
    }

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Address {
        address: Value,
    }

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Server {
        url: String,
    }

    #[derive(Debug, Deserialize)]
    #[serde(rename = "service type", rename_all = "camelCase")]
    #[allow(dead_code)]
    enum Kind {
        LoadBalancer(Value),
    }

    #[derive(Debug, Deserialize)]
    #[allow(dead_code)]
    struct Router {
        rule: String,
        priority: Option<i64>,
    }

    fn read<T: DeserializeOwned>(value: Value, path: &str) -> Result<T, String> {
        let origin = Origin::file(Path::new("c.yaml"));
        origin.read(value, path).map_err(|e| e.to_string())
    }

    #[test]
    fn read_errors_name_the_file_and_the_full_path() {
        for (value, path, expected) in [
            (
                json!({"entryPoints": {"web": {"adress": ":80"}}}),
                "",
                "c.yaml: entryPoints.web.adress: unknown field (known: address)",
            ),
            (
                json!({"servers": [{"url": "a"}, {"uri": "b"}]}),
                "",
                "c.yaml: servers[1].uri: unknown field (known: url)",
            ),
            (
                json!({"servers": "x"}),
                "",
                "c.yaml: servers: expected a list, found a string",
            ),
            (
                json!({"entryPoints": {"web": {"address": 1, "ADDRESS": 2}}}),
                "",
                "c.yaml: entryPoints.web.address: given twice (field names match case-insensitively)",
            ),
            (
                json!({"kind": {"weighted": {}}}),
                "",
                "c.yaml: kind.weighted: unsupported service type `weighted` (ccgate supports loadBalancer)",
            ),
            (
                json!({"kind": {}}),
                "",
                "c.yaml: kind: empty: expected a service type (loadBalancer)",
            ),
            (
                json!({"kind": {"loadBalancer": 1, "mirroring": 2}}),
                "",
                "c.yaml: kind: holds 2 (loadBalancer, mirroring): give exactly one service type",
            ),
        ] {
            assert_eq!(read::<Shape>(value, path).unwrap_err(), expected);
        }
        let err = read::<Router>(json!({"priority": 1}), "http.routers.api").unwrap_err();
        assert_eq!(err, "c.yaml: http.routers.api.rule: required");
        let err = read::<Router>(json!({"rule": "r", "priority": "high"}), "r").unwrap_err();
        assert_eq!(
            err,
            "c.yaml: r.priority: invalid type: string \"high\", expected i64"
        );
    }

    #[test]
    fn read_takes_any_case_and_empty_sections() {
        let shape: Shape = read(
            json!({"ENTRYPOINTS": {"Web": {"Address": ":80"}}, "servers": [{"URL": "u"}], "kind": {"loadbalancer": 1}}),
            "",
        )
        .unwrap();
        assert_eq!(shape.entry_points["Web"].address, ":80");
        assert_eq!(shape.servers[0].url, "u");
        let shape: Shape = read(json!({"entryPoints": null, "servers": null}), "").unwrap();
        assert!(shape.entry_points.is_empty() && shape.servers.is_empty());
    }

    #[test]
    fn display_names_file_place_and_reason() {
        let origin = Origin::file(Path::new("conf.d/api.yaml"));
        assert_eq!(
            origin
                .error("http.routers.api.service", "no service named \"backnd\"")
                .to_string(),
            "conf.d/api.yaml: http.routers.api.service: no service named \"backnd\""
        );
        assert_eq!(
            origin.error("", "cannot read it").to_string(),
            "conf.d/api.yaml: cannot read it"
        );
        let document = Origin {
            document: Some(12),
            ..origin
        };
        assert_eq!(
            document.error("spec", "required").to_string(),
            "conf.d/api.yaml (document at line 12): spec: required"
        );
        assert_eq!(
            ConfigError::syntax(Path::new("ccgate.yaml"), 3, 7, "did not find expected key")
                .to_string(),
            "ccgate.yaml:3:7: did not find expected key"
        );
    }
}
