//! The header lines of an HTTP/1.1 server's response head, kept as they
//! came for the caller: the head's bytes and where each line is, with no
//! `HeaderMap` built on the way through. The caller side's own writer
//! ([`super::h1_server`]) copies the lines; an answer that hyper's server
//! writes gets a map made of them ([`HeaderLines::append_to`]).
//!
//! Hop-by-hop lines (RFC 9110 §7.6.1) are left out, the same ones
//! [`crate::edge::hop_by_hop`] removes from a map: `Connection` and every
//! line it names, `Keep-Alive`, `Proxy-Connection`, `Proxy-Authenticate`,
//! `Proxy-Authorization`, `TE`, `Trailer`, `Upgrade` and `HTTP2-Settings`.
//! Names are made lower case in place, as hyper writes them.
//!
//! Every line is valid in a `HeaderMap`: httparse accepts a name only of
//! token characters and a value only of visible characters, spaces, tabs
//! and obs-text, exactly what `http` accepts (a test holds the two to it).

use bytes::{Bytes, BytesMut};
use http::header::{HeaderMap, HeaderName, HeaderValue};

/// What a header line is to the gateway, by its name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    /// `Content-Length`: kept, but the caller's framing is the writer's.
    Length,
    /// `Transfer-Encoding`: the same.
    Coding,
    /// `Connection`: hop-by-hop, and the lines it names are too.
    Connection,
    /// Another hop-by-hop line.
    HopByHop,
    /// `Date`: the writer adds one only when there is none.
    Date,
    Other,
}

impl Kind {
    /// The kind of a line named `name` (any case).
    pub(crate) fn of(name: &[u8]) -> Self {
        // The length first: most names are none of these, and few share
        // a length with one.
        let named = |known: &str| is(name, known.as_bytes());
        match name.len() {
            2 if named("te") => Self::HopByHop,
            4 if named("date") => Self::Date,
            7 if named("trailer") || named("upgrade") => Self::HopByHop,
            10 if named("connection") => Self::Connection,
            10 if named("keep-alive") => Self::HopByHop,
            14 if named("content-length") => Self::Length,
            14 if named("http2-settings") => Self::HopByHop,
            16 if named("proxy-connection") => Self::HopByHop,
            17 if named("transfer-encoding") => Self::Coding,
            18 if named("proxy-authenticate") => Self::HopByHop,
            19 if named("proxy-authorization") => Self::HopByHop,
            _ => Self::Other,
        }
    }
}

/// Where one kept line is in the head.
#[derive(Debug, Clone, Copy)]
struct Line {
    name: [u16; 2],
    value: [u16; 2],
    /// `Content-Length` or `Transfer-Encoding`.
    framing: bool,
    /// Written in the head exactly as the writer would write it
    /// (`name: value\r\n`), so it can be copied with its neighbours.
    verbatim: bool,
}

impl Line {
    /// The end of the line with its CRLF, when verbatim.
    fn end(&self) -> usize {
        usize::from(self.value[1]) + 2
    }
}

/// An upstream answer's header lines, hop-by-hop ones left out.
pub(crate) struct HeaderLines {
    head: Bytes,
    lines: Vec<Line>,
    dated: bool,
}

/// The number of lines only: values (a `Set-Cookie`, a token an upstream
/// echoes) stay out of debug output and logs.
impl std::fmt::Debug for HeaderLines {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HeaderLines")
            .field("lines", &self.lines.len())
            .finish_non_exhaustive()
    }
}

impl HeaderLines {
    /// The kept lines of `head`, whose lines are at `spans` (name start
    /// and end, value start and end) and of `kinds`.
    pub(crate) fn keep(mut head: BytesMut, spans: &[[u16; 4]], kinds: &[Kind]) -> Self {
        // `Connection: keep-alive` (or `close`), the usual one, names no
        // line that could be here.
        let names_lines = connection_tokens(&head, spans, kinds)
            .any(|token| !is(token, b"keep-alive") && !is(token, b"close"));
        let mut lines = Vec::with_capacity(spans.len());
        let mut dated = false;
        for (&[name_start, name_end, value_start, value_end], &kind) in spans.iter().zip(kinds) {
            let name = usize::from(name_start)..usize::from(name_end);
            if matches!(kind, Kind::Connection | Kind::HopByHop)
                || (names_lines
                    && connection_tokens(&head, spans, kinds)
                        .any(|token| token.eq_ignore_ascii_case(&head[name.clone()])))
            {
                continue;
            }
            dated |= kind == Kind::Date;
            head[name.clone()].make_ascii_lowercase();
            let verbatim = value_start == name_end + 2
                && head.get(name.end..name.end + 2) == Some(b": ")
                && head.get(usize::from(value_end)..usize::from(value_end) + 2) == Some(b"\r\n");
            lines.push(Line {
                name: [name_start, name_end],
                value: [value_start, value_end],
                framing: matches!(kind, Kind::Length | Kind::Coding),
                verbatim,
            });
        }
        Self {
            head: head.freeze(),
            lines,
            dated,
        }
    }

