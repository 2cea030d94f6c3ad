//! One BFD session in asynchronous mode (RFC 5880 section 6), without I/O: received
//! packets, timer expiries and administrative commands in; packets to send, timers
//! to set and state changes out. The driver owns the socket and the clocks, and
//! hands in packets already decoded and matched to this session.

use std::time::Duration;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use crate::packet::{ControlPacket, Diagnostic, State};

use super::config::Timers;

/// While the session is not Up, packets go at most once a second (section 6.8.3).
const SLOW_TX_US: u32 = 1_000_000;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Timer {
    /// The next periodic Control packet.
    Transmit,
    /// The remote system has been silent for a Detection Time.
    Detection,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Input {
    /// A packet that decoded cleanly and was matched to this session.
    Received(ControlPacket),
    Expired(Timer),
    /// Hold the session down (section 6.8.16); the peer is told so.
    AdminDown,
    /// Let the session come up again after [`Input::AdminDown`].
    AdminUp,
    /// New local timers; a Poll Sequence announces them while Up (section 6.8.3).
    SetTimers(Timers),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Output {
    Send(ControlPacket),
    /// Fire this timer after this long, replacing any earlier setting.
    SetTimer(Timer, Duration),
    CancelTimer(Timer),
    /// The session moved to `state`, for the reason `diagnostic`.
    StateChanged {
        state: State,
        diagnostic: Diagnostic,
    },
    /// A received packet was discarded by a rule that needs the session.
    Discarded(Discard),
}

/// Discard rules of section 6.8.6 applied by the session.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, thiserror::Error)]
pub enum Discard {
    #[error("the A bit is set and no authentication is configured")]
    Authenticated,
    #[error("Your Discriminator names another session")]
    WrongDiscriminator,
}

/// A snapshot for status displays and the owner.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Status {
    pub state: State,
    /// Why the session last changed state.
    pub diagnostic: Diagnostic,
    pub remote_state: State,
    pub remote_diagnostic: Diagnostic,
    pub local_discriminator: u32,
    /// Zero until the peer is heard, and again after a Detection Time of silence.
    pub remote_discriminator: u32,
    /// The peer's C bit: its BFD survives a restart of its control plane.
    pub remote_control_plane_independent: bool,
    /// Between periodic packets, before jitter; `None` when none are sent.
    pub transmit_interval: Option<Duration>,
    /// How long the peer may be silent, from its last packet.
    pub detection_time: Option<Duration>,
    /// A Poll Sequence is waiting for its Final.
    pub polling: bool,
    /// Times the session went from Up to Down (not counting AdminDown).
    pub flaps: u64,
}

/// The two intervals a packet carries, in microseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Intervals {
    desired_min_tx: u32,
    required_min_rx: u32,
}

/// What the last packet from the peer said (section 6.8.1's bfd.Remote* variables
/// and the fields the Detection Time needs).
#[derive(Debug, Clone)]
struct Remote {
    discriminator: u32,
    state: State,
    diagnostic: Diagnostic,
    demand: bool,
    control_plane_independent: bool,
    /// Starts at 1 µs, so that packets flow before the peer is heard.
    min_rx: u32,
    desired_min_tx: u32,
    detect_mult: u8,
}

/// One session with one peer. See the module documentation.
#[derive(Debug)]
pub struct Session {
    timers: Timers,
    local_discriminator: u32,
    state: State,
    diagnostic: Diagnostic,
    remote: Remote,
    /// Sent in Desired Min TX and Required Min RX now.
    advertised: Intervals,
    /// Used for the transmit interval and the Detection Time: during a Poll
    /// Sequence, a slower transmit rate and a shorter Detection Time wait for the
    /// Final (section 6.8.3).
    in_force: Intervals,
    polling: bool,
    /// The timers changed again during the Poll Sequence: poll once more.
    repoll: bool,
    /// The transmit interval the driver's timer runs with.
    transmitting: Option<u32>,
    detection_time: Option<Duration>,
    flaps: u64,
    /// The jitter's randomness (section 6.8.7), seeded by the owner.
    rng: StdRng,
}

impl Session {
    /// A session in Down state. `local_discriminator` must be nonzero and unique
    /// on this system; `seed` feeds the transmit jitter (fixed in tests).
    pub fn new(timers: Timers, local_discriminator: u32, seed: u64) -> Self {
        let advertised = Intervals {
            desired_min_tx: timers.desired_min_tx_us().max(SLOW_TX_US),
            required_min_rx: timers.required_min_rx_us(),
        };
        Self {
            timers,
            local_discriminator,
            state: State::Down,
            diagnostic: Diagnostic::NoDiagnostic,
            remote: Remote {
                discriminator: 0,
                state: State::Down,
                diagnostic: Diagnostic::NoDiagnostic,
                demand: false,
                control_plane_independent: false,
                min_rx: 1,
                desired_min_tx: 0,
                detect_mult: 0,
            },
            advertised,
            in_force: advertised,
            polling: false,
            repoll: false,
            transmitting: None,
            detection_time: None,
            flaps: 0,
            rng: StdRng::seed_from_u64(seed),
        }
    }

