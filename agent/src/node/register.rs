//! This node's `Node` resource: created on first start, brought up to date on
//! every start with the addresses found now, the AS given on the command line and
//! the labels asked for. What others set (route-reflector cluster id, tunnel
//! addresses, labels of their own) is kept. Compare-and-swap, re-read on conflict.

use std::collections::BTreeMap;

use api::datastore::{Backend, Datastore, Error};
use api::resources::{AsNumber, Cidr, Node, NodeBgpSpec, NodeSpec};
use ipnet::IpNet;

/// Writes that race with other writers are retried this often before giving up.
const ATTEMPTS: usize = 10;

/// What this node says about itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    pub name: String,
    pub ipv4: Option<IpNet>,
    pub ipv6: Option<IpNet>,
    /// Overrides the node's AS (else what the resource has, else the cluster's).
    pub as_number: Option<AsNumber>,
    pub labels: BTreeMap<String, String>,
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
        match store.get::<Node>(name).await {
            Ok(stored) => {
                let mut node = stored.clone();
                describe(&mut node, identity);
                if node == stored {
                    return Ok(stored);
                }
                match store.update(&node).await {
                    Ok(updated) => return Ok(updated),
                    Err(Error::Conflict { .. }) => continue,
                    Err(error) => return Err(failed(error)),
                }
            }
            Err(Error::NotFound { .. }) => {
                let mut node = Node::new(name.clone(), NodeSpec::default());
                describe(&mut node, identity);
                match store.create(&node).await {
                    Ok(created) => return Ok(created),
                    Err(Error::AlreadyExists { .. }) => continue,
                    Err(error) => return Err(failed(error)),
                }
            }
            Err(error) => return Err(failed(error)),
        }
    }
    Err(RegisterError::Contended(name.clone()))
}

/// Puts what this node knows about itself into `node`.
fn describe(node: &mut Node, identity: &Identity) {
    let bgp = node.spec.bgp.get_or_insert_with(NodeBgpSpec::default);
    bgp.ipv4_address = identity.ipv4.map(Cidr);
    bgp.ipv6_address = identity.ipv6.map(Cidr);
    if identity.as_number.is_some() {
        bgp.as_number = identity.as_number;
    }
    node.metadata.labels.extend(identity.labels.clone());
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
