//! Recursive-descent parser: tokens → [`Expr`] of [`Call`]s.
//!
//! ```text
//! expr    := or
//! or      := and ( "||" and )*
//! and     := unary ( "&&" unary )*
//! unary   := "!" unary | primary
//! primary := "(" or ")" | call
//! call    := IDENT "(" [ STRING ( "," STRING )* ] ")"
//! ```

use super::lexer::{Token, tokenize};
use super::{Arg, Call, ErrorKind, Expr, Function, ParseError, Span};

/// How deeply parentheses and `!` may nest. Bounds the recursion of the
/// parser, of [`Expr::eval`] and of dropping a tree, so that no input can
/// overflow the stack.
pub const MAX_DEPTH: usize = 64;

/// Parses `source` into a tree of calls to the given `functions`.
///
/// # Errors
///
/// A [`ParseError`] naming the position and the reason: an empty
/// expression, an unterminated string or bad escape, a stray character or
/// token, trailing input, unbalanced parentheses, an unknown function, a
/// wrong number of arguments, or nesting deeper than [`MAX_DEPTH`].
pub fn parse(source: &str, functions: &[Function]) -> Result<Expr<Call>, ParseError> {
    let tokens = tokenize(source)?;
    if tokens.is_empty() {
        let end = source.len();
        return Err(ParseError::new(ErrorKind::Empty, Span::new(0, end), source));
    }
    let mut parser = Parser {
        source,
        functions,
        tokens: &tokens,
        pos: 0,
        depth: 0,
    };
    let expr = parser.or()?;
    if let Some((token, span)) = parser.peek() {
        let kind = if *token == Token::RParen {
            ErrorKind::UnmatchedParen
        } else {
            ErrorKind::TrailingInput {
                found: token.describe(),
            }
        };
        return Err(parser.error(kind, *span));
    }
    Ok(expr)
}

struct Parser<'a> {
    source: &'a str,
    functions: &'a [Function],
    tokens: &'a [(Token, Span)],
    pos: usize,
    depth: usize,
}

const END: &str = "the end of the expression";

