//! Chord benchmarks (criterion): wire encode/decode beside serde baselines, and lookup routing.
//!
//! `cargo bench --features serde --bench chord` (without `serde` the bincode/postcard baselines
//! are left out). Results and ratios: `spec/benchmarks.md`.
//!
//! - `wire/*`: the hand-written codec (`ip2p::chord::wire`) on three typical messages (a `State`
//!   with 8 successors, a `FindSuccessor`, a `Store` with a 100-byte value), 160-bit ids and IP
//!   transport addresses; beside it, with `serde`, the same `Message` through `bincode` 1 and
//!   `postcard` 1, the serializers a user would otherwise pick.
//! - `route/step`: one node of a stabilized 10^4-node ring (SHA-1 ids, an ideal finger table)
//!   answering `FindSuccessor`: handle + poll, i.e. one routing step of an iterative lookup.
//! - `route/lookup`: whole iterative lookups across 10^4 nodes (64-bit ids), every hop a real
//!   node answering; throughput counted in routing steps.

use std::hint::black_box;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Duration;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use ip2p::chord::wire::ChordWire;
use ip2p::chord::{
    Config, Id64, Input, Message, Node, NodeId, Output, Peer, RingId, SuccList, MAX_SUCCESSORS,
};
use ip2p::machine::Machine;
use ip2p::{Time, TransportAddr};

type Real = Message<NodeId, TransportAddr>;
type W = ChordWire<NodeId, TransportAddr>;

const RING: usize = 10_000;

fn addr(i: usize) -> TransportAddr {
    let i = i as u32;
    TransportAddr(SocketAddr::new(
        IpAddr::V4(Ipv4Addr::from(0x0a00_0000 | (i >> 8))),
        4000 + (i & 0xff) as u16,
    ))
}

fn real_peer(i: usize) -> Peer<NodeId, TransportAddr> {
    let a = addr(i);
    Peer {
        id: NodeId::sha1_of(a.to_string().as_bytes()),
        addr: a,
    }
}

/// The three typical messages.
fn typical() -> Vec<(&'static str, Real)> {
    let succs: SuccList<_, _> = (1..=8).map(real_peer).collect();
    vec![
        (
            "State8",
            Message::State {
                nonce: 0x1234_5678,
                id: real_peer(0).id,
                pred: Some(real_peer(9)),
                succs,
            },
        ),
        (
            "FindSuccessor",
            Message::FindSuccessor {
                nonce: 42,
                key: NodeId::sha1_of(b"some key"),
                avoid: Default::default(),
            },
        ),
        (
            "Store100",
            Message::Store {
                nonce: 7,
                key: NodeId::sha1_of(b"some key"),
                value: vec![0xab; 100],
            },
        ),
    ]
}

fn wire(c: &mut Criterion) {
    for (name, msg) in typical() {
        let bytes = W::to_bytes(&msg);
        let mut g = c.benchmark_group(format!("wire/{name}"));
        g.throughput(Throughput::Elements(1));
        g.bench_function("ip2p/encode", |b| {
            let mut buf = Vec::with_capacity(256);
            b.iter(|| {
                buf.clear();
                W::write(black_box(&msg), &mut buf);
                black_box(buf.len())
            })
        });
        g.bench_function("ip2p/decode", |b| {
            b.iter(|| W::read(black_box(&bytes)).expect("decodes"))
        });
        #[cfg(feature = "serde")]
        {
            let bin = bincode::serialize(&msg).expect("bincode");
            let post = postcard::to_allocvec(&msg).expect("postcard");
            eprintln!(
                "wire/{name}: {} bytes ip2p, {} bincode, {} postcard",
                bytes.len(),
                bin.len(),
                post.len()
            );
            g.bench_function("bincode/encode", |b| {
                let mut buf = Vec::with_capacity(256);
                b.iter(|| {
                    buf.clear();
                    bincode::serialize_into(&mut buf, black_box(&msg)).expect("bincode");
                    black_box(buf.len())
                })
            });
            g.bench_function("bincode/decode", |b| {
                b.iter(|| bincode::deserialize::<Real>(black_box(&bin)).expect("bincode"))
            });
            g.bench_function("postcard/encode", |b| {
                let mut buf = Vec::with_capacity(256);
                b.iter(|| {
                    buf.clear();
                    buf = postcard::to_extend(black_box(&msg), core::mem::take(&mut buf))
                        .expect("postcard");
                    black_box(buf.len())
                })
            });
            g.bench_function("postcard/decode", |b| {
                b.iter(|| postcard::from_bytes::<Real>(black_box(&post)).expect("postcard"))
            });
        }
        g.finish();
    }
}

