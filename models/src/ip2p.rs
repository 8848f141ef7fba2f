//! The iP2P model: a real caller and a real callee ([`ip2p::ip2p::Peer`]), an SMS network, an IP
//! network, both phones' radios and hosts, and an attacker.
//!
//! # Fault model
//!
//! - **SMS network**: every SMS in flight may be delivered next (any delay, any order); up to
//!   `faults` times the environment loses one in flight or delivers again any SMS ever sent, at any
//!   later time (duplication and replay are the same act).
//! - **IP network**: the same for answers over IP. An answer reaches the caller only while it
//!   listens on the answer's port (else the connection is refused and the answer is gone).
//! - **Time**: each phone has its own clock; a phone's next deadline may fire at any moment (no
//!   bound on SMS delay relative to the timers). Clocks only move forward.
//! - **Radios**: an activation ends in an attachment whenever the environment chooses, or in the
//!   attach time-out. The callee's DHCP may give a different address on each attachment (two
//!   addresses); the caller always gets the same one.
//! - **Hosts**: the callee's server starts whenever the environment chooses; a TCP connect
//!   succeeds only to an address where the callee has a server listening right now, and may fail
//!   anywhere. Applications close connected sessions whenever they choose.
//! - **Attacker**: up to once each, injects a request SMS "from" the caller and an answer over IP
//!   signed with a key it made up (it does not know the shared key), besides the replays above.
//!
//! # Bounds
//!
//! `requests` (default 2) the caller's application issues, on the same reserved port (ports are
//! reused in practice, which is what lets a stale answer meet a new request); `faults`
//! (default 2). The caller sends each request at most twice (`sms_attempts = 2`).
//!
//! # Variants
//!
//! - `nonce`: the protocol. Every invariant holds.
//! - `no-nonce`: the caller matches answers by peer and application only
//!   ([`ReplyMatching::PeerOnly`]); a delayed answer to an abandoned request is taken for the next
//!   one, and the caller connects to an address never announced for it: ConnectOnlyToAnnounced is
//!   violated.

use std::fmt::Write as _;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Duration;

use ip2p::ip2p::invariants::{Invariant, Observer};
use ip2p::ip2p::wire::{AppName, Control, Key, Kind, Nonce};
use ip2p::ip2p::{Config, Event, Input, Output, Peer, ReplyMatching, SessionId};
use ip2p::machine::Machine;
use ip2p::{Msisdn, Time, TransportAddr};
use stateright::{Model, Property};

use crate::check::{self, Bounds, Expect, Narrate, RunOpts, Step};
use crate::ModelSpec;

/// The caller's number.
pub fn caller() -> Msisdn {
    Msisdn::from_international_digits("886900000001").expect("valid number")
}
/// The callee's number.
pub fn callee() -> Msisdn {
    Msisdn::from_international_digits("886900000002").expect("valid number")
}
fn app() -> AppName {
    AppName::new("ftp").expect("valid name")
}
fn shared_key() -> Key {
    Key::from_bytes([0x5a; 32])
}
fn attacker_key() -> Key {
    Key::from_bytes([0xa5; 32])
}
/// The caller's reserved port (PortA), the same for every request.
pub const PORT_A: u16 = 40000;
const CALLER_IP: IpAddr = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1));
/// The addresses the callee's DHCP may hand out.
pub const CALLEE_IPS: [IpAddr; 2] = [
    IpAddr::V4(Ipv4Addr::new(198, 51, 100, 1)),
    IpAddr::V4(Ipv4Addr::new(198, 51, 100, 2)),
];
const SERVER_PORTS: [u16; 2] = [2121, 2122];
const EVIL: SocketAddr = SocketAddr::new(IpAddr::V4(Ipv4Addr::new(203, 0, 113, 66)), 22);

/// One SMS in flight.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Sms {
    /// Toward the callee (else toward the caller).
    pub to_callee: bool,
    /// The user data.
    pub payload: Vec<u8>,
}

