//! A deterministic discrete-event simulator that runs many real Chord machines
//! ([`crate::chord::Node`]) over a simulated network.
//!
//! Nothing here re-implements Chord: every node is the very [`Node`] that the model checker
//! explores and the tokio adapter runs. The simulator only plays the host: it delivers messages
//! after a latency drawn from a range, loses some with a given probability, calls
//! [`Machine::handle_timeout`] when a node's deadline comes, drains [`Machine::poll`] after every
//! `handle` and `handle_timeout` (the contract of [`crate::machine`]), and collects the nodes'
//! application events.
//!
//! - **Deterministic**: one seed ([`SplitMix64`]) drives ids, latencies and losses; events with
//!   equal times are ordered by a sequence number. The same seed gives the same run.
//! - **Faults**: message loss, fail-stop crashes ([`Sim::crash`]: a dead node drops everything
//!   sent to it and its timers never fire), graceful leaves, joins at any time.
//! - **Fast start**: [`Sim::add_ring`] builds an already stabilized ring (with
//!   [`Node::with_state`] and [`Node::set_ideal_fingers`]) for large experiments; joins through the
//!   protocol ([`Sim::join`]) for small rings and churn.
//! - **Step by step**: [`Sim::step`] processes one event, so a fuzz target can interleave its own
//!   commands with the network's.
//!
//! Addresses are node indices (`u32`); identifiers are any [`RingId`] ([`Id64`] by default).
//!
//! # Example
//!
//! ```
//! use ip2p::chord::{Event, Id64};
//! use ip2p::sim::{Sim, SimConfig};
//! use ip2p::Time;
//!
//! let mut sim: Sim<Id64> = Sim::new(SimConfig::default(), 42);
//! // a stabilized ring of 100 nodes with ideal fingers
//! sim.add_ring(100);
//! // a new node joins through the protocol
//! let newcomer = sim.add_random_node().unwrap();
//! sim.join(newcomer, 0).unwrap();
//! let key = sim.random_key();
//! sim.put(3, key, b"hello".to_vec()).unwrap();
//! assert!(sim.run_until_ops_done(Time::from_millis(60_000)));
//! sim.run_for(std::time::Duration::from_secs(10)); // let stabilization settle
//! sim.check_ring().unwrap();
//!
//! let op = sim.get(newcomer, key).unwrap();
//! assert!(sim.run_until_ops_done(sim.now() + std::time::Duration::from_secs(60)));
//! let got = sim.take_events().into_iter().find_map(|r| match r.event {
//!     Event::GetDone { op: o, value, .. } if o == op => value,
//!     _ => None,
//! });
//! assert_eq!(got.as_deref(), Some(&b"hello"[..]));
//! ```

mod rng;

pub mod experiments;
pub mod ip2p;
pub mod samp;

pub use rng::SplitMix64;

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::fmt::Write as _;
use std::time::Duration;

use crate::chord::invariants::{self, Invariant};
use crate::chord::wire::ChordWire;
use crate::chord::{
    between, Command, Config, Event, Id64, Input, Message, Node, OpId, Output, Peer, Phase, RingId,
};
use crate::machine::Machine;
use crate::time::Time;

/// Settings of a simulated network.
#[derive(Clone, Debug, PartialEq)]
pub struct SimConfig {
    /// Every node's configuration.
    pub chord: Config,
    /// Shortest one-way latency of a message.
    pub latency_min: Duration,
    /// Longest one-way latency (each message draws uniformly in `latency_min..=latency_max`,
    /// in whole milliseconds, so messages may be reordered).
    pub latency_max: Duration,
    /// Probability that a message is lost (`0.0..=1.0`).
    pub loss: f64,
    /// Encode every message with the wire codec ([`ChordWire`]) and decode it on delivery.
    /// Slower, but exercises the real bytes.
    pub wire: bool,
}

impl Default for SimConfig {
    fn default() -> Self {
        SimConfig {
            chord: Config::default(),
            latency_min: Duration::from_millis(10),
            latency_max: Duration::from_millis(50),
            loss: 0.0,
            wire: false,
        }
    }
}

