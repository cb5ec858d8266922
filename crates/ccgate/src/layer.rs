//! The tower layer: puts the middleware in front of any
//! `Service<http::Request<_>>` — an axum router, a hyper service, a tonic
//! server.
//!
//! For each request it asks the [`Middleware`] to authorize it, then
//! either answers with the [`Denial`](crate::denial::Denial) (401, 403,
//! 502 or 504, without calling the inner service) or forwards the request
//! with the caller's `Authorization` replaced by `Bearer <token>` and the
//! `forwardHeaders` set (caller-sent ones removed first). The username is
//! put in the request's and the response's extensions as
//! [`ClientUsername`], for the access log. When the inner service answers
//! 401, the token is dropped from the cache so that the next request gets
//! a new one.
//!
//! # Example
//!
//! ```
//! use axum::{Router, routing::get, http::HeaderMap};
//! use ccgate::{Middleware, layer::ClientCredentialsLayer, options::Options};
//! use serde_json::json;
//!
//! async fn handler(headers: HeaderMap) -> String {
//!     // `Authorization: Bearer <token>` and the forwarded claims are here.
//!     format!("group {:?}", headers.get("x-group"))
//! }
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let options = Options::from_value(json!({
//!     "url": "https://idp.example.com/oauth/token",
//!     "audience": "https://api.example.com",
//!     "forwardHeaders": {"X-Group": "grp"},
//! }))?;
//! let middleware = Middleware::builder(options).name("cc-auth").build()?;
//! let app: Router = Router::new()
//!     .route("/", get(handler))
//!     .layer(ClientCredentialsLayer::new(middleware));
//! # let _ = app;
//! # Ok(())
//! # }
//! ```

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body_util::{Either, Full};
use tower_layer::Layer;
use tower_service::Service;

use crate::Middleware;

/// Wraps services in [`ClientCredentials`].
#[derive(Clone, Debug)]
pub struct ClientCredentialsLayer {
    middleware: Middleware,
}

impl ClientCredentialsLayer {
    /// A layer applying `middleware`.
    #[must_use]
    pub fn new(middleware: Middleware) -> Self {
        Self { middleware }
    }
}

impl<S> Layer<S> for ClientCredentialsLayer {
    type Service = ClientCredentials<S>;

    fn layer(&self, inner: S) -> Self::Service {
        ClientCredentials {
            middleware: self.middleware.clone(),
            inner,
        }
    }
}

/// The `usernameClaim` value of the request's token, in request and
/// response extensions.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClientUsername(pub Arc<str>);

/// The body of a response: the inner service's, or the middleware's own
/// short text.
pub type ResponseBody<B> = Either<B, Full<Bytes>>;

/// A service behind the `oAuthClientCredentials` middleware.
#[derive(Clone, Debug)]
pub struct ClientCredentials<S> {
    middleware: Middleware,
    inner: S,
}

type Outcome<B, E> = Result<Response<ResponseBody<B>>, E>;

/// The future of [`ClientCredentials::call`].
pub struct ResponseFuture<B, E> {
    inner: Pin<Box<dyn Future<Output = Outcome<B, E>> + Send>>,
}

impl<B, E> Future for ResponseFuture<B, E> {
    type Output = Result<Response<ResponseBody<B>>, E>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        self.inner.as_mut().poll(cx)
    }
}

impl<B, E> std::fmt::Debug for ResponseFuture<B, E> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ResponseFuture")
    }
}

impl<S, ReqBody, ResBody> Service<Request<ReqBody>> for ClientCredentials<S>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>> + Clone + Send + 'static,
    S::Future: Send,
    ReqBody: Send + 'static,
    ResBody: Send + 'static,
{
    type Response = Response<ResponseBody<ResBody>>;
    type Error = S::Error;
    type Future = ResponseFuture<ResBody, S::Error>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<ReqBody>) -> Self::Future {
        // Use the service that was polled ready; leave a fresh clone behind.
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let middleware = self.middleware.clone();
        let inner = Box::pin(async move {
            // Split so that only the (Sync) parts are borrowed across the await.
            let (mut parts, body) = request.into_parts();
            let grant = match middleware.authorize(&parts.headers).await {
                Ok(grant) => grant,
                Err(denial) => return Ok(denial.response_to(&parts.headers).map(Either::Right)),
            };
            grant.apply(&mut parts.headers);
            let username = grant.username().cloned().map(ClientUsername);
            if let Some(username) = &username {
                parts.extensions.insert(username.clone());
            }
            let mut response = inner.call(Request::from_parts(parts, body)).await?;
            if response.status() == StatusCode::UNAUTHORIZED {
                // Boxed: this rare path's future (a Redis delete) would
                // make every request's future several times larger.
                Box::pin(middleware.upstream_rejected(&grant)).await;
            }
            if let Some(username) = username {
                response.extensions_mut().insert(username);
            }
            Ok(response.map(Either::Left))
        });
        ResponseFuture { inner }
    }
}
