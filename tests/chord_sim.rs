//! Integration tests of the Chord machine, driven by the deterministic simulator
//! (`ip2p::sim`). Every node is a real `ip2p::chord::Node`; these tests fail if the machine
//! breaks.

use std::collections::HashMap;
use std::time::Duration;

use ip2p::chord::{Event, Id64, Message, Peer, Phase, Variant};
use ip2p::sim::{experiments, Record, Sim, SimConfig};
use ip2p::Time;

fn cfg() -> SimConfig {
    SimConfig {
        wire: true,
        ..SimConfig::default()
    }
}

fn secs(s: u64) -> Duration {
    Duration::from_secs(s)
}

fn run_ops(sim: &mut Sim<Id64>) {
    let limit = sim.now() + secs(120);
    assert!(
        sim.run_until_ops_done(limit),
        "{} operations still unfinished after 120 s",
        sim.ops_in_flight()
    );
}

/// Put `keys` (value = key's bytes) from random members; assert every put succeeded.
fn put_all(sim: &mut Sim<Id64>, keys: &[Id64]) {
    let members = sim.ring_view().members;
    for (k, key) in keys.iter().enumerate() {
        let from = members[k % members.len()].addr;
        sim.put(from, *key, key.0.to_be_bytes().to_vec()).unwrap();
    }
    run_ops(sim);
    let done = sim
        .take_events()
        .iter()
        .filter(|r| matches!(r.event, Event::PutDone { .. }))
        .count();
    assert_eq!(done, keys.len(), "every put must finish with PutDone");
}

/// Get every key from random live members; return the keys that did not come back intact.
fn missing_keys(sim: &mut Sim<Id64>, keys: &[Id64]) -> Vec<(Id64, String)> {
    let members = sim.ring_view().members;
    let mut ops = HashMap::new();
    for (k, key) in keys.iter().enumerate() {
        let from = members[(k * 7 + 3) % members.len()].addr;
        let op = sim.get(from, *key).unwrap();
        ops.insert(op, *key);
    }
    run_ops(sim);
    let mut missing = Vec::new();
    for r in sim.take_events() {
        match r.event {
            Event::GetDone { op, key, value } if ops.contains_key(&op) => {
                ops.remove(&op);
                if value.as_deref() != Some(&key.0.to_be_bytes()[..]) {
                    missing.push((key, format!("GetDone {value:?}")));
                }
            }
            Event::OpFailed { op, key, reason } if ops.contains_key(&op) => {
                ops.remove(&op);
                missing.push((key, format!("OpFailed {reason:?}")));
            }
            _ => {}
        }
    }
    missing.extend(ops.values().map(|k| (*k, "no answer".to_string())));
    missing
}

fn joined(events: &[Record<Id64>], node: u32) -> bool {
    events
        .iter()
        .any(|r| r.node == node && matches!(r.event, Event::Joined { .. }))
}

#[test]
fn ring_of_three_built_by_joins_converges() {
    for variant in [Variant::Zave, Variant::Original] {
        let mut c = cfg();
        c.chord.variant = variant;
        let mut sim: Sim<Id64> = Sim::new(c, 3);
        let a = sim.add_node(Id64(1 << 60)).unwrap();
        let b = sim.add_node(Id64(9 << 60)).unwrap();
        let d = sim.add_node(Id64(5 << 60)).unwrap();
        sim.create(a).unwrap();
        sim.join(b, a).unwrap();
        run_ops(&mut sim);
        sim.join(d, b).unwrap();
        run_ops(&mut sim);
        let ev = sim.take_events();
        assert!(
            joined(&ev, a) && joined(&ev, b) && joined(&ev, d),
            "{variant:?}"
        );
        sim.run_for(secs(20));
        let succ = |i: u32| sim.node(i).unwrap().successor().map(|p| p.addr);
        let pred = |i: u32| sim.node(i).unwrap().predecessor().map(|p| p.addr);
        // ring order: a (1) -> d (5) -> b (9) -> a
        assert_eq!(
            [succ(a), succ(d), succ(b)],
            [Some(d), Some(b), Some(a)],
            "{variant:?}"
        );
        assert_eq!(
            [pred(a), pred(d), pred(b)],
            [Some(b), Some(a), Some(d)],
            "{variant:?}"
        );
        sim.check_ring().unwrap();
        assert_eq!(sim.check_invariants(), Ok(()), "{variant:?}");
    }
}

