//! `ccgate check`: valid configurations, in every layout, print a summary
//! with secrets redacted and exit 0.

use crate::support::{ConfigDir, assert_contains};

/// A main file with everything inline.
const SINGLE_FILE: &str = r#"
entryPoints:
  web: { address: "127.0.0.1:8080" }
  internal: { address: ":9100" }
ping: { entryPoint: internal }
metrics: { prometheus: { entryPoint: internal } }
log: { level: debug, format: json }
accessLog: { format: common, filePath: logs/access.log }
http:
  routers:
    api:
      entryPoints: [web]
      rule: "Host(`api.example.com`) && PathPrefix(`/v1`)"
      middlewares: [cc-auth@file]
      service: backend@file
    auth:
      rule: "Path(`/auth`)"
      priority: 100
      middlewares: [cc-app]
      service: forward-auth@internal
  middlewares:
    cc-auth:
      plugin:
        oAuthClientCredentials:
          url: https://idp.example.com/oauth/token
          clientId: gateway
          clientSecret: hunter2-client-secret
          audience: https://api.example.com
          claims: Equals(`grp`, `admin`)
          forwardHeaders: { Group: grp, Expires-At: exp }
          store: { secret: "0123456789abcdef", keyPrefix: "cc:" }
    cc-app:
      plugin:
        oAuthClientCredentials: { url: "http://127.0.0.1:4444/token", audience: api }
  services:
    backend:
      loadBalancer:
        servers: [ { url: "http://127.0.0.1:9500" }, { url: "http://127.0.0.1:9501" } ]
        passHostHeader: false
"#;

#[test]
fn a_single_file_with_inline_http() {
    let dir = ConfigDir::new(&[("ccgate.yaml", SINGLE_FILE)]);
    let summary = dir.valid();
    assert_contains(
        &summary,
        &[
            "ccgate.yaml: the configuration is valid",
            "  internal: 0.0.0.0:9100, GET /ping, GET /metrics\n  web: 127.0.0.1:8080\n",
            "log: level DEBUG, format json",
            "access log: format common, to logs/access.log",
            "  api\n    entry points: web\n    rule: Host(`api.example.com`) && PathPrefix(`/v1`)\n    \
             priority: 44 (the rule's length)\n    middlewares: cc-auth\n    service: backend\n",
            "  auth\n    entry points: all\n    rule: Path(`/auth`)\n    priority: 100\n    \
             middlewares: cc-app\n    service: forward-auth@internal\n",
            "  cc-app\n    defined in: ccgate.yaml\n    level: application (callers send Basic credentials)\n",
            "  cc-auth\n    defined in: ccgate.yaml\n    level: gateway",
            "    url: https://idp.example.com/oauth/token\n    audience: https://api.example.com\n",
            "    clientID: gateway\n    clientSecret: <redacted>\n",
            "    claims: Equals(`grp`, `admin`)\n",
            "    forwardHeaders: Expires-At <- exp\n    forwardHeaders: Group <- grp\n",
            "    store.keyPrefix: cc:\n    store.secret: <redacted>\n",
            "  backend\n    servers: http://127.0.0.1:9500/, http://127.0.0.1:9501/\n    passHostHeader: false\n",
        ],
    );
    assert!(!summary.contains("watching"), "{summary}");
}

#[test]
fn the_default_file_is_ccgate_yaml() {
    let dir = ConfigDir::new(&[("ccgate.yaml", SINGLE_FILE)]);
    let checked = dir.check(&[]);
    assert_eq!(checked.code, Some(0), "{checked:#?}");
    assert!(
        checked
            .stdout
            .starts_with("ccgate.yaml: the configuration is valid")
    );

    let empty = ConfigDir::new(&[]);
    let checked = empty.check(&[]);
    assert_eq!(checked.code, Some(1), "{checked:#?}");
    assert!(
        checked.stderr.starts_with(
            "ccgate: invalid configuration: ccgate.yaml: cannot read the configuration file: "
        ),
        "{checked:#?}"
    );
}

const MAIN_WITH_FILE: &str = r#"
entryPoints:
  web: { address: "127.0.0.1:8080" }
