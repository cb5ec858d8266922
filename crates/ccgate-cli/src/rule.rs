//! Router rules: the expression language of `ccgate::expr` with the
//! matchers `Host`, `PathPrefix`, `Path`, `Method` and `Header`.
//!
//! - ``Host(`a.example.com`, `b.example.com`)``: the request's host (the
//!   `Host` header or the URI authority, port removed) equals one of them,
//!   ignoring ASCII case;
//! - ``PathPrefix(`/v1`)``: the path starts with it;
//! - ``Path(`/health`)``: the path is exactly it;
//! - ``Method(`GET`)``: the method is it (ASCII case ignored);
//! - ``Header(`X-Env`, `prod`)``: one value of that header equals it.

use ccgate::expr::{self, Arity, Call, Expr, Function, ParseError};
use http::request::Parts;
use http::{HeaderMap, HeaderName, Method, Uri};

/// The matchers of router rules.
pub(crate) const MATCHERS: &[Function] = &[
    Function::new("Host", Arity::AtLeast(1)),
    Function::new("PathPrefix", Arity::Exactly(1)),
    Function::new("Path", Arity::Exactly(1)),
    Function::new("Method", Arity::Exactly(1)),
    Function::new("Header", Arity::Exactly(2)),
];

/// A compiled rule, with the text it was compiled from.
#[derive(Debug)]
pub(crate) struct Rule {
    source: String,
    expr: Expr<Matcher>,
}

/// Rules are equal when their texts are.
impl PartialEq for Rule {
    fn eq(&self, other: &Self) -> bool {
        self.source == other.source
    }
}

impl Eq for Rule {}

#[derive(Debug)]
enum Matcher {
    Host(Vec<String>),
    PathPrefix(String),
    Path(String),
    Method(Method),
    Header(HeaderName, String),
}

impl Rule {
    /// Parses and compiles `source`.
    ///
    /// # Errors
    ///
    /// A [`ParseError`] with the position: syntax, unknown matcher, wrong
    /// arity, or an argument that cannot match (a path not starting with
    /// `/`, an invalid method or header name).
    pub(crate) fn parse(source: &str) -> Result<Self, ParseError> {
        let calls = expr::parse(source, MATCHERS)?;
        let expr = calls.try_map(&mut |call| compile(&call, source))?;
        Ok(Self {
            source: source.to_owned(),
            expr,
        })
    }

    /// The rule as written.
    pub(crate) fn source(&self) -> &str {
        &self.source
    }

    /// The priority of a router that sets none: the rule's length in
    /// characters, so that longer (more specific) rules go first.
    pub(crate) fn default_priority(&self) -> i64 {
        i64::try_from(self.source.chars().count()).unwrap_or(i64::MAX)
    }

    /// Whether the request matches.
    pub(crate) fn matches(&self, request: &Parts) -> bool {
        let host = host_of(&request.uri, &request.headers);
        self.expr.eval(&|matcher| match matcher {
            Matcher::Host(hosts) => {
                host.is_some_and(|h| hosts.iter().any(|want| want.eq_ignore_ascii_case(h)))
            }
            Matcher::PathPrefix(prefix) => request.uri.path().starts_with(prefix.as_str()),
            Matcher::Path(path) => request.uri.path() == path,
            Matcher::Method(method) => request.method == method,
            Matcher::Header(name, value) => request
                .headers
                .get_all(name)
                .iter()
                .any(|v| v.as_bytes() == value.as_bytes()),
        })
    }
}

