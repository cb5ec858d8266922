//! The one upgrade ccgate lets through: a WebSocket opening handshake
//! (RFC 6455 §4.1) in HTTP/1.1.
//!
//! `Upgrade` and `Connection` are hop-by-hop headers (RFC 9110 §7.6.1,
//! §7.8): [`super::hop_by_hop`] removes them from every request. Before
//! that, [`is_websocket`] tells whether the request is a WebSocket
//! handshake ccgate forwards; if it is, [`mark`] puts back exactly
//! `Connection: upgrade` and `Upgrade: websocket` — ccgate's own values,
//! not the caller's — and puts the [`Handshake`] mark in the request's
//! extensions. Everything after the edge asks the mark ([`is_marked`]),
//! never the headers again, and the gateway forwards a marked request
//! over a connection of its own (`gateway::websocket`): a plain request
//! pays for no header lookup after the edge's one.
//!
//! A request is a WebSocket handshake when all of these hold:
//! - HTTP/1.1 (an `Upgrade` means nothing in HTTP/1.0, and HTTP/2 forbids
//!   it: RFC 9113 §8.2.2; RFC 8441's extended CONNECT is not offered);
//! - method `GET` (RFC 6455 §4.1, item 2);
//! - `Upgrade` lists the token `websocket` (any case, no version);
//! - `Connection` names `upgrade` (RFC 9110 §7.8: an `Upgrade` that
//!   `Connection` does not name is to be ignored);
//! - no body: no `Transfer-Encoding`, and `Content-Length` absent or `0`.
//!
//! # Security
//!
//! Any other upgrade — `h2c` above all, whose smuggling through proxies
//! reaches a server's HTTP/2 side past the proxy's rules — never reaches
//! a server: the headers go as hop-by-hop ones and the request is
//! forwarded as the plain request it also is. So do other tokens listed
//! beside `websocket` (`Upgrade: h2c, websocket` goes as `websocket`) and
//! an upgrade on a request with a body, whose bytes after the head a
//! server would read either as body or as the new protocol.

use http::header::{self, HeaderMap, HeaderValue};
use http::request::Parts;
use http::{Extensions, Method, Version};

/// The mark of a WebSocket handshake the edge let through, in the
/// request's extensions (which only ccgate writes): asked after the edge
/// instead of the headers, so that a plain request — whose extensions are
/// empty, not even allocated — answers "no" in one branch.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Handshake;

/// Whether `parts` (before hop-by-hop headers are removed) is a WebSocket
/// handshake ccgate forwards (module docs).
pub(crate) fn is_websocket(parts: &Parts) -> bool {
    // Most requests carry no `Upgrade`: one lookup.
    if !parts.headers.contains_key(header::UPGRADE) {
        return false;
    }
    parts.version == Version::HTTP_11
        && parts.method == Method::GET
        && lists(&parts.headers, &header::UPGRADE, "websocket")
        && lists(&parts.headers, &header::CONNECTION, "upgrade")
        && !has_body(&parts.headers)
}

/// Marks an allowed upgrade, after the hop-by-hop headers went: its two
/// headers set again, and the [`Handshake`] mark.
pub(crate) fn mark(parts: &mut Parts) {
    let headers = &mut parts.headers;
    headers.insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
    headers.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
    parts.extensions.insert(Handshake);
}

/// Whether a request that went through the edge (these its extensions)
/// is an allowed WebSocket upgrade.
pub(crate) fn is_marked(extensions: &Extensions) -> bool {
    extensions.get::<Handshake>().is_some()
}

/// Whether a server's `Upgrade` answer names WebSocket and nothing else.
pub(crate) fn names_websocket_only(headers: &HeaderMap) -> bool {
    let mut values = headers.get_all(header::UPGRADE).iter();
    match (values.next(), values.next()) {
        (Some(value), None) => value
            .to_str()
            .is_ok_and(|value| value.trim().eq_ignore_ascii_case("websocket")),
        _ => false,
    }
}

/// Whether the comma-separated lists of `name` hold `token` (any case).
fn lists(headers: &HeaderMap, name: &header::HeaderName, token: &str) -> bool {
    headers
        .get_all(name)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .any(|item| item.trim().eq_ignore_ascii_case(token))
}

fn has_body(headers: &HeaderMap) -> bool {
    headers.contains_key(header::TRANSFER_ENCODING)
        || headers
            .get_all(header::CONTENT_LENGTH)
            .iter()
            .any(|length| length.as_bytes() != b"0")
}

#[cfg(test)]
mod tests {
    use http::Request;

    use super::*;

    fn parts(request: http::request::Builder) -> Parts {
        request.body(()).unwrap().into_parts().0
    }

    fn handshake() -> http::request::Builder {
        Request::get("/chat")
            .header("upgrade", "websocket")
            .header("connection", "Upgrade")
            .header("sec-websocket-key", "dGhlIHNhbXBsZSBub25jZQ==")
            .header("sec-websocket-version", "13")
    }

    #[test]
    fn a_websocket_handshake_is_one_in_any_case() {
        assert!(is_websocket(&parts(handshake())));
        let shouted = Request::get("/")
            .header("Upgrade", "WebSocket")
            .header("Connection", "keep-alive, UPGRADE");
        assert!(is_websocket(&parts(shouted)));
        let listed = Request::get("/")
            .header("upgrade", "h2c, websocket")
            .header("connection", "upgrade");
        assert!(is_websocket(&parts(listed)), "forwarded as websocket only");
        let empty_body = handshake().header("content-length", "0");
        assert!(is_websocket(&parts(empty_body)));
    }

    #[test]
    fn other_upgrades_and_unfit_requests_are_not() {
        let other = |upgrade: &str| {
            Request::get("/")
                .header("upgrade", upgrade)
                .header("connection", "upgrade")
        };
        for upgrade in ["h2c", "foo", "websocket/13", "websocketx", "TLS/1.2"] {
            assert!(!is_websocket(&parts(other(upgrade))), "{upgrade}");
        }
        let unnamed = Request::get("/")
            .header("upgrade", "websocket")
            .header("connection", "keep-alive");
        assert!(!is_websocket(&parts(unnamed)), "Connection must name it");
        let no_connection = Request::get("/").header("upgrade", "websocket");
        assert!(!is_websocket(&parts(no_connection)));
        assert!(!is_websocket(&parts(handshake().method("POST"))));
        assert!(!is_websocket(&parts(handshake().version(Version::HTTP_10))));
        assert!(!is_websocket(&parts(handshake().version(Version::HTTP_2))));
        assert!(!is_websocket(&parts(
            handshake().header("content-length", "5")
        )));
        assert!(!is_websocket(&parts(
            handshake().header("transfer-encoding", "chunked")
        )));
        assert!(!is_websocket(&parts(Request::get("/"))));
    }

    #[test]
    fn a_server_must_answer_websocket_alone() {
        let answer = |values: &[&str]| {
            let mut headers = HeaderMap::new();
            for value in values {
                headers.append(header::UPGRADE, HeaderValue::from_str(value).unwrap());
            }
            names_websocket_only(&headers)
        };
        assert!(answer(&["websocket"]));
        assert!(answer(&["WebSocket"]));
        assert!(!answer(&[]));
        assert!(!answer(&["h2c"]));
        assert!(!answer(&["websocket, h2c"]));
        assert!(!answer(&["websocket", "h2c"]));
    }
}
