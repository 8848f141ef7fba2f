//! NAT-A, NAT-B and the router between them, for the model and the fuzz target: the world the
//! real [`Punch`] roles, the real [`Proxy`] and the real [`PredictionServer`] run in.
//!
//! ```text
//! hostA 10.0.1.2 — NAT-A (WAN 80.100.1.1) — core 80.100.1.254 (router, proxy, prediction server) — NAT-B (WAN 80.100.2.1) — hostB 10.0.2.2
//! ```
//!
//! Every router (NAT-A, core, NAT-B) decrements the TTL and drops a packet whose TTL reaches 0. A
//! packet for core itself (the prediction server) is delivered without a decrement.
//!
//! # Fault model and simplifications
//!
//! - A host and its NAT share a LAN: a packet from a host passes its NAT in the same step it is
//!   sent. Packets on the WAN (at core) are delivered in any order, one per step.
//! - Signals through the proxy travel over TCP: in order per direction, each delivery one step.
//! - Prediction probes run to completion in the step that opens them (the servers are on core and
//!   answer at once).
//! - Timers fire only when nothing is in flight (the network is faster than every time-out).
//! - TCP is reduced to SYN, SYN-ACK and RST. A SYN reaching a socket in SYN-SENT towards its
//!   sender is a simultaneous open (kernel 6.18); a SYN at a port with no socket is answered by a
//!   RST; a RST ends the socket it reaches and the NAT mapping it crosses.
//! - NAT mapping ([`MappingBehaviour`]): port-preserving and fixed-offset mappings depend on the
//!   private endpoint only; sequential and random ones allocate a new port per (private, remote)
//!   pair. Filtering depends on address and port (Linux conntrack): only the remote a mapping was
//!   made towards may come in through it. An unsolicited packet is handled per [`Filtering`].
//! - Random ports come from a seeded [`SplitMix64`] in the state: the model explores a few seeds,
//!   not every port.

use alloc::vec::Vec;
use core::net::{IpAddr, Ipv4Addr, SocketAddr};

use super::predict::{self, PredictionServer, ProbeId};
use super::proxy::{self, ConnId, Proxy};
use super::punch::{self, Exchange, Punch, PunchConfig, Via};
use super::wire::{Msg, PeerId, SessionId, Signal};
use super::StuntError;
use crate::addr::TransportAddr;
use crate::machine::Machine;
use crate::sim::SplitMix64;
use crate::time::Time;

/// hostA.
pub const HOST_A: Ipv4Addr = Ipv4Addr::new(10, 0, 1, 2);
/// NAT-A's public address.
pub const NAT_A_WAN: Ipv4Addr = Ipv4Addr::new(80, 100, 1, 1);
/// core, where the proxy and the prediction server run.
pub const CORE: Ipv4Addr = Ipv4Addr::new(80, 100, 1, 254);
/// NAT-B's public address.
pub const NAT_B_WAN: Ipv4Addr = Ipv4Addr::new(80, 100, 2, 1);
/// hostB.
pub const HOST_B: Ipv4Addr = Ipv4Addr::new(10, 0, 2, 2);
/// The reserved ports (Porta, Portb).
pub const PORT_A: u16 = 40000;
/// See [`PORT_A`].
pub const PORT_B: u16 = 40001;
/// First port of the prediction server (it listens on this and the next ones).
pub const PREDICT_PORT: u16 = 3478;
/// Most mappings one NAT keeps (the oldest goes first).
pub const MAX_ENTRIES: usize = 32;
/// Most packets in flight on the WAN (more are dropped).
pub const MAX_IN_FLIGHT: usize = 16;

fn sa(ip: Ipv4Addr, port: u16) -> TransportAddr {
    TransportAddr(SocketAddr::new(IpAddr::V4(ip), port))
}

