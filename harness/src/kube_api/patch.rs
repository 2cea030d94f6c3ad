//! PATCH bodies, as the API server applies them to the stored object before the
//! write goes on as an update: JSON merge patch (RFC 7386,
//! `application/merge-patch+json`), JSON patch (RFC 6902,
//! `application/json-patch+json`) and, for core kinds only, strategic merge patch
//! (`application/strategic-merge-patch+json`).
//!
//! Strategic merge patch is a merge patch whose lists merge element by element
//! where the Go type says so (`patchStrategy:"merge"`, `patchMergeKey`); this
//! double knows those tags only for the fields [`MERGE_KEYS`] lists, the ones of
//! the core kinds it serves that a client would patch, and the `$patch: delete` /
//! `$patch: replace` directives. Other directives (`$setElementOrder`,
//! `$retainKeys`, `$deleteFromPrimitiveList`) are refused with a message naming
//! them, not misapplied. Server-side apply (`application/apply-patch+yaml`) is not
//! modelled: 415, as for any other type.

use serde_json::{Map, Value};

/// The patch types the double applies, by `Content-Type`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PatchType {
    Merge,
    Json,
    Strategic,
}

impl PatchType {
    /// The type a `Content-Type` header names (parameters ignored).
    pub fn of(content_type: &str) -> Option<Self> {
        match content_type.split(';').next().unwrap_or("").trim() {
            "application/merge-patch+json" => Some(Self::Merge),
            "application/json-patch+json" => Some(Self::Json),
            "application/strategic-merge-patch+json" => Some(Self::Strategic),
            _ => None,
        }
    }

    /// The media types a kind accepts, as the 415 answer lists them: custom
    /// resources have no Go types, so no strategic merge.
    pub fn accepted(custom: bool) -> &'static str {
        if custom {
            "application/json-patch+json, application/merge-patch+json"
        } else {
            "application/json-patch+json, application/merge-patch+json, \
             application/strategic-merge-patch+json"
        }
    }
}

/// Lists that merge by a key under strategic merge patch (`patchMergeKey` in
/// k8s.io/api/core/v1/types.go), by kind and field path (`[]` steps into a list's
/// elements). Every other list is replaced whole, as the real server does for
/// lists without a patch strategy.
const MERGE_KEYS: &[(&str, &str, &str)] = &[
    ("Node", "status.conditions", "type"),
    ("Node", "status.addresses", "type"),
    ("Pod", "spec.containers", "name"),
    ("Pod", "spec.initContainers", "name"),
    ("Pod", "spec.volumes", "name"),
    ("Pod", "spec.containers[].ports", "containerPort"),
    ("Pod", "spec.containers[].env", "name"),
    ("Pod", "status.conditions", "type"),
    ("*", "metadata.ownerReferences", "uid"),
];

/// `patch` applied to `object` of `kind`; the error says what is wrong with the
/// patch (the API server answers it with 400, or 422 for a failed `test`).
pub fn apply(
    patch_type: PatchType,
    kind: &str,
    object: &Value,
    patch: &Value,
) -> Result<Value, PatchError> {
    match patch_type {
        PatchType::Merge => {
            let Value::Object(_) = patch else {
                return Err(PatchError::Bad(
                    "a merge patch must be a JSON object".into(),
                ));
            };
            Ok(merge(object.clone(), patch))
        }
        PatchType::Json => json_patch(object.clone(), patch),
        PatchType::Strategic => {
            let Value::Object(patch) = patch else {
                return Err(PatchError::Bad(
                    "a strategic merge patch must be a JSON object".into(),
                ));
            };
            let Value::Object(object) = object.clone() else {
                return Err(PatchError::Bad("the stored object is not an object".into()));
            };
            strategic_map(kind, "", object, patch).map(Value::Object)
        }
    }
}

/// Why a patch could not be applied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PatchError {
    /// Malformed, or addressing what is not there: 400 (the server's
    /// "the server rejected our request due to an error in our request").
    Bad(String),
    /// A JSON patch `test` operation that did not hold: 422.
    TestFailed(String),
}

/// RFC 7386: objects merge member by member, `null` removes, anything else
/// (arrays included) replaces.
fn merge(target: Value, patch: &Value) -> Value {
    let Value::Object(patch) = patch else {
        return patch.clone();
    };
    let mut target = match target {
        Value::Object(map) => map,
        _ => Map::new(),
    };
    for (key, value) in patch {
        if value.is_null() {
            target.remove(key);
        } else {
            let merged = merge(target.remove(key).unwrap_or(Value::Null), value);
            target.insert(key.clone(), merged);
        }
    }
    Value::Object(target)
}

