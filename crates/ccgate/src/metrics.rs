//! Prometheus metrics of the middleware, on a registry the caller owns.
//!
//! | metric | labels | what |
//! |---|---|---|
//! | `ccgate_token_requests_total` | `middleware`, `outcome` | token requests: `success`, `rejected`, `unreachable`, `unavailable`, `malformed`, `timeout`, `internal` (the fetch panicked or was cancelled) |
//! | `ccgate_token_requests_refused_total` | `middleware`, `reason` | token requests ccgate did not send, to protect the authorization server (SPEC §2.8): `throttled` (a client id over its budget: the caller got 429) or `cooling_down` (the endpoint failed repeatedly: 503). Not in `ccgate_token_requests_total`; one per fetch refused, however many callers waited for it |
//! | `ccgate_token_request_duration_seconds` | `middleware` | latency of token requests, retries included |
//! | `ccgate_cache_lookups_total` | `middleware`, `tier`, `result` | cache lookups: tier `memory` (result `hit`, `miss` or `negative`: rejected credentials remembered) or `redis` (`hit`, `miss`; one per memory miss that reached Redis) |
//! | `ccgate_store_errors_total` | `middleware`, `store` | failed operations of a shared store (`store="redis"`): connection refused or lost, timeout, server error |
//!
//! Label values are resolved into handles once, when a middleware is
//! built; counting on the request path is an atomic add.
//!
//! # Example
//!
//! ```
//! use ccgate::{Middleware, metrics::Metrics, options::Options};
//! use prometheus_client::registry::Registry;
//!
//! let mut registry = Registry::default();
//! let metrics = Metrics::register(&mut registry);
//! let options = Options::from_value(serde_json::json!({
//!     "url": "https://idp.example.com/oauth/token",
//!     "audience": "https://api.example.com",
//! }))?;
//! let _middleware = Middleware::builder(options).name("cc-auth").metrics(&metrics).build()?;
//!
//! let mut text = String::new();
//! prometheus_client::encoding::text::encode(&mut text, &registry)?;
//! assert!(text.contains(r#"ccgate_token_requests_total{middleware="cc-auth",outcome="success"} 0"#));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

