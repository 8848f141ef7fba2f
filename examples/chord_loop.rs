//! Linking a Chord node into your own event loop: `cargo run --example chord_loop`.
//!
//! Your loop owns the sockets and the clock; the node only takes inputs and returns outputs. Here
//! the "network" is a queue of datagrams between two nodes, encoded with the real wire codec.
use std::collections::VecDeque;

use ip2p::chord::wire::ChordWire;
use ip2p::chord::{Command, Config, Event, Id64, Input, Node, OpId, Output, Peer, RingId};
use ip2p::machine::Machine;
use ip2p::Time;

type Wire = ChordWire<Id64, u32>;

fn main() {
    let mut nodes = [1u32, 2].map(|a| {
        Node::new(
            Peer {
                id: Id64::sha1_of(&a.to_be_bytes()),
                addr: a,
            },
            Config::default(),
        )
    });
    let mut net: VecDeque<(u32, u32, Vec<u8>)> = VecDeque::new(); // (from, to, datagram)
    let mut now = Time::ZERO;
    nodes[0]
        .handle(now, Input::Command(Command::Create))
        .expect("create");
    nodes[1]
        .handle(now, Input::Command(Command::Join { via: 1 }))
        .expect("join");
    for round in 0..200u64 {
        for n in nodes.iter_mut() {
            // 1. drain outputs: send datagrams, handle events
            while let Some(out) = n.poll() {
                match out {
                    Output::Send { to, msg } => {
                        net.push_back((n.me().addr, to, Wire::to_bytes(&msg)))
                    }
                    Output::Event(Event::Joined { .. }) if n.me().addr == 2 => {
                        let key = Id64::sha1_of(b"alice");
                        n.handle(
                            now,
                            Input::Command(Command::Put {
                                op: OpId(1),
                                key,
                                value: b"sip:alice@10.0.0.7".to_vec(),
                            }),
                        )
                        .expect("put");
                    }
                    Output::Event(e) => println!("t={now} node {}: {e:?}", n.me().addr),
                }
            }
            // 2. fire the timer when its deadline has passed
            if n.poll_timeout().is_some_and(|t| t <= now) {
                n.handle_timeout(now);
            }
        }
        // 3. deliver datagrams: decode (bad bytes are rejected, never panic) and hand them over
        while let Some((from, to, bytes)) = net.pop_front() {
            let (Ok(msg), Some(n)) = (
                Wire::read(&bytes),
                nodes.iter_mut().find(|n| n.me().addr == to),
            ) else {
                continue;
            };
            let _ = n.handle(now, Input::Message { from, msg }); // Err: rejected and counted
        }
        now = Time::from_millis(round * 100);
    }
    assert!(
        nodes.iter().all(|n| n.successor().is_some()),
        "a two-node ring formed"
    );
}