/// How a NAT picks the public port of a new mapping.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum MappingBehaviour {
    /// Endpoint-independent, the public port is the private port (Linux `masquerade`).
    Preserving,
    /// Endpoint-independent, the public port is the private port plus this offset.
    Offset(u16),
    /// A new port per (private, remote) pair, each `step` after the last.
    Sequential {
        /// The step.
        step: u16,
    },
    /// A new random port per (private, remote) pair (`masquerade fully-random`, symmetric).
    Random,
}

/// What a NAT does with an unsolicited inbound packet.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Filtering {
    /// Drop it silently.
    Drop,
    /// Answer with a RST.
    Rst,
    /// Drop it and block the port it was sent to from then on.
    Block,
}

/// A TCP segment, as far as the model cares.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Kind {
    /// SYN.
    Syn,
    /// SYN-ACK.
    SynAck,
    /// RST.
    Rst,
}

/// A packet on the WAN.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Packet {
    /// Source.
    pub from: TransportAddr,
    /// Destination.
    pub to: TransportAddr,
    /// IP TTL left.
    pub ttl: u8,
    /// Segment type.
    pub kind: Kind,
    /// The callee's low-TTL SYN.
    pub low_ttl: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
struct Entry {
    private: TransportAddr,
    remote: TransportAddr,
    public: u16,
}

/// One NAT.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Nat {
    wan: Ipv4Addr,
    mapping: MappingBehaviour,
    filtering: Filtering,
    table: Vec<Entry>,
    next_port: u16,
    rng: SplitMix64,
    blocked: Vec<u16>,
}

enum Inbound {
    Deliver(Packet),
    Dropped,
    Answer(Packet),
}

impl Nat {
    /// A NAT with public address `wan`.
    pub fn new(wan: Ipv4Addr, mapping: MappingBehaviour, filtering: Filtering, seed: u64) -> Nat {
        Nat {
            wan,
            mapping,
            filtering,
            table: Vec::new(),
            next_port: 20000,
            rng: SplitMix64::new(seed),
            blocked: Vec::new(),
        }
    }

    /// Public ports blocked after an unsolicited packet.
    pub fn blocked(&self) -> &[u16] {
        &self.blocked
    }

    /// Whether a mapping from `private` towards `remote` exists.
    pub fn maps(&self, private: TransportAddr, remote: TransportAddr) -> bool {
        self.table
            .iter()
            .any(|e| e.private == private && e.remote == remote)
    }

    fn allocate(&mut self, private: TransportAddr) -> u16 {
        let p = private.0.port();
        match self.mapping {
            MappingBehaviour::Preserving => p,
            MappingBehaviour::Offset(d) => p.wrapping_add(d).max(1024),
            MappingBehaviour::Sequential { step } => {
                let port = self.next_port;
                self.next_port = self.next_port.wrapping_add(step).max(1024);
                port
            }
            MappingBehaviour::Random => {
                u16::try_from(self.rng.range_inclusive(1024, 65535)).unwrap_or(1024)
            }
        }
    }

    /// A packet from the LAN: `None` if it dies here or is blocked.
    fn outbound(&mut self, p: Packet) -> Option<Packet> {
        let ttl = p.ttl.checked_sub(1).filter(|t| *t > 0)?;
        let existing = self
            .table
            .iter()
            .position(|e| e.private == p.from && e.remote == p.to);
        let public = match (existing, p.kind) {
            (Some(i), Kind::Rst) => self.table.remove(i).public,
            (Some(i), _) => self.table[i].public,
            (None, Kind::Rst) => return None,
            (None, _) => {
                let ei = matches!(
                    self.mapping,
                    MappingBehaviour::Preserving | MappingBehaviour::Offset(_)
                );
                let reuse = self
                    .table
                    .iter()
                    .find(|e| ei && e.private == p.from)
                    .map(|e| e.public);
                let public = match reuse {
                    Some(x) => x,
                    None => self.allocate(p.from),
                };
                if self.blocked.contains(&public) {
                    return None;
                }
                if self.table.len() >= MAX_ENTRIES {
                    self.table.remove(0);
                }
                self.table.push(Entry {
                    private: p.from,
                    remote: p.to,
                    public,
                });
                public
            }
        };
        Some(Packet {
            from: sa(self.wan, public),
            ttl,
            ..p
        })
    }