/// One control message in flight over IP (to the caller).
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Datagram {
    /// Where to.
    pub to: TransportAddr,
    /// The message.
    pub payload: Vec<u8>,
}

/// The global state.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct State {
    /// The caller and its clock.
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
    /// The caller's host is switching the radio on.
    pub a_activating: bool,
    /// The callee's host is switching the radio on.
    pub b_activating: bool,
    /// (request, port) the caller's host listens on for answers.
    pub a_listening: Vec<(Nonce, u16)>,
    /// Connects the caller's host is making.
    pub a_connecting: Vec<(Nonce, TransportAddr)>,
    /// Servers the callee's host is starting.
    pub b_starting: Vec<SessionId>,
    /// Servers listening: (session, address).
    pub b_servers: Vec<(SessionId, TransportAddr)>,
    /// Requests issued so far.
    pub issued: Vec<Nonce>,
    /// Requests the application may still issue.
    pub requests_left: u8,
    /// Losses or duplications the network may still cause.
    pub faults_left: u8,
    /// Forgeries the attacker may still try: bit 0 SMS, bit 1 IP.
    pub forgeries_left: u8,
    /// What the invariants look at.
    pub obs: Observer,
}

/// What can happen next.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Action {
    /// The caller's application asks for the callee's address (B.1).
    Resolve,
    /// A phone's radio attaches; for the callee, DHCP gives address `CALLEE_IPS[k]`.
    Attach {
        /// The callee (else the caller).
        callee: bool,
        /// Which address.
        k: u8,
    },
    /// Deliver SMS `i` of the in-flight list.
    DeliverSms(usize),
    /// Deliver IP answer `i`.
    DeliverIp(usize),
    /// Lose SMS `i`.
    LoseSms(usize),
    /// Lose IP answer `i`.
    LoseIp(usize),
    /// Deliver again entry `i` of the SMS log (duplicate or replay).
    ReplaySms(usize),
    /// Deliver again entry `i` of the IP log.
    ReplayIp(usize),
    /// The callee's server for this session listens.
    ServerUp(SessionId),
    /// The caller's connect for this request succeeds.
    ConnectOk(Nonce),
    /// The caller's connect for this request fails.
    ConnectFail(Nonce),
    /// A phone's next deadline fires.
    Timeout {
        /// The callee (else the caller).
        callee: bool,
    },
    /// The caller's application closes the connection of this request.
    CloseRequest(Nonce),
    /// The callee's application closes this session.
    CloseSession(SessionId),
    /// The attacker sends the callee a request "from" the caller, under a key it made up.
    ForgeSms,
    /// The attacker sends the caller an answer for this request, under a key it made up.
    ForgeIp(Nonce),
}

/// The model.
#[derive(Clone, Debug)]
pub struct Ip2pModel {
    matching: ReplyMatching,
    requests: u8,
    faults: u8,
}

impl Ip2pModel {
    /// A model of `variant` (`nonce` or `no-nonce`) at `bounds`.
    pub fn new(variant: &str, bounds: &Bounds) -> Result<Self, String> {
        let matching = match variant {
            "nonce" => ReplyMatching::Nonce,
            "no-nonce" => ReplyMatching::PeerOnly,
            other => {
                return Err(format!(
                    "unknown ip2p variant {other:?}; variants: {}",
                    VARIANTS.join(", ")
                ))
            }
        };
        let requests = bounds.requests.unwrap_or(2);
        let faults = bounds.faults.unwrap_or(2);
        if requests == 0 || requests > 4 {
            return Err("ip2p: requests must be 1 to 4".into());
        }
        Ok(Ip2pModel {
            matching,
            requests,
            faults,
        })
    }

    fn config(&self, me: Msisdn, other: Msisdn) -> Config {
        let mut c = Config::new(me)
            .with_peer(other, shared_key())
            .with_app(app());
        c.sms_attempts = 2;
        c.sms_timeout = Duration::from_secs(10);
        c.attach_timeout = Duration::from_secs(20);
        c.connect_timeout = Duration::from_secs(10);
        c.serve_timeout = Duration::from_secs(30);
        c.idle_off = Duration::from_secs(5);
        c.reply_matching = self.matching;
        c
    }
}

