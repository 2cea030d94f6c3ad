//! Each malformation of RFC 7606 (and RFC 4271 where 7606 keeps it) with the outcome
//! it requires; docs/rfc7606.md lists them with these tests' names.

mod common;

use bgp::codec::{
    AsPath, DecodeError, Message, Outcome, Reason, SessionContext, Update, decode_message,
};
use common::{BASE_ATTRIBUTES_2 as BASE, BASE_ATTRIBUTES_4 as BASE_4, decode, update};

fn ctx() -> SessionContext {
    SessionContext::default()
}

/// Decodes an UPDATE that must survive; returns it.
fn survives(bytes: &[u8]) -> Update {
    match decode(bytes, &ctx()) {
        Message::Update(update) => update,
        other => panic!("not an update: {other:?}"),
    }
}

/// The single RFC 7606 error recorded in a surviving UPDATE.
fn recovered(bytes: &[u8]) -> (Update, DecodeError) {
    let update = survives(bytes);
    assert_eq!(update.malformed.len(), 1, "{:?}", update.malformed);
    let error = update.malformed[0].clone();
    (update, error)
}

fn withdrawn(attributes: &str, subcode: u8) -> DecodeError {
    let (update, error) = recovered(&update("", attributes, "18 0a0000"));
    assert_eq!(error.outcome, Outcome::TreatAsWithdraw, "{error}");
    assert!(update.treat_as_withdraw());
    assert_eq!(
        (error.notification.code, error.notification.subcode),
        (3, subcode)
    );
    error
}

fn discarded(attributes: &str) -> (Update, DecodeError) {
    let (update, error) = recovered(&update("", attributes, "18 0a0000"));
    assert_eq!(error.outcome, Outcome::AttributeDiscard, "{error}");
    assert!(!update.treat_as_withdraw());
    (update, error)
}

fn reset(bytes: &[u8]) -> DecodeError {
    let error = decode_message(bytes, &ctx()).expect_err("session reset");
    assert_eq!(error.outcome, Outcome::SessionReset, "{error}");
    error
}

#[test]
fn origin_of_wrong_length_is_treat_as_withdraw() {
    let error = withdrawn(
        &format!("{BASE} | 40 01 02 0000").replace("40 01 01 00 |", ""),
        5,
    );
    assert_eq!(error.notification.data, vec![0x40, 1, 2, 0, 0]);
}

#[test]
fn origin_of_undefined_value_is_treat_as_withdraw() {
    withdrawn(&BASE.replace("40 01 01 00", "40 01 01 03"), 6);
}

#[test]
fn malformed_as_path_is_treat_as_withdraw() {
    let error = withdrawn(
        &BASE.replace("40 02 04 02 01 fde9", "40 02 04 07 01 fde9"),
        11,
    );
    assert_eq!(error.reason, Reason::BadSegmentType(7));
}

#[test]
fn as_path_segment_of_zero_ases_is_treat_as_withdraw() {
    let error = withdrawn(&BASE.replace("40 02 04 02 01 fde9", "40 02 02 02 00"), 11);
    assert_eq!(error.reason, Reason::EmptySegment);
}

#[test]
fn as_path_segment_overrunning_the_attribute_is_treat_as_withdraw() {
    withdrawn(
        &BASE.replace("40 02 04 02 01 fde9", "40 02 04 02 02 fde9"),
        11,
    );
}

#[test]
fn next_hop_of_wrong_length_is_treat_as_withdraw() {
    withdrawn(&BASE.replace("40 03 04 c0000201", "40 03 05 c000020100"), 5);
}

#[test]
fn med_of_wrong_length_is_treat_as_withdraw() {
    withdrawn(&format!("{BASE} | 80 04 02 0001"), 5);
}

#[test]
fn local_pref_of_wrong_length_is_treat_as_withdraw() {
    withdrawn(&format!("{BASE} | 40 05 03 000001"), 5);
}

#[test]
fn atomic_aggregate_with_a_value_is_discarded() {
    let (update, _) = discarded(&format!("{BASE} | 40 06 01 00"));
    assert!(!update.attributes.atomic_aggregate);
}

#[test]
fn aggregator_of_wrong_length_is_discarded() {
    let (update, _) = discarded(&format!("{BASE} | c0 07 05 fde9c00002"));
    assert_eq!(update.attributes.aggregator, None);
}

#[test]
fn as4_path_that_is_malformed_is_discarded_and_as_path_kept() {
    let (update, _) = discarded(&format!("{BASE} | c0 11 03 02 01 00"));
    assert_eq!(
        update.attributes.as_path.unwrap().segments[0].asns,
        vec![65001]
    );
}

