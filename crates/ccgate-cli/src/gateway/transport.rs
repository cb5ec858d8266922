//! The timeouts of an entry point's connections (SPEC §10, Traefik's
//! `transport.respondingTimeouts`), kept by three small wrappers rather
//! than by timers per request:
//!
//! - [`Guarded`], around the connection's stream, times what the
//!   connection waits for between requests: the first byte of a new
//!   connection ([`FIRST_BYTE_TIMEOUT`]), the rest of an HTTP/1.1 request
//!   head once its first byte is in ([`HEADER_READ_TIMEOUT`]), the next
//!   request on a kept-alive connection (`idleTimeout`), and writes that
//!   stay blocked on a client that does not read (`writeTimeout`). A
//!   deadline that passes turns the pending read or write into an error,
//!   and hyper closes the connection.
//! - [`CallerBody`], around a request's body, ends a body still arriving
//!   `readTimeout` after its request began (HTTP/1.1: its first byte;
//!   HTTP/2: its head) with an error, so a caller that trickles its body
//!   is cut off.
//! - [`Answer`], around a response's body, ends a response still being
//!   written `writeTimeout` after its request was read.
//!
//! What the requests of a connection tell its stream goes through
//! [`Activity`]: how many are in flight and how many have finished, two
//! relaxed atomics per request. The stream's one timer is reset only when
//! a read has to wait, which on a busy kept-alive connection is once per
//! request (as hyper's own header timer was); a body or response arms a
//! timer only when it has to wait past its first poll, and only when its
//! timeout is on.
//!
//! # Example
//!
//! ```text
//! let activity = Arc::new(Activity::new());
//! let io = Guarded::new(stream, Arc::clone(&activity), timeouts);
//! // in the service: let flight = Flight::begin(activity);
//! //   request.map(|body| CallerBody::new(body, flight.body_deadline(..)))
//! //   response.map(|body| Answer::new(body, deadline, flight))
//! ```

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::task::{Context, Poll, ready};
use std::time::Duration;

use bytes::Bytes;
use hyper::body::{Body, Frame, Incoming, SizeHint};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::{Instant, Sleep};

use crate::config::Transport;

/// Time a new connection has to send its first byte (after TLS, its
/// first byte of HTTP).
pub(crate) const FIRST_BYTE_TIMEOUT: Duration = Duration::from_secs(10);
/// Time a client has to finish an HTTP/1.1 request head once its first
/// byte is in (slow-loris guard); `readTimeout` when shorter.
pub(crate) const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);
/// HTTP/2: a connection sends a PING after this long without frames...
pub(crate) const H2_KEEP_ALIVE_INTERVAL: Duration = Duration::from_secs(30);
/// ...and is closed when the answer takes longer than this.
pub(crate) const H2_KEEP_ALIVE_TIMEOUT: Duration = Duration::from_secs(20);

/// The client preface of HTTP/2 (RFC 9113 §3.4).
const H2_PREFACE: &[u8; 24] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
/// `head_started` when no HTTP/1.1 head has begun since the last request.
const NO_HEAD: u64 = u64::MAX;

/// The timeouts of one entry point, as the wrappers use them.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Timeouts {
    pub(crate) read: Option<Duration>,
    pub(crate) write: Option<Duration>,
    pub(crate) idle: Option<Duration>,
    /// The HTTP/1.1 head: [`HEADER_READ_TIMEOUT`], or `read` if shorter.
    head: Duration,
}

impl Timeouts {
    pub(crate) fn of(transport: &Transport) -> Self {
        let head = transport
            .read_timeout
            .map_or(HEADER_READ_TIMEOUT, |read| read.min(HEADER_READ_TIMEOUT));
        Self {
            read: transport.read_timeout,
            write: transport.write_timeout,
            idle: transport.idle_timeout,
            head,
        }
    }
}

/// What the requests of one connection tell its stream.
#[derive(Debug)]
pub(crate) struct Activity {
    /// When the connection was accepted; the instants below count from it.
    base: Instant,
    /// Requests whose responses are not yet written.
    in_flight: AtomicU32,
    /// Requests whose responses are written (wrapping).
    finished: AtomicU32,
    /// When the last response was written, in ns since `base`.
    ended: AtomicU64,
    /// When the current HTTP/1.1 request's head began, in ns since
    /// `base`, if it came in more than one read; else [`NO_HEAD`].
    head_started: AtomicU64,
}