fn insert_sorted<T: Ord>(v: &mut Vec<T>, x: T) {
    let i = v.partition_point(|y| y <= &x);
    v.insert(i, x);
}

fn insert_unique<T: Ord>(v: &mut Vec<T>, x: T) {
    if let Err(i) = v.binary_search(&x) {
        v.insert(i, x);
    }
}

impl State {
    /// Feed the caller and carry out its outputs.
    fn feed_a(&mut self, input: Input) -> Result<(), ip2p::ip2p::Error> {
        let r = self.a.handle(self.ta, input);
        self.drain_a();
        r
    }

    fn feed_b(&mut self, input: Input) -> Result<(), ip2p::ip2p::Error> {
        let r = self.b.handle(self.tb, input);
        self.drain_b();
        r
    }

    fn drain_a(&mut self) {
        while let Some(o) = self.a.poll() {
            self.obs.caller(&o);
            match o {
                Output::SendSms { payload, .. } => {
                    let s = Sms {
                        to_callee: true,
                        payload,
                    };
                    insert_unique(&mut self.sms_log, s.clone());
                    insert_sorted(&mut self.sms, s);
                }
                Output::Listen { nonce, port } => self.a_listening.push((nonce, port)),
                Output::StopListening { nonce, port } => {
                    self.a_listening.retain(|l| *l != (nonce, port))
                }
                Output::Connect { nonce, to, .. } => self.a_connecting.push((nonce, to)),
                Output::ActivateBroadband => self.a_activating = true,
                Output::DeactivateBroadband => self.a_activating = false,
                Output::Event(Event::Failed { nonce, .. }) => {
                    self.a_connecting.retain(|c| c.0 != nonce)
                }
                _ => {}
            }
        }
    }

    fn drain_b(&mut self) {
        while let Some(o) = self.b.poll() {
            self.obs.callee(&o);
            match o {
                Output::SendSms { payload, .. } => {
                    let s = Sms {
                        to_callee: false,
                        payload,
                    };
                    insert_unique(&mut self.sms_log, s.clone());
                    insert_sorted(&mut self.sms, s);
                }
                Output::SendIp { to, payload } => {
                    let d = Datagram { to, payload };
                    insert_unique(&mut self.ip_log, d.clone());
                    insert_sorted(&mut self.ip, d);
                }
                Output::StartServer { session, .. } => self.b_starting.push(session),
                Output::StopServer(session) => {
                    self.b_starting.retain(|s| *s != session);
                    self.b_servers.retain(|s| s.0 != session);
                }
                Output::ActivateBroadband => self.b_activating = true,
                Output::DeactivateBroadband => {
                    self.b_activating = false;
                    // the radio is off: no server of the callee is reachable any more
                    self.b_servers.clear();
                }
                Output::Event(Event::SessionFailed { session, .. }) => {
                    self.b_starting.retain(|s| *s != session);
                    self.b_servers.retain(|s| s.0 != session);
                }
                _ => {}
            }
        }
    }

    fn deliver_sms(&mut self, s: Sms) {
        insert_unique(&mut self.sms_delivered, s.clone());
        if s.to_callee {
            let _ = self.feed_b(Input::Sms {
                from: caller(),
                payload: s.payload,
            });
        } else {
            let _ = self.feed_a(Input::Sms {
                from: callee(),
                payload: s.payload,
            });
        }
    }

    fn deliver_ip(&mut self, d: Datagram) {
        if self.a_listening.iter().any(|(_, p)| *p == d.to.0.port())
            && self.a.ip() == Some(d.to.0.ip())
        {
            let _ = self.feed_a(Input::Ip { payload: d.payload });
        }
    }

    /// Nothing left in flight at either host or peer.
    fn idle(&self) -> bool {
        self.a.requests() == 0 && self.b.sessions() == 0 && !self.a.radio_on() && !self.b.radio_on()
    }
}

impl Model for Ip2pModel {
    type State = State;
    type Action = Action;