#[test]
fn fifty_sequential_joins_stabilize_to_the_ideal_ring() {
    let mut sim: Sim<Id64> = Sim::new(cfg(), 50);
    let first = sim.add_random_node().unwrap();
    sim.create(first).unwrap();
    for _ in 1..50 {
        let members = sim.ring_view().members;
        let k = sim.rng().below(members.len() as u64) as usize;
        let via = members[k].addr;
        let i = sim.add_random_node().unwrap();
        sim.join(i, via).unwrap();
        run_ops(&mut sim);
        assert!(joined(sim.events(), i), "node {i} did not join");
        assert_eq!(
            sim.check_invariants(),
            Ok(()),
            "after node {i} joined at {}",
            sim.now()
        );
        sim.take_events();
        sim.run_for(Duration::from_millis(300));
    }
    sim.run_for(secs(60));
    assert_eq!(sim.ring_view().len(), 50);
    sim.check_ring().unwrap();
    assert_eq!(sim.check_invariants(), Ok(()));
    let (wrong, total) = sim.finger_errors();
    assert_eq!(wrong, 0, "{wrong} of {total} fingers are not ideal");
    assert_eq!(sim.stats().timer_stalls, 0);

    // lookups from every node of this joined ring find the right owner
    let view = sim.ring_view();
    let mut expect = HashMap::new();
    for p in &view.members {
        for _ in 0..4 {
            let key = sim.random_key();
            let op = sim.lookup(p.addr, key).unwrap();
            expect.insert(op, view.owner(&key).unwrap());
        }
    }
    run_ops(&mut sim);
    let mut seen = 0;
    for r in sim.take_events() {
        if let Event::LookupDone { op, owner, .. } = r.event {
            assert_eq!(Some(&owner), expect.get(&op), "lookup {op:?}");
            seen += 1;
        }
    }
    assert_eq!(seen, expect.len());
}

#[test]
fn lookups_from_every_node_find_the_right_owner() {
    let mut sim: Sim<Id64> = Sim::new(cfg(), 7);
    sim.add_ring(300);
    sim.run_for(secs(2)); // maintenance running
    let view = sim.ring_view();
    let mut expect = HashMap::new();
    for p in &view.members {
        for _ in 0..3 {
            let key = sim.random_key();
            let op = sim.lookup(p.addr, key).unwrap();
            expect.insert(op, view.owner(&key).unwrap());
        }
        // a key equal to a node's id belongs to that node
        let target = view.members[(p.addr as usize * 13) % view.len()];
        let op = sim.lookup(p.addr, target.id).unwrap();
        expect.insert(op, target);
    }
    run_ops(&mut sim);
    let mut hops = 0u64;
    let mut done = 0;
    for r in sim.take_events() {
        match r.event {
            Event::LookupDone {
                op, owner, hops: h, ..
            } => {
                assert_eq!(Some(&owner), expect.get(&op), "lookup {op:?}");
                hops += u64::from(h);
                done += 1;
            }
            Event::OpFailed { op, reason, .. } => panic!("lookup {op:?} failed: {reason:?}"),
            _ => {}
        }
    }
    assert_eq!(done, expect.len());
    let mean = hops as f64 / done as f64;
    // Chord: about ½·log2 N ≈ 4.1 for N = 300
    assert!((2.5..6.0).contains(&mean), "mean hops {mean}");
}

