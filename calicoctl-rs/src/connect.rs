//! Opening the datastore a [`Target`] names.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use api::datastore::{Backend, EtcdStore, KubeStore};
use etcd_client::ConnectOptions;
use kube::config::{KubeConfigOptions, Kubeconfig};

use crate::config::{EtcdTarget, Kubeconfigs, KubernetesTarget, Target};
use crate::error::CliError;

/// How long the first contact with etcd may take before it is reported unreachable,
/// and how long any one request may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
const REQUEST_TIMEOUT: Duration = Duration::from_secs(15);

pub async fn connect(target: &Target) -> Result<Arc<dyn Backend>, CliError> {
    match target {
        Target::Etcd(etcd) => Ok(Arc::new(connect_etcd(etcd).await?)),
        Target::Kubernetes(kubernetes) => Ok(Arc::new(connect_kubernetes(kubernetes).await?)),
    }
}

async fn connect_etcd(target: &EtcdTarget) -> Result<EtcdStore, CliError> {
    let tls = [&target.ca_cert_file, &target.cert_file, &target.key_file];
    if tls.iter().any(|file| file.is_some()) {
        return Err(CliError::Connect(
            "TLS to etcd is not supported by this build (its etcd client has no TLS): reach \
             etcd over http on a trusted network, or through a local TLS proxy"
                .to_owned(),
        ));
    }
    let mut options = ConnectOptions::new()
        .with_connect_timeout(CONNECT_TIMEOUT)
        .with_timeout(REQUEST_TIMEOUT);
    match (&target.username, &target.password) {
        (Some(user), Some(password)) => options = options.with_user(user, password),
        (None, None) => {}
        (Some(_), None) => {
            return Err(CliError::Usage(
                "an etcd username needs its password: set TABBY_ETCD_PASSWORD (or \
                 spec.etcdPassword in the config file)"
                    .to_owned(),
            ));
        }
        (None, Some(_)) => {
            return Err(CliError::Usage(
                "an etcd password needs its user: set --etcd-username".to_owned(),
            ));
        }
    }
    let client = etcd_client::Client::connect(&target.endpoints, Some(options))
        .await
        .map_err(|e| {
            CliError::Connect(format!(
                "cannot reach etcd at {}: {e}",
                target.endpoints.join(",")
            ))
        })?;
    Ok(EtcdStore::new(client))
}

/// The kubeconfig with the context asked for; inside a pod without one, the
/// service account.
async fn connect_kubernetes(target: &KubernetesTarget) -> Result<KubeStore, CliError> {
    let config = match read_kubeconfigs(&target.kubeconfig)? {
        Some(kubeconfig) => {
            let options = KubeConfigOptions {
                context: target.context.clone(),
                ..KubeConfigOptions::default()
            };
            kube::Config::from_custom_kubeconfig(kubeconfig, &options)
                .await
                .map_err(|e| CliError::Usage(format!("kubeconfig: {e}")))?
        }
        None if target.context.is_some() => {
            return Err(CliError::Usage(format!(
                "--context needs a kubeconfig, and there is none at {}",
                searched(&target.kubeconfig)
            )));
        }
        None => kube::Config::incluster().map_err(|_| {
            CliError::Usage(format!(
                "no kubeconfig at {} and not inside a pod: give --kubeconfig, or choose \
                 --datastore etcd",
                searched(&target.kubeconfig)
            ))
        })?,
    };
    let client = kube::Client::try_from(config)
        .map_err(|e| CliError::Connect(format!("cannot build a Kubernetes client: {e}")))?;
    Ok(KubeStore::new(client))
}

/// The named file, or the existing files of the search merged in order.
fn read_kubeconfigs(source: &Kubeconfigs) -> Result<Option<Kubeconfig>, CliError> {
    let read = |path: &PathBuf| {
        Kubeconfig::read_from(path)
            .map_err(|e| CliError::Usage(format!("kubeconfig {}: {e}", path.display())))
    };
    let files = match source {
        Kubeconfigs::Named(path) => return read(path).map(Some),
        Kubeconfigs::Search(files) => files,
    };
    let mut merged: Option<Kubeconfig> = None;
    for path in files.iter().filter(|p| p.exists()) {
        let config = read(path)?;
        merged = Some(match merged {
            None => config,
            Some(earlier) => earlier
                .merge(config)
                .map_err(|e| CliError::Usage(format!("kubeconfig {}: {e}", path.display())))?,
        });
    }
    Ok(merged)
}

fn searched(source: &Kubeconfigs) -> String {
    let files = match source {
        Kubeconfigs::Named(path) => std::slice::from_ref(path),
        Kubeconfigs::Search(files) => files.as_slice(),
    };
    let names: Vec<String> = files.iter().map(|p| p.display().to_string()).collect();
    names.join(":")
}