impl Activity {
    pub(crate) fn new() -> Self {
        Self {
            base: Instant::now(),
            in_flight: AtomicU32::new(0),
            finished: AtomicU32::new(0),
            ended: AtomicU64::new(0),
            head_started: AtomicU64::new(NO_HEAD),
        }
    }

    fn nanos(&self, at: Instant) -> u64 {
        u64::try_from(at.saturating_duration_since(self.base).as_nanos()).unwrap_or(u64::MAX - 1)
    }

    fn at(&self, nanos: u64) -> Instant {
        self.base + Duration::from_nanos(nanos)
    }
}

/// One request in flight on its connection, from the service's call to
/// the end (or drop) of its response body.
#[derive(Debug)]
pub(crate) struct Flight<C: AsRef<Activity>> {
    connection: Arc<C>,
}

impl<C: AsRef<Activity>> Flight<C> {
    pub(crate) fn begin(connection: Arc<C>) -> Self {
        connection
            .as_ref()
            .as_ref()
            .in_flight
            .fetch_add(1, Ordering::Relaxed);
        Self { connection }
    }

    pub(crate) fn connection(&self) -> &C {
        &self.connection
    }

    /// When this request began: the first byte of its HTTP/1.1 head when
    /// that came in more than one read, else now (its head just came).
    pub(crate) fn started(&self) -> Instant {
        let activity = self.connection.as_ref().as_ref();
        match activity.head_started.load(Ordering::Relaxed) {
            NO_HEAD => Instant::now(),
            nanos => activity.at(nanos),
        }
    }
}

impl<C: AsRef<Activity>> Drop for Flight<C> {
    fn drop(&mut self) {
        let activity = self.connection.as_ref().as_ref();
        let now = activity.nanos(Instant::now());
        activity.ended.store(now, Ordering::Relaxed);
        activity.finished.fetch_add(1, Ordering::Relaxed);
        activity.in_flight.fetch_sub(1, Ordering::Relaxed);
    }
}

/// What a connection's reads wait for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Waiting {
    /// A new connection: its first byte.
    FirstByte,
    /// The next request.
    Idle,
    /// The rest of an HTTP/1.1 request head.
    Head,
    /// Nothing timed here: a request is in flight (its body, if any,
    /// times itself).
    Request,
}

/// The protocol, as told by the first bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Protocol {
    /// This many bytes of the HTTP/2 preface seen so far.
    Unknown(usize),
    Http1,
    Http2,
}

/// A connection's stream with its deadlines (see the module's docs).
pub(crate) struct Guarded<I, C: AsRef<Activity>> {
    io: I,
    connection: Arc<C>,
    timeouts: Timeouts,
    protocol: Protocol,
    waiting: Waiting,
    /// The read deadline of `waiting`, if any (`Head`: `None` until a
    /// read of the head has to wait).
    deadline: Option<Instant>,
    /// `Activity::finished` when the current idle period began.
    generation: u32,
    /// The read timer. It never fires after `deadline` but may fire
    /// before it (it is moved only when it would be late, so a busy
    /// connection rarely touches it); a read that has to wait checks
    /// where it stands when it fires.
    timer: Pin<Box<Sleep>>,
    /// The timer is set no later than `idle` after some past instant
    /// (so no later than the end of any idle period that starts now).
    timer_idle_bound: bool,
    /// With `writeTimeout`: the deadline of a blocked write, and its timer.
    blocked: Option<Instant>,
    write_timer: Option<Pin<Box<Sleep>>>,
}

impl<I, C: AsRef<Activity>> std::fmt::Debug for Guarded<I, C> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Guarded")
            .field("protocol", &self.protocol)
            .field("waiting", &self.waiting)
            .field("deadline", &self.deadline)
            .finish_non_exhaustive()
    }
}

impl<I, C: AsRef<Activity>> Guarded<I, C> {
    /// `io`, just accepted (or past its TLS handshake), of `connection`.
    pub(crate) fn new(io: I, connection: Arc<C>, timeouts: Timeouts) -> Self {
        let deadline = Instant::now() + FIRST_BYTE_TIMEOUT;
        Self {
            io,
            connection,
            timeouts,
            protocol: Protocol::Unknown(0),
            waiting: Waiting::FirstByte,
            deadline: Some(deadline),
            generation: 0,
            timer: Box::pin(tokio::time::sleep_until(deadline)),
            timer_idle_bound: false,
            blocked: None,
            write_timer: None,
        }
    }

