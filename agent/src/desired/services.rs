//! Which Service addresses this node advertises, and why (Calico's service
//! advertisement).
//!
//! - Every range in `serviceClusterIPs`, `serviceExternalIPs` and
//!   `serviceLoadBalancerIPs` is advertised from every node.
//! - A Service whose policy is `Local` (`internalTrafficPolicy` for its cluster IPs,
//!   `externalTrafficPolicy` for its external and LoadBalancer addresses) is served
//!   only where it has a ready endpoint: each of those addresses that lies inside
//!   its kind's ranges is advertised as a /32 (/128) from the nodes with a ready
//!   endpoint of the Service, and from no other. The router prefers the longer
//!   prefix and spreads over those nodes.
//! - An address outside its kind's ranges is never advertised: a user who writes a
//!   Service cannot make the cluster announce an address the operator did not give
//!   to Services.

use std::collections::BTreeSet;
use std::net::IpAddr;

use api::resources::{BGPConfigurationSpec, CidrEntry};
use api::services::ServiceFacts;
use ipnet::IpNet;

use super::cluster::Cluster;

/// A prefix advertised for Services, with the reason as a sentence.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceRoute {
    pub prefix: IpNet,
    pub why: String,
}

/// What this node advertises for Services, and what it holds back and why.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ServiceAdvertisement {
    pub routes: Vec<ServiceRoute>,
    /// Addresses of `Local` Services not advertised from here, as sentences.
    pub held_back: Vec<String>,
    /// Services' addresses that do not parse.
    pub problems: Vec<String>,
}

/// One kind of Service address, with the ranges and the policy that govern it.
struct AddressKind<'a> {
    what: &'static str,
    field: &'static str,
    ranges: &'a [CidrEntry],
    policy: &'static str,
    addresses: fn(&ServiceFacts) -> &[IpAddr],
    local: fn(&ServiceFacts) -> bool,
}

fn kinds(config: &BGPConfigurationSpec) -> [AddressKind<'_>; 3] {
    [
        AddressKind {
            what: "cluster IP",
            field: "serviceClusterIPs",
            ranges: &config.service_cluster_ips,
            policy: "internalTrafficPolicy",
            addresses: |s| &s.cluster_ips,
            local: |s| s.internal_local,
        },
        AddressKind {
            what: "external IP",
            field: "serviceExternalIPs",
            ranges: &config.service_external_ips,
            policy: "externalTrafficPolicy",
            addresses: |s| &s.external_ips,
            local: |s| s.external_local,
        },
        AddressKind {
            what: "LoadBalancer IP",
            field: "serviceLoadBalancerIPs",
            ranges: &config.service_load_balancer_ips,
            policy: "externalTrafficPolicy",
            addresses: |s| &s.load_balancer_ips,
            local: |s| s.external_local,
        },
    ]
}