impl SimConfig {
    /// Turn periodic maintenance (stabilize, fix fingers, replication) off: the nodes' tick period
    /// becomes longer than any simulation. Request timeouts still fire. This is the "stop
    /// stabilization" of the Chord paper's failure experiments, and makes static experiments fast.
    pub fn without_maintenance(mut self) -> Self {
        self.chord.stabilize_every = Duration::from_secs(u32::MAX as u64);
        self
    }
}

/// One application event of one node, with the time it happened.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Record<I> {
    /// When the node emitted it.
    pub at: Time,
    /// The node's index (= its address).
    pub node: u32,
    /// What happened.
    pub event: Event<I, u32>,
}

/// Counters of the simulated network (the nodes keep their own, see [`Node::stats`]).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct SimStats {
    /// Messages handed to a live node.
    pub delivered: u64,
    /// Messages lost on the way (`SimConfig::loss`).
    pub lost: u64,
    /// Messages that arrived at a crashed node.
    pub to_dead: u64,
    /// Messages sent to an address that is no node.
    pub to_nowhere: u64,
    /// Inputs (messages and commands) that a node rejected with an error.
    pub rejected: u64,
    /// Messages whose bytes did not decode (with `SimConfig::wire` or [`Sim::inject_bytes`]).
    pub decode_errors: u64,
    /// Calls of `handle_timeout`.
    pub timers_fired: u64,
    /// A node still had a deadline at or before `now` right after `handle_timeout`: the
    /// simulator pushed it 1 ms later instead of spinning. Should stay 0.
    pub timer_stalls: u64,
    /// The largest number of events queued at once.
    pub peak_queue: usize,
}

/// Why the simulator refused a call.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum SimError {
    /// No node has this index.
    #[error("there is no node {0}")]
    NoSuchNode(u32),
    /// The node has crashed; it takes no more commands.
    #[error("node {0} has crashed")]
    Crashed(u32),
    /// Another node already has this identifier.
    #[error("the identifier is already used by node {0}")]
    DuplicateId(u32),
    /// More nodes than `u32` addresses.
    #[error("too many nodes for u32 addresses")]
    Full,
    /// The node rejected the command.
    #[error("node {node} rejected the command: {error}")]
    Rejected {
        /// The node.
        node: u32,
        /// Its error.
        error: crate::chord::Error,
    },
}

/// A sorted snapshot of ring members, to compute who *should* own a key.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RingView<I> {
    /// The members, sorted by identifier.
    pub members: Vec<Peer<I, u32>>,
}

impl<I: RingId> RingView<I> {
    /// A view of these members (sorted here).
    pub fn new(mut members: Vec<Peer<I, u32>>) -> Self {
        members.sort_unstable();
        RingView { members }
    }

    /// The successor of `key` among the members: the node responsible for it.
    pub fn owner(&self, key: &I) -> Option<Peer<I, u32>> {
        let i = self.members.partition_point(|p| p.id < *key);
        self.members.get(i).or(self.members.first()).copied()
    }

    /// The position of `key`'s owner in [`RingView::members`].
    pub fn owner_index(&self, key: &I) -> Option<usize> {
        if self.members.is_empty() {
            return None;
        }
        let i = self.members.partition_point(|p| p.id < *key);
        Some(if i == self.members.len() { 0 } else { i })
    }

    /// Number of members.
    pub fn len(&self) -> usize {
        self.members.len()
    }

    /// No members.
    pub fn is_empty(&self) -> bool {
        self.members.is_empty()
    }
}

enum Payload<I> {
    Msg(Message<I, u32>),
    Bytes(Vec<u8>),
}

struct Flight<I> {
    from: u32,
    to: u32,
    payload: Payload<I>,
}

/// Timers further ahead than this wait outside the heap.
const FAR: Duration = Duration::from_secs(60);

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Due {
    Timer(u32),
    Deliver(u32),
}

