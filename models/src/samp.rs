//! The SAMP model: three real SIP servers ([`ip2p::samp::server::Server`]) on a stabilized Chord
//! ring, a real mobile node that moves between domains, a real correspondent that calls it, and
//! a stranger that takes over the addresses the MN leaves.
//!
//! # World
//!
//! - **Servers** S0, S1, S2 (`10.0.0.1–3`), ids from SHA-1 of their addresses, ideal fingers; the
//!   Chord maintenance never runs (its period is a day): the ring is the one the Chord model
//!   checks, here it only answers lookups.
//! - **Domains**: care-of addresses `10.1.0.1` and `10.1.0.2` lie in domain A, whose multicast
//!   reaches S0 and S1; `10.3.0.1` lies in domain B, reached by S1 and S2. The MN attaches in A,
//!   moves to B, then back to A (`--requests` = number of attachments, default 2). Each
//!   attachment draws the anchor both ways (random 0 and `u64::MAX`), so the move to B is inside
//!   the anchor's reach (anchor S1: HR keeps it) or out of it (anchor S0: it may answer after δ,
//!   and the MN re-anchors). A move happens only when the MN is idle.
//! - **Stranger**: when the MN leaves an address, another user agent (a real `MobileNode` for
//!   `sip:stranger@else.example`) gets it, so a stale cached address reaches somebody else.
//! - **CN** at `10.2.0.5`, its anchor S2; it places `--calls` calls (default 1), each at any
//!   moment.
//!
//! # Fault model
//!
//! SIP datagrams are delivered in any order. Chord messages (lookups between servers) are
//! delivered at once, never lost (the Chord model checks the ring itself). Timers (the MN's
//! discovery window, δ, its registration time-out; the CN's phase I and call time-outs; the
//! servers' expiries) fire when nothing is in flight; the MN's own timer also fires while only
//! *far* messages are in flight: those between the MN and a server out of its domain's reach,
//! which may answer after δ (so an MN that left its anchor's reach may re-anchor). Up to
//! `--faults` (default 1) faults happen: each is a lost SIP datagram or a timer that fires while
//! messages are still on their way (a slow server or network: an answer arriving after δ, a call
//! timing out before the callee's 200).
//!
//! # Variants
//!
//! - `samp`: HR, RP mode. Every invariant holds.
//! - `redirect`: HR, RR mode (`302`). Every invariant holds.
//! - `no-hr`: every move registers at home. Every invariant holds.
//! - `no-home-update`: HR, but re-anchoring does not update the home: the home still points at the
//!   old anchor, which has forgotten the MN, and the call is lost —
//!   `CallConnectsWhenRegistered` is violated.

use std::fmt::Write as _;
use std::net::SocketAddr;
use std::time::Duration;

use ip2p::chord::{self, Id64, Node, Peer};
use ip2p::machine::Machine;
use ip2p::samp::correspondent::{self, CallId, Correspondent, CorrespondentConfig};
use ip2p::samp::invariants::{self, Invariant, Observer};
use ip2p::samp::mobile::{self, MobileConfig, MobileNode};
use ip2p::samp::server::{self, ProxyMode, Server, ServerConfig, MCAST_GROUP};
use ip2p::samp::Aor;
use ip2p::sip::{Message, SipUri};
use ip2p::{Time, TransportAddr};
use stateright::{Model, Property};

use crate::check::{self, Bounds, Expect, Narrate, RunOpts, Step};
use crate::ModelSpec;

const SERVERS: usize = 3;
/// While nobody waits, time stops here (bindings live an hour).
const HORIZON_MS: u64 = 60_000;

