//! A caller and a callee ([`Peer`]) with everything around them played by data: the SMS network,
//! the IP network, both hosts (radios, listeners, servers, connects) and the record the
//! invariants look at ([`Observer`]).
//!
//! This is the one world the model (`models/src/ip2p.rs`, which explores every order of the
//! methods below) and the fuzz target `ip2p_peer` (which picks them from the fuzzer's bytes)
//! share; only the choice of the next step differs. Every method is one event of the world:
//! deliver, lose or replay a message, attach a radio, start a server, settle a connect, fire a
//! timer, close, forge. What the hosts do with the peers' outputs is [`Pair::drain`]: one place.
//!
//! State is kept canonical for a model checker: messages in flight are sorted lists (a multiset),
//! logs are sorted and without duplicates, and the whole world is `Clone + Eq + Hash`.

use std::net::{IpAddr, SocketAddr};

use crate::broker::{NatBehaviour, Profile};
use crate::ip2p::invariants::Observer;
use crate::ip2p::wire::{AppName, Control, Key, Kind, Mode, Nonce};
use crate::ip2p::{Error, Event, Input, MapFailure, MapKey, Mapping, Output, Peer, SessionId};
use crate::machine::Machine;
use crate::msisdn::Msisdn;
use crate::relay::RelayToken;
use crate::time::Time;
use crate::TransportAddr;

/// At most this many messages in flight on each network, and in each log; more are dropped (as
/// a loss). The model never gets near it; it bounds a fuzzer's world.
pub const MAX_IN_FLIGHT: usize = 64;

/// One SMS in flight.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Sms {
    /// Toward the callee (else toward the caller).
    pub to_callee: bool,
    /// The user data.
    pub payload: Vec<u8>,
}

/// One control message in flight over IP (always toward the caller: B.4).
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Datagram {
    /// Where to.
    pub to: TransportAddr,
    /// The message.
    pub payload: Vec<u8>,
}

/// The caller's NAT's public address (steps D and E).
pub const NAT_A: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(203, 0, 113, 1));
/// The callee's NAT's public address.
pub const NAT_B: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(203, 0, 113, 2));
/// The caller's address in a brokered world ([`Pair::with_nets`]): attach the caller with it.
pub const CALLER_LOCAL: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(192, 0, 2, 1));
/// The callee's address in a brokered world: attach the callee with it.
pub const CALLEE_LOCAL: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(198, 51, 100, 1));
/// The relay of a brokered world.
pub const RELAY: TransportAddr = TransportAddr(SocketAddr::new(
    IpAddr::V4(std::net::Ipv4Addr::new(203, 0, 113, 100)),
    3478,
));

/// A NAT mapping a host holds or is obtaining: (key, local port). Both NATs keep the port
/// (endpoint-independent, port-preserving; what else a NAT may do is the STUNT model's business).
pub type HostMapping = (MapKey, u16);

/// P2PBroker: the network around one side, each a row of the testbed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum NetKind {
    /// No NAT: the host's own address is reachable.
    Public,
    /// A port-preserving, endpoint-independent NAT that filters inbound traffic (STUNT #2 works).
    Predictable,
    /// Like `Predictable`, with an UPnP IGD that maps ports.
    Igd,
    /// A NAT with random ports per connection and inbound filtering: nothing gets in.
    Symmetric,
}

impl NetKind {
    /// Every kind, in the testbed's order.
    pub const ALL: [NetKind; 4] = [
        NetKind::Public,
        NetKind::Predictable,
        NetKind::Igd,
        NetKind::Symmetric,
    ];

    /// The profile a correct probe finds for a host at `local` behind a NAT at `nat`.
    pub fn profile(self, local: IpAddr, nat: IpAddr) -> Profile {
        let ei = NatBehaviour::EndpointIndependent { preserving: true };
        match self {
            NetKind::Public => Profile::public(local),
            NetKind::Predictable => Profile {
                local,
                public: Some(nat),
                igd: None,
                nat: ei,
            },
            NetKind::Igd => Profile {
                local,
                public: Some(nat),
                igd: Some(nat),
                nat: ei,
            },
            NetKind::Symmetric => Profile {
                local,
                public: Some(nat),
                igd: None,
                nat: NatBehaviour::Random,
            },
        }
    }

