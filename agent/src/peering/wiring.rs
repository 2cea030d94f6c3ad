//! What the speaker must be told to go from what it was last told to a new plan
//! and export set: only the differences, so unaffected sessions never restart.
//! A changed peer is updated, not re-added: the speaker applies policy changes
//! (filters, next-hop mode, allowas-in) to the running session, re-sending and
//! asking for routes again, and restarts the session only when what was
//! negotiated or the connection changes (AS, password, TTL, ...). A change to the
//! speaker itself that it cannot take in place (`SpeakerConfig::needs_restart`:
//! AS, router id, cluster id, port, restart time) restarts it with every session;
//! that is the rare case.

use std::collections::BTreeMap;
use std::net::IpAddr;

use api::resources::Community;
use bgp::speaker::{ListenRange, PeerConfig, SpeakerConfig};
use ipnet::IpNet;

use super::plan::DesiredBgp;

/// One instruction for the speaker.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// Stop the speaker and start a new one with this configuration (no sessions,
    /// nothing originated: the steps after it add them).
    Start(SpeakerConfig),
    AddPeer(PeerConfig),
    /// A peer the speaker has, changed.
    UpdatePeer(PeerConfig),
    RemovePeer(IpAddr),
    SetListenRanges(Vec<ListenRange>),
    /// Originate (or re-originate with new communities).
    Originate {
        prefix: IpNet,
        communities: Vec<Community>,
    },
    Withdraw(IpNet),
}

/// What the running speaker was told.
#[derive(Debug, Clone, Default)]
pub struct Wiring {
    speaker: Option<SpeakerConfig>,
    peers: BTreeMap<IpAddr, PeerConfig>,
    originated: BTreeMap<IpNet, Vec<Community>>,
}

impl Wiring {
    /// The steps to reach `plan` originating `export` (prefixes with their
    /// communities); records them as done.
    pub fn steps(
        &mut self,
        plan: &DesiredBgp,
        export: &BTreeMap<IpNet, Vec<Community>>,
    ) -> Vec<Step> {
        let mut steps = Vec::new();
        match &self.speaker {
            Some(running) if running.needs_restart(&plan.speaker).is_none() => {
                if running.listen_ranges != plan.speaker.listen_ranges {
                    steps.push(Step::SetListenRanges(plan.speaker.listen_ranges.clone()));
                }
            }
            _ => {
                steps.push(Step::Start(plan.speaker.clone()));
                self.peers.clear();
                self.originated.clear();
            }
        }
        self.speaker = Some(plan.speaker.clone());
        let gone: Vec<IpAddr> = self
            .peers
            .keys()
            .filter(|address| !plan.peers.contains_key(address))
            .copied()
            .collect();
        for address in gone {
            self.peers.remove(&address);
            steps.push(Step::RemovePeer(address));
        }
        for (address, peering) in &plan.peers {
            let config = &peering.config;
            match self.peers.insert(*address, config.clone()) {
                None => steps.push(Step::AddPeer(config.clone())),
                Some(old) if old != *config => steps.push(Step::UpdatePeer(config.clone())),
                Some(_) => {}
            }
        }
        for prefix in self.originated.keys() {
            if !export.contains_key(prefix) {
                steps.push(Step::Withdraw(*prefix));
            }
        }
        for (prefix, communities) in export {
            if self.originated.get(prefix) != Some(communities) {
                steps.push(Step::Originate {
                    prefix: *prefix,
                    communities: communities.clone(),
                });
            }
        }
        self.originated.clone_from(export);
        steps
    }

    /// Forgets the speaker (it stopped): the next steps start a new one.
    pub fn reset(&mut self) {
        *self = Self::default();
    }
}

#[cfg(test)]
mod tests {
    use std::net::Ipv4Addr;

    use super::*;
    use crate::desired::testing::{ip, net};
    use crate::peering::plan::{PeerKind, Peering};

    fn plan(peers: &[&str]) -> DesiredBgp {
        DesiredBgp {
            speaker: SpeakerConfig::new(64512, Ipv4Addr::new(192, 0, 2, 10)),
            peers: peers
                .iter()
                .map(|address| {
                    let config = PeerConfig::new(ip(address), Some(64512));
                    let peering = Peering {
                        kind: PeerKind::Mesh,
                        source: (*address).into(),
                        role: crate::desired::PeerRole::Node,
                        config,
                        bfd: None,
                    };
                    (ip(address), peering)
                })
                .collect(),
            problems: Vec::new(),
        }
    }

