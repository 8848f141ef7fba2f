//! The STUNT #2 model: the real caller and callee ([`ip2p::stunt::Punch`]), the real proxy and
//! prediction server, NAT-A, NAT-B and the router between them ([`ip2p::stunt::nat::World`]).
//!
//! # Fault model
//!
//! - **WAN**: packets at the router are delivered in any order. In the `lossy` variant the
//!   environment may lose up to `faults` (default 1) of them.
//! - **Proxy connections**: TCP; signals arrive in order, each delivery one step, interleaved in
//!   any way with everything else.
//! - **Time**: a role's timer fires only when nothing is in flight (the network is faster than
//!   every time-out, including the caller's C.8 wait); otherwise any interleaving.
//! - **NATs**: mapping and filtering per variant (below); every initial filtering of an
//!   unsolicited SYN is explored: drop, answer with RST, or drop and block the port.
//!
//! # Variants
//!
//! | variant | NAT-A / NAT-B mapping | expected |
//! |---|---|---|
//! | `preserving` | endpoint-independent, port-preserving (Linux `masquerade`) | every invariant holds |
//! | `offset` | endpoint-independent, public = private + 1000 | every invariant holds |
//! | `sequential` | a new port per destination, +1 each (prediction by delta) | every invariant holds |
//! | `sms` | `preserving`, mappings carried by SMS (D steps) | every invariant holds |
//! | `symmetric` | random ports on A, B or both (3 seeds) | EventuallyEstablished violated; the attempt still ends in a typed error |
//! | `ttl-too-large` | `preserving`, the callee's SYN one hop too far | LowTtlSynNeverReachesNatA and PortNeverBlocked violated (NAT-A blocks PortA); with RST filtering NAT-A's RST also tears down NAT-B's mapping, so CallerSynAfterCalleeMapping is violated too |
//! | `lossy` | `preserving`, up to `faults` WAN losses | EventuallyEstablished violated; EveryAttemptEnds holds |

use ip2p::stunt::invariants::Invariant;
use ip2p::stunt::nat::{Filtering, Kind, MappingBehaviour, Side, World, WorldConfig};
use ip2p::stunt::{Exchange, PunchConfig, StuntError};
use stateright::{Model, Property};

use crate::check::{self, Bounds, Expect, Narrate, RunOpts, Step};
use crate::ModelSpec;

/// The global state.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct State {
    /// Roles, NATs, servers, network.
    pub w: World,
    /// The caller's application has started.
    pub started: bool,
    /// Losses the environment may still cause.
    pub faults_left: u8,
}

/// What can happen next.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Action {
    /// App-A starts the attempt (C.1/D.1).
    Start,
    /// The next signal reaches this side.
    Signal(Side),
    /// WAN packet `i` crosses the router.
    Deliver(usize),
    /// WAN packet `i` is lost.
    Lose(usize),
    /// This side's timer fires.
    Timeout(Side),
}

/// The model.
#[derive(Clone, Debug)]
pub struct StuntModel {
    configs: Vec<WorldConfig>,
    faults: u8,
}

/// The variants `ip2p-check` knows.
pub const VARIANTS: &[&str] = &[
    "preserving",
    "offset",
    "sequential",
    "sms",
    "symmetric",
    "ttl-too-large",
    "lossy",
];

impl StuntModel {
    /// A model of `variant` at `bounds` (`faults` is used by `lossy`).
    pub fn new(variant: &str, bounds: &Bounds) -> Result<Self, String> {
        use MappingBehaviour::*;
        let mut punch = PunchConfig::default();
        punch.predict.probes = 3;
        let mut exchange = Exchange::Proxy;
        let mut faults = 0;
        let mut mappings = vec![[Preserving; 2]];
        let mut seeds = vec![1];
        let mut callee_ttl = None;
        match variant {
            "preserving" => {}
            "offset" => mappings = vec![[Offset(1000); 2]],
            "sequential" => mappings = vec![[Sequential { step: 1 }; 2]],
            "sms" => exchange = Exchange::Sms,
            "symmetric" => {
                mappings = vec![[Random, Preserving], [Preserving, Random], [Random; 2]];
                seeds = vec![1, 2, 3];
            }
            "ttl-too-large" => callee_ttl = Some(3), // the measured hop count is 2
            "lossy" => faults = bounds.faults.unwrap_or(1),
            other => {
                return Err(format!(
                    "unknown stunt variant {other:?}; variants: {}",
                    VARIANTS.join(", ")
                ))
            }
        }
        if faults > 3 {
            return Err("stunt: faults must be 0 to 3".into());
        }
        let mut configs = Vec::new();
        for mapping in &mappings {
            for seed in &seeds {
                for f in [Filtering::Drop, Filtering::Rst, Filtering::Block] {
                    let mut callee = punch;
                    callee.predict.ttl = callee_ttl;
                    configs.push(WorldConfig {
                        mapping: *mapping,
                        filtering: [f; 2],
                        seed: *seed,
                        punch: [punch, callee],
                        exchange,
                    });
                }
            }
        }
        Ok(StuntModel { configs, faults })
    }
}

