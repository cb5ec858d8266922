//! The provider's objects and what they make: one task receives every
//! watcher's events, keeps the Middlewares and Secrets, and after each
//! change validates every Middleware on its own and swaps the result in.
//!
//! - A Middleware is valid when its options read (URNs resolved from the
//!   Secrets of its own namespace only) and the middleware builds. An
//!   invalid one is logged once per distinct error, with its namespace,
//!   name and field; its last valid version, if any, keeps serving.
//! - A Secret whose `data` does not decode is logged and its last valid
//!   version kept.
//! - When two objects make the same name (`a-b/c` and `a/b-c` are both
//!   `a-b-c@kubernetescrd`; or one Middleware in both API groups), the
//!   first in order of (API group preference, namespace, name) wins and
//!   the other is logged.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::sync::atomic::Ordering;

use tokio::sync::mpsc;

use super::MIDDLEWARE_GROUPS;
use super::watch::{Change, Event, Kind, Object};
use crate::config::{self, ApiSecrets, KUBERNETES_PROVIDER};
use crate::gateway::{Discovered, Sources};

/// A Middleware object: API group (index in [`MIDDLEWARE_GROUPS`]),
/// namespace, name.
type MiddlewareKey = (usize, String, String);

/// The provider's state; see the module docs.
pub(super) struct State {
    sources: Arc<Sources>,
    /// Watchers that have not finished their first list.
    listing: BTreeSet<usize>,
    /// Per watcher, the objects of the list in progress.
    lists: BTreeMap<usize, Vec<Object>>,
    /// Middleware objects, as last received, by key, with their watcher.
    middlewares: BTreeMap<MiddlewareKey, (usize, Object)>,
    /// Secret objects' names by watcher (their values are in `secrets`).
    secret_names: BTreeMap<(String, String), usize>,
    secrets: ApiSecrets,
    /// The last valid version of each middleware, by ccgate name.
    valid: BTreeMap<String, Discovered>,
    /// The last error logged per ccgate name, to log each error once.
    logged: BTreeMap<String, String>,
}

impl State {
    pub(super) fn new(sources: Arc<Sources>, watchers: usize) -> Self {
        Self {
            sources,
            listing: (0..watchers).collect(),
            lists: BTreeMap::new(),
            middlewares: BTreeMap::new(),
            secret_names: BTreeMap::new(),
            secrets: ApiSecrets::default(),
            valid: BTreeMap::new(),
            logged: BTreeMap::new(),
        }
    }

    /// Applies events until every watcher is gone.
    pub(super) async fn run(mut self, mut events: mpsc::Receiver<Event>) {
        while let Some(event) = events.recv().await {
            let mut changed = self.receive(event);
            // Take what else is queued before rebuilding once.
            while let Ok(event) = events.try_recv() {
                changed |= self.receive(event);
            }
            if changed && self.listing.is_empty() {
                self.rebuild();
            }
        }
    }

    /// Takes one event in; whether the objects changed.
    fn receive(&mut self, event: Event) -> bool {
        let Event {
            watcher,
            kind,
            change,
        } = event;
        match change {
            Change::Listing => {
                self.lists.insert(watcher, Vec::new());
                false
            }
            Change::Listed(object) => {
                self.lists.entry(watcher).or_default().push(object);
                false
            }
            Change::ListDone => {
                let listed = self.lists.remove(&watcher).unwrap_or_default();
                self.replace(watcher, &kind, listed);
                if self.listing.remove(&watcher) && self.listing.is_empty() {
                    self.rebuild();
                    self.sources.gateway().ready.store(true, Ordering::Release);
                    tracing::info!("kubernetes provider: every watched kind is listed; ready");
                    return false;
                }
                true
            }
            Change::Applied(object) => {
                self.apply(watcher, &kind, object);
                true
            }
            Change::Deleted(object) => {
                match &kind {
                    Kind::Middleware(resource) => {
                        let key = (group_index(&resource.group), object.namespace, object.name);
                        self.middlewares.remove(&key);
                    }
                    Kind::Secret => {
                        self.secret_names
                            .remove(&(object.namespace.clone(), object.name.clone()));
                        self.secrets.remove(&object.namespace, &object.name);
                    }
                }
                true
            }
        }
    }

    /// Replaces the objects of `watcher` by `listed` (a relist: objects
    /// not listed are gone).
    fn replace(&mut self, watcher: usize, kind: &Kind, listed: Vec<Object>) {
        match kind {
            Kind::Middleware(_) => self.middlewares.retain(|_, (w, _)| *w != watcher),
            Kind::Secret => {
                let gone: Vec<(String, String)> = self
                    .secret_names
                    .iter()
                    .filter(|(_, w)| **w == watcher)
                    .map(|(key, _)| key.clone())
                    .collect();
                for (namespace, name) in gone {
                    self.secret_names.remove(&(namespace.clone(), name.clone()));
                    self.secrets.remove(&namespace, &name);
                }
            }
        }
        for object in listed {
            self.apply(watcher, kind, object);
        }
    }

