//! What a reload changes: the difference between the running [`Desired`] and the
//! new one, so that sessions nothing changed for are left alone.

use std::net::IpAddr;

use bgp::speaker::{ListenRange, PeerConfig};

use crate::desired::Desired;

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Changes {
    /// A speaker-wide setting changed that the running speaker cannot take in
    /// place (see `SpeakerConfig::needs_restart`): the speaker restarts and every
    /// session with it. Names what changed.
    pub restart: Option<&'static str>,
    pub remove: Vec<IpAddr>,
    /// New peers, and peers whose settings changed (sent as `UpdatePeer`: the
    /// session resets only when its OPEN or connection would differ).
    pub add: Vec<PeerConfig>,
    pub listen_ranges: Option<Vec<ListenRange>>,
}

impl Changes {
    pub fn is_empty(&self) -> bool {
        *self == Changes::default()
    }
}

pub fn changes(old: &Desired, new: &Desired) -> Changes {
    if let Some(what) = old.speaker.needs_restart(&new.speaker) {
        return Changes {
            restart: Some(what),
            ..Changes::default()
        };
    }
    let remove = old
        .peers
        .keys()
        .filter(|a| !new.peers.contains_key(a))
        .copied()
        .collect();
    let add = new
        .peers
        .iter()
        .filter(|(a, p)| old.peers.get(a).is_none_or(|o| o.config != p.config))
        .map(|(_, p)| p.config.clone())
        .collect();
    let listen_ranges = (old.speaker.listen_ranges != new.speaker.listen_ranges)
        .then(|| new.speaker.listen_ranges.clone());
    Changes {
        restart: None,
        remove,
        add,
        listen_ranges,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::parse;
    use crate::discovery::Discovered;

    fn desired(yaml: &str) -> Desired {
        Desired::new(&parse(yaml, false).unwrap(), &Discovered::default()).unwrap()
    }

    const BASE: &str = "asNumber: 64512\nrouterId: 10.0.0.1\npeers:\n\
        - {address: 10.0.0.2, asNumber: 64512}\n\
        - {address: 10.0.0.3, asNumber: 64512}\n";

    #[test]
    fn an_unchanged_file_changes_nothing() {
        assert!(changes(&desired(BASE), &desired(BASE)).is_empty());
    }

    #[test]
    fn only_added_removed_and_changed_peers_are_touched() {
        let new = desired(
            "asNumber: 64512\nrouterId: 10.0.0.1\npeers:\n\
             - {address: 10.0.0.2, asNumber: 64512}\n\
             - {address: 10.0.0.3, asNumber: 64512, holdTime: 30}\n\
             - {address: 10.0.0.4, asNumber: 64512}\n",
        );
        let changes = changes(&desired(BASE), &new);
        assert_eq!(changes.restart, None);
        assert!(changes.remove.is_empty());
        let added: Vec<String> = changes.add.iter().map(|p| p.address.to_string()).collect();
        assert_eq!(added, ["10.0.0.3", "10.0.0.4"]);
        let fewer = desired(
            "asNumber: 64512\nrouterId: 10.0.0.1\npeers:\n- {address: 10.0.0.3, asNumber: 64512}\n",
        );
        let changes = super::changes(&desired(BASE), &fewer);
        assert_eq!(changes.remove, ["10.0.0.2".parse::<IpAddr>().unwrap()]);
        assert!(changes.add.is_empty());
    }

    #[test]
    fn a_new_router_id_restarts_the_speaker_and_ranges_change_in_place() {
        let changes = changes(
            &desired(BASE),
            &desired(&BASE.replace("10.0.0.1", "10.0.0.9")),
        );
        assert_eq!(changes.restart, Some("router_id"));
        let ranged = format!("{BASE}listenRanges:\n- {{prefix: 10.1.0.0/16, maxSessions: 10}}\n");
        let changes = super::changes(&desired(BASE), &desired(&ranged));
        assert_eq!(changes.restart, None);
        assert_eq!(changes.listen_ranges.map(|r| r.len()), Some(1));
        assert!(changes.add.is_empty() && changes.remove.is_empty());
    }

    #[test]
    fn a_changed_filter_reaches_only_the_peers_that_name_it() {
        let filters = "filters:\n  f: {terms: [{match: {as_path_contains: [65000]}, action: reject}], default: accept}\n";
        let new = desired(&format!(
            "{filters}asNumber: 64512\nrouterId: 10.0.0.1\npeers:\n\
             - {{address: 10.0.0.2, asNumber: 64512}}\n\
             - {{address: 10.0.0.3, asNumber: 64512, exportFilter: f}}\n"
        ));
        let changes = changes(&desired(BASE), &new);
        assert_eq!(changes.restart, None);
        let [changed] = changes.add.as_slice() else {
            panic!("one peer changes: {:?}", changes.add);
        };
        assert_eq!(changed.address.to_string(), "10.0.0.3");
        let filter = changed.export_filter.as_ref().expect("the named filter");
        assert_eq!(filter.terms[0].matches.as_path_contains, [65000]);
        assert_eq!(changed.import_filter, None);
    }
}
