//! `ccgate claims 'EXPR' [JSON_FILE|-]`.

use std::io::Read;
use std::path::Path;
use std::process::ExitCode;

use ccgate::claims::Rule;

/// Exit status for a malformed expression or document.
const MALFORMED: u8 = 2;

/// Evaluates `expression` against the JSON document at `path` (`-` is
/// standard input) and prints `true` or `false`.
pub(crate) fn run(expression: &str, path: &Path) -> ExitCode {
    let rule = match Rule::parse(expression) {
        Ok(rule) => rule,
        Err(err) => {
            eprintln!("ccgate: invalid claims expression {err}");
            for line in err.render(expression).lines() {
                eprintln!("  {line}");
            }
            return ExitCode::from(MALFORMED);
        }
    };
    let document = match read_document(path) {
        Ok(document) => document,
        Err(message) => {
            eprintln!("ccgate: {message}");
            return ExitCode::from(MALFORMED);
        }
    };
    let holds = rule.eval(&document);
    println!("{holds}");
    if holds {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

/// Reads and parses the document. Messages name the file and the
/// position, never the content, which may hold secrets.
fn read_document(path: &Path) -> Result<serde_json::Value, String> {
    let stdin = path.as_os_str() == "-";
    let name = if stdin {
        "standard input".to_owned()
    } else {
        path.display().to_string()
    };
    let mut text = Vec::new();
    let read = if stdin {
        std::io::stdin().read_to_end(&mut text).map(drop)
    } else {
        std::fs::read(path).map(|bytes| text = bytes)
    };
    read.map_err(|err| format!("cannot read {name}: {err}"))?;
    serde_json::from_slice(&text).map_err(|err| format!("invalid JSON in {name}: {err}"))
}
