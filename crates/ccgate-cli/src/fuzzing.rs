//! Entry points for the cargo-fuzz targets in `fuzz/`: the parts of the
//! command that read untrusted input. Not an API: hidden from the docs
//! and free to change with the targets.

use std::path::Path;

use crate::edge::path::{EncodedCharacters, PathRules, normalise};

/// Normalises `path` with every encoded character refused, or all
/// allowed, and with or without `sanitizePath`; checks the normaliser's
/// own promises and panics when one is broken.
pub fn normalise_path(path: &str, allow_all: bool, sanitize: bool) {
    let allow = if allow_all {
        EncodedCharacters {
            slash: true,
            back_slash: true,
            null_character: true,
            semicolon: true,
            percent: true,
            question_mark: true,
            hash: true,
        }
    } else {
        EncodedCharacters::default()
    };
    let rules = PathRules { allow, sanitize };
    let Ok(once) = normalise(path, &rules) else {
        return;
    };
    let twice = normalise(&once, &rules).expect("a normalised path normalises again");
    assert_eq!(once, twice, "normalising is idempotent");
    if sanitize && once.starts_with('/') {
        for bad in ["//", "/./", "/../"] {
            assert!(!once.contains(bad), "{bad} left in {once:?}");
        }
        assert!(!once.ends_with("/.") && !once.ends_with("/.."), "{once:?}");
    }
}

/// Loads `text` as a main configuration file (the loader must answer with
/// a configuration or an error, never panic).
pub fn load_config(text: &str) {
    let _ = crate::config::load_text(Path::new("fuzz.yaml"), text);
}