    /// A packet from the WAN for this NAT's address.
    fn inbound(&mut self, p: Packet) -> Inbound {
        let port = p.to.0.port();
        if self.blocked.contains(&port) {
            return Inbound::Dropped;
        }
        let hit = self
            .table
            .iter()
            .position(|e| e.public == port && e.remote == p.from);
        match hit {
            Some(i) => {
                let private = self.table[i].private;
                if p.kind == Kind::Rst {
                    self.table.remove(i);
                }
                match p.ttl.checked_sub(1).filter(|t| *t > 0) {
                    Some(ttl) => Inbound::Deliver(Packet {
                        to: private,
                        ttl,
                        ..p
                    }),
                    None => Inbound::Dropped,
                }
            }
            None if p.kind == Kind::Rst => Inbound::Dropped,
            None => match self.filtering {
                Filtering::Drop => Inbound::Dropped,
                Filtering::Rst => Inbound::Answer(Packet {
                    from: p.to,
                    to: p.from,
                    ttl: 64,
                    kind: Kind::Rst,
                    low_ttl: false,
                }),
                Filtering::Block => {
                    if self.blocked.len() < MAX_ENTRIES {
                        self.blocked.push(port);
                    }
                    Inbound::Dropped
                }
            },
        }
    }
}

/// A side of the world.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Side {
    /// hostA, App-A, NAT-A.
    A,
    /// hostB, App-B, NAT-B.
    B,
}

/// How a world is set up.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct WorldConfig {
    /// NAT-A's and NAT-B's mapping.
    pub mapping: [MappingBehaviour; 2],
    /// NAT-A's and NAT-B's filtering.
    pub filtering: [Filtering; 2],
    /// Seed of the random ports.
    pub seed: u64,
    /// The roles' configuration (the callee's `predict.ttl` may force a TTL).
    pub punch: [PunchConfig; 2],
    /// Proxy (C steps) or SMS (D steps).
    pub exchange: Exchange,
}

/// What the world saw, for the invariants.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct Observer {
    /// A low-TTL SYN arrived at NAT-A.
    pub low_ttl_syn_at_nat_a: bool,
    /// The caller sent its SYN while NAT-B did not map the callee's port towards it.
    pub caller_syn_before_mapping: bool,
    /// The caller sent its SYN.
    pub caller_syn_sent: bool,
}

/// The world: both roles, both NATs, core with the proxy and the prediction server.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct World {
    /// App-A.
    pub a: Punch,
    /// App-B.
    pub b: Punch,
    /// NAT-A.
    pub nat_a: Nat,
    /// NAT-B.
    pub nat_b: Nat,
    /// The proxy (C steps).
    pub proxy: Proxy,
    /// The prediction server.
    pub server: PredictionServer,
    /// Packets on the WAN.
    pub wan: Vec<Packet>,
    /// Signals on their way to A and to B, in order.
    pub signals: [Vec<Signal>; 2],
    /// The time.
    pub now: Time,
    /// What happened.
    pub obs: Observer,
    /// Each role's result once done.
    pub results: [Option<Result<Via, StuntError>>; 2],
    /// Probes whose connection is open: (side, probe, public source).
    probes: Vec<(Side, ProbeId, TransportAddr)>,
    next_ephemeral: u16,
    /// Inputs the roles rejected (a bug in the world or the roles).
    pub rejected: u32,
}

const PEER_A: PeerId = PeerId(1);
const PEER_B: PeerId = PeerId(2);

/// The prediction server's addresses.
pub fn servers() -> [TransportAddr; 3] {
    [0, 1, 2].map(|i| sa(CORE, PREDICT_PORT + i))
}

