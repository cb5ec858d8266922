//! Edge safety (SPEC §10), tried as an attacker would: raw request bytes
//! on a socket (a client library would tidy the request up first), the
//! real `ccgate` binary, tokens from the real test IdP, and a real nginx
//! as the upstream that answers with what it understood (`$uri`, the
//! headers), so a request that walks around the middleware shows.

use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;

use crate::support::gateway::{Ccgate, TempDir};
use crate::support::idp::Idp;
use crate::support::proxies::Proxy;
use crate::support::{basic, free_port};

/// nginx answering every request with what it saw.
const NGINX_SITE: &str = r#"server {
    listen 127.0.0.1:PORT;
    location / {
        default_type text/plain;
        return 200 "nginx uri=$uri group=$http_x_group auth=$http_authorization xff=$http_x_forwarded_for real=$http_x_real_ip fwd=$http_forwarded host=$http_host\n";
    }
}
"#;

/// A router `api` for `/api` through the middleware, a router `internal`
/// for the host `internal.example.com` through it too, and a catch-all
/// router `public` without it, all to nginx; `extra` is added to the
/// entry point `web`.
fn config(web: u16, nginx: u16, idp: &str, extra: &str) -> String {
    format!(
        r#"entryPoints:
  web:
    address: "127.0.0.1:{web}"
{extra}
http:
  routers:
    api:
      rule: "PathPrefix(`/api`)"
      middlewares: [cc-auth]
      service: nginx
    internal:
      rule: "Host(`internal.example.com`)"
      middlewares: [cc-auth]
      service: nginx
    public:
      rule: "PathPrefix(`/`)"
      service: nginx
  middlewares:
    cc-auth:
      plugin:
        oAuthClientCredentials:
          url: "{idp}"
          audience: https://api.example.com
          forwardHeaders:
            X-Group: grp
  services:
    nginx:
      loadBalancer:
        servers:
          - url: "http://127.0.0.1:{nginx}"
"#
    )
}

struct Setup {
    idp: Idp,
    ccgate: Ccgate,
    _nginx: Proxy,
    _dir: TempDir,
}

async fn setup(extra: &str) -> Setup {
    let idp = Idp::start().await;
    let nginx_port = free_port();
    let nginx = Proxy::nginx(
        nginx_port,
        &NGINX_SITE.replace("PORT", &nginx_port.to_string()),
    )
    .await;
    let dir = TempDir::new();
    let web = free_port();
    let path = dir.write(
        "ccgate.yaml",
        &config(web, nginx_port, idp.token_endpoint(), extra),
    );
    let ccgate = Ccgate::start(&path, &[("web", web)]).await;
    Setup {
        idp,
        ccgate,
        _nginx: nginx,
        _dir: dir,
    }
}

impl Setup {
    /// Sends `head` (request line and headers, `\r\n`-separated, without
    /// the blank line) as it is, with `Connection: close`, and returns the
    /// status and the body.
    async fn raw(&self, head: &str) -> (u16, String) {
        let address = format!("127.0.0.1:{}", self.ccgate.ports["web"]);
        let mut stream = TcpStream::connect(address).await.expect("connect");
        let request = format!("{head}\r\nConnection: close\r\n\r\n");
        stream.write_all(request.as_bytes()).await.expect("write");
        let mut answer = Vec::new();
        stream.read_to_end(&mut answer).await.expect("read");
        let answer = String::from_utf8_lossy(&answer).into_owned();
        let status = answer
            .split(' ')
            .nth(1)
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| panic!("not an HTTP answer: {answer:?}"));
        let body = answer
            .split_once("\r\n\r\n")
            .map(|(_, body)| body.to_owned())
            .unwrap_or_default();
        (status, body)
    }
}

#[tokio::test]
async fn paths_that_look_different_route_as_the_upstream_reads_them() {
    let s = setup("").await;
    // Each of these is /api/x to nginx; none may take the catch-all
    // router around the middleware.
    for path in [
        "//api/x",
        "/%61pi/x",
        "/%61%50I/../api/x",
        "/public/../api/x",
        "/./api/x",
        "/%2e/api/x",
        "/x/%2E%2e/api/x",
        "///api//x",
    ] {
        let (status, body) = s
            .raw(&format!(
                "GET {path} HTTP/1.1\r\nHost: public.example.com\r\nX-Group: spoofed"
            ))
            .await;
        assert_eq!(status, 401, "{path} must meet the middleware: {body}");
        assert!(
            !body.contains("nginx"),
            "{path} reached the upstream: {body}"
        );
    }
    // The catch-all still works, and nginx sees the normalised path.
    let (status, body) = s
        .raw("GET /pub%6cic//a/./b HTTP/1.1\r\nHost: public.example.com")
        .await;
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("uri=/public/a/b "), "{body}");
    assert_eq!(s.idp.stats().await.total, 0, "no token was asked for");
}

