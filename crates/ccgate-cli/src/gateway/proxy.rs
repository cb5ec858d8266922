//! The reverse proxy to a service's servers: smooth weighted round robin
//! over the healthy servers, the next server when one cannot be reached
//! (no byte written), hop-by-hop headers removed, `X-Forwarded-*` set,
//! bodies streamed both ways, over the worker's pooled keep-alive
//! connections ([`super::upstream`]), or for a WebSocket handshake over a
//! connection of its own ([`super::websocket`]).

use std::net::SocketAddr;
use std::pin::pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use ccgate::middleware::Recall;
use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use http::uri::{Authority, PathAndQuery};
use http::{Request, Response, Uri};

use super::connector::{Connector, Target};
use super::metrics::{GatewayMetrics, ServerMetrics};
use super::transport::CallerBody;
use super::upstream::{RequestBody, SendError, UpstreamBody, UpstreamError, UpstreamPool};
use super::websocket;
use crate::config::HealthCheck;
use crate::edge::hop_by_hop::remove_hop_by_hop;

/// A service: its servers, their weights laid out as a rotation, and
/// their health.
#[derive(Debug)]
pub(crate) struct Service {
    name: String,
    servers: Box<[Server]>,
    /// Indexes into `servers`, in smooth weighted round robin order (as
    /// nginx's), laid out once per configuration: a pick is one atomic
    /// increment.
    rotation: Box<[u32]>,
    next: AtomicUsize,
    pass_host_header: bool,
    health_check: Option<HealthCheck>,
}

/// One of a service's servers.
#[derive(Debug)]
pub(crate) struct Server {
    /// How the pool reaches it (authority, scheme, transport).
    pub(crate) target: Target,
    /// `Host` for this server when the caller's is not passed on.
    host: HeaderValue,
    /// `scheme://authority` as configured: the metrics' and logs' label.
    pub(crate) url: String,
    /// The URL as configured, for the health checks.
    pub(crate) uri: Uri,
    /// Set by the health check; true until a check fails.
    healthy: AtomicBool,
    pub(crate) metrics: ServerMetrics,
}

impl Server {
    /// Whether the server is in the rotation.
    pub(crate) fn is_healthy(&self) -> bool {
        self.healthy.load(Ordering::Relaxed)
    }

    /// Records a health check's verdict; returns the previous one.
    pub(crate) fn set_healthy(&self, healthy: bool) -> bool {
        self.metrics.set_up(healthy);
        self.healthy.swap(healthy, Ordering::Relaxed)
    }
}

/// Why a request got no answer from the service: the caller gets 502,
/// 503 or 504; the detail went to the log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Failure {
    /// No server could be reached (TCP, TLS) or the exchange failed: 502.
    Unreachable,
    /// No response head within `responseHeaderTimeout`: 504.
    Timeout,
    /// Every server is out of the rotation (failed health checks): 503.
    NoHealthyServer,
}

/// What [`Service::forward`] came back with.
#[derive(Debug)]
pub(crate) struct Forwarded {
    /// The server's response, or why there is none.
    pub(crate) answer: Result<Response<UpstreamBody>, Failure>,
    /// From the first attempt's send to the answer or the last failure
    /// (failovers included): the access log's `OriginDuration`; zero when
    /// no server was tried.
    pub(crate) took: Duration,
}

impl Forwarded {
    /// No server was tried.
    fn unsent(failure: Failure) -> Self {
        Self {
            answer: Err(failure),
            took: Duration::ZERO,
        }
    }

    /// `answer`, the first attempt having started at `sent`.
    fn since(sent: Instant, answer: Result<Response<UpstreamBody>, Failure>) -> Self {
        Self {
            answer,
            took: sent.elapsed(),
        }
    }
}

/// The caller connection a request came on: where from (for
/// `X-Forwarded-*` and `X-Real-Ip`), and its last grant (`recall`).
#[derive(Debug)]
pub(crate) struct Origin {
    pub(crate) client: SocketAddr,
    pub(crate) tls: bool,
    /// Whether the client's forwarded headers are believed (the entry
    /// point's `forwardedHeaders`), decided once per connection.
    pub(crate) trusted: bool,
    /// The client's IP address, formatted once per connection.
    pub(crate) client_ip: HeaderValue,
    /// The connection's last grant of a middleware, for its next request
    /// with the same credentials ([`ccgate::middleware::Recall`]).
    pub(crate) recall: Recall,
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
            recall: Recall::default(),
        }
    }
}

