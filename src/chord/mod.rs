//! Chord, sans-IO: one node of the ring.
//!
//! A [`Node`] keeps a successor list of length `r`, a predecessor, an optional finger table and a
//! key→value store. It joins through any known member, stabilizes periodically, answers iterative
//! lookups, stores values with replicas on its successor list, hands keys over when a predecessor
//! joins and when it leaves gracefully.
//!
//! Two protocols run behind the one machine ([`Variant`]):
//!
//! - [`Variant::Original`] — Stoica et al., SIGCOMM 2001: join takes only the successor found by
//!   a lookup; stabilize adopts the successor's predecessor without checking it; `notify`; the
//!   predecessor is flushed when a periodic check finds it dead.
//! - [`Variant::Zave`] — Zave, "Reasoning about identifier spaces: how to make Chord correct"
//!   (IEEE TSE 2017): join adopts the successor's whole list; stabilize checks that a candidate
//!   successor is live (by asking it for its own list) before adopting it; `rectify` instead of
//!   `notify` replaces a predecessor only by a closer one or after checking the old one is dead.
//!
//! The model in `ip2p-models` (`models/src/chord.rs`) explores this very struct.
//!
//! # Example
//!
//! ```
//! use ip2p::chord::{Command, Config, Event, Id64, Input, Message, Node, Output, Peer};
//! use ip2p::machine::Machine;
//! use ip2p::Time;
//!
//! // two nodes with addresses 1 and 2 (any Copy + Ord type works as an address)
//! let mut a = Node::new(Peer { id: Id64(100), addr: 1u32 }, Config::default());
//! let mut b = Node::new(Peer { id: Id64(200), addr: 2u32 }, Config::default());
//! a.handle(Time::ZERO, Input::Command(Command::Create)).unwrap();
//! b.handle(Time::ZERO, Input::Command(Command::Join { via: 1 })).unwrap();
//!
//! // deliver messages until both are quiet
//! let mut joined = false;
//! for _ in 0..10 {
//!     let mut mail: Vec<(u32, u32, Message<Id64, u32>)> = Vec::new();
//!     for (n, me) in [(&mut a, 1u32), (&mut b, 2u32)] {
//!         while let Some(o) = n.poll() {
//!             match o {
//!                 Output::Send { to, msg } => mail.push((me, to, msg)),
//!                 Output::Event(Event::Joined { .. }) => joined = true,
//!                 Output::Event(_) => {}
//!             }
//!         }
//!     }
//!     for (from, to, msg) in mail {
//!         let n = if to == 1 { &mut a } else { &mut b };
//!         let _ = n.handle(Time::ZERO, Input::Message { from, msg });
//!     }
//! }
//! assert!(joined);
//! assert_eq!(b.successor().map(|p| p.id), Some(Id64(100)));
//! ```

pub mod id;
pub mod invariants;
pub mod wire;

use alloc::collections::{BTreeMap, VecDeque};
use alloc::vec::Vec;
use arrayvec::ArrayVec;
use core::fmt::Debug;
use core::hash::{Hash, Hasher};
use core::time::Duration;

pub use id::{between, between_right_incl, Id128, Id64, NodeId, RingId, SmallId};

use crate::addr::TransportAddr;
use crate::machine::{Effect, Machine, Networked};
use crate::time::Time;

/// Anything usable as a node's address: a [`TransportAddr`] for real nodes, a small integer in
/// models and simulations.
pub trait Address: Copy + Eq + Ord + Hash + Debug + 'static {}
impl<T: Copy + Eq + Ord + Hash + Debug + 'static> Address for T {}

/// The most successors a node may keep (`r <= MAX_SUCCESSORS`).
pub const MAX_SUCCESSORS: usize = 16;
/// The most next-hop hints one lookup answer carries.
pub const MAX_HINTS: usize = 4;
/// The most dead nodes one lookup request asks the next hop to route around.
pub const MAX_AVOID: usize = 4;

/// A member of the ring: its identifier and where to reach it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct Peer<I, A> {
    /// The node's identifier on the ring.
    pub id: I,
    /// The node's address.
    pub addr: A,
}

impl<I: RingId, A: core::fmt::Display> Peer<I, A> {
    /// The member at `addr` with the Chord paper's identifier: SHA-1 of the address as text
    /// (`10.0.0.1:5060`), cut to the ring's width.
    pub fn hashed(addr: A) -> Self {
        Peer {
            id: I::sha1_of(alloc::string::ToString::to_string(&addr).as_bytes()),
            addr,
        }
    }
}

/// A successor list (at most [`MAX_SUCCESSORS`] entries, nearest first).
pub type SuccList<I, A> = ArrayVec<Peer<I, A>, MAX_SUCCESSORS>;

/// Which Chord protocol the node runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub enum Variant {
    /// Stoica et al. 2001. Kept because its flaws are the checker's proof that it finds bugs.
    Original,
    /// Zave 2017: the corrected protocol. Use this one.
    #[default]
    Zave,
}

/// Tunables of a node. All nodes of a ring should agree on `variant` and `successors`.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct Config {
    /// The protocol.
    pub variant: Variant,
    /// `r`, the length of the successor list (1..=16). Up to `r - 1` simultaneous failures of
    /// consecutive nodes lose nothing.
    pub successors: u8,
    /// Keep a finger table (O(log N) lookups). Without it lookups walk the successor lists.
    pub fingers: bool,
    /// Period of the maintenance tick (stabilize, fix one finger, check the predecessor).
    pub stabilize_every: Duration,
    /// How long to wait for an answer before taking the peer for dead.
    pub request_timeout: Duration,
    /// Replicate the keys this node owns to its successors every this many ticks (0: never).
    pub replicate_every: u32,
    /// Requests in flight at once (lookups, stabilize, store…); further commands are refused.
    pub max_pending: u16,
    /// Hops after which a lookup is abandoned.
    pub max_hops: u16,
    /// Keys held at most (owned and replicas).
    pub max_keys: u32,
    /// Largest value stored, in bytes.
    pub max_value_len: u32,
    /// Width of request nonces in bits (0..=32). Models use 0; real nodes 32.
    pub nonce_bits: u8,
    /// Times a request is sent again after a time-out before its peer is taken for dead
    /// (one lost datagram should not evict a live neighbour). Models use 0.
    pub request_retries: u8,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            variant: Variant::Zave,
            successors: 8,
            fingers: true,
            stabilize_every: Duration::from_millis(500),
            request_timeout: Duration::from_millis(1_000),
            replicate_every: 10,
            max_pending: 256,
            max_hops: 64,
            max_keys: 1 << 20,
            max_value_len: 16 * 1024,
            nonce_bits: 32,
            request_retries: 1,
        }
    }
}

/// A caller-chosen handle for one user operation, echoed in its completion event.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct OpId(pub u64);

/// Why a peer refused a request.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub enum Refusal {
    /// The peer is not (or no longer) a member of a ring.
    NotMember,
    /// The peer's store is full.
    StoreFull,
    /// The value is larger than the peer accepts.
    ValueTooLarge,
}

