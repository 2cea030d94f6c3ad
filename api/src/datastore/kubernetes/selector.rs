//! Tabby selectors as Kubernetes label selectors, where the API server can evaluate
//! them: a conjunction of `k=v`, `k!=v`, `k in (..)`, `k notin (..)`, `k` and `!k`.
//! Calico's grammar is richer (`||`, negated groups); such selectors are filtered
//! client-side, and the meaning is the same either way: Kubernetes' `!=` and `notin`
//! match objects without the label, as tabby's do.

use std::collections::BTreeSet;

use crate::selector::Expr;

/// The label selector the API server evaluates exactly as `expr`, or `None` when the
/// selector must be evaluated by the client. `Some("")` selects everything.
pub(super) fn label_selector(expr: &Expr) -> Option<String> {
    let mut terms = Vec::new();
    conjunction(expr, &mut terms)?;
    Some(terms.join(","))
}

fn conjunction(expr: &Expr, terms: &mut Vec<String>) -> Option<()> {
    match expr {
        Expr::All => {}
        Expr::And(a, b) => {
            conjunction(a, terms)?;
            conjunction(b, terms)?;
        }
        Expr::Has(key) => terms.push(key.clone()),
        Expr::Not(inner) => match &**inner {
            Expr::Has(key) => terms.push(format!("!{key}")),
            _ => return None,
        },
        Expr::Equal(key, value) => terms.push(format!("{key}={}", plain(value)?)),
        Expr::NotEqual(key, value) => terms.push(format!("{key}!={}", plain(value)?)),
        Expr::In(key, values) => terms.push(format!("{key} in ({})", set(values)?)),
        Expr::NotIn(key, values) => terms.push(format!("{key} notin ({})", set(values)?)),
        Expr::Or(..) => return None,
    }
    Some(())
}

/// A value the label selector grammar can carry (a valid label value); any other
/// cannot be a label's value, and the API server would reject the selector.
fn plain(value: &str) -> Option<&str> {
    let edge = |c: char| c.is_ascii_alphanumeric();
    let valid = value.is_empty()
        || (value.len() <= 63
            && value.starts_with(edge)
            && value.ends_with(edge)
            && value
                .chars()
                .all(|c| edge(c) || matches!(c, '-' | '_' | '.')));
    valid.then_some(value)
}

fn set(values: &BTreeSet<String>) -> Option<String> {
    if values.is_empty() {
        return None;
    }
    let values: Option<Vec<&str>> = values.iter().map(|v| plain(v)).collect();
    Some(values?.join(","))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::selector::Selector;

    fn translated(text: &str) -> Option<String> {
        label_selector(text.parse::<Selector>().unwrap().expr())
    }

    #[test]
    fn conjunctions_become_label_selectors() {
        assert_eq!(translated("all()").as_deref(), Some(""));
        assert_eq!(
            translated(r#"zone == "a" && rack != "r1" && has(gpu) && !has(spot)"#).as_deref(),
            Some("zone=a,rack!=r1,gpu,!spot")
        );
        assert_eq!(
            translated(r#"zone in {"a", "b"} && tier not in {"x"}"#).as_deref(),
            Some("zone in (a,b),tier notin (x)")
        );
    }

    #[test]
    fn what_label_selectors_cannot_say_is_left_to_the_client() {
        assert_eq!(translated(r#"zone == "a" || zone == "b""#), None);
        assert_eq!(translated(r#"!(zone == "a")"#), None);
        assert_eq!(translated(r#"zone == "east west""#), None);
        assert_eq!(translated("zone in {}"), None);
    }
}
