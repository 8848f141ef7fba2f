//! The UPnP IGD model: the real client ([`ip2p::upnp::Client`]) against the crate's reference IGD
//! ([`ip2p::upnp::igd::Igd`]) over a lossy network, with leases and time.
//!
//! # Fault model
//!
//! - **SSDP**: each M-SEARCH yields one answer in flight; up to `faults` times the environment
//!   loses a message in flight or duplicates an SSDP answer.
//! - **TCP**: a connection is established, its request delivered to the IGD, and the IGD's answer
//!   delivered, each whenever the environment chooses (any interleaving across connections).
//!   Losing the establishment, the request or the answer models a refused connection, an IGD that
//!   never read the request, and an IGD that acted but whose answer never came. Within the fault
//!   budget the IGD may also answer a request with fault 501 (ActionFailed) without acting. When
//!   the client closes a connection, whatever is still in flight on it is gone.
//! - **IGD**: one initial state has another host's mapping on the wanted external port (so
//!   AddPortMapping meets 718 and steps to the next port), one has none. Leases lapse at their
//!   end: time advances only to the next deadline of the client or of a lease.
//! - **Time**: the client's next deadline may fire at any moment (a slow network is a lost
//!   message until the deadline). While the client is idle, time advances only up to a horizon of
//!   [`HORIZON_MS`], so lease renewals do not go on for ever.
//!
//! # Bounds
//!
//! `requests` (1 or 2): the application asks for one mapping (lease [`LEASE_S`] s, renewed at
//! half), and with 2 also issues `DeleteAll` at any moment after; `faults` (default 2).
//!
//! # Variants
//!
//! - `doubtful`: the protocol (the client remembers doubtful mappings). Every invariant holds.
//! - `confirmed-only`: the client remembers only confirmed mappings ([`Tracking::ConfirmedOnly`]);
//!   an AddPortMapping whose answer is lost leaves a mapping on the IGD the client knows nothing
//!   of: NoLeakedMapping is violated.

use std::fmt::Write as _;
use std::net::SocketAddr;
use std::time::Duration;

use ip2p::machine::Machine;
use ip2p::upnp::igd::{fault, Entry, Igd};
use ip2p::upnp::invariants::{self, Invariant, Observer};
use ip2p::upnp::{
    Client, Command, Config, ConnId, Input, MappingKey, MappingRequest, Output, Protocol,
    RequestId, Tracking,
};
use ip2p::Time;
use stateright::{Model, Property};

use crate::check::{self, Bounds, Expect, Narrate, RunOpts, Step};
use crate::ModelSpec;

/// The lease asked for, seconds.
pub const LEASE_S: u64 = 4;
/// While the client is idle, time stops here.
pub const HORIZON_MS: u64 = 8_000;
const WANTED: u16 = 4000;

fn internal() -> SocketAddr {
    SocketAddr::from(([10, 0, 1, 2], 4000))
}
fn local() -> SocketAddr {
    SocketAddr::from(([10, 0, 1, 2], 50000))
}
fn igd_addr() -> SocketAddr {
    SocketAddr::from(([10, 0, 1, 1], 5000))
}

/// Something in flight.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Msg {
    /// An SSDP answer to the client.
    Ssdp(Vec<u8>),
    /// A connection being established.
    Connecting(ConnId),
    /// A request on its way to the IGD.
    Request(ConnId, Vec<u8>),
    /// The IGD's answer on its way to the client (the IGD closes after it).
    Answer(ConnId, Vec<u8>),
}

impl Msg {
    fn conn(&self) -> Option<ConnId> {
        match self {
            Msg::Ssdp(_) => None,
            Msg::Connecting(c) | Msg::Request(c, _) | Msg::Answer(c, _) => Some(*c),
        }
    }
}

/// The world.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct State {
    /// The client.
    pub c: Client,
    /// The IGD.
    pub igd: Igd,
    /// The common clock.
    pub now: Time,
    /// In flight.
    pub net: Vec<Msg>,
    /// What the application was told.
    pub obs: Observer,
    /// Commands issued so far.
    pub issued: u8,
    /// Faults the environment may still inject.
    pub faults_left: u8,
}

/// What can happen.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Action {
    /// The application issues its next command.
    Issue,
    /// Message `i` arrives.
    Deliver(usize),
    /// Message `i` is lost.
    Lose(usize),
    /// SSDP answer `i` arrives twice.
    Duplicate(usize),
    /// The IGD answers request `i` with fault 501 without acting.
    Refuse(usize),
    /// Time advances to the next deadline.
    Tick,
}

/// The model.
#[derive(Clone, Debug)]
pub struct UpnpModel {
    tracking: Tracking,
    requests: u8,
    faults: u8,
}

