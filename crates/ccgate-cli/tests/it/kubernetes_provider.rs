//! The Kubernetes provider (SPEC §12) end to end, against the FAKE API
//! server of `support::fake_kube` (no API server installs here): the
//! fake is first checked against the real `kubectl`, then `ccgate serve`
//! watches it, with tokens from the real test IdP and the real echo
//! upstream.

use std::process::Stdio;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::support::echo::Echo;
use crate::support::fake_kube::{FakeKube, Resource, TRAEFIK_CONTAINO_US, TRAEFIK_IO};
use crate::support::free_port;
use crate::support::gateway::{Ccgate, TempDir, collect};
use crate::support::idp::Idp;
use crate::support::tls::Pki;

/// The fake's bearer token: never in ccgate's output.
const TOKEN: &str = "fake-kube-token-hunter2";
/// The IdP client secrets the Secrets hold: never in ccgate's output.
const SECRETS: [&str; 2] = ["basic-secret", "tester-secret"];

/// A temporary kubeconfig naming the fake (HTTPS, trusting `pki`'s CA),
/// with `token`.
fn kubeconfig(dir: &TempDir, fake: &FakeKube, pki: &Pki, token: &str) -> std::path::PathBuf {
    dir.write(
        &format!("kubeconfig-{token}"),
        &format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: fake\n  cluster: {{server: \"{}\", certificate-authority: \"{}\"}}\n\
             users:\n- name: u\n  user: {{token: \"{token}\"}}\ncontexts:\n- name: c\n  context: {{cluster: fake, user: u}}\n\
             current-context: c\n",
            fake.url(),
            pki.ca_file().display()
        ),
    )
}

/// Runs kubectl (without blocking the runtime the fake runs on).
async fn kubectl(config: &std::path::Path, args: &[&str]) -> std::process::Output {
    let cache = config.with_file_name("kube-cache");
    let run = tokio::process::Command::new("kubectl")
        .env("KUBECONFIG", config)
        .arg(format!("--cache-dir={}", cache.display()))
        .args(args)
        .kill_on_drop(true)
        .output();
    tokio::time::timeout(Duration::from_secs(30), run)
        .await
        .expect("kubectl answers in time")
        .expect("kubectl runs (it is installed by scripts/install-test-deps)")
}

fn names(list: &Value) -> Vec<&str> {
    list["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|item| item["metadata"]["name"].as_str().expect("name"))
        .collect()
}

fn spec(idp: &str, extra: Value) -> Value {
    let Value::Object(extra) = extra else {
        panic!("extra options are a mapping")
    };
    let mut options = json!({
        "url": idp,
        "audience": "api",
        "clientID": "urn:k8s:secret:creds:id",
        "clientSecret": "urn:k8s:secret:creds:secret",
        "forwardHeaders": {"X-Grp": "grp"},
    });
    for (key, value) in extra {
        options[key] = value;
    }
    json!({"plugin": {"oAuthClientCredentials": options}})
}

#[tokio::test]
async fn the_fake_api_server_answers_kubectl() {
    let pki = Pki::new();
    let fake = FakeKube::start_tls(TOKEN, &[TRAEFIK_IO, TRAEFIK_CONTAINO_US], &pki).await;
    fake.apply_middleware(
        TRAEFIK_IO,
        "apps",
        "cc",
        json!({"team": "a"}),
        json!({"plugin": {}}),
    );
    fake.apply_middleware(
        TRAEFIK_IO,
        "other",
        "elsewhere",
        json!({}),
        json!({"plugin": {}}),
    );
    fake.apply_middleware(
        TRAEFIK_CONTAINO_US,
        "apps",
        "old",
        json!({}),
        json!({"plugin": {}}),
    );
    fake.apply_secret("apps", "creds", json!({"id": "basic-client"}));
    let dir = TempDir::new();
    let config = kubeconfig(&dir, &fake, &pki, TOKEN);

    let out = kubectl(
        &config,
        &["get", "middlewares.traefik.io", "-n", "apps", "-o", "json"],
    )
    .await;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let list: Value = serde_json::from_slice(&out.stdout).expect("JSON");
    assert_eq!(names(&list), ["cc"]);
    assert_eq!(list["items"][0]["metadata"]["labels"]["team"], "a");

    let out = kubectl(
        &config,
        &["get", "middlewares.traefik.containo.us", "-A", "-o", "json"],
    )
    .await;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        names(&serde_json::from_slice(&out.stdout).unwrap()),
        ["old"]
    );

    let out = kubectl(
        &config,
        &[
            "get",
            "middlewares.traefik.io",
            "-A",
            "-l",
            "team=a",
            "-o",
            "json",
        ],
    )
    .await;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(names(&serde_json::from_slice(&out.stdout).unwrap()), ["cc"]);

    let out = kubectl(
        &config,
        &["get", "secret", "creds", "-n", "apps", "-o", "json"],
    )
    .await;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let secret: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        secret["data"]["id"], "YmFzaWMtY2xpZW50",
        "base64 of basic-client"
    );

    // Bearer-token authentication.
    let wrong = kubeconfig(&dir, &fake, &pki, "wrong-token");
    let out = kubectl(&wrong, &["get", "secrets", "-n", "apps"]).await;
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("Unauthorized"), "{stderr}");

    // A watch sees an object added after it started.
    let mut watch = tokio::process::Command::new("kubectl")
        .env("KUBECONFIG", &config)
        .arg(format!(
            "--cache-dir={}",
            dir.path().join("kube-cache").display()
        ))
        .args([
            "get",
            "middlewares.traefik.io",
            "-n",
            "apps",
            "--watch",
            "-o",
            "name",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("kubectl runs");
    let stdout = collect(watch.stdout.take().unwrap());
    let stderr = collect(watch.stderr.take().unwrap());
    let seen = |text: &str| stdout.lock().unwrap().contains(text);
    until(
        "kubectl lists",
        || seen("middleware.traefik.io/cc"),
        || stderr.lock().unwrap().clone(),
    )
    .await;
    fake.apply_middleware(
        TRAEFIK_IO,
        "apps",
        "added",
        json!({}),
        json!({"plugin": {}}),
    );
    until(
        "kubectl sees the added object",
        || seen("middleware.traefik.io/added"),
        || stderr.lock().unwrap().clone(),
    )
    .await;
    watch.kill().await.unwrap();
    assert!(
        fake.requests().iter().any(|r| r
            .contains("/apis/traefik.io/v1alpha1/namespaces/apps/middlewares?")
            && r.contains("watch=true")),
        "{:?}",
        fake.requests()
    );
}

/// Polls `done` for at most 10 s.
async fn until(what: &str, done: impl Fn() -> bool, context: impl Fn() -> String) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !done() {
        assert!(
            Instant::now() < deadline,
            "{what}: not in time\n{}",
            context()
        );
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

/// ccgate watching a fake cluster.
struct Cluster {
    idp: Idp,
    fake: FakeKube,
    ccgate: Ccgate,
    client: reqwest::Client,
    _echo: Echo,
    _dir: TempDir,
    _pki: Option<Pki>,
}

impl Cluster {
    /// The fake with `groups` (and `setup` applied before ccgate starts),
    /// ccgate with `provider` (YAML lines under `kubernetesCRD:`, besides
    /// the endpoint, token and forward-auth entry point).
    async fn start(groups: &[&str], provider: &str, setup: impl FnOnce(&FakeKube, &str)) -> Self {
        Self::start_with(groups, provider, None, TOKEN, setup).await
    }

    /// As [`Cluster::start`]; with `pki` the fake serves HTTPS and ccgate
    /// trusts its CA through `certAuthFilePath`; ccgate sends `token`.
    async fn start_with(
        groups: &[&str],
        provider: &str,
        pki: Option<Pki>,
        token: &str,
        setup: impl FnOnce(&FakeKube, &str),
    ) -> Self {
        let idp = Idp::start().await;
        let echo = Echo::start().await;
        let fake = match &pki {
            Some(pki) => FakeKube::start_tls(TOKEN, groups, pki).await,
            None => FakeKube::start(TOKEN, groups).await,
        };
        let mut provider = provider.to_owned();
        if let Some(pki) = &pki {
            provider.push_str(&format!("certAuthFilePath: {}\n", pki.ca_file().display()));
        }
        setup(&fake, idp.token_endpoint());
        let (web, auth, internal) = (free_port(), free_port(), free_port());
        let provider: String = provider.lines().map(|l| format!("    {l}\n")).collect();
        let config = format!(
            r#"entryPoints:
  web: {{address: "127.0.0.1:{web}"}}
  auth: {{address: "127.0.0.1:{auth}"}}
  internal: {{address: "127.0.0.1:{internal}"}}
ping: {{entryPoint: internal}}
accessLog: {{}}
providers:
  kubernetesCRD:
    endpoint: "{}"
    token: urn:k8s:secret:kube:token
    forwardAuth: {{entryPoint: auth}}
{provider}http:
  routers:
    api:
      rule: "PathPrefix(`/v1`)"
      middlewares: [apps-cc@kubernetescrd]
      service: backend
    missing:
      rule: "PathPrefix(`/missing`)"
      middlewares: [apps-missing@kubernetescrd]
      service: backend
  services:
    backend:
      loadBalancer:
        servers: [{{url: "{}"}}]
---
apiVersion: v1
kind: Secret
metadata: {{name: kube}}
stringData: {{token: {token}}}
"#,
            fake.url(),
            echo.url
        );
        let dir = TempDir::new();
        let path = dir.write("ccgate.yaml", &config);
        let ccgate = Ccgate::start(
            &path,
            &[("web", web), ("auth", auth), ("internal", internal)],
        )
        .await;
        let client = reqwest::Client::builder().no_proxy().build().unwrap();
        Self {
            idp,
            fake,
            ccgate,
            client,
            _echo: echo,
            _dir: dir,
            _pki: pki,
        }
    }

    /// Status and `X-Grp` of `GET path` on `entry_point`.
    async fn get(&self, entry_point: &str, path: &str) -> (u16, Option<String>) {
        let response = self
            .client
            .get(format!("{}{path}", self.ccgate.url(entry_point)))
            .send()
            .await
            .expect("ccgate answers");
        let status = response.status().as_u16();
        let grp = response
            .headers()
            .get("x-grp")
            .map(|v| v.to_str().unwrap().to_owned());
        (status, grp)
    }

    /// Waits until `GET path` on `entry_point` answers `status` (and
    /// `X-Grp: grp` when given).
    async fn until(&self, entry_point: &str, path: &str, status: u16, grp: Option<&str>) {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let got = self.get(entry_point, path).await;
            if got.0 == status && (grp.is_none() || got.1.as_deref() == grp) {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "{entry_point} {path}: {got:?}, expected {status} {grp:?}\n{}",
                self.ccgate.stderr()
            );
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }

    /// No secret of the test in anything ccgate printed.
    fn assert_no_secret(&self) {
        let output = format!("{}{}", self.ccgate.stdout(), self.ccgate.stderr());
        for secret in std::iter::once(TOKEN).chain(SECRETS) {
            assert!(
                !output.contains(secret),
                "{secret} in the output:\n{output}"
            );
        }
    }
}

fn creds(fake: &FakeKube, namespace: &str, id: &str, secret: &str) {
    fake.apply_secret(namespace, "creds", json!({"id": id, "secret": secret}));
}

#[tokio::test]
async fn fake_cluster_middlewares_of_both_groups_serve_routers_and_forward_auth() {
    let cluster = Cluster::start(&[TRAEFIK_IO, TRAEFIK_CONTAINO_US], "", |fake, idp| {
        fake.hold_lists(true);
        fake.apply_middleware(TRAEFIK_IO, "apps", "cc", json!({}), spec(idp, json!({})));
        fake.apply_middleware(
            TRAEFIK_CONTAINO_US,
            "legacy",
            "old",
            json!({}),
            spec(idp, json!({})),
        );
        // apps/cc in both groups: traefik.io's wins, the other is logged.
        fake.apply_middleware(
            TRAEFIK_CONTAINO_US,
            "apps",
            "cc",
            json!({}),
            spec(idp, json!({"forwardHeaders": {"X-Grp": "userId"}})),
        );
        // Another kind of middleware: not ccgate's, ignored.
        fake.apply_middleware(
            TRAEFIK_IO,
            "apps",
            "strip",
            json!({}),
            json!({"stripPrefix": {"prefixes": ["/x"]}}),
        );
        creds(fake, "apps", "basic-client", "basic-secret");
        creds(fake, "legacy", "tester-client", "tester-secret");
    })
    .await;
    // Not ready while the lists are held; routers of missing middlewares 503.
    assert_eq!(cluster.get("internal", "/ping").await.0, 503);
    assert_eq!(cluster.get("web", "/v1/x").await.0, 503);
    cluster.fake.hold_lists(false);
    cluster.until("internal", "/ping", 200, None).await;

    cluster.until("auth", "/apps/cc", 200, Some("admin")).await;
    cluster
        .until("auth", "/legacy/old", 200, Some("testers"))
        .await;
    cluster
        .ccgate
        .until_logged(
            "the name apps-cc@kubernetescrd is already taken by Middleware apps/cc; ignored",
        )
        .await;
    assert_eq!(
        cluster.get("auth", "/apps/cc").await,
        (200, Some("admin".to_owned()))
    );
    let response = cluster
        .client
        .get(format!("{}/apps/cc", cluster.ccgate.url("auth")))
        .send()
        .await
        .unwrap();
    let authorization = response.headers()["authorization"].to_str().unwrap();
    assert!(authorization.starts_with("Bearer "), "{authorization}");
    for other in [
        "/apps/strip",
        "/apps/nope",
        "/apps",
        "/",
        "/v1/x",
        "/apps/cc/more",
    ] {
        assert_eq!(cluster.get("auth", other).await.0, 404, "{other}");
    }
    // The file provider's router through apps-cc@kubernetescrd.
    let seen: Value = cluster
        .client
        .get(format!("{}/v1/x", cluster.ccgate.url("web")))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let sent = seen.to_string();
    assert!(sent.contains("Bearer "), "{sent}");
    assert_eq!(cluster.get("web", "/missing").await.0, 503);
    // Routers without entry points are not served on the forward-auth one.
    assert_eq!(cluster.get("auth", "/v1/x").await.0, 404);
    let requests = cluster.fake.requests();
    for path in [
        "/apis",
        "/apis/traefik.io/v1alpha1",
        "/apis/traefik.containo.us/v1alpha1",
    ] {
        assert!(
            requests.iter().any(|r| r == &format!("GET {path}")),
            "{path}: {requests:?}"
        );
    }
    cluster.assert_no_secret();
}

#[tokio::test]
async fn fake_cluster_changes_apply_without_restart_and_invalid_objects_keep_the_last_valid() {
    let cluster = Cluster::start(&[TRAEFIK_IO], "", |fake, idp| {
        fake.apply_middleware(TRAEFIK_IO, "apps", "cc", json!({}), spec(idp, json!({})));
        creds(fake, "apps", "basic-client", "basic-secret");
    })
    .await;
    let idp = cluster.idp.token_endpoint().to_owned();
    cluster.until("auth", "/apps/cc", 200, Some("admin")).await;
    let pid = cluster.ccgate.pid();

    // Added.
    cluster.fake.apply_middleware(
        TRAEFIK_IO,
        "apps",
        "second",
        json!({}),
        spec(&idp, json!({})),
    );
    cluster
        .until("auth", "/apps/second", 200, Some("admin"))
        .await;
    // A Secret changed: the middlewares naming it take the new values.
    creds(&cluster.fake, "apps", "tester-client", "tester-secret");
    cluster
        .until("auth", "/apps/cc", 200, Some("testers"))
        .await;
    cluster
        .until("auth", "/apps/second", 200, Some("testers"))
        .await;
    // Changed: a new forwardHeaders mapping.
    cluster.fake.apply_middleware(
        TRAEFIK_IO,
        "apps",
        "second",
        json!({}),
        spec(&idp, json!({"forwardHeaders": {"X-Grp": "userId"}})),
    );
    cluster
        .until("auth", "/apps/second", 200, Some("john"))
        .await;

    // Invalid: logged with namespace, name and field; the last valid
    // version keeps serving, the others are unaffected.
    cluster.fake.apply_middleware(
        TRAEFIK_IO,
        "apps",
        "second",
        json!({}),
        spec(&idp, json!({"bogus": 1})),
    );
    cluster
        .ccgate
        .until_logged("invalid Middleware; its last valid version keeps serving")
        .await;
    let log = cluster.ccgate.stderr();
    assert!(
        log.contains(
            "Middleware apps/second (traefik.io/v1alpha1): spec.plugin.oAuthClientCredentials.bogus"
        ),
        "{log}"
    );
    assert_eq!(
        cluster.get("auth", "/apps/second").await,
        (200, Some("john".to_owned()))
    );
    // Invalid from the start: no version to keep, nothing served.
    cluster.fake.apply_middleware(
        TRAEFIK_IO,
        "apps",
        "broken",
        json!({}),
        spec(&idp, json!({"clientSecret": "urn:k8s:secret:creds:nokey"})),
    );
    cluster.ccgate.until_logged("has no key \"nokey\"").await;
    assert_eq!(cluster.get("auth", "/apps/broken").await.0, 404);
    // An invalid Secret keeps its last valid version.
    cluster.fake.apply(&Resource::Secrets, json!({"metadata": {"name": "creds", "namespace": "apps"}, "data": {"id": "!!not base64", "secret": "x"}}));
    cluster
        .ccgate
        .until_logged("invalid Secret; its last valid version stays")
        .await;
    assert_eq!(
        cluster.get("auth", "/apps/cc").await,
        (200, Some("testers".to_owned()))
    );

    // Deleted.
    cluster
        .fake
        .delete(&Resource::Middlewares(TRAEFIK_IO.to_owned()), "apps", "cc");
    cluster.until("auth", "/apps/cc", 404, None).await;
    cluster.until("web", "/v1/x", 503, None).await;
    assert_eq!(cluster.get("auth", "/apps/second").await.0, 200);
    assert_eq!(cluster.ccgate.pid(), pid, "no restart");
    cluster.assert_no_secret();
}

#[tokio::test]
async fn fake_cluster_urns_resolve_in_the_middlewares_namespace_only() {
    let cluster = Cluster::start(&[TRAEFIK_IO], "", |fake, idp| {
        creds(fake, "apps", "basic-client", "basic-secret");
        fake.apply_middleware(TRAEFIK_IO, "other", "cc", json!({}), spec(idp, json!({})));
    })
    .await;
    cluster.until("internal", "/ping", 200, None).await;
    cluster
        .ccgate
        .until_logged("no Secret \"creds\" in namespace \"other\"")
        .await;
    assert_eq!(cluster.get("auth", "/other/cc").await.0, 404);
    creds(&cluster.fake, "other", "tester-client", "tester-secret");
    cluster
        .until("auth", "/other/cc", 200, Some("testers"))
        .await;
    cluster.assert_no_secret();
}

#[tokio::test]
async fn fake_cluster_namespaces_and_label_selector() {
    let provider = "namespaces: [apps, team2]\nlabelSelector: \"team=a\"\n";
    // Over HTTPS, the fake's CA given by certAuthFilePath.
    let cluster = Cluster::start_with(
        &[TRAEFIK_IO],
        provider,
        Some(Pki::new()),
        TOKEN,
        |fake, idp| {
            for namespace in ["apps", "team2", "outside"] {
                creds(fake, namespace, "basic-client", "basic-secret");
                fake.apply_middleware(
                    TRAEFIK_IO,
                    namespace,
                    "cc",
                    json!({"team": "a"}),
                    spec(idp, json!({})),
                );
            }
            fake.apply_middleware(
                TRAEFIK_IO,
                "apps",
                "unlabelled",
                json!({}),
                spec(idp, json!({})),
            );
            fake.apply_middleware(
                TRAEFIK_IO,
                "apps",
                "team-b",
                json!({"team": "b"}),
                spec(idp, json!({})),
            );
        },
    )
    .await;
    cluster.until("auth", "/apps/cc", 200, Some("admin")).await;
    cluster.until("auth", "/team2/cc", 200, Some("admin")).await;
    for path in ["/outside/cc", "/apps/unlabelled", "/apps/team-b"] {
        assert_eq!(cluster.get("auth", path).await.0, 404, "{path}");
    }
    // Labels change: in, then out.
    let idp = cluster.idp.token_endpoint().to_owned();
    cluster.fake.apply_middleware(
        TRAEFIK_IO,
        "apps",
        "unlabelled",
        json!({"team": "a"}),
        spec(&idp, json!({})),
    );
    cluster.until("auth", "/apps/unlabelled", 200, None).await;
    cluster.fake.apply_middleware(
        TRAEFIK_IO,
        "apps",
        "cc",
        json!({"team": "b"}),
        spec(&idp, json!({})),
    );
    cluster.until("auth", "/apps/cc", 404, None).await;
    // Only namespaced requests (so a Role is enough), Middlewares filtered.
    for request in cluster.fake.requests() {
        let path = request.trim_start_matches("GET ");
        let discovery = ["/api", "/apis", "/apis/traefik.io/v1alpha1"].contains(&path);
        assert!(
            discovery
                || path.starts_with("/apis/traefik.io/v1alpha1/namespaces/")
                || path.starts_with("/api/v1/namespaces/"),
            "a cluster-wide request: {request}"
        );
        if path.contains("/middlewares") {
            assert!(path.contains("labelSelector=team%3Da"), "{request}");
        }
    }
    cluster.assert_no_secret();
}

#[tokio::test]
async fn fake_cluster_outage_and_410_relists() {
    let cluster = Cluster::start(&[TRAEFIK_IO], "", |fake, idp| {
        fake.apply_middleware(TRAEFIK_IO, "apps", "cc", json!({}), spec(idp, json!({})));
        creds(fake, "apps", "basic-client", "basic-secret");
    })
    .await;
    let idp = cluster.idp.token_endpoint().to_owned();
    cluster.until("auth", "/apps/cc", 200, Some("admin")).await;
    let mut cluster = cluster;

    // The API server goes away: the last configuration keeps serving.
    cluster.fake.stop();
    cluster
        .ccgate
        .until_logged("kubernetes provider: watch failed")
        .await;
    assert_eq!(
        cluster.get("auth", "/apps/cc").await,
        (200, Some("admin".to_owned()))
    );
    assert_eq!(cluster.get("internal", "/ping").await.0, 200);
    // A change while it was away is seen when it is back.
    cluster.fake.apply_middleware(
        TRAEFIK_IO,
        "apps",
        "during",
        json!({}),
        spec(&idp, json!({})),
    );
    cluster.fake.resume().await;
    cluster
        .until("auth", "/apps/during", 200, Some("admin"))
        .await;

    // 410 Gone as an ERROR event: a relist, which also sees deletions.
    cluster.fake.expire(false);
    cluster.ccgate.until_logged("410 Gone").await;
    cluster.fake.delete(
        &Resource::Middlewares(TRAEFIK_IO.to_owned()),
        "apps",
        "during",
    );
    cluster.until("auth", "/apps/during", 404, None).await;

    // 410 Gone as the HTTP status of the next watch.
    let before = cluster.ccgate.stderr().matches("410 Gone").count();
    cluster.fake.expire(true);
    let deadline = Instant::now() + Duration::from_secs(10);
    while cluster.ccgate.stderr().matches("410 Gone").count() <= before {
        assert!(Instant::now() < deadline, "{}", cluster.ccgate.stderr());
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    cluster.fake.apply_middleware(
        TRAEFIK_IO,
        "apps",
        "after",
        json!({}),
        spec(&idp, json!({})),
    );
    cluster
        .until("auth", "/apps/after", 200, Some("admin"))
        .await;
    let relists = cluster
        .fake
        .requests()
        .iter()
        .filter(|r| r.contains("/middlewares?") && !r.contains("watch=true"))
        .count();
    assert!(
        relists >= 3,
        "a list at the start and after each 410: {relists}"
    );
    cluster.assert_no_secret();
}

#[tokio::test]
async fn fake_cluster_refusing_the_token_keeps_ccgate_unready() {
    let wrong = "wrong-kube-token-hunter3";
    let cluster = Cluster::start_with(&[TRAEFIK_IO], "", None, wrong, |fake, idp| {
        fake.apply_middleware(TRAEFIK_IO, "apps", "cc", json!({}), spec(idp, json!({})));
        creds(fake, "apps", "basic-client", "basic-secret");
    })
    .await;
    cluster.ccgate.until_logged("API discovery failed").await;
    let log = cluster.ccgate.stderr();
    assert!(log.contains("401") || log.contains("Unauthorized"), "{log}");
    assert_eq!(cluster.get("internal", "/ping").await.0, 503);
    assert_eq!(cluster.get("auth", "/apps/cc").await.0, 404);
    assert_eq!(cluster.get("web", "/v1/x").await.0, 503);
    assert!(
        !cluster
            .fake
            .requests()
            .iter()
            .any(|r| r.contains("/middlewares")),
        "no list without discovery"
    );
    let output = format!("{}{}", cluster.ccgate.stdout(), cluster.ccgate.stderr());
    assert!(!output.contains(wrong), "{output}");
    cluster.assert_no_secret();
}
