//! Messages captured from BIRD 2, FRR and GoBGP (see fixtures/README.md): each
//! decodes without error under the context negotiated by the captured OPENs, and
//! re-encodes to bytes that decode to the same value.

mod common;

use std::collections::{BTreeSet, HashMap};
use std::net::Ipv4Addr;

use bgp::codec::{
    Capability, Community, LargeCommunity, Message, NextHop, Nlri, Open, RouteRefreshKind,
    SegmentKind, SessionContext, Update,
};
use common::{decode, encode, hex, to_hex};

/// One captured message: who sent it, its bytes, and the context its receiver had.
struct Captured {
    sender: String,
    bytes: Vec<u8>,
    ctx: SessionContext,
}

fn load(name: &str) -> Vec<Captured> {
    let path = format!("{}/tests/fixtures/{name}", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    let mut opens: HashMap<String, Open> = HashMap::new();
    let mut out = Vec::new();
    for line in text.lines() {
        if line == "# connection" {
            opens.clear();
            continue;
        }
        if line.starts_with('#') || line.is_empty() {
            continue;
        }
        let (sender, bytes) = line.split_once(' ').expect("sender and hex");
        let bytes = hex(bytes);
        // OPEN decoding does not depend on the context; the others need it.
        if bytes[18] == 1
            && let Message::Open(open) = decode(&bytes, &SessionContext::default())
        {
            opens.insert(sender.to_owned(), open);
        }
        let ctx = match (
            opens.get(sender),
            opens.iter().find(|(name, _)| *name != sender),
        ) {
            (Some(remote), Some((_, local))) => SessionContext::negotiate(local, remote),
            _ => SessionContext::default(),
        };
        out.push(Captured {
            sender: sender.to_owned(),
            bytes,
            ctx,
        });
    }
    out
}

const FILES: [&str; 3] = ["bird-frr-2octet.hex", "bird-frr-ipv6.hex", "gobgp-frr.hex"];

fn updates(file: &str, sender: &str) -> Vec<Update> {
    load(file)
        .into_iter()
        .filter(|c| c.sender == sender)
        .filter_map(|c| match decode(&c.bytes, &c.ctx) {
            Message::Update(update) => Some(update),
            _ => None,
        })
        .collect()
}

#[test]
fn every_captured_message_decodes_cleanly_and_survives_re_encoding() {
    let mut exact = 0;
    for file in FILES {
        for c in load(file) {
            let message = decode(&c.bytes, &c.ctx);
            let again = encode(&message, &c.ctx);
            assert_eq!(
                decode(&again, &c.ctx),
                message,
                "{file}: {}",
                to_hex(&c.bytes)
            );
            match &message {
                Message::Update(update) if update.end_of_rib_family().is_none() => {
                    assert!(
                        update.malformed.is_empty(),
                        "{file}: {:?}",
                        update.malformed
                    );
                    exact += usize::from(again == c.bytes);
                }
                // Everything but route-carrying UPDATEs comes back byte for byte.
                _ => assert_eq!(to_hex(&again), to_hex(&c.bytes), "{file}: {message:?}"),
            }
        }
    }
    // Many UPDATEs re-encode exactly; the rest
    // differ in layout only (next test).
    assert!(exact >= 10, "{exact} UPDATEs re-encoded byte for byte");
}

#[test]
fn captured_updates_that_differ_on_re_encoding_differ_only_in_layout() {
    for file in FILES {
        for c in load(file) {
            let again = encode(&decode(&c.bytes, &c.ctx), &c.ctx);
            if again == c.bytes {
                continue;
            }
            // FRR always uses 2-byte lengths for AS_PATH, AS4_PATH and the MP
            // attributes and orders some attributes differently; BIRD sets Partial
            // on its own optional transitive attributes over 2-octet sessions. So:
            // the same withdrawn routes, lengths within one byte per attribute.
            assert_eq!(c.bytes[18..21], again[18..21], "{file}");
            let diff = c.bytes.len().abs_diff(again.len());
            assert!(
                diff <= 4,
                "{file}: {} vs {}",
                to_hex(&c.bytes),
                to_hex(&again)
            );
        }
    }
}

#[test]
fn the_captures_cover_every_attribute_and_capability_the_codec_knows() {
    let mut seen = BTreeSet::new();
    for file in FILES {
        for c in load(file) {
            match decode(&c.bytes, &c.ctx) {
                Message::Open(open) => {
                    for capability in &open.capabilities {
                        let name = format!("{capability:?}");
                        let name = name.split(['(', ' ']).next().unwrap().to_owned();
                        seen.insert(format!("capability {name}"));
                    }
                }
                Message::Update(u) => {
                    let a = &u.attributes;
                    let mut add = |present: bool, name: &str| {
                        if present {
                            seen.insert(format!("attribute {name}"));
                        }
                    };
                    add(a.origin.is_some(), "ORIGIN");
                    add(a.as_path.is_some(), "AS_PATH");
                    add(u.next_hop.is_some(), "NEXT_HOP");
                    add(a.med.is_some(), "MED");
                    add(a.local_pref.is_some(), "LOCAL_PREF");
                    add(a.atomic_aggregate, "ATOMIC_AGGREGATE");
                    add(a.aggregator.is_some(), "AGGREGATOR");
                    add(!a.communities.is_empty(), "COMMUNITIES");
                    add(a.originator_id.is_some(), "ORIGINATOR_ID");
                    add(!a.cluster_list.is_empty(), "CLUSTER_LIST");
                    add(u.mp_reach.is_some(), "MP_REACH_NLRI");
                    add(u.mp_unreach.is_some(), "MP_UNREACH_NLRI");
                    add(!a.extended_communities.is_empty(), "EXTENDED_COMMUNITIES");
                    add(!a.large_communities.is_empty(), "LARGE_COMMUNITY");
                    let set = a.as_path.iter().flat_map(|p| &p.segments);
                    add(set.clone().any(|s| s.kind == SegmentKind::Set), "AS_SET");
                    add(u.nlri.iter().any(|n| n.path_id.is_some()), "ADD-PATH ids");
                }
                Message::Notification(n) => {
                    if n.shutdown_communication().is_some() {
                        seen.insert("shutdown communication".into());
                    }
                }
                Message::RouteRefresh(r) => {
                    seen.insert(format!("route refresh {:?}", r.kind));
                }
                Message::Keepalive => {}
            }
        }
    }
    let expected = [
        "attribute AGGREGATOR",
        "attribute AS_PATH",
        "attribute AS_SET",
        "attribute ADD-PATH ids",
        "attribute ATOMIC_AGGREGATE",
        "attribute CLUSTER_LIST",
        "attribute COMMUNITIES",
        "attribute EXTENDED_COMMUNITIES",
        "attribute LARGE_COMMUNITY",
        "attribute LOCAL_PREF",
        "attribute MED",
        "attribute MP_REACH_NLRI",
        "attribute MP_UNREACH_NLRI",
        "attribute NEXT_HOP",
        "attribute ORIGIN",
        "attribute ORIGINATOR_ID",
        "capability AddPath",
        "capability EnhancedRouteRefresh",
        "capability ExtendedMessage",
        "capability ExtendedNextHop",
        "capability FourOctetAs",
        "capability GracefulRestart",
        "capability Hostname",
        "capability Multiprotocol",
        "capability RouteRefresh",
        "route refresh Begin",
        "route refresh End",
        "route refresh Request",
        "shutdown communication",
    ];
    let missing: Vec<_> = expected.iter().filter(|e| !seen.contains(**e)).collect();
    assert!(missing.is_empty(), "missing {missing:?}; seen {seen:?}");
}

#[test]
fn frr_to_a_2_octet_bird_sends_as_trans_with_as4_path_and_as4_aggregator() {
    let updates = updates("bird-frr-2octet.hex", "frr");
    let aggregate = updates
        .iter()
        .find(|u| u.attributes.atomic_aggregate)
        .expect("FRR's aggregate");
    let aggregator = aggregate.attributes.aggregator.expect("AGGREGATOR");
    // The wire carried AS_TRANS; AS4_AGGREGATOR restores the real AS.
    assert_eq!(aggregator.asn, 4_200_000_000);
    assert_eq!(aggregator.address, Ipv4Addr::new(10, 99, 1, 2));
    let path = aggregate.attributes.as_path.as_ref().unwrap();
    assert_eq!(
        path.segments[0].asns,
        vec![4_200_000_000, 4_200_000_001, 65010]
    );
}

#[test]
fn bird_with_as4_off_sends_its_4_octet_prepend_through_as4_path() {
    let updates = updates("bird-frr-2octet.hex", "bird");
    let update = updates.iter().find(|u| !u.nlri.is_empty()).unwrap();
    let path = update.attributes.as_path.as_ref().unwrap();
    assert_eq!(path.segments[0].asns, vec![65001, 65011, 4_200_000_099]);
    assert_eq!(update.attributes.med, Some(50));
    assert_eq!(
        update.attributes.communities,
        vec![Community::new(65000, 100)]
    );
}

#[test]
fn frr_reflects_gobgp_routes_to_bird_with_originator_and_cluster_list_and_path_ids() {
    let updates = updates("bird-frr-ipv6.hex", "frr");
    let reflected = updates
        .iter()
        .find(|u| u.attributes.originator_id == Some(Ipv4Addr::new(10, 99, 2, 1)))
        .expect("a route from GoBGP");
    assert_eq!(
        reflected.attributes.cluster_list,
        vec![Ipv4Addr::new(10, 99, 1, 2)]
    );
    let reach = reflected
        .mp_reach
        .as_ref()
        .expect("IPv4 over an IPv6 next hop");
    assert!(matches!(reach.next_hop, NextHop::V6 { .. }));
    assert!(reach.nlri.iter().all(|n: &Nlri| n.path_id.is_some()));
}

#[test]
fn gobgp_sends_large_communities_and_an_as_set() {
    let updates = updates("gobgp-frr.hex", "gobgp");
    let large = updates
        .iter()
        .find(|u| !u.attributes.large_communities.is_empty())
        .expect("large communities");
    assert_eq!(
        large.attributes.large_communities,
        vec![LargeCommunity {
            global: 4_200_000_000,
            local1: 5,
            local2: 6
        }]
    );
    assert!(updates.iter().any(|u| {
        u.attributes.as_path.as_ref().is_some_and(|p| {
            p.segments
                .iter()
                .any(|s| s.kind == SegmentKind::Set && s.asns.contains(&4_200_000_003))
        })
    }));
}

#[test]
fn frr_announces_its_hostname_and_both_sides_send_shutdown_communications() {
    let frr_open = load("gobgp-frr.hex")
        .into_iter()
        .find_map(|c| match decode(&c.bytes, &c.ctx) {
            Message::Open(open) if c.sender == "frr" => Some(open),
            _ => None,
        })
        .unwrap();
    assert!(frr_open.capabilities.iter().any(|c| matches!(
        c,
        Capability::Hostname { hostname, .. } if hostname == "tabby-frr"
    )));
    let texts: Vec<String> = FILES
        .iter()
        .flat_map(|f| load(f))
        .filter_map(|c| match decode(&c.bytes, &c.ctx) {
            Message::Notification(n) => n.shutdown_communication().map(str::to_owned),
            _ => None,
        })
        .collect();
    assert!(
        texts.contains(&"tabby fixture: BIRD shutdown".to_owned()),
        "{texts:?}"
    );
    assert!(
        texts.contains(&"tabby fixture: FRR shutdown".to_owned()),
        "{texts:?}"
    );
}

#[test]
fn enhanced_route_refresh_is_bracketed_by_begin_and_end() {
    let kinds: Vec<RouteRefreshKind> = load("bird-frr-ipv6.hex")
        .into_iter()
        .filter_map(|c| match decode(&c.bytes, &c.ctx) {
            Message::RouteRefresh(r) => Some(r.kind),
            _ => None,
        })
        .collect();
    assert_eq!(
        kinds,
        vec![
            RouteRefreshKind::Request,
            RouteRefreshKind::Begin,
            RouteRefreshKind::End
        ]
    );
}
