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
//! - `upnp`: both phones behind NATs with an IGD (steps E.1–E.5): each host's `Map` (AddPortMapping)
//!   may succeed or fail whenever the environment chooses; the callee answers over IP to the
//!   caller's mapped address, which reaches the caller only while its mapping is in place.
//! - `stunt`: both behind predictable NATs (steps D.1–D.6): the `Map` is the prediction; the
//!   callee answers by SMS and sends the low-TTL SYN; a connect to the callee's public address
//!   gets through only after that SYN. (What the NATs do with TTLs and ports is the `stunt`
//!   model's business; here the NAT keeps the port.) In both NAT variants NoLeakedMapping must
//!   hold: every mapping asked for is released, whatever fails.

use std::fmt::Write as _;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Duration;

use ip2p::ip2p::invariants::Invariant;
use ip2p::ip2p::wire::{AppName, Control, Key, Kind, Mode, Nonce};
use ip2p::ip2p::{Config, Peer, ReplyMatching, SessionId};
use ip2p::machine::Machine;
use ip2p::sim::ip2p::{forged, HostMapping, Pair};
use ip2p::{Msisdn, TransportAddr};
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

/// The global state: the shared world of the caller and the callee
/// ([`ip2p::sim::ip2p::Pair`]), and what the environment may still do.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct State {
    /// Peers, networks, hosts, observer.
    pub w: Pair,
    /// Requests the application may still issue.
    pub requests_left: u8,
    /// Losses or duplications the network may still cause.
    pub faults_left: u8,
    /// Forgeries the attacker may still try: bit 0 SMS, bit 1 IP.
    pub forgeries_left: u8,
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
    /// A host's mapping (E.1/E.3 AddPortMapping, D.1/D.3 prediction) is in place (`ok`) or fails.
    MapDone {
        /// The callee's host (else the caller's).
        callee: bool,
        /// Which mapping.
        m: HostMapping,
        /// In place, or failed.
        ok: bool,
    },
}

/// The model.
#[derive(Clone, Debug)]
pub struct Ip2pModel {
    matching: ReplyMatching,
    mode: Mode,
    requests: u8,
    faults: u8,
}

impl Ip2pModel {
    /// A model of `variant` (`nonce` or `no-nonce`) at `bounds`.
    pub fn new(variant: &str, bounds: &Bounds) -> Result<Self, String> {
        let (matching, mode) = match variant {
            "nonce" => (ReplyMatching::Nonce, Mode::Direct),
            "no-nonce" => (ReplyMatching::PeerOnly, Mode::Direct),
            "upnp" => (ReplyMatching::Nonce, Mode::Upnp),
            "stunt" => (ReplyMatching::Nonce, Mode::Stunt2),
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
            mode,
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
        c.map_timeout = Duration::from_secs(10);
        c.punch_wait = Duration::from_secs(1);
        c.with_mode(self.mode)
    }
}

impl Ip2pModel {
    /// Quiescent: only the attacker or replays could still act, and they change nothing.
    fn quiet(&self, s: &State) -> bool {
        let mut acts = Vec::new();
        self.actions(s, &mut acts);
        s.requests_left == 0
            && acts.iter().all(|a| {
                matches!(
                    a,
                    Action::ForgeSms
                        | Action::ForgeIp(_)
                        | Action::ReplaySms(_)
                        | Action::ReplayIp(_)
                        | Action::Resolve
                )
            })
    }
}

impl Model for Ip2pModel {
    type State = State;
    type Action = Action;

    fn init_states(&self) -> Vec<State> {
        vec![State {
            w: Pair::new(
                Peer::new(self.config(caller(), callee())),
                Peer::new(self.config(callee(), caller())),
            ),
            requests_left: self.requests,
            faults_left: self.faults,
            forgeries_left: 0b11,
        }]
    }