/// A Chord message. Requests carry a nonce that the answer echoes.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub enum Message<I, A> {
    /// Iterative lookup step: who owns `key`, or who is closer to it?
    FindSuccessor {
        /// Echoed in the answer.
        nonce: u32,
        /// The key looked up.
        key: I,
        /// Nodes the asker found dead during this lookup: answer as if they did not exist.
        avoid: ArrayVec<A, MAX_AVOID>,
    },
    /// Answer: `owner` is the successor of the key.
    Found {
        /// The request's nonce.
        nonce: u32,
        /// The node responsible for the key.
        owner: Peer<I, A>,
        /// The nodes that follow `owner`, nearest first: they hold its replicas and take over
        /// its keys if it has failed.
        alternates: ArrayVec<Peer<I, A>, MAX_HINTS>,
    },
    /// Answer: ask one of these next (best first).
    Closer {
        /// The request's nonce.
        nonce: u32,
        /// Nodes closer to the key, best first.
        next: ArrayVec<Peer<I, A>, MAX_HINTS>,
    },
    /// Stabilize (and join) query: send me your predecessor and successor list.
    GetState {
        /// Echoed in the answer.
        nonce: u32,
    },
    /// Answer to [`Message::GetState`].
    State {
        /// The request's nonce.
        nonce: u32,
        /// The responder's identifier.
        id: I,
        /// The responder's predecessor.
        pred: Option<Peer<I, A>>,
        /// The responder's successor list.
        succs: SuccList<I, A>,
    },
    /// "I believe I am your predecessor" (Original's notify, Zave's rectify).
    Notify {
        /// The sender's identifier.
        id: I,
    },
    /// Liveness probe.
    Ping {
        /// Echoed in the answer.
        nonce: u32,
    },
    /// Answer to [`Message::Ping`].
    Pong {
        /// The request's nonce.
        nonce: u32,
    },
    /// Store `value` under `key` (sent to the key's owner).
    Store {
        /// Echoed in the answer.
        nonce: u32,
        /// The key.
        key: I,
        /// The value.
        value: Vec<u8>,
    },
    /// Answer to [`Message::Store`]: stored.
    Stored {
        /// The request's nonce.
        nonce: u32,
    },
    /// Fetch the value under `key` (sent to the key's owner).
    Fetch {
        /// Echoed in the answer.
        nonce: u32,
        /// The key.
        key: I,
    },
    /// Answer to [`Message::Fetch`].
    Value {
        /// The request's nonce.
        nonce: u32,
        /// The value, if the owner holds the key.
        value: Option<Vec<u8>>,
    },
    /// One-way: keep these keys (replicas, or keys handed over on join and leave).
    Replicate {
        /// Key/value pairs.
        items: Vec<(I, Vec<u8>)>,
    },
    /// One-way: the sender leaves the ring gracefully; here are its neighbours.
    Leave {
        /// The leaving node's identifier.
        id: I,
        /// Its predecessor.
        pred: Option<Peer<I, A>>,
        /// Its successor list.
        succs: SuccList<I, A>,
    },
    /// Answer: the request was refused.
    Refused {
        /// The request's nonce.
        nonce: u32,
        /// Why.
        reason: Refusal,
    },
}

impl<I, A> Message<I, A> {
    /// The nonce of a request or answer; `None` for one-way messages.
    pub fn nonce(&self) -> Option<u32> {
        use Message::*;
        match self {
            FindSuccessor { nonce, .. }
            | Found { nonce, .. }
            | Closer { nonce, .. }
            | GetState { nonce }
            | State { nonce, .. }
            | Ping { nonce }
            | Pong { nonce }
            | Store { nonce, .. }
            | Stored { nonce }
            | Fetch { nonce, .. }
            | Value { nonce, .. }
            | Refused { nonce, .. } => Some(*nonce),
            Notify { .. } | Replicate { .. } | Leave { .. } => None,
        }
    }

    /// A short name for logs and diagrams.
    pub fn name(&self) -> &'static str {
        use Message::*;
        match self {
            FindSuccessor { .. } => "FindSuccessor",
            Found { .. } => "Found",
            Closer { .. } => "Closer",
            GetState { .. } => "GetState",
            State { .. } => "State",
            Notify { .. } => "Notify",
            Ping { .. } => "Ping",
            Pong { .. } => "Pong",
            Store { .. } => "Store",
            Stored { .. } => "Stored",
            Fetch { .. } => "Fetch",
            Value { .. } => "Value",
            Replicate { .. } => "Replicate",
            Leave { .. } => "Leave",
            Refused { .. } => "Refused",
        }
    }
}

/// A command from the application.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub enum Command<I, A> {
    /// Start a new ring with this node as its only member.
    Create,
    /// Join the ring that the node at `via` belongs to.
    Join {
        /// Any member's address.
        via: A,
    },
    /// Leave gracefully: hand keys to the successor, link predecessor and successor.
    Leave,
    /// Find the node responsible for `key`.
    Lookup {
        /// Echoed in the completion event.
        op: OpId,
        /// The key.
        key: I,
    },
    /// Store `value` under `key` on the key's owner (and its replicas).
    Put {
        /// Echoed in the completion event.
        op: OpId,
        /// The key.
        key: I,
        /// The value.
        value: Vec<u8>,
    },
    /// Fetch the value under `key`.
    Get {
        /// Echoed in the completion event.
        op: OpId,
        /// The key.
        key: I,
    },
}

/// An input to a node.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub enum Input<I, A> {
    /// A message arrived from `from`.
    Message {
        /// The sender's address.
        from: A,
        /// The decoded message.
        msg: Message<I, A>,
    },
    /// A command from the application.
    Command(Command<I, A>),
}

/// Why a user operation or a join failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub enum Failure {
    /// Every node the lookup could ask next stopped answering.
    Unreachable,
    /// The lookup took more than `max_hops` hops.
    TooManyHops,
    /// The owner refused the request.
    Refused(Refusal),
    /// The node left the ring before the operation finished.
    Left,
    /// The ring already has a node with this identifier.
    IdTaken,
}

/// Something the application should know.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub enum Event<I, A> {
    /// The node is a member of a ring now.
    Joined {
        /// Its first successor (itself when it created the ring).
        successor: Peer<I, A>,
    },
    /// Joining failed; the node is idle again and may retry.
    JoinFailed {
        /// Why.
        reason: Failure,
    },
    /// The node left the ring (after [`Command::Leave`]).
    Left,
    /// Every entry of the successor list failed: the node has lost the ring.
    Isolated,
    /// A lookup finished.
    LookupDone {
        /// The operation.
        op: OpId,
        /// The key.
        key: I,
        /// The node responsible for it.
        owner: Peer<I, A>,
        /// How many nodes were asked.
        hops: u16,
    },
    /// A put finished: the owner stored the value.
    PutDone {
        /// The operation.
        op: OpId,
        /// The key.
        key: I,
        /// The node that stored it.
        owner: Peer<I, A>,
    },
    /// A get finished.
    GetDone {
        /// The operation.
        op: OpId,
        /// The key.
        key: I,
        /// The value, or `None` if the owner does not hold the key.
        value: Option<Vec<u8>>,
    },
    /// A lookup, put or get failed.
    OpFailed {
        /// The operation.
        op: OpId,
        /// The key.
        key: I,
        /// Why.
        reason: Failure,
    },
}

/// An output of a node.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub enum Output<I, A> {
    /// Send `msg` to `to`.
    Send {
        /// Destination address.
        to: A,
        /// The message.
        msg: Message<I, A>,
    },
    /// Tell the application.
    Event(Event<I, A>),
}

/// Why an input was rejected. The node is unchanged (apart from its counters) and carries on.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// `Create`/`Join` while already a member or joining.
    #[error("the node is already joining or a member of a ring")]
    AlreadyJoined,
    /// A command that needs membership before the node has joined (or after it left).
    #[error("the node is not a member of a ring; join first")]
    NotMember,
    /// Too many requests in flight (`Config::max_pending`).
    #[error("too many requests in flight (limit {0}); wait for some to finish")]
    TooManyPending(u16),
    /// A value longer than `Config::max_value_len`.
    #[error("value of {len} bytes is larger than the limit of {max} bytes")]
    ValueTooLarge {
        /// The value's length.
        len: usize,
        /// The limit.
        max: u32,
    },
    /// An answer nobody asked for (unknown nonce, or from another peer): late, duplicated or forged.
    #[error("unsolicited {0} message (no matching request in flight)")]
    Unsolicited(&'static str),
    /// The message makes no sense in this node's state (e.g. a request to a node that left).
    #[error("{0} message not expected in this state")]
    Unexpected(&'static str),
    /// A `Join` whose bootstrap address is this node's own.
    #[error("cannot join through this node's own address")]
    JoinSelf,
}

/// Counters a host can read (not part of the node's protocol state).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct Stats {
    /// Inputs rejected with an error.
    pub rejected: u64,
    /// Requests that timed out.
    pub timeouts: u64,
    /// Messages sent.
    pub sent: u64,
    /// Keys refused because the store was full or the value too large.
    pub refused_keys: u64,
}

/// Where a node is in its life.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub enum Phase {
    /// Not in a ring.
    Idle,
    /// Looking for its successor.
    Joining,
    /// In the ring.
    Member,
    /// Left gracefully; it answers nothing any more.
    Left,
}

/// What a lookup is for.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
enum Goal {
    Join,
    Finger(u16),
    Lookup(OpId),
    Put(OpId, Vec<u8>),
    Get(OpId),
}

