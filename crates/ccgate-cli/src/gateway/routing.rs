//! The routing table: routers compiled per entry point, sorted by
//! priority, with their middlewares built and their services resolved.
//! Built once per configuration and swapped whole on reload.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use http::request::Parts;

use super::StartError;
use super::connector::Connector;
use super::health;
use super::metrics::{GatewayMetrics, StatusCounters};
use super::proxy::Service;
use crate::config::{Config, FORWARD_AUTH_SERVICE, KUBERNETES_PROVIDER, ServersTransport};
use crate::rule::Rule;

/// Routers by entry point, highest priority first.
#[derive(Debug, Default)]
pub(crate) struct Routing {
    by_entry_point: HashMap<String, Vec<Arc<Route>>>,
    middlewares: HashMap<String, ccgate::Middleware>,
    services: HashMap<String, Arc<Service>>,
    /// The services' health checkers, once started; stopped when taken
    /// out or dropped.
    checkers: Mutex<Vec<health::Checker>>,
}

/// A compiled router.
#[derive(Debug)]
pub(crate) struct Route {
    pub(crate) name: String,
    rule: Arc<Rule>,
    priority: i64,
    pub(crate) middlewares: Vec<ccgate::Middleware>,
    /// A `NAMESPACE-NAME@kubernetescrd` middleware of the router that the
    /// Kubernetes provider has not (yet) found: the router answers 503.
    pub(crate) unavailable: Option<String>,
    pub(crate) target: Target,
    pub(crate) requests: StatusCounters,
}

/// Where a router sends the requests that pass its middlewares.
#[derive(Debug)]
pub(crate) enum Target {
    /// A load-balanced service.
    Service(Arc<Service>),
    /// `forward-auth@internal`: answer 200 with the upstream headers.
    ForwardAuth,
}

impl Target {
    /// The service name, as in the access log.
    pub(crate) fn name(&self) -> &str {
        match self {
            Self::Service(service) => service.name(),
            Self::ForwardAuth => FORWARD_AUTH_SERVICE,
        }
    }
}

impl Routing {
    /// Compiles `config`; middlewares count into `metrics`.
    ///
    /// # Errors
    ///
    /// A [`StartError`] naming the middleware that cannot be built, or the
    /// router whose reference dangles (the loader has checked references
    /// already, so that is a last line of defence).
    pub(crate) fn compile(config: &Config, metrics: &GatewayMetrics) -> Result<Self, StartError> {
        Self::compile_with(config, metrics, None)
    }

    /// Like [`Routing::compile`], keeping the cached tokens of `previous`'s
    /// middlewares whose token settings did not change.
    pub(crate) fn compile_reusing(
        config: &Config,
        metrics: &GatewayMetrics,
        previous: &Self,
    ) -> Result<Self, StartError> {
        Self::compile_with(config, metrics, Some(previous))
    }