#[test]
fn put_get_round_trip() {
    let mut sim: Sim<Id64> = Sim::new(cfg(), 11);
    sim.add_ring(20);
    let keys: Vec<Id64> = (0..100).map(|_| sim.random_key()).collect();
    put_all(&mut sim, &keys);
    assert_eq!(missing_keys(&mut sim, &keys), vec![]);
    // every key sits at its owner
    let view = sim.ring_view();
    for k in &keys {
        let o = view.owner(k).unwrap();
        assert!(sim.node(o.addr).unwrap().store().contains_key(k), "{k:?}");
    }
    // a key never stored: GetDone with no value
    let absent = sim.random_key();
    let op = sim.get(0, absent).unwrap();
    run_ops(&mut sim);
    let got = sim.take_events().into_iter().find_map(|r| match r.event {
        Event::GetDone { op: o, value, .. } if o == op => Some(value),
        _ => None,
    });
    assert_eq!(got, Some(None));
}

/// The owner of a key crashes and nobody has noticed yet (maintenance stopped): a get fails over
/// to the owner's successor, which holds the replica, and a put is stored there.
#[test]
fn get_and_put_fail_over_to_the_successor_of_a_crashed_owner() {
    let mut sim: Sim<Id64> = Sim::new(cfg().without_maintenance(), 12);
    sim.add_ring(16);
    let keys: Vec<Id64> = (0..20).map(|_| sim.random_key()).collect();
    put_all(&mut sim, &keys);
    let view = sim.ring_view();
    let key = keys[0];
    let owner = view.owner(&key).unwrap().addr;
    let succ = view
        .owner_index(&key)
        .map(|i| view.members[(i + 1) % view.members.len()].addr)
        .unwrap();
    assert!(
        sim.node(succ).unwrap().store().contains_key(&key),
        "the put replicated to the successor"
    );
    sim.crash(owner).unwrap();
    let from = view
        .members
        .iter()
        .map(|p| p.addr)
        .find(|&a| a != owner && a != succ)
        .unwrap();
    sim.take_events();
    let get = sim.get(from, key).unwrap();
    run_ops(&mut sim);
    let put = sim.put(from, key, b"new".to_vec()).unwrap();
    run_ops(&mut sim);
    let events = sim.take_events();
    let got = events.iter().find_map(|r| match &r.event {
        Event::GetDone { op, value, .. } if *op == get => Some(value.clone()),
        _ => None,
    });
    assert_eq!(
        got,
        Some(Some(key.0.to_be_bytes().to_vec())),
        "events: {events:?}"
    );
    let stored_at = events.iter().find_map(|r| match &r.event {
        Event::PutDone { op, owner, .. } if *op == put => Some(owner.addr),
        _ => None,
    });
    assert_eq!(stored_at, Some(succ), "events: {events:?}");
    assert_eq!(
        sim.node(succ).unwrap().store().get(&key),
        Some(&b"new".to_vec())
    );
}

/// 16 of 24 nodes leave gracefully, some right after one another, some after stabilization;
/// every key must still be at its owner and readable.
fn graceful_leaves_keep_every_key(r: u8) {
    let mut c = cfg();
    c.chord.successors = r;
    // no periodic replication: only the hand-over on leave (and the replicas of each put) keep
    // the keys
    c.chord.replicate_every = 0;
    let mut sim: Sim<Id64> = Sim::new(c, 21);
    sim.add_ring(24);
    let keys: Vec<Id64> = (0..240).map(|_| sim.random_key()).collect();
    put_all(&mut sim, &keys);
    for round in 0..16 {
        let members = sim.ring_view().members;
        let k = sim.rng().below(members.len() as u64) as usize;
        let leaver = members[k].addr;
        sim.leave(leaver).unwrap();
        run_ops(&mut sim);
        assert_eq!(sim.node(leaver).unwrap().phase(), Phase::Left);
        assert!(sim.node(leaver).unwrap().store().is_empty());
        // half the leaves follow each other closely, half after stabilization
        sim.run_for(if round % 2 == 0 {
            Duration::from_millis(200)
        } else {
            secs(3)
        });
        sim.take_events();
    }
    sim.run_for(secs(10));
    assert_eq!(sim.ring_view().len(), 8, "r = {r}");
    assert!(
        sim.keys_held(&keys),
        "r = {r}: KeysHeld after graceful leaves"
    );
    let view = sim.ring_view();
    for k in &keys {
        let o = view.owner(k).unwrap();
        assert!(
            sim.node(o.addr).unwrap().store().contains_key(k),
            "r = {r}: {k:?} not at its owner {o:?}"
        );
    }
    assert_eq!(missing_keys(&mut sim, &keys), vec![], "r = {r}");
    sim.check_ring().unwrap();
}

