//! Which datastore to talk to, as operators expect to say it: flags, then `TABBY_*`
//! environment variables, then the configuration file (`-c`, by default
//! `/etc/tabby/calicoctl.yaml`, in calicoctl's `CalicoAPIConfig` format, so an
//! existing `/etc/calico/calicoctl.cfg` works as is), then defaults. The generic
//! `KUBECONFIG` ranks below the file: it is often set for other clusters, while the
//! file was written for this one.

use std::path::{Path, PathBuf};

use clap::{Args, ValueEnum};
use serde::Deserialize;

use crate::error::CliError;

pub const DEFAULT_CONFIG: &str = "/etc/tabby/calicoctl.yaml";
/// calicoctl's default etcd endpoint.
pub const DEFAULT_ETCD_ENDPOINT: &str = "http://127.0.0.1:2379";

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Deserialize)]
pub enum DatastoreType {
    /// The Kubernetes API (tabby's CRDs): the production default.
    #[serde(rename = "kubernetes")]
    Kubernetes,
    /// etcd v3.
    #[value(alias = "etcdv3")]
    #[serde(rename = "etcdv3", alias = "etcd")]
    Etcd,
}

/// The datastore flags every command takes.
#[derive(Debug, Clone, Default, Args)]
#[command(next_help_heading = "Datastore")]
pub struct DatastoreArgs {
    /// Configuration file in calicoctl's CalicoAPIConfig format [default: /etc/tabby/calicoctl.yaml]
    #[arg(short = 'c', long = "config", env = "TABBY_CONFIG", global = true)]
    #[arg(value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Datastore to use [default: kubernetes, or etcd when etcd endpoints are given]
    #[arg(long, env = "TABBY_DATASTORE_TYPE", global = true, value_enum)]
    pub datastore: Option<DatastoreType>,
    /// kubeconfig file [default: $KUBECONFIG, then ~/.kube/config]
    #[arg(long, env = "TABBY_KUBECONFIG", global = true, value_name = "FILE")]
    pub kubeconfig: Option<PathBuf>,
    /// kubeconfig context [default: the kubeconfig's current context]
    #[arg(long, env = "TABBY_CONTEXT", global = true, value_name = "NAME")]
    pub context: Option<String>,
    /// etcd endpoints, comma-separated [default: http://127.0.0.1:2379]
    #[arg(
        long,
        env = "TABBY_ETCD_ENDPOINTS",
        global = true,
        value_delimiter = ','
    )]
    #[arg(value_name = "URLS")]
    pub etcd_endpoints: Vec<String>,
    /// CA certificate etcd's TLS certificate is checked against (https:// endpoints)
    #[arg(
        long,
        env = "TABBY_ETCD_CA_CERT_FILE",
        global = true,
        value_name = "FILE",
        visible_alias = "etcd-cacert"
    )]
    pub etcd_ca_cert_file: Option<PathBuf>,
    /// Client certificate, for etcd's --client-cert-auth
    #[arg(long, env = "TABBY_ETCD_CERT_FILE", global = true, value_name = "FILE")]
    #[arg(visible_alias = "etcd-cert")]
    pub etcd_cert_file: Option<PathBuf>,
    /// The client certificate's key
    #[arg(long, env = "TABBY_ETCD_KEY_FILE", global = true, value_name = "FILE")]
    #[arg(visible_alias = "etcd-key")]
    pub etcd_key_file: Option<PathBuf>,
    /// etcd user; the password comes from TABBY_ETCD_PASSWORD or the file, never argv
    #[arg(long, env = "TABBY_ETCD_USERNAME", global = true, value_name = "USER")]
    pub etcd_username: Option<String>,
}

/// The resolved datastore.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    Kubernetes(KubernetesTarget),
    Etcd(EtcdTarget),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KubernetesTarget {
    pub kubeconfig: Kubeconfigs,
    pub context: Option<String>,
}

