//! This node's `Node` resource: created on first start, brought up to date on every
//! start with what the agent owns (see `api::resources::node` for who owns which
//! field): the addresses found now, except a family the operator pinned. What the
//! operator owns is kept: the AS, the route-reflector cluster id, labels and pinned
//! addresses; the agent's `--as` and `--node-labels` only fill in what is absent,
//! and a disagreement is logged. Compare-and-swap, re-read on conflict.

use std::collections::BTreeMap;

use api::datastore::{Backend, Datastore, Error};
use api::resources::{AddressFamily, AsNumber, Cidr, Node, NodeBgpSpec, NodeSpec};
use ipnet::IpNet;

/// Writes that race with other writers are retried this often before giving up.
const ATTEMPTS: usize = 10;

/// What this node says about itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    pub name: String,
    pub ipv4: Option<IpNet>,
    pub ipv6: Option<IpNet>,
    /// The node's AS when the resource has none (else the cluster's applies).
    pub as_number: Option<AsNumber>,
    /// Labels to add where the resource lacks the key.
    pub labels: BTreeMap<String, String>,
}

impl Identity {
    fn address(&self, family: AddressFamily) -> Option<IpNet> {
        match family {
            AddressFamily::IPv4 => self.ipv4,
            AddressFamily::IPv6 => self.ipv6,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum RegisterError {
    #[error(
        "node {0:?} has neither an IPv4 nor an IPv6 address to speak BGP from: set \
         --ip/--ip6 (TABBY_IP/TABBY_IP6) or an autodetection method that finds one"
    )]
    NoAddress(String),
    #[error("registering node {name:?}: {source}")]
    Datastore { name: String, source: Error },
    #[error(
        "registering node {0:?}: still conflicting with other writers after {ATTEMPTS} attempts"
    )]
    Contended(String),
}

/// The node's resource as stored, `None` before its first registration (or an
/// operator's `apply`).
pub async fn stored(store: &dyn Backend, name: &str) -> Result<Option<Node>, RegisterError> {
    match store.get::<Node>(name).await {
        Ok(node) => Ok(Some(node)),
        Err(Error::NotFound { .. }) => Ok(None),
        Err(source) => Err(RegisterError::Datastore {
            name: name.to_owned(),
            source,
        }),
    }
}

/// The addresses the operator pinned in `node`, by family.
pub fn pinned(node: Option<&Node>) -> BTreeMap<AddressFamily, IpNet> {
    let Some(bgp) = node.and_then(|n| n.spec.bgp.as_ref()) else {
        return BTreeMap::new();
    };
    AddressFamily::ALL
        .into_iter()
        .filter(|family| bgp.pinned(*family))
        .filter_map(|family| Some((family, bgp.address(family)?.0)))
        .collect()
}

/// Creates or updates the node's resource; returns it as stored.
pub async fn register(store: &dyn Backend, identity: &Identity) -> Result<Node, RegisterError> {
    let name = &identity.name;
    if identity.ipv4.is_none() && identity.ipv6.is_none() {
        return Err(RegisterError::NoAddress(name.clone()));
    }
    let failed = |source| RegisterError::Datastore {
        name: name.clone(),
        source,
    };
    for _ in 0..ATTEMPTS {
        match stored(store, name).await? {
            Some(stored) => {
                let mut node = stored.clone();
                for disagreement in describe(&mut node, identity) {
                    tracing::warn!(node = %name, "{disagreement}");
                }
                if node == stored {
                    return Ok(stored);
                }
                match store.update(&node).await {
                    Ok(updated) => return Ok(updated),
                    Err(Error::Conflict { .. }) => continue,
                    Err(error) => return Err(failed(error)),
                }
            }
            None => {
                let mut node = Node::new(name.clone(), NodeSpec::default());
                describe(&mut node, identity);
                match store.create(&node).await {
                    Ok(created) => return Ok(created),
                    Err(Error::AlreadyExists { .. }) => continue,
                    Err(error) => return Err(failed(error)),
                }
            }
        }
    }
    Err(RegisterError::Contended(name.clone()))
}

/// Puts what this node knows about itself into `node`, keeping what the operator
/// set; returns where the agent's settings and the operator's differ.
fn describe(node: &mut Node, identity: &Identity) -> Vec<String> {
    let mut disagreements = Vec::new();
    let bgp = node.spec.bgp.get_or_insert_with(NodeBgpSpec::default);
    for family in AddressFamily::ALL {
        let found = identity.address(family).map(Cidr);
        if !bgp.pinned(family) {
            bgp.set_address(family, found);
        } else if found != bgp.address(family) {
            disagreements.push(format!(
                "spec.bgp.{} is pinned to {}: this node uses it, not {}",
                family.address_field(),
                describe_address(bgp.address(family)),
                describe_address(found)
            ));
        }
    }
    match (bgp.as_number, identity.as_number) {
        (None, wanted) => bgp.as_number = wanted,
        (Some(set), Some(wanted)) if set != wanted => disagreements.push(format!(
            "spec.bgp.asNumber is {set} in the Node: it stays (--as {wanted} only fills it in \
             when absent; change it with calicoctl-rs patch node)"
        )),
        _ => {}
    }
    for (key, value) in &identity.labels {
        match node.metadata.labels.get(key) {
            None => {
                node.metadata.labels.insert(key.clone(), value.clone());
            }
            Some(set) if set != value => disagreements.push(format!(
                "label {key}={set} in the Node stays (--node-labels {key}={value} only adds \
                 absent labels; change it with calicoctl-rs label nodes --overwrite)"
            )),
            Some(_) => {}
        }
    }
    disagreements
}

fn describe_address(address: Option<Cidr>) -> String {
    address.map_or_else(|| "none".to_owned(), |a| a.to_string())
}