#[test]
fn keys_survive_graceful_leave() {
    graceful_leaves_keep_every_key(8);
    graceful_leaves_keep_every_key(1);
}

#[test]
fn keys_survive_r_minus_one_consecutive_crashes() {
    let mut c = cfg();
    c.chord.successors = 4;
    let mut sim: Sim<Id64> = Sim::new(c, 31);
    sim.add_ring(40);
    let keys: Vec<Id64> = (0..400).map(|_| sim.random_key()).collect();
    put_all(&mut sim, &keys);
    sim.run_for(secs(10)); // periodic replication has run
    let view = sim.ring_view();
    for start in [5usize, 22] {
        let view = sim.ring_view();
        // 3 = r - 1 consecutive members crash at the same instant
        for d in 0..3 {
            sim.crash(view.members[(start + d) % view.len()].addr)
                .unwrap();
        }
        sim.run_for(secs(30));
        sim.check_ring().unwrap();
        assert_eq!(sim.check_invariants(), Ok(()));
        assert!(sim.keys_held(&keys), "KeysHeld after 3 crashes at {start}");
    }
    assert_eq!(sim.ring_view().len(), view.len() - 6);
    assert_eq!(missing_keys(&mut sim, &keys), vec![]);
}

#[test]
fn zave_never_loses_the_ring_under_churn() {
    let mut c = cfg();
    c.chord.successors = 3;
    c.chord.variant = Variant::Zave;
    let mut sim: Sim<Id64> = Sim::new(c, 41);
    sim.add_ring(12);
    let r = 3;
    let end = Time::from_millis(90_000);
    let mut next = Time::from_millis(500);
    let (mut joins, mut crashes, mut steps) = (0, 0, 0u64);
    while sim.now() < end {
        while sim.next_event_time().is_some_and(|t| t < next) {
            sim.step();
            steps += 1;
            if let Err(inv) = sim.check_invariants() {
                panic!(
                    "{} violated at {} after {joins} joins, {crashes} crashes",
                    inv.name(),
                    sim.now()
                );
            }
        }
        sim.run_until(next);
        let view = sim.ring_view();
        if sim.rng().chance(0.5) {
            let via = view.members[sim.rng().below(view.len() as u64) as usize].addr;
            let i = sim.add_random_node().unwrap();
            sim.join(i, via).unwrap();
            joins += 1;
        } else if view.len() > r + 1 {
            // Zave's assumption: every member keeps a live successor in its list
            let victim = view.members[sim.rng().below(view.len() as u64) as usize].addr;
            let safe = view.members.iter().all(|p| {
                p.addr == victim
                    || sim
                        .node(p.addr)
                        .unwrap()
                        .successors()
                        .iter()
                        .any(|s| s.addr != victim && sim.is_member(s.addr))
            });
            if safe {
                sim.crash(victim).unwrap();
                crashes += 1;
            }
        }
        let gap = sim.rng().range_inclusive(300, 2_500);
        next = sim.now() + Duration::from_millis(gap);
    }
    assert!(
        joins > 10 && crashes > 10,
        "{joins} joins, {crashes} crashes"
    );
    assert!(steps > 1000);
    sim.run_for(secs(60));
    assert_eq!(sim.check_invariants(), Ok(()));
    sim.check_ring().unwrap();
    let isolated = sim
        .events()
        .iter()
        .filter(|r| matches!(r.event, Event::Isolated))
        .count();
    assert_eq!(isolated, 0, "a member lost every successor");
}

