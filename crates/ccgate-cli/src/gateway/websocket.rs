//! WebSocket upgrades through the gateway (SPEC §11): the handshake the
//! edge let through ([`crate::edge::websocket`]), its middlewares passed
//! like any request's, goes to the server on a fresh HTTP/1.1 connection
//! of its own; after the server's `101 Switching Protocols` both sides
//! are upgraded and the bytes copied both ways until either side closes.
//!
//! - **Never pooled.** The upgrade's connection is opened for it
//!   ([`super::connector::Target::connect`], `dialTimeout` and TLS as any)
//!   and is the tunnel's, or closes after the server's answer when that is
//!   not a `101`; that answer (a 401, a 404…) goes to the caller as a
//!   normal response.
//! - **Checked.** A `101` whose `Upgrade` is anything but `websocket` is a
//!   502 and nothing is relayed; so is a `101` to a request that did not
//!   ask to upgrade ([`refuse_unasked`], on the pooled path). The response
//!   head is awaited within `responseHeaderTimeout` (504).
//! - **Bounded.** A tunnel in which no byte moves either way for the
//!   entry point's `respondingTimeouts.idleTimeout` (180 s by default; `0`
//!   turns it off) is closed, both sides at once. The caller's connection
//!   stays counted in the entry point's `maxConnections` while its tunnel
//!   runs, and its own read deadlines are off (the tunnel keeps its
//!   request in flight: [`Tunnel`]). On shutdown, tunnels are not waited
//!   for: they close when the workers exit, after the grace period's
//!   drain of in-flight requests.
//! - **Logged.** The access log has the handshake, with status `101`
//!   and the time to it; the tunnel's end is a DEBUG line with the bytes
//!   each way, its duration and why it ended (`closed`, `idle`, `failed`).
//!
//! # Example
//!
//! ```text
//! // in Service::forward, with the request's head ready for the server:
//! match Upgrade::take(&mut request) {
//!     Some(upgrade) => upgrade.forward(&server.target, request).await,
//!     None => pool.send(..).await.and_then(refuse_unasked),
//! }
//! ```

use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use http::header::{self, HeaderValue};
use http::{Request, Response, StatusCode};
use hyper::upgrade::OnUpgrade;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::Instant;

use super::connector::Target;
use super::transport::CallerBody;
use super::upstream::{RequestBody, UpstreamBody, UpstreamError};
use crate::edge::websocket::{is_marked, names_websocket_only};

/// What the listener gives a request whose connection hyper could
/// upgrade (HTTP/1.1 with an `Upgrade` header), in its extensions: the
/// tunnel's idle timeout, and a hold that keeps the request in flight on
/// its connection for as long as it is kept — so the connection's own
/// deadlines (made for requests, not tunnels) stay off and its
/// `maxConnections` permit stays taken while the tunnel runs.
#[derive(Clone)]
pub(crate) struct Tunnel {
    idle: Option<Duration>,
    _in_flight: Arc<dyn Send + Sync>,
}

impl std::fmt::Debug for Tunnel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tunnel")
            .field("idle", &self.idle)
            .finish_non_exhaustive()
    }
}

impl Tunnel {
    /// A tunnel closed after `idle` without traffic (`None`: never),
    /// holding `in_flight` while it runs.
    pub(crate) fn new(idle: Option<Duration>, in_flight: Arc<dyn Send + Sync>) -> Self {
        Self {
            idle,
            _in_flight: in_flight,
        }
    }
}

/// An allowed WebSocket upgrade on its way to a server.
#[derive(Debug)]
pub(crate) struct Upgrade {
    caller: OnUpgrade,
    tunnel: Tunnel,
}

impl Upgrade {
    /// The upgrade `request` asks for, if the edge let it through (and
    /// marked it). Whatever it is, the request's hold on its connection
    /// goes, so a request that is not upgraded ends as usual.
    pub(crate) fn take<B>(request: &mut Request<B>) -> Option<Self> {
        // A plain request has no extensions: two branches, no lookup.
        let tunnel = request.extensions_mut().remove::<Tunnel>();
        if !is_marked(request.extensions()) {
            return None;
        }
        let caller = request.extensions_mut().remove::<OnUpgrade>();
        match (caller, tunnel) {
            (Some(caller), Some(tunnel)) => Some(Self { caller, tunnel }),
            _ => {
                // Not a connection that can be upgraded: a plain request.
                request.headers_mut().remove(header::UPGRADE);
                request.headers_mut().remove(header::CONNECTION);
                None
            }
        }
    }

