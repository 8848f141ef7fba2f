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
//! - [`chord_sim`]: a whole network of real nodes in [`ip2p::sim::Sim`] (ring size, `r`, variant,
//!   then joins, crashes, leaves, puts, gets, time, loss), with Zave's invariants checked after every
//!   simulator step while the scenario stays within the model's fault model, and at the end an ideal
//!   ring and every stored key held; outside it (loss, Original), only bounds and that every
//!   operation ends.
//!
//! A scenario is read one byte at a time (`byte % n` picks among `n` choices) so that a person can
//! write a seed by hand; [`node_seeds`] builds the committed seeds that way.

// Target bodies of the other protocols, one file each beside this one.
#[path = "broker.rs"]
pub mod broker_targets;
#[path = "ip2p.rs"]
pub mod ip2p_targets;
#[path = "relay.rs"]
pub mod relay_targets;
#[path = "samp.rs"]
pub mod samp_targets;
#[path = "sip.rs"]
pub mod sip_targets;
#[path = "sms_at.rs"]
pub mod sms_at_targets;
#[path = "sms.rs"]
pub mod sms_targets;
#[path = "stunt.rs"]
pub mod stunt_targets;
#[path = "upnp.rs"]
pub mod upnp_targets;

use std::collections::BTreeSet;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::Duration;

use arbitrary::{Result, Unstructured};
use ip2p::chord::invariants;
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
            avoid: [q.addr].into_iter().collect(),
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
            avoid: gen_peers::<S, { ip2p::chord::MAX_AVOID }>(u)?
                .0
                .into_iter()
                .map(|p| p.addr)
                .collect(),
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

// ----- chord_sim -------------------------------------------------------------------------------

/// Environment events one `chord_sim` scenario runs at most.
const SIM_EVENTS: usize = 48;
/// Nodes one `chord_sim` scenario creates at most (initial ring and joiners).
const SIM_NODES: usize = 28;
/// Simulator events one `chord_sim` scenario processes at most (keeps every run bounded; a run
/// that reaches it stops early without its end-of-scenario checks).
const SIM_STEPS: u64 = 60_000;

/// Fuzz body: a whole network of real Chord nodes in [`ip2p::sim::Sim`], driven by a scenario
/// decoded from `data` (ring, `r`, variant, then joins, crashes, leaves, puts, gets, lookups, time,
/// loss), with Zave's invariants checked after every simulator step when the scenario stays within
/// the model's fault model. See `spec/fuzzing.md`.
pub fn chord_sim(data: &[u8]) {
    let mut u = Unstructured::new(data);
    let Ok(flags) = byte(&mut u) else { return };
    if flags & 0x10 == 0 {
        SimDriver::<Id64>::run(flags, &mut u);
    } else {
        // 256 points: neighbours close together, keys equal to node ids
        SimDriver::<SmallId<8>>::run(flags, &mut u);
    }
}

/// The decoded head of a `chord_sim` scenario.
#[derive(Debug)]
struct SimSetup {
    variant: Variant,
    lossy: bool,
    build: u8,
    r: usize,
    n: usize,
    config: ip2p::sim::SimConfig,
    seed: u64,
}

fn gen_sim_setup(flags: u8, u: &mut Unstructured) -> Result<SimSetup> {
    let variant = if flags & 1 == 0 {
        Variant::Zave
    } else {
        Variant::Original
    };
    let lossy = flags & 2 != 0;
    let fingers = flags & 4 != 0;
    let wire = flags & 8 != 0;
    let build = (flags >> 5) & 3;
    let r = 2 + byte(u)? as usize % 3;
    let n = (3 + byte(u)? as usize % 10).max(r + 1);
    let stabilize = 100 + (byte(u)? as u64 % 10) * 100;
    let replicate_every = 1 + byte(u)? as u32 % 4;
    let max_pending = 4 + byte(u)? as u16 % 60;
    let request_retries = byte(u)? % 3;
    let lat = byte(u)? as u64;
    let (latency_min, latency_max, loss) = if lossy {
        // anything goes: up to 50% loss, latencies beyond the request timeout (false suspicions)
        let loss = (byte(u)? % 51) as f64 / 100.0;
        (1, 1 + lat * 4, loss)
    } else {
        // the model's timing: an answer from a live peer always beats the time-out
        (1 + lat % 10, 10 + lat % 60, 0.0)
    };
    let request_timeout = 2 * latency_max.min(70) + 20 + (byte(u)? as u64 % 8) * 50;
    let seed = u.arbitrary::<u16>()? as u64;
    let chord = Config {
        variant,
        successors: r as u8,
        fingers,
        stabilize_every: Duration::from_millis(stabilize),
        request_timeout: Duration::from_millis(request_timeout),
        replicate_every,
        max_pending,
        max_hops: 16,
        max_keys: 1 << 16,
        max_value_len: 64,
        nonce_bits: 32,
        request_retries,
    };
    Ok(SimSetup {
        variant,
        lossy,
        build,
        r,
        n,
        config: ip2p::sim::SimConfig {
            chord,
            latency_min: Duration::from_millis(latency_min),
            latency_max: Duration::from_millis(latency_max),
            loss,
            wire,
        },
        seed,
    })
}