fn a(s: &str) -> TransportAddr {
    TransportAddr(s.parse::<SocketAddr>().expect("address"))
}
fn server_addr(k: usize) -> TransportAddr {
    a(&format!("10.0.0.{}:5060", k + 1))
}
/// The care-of addresses in the order the MN takes them: domain A, domain B, A again.
fn coas() -> [TransportAddr; 3] {
    [a("10.1.0.1:5060"), a("10.3.0.1:5060"), a("10.1.0.2:5060")]
}
/// The servers the multicast reaches from the `k`-th attachment: S0 and S1 from domain A, S1
/// and S2 from domain B.
fn near(k: usize) -> &'static [usize] {
    if k == 1 {
        &[1, 2]
    } else {
        &[0, 1]
    }
}
fn cn_addr() -> TransportAddr {
    a("10.2.0.5:5060")
}
fn mn_uri() -> SipUri {
    SipUri::parse("sip:mn@home.example").expect("uri")
}

/// A SIP datagram in flight. (Chord messages between servers are delivered at once, in order,
/// inside a step, by `drain`.)
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Packet {
    from: TransportAddr,
    to: TransportAddr,
    msg: Message,
}

/// The world.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct State {
    servers: Vec<Server<Id64>>,
    mn: MobileNode,
    /// Attachments so far.
    attached: u8,
    stranger: Option<MobileNode>,
    cn: Correspondent,
    now: Time,
    net: Vec<Packet>,
    obs: Observer,
    calls: u8,
    /// Calls placed after the MN had moved at least once.
    after_move: Vec<CallId>,
    faults_left: u8,
}

/// What can happen.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Action {
    /// The MN attaches at its next address, drawing the anchor with this number.
    Attach(u64),
    /// The CN places its next call.
    Call,
    /// Packet `i` arrives.
    Deliver(usize),
    /// SIP packet `i` is lost.
    Lose(usize),
    /// Time advances to the next deadline.
    Tick,
}

/// The model.
#[derive(Clone, Debug)]
pub struct SampModel {
    mode: ProxyMode,
    hr: bool,
    update_home: bool,
    attachments: u8,
    calls: u8,
    faults: u8,
}

impl SampModel {
    /// The model of `variant` at `bounds`.
    pub fn new(variant: &str, bounds: &Bounds) -> Result<Self, String> {
        let (mode, hr, update_home) = match variant {
            "samp" => (ProxyMode::Proxy, true, true),
            "redirect" => (ProxyMode::Redirect, true, true),
            "no-hr" => (ProxyMode::Proxy, false, true),
            "no-home-update" => (ProxyMode::Proxy, true, false),
            other => {
                return Err(format!(
                    "unknown samp variant {other:?}; variants: {}",
                    VARIANTS.join(", ")
                ))
            }
        };
        let attachments = bounds.requests.unwrap_or(2);
        if !(1..=3).contains(&attachments) {
            return Err("samp: requests (attachments of the MN) must be 1, 2 or 3".into());
        }
        let calls = bounds.calls.unwrap_or(1);
        if !(1..=3).contains(&calls) {
            return Err("samp: calls must be 1, 2 or 3".into());
        }
        Ok(SampModel {
            calls,
            mode,
            hr,
            update_home,
            attachments,
            faults: bounds.faults.unwrap_or(1),
        })
    }

    fn mn_config(&self) -> MobileConfig {
        MobileConfig {
            hr: self.hr,
            update_home_on_reanchor: self.update_home,
            ..MobileConfig::default()
        }
    }

    fn next_tick(&self, s: &State) -> Option<Time> {
        let roles = [s.mn.poll_timeout(), s.cn.poll_timeout()]
            .into_iter()
            .flatten()
            .min();
        let expiry = s
            .servers
            .iter()
            .filter_map(|x| x.next_expiry())
            .min()
            .filter(|t| t.as_millis() <= HORIZON_MS);
        [roles, expiry]
            .into_iter()
            .flatten()
            .min()
            .map(|t| t.max(s.now))
    }

    /// Every message in flight is far: between the MN and a server out of its domain's reach.
    /// Those take longer than any timer (an anchor left behind answers after δ), so time may
    /// pass while they travel, and they still arrive later (or are lost, as a fault).
    fn only_far_in_flight(s: &State) -> bool {
        let Some(coa) = s.mn.coa() else {
            return s.net.is_empty();
        };
        let k = usize::from(s.attached.saturating_sub(1));
        s.net.iter().all(|p| {
            let other = if p.from == coa {
                p.to
            } else if p.to == coa {
                p.from
            } else {
                return false;
            };
            server_index(s, other).is_some_and(|i| !near(k).contains(&i))
        })
    }

