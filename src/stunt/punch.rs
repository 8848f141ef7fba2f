//! The two STUNT #2 roles: App-A, the caller ([`Role::Caller`]), and App-B, the callee
//! ([`Role::Callee`]), as one machine, [`Punch`].
//!
//! The machine does not care how signals travel. With the proxy (C steps) the host wraps each
//! [`Output::Signal`] in a [`Msg::Relay`](super::wire::Msg::Relay) on ConnectionA/ConnectionB and
//! feeds every relayed signal back as [`Input::Signal`]; over iP2P (D steps) the host puts the
//! caller's [`Signal::Mapping`] in the request SMS (D.2) and the callee's in the answer (D.4). The
//! only difference is [`Exchange`]: with the proxy the caller asks first (C.1) and waits for the
//! acceptance (C.2); over SMS the request *is* the mapping.
//!
//! Order of the callee's last steps: the callee sends its low-TTL SYN (C.7/D.5) *before* it sends
//! its mapping (C.6/D.4), so by the time the caller learns the callee's public address, NAT-B
//! already holds the mapping and the caller's SYN (C.8/D.6), sent after a further `wait`, cannot
//! arrive before it. The paper sends the mapping first and relies on the wait alone.
//!
//! ```
//! use ip2p::machine::Machine;
//! use ip2p::stunt::punch::{Exchange, Input, Output, Punch, PunchConfig};
//! use ip2p::stunt::wire::{Signal, SessionId};
//! use ip2p::Time;
//! let servers = ["80.100.1.254:3478".parse().unwrap(), "80.100.1.254:3479".parse().unwrap()];
//! let mut a = Punch::caller(PunchConfig::default(), Exchange::Proxy, SessionId(1),
//!                           "10.0.1.2:40000".parse().unwrap(), &servers).unwrap();
//! a.handle(Time::ZERO, Input::Start).unwrap();
//! assert_eq!(a.poll(), Some(Output::Signal(Signal::Request { session: SessionId(1) })));
//! ```

use alloc::collections::VecDeque;
use core::time::Duration;

use super::predict::{self, PredictConfig, Prediction, Predictor};
use super::wire::{Mapping, SessionId, Signal};
use super::StuntError;
use crate::addr::TransportAddr;
use crate::machine::Machine;
use crate::time::Time;

/// App-A or App-B.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Role {
    /// App-A: asks, waits, and sends the SYN that completes the connection (C.8/D.6).
    Caller,
    /// App-B: accepts, listens, and sends the low-TTL SYN (C.7/D.5).
    Callee,
}

/// How the mappings travel.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Exchange {
    /// Through the proxy server (C.1–C.6): request, acceptance, then mappings.
    Proxy,
    /// Through iP2P control SMS (D.2/D.4): the caller's mapping is the request.
    Sms,
}

/// Timing of one attempt.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct PunchConfig {
    /// Port prediction.
    pub predict: PredictConfig,
    /// C.8/D.6: how long the caller waits after learning the callee's mapping before its SYN.
    pub wait: Duration,
    /// How long either side waits for the other's next signal.
    pub signal_timeout: Duration,
    /// How long from the SYN (either side's) until the connection must be established.
    pub punch_timeout: Duration,
}

impl Default for PunchConfig {
    fn default() -> Self {
        PunchConfig {
            predict: PredictConfig::default(),
            wait: Duration::from_millis(50),
            signal_timeout: Duration::from_secs(10),
            punch_timeout: Duration::from_secs(3),
        }
    }
}

/// Which socket carried the connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Via {
    /// The caller's connect.
    Connect,
    /// The callee's punching socket (simultaneous open: kernels where the ICMP for the low-TTL
    /// SYN is a soft error).
    PunchingSocket,
    /// The callee's listener (kernels that abort the punching socket on the ICMP).
    Listener,
}

/// A connection set up.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Established {
    /// The attempt.
    pub session: SessionId,
    /// Our reserved private address.
    pub local: TransportAddr,
    /// The peer's public address we connected to / heard from.
    pub peer: TransportAddr,
    /// Which socket.
    pub via: Via,
}

/// What happens to a [`Punch`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Input {
    /// The caller's application starts the attempt (C.1/D.1). Ignored by the callee.
    Start,
    /// A signal from the peer (relayed by the proxy or carried by SMS).
    Signal(Signal),
    /// Something happened to a prediction probe.
    Probe(predict::Input),
    /// The punching connection is established (caller: its connect; callee: the punching socket
    /// or the listener).
    Established(Via),
    /// The callee's punching socket was aborted (older kernels do this on the ICMP
    /// time-exceeded); the listener still waits.
    PunchingSocketAborted,
    /// The caller's connect failed (reset, refused, unreachable).
    ConnectFailed,
}