/// Accepted operations not completed yet: op → (node, put key and value).
type OpenOps<I> = std::collections::BTreeMap<u64, (u32, Option<(I, Vec<u8>)>)>;

struct SimDriver<I: RingId> {
    sim: ip2p::sim::Sim<I>,
    r: usize,
    /// Zave, no loss, crashes and leaves within the model's bound: the ring invariants must hold.
    within: bool,
    /// Check the ring invariants after every step (off while a from-scratch ring is being built).
    checking: bool,
    /// Dead nodes dropped from the fault-model ring after a settle found the ring ideal (their
    /// replacements took over, no list names them any more).
    forgotten: Vec<bool>,
    /// Members at the last settle (or in the initial ring): only they protect others in the
    /// fault-model bound.
    established: Vec<bool>,
    /// Crashes and leaves since the last settle that ended with the ring ideal and a full
    /// replication period.
    window: usize,
    /// Every window had fewer than `r` crashes and leaves: `KeysHeld` must hold.
    keys_promised: bool,
    /// Keys whose put completed, with their values.
    stored: Vec<(I, Vec<u8>)>,
    /// Accepted operations not completed yet: op → (node, put key and value).
    open: OpenOps<I>,
    /// The environment's events so far, for the failure message.
    trace: Vec<String>,
    steps: u64,
    /// Messages allowed on the wire at once.
    flight_bound: usize,
}

impl<I: RingId> SimDriver<I> {
    fn run(flags: u8, u: &mut Unstructured) {
        let Ok(setup) = gen_sim_setup(flags, u) else {
            return;
        };
        let within = setup.variant == Variant::Zave && !setup.lossy;
        let c = &setup.config.chord;
        // per node: its pending requests and their answers, one round of maintenance to every
        // successor (stabilize, replicas, hand-over), and the answers to other nodes' requests
        let per_node = 4 * c.max_pending as usize + 8 * (setup.r + 2) + 32;
        let mut d = SimDriver {
            sim: ip2p::sim::Sim::<I>::new(setup.config.clone(), setup.seed),
            r: setup.r,
            within,
            checking: within,
            forgotten: Vec::new(),
            established: Vec::new(),
            window: 0,
            keys_promised: true,
            stored: Vec::new(),
            open: Default::default(),
            trace: vec![format!("{setup:?}")],
            steps: 0,
            flight_bound: SIM_NODES * per_node,
        };
        if d.build(&setup).is_none() {
            return;
        }
        d.establish();
        for _ in 0..SIM_EVENTS {
            if u.is_empty() || d.steps >= SIM_STEPS {
                break;
            }
            if d.event(u).is_err() || d.event_done().is_none() {
                break;
            }
        }
        if d.steps < SIM_STEPS {
            d.finish();
        }
        if std::env::var_os("CHORD_SIM_TRACE").is_some() {
            eprintln!(
                "{}\n  ({} steps, {} members, {} keys stored, {:?})",
                d.trace.join("\n  "),
                d.steps,
                d.members().len(),
                d.stored.len(),
                d.sim.stats()
            );
        }
    }

    fn event_done(&self) -> Option<()> {
        (self.steps < SIM_STEPS).then_some(())
    }

    // ----- building ----------------------------------------------------------------------------