#[test]
fn confederation_segments_in_as4_path_are_dropped_and_the_rest_used() {
    let (update, error) = discarded(
        "40 01 01 00 | 40 02 06 02 02 5ba0 fdea | 40 03 04 c0000201 \
         | c0 11 10 03 01 0000fde9 02 02 fa56ea00 0000fdea",
    );
    assert_eq!(error.reason, Reason::ConfederationInAs4Path);
    assert_eq!(
        update.attributes.as_path,
        Some(AsPath::sequence([4_200_000_000, 65002]))
    );
}

#[test]
fn an_empty_as4_path_is_discarded() {
    let (_, error) = discarded(&format!("{BASE} | c0 11 00"));
    assert_eq!(
        error.reason,
        Reason::AttributeLength {
            code: 17,
            length: 0
        }
    );
}

#[test]
fn as4_attributes_from_a_4_octet_speaker_are_discarded() {
    let ctx = SessionContext {
        four_octet_as: true,
        ..ctx()
    };
    let bytes = update(
        "",
        &format!("{BASE_4} | c0 11 06 02 01 fa56ea00 | c0 12 08 fa56ea00 c0000209"),
        "18 0a0000",
    );
    let Message::Update(update) = decode(&bytes, &ctx) else {
        panic!("not an update")
    };
    let reasons: Vec<_> = update.malformed.iter().map(|e| &e.reason).collect();
    assert_eq!(
        reasons,
        [
            &Reason::As4FromNewSpeaker(17),
            &Reason::As4FromNewSpeaker(18)
        ]
    );
    assert!(!update.treat_as_withdraw());
    assert_eq!(update.attributes.as_path, Some(AsPath::sequence([65001])));
    assert_eq!(update.attributes.aggregator, None);
}

#[test]
fn as4_aggregator_of_wrong_length_is_discarded() {
    discarded(&format!(
        "{BASE} | c0 07 06 5ba0 c0000201 | c0 12 04 fa56ea00"
    ));
}

#[test]
fn communities_not_a_multiple_of_four_are_treat_as_withdraw() {
    withdrawn(&format!("{BASE} | c0 08 03 000001"), 5);
}

#[test]
fn empty_communities_are_treat_as_withdraw() {
    withdrawn(&format!("{BASE} | c0 08 00"), 5);
}

#[test]
fn originator_id_of_wrong_length_is_treat_as_withdraw() {
    withdrawn(&format!("{BASE} | 80 09 03 0a0000"), 5);
}

#[test]
fn cluster_list_not_a_multiple_of_four_is_treat_as_withdraw() {
    withdrawn(&format!("{BASE} | 80 0a 05 0a00000001"), 5);
}

#[test]
fn extended_communities_not_a_multiple_of_eight_are_treat_as_withdraw() {
    withdrawn(&format!("{BASE} | c0 10 04 00020001"), 5);
}

#[test]
fn large_communities_not_a_multiple_of_twelve_are_treat_as_withdraw() {
    withdrawn(&format!("{BASE} | c0 20 08 0000000100000002"), 5);
}

#[test]
fn wrong_flags_on_a_known_attribute_are_treat_as_withdraw() {
    // MED sent as well-known transitive.
    let error = withdrawn(&format!("{BASE} | 40 04 04 00000001"), 4);
    assert_eq!(
        error.reason,
        Reason::AttributeFlags {
            code: 4,
            flags: 0x40
        }
    );
}

#[test]
fn a_missing_well_known_attribute_is_treat_as_withdraw() {
    let error = withdrawn(&BASE.replace("40 01 01 00 |", ""), 3);
    assert_eq!(error.notification.data, vec![1]);
}

#[test]
fn a_missing_next_hop_with_ipv4_nlri_is_treat_as_withdraw() {
    let error = withdrawn(&BASE.replace("| 40 03 04 c0000201", ""), 3);
    assert_eq!(error.reason, Reason::MissingWellKnown(3));
}

#[test]
fn withdrawals_alone_need_no_attributes() {
    let update = survives(&update("18 0a0000", "", ""));
    assert!(update.malformed.is_empty());
}

#[test]
fn an_attribute_overrunning_the_attribute_list_is_treat_as_withdraw() {
    let error = withdrawn(&format!("{BASE} | c0 08 08 00000001"), 1);
    assert!(
        matches!(error.reason, Reason::LengthOverrun { .. }),
        "{error}"
    );
}

#[test]
fn a_truncated_attribute_header_is_treat_as_withdraw() {
    let error = withdrawn(&format!("{BASE} | c0 08"), 1);
    assert_eq!(
        error.reason,
        Reason::Truncated {
            field: "attribute header"
        }
    );
}

