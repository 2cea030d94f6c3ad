//! tabby-agent on lab nodes (in-process, one shared in-memory datastore, an IPAM
//! double) with pods attached by tabby-cni as a runtime attaches them: the mesh,
//! routes in the kernel against the expected table, pod-to-pod pings, a restart
//! that changes nothing, and a hijack that is refused. Needs root.

mod daemon_support;

use std::collections::BTreeSet;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use api::datastore::{Datastore, MemoryStore};
use api::resources::{Cidr, EncapsulationMode, Node as NodeResource, NodeBgpSpec, NodeSpec};
use bgp::speaker::{self, PeerConfig, Request, SpeakerConfig};
use daemon_support::{
    Background, RunningAgent, block_range, claim_block, options, pod, pool, release, release_block,
    run, tabby_cni, wait_for_routes,
};
use harness::cni::HostLocal as Runtime;
use harness::routes::{RouteMonitor, routes};
use harness::{Lab, Netns, Node};
use proto::agent::agent_status_client::AgentStatusClient;
use proto::agent::{GetDataplaneRequest, GetNodeRequest, ListKernelRoutesRequest};
use proto::bgp_status::bgp_status_client::BgpStatusClient;
use proto::bgp_status::{ListPeersRequest, ListRoutesRequest, PeerType, SessionState};

/// Subnet a: n1 (10.0.1.10), n2 (10.0.1.11) and n3 (10.0.1.12, without an agent);
/// the router gives each a default route, which proxy ARP for the pods' gateway
/// needs.
fn lab(test: &str) -> Lab {
    Lab::new(test)
        .subnet("a", "10.0.1.0/24")
        .node("n1", "a")
        .node("n2", "a")
        .node("n3", "a")
        .router()
        .build()
        .unwrap()
}

/// Two mesh nodes with a pod each: web on n1 (block 10.244.1.0/26), db on n2
/// (10.244.2.0/26), no encapsulation, converged.
struct Mesh {
    // Dropped first: agents before the lab they run in.
    agents: Vec<Option<RunningAgent>>,
    store: Arc<MemoryStore>,
    web: Netns,
    db: Netns,
    web_ip: IpAddr,
    db_ip: IpAddr,
    web_veth: String,
    db_veth: String,
    lab: Lab,
}

impl Mesh {
    fn new(test: &str) -> Self {
        let lab = lab(test);
        let (n1, n2) = (lab.node("n1"), lab.node("n2"));
        let store = Arc::new(MemoryStore::new());
        pool(
            &store,
            "10.244.0.0/16",
            EncapsulationMode::Never,
            EncapsulationMode::Never,
        );
        claim_block(&store, "n1", "10.244.1.0/26");
        claim_block(&store, "n2", "10.244.2.0/26");
        let agents = vec![
            Some(RunningAgent::start(n1, store.clone(), options(n1))),
            Some(RunningAgent::start(n2, store.clone(), options(n2))),
        ];
        let (r1, r2) = (
            Runtime::new(&lab, n1, block_range("10.244.1.0/26"), tabby_cni()),
            Runtime::new(&lab, n2, block_range("10.244.2.0/26"), tabby_cni()),
        );
        let (web, db) = (lab.pod("web").unwrap(), lab.pod("db").unwrap());
        let web_ip = pod(&store, &r1, n1, "web", &web);
        let db_ip = pod(&store, &r2, n2, "db", &db);
        let (web_veth, db_veth) = (r1.host_veth("web"), r2.host_veth("db"));
        let mesh = Self {
            agents,
            store,
            web,
            db,
            web_ip,
            db_ip,
            web_veth,
            db_veth,
            lab,
        };
        wait_for_routes(mesh.n1(), &mesh.n1_table());
        wait_for_routes(mesh.n2(), &mesh.n2_table());
        mesh
    }

    fn n1(&self) -> &Node {
        self.lab.node("n1")
    }

    fn n2(&self) -> &Node {
        self.lab.node("n2")
    }

    fn n1_table(&self) -> BTreeSet<String> {
        BTreeSet::from([
            format!("{}/32 dev {} scope link", self.web_ip, self.web_veth),
            "blackhole 10.244.1.0/26".into(),
            "10.244.2.0/26 via 10.0.1.11 dev eth0".into(),
        ])
    }

    fn n2_table(&self) -> BTreeSet<String> {
        BTreeSet::from([
            format!("{}/32 dev {} scope link", self.db_ip, self.db_veth),
            "blackhole 10.244.2.0/26".into(),
            "10.244.1.0/26 via 10.0.1.10 dev eth0".into(),
        ])
    }
}