    /// Sends the first packet and starts periodic transmission.
    pub fn start(&mut self) -> Vec<Output> {
        let mut out = vec![Output::Send(self.packet(false))];
        self.sync_transmit(true, &mut out);
        out
    }

    pub fn handle(&mut self, input: Input) -> Vec<Output> {
        let mut out = Vec::new();
        let before = self.state;
        // A periodic packet went out: the next one is a full interval later.
        let mut periodic_sent = false;
        match input {
            Input::Received(packet) => self.receive(packet, &mut out),
            Input::Expired(Timer::Transmit) => {
                if self.transmitting.is_some() {
                    out.push(Output::Send(self.packet(false)));
                    periodic_sent = true;
                }
            }
            Input::Expired(Timer::Detection) => self.detection_time_passed(&mut out),
            Input::AdminDown => {
                if self.state != State::AdminDown {
                    self.set_state(State::AdminDown, Diagnostic::AdministrativelyDown, &mut out);
                    self.stop_detection(&mut out);
                }
            }
            Input::AdminUp => {
                if self.state == State::AdminDown {
                    self.set_state(State::Down, Diagnostic::NoDiagnostic, &mut out);
                }
            }
            Input::SetTimers(timers) => {
                self.timers = timers;
                self.advertise();
            }
        }
        // A new state goes out at once, as BIRD and FRR send theirs: the peer
        // learns of an AdminDown before its Detection Time, still based on the
        // faster rate of Up, passes. A Final sent already carried it.
        let announce = self.state != before
            && self.transmit_interval().is_some()
            && !out.iter().any(|o| matches!(o, Output::Send(_)));
        if announce {
            out.push(Output::Send(self.packet(false)));
            periodic_sent = true;
        }
        self.sync_transmit(periodic_sent, &mut out);
        out
    }

    /// The session is being deleted: it moves to AdminDown and sends one packet
    /// saying so now, out of cycle, since no periodic one will follow (the peer
    /// learns the deletion is no failure, RFC 5882 section 3.2).
    pub fn delete(&mut self) -> Vec<Output> {
        let mut out = self.handle(Input::AdminDown);
        if !out.iter().any(|o| matches!(o, Output::Send(_))) {
            out.push(Output::Send(self.packet(false)));
        }
        out
    }

    pub fn state(&self) -> State {
        self.state
    }

    pub fn status(&self) -> Status {
        Status {
            state: self.state,
            diagnostic: self.diagnostic,
            remote_state: self.remote.state,
            remote_diagnostic: self.remote.diagnostic,
            local_discriminator: self.local_discriminator,
            remote_discriminator: self.remote.discriminator,
            remote_control_plane_independent: self.remote.control_plane_independent,
            transmit_interval: self.transmitting.map(micros),
            detection_time: self.detection_time,
            polling: self.polling,
            flaps: self.flaps,
        }
    }

    /// Section 6.8.6, from "If the A bit is set" on: the packet-only rules were
    /// applied by the decoder and the driver chose this session.
    fn receive(&mut self, packet: ControlPacket, out: &mut Vec<Output>) {
        if packet.authentication.is_some() {
            out.push(Output::Discarded(Discard::Authenticated));
            return;
        }
        if packet.your_discriminator != 0 && packet.your_discriminator != self.local_discriminator {
            out.push(Output::Discarded(Discard::WrongDiscriminator));
            return;
        }
        self.remote = Remote {
            discriminator: packet.my_discriminator,
            state: packet.state,
            diagnostic: packet.diagnostic,
            demand: packet.demand,
            control_plane_independent: packet.control_plane_independent,
            min_rx: packet.required_min_rx_us,
            desired_min_tx: packet.desired_min_tx_us,
            detect_mult: packet.detect_mult,
        };
        if self.polling && packet.final_ {
            self.poll_answered();
        }
        if self.state == State::AdminDown {
            return;
        }
        if packet.state == State::AdminDown {
            if self.state != State::Down {
                self.set_state(State::Down, Diagnostic::NeighborSignaledSessionDown, out);
            }
        } else {
            match (self.state, packet.state) {
                (State::Down, State::Down) => {
                    self.set_state(State::Init, Diagnostic::NoDiagnostic, out);
                }
                (State::Down, State::Init) | (State::Init, State::Init | State::Up) => {
                    self.set_state(State::Up, Diagnostic::NoDiagnostic, out);
                }
                (State::Up, State::Down) => {
                    self.set_state(State::Down, Diagnostic::NeighborSignaledSessionDown, out);
                }
                _ => {}
            }
        }
        if packet.poll {
            out.push(Output::Send(self.packet(true)));
        }
        // Section 6.8.4: the peer's multiplier times the slower of what it sends and
        // what this system can take.
        let interval = self
            .in_force
            .required_min_rx
            .max(self.remote.desired_min_tx);
        let detection = micros(interval) * u32::from(self.remote.detect_mult);
        self.detection_time = Some(detection);
        out.push(Output::SetTimer(Timer::Detection, detection));
    }

