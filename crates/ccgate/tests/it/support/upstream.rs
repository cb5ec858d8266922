//! A real HTTP server on 127.0.0.1 running an axum app behind the
//! `oAuthClientCredentials` tower layer, with an echo handler as upstream:
//! the test's requests cross real sockets, the layer and the handler.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use axum::Router;
use axum::extract::{Request, State};
use axum::response::{IntoResponse, Response};
use ccgate::Middleware;
use ccgate::layer::{ClientCredentialsLayer, ClientUsername};
use http::StatusCode;
use serde_json::{Value, json};

/// The header a test sets to choose the upstream's status (passed through
/// the layer untouched).
pub(crate) const STATUS_HEADER: &str = "x-upstream-status";

/// A served app: the layer in front of the echo handler.
pub(crate) struct Upstream {
    url: String,
    hits: Arc<AtomicUsize>,
    client: reqwest::Client,
    _server: tokio::task::JoinHandle<()>,
}

/// What the echo handler saw, and the response around it.
#[derive(Debug)]
pub(crate) struct Echo {
    pub(crate) status: u16,
    pub(crate) headers: reqwest::header::HeaderMap,
    /// For 2xx and upstream-chosen statuses: the request as the handler
    /// saw it; for the middleware's own answers: `{"body": text}`.
    pub(crate) seen: Value,
}

impl Echo {
    /// All values of `name` as the upstream saw them.
    pub(crate) fn seen_header(&self, name: &str) -> Vec<String> {
        self.seen["headers"][name]
            .as_array()
            .map(|values| {
                values
                    .iter()
                    .filter_map(|v| v.as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// The token the upstream received as `Authorization: Bearer …`.
    pub(crate) fn bearer(&self) -> String {
        let values = self.seen_header("authorization");
        assert_eq!(
            values.len(),
            1,
            "one Authorization header upstream: {values:?}"
        );
        values[0]
            .strip_prefix("Bearer ")
            .expect("a Bearer token")
            .to_owned()
    }
}

async fn echo(State(hits): State<Arc<AtomicUsize>>, request: Request) -> Response {
    hits.fetch_add(1, Ordering::SeqCst);
    let mut headers = serde_json::Map::new();
    for (name, value) in request.headers() {
        let values = headers.entry(name.as_str()).or_insert_with(|| json!([]));
        values
            .as_array_mut()
            .expect("array")
            .push(json!(String::from_utf8_lossy(value.as_bytes())));
    }
    let username = request
        .extensions()
        .get::<ClientUsername>()
        .map(|u| u.0.to_string());
    let status = request
        .headers()
        .get(STATUS_HEADER)
        .and_then(|v| v.to_str().ok()?.parse().ok())
        .and_then(|code| StatusCode::from_u16(code).ok())
        .unwrap_or(StatusCode::OK);
    let body = json!({"path": request.uri().path(), "headers": headers, "username": username});
    (status, body.to_string()).into_response()
}

impl Upstream {
    /// Serves `middleware` in front of the echo handler.
    pub(crate) async fn start(middleware: Middleware) -> Self {
        let hits = Arc::new(AtomicUsize::new(0));
        let app = Router::new()
            .fallback(echo)
            .with_state(Arc::clone(&hits))
            .layer(ClientCredentialsLayer::new(middleware));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let url = format!("http://{}", listener.local_addr().expect("address"));
        let server = tokio::spawn(async move {
            axum::serve(listener, app).await.expect("serve");
        });
        Self {
            url,
            hits,
            client: reqwest::Client::builder()
                .no_proxy()
                .build()
                .expect("client"),
            _server: server,
        }
    }

    /// How many requests reached the upstream handler.
    pub(crate) fn hits(&self) -> usize {
        self.hits.load(Ordering::SeqCst)
    }

    /// Sends `GET /v1/things` with the given headers.
    pub(crate) async fn get(&self, headers: &[(&str, &str)]) -> Echo {
        let mut request = self.client.get(format!("{}/v1/things", self.url));
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let response = request.send().await.expect("the gateway answers");
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let text = response.text().await.expect("body");
        let seen = serde_json::from_str(&text).unwrap_or_else(|_| json!({ "body": text }));
        Echo {
            status,
            headers,
            seen,
        }
    }

    /// Sends `GET /v1/things` with Basic credentials `id:secret`.
    pub(crate) async fn get_as(&self, id: &str, secret: &str) -> Echo {
        let value = basic(id, secret);
        self.get(&[("authorization", &value)]).await
    }
}

/// `Basic base64(id:secret)`, verbatim as callers send it.
pub(crate) fn basic(id: &str, secret: &str) -> String {
    use base64::Engine as _;
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{id}:{secret}"))
    )
}
