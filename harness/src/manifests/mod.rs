//! What `kubectl apply -k manifests/` installs, read for the `manifests_*` tests:
//! every YAML document with its file, strict parsing into the Kubernetes types
//! ([`strict`]), the calls a Role grants ([`rbac`]), the per-plugin configs a
//! runtime derives from a CNI network config list ([`cni`]), and the agent
//! image's CNI installer run as its init container runs it ([`install`]).

pub mod cni;
pub mod install;
pub mod rbac;
pub mod strict;

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use serde::Deserialize;
use serde_json::Value;

/// The kustomization's own file, which lists the others.
pub const KUSTOMIZATION: &str = "kustomization.yaml";

/// `manifests/` of this checkout.
pub fn directory() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../manifests")
}

/// One YAML document of a manifest file.
#[derive(Debug, Clone)]
pub struct Document {
    /// Relative to `manifests/`.
    pub file: String,
    /// Its place in the file, from 0.
    pub index: usize,
    pub value: Value,
}

impl Document {
    fn text(&self, pointer: &str) -> &str {
        self.value
            .pointer(pointer)
            .and_then(Value::as_str)
            .unwrap_or("")
    }

    pub fn api_version(&self) -> &str {
        self.text("/apiVersion")
    }

    pub fn kind(&self) -> &str {
        self.text("/kind")
    }

    pub fn name(&self) -> &str {
        self.text("/metadata/name")
    }

    /// Empty for cluster-scoped objects.
    pub fn namespace(&self) -> &str {
        self.text("/metadata/namespace")
    }

    /// `file#index (Kind name)`, for messages.
    pub fn place(&self) -> String {
        format!(
            "{}#{} ({} {})",
            self.file,
            self.index,
            self.kind(),
            self.name()
        )
    }
}

/// Every `.yaml` file under `manifests/`, relative and sorted.
pub fn yaml_files() -> Result<Vec<String>> {
    fn walk(root: &Path, dir: &Path, files: &mut Vec<String>) -> Result<()> {
        for entry in std::fs::read_dir(dir).with_context(|| format!("reading {}", dir.display()))? {
            let path = entry?.path();
            if path.is_dir() {
                walk(root, &path, files)?;
            } else if path.extension().is_some_and(|e| e == "yaml" || e == "yml") {
                let relative = path.strip_prefix(root).expect("under the root");
                files.push(relative.to_string_lossy().into_owned());
            }
        }
        Ok(())
    }
    let root = directory();
    let mut files = Vec::new();
    walk(&root, &root, &mut files)?;
    files.sort();
    Ok(files)
}

/// The documents of one file (empty ones, as after a leading `---`, skipped).
pub fn read(file: &str) -> Result<Vec<Document>> {
    let path = directory().join(file);
    let text =
        std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
    let mut documents = Vec::new();
    for (index, document) in yaml_serde::Deserializer::from_str(&text).enumerate() {
        let value =
            Value::deserialize(document).with_context(|| format!("{file}#{index}: not YAML"))?;
        if !value.is_null() {
            documents.push(Document {
                file: file.to_owned(),
                index,
                value,
            });
        }
    }
    Ok(documents)
}

/// Every document the kustomization installs.
pub fn documents() -> Result<Vec<Document>> {
    let mut all = Vec::new();
    for file in kustomization()?.resources {
        all.extend(read(&file)?);
    }
    Ok(all)
}

/// The one document of `kind` named `name`.
pub fn find<'a>(documents: &'a [Document], kind: &str, name: &str) -> Result<&'a Document> {
    let mut found = documents
        .iter()
        .filter(|d| d.kind() == kind && d.name() == name);
    match (found.next(), found.next()) {
        (Some(document), None) => Ok(document),
        (None, _) => bail!("no {kind} {name:?} in manifests/"),
        (Some(a), Some(b)) => bail!("{kind} {name:?} twice: {} and {}", a.place(), b.place()),
    }
}

/// `kustomization.yaml`: the parts tabby uses, unknown fields refused.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Kustomization {
    pub api_version: String,
    pub kind: String,
    pub resources: Vec<String>,
}

pub fn kustomization() -> Result<Kustomization> {
    let path = directory().join(KUSTOMIZATION);
    let text =
        std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
    let kustomization: Kustomization = yaml_serde::from_str(&text).context(KUSTOMIZATION)?;
    if kustomization.api_version != "kustomize.config.k8s.io/v1beta1"
        || kustomization.kind != "Kustomization"
    {
        bail!("{KUSTOMIZATION} is not a kustomize.config.k8s.io/v1beta1 Kustomization");
    }
    Ok(kustomization)
}
