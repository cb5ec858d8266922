//! SPEC §11 upstreams, against real peers: `http.serversTransports` with
//! its forwarding timeouts (a server that never answers, a server whose
//! accept queue is full), and `https://` servers — nginx from Debian with
//! TLS, and with `ssl_verify_client on` — trusted through `rootCAs`,
//! refused for an unknown CA or a wrong `serverName`, reached with a
//! client certificate, or with `insecureSkipVerify`. `ccgate check`
//! validates and summarises the transports.

use std::time::{Duration, Instant};

use crate::support::gateway::{Ccgate, TempDir};
use crate::support::proxies::Proxy;
use crate::support::tls::Pki;
use crate::support::{ConfigDir, assert_contains, free_port};

/// `ccgate serve` with one entry point `web`; for each `(name, url,
/// transport)` a router ``PathPrefix(`/name`)`` to a service `name` whose
/// one server is `url`, through the servers transport `name` (`transport`
/// is a YAML flow mapping). Files named in the transports are relative to
/// `dir`.
async fn gateway(dir: &TempDir, services: &[(&str, &str, &str)]) -> Ccgate {
    let web = free_port();
    let mut routers = String::new();
    let mut defined = String::new();
    let mut transports = String::new();
    for (name, url, transport) in services {
        routers.push_str(&format!(
            "    {name}: {{ rule: \"PathPrefix(`/{name}`)\", service: {name} }}\n"
        ));
        defined.push_str(&format!(
            "    {name}: {{ loadBalancer: {{ servers: [{{ url: \"{url}\" }}], serversTransport: {name}@file }} }}\n"
        ));
        transports.push_str(&format!("    {name}: {transport}\n"));
    }
    let config = format!(
        "entryPoints:\n  web: {{ address: \"127.0.0.1:{web}\" }}\nhttp:\n  routers:\n{routers}  services:\n{defined}  serversTransports:\n{transports}"
    );
    let path = dir.write("ccgate.yaml", &config);
    Ccgate::start(&path, &[("web", web)]).await
}

/// `GET path` through ccgate's `web`: status and body.
async fn get(ccgate: &Ccgate, path: &str) -> (u16, String) {
    let response = reqwest::get(format!("{}{path}", ccgate.url("web")))
        .await
        .expect("ccgate answers");
    let status = response.status().as_u16();
    (status, response.text().await.expect("a body"))
}

#[tokio::test]
async fn a_server_that_never_answers_is_504_after_the_response_header_timeout() {
    // A real TCP server that accepts, reads nothing and never answers.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((stream, _)) = listener.accept().await {
            held.push(stream);
        }
    });
    let dir = TempDir::new();
    let url = format!("http://{address}");
    let ccgate = gateway(
        &dir,
        &[(
            "silent",
            &url,
            "{ forwardingTimeouts: { responseHeaderTimeout: 300ms } }",
        )],
    )
    .await;
    let started = Instant::now();
    let (status, body) = get(&ccgate, "/silent").await;
    let waited = started.elapsed();
    assert_eq!(status, 504, "{body}");
    assert_eq!(
        body,
        "gateway timeout: the upstream server did not answer in time\n"
    );
    assert!(
        waited >= Duration::from_millis(300) && waited < Duration::from_secs(5),
        "{waited:?}"
    );
    ccgate
        .until_logged("no response head within 300ms (forwardingTimeouts.responseHeaderTimeout)")
        .await;
}

#[tokio::test]
async fn a_server_whose_accept_queue_is_full_is_502_after_the_dial_timeout() {
    // Linux drops a SYN to a listener whose accept queue is full, so a
    // connect to it hangs: fill the queue of one that never accepts, and
    // make sure a connect does hang before asking ccgate.
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.bind("127.0.0.1:0".parse().unwrap()).unwrap();
    let listener = socket.listen(1).unwrap();
    let address = listener.local_addr().unwrap();
    let mut held = Vec::new();
    let mut blackholed = false;
    for _ in 0..16 {
        match tokio::time::timeout(
            Duration::from_millis(300),
            tokio::net::TcpStream::connect(address),
        )
        .await
        {
            Ok(Ok(stream)) => held.push(stream),
            Ok(Err(error)) => panic!("connect: {error}"),
            Err(_) => {
                blackholed = true;
                break;
            }
        }
    }
    assert!(blackholed, "the accept queue never filled");
    let dir = TempDir::new();
    let url = format!("http://{address}");
    let ccgate = gateway(
        &dir,
        &[(
            "full",
            &url,
            "{ forwardingTimeouts: { dialTimeout: 300ms } }",
        )],
    )
    .await;
    let started = Instant::now();
    let (status, body) = get(&ccgate, "/full").await;
    let waited = started.elapsed();
    assert_eq!(status, 502, "{body}");
    assert!(
        waited >= Duration::from_millis(300) && waited < Duration::from_secs(5),
        "{waited:?}"
    );
    ccgate
        .until_logged("connecting timed out after 300ms (forwardingTimeouts.dialTimeout)")
        .await;
    drop((held, listener));
}

