//! HTTP/1.1 to an upstream server without hyper's client, for requests
//! without a body (most machine-to-machine calls): the request that holds
//! a [`Connection`] writes its head and reads the response on it, in its
//! own task, with no channel to a connection task between them. The
//! response's header lines are kept as they came ([`HeaderLines`], in the
//! [`Body`]), not made into a `HeaderMap`.
//!
//! Strict where a mistake would mix two callers' answers on one pooled
//! connection: a response head that httparse rejects, conflicting
//! `Content-Length`s, a chunk size that is not hex, bytes after a
//! response's end — any of these ends the connection (it is never reused),
//! and a response whose length is told only by the end of the stream
//! (RFC 9112 §6.3, rule 8) is read to the end and the connection closed.
//! `Transfer-Encoding` wins over `Content-Length` (§6.3, rule 3), and the
//! connection is then not reused.

use std::io;
use std::mem::MaybeUninit;
use std::pin::Pin;
use std::task::{Context, Poll, Waker};

use bytes::{Buf, Bytes, BytesMut};
use http::header;
use http::{Method, Request, Response, StatusCode, Version};
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;
use tokio_util::io::poll_read_buf;

use super::header_lines::{HeaderLines, Kind};

/// Header lines of a response (hyper's client allows as many).
const MAX_HEADERS: usize = 100;
/// A response head larger than this is refused (its offsets fit a u16).
const MAX_HEAD: usize = 64 * 1024 - 1;
/// What one read asks the socket for.
const READ_CHUNK: usize = 8 * 1024;
/// A chunk-size line (with extensions) or all trailers longer than this
/// are refused.
const MAX_CHUNK_LINE: usize = 4 * 1024;
const MAX_TRAILERS: usize = 16 * 1024;

/// Why an exchange failed.
#[derive(Debug, thiserror::Error)]
pub(crate) enum H1Error {
    /// The server closed the connection before any byte of an answer.
    #[error("the connection closed before a response")]
    Closed,
    /// The request head could not be written.
    #[error("writing the request: {0}")]
    Write(io::Error),
    #[error("reading the response: {0}")]
    Read(io::Error),
    #[error("malformed response: {0}")]
    Malformed(&'static str),
}

/// The stream under a connection: TCP, or TLS over TCP.
#[derive(Debug)]
pub(crate) enum Stream {
    Tcp(TcpStream),
    Tls(Box<TlsStream<TcpStream>>),
}

impl AsyncRead for Stream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Self::Tcp(stream) => Pin::new(stream).poll_read(cx, buf),
            Self::Tls(stream) => Pin::new(stream.as_mut()).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for Stream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Self::Tcp(stream) => Pin::new(stream).poll_write(cx, buf),
            Self::Tls(stream) => Pin::new(stream.as_mut()).poll_write(cx, buf),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Self::Tcp(stream) => Pin::new(stream).poll_flush(cx),
            Self::Tls(stream) => Pin::new(stream.as_mut()).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Self::Tcp(stream) => Pin::new(stream).poll_shutdown(cx),
            Self::Tls(stream) => Pin::new(stream.as_mut()).poll_shutdown(cx),
        }
    }
}

/// One HTTP/1.1 connection to a server, used by one request at a time.
#[derive(Debug)]
pub(crate) struct Connection {
    stream: Stream,
    /// Bytes read and not yet consumed: the response being read.
    read: BytesMut,
    /// The request head being written (its allocation reused).
    write: Vec<u8>,
}

/// How a response's body ends (RFC 9112 §6.3).
#[derive(Debug)]
enum Framing {
    Length(u64),
    Chunked(Chunked),
    /// At the end of the stream: the connection cannot be reused.
    Close,
    Done,
}

impl Connection {
    pub(crate) fn new(stream: Stream) -> Self {
        Self {
            stream,
            read: BytesMut::new(),
            write: Vec::new(),
        }
    }

    /// Whether an idle connection is no longer usable: the server closed
    /// it, or sent bytes nobody asked for. Costs no system call unless the
    /// socket was reported readable since its last read.
    pub(crate) fn is_closed(&mut self) -> bool {
        if !self.read.is_empty() {
            return true;
        }
        self.read.reserve(READ_CHUNK);
        let mut cx = Context::from_waker(Waker::noop());
        !matches!(
            poll_read_buf(Pin::new(&mut self.stream), &mut cx, &mut self.read),
            Poll::Pending
        )
    }