    /// Whether a `Date` line is among them.
    pub(crate) fn has_date(&self) -> bool {
        self.dated
    }

    /// Writes the lines (not `Content-Length` or `Transfer-Encoding`: the
    /// writer frames the body itself) as `name: value\r\n`; neighbouring
    /// lines already in that form are copied as one.
    pub(crate) fn write_to(&self, out: &mut Vec<u8>) {
        let mut run = 0..0;
        for line in self.lines.iter().filter(|line| !line.framing) {
            let start = usize::from(line.name[0]);
            if line.verbatim && start == run.end && !run.is_empty() {
                run.end = line.end();
                continue;
            }
            out.extend_from_slice(&self.head[run]);
            if line.verbatim {
                run = start..line.end();
            } else {
                run = 0..0;
                out.extend_from_slice(self.span(line.name));
                out.extend_from_slice(b": ");
                out.extend_from_slice(self.span(line.value));
                out.extend_from_slice(b"\r\n");
            }
        }
        out.extend_from_slice(&self.head[run]);
    }

    /// Appends every kept line to `headers`, framing ones too (hyper's
    /// server frames an answer by them, as it did the server's own map).
    pub(crate) fn append_to(self, headers: &mut HeaderMap) {
        headers.reserve(self.lines.len());
        for line in &self.lines {
            // Never fails (see the module's docs); a line that did would
            // be left out rather than answered with.
            let (Ok(name), Ok(value)) = (
                HeaderName::from_bytes(self.span(line.name)),
                HeaderValue::from_maybe_shared(
                    self.head
                        .slice(usize::from(line.value[0])..usize::from(line.value[1])),
                ),
            ) else {
                continue;
            };
            headers.append(name, value);
        }
    }

    /// The kept lines of `raw`, a whole response head (for tests).
    #[cfg(test)]
    pub(crate) fn of_head(raw: &[u8]) -> Self {
        let mut headers = [httparse::EMPTY_HEADER; 32];
        let mut response = httparse::Response::new(&mut headers);
        assert!(response.parse(raw).unwrap().is_complete());
        let offset = |part: &[u8]| (part.as_ptr() as usize - raw.as_ptr() as usize) as u16;
        let spans: Vec<[u16; 4]> = response
            .headers
            .iter()
            .map(|h| {
                let (name, value) = (h.name.as_bytes(), h.value);
                [
                    offset(name),
                    offset(name) + name.len() as u16,
                    offset(value),
                    offset(value) + value.len() as u16,
                ]
            })
            .collect();
        let kinds: Vec<Kind> = response
            .headers
            .iter()
            .map(|h| Kind::of(h.name.as_bytes()))
            .collect();
        Self::keep(BytesMut::from(raw), &spans, &kinds)
    }

    fn span(&self, [start, end]: [u16; 2]) -> &[u8] {
        &self.head[usize::from(start)..usize::from(end)]
    }
}

/// The members of the `Connection` lines among `spans`, trimmed.
fn connection_tokens<'a>(
    head: &'a [u8],
    spans: &'a [[u16; 4]],
    kinds: &'a [Kind],
) -> impl Iterator<Item = &'a [u8]> {
    spans
        .iter()
        .zip(kinds)
        .filter(|(_, kind)| **kind == Kind::Connection)
        .flat_map(|(&[.., value_start, value_end], _)| {
            head[usize::from(value_start)..usize::from(value_end)].split(|&b| b == b',')
        })
        .map(<[u8]>::trim_ascii)
}