impl UpnpModel {
    /// The model of `variant` at `bounds`.
    pub fn new(variant: &str, bounds: &Bounds) -> Result<Self, String> {
        let tracking = match variant {
            "doubtful" => Tracking::Doubtful,
            "confirmed-only" => Tracking::ConfirmedOnly,
            other => {
                return Err(format!(
                    "unknown upnp variant {other:?}; variants: {}",
                    VARIANTS.join(", ")
                ))
            }
        };
        let requests = bounds.requests.unwrap_or(2);
        if !(1..=2).contains(&requests) {
            return Err("upnp: requests must be 1 or 2".into());
        }
        Ok(UpnpModel {
            tracking,
            requests,
            faults: bounds.faults.unwrap_or(2),
        })
    }

    fn config(&self) -> Config {
        Config {
            search_interval: Duration::from_millis(500),
            search_attempts: 2,
            discovery_timeout: Duration::from_secs(1),
            http_timeout: Duration::from_secs(1),
            conflict_tries: 2,
            tracking: self.tracking,
            ..Config::default()
        }
    }

    fn next_tick(&self, s: &State) -> Option<Time> {
        let lease_end = s.igd.table.values().filter_map(|e| e.expires).min();
        let t = [s.c.poll_timeout(), lease_end]
            .into_iter()
            .flatten()
            .min()?;
        let t = t.max(s.now);
        (!s.c.is_idle() || t.as_millis() <= HORIZON_MS).then_some(t)
    }

    /// Nothing but issuing can happen any more, and everything was issued.
    fn quiet(&self, s: &State) -> bool {
        s.issued >= self.requests && s.net.is_empty() && self.next_tick(s).is_none()
    }

    fn ours(s: &State) -> impl Iterator<Item = MappingKey> + '_ {
        s.igd
            .table
            .iter()
            .filter(|(_, e)| e.internal == internal())
            .map(|(k, _)| *k)
    }
}

/// Carry out the client's outputs.
fn drain(s: &mut State) {
    while let Some(o) = s.c.poll() {
        s.obs.output(&o, &s.c);
        match o {
            Output::SendDatagram { .. } => s.net.push(Msg::Ssdp(s.igd.ssdp_answer())),
            Output::Connect { conn, .. } => s.net.push(Msg::Connecting(conn)),
            Output::Send { conn, bytes } => s.net.push(Msg::Request(conn, bytes)),
            Output::Close { conn } => s.net.retain(|m| m.conn() != Some(conn)),
            Output::Event(_) => {}
        }
    }
}

fn input(s: &mut State, i: Input) {
    let now = s.now;
    let _ = s.c.handle(now, i); // rejected inputs leave the client as it was
    drain(s);
}

impl Model for UpnpModel {
    type State = State;
    type Action = Action;

    fn init_states(&self) -> Vec<State> {
        let plain = State {
            c: Client::new(self.config()),
            igd: Igd::new(igd_addr(), "80.100.1.1".parse().expect("address")),
            now: Time::ZERO,
            net: Vec::new(),
            obs: Observer::default(),
            issued: 0,
            faults_left: self.faults,
        };
        let mut conflict = plain.clone();
        conflict.igd.table.insert(
            MappingKey {
                protocol: Protocol::Tcp,
                external_port: WANTED,
            },
            Entry {
                internal: SocketAddr::from(([10, 0, 1, 3], 9)),
                expires: None,
            },
        );
        vec![plain, conflict]
    }

    fn actions(&self, s: &State, actions: &mut Vec<Action>) {
        if s.issued < self.requests {
            actions.push(Action::Issue);
        }
        for (i, m) in s.net.iter().enumerate() {
            if s.net[..i].contains(m) {
                continue; // identical messages: one is enough
            }
            actions.push(Action::Deliver(i));
            if s.faults_left > 0 {
                actions.push(Action::Lose(i));
                match m {
                    Msg::Ssdp(_) => actions.push(Action::Duplicate(i)),
                    Msg::Request(..) => actions.push(Action::Refuse(i)),
                    _ => {}
                }
            }
        }
        if self.next_tick(s).is_some() {
            actions.push(Action::Tick);
        }
    }

