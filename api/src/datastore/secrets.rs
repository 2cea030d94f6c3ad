//! Kubernetes Secrets, for the BGP passwords a `BGPPeer` or `BGPConfiguration`
//! names with `secretKeyRef`.
//!
//! As Calico does, the Secret is looked up in the namespace the component runs in
//! (a pod's own namespace, from its service account; with a kubeconfig, its
//! context's), by name, and only read: the agent is granted `get` on the names its
//! Role lists, nothing more. Backends without Secrets (etcd, memory) have none:
//! [`super::Backend::secrets`] is `None` there, and a caller says so.

use std::fmt::Debug;

use async_trait::async_trait;

use super::Result;

/// Read access to Secrets in one namespace.
#[async_trait]
pub trait Secrets: Send + Sync + Debug {
    /// The namespace Secrets are read from.
    fn namespace(&self) -> String;

    /// The value under `key` in the Secret `name` (its `data`, decoded), or what is
    /// missing: the Secret or the key.
    async fn secret_key(&self, name: &str, key: &str) -> Result<SecretKey>;
}

/// What reading one key of a Secret found.
#[derive(Clone, PartialEq, Eq)]
pub enum SecretKey {
    Value(Vec<u8>),
    NoSecret,
    NoKey,
}

impl Debug for SecretKey {
    // A value is a password: never shown.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Value(value) => write!(f, "Value({} bytes)", value.len()),
            Self::NoSecret => f.write_str("NoSecret"),
            Self::NoKey => f.write_str("NoKey"),
        }
    }
}
