//! Which datastore to open, and how every binary says so.
//!
//! A binary gathers [`Settings`] from its sources, best first: its flags and `TABBY_*`
//! variables (`args::DatastoreArgs`, feature `cli`), a configuration file or a CNI
//! network config, then Calico's variables ([`Settings::calico_env`]). Each setting
//! remembers where it came from, so that [`Settings::resolve`] names it in errors.
//!
//! One spelling everywhere: a flag is the kebab-case of Calico's variable, the
//! variable is `TABBY_` and Calico's name, a CNI config key is Calico's plugin key:
//!
//! | setting | flag / variable | Calico's variable | CNI config key |
//! | --- | --- | --- | --- |
//! | type | `--datastore-type` `TABBY_DATASTORE_TYPE` | `DATASTORE_TYPE` | `datastore_type` |
//! | kubeconfig | `--kubeconfig` `TABBY_KUBECONFIG` | `KUBECONFIG` (a search list) | `kubernetes.kubeconfig` |
//! | API server | `--k8s-api-endpoint` `TABBY_K8S_API_ENDPOINT` | `K8S_API_ENDPOINT` | `kubernetes.k8s_api_root` |
//! | etcd | `--etcd-endpoints` `TABBY_ETCD_ENDPOINTS` | `ETCD_ENDPOINTS` | `etcd_endpoints` |
//! | TLS | `--etcd-ca-cert-file`, `--etcd-cert-file`, `--etcd-key-file` | `ETCD_CA_CERT_FILE`, ... | `etcd_ca_cert_file`, ... |
//! | user | `--etcd-username`; password only `TABBY_ETCD_PASSWORD` | `ETCD_USERNAME`, `ETCD_PASSWORD` | `etcd_username`, `etcd_password` |
//! | key prefix | `--etcd-prefix` `TABBY_ETCD_PREFIX` | — | `etcd_prefix` |

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use super::{ETCD_DEFAULT_PREFIX, MemoryStore};

/// The etcd endpoint used when etcd is chosen without endpoints (Calico's default).
pub const DEFAULT_ETCD_ENDPOINT: &str = "http://127.0.0.1:2379";

/// A datastore to open with [`super::connect`].
#[derive(Debug, Clone)]
pub enum DatastoreConfig {
    Kubernetes(KubernetesConfig),
    Etcd(EtcdConfig),
    /// A store in this process (tests, dry runs): every connect returns it.
    Memory(Arc<MemoryStore>),
}

/// The Kubernetes API: tabby's CRDs, core pods and nodes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KubernetesConfig {
    pub kubeconfig: Kubeconfigs,
    /// The kubeconfig context [default: its current one].
    pub context: Option<String>,
    /// Replaces the server URL of the kubeconfig or service account, as Calico's
    /// `K8S_API_ENDPOINT` does; with neither, the server is reached without
    /// credentials (a `kubectl proxy`, tabby's API double).
    pub api_endpoint: Option<String>,
}

/// Where the kubeconfig comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Kubeconfigs {
    /// Named by a setting: it must exist.
    Named(PathBuf),
    /// `KUBECONFIG`'s list or `~/.kube/config`: those that exist are merged in order,
    /// as kubectl merges them; with none, the pod's service account is used.
    Search(Vec<PathBuf>),
}

/// etcd v3, over TLS when the endpoints are `https://`.
#[derive(Clone, PartialEq, Eq)]
pub struct EtcdConfig {
    pub endpoints: Vec<String>,
    /// Where tabby's keys live (no trailing `/`).
    pub prefix: String,
    /// The CA etcd's certificate is checked against; required for `https://`
    /// (this build carries no system roots).
    pub ca_cert_file: Option<PathBuf>,
    /// A client certificate and its key, for etcd's `--client-cert-auth`.
    pub cert_file: Option<PathBuf>,
    pub key_file: Option<PathBuf>,
    pub username: Option<String>,
    pub password: Option<String>,
    pub timeouts: EtcdTimeouts,
}