    fn activity(&self) -> &Activity {
        self.connection.as_ref().as_ref()
    }

    /// Bytes came in.
    fn on_data(&mut self, data: &[u8]) {
        if let Protocol::Unknown(seen) = self.protocol {
            let n = data.len().min(H2_PREFACE.len() - seen);
            self.protocol = if data[..n] != H2_PREFACE[seen..seen + n] {
                Protocol::Http1
            } else if seen + n == H2_PREFACE.len() {
                Protocol::Http2
            } else {
                Protocol::Unknown(seen + n)
            };
        }
        match (self.protocol, self.waiting) {
            // HTTP/2 frames between streams (PINGs, SETTINGS) are not a
            // request: the idle period goes on.
            (Protocol::Http2, Waiting::FirstByte | Waiting::Head) => {
                self.waiting = Waiting::Idle;
                self.deadline = self.timeouts.idle.map(|idle| Instant::now() + idle);
            }
            (Protocol::Http1 | Protocol::Unknown(_), Waiting::FirstByte | Waiting::Idle)
                if self.activity().in_flight.load(Ordering::Relaxed) == 0 =>
            {
                // Timed from the first read of it that has to wait: most
                // heads come whole, and need no clock.
                self.waiting = Waiting::Head;
                self.deadline = None;
                self.activity()
                    .head_started
                    .store(NO_HEAD, Ordering::Relaxed);
            }
            _ => {}
        }
    }

    /// A read has to wait: until the deadline of what it waits for.
    fn poll_read_deadline(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        loop {
            let activity = self.activity();
            let in_flight = activity.in_flight.load(Ordering::Relaxed);
            let finished = activity.finished.load(Ordering::Relaxed);
            if in_flight > 0 {
                // Nothing to time, but the idle period that follows must
                // be: it cannot end before `now + idle`.
                self.waiting = Waiting::Request;
                let Some(idle) = self.timeouts.idle else {
                    return Poll::Pending;
                };
                if self.timer.is_elapsed() || !self.timer_idle_bound {
                    self.timer.as_mut().reset(Instant::now() + idle);
                    self.timer_idle_bound = true;
                }
                ready!(self.timer.as_mut().poll(cx));
                continue;
            }
            if self.waiting == Waiting::Request || finished != self.generation {
                // Responses were written: idle since the last one.
                let activity = self.activity();
                let ended = activity.at(activity.ended.load(Ordering::Relaxed));
                self.generation = finished;
                self.waiting = Waiting::Idle;
                self.deadline = self.timeouts.idle.map(|idle| ended + idle);
            }
            if self.waiting == Waiting::Head && self.deadline.is_none() {
                let now = Instant::now();
                self.deadline = Some(now + self.timeouts.head);
                let activity = self.activity();
                activity
                    .head_started
                    .store(activity.nanos(now), Ordering::Relaxed);
            }
            let Some(deadline) = self.deadline else {
                return Poll::Pending;
            };
            if self.timer.deadline() > deadline || self.timer.is_elapsed() {
                self.timer.as_mut().reset(deadline);
                self.timer_idle_bound = self.waiting == Waiting::Idle;
            }
            ready!(self.timer.as_mut().poll(cx));
            if self.timer.deadline() < deadline {
                // Early (set for an earlier wait): look again.
                continue;
            }
            let what = match self.waiting {
                Waiting::FirstByte => "no first byte within 10s of connecting",
                Waiting::Head => "request head not complete in time",
                _ => "idle past idleTimeout",
            };
            return Poll::Ready(Err(io::Error::new(io::ErrorKind::TimedOut, what)));
        }
    }

    /// A write returned `written`: with `writeTimeout`, one that has to
    /// wait may wait that long at most.
    fn after_write<T>(
        &mut self,
        cx: &mut Context<'_>,
        written: Poll<io::Result<T>>,
    ) -> Poll<io::Result<T>> {
        let Some(limit) = self.timeouts.write else {
            return written;
        };
        if written.is_ready() {
            self.blocked = None;
            return written;
        }
        let deadline = *self.blocked.get_or_insert_with(|| Instant::now() + limit);
        let timer = self
            .write_timer
            .get_or_insert_with(|| Box::pin(tokio::time::sleep_until(deadline)));
        if timer.deadline() != deadline {
            timer.as_mut().reset(deadline);
        }
        ready!(timer.as_mut().poll(cx));
        Poll::Ready(Err(io::Error::new(
            io::ErrorKind::TimedOut,
            "writes blocked past writeTimeout",
        )))
    }
}

