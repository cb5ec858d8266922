//! How a worker's pool ([`super::upstream`]) reaches one server: a
//! servers transport (`http.serversTransports`, SPEC §11) made ready for
//! the request path, and the connection it opens — TCP, then TLS for an
//! `https://` server — under `forwardingTimeouts.dialTimeout`.
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
//! client certificate from `certificates`; ALPN `http/1.1` (HTTP/2 to
//! upstreams is not spoken yet). `insecureSkipVerify` replaces the
//! verifier by one that accepts any certificate.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use http::uri::Authority;
use hyper::body::Body;
use hyper::client::conn::http1::{self, SendRequest};
use hyper_util::rt::TokioIo;
use rustls::ClientConfig;
use rustls::client::danger::ServerCertVerifier;
use rustls_pki_types::ServerName;
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;

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
    tls: Option<Arc<ClientConfig>>,
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
        })
    }

    /// The target for the server at `uri` (`http` or `https`, checked at
    /// load), or `None` for a URL without an authority.
    pub(crate) fn target(self: &Arc<Self>, uri: &http::Uri) -> Option<Target> {
        let authority = uri.authority()?.clone();
        let https = uri.scheme_str() == Some("https");
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
                tls: https,
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
    tls: bool,
}

/// One server of a service as the pool reaches it, built at load.
#[derive(Debug, Clone)]
pub(crate) struct Target {
    pub(crate) key: Key,
    pub(crate) connector: Arc<Connector>,
    /// The TLS server name, for an `https` server.
    server_name: Option<ServerName<'static>>,
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

    /// A new connection to the server, driven by a task of its own, opened
    /// within `dialTimeout` (TCP connection and TLS handshake).
    pub(crate) async fn connect<B>(&self) -> Result<SendRequest<B>, ConnectError>
    where
        B: Body + Send + Unpin + 'static,
        B::Data: Send,
        B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    {
        match self.connector.dial_timeout {
            Some(limit) => tokio::time::timeout(limit, self.open())
                .await
                .map_err(|_| ConnectError::Timeout(limit))?,
            None => self.open().await,
        }
    }

    async fn open<B>(&self) -> Result<SendRequest<B>, ConnectError>
    where
        B: Body + Send + Unpin + 'static,
        B::Data: Send,
        B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    {
        let server = &self.key.authority;
        let host = server.host().trim_start_matches('[').trim_end_matches(']');
        let default_port = if self.key.tls { 443 } else { 80 };
        let port = server.port_u16().unwrap_or(default_port);
        let stream = TcpStream::connect((host, port))
            .await
            .map_err(ConnectError::Connect)?;
        let _ = stream.set_nodelay(true);
        match (&self.server_name, &self.connector.tls) {
            // Boxed: the TLS handshake's state is large, and unboxed it
            // would grow the future of every request, plain `http` ones
            // included (hyper moves it once per request).
            (Some(name), Some(tls)) => Box::pin(tls_handshake(tls, name, stream)).await,
            _ => handshake(TokioIo::new(stream)).await,
        }
    }
}

/// TLS over `stream` for `name`, then HTTP/1.1 over it.
async fn tls_handshake<B>(
    config: &Arc<ClientConfig>,
    name: &ServerName<'static>,
    stream: TcpStream,
) -> Result<SendRequest<B>, ConnectError>
where
    B: Body + Send + Unpin + 'static,
    B::Data: Send,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let stream = TlsConnector::from(Arc::clone(config))
        .connect(name.clone(), stream)
        .await
        .map_err(ConnectError::Tls)?;
    handshake(TokioIo::new(stream)).await
}

/// HTTP/1.1 over `io`, its connection driven by a task of its own.
async fn handshake<B, T>(io: T) -> Result<SendRequest<B>, ConnectError>
where
    B: Body + Send + Unpin + 'static,
    B::Data: Send,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    T: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
{
    let (sender, connection) = http1::handshake(io).await?;
    tokio::spawn(async move {
        if let Err(error) = connection.await {
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
    // HTTP/2 to upstreams is a later part of SPEC §11.
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(config)
}
