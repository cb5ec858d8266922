//! A readable summary of a loaded configuration, as `ccgate check` prints
//! it.
//!
//! # Security
//!
//! Secret values are never printed: `clientSecret`, `privateKey`,
//! `store.secret` and `clientConfig.tls.key` show `<redacted>`, and any option that was a
//! secret URN shows the URN, not the value it resolved to (so a `clientID`
//! kept in a Secret stays there).

use std::fmt::{self, Display, Write as _};
use std::path::Path;

use ccgate::options::{AuthMethod, Options};

use super::health_check::{HealthCheck, Mode as HealthCheckMode};
use super::model::{Config, LogFormat, Middleware, Router, Service};
use super::servers_transport::ServersTransport;

/// What `ccgate check` prints for a valid configuration.
#[derive(Debug)]
pub(crate) struct Summary<'a> {
    config: &'a Config,
    main: &'a Path,
}

impl<'a> Summary<'a> {
    /// The summary of `config`, loaded from the main file `main`.
    pub(crate) fn new(config: &'a Config, main: &'a Path) -> Self {
        Self { config, main }
    }
}

const REDACTED: &str = "<redacted>";

impl Display for Summary<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let config = self.config;
        writeln!(f, "{}: the configuration is valid", self.main.display())?;
        writeln!(f)?;
        writeln!(f, "entry points:")?;
        for (name, entry_point) in &config.entry_points {
            write!(f, "  {name}: {}", entry_point.address)?;
            if let Some(tls) = &entry_point.tls {
                write!(
                    f,
                    ", TLS (cert {}, key {})",
                    tls.cert_file.display(),
                    tls.key_file.display()
                )?;
            }
            for change in entry_point.edge.changes() {
                write!(f, ", {change}")?;
            }
            if config.ping.as_ref() == Some(name) {
                write!(f, ", GET /ping")?;
            }
            if config.metrics.as_ref() == Some(name) {
                write!(f, ", GET /metrics")?;
            }
            writeln!(f)?;
        }
        writeln!(
            f,
            "log: level {}, format {}",
            config.log.level,
            format_name(config.log.format)
        )?;
        match &config.access_log {
            Some(access_log) => writeln!(
                f,
                "access log: format {}, to {}",
                format_name(access_log.format),
                access_log
                    .file_path
                    .as_ref()
                    .map_or_else(|| "standard output".to_owned(), |p| p.display().to_string())
            )?,
            None => writeln!(f, "access log: off")?,
        }
        if !config.watch.is_empty() {
            let watched: Vec<String> = config
                .watch
                .iter()
                .map(|p| p.display().to_string())
                .collect();
            writeln!(f, "watching: {}", watched.join(", "))?;
        }
        if let Some(kubernetes) = &config.kubernetes {
            kubernetes_crd(f, kubernetes)?;
        }
        section(f, "routers", &config.http.routers, router)?;
        section(f, "middlewares", &config.http.middlewares, middleware)?;
        section(f, "services", &config.http.services, service)?;
        section(
            f,
            "servers transports",
            &config.http.servers_transports,
            servers_transport,
        )
    }
}

/// `providers.kubernetesCRD`; the token shows as `<redacted>`.
fn kubernetes_crd(f: &mut fmt::Formatter<'_>, kubernetes: &super::KubernetesCrd) -> fmt::Result {
    let namespaces = if kubernetes.namespaces.is_empty() {
        "all".to_owned()
    } else {
        kubernetes.namespaces.join(", ")
    };
    write!(f, "kubernetes provider: namespaces {namespaces}")?;
    if let Some(selector) = &kubernetes.label_selector {
        write!(f, ", labelSelector {selector}")?;
    }
    match &kubernetes.endpoint {
        Some(endpoint) => write!(f, ", endpoint {endpoint}")?,
        None => write!(f, ", in-cluster or kubeconfig")?,
    }
    if kubernetes.token.is_some() {
        write!(f, ", token {REDACTED}")?;
    }
    if let Some((file, _)) = &kubernetes.cert_authority {
        write!(f, ", CA {}", file.display())?;
    }
    if let Some(entry_point) = &kubernetes.forward_auth_entry_point {
        write!(f, ", forward-auth on {entry_point}")?;
    }
    writeln!(f)
}