    fn compile_with(
        config: &Config,
        metrics: &GatewayMetrics,
        previous: Option<&Self>,
    ) -> Result<Self, StartError> {
        let mut middlewares = HashMap::new();
        for (name, middleware) in &config.http.middlewares {
            let mut builder = ccgate::Middleware::builder(middleware.options.clone())
                .name(name.clone())
                .metrics(metrics.middleware());
            if let Some(old) = previous.and_then(|p| p.middlewares.get(name)) {
                builder = builder.reuse(old);
            }
            let built = builder.build().map_err(|error| middleware.error(&error))?;
            middlewares.insert(name.clone(), built);
        }
        let connectors = connectors(config)?;
        let services: HashMap<String, Arc<Service>> = config
            .http
            .services
            .iter()
            .map(|(name, service)| {
                let connector = &connectors[service.servers_transport.as_deref().unwrap_or("")];
                let before = previous.and_then(|p| p.services.get(name));
                (
                    name.clone(),
                    Arc::new(Service::new(
                        name,
                        service,
                        connector,
                        metrics,
                        before.map(AsRef::as_ref),
                    )),
                )
            })
            .collect();
        let mut by_entry_point: HashMap<String, Vec<Arc<Route>>> = HashMap::new();
        let forward_auth_entry_point = config
            .kubernetes
            .as_ref()
            .and_then(|k| k.forward_auth_entry_point.as_deref());
        if let Some(entry_point) = forward_auth_entry_point {
            let routes = by_entry_point.entry(entry_point.to_owned()).or_default();
            for (name, (namespace, object)) in &config.http.kubernetes {
                routes.push(forward_auth_route(
                    name,
                    namespace,
                    object,
                    &middlewares,
                    metrics,
                )?);
            }
        }
        for (name, router) in &config.http.routers {
            let target = if router.service == FORWARD_AUTH_SERVICE {
                Target::ForwardAuth
            } else {
                let service =
                    services
                        .get(&router.service)
                        .ok_or_else(|| StartError::Reference {
                            router: name.clone(),
                            field: "service",
                            what: "service",
                            name: router.service.clone(),
                        })?;
                Target::Service(Arc::clone(service))
            };
            let mut chain = Vec::with_capacity(router.middlewares.len());
            let mut unavailable = None;
            for m in &router.middlewares {
                match middlewares.get(m.as_str()) {
                    Some(middleware) => chain.push(middleware.clone()),
                    // The Kubernetes provider's, not there (yet): 503.
                    None if is_kubernetes(m) => {
                        unavailable.get_or_insert_with(|| m.clone());
                    }
                    None => {
                        return Err(StartError::Reference {
                            router: name.clone(),
                            field: "middlewares",
                            what: "middleware",
                            name: m.clone(),
                        });
                    }
                }
            }
            let route = Arc::new(Route {
                name: name.clone(),
                rule: Arc::clone(&router.rule),
                priority: router
                    .priority
                    .unwrap_or_else(|| router.rule.default_priority()),
                middlewares: chain,
                unavailable,
                target,
                requests: metrics.requests(name),
            });
            let entry_points: Vec<&String> = if router.entry_points.is_empty() {
                // Every entry point but the Kubernetes forward-auth one,
                // which answers only /NAMESPACE/NAME.
                config
                    .entry_points
                    .keys()
                    .filter(|e| Some(e.as_str()) != forward_auth_entry_point)
                    .collect()
            } else {
                router.entry_points.iter().collect()
            };
            for entry_point in entry_points {
                by_entry_point
                    .entry(entry_point.clone())
                    .or_default()
                    .push(Arc::clone(&route));
            }
        }
        for routes in by_entry_point.values_mut() {
            routes.sort_by(|a, b| {
                b.priority
                    .cmp(&a.priority)
                    .then_with(|| a.name.cmp(&b.name))
            });
        }
        Ok(Self {
            by_entry_point,
            middlewares,
            services,
            checkers: Mutex::default(),
        })
    }

    /// Starts one health checker per service that has a `healthCheck`, in
    /// the current runtime (not per worker).
    pub(crate) fn start_health_checks(&self) {
        let started: Vec<health::Checker> =
            self.services.values().filter_map(health::start).collect();
        self.checkers
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .extend(started);
    }

    /// After `next` replaced this configuration: stops its health checkers
    /// and drops the health gauges of servers that `next` no longer has.
    pub(crate) fn retire(&self, next: &Self, metrics: &GatewayMetrics) {
        self.checkers
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .clear();
        for (name, service) in &self.services {
            let kept = next.services.get(name);
            for server in service.servers() {
                if !kept.is_some_and(|k| k.servers().iter().any(|s| s.url == server.url)) {
                    metrics.forget_server(name, &server.url);
                }
            }
        }
    }

    /// The first router of `entry_point` whose rule matches.
    pub(crate) fn route(&self, entry_point: &str, request: &Parts) -> Option<&Arc<Route>> {
        self.by_entry_point
            .get(entry_point)?
            .iter()
            .find(|route| route.rule.matches(request))
    }
}