/// One iterative lookup in flight.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
struct Lookup<I, A> {
    goal: Goal,
    key: I,
    hops: u16,
    /// Who to ask if the current hop does not answer (best first).
    fallback: ArrayVec<Peer<I, A>, MAX_HINTS>,
    /// Hops that timed out during this lookup: never asked again, whoever recommends them.
    dead: ArrayVec<A, MAX_DEAD>,
    /// Hops that already answered: asking one again could only repeat its answer (two nodes
    /// recommending each other would otherwise ping-pong until `max_hops`).
    asked: ArrayVec<A, MAX_ASKED>,
}

/// Most answered hops one lookup remembers.
const MAX_ASKED: usize = 16;

/// Most timed-out hops one lookup remembers.
const MAX_DEAD: usize = 8;

/// Next hops or alternates carried in one answer.
type Hints<I, A> = ArrayVec<Peer<I, A>, MAX_HINTS>;

/// A node's own routing answer: the owner and the nodes after it, or closer nodes to ask.
type Route<I, A> = Result<(Peer<I, A>, Hints<I, A>), Hints<I, A>>;

/// Why a request is in flight.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
enum Purpose<I, A> {
    /// `GetState` to the first successor.
    Stabilize,
    /// Zave: `GetState` to the successor's predecessor, to check it is live before adopting it.
    /// Keeps the successor's own answer for the case it is not.
    Candidate {
        succ: Peer<I, A>,
        succ_succs: SuccList<I, A>,
    },
    /// `GetState` to the successor a join found.
    JoinState { succ: Peer<I, A> },
    /// `Ping` to the predecessor: Original's check_predecessor (`instead: None`), or Zave's
    /// rectify (`instead`: the notifier that replaces the predecessor if it is dead).
    CheckPred {
        pred: Peer<I, A>,
        instead: Option<Peer<I, A>>,
    },
    /// `FindSuccessor` to one hop of a lookup.
    Hop(Lookup<I, A>),
    /// `Store` to the owner.
    Store {
        op: OpId,
        key: I,
        owner: Peer<I, A>,
        value: Vec<u8>,
        alternates: Hints<I, A>,
    },
    /// `Fetch` from the owner.
    Fetch {
        op: OpId,
        key: I,
        alternates: Hints<I, A>,
    },
}

impl<I, A: Copy> Lookup<I, A> {
    /// The most recent dead hops, for the next hop to route around.
    fn avoid(&self) -> ArrayVec<A, MAX_AVOID> {
        let skip = self.dead.len().saturating_sub(MAX_AVOID);
        self.dead.iter().skip(skip).copied().collect()
    }
}

impl<I: Copy, A: Copy> Purpose<I, A> {
    /// The request that this purpose sends (again, on a retry).
    fn request(&self, nonce: u32) -> Message<I, A> {
        match self {
            Purpose::Stabilize | Purpose::Candidate { .. } | Purpose::JoinState { .. } => {
                Message::GetState { nonce }
            }
            Purpose::CheckPred { .. } => Message::Ping { nonce },
            Purpose::Hop(lk) => Message::FindSuccessor {
                nonce,
                key: lk.key,
                avoid: lk.avoid(),
            },
            Purpose::Store { key, value, .. } => Message::Store {
                nonce,
                key: *key,
                value: value.clone(),
            },
            Purpose::Fetch { key, .. } => Message::Fetch { nonce, key: *key },
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
struct Pending<I, A> {
    nonce: u32,
    to: A,
    deadline: Time,
    /// Times this request was sent again after a time-out.
    retries: u8,
    purpose: Purpose<I, A>,
}

/// JSON maps need string keys: the store is written as a list of `[key, value]` pairs.
#[cfg(feature = "serde")]
mod store_as_pairs {
    use alloc::collections::BTreeMap;
    use alloc::vec::Vec;
    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    pub fn serialize<I: Serialize, S: Serializer>(
        m: &BTreeMap<I, Vec<u8>>,
        s: S,
    ) -> Result<S::Ok, S::Error> {
        s.collect_seq(m.iter())
    }

    pub fn deserialize<'de, I: Deserialize<'de> + Ord, D: Deserializer<'de>>(
        d: D,
    ) -> Result<BTreeMap<I, Vec<u8>>, D::Error> {
        let pairs: Vec<(I, Vec<u8>)> = Vec::deserialize(d)?;
        Ok(pairs.into_iter().collect())
    }
}

/// One Chord node. See the [module documentation](self).
///
/// Equality and hashing cover the protocol state only (not [`Stats`]), so that a model checker
/// sees two nodes that differ only in their counters as the same state.
#[derive(Clone, Debug)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(
    feature = "serde",
    serde(bound(deserialize = "I: serde::Deserialize<'de> + Ord, A: serde::Deserialize<'de>"))
)]
pub struct Node<I, A> {
    me: Peer<I, A>,
    config: Config,
    phase: Phase,
    succs: SuccList<I, A>,
    pred: Option<Peer<I, A>>,
    fingers: Vec<Option<Peer<I, A>>>,
    next_finger: u16,
    #[cfg_attr(feature = "serde", serde(with = "store_as_pairs"))]
    store: BTreeMap<I, Vec<u8>>,
    pending: Vec<Pending<I, A>>,
    next_nonce: u32,
    next_tick: Option<Time>,
    ticks: u32,
    outbox: VecDeque<Output<I, A>>,
    stats: Stats,
}

impl<I: PartialEq, A: PartialEq> PartialEq for Node<I, A> {
    fn eq(&self, o: &Self) -> bool {
        self.me == o.me
            && self.phase == o.phase
            && self.succs == o.succs
            && self.pred == o.pred
            && self.fingers == o.fingers
            && self.next_finger == o.next_finger
            && self.store == o.store
            && self.pending == o.pending
            && self.next_nonce == o.next_nonce
            && self.next_tick == o.next_tick
            && self.ticks == o.ticks
            && self.outbox == o.outbox
            && self.config == o.config
    }
}
impl<I: Eq, A: Eq> Eq for Node<I, A> {}

impl<I: Hash, A: Hash> Hash for Node<I, A> {
    fn hash<H: Hasher>(&self, h: &mut H) {
        // the config is the same for every node of a run: leave it out of the hash (not of Eq)
        self.me.hash(h);
        self.phase.hash(h);
        self.succs.hash(h);
        self.pred.hash(h);
        self.fingers.hash(h);
        self.next_finger.hash(h);
        self.store.hash(h);
        self.pending.hash(h);
        self.next_nonce.hash(h);
        self.next_tick.hash(h);
        self.ticks.hash(h);
        self.outbox.hash(h);
    }
}

impl<I: RingId, A: Address> Node<I, A> {
    /// A new idle node. Send it [`Command::Create`] or [`Command::Join`].
    ///
    /// `config.successors` is clamped to `1..=16` and `config.nonce_bits` to `0..=32`.
    pub fn new(me: Peer<I, A>, mut config: Config) -> Self {
        config.successors = config.successors.clamp(1, MAX_SUCCESSORS as u8);
        config.nonce_bits = config.nonce_bits.min(32);
        config.max_pending = config.max_pending.max(1);
        let fingers = if config.fingers {
            alloc::vec![None; I::BITS as usize]
        } else {
            Vec::new()
        };
        Node {
            me,
            config,
            phase: Phase::Idle,
            succs: ArrayVec::new(),
            pred: None,
            fingers,
            next_finger: 0,
            store: BTreeMap::new(),
            pending: Vec::new(),
            next_nonce: 0,
            next_tick: None,
            ticks: 0,
            outbox: VecDeque::new(),
            stats: Stats::default(),
        }
    }

    /// A member whose pointers are given: for building a stabilized ring directly (simulations,
    /// tests, the model's initial ring). `succs` is truncated to `r` and at this node itself.
    pub fn with_state(
        me: Peer<I, A>,
        config: Config,
        pred: Option<Peer<I, A>>,
        succs: &[Peer<I, A>],
        now: Time,
    ) -> Self {
        let mut n = Node::new(me, config);
        n.phase = Phase::Member;
        n.pred = pred;
        n.set_succs(succs.iter().copied());
        n.next_tick = Some(now + n.config.stabilize_every);
        n
    }