/// The Service prefixes node `me` advertises under `config`.
pub fn advertisement(
    cluster: &Cluster,
    config: &BGPConfigurationSpec,
    me: &str,
) -> ServiceAdvertisement {
    let mut out = ServiceAdvertisement::default();
    let kinds = kinds(config);
    for kind in &kinds {
        for entry in kind.ranges {
            out.routes.push(ServiceRoute {
                prefix: entry.cidr.0.trunc(),
                why: format!("{} range, advertised from every node", kind.field),
            });
        }
    }
    let ready_here: BTreeSet<&str> = cluster
        .endpoint_slices
        .values()
        .filter(|slice| slice.ready_nodes.contains(me))
        .filter_map(|slice| slice.service.as_deref())
        .collect();
    for (name, service) in &cluster.services {
        out.problems.extend(service.problems.iter().cloned());
        for kind in &kinds {
            if !(kind.local)(service) {
                continue;
            }
            for address in (kind.addresses)(service) {
                let prefix = IpNet::from(*address);
                let what = format!("Service {name} {} {address}", kind.what);
                if !kind
                    .ranges
                    .iter()
                    .any(|r| r.cidr.0.trunc().contains(&prefix))
                {
                    out.held_back
                        .push(format!("{what}: not advertised, outside {}", kind.field));
                } else if ready_here.contains(name.as_str()) {
                    out.routes.push(ServiceRoute {
                        prefix,
                        why: format!(
                            "{what}: {} Local and a ready endpoint on this node",
                            kind.policy
                        ),
                    });
                } else {
                    out.held_back.push(format!(
                        "{what}: not advertised, {} Local and no ready endpoint on this node",
                        kind.policy
                    ));
                }
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use api::services::SliceFacts;

    use super::*;
    use crate::desired::testing::cidr;

    fn config() -> BGPConfigurationSpec {
        let entries = |list: &[&str]| -> Vec<CidrEntry> {
            list.iter().map(|c| CidrEntry { cidr: cidr(c) }).collect()
        };
        BGPConfigurationSpec {
            service_cluster_ips: entries(&["10.96.0.0/12", "fd00:96::/108"]),
            service_external_ips: entries(&["192.0.2.0/24"]),
            service_load_balancer_ips: entries(&["203.0.113.0/24"]),
            ..BGPConfigurationSpec::default()
        }
    }

    fn ips(list: &[&str]) -> Vec<IpAddr> {
        list.iter().map(|a| a.parse().unwrap()).collect()
    }

    /// Service `shop/web` with every kind of address, its endpoints ready on `nodes`.
    fn cluster(external_local: bool, internal_local: bool, nodes: &[&str]) -> Cluster {
        let mut cluster = Cluster::default();
        cluster.services.insert(
            "shop/web".into(),
            ServiceFacts {
                cluster_ips: ips(&["10.96.0.10", "fd00:96::10"]),
                external_ips: ips(&["192.0.2.7", "198.51.100.7"]),
                load_balancer_ips: ips(&["203.0.113.5"]),
                external_local,
                internal_local,
                problems: Vec::new(),
            },
        );
        cluster.endpoint_slices.insert(
            "shop/web-1".into(),
            SliceFacts {
                service: Some("shop/web".into()),
                ready_nodes: nodes.iter().map(|n| n.to_string()).collect(),
            },
        );
        cluster
    }

    fn prefixes(cluster: &Cluster, me: &str) -> Vec<String> {
        let mut all: Vec<String> = advertisement(cluster, &config(), me)
            .routes
            .iter()
            .map(|r| r.prefix.to_string())
            .collect();
        all.sort();
        all
    }

    const RANGES: [&str; 4] = [
        "10.96.0.0/12",
        "192.0.2.0/24",
        "203.0.113.0/24",
        "fd00:96::/108",
    ];

    #[test]
    fn services_ranges_are_advertised_from_every_node_and_cluster_policy_adds_nothing() {
        let cluster = cluster(false, false, &["a"]);
        assert_eq!(prefixes(&cluster, "a"), RANGES);
        assert_eq!(prefixes(&cluster, "b"), RANGES);
    }

    #[test]
    fn services_local_external_addresses_are_host_routes_only_where_an_endpoint_is_ready() {
        let cluster = cluster(true, false, &["a"]);
        let mut with = RANGES.map(str::to_owned).to_vec();
        with.extend(["192.0.2.7/32".into(), "203.0.113.5/32".into()]);
        with.sort();
        assert_eq!(prefixes(&cluster, "a"), with);
        assert_eq!(prefixes(&cluster, "b"), RANGES);
        let held = advertisement(&cluster, &config(), "b").held_back;
        assert!(
            held.contains(
                &"Service shop/web external IP 192.0.2.7: not advertised, externalTrafficPolicy \
                  Local and no ready endpoint on this node"
                    .to_owned()
            ),
            "{held:#?}"
        );
    }

    #[test]
    fn services_local_cluster_ips_of_both_families_follow_the_internal_policy() {
        let cluster = cluster(false, true, &["a", "b"]);
        for node in ["a", "b"] {
            let mut with = RANGES.map(str::to_owned).to_vec();
            with.extend(["10.96.0.10/32".into(), "fd00:96::10/128".into()]);
            with.sort();
            assert_eq!(prefixes(&cluster, node), with);
        }
        assert_eq!(prefixes(&cluster, "c"), RANGES);
    }

    #[test]
    fn services_an_address_outside_the_configured_ranges_is_never_advertised() {
        let cluster = cluster(true, true, &["a"]);
        let advertised = advertisement(&cluster, &config(), "a");
        assert!(
            !advertised.routes.iter().any(|r| r
                .prefix
                .contains(&"198.51.100.7".parse::<IpAddr>().unwrap())),
            "{advertised:#?}"
        );
        assert!(
            advertised.held_back.contains(
                &"Service shop/web external IP 198.51.100.7: not advertised, outside \
                  serviceExternalIPs"
                    .to_owned()
            ),
            "{advertised:#?}"
        );
        // Without any configured range, nothing of a Service is advertised.
        let none = advertisement(&cluster, &BGPConfigurationSpec::default(), "a");
        assert_eq!(none.routes, []);
    }

    #[test]
    fn services_unready_endpoints_and_other_services_slices_do_not_count() {
        let mut cluster = cluster(true, false, &[]);
        cluster.endpoint_slices.insert(
            "shop/other-1".into(),
            SliceFacts {
                service: Some("shop/other".into()),
                ready_nodes: ["a".to_owned()].into(),
            },
        );
        assert_eq!(prefixes(&cluster, "a"), RANGES);
    }
}
