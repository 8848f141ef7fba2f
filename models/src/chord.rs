//! The Chord model: real [`ip2p::chord::Node`]s over a network that reorders, with joins and
//! fail-stop crashes in any interleaving.
//!
//! # Fault model
//!
//! - **Network**: every message in flight may be delivered next (reordering); none is lost or
//!   duplicated. In-flight messages are a set: two identical messages between the same pair
//!   collapse into one (every message of the protocol is idempotent, so this loses no behaviour
//!   that matters and keeps the space finite).
//! - **Time**: every node's clock stays at `0`; a node's tick fires when the model chooses
//!   (`Tick`), after which its deadlines are rebased to `0` again. Requests to a live node are
//!   always answered: a node does not tick while it waits on a live peer, so a time-out happens
//!   only for a dead peer (Zave's perfect failure detection).
//! - **Crash**: fail-stop (`Fail`); messages to a dead node vanish. The bound on crashes is the
//!   same for both variants and does not look at protocol state: at least `r + 1` members stay
//!   alive, and for every live member, one of the `r` members that follow it in identifier order
//!   (dead ones included) is alive. (Zave's stable base implies this; a bound phrased over the
//!   nodes' own successor lists would excuse a protocol that keeps too short a list.)
//! - **Join**: an idle node joins through any live member (`Join`), at most `joins` times.
//! - **Timing**: a node starts its next round only when its own last messages have been
//!   delivered (message delay below the stabilization period). Without this bound the 4-node
//!   space did not finish in 4 minutes (12.5M states and growing); with it, 1.4M states.
//!
//! # Bounds
//!
//! `nodes` (default 4), `successors` r (default 2), `joins` (default: the idle nodes),
//! `failures` (default 1). The first `r + 1` members form an ideal ring; the others start idle,
//! spread between them.

use std::fmt::Write as _;
use std::ops::{Deref, Index, IndexMut};
use std::sync::Arc;
use std::time::Duration;

use ip2p::chord::invariants::{self, Invariant};
use ip2p::chord::{Command, Config, Input, Message, Node, Output, Peer, Phase, SmallId, Variant};
use ip2p::machine::Machine;
use ip2p::Time;
use stateright::{Model, Property};

use crate::check::{self, Bounds, Expect, Narrate, RunOpts, Step};
use crate::ModelSpec;

/// Ring of 2^4 points: room for up to 16 nodes.
pub type Id = SmallId<4>;
/// A model node: real machine, 4-bit ids, addresses are node indices.
pub type ModelNode = Node<Id, u8>;

/// One message in flight.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Envelope {
    /// Sender index.
    pub from: u8,
    /// Destination index.
    pub to: u8,
    /// The message, as the machine produced it.
    pub msg: Message<Id, u8>,
}

/// The global state: every node, who is alive, what is in flight, what the environment may still do.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct State {
    /// The nodes, index = address.
    pub nodes: Nodes,
    /// Bit `i` set: node `i` is up.
    pub alive: u16,
    /// Messages in flight, sorted and without duplicates.
    pub net: Vec<Envelope>,
    /// Joins the environment may still start.
    pub joins_left: u8,
    /// Crashes the environment may still cause.
    pub fails_left: u8,
    /// Keys stored (for `KeysHeld`).
    pub keys: Vec<Id>,
}

/// The nodes of a state, each behind an [`Arc`]: cloning a state shares every node, and a step
/// copies only the node it changes ([`Arc::make_mut`] in [`IndexMut`]). Hash, equality and
/// `Debug` are those of the plain list of nodes, so fingerprints are the same as with a
/// `Vec<ModelNode>`. Index it like a slice of nodes; it derefs to the slice of `Arc`s (which every
/// [`invariants`] check takes).
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Nodes(Vec<Arc<ModelNode>>);

impl Deref for Nodes {
    type Target = [Arc<ModelNode>];
    fn deref(&self) -> &Self::Target {
        &self.0
    }
}

impl Index<usize> for Nodes {
    type Output = ModelNode;
    fn index(&self, i: usize) -> &ModelNode {
        &self.0[i]
    }
}