impl World {
    /// A world set up per `config`; both peers registered at the proxy (C.0).
    pub fn new(config: WorldConfig) -> Result<World, StuntError> {
        let s = servers();
        let a = Punch::caller(
            config.punch[0],
            config.exchange,
            SessionId(1),
            sa(HOST_A, PORT_A),
            &s,
        )?;
        let b = Punch::callee(config.punch[1], config.exchange, sa(HOST_B, PORT_B), &s)?;
        let mut proxy = Proxy::new(4);
        for (c, id) in [(ConnId(0), PEER_A), (ConnId(1), PEER_B)] {
            let _ = proxy.handle(
                Time::ZERO,
                proxy::Input::Frame {
                    conn: c,
                    msg: Msg::Register { id },
                },
            );
        }
        while proxy.poll().is_some() {}
        Ok(World {
            a,
            b,
            nat_a: Nat::new(
                NAT_A_WAN,
                config.mapping[0],
                config.filtering[0],
                config.seed,
            ),
            nat_b: Nat::new(
                NAT_B_WAN,
                config.mapping[1],
                config.filtering[1],
                config.seed.wrapping_add(1),
            ),
            proxy,
            server: PredictionServer::default(),
            wan: Vec::new(),
            signals: [Vec::new(), Vec::new()],
            now: Time::ZERO,
            obs: Observer::default(),
            results: [None, None],
            probes: Vec::new(),
            next_ephemeral: 50000,
            rejected: 0,
        })
    }

    fn punch(&mut self, side: Side) -> &mut Punch {
        match side {
            Side::A => &mut self.a,
            Side::B => &mut self.b,
        }
    }

    fn feed(&mut self, side: Side, input: punch::Input) {
        let now = self.now;
        if self.punch(side).handle(now, input).is_err() {
            self.rejected += 1;
        }
        self.drain(side);
    }

    /// The caller's application starts (C.1 / D.1).
    pub fn start(&mut self) {
        self.feed(Side::A, punch::Input::Start);
    }

    /// Nothing in flight.
    pub fn quiet(&self) -> bool {
        self.wan.is_empty() && self.signals.iter().all(|q| q.is_empty())
    }

    /// Fire `side`'s timer if it has one, no other deadline comes first and the network is
    /// quiet; whether it fired.
    pub fn fire_timer(&mut self, side: Side) -> bool {
        let Some(t) = self.punch(side).poll_timeout() else {
            return false;
        };
        let other = match side {
            Side::A => self.b.poll_timeout(),
            Side::B => self.a.poll_timeout(),
        };
        // time runs forward: only the earliest deadline fires, and only when nothing is in flight
        if !self.quiet() || other.is_some_and(|o| o < t) {
            return false;
        }
        self.now = self.now.max(t);
        let now = self.now;
        self.punch(side).handle_timeout(now);
        self.drain(side);
        true
    }

    /// Deliver the next signal to `side`; whether there was one.
    pub fn deliver_signal(&mut self, side: Side) -> bool {
        let q = &mut self.signals[side as usize];
        if q.is_empty() {
            return false;
        }
        let s = q.remove(0);
        // a finished attempt is forgotten by its host: late signals for it are dropped
        if self.punch(side).phase() != punch::Phase::Done {
            self.feed(side, punch::Input::Signal(s));
        }
        true
    }

    /// Deliver WAN packet `i`; whether there was one.
    pub fn deliver_packet(&mut self, i: usize) -> bool {
        if i >= self.wan.len() {
            return false;
        }
        let p = self.wan.remove(i);
        let IpAddr::V4(dst) = p.to.0.ip() else {
            return true;
        };
        // core routes it on
        let Some(ttl) = p.ttl.checked_sub(1).filter(|t| *t > 0) else {
            return true; // died at core (ICMP time exceeded: a soft error, nothing changes)
        };
        let p = Packet { ttl, ..p };
        let (side, nat) = if dst == NAT_A_WAN {
            if p.low_ttl {
                self.obs.low_ttl_syn_at_nat_a = true;
            }
            (Side::A, &mut self.nat_a)
        } else if dst == NAT_B_WAN {
            (Side::B, &mut self.nat_b)
        } else {
            return true;
        };
        match nat.inbound(p) {
            Inbound::Dropped => {}
            Inbound::Answer(back) => self.push_wan(back),
            Inbound::Deliver(p) => self.at_host(side, p),
        }
        true
    }

