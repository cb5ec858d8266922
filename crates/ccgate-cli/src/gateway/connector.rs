//! How a worker's pool ([`super::upstream`]) reaches one server: a
//! servers transport (`http.serversTransports`, SPEC §11) made ready for
//! the request path, and the connection it opens — TCP, then TLS for an
//! `https://` server — under `forwardingTimeouts.dialTimeout`, and the
//! HTTP version spoken on it ([`Opened`]).
//!
//! Everything is built once per configuration: one rustls `ClientConfig`
//! per transport that an `https` server uses (so its session cache gives
//! TLS resumption across connections and workers), the server name of
//! each server. A plain `http` server's connection is a `TcpStream` as it
//! always was; TLS is only on the `https` branch.
//!
//! TLS: aws-lc-rs as the explicit provider; the platform's verifier
//! (rustls-platform-verifier) with `rootCAs` added to the system's roots;
//! SNI and the name checked from `serverName`, else the URL's host; a
//! client certificate from `certificates`; ALPN `h2` and `http/1.1`, or
//! only `http/1.1` with `disableHTTP2`. `insecureSkipVerify` replaces the
//! verifier by one that accepts any certificate.
//!
//! HTTP versions (SPEC §11): `http://` is HTTP/1.1; `h2c://` is cleartext
//! HTTP/2 by prior knowledge (RFC 9113 §3.3); `https://` is HTTP/2 when the
//! server picks `h2` in ALPN, else HTTP/1.1.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use http::uri::Authority;
use hyper::body::Body;
use hyper::client::conn::http1::{self, SendRequest};
use hyper::client::conn::http2;
use hyper_util::rt::{TokioExecutor, TokioIo};
use rustls::ClientConfig;
use rustls::client::danger::ServerCertVerifier;
use rustls_pki_types::ServerName;
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;

use super::h1_client::{Connection, Stream};
use crate::config::ServersTransport;

/// Why a connection could not be opened: the caller gets 502.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ConnectError {
    #[error("cannot connect: {0}")]
    Connect(std::io::Error),
    #[error("connecting timed out after {0:?} (forwardingTimeouts.dialTimeout)")]
    Timeout(Duration),
    #[error("TLS: {0}")]
    Tls(std::io::Error),
    #[error("an h2c server speaks HTTP/2 only; this needs HTTP/1.1")]
    Http1Only,
    #[error(transparent)]
    Http(#[from] hyper::Error),
}

/// The pool's limits for a transport's connections.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Limits {
    /// `idleConnTimeout`: an idle connection older than this is closed.
    pub(crate) idle_timeout: Duration,
    /// `maxIdleConnsPerHost`: idle connections kept per server.
    pub(crate) max_idle: usize,
}

/// A servers transport, ready for the request path; shared by the
/// services that name it and by every worker.
#[derive(Debug)]
pub(crate) struct Connector {
    /// Tells connections of different transports apart in the pool: 0 for
    /// the defaults, else unique in the process.
    id: usize,
    dial_timeout: Option<Duration>,
    pub(crate) response_header_timeout: Option<Duration>,
    pub(crate) limits: Limits,
    /// `serverName`, for SNI and verification.
    server_name: Option<ServerName<'static>>,
    /// Set when an `https` server uses this transport.
    pub(crate) tls: Option<Arc<ClientConfig>>,
    /// The same offering only `http/1.1` in ALPN, for the connections
    /// that must be HTTP/1.1 (a WebSocket handshake, an HTTP health
    /// check); `tls` itself when it offers only that already.
    tls_http1: Option<Arc<ClientConfig>>,
    /// Whether ALPN offers `h2` (not `disableHTTP2`).
    offers_h2: bool,
}