impl<I: AsyncRead + Unpin, C: AsRef<Activity>> AsyncRead for Guarded<I, C> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        match Pin::new(&mut this.io).poll_read(cx, buf) {
            Poll::Ready(Ok(())) => {
                if buf.filled().len() > before {
                    this.on_data(&buf.filled()[before..]);
                }
                Poll::Ready(Ok(()))
            }
            Poll::Pending => this.poll_read_deadline(cx),
            error @ Poll::Ready(Err(_)) => error,
        }
    }
}

impl<I: AsyncWrite + Unpin, C: AsRef<Activity>> AsyncWrite for Guarded<I, C> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let written = Pin::new(&mut this.io).poll_write(cx, buf);
        this.after_write(cx, written)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let written = Pin::new(&mut this.io).poll_write_vectored(cx, bufs);
        this.after_write(cx, written)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let flushed = Pin::new(&mut this.io).poll_flush(cx);
        this.after_write(cx, flushed)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let shut = Pin::new(&mut this.io).poll_shutdown(cx);
        this.after_write(cx, shut)
    }
}

/// The error a timed-out body ends with.
fn timed_out(what: &'static str) -> Box<dyn std::error::Error + Send + Sync> {
    Box::new(io::Error::new(io::ErrorKind::TimedOut, what))
}

/// A caller's request body, cut off at its `readTimeout` deadline.
#[derive(Debug)]
pub(crate) struct CallerBody {
    /// `None`: a request the gateway's own HTTP/1.1 path read, which has
    /// no body.
    body: Option<Incoming>,
    deadline: Option<Instant>,
    /// Armed the first time the body has to wait.
    timer: Option<Pin<Box<Sleep>>>,
}

impl CallerBody {
    /// `body`, to be read by `deadline` (`None`: no limit). A body that
    /// is already complete gets no deadline.
    pub(crate) fn new(body: Incoming, deadline: Option<Instant>) -> Self {
        let deadline = deadline.filter(|_| !body.is_end_stream());
        Self {
            body: Some(body),
            deadline,
            timer: None,
        }
    }

    /// The body of a request that has none.
    pub(crate) fn empty() -> Self {
        Self {
            body: None,
            deadline: None,
            timer: None,
        }
    }
}

impl Body for CallerBody {
    type Data = Bytes;
    type Error = Box<dyn std::error::Error + Send + Sync>;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        let this = self.get_mut();
        let Some(body) = this.body.as_mut() else {
            return Poll::Ready(None);
        };
        match Pin::new(body).poll_frame(cx) {
            Poll::Ready(frame) => Poll::Ready(frame.map(|frame| frame.map_err(Into::into))),
            Poll::Pending => {
                let Some(deadline) = this.deadline else {
                    return Poll::Pending;
                };
                let timer = this
                    .timer
                    .get_or_insert_with(|| Box::pin(tokio::time::sleep_until(deadline)));
                ready!(timer.as_mut().poll(cx));
                this.deadline = None;
                Poll::Ready(Some(Err(timed_out(
                    "request body not complete within readTimeout",
                ))))
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.body.as_ref().is_none_or(Body::is_end_stream)
    }

    fn size_hint(&self) -> SizeHint {
        self.body
            .as_ref()
            .map_or_else(|| SizeHint::with_exact(0), Body::size_hint)
    }
}

/// A response body, cut off at its `writeTimeout` deadline; its request
/// is in flight until it ends or is dropped.
pub(crate) struct Answer<B, C: AsRef<Activity>> {
    body: B,
    deadline: Option<Instant>,
    timer: Option<Pin<Box<Sleep>>>,
    _flight: Flight<C>,
}

impl<B, C: AsRef<Activity>> std::fmt::Debug for Answer<B, C> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Answer")
            .field("deadline", &self.deadline)
            .finish_non_exhaustive()
    }
}

impl<B, C: AsRef<Activity>> Answer<B, C> {
    pub(crate) fn new(body: B, deadline: Option<Instant>, flight: Flight<C>) -> Self {
        Self {
            body,
            deadline,
            timer: None,
            _flight: flight,
        }
    }
}