    /// A hostile or stray signal for `side` (a misbehaving proxy or peer), queued after the others.
    pub fn inject_signal(&mut self, side: Side, s: Signal) {
        let q = &mut self.signals[side as usize];
        if q.len() < MAX_IN_FLIGHT {
            q.push(s);
        }
    }

    /// Lose WAN packet `i` (a fault); whether there was one.
    pub fn lose_packet(&mut self, i: usize) -> bool {
        if i >= self.wan.len() {
            return false;
        }
        self.wan.remove(i);
        true
    }

    fn push_wan(&mut self, p: Packet) {
        if self.wan.len() < MAX_IN_FLIGHT {
            self.wan.push(p);
        }
    }

    /// `side`'s host sends `p` through its NAT onto the WAN.
    fn send(&mut self, side: Side, p: Packet) {
        let nat = match side {
            Side::A => &mut self.nat_a,
            Side::B => &mut self.nat_b,
        };
        if let Some(p) = nat.outbound(p) {
            self.push_wan(p);
        }
    }

    /// A packet reaches a host.
    fn at_host(&mut self, side: Side, p: Packet) {
        let punch = self.punch(side);
        let punching = punch.phase() == punch::Phase::Punching;
        let local = match side {
            Side::A => sa(HOST_A, PORT_A),
            Side::B => sa(HOST_B, PORT_B),
        };
        let peer = punch.peer_mapping().map(|m| m.public);
        let reply = |kind| Packet {
            from: p.to,
            to: p.from,
            ttl: 64,
            kind,
            low_ttl: false,
        };
        if p.to != local || !punching || peer != Some(p.from) {
            // no socket for it
            if p.kind == Kind::Syn {
                self.send(side, reply(Kind::Rst));
            }
            return;
        }
        let via = match side {
            Side::A => Via::Connect,
            Side::B => Via::PunchingSocket,
        };
        match p.kind {
            Kind::Syn => {
                // simultaneous open on the socket in SYN-SENT towards the sender
                self.send(side, reply(Kind::SynAck));
                self.feed(side, punch::Input::Established(via));
            }
            Kind::SynAck => self.feed(side, punch::Input::Established(via)),
            Kind::Rst => match side {
                Side::A => self.feed(side, punch::Input::ConnectFailed),
                Side::B => self.feed(side, punch::Input::PunchingSocketAborted),
            },
        }
    }

    fn drain(&mut self, side: Side) {
        while let Some(o) = self.punch(side).poll() {
            match o {
                punch::Output::Signal(s) => self.relay(side, s),
                punch::Output::Probe(p) => self.probe(side, p),
                punch::Output::Predicted(_) => {}
                punch::Output::ListenAndSyn { local, to, ttl } => self.send(
                    side,
                    Packet {
                        from: local,
                        to,
                        ttl,
                        kind: Kind::Syn,
                        low_ttl: true,
                    },
                ),
                punch::Output::Connect { local, to } => {
                    self.obs.caller_syn_sent = true;
                    let callee_maps = self
                        .b
                        .prediction()
                        .map(|p| p.local)
                        .is_some_and(|bl| self.nat_b.maps(bl, to_predicted_a(&self.a)));
                    if !callee_maps {
                        self.obs.caller_syn_before_mapping = true;
                    }
                    self.send(
                        side,
                        Packet {
                            from: local,
                            to,
                            ttl: 64,
                            kind: Kind::Syn,
                            low_ttl: false,
                        },
                    );
                }
                punch::Output::Done(r) => {
                    self.results[side as usize] = Some(r.map(|e| e.via));
                    self.probes.retain(|(s, _, _)| *s != side);
                }
            }
        }
    }

