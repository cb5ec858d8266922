//! Real Redis servers for the tests: `redis-server` and `redis-sentinel`
//! (Debian's packages, installed by `scripts/install-test-deps`), started
//! on free ports of 127.0.0.1 with generated configuration files in a
//! temporary directory, and killed when dropped.
//!
//! Redis cannot listen on port 0 and report the port, so a free port is
//! found by binding `127.0.0.1:0` and releasing it; if another process
//! takes it before Redis binds it, Redis exits and the start is retried
//! on other ports.

use std::path::PathBuf;
use std::process::Stdio;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::process::{Child, Command};

use super::tls::Pki;

/// How long a server may take to answer `PING` after it starts.
const START_TIMEOUT: Duration = Duration::from_secs(10);
/// Starts retried on other ports after a port collision.
const START_ATTEMPTS: usize = 5;

/// A running `redis-server` (or `redis-sentinel`).
pub(crate) struct RedisServer {
    port: u16,
    tls_port: Option<u16>,
    dir: PathBuf,
    child: Option<Child>,
}

/// What a [`RedisServer`] is started with.
#[derive(Default, Clone)]
#[must_use]
pub(crate) struct RedisConfig {
    lines: Vec<String>,
    tls: bool,
    sentinel: bool,
    cluster: bool,
    port: Option<u16>,
}

impl RedisConfig {
    /// Adds a line of `redis.conf` (e.g. `requirepass pw`).
    pub(crate) fn line(mut self, line: impl Into<String>) -> Self {
        self.lines.push(line.into());
        self
    }

    /// `requirepass`.
    pub(crate) fn password(self, password: &str) -> Self {
        self.line(format!("requirepass {password}"))
    }

    /// A `tls-port` besides the plain one, with the server certificate of
    /// `pki` and client certificates required (`tls-auth-clients yes`).
    pub(crate) fn tls(mut self, pki: &Pki) -> Self {
        self.tls = true;
        self.line(format!(
            "tls-cert-file {}",
            pki.server_cert_file().display()
        ))
        .line(format!("tls-key-file {}", pki.server_key_file().display()))
        .line(format!("tls-ca-cert-file {}", pki.ca_file().display()))
        .line("tls-auth-clients yes")
    }

    /// A replica of the server on `master_port`.
    pub(crate) fn replica_of(self, master_port: u16) -> Self {
        self.line(format!("replicaof 127.0.0.1 {master_port}"))
    }

    /// A Sentinel monitoring `master_set` on `master_port` (quorum 2).
    pub(crate) fn sentinel(mut self, master_set: &str, master_port: u16) -> Self {
        self.sentinel = true;
        self.line(format!(
            "sentinel monitor {master_set} 127.0.0.1 {master_port} 2"
        ))
        .line(format!(
            "sentinel down-after-milliseconds {master_set} 1000"
        ))
        .line(format!("sentinel failover-timeout {master_set} 5000"))
        .line(format!("sentinel parallel-syncs {master_set} 1"))
    }

    /// A Redis Cluster node (`cluster-node-timeout 1000`).
    pub(crate) fn cluster_node(mut self) -> Self {
        self.cluster = true;
        self.line("cluster-enabled yes")
            .line("cluster-config-file nodes.conf")
            .line("cluster-node-timeout 1000")
    }

    /// Listen on `port` (for a restart on a known port) instead of a free one.
    pub(crate) fn port(mut self, port: u16) -> Self {
        self.port = Some(port);
        self
    }
}