    /// Sends the handshake `request` (its head ready for the server) to
    /// `server` on a new connection. On a valid `101`, starts the tunnel
    /// (it runs once the caller's side has its `101` too) and returns the
    /// `101`; any other answer is returned as it is.
    ///
    /// # Errors
    ///
    /// As [`super::upstream::UpstreamPool::try_send`], and
    /// [`UpstreamError::Protocol`] for a `101` to another protocol.
    pub(crate) async fn forward(
        self,
        server: &Target,
        request: Request<CallerBody>,
    ) -> Result<Response<UpstreamBody>, UpstreamError> {
        let mut sender = server.connect_http1::<RequestBody>().await?;
        sender.ready().await?;
        let sent = sender.send_request(request.map(RequestBody::Caller));
        let mut response = match server.connector.response_header_timeout {
            Some(limit) => tokio::time::timeout(limit, sent)
                .await
                .map_err(|_| UpstreamError::ResponseTimeout(limit))??,
            None => sent.await?,
        };
        // Dropped, the sender lets the connection close after this answer
        // (or hand itself over to the tunnel): it is never pooled.
        drop(sender);
        if response.status() == StatusCode::SWITCHING_PROTOCOLS {
            if !names_websocket_only(response.headers()) {
                return Err(UpstreamError::Protocol(
                    "the server switched to a protocol other than websocket",
                ));
            }
            let server_side = hyper::upgrade::on(&mut response);
            tokio::spawn(relay(self.caller, server_side, self.tunnel));
        }
        Ok(response.map(UpstreamBody::unpooled))
    }
}

/// A `101` from a pooled connection, to a request that did not ask to
/// upgrade, is an error (502, nothing relayed); other answers pass.
///
/// # Errors
///
/// [`UpstreamError::Protocol`] for that `101`.
pub(crate) fn refuse_unasked<B>(response: Response<B>) -> Result<Response<B>, UpstreamError> {
    if response.status() == StatusCode::SWITCHING_PROTOCOLS {
        return Err(UpstreamError::Protocol(
            "101 Switching Protocols to a request that did not ask to upgrade",
        ));
    }
    Ok(response)
}

/// Puts back the two headers of a `101` that hop-by-hop removal took off
/// the server's answer (ccgate's values: the server's were checked).
pub(crate) fn restore_switch<B>(response: &mut Response<B>) {
    if response.status() == StatusCode::SWITCHING_PROTOCOLS {
        let headers = response.headers_mut();
        headers.insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
        headers.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
    }
}

/// Copies bytes both ways between the caller and the server once both
/// sides are upgraded, until both have closed, one fails, or nothing
/// moved for the idle timeout; then closes both.
async fn relay(caller: OnUpgrade, server: OnUpgrade, tunnel: Tunnel) {
    let (caller, server) = match tokio::try_join!(caller, server) {
        Ok(sides) => sides,
        Err(error) => {
            // The caller went before its 101 was written, or the server's
            // connection failed at the switch.
            tracing::debug!(%error, "websocket upgrade not completed");
            return;
        }
    };
    let progress = Progress::new();
    let mut caller = Counted::new(TokioIo::new(caller), &progress);
    let mut server = Counted::new(TokioIo::new(server), &progress);
    // Why it ended: both sides closed (each end of stream passed on to
    // the other), no byte moved for the idle timeout, or a side failed (a
    // reset, a write blocked past `writeTimeout`).
    let (ended, error) = tokio::select! {
        copied = tokio::io::copy_bidirectional(&mut caller, &mut server) => match copied {
            Ok(_) => ("closed", None),
            Err(error) => ("failed", Some(error)),
        },
        () = progress.stalled(tunnel.idle) => ("idle", None),
    };
    tracing::debug!(
        from_caller = caller.read,
        from_server = server.read,
        duration = ?progress.started.elapsed(),
        ended,
        error = error.as_ref().map(tracing::field::display),
        "websocket tunnel ended"
    );
    // Dropping both sides closes both connections; `tunnel` (the caller's
    // request in flight, its connection permit) goes last.
    drop((caller, server));
    drop(tunnel);
}