/// RFC 6902 over RFC 6901 pointers, every operation applied in order; any failure
/// leaves the object unchanged (the caller keeps the original).
fn json_patch(mut object: Value, patch: &Value) -> Result<Value, PatchError> {
    let Value::Array(operations) = patch else {
        return Err(PatchError::Bad(
            "a JSON patch must be an array of operations".into(),
        ));
    };
    for (i, operation) in operations.iter().enumerate() {
        let field = |name: &str| {
            operation
                .get(name)
                .and_then(Value::as_str)
                .ok_or_else(|| PatchError::Bad(format!("operation {i}: no string {name:?}")))
        };
        let value = || {
            operation
                .get("value")
                .cloned()
                .ok_or_else(|| PatchError::Bad(format!("operation {i}: no \"value\"")))
        };
        let path = field("path")?;
        match field("op")? {
            "add" => add(&mut object, path, value()?),
            "remove" => remove(&mut object, path).map(drop),
            "replace" => {
                remove(&mut object, path)?;
                add(&mut object, path, value()?)
            }
            "move" => {
                let moved = remove(&mut object, field("from")?)?;
                add(&mut object, path, moved)
            }
            "copy" => {
                let copied = object
                    .pointer(&pointer(field("from")?)?)
                    .cloned()
                    .ok_or_else(|| missing(field("from").unwrap_or_default()))?;
                add(&mut object, path, copied)
            }
            "test" => {
                let expected = value()?;
                if object.pointer(&pointer(path)?) == Some(&expected) {
                    Ok(())
                } else {
                    Err(PatchError::TestFailed(format!(
                        "the test at {path:?} failed: the value is not {expected}"
                    )))
                }
            }
            other => Err(PatchError::Bad(format!(
                "operation {i}: unknown op {other:?}"
            ))),
        }
        .map_err(|e| match e {
            PatchError::Bad(message) if !message.starts_with("operation") => {
                PatchError::Bad(format!("operation {i}: {message}"))
            }
            e => e,
        })?;
    }
    Ok(object)
}

/// A JSON pointer checked for its form (serde_json resolves it).
fn pointer(path: &str) -> Result<String, PatchError> {
    if path.is_empty() || path.starts_with('/') {
        Ok(path.to_owned())
    } else {
        Err(PatchError::Bad(format!("{path:?} is not a JSON pointer")))
    }
}

fn missing(path: &str) -> PatchError {
    PatchError::Bad(format!("nothing at {path:?}"))
}

/// The parent of `path`'s last step, and that step unescaped (`~1` is `/`, `~0`
/// is `~`).
fn split<'a>(object: &'a mut Value, path: &str) -> Result<(&'a mut Value, String), PatchError> {
    let path = pointer(path)?;
    let (parent, last) = path
        .rsplit_once('/')
        .ok_or_else(|| PatchError::Bad("the whole document cannot be patched".into()))?;
    let step = last.replace("~1", "/").replace("~0", "~");
    let parent = object.pointer_mut(parent).ok_or_else(|| missing(&path))?;
    Ok((parent, step))
}

fn add(object: &mut Value, path: &str, value: Value) -> Result<(), PatchError> {
    let (parent, step) = split(object, path)?;
    match parent {
        Value::Object(map) => {
            map.insert(step, value);
            Ok(())
        }
        Value::Array(list) => {
            let index = match step.as_str() {
                "-" => list.len(),
                text => text
                    .parse::<usize>()
                    .ok()
                    .filter(|i| *i <= list.len())
                    .ok_or_else(|| missing(path))?,
            };
            list.insert(index, value);
            Ok(())
        }
        _ => Err(missing(path)),
    }
}

fn remove(object: &mut Value, path: &str) -> Result<Value, PatchError> {
    let (parent, step) = split(object, path)?;
    match parent {
        Value::Object(map) => map.remove(&step).ok_or_else(|| missing(path)),
        Value::Array(list) => step
            .parse::<usize>()
            .ok()
            .filter(|i| *i < list.len())
            .map(|i| list.remove(i))
            .ok_or_else(|| missing(path)),
        _ => Err(missing(path)),
    }
}

fn merge_key(kind: &str, path: &str) -> Option<&'static str> {
    MERGE_KEYS
        .iter()
        .find(|(k, p, _)| (*k == kind || *k == "*") && *p == path)
        .map(|(_, _, key)| *key)
}