/// Where the kubeconfig comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Kubeconfigs {
    /// Named by a flag, variable or the config file: it must exist.
    Named(PathBuf),
    /// `KUBECONFIG`'s list or `~/.kube/config`: those that exist are merged in order,
    /// as kubectl merges them; with none, the pod's service account is used.
    Search(Vec<PathBuf>),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EtcdTarget {
    pub endpoints: Vec<String>,
    pub ca_cert_file: Option<PathBuf>,
    pub cert_file: Option<PathBuf>,
    pub key_file: Option<PathBuf>,
    pub username: Option<String>,
    pub password: Option<String>,
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
    datastore_type: Option<DatastoreType>,
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
    // calicoctl settings tabby takes another way; named so the error can say how.
    #[serde(rename = "k8sAPIEndpoint")]
    k8s_api_endpoint: Option<String>,
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
            ("k8sAPIEndpoint", self.k8s_api_endpoint.is_some()),
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
        serde_yaml::from_str(&text).map_err(|e| config_error(&path, &e.to_string()))?;
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

/// Resolves the datastore from flags and `TABBY_*` variables (`args`, as clap read
/// them), the configuration file, and `environment` for `KUBECONFIG`, `HOME` and
/// `TABBY_ETCD_PASSWORD`.
pub fn resolve(
    args: &DatastoreArgs,
    environment: &dyn Fn(&str) -> Option<String>,
) -> Result<Target, CliError> {
    let (file, _) = read_config(args.config.as_deref())?;
    let file_endpoints: Vec<String> = file
        .etcd_endpoints
        .iter()
        .flat_map(|list| list.split(','))
        .map(|e| e.trim().to_owned())
        .filter(|e| !e.is_empty())
        .collect();
    let etcd_given = !args.etcd_endpoints.is_empty() || !file_endpoints.is_empty();
    let datastore = args
        .datastore
        .or(file.datastore_type)
        .unwrap_or(if etcd_given {
            DatastoreType::Etcd
        } else {
            DatastoreType::Kubernetes
        });
    match datastore {
        DatastoreType::Kubernetes => {
            reject_etcd_flags(args)?;
            let kubeconfig = match args.kubeconfig.clone().or(file.kubeconfig) {
                Some(path) => Kubeconfigs::Named(path),
                None => Kubeconfigs::Search(default_kubeconfig(environment)),
            };
            Ok(Target::Kubernetes(KubernetesTarget {
                kubeconfig,
                context: args.context.clone().or(file.context),
            }))
        }
        DatastoreType::Etcd => {
            if args.kubeconfig.is_some() || args.context.is_some() {
                return Err(CliError::Usage(
                    "--kubeconfig and --context apply to the kubernetes datastore, not etcd"
                        .to_owned(),
                ));
            }
            let mut endpoints = if args.etcd_endpoints.is_empty() {
                file_endpoints
            } else {
                args.etcd_endpoints.clone()
            };
            if endpoints.is_empty() {
                endpoints.push(DEFAULT_ETCD_ENDPOINT.to_owned());
            }
            for endpoint in &endpoints {
                check_endpoint(endpoint)?;
            }
            let target = EtcdTarget {
                endpoints,
                ca_cert_file: args.etcd_ca_cert_file.clone().or(file.etcd_ca_cert_file),
                cert_file: args.etcd_cert_file.clone().or(file.etcd_cert_file),
                key_file: args.etcd_key_file.clone().or(file.etcd_key_file),
                username: args.etcd_username.clone().or(file.etcd_username),
                password: environment("TABBY_ETCD_PASSWORD").or(file.etcd_password),
            };
            if target.cert_file.is_some() != target.key_file.is_some() {
                return Err(CliError::Usage(
                    "an etcd client certificate needs its key: give both --etcd-cert-file and \
                     --etcd-key-file"
                        .to_owned(),
                ));
            }
            Ok(Target::Etcd(target))
        }
    }
}

fn reject_etcd_flags(args: &DatastoreArgs) -> Result<(), CliError> {
    let given = [
        ("--etcd-endpoints", !args.etcd_endpoints.is_empty()),
        ("--etcd-ca-cert-file", args.etcd_ca_cert_file.is_some()),
        ("--etcd-cert-file", args.etcd_cert_file.is_some()),
        ("--etcd-key-file", args.etcd_key_file.is_some()),
        ("--etcd-username", args.etcd_username.is_some()),
    ];
    match given.iter().find(|(_, set)| *set) {
        Some((flag, _)) => Err(CliError::Usage(format!(
            "{flag} applies to the etcd datastore, but the kubernetes datastore is selected: \
             add --datastore etcd"
        ))),
        None => Ok(()),
    }
}

/// `KUBECONFIG` (a `:`-separated list), else `~/.kube/config`.
fn default_kubeconfig(environment: &dyn Fn(&str) -> Option<String>) -> Vec<PathBuf> {
    if let Some(list) = environment("KUBECONFIG").filter(|l| !l.is_empty()) {
        return std::env::split_paths(&list).collect();
    }
    environment("HOME")
        .map(|home| vec![Path::new(&home).join(".kube/config")])
        .unwrap_or_default()
}

fn check_endpoint(endpoint: &str) -> Result<(), CliError> {
    let rest = endpoint
        .strip_prefix("http://")
        .or_else(|| endpoint.strip_prefix("https://"));
    let valid = rest.is_some_and(|rest| {
        let authority = rest.trim_end_matches('/');
        authority
            .rsplit_once(':')
            .is_some_and(|(host, port)| !host.is_empty() && port.parse::<u16>().is_ok())
    });
    if valid {
        Ok(())
    } else {
        Err(CliError::Usage(format!(
            "etcd endpoint {endpoint:?} is not a URL like http://10.0.0.1:2379"
        )))
    }
}

#[cfg(test)]
mod tests;