/// nginx with TLS on two ports: `tls` (the server certificate of `pki`
/// for 127.0.0.1 and localhost; `/fresh` closes every connection, to show
/// TLS session resumption), and `mtls` (also `ssl_verify_client on`
/// against `pki`'s CA).
struct TlsNginx {
    tls: u16,
    mtls: u16,
    _nginx: Proxy,
}

impl TlsNginx {
    async fn start(pki: &Pki) -> Self {
        let tls = free_port();
        let mtls = free_port();
        let cert = pki.server_cert_file().display().to_string();
        let key = pki.server_key_file().display().to_string();
        let ca = pki.ca_file().display().to_string();
        let site = format!(
            "server {{\n\
             \x20   listen 127.0.0.1:{tls} ssl;\n\
             \x20   ssl_protocols TLSv1.3;\n\
             \x20   ssl_certificate {cert};\n\
             \x20   ssl_certificate_key {key};\n\
             \x20   location /fresh {{ keepalive_timeout 0; return 200 \"reused=$ssl_session_reused\\n\"; }}\n\
             \x20   location / {{ return 200 \"tls $ssl_protocol $ssl_server_name\\n\"; }}\n\
             }}\n\
             server {{\n\
             \x20   listen 127.0.0.1:{mtls} ssl;\n\
             \x20   ssl_certificate {cert};\n\
             \x20   ssl_certificate_key {key};\n\
             \x20   ssl_client_certificate {ca};\n\
             \x20   ssl_verify_client on;\n\
             \x20   location / {{ return 200 \"client $ssl_client_s_dn\\n\"; }}\n\
             }}\n"
        );
        let nginx = Proxy::nginx(tls, &site).await;
        Self {
            tls,
            mtls,
            _nginx: nginx,
        }
    }
}

#[tokio::test]
async fn an_https_upstream_trusted_through_root_cas_answers_and_resumes_tls_sessions() {
    let pki = Pki::new();
    let nginx = TlsNginx::start(&pki).await;
    let dir = TempDir::new();
    // Relative to the configuration file's folder.
    dir.write("certs/ca.pem", &pki.ca_pem);
    let url = format!("https://127.0.0.1:{}", nginx.tls);
    let by_name = format!("https://localhost:{}", nginx.tls);
    let ccgate = gateway(
        &dir,
        &[
            ("ok", &url, "{ rootCAs: [certs/ca.pem] }"),
            ("fresh", &url, "{ rootCAs: [certs/ca.pem] }"),
            ("named", &by_name, "{ rootCAs: [certs/ca.pem] }"),
        ],
    )
    .await;
    for _ in 0..3 {
        let (status, body) = get(&ccgate, "/ok").await;
        assert_eq!(
            (status, body.as_str()),
            (200, "tls TLSv1.3 \n"),
            "{}",
            ccgate.stderr()
        );
    }
    // SNI from the URL's host (none is sent for an IP address).
    let (status, body) = get(&ccgate, "/named").await;
    assert_eq!((status, body.as_str()), (200, "tls TLSv1.3 localhost\n"));
    // nginx closes each connection of /fresh: the next handshake resumes
    // the session kept in the transport's ClientConfig.
    let (status, body) = get(&ccgate, "/fresh").await;
    assert_eq!((status, body.as_str()), (200, "reused=.\n"));
    let (status, body) = get(&ccgate, "/fresh").await;
    assert_eq!((status, body.as_str()), (200, "reused=r\n"));
}

