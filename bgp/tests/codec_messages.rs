//! OPEN, capabilities, NOTIFICATION, KEEPALIVE, ROUTE-REFRESH and framing, as bytes
//! hand-built from the RFCs and values, both ways.

mod common;

use std::net::Ipv4Addr;

use bgp::codec::{
    AddPathMode, Capability, DecodeError, ExtendedNextHop, Family, GracefulRestart, Message,
    MessageKind, Notification, Open, Outcome, ParameterLayout, Reason, RouteRefresh,
    RouteRefreshKind, SessionContext, decode_message, frame,
};
use common::{both_ways, decode, encode, hex, message};

fn plain() -> SessionContext {
    SessionContext::default()
}

fn reset(bytes: &[u8], ctx: &SessionContext) -> DecodeError {
    let error = decode_message(bytes, ctx).expect_err("malformed");
    assert_eq!(error.outcome, Outcome::SessionReset, "{error}");
    error
}

#[test]
fn keepalive_is_a_bare_header() {
    both_ways(&message(4, &[]), &Message::Keepalive, &plain());
}

#[test]
fn framing_asks_for_more_bytes_until_the_message_is_whole() {
    let bytes = message(4, &[]);
    for cut in 0..bytes.len() {
        assert_eq!(frame(&bytes[..cut], &plain()), Ok(None), "cut at {cut}");
        assert_eq!(decode_message(&bytes[..cut], &plain()), Ok(None));
    }
    let mut two = bytes.clone();
    two.extend_from_slice(&bytes);
    let frame = frame(&two, &plain()).unwrap().unwrap();
    assert_eq!((frame.kind, frame.len), (MessageKind::Keepalive, 19));
}

#[test]
fn a_bad_marker_is_reported_before_the_header_is_complete() {
    let error = reset(&[0xff, 0xff, 0x00], &plain());
    assert_eq!(error.reason, Reason::BadMarker);
    assert_eq!(
        (error.notification.code, error.notification.subcode),
        (1, 1)
    );
}

#[test]
fn a_length_below_the_minimum_for_the_type_is_bad_message_length() {
    let mut bytes = message(2, &[0, 0]); // UPDATE of 21 bytes, minimum 23
    bytes.extend_from_slice(&[0, 0]);
    let error = reset(&bytes, &plain());
    assert_eq!(
        (error.notification.code, error.notification.subcode),
        (1, 2)
    );
    assert_eq!(error.notification.data, vec![0, 21]);
    assert_eq!(error.offset, 16);
}

#[test]
fn a_keepalive_with_a_body_is_bad_message_length() {
    let error = reset(&message(4, &[0]), &plain());
    assert_eq!(error.reason, Reason::BadMessageLength(20));
}

#[test]
fn messages_over_4096_bytes_need_the_extended_message_capability() {
    let bytes = message(3, &vec![0u8; 5000]);
    let error = reset(&bytes, &plain());
    assert_eq!(error.reason, Reason::BadMessageLength(5019));
    let extended = SessionContext {
        extended_message: true,
        ..plain()
    };
    assert!(matches!(
        decode(&bytes, &extended),
        Message::Notification(_)
    ));
}

#[test]
fn an_open_never_exceeds_4096_bytes_even_with_extended_messages() {
    let mut bytes = message(1, &vec![0u8; 4100]);
    bytes[0..16].fill(0xff);
    let extended = SessionContext::modern();
    assert_eq!(
        reset(&bytes, &extended).reason,
        Reason::BadMessageLength(4119)
    );
}

#[test]
fn an_unknown_message_type_is_bad_message_type() {
    let error = reset(&message(9, &[]), &plain());
    assert_eq!(
        (error.notification.code, error.notification.subcode),
        (1, 3)
    );
    assert_eq!(error.notification.data, vec![9]);
}

fn open_body(capabilities: &str) -> Vec<u8> {
    // version 4, AS 65001, hold 90, id 192.0.2.1
    let mut body = hex("04 fde9 005a c0000201");
    let params = hex(capabilities);
    body.push(params.len() as u8);
    body.extend_from_slice(&params);
    body
}

