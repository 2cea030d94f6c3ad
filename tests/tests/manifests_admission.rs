//! The admission policy in `manifests/admission/`, applied by the API double to the
//! writes of tabby's own code: an agent (and the CNI plugins on its token) does all
//! its work for its own node, and another node's agent cannot rewrite that node's
//! Node, blocks, affinities or pods. The double evaluates the policy's CEL with
//! `cel-interpreter` (no kube-apiserver can run here; see `harness::kube_api`).

use std::collections::BTreeMap;
use std::sync::Arc;

use api::datastore::{Backend, Datastore};
use api::resources::{
    API_VERSION, BlockAffinity, IPAMBlock, IPPool, IPPoolSpec, Node, WorkloadEndpointSpec,
};
use harness::kube_api::KubeApi;
use harness::kube_api::admission::UserInfo;
use harness::manifests;
use ipam::table::AllocationTable;
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

fn agent_on(node: &str) -> UserInfo {
    UserInfo::service_account("tabby-system", "tabby-agent").on_node(node)
}

/// The double with the CRDs and the manifests' policies, a pool, and worker-1's
/// agent registered with one pod's address and endpoint, all written as worker-1.
async fn cluster() -> (KubeApi, Arc<dyn Backend>) {
    let (api, store) = KubeApi::with_tabby_crds().await.unwrap();
    let documents = manifests::documents().unwrap();
    let policies = manifests::policies(&documents).unwrap();
    assert!(!policies.is_empty(), "manifests/ has no admission policy");
    for policy in policies {
        api.install_policy(policy);
    }
    store
        .create(&IPPool::new(
            "default-ipv4-ippool",
            IPPoolSpec::new("10.244.0.0/16".parse().unwrap()),
        ))
        .await
        .unwrap();

    api.act_as(agent_on("worker-1"));
    register(&*store, "worker-1", "192.0.2.11/24")
        .await
        .unwrap();
    let allocator = ipam::assign::Allocator::new(store.clone(), "worker-1");
    let request = ipam::assign::AssignRequest::new("k8s-pod-network.ctr-1", 1, 0);
    let assigned = allocator.auto_assign(&request).await.unwrap();
    assert_eq!(assigned.addresses.len(), 1, "{assigned:?}");
    store.register_workload(endpoint("worker-1")).await.unwrap();
    (api, store)
}

async fn register(store: &dyn Backend, node: &str, address: &str) -> anyhow::Result<()> {
    let identity = agent::node::register::Identity {
        name: node.into(),
        ipv4: Some(address.parse().unwrap()),
        ipv6: None,
        as_number: None,
        labels: BTreeMap::new(),
    };
    agent::node::register::register(store, &identity).await?;
    Ok(())
}

fn endpoint(node: &str) -> WorkloadEndpointSpec {
    WorkloadEndpointSpec {
        node: node.into(),
        namespace: "default".into(),
        pod: "web-0".into(),
        container_id: "ctr-1".into(),
        endpoint: "eth0".into(),
        interface_name: "cali0123456789a".into(),
        mac: None,
        ip_networks: vec!["10.244.0.0/32".parse().unwrap()],
    }
}

async fn worker_1_block(store: &dyn Backend) -> IPAMBlock {
    let blocks = store.list::<IPAMBlock>(&Default::default()).await.unwrap();
    let mine = blocks
        .items
        .into_iter()
        .find(|b| b.spec.affine_node() == Some("worker-1"));
    mine.expect("worker-1 claimed a block")
}

