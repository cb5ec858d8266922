//! The middleware (`ccgate::Middleware` and its tower layer) end to end:
//! a caller → real HTTP → axum with the layer → echo upstream, with tokens
//! from the real test IdP, or from the fake token server for faults.

mod caching;
mod client_assertions;
mod forwarding;
mod introspection;
mod metrics;
mod options;
mod protection;
mod recall;
mod responses;
mod secrets;
mod verification;

use base64::Engine as _;
use ccgate::Middleware;
use ccgate::options::Options;
use serde_json::{Value, json};

const AUDIENCE: &str = "https://api.example.com";

/// Options for a middleware in front of `token_endpoint`, with short
/// timeouts, merged with `extra` (fields of `oAuthClientCredentials`).
fn options(token_endpoint: &str, extra: Value) -> Options {
    let mut value = json!({
        "url": token_endpoint,
        "audience": AUDIENCE,
        "clientConfig": {"timeoutSeconds": 2, "maxRetries": 1},
    });
    let object = value.as_object_mut().expect("object");
    let Value::Object(extra) = extra else {
        panic!("extra options are an object")
    };
    object.extend(extra);
    Options::from_value(value).expect("valid options")
}

fn middleware(token_endpoint: &str, extra: Value) -> Middleware {
    Middleware::new(options(token_endpoint, extra)).expect("valid middleware")
}

/// The payload of a JWT.
fn claims_of(token: &str) -> Value {
    let payload = token.split('.').nth(1).expect("a JWT");
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload)
        .expect("base64url");
    serde_json::from_slice(&bytes).expect("JSON claims")
}

/// Headers with `Authorization: Basic` for `id` and `secret`.
fn basic_headers(id: &str, secret: &str) -> http::HeaderMap {
    let mut headers = http::HeaderMap::new();
    headers.insert(
        http::header::AUTHORIZATION,
        http::HeaderValue::try_from(crate::support::upstream::basic(id, secret)).unwrap(),
    );
    headers
}

/// A port on 127.0.0.1 with nothing listening.
async fn closed_port() -> u16 {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    listener.local_addr().expect("address").port()
}
