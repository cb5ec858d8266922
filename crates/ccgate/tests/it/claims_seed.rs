//! Every example of the seed page (Traefik Hub's `oAuthClientCredentials`
//! documentation) against its sample document.

use ccgate::claims::Rule;
use serde_json::{Value, json};

/// The page's sample document, with the `user` object of its nested-claims
/// section (the page omits the `:` after `"user"`).
fn sample() -> Value {
    json!({
        "active": true,
        "grp": "admin",
        "scope": "reader writer deploy",
        "referrer": "http://example.com/foo/bar",
        "areas": ["office", "home"],
        "user": {"name": "John Snow", "status": "undead"}
    })
}

fn holds(expression: &str, document: &Value) -> bool {
    Rule::parse(expression)
        .unwrap_or_else(|err| panic!("{expression}: {err}"))
        .eval(document)
}

#[test]
fn every_function_example_holds() {
    let examples = [
        "Equals(`grp`, `admin`)",
        // The page shows `http://example.com\`: a stray backslash from its
        // rendering. The intended value is `http://example.com`.
        "Prefix(`referrer`, `http://example.com`)",
        "Contains(`referrer`, `/foo/`)",
        "Contains(`areas`, `home`)",
        "SplitContains(`scope`, ` `, `writer`)",
        "OneOf(`areas`, `office`, `lab`)",
    ];
    for example in examples {
        assert!(holds(example, &sample()), "{example}");
    }
}

#[test]
fn every_operator_example_holds() {
    let examples = [
        "Equals(`grp`, `admin`) && Equals(`active`, `true`)",
        "Equals(`grp`, `admin`) || Equals(`active`, `true`)",
        "!Equals(`grp`, `testers`)",
    ];
    for example in examples {
        assert!(holds(example, &sample()), "{example}");
    }
}

#[test]
fn the_prefix_example_as_rendered_is_a_literal_backslash() {
    // In a backtick raw string a backslash is a backslash, so the page's
    // text, taken literally, asks for a prefix the document does not have.
    assert!(!holds(
        r"Prefix(`referrer`, `http://example.com\`)",
        &sample()
    ));
}

#[test]
fn nested_claims_walk_objects() {
    assert!(holds("Equals(`user.name`, `John Snow`)", &sample()));
    assert!(holds("Equals(`user.status`, `undead`)", &sample()));
    assert!(!holds("Equals(`user.name`, `Jon Snow`)", &sample()));
}

#[test]
fn escaped_dots_and_backslashes_address_literal_keys() {
    let document = json!({"a.b": "dot", "c\\d": "backslash", "a": {"b": "nested"}});
    assert!(holds(r"Equals(`a\.b`, `dot`)", &document));
    assert!(holds(r"Equals(`c\\d`, `backslash`)", &document));
    assert!(holds("Equals(`a.b`, `nested`)", &document));
}

#[test]
fn the_advanced_example_holds() {
    assert!(holds("Equals(`grp`, `admin`)", &sample()));
}

#[test]
fn negations_of_the_examples_fail() {
    let examples = [
        "!Equals(`grp`, `admin`)",
        "!Contains(`areas`, `home`)",
        "Equals(`grp`, `testers`)",
        "OneOf(`areas`, `lab`, `garage`)",
        "SplitContains(`scope`, ` `, `admin`)",
    ];
    for example in examples {
        assert!(!holds(example, &sample()), "{example}");
    }
}