    /// Every member of a ring that has already stabilized, built directly (simulations, tests,
    /// the model's initial ring), in the order of `sorted_members` (sorted by id, no id twice).
    /// Each node gets its predecessor (none when it is alone), the `succs` members after it (at
    /// most `r`, see [`Node::with_state`]) and ideal fingers ([`Node::set_ideal_fingers`]).
    ///
    /// ```
    /// use ip2p::chord::{Config, Id64, Node, Peer, RingId};
    /// use ip2p::Time;
    ///
    /// let mut members: Vec<Peer<Id64, u16>> = [1u16, 2, 3]
    ///     .map(|a| Peer { id: Id64::sha1_of(&a.to_be_bytes()), addr: a })
    ///     .to_vec();
    /// members.sort();
    /// let ring = Node::stabilized_ring(&members, &Config::default(), 2, Time::ZERO);
    /// assert_eq!(ring[0].predecessor(), Some(members[2]));
    /// assert_eq!(ring[0].successors(), &members[1..]);
    /// ```
    pub fn stabilized_ring(
        sorted_members: &[Peer<I, A>],
        config: &Config,
        succs: usize,
        now: Time,
    ) -> Vec<Self> {
        let n = sorted_members.len();
        sorted_members
            .iter()
            .enumerate()
            .map(|(i, me)| {
                let pred = (n > 1).then(|| sorted_members[(i + n - 1) % n]);
                let after: Vec<_> = (1..n)
                    .take(succs)
                    .map(|d| sorted_members[(i + d) % n])
                    .collect();
                let mut node = Node::with_state(*me, config.clone(), pred, &after, now);
                node.set_ideal_fingers(sorted_members);
                node
            })
            .collect()
    }

    /// Fill the finger table from a sorted list of every member (simulations of a stabilized ring).
    pub fn set_ideal_fingers(&mut self, sorted_members: &[Peer<I, A>]) {
        if !self.config.fingers || sorted_members.is_empty() {
            return;
        }
        for i in 0..I::BITS {
            let start = self.me.id.add_pow2(i);
            let idx = sorted_members.partition_point(|p| p.id < start);
            let owner = sorted_members.get(idx).unwrap_or(&sorted_members[0]);
            self.fingers[i as usize] = if owner.id == self.me.id {
                None
            } else {
                Some(*owner)
            };
        }
    }