    /// The next tick costs no fault: nothing is in flight, or only far messages are and the
    /// tick is the MN's own (δ): far is slower than δ, not slower than the CN's time-outs.
    fn free_tick(&self, s: &State) -> bool {
        s.net.is_empty()
            || (Self::only_far_in_flight(s)
                && s.mn.poll_timeout().is_some()
                && s.mn.poll_timeout() == self.next_tick(s))
    }

    /// Nothing is in flight and no role waits for anything.
    fn quiet(s: &State) -> bool {
        s.net.is_empty() && s.mn.poll_timeout().is_none() && s.cn.poll_timeout().is_none()
    }

    /// Nothing can happen any more.
    fn done(&self, s: &State) -> bool {
        Self::quiet(s)
            && s.calls >= self.calls
            && s.attached >= self.attachments
            && self.next_tick(s).is_none()
    }
}

fn aor() -> Aor {
    Aor::of(&mn_uri())
}

fn server_index(s: &State, to: TransportAddr) -> Option<usize> {
    s.servers.iter().position(|x| x.addr() == to)
}

fn send_sip(s: &mut State, from: TransportAddr, to: TransportAddr, msg: Message) {
    if to == MCAST_GROUP {
        let k = usize::from(s.attached.saturating_sub(1));
        for &i in near(k) {
            s.net.push(Packet {
                from,
                to: server_addr(i),
                msg: msg.clone(),
            });
        }
    } else {
        s.net.push(Packet { from, to, msg });
    }
}

/// Carry out every role's outputs. The servers' Chord messages (the lookups of a home) are
/// delivered here and now, in order, until the ring is quiet: the Chord model checks the ring
/// under reordering, loss and churn; here it only has to find the home, and interleaving its
/// messages with SIP's would multiply the states without reaching new SIP behaviour (a lookup
/// answered late is the same to SIP as a SIP datagram delivered late).
fn drain(s: &mut State) {
    let mut chord = std::collections::VecDeque::new();
    loop {
        for i in 0..s.servers.len() {
            let from = s.servers[i].addr();
            while let Some(o) = s.servers[i].poll() {
                match o {
                    server::Output::Sip { to, msg } => send_sip(s, from, to, msg),
                    server::Output::Chord { to, msg } => chord.push_back((from, to, msg)),
                    server::Output::Event(_) => {}
                }
            }
        }
        if chord.is_empty() {
            break;
        }
        while let Some((from, to, msg)) = chord.pop_front() {
            if let Some(k) = server_index(s, to) {
                let _ = s.servers[k].handle(s.now, server::Input::Chord { from, msg });
            }
        }
    }
    while let Some(o) = s.mn.poll() {
        match o {
            mobile::Output::Sip { to, msg } => {
                if let Some(from) = s.mn.coa() {
                    send_sip(s, from, to, msg);
                }
            }
            mobile::Output::Event(e) => {
                let coa = s.mn.coa();
                s.obs.mn_event(&e, coa);
            }
        }
    }
    if let Some(st) = &mut s.stranger {
        let from = st.coa();
        let mut replies = Vec::new();
        while let Some(o) = st.poll() {
            // the stranger only answers what reaches it; its own registration is not modelled
            if let mobile::Output::Sip {
                to,
                msg: msg @ Message::Response(_),
            } = o
            {
                replies.push((to, msg));
            }
        }
        if let Some(from) = from {
            for (to, msg) in replies {
                send_sip(s, from, to, msg);
            }
        }
    }
    while let Some(o) = s.cn.poll() {
        match o {
            correspondent::Output::Sip { to, msg } => send_sip(s, cn_addr(), to, msg),
            correspondent::Output::Event(e) => s.obs.cn_event(&e),
        }
    }
}

