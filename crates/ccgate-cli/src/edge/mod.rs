//! Edge safety (SPEC §10): the rules every request meets at its entry
//! point, before routing and before any middleware, so that routing, the
//! middlewares and the upstream all see one and the same request.
//!
//! [`admit`] applies them in this order:
//! 1. the host ([`host`]): one `Host` at most, the target's authority
//!    winning, lower case, no trailing dot;
//! 2. the path ([`path`]): unreserved escapes decoded, the seven dangerous
//!    escapes refused, slashes collapsed and dot segments removed; the
//!    query is left as it is;
//! 3. hop-by-hop headers ([`hop_by_hop`]): `Connection` and what it
//!    names, so a caller cannot remove a header ccgate adds; a WebSocket
//!    handshake ([`websocket`]) then gets back `Connection: upgrade` and
//!    `Upgrade: websocket` and is marked ([`websocket::Handshake`]), and
//!    no other request keeps an `Upgrade`;
//! 4. forwarded headers ([`forwarded`]): an untrusted client's
//!    `X-Forwarded-*`, `X-Real-Ip` and `Forwarded` replaced.
//!
//! A request that breaks rule 1 or 2 is refused with 400 ([`Refusal`]).
//! The gateway's handler calls [`admit`] first for every request, on
//! every entry point, forward-auth included.

pub(crate) mod forwarded;
pub(crate) mod hop_by_hop;
pub(crate) mod host;
pub(crate) mod path;
pub(crate) mod websocket;

use std::borrow::Cow;

use http::header::{self, HeaderValue};
use http::request::Parts;
use http::uri::{Authority, PathAndQuery, Uri};

pub(crate) use forwarded::Trust;
use host::HostError;
pub(crate) use path::{PathError, PathRules};

/// The rules of one entry point, read from its configuration.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct EdgeRules {
    /// `http.encodedCharacters` and `http.sanitizePath`.
    pub(crate) path: PathRules,
    /// `forwardedHeaders`.
    pub(crate) trust: Trust,
}

impl EdgeRules {
    /// What differs from the defaults, for `ccgate check`'s summary.
    pub(crate) fn changes(&self) -> Vec<String> {
        let mut changes = Vec::new();
        let allowed = self.path.allow.names();
        if !allowed.is_empty() {
            changes.push(format!("allows encoded {}", allowed.join(" ")));
        }
        if !self.path.sanitize {
            changes.push("sanitizePath off".to_owned());
        }
        if self.trust.insecure {
            changes.push("trusts everyone's forwarded headers (insecure)".to_owned());
        } else if !self.trust.networks.is_empty() {
            let networks: Vec<String> = self
                .trust
                .networks
                .iter()
                .map(ToString::to_string)
                .collect();
            changes.push(format!(
                "trusts forwarded headers from {}",
                networks.join(", ")
            ));
        }
        changes
    }
}

/// Why a request is refused at the edge: 400, with a short reason that
/// names the rule, never the request's bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Refusal {
    /// The path holds a refused or malformed escape.
    Path(PathError),
    /// The host is repeated or malformed.
    Host(HostError),
}

impl Refusal {
    /// The body of the 400 answer.
    pub(crate) fn reason(self) -> &'static str {
        match self {
            Self::Path(PathError::EncodedCharacter(b'/')) => {
                "bad request: encoded slash (%2F) in the path\n"
            }
            Self::Path(PathError::EncodedCharacter(b'\\')) => {
                "bad request: encoded backslash (%5C) in the path\n"
            }
            Self::Path(PathError::EncodedCharacter(0)) => {
                "bad request: encoded NUL (%00) in the path\n"
            }
            Self::Path(PathError::EncodedCharacter(b';')) => {
                "bad request: encoded semicolon (%3B) in the path\n"
            }
            Self::Path(PathError::EncodedCharacter(b'%')) => {
                "bad request: encoded percent sign (%25) in the path\n"
            }
            Self::Path(PathError::EncodedCharacter(b'?')) => {
                "bad request: encoded question mark (%3F) in the path\n"
            }
            Self::Path(PathError::EncodedCharacter(_)) => {
                "bad request: encoded hash (%23) in the path\n"
            }
            Self::Path(PathError::BadEscape) => {
                "bad request: malformed percent-escape in the path\n"
            }
            Self::Host(HostError::Repeated) => "bad request: more than one Host header\n",
            Self::Host(HostError::Invalid) => "bad request: malformed Host header\n",
        }
    }
}

