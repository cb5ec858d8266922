//! `ccgate claims 'EXPR' [JSON_FILE|-]`: exit 0 true, 1 false, 2 malformed.

use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Output, Stdio};

const SAMPLE: &str = r#"{
  "active": true,
  "grp": "admin",
  "scope": "reader writer deploy",
  "referrer": "http://example.com/foo/bar",
  "areas": ["office", "home"],
  "user": {"name": "John Snow", "status": "undead"}
}"#;

/// Runs `ccgate claims` with `args`, feeding `stdin`.
fn claims(args: &[&str], stdin: &str) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_ccgate"))
        .arg("claims")
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("ccgate runs");
    // ccgate may exit before reading (a malformed expression): ignore EPIPE.
    let _ = child.stdin.take().unwrap().write_all(stdin.as_bytes());
    child.wait_with_output().unwrap()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// A file in a fresh temporary directory, removed with the value.
struct TempFile(PathBuf);

impl TempFile {
    fn new(name: &str, content: &str) -> Self {
        let dir = std::env::temp_dir().join(format!("ccgate-it-{}-{name}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join(name);
        std::fs::write(&path, content).unwrap();
        Self(path)
    }

    fn path(&self) -> &str {
        self.0.to_str().unwrap()
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(self.0.parent().unwrap());
    }
}

#[test]
fn every_seed_example_prints_true_and_exits_0() {
    let file = TempFile::new("seed.json", SAMPLE);
    for expression in [
        "Equals(`grp`, `admin`)",
        "Prefix(`referrer`, `http://example.com`)",
        "Contains(`referrer`, `/foo/`)",
        "Contains(`areas`, `home`)",
        "SplitContains(`scope`, ` `, `writer`)",
        "OneOf(`areas`, `office`, `lab`)",
        "Equals(`grp`, `admin`) && Equals(`active`, `true`)",
        "Equals(`grp`, `admin`) || Equals(`active`, `true`)",
        "!Equals(`grp`, `testers`)",
        "Equals(`user.name`, `John Snow`)",
    ] {
        let out = claims(&[expression, file.path()], "");
        assert_eq!(text(&out.stdout), "true\n", "{expression}");
        assert_eq!(out.status.code(), Some(0), "{expression}");
    }
}

#[test]
fn a_false_expression_prints_false_and_exits_1() {
    let out = claims(&["Equals(`grp`, `testers`)", "-"], SAMPLE);
    assert_eq!(text(&out.stdout), "false\n");
    assert_eq!(out.status.code(), Some(1));
}

#[test]
fn the_document_defaults_to_standard_input() {
    let out = claims(&["Contains(`areas`, `office`)"], SAMPLE);
    assert_eq!(text(&out.stdout), "true\n");
    assert_eq!(out.status.code(), Some(0));
}

#[test]
fn a_malformed_expression_exits_2_with_a_caret_under_the_fault() {
    let out = claims(&["Equals(`grp`, `admin`) && Equal(`a`, `b`)", "-"], SAMPLE);
    assert_eq!(out.status.code(), Some(2));
    assert!(out.stdout.is_empty());
    let err = text(&out.stderr);
    assert_eq!(
        err,
        "ccgate: invalid claims expression at column 27: unknown function `Equal`; did you mean `Equals`? \
         (known: Equals, Prefix, Contains, SplitContains, OneOf)\n\
         \x20 Equals(`grp`, `admin`) && Equal(`a`, `b`)\n\
         \x20                           ^^^^^\n"
    );
}

#[test]
fn an_unterminated_string_exits_2() {
    let out = claims(&["Equals(`grp`, `admin)"], SAMPLE);
    assert_eq!(out.status.code(), Some(2));
    let err = text(&out.stderr);
    assert!(err.contains("at column 15: unterminated string"), "{err}");
    assert!(
        err.ends_with(&format!("\n  {}^\n", " ".repeat(14))),
        "{err:?}"
    );
}

#[test]
fn invalid_json_exits_2_naming_the_position_not_the_content() {
    let out = claims(
        &["Equals(`grp`, `admin`)"],
        "{\"clientSecret\": \"hunter2\",",
    );
    assert_eq!(out.status.code(), Some(2));
    let err = text(&out.stderr);
    assert!(
        err.starts_with("ccgate: invalid JSON in standard input: "),
        "{err}"
    );
    assert!(err.contains("line 1 column"), "{err}");
    assert!(!err.contains("hunter2"), "{err}");
}

#[test]
fn an_unreadable_file_exits_2_naming_it() {
    let out = claims(&["Equals(`grp`, `admin`)", "/nonexistent/claims.json"], "");
    assert_eq!(out.status.code(), Some(2));
    let err = text(&out.stderr);
    assert!(
        err.starts_with("ccgate: cannot read /nonexistent/claims.json: "),
        "{err}"
    );
}

#[test]
fn a_file_that_is_not_json_exits_2_naming_it() {
    let file = TempFile::new("claims.yaml", "grp: admin\n");
    let out = claims(&["Equals(`grp`, `admin`)", file.path()], "");
    assert_eq!(out.status.code(), Some(2));
    let err = text(&out.stderr);
    assert!(
        err.starts_with(&format!("ccgate: invalid JSON in {}: ", file.path())),
        "{err}"
    );
}

#[test]
fn a_missing_expression_is_a_usage_error() {
    let out = claims(&[], "");
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("Usage"));
}