impl Model for SampModel {
    type State = State;
    type Action = Action;

    fn init_states(&self) -> Vec<State> {
        let config = ServerConfig {
            mode: self.mode,
            chord: chord::Config {
                stabilize_every: Duration::from_secs(86_400),
                request_timeout: Duration::from_secs(86_400),
                nonce_bits: 0,
                request_retries: 0,
                successors: 2,
                ..chord::Config::default()
            },
            ..ServerConfig::default()
        };
        let mut members: Vec<Peer<Id64, TransportAddr>> =
            (0..SERVERS).map(|k| Peer::hashed(server_addr(k))).collect();
        members.sort();
        let mut servers: Vec<Server<Id64>> =
            Node::stabilized_ring(&members, &config.chord, usize::MAX, Time::ZERO)
                .into_iter()
                .map(|node| Server::with_node(node, config.clone()))
                .collect();
        servers.sort_by_key(|x| x.addr());
        vec![State {
            servers,
            mn: MobileNode::new(mn_uri(), self.mn_config()),
            attached: 0,
            stranger: None,
            cn: Correspondent::new(
                SipUri::parse("sip:cn@other.example").expect("uri"),
                cn_addr(),
                server_addr(2),
                CorrespondentConfig::default(),
            ),
            now: Time::ZERO,
            net: Vec::new(),
            obs: Observer::default(),
            calls: 0,
            after_move: Vec::new(),
            faults_left: self.faults,
        }]
    }

    fn actions(&self, s: &State, actions: &mut Vec<Action>) {
        if s.attached < self.attachments && s.mn.is_idle() {
            actions.push(Action::Attach(0));
            actions.push(Action::Attach(u64::MAX));
        }
        if s.calls < self.calls {
            actions.push(Action::Call);
        }
        for (i, p) in s.net.iter().enumerate() {
            if s.net[..i].contains(p) {
                continue;
            }
            actions.push(Action::Deliver(i));
            if s.faults_left > 0 {
                actions.push(Action::Lose(i));
            }
        }
        // Time advances when nothing but far messages is in flight; a timer that fires while
        // another message is still on its way (a slow server or network) is a fault, out of the
        // same budget as a loss.
        if self.next_tick(s).is_some() && (self.free_tick(s) || s.faults_left > 0) {
            actions.push(Action::Tick);
        }
    }

    fn next_state(&self, s: &State, action: Action) -> Option<State> {
        let mut s = s.clone();
        let now = s.now;
        match action {
            Action::Attach(random) => {
                let k = usize::from(s.attached);
                let coa = coas()[k];
                if let Some(old) = s.mn.coa() {
                    let mut st = MobileNode::new(
                        SipUri::parse("sip:stranger@else.example").expect("uri"),
                        MobileConfig::default(),
                    );
                    let _ = st.handle(
                        now,
                        mobile::Input::Attached {
                            coa: old,
                            random: 0,
                        },
                    );
                    while st.poll().is_some() {} // its own registration is not modelled
                    s.stranger = Some(st);
                }
                s.attached += 1;
                s.obs.moved();
                let _ = s.mn.handle(now, mobile::Input::Attached { coa, random });
            }
            Action::Call => {
                s.calls += 1;
                let call = CallId(u64::from(s.calls));
                let here = s.mn.is_idle()
                    && s.obs.registered.map(|(c, _)| c) == s.mn.coa()
                    && s.mn.coa().is_some();
                s.obs.placed(call, here);
                if s.attached >= 2 {
                    s.after_move.push(call);
                }
                let _ = s.cn.handle(
                    now,
                    correspondent::Input::Call {
                        call,
                        callee: mn_uri(),
                    },
                );
            }
            Action::Deliver(i) => {
                let Packet { from, to, msg } = s.net.remove(i);
                if let Some(k) = server_index(&s, to) {
                    let _ = s.servers[k].handle(now, server::Input::Sip { from, msg });
                } else if s.mn.coa() == Some(to) {
                    let _ = s.mn.handle(now, mobile::Input::Sip { from, msg });
                } else if to == cn_addr() {
                    let _ = s.cn.handle(now, correspondent::Input::Sip { from, msg });
                } else if let Some(st) = &mut s.stranger {
                    if st.coa() == Some(to) {
                        let _ = st.handle(now, mobile::Input::Sip { from, msg });
                    }
                }
            }
            Action::Lose(i) => {
                s.net.remove(i);
                s.faults_left -= 1;
                s.obs.losses += 1;
            }
            Action::Tick => {
                let t = self.next_tick(&s)?;
                if !self.free_tick(&s) {
                    s.faults_left -= 1;
                    s.obs.losses += 1;
                }
                s.now = t;
                for x in &mut s.servers {
                    x.handle_timeout(t);
                }
                s.mn.handle_timeout(t);
                s.cn.handle_timeout(t);
            }
        }
        drain(&mut s);
        Some(s)
    }

