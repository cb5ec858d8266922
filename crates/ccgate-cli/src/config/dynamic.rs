//! The dynamic part, `http.routers`, `http.middlewares` and
//! `http.services`, from every file and document, gathered into
//! [`Definitions`] before references are checked.

use std::collections::BTreeMap;
use std::sync::Arc;

use ccgate::options::fields;
use ccgate::options::{Options, OptionsError};
use serde::Deserialize;
use serde_json::{Map, Value};

use super::error::{ConfigError, Origin, join};
use super::health_check::{self, RawHealthCheck};
use super::model::{Middleware, Router, Service};
use super::secrets::Secrets;
use crate::rule::Rule;

/// The namespace of middlewares defined under `http.middlewares`.
pub(super) const DEFAULT_NAMESPACE: &str = "default";

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawDocument {
    #[serde(default, deserialize_with = "fields::section")]
    http: Option<RawHttp>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawHttp {
    #[serde(default)]
    routers: BTreeMap<String, RawRouter>,
    #[serde(default)]
    middlewares: BTreeMap<String, RawMiddleware>,
    #[serde(default)]
    services: BTreeMap<String, RawService>,
    #[serde(default, rename = "serversTransports")]
    servers_transports: BTreeMap<String, Value>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct RawRouter {
    #[serde(default)]
    entry_points: Vec<String>,
    rule: String,
    priority: Option<i64>,
    #[serde(default)]
    middlewares: Vec<String>,
    service: String,
}

/// A middleware holds exactly one type; ccgate has one,
/// `plugin.oAuthClientCredentials`, whose options are left as a value.
/// Also a Kubernetes Middleware's `spec`. The serde names are the labels
/// of the messages ([`fields`]).
#[derive(Deserialize)]
#[serde(rename = "middleware type: plugin.oAuthClientCredentials")]
pub(super) enum RawMiddleware {
    #[serde(rename = "plugin")]
    Plugin(RawPlugin),
}

#[derive(Deserialize)]
#[serde(rename = "plugin")]
pub(super) enum RawPlugin {
    #[serde(rename = "oAuthClientCredentials")]
    OAuthClientCredentials(Value),
}

/// A service holds exactly one kind; ccgate has `loadBalancer`.
#[derive(Deserialize)]
#[serde(rename = "service type", rename_all = "camelCase")]
enum RawService {
    LoadBalancer(RawLoadBalancer),
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct RawLoadBalancer {
    #[serde(default)]
    servers: Vec<RawServer>,
    pass_host_header: Option<bool>,
    servers_transport: Option<String>,
    #[serde(default, deserialize_with = "fields::section")]
    health_check: Option<RawHealthCheck>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawServer {
    url: String,
    weight: Option<Value>,
}

/// Something defined under a name: where, and what.
#[derive(Debug)]
pub(super) struct Defined<T> {
    pub(super) origin: Origin,
    /// The path of its definition, e.g. `http.routers.api` or `spec`.
    pub(super) path: String,
    pub(super) value: T,
}

/// A middleware whose options are not read yet: their secret URNs need
/// every Secret of every file. `Debug` does not show the options, which
/// may hold secrets.
pub(super) struct PendingMiddleware {
    namespace: String,
    options: Value,
}

impl std::fmt::Debug for PendingMiddleware {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PendingMiddleware")
            .field("namespace", &self.namespace)
            .finish_non_exhaustive()
    }
}

/// Everything defined by every file, by name.
#[derive(Debug, Default)]
pub(super) struct Definitions {
    /// Routers, references not checked yet.
    pub(super) routers: BTreeMap<String, Defined<Router>>,
    pub(super) middlewares: BTreeMap<String, Defined<PendingMiddleware>>,
    pub(super) services: BTreeMap<String, Defined<Service>>,
    /// Servers transports as written: their secret URNs need every Secret
    /// of every file, their files the main file's folder. `Debug` shows a
    /// value that may hold a key's PEM text: [`Definitions`] is never
    /// logged.
    pub(super) servers_transports: BTreeMap<String, Defined<Value>>,
    pub(super) secrets: Secrets,
}

impl Definitions {
    /// Reads a provider file's document (`http:` only).
    pub(super) fn read_document(
        &mut self,
        value: Map<String, Value>,
        origin: &Origin,
    ) -> Result<(), ConfigError> {
        let raw: RawDocument = origin.read(Value::Object(value), "")?;
        match raw.http {
            Some(http) => self.add_http(http, origin),
            None => Ok(()),
        }
    }

    /// Reads the main file's inline `http` section.
    pub(super) fn read_http(&mut self, value: Value, origin: &Origin) -> Result<(), ConfigError> {
        let raw: RawHttp = origin.read(value, "http")?;
        self.add_http(raw, origin)
    }

    fn add_http(&mut self, http: RawHttp, origin: &Origin) -> Result<(), ConfigError> {
        for (name, raw) in http.routers {
            let path = format!("http.routers.{name}");
            let router = router(raw, origin, &path)?;
            define(&mut self.routers, "router", name, origin, path, router)?;
        }
        for (name, raw) in http.middlewares {
            let path = format!("http.middlewares.{name}");
            self.add_middleware(name, DEFAULT_NAMESPACE, raw, origin, path)?;
        }
        for (name, raw) in http.services {
            let path = format!("http.services.{name}");
            let service = service(raw, origin, &path)?;
            define(&mut self.services, "service", name, origin, path, service)?;
        }
        for (name, raw) in http.servers_transports {
            let path = format!("http.serversTransports.{name}");
            define(
                &mut self.servers_transports,
                "serversTransport",
                name,
                origin,
                path,
                raw,
            )?;
        }
        Ok(())
    }

    /// Adds the middleware `name` of `namespace` defined at `path`.
    pub(super) fn add_middleware(
        &mut self,
        name: String,
        namespace: &str,
        raw: RawMiddleware,
        origin: &Origin,
        path: String,
    ) -> Result<(), ConfigError> {
        let RawMiddleware::Plugin(RawPlugin::OAuthClientCredentials(options)) = raw;
        let pending = PendingMiddleware {
            namespace: namespace.to_owned(),
            options,
        };
        define(
            &mut self.middlewares,
            "middleware",
            name,
            origin,
            path,
            pending,
        )
    }
}

/// Inserts `value` under `name`, unless the name is taken or invalid.
fn define<T>(
    map: &mut BTreeMap<String, Defined<T>>,
    what: &str,
    name: String,
    origin: &Origin,
    path: String,
    value: T,
) -> Result<(), ConfigError> {
    if name.is_empty() || name.contains('@') {
        let reason = format!("invalid {what} name {name:?}: it must be non-empty, without `@`");
        return Err(origin.error(&path, reason));
    }
    if let Some(first) = map.get(&name) {
        let reason = format!(
            "{what} \"{name}\" is defined twice: also in {} ({})",
            first.origin, first.path
        );
        return Err(origin.error(&path, reason));
    }
    let origin = origin.clone();
    map.insert(
        name,
        Defined {
            origin,
            path,
            value,
        },
    );
    Ok(())
}

fn router(raw: RawRouter, origin: &Origin, path: &str) -> Result<Router, ConfigError> {
    let rule = Rule::parse(&raw.rule)
        .map_err(|error| origin.error(&format!("{path}.rule"), error.to_string()))?;
    Ok(Router {
        entry_points: raw.entry_points,
        rule: Arc::new(rule),
        priority: raw.priority,
        middlewares: raw.middlewares,
        service: raw.service,
    })
}

fn service(raw: RawService, origin: &Origin, path: &str) -> Result<Service, ConfigError> {
    let RawService::LoadBalancer(balancer) = raw;
    if balancer.servers.is_empty() {
        let path = format!("{path}.loadBalancer.servers");
        return Err(origin.error(&path, "at least one server is required"));
    }
    let servers = balancer
        .servers
        .iter()
        .enumerate()
        .map(|(index, server)| {
            server_url(&server.url).map_err(|reason| {
                origin.error(&format!("{path}.loadBalancer.servers[{index}].url"), reason)
            })
        })
        .collect::<Result<_, _>>()?;
    let weights: Vec<u32> = balancer
        .servers
        .iter()
        .enumerate()
        .map(|(index, server)| {
            let at = format!("{path}.loadBalancer.servers[{index}].weight");
            health_check::weight(server.weight.as_ref(), origin, &at)
        })
        .collect::<Result<_, _>>()?;
    if weights.iter().all(|w| *w == 0) {
        let at = format!("{path}.loadBalancer.servers");
        return Err(origin.error(
            &at,
            "every server has weight 0: at least one must be above 0",
        ));
    }
    let health_check = match balancer.health_check {
        Some(raw) => Some(health_check::read(
            raw,
            origin,
            &format!("{path}.loadBalancer"),
        )?),
        None => None,
    };
    Ok(Service {
        servers,
        weights,
        health_check,
        pass_host_header: balancer.pass_host_header.unwrap_or(true),
        servers_transport: balancer.servers_transport,
    })
}

/// An upstream server: `http://host[:port]`, `https://host[:port]` or
/// `h2c://host[:port]` (cleartext HTTP/2), nothing after the authority.
fn server_url(text: &str) -> Result<http::Uri, String> {
    let expected = "expected an absolute http, https or h2c URL such as http://127.0.0.1:9500";
    let uri: http::Uri = text
        .parse()
        .map_err(|_| format!("invalid URL {text:?}: {expected}"))?;
    match uri.scheme_str() {
        Some("http" | "https" | "h2c") => {}
        Some(other) => {
            return Err(format!(
                "{text:?}: unsupported scheme `{other}`: {expected}"
            ));
        }
        None => return Err(format!("{text:?} is not absolute: {expected}")),
    }
    if uri.host().is_none_or(str::is_empty) {
        return Err(format!("{text:?} has no host: {expected}"));
    }
    if uri.authority().is_some_and(|a| a.as_str().contains('@')) {
        // Not quoted: the user information may be a password.
        return Err(
            "credentials (user:password@) in a server URL are not supported; the URL is not \
             shown"
                .to_owned(),
        );
    }
    if !matches!(uri.path(), "" | "/") || uri.query().is_some() {
        return Err(format!(
            "{text:?}: a path or query in a server URL is not supported: {expected}"
        ));
    }
    Ok(uri)
}

/// Reads the options of a pending middleware, its secret URNs resolved
/// from `secrets`.
///
/// # Errors
///
/// An unresolvable or malformed URN, or an invalid option, with the full
/// path of the field.
pub(super) fn resolve_middleware(
    defined: Defined<PendingMiddleware>,
    secrets: &Secrets,
) -> Result<Middleware, ConfigError> {
    let Defined {
        origin,
        path,
        value: PendingMiddleware {
            namespace,
            mut options,
        },
    } = defined;
    let options_path = format!("{path}.plugin.oAuthClientCredentials");
    let resolved = secrets.resolve(&mut options, &namespace, &origin, &options_path)?;
    let options = Options::from_value(options).map_err(|error| {
        let field = option_path(&options_path, &error);
        origin.error(&field, resolved.redact(error.reason().to_owned()))
    })?;
    Ok(Middleware {
        options,
        file: origin.file,
        document: origin.document,
        options_path,
        secret_urns: resolved.urns,
    })
}

impl Middleware {
    /// An error of the options of this middleware (from
    /// [`ccgate::Middleware`]'s builder), with its file and full path.
    pub(crate) fn error(&self, error: &OptionsError) -> ConfigError {
        let path = option_path(&self.options_path, error);
        self.origin().error(&path, error.reason())
    }

    /// Where it was defined.
    pub(super) fn origin(&self) -> Origin {
        Origin {
            file: self.file.clone(),
            document: self.document,
        }
    }
}

fn option_path(options_path: &str, error: &OptionsError) -> String {
    match error.field() {
        "." => options_path.to_owned(),
        field => join(options_path, field),
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;
    use serde_json::json;

    fn read(value: Value) -> Result<Definitions, String> {
        let mut definitions = Definitions::default();
        let origin = Origin::file(Path::new("d.yaml"));
        let Value::Object(map) = value else { panic!() };
        definitions
            .read_document(map, &origin)
            .map_err(|e| e.to_string())?;
        Ok(definitions)
    }

    #[test]
    fn reads_routers_middlewares_and_services() {
        let d = read(json!({"HTTP": {
            "Routers": {"api": {"EntryPoints": ["web"], "rule": "Path(`/a`)", "priority": 7, "middlewares": ["cc@file"], "service": "backend"}},
            "middlewares": {"cc": {"Plugin": {"oauthclientcredentials": {"url": "http://idp/token"}}}},
            "services": {"backend": {"loadbalancer": {"servers": [{"url": "http://127.0.0.1:9500"}], "passHostHeader": false}}}
        }}))
        .unwrap();
        let api = &d.routers["api"];
        assert_eq!(api.path, "http.routers.api");
        assert_eq!(api.value.priority, Some(7));
        assert_eq!(api.value.middlewares, ["cc@file"]);
        let backend = &d.services["backend"].value;
        assert_eq!(backend.servers[0].to_string(), "http://127.0.0.1:9500/");
        assert!(!backend.pass_host_header);
        let middleware =
            resolve_middleware(d.middlewares.into_iter().next().unwrap().1, &d.secrets).unwrap();
        assert_eq!(middleware.options.url, "http://idp/token");
        assert_eq!(
            middleware.options_path,
            "http.middlewares.cc.plugin.oAuthClientCredentials"
        );
    }

    #[test]
    fn h2c_and_https_servers_are_read() {
        let d = read(
            json!({"http": {"services": {"grpc": {"loadBalancer": {"servers": [
                {"url": "h2c://127.0.0.1:50051"}, {"url": "https://up"}
            ]}}}}}),
        )
        .unwrap();
        let servers = &d.services["grpc"].value.servers;
        assert_eq!(servers[0].scheme_str(), Some("h2c"));
        assert_eq!(servers[0].authority().unwrap(), "127.0.0.1:50051");
        assert_eq!(servers[1].scheme_str(), Some("https"));
    }

    #[test]
    fn errors_name_the_field() {
        for (value, expected) in [
            (
                json!({"tcp": {}}),
                "d.yaml: tcp: unknown field (known: http)",
            ),
            (
                json!({"http": {"routers": {"a": {"rule": "Path(`/`)", "service": "s", "tls": {}}}}}),
                "d.yaml: http.routers.a.tls: unknown field (known: entryPoints, rule, priority, middlewares, service)",
            ),
            (
                json!({"http": {"routers": {"a": {"rule": "Path(`/`)"}}}}),
                "d.yaml: http.routers.a.service: required",
            ),
            (
                json!({"http": {"routers": {"a": {"rule": "Path(`/`) &&", "service": "s"}}}}),
                "d.yaml: http.routers.a.rule: at column 13: expected a function call",
            ),
            (
                json!({"http": {"routers": {"a@b": {"rule": "Path(`/`)", "service": "s"}}}}),
                "d.yaml: http.routers.a@b: invalid router name \"a@b\"",
            ),
            (
                json!({"http": {"middlewares": {"h": {"headers": {"customRequestHeaders": {}}}}}}),
                "d.yaml: http.middlewares.h.headers: unsupported middleware type `headers` (ccgate supports plugin.oAuthClientCredentials)",
            ),
            (
                json!({"http": {"middlewares": {"h": {"plugin": {"jwt": {}}}}}}),
                "d.yaml: http.middlewares.h.plugin.jwt: unsupported plugin `jwt` (ccgate supports oAuthClientCredentials)",
            ),
            (
                json!({"http": {"services": {"s": {"weighted": {}}}}}),
                "d.yaml: http.services.s.weighted: unsupported service type `weighted` (ccgate supports loadBalancer)",
            ),
            (
                json!({"http": {"services": {"s": {"loadBalancer": {}}}}}),
                "d.yaml: http.services.s.loadBalancer.servers: at least one server is required",
            ),
            (
                json!({"http": {"services": {"s": {"loadBalancer": {"servers": [{"url": "ws://up"}]}}}}}),
                "d.yaml: http.services.s.loadBalancer.servers[0].url: \"ws://up\": unsupported scheme `ws`: expected an absolute http, https or h2c URL",
            ),
            (
                json!({"http": {"services": {"s": {"loadBalancer": {"servers": [{"url": "up:80"}]}}}}}),
                "servers[0].url: ",
            ),
            (
                json!({"http": {"services": {"s": {"loadBalancer": {"servers": [{"url": "http://up/api"}]}}}}}),
                "a path or query in a server URL is not supported",
            ),
            (
                json!({"http": {"services": {"s": {"loadBalancer": {"servers": [{"url": "http://up", "weight": -2}]}}}}}),
                "d.yaml: http.services.s.loadBalancer.servers[0].weight: must be a whole number from 0 to 1000, not -2",
            ),
            (
                json!({"http": {"services": {"s": {"loadBalancer": {"servers": [{"url": "http://up", "weight": 0}]}}}}}),
                "d.yaml: http.services.s.loadBalancer.servers: every server has weight 0",
            ),
            (
                json!({"http": {"services": {"s": {"loadBalancer": {"servers": [{"url": "http://up"}], "healthCheck": {"path": "/h", "mode": "tcp"}}}}}}),
                "d.yaml: http.services.s.loadBalancer.healthCheck.mode: unknown mode \"tcp\": expected http or grpc",
            ),
            (
                json!({"http": {"services": {"s": {"loadBalancer": {"servers": [{"url": "http://up"}], "healthcheck": {"path": "/h", "intervl": 1}}}}}}),
                "d.yaml: http.services.s.loadBalancer.healthCheck.intervl: unknown field",
            ),
            (
                json!({"http": {"services": {"s": {"loadBalancer": {"servers": [{"url": "http://up"}], "passHostHeader": "no"}}}}}),
                "d.yaml: http.services.s.loadBalancer.passHostHeader: invalid type: string \"no\", expected a boolean",
            ),
        ] {
            let err = read(value).unwrap_err();
            assert!(err.contains(expected), "{err}\n  expected: {expected}");
        }
    }

    #[test]
    fn a_name_defined_twice_names_both_places() {
        let mut definitions = Definitions::default();
        let router = json!({"routers": {"api": {"rule": "Path(`/`)", "service": "s"}}});
        let a = Origin::file(Path::new("conf.d/a.yaml"));
        let b = Origin::file(Path::new("conf.d/b.yaml"));
        definitions.read_http(router.clone(), &a).unwrap();
        let err = definitions.read_http(router, &b).unwrap_err();
        assert_eq!(
            err.to_string(),
            "conf.d/b.yaml: http.routers.api: router \"api\" is defined twice: also in conf.d/a.yaml (http.routers.api)"
        );
    }

    #[test]
    fn option_errors_carry_the_full_path_and_no_secret() {
        let mut definitions = Definitions::default();
        let origin = Origin::file(Path::new("c.yaml"));
        let http = json!({"middlewares": {"cc": {"plugin": {"oAuthClientCredentials": {"clientConfig": {"timeout": 1}}}}}});
        definitions.read_http(http, &origin).unwrap();
        let pending = definitions.middlewares.remove("cc").unwrap();
        let err = resolve_middleware(pending, &definitions.secrets).unwrap_err();
        assert_eq!(
            err.to_string(),
            "c.yaml: http.middlewares.cc.plugin.oAuthClientCredentials.clientConfig.timeout: unknown field (known: tls, timeoutSeconds, maxRetries)"
        );
    }
}