    /// Whether a mapping by `mode` can be obtained on this network.
    pub fn can_map(self, mode: Mode) -> bool {
        match mode {
            Mode::Upnp => self == NetKind::Igd,
            Mode::Stunt2 => self != NetKind::Symmetric,
            Mode::Direct | Mode::Relay => false,
        }
    }
}

/// Relay mode: the two legs of one token at the relay.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RelayLeg {
    /// The token both present.
    pub token: RelayToken,
    /// The caller's request, once it connected to the relay.
    pub caller: Option<Nonce>,
    /// The callee's session, once it connected to the relay.
    pub callee: Option<SessionId>,
}

/// The world of one caller `a` and one callee `b`.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Pair {
    /// The caller.
    pub a: Peer,
    /// The caller's clock.
    pub ta: Time,
    /// The callee.
    pub b: Peer,
    /// The callee's clock.
    pub tb: Time,
    /// SMS in flight (sorted).
    pub sms: Vec<Sms>,
    /// Answers in flight over IP (sorted).
    pub ip: Vec<Datagram>,
    /// Every SMS ever sent (sorted, no duplicates): what a duplication or a replay can deliver.
    pub sms_log: Vec<Sms>,
    /// Every IP answer ever sent (sorted, no duplicates).
    pub ip_log: Vec<Datagram>,
    /// Every SMS delivered at least once (sorted, no duplicates).
    pub sms_delivered: Vec<Sms>,
    /// The caller's host is switching its radio on.
    pub a_activating: bool,
    /// The callee's host is switching its radio on.
    pub b_activating: bool,
    /// (request, port) the caller's host listens on for answers.
    pub a_listening: Vec<(Nonce, u16)>,
    /// Connects the caller's host is making.
    pub a_connecting: Vec<(Nonce, TransportAddr)>,
    /// Servers the callee's host is starting.
    pub b_starting: Vec<SessionId>,
    /// Servers listening: (session, address).
    pub b_servers: Vec<(SessionId, TransportAddr)>,
    /// Requests the caller's application issued.
    pub issued: Vec<Nonce>,
    /// Mappings a host is obtaining (`Map` out, `Mapped` not yet fed), caller then callee.
    pub mapping: [Vec<HostMapping>; 2],
    /// Mappings in place on each NAT (caller's, callee's): inbound traffic to the NAT's public
    /// address and that port reaches the host.
    pub held: [Vec<HostMapping>; 2],
    /// Sessions whose low-TTL SYN (D.5) went out: NAT-B lets the caller's SYN in.
    pub punched: Vec<SessionId>,
    /// How each mapping asked for (pending or held) is made, caller then callee.
    pub map_modes: [Vec<(MapKey, Mode)>; 2],
    /// P2PBroker: the networks around the caller and the callee (`None`: the fixed-mode world,
    /// where both own addresses are reachable and every mapping may succeed).
    pub nets: Option<[NetKind; 2]>,
    /// Relay mode: connections waiting at the relay, by token (sorted).
    pub relay: Vec<RelayLeg>,
    /// Relay mode: pairs the relay joined and both ends still hold: (request, session).
    pub relayed: Vec<(Nonce, SessionId)>,
    /// What the invariants look at.
    pub obs: Observer,
    /// Compare a peer before and after every input it rejects (the contract: a rejected input
    /// changes nothing). Costs a clone per input; the fuzzer turns it on.
    pub check_rejections: bool,
    /// A rejected input changed a peer or made it produce output (only with `check_rejections`).
    pub rejection_changed: bool,
}

fn insert_sorted<T: Ord>(v: &mut Vec<T>, x: T) {
    if v.len() < MAX_IN_FLIGHT {
        let i = v.partition_point(|y| y <= &x);
        v.insert(i, x);
    }
}