providers:
  file: { filename: dynamic/gateway.yaml, watch: true }
"#;

const ROUTERS: &str = r#"
http:
  routers:
    api:
      rule: "PathPrefix(`/v1`)"
      middlewares: [cc-auth]
      service: backend
"#;

const SERVICES: &str = r#"
http:
  services:
    backend:
      loadBalancer:
        servers: [ { url: "http://127.0.0.1:9500" } ]
"#;

const MIDDLEWARES: &str = r#"
http:
  middlewares:
    cc-auth:
      plugin:
        oAuthClientCredentials:
          url: https://idp.example.com/oauth/token
          audience: https://api.example.com
"#;

/// Routers, middlewares and services in one `http` mapping.
const DYNAMIC: &str = r#"
http:
  routers:
    api: { rule: "PathPrefix(`/v1`)", middlewares: [cc-auth], service: backend }
  middlewares:
    cc-auth:
      plugin:
        oAuthClientCredentials: { url: "https://idp.example.com/oauth/token", audience: api }
  services:
    backend:
      loadBalancer: { servers: [ { url: "http://127.0.0.1:9500" } ] }
"#;

#[test]
fn the_file_provider_filename_relative_to_the_main_file() {
    let dir = ConfigDir::new(&[
        ("etc/ccgate.yaml", MAIN_WITH_FILE),
        ("etc/dynamic/gateway.yaml", DYNAMIC),
    ]);
    let checked = dir.check(&["-c", "etc/ccgate.yaml"]);
    assert_eq!(checked.code, Some(0), "{checked:#?}");
    assert_contains(
        &checked.stdout,
        &[
            "etc/ccgate.yaml: the configuration is valid",
            "watching: etc/ccgate.yaml, etc/dynamic/gateway.yaml",
            "  cc-auth\n    defined in: etc/dynamic/gateway.yaml\n",
        ],
    );
}

#[test]
fn a_directory_of_several_files() {
    let dir = ConfigDir::new(&[
        (
            "ccgate.yaml",
            "entryPoints: { web: { address: ':8080' } }\nproviders: { file: { directory: conf.d } }\n",
        ),
        ("conf.d/10-routers.yaml", ROUTERS),
        ("conf.d/20-services.yml", SERVICES),
        ("conf.d/30-middlewares.YAML", MIDDLEWARES),
        ("conf.d/README.md", "not: [yaml"),
        ("conf.d/.editor-swap.yaml", "not: [yaml"),
    ]);
    let summary = dir.valid();
    assert_contains(
        &summary,
        &[
            "    service: backend\n",
            "  cc-auth\n    defined in: conf.d/30-middlewares.YAML\n",
            "  backend\n    servers: http://127.0.0.1:9500/\n",
        ],
    );
}

#[test]
fn a_multi_document_file() {
    let dir = ConfigDir::new(&[
        (
            "ccgate.yaml",
            "entryPoints: { web: { address: ':8080' } }\nproviders: { file: { filename: all.yaml } }\n",
        ),
        (
            "all.yaml",
            &format!("{ROUTERS}---\n{SERVICES}---\n# nothing\n---\n{MIDDLEWARES}"),
        ),
    ]);
    let summary = dir.valid();
    assert_contains(
        &summary,
        &[
            "    middlewares: cc-auth\n",
            "  cc-auth\n    defined in: all.yaml (document at line 19)\n",
        ],
    );
}

/// Kubernetes manifests as they are: a Middleware of each apiVersion, a
/// Secret with `data` (base64) and `stringData`, in two namespaces.
const MANIFESTS: &str = r#"
apiVersion: traefik.io/v1alpha1
kind: Middleware
metadata:
  name: cc-auth
  labels: { app: api }
spec:
  plugin:
    oAuthClientCredentials:
      url: https://tenant.auth0.com/oauth/token
      clientID: urn:k8s:secret:my-secret:clientID
      clientSecret: urn:k8s:secret:my-secret:clientSecret
      audience: https://api.example.com
      store:
        secret: urn:k8s:secret:my-secret:storeSecret
---
apiVersion: v1
kind: Secret
metadata:
  name: my-secret