/// The simulated network and its nodes. See the [module documentation](self).
pub struct Sim<I = Id64> {
    config: SimConfig,
    rng: SplitMix64,
    now: Time,
    seq: u64,
    nodes: Vec<Node<I, u32>>,
    alive: Vec<bool>,
    timer_at: Vec<Time>,
    node_ops: Vec<u32>,
    ops: u64,
    by_id: HashMap<I, u32>,
    queue: BinaryHeap<Reverse<(Time, u64, Due)>>,
    /// Timers more than `FAR` ahead wait here, out of the heap (10^6 idle nodes' far-off ticks
    /// would otherwise make every heap operation slow); `far_at[i]` is node `i`'s entry here.
    far: Vec<(Time, u32)>,
    far_at: Vec<Time>,
    far_min: Time,
    flights: Vec<Option<Flight<I>>>,
    free: Vec<u32>,
    in_flight: usize,
    next_op: u64,
    events: Vec<Record<I>>,
    stats: SimStats,
}

impl<I: RingId> Sim<I> {
    /// An empty network at time zero, with every random choice drawn from `seed`.
    pub fn new(config: SimConfig, seed: u64) -> Self {
        Sim {
            config,
            rng: SplitMix64::new(seed),
            now: Time::ZERO,
            seq: 0,
            nodes: Vec::new(),
            alive: Vec::new(),
            timer_at: Vec::new(),
            node_ops: Vec::new(),
            ops: 0,
            by_id: HashMap::new(),
            queue: BinaryHeap::new(),
            far: Vec::new(),
            far_at: Vec::new(),
            far_min: Time::MAX,
            flights: Vec::new(),
            free: Vec::new(),
            in_flight: 0,
            next_op: 0,
            events: Vec::new(),
            stats: SimStats::default(),
        }
    }

    // ----- looking -------------------------------------------------------------------------

    /// The simulated clock.
    pub fn now(&self) -> Time {
        self.now
    }
    /// The configuration.
    pub fn config(&self) -> &SimConfig {
        &self.config
    }
    /// Change the loss probability from now on (e.g. a lossy period followed by a quiet one).
    pub fn set_loss(&mut self, loss: f64) {
        self.config.loss = loss;
    }
    /// The random number generator (for a caller's own random choices, kept reproducible).
    pub fn rng(&mut self) -> &mut SplitMix64 {
        &mut self.rng
    }
    /// Every node ever added, crashed ones included, indexed by address.
    pub fn nodes(&self) -> &[Node<I, u32>] {
        &self.nodes
    }
    /// Node `i`.
    pub fn node(&self, i: u32) -> Option<&Node<I, u32>> {
        self.nodes.get(i as usize)
    }
    /// Number of nodes ever added.
    pub fn len(&self) -> usize {
        self.nodes.len()
    }
    /// No node was added yet.
    pub fn is_empty(&self) -> bool {
        self.nodes.is_empty()
    }
    /// Node `i` has not crashed (it may be idle, a member, or have left).
    pub fn is_alive(&self, i: u32) -> bool {
        self.alive.get(i as usize).copied().unwrap_or(false)
    }
    /// The liveness of every node, indexed by address (for invariant checks).
    pub fn alive(&self) -> &[bool] {
        &self.alive
    }
    /// Node `i` is alive and a member of a ring.
    pub fn is_member(&self, i: u32) -> bool {
        self.is_alive(i) && self.nodes[i as usize].phase() == Phase::Member
    }
    /// The node with identifier `id`.
    pub fn index_of(&self, id: &I) -> Option<u32> {
        self.by_id.get(id).copied()
    }
    /// Network counters.
    pub fn stats(&self) -> &SimStats {
        &self.stats
    }
    /// User operations (join, create, leave, lookup, put, get) issued and not finished yet,
    /// on live nodes.
    pub fn ops_in_flight(&self) -> u64 {
        self.ops
    }
    /// Messages on the wire.
    pub fn messages_in_flight(&self) -> usize {
        self.in_flight
    }
    /// Events collected so far (oldest first).
    pub fn events(&self) -> &[Record<I>] {
        &self.events
    }
    /// Take the events collected so far.
    pub fn take_events(&mut self) -> Vec<Record<I>> {
        std::mem::take(&mut self.events)
    }
    /// The live members, sorted by identifier.
    pub fn ring_view(&self) -> RingView<I> {
        RingView::new(
            (0..self.nodes.len() as u32)
                .filter(|&i| self.is_member(i))
                .map(|i| self.nodes[i as usize].me())
                .collect(),
        )
    }
    /// A fresh random key (reproducible from the seed).
    pub fn random_key(&mut self) -> I {
        let mut d = [0u8; 20];
        self.rng.fill(&mut d);
        I::from_digest(&d)
    }
    /// Heap and inline bytes of every node's state ([`Node::memory_bytes`]), summed.
    pub fn memory_bytes(&self) -> usize {
        self.nodes.iter().map(|n| n.memory_bytes()).sum()
    }

