//! gRPC through ccgate (SPEC §11), real on both sides: a tonic client →
//! ccgate with `oAuthClientCredentials` (tokens from the real test IdP) →
//! the `grpc-peer` echo server (tonic's server over hyper's HTTP/2) on an
//! `h2c://` server URL. Unary and server-streaming calls, metadata both
//! ways, `TE: trailers` forwarded, trailers and error statuses delivered;
//! ccgate's own denials as gRPC statuses.

use grpc_peer::{Client, EchoRequest};
use tonic::Code;

use crate::support::gateway::{Ccgate, TempDir};
use crate::support::idp::Idp;
use crate::support::{basic, free_port};

/// Application-level credentials, and a claims rule `basic-client` passes
/// and `post-client` fails.
const OPTIONS: &str = "url: IDP\n          audience: https://api.example.com\n          claims: Equals(`grp`, `admin`)";

struct Setup {
    ccgate: Ccgate,
    _idp: Idp,
    _server: tokio::task::JoinHandle<()>,
    _dir: TempDir,
}

/// ccgate with entry points `web` (the echo service behind the
/// middleware, over h2c) and `down` (an h2c server nothing listens on).
async fn setup() -> Setup {
    let idp = Idp::start().await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let echo = listener.local_addr().unwrap();
    let server = tokio::spawn(grpc_peer::serve(listener));
    let (web, down, nothing) = (free_port(), free_port(), free_port());
    let options = OPTIONS.replace("IDP", idp.token_endpoint());
    let config = format!(
        r#"entryPoints:
  web: {{ address: "127.0.0.1:{web}" }}
  down: {{ address: "127.0.0.1:{down}" }}
http:
  routers:
    grpc:
      entryPoints: [web]
      rule: "PathPrefix(`/ccgate.test.Echo/`)"
      middlewares: [cc-auth]
      service: echo
    down:
      entryPoints: [down]
      rule: "PathPrefix(`/`)"
      service: down
  middlewares:
    cc-auth:
      plugin:
        oAuthClientCredentials:
          {options}
  services:
    echo: {{ loadBalancer: {{ servers: [{{ url: "h2c://{echo}" }}] }} }}
    down: {{ loadBalancer: {{ servers: [{{ url: "h2c://127.0.0.1:{nothing}" }}] }} }}
"#
    );
    let dir = TempDir::new();
    let path = dir.write("ccgate.yaml", &config);
    let ccgate = Ccgate::start(&path, &[("web", web), ("down", down)]).await;
    Setup {
        ccgate,
        _idp: idp,
        _server: server,
        _dir: dir,
    }
}

fn as_client(id: &str, secret: &str, echo: EchoRequest) -> tonic::Request<EchoRequest> {
    let mut request = tonic::Request::new(echo);
    request
        .metadata_mut()
        .insert("authorization", basic(id, secret).parse().unwrap());
    request
}

#[tokio::test]
async fn unary_and_streaming_calls_cross_with_metadata_trailers_and_the_token() {
    let s = setup().await;
    let mut client = Client::connect(&s.ccgate.url("web")).await.unwrap();

    let mut request = as_client("basic-client", "basic-secret", EchoRequest::say("hello"));
    request
        .metadata_mut()
        .insert("x-meta", "from the caller".parse().unwrap());
    let response = client.unary(request).await.expect("the unary call");
    assert_eq!(
        response.metadata().get("x-meta").unwrap(),
        "from the caller"
    );
    let reply = response.into_inner();
    assert_eq!(reply.message, "hello");
    // The middleware's token replaced the caller's Basic credentials.
    assert!(reply.authorization.starts_with("Bearer "), "{reply:?}");
    // RFC 9113 §8.2.2: `te: trailers` is the one TE an h2 request carries.
    assert_eq!(reply.te, "trailers");

    let echo = EchoRequest {
        count: 3,
        ..EchoRequest::say("tick")
    };
    let replies = client
        .stream(as_client("basic-client", "basic-secret", echo))
        .await
        .expect("the streaming call");
    let messages: Vec<_> = replies.iter().map(|r| r.message.as_str()).collect();
    assert_eq!(messages, ["tick-0", "tick-1", "tick-2"]);
}

#[tokio::test]
async fn an_error_status_and_its_message_cross_intact() {
    let s = setup().await;
    let mut client = Client::connect(&s.ccgate.url("web")).await.unwrap();
    let echo = EchoRequest {
        fail_code: 5,
        ..EchoRequest::say("no such thing: ünïcode, 100%")
    };
    let status = client
        .unary(as_client("basic-client", "basic-secret", echo))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::NotFound, "{status:?}");
    assert_eq!(status.message(), "no such thing: ünïcode, 100%");
}

#[tokio::test]
async fn denials_are_grpc_statuses() {
    let s = setup().await;
    let mut client = Client::connect(&s.ccgate.url("web")).await.unwrap();
    // No credentials at application level: 401 → UNAUTHENTICATED.
    let status = client
        .unary(tonic::Request::new(EchoRequest::say("hi")))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::Unauthenticated, "{status:?}");
    // A client the claims rule refuses: 403 → PERMISSION_DENIED.
    let status = client
        .unary(as_client(
            "post-client",
            "post-secret",
            EchoRequest::say("hi"),
        ))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::PermissionDenied, "{status:?}");
    // Wrong credentials: the IdP refuses them, ccgate says 401.
    let status = client
        .unary(as_client("basic-client", "wrong", EchoRequest::say("hi")))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::Unauthenticated, "{status:?}");
    // The connection stays usable: an allowed call goes through.
    let reply = client
        .unary(as_client(
            "basic-client",
            "basic-secret",
            EchoRequest::say("hi"),
        ))
        .await
        .expect("an allowed call");
    assert_eq!(reply.into_inner().message, "hi");
}

#[tokio::test]
async fn a_call_to_an_unreachable_server_is_unavailable() {
    let s = setup().await;
    let mut client = Client::connect(&s.ccgate.url("down")).await.unwrap();
    let status = client
        .unary(tonic::Request::new(EchoRequest::say("hi")))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::Unavailable, "{status:?}");
}
