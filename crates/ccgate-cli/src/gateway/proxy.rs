//! The reverse proxy to a service's servers: round robin, hop-by-hop
//! headers removed, `X-Forwarded-*` set, bodies streamed both ways, over
//! the worker's pooled keep-alive connections ([`super::upstream`]).

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use http::uri::{Authority, PathAndQuery};
use http::{Request, Response, Uri};

use super::connector::{Connector, Target};
use super::transport::CallerBody;
use super::upstream::{RequestBody, UpstreamBody, UpstreamPool};
use crate::edge::hop_by_hop::remove_hop_by_hop;

/// A service: its servers, taken in turn.
#[derive(Debug)]
pub(crate) struct Service {
    name: String,
    servers: Vec<Server>,
    next: AtomicUsize,
    pass_host_header: bool,
}

/// One of a service's servers.
#[derive(Debug)]
struct Server {
    /// How the pool reaches it (authority, scheme, transport).
    target: Target,
    /// `Host` for this server when the caller's is not passed on.
    host: HeaderValue,
}

/// Why a request got no answer from the service: the caller gets 502 or
/// 504; the detail went to the log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Failure {
    /// No server to send to, or it could not be reached (TCP, TLS) or the
    /// exchange failed: 502.
    Unreachable,
    /// No response head within `responseHeaderTimeout`: 504.
    Timeout,
}

/// Where the request came from, for `X-Forwarded-*` and `X-Real-Ip`.
#[derive(Debug, Clone)]
pub(crate) struct Origin {
    pub(crate) client: SocketAddr,
    pub(crate) tls: bool,
    /// Whether the client's forwarded headers are believed (the entry
    /// point's `forwardedHeaders`), decided once per connection.
    pub(crate) trusted: bool,
    /// The client's IP address, formatted once per connection.
    pub(crate) client_ip: HeaderValue,
}

impl Origin {
    /// A connection from `client`, over TLS or not, whose forwarded
    /// headers are `trusted` or not.
    pub(crate) fn new(client: SocketAddr, tls: bool, trusted: bool) -> Self {
        let client_ip = HeaderValue::try_from(client.ip().to_string())
            .unwrap_or_else(|_| HeaderValue::from_static("unknown"));
        Self {
            client,
            tls,
            trusted,
            client_ip,
        }
    }
}

impl Service {
    /// A service over `servers` (absolute `http` or `https` URLs, checked
    /// at load), reached through `connector`.
    pub(crate) fn new(
        name: &str,
        servers: &[Uri],
        pass_host_header: bool,
        connector: &Arc<Connector>,
    ) -> Self {
        let servers = servers
            .iter()
            .filter_map(|uri| {
                let authority: &Authority = uri.authority()?;
                Some(Server {
                    host: HeaderValue::from_str(authority.as_str()).ok()?,
                    target: connector.target(uri)?,
                })
            })
            .collect();
        Self {
            name: name.to_owned(),
            servers,
            next: AtomicUsize::new(0),
            pass_host_header,
        }
    }

    /// Its name.
    pub(crate) fn name(&self) -> &str {
        &self.name
    }

    /// Sends `request` to the next server and returns its response, or
    /// why there is none (the caller answers 502 or 504; the reason is
    /// logged here, never sent).
    pub(crate) async fn forward(
        &self,
        upstream: &Arc<UpstreamPool>,
        mut request: Request<CallerBody>,
        origin: &Origin,
    ) -> Result<Response<UpstreamBody>, Failure> {
        let server = self.pick().ok_or(Failure::Unreachable)?;
        let original_host = original_host(&request);
        // Origin form (`/path?query`), the parsed path and query kept.
        let path_and_query = std::mem::take(request.uri_mut())
            .into_parts()
            .path_and_query
            .unwrap_or_else(|| PathAndQuery::from_static("/"));
        *request.uri_mut() = Uri::from(path_and_query);
        // HTTP/1.1 whatever the caller spoke; the pool's HTTP/2 path
        // (`h2c`, `https` with `h2`) makes it HTTP/2 with `:authority`.
        *request.version_mut() = http::Version::HTTP_11;
        // Hop-by-hop headers went at the edge, before the middlewares.
        let headers = request.headers_mut();
        set_forwarded(headers, origin, original_host.as_ref());
        let host = match original_host {
            Some(host) if self.pass_host_header => host,
            _ => server.host.clone(),
        };
        headers.insert(header::HOST, host);
        match upstream
            .send(&server.target, request.map(RequestBody::Caller))
            .await
        {
            Ok(mut response) => {
                remove_hop_by_hop(response.headers_mut());
                Ok(response)
            }
            Err(error) if error.is_timeout() => {
                tracing::warn!(service = %self.name, server = %server.target.key.authority, error = %error, "upstream timed out");
                Err(Failure::Timeout)
            }
            Err(error) => {
                tracing::warn!(service = %self.name, server = %server.target.key.authority, error = %error, "upstream unreachable");
                Err(Failure::Unreachable)
            }
        }
    }