    /// Section 6.8.4, and section 6.8.1's rule that a Detection Time of silence
    /// forgets the remote discriminator.
    fn detection_time_passed(&mut self, out: &mut Vec<Output>) {
        self.detection_time = None;
        self.remote.discriminator = 0;
        if matches!(self.state, State::Init | State::Up) {
            self.set_state(State::Down, Diagnostic::ControlDetectionTimeExpired, out);
        }
    }

    fn stop_detection(&mut self, out: &mut Vec<Output>) {
        if self.detection_time.take().is_some() {
            out.push(Output::CancelTimer(Timer::Detection));
        }
    }

    fn set_state(&mut self, state: State, diagnostic: Diagnostic, out: &mut Vec<Output>) {
        if self.state == State::Up && state == State::Down {
            self.flaps += 1;
        }
        self.state = state;
        self.diagnostic = diagnostic;
        self.advertise();
        out.push(Output::StateChanged { state, diagnostic });
    }

    /// Brings the advertised intervals in line with the timers and the state: at
    /// least a second between packets while not Up, and a Poll Sequence for any
    /// change while Up (section 6.8.3).
    fn advertise(&mut self) {
        let up = self.state == State::Up;
        let wanted = Intervals {
            desired_min_tx: if up {
                self.timers.desired_min_tx_us()
            } else {
                self.timers.desired_min_tx_us().max(SLOW_TX_US)
            },
            required_min_rx: self.timers.required_min_rx_us(),
        };
        if wanted == self.advertised {
            return;
        }
        self.advertised = wanted;
        if up {
            // Faster sending and slower receiving may start at once; the
            // opposite waits for the Final.
            self.in_force = Intervals {
                desired_min_tx: self.in_force.desired_min_tx.min(wanted.desired_min_tx),
                required_min_rx: self.in_force.required_min_rx.max(wanted.required_min_rx),
            };
            self.repoll = self.polling;
            self.polling = true;
        } else {
            self.in_force = wanted;
            self.polling = false;
            self.repoll = false;
        }
    }

    /// A Final ends the Poll Sequence (section 6.5); the advertised values are now
    /// known to the peer, unless they changed while it was answering.
    fn poll_answered(&mut self) {
        if self.repoll {
            self.repoll = false;
        } else {
            self.polling = false;
            self.in_force = self.advertised;
        }
    }

    /// The interval between periodic packets (section 6.8.7): the slower of this
    /// system's Desired Min TX and the peer's Required Min RX; none at all when the
    /// peer asks for none, or is in Demand mode and no Poll Sequence is running.
    fn transmit_interval(&self) -> Option<u32> {
        let remote_demand =
            self.remote.demand && self.state == State::Up && self.remote.state == State::Up;
        (self.remote.min_rx != 0 && (!remote_demand || self.polling))
            .then(|| self.in_force.desired_min_tx.max(self.remote.min_rx))
    }

    /// Restarts the transmit timer after a periodic packet or when the interval
    /// changed, or stops it.
    fn sync_transmit(&mut self, periodic_sent: bool, out: &mut Vec<Output>) {
        let interval = self.transmit_interval();
        let changed = interval != self.transmitting;
        self.transmitting = interval;
        match interval {
            Some(interval) if changed || periodic_sent => {
                let next = self.jittered(interval);
                out.push(Output::SetTimer(Timer::Transmit, next));
            }
            None if changed => out.push(Output::CancelTimer(Timer::Transmit)),
            _ => {}
        }
    }

    /// An interval reduced by up to 25 % at random; by 10 to 25 % when Detect Mult
    /// is 1, so that one late packet never looks lost (section 6.8.7).
    fn jittered(&mut self, interval_us: u32) -> Duration {
        let interval = u64::from(interval_us);
        let least = if self.timers.detect_mult() == 1 {
            interval / 10
        } else {
            0
        };
        Duration::from_micros(interval - self.rng.random_range(least..=interval / 4))
    }

    /// This system's packet: a periodic one (P while polling) or a Final.
    fn packet(&self, final_: bool) -> ControlPacket {
        ControlPacket {
            diagnostic: self.diagnostic,
            state: self.state,
            poll: self.polling && !final_,
            final_,
            // tabby's BFD runs in the agent's process and dies with it.
            control_plane_independent: false,
            demand: false,
            detect_mult: self.timers.detect_mult(),
            my_discriminator: self.local_discriminator,
            your_discriminator: self.remote.discriminator,
            desired_min_tx_us: self.advertised.desired_min_tx,
            required_min_rx_us: self.advertised.required_min_rx,
            required_min_echo_rx_us: 0,
            authentication: None,
        }
    }
}

fn micros(us: u32) -> Duration {
    Duration::from_micros(u64::from(us))
}