    fn actions(&self, s: &State, actions: &mut Vec<Action>) {
        if s.requests_left > 0 {
            actions.push(Action::Resolve);
        }
        if s.w.a_activating {
            actions.push(Action::Attach {
                callee: false,
                k: 0,
            });
        }
        if s.w.b_activating {
            for k in 0..CALLEE_IPS.len() as u8 {
                actions.push(Action::Attach { callee: true, k });
            }
        }
        for i in 0..s.w.sms.len() {
            if i == 0 || s.w.sms[i] != s.w.sms[i - 1] {
                actions.push(Action::DeliverSms(i));
                if s.faults_left > 0 {
                    actions.push(Action::LoseSms(i));
                }
            }
        }
        for i in 0..s.w.ip.len() {
            if i == 0 || s.w.ip[i] != s.w.ip[i - 1] {
                actions.push(Action::DeliverIp(i));
                if s.faults_left > 0 {
                    actions.push(Action::LoseIp(i));
                }
            }
        }
        if s.faults_left > 0 {
            actions.extend((0..s.w.sms_log.len()).map(Action::ReplaySms));
            actions.extend((0..s.w.ip_log.len()).map(Action::ReplayIp));
        }
        actions.extend(s.w.b_starting.iter().map(|x| Action::ServerUp(*x)));
        for (side, pending) in s.w.mapping.iter().enumerate() {
            for m in pending {
                for ok in [true, false] {
                    actions.push(Action::MapDone {
                        callee: side == 1,
                        m: *m,
                        ok,
                    });
                }
            }
        }
        for (n, _) in &s.w.a_connecting {
            if s.w.can_connect(*n) {
                actions.push(Action::ConnectOk(*n));
            }
            actions.push(Action::ConnectFail(*n));
        }
        if s.w.a.poll_timeout().is_some() {
            actions.push(Action::Timeout { callee: false });
        }
        if s.w.b.poll_timeout().is_some() {
            actions.push(Action::Timeout { callee: true });
        }
        for n in &s.w.issued {
            if s.w.a.is_open(*n) {
                actions.push(Action::CloseRequest(*n));
            }
        }
        for (sess, _) in &s.w.b_servers {
            actions.push(Action::CloseSession(*sess));
        }
        if s.forgeries_left & 1 != 0 {
            actions.push(Action::ForgeSms);
        }
        if s.forgeries_left & 2 != 0 {
            actions.extend(s.w.issued.iter().map(|n| Action::ForgeIp(*n)));
        }
    }

    fn next_state(&self, last: &State, action: Action) -> Option<State> {
        let mut s = last.clone();
        let w = &mut s.w;
        match action {
            Action::Resolve => {
                let nonce = Nonce(u64::from(self.requests - s.requests_left) + 1);
                s.requests_left -= 1;
                w.resolve(app(), nonce, PORT_A).ok()?;
            }
            Action::Attach { callee: false, .. } => w.attach(false, CALLER_IP),
            Action::Attach { callee: true, k } => w.attach(true, CALLEE_IPS[k as usize]),
            Action::DeliverSms(i) => w.deliver_sms(i),
            Action::DeliverIp(i) => w.deliver_ip(i),
            Action::LoseSms(i) => {
                w.sms.remove(i);
                s.faults_left -= 1;
            }
            Action::LoseIp(i) => {
                w.ip.remove(i);
                s.faults_left -= 1;
            }
            Action::ReplaySms(i) => {
                s.faults_left -= 1;
                w.replay_sms(i);
            }
            Action::ReplayIp(i) => {
                s.faults_left -= 1;
                w.replay_ip(i);
            }
            Action::ServerUp(session) => w.server_up(session, &SERVER_PORTS),
            Action::ConnectOk(n) => w.settle_connect(n, true),
            Action::ConnectFail(n) => w.settle_connect(n, false),
            Action::Timeout { callee } => w.timeout(callee),
            Action::CloseRequest(n) => w.close_request(n),
            Action::CloseSession(sess) => w.close_session(sess),
            Action::ForgeSms => {
                s.forgeries_left &= !1;
                let m = forged(Kind::Request, Nonce(99), app(), TransportAddr(EVIL));
                w.forge(true, m, &attacker_key());
            }
            Action::ForgeIp(n) => {
                s.forgeries_left &= !2;
                let m = forged(Kind::Reply, n, app(), TransportAddr(EVIL));
                w.forge(false, m, &attacker_key());
            }
            Action::MapDone { callee, m, ok } => w.map_done(callee, m, ok),
        }
        Some(s)
    }