/// What a [`Punch`] asks its host to do.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Output {
    /// Send this signal to the peer.
    Signal(Signal),
    /// Carry out a prediction probe action (never [`predict::Output::Done`]).
    Probe(predict::Output),
    /// Our prediction (for the host's information; the mapping also goes out as a signal).
    Predicted(Prediction),
    /// Callee (C.7/D.5): listen on `local` (address and port reuse) and, from the same `local`,
    /// send a SYN to `to` with IP TTL `ttl`; restore the TTL to 64 as soon as the SYN is out.
    /// Then report whichever of the two sockets gets established.
    ListenAndSyn {
        /// The reserved private address.
        local: TransportAddr,
        /// The caller's predicted public address.
        to: TransportAddr,
        /// The measured hop count.
        ttl: u8,
    },
    /// Caller (C.8/D.6): connect from `local` (address and port reuse) to `to`.
    Connect {
        /// The reserved private address.
        local: TransportAddr,
        /// The callee's predicted public address.
        to: TransportAddr,
    },
    /// The attempt is over; the host closes whatever it still holds for it (probe, listener and
    /// punching sockets that did not win).
    Done(Result<Established, StuntError>),
}

/// Where an attempt is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Phase {
    /// Nothing yet.
    Idle,
    /// Caller: request sent (C.1), waiting for the acceptance (C.2).
    Requested,
    /// Predicting our mapping (C.3/C.4, D.1/D.3).
    Predicting,
    /// Our mapping is known; waiting for the peer's.
    AwaitMapping,
    /// Caller: waiting before its SYN (C.8/D.6).
    Waiting,
    /// SYN out; waiting for the connection.
    Punching,
    /// Finished.
    Done,
}

/// Why [`Punch::handle`] rejected an input.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum PunchInputError {
    /// A signal for another attempt.
    #[error("signal for session {got:?}, this attempt is {want:?}")]
    WrongSession {
        /// The signal's session.
        got: SessionId,
        /// Ours.
        want: SessionId,
    },
    /// Not expected in this phase.
    #[error("{what} not expected while {phase:?}")]
    Unexpected {
        /// What came.
        what: &'static str,
        /// Where the attempt was.
        phase: Phase,
    },
    /// The probe input was rejected by the predictor.
    #[error("probe input rejected: {0}")]
    Probe(#[from] predict::PredictInputError),
}

/// One STUNT #2 attempt, caller or callee side.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Punch {
    role: Role,
    exchange: Exchange,
    config: PunchConfig,
    session: Option<SessionId>,
    local: TransportAddr,
    predictor: Predictor,
    prediction: Option<Prediction>,
    peer: Option<Mapping>,
    phase: Phase,
    deadline: Option<Time>,
    out: VecDeque<Output>,
}

impl Punch {
    /// App-A for attempt `session` from the reserved address `local`.
    pub fn caller(
        config: PunchConfig,
        exchange: Exchange,
        session: SessionId,
        local: TransportAddr,
        servers: &[TransportAddr],
    ) -> Result<Self, StuntError> {
        Self::new(
            Role::Caller,
            config,
            exchange,
            Some(session),
            local,
            servers,
        )
    }

    /// App-B on the reserved address `local`; it takes the session of the first signal.
    pub fn callee(
        config: PunchConfig,
        exchange: Exchange,
        local: TransportAddr,
        servers: &[TransportAddr],
    ) -> Result<Self, StuntError> {
        Self::new(Role::Callee, config, exchange, None, local, servers)
    }

    fn new(
        role: Role,
        config: PunchConfig,
        exchange: Exchange,
        session: Option<SessionId>,
        local: TransportAddr,
        servers: &[TransportAddr],
    ) -> Result<Self, StuntError> {
        Ok(Punch {
            role,
            exchange,
            config,
            session,
            local,
            predictor: Predictor::new(config.predict, local, servers)?,
            prediction: None,
            peer: None,
            phase: Phase::Idle,
            deadline: None,
            out: VecDeque::new(),
        })
    }

    /// The role.
    pub fn role(&self) -> Role {
        self.role
    }
    /// Where the attempt is.
    pub fn phase(&self) -> Phase {
        self.phase
    }
    /// Our prediction, once made.
    pub fn prediction(&self) -> Option<Prediction> {
        self.prediction
    }
    /// The peer's mapping, once received.
    pub fn peer_mapping(&self) -> Option<Mapping> {
        self.peer
    }
    /// The attempt's session, once known.
    pub fn session(&self) -> Option<SessionId> {
        self.session
    }