impl IndexMut<usize> for Nodes {
    fn index_mut(&mut self, i: usize) -> &mut ModelNode {
        Arc::make_mut(&mut self.0[i])
    }
}

impl FromIterator<ModelNode> for Nodes {
    fn from_iter<T: IntoIterator<Item = ModelNode>>(iter: T) -> Self {
        Nodes(iter.into_iter().map(Arc::new).collect())
    }
}

impl std::fmt::Debug for Nodes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.0.iter().map(|n| &**n)).finish()
    }
}

impl State {
    fn is_alive(&self, i: usize) -> bool {
        self.alive & (1 << i) != 0
    }
}

/// What can happen next.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Action {
    /// Deliver a message in flight.
    Deliver(Envelope),
    /// A node's maintenance timer fires (stabilize; expired requests time out).
    Tick(u8),
    /// An idle node joins through a live member.
    Join {
        /// The joining node.
        node: u8,
        /// The member it asks.
        via: u8,
    },
    /// A member crashes (fail-stop).
    Fail(u8),
}

/// The Chord model.
#[derive(Clone, Debug)]
pub struct ChordModel {
    /// Which protocol every node runs.
    pub variant: Variant,
    /// Check `KeysHeld` with one stored key, replicated every tick.
    pub keys: bool,
    /// Number of nodes.
    pub nodes: u8,
    /// `r`.
    pub successors: u8,
    /// Joins allowed.
    pub joins: u8,
    /// Crashes allowed.
    pub failures: u8,
    /// Members of the initial ring (the rest start idle).
    pub initial: u8,
}

const PERIOD: Duration = Duration::from_millis(1_000);

impl ChordModel {
    /// A model of `variant` at `bounds` (missing bounds take the CI defaults).
    pub fn new(variant: Variant, keys: bool, b: &Bounds) -> Result<Self, String> {
        let successors = b.successors.unwrap_or(2);
        let nodes = b.nodes.unwrap_or(4);
        let initial = successors + 1;
        if !(1..=8).contains(&successors) {
            return Err(format!("successors must be 1..=8, got {successors}"));
        }
        if nodes < initial || nodes > 12 {
            return Err(format!(
                "nodes must be between r+1 = {initial} and 12, got {nodes}"
            ));
        }
        Ok(ChordModel {
            variant,
            keys,
            nodes,
            successors,
            joins: b.joins.unwrap_or(nodes - initial),
            failures: b.failures.unwrap_or(1),
            initial,
        })
    }

    fn config(&self) -> Config {
        Config {
            variant: self.variant,
            successors: self.successors,
            fingers: false,
            stabilize_every: PERIOD,
            request_timeout: PERIOD,
            // periodic replication is off: nothing deletes a key, so replicas matter only after
            // more crashes than the model allows; hand-over on join is what `KeyAtOwner` checks
            replicate_every: 0,
            max_pending: 4,
            max_hops: 2 * self.nodes as u16,
            max_keys: 4,
            max_value_len: 8,
            nonce_bits: 0,
            request_retries: 0,
        }
    }

    /// Which ring positions the initial members take: joiners are spread between them.
    fn member_positions(&self) -> Vec<bool> {
        let n = self.nodes as usize;
        let idle = n - self.initial as usize;
        let mut member = vec![true; n];
        // put idle nodes at odd positions first, so each joins between two members
        let mut placed = 0;
        let mut i = 1;
        while placed < idle {
            if i >= n {
                i = 0;
            }
            if member[i] {
                member[i] = false;
                placed += 1;
            }
            i += 2;
        }
        member
    }

    fn peer(i: usize) -> Peer<Id, u8> {
        Peer {
            id: SmallId::new(i as u8),
            addr: i as u8,
        }
    }

    /// Deliver every output of node `i` into the network; events are dropped (the model looks at
    /// the nodes' state, not at their reports).
    fn drain(s: &mut State, i: usize) {
        while let Some(o) = s.nodes[i].poll() {
            if let Output::Send { to, msg } = o {
                if s.is_alive(to as usize) {
                    let e = Envelope {
                        from: i as u8,
                        to,
                        msg,
                    };
                    if let Err(pos) = s.net.binary_search(&e) {
                        s.net.insert(pos, e);
                    }
                }
            }
        }
    }

