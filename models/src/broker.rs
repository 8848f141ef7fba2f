//! The P2PBroker model: a brokered caller and callee ([`ip2p::ip2p::Peer`] with a
//! [`BrokerConfig`]) on every pair of networks — public, predictable NAT, NAT with an UPnP IGD,
//! symmetric NAT — plus two pairs where the callee's profile is stale (it says more than the
//! network allows), with a relay.
//!
//! # Fault model
//!
//! The world is [`ip2p::sim::ip2p::Pair`] in its brokered form ([`Pair::with_nets`]): a
//! mapping the network cannot give fails; a connect succeeds only where the network lets it in
//! (own address only when public, an IGD mapping, a predicted mapping only after the callee's
//! low-TTL SYN, the relay once both legs are there). Orders are arbitrary: SMS and answers are
//! delivered in any order, timers fire whenever the environment chooses (a timer that fires
//! while the network could still deliver is recorded: the promises below assume the network is
//! faster than the time-outs). Up to `faults` times
//! the environment also loses an SMS or answer, fails a mapping the network could give, fails a
//! connect, or drops a relay entry.
//!
//! # Invariants (names as in `spec/broker.md`)
//!
//! - **ModeOnlyIfPossible**: a session is only ever reached by a mode the callee's *profile*
//!   allows and the caller offered; a caller connects only in the mode the callee named.
//! - **CheapestModeFirst**: with truthful profiles, no fault and timers slower than the network,
//!   the mode in use is the cheapest the two networks allow.
//! - **EveryAttemptEnds**: once nothing can happen any more, the request has ended (connected,
//!   or failed with a reason) and both peers are idle.
//! - **ConnectsWhenPossible**: once nothing can happen any more, with no fault injected and no
//!   timer fired while the network could still deliver, the request connected (every pair of
//!   networks has a working mode here: the relay) — even when a profile was stale (that is what
//!   falling back is for).
//! - **NoLeakedMapping**: every mapping asked for is released; none is left on either NAT.
//! - **NoHalfOpenRelay**: once nothing can happen any more, nothing waits at the relay and no
//!   relayed pair is left.
//!
//! # Variants
//!
//! - `broker`: the protocol. Every invariant holds.
//! - `no-fallback`: [`BrokerConfig::fallback`] off — a peer gives up at the first failed mode.
//!   With a stale profile the checker finds a request that fails although the relay would have
//!   carried it (ConnectsWhenPossible violated).

use std::net::{IpAddr, Ipv4Addr};
use std::time::Duration;

use ip2p::broker::{modes, BrokerConfig};
use ip2p::ip2p::wire::{AppName, Key, Mode, Nonce};
use ip2p::ip2p::{Config, Peer, SessionId};
use ip2p::machine::Machine;
use ip2p::sim::ip2p::{HostMapping, NetKind, Pair, CALLEE_LOCAL, CALLER_LOCAL, RELAY};
use ip2p::Msisdn;
use stateright::{Model, Property};

use crate::check::{self, Bounds, Expect, Narrate, RunOpts, Step};
use crate::ModelSpec;

fn caller() -> Msisdn {
    Msisdn::from_international_digits("886900000001").expect("valid number")
}
fn callee() -> Msisdn {
    Msisdn::from_international_digits("886900000002").expect("valid number")
}
fn app() -> AppName {
    AppName::new("ftp").expect("valid name")
}
const PORT_A: u16 = 40000;
const SERVER_PORTS: [u16; 2] = [2121, 2122];
const NONCE: Nonce = Nonce(1);

/// The cheapest mode the real networks allow (with a relay), as the mode table says.
pub fn cheapest(caller: NetKind, callee: NetKind) -> Mode {
    let pa = caller.profile(CALLER_LOCAL, IpAddr::V4(Ipv4Addr::new(203, 0, 113, 1)));
    let pb = callee.profile(CALLEE_LOCAL, IpAddr::V4(Ipv4Addr::new(203, 0, 113, 2)));
    let can = modes::caller_offer(&pa).and(modes::callee_modes(&pb, true));
    can.cheapest().unwrap_or(Mode::Relay)
}

