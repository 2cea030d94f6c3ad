//! Opening the datastore a [`DatastoreConfig`] names: the one way every binary
//! connects.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use etcd_client::{Certificate, Client, ConnectOptions, Identity, TlsOptions};
use kube::config::{KubeConfigOptions, Kubeconfig};

use super::config::{DatastoreConfig, EtcdConfig, Kubeconfigs, KubernetesConfig};
use super::explain::{chain, etcd_message};
use super::{Backend, EtcdStore, KubeStore};

/// How long the API server may take to accept a connection.
const KUBE_CONNECT_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);

/// Why a datastore could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    /// The settings cannot work (a file that does not read, a bad URL): fix them.
    #[error("{0}")]
    Config(String),
    /// The datastore did not answer, or refused us (TLS, credentials); a retry may
    /// succeed once it is back or fixed.
    #[error("{0}")]
    Unreachable(String),
}

/// Opens the datastore. etcd is asked once when TLS or a user is configured, so
/// that a certificate or password problem is reported here with the files and
/// user that caused it; otherwise the first request shows an unreachable store
/// (see [`connect_lazily`] for a daemon that must start while etcd is down).
pub async fn connect(config: &DatastoreConfig) -> Result<Arc<dyn Backend>, ConnectError> {
    open(config, false).await
}

/// Opens the datastore without asking etcd anything, for a daemon that can work
/// while it is down (tabby-agent with its last view): the TLS handshake and the
/// login happen on the first request that reaches etcd, and every request fails
/// until then. Settings that cannot work are still refused here.
pub async fn connect_lazily(config: &DatastoreConfig) -> Result<Arc<dyn Backend>, ConnectError> {
    open(config, true).await
}

async fn open(config: &DatastoreConfig, lazily: bool) -> Result<Arc<dyn Backend>, ConnectError> {
    Ok(match config {
        DatastoreConfig::Etcd(etcd) => Arc::new(connect_etcd(etcd, lazily).await?),
        DatastoreConfig::Kubernetes(kubernetes) => Arc::new(connect_kubernetes(kubernetes).await?),
        DatastoreConfig::Memory(store) => store.clone(),
    })
}

async fn connect_etcd(config: &EtcdConfig, lazily: bool) -> Result<EtcdStore, ConnectError> {
    let timeouts = config.timeouts;
    // Tokens expire (etcd's default TTL is 5 minutes): daemons outlive them.
    let mut options = ConnectOptions::new()
        .with_connect_timeout(timeouts.connect)
        .with_timeout(timeouts.request)
        .with_keep_alive(timeouts.keepalive, timeouts.keepalive_timeout)
        .with_keep_alive_while_idle(true)
        .with_auto_token_refresh(true);
    let tls = tls_options(config)?;
    let tls_on = tls.is_some();
    if let Some(tls) = tls {
        options = options.with_tls(tls);
    }
    let user = config.username.as_deref().zip(config.password.as_deref());
    if lazily {
        // Without a user, making the client sends nothing.
        let client = Client::connect(&config.endpoints, Some(options))
            .await
            .map_err(|e| ConnectError::Config(etcd_message(&e)))?;
        let store = EtcdStore::new(client).with_prefix(&config.prefix);
        return Ok(match user {
            Some((user, password)) => store.login_later(user, password),
            None => store,
        });
    }
    if let Some((user, password)) = user {
        options = options.with_user(user, password);
    }
    let endpoints = config.endpoints.join(",");
    // With a user, connecting authenticates: a request that may meet a dead server.
    let connecting = Client::connect(&config.endpoints, Some(options));
    let mut client = tokio::time::timeout(timeouts.request, connecting)
        .await
        .map_err(|_| {
            ConnectError::Unreachable(format!(
                "cannot reach etcd at {endpoints}: no answer within {:?}",
                timeouts.request
            ))
        })?
        .map_err(|e| refused(config, &e))?;
    if tls_on && config.username.is_none() {
        // The handshake happens on the first request.
        client.status().await.map_err(|e| refused(config, &e))?;
    }
    Ok(EtcdStore::new(client).with_prefix(&config.prefix))
}

/// What failed, with what the operator gave: the user, or the certificate files.
fn refused(config: &EtcdConfig, error: &etcd_client::Error) -> ConnectError {
    let endpoints = config.endpoints.join(",");
    let message = etcd_message(error);
    if let Some(user) = &config.username
        && message.contains("authentication failed")
    {
        return ConnectError::Unreachable(format!(
            "etcd at {endpoints} refused user {user:?}: {message}: check the etcd user name \
             and password"
        ));
    }
    if config.ca_cert_file.is_none() {
        return ConnectError::Unreachable(format!("cannot reach etcd at {endpoints}: {message}"));
    }
    let file = |f: &Option<PathBuf>| match f {
        Some(path) => path.display().to_string(),
        None => "none".to_owned(),
    };
    let advice = match config.cert_file {
        None => "if etcd runs with --client-cert-auth, give --etcd-cert-file and --etcd-key-file",
        Some(_) => {
            "check that this CA signed etcd's certificate and that etcd trusts the client \
             certificate's CA"
        }
    };
    ConnectError::Unreachable(format!(
        "TLS with etcd at {endpoints} failed: {message} (CA {}, client certificate {}): {advice}",
        file(&config.ca_cert_file),
        file(&config.cert_file),
    ))
}

