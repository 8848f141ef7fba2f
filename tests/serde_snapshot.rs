//! Snapshot and restore (feature `serde`): a node's whole state goes to JSON and back, a restarted
//! node's clock is rebased with `Node::rebase_clock`, and restarted nodes rejoin with their keys.
//!
//! The nodes run in-process over a tiny deterministic message pump (1 ms per delivery), each with
//! its own clock, so a restarted node really has a clock with a new origin.
#![cfg(feature = "serde")]

use std::collections::HashMap;
use std::time::Duration;

use ip2p::chord::RingId;
use ip2p::chord::{self, Command, Event, Input, Message, Node, NodeId, OpId, Output, Peer, Phase};
use ip2p::machine::Machine;
use ip2p::{Time, TransportAddr};

type ChordNode = Node<NodeId, TransportAddr>;
type ChordEvent = Event<NodeId, TransportAddr>;

const R: u8 = 3;
const NODES: usize = 8;
const KEYS: usize = 40;

fn config() -> chord::Config {
    chord::Config {
        successors: R,
        stabilize_every: Duration::from_millis(50),
        request_timeout: Duration::from_millis(200),
        replicate_every: 4,
        ..chord::Config::default()
    }
}

fn addr(i: usize) -> TransportAddr {
    format!("127.0.0.1:{}", 5000 + i).parse().unwrap()
}

fn key(i: usize) -> (NodeId, Vec<u8>) {
    (
        NodeId::sha1_of(format!("key-{i}").as_bytes()),
        format!("value {i}").into_bytes(),
    )
}

/// Nodes, each with its own clock (`local = global - offset`), and the messages in flight.
struct Net {
    nodes: Vec<Option<ChordNode>>,
    offset: Vec<u64>,
    global: u64,
    by_addr: HashMap<TransportAddr, usize>,
    mail: Vec<(TransportAddr, TransportAddr, Message<NodeId, TransportAddr>)>,
    events: Vec<Vec<ChordEvent>>,
    next_op: u64,
}

impl Net {
    fn new(n: usize) -> Net {
        let nodes: Vec<Option<ChordNode>> = (0..n)
            .map(|i| {
                let a = addr(i);
                let me = Peer {
                    id: NodeId::sha1_of(a.to_string().as_bytes()),
                    addr: a,
                };
                Some(Node::new(me, config()))
            })
            .collect();
        Net {
            by_addr: (0..n).map(|i| (addr(i), i)).collect(),
            nodes,
            // clocks with different origins from the start
            offset: (0..n).map(|i| i as u64 * 10).collect(),
            global: 1_000,
            mail: Vec::new(),
            events: vec![Vec::new(); n],
            next_op: 0,
        }
    }

    fn local(&self, i: usize) -> Time {
        Time::from_millis(self.global - self.offset[i])
    }

    fn drain(&mut self, i: usize) {
        let Some(n) = self.nodes[i].as_mut() else {
            return;
        };
        let me = n.me().addr;
        while let Some(o) = n.poll() {
            match o {
                Output::Send { to, msg } => self.mail.push((me, to, msg)),
                Output::Event(e) => self.events[i].push(e),
            }
        }
    }

    fn step(&mut self) {
        self.global += 1;
        for (from, to, msg) in std::mem::take(&mut self.mail) {
            let Some(&i) = self.by_addr.get(&to) else {
                continue;
            };
            let now = self.local(i);
            if let Some(n) = self.nodes[i].as_mut() {
                let _ = n.handle(now, Input::Message { from, msg });
                self.drain(i);
            }
        }
        for i in 0..self.nodes.len() {
            let now = self.local(i);
            if let Some(n) = self.nodes[i].as_mut() {
                if n.poll_timeout().is_some_and(|t| t <= now) {
                    n.handle_timeout(now);
                    self.drain(i);
                }
            }
        }
    }

    fn run(&mut self, ms: u64) {
        for _ in 0..ms {
            self.step();
        }
    }

    fn command(&mut self, i: usize, cmd: Command<NodeId, TransportAddr>) {
        let now = self.local(i);
        self.nodes[i]
            .as_mut()
            .unwrap()
            .handle(now, Input::Command(cmd))
            .unwrap();
        self.drain(i);
    }

