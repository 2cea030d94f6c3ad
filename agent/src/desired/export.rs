//! What this node originates over BGP: the blocks it owns (confirmed), the
//! addresses its pods borrowed from other nodes' blocks, and the Service ranges and
//! addresses it advertises ([`super::services`]); pools with `disableBGPExport` are kept to themselves. Each
//! prefix carries the communities of every `prefixAdvertisements` entry covering it.

use std::collections::BTreeMap;

use api::resources::{BGPConfigurationSpec, Community};
use ipnet::IpNet;

use super::cluster::{Cluster, View};
use super::services::ServiceAdvertisement;

pub(super) fn prefixes(
    cluster: &Cluster,
    ipam: &View<'_>,
    me: &str,
    services: &ServiceAdvertisement,
) -> BTreeMap<IpNet, Vec<Community>> {
    let exported = |prefix: &IpNet| {
        cluster
            .pool_of(*prefix)
            .is_some_and(|pool| !pool.spec.disable_bgp_export)
    };
    let mut prefixes: Vec<IpNet> = ipam
        .owned_blocks()
        .filter(|(_, owner)| *owner == me)
        .map(|(block, _)| block)
        .filter(exported)
        .collect();
    prefixes.extend(
        ipam.allocations()
            .filter(|a| a.node == Some(me) && ipam.owner_of_address(a.address) != Some(me))
            .map(|a| IpNet::from(a.address))
            .filter(exported),
    );
    prefixes.extend(services.routes.iter().map(|route| route.prefix));
    let config = cluster.bgp_configuration(me);
    prefixes
        .into_iter()
        .map(|prefix| (prefix, communities(&config, prefix)))
        .collect()
}

/// The communities `prefixAdvertisements` attach to `prefix`, names resolved.
fn communities(config: &BGPConfigurationSpec, prefix: IpNet) -> Vec<Community> {
    let mut found: Vec<Community> = Vec::new();
    for advertisement in &config.prefix_advertisements {
        if !advertisement.cidr.0.trunc().contains(&prefix) {
            continue;
        }
        for written in &advertisement.communities {
            let value = written.parse::<Community>().ok().or_else(|| {
                config
                    .communities
                    .iter()
                    .find(|named| &named.name == written)
                    .map(|named| named.value)
            });
            // Validation guarantees every name resolves.
            if let Some(value) = value.filter(|v| !found.contains(v)) {
                found.push(value);
            }
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use api::resources::{
        AffinityState, BGPConfiguration, CidrEntry, EncapsulationMode, NamedCommunity,
        PrefixAdvertisement,
    };

    use super::*;
    use crate::desired::services::advertisement;
    use crate::desired::testing::*;

    fn cluster() -> Cluster {
        let mut cluster = Cluster::default();
        add_pool(&mut cluster, "p", "10.0.0.0/16", EncapsulationMode::Never);
        add_block(
            &mut cluster,
            "10.0.0.0/26",
            Some("a"),
            AffinityState::Confirmed,
        );
        add_block(
            &mut cluster,
            "10.0.0.64/26",
            Some("a"),
            AffinityState::Pending,
        );
        add_block(
            &mut cluster,
            "10.0.1.0/26",
            Some("b"),
            AffinityState::Confirmed,
        );
        allocate(&mut cluster, "10.0.1.7", "a", Some(("default", "borrower")));
        allocate(&mut cluster, "10.0.1.8", "b", Some(("default", "at-home")));
        allocate(
            &mut cluster,
            "10.0.0.3",
            "a",
            Some(("default", "in-own-block")),
        );
        cluster
    }

    fn exported_prefixes(cluster: &Cluster) -> BTreeMap<IpNet, Vec<Community>> {
        let services = advertisement(cluster, &cluster.bgp_configuration("a"), "a");
        prefixes(cluster, &cluster.ipam(), "a", &services)
    }

    fn exported(cluster: &Cluster) -> Vec<String> {
        exported_prefixes(cluster)
            .keys()
            .map(IpNet::to_string)
            .collect()
    }

    #[test]
    fn confirmed_own_blocks_and_borrowed_addresses_are_exported() {
        assert_eq!(exported(&cluster()), ["10.0.0.0/26", "10.0.1.7/32"]);
    }

    #[test]
    fn a_pool_with_bgp_export_disabled_is_not_exported() {
        let mut cluster = cluster();
        pool_mut(&mut cluster, "p").disable_bgp_export = true;
        assert_eq!(exported(&cluster), Vec::<String>::new());
    }

    #[test]
    fn service_ranges_are_exported_with_the_communities_that_cover_them() {
        let mut cluster = cluster();
        let spec = BGPConfigurationSpec {
            service_cluster_ips: vec![CidrEntry {
                cidr: cidr("10.96.0.0/12"),
            }],
            service_load_balancer_ips: vec![CidrEntry {
                cidr: cidr("203.0.113.0/24"),
            }],
            communities: vec![NamedCommunity {
                name: "lb".into(),
                value: "65000:200".parse().unwrap(),
            }],
            prefix_advertisements: vec![
                PrefixAdvertisement {
                    cidr: cidr("203.0.113.0/24"),
                    communities: vec!["lb".into(), "65000:1:2".into()],
                },
                PrefixAdvertisement {
                    cidr: cidr("10.0.0.0/8"),
                    communities: vec!["65000:100".into()],
                },
            ],
            ..BGPConfigurationSpec::default()
        };
        cluster
            .bgp_configurations
            .insert("default".into(), BGPConfiguration::new("default", spec));
        let all = exported_prefixes(&cluster);
        let community = |s: &str| s.parse::<Community>().unwrap();
        assert_eq!(
            all[&net("203.0.113.0/24")],
            [community("65000:200"), community("65000:1:2")]
        );
        assert_eq!(all[&net("10.96.0.0/12")], [community("65000:100")]);
        assert_eq!(all[&net("10.0.0.0/26")], [community("65000:100")]);
    }
}