    fn next_state(&self, s: &State, a: Action) -> Option<State> {
        let mut s = s.clone();
        match a {
            Action::Issue => {
                let id = RequestId(u32::from(s.issued) + 1);
                let cmd = if s.issued == 0 {
                    let r = MappingRequest::new(
                        Protocol::Tcp,
                        internal(),
                        WANTED,
                        Duration::from_secs(LEASE_S),
                        "model",
                    );
                    Command::AddMapping { id, request: r }
                } else {
                    Command::DeleteAll { id }
                };
                s.issued += 1;
                s.obs.issue(&cmd);
                input(&mut s, Input::Command(cmd));
            }
            Action::Deliver(i) => {
                let m = s.net.remove(i);
                match m {
                    Msg::Ssdp(bytes) => input(
                        &mut s,
                        Input::Datagram {
                            from: igd_addr(),
                            bytes,
                        },
                    ),
                    Msg::Connecting(conn) => input(
                        &mut s,
                        Input::Connected {
                            conn,
                            local: local(),
                        },
                    ),
                    Msg::Request(conn, bytes) => {
                        let answer = s.igd.answer(s.now, &bytes).map(|(a, _)| a)?;
                        s.net.push(Msg::Answer(conn, answer));
                    }
                    Msg::Answer(conn, bytes) => {
                        input(&mut s, Input::Received { conn, bytes });
                        input(&mut s, Input::Closed { conn });
                    }
                }
            }
            Action::Lose(i) => {
                s.net.remove(i);
                s.faults_left -= 1;
            }
            Action::Duplicate(i) => {
                let m = s.net.get(i)?.clone();
                s.net.push(m);
                s.faults_left -= 1;
            }
            Action::Refuse(i) => {
                let Msg::Request(conn, _) = s.net.remove(i) else {
                    return None;
                };
                s.net.push(Msg::Answer(conn, fault(501)));
                s.faults_left -= 1;
            }
            Action::Tick => {
                let t = self.next_tick(&s)?;
                s.now = t;
                s.igd.expire(t);
                s.c.handle_timeout(t);
                drain(&mut s);
            }
        }
        Some(s)
    }

    fn properties(&self) -> Vec<Property<Self>> {
        vec![
            Property::always("InboundOnlyAfterMapping", |_, s: &State| {
                invariants::inbound_only_after_mapping(&s.obs, |k| {
                    s.igd.table.get(&k).map(|e| e.internal)
                })
            }),
            Property::always("NoLeakedMapping", |m: &UpnpModel, s: &State| {
                let remembered =
                    !s.c.is_idle() || invariants::no_leaked_mapping(&s.c, UpnpModel::ours(s));
                let cleaned =
                    !(m.quiet(s) && s.obs.all_deleted) || UpnpModel::ours(s).next().is_none();
                remembered && cleaned
            }),
            Property::always("EveryRequestEnds", |m: &UpnpModel, s: &State| {
                s.obs.ends_once() && (!m.quiet(s) || s.obs.all_ended())
            }),
            Property::always("BoundedMemory", |_, s: &State| {
                invariants::bounded_memory(&s.c)
            }),
            Property::sometimes("MapsAfterConflict", |_, s: &State| {
                s.obs
                    .advertised
                    .keys()
                    .any(|k| k.external_port == WANTED + 1)
            }),
            Property::sometimes("DoubtfulMappingDeleted", |_, s: &State| {
                s.obs.all_deleted && s.c.stats().connections >= 4 && s.faults_left == 0
            }),
            Property::sometimes("Renewed", |_, s: &State| {
                s.now.as_millis() >= LEASE_S * 1000 && !s.obs.advertised.is_empty()
            }),
        ]
    }
}

impl Narrate for UpnpModel {
    fn actors(&self) -> Vec<String> {
        vec!["App".into(), "Client".into(), "Net".into(), "IGD".into()]
    }

    fn narrate(&self, before: &State, action: &Action, after: &State) -> Vec<Step> {
        let head = |b: &[u8]| {
            let s = String::from_utf8_lossy(b);
            let line = s.lines().next().unwrap_or("").to_string();
            let action = s
                .split("SOAPAction: \"")
                .nth(1)
                .and_then(|r| r.split('"').next())
                .and_then(|a| a.rsplit('#').next())
                .map(|a| format!(" {a}"))
                .unwrap_or_default();
            let port = s
                .split("<NewExternalPort>")
                .nth(1)
                .and_then(|r| r.split('<').next())
                .map(|p| format!(" port {p}"))
                .unwrap_or_default();
            format!("{line}{action}{port}")
        };
        let mut steps = Vec::new();
        match action {
            Action::Issue => steps.push(Step::send(
                "App",
                "Client",
                if before.issued == 0 {
                    format!("AddMapping TCP {WANTED} lease {LEASE_S}s")
                } else {
                    "DeleteAll".to_string()
                },
            )),
            Action::Deliver(i) => match &before.net[*i] {
                Msg::Ssdp(_) => steps.push(Step::send("IGD", "Client", "SSDP answer")),
                Msg::Connecting(c) => {
                    steps.push(Step::note("Client", format!("connection {} up", c.0)))
                }
                Msg::Request(c, b) => steps.push(Step::send(
                    "Client",
                    "IGD",
                    format!("conn {}: {}", c.0, head(b)),
                )),
                Msg::Answer(c, b) => steps.push(Step::send(
                    "IGD",
                    "Client",
                    format!("conn {}: {}", c.0, head(b)),
                )),
            },
            Action::Lose(i) => steps.push(Step::note(
                "Net",
                format!("loses {:?}", kind(&before.net[*i])),
            )),
            Action::Duplicate(_) => steps.push(Step::note("Net", "duplicates an SSDP answer")),
            Action::Refuse(_) => steps.push(Step::send("IGD", "Client", "fault 501")),
            Action::Tick => steps.push(Step::note("Client", format!("time {}", after.now))),
        }
        steps
    }