/// The password stays out of logs and panics.
impl std::fmt::Debug for EtcdConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EtcdConfig")
            .field("endpoints", &self.endpoints)
            .field("prefix", &self.prefix)
            .field("ca_cert_file", &self.ca_cert_file)
            .field("cert_file", &self.cert_file)
            .field("key_file", &self.key_file)
            .field("username", &self.username)
            .field("password", &self.password.as_ref().map(|_| "<redacted>"))
            .field("timeouts", &self.timeouts)
            .finish()
    }
}

/// How long etcd may take before the caller hears about it. A partition that drops
/// packets silently shows as a failed request after `request`, and as a broken
/// stream (which the watch reconnects) after `keepalive + keepalive_timeout`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EtcdTimeouts {
    pub connect: Duration,
    /// The deadline of any one request (a watch's only until it is established).
    pub request: Duration,
    /// HTTP/2 pings on the connection, also while idle (etcd's default minimum is 5s).
    pub keepalive: Duration,
    pub keepalive_timeout: Duration,
}

impl Default for EtcdTimeouts {
    fn default() -> Self {
        Self {
            connect: Duration::from_secs(5),
            request: Duration::from_secs(10),
            keepalive: Duration::from_secs(10),
            keepalive_timeout: Duration::from_secs(5),
        }
    }
}

impl EtcdConfig {
    /// Plain etcd at `endpoints` under the default prefix.
    pub fn new(endpoints: Vec<String>) -> Self {
        Self {
            endpoints,
            prefix: ETCD_DEFAULT_PREFIX.to_owned(),
            ca_cert_file: None,
            cert_file: None,
            key_file: None,
            username: None,
            password: None,
            timeouts: EtcdTimeouts::default(),
        }
    }
}

/// Where it points, for messages: the etcd endpoints, or the API server's source.
impl std::fmt::Display for DatastoreConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Etcd(etcd) => write!(f, "etcd {}", etcd.endpoints.join(",")),
            Self::Kubernetes(KubernetesConfig {
                api_endpoint: Some(url),
                ..
            }) => write!(f, "kubernetes at {url}"),
            Self::Kubernetes(KubernetesConfig {
                kubeconfig: Kubeconfigs::Named(path),
                ..
            }) => write!(f, "kubernetes, kubeconfig {}", path.display()),
            Self::Kubernetes(_) => f.write_str("kubernetes, $KUBECONFIG or service account"),
            Self::Memory(_) => f.write_str("memory"),
        }
    }
}

/// `kubernetes` or `etcdv3`, as Calico names them (`etcd` is accepted too).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "cli", derive(clap::ValueEnum))]
pub enum DatastoreType {
    /// The Kubernetes API (tabby's CRDs): the production default.
    Kubernetes,
    /// etcd v3.
    #[cfg_attr(feature = "cli", value(name = "etcdv3", alias = "etcd"))]
    Etcd,
}

impl std::str::FromStr for DatastoreType {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        match text {
            "kubernetes" => Ok(Self::Kubernetes),
            "etcdv3" | "etcd" => Ok(Self::Etcd),
            other => Err(format!("{other:?} is not \"kubernetes\" or \"etcdv3\"")),
        }
    }
}

/// One setting's value and where it came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Setting<T> {
    pub value: T,
    /// How errors name it: `--etcd-endpoints (TABBY_ETCD_ENDPOINTS)`, `ETCD_ENDPOINTS`,
    /// `etcd_endpoints`.
    pub source: String,
    /// From Calico's variables: never an error for being set beside the other
    /// datastore type (operators keep them for other tools).
    pub fallback: bool,
}

/// The datastore settings of one source, or of several merged with [`Settings::or`].
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Settings {
    pub datastore_type: Option<Setting<DatastoreType>>,
    pub kubeconfig: Option<Setting<PathBuf>>,
    pub context: Option<Setting<String>>,
    pub k8s_api_endpoint: Option<Setting<String>>,
    pub etcd_endpoints: Option<Setting<Vec<String>>>,
    pub etcd_prefix: Option<Setting<String>>,
    pub etcd_ca_cert_file: Option<Setting<PathBuf>>,
    pub etcd_cert_file: Option<Setting<PathBuf>>,
    pub etcd_key_file: Option<Setting<PathBuf>>,
    pub etcd_username: Option<Setting<String>>,
    pub etcd_password: Option<Setting<String>>,
}