    fn init_states(&self) -> Vec<State> {
        vec![State {
            a: Peer::new(self.config(caller(), callee())),
            ta: Time::ZERO,
            b: Peer::new(self.config(callee(), caller())),
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
            requests_left: self.requests,
            faults_left: self.faults,
            forgeries_left: 0b11,
            obs: Observer::default(),
        }]
    }

    fn actions(&self, s: &State, actions: &mut Vec<Action>) {
        if s.requests_left > 0 {
            actions.push(Action::Resolve);
        }
        if s.a_activating {
            actions.push(Action::Attach {
                callee: false,
                k: 0,
            });
        }
        if s.b_activating {
            for k in 0..CALLEE_IPS.len() as u8 {
                actions.push(Action::Attach { callee: true, k });
            }
        }
        for i in 0..s.sms.len() {
            if i == 0 || s.sms[i] != s.sms[i - 1] {
                actions.push(Action::DeliverSms(i));
                if s.faults_left > 0 {
                    actions.push(Action::LoseSms(i));
                }
            }
        }
        for i in 0..s.ip.len() {
            if i == 0 || s.ip[i] != s.ip[i - 1] {
                actions.push(Action::DeliverIp(i));
                if s.faults_left > 0 {
                    actions.push(Action::LoseIp(i));
                }
            }
        }
        if s.faults_left > 0 {
            actions.extend((0..s.sms_log.len()).map(Action::ReplaySms));
            actions.extend((0..s.ip_log.len()).map(Action::ReplayIp));
        }
        actions.extend(s.b_starting.iter().map(|x| Action::ServerUp(*x)));
        for (n, to) in &s.a_connecting {
            if s.b_servers.iter().any(|(_, a)| a == to) {
                actions.push(Action::ConnectOk(*n));
            }
            actions.push(Action::ConnectFail(*n));
        }
        if s.a.poll_timeout().is_some() {
            actions.push(Action::Timeout { callee: false });
        }
        if s.b.poll_timeout().is_some() {
            actions.push(Action::Timeout { callee: true });
        }
        for n in &s.issued {
            if s.a.is_open(*n) {
                actions.push(Action::CloseRequest(*n));
            }
        }
        for (sess, _) in &s.b_servers {
            actions.push(Action::CloseSession(*sess));
        }
        if s.forgeries_left & 1 != 0 {
            actions.push(Action::ForgeSms);
        }
        if s.forgeries_left & 2 != 0 {
            actions.extend(s.issued.iter().map(|n| Action::ForgeIp(*n)));
        }
    }

