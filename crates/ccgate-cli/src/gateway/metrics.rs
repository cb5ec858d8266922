//! The gateway's Prometheus registry: the middleware families of the
//! library plus `ccgate_requests_total{router, status}`,
//! `ccgate_access_log_dropped_total`, and per upstream server
//! `ccgate_upstream_requests_total{service, server, code}`,
//! `ccgate_upstream_response_seconds{service, server}` (time to the
//! response head) and `ccgate_upstream_server_up{service, server}`.
//!
//! Label values come from the configuration only (router, service and
//! server URL as written, which holds no credentials: the loader refuses
//! them), never from a request, so the number of series is bounded by
//! the configuration.

use std::sync::OnceLock;
use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ServerLabels {
    service: String,
    server: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct UpstreamLabels {
    service: String,
    server: String,
    code: u16,
}

/// Upstream latency buckets: 1 ms to about 33 s, doubling (16 buckets).
fn latency_histogram() -> Histogram {
    Histogram::new(exponential_buckets(0.001, 2.0, 16))
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    router: String,
    status: u16,
}

/// Every metric the gateway exports.
#[derive(Debug)]
pub(crate) struct GatewayMetrics {
    registry: Registry,
    middleware: ccgate::metrics::Metrics,
    requests: Family<RequestLabels, Counter>,
    access_log_dropped: Counter,
    upstream_requests: Family<UpstreamLabels, Counter>,
    upstream_latency: Family<ServerLabels, Histogram, fn() -> Histogram>,
    server_up: Family<ServerLabels, Gauge>,
}

/// `OpenMetrics` text, as `/metrics` answers it.
pub(crate) const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

impl GatewayMetrics {
    pub(crate) fn new() -> Self {
        let mut registry = Registry::default();
        let middleware = ccgate::metrics::Metrics::register(&mut registry);
        let requests = Family::<RequestLabels, Counter>::default();
        registry.register(
            "ccgate_requests",
            "HTTP requests answered, by router and status",
            requests.clone(),
        );
        let access_log_dropped = Counter::default();
        registry.register(
            "ccgate_access_log_dropped",
            "Access log records dropped because the log's queue was full (a stalled writer)",
            access_log_dropped.clone(),
        );
        let upstream_requests = Family::<UpstreamLabels, Counter>::default();
        registry.register(
            "ccgate_upstream_requests",
            "Requests sent to upstream servers, by service, server and status code (a request \
             no server answered counts with the status ccgate answered: 502 or 504)",
            upstream_requests.clone(),
        );
        let upstream_latency: Family<ServerLabels, Histogram, fn() -> Histogram> =
            Family::new_with_constructor(latency_histogram);
        registry.register(
            "ccgate_upstream_response_seconds",
            "Time from sending a request to an upstream server to its response head",
            upstream_latency.clone(),
        );
        let server_up = Family::<ServerLabels, Gauge>::default();
        registry.register(
            "ccgate_upstream_server_up",
            "Whether an upstream server is in the rotation (1) or taken out by its health \
             check (0)",
            server_up.clone(),
        );
        Self {
            registry,
            middleware,
            requests,
            access_log_dropped,
            upstream_requests,
            upstream_latency,
            server_up,
        }
    }

    /// The metrics of `server` (its URL as configured) of `service`,
    /// resolved once per configuration; the server counts as up.
    pub(crate) fn server(&self, service: &str, server: &str) -> ServerMetrics {
        let labels = ServerLabels {
            service: service.to_owned(),
            server: server.to_owned(),
        };
        let up = self.server_up.get_or_create(&labels).clone();
        up.set(1);
        ServerMetrics {
            family: self.upstream_requests.clone(),
            latency: self.upstream_latency.get_or_create(&labels).clone(),
            up,
            by_code: (0..600).map(|_| OnceLock::new()).collect(),
            labels,
        }
    }

    /// Drops the health gauge and latency histogram of a server no longer
    /// configured (its request counters stay, as counters do).
    pub(crate) fn forget_server(&self, service: &str, server: &str) {
        let labels = ServerLabels {
            service: service.to_owned(),
            server: server.to_owned(),
        };
        self.server_up.remove(&labels);
        self.upstream_latency.remove(&labels);
    }

    /// Counts access log records dropped for want of room.
    pub(crate) fn access_log_dropped(&self) -> Counter {
        self.access_log_dropped.clone()
    }

    /// The families middlewares count into.
    pub(crate) fn middleware(&self) -> &ccgate::metrics::Metrics {
        &self.middleware
    }

    /// Request counters of `router` (empty: requests no router matched).
    pub(crate) fn requests(&self, router: &str) -> StatusCounters {
        StatusCounters {
            family: self.requests.clone(),
            router: router.to_owned(),
            by_status: (0..600).map(|_| OnceLock::new()).collect(),
        }
    }

    /// The registry as `OpenMetrics` text.
    pub(crate) fn encode(&self) -> String {
        let mut text = String::new();
        // Writing to a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut text, &self.registry);
        text
    }
}

/// One router's counters by status; each is looked up in the family once,
/// at its first use, then counted without locking.
#[derive(Debug)]
pub(crate) struct StatusCounters {
    family: Family<RequestLabels, Counter>,
    router: String,
    by_status: Box<[OnceLock<Counter>]>,
}

impl StatusCounters {
    pub(crate) fn inc(&self, status: u16) {
        let Some(slot) = self.by_status.get(usize::from(status)) else {
            return;
        };
        slot.get_or_init(|| {
            let labels = RequestLabels {
                router: self.router.clone(),
                status,
            };
            self.family.get_or_create(&labels).clone()
        })
        .inc();
    }
}

/// One upstream server's metrics; each status code's counter is looked
/// up in the family at its first use, then counted without locking.
#[derive(Debug)]
pub(crate) struct ServerMetrics {
    family: Family<UpstreamLabels, Counter>,
    labels: ServerLabels,
    latency: Histogram,
    up: Gauge,
    by_code: Box<[OnceLock<Counter>]>,
}

impl ServerMetrics {
    /// A response head with `code` came after `elapsed`.
    pub(crate) fn answered(&self, code: u16, elapsed: Duration) {
        self.latency.observe(elapsed.as_secs_f64());
        self.count(code);
    }

    /// No answer: ccgate answered `code` (502, 504) instead.
    pub(crate) fn failed(&self, code: u16) {
        self.count(code);
    }

    /// The health check's verdict.
    pub(crate) fn set_up(&self, up: bool) {
        self.up.set(i64::from(up));
    }

    fn count(&self, code: u16) {
        let Some(slot) = self.by_code.get(usize::from(code)) else {
            return;
        };
        slot.get_or_init(|| {
            let labels = UpstreamLabels {
                service: self.labels.service.clone(),
                server: self.labels.server.clone(),
                code,
            };
            self.family.get_or_create(&labels).clone()
        })
        .inc();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_are_counted_by_router_and_status() {
        let metrics = GatewayMetrics::new();
        let api = metrics.requests("api");
        api.inc(200);
        api.inc(200);
        api.inc(403);
        let text = metrics.encode();
        assert!(
            text.contains(r#"ccgate_requests_total{router="api",status="200"} 2"#),
            "{text}"
        );
        assert!(
            text.contains(r#"ccgate_requests_total{router="api",status="403"} 1"#),
            "{text}"
        );
    }

    #[test]
    fn upstream_servers_are_counted_timed_and_gauged() {
        let metrics = GatewayMetrics::new();
        let server = metrics.server("api", "http://10.0.0.1:80");
        server.answered(200, Duration::from_millis(3));
        server.answered(200, Duration::from_millis(3));
        server.failed(502);
        let text = metrics.encode();
        for line in [
            r#"ccgate_upstream_requests_total{service="api",server="http://10.0.0.1:80",code="200"} 2"#,
            r#"ccgate_upstream_requests_total{service="api",server="http://10.0.0.1:80",code="502"} 1"#,
            r#"ccgate_upstream_response_seconds_count{service="api",server="http://10.0.0.1:80"} 2"#,
            r#"ccgate_upstream_response_seconds_bucket{le="0.004",service="api",server="http://10.0.0.1:80"} 2"#,
            r#"ccgate_upstream_server_up{service="api",server="http://10.0.0.1:80"} 1"#,
        ] {
            assert!(text.contains(line), "{line}\n{text}");
        }
        server.set_up(false);
        assert!(
            metrics.encode().contains(
                r#"ccgate_upstream_server_up{service="api",server="http://10.0.0.1:80"} 0"#
            )
        );
        metrics.forget_server("api", "http://10.0.0.1:80");
        let text = metrics.encode();
        assert!(!text.contains("ccgate_upstream_server_up{"), "{text}");
        assert!(
            !text.contains("ccgate_upstream_response_seconds_count{"),
            "{text}"
        );
        assert!(text.contains(r#"code="200"} 2"#), "counters stay: {text}");
    }
}