    fn pick(&self) -> Option<&Server> {
        if self.servers.is_empty() {
            return None;
        }
        let i = self.next.fetch_add(1, Ordering::Relaxed) % self.servers.len();
        self.servers.get(i)
    }
}

/// The host the caller asked for: the request target's authority (HTTP/2,
/// absolute form), else its `Host` header.
fn original_host(request: &Request<CallerBody>) -> Option<HeaderValue> {
    match request.uri().authority() {
        Some(authority) => HeaderValue::from_str(authority.as_str()).ok(),
        None => request.headers().get(header::HOST).cloned(),
    }
}

const X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");
const X_FORWARDED_PROTO: HeaderName = HeaderName::from_static("x-forwarded-proto");
const X_FORWARDED_HOST: HeaderName = HeaderName::from_static("x-forwarded-host");

fn set_forwarded(headers: &mut HeaderMap, origin: &Origin, host: Option<&HeaderValue>) {
    let forwarded_for = match headers.get(X_FORWARDED_FOR) {
        Some(previous) => {
            let mut joined = Vec::with_capacity(previous.len() + 2 + origin.client_ip.len());
            joined.extend_from_slice(previous.as_bytes());
            joined.extend_from_slice(b", ");
            joined.extend_from_slice(origin.client_ip.as_bytes());
            HeaderValue::from_bytes(&joined).ok()
        }
        None => Some(origin.client_ip.clone()),
    };
    if let Some(value) = forwarded_for {
        headers.insert(X_FORWARDED_FOR, value);
    }
    let proto = if origin.tls { "https" } else { "http" };
    headers.insert(X_FORWARDED_PROTO, HeaderValue::from_static(proto));
    if let Some(host) = host {
        headers.insert(X_FORWARDED_HOST, host.clone());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forwarded_headers_start_with_the_client() {
        let mut headers = HeaderMap::new();
        let origin = Origin::new("[::1]:5000".parse().unwrap(), false, false);
        set_forwarded(&mut headers, &origin, None);
        assert_eq!(headers["x-forwarded-for"], "::1");
        assert_eq!(headers["x-forwarded-proto"], "http");
        assert!(!headers.contains_key("x-forwarded-host"));
    }

    #[test]
    fn forwarded_headers_append_the_client() {
        let mut headers = HeaderMap::new();
        headers.insert("x-forwarded-for", HeaderValue::from_static("10.0.0.1"));
        let origin = Origin::new("127.0.0.1:5000".parse().unwrap(), true, true);
        set_forwarded(
            &mut headers,
            &origin,
            Some(&HeaderValue::from_static("api.example.com")),
        );
        assert_eq!(headers["x-forwarded-for"], "10.0.0.1, 127.0.0.1");
        assert_eq!(headers["x-forwarded-proto"], "https");
        assert_eq!(headers["x-forwarded-host"], "api.example.com");
    }

    #[test]
    fn servers_are_taken_in_turn() {
        let servers: Vec<Uri> = ["http://127.0.0.1:1", "http://127.0.0.1:2"]
            .iter()
            .map(|s| s.parse().unwrap())
            .collect();
        let connector = Arc::new(
            Connector::new(&crate::config::ServersTransport::default(), false, true).unwrap(),
        );
        let service = Service::new("s", &servers, true, &connector);
        let picks: Vec<String> = (0..4)
            .map(|_| service.pick().unwrap().target.key.authority.to_string())
            .collect();
        assert_eq!(
            picks,
            ["127.0.0.1:1", "127.0.0.1:2", "127.0.0.1:1", "127.0.0.1:2"]
        );
    }
}
