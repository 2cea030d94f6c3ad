//! The datastore flags every tabby binary takes (flattened into its own), each with
//! its `TABBY_*` variable; see [`super::config`] for the names and the order
//! sources rank in. Old spellings still work and each use is a warning naming the
//! new one; the etcd password is read from `TABBY_ETCD_PASSWORD` only, never argv.

use std::path::PathBuf;

use clap::Args;

use super::config::{DatastoreConfig, DatastoreType, Setting, Settings, setting, split_endpoints};

/// The datastore flags.
#[derive(Debug, Clone, Default, Args)]
#[command(next_help_heading = "Datastore")]
pub struct DatastoreArgs {
    /// Where tabby's resources live [default: kubernetes, or etcdv3 when etcd endpoints are given]
    #[arg(long, env = "TABBY_DATASTORE_TYPE", value_enum, global = true)]
    #[arg(value_name = "TYPE")]
    pub datastore_type: Option<DatastoreType>,
    /// kubeconfig file [default: $KUBECONFIG, then ~/.kube/config, then the pod's service account]
    #[arg(long, env = "TABBY_KUBECONFIG", global = true, value_name = "FILE")]
    pub kubeconfig: Option<PathBuf>,
    /// kubeconfig context [default: the kubeconfig's current context]
    #[arg(long, env = "TABBY_CONTEXT", global = true, value_name = "NAME")]
    pub context: Option<String>,
    /// The API server's URL, replacing the kubeconfig's (with no kubeconfig: reached
    /// without credentials, e.g. a kubectl proxy)
    #[arg(
        long,
        env = "TABBY_K8S_API_ENDPOINT",
        global = true,
        value_name = "URL"
    )]
    pub k8s_api_endpoint: Option<String>,
    /// etcd endpoints, comma-separated [default: http://127.0.0.1:2379]
    #[arg(
        long,
        env = "TABBY_ETCD_ENDPOINTS",
        global = true,
        value_delimiter = ','
    )]
    #[arg(value_name = "URLS")]
    pub etcd_endpoints: Vec<String>,
    /// The key prefix of tabby's resources in etcd [default: /tabby/v1]
    #[arg(long, env = "TABBY_ETCD_PREFIX", global = true, value_name = "PREFIX")]
    pub etcd_prefix: Option<String>,
    /// CA certificate etcd's TLS certificate is checked against (https:// endpoints)
    #[arg(
        long,
        env = "TABBY_ETCD_CA_CERT_FILE",
        global = true,
        value_name = "FILE"
    )]
    #[arg(alias = "etcd-cacert")]
    pub etcd_ca_cert_file: Option<PathBuf>,
    /// Client certificate, for etcd's --client-cert-auth
    #[arg(long, env = "TABBY_ETCD_CERT_FILE", global = true, value_name = "FILE")]
    #[arg(alias = "etcd-cert")]
    pub etcd_cert_file: Option<PathBuf>,
    /// The client certificate's key
    #[arg(long, env = "TABBY_ETCD_KEY_FILE", global = true, value_name = "FILE")]
    #[arg(alias = "etcd-key")]
    pub etcd_key_file: Option<PathBuf>,
    /// etcd user; its password comes from TABBY_ETCD_PASSWORD, never the command line
    #[arg(long, env = "TABBY_ETCD_USERNAME", global = true, value_name = "USER")]
    pub etcd_username: Option<String>,

    // Old spellings, hidden: each use is a warning.
    /// Deprecated: --datastore-type.
    #[arg(
        long = "datastore",
        env = "TABBY_DATASTORE",
        global = true,
        hide = true
    )]
    #[arg(value_enum)]
    pub deprecated_datastore: Option<DatastoreType>,
    /// Deprecated: --k8s-api-endpoint.
    #[arg(long, env = "TABBY_KUBERNETES_API", global = true, hide = true)]
    pub kubernetes_api: Option<String>,
    /// Deprecated: --k8s-api-endpoint.
    #[arg(long, env = "TABBY_K8S_API_ROOT", global = true, hide = true)]
    pub k8s_api_root: Option<String>,
}

/// The variable the etcd password is read from.
pub const PASSWORD_VARIABLE: &str = "TABBY_ETCD_PASSWORD";