impl RedisServer {
    /// Starts a server with `config`.
    ///
    /// # Panics
    ///
    /// When `redis-server` is missing, or the server does not answer in time.
    pub(crate) async fn start(config: RedisConfig) -> Self {
        let mut last_log = String::new();
        for _ in 0..START_ATTEMPTS {
            let port = match config.port {
                Some(port) => port,
                None => free_port(),
            };
            let tls_port = config.tls.then(free_port);
            let bus_port = config.cluster.then(free_port);
            let dir = temp_dir();
            let mut text = format!(
                "port {port}\nbind 127.0.0.1\nprotected-mode no\ndaemonize no\nsave \"\"\n\
                 appendonly no\nrepl-diskless-sync-delay 0\ndir {}\nlogfile {}\n",
                dir.display(),
                dir.join("redis.log").display()
            );
            if let Some(tls_port) = tls_port {
                text.push_str(&format!("tls-port {tls_port}\n"));
            }
            if let Some(bus_port) = bus_port {
                text.push_str(&format!("cluster-port {bus_port}\n"));
            }
            for line in &config.lines {
                text.push_str(line);
                text.push('\n');
            }
            let file = dir.join("redis.conf");
            std::fs::write(&file, text).expect("write redis.conf");
            let mut command = Command::new("redis-server");
            command.arg(&file);
            if config.sentinel {
                command.arg("--sentinel");
            }
            command
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .kill_on_drop(true);
            let child = command.spawn().unwrap_or_else(|e| {
                panic!(
                    "cannot run `redis-server` ({e}): run scripts/test, which installs \
                     redis-server redis-sentinel redis-tools"
                )
            });
            let mut server = Self {
                port,
                tls_port,
                dir,
                child: Some(child),
            };
            if server.until_ready().await {
                return server;
            }
            last_log = server.log();
            if config.port.is_some() {
                break; // a fixed port: no other to try
            }
        }
        panic!("redis-server did not start; its log:\n{last_log}");
    }

