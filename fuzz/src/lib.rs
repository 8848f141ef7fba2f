//! The bodies of the ip2p fuzz targets.
//!
//! Each cargo-fuzz target in `fuzz/fuzz_targets/` is one line calling a function of this file, and
//! `tests/fuzz_corpus.rs` includes this very file (`#[path = "../fuzz/src/lib.rs"]`) to replay every
//! committed corpus under a plain stable `cargo test`. So this file may use only what the root crate
//! has as (dev-)dependencies: `ip2p` and `arbitrary`.
//!
//! - [`chord_wire`]: arbitrary bytes through the Chord codec; whatever decodes must re-encode to the
//!   very same bytes (the encoding is canonical) and decode again to the same message. The same
//!   bytes also drive a structured generator: a message built from them must survive
//!   encode → decode unchanged.
//! - [`chord_node`]: one real [`ip2p::chord::Node`] driven by a scenario decoded from the bytes
//!   (configuration, start state, then commands, hostile messages from arbitrary peers, well-typed
//!   answers to the node's own requests, timeouts at increasing times, clock rebases), with the
//!   node's invariants checked after every step. See `spec/fuzzing.md`.
//!
//! A scenario is read one byte at a time (`byte % n` picks among `n` choices) so that a person can
//! write a seed by hand; [`node_seeds`] builds the committed seeds that way.

use std::collections::BTreeSet;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::Duration;

use arbitrary::{Result, Unstructured};
use ip2p::chord::wire::{ChordWire, WireAddr};
use ip2p::chord::{
    Address, Command, Config, Event, Id64, Input, Message, Node, NodeId, OpId, Output, Peer, Phase,
    Refusal, RingId, SmallId, SuccList, Variant, MAX_HINTS, MAX_SUCCESSORS,
};
use ip2p::machine::Machine;
use ip2p::{Time, TransportAddr};

// ----- chord_wire ------------------------------------------------------------------------------

/// Fuzz body: decode `data` as a Chord message with three id/address instantiations; check that
/// whatever decodes is re-encoded to exactly `data` and decodes again to the same message. Then
/// build a message from `data` and check it survives encode → decode.
pub fn chord_wire(data: &[u8]) {
    decode_round_trip::<NodeId, TransportAddr>(data);
    decode_round_trip::<Id64, u32>(data);
    decode_round_trip::<SmallId<6>, u8>(data);

    let mut u = Unstructured::new(data);
    if let Ok(m) = gen_message::<Real>(&mut u) {
        encode_round_trip::<NodeId, TransportAddr>(&m);
    }
    if let Ok(m) = gen_message::<Wide>(&mut u) {
        encode_round_trip::<Id64, u32>(&m);
    }
}

fn decode_round_trip<I: RingId, A: Address + WireAddr>(data: &[u8]) {
    match ChordWire::<I, A>::read(data) {
        Ok(m) => {
            let bytes = ChordWire::<I, A>::to_bytes(&m);
            assert_eq!(bytes, data, "decoded {m:?} re-encodes to other bytes");
            match ChordWire::<I, A>::read(&bytes) {
                Ok(again) => assert_eq!(again, m, "decode(encode(m)) != m"),
                Err(e) => panic!("re-encoded {m:?} does not decode: {e}"),
            }
        }
        // the error must render (it is what a host logs)
        Err(e) => assert!(!format!("{e}").is_empty()),
    }
}

fn encode_round_trip<I: RingId, A: Address + WireAddr>(m: &Message<I, A>) {
    let bytes = ChordWire::<I, A>::to_bytes(m);
    match ChordWire::<I, A>::read(&bytes) {
        Ok(back) => assert_eq!(&back, m, "decode(encode(m)) != m"),
        Err(e) => panic!("encoding of {m:?} does not decode: {e}"),
    }
}