fn insert_unique<T: Ord>(v: &mut Vec<T>, x: T) {
    if v.len() < MAX_IN_FLIGHT {
        if let Err(i) = v.binary_search(&x) {
            v.insert(i, x);
        }
    }
}

impl Pair {
    /// A world with both peers as given, both clocks at zero, nothing in flight.
    pub fn new(a: Peer, b: Peer) -> Pair {
        Pair {
            a,
            ta: Time::ZERO,
            b,
            tb: Time::ZERO,
            sms: Vec::new(),
            ip: Vec::new(),
            sms_log: Vec::new(),
            ip_log: Vec::new(),
            sms_delivered: Vec::new(),
            a_activating: false,
            b_activating: false,
            a_listening: Vec::new(),
            a_connecting: Vec::new(),
            b_starting: Vec::new(),
            b_servers: Vec::new(),
            issued: Vec::new(),
            mapping: [Vec::new(), Vec::new()],
            held: [Vec::new(), Vec::new()],
            punched: Vec::new(),
            map_modes: [Vec::new(), Vec::new()],
            nets: None,
            relay: Vec::new(),
            relayed: Vec::new(),
            obs: Observer::default(),
            check_rejections: false,
            rejection_changed: false,
        }
    }

    /// A brokered world: each peer is told the profile of its network (`nets`: caller's,
    /// callee's) as the host's probe would find it.
    pub fn with_nets(a: Peer, b: Peer, nets: [NetKind; 2]) -> Pair {
        let mut w = Pair::new(a, b);
        w.nets = Some(nets);
        let pa = nets[0].profile(CALLER_LOCAL, NAT_A);
        let pb = nets[1].profile(CALLEE_LOCAL, NAT_B);
        let _ = w.feed(false, Input::Profile(pa));
        let _ = w.feed(true, Input::Profile(pb));
        w
    }

    /// The caller's number.
    pub fn caller(&self) -> Msisdn {
        self.a.config().me
    }

    /// The callee's number.
    pub fn callee(&self) -> Msisdn {
        self.b.config().me
    }

    /// Feed one peer (`callee` or caller) at its clock, then carry out both peers' outputs.
    pub fn feed(&mut self, callee: bool, input: Input) -> Result<(), Error> {
        let (p, now) = if callee {
            (&mut self.b, self.tb)
        } else {
            (&mut self.a, self.ta)
        };
        let before = self.check_rejections.then(|| p.clone());
        let r = p.handle(now, input);
        if let (Err(_), Some(before)) = (&r, before) {
            let mut after = p.clone();
            if *p != before || after.poll().is_some() {
                self.rejection_changed = true;
            }
        }
        self.drain();
        r
    }

