//! The `ccgate serve` process on a temporary configuration: started on
//! free ports, ready once every entry point accepts connections, stopped
//! with SIGTERM; its standard output and error are kept for inspection.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::io::{AsyncBufReadExt, AsyncRead, BufReader};
use tokio::process::{Child, Command};

/// A temporary directory, removed on drop.
pub(crate) struct TempDir(PathBuf);

impl TempDir {
    pub(crate) fn new() -> Self {
        static NEXT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let dir = std::env::temp_dir().join(format!("ccgate-e2e-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("temp dir");
        Self(dir)
    }

    pub(crate) fn path(&self) -> &Path {
        &self.0
    }

    /// Writes `content` to `name` inside, creating directories.
    pub(crate) fn write(&self, name: &str, content: &str) -> PathBuf {
        let path = self.0.join(name);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).expect("dir");
        }
        std::fs::write(&path, content).expect("write");
        path
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A running `ccgate serve`.
pub(crate) struct Ccgate {
    child: Child,
    stdout: Arc<Mutex<String>>,
    stderr: Arc<Mutex<String>>,
    /// The tasks reading standard output and error, done at their end.
    readers: Vec<tokio::task::JoinHandle<()>>,
    /// Entry point name → port, as given to [`Ccgate::start`].
    pub(crate) ports: BTreeMap<String, u16>,
}

impl Ccgate {
    /// Runs `ccgate serve -c config` and waits until every port in `ports`
    /// accepts connections.
    pub(crate) async fn start(config: &Path, ports: &[(&str, u16)]) -> Self {
        Self::start_by(Command::new(env!("CARGO_BIN_EXE_ccgate")), config, ports).await
    }

    /// As [`Ccgate::start`], through `command`: the ccgate binary, or a
    /// program that runs it (`taskset -c 0 ccgate`).
    pub(crate) async fn start_by(
        mut command: Command,
        config: &Path,
        ports: &[(&str, u16)],
    ) -> Self {
        let mut child = command
            .arg("serve")
            .arg("-c")
            .arg(config)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .expect("ccgate runs");
        let (stdout, stdout_reader) = read_lines(child.stdout.take().expect("stdout"));
        let (stderr, stderr_reader) = read_lines(child.stderr.take().expect("stderr"));
        let mut ccgate = Self {
            child,
            stdout,
            stderr,
            readers: vec![stdout_reader, stderr_reader],
            ports: ports.iter().map(|(n, p)| ((*n).to_owned(), *p)).collect(),
        };
        let deadline = Instant::now() + Duration::from_secs(20);
        for (_, port) in ports {
            while tokio::net::TcpStream::connect(("127.0.0.1", *port))
                .await
                .is_err()
            {
                if let Ok(Some(status)) = ccgate.child.try_wait() {
                    panic!("ccgate exited with {status}:\n{}", ccgate.stderr());
                }
                assert!(
                    Instant::now() < deadline,
                    "ccgate did not listen on {port}:\n{}",
                    ccgate.stderr()
                );
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
        ccgate
    }

    /// The process id.
    pub(crate) fn pid(&self) -> u32 {
        self.child.id().expect("running")
    }

    /// `http://127.0.0.1:PORT` of an entry point.
    pub(crate) fn url(&self, entry_point: &str) -> String {
        format!("http://127.0.0.1:{}", self.ports[entry_point])
    }

    /// What it printed on standard output (the access log) so far.
    pub(crate) fn stdout(&self) -> String {
        self.stdout.lock().expect("stdout").clone()
    }

    /// What it printed on standard error (its log) so far.
    pub(crate) fn stderr(&self) -> String {
        self.stderr.lock().expect("stderr").clone()
    }

    /// Sends SIGTERM.
    pub(crate) fn terminate(&self) {
        let pid = self.child.id().expect("running").to_string();
        let status = std::process::Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .expect("kill");
        assert!(status.success());
    }

    /// Waits for the process to exit (at most `limit`), returning its code,
    /// and for its output to be read to the end.
    pub(crate) async fn wait(&mut self, limit: Duration) -> Option<i32> {
        let status = tokio::time::timeout(limit, self.child.wait())
            .await
            .expect("ccgate exits in time")
            .expect("wait");
        for reader in self.readers.drain(..) {
            tokio::time::timeout(limit, reader)
                .await
                .expect("its output ends with it")
                .expect("the output reader");
        }
        status.code()
    }

    /// Waits until standard error contains `text`.
    pub(crate) async fn until_logged(&self, text: &str) {
        until_contains(|| self.stderr(), text, "logged").await;
    }

    /// Waits until standard output (the access log, written by a thread of
    /// its own) contains `text`.
    pub(crate) async fn until_printed(&self, text: &str) {
        until_contains(|| self.stdout(), text, "printed").await;
    }
}

async fn until_contains(output: impl Fn() -> String, text: &str, what: &str) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !output().contains(text) {
        assert!(
            Instant::now() < deadline,
            "ccgate never {what} {text:?}:\n{}",
            output()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Reads `stream` line by line into a shared string, so the child never
/// blocks on a full pipe and its output can be shown or searched.
pub(crate) fn collect(stream: impl AsyncRead + Unpin + Send + 'static) -> Arc<Mutex<String>> {
    read_lines(stream).0
}

/// As [`collect`], with the reading task, which ends at the end of
/// `stream`.
fn read_lines(
    stream: impl AsyncRead + Unpin + Send + 'static,
) -> (Arc<Mutex<String>>, tokio::task::JoinHandle<()>) {
    let text = Arc::new(Mutex::new(String::new()));
    let sink = Arc::clone(&text);
    let reader = tokio::spawn(async move {
        let mut lines = BufReader::new(stream).lines();
        while let Ok(Some(line)) = lines.next_line().await {
            let mut text = sink.lock().expect("output");
            text.push_str(&line);
            text.push('\n');
        }
    });
    (text, reader)
}
