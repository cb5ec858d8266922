//! `ccgate check` on invalid configurations: exit 1, nothing on standard
//! output, and one line on standard error naming the file, the path of the
//! field and the reason — never a secret value.

use crate::support::ConfigDir;

const MAIN: &str = r#"entryPoints:
  web: { address: "127.0.0.1:8080" }
providers:
  file: { directory: conf.d, watch: true }
"#;

const API: &str = r#"http:
  routers:
    api:
      entryPoints: [web]
      rule: "Host(`api.example.com`) && PathPrefix(`/v1`)"
      middlewares: [cc-auth]
      service: backend
  services:
    backend:
      loadBalancer:
        servers: [ { url: "http://127.0.0.1:9500" } ]
"#;

const AUTH: &str = r#"http:
  middlewares:
    cc-auth:
      plugin:
        oAuthClientCredentials:
          url: https://idp.example.com/oauth/token
          audience: https://api.example.com
          clientID: gateway
          clientSecret: hunter2-client-secret
"#;

/// Files of a case: name (relative to the directory) and content.
type Files = Vec<(&'static str, String)>;

/// The valid configuration the cases start from.
fn base() -> Files {
    vec![
        ("ccgate.yaml", MAIN.to_owned()),
        ("conf.d/api.yaml", API.to_owned()),
        ("conf.d/auth.yaml", AUTH.to_owned()),
    ]
}

/// The base with `from` replaced by `to` in `file` (which must hold it).
fn replace(file: &str, from: &str, to: &str) -> Files {
    let mut files = base();
    let (_, text) = files.iter_mut().find(|(name, _)| *name == file).unwrap();
    assert!(text.contains(from), "{from:?} not in {file}");
    *text = text.replacen(from, to, 1);
    files
}

/// The base with `text` appended to `file`, or a new file.
fn append(file: &'static str, text: &str) -> Files {
    let mut files = base();
    match files.iter_mut().find(|(name, _)| *name == file) {
        Some((_, existing)) => existing.push_str(text),
        None => files.push((file, text.to_owned())),
    }
    files
}

/// Lines that, appended to `conf.d/auth.yaml`, go into cc-auth's options.
fn option(lines: &str) -> Files {
    let indented: String = lines.lines().map(|l| format!("          {l}\n")).collect();
    append("conf.d/auth.yaml", &indented)
}

const OPTIONS: &str = "conf.d/auth.yaml: http.middlewares.cc-auth.plugin.oAuthClientCredentials";

const SECRET: &str = r#"apiVersion: v1
kind: Secret
metadata: { name: creds }
stringData:
  clientSecret: hunter2-client-secret
  timeout: hunter2-timeout
  shortStore: tooshort-secret
"#;

#[test]
fn the_base_configuration_is_valid() {
    let files = base();
    let files: Vec<(&str, &str)> = files.iter().map(|(n, t)| (*n, t.as_str())).collect();
    ConfigDir::new(&files).valid();
}

#[test]
fn every_invalid_configuration_names_file_field_and_reason() {
    let cases: Vec<(&str, Files, String)> = vec![
        (
            "unknown top-level field",
            append("ccgate.yaml", "api: { dashboard: true }\n"),
            "ccgate.yaml: api: unknown field (known: entryPoints, ping, metrics, log, accessLog, providers, http)".into(),
        ),
        (
            "unknown nested field",
            replace("ccgate.yaml", "{ address:", "{ adress:"),
            "ccgate.yaml: entryPoints.web.adress: unknown field (known: address, tls, http, forwardedHeaders, transport)".into(),
        ),
        (
            "connection limit out of range",
            replace("ccgate.yaml", "{ address:", "{ transport: { maxConnections: 0 }, address:"),
            "ccgate.yaml: entryPoints.web.transport.maxConnections: must be a whole number from 1 to 16777216, not 0".into(),
        ),
        (
            "unknown transport field",
            replace("ccgate.yaml", "{ address:", "{ transport: { lifeCycle: { requestAcceptGraceTimeout: 1s } }, address:"),
            "ccgate.yaml: entryPoints.web.transport.lifeCycle.requestAcceptGraceTimeout: unknown field (known: graceTimeOut)".into(),
        ),
        (
            "unknown field in a dynamic file",
            replace("conf.d/api.yaml", "      service: backend", "      service: backend\n      tls: {}"),
            "conf.d/api.yaml: http.routers.api.tls: unknown field (known: entryPoints, rule, priority, middlewares, service)".into(),
        ),
        (
            "unknown field in the options",
            option("clientConfig: { timeout: 3 }"),
            format!("{OPTIONS}.clientConfig.timeout: unknown field (known: tls, timeoutSeconds, maxRetries)"),
        ),
        (
            "unsupported middleware type",
            append("conf.d/auth.yaml", "    hdrs:\n      headers: { customRequestHeaders: { X-A: b } }\n"),
            "conf.d/auth.yaml: http.middlewares.hdrs.headers: unsupported middleware type `headers` (ccgate supports plugin.oAuthClientCredentials)".into(),
        ),
        (
            "unsupported middleware type basicAuth",
            append("conf.d/auth.yaml", "    basic:\n      basicAuth: { users: [\"a:b\"] }\n"),
            "conf.d/auth.yaml: http.middlewares.basic.basicAuth: unsupported middleware type `basicAuth` (ccgate supports plugin.oAuthClientCredentials)".into(),
        ),
        (
            "router to a missing service",
            replace("conf.d/api.yaml", "service: backend", "service: backnd"),
            "conf.d/api.yaml: http.routers.api.service: no service named \"backnd\" (known: backend)".into(),
        ),
        (
            "router to a missing middleware",
            replace("conf.d/api.yaml", "[cc-auth]", "[cc-auth, cc-auht@file]"),
            "conf.d/api.yaml: http.routers.api.middlewares[1]: no middleware named \"cc-auht\" (known: cc-auth)".into(),
        ),
        (
            "router to a missing entry point",
            replace("conf.d/api.yaml", "[web]", "[websecure]"),
            "conf.d/api.yaml: http.routers.api.entryPoints[0]: no entry point named \"websecure\" (known: web)".into(),
        ),
        (
            "router to another provider",
            replace("conf.d/api.yaml", "[cc-auth]", "[cc-auth@kubernetescrd]"),
            "conf.d/api.yaml: http.routers.api.middlewares[0]: \"cc-auth@kubernetescrd\" names the Kubernetes provider, which is not configured (providers.kubernetesCRD)".into(),
        ),
        (
            "a router defined in two files",
            append("conf.d/more.yaml", "http:\n  routers:\n    api: { rule: \"Path(`/`)\", service: backend }\n"),
            "conf.d/more.yaml: http.routers.api: router \"api\" is defined twice: also in conf.d/api.yaml (http.routers.api)".into(),
        ),
        (
            "the seed's malformed URN",
            replace("conf.d/auth.yaml", "clientID: gateway", "clientID: urn:k8s:my-secret:my-secret:clientID"),
            format!("{OPTIONS}.clientID: malformed secret URN urn:k8s:my-secret:my-secret:clientID: expected urn:k8s:secret:NAME:KEY"),
        ),
        (
            "a URN naming a missing Secret",
            replace("conf.d/auth.yaml", "clientSecret: hunter2-client-secret", "clientSecret: urn:k8s:secret:creds:clientSecret"),
            format!("{OPTIONS}.clientSecret: cannot resolve secret URN urn:k8s:secret:creds:clientSecret: no Secret \"creds\" in namespace \"default\" (Secrets there: none)"),
        ),
        (
            "a URN naming a missing key",
            {
                let mut files = replace("conf.d/auth.yaml", "clientSecret: hunter2-client-secret", "clientSecret: urn:k8s:secret:creds:secret");
                files.push(("conf.d/secret.yaml", SECRET.to_owned()));
                files
            },
            format!("{OPTIONS}.clientSecret: cannot resolve secret URN urn:k8s:secret:creds:secret: Secret \"creds\" in namespace \"default\" has no key \"secret\" (its keys: clientSecret, shortStore, timeout)"),
        ),
        (
            "a URN of another namespace",
            {
                let mut files = replace("conf.d/auth.yaml", "clientSecret: hunter2-client-secret", "clientSecret: urn:k8s:secret:creds:clientSecret");
                files.push(("conf.d/secret.yaml", SECRET.replace("{ name: creds }", "{ name: creds, namespace: prod }")));
                files
            },
            format!("{OPTIONS}.clientSecret: cannot resolve secret URN urn:k8s:secret:creds:clientSecret: no Secret \"creds\" in namespace \"default\" (Secrets there: none)"),
        ),
        (
            "a Secret value of the wrong type, not shown",
            {
                let mut files = option("clientConfig: { timeoutSeconds: \"urn:k8s:secret:creds:timeout\" }");
                files.push(("conf.d/secret.yaml", SECRET.to_owned()));
                files
            },
            format!("{OPTIONS}.clientConfig.timeoutSeconds: invalid value read from a Secret (the value is not shown)"),
        ),
        (
            "a rule that does not parse",
            replace("conf.d/api.yaml", "PathPrefix(`/v1`)", "Pathprefix(`/v1`)"),
            "conf.d/api.yaml: http.routers.api.rule: at column 28: unknown function `Pathprefix`; did you mean `PathPrefix`?".into(),
        ),
        (
            "a rule with a bad argument",
            replace("conf.d/api.yaml", "PathPrefix(`/v1`)", "PathPrefix(`v1`)"),
            "conf.d/api.yaml: http.routers.api.rule: at column 39: a path must start with `/`".into(),
        ),
        (
            "bad YAML",
            replace("conf.d/api.yaml", "      service: backend", "     service: backend"),
            "conf.d/api.yaml:7:".into(),
        ),
        (
            "a strict boolean",
            replace("ccgate.yaml", "watch: true", "watch: yes"),
            "ccgate.yaml: providers.file.watch: invalid type: string \"yes\", expected a boolean".into(),
        ),
        (
            "a host name as address",
            replace("ccgate.yaml", "127.0.0.1:8080", "localhost:8080"),
            "ccgate.yaml: entryPoints.web.address: invalid address \"localhost:8080\": expected IP:PORT".into(),
        ),
        (
            "a port out of range",
            replace("ccgate.yaml", "127.0.0.1:8080", ":80800"),
            "ccgate.yaml: entryPoints.web.address: invalid address \":80800\"".into(),
        ),
        (
            "an h2c upstream with a path",
            replace("conf.d/api.yaml", "http://127.0.0.1:9500", "h2c://127.0.0.1:9500/api"),
            "conf.d/api.yaml: http.services.backend.loadBalancer.servers[0].url: \"h2c://127.0.0.1:9500/api\": a path or query in a server URL is not supported".into(),
        ),
        (
            "an unknown servers transport",
            replace("conf.d/api.yaml", "servers: [ { url: \"http://127.0.0.1:9500\" } ]", "servers: [ { url: \"http://127.0.0.1:9500\" } ]\n        serversTransport: fast"),
            "conf.d/api.yaml: http.services.backend.loadBalancer.serversTransport: no serversTransport named \"fast\" (none is defined)".into(),
        ),
        (
            "a non-http upstream",
            replace("conf.d/api.yaml", "http://127.0.0.1:9500", "ftp://127.0.0.1:9500"),
            "conf.d/api.yaml: http.services.backend.loadBalancer.servers[0].url: \"ftp://127.0.0.1:9500\": unsupported scheme `ftp`".into(),
        ),
        (
            "store.secret of the wrong length",
            option("store: { secret: short-key }"),
            format!("{OPTIONS}.store.secret: must be 16, 24 or 32 bytes long (AES-128, -192 or -256), not 9"),
        ),
        (
            "a missing audience",
            replace("conf.d/auth.yaml", "          audience: https://api.example.com\n", ""),
            format!("{OPTIONS}.audience: required"),
        ),
        (
            "clientID without clientSecret",
            replace("conf.d/auth.yaml", "          clientSecret: hunter2-client-secret\n", ""),
            format!("{OPTIONS}.clientSecret: must be set when clientID is set"),
        ),
        (
            "a claims expression that does not parse",
            option("claims: Equals(`grp`, `admin`) &&"),
            format!("{OPTIONS}.claims: at column 26: expected a function call"),
        ),
        (
            "an option of the wrong type",
            option("clientConfig: { maxRetries: many }"),
            format!("{OPTIONS}.clientConfig.maxRetries: invalid type: string \"many\", expected u32"),
        ),
        (
            "an unsupported kind",
            append("conf.d/route.yaml", "apiVersion: traefik.io/v1alpha1\nkind: IngressRoute\nmetadata: { name: r }\n"),
            "conf.d/route.yaml: kind: unsupported kind \"IngressRoute\" (ccgate reads kind Middleware and kind Secret)".into(),
        ),
        (
            "a Kubernetes middleware with a short store.secret from a Secret",
            {
                let mut files = base();
                files.push(("conf.d/k8s.yaml", format!("apiVersion: traefik.io/v1alpha1\nkind: Middleware\nmetadata: {{ name: cc-k8s }}\nspec:\n  plugin:\n    oAuthClientCredentials:\n      url: http://idp/token\n      audience: api\n      store: {{ secret: \"urn:k8s:secret:creds:shortStore\" }}\n---\n{SECRET}")));
                files
            },
            "conf.d/k8s.yaml (document at line 1): spec.plugin.oAuthClientCredentials.store.secret: must be 16, 24 or 32 bytes long (AES-128, -192 or -256), not 15".into(),
        ),
        (
            "Secret data that is not base64",
            append("conf.d/secret.yaml", "apiVersion: v1\nkind: Secret\nmetadata: { name: s }\ndata: { key: \"hunter2-client-secret\" }\n"),
            "conf.d/secret.yaml: data.key: not valid base64 (the value is not shown); use stringData for plain text".into(),
        ),
        (
            "a TOML file in the directory",
            append("conf.d/old.toml", "[http]\n"),
            "conf.d/old.toml: TOML is not supported".into(),
        ),
        (
            "a missing provider directory",
            replace("ccgate.yaml", "directory: conf.d", "directory: confd"),
            "ccgate.yaml: providers.file.directory: cannot read directory confd: ".into(),
        ),
    ];
    let mut failures = Vec::new();
    for (name, files, expected) in cases {
        let files: Vec<(&str, &str)> = files.iter().map(|(n, t)| (*n, t.as_str())).collect();
        let error = ConfigDir::new(&files).invalid();
        if !error.starts_with(&expected) {
            failures.push(format!(
                "{name}:\n  got:      {error}\n  expected: {expected}…"
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