    /// What the hosts do with every output of both peers.
    pub fn drain(&mut self) {
        while let Some(o) = self.a.poll() {
            self.obs.caller(&o);
            match o {
                Output::SendSms { payload, .. } => self.send_sms(true, payload),
                Output::Listen { nonce, port } => self.a_listening.push((nonce, port)),
                Output::StopListening { nonce, port } => {
                    self.a_listening.retain(|l| *l != (nonce, port))
                }
                Output::Connect { nonce, to, .. } => self.a_connecting.push((nonce, to)),
                Output::ActivateBroadband => self.a_activating = true,
                Output::DeactivateBroadband => self.a_activating = false,
                Output::Event(Event::Failed { nonce, .. }) => {
                    self.a_connecting.retain(|c| c.0 != nonce);
                    self.caller_gone(nonce);
                }
                Output::Event(Event::ModeFailed { nonce, .. }) => self.caller_gone(nonce),
                Output::Map { key, port, mode } => {
                    insert_unique(&mut self.mapping[0], (key, port));
                    insert_unique(&mut self.map_modes[0], (key, mode));
                }
                Output::Unmap(key) => self.unmap(0, key),
                Output::RelayConnect { nonce, token, .. } => {
                    self.leg(token).caller = Some(nonce);
                }
                _ => {}
            }
        }
        while let Some(o) = self.b.poll() {
            self.obs.callee(&o);
            match o {
                Output::SendSms { payload, .. } => self.send_sms(false, payload),
                Output::SendIp { to, payload } => {
                    let d = Datagram { to, payload };
                    insert_unique(&mut self.ip_log, d.clone());
                    insert_sorted(&mut self.ip, d);
                }
                Output::StartServer { session, .. } => self.b_starting.push(session),
                Output::StopServer(session) => self.server_gone(session),
                Output::ActivateBroadband => self.b_activating = true,
                Output::DeactivateBroadband => {
                    self.b_activating = false;
                    // the radio is off: no server of the callee is reachable any more
                    self.b_servers.clear();
                }
                Output::Event(Event::SessionFailed { session, .. }) => self.server_gone(session),
                Output::Map { key, port, mode } => {
                    insert_unique(&mut self.mapping[1], (key, port));
                    insert_unique(&mut self.map_modes[1], (key, mode));
                }
                Output::Unmap(key) => self.unmap(1, key),
                Output::Punch { session, .. } => insert_unique(&mut self.punched, session),
                Output::RelayAccept { session, token, .. } => {
                    self.leg(token).callee = Some(session);
                }
                _ => {}
            }
        }
    }

    fn send_sms(&mut self, to_callee: bool, payload: Vec<u8>) {
        let s = Sms { to_callee, payload };
        insert_unique(&mut self.sms_log, s.clone());
        insert_sorted(&mut self.sms, s);
    }

    /// The relay's entry for `token` (a new one if none).
    fn leg(&mut self, token: RelayToken) -> &mut RelayLeg {
        let i = match self.relay.binary_search_by(|l| l.token.cmp(&token)) {
            Ok(i) => i,
            Err(i) => {
                self.relay.insert(
                    i,
                    RelayLeg {
                        token,
                        caller: None,
                        callee: None,
                    },
                );
                i
            }
        };
        &mut self.relay[i]
    }

    /// The caller's host drops request `nonce`'s connection (at the relay too); a relayed pair
    /// loses its far end with it.
    fn caller_gone(&mut self, nonce: Nonce) {
        for l in &mut self.relay {
            if l.caller == Some(nonce) {
                l.caller = None;
            }
        }
        self.relay
            .retain(|l| l.caller.is_some() || l.callee.is_some());
        self.relayed.retain(|r| r.0 != nonce);
    }

    fn unmap(&mut self, side: usize, key: MapKey) {
        self.mapping[side].retain(|m| m.0 != key);
        self.held[side].retain(|m| m.0 != key);
        self.map_modes[side].retain(|m| m.0 != key);
        if let MapKey::Session(s) = key {
            self.punched.retain(|p| *p != s);
        }
    }

    /// A host finishes the mapping `m` it is obtaining (caller's if `!callee`): in place on the
    /// NAT and reported with the NAT's public address if `ok`, else reported as failed.
    /// In a brokered world a mapping the network cannot give fails whatever `ok` says.
    pub fn map_done(&mut self, callee: bool, m: HostMapping, ok: bool) {
        let side = usize::from(callee);
        if !self.mapping[side].contains(&m) {
            return;
        }
        self.mapping[side].retain(|x| *x != m);
        let possible = match (self.nets, self.map_mode(side, m.0)) {
            (Some(nets), Some(mode)) => nets[side].can_map(mode),
            _ => true,
        };
        let ok = ok && possible;
        let result = if ok {
            insert_unique(&mut self.held[side], m);
            let ip = if callee { NAT_B } else { NAT_A };
            Ok(Mapping {
                public: TransportAddr(SocketAddr::new(ip, m.1)),
                ttl: Some(2),
            })
        } else if self.map_mode(side, m.0) == Some(Mode::Stunt2) && !possible {
            Err(MapFailure::Unpredictable)
        } else {
            Err(MapFailure::NoGateway)
        };
        let _ = self.feed(callee, Input::Mapped { key: m.0, result });
    }

