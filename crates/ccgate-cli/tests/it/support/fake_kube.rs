//! A FAKE Kubernetes API server, in-process, for the Kubernetes provider's
//! tests: no API server installs on these machines (none in Debian, PyPI
//! or npm). It speaks the real protocol, as far as ccgate and `kubectl`
//! use it — and `kubectl` drives it in a test, to keep it faithful:
//!
//! - discovery: `/version`, `/api`, `/api/v1`, `/apis`,
//!   `/apis/GROUP/v1alpha1` (plain JSON, no aggregated discovery: clients
//!   fall back to the legacy documents, as with an older server);
//! - lists (`metadata.resourceVersion` in the list; `labelSelector` with
//!   `=`, `==`, `!=`, `key` and `!key` terms), cluster-wide and namespaced
//!   paths, and `GET` of one object;
//! - `?watch=true&resourceVersion=N&allowWatchBookmarks=true` as a chunked
//!   stream of JSON lines: ADDED, MODIFIED, DELETED, BOOKMARK (every 500 ms
//!   when asked) and ERROR; a resourceVersion older than the last
//!   [`FakeKube::expire`] is `410 Gone`, as an ERROR event with a `Status`
//!   object (what an API server does) or, when asked, as the HTTP status;
//! - bearer-token authentication: 401 with a `Status` without it;
//! - plain HTTP, or HTTPS with the test PKI's server certificate
//!   ([`FakeKube::start_tls`]; kubectl sends no token over plain HTTP);
//! - [`FakeKube::stop`] and [`FakeKube::resume`]: the server going away
//!   (every connection cut) and coming back on the same port;
//! - [`FakeKube::hold_lists`]: lists wait, to observe readiness.

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use base64::Engine as _;
use bytes::Bytes;
use http_body_util::Full;
use hyper::body::{Frame, Incoming};
use hyper::{Request, Response, StatusCode};
use serde_json::{Value, json};
use tokio::sync::{broadcast, mpsc, watch};

/// The Middleware API groups a fake can serve.
pub(crate) const TRAEFIK_IO: &str = "traefik.io";
pub(crate) const TRAEFIK_CONTAINO_US: &str = "traefik.containo.us";

/// A kind of object the fake serves.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Resource {
    Secrets,
    /// Middlewares of an API group.
    Middlewares(String),
}

impl Resource {
    fn api_version(&self) -> String {
        match self {
            Self::Secrets => "v1".to_owned(),
            Self::Middlewares(group) => format!("{group}/v1alpha1"),
        }
    }

    fn kind(&self) -> &'static str {
        match self {
            Self::Secrets => "Secret",
            Self::Middlewares(_) => "Middleware",
        }
    }
}

/// What watches hear.
#[derive(Debug, Clone)]
enum Notice {
    Event {
        resource: Resource,
        namespace: String,
        kind: &'static str,
        object: Value,
        /// The object before a change, to tell a watch filtered by labels
        /// that it left (DELETED) or entered (ADDED) the selection.
        previous: Option<Value>,
    },
    /// Every open watch ends: with an ERROR 410 event, or (for the HTTP
    /// form) just closed, so that the client's next watch gets the status.
    Expire { http: bool },
}

