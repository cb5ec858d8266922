//! The gateway's Prometheus registry: the middleware families of the
//! library plus `ccgate_requests_total{router, status}` and
//! `ccgate_access_log_dropped_total`.

use std::sync::OnceLock;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::registry::Registry;

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
        Self {
            registry,
            middleware,
            requests,
            access_log_dropped,
        }
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
}
