//! [`ConfigError`]: what is wrong with a configuration, and where.

use std::fmt;
use std::path::{Path, PathBuf};

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
    use super::*;

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