    /// Writes `request`'s head (it has no body) and reads the response
    /// head; its body is read from the returned [`Body`], which holds its
    /// header lines too (the response's map is empty).
    ///
    /// # Errors
    ///
    /// [`H1Error::Write`] when no byte could be written, [`H1Error::Closed`]
    /// when the server closed the connection without answering, else why
    /// the response could not be read.
    pub(crate) async fn send<B>(mut self, request: &Request<B>) -> Result<Response<Body>, H1Error> {
        self.write.clear();
        encode_head(request, &mut self.write);
        self.stream
            .write_all(&self.write)
            .await
            .map_err(H1Error::Write)?;
        self.stream.flush().await.map_err(H1Error::Write)?;
        let head_only = request.method() == Method::HEAD;
        let mut answered = false;
        loop {
            if let Some(head) = parse_head(&mut self.read)? {
                // Interim answers (100 Continue, 103 Early Hints) go; a
                // 101 goes up, never reused, to be refused where every
                // upgrade is judged (`websocket::refuse_unasked`).
                let switching = head.status == StatusCode::SWITCHING_PROTOCOLS;
                if head.status.is_informational() && !switching {
                    continue;
                }
                let (framing, reusable) = if switching {
                    (Framing::Done, false)
                } else {
                    framing(&head, head_only)
                };
                let mut response = Response::new(Body {
                    connection: Some(self),
                    framing,
                    reusable,
                    lines: Some(head.lines),
                });
                *response.status_mut() = head.status;
                *response.version_mut() = head.version;
                if let Some(reason) = head.reason {
                    response.extensions_mut().insert(reason);
                }
                return Ok(response);
            }
            if self.read.len() >= MAX_HEAD {
                return Err(H1Error::Malformed("response head too large"));
            }
            self.read.reserve(READ_CHUNK);
            let n = std::future::poll_fn(|cx| {
                poll_read_buf(Pin::new(&mut self.stream), cx, &mut self.read)
            })
            .await
            .map_err(|error| {
                if answered {
                    H1Error::Read(error)
                } else {
                    // Reset before any answer: as good as closed.
                    H1Error::Closed
                }
            })?;
            if n == 0 {
                return Err(if answered || !self.read.is_empty() {
                    H1Error::Malformed("the connection closed within the response head")
                } else {
                    H1Error::Closed
                });
            }
            answered = true;
        }
    }
}