    fn properties(&self) -> Vec<Property<Self>> {
        let mut props = vec![
            Property::always("SessionOnlyWithCallee", |_, s: &State| {
                invariants::session_only_with_callee(&s.obs)
            }),
            Property::always("BindingsConsistent", |m: &SampModel, s: &State| {
                invariants::bindings_consistent(
                    &s.obs,
                    SampModel::quiet(s),
                    s.mn.coa(),
                    &aor(),
                    m.hr,
                    &s.servers,
                    s.now,
                )
            }),
            Property::always("EveryCallEnds", |m: &SampModel, s: &State| {
                invariants::every_call_ends(&s.obs, m.done(s))
            }),
            Property::always("BindingsExpire", |_, s: &State| {
                s.servers.iter().all(|x| {
                    invariants::bindings_expire(x, s.now, ServerConfig::default().max_expires)
                })
            }),
            Property::always("CallConnectsWhenRegistered", |m: &SampModel, s: &State| {
                invariants::call_connects_when_registered(&s.obs, m.done(s))
            }),
            Property::sometimes("CallEstablished", |_, s: &State| {
                s.obs.calls.values().any(|c| c.established)
            }),
        ];
        // a call after a move needs a move
        if self.attachments >= 2 {
            props.push(Property::sometimes(
                "CallAfterMoveEstablished",
                |_, s: &State| {
                    s.obs
                        .calls
                        .iter()
                        .any(|(id, c)| c.established && s.after_move.contains(id))
                },
            ));
        }
        props
    }
}

impl Narrate for SampModel {
    fn actors(&self) -> Vec<String> {
        let mut v = vec!["MN".to_string(), "CN".to_string()];
        v.extend((0..SERVERS).map(|k| format!("S{k}")));
        v.push("Stranger".into());
        v.push("Net".into());
        v
    }

    fn narrate(&self, before: &State, action: &Action, after: &State) -> Vec<Step> {
        let who = |s: &State, t: TransportAddr| -> String {
            if let Some(k) = server_index(s, t) {
                format!("S{k}")
            } else if t == cn_addr() {
                "CN".into()
            } else if s.mn.coa() == Some(t) {
                "MN".into()
            } else if s.stranger.as_ref().and_then(|x| x.coa()) == Some(t) {
                "Stranger".into()
            } else {
                "Net".into()
            }
        };
        let line = |m: &Message| match m {
            Message::Request(r) => format!("{} {}", r.method, r.uri),
            Message::Response(r) => format!(
                "{} {} ({})",
                r.code,
                r.reason,
                r.headers
                    .cseq
                    .as_ref()
                    .map(|c| c.method.to_string())
                    .unwrap_or_default()
            ),
        };
        match action {
            Action::Attach(r) => vec![Step::note(
                "MN",
                format!(
                    "attaches at {} (draw {})",
                    coas()[usize::from(before.attached)].0,
                    if *r == 0 { "low" } else { "high" }
                ),
            )],
            Action::Call => vec![Step::note("CN", format!("calls mn (call {})", after.calls))],
            Action::Deliver(i) => {
                let p = &before.net[*i];
                vec![Step::send(
                    who(before, p.from),
                    who(before, p.to),
                    line(&p.msg),
                )]
            }
            Action::Lose(i) => {
                let p = &before.net[*i];
                vec![Step::note(
                    "Net",
                    format!("loses {} to {}", line(&p.msg), p.to.0),
                )]
            }
            Action::Tick => vec![Step::note("Net", format!("time {}", after.now))],
        }
    }

