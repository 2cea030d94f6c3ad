//! Which datastore to talk to, as operators expect to say it: flags, then `TABBY_*`
//! environment variables (tabby's shared datastore flags, `api::datastore::args`),
//! then the configuration file (`-c`, by default `/etc/tabby/calicoctl.yaml`, in
//! calicoctl's `CalicoAPIConfig` format, so an existing `/etc/calico/calicoctl.cfg`
//! works as is), then Calico's variables (`DATASTORE_TYPE`, `ETCD_ENDPOINTS`, ...),
//! then defaults. The generic `KUBECONFIG` ranks below the file: it is often set for
//! other clusters, while the file was written for this one.

use std::path::{Path, PathBuf};

use api::datastore::DatastoreConfig;
use api::datastore::config::{DatastoreType, Settings, setting, split_endpoints};
use clap::Args;
use serde::Deserialize;

use crate::error::CliError;

pub const DEFAULT_CONFIG: &str = "/etc/tabby/calicoctl.yaml";

/// The datastore flags every command takes: tabby's shared ones and the file.
#[derive(Debug, Clone, Default, Args)]
#[command(next_help_heading = "Datastore")]
#[group(skip)]
pub struct DatastoreArgs {
    /// Configuration file in calicoctl's CalicoAPIConfig format [default: /etc/tabby/calicoctl.yaml]
    #[arg(short = 'c', long = "config", env = "TABBY_CONFIG", global = true)]
    #[arg(value_name = "FILE")]
    pub config: Option<PathBuf>,
    #[command(flatten)]
    pub datastore: api::datastore::args::DatastoreArgs,
}

/// calicoctl's configuration file.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct ConfigFile {
    api_version: String,
    kind: String,
    #[serde(default, rename = "metadata")]
    _metadata: Option<serde::de::IgnoredAny>,
    #[serde(default)]
    spec: ConfigSpec,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct ConfigSpec {
    datastore_type: Option<String>,
    kubeconfig: Option<PathBuf>,
    context: Option<String>,
    /// Comma-separated, as calicoctl writes it.
    etcd_endpoints: Option<String>,
    #[serde(rename = "etcdCACertFile")]
    etcd_ca_cert_file: Option<PathBuf>,
    etcd_cert_file: Option<PathBuf>,
    etcd_key_file: Option<PathBuf>,
    etcd_username: Option<String>,
    etcd_password: Option<String>,
    #[serde(rename = "k8sAPIEndpoint")]
    k8s_api_endpoint: Option<String>,
    // calicoctl settings tabby takes another way; named so the error can say how.
    #[serde(rename = "k8sAPIToken")]
    k8s_api_token: Option<String>,
    k8s_cert_file: Option<String>,
    k8s_key_file: Option<String>,
    #[serde(rename = "k8sCAFile")]
    k8s_ca_file: Option<String>,
    #[serde(rename = "k8sInsecureSkipTLSVerify")]
    k8s_insecure_skip_tls_verify: Option<bool>,
    etcd_key: Option<String>,
    etcd_cert: Option<String>,
    #[serde(rename = "etcdCACert")]
    etcd_ca_cert: Option<String>,
}

const CONFIG_KIND: &str = "CalicoAPIConfig";

impl ConfigSpec {
    /// Settings calicoctl has that tabby takes through a kubeconfig or files.
    fn reject_unsupported(&self, path: &Path) -> Result<(), CliError> {
        let kube = [
            ("k8sAPIToken", self.k8s_api_token.is_some()),
            ("k8sCertFile", self.k8s_cert_file.is_some()),
            ("k8sKeyFile", self.k8s_key_file.is_some()),
            ("k8sCAFile", self.k8s_ca_file.is_some()),
            (
                "k8sInsecureSkipTLSVerify",
                self.k8s_insecure_skip_tls_verify.is_some(),
            ),
        ];
        if let Some((field, _)) = kube.iter().find(|(_, set)| *set) {
            return Err(config_error(
                path,
                &format!(
                    "spec.{field} is not supported: describe the API server in a kubeconfig \
                     and set spec.kubeconfig (and spec.context)"
                ),
            ));
        }
        let inline = [
            ("etcdKey", self.etcd_key.is_some(), "etcdKeyFile"),
            ("etcdCert", self.etcd_cert.is_some(), "etcdCertFile"),
            ("etcdCACert", self.etcd_ca_cert.is_some(), "etcdCACertFile"),
        ];
        if let Some((field, _, instead)) = inline.iter().find(|(_, set, _)| *set) {
            return Err(config_error(
                path,
                &format!(
                    "spec.{field} (inline PEM) is not supported: write it to a file and set \
                     spec.{instead}"
                ),
            ));
        }
        Ok(())
    }
}