/// Whether `name` is a middleware of the Kubernetes provider.
fn is_kubernetes(name: &str) -> bool {
    name.rsplit_once('@')
        .is_some_and(|(_, provider)| provider == KUBERNETES_PROVIDER)
}

/// The forward-auth route of the Kubernetes middleware `name` (the object
/// `namespace/object`): `Path(`/NAMESPACE/NAME`)` → forward-auth.
fn forward_auth_route(
    name: &str,
    namespace: &str,
    object: &str,
    middlewares: &HashMap<String, ccgate::Middleware>,
    metrics: &GatewayMetrics,
) -> Result<Arc<Route>, StartError> {
    // Namespaces are DNS labels and names DNS subdomains (the provider
    // checks both), so neither can break out of the backquotes.
    let rule = Rule::parse(&format!("Path(`/{namespace}/{object}`)"))
        .map_err(|_| StartError::Internal("a Kubernetes object name that is not a path"))?;
    let middleware = middlewares
        .get(name)
        .cloned()
        .ok_or_else(|| StartError::Reference {
            router: name.to_owned(),
            field: "middlewares",
            what: "middleware",
            name: name.to_owned(),
        })?;
    Ok(Arc::new(Route {
        name: name.to_owned(),
        priority: rule.default_priority(),
        rule: Arc::new(rule),
        middlewares: vec![middleware],
        unavailable: None,
        target: Target::ForwardAuth,
        requests: metrics.requests(name),
    }))
}

/// The servers transports, ready for the request path, by name (`""`:
/// the defaults, for services that name none). A transport gets its TLS
/// configuration, built here once, when one of its services has an
/// `https` server; `insecureSkipVerify` is warned about here, at every
/// load.
fn connectors(config: &Config) -> Result<HashMap<&str, Arc<Connector>>, StartError> {
    let defaults = ServersTransport::default();
    let wanted = std::iter::once(("", &defaults)).chain(
        config
            .http
            .servers_transports
            .iter()
            .map(|(name, transport)| (name.as_str(), transport)),
    );
    let mut connectors = HashMap::new();
    for (name, transport) in wanted {
        transport.warn_if_insecure();
        let https = config.http.services.values().any(|service| {
            service.servers_transport.as_deref().unwrap_or("") == name
                && (service
                    .servers
                    .iter()
                    .any(|uri| uri.scheme_str() == Some("https"))
                    || service
                        .health_check
                        .as_ref()
                        .is_some_and(|check| check.scheme.as_deref() == Some("https")))
        });
        let connector = Connector::new(transport, https, name.is_empty()).map_err(|reason| {
            StartError::UpstreamTls {
                transport: if name.is_empty() {
                    "the default servers transport".to_owned()
                } else {
                    format!("http.serversTransports.{name}")
                },
                reason,
            }
        })?;
        connectors.insert(name, Arc::new(connector));
    }
    Ok(connectors)
}

#[cfg(test)]
mod tests {
    use http::Request;

    use super::*;
    use crate::gateway::testing;

    /// Entry points `web` and `admin`, a service, and `routers` (YAML
    /// lines under `http.routers`, indented by four spaces).
    fn routing(routers: &str) -> Routing {
        let config = testing::config(&format!(
            "entryPoints:\n  web: {{address: '127.0.0.1:1'}}\n  admin: {{address: '127.0.0.1:2'}}\n\
             http:\n  services:\n    s: {{loadBalancer: {{servers: [{{url: 'http://127.0.0.1:1'}}]}}}}\n  routers:\n{routers}"
        ));
        Routing::compile(&config, &GatewayMetrics::new()).expect("compiles")
    }