/// Seed inputs for `chord_wire`: one encoding of every message type with each instantiation.
pub fn wire_seeds() -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    for (i, m) in sample_messages::<Real>().iter().enumerate() {
        out.push((
            format!("real-{i:02}-{}", m.name()),
            ChordWire::<NodeId, TransportAddr>::to_bytes(m),
        ));
    }
    for (i, m) in sample_messages::<Wide>().iter().enumerate() {
        out.push((
            format!("id64-{i:02}-{}", m.name()),
            ChordWire::<Id64, u32>::to_bytes(m),
        ));
    }
    out
}

fn sample_messages<S: Space>() -> Vec<Message<S::I, S::A>> {
    let p = S::peer(1);
    let q = S::peer(2);
    let succs: SuccList<S::I, S::A> = (1..=8).map(S::peer).collect();
    vec![
        Message::FindSuccessor {
            nonce: 1,
            key: S::peer(5).id,
        },
        Message::Found {
            nonce: 2,
            owner: p,
            alternates: [q].into_iter().collect(),
        },
        Message::Closer {
            nonce: 3,
            next: [p, q].into_iter().collect(),
        },
        Message::GetState { nonce: 4 },
        Message::State {
            nonce: 5,
            id: p.id,
            pred: Some(q),
            succs: succs.clone(),
        },
        Message::Notify { id: q.id },
        Message::Ping { nonce: 6 },
        Message::Pong { nonce: 6 },
        Message::Store {
            nonce: 7,
            key: q.id,
            value: b"value".to_vec(),
        },
        Message::Stored { nonce: 7 },
        Message::Fetch {
            nonce: 8,
            key: q.id,
        },
        Message::Value {
            nonce: 8,
            value: Some(b"value".to_vec()),
        },
        Message::Replicate {
            items: vec![(p.id, b"a".to_vec()), (q.id, vec![])],
        },
        Message::Leave {
            id: p.id,
            pred: Some(q),
            succs,
        },
        Message::Refused {
            nonce: 9,
            reason: Refusal::StoreFull,
        },
    ]
}

// ----- id and address spaces -------------------------------------------------------------------

/// How many "consistent" peers a scenario talks about: peer `k` always has the same id and address.
const NPEERS: u8 = 16;

/// An id type and an address type, with generators that favour a small set of consistent peers
/// (so that scenarios reach deep states) but can produce any value (so that hostile peers lie).
trait Space {
    type I: RingId;
    type A: Address;
    /// Consistent peer `k` (`k < NPEERS`).
    fn peer(k: u8) -> Peer<Self::I, Self::A>;
    /// Any id.
    fn raw_id(u: &mut Unstructured) -> Result<Self::I>;
    /// Any address.
    fn raw_addr(u: &mut Unstructured) -> Result<Self::A>;
}

/// Ids on a 6-bit ring, one-byte addresses: collisions everywhere.
struct Small;
impl Space for Small {
    type I = SmallId<6>;
    type A = u8;
    fn peer(k: u8) -> Peer<SmallId<6>, u8> {
        Peer {
            id: SmallId::new(k.wrapping_mul(4).wrapping_add(2)),
            addr: k,
        }
    }
    fn raw_id(u: &mut Unstructured) -> Result<SmallId<6>> {
        Ok(SmallId::new(byte(u)?))
    }
    fn raw_addr(u: &mut Unstructured) -> Result<u8> {
        byte(u)
    }
}

/// 64-bit ids, 32-bit addresses.
struct Wide;
impl Space for Wide {
    type I = Id64;
    type A = u32;
    fn peer(k: u8) -> Peer<Id64, u32> {
        Peer {
            id: Id64(((k as u64) << 60) | 0x0123_4567),
            addr: 1000 + k as u32,
        }
    }
    fn raw_id(u: &mut Unstructured) -> Result<Id64> {
        Ok(Id64(u.arbitrary()?))
    }
    fn raw_addr(u: &mut Unstructured) -> Result<u32> {
        Ok(1000 + (byte(u)? as u32 % 32))
    }
}

