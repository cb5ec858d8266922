//! Case-insensitive field names: rewrites every key of the options to its
//! canonical spelling (`clientId` → `clientID`) before typed
//! deserialization, and rejects unknown fields with their path.

use serde_json::{Map, Value};

use super::OptionsError;

/// The shape of a part of the options.
#[derive(Debug)]
pub(super) enum Shape {
    /// A value whose type serde checks.
    Value,
    /// An object with free-form keys kept as written (`forwardHeaders`).
    Map,
    /// An object with these canonical field names.
    Object(&'static [(&'static str, Shape)]),
}

const TLS: Shape = Shape::Object(&[
    ("ca", Shape::Value),
    ("cert", Shape::Value),
    ("key", Shape::Value),
    ("insecureSkipVerify", Shape::Value),
]);

/// Every field of `oAuthClientCredentials`, as Traefik spells it, plus the
/// ccgate extensions `authMethod` and `scopes`.
pub(super) const OPTIONS: Shape = Shape::Object(&[
    ("url", Shape::Value),
    ("clientID", Shape::Value),
    ("clientSecret", Shape::Value),
    ("audience", Shape::Value),
    ("claims", Shape::Value),
    ("forwardHeaders", Shape::Map),
    ("usernameClaim", Shape::Value),
    (
        "clientConfig",
        Shape::Object(&[
            ("tls", TLS),
            ("timeoutSeconds", Shape::Value),
            ("maxRetries", Shape::Value),
        ]),
    ),
    (
        "store",
        Shape::Object(&[
            ("keyPrefix", Shape::Value),
            ("secret", Shape::Value),
            (
                "redis",
                Shape::Object(&[
                    ("endpoints", Shape::Value),
                    ("username", Shape::Value),
                    ("password", Shape::Value),
                    ("database", Shape::Value),
                    ("cluster", Shape::Value),
                    (
                        "tls",
                        Shape::Object(&[
                            ("caBundle", Shape::Value),
                            ("cert", Shape::Value),
                            ("key", Shape::Value),
                            ("insecureSkipVerify", Shape::Value),
                        ]),
                    ),
                    (
                        "sentinel",
                        Shape::Object(&[
                            ("masterSet", Shape::Value),
                            ("username", Shape::Value),
                            ("password", Shape::Value),
                        ]),
                    ),
                ]),
            ),
        ]),
    ),
    ("authMethod", Shape::Value),
    ("scopes", Shape::Value),
]);

/// Rewrites the keys of `value` to the canonical names of `shape`.
///
/// # Errors
///
/// An unknown field (with the known ones listed), two spellings of one
/// field, or a non-object where an object is expected; each names its path.
pub(super) fn normalise(value: Value, shape: &Shape, path: &str) -> Result<Value, OptionsError> {
    let fields = match shape {
        Shape::Value => return Ok(value),
        Shape::Map => {
            return match value {
                Value::Object(_) | Value::Null => Ok(value),
                _ => Err(OptionsError::new(
                    path,
                    "expected a map of header name to claim",
                )),
            };
        }
        Shape::Object(fields) => fields,
    };
    let object = match value {
        Value::Object(object) => object,
        Value::Null => return Ok(Value::Null),
        _ => return Err(OptionsError::new(path, "expected an object")),
    };
    let mut canonical = Map::new();
    for (key, value) in object {
        let Some((name, shape)) = fields
            .iter()
            .find(|(name, _)| name.eq_ignore_ascii_case(&key))
        else {
            let known: Vec<&str> = fields.iter().map(|(name, _)| *name).collect();
            let reason = format!("unknown field (known: {})", known.join(", "));
            return Err(OptionsError::new(&join(path, &key), reason));
        };
        let field_path = join(path, name);
        if canonical.contains_key(*name) {
            let reason = "given twice (field names match case-insensitively)";
            return Err(OptionsError::new(&field_path, reason));
        }
        canonical.insert((*name).to_owned(), normalise(value, shape, &field_path)?);
    }
    Ok(Value::Object(canonical))
}

fn join(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_owned()
    } else {
        format!("{path}.{key}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn rewrites_any_case_to_the_canonical_name() {
        let value = json!({"URL": "u", "clientId": "i", "CLIENTSECRET": "s", "clientconfig": {"TIMEOUTSECONDS": 3, "Tls": {"InsecureSkipVerify": true}}});
        assert_eq!(
            normalise(value, &OPTIONS, "").unwrap(),
            json!({"url": "u", "clientID": "i", "clientSecret": "s", "clientConfig": {"timeoutSeconds": 3, "tls": {"insecureSkipVerify": true}}})
        );
    }

    #[test]
    fn keeps_forward_header_names_as_written() {
        let value = json!({"forwardheaders": {"X-Group": "grp", "expires-at": "exp"}});
        assert_eq!(
            normalise(value, &OPTIONS, "").unwrap(),
            json!({"forwardHeaders": {"X-Group": "grp", "expires-at": "exp"}})
        );
    }

    #[test]
    fn unknown_and_duplicate_fields_are_errors_with_paths() {
        let err = normalise(json!({"clientConfig": {"timeout": 3}}), &OPTIONS, "").unwrap_err();
        assert_eq!(err.field(), "clientConfig.timeout");
        assert!(
            err.to_string()
                .contains("unknown field (known: tls, timeoutSeconds, maxRetries)"),
            "{err}"
        );
        let err = normalise(json!({"clientID": "a", "clientId": "b"}), &OPTIONS, "").unwrap_err();
        assert_eq!(err.field(), "clientID");
        assert!(err.to_string().contains("given twice"), "{err}");
        let err = normalise(json!({"store": "redis"}), &OPTIONS, "").unwrap_err();
        assert_eq!(err.to_string(), "`store`: expected an object");
    }
}
