//! What the lab did, read back from the running parts (the agents' and
//! reflectors' status APIs, the ToR's CLI, the nodes' kernels, pings between
//! pods) and checked against what the datastore implies (shown by `show`).

use std::collections::BTreeSet;
use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Result;
use harness::e2e::Facts;
use proto::bgp_status::{Peer, SessionState};

use super::{Lab, Mode, TOR_AS, TOR_NAME, TopOfRack, Tor};

/// One BGP session as a speaker sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Session {
    /// Who is at the other end (a node, a reflector, `ToR`, or an address).
    pub peer: String,
    pub up: bool,
}

/// A BGP speaker of the lab and its sessions (or why they could not be read).
#[derive(Debug)]
pub struct Speaker {
    pub name: String,
    /// Its address(es), subnet and role, as the table shows them.
    pub address: String,
    pub role: String,
    pub sessions: Result<Vec<Session>, String>,
}

impl Speaker {
    fn down(&self) -> Vec<String> {
        match &self.sessions {
            Ok(sessions) => sessions
                .iter()
                .filter(|s| !s.up)
                .map(|s| format!("{}: no session with {}", self.name, s.peer))
                .collect(),
            Err(error) => vec![format!("{}: {error}", self.name)],
        }
    }
}

/// A node's tabby routes, each with what it is for.
#[derive(Debug)]
pub struct NodeRoutes {
    pub node: String,
    /// (route, what it is; empty when the datastore implies no such route)
    pub routes: Vec<(String, String)>,
    /// Routes the datastore implies that the kernel lacks.
    pub missing: Vec<String>,
}

/// A node's block and whether the ToR learned it.
#[derive(Debug)]
pub struct Learned {
    pub block: String,
    pub owner: String,
    pub learned: bool,
    /// Who it forwards the block's traffic to: the owner, or a node that learned
    /// the block over iBGP and re-advertised it over eBGP with itself as the
    /// next hop (the ToR picks one of the equally long paths).
    pub next_hop: String,
}

/// What [`Lab::report`] saw.
#[derive(Debug)]
pub struct Report {
    pub mode: Mode,
    pub tor_kind: Tor,
    pub subnets: usize,
    pub convergence: Option<Duration>,
    pub resources: PathBuf,
    /// What calicoctl-rs said it applied.
    pub applied: Vec<String>,
    pub nodes: Vec<Speaker>,
    pub reflectors: Vec<Speaker>,
    pub tor: Option<Speaker>,
    /// Every node's blocks, learned by the ToR or not (empty without a ToR).
    pub tor_blocks: Vec<Learned>,
    pub routes: Vec<NodeRoutes>,
    /// (pod, node, address)
    pub pods: Vec<(String, String, String)>,
    /// `reachable[i][j]`: pod i pinged pod j (empty when not pinged).
    pub reachable: Vec<Vec<bool>>,
}

/// Reads the lab back: every speaker's sessions, the ToR's learned blocks, every
/// node's routes and, when `ping`, every pod pair.
pub(super) fn observe(lab: &Lab, ping: bool) -> Result<Report> {
    let facts = lab.cluster.facts()?;
    let routes = (lab.nodes.iter())
        .map(|node| node_routes(lab, node, &facts))
        .collect::<Result<_>>()?;
    Ok(Report {
        mode: lab.options.mode,
        tor_kind: lab.options.tor,
        subnets: match lab.options.mode {
            Mode::Direct => 1,
            _ => 2,
        },
        convergence: lab.convergence,
        resources: lab.resources.clone(),
        applied: lab.applied.clone(),
        nodes: lab
            .nodes
            .iter()
            .map(|node| node_speaker(lab, node))
            .collect(),
        reflectors: (lab.reflectors.iter())
            .map(|rr| reflector_speaker(lab, rr))
            .collect(),
        tor: lab.tor.as_ref().map(|tor| tor_speaker(lab, tor)),
        tor_blocks: (lab.tor.as_ref())
            .map(|tor| tor_blocks(lab, tor, &facts))
            .unwrap_or_default(),
        routes,
        pods: (lab.pods.iter())
            .map(|p| (p.name.clone(), p.node.clone(), p.ip.to_string()))
            .collect(),
        reachable: if ping { ping_matrix(lab) } else { Vec::new() },
    })
}

