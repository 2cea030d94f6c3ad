//! Calico's BGPFilter. Rules match on the same fields as tabby's; Calico's `source`
//! (only routes learned from peers) and `interface` (routes via an interface) select
//! route origins tabby's filters cannot tell apart, so rules using them are refused.

use api::resources::{
    BGPFilterSpec, Cidr, CommunityMatch, FilterAction, FilterOperation, FilterRule, MatchOperator,
    PeerType, PrefixLength, ValidationError,
};
use serde::Deserialize;

use super::{CalicoSpec, Notes, non_empty, refuse};

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(super) struct CalicoBGPFilterSpec {
    #[serde(default, rename = "exportV4")]
    export_v4: Vec<CalicoRule>,
    #[serde(default, rename = "importV4")]
    import_v4: Vec<CalicoRule>,
    #[serde(default, rename = "exportV6")]
    export_v6: Vec<CalicoRule>,
    #[serde(default, rename = "importV6")]
    import_v6: Vec<CalicoRule>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct CalicoRule {
    cidr: Option<Cidr>,
    match_operator: Option<MatchOperator>,
    prefix_length: Option<PrefixLength>,
    peer_type: Option<PeerType>,
    communities: Option<CommunityMatch>,
    action: FilterAction,
    #[serde(default)]
    operations: Vec<FilterOperation>,
    source: Option<String>,
    interface: Option<String>,
}

impl CalicoSpec for CalicoBGPFilterSpec {
    type Target = BGPFilterSpec;

    fn convert(self, _name: &str, _notes: &mut Notes) -> Result<BGPFilterSpec, ValidationError> {
        let convert = |field: &str, rules: Vec<CalicoRule>| {
            rules
                .into_iter()
                .enumerate()
                .map(|(i, rule)| rule.convert(&format!("spec.{field}[{i}]")))
                .collect::<Result<Vec<_>, _>>()
        };
        Ok(BGPFilterSpec {
            export_v4: convert("exportV4", self.export_v4)?,
            import_v4: convert("importV4", self.import_v4)?,
            export_v6: convert("exportV6", self.export_v6)?,
            import_v6: convert("importV6", self.import_v6)?,
        })
    }
}

impl CalicoRule {
    fn convert(self, path: &str) -> Result<FilterRule, ValidationError> {
        if let Some(source) = non_empty(self.source) {
            return Err(refuse(
                &format!("{path}.source"),
                source,
                "tabby's filters match every route alike; remove the rule or drop `source` \
                 and narrow it by cidr",
            ));
        }
        if let Some(interface) = non_empty(self.interface) {
            return Err(refuse(
                &format!("{path}.interface"),
                interface,
                "tabby never exports interface routes, so there is nothing to match; \
                 remove the rule",
            ));
        }
        Ok(FilterRule {
            cidr: self.cidr,
            match_operator: self.match_operator,
            prefix_length: self.prefix_length,
            peer_type: self.peer_type,
            communities: self.communities,
            action: self.action,
            operations: self.operations,
        })
    }
}