/// TLS for `https://` endpoints (the settings checked that every endpoint is and
/// that a CA is given): the CA to trust and, for etcd's client-certificate
/// authentication, a certificate with its key.
fn tls_options(config: &EtcdConfig) -> Result<Option<TlsOptions>, ConnectError> {
    let Some(ca) = &config.ca_cert_file else {
        return Ok(None);
    };
    let mut tls = TlsOptions::new().ca_certificate(Certificate::from_pem(read_pem(
        ca,
        "CA certificate",
        "CERTIFICATE",
    )?));
    if let (Some(cert), Some(key)) = (&config.cert_file, &config.key_file) {
        tls = tls.identity(Identity::from_pem(
            read_pem(cert, "client certificate", "CERTIFICATE")?,
            read_pem(key, "client key", "")?,
        ));
    }
    Ok(Some(tls))
}

/// A PEM file of the kind expected; the TLS library would only fail the handshake.
fn read_pem(path: &Path, what: &str, label: &str) -> Result<Vec<u8>, ConnectError> {
    let pem = std::fs::read(path)
        .map_err(|e| ConnectError::Config(format!("etcd {what} {}: {e}", path.display())))?;
    let begin = format!("-----BEGIN {label}");
    if !String::from_utf8_lossy(&pem).contains(&begin) {
        return Err(ConnectError::Config(format!(
            "etcd {what} {}: no PEM {label} block in it",
            path.display()
        )));
    }
    Ok(pem)
}

/// A client of the Kubernetes API `config` names, for the core objects a component
/// on the etcd datastore reads there too (Services, as Calico's node does with a
/// kubeconfig). Making it sends nothing.
pub async fn kube_client(config: &KubernetesConfig) -> Result<kube::Client, ConnectError> {
    Ok(connect_kubernetes(config).await?.client())
}

/// The kubeconfig found (with the context asked for), else the pod's service
/// account; the API endpoint, when given, replaces the server's URL. Making the
/// client sends nothing: an unreachable server shows in the first request.
async fn connect_kubernetes(config: &KubernetesConfig) -> Result<KubeStore, ConnectError> {
    let failed = |problem: String| ConnectError::Config(format!("kubernetes: {problem}"));
    let mut client_config = match read_kubeconfigs(&config.kubeconfig)? {
        Some(kubeconfig) => {
            let options = KubeConfigOptions {
                context: config.context.clone(),
                ..KubeConfigOptions::default()
            };
            kube::Config::from_custom_kubeconfig(kubeconfig, &options)
                .await
                .map_err(|e| {
                    failed(format!(
                        "kubeconfig {}: {}",
                        searched(&config.kubeconfig),
                        chain(&e)
                    ))
                })?
        }
        None if config.context.is_some() => {
            return Err(failed(format!(
                "a kubeconfig context is given, and there is no kubeconfig at {}",
                searched(&config.kubeconfig)
            )));
        }
        None => match (kube::Config::incluster(), &config.api_endpoint) {
            (Ok(in_pod), _) => in_pod,
            (Err(_), Some(url)) => kube::Config::new(parse_url(url)?),
            (Err(_), None) => {
                return Err(failed(format!(
                    "no kubeconfig at {} and not inside a pod: give a kubeconfig, or choose \
                     the etcd datastore",
                    searched(&config.kubeconfig)
                )));
            }
        },
    };
    if let Some(url) = &config.api_endpoint {
        client_config.cluster_url = parse_url(url)?;
    }
    // Reads stay long (watches are long polls); a server that is not there fails fast.
    client_config.connect_timeout = Some(KUBE_CONNECT_TIMEOUT);
    let client = kube::Client::try_from(client_config)
        .map_err(|e| failed(format!("cannot build a client: {}", chain(&e))))?;
    Ok(KubeStore::new(client))
}

fn parse_url(url: &str) -> Result<http::Uri, ConnectError> {
    url.parse()
        .map_err(|e| ConnectError::Config(format!("kubernetes API endpoint {url:?}: {e}")))
}

/// The named file, or the existing files of the search merged in order.
fn read_kubeconfigs(source: &Kubeconfigs) -> Result<Option<Kubeconfig>, ConnectError> {
    let read = |path: &PathBuf| {
        Kubeconfig::read_from(path).map_err(|e| {
            ConnectError::Config(format!("kubeconfig {}: {}", path.display(), chain(&e)))
        })
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
                .map_err(|e| ConnectError::Config(format!("kubeconfig {}: {e}", path.display())))?,
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
