//! PATCH and the `status` subresource of the Kubernetes API double, through kube's
//! client and through kubectl (a client nobody here wrote), against what the
//! Kubernetes API documents: merge, JSON and strategic merge patches; custom
//! resources refuse strategic merge with 415; a write to a Node keeps its status
//! and a write to `nodes/<name>/status` keeps everything else.

use api::datastore::{Datastore, KubeStore, NetworkCondition};
use api::resources::{Cidr, IPPool, IPPoolSpec};
use harness::kube_api::KubeApi;
use harness::kube_api::admission::UserInfo;
use harness::kube_api::process::{kubeconfig, kubectl};
use k8s_openapi::api::core::v1::{Node, Secret};
use kube::api::{Api, Patch, PatchParams, PostParams};
use serde_json::{Value, json};

/// A Node as kubelet keeps it: a label, a taint, its Ready condition.
async fn kubelet_node(api: &KubeApi) -> Api<Node> {
    api.put_node("worker-1", &["192.0.2.11".parse().unwrap()])
        .await
        .unwrap();
    let nodes: Api<Node> = Api::all(api.client().unwrap());
    let setup = json!({
        "metadata": {"labels": {"rack": "a"}},
        "spec": {"taints": [{"key": "node.kubernetes.io/network-unavailable", "effect": "NoSchedule"}]},
    });
    nodes
        .patch("worker-1", &PatchParams::default(), &Patch::Merge(&setup))
        .await
        .unwrap();
    let ready = json!({"status": {"conditions": [
        {"type": "Ready", "status": "True", "reason": "KubeletReady"},
        {"type": "NetworkUnavailable", "status": "True", "reason": "NoRouteCreated"},
    ]}});
    nodes
        .patch_status("worker-1", &PatchParams::default(), &Patch::Merge(&ready))
        .await
        .unwrap();
    nodes
}

/// A JSON patch of worker-1 (kube's client has it behind a feature tabby does not
/// enable, so the request is built here).
async fn json_patch(api: &KubeApi, operations: Value) -> Result<Node, kube::Error> {
    let request = http::Request::patch("/api/v1/nodes/worker-1")
        .header(http::header::CONTENT_TYPE, "application/json-patch+json")
        .body(operations.to_string().into_bytes())
        .unwrap();
    api.client().unwrap().request(request).await
}

fn conditions(node: &Node) -> Vec<(String, String, Option<String>)> {
    node.status
        .as_ref()
        .and_then(|s| s.conditions.clone())
        .unwrap_or_default()
        .into_iter()
        .map(|c| (c.type_, c.status, c.reason))
        .collect()
}

fn condition(kind: &str, status: &str, reason: &str) -> (String, String, Option<String>) {
    (kind.into(), status.into(), Some(reason.into()))
}