impl Service {
    /// The service `name` of the configuration (servers: absolute `http`
    /// or `https` URLs, checked at load), reached through `connector`,
    /// counting into `metrics`. Servers of weight 0 are left out. A
    /// server that `previous` (the service of the configuration before a
    /// reload) had with the same health check keeps its health.
    pub(crate) fn new(
        name: &str,
        config: &crate::config::Service,
        connector: &Arc<Connector>,
        metrics: &GatewayMetrics,
        previous: Option<&Self>,
    ) -> Self {
        let same_check = previous.is_some_and(|p| p.health_check == config.health_check);
        let (servers, weights): (Vec<Server>, Vec<u32>) = config
            .servers
            .iter()
            .zip(&config.weights)
            .filter(|(_, weight)| **weight > 0)
            .filter_map(|(uri, weight)| {
                let authority: &Authority = uri.authority()?;
                let url = format!("{}://{authority}", uri.scheme_str().unwrap_or("http"));
                let healthy = previous
                    .filter(|_| same_check)
                    .and_then(|p| p.servers.iter().find(|s| s.url == url))
                    .is_none_or(Server::is_healthy);
                let metrics = metrics.server(name, &url);
                metrics.set_up(healthy);
                let server = Server {
                    host: HeaderValue::from_str(authority.as_str()).ok()?,
                    target: connector.target(uri)?,
                    uri: uri.clone(),
                    url,
                    healthy: AtomicBool::new(healthy),
                    metrics,
                };
                Some((server, *weight))
            })
            .unzip();
        Self {
            name: name.to_owned(),
            rotation: rotation(&weights),
            servers: servers.into_boxed_slice(),
            next: AtomicUsize::new(0),
            pass_host_header: config.pass_host_header,
            health_check: config.health_check.clone(),
        }
    }

    /// Its name.
    pub(crate) fn name(&self) -> &str {
        &self.name
    }

    /// Its servers in the rotation (weight above 0).
    pub(crate) fn servers(&self) -> &[Server] {
        &self.servers
    }

    /// `loadBalancer.healthCheck`.
    pub(crate) fn health_check(&self) -> Option<&HealthCheck> {
        self.health_check.as_ref()
    }

