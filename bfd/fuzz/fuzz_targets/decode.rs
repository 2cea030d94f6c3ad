//! Decode of arbitrary bytes as a BFD Control packet: whatever decodes must encode
//! to exactly Length bytes that decode to the same packet, and a session handed the
//! packet (as if demultiplexed to it, in each state it can be in) must not panic.
#![no_main]

use bfd::packet::ControlPacket;
use bfd::session::{Input, Session, Timer, Timers};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(packet) = ControlPacket::decode(data) else {
        return;
    };
    let encoded = packet.to_bytes();
    assert_eq!(encoded.len(), packet.len());
    assert_eq!(usize::from(encoded[3]), encoded.len());
    assert_eq!(ControlPacket::decode(&encoded).as_ref(), Ok(&packet));
    let local = packet.your_discriminator.max(1);
    for prelude in [&[][..], &[Input::AdminDown][..], &[Input::Expired(Timer::Detection)][..]] {
        let mut session = Session::new(Timers::default(), local, u64::from(local));
        session.start();
        for input in prelude {
            session.handle(input.clone());
        }
        session.handle(Input::Received(packet.clone()));
        session.handle(Input::Received(packet.clone()));
        session.handle(Input::Expired(Timer::Transmit));
        session.handle(Input::Expired(Timer::Detection));
    }
});