    fn build(&mut self, s: &SimSetup) -> Option<()> {
        let period = s.config.chord.stabilize_every;
        match s.build {
            // an ideal ring of r+1 members, the others join through the protocol at once
            1 => {
                self.sim.add_ring(self.r + 1);
                self.trace.push(format!("add_ring({})", self.r + 1));
                for k in self.r + 1..s.n {
                    let via = (k % (self.r + 1)) as u32;
                    self.join_new(via);
                }
                self.check("build");
            }
            // from scratch: node 0 creates, the others join one at a time (no checks while the
            // ring is smaller than r+1: Zave's invariants assume a base of r+1 members)
            2 => {
                self.checking = false;
                let first = self.sim.add_random_node().ok()?;
                self.sim.create(first).ok()?;
                self.trace.push(format!("create {first}"));
                for k in 1..s.n {
                    self.join_new(k as u32 - 1);
                    let limit = self.sim.now() + period * 40;
                    self.run_ops_done(limit);
                    self.run_for(period * 3);
                }
                self.settle("built from scratch");
                self.checking = self.within;
            }
            _ => {
                self.sim.add_ring(s.n);
                self.trace.push(format!("add_ring({})", s.n));
                self.check("build");
            }
        }
        self.event_done()
    }

    fn join_new(&mut self, via: u32) -> Option<u32> {
        if self.sim.len() >= SIM_NODES {
            return None;
        }
        let i = self.sim.add_random_node().ok()?;
        let ok = self.sim.join(i, via).is_ok();
        self.trace.push(format!(
            "node {i} ({:?}) joins via {via}: {ok}",
            self.sim.node(i).map(|n| n.me().id)
        ));
        Some(i)
    }

    // ----- the environment ---------------------------------------------------------------------

    fn members(&self) -> Vec<u32> {
        (0..self.sim.len() as u32)
            .filter(|&i| self.sim.is_member(i))
            .collect()
    }

    fn pick(list: &[u32], u: &mut Unstructured) -> Result<Option<u32>> {
        let b = byte(u)? as usize;
        Ok((!list.is_empty()).then(|| list[b % list.len()]))
    }

    fn event(&mut self, u: &mut Unstructured) -> Result<()> {
        let members = self.members();
        match byte(u)? % 12 {
            0 | 1 => {
                // a join: a new node, or an idle one (its last join failed) again
                let via = if self.within {
                    Self::pick(&members, u)?
                } else {
                    Some(byte(u)? as u32 % self.sim.len().max(1) as u32)
                };
                let Some(via) = via else { return Ok(()) };
                let idle: Vec<u32> = (0..self.sim.len() as u32)
                    .filter(|&i| {
                        self.sim.is_alive(i)
                            && self.sim.node(i).is_some_and(|n| n.phase() == Phase::Idle)
                    })
                    .collect();
                match Self::pick(&idle, u)? {
                    Some(i) if byte(u)? & 1 == 0 && i != via => {
                        let ok = self.sim.join(i, via);
                        self.trace
                            .push(format!("idle node {i} joins via {via}: {ok:?}"));
                    }
                    _ => {
                        self.join_new(via);
                    }
                }
                self.check("join");
            }
            2 => {
                let candidates: Vec<u32> = if self.within {
                    members
                } else {
                    (0..self.sim.len() as u32)
                        .filter(|&i| self.sim.is_alive(i))
                        .collect()
                };
                let Some(i) = Self::pick(&candidates, u)? else {
                    return Ok(());
                };
                if self.within && !self.may_remove(i) {
                    self.trace.push(format!("(crash {i} refused: fault model)"));
                    return Ok(());
                }
                self.sim.crash(i).expect("crash a live node");
                self.open.retain(|_, (n, _)| *n != i);
                self.window += 1;
                self.keys_promised &= self.window < self.r;
                self.trace.push(format!("crash {i}"));
                self.check("crash");
            }
            3 => {
                let Some(i) = Self::pick(&members, u)? else {
                    return Ok(());
                };
                if self.within && !self.may_remove(i) {
                    self.trace.push(format!("(leave {i} refused: fault model)"));
                    return Ok(());
                }
                let ok = self.sim.leave(i);
                self.window += 1;
                self.keys_promised &= self.window < self.r;
                self.trace.push(format!("leave {i}: {ok:?}"));
                self.check("leave");
            }
            4 | 5 => {
                let Some(i) = Self::pick(&members, u)? else {
                    return Ok(());
                };
                let key = self.sim.random_key();
                let len = byte(u)? as usize % 8;
                let value = u.bytes(len)?.to_vec();
                let r = self.sim.put(i, key, value.clone());
                self.trace.push(format!("put {key:?} at {i}: {r:?}"));
                if let Ok(op) = r {
                    self.open.insert(op.0, (i, Some((key, value))));
                }
                self.check("put");
            }
            6 | 7 => {
                let Some(i) = Self::pick(&members, u)? else {
                    return Ok(());
                };
                let b = byte(u)? as usize;
                let key = if b < 0xc0 && !self.stored.is_empty() {
                    self.stored[b % self.stored.len()].0
                } else {
                    self.sim.random_key()
                };
                let r = if b & 1 == 0 {
                    self.sim.get(i, key)
                } else {
                    self.sim.lookup(i, key)
                };
                self.trace.push(format!("get/lookup {key:?} at {i}: {r:?}"));
                if let Ok(op) = r {
                    self.open.insert(op.0, (i, None));
                }
                self.check("get");
            }
            8 | 9 => {
                let dt = Duration::from_millis(byte(u)? as u64 * 10);
                self.trace.push(format!("run for {dt:?}"));
                self.run_for(dt);
            }
            10 => {
                let n = byte(u)? % 64;
                self.trace.push(format!("{n} steps"));
                for _ in 0..n {
                    self.step();
                }
            }
            _ => {
                if self.within || byte(u)? & 1 == 0 {
                    self.trace.push("settle".into());
                    self.settle("settle");
                } else {
                    let loss = (byte(u)? % 51) as f64 / 100.0;
                    self.trace.push(format!("loss {loss}"));
                    self.sim.set_loss(loss);
                }
            }
        }
        Ok(())
    }