    /// Sends `request` to the next healthy server and returns its
    /// response, or why there is none (the caller answers 502, 503 or
    /// 504; the reason is logged here, never sent), with the time the
    /// servers took. A server that cannot be reached before any byte of
    /// the request is written to it (TCP refused, dial timeout, TLS
    /// failure) is passed over for the next healthy one, each server tried
    /// at most once: the request is then answered as the last failure says.
    pub(crate) async fn forward(
        &self,
        upstream: &Arc<UpstreamPool>,
        mut request: Request<CallerBody>,
        origin: &Origin,
    ) -> Forwarded {
        let Some((mut turn, mut index)) = self.pick() else {
            return Forwarded::unsent(Failure::NoHealthyServer);
        };
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
        set_forwarded(request.headers_mut(), origin, original_host.as_ref());
        let host_for = |server: &Server| match &original_host {
            Some(host) if self.pass_host_header => host.clone(),
            _ => server.host.clone(),
        };
        if let Some(upgrade) = websocket::Upgrade::take(&mut request) {
            // A WebSocket handshake: one server, on a connection of its own.
            let Some(server) = self.servers.get(index) else {
                return Forwarded::unsent(Failure::Unreachable);
            };
            request.headers_mut().insert(header::HOST, host_for(server));
            let sent = Instant::now();
            // Boxed: this rare path's future (a connect) would grow every
            // request's, which hyper moves once per request.
            return match Box::pin(upgrade.forward(&server.target, request)).await {
                Ok(mut response) => {
                    let took = sent.elapsed();
                    server.metrics.answered(response.status().as_u16(), took);
                    remove_hop_by_hop(response.headers_mut());
                    websocket::restore_switch(&mut response);
                    Forwarded {
                        answer: Ok(response),
                        took,
                    }
                }
                Err(error) => Forwarded::since(sent, Err(self.failed(server, &error))),
            };
        }
        let mut request = request.map(RequestBody::Caller);
        // Servers passed over; allocated only on a failover.
        let mut tried = Vec::new();
        // The clock is read when the first attempt starts and when the
        // answer comes: the log's time to the answer and the histogram's
        // (per attempt) share those readings.
        let first_sent = Instant::now();
        let mut sent = first_sent;
        loop {
            let Some(server) = self.servers.get(index) else {
                return Forwarded::since(first_sent, Err(Failure::Unreachable));
            };
            request.headers_mut().insert(header::HOST, host_for(server));
            match pin!(upstream.try_send(&server.target, request, sent)).await {
                // A 101 to a request that asked for no upgrade: 502.
                Ok(response) => match websocket::refuse_unasked(response) {
                    Ok(mut response) => {
                        let answered = Instant::now();
                        let latency = answered.duration_since(sent);
                        server.metrics.answered(response.status().as_u16(), latency);
                        // Never a 101 here: no upgrade headers to restore.
                        remove_hop_by_hop(response.headers_mut());
                        let took = if tried.is_empty() {
                            latency
                        } else {
                            answered.duration_since(first_sent)
                        };
                        return Forwarded {
                            answer: Ok(response),
                            took,
                        };
                    }
                    Err(error) => {
                        return Forwarded::since(first_sent, Err(self.failed(server, &error)));
                    }
                },
                Err(SendError {
                    error,
                    unsent: Some(unsent),
                }) => {
                    server.metrics.failed(502);
                    tried.push(index);
                    let Some((next_turn, next)) = self.scan(turn + 1, &tried) else {
                        tracing::warn!(service = %self.name, server = %server.target.key.authority, error = %error, "upstream unreachable");
                        return Forwarded::since(first_sent, Err(Failure::Unreachable));
                    };
                    tracing::warn!(service = %self.name, server = %server.target.key.authority, error = %error, "upstream unreachable; trying the next server");
                    (turn, index) = (next_turn, next);
                    request = unsent;
                    sent = Instant::now();
                }
                Err(SendError { error, .. }) => {
                    return Forwarded::since(first_sent, Err(self.failed(server, &error)));
                }
            }
        }
    }

    /// `error` from `server`, logged and counted: 504 for a response
    /// head too late, else 502.
    fn failed(&self, server: &Server, error: &UpstreamError) -> Failure {
        let server_name = &server.target.key.authority;
        if error.is_timeout() {
            server.metrics.failed(504);
            tracing::warn!(service = %self.name, server = %server_name, error = %error, "upstream timed out");
            Failure::Timeout
        } else {
            server.metrics.failed(502);
            tracing::warn!(service = %self.name, server = %server_name, error = %error, "upstream unreachable");
            Failure::Unreachable
        }
    }

    /// The next turn of the rotation that a healthy server has: the
    /// turn and the server. A server out of the rotation gives its turns
    /// to the next healthy ones.
    fn pick(&self) -> Option<(usize, usize)> {
        let len = self.rotation.len();
        if len == 0 {
            return None;
        }
        self.scan(self.next.fetch_add(1, Ordering::Relaxed) % len, &[])
    }

    /// From turn `start` on, the first turn of a healthy server not in
    /// `tried` (a failover takes no new turn: the next request's pick is
    /// not skewed by it).
    fn scan(&self, start: usize, tried: &[usize]) -> Option<(usize, usize)> {
        let len = self.rotation.len();
        (0..len)
            .map(|k| (start + k) % len)
            .map(|turn| (turn, self.rotation[turn] as usize))
            .find(|&(_, i)| self.servers[i].is_healthy() && !tried.contains(&i))
    }
}

