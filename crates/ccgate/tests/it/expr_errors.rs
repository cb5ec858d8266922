//! Malformed expressions: every error names its position and reason.

use ccgate::claims::Rule;
use ccgate::expr::ErrorKind;

/// (expression, column of the fault, words the message must contain)
#[rustfmt::skip]
const CASES: &[(&str, usize, &str)] = &[
    ("", 1, "empty expression"),
    ("   \t ", 1, "empty expression"),
    ("Equal(`grp`, `admin`)", 1, "unknown function `Equal`; did you mean `Equals`? (known: Equals, Prefix, Contains, SplitContains, OneOf)"),
    ("Bogus(`grp`, `admin`)", 1, "unknown function `Bogus` (known: Equals,"),
    ("equals(`grp`, `admin`)", 1, "did you mean `Equals`?"),
    ("Equals(`grp`)", 1, "`Equals` takes 2 arguments, found 1"),
    ("Equals(`a`, `b`, `c`)", 1, "`Equals` takes 2 arguments, found 3"),
    ("OneOf(`areas`)", 1, "`OneOf` takes at least 2 arguments, found 1"),
    ("SplitContains(`a`, `b`)", 1, "`SplitContains` takes 3 arguments, found 2"),
    ("Equals(`grp`, `admin)", 15, "unterminated string: no closing `"),
    ("Equals(`grp`, \"admin)", 15, "unterminated string: no closing \""),
    ("Equals(`grp`, \"ad\\min\")", 18, "invalid escape"),
    ("Equals(`grp`, `admin`) & Equals(`a`, `b`)", 24, "unexpected character '&'; did you mean `&&`?"),
    ("Equals(`grp`, `admin`) | Equals(`a`, `b`)", 24, "did you mean `||`?"),
    ("Equals('grp', 'admin')", 8, "quote arguments with ` or \""),
    ("Equals(`grp`, `admin`) Equals(`a`, `b`)", 24, "unexpected `Equals` after a complete expression"),
    ("Equals(`grp`, `admin`))", 23, "this `)` closes nothing"),
    ("(Equals(`grp`, `admin`)", 1, "this `(` is never closed"),
    ("((Equals(`grp`, `admin`))", 1, "this `(` is never closed"),
    ("Equals(`grp`, `admin`", 7, "this `(` is never closed"),
    ("Equals(`grp` `admin`)", 14, "expected `,` or `)`, found a string"),
    ("Equals(`grp`, )", 15, "expected a string argument"),
    ("Equals(grp, `admin`)", 8, "expected a string argument in ` or \", found `grp`"),
    ("Equals", 7, "expected `(` after the function name, found the end of the expression"),
    ("Equals(`a`, `b`) &&", 20, "expected a function call or `(`, found the end of the expression"),
    ("&& Equals(`a`, `b`)", 1, "expected a function call or `(`, found `&&`"),
    ("Equals(`a`, `b`) || || Equals(`a`, `b`)", 21, "found `||`"),
    ("()", 2, "expected a function call or `(`, found `)`"),
    ("!", 2, "found the end of the expression"),
    ("`grp`", 1, "expected a function call or `(`, found a string"),
    ("(Equals(`a`, `b`) Equals(`a`, `b`))", 19, "expected `&&`, `||` or `)`"),
    ("Equals(``, `b`)", 8, "empty key path"),
    ("Equals(`a..b`, `b`)", 8, "empty key in key path"),
    ("Equals(`a\\b`, `b`)", 8, "invalid escape in key path"),
    ("SplitContains(`scope`, ``, `x`)", 24, "empty separator"),
    ("Equals(`é`, `b`) && Equal(`a`, `b`)", 21, "unknown function `Equal`"),
];

#[test]
fn every_error_names_position_and_reason() {
    let mut failures = Vec::new();
    for (expression, column, words) in CASES {
        match Rule::parse(expression) {
            Ok(_) => failures.push(format!("{expression:?} parsed")),
            Err(err) => {
                let message = err.to_string();
                let expected_prefix = format!("at column {column}: ");
                if !message.starts_with(&expected_prefix) || !message.contains(words) {
                    failures.push(format!(
                        "{expression:?}: got {message:?}, want column {column} and {words:?}"
                    ));
                }
            }
        }
    }
    assert!(failures.is_empty(), "{failures:#?}");
}

#[test]
fn too_deep_nesting_is_an_error_not_a_stack_overflow() {
    let depth = ccgate::expr::MAX_DEPTH + 1;
    for expression in [
        format!("{}Equals(`a`, `b`){}", "(".repeat(depth), ")".repeat(depth)),
        format!("{}Equals(`a`, `b`)", "!".repeat(100_000)),
        "(".repeat(100_000),
    ] {
        let err = Rule::parse(&expression).unwrap_err();
        assert_eq!(
            err.kind,
            ErrorKind::TooDeep {
                max: ccgate::expr::MAX_DEPTH
            }
        );
    }
}

#[test]
fn long_flat_chains_parse_and_evaluate() {
    let expression = vec!["Equals(`a`, `b`)"; 50_000].join(" && ");
    let rule = Rule::parse(&expression).unwrap();
    assert!(rule.eval(&serde_json::json!({"a": "b"})));
}

#[test]
fn render_draws_a_caret_under_the_fault() {
    let expression = "Equals(`grp`, `admin`) && Equal(`a`, `b`)";
    let err = Rule::parse(expression).unwrap_err();
    assert_eq!(
        err.render(expression),
        "Equals(`grp`, `admin`) && Equal(`a`, `b`)\n                          ^^^^^"
    );
}

#[test]
fn render_counts_characters_not_bytes() {
    let expression = "Equals(`é`, `ü`) && x";
    let err = Rule::parse(expression).unwrap_err();
    assert_eq!(err.column(), 21);
    assert_eq!(
        err.render(expression),
        format!("{expression}\n{}^", " ".repeat(20))
    );
}

#[test]
fn multi_line_expressions_name_line_and_column() {
    let expression = "Equals(`grp`, `admin`)\n  && Prefix(`a`)";
    let err = Rule::parse(expression).unwrap_err();
    assert_eq!(
        err.to_string(),
        "at line 2, column 6: `Prefix` takes 2 arguments, found 1"
    );
    assert_eq!(err.render(expression), "  && Prefix(`a`)\n     ^^^^^^^^^^^");
}

#[test]
fn a_premature_end_points_past_the_last_character() {
    let expression = "Equals(`a`, `b`) ||";
    let err = Rule::parse(expression).unwrap_err();
    assert_eq!(
        err.render(expression),
        "Equals(`a`, `b`) ||\n                   ^"
    );
}