#[test]
fn a_repeated_attribute_keeps_the_first_and_discards_the_rest() {
    let (update, error) = discarded(&format!("{BASE} | 80 04 04 00000001 | 80 04 04 00000002"));
    assert_eq!(update.attributes.med, Some(1));
    assert_eq!(error.reason, Reason::DuplicateAttribute(4));
}

#[test]
fn a_repeated_mp_attribute_resets_the_session() {
    let mp = "80 0f 03 0002 01";
    let error = reset(&update("", &format!("{BASE} | {mp} | {mp}"), ""));
    assert_eq!(error.reason, Reason::DuplicateAttribute(15));
    assert_eq!(
        (error.notification.code, error.notification.subcode),
        (3, 1)
    );
}

#[test]
fn an_mp_reach_nlri_with_a_bad_next_hop_length_resets_the_session() {
    let error = reset(&update(
        "",
        &format!("{BASE} | 80 0e 09 0002 01 03 000000 00 00"),
        "",
    ));
    assert_eq!(error.reason, Reason::BadNextHopLength { afi: 2, length: 3 });
    assert_eq!(
        (error.notification.code, error.notification.subcode),
        (3, 9)
    );
}

#[test]
fn an_mp_attribute_of_an_unsupported_family_is_discarded() {
    let (update, error) = discarded(&format!("{BASE} | 80 0f 03 0001 80"));
    assert_eq!(update.mp_unreach, None);
    assert_eq!(
        error.reason,
        Reason::UnsupportedFamily { afi: 1, safi: 128 }
    );
}

#[test]
fn an_ipv4_prefix_longer_than_32_bits_resets_the_session() {
    let error = reset(&update("", BASE, "21 0a000000 00"));
    assert_eq!(
        error.reason,
        Reason::BadPrefixLength {
            length: 33,
            max: 32
        }
    );
    assert_eq!(
        (error.notification.code, error.notification.subcode),
        (3, 10)
    );
    // Header, the two length fields, 18 bytes of attributes.
    assert_eq!(error.offset, 19 + 4 + 18);
}

#[test]
fn a_truncated_prefix_in_the_withdrawn_routes_resets_the_session() {
    reset(&update("18 0a00", "", ""));
}

#[test]
fn withdrawn_routes_length_overrunning_the_message_resets_the_session() {
    let mut bytes = update("", "", "");
    bytes[20] = 9;
    let error = reset(&bytes);
    assert_eq!(
        (error.notification.code, error.notification.subcode),
        (3, 1)
    );
}

#[test]
fn total_attribute_length_overrunning_the_message_resets_the_session() {
    let mut bytes = update("", BASE, "");
    bytes[22] += 1;
    reset(&bytes);
}

#[test]
fn an_unrecognized_well_known_attribute_resets_the_session() {
    let error = reset(&update("", &format!("{BASE} | 40 63 01 00"), "18 0a0000"));
    assert_eq!(error.reason, Reason::UnrecognizedWellKnown(0x63));
    assert_eq!(error.notification.data, vec![0x40, 0x63, 1, 0]);
}

#[test]
fn unknown_optional_transitive_attributes_are_kept_with_partial_and_non_transitive_dropped() {
    let update = survives(&update(
        "",
        &format!("{BASE} | c0 63 01 07 | 80 64 01 08"),
        "18 0a0000",
    ));
    assert!(update.malformed.is_empty());
    let unknown = &update.attributes.unknown;
    assert_eq!(unknown.len(), 1);
    assert_eq!(
        (
            unknown[0].flags,
            unknown[0].code,
            unknown[0].value.as_slice()
        ),
        (0xe0, 0x63, &[7u8][..])
    );
}

#[test]
fn attribute_errors_without_reachable_nlri_reset_the_session_unless_discarded() {
    // RFC 7606 5.2: attributes, a malformed MED, withdrawals but no NLRI.
    let error = reset(&update("18 0a0100", &format!("{BASE} | 80 04 02 0001"), ""));
    assert_eq!(error.reason, Reason::AttributeLength { code: 4, length: 2 });
    assert_eq!(
        (error.notification.code, error.notification.subcode),
        (3, 5)
    );
    // An attribute-discard error alone keeps the session.
    let update = survives(&update("", &format!("{BASE} | 40 06 01 00"), ""));
    assert_eq!(update.malformed[0].outcome, Outcome::AttributeDiscard);
}

