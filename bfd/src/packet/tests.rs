//! Bytes ⟷ values both ways. The fixtures are UDP payloads captured with tcpdump
//! between FRR 8.4.4 bfdd and BIRD 2.0.12 in two network namespaces (BIRD's
//! authenticated ones with `authentication ...; password "secret" { id 5; }`).

use super::*;

fn hex(text: &str) -> Vec<u8> {
    let digits: String = text.split_whitespace().collect();
    (0..digits.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&digits[i..i + 2], 16).unwrap())
        .collect()
}

/// FRR, Down, before it knows BIRD's discriminator; 1 s while not Up, echo 50 ms.
const FRR_DOWN: &str = "2040 0318 b45e ac95 0000 0000 000f 4240 000f 4240 0000 c350";
/// FRR, Init, echoing BIRD's discriminator.
const FRR_INIT: &str = "2080 0318 b45e ac95 af6f f890 000f 4240 000f 4240 0000 c350";
/// BIRD, Down: 1 s transmit while not Up, 300 ms receive.
const BIRD_DOWN: &str = "2040 0318 af6f f890 0000 0000 000f 4240 0004 93e0 0000 0000";
/// BIRD, Up, polling for its faster transmit interval.
const BIRD_UP_POLL: &str = "20e0 0318 af6f f890 b45e ac95 0004 93e0 0004 93e0 0000 0000";
/// FRR's Final answering that poll.
const FRR_UP_FINAL: &str = "20d0 0318 b45e ac95 af6f f890 0004 93e0 0004 93e0 0000 c350";
const BIRD_SIMPLE_PASSWORD: &str =
    "2044 0321 1af3 3d0d 0000 0000 000f 4240 0004 93e0 0000 0000 0109 0573 6563 7265 74";
const BIRD_KEYED_MD5: &str = "2044 0330 8b9a 7006 0000 0000 000f 4240 0004 93e0 0000 0000 \
     0218 0500 d5b6 92e3 dffd 00fe a5b8 1769 4bb4 4291 07e7 02d0";
const BIRD_METICULOUS_KEYED_SHA1: &str = "2044 0334 ce28 bb5a 0000 0000 000f 4240 0004 93e0 \
     0000 0000 051c 0500 b196 0588 9c30 d86d 29a9 6ebb 0540 4164 4b0c 8b26 3b13 af2e";

fn base(state: State, my: u32, your: u32) -> ControlPacket {
    ControlPacket {
        state,
        detect_mult: 3,
        my_discriminator: my,
        your_discriminator: your,
        desired_min_tx_us: 1_000_000,
        required_min_rx_us: 300_000,
        ..ControlPacket::default()
    }
}

/// Decodes `text`, checks it is `expected`, and that encoding gives the bytes back.
fn both_ways(text: &str, expected: &ControlPacket) {
    let bytes = hex(text);
    assert_eq!(&ControlPacket::decode(&bytes).unwrap(), expected);
    assert_eq!(expected.to_bytes().as_ref(), bytes.as_slice(), "{text}");
}

#[test]
fn frr_and_bird_session_packets_decode_and_encode_to_the_same_bytes() {
    let frr = 0xb45e_ac95;
    let bird = 0xaf6f_f890;
    let frr_down = ControlPacket {
        required_min_rx_us: 1_000_000,
        required_min_echo_rx_us: 50_000,
        ..base(State::Down, frr, 0)
    };
    both_ways(FRR_DOWN, &frr_down);
    both_ways(
        FRR_INIT,
        &ControlPacket {
            state: State::Init,
            your_discriminator: bird,
            ..frr_down.clone()
        },
    );
    both_ways(BIRD_DOWN, &base(State::Down, bird, 0));
    let fast = ControlPacket {
        desired_min_tx_us: 300_000,
        ..base(State::Up, bird, frr)
    };
    both_ways(
        BIRD_UP_POLL,
        &ControlPacket {
            poll: true,
            ..fast.clone()
        },
    );
    both_ways(
        FRR_UP_FINAL,
        &ControlPacket {
            final_: true,
            my_discriminator: frr,
            your_discriminator: bird,
            required_min_echo_rx_us: 50_000,
            ..fast
        },
    );
}

