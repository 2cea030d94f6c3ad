//! The declarative route filter operators configure (from YAML, through the agent
//! and the reflector): an ordered list of terms, each a match (prefix lists with
//! ge/le, communities, AS numbers in the path) and an action (accept or reject)
//! with attribute changes (LOCAL_PREF, MED, communities, AS-path prepend). The first
//! matching term decides; `default` decides the rest.
//!
//! ```yaml
//! terms:
//!   - match: { prefixes: [{ prefix: 10.244.0.0/16, ge: 26, le: 32 }] }
//!     action: accept
//!     set: { local_pref: 200, add_communities: ["64512:100"] }
//!   - match: { communities: [no-export] }
//!     action: reject
//! default: reject
//! ```

use std::fmt;
use std::str::FromStr;

use ipnet::IpNet;
use serde::Deserialize;

use crate::codec::{AsPath, Attributes, Community, LargeCommunity, Segment, SegmentKind};

#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Filter {
    #[serde(default)]
    pub terms: Vec<Term>,
    /// For routes no term matches.
    #[serde(default)]
    pub default: Action,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Term {
    #[serde(default, rename = "match")]
    pub matches: Match,
    pub action: Action,
    /// Changes made to accepted routes.
    #[serde(default)]
    pub set: Set,
}

/// Every condition given must hold; a list holds when any of its entries does.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Match {
    #[serde(default)]
    pub prefixes: Vec<PrefixMatch>,
    #[serde(default)]
    pub communities: Vec<CommunityValue>,
    /// Any of these AS numbers anywhere in the AS path.
    #[serde(default)]
    pub as_path_contains: Vec<u32>,
}

/// `prefix` itself, or with `ge`/`le` any prefix inside it whose length is in
/// `ge..=le` (`ge` alone: up to the longest; `le` alone: from `prefix`'s length).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PrefixMatch {
    pub prefix: IpNet,
    #[serde(default)]
    pub ge: Option<u8>,
    #[serde(default)]
    pub le: Option<u8>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Action {
    Accept,
    #[default]
    Reject,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Set {
    #[serde(default)]
    pub local_pref: Option<u32>,
    #[serde(default)]
    pub med: Option<u32>,
    #[serde(default)]
    pub add_communities: Vec<CommunityValue>,
    #[serde(default)]
    pub remove_communities: Vec<CommunityValue>,
    #[serde(default)]
    pub prepend: Option<Prepend>,
}

/// Prepend `asn` (the session's own AS when absent) `count` times.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Prepend {
    #[serde(default)]
    pub asn: Option<u32>,
    pub count: u8,
}

/// A standard community (`65000:100`, or `no-export`, `no-advertise`,
/// `no-export-subconfed`) or a large one (`65000:1:2`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize)]
#[serde(try_from = "String")]
pub enum CommunityValue {
    Standard(Community),
    Large(LargeCommunity),
}

/// A filter that does not make sense, with the field at fault.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{path}: {message}")]
pub struct FilterError {
    pub path: String,
    pub message: String,
}

/// What the filter says of one route: rejected, or accepted by a term (whose
/// changes [`Filter::rewrite`] applies) or by the default.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Decision {
    Reject,
    Accept { term: Option<usize> },
}

impl Filter {
    /// A filter that accepts everything unchanged.
    pub fn accept_all() -> Self {
        Self {
            terms: Vec::new(),
            default: Action::Accept,
        }
    }

    /// Checks what serde cannot: prefix-length ranges and prepend counts.
    pub fn validate(&self, path: &str) -> Result<(), FilterError> {
        for (t, term) in self.terms.iter().enumerate() {
            for (p, entry) in term.matches.prefixes.iter().enumerate() {
                entry.validate(&format!("{path}.terms[{t}].match.prefixes[{p}]"))?;
            }
            if let Some(prepend) = term.set.prepend
                && !(1..=32).contains(&prepend.count)
            {
                return Err(FilterError {
                    path: format!("{path}.terms[{t}].set.prepend.count"),
                    message: format!("{} is not between 1 and 32", prepend.count),
                });
            }
        }
        Ok(())
    }

    pub fn decide(&self, prefix: &IpNet, attributes: &Attributes) -> Decision {
        let matched = self
            .terms
            .iter()
            .enumerate()
            .find(|(_, term)| term.matches.holds(prefix, attributes));
        match matched {
            Some((_, term)) if term.action == Action::Reject => Decision::Reject,
            Some((index, _)) => Decision::Accept { term: Some(index) },
            None if self.default == Action::Accept => Decision::Accept { term: None },
            None => Decision::Reject,
        }
    }

