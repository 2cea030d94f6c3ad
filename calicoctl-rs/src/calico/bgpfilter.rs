//! Calico's BGPFilter. Rules match on the same fields as tabby's and take the same
//! operations (add a community, prepend to the AS path). Refused, because the rule
//! would match other routes without them: `source` (only routes learned from peers)
//! and `interface` (routes via an interface), which select route origins tabby's
//! filters cannot tell apart, and the AS-path-prefix and priority matches and the
//! set-priority operation, which tabby's filters do not have.

use api::resources::{
    AsNumber, BGPFilterSpec, Cidr, CommunityMatch, FilterAction, FilterOperation, FilterRule,
    MatchOperator, PeerType, PrefixLength, ValidationError,
};
use serde::Deserialize;
use serde_json::Value;

use super::{CalicoSpec, Conversion, non_empty};

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
    /// tabby's operations, or Calico's `setPriority`, told apart once read.
    #[serde(default)]
    operations: Vec<Value>,
    source: Option<String>,
    interface: Option<String>,
    #[serde(rename = "asPathPrefix")]
    as_path_prefix: Option<Vec<AsNumber>>,
    priority: Option<u32>,
}

impl CalicoSpec for CalicoBGPFilterSpec {
    type Target = BGPFilterSpec;

    fn convert(
        self,
        _name: &str,
        conversion: &mut Conversion,
    ) -> Result<BGPFilterSpec, ValidationError> {
        let mut convert = |field: &str, rules: Vec<CalicoRule>| {
            rules
                .into_iter()
                .enumerate()
                .map(|(i, rule)| rule.convert(&format!("spec.{field}[{i}]"), conversion))
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
    fn convert(
        self,
        path: &str,
        conversion: &mut Conversion,
    ) -> Result<FilterRule, ValidationError> {
        if let Some(source) = non_empty(self.source) {
            conversion.refuse(
                &format!("{path}.source"),
                source,
                "tabby's filters match every route alike; remove the rule or drop `source` \
                 and narrow it by cidr",
            );
        }
        if let Some(interface) = non_empty(self.interface) {
            conversion.refuse(
                &format!("{path}.interface"),
                interface,
                "tabby's filters cannot match routes by interface; remove the rule or \
                 narrow it by cidr",
            );
        }
        if let Some(prefix) = self.as_path_prefix.filter(|p| !p.is_empty()) {
            let prefix: Vec<String> = prefix.iter().map(ToString::to_string).collect();
            conversion.refuse(
                &format!("{path}.asPathPrefix"),
                prefix,
                "tabby's filters cannot match the AS path; remove the rule or narrow it by \
                 cidr, peerType or communities",
            );
        }
        if let Some(priority) = self.priority {
            conversion.refuse(
                &format!("{path}.priority"),
                priority,
                "tabby's routes have no priority to match; remove the rule",
            );
        }
        let mut operations = Vec::new();
        for (i, operation) in self.operations.into_iter().enumerate() {
            let path = format!("{path}.operations[{i}]");
            if let Some(priority) = operation.get("setPriority") {
                conversion.refuse(
                    &format!("{path}.setPriority"),
                    priority.to_string(),
                    "tabby programs routes with the kernel's default priority; remove the \
                     operation",
                );
                continue;
            }
            let rendered = operation.to_string();
            match serde_json::from_value::<FilterOperation>(operation) {
                Ok(operation) => operations.push(operation),
                Err(e) => return Err(ValidationError::rendered(path, rendered, e.to_string())),
            }
        }
        Ok(FilterRule {
            cidr: self.cidr,
            match_operator: self.match_operator,
            prefix_length: self.prefix_length,
            peer_type: self.peer_type,
            communities: self.communities,
            action: self.action,
            operations,
        })
    }
}