    fn relay(&mut self, from: Side, signal: Signal) {
        let (conn, to_id, other) = match from {
            Side::A => (ConnId(0), PEER_B, Side::B),
            Side::B => (ConnId(1), PEER_A, Side::A),
        };
        let _ = self.proxy.handle(
            self.now,
            proxy::Input::Frame {
                conn,
                msg: Msg::Relay { to: to_id, signal },
            },
        );
        while let Some(o) = self.proxy.poll() {
            if let proxy::Output::Send { msg, .. } = o {
                if let Ok(Some(s)) = proxy::client_input(me_of(other), msg) {
                    let q = &mut self.signals[other as usize];
                    if q.len() < MAX_IN_FLIGHT {
                        q.push(s);
                    }
                }
            }
        }
    }

    fn probe(&mut self, side: Side, p: predict::Output) {
        match p {
            predict::Output::Open {
                probe,
                from,
                to,
                ttl,
            } => {
                let from = if from.0.port() == 0 {
                    self.next_ephemeral = self.next_ephemeral.wrapping_add(1).max(1024);
                    TransportAddr(SocketAddr::new(from.0.ip(), self.next_ephemeral))
                } else {
                    from
                };
                let pkt = Packet {
                    from,
                    to,
                    ttl,
                    kind: Kind::Syn,
                    low_ttl: false,
                };
                let nat = match side {
                    Side::A => &mut self.nat_a,
                    Side::B => &mut self.nat_b,
                };
                match nat.outbound(pkt) {
                    // core is the destination: delivered without a decrement
                    Some(out) => {
                        self.probes.push((side, probe, out.from));
                        self.feed(
                            side,
                            punch::Input::Probe(predict::Input::Connected { probe }),
                        );
                    }
                    None => self.feed(
                        side,
                        punch::Input::Probe(predict::Input::TimeExceeded { probe }),
                    ),
                }
            }
            predict::Output::Send { probe, msg } => {
                let seen = self
                    .probes
                    .iter()
                    .find(|(s, p, _)| *s == side && *p == probe)
                    .map(|x| x.2);
                if let Some(addr) = seen {
                    if let Some(answer) = self.server.answer(addr, msg) {
                        self.feed(
                            side,
                            punch::Input::Probe(predict::Input::Answer { probe, msg: answer }),
                        );
                    }
                }
            }
            predict::Output::Close { probe } => {
                self.probes.retain(|(s, p, _)| !(*s == side && *p == probe));
            }
            predict::Output::Done(_) => {}
        }
    }

    /// LowTtlSynNeverReachesNatA.
    pub fn low_ttl_syn_never_reaches_nat_a(&self) -> bool {
        !self.obs.low_ttl_syn_at_nat_a
    }
    /// CallerSynAfterCalleeMapping.
    pub fn caller_syn_after_callee_mapping(&self) -> bool {
        !self.obs.caller_syn_before_mapping
    }
    /// PortNeverBlocked.
    pub fn port_never_blocked(&self) -> bool {
        self.nat_a.blocked.is_empty() && self.nat_b.blocked.is_empty()
    }
    /// Both roles have finished. A callee that never heard of the attempt (still idle, no
    /// session: the caller failed, or was told to stop, before its first signal reached it) has
    /// nothing to finish. Found by the `stunt_roles` fuzzer: with the D exchange the caller's
    /// mapping is its first signal, so a caller behind an unpredictable NAT never contacts the
    /// callee at all.
    pub fn both_done(&self) -> bool {
        let untouched = self.b.phase() == punch::Phase::Idle && self.b.session().is_none();
        self.results[0].is_some() && (self.results[1].is_some() || untouched)
    }
    /// Both roles hold the connection.
    pub fn established(&self) -> bool {
        self.results.iter().all(|r| matches!(r, Some(Ok(_))))
    }
    /// Nothing more can happen: nothing in flight and no timer left.
    pub fn finished(&self) -> bool {
        self.quiet() && self.a.poll_timeout().is_none() && self.b.poll_timeout().is_none()
    }
}