impl std::fmt::Debug for Settings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Settings")
            .field("datastore_type", &self.datastore_type)
            .field("kubeconfig", &self.kubeconfig)
            .field("context", &self.context)
            .field("k8s_api_endpoint", &self.k8s_api_endpoint)
            .field("etcd_endpoints", &self.etcd_endpoints)
            .field("etcd_prefix", &self.etcd_prefix)
            .field("etcd_ca_cert_file", &self.etcd_ca_cert_file)
            .field("etcd_cert_file", &self.etcd_cert_file)
            .field("etcd_key_file", &self.etcd_key_file)
            .field("etcd_username", &self.etcd_username)
            .field(
                "etcd_password",
                &self.etcd_password.as_ref().map(|p| &p.source),
            )
            .finish()
    }
}

/// A setting from an explicit source (a flag, a file, a CNI config key).
pub fn setting<T>(value: T, source: impl Into<String>) -> Option<Setting<T>> {
    Some(Setting {
        value,
        source: source.into(),
        fallback: false,
    })
}

/// A comma-separated list of endpoints, as Calico writes them.
pub fn split_endpoints(list: &str) -> Vec<String> {
    list.split(',')
        .map(str::trim)
        .filter(|e| !e.is_empty())
        .map(str::to_owned)
        .collect()
}

impl Settings {
    /// Calico's variables (calico-node's and calicoctl's environment), through `env`.
    /// `KUBECONFIG` is not among them: it is the kubeconfig search list (see
    /// [`Settings::resolve`]).
    pub fn calico_env(env: &dyn Fn(&str) -> Option<String>) -> Result<Self, String> {
        let var = |name: &str| env(name).filter(|v| !v.is_empty());
        let fallback = |name: &str| {
            var(name).map(|value| Setting {
                value,
                source: name.to_owned(),
                fallback: true,
            })
        };
        let path = |name: &str| {
            fallback(name).map(|s| Setting {
                value: PathBuf::from(s.value),
                source: s.source,
                fallback: true,
            })
        };
        let datastore_type = match fallback("DATASTORE_TYPE") {
            Some(s) => Some(Setting {
                value: s.value.parse().map_err(|e| format!("DATASTORE_TYPE {e}"))?,
                source: s.source,
                fallback: true,
            }),
            None => None,
        };
        let etcd_endpoints = fallback("ETCD_ENDPOINTS").map(|s| Setting {
            value: split_endpoints(&s.value),
            source: s.source,
            fallback: true,
        });
        Ok(Self {
            datastore_type,
            k8s_api_endpoint: fallback("K8S_API_ENDPOINT"),
            etcd_endpoints,
            etcd_ca_cert_file: path("ETCD_CA_CERT_FILE"),
            etcd_cert_file: path("ETCD_CERT_FILE"),
            etcd_key_file: path("ETCD_KEY_FILE"),
            etcd_username: fallback("ETCD_USERNAME"),
            etcd_password: fallback("ETCD_PASSWORD"),
            ..Self::default()
        })
    }

    /// Each setting of `self`, else of `lower`.
    pub fn or(self, lower: Self) -> Self {
        Self {
            datastore_type: self.datastore_type.or(lower.datastore_type),
            kubeconfig: self.kubeconfig.or(lower.kubeconfig),
            context: self.context.or(lower.context),
            k8s_api_endpoint: self.k8s_api_endpoint.or(lower.k8s_api_endpoint),
            etcd_endpoints: self.etcd_endpoints.or(lower.etcd_endpoints),
            etcd_prefix: self.etcd_prefix.or(lower.etcd_prefix),
            etcd_ca_cert_file: self.etcd_ca_cert_file.or(lower.etcd_ca_cert_file),
            etcd_cert_file: self.etcd_cert_file.or(lower.etcd_cert_file),
            etcd_key_file: self.etcd_key_file.or(lower.etcd_key_file),
            etcd_username: self.etcd_username.or(lower.etcd_username),
            etcd_password: self.etcd_password.or(lower.etcd_password),
        }
    }

