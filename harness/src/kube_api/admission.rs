//! ValidatingAdmissionPolicies in the API double, evaluated as the API server does
//! for the parts tabby's manifests use: a binding with `validationActions: [Deny]`
//! and no param or match resources; `matchConstraints.resourceRules`
//! (groups, versions, operations, resources, `*` for any); `matchConditions`;
//! `variables` (each visible to the later ones as `variables.<name>`); and
//! `validations`, whose first false expression denies the write with 422 Invalid
//! and the API server's message. An expression that fails to evaluate denies under
//! `failurePolicy: Fail` and is skipped under `Ignore`.
//!
//! The expressions run on the `cel-interpreter` crate, not cel-go as in
//! kube-apiserver: there is no type checking against the CRD schemas, and
//! variables are evaluated eagerly (a variable that fails denies, where the API
//! server would only fail the validations that read it). Write policies whose
//! guards come first (`a && b` with `a` the guard), as the two agree there.

use std::collections::BTreeMap;

use anyhow::{Context as _, Result, anyhow, bail};
use cel_interpreter::{Context, Program, Value as Cel};
use serde_json::{Value, json};

/// Who makes the requests, as the API server's authenticator would say (and as
/// `tabby-kube-api --tokens` reads it: `{"<token>": {"username": ..., "groups":
/// [...], "extra": {...}}}`).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct UserInfo {
    pub username: String,
    pub groups: Vec<String>,
    #[serde(default)]
    pub extra: BTreeMap<String, Vec<String>>,
}

/// The claim a service-account token bound to a pod carries (Kubernetes 1.30+).
pub const NODE_NAME_CLAIM: &str = "authentication.kubernetes.io/node-name";

impl UserInfo {
    /// A cluster admin, as `kubectl` with the kubeconfig kubeadm writes.
    pub fn cluster_admin() -> Self {
        Self {
            username: "kubernetes-admin".into(),
            groups: vec!["system:masters".into(), "system:authenticated".into()],
            extra: BTreeMap::new(),
        }
    }

    /// A service account's token, without a node claim.
    pub fn service_account(namespace: &str, name: &str) -> Self {
        Self {
            username: format!("system:serviceaccount:{namespace}:{name}"),
            groups: vec![
                "system:serviceaccounts".into(),
                format!("system:serviceaccounts:{namespace}"),
                "system:authenticated".into(),
            ],
            extra: BTreeMap::new(),
        }
    }

    /// The same account's token bound to a pod on `node`.
    pub fn on_node(mut self, node: &str) -> Self {
        self.extra
            .insert(NODE_NAME_CLAIM.into(), vec![node.to_owned()]);
        self
    }
}

/// A write the policies are asked about.
#[derive(Debug, Clone, Copy)]
pub struct Request<'a> {
    pub operation: &'a str,
    pub group: &'a str,
    pub version: &'a str,
    pub resource: &'a str,
    /// `status` for a write to the status subresource, else empty.
    pub subresource: &'a str,
    pub name: &'a str,
    pub namespace: &'a str,
    pub user: &'a UserInfo,
    /// The object written (none for DELETE).
    pub object: Option<&'a Value>,
    /// The stored object (none for CREATE).
    pub old_object: Option<&'a Value>,
}

#[derive(Debug, Clone)]
struct Rule {
    groups: Vec<String>,
    versions: Vec<String>,
    operations: Vec<String>,
    resources: Vec<String>,
}

impl Rule {
    fn matches(&self, request: &Request<'_>) -> bool {
        let any = |list: &[String], value: &str| list.iter().any(|v| v == "*" || v == value);
        any(&self.groups, request.group)
            && any(&self.versions, request.version)
            && any(&self.operations, request.operation)
            // A rule names a subresource as `nodes/status`; `nodes` is the object only.
            && match request.subresource {
                "" => any(&self.resources, request.resource),
                sub => any(&self.resources, &format!("{}/{sub}", request.resource)),
            }
    }
}

/// A named CEL expression, compiled.
#[derive(Debug)]
struct Expression {
    name: String,
    source: String,
    program: Program,
}

