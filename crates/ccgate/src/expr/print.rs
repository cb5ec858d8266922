//! Prints a tree of calls back as source text that parses to the same tree.

use std::fmt::{self, Display, Formatter, Write};

use super::{Call, Expr};

impl Display for Expr<Call> {
    /// Canonical source: operands separated by ` && ` / ` || `, parentheses
    /// only where precedence needs them, arguments as raw strings unless
    /// they hold a backtick.
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        match self {
            Self::Leaf(call) => call.fmt(f),
            Self::Not(operand) => match **operand {
                Self::And(_) | Self::Or(_) => write!(f, "!({operand})"),
                _ => write!(f, "!{operand}"),
            },
            Self::And(operands) => join(f, operands, " && ", |e| {
                matches!(e, Self::And(_) | Self::Or(_))
            }),
            Self::Or(operands) => join(f, operands, " || ", |e| matches!(e, Self::Or(_))),
        }
    }
}

fn join(
    f: &mut Formatter<'_>,
    operands: &[Expr<Call>],
    separator: &str,
    needs_parens: impl Fn(&Expr<Call>) -> bool,
) -> fmt::Result {
    for (i, operand) in operands.iter().enumerate() {
        if i > 0 {
            f.write_str(separator)?;
        }
        if needs_parens(operand) {
            write!(f, "({operand})")?;
        } else {
            write!(f, "{operand}")?;
        }
    }
    Ok(())
}

impl Display for Call {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        write!(f, "{}(", self.function.name)?;
        for (i, arg) in self.args.iter().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            write_string(f, &arg.value)?;
        }
        f.write_char(')')
    }
}

/// Writes `value` as a raw string, or double-quoted with escapes when it
/// holds a backtick.
fn write_string(f: &mut Formatter<'_>, value: &str) -> fmt::Result {
    if !value.contains('`') {
        return write!(f, "`{value}`");
    }
    f.write_char('"')?;
    for c in value.chars() {
        match c {
            '"' => f.write_str("\\\"")?,
            '\\' => f.write_str("\\\\")?,
            '\n' => f.write_str("\\n")?,
            '\r' => f.write_str("\\r")?,
            '\t' => f.write_str("\\t")?,
            c => f.write_char(c)?,
        }
    }
    f.write_char('"')
}
