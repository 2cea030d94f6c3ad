//! From text to documents. YAML is read twice: once into values, which finds
//! malformed YAML anywhere in the file and tells each document's kind, then each
//! document again straight from the text as its kind, so that field errors carry
//! the line and column. JSON is read with serde_json, which locates errors too.

use serde::Deserialize;
use serde_yaml::Value;

use super::decode::{self, Decoded, Failure};
use super::{Document, InputError, Origin};

/// `apiVersion`, `kind` and `metadata.name` of a document, as far as present.
struct Header {
    api_version: String,
    kind: String,
    name: String,
}

impl Header {
    fn of(value: &Value) -> Result<Self, String> {
        if !value.is_mapping() {
            return Err(
                "is not a resource: expected a mapping with apiVersion, kind, \
                        metadata and spec"
                    .to_owned(),
            );
        }
        let text = |field: &str| value.get(field).and_then(Value::as_str).unwrap_or("");
        let name = value
            .get("metadata")
            .and_then(|m| m.get("name"))
            .and_then(Value::as_str)
            .unwrap_or("");
        let header = Self {
            api_version: text("apiVersion").to_owned(),
            kind: text("kind").to_owned(),
            name: name.to_owned(),
        };
        if header.api_version.is_empty() {
            return Err(format!(
                "apiVersion is missing: tabby resources start with apiVersion: {}",
                api::resources::API_VERSION
            ));
        }
        if header.kind.is_empty() {
            return Err(
                "kind is missing: say which kind of resource this is (IPPool, \
                        BGPPeer, ...)"
                    .to_owned(),
            );
        }
        Ok(header)
    }

    /// `List`, or `<Kind>List` whose items are of `<Kind>`.
    fn list_item_kind(&self) -> Option<&str> {
        self.kind.strip_suffix("List")
    }

    fn describe(&self) -> String {
        if self.name.is_empty() {
            self.kind.clone()
        } else {
            format!("{} {:?}", self.kind, self.name)
        }
    }
}

pub(super) fn documents(source: &str, text: &str) -> Result<Vec<Document>, InputError> {
    let looks_like_json = matches!(text.trim_start().chars().next(), Some('{' | '['));
    if looks_like_json {
        json_documents(source, text)
    } else {
        yaml_documents(source, text)
    }
}

fn yaml_documents(source: &str, text: &str) -> Result<Vec<Document>, InputError> {
    let malformed = |e: serde_yaml::Error| InputError {
        origin: source.to_owned(),
        message: format!("malformed YAML: {e}"),
    };
    let values: Vec<Value> = serde_yaml::Deserializer::from_str(text)
        .map(Value::deserialize)
        .collect::<Result<_, _>>()
        .map_err(malformed)?;
    let several = values.iter().filter(|v| !v.is_null()).count() > 1;
    let mut documents = Vec::new();
    let streams = serde_yaml::Deserializer::from_str(text);
    for (index, (value, stream)) in values.iter().zip(streams).enumerate() {
        if value.is_null() {
            continue; // an empty document, as a trailing `---` makes
        }
        let origin = Origin {
            source: source.to_owned(),
            document: several.then_some(index + 1),
            item: None,
        };
        let header = Header::of(value).map_err(|message| error(&origin, None, message))?;
        if header.list_item_kind().is_some() {
            documents.extend(list_items(&origin, &header, value)?);
            continue;
        }
        let decoded = decode::decode(&header.api_version, &header.kind, stream);
        documents.push(finish(origin, &header, decoded, None)?);
    }
    Ok(documents)
}

fn json_documents(source: &str, text: &str) -> Result<Vec<Document>, InputError> {
    let origin = Origin {
        source: source.to_owned(),
        document: None,
        item: None,
    };
    let value: Value = serde_json::from_str(text).map_err(|e| InputError {
        origin: source.to_owned(),
        message: format!("malformed JSON: {e}"),
    })?;
    if let Value::Sequence(items) = &value {
        return items
            .iter()
            .enumerate()
            .map(|(i, item)| item_document(&origin, i, item, None))
            .collect();
    }
    let header = Header::of(&value).map_err(|message| error(&origin, None, message))?;
    if header.list_item_kind().is_some() {
        return list_items(&origin, &header, &value);
    }
    let mut track = serde_path_to_error::Track::new();
    let mut json = serde_json::Deserializer::from_str(text);
    let tracked = serde_path_to_error::Deserializer::new(&mut json, &mut track);
    let decoded = decode::decode(&header.api_version, &header.kind, tracked);
    let path = track.path().to_string();
    Ok(vec![finish(origin, &header, decoded, Some(&path))?])
}

/// The items of a `List` document; an item without apiVersion or kind takes the
/// list's (`IPPoolList` holds `IPPool`s).
fn list_items(origin: &Origin, list: &Header, value: &Value) -> Result<Vec<Document>, InputError> {
    let items = match value.get("items") {
        Some(Value::Sequence(items)) => items,
        None | Some(Value::Null) => return Ok(Vec::new()),
        Some(_) => {
            let message = "items is not a list of resources".to_owned();
            return Err(error(origin, Some(list), message));
        }
    };
    items
        .iter()
        .enumerate()
        .map(|(i, item)| item_document(origin, i, item, Some(list)))
        .collect()
}

fn item_document(
    origin: &Origin,
    index: usize,
    item: &Value,
    list: Option<&Header>,
) -> Result<Document, InputError> {
    let origin = Origin {
        item: Some(index),
        ..origin.clone()
    };
    let mut item = item.clone();
    if let (Some(list), Value::Mapping(fields)) = (list, &mut item) {
        let inherited = [
            ("apiVersion", list.api_version.as_str()),
            ("kind", list.list_item_kind().unwrap_or_default()),
        ];
        for (field, value) in inherited {
            if !fields.contains_key(field) && !value.is_empty() {
                fields.insert(field.into(), value.into());
            }
        }
    }
    let header = Header::of(&item).map_err(|message| error(&origin, None, message))?;
    if header.list_item_kind().is_some() {
        let message = "a list inside a list is not supported: put its items at the top".into();
        return Err(error(&origin, Some(&header), message));
    }
    let mut track = serde_path_to_error::Track::new();
    let tracked = serde_path_to_error::Deserializer::new(item, &mut track);
    let decoded = decode::decode(&header.api_version, &header.kind, tracked);
    let path = track.path().to_string();
    finish(origin, &header, decoded, Some(&path))
}

/// The document, or its failure with where it happened. `path` is the field path a
/// tracked deserializer saw (deserializers that locate errors themselves give none).
fn finish(
    origin: Origin,
    header: &Header,
    decoded: Result<Decoded, Failure>,
    path: Option<&str>,
) -> Result<Document, InputError> {
    match decoded {
        Ok(Decoded { resource, notes }) => Ok(Document {
            origin,
            resource,
            notes,
        }),
        Err(Failure::Parse(message)) => {
            let message = match path {
                Some(path) if path != "." && !path.is_empty() => format!("{path}: {message}"),
                _ => message,
            };
            Err(error(
                &origin,
                Some(header),
                super::hint::unknown_field(&message),
            ))
        }
        Err(Failure::Invalid(message)) => Err(error(&origin, Some(header), message)),
    }
}

fn error(origin: &Origin, header: Option<&Header>, message: String) -> InputError {
    let origin = match header {
        Some(header) => format!("{origin}, {}", header.describe()),
        None => origin.to_string(),
    };
    InputError { origin, message }
}