fn section<T>(
    f: &mut fmt::Formatter<'_>,
    title: &str,
    items: &std::collections::BTreeMap<String, T>,
    item: fn(&mut String, &T),
) -> fmt::Result {
    writeln!(f)?;
    if items.is_empty() {
        return writeln!(f, "{title}: none");
    }
    writeln!(f, "{title}:")?;
    for (name, value) in items {
        writeln!(f, "  {name}")?;
        let mut lines = String::new();
        item(&mut lines, value);
        for line in lines.lines() {
            writeln!(f, "    {line}")?;
        }
    }
    Ok(())
}

fn format_name(format: LogFormat) -> &'static str {
    match format {
        LogFormat::Common => "common",
        LogFormat::Json => "json",
    }
}

fn router(out: &mut String, router: &Router) {
    let entry_points = if router.entry_points.is_empty() {
        "all".to_owned()
    } else {
        router.entry_points.join(", ")
    };
    let priority = router.priority.map_or_else(
        || format!("{} (the rule's length)", router.rule.default_priority()),
        |p| p.to_string(),
    );
    let middlewares = if router.middlewares.is_empty() {
        "none".to_owned()
    } else {
        router.middlewares.join(", ")
    };
    let _ = writeln!(out, "entry points: {entry_points}");
    let _ = writeln!(out, "rule: {}", router.rule.source());
    let _ = writeln!(out, "priority: {priority}");
    let _ = writeln!(out, "middlewares: {middlewares}");
    let _ = writeln!(out, "service: {}", router.service);
}

fn service(out: &mut String, service: &Service) {
    let servers: Vec<String> = service
        .servers
        .iter()
        .zip(&service.weights)
        .map(|(server, weight)| match weight {
            1 => server.to_string(),
            0 => format!("{server} (weight 0: never picked)"),
            _ => format!("{server} (weight {weight})"),
        })
        .collect();
    let _ = writeln!(out, "servers: {}", servers.join(", "));
    let _ = writeln!(out, "passHostHeader: {}", service.pass_host_header);
    if let Some(transport) = &service.servers_transport {
        let _ = writeln!(out, "serversTransport: {transport}");
    }
    if let Some(check) = &service.health_check {
        health_check(out, check);
    }
}

/// A health check; header values are `<redacted>` (they may be
/// credentials).
fn health_check(out: &mut String, check: &HealthCheck) {
    let mode = match check.mode {
        HealthCheckMode::Http => "http",
        HealthCheckMode::Grpc => "grpc",
    };
    let mut line = match check.mode {
        HealthCheckMode::Http => format!("healthCheck: {mode} {} {}", check.method, check.path),
        HealthCheckMode::Grpc => format!("healthCheck: {mode} grpc.health.v1.Health/Check"),
    };
    let _ = write!(
        line,
        ", every {:?}, timeout {:?}",
        check.interval, check.timeout
    );
    if let Some(scheme) = &check.scheme {
        let _ = write!(line, ", scheme {scheme}");
    }
    if let Some(port) = check.port {
        let _ = write!(line, ", port {port}");
    }
    if let Some(host) = check.hostname.as_ref().and_then(|h| h.to_str().ok()) {
        let _ = write!(line, ", Host {host}");
    }
    match check.status {
        Some(status) => {
            let _ = write!(line, ", passes on {status}");
        }
        None if check.mode == HealthCheckMode::Http => line.push_str(", passes on 2xx/3xx"),
        None => line.push_str(", passes on SERVING"),
    }
    let _ = writeln!(out, "{line}");
    for (name, _) in &check.headers {
        let _ = writeln!(out, "healthCheck.headers.{name}: <redacted>");
    }
}

/// A servers transport: timeouts, TLS settings, file paths; a key given as
/// PEM text is `<redacted>` (a key file's path is shown, never its content).
fn servers_transport(out: &mut String, transport: &ServersTransport) {
    let duration = |d: Option<std::time::Duration>| {
        d.map_or_else(|| "0 (no limit)".to_owned(), |d| format!("{d:?}"))
    };
    if let Some(name) = &transport.server_name {
        let _ = writeln!(out, "serverName: {name}");
    }
    if transport.insecure_skip_verify {
        let _ = writeln!(
            out,
            "insecureSkipVerify: true (server certificates are NOT verified)"
        );
    }
    if !transport.root_ca_sources.is_empty() {
        let _ = writeln!(
            out,
            "rootCAs: {} (added to the system's roots)",
            transport.root_ca_sources.join(", ")
        );
    }
    if let Some(certificate) = &transport.certificate {
        let key = match &certificate.key_source {
            urn if urn.starts_with("urn:") => format!("{REDACTED} (from {urn})"),
            text if text.starts_with('<') => REDACTED.to_owned(),
            path => path.clone(),
        };
        let _ = writeln!(
            out,
            "certificates: certFile {}, keyFile {key}",
            certificate.cert_source
        );
    }
    let _ = writeln!(
        out,
        "maxIdleConnsPerHost: {}",
        transport.max_idle_conns_per_host
    );
    let _ = writeln!(
        out,
        "forwardingTimeouts.dialTimeout: {}",
        duration(transport.dial_timeout)
    );
    let _ = writeln!(
        out,
        "forwardingTimeouts.responseHeaderTimeout: {}",
        duration(transport.response_header_timeout)
    );
    let _ = writeln!(
        out,
        "forwardingTimeouts.idleConnTimeout: {}",
        duration(transport.idle_conn_timeout)
    );
}