impl Model for StuntModel {
    type State = State;
    type Action = Action;

    fn init_states(&self) -> Vec<State> {
        self.configs
            .iter()
            .filter_map(|c| World::new(*c).ok())
            .map(|w| State {
                w,
                started: false,
                faults_left: self.faults,
            })
            .collect()
    }

    fn actions(&self, s: &State, actions: &mut Vec<Action>) {
        if !s.started {
            actions.push(Action::Start);
            return;
        }
        for side in [Side::A, Side::B] {
            if !s.w.signals[side as usize].is_empty() {
                actions.push(Action::Signal(side));
            }
        }
        for i in 0..s.w.wan.len() {
            actions.push(Action::Deliver(i));
            if s.faults_left > 0 {
                actions.push(Action::Lose(i));
            }
        }
        for side in [Side::A, Side::B] {
            // fire_timer refuses unless it is the earliest deadline and nothing is in flight
            if s.w.clone().fire_timer(side) {
                actions.push(Action::Timeout(side));
            }
        }
    }

    fn next_state(&self, last: &State, action: Action) -> Option<State> {
        let mut s = last.clone();
        let changed = match action {
            Action::Start => {
                s.started = true;
                s.w.start();
                true
            }
            Action::Signal(side) => s.w.deliver_signal(side),
            Action::Deliver(i) => s.w.deliver_packet(i),
            Action::Lose(i) => {
                s.faults_left = s.faults_left.checked_sub(1)?;
                s.w.lose_packet(i)
            }
            Action::Timeout(side) => s.w.fire_timer(side),
        };
        changed.then_some(s)
    }

    fn properties(&self) -> Vec<Property<Self>> {
        vec![
            Property::always("LowTtlSynNeverReachesNatA", |_, s: &State| {
                s.w.low_ttl_syn_never_reaches_nat_a()
            }),
            Property::always("CallerSynAfterCalleeMapping", |_, s: &State| {
                s.w.caller_syn_after_callee_mapping()
            }),
            Property::always("PortNeverBlocked", |_, s: &State| s.w.port_never_blocked()),
            Property::always("EveryAttemptEnds", |_, s: &State| {
                !(s.started && s.w.finished()) || s.w.both_done()
            }),
            Property::always("EventuallyEstablished", |_, s: &State| {
                !(s.started && s.w.finished()) || s.w.established()
            }),
            Property::always("NoRejectedInput", |_, s: &State| s.w.rejected == 0),
            Property::sometimes("Established", |_, s: &State| s.w.established()),
            Property::sometimes("FailsWithTypedError", |_, s: &State| {
                s.started && s.w.finished() && s.w.results.iter().all(|r| matches!(r, Some(Err(_))))
            }),
        ]
    }
}

fn side_name(side: Side) -> &'static str {
    match side {
        Side::A => "App-A",
        Side::B => "App-B",
    }
}

impl Narrate for StuntModel {
    fn actors(&self) -> Vec<String> {
        ["App-A", "NAT-A", "core", "NAT-B", "App-B"]
            .map(String::from)
            .to_vec()
    }

