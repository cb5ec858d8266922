//! A worker's connections to upstream servers: HTTP/1.1 keep-alive
//! connections kept per server (and scheme and servers transport: see
//! [`Key`]) and reused, most recently used first. HTTP/2 servers (`h2c`,
//! or `https` that picked `h2`) are sent to by [`super::h2_pool`] on one
//! multiplexed connection per server, kept beside the idle lists. Opening one is the
//! [`Target`]'s job ([`super::connector`]): TCP, or TLS over TCP.
//!
//! Two kinds of HTTP/1.1 connection are kept, each in a list of its own:
//! a request without a body (most machine-to-machine calls) goes on a
//! [`Connection`] of [`super::h1_client`], which the request itself
//! drives — no task per connection, no channel between the request and
//! its connection; a request with a body goes through hyper's client,
//! which streams the body while it reads an early answer.
//!
//! The transport's limits apply: `idleConnTimeout` (an idle connection
//! older is closed), `maxIdleConnsPerHost` (more are closed), and
//! `responseHeaderTimeout` (no response head in time: the connection is
//! dropped and the caller gets 504).
//!
//! Each worker has its own pool, so taking and returning a connection
//! touches no other thread. A connection goes back to the pool when the
//! response body it carried has been read to the end; one whose body was
//! abandoned is closed.
//!
//! A request that meets a pooled connection the server had already closed
//! is sent again on another connection: a request whose head could not be
//! written, or that hyper hands back unwritten, is safe to send again for
//! every method. A request without a body that was written when the
//! server closed the idle connection — no byte of an answer came back —
//! is sent once more if it is idempotent (RFC 9110 §9.2.2), as Go's HTTP
//! client and nginx do; any other gets the error.

use std::collections::{HashMap, VecDeque};
use std::hash::{BuildHasherDefault, Hasher};
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{Method, Request, Response};
use hyper::body::{Body, Frame, Incoming, SizeHint};
use hyper::client::conn::http1::SendRequest;

use super::connector::{ConnectError, Direct, Limits, Opened, Scheme};
pub(crate) use super::connector::{Key, Target};
use super::h1_client::{self, Connection, H1Error};
use super::h2_pool::H2Pool;
use super::header_lines::HeaderLines;
use super::transport::CallerBody;

/// How often every server's idle list is cleared of expired and closed
/// connections (servers no longer asked are never visited otherwise).
const SWEEP_INTERVAL: Duration = Duration::from_secs(90);