fn directive(map: &Map<String, Value>) -> Result<Option<&str>, PatchError> {
    if let Some(unknown) = map
        .keys()
        .find(|key| key.starts_with('$') && key.as_str() != "$patch")
    {
        return Err(PatchError::Bad(format!(
            "the API double does not implement the strategic merge directive {unknown:?}"
        )));
    }
    match map.get("$patch") {
        None => Ok(None),
        Some(Value::String(d)) if d == "delete" || d == "replace" => Ok(Some(d)),
        Some(other) => Err(PatchError::Bad(format!("unknown $patch directive {other}"))),
    }
}

fn strategic_map(
    kind: &str,
    path: &str,
    mut target: Map<String, Value>,
    patch: &Map<String, Value>,
) -> Result<Map<String, Value>, PatchError> {
    if directive(patch)? == Some("replace") {
        let mut replaced = patch.clone();
        replaced.remove("$patch");
        return Ok(replaced);
    }
    for (key, value) in patch {
        if key == "$patch" {
            continue;
        }
        let field = if path.is_empty() {
            key.clone()
        } else {
            format!("{path}.{key}")
        };
        match value {
            Value::Null => {
                target.remove(key);
            }
            Value::Object(inner) => {
                if directive(inner)? == Some("delete") {
                    target.remove(key);
                    continue;
                }
                let current = match target.remove(key) {
                    Some(Value::Object(map)) => map,
                    _ => Map::new(),
                };
                let merged = strategic_map(kind, &field, current, inner)?;
                target.insert(key.clone(), Value::Object(merged));
            }
            Value::Array(items) => {
                let merged = match merge_key(kind, &field) {
                    Some(merge_key) => {
                        let current = match target.remove(key) {
                            Some(Value::Array(list)) => list,
                            _ => Vec::new(),
                        };
                        strategic_list(kind, &field, merge_key, current, items)?
                    }
                    None => items.clone(),
                };
                target.insert(key.clone(), Value::Array(merged));
            }
            other => {
                target.insert(key.clone(), other.clone());
            }
        }
    }
    Ok(target)
}