    /// Run an operation on node `i` to completion.
    fn op(
        &mut self,
        i: usize,
        make: impl FnOnce(OpId) -> Command<NodeId, TransportAddr>,
    ) -> ChordEvent {
        self.next_op += 1;
        let op = OpId(self.next_op);
        self.command(i, make(op));
        for _ in 0..5_000 {
            let done = self.events[i].iter().position(|e| match e {
                Event::PutDone { op: o, .. }
                | Event::GetDone { op: o, .. }
                | Event::LookupDone { op: o, .. }
                | Event::OpFailed { op: o, .. } => *o == op,
                _ => false,
            });
            if let Some(p) = done {
                return self.events[i].remove(p);
            }
            self.step();
        }
        panic!("operation {op:?} on node {i} did not finish in 5 s");
    }

    fn live(&self) -> Vec<usize> {
        (0..self.nodes.len())
            .filter(|&i| self.nodes[i].is_some())
            .collect()
    }

    /// `None` when the live nodes form an ideal ring (successor lists and predecessors exact).
    fn ideal_problem(&self) -> Option<String> {
        let live: Vec<&ChordNode> = self.nodes.iter().flatten().collect();
        let mut sorted: Vec<Peer<NodeId, TransportAddr>> = live.iter().map(|n| n.me()).collect();
        sorted.sort();
        let k = sorted.len();
        for n in live {
            if n.phase() != Phase::Member {
                return Some(format!("{:?} is {:?}", n.me().id, n.phase()));
            }
            let i = sorted.iter().position(|p| *p == n.me()).unwrap();
            let want: Vec<_> = (1..=(R as usize).min(k - 1))
                .map(|j| sorted[(i + j) % k])
                .collect();
            if n.successors() != &want[..] {
                return Some(format!("{:?}: successors off", n.me().id));
            }
            if n.predecessor() != Some(sorted[(i + k - 1) % k]) {
                return Some(format!("{:?}: predecessor off", n.me().id));
            }
        }
        None
    }

    fn run_until_ideal(&mut self, limit_ms: u64) -> u64 {
        for t in 0..limit_ms {
            if t % 10 == 0 && self.ideal_problem().is_none() {
                return t;
            }
            self.step();
        }
        panic!(
            "ring not ideal after {limit_ms} ms: {:?}",
            self.ideal_problem()
        );
    }

    fn get_all(&mut self, salt: usize) {
        let live = self.live();
        for i in 0..KEYS {
            let (k, v) = key(i);
            let at = live[(i * 5 + salt) % live.len()];
            match self.op(at, |op| Command::Get { op, key: k }) {
                Event::GetDone { value, .. } => {
                    assert_eq!(value.as_deref(), Some(&v[..]), "key {i} lost")
                }
                other => panic!("get of key {i} failed: {other:?}"),
            }
        }
    }
}

/// A stabilized ring of `NODES` nodes holding `KEYS` keys.
fn ring_with_keys() -> Net {
    let mut net = Net::new(NODES);
    net.command(0, Command::Create);
    for i in 1..NODES {
        net.command(i, Command::Join { via: addr(0) });
    }
    net.run_until_ideal(10_000);
    for i in 0..KEYS {
        let (k, v) = key(i);
        match net.op(i % NODES, |op| Command::Put {
            op,
            key: k,
            value: v,
        }) {
            Event::PutDone { .. } => {}
            other => panic!("put of key {i} failed: {other:?}"),
        }
    }
    net.run(300);
    net
}

#[test]
fn snapshot_round_trips_exactly() {
    let mut net = ring_with_keys();
    // mid-life: catch a node with requests in flight
    let mut caught = None;
    for _ in 0..1_000 {
        if let Some(i) = (0..NODES).find(|&i| net.nodes[i].as_ref().unwrap().pending_requests() > 0)
        {
            caught = Some(i);
            break;
        }
        net.step();
    }
    let i = caught.expect("no node ever had a request in flight");
    let node = net.nodes[i].as_ref().unwrap();
    let json = serde_json::to_string(node).unwrap();
    let back: ChordNode = serde_json::from_str(&json).unwrap();
    assert_eq!(
        &back, node,
        "protocol state differs after a JSON round trip"
    );
    assert_eq!(back.stats(), node.stats());
    assert_eq!(back.store(), node.store());
    assert!(back.pending_requests() > 0);
    // hostile snapshots are rejected with an error, not a panic
    assert!(serde_json::from_str::<ChordNode>(&json[..json.len() / 2]).is_err());
    assert!(serde_json::from_str::<ChordNode>("{\"me\": 5}").is_err());
}

