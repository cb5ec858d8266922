//! One request through the gateway: `/ping` and `/metrics`, routing, the
//! router's middlewares, then the service (or forward-auth), and the
//! access log.

use std::pin::pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant, SystemTime};

use arc_swap::ArcSwap;
use bytes::Bytes;
use http::{HeaderValue, Method, Request, Response, StatusCode, header};
use http_body_util::{Either, Full};

use super::access_log::{AccessLog, Record};
use super::metrics::{CONTENT_TYPE, GatewayMetrics, StatusCounters};
use super::proxy::{Failure, Origin};
use super::routing::{Route, Routing, Target};
use super::transport::CallerBody;
use super::upstream::{UpstreamBody, UpstreamPool};
use crate::edge::{self, EdgeRules};

/// What the gateway answers with: the upstream's streamed body, or its own.
pub(crate) type Body = Either<UpstreamBody, Full<Bytes>>;

/// Everything requests share.
#[derive(Debug)]
pub(crate) struct Gateway {
    pub(crate) routing: ArcSwap<Routing>,
    pub(crate) metrics: Arc<GatewayMetrics>,
    pub(crate) ping: Option<String>,
    /// Whether `/ping` answers 200: false until the Kubernetes provider
    /// (when on) has done its first lists (SPEC §12).
    pub(crate) ready: AtomicBool,
    pub(crate) metrics_entry_point: Option<String>,
    pub(crate) access_log: Option<AccessLog>,
    pub(crate) unrouted: StatusCounters,
}

/// What the access log needs of a request, taken before it is answered.
struct Received {
    at: SystemTime,
    started: Instant,
    method: Method,
    path: String,
    host: String,
    protocol: &'static str,
}

impl Received {
    fn of(request: &Request<CallerBody>) -> Self {
        Self {
            at: SystemTime::now(),
            started: Instant::now(),
            method: request.method().clone(),
            path: request.uri().path().to_owned(),
            host: crate::rule::host_of(request.uri(), request.headers())
                .unwrap_or_default()
                .to_owned(),
            protocol: protocol_name(request.version()),
        }
    }
}

/// The route a request took, for the log.
#[derive(Default)]
struct Taken {
    route: Option<Arc<Route>>,
    username: Option<Arc<str>>,
    origin_status: u16,
    origin_duration: Duration,
}

fn protocol_name(version: http::Version) -> &'static str {
    match version {
        http::Version::HTTP_09 => "HTTP/0.9",
        http::Version::HTTP_10 => "HTTP/1.0",
        http::Version::HTTP_2 => "HTTP/2.0",
        http::Version::HTTP_3 => "HTTP/3.0",
        _ => "HTTP/1.1",
    }
}

fn text(status: StatusCode, body: &'static str) -> Response<Body> {
    let mut response = Response::new(Either::Right(Full::new(Bytes::from_static(
        body.as_bytes(),
    ))));
    *response.status_mut() = status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    response
}

/// An answer ccgate makes itself: `text`, or for a gRPC call the
/// trailers-only gRPC status standing for `status` (SPEC §2.6).
fn own(status: StatusCode, body: &'static str, grpc: bool) -> Response<Body> {
    if grpc {
        return ccgate::grpc::trailers_only(status, body).map(Either::Right);
    }
    text(status, body)
}

impl Gateway {
    /// The gateway of `config` with `routing` compiled from it, counting
    /// into `metrics`, logging requests to `access_log` if any.
    pub(crate) fn new(
        config: &crate::config::Config,
        routing: Routing,
        metrics: &Arc<GatewayMetrics>,
        access_log: Option<AccessLog>,
    ) -> Self {
        Self {
            routing: ArcSwap::from_pointee(routing),
            unrouted: metrics.requests(""),
            metrics: Arc::clone(metrics),
            ping: config.ping.clone(),
            ready: AtomicBool::new(config.kubernetes.is_none()),
            metrics_entry_point: config.metrics.clone(),
            access_log,
        }
    }

    /// Answers `request`, received on `entry_point` (whose edge rules are
    /// `edge`) from `origin`; a service's servers are reached through the
    /// worker's `upstream` pool.
    pub(crate) async fn handle(
        &self,
        upstream: &Arc<UpstreamPool>,
        entry_point: &str,
        edge: &EdgeRules,
        origin: &Origin,
        request: Request<CallerBody>,
    ) -> Response<Body> {
        let mut taken = Taken::default();
        let received = self.access_log.as_ref().map(|_| Received::of(&request));
        // Awaited through a pin (here and down to the pool): `.await` on
        // the future itself moves all of it once more.
        let response =
            pin!(self.respond(upstream, entry_point, edge, origin, request, &mut taken)).await;
        if let (Some(log), Some(received)) = (&self.access_log, received) {
            log.log(&Record {
                start: received.at,
                client: origin.client,
                username: taken.username.as_deref(),
                method: received.method.as_str(),
                host: &received.host,
                path: &received.path,
                protocol: received.protocol,
                scheme: if origin.tls { "https" } else { "http" },
                entry_point,
                router: taken.route.as_ref().map(|route| route.name.as_str()),
                service: taken.route.as_ref().map(|route| route.target.name()),
                status: response.status().as_u16(),
                origin_status: taken.origin_status,
                duration: received.started.elapsed(),
                origin_duration: taken.origin_duration,
            });
        }
        response
    }

