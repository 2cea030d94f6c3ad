//! Reading the resources of `-f FILE|DIR|-`: every document of every file is read
//! and validated before anything is written. A bad document does not stop the
//! reading: every problem of every document is collected ([`Input::problems`]), so
//! the operator sees them all at once; the writing commands then write nothing,
//! `convert` prints what did convert.
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

/// Every document of the files given: the resources, the notes of documents that
/// hold no resource, and the problems of those that cannot be used.
#[derive(Debug, Default)]
pub struct Input {
    pub documents: Vec<Document>,
    pub notices: Vec<Notice>,
    pub problems: Vec<InputError>,
}

/// A Calico document that converts into notes alone (a kind tabby takes as its
/// daemons' flags).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notice {
    /// The file, document and resource.
    pub origin: String,
    pub notes: Vec<String>,
}

impl Input {
    /// The resources, when every document can be used; otherwise each problem goes
    /// to `report` and the error says nothing was done.
    pub fn all_or_nothing(
        self,
        mut report: impl FnMut(&InputError) -> Result<(), CliError>,
    ) -> Result<Vec<Document>, CliError> {
        match <[InputError; 1]>::try_from(self.problems) {
            Ok([only]) => Err(only.into()),
            Err(problems) if problems.is_empty() => Ok(self.documents),
            Err(problems) => {
                for problem in &problems {
                    report(problem)?;
                }
                Err(CliError::Refused(format!(
                    "{} problems in the files (above): nothing was done",
                    problems.len()
                )))
            }
        }
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
pub fn read_all(paths: &[PathBuf], stdin: &mut dyn Read) -> Result<Input, CliError> {
    let mut input = Input::default();
    for path in expand(paths)? {
        let (source, text) = if path == Path::new("-") {
            let mut text = String::new();
            stdin
                .read_to_string(&mut text)
                .map_err(CliError::io("reading standard input"))?;
            ("<stdin>".to_owned(), text)
        } else {
            let source = path.display().to_string();
            match std::fs::read_to_string(&path) {
                Ok(text) => (source, text),
                Err(e) => {
                    input.problems.push(InputError {
                        origin: source,
                        message: format!("cannot read the file: {e}"),
                    });
                    continue;
                }
            }
        };
        parse::documents(&source, &text, &mut input);
    }
    if input.documents.is_empty() && input.notices.is_empty() && input.problems.is_empty() {
        return Err(CliError::Usage(
            "the files hold no resources (is the file empty?)".to_owned(),
        ));
    }
    reject_duplicates(&mut input);
    Ok(input)
}

/// Parses the resources of one text, as `read_all` does for each file.
pub fn read_text(source: &str, text: &str) -> Input {
    let mut input = Input::default();
    parse::documents(source, text, &mut input);
    input
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

/// The same resource twice would make the outcome depend on the order of writes:
/// the second is a problem.
fn reject_duplicates(input: &mut Input) {
    let mut seen: BTreeMap<(ResourceKind, String), Origin> = BTreeMap::new();
    let mut kept = Vec::new();
    for document in std::mem::take(&mut input.documents) {
        let key = (
            document.resource.kind(),
            document.resource.name().to_owned(),
        );
        match seen.get(&key) {
            Some(first) => input.problems.push(InputError {
                origin: document.origin.to_string(),
                message: format!(
                    "{} is also defined at {first}: keep one of them",
                    document.resource.describe()
                ),
            }),
            None => {
                seen.insert(key, document.origin.clone());
                kept.push(document);
            }
        }
    }
    input.documents = kept;
}