    fn describe_state(&self, s: &State) -> String {
        let mut t = String::new();
        let aor = aor();
        for (k, x) in s.servers.iter().enumerate() {
            let _ = write!(
                t,
                "S{k}: anchor {:?} home {:?}; ",
                x.anchor_binding(s.now, &aor).map(|a| a.0),
                x.home_binding(s.now, &aor).map(|a| a.0)
            );
        }
        let _ = write!(
            t,
            "MN at {:?} anchor {:?}; calls {:?}",
            s.mn.coa().map(|a| a.0),
            s.mn.anchor().map(|a| a.0),
            s.obs.calls
        );
        t
    }
}

/// The variants `ip2p-check` knows.
pub const VARIANTS: &[&str] = &["samp", "redirect", "no-hr", "no-home-update"];

/// What each variant is expected to show.
pub fn expectation(variant: &str, property: &str) -> Option<Expect> {
    match (variant, property) {
        ("no-home-update", "CallConnectsWhenRegistered") => Some(Expect::Violate),
        ("no-home-update", _) => None,
        (_, _) => Some(Expect::Hold),
    }
}

/// The invariant names, as [`Invariant::name`] spells them.
pub fn invariant_names() -> Vec<&'static str> {
    [
        Invariant::SessionOnlyWithCallee,
        Invariant::BindingsConsistent,
        Invariant::EveryCallEnds,
        Invariant::BindingsExpire,
        Invariant::CallConnectsWhenRegistered,
    ]
    .iter()
    .map(|i| i.name())
    .collect()
}

fn run(variant: &str, bounds: &Bounds, opts: &RunOpts) -> Result<Vec<check::Row>, String> {
    let model = SampModel::new(variant, bounds)?;
    let mut opts = opts.clone();
    if variant == "no-home-update" {
        opts.bfs = true; // the shortest story
    }
    Ok(check::check(
        model,
        "samp",
        variant,
        |p| expectation(variant, p),
        bounds,
        &opts,
    ))
}

fn explore(variant: &str, bounds: &Bounds, addr: std::net::SocketAddr) -> Result<(), String> {
    check::explore(SampModel::new(variant, bounds)?, addr)
}

/// The registry entry.
pub fn spec() -> ModelSpec {
    ModelSpec {
        name: "samp",
        about: "SAMP on the real ip2p::samp roles: 3 SIP servers on a Chord ring, an MN moving between two domains (discovery within δ, home registration, HR, re-anchoring), a CN calling with TTC, a stranger at the MN's old addresses; reordering SIP, lost datagrams and late answers as faults",
        variants: VARIANTS,
        ci_runs: || {
            let b = |requests, calls, faults| Bounds {
                requests: Some(requests),
                calls: Some(calls),
                faults: Some(faults),
                ..Bounds::default()
            };
            vec![
                ("samp", b(2, 1, 0)),
                ("samp", b(1, 1, 1)),
                ("samp", b(1, 2, 0)),
                ("redirect", b(2, 1, 0)),
                ("no-hr", b(2, 1, 0)),
                ("no-home-update", b(2, 1, 0)),
            ]
        },
        run,
        explore,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_invariant_is_a_model_property_by_the_same_name() {
        let m = SampModel::new("samp", &Bounds::default()).expect("model");
        let names: Vec<&str> = m.properties().iter().map(|p| p.name).collect();
        for inv in invariant_names() {
            assert!(names.contains(&inv), "{inv} is not checked by the model");
        }
    }
}