    async fn respond(
        &self,
        upstream: &Arc<UpstreamPool>,
        entry_point: &str,
        edge: &EdgeRules,
        origin: &Origin,
        request: Request<CallerBody>,
        taken: &mut Taken,
    ) -> Response<Body> {
        // The edge rules first: everything after sees the normalised head.
        let (mut parts, body) = request.into_parts();
        // A gRPC caller gets ccgate's own answers as gRPC statuses.
        let grpc = ccgate::grpc::is_grpc(&parts.headers);
        if let Err(refusal) = edge::admit(&mut parts, edge, origin.trusted, &origin.client_ip) {
            self.unrouted.inc(400);
            return own(StatusCode::BAD_REQUEST, refusal.reason(), grpc);
        }
        let path = parts.uri.path();
        let readable = matches!(parts.method, Method::GET | Method::HEAD);
        if readable && path == "/ping" && self.ping.as_deref() == Some(entry_point) {
            if !self.ready.load(Ordering::Acquire) {
                return text(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "not ready: the Kubernetes provider has not listed every watched kind yet\n",
                );
            }
            return text(StatusCode::OK, "OK");
        }
        if readable
            && path == "/metrics"
            && self.metrics_entry_point.as_deref() == Some(entry_point)
        {
            let mut response =
                Response::new(Either::Right(Full::new(Bytes::from(self.metrics.encode()))));
            response
                .headers_mut()
                .insert(header::CONTENT_TYPE, HeaderValue::from_static(CONTENT_TYPE));
            return response;
        }
        // In-flight requests keep the routing they started with across a reload.
        let routing = self.routing.load_full();
        let Some(route) = routing.route(entry_point, &parts) else {
            self.unrouted.inc(404);
            return own(StatusCode::NOT_FOUND, "404 page not found\n", grpc);
        };
        taken.route = Some(Arc::clone(route));
        if route.unavailable.is_some() {
            route.requests.inc(503);
            return own(
                StatusCode::SERVICE_UNAVAILABLE,
                "service unavailable: a middleware of this router does not exist (yet)\n",
                grpc,
            );
        }
        let mut grants = Vec::with_capacity(route.middlewares.len());
        for middleware in &route.middlewares {
            match middleware
                .authorize_on(&parts.headers, &origin.recall)
                .await
            {
                Ok(grant) => {
                    grant.apply(&mut parts.headers);
                    if let Some(username) = grant.username() {
                        taken.username = Some(Arc::clone(username));
                    }
                    grants.push((middleware, grant));
                }
                Err(denial) => {
                    let response = denial.response_to(&parts.headers).map(Either::Right);
                    route.requests.inc(response.status().as_u16());
                    return response;
                }
            }
        }
        let response = match &route.target {
            Target::ForwardAuth => {
                let mut response = text(StatusCode::OK, "");
                // It carries a token: no cache may keep it (RFC 6749 §5.1).
                response
                    .headers_mut()
                    .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
                for (_, grant) in &grants {
                    response
                        .headers_mut()
                        .insert(header::AUTHORIZATION, grant.authorization().clone());
                    for (name, value) in grant.forward_headers() {
                        response.headers_mut().append(name.clone(), value.clone());
                    }
                }
                response
            }
            Target::Service(service) => {
                // The time to the answer as `forward` measured it for the
                // metrics: no clock reading of its own.
                let forwarded =
                    pin!(service.forward(upstream, Request::from_parts(parts, body), origin)).await;
                taken.origin_duration = forwarded.took;
                match forwarded.answer {
                    Ok(response) => {
                        taken.origin_status = response.status().as_u16();
                        if response.status() == StatusCode::UNAUTHORIZED {
                            for (middleware, grant) in &grants {
                                // Boxed: this rare path's future (a Redis
                                // delete) made every request's future
                                // 10 KB, which hyper moves once per request.
                                Box::pin(middleware.upstream_rejected(grant)).await;
                            }
                        }
                        response.map(Either::Left)
                    }
                    Err(Failure::Unreachable) => own(
                        StatusCode::BAD_GATEWAY,
                        "bad gateway: the upstream server is unreachable\n",
                        grpc,
                    ),
                    Err(Failure::Timeout) => own(
                        StatusCode::GATEWAY_TIMEOUT,
                        "gateway timeout: the upstream server did not answer in time\n",
                        grpc,
                    ),
                    Err(Failure::NoHealthyServer) => own(
                        StatusCode::SERVICE_UNAVAILABLE,
                        "service unavailable: no healthy upstream server\n",
                        grpc,
                    ),
                }
            }
        };
        route.requests.inc(response.status().as_u16());
        response
    }
}

