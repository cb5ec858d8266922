//! A worker's HTTP/2 connections to upstream servers (SPEC §11): one
//! multiplexed connection per server ([`Key`]), shared by every request
//! of the worker to that server, kept beside the HTTP/1.1 idle lists of
//! [`super::upstream::UpstreamPool`], which dispatches here for `h2c`
//! servers and for `https` servers that picked `h2` in ALPN.
//!
//! One connection, not more: a request past the server's
//! `SETTINGS_MAX_CONCURRENT_STREAMS` waits in hyper's queue for a stream
//! to finish (within `responseHeaderTimeout` when one is set), as Go's
//! HTTP/2 transport does by default; a second connection is opened only
//! when the first is closed (the server's `GOAWAY`, an error) or its
//! `idleConnTimeout` has passed since its last request started (a sweep
//! every 90 s drops those of servers no longer asked). Callers
//! are bounded by the entry points' `maxConnections` and HTTP/2 stream
//! limits, so the queue is too.
//!
//! Requests go out with the `:scheme` of the server (`http` for `h2c`),
//! `:authority` from the `Host` the proxy chose, and no `Host` header
//! (RFC 9113 §8.3.1). hyper removes connection-specific headers and any
//! `TE` other than `trailers` before a request leaves (RFC 9113 §8.2.2).
//! Trailers (gRPC's `grpc-status`) stream back as frames of the body.
//!
//! # Concurrency
//!
//! Two first requests to a server that race may each open a connection;
//! the first one kept stays, the other closes when its stream ends.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use http::uri::{Authority, PathAndQuery, Uri};
use http::{Request, Response, Version, header};
use hyper::body::{Body, Incoming};
use hyper::client::conn::http2::SendRequest;

use super::connector::{Key, Limits, Opened, Target};
use super::upstream::UpstreamError;

/// How often every kept connection is checked, so that those of servers
/// no longer asked (after a reload) are closed too.
const SWEEP_INTERVAL: Duration = Duration::from_secs(90);

/// One worker's HTTP/2 connections, one per server.
#[derive(Debug)]
pub(crate) struct H2Pool<B> {
    kept: Mutex<Kept<B>>,
}

#[derive(Debug)]
struct Kept<B> {
    by_server: HashMap<Key, Shared<B>>,
    /// When closed and expired connections were last dropped.
    swept: Instant,
}

/// A server's connection and when a request last started on it.
#[derive(Debug)]
struct Shared<B> {
    sender: SendRequest<B>,
    used: Instant,
}

impl<B> Default for H2Pool<B> {
    fn default() -> Self {
        Self {
            kept: Mutex::new(Kept {
                by_server: HashMap::new(),
                swept: Instant::now(),
            }),
        }
    }
}

