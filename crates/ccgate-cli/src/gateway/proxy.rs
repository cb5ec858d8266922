//! The reverse proxy to a service's servers: round robin, pooled
//! keep-alive connections, hop-by-hop headers removed, `X-Forwarded-*`
//! set, bodies streamed both ways.
//!
//! A request that meets a pooled connection the server had already closed
//! is sent again on a new connection: hyper's pool does this for requests
//! that were not yet written (`retry_canceled_requests`, on by default),
//! which is safe for every method.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use http::uri::{Authority, Scheme};
use http::{Request, Response, Uri};
use hyper::body::Incoming;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;

/// How long connecting to an upstream server may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// How long an idle pooled connection is kept.
const POOL_IDLE_TIMEOUT: Duration = Duration::from_secs(90);

/// The HTTP client shared by every service.
pub(crate) type UpstreamClient = Client<HttpConnector, Incoming>;

/// A client with pooled keep-alive connections.
pub(crate) fn client() -> UpstreamClient {
    let mut connector = HttpConnector::new();
    connector.set_connect_timeout(Some(CONNECT_TIMEOUT));
    connector.set_nodelay(true);
    Client::builder(TokioExecutor::new())
        .pool_idle_timeout(POOL_IDLE_TIMEOUT)
        .pool_max_idle_per_host(256)
        .build(connector)
}

/// A service: its servers, taken in turn.
#[derive(Debug)]
pub(crate) struct Service {
    name: String,
    servers: Vec<(Scheme, Authority)>,
    next: AtomicUsize,
    pass_host_header: bool,
}

/// Where the request came from, for `X-Forwarded-*`.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Origin {
    pub(crate) client: SocketAddr,
    pub(crate) tls: bool,
}

impl Service {
    /// A service over `servers` (absolute http URLs, checked at load).
    pub(crate) fn new(name: &str, servers: &[Uri], pass_host_header: bool) -> Self {
        let servers = servers
            .iter()
            .filter_map(|uri| Some((uri.scheme()?.clone(), uri.authority()?.clone())))
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
    /// `None` when the server cannot be reached (the caller answers 502).
    pub(crate) async fn forward(
        &self,
        client: &UpstreamClient,
        mut request: Request<Incoming>,
        origin: Origin,
    ) -> Option<Response<Incoming>> {
        let (scheme, authority) = self.pick()?;
        let original_host = request
            .uri()
            .authority()
            .map(|a| a.as_str().to_owned())
            .or_else(|| {
                request
                    .headers()
                    .get(header::HOST)
                    .and_then(|h| h.to_str().ok())
                    .map(str::to_owned)
            });
        let path_and_query = request.uri().path_and_query().map_or("/", |p| p.as_str());
        let uri = Uri::builder()
            .scheme(scheme.clone())
            .authority(authority.clone())
            .path_and_query(path_and_query)
            .build()
            .ok()?;
        *request.uri_mut() = uri;
        // The upstream connection is HTTP/1.1 whatever the caller spoke.
        *request.version_mut() = http::Version::HTTP_11;
        let headers = request.headers_mut();
        remove_hop_by_hop(headers);
        set_forwarded(headers, origin, original_host.as_deref());
        let host = match (&original_host, self.pass_host_header) {
            (Some(host), true) => HeaderValue::from_str(host).ok(),
            _ => HeaderValue::from_str(authority.as_str()).ok(),
        };
        if let Some(host) = host {
            headers.insert(header::HOST, host);
        }
        match client.request(request).await {
            Ok(mut response) => {
                remove_hop_by_hop(response.headers_mut());
                Some(response)
            }
            Err(error) => {
                tracing::warn!(service = %self.name, server = %authority, error = %error, "upstream unreachable");
                None
            }
        }
    }

    fn pick(&self) -> Option<&(Scheme, Authority)> {
        if self.servers.is_empty() {
            return None;
        }
        let i = self.next.fetch_add(1, Ordering::Relaxed) % self.servers.len();
        self.servers.get(i)
    }
}

/// Headers that describe one connection, not the message (RFC 9110 §7.6.1).
const HOP_BY_HOP: [HeaderName; 8] = [
    header::CONNECTION,
    HeaderName::from_static("keep-alive"),
    HeaderName::from_static("proxy-connection"),
    header::PROXY_AUTHENTICATE,
    header::PROXY_AUTHORIZATION,
    header::TE,
    header::TRAILER,
    header::UPGRADE,
];

/// Removes hop-by-hop headers, including those `Connection` names.
/// `Transfer-Encoding` is left to hyper, which frames bodies itself.
pub(crate) fn remove_hop_by_hop(headers: &mut HeaderMap) {
    let named: Vec<HeaderName> = headers
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|name| HeaderName::from_bytes(name.trim().as_bytes()).ok())
        .collect();
    for name in named.iter().chain(HOP_BY_HOP.iter()) {
        headers.remove(name);
    }
}

fn set_forwarded(headers: &mut HeaderMap, origin: Origin, host: Option<&str>) {
    let client_ip = origin.client.ip().to_string();
    let forwarded_for = match headers.get("x-forwarded-for").and_then(|v| v.to_str().ok()) {
        Some(previous) => format!("{previous}, {client_ip}"),
        None => client_ip,
    };
    if let Ok(value) = HeaderValue::from_str(&forwarded_for) {
        headers.insert("x-forwarded-for", value);
    }
    let proto = if origin.tls { "https" } else { "http" };
    headers.insert("x-forwarded-proto", HeaderValue::from_static(proto));
    if let Some(value) = host.and_then(|h| HeaderValue::from_str(h).ok()) {
        headers.insert("x-forwarded-host", value);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hop_by_hop_headers_and_those_connection_names_are_removed() {
        let mut headers = HeaderMap::new();
        headers.insert(
            header::CONNECTION,
            HeaderValue::from_static("keep-alive, x-private"),
        );
        headers.insert("keep-alive", HeaderValue::from_static("timeout=5"));
        headers.insert("x-private", HeaderValue::from_static("1"));
        headers.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
        headers.insert("x-kept", HeaderValue::from_static("1"));
        remove_hop_by_hop(&mut headers);
        assert_eq!(
            headers.keys().map(HeaderName::as_str).collect::<Vec<_>>(),
            ["x-kept"]
        );
    }

    #[test]
    fn forwarded_headers_append_the_client() {
        let mut headers = HeaderMap::new();
        headers.insert("x-forwarded-for", HeaderValue::from_static("10.0.0.1"));
        let origin = Origin {
            client: "127.0.0.1:5000".parse().unwrap(),
            tls: true,
        };
        set_forwarded(&mut headers, origin, Some("api.example.com"));
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
        let service = Service::new("s", &servers, true);
        let picks: Vec<String> = (0..4)
            .map(|_| service.pick().unwrap().1.to_string())
            .collect();
        assert_eq!(
            picks,
            ["127.0.0.1:1", "127.0.0.1:2", "127.0.0.1:1", "127.0.0.1:2"]
        );
    }
}
