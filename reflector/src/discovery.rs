//! Peers from the datastore: every `Node` with a BGP address becomes a peer (a
//! route-reflector client, or a non-client when it is itself a reflector), and
//! this reflector's own `Node` and the cluster's `BGPConfiguration` give the
//! cluster id and AS. Pools, blocks and affinities give the ownership rule its
//! view (`ipam::ownership`). Each kind is kept current with a watch.

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use api::datastore::{Datastore, Error as DatastoreError, ListOptions, WatchEvent};
use api::resources::{
    BGPConfiguration, BlockAffinity, DEFAULT_BGP_CONFIGURATION, IPAMBlock, IPPool, Node, Resource,
};
use futures::StreamExt;
use ipam::ownership::Owners;
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

/// Everything the reflector follows in the datastore.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Snapshot {
    /// The default BGPConfiguration's AS.
    pub cluster_as: Option<u32>,
    pub nodes: BTreeMap<String, Node>,
    pub pools: BTreeMap<String, IPPool>,
    pub blocks: BTreeMap<String, IPAMBlock>,
    pub affinities: BTreeMap<String, BlockAffinity>,
    /// The kinds listed at least once.
    pub listed: BTreeSet<&'static str>,
}

/// The kinds [`follow`] lists and watches.
const KINDS: usize = 4;

impl Snapshot {
    /// True once every kind was listed.
    pub fn complete(&self) -> bool {
        self.listed.len() == KINDS
    }

    /// The peers and identity, for the reflector whose `Node` is `own`.
    pub fn discovered(&self, own: Option<&str>) -> Discovered {
        view(&self.nodes, own, self.cluster_as)
    }

    /// Who owns which pod address, for the ownership rule.
    pub fn owners(&self) -> Owners {
        let ipam = ipam::view::View::new(self.blocks.values(), self.affinities.values());
        Owners::new(self.pools.values(), &ipam, self.nodes.values(), true)
    }
}

/// Follows the datastore until `tx` has no receivers: per kind, lists (the
/// default BGPConfiguration's AS with the Nodes), publishes, applies every watch
/// event; starts over from a fresh list when a watch fails.
pub async fn follow<D>(store: Arc<D>, tx: watch::Sender<Snapshot>)
where
    D: Datastore + Send + Sync + ?Sized + 'static,
{
    tokio::join!(
        keep_following(&*store, &tx, |s| &mut s.nodes),
        keep_following(&*store, &tx, |s| &mut s.pools),
        keep_following(&*store, &tx, |s| &mut s.blocks),
        keep_following(&*store, &tx, |s| &mut s.affinities),
    );
}

async fn keep_following<D, R>(
    store: &D,
    tx: &watch::Sender<Snapshot>,
    objects: fn(&mut Snapshot) -> &mut BTreeMap<String, R>,
) where
    D: Datastore + Sync + ?Sized,
    R: Resource,
{
    while !tx.is_closed() {
        if let Err(error) = follow_once(store, tx, objects).await {
            tracing::warn!(kind = R::KIND, %error, "datastore discovery failed; listing again");
        }
        tokio::time::sleep(RETRY).await;
    }
}

async fn follow_once<D, R>(
    store: &D,
    tx: &watch::Sender<Snapshot>,
    objects: fn(&mut Snapshot) -> &mut BTreeMap<String, R>,
) -> Result<(), DatastoreError>
where
    D: Datastore + Sync + ?Sized,
    R: Resource,
{
    let cluster_as = if R::KIND == Node::KIND {
        match store
            .get::<BGPConfiguration>(DEFAULT_BGP_CONFIGURATION)
            .await
        {
            Ok(config) => config.spec.as_number.map(|a| a.0),
            Err(DatastoreError::NotFound { .. }) => None,
            Err(error) => return Err(error),
        }
    } else {
        None
    };
    let list = store.list::<R>(&ListOptions::default()).await?;
    let revision = list.revision;
    tx.send_modify(|snapshot| {
        if R::KIND == Node::KIND {
            snapshot.cluster_as = cluster_as;
        }
        let listing = WatchEvent::Resync {
            objects: list.items,
            revision,
        };
        listing.apply_to(objects(snapshot));
        snapshot.listed.insert(R::KIND);
    });
    let mut events = store.watch::<R>(revision).await?;
    while let Some(event) = events.next().await {
        let event = event?;
        tx.send_if_modified(|snapshot| {
            let objects = objects(snapshot);
            let before = objects.clone();
            event.apply_to(objects);
            *objects != before
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
        let (tx, mut rx) = watch::channel(Snapshot::default());
        tokio::spawn(follow(Arc::clone(&store), tx));
        let view = |rx: &watch::Receiver<Snapshot>| rx.borrow().discovered(Some("rr"));
        rx.wait_for(Snapshot::complete).await.unwrap();
        let first = view(&rx);
        assert_eq!(first.cluster_id, Some(ClusterId(0x0202_0202)));
        assert_eq!(first.as_number, None);
        let peers: Vec<(String, bool)> = first
            .peers
            .values()
            .map(|p| (p.name.clone(), p.client))
            .collect();
        assert_eq!(peers, [("a".to_owned(), true), ("rr2".to_owned(), false)]);

        store.create(&node("b", "10.0.0.4/24", None)).await.unwrap();
        rx.wait_for(|s| s.nodes.len() == 4).await.unwrap();
        assert_eq!(view(&rx).peers.len(), 3);
        store.delete::<Node>("a", None).await.unwrap();
        rx.wait_for(|s| s.nodes.len() == 3).await.unwrap();
        let names: Vec<String> = view(&rx).peers.values().map(|p| p.name.clone()).collect();
        assert_eq!(names, ["rr2", "b"]);
    }
}