/// Real nodes: SHA-1 ids and IP transport addresses.
struct Real;
impl Space for Real {
    type I = NodeId;
    type A = TransportAddr;
    fn peer(k: u8) -> Peer<NodeId, TransportAddr> {
        Peer {
            id: NodeId::sha1_of(&[k]),
            addr: TransportAddr(SocketAddr::new(
                IpAddr::V4(Ipv4Addr::new(10, 0, 0, k)),
                4000 + k as u16,
            )),
        }
    }
    fn raw_id(u: &mut Unstructured) -> Result<NodeId> {
        Ok(NodeId(u.arbitrary()?))
    }
    fn raw_addr(u: &mut Unstructured) -> Result<TransportAddr> {
        let ip = if byte(u)? & 1 == 0 {
            IpAddr::V4(Ipv4Addr::from(u.arbitrary::<[u8; 4]>()?))
        } else {
            IpAddr::V6(Ipv6Addr::from(u.arbitrary::<[u8; 16]>()?))
        };
        Ok(TransportAddr(SocketAddr::new(ip, u.arbitrary()?)))
    }
}

fn byte(u: &mut Unstructured) -> Result<u8> {
    u.arbitrary::<u8>()
}

/// A peer: mostly a consistent one (`byte < 0xf0`), else any id at any address.
fn gen_peer<S: Space>(u: &mut Unstructured) -> Result<Peer<S::I, S::A>> {
    let b = byte(u)?;
    if b < 0xf0 {
        Ok(S::peer(b % NPEERS))
    } else {
        Ok(Peer {
            id: S::raw_id(u)?,
            addr: S::raw_addr(u)?,
        })
    }
}

fn gen_id<S: Space>(u: &mut Unstructured) -> Result<S::I> {
    Ok(gen_peer::<S>(u)?.id)
}

fn gen_addr<S: Space>(u: &mut Unstructured) -> Result<S::A> {
    Ok(gen_peer::<S>(u)?.addr)
}

fn gen_opt_peer<S: Space>(u: &mut Unstructured) -> Result<Option<Peer<S::I, S::A>>> {
    Ok(if byte(u)? & 1 == 0 {
        None
    } else {
        Some(gen_peer::<S>(u)?)
    })
}

fn gen_peers<S: Space, const N: usize>(
    u: &mut Unstructured,
) -> Result<arrayvec_like::Bounded<Peer<S::I, S::A>, N>> {
    let n = byte(u)? as usize % (N + 1);
    let mut v = Vec::with_capacity(n);
    for _ in 0..n {
        v.push(gen_peer::<S>(u)?);
    }
    Ok(arrayvec_like::Bounded(v))
}

/// `ip2p` takes its bounded lists as `arrayvec::ArrayVec`, which is not a dependency here: build
/// them through `FromIterator` from a `Vec` that is already within the bound.
mod arrayvec_like {
    pub struct Bounded<T, const N: usize>(pub Vec<T>);
    impl<T, const N: usize> Bounded<T, N> {
        pub fn collect<C: FromIterator<T>>(self) -> C {
            debug_assert!(self.0.len() <= N);
            self.0.into_iter().collect()
        }
    }
}

fn gen_value(u: &mut Unstructured) -> Result<Vec<u8>> {
    let n = byte(u)? as usize % 80;
    Ok(u.bytes(n)?.to_vec())
}

fn gen_refusal(u: &mut Unstructured) -> Result<Refusal> {
    Ok(match byte(u)? % 3 {
        0 => Refusal::NotMember,
        1 => Refusal::StoreFull,
        _ => Refusal::ValueTooLarge,
    })
}

/// Nonces: small ones match the node's requests (its nonces count from 0).
fn gen_nonce(u: &mut Unstructured) -> Result<u32> {
    let b = byte(u)?;
    if b == 0xff {
        u.arbitrary()
    } else {
        Ok(b as u32)
    }
}

