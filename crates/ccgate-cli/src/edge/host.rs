//! The host a request is for, in one form (SPEC §10): the request
//! target's authority when it has one (HTTP/1.1 absolute form, RFC 9112
//! §3.2.2; HTTP/2 `:authority`), else the one `Host` header; in lower case
//! and without a trailing dot, also before a port (`API.Example.com.:8443`
//! is `api.example.com:8443`). A request with more than one `Host` header,
//! equal or not, is refused: two parts of a chain could each pick another.

use std::borrow::Cow;

use http::header::{self, HeaderMap, HeaderValue};
use http::uri::Authority;

/// Why a request's host is refused (the caller gets 400).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum HostError {
    /// More than one `Host` header.
    Repeated,
    /// A `Host` header that is not a valid authority.
    Invalid,
}

/// The request's normalised host (with its port, if any), or `None` when
/// it names none (an HTTP/1.0 request without `Host`).
///
/// # Errors
///
/// [`HostError`] for a repeated or unparsable `Host` header.
pub(crate) fn normalised<'a>(
    authority: Option<&'a Authority>,
    headers: &'a HeaderMap,
) -> Result<Option<Cow<'a, str>>, HostError> {
    let mut hosts = headers.get_all(header::HOST).iter();
    let header = hosts.next();
    if hosts.next().is_some() {
        return Err(HostError::Repeated);
    }
    let raw = match (authority, header) {
        (Some(authority), _) => authority.as_str(),
        (None, Some(value)) => {
            let text = value.to_str().map_err(|_| HostError::Invalid)?;
            if !is_host(text) {
                return Err(HostError::Invalid);
            }
            text
        }
        (None, None) => return Ok(None),
    };
    Ok(Some(canonical(raw)))
}

/// Whether `text` is a `Host` value (RFC 9110 §7.2: `uri-host [":"
/// port]`, no userinfo): a registered name or IPv4 address of RFC 3986
/// characters, or a bracketed IPv6 literal, then an optional port of at
/// most 65535. Checked byte by byte: every HTTP/1.1 request carries one,
/// so this must not allocate.
fn is_host(text: &str) -> bool {
    let (host, port) = split_port(text);
    let port_ok = port.is_none_or(|port| !port.is_empty() && port.parse::<u16>().is_ok());
    let host_ok = match host.strip_prefix('[') {
        Some(literal) => literal.strip_suffix(']').is_some_and(|inner| {
            !inner.is_empty()
                && inner
                    .bytes()
                    .all(|b| b.is_ascii_hexdigit() || matches!(b, b':' | b'.'))
        }),
        None => {
            !host.is_empty()
                && host.bytes().all(|b| {
                    b.is_ascii_alphanumeric()
                        || matches!(
                            b,
                            b'-' | b'.'
                                | b'_'
                                | b'~'
                                | b'%'
                                | b'!'
                                | b'$'
                                | b'&'
                                | b'\''
                                | b'('
                                | b')'
                                | b'*'
                                | b'+'
                                | b','
                                | b';'
                                | b'='
                        )
                })
        }
    };
    host_ok && port_ok
}

/// `raw` in lower case, the userinfo dropped, and a trailing dot of the
/// host name removed (before the port too); borrowed when it is already so.
fn canonical(raw: &str) -> Cow<'_, str> {
    let raw = raw.rsplit_once('@').map_or(raw, |(_, host)| host);
    let (host, port) = split_port(raw);
    let trimmed = host.strip_suffix('.').filter(|h| !h.is_empty());
    let upper = raw.bytes().any(|b| b.is_ascii_uppercase());
    if trimmed.is_none() && !upper {
        return Cow::Borrowed(raw);
    }
    let host = trimmed.unwrap_or(host);
    let mut out = String::with_capacity(raw.len());
    out.push_str(host);
    if let Some(port) = port {
        out.push(':');
        out.push_str(port);
    }
    out.make_ascii_lowercase();
    Cow::Owned(out)
}

/// The host and the port of `authority` (an IPv6 literal keeps its
/// brackets).
fn split_port(authority: &str) -> (&str, Option<&str>) {
    if authority.starts_with('[') {
        return match authority.rfind("]:") {
            Some(end) => (&authority[..=end], Some(&authority[end + 2..])),
            None => (authority, None),
        };
    }
    match authority.rsplit_once(':') {
        Some((host, port)) => (host, Some(port)),
        None => (authority, None),
    }
}

/// The `Host` header value for `host`.
pub(crate) fn header_value(host: &str) -> Option<HeaderValue> {
    HeaderValue::from_str(host).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(hosts: &[&str]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for host in hosts {
            map.append(header::HOST, HeaderValue::from_str(host).unwrap());
        }
        map
    }

    fn host(authority: Option<&str>, hosts: &[&str]) -> Result<Option<String>, HostError> {
        let authority = authority.map(|a| a.parse::<Authority>().unwrap());
        let headers = headers(hosts);
        normalised(authority.as_ref(), &headers).map(|h| h.map(Cow::into_owned))
    }

    #[test]
    fn hosts_are_lower_case_without_a_trailing_dot() {
        let cases = [
            ("api.example.com", "api.example.com"),
            ("API.Example.COM", "api.example.com"),
            ("api.example.com.", "api.example.com"),
            ("API.example.com.:8443", "api.example.com:8443"),
            ("api.example.com:8080", "api.example.com:8080"),
            ("[::1]:8080", "[::1]:8080"),
            ("[2001:DB8::1]", "[2001:db8::1]"),
            ("127.0.0.1", "127.0.0.1"),
        ];
        for (raw, want) in cases {
            assert_eq!(host(None, &[raw]).unwrap().as_deref(), Some(want), "{raw}");
        }
        assert!(matches!(canonical("api.example.com"), Cow::Borrowed(_)));
    }

    #[test]
    fn the_target_authority_wins_over_host() {
        assert_eq!(
            host(Some("Internal.example.com"), &["public.example.com"]).unwrap(),
            Some("internal.example.com".to_owned())
        );
    }

    #[test]
    fn two_host_headers_are_refused_equal_or_not() {
        assert_eq!(host(None, &["a.com", "b.com"]), Err(HostError::Repeated));
        assert_eq!(host(None, &["a.com", "a.com"]), Err(HostError::Repeated));
        assert_eq!(
            host(Some("a.com"), &["a.com", "a.com"]),
            Err(HostError::Repeated)
        );
    }

    #[test]
    fn malformed_hosts_are_refused_and_none_is_none() {
        for bad in [
            "a b.com",
            "user@a.com",
            "a.com:port",
            "a.com/x",
            "a.com:",
            "a.com:65536",
            "",
            ":80",
            "[::1",
            "[]",
            "[::g]",
            "a.com?x",
            "a.com#x",
            "a\"b",
        ] {
            assert_eq!(host(None, &[bad]), Err(HostError::Invalid), "{bad}");
        }
        assert_eq!(host(None, &[]).unwrap(), None);
    }
}