    fn can_tick(s: &State, i: usize) -> bool {
        let n = &s.nodes[i];
        s.is_alive(i)
            && matches!(n.phase(), Phase::Member | Phase::Joining)
            && n.poll_timeout().is_some()
            && n.pending_peers().all(|p| !s.is_alive(p as usize))
            // partial synchrony: a message is delivered within one stabilization period, so a
            // node's next round never starts while its own last messages are still in flight
            && !s.net.iter().any(|e| e.from as usize == i)
    }

    /// The environment's failure bound, the same for every variant and blind to protocol state:
    /// at least `r + 1` members stay alive, and no member's `r` next members in identifier order
    /// (the ones an ideal successor list names, dead ones included) are all dead.
    fn can_fail(&self, s: &State, i: usize) -> bool {
        if s.fails_left == 0 || !s.is_alive(i) || s.nodes[i].phase() != Phase::Member {
            return false;
        }
        let after = s.alive & !(1 << i);
        let up = |j: usize| after & (1 << j) != 0;
        let r = self.successors as usize;
        // every node that has been a member, alive or dead, in identifier order (index = id)
        // (on the stack: this runs for every node of every state; at most 16 nodes, `alive` is a u16)
        let mut buf = [0usize; 16];
        let mut len = 0;
        for j in (0..s.nodes.len()).filter(|&j| s.nodes[j].phase() == Phase::Member) {
            buf[len] = j;
            len += 1;
        }
        let ring = &buf[..len];
        let live = ring.iter().filter(|&&j| up(j)).count();
        live > r
            && ring
                .iter()
                .enumerate()
                .filter(|&(_, &m)| up(m))
                .all(|(k, _)| (1..=r.min(ring.len() - 1)).any(|d| up(ring[(k + d) % ring.len()])))
    }
}

impl Model for ChordModel {
    type State = State;
    type Action = Action;

    fn init_states(&self) -> Vec<State> {
        let n = self.nodes as usize;
        let member = self.member_positions();
        let ring: Vec<usize> = (0..n).filter(|&i| member[i]).collect();
        let r = self.successors as usize;
        let cfg = self.config();
        let mut nodes = Vec::with_capacity(n);
        for i in 0..n {
            let me = Self::peer(i);
            let node = match ring.iter().position(|&j| j == i) {
                Some(k) => {
                    let pred = Self::peer(ring[(k + ring.len() - 1) % ring.len()]);
                    let succs: Vec<_> = (1..=r)
                        .map(|d| Self::peer(ring[(k + d) % ring.len()]))
                        .collect();
                    Node::with_state(me, cfg.clone(), Some(pred), &succs, Time::ZERO)
                }
                None => Node::new(me, cfg.clone()),
            };
            nodes.push(node);
        }
        let mut keys = Vec::new();
        if self.keys {
            // one key, owned by the member after the first idle position (or the first member)
            let key = SmallId::new(if n > ring.len() {
                (0..n).find(|&i| !member[i]).unwrap_or(0) as u8
            } else {
                0
            });
            keys.push(key);
            // the owner and its r successors hold it, as after a put and one replication
            let owner_k = ring
                .iter()
                .position(|&j| Self::peer(j).id >= key)
                .unwrap_or(0);
            for d in 0..=r.min(ring.len() - 1) {
                let holder = ring[(owner_k + d) % ring.len()];
                let mut tmp = nodes[holder].clone();
                // store through the machine's own path: a Replicate message from a peer
                let from = ring[(owner_k + d + 1) % ring.len()] as u8;
                let msg = Message::Replicate {
                    items: vec![(key, vec![1])],
                };
                let _ = tmp.handle(Time::ZERO, Input::Message { from, msg });
                while tmp.poll().is_some() {}
                nodes[holder] = tmp;
            }
        }
        vec![State {
            nodes: nodes.into_iter().collect(),
            alive: ((1u32 << n) - 1) as u16,
            net: Vec::new(),
            joins_left: self.joins,
            fails_left: self.failures,
            keys,
        }]
    }

