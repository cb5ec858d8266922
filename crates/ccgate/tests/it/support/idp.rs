//! The real test authorization server (`testing/idp/server.js`, see its
//! README) as a child process, one per test.
//!
//! The server exits when its stdin reaches EOF, so the handle keeps the
//! write end open; dropping an [`Idp`] closes it and kills the process.
//! Its stderr is drained into a buffer shown when start-up fails.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::Deserialize;
use tokio::io::{AsyncBufReadExt, AsyncRead, BufReader};
use tokio::process::{Child, ChildStdin, Command};

use super::tls::Pki;

/// How long the IdP may take to print its address: ~0.4 s on an idle
/// machine, much more when the two cores are busy compiling.
const START_TIMEOUT: Duration = Duration::from_secs(30);

/// A running test IdP.
pub(crate) struct Idp {
    token_endpoint: String,
    introspection_endpoint: String,
    jwks_uri: String,
    issuer: String,
    port: u16,
    bench_clients: Option<u32>,
    http: reqwest::Client,
    /// `None` while stopped ([`Idp::stop`]).
    process: Option<(Child, ChildStdin)>,
}

/// Options of [`Idp::start_with`].
#[derive(Default)]
#[must_use]
pub(crate) struct IdpOptions<'a> {
    ttl: Option<u32>,
    tls: Option<&'a Pki>,
    client_ca: bool,
    bench_clients: Option<u32>,
    port: Option<u16>,
}

impl<'a> IdpOptions<'a> {
    /// `--ttl SECONDS`: the access token lifetime.
    pub(crate) fn ttl(mut self, seconds: u32) -> Self {
        self.ttl = Some(seconds);
        self
    }

    /// HTTPS with the server certificate of `pki`.
    pub(crate) fn tls(mut self, pki: &'a Pki) -> Self {
        self.tls = Some(pki);
        self
    }

    /// `--bench-clients N`: also `bench-client-1..N` with secrets
    /// `bench-secret-1..N`.
    pub(crate) fn bench_clients(mut self, count: u32) -> Self {
        self.bench_clients = Some(count);
        self
    }

    /// With [`tls`](Self::tls): require a client certificate of the same CA.
    pub(crate) fn require_client_cert(mut self) -> Self {
        self.client_ca = true;
        self
    }
}

/// Counters of `GET /__test/stats` (the fields the tests use).
#[derive(Debug, Deserialize)]
pub(crate) struct Stats {
    /// Token requests arrived (counted before any delay).
    pub(crate) received: u64,
    /// Introspection requests arrived.
    pub(crate) introspections: u64,
    /// JWKS requests arrived.
    pub(crate) jwks: u64,
    /// Token requests answered.
    pub(crate) total: u64,
    /// Of which HTTP 200.
    pub(crate) success: u64,
    /// Of which answered by `/__test/fail`.
    pub(crate) injected: u64,
    /// Most token requests held at once since the last reset.
    pub(crate) max_in_flight: u64,
    /// Per client id.
    pub(crate) by_client: HashMap<String, ClientStats>,
    /// Per HTTP status.
    pub(crate) by_status: HashMap<String, u64>,
    /// The last token requests as the server received them, oldest first.
    pub(crate) requests: Vec<Recorded>,
}

/// One token request as the IdP received it (`requests` of the stats).
#[derive(Debug, Deserialize)]
pub(crate) struct Recorded {
    /// The form parameters: a string, or a list when one was sent more
    /// than once. `client_secret` shows as `<redacted>`;
    /// `client_assertion` is left out (see `assertion`).
    pub(crate) params: serde_json::Map<String, serde_json::Value>,
    /// The decoded `client_assertion`, if one was sent.
    pub(crate) assertion: Option<Assertion>,
}

/// The JOSE header and claims of a client assertion, as received.
#[derive(Debug, Deserialize)]
pub(crate) struct Assertion {
    pub(crate) header: serde_json::Value,
    pub(crate) claims: serde_json::Value,
}

/// Counters of one client id.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Deserialize)]
pub(crate) struct ClientStats {
    /// Token requests.
    pub(crate) total: u64,
    /// Of which HTTP 200.
    pub(crate) success: u64,
}

impl Stats {
    /// The counters of `client_id` (zero if it sent nothing).
    pub(crate) fn client(&self, client_id: &str) -> ClientStats {
        self.by_client.get(client_id).copied().unwrap_or_default()
    }

    /// How many answers had `status`.
    pub(crate) fn status(&self, status: u16) -> u64 {
        self.by_status
            .get(&status.to_string())
            .copied()
            .unwrap_or(0)
    }
}