    fn fail(&mut self, e: StuntError, tell_peer: bool) {
        if let (true, Some(session)) = (tell_peer, self.session) {
            self.out
                .push_back(Output::Signal(Signal::Abort { session }));
        }
        self.phase = Phase::Done;
        self.deadline = None;
        self.out.push_back(Output::Done(Err(e)));
    }

    fn start_predicting(&mut self, now: Time) {
        self.phase = Phase::Predicting;
        self.deadline = None;
        // Idle → Start always succeeds on a fresh predictor.
        if self.predictor.handle(now, predict::Input::Start).is_ok() {
            self.drain_predictor(now);
        }
    }

    fn drain_predictor(&mut self, now: Time) {
        while let Some(o) = self.predictor.poll() {
            match o {
                predict::Output::Done(Ok(p)) => {
                    self.prediction = Some(p);
                    self.out.push_back(Output::Predicted(p));
                    self.predicted(now);
                }
                predict::Output::Done(Err(e)) => self.fail(e, true),
                other => self.out.push_back(Output::Probe(other)),
            }
        }
    }

    fn my_mapping(&self) -> Option<Signal> {
        Some(Signal::Mapping {
            session: self.session?,
            mapping: self.prediction?.mapping(),
        })
    }

    /// Our prediction has just been made.
    fn predicted(&mut self, now: Time) {
        match self.role {
            Role::Caller => {
                if let Some(s) = self.my_mapping() {
                    self.out.push_back(Output::Signal(s)); // C.5 / D.2
                }
                self.phase = Phase::AwaitMapping;
                self.deadline = Some(now + self.config.signal_timeout);
                if self.peer.is_some() {
                    self.start_wait(now);
                }
            }
            Role::Callee => {
                if self.peer.is_some() {
                    self.punch_callee(now);
                } else {
                    self.phase = Phase::AwaitMapping;
                    self.deadline = Some(now + self.config.signal_timeout);
                }
            }
        }
    }

    fn start_wait(&mut self, now: Time) {
        self.phase = Phase::Waiting;
        self.deadline = Some(now + self.config.wait);
    }

    /// C.7/D.5 then C.6/D.4.
    fn punch_callee(&mut self, now: Time) {
        let (Some(p), Some(peer)) = (self.prediction, self.peer) else {
            return;
        };
        self.out.push_back(Output::ListenAndSyn {
            local: self.local,
            to: peer.public,
            ttl: p.ttl,
        });
        if let Some(s) = self.my_mapping() {
            self.out.push_back(Output::Signal(s));
        }
        self.phase = Phase::Punching;
        self.deadline = Some(now + self.config.punch_timeout);
    }

    fn on_signal(&mut self, now: Time, s: Signal) -> Result<(), PunchInputError> {
        let got = s.session();
        match self.session {
            Some(want) if want != got => return Err(PunchInputError::WrongSession { got, want }),
            _ => {}
        }
        let unexpected = |phase| PunchInputError::Unexpected {
            what: "signal",
            phase,
        };
        match (self.role, self.phase, s) {
            (_, Phase::Done, _) => Err(unexpected(self.phase)),
            // D steps: the caller's mapping is its request, so a caller that fails before it has
            // one (an unpredictable NAT) tells a callee that knows of no attempt yet; that ends
            // the attempt on both sides (EveryAttemptEnds; found by the `stunt_roles` fuzzer)
            (Role::Callee, Phase::Idle, Signal::Abort { session })
                if self.session.is_none() && self.exchange == Exchange::Sms =>
            {
                self.session = Some(session);
                self.fail(StuntError::PeerAborted, false);
                Ok(())
            }
            (_, Phase::Idle, Signal::Abort { .. }) if self.session.is_none() => {
                Err(unexpected(self.phase))
            }
            (_, _, Signal::Abort { .. }) => {
                self.fail(StuntError::PeerAborted, false);
                Ok(())
            }
            (Role::Caller, Phase::Requested, Signal::Accept { .. }) => {
                self.start_predicting(now); // C.3
                Ok(())
            }
            (Role::Caller, Phase::Requested, Signal::Reject { .. }) => {
                self.fail(StuntError::Rejected, false);
                Ok(())
            }
            (
                Role::Caller,
                Phase::Predicting | Phase::AwaitMapping,
                Signal::Mapping { mapping, .. },
            ) if self.peer.is_none() => {
                self.peer = Some(mapping); // C.6 / D.4
                if self.phase == Phase::AwaitMapping {
                    self.start_wait(now);
                }
                Ok(())
            }
            (Role::Callee, Phase::Idle, Signal::Request { session })
                if self.exchange == Exchange::Proxy =>
            {
                self.session = Some(session);
                self.out
                    .push_back(Output::Signal(Signal::Accept { session })); // C.2
                self.start_predicting(now); // C.4
                Ok(())
            }
            (Role::Callee, Phase::Idle, Signal::Mapping { session, mapping })
                if self.exchange == Exchange::Sms =>
            {
                self.session = Some(session);
                self.peer = Some(mapping); // D.3
                self.start_predicting(now);
                Ok(())
            }
            (
                Role::Callee,
                Phase::Predicting | Phase::AwaitMapping,
                Signal::Mapping { mapping, .. },
            ) if self.peer.is_none() => {
                self.peer = Some(mapping); // C.5
                if self.phase == Phase::AwaitMapping {
                    self.punch_callee(now);
                }
                Ok(())
            }
            _ => Err(unexpected(self.phase)),
        }
    }
}