    /// The attributes after the changes of `term`; `None` when it changes nothing.
    /// `local_as` is prepended where the term names no AS.
    pub fn rewrite(
        &self,
        term: usize,
        attributes: &Attributes,
        local_as: u32,
    ) -> Option<Attributes> {
        let set = &self.terms.get(term)?.set;
        if *set == Set::default() {
            return None;
        }
        let mut out = attributes.clone();
        if let Some(local_pref) = set.local_pref {
            out.local_pref = Some(local_pref);
        }
        if let Some(med) = set.med {
            out.med = Some(med);
        }
        for value in &set.remove_communities {
            match value {
                CommunityValue::Standard(c) => out.communities.retain(|x| x != c),
                CommunityValue::Large(c) => out.large_communities.retain(|x| x != c),
            }
        }
        for value in &set.add_communities {
            match *value {
                CommunityValue::Standard(c) if !out.communities.contains(&c) => {
                    out.communities.push(c)
                }
                CommunityValue::Large(c) if !out.large_communities.contains(&c) => {
                    out.large_communities.push(c)
                }
                _ => {}
            }
        }
        if let Some(prepend) = set.prepend {
            let asn = prepend.asn.unwrap_or(local_as);
            let mut path = out.as_path.take().unwrap_or_default();
            for _ in 0..prepend.count {
                prepend_as(&mut path, asn);
            }
            out.as_path = Some(path);
        }
        Some(out)
    }
}

/// Puts `asn` first in `path`, in its first AS_SEQUENCE when there is room.
pub(crate) fn prepend_as(path: &mut AsPath, asn: u32) {
    match path.segments.first_mut() {
        Some(first) if first.kind == SegmentKind::Sequence && first.asns.len() < 255 => {
            first.asns.insert(0, asn);
        }
        _ => path.segments.insert(
            0,
            Segment {
                kind: SegmentKind::Sequence,
                asns: vec![asn],
            },
        ),
    }
}

impl Match {
    fn holds(&self, prefix: &IpNet, attributes: &Attributes) -> bool {
        (self.prefixes.is_empty() || self.prefixes.iter().any(|p| p.holds(prefix)))
            && (self.communities.is_empty()
                || self.communities.iter().any(|c| c.carried_by(attributes)))
            && (self.as_path_contains.is_empty()
                || attributes.as_path.as_ref().is_some_and(|path| {
                    path.segments
                        .iter()
                        .flat_map(|s| &s.asns)
                        .any(|asn| self.as_path_contains.contains(asn))
                }))
    }
}

impl PrefixMatch {
    fn bounds(&self) -> (u8, u8) {
        let own = self.prefix.prefix_len();
        match (self.ge, self.le) {
            (None, None) => (own, own),
            (ge, le) => (
                ge.unwrap_or(own),
                le.unwrap_or(self.prefix.max_prefix_len()),
            ),
        }
    }

    fn holds(&self, prefix: &IpNet) -> bool {
        let (low, high) = self.bounds();
        self.prefix.trunc().contains(prefix) && (low..=high).contains(&prefix.prefix_len())
    }

    fn validate(&self, path: &str) -> Result<(), FilterError> {
        let (own, max) = (self.prefix.prefix_len(), self.prefix.max_prefix_len());
        let check = |field: &str, value: Option<u8>| match value {
            Some(v) if v < own || v > max => Err(FilterError {
                path: format!("{path}.{field}"),
                message: format!(
                    "{v} is not between {own} and {max} (the prefix's length and the longest)"
                ),
            }),
            _ => Ok(()),
        };
        check("ge", self.ge)?;
        check("le", self.le)?;
        if let (Some(ge), Some(le)) = (self.ge, self.le)
            && ge > le
        {
            return Err(FilterError {
                path: format!("{path}.ge"),
                message: format!("ge {ge} is greater than le {le}"),
            });
        }
        Ok(())
    }
}

impl CommunityValue {
    fn carried_by(&self, attributes: &Attributes) -> bool {
        match self {
            CommunityValue::Standard(c) => attributes.communities.contains(c),
            CommunityValue::Large(c) => attributes.large_communities.contains(c),
        }
    }
}

impl FromStr for CommunityValue {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        let well_known = match text {
            "no-export" => Some(Community::NO_EXPORT),
            "no-advertise" => Some(Community::NO_ADVERTISE),
            "no-export-subconfed" => Some(Community(0xffff_ff03)),
            _ => None,
        };
        if let Some(c) = well_known {
            return Ok(CommunityValue::Standard(c));
        }
        let bad = || {
            format!(
                "{text:?} is not a community (ASN:VALUE, GLOBAL:LOCAL1:LOCAL2 or a well-known name)"
            )
        };
        let parts: Vec<&str> = text.split(':').collect();
        match parts[..] {
            [asn, value] => Ok(CommunityValue::Standard(Community::new(
                asn.parse().map_err(|_| bad())?,
                value.parse().map_err(|_| bad())?,
            ))),
            [global, local1, local2] => Ok(CommunityValue::Large(LargeCommunity {
                global: global.parse().map_err(|_| bad())?,
                local1: local1.parse().map_err(|_| bad())?,
                local2: local2.parse().map_err(|_| bad())?,
            })),
            _ => Err(bad()),
        }
    }
}

impl TryFrom<String> for CommunityValue {
    type Error = String;

    fn try_from(text: String) -> Result<Self, String> {
        text.parse()
    }
}