impl Connector {
    /// `transport` made ready; `tls` builds its `ClientConfig` (an
    /// `https` server uses it). `default` says it is the transport of the
    /// services that name none.
    ///
    /// # Errors
    ///
    /// The reason TLS cannot be set up (no trust roots at all, an
    /// unusable client key, a `serverName` that is no DNS name or IP).
    pub(crate) fn new(
        transport: &ServersTransport,
        tls: bool,
        default: bool,
    ) -> Result<Self, String> {
        static NEXT_ID: AtomicUsize = AtomicUsize::new(1);
        let server_name = match &transport.server_name {
            Some(name) => Some(ServerName::try_from(name.clone()).map_err(|_| {
                format!("serverName {name:?} is neither a DNS name nor an IP address")
            })?),
            None => None,
        };
        let tls = if tls {
            Some(Arc::new(client_config(transport)?))
        } else {
            None
        };
        let tls_http1 = tls.as_ref().map(|config| {
            if transport.disable_http2 {
                Arc::clone(config)
            } else {
                let mut http1 = ClientConfig::clone(config);
                http1.alpn_protocols = vec![b"http/1.1".to_vec()];
                Arc::new(http1)
            }
        });
        Ok(Self {
            id: if default {
                0
            } else {
                NEXT_ID.fetch_add(1, Ordering::Relaxed)
            },
            dial_timeout: transport.dial_timeout,
            response_header_timeout: transport.response_header_timeout,
            limits: Limits {
                idle_timeout: transport.idle_conn_timeout.unwrap_or(Duration::MAX),
                max_idle: transport.max_idle_conns_per_host,
            },
            server_name,
            tls,
            tls_http1,
            offers_h2: !transport.disable_http2,
        })
    }

    /// The target for the server at `uri` (`http`, `https` or `h2c`,
    /// checked at load), or `None` for a URL without an authority.
    pub(crate) fn target(self: &Arc<Self>, uri: &http::Uri) -> Option<Target> {
        let authority = uri.authority()?.clone();
        let scheme = match uri.scheme_str() {
            Some("https") => Scheme::Https,
            Some("h2c") => Scheme::H2c,
            _ => Scheme::Http,
        };
        let https = scheme == Scheme::Https;
        let server_name = if https {
            let name = match &self.server_name {
                Some(name) => name.clone(),
                None => {
                    let host = authority
                        .host()
                        .trim_start_matches('[')
                        .trim_end_matches(']');
                    ServerName::try_from(host.to_owned()).ok()?
                }
            };
            Some(name)
        } else {
            None
        };
        Some(Target {
            key: Key {
                authority,
                transport: self.id,
                scheme,
            },
            connector: Arc::clone(self),
            server_name,
        })
    }
}

/// What the pool keys connections by: the server, its scheme and its
/// transport (connections made with other TLS settings are not shared).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) struct Key {
    pub(crate) authority: Authority,
    transport: usize,
    pub(crate) scheme: Scheme,
}

/// A server URL's scheme: how its connections are opened and which HTTP
/// version they speak.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum Scheme {
    /// `http://`: TCP, HTTP/1.1.
    Http,
    /// `https://`: TLS, HTTP/2 or HTTP/1.1 as ALPN decides.
    Https,
    /// `h2c://`: TCP, HTTP/2 by prior knowledge.
    H2c,
}

impl Scheme {
    /// The `:scheme` of a request sent over HTTP/2 (RFC 9113 §8.3.1).
    pub(crate) fn request_scheme(self) -> http::uri::Scheme {
        match self {
            Self::Https => http::uri::Scheme::HTTPS,
            Self::Http | Self::H2c => http::uri::Scheme::HTTP,
        }
    }
}

/// A new connection's sender, in the HTTP version the server speaks.
#[derive(Debug)]
pub(crate) enum Opened<B> {
    /// HTTP/1.1: one request at a time; pooled in idle lists.
    Http1(SendRequest<B>),
    /// HTTP/2: multiplexed, the sender cloned for each request.
    Http2(http2::SendRequest<B>),
}

/// A new connection for requests without a body: HTTP/1.1 driven by the
/// request that holds it ([`super::h1_client`]), or HTTP/2 when an
/// `https` server picked `h2` in ALPN.
#[derive(Debug)]
pub(crate) enum Direct<B> {
    Http1(Connection),
    Http2(http2::SendRequest<B>),
}

