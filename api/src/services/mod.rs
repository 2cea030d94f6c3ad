//! Kubernetes Services and EndpointSlices as routing needs them: which addresses a
//! Service has (cluster, external, LoadBalancer ingress), whether its traffic
//! policies are `Local`, and on which nodes its endpoints are ready.
//!
//! These are core Kubernetes objects, never tabby's: they are read from the API
//! server (in the Kubernetes datastore mode its client, in the etcd mode a
//! kubeconfig's) and followed with list and watch ([`follow`]). Whatever a user
//! wrote in them is input: an address that does not parse is set aside with a
//! sentence naming the Service and the field, never a panic or a lost watch.

pub mod follow;

use std::collections::BTreeSet;
use std::net::IpAddr;

use k8s_openapi::api::core::v1::Service;
use k8s_openapi::api::discovery::v1::EndpointSlice;

/// The label an EndpointSlice names its Service with.
pub const SERVICE_NAME_LABEL: &str = "kubernetes.io/service-name";

/// A Service's addresses and policies; its key is `namespace/name`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ServiceFacts {
    /// `spec.clusterIPs` (or `spec.clusterIP`); none for a headless Service.
    pub cluster_ips: Vec<IpAddr>,
    /// `spec.externalIPs`.
    pub external_ips: Vec<IpAddr>,
    /// `status.loadBalancer.ingress[].ip`, for a Service of type LoadBalancer.
    pub load_balancer_ips: Vec<IpAddr>,
    /// `spec.externalTrafficPolicy: Local`: external and LoadBalancer addresses are
    /// served only by nodes with a ready endpoint.
    pub external_local: bool,
    /// `spec.internalTrafficPolicy: Local`: the same for the cluster IPs.
    pub internal_local: bool,
    /// Addresses that did not parse, as sentences.
    pub problems: Vec<String>,
}

/// One EndpointSlice: its Service and the nodes with a ready endpoint in it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SliceFacts {
    /// The Service's key (`namespace/name`), from the `kubernetes.io/service-name`
    /// label; `None` for a slice without it (no Service's).
    pub service: Option<String>,
    /// Nodes (`endpoints[].nodeName`) with an endpoint whose `conditions.ready`
    /// is true or unset (the API says to read unset as ready).
    pub ready_nodes: BTreeSet<String>,
}

/// `namespace/name` of an object's metadata.
pub fn key(namespace: Option<&str>, name: Option<&str>) -> String {
    format!("{}/{}", namespace.unwrap_or(""), name.unwrap_or(""))
}

/// The facts of a Service, with a sentence for every address that does not parse.
pub fn service_facts(service: &Service) -> ServiceFacts {
    let name = key(
        service.metadata.namespace.as_deref(),
        service.metadata.name.as_deref(),
    );
    let mut facts = ServiceFacts::default();
    let Some(spec) = &service.spec else {
        return facts;
    };
    let mut parse = |field: &str, written: &str, into: &mut Vec<IpAddr>| match written.parse() {
        Ok(address) => {
            if !into.contains(&address) {
                into.push(address);
            }
        }
        Err(_) => facts.problems.push(format!(
            "Service {name}: {field} {written:?} is not an IP address; it is not advertised"
        )),
    };
    let cluster_ips: Vec<&String> = match &spec.cluster_ips {
        Some(ips) if !ips.is_empty() => ips.iter().collect(),
        _ => spec.cluster_ip.iter().collect(),
    };
    let mut addresses = Vec::new();
    for ip in cluster_ips.into_iter().filter(|ip| !is_headless(ip)) {
        parse("spec.clusterIPs", ip, &mut addresses);
    }
    facts.cluster_ips = std::mem::take(&mut addresses);
    for ip in spec.external_ips.iter().flatten() {
        parse("spec.externalIPs", ip, &mut addresses);
    }
    facts.external_ips = std::mem::take(&mut addresses);
    if spec.type_.as_deref() == Some("LoadBalancer") {
        let ingress = service
            .status
            .as_ref()
            .and_then(|s| s.load_balancer.as_ref())
            .and_then(|lb| lb.ingress.as_ref());
        for ip in ingress.into_iter().flatten().filter_map(|i| i.ip.as_ref()) {
            parse("status.loadBalancer.ingress[].ip", ip, &mut addresses);
        }
    }
    facts.load_balancer_ips = addresses;
    facts.external_local = spec.external_traffic_policy.as_deref() == Some("Local");
    facts.internal_local = spec.internal_traffic_policy.as_deref() == Some("Local");
    facts
}