#[test]
fn bird_authentication_sections_decode_and_encode_to_the_same_bytes() {
    let packet = |my, authentication| ControlPacket {
        authentication: Some(authentication),
        ..base(State::Down, my, 0)
    };
    both_ways(
        BIRD_SIMPLE_PASSWORD,
        &packet(
            0x1af3_3d0d,
            Authentication::SimplePassword {
                key_id: 5,
                password: b"secret".to_vec(),
            },
        ),
    );
    let md5 = hex(BIRD_KEYED_MD5);
    both_ways(
        BIRD_KEYED_MD5,
        &packet(
            0x8b9a_7006,
            Authentication::KeyedMd5 {
                meticulous: false,
                key_id: 5,
                sequence: 0xd5b6_92e3,
                digest: md5[32..].try_into().unwrap(),
            },
        ),
    );
    let sha1 = hex(BIRD_METICULOUS_KEYED_SHA1);
    both_ways(
        BIRD_METICULOUS_KEYED_SHA1,
        &packet(
            0xce28_bb5a,
            Authentication::KeyedSha1 {
                meticulous: true,
                key_id: 5,
                sequence: 0xb196_0588,
                hash: sha1[32..].try_into().unwrap(),
            },
        ),
    );
}

#[test]
fn every_flag_and_a_reserved_diagnostic_survive_a_round_trip() {
    let packet = ControlPacket {
        diagnostic: Diagnostic::Other(31),
        poll: true,
        control_plane_independent: true,
        demand: true,
        required_min_echo_rx_us: u32::MAX,
        authentication: Some(Authentication::Other {
            auth_type: 200,
            data: vec![1, 2, 3],
        }),
        ..base(State::AdminDown, 1, 0)
    };
    let bytes = packet.to_bytes();
    assert_eq!(bytes[0], 0x3f);
    assert_eq!(bytes[1], 0x2e);
    assert_eq!(usize::from(bytes[3]), bytes.len());
    assert_eq!(ControlPacket::decode(&bytes).unwrap(), packet);
}

#[test]
fn diagnostic_codes_follow_the_rfc_numbering() {
    for code in 0..32 {
        assert_eq!(Diagnostic::from_code(code).code(), code);
    }
    assert_eq!(
        Diagnostic::from_code(1),
        Diagnostic::ControlDetectionTimeExpired
    );
    assert_eq!(
        Diagnostic::from_code(3),
        Diagnostic::NeighborSignaledSessionDown
    );
    assert_eq!(Diagnostic::from_code(7), Diagnostic::AdministrativelyDown);
    assert_eq!(Diagnostic::from_code(9), Diagnostic::Other(9));
}

#[test]
fn bytes_past_length_are_ignored() {
    let mut bytes = hex(BIRD_DOWN);
    bytes.extend_from_slice(&[0xde, 0xad]);
    assert_eq!(
        ControlPacket::decode(&bytes).unwrap(),
        ControlPacket::decode(&hex(BIRD_DOWN)).unwrap()
    );
}

/// `BIRD_DOWN` with `edit` applied to its bytes must be discarded with `expected`.
fn discarded(edit: impl FnOnce(&mut Vec<u8>), expected: DecodeError) {
    let mut bytes = hex(BIRD_DOWN);
    edit(&mut bytes);
    let error = ControlPacket::decode(&bytes).unwrap_err();
    assert_eq!(error, expected);
    assert!(error.offset() <= bytes.len(), "{error}");
}

#[test]
fn a_payload_shorter_than_the_header_is_discarded() {
    discarded(|b| b.truncate(23), DecodeError::Truncated(23));
}

#[test]
fn a_version_other_than_1_is_discarded() {
    discarded(|b| b[0] = 0x40, DecodeError::Version(2));
    discarded(|b| b[0] = 0x00, DecodeError::Version(0));
}

#[test]
fn a_length_below_24_is_discarded() {
    discarded(
        |b| b[3] = 23,
        DecodeError::LengthTooShort {
            length: 23,
            minimum: 24,
        },
    );
}

#[test]
fn a_length_below_26_with_the_a_bit_is_discarded() {
    discarded(
        |b| {
            b[1] |= 0x04;
            b.extend_from_slice(&[1, 2]);
            b[3] = 25;
        },
        DecodeError::LengthTooShort {
            length: 25,
            minimum: 26,
        },
    );
}

#[test]
fn a_length_beyond_the_payload_is_discarded() {
    discarded(
        |b| b[3] = 25,
        DecodeError::LengthExceedsPayload {
            length: 25,
            payload: 24,
        },
    );
}

#[test]
fn a_zero_detect_mult_is_discarded() {
    discarded(|b| b[2] = 0, DecodeError::ZeroDetectMult);
}

#[test]
fn the_multipoint_bit_is_discarded() {
    discarded(|b| b[1] |= 0x01, DecodeError::Multipoint);
}

#[test]
fn a_zero_my_discriminator_is_discarded() {
    discarded(|b| b[4..8].fill(0), DecodeError::ZeroMyDiscriminator);
}