    fn next_state(&self, last: &State, action: Action) -> Option<State> {
        let mut s = last.clone();
        match action {
            Action::Resolve => {
                let nonce = Nonce(u64::from(self.requests - s.requests_left) + 1);
                s.requests_left -= 1;
                s.issued.push(nonce);
                s.feed_a(Input::Resolve {
                    to: callee(),
                    app: app(),
                    nonce,
                    port: PORT_A,
                })
                .ok()?;
            }
            Action::Attach { callee: false, .. } => {
                s.a_activating = false;
                let _ = s.feed_a(Input::BroadbandUp { ip: CALLER_IP });
            }
            Action::Attach { callee: true, k } => {
                s.b_activating = false;
                let _ = s.feed_b(Input::BroadbandUp {
                    ip: CALLEE_IPS[k as usize],
                });
            }
            Action::DeliverSms(i) => {
                let m = s.sms.remove(i);
                s.deliver_sms(m);
            }
            Action::DeliverIp(i) => {
                let d = s.ip.remove(i);
                s.deliver_ip(d);
            }
            Action::LoseSms(i) => {
                s.sms.remove(i);
                s.faults_left -= 1;
            }
            Action::LoseIp(i) => {
                s.ip.remove(i);
                s.faults_left -= 1;
            }
            Action::ReplaySms(i) => {
                s.faults_left -= 1;
                let m = s.sms_log[i].clone();
                let seen = s.sms_delivered.binary_search(&m).is_ok();
                let (before_a, before_b) = (s.a.clone(), s.b.clone());
                s.deliver_sms(m);
                // a second delivery of an SMS (the network's duplicate or an attacker's replay)
                // may be answered again, but must change no state
                if seen && (s.a != before_a || s.b != before_b) {
                    s.obs.forged_changed = true;
                }
            }
            Action::ReplayIp(i) => {
                s.faults_left -= 1;
                let d = s.ip_log[i].clone();
                s.deliver_ip(d);
            }
            Action::ServerUp(session) => {
                s.b_starting.retain(|x| *x != session);
                let port = SERVER_PORTS
                    .iter()
                    .find(|p| !s.b_servers.iter().any(|(_, a)| a.0.port() == **p));
                match (s.b.ip(), port) {
                    (Some(ip), Some(&port)) => {
                        let addr = TransportAddr(SocketAddr::new(ip, port));
                        s.b_servers.push((session, addr));
                        let _ = s.feed_b(Input::ServerListening { session, port });
                    }
                    _ => {
                        let _ = s.feed_b(Input::ServerFailed(session));
                    }
                }
            }
            Action::ConnectOk(n) => {
                let to = s.a_connecting.iter().find(|c| c.0 == n)?.1;
                s.a_connecting.retain(|c| c.0 != n);
                let session = s.b_servers.iter().find(|(_, a)| *a == to)?.0;
                let _ = s.feed_a(Input::Connected(n));
                // the connection lands on whichever server listens there
                let _ = s.feed_b(Input::Accepted(session));
            }
            Action::ConnectFail(n) => {
                s.a_connecting.retain(|c| c.0 != n);
                let _ = s.feed_a(Input::ConnectFailed(n));
            }
            Action::Timeout { callee: false } => {
                let t = s.a.poll_timeout()?;
                s.ta = s.ta.max(t);
                s.a.handle_timeout(s.ta);
                s.drain_a();
            }
            Action::Timeout { callee: true } => {
                let t = s.b.poll_timeout()?;
                s.tb = s.tb.max(t);
                s.b.handle_timeout(s.tb);
                s.drain_b();
            }
            Action::CloseRequest(n) => {
                let _ = s.feed_a(Input::CloseRequest(n));
            }
            Action::CloseSession(sess) => {
                s.b_servers.retain(|x| x.0 != sess);
                let _ = s.feed_b(Input::CloseSession(sess));
            }
            Action::ForgeSms => {
                s.forgeries_left &= !1;
                let payload = Control {
                    kind: Kind::Request,
                    nonce: Nonce(99),
                    seq: 1000,
                    app: app(),
                    addr: Some(TransportAddr(EVIL)),
                    mapped: None,
                    mode: None,
                }
                .encode(&attacker_key(), &caller(), &callee());
                let before = s.b.clone();
                let r = s.feed_b(Input::Sms {
                    from: caller(),
                    payload,
                });
                if r.is_ok() || s.b != before {
                    s.obs.forged_changed = true;
                }
            }
            Action::ForgeIp(n) => {
                s.forgeries_left &= !2;
                let payload = Control {
                    kind: Kind::Reply,
                    nonce: n,
                    seq: 1,
                    app: app(),
                    addr: Some(TransportAddr(EVIL)),
                    mapped: None,
                    mode: None,
                }
                .encode(&attacker_key(), &callee(), &caller());
                let before = s.a.clone();
                let r = s.feed_a(Input::Ip { payload });
                if r.is_ok() || s.a != before {
                    s.obs.forged_changed = true;
                }
            }
        }
        Some(s)
    }