impl Expression {
    fn compile(name: &str, source: &str) -> Result<Self> {
        let program = Program::compile(source)
            .map_err(|e| anyhow!("{name}: {source:?} does not compile: {e}"))?;
        Ok(Self {
            name: name.to_owned(),
            source: source.to_owned(),
            program,
        })
    }

    fn evaluate(&self, context: &Context<'_>) -> Result<Cel, String> {
        self.program
            .execute(context)
            .map_err(|e| format!("expression {:?} failed: {e}", self.source))
    }

    fn holds(&self, context: &Context<'_>) -> Result<bool, String> {
        match self.evaluate(context)? {
            Cel::Bool(value) => Ok(value),
            other => Err(format!(
                "expression {:?} is {other:?}, not a bool",
                self.source
            )),
        }
    }
}

/// One ValidatingAdmissionPolicy with its binding.
#[derive(Debug)]
pub struct Policy {
    name: String,
    binding: String,
    fail_closed: bool,
    rules: Vec<Rule>,
    conditions: Vec<Expression>,
    variables: Vec<Expression>,
    /// Each validation with its message.
    validations: Vec<(Expression, String)>,
}

fn strings(value: &Value) -> Vec<String> {
    value
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .map(str::to_owned)
        .collect()
}

fn expressions(list: &Value, key: &str) -> Result<Vec<Expression>> {
    list.as_array()
        .into_iter()
        .flatten()
        .enumerate()
        .map(|(index, item)| {
            let name = item["name"]
                .as_str()
                .map_or(index.to_string(), str::to_owned);
            let source = item[key]
                .as_str()
                .with_context(|| format!("{name}: no {key}"))?;
            Expression::compile(&name, source)
        })
        .collect()
}

impl Policy {
    /// A policy and its binding as the manifests hold them (JSON values).
    pub fn new(policy: &Value, binding: &Value) -> Result<Self> {
        let name = policy["metadata"]["name"]
            .as_str()
            .context("a policy without a name")?;
        let spec = &binding["spec"];
        if spec["policyName"] != name {
            bail!(
                "binding {} is not for policy {name}",
                binding["metadata"]["name"]
            );
        }
        if strings(&spec["validationActions"]) != ["Deny"] {
            bail!("only validationActions [Deny] is modelled");
        }
        if !spec["paramRef"].is_null() || !spec["matchResources"].is_null() {
            bail!("bindings with paramRef or matchResources are not modelled");
        }
        let spec = &policy["spec"];
        let rules = spec["matchConstraints"]["resourceRules"]
            .as_array()
            .context("a policy without matchConstraints.resourceRules")?
            .iter()
            .map(|rule| Rule {
                groups: strings(&rule["apiGroups"]),
                versions: strings(&rule["apiVersions"]),
                operations: strings(&rule["operations"]),
                resources: strings(&rule["resources"]),
            })
            .collect();
        let validations = spec["validations"]
            .as_array()
            .context("a policy without validations")?
            .iter()
            .enumerate()
            .map(|(index, item)| {
                let source = item["expression"]
                    .as_str()
                    .with_context(|| format!("validation {index}: no expression"))?;
                let message = item["message"]
                    .as_str()
                    .map_or_else(|| format!("failed expression: {source}"), str::to_owned);
                Ok((Expression::compile(&index.to_string(), source)?, message))
            })
            .collect::<Result<_>>()?;
        Ok(Self {
            name: name.to_owned(),
            binding: binding["metadata"]["name"]
                .as_str()
                .unwrap_or_default()
                .to_owned(),
            fail_closed: spec["failurePolicy"].as_str() != Some("Ignore"),
            rules,
            conditions: expressions(&spec["matchConditions"], "expression")?,
            variables: expressions(&spec["variables"], "expression")?,
            validations,
        })
    }

    /// `Err` with the API server's message when the policy denies `request`.
    pub fn admit(&self, request: &Request<'_>) -> Result<(), String> {
        if !self.rules.iter().any(|rule| rule.matches(request)) {
            return Ok(());
        }
        match self.evaluate(request) {
            Ok(None) => Ok(()),
            Ok(Some(message)) => Err(self.denied(&message)),
            Err(failure) if self.fail_closed => Err(self.denied(&failure)),
            Err(_) => Ok(()),
        }
    }

