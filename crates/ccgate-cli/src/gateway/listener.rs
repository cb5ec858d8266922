//! Entry points: accept connections (at most `transport.maxConnections`
//! open at once), speak HTTP/1.1 and HTTP/2 (h2c by prior knowledge, or
//! TLS with ALPN): body-less HTTP/1.1 requests on the gateway's own path
//! ([`super::h1_server`]), the rest with hyper's server. Bound header
//! sizes and, through [`super::transport`],
//! the time to read requests and write responses, and let connections
//! finish on shutdown.

use std::path::Path;
use std::pin::{Pin, pin};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Either;
use hyper::service::service_fn;
use hyper::upgrade::OnUpgrade;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::{GracefulShutdown, Watcher};
use tokio::net::TcpListener;
use tokio::sync::{OwnedSemaphorePermit, Semaphore, watch};
use tokio_rustls::TlsAcceptor;

use super::StartError;
use super::h1_server;
use super::handler::{Body, Gateway};
use super::header_lines::HeaderLines;
use super::proxy::Origin;
use super::transport::{
    Activity, Answer, CallerBody, Flight, Guarded, H2_KEEP_ALIVE_INTERVAL, H2_KEEP_ALIVE_TIMEOUT,
    HEADER_READ_TIMEOUT, Timeouts,
};
use super::upstream::UpstreamPool;
use super::websocket::Tunnel;
use crate::config::{self, TlsFiles, Transport};
use crate::edge::EdgeRules;
/// Largest request head accepted (HTTP/1.1 buffer, HTTP/2 header list).
pub(crate) const MAX_HEADER_BYTES: usize = 64 * 1024;

/// A bound entry point, ready to serve. Each worker accepts on its own
/// copy of the socket; it closes when the last copy is dropped.
pub(crate) struct EntryPoint {
    pub(crate) name: Arc<str>,
    pub(crate) listener: std::net::TcpListener,
    pub(crate) tls: Option<TlsAcceptor>,
    /// Its edge rules (SPEC §10), applied to every request.
    pub(crate) edge: Arc<EdgeRules>,
    /// `transport`: timeouts and the connection limit.
    pub(crate) transport: Transport,
    /// Permits for open connections, shared by every worker's copy.
    pub(crate) connections: Arc<Semaphore>,
}

/// The TLS acceptor of entry point `name`, from its certificate and key
/// files (paths relative to the main file `main`).
///
/// # Errors
///
/// A [`StartError`] naming the file and field that cannot be read or used.
pub(crate) fn tls_acceptor(
    name: &str,
    files: &TlsFiles,
    main: &Path,
) -> Result<TlsAcceptor, StartError> {
    let (certs, key) = config::read_tls(name, files, main)?;
    let invalid = |error: rustls::Error| StartError::Tls {
        entry_point: name.to_owned(),
        reason: error.to_string(),
    };
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let mut server = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(invalid)?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(invalid)?;
    server.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(TlsAcceptor::from(Arc::new(server)))
}

fn connection_builder() -> auto::Builder<TokioExecutor> {
    let mut builder = auto::Builder::new(TokioExecutor::new());
    // The time to read a head is kept by `transport::Guarded`, which
    // tells it from the wait between requests (hyper's own header timer
    // runs through both, so it would close idle connections after 10 s).
    builder
        .http1()
        .header_read_timeout(None)
        .max_buf_size(MAX_HEADER_BYTES);
    builder
        .http2()
        .timer(TokioTimer::new())
        .keep_alive_interval(H2_KEEP_ALIVE_INTERVAL)
        .keep_alive_timeout(H2_KEEP_ALIVE_TIMEOUT)
        .max_header_list_size(u32::try_from(MAX_HEADER_BYTES).unwrap_or(u32::MAX));
    builder
}

impl EntryPoint {
    /// Another handle on the same listening socket, for another worker.
    ///
    /// # Errors
    ///
    /// A [`StartError`] naming the entry point when the socket cannot be
    /// shared.
    pub(crate) fn try_clone(&self) -> Result<Self, StartError> {
        Ok(Self {
            name: Arc::clone(&self.name),
            listener: self
                .listener
                .try_clone()
                .map_err(|source| StartError::ShareSocket {
                    entry_point: self.name.to_string(),
                    source,
                })?,
            tls: self.tls.clone(),
            edge: Arc::clone(&self.edge),
            transport: self.transport,
            connections: Arc::clone(&self.connections),
        })
    }

