//! What the lab did, read back from the running parts (the agents' and
//! reflectors' status APIs, the ToR's CLI, the nodes' kernels, pings between
//! pods) and checked against what the datastore implies (shown by `show`).

use std::collections::BTreeSet;
use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Result;
use proto::bgp::{Peer, SessionState};

use super::{Lab, Mode, Tor};

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

pub(super) fn observe(lab: &Lab, ping: bool) -> Result<Report> {
    let facts = lab.cluster.facts()?;
    let subnet = |name: &str| lab.cluster.lab.node(name).subnet().to_owned();
    let sessions =
        |peers: Result<Vec<Peer>>, expected: Vec<String>| -> Result<Vec<Session>, String> {
            let peers = peers.map_err(|e| format!("its status API does not answer: {e:#}"))?;
            let mut sessions: Vec<Session> = expected
                .into_iter()
                .map(|name| Session {
                    up: peers.iter().any(|p| {
                        lab.name_of(&p.address) == name && p.state() == SessionState::Established
                    }),
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
        };
    let mut nodes = Vec::new();
    let mut routes = Vec::new();
    for name in &lab.nodes {
        let node = lab.cluster.lab.node(name);
        nodes.push(Speaker {
            name: name.clone(),
            address: node.address().to_string(),
            role: format!("subnet {}  agent", subnet(name)),
            sessions: sessions(
                harness::e2e::list_peers(&lab.cluster.socket(name)),
                lab.expected_peers(name),
            ),
        });
        let expected = lab.cluster.expected_routes(name, &lab.pods, &facts);
        let actual = harness::routes::routes(node, "84")?;
        let mut lines: Vec<(String, String)> = (actual.iter())
            .map(|line| {
                let note = match expected.contains(line) {
                    true => what_for(line, name, lab, &facts),
                    false => String::new(),
                };
                (line.clone(), note)
            })
            .collect();
        // Its own block first, then its pods, then the other nodes' blocks.
        lines.sort_by_key(|(line, note)| {
            let rank = if line.starts_with("blackhole") {
                0
            } else if note.starts_with("pod ") {
                1
            } else {
                2
            };
            (rank, note.clone(), line.clone())
        });
        routes.push(NodeRoutes {
            node: name.clone(),
            routes: lines,
            missing: expected.difference(&actual).cloned().collect(),
        });
    }
    let reflectors = (lab.reflectors.iter())
        .map(|rr| {
            let others = lab.reflectors.iter().filter(|o| *o != rr);
            let expected = lab.nodes.iter().chain(others).cloned().collect();
            Speaker {
                name: rr.clone(),
                address: lab.cluster.lab.node(rr).address().to_string(),
                role: format!("subnet {}  tabby-reflector", subnet(rr)),
                sessions: sessions(lab.cluster.reflector_peers(rr), expected),
            }
        })
        .collect();
    let mut tor_blocks = Vec::new();
    let tor = match &lab.tor {
        None => None,
        Some(tor) => {
            let addresses: Vec<IpAddr> = (lab.nodes.iter())
                .map(|n| lab.cluster.lab.node(n).address())
                .collect();
            let at: BTreeSet<String> = (lab.names.iter())
                .filter(|(_, n)| *n == super::TOR_NAME)
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
            let learned = tor.peer().routes().map_err(|e| format!("{e:#}"));
            for (owner, blocks) in &facts.owners {
                for block in blocks {
                    let route = (learned.as_ref().ok())
                        .and_then(|routes| routes.iter().find(|r| r.prefix == *block));
                    tor_blocks.push(Learned {
                        block: block.to_string(),
                        owner: owner.clone(),
                        learned: route.is_some(),
                        next_hop: (route.and_then(|r| r.next_hop))
                            .map(|hop| lab.name_of(&hop.to_string()))
                            .unwrap_or_default(),
                    });
                }
            }
            Some(Speaker {
                name: super::TOR_NAME.to_owned(),
                address: at.into_iter().collect::<Vec<_>>().join(", "),
                role: format!("router  {} AS {}", tor.kind().label(), super::TOR_AS),
                sessions: sessions.map_err(|e| format!("{e:#}")),
            })
        }
    };
    let reachable = match ping {
        true => (lab.pods.iter())
            .map(|from| {
                (lab.pods.iter())
                    .map(|to| from.netns.ping(to.ip).is_ok())
                    .collect()
            })
            .collect(),
        false => Vec::new(),
    };
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
        nodes,
        reflectors,
        tor,
        tor_blocks,
        routes,
        pods: (lab.pods.iter())
            .map(|p| (p.name.clone(), p.node.clone(), p.ip.to_string()))
            .collect(),
        reachable,
    })
}

/// What a route `node` has is for, in words.
fn what_for(line: &str, node: &str, lab: &Lab, facts: &harness::e2e::Facts) -> String {
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
