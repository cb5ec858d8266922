//! The expression language shared by the `claims` option and router rules.
//!
//! An expression is a boolean formula over function calls whose arguments
//! are strings:
//!
//! ```text
//! Equals(`grp`, `admin`) && !Contains(`areas`, "lab") || OneOf(`tier`, `gold`, `silver`)
//! ```
//!
//! - `!` binds tightest, then `&&`, then `||`; parentheses group.
//! - Arguments are backtick raw strings (no escapes: every character up to
//!   the closing backtick is taken as is) or double-quoted strings with the
//!   escapes `\"`, `\\`, `\n`, `\r`, `\t` and `\uXXXX`.
//! - Which functions exist, and how many arguments each takes, is decided by
//!   the caller through a list of [`Function`]s and checked at parse time:
//!   claims use `Equals`, `Prefix`, … ([`crate::claims`]); router rules use
//!   `Host`, `PathPrefix`, ….
//!
//! Parsing keeps byte positions ([`Span`]) so that every [`ParseError`]
//! names where the fault is and what was expected; [`ParseError::render`]
//! draws a caret under it. The tree ([`Expr`]) is generic over its leaves:
//! the parser yields [`Call`]s, which a user such as [`crate::claims`] maps
//! once to its own compiled checks with [`Expr::try_map`], so evaluation does
//! no string parsing.
//!
//! # Example
//!
//! ```
//! use ccgate::expr::{self, Arity, Function};
//!
//! const FUNCTIONS: &[Function] = &[Function::new("Is", Arity::Exactly(1))];
//!
//! let tree = expr::parse("Is(`a`) && !Is(`b`)", FUNCTIONS)?;
//! assert!(tree.eval(&|call: &expr::Call| call.args[0].value == "a"));
//!
//! let err = expr::parse("Is(`a`) &&", FUNCTIONS).unwrap_err();
//! assert_eq!(err.to_string(), "at column 11: expected a function call or `(`, found the end of the expression");
//! # Ok::<(), expr::ParseError>(())
//! ```

mod error;
mod lexer;
mod parser;
mod print;

pub use error::{ErrorKind, ParseError};
pub use parser::{MAX_DEPTH, parse};

/// A byte range `start..end` in the source text of an expression.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Span {
    /// First byte.
    pub start: usize,
    /// One past the last byte.
    pub end: usize,
}

impl Span {
    /// The span `start..end`.
    #[must_use]
    pub const fn new(start: usize, end: usize) -> Self {
        Self { start, end }
    }
}

/// How many arguments a [`Function`] takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Arity {
    /// Exactly this many.
    Exactly(usize),
    /// This many or more.
    AtLeast(usize),
}

impl Arity {
    /// Whether `n` arguments fit.
    #[must_use]
    pub const fn accepts(self, n: usize) -> bool {
        match self {
            Self::Exactly(k) => n == k,
            Self::AtLeast(k) => n >= k,
        }
    }
}

impl std::fmt::Display for Arity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let plural = |k: usize| if k == 1 { "" } else { "s" };
        match *self {
            Self::Exactly(k) => write!(f, "{k} argument{}", plural(k)),
            Self::AtLeast(k) => write!(f, "at least {k} argument{}", plural(k)),
        }
    }
}

/// A function the parser accepts: its exact (case-sensitive) name and arity.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Function {
    /// The name as written in expressions, e.g. `Equals`.
    pub name: &'static str,
    /// How many arguments it takes.
    pub arity: Arity,
}

impl Function {
    /// A function named `name` taking `arity` arguments.
    #[must_use]
    pub const fn new(name: &'static str, arity: Arity) -> Self {
        Self { name, arity }
    }
}

/// A string argument of a call, already unescaped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Arg {
    /// The value, with quotes removed and escapes resolved.
    pub value: String,
    /// Where the argument, quotes included, stands in the source.
    pub span: Span,
}

/// A function call: the leaf the parser produces.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Call {
    /// The function, as found in the list given to [`parse`].
    pub function: Function,
    /// The arguments, in order; their number fits `function.arity`.
    pub args: Vec<Arg>,
    /// Where the whole call stands in the source.
    pub span: Span,
}

/// A boolean expression tree whose leaves are `L`.
///
/// `And` and `Or` hold two or more operands, in source order; a chain
/// `a && b && c` is one `And` of three, while `a && (b && c)` keeps the
/// parenthesised group as a nested `And`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Expr<L> {
    /// A leaf, e.g. a [`Call`].
    Leaf(L),
    /// `!operand`.
    Not(Box<Expr<L>>),
    /// All operands hold (`&&`), evaluated left to right, stopping at the first false.
    And(Vec<Expr<L>>),
    /// Any operand holds (`||`), evaluated left to right, stopping at the first true.
    Or(Vec<Expr<L>>),
}

impl<L> Expr<L> {
    /// Evaluates the tree, asking `leaf` for the value of each leaf reached.
    ///
    /// Short-circuits like Rust's `&&` and `||`. Recursion depth is bounded
    /// by [`MAX_DEPTH`] for trees built by [`parse`].
    pub fn eval(&self, leaf: &impl Fn(&L) -> bool) -> bool {
        match self {
            Self::Leaf(l) => leaf(l),
            Self::Not(e) => !e.eval(leaf),
            Self::And(es) => es.iter().all(|e| e.eval(leaf)),
            Self::Or(es) => es.iter().any(|e| e.eval(leaf)),
        }
    }

    /// Builds the same tree with every leaf converted by `f`, stopping at
    /// the first error. This is how a caller compiles [`Call`]s into its own
    /// checks once, at configuration time.
    ///
    /// # Errors
    ///
    /// The first error `f` returns, in source order.
    pub fn try_map<M, E>(self, f: &mut impl FnMut(L) -> Result<M, E>) -> Result<Expr<M>, E> {
        Ok(match self {
            Self::Leaf(l) => Expr::Leaf(f(l)?),
            Self::Not(e) => Expr::Not(Box::new(e.try_map(f)?)),
            Self::And(es) => Expr::And(Self::try_map_all(es, f)?),
            Self::Or(es) => Expr::Or(Self::try_map_all(es, f)?),
        })
    }

    fn try_map_all<M, E>(
        es: Vec<Self>,
        f: &mut impl FnMut(L) -> Result<M, E>,
    ) -> Result<Vec<Expr<M>>, E> {
        es.into_iter().map(|e| e.try_map(f)).collect()
    }

    /// Calls `f` on every leaf, in source order.
    pub fn for_each_leaf(&self, f: &mut impl FnMut(&L)) {
        match self {
            Self::Leaf(l) => f(l),
            Self::Not(e) => e.for_each_leaf(f),
            Self::And(es) | Self::Or(es) => es.iter().for_each(|e| e.for_each_leaf(f)),
        }
    }
}
