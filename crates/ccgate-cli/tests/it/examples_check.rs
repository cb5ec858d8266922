//! Every ccgate configuration under `examples/` is valid as written:
//! `ccgate check -c FILE` exits 0 on each.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::support::examples;

/// Every `ccgate.yaml` under `dir` (templates such as `ccgate.yaml.in`
/// excepted).
fn configurations(dir: &Path, found: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("examples directory") {
        let path = entry.expect("entry").path();
        if path.is_dir() {
            configurations(&path, found);
        } else if path.file_name().is_some_and(|name| name == "ccgate.yaml") {
            found.push(path);
        }
    }
}

#[test]
fn every_example_configuration_passes_check() {
    let mut found = Vec::new();
    configurations(&examples::dir(), &mut found);
    found.sort();
    let names: Vec<String> = found
        .iter()
        .map(|p| {
            p.strip_prefix(examples::dir())
                .expect("inside")
                .display()
                .to_string()
        })
        .collect();
    for expected in [
        "application-level/ccgate.yaml",
        "gateway-level/ccgate.yaml",
        "grpc/ccgate.yaml",
        "kubernetes/ccgate.yaml",
        "forward-auth/caddy/ccgate.yaml",
        "forward-auth/nginx/ccgate.yaml",
        "forward-auth/traefik/ccgate.yaml",
        "egress/ccgate.yaml",
    ] {
        assert!(
            names.iter().any(|n| n == expected),
            "{expected} in {names:?}"
        );
    }
    for (path, name) in found.iter().zip(&names) {
        let output = Command::new(env!("CARGO_BIN_EXE_ccgate"))
            .arg("check")
            .arg("-c")
            .arg(path)
            .output()
            .expect("ccgate runs");
        assert!(
            output.status.success(),
            "ccgate check -c examples/{name}: {}\n{}",
            output.status,
            String::from_utf8_lossy(&output.stderr)
        );
        assert!(!output.stdout.is_empty(), "examples/{name}: no summary");
    }
}
