//! A real WebSocket server on 127.0.0.1 (tokio-tungstenite): keeps the
//! headers of every opening handshake it accepts, echoes text messages
//! as `echo: …` and binary messages reversed, closes the connection
//! itself when told `close, please`, and says when each connection ended;
//! plain (`ws://`) or behind TLS (`wss://`).

use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use tokio_rustls::TlsAcceptor;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::handshake::server::{Request, Response};

use super::tls::Pki;

/// The text that makes the server close the connection itself.
pub(crate) const CLOSE_PLEASE: &str = "close, please";

/// A running WebSocket server.
pub(crate) struct WsServer {
    pub(crate) url: String,
    /// The headers of each accepted handshake, in order.
    handshakes: Arc<Mutex<Vec<http::HeaderMap>>>,
    /// Connections that ended (closed either way, or failed).
    ended: tokio::sync::watch::Receiver<usize>,
    _server: tokio::task::JoinHandle<()>,
}

impl WsServer {
    /// A plain server (`http://` URL: `ws://`).
    pub(crate) async fn start() -> Self {
        Self::start_with(None).await
    }

    /// A server behind TLS with `pki`'s server certificate (`https://`
    /// URL: `wss://`).
    pub(crate) async fn start_tls(pki: &Pki) -> Self {
        let certs = CertificateDer::pem_file_iter(pki.server_cert_file())
            .expect("the server certificate")
            .collect::<Result<Vec<_>, _>>()
            .expect("the server certificate");
        let key = PrivateKeyDer::from_pem_file(pki.server_key_file()).expect("the server key");
        let config = rustls::ServerConfig::builder_with_provider(crate::support::crypto_provider())
            .with_safe_default_protocol_versions()
            .expect("TLS versions")
            .with_no_client_auth()
            .with_single_cert(certs, key)
            .expect("a TLS server configuration");
        Self::start_with(Some(TlsAcceptor::from(Arc::new(config)))).await
    }

    async fn start_with(tls: Option<TlsAcceptor>) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let scheme = if tls.is_some() { "https" } else { "http" };
        let url = format!("{scheme}://{}", listener.local_addr().expect("address"));
        let handshakes = Arc::new(Mutex::new(Vec::new()));
        let (end, ended) = tokio::sync::watch::channel(0);
        let seen = Arc::clone(&handshakes);
        let server = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let (seen, end, tls) = (Arc::clone(&seen), end.clone(), tls.clone());
                tokio::spawn(async move {
                    match tls {
                        None => accept(stream, &seen).await,
                        Some(tls) => {
                            if let Ok(stream) = tls.accept(stream).await {
                                accept(stream, &seen).await;
                            }
                        }
                    }
                    end.send_modify(|ended| *ended += 1);
                });
            }
        });
        Self {
            url,
            handshakes,
            ended,
            _server: server,
        }
    }

    /// The headers of every handshake accepted so far.
    pub(crate) fn handshakes(&self) -> Vec<http::HeaderMap> {
        self.handshakes.lock().expect("handshakes").clone()
    }

    /// Waits until `n` connections have ended (at most 10 s).
    pub(crate) async fn until_ended(&self, n: usize) {
        let mut ended = self.ended.clone();
        tokio::time::timeout(Duration::from_secs(10), ended.wait_for(|ended| *ended >= n))
            .await
            .unwrap_or_else(|_| panic!("{n} WebSocket connections never ended at the server"))
            .expect("the server runs");
    }
}

/// The handshake on `stream`, its headers kept in `seen`, then the echo.
async fn accept<S>(stream: S, seen: &Mutex<Vec<http::HeaderMap>>)
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    // The callback's type is tungstenite's, large error and all.
    #[allow(clippy::result_large_err)]
    let keep = |request: &Request, response: Response| {
        seen.lock()
            .expect("handshakes")
            .push(request.headers().clone());
        Ok(response)
    };
    if let Ok(socket) = tokio_tungstenite::accept_hdr_async(stream, keep).await {
        serve(socket).await;
    }
}

async fn serve<S>(mut socket: tokio_tungstenite::WebSocketStream<S>)
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    while let Some(Ok(message)) = socket.next().await {
        let answer = match message {
            Message::Text(text) if text.as_str() == CLOSE_PLEASE => {
                let _ = socket.close(None).await;
                continue;
            }
            Message::Text(text) => Message::text(format!("echo: {}", text.as_str())),
            Message::Binary(bytes) => {
                Message::binary(bytes.iter().rev().copied().collect::<Vec<u8>>())
            }
            // Pings are answered by tungstenite; a close ends the loop.
            _ => continue,
        };
        if socket.send(answer).await.is_err() {
            break;
        }
    }
}