fn config_error(path: &Path, message: &str) -> CliError {
    CliError::Usage(format!("config file {}: {message}", path.display()))
}

/// Reads the configuration file: the one named (which must exist), or the default
/// one when it exists.
fn read_config(explicit: Option<&Path>) -> Result<(ConfigSpec, Option<PathBuf>), CliError> {
    let path = match explicit {
        Some(path) => path.to_owned(),
        None if Path::new(DEFAULT_CONFIG).exists() => PathBuf::from(DEFAULT_CONFIG),
        None => return Ok((ConfigSpec::default(), None)),
    };
    let text = std::fs::read_to_string(&path)
        .map_err(|e| config_error(&path, &format!("cannot read it: {e}")))?;
    let file: ConfigFile =
        yaml_serde::from_str(&text).map_err(|e| config_error(&path, &e.to_string()))?;
    let known_version = ["projectcalico.org/v3", api::resources::API_VERSION];
    if !known_version.contains(&file.api_version.as_str()) || file.kind != CONFIG_KIND {
        return Err(config_error(
            &path,
            &format!(
                "expected apiVersion projectcalico.org/v3 (or {}) and kind {CONFIG_KIND}, \
                 found {:?} {:?}",
                api::resources::API_VERSION,
                file.api_version,
                file.kind
            ),
        ));
    }
    file.spec.reject_unsupported(&path)?;
    Ok((file.spec, Some(path)))
}

impl ConfigSpec {
    /// The file's datastore settings, named as the file spells them.
    fn settings(self, path: &Path) -> Result<Settings, CliError> {
        let named = |field: &str| format!("{} spec.{field}", path.display());
        let datastore_type = match self.datastore_type {
            Some(text) => setting(
                text.parse::<DatastoreType>()
                    .map_err(|e| config_error(path, &format!("spec.datastoreType {e}")))?,
                named("datastoreType"),
            ),
            None => None,
        };
        Ok(Settings {
            datastore_type,
            kubeconfig: self
                .kubeconfig
                .and_then(|p| setting(p, named("kubeconfig"))),
            context: self.context.and_then(|c| setting(c, named("context"))),
            k8s_api_endpoint: self
                .k8s_api_endpoint
                .and_then(|e| setting(e, named("k8sAPIEndpoint"))),
            etcd_endpoints: self
                .etcd_endpoints
                .map(|list| split_endpoints(&list))
                .filter(|list| !list.is_empty())
                .and_then(|list| setting(list, named("etcdEndpoints"))),
            etcd_prefix: None,
            etcd_ca_cert_file: self
                .etcd_ca_cert_file
                .and_then(|p| setting(p, named("etcdCACertFile"))),
            etcd_cert_file: self
                .etcd_cert_file
                .and_then(|p| setting(p, named("etcdCertFile"))),
            etcd_key_file: self
                .etcd_key_file
                .and_then(|p| setting(p, named("etcdKeyFile"))),
            etcd_username: self
                .etcd_username
                .and_then(|u| setting(u, named("etcdUsername"))),
            etcd_password: self
                .etcd_password
                .and_then(|p| setting(p, named("etcdPassword"))),
        })
    }
}

/// Resolves the datastore from flags and `TABBY_*` variables (`args`, as clap read
/// them, and `TABBY_ETCD_PASSWORD`), the configuration file, then Calico's variables
/// (`DATASTORE_TYPE`, `ETCD_ENDPOINTS`, ..., and `KUBECONFIG` for the kubeconfig
/// search), all read through `environment`. Returns warnings for old flag names.
pub fn resolve(
    args: &DatastoreArgs,
    environment: &dyn Fn(&str) -> Option<String>,
) -> Result<(DatastoreConfig, Vec<String>), CliError> {
    let (flags, warnings) = args.datastore.settings(environment);
    let (file, path) = read_config(args.config.as_deref())?;
    let file = match path {
        Some(path) => file.settings(&path)?,
        None => Settings::default(),
    };
    let calico = Settings::calico_env(environment).map_err(CliError::Usage)?;
    let config = flags
        .or(file)
        .or(calico)
        .resolve(environment)
        .map_err(CliError::Usage)?;
    Ok((config, warnings))
}

#[cfg(test)]
mod tests;