/// Why a request could not be forwarded.
#[derive(Debug, thiserror::Error)]
pub(crate) enum UpstreamError {
    #[error(transparent)]
    Connect(#[from] ConnectError),
    #[error("no response head within {0:?} (forwardingTimeouts.responseHeaderTimeout)")]
    ResponseTimeout(Duration),
    #[error(transparent)]
    Http(#[from] hyper::Error),
    #[error(transparent)]
    H1(#[from] H1Error),
    /// The server's answer broke the upgrade rules (`super::websocket`).
    #[error("{0}")]
    Protocol(&'static str),
}

/// A request that failed, and the request itself when none of it was
/// written (so it can go to another server).
#[derive(Debug)]
pub(crate) struct SendError<B> {
    pub(crate) error: UpstreamError,
    pub(crate) unsent: Option<Request<B>>,
}

impl<B> SendError<B> {
    /// Nothing of `request` was written: it can go to another server.
    fn unsent(error: impl Into<UpstreamError>, request: Request<B>) -> Self {
        Self {
            error: error.into(),
            unsent: Some(request),
        }
    }

    fn written(error: impl Into<UpstreamError>) -> Self {
        Self {
            error: error.into(),
            unsent: None,
        }
    }
}

impl UpstreamError {
    /// Whether the server took too long to answer (504), rather than
    /// could not be reached or failed (502).
    pub(crate) fn is_timeout(&self) -> bool {
        matches!(self, Self::ResponseTimeout(_))
    }
}

/// One worker's idle connections, by server, for requests with bodies of
/// type `B` (the callers' streamed bodies in the gateway).
#[derive(Debug)]
pub(crate) struct UpstreamPool<B = RequestBody> {
    idle: Mutex<Idles<B>>,
    /// HTTP/2 servers' multiplexed connections.
    h2: H2Pool<B>,
    sweep_interval: Duration,
}

#[derive(Debug)]
struct Idles<B> {
    by_server: HashMap<Key, Parked<B>, BuildHasherDefault<Fnv>>,
    /// When every server's list was last cleared of expired and closed
    /// connections (servers no longer configured are never asked again).
    swept: Instant,
}

/// One server's idle connections, oldest first: connections are returned
/// and taken at the back.
#[derive(Debug)]
struct Parked<B> {
    /// The transport's `idleConnTimeout` (one per key).
    idle_timeout: Duration,
    connections: VecDeque<Idle<B>>,
    /// Connections of [`h1_client`], for requests without a body.
    direct: VecDeque<(Connection, Instant)>,
}

impl<B> Default for UpstreamPool<B> {
    fn default() -> Self {
        Self::with_sweep_interval(SWEEP_INTERVAL)
    }
}

impl<B> UpstreamPool<B> {
    /// A pool that sweeps every `sweep_interval`.
    fn with_sweep_interval(sweep_interval: Duration) -> Self {
        Self {
            idle: Mutex::new(Idles {
                by_server: HashMap::default(),
                swept: Instant::now(),
            }),
            h2: H2Pool::default(),
            sweep_interval,
        }
    }
}

#[derive(Debug)]
struct Idle<B> {
    sender: SendRequest<B>,
    since: Instant,
}

impl<B> UpstreamPool<B>
where
    B: Body + Send + Unpin + 'static,
    B::Data: Send,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    /// [`UpstreamPool::try_send`], the error alone (tests).
    ///
    /// # Errors
    ///
    /// The server cannot be reached (or not within `dialTimeout`), TLS
    /// failed, no response head came within `responseHeaderTimeout`, or
    /// the exchange failed.
    #[cfg(test)]
    pub(crate) async fn send(
        self: &Arc<Self>,
        server: &Target,
        request: Request<B>,
    ) -> Result<Response<UpstreamBody<B>>, UpstreamError> {
        self.try_send(server, request, Instant::now())
            .await
            .map_err(|unsent| unsent.error)
    }

    /// Sends `request` (origin-form target, `Host` set) to `server` on a
    /// pooled connection, or a new one. A request of which no byte was
    /// written (no connection could be opened) comes back with the error,
    /// for another server. `now` is when the attempt began (the caller
    /// read the clock already): idle connections are judged by it, and a
    /// connection its answer frees counts as idle from it — a little
    /// older than it is, so it expires a little early, never late.
    ///
    /// # Errors
    ///
    /// The server cannot be reached (or not within `dialTimeout`), TLS
    /// failed, no response head came within `responseHeaderTimeout`, or
    /// the exchange failed.
    pub(crate) async fn try_send(
        self: &Arc<Self>,
        server: &Target,
        request: Request<B>,
        now: Instant,
    ) -> Result<Response<UpstreamBody<B>>, SendError<B>> {
        let limits = server.connector.limits;
        if server.may_speak_h2() {
            let mut kept = self.h2.get(&server.key, limits);
            if kept.is_none() && server.key.scheme == Scheme::H2c {
                // Opened here, so that a server that cannot be reached
                // gives the request back for the next one.
                match server.connect().await {
                    Ok(Opened::Http2(sender)) => {
                        self.h2.keep(&server.key, &sender);
                        kept = Some(sender);
                    }
                    Ok(Opened::Http1(_)) => {
                        return Err(SendError::written(UpstreamError::Protocol(
                            "an h2c server answered in HTTP/1.1",
                        )));
                    }
                    Err(error) => {
                        return Err(SendError::unsent(error, request));
                    }
                }
            }
            if kept.is_some() {
                return self
                    .send_h2(server, kept, request)
                    .await
                    .map_err(SendError::written);
            }
        }
        if !request.body().is_end_stream() {
            // Boxed: hyper's client path is large, and unboxed it would
            // grow the future of every request without a body too.
            return Box::pin(self.send_with_body(server, request)).await;
        }
        // No body: on a pooled [`Connection`] or a new one. A head that
        // could not be written to a pooled connection (the server had
        // closed it) goes on another; one written that met the
        // connection's close before any answer goes once more when its
        // method is idempotent (RFC 9110 §9.2.2), as Go's client and nginx
        // do: nothing was answered, so nothing was done twice on purpose.
        // Inline, not a function of its own: each async function's
        // arguments stay in its future, and the request would be carried
        // (and moved) twice.
        let mut retried = false;
        loop {
            let (connection, reused) = match self.take_direct(&server.key, limits.idle_timeout, now)
            {
                Some(connection) => (connection, true),
                // Boxed: opening a connection is rare under keep-alive,
                // and its state would grow every request's future.
                None => match Box::pin(server.connect_direct()).await {
                    Ok(Direct::Http1(connection)) => (connection, false),
                    // An `https` server that picked `h2` in ALPN.
                    Ok(Direct::Http2(sender)) => {
                        self.h2.keep(&server.key, &sender);
                        return self
                            .send_h2(server, Some(sender), request)
                            .await
                            .map_err(SendError::written);
                    }
                    Err(error) => return Err(SendError::unsent(error, request)),
                },
            };
            let sent = connection.send(&request);
            let answered = match server.connector.response_header_timeout {
                // Dropping the exchange drops the connection with it.
                Some(limit) => tokio::time::timeout(limit, sent)
                    .await
                    .map_err(|_| SendError::written(UpstreamError::ResponseTimeout(limit)))?,
                None => sent.await,
            };
            match answered {
                Ok(response) => {
                    let give_back = GiveBackDirect {
                        pool: Arc::clone(self),
                        key: server.key.clone(),
                        limits,
                        since: now,
                    };
                    return Ok(response.map(|body| {
                        UpstreamBody(Inner::Direct {
                            body,
                            give_back: Some(give_back),
                        })
                    }));
                }
                Err(H1Error::Write(_)) if reused => {}
                Err(H1Error::Closed) if reused && !retried && is_idempotent(request.method()) => {
                    retried = true;
                }
                // A new connection that took no byte.
                Err(error @ H1Error::Write(_)) => return Err(SendError::unsent(error, request)),
                Err(error) => return Err(SendError::written(error)),
            }
        }
    }

    /// `request`, which has a body, through hyper's client on a pooled
    /// connection or a new one.
    async fn send_with_body(
        self: &Arc<Self>,
        server: &Target,
        mut request: Request<B>,
    ) -> Result<Response<UpstreamBody<B>>, SendError<B>> {
        let limits = server.connector.limits;
        loop {
            let (mut sender, reused) = match self.take(&server.key, limits.idle_timeout) {
                Some(sender) => (sender, true),
                None => match server.connect().await {
                    Ok(Opened::Http1(sender)) => (sender, false),
                    // An `https` server that picked `h2` in ALPN.
                    Ok(Opened::Http2(sender)) => {
                        self.h2.keep(&server.key, &sender);
                        return self
                            .send_h2(server, Some(sender), request)
                            .await
                            .map_err(SendError::written);
                    }
                    Err(error) => {
                        return Err(SendError::unsent(error, request));
                    }
                },
            };
            if let Err(error) = sender.ready().await {
                if reused {
                    continue;
                }
                // A new connection that is not ready: nothing was written.
                return Err(SendError::unsent(error, request));
            }
            let sent = sender.try_send_request(request);
            let answered = match server.connector.response_header_timeout {
                // Dropping the exchange drops the connection with it.
                Some(limit) => tokio::time::timeout(limit, sent)
                    .await
                    .map_err(|_| SendError::written(UpstreamError::ResponseTimeout(limit)))?,
                None => sent.await,
            };
            match answered {
                Ok(response) => {
                    let give_back = GiveBack {
                        pool: Arc::clone(self),
                        key: server.key.clone(),
                        limits,
                        sender,
                    };
                    return Ok(response.map(|body| {
                        UpstreamBody(Inner::Pooled {
                            body,
                            give_back: Some(give_back),
                        })
                    }));
                }
                Err(mut error) => match error.take_message() {
                    // Not written: the connection had closed under us.
                    Some(unsent) if reused => request = unsent,
                    // A body may have gone in part: never sent twice.
                    _ => return Err(SendError::written(error.into_error())),
                },
            }
        }
    }
}

impl<B> UpstreamPool<B>
where
    B: Body + Send + Unpin + 'static,
    B::Data: Send,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    /// `request` to an HTTP/2 server, on `sender` or a new connection.
    /// Boxed: the HTTP/1.1 path's future does not carry its state.
    async fn send_h2(
        &self,
        server: &Target,
        sender: Option<hyper::client::conn::http2::SendRequest<B>>,
        request: Request<B>,
    ) -> Result<Response<UpstreamBody<B>>, UpstreamError> {
        let response = Box::pin(self.h2.send(server, sender, request)).await?;
        // Nothing to give back: the connection stays shared in `h2`.
        Ok(response.map(|body| {
            UpstreamBody(Inner::Pooled {
                body,
                give_back: None,
            })
        }))
    }
}

impl<B> UpstreamPool<B> {
    /// An idle connection of hyper's client to `server` younger than
    /// `idle_timeout`.
    fn take(&self, server: &Key, idle_timeout: Duration) -> Option<SendRequest<B>> {
        let mut idle = self
            .idle
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let list = &mut idle.by_server.get_mut(server)?.connections;
        while let Some(entry) = list.pop_back() {
            if !entry.sender.is_closed() && entry.since.elapsed() < idle_timeout {
                return Some(entry.sender);
            }
        }
        None
    }

    /// An idle [`Connection`] to `server` younger than `idle_timeout` at
    /// `now`.
    fn take_direct(
        &self,
        server: &Key,
        idle_timeout: Duration,
        now: Instant,
    ) -> Option<Connection> {
        let mut idle = self
            .idle
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let list = &mut idle.by_server.get_mut(server)?.direct;
        while let Some((mut connection, since)) = list.pop_back() {
            if now.saturating_duration_since(since) < idle_timeout && !connection.is_closed() {
                return Some(connection);
            }
        }
        None
    }

    /// Keeps `connection`, idle since `now`.
    fn put_direct(&self, server: Key, limits: Limits, connection: Connection, now: Instant) {
        let mut idle = self
            .idle
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let parked = self.parked(&mut idle, server, limits, now);
        let timeout = parked.idle_timeout;
        let list = &mut parked.direct;
        while list
            .front()
            .is_some_and(|(_, since)| now.duration_since(*since) >= timeout)
        {
            list.pop_front();
        }
        if list.len() < limits.max_idle {
            list.push_back((connection, now));
        }
    }

    fn put(&self, server: Key, limits: Limits, sender: SendRequest<B>) {
        if sender.is_closed() {
            return;
        }
        let mut idle = self
            .idle
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let now = Instant::now();
        let parked = self.parked(&mut idle, server, limits, now);
        let timeout = parked.idle_timeout;
        let list = &mut parked.connections;
        while list
            .front()
            .is_some_and(|oldest| now.duration_since(oldest.since) >= timeout)
        {
            list.pop_front();
        }
        if list.len() < limits.max_idle {
            list.push_back(Idle { sender, since: now });
        }
    }

    /// `server`'s idle lists, made when missing; every server's lists are
    /// cleared of expired connections first when it is time.
    fn parked<'a>(
        &self,
        idle: &'a mut Idles<B>,
        server: Key,
        limits: Limits,
        now: Instant,
    ) -> &'a mut Parked<B> {
        if now.duration_since(idle.swept) >= self.sweep_interval {
            idle.by_server.retain(|_, list| {
                let timeout = list.idle_timeout;
                list.connections.retain(|entry| {
                    !entry.sender.is_closed() && now.duration_since(entry.since) < timeout
                });
                list.direct
                    .retain(|(_, since)| now.duration_since(*since) < timeout);
                !(list.connections.is_empty() && list.direct.is_empty())
            });
            idle.swept = now;
        }
        idle.by_server.entry(server).or_insert_with(|| Parked {
            idle_timeout: limits.idle_timeout,
            connections: VecDeque::new(),
            direct: VecDeque::new(),
        })
    }
}

