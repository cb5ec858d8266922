//! Parse errors that say where and what.

use super::{Arity, Span};

/// Why an expression did not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ErrorKind {
    /// Nothing but white space.
    #[error("empty expression")]
    Empty,
    /// A quoted argument has no closing quote.
    #[error("unterminated string: no closing {quote}")]
    UnterminatedString {
        /// The quote that opened it, as shown to the user (`` ` `` or `"`).
        quote: char,
    },
    /// A backslash in a double-quoted string is followed by something other
    /// than `"`, `\`, `n`, `r`, `t` or `uXXXX`.
    #[error("invalid escape in double-quoted string (use \\\", \\\\, \\n, \\r, \\t or \\uXXXX)")]
    InvalidEscape,
    /// A character that starts no token, such as a lone `&` or `|`.
    #[error("unexpected character {found:?}{hint}")]
    StrayCharacter {
        /// The character.
        found: char,
        /// A hint such as `; did you mean `&&`?`, or empty.
        hint: &'static str,
    },
    /// A token in a place where the grammar wants something else.
    #[error("expected {expected}, found {found}")]
    Unexpected {
        /// What the grammar wanted, e.g. "`,` or `)`".
        expected: &'static str,
        /// What stood there, e.g. "`&&`" or "the end of the expression".
        found: String,
    },
    /// A complete expression is followed by more tokens.
    #[error("unexpected {found} after a complete expression (join expressions with `&&` or `||`)")]
    TrailingInput {
        /// The first extra token.
        found: String,
    },
    /// A `(` that is never closed.
    #[error("unbalanced parentheses: this `(` is never closed")]
    UnclosedParen,
    /// A `)` with no `(` to close.
    #[error("unbalanced parentheses: this `)` closes nothing")]
    UnmatchedParen,
    /// A call to a function not in the list the caller accepts.
    #[error("unknown function `{name}`{suggestion} (known: {known})")]
    UnknownFunction {
        /// The name as written.
        name: String,
        /// `; did you mean `X`?` when a known name differs only in case, else empty.
        suggestion: String,
        /// The known names, comma separated.
        known: String,
    },
    /// A call with the wrong number of arguments.
    #[error("`{name}` takes {expected}, found {found}")]
    WrongArity {
        /// The function.
        name: &'static str,
        /// What it takes.
        expected: Arity,
        /// How many were given.
        found: usize,
    },
    /// Parentheses or `!` nested deeper than [`super::MAX_DEPTH`].
    #[error("expression nested deeper than {max} levels")]
    TooDeep {
        /// The limit.
        max: usize,
    },
    /// An argument that parsed but that the function cannot use, e.g. an
    /// empty key path. Reported by the caller that compiles the calls.
    #[error("{reason}")]
    InvalidArgument {
        /// What is wrong with it.
        reason: String,
    },
}

/// An expression that could not be parsed or compiled: what is wrong
/// ([`ErrorKind`]) and where ([`Span`], in bytes of the source).
///
/// `Display` gives the 1-based column (in characters) and the reason;
/// [`ParseError::render`] adds the source line with a caret under the fault.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseError {
    /// What is wrong.
    pub kind: ErrorKind,
    /// Where; an empty span at the end for a premature end.
    pub span: Span,
    /// Line and column (1-based, in characters) of `span.start`.
    line_col: (usize, usize),
    multi_line: bool,
}

impl ParseError {
    pub(crate) fn new(kind: ErrorKind, span: Span, source: &str) -> Self {
        let start = floor_char_boundary(source, span.start.min(source.len()));
        let before = &source[..start];
        let line = before.matches('\n').count() + 1;
        let line_start = before.rfind('\n').map_or(0, |i| i + 1);
        let column = source[line_start..start].chars().count() + 1;
        Self {
            kind,
            span,
            line_col: (line, column),
            multi_line: source.contains('\n'),
        }
    }

    /// An [`ErrorKind::InvalidArgument`] for the argument at `span`.
    #[must_use]
    pub fn invalid_argument(reason: impl Into<String>, span: Span, source: &str) -> Self {
        let reason = reason.into();
        Self::new(ErrorKind::InvalidArgument { reason }, span, source)
    }

    /// Line (1-based) of the fault.
    #[must_use]
    pub fn line(&self) -> usize {
        self.line_col.0
    }

    /// Column (1-based, in characters) of the fault.
    #[must_use]
    pub fn column(&self) -> usize {
        self.line_col.1
    }

    /// The source line holding the fault with a caret line under it, e.g.
    ///
    /// ```text
    /// Equal(`grp`, `admin`)
    /// ^^^^^
    /// ```
    ///
    /// `source` must be the text this error came from. Tabs in the prefix
    /// are kept so the caret lines up in a terminal.
    #[must_use]
    pub fn render(&self, source: &str) -> String {
        let start = floor_char_boundary(source, self.span.start.min(source.len()));
        let end = floor_char_boundary(source, self.span.end.clamp(start, source.len()));
        let line_start = source[..start].rfind('\n').map_or(0, |i| i + 1);
        let line_end = source[start..]
            .find('\n')
            .map_or(source.len(), |i| start + i);
        let line = &source[line_start..line_end];
        let pad: String = source[line_start..start]
            .chars()
            .map(|c| if c == '\t' { '\t' } else { ' ' })
            .collect();
        let width = source[start..end.min(line_end)].chars().count().max(1);
        format!("{line}\n{pad}{}", "^".repeat(width))
    }
}

impl std::fmt::Display for ParseError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.multi_line {
            write!(f, "at line {}, ", self.line())?;
        } else {
            f.write_str("at ")?;
        }
        write!(f, "column {}: {}", self.column(), self.kind)
    }
}

impl std::error::Error for ParseError {}

fn floor_char_boundary(s: &str, mut i: usize) -> usize {
    while !s.is_char_boundary(i) {
        i -= 1;
    }
    i
}