#[derive(Deserialize)]
struct Ready {
    issuer: String,
    token_endpoint: String,
    introspection_endpoint: String,
    jwks_uri: String,
    port: u16,
}

impl Idp {
    /// Starts the IdP over plain HTTP with default options.
    pub(crate) async fn start() -> Self {
        Self::start_with(IdpOptions::default()).await
    }

    /// Starts the IdP with `options`. A start that does not print its
    /// address within [`START_TIMEOUT`] is tried once more (seen only on a
    /// machine overloaded by parallel builds), then fails with its stderr.
    pub(crate) async fn start_with(options: IdpOptions<'_>) -> Self {
        let mut failures = Vec::new();
        for _ in 0..2 {
            match launch(&options).await {
                Ok((child, stdin, ready)) => {
                    let http = control_client(options.tls, options.client_ca);
                    return Self {
                        token_endpoint: ready.token_endpoint,
                        introspection_endpoint: ready.introspection_endpoint,
                        jwks_uri: ready.jwks_uri,
                        issuer: ready.issuer,
                        port: ready.port,
                        bench_clients: options.bench_clients,
                        http,
                        process: Some((child, stdin)),
                    };
                }
                Err(failure) => failures.push(failure),
            }
        }
        panic!("test IdP did not start:\n{}", failures.join("\n---\n"));
    }

    /// The token endpoint URL.
    pub(crate) fn token_endpoint(&self) -> &str {
        &self.token_endpoint
    }

    /// The introspection endpoint URL (RFC 7662).
    pub(crate) fn introspection_endpoint(&self) -> &str {
        &self.introspection_endpoint
    }

    /// The JWKS URL (its `jwks_uri`).
    pub(crate) fn jwks_uri(&self) -> &str {
        &self.jwks_uri
    }

    /// The issuer (`iss` of its tokens).
    pub(crate) fn issuer(&self) -> &str {
        &self.issuer
    }

    /// Kills the server process and waits for it to exit: its port is
    /// closed (connections are refused) until [`Idp::restart`].
    pub(crate) async fn stop(&mut self) {
        if let Some((mut child, stdin)) = self.process.take() {
            drop(stdin);
            let _ = child.kill().await;
        }
    }

    /// Starts the server again on the same port, after [`Idp::stop`]
    /// (plain HTTP, the same `--bench-clients`; new signing keys, fresh
    /// counters).
    pub(crate) async fn restart(&mut self) {
        assert!(self.process.is_none(), "stop the IdP first");
        let options = IdpOptions {
            port: Some(self.port),
            bench_clients: self.bench_clients,
            ..IdpOptions::default()
        };
        let (child, stdin, ready) = launch(&options)
            .await
            .unwrap_or_else(|failure| panic!("test IdP did not restart: {failure}"));
        assert_eq!(ready.token_endpoint, self.token_endpoint, "same port");
        self.process = Some((child, stdin));
    }

    /// The counters.
    pub(crate) async fn stats(&self) -> Stats {
        self.control(reqwest::Method::GET, "stats").await
    }

    /// Zeroes the counters.
    pub(crate) async fn reset(&self) {
        let _: serde_json::Value = self.control(reqwest::Method::POST, "reset").await;
    }

    /// Delays every later token request by `ms` milliseconds (0 = off).
    pub(crate) async fn delay(&self, ms: u64) {
        let _: serde_json::Value = self
            .control(reqwest::Method::POST, &format!("delay?ms={ms}"))
            .await;
    }

    /// Answers the next `count` token requests with `status`, adding
    /// `Retry-After: 0` so that retries do not wait.
    pub(crate) async fn fail(&self, status: u16, count: u32) {
        let _: serde_json::Value = self
            .control(
                reqwest::Method::POST,
                &format!("fail?status={status}&count={count}&retry_after=0"),
            )
            .await;
    }

    async fn control<T: for<'de> Deserialize<'de>>(
        &self,
        method: reqwest::Method,
        path: &str,
    ) -> T {
        let url = format!("{}/__test/{path}", self.issuer);
        let response = self
            .http
            .request(method, &url)
            .send()
            .await
            .unwrap_or_else(|e| panic!("{url}: {e}"));
        assert!(
            response.status().is_success(),
            "{url}: {}",
            response.status()
        );
        response
            .json()
            .await
            .unwrap_or_else(|e| panic!("{url}: {e}"))
    }
}