    // ----- building ------------------------------------------------------------------------

    fn push_node(&mut self, node: Node<I, u32>) -> Result<u32, SimError> {
        let i = u32::try_from(self.nodes.len()).map_err(|_| SimError::Full)?;
        if i == u32::MAX {
            return Err(SimError::Full);
        }
        let id = node.me().id;
        if let Some(&j) = self.by_id.get(&id) {
            return Err(SimError::DuplicateId(j));
        }
        self.by_id.insert(id, i);
        self.nodes.push(node);
        self.alive.push(true);
        self.timer_at.push(Time::MAX);
        self.far_at.push(Time::MAX);
        self.node_ops.push(0);
        self.schedule(i);
        Ok(i)
    }

    /// Add an idle node with identifier `id`; returns its index (= address). Send it
    /// [`Sim::create`] or [`Sim::join`].
    pub fn add_node(&mut self, id: I) -> Result<u32, SimError> {
        let addr = u32::try_from(self.nodes.len()).map_err(|_| SimError::Full)?;
        let n = Node::new(Peer { id, addr }, self.config.chord.clone());
        self.push_node(n)
    }

    /// Add an idle node with a fresh random identifier.
    pub fn add_random_node(&mut self) -> Result<u32, SimError> {
        loop {
            let id = self.random_key();
            if !self.by_id.contains_key(&id) {
                return self.add_node(id);
            }
        }
    }

    /// Add `n` nodes with random identifiers forming an already stabilized ring of their own
    /// (correct predecessors, successor lists and, if enabled, fingers). Their maintenance ticks
    /// are spread evenly over one period. Returns the new nodes' indices.
    pub fn add_ring(&mut self, n: usize) -> std::ops::Range<u32> {
        let mut ids: Vec<I> = Vec::with_capacity(n);
        loop {
            while ids.len() < n {
                let id = self.random_key();
                if !self.by_id.contains_key(&id) {
                    ids.push(id);
                }
            }
            ids.sort_unstable();
            ids.dedup();
            if ids.len() == n {
                break;
            }
        }
        // addresses in random ring order, so that neighbours on the ring are not neighbours
        // by index
        self.rng.shuffle(&mut ids);
        self.add_ring_with_ids(&ids).unwrap_or(0..0)
    }