#[cfg(test)]
mod tests {
    use crate::gateway::testing::{self, exchange, status};

    const CONFIG: &str = "\
entryPoints:
  web: {address: '127.0.0.1:1'}
  internal: {address: '127.0.0.1:2'}
ping: {entryPoint: internal}
metrics: {prometheus: {entryPoint: internal}}
http:
  routers:
    auth: {rule: 'PathPrefix(`/auth`)', service: forward-auth@internal, entryPoints: [web]}
    dead: {rule: 'PathPrefix(`/dead`)', service: dead, entryPoints: [web]}
  services:
    dead: {loadBalancer: {servers: [{url: 'http://127.0.0.1:1'}]}}
";

    fn get(path: &str) -> String {
        format!("GET {path} HTTP/1.1\r\nHost: example.com\r\nConnection: close\r\n\r\n")
    }

    #[tokio::test]
    async fn ping_and_metrics_answer_on_their_entry_point_only() {
        let gateway = testing::serve(&testing::config(CONFIG));
        let internal = gateway.address("internal");
        let web = gateway.address("web");
        let ping = exchange(internal, &get("/ping")).await;
        assert_eq!(status(&ping), 200, "{ping}");
        assert!(ping.ends_with("OK"), "{ping}");
        let metrics = exchange(internal, &get("/metrics")).await;
        assert_eq!(status(&metrics), 200, "{metrics}");
        assert!(
            metrics.contains("application/openmetrics-text"),
            "{metrics}"
        );
        assert_eq!(status(&exchange(web, &get("/ping")).await), 404);
        assert_eq!(status(&exchange(web, &get("/metrics")).await), 404);
        let post =
            "POST /ping HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\nConnection: close\r\n\r\n";
        assert_eq!(
            status(&exchange(internal, post).await),
            404,
            "only GET and HEAD"
        );
    }

    #[tokio::test]
    async fn a_grpc_call_gets_ccgates_own_answers_as_grpc_statuses() {
        let gateway = testing::serve(&testing::config(CONFIG));
        let grpc = |path: &str| {
            format!(
                "POST {path} HTTP/1.1\r\nHost: example.com\r\nContent-Type: application/grpc\r\n\
                 Content-Length: 0\r\nConnection: close\r\n\r\n"
            )
        };
        for (path, code) in [("/nowhere", "12"), ("/dead", "14"), ("/a%2Fb", "13")] {
            let answer = exchange(gateway.address("web"), &grpc(path)).await;
            assert_eq!(status(&answer), 200, "{answer}");
            assert!(
                answer.contains(&format!("grpc-status: {code}\r\n")),
                "{path}: {answer}"
            );
            assert!(
                answer.contains("content-type: application/grpc\r\n"),
                "{answer}"
            );
        }
    }

    #[tokio::test]
    async fn an_unrouted_request_is_404_and_counted() {
        let gateway = testing::serve(&testing::config(CONFIG));
        let answer = exchange(gateway.address("web"), &get("/nowhere")).await;
        assert_eq!(status(&answer), 404);
        assert!(answer.ends_with("404 page not found\n"), "{answer}");
        let metrics = exchange(gateway.address("internal"), &get("/metrics")).await;
        assert!(
            metrics.contains(r#"ccgate_requests_total{router="",status="404"} 1"#),
            "{metrics}"
        );
    }

    #[tokio::test]
    async fn forward_auth_without_middlewares_answers_200_that_no_cache_keeps() {
        let gateway = testing::serve(&testing::config(CONFIG));
        let answer = exchange(gateway.address("web"), &get("/auth")).await;
        assert_eq!(status(&answer), 200, "{answer}");
        assert!(
            answer
                .to_ascii_lowercase()
                .contains("cache-control: no-store"),
            "{answer}"
        );
    }

    #[tokio::test]
    async fn an_unreachable_upstream_is_502_without_transport_details() {
        let gateway = testing::serve(&testing::config(CONFIG));
        let answer = exchange(gateway.address("web"), &get("/dead")).await;
        assert_eq!(status(&answer), 502, "{answer}");
        assert!(!answer.contains("127.0.0.1"), "{answer}");
        assert!(!answer.to_ascii_lowercase().contains("refused"), "{answer}");
    }
}
