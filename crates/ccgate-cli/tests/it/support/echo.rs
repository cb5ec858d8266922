//! A real HTTP upstream on 127.0.0.1 that answers with what it received:
//! method, path, headers and body size, as JSON. A request header
//! `x-upstream-status` picks the status; `x-upstream-delay-ms` delays the
//! answer (for in-flight requests during reload and shutdown).

use std::convert::Infallible;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::{Request, Response, StatusCode};
use serde_json::json;

/// A running echo upstream.
pub(crate) struct Echo {
    pub(crate) url: String,
    hits: Arc<AtomicUsize>,
    _server: tokio::task::JoinHandle<()>,
}

impl Echo {
    pub(crate) async fn start() -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let url = format!("http://{}", listener.local_addr().expect("address"));
        let hits = Arc::new(AtomicUsize::new(0));
        let counter = Arc::clone(&hits);
        let server = tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    continue;
                };
                let counter = Arc::clone(&counter);
                tokio::spawn(async move {
                    let service = hyper::service::service_fn(move |request| {
                        counter.fetch_add(1, Ordering::SeqCst);
                        answer(request)
                    });
                    let io = hyper_util::rt::TokioIo::new(stream);
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(io, service)
                        .await;
                });
            }
        });
        Self {
            url,
            hits,
            _server: server,
        }
    }

    /// Requests received.
    pub(crate) fn hits(&self) -> usize {
        self.hits.load(Ordering::SeqCst)
    }
}

async fn answer(request: Request<Incoming>) -> Result<Response<Full<Bytes>>, Infallible> {
    let header = |name: &str| {
        request
            .headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    };
    let status = header("x-upstream-status")
        .and_then(|s| s.parse().ok())
        .and_then(|s| StatusCode::from_u16(s).ok());
    let delay = header("x-upstream-delay-ms")
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let mut headers = serde_json::Map::new();
    for (name, value) in request.headers() {
        let values = headers.entry(name.as_str()).or_insert_with(|| json!([]));
        values
            .as_array_mut()
            .expect("array")
            .push(json!(String::from_utf8_lossy(value.as_bytes())));
    }
    let (method, path) = (request.method().to_string(), request.uri().to_string());
    let size = request
        .into_body()
        .collect()
        .await
        .map(|b| b.to_bytes().len())
        .unwrap_or(0);
    tokio::time::sleep(Duration::from_millis(delay)).await;
    let body = json!({"method": method, "path": path, "headers": headers, "body_size": size});
    let mut response = Response::new(Full::new(Bytes::from(body.to_string())));
    *response.status_mut() = status.unwrap_or(StatusCode::OK);
    Ok(response)
}