impl DatastoreArgs {
    /// These flags (and `TABBY_ETCD_PASSWORD`, through `env`) as settings, with a
    /// warning for each old spelling used.
    pub fn settings(&self, env: &dyn Fn(&str) -> Option<String>) -> (Settings, Vec<String>) {
        let mut warnings = Vec::new();
        let mut deprecated = |old: &str, new: &str| {
            warnings.push(format!("{old} is deprecated: use {new}"));
        };
        let datastore_type = match (self.datastore_type, self.deprecated_datastore) {
            (Some(kind), _) => setting(kind, "--datastore-type (TABBY_DATASTORE_TYPE)"),
            (None, Some(kind)) => {
                deprecated(
                    "--datastore (TABBY_DATASTORE)",
                    "--datastore-type (TABBY_DATASTORE_TYPE)",
                );
                setting(kind, "--datastore (TABBY_DATASTORE)")
            }
            (None, None) => None,
        };
        let new_endpoint = "--k8s-api-endpoint (TABBY_K8S_API_ENDPOINT)";
        let old_endpoints = [
            (
                "--kubernetes-api (TABBY_KUBERNETES_API)",
                &self.kubernetes_api,
            ),
            ("--k8s-api-root (TABBY_K8S_API_ROOT)", &self.k8s_api_root),
        ];
        let mut k8s_api_endpoint = self
            .k8s_api_endpoint
            .clone()
            .and_then(|url| setting(url, new_endpoint));
        for (old, value) in old_endpoints {
            if let Some(url) = value {
                deprecated(old, new_endpoint);
                k8s_api_endpoint = k8s_api_endpoint.or_else(|| setting(url.clone(), old));
            }
        }
        let path =
            |value: &Option<PathBuf>, source: &str| value.clone().and_then(|p| setting(p, source));
        let settings = Settings {
            datastore_type,
            kubeconfig: path(&self.kubeconfig, "--kubeconfig (TABBY_KUBECONFIG)"),
            context: self
                .context
                .clone()
                .and_then(|c| setting(c, "--context (TABBY_CONTEXT)")),
            k8s_api_endpoint,
            etcd_endpoints: (!self.etcd_endpoints.is_empty())
                .then(|| {
                    let list = split_endpoints(&self.etcd_endpoints.join(","));
                    setting(list, "--etcd-endpoints (TABBY_ETCD_ENDPOINTS)")
                })
                .flatten(),
            etcd_prefix: self
                .etcd_prefix
                .clone()
                .and_then(|p| setting(p, "--etcd-prefix (TABBY_ETCD_PREFIX)")),
            etcd_ca_cert_file: path(
                &self.etcd_ca_cert_file,
                "--etcd-ca-cert-file (TABBY_ETCD_CA_CERT_FILE)",
            ),
            etcd_cert_file: path(
                &self.etcd_cert_file,
                "--etcd-cert-file (TABBY_ETCD_CERT_FILE)",
            ),
            etcd_key_file: path(&self.etcd_key_file, "--etcd-key-file (TABBY_ETCD_KEY_FILE)"),
            etcd_username: self
                .etcd_username
                .clone()
                .and_then(|u| setting(u, "--etcd-username (TABBY_ETCD_USERNAME)")),
            etcd_password: env(PASSWORD_VARIABLE)
                .filter(|p| !p.is_empty())
                .map(|value| Setting {
                    value,
                    source: PASSWORD_VARIABLE.to_owned(),
                    fallback: false,
                }),
        };
        (settings, warnings)
    }

