//! Turns source text into tokens with their spans.

use super::{ErrorKind, ParseError, Span};

/// A token of the expression language.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Token {
    /// A function name: ASCII letters, digits and `_`, not starting with a digit.
    Ident(String),
    /// A string argument, unescaped.
    Str(String),
    LParen,
    RParen,
    Comma,
    And,
    Or,
    Not,
}

impl Token {
    /// How the token is named in error messages.
    pub(super) fn describe(&self) -> String {
        match self {
            Self::Ident(name) => format!("`{name}`"),
            Self::Str(_) => "a string".to_owned(),
            Self::LParen => "`(`".to_owned(),
            Self::RParen => "`)`".to_owned(),
            Self::Comma => "`,`".to_owned(),
            Self::And => "`&&`".to_owned(),
            Self::Or => "`||`".to_owned(),
            Self::Not => "`!`".to_owned(),
        }
    }
}

/// Splits `source` into tokens.
pub(super) fn tokenize(source: &str) -> Result<Vec<(Token, Span)>, ParseError> {
    let mut lexer = Lexer { source, pos: 0 };
    let mut tokens = Vec::new();
    while let Some(token) = lexer.next_token()? {
        tokens.push(token);
    }
    Ok(tokens)
}

struct Lexer<'a> {
    source: &'a str,
    pos: usize,
}

