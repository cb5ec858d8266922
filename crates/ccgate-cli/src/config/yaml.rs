//! YAML text to JSON values, one per document.
//!
//! Parsing uses serde-saphyr with **strict booleans**: only `true` and
//! `false` (also `True`/`TRUE`, `False`/`FALSE`) are booleans; YAML 1.1's
//! `yes`, `no`, `on` and `off` stay strings, so `watch: yes` is an error
//! ("expected a boolean") instead of a silent guess. A key given twice in
//! one mapping is an error. Empty documents (only comments, or `---` with
//! nothing after it) are skipped. Integers written with leading zeros
//! (`0755`) stay strings. Syntax errors carry line and column and
//! never quote the text around them, which may hold a secret.

use std::path::Path;

use serde_json::Value;
use serde_saphyr::{DuplicateKeyPolicy, Spanned};

use super::error::{ConfigError, Origin};

/// One YAML document of a file. `Debug` shows where it is, not its
/// content, which may hold secrets.
pub(super) struct Document {
    /// Its file, and its first line when the file holds several documents.
    pub(super) origin: Origin,
    /// Its content, a mapping.
    pub(super) value: serde_json::Map<String, Value>,
}

impl std::fmt::Debug for Document {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Document")
            .field("origin", &self.origin)
            .finish_non_exhaustive()
    }
}

/// Parses every document of `text`, read from `file`.
///
/// # Errors
///
/// A syntax error with its line and column, or a document that is not a
/// mapping.
pub(super) fn documents(file: &Path, text: &str) -> Result<Vec<Document>, ConfigError> {
    let options = serde_saphyr::options! {
        strict_booleans: true,
        leading_zero_numbers_as_strings: true,
        duplicate_keys: DuplicateKeyPolicy::Error,
        with_snippet: false,
    };
    let parsed: Vec<Spanned<Value>> = serde_saphyr::from_multiple_with_options(text, options)
        .map_err(|error| syntax_error(file, &error))?;
    let several = parsed.len() > 1;
    parsed
        .into_iter()
        .map(|spanned| {
            let origin = Origin {
                file: file.to_owned(),
                document: several.then(|| spanned.referenced.line()),
            };
            match spanned.value {
                Value::Object(value) => Ok(Document { origin, value }),
                other => Err(origin.error(
                    "",
                    format!(
                        "expected a mapping of configuration keys, found {}",
                        kind(&other)
                    ),
                )),
            }
        })
        .collect()
}

fn syntax_error(file: &Path, error: &serde_saphyr::Error) -> ConfigError {
    let error = error.without_snippet();
    let (line, column) = error
        .location()
        .map_or((0, 0), |location| (location.line(), location.column()));
    let message = error.to_string();
    // The message ends with " at line L, column C"; the position is shown
    // in front instead.
    let reason = message
        .rsplit_once(" at line ")
        .map_or(message.as_str(), |(reason, _)| reason);
    let reason = reason
        .split_once(", set DuplicateKeyPolicy")
        .map_or(reason, |(reason, _)| reason);
    ConfigError::syntax(file, line, column, format!("invalid YAML: {reason}"))
}

/// The name of a value's type, for messages (never the value itself).
pub(super) fn kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "nothing (null)",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "a mapping",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn parse(text: &str) -> Result<Vec<Document>, ConfigError> {
        documents(Path::new("c.yaml"), text)
    }

    fn error(text: &str) -> String {
        parse(text).unwrap_err().to_string()
    }

    #[test]
    fn syntax_errors_give_line_and_column_and_no_text() {
        assert_eq!(
            error("a: 1\nb:\n  c: 1\n d: 2\n"),
            "c.yaml:4:2: invalid YAML: while parsing a block mapping, did not find expected key"
        );
        assert_eq!(
            error("a: 1\nsecret: \"hunter2\n"),
            "c.yaml:2:9: invalid YAML: unclosed quote"
        );
        assert_eq!(
            error("a: 1\na: 2\n"),
            "c.yaml:2:1: invalid YAML: duplicate mapping key: a"
        );
    }

    #[test]
    fn booleans_are_strict_and_leading_zeros_stay_strings() {
        let docs = parse("a: yes\nb: True\nc: off\nd: 0755\ne: 10\n").unwrap();
        assert_eq!(
            Value::Object(docs[0].value.clone()),
            json!({"a": "yes", "b": true, "c": "off", "d": "0755", "e": 10})
        );
    }

    #[test]
    fn several_documents_are_numbered_by_their_first_line() {
        let docs = parse("---\n---\na: 1\n---\n# only a comment\n---\nb: 2\n").unwrap();
        let lines: Vec<_> = docs.iter().map(|d| d.origin.document).collect();
        assert_eq!(lines, [Some(3), Some(7)]);
        let docs = parse("a: 1\n").unwrap();
        assert_eq!(docs[0].origin.document, None);
        assert!(parse("# nothing\n").unwrap().is_empty());
    }

    #[test]
    fn a_document_must_be_a_mapping() {
        assert_eq!(
            error("- 1\n"),
            "c.yaml: expected a mapping of configuration keys, found a list"
        );
    }
}
