//! One kube-runtime watcher: a kind (Middlewares of one API group, or
//! Secrets) in a scope (one namespace, or the cluster), its events sent
//! to the provider's state task.
//!
//! Errors are retried with a backoff (at most [`super::MAX_BACKOFF`]
//! apart). `410 Gone` restarts the watcher, which lists again: the
//! runtime does so itself for an ERROR event, not for an HTTP 410
//! answering the watch request, which it would retry with the same
//! resourceVersion for ever.

use std::time::Duration;

use futures_util::StreamExt as _;
use kube::api::{Api, DynamicObject};
use kube::discovery::ApiResource;
use kube::runtime::watcher;
use kube::{Client, ResourceExt as _};
use tokio::sync::mpsc;

use super::{FIRST_BACKOFF, MAX_BACKOFF};

/// How many events may wait for the state task.
pub(super) const QUEUE: usize = 1024;

/// What a watcher watches.
#[derive(Debug, Clone)]
pub(super) enum Kind {
    /// Middlewares of an installed API group.
    Middleware(ApiResource),
    /// Secrets (`v1`).
    Secret,
}

impl Kind {
    fn resource(&self) -> ApiResource {
        match self {
            Self::Middleware(resource) => resource.clone(),
            Self::Secret => ApiResource {
                group: String::new(),
                version: "v1".to_owned(),
                api_version: "v1".to_owned(),
                kind: "Secret".to_owned(),
                plural: "secrets".to_owned(),
            },
        }
    }
}

/// Where a watcher watches.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Scope {
    /// Every namespace (a cluster-wide request).
    All,
    /// One namespace (namespaced requests only).
    Namespace(String),
}

/// An object, as the state task needs it.
#[derive(Debug, Clone)]
pub(super) struct Object {
    pub(super) namespace: String,
    pub(super) name: String,
    /// The object's fields besides `apiVersion`, `kind` and `metadata`.
    pub(super) fields: serde_json::Map<String, serde_json::Value>,
}

/// What a watcher tells the state task.
#[derive(Debug)]
pub(super) enum Change {
    /// A (re)list starts: the objects that follow replace the watcher's.
    Listing,
    /// An object of the list in progress.
    Listed(Object),
    /// The list is complete.
    ListDone,
    /// An object was added or changed.
    Applied(Object),
    /// An object was deleted.
    Deleted(Object),
}

/// An event of the watcher `watcher` about `kind`.
#[derive(Debug)]
pub(super) struct Event {
    pub(super) watcher: usize,
    pub(super) kind: Kind,
    pub(super) change: Change,
}

/// A watcher, before it runs.
pub(super) struct Watcher {
    pub(super) id: usize,
    pub(super) client: Client,
    pub(super) kind: Kind,
    pub(super) scope: Scope,
    pub(super) label_selector: Option<String>,
}

impl std::fmt::Debug for Watcher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Watcher")
            .field("id", &self.id)
            .field("kind", &self.kind)
            .field("scope", &self.scope)
            .field("label_selector", &self.label_selector)
            .finish_non_exhaustive()
    }
}

impl Watcher {
    /// Watches until the state task is gone.
    pub(super) async fn run(self, events: mpsc::Sender<Event>) {
        let resource = self.kind.resource();
        let api: Api<DynamicObject> = match &self.scope {
            Scope::All => Api::all_with(self.client.clone(), &resource),
            Scope::Namespace(namespace) => {
                Api::namespaced_with(self.client.clone(), namespace, &resource)
            }
        };
        let mut config = watcher::Config::default();
        if let Some(selector) = &self.label_selector {
            config = config.labels(selector);
        }
        let what = match &self.scope {
            Scope::All => format!("{} (all namespaces)", resource.plural),
            Scope::Namespace(namespace) => format!("{} of namespace {namespace}", resource.plural),
        };
        let mut backoff = FIRST_BACKOFF;
        loop {
            let mut stream = watcher(api.clone(), config.clone()).boxed();
            while let Some(event) = stream.next().await {
                let change = match event {
                    Ok(event) => {
                        backoff = FIRST_BACKOFF;
                        match event {
                            watcher::Event::Init => Change::Listing,
                            watcher::Event::InitApply(object) => Change::Listed(object_of(object)),
                            watcher::Event::InitDone => Change::ListDone,
                            watcher::Event::Apply(object) => Change::Applied(object_of(object)),
                            watcher::Event::Delete(object) => Change::Deleted(object_of(object)),
                        }
                    }
                    Err(error) if is_gone(&error) => {
                        tracing::info!(watching = %what, "kubernetes provider: resourceVersion expired (410 Gone); listing again");
                        break;
                    }
                    Err(error) => {
                        tracing::warn!(watching = %what, %error, retry_in = ?backoff, "kubernetes provider: watch failed");
                        tokio::time::sleep(backoff).await;
                        backoff = next(backoff);
                        continue;
                    }
                };
                let event = Event {
                    watcher: self.id,
                    kind: self.kind.clone(),
                    change,
                };
                if events.send(event).await.is_err() {
                    return;
                }
            }
            tokio::time::sleep(backoff).await;
            backoff = next(backoff);
        }
    }
}

fn next(backoff: Duration) -> Duration {
    (backoff * 2).min(MAX_BACKOFF)
}

/// Whether `error` is a `410 Gone`, in any of its forms.
fn is_gone(error: &watcher::Error) -> bool {
    match error {
        watcher::Error::WatchError(status) => status.code == 410,
        watcher::Error::InitialListFailed(kube::Error::Api(status))
        | watcher::Error::WatchStartFailed(kube::Error::Api(status))
        | watcher::Error::WatchFailed(kube::Error::Api(status)) => status.code == 410,
        _ => false,
    }
}

fn object_of(object: DynamicObject) -> Object {
    let namespace = object.namespace().unwrap_or_default();
    let name = object.name_any();
    let fields = match object.data {
        serde_json::Value::Object(fields) => fields,
        _ => serde_json::Map::new(),
    };
    Object {
        namespace,
        name,
        fields,
    }
}
