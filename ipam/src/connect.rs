//! Opening the datastore a plugin config or the controller's flags name.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use api::datastore::{Backend, EtcdStore, KubeStore};
use etcd_client::{Client, ConnectOptions};

use crate::error::chain;

/// How long to wait for etcd before reporting it unreachable.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// The limit on any one request.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// Which datastore to use.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DatastoreConf {
    /// Keys under `prefix` (the backend's default when unset).
    Etcd {
        endpoints: Vec<String>,
        prefix: Option<String>,
    },
    /// The API server of a kubeconfig file, else of `api_root` (a local proxy such
    /// as `kubectl proxy`, without credentials), else of `$KUBECONFIG` or the pod's
    /// service account.
    Kubernetes {
        kubeconfig: Option<std::path::PathBuf>,
        api_root: Option<String>,
    },
}

/// Where it points, for messages: the etcd endpoints, or the API server's source.
impl std::fmt::Display for DatastoreConf {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Etcd { endpoints, .. } => write!(f, "etcd {}", endpoints.join(",")),
            Self::Kubernetes {
                kubeconfig: Some(path),
                ..
            } => write!(f, "kubernetes, kubeconfig {}", path.display()),
            Self::Kubernetes {
                api_root: Some(url),
                ..
            } => write!(f, "kubernetes at {url}"),
            Self::Kubernetes { .. } => f.write_str("kubernetes, $KUBECONFIG or service account"),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    #[error("cannot reach etcd at {endpoints}: {problem}")]
    Unreachable { endpoints: String, problem: String },
    /// No client could be made: a kubeconfig that does not read or a bad URL.
    #[error("kubernetes: {source_of}: {problem}")]
    Kubernetes { source_of: String, problem: String },
}

pub async fn connect(conf: &DatastoreConf) -> Result<Arc<dyn Backend>, ConnectError> {
    match conf {
        DatastoreConf::Etcd { endpoints, prefix } => {
            let options = ConnectOptions::new()
                .with_connect_timeout(CONNECT_TIMEOUT)
                .with_timeout(REQUEST_TIMEOUT);
            let unreachable = |problem: String| ConnectError::Unreachable {
                endpoints: endpoints.join(","),
                problem,
            };
            let connecting = Client::connect(endpoints, Some(options));
            let client = tokio::time::timeout(CONNECT_TIMEOUT, connecting)
                .await
                .map_err(|_| unreachable(format!("no answer within {CONNECT_TIMEOUT:?}")))?
                .map_err(|e| unreachable(e.to_string()))?;
            let store = EtcdStore::new(client);
            Ok(Arc::new(match prefix {
                Some(prefix) => store.with_prefix(prefix.clone()),
                None => store,
            }))
        }
        DatastoreConf::Kubernetes {
            kubeconfig,
            api_root,
        } => Ok(Arc::new(
            kubernetes(kubeconfig.as_deref(), api_root.as_deref()).await?,
        )),
    }
}

/// A client for the API server `kubeconfig` or `api_root` names, else the one
/// `$KUBECONFIG` (or `~/.kube/config`) names, else the pod's service account's.
/// Making it sends nothing: an unreachable server shows in the first request.
async fn kubernetes(
    kubeconfig: Option<&Path>,
    api_root: Option<&str>,
) -> Result<KubeStore, ConnectError> {
    let (source_of, config) = match (kubeconfig, api_root) {
        (Some(path), _) => {
            let source_of = format!("kubeconfig {}", path.display());
            let config = async {
                let file = kube::config::Kubeconfig::read_from(path)?;
                let options = kube::config::KubeConfigOptions::default();
                kube::Config::from_custom_kubeconfig(file, &options).await
            };
            (source_of, config.await.map_err(|e| chain(&e)))
        }
        (None, Some(url)) => {
            let config = url
                .parse::<http::Uri>()
                .map(kube::Config::new)
                .map_err(|e| format!("not a URL: {e}"));
            (format!("API server {url:?}"), config)
        }
        (None, None) => (
            "$KUBECONFIG, ~/.kube/config or the pod's service account".to_owned(),
            kube::Config::infer().await.map_err(|e| chain(&e)),
        ),
    };
    let failed = |problem| ConnectError::Kubernetes {
        source_of: source_of.clone(),
        problem,
    };
    let mut config = config.map_err(failed)?;
    // Reads stay long (watches are long polls); a server that is not there fails fast.
    config.connect_timeout = Some(CONNECT_TIMEOUT);
    let client = kube::Client::try_from(config).map_err(|e| failed(chain(&e)))?;
    Ok(KubeStore::new(client))
}
