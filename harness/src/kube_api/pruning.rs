//! Structural-schema pruning, as the API server applies it to every custom resource
//! written (Kubernetes docs, "Extend the Kubernetes API with CustomResourceDefinitions",
//! Field pruning): a field the CRD's `openAPIV3Schema` does not specify is dropped
//! before the object is stored, silently but for a `Warning` header. What is kept:
//!
//! - `apiVersion`, `kind` and `metadata` at the root (metadata is ObjectMeta's, not
//!   the schema's, and this double keeps it whole);
//! - in an object with `properties`, the fields named there (each pruned by its own
//!   schema); in one with `additionalProperties` (a map), every key, each value
//!   pruned by that schema;
//! - every field under `x-kubernetes-preserve-unknown-fields: true` (the properties
//!   it also names are still pruned by theirs);
//! - array items, each pruned by `items`.
//!
//! `allOf`/`anyOf`/`oneOf` cannot add fields to a structural schema, so they play no
//! part. Values are not validated here (types, formats, enums, CEL rules).

use serde_json::Value;

/// Prunes `object` (a custom resource) by `schema` (its version's
/// `openAPIV3Schema`); returns the paths of the fields dropped (`spec.foo`).
pub fn prune(object: &mut Value, schema: &Value) -> Vec<String> {
    let Value::Object(fields) = object else {
        return Vec::new();
    };
    let kept: Vec<(String, Value)> = ["apiVersion", "kind", "metadata"]
        .into_iter()
        .filter_map(|name| Some((name.to_owned(), fields.remove(name)?)))
        .collect();
    let mut dropped = Vec::new();
    prune_value(object, schema, "", &mut dropped);
    if let Value::Object(fields) = object {
        fields.extend(kept);
    }
    dropped
}

fn prune_value(value: &mut Value, schema: &Value, path: &str, dropped: &mut Vec<String>) {
    match value {
        Value::Array(items) => {
            if let Some(items_schema) = schema.get("items") {
                for (i, item) in items.iter_mut().enumerate() {
                    prune_value(item, items_schema, &format!("{path}[{i}]"), dropped);
                }
            }
        }
        Value::Object(fields) => {
            let preserve = schema["x-kubernetes-preserve-unknown-fields"] == true;
            let map = schema.get("additionalProperties").filter(|s| s.is_object());
            for (name, child) in fields.iter_mut() {
                let child_path = join(path, name);
                let child_schema = schema
                    .get("properties")
                    .and_then(|p| p.get(name.as_str()))
                    .or(map);
                if let Some(child_schema) = child_schema {
                    prune_value(child, child_schema, &child_path, dropped);
                }
            }
            if !preserve && map.is_none() && schema["additionalProperties"] != true {
                fields.retain(|name, _| {
                    let kept = known(schema, name);
                    if !kept {
                        dropped.push(join(path, name));
                    }
                    kept
                });
            }
        }
        _ => {}
    }
}

/// `spec.name`, or `name` at the root.
fn join(path: &str, name: &str) -> String {
    match path {
        "" => name.to_owned(),
        path => format!("{path}.{name}"),
    }
}

/// Whether `schema` names the property `name` (or preserves unknown ones).
fn known(schema: &Value, name: &str) -> bool {
    schema["x-kubernetes-preserve-unknown-fields"] == true
        || schema
            .get("properties")
            .is_some_and(|p| p.get(name).is_some())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn schema() -> Value {
        json!({
            "type": "object",
            "properties": {
                "spec": {
                    "type": "object",
                    "properties": {
                        "cidr": {"type": "string"},
                        "peers": {"type": "array", "items": {
                            "type": "object", "properties": {"ip": {"type": "string"}},
                        }},
                        "labels": {"type": "object", "additionalProperties": {
                            "type": "object", "properties": {"v": {"type": "string"}},
                        }},
                        "free": {
                            "type": "object",
                            "x-kubernetes-preserve-unknown-fields": true,
                            "properties": {"inner": {
                                "type": "object", "properties": {"a": {"type": "string"}},
                            }},
                        },
                    },
                },
            },
        })
    }

    #[test]
    fn unknown_fields_go_at_every_depth_and_named_ones_stay() {
        let mut object = json!({
            "apiVersion": "x/v1", "kind": "K", "metadata": {"name": "a", "odd": 1},
            "status": {"gone": true},
            "spec": {
                "cidr": "10.0.0.0/8", "typo": 1,
                "peers": [{"ip": "192.0.2.1", "port": 179}],
                "labels": {"any-key": {"v": "kept", "w": "dropped"}},
            },
        });
        let mut dropped = prune(&mut object, &schema());
        dropped.sort();
        assert_eq!(
            dropped,
            [
                "spec.labels.any-key.w",
                "spec.peers[0].port",
                "spec.typo",
                "status"
            ]
        );
        assert_eq!(
            object,
            json!({
                "apiVersion": "x/v1", "kind": "K", "metadata": {"name": "a", "odd": 1},
                "spec": {
                    "cidr": "10.0.0.0/8",
                    "peers": [{"ip": "192.0.2.1"}],
                    "labels": {"any-key": {"v": "kept"}},
                },
            })
        );
    }

    #[test]
    fn preserve_unknown_fields_keeps_the_unknown_and_prunes_the_named() {
        let mut object = json!({"spec": {"free": {
            "anything": {"deep": [1, 2]},
            "inner": {"a": "kept", "b": "dropped"},
        }}});
        assert_eq!(prune(&mut object, &schema()), ["spec.free.inner.b"]);
        assert_eq!(
            object,
            json!({"spec": {"free": {"anything": {"deep": [1, 2]}, "inner": {"a": "kept"}}}})
        );
    }
}
