//! Every malformation of docs/rfc7606.md sent by a raw client to a running
//! speaker over loopback, and how the session reacts (RFC 4271 6, RFC 7606):
//! treat-as-withdraw removes the route and keeps the session, attribute discard
//! keeps the route and the session, session reset sends the NOTIFICATION named and
//! closes. The client speaks 2-octet AS numbers so the codec tests' bytes apply.

mod common;
mod raw_peer;

use std::net::Ipv4Addr;

use bgp::codec::{Capability, Message, Open};
use bgp::rib::Change;
use bgp::speaker::{self, Notice, PeerConfig, Policy, Request, SpeakerHandle};
use common::{BASE_ATTRIBUTES_2 as BASE, update};
use ipnet::IpNet;
use raw_peer::{PEER_AS, RawPeer, TIMEOUT};
use tokio::net::TcpListener;

/// 10.0.0.0/24, the route every case announces or breaks.
const NLRI: &str = "18 0a0000";

enum Expect {
    /// The route is withdrawn and the session stays up.
    Withdraw,
    /// The route is kept (without the attribute) and the session stays up.
    Keep,
    /// NOTIFICATION code/subcode, then the connection closes.
    Reset(u8, u8),
}

fn prefix() -> IpNet {
    "10.0.0.0/24".parse().unwrap()
}

async fn next_change(handle: &mut SpeakerHandle) -> Change {
    tokio::time::timeout(TIMEOUT, async {
        loop {
            if let Some(Notice::Best(change)) = handle.notices.recv().await {
                return change;
            }
        }
    })
    .await
    .expect("no route change")
}

/// A speaker and a raw eBGP peer without 4-octet AS; the peer's valid route is in.
async fn established() -> (SpeakerHandle, RawPeer) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let mut handle = speaker::start(speaker::SpeakerConfig::new(
        64512,
        Ipv4Addr::new(10, 0, 0, 1),
    ))
    .unwrap();
    let peer = PeerConfig {
        port,
        import: Some(Policy::Accept),
        ..PeerConfig::new("127.0.0.1".parse().unwrap(), Some(PEER_AS))
    };
    handle.requests.send(Request::AddPeer(peer)).unwrap();
    let mut raw = RawPeer::new(listener.accept().await.unwrap().0);
    assert!(matches!(raw.read().await, Some(Message::Open(_))));
    let open = Open::new(
        PEER_AS,
        90,
        Ipv4Addr::new(10, 0, 0, 2),
        vec![Capability::RouteRefresh],
    );
    raw.send(Message::Open(open)).await;
    assert_eq!(raw.read().await, Some(Message::Keepalive));
    raw.send(Message::Keepalive).await;
    raw.send_bytes(&update("", BASE, NLRI)).await;
    assert!(
        matches!(next_change(&mut handle).await, Change::Best { prefix: p, .. } if p == prefix())
    );
    (handle, raw)
}

/// The session still works: a new route from the peer arrives.
async fn still_up(handle: &mut SpeakerHandle, raw: &mut RawPeer) {
    raw.send_bytes(&update("", BASE, "18 0a0100")).await;
    loop {
        match next_change(handle).await {
            Change::Best { prefix, .. } if prefix == "10.1.0.0/24".parse::<IpNet>().unwrap() => {
                return;
            }
            _ => continue,
        }
    }
}

async fn routes(handle: &SpeakerHandle) -> Vec<IpNet> {
    let (reply, routes) = tokio::sync::oneshot::channel();
    handle.requests.send(Request::Routes(reply)).unwrap();
    routes.await.unwrap().into_iter().map(|(p, _)| p).collect()
}