/// `request`'s head in HTTP/1.1: its own `Content-Length` and
/// `Transfer-Encoding` are not copied (it has no body), `Content-Length: 0`
/// said for the methods that carry one (as hyper does).
fn encode_head<B>(request: &Request<B>, out: &mut Vec<u8>) {
    out.extend_from_slice(request.method().as_str().as_bytes());
    out.push(b' ');
    let target = request.uri().path_and_query().map_or("/", |p| p.as_str());
    out.extend_from_slice(target.as_bytes());
    out.extend_from_slice(b" HTTP/1.1\r\n");
    for (name, value) in request.headers() {
        if name == header::CONTENT_LENGTH || name == header::TRANSFER_ENCODING {
            continue;
        }
        out.extend_from_slice(name.as_str().as_bytes());
        out.extend_from_slice(b": ");
        out.extend_from_slice(value.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    if matches!(
        *request.method(),
        Method::POST | Method::PUT | Method::PATCH
    ) {
        out.extend_from_slice(b"content-length: 0\r\n");
    }
    out.extend_from_slice(b"\r\n");
}

/// A response head, with what its framing depends on, noted while its
/// header lines were parsed (no look-ups afterwards).
#[derive(Debug)]
struct Head {
    status: StatusCode,
    version: Version,
    lines: HeaderLines,
    /// The `Content-Length`: every value (and list member) the same.
    length: Option<u64>,
    /// Whether `Transfer-Encoding` was sent, and whether its last coding
    /// is `chunked`.
    chunked: Option<bool>,
    /// `Connection: close`.
    close: bool,
    reason: Option<hyper::ext::ReasonPhrase>,
}

/// A complete response head at the front of `buf`, taken off it; `None`
/// while it is incomplete.
fn parse_head(buf: &mut BytesMut) -> Result<Option<Head>, H1Error> {
    if buf.is_empty() {
        return Ok(None);
    }
    let mut raw = [const { MaybeUninit::<httparse::Header<'_>>::uninit() }; MAX_HEADERS];
    // Where each header's name and value are in the head (u16: a head is
    // at most MAX_HEAD bytes).
    let mut spans = [[0u16; 4]; MAX_HEADERS];
    let mut kinds = [Kind::Other; MAX_HEADERS];
    let mut length = None;
    let mut chunked = None;
    let mut close = false;
    let (len, code, version, reason, count) = {
        let mut response = httparse::Response::new(&mut []);
        let len = match httparse::ParserConfig::default().parse_response_with_uninit_headers(
            &mut response,
            buf,
            &mut raw,
        ) {
            Ok(httparse::Status::Complete(len)) if len <= MAX_HEAD => len,
            Ok(httparse::Status::Complete(_)) => {
                return Err(H1Error::Malformed("response head too large"));
            }
            Ok(httparse::Status::Partial) => return Ok(None),
            Err(httparse::Error::TooManyHeaders) => {
                return Err(H1Error::Malformed("more than 100 header lines"));
            }
            Err(_) => return Err(H1Error::Malformed("invalid response head")),
        };
        let base = buf.as_ptr() as usize;
        let offset = |part: &[u8]| (part.as_ptr() as usize - base) as u16;
        for ((span, kind), field) in spans
            .iter_mut()
            .zip(kinds.iter_mut())
            .zip(response.headers.iter())
        {
            let (name, value) = (field.name.as_bytes(), field.value);
            *span = [
                offset(name),
                offset(name) + name.len() as u16,
                offset(value),
                offset(value) + value.len() as u16,
            ];
            *kind = Kind::of(name);
            match *kind {
                Kind::Length => length = Some(content_length(value, length)?),
                // The last coding of the last line counts (RFC 9112 §6.3).
                Kind::Coding => {
                    let last = value.rsplit(|&b| b == b',').next().unwrap_or_default();
                    chunked = Some(last.trim_ascii().eq_ignore_ascii_case(b"chunked"));
                }
                Kind::Connection => {
                    close |= value
                        .split(|&b| b == b',')
                        .any(|token| token.trim_ascii().eq_ignore_ascii_case(b"close"));
                }
                _ => {}
            }
        }
        (
            len,
            response.code.unwrap_or(0),
            response.version.unwrap_or(1),
            response
                .reason
                .map(|reason| reason.as_bytes().as_ptr() as usize - buf.as_ptr() as usize)
                .zip(response.reason.map(str::len)),
            response.headers.len(),
        )
    };
    let head = buf.split_to(len);
    let status =
        StatusCode::from_u16(code).map_err(|_| H1Error::Malformed("invalid status code"))?;
    let version = if version == 0 {
        Version::HTTP_10
    } else {
        Version::HTTP_11
    };
    // A reason phrase other than the status code's own goes on, as
    // hyper's client and server pass it (`hyper::ext::ReasonPhrase`).
    let reason = reason
        .map(|(start, len)| &head[start..start + len])
        .filter(|reason| Some(*reason) != status.canonical_reason().map(str::as_bytes))
        .and_then(|reason| hyper::ext::ReasonPhrase::try_from(Bytes::copy_from_slice(reason)).ok());
    let lines = HeaderLines::keep(head, &spans[..count], &kinds[..count]);
    Ok(Some(Head {
        status,
        version,
        lines,
        length,
        chunked,
        close,
        reason,
    }))
}

/// How the body of a response ends, and whether its connection can carry
/// another request afterwards.
fn framing(head: &Head, head_only: bool) -> (Framing, bool) {
    let keep_alive = head.version == Version::HTTP_11 && !head.close;
    let status = head.status;
    if head_only || status == StatusCode::NO_CONTENT || status == StatusCode::NOT_MODIFIED {
        return (Framing::Done, keep_alive && head.chunked.is_none());
    }
    match (head.chunked, head.length) {
        // With both, the message may be an attempt at smuggling: the
        // connection is not reused (RFC 9112 §6.3, rule 3).
        (Some(true), length) => (
            Framing::Chunked(Chunked::Size),
            keep_alive && length.is_none(),
        ),
        // Rule 3 too: another coding last leaves the end of the stream
        // to tell.
        (Some(false), _) => (Framing::Close, false),
        (None, Some(0)) => (Framing::Done, keep_alive),
        (None, Some(n)) => (Framing::Length(n), keep_alive),
        (None, None) => (Framing::Close, false),
    }
}

/// A `Content-Length` value's number, the same as `seen` (an earlier
/// line's), else the response is refused; a list's members too.
fn content_length(value: &[u8], mut seen: Option<u64>) -> Result<u64, H1Error> {
    for member in value.split(|&b| b == b',') {
        let member = member.trim_ascii();
        if member.is_empty() || member.len() > 19 || !member.iter().all(u8::is_ascii_digit) {
            return Err(H1Error::Malformed("invalid Content-Length"));
        }
        let n = member
            .iter()
            .fold(0u64, |n, digit| n * 10 + u64::from(digit - b'0'));
        if seen.is_some_and(|seen| seen != n) {
            return Err(H1Error::Malformed("conflicting Content-Length values"));
        }
        seen = Some(n);
    }
    seen.ok_or(H1Error::Malformed("invalid Content-Length"))
}

/// Where a chunked body's decoding is (RFC 9112 §7.1).
#[derive(Debug, Clone, Copy)]
enum Chunked {
    /// Before a chunk-size line.
    Size,
    /// Within a chunk's data: bytes left.
    Data(u64),
    /// The CRLF after a chunk's data.
    DataEnd,
    /// Trailer lines, up to the empty line; how many bytes so far.
    Trailers(usize),
}

/// What decoding found in the bytes at hand.
enum Decoded {
    Data(Bytes),
    /// More bytes are needed.
    More,
    End,
}

impl Chunked {
    fn decode(&mut self, buf: &mut BytesMut) -> Result<Decoded, H1Error> {
        loop {
            match *self {
                Self::Size => {
                    let Some(line) = take_line(buf, MAX_CHUNK_LINE)? else {
                        return Ok(Decoded::More);
                    };
                    let size = chunk_size(&line)?;
                    *self = if size == 0 {
                        Self::Trailers(0)
                    } else {
                        Self::Data(size)
                    };
                }
                Self::Data(left) => {
                    if buf.is_empty() {
                        return Ok(Decoded::More);
                    }
                    let n = usize::try_from(left).unwrap_or(usize::MAX).min(buf.len());
                    let left = left - n as u64;
                    *self = if left == 0 {
                        Self::DataEnd
                    } else {
                        Self::Data(left)
                    };
                    return Ok(Decoded::Data(buf.split_to(n).freeze()));
                }
                Self::DataEnd => {
                    if buf.len() < 2 {
                        return Ok(Decoded::More);
                    }
                    if &buf[..2] != b"\r\n" {
                        return Err(H1Error::Malformed("no CRLF after a chunk"));
                    }
                    buf.advance(2);
                    *self = Self::Size;
                }
                // Trailers are read and dropped: HTTP/1.1 upstreams'
                // trailers are not forwarded.
                Self::Trailers(seen) => {
                    let Some(line) = take_line(buf, MAX_TRAILERS - seen)? else {
                        return Ok(Decoded::More);
                    };
                    if line.is_empty() {
                        return Ok(Decoded::End);
                    }
                    *self = Self::Trailers(seen + line.len() + 2);
                }
            }
        }
    }
}

/// A line ending in CRLF at the front of `buf`, without it; `None` while
/// incomplete. A bare LF or CR, or a line longer than `limit`, is refused.
fn take_line(buf: &mut BytesMut, limit: usize) -> Result<Option<Bytes>, H1Error> {
    match buf.iter().position(|&b| b == b'\n') {
        Some(end) if end > 0 && buf[end - 1] == b'\r' && end < limit => {
            let line = buf.split_to(end + 1).freeze();
            let line = line.slice(..end - 1);
            if line.contains(&b'\r') {
                return Err(H1Error::Malformed("bare CR in a chunked body"));
            }
            Ok(Some(line))
        }
        Some(_) => Err(H1Error::Malformed("bad line in a chunked body")),
        None if buf.len() >= limit => Err(H1Error::Malformed("line too long in a chunked body")),
        None => Ok(None),
    }
}

/// A chunk-size line's size: hex digits, then optional whitespace and
/// extensions (`;name=value`, ignored).
fn chunk_size(line: &[u8]) -> Result<u64, H1Error> {
    let digits = line.iter().take_while(|b| b.is_ascii_hexdigit()).count();
    if digits == 0 || digits > 16 {
        return Err(H1Error::Malformed("invalid chunk size"));
    }
    let rest = line[digits..].trim_ascii_start();
    if !(rest.is_empty() || rest[0] == b';') {
        return Err(H1Error::Malformed("invalid chunk size"));
    }
    Ok(line[..digits].iter().fold(0u64, |n, &digit| {
        let value = match digit {
            b'0'..=b'9' => digit - b'0',
            b'a'..=b'f' => digit - b'a' + 10,
            _ => digit - b'A' + 10,
        };
        (n << 4) | u64::from(value)
    }))
}

/// A response's body, read from its connection as it is polled. When it
/// has been read to its end and the connection can carry another request,
/// [`Body::take_reusable`] hands the connection back.
#[derive(Debug)]
pub(crate) struct Body {
    connection: Option<Connection>,
    framing: Framing,
    reusable: bool,
    /// The response's header lines, until whoever writes the answer takes
    /// them: the response itself has an empty `HeaderMap`.
    lines: Option<HeaderLines>,
}

impl Body {
    /// The response's header lines (once).
    pub(crate) fn take_header_lines(&mut self) -> Option<HeaderLines> {
        self.lines.take()
    }

    /// Whether the whole body has been read.
    pub(crate) fn is_done(&self) -> bool {
        matches!(self.framing, Framing::Done)
    }

    /// The connection, once the body is read to its end and nothing
    /// followed it (a server that sent more is not trusted again).
    pub(crate) fn take_reusable(&mut self) -> Option<Connection> {
        if self.reusable && self.is_done() {
            self.connection.take().filter(|c| c.read.is_empty())
        } else {
            None
        }
    }

    pub(crate) fn size_hint(&self) -> hyper::body::SizeHint {
        match self.framing {
            Framing::Length(n) => hyper::body::SizeHint::with_exact(n),
            Framing::Done => hyper::body::SizeHint::with_exact(0),
            _ => hyper::body::SizeHint::default(),
        }
    }

    /// The next piece of the body; `None` at its end.
    pub(crate) fn poll_data(
        &mut self,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Bytes, H1Error>>> {
        let Some(connection) = self.connection.as_mut() else {
            return Poll::Ready(None);
        };
        loop {
            let buf = &mut connection.read;
            match &mut self.framing {
                Framing::Done => return Poll::Ready(None),
                Framing::Length(left) => {
                    if !buf.is_empty() {
                        let n = usize::try_from(*left).unwrap_or(usize::MAX).min(buf.len());
                        *left -= n as u64;
                        if *left == 0 {
                            self.framing = Framing::Done;
                        }
                        return Poll::Ready(Some(Ok(buf.split_to(n).freeze())));
                    }
                }
                Framing::Chunked(state) => match state.decode(buf) {
                    Ok(Decoded::Data(data)) => return Poll::Ready(Some(Ok(data))),
                    Ok(Decoded::End) => {
                        self.framing = Framing::Done;
                        return Poll::Ready(None);
                    }
                    Ok(Decoded::More) => {}
                    Err(error) => {
                        self.reusable = false;
                        return Poll::Ready(Some(Err(error)));
                    }
                },
                Framing::Close => {
                    if !buf.is_empty() {
                        return Poll::Ready(Some(Ok(buf.split().freeze())));
                    }
                }
            }
            connection.read.reserve(READ_CHUNK);
            match poll_read_buf(Pin::new(&mut connection.stream), cx, &mut connection.read) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(Ok(0)) => {
                    if matches!(self.framing, Framing::Close) {
                        self.framing = Framing::Done;
                        return Poll::Ready(None);
                    }
                    self.reusable = false;
                    return Poll::Ready(Some(Err(H1Error::Malformed(
                        "the connection closed within the response body",
                    ))));
                }
                Poll::Ready(Ok(_)) => {}
                Poll::Ready(Err(error)) => {
                    self.reusable = false;
                    return Poll::Ready(Some(Err(H1Error::Read(error))));
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode_all(input: &[u8]) -> Result<(Vec<u8>, usize), H1Error> {
        let mut buf = BytesMut::from(input);
        let mut state = Chunked::Size;
        let mut out = Vec::new();
        loop {
            match state.decode(&mut buf)? {
                Decoded::Data(data) => out.extend_from_slice(&data),
                Decoded::More => return Err(H1Error::Malformed("incomplete")),
                Decoded::End => return Ok((out, buf.len())),
            }
        }
    }

    #[test]
    fn chunked_bodies_decode_with_extensions_and_trailers() {
        let (body, left) =
            decode_all(b"3;x=1\r\nabc\r\nA \r\n0123456789\r\n0\r\nx-t: 1\r\n\r\nnext").unwrap();
        assert_eq!(body, b"abc0123456789");
        assert_eq!(
            left, 4,
            "what follows the body stays for the caller to judge"
        );
    }

    #[test]
    fn malformed_chunked_bodies_are_refused() {
        for input in [
            &b"x\r\nabc\r\n0\r\n\r\n"[..],
            b"3\nabc\r\n0\r\n\r\n",
            b"3\r\nabcX\r\n0\r\n\r\n",
            b"3 x\r\nabc\r\n0\r\n\r\n",
            b"11111111111111111\r\n",
            b"3\r\nabc\r\n0\r\nx-t: \r1\r\n\r\n",
        ] {
            assert!(
                decode_all(input).is_err(),
                "{:?}",
                String::from_utf8_lossy(input)
            );
        }
    }

    fn head(raw: &[u8]) -> Result<Head, H1Error> {
        let mut buf = BytesMut::from(raw);
        parse_head(&mut buf).map(|head| head.expect("a complete head"))
    }

    #[test]
    fn framing_follows_rfc_9112_section_6_3() {
        let cases: [(&[u8], bool, &str, bool); 9] = [
            (
                b"HTTP/1.1 200 OK\r\ncontent-length: 5\r\n\r\n",
                false,
                "length 5",
                true,
            ),
            (
                b"HTTP/1.1 200 OK\r\ncontent-length: 5, 5\r\n\r\n",
                false,
                "length 5",
                true,
            ),
            (
                b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n",
                false,
                "chunked",
                true,
            ),
            (
                b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\ncontent-length: 5\r\n\r\n",
                false,
                "chunked",
                false,
            ),
            (
                b"HTTP/1.1 200 OK\r\ntransfer-encoding: gzip\r\n\r\n",
                false,
                "close",
                false,
            ),
            (b"HTTP/1.1 200 OK\r\n\r\n", false, "close", false),
            (b"HTTP/1.1 204 No Content\r\n\r\n", false, "done", true),
            (
                b"HTTP/1.1 200 OK\r\ncontent-length: 5\r\n\r\n",
                true,
                "done",
                true,
            ),
            (
                b"HTTP/1.0 200 OK\r\ncontent-length: 5\r\n\r\n",
                false,
                "length 5",
                false,
            ),
        ];
        for (raw, head_only, expected, reusable) in cases {
            let (framing, keep) = framing(&head(raw).unwrap(), head_only);
            let seen = match framing {
                Framing::Length(n) => format!("length {n}"),
                Framing::Chunked(_) => "chunked".into(),
                Framing::Close => "close".into(),
                Framing::Done => "done".into(),
            };
            let raw = String::from_utf8_lossy(raw);
            assert_eq!(seen, expected, "{raw}");
            assert_eq!(keep, reusable, "{raw}");
        }
        let closing =
            head(b"HTTP/1.1 200 OK\r\nconnection: Keep-Alive, Close\r\ncontent-length: 1\r\n\r\n");
        assert!(!framing(&closing.unwrap(), false).1);
    }

    #[test]
    fn conflicting_or_invalid_lengths_and_bad_heads_are_refused() {
        for raw in [
            &b"HTTP/1.1 200 OK\r\ncontent-length: 5\r\ncontent-length: 6\r\n\r\n"[..],
            b"HTTP/1.1 200 OK\r\ncontent-length: +5\r\n\r\n",
            b"HTTP/1.1 200 OK\r\ncontent-length: 5, 6\r\n\r\n",
            b"HTTP/1.1 200 OK\r\ncontent-length: \r\n\r\n",
        ] {
            assert!(head(raw).is_err(), "{}", String::from_utf8_lossy(raw));
        }
        for raw in [
            &b"HTTP/1.1 200 OK\r\nx: a\r\n folded\r\n\r\n"[..],
            b"HTTP/1.1 2000 OK\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nbad name: 1\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nx: a\rb\r\n\r\n",
        ] {
            assert!(head(raw).is_err(), "{}", String::from_utf8_lossy(raw));
        }
    }

    #[test]
    fn a_request_head_carries_no_length_of_its_own_but_content_length_0_for_post() {
        let request = Request::post("/p?q=1")
            .header(header::HOST, "up")
            .header(header::CONTENT_LENGTH, "10")
            .header(header::TRANSFER_ENCODING, "chunked")
            .body(())
            .unwrap();
        let mut out = Vec::new();
        encode_head(&request, &mut out);
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "POST /p?q=1 HTTP/1.1\r\nhost: up\r\ncontent-length: 0\r\n\r\n"
        );
    }
}