/// Whether `name` (a token) is `known` (lower case) in any case. Setting
/// the 0x20 bit makes an upper-case letter lower case and changes no
/// other token character into a letter, `-` or a digit.
fn is(name: &[u8], known: &[u8]) -> bool {
    name.len() == known.len() && name.iter().zip(known).all(|(&a, &b)| a | 0x20 == b)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn written(lines: &HeaderLines) -> String {
        let mut out = Vec::new();
        lines.write_to(&mut out);
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn lines_are_written_through_in_lower_case_without_framing_lines() {
        let lines = HeaderLines::of_head(
            b"HTTP/1.1 200 OK\r\nServer: nginx\r\nContent-Length: 2\r\nX-A:1\r\n\
              X-B:  two words \t\r\nDate: Tue, 01 Dec 2026 00:00:00 GMT\r\nx-c: 3\r\n\
              Transfer-Encoding: chunked\r\nX-Empty: \r\nX-Last: 4\n\r\n",
        );
        assert_eq!(
            written(&lines),
            "server: nginx\r\nx-a: 1\r\nx-b: two words\r\n\
             date: Tue, 01 Dec 2026 00:00:00 GMT\r\nx-c: 3\r\nx-empty: \r\nx-last: 4\r\n"
        );
        assert!(lines.has_date());
        assert!(!HeaderLines::of_head(b"HTTP/1.1 200 OK\r\nX-Date: 1\r\n\r\n").has_date());
    }

    #[test]
    fn hop_by_hop_lines_and_those_connection_names_are_left_out() {
        let raw = b"HTTP/1.1 200 OK\r\nConnection: keep-alive, X-Private\r\nKeep-Alive: timeout=5\r\n\
                    x-private: secret\r\nX-Kept: 1\r\nUpgrade: h2c\r\nTE: trailers\r\nTrailer: x\r\n\
                    Proxy-Connection: close\r\nProxy-Authenticate: Basic\r\n\
                    Proxy-Authorization: Basic eA==\r\nHTTP2-Settings: AAA\r\n\
                    connection: x-later\r\nX-Later: 2\r\nContent-Length: 0\r\n\r\n";
        let lines = HeaderLines::of_head(raw);
        assert_eq!(written(&lines), "x-kept: 1\r\n");
        let debug = format!("{lines:?}");
        assert!(
            !debug.contains("secret") && !debug.contains("eA=="),
            "{debug}"
        );
        let mut map = HeaderMap::new();
        lines.append_to(&mut map);
        let names: Vec<&str> = map.keys().map(HeaderName::as_str).collect();
        assert_eq!(names, ["x-kept", "content-length"]);
        assert_eq!(map["content-length"], "0");
    }

    #[test]
    fn a_map_made_of_the_lines_holds_all_of_them_in_order() {
        let lines = HeaderLines::of_head(
            b"HTTP/1.1 200 OK\r\nSet-Cookie: a=1\r\nContent-Type: text/plain\r\n\
              set-cookie: b=2\r\nTransfer-Encoding: chunked\r\nX-Obs: caf\xc3\xa9\r\n\r\n",
        );
        let mut map = HeaderMap::new();
        lines.append_to(&mut map);
        let cookies: Vec<_> = map.get_all("set-cookie").iter().collect();
        assert_eq!(cookies, ["a=1", "b=2"]);
        assert_eq!(map["content-type"], "text/plain");
        assert_eq!(map["transfer-encoding"], "chunked");
        assert_eq!(map["x-obs"].as_bytes(), "café".as_bytes());
        assert_eq!(map.len(), 5);
    }

    #[test]
    fn kinds_are_known_in_any_case_and_only_for_their_names() {
        for (name, kind) in [
            ("Content-Length", Kind::Length),
            ("TRANSFER-ENCODING", Kind::Coding),
            ("connection", Kind::Connection),
            ("Keep-Alive", Kind::HopByHop),
            ("tE", Kind::HopByHop),
            ("HTTP2-Settings", Kind::HopByHop),
            ("Proxy-Authorization", Kind::HopByHop),
            ("DATE", Kind::Date),
            ("content_length", Kind::Other),
            ("contentxlength", Kind::Other),
            ("te~", Kind::Other),
            ("dat^", Kind::Other),
            ("x-date", Kind::Other),
        ] {
            assert_eq!(Kind::of(name.as_bytes()), kind, "{name}");
        }
    }

    #[test]
    fn the_hop_by_hop_names_are_the_edges() {
        // One list, two look-ups: the edge's map removal and this match
        // must never drift apart.
        for name in crate::edge::hop_by_hop::HOP_BY_HOP {
            for name in [name.to_owned(), name.to_ascii_uppercase()] {
                let kind = Kind::of(name.as_bytes());
                assert!(
                    matches!(kind, Kind::HopByHop | Kind::Connection),
                    "{name}: {kind:?}"
                );
            }
        }
    }

    #[test]
    fn every_byte_httparse_takes_in_a_line_http_takes_too() {
        for byte in 0..=255u8 {
            let mut raw = b"HTTP/1.1 200 OK\r\nx".to_vec();
            raw.push(byte);
            raw.extend_from_slice(b"y: 1\r\n\r\n");
            let mut headers = [httparse::EMPTY_HEADER; 4];
            if let Ok(httparse::Status::Complete(_)) =
                httparse::Response::new(&mut headers).parse(&raw)
                && headers[0].name.len() == 3
            {
                assert!(
                    HeaderName::from_bytes(headers[0].name.as_bytes()).is_ok(),
                    "{byte}"
                );
            }
            let mut raw = b"HTTP/1.1 200 OK\r\nx: a".to_vec();
            raw.push(byte);
            raw.extend_from_slice(b"b\r\n\r\n");
            let mut headers = [httparse::EMPTY_HEADER; 4];
            if let Ok(httparse::Status::Complete(_)) =
                httparse::Response::new(&mut headers).parse(&raw)
            {
                assert!(HeaderValue::from_bytes(headers[0].value).is_ok(), "{byte}");
            }
        }
    }
}