/// Any message the wire format can carry.
fn gen_message<S: Space>(u: &mut Unstructured) -> Result<Message<S::I, S::A>> {
    Ok(match byte(u)? % 15 {
        0 => Message::FindSuccessor {
            nonce: gen_nonce(u)?,
            key: gen_id::<S>(u)?,
        },
        1 => Message::Found {
            nonce: gen_nonce(u)?,
            owner: gen_peer::<S>(u)?,
            alternates: gen_peers::<S, MAX_HINTS>(u)?.collect(),
        },
        2 => Message::Closer {
            nonce: gen_nonce(u)?,
            next: gen_peers::<S, MAX_HINTS>(u)?.collect(),
        },
        3 => Message::GetState {
            nonce: gen_nonce(u)?,
        },
        4 => Message::State {
            nonce: gen_nonce(u)?,
            id: gen_id::<S>(u)?,
            pred: gen_opt_peer::<S>(u)?,
            succs: gen_peers::<S, MAX_SUCCESSORS>(u)?.collect(),
        },
        5 => Message::Notify {
            id: gen_id::<S>(u)?,
        },
        6 => Message::Ping {
            nonce: gen_nonce(u)?,
        },
        7 => Message::Pong {
            nonce: gen_nonce(u)?,
        },
        8 => Message::Store {
            nonce: gen_nonce(u)?,
            key: gen_id::<S>(u)?,
            value: gen_value(u)?,
        },
        9 => Message::Stored {
            nonce: gen_nonce(u)?,
        },
        10 => Message::Fetch {
            nonce: gen_nonce(u)?,
            key: gen_id::<S>(u)?,
        },
        11 => Message::Value {
            nonce: gen_nonce(u)?,
            value: if byte(u)? & 1 == 0 {
                None
            } else {
                Some(gen_value(u)?)
            },
        },
        12 => {
            let n = byte(u)? as usize % 20;
            let mut items = Vec::with_capacity(n);
            for _ in 0..n {
                items.push((gen_id::<S>(u)?, gen_value(u)?));
            }
            Message::Replicate { items }
        }
        13 => Message::Leave {
            id: gen_id::<S>(u)?,
            pred: gen_opt_peer::<S>(u)?,
            succs: gen_peers::<S, MAX_SUCCESSORS>(u)?.collect(),
        },
        _ => Message::Refused {
            nonce: gen_nonce(u)?,
            reason: gen_refusal(u)?,
        },
    })
}

// ----- chord_node ------------------------------------------------------------------------------

/// Most steps one scenario runs (the fuzzer's inputs are short anyway; this keeps every run bounded).
const MAX_STEPS: usize = 400;
/// Requests of the node remembered so that the scenario can answer them.
const REMEMBERED: usize = 16;

/// Fuzz body: drive one Chord node through the scenario in `data` and check its invariants after
/// every step (see the module docs and `spec/fuzzing.md`).
pub fn chord_node(data: &[u8]) {
    let mut u = Unstructured::new(data);
    let Ok(head) = byte(&mut u) else { return };
    // running out of bytes mid-scenario is the normal way a scenario ends
    let _ = if head & 1 == 0 {
        Driver::<Small>::run(head >> 1, &mut u)
    } else {
        Driver::<Wide>::run(head >> 1, &mut u)
    };
}

/// A message and the address it goes to or comes from.
type Addressed<S> = (<S as Space>::A, Message<<S as Space>::I, <S as Space>::A>);

struct Driver<S: Space> {
    node: Node<S::I, S::A>,
    now: Time,
    /// The node's recent requests: (to, request).
    sent: Vec<Addressed<S>>,
    /// Operations accepted and not yet completed.
    open_ops: BTreeSet<u64>,
    next_op: u64,
    /// Bounds derived from the node's (clamped) configuration.
    max_delay: Duration,
}