    /// Like [`Sim::add_ring`] with the given identifiers (any order, no duplicates).
    pub fn add_ring_with_ids(&mut self, ids: &[I]) -> Result<std::ops::Range<u32>, SimError> {
        let first = u32::try_from(self.nodes.len()).map_err(|_| SimError::Full)?;
        let n = ids.len();
        let last = first
            .checked_add(u32::try_from(n).map_err(|_| SimError::Full)?)
            .ok_or(SimError::Full)?;
        let mut members: Vec<Peer<I, u32>> = ids
            .iter()
            .enumerate()
            .map(|(k, &id)| Peer {
                id,
                addr: first + k as u32,
            })
            .collect();
        members.sort_unstable();
        if let Some(w) = members.windows(2).find(|w| w[0].id == w[1].id) {
            return Err(SimError::DuplicateId(w[0].addr));
        }
        if let Some(j) = ids.iter().find_map(|id| self.by_id.get(id)) {
            return Err(SimError::DuplicateId(*j));
        }
        let r = (self.config.chord.successors as usize).clamp(1, crate::chord::MAX_SUCCESSORS);
        let period = self.config.chord.stabilize_every.as_millis() as u64;
        let mut succs = Vec::with_capacity(r);
        let mut owners: Vec<Peer<I, u32>> = Vec::with_capacity(I::BITS as usize + 1);
        // finger i of the member at sorted position `at` is owned by the member at position
        // `ptr[i] % n`; as `at` goes round the ring, every `ptr[i]` only moves forward, so the
        // whole table costs O(BITS) per node with sequential memory access (instead of BITS
        // binary searches over a million members)
        let mut ptr = vec![0usize; I::BITS as usize];
        let mut built: Vec<Option<Node<I, u32>>> = (0..n).map(|_| None).collect();
        for at in 0..n {
            let me = members[at];
            let pred = (n > 1).then(|| members[(at + n - 1) % n]);
            succs.clear();
            succs.extend((1..=r.min(n.saturating_sub(1))).map(|d| members[(at + d) % n]));
            // spread the ticks over one period, so that 10^6 nodes do not all tick at once
            let k = (me.addr - first) as u64;
            let offset = if n > 1 && period < u32::MAX as u64 {
                period * k / n as u64
            } else {
                0
            };
            let start = self.now + Duration::from_millis(offset);
            let mut node = Node::with_state(me, self.config.chord.clone(), pred, &succs, start);
            if self.config.chord.fingers {
                owners.clear();
                owners.push(me);
                for (i, p) in ptr.iter_mut().enumerate() {
                    let target = me.id.add_pow2(i as u32);
                    *p = (*p).max(at + 1);
                    while *p < at + n && between(&me.id, &members[*p % n].id, &target) {
                        *p += 1;
                    }
                    if *p < at + n {
                        owners.push(members[*p % n]);
                    }
                }
                owners.sort_unstable();
                owners.dedup();
                // the machine's own routine, fed only the members that own a finger
                node.set_ideal_fingers(&owners);
            }
            built[(me.addr - first) as usize] = Some(node);
        }
        for node in built.into_iter().flatten() {
            self.push_node(node)?;
        }
        Ok(first..last)
    }

    // ----- commands ------------------------------------------------------------------------

    fn live(&self, i: u32) -> Result<(), SimError> {
        match self.alive.get(i as usize) {
            None => Err(SimError::NoSuchNode(i)),
            Some(false) => Err(SimError::Crashed(i)),
            Some(true) => Ok(()),
        }
    }

    /// Give node `i` an application command, then drain its outputs.
    pub fn command(&mut self, i: u32, cmd: Command<I, u32>) -> Result<(), SimError> {
        self.live(i)?;
        let now = self.now;
        let r = self.nodes[i as usize].handle(now, Input::Command(cmd));
        match r {
            Ok(()) => {
                self.node_ops[i as usize] += 1;
                self.ops += 1;
                self.drain(i);
                Ok(())
            }
            Err(error) => {
                self.stats.rejected += 1;
                self.drain(i);
                Err(SimError::Rejected { node: i, error })
            }
        }
    }

    /// Node `i` starts a new ring.
    pub fn create(&mut self, i: u32) -> Result<(), SimError> {
        self.command(i, Command::Create)
    }
    /// Node `i` joins the ring of node `via`.
    pub fn join(&mut self, i: u32, via: u32) -> Result<(), SimError> {
        self.command(i, Command::Join { via })
    }
    /// Node `i` leaves gracefully.
    pub fn leave(&mut self, i: u32) -> Result<(), SimError> {
        self.command(i, Command::Leave)
    }
    fn op(&mut self) -> OpId {
        self.next_op += 1;
        OpId(self.next_op)
    }
    /// Node `from` looks up `key`; the answer comes as [`Event::LookupDone`] or
    /// [`Event::OpFailed`] with the returned [`OpId`].
    pub fn lookup(&mut self, from: u32, key: I) -> Result<OpId, SimError> {
        let op = self.op();
        self.command(from, Command::Lookup { op, key }).map(|_| op)
    }
    /// Node `from` stores `value` under `key`.
    pub fn put(&mut self, from: u32, key: I, value: Vec<u8>) -> Result<OpId, SimError> {
        let op = self.op();
        self.command(from, Command::Put { op, key, value })
            .map(|_| op)
    }
    /// Node `from` fetches the value under `key`.
    pub fn get(&mut self, from: u32, key: I) -> Result<OpId, SimError> {
        let op = self.op();
        self.command(from, Command::Get { op, key }).map(|_| op)
    }