    fn nets(prefixes: &[&str]) -> BTreeMap<IpNet, Vec<Community>> {
        prefixes.iter().map(|p| (net(p), Vec::new())).collect()
    }

    fn originate(prefix: &str) -> Step {
        Step::Originate {
            prefix: net(prefix),
            communities: Vec::new(),
        }
    }

    #[test]
    fn the_first_plan_starts_the_speaker_with_every_peer_and_prefix() {
        let mut wiring = Wiring::default();
        let plan = plan(&["192.0.2.11"]);
        let steps = wiring.steps(&plan, &nets(&["10.0.0.0/26"]));
        assert_eq!(
            steps,
            [
                Step::Start(plan.speaker.clone()),
                Step::AddPeer(PeerConfig::new(ip("192.0.2.11"), Some(64512))),
                originate("10.0.0.0/26"),
            ]
        );
        assert_eq!(wiring.steps(&plan, &nets(&["10.0.0.0/26"])), []);
    }

    #[test]
    fn a_new_peer_and_a_new_block_touch_nothing_else() {
        let mut wiring = Wiring::default();
        wiring.steps(&plan(&["192.0.2.11"]), &nets(&["10.0.0.0/26"]));
        let steps = wiring.steps(
            &plan(&["192.0.2.11", "192.0.2.12"]),
            &nets(&["10.0.0.0/26", "10.0.0.64/26"]),
        );
        assert_eq!(
            steps,
            [
                Step::AddPeer(PeerConfig::new(ip("192.0.2.12"), Some(64512))),
                originate("10.0.0.64/26"),
            ]
        );
    }

    #[test]
    fn removed_peers_and_prefixes_are_removed_and_withdrawn() {
        let mut wiring = Wiring::default();
        wiring.steps(
            &plan(&["192.0.2.11", "192.0.2.12"]),
            &nets(&["10.0.0.0/26", "10.0.0.64/26"]),
        );
        let steps = wiring.steps(&plan(&["192.0.2.12"]), &nets(&["10.0.0.64/26"]));
        assert_eq!(
            steps,
            [
                Step::RemovePeer(ip("192.0.2.11")),
                Step::Withdraw(net("10.0.0.0/26")),
            ]
        );
    }

    #[test]
    fn a_changed_peer_is_updated_alone() {
        let mut wiring = Wiring::default();
        wiring.steps(&plan(&["192.0.2.11", "192.0.2.12"]), &nets(&[]));
        let mut changed = plan(&["192.0.2.11", "192.0.2.12"]);
        let peer = &mut changed.peers.get_mut(&ip("192.0.2.12")).unwrap().config;
        peer.allowas_in = 1;
        let expected = peer.clone();
        assert_eq!(
            wiring.steps(&changed, &nets(&[])),
            [Step::UpdatePeer(expected)]
        );
    }

    #[test]
    fn new_communities_re_originate_the_prefix() {
        let mut wiring = Wiring::default();
        let plan = plan(&[]);
        wiring.steps(&plan, &nets(&["10.96.0.0/12"]));
        let tagged: BTreeMap<IpNet, Vec<Community>> =
            [(net("10.96.0.0/12"), vec!["65000:100".parse().unwrap()])].into();
        assert_eq!(
            wiring.steps(&plan, &tagged),
            [Step::Originate {
                prefix: net("10.96.0.0/12"),
                communities: vec!["65000:100".parse().unwrap()],
            }]
        );
    }

    #[test]
    fn a_new_as_restarts_the_speaker_but_the_restarting_flag_does_not() {
        let mut wiring = Wiring::default();
        let mut first = plan(&["192.0.2.11"]);
        first.speaker.graceful_restart = Some(bgp::session::GracefulRestartConfig {
            restart_time: 120,
            restarting: true,
            forwarding_preserved: true,
        });
        wiring.steps(&first, &nets(&["10.0.0.0/26"]));
        let mut settled = first.clone();
        settled
            .speaker
            .graceful_restart
            .as_mut()
            .unwrap()
            .restarting = false;
        assert_eq!(wiring.steps(&settled, &nets(&["10.0.0.0/26"])), []);
        let mut other_as = settled.clone();
        other_as.speaker.local_as = 65000;
        let steps = wiring.steps(&other_as, &nets(&["10.0.0.0/26"]));
        assert_eq!(steps.len(), 3, "{steps:?}");
        assert!(matches!(steps[0], Step::Start(_)));
    }
}