async fn run(bytes: Vec<u8>, expect: Expect) {
    let (mut handle, mut raw) = established().await;
    raw.send_bytes(&bytes).await;
    match expect {
        Expect::Withdraw => {
            assert_eq!(
                next_change(&mut handle).await,
                Change::Withdrawn { prefix: prefix() }
            );
            still_up(&mut handle, &mut raw).await;
        }
        Expect::Keep => {
            still_up(&mut handle, &mut raw).await;
            assert!(routes(&handle).await.contains(&prefix()));
        }
        Expect::Reset(code, subcode) => {
            loop {
                match raw.read().await {
                    Some(Message::Notification(n)) => {
                        assert_eq!((n.code, n.subcode), (code, subcode), "{n:?}");
                        break;
                    }
                    Some(Message::Keepalive | Message::Update(_)) => continue,
                    other => panic!("expected NOTIFICATION {code}/{subcode}, got {other:?}"),
                }
            }
            assert_eq!(raw.read().await, None, "the connection must close");
            assert_eq!(
                next_change(&mut handle).await,
                Change::Withdrawn { prefix: prefix() }
            );
        }
    }
}

fn with(attribute: &str) -> Vec<u8> {
    update("", &format!("{BASE} | {attribute}"), NLRI)
}

fn replacing(good: &str, bad: &str) -> Vec<u8> {
    update("", &BASE.replace(good, bad), NLRI)
}

macro_rules! cases {
    ($($name:ident: $bytes:expr => $expect:expr;)*) => {$(
        #[tokio::test]
        async fn $name() {
            run($bytes, $expect).await;
        }
    )*};
}