    /// Node `i` fails (fail-stop): from now on it drops everything sent to it, its timers never
    /// fire and its operations never finish. Its last state stays readable.
    pub fn crash(&mut self, i: u32) -> Result<(), SimError> {
        self.live(i)?;
        self.alive[i as usize] = false;
        self.ops -= u64::from(std::mem::take(&mut self.node_ops[i as usize]));
        self.timer_at[i as usize] = Time::MAX;
        Ok(())
    }

    /// Put `msg` on the wire from address `from` (any `u32`, a node or not) to node `to`, with
    /// the usual latency and loss. For hostile-input tests and fuzzing.
    pub fn inject(&mut self, from: u32, to: u32, msg: Message<I, u32>) {
        self.transmit(from, to, msg);
    }

    /// Put raw bytes on the wire from `from` to `to`; they are decoded with [`ChordWire`] on
    /// arrival (bytes that do not decode are counted in [`SimStats::decode_errors`]).
    pub fn inject_bytes(&mut self, from: u32, to: u32, bytes: Vec<u8>) {
        self.enqueue(from, to, Payload::Bytes(bytes));
    }

    // ----- running -------------------------------------------------------------------------

    /// The time of the next event, if any.
    pub fn next_event_time(&self) -> Option<Time> {
        let heap = self.queue.peek().map(|Reverse((t, _, _))| *t);
        if self.far.is_empty() {
            heap
        } else {
            Some(heap.map_or(self.far_min, |h| h.min(self.far_min)))
        }
    }

    /// Move the far timers that are coming close into the heap.
    fn migrate_far(&mut self) {
        let next = self.queue.peek().map_or(Time::MAX, |Reverse((t, _, _))| *t);
        if self.far.is_empty() || self.far_min > next {
            return;
        }
        let cutoff = self.far_min + FAR;
        let mut keep = Vec::with_capacity(self.far.len());
        let mut min = Time::MAX;
        for (t, i) in std::mem::take(&mut self.far) {
            if t <= cutoff {
                self.far_at[i as usize] = Time::MAX;
                self.push(t, Due::Timer(i));
            } else {
                min = min.min(t);
                keep.push((t, i));
            }
        }
        self.far = keep;
        self.far_min = min;
    }

    /// Process the next event (a delivery or a timer). `false` when nothing is left to do.
    pub fn step(&mut self) -> bool {
        self.migrate_far();
        let Some(Reverse((at, _, due))) = self.queue.pop() else {
            return false;
        };
        self.now = self.now.max(at);
        match due {
            Due::Deliver(slot) => self.deliver(slot),
            Due::Timer(i) => self.fire(i, at),
        }
        true
    }

    /// Process every event up to and including time `t`; the clock then reads `t`.
    pub fn run_until(&mut self, t: Time) {
        while self.next_event_time().is_some_and(|at| at <= t) {
            self.step();
        }
        self.now = self.now.max(t);
    }

    /// Run for `d` of simulated time.
    pub fn run_for(&mut self, d: Duration) {
        let t = self.now + d;
        self.run_until(t);
    }

    /// Run until every user operation has finished, or until `limit`. `true` if they all
    /// finished (the clock then reads the time of the last event processed).
    pub fn run_until_ops_done(&mut self, limit: Time) -> bool {
        self.run_while(limit, |sim| sim.ops > 0)
    }

    /// Run until no message is on the wire and no user operation is unfinished, or until
    /// `limit`. Timers do not count: with maintenance on, a ring is never silent for long, but
    /// it is quiet between rounds. `true` if it became quiet.
    pub fn run_until_quiet(&mut self, limit: Time) -> bool {
        self.run_while(limit, |sim| sim.ops > 0 || sim.in_flight > 0)
    }