    fn actions(&self, s: &State, actions: &mut Vec<Action>) {
        for e in &s.net {
            actions.push(Action::Deliver(e.clone()));
        }
        let n = s.nodes.len();
        for i in 0..n {
            if Self::can_tick(s, i) {
                actions.push(Action::Tick(i as u8));
            }
        }
        if s.joins_left > 0 {
            for i in (0..n).filter(|&i| s.is_alive(i) && s.nodes[i].phase() == Phase::Idle) {
                for via in (0..n).filter(|&v| s.is_alive(v) && s.nodes[v].phase() == Phase::Member)
                {
                    actions.push(Action::Join {
                        node: i as u8,
                        via: via as u8,
                    });
                }
            }
        }
        for i in 0..n {
            if self.can_fail(s, i) {
                actions.push(Action::Fail(i as u8));
            }
        }
    }

    fn next_state(&self, last: &State, action: Action) -> Option<State> {
        let mut s = last.clone();
        match action {
            Action::Deliver(e) => {
                let pos = s.net.binary_search(&e).ok()?;
                s.net.remove(pos);
                let to = e.to as usize;
                if s.is_alive(to) {
                    let _ = s.nodes[to].handle(
                        Time::ZERO,
                        Input::Message {
                            from: e.from,
                            msg: e.msg,
                        },
                    );
                    Self::drain(&mut s, to);
                }
            }
            Action::Tick(i) => {
                let i = i as usize;
                let t = s.nodes[i].poll_timeout()?;
                s.nodes[i].handle_timeout(t);
                s.nodes[i].rebase_clock(t, Time::ZERO);
                Self::drain(&mut s, i);
            }
            Action::Join { node, via } => {
                let i = node as usize;
                s.joins_left -= 1;
                s.nodes[i]
                    .handle(Time::ZERO, Input::Command(Command::Join { via }))
                    .ok()?;
                Self::drain(&mut s, i);
            }
            Action::Fail(i) => {
                s.fails_left -= 1;
                s.alive &= !(1 << i);
                s.net.retain(|e| e.to != i);
            }
        }
        Some(s)
    }

    fn properties(&self) -> Vec<Property<Self>> {
        let mut p = vec![
            Property::always("AtLeastOneRing", inv::<0>),
            Property::always("AtMostOneRing", inv::<1>),
            Property::always("OrderedRing", inv::<2>),
            Property::always("ConnectedAppendages", inv::<3>),
            Property::always("OrderedSuccessorLists", inv::<4>),
            Property::always("NoDuplicates", inv::<5>),
            Property::sometimes("EveryoneJoined", |_, s: &State| {
                s.nodes
                    .iter()
                    .enumerate()
                    .all(|(i, n)| !s.is_alive(i) || n.phase() == Phase::Member)
                    && s.alive.count_ones() as usize == s.nodes.len()
            }),
            Property::sometimes("CrashHappened", |m: &ChordModel, s: &State| {
                m.failures > 0 && (s.alive.count_ones() as usize) < s.nodes.len()
            }),
        ];
        if self.keys {
            p.push(Property::always(invariants::KEYS_HELD, |_, s: &State| {
                invariants::keys_held(&s.nodes, |i| s.is_alive(i), &s.keys)
            }));
            p.push(Property::always("KeyAtOwner", key_at_owner));
            p.push(Property::sometimes("QuietIdealRing", |_, s: &State| {
                s.net.is_empty() && ideal(s)
            }));
        }
        p
    }
}

/// Every live member's first successor and predecessor are its neighbours among the live members.
pub fn ideal(s: &State) -> bool {
    let live: Vec<usize> = (0..s.nodes.len())
        .filter(|&i| s.is_alive(i) && s.nodes[i].phase() == Phase::Member)
        .collect();
    let idle = (0..s.nodes.len()).any(|i| s.is_alive(i) && s.nodes[i].phase() != Phase::Member);
    !idle
        && live.iter().enumerate().all(|(k, &i)| {
            let next = live[(k + 1) % live.len()];
            let prev = live[(k + live.len() - 1) % live.len()];
            let n = &s.nodes[i];
            n.successor().map(|p| p.addr as usize) == Some(next)
                && n.predecessor().map(|p| p.addr as usize) == Some(prev)
        })
}

