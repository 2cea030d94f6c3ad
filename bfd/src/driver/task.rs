//! One session's task: feeds its [`Session`] the packets the dispatcher routes to
//! it, its timers' expiries and the owner's commands, and carries out what the
//! session asks: send, set timers, report state changes.

use tokio::net::UdpSocket;
use tokio::sync::{mpsc, watch};
use tracing::{debug, info};

use crate::packet::ControlPacket;
use crate::session::{Input, Output, Session, Status, Timer};

use super::timer::Alarm;
use super::{Command, Event, SessionKey};

#[derive(Debug)]
pub(super) struct SessionTask {
    pub key: SessionKey,
    pub session: Session,
    /// Bound to the session's source port, connected to the peer.
    pub socket: UdpSocket,
    pub packets: mpsc::Receiver<ControlPacket>,
    pub commands: mpsc::UnboundedReceiver<Command>,
    pub events: mpsc::UnboundedSender<Event>,
    pub status: watch::Sender<Status>,
}

/// Runs until the handle is dropped (the session says goodbye) or the dispatcher
/// is gone (it stops without a word).
pub(super) async fn run(mut task: SessionTask) {
    let mut transmit = Alarm::new();
    let mut detection = Alarm::new();
    let out = task.session.start();
    task.apply(out, &mut transmit, &mut detection).await;
    loop {
        let input = tokio::select! {
            // Commands first: a deleted session's packet queue closes right after
            // its command channel, and the goodbye must win. Timers before
            // packets: a flood of packets must not hold back this system's own.
            biased;
            command = task.commands.recv() => match command {
                Some(Command::AdminDown) => Input::AdminDown,
                Some(Command::AdminUp) => Input::AdminUp,
                Some(Command::SetTimers(timers)) => Input::SetTimers(timers),
                None => {
                    for output in task.session.delete() {
                        if let Output::Send(packet) = output {
                            task.send(&packet).await;
                        }
                    }
                    return;
                }
            },
            () = transmit.fired() => Input::Expired(Timer::Transmit),
            () = detection.fired() => Input::Expired(Timer::Detection),
            packet = task.packets.recv() => match packet {
                Some(packet) => Input::Received(packet),
                None => return,
            },
        };
        let out = task.session.handle(input);
        task.apply(out, &mut transmit, &mut detection).await;
    }
}

impl SessionTask {
    async fn apply(&mut self, out: Vec<Output>, transmit: &mut Alarm, detection: &mut Alarm) {
        for output in out {
            match output {
                Output::Send(packet) => self.send(&packet).await,
                Output::SetTimer(Timer::Transmit, after) => transmit.arm(after),
                Output::SetTimer(Timer::Detection, after) => detection.arm(after),
                Output::CancelTimer(Timer::Transmit) => transmit.cancel(),
                Output::CancelTimer(Timer::Detection) => detection.cancel(),
                Output::StateChanged { state, diagnostic } => {
                    // The status first: whoever hears of the change finds it there.
                    let status = self.session.status();
                    self.status.send_replace(status.clone());
                    info!(session = %self.key, %state, %diagnostic, remote_state = %status.remote_state, "BFD session state changed");
                    let _ = self.events.send(Event {
                        key: self.key,
                        state,
                        diagnostic,
                        remote_state: status.remote_state,
                        remote_control_plane_independent: status.remote_control_plane_independent,
                    });
                }
                Output::Discarded(reason) => {
                    debug!(session = %self.key, %reason, "BFD packet discarded");
                }
            }
        }
        self.status.send_replace(self.session.status());
    }

    /// Sends `packet`; a failure (no route, the peer's port unreachable) is the
    /// network's loss, which the Detection Time covers.
    async fn send(&self, packet: &ControlPacket) {
        if let Err(error) = self.socket.send(&packet.to_bytes()).await {
            debug!(session = %self.key, %error, "sending a BFD packet failed");
        }
    }
}