#[test]
#[ignore = "needs root"]
fn daemon_two_mesh_nodes_route_each_others_pods_and_blackhole_their_own() {
    harness::require_root();
    let mesh = Mesh::new("daemon_mesh_routes");
    mesh.web.ping(mesh.db_ip).unwrap();
    mesh.db.ping(mesh.web_ip).unwrap();
    for agent in mesh.agents.iter().flatten() {
        agent.wait_ready();
        let status = agent.status.borrow();
        assert_eq!(status.peers.len(), 1, "{status:?}");
        assert!(status.peers[0].established);
        assert_eq!(status.peers[0].kind.as_str(), "node-to-node mesh");
        assert!(status.rejected.is_empty(), "{status:?}");
    }
}

#[test]
#[ignore = "needs root"]
fn daemon_status_api_reports_peers_bgp_routes_kernel_routes_and_the_dataplane() {
    harness::require_root();
    let mesh = Mesh::new("daemon_status_api");
    let agent = mesh.agents[0].as_ref().unwrap();
    agent.wait_ready();
    let runtime = harness::runtime();
    let channel = agent.channel(&runtime);
    let mut bgp = BgpStatusClient::new(channel.clone());
    let mut node = AgentStatusClient::new(channel);
    runtime.block_on(async {
        let peers = bgp
            .list_peers(ListPeersRequest {})
            .await
            .unwrap()
            .into_inner();
        assert_eq!(
            (peers.local_as, peers.router_id.as_str()),
            (64512, "10.0.1.10")
        );
        let peer = &peers.peers[0];
        assert_eq!(peer.address, "10.0.1.11");
        assert_eq!(peer.r#type(), PeerType::NodeMesh);
        assert_eq!(peer.state(), SessionState::Established);
        assert_eq!((peer.name.as_str(), peer.remote_as), ("n2", 64512));

        let routes = bgp
            .list_routes(ListRoutesRequest::default())
            .await
            .unwrap()
            .into_inner()
            .routes;
        let learned: Vec<(String, String)> = routes
            .iter()
            .map(|r| (r.prefix.clone(), r.paths[0].next_hop.clone()))
            .collect();
        assert!(
            learned.contains(&("10.244.2.0/26".into(), "10.0.1.11".into())),
            "{learned:?}"
        );

        let kernel: BTreeSet<String> = node
            .list_kernel_routes(ListKernelRoutesRequest {})
            .await
            .unwrap()
            .into_inner()
            .routes
            .iter()
            .filter(|r| r.desired)
            .map(|r| r.text.clone())
            .collect();
        assert_eq!(kernel.len(), 3, "{kernel:?}");
        assert!(kernel.contains("blackhole 10.244.1.0/26"), "{kernel:?}");

        let dataplane = node
            .get_dataplane(GetDataplaneRequest {})
            .await
            .unwrap()
            .into_inner();
        assert_eq!(
            (
                dataplane.workload_routes,
                dataplane.blackhole_routes,
                dataplane.gateway_routes,
                dataplane.exported_prefixes
            ),
            (1, 1, 1, 1)
        );
        assert_eq!(dataplane.pod_mtu, 1500);
        let me = node.get_node(GetNodeRequest {}).await.unwrap().into_inner();
        assert!(me.ready, "{me:?}");
        assert_eq!(
            (me.name.as_str(), me.ipv4_address.as_str()),
            ("n1", "10.0.1.10/24")
        );
    });
}

#[test]
#[ignore = "needs root"]
fn daemon_a_restarted_agent_changes_no_route_and_loses_no_ping() {
    harness::require_root();
    let mut mesh = Mesh::new("daemon_restart");
    for agent in mesh.agents.iter().flatten() {
        agent.wait_ready();
    }
    let monitors: Vec<_> = [mesh.n1(), mesh.n2()]
        .iter()
        .map(|node| RouteMonitor::start(node).unwrap())
        .collect();
    // 10 pings a second across the nodes for the whole restart.
    let mut ping = mesh
        .web
        .spawn(
            "ping",
            "ping",
            &["-i", "0.1", "-c", "60", &mesh.db_ip.to_string()],
        )
        .unwrap();
    let n1 = mesh.lab.node("n1");
    mesh.agents[0].take().unwrap().stop().unwrap();
    let restarted = RunningAgent::start(n1, mesh.store.clone(), options(n1));
    restarted.wait_ready();
    harness::wait_until(Duration::from_secs(30), "the pings to finish", || {
        anyhow::Ok(!ping.is_running())
    })
    .unwrap();
    let log = ping.log();
    assert!(log.contains(" 0% packet loss"), "{log}");
    assert_eq!(routes(n1, "84").unwrap(), mesh.n1_table());
    assert_eq!(routes(mesh.n2(), "84").unwrap(), mesh.n2_table());
    for (monitor, node) in monitors.iter().zip(["n1", "n2"]) {
        assert_eq!(
            monitor.changes(),
            Vec::<String>::new(),
            "{node} saw route changes"
        );
    }
    mesh.agents[0] = Some(restarted);
}

#[test]
#[ignore = "needs root"]
fn daemon_a_node_announcing_another_nodes_block_is_refused() {
    harness::require_root();
    let mesh = Mesh::new("daemon_hijack");
    let (n1, rogue_node) = (mesh.n1(), mesh.lab.node("n3"));
    // A rogue speaker on the subnet, registered as node "rogue" so the mesh peers
    // with it, announces n2's block as its own.
    let rogue_ip = rogue_node.ipv4().unwrap();
    let mut rogue = NodeResource::new(
        "rogue",
        NodeSpec {
            bgp: Some(NodeBgpSpec {
                ipv4_address: Some(Cidr(format!("{rogue_ip}/24").parse().unwrap())),
                ..NodeBgpSpec::default()
            }),
            ..NodeSpec::default()
        },
    );
    rogue = run(mesh.store.create(&rogue)).unwrap();
    let _speaker = Background::start(rogue_node, move |stopped| async move {
        let mut speaker = speaker::start(SpeakerConfig {
            listen: vec![SocketAddr::new(rogue_ip.into(), 179)],
            ..SpeakerConfig::new(64512, rogue_ip)
        })
        .map_err(|e| e.to_string())?;
        let peer = PeerConfig {
            local_address: Some(rogue_ip.into()),
            ..PeerConfig::new("10.0.1.10".parse().unwrap(), Some(64512))
        };
        let _ = speaker.requests.send(Request::AddPeer(peer));
        let _ = speaker
            .requests
            .send(Request::Originate("10.244.2.0/26".parse().unwrap()));
        tokio::select! {
            _ = stopped => {}
            () = async { while speaker.notices.recv().await.is_some() {} } => {}
        }
        Ok(())
    });
    // Refused at import, before best-path selection: the owner's path stays best.
    mesh.agents[0]
        .as_ref()
        .unwrap()
        .wait("n1 to refuse the rogue's route", |status| {
            status.rejected_at_import.iter().any(|r| {
                r.starts_with(&format!(
                    "10.244.2.0/26 via {rogue_ip} from peer {rogue_ip}"
                )) && r.contains("owned by node \"n2\", but its next hop is node \"rogue\"")
            }) && status.counters.rejections.get("not_owner") == Some(&1)
        });
    assert_eq!(routes(n1, "84").unwrap(), mesh.n1_table());
    mesh.web.ping(mesh.db_ip).unwrap();
    drop(rogue);
}

#[test]
#[ignore = "needs root"]
fn daemon_a_deleted_pod_and_its_released_block_leave_no_route_anywhere() {
    harness::require_root();
    let mesh = Mesh::new("daemon_pod_delete");
    let (n1, n2) = (mesh.n1(), mesh.n2());
    // DEL as the runtime sends it, then IPAM frees the address, finds the block
    // empty and releases it.
    let r1 = Runtime::new(&mesh.lab, n1, block_range("10.244.1.0/26"), tabby_cni());
    assert!(r1.del("web", Some(&mesh.web)).success);
    release(&mesh.store, mesh.web_ip);
    release_block(&mesh.store, "n1", "10.244.1.0/26");
    wait_for_routes(
        n1,
        &BTreeSet::from(["10.244.2.0/26 via 10.0.1.11 dev eth0".to_owned()]),
    );
    wait_for_routes(
        n2,
        &BTreeSet::from([
            format!("{}/32 dev {} scope link", mesh.db_ip, mesh.db_veth),
            "blackhole 10.244.2.0/26".into(),
        ]),
    );
}

#[test]
#[ignore = "needs root"]
fn daemon_a_removed_node_leaves_the_mesh_and_its_routes_are_withdrawn() {
    harness::require_root();
    let mesh = Mesh::new("daemon_node_removed");
    run(mesh.store.delete::<NodeResource>("n2", None)).unwrap();
    wait_for_routes(
        mesh.n1(),
        &BTreeSet::from([
            format!("{}/32 dev {} scope link", mesh.web_ip, mesh.web_veth),
            "blackhole 10.244.1.0/26".into(),
        ]),
    );
    mesh.agents[0]
        .as_ref()
        .unwrap()
        .wait("n1 to drop its session to n2", |status| {
            status.peers.is_empty()
        });
}

/// Registers lab node n3 as Node `rogue` (in AS `own_as` when given, as a node may
/// set on its own Node) and runs a speaker there that peers with n1 and announces
/// `prefix` (inside n2's block) with `attributes`: the mesh peers with it like any
/// node.
fn rogue_announcing(
    mesh: &Mesh,
    own_as: Option<u32>,
    prefix: &str,
    attributes: bgp::codec::Attributes,
) -> (Background<()>, IpAddr) {
    let prefix: ipnet::IpNet = prefix.parse().unwrap();
    let rogue_node = mesh.lab.node("n3");
    let rogue_ip = rogue_node.ipv4().unwrap();
    let rogue = NodeResource::new(
        "rogue",
        NodeSpec {
            bgp: Some(NodeBgpSpec {
                ipv4_address: Some(Cidr(format!("{rogue_ip}/24").parse().unwrap())),
                as_number: own_as.map(api::resources::AsNumber),
                ..NodeBgpSpec::default()
            }),
            ..NodeSpec::default()
        },
    );
    run(mesh.store.create(&rogue)).unwrap();
    let local_as = own_as.unwrap_or(64512);
    let speaker = Background::start(rogue_node, move |stopped| async move {
        let mut speaker = speaker::start(SpeakerConfig {
            listen: vec![SocketAddr::new(rogue_ip.into(), 179)],
            ..SpeakerConfig::new(local_as, rogue_ip)
        })
        .map_err(|e| e.to_string())?;
        let peer = PeerConfig {
            local_address: Some(rogue_ip.into()),
            import: Some(bgp::speaker::Policy::Accept),
            export: Some(bgp::speaker::Policy::Accept),
            ..PeerConfig::new("10.0.1.10".parse().unwrap(), Some(64512))
        };
        let _ = speaker.requests.send(Request::AddPeer(peer));
        let _ = speaker
            .requests
            .send(Request::OriginateWith { prefix, attributes });
        tokio::select! {
            _ = stopped => {}
            () = async { while speaker.notices.recv().await.is_some() {} } => {}
        }
        Ok(())
    });
    (speaker, rogue_ip.into())
}

/// Waits until n1 has refused the rogue's route, then checks that n1 still
/// routes n2's block through n2 and its pod reaches n2's.
fn n1_still_routes_n2s_block_through_n2(mesh: &Mesh, rogue_ip: IpAddr) {
    let via_rogue = format!("via {rogue_ip} from peer {rogue_ip}");
    mesh.agents[0]
        .as_ref()
        .unwrap()
        .wait("n1 to refuse the rogue's route", |status| {
            status
                .rejected_at_import
                .iter()
                .any(|r| r.contains(&via_rogue))
        });
    wait_for_routes(mesh.n1(), &mesh.n1_table());
    mesh.web.ping(mesh.db_ip).unwrap();
}

#[test]
#[ignore = "needs root"]
fn hardening_a_spoofed_originator_with_a_higher_preference_does_not_blackhole_the_owners_block() {
    harness::require_root();
    let mesh = Mesh::new("hardening_spoofed_originator");
    // n2's router id as ORIGINATOR_ID, and a LOCAL_PREF that wins best path.
    let spoofed = bgp::codec::Attributes {
        local_pref: Some(200),
        originator_id: Some("10.0.1.11".parse().unwrap()),
        ..bgp::codec::Attributes::default()
    };
    let (_rogue, rogue_ip) = rogue_announcing(&mesh, None, "10.244.2.0/26", spoofed);
    n1_still_routes_n2s_block_through_n2(&mesh, rogue_ip);
}

#[test]
#[ignore = "needs root"]
fn hardening_a_node_that_changes_its_own_as_is_still_held_to_ownership() {
    harness::require_root();
    let mesh = Mesh::new("hardening_own_as");
    // Its own Node says AS 65099: the mesh session with it is eBGP. Half of n2's
    // block, which the kernel prefers to the whole.
    let (_rogue, rogue_ip) = rogue_announcing(
        &mesh,
        Some(65099),
        "10.244.2.0/27",
        bgp::codec::Attributes::default(),
    );
    n1_still_routes_n2s_block_through_n2(&mesh, rogue_ip);
}