    /// Step while `busy` holds and events remain before `limit`. `true` if `busy` stopped
    /// holding; otherwise the clock is moved to `limit` and the answer is `false`.
    fn run_while(&mut self, limit: Time, busy: impl Fn(&Self) -> bool) -> bool {
        while busy(self) {
            match self.next_event_time() {
                Some(at) if at <= limit => {
                    self.step();
                }
                _ => {
                    self.now = self.now.max(limit);
                    return false;
                }
            }
        }
        true
    }

    // ----- checking ------------------------------------------------------------------------

    /// Check that the live members form the ideal ring: every member's predecessor is the
    /// previous member and its successor list holds the next `min(r, members - 1)` members in
    /// order. `Err` describes the first few differences.
    pub fn check_ring(&self) -> Result<(), String> {
        let view = self.ring_view();
        let m = view.len();
        let r = self.config.chord.successors as usize;
        let mut err = String::new();
        let mut bad = 0;
        for (k, p) in view.members.iter().enumerate() {
            let node = &self.nodes[p.addr as usize];
            let want: Vec<Peer<I, u32>> = (1..=r.min(m.saturating_sub(1)))
                .map(|d| view.members[(k + d) % m])
                .collect();
            let want_pred = (m > 1).then(|| view.members[(k + m - 1) % m]);
            let succ_ok = node.successors() == want.as_slice();
            let pred_ok =
                node.predecessor() == want_pred || (m == 1 && node.predecessor().is_none());
            if !succ_ok || !pred_ok {
                bad += 1;
                if bad <= 3 {
                    let _ = writeln!(
                        err,
                        "node {} ({:?}): successors {:?} (want {:?}), predecessor {:?} (want {:?})",
                        p.addr,
                        p.id,
                        node.successors().iter().map(|q| q.addr).collect::<Vec<_>>(),
                        want.iter().map(|q| q.addr).collect::<Vec<_>>(),
                        node.predecessor().map(|q| q.addr),
                        want_pred.map(|q| q.addr),
                    );
                }
            }
        }
        if bad == 0 {
            Ok(())
        } else {
            Err(format!("{bad} of {m} members off the ideal ring:\n{err}"))
        }
    }

    /// Zave's ring invariants ([`crate::chord::invariants`]) over every node, with crashed nodes
    /// counted as dead: the first one violated, if any.
    pub fn check_invariants(&self) -> Result<(), Invariant> {
        match invariants::first_violation(&self.nodes, |i| self.alive[i]) {
            None => Ok(()),
            Some(inv) => Err(inv),
        }
    }

    /// `KeysHeld`: every key of `keys` is held by some live member (owner or replica).
    pub fn keys_held(&self, keys: &[I]) -> bool {
        invariants::keys_held(&self.nodes, |i| self.alive[i], keys)
    }

    /// Fingers of live members that differ from the ideal finger (the successor of
    /// `id + 2^i` among live members; `None` when that is the node itself), and the number of
    /// fingers checked.
    pub fn finger_errors(&self) -> (usize, usize) {
        let view = self.ring_view();
        let mut wrong = 0;
        let mut total = 0;
        for p in &view.members {
            let node = &self.nodes[p.addr as usize];
            for (i, f) in node.fingers().iter().enumerate() {
                total += 1;
                let want = view
                    .owner(&p.id.add_pow2(i as u32))
                    .filter(|o| o.id != p.id);
                if *f != want {
                    wrong += 1;
                }
            }
        }
        (wrong, total)
    }

    // ----- the host loop -------------------------------------------------------------------

    fn drain(&mut self, i: u32) {
        while let Some(out) = self.nodes[i as usize].poll() {
            match out {
                Output::Send { to, msg } => self.transmit(i, to, msg),
                Output::Event(event) => self.record(i, event),
            }
        }
        self.schedule(i);
    }

