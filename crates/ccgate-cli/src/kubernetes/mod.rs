//! The Kubernetes provider (`providers.kubernetesCRD`, SPEC §12): the
//! `oAuthClientCredentials` Middlewares of a cluster, and the Secrets
//! their URNs name, watched through the API server and applied without a
//! restart.
//!
//! - [`start`] connects ([`client`]: `endpoint` and `token`, else the
//!   in-cluster service account, else the kubeconfig), discovers which of
//!   the Middleware API groups (`traefik.io`, `traefik.containo.us`) are
//!   installed (a missing one is skipped, logged), then runs one
//!   kube-runtime watcher per kind and watched namespace ([`watch`]);
//!   with `namespaces` set, only namespaced requests are made.
//! - Every event reaches one task ([`state::State`]), which keeps the
//!   objects, validates each Middleware on its own (an invalid one is
//!   logged with its namespace, name and field, and its last valid version
//!   keeps serving) and swaps the result in through
//!   [`crate::gateway::Sources`], as a file reload does; middlewares whose
//!   token settings did not change keep their cached tokens.
//! - `/ping` answers 503 until every watcher has done its first list.
//! - The API server going away changes nothing that serves: the watchers
//!   retry with a bounded backoff, and relist after `410 Gone` (an ERROR
//!   event, or the HTTP status).
//!
//! # Example
//!
//! ```text
//! providers:
//!   kubernetesCRD:
//!     namespaces: [apps]
//!     forwardAuth: { entryPoint: auth }
//! http:
//!   routers:
//!     api:
//!       rule: PathPrefix(`/`)
//!       middlewares: [apps-cc@kubernetescrd]   # Middleware apps/cc
//!       service: backend
//! ```

mod client;
mod state;
mod watch;

use std::sync::Arc;
use std::time::Duration;

use kube::Client;
use kube::discovery::ApiResource;

use crate::config::KubernetesCrd;
use crate::gateway::Sources;
use state::State;
use watch::{Kind, Scope};

/// The Middleware API groups, in order of preference when both define
/// the same object.
pub(crate) const MIDDLEWARE_GROUPS: [&str; 2] = ["traefik.io", "traefik.containo.us"];
/// Their one version.
const MIDDLEWARE_VERSION: &str = "v1alpha1";

/// The longest wait between two attempts to reach the API server.
const MAX_BACKOFF: Duration = Duration::from_secs(5);
/// The first wait.
const FIRST_BACKOFF: Duration = Duration::from_millis(200);

/// Starts the provider of `settings`; it changes `sources` until the
/// process ends.
pub(crate) fn start(settings: KubernetesCrd, sources: Arc<Sources>) {
    tokio::spawn(run(settings, sources));
}

async fn run(settings: KubernetesCrd, sources: Arc<Sources>) {
    let client = match client::build(&settings).await {
        Ok(client) => client,
        Err(error) => {
            // Nothing to retry: the settings or the environment are wrong.
            tracing::error!(%error, "kubernetes provider: cannot make a client; /ping stays 503");
            return;
        }
    };
    let groups = discover(&client).await;
    let scopes: Vec<Scope> = if settings.namespaces.is_empty() {
        vec![Scope::All]
    } else {
        settings
            .namespaces
            .iter()
            .map(|namespace| Scope::Namespace(namespace.clone()))
            .collect()
    };
    let mut kinds: Vec<Kind> = groups.into_iter().map(Kind::Middleware).collect();
    kinds.push(Kind::Secret);
    let (events, receiver) = tokio::sync::mpsc::channel(watch::QUEUE);
    let mut watchers = 0;
    for kind in &kinds {
        for scope in &scopes {
            let watcher = watch::Watcher {
                id: watchers,
                client: client.clone(),
                kind: kind.clone(),
                scope: scope.clone(),
                label_selector: match kind {
                    Kind::Middleware(_) => settings.label_selector.clone(),
                    Kind::Secret => None,
                },
            };
            tokio::spawn(watcher.run(events.clone()));
            watchers += 1;
        }
    }
    drop(events);
    State::new(sources, watchers).run(receiver).await;
}

/// The installed Middleware API groups (each as its resource), asking
/// until the API server answers.
async fn discover(client: &Client) -> Vec<ApiResource> {
    let mut backoff = FIRST_BACKOFF;
    loop {
        match installed_groups(client).await {
            Ok(groups) => return groups,
            Err(error) => {
                tracing::warn!(%error, retry_in = ?backoff, "kubernetes provider: API discovery failed");
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(MAX_BACKOFF);
            }
        }
    }
}

async fn installed_groups(client: &Client) -> Result<Vec<ApiResource>, kube::Error> {
    let listed = client.list_api_groups().await?;
    let mut installed = Vec::new();
    for group in MIDDLEWARE_GROUPS {
        let api_version = format!("{group}/{MIDDLEWARE_VERSION}");
        let served = listed
            .groups
            .iter()
            .any(|g| g.name == group && g.versions.iter().any(|v| v.version == MIDDLEWARE_VERSION));
        let has_middlewares = served
            && client
                .list_api_group_resources(&api_version)
                .await?
                .resources
                .iter()
                .any(|r| r.name == "middlewares");
        if has_middlewares {
            tracing::info!(api_version, "kubernetes provider: watching middlewares");
            installed.push(ApiResource {
                group: group.to_owned(),
                version: MIDDLEWARE_VERSION.to_owned(),
                api_version,
                kind: "Middleware".to_owned(),
                plural: "middlewares".to_owned(),
            });
        } else {
            tracing::info!(
                api_version,
                "kubernetes provider: API group not installed (no middlewares resource); skipped"
            );
        }
    }
    Ok(installed)
}