/// The global state.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct State {
    /// Peers, networks, hosts, relay, observer.
    pub w: Pair,
    /// The callee's profile tells the truth about its network.
    pub truthful: bool,
    /// The request was issued.
    pub resolved: bool,
    /// Faults the environment may still inject.
    pub faults_left: u8,
    /// A timer fired while the network could still have delivered or settled something (the
    /// run left the timing assumption "the network is faster than the time-outs").
    pub early_timer: bool,
}

/// What can happen next.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Action {
    /// The caller's application asks to connect to the callee.
    Resolve,
    /// A radio attaches (the callee's else the caller's).
    Attach(bool),
    /// Deliver SMS `i`.
    DeliverSms(usize),
    /// Deliver answer `i` over IP.
    DeliverIp(usize),
    /// Lose SMS `i` (a fault).
    LoseSms(usize),
    /// Lose answer `i` (a fault).
    LoseIp(usize),
    /// The callee's server listens.
    ServerUp(SessionId),
    /// A mapping ends: in place if the network allows and `ok` (`!ok` is a fault).
    MapDone {
        /// The callee's (else the caller's).
        callee: bool,
        /// Which.
        m: HostMapping,
        /// Not failed by the environment.
        ok: bool,
    },
    /// The caller's connect ends: connected where the network lets it in, unless failed (a
    /// fault).
    Connect {
        /// The request.
        n: Nonce,
        /// Not failed by the environment.
        ok: bool,
    },
    /// The relay joins entry `i`.
    RelayJoin(usize),
    /// The relay drops entry `i` (a fault).
    RelayDrop(usize),
    /// A peer's next deadline fires (the callee's else the caller's).
    Timeout(bool),
    /// The caller's application closes its connection.
    CloseRequest,
    /// The callee's application closes a session.
    CloseSession(SessionId),
}

/// The model.
#[derive(Clone, Debug)]
pub struct BrokerModel {
    fallback: bool,
    faults: u8,
}

/// The pairs of networks (caller's, callee's) and the callee's profile (`None`: truthful).
pub fn combinations() -> Vec<([NetKind; 2], Option<NetKind>)> {
    let mut v: Vec<_> = NetKind::ALL
        .iter()
        .flat_map(|a| NetKind::ALL.iter().map(move |b| ([*a, *b], None)))
        .collect();
    // stale profiles: the callee moved and its profile says more than its network allows
    v.push(([NetKind::Public, NetKind::Symmetric], Some(NetKind::Public)));
    v.push((
        [NetKind::Predictable, NetKind::Predictable],
        Some(NetKind::Igd),
    ));
    v
}

impl BrokerModel {
    /// A model of `variant` at `bounds`.
    pub fn new(variant: &str, bounds: &Bounds) -> Result<Self, String> {
        let fallback = match variant {
            "broker" => true,
            "no-fallback" => false,
            other => {
                return Err(format!(
                    "unknown broker variant {other:?}; variants: {}",
                    VARIANTS.join(", ")
                ))
            }
        };
        Ok(BrokerModel {
            fallback,
            faults: bounds.faults.unwrap_or(0),
        })
    }

    fn config(&self, me: Msisdn, other: Msisdn) -> Config {
        let broker = BrokerConfig {
            relay: Some(RELAY),
            fallback: self.fallback,
            ..BrokerConfig::default()
        };
        let mut c = Config::new(me)
            .with_peer(other, Key::from_bytes([0x5a; 32]))
            .with_app(app())
            .with_broker(broker);
        c.sms_attempts = 1;
        c.sms_timeout = Duration::from_secs(10);
        c.attach_timeout = Duration::from_secs(20);
        c.connect_timeout = Duration::from_secs(10);
        c.serve_timeout = Duration::from_secs(30);
        c.idle_off = Duration::from_secs(5);
        c.map_timeout = Duration::from_secs(10);
        c.punch_wait = Duration::from_secs(1);
        c
    }

    /// Something other than a timer, a close or a fault could happen now.
    fn progress_possible(&self, s: &State) -> bool {
        let mut acts = Vec::new();
        self.actions(s, &mut acts);
        acts.iter().any(|a| {
            matches!(
                a,
                Action::Resolve
                    | Action::Attach(_)
                    | Action::DeliverSms(_)
                    | Action::DeliverIp(_)
                    | Action::ServerUp(_)
                    | Action::MapDone { ok: true, .. }
                    | Action::Connect { ok: true, .. }
                    | Action::RelayJoin(_)
            )
        })
    }