/// One node crashes; a snapshot of it taken earlier is restored on a host whose clock restarted
/// at zero. It rejoins and again owns (and serves) its keys.
#[test]
fn restarted_node_rejoins_with_its_keys() {
    let mut net = ring_with_keys();
    // the node owning the most keys
    let x = (0..NODES)
        .max_by_key(|&i| {
            let n = net.nodes[i].as_ref().unwrap();
            n.store().keys().filter(|k| n.owns(k)).count()
        })
        .unwrap();
    let n = net.nodes[x].as_ref().unwrap();
    let owned: Vec<NodeId> = n.store().keys().filter(|k| n.owns(k)).copied().collect();
    assert!(!owned.is_empty());
    let me = n.me();
    let snapshot_time = net.local(x);
    let json = serde_json::to_string(n).unwrap();

    // crash: the node and its clock are gone; the others heal the ring without it
    net.nodes[x] = None;
    let healed = net.run_until_ideal(10_000);
    eprintln!("ring healed {healed} ms after the crash");
    assert!(net.live().len() == NODES - 1);

    // restart: restore the snapshot, on a clock that starts at 0 now
    let mut restored: ChordNode = serde_json::from_str(&json).unwrap();
    assert_eq!(restored.me(), me);
    assert_eq!(restored.phase(), Phase::Member);
    let new_now = Time::ZERO;
    // without a rebase the node would sleep until its old clock's deadlines
    assert!(restored.poll_timeout().unwrap() > new_now + Duration::from_secs(1));
    restored.rebase_clock(snapshot_time, new_now);
    assert!(restored.poll_timeout().unwrap() <= new_now + config().request_timeout);
    net.offset[x] = net.global;
    assert_eq!(net.local(x), new_now);
    net.nodes[x] = Some(restored);

    let rejoined = net.run_until_ideal(10_000);
    eprintln!("restarted node back in an ideal ring after {rejoined} ms");
    net.run(500);
    // it owns its keys again, holds them, and lookups from elsewhere land on it
    let n = net.nodes[x].as_ref().unwrap();
    for k in &owned {
        assert!(
            n.owns(k) && n.store().contains_key(k),
            "{k:?} not back at its owner"
        );
    }
    let other = (x + 1) % NODES;
    for k in owned.clone() {
        match net.op(other, |op| Command::Lookup { op, key: k }) {
            Event::LookupDone { owner, .. } => assert_eq!(owner, me),
            e => panic!("lookup failed: {e:?}"),
        }
    }
    net.get_all(1);
}

/// Every node is snapshotted, the whole deployment stops (messages in flight are lost), and is
/// restored on clocks with new origins. No copy of any key exists outside the snapshots, so
/// finding every key proves they came back from JSON.
#[test]
fn whole_ring_restarts_from_snapshots() {
    let mut net = ring_with_keys();
    net.run(37); // somewhere between ticks
    let snapshots: Vec<(String, Time)> = (0..NODES)
        .map(|i| {
            let n = net.nodes[i].as_ref().unwrap();
            (serde_json::to_string(n).unwrap(), net.local(i))
        })
        .collect();
    let bytes: usize = snapshots.iter().map(|s| s.0.len()).sum();
    eprintln!("{NODES} snapshots, {bytes} bytes of JSON");

    // a new deployment: new nodes vector, new clocks, empty network
    let mut fresh = Net::new(NODES);
    fresh.global = 50_000;
    for (i, (json, then)) in snapshots.iter().enumerate() {
        let mut n: ChordNode = serde_json::from_str(json).unwrap();
        fresh.offset[i] = fresh.global - 7 * i as u64; // clocks now read 0, 7, 14, ...
        n.rebase_clock(*then, fresh.local(i));
        fresh.nodes[i] = Some(n);
    }
    drop(net);
    let t = fresh.run_until_ideal(10_000);
    eprintln!("restored ring ideal after {t} ms");
    fresh.get_all(2);
    // and it keeps working: new keys go in and come out
    let k = NodeId::sha1_of(b"after restart");
    assert!(matches!(
        fresh.op(3, |op| Command::Put {
            op,
            key: k,
            value: b"yes".to_vec()
        }),
        Event::PutDone { .. }
    ));
    match fresh.op(6, |op| Command::Get { op, key: k }) {
        Event::GetDone { value, .. } => assert_eq!(value.as_deref(), Some(&b"yes"[..])),
        e => panic!("{e:?}"),
    }
}