fn middleware(out: &mut String, middleware: &Middleware) {
    let options = &middleware.options;
    let shown = Shown { middleware };
    let _ = writeln!(out, "defined in: {}", middleware.origin());
    let level = match (options.client_id.is_some(), options.auth_method) {
        (true, AuthMethod::PrivateKeyJwt) => {
            "gateway (ccgate sends its clientID in assertions signed with privateKey)"
        }
        (true, AuthMethod::TlsClientAuth) => {
            "gateway (ccgate sends its clientID; its TLS client certificate authenticates)"
        }
        (true, _) => "gateway (ccgate sends its clientID and clientSecret)",
        (false, _) => "application (callers send Basic credentials)",
    };
    let _ = writeln!(out, "level: {level}");
    let _ = writeln!(out, "url: {}", shown.plain("url", &options.url));
    if options.audience.is_empty() {
        let _ = writeln!(out, "audience: (none sent)");
    } else {
        let _ = writeln!(
            out,
            "audience: {}",
            shown.plain("audience", &options.audience)
        );
    }
    if let Some(id) = &options.client_id {
        let _ = writeln!(out, "clientID: {}", shown.plain("clientID", id));
    }
    if options.client_secret.is_some() {
        let _ = writeln!(out, "clientSecret: {}", shown.secret("clientSecret"));
    }
    let _ = writeln!(out, "authMethod: {}", options.auth_method.as_str());
    if options.private_key.is_some() {
        let _ = writeln!(out, "privateKey: {}", shown.secret("privateKey"));
    }
    optional(
        out,
        &shown,
        "privateKeyID",
        options.private_key_id.as_deref(),
    );
    if !options.scopes.is_empty() {
        let scopes: Vec<String> = (options.scopes.iter().enumerate())
            .map(|(i, scope)| shown.plain(&format!("scopes[{i}]"), scope))
            .collect();
        let _ = writeln!(out, "scopes: {}", scopes.join(" "));
    }
    for (i, resource) in options.resource.iter().enumerate() {
        // Written as a string or a list: its URN path is either.
        let path = if shown.urn("resource").is_some() {
            "resource".to_owned()
        } else {
            format!("resource[{i}]")
        };
        let _ = writeln!(out, "resource: {}", shown.plain(&path, resource));
    }
    for (name, value) in &options.parameters {
        let path = format!("parameters.{name}");
        let _ = writeln!(out, "parameters: {name} = {}", shown.plain(&path, value));
    }
    optional(out, &shown, "claims", options.claims.as_deref());
    for (header, claim) in &options.forward_headers {
        let path = format!("forwardHeaders.{header}");
        let _ = writeln!(
            out,
            "forwardHeaders: {header} <- {}",
            shown.plain(&path, claim)
        );
    }
    optional(
        out,
        &shown,
        "usernameClaim",
        options.username_claim.as_deref(),
    );
    checks(out, &shown, options);
    client_config(out, &shown, options);
    store(out, &shown, options);
}

/// `introspection` and `verify`, the introspection secret only as shown.
fn checks(out: &mut String, shown: &Shown<'_>, options: &Options) {
    if let Some(introspection) = &options.introspection {
        let url = shown.plain("introspection.url", &introspection.url);
        let method = introspection
            .auth_method
            .unwrap_or(options.auth_method)
            .as_str();
        let _ = writeln!(out, "introspection: {url} (authMethod {method})");
        optional(
            out,
            shown,
            "introspection.clientID",
            introspection.client_id.as_deref(),
        );
        if introspection.client_secret.is_some() {
            let secret = shown.secret("introspection.clientSecret");
            let _ = writeln!(out, "introspection.clientSecret: {secret}");
        }
    }
    if let Some(verify) = &options.verify {
        let url = shown.plain("verify.jwksURL", &verify.jwks_url);
        let _ = writeln!(out, "verify: signatures from {url}");
        optional(out, shown, "verify.issuer", verify.issuer.as_deref());
        optional(out, shown, "verify.audience", verify.audience.as_deref());
    }
}