/// Elements of the patch merge into the stored element with the same merge key
/// (or are appended), `$patch: delete` ones remove it; the rest stay in order.
fn strategic_list(
    kind: &str,
    path: &str,
    merge_key: &str,
    mut target: Vec<Value>,
    patch: &[Value],
) -> Result<Vec<Value>, PatchError> {
    let element_path = format!("{path}[]");
    for item in patch {
        let Value::Object(item) = item else {
            return Err(PatchError::Bad(format!(
                "{path}: an element without the merge key {merge_key:?}"
            )));
        };
        let key = item.get(merge_key).ok_or_else(|| {
            PatchError::Bad(format!(
                "{path}: an element without the merge key {merge_key:?}"
            ))
        })?;
        let found = target.iter().position(|e| e.get(merge_key) == Some(key));
        if directive(item)? == Some("delete") {
            if let Some(index) = found {
                target.remove(index);
            }
            continue;
        }
        match found {
            Some(index) => {
                let current = match target.remove(index) {
                    Value::Object(map) => map,
                    _ => Map::new(),
                };
                let merged = strategic_map(kind, &element_path, current, item)?;
                target.insert(index, Value::Object(merged));
            }
            None => target.push(Value::Object(strategic_map(
                kind,
                &element_path,
                Map::new(),
                item,
            )?)),
        }
    }
    Ok(target)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn node() -> Value {
        json!({
            "metadata": {"name": "n1", "labels": {"a": "1", "b": "2"}},
            "spec": {"podCIDR": "10.0.0.0/24", "taints": [{"key": "x", "effect": "NoSchedule"}]},
            "status": {"conditions": [
                {"type": "Ready", "status": "True", "reason": "KubeletReady"},
                {"type": "NetworkUnavailable", "status": "True", "reason": "NoRouteCreated"},
            ]},
        })
    }

    #[test]
    fn a_merge_patch_merges_objects_removes_nulls_and_replaces_lists() {
        let patch = json!({
            "metadata": {"labels": {"a": null, "c": "3"}},
            "status": {"conditions": [{"type": "NetworkUnavailable", "status": "False"}]},
        });
        let patched = apply(PatchType::Merge, "Node", &node(), &patch).unwrap();
        assert_eq!(patched["metadata"]["labels"], json!({"b": "2", "c": "3"}));
        // RFC 7386 has no list merging: Ready is gone.
        assert_eq!(
            patched["status"]["conditions"],
            json!([{"type": "NetworkUnavailable", "status": "False"}])
        );
        assert_eq!(patched["spec"], node()["spec"]);
    }

    #[test]
    fn a_strategic_merge_patch_merges_node_conditions_by_type_and_keeps_the_others() {
        let patch = json!({"status": {"conditions": [
            {"type": "NetworkUnavailable", "status": "False", "reason": "TabbyIsUp"},
            {"type": "MemoryPressure", "status": "False"},
        ]}});
        let patched = apply(PatchType::Strategic, "Node", &node(), &patch).unwrap();
        assert_eq!(
            patched["status"]["conditions"],
            json!([
                {"type": "Ready", "status": "True", "reason": "KubeletReady"},
                {"type": "NetworkUnavailable", "status": "False", "reason": "TabbyIsUp"},
                {"type": "MemoryPressure", "status": "False"},
            ])
        );
        // Taints have no patch strategy: a list there replaces.
        let taints = json!({"spec": {"taints": []}});
        let patched = apply(PatchType::Strategic, "Node", &node(), &taints).unwrap();
        assert_eq!(patched["spec"]["taints"], json!([]));
    }

    #[test]
    fn strategic_delete_and_replace_directives_work_and_unknown_ones_are_named() {
        let delete = json!({"status": {"conditions": [{"type": "Ready", "$patch": "delete"}]}});
        let patched = apply(PatchType::Strategic, "Node", &node(), &delete).unwrap();
        assert_eq!(patched["status"]["conditions"].as_array().unwrap().len(), 1);
        let replace = json!({"metadata": {"labels": {"$patch": "replace", "z": "9"}}});
        let patched = apply(PatchType::Strategic, "Node", &node(), &replace).unwrap();
        assert_eq!(patched["metadata"]["labels"], json!({"z": "9"}));
        let order = json!({"status": {"$setElementOrder/conditions": [{"type": "Ready"}]}});
        let error = apply(PatchType::Strategic, "Node", &node(), &order).unwrap_err();
        assert!(
            matches!(&error, PatchError::Bad(m) if m.contains("$setElementOrder/conditions")),
            "{error:?}"
        );
        let keyless = json!({"status": {"conditions": [{"status": "False"}]}});
        let error = apply(PatchType::Strategic, "Node", &node(), &keyless).unwrap_err();
        assert!(matches!(&error, PatchError::Bad(m) if m.contains("\"type\"")));
    }

    #[test]
    fn a_json_patch_applies_every_operation_in_order_or_fails_naming_it() {
        let patch = json!([
            {"op": "test", "path": "/spec/podCIDR", "value": "10.0.0.0/24"},
            {"op": "replace", "path": "/metadata/labels/a", "value": "one"},
            {"op": "add", "path": "/metadata/labels/k8s.io~1role", "value": "r"},
            {"op": "remove", "path": "/metadata/labels/b"},
            {"op": "add", "path": "/spec/taints/-", "value": {"key": "y"}},
            {"op": "copy", "from": "/spec/podCIDR", "path": "/metadata/labels/cidr"},
            {"op": "move", "from": "/spec/taints/0", "path": "/spec/first"},
        ]);
        let patched = apply(PatchType::Json, "Node", &node(), &patch).unwrap();
        assert_eq!(
            patched["metadata"]["labels"],
            json!({"a": "one", "k8s.io/role": "r", "cidr": "10.0.0.0/24"})
        );
        assert_eq!(patched["spec"]["taints"], json!([{"key": "y"}]));
        assert_eq!(patched["spec"]["first"]["key"], "x");

        let failed_test = json!([{"op": "test", "path": "/spec/podCIDR", "value": "x"}]);
        assert!(matches!(
            apply(PatchType::Json, "Node", &node(), &failed_test),
            Err(PatchError::TestFailed(_))
        ));
        let absent = json!([{"op": "remove", "path": "/spec/nothing"}]);
        let error = apply(PatchType::Json, "Node", &node(), &absent).unwrap_err();
        assert_eq!(
            error,
            PatchError::Bad("operation 0: nothing at \"/spec/nothing\"".into())
        );
        let not_a_list = json!({"op": "add"});
        assert!(matches!(
            apply(PatchType::Json, "Node", &node(), &not_a_list),
            Err(PatchError::Bad(_))
        ));
    }

    #[test]
    fn content_types_name_the_patch_types_and_custom_resources_accept_no_strategic() {
        assert_eq!(
            PatchType::of("application/merge-patch+json; charset=utf-8"),
            Some(PatchType::Merge)
        );
        assert_eq!(PatchType::of("application/apply-patch+yaml"), None);
        assert!(!PatchType::accepted(true).contains("strategic"));
        assert!(PatchType::accepted(false).contains("strategic"));
    }
}