/// A change: (resourceVersion, resource, namespace, type, object, the
/// object before).
type Change = (u64, Resource, String, &'static str, Value, Option<Value>);

#[derive(Debug, Default)]
struct Store {
    /// The last resourceVersion given.
    version: u64,
    /// Watches from a resourceVersion below this get 410.
    floor: u64,
    /// 410 as the HTTP status rather than an ERROR event.
    gone_as_http: bool,
    objects: BTreeMap<(Resource, String, String), Value>,
    /// Every change: (resourceVersion, resource, namespace, type, object,
    /// the object before).
    history: Vec<Change>,
    /// Every request, as `METHOD path?query`.
    requests: Vec<String>,
}

struct Shared {
    token: String,
    groups: Vec<String>,
    store: Mutex<Store>,
    notices: broadcast::Sender<Notice>,
    lists_held: watch::Sender<bool>,
}

/// A running FAKE API server.
pub(crate) struct FakeKube {
    shared: Arc<Shared>,
    port: u16,
    /// HTTPS with this acceptor (kubectl sends no token over plain HTTP).
    tls: Option<tokio_rustls::TlsAcceptor>,
    server: Option<tokio::task::JoinHandle<()>>,
    connections: Arc<Mutex<Vec<tokio::task::AbortHandle>>>,
}

impl FakeKube {
    /// A FAKE API server on 127.0.0.1 that accepts `Bearer token` and
    /// serves Middlewares of `groups`.
    pub(crate) async fn start(token: &str, groups: &[&str]) -> Self {
        Self::start_with(token, groups, None).await
    }

    /// As [`FakeKube::start`], on HTTPS with the server certificate of
    /// `pki` (for `127.0.0.1`).
    pub(crate) async fn start_tls(token: &str, groups: &[&str], pki: &super::tls::Pki) -> Self {
        use rustls_pki_types::pem::PemObject as _;
        use rustls_pki_types::{CertificateDer, PrivateKeyDer};
        let certificates = CertificateDer::pem_file_iter(pki.server_cert_file())
            .expect("server.pem")
            .collect::<Result<Vec<_>, _>>()
            .expect("certificates");
        let key = PrivateKeyDer::from_pem_file(pki.server_key_file()).expect("server-key.pem");
        let config = rustls::ServerConfig::builder_with_provider(super::crypto_provider())
            .with_safe_default_protocol_versions()
            .expect("TLS versions")
            .with_no_client_auth()
            .with_single_cert(certificates, key)
            .expect("server certificate");
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
        Self::start_with(token, groups, Some(acceptor)).await
    }

    async fn start_with(
        token: &str,
        groups: &[&str],
        tls: Option<tokio_rustls::TlsAcceptor>,
    ) -> Self {
        let (notices, _) = broadcast::channel(1024);
        let shared = Arc::new(Shared {
            token: token.to_owned(),
            groups: groups.iter().map(|g| (*g).to_owned()).collect(),
            store: Mutex::new(Store::default()),
            notices,
            lists_held: watch::channel(false).0,
        });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let port = listener.local_addr().expect("address").port();
        let mut fake = Self {
            shared,
            port,
            tls,
            server: None,
            connections: Arc::default(),
        };
        fake.serve(listener);
        fake
    }

    /// `http://127.0.0.1:PORT`, or `https://`.
    pub(crate) fn url(&self) -> String {
        let scheme = if self.tls.is_some() { "https" } else { "http" };
        format!("{scheme}://127.0.0.1:{}", self.port)
    }

    fn serve(&mut self, listener: tokio::net::TcpListener) {
        let shared = Arc::clone(&self.shared);
        let connections = Arc::clone(&self.connections);
        let tls = self.tls.clone();
        self.server = Some(tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    continue;
                };
                let shared = Arc::clone(&shared);
                let tls = tls.clone();
                let task = tokio::spawn(async move {
                    let service = hyper::service::service_fn(move |request| {
                        let shared = Arc::clone(&shared);
                        async move { Ok::<_, Infallible>(answer(&shared, request).await) }
                    });
                    let http = hyper::server::conn::http1::Builder::new();
                    match tls {
                        Some(tls) => {
                            let Ok(stream) = tls.accept(stream).await else {
                                return;
                            };
                            let io = hyper_util::rt::TokioIo::new(stream);
                            let _ = http.serve_connection(io, service).await;
                        }
                        None => {
                            let io = hyper_util::rt::TokioIo::new(stream);
                            let _ = http.serve_connection(io, service).await;
                        }
                    }
                });
                connections
                    .lock()
                    .expect("connections")
                    .push(task.abort_handle());
            }
        }));
    }

    /// The server goes away: it stops listening and cuts every connection.
    pub(crate) fn stop(&mut self) {
        if let Some(server) = self.server.take() {
            server.abort();
        }
        for connection in self.connections.lock().expect("connections").drain(..) {
            connection.abort();
        }
    }

    /// The server comes back on the same port.
    pub(crate) async fn resume(&mut self) {
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", self.port))
            .await
            .expect("the same port again");
        self.serve(listener);
    }

    /// While `held`, lists wait (watches and discovery answer).
    pub(crate) fn hold_lists(&self, held: bool) {
        self.shared.lists_held.send_replace(held);
    }

    /// Every resourceVersion so far becomes too old: open watches end
    /// (with an ERROR 410 event, or closed when `http`, so that the next
    /// watch from an old version gets an HTTP 410).
    pub(crate) fn expire(&self, http: bool) {
        let mut store = self.shared.store.lock().expect("store");
        store.version += 1;
        store.floor = store.version;
        store.gone_as_http = http;
        let _ = self.shared.notices.send(Notice::Expire { http });
    }

    /// The requests received so far (`METHOD path?query`).
    pub(crate) fn requests(&self) -> Vec<String> {
        self.shared.store.lock().expect("store").requests.clone()
    }

    /// Creates or replaces an object (`metadata.name` and `.namespace`
    /// set); a Secret's `stringData` is folded into base64 `data`, as the
    /// API server does.
    pub(crate) fn apply(&self, resource: &Resource, mut object: Value) {
        let namespace = object["metadata"]["namespace"]
            .as_str()
            .expect("metadata.namespace")
            .to_owned();
        let name = object["metadata"]["name"]
            .as_str()
            .expect("metadata.name")
            .to_owned();
        if let Some(Value::Object(plain)) =
            object.as_object_mut().and_then(|o| o.remove("stringData"))
        {
            let data = object
                .as_object_mut()
                .expect("object")
                .entry("data")
                .or_insert_with(|| json!({}));
            for (key, value) in plain {
                let text = value.as_str().expect("stringData values are strings");
                data[key] = json!(base64::engine::general_purpose::STANDARD.encode(text));
            }
        }
        object["apiVersion"] = json!(resource.api_version());
        object["kind"] = json!(resource.kind());
        let mut store = self.shared.store.lock().expect("store");
        store.version += 1;
        let version = store.version;
        let key = (resource.clone(), namespace.clone(), name.clone());
        let previous = store.objects.get(&key).cloned();
        let kind = if previous.is_some() {
            "MODIFIED"
        } else {
            "ADDED"
        };
        let metadata = &mut object["metadata"];
        metadata["resourceVersion"] = json!(version.to_string());
        metadata["uid"] = json!(format!("uid-{namespace}-{name}"));
        metadata["creationTimestamp"] = json!("2026-01-01T00:00:00Z");
        store.objects.insert(key, object.clone());
        store.history.push((
            version,
            resource.clone(),
            namespace.clone(),
            kind,
            object.clone(),
            previous.clone(),
        ));
        let _ = self.shared.notices.send(Notice::Event {
            resource: resource.clone(),
            namespace,
            kind,
            object,
            previous,
        });
    }

    /// A Middleware of `group` in `namespace` with `labels` and `spec`.
    pub(crate) fn apply_middleware(
        &self,
        group: &str,
        namespace: &str,
        name: &str,
        labels: Value,
        spec: Value,
    ) {
        let mut object = json!({"metadata": {"name": name, "namespace": namespace}});
        object["metadata"]["labels"] = labels;
        object["spec"] = spec;
        self.apply(&Resource::Middlewares(group.to_owned()), object);
    }

    /// A Secret of `namespace` with these plain values.
    pub(crate) fn apply_secret(&self, namespace: &str, name: &str, values: Value) {
        let mut object =
            json!({"metadata": {"name": name, "namespace": namespace}, "type": "Opaque"});
        object["stringData"] = values;
        self.apply(&Resource::Secrets, object);
    }

    /// Deletes an object.
    pub(crate) fn delete(&self, resource: &Resource, namespace: &str, name: &str) {
        let mut store = self.shared.store.lock().expect("store");
        let key = (resource.clone(), namespace.to_owned(), name.to_owned());
        let Some(mut object) = store.objects.remove(&key) else {
            panic!("no {resource:?} {namespace}/{name} to delete");
        };
        store.version += 1;
        let version = store.version;
        object["metadata"]["resourceVersion"] = json!(version.to_string());
        store.history.push((
            version,
            resource.clone(),
            namespace.to_owned(),
            "DELETED",
            object.clone(),
            None,
        ));
        let _ = self.shared.notices.send(Notice::Event {
            resource: resource.clone(),
            namespace: namespace.to_owned(),
            kind: "DELETED",
            object,
            previous: None,
        });
    }
}