/// The decoded configuration: every field from one byte, within and beyond its legal range (the
/// node clamps). Values are small so that limits are actually reached.
fn gen_config(u: &mut Unstructured) -> Result<Config> {
    Ok(Config {
        variant: if byte(u)? & 1 == 0 {
            Variant::Zave
        } else {
            Variant::Original
        },
        successors: byte(u)? % 20,
        fingers: byte(u)? & 1 == 0,
        stabilize_every: Duration::from_millis(1 + byte(u)? as u64 * 8),
        request_timeout: Duration::from_millis(1 + byte(u)? as u64 * 8),
        replicate_every: byte(u)? as u32 % 6,
        max_pending: byte(u)? as u16 % 10,
        max_hops: byte(u)? as u16 % 10,
        max_keys: byte(u)? as u32 % 20,
        max_value_len: byte(u)? as u32,
        nonce_bits: byte(u)? % 40,
        request_retries: byte(u)? % 3,
    })
}

impl<S: Space> Driver<S> {
    fn run(mode: u8, u: &mut Unstructured) -> Result<()> {
        let config = gen_config(u)?;
        let me = S::peer(byte(u)? % NPEERS);
        let node = match mode % 3 {
            0 => Node::new(me, config),
            m => {
                // a member built directly (as simulations do), from a possibly hostile list
                let pred = gen_opt_peer::<S>(u)?.filter(|p| p.id != me.id);
                let succs = gen_peers::<S, { MAX_SUCCESSORS + 2 }>(u)?.0;
                let mut n = Node::with_state(me, config, pred, &succs, Time::ZERO);
                if m == 2 {
                    let mut members = gen_peers::<S, 16>(u)?.0;
                    members.push(me);
                    members.sort_by_key(|p| p.id);
                    members.dedup_by_key(|p| p.id);
                    n.set_ideal_fingers(&members);
                }
                n
            }
        };
        let c = node.config();
        let max_delay = c.stabilize_every.max(c.request_timeout);
        let mut d = Driver::<S> {
            node,
            now: Time::ZERO,
            sent: Vec::new(),
            open_ops: BTreeSet::new(),
            next_op: 0,
            max_delay,
        };
        d.check(false);
        let r = d.steps(u);
        d.quiesce();
        r
    }

    fn steps(&mut self, u: &mut Unstructured) -> Result<()> {
        for _ in 0..MAX_STEPS {
            if u.is_empty() {
                break;
            }
            match byte(u)? % 8 {
                0 => {
                    let cmd = self.gen_command(u)?;
                    self.input(Input::Command(cmd));
                }
                1 => {
                    let from = gen_addr::<S>(u)?;
                    let msg = gen_message::<S>(u)?;
                    self.input(Input::Message { from, msg });
                }
                2 | 3 => {
                    if let Some((from, msg)) = self.gen_reply(u)? {
                        self.input(Input::Message { from, msg });
                    }
                }
                4 | 5 => {
                    let dt = byte(u)? as u64 * 16;
                    self.advance(self.now + Duration::from_millis(dt));
                }
                6 => {
                    // straight to the next deadline
                    if let Some(t) = self.node.poll_timeout() {
                        self.advance(t.max(self.now));
                    }
                }
                _ => {
                    // the host restarted with another clock origin (snapshot restored elsewhere)
                    let to = Time::from_millis(u.arbitrary::<u16>()? as u64);
                    self.node.rebase_clock(self.now, to);
                    self.now = to;
                    self.check(false);
                }
            }
        }
        Ok(())
    }

    fn gen_command(&mut self, u: &mut Unstructured) -> Result<Command<S::I, S::A>> {
        let op = OpId(self.next_op);
        Ok(match byte(u)? % 6 {
            0 => Command::Create,
            1 => Command::Join {
                via: gen_addr::<S>(u)?,
            },
            2 => Command::Leave,
            3 => Command::Lookup {
                op,
                key: gen_id::<S>(u)?,
            },
            4 => Command::Put {
                op,
                key: gen_id::<S>(u)?,
                value: gen_value(u)?,
            },
            _ => Command::Get {
                op,
                key: gen_id::<S>(u)?,
            },
        })
    }