fn is_idempotent(method: &Method) -> bool {
    matches!(
        *method,
        Method::GET | Method::HEAD | Method::OPTIONS | Method::TRACE | Method::PUT | Method::DELETE
    )
}

/// A request's body on its way upstream: the caller's, streamed, or none.
#[derive(Debug, Default)]
pub(crate) enum RequestBody {
    Caller(CallerBody),
    #[default]
    Empty,
}

impl Body for RequestBody {
    type Data = Bytes;
    type Error = Box<dyn std::error::Error + Send + Sync>;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        match self.get_mut() {
            Self::Caller(body) => Pin::new(body).poll_frame(cx),
            Self::Empty => Poll::Ready(None),
        }
    }

    fn is_end_stream(&self) -> bool {
        match self {
            Self::Caller(body) => body.is_end_stream(),
            Self::Empty => true,
        }
    }

    fn size_hint(&self) -> SizeHint {
        match self {
            Self::Caller(body) => body.size_hint(),
            Self::Empty => SizeHint::with_exact(0),
        }
    }
}

/// Returns a connection to its pool.
#[derive(Debug)]
struct GiveBack<B> {
    pool: Arc<UpstreamPool<B>>,
    key: Key,
    limits: Limits,
    sender: SendRequest<B>,
}

/// Returns a [`Connection`] to its pool (the connection itself comes from
/// the body, once read to its end).
#[derive(Debug)]
struct GiveBackDirect<B> {
    pool: Arc<UpstreamPool<B>>,
    key: Key,
    limits: Limits,
    /// When its request began: idle from then on.
    since: Instant,
}