    fn routed<'a>(routing: &'a Routing, entry_point: &str, uri: &str) -> Option<&'a str> {
        let (parts, ()) = Request::get(uri)
            .header("host", "api.example.com")
            .body(())
            .unwrap()
            .into_parts();
        routing
            .route(entry_point, &parts)
            .map(|route| route.name.as_str())
    }

    #[test]
    fn the_longest_rule_goes_first_by_default() {
        let routing = routing(
            "    all: {rule: 'PathPrefix(`/`)', service: s}\n\
             \x20   api: {rule: 'PathPrefix(`/api`)', service: s}\n\
             \x20   host-api: {rule: 'Host(`api.example.com`) && PathPrefix(`/api`)', service: s}\n",
        );
        assert_eq!(routed(&routing, "web", "/api/x"), Some("host-api"));
        assert_eq!(routed(&routing, "web", "/other"), Some("all"));
        let (parts, ()) = Request::get("/api/x")
            .header("host", "other.example.com")
            .body(())
            .unwrap()
            .into_parts();
        assert_eq!(
            routing.route("web", &parts).map(|r| r.name.as_str()),
            Some("api")
        );
    }

    #[test]
    fn an_explicit_priority_wins_over_the_length() {
        let routing = routing(
            "    all: {rule: 'PathPrefix(`/`)', service: s, priority: 1000}\n\
             \x20   api: {rule: 'PathPrefix(`/api`)', service: s}\n",
        );
        assert_eq!(routed(&routing, "web", "/api/x"), Some("all"));
    }

    #[test]
    fn equal_priorities_go_by_router_name() {
        // Both rules are 17 characters long and both match.
        let routing = routing(
            "    zeta: {rule: 'PathPrefix(`/ab`)', service: s}\n\
             \x20   alpha: {rule: 'PathPrefix(`/a`) ', service: s}\n\
             \x20   mid: {rule: 'Path(`/abc`)', service: s, priority: 17}\n",
        );
        assert_eq!(routed(&routing, "web", "/abc"), Some("alpha"));
        assert_eq!(routed(&routing, "web", "/ab"), Some("alpha"));
    }

    #[test]
    fn routers_serve_only_their_entry_points() {
        let routing = routing(
            "    public: {rule: 'PathPrefix(`/`)', service: s, entryPoints: [web]}\n\
             \x20   anywhere: {rule: 'Path(`/status`)', service: s}\n",
        );
        assert_eq!(routed(&routing, "web", "/x"), Some("public"));
        assert_eq!(routed(&routing, "admin", "/x"), None);
        assert_eq!(routed(&routing, "admin", "/status"), Some("anywhere"));
        assert_eq!(routed(&routing, "nowhere", "/status"), None);
    }

    #[test]
    fn a_reload_keeps_a_servers_health_only_under_the_same_check() {
        let config = |interval: &str| {
            testing::config(&format!(
                "entryPoints:\n  web: {{address: '127.0.0.1:1'}}\n\
                 http:\n  services:\n    s: {{loadBalancer: {{servers: [{{url: 'http://127.0.0.1:1'}}, {{url: 'http://127.0.0.1:2'}}], \
                 healthCheck: {{path: /h, interval: {interval}}}}}}}\n"
            ))
        };
        let metrics = GatewayMetrics::new();
        let first = Routing::compile(&config("1s"), &metrics).unwrap();
        first.services["s"].servers()[1].set_healthy(false);
        let same = Routing::compile_reusing(&config("1s"), &metrics, &first).unwrap();
        let health: Vec<bool> = same.services["s"]
            .servers()
            .iter()
            .map(|s| s.is_healthy())
            .collect();
        assert_eq!(health, [true, false]);
        assert!(
            metrics.encode().contains(
                r#"ccgate_upstream_server_up{service="s",server="http://127.0.0.1:2"} 0"#
            )
        );
        let changed = Routing::compile_reusing(&config("2s"), &metrics, &same).unwrap();
        assert!(
            changed.services["s"]
                .servers()
                .iter()
                .all(|s| s.is_healthy())
        );
    }
}
