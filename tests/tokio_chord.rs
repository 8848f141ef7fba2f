//! A real Chord ring over loopback UDP, driven by the generic tokio adapter.
//!
//! 20 nodes with SHA-1 ids of their addresses join through node 0, stabilize until the ring is
//! ideal, store 100 keys and find them from other nodes; then 3 non-adjacent nodes are killed
//! (stopped without a word), the survivors re-stabilize, and every key is still found.
//!
//! Run with `cargo test --features tokio --test tokio_chord -- --nocapture` to see the timings.
#![cfg(feature = "tokio")]

use std::time::Duration;

use ip2p::adapters::tokio::{spawn, Config as DriverConfig, NodeHandle};
use ip2p::chord::{self, Command, Event, Input, Node, NodeId, OpId, Peer, Phase, RingId};
use ip2p::TransportAddr;
use tokio::net::UdpSocket;
use tokio::sync::mpsc;
use tokio::time::{sleep, timeout, Instant};

type ChordNode = Node<NodeId, TransportAddr>;
type ChordEvent = Event<NodeId, TransportAddr>;

const NODES: usize = 20;
const KEYS: usize = 100;
const R: u8 = 4;

struct TestNode {
    handle: NodeHandle<ChordNode>,
    events: mpsc::Receiver<ChordEvent>,
    me: Peer<NodeId, TransportAddr>,
}

fn chord_config() -> chord::Config {
    chord::Config {
        successors: R,
        stabilize_every: Duration::from_millis(25),
        request_timeout: Duration::from_millis(150),
        replicate_every: 4,
        ..chord::Config::default()
    }
}

async fn start_node() -> TestNode {
    let socket = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let addr = TransportAddr(socket.local_addr().unwrap());
    let me = Peer {
        id: NodeId::sha1_of(addr.to_string().as_bytes()),
        addr,
    };
    let node = Node::new(me, chord_config());
    let (handle, events) = spawn(socket, node, DriverConfig::default()).unwrap();
    TestNode { handle, events, me }
}

/// What one node believes: its predecessor and successor list.
type View = (
    Peer<NodeId, TransportAddr>,
    Phase,
    Option<Peer<NodeId, TransportAddr>>,
    Vec<Peer<NodeId, TransportAddr>>,
);

async fn views(nodes: &[TestNode]) -> Vec<View> {
    let mut out = Vec::new();
    for n in nodes {
        let v = n
            .handle
            .inspect(|m: &ChordNode, _| {
                (m.me(), m.phase(), m.predecessor(), m.successors().to_vec())
            })
            .await
            .unwrap();
        out.push(v);
    }
    out
}

/// Zave's "ideal" ring, strengthened: every member's successor list holds the next
/// `min(r, n-1)` members in id order and its predecessor is the previous member.
fn ideal_problem(views: &[View]) -> Option<String> {
    let mut sorted: Vec<Peer<NodeId, TransportAddr>> = views.iter().map(|v| v.0).collect();
    sorted.sort();
    let n = sorted.len();
    for (me, phase, pred, succs) in views {
        if *phase != Phase::Member {
            return Some(format!("{me:?} is {phase:?}"));
        }
        let i = sorted.iter().position(|p| p == me).unwrap();
        let want: Vec<_> = (1..=(R as usize).min(n - 1))
            .map(|k| sorted[(i + k) % n])
            .collect();
        if *succs != want {
            return Some(format!(
                "{:?}: successors {:?}, want {:?}",
                me.id,
                succs.iter().map(|p| p.id).collect::<Vec<_>>(),
                want.iter().map(|p| p.id).collect::<Vec<_>>()
            ));
        }
        let want_pred = sorted[(i + n - 1) % n];
        if *pred != Some(want_pred) {
            return Some(format!(
                "{:?}: predecessor {:?}, want {:?}",
                me.id,
                pred.map(|p| p.id),
                want_pred.id
            ));
        }
    }
    None
}