impl Machine for Punch {
    type Input = Input;
    type Output = Output;
    type Error = PunchInputError;

    fn handle(&mut self, now: Time, input: Input) -> Result<(), PunchInputError> {
        let unexpected = |what, phase| PunchInputError::Unexpected { what, phase };
        match input {
            Input::Start => match (self.role, self.phase, self.session) {
                (Role::Caller, Phase::Idle, Some(session)) => {
                    match self.exchange {
                        Exchange::Proxy => {
                            self.out
                                .push_back(Output::Signal(Signal::Request { session })); // C.1
                            self.phase = Phase::Requested;
                            self.deadline = Some(now + self.config.signal_timeout);
                        }
                        Exchange::Sms => self.start_predicting(now), // D.1
                    }
                    Ok(())
                }
                _ => Err(unexpected("start", self.phase)),
            },
            Input::Signal(s) => self.on_signal(now, s),
            Input::Probe(p) => {
                if self.phase != Phase::Predicting {
                    return Err(unexpected("probe input", self.phase));
                }
                self.predictor.handle(now, p)?;
                self.drain_predictor(now);
                Ok(())
            }
            Input::Established(via) => {
                let ok = matches!(
                    (self.role, via),
                    (Role::Caller, Via::Connect)
                        | (Role::Callee, Via::PunchingSocket | Via::Listener)
                );
                match (self.phase, self.session, self.peer) {
                    (Phase::Punching, Some(session), Some(peer)) if ok => {
                        self.phase = Phase::Done;
                        self.deadline = None;
                        self.out.push_back(Output::Done(Ok(Established {
                            session,
                            local: self.local,
                            peer: peer.public,
                            via,
                        })));
                        Ok(())
                    }
                    _ => Err(unexpected("established", self.phase)),
                }
            }
            Input::PunchingSocketAborted => match (self.role, self.phase) {
                (Role::Callee, Phase::Punching) => Ok(()), // the listener still waits
                _ => Err(unexpected("punching socket aborted", self.phase)),
            },
            Input::ConnectFailed => match (self.role, self.phase) {
                (Role::Caller, Phase::Punching) => {
                    self.fail(StuntError::ConnectFailed, true);
                    Ok(())
                }
                _ => Err(unexpected("connect failed", self.phase)),
            },
        }
    }

    fn poll(&mut self) -> Option<Output> {
        self.out.pop_front()
    }

    fn poll_timeout(&self) -> Option<Time> {
        match self.phase {
            Phase::Predicting => self.predictor.poll_timeout(),
            Phase::Done | Phase::Idle => None,
            _ => self.deadline,
        }
    }

    fn handle_timeout(&mut self, now: Time) {
        if self.phase == Phase::Predicting {
            self.predictor.handle_timeout(now);
            self.drain_predictor(now);
            return;
        }
        match self.deadline {
            Some(d) if d <= now => {}
            _ => return,
        }
        match self.phase {
            Phase::Requested | Phase::AwaitMapping => self.fail(StuntError::PeerTimeout, true),
            Phase::Waiting => {
                if let Some(peer) = self.peer {
                    self.out.push_back(Output::Connect {
                        local: self.local,
                        to: peer.public,
                    }); // C.8 / D.6
                    self.phase = Phase::Punching;
                    self.deadline = Some(now + self.config.punch_timeout);
                }
            }
            Phase::Punching => self.fail(StuntError::PunchTimeout, true),
            Phase::Idle | Phase::Predicting | Phase::Done => self.deadline = None,
        }
    }
}
