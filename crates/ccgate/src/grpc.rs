//! gRPC-shaped answers (SPEC §2.6, §11): a gRPC client that is refused
//! must see a gRPC status, not an HTTP error it cannot read. A request
//! whose `Content-Type` is `application/grpc…` is answered with HTTP 200,
//! `content-type: application/grpc` and `grpc-status`/`grpc-message` in
//! the headers of an empty response — a trailers-only response, which
//! HTTP/2 sends as one HEADERS frame ending the stream.
//!
//! Statuses follow gRPC's HTTP-to-gRPC mapping: 400 → 13 INTERNAL,
//! 401 → 16 UNAUTHENTICATED, 403 → 7 PERMISSION_DENIED, 404 → 12
//! UNIMPLEMENTED, 429, 502, 503 and 504 → 14 UNAVAILABLE, anything else →
//! 2 UNKNOWN.
//!
//! # Example
//!
//! ```
//! use ccgate::grpc;
//! use http::{HeaderMap, HeaderValue, StatusCode};
//!
//! let mut headers = HeaderMap::new();
//! headers.insert("content-type", HeaderValue::from_static("application/grpc+proto"));
//! assert!(grpc::is_grpc(&headers));
//!
//! let response = grpc::trailers_only(StatusCode::FORBIDDEN, "denied: 100% sure");
//! assert_eq!(response.status(), 200);
//! assert_eq!(response.headers()["grpc-status"], "7");
//! assert_eq!(response.headers()["grpc-message"], "denied: 100%25 sure");
//! ```

use bytes::Bytes;
use http::{HeaderMap, HeaderValue, Response, StatusCode, header};
use http_body_util::Full;

/// Whether a request with these headers is a gRPC call.
#[must_use]
pub fn is_grpc(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .is_some_and(|value| value.as_bytes().starts_with(b"application/grpc"))
}

/// The gRPC status code standing for an HTTP `status`.
#[must_use]
pub fn status_code(status: StatusCode) -> u8 {
    match status.as_u16() {
        400 => 13,
        401 => 16,
        403 => 7,
        404 => 12,
        429 | 502..=504 => 14,
        _ => 2,
    }
}

/// The trailers-only gRPC answer for an HTTP `status` with `message`
/// (percent-encoded as gRPC requires: `%` and bytes outside printable
/// ASCII; a trailing newline dropped).
#[must_use]
pub fn trailers_only(status: StatusCode, message: &str) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::new()));
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/grpc"),
    );
    headers.insert(
        "grpc-status",
        HeaderValue::from(u16::from(status_code(status))),
    );
    if let Ok(value) = HeaderValue::from_str(&encoded(message.trim_end())) {
        headers.insert("grpc-message", value);
    }
    response
}

/// `message` percent-encoded for `grpc-message`.
fn encoded(message: &str) -> String {
    let mut out = String::with_capacity(message.len());
    for byte in message.bytes() {
        if (0x20..=0x7e).contains(&byte) && byte != b'%' {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn http_statuses_map_to_grpc_codes() {
        for (http, grpc) in [
            (400, 13),
            (401, 16),
            (403, 7),
            (404, 12),
            (429, 14),
            (502, 14),
            (503, 14),
            (504, 14),
            (500, 2),
        ] {
            assert_eq!(
                status_code(StatusCode::from_u16(http).unwrap()),
                grpc,
                "{http}"
            );
        }
    }

    #[test]
    fn a_trailers_only_answer_is_an_empty_200_with_the_status() {
        let response = trailers_only(StatusCode::UNAUTHORIZED, "no credentials\n");
        assert_eq!(response.status(), 200);
        assert_eq!(response.headers()["content-type"], "application/grpc");
        assert_eq!(response.headers()["grpc-status"], "16");
        assert_eq!(response.headers()["grpc-message"], "no credentials");
        assert_eq!(encoded("é\r\n"), "%C3%A9%0D%0A");
    }

    #[test]
    fn only_grpc_content_types_are_grpc() {
        let mut headers = HeaderMap::new();
        assert!(!is_grpc(&headers));
        for (value, grpc) in [
            ("application/grpc", true),
            ("application/grpc+json", true),
            ("application/json", false),
            ("text/plain", false),
        ] {
            headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(value));
            assert_eq!(is_grpc(&headers), grpc, "{value}");
        }
    }
}