    fn denied(&self, message: &str) -> String {
        format!(
            "ValidatingAdmissionPolicy '{}' with binding '{}' denied request: {message}",
            self.name, self.binding
        )
    }

    /// The message of the first validation that does not hold.
    fn evaluate(&self, request: &Request<'_>) -> Result<Option<String>, String> {
        let mut context = Context::default();
        let mut add = |name: &str, value: &Value| {
            let value = cel_interpreter::to_value(value).map_err(|e| e.to_string())?;
            context.add_variable_from_value(name.to_owned(), value);
            Ok::<_, String>(())
        };
        add("request", &request_of(request))?;
        add("object", request.object.unwrap_or(&Value::Null))?;
        add("oldObject", request.old_object.unwrap_or(&Value::Null))?;
        for condition in &self.conditions {
            if !condition.holds(&context)? {
                return Ok(None);
            }
        }
        let mut variables = std::collections::HashMap::new();
        for variable in &self.variables {
            context.add_variable_from_value("variables", variables.clone());
            let value = variable.evaluate(&context)?;
            variables.insert(variable.name.clone(), value);
        }
        context.add_variable_from_value("variables", variables);
        for (validation, message) in &self.validations {
            if !validation.holds(&context)? {
                return Ok(Some(message.clone()));
            }
        }
        Ok(None)
    }
}

/// `request` as a policy sees it (the AdmissionRequest fields tabby's use).
fn request_of(request: &Request<'_>) -> Value {
    json!({
        "operation": request.operation,
        "name": request.name,
        "namespace": request.namespace,
        "resource": {
            "group": request.group,
            "version": request.version,
            "resource": request.resource,
        },
        "subResource": request.subresource,
        "userInfo": {
            "username": request.user.username,
            "groups": request.user.groups,
            "extra": request.user.extra,
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(validation: &str) -> Policy {
        let policy = json!({
            "metadata": {"name": "p"},
            "spec": {
                "matchConstraints": {"resourceRules": [{
                    "apiGroups": ["tabby.dev"], "apiVersions": ["*"],
                    "operations": ["CREATE", "UPDATE"], "resources": ["nodes"],
                }]},
                "variables": [
                    {"name": "a", "expression": "object.metadata.name"},
                    {"name": "b", "expression": "variables.a + '!'"},
                ],
                "validations": [{"expression": validation, "message": "no"}],
            },
        });
        let binding = json!({
            "metadata": {"name": "b"},
            "spec": {"policyName": "p", "validationActions": ["Deny"]},
        });
        Policy::new(&policy, &binding).unwrap()
    }

    fn node_request<'a>(operation: &'a str, user: &'a UserInfo, object: &'a Value) -> Request<'a> {
        Request {
            operation,
            group: "tabby.dev",
            version: "v1",
            resource: "nodes",
            subresource: "",
            name: "n1",
            namespace: "",
            user,
            object: Some(object),
            old_object: None,
        }
    }

    #[test]
    fn a_false_validation_denies_with_the_api_servers_message_and_variables_chain() {
        let user = UserInfo::service_account("ns", "sa");
        let object = json!({"metadata": {"name": "n1"}});
        let request = node_request("CREATE", &user, &object);
        assert_eq!(policy("variables.b == 'n1!'").admit(&request), Ok(()));
        assert_eq!(
            policy("variables.b == 'n2!'").admit(&request).unwrap_err(),
            "ValidatingAdmissionPolicy 'p' with binding 'b' denied request: no"
        );
    }

    #[test]
    fn requests_outside_the_rules_are_not_judged_and_failures_deny_when_fail_closed() {
        let user = UserInfo::service_account("ns", "sa");
        let object = json!({"metadata": {"name": "n1"}});
        let deny_all = policy("false");
        assert_eq!(
            deny_all.admit(&Request {
                resource: "ipamblocks",
                ..node_request("CREATE", &user, &object)
            }),
            Ok(())
        );
        assert_eq!(
            deny_all.admit(&node_request("DELETE", &user, &object)),
            Ok(())
        );
        let broken = policy("object.spec.missing == 1");
        let denied = broken
            .admit(&node_request("UPDATE", &user, &object))
            .unwrap_err();
        assert!(denied.contains("failed"), "{denied}");
    }
}