impl<B> H2Pool<B>
where
    B: Body + Send + Unpin + 'static,
    B::Data: Send,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    /// The server's open connection, used within its `idleConnTimeout`.
    pub(crate) fn get(&self, server: &Key, limits: Limits) -> Option<SendRequest<B>> {
        let mut kept = self
            .kept
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let now = Instant::now();
        if now.duration_since(kept.swept) >= SWEEP_INTERVAL {
            // Each entry's own limit is not kept: the sweep uses the
            // asking transport's, and entries are checked again on use.
            kept.by_server.retain(|_, shared| {
                !shared.sender.is_closed() && now.duration_since(shared.used) < limits.idle_timeout
            });
            kept.swept = now;
        }
        let by_server = &mut kept.by_server;
        let shared = by_server.get_mut(server)?;
        if shared.sender.is_closed() || now.duration_since(shared.used) >= limits.idle_timeout {
            // Dropping the sender closes the connection once its streams end.
            by_server.remove(server);
            return None;
        }
        shared.used = now;
        Some(shared.sender.clone())
    }

    /// Keeps `sender` as the server's connection, unless an open one is
    /// kept already (a race of first requests).
    pub(crate) fn keep(&self, server: &Key, sender: &SendRequest<B>) {
        let mut kept = self
            .kept
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let by_server = &mut kept.by_server;
        if by_server
            .get(server)
            .is_some_and(|shared| !shared.sender.is_closed())
        {
            return;
        }
        by_server.insert(
            server.clone(),
            Shared {
                sender: sender.clone(),
                used: Instant::now(),
            },
        );
    }

    /// Sends `request` (origin-form target, `Host` set) to `server` on
    /// `sender`, its kept connection, or on a new one (kept for the next
    /// requests) when `sender` is `None` or closed under the request.
    ///
    /// A request that a closing connection handed back unsent (hyper
    /// returns it) goes once more on a new connection: safe for every
    /// method, nothing of it was written.
    ///
    /// # Errors
    ///
    /// The server cannot be reached, no response head came within
    /// `responseHeaderTimeout`, or the stream failed.
    pub(crate) async fn send(
        &self,
        server: &Target,
        sender: Option<SendRequest<B>>,
        request: Request<B>,
    ) -> Result<Response<Incoming>, UpstreamError> {
        let mut request = to_h2(server, request);
        let mut sender = sender;
        let mut retried = false;
        loop {
            let mut current = match sender.take() {
                Some(sender) => sender,
                None => match server.connect().await? {
                    Opened::Http2(sender) => {
                        self.keep(&server.key, &sender);
                        sender
                    }
                    // Only `Opened::Http2` for an `h2` server; an `https`
                    // one that picks HTTP/1.1 is dispatched before here.
                    Opened::Http1(_) => {
                        return Err(UpstreamError::Protocol(
                            "the server no longer speaks HTTP/2",
                        ));
                    }
                },
            };
            if current.ready().await.is_err() && !retried {
                retried = true;
                continue;
            }
            let sent = current.try_send_request(request);
            let answered = match server.connector.response_header_timeout {
                // Dropping the exchange resets the stream, not the connection.
                Some(limit) => tokio::time::timeout(limit, sent)
                    .await
                    .map_err(|_| UpstreamError::ResponseTimeout(limit))?,
                None => sent.await,
            };
            match answered {
                Ok(response) => return Ok(response),
                Err(mut error) => match error.take_message() {
                    Some(unsent) if !retried => {
                        retried = true;
                        request = unsent;
                    }
                    _ => return Err(error.into_error().into()),
                },
            }
        }
    }
}

/// `request` as HTTP/2 sends it: the absolute target (`:scheme`,
/// `:authority` from `Host`, else the server's), without `Host`.
fn to_h2<B>(server: &Target, mut request: Request<B>) -> Request<B> {
    let authority = request
        .headers_mut()
        .remove(header::HOST)
        .and_then(|host| Authority::try_from(host.as_bytes()).ok())
        .unwrap_or_else(|| server.key.authority.clone());
    let path_and_query = std::mem::take(request.uri_mut())
        .into_parts()
        .path_and_query
        .unwrap_or_else(|| PathAndQuery::from_static("/"));
    let mut parts = http::uri::Parts::default();
    parts.scheme = Some(server.key.scheme.request_scheme());
    parts.authority = Some(authority);
    parts.path_and_query = Some(path_and_query);
    if let Ok(uri) = Uri::from_parts(parts) {
        *request.uri_mut() = uri;
    }
    *request.version_mut() = Version::HTTP_2;
    request
}

#[cfg(test)]
impl<B> H2Pool<B> {
    /// How many servers have a connection kept.
    fn len(&self) -> usize {
        self.kept.lock().unwrap().by_server.len()
    }
}

#[cfg(test)]
mod tests {
    use std::convert::Infallible;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use bytes::Bytes;
    use http_body_util::{BodyExt, Empty, Full};
    use hyper::service::service_fn;
    use hyper_util::rt::{TokioExecutor, TokioIo};

    use super::*;
    use crate::config::ServersTransport;
    use crate::gateway::connector::Connector;