#[test]
fn hostile_messages_are_rejected_and_counted() {
    let mut c = cfg();
    c.chord.max_keys = 500;
    let mut sim: Sim<Id64> = Sim::new(c, 51);
    sim.add_ring(10);
    sim.run_for(secs(2));
    let victim = 4u32;
    let outsider = 10_000u32; // no node has this address: answers to it go nowhere
    let me = sim.node(victim).unwrap().me();
    let before = sim.node(victim).unwrap().stats().rejected;
    let before_sim = sim.stats().rejected;
    let fake = Peer {
        id: Id64(42),
        addr: outsider,
    };

    // bytes that are no message: the codec rejects them before the node sees them
    for bytes in [
        vec![],
        vec![1],
        vec![2, 1, 0, 0, 0, 0],
        vec![1, 99],
        vec![1, 1, 0, 0, 0, 0],
        vec![0xff; 300],
    ] {
        sim.inject_bytes(outsider, victim, bytes);
    }
    // well-formed answers nobody asked for, and one-way messages that make no sense
    let hostile: Vec<(u32, Message<Id64, u32>)> = vec![
        (
            outsider,
            Message::Found {
                nonce: 7,
                owner: fake,
                alternates: [fake].into_iter().collect(),
            },
        ),
        (
            outsider,
            Message::Closer {
                nonce: 7,
                next: [fake].into_iter().collect(),
            },
        ),
        (
            outsider,
            Message::State {
                nonce: 7,
                id: Id64(42),
                pred: None,
                succs: Default::default(),
            },
        ),
        (outsider, Message::Pong { nonce: 7 }),
        (outsider, Message::Stored { nonce: 7 }),
        (
            outsider,
            Message::Value {
                nonce: 7,
                value: Some(vec![1; 10]),
            },
        ),
        (
            outsider,
            Message::Refused {
                nonce: 7,
                reason: ip2p::chord::Refusal::StoreFull,
            },
        ),
        (
            outsider,
            Message::Leave {
                id: Id64(42),
                pred: None,
                succs: Default::default(),
            },
        ),
        (outsider, Message::Notify { id: me.id }),
        (victim, Message::Ping { nonce: 1 }),
    ];
    let expected = hostile.len() as u64;
    for (from, msg) in hostile {
        sim.inject(from, victim, msg);
    }
    // a command that makes no sense now
    assert!(sim.join(victim, 0).is_err());
    // a flood of replicas cannot grow the store past max_keys
    for chunk in 0..10u64 {
        let items = (0..100)
            .map(|k| (Id64(chunk * 1000 + k), vec![0u8; 8]))
            .collect();
        sim.inject(outsider, victim, Message::Replicate { items });
    }
    sim.run_for(secs(5));
    assert_eq!(sim.stats().decode_errors, 6);
    let n = sim.node(victim).unwrap();
    assert_eq!(
        n.stats().rejected - before,
        expected + 1,
        "every hostile message and the bad command counted"
    );
    assert!(sim.stats().rejected - before_sim > expected);
    assert!(n.store().len() <= 500, "store grew to {}", n.store().len());
    assert!(n.stats().refused_keys > 0);
    assert_eq!(n.phase(), Phase::Member);
    // the ring carries on
    sim.check_ring().unwrap();
    let view = sim.ring_view();
    let key = sim.random_key();
    let op = sim.lookup(victim, key).unwrap();
    run_ops(&mut sim);
    let owner = sim.take_events().into_iter().find_map(|r| match r.event {
        Event::LookupDone { op: o, owner, .. } if o == op => Some(owner),
        _ => None,
    });
    assert_eq!(owner, view.owner(&key));
}