    fn properties(&self) -> Vec<Property<Self>> {
        vec![
            Property::always("ConnectOnlyToAnnounced", |_, s: &State| {
                s.obs.connect_only_to_announced()
            }),
            Property::always("NoConnectBeforeIdentification", |_, s: &State| {
                s.obs.no_connect_before_identification()
            }),
            Property::always("AtMostOneSession", |_, s: &State| {
                s.obs.at_most_one_session()
            }),
            Property::always("ForgedChangesNothing", |_, s: &State| {
                s.obs.forged_changes_nothing()
            }),
            Property::always("EveryRequestEnds", |m: &Ip2pModel, s: &State| {
                let mut acts = Vec::new();
                m.actions(s, &mut acts);
                // quiescent: only the attacker or replays could still act, and they change nothing
                let quiet = acts.iter().all(|a| {
                    matches!(
                        a,
                        Action::ForgeSms
                            | Action::ForgeIp(_)
                            | Action::ReplaySms(_)
                            | Action::ReplayIp(_)
                            | Action::Resolve
                    )
                }) && s.requests_left == 0;
                !quiet || s.obs.every_request_ends(&s.issued, s.idle())
            }),
            Property::sometimes("Connects", |_, s: &State| {
                s.issued.iter().any(|n| s.a.is_open(*n))
            }),
            Property::sometimes("ConnectsAfterLostSms", |m: &Ip2pModel, s: &State| {
                s.faults_left < m.faults
                    && s.a.stats().sms_resent > 0
                    && s.issued.iter().any(|n| s.a.is_open(*n))
            }),
            Property::sometimes("FailsCleanly", |_, s: &State| {
                s.requests_left == 0
                    && s.issued.len() == s.obs.ended.len()
                    && s.idle()
                    && s.obs.connects.is_empty()
            }),
        ]
    }
}

impl Narrate for Ip2pModel {
    fn actors(&self) -> Vec<String> {
        vec![
            "App-A".into(),
            "A".into(),
            "SMS".into(),
            "IP".into(),
            "B".into(),
            "Attacker".into(),
        ]
    }

    fn narrate(&self, before: &State, action: &Action, after: &State) -> Vec<Step> {
        let mut steps = Vec::new();
        let msg = |p: &[u8]| match Control::parse(p) {
            Ok(c) => {
                let mut t = format!("{:?} nonce {} seq {}", c.kind, c.nonce.0, c.seq);
                if let Some(a) = c.addr {
                    let _ = write!(t, " addr {a}");
                }
                t
            }
            Err(e) => format!("undecodable ({e})"),
        };
        match action {
            Action::Resolve => steps.push(Step::send(
                "App-A",
                "A",
                format!(
                    "resolve {} for ftp (request {})",
                    callee(),
                    after.issued.len()
                ),
            )),
            Action::Attach { callee, k } => steps.push(Step::note(
                if *callee { "B" } else { "A" },
                if *callee {
                    format!("radio attached, DHCP gives {}", CALLEE_IPS[*k as usize])
                } else {
                    format!("radio attached, DHCP gives {CALLER_IP}")
                },
            )),
            Action::DeliverSms(i) => {
                let m = &before.sms[*i];
                let (from, to) = if m.to_callee { ("A", "B") } else { ("B", "A") };
                steps.push(Step::send(from, to, format!("SMS: {}", msg(&m.payload))));
            }
            Action::DeliverIp(i) => {
                let d = &before.ip[*i];
                steps.push(Step::send(
                    "B",
                    "A",
                    format!("over IP: {}", msg(&d.payload)),
                ));
            }
            Action::LoseSms(i) => steps.push(Step::note(
                "SMS",
                format!("loses {}", msg(&before.sms[*i].payload)),
            )),
            Action::LoseIp(i) => steps.push(Step::note(
                "IP",
                format!("loses {}", msg(&before.ip[*i].payload)),
            )),
            Action::ReplaySms(i) => {
                let m = &before.sms_log[*i];
                let (from, to) = if m.to_callee { ("A", "B") } else { ("B", "A") };
                steps.push(Step::send(
                    from,
                    to,
                    format!("SMS again (duplicate/replay): {}", msg(&m.payload)),
                ));
            }
            Action::ReplayIp(i) => steps.push(Step::send(
                "B",
                "A",
                format!(
                    "over IP again (duplicate/delayed): {}",
                    msg(&before.ip_log[*i].payload)
                ),
            )),
            Action::ServerUp(sess) => steps.push(Step::note(
                "B",
                format!("server for request {} listens", sess.nonce.0),
            )),
            Action::ConnectOk(n) => steps.push(Step::send(
                "A",
                "B",
                format!("TCP connect for request {} succeeds", n.0),
            )),
            Action::ConnectFail(n) => steps.push(Step::note(
                "A",
                format!("TCP connect for request {} fails", n.0),
            )),
            Action::Timeout { callee } => {
                steps.push(Step::note(if *callee { "B" } else { "A" }, "timer fires"))
            }
            Action::CloseRequest(n) => {
                steps.push(Step::send("App-A", "A", format!("close request {}", n.0)))
            }
            Action::CloseSession(sess) => steps.push(Step::note(
                "B",
                format!("application closes session {}", sess.nonce.0),
            )),
            Action::ForgeSms => steps.push(Step::send("Attacker", "B", "forged request SMS")),
            Action::ForgeIp(n) => steps.push(Step::send(
                "Attacker",
                "A",
                format!("forged answer for request {}", n.0),
            )),
        }
        let new_connects = &after.obs.connects[before.obs.connects.len()..];
        for (n, to) in new_connects {
            steps.push(Step::note("A", format!("connects request {} to {to}", n.0)));
        }
        for (n, r) in after.obs.ended[before.obs.ended.len()..]
            .iter()
            .map(|n| (n, "ends"))
        {
            steps.push(Step::note("A", format!("request {} {r}", n.0)));
        }
        steps
    }

