//! Port prediction, both sides (C.3, C.4, D.1, D.3).
//!
//! The client, [`Predictor`], first measures how many hops away the prediction server is by
//! opening connections to it with IP TTL 1, 2, … until one connects (a connection that dies on
//! the way comes back as an ICMP time-exceeded, [`ProbeFailure::TimeExceeded`], or not at all);
//! that TTL is the one the low-TTL SYN of C.7/D.5 uses, so the SYN goes exactly as far as the
//! prediction server's first router and no further. Then it sends `probes` consecutive probes
//! from the reserved private port, each to another address of the prediction server, learns the
//! public source address each arrived from, and predicts the mapping the next connection from that
//! port will get:
//!
//! - every probe saw the same public address: [`Confidence::Exact`] (endpoint-independent mapping;
//!   port-preserving or not);
//! - the public ports advance by the same small step `d`: [`Confidence::Delta`], the next is the
//!   last plus `d`;
//! - anything else: [`StuntError::Unpredictable`].
//!
//! The server, [`PredictionServer`], answers each probe with the source address it saw.
//!
//! ```
//! use ip2p::machine::Machine;
//! use ip2p::stunt::predict::{Confidence, Input, Output, PredictConfig, Predictor};
//! use ip2p::stunt::wire::Msg;
//! use ip2p::{Time, TransportAddr};
//!
//! let local: TransportAddr = "10.0.2.2:40000".parse().unwrap();
//! let servers: Vec<TransportAddr> =
//!     ["80.100.2.254:3478", "80.100.2.254:3479", "80.100.2.254:3480"].map(|s| s.parse().unwrap()).to_vec();
//! let mut p = Predictor::new(PredictConfig::default(), local, &servers).unwrap();
//! p.handle(Time::ZERO, Input::Start).unwrap();
//! // A stand-in network: TTL 1 dies at the NAT, TTL 2 reaches the server; the NAT keeps the port.
//! while let Some(o) = p.poll() {
//!     match o {
//!         Output::Open { probe, ttl, .. } if ttl == 1 => p.handle(Time::ZERO, Input::TimeExceeded { probe }).unwrap(),
//!         Output::Open { probe, .. } => p.handle(Time::ZERO, Input::Connected { probe }).unwrap(),
//!         Output::Send { probe, msg: Msg::Probe { seq } } => {
//!             let addr = "80.100.2.1:40000".parse().unwrap();
//!             p.handle(Time::ZERO, Input::Answer { probe, msg: Msg::Observed { seq, addr } }).unwrap()
//!         }
//!         Output::Done(r) => {
//!             let pred = r.unwrap();
//!             assert_eq!(pred.public, "80.100.2.1:40000".parse().unwrap());
//!             assert_eq!((pred.confidence, pred.ttl), (Confidence::Exact, 2));
//!         }
//!         _ => {}
//!     }
//! }
//! ```

use alloc::collections::VecDeque;
use alloc::vec::Vec;
use core::net::SocketAddr;
use core::time::Duration;

use super::wire::Msg;
use super::StuntError;
use crate::addr::TransportAddr;
use crate::machine::Machine;
use crate::time::Time;

/// Most probes of one prediction.
pub const MAX_PROBES: u8 = 8;
/// Most prediction-server addresses.
pub const MAX_SERVERS: usize = 8;
/// Largest port step [`Confidence::Delta`] accepts.
pub const MAX_DELTA: i32 = 64;

/// How a prediction is made.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct PredictConfig {
    /// Consecutive probes from the reserved port (2 to [`MAX_PROBES`]); each goes to the next
    /// server address, so give at least this many addresses (a second connection between the same
    /// two endpoints would collide with the first one's TIME-WAIT).
    pub probes: u8,
    /// Highest TTL tried when measuring the hop count.
    pub max_ttl: u8,
    /// How long one probe may take (connect plus answer) before it counts as lost.
    pub probe_timeout: Duration,
    /// Use this TTL for the low-TTL SYN instead of measuring it.
    pub ttl: Option<u8>,
}

impl Default for PredictConfig {
    fn default() -> Self {
        PredictConfig {
            probes: 3,
            max_ttl: 8,
            probe_timeout: Duration::from_millis(500),
            ttl: None,
        }
    }
}