impl Drop for FakeKube {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A response body fed by a channel: a watch's stream of lines.
struct Lines(mpsc::Receiver<Bytes>);

impl hyper::body::Body for Lines {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        context: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        self.0
            .poll_recv(context)
            .map(|line| line.map(|line| Ok(Frame::data(line))))
    }
}

type Body = http_body_util::Either<Full<Bytes>, Lines>;

fn json_response(status: StatusCode, value: &Value) -> Response<Body> {
    let mut response = Response::new(http_body_util::Either::Left(Full::new(Bytes::from(
        value.to_string(),
    ))));
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert("content-type", "application/json".parse().expect("value"));
    response
}

fn status(code: StatusCode, reason: &str, message: &str) -> Response<Body> {
    json_response(
        code,
        &json!({
            "kind": "Status", "apiVersion": "v1", "metadata": {},
            "status": "Failure", "message": message, "reason": reason,
            "code": code.as_u16(),
        }),
    )
}

async fn answer(shared: &Arc<Shared>, request: Request<Incoming>) -> Response<Body> {
    let path = request.uri().path().to_owned();
    let query: BTreeMap<String, String> = request
        .uri()
        .query()
        .map(|q| {
            q.split('&')
                .filter_map(|pair| {
                    let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
                    Some((decode(key)?, decode(value)?))
                })
                .collect()
        })
        .unwrap_or_default();
    shared.store.lock().expect("store").requests.push(format!(
        "{} {}",
        request.method(),
        request.uri()
    ));
    let authorized = request
        .headers()
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v == format!("Bearer {}", shared.token));
    if !authorized {
        return status(StatusCode::UNAUTHORIZED, "Unauthorized", "Unauthorized");
    }
    if request.method() != hyper::Method::GET {
        return status(
            StatusCode::METHOD_NOT_ALLOWED,
            "MethodNotAllowed",
            "the fake serves GET only",
        );
    }
    let segments: Vec<&str> = path.trim_matches('/').split('/').collect();
    match segments[..] {
        ["version"] => json_response(
            StatusCode::OK,
            &json!({"major": "1", "minor": "32", "gitVersion": "v1.32.0-fake", "platform": "linux/amd64"}),
        ),
        ["api"] => json_response(
            StatusCode::OK,
            &json!({"kind": "APIVersions", "versions": ["v1"], "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": "127.0.0.1"}]}),
        ),
        ["api", "v1"] => json_response(
            StatusCode::OK,
            &resource_list("v1", "secrets", "secret", "Secret"),
        ),
        ["apis"] => {
            let groups: Vec<Value> = shared
                .groups
                .iter()
                .map(|group| {
                    let version =
                        json!({"groupVersion": format!("{group}/v1alpha1"), "version": "v1alpha1"});
                    json!({"name": group, "versions": [&version], "preferredVersion": &version})
                })
                .collect();
            json_response(
                StatusCode::OK,
                &json!({"kind": "APIGroupList", "apiVersion": "v1", "groups": groups}),
            )
        }
        ["apis", group, "v1alpha1"] if shared.groups.iter().any(|g| g == group) => json_response(
            StatusCode::OK,
            &resource_list(
                &format!("{group}/v1alpha1"),
                "middlewares",
                "middleware",
                "Middleware",
            ),
        ),
        ["api", "v1", "secrets"] => collection(shared, Resource::Secrets, None, None, &query).await,
        ["api", "v1", "namespaces", namespace, "secrets"] => {
            collection(shared, Resource::Secrets, Some(namespace), None, &query).await
        }
        ["api", "v1", "namespaces", namespace, "secrets", name] => {
            collection(
                shared,
                Resource::Secrets,
                Some(namespace),
                Some(name),
                &query,
            )
            .await
        }
        ["apis", group, "v1alpha1", "middlewares"] if shared.groups.iter().any(|g| g == group) => {
            let resource = Resource::Middlewares(group.to_owned());
            collection(shared, resource, None, None, &query).await
        }
        [
            "apis",
            group,
            "v1alpha1",
            "namespaces",
            namespace,
            "middlewares",
        ] if shared.groups.iter().any(|g| g == group) => {
            let resource = Resource::Middlewares(group.to_owned());
            collection(shared, resource, Some(namespace), None, &query).await
        }
        [
            "apis",
            group,
            "v1alpha1",
            "namespaces",
            namespace,
            "middlewares",
            name,
        ] if shared.groups.iter().any(|g| g == group) => {
            let resource = Resource::Middlewares(group.to_owned());
            collection(shared, resource, Some(namespace), Some(name), &query).await
        }
        _ => status(
            StatusCode::NOT_FOUND,
            "NotFound",
            "the server could not find the requested resource",
        ),
    }
}