#[cfg(test)]
mod tests {
    use api::datastore::MemoryStore;

    use super::*;

    fn identity() -> Identity {
        Identity {
            name: "n1".into(),
            ipv4: Some("192.0.2.10/24".parse().unwrap()),
            ipv6: None,
            as_number: None,
            labels: [("rack".to_owned(), "r1".to_owned())].into(),
        }
    }

    fn run<T>(future: impl std::future::Future<Output = T>) -> T {
        tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap()
            .block_on(future)
    }

    #[test]
    fn a_new_node_is_created_with_its_address_and_labels() {
        let store = MemoryStore::new();
        let node = run(register(&store, &identity())).unwrap();
        let bgp = node.spec.bgp.unwrap();
        assert_eq!(bgp.ipv4_address.unwrap().to_string(), "192.0.2.10/24");
        assert_eq!(node.metadata.labels["rack"], "r1");
    }

    #[test]
    fn a_restart_with_nothing_new_writes_nothing() {
        let store = MemoryStore::new();
        run(register(&store, &identity())).unwrap();
        let revision = store.revision();
        run(register(&store, &identity())).unwrap();
        assert_eq!(store.revision(), revision);
    }

    #[test]
    fn an_update_keeps_what_others_set() {
        let store = MemoryStore::new();
        let mut node = run(register(&store, &identity())).unwrap();
        let bgp = node.spec.bgp.as_mut().unwrap();
        bgp.route_reflector_cluster_id = Some("1.1.1.1".parse().unwrap());
        bgp.ipv4_ipip_tunnel_addr = Some("10.0.0.1".parse().unwrap());
        node.metadata.labels.insert("rr".into(), "true".into());
        run(store.update(&node)).unwrap();

        let moved = Identity {
            ipv4: Some("198.51.100.10/24".parse().unwrap()),
            as_number: Some(AsNumber(65010)),
            ..identity()
        };
        let node = run(register(&store, &moved)).unwrap();
        let bgp = node.spec.bgp.unwrap();
        assert_eq!(bgp.ipv4_address.unwrap().to_string(), "198.51.100.10/24");
        assert_eq!(bgp.as_number, Some(AsNumber(65010)));
        assert_eq!(
            bgp.route_reflector_cluster_id,
            Some("1.1.1.1".parse().unwrap())
        );
        assert_eq!(bgp.ipv4_ipip_tunnel_addr, Some("10.0.0.1".parse().unwrap()));
        assert_eq!(node.metadata.labels["rr"], "true");
    }

    #[test]
    fn calico_yaml_a_restart_keeps_the_operators_as_labels_and_pinned_address() {
        let store = MemoryStore::new();
        let mut node = run(register(&store, &identity())).unwrap();
        let bgp = node.spec.bgp.as_mut().unwrap();
        bgp.as_number = Some(AsNumber(65001));
        bgp.ipv6_address = Some(Cidr("fd00::10/64".parse().unwrap()));
        bgp.pinned_addresses = vec![AddressFamily::IPv6];
        node.metadata.labels.insert("rack".into(), "rack1".into());
        run(store.update(&node)).unwrap();

        // The flags say otherwise (a DaemonSet's defaults for every node).
        let restarted = Identity {
            ipv4: Some("192.0.2.20/24".parse().unwrap()),
            ipv6: None,
            as_number: Some(AsNumber(64512)),
            labels: [("rack".to_owned(), "r1".to_owned())].into(),
            ..identity()
        };
        let mut stored = run(stored_node(&store));
        let disagreements = describe(&mut stored, &restarted);
        assert_eq!(disagreements.len(), 3, "{disagreements:#?}");
        assert!(disagreements[0].starts_with("spec.bgp.ipv6Address is pinned to fd00::10/64"));
        let node = run(register(&store, &restarted)).unwrap();
        let bgp = node.spec.bgp.unwrap();
        // The unpinned family follows the host; the operator's fields stay.
        assert_eq!(bgp.ipv4_address.unwrap().to_string(), "192.0.2.20/24");
        assert_eq!(bgp.ipv6_address.unwrap().to_string(), "fd00::10/64");
        assert_eq!(bgp.as_number, Some(AsNumber(65001)));
        assert_eq!(node.metadata.labels["rack"], "rack1");
    }

    #[test]
    fn calico_yaml_a_node_written_before_the_agent_started_is_adopted() {
        let store = MemoryStore::new();
        let spec = NodeSpec {
            bgp: Some(NodeBgpSpec {
                as_number: Some(AsNumber(65002)),
                ..NodeBgpSpec::default()
            }),
            ..NodeSpec::default()
        };
        let mut waiting = Node::new("n1", spec);
        waiting
            .metadata
            .labels
            .insert("rack".into(), "rack2".into());
        run(store.create(&waiting)).unwrap();
        let node = run(register(&store, &identity())).unwrap();
        let bgp = node.spec.bgp.unwrap();
        assert_eq!(bgp.ipv4_address.unwrap().to_string(), "192.0.2.10/24");
        assert_eq!(bgp.as_number, Some(AsNumber(65002)));
        assert_eq!(node.metadata.labels["rack"], "rack2");
        assert!(bgp.pinned_addresses.is_empty());
    }

    async fn stored_node(store: &MemoryStore) -> Node {
        stored(store, "n1").await.unwrap().unwrap()
    }

    #[test]
    fn without_any_address_registration_says_how_to_give_one() {
        let store = MemoryStore::new();
        let error = run(register(
            &store,
            &Identity {
                ipv4: None,
                ..identity()
            },
        ))
        .unwrap_err();
        assert!(error.to_string().contains("--ip/--ip6"), "{error}");
    }
}
