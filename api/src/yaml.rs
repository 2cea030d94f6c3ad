//! The one place YAML is read and written (with yaml_serde, the maintained
//! continuation of the deprecated serde_yaml). Reading checks `apiVersion` and
//! `kind` first, so a Calico manifest gets the hint to change its group before any
//! field error, then applies defaults and validates.

use serde::Deserialize;

use crate::resources::{Resource, ValidationError, check_header_of};

#[derive(Debug, thiserror::Error)]
pub enum YamlError {
    /// Not YAML, or a field that is unknown, missing or of the wrong type. yaml_serde
    /// puts the field path and the line in the message.
    #[error("{0}")]
    Syntax(#[from] yaml_serde::Error),
    #[error("{0}")]
    Invalid(#[from] ValidationError),
}

/// Reads one resource of kind `R`, defaults applied and validated.
pub fn from_str<R: Resource>(text: &str) -> Result<R, YamlError> {
    check_header::<R>(yaml_serde::Deserializer::from_str(text))?;
    read(yaml_serde::Deserializer::from_str(text))
}

/// Reads every `---`-separated document of a file holding resources of kind `R`.
pub fn documents<R: Resource>(text: &str) -> Result<Vec<R>, YamlError> {
    for document in yaml_serde::Deserializer::from_str(text) {
        check_header::<R>(document)?;
    }
    yaml_serde::Deserializer::from_str(text).map(read).collect()
}

/// Writes a resource as one YAML document.
pub fn to_string<R: Resource>(resource: &R) -> Result<String, YamlError> {
    Ok(yaml_serde::to_string(resource)?)
}

/// Writes any JSON value as one YAML document (generated manifests).
pub fn value_to_string(value: &serde_json::Value) -> String {
    yaml_serde::to_string(value).expect("JSON values always serialise as YAML")
}

/// `apiVersion` and `kind`, whatever else the document holds.
#[derive(Deserialize)]
struct Header {
    #[serde(default, rename = "apiVersion")]
    api_version: String,
    #[serde(default)]
    kind: String,
}

// A first pass over the document: parsing from the text (not from a parsed value)
// keeps the field paths and line numbers in the second pass's errors.
fn check_header<R: Resource>(document: yaml_serde::Deserializer<'_>) -> Result<(), YamlError> {
    let header = Header::deserialize(document)?;
    Ok(check_header_of::<R>(&header.api_version, &header.kind)?)
}

fn read<R: Resource>(document: yaml_serde::Deserializer<'_>) -> Result<R, YamlError> {
    let mut resource = R::deserialize(document)?;
    resource.apply_defaults();
    resource.validate()?;
    Ok(resource)
}