    /// Waits until the server answers `PING` (any answer, `NOAUTH`
    /// included); false if it exited (e.g. its port was taken).
    async fn until_ready(&mut self) -> bool {
        let deadline = Instant::now() + START_TIMEOUT;
        while Instant::now() < deadline {
            if let Some(child) = &mut self.child
                && child.try_wait().ok().flatten().is_some()
            {
                return false;
            }
            if ping(self.port).await {
                return true;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        false
    }

    /// The plain port.
    pub(crate) fn port(&self) -> u16 {
        self.port
    }

    /// `127.0.0.1:port`.
    pub(crate) fn endpoint(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// `127.0.0.1:tls-port`.
    pub(crate) fn tls_endpoint(&self) -> String {
        format!("127.0.0.1:{}", self.tls_port.expect("started with TLS"))
    }

    /// Kills the server now (SIGKILL) and waits for it to exit.
    pub(crate) async fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill().await;
        }
    }

    /// The server's log so far.
    pub(crate) fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("redis.log")).unwrap_or_default()
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        if let Some(child) = &mut self.child {
            let _ = child.start_kill();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Whether something on `port` answers `PING` with a RESP line.
async fn ping(port: u16) -> bool {
    let attempt = async {
        let mut stream = tokio::net::TcpStream::connect(("127.0.0.1", port)).await?;
        stream.write_all(b"PING\r\n").await?;
        let mut byte = [0u8; 1];
        stream.read_exact(&mut byte).await?;
        Ok::<_, std::io::Error>(matches!(byte[0], b'+' | b'-'))
    };
    matches!(
        tokio::time::timeout(Duration::from_millis(500), attempt).await,
        Ok(Ok(true))
    )
}

/// A port on 127.0.0.1 that was free a moment ago.
pub(crate) fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .expect("bind 127.0.0.1:0")
        .port()
}

/// A new, empty directory under the system's temporary directory.
fn temp_dir() -> PathBuf {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    let dir = std::env::temp_dir().join(format!(
        "ccgate-test-redis-{}-{}-{:08x}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed),
        fastrand::u32(..)
    ));
    std::fs::create_dir_all(&dir).expect("create test Redis directory");
    dir
}

/// A plain connection to a server for inspecting it from a test
/// (`user`/`password` when it needs them).
pub(crate) async fn connect(
    endpoint: &str,
    user: Option<(&str, &str)>,
) -> redis::aio::MultiplexedConnection {
    let url = match user {
        Some((user, password)) => format!("redis://{user}:{password}@{endpoint}"),
        None => format!("redis://{endpoint}"),
    };
    redis::Client::open(url)
        .expect("redis URL")
        .get_multiplexed_async_connection()
        .await
        .unwrap_or_else(|e| panic!("connect to Redis at {endpoint}: {e}"))
}

/// The answer of the command `args` on the server on `port` as text
/// (empty if it fails): cheaper than `redis-cli` in a polling loop.
pub(crate) async fn ask(port: &str, args: &[&str]) -> String {
    let Ok(client) = redis::Client::open(format!("redis://127.0.0.1:{port}")) else {
        return String::new();
    };
    let Ok(mut conn) = client.get_multiplexed_async_connection().await else {
        return String::new();
    };
    let mut cmd = redis::cmd(args[0]);
    for arg in &args[1..] {
        cmd.arg(*arg);
    }
    match cmd.query_async::<redis::Value>(&mut conn).await {
        Ok(redis::Value::BulkString(bytes)) => String::from_utf8_lossy(&bytes).into_owned(),
        Ok(redis::Value::VerbatimString { text, .. }) => text,
        Ok(redis::Value::Int(n)) => n.to_string(),
        Ok(redis::Value::Array(items)) => match items.first() {
            Some(redis::Value::BulkString(first)) => String::from_utf8_lossy(first).into_owned(),
            _ => String::new(),
        },
        _ => String::new(),
    }
}

/// Runs `redis-cli` with `args`, returning its output; panics if it fails.
pub(crate) async fn cli(args: &[&str]) -> String {
    let output = Command::new("redis-cli")
        .args(args)
        .stdin(Stdio::null())
        .output()
        .await
        .unwrap_or_else(|e| {
            panic!("cannot run `redis-cli` ({e}): run scripts/test, which installs redis-tools")
        });
    let text = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(
        output.status.success(),
        "redis-cli {args:?} failed: {text}{}",
        String::from_utf8_lossy(&output.stderr)
    );
    text
}

/// Polls `condition` every 20 ms until it holds; panics with `what` after
/// `limit`.
pub(crate) async fn until<F, Fut>(limit: Duration, what: &str, mut condition: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + limit;
    while !condition().await {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// One master, one replica and three Sentinels monitoring them.
pub(crate) struct SentinelGroup {
    pub(crate) master: RedisServer,
    pub(crate) replica: RedisServer,
    pub(crate) sentinels: Vec<RedisServer>,
    master_set: String,
}

impl SentinelGroup {
    /// Starts the group and waits until every Sentinel knows the replica
    /// as a healthy one (so a failover can pick it).
    pub(crate) async fn start(master_set: &str) -> Self {
        let master = RedisServer::start(RedisConfig::default()).await;
        let replica = RedisServer::start(RedisConfig::default().replica_of(master.port())).await;
        let mut sentinels = Vec::new();
        for _ in 0..3 {
            sentinels.push(
                RedisServer::start(RedisConfig::default().sentinel(master_set, master.port()))
                    .await,
            );
        }
        let group = Self {
            master,
            replica,
            sentinels,
            master_set: master_set.to_owned(),
        };
        for sentinel in &group.sentinels {
            let mut conn = connect(&sentinel.endpoint(), None).await;
            until(
                Duration::from_secs(15),
                "Sentinels to see the replica",
                || {
                    let mut conn = conn.clone();
                    let set = group.master_set.clone();
                    async move {
                        let replicas: Vec<std::collections::HashMap<String, String>> =
                            redis::cmd("SENTINEL")
                                .arg("REPLICAS")
                                .arg(&set)
                                .query_async(&mut conn)
                                .await
                                .unwrap_or_default();
                        replicas.iter().any(|r| {
                            r.get("flags").is_some_and(|f| f == "slave")
                                && r.get("master-link-status").is_some_and(|s| s == "ok")
                        })
                    }
                },
            )
            .await;
            let _ = &mut conn;
        }
        group
    }

    /// The Sentinels' endpoints.
    pub(crate) fn endpoints(&self) -> Vec<String> {
        self.sentinels.iter().map(RedisServer::endpoint).collect()
    }

    /// The port of the master the first Sentinel names.
    pub(crate) async fn master_port(&self) -> u16 {
        let mut conn = connect(&self.sentinels[0].endpoint(), None).await;
        let address: Vec<String> = redis::cmd("SENTINEL")
            .arg("GET-MASTER-ADDR-BY-NAME")
            .arg(&self.master_set)
            .query_async(&mut conn)
            .await
            .expect("master address");
        address[1].parse().expect("port")
    }

    /// Asks a Sentinel for a failover (`SENTINEL FAILOVER`): the replica
    /// becomes master and the old master its replica.
    pub(crate) async fn failover(&self) {
        let mut conn = connect(&self.sentinels[0].endpoint(), None).await;
        let () = redis::cmd("SENTINEL")
            .arg("FAILOVER")
            .arg(&self.master_set)
            .query_async(&mut conn)
            .await
            .expect("SENTINEL FAILOVER");
    }
}

/// A Redis Cluster of six nodes: three masters with a replica each.
pub(crate) struct ClusterGroup {
    pub(crate) nodes: Vec<RedisServer>,
}

impl ClusterGroup {
    /// Starts six nodes, creates the cluster with `redis-cli --cluster
    /// create`, and waits until every node sees all slots served.
    pub(crate) async fn start() -> Self {
        let mut nodes = Vec::new();
        for _ in 0..6 {
            nodes.push(RedisServer::start(RedisConfig::default().cluster_node()).await);
        }
        let endpoints: Vec<String> = nodes.iter().map(RedisServer::endpoint).collect();
        let mut args = vec!["--cluster", "create"];
        args.extend(endpoints.iter().map(String::as_str));
        args.extend(["--cluster-replicas", "1", "--cluster-yes"]);
        cli(&args).await;
        let group = Self { nodes };
        group.until_ok(Duration::from_secs(20)).await;
        // A replica that has not synced yet cannot take over: wait for all.
        for node in &group.nodes {
            let port = node.port().to_string();
            until(Duration::from_secs(20), "replicas to sync", || {
                let port = port.clone();
                async move {
                    let info = ask(&port, &["INFO", "replication"]).await;
                    info.contains("role:master") || info.contains("master_link_status:up")
                }
            })
            .await;
        }
        group
    }

    /// Waits until every live node reports `cluster_state:ok`.
    pub(crate) async fn until_ok(&self, limit: Duration) {
        for node in self.nodes.iter().filter(|n| n.child.is_some()) {
            let port = node.port().to_string();
            until(limit, "the cluster to be ok", || {
                let port = port.clone();
                async move {
                    let info = ask(&port, &["CLUSTER", "INFO"]).await;
                    info.contains("cluster_state:ok")
                }
            })
            .await;
        }
    }

    /// Kills node `victim` (a master) and waits until the cluster has
    /// marked it failed and serves all slots again (its replica took over).
    pub(crate) async fn kill_and_fail_over(&mut self, victim: usize) {
        let victim_address = format!("{} ", self.nodes[victim].endpoint());
        self.nodes[victim].kill().await;
        let live = self
            .nodes
            .iter()
            .find(|n| n.child.is_some())
            .expect("a live node")
            .port()
            .to_string();
        until(
            Duration::from_secs(20),
            "the killed master to be marked failed",
            || {
                let (live, victim_address) = (live.clone(), victim_address.clone());
                async move {
                    let nodes = ask(&live, &["CLUSTER", "NODES"]).await;
                    nodes.lines().any(|line| {
                        line.split_whitespace().nth(1).is_some_and(|a| {
                            victim_address.starts_with(a.split('@').next().unwrap_or(a))
                        }) && line.contains("fail")
                    })
                }
            },
        )
        .await;
        self.until_ok(Duration::from_secs(20)).await;
    }

    /// The nodes' endpoints.
    pub(crate) fn endpoints(&self) -> Vec<String> {
        self.nodes.iter().map(RedisServer::endpoint).collect()
    }

    /// The index of a live master holding at least one key.
    pub(crate) async fn master_with_keys(&self) -> Option<usize> {
        for (index, node) in self.nodes.iter().enumerate() {
            if node.child.is_none() {
                continue;
            }
            let port = node.port().to_string();
            let role = ask(&port, &["ROLE"]).await;
            let size = ask(&port, &["DBSIZE"]).await;
            if role.starts_with("master") && size.trim() != "0" {
                return Some(index);
            }
        }
        None
    }
}