fn decode(text: &str) -> Option<String> {
    let text = text.replace('+', " ");
    let mut bytes = Vec::with_capacity(text.len());
    let mut iter = text.bytes();
    while let Some(b) = iter.next() {
        if b == b'%' {
            let hex = [iter.next()?, iter.next()?];
            bytes.push(u8::from_str_radix(std::str::from_utf8(&hex).ok()?, 16).ok()?);
        } else {
            bytes.push(b);
        }
    }
    String::from_utf8(bytes).ok()
}

fn resource_list(group_version: &str, name: &str, singular: &str, kind: &str) -> Value {
    json!({
        "kind": "APIResourceList", "apiVersion": "v1", "groupVersion": group_version,
        "resources": [{
            "name": name, "singularName": singular, "namespaced": true, "kind": kind,
            "verbs": ["get", "list", "watch"],
        }],
    })
}

/// A label selector: terms that must all hold.
enum Term {
    Equals(String, String),
    NotEquals(String, String),
    Exists(String),
    Absent(String),
}

fn selector(text: &str) -> Result<Vec<Term>, String> {
    text.split(',')
        .filter(|term| !term.trim().is_empty())
        .map(|term| {
            let term = term.trim();
            if let Some((key, value)) = term.split_once("!=") {
                Ok(Term::NotEquals(
                    key.trim().to_owned(),
                    value.trim().to_owned(),
                ))
            } else if let Some((key, value)) =
                term.split_once("==").or_else(|| term.split_once('='))
            {
                Ok(Term::Equals(key.trim().to_owned(), value.trim().to_owned()))
            } else if let Some(key) = term.strip_prefix('!') {
                Ok(Term::Absent(key.trim().to_owned()))
            } else if term.contains(' ') || term.contains('(') {
                Err(format!(
                    "unable to parse requirement: {term:?} (the fake knows =, ==, !=, key, !key)"
                ))
            } else {
                Ok(Term::Exists(term.to_owned()))
            }
        })
        .collect()
}

