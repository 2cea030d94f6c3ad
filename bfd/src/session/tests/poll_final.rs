//! The Poll Sequence (RFC 5880 section 6.5) and the timer changes it guards
//! (section 6.8.3).

use super::*;

fn timers(tx: u64, rx: u64, mult: u8) -> Timers {
    Timers::new(ms(tx), ms(rx), mult).unwrap()
}

fn final_from_peer() -> ControlPacket {
    ControlPacket {
        final_: true,
        ..from_peer_up()
    }
}

#[test]
fn going_up_polls_for_the_faster_transmit_interval_and_uses_it_at_once() {
    let mut session = down();
    let out = receive(&mut session, from_peer(State::Init));
    let next = timer_set(&out, Timer::Transmit).unwrap();
    assert!((ms(225)..=ms(300)).contains(&next), "{next:?}");
    let status = session.status();
    assert!(status.polling);
    assert_eq!(status.transmit_interval, Some(ms(300)));
    for _ in 0..2 {
        let packet = next_periodic(&mut session);
        assert!(packet.poll && !packet.final_);
        assert_eq!(packet.desired_min_tx_us, 300_000);
    }
}

#[test]
fn a_final_ends_the_poll_sequence() {
    let mut session = down();
    receive(&mut session, from_peer(State::Init));
    receive(&mut session, final_from_peer());
    assert!(!session.status().polling);
    assert!(!next_periodic(&mut session).poll);
}

#[test]
fn a_poll_is_answered_at_once_with_a_final_and_never_both_bits() {
    for (mut session, state) in [
        (down(), State::Down),
        (init(), State::Init),
        (up(), State::Up),
    ] {
        // Polling itself as well: the answer still carries no P.
        session.handle(Input::SetTimers(timers(500, 300, 3)));
        let out = receive(
            &mut session,
            ControlPacket {
                poll: true,
                ..from_peer(State::Init)
            },
        );
        let answers = sent(&out);
        assert_eq!(answers.len(), 1, "{state}: {out:?}");
        assert!(answers[0].final_ && !answers[0].poll, "{state}");
        assert_eq!(answers[0].your_discriminator, REMOTE);
    }
}

#[test]
fn a_faster_transmit_interval_is_used_at_once_while_its_poll_runs() {
    let mut session = up();
    receive(
        &mut session,
        ControlPacket {
            required_min_rx_us: 50_000,
            ..from_peer_up()
        },
    );
    let out = session.handle(Input::SetTimers(timers(100, 300, 3)));
    assert!(timer_set(&out, Timer::Transmit).unwrap() <= ms(100));
    let status = session.status();
    assert!(status.polling);
    assert_eq!(status.transmit_interval, Some(ms(100)));
}

#[test]
fn a_slower_transmit_interval_waits_for_the_final() {
    let mut session = up();
    let out = session.handle(Input::SetTimers(timers(500, 300, 3)));
    assert_eq!(timer_set(&out, Timer::Transmit), None);
    let packet = next_periodic(&mut session);
    assert!(packet.poll);
    assert_eq!(packet.desired_min_tx_us, 500_000);
    assert_eq!(session.status().transmit_interval, Some(ms(300)));
    let out = receive(&mut session, final_from_peer());
    assert!(timer_set(&out, Timer::Transmit).unwrap() >= ms(375));
    assert_eq!(session.status().transmit_interval, Some(ms(500)));
}

/// The peer sends every 50 ms, so this system's Required Min RX decides the
/// Detection Time.
fn fast_peer() -> ControlPacket {
    ControlPacket {
        desired_min_tx_us: 50_000,
        ..from_peer_up()
    }
}

#[test]
fn a_shorter_receive_interval_shortens_the_detection_time_only_after_the_final() {
    let mut session = up();
    session.handle(Input::SetTimers(timers(300, 100, 3)));
    assert_eq!(next_periodic(&mut session).required_min_rx_us, 100_000);
    let out = receive(&mut session, fast_peer());
    assert_eq!(timer_set(&out, Timer::Detection), Some(ms(900)));
    let out = receive(
        &mut session,
        ControlPacket {
            final_: true,
            ..fast_peer()
        },
    );
    assert_eq!(timer_set(&out, Timer::Detection), Some(ms(300)));
}

#[test]
fn a_longer_receive_interval_lengthens_the_detection_time_at_once() {
    let mut session = up();
    session.handle(Input::SetTimers(timers(300, 500, 3)));
    let out = receive(&mut session, fast_peer());
    assert_eq!(timer_set(&out, Timer::Detection), Some(ms(1500)));
}

#[test]
fn timers_changed_during_a_poll_are_polled_again_after_the_final() {
    let mut session = up();
    session.handle(Input::SetTimers(timers(500, 300, 3)));
    session.handle(Input::SetTimers(timers(700, 300, 3)));
    receive(&mut session, final_from_peer());
    let status = session.status();
    assert!(status.polling, "the Final may answer the 500 ms poll");
    assert_eq!(status.transmit_interval, Some(ms(300)));
    let packet = next_periodic(&mut session);
    assert!(packet.poll);
    assert_eq!(packet.desired_min_tx_us, 700_000);
    receive(&mut session, final_from_peer());
    let status = session.status();
    assert!(!status.polling);
    assert_eq!(status.transmit_interval, Some(ms(700)));
}

#[test]
fn timer_changes_while_not_up_need_no_poll_and_keep_one_packet_a_second() {
    let mut session = down();
    session.handle(Input::SetTimers(timers(100, 100, 3)));
    assert!(!session.status().polling);
    let packet = next_periodic(&mut session);
    assert!(!packet.poll);
    assert_eq!(packet.desired_min_tx_us, 1_000_000);
    assert_eq!(packet.required_min_rx_us, 100_000);
}

#[test]
fn a_multiplier_change_needs_no_poll() {
    let mut session = up();
    session.handle(Input::SetTimers(timers(300, 300, 5)));
    assert!(!session.status().polling);
    assert_eq!(next_periodic(&mut session).detect_mult, 5);
}

#[test]
fn a_final_without_a_poll_changes_nothing() {
    let mut session = up();
    let before = session.status();
    let out = receive(&mut session, final_from_peer());
    assert_eq!(out, [Output::SetTimer(Timer::Detection, ms(900))]);
    assert_eq!(session.status(), before);
}

#[test]
fn going_down_ends_a_poll_and_returns_to_one_packet_a_second() {
    let mut session = up();
    session.handle(Input::SetTimers(timers(500, 300, 3)));
    let out = session.handle(Input::Expired(Timer::Detection));
    assert!(timer_set(&out, Timer::Transmit).unwrap() >= ms(750));
    let status = session.status();
    assert!(!status.polling);
    assert_eq!(status.transmit_interval, Some(ms(1000)));
    let packet = next_periodic(&mut session);
    assert!(!packet.poll);
    assert_eq!(packet.desired_min_tx_us, 1_000_000);
}