    fn properties(&self) -> Vec<Property<Self>> {
        vec![
            Property::always("ConnectOnlyToAnnounced", |_, s: &State| {
                s.w.obs.connect_only_to_announced()
            }),
            Property::always("NoConnectBeforeIdentification", |_, s: &State| {
                s.w.obs.no_connect_before_identification()
            }),
            Property::always("AtMostOneSession", |_, s: &State| {
                s.w.obs.at_most_one_session()
            }),
            Property::always("ForgedChangesNothing", |_, s: &State| {
                s.w.obs.forged_changes_nothing()
            }),
            Property::always("EveryRequestEnds", |m: &Ip2pModel, s: &State| {
                !m.quiet(s) || s.w.every_request_ends()
            }),
            Property::always("NoLeakedMapping", |m: &Ip2pModel, s: &State| {
                s.w.obs.no_leaked_mapping() && (!m.quiet(s) || s.w.no_mapping_left())
            }),
            Property::sometimes("Connects", |_, s: &State| {
                s.w.issued.iter().any(|n| s.w.a.is_open(*n))
            }),
            Property::sometimes("ConnectsAfterLostSms", |m: &Ip2pModel, s: &State| {
                s.faults_left < m.faults
                    && s.w.a.stats().sms_resent > 0
                    && s.w.issued.iter().any(|n| s.w.a.is_open(*n))
            }),
            Property::sometimes("FailsCleanly", |_, s: &State| {
                s.requests_left == 0
                    && s.w.issued.len() == s.w.obs.ended.len()
                    && s.w.idle()
                    && s.w.obs.connects.is_empty()
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
                    after.w.issued.len()
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
                let m = &before.w.sms[*i];
                let (from, to) = if m.to_callee { ("A", "B") } else { ("B", "A") };
                steps.push(Step::send(from, to, format!("SMS: {}", msg(&m.payload))));
            }
            Action::DeliverIp(i) => {
                let d = &before.w.ip[*i];
                steps.push(Step::send(
                    "B",
                    "A",
                    format!("over IP: {}", msg(&d.payload)),
                ));
            }
            Action::LoseSms(i) => steps.push(Step::note(
                "SMS",
                format!("loses {}", msg(&before.w.sms[*i].payload)),
            )),
            Action::LoseIp(i) => steps.push(Step::note(
                "IP",
                format!("loses {}", msg(&before.w.ip[*i].payload)),
            )),
            Action::ReplaySms(i) => {
                let m = &before.w.sms_log[*i];
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
                    msg(&before.w.ip_log[*i].payload)
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
            Action::MapDone { callee, m, ok } => steps.push(Step::note(
                if *callee { "B" } else { "A" },
                format!(
                    "mapping of port {} for {:?} {}",
                    m.1,
                    m.0,
                    if *ok { "in place" } else { "failed" }
                ),
            )),
        }
        let new_connects = &after.w.obs.connects[before.w.obs.connects.len()..];
        for (n, _, to) in new_connects {
            steps.push(Step::note("A", format!("connects request {} to {to}", n.0)));
        }
        for (n, r) in after.w.obs.ended[before.w.obs.ended.len()..]
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
            s.w.obs
                .announced
                .iter()
                .map(|(n, a)| format!("{}→{a}", n.0))
                .collect::<Vec<_>>(),
            s.w.obs
                .connects
                .iter()
                .map(|(n, _, a)| format!("{}→{a}", n.0))
                .collect::<Vec<_>>()
        )
    }
}

/// The variants `ip2p-check` knows.
pub const VARIANTS: &[&str] = &["nonce", "no-nonce", "upnp", "stunt"];

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
        Invariant::NoLeakedMapping,
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
        about: "iP2P identification over SMS (B.1-B.5; D and E behind NATs) on real ip2p::ip2p::Peer machines: lossy, duplicating SMS and IP, radios, mappings, attacker",
        variants: VARIANTS,
        ci_runs: || {
            let b = |requests, faults| Bounds {
                requests: Some(requests),
                faults: Some(faults),
                ..Bounds::default()
            };
            vec![
                ("nonce", b(1, 3)),
                ("nonce", b(2, 1)),
                ("no-nonce", b(2, 0)),
                ("upnp", b(1, 3)),
                ("stunt", b(1, 3)),
            ]
        },
        run,
        explore,
    }
}