#[tokio::test]
async fn an_untrusted_certificate_or_a_wrong_server_name_is_502_with_the_detail_only_in_the_log() {
    let pki = Pki::new();
    let other = Pki::new();
    let nginx = TlsNginx::start(&pki).await;
    let dir = TempDir::new();
    dir.write("ca.pem", &pki.ca_pem);
    dir.write("other-ca.pem", &other.ca_pem);
    let url = format!("https://127.0.0.1:{}", nginx.tls);
    let ccgate = gateway(
        &dir,
        &[
            ("untrusted", &url, "{ rootCAs: [other-ca.pem] }"),
            ("system", &url, "{}"),
            (
                "misnamed",
                &url,
                "{ rootCAs: [ca.pem], serverName: api.example.com }",
            ),
        ],
    )
    .await;
    for path in ["/untrusted", "/system", "/misnamed"] {
        let (status, body) = get(&ccgate, path).await;
        assert_eq!(status, 502, "{path}: {body}");
        assert_eq!(
            body, "bad gateway: the upstream server is unreachable\n",
            "{path}"
        );
    }
    ccgate
        .until_logged("service=misnamed server=127.0.0.1")
        .await;
    let log = ccgate.stderr();
    for (service, detail) in [
        ("untrusted", "TLS: invalid peer certificate: BadSignature"),
        ("system", "TLS: invalid peer certificate: UnknownIssuer"),
        (
            "misnamed",
            "TLS: invalid peer certificate: certificate not valid for name \"api.example.com\"",
        ),
    ] {
        let line = log
            .lines()
            .find(|line| line.contains(&format!("service={service} ")))
            .unwrap_or_else(|| panic!("no log line for {service}:\n{log}"));
        assert!(line.contains("WARN") && line.contains(detail), "{line}");
    }
}

#[tokio::test]
async fn a_client_certificate_is_sent_to_a_server_that_requires_one() {
    let pki = Pki::new();
    let nginx = TlsNginx::start(&pki).await;
    let dir = TempDir::new();
    dir.write("ca.pem", &pki.ca_pem);
    dir.write("client.pem", &pki.client_cert_pem);
    // The key as PEM text in the file, the certificate as a file.
    let key = pki.client_key_pem.replace('\n', "\\n");
    let url = format!("https://127.0.0.1:{}", nginx.mtls);
    let with = format!(
        "{{ rootCAs: [ca.pem], certificates: [{{ certFile: client.pem, keyFile: \"{key}\" }}] }}"
    );
    let ccgate = gateway(
        &dir,
        &[
            ("with", &url, &with),
            ("without", &url, "{ rootCAs: [ca.pem] }"),
        ],
    )
    .await;
    let (status, body) = get(&ccgate, "/with").await;
    assert_eq!(
        (status, body.as_str()),
        (200, "client CN=ccgate-test-client\n"),
        "{}",
        ccgate.stderr()
    );
    // Without one, the handshake completes and nginx answers 400 itself
    // ("No required SSL certificate was sent"), which ccgate passes on as
    // any answer of the server.
    let (status, body) = get(&ccgate, "/without").await;
    assert_eq!(status, 400, "{body}");
    assert!(
        body.contains("No required SSL certificate was sent"),
        "{body}"
    );
}

#[tokio::test]
async fn insecure_skip_verify_accepts_any_certificate_and_warns() {
    let pki = Pki::new();
    let nginx = TlsNginx::start(&pki).await;
    let dir = TempDir::new();
    let url = format!("https://127.0.0.1:{}", nginx.tls);
    let ccgate = gateway(&dir, &[("lax", &url, "{ insecureSkipVerify: true }")]).await;
    ccgate
        .until_logged("insecureSkipVerify is on: the certificates of https servers using this servers transport are NOT verified")
        .await;
    let (status, body) = get(&ccgate, "/lax").await;
    assert_eq!((status, body.as_str()), (200, "tls TLSv1.3 \n"));
}

const CHECKED: &str = r#"
entryPoints:
  web: { address: "127.0.0.1:8080" }
http:
  routers:
    api: { rule: "PathPrefix(`/`)", service: backend }
  services:
    backend:
      loadBalancer:
        servers: [{ url: "https://backend.internal:8443" }]
        serversTransport: mtls
  serversTransports:
    mtls:
      serverName: backend.internal
      rootCAs: [pki/ca.pem]
      certificates: [{ certFile: pki/client.pem, keyFile: pki/client-key.pem }]
      maxIdleConnsPerHost: 50
      forwardingTimeouts: { dialTimeout: 5s, responseHeaderTimeout: 0, idleConnTimeout: 1m }
    lax: { insecureSkipVerify: true }
"#;

#[test]
fn check_summarises_servers_transports_without_key_contents_and_warns_about_insecure_ones() {
    let pki = Pki::new();
    let dir = ConfigDir::new(&[
        ("ccgate.yaml", CHECKED),
        ("pki/ca.pem", &pki.ca_pem),
        ("pki/client.pem", &pki.client_cert_pem),
        ("pki/client-key.pem", &pki.client_key_pem),
    ]);
    let checked = dir.check(&["-c", "ccgate.yaml"]);
    assert_eq!(checked.code, Some(0), "{checked:#?}");
    assert_contains(
        &checked.stdout,
        &[
            "serversTransport: mtls",
            "servers transports:\n  lax\n    insecureSkipVerify: true",
            "  mtls\n    serverName: backend.internal\n    rootCAs: pki/ca.pem (added to the system's roots)\n    certificates: certFile pki/client.pem, keyFile pki/client-key.pem\n    maxIdleConnsPerHost: 50\n    forwardingTimeouts.dialTimeout: 5s\n    forwardingTimeouts.responseHeaderTimeout: 0 (no limit)\n    forwardingTimeouts.idleConnTimeout: 60s\n",
        ],
    );
    assert!(
        !checked.stdout.contains("PRIVATE KEY"),
        "{}",
        checked.stdout
    );
    assert_contains(
        &checked.stderr,
        &[
            "WARN",
            "http.serversTransports.lax",
            "insecureSkipVerify is on",
        ],
    );
    assert_eq!(checked.stderr.lines().count(), 1, "{}", checked.stderr);
}

