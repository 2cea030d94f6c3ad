//! OpenAPI v3 schemas built from the Rust types: [`Schema`] for every field type, so a
//! struct's schema names its fields and takes the rest from their types. The output is
//! structural, as Kubernetes requires of CRD schemas: every node has a `type` (or
//! `x-kubernetes-int-or-string`), no `anyOf`/`oneOf` carries types, and objects have
//! either `properties` or `additionalProperties`.

use std::collections::BTreeMap;
use std::net::{Ipv4Addr, Ipv6Addr};

use serde_json::{Map, Value, json};

/// A type's OpenAPI v3 schema.
pub trait Schema {
    fn schema() -> Value;
}

impl Schema for bool {
    fn schema() -> Value {
        json!({"type": "boolean"})
    }
}

macro_rules! integer_schema {
    ($($type:ty),+) => {$(
        impl Schema for $type {
            fn schema() -> Value {
                json!({"type": "integer", "minimum": <$type>::MIN, "maximum": <$type>::MAX})
            }
        }
    )+};
}
integer_schema!(u8, u16, u32);

impl Schema for u64 {
    fn schema() -> Value {
        json!({"type": "integer", "minimum": 0})
    }
}

impl Schema for usize {
    fn schema() -> Value {
        json!({"type": "integer", "minimum": 0})
    }
}

impl Schema for String {
    fn schema() -> Value {
        json!({"type": "string"})
    }
}

impl Schema for Ipv4Addr {
    fn schema() -> Value {
        json!({"type": "string", "format": "ipv4"})
    }
}

impl Schema for Ipv6Addr {
    fn schema() -> Value {
        json!({"type": "string", "format": "ipv6"})
    }
}

/// Optionality is the parent's business (`required`); `null` is allowed because
/// serde reads it as `None`.
impl<T: Schema> Schema for Option<T> {
    fn schema() -> Value {
        let mut schema = T::schema();
        schema["nullable"] = true.into();
        schema
    }
}

impl<T: Schema> Schema for Vec<T> {
    fn schema() -> Value {
        json!({"type": "array", "items": T::schema()})
    }
}

impl<T: Schema> Schema for BTreeMap<String, T> {
    fn schema() -> Value {
        json!({"type": "object", "additionalProperties": T::schema()})
    }
}

/// A string the type parses itself; `description` says what it holds.
pub fn string(description: &str) -> Value {
    json!({"type": "string", "description": description})
}

/// One of `values`, as serde writes a unit-variant enum.
pub fn one_of(values: &[&str]) -> Value {
    json!({"type": "string", "enum": values})
}

/// An object with the given `(name, schema, required)` properties and no others.
pub fn object(fields: &[(&str, Value, bool)]) -> Value {
    let mut properties = Map::new();
    let mut required = Vec::new();
    for (name, schema, needed) in fields {
        properties.insert((*name).to_owned(), schema.clone());
        if *needed {
            required.push(Value::from(*name));
        }
    }
    let mut schema = json!({"type": "object", "properties": properties});
    if !required.is_empty() {
        schema["required"] = required.into();
    }
    schema
}

/// `Schema` for a struct: `"jsonName": Type` pairs, required ones marked
/// `"jsonName" (required): Type`, so a field's schema always follows its Rust type.
#[macro_export]
#[doc(hidden)]
macro_rules! object_schema {
    ($type:ty { $($name:literal $(($required:ident))? : $field:ty),* $(,)? }) => {
        impl $crate::crd::Schema for $type {
            fn schema() -> serde_json::Value {
                $crate::crd::schema::object(&[
                    $(($name, <$field as $crate::crd::Schema>::schema(),
                        $crate::object_schema!(@required $($required)?))),*
                ])
            }
        }
    };
    (@required) => { false };
    (@required $t:tt) => { true };
}

/// `Schema` for a type written as a string, with a description of its form.
#[macro_export]
#[doc(hidden)]
macro_rules! string_schema {
    ($type:ty, $description:literal) => {
        impl $crate::crd::Schema for $type {
            fn schema() -> serde_json::Value {
                $crate::crd::schema::string($description)
            }
        }
    };
}

/// `Schema` for a unit-variant enum, with the names serde writes.
#[macro_export]
#[doc(hidden)]
macro_rules! enum_schema {
    ($type:ty, [$($value:literal),+ $(,)?]) => {
        impl $crate::crd::Schema for $type {
            fn schema() -> serde_json::Value {
                $crate::crd::schema::one_of(&[$($value),+])
            }
        }
    };
}

/// Problems that make a schema non-structural, with their paths.
pub fn structural_problems(schema: &Value, path: &str, problems: &mut Vec<String>) {
    let Some(node) = schema.as_object() else {
        problems.push(format!("{path}: not an object"));
        return;
    };
    let typed = node.get("type").and_then(Value::as_str);
    let int_or_string = node.get("x-kubernetes-int-or-string") == Some(&Value::Bool(true));
    if typed.is_none() && !int_or_string {
        problems.push(format!("{path}: no type"));
    }
    for forbidden in ["oneOf", "anyOf", "allOf", "not"] {
        if node.contains_key(forbidden) && !int_or_string {
            problems.push(format!("{path}: {forbidden}"));
        }
    }
    if node.contains_key("properties") && node.contains_key("additionalProperties") {
        problems.push(format!("{path}: both properties and additionalProperties"));
    }
    if let Some(properties) = node.get("properties").and_then(Value::as_object) {
        if typed != Some("object") {
            problems.push(format!("{path}: properties on a non-object"));
        }
        for (name, child) in properties {
            structural_problems(child, &format!("{path}.{name}"), problems);
        }
    }
    if let Some(child) = node.get("additionalProperties").filter(|c| c.is_object()) {
        structural_problems(child, &format!("{path}[*]"), problems);
    }
    if let Some(items) = node.get("items") {
        structural_problems(items, &format!("{path}[]"), problems);
    }
}
