//! Label selectors in Calico's grammar, as IP pools, BGP peers and list calls use them:
//!
//! ```text
//! all()                        every object
//! key == "v"    key != "v"     equality (a missing label is != any value)
//! key in {"a", "b"}            membership;  key not in {"a", "b"}
//! has(key)      !has(key)      presence
//! a && b        a || b         && binds tighter than ||
//! !(expr)       (expr)         negation and grouping
//! ```
//!
//! Values are quoted with `"` or `'`. [`Selector`] parses with [`str::parse`] (at most
//! [`MAX_LENGTH`] characters and [`MAX_DEPTH`] levels of nesting), renders
//! back in a canonical form with `Display`, and (de)serialises as that string.

mod parse;

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

pub use parse::SelectorError;

/// The longest selector accepted, in characters.
pub const MAX_LENGTH: usize = 4096;
/// The deepest nesting of `!` and parentheses accepted: the parser, matching and
/// rendering recurse once per level, and a selector is input (a datastore object, a
/// flag), so its depth is bounded before it can exhaust a thread's stack.
pub const MAX_DEPTH: usize = 32;

/// A parsed selector.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Selector(Expr);

/// The selector's syntax tree.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Expr {
    All,
    Has(String),
    Equal(String, String),
    NotEqual(String, String),
    In(String, BTreeSet<String>),
    NotIn(String, BTreeSet<String>),
    Not(Box<Expr>),
    And(Box<Expr>, Box<Expr>),
    Or(Box<Expr>, Box<Expr>),
}

impl Selector {
    /// The selector matching everything, `all()`.
    pub fn all() -> Self {
        Self(Expr::All)
    }

    pub fn expr(&self) -> &Expr {
        &self.0
    }

    /// True when an object carrying `labels` is selected.
    pub fn matches(&self, labels: &BTreeMap<String, String>) -> bool {
        self.0.matches(labels)
    }
}

impl From<Expr> for Selector {
    fn from(expr: Expr) -> Self {
        Self(expr)
    }
}

impl Expr {
    fn matches(&self, labels: &BTreeMap<String, String>) -> bool {
        let value = |key: &String| labels.get(key).map(String::as_str);
        match self {
            Expr::All => true,
            Expr::Has(key) => labels.contains_key(key),
            Expr::Equal(key, v) => value(key) == Some(v.as_str()),
            Expr::NotEqual(key, v) => value(key) != Some(v.as_str()),
            Expr::In(key, set) => value(key).is_some_and(|v| set.contains(v)),
            Expr::NotIn(key, set) => !value(key).is_some_and(|v| set.contains(v)),
            Expr::Not(inner) => !inner.matches(labels),
            Expr::And(a, b) => a.matches(labels) && b.matches(labels),
            Expr::Or(a, b) => a.matches(labels) || b.matches(labels),
        }
    }
}

impl FromStr for Selector {
    type Err = SelectorError;

    fn from_str(text: &str) -> Result<Self, SelectorError> {
        parse::selector(text).map(Self)
    }
}

impl fmt::Display for Selector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

impl fmt::Display for Expr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Parenthesise a child only where the parser would otherwise group it
        // differently: both operators are left-associative and && binds tighter.
        let grouped = |f: &mut fmt::Formatter<'_>, e: &Expr, parens: bool| {
            if parens {
                write!(f, "({e})")
            } else {
                write!(f, "{e}")
            }
        };
        match self {
            Expr::All => f.write_str("all()"),
            Expr::Has(key) => write!(f, "has({key})"),
            Expr::Equal(key, v) => write!(f, "{key} == {}", quote(v)),
            Expr::NotEqual(key, v) => write!(f, "{key} != {}", quote(v)),
            Expr::In(key, set) => write!(f, "{key} in {}", set_text(set)),
            Expr::NotIn(key, set) => write!(f, "{key} not in {}", set_text(set)),
            Expr::Not(inner) => match **inner {
                Expr::Has(_) | Expr::All | Expr::Not(_) => write!(f, "!{inner}"),
                _ => write!(f, "!({inner})"),
            },
            Expr::And(a, b) => {
                grouped(f, a, matches!(**a, Expr::Or(..)))?;
                f.write_str(" && ")?;
                grouped(f, b, matches!(**b, Expr::Or(..) | Expr::And(..)))
            }
            Expr::Or(a, b) => {
                grouped(f, a, false)?;
                f.write_str(" || ")?;
                grouped(f, b, matches!(**b, Expr::Or(..)))
            }
        }
    }
}

/// Double quotes unless the value holds one (the grammar has no escapes).
fn quote(value: &str) -> String {
    if value.contains('"') {
        format!("'{value}'")
    } else {
        format!("\"{value}\"")
    }
}

fn set_text(set: &BTreeSet<String>) -> String {
    let items: Vec<String> = set.iter().map(|v| quote(v)).collect();
    format!("{{{}}}", items.join(", "))
}

impl Serialize for Selector {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Selector {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        crate::resources::parsed_str(deserializer, "a selector")
    }
}

#[cfg(test)]
mod tests;