    /// The datastore these flags name, else Calico's variables, else the default;
    /// with the warnings for old spellings.
    pub fn resolve(
        &self,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<(DatastoreConfig, Vec<String>), String> {
        let (own, warnings) = self.settings(env);
        let config = own.or(Settings::calico_env(env)?).resolve(env)?;
        Ok((config, warnings))
    }

    /// As [`DatastoreArgs::resolve`], but `None` when neither these flags nor Calico's
    /// variables name a datastore (for a binary that can run without one).
    pub fn resolve_if_given(
        &self,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Option<(DatastoreConfig, Vec<String>)>, String> {
        let given =
            self.settings(env).0.is_given() || Settings::calico_env(env)? != Settings::default();
        given.then(|| self.resolve(env)).transpose()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::datastore::config::{EtcdConfig, Kubeconfigs, KubernetesConfig};
    use clap::Parser;

    #[derive(Debug, Parser)]
    struct Cli {
        #[command(flatten)]
        datastore: DatastoreArgs,
    }

    fn parse(args: &[&str]) -> DatastoreArgs {
        Cli::try_parse_from(std::iter::once("tabby").chain(args.iter().copied()))
            .unwrap()
            .datastore
    }

    fn env(vars: &'static [(&'static str, &'static str)]) -> impl Fn(&str) -> Option<String> {
        move |name| {
            vars.iter()
                .find(|(k, _)| *k == name)
                .map(|(_, v)| (*v).to_owned())
        }
    }

    fn etcd(config: DatastoreConfig) -> EtcdConfig {
        match config {
            DatastoreConfig::Etcd(etcd) => etcd,
            other => panic!("not etcd: {other:?}"),
        }
    }

    #[test]
    fn old_spellings_still_select_with_a_warning_naming_the_new_one() {
        let args = parse(&["--datastore", "etcd", "--kubernetes-api", "http://x:1"]);
        let (settings, warnings) = args.settings(&env(&[]));
        assert_eq!(
            settings.datastore_type.map(|s| s.value),
            Some(DatastoreType::Etcd)
        );
        assert_eq!(
            warnings,
            [
                "--datastore (TABBY_DATASTORE) is deprecated: use --datastore-type \
                 (TABBY_DATASTORE_TYPE)",
                "--kubernetes-api (TABBY_KUBERNETES_API) is deprecated: use \
                 --k8s-api-endpoint (TABBY_K8S_API_ENDPOINT)",
            ]
        );
        let (config, _) = parse(&["--k8s-api-root", "http://127.0.0.1:8001"])
            .resolve(&env(&[]))
            .unwrap();
        let DatastoreConfig::Kubernetes(KubernetesConfig { api_endpoint, .. }) = config else {
            panic!("not kubernetes");
        };
        assert_eq!(api_endpoint.as_deref(), Some("http://127.0.0.1:8001"));
    }

    #[test]
    fn calicos_variables_serve_when_tabbys_are_not_set() {
        const CALICO: &[(&str, &str)] = &[
            ("DATASTORE_TYPE", "etcdv3"),
            (
                "ETCD_ENDPOINTS",
                "https://10.0.0.1:2379,https://10.0.0.2:2379",
            ),
            ("ETCD_CA_CERT_FILE", "/calico/ca.pem"),
            ("ETCD_CERT_FILE", "/calico/cert.pem"),
            ("ETCD_KEY_FILE", "/calico/key.pem"),
            ("ETCD_USERNAME", "calico"),
            ("ETCD_PASSWORD", "secret"),
        ];
        let (config, warnings) = parse(&[]).resolve_if_given(&env(CALICO)).unwrap().unwrap();
        assert!(warnings.is_empty());
        let config = etcd(config);
        assert_eq!(
            config.endpoints,
            ["https://10.0.0.1:2379", "https://10.0.0.2:2379"]
        );
        assert_eq!(config.cert_file, Some("/calico/cert.pem".into()));
        assert_eq!(config.password.as_deref(), Some("secret"));
        assert!(!format!("{config:?}").contains("secret"), "{config:?}");
        // tabby's own names win.
        let args = parse(&["--etcd-endpoints", "https://10.9.9.9:2379"]);
        let config = etcd(args.resolve(&env(CALICO)).unwrap().0);
        assert_eq!(config.endpoints, ["https://10.9.9.9:2379"]);
    }

    #[test]
    fn without_any_setting_an_optional_datastore_is_none_and_a_required_one_kubernetes() {
        let none = parse(&[]).resolve_if_given(&env(&[("HOME", "/home/op")]));
        assert!(matches!(none, Ok(None)));
        let (config, _) = parse(&[]).resolve(&env(&[("HOME", "/home/op")])).unwrap();
        let DatastoreConfig::Kubernetes(kube) = config else {
            panic!("not kubernetes");
        };
        assert_eq!(
            kube.kubeconfig,
            Kubeconfigs::Search(vec!["/home/op/.kube/config".into()])
        );
    }

    #[test]
    fn the_password_comes_from_its_variable_and_a_user_without_one_is_an_error() {
        let args = parse(&["--etcd-endpoints", "http://10.0.0.1:2379"]);
        let (config, _) = parse(&[
            "--etcd-username",
            "tabby",
            "--etcd-endpoints",
            "http://e:2379",
        ])
        .resolve(&env(&[("TABBY_ETCD_PASSWORD", "pw")]))
        .unwrap();
        assert_eq!(etcd(config).password.as_deref(), Some("pw"));
        let error = parse(&["--etcd-username", "tabby", "--datastore-type", "etcdv3"])
            .resolve(&env(&[]))
            .unwrap_err();
        assert!(error.contains("TABBY_ETCD_PASSWORD"), "{error}");
        assert!(args.resolve(&env(&[])).is_ok());
    }
}
