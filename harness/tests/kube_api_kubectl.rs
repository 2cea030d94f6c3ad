//! kubectl, a client nobody here wrote, against the Kubernetes API double: it
//! resolves `ippools.tabby.dev` and `nodes` through the double's discovery, lists
//! them, and applies a tabby resource from a file. (kubectl sends a kubeconfig's
//! token only over TLS, which the double does not speak, so its requests are the
//! admin's; tabby's own client sends the token, see the last test.)

use std::net::IpAddr;
use std::path::Path;
use std::sync::Arc;

use api::datastore::config::{DatastoreConfig, Kubeconfigs, KubernetesConfig};
use api::datastore::{Backend, Datastore};
use api::resources::{Cidr, IPPool, IPPoolSpec, Node, NodeSpec};
use harness::kube_api::KubeApi;
use harness::kube_api::admission::UserInfo;
use harness::kube_api::process::{kubeconfig, kubectl};
use harness::manifests;

#[tokio::test(flavor = "multi_thread")]
async fn kdd_kubectl_lists_pools_and_nodes_and_applies_a_pool_against_the_double() {
    let (api, store) = KubeApi::with_tabby_crds().await.unwrap();
    api.add_token("operator-token", UserInfo::cluster_admin());
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("token"), "operator-token").unwrap();
    std::fs::write(
        dir.path().join("kubeconfig"),
        kubeconfig(&api.url(), &dir.path().join("token")),
    )
    .unwrap();
    store
        .create(&IPPool::new(
            "default-ipv4-ippool",
            IPPoolSpec::new(Cidr("10.244.0.0/16".parse().unwrap())),
        ))
        .await
        .unwrap();
    let address: IpAddr = "192.0.2.11".parse().unwrap();
    api.put_node("worker-1", &[address]).await.unwrap();
    let dir = dir.path().to_owned();

    let (pools, nodes, applied) = tokio::task::spawn_blocking(move || {
        let pools = kubectl(&dir, &["get", "ippools.tabby.dev", "-o", "name"]).unwrap();
        let nodes = kubectl(&dir, &["get", "nodes", "-o", "name"]).unwrap();
        std::fs::write(
            dir.join("pool.yaml"),
            "apiVersion: tabby.dev/v1\nkind: IPPool\nmetadata:\n  name: extra\n\
             spec:\n  cidr: 10.245.0.0/16\n  natOutgoing: true\n",
        )
        .unwrap();
        // The double serves no OpenAPI document (kubectl reads it as protobuf), so
        // kubectl's client-side validation is off; tabby validates what it reads.
        let pool = dir.join("pool.yaml").display().to_string();
        let applied = kubectl(&dir, &["apply", "--validate=false", "-f", &pool]).unwrap();
        (pools, nodes, applied)
    })
    .await
    .unwrap();

    assert_eq!(pools.trim(), "ippool.tabby.dev/default-ipv4-ippool");
    assert_eq!(nodes.trim(), "node/worker-1");
    assert!(
        applied.contains("ippool.tabby.dev/extra created"),
        "{applied}"
    );
    let extra = store.get::<IPPool>("extra").await.unwrap();
    assert_eq!(extra.spec.cidr.to_string(), "10.245.0.0/16");
    assert!(extra.spec.nat_outgoing);
}

/// A kubeconfig in `dir` for the double with `token`, and tabby's connection
/// through it.
async fn connect_with(api: &KubeApi, dir: &Path, token: &str) -> Arc<dyn Backend> {
    std::fs::write(dir.join("token"), token).unwrap();
    std::fs::write(
        dir.join("kubeconfig"),
        kubeconfig(&api.url(), &dir.join("token")),
    )
    .unwrap();
    let config = DatastoreConfig::Kubernetes(KubernetesConfig {
        kubeconfig: Kubeconfigs::Named(dir.join("kubeconfig")),
        context: None,
        api_endpoint: None,
    });
    api::datastore::connect(&config).await.unwrap()
}

#[tokio::test]
async fn kdd_tokens_in_a_kubeconfig_authenticate_tabbys_client_and_an_unknown_one_is_401() {
    let (api, _store) = KubeApi::with_tabby_crds().await.unwrap();
    for policy in manifests::policies(&manifests::documents().unwrap()).unwrap() {
        api.install_policy(policy);
    }
    let agent_on_n1 = UserInfo::service_account("tabby-system", "tabby-agent").on_node("n1");
    api.add_token("token-of-n1", agent_on_n1);
    let dir = tempfile::tempdir().unwrap();

    let stolen = connect_with(&api, dir.path(), "stolen-token").await;
    let error = stolen
        .list::<IPPool>(&Default::default())
        .await
        .unwrap_err();
    assert!(error.to_string().contains("Unauthorized"), "{error}");

    // n1's token is n1's agent: the admission policy lets it write its own Node
    // only, so the token was read and mapped to its user.
    let n1 = connect_with(&api, dir.path(), "token-of-n1").await;
    n1.create(&Node::new("n1", NodeSpec::default()))
        .await
        .unwrap();
    let error = n1
        .create(&Node::new("n2", NodeSpec::default()))
        .await
        .unwrap_err();
    assert!(error.to_string().contains("only its own node"), "{error}");
}