/// How sure a prediction is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub enum Confidence {
    /// Every probe from the port got the same public address: the next connection gets it too.
    Exact,
    /// The public port moved by the same step between every two probes: the next one is
    /// predicted one step further.
    Delta(i16),
}

/// A predicted mapping and the TTL to punch with.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct Prediction {
    /// The reserved private transport address (IPa:Porta).
    pub local: TransportAddr,
    /// The predicted public transport address (IPA:PortA).
    pub public: TransportAddr,
    /// How sure.
    pub confidence: Confidence,
    /// The TTL for the low-TTL SYN of C.7/D.5: the hop count to the prediction server.
    pub ttl: u8,
}

impl Prediction {
    /// The mapping to send to the peer (C.5/C.6, D.2/D.4).
    pub fn mapping(&self) -> super::wire::Mapping {
        super::wire::Mapping {
            private: self.local,
            public: self.public,
        }
    }
}

/// One probe connection, numbered by the predictor.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ProbeId(pub u8);

/// Why a probe connection did not connect.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ProbeFailure {
    /// An ICMP time-exceeded came back: the TTL was too small.
    TimeExceeded,
    /// Refused, reset, unreachable or a local error.
    Failed,
}

/// What happens to a [`Predictor`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Input {
    /// Begin.
    Start,
    /// Probe `probe` connected.
    Connected {
        /// Which.
        probe: ProbeId,
    },
    /// Probe `probe`'s SYN died on the way (ICMP time exceeded).
    TimeExceeded {
        /// Which.
        probe: ProbeId,
    },
    /// Probe `probe` failed otherwise (refused, reset, local error, closed before answering).
    Failed {
        /// Which.
        probe: ProbeId,
    },
    /// A message arrived on probe `probe`'s connection.
    Answer {
        /// Which.
        probe: ProbeId,
        /// The message.
        msg: Msg,
    },
}

/// What a [`Predictor`] asks its host to do.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Output {
    /// Open TCP connection `probe` from `from` (port 0: any port) to `to` with IP TTL `ttl`.
    /// A `from` with a non-zero port is the reserved port: bind it with address and port reuse.
    Open {
        /// Which probe.
        probe: ProbeId,
        /// Local address.
        from: TransportAddr,
        /// The prediction server.
        to: TransportAddr,
        /// IP TTL of the SYN.
        ttl: u8,
    },
    /// Send `msg` on probe `probe`'s connection.
    Send {
        /// Which probe.
        probe: ProbeId,
        /// What.
        msg: Msg,
    },
    /// Close probe `probe`'s connection (also for a probe still connecting).
    Close {
        /// Which probe.
        probe: ProbeId,
    },
    /// The prediction, or why there is none. The predictor is finished.
    Done(Result<Prediction, StuntError>),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
enum Phase {
    Idle,
    /// Measuring hops: probe with this TTL is out.
    Hops {
        ttl: u8,
    },
    /// Port probe `seq` is out; `hops` measured.
    Ports {
        seq: u8,
        ttl: u8,
        answered: bool,
    },
    Done,
}

/// The client side of port prediction (C.3/C.4, D.1/D.3). One predictor makes one prediction.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Predictor {
    config: PredictConfig,
    local: TransportAddr,
    servers: Vec<TransportAddr>,
    phase: Phase,
    deadline: Option<Time>,
    next_probe: u8,
    current: Option<ProbeId>,
    observed: Vec<TransportAddr>,
    out: VecDeque<Output>,
}

/// Why [`Predictor::handle`] rejected an input.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum PredictInputError {
    /// About a probe that is not the one out.
    #[error("input about probe {0:?}, which is not outstanding")]
    UnknownProbe(ProbeId),
    /// Not expected now.
    #[error("input not expected in this phase")]
    Unexpected,
}