/// When bytes last moved in a tunnel, either way.
#[derive(Debug)]
struct Progress {
    started: Instant,
    /// Nanoseconds from `started` to the last read that brought bytes.
    last: AtomicU64,
}

impl Progress {
    fn new() -> Self {
        Self {
            started: Instant::now(),
            last: AtomicU64::new(0),
        }
    }

    fn moved(&self) {
        let nanos = u64::try_from(self.started.elapsed().as_nanos()).unwrap_or(u64::MAX);
        self.last.store(nanos, Ordering::Relaxed);
    }

    /// Returns once no byte has moved for `idle` (never for `None`).
    async fn stalled(&self, idle: Option<Duration>) {
        let Some(idle) = idle else {
            return std::future::pending().await;
        };
        loop {
            let last = self.started + Duration::from_nanos(self.last.load(Ordering::Relaxed));
            let deadline = last + idle;
            if Instant::now() >= deadline {
                return;
            }
            tokio::time::sleep_until(deadline).await;
        }
    }
}

/// One side of a tunnel: counts the bytes read from it and tells
/// [`Progress`] when bytes come (every byte written was read first).
struct Counted<'a, I> {
    io: I,
    progress: &'a Progress,
    read: u64,
}

impl<'a, I> Counted<'a, I> {
    fn new(io: I, progress: &'a Progress) -> Self {
        Self {
            io,
            progress,
            read: 0,
        }
    }
}

impl<I: AsyncRead + Unpin> AsyncRead for Counted<'_, I> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        let polled = Pin::new(&mut this.io).poll_read(cx, buf);
        let read = buf.filled().len() - before;
        if read > 0 {
            this.read += read as u64;
            this.progress.moved();
        }
        polled
    }
}

impl<I: AsyncWrite + Unpin> AsyncWrite for Counted<'_, I> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.get_mut().io).poll_write(cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::edge::websocket::Handshake;

    #[tokio::test(start_paused = true)]
    async fn a_tunnel_stalls_only_after_idle_without_bytes() {
        let progress = Progress::new();
        let idle = Duration::from_secs(10);
        tokio::time::sleep(Duration::from_secs(6)).await;
        progress.moved();
        let started = Instant::now();
        progress.stalled(Some(idle)).await;
        // Ten seconds after the bytes at 6 s, not after the start.
        assert_eq!(started.elapsed(), idle);
        assert_eq!(progress.started.elapsed(), Duration::from_secs(16));
    }

    #[tokio::test(start_paused = true)]
    async fn without_an_idle_timeout_a_tunnel_never_stalls() {
        let progress = Progress::new();
        let stalled = tokio::time::timeout(Duration::from_secs(3600), progress.stalled(None)).await;
        assert!(stalled.is_err());
    }

    #[test]
    fn a_marked_request_on_a_connection_that_cannot_upgrade_goes_plain() {
        // No `OnUpgrade` from hyper, no `Tunnel` from the listener: the
        // upgrade headers go, so no server sees an upgrade ccgate cannot
        // relay.
        let mut request = Request::get("/chat")
            .header("upgrade", "websocket")
            .header("connection", "upgrade")
            .header("sec-websocket-key", "dGhlIHNhbXBsZSBub25jZQ==")
            .extension(Handshake)
            .body(())
            .unwrap();
        assert!(Upgrade::take(&mut request).is_none());
        assert!(!request.headers().contains_key("upgrade"));
        assert!(!request.headers().contains_key("connection"));
        assert!(request.headers().contains_key("sec-websocket-key"));
    }

    #[test]
    fn a_plain_request_loses_its_tunnel_hold() {
        let held = Arc::new(());
        let mut request = Request::get("/").body(()).unwrap();
        request
            .extensions_mut()
            .insert(Tunnel::new(None, Arc::clone(&held) as Arc<dyn Send + Sync>));
        assert!(Upgrade::take(&mut request).is_none());
        assert_eq!(Arc::strong_count(&held), 1, "the hold was dropped");
    }

    #[test]
    fn a_101_to_a_request_that_did_not_ask_is_refused() {
        let mut switched = Response::new(());
        *switched.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
        assert!(matches!(
            refuse_unasked(switched),
            Err(UpstreamError::Protocol(_))
        ));
        assert!(refuse_unasked(Response::new(())).is_ok());
    }
}