    fn record(&mut self, node: u32, event: Event<I, u32>) {
        let done = matches!(
            event,
            Event::Joined { .. }
                | Event::JoinFailed { .. }
                | Event::Left
                | Event::LookupDone { .. }
                | Event::PutDone { .. }
                | Event::GetDone { .. }
                | Event::OpFailed { .. }
        );
        if done {
            let n = &mut self.node_ops[node as usize];
            if *n > 0 {
                *n -= 1;
                self.ops -= 1;
            }
        }
        self.events.push(Record {
            at: self.now,
            node,
            event,
        });
    }

    fn transmit(&mut self, from: u32, to: u32, msg: Message<I, u32>) {
        let payload = if self.config.wire {
            Payload::Bytes(ChordWire::<I, u32>::to_bytes(&msg))
        } else {
            Payload::Msg(msg)
        };
        self.enqueue(from, to, payload);
    }

    fn enqueue(&mut self, from: u32, to: u32, payload: Payload<I>) {
        if to as usize >= self.nodes.len() {
            self.stats.to_nowhere += 1;
            return;
        }
        if self.rng.chance(self.config.loss) {
            self.stats.lost += 1;
            return;
        }
        let lat = self.rng.range_inclusive(
            self.config.latency_min.as_millis() as u64,
            self.config.latency_max.as_millis() as u64,
        );
        let flight = Flight { from, to, payload };
        let slot = match self.free.pop() {
            Some(s) => {
                self.flights[s as usize] = Some(flight);
                s
            }
            None => {
                self.flights.push(Some(flight));
                (self.flights.len() - 1) as u32
            }
        };
        self.in_flight += 1;
        let at = self.now + Duration::from_millis(lat);
        self.push(at, Due::Deliver(slot));
    }

    fn push(&mut self, at: Time, due: Due) {
        self.seq += 1;
        self.queue.push(Reverse((at, self.seq, due)));
        self.stats.peak_queue = self.stats.peak_queue.max(self.queue.len());
    }

    fn deliver(&mut self, slot: u32) {
        let Some(f) = self.flights.get_mut(slot as usize).and_then(Option::take) else {
            return;
        };
        self.free.push(slot);
        self.in_flight -= 1;
        if !self.alive[f.to as usize] {
            self.stats.to_dead += 1;
            return;
        }
        let msg = match f.payload {
            Payload::Msg(m) => m,
            Payload::Bytes(b) => match ChordWire::<I, u32>::read(&b) {
                Ok(m) => m,
                Err(_) => {
                    self.stats.decode_errors += 1;
                    return;
                }
            },
        };
        self.stats.delivered += 1;
        let now = self.now;
        let input = Input::Message { from: f.from, msg };
        if self.nodes[f.to as usize].handle(now, input).is_err() {
            self.stats.rejected += 1;
        }
        self.drain(f.to);
    }

    fn fire(&mut self, i: u32, at: Time) {
        let k = i as usize;
        if !self.alive[k] || self.timer_at[k] != at {
            return; // crashed, or a stale entry superseded by an earlier deadline
        }
        self.timer_at[k] = Time::MAX;
        self.stats.timers_fired += 1;
        let now = self.now;
        self.nodes[k].handle_timeout(now);
        while let Some(out) = self.nodes[k].poll() {
            match out {
                Output::Send { to, msg } => self.transmit(i, to, msg),
                Output::Event(event) => self.record(i, event),
            }
        }
        if let Some(t) = self.nodes[k].poll_timeout() {
            if t <= now {
                self.stats.timer_stalls += 1;
                self.timer_at[k] = now + Duration::from_millis(1);
                self.push(self.timer_at[k], Due::Timer(i));
                return;
            }
        }
        self.schedule(i);
    }

    /// Make sure a timer event is queued for node `i`'s next deadline.
    fn schedule(&mut self, i: u32) {
        let k = i as usize;
        if !self.alive[k] {
            return;
        }
        if let Some(t) = self.nodes[k].poll_timeout() {
            let t = t.max(self.now);
            if t < self.timer_at[k] {
                self.timer_at[k] = t;
                if t > self.now + FAR {
                    if self.far_at[k] != t {
                        self.far_at[k] = t;
                        self.far.push((t, i));
                        self.far_min = self.far_min.min(t);
                    }
                } else {
                    self.push(t, Due::Timer(i));
                }
            }
        }
    }
}