/// A member of a stabilized ring of `members` (sorted by id) at index `i`, with ideal fingers.
fn ring_node<I: RingId, A: ip2p::chord::Address>(members: &[Peer<I, A>], i: usize) -> Node<I, A> {
    let n = members.len();
    let pred = members[(i + n - 1) % n];
    let succs: Vec<_> = (1..=8.min(MAX_SUCCESSORS))
        .map(|k| members[(i + k) % n])
        .collect();
    let mut node = Node::with_state(
        members[i],
        Config::default(),
        Some(pred),
        &succs,
        Time::ZERO,
    );
    node.set_ideal_fingers(members);
    node
}

fn route(c: &mut Criterion) {
    let mut g = c.benchmark_group("route");

    // one routing step at one node of a 10^4-node SHA-1 ring
    let mut members: Vec<_> = (0..RING).map(real_peer).collect();
    members.sort_by_key(|p| p.id);
    let mut node = ring_node(&members, 0);
    let keys: Vec<NodeId> = (0..1024u32)
        .map(|k| NodeId::sha1_of(&k.to_be_bytes()))
        .collect();
    let from = addr(RING + 1);
    g.throughput(Throughput::Elements(1));
    g.bench_function("step", |b| {
        let mut k = 0usize;
        b.iter(|| {
            k = (k + 1) & 1023;
            let msg = Message::FindSuccessor {
                nonce: k as u32,
                key: keys[k],
                avoid: Default::default(),
            };
            node.handle(Time::ZERO, Input::Message { from, msg })
                .expect("answered");
            node.poll().expect("one answer")
        })
    });

    // whole iterative lookups over 10^4 nodes with 64-bit ids and integer addresses
    let mut members: Vec<Peer<Id64, u32>> = (0..RING as u32)
        .map(|a| Peer {
            id: Id64::sha1_of(&a.to_be_bytes()),
            addr: a,
        })
        .collect();
    members.sort_by_key(|p| p.id);
    let mut by_addr: Vec<Option<usize>> = vec![None; RING];
    for (i, p) in members.iter().enumerate() {
        by_addr[p.addr as usize] = Some(i);
    }
    let mut nodes: Vec<Node<Id64, u32>> = (0..RING).map(|i| ring_node(&members, i)).collect();
    let keys: Vec<Id64> = (0..100u32)
        .map(|k| Id64::sha1_of(&(k + 1_000_000).to_be_bytes()))
        .collect();
    let client = u32::MAX;
    // one lookup: start at member 0, follow Closer hints until Found; returns the hops taken
    let lookup = |nodes: &mut [Node<Id64, u32>], key: Id64| -> u64 {
        let mut at = members[0].addr;
        let mut hops = 0;
        loop {
            hops += 1;
            let n = &mut nodes[by_addr[at as usize].expect("member")];
            let msg = Message::FindSuccessor {
                nonce: 1,
                key,
                avoid: Default::default(),
            };
            n.handle(Time::ZERO, Input::Message { from: client, msg })
                .expect("answered");
            match n.poll() {
                Some(Output::Send {
                    msg: Message::Found { .. },
                    ..
                }) => return hops,
                Some(Output::Send {
                    msg: Message::Closer { next, .. },
                    ..
                }) => at = next[0].addr,
                o => panic!("unexpected {o:?}"),
            }
        }
    };
    let total: u64 = keys.iter().map(|k| lookup(&mut nodes, *k)).sum();
    eprintln!(
        "route/lookup: {} lookups over {RING} nodes, {:.2} routing steps per lookup",
        keys.len(),
        total as f64 / keys.len() as f64
    );
    g.throughput(Throughput::Elements(total));
    g.bench_with_input(BenchmarkId::new("lookup100", RING), &keys, |b, keys| {
        b.iter(|| {
            let mut h = 0;
            for k in keys {
                h += lookup(&mut nodes, *k);
            }
            h
        })
    });
    g.finish();
}

fn config() -> Criterion {
    Criterion::default()
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_millis(1500))
        .sample_size(30)
}

criterion_group! {
    name = benches;
    config = config();
    targets = wire, route
}
criterion_main!(benches);
