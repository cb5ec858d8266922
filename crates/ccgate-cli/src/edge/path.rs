//! The request path as routing, the middlewares and the upstream all see
//! it (SPEC §10).
//!
//! 1. Percent-escapes of unreserved characters (`A–Z a–z 0–9 - . _ ~`) are
//!    decoded and every other escape is upper-cased (RFC 3986 §2.3,
//!    §6.2.2.1), so `/%61pi` is `/api` and `%2e%2E` is `..`.
//! 2. An escape of `/ \ NUL ; % ? #` is refused unless the entry point
//!    allows that character ([`EncodedCharacters`], Traefik's names): a
//!    server behind the gateway may decode it and see another path than
//!    the one routed.
//! 3. With `sanitizePath` (the default), repeated slashes are collapsed
//!    and `.` and `..` segments removed (RFC 3986 §5.2.4, as Go's
//!    `path.Clean`, keeping a trailing slash as Traefik does), so
//!    `//api/x` and `/a/../api/x` are `/api/x`.
//!
//! A path that needs none of this (the common case) is returned as it is,
//! without allocating.
//!
//! # Example
//!
//! ```text
//! normalise("/%61pi//v1/./users/../items", &PathRules::default()) == Ok("/api/v1/items")
//! normalise("/files/a%2Fb", &PathRules::default()) == Err(PathError::EncodedCharacter(b'/'))
//! ```

use std::borrow::Cow;

/// Which encoded characters an entry point lets through
/// (`http.encodedCharacters.allowEncoded*`); all refused by default.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct EncodedCharacters {
    /// `%2F` (`allowEncodedSlash`).
    pub(crate) slash: bool,
    /// `%5C` (`allowEncodedBackSlash`).
    pub(crate) back_slash: bool,
    /// `%00` (`allowEncodedNullCharacter`).
    pub(crate) null_character: bool,
    /// `%3B` (`allowEncodedSemicolon`).
    pub(crate) semicolon: bool,
    /// `%25` (`allowEncodedPercent`).
    pub(crate) percent: bool,
    /// `%3F` (`allowEncodedQuestionMark`).
    pub(crate) question_mark: bool,
    /// `%23` (`allowEncodedHash`).
    pub(crate) hash: bool,
}

impl EncodedCharacters {
    /// Every encoded character allowed.
    pub(crate) const ALL: Self = Self {
        slash: true,
        back_slash: true,
        null_character: true,
        semicolon: true,
        percent: true,
        question_mark: true,
        hash: true,
    };

    /// The escapes allowed, as written (`%2F` …), for summaries.
    pub(crate) fn names(self) -> Vec<&'static str> {
        [
            (self.slash, "%2F"),
            (self.back_slash, "%5C"),
            (self.null_character, "%00"),
            (self.semicolon, "%3B"),
            (self.percent, "%25"),
            (self.question_mark, "%3F"),
            (self.hash, "%23"),
        ]
        .into_iter()
        .filter_map(|(allowed, name)| allowed.then_some(name))
        .collect()
    }

    /// Whether the escape of `byte` may stay in a path: always for bytes
    /// other than the seven, else as configured.
    fn allows(self, byte: u8) -> bool {
        match byte {
            b'/' => self.slash,
            b'\\' => self.back_slash,
            0 => self.null_character,
            b';' => self.semicolon,
            b'%' => self.percent,
            b'?' => self.question_mark,
            b'#' => self.hash,
            _ => true,
        }
    }
}

/// How an entry point normalises paths.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct PathRules {
    /// The encoded characters let through.
    pub(crate) allow: EncodedCharacters,
    /// `http.sanitizePath` (default true): collapse slashes, remove dot
    /// segments.
    pub(crate) sanitize: bool,
}

impl Default for PathRules {
    fn default() -> Self {
        Self {
            allow: EncodedCharacters::default(),
            sanitize: true,
        }
    }
}

/// Why a path is refused (the caller gets 400).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum PathError {
    /// An escape of one of the seven characters the entry point refuses;
    /// the decoded byte.
    EncodedCharacter(u8),
    /// A `%` not followed by two hexadecimal digits.
    BadEscape,
}

