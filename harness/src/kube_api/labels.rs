//! Kubernetes label selectors as the API server parses them: comma-separated
//! requirements `k=v`, `k==v`, `k!=v`, `k in (a,b)`, `k notin (a,b)`, `k`, `!k`, all of
//! which must hold. `!=` and `notin` match objects without the label.

use std::collections::BTreeMap;

#[derive(Debug, Clone, PartialEq, Eq)]
enum Requirement {
    Exists(String),
    NotExists(String),
    Equals(String, String),
    NotEquals(String, String),
    In(String, Vec<String>),
    NotIn(String, Vec<String>),
}

/// A parsed selector; the empty one matches everything.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LabelSelector(Vec<Requirement>);

impl LabelSelector {
    pub fn parse(text: &str) -> Result<Self, String> {
        split_requirements(text)?
            .into_iter()
            .map(requirement)
            .collect::<Result<_, _>>()
            .map(Self)
    }

    pub fn matches(&self, labels: &BTreeMap<String, String>) -> bool {
        self.0.iter().all(|r| match r {
            Requirement::Exists(k) => labels.contains_key(k),
            Requirement::NotExists(k) => !labels.contains_key(k),
            Requirement::Equals(k, v) => labels.get(k) == Some(v),
            Requirement::NotEquals(k, v) => labels.get(k) != Some(v),
            Requirement::In(k, vs) => labels.get(k).is_some_and(|v| vs.contains(v)),
            Requirement::NotIn(k, vs) => !labels.get(k).is_some_and(|v| vs.contains(v)),
        })
    }
}

/// Splits at the commas outside parentheses.
fn split_requirements(text: &str) -> Result<Vec<&str>, String> {
    let (mut parts, mut depth, mut start) = (Vec::new(), 0, 0);
    for (i, c) in text.char_indices() {
        match c {
            '(' => depth += 1,
            ')' if depth == 0 => return Err(format!("unbalanced ')' in {text:?}")),
            ')' => depth -= 1,
            ',' if depth == 0 => {
                parts.push(&text[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    if depth != 0 {
        return Err(format!("unclosed '(' in {text:?}"));
    }
    parts.push(&text[start..]);
    Ok(parts
        .into_iter()
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .collect())
}

fn requirement(text: &str) -> Result<Requirement, String> {
    let bad = || format!("unable to parse requirement: {text:?}");
    if let Some(key) = text.strip_prefix('!') {
        return Ok(Requirement::NotExists(key_of(key.trim()).ok_or_else(bad)?));
    }
    for (operator, set) in [(" notin ", false), (" in ", true)] {
        if let Some((key, values)) = text.split_once(operator) {
            let key = key_of(key.trim()).ok_or_else(bad)?;
            let values = values
                .trim()
                .strip_prefix('(')
                .and_then(|v| v.strip_suffix(')'))
                .ok_or_else(bad)?;
            let values: Vec<String> = values.split(',').map(|v| v.trim().to_owned()).collect();
            if values.iter().any(|v| !is_value(v)) {
                return Err(bad());
            }
            return Ok(if set {
                Requirement::In(key, values)
            } else {
                Requirement::NotIn(key, values)
            });
        }
    }
    for operator in ["!=", "==", "="] {
        if let Some((key, value)) = text.split_once(operator) {
            let key = key_of(key.trim()).ok_or_else(bad)?;
            let value = value.trim();
            if !is_value(value) {
                return Err(bad());
            }
            return Ok(if operator == "!=" {
                Requirement::NotEquals(key, value.to_owned())
            } else {
                Requirement::Equals(key, value.to_owned())
            });
        }
    }
    Ok(Requirement::Exists(key_of(text).ok_or_else(bad)?))
}

fn key_of(text: &str) -> Option<String> {
    let name = text.rsplit('/').next()?;
    (!name.is_empty() && is_value(name) && !text.contains(char::is_whitespace))
        .then(|| text.to_owned())
}

/// A label value: at most 63 of `[A-Za-z0-9_.-]`, alphanumeric at both ends, or empty.
fn is_value(text: &str) -> bool {
    let edge = |c: char| c.is_ascii_alphanumeric();
    text.is_empty()
        || (text.len() <= 63
            && text.starts_with(edge)
            && text.ends_with(edge)
            && text
                .chars()
                .all(|c| edge(c) || matches!(c, '-' | '_' | '.')))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn requirements_are_anded() {
        let selector = LabelSelector::parse("zone in (a,b),rack!=r1,!spot,gpu").unwrap();
        assert!(selector.matches(&labels(&[("zone", "a"), ("gpu", "")])));
        assert!(!selector.matches(&labels(&[("zone", "a"), ("gpu", ""), ("rack", "r1")])));
        assert!(!selector.matches(&labels(&[("zone", "c"), ("gpu", "")])));
        assert!(LabelSelector::parse("").unwrap().matches(&labels(&[])));
    }

    #[test]
    fn bad_selectors_are_errors() {
        for bad in ["zone in (a", "zone = east west", "a b", "=x", "zone in a"] {
            assert!(LabelSelector::parse(bad).is_err(), "{bad}");
        }
    }
}