fn matches(terms: &[Term], object: &Value) -> bool {
    let labels = &object["metadata"]["labels"];
    terms.iter().all(|term| match term {
        Term::Equals(key, value) => labels[key].as_str() == Some(value),
        Term::NotEquals(key, value) => labels[key].as_str() != Some(value),
        Term::Exists(key) => labels.get(key).is_some(),
        Term::Absent(key) => labels.get(key).is_none(),
    })
}

async fn collection(
    shared: &Arc<Shared>,
    resource: Resource,
    namespace: Option<&str>,
    name: Option<&str>,
    query: &BTreeMap<String, String>,
) -> Response<Body> {
    let terms = match selector(query.get("labelSelector").map_or("", String::as_str)) {
        Ok(terms) => terms,
        Err(message) => return status(StatusCode::BAD_REQUEST, "BadRequest", &message),
    };
    let resource_types = resource.clone();
    let (scope, wanted) = (namespace.map(str::to_owned), name.map(str::to_owned));
    let in_scope = move |r: &Resource, ns: &str, object: &Value| {
        *r == resource
            && scope.as_deref().is_none_or(|n| n == ns)
            && wanted
                .as_deref()
                .is_none_or(|n| object["metadata"]["name"].as_str() == Some(n))
            && matches(&terms, object)
    };
    let watching = matches!(query.get("watch").map(String::as_str), Some("true" | "1"));
    if watching {
        let types = (resource_types.api_version(), resource_types.kind());
        return watch(shared, query, types, in_scope);
    }
    let mut held = shared.lists_held.subscribe();
    let _ = held.wait_for(|held| !*held).await;
    let store = shared.store.lock().expect("store");
    let items: Vec<Value> = store
        .objects
        .iter()
        .filter(|((r, ns, _), object)| in_scope(r, ns, object))
        .map(|(_, object)| object.clone())
        .collect();
    let version = store.version.to_string();
    if let Some(name) = name {
        return match items.into_iter().next() {
            Some(object) => json_response(StatusCode::OK, &object),
            None => status(
                StatusCode::NOT_FOUND,
                "NotFound",
                &format!("\"{name}\" not found"),
            ),
        };
    }
    json_response(
        StatusCode::OK,
        &json!({"kind": "List", "apiVersion": "v1", "metadata": {"resourceVersion": version}, "items": items}),
    )
}

/// How a watch of `in_scope` sees a change: as it is, or as ADDED or
/// DELETED when the object entered or left the selection; `None` when it
/// is not the watch's business.
fn seen_as<'a>(
    in_scope: &impl Fn(&Resource, &str, &Value) -> bool,
    resource: &Resource,
    namespace: &str,
    kind: &'static str,
    object: &'a Value,
    previous: Option<&'a Value>,
) -> Option<(&'static str, &'a Value)> {
    let now = in_scope(resource, namespace, object);
    let before = previous.is_some_and(|p| in_scope(resource, namespace, p));
    match (kind, before, now) {
        ("MODIFIED", false, true) => Some(("ADDED", object)),
        ("MODIFIED", true, false) => Some(("DELETED", object)),
        (_, _, true) => Some((kind, object)),
        _ => None,
    }
}