impl<B, C> Body for Answer<B, C>
where
    B: Body<Data = Bytes> + Unpin,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    C: AsRef<Activity>,
{
    type Data = Bytes;
    type Error = Box<dyn std::error::Error + Send + Sync>;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        let this = self.get_mut();
        let polled = Pin::new(&mut this.body).poll_frame(cx);
        let Some(deadline) = this.deadline else {
            return polled.map(|frame| frame.map(|frame| frame.map_err(Into::into)));
        };
        let timer = this
            .timer
            .get_or_insert_with(|| Box::pin(tokio::time::sleep_until(deadline)));
        if timer.as_mut().poll(cx).is_ready() {
            this.deadline = None;
            return Poll::Ready(Some(Err(timed_out(
                "response not written within writeTimeout",
            ))));
        }
        polled.map(|frame| frame.map(|frame| frame.map_err(Into::into)))
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    struct Conn(Activity);

    impl AsRef<Activity> for Conn {
        fn as_ref(&self) -> &Activity {
            &self.0
        }
    }

    fn timeouts(idle: u64) -> Timeouts {
        Timeouts::of(&Transport {
            idle_timeout: Some(Duration::from_secs(idle)),
            ..Transport::default()
        })
    }

    #[tokio::test(start_paused = true)]
    async fn a_silent_connection_is_cut_off_after_the_first_byte_timeout() {
        let (client, server) = tokio::io::duplex(1024);
        let connection = Arc::new(Conn(Activity::new()));
        let mut io = Guarded::new(server, connection, timeouts(180));
        let started = Instant::now();
        let error = io.read(&mut [0u8; 16]).await.unwrap_err();
        assert_eq!(error.kind(), io::ErrorKind::TimedOut);
        assert_eq!(started.elapsed(), FIRST_BYTE_TIMEOUT);
        drop(client);
    }

    #[tokio::test(start_paused = true)]
    async fn an_idle_connection_is_cut_off_after_the_idle_timeout_not_the_head_timeout() {
        let (mut client, server) = tokio::io::duplex(1024);
        let connection = Arc::new(Conn(Activity::new()));
        let mut io = Guarded::new(server, Arc::clone(&connection), timeouts(60));
        client.write_all(b"GET / HTTP/1.1\r\n\r\n").await.unwrap();
        let mut buffer = [0u8; 64];
        let _ = io.read(&mut buffer).await.unwrap();
        assert_eq!(io.protocol, Protocol::Http1);
        assert_eq!(io.waiting, Waiting::Head);
        // The request runs, then its response ends.
        let flight = Flight::begin(Arc::clone(&connection));
        assert!(flight.started() <= Instant::now());
        drop(flight);
        assert_eq!(io.waiting, Waiting::Head);
        let idle = Instant::now();
        let error = io.read(&mut buffer).await.unwrap_err();
        assert_eq!(error.kind(), io::ErrorKind::TimedOut);
        assert_eq!(idle.elapsed(), Duration::from_secs(60));
    }

    #[tokio::test(start_paused = true)]
    async fn http2_frames_between_streams_do_not_start_a_head() {
        let (mut client, server) = tokio::io::duplex(1024);
        let connection = Arc::new(Conn(Activity::new()));
        let mut io = Guarded::new(server, connection, timeouts(100));
        client.write_all(&H2_PREFACE[..5]).await.unwrap();
        let mut buffer = [0u8; 64];
        let _ = io.read(&mut buffer).await.unwrap();
        assert_eq!(io.protocol, Protocol::Unknown(5));
        client.write_all(&H2_PREFACE[5..]).await.unwrap();
        let _ = io.read(&mut buffer).await.unwrap();
        assert_eq!(io.protocol, Protocol::Http2);
        assert_eq!(io.waiting, Waiting::Idle);
        let started = Instant::now();
        let error = io.read(&mut buffer).await.unwrap_err();
        assert_eq!(error.kind(), io::ErrorKind::TimedOut);
        assert_eq!(started.elapsed(), Duration::from_secs(100));
    }

    #[tokio::test(start_paused = true)]
    async fn a_request_in_flight_has_no_read_deadline() {
        let (mut client, server) = tokio::io::duplex(1024);
        let connection = Arc::new(Conn(Activity::new()));
        let mut io = Guarded::new(server, Arc::clone(&connection), timeouts(1));
        client.write_all(b"GET / HTTP/1.1\r\n\r\n").await.unwrap();
        let mut buffer = [0u8; 64];
        let _ = io.read(&mut buffer).await.unwrap();
        let _flight = Flight::begin(connection);
        let read = tokio::time::timeout(Duration::from_secs(3600), io.read(&mut buffer)).await;
        assert!(read.is_err(), "still waiting after an hour");
    }
}