    /// A well-typed answer to one of the node's recent requests (mostly from the peer asked).
    fn gen_reply(&mut self, u: &mut Unstructured) -> Result<Option<Addressed<S>>> {
        if self.sent.is_empty() {
            return Ok(None);
        }
        let i = byte(u)? as usize % self.sent.len();
        let (to, req) = self.sent[i].clone();
        let kind = byte(u)?;
        let from = if kind & 0x80 != 0 {
            gen_addr::<S>(u)?
        } else {
            to
        };
        let Some(nonce) = req.nonce() else {
            return Ok(None);
        };
        if kind % 8 == 7 {
            let reason = gen_refusal(u)?;
            return Ok(Some((from, Message::Refused { nonce, reason })));
        }
        let msg = match req {
            Message::FindSuccessor { .. } => {
                if kind & 1 == 0 {
                    Message::Found {
                        nonce,
                        owner: gen_peer::<S>(u)?,
                        alternates: gen_peers::<S, MAX_HINTS>(u)?.collect(),
                    }
                } else {
                    Message::Closer {
                        nonce,
                        next: gen_peers::<S, MAX_HINTS>(u)?.collect(),
                    }
                }
            }
            Message::GetState { .. } => Message::State {
                nonce,
                // mostly the id that goes with the address asked
                id: match (0..NPEERS).map(S::peer).find(|p| p.addr == to) {
                    Some(p) if kind & 1 == 0 => p.id,
                    _ => gen_id::<S>(u)?,
                },
                pred: gen_opt_peer::<S>(u)?,
                succs: gen_peers::<S, MAX_SUCCESSORS>(u)?.collect(),
            },
            Message::Ping { .. } => Message::Pong { nonce },
            Message::Store { .. } => Message::Stored { nonce },
            Message::Fetch { .. } => Message::Value {
                nonce,
                value: if kind & 1 == 0 {
                    None
                } else {
                    Some(gen_value(u)?)
                },
            },
            _ => return Ok(None),
        };
        Ok(Some((from, msg)))
    }

    fn input(&mut self, input: Input<S::I, S::A>) {
        let op = match &input {
            Input::Command(
                Command::Lookup { op, .. } | Command::Put { op, .. } | Command::Get { op, .. },
            ) => Some(op.0),
            _ => None,
        };
        let before = self.node.clone();
        let rejected = self.node.stats().rejected;
        if op.is_some() {
            self.next_op += 1;
        }
        match self.node.handle(self.now, input.clone()) {
            Ok(()) => {
                if let Some(op) = op {
                    self.open_ops.insert(op);
                }
                assert_eq!(self.node.stats().rejected, rejected);
            }
            Err(e) => {
                assert!(!format!("{e}").is_empty());
                assert_eq!(
                    self.node.stats().rejected,
                    rejected + 1,
                    "a rejected input is counted"
                );
                assert!(
                    self.node == before,
                    "rejected input {input:?} ({e}) changed the node"
                );
            }
        }
        self.drain();
        self.check(false);
    }

    /// The host's timer fired at `t` (never earlier than the last input).
    fn advance(&mut self, t: Time) {
        self.now = t;
        self.node.handle_timeout(t);
        self.drain();
        self.check(true);
    }

    /// Take every output; check each one and that one step's output is bounded by the config.
    fn drain(&mut self) {
        let c = self.node.config();
        let r = c.successors as usize;
        let pending = c.max_pending as usize;
        let keys = c.max_keys as usize;
        // per step: a few sends per request that ended, a tick (stabilize, ping, finger, replicas of
        // every key to every successor in batches of 64), a leave or a new predecessor (hand-over)
        let bound = 16 + 4 * pending + (keys / 64 + 1) * (r + 2);
        let mut n = 0;
        while let Some(o) = self.node.poll() {
            n += 1;
            assert!(n <= bound, "more than {bound} outputs in one step");
            match o {
                Output::Send { to, msg } => {
                    self.check_message(&msg);
                    if matches!(
                        msg,
                        Message::FindSuccessor { .. }
                            | Message::GetState { .. }
                            | Message::Ping { .. }
                            | Message::Store { .. }
                            | Message::Fetch { .. }
                    ) {
                        if self.sent.len() == REMEMBERED {
                            self.sent.remove(0);
                        }
                        self.sent.push((to, msg));
                    }
                }
                Output::Event(e) => self.on_event(e),
            }
        }
    }