#[test]
fn ring_heals_after_a_lossy_period_with_joins() {
    // Zave's assumptions: the ring starts with more than r members. Loss makes nodes suspect
    // live peers (one lost answer = taken for dead); once loss stops, the ring must heal.
    let mut c = cfg();
    c.chord.successors = 4;
    c.loss = 0.03;
    let mut sim: Sim<Id64> = Sim::new(c, 61);
    sim.add_ring(12);
    for _ in 0..8 {
        let i = sim.add_random_node().unwrap();
        for attempt in 0.. {
            assert!(attempt < 20, "node {i} cannot join");
            let via = sim.rng().below(12) as u32;
            sim.join(i, via).unwrap();
            run_ops(&mut sim);
            if sim.node(i).unwrap().phase() == Phase::Member {
                break;
            }
        }
        sim.run_for(secs(2));
    }
    sim.run_for(secs(30));
    assert!(sim.stats().lost > 0);
    sim.set_loss(0.0);
    sim.run_for(secs(60));
    assert_eq!(sim.ring_view().len(), 20);
    assert_eq!(sim.check_invariants(), Ok(()));
    sim.check_ring().unwrap();
}

#[test]
fn stale_state_from_a_node_that_left_is_not_adopted() {
    // A asks its successor S for its state; S answers, then leaves; S's Leave overtakes the
    // State answer (datagrams reorder). A must not take S back as its successor.
    use ip2p::chord::{Config, Input, Node, Output};
    use ip2p::machine::Machine;
    let c = Config {
        successors: 2,
        ..Config::default()
    };
    let a = Peer {
        id: Id64(100),
        addr: 0u32,
    };
    let s = Peer {
        id: Id64(200),
        addr: 1u32,
    };
    let t = Peer {
        id: Id64(300),
        addr: 2u32,
    };
    let mut n = Node::with_state(a, c, Some(t), &[s, t], Time::ZERO);
    let tick = n.poll_timeout().unwrap();
    n.handle_timeout(tick);
    let mut nonce = None;
    while let Some(o) = n.poll() {
        if let Output::Send {
            to: 1,
            msg: Message::GetState { nonce: x },
        } = o
        {
            nonce = Some(x);
        }
    }
    let nonce = nonce.expect("stabilize asks the successor for its state");
    let leave = Message::Leave {
        id: s.id,
        pred: Some(a),
        succs: [t].into_iter().collect(),
    };
    n.handle(
        tick,
        Input::Message {
            from: 1,
            msg: leave,
        },
    )
    .unwrap();
    assert_eq!(n.successor(), Some(t));
    let state = Message::State {
        nonce,
        id: s.id,
        pred: Some(a),
        succs: [t].into_iter().collect(),
    };
    let _ = n.handle(
        tick,
        Input::Message {
            from: 1,
            msg: state,
        },
    );
    assert_eq!(
        n.successors(),
        &[t][..],
        "a late State answer re-adopted a successor that had left"
    );
}

#[test]
fn experiments_reproduce_the_papers_shape_at_small_scale() {
    // path length grows like ½·log2 N
    let rows = experiments::path_length(&[4, 8], 2_000, 1, 8);
    for row in &rows {
        let o = &row.outcomes;
        assert_eq!(o.correct, o.lookups, "{row:?}");
        assert!((o.hops.mean - row.half_log2_n).abs() < 1.5, "{row:?}");
    }
    assert!(rows[1].outcomes.hops.mean > rows[0].outcomes.hops.mean + 1.0);
    // load: counts from PutDone match the stores
    let (rows, verified) = experiments::load_balance(100, &[1_000, 5_000], 1);
    assert!(verified);
    assert_eq!(rows[1].keys, 5_000);
    assert!((rows[1].per_node.mean - 50.0).abs() < 1e-9);
    // failures: no lookup ends on a wrong live node; the owner-died fraction is about p
    let row = experiments::failures(200, 0.2, 500, 1, 8);
    assert_eq!(row.outcomes.wrong_live, 0, "{row:?}");
    assert!((row.owner_died - 0.2).abs() < 0.1, "{row:?}");
    assert!(row.timeouts.mean > 0.0);
}

#[test]
fn add_ring_builds_the_ideal_ring_with_ideal_fingers() {
    for n in [1usize, 2, 3, 17, 1000] {
        let mut sim: Sim<Id64> = Sim::new(cfg(), n as u64);
        sim.add_ring(n);
        sim.check_ring().unwrap();
        assert_eq!(sim.finger_errors().0, 0, "n = {n}");
        assert_eq!(sim.check_invariants(), Ok(()));
    }
}