    /// This node.
    pub fn me(&self) -> Peer<I, A> {
        self.me
    }
    /// Its configuration.
    pub fn config(&self) -> &Config {
        &self.config
    }
    /// Its phase.
    pub fn phase(&self) -> Phase {
        self.phase
    }
    /// Its successor list, nearest first (empty: the node is alone, its own successor).
    pub fn successors(&self) -> &[Peer<I, A>] {
        &self.succs
    }
    /// Its first successor, if it knows one other than itself.
    pub fn successor(&self) -> Option<Peer<I, A>> {
        self.succs.first().copied()
    }
    /// Its predecessor.
    pub fn predecessor(&self) -> Option<Peer<I, A>> {
        self.pred
    }
    /// Its finger table (`finger[i]` = successor of `id + 2^i`; empty when fingers are off).
    pub fn fingers(&self) -> &[Option<Peer<I, A>>] {
        &self.fingers
    }
    /// The keys it holds, owned and replicas.
    pub fn store(&self) -> &BTreeMap<I, Vec<u8>> {
        &self.store
    }
    /// Counters.
    pub fn stats(&self) -> &Stats {
        &self.stats
    }
    /// Requests in flight.
    pub fn pending_requests(&self) -> usize {
        self.pending.len()
    }
    /// The addresses that requests in flight wait on (one entry per request).
    pub fn pending_peers(&self) -> impl Iterator<Item = A> + '_ {
        self.pending.iter().map(|p| p.to)
    }
    /// Is `key` in this node's own range `(predecessor, self]`? Without a predecessor, the node
    /// claims every key (it may be alone).
    pub fn owns(&self, key: &I) -> bool {
        match self.pred {
            None => true,
            Some(p) => between_right_incl(&p.id, key, &self.me.id),
        }
    }

    /// Bytes this node's state occupies, heap included (an estimate for capacity planning).
    pub fn memory_bytes(&self) -> usize {
        core::mem::size_of::<Self>()
            + self.fingers.capacity() * core::mem::size_of::<Option<Peer<I, A>>>()
            + self.pending.capacity() * core::mem::size_of::<Pending<I, A>>()
            + self.outbox.capacity() * core::mem::size_of::<Output<I, A>>()
            + self
                .store
                .values()
                .map(|v| v.capacity() + core::mem::size_of::<(I, Vec<u8>)>() + 16)
                .sum::<usize>()
    }

    /// Re-express every deadline on another clock origin: `t - from + to`.
    ///
    /// Call after restoring a snapshot on a host whose monotonic clock restarted (`from` = the old
    /// clock's time of the snapshot, `to` = the new clock's now). Models use it to keep every
    /// node's clock at zero so that the state space stays finite.
    pub fn rebase_clock(&mut self, from: Time, to: Time) {
        if let Some(t) = self.next_tick.as_mut() {
            *t = t.rebase(from, to);
        }
        for p in &mut self.pending {
            p.deadline = p.deadline.rebase(from, to);
        }
    }

    // ----- helpers -------------------------------------------------------------------------

    fn r(&self) -> usize {
        self.config.successors as usize
    }

    fn emit(&mut self, e: Event<I, A>) {
        self.outbox.push_back(Output::Event(e));
    }

    fn send(&mut self, to: A, msg: Message<I, A>) {
        self.stats.sent += 1;
        self.outbox.push_back(Output::Send { to, msg });
    }

    fn nonce(&mut self) -> u32 {
        let n = self.next_nonce;
        let mask = if self.config.nonce_bits >= 32 {
            u32::MAX
        } else {
            (1u32 << self.config.nonce_bits) - 1
        };
        self.next_nonce = n.wrapping_add(1) & mask;
        n
    }

    /// Send a request and remember why. Fails when `max_pending` requests are in flight.
    fn request(
        &mut self,
        now: Time,
        to: A,
        make: impl FnOnce(u32) -> Message<I, A>,
        purpose: Purpose<I, A>,
    ) -> Result<(), Error> {
        if self.pending.len() >= self.config.max_pending as usize {
            return Err(Error::TooManyPending(self.config.max_pending));
        }
        let nonce = self.nonce();
        self.send(to, make(nonce));
        self.pending.push(Pending {
            nonce,
            to,
            deadline: now + self.config.request_timeout,
            retries: 0,
            purpose,
        });
        Ok(())
    }

    /// Internal requests (maintenance) that may be dropped when the table is full: the next tick
    /// tries again.
    fn request_best_effort(
        &mut self,
        now: Time,
        to: A,
        make: impl FnOnce(u32) -> Message<I, A>,
        purpose: Purpose<I, A>,
    ) {
        let _ = self.request(now, to, make, purpose);
    }

    fn take_pending(
        &mut self,
        from: A,
        nonce: u32,
        accept: impl Fn(&Purpose<I, A>) -> bool,
    ) -> Option<Purpose<I, A>> {
        let i = self
            .pending
            .iter()
            .position(|p| p.to == from && p.nonce == nonce && accept(&p.purpose))?;
        Some(self.pending.remove(i).purpose)
    }

    fn has_pending(&self, f: impl Fn(&Purpose<I, A>) -> bool) -> bool {
        self.pending.iter().any(|p| f(&p.purpose))
    }

    /// Replace the successor list: drop this node itself and everything after it (a list that
    /// wrapped round a small ring), drop duplicates, keep `r` entries.
    fn set_succs(&mut self, list: impl IntoIterator<Item = Peer<I, A>>) {
        let r = self.r();
        let mut out: SuccList<I, A> = ArrayVec::new();
        for p in list {
            if p.id == self.me.id || out.len() >= r {
                break;
            }
            if out.iter().any(|q| q.id == p.id) {
                continue;
            }
            out.push(p);
        }
        self.succs = out;
    }

    /// A peer was found dead: forget it everywhere.
    fn forget(&mut self, addr: A) {
        self.succs.retain(|p| p.addr != addr);
        for f in &mut self.fingers {
            if f.is_some_and(|p| p.addr == addr) {
                *f = None;
            }
        }
    }

    fn first_succ_or_me(&self) -> Peer<I, A> {
        self.succs.first().copied().unwrap_or(self.me)
    }

    /// The nodes this node knows that precede `key` most closely (best first).
    fn closest_preceding(&self, key: &I, avoid: &[A]) -> ArrayVec<Peer<I, A>, MAX_HINTS> {
        let mut out: ArrayVec<Peer<I, A>, MAX_HINTS> = ArrayVec::new();
        let me = self.me.id;
        // fingers come in runs of one peer (all i whose start falls before that peer): look at
        // each run once rather than at all `I::BITS` entries
        let mut last: Option<I> = None;
        let fingers = self.fingers.iter().rev().flatten().filter(move |p| {
            let repeat = last == Some(p.id);
            last = Some(p.id);
            !repeat
        });
        for p in fingers.chain(self.succs.iter()) {
            if !between(&me, &p.id, key)
                || avoid.contains(&p.addr)
                || out.iter().any(|q| q.id == p.id)
            {
                continue;
            }
            // insertion sort by closeness to the key: p before q when p lies in (q, key)
            let pos = out
                .iter()
                .position(|q| between(&q.id, &p.id, key))
                .unwrap_or(out.len());
            if pos < MAX_HINTS {
                if out.is_full() {
                    out.pop();
                }
                out.insert(pos, *p);
            }
        }
        out
    }

    /// This node's own answer to "who owns `key`": `Ok((owner, the nodes after it))` or
    /// `Err(next hops)`.
    /// Nodes in `avoid` (found dead by the asker) are treated as if they did not exist.
    fn route(&self, key: &I, avoid: &[A]) -> Route<I, A> {
        let mut live = self
            .succs
            .iter()
            .filter(|p| !avoid.contains(&p.addr))
            .copied();
        if let Some(p) = self.pred {
            if between_right_incl(&p.id, key, &self.me.id) {
                return Ok((self.me, live.take(MAX_HINTS).collect()));
            }
        }
        let succ = live.next().unwrap_or(self.me);
        let after_succ: Hints<I, A> = live.take(MAX_HINTS).collect();
        if succ.id == self.me.id || between_right_incl(&self.me.id, key, &succ.id) {
            return Ok((succ, after_succ));
        }
        let hints = self.closest_preceding(key, avoid);
        if hints.is_empty() {
            Ok((succ, after_succ))
        } else {
            Err(hints)
        }
    }

    fn fail_goal(&mut self, goal: Goal, key: I, reason: Failure) {
        match goal {
            Goal::Join => {
                self.phase = Phase::Idle;
                self.emit(Event::JoinFailed { reason });
            }
            Goal::Finger(_) => {}
            Goal::Lookup(op) | Goal::Put(op, _) | Goal::Get(op) => {
                self.emit(Event::OpFailed { op, key, reason })
            }
        }
    }

    /// Ask the next hop of a lookup, or finish it.
    fn lookup_step(
        &mut self,
        now: Time,
        mut lk: Lookup<I, A>,
        next: ArrayVec<Peer<I, A>, MAX_HINTS>,
    ) {
        let (dead, asked) = (lk.dead.clone(), lk.asked.clone());
        let mut next = next
            .into_iter()
            .filter(|p| !dead.contains(&p.addr) && !asked.contains(&p.addr));
        let Some(hop) = next.next() else {
            return self.fail_goal(lk.goal, lk.key, Failure::Unreachable);
        };
        if lk.hops >= self.config.max_hops {
            return self.fail_goal(lk.goal, lk.key, Failure::TooManyHops);
        }
        lk.hops += 1;
        lk.fallback = next.collect();
        let key = lk.key;
        let goal = lk.goal.clone();
        let avoid = lk.avoid();
        if self
            .request(
                now,
                hop.addr,
                |nonce| Message::FindSuccessor { nonce, key, avoid },
                Purpose::Hop(lk),
            )
            .is_err()
        {
            self.fail_goal(goal, key, Failure::Unreachable);
        }
    }

    /// The last hop gave nothing usable: ask the next alternative from an earlier answer, or
    /// start again from what this node knows now (never a hop known dead), or give up.
    fn lookup_fall_back(&mut self, now: Time, mut lk: Lookup<I, A>) {
        let next: Hints<I, A> = core::mem::take(&mut lk.fallback)
            .into_iter()
            .filter(|h| !lk.dead.contains(&h.addr) && !lk.asked.contains(&h.addr))
            .collect();
        if !next.is_empty() {
            return self.lookup_step(now, lk, next);
        }
        if lk.hops < self.config.max_hops && self.phase == Phase::Member {
            match self.route(&lk.key, &lk.dead) {
                Ok((owner, alts)) if !lk.dead.contains(&owner.addr) => {
                    return self.lookup_done(now, lk, owner, alts)
                }
                Ok((_, alts)) => {
                    // our own successor is the owner but it is dead: the next live one takes over
                    let mut alts = alts.into_iter().filter(|a| !lk.dead.contains(&a.addr));
                    if let Some(owner) = alts.next() {
                        let rest = alts.collect();
                        return self.lookup_done(now, lk, owner, rest);
                    }
                }
                Err(hints)
                    if hints
                        .iter()
                        .any(|h| !lk.dead.contains(&h.addr) && !lk.asked.contains(&h.addr)) =>
                {
                    return self.lookup_step(now, lk, hints)
                }
                Err(_) => {}
            }
        }
        self.fail_goal(lk.goal, lk.key, Failure::Unreachable);
    }

    /// A lookup found its owner.
    fn lookup_done(
        &mut self,
        now: Time,
        lk: Lookup<I, A>,
        owner: Peer<I, A>,
        alternates: Hints<I, A>,
    ) {
        let key = lk.key;
        match lk.goal {
            Goal::Join => {
                if owner.id == self.me.id {
                    self.phase = Phase::Idle;
                    self.emit(Event::JoinFailed {
                        reason: Failure::IdTaken,
                    });
                    return;
                }
                if self
                    .request(
                        now,
                        owner.addr,
                        |nonce| Message::GetState { nonce },
                        Purpose::JoinState { succ: owner },
                    )
                    .is_err()
                {
                    self.fail_goal(Goal::Join, key, Failure::Unreachable);
                }
            }
            Goal::Finger(i) => self.set_finger_run(i, owner),
            Goal::Lookup(op) => self.emit(Event::LookupDone {
                op,
                key,
                owner,
                hops: lk.hops,
            }),
            Goal::Put(op, value) => {
                if owner.id == self.me.id {
                    self.store_local(key, value.clone());
                    self.replicate_items(alloc::vec![(key, value)]);
                    self.emit(Event::PutDone { op, key, owner });
                } else if self
                    .request(
                        now,
                        owner.addr,
                        {
                            let value = value.clone();
                            move |nonce| Message::Store { nonce, key, value }
                        },
                        Purpose::Store {
                            op,
                            key,
                            owner,
                            value,
                            alternates,
                        },
                    )
                    .is_err()
                {
                    self.emit(Event::OpFailed {
                        op,
                        key,
                        reason: Failure::Unreachable,
                    });
                }
            }
            Goal::Get(op) => {
                if owner.id == self.me.id {
                    let value = self.store.get(&key).cloned();
                    self.emit(Event::GetDone { op, key, value });
                } else if self
                    .request(
                        now,
                        owner.addr,
                        |nonce| Message::Fetch { nonce, key },
                        Purpose::Fetch {
                            op,
                            key,
                            alternates,
                        },
                    )
                    .is_err()
                {
                    self.emit(Event::OpFailed {
                        op,
                        key,
                        reason: Failure::Unreachable,
                    });
                }
            }
        }
    }

    /// Finger `i` is `owner`; so is every later finger whose start still precedes `owner`.
    fn set_finger_run(&mut self, i: u16, owner: Peer<I, A>) {
        let mut j = i as u32;
        while j < I::BITS {
            let start = self.me.id.add_pow2(j);
            if j != i as u32 && !between_right_incl(&self.me.id, &start, &owner.id) {
                break;
            }
            if let Some(f) = self.fingers.get_mut(j as usize) {
                *f = if owner.id == self.me.id {
                    None
                } else {
                    Some(owner)
                };
            }
            j += 1;
        }
        self.next_finger = if j >= I::BITS { 0 } else { j as u16 };
    }

    fn start_lookup(&mut self, now: Time, goal: Goal, key: I) -> Result<(), Error> {
        if self.pending.len() >= self.config.max_pending as usize {
            return Err(Error::TooManyPending(self.config.max_pending));
        }
        let lk = Lookup {
            goal,
            key,
            hops: 0,
            fallback: ArrayVec::new(),
            dead: ArrayVec::new(),
            asked: ArrayVec::new(),
        };
        match self.route(&key, &[]) {
            Ok((owner, alternates)) => self.lookup_done(now, lk, owner, alternates),
            Err(next) => self.lookup_step(now, lk, next),
        }
        Ok(())
    }

    fn store_local(&mut self, key: I, value: Vec<u8>) -> bool {
        if value.len() > self.config.max_value_len as usize {
            self.stats.refused_keys += 1;
            return false;
        }
        if !self.store.contains_key(&key) && self.store.len() >= self.config.max_keys as usize {
            self.stats.refused_keys += 1;
            return false;
        }
        self.store.insert(key, value);
        true
    }

    /// Send these items to every successor (replicas).
    fn replicate_items(&mut self, items: Vec<(I, Vec<u8>)>) {
        if items.is_empty() {
            return;
        }
        let targets: ArrayVec<A, MAX_SUCCESSORS> = self.succs.iter().map(|p| p.addr).collect();
        for to in targets {
            self.send(
                to,
                Message::Replicate {
                    items: items.clone(),
                },
            );
        }
    }

    /// Push every key this node owns to its successors, in batches.
    fn replicate_owned(&mut self) {
        const BATCH: usize = 64;
        let owned: Vec<(I, Vec<u8>)> = self
            .store
            .iter()
            .filter(|(k, _)| self.owns(k))
            .map(|(k, v)| (*k, v.clone()))
            .collect();
        for chunk in owned.chunks(BATCH) {
            self.replicate_items(chunk.to_vec());
        }
    }

    /// The predecessor changed from `old` to `new`: keys in `(old, new]` now belong to `new`.
    fn set_pred(&mut self, new: Peer<I, A>) {
        let old = self.pred;
        self.pred = Some(new);
        if self.store.is_empty() || old.is_some_and(|o| o.id == new.id) {
            return;
        }
        let items: Vec<(I, Vec<u8>)> = self
            .store
            .iter()
            .filter(|(k, _)| match old {
                Some(o) => between_right_incl(&o.id, k, &new.id),
                // no predecessor known: hand over everything that is not ours
                None => !between_right_incl(&new.id, k, &self.me.id),
            })
            .map(|(k, v)| (*k, v.clone()))
            .collect();
        for chunk in items.chunks(64) {
            self.send(
                new.addr,
                Message::Replicate {
                    items: chunk.to_vec(),
                },
            );
        }
    }

    fn become_member(&mut self, now: Time) {
        self.phase = Phase::Member;
        self.next_tick = Some(now + self.config.stabilize_every);
        let successor = self.first_succ_or_me();
        self.emit(Event::Joined { successor });
    }

    /// Periodic maintenance: stabilize, check the predecessor (Original), fix a finger, replicate.
    fn tick(&mut self, now: Time) {
        // counts ticks up to the next replication only, so that the state stays finite
        self.ticks += 1;
        let replicate =
            self.config.replicate_every > 0 && self.ticks >= self.config.replicate_every;
        if replicate || self.config.replicate_every == 0 {
            self.ticks = 0;
        }
        self.next_tick = Some(now + self.config.stabilize_every);
        // stabilize
        if !self.has_pending(|p| matches!(p, Purpose::Stabilize | Purpose::Candidate { .. })) {
            match self.succs.first().copied() {
                Some(s) => self.request_best_effort(
                    now,
                    s.addr,
                    |nonce| Message::GetState { nonce },
                    Purpose::Stabilize,
                ),
                None => {
                    // alone: a node that notified us is our successor (Stoica's ring of one)
                    if let Some(p) = self.pred {
                        self.set_succs([p]);
                        self.send(p.addr, Message::Notify { id: self.me.id });
                    }
                }
            }
        }
        // Original's check_predecessor
        if self.config.variant == Variant::Original
            && !self.has_pending(|p| matches!(p, Purpose::CheckPred { .. }))
        {
            if let Some(pred) = self.pred {
                self.request_best_effort(
                    now,
                    pred.addr,
                    |nonce| Message::Ping { nonce },
                    Purpose::CheckPred {
                        pred,
                        instead: None,
                    },
                );
            }
        }
        // fix one finger
        if self.config.fingers
            && !self.has_pending(|p| {
                matches!(
                    p,
                    Purpose::Hop(Lookup {
                        goal: Goal::Finger(_),
                        ..
                    })
                )
            })
        {
            let i = self.next_finger;
            let key = self.me.id.add_pow2(i as u32);
            let _ = self.start_lookup(now, Goal::Finger(i), key);
        }
        // replicas
        if replicate {
            self.replicate_owned();
        }
    }

    /// A request's deadline passed: its peer is taken for dead.
    fn timed_out(&mut self, now: Time, p: Pending<I, A>) {
        self.stats.timeouts += 1;
        match p.purpose {
            Purpose::Stabilize => {
                // the first successor is dead: drop it, the next one takes over
                self.forget(p.to);
                if self.succs.is_empty() {
                    match self.config.variant {
                        // Stoica: a node whose successors all failed becomes its own successor
                        Variant::Original => {}
                        Variant::Zave => {}
                    }
                    self.emit(Event::Isolated);
                }
            }
            Purpose::Candidate { succ, succ_succs } => {
                // the better successor is dead: keep the current one with its list
                self.forget(p.to);
                self.set_succs(core::iter::once(succ).chain(succ_succs));
                self.send(succ.addr, Message::Notify { id: self.me.id });
            }
            Purpose::JoinState { .. } => {
                self.fail_goal(Goal::Join, self.me.id, Failure::Unreachable)
            }
            Purpose::CheckPred { pred, instead } => {
                self.forget(p.to);
                if self.pred == Some(pred) {
                    match instead {
                        Some(n) => self.set_pred(n),
                        None => self.pred = None,
                    }
                }
            }
            Purpose::Hop(mut lk) => {
                self.forget(p.to);
                if !lk.dead.contains(&p.to) {
                    if lk.dead.is_full() {
                        lk.dead.remove(0);
                    }
                    lk.dead.push(p.to);
                }
                self.lookup_fall_back(now, lk);
            }
            purpose @ (Purpose::Store { .. } | Purpose::Fetch { .. }) => {
                self.owner_failed(now, p.to, purpose)
            }
        }
    }

    /// The owner a `Store`/`Fetch` went to is gone: the next node after it holds its replicas
    /// and takes over, so ask that one; fail the operation when none is left.
    fn owner_failed(&mut self, now: Time, dead: A, mut purpose: Purpose<I, A>) {
        self.forget(dead);
        let me = self.me.addr;
        let (op, key, next) = match &mut purpose {
            Purpose::Store {
                op,
                key,
                owner,
                alternates,
                ..
            } => {
                alternates.retain(|a| a.addr != dead && a.addr != me);
                let next = (!alternates.is_empty()).then(|| alternates.remove(0));
                if let Some(n) = next {
                    *owner = n;
                }
                (*op, *key, next)
            }
            Purpose::Fetch {
                op,
                key,
                alternates,
            } => {
                alternates.retain(|a| a.addr != dead && a.addr != me);
                let next = (!alternates.is_empty()).then(|| alternates.remove(0));
                (*op, *key, next)
            }
            _ => return,
        };
        let sent = next.is_some_and(|n| {
            let template = purpose.clone();
            self.request(now, n.addr, move |nonce| template.request(nonce), purpose)
                .is_ok()
        });
        if !sent {
            self.emit(Event::OpFailed {
                op,
                key,
                reason: Failure::Unreachable,
            });
        }
    }

    fn on_command(&mut self, now: Time, cmd: Command<I, A>) -> Result<(), Error> {
        match cmd {
            Command::Create => {
                if self.phase != Phase::Idle {
                    return Err(Error::AlreadyJoined);
                }
                self.succs.clear();
                self.pred = None;
                self.become_member(now);
                Ok(())
            }
            Command::Join { via } => {
                if self.phase != Phase::Idle {
                    return Err(Error::AlreadyJoined);
                }
                if via == self.me.addr {
                    return Err(Error::JoinSelf);
                }
                let key = self.me.id;
                let lk = Lookup {
                    goal: Goal::Join,
                    key,
                    hops: 1,
                    fallback: ArrayVec::new(),
                    dead: ArrayVec::new(),
                    asked: ArrayVec::new(),
                };
                self.request(
                    now,
                    via,
                    |nonce| Message::FindSuccessor {
                        nonce,
                        key,
                        avoid: ArrayVec::new(),
                    },
                    Purpose::Hop(lk),
                )?;
                self.phase = Phase::Joining;
                Ok(())
            }
            Command::Leave => {
                if self.phase != Phase::Member {
                    return Err(Error::NotMember);
                }
                self.leave();
                Ok(())
            }
            Command::Lookup { op, key } => {
                self.require_member()?;
                self.start_lookup(now, Goal::Lookup(op), key)
            }
            Command::Put { op, key, value } => {
                self.require_member()?;
                if value.len() > self.config.max_value_len as usize {
                    return Err(Error::ValueTooLarge {
                        len: value.len(),
                        max: self.config.max_value_len,
                    });
                }
                self.start_lookup(now, Goal::Put(op, value), key)
            }
            Command::Get { op, key } => {
                self.require_member()?;
                self.start_lookup(now, Goal::Get(op), key)
            }
        }
    }

    fn require_member(&self) -> Result<(), Error> {
        if self.phase == Phase::Member {
            Ok(())
        } else {
            Err(Error::NotMember)
        }
    }

    fn leave(&mut self) {
        let items: Vec<(I, Vec<u8>)> = self.store.iter().map(|(k, v)| (*k, v.clone())).collect();
        if let Some(s) = self.succs.first().copied() {
            for chunk in items.chunks(64) {
                self.send(
                    s.addr,
                    Message::Replicate {
                        items: chunk.to_vec(),
                    },
                );
            }
            self.send(
                s.addr,
                Message::Leave {
                    id: self.me.id,
                    pred: self.pred,
                    succs: self.succs.clone(),
                },
            );
        }
        if let Some(p) = self.pred {
            if self.succs.first().map_or(true, |s| s.addr != p.addr) {
                self.send(
                    p.addr,
                    Message::Leave {
                        id: self.me.id,
                        pred: self.pred,
                        succs: self.succs.clone(),
                    },
                );
            }
        }
        // every operation in flight ends now
        for p in core::mem::take(&mut self.pending) {
            match p.purpose {
                Purpose::Hop(lk) => self.fail_goal(lk.goal, lk.key, Failure::Left),
                Purpose::Store { op, key, .. } | Purpose::Fetch { op, key, .. } => {
                    self.emit(Event::OpFailed {
                        op,
                        key,
                        reason: Failure::Left,
                    })
                }
                _ => {}
            }
        }
        self.phase = Phase::Left;
        self.succs.clear();
        self.pred = None;
        self.store.clear();
        self.fingers.iter_mut().for_each(|f| *f = None);
        self.next_tick = None;
        self.emit(Event::Left);
    }

    fn on_message(&mut self, now: Time, from: A, msg: Message<I, A>) -> Result<(), Error> {
        use Message::*;
        let name = msg.name();
        match msg {
            // ----- requests ---------------------------------------------------------------
            FindSuccessor { nonce, key, avoid } => {
                if self.phase != Phase::Member {
                    self.send(
                        from,
                        Refused {
                            nonce,
                            reason: Refusal::NotMember,
                        },
                    );
                    return Ok(());
                }
                match self.route(&key, &avoid) {
                    Ok((owner, alternates)) => self.send(
                        from,
                        Found {
                            nonce,
                            owner,
                            alternates,
                        },
                    ),
                    Err(next) => self.send(from, Closer { nonce, next }),
                }
            }
            GetState { nonce } => {
                if self.phase != Phase::Member {
                    self.send(
                        from,
                        Refused {
                            nonce,
                            reason: Refusal::NotMember,
                        },
                    );
                    return Ok(());
                }
                let m = State {
                    nonce,
                    id: self.me.id,
                    pred: self.pred,
                    succs: self.succs.clone(),
                };
                self.send(from, m);
            }
            Ping { nonce } => {
                if self.phase == Phase::Left {
                    return Err(Error::Unexpected(name));
                }
                self.send(from, Pong { nonce })
            }
            Store { nonce, key, value } => {
                if self.phase != Phase::Member {
                    self.send(
                        from,
                        Refused {
                            nonce,
                            reason: Refusal::NotMember,
                        },
                    );
                    return Ok(());
                }
                if value.len() > self.config.max_value_len as usize {
                    self.stats.refused_keys += 1;
                    self.send(
                        from,
                        Refused {
                            nonce,
                            reason: Refusal::ValueTooLarge,
                        },
                    );
                } else if self.store_local(key, value.clone()) {
                    self.replicate_items(alloc::vec![(key, value)]);
                    self.send(from, Stored { nonce });
                } else {
                    self.send(
                        from,
                        Refused {
                            nonce,
                            reason: Refusal::StoreFull,
                        },
                    );
                }
            }
            Fetch { nonce, key } => {
                if self.phase != Phase::Member {
                    self.send(
                        from,
                        Refused {
                            nonce,
                            reason: Refusal::NotMember,
                        },
                    );
                    return Ok(());
                }
                let value = self.store.get(&key).cloned();
                self.send(from, Value { nonce, value });
            }
            // ----- one-way ----------------------------------------------------------------
            Notify { id } => {
                if self.phase != Phase::Member {
                    return Err(Error::Unexpected(name));
                }
                if id == self.me.id {
                    return Err(Error::Unexpected(name));
                }
                let n = Peer { id, addr: from };
                match self.pred {
                    None => self.set_pred(n),
                    Some(p) if p.id == id => {}
                    Some(p) if between(&p.id, &id, &self.me.id) => self.set_pred(n),
                    Some(p) => {
                        // Zave's rectify: the notifier replaces the predecessor only if it is dead
                        if self.config.variant == Variant::Zave
                            && !self.has_pending(|q| matches!(q, Purpose::CheckPred { .. }))
                        {
                            self.request_best_effort(
                                now,
                                p.addr,
                                |nonce| Message::Ping { nonce },
                                Purpose::CheckPred {
                                    pred: p,
                                    instead: Some(n),
                                },
                            );
                        }
                    }
                }
            }
            Replicate { items } => {
                if self.phase != Phase::Member && self.phase != Phase::Joining {
                    return Err(Error::Unexpected(name));
                }
                for (k, v) in items {
                    self.store_local(k, v);
                }
            }
            Leave { id, pred, succs } => {
                if self.phase != Phase::Member {
                    return Err(Error::Unexpected(name));
                }
                let was_succ = self
                    .succs
                    .first()
                    .is_some_and(|s| s.addr == from && s.id == id);
                let was_pred = self.pred.is_some_and(|p| p.addr == from && p.id == id);
                if !was_succ && !was_pred {
                    return Err(Error::Unexpected(name));
                }
                if was_succ {
                    let rest: SuccList<I, A> = self.succs.iter().skip(1).copied().collect();
                    // the leaver's list is ours shifted by one; prefer it, fall back on our own tail
                    let merged: Vec<Peer<I, A>> = if succs.is_empty() {
                        rest.to_vec()
                    } else {
                        succs.to_vec()
                    };
                    self.forget(from);
                    self.set_succs(merged);
                }
                if was_pred {
                    self.pred = pred.filter(|p| p.id != self.me.id);
                    if self.pred.is_none() && self.succs.is_empty() {
                        // we are alone again
                    }
                }
                for f in &mut self.fingers {
                    if f.is_some_and(|p| p.addr == from) {
                        *f = None;
                    }
                }
                // whatever we still wait on from the leaver will never be answered (and a late
                // answer sent before it left must not bring it back): fail over now
                while let Some(i) = self.pending.iter().position(|p| p.to == from) {
                    let p = self.pending.remove(i);
                    self.timed_out(now, p);
                }
            }
            // ----- answers ----------------------------------------------------------------
            Found {
                nonce,
                owner,
                alternates,
            } => {
                let Some(Purpose::Hop(lk)) =
                    self.take_pending(from, nonce, |p| matches!(p, Purpose::Hop(_)))
                else {
                    return self.unsolicited(name);
                };
                self.lookup_done(now, lk, owner, alternates);
            }
            Closer { nonce, next } => {
                let Some(Purpose::Hop(mut lk)) =
                    self.take_pending(from, nonce, |p| matches!(p, Purpose::Hop(_)))
                else {
                    return self.unsolicited(name);
                };
                if !lk.asked.contains(&from) {
                    if lk.asked.is_full() {
                        lk.asked.remove(0);
                    }
                    lk.asked.push(from);
                }
                // never ask ourselves, and never go back to the hop that answered
                let next: ArrayVec<Peer<I, A>, MAX_HINTS> = next
                    .into_iter()
                    .filter(|p| {
                        p.addr != self.me.addr && p.addr != from && !lk.dead.contains(&p.addr)
                    })
                    .collect();
                if next.is_empty() {
                    self.lookup_fall_back(now, lk);
                } else {
                    self.lookup_step(now, lk, next);
                }
            }
            State {
                nonce,
                id,
                pred,
                succs,
            } => {
                let purpose = self.take_pending(from, nonce, |p| {
                    matches!(
                        p,
                        Purpose::Stabilize | Purpose::Candidate { .. } | Purpose::JoinState { .. }
                    )
                });
                let Some(purpose) = purpose else {
                    return self.unsolicited(name);
                };
                self.on_state(now, from, purpose, id, pred, succs);
            }
            Pong { nonce } => {
                if self
                    .take_pending(from, nonce, |p| matches!(p, Purpose::CheckPred { .. }))
                    .is_none()
                {
                    return self.unsolicited(name);
                }
                // the predecessor is alive: keep it
            }
            Stored { nonce } => {
                let Some(Purpose::Store { op, key, owner, .. }) =
                    self.take_pending(from, nonce, |p| matches!(p, Purpose::Store { .. }))
                else {
                    return self.unsolicited(name);
                };
                self.emit(Event::PutDone { op, key, owner });
            }
            Value { nonce, value } => {
                let Some(Purpose::Fetch { op, key, .. }) =
                    self.take_pending(from, nonce, |p| matches!(p, Purpose::Fetch { .. }))
                else {
                    return self.unsolicited(name);
                };
                self.emit(Event::GetDone { op, key, value });
            }
            Refused { nonce, reason } => {
                let Some(purpose) = self.take_pending(from, nonce, |_| true) else {
                    return self.unsolicited(name);
                };
                match purpose {
                    Purpose::Hop(lk) => self.fail_goal(lk.goal, lk.key, Failure::Refused(reason)),
                    Purpose::Store { op, key, .. } | Purpose::Fetch { op, key, .. } => {
                        self.emit(Event::OpFailed {
                            op,
                            key,
                            reason: Failure::Refused(reason),
                        })
                    }
                    Purpose::JoinState { .. } => {
                        self.fail_goal(Goal::Join, self.me.id, Failure::Refused(reason))
                    }
                    // a neighbour that is no member is as good as dead for the ring
                    Purpose::Stabilize | Purpose::Candidate { .. } | Purpose::CheckPred { .. } => {
                        let p = Pending {
                            nonce,
                            to: from,
                            deadline: now,
                            retries: 0,
                            purpose,
                        };
                        self.timed_out(now, p);
                    }
                }
            }
        }
        Ok(())
    }

    fn unsolicited(&mut self, name: &'static str) -> Result<(), Error> {
        Err(Error::Unsolicited(name))
    }

    fn on_state(
        &mut self,
        now: Time,
        from: A,
        purpose: Purpose<I, A>,
        id: I,
        pred: Option<Peer<I, A>>,
        succs: SuccList<I, A>,
    ) {
        let responder = Peer { id, addr: from };
        match purpose {
            Purpose::JoinState { succ } => {
                if self.phase != Phase::Joining {
                    return;
                }
                let succ = Peer {
                    id,
                    addr: succ.addr,
                };
                match self.config.variant {
                    // Stoica: the successor alone; stabilize fills the list later
                    Variant::Original => self.set_succs([succ]),
                    // Zave: adopt the successor's list
                    Variant::Zave => self.set_succs(core::iter::once(succ).chain(succs)),
                }
                self.pred = None;
                self.become_member(now);
                self.send(succ.addr, Message::Notify { id: self.me.id });
            }
            Purpose::Stabilize => {
                if self.phase != Phase::Member {
                    return;
                }
                let better =
                    pred.filter(|p| p.id != self.me.id && between(&self.me.id, &p.id, &id));
                match (self.config.variant, better) {
                    (Variant::Original, Some(p)) => {
                        // adopt the successor's predecessor without checking it
                        self.set_succs([p, responder].into_iter().chain(succs));
                        self.send(p.addr, Message::Notify { id: self.me.id });
                    }
                    (Variant::Zave, Some(p)) => {
                        // check the candidate is live (and learn its list) before adopting it
                        let purpose = Purpose::Candidate {
                            succ: responder,
                            succ_succs: succs.clone(),
                        };
                        if self
                            .request(now, p.addr, |nonce| Message::GetState { nonce }, purpose)
                            .is_err()
                        {
                            self.set_succs(core::iter::once(responder).chain(succs));
                            self.send(responder.addr, Message::Notify { id: self.me.id });
                        }
                    }
                    (_, None) => {
                        self.set_succs(core::iter::once(responder).chain(succs));
                        self.send(responder.addr, Message::Notify { id: self.me.id });
                    }
                }
            }
            Purpose::Candidate { succ, succ_succs } => {
                if self.phase != Phase::Member {
                    return;
                }
                // adopt the candidate only if it still lies between us and the old successor
                if between(&self.me.id, &id, &succ.id) {
                    self.set_succs(core::iter::once(responder).chain(succs));
                } else {
                    self.set_succs(core::iter::once(succ).chain(succ_succs));
                }
                let head = self.first_succ_or_me();
                if head.id != self.me.id {
                    self.send(head.addr, Message::Notify { id: self.me.id });
                }
            }
            _ => {}
        }
    }
}