/// The same over real sockets: a node of a loopback ring is stopped through the tokio adapter,
/// snapshotted to JSON, and restarted on the same address by a new driver whose clock starts at
/// zero; it rejoins the ring and owns its keys again.
#[cfg(feature = "tokio")]
mod over_tokio {
    use super::*;
    use ip2p::adapters::tokio::{spawn, Config as DriverConfig, NodeHandle};
    use tokio::net::UdpSocket;
    use tokio::time::{sleep, timeout, Instant};

    fn fast() -> chord::Config {
        chord::Config {
            stabilize_every: Duration::from_millis(20),
            request_timeout: Duration::from_millis(100),
            ..config()
        }
    }

    async fn ideal(nodes: &[NodeHandle<ChordNode>]) -> bool {
        let mut net = Net::new(0);
        for h in nodes {
            net.nodes
                .push(Some(h.inspect(|m: &ChordNode, _| m.clone()).await.unwrap()));
        }
        net.ideal_problem().is_none()
    }

    async fn wait_ideal(nodes: &[NodeHandle<ChordNode>]) -> Duration {
        let t0 = Instant::now();
        while !ideal(nodes).await {
            assert!(
                t0.elapsed() < Duration::from_secs(10),
                "ring not ideal in 10 s"
            );
            sleep(Duration::from_millis(10)).await;
        }
        t0.elapsed()
    }

    async fn start(socket: UdpSocket, node: Option<ChordNode>) -> NodeHandle<ChordNode> {
        let a = TransportAddr(socket.local_addr().unwrap());
        let node = node.unwrap_or_else(|| {
            Node::new(
                Peer {
                    id: NodeId::sha1_of(a.to_string().as_bytes()),
                    addr: a,
                },
                fast(),
            )
        });
        // events are not needed here: operations are checked through `inspect`
        let (h, _events) = spawn(socket, node, DriverConfig::default()).unwrap();
        h
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn stopped_node_restarts_from_json_on_a_new_clock() {
        timeout(Duration::from_secs(30), async {
            let mut nodes = Vec::new();
            for _ in 0..6 {
                nodes.push(start(UdpSocket::bind("127.0.0.1:0").await.unwrap(), None).await);
            }
            let via = nodes[0].local_addr();
            nodes[0]
                .input(Input::Command(Command::Create))
                .await
                .unwrap();
            for h in &nodes[1..] {
                h.input(Input::Command(Command::Join { via }))
                    .await
                    .unwrap();
            }
            wait_ideal(&nodes).await;
            for i in 0..30 {
                let (k, v) = key(i);
                let op = OpId(i as u64);
                nodes[i % 6]
                    .input(Input::Command(Command::Put {
                        op,
                        key: k,
                        value: v,
                    }))
                    .await
                    .unwrap();
            }
            sleep(Duration::from_millis(300)).await;

            // stop the node owning the most keys and keep its snapshot
            let mut best = (0, 0);
            for (i, h) in nodes.iter().enumerate() {
                let owned = h
                    .inspect(|m: &ChordNode, _| m.store().keys().filter(|k| m.owns(k)).count())
                    .await
                    .unwrap();
                if owned > best.1 {
                    best = (i, owned);
                }
            }
            let x = best.0;
            let stopped = nodes.remove(x).stop().await.unwrap();
            let me = stopped.machine.me();
            let owned: Vec<NodeId> = {
                let m = &stopped.machine;
                m.store().keys().filter(|k| m.owns(k)).copied().collect()
            };
            assert!(!owned.is_empty());
            let json = serde_json::to_string(&stopped.machine).unwrap();
            drop(stopped.machine);
            let healed = wait_ideal(&nodes).await;
            eprintln!("5 survivors ideal {healed:?} after the stop");

            // restart on the same address; the new driver's clock starts at 0
            let mut node: ChordNode = serde_json::from_str(&json).unwrap();
            node.rebase_clock(stopped.now, Time::ZERO);
            let socket = UdpSocket::bind(me.addr.socket_addr()).await.unwrap();
            nodes.push(start(socket, Some(node)).await);
            let back = wait_ideal(&nodes).await;
            eprintln!("restarted node in an ideal ring of 6 after {back:?}");
            let last = nodes.last().unwrap();
            let (mine, held) = last
                .inspect(move |m: &ChordNode, _| {
                    (
                        owned.iter().all(|k| m.owns(k)),
                        owned.iter().all(|k| m.store().contains_key(k)),
                    )
                })
                .await
                .unwrap();
            assert!(
                mine && held,
                "the restarted node does not own and hold its keys"
            );
            for h in nodes {
                h.stop().await.unwrap();
            }
        })
        .await
        .expect("hung");
    }
}