#[test]
fn a_zero_your_discriminator_is_discarded_unless_the_state_is_down_or_admin_down() {
    for (bits, state) in [(0x80, State::Init), (0xc0, State::Up)] {
        discarded(|b| b[1] = bits, DecodeError::ZeroYourDiscriminator(state));
    }
    let mut admin_down = hex(BIRD_DOWN);
    admin_down[1] = 0x00;
    assert_eq!(
        ControlPacket::decode(&admin_down).unwrap().state,
        State::AdminDown
    );
}

#[test]
fn an_authentication_section_whose_length_disagrees_with_the_packet_is_discarded() {
    let mut bytes = hex(BIRD_SIMPLE_PASSWORD);
    bytes[25] = 8;
    assert_eq!(
        ControlPacket::decode(&bytes).unwrap_err(),
        DecodeError::Authentication(AuthError::LengthMismatch {
            auth_len: 8,
            section: 9
        })
    );
}

#[test]
fn authentication_sections_of_the_wrong_size_for_their_type_are_discarded() {
    // A keyed MD5 section one byte short, then a 17-byte password.
    let mut md5 = hex(BIRD_KEYED_MD5);
    md5.pop();
    md5[3] -= 1;
    md5[25] -= 1;
    let mut password = hex(BIRD_SIMPLE_PASSWORD);
    password.extend_from_slice(&[b'x'; 11]);
    password[3] += 11;
    password[25] += 11;
    for (bytes, auth_type, auth_len) in [(md5, 2, 23), (password, 1, 20)] {
        assert_eq!(
            ControlPacket::decode(&bytes).unwrap_err(),
            DecodeError::Authentication(AuthError::BadLength {
                auth_type,
                auth_len
            })
        );
    }
}

mod properties {
    use proptest::prelude::*;

    use super::*;

    fn authentication() -> impl Strategy<Value = Option<Authentication>> {
        prop_oneof![
            Just(None),
            (any::<u8>(), proptest::collection::vec(any::<u8>(), 1..=16)).prop_map(
                |(key_id, password)| Some(Authentication::SimplePassword { key_id, password })
            ),
            (any::<bool>(), any::<u8>(), any::<u32>(), any::<[u8; 16]>()).prop_map(
                |(meticulous, key_id, sequence, digest)| Some(Authentication::KeyedMd5 {
                    meticulous,
                    key_id,
                    sequence,
                    digest
                })
            ),
            (any::<bool>(), any::<u8>(), any::<u32>(), any::<[u8; 20]>()).prop_map(
                |(meticulous, key_id, sequence, hash)| Some(Authentication::KeyedSha1 {
                    meticulous,
                    key_id,
                    sequence,
                    hash
                })
            ),
        ]
    }

    fn packet() -> impl Strategy<Value = ControlPacket> {
        (
            (0u8..32, 0u8..4, any::<[bool; 4]>(), 1u8..),
            (1u32.., 1u32.., any::<[u32; 3]>()),
            authentication(),
        )
            .prop_map(
                |((diag, state, [p, f, c, d], mult), (my, your, [tx, rx, echo]), auth)| {
                    ControlPacket {
                        diagnostic: Diagnostic::from_code(diag),
                        state: State::from_bits(state),
                        poll: p,
                        final_: f,
                        control_plane_independent: c,
                        demand: d,
                        detect_mult: mult,
                        my_discriminator: my,
                        your_discriminator: your,
                        desired_min_tx_us: tx,
                        required_min_rx_us: rx,
                        required_min_echo_rx_us: echo,
                        authentication: auth,
                    }
                },
            )
    }

    proptest! {
        #[test]
        fn every_valid_packet_decodes_to_itself_after_encoding(packet in packet()) {
            let bytes = packet.to_bytes();
            prop_assert_eq!(bytes.len(), packet.len());
            prop_assert_eq!(ControlPacket::decode(&bytes).unwrap(), packet);
        }

        #[test]
        fn arbitrary_bytes_decode_or_fail_without_panicking(bytes in proptest::collection::vec(any::<u8>(), 0..64)) {
            if let Ok(packet) = ControlPacket::decode(&bytes) {
                prop_assert_eq!(ControlPacket::decode(&packet.to_bytes()).unwrap(), packet);
            }
        }
    }
}

/// Found by the fuzzer: a keyed MD5 section of 4 bytes, shorter than its sequence
/// number, made the decoder index past its end.
#[test]
fn a_keyed_md5_section_too_short_for_its_sequence_number_is_discarded() {
    let bytes = hex("2044 031c 000f 4240 b45e 7300 0e3d f31a b45e ac00 000f 4240 0204 7800");
    assert_eq!(
        ControlPacket::decode(&bytes).unwrap_err(),
        DecodeError::Authentication(AuthError::BadLength {
            auth_type: 2,
            auth_len: 4
        })
    );
}
