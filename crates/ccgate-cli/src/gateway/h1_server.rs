//! The caller side's common case, served by ccgate itself: HTTP/1.1
//! requests without a body on a kept-alive connection, the shape of
//! almost every machine-to-machine call through a gateway.
//!
//! A request head is read and parsed with `httparse` (the tokenizer hyper
//! uses, with hyper's defaults). It is taken here only when nothing about
//! its framing needs judging: HTTP/1.1, no `Transfer-Encoding`, no
//! `Content-Length` but a single `0`, no `Upgrade`, `Expect` or `TE`, and
//! not `HEAD` or `CONNECT`. Anything else (a head that does not parse or
//! is too large, a body, a WebSocket handshake, the HTTP/2 preface) hands
//! the connection, with every byte read so far, to hyper's server, which
//! serves it from then on: hyper keeps every hard case and every refusal.
//!
//! The answer is written here: the status line, the response's headers
//! (lower case, as hyper writes them), its own framing (`Content-Length`
//! when the body's length is known, else chunked) and a `date`, gathered
//! with the first bytes of the body into one write.

use std::io;
use std::mem::MaybeUninit;
use std::pin::{Pin, pin};
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::{Bytes, BytesMut};
use http::{
    HeaderMap, HeaderName, HeaderValue, Method, Request, Response, StatusCode, Uri, header,
};
use hyper::body::Frame;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::watch;

use super::header_lines::HeaderLines;
use super::listener::{Connection, MAX_HEADER_BYTES, respond};
use super::transport::{CallerBody, Flight};

/// Header lines per request head, as hyper allows.
const MAX_HEADERS: usize = 100;
/// Header lines a request may gain on its way up, made room for.
const ADDED_LINES: usize = 6;
/// Bytes asked of each read.
const READ_CHUNK: usize = 8 * 1024;
/// Body bytes gathered behind the head before they are written.
const GATHER: usize = 16 * 1024;

/// How the connection left this path.
#[derive(Debug)]
pub(super) enum Ended {
    /// It is finished: closed by either side, or by shutdown.
    Closed,
    /// hyper is to serve it, starting with these bytes already read.
    HandOver(Bytes),
}

/// Serves `io`'s requests while they are the common case (see the
/// module's docs); `stop` turning true ends the connection once no
/// request is in flight on it.
///
/// # Errors
///
/// The connection's read or write failed (a timeout of
/// [`super::transport::Guarded`] among them), or its answer could not be
/// written whole: it is to be closed.
pub(super) async fn serve<I>(
    io: &mut I,
    connection: &Arc<Connection>,
    stop: &mut watch::Receiver<bool>,
) -> io::Result<Ended>
where
    I: AsyncRead + AsyncWrite + Unpin,
{
    let mut read = BytesMut::with_capacity(READ_CHUNK);
    // Grown by the first answer: an idle connection holds no write buffer.
    let mut write = Vec::new();
    loop {
        let (request, close) = loop {
            match parse(&mut read) {
                Ok(taken) => break taken,
                Err(NotTaken::Other) => return Ok(Ended::HandOver(read.freeze())),
                Err(NotTaken::Partial) if read.len() >= MAX_HEADER_BYTES => {
                    return Ok(Ended::HandOver(read.freeze()));
                }
                Err(NotTaken::Partial) => {}
            }
            read.reserve(READ_CHUNK);
            let n = if read.is_empty() {
                // Between requests, shutdown closes the connection.
                tokio::select! {
                    biased;
                    n = io.read_buf(&mut read) => n?,
                    _ = stop.wait_for(|stop| *stop) => return Ok(Ended::Closed),
                }
            } else {
                io.read_buf(&mut read).await?
            };
            if n == 0 {
                return Ok(Ended::Closed);
            }
        };
        let flight = Flight::begin(Arc::clone(connection));
        let (response, lines) = pin!(respond(flight, request)).await?;
        let close = close || *stop.borrow();
        if write_response(io, &mut write, response, lines.as_ref(), close).await? {
            io.shutdown().await?;
            return Ok(Ended::Closed);
        }
    }
}

/// A request of the common case, its head taken off the read buffer,
/// and whether it asked for the connection to close after it.
type Taken = (Request<CallerBody>, bool);

