//! Fuzzes the expression parser, its printer and the claims rules.
//!
//! Input: UTF-8 text `EXPR` or `EXPR\0JSON` (split at the first NUL byte).
//!
//! - `expr::parse(EXPR, claims::FUNCTIONS)`: on error, `render` and
//!   `Display` of the error must not panic; on success, the tree printed
//!   with `Display` must parse back to the same tree (spans aside), and
//!   printing that tree again must give the same text (a fixed point).
//! - `claims::Rule::parse(EXPR)`: when it parses and JSON is a valid
//!   document, `rule.eval(&doc)` must not panic.

#![no_main]

use ccgate::claims::{self, Rule};
use ccgate::expr::{self, Call, Expr};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(input) = std::str::from_utf8(data) else {
        return;
    };
    let (source, document) = input.split_once('\0').unwrap_or((input, ""));

    match expr::parse(source, claims::FUNCTIONS) {
        Err(err) => {
            let _ = err.render(source);
            let _ = err.to_string();
        }
        Ok(tree) => {
            let printed = tree.to_string();
            let reparsed = match expr::parse(&printed, claims::FUNCTIONS) {
                Ok(reparsed) => reparsed,
                Err(err) => panic!(
                    "printed tree does not parse back\nsource:  {source:?}\nprinted: {printed:?}\nerror:   {err}\n{}",
                    err.render(&printed)
                ),
            };
            assert!(
                same_tree(&tree, &reparsed),
                "printed tree parses to a different tree\nsource:  {source:?}\nprinted: {printed:?}\nbefore:  {tree:?}\nafter:   {reparsed:?}"
            );
            let reprinted = reparsed.to_string();
            assert_eq!(
                printed, reprinted,
                "printing is not a fixed point (source: {source:?})"
            );
        }
    }

    if let Ok(rule) = Rule::parse(source)
        && let Ok(doc) = serde_json::from_str::<serde_json::Value>(document)
    {
        let _ = rule.eval(&doc);
    }
});

/// Whether two trees are equal when every `span` field is ignored.
fn same_tree(a: &Expr<Call>, b: &Expr<Call>) -> bool {
    match (a, b) {
        (Expr::Leaf(a), Expr::Leaf(b)) => same_call(a, b),
        (Expr::Not(a), Expr::Not(b)) => same_tree(a, b),
        (Expr::And(a), Expr::And(b)) | (Expr::Or(a), Expr::Or(b)) => {
            a.len() == b.len() && a.iter().zip(b).all(|(a, b)| same_tree(a, b))
        }
        _ => false,
    }
}

fn same_call(a: &Call, b: &Call) -> bool {
    a.function == b.function
        && a.args.len() == b.args.len()
        && a.args.iter().zip(&b.args).all(|(a, b)| a.value == b.value)
}