impl<'a> Parser<'a> {
    fn peek(&self) -> Option<&'a (Token, Span)> {
        self.tokens.get(self.pos)
    }

    fn next(&mut self) -> Option<&'a (Token, Span)> {
        let token = self.tokens.get(self.pos);
        self.pos += usize::from(token.is_some());
        token
    }

    fn eat(&mut self, want: &Token) -> bool {
        let hit = self.peek().is_some_and(|(t, _)| t == want);
        self.pos += usize::from(hit);
        hit
    }

    fn error(&self, kind: ErrorKind, span: Span) -> ParseError {
        ParseError::new(kind, span, self.source)
    }

    /// An `Unexpected` error at the current token, or at the end.
    fn unexpected(&self, expected: &'static str) -> ParseError {
        let (found, span) = match self.peek() {
            Some((token, span)) => (token.describe(), *span),
            None => (
                END.to_owned(),
                Span::new(self.source.len(), self.source.len()),
            ),
        };
        self.error(ErrorKind::Unexpected { expected, found }, span)
    }

    fn or(&mut self) -> Result<Expr<Call>, ParseError> {
        let mut operands = vec![self.and()?];
        while self.eat(&Token::Or) {
            operands.push(self.and()?);
        }
        Ok(if operands.len() == 1 {
            operands.remove(0)
        } else {
            Expr::Or(operands)
        })
    }

    fn and(&mut self) -> Result<Expr<Call>, ParseError> {
        let mut operands = vec![self.unary()?];
        while self.eat(&Token::And) {
            operands.push(self.unary()?);
        }
        Ok(if operands.len() == 1 {
            operands.remove(0)
        } else {
            Expr::And(operands)
        })
    }

    fn unary(&mut self) -> Result<Expr<Call>, ParseError> {
        match self.peek() {
            Some((Token::Not, span)) => {
                let span = *span;
                self.pos += 1;
                self.nested(span, |p| p.unary())
                    .map(|e| Expr::Not(Box::new(e)))
            }
            Some((Token::LParen, span)) => {
                let open = *span;
                self.pos += 1;
                let inner = self.nested(open, Self::or)?;
                match self.next() {
                    Some((Token::RParen, _)) => Ok(inner),
                    None => Err(self.error(ErrorKind::UnclosedParen, open)),
                    Some(_) => {
                        self.pos -= 1;
                        Err(self.unexpected("`&&`, `||` or `)`"))
                    }
                }
            }
            Some((Token::Ident(_), _)) => self.call().map(Expr::Leaf),
            _ => Err(self.unexpected("a function call or `(`")),
        }
    }

    /// Runs `f` one nesting level deeper, refusing to pass [`MAX_DEPTH`].
    fn nested(
        &mut self,
        at: Span,
        f: impl FnOnce(&mut Self) -> Result<Expr<Call>, ParseError>,
    ) -> Result<Expr<Call>, ParseError> {
        if self.depth == MAX_DEPTH {
            return Err(self.error(ErrorKind::TooDeep { max: MAX_DEPTH }, at));
        }
        self.depth += 1;
        let result = f(self);
        self.depth -= 1;
        result
    }

    fn call(&mut self) -> Result<Call, ParseError> {
        let Some((Token::Ident(name), name_span)) = self.next() else {
            unreachable!("call() is entered on an identifier");
        };
        let name_span = *name_span;
        let function = self.function(name, name_span)?;
        let Some((Token::LParen, open)) = self.peek() else {
            return Err(self.unexpected("`(` after the function name"));
        };
        let open = *open;
        self.pos += 1;
        let mut args = Vec::new();
        if !self.eat(&Token::RParen) {
            loop {
                match self.peek() {
                    Some((Token::Str(value), span)) => {
                        args.push(Arg {
                            value: value.clone(),
                            span: *span,
                        });
                        self.pos += 1;
                    }
                    None => return Err(self.error(ErrorKind::UnclosedParen, open)),
                    Some(_) => return Err(self.unexpected("a string argument in ` or \"")),
                }
                if self.eat(&Token::RParen) {
                    break;
                }
                if self.peek().is_none() {
                    return Err(self.error(ErrorKind::UnclosedParen, open));
                }
                if !self.eat(&Token::Comma) {
                    return Err(self.unexpected("`,` or `)`"));
                }
            }
        }
        let span = Span::new(name_span.start, self.tokens[self.pos - 1].1.end);
        if !function.arity.accepts(args.len()) {
            let kind = ErrorKind::WrongArity {
                name: function.name,
                expected: function.arity,
                found: args.len(),
            };
            return Err(self.error(kind, span));
        }
        Ok(Call {
            function,
            args,
            span,
        })
    }

    fn function(&self, name: &str, span: Span) -> Result<Function, ParseError> {
        if let Some(f) = self.functions.iter().find(|f| f.name == name) {
            return Ok(*f);
        }
        let suggestion = self
            .functions
            .iter()
            .find(|f| f.name.eq_ignore_ascii_case(name))
            .or_else(|| self.functions.iter().find(|f| is_near(f.name, name)))
            .map(|f| format!("; did you mean `{}`?", f.name))
            .unwrap_or_default();
        let known = self
            .functions
            .iter()
            .map(|f| f.name)
            .collect::<Vec<_>>()
            .join(", ");
        let kind = ErrorKind::UnknownFunction {
            name: name.to_owned(),
            suggestion,
            known,
        };
        Err(self.error(kind, span))
    }
}

/// Whether `a` and `b` differ by at most two edits (insertions, deletions,
/// substitutions), ignoring ASCII case: close enough to suggest `a`.
fn is_near(a: &str, b: &str) -> bool {
    let (a, b) = (a.to_ascii_lowercase(), b.to_ascii_lowercase());
    let (a, b) = (a.as_bytes(), b.as_bytes());
    if a.len().abs_diff(b.len()) > 2 {
        return false;
    }
    // Levenshtein distance, one row at a time.
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, &ca) in a.iter().enumerate() {
        let mut diagonal = row[0];
        row[0] = i + 1;
        for (j, &cb) in b.iter().enumerate() {
            let substitute = diagonal + usize::from(ca != cb);
            diagonal = row[j + 1];
            row[j + 1] = substitute.min(row[j] + 1).min(diagonal + 1);
        }
    }
    row[b.len()] <= 2
}

#[cfg(test)]
mod tests {
    use super::is_near;

    #[test]
    fn near_names_are_suggested() {
        assert!(is_near("Equals", "Equal"));
        assert!(is_near("Equals", "equlas"));
        assert!(is_near("OneOf", "oneof"));
        assert!(!is_near("Equals", "Prefix"));
        assert!(!is_near("Host", "PathPrefix"));
    }
}
