//! Opening the datastore a plugin config or the controller's flags name.

use std::sync::Arc;
use std::time::Duration;

use api::datastore::{Backend, EtcdStore};
use etcd_client::{Client, ConnectOptions};

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
    Kubernetes {
        kubeconfig: Option<std::path::PathBuf>,
    },
}

#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    #[error("cannot reach etcd at {endpoints}: {problem}")]
    Unreachable { endpoints: String, problem: String },
    #[error(
        "the kubernetes datastore is not available in this build yet (its backend has \
         not landed): use etcd (datastore type etcdv3 and its endpoints)"
    )]
    KubernetesUnavailable,
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
        DatastoreConf::Kubernetes { .. } => Err(ConnectError::KubernetesUnavailable),
    }
}
