use std::path::{Path, PathBuf};

use serde_json::{Value, json};

use super::*;
use crate::resources::*;
use crate::yaml;

fn repository() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

#[test]
fn the_committed_crds_are_the_generated_ones() {
    let path = repository().join(MANIFEST_PATH);
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        committed == manifest(),
        "{} is stale: run `cargo run -p api --bin crdgen`",
        path.display()
    );
}

#[test]
fn every_schema_is_structural() {
    for crd in definitions() {
        let schema = &crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"];
        let mut problems = Vec::new();
        schema::structural_problems(schema, "", &mut problems);
        assert!(
            problems.is_empty(),
            "{}: {problems:?}",
            crd["metadata"]["name"]
        );
    }
}

#[test]
fn immutable_fields_carry_a_transition_rule() {
    let pools = definitions()
        .into_iter()
        .find(|crd| crd["spec"]["names"]["kind"] == "IPPool")
        .unwrap();
    let spec = &pools["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"];
    assert_eq!(
        spec["properties"]["cidr"]["x-kubernetes-validations"][0]["rule"],
        "self == oldSelf"
    );
}

#[test]
fn ipv6_pool_schema_refuses_vxlan_and_filters_refuse_not_in() {
    let crd = |kind: &str| {
        definitions()
            .into_iter()
            .find(|crd| crd["spec"]["names"]["kind"] == kind)
            .unwrap()["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]
            .clone()
    };
    let rule = &crd("IPPool")["x-kubernetes-validations"][0];
    assert!(
        rule["rule"]
            .as_str()
            .unwrap()
            .contains("vxlanMode == 'Never'")
    );
    assert!(rule["message"].as_str().unwrap().contains("IPv4 pools"));
    let rules = &crd("BGPFilter")["properties"]["exportV4"]["items"]["properties"];
    assert_eq!(rules["matchOperator"]["enum"], json!(["Equal", "In"]));
}

/// Checks `value` against a structural schema as the API server would: types, enums,
/// required and unknown fields. Returns the first problem with its path.
fn check(schema: &Value, value: &Value, path: &str) -> Result<(), String> {
    if value.is_null() && schema["nullable"] == true {
        return Ok(());
    }
    if schema["x-kubernetes-int-or-string"] == true {
        return match value {
            Value::Number(_) | Value::String(_) => Ok(()),
            _ => Err(format!("{path}: {value} is not an int or string")),
        };
    }
    let fits = match schema["type"].as_str() {
        Some("object") => value.is_object(),
        Some("array") => value.is_array(),
        Some("string") => value.is_string(),
        Some("integer") => value.is_u64() || value.is_i64(),
        Some("boolean") => value.is_boolean(),
        other => return Err(format!("{path}: schema type {other:?}")),
    };
    if !fits {
        return Err(format!("{path}: {value} is not of type {}", schema["type"]));
    }
    if let Some(allowed) = schema["enum"].as_array()
        && !allowed.contains(value)
    {
        return Err(format!("{path}: {value} is not one of {allowed:?}"));
    }
    if let Some(items) = value.as_array() {
        for (i, item) in items.iter().enumerate() {
            check(&schema["items"], item, &format!("{path}[{i}]"))?;
        }
    }
    if let Some(fields) = value.as_object() {
        let properties = schema["properties"].as_object();
        for required in schema["required"].as_array().into_iter().flatten() {
            let name = required.as_str().unwrap_or_default();
            if !fields.contains_key(name) {
                return Err(format!("{path}.{name}: required"));
            }
        }
        for (name, field) in fields {
            let child = match (properties, schema.get("additionalProperties")) {
                (Some(properties), _) => match properties.get(name) {
                    Some(child) => child,
                    None if path == ".metadata" => continue,
                    None => return Err(format!("{path}.{name}: unknown field")),
                },
                (None, Some(child)) => child,
                (None, None) => continue,
            };
            check(child, field, &format!("{path}.{name}"))?;
        }
    }
    Ok(())
}

/// Reads the example of kind `R`, checks it round-trips (YAML → type → YAML → type)
/// and that its stored form passes the CRD's schema.
fn example<R: Resource>(file: &str) {
    let path = repository().join("docs/examples").join(file);
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
    let resources: Vec<R> =
        yaml::documents(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    assert!(
        !resources.is_empty(),
        "{} holds no {}",
        path.display(),
        R::KIND
    );
    let crd = definitions()
        .into_iter()
        .find(|crd| crd["spec"]["names"]["kind"] == R::KIND)
        .expect("a CRD for every kind");
    let schema = &crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"];
    for resource in resources {
        let written = yaml::to_string(&resource).unwrap();
        let again: R = yaml::from_str(&written).unwrap_or_else(|e| panic!("{written}\n{e}"));
        assert_eq!(again, resource, "{} does not round-trip", resource.name());
        let stored = serde_json::to_value(&resource).unwrap();
        check(schema, &stored, "").unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    }
}

#[test]
fn every_kind_has_an_example_that_round_trips_and_fits_its_schema() {
    example::<IPPool>("ippool.yaml");
    example::<IPAMBlock>("ipamblock.yaml");
    example::<BlockAffinity>("blockaffinity.yaml");
    example::<IPAMHandle>("ipamhandle.yaml");
    example::<IPAMConfig>("ipamconfig.yaml");
    example::<IPReservation>("ipreservation.yaml");
    example::<BGPConfiguration>("bgpconfiguration.yaml");
    example::<BGPPeer>("bgppeer.yaml");
    example::<BGPFilter>("bgpfilter.yaml");
    example::<Node>("node.yaml");
    example::<WorkloadEndpoint>("workloadendpoint.yaml");
    let files = std::fs::read_dir(repository().join("docs/examples"))
        .unwrap()
        .count();
    assert_eq!(files, definitions().len(), "one example file per kind");
}