    fn describe_state(&self, s: &State) -> String {
        let mut t = String::new();
        let _ = write!(
            t,
            "IGD table {:?}; client remembers {:?}; advertised {:?}",
            s.igd
                .table
                .iter()
                .map(|(k, e)| (k.external_port, e.internal))
                .collect::<Vec<_>>(),
            s.c.mappings().map(|m| m.external_port).collect::<Vec<_>>(),
            s.obs
                .advertised
                .keys()
                .map(|k| k.external_port)
                .collect::<Vec<_>>()
        );
        t
    }
}

fn kind(m: &Msg) -> &'static str {
    match m {
        Msg::Ssdp(_) => "an SSDP answer",
        Msg::Connecting(_) => "a connection attempt",
        Msg::Request(..) => "a request",
        Msg::Answer(..) => "an answer",
    }
}

/// The variants `ip2p-check` knows.
pub const VARIANTS: &[&str] = &["doubtful", "confirmed-only"];

/// What each variant is expected to show.
pub fn expectation(variant: &str, property: &str) -> Option<Expect> {
    match (variant, property) {
        ("confirmed-only", "NoLeakedMapping") => Some(Expect::Violate),
        ("confirmed-only", _) => None,
        (_, _) => Some(Expect::Hold),
    }
}

/// The invariant names, as [`Invariant::name`] spells them.
pub fn invariant_names() -> Vec<&'static str> {
    [
        Invariant::InboundOnlyAfterMapping,
        Invariant::NoLeakedMapping,
        Invariant::EveryRequestEnds,
        Invariant::BoundedMemory,
    ]
    .iter()
    .map(|i| i.name())
    .collect()
}

fn run(variant: &str, bounds: &Bounds, opts: &RunOpts) -> Result<Vec<check::Row>, String> {
    let model = UpnpModel::new(variant, bounds)?;
    let mut opts = opts.clone();
    if variant == "confirmed-only" {
        opts.bfs = true; // the shortest story
    }
    Ok(check::check(
        model,
        "upnp",
        variant,
        |p| expectation(variant, p),
        bounds,
        &opts,
    ))
}

fn explore(variant: &str, bounds: &Bounds, addr: std::net::SocketAddr) -> Result<(), String> {
    check::explore(UpnpModel::new(variant, bounds)?, addr)
}

/// The registry entry.
pub fn spec() -> ModelSpec {
    ModelSpec {
        name: "upnp",
        about: "UPnP IGD client (E.1/E.3) on the real ip2p::upnp::Client against a reference IGD: lossy SSDP and TCP, 718 conflicts, faults, leases and renewal",
        variants: VARIANTS,
        ci_runs: || {
            let b = |requests, faults| Bounds {
                requests: Some(requests),
                faults: Some(faults),
                ..Bounds::default()
            };
            // one request cannot reach DoubtfulMappingDeleted (it needs a second connection):
            // the CI run is the two-request one
            vec![("doubtful", b(2, 3)), ("confirmed-only", b(2, 1))]
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
        let m = UpnpModel::new("doubtful", &Bounds::default()).expect("model");
        let names: Vec<&str> = m.properties().iter().map(|p| p.name).collect();
        for inv in invariant_names() {
            assert!(names.contains(&inv), "{inv} is not checked by the model");
        }
    }

    #[test]
    fn small_bounds_give_the_expected_answers() {
        let b = Bounds {
            requests: Some(2),
            faults: Some(1),
            ..Bounds::default()
        };
        let opts = RunOpts {
            threads: 1,
            ..RunOpts::default()
        };
        for v in VARIANTS {
            let rows = run(v, &b, &opts).expect("runs");
            assert!(!rows.is_empty());
            for r in rows {
                let want = match r.expect {
                    Expect::Hold => check::Outcome::Hold,
                    Expect::Violate => check::Outcome::Violate,
                };
                assert_eq!(r.result, want, "{v} {}", r.property);
            }
        }
    }
}