#[test]
fn open_with_every_known_capability_in_one_parameter() {
    let capabilities = "02 43 \
        01 04 0001 00 01 | 01 04 0002 00 01 | 02 00 | 46 00 | 06 00 \
        41 04 fa56ea00 \
        45 08 0001 01 03 0002 01 01 \
        05 06 0001 0001 0002 \
        40 0a 8078 0001 01 80 0002 01 00 \
        49 0b 05 6e6f646531 04 74657374";
    let bytes = open_body(capabilities);
    let open = Open {
        my_as: 65001,
        hold_time: 90,
        bgp_id: Ipv4Addr::new(192, 0, 2, 1),
        capabilities: vec![
            Capability::Multiprotocol(Family::IPV4_UNICAST),
            Capability::Multiprotocol(Family::IPV6_UNICAST),
            Capability::RouteRefresh,
            Capability::EnhancedRouteRefresh,
            Capability::ExtendedMessage,
            Capability::FourOctetAs(4_200_000_000),
            Capability::AddPath(vec![
                (Family::IPV4_UNICAST, AddPathMode::Both),
                (Family::IPV6_UNICAST, AddPathMode::Receive),
            ]),
            Capability::ExtendedNextHop(vec![ExtendedNextHop {
                nlri: Family::IPV4_UNICAST,
                next_hop_afi: 2,
            }]),
            Capability::GracefulRestart(GracefulRestart {
                restarting: true,
                notification: false,
                restart_time: 120,
                families: vec![(Family::IPV4_UNICAST, true), (Family::IPV6_UNICAST, false)],
            }),
            Capability::Hostname {
                hostname: "node1".into(),
                domain: "test".into(),
            },
        ],
        layout: ParameterLayout::OneParameter,
        extended_form: false,
    };
    both_ways(&message(1, &bytes), &Message::Open(open.clone()), &plain());
    assert_eq!(open.asn(), 4_200_000_000);
}

#[test]
fn a_malformed_known_capability_is_an_open_error() {
    // A 4-octet AS capability of 3 bytes.
    let bytes = message(1, &open_body("02 05 41 03 000001"));
    let error = reset(&bytes, &plain());
    assert_eq!(error.reason, Reason::MalformedCapability { code: 65 });
    assert_eq!(error.notification.code, 2);
    assert_eq!(error.offset, 19 + 10 + 2);
}

#[test]
fn capabilities_their_rfcs_say_to_ignore_are_kept_as_bytes() {
    // ADD-PATH with Send/Receive 4 (RFC 7911 4), a hostname that is not UTF-8 and
    // one without its domain (the draft defines no errors), an extended next hop
    // entry with a SAFI over 255.
    let bytes = message(
        1,
        &open_body("02 17 45 04 0001 01 04 | 49 03 01 ff 00 | 49 02 01 61 | 05 06 0001 0100 0002"),
    );
    let Message::Open(open) = decode(&bytes, &plain()) else {
        panic!("not an open");
    };
    let unknown = |code: u8, value: &str| Capability::Unknown {
        code,
        value: hex(value),
    };
    assert_eq!(
        open.capabilities,
        vec![
            unknown(0x45, "0001 01 04"),
            unknown(0x49, "01 ff 00"),
            unknown(0x49, "01 61"),
            unknown(0x05, "0001 0100 0002"),
        ]
    );
    assert_eq!(encode(&Message::Open(open), &plain()), bytes);
}

#[test]
fn unknown_capabilities_are_kept_as_bytes_and_one_parameter_per_capability_survives() {
    let bytes = message(1, &open_body("02 03 80 01 aa | 02 02 02 00"));
    let open = Open {
        my_as: 65001,
        hold_time: 90,
        bgp_id: Ipv4Addr::new(192, 0, 2, 1),
        capabilities: vec![
            Capability::Unknown {
                code: 0x80,
                value: vec![0xaa],
            },
            Capability::RouteRefresh,
        ],
        layout: ParameterLayout::ParameterPerCapability,
        extended_form: false,
    };
    both_ways(&bytes, &Message::Open(open), &plain());
}

#[test]
fn optional_parameters_over_255_bytes_use_the_rfc_9072_extended_form() {
    let big = Capability::Unknown {
        code: 0x81,
        value: vec![7; 200],
    };
    let open = Open::new(
        65001,
        90,
        Ipv4Addr::new(192, 0, 2, 1),
        vec![big.clone(), big],
    );
    let bytes = encode(&Message::Open(open.clone()), &plain());
    // Non-Ext OP Len 255, Non-Ext OP Type 255, Extended Opt. Parm. Length 3 + 404.
    assert_eq!(&bytes[28..32], &hex("ff ff 0197"));
    assert_eq!(bytes[32], 2);
    assert_eq!(&bytes[33..35], &hex("0194"));
    assert_eq!(decode(&bytes, &plain()), Message::Open(open));
}

#[test]
fn short_parameters_in_the_rfc_9072_extended_form_are_kept_in_that_form() {
    // Non-Ext OP Len 255, Non-Ext OP Type 255, Extended Opt. Parm. Length 6, one
    // capabilities parameter with a 2-byte length holding route refresh.
    let mut body = hex("04 fde9 005a c0000201 ff ff 0005 02 0002 0200");
    let open = Open {
        extended_form: true,
        ..Open::new(
            65001,
            90,
            Ipv4Addr::new(192, 0, 2, 1),
            vec![Capability::RouteRefresh],
        )
    };
    both_ways(&message(1, &body), &Message::Open(open.clone()), &plain());
    // The short form of the same OPEN.
    body.splice(9.., hex("04 02 02 0200"));
    let short = Open {
        extended_form: false,
        ..open
    };
    both_ways(&message(1, &body), &Message::Open(short), &plain());
}

