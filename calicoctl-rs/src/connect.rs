//! Opening the datastore a [`Target`] names.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use api::datastore::{Backend, EtcdStore, KubeStore};
use etcd_client::{Certificate, ConnectOptions, Identity, TlsOptions};
use kube::config::{KubeConfigOptions, Kubeconfig};

use crate::config::{EtcdTarget, Kubeconfigs, KubernetesTarget, Target};
use crate::error::{CliError, etcd_message};

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
    let mut options = ConnectOptions::new()
        .with_connect_timeout(CONNECT_TIMEOUT)
        .with_timeout(REQUEST_TIMEOUT);
    let tls = tls_options(target)?;
    let tls_on = tls.is_some();
    if let Some(tls) = tls {
        options = options.with_tls(tls);
    }
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
    let mut client = etcd_client::Client::connect(&target.endpoints, Some(options))
        .await
        .map_err(|e| {
            CliError::Connect(format!(
                "cannot reach etcd at {}: {e}",
                target.endpoints.join(",")
            ))
        })?;
    // The handshake happens on the first request: make one, so that a certificate
    // problem is reported with the files that caused it rather than as a failed read.
    if tls_on && let Err(e) = client.status().await {
        return Err(CliError::Connect(tls_failure(target, &e)));
    }
    Ok(EtcdStore::new(client))
}

fn tls_failure(target: &EtcdTarget, error: &etcd_client::Error) -> String {
    let file = |f: &Option<PathBuf>| match f {
        Some(path) => path.display().to_string(),
        None => "none".to_owned(),
    };
    let advice = match target.cert_file {
        None => "if etcd runs with --client-cert-auth, give --etcd-cert-file and --etcd-key-file",
        Some(_) => {
            "check that this CA signed etcd's certificate and that etcd trusts the client \
             certificate's CA"
        }
    };
    format!(
        "TLS with etcd at {} failed: {} (CA {}, client certificate {}): {advice}",
        target.endpoints.join(","),
        etcd_message(error),
        file(&target.ca_cert_file),
        file(&target.cert_file),
    )
}

/// TLS for `https://` endpoints: the CA to trust (this build carries no system
/// roots, so it is required) and, for etcd's client-certificate authentication, a
/// certificate with its key.
fn tls_options(target: &EtcdTarget) -> Result<Option<TlsOptions>, CliError> {
    let https = target
        .endpoints
        .iter()
        .filter(|e| e.starts_with("https://"))
        .count();
    let files = [&target.ca_cert_file, &target.cert_file, &target.key_file];
    let any_file = files.iter().any(|f| f.is_some());
    match (https, any_file) {
        (0, false) => return Ok(None),
        (0, true) => {
            return Err(CliError::Usage(
                "etcd TLS files are given but the endpoints are http://: use https:// \
                 endpoints"
                    .to_owned(),
            ));
        }
        (n, _) if n != target.endpoints.len() => {
            return Err(CliError::Usage(
                "mix of http:// and https:// etcd endpoints: use one scheme".to_owned(),
            ));
        }
        _ => {}
    }
    // A PEM file of the kind expected; the TLS library would only fail the handshake.
    let read = |path: &PathBuf, what: &str, label: &str| {
        let pem = std::fs::read(path)
            .map_err(|e| CliError::Usage(format!("etcd {what} {}: {e}", path.display())))?;
        let begin = format!("-----BEGIN {label}");
        if !String::from_utf8_lossy(&pem).contains(&begin) {
            return Err(CliError::Usage(format!(
                "etcd {what} {}: no PEM {label} block in it",
                path.display()
            )));
        }
        Ok(pem)
    };
    let Some(ca) = &target.ca_cert_file else {
        return Err(CliError::Usage(
            "https:// etcd endpoints need --etcd-ca-cert-file (the CA that signed etcd's \
             certificate)"
                .to_owned(),
        ));
    };
    let ca = read(ca, "CA certificate", "CERTIFICATE")?;
    let mut tls = TlsOptions::new().ca_certificate(Certificate::from_pem(ca));
    if let (Some(cert), Some(key)) = (&target.cert_file, &target.key_file) {
        let cert = read(cert, "client certificate", "CERTIFICATE")?;
        tls = tls.identity(Identity::from_pem(cert, read(key, "client key", "")?));
    }
    Ok(Some(tls))
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