impl fmt::Display for CommunityValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CommunityValue::Standard(Community(c)) => write!(f, "{}:{}", c >> 16, c & 0xffff),
            CommunityValue::Large(c) => write!(f, "{}:{}:{}", c.global, c.local1, c.local2),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn net(s: &str) -> IpNet {
        s.parse().unwrap()
    }

    fn filter(yaml: &str) -> Filter {
        let filter: Filter = yaml_serde::from_str(yaml).unwrap();
        filter.validate("filter").unwrap();
        filter
    }

    fn with_communities(communities: &[&str]) -> Attributes {
        let mut attributes = Attributes {
            as_path: Some(AsPath::sequence(vec![65001, 65009])),
            ..Attributes::default()
        };
        for c in communities {
            match c.parse().unwrap() {
                CommunityValue::Standard(c) => attributes.communities.push(c),
                CommunityValue::Large(c) => attributes.large_communities.push(c),
            }
        }
        attributes
    }

    #[test]
    fn prefix_lists_match_the_prefix_itself_or_the_lengths_between_ge_and_le() {
        let f = filter(
            "terms:\n\
             - match: { prefixes: [{ prefix: 10.244.0.0/16, ge: 26, le: 28 }] }\n  action: accept\n\
             - match: { prefixes: [{ prefix: 10.96.0.0/12 }] }\n  action: accept\n",
        );
        let a = Attributes::default();
        let accepted = |p: &str| f.decide(&net(p), &a) != Decision::Reject;
        assert!(accepted("10.244.3.0/26"));
        assert!(accepted("10.244.3.16/28"));
        assert!(!accepted("10.244.3.1/32"), "longer than le");
        assert!(!accepted("10.244.0.0/24"), "shorter than ge");
        assert!(!accepted("10.245.0.0/26"), "outside");
        assert!(accepted("10.96.0.0/12"));
        assert!(
            !accepted("10.96.0.0/13"),
            "without ge/le only the prefix itself"
        );
    }

    #[test]
    fn the_first_matching_term_decides_and_the_default_takes_the_rest() {
        let f = filter(
            "terms:\n\
             - match: { communities: [no-export] }\n  action: reject\n\
             - match: { communities: [\"65000:1\", \"65000:1:2\"] }\n  action: accept\n\
             default: accept\n",
        );
        let p = net("10.0.0.0/24");
        assert_eq!(
            f.decide(&p, &with_communities(&["no-export", "65000:1"])),
            Decision::Reject
        );
        assert_eq!(
            f.decide(&p, &with_communities(&["65000:1:2"])),
            Decision::Accept { term: Some(1) }
        );
        assert_eq!(
            f.decide(&p, &with_communities(&[])),
            Decision::Accept { term: None }
        );
        let strict = filter("terms: []\n");
        assert_eq!(strict.decide(&p, &with_communities(&[])), Decision::Reject);
    }

    #[test]
    fn an_accepting_term_sets_preference_med_communities_and_prepends() {
        let f = filter(
            "terms:\n\
             - match: { as_path_contains: [65009] }\n  action: accept\n  set:\n\
             \x20   local_pref: 200\n    med: 5\n    add_communities: [\"64512:7\", \"1:2:3\"]\n\
             \x20   remove_communities: [\"65000:1\"]\n    prepend: { count: 2 }\n",
        );
        let before = with_communities(&["65000:1", "65000:2"]);
        let Decision::Accept { term: Some(term) } = f.decide(&net("10.0.0.0/24"), &before) else {
            panic!("not accepted by a term")
        };
        let after = f.rewrite(term, &before, 64512).unwrap();
        assert_eq!((after.local_pref, after.med), (Some(200), Some(5)));
        assert_eq!(
            after.communities,
            [Community::new(65000, 2), Community::new(64512, 7)]
        );
        assert_eq!(after.large_communities.len(), 1);
        assert_eq!(
            after.as_path,
            Some(AsPath::sequence(vec![64512, 64512, 65001, 65009]))
        );
    }

    #[test]
    fn a_term_without_changes_rewrites_nothing() {
        let f = filter("terms:\n- action: accept\n");
        assert_eq!(f.rewrite(0, &Attributes::default(), 1), None);
    }

    #[test]
    fn bad_filters_are_refused_with_the_field_at_fault() {
        let f: Filter = yaml_serde::from_str(
            "terms:\n- match: { prefixes: [{ prefix: 10.0.0.0/16, ge: 8 }] }\n  action: accept\n",
        )
        .unwrap();
        let err = f.validate("peers[0].import").unwrap_err();
        assert_eq!(err.path, "peers[0].import.terms[0].match.prefixes[0].ge");
        let err = yaml_serde::from_str::<Filter>("terms:\n- action: allow\n").unwrap_err();
        assert!(err.to_string().contains("allow"), "{err}");
        let err = yaml_serde::from_str::<Filter>(
            "terms:\n- match: { communities: [\"65000\"] }\n  action: accept\n",
        )
        .unwrap_err();
        assert!(err.to_string().contains("not a community"), "{err}");
        assert!(yaml_serde::from_str::<Filter>("terms: []\ncolour: red\n").is_err());
    }
}
