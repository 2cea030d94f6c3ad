use std::collections::BTreeMap;

use proptest::prelude::*;

use super::*;

fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

fn selects(selector: &str, pairs: &[(&str, &str)]) -> bool {
    selector
        .parse::<Selector>()
        .unwrap_or_else(|e| panic!("{e}"))
        .matches(&labels(pairs))
}

#[test]
fn each_operator_selects_what_calico_documents() {
    let rack = [("rack", "a"), ("zone", "east")];
    assert!(selects("all()", &[]));
    assert!(selects("rack == 'a'", &rack));
    assert!(!selects("rack == \"b\"", &rack));
    assert!(selects("rack != \"b\"", &rack));
    assert!(selects("missing != \"b\"", &rack));
    assert!(selects("rack in {\"a\", \"b\"}", &rack));
    assert!(!selects("missing in {\"a\"}", &rack));
    assert!(selects("rack not in {\"b\"}", &rack));
    assert!(selects("missing not in {\"b\"}", &rack));
    assert!(!selects("rack in {}", &rack));
    assert!(selects("has(zone)", &rack));
    assert!(selects("!has(spine)", &rack));
    assert!(selects("has(zone) && rack == 'a'", &rack));
    assert!(selects("has(spine) || rack == 'a'", &rack));
    assert!(!selects("!(has(zone) && rack == 'a')", &rack));
    assert!(selects(
        "example.com/tier == 'edge'",
        &[("example.com/tier", "edge")]
    ));
}

#[test]
fn and_binds_tighter_than_or() {
    // Read as `has(a) || (has(b) && has(c))`.
    assert!(selects("has(a) || has(b) && has(c)", &[("a", "")]));
    assert!(!selects("(has(a) || has(b)) && has(c)", &[("a", "")]));
}

#[test]
fn errors_name_the_column_and_what_was_expected() {
    let cases = [
        ("rack == ", 9, "a quoted value"),
        ("rack = 'a'", 6, "==, !=, in or not in after the label key"),
        ("has(rack", 9, "a closing ) after the key in has("),
        ("rack in {'a' 'b'}", 14, ", or } in the set of values"),
        ("rack == 'a' extra", 13, "&&, || or the end of the selector"),
        ("", 1, "a label key"),
        ("(has(a)", 8, "a closing )"),
        ("rack not {'a'}", 10, "in after not"),
    ];
    for (input, column, expected) in cases {
        let error = input.parse::<Selector>().unwrap_err();
        assert_eq!(
            (error.column, error.expected),
            (column, expected),
            "input {input:?}: {error}"
        );
    }
    let error = "rack == ".parse::<Selector>().unwrap_err();
    assert_eq!(
        error.to_string(),
        "selector \"rack == \": at column 9: expected a quoted value"
    );
}

#[test]
fn display_is_canonical() {
    let selector: Selector = "!has(a)&&(b=='x'||c not in{'z','y'})".parse().unwrap();
    assert_eq!(
        selector.to_string(),
        "!has(a) && (b == \"x\" || c not in {\"y\", \"z\"})"
    );
}

fn key() -> impl Strategy<Value = String> {
    "[a-z][a-z0-9./_-]{0,6}"
}

fn value() -> impl Strategy<Value = String> {
    "[a-zA-Z0-9 '\"._-]{0,5}".prop_filter("one kind of quote", |v| {
        !(v.contains('"') && v.contains('\''))
    })
}

fn expr() -> impl Strategy<Value = Expr> {
    let leaf = prop_oneof![
        Just(Expr::All),
        key().prop_map(Expr::Has),
        (key(), value()).prop_map(|(k, v)| Expr::Equal(k, v)),
        (key(), value()).prop_map(|(k, v)| Expr::NotEqual(k, v)),
        (key(), prop::collection::btree_set(value(), 0..3)).prop_map(|(k, s)| Expr::In(k, s)),
        (key(), prop::collection::btree_set(value(), 0..3)).prop_map(|(k, s)| Expr::NotIn(k, s)),
    ];
    leaf.prop_recursive(4, 24, 2, |inner| {
        prop_oneof![
            inner.clone().prop_map(|e| Expr::Not(Box::new(e))),
            (inner.clone(), inner.clone()).prop_map(|(a, b)| Expr::And(Box::new(a), Box::new(b))),
            (inner.clone(), inner).prop_map(|(a, b)| Expr::Or(Box::new(a), Box::new(b))),
        ]
    })
}

proptest! {
    #[test]
    fn rendering_parses_back_to_the_same_tree(expr in expr()) {
        let selector = Selector::from(expr);
        let text = selector.to_string();
        prop_assert_eq!(text.parse::<Selector>(), Ok(selector), "{}", text);
    }

    #[test]
    fn the_parser_never_panics(text in "[a-z(){}!=&|,' \"]{0,24}") {
        let _ = text.parse::<Selector>();
    }

    #[test]
    fn negation_selects_the_complement(
        expr in expr(),
        pairs in prop::collection::btree_map(key(), value(), 0..4),
    ) {
        let selector = Selector::from(expr.clone());
        let negated = Selector::from(Expr::Not(Box::new(expr)));
        prop_assert_ne!(selector.matches(&pairs), negated.matches(&pairs));
    }
}

/// Inputs that overflowed the parser's stack (and the agent, ipam and controller with
/// it): each must be a clear error naming the limit, not a crash.
#[test]
fn hardening_deeply_nested_selectors_are_refused_not_a_stack_overflow() {
    for text in [
        "!".repeat(200_000) + "all()",
        "(".repeat(200_000) + "all()" + &")".repeat(200_000),
        "!(".repeat(100_000) + "all()" + &")".repeat(100_000),
    ] {
        let error = text.parse::<Selector>().unwrap_err();
        assert!(
            error.expected.contains("nesting") || error.expected.contains("characters"),
            "{}",
            error.expected
        );
    }
    let nested = "!(".repeat(MAX_DEPTH) + "all()" + &")".repeat(MAX_DEPTH);
    let error = nested.parse::<Selector>().unwrap_err();
    assert_eq!(
        error.expected,
        "at most 32 levels of nesting (! and parentheses)"
    );
    let allowed = "!(".repeat(MAX_DEPTH / 2 - 1) + "all()" + &")".repeat(MAX_DEPTH / 2 - 1);
    assert!(allowed.parse::<Selector>().is_ok());
}

#[test]
fn hardening_a_selector_longer_than_the_limit_is_refused_before_parsing() {
    let long = vec!["a == 'b'"; MAX_LENGTH / 8].join(" && ");
    let error = long.parse::<Selector>().unwrap_err();
    assert_eq!(
        (error.column, error.expected),
        (MAX_LENGTH + 1, "at most 4096 characters")
    );
    // A long chain within the limit parses, matches and renders (all recursive).
    let chain = vec!["a == 'b'"; 300].join(" && ");
    let selector: Selector = chain.parse().unwrap();
    assert!(selector.matches(&labels(&[("a", "b")])));
    assert_eq!(selector.to_string().parse::<Selector>().unwrap(), selector);
}
