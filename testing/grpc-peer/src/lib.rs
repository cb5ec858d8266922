//! Test support for ccgate's gRPC pass-through (SPEC §11): a real gRPC
//! echo server (tonic's server machinery over hyper's HTTP/2, h2c) and a
//! real tonic client, to put on both sides of the gateway, and the load
//! client of the benchmark (`grpc-load`).
//!
//! No `protoc` at build time: the two messages are hand-written
//! `prost::Message` structs and the service dispatches by path, as
//! tonic's generated code does.
//!
//! The service `ccgate.test.Echo`:
//! - `Unary`: answers `message`, the `authorization` and `te` headers it
//!   saw, and the request metadata `x-meta` as response metadata
//!   `x-meta`; with `fail_code` set, fails with that gRPC status and
//!   `message` as its message.
//! - `Stream`: `count` answers, the i-th message `message-i`.
//!
//! # Example
//!
//! ```no_run
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
//! let address = listener.local_addr()?;
//! tokio::spawn(grpc_peer::serve(listener));
//! let mut client = grpc_peer::Client::connect(&format!("http://{address}")).await?;
//! let reply = client.unary(grpc_peer::EchoRequest::say("hi")).await?;
//! assert_eq!(reply.get_ref().message, "hi");
//! # Ok(())
//! # }
//! ```

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;

use futures_util::Stream;
use http::uri::PathAndQuery;
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::net::TcpListener;
use tonic::{Request, Response, Status};
use tonic_prost::ProstCodec;

/// The path of the unary method.
pub const UNARY: &str = "/ccgate.test.Echo/Unary";
/// The path of the server-streaming method.
pub const STREAM: &str = "/ccgate.test.Echo/Stream";

/// A request to the echo service.
#[derive(Clone, PartialEq, prost::Message)]
pub struct EchoRequest {
    /// Echoed back (the status message with `fail_code`).
    #[prost(string, tag = "1")]
    pub message: String,
    /// How many answers `Stream` sends.
    #[prost(uint32, tag = "2")]
    pub count: u32,
    /// A gRPC status code for `Unary` to fail with (0: answer).
    #[prost(uint32, tag = "3")]
    pub fail_code: u32,
}

impl EchoRequest {
    /// A request that says `message`.
    #[must_use]
    pub fn say(message: &str) -> Self {
        Self {
            message: message.to_owned(),
            ..Self::default()
        }
    }
}

/// An answer of the echo service.
#[derive(Clone, PartialEq, prost::Message)]
pub struct EchoReply {
    /// The request's message (`Stream`: with `-i`).
    #[prost(string, tag = "1")]
    pub message: String,
    /// The `authorization` header the server saw.
    #[prost(string, tag = "2")]
    pub authorization: String,
    /// The `te` header the server saw.
    #[prost(string, tag = "3")]
    pub te: String,
}

type Boxed<T> = Pin<Box<dyn Future<Output = T> + Send>>;

/// Serves the echo service on every connection `listener` accepts, over
/// cleartext HTTP/2 (prior knowledge), until the task is dropped.
pub async fn serve(listener: TcpListener) {
    while let Ok((stream, _)) = listener.accept().await {
        let _ = stream.set_nodelay(true);
        tokio::spawn(serve_connection(stream));
    }
}

/// The same over TLS with `config` (its certificate; ALPN `h2` is set
/// here), as a gRPC server on `https` is reached.
pub async fn serve_tls(listener: TcpListener, mut config: tokio_rustls::rustls::ServerConfig) {
    config.alpn_protocols = vec![b"h2".to_vec()];
    let acceptor = tokio_rustls::TlsAcceptor::from(std::sync::Arc::new(config));
    while let Ok((stream, _)) = listener.accept().await {
        let acceptor = acceptor.clone();
        tokio::spawn(async move {
            if let Ok(stream) = acceptor.accept(stream).await {
                serve_connection(stream).await;
            }
        });
    }
}

async fn serve_connection<S>(stream: S)
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let _ = hyper::server::conn::http2::Builder::new(TokioExecutor::new())
        .serve_connection(
            TokioIo::new(stream),
            hyper::service::service_fn(|request: http::Request<Incoming>| async move {
                Ok::<_, Infallible>(route(request).await)
            }),
        )
        .await;
}