    /// Whether anything names a datastore (beyond Calico's variables).
    pub fn is_given(&self) -> bool {
        self.all().iter().any(|(_, fallback)| !fallback)
    }

    /// Where each setting given came from.
    pub fn sources(&self) -> impl Iterator<Item = &str> {
        self.all().into_iter().map(|(source, _)| source)
    }

    fn all(&self) -> Vec<(&str, bool)> {
        fn of<T>(s: &Option<Setting<T>>) -> Option<(&str, bool)> {
            s.as_ref().map(|s| (s.source.as_str(), s.fallback))
        }
        [
            of(&self.datastore_type),
            of(&self.kubeconfig),
            of(&self.context),
            of(&self.k8s_api_endpoint),
            of(&self.etcd_endpoints),
            of(&self.etcd_prefix),
            of(&self.etcd_ca_cert_file),
            of(&self.etcd_cert_file),
            of(&self.etcd_key_file),
            of(&self.etcd_username),
            of(&self.etcd_password),
        ]
        .into_iter()
        .flatten()
        .collect()
    }

    /// The datastore: the type given, else etcd when etcd endpoints are given, else
    /// kubernetes. `env` gives `KUBECONFIG` and `HOME` for the kubeconfig search.
    /// A setting for the other type from an explicit source is an error (it was
    /// meant for something); the error names the setting and its source.
    pub fn resolve(self, env: &dyn Fn(&str) -> Option<String>) -> Result<DatastoreConfig, String> {
        let kind = match &self.datastore_type {
            Some(kind) => kind.value,
            None if self.etcd_endpoints.is_some() => DatastoreType::Etcd,
            None => DatastoreType::Kubernetes,
        };
        match kind {
            DatastoreType::Kubernetes => self.kubernetes(env),
            DatastoreType::Etcd => self.etcd(),
        }
    }

    fn kubernetes(self, env: &dyn Fn(&str) -> Option<String>) -> Result<DatastoreConfig, String> {
        let stray = [
            source(&self.etcd_endpoints),
            source(&self.etcd_ca_cert_file),
            source(&self.etcd_cert_file),
            source(&self.etcd_key_file),
            source(&self.etcd_username),
            source(&self.etcd_password),
            source(&self.etcd_prefix),
        ];
        if let Some(name) = stray.into_iter().flatten().next() {
            return Err(format!(
                "{name} applies to the etcd datastore, but the kubernetes datastore is \
                 selected: set the datastore type to etcdv3"
            ));
        }
        if let Some(url) = &self.k8s_api_endpoint {
            check_url(&url.source, &url.value)?;
        }
        let kubeconfig = match self.kubeconfig {
            Some(named) => Kubeconfigs::Named(named.value),
            None => Kubeconfigs::Search(default_kubeconfig(env)),
        };
        Ok(DatastoreConfig::Kubernetes(KubernetesConfig {
            kubeconfig,
            context: self.context.map(|c| c.value),
            api_endpoint: self.k8s_api_endpoint.map(|e| e.value),
        }))
    }