/// `KeyAtOwner`: once nothing is in flight and the ring is ideal, the key's owner (its successor
/// among the live members) holds it: hand-over on join and take-over after a crash lost nothing.
pub fn key_at_owner(_: &ChordModel, s: &State) -> bool {
    if !s.net.is_empty() || !ideal(s) {
        return true;
    }
    s.keys.iter().all(|k| {
        let owner = (0..s.nodes.len())
            .filter(|&i| s.is_alive(i) && s.nodes[i].phase() == Phase::Member)
            .find(|&i| s.nodes[i].me().id >= *k)
            .or_else(|| {
                (0..s.nodes.len()).find(|&i| s.is_alive(i) && s.nodes[i].phase() == Phase::Member)
            });
        owner.is_some_and(|o| s.nodes[o].store().contains_key(k))
    })
}

fn inv<const K: usize>(_: &ChordModel, s: &State) -> bool {
    invariants::holds(Invariant::ALL[K], &s.nodes, |i| s.is_alive(i))
}

fn name(i: u8) -> String {
    format!("n{i}")
}

fn peers(ps: &[Peer<Id, u8>]) -> String {
    let v: Vec<String> = ps.iter().map(|p| name(p.addr)).collect();
    format!("[{}]", v.join(","))
}

fn opt_peer(p: Option<Peer<Id, u8>>) -> String {
    p.map(|p| name(p.addr)).unwrap_or_else(|| "none".into())
}

fn describe_msg(m: &Message<Id, u8>) -> String {
    match m {
        Message::FindSuccessor { key, .. } => format!("FindSuccessor(key {})", key.0),
        Message::Found { owner, .. } => format!("Found(owner {})", name(owner.addr)),
        Message::Closer { next, .. } => format!("Closer(ask {})", peers(next)),
        Message::GetState { .. } => "GetState (stabilize query)".into(),
        Message::State { pred, succs, .. } => {
            format!("State(pred {}, succs {})", opt_peer(*pred), peers(succs))
        }
        Message::Notify { .. } => "Notify (I may be your predecessor)".into(),
        Message::Ping { .. } => "Ping".into(),
        Message::Pong { .. } => "Pong".into(),
        Message::Replicate { items } => format!("Replicate({} keys)", items.len()),
        other => other.name().into(),
    }
}

/// How a node's pointers changed, if they did.
fn pointer_change(before: &ModelNode, after: &ModelNode) -> Option<String> {
    let mut out = String::new();
    if before.phase() != after.phase() {
        let _ = write!(out, "{:?}→{:?} ", before.phase(), after.phase());
    }
    if before.successors() != after.successors() {
        let _ = write!(
            out,
            "succs {}→{} ",
            peers(before.successors()),
            peers(after.successors())
        );
    }
    if before.predecessor() != after.predecessor() {
        let _ = write!(
            out,
            "pred {}→{} ",
            opt_peer(before.predecessor()),
            opt_peer(after.predecessor())
        );
    }
    (!out.is_empty()).then(|| out.trim_end().to_string())
}

impl Narrate for ChordModel {
    fn actors(&self) -> Vec<String> {
        (0..self.nodes).map(name).collect()
    }