    /// The model's bound on crashes, applied to graceful leaves too, blind to protocol state:
    /// after `i` crashes or leaves, more than `r` established members stay alive, and every live
    /// member has a live established member among the `r` nodes that follow it in identifier order
    /// among the nodes that have been members.
    ///
    /// - Dead nodes and nodes that left count (as gone) until a settle has seen the ring repaired
    ///   without them: a leave tells only the leaver's neighbours, so a node further back that
    ///   lists the leaver learns of it only through them, exactly as of a crash.
    /// - A node that joined since the last settle protects nobody yet: the nodes before it do not
    ///   list it until stabilization has run. (Counting it at once, as the model's bound does, let
    ///   a crash and a leave within one round take both entries of an `r = 2` list: see
    ///   `spec/fuzzing.md`.)
    fn may_remove(&self, i: u32) -> bool {
        let nodes = self.sim.nodes();
        let mut ring: Vec<(I, usize)> = (0..nodes.len())
            .filter(|&j| {
                matches!(nodes[j].phase(), Phase::Member | Phase::Left)
                    && !self.forgotten.get(j).copied().unwrap_or(false)
            })
            .map(|j| (nodes[j].me().id, j))
            .collect();
        ring.sort_unstable();
        let up = |j: usize| {
            j != i as usize
                && self.sim.is_member(j as u32)
                && self.established.get(j).copied().unwrap_or(false)
        };
        let live = ring.iter().filter(|&&(_, j)| up(j)).count();
        let r = self.r;
        live > r
            && ring
                .iter()
                .enumerate()
                .filter(|&(_, &(_, m))| m != i as usize && self.sim.is_member(m as u32))
                .all(|(k, _)| (1..=r.min(ring.len() - 1)).any(|d| up(ring[(k + d) % ring.len()].1)))
    }

    /// The members now are established (the ring was just found ideal).
    fn establish(&mut self) {
        self.established = (0..self.sim.len() as u32)
            .map(|i| self.sim.is_member(i))
            .collect();
    }

    // ----- running and checking ----------------------------------------------------------------

    fn step(&mut self) -> bool {
        if self.steps >= SIM_STEPS || !self.sim.step() {
            return false;
        }
        self.steps += 1;
        self.check("step");
        true
    }

    fn run_until(&mut self, t: Time) {
        while self.sim.next_event_time().is_some_and(|at| at <= t) {
            if !self.step() {
                return;
            }
        }
        self.sim.run_until(t);
    }

    fn run_for(&mut self, d: Duration) {
        let t = self.sim.now() + d;
        self.run_until(t);
    }

    /// Run until every operation has ended or until `limit`.
    fn run_ops_done(&mut self, limit: Time) -> bool {
        while self.sim.ops_in_flight() > 0 {
            match self.sim.next_event_time() {
                Some(at) if at <= limit => {
                    if !self.step() {
                        return false;
                    }
                }
                _ => return false,
            }
        }
        true
    }