    fn map_mode(&self, side: usize, key: MapKey) -> Option<Mode> {
        self.map_modes[side]
            .iter()
            .find(|(k, _)| *k == key)
            .map(|(_, m)| *m)
    }

    /// Whether a side's own address is reachable from outside.
    fn own_reachable(&self, side: usize) -> bool {
        self.nets.map_or(true, |n| n[side] == NetKind::Public)
    }

    /// Relay mode: the relay joins the two legs of entry `i` if both are there: the caller is
    /// connected, the callee's server accepted.
    pub fn relay_join(&mut self, i: usize) {
        let Some(l) = self.relay.get(i) else { return };
        let (Some(nonce), Some(session)) = (l.caller, l.callee) else {
            return;
        };
        self.relay.remove(i);
        insert_unique(&mut self.relayed, (nonce, session));
        let _ = self.feed(false, Input::Connected(nonce));
        let _ = self.feed(true, Input::Accepted(session));
    }

    /// Relay mode: the relay refuses or drops entry `i` (time-out, limit): both legs fail.
    pub fn relay_drop(&mut self, i: usize) {
        if i >= self.relay.len() {
            return;
        }
        let l = self.relay.remove(i);
        if let Some(nonce) = l.caller {
            let _ = self.feed(false, Input::ConnectFailed(nonce));
        }
        // the callee's server just sees no caller: its session times out
        let _ = l.callee;
    }

    /// The callee's session a connect to `to` lands on: its server's own address, or the
    /// callee's NAT with a mapping to the server's port (for STUNT #2 only once the low-TTL SYN
    /// opened it).
    fn reach(&self, to: TransportAddr) -> Option<SessionId> {
        if let Some((s, _)) = self.b_servers.iter().find(|(_, a)| *a == to) {
            return self.own_reachable(1).then_some(*s);
        }
        if to.0.ip() != NAT_B {
            return None;
        }
        let port = to.0.port();
        let (key, _) = self.held[1].iter().find(|(_, p)| *p == port)?;
        let MapKey::Session(owner) = key else {
            return None;
        };
        let stunt = self.map_mode(1, *key) == Some(Mode::Stunt2);
        if stunt && !self.punched.contains(owner) {
            // NAT-B has no entry for the caller yet: the SYN is dropped
            return None;
        }
        self.b_servers
            .iter()
            .find(|(_, a)| a.0.port() == port)
            .map(|(s, _)| *s)
    }

    fn server_gone(&mut self, session: SessionId) {
        self.b_starting.retain(|s| *s != session);
        self.b_servers.retain(|s| s.0 != session);
        for l in &mut self.relay {
            if l.callee == Some(session) {
                l.callee = None;
            }
        }
        self.relay
            .retain(|l| l.caller.is_some() || l.callee.is_some());
        self.relayed.retain(|r| r.1 != session);
    }

    /// The caller's application asks for the callee's `app` (B.1) with `nonce`, on `port`.
    pub fn resolve(&mut self, app: AppName, nonce: Nonce, port: u16) -> Result<(), Error> {
        let to = self.callee();
        let r = self.feed(
            false,
            Input::Resolve {
                to,
                app,
                nonce,
                port,
            },
        );
        if r.is_ok() {
            self.issued.push(nonce);
        }
        r
    }

    /// A radio the host is switching on attaches with `ip`.
    pub fn attach(&mut self, callee: bool, ip: IpAddr) {
        if callee {
            self.b_activating = false;
        } else {
            self.a_activating = false;
        }
        let _ = self.feed(callee, Input::BroadbandUp { ip });
    }

    /// Deliver SMS `s` (whether or not it is in flight).
    pub fn deliver(&mut self, s: Sms) {
        insert_unique(&mut self.sms_delivered, s.clone());
        let (callee, from) = if s.to_callee {
            (true, self.caller())
        } else {
            (false, self.callee())
        };
        let _ = self.feed(
            callee,
            Input::Sms {
                from,
                payload: s.payload,
            },
        );
    }