    /// The run kept to the assumptions under which the broker promises a connection: no fault
    /// injected, no timer fired early.
    fn kept_promises(&self, s: &State) -> bool {
        s.faults_left == self.faults && !s.early_timer
    }

    fn quiet(&self, s: &State) -> bool {
        let mut acts = Vec::new();
        self.actions(s, &mut acts);
        s.resolved && acts.is_empty()
    }
}

/// The caller's and the callee's real networks.
fn nets(s: &State) -> [NetKind; 2] {
    s.w.nets.unwrap_or([NetKind::Public; 2])
}

impl Model for BrokerModel {
    type State = State;
    type Action = Action;

    fn init_states(&self) -> Vec<State> {
        combinations()
            .into_iter()
            .map(|(nets, stale)| {
                let mut w = Pair::with_nets(
                    Peer::new(self.config(caller(), callee())),
                    Peer::new(self.config(callee(), caller())),
                    nets,
                );
                if let Some(claim) = stale {
                    let p = claim.profile(CALLEE_LOCAL, ip2p::sim::ip2p::NAT_B);
                    let _ = w.feed(true, ip2p::ip2p::Input::Profile(p));
                }
                State {
                    w,
                    truthful: stale.is_none(),
                    resolved: false,
                    faults_left: self.faults,
                    early_timer: false,
                }
            })
            .collect()
    }

    fn actions(&self, s: &State, actions: &mut Vec<Action>) {
        let w = &s.w;
        let fault = s.faults_left > 0;
        if !s.resolved {
            actions.push(Action::Resolve);
        }
        if w.a_activating {
            actions.push(Action::Attach(false));
        }
        if w.b_activating {
            actions.push(Action::Attach(true));
        }
        for i in 0..w.sms.len() {
            actions.push(Action::DeliverSms(i));
            if fault {
                actions.push(Action::LoseSms(i));
            }
        }
        for i in 0..w.ip.len() {
            actions.push(Action::DeliverIp(i));
            if fault {
                actions.push(Action::LoseIp(i));
            }
        }
        actions.extend(w.b_starting.iter().map(|x| Action::ServerUp(*x)));
        for (side, pending) in w.mapping.iter().enumerate() {
            for m in pending {
                actions.push(Action::MapDone {
                    callee: side == 1,
                    m: *m,
                    ok: true,
                });
                if fault {
                    actions.push(Action::MapDone {
                        callee: side == 1,
                        m: *m,
                        ok: false,
                    });
                }
            }
        }
        for (n, _) in &w.a_connecting {
            actions.push(Action::Connect { n: *n, ok: true });
            if fault {
                actions.push(Action::Connect { n: *n, ok: false });
            }
        }
        for (i, l) in w.relay.iter().enumerate() {
            if l.caller.is_some() && l.callee.is_some() {
                actions.push(Action::RelayJoin(i));
            }
            if fault {
                actions.push(Action::RelayDrop(i));
            }
        }
        if w.a.poll_timeout().is_some() {
            actions.push(Action::Timeout(false));
        }
        if w.b.poll_timeout().is_some() {
            actions.push(Action::Timeout(true));
        }
        if w.a.is_open(NONCE) {
            actions.push(Action::CloseRequest);
        }
        // the callee's application hangs up only after the caller's request ended (else its
        // server times out on its own)
        if w.obs.ended.contains(&NONCE) {
            for (sess, _) in &w.b_servers {
                actions.push(Action::CloseSession(*sess));
            }
        }
    }