type: Opaque
data:
  clientID: Z2F0ZXdheS1pZC1pbi1hLXNlY3JldA==
  clientSecret: azhzLXNlY3JldC1mcm9tLWRhdGE=
stringData:
  storeSecret: "0123456789abcdef"
---
apiVersion: traefik.containo.us/v1alpha1
kind: Middleware
metadata:
  name: cc-team
  namespace: team
spec:
  plugin:
    oAuthClientCredentials:
      url: https://tenant.auth0.com/oauth/token
      audience: https://team.example.com
      clientId: team-client
      clientSecret: urn:k8s:secret:team-creds:secret
---
apiVersion: v1
kind: Secret
metadata: { name: team-creds, namespace: team }
stringData: { secret: k8s-secret-from-string-data }
"#;

#[test]
fn kubernetes_middlewares_and_secrets() {
    let routers = r#"
http:
  routers:
    api: { rule: "PathPrefix(`/v1`)", middlewares: [cc-auth, cc-team@file], service: backend }
"#;
    let dir = ConfigDir::new(&[
        (
            "ccgate.yaml",
            "entryPoints: { web: { address: ':8080' } }\nproviders: { file: { directory: k8s } }\n",
        ),
        ("k8s/routers.yaml", routers),
        ("k8s/services.yaml", SERVICES),
        ("k8s/middlewares.yaml", MANIFESTS),
    ]);
    let summary = dir.valid();
    assert_contains(
        &summary,
        &[
            "    middlewares: cc-auth, cc-team\n",
            "  cc-auth\n    defined in: k8s/middlewares.yaml (document at line 2)\n    level: gateway",
            "    clientID: from urn:k8s:secret:my-secret:clientID\n",
            "    clientSecret: <redacted> (from urn:k8s:secret:my-secret:clientSecret)\n",
            "    store.secret: <redacted> (from urn:k8s:secret:my-secret:storeSecret)\n",
            "  cc-team\n    defined in: k8s/middlewares.yaml (document at line 28)\n",
            "    clientID: team-client\n    clientSecret: <redacted> (from urn:k8s:secret:team-creds:secret)\n",
        ],
    );
}

#[test]
fn manifests_may_live_in_the_main_file() {
    let main = format!(
        "entryPoints: {{ web: {{ address: ':8080' }} }}\n{}\n---\n{MANIFESTS}",
        r#"http:
  routers:
    api: { rule: "Path(`/`)", middlewares: [cc-auth], service: forward-auth@internal }"#
    );
    let dir = ConfigDir::new(&[("ccgate.yaml", &main)]);
    assert_contains(
        &dir.valid(),
        &["    clientSecret: <redacted> (from urn:k8s:secret:my-secret:clientSecret)\n"],
    );
}

/// A self-signed certificate and its key, and another key.
fn tls_files(dir: &ConfigDir) {
    let cert = rcgen::generate_simple_self_signed(["localhost".to_owned()]).unwrap();
    dir.write("certs/cert.pem", cert.cert.pem());
    dir.write("certs/key.pem", cert.signing_key.serialize_pem());
    dir.write(
        "certs/other.pem",
        rcgen::KeyPair::generate().unwrap().serialize_pem(),
    );
}

const TLS_MAIN: &str = r#"
entryPoints:
  websecure:
    address: "127.0.0.1:8443"
    tls: { certFile: certs/cert.pem, keyFile: certs/KEY.pem }
"#;