    fn etcd(self) -> Result<DatastoreConfig, String> {
        let stray = [
            source(&self.kubeconfig),
            source(&self.context),
            source(&self.k8s_api_endpoint),
        ];
        if let Some(name) = stray.into_iter().flatten().next() {
            return Err(format!(
                "{name} applies to the kubernetes datastore, but the etcd datastore is selected"
            ));
        }
        let (endpoints, endpoints_source) = match self.etcd_endpoints {
            Some(s) if !s.value.is_empty() => (s.value, s.source),
            Some(s) => return Err(format!("{} is empty: list etcd's client URLs", s.source)),
            None => (vec![DEFAULT_ETCD_ENDPOINT.to_owned()], "the default".into()),
        };
        for endpoint in &endpoints {
            check_url(&endpoints_source, endpoint)?;
        }
        let prefix = match self.etcd_prefix {
            Some(p) if !p.value.starts_with('/') => {
                return Err(format!(
                    "{} {:?} does not start with '/'",
                    p.source, p.value
                ));
            }
            Some(p) => p.value.trim_end_matches('/').to_owned(),
            None => ETCD_DEFAULT_PREFIX.to_owned(),
        };
        match (&self.etcd_cert_file, &self.etcd_key_file) {
            (Some(cert), None) => {
                return Err(format!(
                    "{} needs its key: give the client key too",
                    cert.source
                ));
            }
            (None, Some(key)) => {
                return Err(format!(
                    "{} needs its certificate: give the client certificate too",
                    key.source
                ));
            }
            _ => {}
        }
        match (&self.etcd_username, &self.etcd_password) {
            (Some(user), None) => {
                return Err(format!(
                    "{} needs a password: set TABBY_ETCD_PASSWORD (or the config's etcd \
                     password)",
                    user.source
                ));
            }
            (None, Some(password)) => {
                return Err(format!("{} needs a user name", password.source));
            }
            _ => {}
        }
        let https = endpoints
            .iter()
            .filter(|e| e.starts_with("https://"))
            .count();
        let files = [
            &self.etcd_ca_cert_file,
            &self.etcd_cert_file,
            &self.etcd_key_file,
        ];
        let tls_file = files.iter().find_map(|f| f.as_ref());
        match (https, tls_file) {
            (0, Some(file)) => {
                return Err(format!(
                    "{} is given but the etcd endpoints are http://: use https:// endpoints",
                    file.source
                ));
            }
            (0, None) => {}
            (n, _) if n != endpoints.len() => {
                return Err(format!(
                    "{endpoints_source} mixes http:// and https:// endpoints: use one scheme"
                ));
            }
            _ if self.etcd_ca_cert_file.is_none() => {
                return Err(
                    "https:// etcd endpoints need the CA that signed etcd's certificate: \
                     --etcd-ca-cert-file (TABBY_ETCD_CA_CERT_FILE, ETCD_CA_CERT_FILE, or \
                     etcd_ca_cert_file in a CNI config)"
                        .to_owned(),
                );
            }
            _ => {}
        }
        Ok(DatastoreConfig::Etcd(EtcdConfig {
            endpoints,
            prefix,
            ca_cert_file: self.etcd_ca_cert_file.map(|s| s.value),
            cert_file: self.etcd_cert_file.map(|s| s.value),
            key_file: self.etcd_key_file.map(|s| s.value),
            username: self.etcd_username.map(|s| s.value),
            password: self.etcd_password.map(|s| s.value),
            timeouts: EtcdTimeouts::default(),
        }))
    }
}

/// The source of an explicit setting; Calico's variables are not errors.
fn source<T>(setting: &Option<Setting<T>>) -> Option<&str> {
    setting
        .as_ref()
        .filter(|s| !s.fallback)
        .map(|s| s.source.as_str())
}

/// `KUBECONFIG` (a `:`-separated list), else `~/.kube/config`.
fn default_kubeconfig(env: &dyn Fn(&str) -> Option<String>) -> Vec<PathBuf> {
    if let Some(list) = env("KUBECONFIG").filter(|l| !l.is_empty()) {
        return std::env::split_paths(&list).collect();
    }
    env("HOME")
        .map(|home| vec![Path::new(&home).join(".kube/config")])
        .unwrap_or_default()
}

/// `http://host:port` or `https://host:port`, optionally with a path.
fn check_url(source: &str, url: &str) -> Result<(), String> {
    let rest = url
        .strip_prefix("http://")
        .or_else(|| url.strip_prefix("https://"));
    let valid = rest.is_some_and(|rest| {
        let authority = rest.split('/').next().unwrap_or_default();
        match authority.rsplit_once(':') {
            Some((host, port)) => !host.is_empty() && port.parse::<u16>().is_ok(),
            None => !authority.is_empty(),
        }
    });
    if valid {
        Ok(())
    } else {
        Err(format!(
            "{source}: {url:?} is not a URL like http://10.0.0.1:2379"
        ))
    }
}

#[cfg(test)]
mod tests;