/// Smooth weighted round robin (nginx's `ngx_http_upstream_get_peer`), laid
/// out for one full cycle: each turn every server gains its weight, the
/// one with the most credit is picked and pays the total. Weights are
/// divided by their greatest common divisor first, so the cycle is as
/// short as it can be (at most the sum of the weights, each ≤ 1000).
fn rotation(weights: &[u32]) -> Box<[u32]> {
    fn gcd(a: u32, b: u32) -> u32 {
        if b == 0 { a } else { gcd(b, a % b) }
    }
    let divisor = weights.iter().copied().fold(0, gcd).max(1);
    let weights: Vec<i64> = weights.iter().map(|w| i64::from(w / divisor)).collect();
    let total: i64 = weights.iter().sum();
    let mut credit = vec![0_i64; weights.len()];
    (0..total)
        .filter_map(|_| {
            for (credit, weight) in credit.iter_mut().zip(&weights) {
                *credit += weight;
            }
            let (best, _) = credit
                .iter()
                .enumerate()
                .max_by(|(i, a), (j, b)| a.cmp(b).then(j.cmp(i)))?;
            credit[best] -= total;
            u32::try_from(best).ok()
        })
        .collect()
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

    fn service(yaml_servers: &str) -> Service {
        let config = crate::gateway::testing::config(&format!(
            "entryPoints:\n  web: {{address: '127.0.0.1:1'}}\n\
             http:\n  services:\n    s: {{loadBalancer: {{servers: [{yaml_servers}]}}}}\n"
        ));
        let connector = Arc::new(
            Connector::new(&crate::config::ServersTransport::default(), false, true).unwrap(),
        );
        let metrics = GatewayMetrics::new();
        Service::new("s", &config.http.services["s"], &connector, &metrics, None)
    }

    fn picks(service: &Service, n: usize) -> Vec<String> {
        (0..n)
            .map(|_| {
                let (_, i) = service.pick().expect("a server");
                service.servers[i]
                    .target
                    .key
                    .authority
                    .port()
                    .unwrap()
                    .to_string()
            })
            .collect()
    }

    #[test]
    fn servers_are_taken_in_turn() {
        let service = service("{url: 'http://127.0.0.1:1'}, {url: 'http://127.0.0.1:2'}");
        assert_eq!(picks(&service, 4), ["1", "2", "1", "2"]);
    }

    #[test]
    fn weights_are_smooth_as_nginx_does_them() {
        // nginx's documented example: weights 5, 1, 1 give a a b a c a a.
        assert_eq!(*rotation(&[5, 1, 1]), [0, 0, 1, 0, 2, 0, 0]);
        assert_eq!(*rotation(&[3, 1]), [0, 0, 1, 0]);
        // Divided by the common divisor: a cycle of 4, not 400.
        assert_eq!(*rotation(&[300, 100]), [0, 0, 1, 0]);
        assert_eq!(rotation(&[1000, 999, 1]).len(), 2000);
        let service = service(
            "{url: 'http://127.0.0.1:1', weight: 3}, {url: 'http://127.0.0.1:2'}, \
             {url: 'http://127.0.0.1:3', weight: 0}",
        );
        assert_eq!(
            service.servers().len(),
            2,
            "weight 0 is out of the rotation"
        );
        assert_eq!(picks(&service, 8), ["1", "1", "2", "1", "1", "1", "2", "1"]);
    }

    #[test]
    fn unhealthy_servers_are_passed_over() {
        let service = service(
            "{url: 'http://127.0.0.1:1'}, {url: 'http://127.0.0.1:2'}, {url: 'http://127.0.0.1:3'}",
        );
        service.servers[1].set_healthy(false);
        assert_eq!(picks(&service, 4), ["1", "3", "3", "1"]);
        assert_eq!(
            service.scan(0, &[0, 2]),
            None,
            "tried servers are not picked again"
        );
        assert_eq!(
            service.scan(1, &[0]),
            Some((2, 2)),
            "the turn after 1 is 2's"
        );
        service.servers[0].set_healthy(false);
        service.servers[2].set_healthy(false);
        assert_eq!(service.pick(), None);
        service.servers[1].set_healthy(true);
        assert_eq!(picks(&service, 2), ["2", "2"]);
    }
}