/// One server of a service as the pool reaches it, built at load.
#[derive(Debug, Clone)]
pub(crate) struct Target {
    pub(crate) key: Key,
    pub(crate) connector: Arc<Connector>,
    /// The TLS server name, for an `https` server.
    pub(crate) server_name: Option<ServerName<'static>>,
}

impl Target {
    /// A plain `http` server with the default settings (tests).
    #[cfg(test)]
    pub(crate) fn http(authority: &Authority) -> Self {
        Self::with(authority, &ServersTransport::default())
    }

    /// A plain `http` server with `transport`'s settings (tests).
    #[cfg(test)]
    pub(crate) fn with(authority: &Authority, transport: &ServersTransport) -> Self {
        let connector = Arc::new(Connector::new(transport, false, true).expect("a connector"));
        let uri: http::Uri = format!("http://{authority}").parse().expect("a URI");
        connector.target(&uri).expect("a target")
    }

    /// Whether a connection to this server may speak HTTP/2: always for
    /// `h2c`, for `https` when ALPN offers `h2`.
    pub(crate) fn may_speak_h2(&self) -> bool {
        match self.key.scheme {
            Scheme::H2c => true,
            Scheme::Https => self.connector.offers_h2,
            Scheme::Http => false,
        }
    }

    /// A new connection to the server, driven by a task of its own, opened
    /// within `dialTimeout` (TCP connection, TLS handshake, and the HTTP/2
    /// preface and settings for `h2c`).
    pub(crate) async fn connect<B>(&self) -> Result<Opened<B>, ConnectError>
    where
        B: Body + Send + Unpin + 'static,
        B::Data: Send,
        B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    {
        self.within_dial_timeout(self.open()).await
    }

    /// A new HTTP/1.1 connection to an `http` or `https` server (ALPN
    /// offers only `http/1.1`), within `dialTimeout`: for a WebSocket
    /// handshake or an HTTP health check, which HTTP/2 cannot carry.
    ///
    /// # Errors
    ///
    /// As [`Self::connect`]; an `h2c` server is a protocol error.
    pub(crate) async fn connect_http1<B>(&self) -> Result<SendRequest<B>, ConnectError>
    where
        B: Body + Send + Unpin + 'static,
        B::Data: Send,
        B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    {
        let open = async {
            let stream = self.dial().await?;
            match (&self.server_name, &self.connector.tls_http1) {
                (Some(name), Some(tls)) => {
                    let stream = Box::pin(tls_connect(tls, name, stream)).await?;
                    handshake(TokioIo::new(stream)).await
                }
                _ if self.key.scheme == Scheme::H2c => Err(ConnectError::Http1Only),
                _ => handshake(TokioIo::new(stream)).await,
            }
        };
        self.within_dial_timeout(open).await
    }

    /// A new connection for requests without a body ([`Direct`]), within
    /// `dialTimeout`.
    ///
    /// # Errors
    ///
    /// As [`Self::connect`]; an `h2c` server is a protocol error (the pool
    /// sends to those over HTTP/2).
    pub(crate) async fn connect_direct<B>(&self) -> Result<Direct<B>, ConnectError>
    where
        B: Body + Send + Unpin + 'static,
        B::Data: Send,
        B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    {
        let open = async {
            let stream = self.dial().await?;
            match (&self.server_name, &self.connector.tls) {
                // Boxed: the TLS handshake's state is large (see `open`).
                (Some(name), Some(tls)) => Box::pin(direct_tls(tls, name, stream)).await,
                _ if self.key.scheme == Scheme::H2c => Err(ConnectError::Http1Only),
                _ => Ok(Direct::Http1(Connection::new(Stream::Tcp(stream)))),
            }
        };
        self.within_dial_timeout(open).await
    }

