//! Router rules: the expression language of [`ccgate::expr`] with the
//! matchers `Host`, `PathPrefix`, `Path`, `Method` and `Header`.
//!
//! The loader checks that every rule parses and that each argument can
//! match something: paths start with `/`, methods are HTTP method tokens,
//! header names are valid, hosts are not empty. The runtime compiles the
//! same [`FUNCTIONS`].

use ccgate::expr::{self, Arity, Call, Expr, Function, ParseError};

/// The matchers of router rules.
pub(crate) const FUNCTIONS: &[Function] = &[
    Function::new("Host", Arity::AtLeast(1)),
    Function::new("PathPrefix", Arity::Exactly(1)),
    Function::new("Path", Arity::Exactly(1)),
    Function::new("Method", Arity::Exactly(1)),
    Function::new("Header", Arity::Exactly(2)),
];

/// Parses `rule` and checks the arguments of its matchers.
///
/// # Errors
///
/// A [`ParseError`] whose `Display` gives the column of the fault.
pub(crate) fn parse(rule: &str) -> Result<Expr<Call>, ParseError> {
    let tree = expr::parse(rule, FUNCTIONS)?;
    let mut fault = None;
    tree.for_each_leaf(&mut |call: &Call| {
        if fault.is_none() {
            fault = check_call(call, rule).err();
        }
    });
    match fault {
        Some(error) => Err(error),
        None => Ok(tree),
    }
}

fn check_call(call: &Call, rule: &str) -> Result<(), ParseError> {
    let invalid = |index: usize, reason: &str| {
        Err(ParseError::invalid_argument(
            reason,
            call.args[index].span,
            rule,
        ))
    };
    match call.function.name {
        "Host" => {
            for (index, arg) in call.args.iter().enumerate() {
                if arg.value.is_empty() {
                    return invalid(index, "a host must not be empty");
                }
            }
        }
        "PathPrefix" | "Path" if !call.args[0].value.starts_with('/') => {
            return invalid(0, "a path must start with `/`");
        }
        "Method" if http::Method::from_bytes(call.args[0].value.as_bytes()).is_err() => {
            return invalid(0, "not an HTTP method");
        }
        "Header" if http::HeaderName::from_bytes(call.args[0].value.as_bytes()).is_err() => {
            return invalid(0, "not a valid HTTP header name");
        }
        _ => {}
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_the_matchers() {
        for rule in [
            "Host(`api.example.com`) && PathPrefix(`/v1`)",
            "Host(`a.example.com`, `b.example.com`)",
            "Path(`/ping`) || Method(`POST`)",
            "Header(`X-Tenant`, `acme`) && !Method(`DELETE`)",
        ] {
            parse(rule).unwrap_or_else(|e| panic!("{rule}: {e}"));
        }
    }

    #[test]
    fn errors_give_the_column() {
        let err = parse("Host(`a`) && Pathprefix(`/v1`)").unwrap_err();
        assert!(
            err.to_string().starts_with(
                "at column 14: unknown function `Pathprefix`; did you mean `PathPrefix`?"
            ),
            "{err}"
        );
        let err = parse("PathPrefix(`v1`)").unwrap_err();
        assert_eq!(err.to_string(), "at column 12: a path must start with `/`");
        let err = parse("Host(`a`) && Method(`GET POST`)").unwrap_err();
        assert_eq!(err.to_string(), "at column 21: not an HTTP method");
        let err = parse("Header(`bad header`, `x`)").unwrap_err();
        assert_eq!(err.to_string(), "at column 8: not a valid HTTP header name");
        let err = parse("Host(``)").unwrap_err();
        assert_eq!(err.to_string(), "at column 6: a host must not be empty");
        let err = parse("Path(`/a`, `/b`)").unwrap_err();
        assert!(
            err.to_string().contains("`Path` takes 1 argument, found 2"),
            "{err}"
        );
    }
}