    fn describe_state(&self, s: &State) -> String {
        format!(
            "announced {:?}; connects {:?}",
            s.obs
                .announced
                .iter()
                .map(|(n, a)| format!("{}→{a}", n.0))
                .collect::<Vec<_>>(),
            s.obs
                .connects
                .iter()
                .map(|(n, a)| format!("{}→{a}", n.0))
                .collect::<Vec<_>>()
        )
    }
}

/// The variants `ip2p-check` knows.
pub const VARIANTS: &[&str] = &["nonce", "no-nonce"];

/// What each variant is expected to show.
pub fn expectation(variant: &str, property: &str) -> Option<Expect> {
    match (variant, property) {
        ("no-nonce", "ConnectOnlyToAnnounced") => Some(Expect::Violate),
        ("no-nonce", _) => None,
        (_, _) => Some(Expect::Hold),
    }
}

/// The invariant names, as [`Invariant::name`] spells them (checked by a test).
pub fn invariant_names() -> Vec<&'static str> {
    [
        Invariant::ConnectOnlyToAnnounced,
        Invariant::NoConnectBeforeIdentification,
        Invariant::AtMostOneSession,
        Invariant::EveryRequestEnds,
        Invariant::ForgedChangesNothing,
    ]
    .iter()
    .map(|i| i.name())
    .collect()
}

fn run(variant: &str, bounds: &Bounds, opts: &RunOpts) -> Result<Vec<check::Row>, String> {
    let model = Ip2pModel::new(variant, bounds)?;
    let mut opts = opts.clone();
    if variant == "no-nonce" {
        opts.bfs = true;
    }
    Ok(check::check(
        model,
        "ip2p",
        variant,
        |p| expectation(variant, p),
        bounds,
        &opts,
    ))
}

fn explore(variant: &str, bounds: &Bounds, addr: std::net::SocketAddr) -> Result<(), String> {
    check::explore(Ip2pModel::new(variant, bounds)?, addr)
}

/// The registry entry.
pub fn spec() -> ModelSpec {
    ModelSpec {
        name: "ip2p",
        about: "iP2P identification over SMS (B.1-B.5) on real ip2p::ip2p::Peer machines: lossy, duplicating SMS and IP, radios, attacker",
        variants: VARIANTS,
        ci_runs: || {
            let b = |requests, faults| Bounds {
                requests: Some(requests),
                faults: Some(faults),
                ..Bounds::default()
            };
            vec![("nonce", b(1, 3)), ("nonce", b(2, 1)), ("no-nonce", b(2, 0))]
        },
        run,
        explore,
    }
}