fn line(value: &Value) -> Bytes {
    let mut text = value.to_string();
    text.push('\n');
    Bytes::from(text)
}

fn watch(
    shared: &Arc<Shared>,
    query: &BTreeMap<String, String>,
    (api_version, kind): (String, &'static str),
    in_scope: impl Fn(&Resource, &str, &Value) -> bool + Send + 'static,
) -> Response<Body> {
    let bookmarks = query.get("allowWatchBookmarks").map(String::as_str) == Some("true");
    let from: Option<u64> = match query.get("resourceVersion").map(String::as_str) {
        None | Some("" | "0") => None,
        Some(text) => match text.parse() {
            Ok(version) => Some(version),
            Err(_) => {
                return status(
                    StatusCode::BAD_REQUEST,
                    "BadRequest",
                    "invalid resourceVersion",
                );
            }
        },
    };
    let timeout = query
        .get("timeoutSeconds")
        .and_then(|t| t.parse().ok())
        .map_or(Duration::from_secs(1800), Duration::from_secs);
    let (sender, receiver) = mpsc::channel(256);
    let (first, gone, mut notices) = {
        let store = shared.store.lock().expect("store");
        // Under the lock, as changes are announced: each change is either
        // in the history read here or heard later, never both.
        let notices = shared.notices.subscribe();
        let gone = from.is_some_and(|from| from < store.floor);
        if gone && store.gone_as_http {
            return status(StatusCode::GONE, "Expired", "too old resource version");
        }
        let first: Vec<Bytes> = if gone {
            vec![line(&json!({"type": "ERROR", "object": {
                "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                "message": "too old resource version", "reason": "Expired", "code": 410}}))]
        } else {
            match from {
                // From now: every object as ADDED, then the changes.
                None => store
                    .objects
                    .iter()
                    .filter(|((r, ns, _), object)| in_scope(r, ns, object))
                    .map(|(_, object)| line(&json!({"type": "ADDED", "object": object})))
                    .collect(),
                // The changes after `from`.
                Some(from) => store
                    .history
                    .iter()
                    .filter(|(v, ..)| *v > from)
                    .filter_map(|(_, r, ns, kind, object, previous)| {
                        seen_as(&in_scope, r, ns, kind, object, previous.as_ref())
                    })
                    .map(|(kind, object)| line(&json!({"type": kind, "object": object})))
                    .collect(),
            }
        };
        (first, gone, notices)
    };
    let shared = Arc::clone(shared);
    tokio::spawn(async move {
        for line in first {
            if sender.send(line).await.is_err() {
                return;
            }
        }
        if gone {
            return;
        }
        let deadline = tokio::time::Instant::now() + timeout;
        let mut tick = tokio::time::interval(Duration::from_millis(500));
        loop {
            tokio::select! {
                notice = notices.recv() => match notice {
                    Ok(Notice::Event { resource, namespace, kind, object, previous }) => {
                        if let Some((kind, object)) = seen_as(&in_scope, &resource, &namespace, kind, &object, previous.as_ref())
                            && sender.send(line(&json!({"type": kind, "object": object}))).await.is_err()
                        {
                            return;
                        }
                    }
                    Ok(Notice::Expire { http }) => {
                        if !http {
                            let _ = sender.send(line(&json!({"type": "ERROR", "object": {
                                "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                                "message": "too old resource version", "reason": "Expired", "code": 410}}))).await;
                        }
                        return;
                    }
                    // Too far behind: end the watch, as a server would.
                    Err(_) => return,
                },
                _ = tick.tick(), if bookmarks => {
                    let version = shared.store.lock().expect("store").version;
                    let bookmark = json!({"type": "BOOKMARK", "object": {
                        "kind": kind, "apiVersion": api_version,
                        "metadata": {"resourceVersion": version.to_string()}}});
                    if sender.send(line(&bookmark)).await.is_err() {
                        return;
                    }
                }
                () = tokio::time::sleep_until(deadline) => return,
            }
        }
    });
    let mut response = Response::new(http_body_util::Either::Right(Lines(receiver)));
    response
        .headers_mut()
        .insert("content-type", "application/json".parse().expect("value"));
    response
}