/// An upstream response's body; once read to the end, its connection goes
/// back to the pool.
#[derive(Debug)]
pub(crate) struct UpstreamBody<B = RequestBody>(Inner<B>);

#[derive(Debug)]
enum Inner<B> {
    /// From hyper's client (HTTP/2, requests with a body, WebSocket
    /// handshakes).
    Pooled {
        body: Incoming,
        give_back: Option<GiveBack<B>>,
    },
    /// From a [`Connection`] of [`h1_client`].
    Direct {
        body: h1_client::Body,
        give_back: Option<GiveBackDirect<B>>,
    },
}

impl<B> UpstreamBody<B> {
    /// The body of an answer on a connection that is not the pool's (a
    /// WebSocket handshake's).
    pub(crate) fn unpooled(body: Incoming) -> Self {
        Self(Inner::Pooled {
            body,
            give_back: None,
        })
    }

    /// The header lines of an answer from a [`Connection`] of
    /// [`h1_client`] (whose `HeaderMap` is empty), for the writer.
    pub(crate) fn take_header_lines(&mut self) -> Option<HeaderLines> {
        match &mut self.0 {
            Inner::Direct { body, .. } => body.take_header_lines(),
            Inner::Pooled { .. } => None,
        }
    }

    fn finished(&mut self) {
        match &mut self.0 {
            Inner::Pooled { give_back, .. } => {
                if let Some(GiveBack {
                    pool,
                    key,
                    limits,
                    sender,
                }) = give_back.take()
                {
                    pool.put(key, limits, sender);
                }
            }
            Inner::Direct { body, give_back } => {
                if let (
                    Some(connection),
                    Some(GiveBackDirect {
                        pool,
                        key,
                        limits,
                        since,
                    }),
                ) = (body.take_reusable(), give_back.take())
                {
                    pool.put_direct(key, limits, connection, since);
                }
            }
        }
    }
}