/// Wait until the ring is ideal; returns how long it took.
async fn wait_ideal(nodes: &[TestNode], limit: Duration) -> Duration {
    let t0 = Instant::now();
    loop {
        let problem = ideal_problem(&views(nodes).await);
        match problem {
            None => return t0.elapsed(),
            Some(p) if t0.elapsed() > limit => panic!("ring not ideal after {limit:?}: {p}"),
            Some(_) => sleep(Duration::from_millis(10)).await,
        }
    }
}

/// Issue `cmd` on `node` and wait for the event that completes operation `op`.
async fn op(node: &mut TestNode, op: OpId, cmd: Command<NodeId, TransportAddr>) -> ChordEvent {
    node.handle.input(Input::Command(cmd)).await.unwrap();
    let deadline = Instant::now() + Duration::from_secs(3);
    loop {
        let ev = timeout(deadline - Instant::now(), node.events.recv())
            .await
            .unwrap_or_else(|_| panic!("operation {op:?} did not finish in 3 s"))
            .expect("events channel closed");
        match &ev {
            Event::PutDone { op: o, .. }
            | Event::GetDone { op: o, .. }
            | Event::LookupDone { op: o, .. }
            | Event::OpFailed { op: o, .. }
                if *o == op =>
            {
                return ev
            }
            _ => {}
        }
    }
}

fn key(i: usize) -> (NodeId, Vec<u8>) {
    (
        NodeId::sha1_of(format!("key-{i}").as_bytes()),
        format!("value of key {i}").into_bytes(),
    )
}