#[tokio::test]
async fn encoded_separators_are_refused_before_routing() {
    let s = setup("").await;
    for (path, named) in [
        ("/api%2Fx", "%2F"),
        ("/public%2F..%2Fapi", "%2F"),
        ("/public/a%5Cb", "%5C"),
        ("/public/a%00", "%00"),
        ("/public/a%3Bjsessionid=1", "%3B"),
        ("/public/a%25", "%25"),
        ("/public/a%3Fb", "%3F"),
        ("/public/a%23b", "%23"),
        ("/public/a%zz", "malformed"),
    ] {
        let (status, body) = s
            .raw(&format!("GET {path} HTTP/1.1\r\nHost: public.example.com"))
            .await;
        assert_eq!(status, 400, "{path}: {body}");
        assert!(body.contains(named), "{path}: {body}");
    }
}

#[tokio::test]
async fn an_entry_point_may_allow_encoded_characters_and_keep_dot_segments() {
    let extra = "    http:\n      sanitizePath: false\n      encodedCharacters:\n        allowEncodedSlash: true\n";
    let s = setup(extra).await;
    let (status, body) = s
        .raw("GET /public/a%2fb HTTP/1.1\r\nHost: public.example.com")
        .await;
    assert_eq!(status, 200, "{body}");
    // nginx decodes %2F itself; ccgate passed it upper-cased.
    assert!(body.contains("uri=/public/a/b "), "{body}");
    let (status, _) = s
        .raw("GET /public/a%3Bb HTTP/1.1\r\nHost: public.example.com")
        .await;
    assert_eq!(status, 400, "only the slash is allowed");
    // Without sanitizePath, //api is not /api to the router.
    let (status, body) = s
        .raw("GET //api/x HTTP/1.1\r\nHost: public.example.com")
        .await;
    assert_eq!(status, 200, "{body}");
}

#[tokio::test]
async fn hosts_are_compared_in_one_form_and_never_twice() {
    let s = setup("").await;
    for host in [
        "internal.example.com",
        "INTERNAL.Example.COM",
        "internal.example.com.",
        "Internal.Example.Com.:80",
    ] {
        let (status, body) = s.raw(&format!("GET /x HTTP/1.1\r\nHost: {host}")).await;
        assert_eq!(status, 401, "{host} must meet the middleware: {body}");
    }
    // The absolute-form target's authority wins over Host (RFC 9112 §3.2.2).
    let (status, body) = s
        .raw("GET http://internal.example.com/x HTTP/1.1\r\nHost: public.example.com")
        .await;
    assert_eq!(status, 401, "{body}");
    // Two Host headers, equal or not.
    for second in ["internal.example.com", "public.example.com"] {
        let (status, body) = s
            .raw(&format!(
                "GET /x HTTP/1.1\r\nHost: public.example.com\r\nHost: {second}"
            ))
            .await;
        assert_eq!(status, 400, "{body}");
    }
}

#[tokio::test]
async fn a_caller_cannot_strip_the_headers_ccgate_adds() {
    let s = setup("").await;
    let good = basic("basic-client", "basic-secret");
    let (status, body) = s
        .raw(&format!(
            "GET /api/x HTTP/1.1\r\nHost: public.example.com\r\nAuthorization: {good}\r\n\
             X-Group: spoofed\r\nConnection: x-group, x-forwarded-for, x-real-ip, keep-alive"
        ))
        .await;
    assert_eq!(status, 200, "{body}");
    assert!(
        body.contains("auth=Bearer ey"),
        "the token reached nginx: {body}"
    );
    assert!(
        body.contains("group=admin "),
        "the claim, not the caller's: {body}"
    );
    assert!(!body.contains("spoofed"), "{body}");
    assert!(body.contains("xff=127.0.0.1 real=127.0.0.1 "), "{body}");
    // Naming its own Authorization as hop-by-hop only loses the caller its
    // credentials: they go before the middleware runs, and never upstream.
    let (status, body) = s
        .raw(&format!(
            "GET /api/x HTTP/1.1\r\nHost: public.example.com\r\nAuthorization: {good}\r\n\
             Connection: authorization"
        ))
        .await;
    assert_eq!(status, 401, "{body}");
    assert_eq!(
        s.idp.stats().await.total,
        1,
        "one token, for the first request"
    );
}