/// A headless Service's cluster IP (`None`, or empty while unset).
fn is_headless(ip: &str) -> bool {
    ip.is_empty() || ip == "None"
}

/// The facts of an EndpointSlice.
pub fn slice_facts(slice: &EndpointSlice) -> SliceFacts {
    let service = slice
        .metadata
        .labels
        .as_ref()
        .and_then(|labels| labels.get(SERVICE_NAME_LABEL))
        .map(|name| key(slice.metadata.namespace.as_deref(), Some(name)));
    let ready_nodes = slice
        .endpoints
        .iter()
        .filter(|e| e.conditions.as_ref().and_then(|c| c.ready).unwrap_or(true))
        .filter_map(|e| e.node_name.clone())
        .collect();
    SliceFacts {
        service,
        ready_nodes,
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn service(value: serde_json::Value) -> Service {
        serde_json::from_value(value).unwrap()
    }

    #[test]
    fn services_facts_take_every_address_kind_and_the_local_policies() {
        let facts = service_facts(&service(json!({
            "metadata": {"namespace": "shop", "name": "web"},
            "spec": {
                "type": "LoadBalancer",
                "clusterIP": "10.96.0.10",
                "clusterIPs": ["10.96.0.10", "fd00:96::10"],
                "externalIPs": ["192.0.2.7"],
                "externalTrafficPolicy": "Local",
            },
            "status": {"loadBalancer": {"ingress": [{"ip": "203.0.113.5"}, {"hostname": "lb.example"}]}},
        })));
        let ips =
            |list: &[&str]| -> Vec<IpAddr> { list.iter().map(|a| a.parse().unwrap()).collect() };
        assert_eq!(facts.cluster_ips, ips(&["10.96.0.10", "fd00:96::10"]));
        assert_eq!(facts.external_ips, ips(&["192.0.2.7"]));
        assert_eq!(facts.load_balancer_ips, ips(&["203.0.113.5"]));
        assert!(facts.external_local && !facts.internal_local);
        assert_eq!(facts.problems, Vec::<String>::new());
    }

    #[test]
    fn services_bad_addresses_are_named_and_left_out_and_headless_has_no_cluster_ip() {
        let facts = service_facts(&service(json!({
            "metadata": {"namespace": "shop", "name": "odd"},
            "spec": {"clusterIP": "None", "externalIPs": ["10.0.0.300", "192.0.2.8"]},
            // Not a LoadBalancer: its ingress is not its own.
            "status": {"loadBalancer": {"ingress": [{"ip": "203.0.113.5"}]}},
        })));
        assert_eq!(facts.cluster_ips, Vec::<IpAddr>::new());
        assert_eq!(facts.external_ips, ["192.0.2.8".parse::<IpAddr>().unwrap()]);
        assert_eq!(facts.load_balancer_ips, Vec::<IpAddr>::new());
        assert_eq!(
            facts.problems,
            [
                "Service shop/odd: spec.externalIPs \"10.0.0.300\" is not an IP address; it is \
              not advertised"
            ]
        );
    }

    #[test]
    fn services_slice_facts_count_ready_and_unset_readiness_but_not_unready() {
        let slice: EndpointSlice = serde_json::from_value(json!({
            "metadata": {"namespace": "shop", "name": "web-abc",
                         "labels": {SERVICE_NAME_LABEL: "web"}},
            "addressType": "IPv4",
            "endpoints": [
                {"addresses": ["10.244.0.5"], "nodeName": "n1", "conditions": {"ready": true}},
                {"addresses": ["10.244.1.5"], "nodeName": "n2", "conditions": {"ready": false}},
                {"addresses": ["10.244.2.5"], "nodeName": "n3"},
                {"addresses": ["10.244.3.5"]},
            ],
        }))
        .unwrap();
        let facts = slice_facts(&slice);
        assert_eq!(facts.service.as_deref(), Some("shop/web"));
        assert_eq!(
            facts.ready_nodes.into_iter().collect::<Vec<_>>(),
            ["n1", "n3"]
        );
    }
}