// Sessions.

fn node_speaker(lab: &Lab, name: &str) -> Speaker {
    let node = lab.cluster.lab.node(name);
    Speaker {
        name: name.to_owned(),
        address: node.address().to_string(),
        role: format!("subnet {}  agent", node.subnet()),
        sessions: sessions(
            lab,
            harness::e2e::list_peers(&lab.cluster.socket(name)),
            lab.expected_peers(name),
        ),
    }
}

/// A reflector peers with every node and every other reflector.
fn reflector_speaker(lab: &Lab, rr: &str) -> Speaker {
    let node = lab.cluster.lab.node(rr);
    let others = lab.reflectors.iter().filter(|o| *o != rr);
    let expected = lab.nodes.iter().chain(others).cloned().collect();
    Speaker {
        name: rr.to_owned(),
        address: node.address().to_string(),
        role: format!("subnet {}  tabby-reflector", node.subnet()),
        sessions: sessions(lab, lab.cluster.reflector_peers(rr), expected),
    }
}

/// The ToR peers with every node (on each subnet it joins).
fn tor_speaker(lab: &Lab, tor: &TopOfRack) -> Speaker {
    let addresses: Vec<IpAddr> = (lab.nodes.iter())
        .map(|n| lab.cluster.lab.node(n).address())
        .collect();
    let at: BTreeSet<String> = (lab.names.iter())
        .filter(|(_, n)| *n == TOR_NAME)
        .map(|(a, _)| a.to_string())
        .collect();
    let sessions = tor.sessions(&addresses).map(|up| {
        (lab.nodes.iter().zip(up))
            .map(|(n, up)| Session {
                peer: n.clone(),
                up,
            })
            .collect()
    });
    Speaker {
        name: TOR_NAME.to_owned(),
        address: at.into_iter().collect::<Vec<_>>().join(", "),
        role: format!("router  {} AS {}", tor.kind().label(), TOR_AS),
        sessions: sessions.map_err(|e| format!("{e:#}")),
    }
}

/// The `expected` sessions, each up or not, then any other session the speaker
/// reports (named by [`Lab::name_of`]).
fn sessions(
    lab: &Lab,
    peers: Result<Vec<Peer>>,
    expected: Vec<String>,
) -> Result<Vec<Session>, String> {
    let peers = peers.map_err(|e| format!("its status API does not answer: {e:#}"))?;
    let mut sessions: Vec<Session> = expected
        .into_iter()
        .map(|name| Session {
            up: peers
                .iter()
                .any(|p| lab.name_of(&p.address) == name && p.state() == SessionState::Established),
            peer: name,
        })
        .collect();
    for peer in &peers {
        let name = lab.name_of(&peer.address);
        if !sessions.iter().any(|s| s.peer == name) {
            let up = peer.state() == SessionState::Established;
            sessions.push(Session { peer: name, up });
        }
    }
    Ok(sessions)
}

// Routes.

/// Every node's block, and whether (and through whom) the ToR learned it.
fn tor_blocks(lab: &Lab, tor: &TopOfRack, facts: &Facts) -> Vec<Learned> {
    let learned = tor.peer().routes().ok();
    let mut blocks = Vec::new();
    for (owner, owned) in &facts.owners {
        for block in owned {
            let route =
                (learned.as_ref()).and_then(|routes| routes.iter().find(|r| r.prefix == *block));
            blocks.push(Learned {
                block: block.to_string(),
                owner: owner.clone(),
                learned: route.is_some(),
                next_hop: (route.and_then(|r| r.next_hop))
                    .map(|hop| lab.name_of(&hop.to_string()))
                    .unwrap_or_default(),
            });
        }
    }
    blocks
}

