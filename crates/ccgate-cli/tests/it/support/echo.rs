//! A real HTTP upstream on 127.0.0.1 that answers with what it received:
//! method, path, headers and body size, as JSON. A request header
//! `x-upstream-status` picks the status; `x-upstream-delay-ms` delays the
//! answer (for in-flight requests during reload and shutdown).

use std::convert::Infallible;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::{Request, Response, StatusCode};
use serde_json::json;

/// A running echo upstream.
pub(crate) struct Echo {
    pub(crate) url: String,
    /// Requests received so far, as soon as each one's head is in.
    hits: tokio::sync::watch::Receiver<usize>,
    _server: tokio::task::JoinHandle<()>,
}

impl Echo {
    pub(crate) async fn start() -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let url = format!("http://{}", listener.local_addr().expect("address"));
        let (counter, hits) = tokio::sync::watch::channel(0);
        let server = tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    continue;
                };
                let counter = counter.clone();
                tokio::spawn(async move {
                    let service = hyper::service::service_fn(move |request| {
                        counter.send_modify(|hits| *hits += 1);
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
        *self.hits.borrow()
    }

    /// Waits until `n` requests have been received (at most 10 s).
    pub(crate) async fn until_hits(&self, n: usize) {
        let mut hits = self.hits.clone();
        tokio::time::timeout(Duration::from_secs(10), hits.wait_for(|hits| *hits >= n))
            .await
            .unwrap_or_else(|_| panic!("the upstream never received {n} requests"))
            .expect("the upstream runs");
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
