//! Transmit intervals, jitter (section 6.8.7), the Detection Time (section 6.8.4)
//! and what each packet carries.

use super::*;

/// `count` periodic intervals as the transmit timer is set.
fn intervals(session: &mut Session, count: usize) -> Vec<Duration> {
    (0..count)
        .map(|_| {
            let out = session.handle(Input::Expired(Timer::Transmit));
            timer_set(&out, Timer::Transmit).unwrap()
        })
        .collect()
}

#[test]
fn the_transmit_interval_is_the_slower_of_local_desired_and_remote_required() {
    let mut session = up();
    assert_eq!(session.status().transmit_interval, Some(ms(300)));
    receive(
        &mut session,
        ControlPacket {
            required_min_rx_us: 800_000,
            ..from_peer_up()
        },
    );
    assert_eq!(session.status().transmit_interval, Some(ms(800)));
}

#[test]
fn jitter_keeps_every_interval_between_75_and_100_percent() {
    let mut session = up();
    let all = intervals(&mut session, 2000);
    assert!(all.iter().all(|i| (ms(225)..=ms(300)).contains(i)));
    // Spread over the whole range, not stuck at one end.
    assert!(all.iter().any(|i| *i < ms(235)));
    assert!(all.iter().any(|i| *i > ms(290)));
}

#[test]
fn jitter_with_a_multiplier_of_1_keeps_every_interval_between_75_and_90_percent() {
    let timers = Timers::new(ms(300), ms(300), 1).unwrap();
    let mut session = up_with(timers);
    let all = intervals(&mut session, 2000);
    assert!(all.iter().all(|i| (ms(225)..=ms(270)).contains(i)));
    assert!(all.iter().any(|i| *i < ms(235)));
    assert!(all.iter().any(|i| *i > ms(260)));
}

#[test]
fn the_same_seed_gives_the_same_intervals() {
    let run = |seed| {
        let mut session = Session::new(Timers::default(), LOCAL, seed);
        session.start();
        intervals(&mut session, 20)
    };
    assert_eq!(run(3), run(3));
    assert_ne!(run(3), run(4));
}

#[test]
fn the_detection_time_is_the_remote_multiplier_times_the_slower_of_remote_tx_and_local_rx() {
    let mut session = up();
    let out = receive(
        &mut session,
        ControlPacket {
            detect_mult: 5,
            desired_min_tx_us: 400_000,
            ..from_peer_up()
        },
    );
    assert_eq!(timer_set(&out, Timer::Detection), Some(ms(2000)));
    let out = receive(
        &mut session,
        ControlPacket {
            detect_mult: 2,
            desired_min_tx_us: 100_000,
            ..from_peer_up()
        },
    );
    assert_eq!(timer_set(&out, Timer::Detection), Some(ms(600)));
    assert_eq!(session.status().detection_time, Some(ms(600)));
}

#[test]
fn every_accepted_packet_restarts_the_detection_timer_in_every_state() {
    for mut session in [down(), init(), up()] {
        let out = receive(&mut session, from_peer_up());
        assert!(timer_set(&out, Timer::Detection).is_some(), "{out:?}");
    }
}

#[test]
fn a_peer_asking_for_no_packets_stops_periodic_transmission() {
    let mut session = up();
    let out = receive(
        &mut session,
        ControlPacket {
            required_min_rx_us: 0,
            ..from_peer_up()
        },
    );
    assert!(out.contains(&Output::CancelTimer(Timer::Transmit)));
    assert!(session.handle(Input::Expired(Timer::Transmit)).is_empty());
    // Polls are still answered.
    let out = receive(
        &mut session,
        ControlPacket {
            required_min_rx_us: 0,
            poll: true,
            ..from_peer_up()
        },
    );
    assert!(sent(&out)[0].final_);
}

#[test]
fn a_peer_in_demand_mode_stops_periodic_transmission_while_both_are_up_except_to_poll() {
    let mut session = up();
    let demand = ControlPacket {
        demand: true,
        ..from_peer_up()
    };
    let out = receive(&mut session, demand.clone());
    assert!(out.contains(&Output::CancelTimer(Timer::Transmit)));
    // A Poll Sequence of this system's own is sent periodically all the same.
    let out = session.handle(Input::SetTimers(Timers::new(ms(500), ms(300), 3).unwrap()));
    assert!(timer_set(&out, Timer::Transmit).is_some());
    assert!(next_periodic(&mut session).poll);
    let out = receive(
        &mut session,
        ControlPacket {
            final_: true,
            ..demand
        },
    );
    assert!(out.contains(&Output::CancelTimer(Timer::Transmit)));
}

#[test]
fn packets_carry_the_session_timers_discriminators_and_a_clear_c_bit() {
    let timers = Timers::new(ms(50), ms(70), 4).unwrap();
    let mut session = up_with(timers);
    let packet = next_periodic(&mut session);
    assert_eq!(
        packet,
        ControlPacket {
            diagnostic: Diagnostic::NoDiagnostic,
            state: State::Up,
            poll: false,
            final_: false,
            control_plane_independent: false,
            demand: false,
            detect_mult: 4,
            my_discriminator: LOCAL,
            your_discriminator: REMOTE,
            desired_min_tx_us: 50_000,
            required_min_rx_us: 70_000,
            required_min_echo_rx_us: 0,
            authentication: None,
        }
    );
}

#[test]
fn the_peer_c_bit_is_reported() {
    let mut session = up();
    receive(
        &mut session,
        ControlPacket {
            control_plane_independent: true,
            ..from_peer_up()
        },
    );
    assert!(session.status().remote_control_plane_independent);
}
