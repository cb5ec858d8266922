//! Configuration files in a temporary directory, and `ccgate check` run
//! on them as a child process.

use std::path::PathBuf;
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};

/// Every secret value the tests put in configurations (inline, in Secret
/// manifests, base64-decoded): none may appear in any output.
pub(crate) const SECRETS: &[&str] = &[
    "hunter2-client-secret",
    "0123456789abcdef",
    "gateway-id-in-a-secret",
    "k8s-secret-from-data",
    "k8s-secret-from-string-data",
    "short-key",
    "tooshort-secret",
    "hunter2-timeout",
    "-----BEGIN PRIVATE KEY-----",
];

/// A temporary directory of configuration files, removed on drop.
pub(crate) struct ConfigDir {
    dir: PathBuf,
}

/// What `ccgate check` did.
#[derive(Debug)]
pub(crate) struct Checked {
    pub(crate) code: Option<i32>,
    pub(crate) stdout: String,
    pub(crate) stderr: String,
}

impl ConfigDir {
    /// A fresh directory holding `files` (name relative to it, content).
    pub(crate) fn new(files: &[(&str, &str)]) -> Self {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let dir = std::env::temp_dir().join(format!(
            "ccgate-check-it-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let this = Self { dir };
        for (name, text) in files {
            this.write(name, text);
        }
        this
    }

    /// Writes `text` to the file `name`, creating its directory.
    pub(crate) fn write(&self, name: &str, text: impl AsRef<[u8]>) {
        let path = self.path(name);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
    }

    /// The path of `name` in the directory.
    pub(crate) fn path(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }

    /// Runs `ccgate check` in the directory with `args` (so messages name
    /// files relative to it), and asserts that no secret value appears in
    /// its output.
    pub(crate) fn check(&self, args: &[&str]) -> Checked {
        let out = Command::new(env!("CARGO_BIN_EXE_ccgate"))
            .arg("check")
            .args(args)
            .current_dir(&self.dir)
            .output()
            .expect("ccgate runs");
        let checked = Checked {
            code: out.status.code(),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        };
        for secret in SECRETS {
            assert!(
                !checked.stdout.contains(secret) && !checked.stderr.contains(secret),
                "secret {secret:?} in the output of ccgate check: {checked:#?}"
            );
        }
        checked
    }

    /// `ccgate check -c ccgate.yaml`, which must succeed; its summary.
    pub(crate) fn valid(&self) -> String {
        let checked = self.check(&["-c", "ccgate.yaml"]);
        assert_eq!(checked.code, Some(0), "{checked:#?}");
        assert_eq!(checked.stderr, "", "{checked:#?}");
        checked.stdout
    }

    /// `ccgate check -c ccgate.yaml`, which must fail; its one-line error,
    /// without the `ccgate: invalid configuration: ` prefix.
    pub(crate) fn invalid(&self) -> String {
        let checked = self.check(&["-c", "ccgate.yaml"]);
        assert_eq!(checked.code, Some(1), "{checked:#?}");
        assert_eq!(checked.stdout, "", "{checked:#?}");
        let error = checked
            .stderr
            .strip_prefix("ccgate: invalid configuration: ")
            .unwrap_or_else(|| panic!("unexpected stderr: {}", checked.stderr));
        assert_eq!(error.lines().count(), 1, "{error}");
        error.trim_end().to_owned()
    }
}

impl Drop for ConfigDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Asserts that `haystack` holds every one of `needles`.
#[track_caller]
pub(crate) fn assert_contains(haystack: &str, needles: &[&str]) {
    for needle in needles {
        assert!(haystack.contains(needle), "{needle:?} not in:\n{haystack}");
    }
}
