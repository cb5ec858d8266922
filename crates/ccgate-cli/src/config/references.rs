//! Names that routers give: every entry point, middleware and service a
//! router names must exist.
//!
//! A reference may carry a provider suffix as in Traefik: `name@file` is
//! `name` (every definition ccgate reads, Kubernetes manifests included,
//! comes from its file provider), and the service `forward-auth@internal`
//! is the built-in forward-auth endpoint. With `providers.kubernetesCRD`,
//! a middleware `NAMESPACE-NAME@kubernetescrd` is the Kubernetes
//! provider's: it is kept as written and not checked here (it may appear
//! later; until then the router answers 503). Any other `@provider` is an
//! error.

use std::collections::BTreeMap;

use super::dynamic::Defined;
use super::error::ConfigError;
use super::model::{FORWARD_AUTH_SERVICE, Router, Service};

/// The suffix of the Kubernetes provider's middlewares.
pub(crate) const KUBERNETES_PROVIDER: &str = "kubernetescrd";

/// The router of `defined`, its references checked against the names
/// defined and their `@file` suffixes removed.
///
/// # Errors
///
/// A name that is not defined, or an unknown provider suffix, with the
/// path of the router field that gives it.
pub(super) fn check_router<E, M, S>(
    defined: Defined<Router>,
    entry_points: &BTreeMap<String, E>,
    middlewares: &BTreeMap<String, M>,
    services: &BTreeMap<String, S>,
    kubernetes: bool,
) -> Result<Router, ConfigError> {
    let Defined {
        origin,
        path,
        value: mut router,
    } = defined;
    for (index, name) in router.entry_points.iter().enumerate() {
        // Entry points are static: Traefik names them without a provider.
        if !entry_points.contains_key(name) {
            let reason = missing("entry point", name, entry_points);
            return Err(origin.error(&format!("{path}.entryPoints[{index}]"), reason));
        }
    }
    for (index, name) in router.middlewares.iter_mut().enumerate() {
        let field = format!("{path}.middlewares[{index}]");
        if let Some((local, KUBERNETES_PROVIDER)) = name.split_once('@') {
            if !kubernetes {
                let reason = format!(
                    "{name:?} names the Kubernetes provider, which is not configured \
                     (providers.kubernetesCRD)"
                );
                return Err(origin.error(&field, reason));
            }
            if local.is_empty() {
                return Err(origin.error(&field, format!("invalid middleware name {name:?}")));
            }
            continue;
        }
        let local = local_name(name).map_err(|reason| origin.error(&field, reason))?;
        if !middlewares.contains_key(local) {
            return Err(origin.error(&field, missing("middleware", local, middlewares)));
        }
        *name = local.to_owned();
    }
    if router.service != FORWARD_AUTH_SERVICE {
        let field = format!("{path}.service");
        let local = local_name(&router.service).map_err(|reason| origin.error(&field, reason))?;
        if !services.contains_key(local) {
            return Err(origin.error(&field, missing("service", local, services)));
        }
        router.service = local.to_owned();
    }
    Ok(router)
}

/// Checks the servers transport that a service names, if any, and
/// removes its `@file` suffix.
///
/// # Errors
///
/// A name that is not defined, or an unknown provider suffix, on
/// `loadBalancer.serversTransport`.
pub(super) fn check_service<T>(
    defined: Defined<Service>,
    transports: &BTreeMap<String, T>,
) -> Result<Service, ConfigError> {
    let Defined {
        origin,
        path,
        value: mut service,
    } = defined;
    if let Some(name) = &service.servers_transport {
        let field = format!("{path}.loadBalancer.serversTransport");
        let local = local_name(name).map_err(|reason| origin.error(&field, reason))?;
        if !transports.contains_key(local) {
            return Err(origin.error(&field, missing("serversTransport", local, transports)));
        }
        service.servers_transport = Some(local.to_owned());
    }
    Ok(service)
}

/// `name` without its `@file` suffix.
fn local_name(name: &str) -> Result<&str, String> {
    match name.split_once('@') {
        None => Ok(name),
        Some((local, "file")) if !local.is_empty() => Ok(local),
        Some((_, provider)) => Err(format!(
            "unknown provider in {name:?}: ccgate reads names with `@file` or without a suffix, \
             and `{FORWARD_AUTH_SERVICE}` as a service (not `@{provider}`)"
        )),
    }
}

