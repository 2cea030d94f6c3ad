//! Reading the resources of `-f FILE|DIR|-`: every document of every file is read
//! and validated before anything is written, so one bad document stops the whole
//! command and nothing is half-applied.
//!
//! A file holds `---`-separated YAML documents or one JSON value; a document is a
//! resource (tabby's `tabby.dev/v1`, or Calico's `projectcalico.org/v3`, converted) or
//! a `List` / `<Kind>List` of them, as `get -o json` and `calicoctl get -o yaml` write.

pub(crate) mod decode;
mod hint;
mod parse;

use std::collections::BTreeMap;
use std::fmt;
use std::io::Read;
use std::path::{Path, PathBuf};

use crate::error::CliError;
use crate::kinds::{AnyResource, ResourceKind};

/// One resource read from a file.
#[derive(Debug, Clone, PartialEq)]
pub struct Document {
    pub origin: Origin,
    pub resource: AnyResource,
    /// What converting from Calico's form dropped or changed, for the operator.
    pub notes: Vec<String>,
}

/// Where a document came from: the file, and which document and list item in it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Origin {
    pub source: String,
    /// 1-based; set when the file holds more than one document.
    pub document: Option<usize>,
    /// The index in a `List`'s items.
    pub item: Option<usize>,
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.source)?;
        if let Some(document) = self.document {
            write!(f, ", document {document}")?;
        }
        if let Some(item) = self.item {
            write!(f, ", items[{item}]")?;
        }
        Ok(())
    }
}

/// A file or document that cannot be used, and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{origin}: {message}")]
pub struct InputError {
    /// The file, document and resource.
    pub origin: String,
    pub message: String,
}

/// Reads and validates every resource of `paths` (`-` is standard input; a
/// directory contributes its `.yaml`, `.yml` and `.json` files in name order).
pub fn read_all(paths: &[PathBuf], stdin: &mut dyn Read) -> Result<Vec<Document>, CliError> {
    let mut documents = Vec::new();
    for path in expand(paths)? {
        let (source, text) = if path == Path::new("-") {
            let mut text = String::new();
            stdin
                .read_to_string(&mut text)
                .map_err(CliError::io("reading standard input"))?;
            ("<stdin>".to_owned(), text)
        } else {
            let source = path.display().to_string();
            let text = std::fs::read_to_string(&path).map_err(|e| InputError {
                origin: source.clone(),
                message: format!("cannot read the file: {e}"),
            })?;
            (source, text)
        };
        documents.extend(parse::documents(&source, &text)?);
    }
    if documents.is_empty() {
        return Err(CliError::Usage(
            "the files hold no resources (is the file empty?)".to_owned(),
        ));
    }
    reject_duplicates(&documents)?;
    Ok(documents)
}

/// Parses the resources of one text, as `read_all` does for each file.
pub fn read_text(source: &str, text: &str) -> Result<Vec<Document>, InputError> {
    parse::documents(source, text)
}

fn expand(paths: &[PathBuf]) -> Result<Vec<PathBuf>, CliError> {
    let mut files = Vec::new();
    for path in paths {
        if !path.is_dir() {
            files.push(path.clone());
            continue;
        }
        let entries = std::fs::read_dir(path).map_err(CliError::io(format!(
            "reading directory {}",
            path.display()
        )))?;
        let mut found: Vec<PathBuf> = entries
            .filter_map(|entry| entry.ok().map(|e| e.path()))
            .filter(|p| {
                let extension = p.extension().and_then(|e| e.to_str());
                matches!(extension, Some("yaml" | "yml" | "json")) && p.is_file()
            })
            .collect();
        found.sort();
        files.extend(found);
    }
    if files.iter().filter(|p| *p == Path::new("-")).count() > 1 {
        return Err(CliError::Usage(
            "-f - (standard input) can be given only once".to_owned(),
        ));
    }
    Ok(files)
}

/// The same resource twice would make the outcome depend on the order of writes.
fn reject_duplicates(documents: &[Document]) -> Result<(), InputError> {
    let mut seen: BTreeMap<(ResourceKind, &str), &Origin> = BTreeMap::new();
    for document in documents {
        let key = (document.resource.kind(), document.resource.name());
        if let Some(first) = seen.insert(key, &document.origin) {
            return Err(InputError {
                origin: document.origin.to_string(),
                message: format!(
                    "{} is also defined at {first}: keep one of them",
                    document.resource.describe()
                ),
            });
        }
    }
    Ok(())
}