    fn narrate(&self, before: &State, action: &Action, after: &State) -> Vec<Step> {
        let mut steps = Vec::new();
        match action {
            Action::Start => {
                let p = after.w.a.prediction();
                steps.push(Step::note(
                    "App-A",
                    format!("starts the attempt (C.1/D.1); prediction {p:?}"),
                ));
            }
            Action::Signal(side) => {
                let from = match side {
                    Side::A => "App-B",
                    Side::B => "App-A",
                };
                let sig = before.w.signals[*side as usize].first();
                steps.push(Step::send(
                    from,
                    side_name(*side),
                    format!("via proxy: {sig:?}"),
                ));
                if let Some(p) = match side {
                    Side::A => after.w.a.prediction(),
                    Side::B => after.w.b.prediction(),
                } {
                    steps.push(Step::note(
                        side_name(*side),
                        format!("predicts {} ({:?}), TTL {}", p.public, p.confidence, p.ttl),
                    ));
                }
            }
            Action::Deliver(i) => {
                if let Some(p) = before.w.wan.get(*i) {
                    let kind = match p.kind {
                        Kind::Syn if p.low_ttl => "low-TTL SYN",
                        Kind::Syn => "SYN",
                        Kind::SynAck => "SYN-ACK",
                        Kind::Rst => "RST",
                    };
                    steps.push(Step::note(
                        "core",
                        format!("routes {kind} {} -> {} (TTL {})", p.from, p.to, p.ttl),
                    ));
                }
            }
            Action::Lose(i) => steps.push(Step::note("core", format!("loses packet {i}"))),
            Action::Timeout(side) => steps.push(Step::note(side_name(*side), "timer fires")),
        }
        if !after.w.nat_a.blocked().is_empty() && before.w.nat_a.blocked().is_empty() {
            steps.push(Step::note(
                "NAT-A",
                format!("blocks port {:?}", after.w.nat_a.blocked()),
            ));
        }
        if after.w.obs.low_ttl_syn_at_nat_a && !before.w.obs.low_ttl_syn_at_nat_a {
            steps.push(Step::note("NAT-A", "the low-TTL SYN arrives here"));
        }
        for (i, side) in [Side::A, Side::B].into_iter().enumerate() {
            if before.w.results[i].is_none() {
                if let Some(r) = &after.w.results[i] {
                    steps.push(Step::note(side_name(side), format!("done: {r:?}")));
                }
            }
        }
        steps
    }

    fn describe_state(&self, s: &State) -> String {
        format!(
            "results {:?}; NAT-A blocked {:?}; NAT-B blocked {:?}",
            s.w.results,
            s.w.nat_a.blocked(),
            s.w.nat_b.blocked()
        )
    }
}

/// What each variant is expected to show.
pub fn expectation(variant: &str, property: &str) -> Option<Expect> {
    match (variant, property) {
        (
            "ttl-too-large",
            "LowTtlSynNeverReachesNatA" | "PortNeverBlocked" | "CallerSynAfterCalleeMapping",
        ) => Some(Expect::Violate),
        ("ttl-too-large" | "symmetric" | "lossy", "EventuallyEstablished") => Some(Expect::Violate),
        ("symmetric", "Established") => None,
        (_, "FailsWithTypedError")
            if matches!(variant, "preserving" | "offset" | "sequential" | "sms") =>
        {
            None
        }
        ("ttl-too-large", _) => Some(Expect::Hold),
        _ => Some(Expect::Hold),
    }
}

/// The invariant names, as [`Invariant::name`] spells them (checked by a test).
pub fn invariant_names() -> Vec<&'static str> {
    Invariant::ALL.iter().map(|i| i.name()).collect()
}

/// Whether a typed error is one of the failures the protocol reports (never a hang).
pub fn is_clear_failure(e: &StuntError) -> bool {
    !matches!(e, StuntError::Config(_))
}

fn run(variant: &str, bounds: &Bounds, opts: &RunOpts) -> Result<Vec<check::Row>, String> {
    let model = StuntModel::new(variant, bounds)?;
    let mut opts = opts.clone();
    if matches!(variant, "ttl-too-large" | "symmetric" | "lossy") {
        opts.bfs = true;
    }
    Ok(check::check(
        model,
        "stunt",
        variant,
        |p| expectation(variant, p),
        bounds,
        &opts,
    ))
}

fn explore(variant: &str, bounds: &Bounds, addr: std::net::SocketAddr) -> Result<(), String> {
    check::explore(StuntModel::new(variant, bounds)?, addr)
}

/// The registry entry.
pub fn spec() -> ModelSpec {
    ModelSpec {
        name: "stunt",
        about: "STUNT #2 (C.0-C.8, D.1-D.6) on real ip2p::stunt roles through NAT-A, a router and NAT-B with TTLs",
        variants: VARIANTS,
        ci_runs: || {
            VARIANTS
                .iter()
                .map(|v| (*v, Bounds::default()))
                .collect()
        },
        run,
        explore,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_match_the_library() {
        let props: Vec<String> = StuntModel::new("preserving", &Bounds::default())
            .unwrap()
            .properties()
            .iter()
            .map(|p| p.name.to_string())
            .collect();
        for n in invariant_names() {
            assert!(props.iter().any(|p| p == n), "{n} is not a model property");
        }
    }
}
