//! What the middleware costs on a cache hit: a request through the tower
//! layer with a warm cache, against the same service without the layer.
//!
//! Run: `cargo bench -p ccgate --bench cache_hit`
//!
//! The token endpoint here is a minimal in-process HTTP server that hands
//! out one fixed JWT: it is only asked once, to warm the cache, and is not
//! on the measured path.

use std::convert::Infallible;
use std::sync::OnceLock;

use base64::Engine as _;
use bytes::Bytes;
use ccgate::Middleware;
use ccgate::layer::ClientCredentialsLayer;
use ccgate::options::Options;
use http::{Request, Response, header};
use http_body_util::Full;
use tokio::runtime::Runtime;
use tower::{Layer, Service, ServiceExt};

fn main() {
    divan::main();
}

fn runtime() -> &'static Runtime {
    static RUNTIME: OnceLock<Runtime> = OnceLock::new();
    RUNTIME.get_or_init(|| {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a tokio runtime")
    })
}

/// The JWT the in-process token endpoint hands out.
fn jwt() -> String {
    let encode = |s: &str| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(s);
    let claims = r#"{"grp":"admin","sub":"bench","areas":["office","home"],"exp":4102444800}"#;
    format!(
        "{}.{}.c2lnbmF0dXJl",
        encode(r#"{"alg":"ES256"}"#),
        encode(claims)
    )
}

/// Starts the token endpoint on 127.0.0.1 and returns its URL.
async fn token_endpoint() -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/token", listener.local_addr().unwrap());
    let body = Bytes::from(format!(
        r#"{{"access_token":"{}","token_type":"Bearer","expires_in":3600}}"#,
        jwt()
    ));
    tokio::spawn(async move {
        loop {
            let (stream, _) = listener.accept().await.unwrap();
            let body = body.clone();
            let service = hyper::service::service_fn(move |_| {
                let body = body.clone();
                async move {
                    let response = Response::builder()
                        .header(header::CONTENT_TYPE, "application/json")
                        .body(Full::new(body))
                        .unwrap();
                    Ok::<_, Infallible>(response)
                }
            });
            tokio::spawn(
                hyper::server::conn::http1::Builder::new()
                    .serve_connection(hyper_util::rt::TokioIo::new(stream), service),
            );
        }
    });
    url
}

fn upstream()
-> impl Service<Request<Full<Bytes>>, Response = Response<Full<Bytes>>, Error = Infallible, Future: Send>
+ Clone
+ Send
+ 'static {
    tower::service_fn(|_request: Request<Full<Bytes>>| async {
        Ok::<_, Infallible>(Response::new(Full::new(Bytes::from_static(b"ok"))))
    })
}

fn request() -> Request<Full<Bytes>> {
    Request::builder()
        .uri("/v1/things")
        // base64("bench-client:bench-secret")
        .header(
            header::AUTHORIZATION,
            "Basic YmVuY2gtY2xpZW50OmJlbmNoLXNlY3JldA==",
        )
        .header("x-group", "spoofed")
        .body(Full::new(Bytes::new()))
        .unwrap()
}

fn middleware() -> Middleware {
    runtime().block_on(async {
        let options = Options::from_value(serde_json::json!({
            "url": token_endpoint().await,
            "audience": "https://api.example.com",
            "claims": "Equals(`grp`, `admin`) && Contains(`areas`, `home`)",
            "forwardHeaders": {"X-Group": "grp", "X-Subject": "sub"},
            "usernameClaim": "sub",
        }))
        .unwrap();
        let middleware = Middleware::new(options).unwrap();
        let warm = middleware.authorize(request().headers()).await;
        assert!(warm.is_ok(), "the cache is warm");
        middleware
    })
}

/// The upstream service alone: the baseline.
#[divan::bench]
fn without_layer(bencher: divan::Bencher<'_, '_>) {
    let service = upstream();
    bencher.bench_local(|| {
        runtime()
            .block_on(service.clone().oneshot(request()))
            .unwrap()
    });
}

/// The same service behind the layer, cache warm.
#[divan::bench]
fn through_layer_cache_hit(bencher: divan::Bencher<'_, '_>) {
    let service = ClientCredentialsLayer::new(middleware()).layer(upstream());
    bencher.bench_local(|| {
        let response = runtime()
            .block_on(service.clone().oneshot(request()))
            .unwrap();
        assert_eq!(response.status(), 200);
        response
    });
}

/// `Middleware::authorize` alone on a warm cache.
#[divan::bench]
fn authorize_cache_hit(bencher: divan::Bencher<'_, '_>) {
    let middleware = middleware();
    let request = request();
    bencher.bench_local(|| {
        runtime()
            .block_on(middleware.authorize(request.headers()))
            .unwrap()
    });
}

/// `Middleware::authorize_on` for a connection whose last request brought
/// the same credentials: the grant recalled, no HMAC and no cache look-up.
#[divan::bench]
fn authorize_on_recalled(bencher: divan::Bencher<'_, '_>) {
    let middleware = middleware();
    let request = request();
    let recall = ccgate::middleware::Recall::default();
    bencher.bench_local(|| {
        runtime()
            .block_on(middleware.authorize_on(request.headers(), &recall))
            .unwrap()
    });
}