#[test]
fn an_open_of_version_3_is_unsupported_version_naming_4() {
    let mut body = open_body("");
    body[0] = 3;
    let error = reset(&message(1, &body), &plain());
    assert_eq!(error.reason, Reason::UnsupportedVersion(3));
    assert_eq!(
        (error.notification.code, error.notification.subcode),
        (2, 1)
    );
    assert_eq!(error.notification.data, vec![0, 4]);
}

#[test]
fn hold_times_of_one_and_two_seconds_are_unacceptable() {
    for hold in [1u8, 2] {
        let mut body = open_body("");
        body[4] = hold;
        let error = reset(&message(1, &body), &plain());
        assert_eq!(
            (error.notification.code, error.notification.subcode),
            (2, 6)
        );
    }
}

#[test]
fn a_zero_bgp_identifier_is_bad_bgp_identifier() {
    let mut body = open_body("");
    body[5..9].fill(0);
    let error = reset(&message(1, &body), &plain());
    assert_eq!(
        (error.notification.code, error.notification.subcode),
        (2, 3)
    );
}

#[test]
fn an_optional_parameter_other_than_capabilities_is_unsupported() {
    let error = reset(&message(1, &open_body("01 02 0000")), &plain());
    assert_eq!(error.reason, Reason::UnsupportedOptionalParameter(1));
    assert_eq!(
        (error.notification.code, error.notification.subcode),
        (2, 4)
    );
}

#[test]
fn open_parameters_longer_than_the_message_are_an_open_error() {
    let mut body = open_body("02 02 02 00");
    body[9] = 10;
    let error = reset(&message(1, &body), &plain());
    assert!(
        matches!(error.reason, Reason::LengthOverrun { .. }),
        "{error}"
    );
}

#[test]
fn notification_with_an_rfc_9003_shutdown_communication() {
    let bytes = message(3, &hex("06 02 0d 6d61696e74656e616e6365 2e 2e"));
    let Message::Notification(notification) = decode(&bytes, &plain()) else {
        panic!("not a notification");
    };
    assert_eq!(notification.shutdown_communication(), Some("maintenance.."));
    assert_eq!(
        encode(&Message::Notification(notification), &plain()),
        bytes
    );
}

#[test]
fn a_shutdown_communication_is_cut_at_255_bytes_on_a_character_boundary() {
    let text = "é".repeat(200);
    let notification = Notification::administrative_shutdown(&text);
    assert_eq!(notification.data[0], 254);
    assert_eq!(notification.shutdown_communication(), Some(&text[..254]));
    let reset = Notification::administrative_reset("bye");
    assert_eq!(
        (reset.code, reset.subcode, reset.data.as_slice()),
        (6, 4, &b"\x03bye"[..])
    );
}

#[test]
fn a_shutdown_communication_that_overruns_its_data_is_ignored() {
    let notification = Notification {
        code: 6,
        subcode: 2,
        data: hex("05 6869"),
    };
    assert_eq!(notification.shutdown_communication(), None);
}

#[test]
fn route_refresh_subtypes_of_rfc_7313() {
    for (subtype, kind) in [
        (0, RouteRefreshKind::Request),
        (1, RouteRefreshKind::Begin),
        (2, RouteRefreshKind::End),
        (7, RouteRefreshKind::Other(7)),
    ] {
        let bytes = message(5, &[0, 2, subtype, 1]);
        let value = Message::RouteRefresh(RouteRefresh {
            family: Family::IPV6_UNICAST,
            kind,
        });
        both_ways(&bytes, &value, &plain());
    }
}

#[test]
fn a_borr_or_eorr_of_the_wrong_length_is_invalid_message_length_with_the_message() {
    for subtype in [1, 2] {
        let bytes = message(5, &[0, 1, subtype, 1, 0]);
        let error = reset(&bytes, &plain());
        assert_eq!(
            (error.notification.code, error.notification.subcode),
            (7, 1)
        );
        assert_eq!(error.notification.data, bytes);
    }
    let short = message(5, &[0, 1, 0]);
    assert_eq!(
        reset(&short, &plain()).reason,
        Reason::RouteRefreshLength(22)
    );
}

#[test]
fn a_route_refresh_request_with_orf_entries_is_a_plain_request() {
    // RFC 5291 ORF entries after the family: tabby never negotiates ORF.
    let bytes = message(5, &hex("0001 00 01 | 01 40 0007 00aabbcc"));
    assert_eq!(
        decode(&bytes, &plain()),
        Message::RouteRefresh(RouteRefresh::request(Family::IPV4_UNICAST))
    );
}
