//! Traefik's field names, matched case-insensitively: rewrites every key of
//! a value to its canonical spelling (`entrypoints` → `entryPoints`) before
//! typed deserialization, and rejects unknown fields with their path.
//!
//! An empty section (`accessLog:` with nothing after it) is read as an
//! empty mapping, or an empty list where a list is expected.

use serde::de::DeserializeOwned;
use serde_json::{Map, Value};

use super::error::{ConfigError, Origin};
use super::yaml::kind;

/// The shape of a part of the configuration.
#[derive(Debug)]
pub(super) enum Shape {
    /// A value whose type serde checks.
    Any,
    /// A mapping with these canonical field names.
    Object(&'static [(&'static str, Shape)]),
    /// A mapping holding exactly one of these fields, each a kind of thing
    /// (`loadBalancer` for a service): another key is "unsupported `what`".
    OneOf {
        /// The kinds.
        fields: &'static [(&'static str, Shape)],
        /// What the keys are, e.g. "middleware type".
        what: &'static str,
        /// What ccgate supports, for messages, e.g. "plugin.oAuthClientCredentials".
        supported: &'static str,
    },
    /// A mapping with names of the user's choice (routers by name).
    Map(&'static Shape),
    /// A list.
    List(&'static Shape),
}

/// Rewrites the keys of `value`, found at `path` of `origin`, to the
/// canonical names of `shape`.
///
/// # Errors
///
/// An unknown field (with the known ones listed), a field given twice in
/// different cases, or a value of the wrong kind; each names its path.
pub(super) fn normalise(
    value: Value,
    shape: &Shape,
    origin: &Origin,
    path: &str,
) -> Result<Value, ConfigError> {
    let (fields, one_of) = match shape {
        Shape::Any => return Ok(value),
        Shape::Object(fields) => (*fields, None),
        Shape::OneOf {
            fields,
            what,
            supported,
        } => (*fields, Some((*what, *supported))),
        Shape::Map(inner) => {
            let object = object(value, origin, path)?;
            let mut out = Map::new();
            for (key, value) in object {
                let value = normalise(value, inner, origin, &join(path, &key))?;
                out.insert(key, value);
            }
            return Ok(Value::Object(out));
        }
        Shape::List(inner) => {
            let items = match value {
                Value::Array(items) => items,
                Value::Null => Vec::new(),
                other => {
                    let reason = format!("expected a list, found {}", kind(&other));
                    return Err(origin.error(path, reason));
                }
            };
            let items = items
                .into_iter()
                .enumerate()
                .map(|(i, item)| normalise(item, inner, origin, &format!("{path}[{i}]")))
                .collect::<Result<_, _>>()?;
            return Ok(Value::Array(items));
        }
    };
    let object = object(value, origin, path)?;
    if let Some((what, supported)) = one_of {
        match object.len() {
            0 => {
                let reason = format!("empty: expected a {what} ({supported})");
                return Err(origin.error(path, reason));
            }
            1 => {}
            _ => {
                let keys: Vec<&str> = object.keys().map(String::as_str).collect();
                let reason = format!(
                    "holds {} ({}): give exactly one {what}",
                    keys.len(),
                    keys.join(", ")
                );
                return Err(origin.error(path, reason));
            }
        }
    }
    let mut canonical = Map::new();
    for (key, value) in object {
        let Some((name, shape)) = fields
            .iter()
            .find(|(name, _)| name.eq_ignore_ascii_case(&key))
        else {
            let reason = match one_of {
                Some((what, supported)) => {
                    format!("unsupported {what} `{key}` (ccgate supports {supported})")
                }
                None => {
                    let known: Vec<&str> = fields.iter().map(|(name, _)| *name).collect();
                    format!("unknown field (known: {})", known.join(", "))
                }
            };
            return Err(origin.error(&join(path, &key), reason));
        };
        let field_path = join(path, name);
        if canonical.contains_key(*name) {
            let reason = "given twice (field names match case-insensitively)";
            return Err(origin.error(&field_path, reason));
        }
        canonical.insert(
            (*name).to_owned(),
            normalise(value, shape, origin, &field_path)?,
        );
    }
    Ok(Value::Object(canonical))
}

/// Deserializes a normalised value into `T`, naming the field of a type
/// error by its full path (`path` is where `value` stands). Only for
/// values that hold no secret: a type error quotes the value.
pub(super) fn typed<T: DeserializeOwned>(
    value: Value,
    origin: &Origin,
    path: &str,
) -> Result<T, ConfigError> {
    serde_path_to_error::deserialize(value).map_err(|error| {
        let inner = error.path().to_string();
        let mut field = if inner == "." {
            path.to_owned()
        } else {
            join(path, &inner)
        };
        let mut reason = error.into_inner().to_string();
        if let Some(missing) = reason
            .strip_prefix("missing field `")
            .and_then(|rest| rest.strip_suffix('`'))
        {
            field = join(&field, missing);
            reason = "required".to_owned();
        }
        origin.error(&field, reason)
    })
}

/// The mapping `value`; an empty section counts as an empty mapping.
fn object(value: Value, origin: &Origin, path: &str) -> Result<Map<String, Value>, ConfigError> {
    match value {
        Value::Object(object) => Ok(object),
        Value::Null => Ok(Map::new()),
        other => {
            let reason = format!("expected a mapping, found {}", kind(&other));
            Err(origin.error(path, reason))
        }
    }
}

/// `path.key`, or `key` at the top.
pub(super) fn join(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_owned()
    } else if key.starts_with('[') {
        format!("{path}{key}")
    } else {
        format!("{path}.{key}")
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;
    use serde_json::json;

    const SERVER: Shape = Shape::Object(&[("url", Shape::Any)]);
    const SHAPE: Shape = Shape::Object(&[
        (
            "entryPoints",
            Shape::Map(&Shape::Object(&[("address", Shape::Any)])),
        ),
        ("servers", Shape::List(&SERVER)),
        (
            "kind",
            Shape::OneOf {
                fields: &[("loadBalancer", Shape::Any)],
                what: "service type",
                supported: "loadBalancer",
            },
        ),
    ]);

    fn run(value: Value) -> Result<Value, String> {
        let origin = Origin::file(Path::new("c.yaml"));
        normalise(value, &SHAPE, &origin, "").map_err(|e| e.to_string())
    }

    #[test]
    fn rewrites_any_case_and_keeps_free_names() {
        assert_eq!(
            run(json!({"ENTRYPOINTS": {"Web": {"Address": ":80"}}, "servers": [{"URL": "u"}], "kind": {"loadbalancer": 1}})).unwrap(),
            json!({"entryPoints": {"Web": {"address": ":80"}}, "servers": [{"url": "u"}], "kind": {"loadBalancer": 1}})
        );
    }

    #[test]
    fn empty_sections_are_empty() {
        assert_eq!(
            run(json!({"entryPoints": null, "servers": null})).unwrap(),
            json!({"entryPoints": {}, "servers": []})
        );
    }

    #[test]
    fn errors_name_the_path() {
        assert_eq!(
            run(json!({"entryPoints": {"web": {"adress": ":80"}}})).unwrap_err(),
            "c.yaml: entryPoints.web.adress: unknown field (known: address)"
        );
        assert_eq!(
            run(json!({"servers": [{"url": "a"}, {"uri": "b"}]})).unwrap_err(),
            "c.yaml: servers[1].uri: unknown field (known: url)"
        );
        assert_eq!(
            run(json!({"servers": "x"})).unwrap_err(),
            "c.yaml: servers: expected a list, found a string"
        );
        assert_eq!(
            run(json!({"entryPoints": {"web": {"address": 1, "ADDRESS": 2}}})).unwrap_err(),
            "c.yaml: entryPoints.web.address: given twice (field names match case-insensitively)"
        );
    }

    #[test]
    fn one_of_names_the_unsupported_kind() {
        assert_eq!(
            run(json!({"kind": {"weighted": {}}})).unwrap_err(),
            "c.yaml: kind.weighted: unsupported service type `weighted` (ccgate supports loadBalancer)"
        );
        assert_eq!(
            run(json!({"kind": {}})).unwrap_err(),
            "c.yaml: kind: empty: expected a service type (loadBalancer)"
        );
        assert_eq!(
            run(json!({"kind": {"loadBalancer": 1, "mirroring": 2}})).unwrap_err(),
            "c.yaml: kind: holds 2 (loadBalancer, mirroring): give exactly one service type"
        );
    }

    #[test]
    fn typed_errors_name_the_full_path() {
        #[derive(Debug, serde::Deserialize)]
        #[allow(dead_code)]
        struct Router {
            rule: String,
            priority: Option<i64>,
        }
        let origin = Origin::file(Path::new("c.yaml"));
        let err = typed::<Router>(json!({"priority": 1}), &origin, "http.routers.api").unwrap_err();
        assert_eq!(err.to_string(), "c.yaml: http.routers.api.rule: required");
        let err =
            typed::<Router>(json!({"rule": "r", "priority": "high"}), &origin, "r").unwrap_err();
        assert_eq!(
            err.to_string(),
            "c.yaml: r.priority: invalid type: string \"high\", expected i64"
        );
    }
}
