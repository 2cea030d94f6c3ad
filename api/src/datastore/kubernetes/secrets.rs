//! Core Secrets in the client's namespace, read by name ([`Secrets`]).

use async_trait::async_trait;
use k8s_openapi::api::core::v1::Secret;
use kube::Api;

use super::KubeStore;
use crate::datastore::{Result, SecretKey, Secrets};

#[async_trait]
impl Secrets for KubeStore {
    fn namespace(&self) -> String {
        self.client.default_namespace().to_owned()
    }

    async fn secret_key(&self, name: &str, key: &str) -> Result<SecretKey> {
        let secrets: Api<Secret> = Api::default_namespaced(self.client.clone());
        let Some(secret) = secrets.get_opt(name).await? else {
            return Ok(SecretKey::NoSecret);
        };
        // `stringData` is write-only: the API server merges it into `data`.
        Ok(match secret.data.and_then(|mut data| data.remove(key)) {
            Some(value) => SecretKey::Value(value.0),
            None => SecretKey::NoKey,
        })
    }
}