#[tokio::test(flavor = "multi_thread")]
async fn kdd_patches_of_each_type_change_a_node_as_the_api_documents() {
    let (api, store) = KubeApi::with_tabby_crds().await.unwrap();
    let nodes = kubelet_node(&api).await;
    let params = PatchParams::default();

    // Strategic merge: conditions merge by type.
    let network = json!({"status": {"conditions": [
        {"type": "NetworkUnavailable", "status": "False", "reason": "TabbyIsUp"},
    ]}});
    let node = nodes
        .patch_status("worker-1", &params, &Patch::Strategic(&network))
        .await
        .unwrap();
    assert_eq!(
        conditions(&node),
        [
            condition("Ready", "True", "KubeletReady"),
            condition("NetworkUnavailable", "False", "TabbyIsUp"),
        ]
    );
    // Merge patch: null removes, a list replaces.
    let merge =
        json!({"metadata": {"labels": {"rack": null, "zone": "z1"}}, "spec": {"taints": []}});
    let node = nodes
        .patch("worker-1", &params, &Patch::Merge(&merge))
        .await
        .unwrap();
    let labels = node.metadata.labels.clone().unwrap_or_default();
    assert_eq!(labels.get("zone").map(String::as_str), Some("z1"));
    assert!(!labels.contains_key("rack"));
    assert_eq!(node.spec.unwrap().taints, Some(vec![]));
    // JSON patch: a test that holds, then a change; one that fails is 422 and
    // changes nothing.
    let node = json_patch(
        &api,
        json!([
            {"op": "test", "path": "/metadata/labels/zone", "value": "z1"},
            {"op": "add", "path": "/metadata/labels/zone", "value": "z2"},
        ]),
    )
    .await
    .unwrap();
    assert_eq!(node.metadata.labels.unwrap()["zone"], "z2");
    let failing = json!([{"op": "test", "path": "/metadata/labels/zone", "value": "z1"}]);
    let error = json_patch(&api, failing).await.unwrap_err();
    assert!(
        matches!(&error, kube::Error::Api(s) if s.code == 422),
        "{error}"
    );
    assert_eq!(
        nodes
            .get("worker-1")
            .await
            .unwrap()
            .metadata
            .labels
            .unwrap()["zone"],
        "z2"
    );
    // A patch naming an old resourceVersion is a conflict.
    let stale = json!({"metadata": {"resourceVersion": "1", "labels": {"zone": "z3"}}});
    let error = nodes
        .patch("worker-1", &params, &Patch::Merge(&stale))
        .await
        .unwrap_err();
    assert!(
        matches!(&error, kube::Error::Api(s) if s.code == 409),
        "{error}"
    );

    // Custom resources: merge patch, but no strategic merge (415).
    store
        .create(&IPPool::new(
            "pool-a",
            IPPoolSpec::new(Cidr("10.244.0.0/16".parse().unwrap())),
        ))
        .await
        .unwrap();
    let pools: Api<kube::api::DynamicObject> = Api::all_with(
        api.client().unwrap(),
        &kube::api::ApiResource {
            group: "tabby.dev".into(),
            version: "v1".into(),
            api_version: "tabby.dev/v1".into(),
            kind: "IPPool".into(),
            plural: "ippools".into(),
        },
    );
    let disable = json!({"spec": {"disabled": true}});
    pools
        .patch("pool-a", &params, &Patch::Merge(&disable))
        .await
        .unwrap();
    let pool: IPPool = store.get("pool-a").await.unwrap();
    assert!(pool.spec.disabled);
    let error = pools
        .patch("pool-a", &params, &Patch::Strategic(&disable))
        .await
        .unwrap_err();
    let kube::Error::Api(status) = &error else {
        panic!("{error}")
    };
    assert_eq!(status.code, 415);
    assert!(
        status.message.contains("application/merge-patch+json")
            && !status.message.contains("strategic"),
        "{}",
        status.message
    );
    // Server-side apply is not modelled: 415 rather than a wrong answer.
    let error = nodes
        .patch(
            "worker-1",
            &PatchParams::apply("test"),
            &Patch::Apply(
                json!({"apiVersion": "v1", "kind": "Node", "metadata": {"name": "worker-1"}}),
            ),
        )
        .await
        .unwrap_err();
    assert!(
        matches!(&error, kube::Error::Api(s) if s.code == 415),
        "{error}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn kdd_a_nodes_status_is_written_only_through_its_status_subresource() {
    let (api, _store) = KubeApi::with_tabby_crds().await.unwrap();
    let nodes = kubelet_node(&api).await;
    let before = nodes.get("worker-1").await.unwrap();

    // PUT of the object: the label changes, the status does not.
    let mut edited = before.clone();
    edited
        .metadata
        .labels
        .get_or_insert_default()
        .insert("edited".into(), "yes".into());
    edited.status.as_mut().unwrap().conditions = Some(vec![]);
    let after = nodes
        .replace("worker-1", &PostParams::default(), &edited)
        .await
        .unwrap();
    assert_eq!(after.metadata.labels.as_ref().unwrap()["edited"], "yes");
    assert_eq!(conditions(&after), conditions(&before));
    // A merge patch of the object's status is ignored the same way.
    let status_by_object = json!({"status": {"conditions": []}});
    let after = nodes
        .patch(
            "worker-1",
            &PatchParams::default(),
            &Patch::Merge(&status_by_object),
        )
        .await
        .unwrap();
    assert_eq!(conditions(&after), conditions(&before));

    // PUT of the status: the status changes, the label does not.
    let mut through_status = after.clone();
    through_status.metadata.labels = None;
    through_status.status.as_mut().unwrap().conditions = Some(vec![]);
    let after = nodes
        .replace_status("worker-1", &PostParams::default(), &through_status)
        .await
        .unwrap();
    assert_eq!(conditions(&after), []);
    assert_eq!(after.metadata.labels.as_ref().unwrap()["edited"], "yes");
    // GET of the status subresource is the object.
    assert_eq!(nodes.get_status("worker-1").await.unwrap(), after);
    // A stale status write is a conflict.
    let error = nodes
        .replace_status("worker-1", &PostParams::default(), &through_status)
        .await
        .unwrap_err();
    assert!(
        matches!(&error, kube::Error::Api(s) if s.code == 409),
        "{error}"
    );
    // Secrets have no status subresource.
    api.put_secret("tabby-system", "s", &[("k", "v")])
        .await
        .unwrap();
    let secrets: Api<Secret> = Api::namespaced(api.client().unwrap(), "tabby-system");
    let error = secrets.get_status("s").await.unwrap_err();
    assert!(
        matches!(&error, kube::Error::Api(s) if s.code == 404),
        "{error}"
    );
    assert!(
        api.requests()
            .iter()
            .any(|r| r.starts_with("PUT /api/v1/nodes/worker-1/status")),
        "the status writes went to the subresource"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn kdd_the_network_condition_tabby_sets_leaves_kubelets_conditions_and_the_node_alone() {
    let (api, _store) = KubeApi::with_tabby_crds().await.unwrap();
    let nodes = kubelet_node(&api).await;
    let before = nodes.get("worker-1").await.unwrap();
    let store = KubeStore::at(&api.url()).unwrap();
    let inventory = api::datastore::Backend::inventory(&store).unwrap();
    let from = api.requests().len();
    let up = NetworkCondition {
        unavailable: false,
        reason: "TabbyIsUp",
        message: "up",
    };
    inventory.set_network("worker-1", &up).await.unwrap();
    // One request: the patch of the status subresource.
    let calls: Vec<String> = api
        .calls_since(from)
        .unwrap()
        .iter()
        .map(ToString::to_string)
        .collect();
    assert_eq!(calls, ["patch nodes/status"]);
    let patch = api.requests()[from].clone();
    assert!(
        patch.starts_with("PATCH /api/v1/nodes/worker-1/status"),
        "{patch}"
    );
    let after = nodes.get("worker-1").await.unwrap();
    assert_eq!(
        conditions(&after),
        [
            condition("Ready", "True", "KubeletReady"),
            condition("NetworkUnavailable", "False", "TabbyIsUp"),
        ]
    );
    assert_eq!(after.metadata.labels, before.metadata.labels);
    assert_eq!(after.spec, before.spec);
}

#[tokio::test(flavor = "multi_thread")]
async fn kdd_kubectl_patches_a_nodes_status_and_a_pool_and_is_refused_strategic_merge_on_a_pool() {
    let (api, store) = KubeApi::with_tabby_crds().await.unwrap();
    let nodes = kubelet_node(&api).await;
    store
        .create(&IPPool::new(
            "pool-a",
            IPPoolSpec::new(Cidr("10.244.0.0/16".parse().unwrap())),
        ))
        .await
        .unwrap();
    api.add_token("operator-token", UserInfo::cluster_admin());
    let dir = tempfile::tempdir().unwrap();
    let token = dir.path().join("token");
    std::fs::write(&token, "operator-token").unwrap();
    std::fs::write(
        dir.path().join("kubeconfig"),
        kubeconfig(&api.url(), &token),
    )
    .unwrap();
    let dir_path = dir.path().to_owned();
    let (status, pool, strategic) = tokio::task::spawn_blocking(move || {
        let patch = r#"{"status":{"conditions":[{"type":"NetworkUnavailable","status":"False","reason":"ByKubectl"}]}}"#;
        // kubectl's default patch type for a core kind is strategic merge.
        let status = kubectl(
            &dir_path,
            &["patch", "node", "worker-1", "--subresource=status", "-p", patch],
        );
        let pool = kubectl(
            &dir_path,
            &[
                "patch",
                "ippools.tabby.dev",
                "pool-a",
                "--type=merge",
                "-p",
                r#"{"spec":{"disabled":true}}"#,
            ],
        );
        let strategic = kubectl(
            &dir_path,
            &["patch", "ippools.tabby.dev", "pool-a", "-p", r#"{"spec":{"disabled":false}}"#],
        );
        (status, pool, strategic)
    })
    .await
    .unwrap();
    status.unwrap();
    pool.unwrap();
    // kubectl's default type is strategic merge; it reads the 415 as such.
    let refused = strategic.unwrap_err().to_string();
    assert!(
        refused.contains(
            "application/strategic-merge-patch+json is not supported by tabby.dev/v1, Kind=IPPool"
        ) && refused.contains("accepted media types include"),
        "{refused}"
    );
    let node = nodes.get("worker-1").await.unwrap();
    assert_eq!(
        conditions(&node),
        [
            condition("Ready", "True", "KubeletReady"),
            condition("NetworkUnavailable", "False", "ByKubectl"),
        ]
    );
    let pool: IPPool = store.get("pool-a").await.unwrap();
    assert!(pool.spec.disabled);
}

#[tokio::test(flavor = "multi_thread")]
async fn kdd_under_the_manifests_rbac_the_agent_patches_node_status_and_reads_only_its_secret() {
    let (api, _store) = KubeApi::with_tabby_crds().await.unwrap();
    let nodes = kubelet_node(&api).await;
    api.put_secret("tabby-system", "tabby-bgp-passwords", &[("tor", "x")])
        .await
        .unwrap();
    api.put_secret("tabby-system", "other", &[("k", "v")])
        .await
        .unwrap();
    let documents = harness::manifests::documents().unwrap();
    let granted =
        harness::manifests::rbac::granted(&documents, "tabby-system", "tabby-agent").unwrap();
    let agent = UserInfo::service_account("tabby-system", "tabby-agent");
    api.authorize(&agent.username, granted);
    api.add_token("agent-token", agent);
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("token"), "agent-token").unwrap();
    let client = {
        let path = dir.path().join("kubeconfig");
        let token = dir.path().join("token");
        std::fs::write(&path, kubeconfig(&api.url(), &token)).unwrap();
        let kubeconfig = kube::config::Kubeconfig::read_from(&path).unwrap();
        let config = kube::Config::from_custom_kubeconfig(kubeconfig, &Default::default())
            .await
            .unwrap();
        kube::Client::try_from(config).unwrap()
    };

    // Allowed: its Node's status, the password Secret by name.
    let store = KubeStore::new(client.clone());
    let up = NetworkCondition {
        unavailable: false,
        reason: "TabbyIsUp",
        message: "up",
    };
    let inventory = api::datastore::Backend::inventory(&store).unwrap();
    inventory.set_network("worker-1", &up).await.unwrap();
    let secrets = api::datastore::Backend::secrets(&store).unwrap();
    assert_eq!(secrets.namespace(), "tabby-system");
    assert_eq!(
        secrets
            .secret_key("tabby-bgp-passwords", "tor")
            .await
            .unwrap(),
        api::datastore::SecretKey::Value(b"x".to_vec())
    );
    // Forbidden: another Secret, the Node itself, listing Secrets.
    let forbidden = |error: kube::Error| matches!(error, kube::Error::Api(s) if s.code == 403);
    let agent_secrets: Api<Secret> = Api::namespaced(client.clone(), "tabby-system");
    assert!(forbidden(agent_secrets.get("other").await.unwrap_err()));
    assert!(forbidden(
        agent_secrets.list(&Default::default()).await.unwrap_err()
    ));
    let agent_nodes: Api<Node> = Api::all(client);
    let label = json!({"metadata": {"labels": {"rack": "b"}}});
    assert!(forbidden(
        agent_nodes
            .patch("worker-1", &PatchParams::default(), &Patch::Merge(&label))
            .await
            .unwrap_err()
    ));
    let node = nodes.get("worker-1").await.unwrap();
    assert_eq!(node.metadata.labels.unwrap()["rack"], "a");
}
