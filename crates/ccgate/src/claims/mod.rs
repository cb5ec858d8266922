//! The claims language of the `claims` option: a [`Rule`] checked against
//! the payload of a JWT access token.
//!
//! | function | holds when |
//! |---|---|
//! | `Equals(key, value)` | the claim is a scalar whose rendering equals `value` |
//! | `Prefix(key, value)` | the claim is a string starting with `value` |
//! | `Contains(key, value)` | the claim is a string containing `value`, or an array with an element equal to `value` |
//! | `SplitContains(key, sep, value)` | the claim is a string which, split on exactly `sep` and each piece trimmed of spaces, has a piece equal to `value` |
//! | `OneOf(key, v1, v2, …)` | the claim is an array with an element equal to one of the values, or a scalar equal to one of them |
//!
//! Operators, precedence and quoting are those of [`crate::expr`]. Keys
//! are [`KeyPath`]s (`user.name`, `a\.b`, `c\\d`). Scalars compare by
//! their rendering ([`render_scalar`]): `Equals(`active`, `true`)` holds
//! for the JSON `true`, `Equals(`exp`, `1700000000`)` for that number. A
//! missing key, a null, or an array or object where a scalar is needed
//! makes the function false.
//!
//! The rule is parsed and compiled once; [`Rule::eval`] walks the
//! document without parsing and allocates only to render numbers.
//!
//! # Example
//!
//! ```
//! use ccgate::claims::Rule;
//! use serde_json::json;
//!
//! let rule: Rule = "Equals(`grp`, `admin`) && !Contains(`areas`, `lab`)".parse()?;
//! assert!(rule.eval(&json!({"grp": "admin", "areas": ["office", "home"]})));
//! assert!(!rule.eval(&json!({"grp": "testers"})));
//! # Ok::<(), ccgate::expr::ParseError>(())
//! ```

mod path;
mod render;

use std::fmt;
use std::str::FromStr;

use serde_json::Value;

pub use path::KeyPath;
pub use render::{render_scalar, scalar_equals};

use crate::expr::{self, Arity, Call, Expr, Function, ParseError};

/// The functions of the claims language, with their arities.
pub const FUNCTIONS: &[Function] = &[
    Function::new("Equals", Arity::Exactly(2)),
    Function::new("Prefix", Arity::Exactly(2)),
    Function::new("Contains", Arity::Exactly(2)),
    Function::new("SplitContains", Arity::Exactly(3)),
    Function::new("OneOf", Arity::AtLeast(2)),
];

/// A compiled claims expression.
#[derive(Clone)]
pub struct Rule {
    source: Box<str>,
    expr: Expr<Check>,
}

/// One compiled function call of a [`Rule`].
#[derive(Debug, Clone, PartialEq, Eq)]
enum Check {
    Equals {
        key: KeyPath,
        value: String,
    },
    Prefix {
        key: KeyPath,
        value: String,
    },
    Contains {
        key: KeyPath,
        value: String,
    },
    SplitContains {
        key: KeyPath,
        separator: String,
        value: String,
    },
    OneOf {
        key: KeyPath,
        values: Box<[String]>,
    },
}

impl Rule {
    /// Parses and compiles a claims expression.
    ///
    /// # Errors
    ///
    /// A [`ParseError`] naming the position: any syntax error of
    /// [`crate::expr::parse`], an unknown function or wrong arity, an
    /// invalid key path, or an empty `SplitContains` separator.
    pub fn parse(source: &str) -> Result<Self, ParseError> {
        let calls = expr::parse(source, FUNCTIONS)?;
        let expr = calls.try_map(&mut |call| compile(&call, source))?;
        Ok(Self {
            source: source.into(),
            expr,
        })
    }

    /// Whether the claims `document` satisfies the rule.
    #[must_use]
    pub fn eval(&self, document: &Value) -> bool {
        self.expr.eval(&|check| check.eval(document))
    }

    /// The expression as it was written.
    #[must_use]
    pub fn source(&self) -> &str {
        &self.source
    }
}

impl FromStr for Rule {
    type Err = ParseError;

    fn from_str(source: &str) -> Result<Self, ParseError> {
        Self::parse(source)
    }
}

impl fmt::Debug for Rule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("Rule").field(&self.source).finish()
    }
}

fn compile(call: &Call, source: &str) -> Result<Check, ParseError> {
    let [key_arg, values @ ..] = call.args.as_slice() else {
        unreachable!("every claims function takes a key first");
    };
    let key = KeyPath::parse(&key_arg.value)
        .map_err(|reason| ParseError::invalid_argument(reason, key_arg.span, source))?;
    // The parser checked the arity, so the patterns below are exhaustive.
    Ok(match (call.function.name, values) {
        ("Equals", [value]) => Check::Equals {
            key,
            value: value.value.clone(),
        },
        ("Prefix", [value]) => Check::Prefix {
            key,
            value: value.value.clone(),
        },
        ("Contains", [value]) => Check::Contains {
            key,
            value: value.value.clone(),
        },
        ("SplitContains", [separator, value]) => {
            if separator.value.is_empty() {
                return Err(ParseError::invalid_argument(
                    "empty separator",
                    separator.span,
                    source,
                ));
            }
            Check::SplitContains {
                key,
                separator: separator.value.clone(),
                value: value.value.clone(),
            }
        }
        ("OneOf", values) => Check::OneOf {
            key,
            values: values.iter().map(|arg| arg.value.clone()).collect(),
        },
        (other, _) => unreachable!("`{other}` with this arity is not in FUNCTIONS"),
    })
}

impl Check {
    fn eval(&self, document: &Value) -> bool {
        match self {
            Self::Equals { key, value } => key
                .lookup(document)
                .is_some_and(|c| scalar_equals(c, value)),
            Self::Prefix { key, value } => {
                string_claim(key, document).is_some_and(|s| s.starts_with(value.as_str()))
            }
            Self::Contains { key, value } => match key.lookup(document) {
                Some(Value::String(s)) => s.contains(value.as_str()),
                Some(Value::Array(items)) => items.iter().any(|item| scalar_equals(item, value)),
                _ => false,
            },
            Self::SplitContains {
                key,
                separator,
                value,
            } => string_claim(key, document).is_some_and(|s| {
                s.split(separator.as_str())
                    .any(|piece| piece.trim_matches(' ') == value)
            }),
            Self::OneOf { key, values } => match key.lookup(document) {
                Some(Value::Array(items)) => items
                    .iter()
                    .any(|item| values.iter().any(|v| scalar_equals(item, v))),
                Some(scalar) => values.iter().any(|v| scalar_equals(scalar, v)),
                None => false,
            },
        }
    }
}

fn string_claim<'v>(key: &KeyPath, document: &'v Value) -> Option<&'v str> {
    key.lookup(document)?.as_str()
}
