//! Every arrow of the section 6.2 diagram, the administrative ones of section
//! 6.8.16, and the discard rules the session applies.

use super::*;

#[test]
fn a_new_session_sends_down_at_once_then_once_a_second() {
    let mut session = Session::new(Timers::default(), LOCAL, SEED);
    let out = session.start();
    let first = sent(&out)[0];
    assert_eq!(first.state, State::Down);
    assert_eq!(first.your_discriminator, 0);
    assert_eq!(first.desired_min_tx_us, 1_000_000);
    assert_eq!(first.required_min_rx_us, 300_000);
    let next = timer_set(&out, Timer::Transmit).unwrap();
    assert!((ms(750)..=ms(1000)).contains(&next), "{next:?}");
    assert_eq!(session.status().transmit_interval, Some(ms(1000)));
}

#[test]
fn a_state_change_goes_out_at_once_and_the_next_packet_a_full_interval_later() {
    let mut session = down();
    let out = receive(&mut session, from_peer(State::Down));
    let packets = sent(&out);
    assert_eq!(packets.len(), 1);
    assert_eq!(packets[0].state, State::Init);
    let next = timer_set(&out, Timer::Transmit).unwrap();
    assert!(next >= ms(750), "{next:?}");
    // Without a change nothing is sent out of turn.
    let out = receive(&mut session, from_peer(State::Down));
    assert!(sent(&out).is_empty());
    assert_eq!(timer_set(&out, Timer::Transmit), None);
}

#[test]
fn down_receiving_down_moves_to_init() {
    let mut session = down();
    let out = receive(&mut session, from_peer(State::Down));
    assert_eq!(
        state_change(&out),
        Some((State::Init, Diagnostic::NoDiagnostic))
    );
    let packet = next_periodic(&mut session);
    assert_eq!(packet.state, State::Init);
    assert_eq!(packet.your_discriminator, REMOTE);
}

#[test]
fn down_receiving_init_moves_to_up() {
    let mut session = down();
    let out = receive(&mut session, from_peer(State::Init));
    assert_eq!(
        state_change(&out),
        Some((State::Up, Diagnostic::NoDiagnostic))
    );
}

#[test]
fn down_receiving_up_stays_down() {
    let mut session = down();
    let out = receive(&mut session, from_peer(State::Up));
    assert_eq!(state_change(&out), None);
    assert_eq!(session.state(), State::Down);
    assert_eq!(session.status().remote_state, State::Up);
}

#[test]
fn down_receiving_admin_down_stays_down() {
    let mut session = down();
    let out = receive(&mut session, from_peer(State::AdminDown));
    assert_eq!(state_change(&out), None);
    assert_eq!(session.status().diagnostic, Diagnostic::NoDiagnostic);
}

#[test]
fn down_when_the_detection_time_passes_stays_down_and_forgets_the_remote_discriminator() {
    let mut session = down();
    receive(&mut session, from_peer(State::Up));
    assert_eq!(session.status().remote_discriminator, REMOTE);
    let out = session.handle(Input::Expired(Timer::Detection));
    assert_eq!(state_change(&out), None);
    assert_eq!(session.status().remote_discriminator, 0);
    assert_eq!(next_periodic(&mut session).your_discriminator, 0);
}

#[test]
fn init_receiving_down_stays_init() {
    let mut session = init();
    let out = receive(&mut session, from_peer(State::Down));
    assert_eq!(state_change(&out), None);
    assert_eq!(session.state(), State::Init);
}

#[test]
fn init_receiving_init_or_up_moves_to_up() {
    for peer in [State::Init, State::Up] {
        let mut session = init();
        let out = receive(&mut session, from_peer(peer));
        assert_eq!(
            state_change(&out),
            Some((State::Up, Diagnostic::NoDiagnostic)),
            "{peer}"
        );
    }
}

#[test]
fn init_receiving_admin_down_moves_to_down_with_neighbor_signaled_session_down() {
    let mut session = init();
    let out = receive(&mut session, from_peer(State::AdminDown));
    assert_eq!(
        state_change(&out),
        Some((State::Down, Diagnostic::NeighborSignaledSessionDown))
    );
}

#[test]
fn init_when_the_detection_time_passes_moves_to_down_with_control_detection_time_expired() {
    let mut session = init();
    let out = session.handle(Input::Expired(Timer::Detection));
    assert_eq!(
        state_change(&out),
        Some((State::Down, Diagnostic::ControlDetectionTimeExpired))
    );
    assert_eq!(session.status().flaps, 0, "Init is not Up");
}

#[test]
fn up_receiving_init_or_up_stays_up() {
    for peer in [State::Init, State::Up] {
        let mut session = up();
        let out = receive(&mut session, from_peer(peer));
        assert_eq!(state_change(&out), None, "{peer}");
        assert_eq!(session.state(), State::Up);
    }
}

#[test]
fn up_receiving_down_or_admin_down_moves_to_down_with_neighbor_signaled_session_down() {
    for peer in [State::Down, State::AdminDown] {
        let mut session = up();
        let out = receive(
            &mut session,
            ControlPacket {
                your_discriminator: LOCAL,
                ..from_peer(peer)
            },
        );
        assert_eq!(
            state_change(&out),
            Some((State::Down, Diagnostic::NeighborSignaledSessionDown)),
            "{peer}"
        );
        assert_eq!(session.status().remote_state, peer);
        assert_eq!(session.status().flaps, 1);
        let packet = next_periodic(&mut session);
        assert_eq!(packet.state, State::Down);
        assert_eq!(packet.diagnostic, Diagnostic::NeighborSignaledSessionDown);
    }
}

