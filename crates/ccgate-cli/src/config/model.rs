//! The gateway's configuration after loading: every file read, Kubernetes
//! manifests and secret URNs resolved, references checked. The runtime
//! builds from this and nothing else.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use ccgate::options::Options;

use super::health_check::HealthCheck;
use super::servers_transport::ServersTransport;
use super::transport::Transport;
use crate::edge::EdgeRules;
use crate::rule::Rule;

/// Service name of the built-in forward-auth endpoint (SPEC §5).
pub(crate) const FORWARD_AUTH_SERVICE: &str = "forward-auth@internal";

/// A whole configuration: the static part (entry points, logs, ping,
/// metrics, providers) and the dynamic part (`http`).
#[derive(Debug, Clone, Default)]
pub(crate) struct Config {
    /// Listening sockets, by name.
    pub(crate) entry_points: BTreeMap<String, EntryPoint>,
    /// `ping.entryPoint`: where `GET /ping` answers 200.
    pub(crate) ping: Option<String>,
    /// `metrics.prometheus.entryPoint`: where `GET /metrics` answers.
    pub(crate) metrics: Option<String>,
    /// `log`.
    pub(crate) log: Log,
    /// `accessLog`; `None` when absent (no access log).
    pub(crate) access_log: Option<AccessLog>,
    /// The files to watch for changes when `providers.file.watch` is true,
    /// with the main file first. Empty when not watching.
    pub(crate) watch: Vec<PathBuf>,
    /// `providers.kubernetesCRD`, when set.
    pub(crate) kubernetes: Option<super::KubernetesCrd>,
    /// `http`: routers, middlewares and services from every file.
    pub(crate) http: Http,
}

/// One entry point.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct EntryPoint {
    /// `address`; `":8080"` means every interface.
    pub(crate) address: SocketAddr,
    /// `tls`: serve HTTPS (HTTP/1.1 and HTTP/2 by ALPN) with this certificate.
    pub(crate) tls: Option<TlsFiles>,
    /// `http.encodedCharacters`, `http.sanitizePath`, `forwardedHeaders`.
    pub(crate) edge: EdgeRules,
    /// `transport`: timeouts, grace period, connection limit (SPEC §10).
    pub(crate) transport: Transport,
}

/// `tls.certFile` and `tls.keyFile` of an entry point.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct TlsFiles {
    pub(crate) cert_file: PathBuf,
    pub(crate) key_file: PathBuf,
}

/// `log`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Log {
    /// `level`: TRACE, DEBUG, INFO (default), WARN or ERROR (any case).
    pub(crate) level: tracing::Level,
    /// `format`: `common` (default, human-readable) or `json`.
    pub(crate) format: LogFormat,
}

impl Default for Log {
    fn default() -> Self {
        Self {
            level: tracing::Level::INFO,
            format: LogFormat::Common,
        }
    }
}

/// A log format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) enum LogFormat {
    #[default]
    Common,
    Json,
}

/// `accessLog`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct AccessLog {
    /// `format`: `json` (default) or `common`.
    pub(crate) format: LogFormat,
    /// `filePath`; standard output when `None`.
    pub(crate) file_path: Option<PathBuf>,
}

/// The dynamic configuration.
#[derive(Debug, Clone, Default)]
pub(crate) struct Http {
    pub(crate) routers: BTreeMap<String, Router>,
    pub(crate) middlewares: BTreeMap<String, Middleware>,
    pub(crate) services: BTreeMap<String, Service>,
    /// `http.serversTransports`, their files read and checked.
    pub(crate) servers_transports: BTreeMap<String, ServersTransport>,
    /// The middlewares of `middlewares` that the Kubernetes provider
    /// found (named `NAMESPACE-NAME@kubernetescrd`): name → (namespace,
    /// name) of the Middleware object. Empty from the loader.
    pub(crate) kubernetes: BTreeMap<String, (String, String)>,
}

/// A router. References are checked: every entry point, middleware and
/// service it names exists (the service may be [`FORWARD_AUTH_SERVICE`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Router {
    /// `entryPoints`; empty means every entry point.
    pub(crate) entry_points: Vec<String>,
    /// `rule`, e.g. ``Host(`api.example.com`) && PathPrefix(`/v1`)``,
    /// compiled once by the loader.
    pub(crate) rule: Arc<Rule>,
    /// `priority`; `None` means the rule's length.
    pub(crate) priority: Option<i64>,
    /// `middlewares`, in order, by name (an `@file` suffix removed;
    /// `NAMESPACE-NAME@kubernetescrd` kept, and not checked: the
    /// Kubernetes provider defines it, maybe later).
    pub(crate) middlewares: Vec<String>,
    /// `service`, by name (an `@file` suffix removed; `forward-auth@internal` kept).
    pub(crate) service: String,
}

/// A middleware: only `plugin.oAuthClientCredentials` exists in ccgate.
#[derive(Debug, Clone)]
pub(crate) struct Middleware {
    /// Its options, secret URNs resolved.
    pub(crate) options: Options,
    /// The file it was defined in, for messages.
    pub(crate) file: PathBuf,
    /// The first line of its YAML document, when `file` holds several.
    pub(crate) document: Option<u64>,
    /// Where its options stand in that document, for messages:
    /// `http.middlewares.NAME.plugin.oAuthClientCredentials`, or
    /// `spec.plugin.oAuthClientCredentials` for a Kubernetes Middleware.
    pub(crate) options_path: String,
    /// The options that were secret URNs: option path as written (e.g.
    /// `clientSecret`) → the URN. The summary shows these instead of values.
    pub(crate) secret_urns: BTreeMap<String, String>,
}

/// A service.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Service {
    /// `loadBalancer.servers[].url`, each an absolute http or https URL.
    pub(crate) servers: Vec<http::Uri>,
    /// `loadBalancer.servers[].weight`, one per server (default 1; 0:
    /// never picked).
    pub(crate) weights: Vec<u32>,
    /// `loadBalancer.healthCheck`.
    pub(crate) health_check: Option<HealthCheck>,
    /// `loadBalancer.passHostHeader`, default true.
    pub(crate) pass_host_header: bool,
    /// `loadBalancer.serversTransport`, by name (an `@file` suffix
    /// removed; it exists in [`Http::servers_transports`]); the defaults
    /// when `None`.
    pub(crate) servers_transport: Option<String>,
}