#[test]
fn entry_point_tls_files_are_read_and_checked() {
    let dir = ConfigDir::new(&[("ccgate.yaml", &TLS_MAIN.replace("KEY", "key"))]);
    tls_files(&dir);
    assert_contains(
        &dir.valid(),
        &["  websecure: 127.0.0.1:8443, TLS (cert certs/cert.pem, key certs/key.pem)\n"],
    );

    dir.write("ccgate.yaml", TLS_MAIN.replace("KEY", "other"));
    assert_eq!(
        dir.invalid(),
        "ccgate.yaml: entryPoints.websecure.tls.keyFile: the key in certs/other.pem does not belong to the certificate in certs/cert.pem"
    );
    dir.write("ccgate.yaml", TLS_MAIN.replace("KEY", "missing"));
    assert!(dir.invalid().starts_with(
        "ccgate.yaml: entryPoints.websecure.tls.keyFile: cannot read certs/missing.pem: "
    ));
    dir.write("ccgate.yaml", TLS_MAIN.replace("KEY", "cert"));
    assert_eq!(
        dir.invalid(),
        "ccgate.yaml: entryPoints.websecure.tls.keyFile: no private key (a PEM `PRIVATE KEY`, `RSA PRIVATE KEY` or `EC PRIVATE KEY` block) in certs/cert.pem"
    );
}

/// The test-only EC key of `testing/idp/keys`, indented for a YAML block.
fn test_key_block(indent: &str) -> String {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../testing/idp/keys/ec-p256.sec1.pem"
    );
    let key = std::fs::read_to_string(path).expect("test key");
    key.lines()
        .map(|line| format!("{indent}{line}\n"))
        .collect()
}

