//! A ring of SAMP servers on 127.0.0.1, each on its own UDP port, built by real Chord joins over
//! UDP through the tokio adapter (`ip2p::adapters::tokio::samp`). Shared by `tests/samp_tokio.rs`
//! and `tests/samp_sipp.rs`.

use std::time::Duration;

use ip2p::adapters::tokio::samp::{spawn_server, ServerOptions};
use ip2p::adapters::tokio::NodeHandle;
use ip2p::chord::{self, Command, NodeId, Peer, Phase, RingId};
use ip2p::samp::server::{self, Input, ProxyMode, Server, ServerConfig};
use ip2p::samp::Aor;
use ip2p::TransportAddr;
use tokio::net::UdpSocket;
use tokio::sync::mpsc;
use tokio::time::{sleep, timeout, Instant};

pub type SampServer = Server<NodeId>;

pub struct RingServer {
    pub handle: NodeHandle<SampServer>,
    pub events: mpsc::Receiver<server::Event<NodeId>>,
    pub me: Peer<NodeId, TransportAddr>,
}

/// Successor-list length.
const R: u8 = 3;

pub fn chord_config() -> chord::Config {
    chord::Config {
        successors: R,
        stabilize_every: Duration::from_millis(25),
        request_timeout: Duration::from_millis(150),
        ..chord::Config::default()
    }
}

async fn start(config: &ServerConfig) -> RingServer {
    let socket = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let addr = TransportAddr(socket.local_addr().unwrap());
    let me = Peer {
        id: NodeId::sha1_of(addr.to_string().as_bytes()),
        addr,
    };
    let server = Server::new(me.id, addr, config.clone());
    let (handle, events) = spawn_server(socket, server, ServerOptions::default()).unwrap();
    RingServer { handle, events, me }
}

/// `n` servers: server 0 creates the ring, the others join through it over UDP; returns once
/// every successor list and predecessor is the ideal one (Zave's "ideal", as in
/// `tests/tokio_chord.rs`).
pub async fn ring(n: usize) -> Vec<RingServer> {
    ring_in_mode(n, ProxyMode::Proxy).await
}

/// [`ring`] with every server in `mode` (RP or RR).
pub async fn ring_in_mode(n: usize, mode: ProxyMode) -> Vec<RingServer> {
    let config = ServerConfig {
        mode,
        chord: chord_config(),
        ..ServerConfig::default()
    };
    let mut servers = Vec::new();
    for _ in 0..n {
        servers.push(start(&config).await);
    }
    servers[0]
        .handle
        .input(Input::Command(Command::Create))
        .await
        .unwrap();
    let via = servers[0].me.addr;
    for s in &servers[1..] {
        s.handle
            .input(Input::Command(Command::Join { via }))
            .await
            .unwrap();
    }
    let t0 = Instant::now();
    loop {
        match ideal_problem(&servers).await {
            None => break,
            Some(p) if t0.elapsed() > Duration::from_secs(15) => {
                panic!("ring not ideal after 15 s: {p}")
            }
            Some(_) => sleep(Duration::from_millis(20)).await,
        }
    }
    eprintln!(
        "ring of {n} servers joined over UDP and ideal in {:?}",
        t0.elapsed()
    );
    servers
}

async fn ideal_problem(servers: &[RingServer]) -> Option<String> {
    let mut sorted: Vec<_> = servers.iter().map(|s| s.me).collect();
    sorted.sort();
    let n = sorted.len();
    for s in servers {
        let (phase, pred, succs) = s
            .handle
            .inspect(|m: &SampServer, _| {
                let node = m.node();
                (node.phase(), node.predecessor(), node.successors().to_vec())
            })
            .await
            .unwrap();
        if phase != Phase::Member {
            return Some(format!("{:?} is {phase:?}", s.me.addr));
        }
        let i = sorted.iter().position(|p| *p == s.me).unwrap();
        let want: Vec<_> = (1..=(R as usize).min(n - 1))
            .map(|k| sorted[(i + k) % n])
            .collect();
        if succs != want || pred != Some(sorted[(i + n - 1) % n]) {
            return Some(format!("{:?}: not ideal yet", s.me.addr));
        }
    }
    None
}

/// The index of the server that owns H(aor) (the AOR's home).
pub async fn home_of(servers: &[RingServer], aor: &Aor) -> usize {
    let key: NodeId = aor.key();
    let mut owners = Vec::new();
    for (i, s) in servers.iter().enumerate() {
        if s.handle
            .inspect(move |m: &SampServer, _| m.node().owns(&key))
            .await
            .unwrap()
        {
            owners.push(i);
        }
    }
    assert_eq!(owners.len(), 1, "exactly one owner of H({aor})");
    owners[0]
}

/// Server `i`'s (anchor, home) bindings for `aor`.
pub async fn bindings(s: &RingServer, aor: &Aor) -> (Option<TransportAddr>, Option<TransportAddr>) {
    let aor = aor.clone();
    s.handle
        .inspect(move |m: &SampServer, now| {
            (m.anchor_binding(now, &aor), m.home_binding(now, &aor))
        })
        .await
        .unwrap()
}

/// Wait (at most `limit`) for an event on server `s` that `pred` accepts.
#[allow(dead_code)]
pub async fn wait_event(
    s: &mut RingServer,
    limit: Duration,
    mut pred: impl FnMut(&server::Event<NodeId>) -> bool,
) -> server::Event<NodeId> {
    timeout(limit, async {
        loop {
            let e = s.events.recv().await.expect("events channel closed");
            if pred(&e) {
                return e;
            }
        }
    })
    .await
    .expect("no such event in time")
}