/// Applies the edge rules to a request's head (module docs): `trusted`
/// says whether the client's forwarded headers are believed, `client_ip`
/// is its address.
///
/// A request that needs no change (the common case) is not copied.
///
/// # Errors
///
/// A [`Refusal`] for a request to answer with 400.
pub(crate) fn admit(
    parts: &mut Parts,
    rules: &EdgeRules,
    trusted: bool,
    client_ip: &HeaderValue,
) -> Result<(), Refusal> {
    let has_authority = parts.uri.authority().is_some();
    // The Host header to set: the normalised host when it changed, or the
    // target's authority when a `Host` header says something else; and
    // whether the target's authority itself changed.
    let (new_host, authority_changed) = {
        let host =
            host::normalised(parts.uri.authority(), &parts.headers).map_err(Refusal::Host)?;
        match host {
            Some(Cow::Owned(host)) => (Some(host), has_authority),
            Some(Cow::Borrowed(host)) if has_authority => {
                let differs = parts
                    .headers
                    .get(header::HOST)
                    .is_some_and(|sent| sent.as_bytes() != host.as_bytes());
                (differs.then(|| host.to_owned()), false)
            }
            _ => (None, false),
        }
    };
    let new_path = match path::normalise(parts.uri.path(), &rules.path).map_err(Refusal::Path)? {
        Cow::Owned(path) => Some(path),
        Cow::Borrowed(_) => None,
    };
    if let Some(value) = new_host.as_deref().and_then(host::header_value) {
        parts.headers.insert(header::HOST, value);
    }
    if new_path.is_some() || authority_changed {
        let host = if authority_changed {
            new_host.as_deref()
        } else {
            None
        };
        parts.uri = rebuilt(&parts.uri, new_path.as_deref(), host)
            .ok_or(Refusal::Path(PathError::BadEscape))?;
    }
    let websocket = websocket::is_websocket(parts);
    hop_by_hop::remove_hop_by_hop(&mut parts.headers);
    if websocket {
        websocket::mark(parts);
    }
    forwarded::arrive(&mut parts.headers, trusted, client_ip);
    Ok(())
}

/// `uri` with `path` in place of its path (the query kept) and `host` in
/// place of its authority, when given.
fn rebuilt(uri: &Uri, path: Option<&str>, host: Option<&str>) -> Option<Uri> {
    let mut parts = uri.clone().into_parts();
    if let Some(path) = path {
        let path_and_query = match uri.query() {
            Some(query) => format!("{path}?{query}"),
            None => path.to_owned(),
        };
        parts.path_and_query = Some(PathAndQuery::try_from(path_and_query).ok()?);
    }
    if let (Some(host), Some(_)) = (host, &parts.authority) {
        parts.authority = Some(Authority::try_from(host).ok()?);
    }
    Uri::from_parts(parts).ok()
}

#[cfg(test)]
mod tests {
    use http::Request;

    use super::*;

    fn admitted(request: Request<()>, trusted: bool) -> Result<Parts, Refusal> {
        let (mut parts, ()) = request.into_parts();
        admit(
            &mut parts,
            &EdgeRules::default(),
            trusted,
            &HeaderValue::from_static("203.0.113.9"),
        )?;
        Ok(parts)
    }

