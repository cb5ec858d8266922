//! Edge cases of claims evaluation, as a table.

use ccgate::claims::Rule;
use serde_json::{Value, json};

fn document() -> Value {
    json!({
        "str": "abc",
        "empty": "",
        "null": null,
        "obj": {"inner": {"deep": {"deeper": {"deepest": "bottom"}}}, "n": 1},
        "int": 1_700_000_000,
        "neg": -5,
        "float": 0.25,
        "big": u64::MAX,
        "t": true,
        "f": false,
        "arr": ["x", 2, true, null, {"k": "v"}],
        "nums": [1, 2, 3],
        "scope": "read  , write,admin ,",
        "spaces": "  padded  ",
        "ключ": "значение",
        "emoji🙂": "yes",
        "a.b": {"c": "dotted parent"},
        "back\\slash": "bs",
        "quote\"d": "q",
    })
}

#[rustfmt::skip]
const CASES: &[(&str, bool)] = &[
    // missing keys, nulls and objects make every function false
    ("Equals(`missing`, ``)", false),
    ("!Equals(`missing`, ``)", true),
    ("Equals(`null`, `null`)", false),
    ("Equals(`null`, ``)", false),
    ("Prefix(`null`, ``)", false),
    ("Contains(`null`, ``)", false),
    ("OneOf(`null`, `null`)", false),
    ("Equals(`obj`, `{}`)", false),
    ("Prefix(`obj`, ``)", false),
    ("Contains(`obj`, `n`)", false),
    ("OneOf(`obj`, `n`)", false),
    ("SplitContains(`obj`, `,`, `n`)", false),
    // nested misses
    ("Equals(`obj.missing.deeper`, `x`)", false),
    ("Equals(`str.length`, `3`)", false),
    ("Equals(`arr.0`, `x`)", false),
    ("Equals(`obj.inner.deep.deeper.deepest`, `bottom`)", true),
    ("Equals(`obj.n`, `1`)", true),
    // strings
    ("Equals(`str`, `abc`)", true),
    ("Equals(`str`, `ABC`)", false),
    ("Equals(`empty`, ``)", true),
    ("Prefix(`str`, ``)", true),
    ("Prefix(`str`, `ab`)", true),
    ("Prefix(`str`, `abcd`)", false),
    ("Contains(`str`, `bc`)", true),
    ("Contains(`str`, ``)", true),
    ("Contains(`str`, `cb`)", false),
    // numbers compare by rendering; Prefix and Contains want strings
    ("Equals(`int`, `1700000000`)", true),
    ("Equals(`int`, `1.7e9`)", false),
    ("Equals(`neg`, `-5`)", true),
    ("Equals(`float`, `0.25`)", true),
    ("Equals(`float`, `.25`)", false),
    ("Equals(`big`, `18446744073709551615`)", true),
    ("Prefix(`int`, `17`)", false),
    ("Contains(`int`, `700`)", false),
    ("OneOf(`int`, `1`, `1700000000`)", true),
    // booleans render as true / false
    ("Equals(`t`, `true`)", true),
    ("Equals(`t`, `True`)", false),
    ("Equals(`f`, `false`)", true),
    ("Equals(`t`, `1`)", false),
    ("OneOf(`f`, `true`, `false`)", true),
    // arrays: Contains and OneOf look at scalar elements; Equals wants a scalar
    ("Contains(`arr`, `x`)", true),
    ("Contains(`arr`, `2`)", true),
    ("Contains(`arr`, `true`)", true),
    ("Contains(`arr`, `null`)", false),
    ("Contains(`arr`, `v`)", false),
    ("Equals(`arr`, `x`)", false),
    ("Prefix(`arr`, `x`)", false),
    ("OneOf(`nums`, `4`, `3`)", true),
    ("OneOf(`nums`, `4`, `5`)", false),
    ("SplitContains(`arr`, `,`, `x`)", false),
    // SplitContains: exact separator, pieces trimmed of spaces
    ("SplitContains(`scope`, `,`, `read`)", true),
    ("SplitContains(`scope`, `,`, `write`)", true),
    ("SplitContains(`scope`, `,`, `admin`)", true),
    ("SplitContains(`scope`, `,`, ``)", true),
    ("SplitContains(`scope`, `, `, `write`)", false),
    ("SplitContains(`scope`, ` ,`, `write`)", false),
    ("SplitContains(`scope`, `,`, `wr`)", false),
    ("SplitContains(`spaces`, `;`, `padded`)", true),
    ("SplitContains(`int`, `0`, `17`)", false),
    ("Equals(`spaces`, `padded`)", false),
    // unicode keys and values, escapes
    ("Equals(`ключ`, `значение`)", true),
    ("Equals(`emoji🙂`, \"yes\")", true),
    ("Equals(`a\\.b.c`, `dotted parent`)", true),
    ("Equals(`back\\\\slash`, `bs`)", true),
    ("Equals(\"quote\\\"d\", \"q\")", true),
    ("Equals(`str`, \"\\u0061bc\")", true),
    // white space anywhere between tokens
    ("  Equals(\t`str` ,\n`abc`  )  ", true),
    ("!\n(\nEquals(`t`,`true`)\n)", false),
    // precedence: ! over && over ||
    ("Equals(`t`, `true`) || Equals(`t`, `false`) && Equals(`f`, `true`)", true),
    ("(Equals(`t`, `true`) || Equals(`t`, `false`)) && Equals(`f`, `true`)", false),
    ("!Equals(`t`, `true`) && Equals(`f`, `false`)", false),
    ("!(Equals(`t`, `true`) && Equals(`f`, `true`))", true),
    ("Equals(`f`, `true`) && Equals(`t`, `true`) || Equals(`str`, `abc`)", true),
    ("Equals(`f`, `true`) && (Equals(`t`, `true`) || Equals(`str`, `abc`))", false),
    ("!!Equals(`t`, `true`)", true),
];

#[test]
fn table() {
    let document = document();
    let mut failures = Vec::new();
    for (expression, expected) in CASES {
        let rule = Rule::parse(expression).unwrap_or_else(|err| panic!("{expression}: {err}"));
        if rule.eval(&document) != *expected {
            failures.push(format!("{expression} should be {expected}"));
        }
    }
    assert!(failures.is_empty(), "{failures:#?}");
}

#[test]
fn deep_nesting_within_the_limit_evaluates() {
    let depth = ccgate::expr::MAX_DEPTH;
    let expression = format!(
        "{}Equals(`t`, `true`){}",
        "(".repeat(depth),
        ")".repeat(depth)
    );
    assert!(Rule::parse(&expression).unwrap().eval(&document()));
    let negations = format!("{}Equals(`t`, `true`)", "!".repeat(depth));
    assert!(
        Rule::parse(&negations).unwrap().eval(&document()),
        "an even number of `!`"
    );
}

#[test]
fn deep_documents_evaluate() {
    let mut document = json!("bottom");
    let mut path = Vec::new();
    for i in 0..200 {
        document = json!({ format!("k{i}"): document });
        path.push(format!("k{i}"));
    }
    path.reverse();
    let expression = format!("Equals(`{}`, `bottom`)", path.join("."));
    assert!(Rule::parse(&expression).unwrap().eval(&document));
}

#[test]
fn a_non_object_document_has_no_claims() {
    let rule = Rule::parse("!Equals(`a`, `b`)").unwrap();
    for document in [json!(null), json!([1]), json!("a"), json!(3)] {
        assert!(rule.eval(&document), "{document}");
    }
}