fn optional(out: &mut String, shown: &Shown<'_>, name: &str, value: Option<&str>) {
    if let Some(value) = value {
        let _ = writeln!(out, "{name}: {}", shown.plain(name, value));
    }
}

fn client_config(out: &mut String, shown: &Shown<'_>, options: &Options) {
    let client = &options.client_config;
    let _ = writeln!(
        out,
        "clientConfig: timeoutSeconds {}, maxRetries {}",
        client.timeout_seconds, client.max_retries
    );
    let tls = &client.tls;
    if tls.ca.is_some() {
        let _ = writeln!(
            out,
            "clientConfig.tls.ca: {}",
            shown.pem("clientConfig.tls.ca")
        );
    }
    if tls.cert.is_some() {
        let _ = writeln!(
            out,
            "clientConfig.tls.cert: {}",
            shown.pem("clientConfig.tls.cert")
        );
    }
    if tls.key.is_some() {
        let _ = writeln!(
            out,
            "clientConfig.tls.key: {}",
            shown.secret("clientConfig.tls.key")
        );
    }
    if tls.insecure_skip_verify {
        let _ = writeln!(
            out,
            "clientConfig.tls.insecureSkipVerify: true (INSECURE: the token endpoint's certificate is not verified)"
        );
    }
}

fn store(out: &mut String, shown: &Shown<'_>, options: &Options) {
    let store = &options.store;
    let kind = if store.redis.is_some() {
        "redis (settings not shown)"
    } else {
        "memory"
    };
    let _ = writeln!(out, "store: {kind}");
    if !store.key_prefix.is_empty() {
        let prefix = shown.plain("store.keyPrefix", &store.key_prefix);
        let _ = writeln!(out, "store.keyPrefix: {prefix}");
    }
    let secret = if store.secret.is_some() {
        shown.secret("store.secret")
    } else {
        "unset (tokens are not encrypted in the store)".to_owned()
    };
    let _ = writeln!(out, "store.secret: {secret}");
}

/// How an option is shown: its value, or its URN when it came from a
/// Secret; secret options never show their value.
struct Shown<'a> {
    middleware: &'a Middleware,
}

