//! Every field tabby writes survives the CRD schemas `crdgen` generates. A real API
//! server prunes a field its CRD's schema does not specify, silently; the API double
//! prunes as it does (`harness::kube_api::pruning`). Written here: the example of
//! every kind (`docs/examples`, one file per kind) and what the code itself writes
//! (a block claimed and an address assigned by IPAM, a Node registered by the
//! agent, a workload endpoint). Nothing may be pruned, and the fields written are
//! named below, so a field added to a type shows up here.

use std::collections::{BTreeMap, BTreeSet};

use api::datastore::Datastore;
use api::resources::{Cidr, IPPool, IPPoolSpec, WorkloadEndpointSpec};
use harness::kube_api::KubeApi;
use serde_json::Value;

/// Every field path written, by kind (`[]` an array's items, `*` a map's values).
const WRITTEN: &[&str] = &[
    "BGPConfiguration.asNumber",
    "BGPConfiguration.bfd.enabled",
    "BGPConfiguration.bfd.gracefulRestartOnDown",
    "BGPConfiguration.bfd.strict",
    "BGPConfiguration.bindMode",
    "BGPConfiguration.communities[].name",
    "BGPConfiguration.communities[].value",
    "BGPConfiguration.listenPort",
    "BGPConfiguration.nodeMeshMaxRestartTime",
    "BGPConfiguration.nodeMeshPassword.secretKeyRef.key",
    "BGPConfiguration.nodeMeshPassword.secretKeyRef.name",
    "BGPConfiguration.nodeToNodeMeshEnabled",
    "BGPConfiguration.prefixAdvertisements[].cidr",
    "BGPConfiguration.prefixAdvertisements[].communities[]",
    "BGPConfiguration.serviceClusterIPs[].cidr",
    "BGPConfiguration.serviceExternalIPs[].cidr",
    "BGPConfiguration.serviceLoadBalancerIPs[].cidr",
    "BGPFilter.exportV4[].action",
    "BGPFilter.exportV4[].cidr",
    "BGPFilter.exportV4[].matchOperator",
    "BGPFilter.exportV4[].operations[].addCommunity.value",
    "BGPFilter.exportV4[].operations[].prependASPath.prefix[]",
    "BGPFilter.exportV6[].action",
    "BGPFilter.exportV6[].cidr",
    "BGPFilter.exportV6[].matchOperator",
    "BGPFilter.importV4[].action",
    "BGPFilter.importV4[].communities.values[]",
    "BGPFilter.importV4[].peerType",
    "BGPFilter.importV4[].prefixLength.max",
    "BGPFilter.importV4[].prefixLength.min",
    "BGPPeer.asNumber",
    "BGPPeer.bfd.enabled",
    "BGPPeer.bfd.minRx",
    "BGPPeer.bfd.minTx",
    "BGPPeer.bfd.multiplier",
    "BGPPeer.bfd.strict",
    "BGPPeer.filters[]",
    "BGPPeer.keepaliveTime",
    "BGPPeer.maxRestartTime",
    "BGPPeer.nextHopMode",
    "BGPPeer.nodeSelector",
    "BGPPeer.numAllowedLocalASNumbers",
    "BGPPeer.password.secretKeyRef.key",
    "BGPPeer.password.secretKeyRef.name",
    "BGPPeer.peerIP",
    "BGPPeer.peerSelector",
    "BGPPeer.sourceAddress",
    "BGPPeer.ttlSecurity",
    "BlockAffinity.cidr",
    "BlockAffinity.node",
    "BlockAffinity.state",
    "IPAMBlock.affinity",
    "IPAMBlock.allocations[]",
    "IPAMBlock.attributes[].handleID",
    "IPAMBlock.attributes[].secondary.*",
    "IPAMBlock.cidr",
    "IPAMBlock.deleted",
    "IPAMBlock.sequenceNumber",
    "IPAMBlock.sequenceNumberForAllocation.*",
    "IPAMBlock.unallocated[]",
    "IPAMConfig.autoAllocateBlocks",
    "IPAMConfig.maxBlocksPerHost",
    "IPAMConfig.strictAffinity",
    "IPAMHandle.block.*",
    "IPAMHandle.deleted",
    "IPAMHandle.handleID",
    "IPPool.allowedUses[]",
    "IPPool.blockSize",
    "IPPool.cidr",
    "IPPool.disableBGPExport",
    "IPPool.disabled",
    "IPPool.ipipMode",
    "IPPool.natOutgoing",
    "IPPool.nodeSelector",
    "IPPool.vxlanMode",
    "IPReservation.reservedCIDRs[]",
    "Node.bgp.asNumber",
    "Node.bgp.ipv4Address",
    "Node.bgp.ipv4IPIPTunnelAddr",
    "Node.bgp.ipv6Address",
    "Node.bgp.pinnedAddresses[]",
    "Node.bgp.routeReflectorClusterID",
    "Node.ipv4VXLANTunnelAddr",
    "Node.vxlanTunnelMACAddr",
    "WorkloadEndpoint.containerID",
    "WorkloadEndpoint.endpoint",
    "WorkloadEndpoint.interfaceName",
    "WorkloadEndpoint.ipNetworks[]",
    "WorkloadEndpoint.mac",
    "WorkloadEndpoint.namespace",
    "WorkloadEndpoint.node",
    "WorkloadEndpoint.pod",
];