impl Predictor {
    /// A predictor for the reserved address `local`, asking the prediction server at `servers`.
    pub fn new(
        config: PredictConfig,
        local: TransportAddr,
        servers: &[TransportAddr],
    ) -> Result<Self, StuntError> {
        if servers.is_empty() || servers.len() > MAX_SERVERS {
            return Err(StuntError::Config(
                "give 1 to 8 prediction-server addresses",
            ));
        }
        if config.probes < 2 || config.probes > MAX_PROBES {
            return Err(StuntError::Config("probes must be 2 to 8"));
        }
        if config.max_ttl == 0 || config.ttl == Some(0) {
            return Err(StuntError::Config("TTLs start at 1"));
        }
        Ok(Predictor {
            config,
            local,
            servers: servers.to_vec(),
            phase: Phase::Idle,
            deadline: None,
            next_probe: 0,
            current: None,
            observed: Vec::new(),
            out: VecDeque::new(),
        })
    }

    /// Whether the prediction is finished ([`Output::Done`] was emitted).
    pub fn is_done(&self) -> bool {
        self.phase == Phase::Done
    }

    /// The public addresses observed so far, in probe order.
    pub fn observed(&self) -> &[TransportAddr] {
        &self.observed
    }

    fn open(&mut self, now: Time, from: TransportAddr, to: TransportAddr, ttl: u8) {
        let probe = ProbeId(self.next_probe);
        self.next_probe = self.next_probe.wrapping_add(1);
        self.current = Some(probe);
        self.deadline = Some(now + self.config.probe_timeout);
        self.out.push_back(Output::Open {
            probe,
            from,
            to,
            ttl,
        });
    }

    fn close_current(&mut self) {
        if let Some(probe) = self.current.take() {
            self.out.push_back(Output::Close { probe });
        }
        self.deadline = None;
    }

    fn finish(&mut self, r: Result<Prediction, StuntError>) {
        self.close_current();
        self.phase = Phase::Done;
        self.out.push_back(Output::Done(r));
    }

    fn hop_probe(&mut self, now: Time, ttl: u8) {
        self.phase = Phase::Hops { ttl };
        let from = TransportAddr(SocketAddr::new(self.local.0.ip(), 0));
        let to = self.servers[0];
        self.open(now, from, to, ttl);
    }

    fn port_probe(&mut self, now: Time, seq: u8, ttl: u8) {
        self.phase = Phase::Ports {
            seq,
            ttl,
            answered: false,
        };
        let to = self.servers[usize::from(seq) % self.servers.len()];
        self.open(now, self.local, to, 64);
    }

    fn hops_measured(&mut self, now: Time, ttl: u8) {
        self.close_current();
        self.port_probe(now, 0, ttl);
    }

    fn hop_failed(&mut self, now: Time, ttl: u8) {
        self.close_current();
        if ttl >= self.config.max_ttl {
            self.finish(Err(StuntError::NoHopCount {
                max_ttl: self.config.max_ttl,
            }));
        } else {
            self.hop_probe(now, ttl + 1);
        }
    }

    fn conclude(&mut self, ttl: u8) {
        let r = predict(self.local, &self.observed).map(|(public, confidence)| Prediction {
            local: self.local,
            public,
            confidence,
            ttl,
        });
        self.finish(r);
    }

    fn check(&self, probe: ProbeId) -> Result<(), PredictInputError> {
        if self.current == Some(probe) {
            Ok(())
        } else {
            Err(PredictInputError::UnknownProbe(probe))
        }
    }
}

/// The prediction from the public addresses `observed` for probes from `local`.
pub fn predict(
    local: TransportAddr,
    observed: &[TransportAddr],
) -> Result<(TransportAddr, Confidence), StuntError> {
    let unpredictable = || StuntError::Unpredictable {
        local: local.0.port(),
        first: observed.first().map_or(0, |a| a.0.port()),
        second: observed.get(1).map_or(0, |a| a.0.port()),
    };
    let (first, last) = match (observed.first(), observed.last()) {
        (Some(f), Some(l)) if observed.len() >= 2 => (*f, *l),
        _ => return Err(unpredictable()),
    };
    if observed.iter().any(|a| a.0.ip() != first.0.ip()) {
        return Err(unpredictable());
    }
    if observed.iter().all(|a| *a == first) {
        return Ok((first, Confidence::Exact));
    }
    let step = |w: &[TransportAddr]| i32::from(w[1].0.port()) - i32::from(w[0].0.port());
    let d = step(&observed[..2]);
    if d == 0 || d.abs() > MAX_DELTA || observed.windows(2).any(|w| step(w) != d) {
        return Err(unpredictable());
    }
    let next = u16::try_from(i32::from(last.0.port()) + d).map_err(|_| unpredictable())?;
    if next == 0 {
        return Err(unpredictable());
    }
    let d = i16::try_from(d).map_err(|_| unpredictable())?;
    Ok((
        TransportAddr(SocketAddr::new(last.0.ip(), next)),
        Confidence::Delta(d),
    ))
}