/// `name`'s tabby routes in its kernel, each with what it is for, and the routes
/// the datastore implies that it lacks.
fn node_routes(lab: &Lab, name: &str, facts: &Facts) -> Result<NodeRoutes> {
    let expected = lab.cluster.expected_routes(name, &lab.pods, facts);
    let actual = harness::routes::routes(lab.cluster.lab.node(name), "84")?;
    let mut routes: Vec<(String, String)> = (actual.iter())
        .map(|line| {
            let note = match expected.contains(line) {
                true => what_for(line, name, lab, facts),
                false => String::new(),
            };
            (line.clone(), note)
        })
        .collect();
    // Its own block first, then its pods, then the other nodes' blocks.
    routes.sort_by_key(|(line, note)| {
        let rank = if line.starts_with("blackhole") {
            0
        } else if note.starts_with("pod ") {
            1
        } else {
            2
        };
        (rank, note.clone(), line.clone())
    });
    Ok(NodeRoutes {
        node: name.to_owned(),
        routes,
        missing: expected.difference(&actual).cloned().collect(),
    })
}

/// What a route `node` has is for, in words.
fn what_for(line: &str, node: &str, lab: &Lab, facts: &Facts) -> String {
    let mut words = line.split_whitespace();
    let first = words.next().unwrap_or_default();
    if first == "blackhole" {
        return "its own block (unused addresses go nowhere)".to_owned();
    }
    let pod = lab.pods.iter().find(|p| first == format!("{}/32", p.ip));
    if let Some(pod) = pod.filter(|p| p.node == node) {
        return format!("pod {}", pod.name);
    }
    let owner = (facts.owners.iter())
        .find(|(_, blocks)| blocks.iter().any(|b| b.to_string() == first))
        .map_or("another node", |(owner, _)| owner.as_str());
    let how = if line.contains("vxlan.tabby") {
        "over VXLAN"
    } else if line.contains("tunl0") {
        "over IPIP"
    } else {
        "direct"
    };
    format!("{owner}'s block, {how}")
}

// Reachability.

/// `[i][j]`: pod i pinged pod j.
fn ping_matrix(lab: &Lab) -> Vec<Vec<bool>> {
    (lab.pods.iter())
        .map(|from| {
            (lab.pods.iter())
                .map(|to| from.netns.ping(to.ip).is_ok())
                .collect()
        })
        .collect()
}

impl Report {
    /// Every failed check, in words (none: healthy).
    pub fn problems(&self) -> Vec<String> {
        let mut problems: Vec<String> = (self.nodes.iter())
            .chain(&self.reflectors)
            .chain(&self.tor)
            .flat_map(Speaker::down)
            .collect();
        for block in self.tor_blocks.iter().filter(|b| !b.learned) {
            problems.push(format!(
                "the ToR has no route to {} ({}'s block)",
                block.block, block.owner
            ));
        }
        for node in &self.routes {
            let unexpected = node.routes.iter().filter(|(_, note)| note.is_empty());
            let unexpected = unexpected.count();
            if unexpected + node.missing.len() > 0 {
                problems.push(format!(
                    "{}: {} routes missing, {unexpected} not implied by the datastore",
                    node.node,
                    node.missing.len()
                ));
            }
        }
        let (ok, all) = self.pairs();
        if ok < all {
            problems.push(format!("{} of {all} pod pairs cannot ping", all - ok));
        }
        problems
    }

    /// Every check passed.
    pub fn healthy(&self) -> bool {
        self.problems().is_empty()
    }

    /// (pairs that pinged, pairs)
    pub fn pairs(&self) -> (usize, usize) {
        let all = self.reachable.iter().flatten();
        (all.clone().filter(|&&ok| ok).count(), all.count())
    }
}
