//! Property tests of the parser: no input makes it panic, and printing a
//! tree then parsing the text gives the same tree.

use ccgate::claims::{self, Rule};
use ccgate::expr::{self, Arg, Call, Expr, Span};
use proptest::prelude::*;

/// The tree with every span zeroed, so trees parsed from different texts
/// compare by structure.
fn without_spans(tree: Expr<Call>) -> Expr<Call> {
    tree.try_map(&mut |call: Call| {
        Ok::<_, std::convert::Infallible>(Call {
            span: Span::default(),
            args: call
                .args
                .into_iter()
                .map(|arg| Arg {
                    span: Span::default(),
                    ..arg
                })
                .collect(),
            ..call
        })
    })
    .unwrap_or_else(|never| match never {})
}

/// Any string, weighted towards text made of the language's own tokens so
/// that deep parser states are reached.
fn source() -> impl Strategy<Value = String> {
    let token = prop_oneof![
        Just("Equals".to_owned()),
        Just("OneOf".to_owned()),
        Just("SplitContains".to_owned()),
        Just("Nope".to_owned()),
        Just("(".to_owned()),
        Just(")".to_owned()),
        Just(",".to_owned()),
        Just("&&".to_owned()),
        Just("||".to_owned()),
        Just("&".to_owned()),
        Just("!".to_owned()),
        Just(" ".to_owned()),
        Just("\n".to_owned()),
        "`[a-z.\\\\é]{0,4}`?",
        "\"([a-z]|\\\\[nrtu\"\\\\x]|\\\\u[0-9a-fA-F]{0,5}){0,4}\"?",
        any::<char>().prop_map(String::from),
    ];
    prop_oneof![
        1 => any::<String>(),
        4 => prop::collection::vec(token, 0..40).prop_map(|tokens| tokens.concat()),
    ]
}

fn call() -> impl Strategy<Value = Call> {
    let function = prop::sample::select(claims::FUNCTIONS);
    (function, prop::collection::vec(any::<String>(), 3..6)).prop_map(|(function, mut values)| {
        let n = match function.arity {
            expr::Arity::Exactly(n) => n,
            expr::Arity::AtLeast(n) => values.len().max(n),
        };
        values.truncate(n);
        Call {
            function,
            args: values
                .into_iter()
                .map(|value| Arg {
                    value,
                    span: Span::default(),
                })
                .collect(),
            span: Span::default(),
        }
    })
}

/// Trees as the parser builds them: `And`/`Or` with two or more operands.
fn tree() -> impl Strategy<Value = Expr<Call>> {
    call()
        .prop_map(Expr::Leaf)
        .prop_recursive(6, 48, 4, |inner| {
            prop_oneof![
                inner.clone().prop_map(|e| Expr::Not(Box::new(e))),
                prop::collection::vec(inner.clone(), 2..4).prop_map(Expr::And),
                prop::collection::vec(inner, 2..4).prop_map(Expr::Or),
            ]
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2_000))]

    #[test]
    fn no_input_makes_the_parser_panic(source in source()) {
        match Rule::parse(&source) {
            Ok(rule) => {
                // Evaluation does not panic either, and negation inverts it.
                let document = serde_json::json!({"a": "b", "areas": ["x"], "scope": "x y"});
                if let Ok(negated) = Rule::parse(&format!("!({source})")) {
                    prop_assert_eq!(negated.eval(&document), !rule.eval(&document));
                }
            }
            Err(err) => {
                let rendered = err.render(&source);
                prop_assert!(rendered.contains('^'));
                prop_assert!(err.span.start <= source.len());
                let _ = err.to_string();
            }
        }
    }

    #[test]
    fn printing_then_parsing_gives_the_same_tree(tree in tree()) {
        let text = tree.to_string();
        let parsed = expr::parse(&text, claims::FUNCTIONS)
            .map_err(|err| TestCaseError::fail(format!("{text:?}: {err}")))?;
        prop_assert_eq!(without_spans(parsed), tree);
    }

    #[test]
    fn parsed_trees_print_to_a_fixed_point(source in source()) {
        if let Ok(tree) = expr::parse(&source, claims::FUNCTIONS) {
            let printed = tree.to_string();
            let reparsed = expr::parse(&printed, claims::FUNCTIONS).expect("printed text parses");
            prop_assert_eq!(reparsed.to_string(), printed);
            prop_assert_eq!(without_spans(reparsed), without_spans(tree));
        }
    }
}