#[test]
fn internal_attributes_from_an_external_peer_are_discarded() {
    let external = SessionContext {
        external: true,
        ..ctx()
    };
    let bytes = update(
        "",
        &format!("{BASE} | 40 05 04 00000064 | 80 09 04 0a000001 | 80 0a 04 0a000002"),
        "18 0a0000",
    );
    let Message::Update(update) = decode(&bytes, &external) else {
        panic!("not an update")
    };
    let reasons: Vec<_> = update.malformed.iter().map(|e| &e.reason).collect();
    assert_eq!(
        reasons,
        [5, 9, 10]
            .map(Reason::InternalAttributeFromExternalPeer)
            .iter()
            .collect::<Vec<_>>()
    );
    assert!(!update.treat_as_withdraw());
    let a = &update.attributes;
    assert_eq!((a.local_pref, a.originator_id), (None, None));
    assert!(a.cluster_list.is_empty());
    // The same attributes from an internal peer are kept.
    let Message::Update(internal) = decode(&bytes, &ctx()) else {
        panic!("not an update")
    };
    assert_eq!(internal.attributes.local_pref, Some(100));
}

#[test]
fn confederation_segments_from_an_external_peer_are_treat_as_withdraw() {
    let external = SessionContext {
        external: true,
        ..ctx()
    };
    let attributes = BASE.replace("40 02 04 02 01 fde9", "40 02 08 03 01 fde8 02 01 fde9");
    let Message::Update(update) = decode(&update("", &attributes, "18 0a0000"), &external) else {
        panic!("not an update")
    };
    assert!(update.treat_as_withdraw());
    assert_eq!(
        update.malformed[0].reason,
        Reason::ConfederationFromExternalPeer
    );
    assert_eq!(update.malformed[0].notification.subcode, 11);
}

#[test]
fn errors_the_session_survives_carry_offsets_from_the_start_of_the_message() {
    // Header 19, two length fields 4, then BASE (18 bytes): the bad MED.
    let (_, error) = recovered(&update("", &format!("{BASE} | 80 04 02 0001"), "18 0a0000"));
    assert_eq!(error.offset, 19 + 4 + 18);
}

#[test]
fn as_path_with_a_single_octet_after_the_last_segment_is_treat_as_withdraw() {
    let error = withdrawn(
        &BASE.replace("40 02 04 02 01 fde9", "40 02 05 02 01 fde9 02"),
        11,
    );
    assert_eq!(
        error.reason,
        Reason::Truncated {
            field: "AS_PATH segment"
        }
    );
}

#[test]
fn an_mp_reach_nlri_too_short_for_its_header_resets_the_session() {
    let error = reset(&update("", &format!("{BASE} | 80 0e 02 0002"), ""));
    assert_eq!(
        (error.notification.code, error.notification.subcode),
        (3, 9)
    );
}

#[test]
fn an_ipv6_prefix_longer_than_128_bits_in_mp_reach_resets_the_session() {
    let error = reset(&update(
        "",
        &format!("{BASE} | 80 0e 16 0002 01 10 20010db8000000000000000000000001 00 81 20"),
        "",
    ));
    assert_eq!(
        error.reason,
        Reason::BadPrefixLength {
            length: 129,
            max: 128
        }
    );
    assert_eq!(error.notification.subcode, 10);
}

#[test]
fn wrong_flags_on_an_mp_attribute_reset_the_session() {
    // MP_UNREACH_NLRI sent as optional transitive.
    let error = reset(&update("", "c0 0f 03 0002 01", ""));
    assert_eq!(
        (error.notification.code, error.notification.subcode),
        (3, 4)
    );
}

#[test]
fn a_path_id_cut_short_resets_the_session() {
    let ctx = SessionContext {
        add_path: bgp::codec::AddPath::BOTH,
        ..ctx()
    };
    let error = decode_message(&update("", BASE, "00000001 18 0a0000 0000"), &ctx).unwrap_err();
    assert_eq!(error.outcome, Outcome::SessionReset);
    assert_eq!(error.reason, Reason::Truncated { field: "path id" });
}

#[test]
fn of_several_errors_the_strongest_outcome_applies() {
    // RFC 7606 3 h: a discarded ATOMIC_AGGREGATE and a malformed MED withdraw.
    let recovered = survives(&update(
        "",
        &format!("{BASE} | 80 04 02 0001 | 40 06 01 00"),
        "18 0a0000",
    ));
    assert_eq!(recovered.malformed.len(), 2);
    assert!(recovered.treat_as_withdraw());
    // A malformed MED before a bad MP_REACH_NLRI: the reset wins.
    let error = reset(&update(
        "",
        &format!("{BASE} | 80 04 02 0001 | 80 0e 09 0002 01 03 000000 00 00"),
        "",
    ));
    assert_eq!(error.notification.subcode, 9);
}