    fn narrate(&self, before: &State, action: &Action, after: &State) -> Vec<Step> {
        let mut steps = Vec::new();
        let changed = |i: usize| pointer_change(&before.nodes[i], &after.nodes[i]);
        let sent = |i: u8| -> Vec<String> {
            after
                .net
                .iter()
                .filter(|e| e.from == i && !before.net.contains(e))
                .map(|e| format!("{} to {}", e.msg.name(), name(e.to)))
                .collect()
        };
        match action {
            Action::Deliver(e) => {
                steps.push(Step {
                    actor: name(e.from),
                    peer: Some(name(e.to)),
                    text: describe_msg(&e.msg),
                });
                if let Some(c) = changed(e.to as usize) {
                    steps.push(Step {
                        actor: name(e.to),
                        peer: None,
                        text: c,
                    });
                }
            }
            Action::Tick(i) => {
                let s = sent(*i);
                let gone: Vec<String> = before.nodes[*i as usize]
                    .pending_peers()
                    .filter(|p| !before.is_alive(*p as usize))
                    .map(name)
                    .collect();
                let mut text = if gone.is_empty() {
                    String::from("timer: stabilize")
                } else {
                    format!("timer: no answer from {}, taken for dead", gone.join(", "))
                };
                if !s.is_empty() {
                    let _ = write!(text, ", sends {}", s.join(", "));
                }
                if let Some(c) = changed(*i as usize) {
                    let _ = write!(text, "; {c}");
                }
                steps.push(Step {
                    actor: name(*i),
                    peer: None,
                    text,
                });
            }
            Action::Join { node, via } => steps.push(Step {
                actor: name(*node),
                peer: None,
                text: format!(
                    "joins through {}: looks up the successor of its own id {}",
                    name(*via),
                    after.nodes[*node as usize].me().id.0
                ),
            }),
            Action::Fail(i) => steps.push(Step {
                actor: name(*i),
                peer: None,
                text: "CRASHES (fail-stop)".into(),
            }),
        }
        steps
    }

    fn describe_state(&self, s: &State) -> String {
        let v: Vec<String> = s
            .nodes
            .iter()
            .enumerate()
            .map(|(i, n)| {
                if !s.is_alive(i) {
                    format!("{} dead", name(i as u8))
                } else {
                    format!(
                        "{} {:?} succs {} pred {}",
                        name(i as u8),
                        n.phase(),
                        peers(n.successors()),
                        opt_peer(n.predecessor())
                    )
                }
            })
            .collect();
        v.join("; ")
    }
}

fn parse_variant(v: &str) -> Result<(Variant, bool), String> {
    match v {
        "zave" => Ok((Variant::Zave, false)),
        "zave-keys" => Ok((Variant::Zave, true)),
        "original" => Ok((Variant::Original, false)),
        other => Err(format!(
            "unknown chord variant {other:?}; variants: {}",
            VARIANTS.join(", ")
        )),
    }
}

/// The variants `ip2p-check` knows.
pub const VARIANTS: &[&str] = &["original", "zave", "zave-keys"];

/// What each variant is expected to show.
pub fn expectation(variant: &str, property: &str) -> Option<Expect> {
    match (variant, property) {
        ("original", "AtMostOneRing") => Some(Expect::Violate),
        ("original", _) => None,
        (_, _) => Some(Expect::Hold),
    }
}

fn run(variant: &str, bounds: &Bounds, opts: &RunOpts) -> Result<Vec<check::Row>, String> {
    let (v, keys) = parse_variant(variant)?;
    let model = ChordModel::new(v, keys, bounds)?;
    // a variant that must violate is searched breadth-first: its counterexample is then the
    // shortest there is, a story a person can follow
    let mut opts = opts.clone();
    if VARIANTS_THAT_VIOLATE.contains(&variant) {
        opts.bfs = true;
    }
    Ok(check::check(
        model,
        "chord",
        variant,
        |p| expectation(variant, p),
        bounds,
        &opts,
    ))
}

/// Variants kept because they break: the checker must find their counterexample.
const VARIANTS_THAT_VIOLATE: &[&str] = &["original"];

fn explore(variant: &str, bounds: &Bounds, addr: std::net::SocketAddr) -> Result<(), String> {
    let (v, keys) = parse_variant(variant)?;
    check::explore(ChordModel::new(v, keys, bounds)?, addr)
}

/// The registry entry.
pub fn spec() -> ModelSpec {
    ModelSpec {
        name: "chord",
        about: "Chord ring maintenance (join, stabilize, notify/rectify, crash) on real ip2p::chord::Node machines",
        variants: VARIANTS,
        ci_runs: || {
            vec![
                ("original", Bounds { nodes: Some(4), ..Bounds::default() }),
                ("zave", Bounds { nodes: Some(4), ..Bounds::default() }),
                ("zave-keys", Bounds { nodes: Some(4), ..Bounds::default() }),
            ]
        },
        run,
        explore,
    }
}