/// The leaf paths of `value` under `path`, read along `schema`.
fn paths(value: &Value, schema: &Value, path: &str, out: &mut BTreeSet<String>) {
    match value {
        Value::Object(fields) => {
            for (name, child) in fields {
                let (child_schema, step) = match schema["properties"].get(name) {
                    Some(child_schema) => (child_schema, name.as_str()),
                    None => (&schema["additionalProperties"], "*"),
                };
                paths(child, child_schema, &format!("{path}.{step}"), out);
            }
            if fields.is_empty() {
                out.insert(path.to_owned());
            }
        }
        Value::Array(items) => {
            for item in items {
                paths(item, &schema["items"], &format!("{path}[]"), out);
            }
            if items.is_empty() {
                out.insert(path.to_owned());
            }
        }
        _ => {
            out.insert(path.to_owned());
        }
    }
}

fn repository() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// `POST`s `object` to its kind's collection; what the server stored.
async fn create(client: &kube::Client, plural: &str, object: &Value) -> Value {
    let request = http::Request::post(format!("/apis/tabby.dev/v1/{plural}"))
        .header("content-type", "application/json")
        .body(serde_json::to_vec(object).unwrap())
        .unwrap();
    client.request(request).await.unwrap()
}

#[tokio::test]
async fn kdd_every_field_tabby_writes_survives_pruning_by_the_generated_crd_schemas() {
    let (api, store) = KubeApi::with_tabby_crds().await.unwrap();
    let client = api.client().unwrap();
    let crds: BTreeMap<String, Value> = api::crd::definitions()
        .into_iter()
        .map(|crd| {
            (
                crd["spec"]["names"]["kind"].as_str().unwrap().to_owned(),
                crd,
            )
        })
        .collect();
    let schema_of = |kind: &str| &crds[kind]["spec"]["versions"][0]["schema"]["openAPIV3Schema"];

    // The examples, as written: each must come back whole.
    for file in std::fs::read_dir(repository().join("docs/examples")).unwrap() {
        let text = std::fs::read_to_string(file.unwrap().path()).unwrap();
        for document in yaml_serde::Deserializer::from_str(&text) {
            let object: Value = serde::Deserialize::deserialize(document).unwrap();
            let kind = object["kind"].as_str().unwrap();
            let plural = crds[kind]["spec"]["names"]["plural"].as_str().unwrap();
            let stored = create(&client, plural, &object).await;
            assert_eq!(stored["spec"], object["spec"], "{kind} lost fields");
        }
    }

    // What the code writes.
    store
        .create(&IPPool::new(
            "code-pool",
            IPPoolSpec::new(Cidr("10.250.0.0/16".parse().unwrap())),
        ))
        .await
        .unwrap();
    let identity = agent::node::register::Identity {
        name: "worker-9".into(),
        ipv4: Some("192.0.2.19/24".parse().unwrap()),
        ipv6: Some("2001:db8::19/64".parse().unwrap()),
        as_number: None,
        labels: BTreeMap::from([("rack".into(), "r9".into())]),
    };
    agent::node::register::register(&*store, &identity)
        .await
        .unwrap();
    let allocator = ipam::assign::Allocator::new(store.clone(), "worker-9");
    let request = ipam::assign::AssignRequest::new("k8s-pod-network.ctr-9", 1, 0);
    allocator.auto_assign(&request).await.unwrap();
    store
        .register_workload(WorkloadEndpointSpec {
            node: "worker-9".into(),
            namespace: "default".into(),
            pod: "web-9".into(),
            container_id: "ctr-9".into(),
            endpoint: "eth0".into(),
            interface_name: "cali0123456789a".into(),
            mac: Some("ee:ee:ee:ee:ee:ee".parse().unwrap()),
            ip_networks: vec!["10.250.0.0/32".parse().unwrap()],
        })
        .await
        .unwrap();

    assert_eq!(api.take_pruned(), Vec::<String>::new(), "fields pruned");
    let mut written = BTreeSet::new();
    for (kind, crd) in &crds {
        let plural = crd["spec"]["names"]["plural"].as_str().unwrap();
        let list: Value = client
            .request(
                http::Request::get(format!("/apis/tabby.dev/v1/{plural}"))
                    .body(Vec::new())
                    .unwrap(),
            )
            .await
            .unwrap();
        for item in list["items"].as_array().unwrap() {
            paths(
                &item["spec"],
                &schema_of(kind)["properties"]["spec"],
                kind,
                &mut written,
            );
        }
    }
    let written: Vec<&str> = written.iter().map(String::as_str).collect();
    assert_eq!(
        written, WRITTEN,
        "the fields written changed: name them above"
    );
}