/// The normalised form of `path` (the path of a request target, without
/// its query), per the module docs.
///
/// # Errors
///
/// [`PathError`] when the path holds a refused or malformed escape.
pub(crate) fn normalise<'a>(path: &'a str, rules: &PathRules) -> Result<Cow<'a, str>, PathError> {
    let decoded = decode(path, rules.allow)?;
    if !rules.sanitize || !needs_cleaning(&decoded) {
        return Ok(decoded);
    }
    Ok(Cow::Owned(clean(&decoded)))
}

/// Step 1 and 2: unreserved escapes decoded, the others upper-cased.
fn decode(path: &str, allow: EncodedCharacters) -> Result<Cow<'_, str>, PathError> {
    let bytes = path.as_bytes();
    let Some(first) = bytes.iter().position(|&b| b == b'%') else {
        return Ok(Cow::Borrowed(path));
    };
    let mut out = String::with_capacity(path.len());
    out.push_str(&path[..first]);
    let mut i = first;
    while i < bytes.len() {
        let b = bytes[i];
        if b != b'%' {
            // Non-ASCII bytes cannot be in a parsed URI path; copy the
            // whole character anyway so that `out` stays valid UTF-8.
            let width = utf8_width(b);
            out.push_str(&path[i..i + width]);
            i += width;
            continue;
        }
        let (Some(&high), Some(&low)) = (bytes.get(i + 1), bytes.get(i + 2)) else {
            return Err(PathError::BadEscape);
        };
        let (Some(h), Some(l)) = (hex(high), hex(low)) else {
            return Err(PathError::BadEscape);
        };
        let byte = (h << 4) | l;
        if is_unreserved(byte) {
            out.push(char::from(byte));
        } else if allow.allows(byte) {
            out.push('%');
            out.push(char::from(HEX_UPPER[usize::from(h)]));
            out.push(char::from(HEX_UPPER[usize::from(l)]));
        } else {
            return Err(PathError::EncodedCharacter(byte));
        }
        i += 3;
    }
    Ok(Cow::Owned(out))
}

/// Whether `path` holds a repeated slash or a dot segment, or does not
/// start with `/`.
fn needs_cleaning(path: &str) -> bool {
    let bytes = path.as_bytes();
    if bytes.first() != Some(&b'/') {
        // "*" (OPTIONS *) and authority-form targets have no path to clean.
        return !path.is_empty() && path != "*";
    }
    bytes.windows(2).any(|w| w == b"//")
        || path
            .split('/')
            .skip(1)
            .any(|segment| segment == "." || segment == "..")
}

/// Step 3: slashes collapsed, dot segments removed, a trailing slash kept.
fn clean(path: &str) -> String {
    let mut segments: Vec<&str> = Vec::new();
    for segment in path.split('/') {
        match segment {
            "" | "." => {}
            ".." => {
                segments.pop();
            }
            other => segments.push(other),
        }
    }
    let trailing = path.ends_with('/') || path.ends_with("/.") || path.ends_with("/..");
    let mut out = String::with_capacity(path.len());
    for segment in &segments {
        out.push('/');
        out.push_str(segment);
    }
    if out.is_empty() || trailing {
        out.push('/');
    }
    out
}

const HEX_UPPER: &[u8; 16] = b"0123456789ABCDEF";

fn hex(digit: u8) -> Option<u8> {
    match digit {
        b'0'..=b'9' => Some(digit - b'0'),
        b'a'..=b'f' => Some(digit - b'a' + 10),
        b'A'..=b'F' => Some(digit - b'A' + 10),
        _ => None,
    }
}

/// RFC 3986 §2.3.
fn is_unreserved(byte: u8) -> bool {
    byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~')
}