    /// Deliver the `i`-th SMS in flight.
    pub fn deliver_sms(&mut self, i: usize) {
        let s = self.sms.remove(i);
        self.deliver(s);
    }

    /// Deliver answer `d` over IP: it reaches the caller only while the caller listens on its
    /// port at its address (else the connection is refused and the answer is gone).
    pub fn deliver_datagram(&mut self, d: Datagram) {
        let port = d.to.0.port();
        // through NAT-A only by an IGD mapping: a predicted (STUNT #2) one filters inbound
        let reachable = (self.own_reachable(0) && self.a.ip() == Some(d.to.0.ip()))
            || (d.to.0.ip() == NAT_A
                && self.held[0]
                    .iter()
                    .any(|(k, p)| *p == port && self.map_mode(0, *k) != Some(Mode::Stunt2)));
        if self.a_listening.iter().any(|(_, p)| *p == port) && reachable {
            let _ = self.feed(false, Input::Ip { payload: d.payload });
        }
    }

    /// Deliver the `i`-th answer in flight.
    pub fn deliver_ip(&mut self, i: usize) {
        let d = self.ip.remove(i);
        self.deliver_datagram(d);
    }

    /// Deliver again the `i`-th SMS of the log (the network's duplicate, an attacker's replay).
    /// A second delivery may be answered again but must change no state: if it does,
    /// `obs.forged_changed` is set.
    pub fn replay_sms(&mut self, i: usize) {
        let m = self.sms_log[i].clone();
        let seen = self.sms_delivered.binary_search(&m).is_ok();
        let (a, b) = (self.a.clone(), self.b.clone());
        self.deliver(m);
        if seen && (self.a != a || self.b != b) {
            self.obs.forged_changed = true;
        }
    }

    /// Deliver again the `i`-th answer of the IP log.
    pub fn replay_ip(&mut self, i: usize) {
        let d = self.ip_log[i].clone();
        self.deliver_datagram(d);
    }

    /// The callee's host starts the server of `session` on the first of `ports` that is free;
    /// with no address or no free port the server fails.
    pub fn server_up(&mut self, session: SessionId, ports: &[u16]) {
        self.b_starting.retain(|x| *x != session);
        let port = ports
            .iter()
            .find(|p| !self.b_servers.iter().any(|(_, a)| a.0.port() == **p));
        match (self.b.ip(), port) {
            (Some(ip), Some(&port)) => {
                let addr = TransportAddr(SocketAddr::new(ip, port));
                self.b_servers.push((session, addr));
                if self
                    .feed(true, Input::ServerListening { session, port })
                    .is_err()
                {
                    // the session is gone: the host closes the server again
                    self.b_servers.retain(|s| s.0 != session);
                }
            }
            _ => {
                let _ = self.feed(true, Input::ServerFailed(session));
            }
        }
    }

    /// Whether the caller's connect for `n` would reach a listening server of the callee now.
    pub fn can_connect(&self, n: Nonce) -> bool {
        self.a_connecting
            .iter()
            .any(|(m, to)| *m == n && self.reach(*to).is_some())
    }

    /// The caller's connect for `n` ends: connected if [`Pair::can_connect`] and `ok`, else
    /// failed. The connection lands on whichever server listens there.
    pub fn settle_connect(&mut self, n: Nonce, ok: bool) {
        let Some(to) = self.a_connecting.iter().find(|c| c.0 == n).map(|c| c.1) else {
            return;
        };
        self.a_connecting.retain(|c| c.0 != n);
        let server = self.reach(to);
        match (ok, server) {
            (true, Some(session)) => {
                let _ = self.feed(false, Input::Connected(n));
                let _ = self.feed(true, Input::Accepted(session));
            }
            _ => {
                let _ = self.feed(false, Input::ConnectFailed(n));
            }
        }
    }