    /// `open` (a connection being opened) within `dialTimeout`.
    async fn within_dial_timeout<T>(
        &self,
        open: impl Future<Output = Result<T, ConnectError>>,
    ) -> Result<T, ConnectError> {
        match self.connector.dial_timeout {
            Some(limit) => tokio::time::timeout(limit, open)
                .await
                .map_err(|_| ConnectError::Timeout(limit))?,
            None => open.await,
        }
    }

    /// The TCP connection to the server.
    async fn dial(&self) -> Result<TcpStream, ConnectError> {
        let server = &self.key.authority;
        let host = server.host().trim_start_matches('[').trim_end_matches(']');
        let default_port = if self.key.scheme == Scheme::Https {
            443
        } else {
            80
        };
        let port = server.port_u16().unwrap_or(default_port);
        let stream = TcpStream::connect((host, port))
            .await
            .map_err(ConnectError::Connect)?;
        let _ = stream.set_nodelay(true);
        Ok(stream)
    }

    async fn open<B>(&self) -> Result<Opened<B>, ConnectError>
    where
        B: Body + Send + Unpin + 'static,
        B::Data: Send,
        B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    {
        let stream = self.dial().await?;
        match (&self.server_name, &self.connector.tls) {
            // Boxed: the TLS handshake's state is large, and unboxed it
            // would grow the future of every request, plain `http` ones
            // included (hyper moves it once per request).
            (Some(name), Some(tls)) => Box::pin(tls_handshake(tls, name, stream)).await,
            // Boxed for the same reason: HTTP/2's handshake is large too.
            _ if self.key.scheme == Scheme::H2c => Box::pin(handshake_h2(TokioIo::new(stream)))
                .await
                .map(Opened::Http2),
            _ => handshake(TokioIo::new(stream)).await.map(Opened::Http1),
        }
    }
}

/// The TLS handshake over `stream` for `name`.
async fn tls_connect(
    config: &Arc<ClientConfig>,
    name: &ServerName<'static>,
    stream: TcpStream,
) -> Result<tokio_rustls::client::TlsStream<TcpStream>, ConnectError> {
    TlsConnector::from(Arc::clone(config))
        .connect(name.clone(), stream)
        .await
        .map_err(ConnectError::Tls)
}

/// TLS over `stream` for `name`, then HTTP/2 over it if the server picked
/// `h2` in ALPN, else HTTP/1.1.
async fn tls_handshake<B>(
    config: &Arc<ClientConfig>,
    name: &ServerName<'static>,
    stream: TcpStream,
) -> Result<Opened<B>, ConnectError>
where
    B: Body + Send + Unpin + 'static,
    B::Data: Send,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let stream = tls_connect(config, name, stream).await?;
    if stream.get_ref().1.alpn_protocol() == Some(b"h2") {
        return handshake_h2(TokioIo::new(stream)).await.map(Opened::Http2);
    }
    handshake(TokioIo::new(stream)).await.map(Opened::Http1)
}

/// TLS over `stream` for `name`, then HTTP/2 if the server picked `h2`,
/// else a [`Connection`] of [`super::h1_client`].
async fn direct_tls<B>(
    config: &Arc<ClientConfig>,
    name: &ServerName<'static>,
    stream: TcpStream,
) -> Result<Direct<B>, ConnectError>
where
    B: Body + Send + Unpin + 'static,
    B::Data: Send,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let stream = tls_connect(config, name, stream).await?;
    if stream.get_ref().1.alpn_protocol() == Some(b"h2") {
        return handshake_h2(TokioIo::new(stream)).await.map(Direct::Http2);
    }
    Ok(Direct::Http1(Connection::new(Stream::Tls(Box::new(
        stream,
    )))))
}

/// HTTP/2 over `io` (RFC 9113 §3.4: preface, then settings), its
/// connection driven by a task of its own.
async fn handshake_h2<B, T>(io: T) -> Result<http2::SendRequest<B>, ConnectError>
where
    B: Body + Send + Unpin + 'static,
    B::Data: Send,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    T: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
{
    let (sender, connection) = http2::handshake(TokioExecutor::new(), io).await?;
    tokio::spawn(async move {
        if let Err(error) = connection.await {
            tracing::debug!(%error, "upstream HTTP/2 connection ended with an error");
        }
    });
    Ok(sender)
}

