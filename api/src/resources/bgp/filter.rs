//! `BGPFilter`: ordered import and export rules per address family; the first rule
//! that matches decides.

use serde::{Deserialize, Serialize};

use crate::resources::{AsNumber, Cidr, Community, Object, Spec, ValidationError};

pub type BGPFilter = Object<BGPFilterSpec>;

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct BGPFilterSpec {
    #[serde(default, rename = "exportV4", skip_serializing_if = "Vec::is_empty")]
    pub export_v4: Vec<FilterRule>,
    #[serde(default, rename = "importV4", skip_serializing_if = "Vec::is_empty")]
    pub import_v4: Vec<FilterRule>,
    #[serde(default, rename = "exportV6", skip_serializing_if = "Vec::is_empty")]
    pub export_v6: Vec<FilterRule>,
    #[serde(default, rename = "importV6", skip_serializing_if = "Vec::is_empty")]
    pub import_v6: Vec<FilterRule>,
}

/// Matches when every condition given matches.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct FilterRule {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cidr: Option<Cidr>,
    /// How the route's prefix relates to `cidr`; required with it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub match_operator: Option<MatchOperator>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prefix_length: Option<PrefixLength>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub peer_type: Option<PeerType>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub communities: Option<CommunityMatch>,
    pub action: FilterAction,
    /// Applied to accepted routes, in order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub operations: Vec<FilterOperation>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum MatchOperator {
    Equal,
    NotEqual,
    /// Within `cidr` (equal or more specific).
    In,
    NotIn,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PrefixLength {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min: Option<u8>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max: Option<u8>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum PeerType {
    #[serde(rename = "eBGP")]
    External,
    #[serde(rename = "iBGP")]
    Internal,
}

/// Matches routes carrying any of `values`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CommunityMatch {
    pub values: Vec<Community>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum FilterAction {
    Accept,
    Reject,
}

/// Written `{addCommunity: {value}}` or `{prependASPath: {prefix}}` in YAML and JSON
/// alike (serde's own enum form would need YAML tags).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "OperationFields", into = "OperationFields")]
pub enum FilterOperation {
    AddCommunity { value: Community },
    PrependAsPath { prefix: Vec<AsNumber> },
}

#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct OperationFields {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    add_community: Option<AddCommunity>,
    #[serde(
        default,
        rename = "prependASPath",
        skip_serializing_if = "Option::is_none"
    )]
    prepend_as_path: Option<PrependAsPath>,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct AddCommunity {
    value: Community,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct PrependAsPath {
    prefix: Vec<AsNumber>,
}

impl TryFrom<OperationFields> for FilterOperation {
    type Error = &'static str;

    fn try_from(fields: OperationFields) -> Result<Self, Self::Error> {
        match (fields.add_community, fields.prepend_as_path) {
            (Some(AddCommunity { value }), None) => Ok(Self::AddCommunity { value }),
            (None, Some(PrependAsPath { prefix })) => Ok(Self::PrependAsPath { prefix }),
            _ => Err("an operation needs exactly one of addCommunity and prependASPath"),
        }
    }
}

impl From<FilterOperation> for OperationFields {
    fn from(operation: FilterOperation) -> Self {
        match operation {
            FilterOperation::AddCommunity { value } => Self {
                add_community: Some(AddCommunity { value }),
                prepend_as_path: None,
            },
            FilterOperation::PrependAsPath { prefix } => Self {
                add_community: None,
                prepend_as_path: Some(PrependAsPath { prefix }),
            },
        }
    }
}

impl Spec for BGPFilterSpec {
    const KIND: &'static str = "BGPFilter";
    const PLURAL: &'static str = "bgpfilters";

    fn validate(&self, _name: &str) -> Result<(), ValidationError> {
        let lists = [
            ("exportV4", &self.export_v4, true),
            ("importV4", &self.import_v4, true),
            ("exportV6", &self.export_v6, false),
            ("importV6", &self.import_v6, false),
        ];
        for (field, rules, ipv4) in lists {
            for (i, rule) in rules.iter().enumerate() {
                rule.validate(&format!("spec.{field}[{i}]"), ipv4)?;
            }
        }
        Ok(())
    }
}

impl FilterRule {
    fn validate(&self, path: &str, ipv4: bool) -> Result<(), ValidationError> {
        match (&self.cidr, &self.match_operator) {
            // The speaker's filters match prefixes, never their complement.
            (Some(_), Some(operator @ (MatchOperator::NotEqual | MatchOperator::NotIn))) => {
                return Err(ValidationError::new(
                    format!("{path}.matchOperator"),
                    operator,
                    "is not supported by tabby yet: use Equal or In (a rule with the \
                     opposite action first, then a rule for every prefix)",
                ));
            }
            (Some(cidr), Some(_)) => {
                let cidr_path = format!("{path}.cidr");
                cidr.require_masked(&cidr_path)?;
                cidr.require_family(&cidr_path, ipv4)?;
            }
            (Some(cidr), None) => {
                return Err(ValidationError::new(
                    format!("{path}.matchOperator"),
                    cidr.to_string(),
                    "is required with cidr",
                ));
            }
            (None, Some(operator)) => {
                return Err(ValidationError::new(
                    format!("{path}.cidr"),
                    operator,
                    "is required with matchOperator",
                ));
            }
            (None, None) => {}
        }
        if let Some(PrefixLength { min, max }) = self.prefix_length {
            let longest = if ipv4 { 32 } else { 128 };
            for (bound, value) in [("min", min), ("max", max)] {
                if let Some(value) = value.filter(|v| *v > longest) {
                    return Err(ValidationError::new(
                        format!("{path}.prefixLength.{bound}"),
                        value,
                        format!("is longer than /{longest}"),
                    ));
                }
            }
            if let (Some(min), Some(max)) = (min, max)
                && min > max
            {
                return Err(ValidationError::new(
                    format!("{path}.prefixLength.min"),
                    min,
                    format!("is greater than max {max}"),
                ));
            }
        }
        for (i, operation) in self.operations.iter().enumerate() {
            let FilterOperation::PrependAsPath { prefix } = operation else {
                continue;
            };
            let field = format!("{path}.operations[{i}].prependASPath.prefix");
            if prefix.is_empty() {
                return Err(ValidationError::new(field, prefix, "is empty"));
            }
            // The speaker prepends one AS number a number of times.
            if prefix.iter().any(|a| *a != prefix[0]) {
                let numbers: Vec<String> = prefix.iter().map(ToString::to_string).collect();
                return Err(ValidationError::rendered(
                    field,
                    format!("[{}]", numbers.join(", ")),
                    "mixes AS numbers, which tabby cannot prepend yet: repeat one AS number",
                ));
            }
        }
        Ok(())
    }
}