#[test]
fn up_when_the_detection_time_passes_moves_to_down_with_control_detection_time_expired() {
    let mut session = up();
    let out = session.handle(Input::Expired(Timer::Detection));
    assert_eq!(
        state_change(&out),
        Some((State::Down, Diagnostic::ControlDetectionTimeExpired))
    );
    let status = session.status();
    assert_eq!((status.flaps, status.remote_discriminator), (1, 0));
    let packet = next_periodic(&mut session);
    assert_eq!(packet.diagnostic, Diagnostic::ControlDetectionTimeExpired);
    assert_eq!(packet.your_discriminator, 0);
}

#[test]
fn admin_down_from_every_state_holds_the_session_and_keeps_telling_the_peer() {
    for mut session in [down(), init(), up()] {
        let out = session.handle(Input::AdminDown);
        assert_eq!(
            state_change(&out),
            Some((State::AdminDown, Diagnostic::AdministrativelyDown))
        );
        // At once: a peer that is Up must hear it before its Detection Time.
        assert_eq!(sent(&out)[0].state, State::AdminDown);
        assert_eq!(session.status().flaps, 0, "AdminDown is no flap");
        let packet = next_periodic(&mut session);
        assert_eq!(packet.state, State::AdminDown);
        assert_eq!(packet.diagnostic, Diagnostic::AdministrativelyDown);
        // Not Up: back to one packet a second.
        assert_eq!(packet.desired_min_tx_us, 1_000_000);
        assert!(session.handle(Input::AdminDown).is_empty());
    }
}

#[test]
fn admin_down_cancels_the_detection_timer() {
    let mut session = up();
    let out = session.handle(Input::AdminDown);
    assert!(
        out.contains(&Output::CancelTimer(Timer::Detection)),
        "{out:?}"
    );
    assert_eq!(session.status().detection_time, None);
}

#[test]
fn admin_down_ignores_every_received_packet_and_answers_no_poll() {
    let mut session = up();
    session.handle(Input::AdminDown);
    for state in [State::AdminDown, State::Down, State::Init, State::Up] {
        let out = receive(
            &mut session,
            ControlPacket {
                poll: true,
                your_discriminator: LOCAL,
                ..from_peer(state)
            },
        );
        assert!(out.is_empty(), "{state}: {out:?}");
        assert_eq!(session.state(), State::AdminDown);
    }
}

#[test]
fn admin_up_returns_to_down_and_the_session_comes_up_again() {
    let mut session = up();
    session.handle(Input::AdminDown);
    let out = session.handle(Input::AdminUp);
    assert_eq!(
        state_change(&out),
        Some((State::Down, Diagnostic::NoDiagnostic))
    );
    receive(&mut session, from_peer(State::Init));
    assert_eq!(session.state(), State::Up);
    assert!(
        down().handle(Input::AdminUp).is_empty(),
        "only from AdminDown"
    );
}

#[test]
fn a_packet_with_authentication_is_discarded_when_none_is_configured() {
    let mut session = down();
    let out = receive(
        &mut session,
        ControlPacket {
            authentication: Some(crate::packet::Authentication::SimplePassword {
                key_id: 1,
                password: b"secret".to_vec(),
            }),
            ..from_peer(State::Down)
        },
    );
    assert_eq!(out, [Output::Discarded(Discard::Authenticated)]);
    assert_eq!(session.state(), State::Down);
    assert_eq!(session.status().remote_discriminator, 0);
}

#[test]
fn a_packet_for_another_discriminator_is_discarded() {
    let mut session = down();
    let out = receive(
        &mut session,
        ControlPacket {
            your_discriminator: LOCAL + 1,
            ..from_peer(State::Init)
        },
    );
    assert_eq!(out, [Output::Discarded(Discard::WrongDiscriminator)]);
    assert_eq!(session.state(), State::Down);
}

/// Two sessions handing each other every packet they send, periodic ones in
/// turn, until both are Up; then both poll for 300 ms and settle.
#[test]
fn two_sessions_exchanging_packets_come_up_and_settle_at_their_configured_rate() {
    let mut a = Session::new(Timers::default(), LOCAL, 1);
    let mut b = Session::new(Timers::default(), REMOTE, 2);
    let mut to_b: Vec<ControlPacket> = sent(&a.start()).into_iter().cloned().collect();
    let mut to_a: Vec<ControlPacket> = sent(&b.start()).into_iter().cloned().collect();
    for _ in 0..6 {
        for packet in std::mem::take(&mut to_b) {
            to_a.extend(sent(&receive(&mut b, packet)).into_iter().cloned());
        }
        for packet in std::mem::take(&mut to_a) {
            to_b.extend(sent(&receive(&mut a, packet)).into_iter().cloned());
        }
        to_b.push(next_periodic(&mut a));
        to_a.push(next_periodic(&mut b));
    }
    for session in [&a, &b] {
        let status = session.status();
        assert_eq!(status.state, State::Up);
        assert!(!status.polling);
        assert_eq!(status.transmit_interval, Some(ms(300)));
        assert_eq!(status.detection_time, Some(ms(900)));
    }
}

#[test]
fn deleting_a_session_sends_one_admin_down_packet_at_once() {
    let mut session = up();
    let out = session.delete();
    assert_eq!(
        state_change(&out),
        Some((State::AdminDown, Diagnostic::AdministrativelyDown))
    );
    let packets = sent(&out);
    assert_eq!(packets.len(), 1);
    assert_eq!(packets[0].state, State::AdminDown);
    assert_eq!(packets[0].your_discriminator, REMOTE);
}
