//! `BGPFilter`s as the speaker's declarative filters: the rules of every filter a
//! `BGPPeer` names, in order, for one direction; the first rule that matches
//! decides, and a route no rule matches is accepted (Calico's fall-through).
//!
//! | BGPFilter rule | speaker term |
//! | --- | --- |
//! | `cidr` with `matchOperator: Equal` | that prefix exactly |
//! | `cidr` with `In`, `prefixLength` | prefixes inside it, lengths `min..=max` |
//! | no `cidr` | every prefix of the list's family (lengths from `prefixLength`) |
//! | `peerType` | the rule is kept or dropped for this session |
//! | `communities.values` | any of them |
//! | `addCommunity`, `prependASPath` | `set.add_communities`, `set.prepend` |
//!
//! `NotEqual`, `NotIn` and prepending different AS numbers have no speaker
//! equivalent yet: the API refuses them (`api::resources::BGPFilter` validation);
//! a filter built otherwise is refused here too, with the rule named, and the
//! session is left out rather than run unfiltered.

use api::resources::{
    BGPFilter, Community, FilterAction, FilterOperation, FilterRule, MatchOperator, PeerType,
};
use bgp::codec::{Community as Standard, LargeCommunity};
use bgp::rib::filter::{Action, CommunityValue, Filter, Match, PrefixMatch, Prepend, Set, Term};
use ipnet::IpNet;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    Import,
    Export,
}

/// The filter for one direction of a session (`external`: eBGP); `None` when
/// no filter is named.
pub fn compile(
    filters: &[&BGPFilter],
    direction: Direction,
    external: bool,
) -> Result<Option<Filter>, String> {
    if filters.is_empty() {
        return Ok(None);
    }
    let mut terms = Vec::new();
    for filter in filters {
        let spec = &filter.spec;
        let lists = match direction {
            Direction::Import => [
                ("importV4", &spec.import_v4, true),
                ("importV6", &spec.import_v6, false),
            ],
            Direction::Export => [
                ("exportV4", &spec.export_v4, true),
                ("exportV6", &spec.export_v6, false),
            ],
        };
        for (field, rules, ipv4) in lists {
            for (i, rule) in rules.iter().enumerate() {
                let path = format!("BGPFilter {:?}: spec.{field}[{i}]", filter.metadata.name);
                if let Some(term) =
                    term(rule, ipv4, external).map_err(|e| format!("{path}: {e}"))?
                {
                    terms.push(term);
                }
            }
        }
    }
    Ok(Some(Filter {
        terms,
        default: Action::Accept,
    }))
}

/// One rule as a term; `None` when its `peerType` excludes this session.
fn term(rule: &FilterRule, ipv4: bool, external: bool) -> Result<Option<Term>, String> {
    match rule.peer_type {
        Some(PeerType::External) if !external => return Ok(None),
        Some(PeerType::Internal) if external => return Ok(None),
        _ => {}
    }
    let longest: u8 = if ipv4 { 32 } else { 128 };
    let (min, max) = rule.prefix_length.map_or((None, None), |l| (l.min, l.max));
    let prefix = match (rule.cidr, rule.match_operator) {
        (Some(cidr), Some(MatchOperator::Equal)) => PrefixMatch {
            prefix: cidr.0,
            ge: None,
            le: None,
        },
        (Some(cidr), Some(MatchOperator::In)) => PrefixMatch {
            prefix: cidr.0,
            ge: Some(min.unwrap_or(cidr.0.prefix_len())),
            le: Some(max.unwrap_or(longest)),
        },
        (Some(_), Some(operator @ (MatchOperator::NotEqual | MatchOperator::NotIn))) => {
            return Err(format!(
                "matchOperator {operator:?} cannot be expressed as a speaker filter yet"
            ));
        }
        // Validation pairs cidr with matchOperator; without both, the family.
        _ => PrefixMatch {
            prefix: if ipv4 {
                IpNet::V4(Default::default())
            } else {
                IpNet::V6(Default::default())
            },
            ge: Some(min.unwrap_or(0)),
            le: Some(max.unwrap_or(longest)),
        },
    };
    let mut set = Set::default();
    for operation in &rule.operations {
        match operation {
            FilterOperation::AddCommunity { value } => set.add_communities.push(community(*value)),
            FilterOperation::PrependAsPath { prefix } => {
                let first = prefix.first().map(|a| a.0);
                if prefix.iter().any(|a| Some(a.0) != first) {
                    return Err(
                        "prependASPath with different AS numbers cannot be expressed yet".into(),
                    );
                }
                set.prepend = Some(Prepend {
                    asn: first,
                    count: u8::try_from(prefix.len()).map_err(|_| "prependASPath is too long")?,
                });
            }
        }
    }
    Ok(Some(Term {
        matches: Match {
            prefixes: vec![prefix],
            communities: rule
                .communities
                .iter()
                .flat_map(|c| c.values.iter().copied().map(community))
                .collect(),
            as_path_contains: Vec::new(),
        },
        action: match rule.action {
            FilterAction::Accept => Action::Accept,
            FilterAction::Reject => Action::Reject,
        },
        set,
    }))
}