/// Spawns the IdP and waits for its address line.
async fn launch(options: &IdpOptions<'_>) -> Result<(Child, ChildStdin, Ready), String> {
    let dir = idp_dir();
    let mut command = Command::new("node");
    command.arg(dir.join("server.js"));
    if let Some(ttl) = options.ttl {
        command.arg("--ttl").arg(ttl.to_string());
    }
    if let Some(count) = options.bench_clients {
        command.arg("--bench-clients").arg(count.to_string());
    }
    if let Some(port) = options.port {
        command.arg("--port").arg(port.to_string());
    }
    if let Some(pki) = options.tls {
        command
            .arg("--tls-cert")
            .arg(pki.server_cert_file())
            .arg("--tls-key")
            .arg(pki.server_key_file());
        if options.client_ca {
            command.arg("--client-ca").arg(pki.ca_file());
        }
    }
    command
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    let mut child = command.spawn().unwrap_or_else(|e| {
        panic!(
            "cannot run `node` for the test IdP ({e}): install Node.js 20.19+ or run scripts/test"
        )
    });
    let stdin = child.stdin.take().expect("piped stdin");
    let stderr = Arc::new(Mutex::new(String::new()));
    drain(
        child.stderr.take().expect("piped stderr"),
        Some(Arc::clone(&stderr)),
    );
    let mut stdout = BufReader::new(child.stdout.take().expect("piped stdout"));
    let mut line = String::new();
    let read = tokio::time::timeout(START_TIMEOUT, stdout.read_line(&mut line)).await;
    match read {
        Ok(Ok(n)) if n > 0 => {
            let ready = serde_json::from_str(&line)
                .unwrap_or_else(|e| panic!("test IdP printed {line:?}, not its address: {e}"));
            drain(stdout.into_inner(), None);
            Ok((child, stdin, ready))
        }
        outcome => Err(format!(
            "{outcome:?}; its stderr:\n{}",
            stderr.lock().expect("stderr buffer")
        )),
    }
}

/// The PEM text of a committed test-only key, `testing/idp/keys/NAME`.
pub(crate) fn test_key(name: &str) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../testing/idp/keys")
        .join(name);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// `testing/idp`, with its `node_modules` installed.
fn idp_dir() -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../testing/idp");
    assert!(
        dir.join("node_modules").is_dir(),
        "{} has no node_modules: run scripts/test (it runs npm ci in testing/idp)",
        dir.display()
    );
    dir
}

/// Reads `stream` to its end so the child never blocks on a full pipe,
/// keeping the last few KiB in `keep`.
fn drain(stream: impl AsyncRead + Unpin + Send + 'static, keep: Option<Arc<Mutex<String>>>) {
    tokio::spawn(async move {
        let mut lines = BufReader::new(stream).lines();
        while let Ok(Some(line)) = lines.next_line().await {
            if let Some(keep) = &keep {
                let mut kept = keep.lock().expect("stderr buffer");
                if kept.len() > 16 * 1024 {
                    kept.clear();
                }
                kept.push_str(&line);
                kept.push('\n');
            }
        }
    });
}

/// An HTTP client for the `/__test/` API, trusting only the test CA and
/// presenting the test client certificate when mTLS is on.
fn control_client(tls: Option<&Pki>, client_cert: bool) -> reqwest::Client {
    use rustls_pki_types::pem::PemObject;
    use rustls_pki_types::{CertificateDer, PrivateKeyDer};

    let mut roots = rustls::RootCertStore::empty();
    if let Some(pki) = tls {
        let ca = CertificateDer::from_pem_slice(pki.ca_pem.as_bytes()).expect("test CA");
        roots.add(ca).expect("test CA is a trust anchor");
    }
    let builder = rustls::ClientConfig::builder_with_provider(super::crypto_provider())
        .with_safe_default_protocol_versions()
        .expect("protocol versions")
        .with_root_certificates(roots);
    let config = match tls {
        Some(pki) if client_cert => {
            let chain = CertificateDer::pem_slice_iter(pki.client_cert_pem.as_bytes())
                .collect::<Result<Vec<_>, _>>()
                .expect("client certificate");
            let key =
                PrivateKeyDer::from_pem_slice(pki.client_key_pem.as_bytes()).expect("client key");
            builder
                .with_client_auth_cert(chain, key)
                .expect("client identity")
        }
        _ => builder.with_no_client_auth(),
    };
    reqwest::Client::builder()
        .tls_backend_preconfigured(config)
        .no_proxy()
        .timeout(Duration::from_secs(30))
        .build()
        .expect("control client")
}