#[test]
fn client_assertions_resource_and_parameters_are_shown_with_the_key_redacted() {
    let manifests = format!(
        r#"apiVersion: traefik.io/v1alpha1
kind: Middleware
metadata: {{ name: cc-key }}
spec:
  plugin:
    oAuthClientCredentials:
      url: https://idp.example.com/oauth/token
      clientID: key-client
      authMethod: private_key_jwt
      privateKey: urn:k8s:secret:signing:key.pem
      privateKeyID: k-2026
      resource: [https://orders.example.com/, https://billing.example.com/]
      parameters: {{ tenant: acme }}
---
apiVersion: traefik.io/v1alpha1
kind: Middleware
metadata: {{ name: cc-jwt }}
spec:
  plugin:
    oAuthClientCredentials:
      url: https://idp.example.com/oauth/token
      authMethod: client_secret_jwt
      scopes: [read]
---
apiVersion: v1
kind: Secret
metadata: {{ name: signing }}
stringData:
  key.pem: |
{}"#,
        test_key_block("    ")
    );
    let routers = r#"
http:
  routers:
    api: { rule: "PathPrefix(`/v1`)", middlewares: [cc-key, cc-jwt], service: backend }
"#;
    let dir = ConfigDir::new(&[
        (
            "ccgate.yaml",
            "entryPoints: { web: { address: ':8080' } }\nproviders: { file: { directory: k8s } }\n",
        ),
        ("k8s/routers.yaml", routers),
        ("k8s/services.yaml", SERVICES),
        ("k8s/middlewares.yaml", &manifests),
    ]);
    let summary = dir.valid();
    assert_contains(
        &summary,
        &[
            "  cc-jwt\n",
            "    level: application (callers send Basic credentials)\n",
            "    audience: (none sent)\n    authMethod: client_secret_jwt\n    scopes: read\n",
            "    level: gateway (ccgate sends its clientID in assertions signed with privateKey)\n",
            "    authMethod: private_key_jwt\n    privateKey: <redacted> (from urn:k8s:secret:signing:key.pem)\n    privateKeyID: k-2026\n",
            "    resource: https://orders.example.com/\n    resource: https://billing.example.com/\n",
            "    parameters: tenant = acme\n",
        ],
    );
    assert!(!summary.contains("PRIVATE KEY"), "{summary}");
}

#[test]
fn invalid_client_authentication_options_name_their_field() {
    let key = test_key_block("  ");
    let key_line = key.lines().nth(1).expect("a key line").trim().to_owned();
    let cases = [
        ("authMethod: private_key_jwt\nprivateKey: |\n".to_owned() + &key, "clientID: required with authMethod private_key_jwt"),
        ("authMethod: private_key_jwt\nclientID: c".to_owned(), "privateKey: required with authMethod private_key_jwt"),
        ("authMethod: private_key_jwt\nclientID: c\nclientSecret: hunter2-secret\nprivateKey: |\n".to_owned() + &key, "clientSecret: must not be set with authMethod private_key_jwt"),
        ("authMethod: private_key_jwt\nclientID: c\nprivateKey: /etc/keys/key.pem".to_owned(), "privateKey: not PEM text"),
        ("privateKeyID: k1".to_owned(), "privateKeyID: only used with authMethod private_key_jwt"),
        ("parameters: { Client_Secret: hunter2-secret }".to_owned(), "parameters.Client_Secret: `client_secret` is set by ccgate"),
        ("parameters: { scope: read }".to_owned(), "parameters.scope: `scope` is set by ccgate"),
        ("resource: orders".to_owned(), "resource: each resource must be an absolute URI"),
        ("authMethod: tls_client_auth\nclientID: c".to_owned(), "clientConfig.tls.cert: required with authMethod tls_client_auth"),
        ("authMethod: tls_client_auth".to_owned(), "clientID: required with authMethod tls_client_auth"),
    ];
    for (extra, expected) in cases {
        let options: String = format!("url: https://idp.example.com/token\naudience: api\n{extra}")
            .lines()
            .map(|line| format!("          {line}\n"))
            .collect();
        let middlewares = format!(
            "http:\n  middlewares:\n    cc:\n      plugin:\n        oAuthClientCredentials:\n{options}"
        );
        let dir = ConfigDir::new(&[
            (
                "ccgate.yaml",
                "entryPoints: { web: { address: ':8080' } }\nproviders: { file: { filename: dynamic.yaml } }\n",
            ),
            ("dynamic.yaml", &middlewares),
        ]);
        let error = dir.invalid();
        assert!(
            error.contains(&format!(
                "dynamic.yaml: http.middlewares.cc.plugin.oAuthClientCredentials.{expected}"
            )),
            "{expected:?} not in {error}\n{middlewares}"
        );
        assert!(
            !error.contains("hunter2") && !error.contains(&key_line),
            "{error}"
        );
    }
}

#[test]
fn introspection_and_verify_are_shown_without_their_secret() {
    let main = r#"entryPoints: { web: { address: ':8080' } }
http:
  routers:
    api: { rule: "Path(`/`)", middlewares: [cc-hydra], service: forward-auth@internal }
---
apiVersion: traefik.io/v1alpha1
kind: Middleware
metadata: { name: cc-hydra }
spec:
  plugin:
    oAuthClientCredentials:
      url: https://hydra.example.com/oauth2/token
      audience: https://api.example.com
      introspection:
        url: https://hydra-admin.example.com/admin/oauth2/introspect
        clientID: introspector
        clientSecret: urn:k8s:secret:hydra:introspectorSecret
        authMethod: client_secret_post
      verify: { jwksURL: "https://hydra.example.com/.well-known/jwks.json", audience: https://api.example.com }
---
apiVersion: v1
kind: Secret
metadata: { name: hydra }
stringData: { introspectorSecret: introspector-hunter2 }
"#;
    let dir = ConfigDir::new(&[("ccgate.yaml", main)]);
    let summary = dir.valid();
    assert_contains(
        &summary,
        &[
            "    introspection: https://hydra-admin.example.com/admin/oauth2/introspect (authMethod client_secret_post)\n",
            "    introspection.clientID: introspector\n",
            "    introspection.clientSecret: <redacted> (from urn:k8s:secret:hydra:introspectorSecret)\n",
            "    verify: signatures from https://hydra.example.com/.well-known/jwks.json\n",
            "    verify.audience: https://api.example.com\n",
        ],
    );
    assert!(!summary.contains("introspector-hunter2"), "{summary}");
}

#[test]
fn an_unresolvable_introspection_secret_is_named() {
    let main = r#"entryPoints: { web: { address: ':8080' } }
http:
  middlewares:
    cc:
      plugin:
        oAuthClientCredentials:
          url: https://idp.example.com/token
          audience: https://api.example.com
          introspection: { url: "https://idp.example.com/introspect", clientID: rs, clientSecret: "urn:k8s:secret:missing:pw" }
"#;
    let error = ConfigDir::new(&[("ccgate.yaml", main)]).invalid();
    assert!(
        error.contains("introspection.clientSecret") && error.contains("urn:k8s:secret:missing:pw"),
        "{error}"
    );
}