cases! {
    origin_of_wrong_length_withdraws_and_keeps_the_session:
        update("", &format!("{} | 40 01 02 0000", BASE.replace("40 01 01 00 |", "")), NLRI) => Expect::Withdraw;
    origin_of_undefined_value_withdraws_and_keeps_the_session:
        replacing("40 01 01 00", "40 01 01 03") => Expect::Withdraw;
    as_path_of_unknown_segment_type_withdraws_and_keeps_the_session:
        replacing("40 02 04 02 01 fde9", "40 02 04 07 01 fde9") => Expect::Withdraw;
    as_path_segment_of_zero_ases_withdraws_and_keeps_the_session:
        replacing("40 02 04 02 01 fde9", "40 02 02 02 00") => Expect::Withdraw;
    as_path_segment_overrunning_the_attribute_withdraws_and_keeps_the_session:
        replacing("40 02 04 02 01 fde9", "40 02 04 02 02 fde9") => Expect::Withdraw;
    next_hop_of_wrong_length_withdraws_and_keeps_the_session:
        replacing("40 03 04 c0000201", "40 03 05 c000020100") => Expect::Withdraw;
    med_of_wrong_length_withdraws_and_keeps_the_session:
        with("80 04 02 0001") => Expect::Withdraw;
    // From an eBGP peer (this client) these three are discarded whatever their
    // shape (RFC 7606 7.5, 7.9, 7.10).
    local_pref_of_wrong_length_from_an_ebgp_peer_is_discarded_and_the_route_kept:
        with("40 05 03 000001") => Expect::Keep;
    atomic_aggregate_with_a_value_is_discarded_and_the_route_kept:
        with("40 06 01 00") => Expect::Keep;
    aggregator_of_wrong_length_is_discarded_and_the_route_kept:
        with("c0 07 05 fde9c00002") => Expect::Keep;
    as4_path_that_is_malformed_is_discarded_and_the_route_kept:
        with("c0 11 03 02 01 00") => Expect::Keep;
    as4_path_with_a_confederation_segment_is_discarded_and_the_route_kept:
        with("c0 11 06 03 01 0000fde9") => Expect::Keep;
    as4_aggregator_of_wrong_length_is_discarded_and_the_route_kept:
        with("c0 07 06 5ba0 c0000201 | c0 12 04 fa56ea00") => Expect::Keep;
    communities_not_a_multiple_of_four_withdraw_and_keep_the_session:
        with("c0 08 03 000001") => Expect::Withdraw;
    empty_communities_withdraw_and_keep_the_session:
        with("c0 08 00") => Expect::Withdraw;
    originator_id_of_wrong_length_from_an_ebgp_peer_is_discarded_and_the_route_kept:
        with("80 09 03 0a0000") => Expect::Keep;
    cluster_list_not_a_multiple_of_four_from_an_ebgp_peer_is_discarded_and_the_route_kept:
        with("80 0a 05 0a00000001") => Expect::Keep;
    an_mp_reach_nlri_with_a_bad_next_hop_length_resets_with_3_9:
        update("", &format!("{BASE} | 80 0e 09 0002 01 03 000000 00 00"), "") => Expect::Reset(3, 9);
    an_mp_attribute_of_an_unnegotiated_family_is_discarded_and_the_route_kept:
        with("80 0f 03 0001 80") => Expect::Keep;
    extended_communities_not_a_multiple_of_eight_withdraw_and_keep_the_session:
        with("c0 10 04 00020001") => Expect::Withdraw;
    large_communities_not_a_multiple_of_twelve_withdraw_and_keep_the_session:
        with("c0 20 08 0000000100000002") => Expect::Withdraw;
    wrong_flags_on_a_known_attribute_withdraw_and_keep_the_session:
        with("40 04 04 00000001") => Expect::Withdraw;
    a_missing_well_known_attribute_withdraws_and_keeps_the_session:
        replacing("40 01 01 00 |", "") => Expect::Withdraw;
    a_missing_next_hop_with_ipv4_nlri_withdraws_and_keeps_the_session:
        replacing("| 40 03 04 c0000201", "") => Expect::Withdraw;
    withdrawals_alone_with_no_attributes_withdraw_and_keep_the_session:
        update(NLRI, "", "") => Expect::Withdraw;
    an_attribute_overrunning_the_attribute_list_withdraws_and_keeps_the_session:
        with("c0 08 08 00000001") => Expect::Withdraw;
    a_truncated_attribute_header_withdraws_and_keeps_the_session:
        with("c0 08") => Expect::Withdraw;
    a_repeated_attribute_keeps_the_first_copy_and_the_route:
        with("80 04 04 00000001 | 80 04 04 00000002") => Expect::Keep;
    a_repeated_mp_attribute_resets_with_3_1:
        update("", &format!("{BASE} | 80 0f 03 0002 01 | 80 0f 03 0002 01"), "") => Expect::Reset(3, 1);
    an_ipv4_prefix_longer_than_32_bits_resets_with_3_10:
        update("", BASE, "21 0a000000 00") => Expect::Reset(3, 10);
    a_truncated_withdrawn_prefix_resets_with_3_10:
        update("18 0a00", "", "") => Expect::Reset(3, 10);
    withdrawn_routes_length_overrunning_the_message_resets_with_3_1:
        { let mut b = update("", "", ""); b[20] = 9; b } => Expect::Reset(3, 1);
    total_attribute_length_overrunning_the_message_resets_with_3_1:
        { let mut b = update("", BASE, ""); b[22] += 1; b } => Expect::Reset(3, 1);
    an_unrecognized_well_known_attribute_resets_with_3_2:
        with("40 63 01 00") => Expect::Reset(3, 2);
    unknown_optional_attributes_are_kept_or_dropped_and_the_route_kept:
        with("c0 63 01 07 | 80 64 01 08") => Expect::Keep;
    a_bad_marker_resets_with_1_1:
        { let mut b = update("", BASE, NLRI); b[0] = 0; b } => Expect::Reset(1, 1);
    a_message_length_below_the_minimum_resets_with_1_2:
        { let mut b = update("", BASE, NLRI); b[16..18].copy_from_slice(&18u16.to_be_bytes()); b } => Expect::Reset(1, 2);
    an_unknown_message_type_resets_with_1_3:
        { let mut b = update("", BASE, NLRI); b[18] = 9; b } => Expect::Reset(1, 3);
}
