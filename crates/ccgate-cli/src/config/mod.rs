//! The configuration file: loading, checking and summarising it.
//!
//! [`load`] reads the main file (static configuration in Traefik's shapes,
//! and optionally an inline `http` section), then the file provider's
//! `filename` or every `*.yaml`/`*.yml` file of its `directory`, and
//! returns a [`Config`] in which:
//!
//! - every field is known (names match case-insensitively, as in Traefik)
//!   and has the right type;
//! - every router rule parses, every router names existing entry points,
//!   middlewares and services;
//! - every middleware's options are read ([`ccgate::options::Options`]),
//!   their secret URNs resolved from the Secret manifests of every file.
//!
//! Deeper checks of the middleware options (required fields, claims,
//! `store.secret` length, TLS PEM) happen when the middleware is built;
//! `ccgate check` builds them all, and reads the entry points' TLS files
//! ([`read_tls`]), as `serve` would.
//!
//! Files are YAML, possibly of several documents (`---`); a document with
//! a `kind` is a Kubernetes manifest ([`kubernetes`]). Relative paths are
//! relative to the main file's directory. The full reference is
//! `docs/configuration.md`.
//!
//! # Errors
//!
//! Every [`ConfigError`] names the file, the path of the field and the
//! reason; none shows a secret value.
//!
//! # Example
//!
//! ```text
//! let config = config::load(Path::new("ccgate.yaml"))?;
//! for (name, middleware) in &config.http.middlewares {
//!     let built = ccgate::Middleware::builder(middleware.options.clone())
//!         .name(name)
//!         .build()
//!         .map_err(|error| middleware.error(&error))?;
//! }
//! ```

mod dynamic;
mod edge;
mod error;
mod health_check;
mod kubernetes;
#[cfg(feature = "kubernetes")]
mod kubernetes_api;
mod kubernetes_crd;
mod model;
mod references;
mod secrets;
mod servers_transport;
mod static_config;
mod summary;
mod tls;
mod transport;
mod yaml;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

pub(crate) use error::ConfigError;
pub(crate) use health_check::{HealthCheck, Mode as HealthCheckMode};
#[cfg(feature = "kubernetes")]
pub(crate) use kubernetes_api::{ApiSecrets, api_middleware};
pub(crate) use kubernetes_crd::KubernetesCrd;
#[cfg(feature = "kubernetes")]
pub(crate) use kubernetes_crd::is_dns_label;
pub(crate) use model::{
    AccessLog, Config, EntryPoint, FORWARD_AUTH_SERVICE, Http, Log, LogFormat, Middleware, Service,
    TlsFiles,
};
pub(crate) use references::KUBERNETES_PROVIDER;
pub(crate) use servers_transport::ServersTransport;
pub(crate) use summary::Summary;
pub(crate) use tls::read_tls;
pub(crate) use transport::{DEFAULT_GRACE_TIMEOUT, Transport};

use dynamic::Definitions;
use error::Origin;
use static_config::{ProviderSource, Static};
use yaml::Document;

/// Loads the configuration whose main file is `path`.
///
/// # Errors
///
/// The first problem found, as a [`ConfigError`]: a file that cannot be
/// read, a YAML syntax error, an unknown field, a wrong type, an
/// unsupported middleware, a dangling reference, an unresolvable secret
/// URN, or options the middleware rejects on reading.
pub(crate) fn load(path: &Path) -> Result<Config, ConfigError> {
    let text = read_text(path, &Origin::file(path), "")?;
    load_text(path, &text)
}