async fn get_all(nodes: &mut [TestNode], next_op: &mut u64, salt: usize) {
    let n = nodes.len();
    for i in 0..KEYS {
        let (k, v) = key(i);
        *next_op += 1;
        let o = OpId(*next_op);
        let node = &mut nodes[(i * 7 + salt) % n];
        match op(node, o, Command::Get { op: o, key: k }).await {
            Event::GetDone { value, .. } => {
                assert_eq!(value.as_deref(), Some(&v[..]), "key {i} lost")
            }
            other => panic!("get of key {i} failed: {other:?}"),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ring_of_twenty_stores_finds_and_survives_failures() {
    timeout(Duration::from_secs(40), scenario())
        .await
        .expect("the scenario hung");
}

async fn scenario() {
    let mut nodes = Vec::new();
    for _ in 0..NODES {
        nodes.push(start_node().await);
    }
    // node 0 creates the ring, every other node joins through it at once
    let t0 = Instant::now();
    nodes[0]
        .handle
        .input(Input::Command(Command::Create))
        .await
        .unwrap();
    let via = nodes[0].me.addr;
    for n in &nodes[1..] {
        n.handle
            .input(Input::Command(Command::Join { via }))
            .await
            .unwrap();
    }
    for n in &mut nodes {
        let ev = timeout(Duration::from_secs(5), n.events.recv())
            .await
            .expect("no join event")
            .unwrap();
        assert!(matches!(ev, Event::Joined { .. }), "{ev:?}");
    }
    let joined = t0.elapsed();
    let converged = wait_ideal(&nodes, Duration::from_secs(10)).await;
    eprintln!(
        "{NODES} nodes: all joined after {joined:?}, ring ideal {:?} after the first join",
        t0.elapsed()
    );
    let _ = converged;

    // 100 keys, put from one node each, read back from another
    let mut next_op = 0u64;
    let t_put = Instant::now();
    for i in 0..KEYS {
        let (k, v) = key(i);
        next_op += 1;
        let o = OpId(next_op);
        match op(
            &mut nodes[i % NODES],
            o,
            Command::Put {
                op: o,
                key: k,
                value: v,
            },
        )
        .await
        {
            Event::PutDone { .. } => {}
            other => panic!("put of key {i} failed: {other:?}"),
        }
    }
    let puts = t_put.elapsed();
    let t_get = Instant::now();
    get_all(&mut nodes, &mut next_op, 3).await;
    eprintln!(
        "{KEYS} puts in {puts:?}, {KEYS} gets in {:?} (sequential)",
        t_get.elapsed()
    );
    // every key is held by its owner and the owner's successor (a replica)
    let stores = {
        let mut s = Vec::new();
        for n in &nodes {
            s.push(
                n.handle
                    .inspect(|m: &ChordNode, _| (m.me().id, m.store().len()))
                    .await
                    .unwrap(),
            );
        }
        s
    };
    let held: usize = stores.iter().map(|s| s.1).sum();
    assert!(
        held >= 2 * KEYS,
        "expected owner + replicas, {held} copies held"
    );

    // kill three nodes that are not neighbours on the ring
    let mut order: Vec<usize> = (0..NODES).collect();
    order.sort_by_key(|&i| nodes[i].me.id);
    let mut victims: Vec<usize> = [1usize, 8, 15].iter().map(|&pos| order[pos]).collect();
    victims.sort_unstable_by(|a, b| b.cmp(a));
    let t_kill = Instant::now();
    for v in victims {
        let dead = nodes.remove(v);
        let stopped = dead.handle.stop().await.unwrap();
        assert_eq!(stopped.machine.me(), dead.me);
    }
    let healed = wait_ideal(&nodes, Duration::from_secs(10)).await;
    eprintln!(
        "3 of {NODES} nodes killed: ring ideal again among {} survivors after {healed:?}",
        nodes.len()
    );
    let _ = t_kill;
    get_all(&mut nodes, &mut next_op, 5).await;

    // nothing a peer sent was undecodable, and the drivers never failed to send
    for n in &nodes {
        let c = n.handle.counters();
        assert_eq!(c.decode_errors, 0, "{c:?}");
        assert_eq!(c.recv_errors, 0, "{c:?}");
        assert_eq!(c.events_dropped, 0, "{c:?}");
        assert!(c.datagrams_in > 0 && c.datagrams_out > 0);
    }
    let total: u64 = nodes
        .iter()
        .map(|n| n.handle.counters().datagrams_out)
        .sum();
    eprintln!("survivors sent {total} datagrams in all");
    for n in nodes {
        n.handle.stop().await.unwrap();
    }
}

/// Garbage and hostile datagrams are counted, never fatal: the node keeps answering.
#[tokio::test]
async fn garbage_is_counted_and_survived() {
    timeout(Duration::from_secs(10), async {
        let mut a = start_node().await;
        a.handle
            .input(Input::Command(Command::Create))
            .await
            .unwrap();
        assert!(matches!(a.events.recv().await, Some(Event::Joined { .. })));
        let attacker = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let target = a.me.addr.socket_addr();
        let junk: [&[u8]; 5] = [
            b"",
            &[9, 1, 0, 0, 0, 0],             // unknown version
            &[1, 200],                       // unknown type
            &[1, 13, 0xff, 0xff],            // Replicate claiming 65535 items
            &[1, 5, 0, 0, 0, 1, 0xaa, 0xbb], // truncated State
        ];
        for j in junk {
            attacker.send_to(j, target).await.unwrap();
        }
        attacker.send_to(&vec![0u8; 60_000], target).await.unwrap();
        // an unsolicited answer decodes but is rejected by the machine
        let mut pong = Vec::new();
        ip2p::chord::wire::ChordWire::<NodeId, TransportAddr>::write(
            &chord::Message::Pong { nonce: 77 },
            &mut pong,
        );
        attacker.send_to(&pong, target).await.unwrap();
        // a well-formed request is still answered
        let mut ping = Vec::new();
        ip2p::chord::wire::ChordWire::<NodeId, TransportAddr>::write(
            &chord::Message::Ping { nonce: 5 },
            &mut ping,
        );
        attacker.send_to(&ping, target).await.unwrap();
        let mut buf = vec![0u8; 2048];
        let (len, _) = attacker.recv_from(&mut buf).await.unwrap();
        let answer =
            ip2p::chord::wire::ChordWire::<NodeId, TransportAddr>::read(&buf[..len]).unwrap();
        assert_eq!(answer, chord::Message::Pong { nonce: 5 });
        let c = a.handle.counters();
        assert_eq!(c.decode_errors, 6, "{c:?}");
        assert_eq!(c.rejected_messages, 1, "{c:?}");
        assert_eq!(c.datagrams_in, 8, "{c:?}");
        let stopped = a.handle.stop().await.unwrap();
        assert_eq!(stopped.machine.phase(), Phase::Member);
    })
    .await
    .expect("hung");
}
