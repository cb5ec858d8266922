//! Hop-by-hop headers (RFC 9110 §7.6.1): `Connection` and the headers it
//! names describe one connection, not the message, so a proxy removes
//! them. On arrival this happens before any middleware (SPEC §10): a
//! caller's `Connection: authorization, x-group` can then never make
//! ccgate drop a header it adds itself. The one upgrade that goes on, a
//! WebSocket handshake, gets its two headers back afterwards
//! ([`super::websocket`]).
//!
//! `TE` is hop-by-hop too, but `TE: trailers` says the caller takes
//! trailers, which gRPC needs end to end: it is kept, as the one value
//! HTTP/2 allows (RFC 9113 §8.2.2); any other `TE` value goes.

use http::header::{self, HeaderMap, HeaderName, HeaderValue};

/// Headers that describe one connection, not the message (RFC 9110
/// §7.6.1), and `HTTP2-Settings`, which only an `h2c` upgrade carries
/// (RFC 7540 §3.2.1: connection-specific), so it never reaches a server
/// whether `Connection` names it or not.
pub(crate) const HOP_BY_HOP: [&str; 9] = [
    "connection",
    "keep-alive",
    "proxy-connection",
    "proxy-authenticate",
    "proxy-authorization",
    "te",
    "trailer",
    "upgrade",
    "http2-settings",
];

/// Removes hop-by-hop headers, including those `Connection` names.
/// `Transfer-Encoding` is left to hyper, which frames bodies itself.
///
/// Only names present are removed: each removal hashes its name, and most
/// messages carry none of them, or only `Connection: keep-alive`.
pub(crate) fn remove_hop_by_hop(headers: &mut HeaderMap) {
    // Which of HOP_BY_HOP are present, one bit each: no allocation for
    // the common `Connection: keep-alive`.
    let mut present = 0u16;
    for name in headers.keys() {
        if let Some(i) = HOP_BY_HOP.iter().position(|h| *h == name.as_str()) {
            present |= 1 << i;
        }
    }
    if present == 0 {
        return;
    }
    let named: Vec<HeaderName> = headers
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
        // Those are in `present` when they are there at all.
        .filter(|name| !HOP_BY_HOP.iter().any(|h| h.eq_ignore_ascii_case(name)))
        .filter_map(|name| HeaderName::from_bytes(name.as_bytes()).ok())
        .collect();
    let takes_trailers = headers.contains_key(header::TE) && accepts_trailers(headers);
    for (i, name) in HOP_BY_HOP.iter().enumerate() {
        if present & (1 << i) != 0 {
            headers.remove(*name);
        }
    }
    for name in &named {
        headers.remove(name);
    }
    if takes_trailers {
        headers.insert(header::TE, HeaderValue::from_static("trailers"));
    }
}

/// Whether one of the `TE` header's members is `trailers` (RFC 9110
/// §10.1.4: a list of codings and `trailers`, names case-insensitive).
fn accepts_trailers(headers: &HeaderMap) -> bool {
    headers
        .get_all(header::TE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .any(|member| member.trim().eq_ignore_ascii_case("trailers"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn te_trailers_is_kept_alone_and_other_te_values_go() {
        for (sent, kept) in [
            (&["trailers"][..], Some("trailers")),
            (&["gzip, Trailers"], Some("trailers")),
            (&["gzip", "trailers"], Some("trailers")),
            (&["gzip"], None),
            (&["trailers;q=0.5"], None),
            (&["x-trailers"], None),
        ] {
            let mut headers = HeaderMap::new();
            headers.insert(header::CONNECTION, HeaderValue::from_static("te"));
            for value in sent {
                headers.append(header::TE, HeaderValue::from_static(value));
            }
            remove_hop_by_hop(&mut headers);
            let te: Vec<_> = headers.get_all(header::TE).iter().collect();
            assert_eq!(te.first().map(|v| v.to_str().unwrap()), kept, "{sent:?}");
            assert!(te.len() <= 1);
            assert!(!headers.contains_key(header::CONNECTION));
        }
    }

    #[test]
    fn hop_by_hop_headers_and_those_connection_names_are_removed() {
        let mut headers = HeaderMap::new();
        headers.insert(
            header::CONNECTION,
            HeaderValue::from_static("keep-alive, x-private"),
        );
        headers.insert("keep-alive", HeaderValue::from_static("timeout=5"));
        headers.insert("x-private", HeaderValue::from_static("1"));
        headers.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
        headers.insert("x-kept", HeaderValue::from_static("1"));
        remove_hop_by_hop(&mut headers);
        assert_eq!(
            headers.keys().map(HeaderName::as_str).collect::<Vec<_>>(),
            ["x-kept"]
        );
    }

    #[test]
    fn every_hop_by_hop_header_is_removed_in_any_case() {
        let mut headers = HeaderMap::new();
        for name in HOP_BY_HOP {
            headers.insert(
                HeaderName::from_bytes(name.to_uppercase().as_bytes()).unwrap(),
                HeaderValue::from_static("x"),
            );
        }
        headers.insert("x-te", HeaderValue::from_static("kept"));
        remove_hop_by_hop(&mut headers);
        assert_eq!(
            headers.keys().map(HeaderName::as_str).collect::<Vec<_>>(),
            ["x-te"]
        );
    }

    #[test]
    fn a_message_without_hop_by_hop_headers_keeps_all_of_them() {
        let mut headers = HeaderMap::new();
        headers.insert(header::HOST, HeaderValue::from_static("api.example.com"));
        headers.append("x-twice", HeaderValue::from_static("1"));
        headers.append("x-twice", HeaderValue::from_static("2"));
        let before = headers.clone();
        remove_hop_by_hop(&mut headers);
        assert_eq!(headers, before);
    }
}