/// Loads the configuration whose main file is `path` and holds `text`
/// (the provider's files, if any, are read from disk).
///
/// # Errors
///
/// As [`load`].
pub(crate) fn load_text(path: &Path, text: &str) -> Result<Config, ConfigError> {
    let main = Origin::file(path);
    let base = path.parent().unwrap_or_else(|| Path::new(""));
    let mut definitions = Definitions::default();
    let mut configuration: Option<Document> = None;
    for document in yaml::documents(path, text)? {
        if kubernetes::is_manifest(&document) {
            kubernetes::read(document, &mut definitions)?;
        } else if let Some(first) = &configuration {
            let reason = format!(
                "a second configuration document (the first is in {}): the main file holds one, \
                 besides Kubernetes manifests; put more of `http` in providers.file",
                first.origin
            );
            return Err(document.origin.error("", reason));
        } else {
            configuration = Some(document);
        }
    }
    let Some(configuration) = configuration else {
        let reason = "no configuration document (entryPoints, providers, …) in the main file";
        return Err(main.error("", reason));
    };
    let origin = configuration.origin;
    let Static {
        entry_points,
        ping,
        metrics,
        log,
        access_log,
        provider,
        kubernetes_crd,
        http,
    } = static_config::read(configuration.value, &origin, base)?;
    if let Some(http) = http {
        definitions.read_http(http, &origin)?;
    }
    let mut watch = Vec::new();
    if let Some(provider) = provider {
        let (files, watched) = match provider.source {
            ProviderSource::File(file) => {
                if same_file(&file, path) {
                    let reason = "names the main file itself; put `http` in the main file instead";
                    return Err(origin.error("providers.file.filename", reason));
                }
                let text = read_text(&file, &origin, "providers.file.filename")?;
                (vec![(file.clone(), text)], file)
            }
            ProviderSource::Directory(dir) => (directory_files(&dir, &origin)?, dir),
        };
        for (file, text) in files {
            for document in yaml::documents(&file, &text)? {
                if kubernetes::is_manifest(&document) {
                    kubernetes::read(document, &mut definitions)?;
                } else {
                    definitions.read_document(document.value, &document.origin)?;
                }
            }
        }
        if provider.watch {
            watch = vec![path.to_owned(), watched];
        }
    }
    let kubernetes = kubernetes_crd
        .map(|value| {
            let shared = [ping.as_deref(), metrics.as_deref()];
            let read = kubernetes_crd::read(
                value,
                &origin,
                base,
                &definitions.secrets,
                &entry_points,
                &shared,
            )?;
            if cfg!(feature = "kubernetes") {
                Ok(read)
            } else {
                let reason = "this ccgate was built without the `kubernetes` feature";
                Err(origin.error("providers.kubernetesCRD", reason))
            }
        })
        .transpose()?;
    // The Kubernetes forward-auth entry point answers only /NAMESPACE/NAME.
    let forward_auth = kubernetes
        .as_ref()
        .and_then(|k| k.forward_auth_entry_point.as_deref());
    for router in definitions.routers.values() {
        if let Some(index) = router
            .value
            .entry_points
            .iter()
            .position(|e| Some(e.as_str()) == forward_auth)
        {
            let reason = "is providers.kubernetesCRD.forwardAuth.entryPoint, which answers only \
                          /NAMESPACE/NAME: routers cannot use it";
            let field = format!("{}.entryPoints[{index}]", router.path);
            return Err(router.origin.error(&field, reason));
        }
    }
    let http = resolve(definitions, &entry_points, base, kubernetes.is_some())?;
    Ok(Config {
        entry_points,
        ping,
        metrics,
        log,
        access_log,
        watch,
        kubernetes,
        http,
    })
}

/// Resolves the middlewares' secret URNs and options, reads the servers
/// transports' files (relative to `base`, the main file's folder), and
/// checks the routers' and services' references.
fn resolve<E>(
    definitions: Definitions,
    entry_points: &BTreeMap<String, E>,
    base: &Path,
    kubernetes: bool,
) -> Result<Http, ConfigError> {
    let Definitions {
        routers,
        middlewares,
        services,
        servers_transports,
        secrets,
    } = definitions;
    let servers_transports = servers_transports
        .into_iter()
        .map(|(name, defined)| {
            let transport = servers_transport::resolve(defined, &secrets, base)?;
            Ok((name, transport))
        })
        .collect::<Result<BTreeMap<_, _>, ConfigError>>()?;
    let middlewares = middlewares
        .into_iter()
        .map(|(name, defined)| Ok((name, dynamic::resolve_middleware(defined, &secrets)?)))
        .collect::<Result<BTreeMap<_, _>, ConfigError>>()?;
    let services = services
        .into_iter()
        .map(|(name, defined)| {
            Ok((
                name,
                references::check_service(defined, &servers_transports)?,
            ))
        })
        .collect::<Result<BTreeMap<_, _>, ConfigError>>()?;
    let routers = routers
        .into_iter()
        .map(|(name, defined)| {
            let router = references::check_router(
                defined,
                entry_points,
                &middlewares,
                &services,
                kubernetes,
            )?;
            Ok((name, router))
        })
        .collect::<Result<_, ConfigError>>()?;
    Ok(Http {
        routers,
        middlewares,
        services,
        servers_transports,
        kubernetes: BTreeMap::new(),
    })
}

