//! The committed examples (`examples/` at the repository root), read with
//! their example values replaced by the test's ports and URLs, so that the
//! tests run the examples as they are written.

use std::path::{Path, PathBuf};

/// `examples/` of the repository.
pub(crate) fn dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples")
}

/// The text of `examples/<path>` with every occurrence of each `from`
/// replaced by its `to`. Each `from` must occur, so an edit of the example
/// cannot silently leave the test running something else.
pub(crate) fn read(path: &str, replacements: &[(&str, &str)]) -> String {
    let file = dir().join(path);
    let mut text = std::fs::read_to_string(&file)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", file.display()));
    for (from, to) in replacements {
        assert!(
            text.contains(from),
            "examples/{path} no longer contains {from:?}, which the test replaces"
        );
        text = text.replace(from, to);
    }
    text
}