#[tokio::test]
async fn an_untrusted_client_cannot_forge_its_address() {
    let s = setup("").await;
    let (status, body) = s
        .raw(
            "GET /public HTTP/1.1\r\nHost: public.example.com\r\nX-Forwarded-For: 10.0.0.1\r\n\
             X-Real-Ip: 10.0.0.1\r\nForwarded: for=10.0.0.1\r\nX-Forwarded-Host: admin.internal",
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("xff=127.0.0.1 "), "{body}");
    assert!(body.contains("real=127.0.0.1 "), "{body}");
    assert!(body.contains("fwd= "), "Forwarded removed: {body}");
    assert!(
        !body.contains("10.0.0.1") && !body.contains("admin.internal"),
        "{body}"
    );
}

#[tokio::test]
async fn a_trusted_proxys_forwarded_headers_are_kept_and_appended_to() {
    let extra = "    forwardedHeaders:\n      trustedIPs: [\"127.0.0.0/8\", \"::1\"]\n";
    let s = setup(extra).await;
    let (status, body) = s
        .raw(
            "GET /public HTTP/1.1\r\nHost: public.example.com\r\nX-Forwarded-For: 198.51.100.7\r\n\
             X-Real-Ip: 198.51.100.7",
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("xff=198.51.100.7, 127.0.0.1 "), "{body}");
    assert!(body.contains("real=198.51.100.7 "), "{body}");
}

/// Sends `head` (without the blank line) on `stream`, kept alive, and
/// reads one answer framed by its `Content-Length`: status and body.
async fn exchange_on(stream: &mut TcpStream, head: &str) -> (u16, String) {
    stream
        .write_all(format!("{head}\r\n\r\n").as_bytes())
        .await
        .expect("write");
    let mut answer = Vec::new();
    let mut byte = [0u8; 1];
    while !answer.ends_with(b"\r\n\r\n") {
        assert_eq!(
            stream.read(&mut byte).await.expect("read"),
            1,
            "closed mid-head"
        );
        answer.push(byte[0]);
    }
    let head = String::from_utf8(answer).expect("an ASCII head");
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .expect("a status");
    let length: usize = head
        .lines()
        .find_map(|line| {
            let (name, value) = line.split_once(':')?;
            name.eq_ignore_ascii_case("content-length")
                .then(|| value.trim().parse().ok())?
        })
        .unwrap_or_else(|| panic!("no Content-Length in {head:?}"));
    let mut body = vec![0u8; length];
    stream.read_exact(&mut body).await.expect("body");
    (status, String::from_utf8_lossy(&body).into_owned())
}

#[tokio::test]
async fn a_connection_that_was_granted_once_gets_nothing_for_other_credentials() {
    // ccgate recalls a connection's last grant for a request with the same
    // Authorization header: every other header must go the full way.
    let s = setup("").await;
    let address = format!("127.0.0.1:{}", s.ccgate.ports["web"]);
    let mut stream = TcpStream::connect(address).await.expect("connect");
    let good = basic("basic-client", "basic-secret");
    let request = |auth: &str| format!("GET /api/x HTTP/1.1\r\nHost: a\r\n{auth}");
    let (status, first) =
        exchange_on(&mut stream, &request(&format!("Authorization: {good}"))).await;
    assert_eq!(status, 200, "{first}");
    assert!(first.contains("auth=Bearer ey"), "{first}");
    assert_eq!(s.idp.stats().await.received, 1);
    let wrong = basic("basic-client", "basic-secreT");
    for (case, auth) in [
        ("a wrong secret", format!("Authorization: {wrong}")),
        (
            "the good header twice",
            format!("Authorization: {good}\r\nAuthorization: {good}"),
        ),
        ("no credentials", String::new()),
        (
            "the good value with other case",
            format!("Authorization: {}", good.replace("Basic", "basic")),
        ),
    ] {
        let head = request(&auth);
        let head = head.trim_end_matches("\r\n");
        let (status, body) = exchange_on(&mut stream, head).await;
        if case == "the good value with other case" {
            // The scheme is case-insensitive (RFC 9110 §11.1): granted, by
            // the full way, with the same cached token.
            assert_eq!((status, body.as_str()), (200, first.as_str()), "{case}");
        } else {
            assert_eq!(status, 401, "{case}: {body}");
            assert!(!body.contains("Bearer"), "{case}: {body}");
        }
    }
    // The wrong secret was asked about (twice under `authMethod: auto`);
    // the good one not again.
    let asked = s.idp.stats().await.received;
    assert!(asked >= 2, "{asked}");
    let (status, again) =
        exchange_on(&mut stream, &request(&format!("Authorization: {good}"))).await;
    assert_eq!((status, again.as_str()), (200, first.as_str()));
    assert_eq!(s.idp.stats().await.received, asked);
}