/// The text of `file`, which the field at `path` of `origin` names (the
/// file itself when `path` is empty).
fn read_text(file: &Path, origin: &Origin, path: &str) -> Result<String, ConfigError> {
    std::fs::read_to_string(file).map_err(|error| {
        let what = if path.is_empty() {
            "cannot read the configuration file".to_owned()
        } else {
            format!("cannot read {}", file.display())
        };
        let error = if error.kind() == std::io::ErrorKind::InvalidData {
            "it is not UTF-8 text".to_owned()
        } else {
            error.to_string()
        };
        origin.error(path, format!("{what}: {error}"))
    })
}

/// The `*.yaml` and `*.yml` files of `dir`, sorted by name, with their
/// text. Not recursive; names starting with `.` are skipped (Kubernetes
/// mounts keep their versions in `..data` directories). A `.toml` file is
/// an error rather than silently ignored.
fn directory_files(dir: &Path, origin: &Origin) -> Result<Vec<(PathBuf, String)>, ConfigError> {
    const FIELD: &str = "providers.file.directory";
    let cannot = |error: std::io::Error| {
        origin.error(
            FIELD,
            format!("cannot read directory {}: {error}", dir.display()),
        )
    };
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(cannot)? {
        let entry = entry.map_err(cannot)?;
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        if name.starts_with('.') {
            continue;
        }
        let file = entry.path();
        let extension = file
            .extension()
            .and_then(|e| e.to_str())
            .map(str::to_ascii_lowercase);
        match extension.as_deref() {
            Some("yaml" | "yml") if file.is_file() => files.push(file),
            Some("toml") => {
                let reason = "TOML is not supported: ccgate reads YAML (*.yaml, *.yml) only";
                return Err(Origin::file(&file).error("", reason));
            }
            _ => {}
        }
    }
    files.sort();
    files
        .into_iter()
        .map(|file| {
            let text = read_text(&file, &Origin::file(&file), "")?;
            Ok((file, text))
        })
        .collect()
}