fn missing<T>(what: &str, name: &str, known: &BTreeMap<String, T>) -> String {
    if known.is_empty() {
        format!("no {what} named {name:?} (none is defined)")
    } else {
        let known: Vec<&str> = known.keys().map(String::as_str).collect();
        format!("no {what} named {name:?} (known: {})", known.join(", "))
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;
    use crate::config::error::Origin;

    fn router(entry_points: &[&str], middlewares: &[&str], service: &str) -> Defined<Router> {
        Defined {
            origin: Origin::file(Path::new("conf.d/api.yaml")),
            path: "http.routers.api".to_owned(),
            value: Router {
                entry_points: entry_points.iter().map(|s| (*s).to_owned()).collect(),
                rule: std::sync::Arc::new(crate::rule::Rule::parse("Path(`/`)").unwrap()),
                priority: None,
                middlewares: middlewares.iter().map(|s| (*s).to_owned()).collect(),
                service: service.to_owned(),
            },
        }
    }

    fn check(defined: Defined<Router>) -> Result<Router, String> {
        let names = |names: &[&str]| -> BTreeMap<String, ()> {
            names.iter().map(|n| ((*n).to_owned(), ())).collect()
        };
        check_router(
            defined,
            &names(&["web", "internal"]),
            &names(&["cc-auth"]),
            &names(&["backend"]),
            false,
        )
        .map_err(|e| e.to_string())
    }

    #[test]
    fn strips_file_suffixes_and_keeps_the_internal_service() {
        let r = check(router(&["web"], &["cc-auth@file"], "backend@file")).unwrap();
        assert_eq!(
            (r.middlewares, r.service),
            (vec!["cc-auth".to_owned()], "backend".to_owned())
        );
        let r = check(router(&[], &["cc-auth"], FORWARD_AUTH_SERVICE)).unwrap();
        assert_eq!(r.service, FORWARD_AUTH_SERVICE);
    }

    #[test]
    fn kubernetes_middlewares_are_kept_unchecked_when_the_provider_is_on() {
        let names = |names: &[&str]| -> BTreeMap<String, ()> {
            names.iter().map(|n| ((*n).to_owned(), ())).collect()
        };
        let r = check_router(
            router(&[], &["cc-auth", "prod-cc@kubernetescrd"], "backend"),
            &names(&["web"]),
            &names(&["cc-auth"]),
            &names(&["backend"]),
            true,
        )
        .unwrap();
        assert_eq!(r.middlewares, ["cc-auth", "prod-cc@kubernetescrd"]);
    }

    #[test]
    fn dangling_references_name_the_router_field() {
        assert_eq!(
            check(router(&[], &[], "backnd")).unwrap_err(),
            "conf.d/api.yaml: http.routers.api.service: no service named \"backnd\" (known: backend)"
        );
        assert_eq!(
            check(router(&[], &["cc-auth", "cc"], "backend")).unwrap_err(),
            "conf.d/api.yaml: http.routers.api.middlewares[1]: no middleware named \"cc\" (known: cc-auth)"
        );
        assert_eq!(
            check(router(&["web", "websecure"], &[], "backend")).unwrap_err(),
            "conf.d/api.yaml: http.routers.api.entryPoints[1]: no entry point named \"websecure\" (known: internal, web)"
        );
        let err = check(router(&[], &["cc-auth@kubernetescrd"], "backend")).unwrap_err();
        assert!(
            err.contains(
                "http.routers.api.middlewares[0]: \"cc-auth@kubernetescrd\" names the Kubernetes provider, which is not configured"
            ),
            "{err}"
        );
        let err = check(router(&[], &["cc-auth@kubernetes"], "backend")).unwrap_err();
        assert!(
            err.contains(
                "http.routers.api.middlewares[0]: unknown provider in \"cc-auth@kubernetes\""
            ),
            "{err}"
        );
        let err = check(router(&[], &[], "api@internal")).unwrap_err();
        assert!(
            err.contains("http.routers.api.service: unknown provider"),
            "{err}"
        );
        let err = check_router(
            router(&[], &[], "x"),
            &BTreeMap::<String, ()>::new(),
            &BTreeMap::<String, ()>::new(),
            &BTreeMap::<String, ()>::new(),
            false,
        )
        .unwrap_err();
        assert!(
            err.to_string()
                .ends_with("no service named \"x\" (none is defined)"),
            "{err}"
        );
    }
}
