//! Key paths into a claims document: `user.name`, `a\.b`, `c\\d`.

use serde_json::Value;

/// A parsed key path: the object keys to walk, in order.
///
/// In the source form `.` separates keys, `\.` is a literal dot and `\\` a
/// literal backslash. Any other backslash, an empty key (`a..b`, `.a`,
/// `a.`) and an empty path are rejected: they can only be typos, and a typo
/// in a claims check must not silently never match.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyPath {
    keys: Box<[String]>,
}

impl KeyPath {
    /// Parses the source form of a key path.
    ///
    /// # Errors
    ///
    /// A short reason when the path is empty, has an empty key, or has a
    /// backslash not followed by `.` or `\`.
    pub fn parse(source: &str) -> Result<Self, &'static str> {
        if source.is_empty() {
            return Err("empty key path");
        }
        let mut keys = Vec::new();
        let mut key = String::new();
        let mut chars = source.chars();
        while let Some(c) = chars.next() {
            match c {
                '\\' => match chars.next() {
                    Some(escaped @ ('.' | '\\')) => key.push(escaped),
                    _ => {
                        return Err(
                            r"invalid escape in key path: write \. for a dot and \\ for a backslash",
                        );
                    }
                },
                '.' => keys.push(non_empty(std::mem::take(&mut key))?),
                c => key.push(c),
            }
        }
        keys.push(non_empty(key)?);
        Ok(Self {
            keys: keys.into_boxed_slice(),
        })
    }

    /// The keys, unescaped.
    #[must_use]
    pub fn keys(&self) -> &[String] {
        &self.keys
    }

    /// The value at this path, if every step is an object holding the key.
    #[must_use]
    pub fn lookup<'v>(&self, document: &'v Value) -> Option<&'v Value> {
        self.keys
            .iter()
            .try_fold(document, |value, key| value.as_object()?.get(key))
    }
}

fn non_empty(key: String) -> Result<String, &'static str> {
    if key.is_empty() {
        Err("empty key in key path (a leading, trailing or doubled `.`)")
    } else {
        Ok(key)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn splits_on_unescaped_dots() {
        let path = KeyPath::parse(r"a.b\.c.d\\.e\\\.f").unwrap();
        assert_eq!(path.keys(), ["a", "b.c", r"d\", r"e\.f"]);
    }

    #[test]
    fn rejects_typos() {
        for bad in ["", ".a", "a.", "a..b", r"a\", r"a\b", r"\n"] {
            assert!(KeyPath::parse(bad).is_err(), "{bad:?} should be rejected");
        }
    }

    #[test]
    fn walks_objects_only() {
        let doc = json!({"user": {"name": "John Snow", "tags": ["x"]}, "a.b": 1, "a": {"b": 2}});
        let at = |p: &str| KeyPath::parse(p).unwrap().lookup(&doc).cloned();
        assert_eq!(at("user.name"), Some(json!("John Snow")));
        assert_eq!(at(r"a\.b"), Some(json!(1)));
        assert_eq!(at("a.b"), Some(json!(2)));
        assert_eq!(at("user.tags.0"), None, "arrays are not indexed");
        assert_eq!(at("user.name.first"), None, "a string has no keys");
        assert_eq!(at("nobody"), None);
    }
}