impl<I: RingId, A: Address> Machine for Node<I, A> {
    type Input = Input<I, A>;
    type Output = Output<I, A>;
    type Error = Error;

    fn handle(&mut self, now: Time, input: Input<I, A>) -> Result<(), Error> {
        let r = match input {
            Input::Command(c) => self.on_command(now, c),
            Input::Message { from, msg } => {
                // a message from our own address, or to a node that left, is not for us
                if from == self.me.addr || self.phase == Phase::Left {
                    Err(Error::Unexpected(msg.name()))
                } else {
                    self.on_message(now, from, msg)
                }
            }
        };
        if r.is_err() {
            self.stats.rejected += 1;
        }
        r
    }

    fn poll(&mut self) -> Option<Output<I, A>> {
        self.outbox.pop_front()
    }

    fn poll_timeout(&self) -> Option<Time> {
        let p = self.pending.iter().map(|p| p.deadline).min();
        match (self.next_tick, p) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    fn handle_timeout(&mut self, now: Time) {
        // expired requests first, oldest first, so that a tick sees the freshest view
        while let Some(i) = self.pending.iter().position(|p| p.deadline <= now) {
            let mut p = self.pending.remove(i);
            if p.retries < self.config.request_retries {
                // ask once more, with the same nonce so that a late first answer still counts
                let msg = p.purpose.request(p.nonce);
                self.send(p.to, msg);
                p.retries += 1;
                p.deadline = now + self.config.request_timeout.max(Duration::from_millis(1));
                self.pending.push(p);
                continue;
            }
            self.timed_out(now, p);
        }
        if self.phase == Phase::Member && self.next_tick.is_some_and(|t| t <= now) {
            self.tick(now);
        }
    }
}

impl<I: RingId> Networked for Node<I, TransportAddr> {
    type Wire = wire::ChordWire<I, TransportAddr>;
    type Event = Event<I, TransportAddr>;
    fn message_input(from: TransportAddr, msg: Message<I, TransportAddr>) -> Self::Input {
        Input::Message { from, msg }
    }
    fn effect(out: Self::Output) -> Effect<Message<I, TransportAddr>, Self::Event> {
        match out {
            Output::Send { to, msg } => Effect::Send { to, msg },
            Output::Event(e) => Effect::Event(e),
        }
    }
}
