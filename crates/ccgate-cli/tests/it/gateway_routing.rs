//! Routers, services and protocols, without a middleware.

use rustls_pki_types::CertificateDer;
use rustls_pki_types::pem::PemObject;

use crate::support::echo::Echo;
use crate::support::free_port;
use crate::support::gateway::{Ccgate, TempDir};
use crate::support::tls::Pki;

fn client() -> reqwest::Client {
    reqwest::Client::builder().no_proxy().build().unwrap()
}

async fn get(client: &reqwest::Client, url: &str, host: Option<&str>) -> (u16, serde_json::Value) {
    let mut request = client.get(url);
    if let Some(host) = host {
        request = request.header("host", host);
    }
    let response = request.send().await.expect("ccgate answers");
    let status = response.status().as_u16();
    let text = response.text().await.unwrap();
    (
        status,
        serde_json::from_str(&text).unwrap_or(serde_json::Value::String(text)),
    )
}

#[tokio::test]
async fn rules_priority_entry_points_and_round_robin() {
    let (a, b, other) = (
        Echo::start().await,
        Echo::start().await,
        Echo::start().await,
    );
    let (web, admin) = (free_port(), free_port());
    let dir = TempDir::new();
    let config = format!(
        r#"
entryPoints:
  web: {{ address: "127.0.0.1:{web}" }}
  admin: {{ address: "127.0.0.1:{admin}" }}
http:
  routers:
    api:
      entryPoints: [web]
      rule: "Host(`api.example.com`) && PathPrefix(`/v1`)"
      service: pair
    catch-v1:
      entryPoints: [web]
      rule: "PathPrefix(`/v1`)"
      service: other
    pinned:
      entryPoints: [web]
      rule: "Path(`/low`) || PathPrefix(`/v1/special`)"
      priority: 1000
      service: other
    admin-only:
      entryPoints: [admin]
      rule: "Method(`GET`) && Header(`X-Admin`, `yes`)"
      service: other
  services:
    pair:
      loadBalancer:
        servers: [{{ url: "{a}" }}, {{ url: "{b}" }}]
    other:
      loadBalancer:
        passHostHeader: false
        servers: [{{ url: "{o}" }}]
"#,
        a = a.url,
        b = b.url,
        o = other.url
    );
    let path = dir.write("ccgate.yaml", &config);
    let ccgate = Ccgate::start(&path, &[("web", web), ("admin", admin)]).await;
    let client = client();
    let web_url = ccgate.url("web");

    // The longer rule wins by default; round robin over two servers.
    for _ in 0..4 {
        let (status, seen) =
            get(&client, &format!("{web_url}/v1/x"), Some("api.example.com")).await;
        assert_eq!(status, 200);
        assert_eq!(
            seen["headers"]["host"][0], "api.example.com",
            "passHostHeader defaults to true"
        );
    }
    assert_eq!((a.hits(), b.hits()), (2, 2));

    // Another host falls to the shorter rule; the Host header is the server's.
    let (_, seen) = get(
        &client,
        &format!("{web_url}/v1/x"),
        Some("other.example.com"),
    )
    .await;
    assert_eq!(
        seen["headers"]["host"][0],
        other.url.trim_start_matches("http://")
    );
    // An explicit priority beats a longer rule.
    get(
        &client,
        &format!("{web_url}/v1/special"),
        Some("api.example.com"),
    )
    .await;
    assert_eq!((a.hits() + b.hits(), other.hits()), (4, 2));

    // entryPoints filter, and 404 when nothing matches.
    assert_eq!(
        get(&client, &format!("{web_url}/nothing"), None).await.0,
        404
    );
    let admin_url = ccgate.url("admin");
    assert_eq!(
        get(
            &client,
            &format!("{admin_url}/v1/x"),
            Some("api.example.com")
        )
        .await
        .0,
        404
    );
    let response = client
        .get(format!("{admin_url}/anything"))
        .header("x-admin", "yes")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
}

#[tokio::test]
async fn http2_cleartext_and_tls_with_alpn() {
    let echo = Echo::start().await;
    let pki = Pki::new();
    let (web, secure) = (free_port(), free_port());
    let dir = TempDir::new();
    let config = format!(
        r#"
entryPoints:
  web: {{ address: "127.0.0.1:{web}" }}
  secure:
    address: "127.0.0.1:{secure}"
    tls: {{ certFile: "{cert}", keyFile: "{key}" }}
http:
  routers:
    all: {{ rule: "PathPrefix(`/`)", service: echo }}
  services:
    echo: {{ loadBalancer: {{ servers: [{{ url: "{upstream}" }}] }} }}
"#,
        cert = pki.server_cert_file().display(),
        key = pki.server_key_file().display(),
        upstream = echo.url
    );
    let path = dir.write("ccgate.yaml", &config);
    let ccgate = Ccgate::start(&path, &[("web", web), ("secure", secure)]).await;

    let h2c = reqwest::Client::builder()
        .no_proxy()
        .http2_prior_knowledge()
        .build()
        .unwrap();
    let response = h2c
        .get(format!("{}/h2c", ccgate.url("web")))
        .send()
        .await
        .unwrap();
    assert_eq!(
        (response.status().as_u16(), response.version()),
        (200, reqwest::Version::HTTP_2)
    );

    let ca = CertificateDer::from_pem_slice(pki.ca_pem.as_bytes()).unwrap();
    let mut roots = rustls::RootCertStore::empty();
    roots.add(ca).unwrap();
    let mut tls = rustls::ClientConfig::builder_with_provider(crate::support::crypto_provider())
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    tls.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    let https = reqwest::Client::builder()
        .no_proxy()
        .tls_backend_preconfigured(tls)
        .build()
        .unwrap();
    let response = https
        .get(format!("https://localhost:{secure}/tls"))
        .send()
        .await
        .unwrap();
    assert_eq!(
        (response.status().as_u16(), response.version()),
        (200, reqwest::Version::HTTP_2)
    );
    let seen: serde_json::Value = response.json().await.unwrap();
    assert_eq!(seen["headers"]["x-forwarded-proto"][0], "https");
    assert_eq!(echo.hits(), 2);
}

#[tokio::test]
async fn request_bodies_stream_to_the_upstream() {
    let echo = Echo::start().await;
    let web = free_port();
    let dir = TempDir::new();
    let config = format!(
        "entryPoints:\n  web: {{ address: \"127.0.0.1:{web}\" }}\nhttp:\n  routers:\n    all: {{ rule: \"PathPrefix(`/`)\", service: echo }}\n  services:\n    echo: {{ loadBalancer: {{ servers: [{{ url: \"{}\" }}] }} }}\n",
        echo.url
    );
    let ccgate = Ccgate::start(&dir.write("ccgate.yaml", &config), &[("web", web)]).await;
    let body = vec![b'x'; 8 * 1024 * 1024];
    let response = client()
        .post(format!("{}/upload", ccgate.url("web")))
        .body(body)
        .send()
        .await
        .unwrap();
    let seen: serde_json::Value = response.json().await.unwrap();
    assert_eq!(seen["body_size"], 8 * 1024 * 1024);
}