    fn fail(&self, what: &str) -> ! {
        let nodes: Vec<String> = self
            .sim
            .nodes()
            .iter()
            .enumerate()
            .map(|(i, n)| {
                format!(
                    "node {i} {:?} {}{:?}: succs {:?} pred {:?} keys {}",
                    n.me().id,
                    if self.sim.is_alive(i as u32) {
                        ""
                    } else {
                        "DEAD "
                    },
                    n.phase(),
                    n.successors().iter().map(|p| p.addr).collect::<Vec<_>>(),
                    n.predecessor().map(|p| p.addr),
                    n.store().len()
                )
            })
            .collect();
        panic!(
            "chord_sim: {what}\nscenario:\n  {}\nnodes:\n  {}",
            self.trace.join("\n  "),
            nodes.join("\n  ")
        );
    }

    /// The checks after every step.
    fn check(&mut self, at: &str) {
        for rec in self.sim.take_events() {
            let op = match rec.event {
                Event::LookupDone { op, .. }
                | Event::GetDone { op, .. }
                | Event::OpFailed { op, .. } => op,
                Event::PutDone { op, .. } => op,
                _ => continue,
            };
            match self.open.remove(&op.0) {
                Some((node, put)) => {
                    if node != rec.node {
                        self.fail(&format!("{op:?} of node {node} completed at {}", rec.node));
                    }
                    if let (Event::PutDone { .. }, Some(kv)) = (&rec.event, put) {
                        self.stored.push(kv);
                    }
                }
                None => self.fail(&format!(
                    "{op:?} completed twice or never accepted ({:?})",
                    rec.event
                )),
            }
        }
        let st = self.sim.stats();
        if st.timer_stalls != 0 {
            self.fail("a node left a deadline at or before now after handle_timeout");
        }
        if self.sim.messages_in_flight() > self.flight_bound {
            self.fail(&format!(
                "{} messages in flight (bound {})",
                self.sim.messages_in_flight(),
                self.flight_bound
            ));
        }
        for (i, n) in self.sim.nodes().iter().enumerate() {
            if !self.sim.is_alive(i as u32) {
                continue;
            }
            let c = n.config();
            if n.pending_requests() > c.max_pending as usize
                || n.successors().len() > self.r
                || n.store().len() > c.max_keys as usize
            {
                self.fail(&format!(
                    "node {i}: {} pending, {} successors, {} keys",
                    n.pending_requests(),
                    n.successors().len(),
                    n.store().len()
                ));
            }
        }
        if self.checking {
            if let Err(inv) = self.sim.check_invariants() {
                self.fail(&format!(
                    "{} violated after {at} at {} (within the fault model)",
                    inv.name(),
                    self.sim.now()
                ));
            }
        }
    }

    /// How long every operation may take: every hop, then the owner and its alternates, each
    /// request tried `request_retries + 1` times.
    fn op_bound(&self) -> Duration {
        let c = &self.sim.config().chord;
        let rounds = (c.max_hops as u32 + 4 + MAX_HINTS as u32) * (c.request_retries as u32 + 1);
        c.request_timeout * rounds + c.stabilize_every * 2
    }

    /// Let the network settle: every operation ends; within the fault model the ring becomes
    /// ideal among the live members, stays so through a replication period, and every stored key
    /// is still held (`KeysHeld`) if no window had `r` crashes and leaves.
    fn settle(&mut self, why: &str) {
        let limit = self.sim.now() + self.op_bound();
        if !self.run_ops_done(limit) {
            if self.steps >= SIM_STEPS {
                return;
            }
            self.fail(&format!(
                "{} operations never ended ({why}): {:?}",
                self.sim.ops_in_flight(),
                self.open
            ));
        }
        if !self.within {
            return;
        }
        let c = self.sim.config().chord.clone();
        let mut ideal = self.sim.check_ring();
        for _ in 0..4 * SIM_NODES {
            if ideal.is_ok() || self.steps >= SIM_STEPS {
                break;
            }
            self.run_for(c.stabilize_every);
            ideal = self.sim.check_ring();
        }
        if self.steps >= SIM_STEPS {
            return;
        }
        if let Err(e) = ideal {
            self.fail(&format!(
                "the ring is not ideal after settling ({why}): {e}"
            ));
        }
        // a full replication period on the ideal ring: every owner pushes its keys
        self.run_for(c.stabilize_every * (c.replicate_every + 2));
        if self.steps >= SIM_STEPS {
            return;
        }
        if let Err(e) = self.sim.check_ring() {
            self.fail(&format!("the ideal ring changed by itself ({why}): {e}"));
        }
        if self.keys_promised {
            let keys: Vec<I> = self.stored.iter().map(|(k, _)| *k).collect();
            if !self.sim.keys_held(&keys) {
                let lost: Vec<I> = keys
                    .iter()
                    .copied()
                    .filter(|k| !self.sim.keys_held(&[*k]))
                    .collect();
                self.fail(&format!(
                    "{} violated ({why}): keys {lost:?} lost",
                    invariants::KEYS_HELD
                ));
            }
        }
        // repaired: the dead are out of every list, the keys back on r + 1 nodes, every member
        // in its predecessors' lists
        self.establish();
        self.forgotten = (0..self.sim.len() as u32)
            .map(|i| {
                !self.sim.is_alive(i) || self.sim.node(i).is_some_and(|n| n.phase() == Phase::Left)
            })
            .collect();
        self.window = 0;
    }