    fn check_message(&self, msg: &Message<S::I, S::A>) {
        let c = self.node.config();
        match msg {
            Message::State { succs, .. } | Message::Leave { succs, .. } => {
                assert!(succs.len() <= c.successors as usize)
            }
            Message::Replicate { items } => {
                assert!(
                    !items.is_empty() && items.len() <= 64,
                    "{} items",
                    items.len()
                )
            }
            _ => {}
        }
        if c.nonce_bits < 32 {
            if let Some(n) = msg.nonce() {
                // the node's own requests use nonce_bits; its answers echo the peer's nonce
                if matches!(
                    msg,
                    Message::FindSuccessor { .. }
                        | Message::GetState { .. }
                        | Message::Ping { .. }
                        | Message::Store { .. }
                        | Message::Fetch { .. }
                ) {
                    assert!(
                        n >> c.nonce_bits == 0,
                        "nonce {n} over {} bits",
                        c.nonce_bits
                    );
                }
            }
        }
    }

    fn on_event(&mut self, e: Event<S::I, S::A>) {
        match e {
            Event::LookupDone { op, hops, .. } => {
                assert!(hops <= self.node.config().max_hops.max(1));
                self.complete(op)
            }
            Event::PutDone { op, .. } | Event::GetDone { op, .. } | Event::OpFailed { op, .. } => {
                self.complete(op)
            }
            Event::Joined { .. } => assert_eq!(self.node.phase(), Phase::Member),
            Event::Left => assert_eq!(self.node.phase(), Phase::Left),
            Event::JoinFailed { .. } | Event::Isolated => {}
        }
    }

    fn complete(&mut self, op: OpId) {
        assert!(
            self.open_ops.remove(&op.0),
            "operation {op:?} completed twice or was never accepted"
        );
    }

    /// The node's invariants. `after_timeout`: `handle_timeout(now)` was the last call.
    fn check(&self, after_timeout: bool) {
        let n = &self.node;
        let c = n.config();
        let me = n.me();
        let succs = n.successors();
        assert!((1..=MAX_SUCCESSORS as u8).contains(&c.successors));
        assert!(
            succs.len() <= c.successors as usize,
            "{} successors",
            succs.len()
        );
        for (i, p) in succs.iter().enumerate() {
            assert_ne!(
                p.id, me.id,
                "the node is in its own successor list {succs:?}"
            );
            assert!(
                succs[..i].iter().all(|q| q.id != p.id),
                "duplicate successor in {succs:?}"
            );
        }
        if let Some(p) = n.predecessor() {
            assert_ne!(p.id, me.id, "the node is its own predecessor");
        }
        if c.fingers {
            assert_eq!(n.fingers().len(), S::I::BITS as usize);
        } else {
            assert!(n.fingers().is_empty());
        }
        for f in n.fingers().iter().flatten() {
            assert_ne!(f.id, me.id, "the node is its own finger");
        }
        assert!(n.pending_requests() <= c.max_pending as usize);
        assert!(n.store().len() <= c.max_keys as usize);
        for v in n.store().values() {
            assert!(v.len() <= c.max_value_len as usize);
        }
        match n.poll_timeout() {
            Some(t) => {
                assert!(
                    t <= self.now + self.max_delay,
                    "deadline {t} too far after {}",
                    self.now
                );
                if after_timeout {
                    assert!(t > self.now, "deadline {t} not acted on at {}", self.now);
                }
            }
            None => assert_ne!(n.phase(), Phase::Member, "a member with no deadline"),
        }
        match n.phase() {
            Phase::Left => {
                assert_eq!(n.pending_requests(), 0);
                assert!(succs.is_empty() && n.predecessor().is_none() && n.store().is_empty());
                assert!(self.open_ops.is_empty(), "operations survived leave");
            }
            Phase::Idle | Phase::Joining => assert!(self.open_ops.is_empty()),
            Phase::Member => {}
        }
        assert!(n.memory_bytes() > 0);
    }

