//! The session without sockets or clocks: every transition of RFC 5880 section 6.2,
//! the Poll Sequence rules, timers and jitter.

mod poll_final;
mod timing;
mod transitions;

use std::time::Duration;

use super::*;
use crate::packet::{ControlPacket, Diagnostic, State};

const LOCAL: u32 = 0x1111_1111;
const REMOTE: u32 = 0x2222_2222;
const SEED: u64 = 7;

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

/// A packet from the peer in `state`, knowing this session's discriminator unless
/// it is Down or AdminDown; 1 s / 300 ms × 3 as a peer not yet Up sends.
fn from_peer(state: State) -> ControlPacket {
    ControlPacket {
        state,
        detect_mult: 3,
        my_discriminator: REMOTE,
        your_discriminator: if matches!(state, State::Down | State::AdminDown) {
            0
        } else {
            LOCAL
        },
        desired_min_tx_us: 1_000_000,
        required_min_rx_us: 300_000,
        ..ControlPacket::default()
    }
}

/// The peer's packet once it is Up too: 300 ms both ways.
fn from_peer_up() -> ControlPacket {
    ControlPacket {
        desired_min_tx_us: 300_000,
        ..from_peer(State::Up)
    }
}

fn started(timers: Timers) -> Session {
    let mut session = Session::new(timers, LOCAL, SEED);
    session.start();
    session
}

fn down() -> Session {
    started(Timers::default())
}

fn init() -> Session {
    let mut session = down();
    session.handle(Input::Received(from_peer(State::Down)));
    assert_eq!(session.state(), State::Init);
    session
}

/// Up, with the Poll Sequence that going Up started already answered.
fn up() -> Session {
    up_with(Timers::default())
}

fn up_with(timers: Timers) -> Session {
    let mut session = started(timers);
    session.handle(Input::Received(from_peer(State::Init)));
    assert_eq!(session.state(), State::Up);
    session.handle(Input::Received(ControlPacket {
        final_: true,
        ..from_peer_up()
    }));
    assert!(!session.status().polling);
    session
}

fn receive(session: &mut Session, packet: ControlPacket) -> Vec<Output> {
    session.handle(Input::Received(packet))
}

fn state_change(out: &[Output]) -> Option<(State, Diagnostic)> {
    out.iter().find_map(|o| match o {
        Output::StateChanged { state, diagnostic } => Some((*state, *diagnostic)),
        _ => None,
    })
}

fn sent(out: &[Output]) -> Vec<&ControlPacket> {
    out.iter()
        .filter_map(|o| match o {
            Output::Send(packet) => Some(packet),
            _ => None,
        })
        .collect()
}

fn timer_set(out: &[Output], which: Timer) -> Option<Duration> {
    out.iter().find_map(|o| match o {
        Output::SetTimer(timer, after) if *timer == which => Some(*after),
        _ => None,
    })
}

/// The next periodic packet.
fn next_periodic(session: &mut Session) -> ControlPacket {
    let out = session.handle(Input::Expired(Timer::Transmit));
    let packets = sent(&out);
    assert_eq!(packets.len(), 1, "{out:?}");
    packets[0].clone()
}