    fn apply(&mut self, watcher: usize, kind: &Kind, object: Object) {
        match kind {
            Kind::Middleware(resource) => {
                let key = (
                    group_index(&resource.group),
                    object.namespace.clone(),
                    object.name.clone(),
                );
                self.middlewares.insert(key, (watcher, object));
            }
            Kind::Secret => {
                let Object {
                    namespace,
                    name,
                    fields,
                } = object;
                match self.secrets.apply(&namespace, &name, &fields) {
                    Ok(()) => {
                        self.secret_names.insert((namespace, name), watcher);
                    }
                    Err(error) => tracing::error!(
                        namespace, name, %error,
                        "kubernetes provider: invalid Secret; its last valid version stays"
                    ),
                }
            }
        }
    }

    /// Validates every Middleware and swaps the result in.
    fn rebuild(&mut self) {
        // ccgate name → the object that has it.
        let mut seen: BTreeMap<String, (String, String)> = BTreeMap::new();
        let mut errors = BTreeMap::new();
        for ((group, namespace, name), (_, object)) in &self.middlewares {
            let ours = ours(namespace, name);
            if let Some((first_namespace, first_name)) = seen.get(&ours) {
                // Keys sort by API group preference first: the first wins.
                let error = format!(
                    "Middleware {namespace}/{name} ({}): the name {ours} is already taken by \
                     Middleware {first_namespace}/{first_name}; ignored",
                    MIDDLEWARE_GROUPS[*group]
                );
                errors.insert(
                    format!("{ours} {group} {namespace}/{name}"),
                    (namespace, name, error, false),
                );
                continue;
            }
            let api_version = format!(
                "{}/{}",
                MIDDLEWARE_GROUPS[*group],
                super::MIDDLEWARE_VERSION
            );
            match validate(namespace, name, &api_version, object, &self.secrets, &ours) {
                Ok(None) => continue,
                Ok(Some(middleware)) => {
                    let discovered = Discovered {
                        namespace: namespace.clone(),
                        name: name.clone(),
                        middleware,
                    };
                    self.valid.insert(ours.clone(), discovered);
                }
                Err(error) => {
                    let kept = self.valid.contains_key(&ours);
                    errors.insert(ours.clone(), (namespace, name, error, kept));
                }
            }
            seen.insert(ours, (namespace.clone(), name.clone()));
        }
        // Deleted objects (and ones that are no longer ours) go.
        self.valid.retain(|name, _| seen.contains_key(name));
        // Each distinct error is logged once, while it lasts.
        self.logged.retain(|key, _| errors.contains_key(key));
        for (key, (namespace, name, error, kept)) in errors {
            if self.logged.get(&key) == Some(&error) {
                continue;
            }
            if kept {
                tracing::error!(namespace, name, %error, "kubernetes provider: invalid Middleware; its last valid version keeps serving");
            } else {
                tracing::error!(namespace, name, %error, "kubernetes provider: invalid Middleware; routers naming it answer 503");
            }
            self.logged.insert(key, error);
        }
        if let Err(error) = self.sources.set_kubernetes(self.valid.clone()) {
            tracing::error!(%error, "kubernetes provider: the combined configuration does not compile; the running one stays");
        } else {
            tracing::info!(
                middlewares = self.valid.len(),
                "kubernetes provider: configuration applied"
            );
        }
    }
}

/// The ccgate name of the Middleware `namespace/name`.
fn ours(namespace: &str, name: &str) -> String {
    format!("{namespace}-{name}@{KUBERNETES_PROVIDER}")
}

fn group_index(group: &str) -> usize {
    MIDDLEWARE_GROUPS
        .iter()
        .position(|g| *g == group)
        .unwrap_or(MIDDLEWARE_GROUPS.len())
}

/// The middleware of `object`, checked as a file's would be and built
/// once; `None` when it is not an `oAuthClientCredentials` one. The error
/// is the message to log (it holds no secret).
fn validate(
    namespace: &str,
    name: &str,
    api_version: &str,
    object: &Object,
    secrets: &ApiSecrets,
    ours: &str,
) -> Result<Option<config::Middleware>, String> {
    // What the API server enforces, checked again: the forward-auth path
    // is built from these.
    if !config::is_dns_label(namespace) || !is_dns_subdomain(name) {
        return Err(format!(
            "Middleware {namespace:?}/{name:?}: not a Kubernetes namespace and name"
        ));
    }
    let Some(middleware) =
        config::api_middleware(namespace, name, api_version, &object.fields, secrets)
            .map_err(|error| error.to_string())?
    else {
        return Ok(None);
    };
    ccgate::Middleware::builder(middleware.options.clone())
        .name(ours.to_owned())
        .build()
        .map_err(|error| middleware.error(&error).to_string())?;
    Ok(Some(middleware))
}

/// A DNS subdomain (RFC 1123), as Kubernetes object names are.
fn is_dns_subdomain(text: &str) -> bool {
    text.len() <= 253 && text.split('.').all(config::is_dns_label)
}