impl Shown<'_> {
    fn urn(&self, path: &str) -> Option<&str> {
        (self.middleware.secret_urns.iter())
            .find(|(written, _)| written.eq_ignore_ascii_case(path))
            .map(|(_, urn)| urn.as_str())
    }

    fn plain(&self, path: &str, value: &str) -> String {
        match self.urn(path) {
            Some(urn) => format!("from {urn}"),
            None => value.to_owned(),
        }
    }

    fn pem(&self, path: &str) -> String {
        match self.urn(path) {
            Some(urn) => format!("PEM from {urn}"),
            None => "PEM (inline)".to_owned(),
        }
    }

    fn secret(&self, path: &str) -> String {
        match self.urn(path) {
            Some(urn) => format!("{REDACTED} (from {urn})"),
            None => REDACTED.to_owned(),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::path::PathBuf;

    use serde_json::json;

    use super::*;
    use crate::config::model::{EntryPoint, Http, TlsFiles};

    fn config() -> Config {
        let options = Options::from_value(json!({
            "url": "https://idp.example.com/token",
            "audience": "https://api.example.com",
            "clientID": "id-from-a-secret",
            "clientSecret": "hunter2-client-secret",
            "scopes": ["read", "write"],
            "claims": "Equals(`grp`, `admin`)",
            "forwardHeaders": {"X-Group": "grp"},
            "clientConfig": {"tls": {"ca": "-----BEGIN CERTIFICATE-----", "key": "-----BEGIN PRIVATE KEY-----xyz"}},
            "store": {"secret": "0123456789abcdef", "keyPrefix": "cc:"},
            "introspection": {"url": "https://idp.example.com/introspect", "clientId": "rs",
                              "clientSecret": "introspection-hunter2"},
            "verify": {"jwksUrl": "https://idp.example.com/jwks", "issuer": "https://idp.example.com/"}
        }))
        .unwrap();
        let middleware = Middleware {
            options,
            file: PathBuf::from("conf.d/k8s.yaml"),
            document: Some(4),
            options_path: "spec.plugin.oAuthClientCredentials".to_owned(),
            secret_urns: BTreeMap::from([(
                "clientId".to_owned(),
                "urn:k8s:secret:creds:id".to_owned(),
            )]),
        };
        let router = Router {
            entry_points: Vec::new(),
            rule: std::sync::Arc::new(crate::rule::Rule::parse("Path(`/`)").unwrap()),
            priority: None,
            middlewares: vec!["cc".to_owned()],
            service: "backend".to_owned(),
        };
        let service = Service {
            servers: vec![
                "http://127.0.0.1:9500".parse().unwrap(),
                "http://127.0.0.1:9501".parse().unwrap(),
            ],
            weights: vec![1, 3],
            pass_host_header: true,
            servers_transport: None,
            health_check: Some(HealthCheck {
                mode: HealthCheckMode::Http,
                path: http::uri::PathAndQuery::from_static("/health"),
                interval: std::time::Duration::from_secs(30),
                timeout: std::time::Duration::from_secs(5),
                scheme: None,
                hostname: Some(http::HeaderValue::from_static("health.internal")),
                port: Some(8080),
                headers: vec![(
                    http::HeaderName::from_static("authorization"),
                    http::HeaderValue::from_static("Bearer hunter2-client-secret"),
                )],
                method: http::Method::GET,
                status: None,
            }),
        };
        let entry_point = EntryPoint {
            address: "0.0.0.0:8443".parse().unwrap(),
            tls: Some(TlsFiles {
                cert_file: PathBuf::from("cert.pem"),
                key_file: PathBuf::from("key.pem"),
            }),
            edge: crate::edge::EdgeRules::default(),
            transport: crate::config::Transport::default(),
        };
        Config {
            entry_points: BTreeMap::from([("websecure".to_owned(), entry_point)]),
            http: Http {
                routers: BTreeMap::from([("api".to_owned(), router)]),
                middlewares: BTreeMap::from([("cc".to_owned(), middleware)]),
                services: BTreeMap::from([("backend".to_owned(), service)]),
                servers_transports: BTreeMap::new(),
                kubernetes: BTreeMap::new(),
            },
            ..Config::default()
        }
    }

    #[test]
    fn shows_the_configuration_and_no_secret() {
        let text = Summary::new(&config(), Path::new("ccgate.yaml")).to_string();
        for expected in [
            "ccgate.yaml: the configuration is valid",
            "  websecure: 0.0.0.0:8443, TLS (cert cert.pem, key key.pem)",
            "access log: off",
            "    entry points: all\n    rule: Path(`/`)\n    priority: 9 (the rule's length)\n    middlewares: cc\n    service: backend",
            "    defined in: conf.d/k8s.yaml (document at line 4)",
            "    level: gateway",
            "    clientID: from urn:k8s:secret:creds:id",
            "    clientSecret: <redacted>\n",
            "    scopes: read write",
            "    claims: Equals(`grp`, `admin`)",
            "    forwardHeaders: X-Group <- grp",
            "    clientConfig.tls.ca: PEM (inline)",
            "    clientConfig.tls.key: <redacted>",
            "    introspection: https://idp.example.com/introspect (authMethod auto)",
            "    introspection.clientID: rs",
            "    introspection.clientSecret: <redacted>",
            "    verify: signatures from https://idp.example.com/jwks",
            "    verify.issuer: https://idp.example.com/",
            "    store.keyPrefix: cc:",
            "    store.secret: <redacted>",
            "    servers: http://127.0.0.1:9500/, http://127.0.0.1:9501/ (weight 3)\n    passHostHeader: true",
            "    healthCheck: http GET /health, every 30s, timeout 5s, port 8080, Host health.internal, passes on 2xx/3xx\n    healthCheck.headers.authorization: <redacted>",
        ] {
            assert!(text.contains(expected), "{expected:?} not in\n{text}");
        }
        for secret in [
            "id-from-a-secret",
            "hunter2-client-secret",
            "introspection-hunter2",
            "0123456789abcdef",
            "PRIVATE KEY",
        ] {
            assert!(!text.contains(secret), "{secret} in\n{text}");
        }
    }
}
