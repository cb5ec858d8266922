//! gRPC through ccgate (SPEC §11), real on both sides: a tonic client →
//! ccgate with `oAuthClientCredentials` (tokens from the real test IdP) →
//! the `grpc-peer` echo server (tonic's server over hyper's HTTP/2) on an
//! `h2c://` server URL. Unary and server-streaming calls, metadata both
//! ways, `TE: trailers` forwarded, trailers and error statuses delivered;
//! ccgate's own denials as gRPC statuses. Also the echo server over TLS
//! (`https://`, ALPN `h2`, trusted through `rootCAs`), and failover from
//! an `h2c` server nothing listens on to the next one.

use grpc_peer::{Client, EchoRequest};
use tonic::Code;

use crate::support::gateway::{Ccgate, TempDir};
use crate::support::idp::Idp;
use crate::support::tls::Pki;
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

/// The echo server over TLS, with `pki`'s server certificate (for
/// 127.0.0.1 and localhost); its address.
async fn serve_tls(pki: &Pki) -> (std::net::SocketAddr, tokio::task::JoinHandle<()>) {
    use rustls_pki_types::pem::PemObject;
    use rustls_pki_types::{CertificateDer, PrivateKeyDer};
    let chain = CertificateDer::pem_file_iter(pki.server_cert_file())
        .unwrap()
        .collect::<Result<Vec<_>, _>>()
        .unwrap();
    let key = PrivateKeyDer::from_pem_file(pki.server_key_file()).unwrap();
    let config = rustls::ServerConfig::builder_with_provider(std::sync::Arc::new(
        rustls::crypto::aws_lc_rs::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_no_client_auth()
    .with_single_cert(chain, key)
    .unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    (
        address,
        tokio::spawn(grpc_peer::serve_tls(listener, config)),
    )
}

#[tokio::test]
async fn calls_reach_a_grpc_server_over_tls_that_picks_h2() {
    let pki = Pki::new();
    let (echo, _server) = serve_tls(&pki).await;
    let dir = TempDir::new();
    dir.write("ca.pem", &pki.ca_pem);
    let web = free_port();
    let config = format!(
        "entryPoints:\n  web: {{ address: \"127.0.0.1:{web}\" }}\n\
         http:\n  routers:\n\
         \x20   grpc: {{ rule: \"PathPrefix(`/ccgate.test.Echo/`)\", service: echo }}\n\
         \x20 services:\n\
         \x20   echo: {{ loadBalancer: {{ servers: [{{ url: \"https://localhost:{port}\" }}], serversTransport: ca@file }} }}\n\
         \x20 serversTransports:\n\
         \x20   ca: {{ rootCAs: [ca.pem] }}\n",
        port = echo.port()
    );
    let path = dir.write("ccgate.yaml", &config);
    let ccgate = Ccgate::start(&path, &[("web", web)]).await;
    let mut client = Client::connect(&ccgate.url("web")).await.unwrap();

    let mut request = tonic::Request::new(EchoRequest::say("over tls"));
    request
        .metadata_mut()
        .insert("x-meta", "kept".parse().unwrap());
    let reply = client.unary(request).await.expect("a unary call");
    assert_eq!(reply.metadata().get("x-meta").unwrap(), "kept");
    let reply = reply.into_inner();
    assert_eq!(reply.message, "over tls");
    assert_eq!(reply.te, "trailers", "TE: trailers reached the server");

    let replies = client
        .stream(tonic::Request::new(EchoRequest {
            count: 3,
            ..EchoRequest::say("s")
        }))
        .await
        .expect("a streaming call");
    let messages: Vec<_> = replies.into_iter().map(|reply| reply.message).collect();
    assert_eq!(messages, ["s-0", "s-1", "s-2"]);

    let status = client
        .unary(tonic::Request::new(EchoRequest {
            fail_code: Code::PermissionDenied as u32,
            ..EchoRequest::say("not yours")
        }))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::PermissionDenied);
    assert_eq!(status.message(), "not yours");
}

#[tokio::test]
async fn calls_to_an_unreachable_h2c_server_fail_over_to_the_next_one() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let echo = listener.local_addr().unwrap();
    let _server = tokio::spawn(grpc_peer::serve(listener));
    let (web, nothing) = (free_port(), free_port());
    let dir = TempDir::new();
    let config = format!(
        "entryPoints:\n  web: {{ address: \"127.0.0.1:{web}\" }}\n\
         http:\n  routers:\n\
         \x20   grpc: {{ rule: \"PathPrefix(`/ccgate.test.Echo/`)\", service: echo }}\n\
         \x20 services:\n\
         \x20   echo: {{ loadBalancer: {{ servers: [{{ url: \"h2c://127.0.0.1:{nothing}\" }}, {{ url: \"h2c://{echo}\" }}] }} }}\n"
    );
    let path = dir.write("ccgate.yaml", &config);
    let ccgate = Ccgate::start(&path, &[("web", web)]).await;
    let mut client = Client::connect(&ccgate.url("web")).await.unwrap();
    // The rotation gives the dead server every other turn: each of those
    // calls is written to no one and goes to the live server instead.
    for i in 0..4 {
        let reply = client
            .unary(tonic::Request::new(EchoRequest::say(&format!("call {i}"))))
            .await
            .expect("every call answered");
        assert_eq!(reply.into_inner().message, format!("call {i}"));
    }
    ccgate.until_logged("trying the next server").await;
}