/// An HTTP/1.1 request with a JSON body to the double: the status code and body.
async fn send(api: &KubeApi, method: &str, path: &str, body: &Value) -> (u16, String) {
    let body = body.to_string();
    let host = api.url().trim_start_matches("http://").to_owned();
    let mut stream = TcpStream::connect(&host).await.unwrap();
    let request = format!(
        "{method} {path} HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).await.unwrap();
    let code = response.split(' ').nth(1).and_then(|c| c.parse().ok());
    (code.expect("an HTTP status line"), response)
}

/// The policy's denial, with the message it names.
#[track_caller]
fn assert_denied<T: std::fmt::Debug, E: Into<anyhow::Error>>(result: Result<T, E>, says: &str) {
    let error = match result {
        Ok(written) => panic!("admitted: {written:?}"),
        Err(error) => format!("{:#}", error.into()),
    };
    assert!(
        error.contains("ValidatingAdmissionPolicy 'tabby-agent-own-node'") && error.contains(says),
        "{error}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn manifests_admission_an_agent_does_all_its_own_nodes_work_under_the_policy() {
    let (api, store) = cluster().await;
    // What cluster() wrote as worker-1 was admitted; the rest of a pod's life too.
    register(&*store, "worker-1", "192.0.2.12/24")
        .await
        .unwrap();
    let removed = store
        .unregister_workload("default", "web-0", "ctr-1")
        .await
        .unwrap();
    assert!(removed.is_some());
    let allocator = ipam::assign::Allocator::new(store.clone(), "worker-1");
    allocator
        .release_handle("k8s-pod-network.ctr-1")
        .await
        .unwrap();
    allocator.release_empty_blocks().await.unwrap();
    let blocks = store.list::<IPAMBlock>(&Default::default()).await.unwrap();
    assert!(blocks.items.is_empty(), "worker-1 deleted its empty block");
    drop(api);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn manifests_admission_hardening_another_nodes_agent_cannot_rewrite_a_nodes_objects() {
    let (api, store) = cluster().await;
    api.act_as(agent_on("worker-2"));
    register(&*store, "worker-2", "192.0.2.21/24")
        .await
        .unwrap();

    // worker-1's BGP address, pointed at worker-2.
    let mut node: Node = store.get("worker-1").await.unwrap();
    node.spec.bgp.as_mut().unwrap().ipv4_address = Some("192.0.2.21/24".parse().unwrap());
    assert_denied(store.update(&node).await, "only its own node's Node");

    // worker-1's block, moved to worker-2 or deleted.
    let block = worker_1_block(&*store).await;
    let mut moved = block.clone();
    moved.spec.affinity = Some("host:worker-2".into());
    assert_denied(
        store.update(&moved).await,
        "may not move another node's block",
    );
    assert_denied(
        store.delete::<IPAMBlock>(&block.metadata.name, None).await,
        "only its own node's blocks",
    );

    // Affinities, written raw as a compromised agent would (tabby's client validates
    // names first): worker-1's given to worker-2, and a new one made for worker-1.
    let affinities = store
        .list::<BlockAffinity>(&Default::default())
        .await
        .unwrap();
    let affinity = affinities
        .items
        .into_iter()
        .next()
        .expect("worker-1's affinity");
    let path = format!("/apis/{API_VERSION}/blockaffinities");
    let mut taken = serde_json::to_value(&affinity).unwrap();
    taken["spec"]["node"] = "worker-2".into();
    let (code, body) = send(
        &api,
        "PUT",
        &format!("{path}/{}", affinity.metadata.name),
        &taken,
    )
    .await;
    assert_eq!(code, 422, "{body}");
    assert!(
        body.contains("block affinities and workload endpoints"),
        "{body}"
    );
    let mut forged = serde_json::to_value(&affinity).unwrap();
    forged["metadata"] = serde_json::json!({"name": "worker-1-10-244-1-0-26"});
    forged["spec"]["cidr"] = "10.244.1.0/26".into();
    let (code, body) = send(&api, "POST", &path, &forged).await;
    assert_eq!(code, 422, "{body}");

    // worker-1's pod: replaced or removed.
    assert_denied(
        store.register_workload(endpoint("worker-1")).await,
        "block affinities and workload endpoints",
    );
    assert_denied(
        store.unregister_workload("default", "web-0", "ctr-1").await,
        "block affinities and workload endpoints",
    );

    // What stays possible (docs/security.md): an edit of another node's block
    // that changes none of its allocations.
    let mut borrowed = worker_1_block(&*store).await;
    borrowed.spec.sequence_number += 1;
    store.update(&borrowed).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn manifests_admission_hardening_a_token_without_a_node_claim_writes_nothing_while_others_are_unaffected()
 {
    let (api, store) = cluster().await;
    api.act_as(UserInfo::service_account("tabby-system", "tabby-agent"));
    assert_denied(
        register(&*store, "worker-1", "192.0.2.13/24").await,
        "no authentication.kubernetes.io/node-name claim",
    );
    // The controller's account is not the agent's: it reclaims a gone node's block.
    api.act_as(UserInfo::service_account(
        "tabby-system",
        "tabby-ipam-controller",
    ));
    let block = worker_1_block(&*store).await;
    store
        .delete::<IPAMBlock>(&block.metadata.name, None)
        .await
        .unwrap();
}

/// A pool of a single block, 10.250.0.0/26, that worker-1 claims with one
/// address (its node named, as tabby-cni names it), and worker-2 registered: its
/// addresses there can only be borrowed.
async fn one_block_pool(api: &KubeApi, store: &Arc<dyn Backend>) -> IPAMBlock {
    let mut tiny = IPPoolSpec::new("10.250.0.0/26".parse().unwrap());
    tiny.block_size = Some(26);
    store.create(&IPPool::new("tiny", tiny)).await.unwrap();
    assign(store, "worker-1", "k8s-pod-network.ctr-t1").await;
    api.act_as(agent_on("worker-2"));
    register(&**store, "worker-2", "192.0.2.21/24")
        .await
        .unwrap();
    tiny_block(&**store).await
}

async fn assign(store: &Arc<dyn Backend>, node: &str, handle: &str) -> std::net::IpAddr {
    let allocator = ipam::assign::Allocator::new(store.clone(), node);
    let mut request = ipam::assign::AssignRequest::new(handle, 1, 0);
    request.pools_v4 = vec!["tiny".into()];
    request.attrs = BTreeMap::from([(ipam::table::attr::NODE.into(), node.into())]);
    let assigned = allocator.auto_assign(&request).await.unwrap();
    assigned.addresses[0].ip
}

async fn tiny_block(store: &dyn Backend) -> IPAMBlock {
    store.get::<IPAMBlock>("10-250-0-0-26").await.unwrap()
}

/// The node each allocation of `block` names, by address.
fn holders(block: &IPAMBlock) -> Vec<(std::net::IpAddr, Option<String>)> {
    block
        .spec
        .allocations()
        .iter()
        .map(|a| (a.ip, a.secondary.get("node").cloned()))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn manifests_admission_a_node_borrows_from_another_nodes_block_and_gives_the_address_back() {
    let (api, store) = cluster().await;
    let block = one_block_pool(&api, &store).await;
    assert_eq!(block.spec.affine_node(), Some("worker-1"));
    let owners = holders(&block);

    // The pool has no free block: worker-2's address is borrowed from worker-1's.
    let borrowed = assign(&store, "worker-2", "k8s-pod-network.ctr-t2").await;
    let block = tiny_block(&*store).await;
    assert_eq!(block.spec.affine_node(), Some("worker-1"));
    let mut expected = owners.clone();
    expected.push((borrowed, Some("worker-2".into())));
    expected.sort();
    assert_eq!(holders(&block), expected);

    let allocator = ipam::assign::Allocator::new(store.clone(), "worker-2");
    let released = allocator
        .release_handle("k8s-pod-network.ctr-t2")
        .await
        .unwrap();
    assert_eq!(released.len(), 1);
    assert_eq!(holders(&tiny_block(&*store).await), owners);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn manifests_admission_hardening_a_node_cannot_take_free_or_retire_another_nodes_allocations()
{
    let (api, store) = cluster().await;
    let block = one_block_pool(&api, &store).await;
    let says = "in another node's block an agent may only add and remove allocations";

    // worker-1's pod's entry, rewritten to name worker-2 (which could then
    // announce that /32 as borrowed and draw the pod's traffic).
    let mut taken = block.clone();
    for attribute in &mut taken.spec.attributes {
        attribute.secondary.insert("node".into(), "worker-2".into());
    }
    assert_denied(store.update(&taken).await, says);

    // The same entry marked free (worker-1 would hand the address out again).
    let mut freed = block.clone();
    let ordinal = freed.spec.allocations.iter().position(Option::is_some);
    let ordinal = ordinal.expect("worker-1's address");
    freed.spec.allocations[ordinal] = None;
    freed.spec.unallocated.push(ordinal);
    freed
        .spec
        .sequence_number_for_allocation
        .remove(&ordinal.to_string());
    assert_denied(store.update(&freed).await, says);

    // Marked as being released, so worker-1 allocates nothing more in it.
    let mut retired = block.clone();
    retired.spec.deleted = true;
    assert_denied(store.update(&retired).await, says);

    // An entry the block's owner wrote without a node (the cluster's first pod,
    // allocated by hand) is another's entry too.
    let blocks = store.list::<IPAMBlock>(&Default::default()).await.unwrap();
    let first = blocks.items.into_iter().find(|b| {
        let handle = |a: &api::resources::AllocationAttribute| a.handle_id.clone();
        b.spec
            .attributes
            .iter()
            .filter_map(handle)
            .any(|h| h == "k8s-pod-network.ctr-1")
    });
    let mut other = first.expect("the block of the cluster's first pod");
    for attribute in &mut other.spec.attributes {
        attribute.secondary.insert("node".into(), "worker-2".into());
    }
    assert_denied(store.update(&other).await, says);

    // worker-1 itself edits its own block as it likes (here: releases the address).
    api.act_as(agent_on("worker-1"));
    store.update(&freed).await.unwrap();
}