fn community(value: Community) -> CommunityValue {
    match value {
        Community::Standard(high, low) => {
            CommunityValue::Standard(Standard((u32::from(high) << 16) | u32::from(low)))
        }
        Community::Large(global, local1, local2) => CommunityValue::Large(LargeCommunity {
            global,
            local1,
            local2,
        }),
    }
}

#[cfg(test)]
mod tests {
    use api::resources::{BGPFilterSpec, Cidr, CommunityMatch, PrefixLength};

    use super::*;

    fn rule(
        cidr: Option<&str>,
        operator: Option<MatchOperator>,
        action: FilterAction,
    ) -> FilterRule {
        FilterRule {
            cidr: cidr.map(|c| Cidr(c.parse().unwrap())),
            match_operator: operator,
            prefix_length: None,
            peer_type: None,
            communities: None,
            action,
            operations: Vec::new(),
        }
    }

    fn filter(spec: BGPFilterSpec) -> BGPFilter {
        BGPFilter::new("f", spec)
    }

    #[test]
    fn rules_become_terms_in_order_and_the_rest_is_accepted() {
        let mut inside = rule(
            Some("10.244.0.0/16"),
            Some(MatchOperator::In),
            FilterAction::Accept,
        );
        inside.prefix_length = Some(PrefixLength {
            min: Some(26),
            max: None,
        });
        inside.operations = vec![FilterOperation::AddCommunity {
            value: "65000:100".parse().unwrap(),
        }];
        let exact = rule(
            Some("0.0.0.0/0"),
            Some(MatchOperator::Equal),
            FilterAction::Reject,
        );
        let f = filter(BGPFilterSpec {
            export_v4: vec![inside, exact],
            ..BGPFilterSpec::default()
        });
        let compiled = compile(&[&f], Direction::Export, true).unwrap().unwrap();
        assert_eq!(compiled.default, Action::Accept);
        assert_eq!(compiled.terms.len(), 2);
        let first = &compiled.terms[0];
        assert_eq!(
            first.matches.prefixes,
            [PrefixMatch {
                prefix: "10.244.0.0/16".parse().unwrap(),
                ge: Some(26),
                le: Some(32)
            }]
        );
        assert_eq!(first.action, Action::Accept);
        assert_eq!(
            first.set.add_communities,
            [CommunityValue::Standard(Standard((65000 << 16) | 100))]
        );
        assert_eq!(compiled.terms[1].matches.prefixes[0].ge, None);
        assert_eq!(compiled.terms[1].action, Action::Reject);
        // The import direction has no rules: everything passes.
        assert!(
            compile(&[&f], Direction::Import, true)
                .unwrap()
                .unwrap()
                .terms
                .is_empty()
        );
    }

    #[test]
    fn a_rule_for_the_other_kind_of_session_is_dropped() {
        let mut ebgp_only = rule(None, None, FilterAction::Reject);
        ebgp_only.peer_type = Some(PeerType::External);
        ebgp_only.communities = Some(CommunityMatch {
            values: vec!["65000:1:2".parse().unwrap()],
        });
        let f = filter(BGPFilterSpec {
            import_v6: vec![ebgp_only],
            ..BGPFilterSpec::default()
        });
        let external = compile(&[&f], Direction::Import, true).unwrap().unwrap();
        assert_eq!(
            external.terms[0].matches.prefixes[0].prefix,
            "::/0".parse().unwrap()
        );
        assert_eq!(external.terms[0].matches.prefixes[0].le, Some(128));
        assert_eq!(
            external.terms[0].matches.communities,
            [CommunityValue::Large(LargeCommunity {
                global: 65000,
                local1: 1,
                local2: 2
            })]
        );
        let internal = compile(&[&f], Direction::Import, false).unwrap().unwrap();
        assert!(internal.terms.is_empty());
    }

    #[test]
    fn what_the_speaker_cannot_express_is_refused_with_the_rule_named() {
        let f = filter(BGPFilterSpec {
            export_v4: vec![rule(
                Some("10.0.0.0/8"),
                Some(MatchOperator::NotIn),
                FilterAction::Reject,
            )],
            ..BGPFilterSpec::default()
        });
        let error = compile(&[&f], Direction::Export, false).unwrap_err();
        assert_eq!(
            error,
            "BGPFilter \"f\": spec.exportV4[0]: matchOperator NotIn cannot be expressed as a \
             speaker filter yet"
        );
    }

    #[test]
    fn no_filters_means_no_filter() {
        assert_eq!(compile(&[], Direction::Export, true), Ok(None));
    }
}