impl<B> Body for UpstreamBody<B> {
    type Data = Bytes;
    type Error = Box<dyn std::error::Error + Send + Sync>;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        match &mut self.0 {
            Inner::Pooled { body, give_back } => {
                let polled = Pin::new(&mut *body).poll_frame(cx);
                match &polled {
                    Poll::Ready(Some(Ok(_))) if !body.is_end_stream() => {}
                    Poll::Ready(None | Some(Ok(_))) => self.finished(),
                    // An error: the connection is not reused.
                    Poll::Ready(Some(Err(_))) => *give_back = None,
                    Poll::Pending => {}
                }
                polled.map_err(Into::into)
            }
            Inner::Direct { body, .. } => {
                let polled = body.poll_data(cx);
                if body.is_done() {
                    self.finished();
                }
                polled.map(|data| data.map(|data| data.map(Frame::data).map_err(Into::into)))
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        match &self.0 {
            Inner::Pooled { body, .. } => body.is_end_stream(),
            Inner::Direct { body, .. } => body.is_done(),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match &self.0 {
            Inner::Pooled { body, .. } => body.size_hint(),
            Inner::Direct { body, .. } => body.size_hint(),
        }
    }
}

impl<B> Drop for UpstreamBody<B> {
    fn drop(&mut self) {
        // An empty body may never be polled; one abandoned midway leaves
        // the connection unusable, and dropping it closes it.
        if self.is_end_stream() {
            self.finished();
        }
    }
}

/// FNV-1a: the pool's keys are a handful of short authorities, hashed on
/// every request; SipHash's protection against chosen keys is not needed
/// for names that come from the configuration.
#[derive(Debug)]
struct Fnv(u64);

impl Default for Fnv {
    fn default() -> Self {
        Self(0xcbf2_9ce4_8422_2325)
    }
}

impl Hasher for Fnv {
    fn write(&mut self, bytes: &[u8]) {
        for byte in bytes {
            self.0 ^= u64::from(*byte);
            self.0 = self.0.wrapping_mul(0x0100_0000_01b3);
        }
    }

    fn finish(&self) -> u64 {
        self.0
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use http_body_util::{BodyExt, Empty};
    use hyper::service::service_fn;

    use http::uri::Authority;
    use hyper_util::rt::TokioIo;

    use super::*;

    type Pool = Arc<UpstreamPool<Empty<Bytes>>>;

    /// A real HTTP/1.1 server on 127.0.0.1 answering `ok` to every
    /// request on keep-alive connections; counts the connections it accepts.
    async fn server() -> (Target, Arc<AtomicUsize>) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let authority: Authority = listener.local_addr().unwrap().to_string().parse().unwrap();
        let target = Target::http(&authority);
        let accepted = Arc::new(AtomicUsize::new(0));
        let counter = Arc::clone(&accepted);
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                counter.fetch_add(1, Ordering::SeqCst);
                tokio::spawn(hyper::server::conn::http1::Builder::new().serve_connection(
                    TokioIo::new(stream),
                    service_fn(|_| async {
                        Ok::<_, std::convert::Infallible>(Response::new(http_body_util::Full::new(
                            Bytes::from_static(b"ok"),
                        )))
                    }),
                ));
            }
        });
        (target, accepted)
    }

    fn get(target: &Target) -> Request<Empty<Bytes>> {
        Request::builder()
            .uri("/x")
            .header(http::header::HOST, target.key.authority.as_str())
            .body(Empty::new())
            .unwrap()
    }

    async fn read(response: Response<UpstreamBody<Empty<Bytes>>>) -> Bytes {
        response.into_body().collect().await.unwrap().to_bytes()
    }

    #[tokio::test]
    async fn a_connection_is_reused_once_its_response_is_read() {
        let (authority, accepted) = server().await;
        let pool = Pool::default();
        for _ in 0..3 {
            let response = pool.send(&authority, get(&authority)).await.unwrap();
            // Read to the end: the connection is back in the pool, and
            // the next request waits until it is ready.
            assert_eq!(read(response).await, "ok");
        }
        assert_eq!(accepted.load(Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn a_connection_whose_body_was_abandoned_is_not_reused() {
        let (authority, accepted) = server().await;
        let pool = Pool::default();
        let response = pool.send(&authority, get(&authority)).await.unwrap();
        drop(response); // its body unread: the connection is closed
        let response = pool.send(&authority, get(&authority)).await.unwrap();
        assert_eq!(read(response).await, "ok");
        assert_eq!(accepted.load(Ordering::SeqCst), 2);
    }

    #[tokio::test]
    async fn concurrent_requests_each_get_a_connection_and_all_are_kept() {
        let (authority, accepted) = server().await;
        let pool = Pool::default();
        let (a, b) = tokio::join!(
            pool.send(&authority, get(&authority)),
            pool.send(&authority, get(&authority))
        );
        assert_eq!(read(a.unwrap()).await, "ok");
        assert_eq!(read(b.unwrap()).await, "ok");
        assert_eq!(accepted.load(Ordering::SeqCst), 2);
        let idle = pool.idle.lock().unwrap();
        assert_eq!(idle.by_server[&authority.key].direct.len(), 2);
    }

    #[tokio::test]
    async fn servers_keep_their_own_connections() {
        let (one, one_accepted) = server().await;
        let (two, two_accepted) = server().await;
        let pool = Pool::default();
        for authority in [&one, &two, &one, &two] {
            let response = pool.send(authority, get(authority)).await.unwrap();
            assert_eq!(read(response).await, "ok");
        }
        assert_eq!(one_accepted.load(Ordering::SeqCst), 1);
        assert_eq!(two_accepted.load(Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn idle_connections_expire_and_servers_no_longer_asked_are_swept() {
        let (one, one_accepted) = server().await;
        let (two, _) = server().await;
        let pool = Arc::new(UpstreamPool::with_sweep_interval(Duration::from_millis(
            100,
        )));
        let short = crate::config::ServersTransport {
            idle_conn_timeout: Some(Duration::from_millis(100)),
            ..crate::config::ServersTransport::default()
        };
        let one = Target::with(&one.key.authority, &short);
        let two = Target::with(&two.key.authority, &short);
        let response = pool.send(&one, get(&one)).await.unwrap();
        assert_eq!(read(response).await, "ok");
        // The behaviour under test: the idle timeout must pass (the pool
        // reads std's clock, which tokio cannot advance).
        tokio::time::sleep(Duration::from_millis(150)).await;
        // Expired: a new connection, and the sweep on its return empties
        // nothing else yet (only `one` was ever used).
        let response = pool.send(&one, get(&one)).await.unwrap();
        assert_eq!(read(response).await, "ok");
        assert_eq!(one_accepted.load(Ordering::SeqCst), 2);
        // Again the behaviour under test: the sweep interval must pass.
        tokio::time::sleep(Duration::from_millis(150)).await;
        // Returning a connection of `two` sweeps `one`'s expired list away.
        let response = pool.send(&two, get(&two)).await.unwrap();
        assert_eq!(read(response).await, "ok");
        let idle = pool.idle.lock().unwrap();
        assert!(!idle.by_server.contains_key(&one.key));
        assert_eq!(idle.by_server[&two.key].direct.len(), 1);
    }

    /// A FAKE upstream, on a thread of its own (a real server cannot be
    /// told to close a kept-alive connection at a given moment): answers
    /// one request on its first connection, closes that connection when
    /// told to and says so, then answers on the next connection. Returns
    /// its authority, the two signals and how many requests it answered.
    ///
    /// It closes only its sending side (FIN) and keeps the socket open, so
    /// a request the client writes after that is taken in, never reset: the
    /// client reads the end of the stream whether the FIN reached it before
    /// or after it wrote, and no wait for the FIN's arrival is needed.
    fn closing_on_demand() -> (
        Target,
        std::sync::mpsc::Sender<()>,
        std::sync::mpsc::Receiver<()>,
        Arc<AtomicUsize>,
    ) {
        use std::io::{Read, Write};
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let authority: Authority = listener.local_addr().unwrap().to_string().parse().unwrap();
        let (close, closing) = std::sync::mpsc::channel::<()>();
        let (closed, on_closed) = std::sync::mpsc::channel::<()>();
        let answered = Arc::new(AtomicUsize::new(0));
        let counter = Arc::clone(&answered);
        std::thread::spawn(move || {
            let answer = |stream: &mut std::net::TcpStream| {
                let mut head = Vec::new();
                let mut byte = [0u8; 1];
                while !head.ends_with(b"\r\n\r\n") {
                    if stream.read(&mut byte).unwrap_or(0) == 0 {
                        return false;
                    }
                    head.push(byte[0]);
                }
                // Counted before the answer leaves, so the client never
                // sees an answer that is not counted yet.
                counter.fetch_add(1, Ordering::SeqCst);
                stream
                    .write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
                    .is_ok()
            };
            let Ok((mut first, _)) = listener.accept() else {
                return;
            };
            answer(&mut first);
            let _ = closing.recv();
            let _ = first.shutdown(std::net::Shutdown::Write);
            let _ = closed.send(());
            while let Ok((mut next, _)) = listener.accept() {
                while answer(&mut next) {}
            }
            drop(first);
        });
        (Target::http(&authority), close, on_closed, answered)
    }

    /// Sends `method` on a pooled connection that the server closes while
    /// the runtime cannot see it (this test's runtime has one thread, and
    /// it blocks): the request is written, then the close is read. Returns
    /// the outcome and how many requests the server answered.
    async fn on_a_connection_closing_under_it(method: Method) -> (Result<Bytes, String>, usize) {
        let (authority, close, closed, answered) = closing_on_demand();
        let pool = Pool::default();
        let response = pool.send(&authority, get(&authority)).await.unwrap();
        assert_eq!(read(response).await, "ok");
        close.send(()).unwrap();
        closed.recv().unwrap();
        let mut request = get(&authority);
        *request.method_mut() = method;
        let outcome = match pool.send(&authority, request).await {
            Ok(response) => Ok(read(response).await),
            Err(error) => Err(error.to_string()),
        };
        (outcome, answered.load(Ordering::SeqCst))
    }

    #[tokio::test(flavor = "current_thread")]
    async fn an_idempotent_request_written_as_the_server_closed_is_sent_again() {
        let (outcome, answered) = on_a_connection_closing_under_it(Method::GET).await;
        assert_eq!(outcome, Ok(Bytes::from_static(b"ok")));
        assert_eq!(answered, 2);
    }

    #[tokio::test(flavor = "current_thread")]
    async fn a_post_written_as_the_server_closed_is_not_sent_again() {
        let (outcome, answered) = on_a_connection_closing_under_it(Method::POST).await;
        let error = outcome.unwrap_err();
        assert!(
            error.contains("the connection closed before a response"),
            "{error}"
        );
        assert_eq!(answered, 1);
    }

    #[tokio::test(flavor = "current_thread")]
    async fn a_pooled_connection_the_server_closed_while_idle_is_not_written_to() {
        let (authority, close, closed, answered) = closing_on_demand();
        let pool = Pool::default();
        let response = pool.send(&authority, get(&authority)).await.unwrap();
        assert_eq!(read(response).await, "ok");
        close.send(()).unwrap();
        closed.recv().unwrap();
        // The FIN is in the socket's queue; one turn of the runtime lets
        // its I/O driver see the socket readable and the connection's task
        // end: taking a connection must skip it.
        tokio::task::yield_now().await;
        // A POST is never sent twice: it succeeds only if it went out on a
        // new connection at once.
        let mut request = get(&authority);
        *request.method_mut() = Method::POST;
        let response = pool.send(&authority, request).await.unwrap();
        assert_eq!(read(response).await, "ok");
        assert_eq!(answered.load(Ordering::SeqCst), 2);
    }

    #[tokio::test]
    async fn a_response_body_abandoned_midway_closes_its_connection() {
        use std::io::{Read, Write};
        // A FAKE upstream (a real server cannot be told to stop midway):
        // announces 10 bytes, sends 5, and holds the connection open.
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let authority: Authority = listener.local_addr().unwrap().to_string().parse().unwrap();
        let accepted = Arc::new(AtomicUsize::new(0));
        let counter = Arc::clone(&accepted);
        std::thread::spawn(move || {
            let mut held = Vec::new();
            while let Ok((mut stream, _)) = listener.accept() {
                counter.fetch_add(1, Ordering::SeqCst);
                let mut head = Vec::new();
                let mut byte = [0u8; 1];
                while !head.ends_with(b"\r\n\r\n") && stream.read(&mut byte).unwrap_or(0) == 1 {
                    head.push(byte[0]);
                }
                let _ = stream.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nhello");
                held.push(stream);
            }
        });
        let server = Target::http(&authority);
        let pool = Pool::default();
        for round in 1..=2 {
            let response = pool.send(&server, get(&server)).await.unwrap();
            let mut body = response.into_body();
            let first = body.frame().await.unwrap().unwrap().into_data().unwrap();
            assert_eq!(first, "hello");
            drop(body);
            assert_eq!(accepted.load(Ordering::SeqCst), round);
            assert!(
                pool.idle
                    .lock()
                    .unwrap()
                    .by_server
                    .get(&server.key)
                    .is_none_or(|list| list.direct.is_empty()),
                "a connection with half a body unread is never pooled"
            );
        }
    }

    /// A FAKE upstream (a real server does not send broken answers on
    /// demand): answers every request of each connection with `answer`;
    /// counts the connections it accepts.
    fn answering(answer: &'static [u8]) -> (Target, Arc<AtomicUsize>) {
        use std::io::{Read, Write};
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let authority: Authority = listener.local_addr().unwrap().to_string().parse().unwrap();
        let accepted = Arc::new(AtomicUsize::new(0));
        let counter = Arc::clone(&accepted);
        std::thread::spawn(move || {
            while let Ok((mut stream, _)) = listener.accept() {
                counter.fetch_add(1, Ordering::SeqCst);
                std::thread::spawn(move || {
                    loop {
                        let mut head = Vec::new();
                        let mut byte = [0u8; 1];
                        while !head.ends_with(b"\r\n\r\n") {
                            if stream.read(&mut byte).unwrap_or(0) == 0 {
                                return;
                            }
                            head.push(byte[0]);
                        }
                        if stream.write_all(answer).is_err() {
                            return;
                        }
                    }
                });
            }
        });
        (Target::http(&authority), accepted)
    }

    /// Two requests to a server that always sends `answer`: each body is
    /// `body`, and each request found a new connection (the first answer's
    /// end was not clean enough to reuse its connection).
    async fn never_reused_after(answer: &'static [u8], body: &str) {
        let (server, accepted) = answering(answer);
        let pool = Pool::default();
        for round in 1..=2 {
            let response = pool.send(&server, get(&server)).await.unwrap();
            assert_eq!(read(response).await, body);
            assert_eq!(accepted.load(Ordering::SeqCst), round);
        }
    }

    #[tokio::test]
    async fn a_connection_whose_server_sent_more_than_its_answer_is_not_reused() {
        never_reused_after(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nokEXTRA", "ok").await;
    }

    #[tokio::test]
    async fn an_answer_with_both_framings_is_read_chunked_and_its_connection_closed() {
        never_reused_after(
            b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
            "hello",
        )
        .await;
    }

    #[tokio::test]
    async fn a_chunked_answer_with_interim_answers_before_it_is_read_and_reused() {
        let (server, accepted) = answering(
            b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 Fine\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n\r\n",
        );
        let pool = Pool::default();
        for _ in 0..3 {
            let response = pool.send(&server, get(&server)).await.unwrap();
            assert_eq!(response.status(), 200);
            let reason = response.extensions().get::<hyper::ext::ReasonPhrase>();
            assert_eq!(
                reason.map(hyper::ext::ReasonPhrase::as_bytes),
                Some(&b"Fine"[..])
            );
            assert_eq!(read(response).await, "ok");
        }
        assert_eq!(accepted.load(Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn broken_answers_are_errors() {
        for answer in [
            &b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\nok"[..],
            b"HTTP/1.1 200 OK\r\nX: a\r\n folded\r\nContent-Length: 2\r\n\r\nok",
            b"NOT HTTP\r\n\r\n",
        ] {
            let (server, _) = answering(answer);
            let error = Pool::default()
                .send(&server, get(&server))
                .await
                .unwrap_err();
            assert!(
                matches!(error, UpstreamError::H1(H1Error::Malformed(_))),
                "{}: {error}",
                String::from_utf8_lossy(answer)
            );
        }
        // A body cut short is an error of the body, and never pooled.
        let (server, _) =
            answering(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nokXY");
        let pool = Pool::default();
        let response = pool.send(&server, get(&server)).await.unwrap();
        assert!(response.into_body().collect().await.is_err());
        assert!(
            pool.idle
                .lock()
                .unwrap()
                .by_server
                .get(&server.key)
                .is_none_or(|list| list.direct.is_empty())
        );
    }

    #[tokio::test]
    async fn idle_connections_past_max_idle_conns_per_host_are_closed() {
        let (server, accepted) = server().await;
        let one = crate::config::ServersTransport {
            max_idle_conns_per_host: 1,
            ..crate::config::ServersTransport::default()
        };
        let server = Target::with(&server.key.authority, &one);
        let pool = Pool::default();
        let (a, b) = tokio::join!(
            pool.send(&server, get(&server)),
            pool.send(&server, get(&server))
        );
        assert_eq!(read(a.unwrap()).await, "ok");
        assert_eq!(read(b.unwrap()).await, "ok");
        assert_eq!(accepted.load(Ordering::SeqCst), 2);
        let idle = pool.idle.lock().unwrap();
        assert_eq!(idle.by_server[&server.key].direct.len(), 1);
    }

    #[tokio::test]
    async fn no_response_head_within_the_response_header_timeout_is_a_timeout() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let authority: Authority = listener.local_addr().unwrap().to_string().parse().unwrap();
        // Accepts, and never answers.
        tokio::spawn(async move {
            let mut held = Vec::new();
            while let Ok((stream, _)) = listener.accept().await {
                held.push(stream);
            }
        });
        let short = crate::config::ServersTransport {
            response_header_timeout: Some(Duration::from_millis(50)),
            ..crate::config::ServersTransport::default()
        };
        let server = Target::with(&authority, &short);
        let error = Pool::default()
            .send(&server, get(&server))
            .await
            .unwrap_err();
        assert!(
            matches!(error, UpstreamError::ResponseTimeout(_)),
            "{error}"
        );
        assert!(error.is_timeout());
    }

    #[test]
    fn the_future_of_a_send_stays_small() {
        // hyper moves each request's future: the TLS handshake's state
        // (kilobytes) is boxed on its own branch, so a plain `http`
        // request does not carry it.
        let pool = Arc::new(UpstreamPool::<RequestBody>::default());
        let server = Target::http(&"127.0.0.1:1".parse().unwrap());
        let send = pool.send(&server, Request::new(RequestBody::Empty));
        assert!(
            std::mem::size_of_val(&send) < 2048,
            "{}",
            std::mem::size_of_val(&send)
        );
    }

    #[test]
    fn http_and_https_connections_to_one_authority_are_kept_apart() {
        let connector = Arc::new(
            super::super::connector::Connector::new(
                &crate::config::ServersTransport::default(),
                true,
                true,
            )
            .unwrap(),
        );
        let plain = connector
            .target(&"http://up:8443".parse().unwrap())
            .unwrap();
        let tls = connector
            .target(&"https://up:8443".parse().unwrap())
            .unwrap();
        assert_eq!(plain.key.authority, tls.key.authority);
        assert_ne!(plain.key, tls.key);
    }

    #[tokio::test]
    async fn an_unreachable_server_is_an_error() {
        let port = {
            let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            listener.local_addr().unwrap().port()
        };
        let authority = Target::http(&format!("127.0.0.1:{port}").parse().unwrap());
        let error = Pool::default()
            .send(&authority, get(&authority))
            .await
            .unwrap_err();
        assert!(
            matches!(error, UpstreamError::Connect(ConnectError::Connect(_))),
            "{error}"
        );
    }
}
