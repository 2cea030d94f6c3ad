//! Peers from the datastore: every `Node` with a BGP address becomes a peer (a
//! route-reflector client, or a non-client when it is itself a reflector), and
//! this reflector's own `Node` and the cluster's `BGPConfiguration` give the
//! cluster id and AS. The view is kept current with a watch.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use api::datastore::{Datastore, Error as DatastoreError, ListOptions, WatchEvent};
use api::resources::{BGPConfiguration, DEFAULT_BGP_CONFIGURATION, Node};
use futures::StreamExt;
use tokio::sync::watch;

use crate::ClusterId;

/// What the datastore says.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Discovered {
    /// The cluster's AS (the default BGPConfiguration), or this node's own.
    pub as_number: Option<u32>,
    /// This reflector's `Node`'s `routeReflectorClusterID`.
    pub cluster_id: Option<ClusterId>,
    pub peers: BTreeMap<IpAddr, DiscoveredPeer>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DiscoveredPeer {
    /// The `Node`'s name.
    pub name: String,
    /// The node's own AS, when it has one.
    pub as_number: Option<u32>,
    /// False for nodes that are route reflectors themselves.
    pub client: bool,
}

/// The view of `nodes`, seen by the reflector whose `Node` is `own` (skipped as a
/// peer), in a cluster whose AS is `cluster_as`.
pub fn view(
    nodes: &BTreeMap<String, Node>,
    own: Option<&str>,
    cluster_as: Option<u32>,
) -> Discovered {
    let own_node = own.and_then(|name| nodes.get(name));
    let own_bgp = own_node.and_then(|n| n.spec.bgp.as_ref());
    let mut discovered = Discovered {
        as_number: own_bgp
            .and_then(|b| b.as_number)
            .map(|a| a.0)
            .or(cluster_as),
        cluster_id: own_bgp
            .and_then(|b| b.route_reflector_cluster_id)
            .map(|id| ClusterId(id.into())),
        peers: BTreeMap::new(),
    };
    for (name, node) in nodes {
        if Some(name.as_str()) == own {
            continue;
        }
        let Some(bgp) = &node.spec.bgp else { continue };
        let addresses = [&bgp.ipv4_address, &bgp.ipv6_address];
        for address in addresses.into_iter().flatten() {
            discovered.peers.insert(
                address.0.addr(),
                DiscoveredPeer {
                    name: name.clone(),
                    as_number: bgp.as_number.map(|a| a.0),
                    client: bgp.route_reflector_cluster_id.is_none(),
                },
            );
        }
    }
    discovered
}

/// How long to wait before listing again after the datastore failed.
const RETRY: Duration = Duration::from_secs(2);

/// Follows the datastore until `tx` has no receivers: lists `Node`s, publishes the
/// view, applies every watch event; starts over from a fresh list when the watch
/// fails.
pub async fn follow<D>(store: Arc<D>, own: Option<String>, tx: watch::Sender<Discovered>)
where
    D: Datastore + Send + Sync + ?Sized + 'static,
{
    while !tx.is_closed() {
        if let Err(error) = follow_once(&*store, own.as_deref(), &tx).await {
            tracing::warn!(%error, "datastore discovery failed; listing again");
        }
        tokio::time::sleep(RETRY).await;
    }
}

async fn follow_once<D>(
    store: &D,
    own: Option<&str>,
    tx: &watch::Sender<Discovered>,
) -> Result<(), DatastoreError>
where
    D: Datastore + Sync + ?Sized,
{
    let cluster_as = match store
        .get::<BGPConfiguration>(DEFAULT_BGP_CONFIGURATION)
        .await
    {
        Ok(config) => config.spec.as_number.map(|a| a.0),
        Err(DatastoreError::NotFound { .. }) => None,
        Err(error) => return Err(error),
    };
    let list = store.list::<Node>(&ListOptions::default()).await?;
    let mut nodes: BTreeMap<String, Node> = list
        .items
        .into_iter()
        .map(|n| (n.metadata.name.clone(), n))
        .collect();
    tx.send_replace(view(&nodes, own, cluster_as));
    let mut events = store.watch::<Node>(list.revision).await?;
    while let Some(event) = events.next().await {
        match event? {
            WatchEvent::Added(node) | WatchEvent::Modified(node) => {
                nodes.insert(node.metadata.name.clone(), node);
            }
            WatchEvent::Deleted(node) => {
                nodes.remove(&node.metadata.name);
            }
            WatchEvent::Resync { objects, .. } => {
                nodes = objects
                    .into_iter()
                    .map(|n| (n.metadata.name.clone(), n))
                    .collect();
            }
        }
        tx.send_if_modified(|current| {
            let next = view(&nodes, own, cluster_as);
            let changed = *current != next;
            *current = next;
            changed
        });
        if tx.is_closed() {
            return Ok(());
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::net::Ipv4Addr;

    use api::datastore::MemoryStore;
    use api::resources::{Cidr, NodeBgpSpec, NodeSpec};

    use super::*;

    fn node(name: &str, address: &str, cluster_id: Option<Ipv4Addr>) -> Node {
        let bgp = NodeBgpSpec {
            ipv4_address: Some(Cidr(address.parse().unwrap())),
            route_reflector_cluster_id: cluster_id,
            ..NodeBgpSpec::default()
        };
        Node::new(
            name,
            NodeSpec {
                bgp: Some(bgp),
                ..NodeSpec::default()
            },
        )
    }

    #[tokio::test]
    async fn the_view_follows_nodes_added_and_deleted_and_skips_this_reflector() {
        let store = Arc::new(MemoryStore::new());
        let own = node("rr", "10.0.0.1/24", Some(Ipv4Addr::new(2, 2, 2, 2)));
        store.create(&own).await.unwrap();
        store.create(&node("a", "10.0.0.2/24", None)).await.unwrap();
        store
            .create(&node("rr2", "10.0.0.3/24", Some(Ipv4Addr::new(2, 2, 2, 2))))
            .await
            .unwrap();
        let (tx, mut rx) = watch::channel(Discovered::default());
        tokio::spawn(follow(Arc::clone(&store), Some("rr".into()), tx));
        rx.changed().await.unwrap();
        let view = rx.borrow_and_update().clone();
        assert_eq!(view.cluster_id, Some(ClusterId(0x0202_0202)));
        assert_eq!(view.as_number, None);
        let peers: Vec<(String, bool)> = view
            .peers
            .values()
            .map(|p| (p.name.clone(), p.client))
            .collect();
        assert_eq!(peers, [("a".to_owned(), true), ("rr2".to_owned(), false)]);

        store.create(&node("b", "10.0.0.4/24", None)).await.unwrap();
        rx.changed().await.unwrap();
        assert_eq!(rx.borrow_and_update().peers.len(), 3);
        store.delete::<Node>("a", None).await.unwrap();
        rx.changed().await.unwrap();
        let names: Vec<String> = rx.borrow().peers.values().map(|p| p.name.clone()).collect();
        assert_eq!(names, ["rr2", "b"]);
    }
}