async fn route(request: http::Request<Incoming>) -> http::Response<tonic::body::Body> {
    let header = |name: &str| {
        request
            .headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned()
    };
    let seen = Seen {
        authorization: header("authorization"),
        te: header("te"),
    };
    match request.uri().path() {
        UNARY => {
            tonic::server::Grpc::new(ProstCodec::default())
                .unary(Unary(seen), request)
                .await
        }
        STREAM => {
            tonic::server::Grpc::new(ProstCodec::default())
                .server_streaming(Streamed(seen), request)
                .await
        }
        _ => Status::unimplemented("no such method").into_http(),
    }
}

/// What the server saw of the request's head.
#[derive(Clone)]
struct Seen {
    authorization: String,
    te: String,
}

impl Seen {
    fn reply(&self, message: String) -> EchoReply {
        EchoReply {
            message,
            authorization: self.authorization.clone(),
            te: self.te.clone(),
        }
    }
}

struct Unary(Seen);

impl tonic::server::UnaryService<EchoRequest> for Unary {
    type Response = EchoReply;
    type Future = Boxed<Result<Response<EchoReply>, Status>>;

    fn call(&mut self, request: Request<EchoRequest>) -> Self::Future {
        let seen = self.0.clone();
        Box::pin(async move {
            let meta = request.metadata().get("x-meta").cloned();
            let echo = request.into_inner();
            if echo.fail_code != 0 {
                let code = tonic::Code::from_i32(i32::try_from(echo.fail_code).unwrap_or(2));
                return Err(Status::new(code, echo.message));
            }
            let mut response = Response::new(seen.reply(echo.message));
            if let Some(meta) = meta {
                response.metadata_mut().insert("x-meta", meta);
            }
            Ok(response)
        })
    }
}

struct Streamed(Seen);

type Replies = Pin<Box<dyn Stream<Item = Result<EchoReply, Status>> + Send>>;

impl tonic::server::ServerStreamingService<EchoRequest> for Streamed {
    type Response = EchoReply;
    type ResponseStream = Replies;
    type Future = Boxed<Result<Response<Replies>, Status>>;

    fn call(&mut self, request: Request<EchoRequest>) -> Self::Future {
        let seen = self.0.clone();
        Box::pin(async move {
            let echo = request.into_inner();
            let replies = (0..echo.count)
                .map(move |i| Ok(seen.reply(format!("{}-{i}", echo.message))))
                .collect::<Vec<_>>();
            let stream: Replies = Box::pin(futures_util::stream::iter(replies));
            Ok(Response::new(stream))
        })
    }
}

/// A tonic client of the echo service over a tonic `Channel` (h2c).
#[derive(Debug, Clone)]
pub struct Client {
    grpc: tonic::client::Grpc<tonic::transport::Channel>,
}

impl Client {
    /// A client of the service at `url` (`http://HOST:PORT`).
    ///
    /// # Errors
    ///
    /// The URL is invalid or no connection could be made.
    pub async fn connect(url: &str) -> Result<Self, tonic::transport::Error> {
        let channel = tonic::transport::Endpoint::from_shared(url.to_owned())?
            .connect()
            .await?;
        Ok(Self {
            grpc: tonic::client::Grpc::new(channel),
        })
    }

    /// Calls `Unary`.
    ///
    /// # Errors
    ///
    /// The call's status when it is not OK.
    pub async fn unary(
        &mut self,
        request: impl tonic::IntoRequest<EchoRequest>,
    ) -> Result<Response<EchoReply>, Status> {
        self.grpc
            .ready()
            .await
            .map_err(|e| Status::unavailable(e.to_string()))?;
        self.grpc
            .unary(
                request.into_request(),
                PathAndQuery::from_static(UNARY),
                ProstCodec::default(),
            )
            .await
    }

    /// Calls `Stream` and collects its answers.
    ///
    /// # Errors
    ///
    /// The call's status when it is not OK, or the stream's.
    pub async fn stream(
        &mut self,
        request: impl tonic::IntoRequest<EchoRequest>,
    ) -> Result<Vec<EchoReply>, Status> {
        self.grpc
            .ready()
            .await
            .map_err(|e| Status::unavailable(e.to_string()))?;
        let mut stream = self
            .grpc
            .server_streaming(
                request.into_request(),
                PathAndQuery::from_static(STREAM),
                ProstCodec::default(),
            )
            .await?
            .into_inner();
        let mut replies = Vec::new();
        while let Some(reply) = stream.message().await? {
            replies.push(reply);
        }
        Ok(replies)
    }
}