    #[test]
    fn the_request_is_normalised_once_for_everyone_after() {
        let request = Request::get("/%61pi//v1/../items?a=%2F&b=..")
            .header("host", "API.Example.com.")
            .header("connection", "authorization, x-group")
            .header("authorization", "Basic Zm9vOmJhcg==")
            .header("x-group", "spoofed")
            .header("x-forwarded-for", "10.0.0.1")
            .body(())
            .unwrap();
        let parts = admitted(request, false).unwrap();
        assert_eq!(
            parts.uri, "/api/items?a=%2F&b=..",
            "the query is left as it is"
        );
        assert_eq!(parts.headers["host"], "api.example.com");
        assert!(!parts.headers.contains_key("connection"));
        assert!(
            !parts.headers.contains_key("authorization"),
            "named by Connection"
        );
        assert!(!parts.headers.contains_key("x-forwarded-for"));
        assert_eq!(parts.headers["x-real-ip"], "203.0.113.9");
    }

    #[test]
    fn an_absolute_form_target_wins_over_host() {
        let request = Request::get("http://Internal.example.com/a/../b")
            .header("host", "public.example.com")
            .body(())
            .unwrap();
        let parts = admitted(request, false).unwrap();
        assert_eq!(parts.uri, "http://internal.example.com/b");
        assert_eq!(parts.headers["host"], "internal.example.com");
        assert_eq!(
            crate::rule::host_of(&parts.uri, &parts.headers),
            Some("internal.example.com")
        );
    }

    #[test]
    fn refusals_name_the_rule() {
        let encoded = Request::get("/files/a%2Fb").body(()).unwrap();
        let refusal = admitted(encoded, false).unwrap_err();
        assert_eq!(refusal, Refusal::Path(PathError::EncodedCharacter(b'/')));
        assert!(refusal.reason().contains("%2F"));
        let twice = Request::get("/")
            .header("host", "a.example.com")
            .header("host", "b.example.com")
            .body(())
            .unwrap();
        assert_eq!(
            admitted(twice, false).unwrap_err(),
            Refusal::Host(HostError::Repeated)
        );
    }

    #[test]
    fn a_websocket_handshake_keeps_only_ccgates_upgrade_headers() {
        let request = Request::get("/chat")
            .header("upgrade", "h2c, WebSocket")
            .header("connection", "Upgrade, HTTP2-Settings, authorization")
            .header("http2-settings", "AAMAAABkAARAAAAAAAIAAAAA")
            .header("authorization", "Basic Zm9vOmJhcg==")
            .header("sec-websocket-key", "dGhlIHNhbXBsZSBub25jZQ==")
            .body(())
            .unwrap();
        let parts = admitted(request, false).unwrap();
        assert_eq!(parts.headers["upgrade"], "websocket");
        assert_eq!(parts.headers["connection"], "upgrade");
        assert!(websocket::is_marked(&parts.extensions), "marked");
        assert!(!parts.headers.contains_key("http2-settings"));
        assert!(
            !parts.headers.contains_key("authorization"),
            "named by Connection"
        );
        assert!(parts.headers.contains_key("sec-websocket-key"));
        let h2c = Request::get("/")
            .header("upgrade", "h2c")
            .header("connection", "Upgrade")
            .body(())
            .unwrap();
        let parts = admitted(h2c, false).unwrap();
        assert!(!websocket::is_marked(&parts.extensions), "not marked");
        assert!(!parts.headers.contains_key("upgrade"));
        assert!(!parts.headers.contains_key("connection"));
    }

    #[test]
    fn a_plain_request_is_left_alone() {
        let request = Request::get("/api/items?x=1")
            .header("host", "api.example.com")
            .body(())
            .unwrap();
        let parts = admitted(request, true).unwrap();
        assert_eq!(parts.uri, "/api/items?x=1");
        assert_eq!(parts.headers.len(), 2, "host and x-real-ip");
        assert!(!websocket::is_marked(&parts.extensions), "not a handshake");
        assert!(parts.extensions.is_empty(), "nothing allocated for it");
    }
}