/// Why the front of the read buffer is not (yet) a request taken.
enum NotTaken {
    /// Not yet a whole head.
    Partial,
    /// Anything else: for hyper.
    Other,
}

/// What the scan of a head's lines noted.
#[derive(Default)]
struct Noted {
    /// A line that takes the request off this path.
    other: bool,
    /// A `Content-Length` line was seen.
    length: bool,
    /// `Connection: close`.
    close: bool,
}

impl Noted {
    fn note(&mut self, name: &[u8], value: &[u8]) {
        let is = |wanted: &[u8]| name.eq_ignore_ascii_case(wanted);
        if is(b"content-length") {
            // A body-less request may say so, once; a second line or any
            // other value is hyper's to judge.
            self.other |= self.length || value != b"0";
            self.length = true;
        } else if is(b"transfer-encoding") || is(b"upgrade") || is(b"expect") || is(b"te") {
            self.other = true;
        } else if is(b"connection") {
            for token in value.split(|&b| b == b',').map(<[u8]>::trim_ascii) {
                self.close |= token.eq_ignore_ascii_case(b"close");
                self.other |= token.eq_ignore_ascii_case(b"upgrade");
            }
        }
    }
}

/// Parses the request head at the front of `buf`.
fn parse(buf: &mut BytesMut) -> Result<Taken, NotTaken> {
    if buf.is_empty() {
        return Err(NotTaken::Partial);
    }
    // Where each line's name and value are in the head.
    let mut spans = [[0u32; 4]; MAX_HEADERS];
    let (len, method, target, count, close) = {
        // Uninitialised, as hyper's: 100 empty headers would be written
        // on every parse.
        let mut raw = [const { MaybeUninit::<httparse::Header<'_>>::uninit() }; MAX_HEADERS];
        let mut parsed = httparse::Request::new(&mut []);
        let config = httparse::ParserConfig::default();
        let len = match config.parse_request_with_uninit_headers(&mut parsed, buf, &mut raw) {
            Ok(httparse::Status::Complete(len)) if len <= MAX_HEADER_BYTES => len,
            Ok(httparse::Status::Partial) => return Err(NotTaken::Partial),
            _ => return Err(NotTaken::Other),
        };
        let (Some(method), Some(target), Some(1)) = (parsed.method, parsed.path, parsed.version)
        else {
            return Err(NotTaken::Other);
        };
        let Ok(method) = Method::from_bytes(method.as_bytes()) else {
            return Err(NotTaken::Other);
        };
        if method == Method::HEAD || method == Method::CONNECT {
            return Err(NotTaken::Other);
        }
        let base = buf.as_ptr() as usize;
        let span = |part: &[u8]| {
            let start = part.as_ptr() as usize - base;
            // A head is at most MAX_HEADER_BYTES long.
            [start as u32, (start + part.len()) as u32]
        };
        let mut noted = Noted::default();
        for (at, field) in spans.iter_mut().zip(parsed.headers.iter()) {
            noted.note(field.name.as_bytes(), field.value);
            let ([name_start, name_end], [value_start, value_end]) =
                (span(field.name.as_bytes()), span(field.value));
            *at = [name_start, name_end, value_start, value_end];
        }
        if noted.other {
            return Err(NotTaken::Other);
        }
        let target = span(target.as_bytes());
        (len, method, target, parsed.headers.len(), noted.close)
    };
    let head = buf.split_to(len).freeze();
    let slice = |[start, end]: [u32; 2]| head.slice(start as usize..end as usize);
    let Ok(uri) = Uri::from_maybe_shared(slice(target)) else {
        return hand_back(buf, &head);
    };
    // Room for the lines the gateway adds (`X-Real-Ip`, the three
    // `X-Forwarded-*`, a middleware's claim headers): a full map is grown,
    // every entry moved and rehashed, twice per request at the usual two
    // lines.
    let mut headers = HeaderMap::with_capacity(count + ADDED_LINES);
    for &[name_start, name_end, value_start, value_end] in &spans[..count] {
        let name = HeaderName::from_bytes(&head[name_start as usize..name_end as usize]);
        let value = HeaderValue::from_maybe_shared(slice([value_start, value_end]));
        let (Ok(name), Ok(value)) = (name, value) else {
            return hand_back(buf, &head);
        };
        headers.append(name, value);
    }
    let mut request = Request::new(CallerBody::empty());
    *request.method_mut() = method;
    *request.uri_mut() = uri;
    *request.headers_mut() = headers;
    Ok((request, close))
}

/// A head taken off `buf` that hyper is to judge after all (a target or
/// line `http` refuses): put back in front of the bytes that followed it.
fn hand_back(buf: &mut BytesMut, head: &Bytes) -> Result<Taken, NotTaken> {
    let mut whole = BytesMut::with_capacity(head.len() + buf.len());
    whole.extend_from_slice(head);
    whole.extend_from_slice(buf);
    *buf = whole;
    Err(NotTaken::Other)
}

/// How the body of an answer is framed on the wire.
enum Framing {
    /// None is written (1xx, 204, 304).
    None,
    /// This many bytes are still to come.
    Length(u64),
    Chunked,
}

impl Framing {
    /// Opens a piece of `len` body bytes in `out`.
    ///
    /// # Errors
    ///
    /// The body is longer than its `Content-Length`.
    fn open(&mut self, len: usize, out: &mut Vec<u8>) -> io::Result<()> {
        match self {
            Self::None => {}
            Self::Length(left) => {
                *left = left
                    .checked_sub(len as u64)
                    .ok_or_else(|| io::Error::other("body longer than its Content-Length"))?;
            }
            Self::Chunked => {
                let mut digits = [0u8; 20];
                out.extend_from_slice(in_base(len as u64, 16, &mut digits));
                out.extend_from_slice(b"\r\n");
            }
        }
        Ok(())
    }

    /// Closes a piece opened with [`Framing::open`].
    fn close(&self, out: &mut Vec<u8>) {
        if let Self::Chunked = self {
            out.extend_from_slice(b"\r\n");
        }
    }

    /// The end of the body appended to `out`.
    ///
    /// # Errors
    ///
    /// The body ended before its `Content-Length`.
    fn finish(&self, out: &mut Vec<u8>) -> io::Result<()> {
        match self {
            Self::None | Self::Length(0) => Ok(()),
            Self::Length(_) => Err(io::Error::other("body shorter than its Content-Length")),
            Self::Chunked => {
                out.extend_from_slice(b"0\r\n\r\n");
                Ok(())
            }
        }
    }
}

/// `n` in `base` (10 or 16, lower case), written into the end of `buf`:
/// lengths and chunk sizes without a `String` per answer.
fn in_base(mut n: u64, base: u64, buf: &mut [u8; 20]) -> &[u8] {
    let mut at = buf.len();
    loop {
        at -= 1;
        buf[at] = b"0123456789abcdef"[(n % base) as usize];
        n /= base;
        if n == 0 {
            return &buf[at..];
        }
    }
}

/// What polling an answer's body gave.
enum Next<E> {
    Frame(Result<Frame<Bytes>, E>),
    End,
    /// Nothing yet, with bytes gathered to be written first.
    Wait,
}

fn poll_next<B: hyper::body::Body<Data = Bytes> + Unpin>(
    body: &mut B,
    cx: &mut Context<'_>,
    gathered: bool,
) -> Poll<Next<B::Error>> {
    match Pin::new(body).poll_frame(cx) {
        Poll::Ready(Some(frame)) => Poll::Ready(Next::Frame(frame)),
        Poll::Ready(None) => Poll::Ready(Next::End),
        Poll::Pending if gathered => Poll::Ready(Next::Wait),
        Poll::Pending => Poll::Pending,
    }
}

/// Writes `response` to `io` (`out` is the connection's write buffer),
/// the server's header `lines` first when it has them, with
/// `connection: close` when `close` or when the response itself asks to
/// close; returns whether the connection is to close.
///
/// # Errors
///
/// A write failed, or the body failed or did not match its length: the
/// connection is to be closed (an answer cut short says so by ending).
async fn write_response<I, B>(
    io: &mut I,
    out: &mut Vec<u8>,
    response: Response<B>,
    lines: Option<&HeaderLines>,
    mut close: bool,
) -> io::Result<bool>
where
    I: AsyncWrite + Unpin,
    B: hyper::body::Body<Data = Bytes> + Unpin,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let (parts, mut body) = response.into_parts();
    let status = parts.status;
    out.clear();
    out.extend_from_slice(b"HTTP/1.1 ");
    out.extend_from_slice(status.as_str().as_bytes());
    out.push(b' ');
    // A reason phrase of the upstream's own goes on, as hyper's server
    // writes it.
    match parts.extensions.get::<hyper::ext::ReasonPhrase>() {
        Some(reason) => out.extend_from_slice(reason.as_bytes()),
        None => out.extend_from_slice(status.canonical_reason().unwrap_or("").as_bytes()),
    }
    out.extend_from_slice(b"\r\n");
    let mut declared = None;
    let mut dated = false;
    if let Some(lines) = lines {
        lines.write_to(out);
        dated = lines.has_date();
    }
    for (name, value) in &parts.headers {
        if name == header::CONTENT_LENGTH {
            declared = std::str::from_utf8(value.as_bytes())
                .ok()
                .and_then(|value| value.parse::<u64>().ok());
            continue;
        }
        if name == header::TRANSFER_ENCODING {
            continue;
        }
        if name == header::CONNECTION {
            close |= value
                .as_bytes()
                .split(|&b| b == b',')
                .any(|token| token.trim_ascii().eq_ignore_ascii_case(b"close"));
            continue;
        }
        dated |= name == header::DATE;
        out.extend_from_slice(name.as_str().as_bytes());
        out.extend_from_slice(b": ");
        out.extend_from_slice(value.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    let bodiless = status.is_informational()
        || status == StatusCode::NO_CONTENT
        || status == StatusCode::NOT_MODIFIED;
    let mut framing = if bodiless {
        Framing::None
    } else {
        match body.size_hint().exact().or(declared) {
            Some(length) => {
                out.extend_from_slice(b"content-length: ");
                let mut digits = [0u8; 20];
                out.extend_from_slice(in_base(length, 10, &mut digits));
                out.extend_from_slice(b"\r\n");
                Framing::Length(length)
            }
            None => {
                out.extend_from_slice(b"transfer-encoding: chunked\r\n");
                Framing::Chunked
            }
        }
    };
    if close {
        out.extend_from_slice(b"connection: close\r\n");
    }
    if !dated {
        out.extend_from_slice(b"date: ");
        date::extend(out);
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b"\r\n");
    if !bodiless && !body.is_end_stream() {
        loop {
            // Bytes already there go with what is gathered; a wait
            // writes what is gathered first.
            let next = std::future::poll_fn(|cx| poll_next(&mut body, cx, !out.is_empty())).await;
            let frame = match next {
                Next::Wait => {
                    io.write_all(out).await?;
                    out.clear();
                    continue;
                }
                Next::End => break,
                Next::Frame(frame) => frame.map_err(|error| io::Error::other(error.into()))?,
            };
            // Trailers go nowhere: a caller that asked for them (`TE`)
            // was hyper's.
            let Ok(data) = frame.into_data() else {
                continue;
            };
            if data.is_empty() {
                continue;
            }
            framing.open(data.len(), out)?;
            if data.len() >= GATHER {
                // Large: written from where it is, not copied.
                io.write_all(out).await?;
                out.clear();
                io.write_all(&data).await?;
            } else {
                out.extend_from_slice(&data);
            }
            framing.close(out);
            if body.is_end_stream() {
                break;
            }
            if out.len() >= GATHER {
                io.write_all(out).await?;
                out.clear();
            }
        }
    }
    framing.finish(out)?;
    drop(body);
    if !out.is_empty() {
        io.write_all(out).await?;
        out.clear();
    }
    io.flush().await?;
    Ok(close)
}

/// The `date` of answers, formatted once a second per thread (as hyper's
/// server caches it).
mod date {
    use std::cell::RefCell;
    use std::time::{SystemTime, UNIX_EPOCH};

    /// `Sun, 06 Nov 1994 08:49:37 GMT`.
    const LENGTH: usize = 29;

    thread_local! {
        static CACHED: RefCell<(u64, [u8; LENGTH])> = const { RefCell::new((u64::MAX, [0; LENGTH])) };
    }

    /// Appends the current date to `out`.
    pub(super) fn extend(out: &mut Vec<u8>) {
        let now = SystemTime::now();
        let second = now
            .duration_since(UNIX_EPOCH)
            .map_or(0, |since| since.as_secs());
        CACHED.with_borrow_mut(|(at, value)| {
            if *at != second {
                let formatted = httpdate::fmt_http_date(now);
                if formatted.len() == LENGTH {
                    value.copy_from_slice(formatted.as_bytes());
                    *at = second;
                } else {
                    out.extend_from_slice(formatted.as_bytes());
                    return;
                }
            }
            out.extend_from_slice(value);
        });
    }
}

#[cfg(test)]
mod tests {
    use std::collections::VecDeque;

    use http_body_util::Full;
    use hyper::body::{Body, SizeHint};

    use super::*;

    fn taken(head: &str) -> (Request<CallerBody>, bool, BytesMut) {
        let mut buf = BytesMut::from(head);
        match parse(&mut buf) {
            Ok((request, close)) => (request, close, buf),
            Err(NotTaken::Partial) => panic!("partial: {head:?}"),
            Err(NotTaken::Other) => panic!("not taken: {head:?}"),
        }
    }

    /// Whether `head` goes to hyper, with the buffer left as it was.
    fn handed_over(head: &[u8]) -> bool {
        let mut buf = BytesMut::from(head);
        let other = matches!(parse(&mut buf), Err(NotTaken::Other));
        assert_eq!(&buf[..], head, "the bytes are all kept for hyper");
        other
    }

    #[test]
    fn a_body_less_request_is_taken_and_what_follows_it_stays() {
        let (request, close, rest) = taken(
            "GET /a/b?c=d HTTP/1.1\r\nHost: example.com\r\nX-Two: 1\r\nx-two: 2\r\n\
             Content-Length: 0\r\n\r\nGET /next HTTP/1.1\r\n",
        );
        assert_eq!(request.method(), Method::GET);
        assert_eq!(request.uri(), "/a/b?c=d");
        assert_eq!(request.version(), http::Version::HTTP_11);
        assert_eq!(request.headers()["host"], "example.com");
        let twos: Vec<_> = request.headers().get_all("x-two").iter().collect();
        assert_eq!(twos, ["1", "2"]);
        assert!(request.body().is_end_stream());
        assert!(!close);
        assert_eq!(&rest[..], b"GET /next HTTP/1.1\r\n");
    }

    #[test]
    fn connection_close_is_noted_in_any_case_and_list() {
        let (_, close, _) = taken("GET / HTTP/1.1\r\nConnection: foo, CLOSE\r\n\r\n");
        assert!(close);
    }

    #[test]
    fn an_incomplete_head_waits_for_more() {
        for head in ["", "GET / HT", "GET / HTTP/1.1\r\nHost: x\r\n"] {
            let mut buf = BytesMut::from(head);
            assert!(
                matches!(parse(&mut buf), Err(NotTaken::Partial)),
                "{head:?}"
            );
            assert_eq!(&buf[..], head.as_bytes());
        }
    }

    #[test]
    fn anything_whose_framing_needs_judging_is_handed_to_hyper() {
        let cases: &[&[u8]] = &[
            b"POST / HTTP/1.1\r\nContent-Length: 5\r\n\r\nhello",
            b"GET / HTTP/1.1\r\nContent-Length: 00\r\n\r\n",
            b"GET / HTTP/1.1\r\nContent-Length: 0\r\nContent-Length: 0\r\n\r\n",
            b"GET / HTTP/1.1\r\ncontent-length: 0\r\nContent-Length: 7\r\n\r\n",
            b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
            b"POST / HTTP/1.1\r\nContent-Length: 0\r\nTransfer-Encoding: chunked\r\n\r\n",
            b"GET / HTTP/1.1\r\ntransfer-encoding: identity\r\n\r\n",
            b"GET /ws HTTP/1.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n",
            b"GET / HTTP/1.1\r\nConnection: keep-alive, upgrade\r\n\r\n",
            b"PUT / HTTP/1.1\r\nExpect: 100-continue\r\n\r\n",
            b"GET / HTTP/1.1\r\nTE: trailers\r\n\r\n",
            b"HEAD / HTTP/1.1\r\nHost: x\r\n\r\n",
            b"CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n",
            b"GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n",
            b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n",
            // obs-fold, NUL and other control bytes, a space before the
            // colon, a missing colon, a bad request line.
            b"GET / HTTP/1.1\r\nX-A: 1\r\n 2\r\n\r\n",
            b"GET / HTTP/1.1\r\nX-A: 1\x002\r\n\r\n",
            b"GET / HTTP/1.1\r\nX-A: 1\x7f\r\n\r\n",
            b"GET / HTTP/1.1\r\nContent-Length : 0\r\n\r\n",
            b"GET / HTTP/1.1\r\nX-A\r\n\r\n",
            b"GET  / HTTP/1.1\r\n\r\n",
            b"GET / HTTP/1.1 \r\n\r\n",
            b"G\x01T / HTTP/1.1\r\n\r\n",
            // A target `http` refuses, after the head was taken off.
            b"GET /a b HTTP/1.1\r\n\r\n",
            b"GET http://[::1 HTTP/1.1\r\n\r\n",
        ];
        for head in cases {
            assert!(handed_over(head), "{:?}", String::from_utf8_lossy(head));
        }
    }

    #[test]
    fn more_lines_than_hyper_allows_are_handed_over() {
        let mut head = String::from("GET / HTTP/1.1\r\n");
        for n in 0..=MAX_HEADERS {
            head.push_str(&format!("x-{n}: {n}\r\n"));
        }
        head.push_str("\r\n");
        assert!(handed_over(head.as_bytes()));
    }

    /// A body of `pieces`, of unknown length.
    struct Pieces(VecDeque<&'static str>);

    impl Body for Pieces {
        type Data = Bytes;
        type Error = std::convert::Infallible;

        fn poll_frame(
            mut self: Pin<&mut Self>,
            _: &mut Context<'_>,
        ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
            Poll::Ready(
                self.0
                    .pop_front()
                    .map(|piece| Ok(Frame::data(Bytes::from_static(piece.as_bytes())))),
            )
        }

        fn size_hint(&self) -> SizeHint {
            SizeHint::default()
        }
    }

    async fn written<B>(response: Response<B>, close: bool) -> (String, bool)
    where
        B: Body<Data = Bytes> + Unpin,
        B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    {
        let (mut io, mut out) = (Vec::new(), Vec::new());
        let close = write_response(&mut io, &mut out, response, None, close)
            .await
            .expect("written");
        (String::from_utf8(io).expect("ASCII"), close)
    }

    fn without_date(answer: &str) -> String {
        answer
            .split("\r\n")
            .filter(|line| !line.starts_with("date: "))
            .collect::<Vec<_>>()
            .join("\r\n")
    }

    #[tokio::test]
    async fn a_known_length_is_said_and_a_date_added() {
        let mut response = Response::new(Full::new(Bytes::from_static(b"hello")));
        response
            .headers_mut()
            .insert("X-Up", HeaderValue::from_static("1"));
        let (answer, close) = written(response, false).await;
        assert!(!close);
        let date = answer
            .split("\r\n")
            .find_map(|line| line.strip_prefix("date: "))
            .expect("a date");
        assert!(httpdate::parse_http_date(date).is_ok(), "{date}");
        assert_eq!(
            without_date(&answer),
            "HTTP/1.1 200 OK\r\nx-up: 1\r\ncontent-length: 5\r\n\r\nhello"
        );
    }

    #[tokio::test]
    async fn a_servers_header_lines_are_written_through_and_its_date_kept() {
        let lines = HeaderLines::of_head(
            b"HTTP/1.1 200 OK\r\nServer: up\r\nContent-Length: 5\r\n\
              Date: Sun, 06 Nov 1994 08:49:37 GMT\r\nConnection: keep-alive\r\n\r\n",
        );
        let mut response = Response::new(Full::new(Bytes::from_static(b"hello")));
        response
            .headers_mut()
            .insert("x-added", HeaderValue::from_static("1"));
        let (mut io, mut out) = (Vec::new(), Vec::new());
        let close = write_response(&mut io, &mut out, response, Some(&lines), false)
            .await
            .expect("written");
        assert!(!close);
        assert_eq!(
            String::from_utf8(io).unwrap(),
            "HTTP/1.1 200 OK\r\nserver: up\r\ndate: Sun, 06 Nov 1994 08:49:37 GMT\r\n\
             x-added: 1\r\ncontent-length: 5\r\n\r\nhello"
        );
    }

    #[tokio::test]
    async fn an_unknown_length_is_chunked_and_the_upstreams_date_kept() {
        let mut response = Response::new(Pieces(VecDeque::from(["ab", "", "cde"])));
        response.headers_mut().insert(
            header::DATE,
            HeaderValue::from_static("Sun, 06 Nov 1994 08:49:37 GMT"),
        );
        let (answer, _) = written(response, false).await;
        assert_eq!(
            answer,
            "HTTP/1.1 200 OK\r\ndate: Sun, 06 Nov 1994 08:49:37 GMT\r\n\
             transfer-encoding: chunked\r\n\r\n2\r\nab\r\n3\r\ncde\r\n0\r\n\r\n"
        );
    }

    #[tokio::test]
    async fn a_declared_length_frames_a_body_of_unknown_length_and_is_held_to() {
        let mut response = Response::new(Pieces(VecDeque::from(["ab", "c"])));
        response
            .headers_mut()
            .insert(header::CONTENT_LENGTH, HeaderValue::from_static("3"));
        let (answer, _) = written(response, false).await;
        assert!(
            without_date(&answer).ends_with("content-length: 3\r\n\r\nabc"),
            "{answer:?}"
        );
        for (declared, pieces) in [("2", ["ab", "c"]), ("4", ["ab", "c"])] {
            let mut response = Response::new(Pieces(VecDeque::from(pieces)));
            response
                .headers_mut()
                .insert(header::CONTENT_LENGTH, HeaderValue::from_static(declared));
            let (mut io, mut out) = (Vec::new(), Vec::new());
            let error = write_response(&mut io, &mut out, response, None, false).await;
            assert!(error.is_err(), "Content-Length {declared} for 3 bytes");
        }
    }

    #[tokio::test]
    async fn no_body_and_no_length_for_204_and_304() {
        for status in [StatusCode::NO_CONTENT, StatusCode::NOT_MODIFIED] {
            let mut response = Response::new(Pieces(VecDeque::from(["never"])));
            *response.status_mut() = status;
            response
                .headers_mut()
                .insert(header::CONTENT_LENGTH, HeaderValue::from_static("5"));
            let (answer, _) = written(response, false).await;
            assert_eq!(
                without_date(&answer),
                format!(
                    "HTTP/1.1 {} {}\r\n\r\n",
                    status.as_str(),
                    status.canonical_reason().unwrap()
                )
            );
        }
    }

    #[tokio::test]
    async fn a_reason_of_its_own_and_connection_close_are_written() {
        let mut response = Response::new(Full::new(Bytes::new()));
        *response.status_mut() = StatusCode::IM_A_TEAPOT;
        response
            .extensions_mut()
            .insert(hyper::ext::ReasonPhrase::from_static(b"Short And Stout"));
        response
            .headers_mut()
            .insert(header::CONNECTION, HeaderValue::from_static("Close"));
        let (answer, close) = written(response, false).await;
        assert!(close, "the response asked to close");
        assert!(
            answer.starts_with(
                "HTTP/1.1 418 Short And Stout\r\ncontent-length: 0\r\nconnection: close\r\n"
            ),
            "{answer:?}"
        );
        let (answer, close) = written(Response::new(Full::new(Bytes::new())), true).await;
        assert!(
            close && answer.contains("\r\nconnection: close\r\n"),
            "{answer:?}"
        );
    }

    #[test]
    fn lengths_and_chunk_sizes() {
        let mut buf = [0u8; 20];
        assert_eq!(in_base(0, 16, &mut buf), b"0");
        assert_eq!(in_base(255, 16, &mut buf), b"ff");
        assert_eq!(in_base(0x10_0000, 16, &mut buf), b"100000");
        assert_eq!(in_base(u64::MAX, 16, &mut buf), b"ffffffffffffffff");
        assert_eq!(in_base(0, 10, &mut buf), b"0");
        assert_eq!(in_base(1234, 10, &mut buf), b"1234");
        assert_eq!(in_base(u64::MAX, 10, &mut buf), b"18446744073709551615");
    }
}