    /// A real HTTP/2 (h2c) server on 127.0.0.1 that answers with the
    /// request's version, `:scheme`, `:authority` and whether a `Host`
    /// header came; counts its connections.
    async fn h2c_server() -> (Target, Arc<AtomicUsize>) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        let accepted = Arc::new(AtomicUsize::new(0));
        let counter = Arc::clone(&accepted);
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                counter.fetch_add(1, Ordering::SeqCst);
                tokio::spawn(
                    hyper::server::conn::http2::Builder::new(TokioExecutor::new())
                        .serve_connection(
                            TokioIo::new(stream),
                            service_fn(|request: Request<Incoming>| async move {
                                let text = format!(
                                    "{:?} {} {} host={}",
                                    request.version(),
                                    request.uri().scheme_str().unwrap_or("-"),
                                    request.uri().authority().map_or("-", Authority::as_str),
                                    request.headers().contains_key(header::HOST),
                                );
                                Ok::<_, Infallible>(Response::new(Full::new(Bytes::from(text))))
                            }),
                        ),
                );
            }
        });
        let connector =
            Arc::new(Connector::new(&ServersTransport::default(), false, true).unwrap());
        let target = connector
            .target(&format!("h2c://{address}").parse().unwrap())
            .unwrap();
        (target, accepted)
    }

    fn get(host: &str) -> Request<Empty<Bytes>> {
        Request::builder()
            .uri("/x?y")
            .header(header::HOST, host)
            .body(Empty::new())
            .unwrap()
    }

    #[tokio::test]
    async fn requests_share_one_connection_and_carry_the_authority_not_host() {
        let (server, accepted) = h2c_server().await;
        let pool = H2Pool::<Empty<Bytes>>::default();
        let limits = server.connector.limits;
        let first = pool.send(&server, None, get("api.example")).await.unwrap();
        let (a, b) = tokio::join!(
            pool.send(&server, pool.get(&server.key, limits), get("api.example")),
            pool.send(&server, pool.get(&server.key, limits), get("api.example")),
        );
        for response in [first, a.unwrap(), b.unwrap()] {
            let body = response.into_body().collect().await.unwrap().to_bytes();
            assert_eq!(body, "HTTP/2.0 http api.example host=false");
        }
        assert_eq!(accepted.load(Ordering::SeqCst), 1);
        assert_eq!(pool.len(), 1);
    }

    #[tokio::test]
    async fn a_connection_idle_past_idle_conn_timeout_is_not_used() {
        let (server, accepted) = h2c_server().await;
        let pool = H2Pool::<Empty<Bytes>>::default();
        let response = pool.send(&server, None, get("a")).await.unwrap();
        response.into_body().collect().await.unwrap();
        let expired = Limits {
            idle_timeout: Duration::ZERO,
            max_idle: 1,
        };
        assert!(pool.get(&server.key, expired).is_none());
        assert_eq!(pool.len(), 0);
        pool.send(&server, None, get("a")).await.unwrap();
        assert_eq!(accepted.load(Ordering::SeqCst), 2);
    }

    #[tokio::test]
    async fn no_response_head_within_the_response_header_timeout_is_a_timeout() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        // Speaks HTTP/2 and never answers a request.
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                tokio::spawn(
                    hyper::server::conn::http2::Builder::new(TokioExecutor::new())
                        .serve_connection(
                            TokioIo::new(stream),
                            service_fn(|_: Request<Incoming>| async {
                                std::future::pending::<Result<Response<Empty<Bytes>>, Infallible>>()
                                    .await
                            }),
                        ),
                );
            }
        });
        let short = ServersTransport {
            response_header_timeout: Some(Duration::from_millis(50)),
            ..ServersTransport::default()
        };
        let connector = Arc::new(Connector::new(&short, false, true).unwrap());
        let server = connector
            .target(&format!("h2c://{address}").parse().unwrap())
            .unwrap();
        let error = H2Pool::<Empty<Bytes>>::default()
            .send(&server, None, get("a"))
            .await
            .unwrap_err();
        assert!(error.is_timeout(), "{error}");
    }
}