    /// Fire a peer's next deadline (its clock jumps there).
    pub fn timeout(&mut self, callee: bool) {
        let (p, t) = if callee {
            (&mut self.b, &mut self.tb)
        } else {
            (&mut self.a, &mut self.ta)
        };
        if let Some(d) = p.poll_timeout() {
            *t = (*t).max(d);
            p.handle_timeout(*t);
            self.drain();
        }
    }

    /// Move both clocks to `now` (if later) and fire what is due.
    pub fn advance(&mut self, now: Time) {
        self.ta = self.ta.max(now);
        self.tb = self.tb.max(now);
        self.a.handle_timeout(self.ta);
        self.b.handle_timeout(self.tb);
        self.drain();
    }

    /// The caller's application closes the connection of request `n`.
    pub fn close_request(&mut self, n: Nonce) {
        self.caller_gone(n);
        let _ = self.feed(false, Input::CloseRequest(n));
    }

    /// NoHalfOpenRelay, to be asked once nothing can happen any more: nothing waits at the relay
    /// and no joined pair is left (every leg ended with its request or session).
    pub fn no_relay_left(&self) -> bool {
        self.relay.is_empty() && self.relayed.is_empty()
    }

    /// The callee's application closes `session`.
    pub fn close_session(&mut self, session: SessionId) {
        self.b_servers.retain(|x| x.0 != session);
        let _ = self.feed(true, Input::CloseSession(session));
    }

    /// An attacker who does not know the shared key sends `msg` signed with `key`: by SMS "from"
    /// the caller to the callee (`callee`), or over IP to the caller. It must be rejected and
    /// change nothing; if not, `obs.forged_changed` is set.
    pub fn forge(&mut self, callee: bool, msg: Control, key: &Key) {
        let (from, to) = if callee {
            (self.caller(), self.callee())
        } else {
            (self.callee(), self.caller())
        };
        let payload = msg.encode(key, &from, &to);
        let before = if callee {
            self.b.clone()
        } else {
            self.a.clone()
        };
        let input = if callee {
            Input::Sms { from, payload }
        } else {
            Input::Ip { payload }
        };
        let r = self.feed(callee, input);
        let after = if callee { &self.b } else { &self.a };
        if r.is_ok() || *after != before {
            self.obs.forged_changed = true;
        }
    }

    /// Octets that are not a valid message from the peer (junk, a flipped bit): must be rejected
    /// and change nothing, else `obs.forged_changed` is set.
    pub fn inject(&mut self, callee: bool, input: Input) {
        let before = if callee {
            self.b.clone()
        } else {
            self.a.clone()
        };
        let r = self.feed(callee, input);
        let after = if callee { &self.b } else { &self.a };
        if r.is_ok() || *after != before {
            self.obs.forged_changed = true;
        }
    }

    /// Both peers idle: no request, no session, both radios off.
    pub fn idle(&self) -> bool {
        self.a.requests() == 0 && self.b.sessions() == 0 && !self.a.radio_on() && !self.b.radio_on()
    }

    /// EveryRequestEnds, to be asked once nothing can happen any more.
    pub fn every_request_ends(&self) -> bool {
        self.obs.every_request_ends(&self.issued, self.idle())
    }

    /// NoLeakedMapping, to be asked once nothing can happen any more: no mapping left on either
    /// NAT, every one asked for released.
    pub fn no_mapping_left(&self) -> bool {
        self.obs.all_mappings_released()
            && self.held.iter().all(Vec::is_empty)
            && self.mapping.iter().all(Vec::is_empty)
    }
}

/// A request the attacker might forge: kind `kind`, for `nonce`, pointing at `addr`.
pub fn forged(kind: Kind, nonce: Nonce, app: AppName, addr: TransportAddr) -> Control {
    Control {
        kind,
        nonce,
        seq: 1000,
        app,
        addr: Some(addr),
        mapped: None,
        mode: None,
        offer: None,
        sms_reply: false,
    }
}
