//! From text to documents. YAML is read twice: once into values, which finds
//! malformed YAML anywhere in the file and tells each document's kind, then each
//! document again straight from the text as its kind, so that field errors carry
//! the line and column. JSON is read with serde_json, which locates errors too.

use serde::Deserialize;
use yaml_serde::Value;

use super::decode::{self, Decoded, Failure};
use super::{Document, Input, InputError, Notice, Origin};

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

pub(super) fn documents(source: &str, text: &str, input: &mut Input) {
    let looks_like_json = matches!(text.trim_start().chars().next(), Some('{' | '['));
    if looks_like_json {
        json_documents(source, text, input);
    } else {
        yaml_documents(source, text, input);
    }
}

fn yaml_documents(source: &str, text: &str, input: &mut Input) {
    let values: Result<Vec<Value>, _> = yaml_serde::Deserializer::from_str(text)
        .map(Value::deserialize)
        .collect();
    let values = match values {
        Ok(values) => values,
        Err(e) => {
            input.problems.push(InputError {
                origin: source.to_owned(),
                message: format!("malformed YAML: {e}"),
            });
            return;
        }
    };
    let several = values.iter().filter(|v| !v.is_null()).count() > 1;
    let streams = yaml_serde::Deserializer::from_str(text);
    for (index, (value, stream)) in values.iter().zip(streams).enumerate() {
        if value.is_null() {
            continue; // an empty document, as a trailing `---` makes
        }
        let origin = Origin {
            source: source.to_owned(),
            document: several.then_some(index + 1),
            item: None,
        };
        let header = match Header::of(value) {
            Ok(header) => header,
            Err(message) => {
                input.problems.push(error(&origin, None, message));
                continue;
            }
        };
        if header.list_item_kind().is_some() {
            list_items(&origin, &header, value, input);
            continue;
        }
        let decoded = decode::decode(&header.api_version, &header.kind, stream);
        finish(origin, &header, decoded, None, input);
    }
}

fn json_documents(source: &str, text: &str, input: &mut Input) {
    let origin = Origin {
        source: source.to_owned(),
        document: None,
        item: None,
    };
    let value: Value = match serde_json::from_str(text) {
        Ok(value) => value,
        Err(e) => {
            input.problems.push(InputError {
                origin: source.to_owned(),
                message: format!("malformed JSON: {e}"),
            });
            return;
        }
    };
    if let Value::Sequence(items) = &value {
        for (i, item) in items.iter().enumerate() {
            item_document(&origin, i, item, None, input);
        }
        return;
    }
    let header = match Header::of(&value) {
        Ok(header) => header,
        Err(message) => return input.problems.push(error(&origin, None, message)),
    };
    if header.list_item_kind().is_some() {
        return list_items(&origin, &header, &value, input);
    }
    let mut track = serde_path_to_error::Track::new();
    let mut json = serde_json::Deserializer::from_str(text);
    let tracked = serde_path_to_error::Deserializer::new(&mut json, &mut track);
    let decoded = decode::decode(&header.api_version, &header.kind, tracked);
    let path = track.path().to_string();
    finish(origin, &header, decoded, Some(&path), input);
}

/// The items of a `List` document; an item without apiVersion or kind takes the
/// list's (`IPPoolList` holds `IPPool`s).
fn list_items(origin: &Origin, list: &Header, value: &Value, input: &mut Input) {
    let items = match value.get("items") {
        Some(Value::Sequence(items)) => items,
        None | Some(Value::Null) => return,
        Some(_) => {
            let message = "items is not a list of resources".to_owned();
            return input.problems.push(error(origin, Some(list), message));
        }
    };
    for (i, item) in items.iter().enumerate() {
        item_document(origin, i, item, Some(list), input);
    }
}

fn item_document(
    origin: &Origin,
    index: usize,
    item: &Value,
    list: Option<&Header>,
    input: &mut Input,
) {
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
    let header = match Header::of(&item) {
        Ok(header) => header,
        Err(message) => return input.problems.push(error(&origin, None, message)),
    };
    if header.list_item_kind().is_some() {
        let message = "a list inside a list is not supported: put its items at the top".into();
        return input.problems.push(error(&origin, Some(&header), message));
    }
    let mut track = serde_path_to_error::Track::new();
    let tracked = serde_path_to_error::Deserializer::new(item, &mut track);
    let decoded = decode::decode(&header.api_version, &header.kind, tracked);
    let path = track.path().to_string();
    finish(origin, &header, decoded, Some(&path), input);
}

/// Files the document, or each of its problems with where it happened. `path` is
/// the field path a tracked deserializer saw (deserializers that locate errors
/// themselves give none).
fn finish(
    origin: Origin,
    header: &Header,
    decoded: Result<Decoded, Failure>,
    path: Option<&str>,
    input: &mut Input,
) {
    match decoded {
        Ok(Decoded {
            resource: Some(resource),
            notes,
        }) => input.documents.push(Document {
            origin,
            resource,
            notes,
        }),
        Ok(Decoded {
            resource: None,
            notes,
        }) => input.notices.push(Notice {
            origin: format!("{origin}, {}", header.describe()),
            notes,
        }),
        Err(Failure::Parse(message)) => {
            let message = match path {
                Some(path) if path != "." && !path.is_empty() => format!("{path}: {message}"),
                _ => message,
            };
            let message = super::hint::unknown_field(&message);
            input.problems.push(error(&origin, Some(header), message));
        }
        Err(Failure::Invalid(message)) => {
            input.problems.push(error(&origin, Some(header), message))
        }
        Err(Failure::Refused(messages)) => {
            for message in messages {
                input.problems.push(error(&origin, Some(header), message));
            }
        }
    }
}

fn error(origin: &Origin, header: Option<&Header>, message: String) -> InputError {
    let origin = match header {
        Some(header) => format!("{origin}, {}", header.describe()),
        None => origin.to_string(),
    };
    InputError { origin, message }
}