fn me_of(side: Side) -> PeerId {
    // the peer whose signals `side` accepts
    match side {
        Side::A => PEER_B,
        Side::B => PEER_A,
    }
}

fn to_predicted_a(a: &Punch) -> TransportAddr {
    a.prediction()
        .map(|p| p.public)
        .unwrap_or(TransportAddr(SocketAddr::new(
            IpAddr::V4(Ipv4Addr::UNSPECIFIED),
            0,
        )))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn world(mapping: MappingBehaviour, filtering: Filtering, ttl: Option<u8>) -> World {
        let mut punch = [PunchConfig::default(); 2];
        punch[1].predict.ttl = ttl;
        World::new(WorldConfig {
            mapping: [mapping; 2],
            filtering: [filtering; 2],
            seed: 7,
            punch,
            exchange: Exchange::Proxy,
        })
        .unwrap()
    }

    /// Run in a fixed order: signals first, then packets, then timers.
    fn run(w: &mut World) {
        w.start();
        for _ in 0..200 {
            if w.deliver_signal(Side::A) || w.deliver_signal(Side::B) || w.deliver_packet(0) {
                continue;
            }
            if !(w.fire_timer(Side::A) || w.fire_timer(Side::B)) {
                break;
            }
        }
        assert_eq!(w.rejected, 0);
        assert!(w.finished() && w.both_done(), "{:?}", w.results);
        assert!(w.caller_syn_after_callee_mapping());
    }

    #[test]
    fn predictable_nats_connect() {
        for m in [
            MappingBehaviour::Preserving,
            MappingBehaviour::Offset(7),
            MappingBehaviour::Sequential { step: 2 },
        ] {
            for f in [Filtering::Drop, Filtering::Rst, Filtering::Block] {
                let mut w = world(m, f, None);
                run(&mut w);
                assert!(w.established(), "{m:?} {f:?}: {:?}", w.results);
                assert_eq!(w.b.prediction().unwrap().ttl, 2);
                assert!(w.low_ttl_syn_never_reaches_nat_a());
                assert!(w.port_never_blocked());
            }
        }
    }

    #[test]
    fn d_steps_over_sms_connect_the_same_way() {
        let mut w = World::new(WorldConfig {
            mapping: [MappingBehaviour::Preserving; 2],
            filtering: [Filtering::Block; 2],
            seed: 1,
            punch: [PunchConfig::default(); 2],
            exchange: Exchange::Sms,
        })
        .unwrap();
        run(&mut w);
        assert!(w.established(), "{:?}", w.results);
        assert_eq!(w.results[1], Some(Ok(Via::PunchingSocket)));
        // no request/accept: only the two mappings went through
        assert_eq!(w.proxy.relayed, 2);
    }

    #[test]
    fn symmetric_nat_fails_with_unpredictable() {
        let mut w = world(MappingBehaviour::Random, Filtering::Drop, None);
        run(&mut w);
        assert!(matches!(w.results, [Some(Err(_)), Some(Err(_))]));
        assert!(w
            .results
            .iter()
            .any(|r| matches!(r, Some(Err(StuntError::Unpredictable { .. })))));
    }

    #[test]
    fn ttl_one_too_large_gets_port_a_blocked() {
        let mut w = world(MappingBehaviour::Preserving, Filtering::Block, Some(3));
        run(&mut w);
        assert!(!w.low_ttl_syn_never_reaches_nat_a());
        assert_eq!(w.nat_a.blocked(), &[PORT_A]);
        assert_eq!(w.results[1], Some(Err(StuntError::PunchTimeout)));
        assert_eq!(w.results[0], Some(Err(StuntError::PeerAborted)));
    }
}