impl<'a> Lexer<'a> {
    fn rest(&self) -> &'a str {
        &self.source[self.pos..]
    }

    fn error(&self, kind: ErrorKind, span: Span) -> ParseError {
        ParseError::new(kind, span, self.source)
    }

    fn next_token(&mut self) -> Result<Option<(Token, Span)>, ParseError> {
        let trimmed = self.rest().trim_start();
        self.pos = self.source.len() - trimmed.len();
        let start = self.pos;
        let Some(c) = trimmed.chars().next() else {
            return Ok(None);
        };
        let (token, len) = match c {
            '(' => (Token::LParen, 1),
            ')' => (Token::RParen, 1),
            ',' => (Token::Comma, 1),
            '!' => (Token::Not, 1),
            '&' | '|' => {
                let double = if c == '&' { "&&" } else { "||" };
                if !trimmed.starts_with(double) {
                    let hint = if c == '&' {
                        "; did you mean `&&`?"
                    } else {
                        "; did you mean `||`?"
                    };
                    let kind = ErrorKind::StrayCharacter { found: c, hint };
                    return Err(self.error(kind, Span::new(start, start + 1)));
                }
                (if c == '&' { Token::And } else { Token::Or }, 2)
            }
            '`' => return self.raw_string().map(Some),
            '"' => return self.quoted_string().map(Some),
            c if c.is_ascii_alphabetic() || c == '_' => {
                let len = trimmed
                    .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                    .unwrap_or(trimmed.len());
                (Token::Ident(trimmed[..len].to_owned()), len)
            }
            other => {
                let hint = match other {
                    '\'' => "; quote arguments with ` or \"",
                    '=' => "; compare with a function such as Equals",
                    _ => "",
                };
                let kind = ErrorKind::StrayCharacter { found: other, hint };
                return Err(self.error(kind, Span::new(start, start + other.len_utf8())));
            }
        };
        self.pos += len;
        Ok(Some((token, Span::new(start, self.pos))))
    }

    /// `` `…` ``: every character up to the next backtick, verbatim.
    fn raw_string(&mut self) -> Result<(Token, Span), ParseError> {
        let start = self.pos;
        let body = &self.source[start + 1..];
        let Some(len) = body.find('`') else {
            let kind = ErrorKind::UnterminatedString { quote: '`' };
            return Err(self.error(kind, Span::new(start, start + 1)));
        };
        self.pos = start + 1 + len + 1;
        Ok((
            Token::Str(body[..len].to_owned()),
            Span::new(start, self.pos),
        ))
    }

    /// `"…"` with the escapes `\"`, `\\`, `\n`, `\r`, `\t` and `\uXXXX`.
    fn quoted_string(&mut self) -> Result<(Token, Span), ParseError> {
        let start = self.pos;
        let mut value = String::new();
        let mut chars = self.source[start + 1..].char_indices();
        while let Some((offset, c)) = chars.next() {
            let at = start + 1 + offset;
            match c {
                '"' => {
                    self.pos = at + 1;
                    return Ok((Token::Str(value), Span::new(start, self.pos)));
                }
                '\\' => {
                    let escaped = match chars.next() {
                        Some((_, '"')) => '"',
                        Some((_, '\\')) => '\\',
                        Some((_, 'n')) => '\n',
                        Some((_, 'r')) => '\r',
                        Some((_, 't')) => '\t',
                        Some((_, 'u')) => {
                            let hex: String = chars.by_ref().take(4).map(|(_, c)| c).collect();
                            let code = (hex.len() == 4)
                                .then(|| u32::from_str_radix(&hex, 16).ok())
                                .flatten()
                                .and_then(char::from_u32);
                            match code {
                                Some(c) => c,
                                None => return Err(self.invalid_escape(at, 2 + hex.len())),
                            }
                        }
                        Some((_, other)) => {
                            return Err(self.invalid_escape(at, 1 + other.len_utf8()));
                        }
                        None => break,
                    };
                    value.push(escaped);
                }
                c => value.push(c),
            }
        }
        let kind = ErrorKind::UnterminatedString { quote: '"' };
        Err(self.error(kind, Span::new(start, start + 1)))
    }

    fn invalid_escape(&self, at: usize, len: usize) -> ParseError {
        let end = (at + len).min(self.source.len());
        self.error(ErrorKind::InvalidEscape, Span::new(at, end))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tokens(src: &str) -> Vec<Token> {
        tokenize(src).unwrap().into_iter().map(|(t, _)| t).collect()
    }

    #[test]
    fn splits_operators_calls_and_strings() {
        assert_eq!(
            tokens("!F(`a b`, \"c\\\"d\") && G() || H"),
            vec![
                Token::Not,
                Token::Ident("F".into()),
                Token::LParen,
                Token::Str("a b".into()),
                Token::Comma,
                Token::Str("c\"d".into()),
                Token::RParen,
                Token::And,
                Token::Ident("G".into()),
                Token::LParen,
                Token::RParen,
                Token::Or,
                Token::Ident("H".into()),
            ]
        );
    }

    #[test]
    fn raw_strings_keep_backslashes_and_newlines() {
        assert_eq!(tokens("`a\\.b\n`"), vec![Token::Str("a\\.b\n".into())]);
    }

    #[test]
    fn quoted_strings_resolve_escapes() {
        assert_eq!(
            tokens(r#""\\ \n\r\t \u00e9 \u20AC""#),
            vec![Token::Str("\\ \n\r\t é €".into())]
        );
    }

    #[test]
    fn spans_are_byte_ranges() {
        let err = tokenize("  é(`x`)").unwrap_err();
        assert_eq!(
            err.span,
            Span::new(2, 4),
            "`é` is no identifier character; it is two bytes"
        );
        let spans: Vec<Span> = tokenize(" F( `é` )")
            .unwrap()
            .into_iter()
            .map(|(_, s)| s)
            .collect();
        assert_eq!(
            spans,
            vec![
                Span::new(1, 2),
                Span::new(2, 3),
                Span::new(4, 8),
                Span::new(9, 10)
            ]
        );
    }

    #[test]
    fn faults_are_located() {
        let cases: &[(&str, ErrorKind, Span)] = &[
            (
                "F(`abc",
                ErrorKind::UnterminatedString { quote: '`' },
                Span::new(2, 3),
            ),
            (
                "F(\"abc\\\"",
                ErrorKind::UnterminatedString { quote: '"' },
                Span::new(2, 3),
            ),
            ("F(\"a\\qb\")", ErrorKind::InvalidEscape, Span::new(4, 6)),
            ("F(\"a\\u12\")", ErrorKind::InvalidEscape, Span::new(4, 10)),
            ("F(\"\\uD800\")", ErrorKind::InvalidEscape, Span::new(3, 9)),
            (
                "a & b",
                ErrorKind::StrayCharacter {
                    found: '&',
                    hint: "; did you mean `&&`?",
                },
                Span::new(2, 3),
            ),
            (
                "a | b",
                ErrorKind::StrayCharacter {
                    found: '|',
                    hint: "; did you mean `||`?",
                },
                Span::new(2, 3),
            ),
            (
                "F(#)",
                ErrorKind::StrayCharacter {
                    found: '#',
                    hint: "",
                },
                Span::new(2, 3),
            ),
        ];
        for (src, kind, span) in cases {
            let err = tokenize(src).unwrap_err();
            assert_eq!((&err.kind, err.span), (kind, *span), "{src}");
        }
    }
}
