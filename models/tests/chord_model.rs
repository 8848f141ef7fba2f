//! The Chord model's key properties are not vacuous: the states they constrain are reachable, and
//! the predicate fails where it should.

use std::collections::{HashSet, VecDeque};

use ip2p::chord::{Phase, Variant};
use ip2p_models::check::Bounds;
use ip2p_models::chord::{ideal, key_at_owner, ChordModel, State};
use stateright::Model;

fn all_members_alive(s: &State) -> bool {
    s.alive.count_ones() as usize == s.nodes.len()
        && s.nodes.iter().all(|n| n.phase() == Phase::Member)
}

/// Breadth-first search of the real model for the first state that satisfies `goal`.
fn find(model: &ChordModel, goal: impl Fn(&State) -> bool, limit: usize) -> Option<State> {
    let mut seen = HashSet::new();
    let mut queue: VecDeque<State> = model.init_states().into();
    let mut actions = Vec::new();
    while let Some(s) = queue.pop_front() {
        if goal(&s) {
            return Some(s);
        }
        if seen.len() > limit {
            return None;
        }
        actions.clear();
        model.actions(&s, &mut actions);
        for a in actions.drain(..) {
            if let Some(n) = model.next_state(&s, a) {
                if seen.insert(n.clone()) {
                    queue.push_back(n);
                }
            }
        }
    }
    None
}

/// The keys variant at 4 nodes without crashes, its first reachable state where the ring is ideal,
/// nothing is in flight and the joiner is a member, and the index of the joiner: the key sits at
/// the joiner's id, so the joiner is the key's owner there.
fn quiet_ring_with_joiner() -> (ChordModel, State, usize) {
    let b = Bounds {
        nodes: Some(4),
        failures: Some(0),
        ..Bounds::default()
    };
    let model = ChordModel::new(Variant::Zave, true, &b).expect("bounds");
    let quiet = find(
        &model,
        |s| s.net.is_empty() && ideal(s) && all_members_alive(s),
        2_000_000,
    )
    .expect("a quiet ideal ring with the joiner in it is reachable");
    let key = quiet.keys[0];
    let joiner = quiet
        .nodes
        .iter()
        .position(|n| n.me().id == key)
        .expect("the joiner owns the key");
    (model, quiet, joiner)
}

#[test]
fn the_joiner_receives_the_keys_it_now_owns() {
    let (model, quiet, joiner) = quiet_ring_with_joiner();
    assert!(
        quiet.nodes[joiner].store().contains_key(&quiet.keys[0]),
        "hand-over on join lost the key"
    );
    assert!(key_at_owner(&model, &quiet));
}

#[test]
fn key_at_owner_fails_when_the_owner_lacks_the_key() {
    let (model, mut quiet, joiner) = quiet_ring_with_joiner();
    // rebuild the owner without its store: same pointers, no key
    let n = &quiet.nodes[joiner];
    let bare = ip2p::chord::Node::with_state(
        n.me(),
        n.config().clone(),
        n.predecessor(),
        n.successors(),
        ip2p::Time::ZERO,
    );
    quiet.nodes[joiner] = bare;
    assert!(ideal(&quiet));
    assert!(!key_at_owner(&model, &quiet));
}