/// HTTP/1.1 over `io`, its connection driven by a task of its own. It
/// can be upgraded: after a `101` the task hands the stream to
/// `hyper::upgrade::on` (a WebSocket tunnel, `super::websocket`), or
/// closes it when nobody takes it.
async fn handshake<B, T>(io: T) -> Result<SendRequest<B>, ConnectError>
where
    B: Body + Send + Unpin + 'static,
    B::Data: Send,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    T: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
{
    let (sender, connection) = http1::handshake(io).await?;
    tokio::spawn(async move {
        if let Err(error) = connection.with_upgrades().await {
            tracing::debug!(%error, "upstream connection ended with an error");
        }
    });
    Ok(sender)
}

/// The rustls configuration of `transport`, built once per load.
fn client_config(transport: &ServersTransport) -> Result<ClientConfig, String> {
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let builder = ClientConfig::builder_with_provider(Arc::clone(&provider))
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .dangerous();
    let verifier: Arc<dyn ServerCertVerifier> = if transport.insecure_skip_verify {
        Arc::new(ccgate::danger::AcceptAnyServerCertificate::new(provider))
    } else {
        let verifier = rustls_platform_verifier::Verifier::new_with_extra_roots(
            transport.root_cas.iter().cloned(),
            provider,
        )
        .map_err(|e| format!("no trust roots (set rootCAs): {e}"))?;
        Arc::new(verifier)
    };
    let builder = builder.with_custom_certificate_verifier(verifier);
    let mut config = match &transport.certificate {
        Some(certificate) => builder
            .with_client_auth_cert(certificate.chain.clone(), certificate.key())
            .map_err(|_| "certificates[0]: unusable client certificate or key".to_owned())?,
        None => builder.with_no_client_auth(),
    };
    config.alpn_protocols = if transport.disable_http2 {
        vec![b"http/1.1".to_vec()]
    } else {
        vec![b"h2".to_vec(), b"http/1.1".to_vec()]
    };
    Ok(config)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn alpn(transport: &ServersTransport) -> Vec<Vec<u8>> {
        let connector = Connector::new(transport, true, false).unwrap();
        connector.tls.as_ref().unwrap().alpn_protocols.clone()
    }

    #[test]
    fn alpn_offers_h2_then_http1_unless_http2_is_disabled() {
        assert_eq!(
            alpn(&ServersTransport::default()),
            [b"h2".to_vec(), b"http/1.1".to_vec()]
        );
        let disabled = ServersTransport {
            disable_http2: true,
            ..ServersTransport::default()
        };
        assert_eq!(alpn(&disabled), [b"http/1.1".to_vec()]);
    }

    #[test]
    fn connections_that_must_be_http1_offer_only_http1() {
        for transport in [
            ServersTransport::default(),
            ServersTransport {
                disable_http2: true,
                ..ServersTransport::default()
            },
        ] {
            let connector = Connector::new(&transport, true, false).unwrap();
            let http1 = connector.tls_http1.as_ref().unwrap();
            assert_eq!(http1.alpn_protocols, [b"http/1.1".to_vec()]);
        }
    }

    #[test]
    fn which_servers_may_speak_http2() {
        let cases = [
            ("http://up", false, false),
            ("h2c://up", false, true),
            ("h2c://up", true, true),
            ("https://up", false, true),
            ("https://up", true, false),
        ];
        for (url, disable_http2, h2) in cases {
            let transport = ServersTransport {
                disable_http2,
                ..ServersTransport::default()
            };
            let connector = Arc::new(Connector::new(&transport, true, false).unwrap());
            let target = connector.target(&url.parse().unwrap()).unwrap();
            assert_eq!(
                target.may_speak_h2(),
                h2,
                "{url} disableHTTP2={disable_http2}"
            );
        }
    }
}
