//! Entry points for the cargo-fuzz targets in `fuzz/`: the parts of the
//! command that read untrusted input. Not an API: hidden from the docs
//! and free to change with the targets.

use std::path::Path;

use crate::edge::path::{EncodedCharacters, PathRules, normalise};

/// Normalises `path` with every encoded character refused, or all
/// allowed, and with or without `sanitizePath`; checks the normaliser's
/// own promises and panics when one is broken.
pub fn normalise_path(path: &str, allow_all: bool, sanitize: bool) {
    let allow = if allow_all {
        EncodedCharacters::ALL
    } else {
        EncodedCharacters::default()
    };
    let rules = PathRules { allow, sanitize };
    let Ok(once) = normalise(path, &rules) else {
        return;
    };
    let twice = normalise(&once, &rules).expect("a normalised path normalises again");
    assert_eq!(once, twice, "normalising is idempotent");
    if sanitize && once.starts_with('/') {
        for bad in ["//", "/./", "/../"] {
            assert!(!once.contains(bad), "{bad} left in {once:?}");
        }
        assert!(!once.ends_with("/.") && !once.ends_with("/.."), "{once:?}");
    }
}

/// Loads `text` as a main configuration file (the loader must answer with
/// a configuration or an error, never panic).
pub fn load_config(text: &str) {
    let _ = crate::config::load_text(Path::new("fuzz.yaml"), text);
}

/// The routing table `request_head` routes against: a router behind a
/// middleware for `/api` and for a host, a catch-all without one.
const ROUTES: &str = "\
entryPoints:
  web: {address: '127.0.0.1:1'}
http:
  routers:
    api: {rule: 'PathPrefix(`/api`)', service: s, middlewares: [auth]}
    internal: {rule: 'Host(`internal.example.com`)', service: s, middlewares: [auth]}
    all: {rule: 'PathPrefix(`/`)', service: s}
  middlewares:
    auth: {plugin: {oAuthClientCredentials: {url: 'http://127.0.0.1:1/token', audience: a}}}
  services:
    s: {loadBalancer: {servers: [{url: 'http://127.0.0.1:1'}]}}
";

/// Parses `data` as an HTTP/1.1 request head with hyper's parser
/// (`httparse`), builds the request as hyper would, applies the edge
/// rules and routes it; checks that what routing sees is normalised and
/// that a request the middleware guards cannot reach the catch-all.
///
/// # Panics
///
/// When one of those promises is broken (that is the finding).
pub fn request_head(data: &[u8]) {
    use std::sync::OnceLock;

    use http::header::{self, HeaderName, HeaderValue};
    use http::{Method, Request, Uri};

    use crate::edge::{self, EdgeRules};
    use crate::gateway::fuzzing_routing;

    static ROUTING: OnceLock<fuzzing_routing::Table> = OnceLock::new();
    let routing = ROUTING.get_or_init(|| {
        let config = crate::config::load_text(Path::new("fuzz.yaml"), ROUTES)
            .expect("the fuzz routing table loads");
        fuzzing_routing::Table::new(&config)
    });

    let mut headers = [httparse::EMPTY_HEADER; 64];
    let mut parsed = httparse::Request::new(&mut headers);
    let Ok(httparse::Status::Complete(_)) = parsed.parse(data) else {
        return;
    };
    let (Some(method), Some(target)) = (parsed.method, parsed.path) else {
        return;
    };
    let Ok(method) = Method::from_bytes(method.as_bytes()) else {
        return;
    };
    let Ok(uri) = target.parse::<Uri>() else {
        return;
    };
    let mut request = Request::builder().method(method).uri(uri);
    for h in parsed.headers.iter() {
        let (Ok(name), Ok(value)) = (
            HeaderName::from_bytes(h.name.as_bytes()),
            HeaderValue::from_bytes(h.value),
        ) else {
            return;
        };
        request = request.header(name, value);
    }
    let Ok(request) = request.body(()) else {
        return;
    };
    let (mut parts, ()) = request.into_parts();
    let client = HeaderValue::from_static("192.0.2.1");
    if edge::admit(&mut parts, &EdgeRules::default(), false, &client).is_err() {
        return;
    }
    let path = parts.uri.path();
    if path.starts_with('/') {
        for bad in ["//", "/./", "/../"] {
            assert!(!path.contains(bad), "{bad} in the routed path {path:?}");
        }
    }
    assert!(parts.headers.get_all(header::HOST).iter().count() <= 1);
    assert!(!parts.headers.contains_key(header::CONNECTION));
    assert!(
        !parts
            .headers
            .keys()
            .any(|name| name.as_str().starts_with("x-forwarded-")),
        "a forwarded header survived"
    );
    let guarded = path == "/api" || path.starts_with("/api/");
    if let Some(name) = routing.route(&parts)
        && guarded
    {
        assert_ne!(
            name, "all",
            "{path:?} took the catch-all around the middleware"
        );
    }
}