/// Whether two paths name the same existing file.
fn same_file(a: &Path, b: &Path) -> bool {
    match (a.canonicalize(), b.canonicalize()) {
        (Ok(a), Ok(b)) => a == b,
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A temporary directory of files, removed on drop.
    struct Dir(PathBuf);

    impl Dir {
        fn new(test: &str, files: &[(&str, &str)]) -> Self {
            let dir =
                std::env::temp_dir().join(format!("ccgate-load-{}-{test}", std::process::id()));
            let _ = std::fs::remove_dir_all(&dir);
            for (name, text) in files {
                let path = dir.join(name);
                std::fs::create_dir_all(path.parent().unwrap()).unwrap();
                std::fs::write(path, text).unwrap();
            }
            Self(dir)
        }

        fn load(&self) -> Result<Config, String> {
            load(&self.0.join("ccgate.yaml"))
                .map_err(|e| e.to_string().replace(&format!("{}/", self.0.display()), ""))
        }
    }

    impl Drop for Dir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    const ROUTER: &str = "http:\n  routers:\n    api: {rule: \"Path(`/`)\", service: s}\n";
    const SERVICE: &str =
        "http:\n  services:\n    s: {loadBalancer: {servers: [{url: \"http://127.0.0.1:1\"}]}}\n";

    #[test]
    fn a_directory_is_read_sorted_skipping_hidden_and_other_files() {
        let dir = Dir::new(
            "directory",
            &[
                (
                    "ccgate.yaml",
                    "entryPoints: {web: {address: ':1'}}\nproviders: {file: {directory: conf.d, watch: true}}\n",
                ),
                ("conf.d/b.yml", SERVICE),
                ("conf.d/a.yaml", ROUTER),
                ("conf.d/README.md", "not yaml: ["),
                ("conf.d/.hidden.yaml", "not yaml: ["),
                ("conf.d/..data/x.yaml", "not yaml: ["),
            ],
        );
        let config = dir.load().unwrap();
        assert_eq!(config.http.routers["api"].service, "s");
        assert_eq!(
            config.watch,
            [dir.0.join("ccgate.yaml"), dir.0.join("conf.d")]
        );
    }

    #[test]
    fn watch_lists_the_provider_file() {
        let dir = Dir::new(
            "watch",
            &[
                (
                    "ccgate.yaml",
                    "entryPoints: {web: {address: ':1'}}\nproviders: {file: {filename: dynamic.yaml, watch: true}}\n",
                ),
                ("dynamic.yaml", &format!("{ROUTER}---\n{SERVICE}")),
            ],
        );
        let config = dir.load().unwrap();
        assert_eq!(
            config.watch,
            [dir.0.join("ccgate.yaml"), dir.0.join("dynamic.yaml")]
        );
        let dir = Dir::new(
            "no-watch",
            &[
                (
                    "ccgate.yaml",
                    "entryPoints: {web: {address: ':1'}}\nproviders: {file: {filename: dynamic.yaml}}\n",
                ),
                ("dynamic.yaml", ""),
            ],
        );
        assert!(dir.load().unwrap().watch.is_empty());
    }

    #[test]
    fn file_level_errors() {
        for (test, files, expected) in [
            (
                "toml",
                &[
                    (
                        "ccgate.yaml",
                        "entryPoints: {web: {address: ':1'}}\nproviders: {file: {directory: d}}\n",
                    ),
                    ("d/x.toml", ""),
                ][..],
                "d/x.toml: TOML is not supported",
            ),
            (
                "no-dir",
                &[(
                    "ccgate.yaml",
                    "entryPoints: {web: {address: ':1'}}\nproviders: {file: {directory: d}}\n",
                )][..],
                "ccgate.yaml: providers.file.directory: cannot read directory d: ",
            ),
            (
                "no-file",
                &[(
                    "ccgate.yaml",
                    "entryPoints: {web: {address: ':1'}}\nproviders: {file: {filename: d.yaml}}\n",
                )][..],
                "ccgate.yaml: providers.file.filename: cannot read d.yaml: ",
            ),
            (
                "itself",
                &[(
                    "ccgate.yaml",
                    "entryPoints: {web: {address: ':1'}}\nproviders: {file: {filename: ccgate.yaml}}\n",
                )][..],
                "ccgate.yaml: providers.file.filename: names the main file itself",
            ),
            (
                "two-documents",
                &[(
                    "ccgate.yaml",
                    "entryPoints: {web: {address: ':1'}}\n---\nhttp: {}\n",
                )][..],
                "ccgate.yaml (document at line 3): a second configuration document (the first is in ccgate.yaml (document at line 1))",
            ),
            (
                "only-manifests",
                &[(
                    "ccgate.yaml",
                    "apiVersion: v1\nkind: Secret\nmetadata: {name: s}\n",
                )][..],
                "ccgate.yaml: no configuration document",
            ),
        ] {
            let dir = Dir::new(test, files);
            let err = dir.load().unwrap_err();
            assert!(
                err.starts_with(expected),
                "{test}: {err}\n  expected: {expected}"
            );
        }
    }

    #[test]
    fn a_file_that_is_not_utf8_is_named() {
        let main = "entryPoints: {web: {address: ':1'}}\nproviders: {file: {filename: d.yaml}}\n";
        let dir = Dir::new("utf8", &[("ccgate.yaml", main)]);
        std::fs::write(dir.0.join("d.yaml"), b"a: \xff\n").unwrap();
        assert_eq!(
            dir.load().unwrap_err(),
            "ccgate.yaml: providers.file.filename: cannot read d.yaml: it is not UTF-8 text"
        );
    }

    #[test]
    fn debug_of_what_is_read_shows_no_secret() {
        let main = "entryPoints: {web: {address: ':1'}}\nhttp:\n  middlewares:\n    cc:\n      plugin:\n        oAuthClientCredentials: {clientSecret: hunter2-inline}\n---\napiVersion: v1\nkind: Secret\nmetadata: {name: s}\nstringData: {k: hunter2-in-a-secret}\n";
        let documents = yaml::documents(Path::new("c.yaml"), main).unwrap();
        let debug = format!("{documents:?}");
        let mut definitions = Definitions::default();
        let mut documents = documents.into_iter();
        let configuration = documents.next().unwrap();
        let origin = configuration.origin.clone();
        let stat = static_config::read(configuration.value, &origin, Path::new("")).unwrap();
        let debug = format!("{debug}{stat:?}");
        definitions.read_http(stat.http.unwrap(), &origin).unwrap();
        kubernetes::read(documents.next().unwrap(), &mut definitions).unwrap();
        let debug = format!("{debug}{definitions:?}");
        for secret in ["hunter2-inline", "hunter2-in-a-secret"] {
            assert!(!debug.contains(secret), "{debug}");
        }
    }

    #[cfg(feature = "kubernetes")]
    #[test]
    fn the_kubernetes_provider_is_read_and_its_forward_auth_entry_point_kept_for_it() {
        let main = "\
entryPoints: {web: {address: ':1'}, auth: {address: ':2'}}
providers:
  kubernetesCRD:
    endpoint: http://127.0.0.1:6443
    token: hunter2-kube-token
    forwardAuth: {entryPoint: auth}
http:
  routers:
    api: {rule: \"Path(`/`)\", middlewares: [apps-cc@kubernetescrd], service: forward-auth@internal}
";
        let dir = Dir::new("kubernetes", &[("ccgate.yaml", main)]);
        let config = dir.load().unwrap();
        let kubernetes = config.kubernetes.as_ref().unwrap();
        assert_eq!(kubernetes.forward_auth_entry_point.as_deref(), Some("auth"));
        assert_eq!(
            config.http.routers["api"].middlewares,
            ["apps-cc@kubernetescrd"]
        );
        let summary = Summary::new(&config, Path::new("ccgate.yaml")).to_string();
        assert!(
            summary.contains("kubernetes provider: namespaces all, endpoint http://127.0.0.1:6443/, token <redacted>, forward-auth on auth"),
            "{summary}"
        );
        assert!(!summary.contains("hunter2"), "{summary}");
        assert!(!format!("{config:?}").contains("hunter2"));
        let dir = Dir::new(
            "kubernetes-entry-point",
            &[(
                "ccgate.yaml",
                &main.replace("api: {rule:", "api: {entryPoints: [web, auth], rule:"),
            )],
        );
        assert_eq!(
            dir.load().unwrap_err(),
            "ccgate.yaml: http.routers.api.entryPoints[1]: is providers.kubernetesCRD.forwardAuth.entryPoint, which answers only /NAMESPACE/NAME: routers cannot use it"
        );
    }

    #[test]
    fn kubernetes_manifests_in_the_main_file() {
        let main = "\
entryPoints: {web: {address: ':1'}}
http:
  routers:
    api: {rule: \"Path(`/`)\", middlewares: [cc], service: forward-auth@internal}
---
apiVersion: traefik.containo.us/v1alpha1
kind: Middleware
metadata: {name: cc, namespace: prod}
spec:
  plugin:
    oAuthClientCredentials:
      url: http://idp/token
      audience: api
      clientID: urn:k8s:secret:creds:id
      clientSecret: urn:k8s:secret:creds:secret
---
apiVersion: v1
kind: Secret
metadata: {name: creds, namespace: prod}
stringData: {id: the-id, secret: the-secret}
";
        let dir = Dir::new("manifests", &[("ccgate.yaml", main)]);
        let config = dir.load().unwrap();
        let cc = &config.http.middlewares["cc"];
        assert_eq!(cc.options.client_id.as_deref(), Some("the-id"));
        assert_eq!(cc.document, Some(6));
        assert_eq!(cc.secret_urns["clientID"], "urn:k8s:secret:creds:id");
        assert_eq!(
            config.http.routers["api"].service,
            model::FORWARD_AUTH_SERVICE
        );
    }
}