    /// No more inputs: every accepted operation and any join must end in bounded time: at most
    /// `max_hops` hops and then one owner plus its alternates, each tried `request_retries + 1`
    /// times.
    fn quiesce(&mut self) {
        let c = self.node.config();
        let rounds =
            (c.max_hops as usize + 4 + ip2p::chord::MAX_HINTS) * (c.request_retries as usize + 1);
        let step = c.request_timeout;
        for _ in 0..rounds {
            self.advance(self.now + step);
        }
        assert!(
            self.open_ops.is_empty(),
            "operations {:?} never completed",
            self.open_ops
        );
        assert_ne!(self.node.phase(), Phase::Joining, "a join never ended");
    }
}

// ----- seeds -----------------------------------------------------------------------------------

/// Seed scenarios for `chord_node`, written in the byte format [`chord_node`] reads.
pub fn node_seeds() -> Vec<(String, Vec<u8>)> {
    // configuration bytes: variant, r, fingers, stabilize, timeout, replicate, pending, hops, keys,
    // value len, nonce bits
    const ZAVE: [u8; 11] = [0, 3, 0, 10, 20, 2, 8, 6, 16, 64, 32];
    const ORIGINAL: [u8; 11] = [1, 2, 1, 10, 20, 0, 4, 4, 8, 32, 8];
    let cfg = |c: [u8; 11]| c.to_vec();
    let mut out = Vec::new();
    for (space, head) in [("small", 0u8), ("id64", 1u8)] {
        // create, put, get, lookup, tick, leave
        let mut s = vec![head];
        s.extend(cfg(ZAVE));
        s.push(0); // me = peer 0
        s.extend([0, 0]); // Create
        s.extend([0, 4, 3, 3, b'a', b'b', b'c']); // Put key=peer 3 value "abc"
        s.extend([0, 5, 3]); // Get key=peer 3
        s.extend([0, 3, 7]); // Lookup key=peer 7
        s.extend([4, 10, 6, 4, 10]); // ticks
        s.extend([1, 5, 2]); // Notify from peer 2 (a predecessor appears)
        s.extend([0, 2]); // Leave
        out.push((format!("{space}-create-put-get-leave"), s));

        // join through peer 1, answers from the ring
        let mut s = vec![head];
        s.extend(cfg(ZAVE));
        s.push(4); // me = peer 4
        s.extend([0, 1, 1]); // Join via peer 1
        s.extend([2, 0, 0, 5]); // Found: owner peer 5
        s.extend([2, 1, 0, 1, 6, 3, 5, 6, 7]); // State of peer 5: pred peer 6, succs 5, 6, 7
        s.extend([4, 20, 2, 2, 0, 1, 4, 2, 5, 6]); // tick, answer stabilize
        s.extend([0, 3, 9]); // Lookup
        s.extend([2, 3, 1, 2, 8, 9]); // Closer
        s.extend([6, 6, 6]);
        out.push((format!("{space}-join"), s));

        // a member built with a list and ideal fingers, hostile messages, timeouts
        let mut s = vec![head | (2 << 1)];
        s.extend(cfg(ORIGINAL));
        s.push(8); // me = peer 8
        s.extend([1, 7, 4, 9, 10, 11, 12]); // pred 7, succs 9..12
        s.extend([6, 1, 2, 3, 4, 5, 6]); // members
        s.extend([1, 4, 0, 9, 1, 8, 3, 9, 8, 8]); // State from peer 0 naming ourselves
        s.extend([1, 13, 9, 1, 7, 2, 10, 11]); // Leave from peer 9
        s.extend([1, 12, 3, 1, 2, 3, 0, 2, 4, 5]); // Replicate
        s.extend([0, 3, 2, 2, 0, 0, 1, 5, 5, 5]);
        s.extend([7, 0x10, 0x00, 4, 50, 6, 6]);
        out.push((format!("{space}-member-hostile"), s));
    }
    out
}