use crate::token::{Outcome, Refusal};

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct TokenLabels {
    middleware: String,
    outcome: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RefusedLabels {
    middleware: String,
    reason: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct MiddlewareLabels {
    middleware: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct CacheLabels {
    middleware: String,
    tier: &'static str,
    result: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StoreLabels {
    middleware: String,
    store: &'static str,
}

type HistogramFamily = Family<MiddlewareLabels, Histogram, fn() -> Histogram>;

/// The metric families of every middleware sharing one registry.
#[derive(Clone, Debug)]
pub struct Metrics {
    token_requests: Family<TokenLabels, Counter>,
    token_refused: Family<RefusedLabels, Counter>,
    token_duration: HistogramFamily,
    cache_lookups: Family<CacheLabels, Counter>,
    store_errors: Family<StoreLabels, Counter>,
}

fn duration_histogram() -> Histogram {
    // 5 ms to ~20 s
    Histogram::new(exponential_buckets(0.005, 2.0, 13))
}

impl Metrics {
    /// Registers the families on `registry`.
    #[must_use]
    pub fn register(registry: &mut Registry) -> Self {
        let metrics = Self::unregistered();
        registry.register(
            "ccgate_token_requests",
            "Token requests to the authorization server, by outcome",
            metrics.token_requests.clone(),
        );
        registry.register(
            "ccgate_token_requests_refused",
            "Token requests not sent, to protect the authorization server, by reason",
            metrics.token_refused.clone(),
        );
        registry.register(
            "ccgate_token_request_duration_seconds",
            "Duration of token requests, retries included",
            metrics.token_duration.clone(),
        );
        registry.register(
            "ccgate_cache_lookups",
            "Token cache lookups, by tier and result",
            metrics.cache_lookups.clone(),
        );
        registry.register(
            "ccgate_store_errors",
            "Failed operations of a shared token store, by store",
            metrics.store_errors.clone(),
        );
        metrics
    }

    /// Families registered nowhere, for users who do not export metrics.
    #[must_use]
    pub fn unregistered() -> Self {
        Self {
            token_requests: Family::default(),
            token_refused: Family::default(),
            token_duration: Family::new_with_constructor(duration_histogram),
            cache_lookups: Family::default(),
            store_errors: Family::default(),
        }
    }

    /// The handles of the middleware named `middleware`.
    pub(crate) fn handles(&self, middleware: &str) -> Handles {
        let middleware = middleware.to_owned();
        let token = |outcome| {
            let labels = TokenLabels {
                middleware: middleware.clone(),
                outcome,
            };
            self.token_requests.get_or_create(&labels).clone()
        };
        let lookups = |tier, result| {
            let labels = CacheLabels {
                middleware: middleware.clone(),
                tier,
                result,
            };
            self.cache_lookups.get_or_create(&labels).clone()
        };
        let refused = |reason| {
            let labels = RefusedLabels {
                middleware: middleware.clone(),
                reason,
            };
            self.token_refused.get_or_create(&labels).clone()
        };
        Handles {
            token_outcomes: Outcome::ALL.map(|outcome| token(outcome.label())),
            token_refusals: Refusal::ALL.map(|refusal| refused(refusal.label())),
            token_duration: self
                .token_duration
                .get_or_create(&MiddlewareLabels {
                    middleware: middleware.clone(),
                })
                .clone(),
            memory_hit: lookups("memory", "hit"),
            memory_miss: lookups("memory", "miss"),
            memory_negative: lookups("memory", "negative"),
        }
    }

    /// The counters of the Redis tier of the middleware named `middleware`,
    /// resolved only for a middleware with `store.redis`, so that others
    /// show no Redis series.
    #[cfg(feature = "redis")]
    pub(crate) fn redis_handles(&self, middleware: &str) -> RedisHandles {
        let lookup = |result| {
            let labels = CacheLabels {
                middleware: middleware.to_owned(),
                tier: "redis",
                result,
            };
            self.cache_lookups.get_or_create(&labels).clone()
        };
        RedisHandles {
            hit: lookup("hit"),
            miss: lookup("miss"),
            errors: self
                .store_errors
                .get_or_create(&StoreLabels {
                    middleware: middleware.to_owned(),
                    store: "redis",
                })
                .clone(),
        }
    }
}

/// Counters and histograms of one middleware, resolved once.
#[derive(Clone, Debug)]
pub(crate) struct Handles {
    token_outcomes: [Counter; Outcome::ALL.len()],
    token_refusals: [Counter; Refusal::ALL.len()],
    pub(crate) token_duration: Histogram,
    pub(crate) memory_hit: Counter,
    pub(crate) memory_miss: Counter,
    pub(crate) memory_negative: Counter,
}

/// The counters of the Redis tier of one middleware.
#[cfg(feature = "redis")]
#[derive(Clone, Debug)]
pub(crate) struct RedisHandles {
    pub(crate) hit: Counter,
    pub(crate) miss: Counter,
    pub(crate) errors: Counter,
}

impl Handles {
    /// Counts a token request with `outcome`.
    pub(crate) fn token_request(&self, outcome: Outcome) {
        self.token_outcomes[outcome as usize].inc();
    }

    /// Counts a token request not sent, for `refusal`.
    pub(crate) fn token_refused(&self, refusal: Refusal) {
        self.token_refusals[refusal as usize].inc();
    }

    /// The counter of `outcome`, for a part that counts on its own (the
    /// memory store counts the fetches that ended without an answer).
    pub(crate) fn token_outcome(&self, outcome: Outcome) -> Counter {
        self.token_outcomes[outcome as usize].clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn handles_count_into_the_registry() {
        let mut registry = Registry::default();
        let metrics = Metrics::register(&mut registry);
        let handles = metrics.handles("cc-auth");
        handles.token_request(Outcome::Success);
        handles.token_request(Outcome::Timeout);
        handles.token_request(Outcome::Timeout);
        handles.memory_hit.inc();
        handles.token_refused(Refusal::CoolingDown);
        handles.token_duration.observe(0.02);
        #[cfg(feature = "redis")]
        {
            let redis = metrics.redis_handles("cc-auth");
            redis.errors.inc();
            redis.hit.inc();
        }
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &registry).unwrap();
        assert!(
            text.contains(
                r#"ccgate_token_requests_total{middleware="cc-auth",outcome="timeout"} 2"#
            ),
            "{text}"
        );
        assert!(
            text.contains(
                r#"ccgate_token_requests_total{middleware="cc-auth",outcome="success"} 1"#
            ),
            "{text}"
        );
        assert!(
            text.contains(
                r#"ccgate_cache_lookups_total{middleware="cc-auth",tier="memory",result="hit"} 1"#
            ),
            "{text}"
        );
        for series in [
            r#"ccgate_token_requests_refused_total{middleware="cc-auth",reason="cooling_down"} 1"#,
            r#"ccgate_token_requests_refused_total{middleware="cc-auth",reason="throttled"} 0"#,
        ] {
            assert!(text.contains(series), "{text}");
        }
        assert!(
            text.contains(r#"ccgate_token_request_duration_seconds_count{middleware="cc-auth"} 1"#),
            "{text}"
        );
        #[cfg(feature = "redis")]
        for series in [
            r#"ccgate_store_errors_total{middleware="cc-auth",store="redis"} 1"#,
            r#"ccgate_cache_lookups_total{middleware="cc-auth",tier="redis",result="hit"} 1"#,
        ] {
            assert!(text.contains(series), "{text}");
        }
    }
}