    /// Accepts connections until `stop` turns true, serving their requests
    /// with `gateway` and the calling worker's `upstream` pool; every
    /// connection is watched by `graceful` so that shutdown can wait for
    /// it.
    pub(crate) async fn serve(
        self,
        gateway: Arc<Gateway>,
        upstream: Arc<UpstreamPool>,
        graceful: Arc<GracefulShutdown>,
        mut stop: watch::Receiver<bool>,
    ) {
        let listener = match TcpListener::from_std(self.listener) {
            Ok(listener) => listener,
            Err(error) => {
                tracing::error!(entry_point = %self.name, %error, "cannot accept on this worker");
                return;
            }
        };
        let builder = Arc::new(connection_builder());
        let timeouts = Timeouts::of(&self.transport);
        loop {
            // At the limit, stop accepting (new connections wait in the
            // kernel's backlog) until an open one closes.
            let permit = tokio::select! {
                permit = Arc::clone(&self.connections).acquire_owned() => permit,
                _ = stop.wait_for(|stop| *stop) => break,
            };
            let Ok(permit) = permit else { break };
            let accepted = tokio::select! {
                accepted = listener.accept() => accepted,
                _ = stop.wait_for(|stop| *stop) => break,
            };
            let (stream, client) = match accepted {
                Ok(accepted) => accepted,
                Err(error) => {
                    tracing::warn!(entry_point = %self.name, %error, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            };
            let _ = stream.set_nodelay(true);
            let (gateway, upstream, name, tls, builder, edge) = (
                Arc::clone(&gateway),
                Arc::clone(&upstream),
                Arc::clone(&self.name),
                self.tls.clone(),
                Arc::clone(&builder),
                Arc::clone(&self.edge),
            );
            let watcher = graceful.watcher();
            let stop = stop.clone();
            tokio::spawn(async move {
                let connection = Arc::new(Connection {
                    gateway,
                    upstream,
                    entry_point: name,
                    origin: Origin::new(client, tls.is_some(), edge.trust.trusts(client.ip())),
                    edge,
                    activity: Activity::new(),
                    timeouts,
                    _permit: permit,
                });
                let served = match tls {
                    None => serve(&builder, watcher, stream, connection, Some(stop)).await,
                    Some(acceptor) => {
                        match tokio::time::timeout(HEADER_READ_TIMEOUT, acceptor.accept(stream))
                            .await
                        {
                            Ok(Ok(stream)) => {
                                // A caller that chose HTTP/2 by ALPN is hyper's.
                                let h2 = stream.get_ref().1.alpn_protocol() == Some(b"h2");
                                let stop = (!h2).then_some(stop);
                                serve(&builder, watcher, stream, connection, stop).await
                            }
                            _ => {
                                tracing::debug!(%client, "TLS handshake failed or timed out");
                                return;
                            }
                        }
                    }
                };
                if let Err(error) = served {
                    tracing::debug!(%client, %error, "connection ended with an error");
                }
            });
        }
    }
}

/// What every request on one connection shares.
pub(super) struct Connection {
    gateway: Arc<Gateway>,
    /// The pool of the worker that accepted the connection.
    upstream: Arc<UpstreamPool>,
    entry_point: Arc<str>,
    origin: Origin,
    edge: Arc<EdgeRules>,
    /// What its requests tell its stream's timeouts.
    activity: Activity,
    timeouts: Timeouts,
    /// Its place under `maxConnections`, held as long as the connection
    /// is: by its stream, and by a WebSocket tunnel that took the stream
    /// over.
    _permit: OwnedSemaphorePermit,
}

impl AsRef<Activity> for Connection {
    fn as_ref(&self) -> &Activity {
        &self.activity
    }
}

/// Answers `request`, in flight as `flight`, on its connection; the
/// response's body ends at the `writeTimeout` deadline. An answer from an
/// HTTP/1.1 server comes with its header lines ([`HeaderLines`]) beside
/// an empty map, for the writer to copy or to make a map of.
///
/// # Errors
///
/// When there is no response within `writeTimeout`: the connection is to
/// be closed without one.
pub(super) async fn respond(
    flight: Flight<Connection>,
    request: http::Request<CallerBody>,
) -> std::io::Result<(
    http::Response<Answer<Body, Connection>>,
    Option<HeaderLines>,
)> {
    let Connection {
        gateway,
        upstream,
        entry_point,
        origin,
        edge,
        timeouts,
        ..
    } = flight.connection();
    let (mut response, write_by) = {
        // Pinned where it is made and awaited through the pin: moved into
        // `.await`'s slot or `timeout_at`, the request's whole future
        // would be copied (boxed, it is copied into the box: measured,
        // more instructions).
        let handled = pin!(gateway.handle(upstream, entry_point, edge, origin, request));
        match timeouts.write {
            None => (handled.await, None),
            Some(write) => {
                let write_by = tokio::time::Instant::now() + write;
                match tokio::time::timeout_at(write_by, handled).await {
                    Ok(response) => (response, Some(write_by)),
                    Err(_) => {
                        return Err(std::io::Error::new(
                            std::io::ErrorKind::TimedOut,
                            "no response within writeTimeout",
                        ));
                    }
                }
            }
        }
    };
    // An HTTP/1.1 server's answer has its header lines beside an empty
    // map: the writer copies them as they came.
    let lines = match response.body_mut() {
        Either::Left(upstream) => upstream.take_header_lines(),
        Either::Right(_) => None,
    };
    Ok((
        response.map(|body| Answer::new(body, write_by, flight)),
        lines,
    ))
}

/// Serves HTTP on one accepted connection (plain or TLS) until it ends:
/// first on the gateway's own HTTP/1.1 path ([`h1_server`], unless `stop`
/// is `None`), from the first request that path does not take on with
/// hyper. `stop` turning true ends the connection once no request is in
/// flight on it; `watcher` does the same for hyper's connections.
async fn serve<I>(
    builder: &auto::Builder<TokioExecutor>,
    watcher: Watcher,
    io: I,
    connection: Arc<Connection>,
    stop: Option<watch::Receiver<bool>>,
) -> Result<(), Box<dyn std::error::Error + Send + Sync>>
where
    I: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let mut io = Guarded::new(io, Arc::clone(&connection), connection.timeouts);
    let read = match stop {
        Some(mut stop) => match h1_server::serve(&mut io, &connection, &mut stop).await? {
            h1_server::Ended::Closed => return Ok(()),
            h1_server::Ended::HandOver(read) => read,
        },
        None => Bytes::new(),
    };
    let service = service_fn(move |request: http::Request<hyper::body::Incoming>| {
        let flight = Flight::begin(Arc::clone(&connection));
        // hyper can hand this connection over to a WebSocket tunnel (an
        // HTTP/1.1 request with `Upgrade`): the tunnel would keep a request
        // in flight, and the connection's idle timeout.
        let tunnel = request.extensions().get::<OnUpgrade>().map(|_| {
            let in_flight = Flight::begin(Arc::clone(&connection));
            Tunnel::new(connection.timeouts.idle, Arc::new(in_flight))
        });
        async move {
            // Only a body still to come needs the clock.
            let read_by = match flight.connection().timeouts.read {
                Some(read) if !hyper::body::Body::is_end_stream(request.body()) => {
                    Some(flight.started() + read)
                }
                _ => None,
            };
            let mut request = request.map(|body| CallerBody::new(body, read_by));
            if let Some(tunnel) = tunnel {
                request.extensions_mut().insert(tunnel);
            }
            let (mut response, lines) = pin!(respond(flight, request)).await?;
            if let Some(lines) = lines {
                lines.append_to(response.headers_mut());
            }
            Ok::<_, std::io::Error>(response)
        }
    });
    watcher
        .watch(
            builder
                .serve_connection_with_upgrades(TokioIo::new(Prefixed::new(read, io)), service)
                .into_owned(),
        )
        .await
}

/// A stream whose first bytes were already read: they are read again
/// first (hyper reads a connection the gateway's own path handed over).
struct Prefixed<I> {
    read: Bytes,
    io: I,
}

impl<I> Prefixed<I> {
    fn new(read: Bytes, io: I) -> Self {
        Self { read, io }
    }
}

impl<I: tokio::io::AsyncRead + Unpin> tokio::io::AsyncRead for Prefixed<I> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let this = self.get_mut();
        if this.read.is_empty() {
            return Pin::new(&mut this.io).poll_read(cx, buf);
        }
        let n = this.read.len().min(buf.remaining());
        buf.put_slice(&this.read.split_to(n));
        Poll::Ready(Ok(()))
    }
}

impl<I: tokio::io::AsyncWrite + Unpin> tokio::io::AsyncWrite for Prefixed<I> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.get_mut().io).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.get_mut().io).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_shutdown(cx)
    }
}