fn utf8_width(first: u8) -> usize {
    match first {
        0xF0..=0xFF => 4,
        0xE0..=0xEF => 3,
        0xC0..=0xDF => 2,
        _ => 1,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn norm(path: &str) -> Result<String, PathError> {
        normalise(path, &PathRules::default()).map(Cow::into_owned)
    }

    #[test]
    fn plain_paths_are_borrowed_as_they_are() {
        for path in [
            "/",
            "/api/v1/items",
            "/a-b_c.d~e",
            "/a/.well-known/x",
            "/..a/b..",
        ] {
            let normalised = normalise(path, &PathRules::default()).unwrap();
            assert!(matches!(normalised, Cow::Borrowed(_)), "{path}");
            assert_eq!(normalised, path);
        }
    }

    #[test]
    fn unreserved_escapes_are_decoded_and_others_upper_cased() {
        assert_eq!(norm("/%61pi/x").unwrap(), "/api/x");
        assert_eq!(norm("/%7Euser/%2d").unwrap(), "/~user/-");
        assert_eq!(norm("/caf%c3%a9").unwrap(), "/caf%C3%A9");
        assert_eq!(norm("/a%20b").unwrap(), "/a%20b");
        assert_eq!(norm("/%40%3a").unwrap(), "/%40%3A");
    }

    #[test]
    fn slashes_and_dot_segments_are_cleaned_as_go_path_clean() {
        let cases = [
            ("//api/x", "/api/x"),
            ("/a//../b", "/b"),
            ("/a/./b", "/a/b"),
            ("/a/b/..", "/a/"),
            ("/..", "/"),
            ("/../../etc/passwd", "/etc/passwd"),
            ("/a/b/../../..//c", "/c"),
            ("/api/", "/api/"),
            ("/api//", "/api/"),
            ("/.", "/"),
            ("/%2e%2e/api", "/api"),
            ("/%2E/api/%2e", "/api/"),
            ("/x/%2e%2E/api", "/api"),
        ];
        for (path, want) in cases {
            assert_eq!(norm(path).unwrap(), want, "{path}");
        }
    }

    #[test]
    fn the_seven_encoded_characters_are_refused_unless_allowed() {
        let refused = [
            ("/a%2Fb", b'/'),
            ("/a%2fb", b'/'),
            ("/a%5Cb", b'\\'),
            ("/a%00b", 0),
            ("/a%3Bb", b';'),
            ("/a%25b", b'%'),
            ("/a%3Fb", b'?'),
            ("/a%23b", b'#'),
        ];
        for (path, byte) in refused {
            assert_eq!(norm(path), Err(PathError::EncodedCharacter(byte)), "{path}");
        }
        let all = PathRules {
            allow: EncodedCharacters::ALL,
            sanitize: true,
        };
        for (path, _) in refused {
            let kept = normalise(path, &all).unwrap();
            assert_eq!(
                kept.to_ascii_uppercase(),
                path.to_ascii_uppercase(),
                "{path}"
            );
        }
        // An allowed encoded slash is not a separator: nothing to clean.
        assert_eq!(normalise("/a%2F..%2Fb", &all).unwrap(), "/a%2F..%2Fb");
    }

    #[test]
    fn each_allowance_lets_through_only_its_character() {
        let only_slash = PathRules {
            allow: EncodedCharacters {
                slash: true,
                ..EncodedCharacters::default()
            },
            sanitize: true,
        };
        assert!(normalise("/a%2Fb", &only_slash).is_ok());
        assert_eq!(
            normalise("/a%3Bb", &only_slash),
            Err(PathError::EncodedCharacter(b';'))
        );
    }

    #[test]
    fn malformed_escapes_are_refused() {
        for path in ["/a%", "/a%2", "/a%zz", "/a%2g", "/%%41"] {
            assert_eq!(norm(path), Err(PathError::BadEscape), "{path}");
        }
    }

    #[test]
    fn without_sanitize_only_decoding_happens() {
        let rules = PathRules {
            sanitize: false,
            ..PathRules::default()
        };
        assert_eq!(normalise("//a/../%61", &rules).unwrap(), "//a/../a");
        assert_eq!(
            normalise("/a%2Fb", &rules),
            Err(PathError::EncodedCharacter(b'/'))
        );
    }

    #[test]
    fn targets_without_a_path_stay() {
        assert_eq!(norm("*").unwrap(), "*");
        assert_eq!(norm("").unwrap(), "");
    }

    mod properties {
        use proptest::prelude::*;

        use super::*;

        /// Paths made of the pieces that matter to the normaliser.
        fn paths() -> impl Strategy<Value = String> {
            let piece = prop::sample::select(vec![
                "/", "/", "//", ".", "..", "a", "B", "api", "-", "~", ";", "%2e", "%2E", "%2f",
                "%2F", "%41", "%7e", "%5C", "%00", "%25", "%3b", "%c3%a9", "%", "%z", "%4",
            ]);
            prop::collection::vec(piece, 0..12).prop_map(|pieces| format!("/{}", pieces.concat()))
        }

        fn rules() -> impl Strategy<Value = PathRules> {
            (any::<[bool; 7]>(), any::<bool>()).prop_map(|(allow, sanitize)| PathRules {
                allow: EncodedCharacters {
                    slash: allow[0],
                    back_slash: allow[1],
                    null_character: allow[2],
                    semicolon: allow[3],
                    percent: allow[4],
                    question_mark: allow[5],
                    hash: allow[6],
                },
                sanitize,
            })
        }

        /// Every byte of `text` with its escapes decoded (an invalid escape
        /// kept as it is).
        fn decoded(text: &str) -> Vec<u8> {
            let bytes = text.as_bytes();
            let mut out = Vec::new();
            let mut i = 0;
            while i < bytes.len() {
                let escape = (bytes[i] == b'%' && i + 2 < bytes.len())
                    .then(|| hex(bytes[i + 1]).zip(hex(bytes[i + 2])))
                    .flatten();
                if let Some((h, l)) = escape {
                    out.push((h << 4) | l);
                    i += 3;
                    continue;
                }
                out.push(bytes[i]);
                i += 1;
            }
            out
        }

        /// `text` with every unreserved character written as an escape,
        /// in lower case (the two characters after a `%` left alone:
        /// they belong to its escape).
        fn escaped(text: &str) -> String {
            let mut out = String::new();
            let mut in_escape = 0;
            for b in text.bytes() {
                if in_escape > 0 {
                    in_escape -= 1;
                    out.push(char::from(b));
                } else if b == b'%' {
                    in_escape = 2;
                    out.push('%');
                } else if is_unreserved(b) {
                    out.push_str(&format!("%{b:02x}"));
                } else {
                    out.push(char::from(b));
                }
            }
            out
        }

        proptest! {
            #[test]
            fn normalising_is_idempotent(path in paths(), rules in rules()) {
                if let Ok(once) = normalise(&path, &rules) {
                    let twice = normalise(&once, &rules).expect("normalises again");
                    prop_assert_eq!(&once, &twice);
                }
            }

            #[test]
            fn sanitised_paths_hold_no_empty_or_dot_segment(path in paths(), rules in rules()) {
                let rules = PathRules { sanitize: true, ..rules };
                if let Ok(clean) = normalise(&path, &rules) {
                    for bad in ["//", "/./", "/../"] {
                        prop_assert!(!clean.contains(bad), "{} in {}", bad, clean);
                    }
                    prop_assert!(!clean.ends_with("/.") && !clean.ends_with("/.."), "{}", clean);
                    prop_assert!(clean.starts_with('/'));
                }
            }

            #[test]
            fn decoding_keeps_the_meaning(path in paths(), rules in rules()) {
                let rules = PathRules { sanitize: false, ..rules };
                if let Ok(normalised) = normalise(&path, &rules) {
                    prop_assert_eq!(decoded(&normalised), decoded(&path));
                }
            }

            #[test]
            fn an_escaped_unreserved_character_is_the_character(path in paths(), rules in rules()) {
                // Encoding unreserved characters (RFC 3986 §2.3: they are
                // equivalent) changes neither the answer nor the result.
                let plain = normalise(&path, &rules).map(Cow::into_owned);
                let escaped_path = escaped(&path);
                let escaped_result = normalise(&escaped_path, &rules).map(Cow::into_owned);
                prop_assert_eq!(plain, escaped_result);
            }
        }
    }
}