#[test]
fn check_reports_an_unknown_servers_transport_and_unusable_pem_files() {
    let pki = Pki::new();
    for (change, expected) in [
        (
            ("serversTransport: mtls", "serversTransport: mTLS-typo"),
            "ccgate.yaml: http.services.backend.loadBalancer.serversTransport: no serversTransport named \"mTLS-typo\" (known: lax, mtls)",
        ),
        (
            ("pki/ca.pem]", "pki/missing.pem]"),
            "ccgate.yaml: http.serversTransports.mtls.rootCAs[0]: cannot read pki/missing.pem",
        ),
        (
            ("pki/ca.pem]", "pki/client-key.pem]"),
            "ccgate.yaml: http.serversTransports.mtls.rootCAs[0]: no `-----BEGIN CERTIFICATE-----` block in pki/client-key.pem",
        ),
        (
            ("keyFile: pki/client-key.pem", "keyFile: pki/ca.pem"),
            "ccgate.yaml: http.serversTransports.mtls.certificates[0].keyFile: no private key",
        ),
    ] {
        let dir = ConfigDir::new(&[
            ("ccgate.yaml", &CHECKED.replace(change.0, change.1)),
            ("pki/ca.pem", &pki.ca_pem),
            ("pki/client.pem", &pki.client_cert_pem),
            ("pki/client-key.pem", &pki.client_key_pem),
        ]);
        let error = dir.invalid();
        assert!(
            error.starts_with(expected),
            "{error}\n  expected: {expected}"
        );
        // No PEM content quoted (base64 of DER starts with `MII`).
        assert!(!error.contains("MII"), "{error}");
    }
}

/// `CHECKED` with a transport `vault` whose client certificate and key
/// come from a Kubernetes Secret (`tlsKey` holds `key`).
fn with_secret_key(key: &str, cert: &str) -> String {
    let indent = |pem: &str| {
        pem.lines()
            .map(|l| format!("    {l}\n"))
            .collect::<String>()
    };
    format!(
        "{CHECKED}    vault:\n      certificates: [{{ certFile: \"urn:k8s:secret:gateway-tls:tlsCert\", keyFile: \"urn:k8s:secret:gateway-tls:tlsKey\" }}]\n---\napiVersion: v1\nkind: Secret\nmetadata: {{ name: gateway-tls }}\nstringData:\n  tlsCert: |\n{}  tlsKey: |\n{}",
        indent(cert),
        indent(key)
    )
}

#[test]
fn client_certificates_may_come_from_secret_urns_which_check_shows_and_never_their_value() {
    let pki = Pki::new();
    let files = |main: &str| {
        ConfigDir::new(&[
            ("ccgate.yaml", main),
            ("pki/ca.pem", &pki.ca_pem),
            ("pki/client.pem", &pki.client_cert_pem),
            ("pki/client-key.pem", &pki.client_key_pem),
        ])
    };
    let dir = files(&with_secret_key(&pki.client_key_pem, &pki.client_cert_pem));
    let checked = dir.check(&["-c", "ccgate.yaml"]);
    assert_eq!(checked.code, Some(0), "{checked:#?}");
    assert_contains(
        &checked.stdout,
        &[
            "  vault\n    certificates: certFile urn:k8s:secret:gateway-tls:tlsCert, keyFile <redacted> (from urn:k8s:secret:gateway-tls:tlsKey)\n",
        ],
    );
    assert!(
        !checked.stdout.contains("PRIVATE KEY"),
        "{}",
        checked.stdout
    );
    // A Secret's value that is no PEM is refused without being shown.
    let dir = files(&with_secret_key(
        "not-a-pem-secret-value",
        &pki.client_cert_pem,
    ));
    let error = dir.invalid();
    assert_eq!(
        error,
        "ccgate.yaml (document at line 2): http.serversTransports.vault.certificates[0].keyFile: the value of urn:k8s:secret:gateway-tls:tlsKey is not PEM text (the value is not shown)"
    );
}