    fn finish(&mut self) {
        // the network calms down: no more loss
        self.sim.set_loss(0.0);
        self.trace.push("end: loss off, settle".into());
        self.settle("end of scenario");
    }
}

/// Seed scenarios for `chord_sim`, written in the byte format [`chord_sim`] reads: a flags byte
/// (bit 0 Original, bit 1 lossy, bit 2 fingers, bit 3 wire codec, bit 4 `SmallId<8>` ids, bits
/// 5-6 how the ring is built), `r`, `n`, stabilize period, replication period, `max_pending`,
/// retries, latency, (loss when lossy), request time-out, a 16-bit seed, then events.
pub fn sim_seeds() -> Vec<(String, Vec<u8>)> {
    // r = 2, n = 8, 500 ms, replicate every 2 ticks, 16 pending, 1 retry, latency 1..30 ms,
    // time-out 160 ms, seed 7
    const HEAD: [u8; 10] = [0, 5, 4, 1, 12, 1, 20, 2, 7, 0];
    // events
    const PUT_A: [u8; 6] = [4, 0, 3, b'a', b'b', b'c'];
    const PUT_B: [u8; 4] = [5, 3, 1, b'x'];
    const CHURN: [u8; 21] = [
        8, 50, // run 500 ms
        0, 2, 0, // a new node joins via member 2
        9, 100, // run 1 s
        2, 1, // crash member 1
        8, 200, // run 2 s
        6, 0, 0, // get a stored key at member 0
        7, 1, 1, // lookup a stored key at member 1
        3, 4, // member 4 leaves
        10, 40, // 40 simulator steps
    ];
    const END: [u8; 5] = [11, 2, 5, 8, 255]; // settle, crash, run
    let scenario = |flags: u8, head: &[u8], extra: &[u8]| {
        let mut s = vec![flags];
        s.extend_from_slice(head);
        s.extend_from_slice(&PUT_A);
        s.extend_from_slice(&PUT_B);
        s.extend_from_slice(&CHURN);
        s.extend_from_slice(extra);
        s.extend_from_slice(&END);
        s
    };
    let mut out = vec![
        ("zave-ring-churn".into(), scenario(0, &HEAD, &[])),
        // fingers and the wire codec; r + 1 members, the rest join through the protocol at once
        (
            "zave-fingers-wire-joins".into(),
            scenario(0x2c, &[1, 7, 2, 2, 20, 0, 40, 5, 9, 1], &[0, 0, 0, 1, 3, 0]),
        ),
        // ids on 256 points, the ring built from scratch
        (
            "zave-small-from-scratch".into(),
            scenario(0x50, &[0, 2, 1, 3, 30, 2, 5, 1, 3, 0], &[2, 0, 2, 1]),
        ),
        // the original protocol: only safety is checked
        (
            "original-churn".into(),
            scenario(0x01, &HEAD, &[2, 0, 2, 1, 2, 2]),
        ),
    ];
    // lossy: 30% loss, latencies up to 400 ms (beyond the time-out), then loss changes
    let mut lossy = vec![0x06, 1, 6, 2, 0, 8, 2, 100, 30, 3, 11, 0];
    lossy.extend_from_slice(&PUT_A);
    lossy.extend_from_slice(&CHURN);
    lossy.extend_from_slice(&[11, 1, 10, 2, 3, 8, 255, 11, 1, 50, 0, 5, 0]);
    out.push(("lossy-churn".into(), lossy));
    out
}