fn compile(call: &Call, source: &str) -> Result<Matcher, ParseError> {
    let invalid =
        |reason: &str, i: usize| ParseError::invalid_argument(reason, call.args[i].span, source);
    let arg = |i: usize| call.args[i].value.clone();
    Ok(match call.function.name {
        "Host" => {
            if let Some(i) = call.args.iter().position(|a| a.value.is_empty()) {
                return Err(invalid("a host must not be empty", i));
            }
            // Requests' hosts are lower case without a trailing dot
            // (crate::edge::host); so are the rule's.
            let host = |value: &str| {
                let value = value.strip_suffix('.').unwrap_or(value);
                value.to_ascii_lowercase()
            };
            Matcher::Host(call.args.iter().map(|a| host(&a.value)).collect())
        }
        "PathPrefix" | "Path" => {
            if !call.args[0].value.starts_with('/') {
                return Err(invalid("a path must start with `/`", 0));
            }
            if call.function.name == "Path" {
                Matcher::Path(arg(0))
            } else {
                Matcher::PathPrefix(arg(0))
            }
        }
        "Method" => Matcher::Method(
            Method::from_bytes(arg(0).to_ascii_uppercase().as_bytes())
                .map_err(|_| invalid("not an HTTP method", 0))?,
        ),
        "Header" => Matcher::Header(
            HeaderName::from_bytes(call.args[0].value.as_bytes())
                .map_err(|_| invalid("not a header name", 0))?,
            arg(1),
        ),
        other => unreachable!("`{other}` is not in MATCHERS"),
    })
}

/// The host the request is for, without port: the URI's (HTTP/2) or the
/// `Host` header's.
pub(crate) fn host_of<'a>(uri: &'a Uri, headers: &'a HeaderMap) -> Option<&'a str> {
    let host = match uri.host() {
        Some(host) => host,
        None => headers.get(http::header::HOST)?.to_str().ok()?,
    };
    Some(strip_port(host))
}

fn strip_port(host: &str) -> &str {
    if host.starts_with('[') {
        return host.split_inclusive(']').next().unwrap_or(host);
    }
    host.rsplit_once(':').map_or(host, |(name, port)| {
        if port.bytes().all(|b| b.is_ascii_digit()) {
            name
        } else {
            host
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parts(method: &str, uri: &str, headers: &[(&str, &str)]) -> Parts {
        let mut builder = http::Request::builder().method(method).uri(uri);
        for (name, value) in headers {
            builder = builder.header(*name, *value);
        }
        builder.body(()).unwrap().into_parts().0
    }

    #[test]
    fn matchers_match_per_their_docs() {
        let get = parts(
            "GET",
            "/v1/things?x=1",
            &[("host", "API.example.com:8080"), ("x-env", "prod")],
        );
        let cases = [
            ("Host(`api.example.com`)", true),
            ("Host(`other`, `api.example.com`)", true),
            ("Host(`example.com`)", false),
            ("PathPrefix(`/v1`)", true),
            ("PathPrefix(`/v2`)", false),
            ("Path(`/v1/things`)", true),
            ("Path(`/v1`)", false),
            ("Method(`get`)", true),
            ("Method(`POST`)", false),
            ("Header(`X-Env`, `prod`)", true),
            ("Header(`X-Env`, `Prod`)", false),
            (
                "Host(`api.example.com`) && PathPrefix(`/v1`) && !Method(`DELETE`)",
                true,
            ),
            ("PathPrefix(`/v2`) || Header(`x-env`, `prod`)", true),
        ];
        for (source, expected) in cases {
            assert_eq!(
                Rule::parse(source).unwrap().matches(&get),
                expected,
                "{source}"
            );
        }
    }

    #[test]
    fn the_host_comes_from_the_uri_in_http2() {
        let h2 = parts("GET", "https://api.example.com/v1", &[]);
        assert!(Rule::parse("Host(`api.example.com`)").unwrap().matches(&h2));
        let ipv6 = parts("GET", "/", &[("host", "[::1]:8080")]);
        assert_eq!(host_of(&ipv6.uri, &ipv6.headers), Some("[::1]"));
    }

    #[test]
    fn bad_arguments_are_located() {
        for (source, column) in [
            ("PathPrefix(`v1`)", 12),
            ("Method(`GE T`)", 8),
            ("Header(`a b`, `c`)", 8),
            ("Hots(`a`)", 1),
        ] {
            let error = Rule::parse(source).unwrap_err();
            assert_eq!(error.column(), column, "{source}: {error}");
        }
    }
}