    fn next_state(&self, last: &State, action: Action) -> Option<State> {
        let mut s = last.clone();
        let w = &mut s.w;
        match action {
            Action::Resolve => {
                s.resolved = true;
                w.resolve(app(), NONCE, PORT_A).ok()?;
            }
            Action::Attach(true) => w.attach(true, CALLEE_LOCAL),
            Action::Attach(false) => w.attach(false, CALLER_LOCAL),
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
            Action::ServerUp(sess) => w.server_up(sess, &SERVER_PORTS),
            Action::MapDone { callee, m, ok } => {
                if !ok {
                    s.faults_left -= 1;
                }
                w.map_done(callee, m, ok);
            }
            Action::Connect { n, ok } => {
                if !ok {
                    s.faults_left -= 1;
                }
                w.settle_connect(n, ok);
            }
            Action::RelayJoin(i) => w.relay_join(i),
            Action::RelayDrop(i) => {
                s.faults_left -= 1;
                w.relay_drop(i);
            }
            Action::Timeout(callee) => {
                s.early_timer |= self.progress_possible(last);
                s.w.timeout(callee);
            }
            Action::CloseRequest => w.close_request(NONCE),
            Action::CloseSession(sess) => w.close_session(sess),
        }
        Some(s)
    }

    fn properties(&self) -> Vec<Property<Self>> {
        vec![
            Property::always("ModeOnlyIfPossible", |_, s: &State| {
                mode_only_if_possible(s)
            }),
            Property::always("CheapestModeFirst", |m: &BrokerModel, s: &State| {
                !m.kept_promises(s) || cheapest_mode_first(s)
            }),
            Property::always("EveryAttemptEnds", |m: &BrokerModel, s: &State| {
                !m.quiet(s) || s.w.every_request_ends()
            }),
            Property::always("ConnectsWhenPossible", |m: &BrokerModel, s: &State| {
                !m.quiet(s)
                    || !m.kept_promises(s)
                    || s.w.obs.ended.contains(&NONCE) && s.w.obs.failure(NONCE).is_none()
            }),
            Property::always("NoLeakedMapping", |m: &BrokerModel, s: &State| {
                s.w.obs.no_leaked_mapping() && (!m.quiet(s) || s.w.no_mapping_left())
            }),
            Property::always("NoHalfOpenRelay", |m: &BrokerModel, s: &State| {
                !m.quiet(s) || s.w.no_relay_left()
            }),
            Property::always("ConnectOnlyToAnnounced", |_, s: &State| {
                s.w.obs.connect_only_to_announced()
            }),
            Property::sometimes("ConnectsByRelay", |_, s: &State| {
                s.w.a.is_open(NONCE) && s.w.a.request_mode(NONCE) == Some(Mode::Relay)
            }),
            Property::sometimes("FallsBack", |_, s: &State| {
                s.w.a.is_open(NONCE) && !s.w.obs.failed_modes(NONCE).is_empty()
            }),
        ]
    }
}

/// ModeOnlyIfPossible: every session's mode is one the callee's profile allows and the caller's
/// network lets it take part in; the caller's current mode is its session's.
fn mode_only_if_possible(s: &State) -> bool {
    let Some(pb) = s.w.b.profile().copied() else {
        return true;
    };
    let caller_net = nets(s)[0];
    let pa = caller_net.profile(CALLER_LOCAL, ip2p::sim::ip2p::NAT_A);
    let sessions_ok = s.w.b.session_ids().iter().all(|sess| {
        s.w.b.session_mode(*sess).is_none_or(|m| {
            modes::callee_modes(&pb, true).contains(m) && modes::caller_offer(&pa).contains(m)
        })
    });
    let caller_ok =
        s.w.a
            .request_mode(NONCE)
            .is_none_or(|m| modes::caller_offer(&pa).contains(m));
    sessions_ok && caller_ok
}

/// CheapestModeFirst: with truthful profiles and nothing failed yet (no mode failed at the
/// caller, no mapping failed at the callee), the mode in use is the cheapest the networks allow.
fn cheapest_mode_first(s: &State) -> bool {
    if !s.truthful || !s.w.obs.failed_modes(NONCE).is_empty() || s.w.obs.callee_fell_back {
        return true;
    }
    let [ca, cb] = nets(s);
    let want = cheapest(ca, cb);
    s.w.b
        .session_ids()
        .iter()
        .filter_map(|sess| s.w.b.session_mode(*sess))
        .chain(s.w.a.request_mode(NONCE))
        .all(|m| m == want)
}

impl Narrate for BrokerModel {
    fn actors(&self) -> Vec<String> {
        vec!["A".into(), "Net".into(), "Relay".into(), "B".into()]
    }