impl Machine for Predictor {
    type Input = Input;
    type Output = Output;
    type Error = PredictInputError;

    fn handle(&mut self, now: Time, input: Input) -> Result<(), PredictInputError> {
        match (self.phase, input) {
            (Phase::Idle, Input::Start) => {
                match self.config.ttl {
                    Some(ttl) => self.port_probe(now, 0, ttl),
                    None => self.hop_probe(now, 1),
                }
                Ok(())
            }
            (Phase::Hops { ttl }, Input::Connected { probe }) => {
                self.check(probe)?;
                self.hops_measured(now, ttl);
                Ok(())
            }
            (Phase::Hops { ttl }, Input::TimeExceeded { probe }) => {
                self.check(probe)?;
                self.hop_failed(now, ttl);
                Ok(())
            }
            (Phase::Hops { .. }, Input::Failed { probe }) => {
                self.check(probe)?;
                self.finish(Err(StuntError::ServerUnreachable));
                Ok(())
            }
            (
                Phase::Ports {
                    answered: false, ..
                },
                Input::Connected { probe },
            ) => {
                self.check(probe)?;
                let Phase::Ports { seq, .. } = self.phase else {
                    return Err(PredictInputError::Unexpected);
                };
                self.out.push_back(Output::Send {
                    probe,
                    msg: Msg::Probe { seq },
                });
                Ok(())
            }
            (
                Phase::Ports {
                    seq,
                    ttl,
                    answered: false,
                },
                Input::Answer { probe, msg },
            ) => {
                self.check(probe)?;
                match msg {
                    Msg::Observed { seq: s, addr } if s == seq => {
                        self.observed.push(addr);
                        self.phase = Phase::Ports {
                            seq,
                            ttl,
                            answered: true,
                        };
                        self.close_current();
                        if seq + 1 >= self.config.probes {
                            self.conclude(ttl);
                        } else {
                            self.port_probe(now, seq + 1, ttl);
                        }
                        Ok(())
                    }
                    _ => {
                        self.finish(Err(StuntError::BadServerAnswer));
                        Ok(())
                    }
                }
            }
            (Phase::Ports { .. }, Input::TimeExceeded { probe } | Input::Failed { probe }) => {
                self.check(probe)?;
                self.finish(Err(StuntError::ServerUnreachable));
                Ok(())
            }
            (
                _,
                Input::Connected { probe }
                | Input::TimeExceeded { probe }
                | Input::Failed { probe }
                | Input::Answer { probe, .. },
            ) if self.current != Some(probe) => Err(PredictInputError::UnknownProbe(probe)),
            _ => Err(PredictInputError::Unexpected),
        }
    }

    fn poll(&mut self) -> Option<Output> {
        self.out.pop_front()
    }

    fn poll_timeout(&self) -> Option<Time> {
        self.deadline
    }

    fn handle_timeout(&mut self, now: Time) {
        match self.deadline {
            Some(d) if d <= now => {}
            _ => return,
        }
        match self.phase {
            Phase::Hops { ttl } => self.hop_failed(now, ttl),
            Phase::Ports { .. } => self.finish(Err(StuntError::PredictionTimeout)),
            Phase::Idle | Phase::Done => self.deadline = None,
        }
    }
}

/// The port-prediction server (C.3/C.4): answers each probe with the address it came from.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct PredictionServer {
    /// Probes answered.
    pub answered: u64,
    /// Messages that were not probes.
    pub rejected: u64,
}

impl PredictionServer {
    /// The answer to `msg` received on a connection from `peer`; `None` (and counted) for anything
    /// but a probe, after which the host closes the connection.
    pub fn answer(&mut self, peer: TransportAddr, msg: Msg) -> Option<Msg> {
        match msg {
            Msg::Probe { seq } => {
                self.answered += 1;
                Some(Msg::Observed { seq, addr: peer })
            }
            _ => {
                self.rejected += 1;
                None
            }
        }
    }
}
