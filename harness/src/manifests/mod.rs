//! What `kubectl apply -k manifests/crds` and then `kubectl apply -k manifests/`
//! install, read for the `manifests_*` tests: every YAML document with its file, both
//! kustomizations and what `kubectl kustomize` renders of them, strict parsing into
//! the Kubernetes types ([`strict`]), the calls a Role grants ([`rbac`]), the
//! per-plugin configs a runtime derives from a CNI network config list ([`cni`]), and
//! the agent image's CNI installer run as its init container runs it ([`install`]),
//! the admission policies as the API double evaluates them ([`policies`]), and the
//! monitoring kinds and dashboard ([`monitoring`]).

pub mod cni;
pub mod install;
pub mod monitoring;
pub mod rbac;
pub mod strict;

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail};
use serde::Deserialize;
use serde_json::Value;

/// A kustomization's own file, which lists the others of its folder.
pub const KUSTOMIZATION: &str = "kustomization.yaml";

/// The CRDs' kustomization, relative to `manifests/`: applied, and its CRDs
/// established, before the top-level one, whose custom resources the API server
/// refuses until then.
pub const CRDS: &str = "crds";

/// The top-level kustomization, relative to `manifests/`.
pub const TOP: &str = "";

/// Services, ServiceMonitors, alerts and a Grafana dashboard, relative to
/// `manifests/`: applied last, where the Prometheus operator's CRDs exist.
pub const MONITORING: &str = "monitoring";

/// The kustomizations in the order they are applied.
pub const KUSTOMIZATIONS: [&str; 3] = [CRDS, TOP, MONITORING];

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

/// The generated CRDs (`crdgen` writes them), as the API double installs them.
pub fn crds() -> Result<String> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join(api::crd::MANIFEST_PATH);
    std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))
}

/// Every `.yaml` file under `manifests/` but the kustomizations' own, relative and
/// sorted.
pub fn yaml_files() -> Result<Vec<String>> {
    fn walk(root: &Path, dir: &Path, files: &mut Vec<String>) -> Result<()> {
        for entry in std::fs::read_dir(dir).with_context(|| format!("reading {}", dir.display()))? {
            let path = entry?.path();
            if path.is_dir() {
                walk(root, &path, files)?;
            } else if path.extension().is_some_and(|e| e == "yaml" || e == "yml")
                && path.file_name().is_some_and(|n| n != KUSTOMIZATION)
            {
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

/// Every document the kustomizations install, in the order they are applied.
pub fn documents() -> Result<Vec<Document>> {
    let mut all = Vec::new();
    for folder in KUSTOMIZATIONS {
        all.extend(documents_of(folder)?);
    }
    Ok(all)
}

/// Every document the kustomization in `folder` lists, as its files hold them.
pub fn documents_of(folder: &str) -> Result<Vec<Document>> {
    let mut all = Vec::new();
    for file in kustomization(folder)?.files(folder) {
        all.extend(read(&file)?);
    }
    Ok(all)
}

/// Every ValidatingAdmissionPolicy of `documents` with its binding, ready for
/// [`crate::kube_api::KubeApi::install_policy`].
pub fn policies(documents: &[Document]) -> Result<Vec<crate::kube_api::admission::Policy>> {
    documents
        .iter()
        .filter(|d| d.kind() == "ValidatingAdmissionPolicyBinding")
        .map(|binding| {
            let name = binding.value["spec"]["policyName"]
                .as_str()
                .unwrap_or_default();
            let policy = find(documents, "ValidatingAdmissionPolicy", name)?;
            crate::kube_api::admission::Policy::new(&policy.value, &binding.value)
                .with_context(|| binding.place())
        })
        .collect()
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
    #[serde(default)]
    pub images: Vec<Image>,
}

impl Kustomization {
    /// Its resources, relative to `manifests/` (it lives in `folder`).
    pub fn files(&self, folder: &str) -> Vec<String> {
        self.resources
            .iter()
            .map(|file| match folder {
                TOP => file.clone(),
                _ => format!("{folder}/{file}"),
            })
            .collect()
    }
}

/// An entry of `images:`: containers whose image is `name` run `new_name:new_tag`.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Image {
    pub name: String,
    pub new_name: String,
    pub new_tag: String,
}

impl Image {
    /// The image the containers run.
    pub fn reference(&self) -> String {
        format!("{}:{}", self.new_name, self.new_tag)
    }
}

/// The kustomization in `folder` (relative to `manifests/`).
pub fn kustomization(folder: &str) -> Result<Kustomization> {
    let file = Path::new(folder).join(KUSTOMIZATION);
    let path = directory().join(&file);
    let text =
        std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
    let kustomization: Kustomization =
        yaml_serde::from_str(&text).with_context(|| file.display().to_string())?;
    if kustomization.api_version != "kustomize.config.k8s.io/v1beta1"
        || kustomization.kind != "Kustomization"
    {
        bail!(
            "{} is not a kustomize.config.k8s.io/v1beta1 Kustomization",
            file.display()
        );
    }
    Ok(kustomization)
}

/// What `kubectl kustomize` renders of the kustomization in `folder`: what `kubectl
/// apply -k` sends to the API server.
pub fn render(folder: &str) -> Result<Vec<Value>> {
    let mut kubectl = Command::new("kubectl");
    kubectl.arg("kustomize").arg(directory().join(folder));
    let text = crate::process::exec(&mut kubectl)?;
    let mut rendered = Vec::new();
    for document in yaml_serde::Deserializer::from_str(&text) {
        let value = Value::deserialize(document).context("kubectl kustomize's output")?;
        if !value.is_null() {
            rendered.push(value);
        }
    }
    Ok(rendered)
}