    fn narrate(&self, before: &State, action: &Action, after: &State) -> Vec<Step> {
        let mut steps = Vec::new();
        if matches!(action, Action::Resolve) {
            let [ca, cb] = nets(before);
            steps.push(Step::note(
                "Net",
                format!(
                    "caller on {ca:?}, callee on {cb:?} (profile truthful: {})",
                    before.truthful
                ),
            ));
        }
        let who = |callee: bool| if callee { "B" } else { "A" };
        let text = match action {
            Action::Resolve => ("A".to_string(), "connect to the callee".to_string()),
            Action::Attach(c) => (who(*c).into(), "radio attached".into()),
            Action::DeliverSms(i) => (
                "Net".into(),
                format!(
                    "SMS delivered to {}",
                    if before.w.sms[*i].to_callee { "B" } else { "A" }
                ),
            ),
            Action::DeliverIp(_) => ("Net".into(), "answer over IP delivered".into()),
            Action::LoseSms(_) => ("Net".into(), "loses an SMS".into()),
            Action::LoseIp(_) => ("Net".into(), "loses an answer".into()),
            Action::ServerUp(_) => ("B".into(), "server listens".into()),
            Action::MapDone { callee, m, ok } => (
                who(*callee).into(),
                format!(
                    "mapping of port {} {}",
                    m.1,
                    if *ok { "ends" } else { "fails (fault)" }
                ),
            ),
            Action::Connect { ok, .. } => (
                "A".into(),
                format!("connect {}", if *ok { "settles" } else { "fails (fault)" }),
            ),
            Action::RelayJoin(_) => ("Relay".into(), "joins the two legs".into()),
            Action::RelayDrop(_) => ("Relay".into(), "drops an entry (fault)".into()),
            Action::Timeout(c) => (who(*c).into(), "timer fires".into()),
            Action::CloseRequest => ("A".into(), "application closes".into()),
            Action::CloseSession(_) => ("B".into(), "application closes".into()),
        };
        steps.push(Step::note(&text.0, text.1));
        for m in after
            .w
            .obs
            .failed_modes(NONCE)
            .iter()
            .skip(before.w.obs.failed_modes(NONCE).len())
        {
            steps.push(Step::note("A", format!("mode {m} failed")));
        }
        if after.w.a.request_mode(NONCE) != before.w.a.request_mode(NONCE) {
            if let Some(m) = after.w.a.request_mode(NONCE) {
                steps.push(Step::note("A", format!("callee chose {m}")));
            }
        }
        if let Some(f) = after
            .w
            .obs
            .failure(NONCE)
            .filter(|_| before.w.obs.failure(NONCE).is_none())
        {
            steps.push(Step::note("A", format!("request failed: {f}")));
        }
        steps
    }
}

/// The variants `ip2p-check` knows.
pub const VARIANTS: &[&str] = &["broker", "no-fallback"];

/// What each variant is expected to show.
pub fn expectation(variant: &str, property: &str) -> Option<Expect> {
    match (variant, property) {
        ("no-fallback", "ConnectsWhenPossible") => Some(Expect::Violate),
        ("no-fallback", "FallsBack") => Some(Expect::Violate),
        (_, _) => Some(Expect::Hold),
    }
}

fn run(variant: &str, bounds: &Bounds, opts: &RunOpts) -> Result<Vec<check::Row>, String> {
    let model = BrokerModel::new(variant, bounds)?;
    Ok(check::check(
        model,
        "broker",
        variant,
        |p| expectation(variant, p),
        bounds,
        opts,
    ))
}

fn explore(variant: &str, bounds: &Bounds, addr: std::net::SocketAddr) -> Result<(), String> {
    check::explore(BrokerModel::new(variant, bounds)?, addr)
}

/// The registry entry.
pub fn spec() -> ModelSpec {
    ModelSpec {
        name: "broker",
        about: "P2PBroker on real ip2p::ip2p::Peer machines: every pair of networks (public, predictable NAT, IGD, symmetric) plus stale profiles, a relay, fallback between modes",
        variants: VARIANTS,
        ci_runs: || {
            let b = |faults| Bounds {
                faults: Some(faults),
                ..Bounds::default()
            };
            vec![("broker", b(0)), ("broker", b(1)), ("no-fallback", b(0))]
        },
        run,
        explore,
    }
}
