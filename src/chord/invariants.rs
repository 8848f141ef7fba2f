//! Zave's ring invariants, written once and used by the model (`models/src/chord.rs`), the fuzz
//! targets and the simulator.
//!
//! Definitions follow Zave, "Reasoning about identifier spaces: how to make Chord correct"
//! (IEEE TSE 2017). Only live members count: a node that is alive and has joined
//! ([`Phase::Member`]). A member's **best successor** is the first entry of its successor list that
//! is a live member; a member with an empty list is alone and is its own best successor. Following
//! best successors from any member ends in a cycle (a **ring**) or at a member with no live
//! successor.
//!
//! | name | meaning |
//! |------|---------|
//! | `AtLeastOneRing` | if there is a member, there is a ring |
//! | `AtMostOneRing` | there are not two disjoint rings |
//! | `OrderedRing` | the ring visits its members in identifier order, going round once |
//! | `ConnectedAppendages` | every member not on the ring reaches the ring by best successors |
//! | `OrderedSuccessorLists` | every member's successor list is in clockwise order from the member, without the member itself |
//! | `NoDuplicates` | no list names a node twice, and no two live members share an identifier |
//! | `KeysHeld` | (ours) every stored key is held by at least one live member (its owner or a replica) |

use alloc::sync::Arc;
use alloc::vec;
use alloc::vec::Vec;
use arrayvec::ArrayVec;

use super::{between, Address, Node, Phase, RingId};

/// An address that is also the index of its node in the slice given to the checks (models and
/// simulations number their nodes `0..n` and use the number as the address).
pub trait Indexed: Address {
    /// The node's index.
    fn index(self) -> usize;
}

macro_rules! indexed {
    ($($t:ty),*) => {$(
        impl Indexed for $t {
            fn index(self) -> usize { self as usize }
        }
    )*};
}
indexed!(u8, u16, u32, usize);

/// Something that holds a node: the node itself, or a shared pointer to it (the model keeps its
/// nodes behind [`Arc`] so that a step copies only the node it changes). Every check takes a
/// slice of either.
pub trait AsNode<I, A> {
    /// The node.
    fn node(&self) -> &Node<I, A>;
}

impl<I, A> AsNode<I, A> for Node<I, A> {
    #[inline]
    fn node(&self) -> &Node<I, A> {
        self
    }
}

impl<I, A, T: AsNode<I, A>> AsNode<I, A> for Arc<T> {
    #[inline]
    fn node(&self) -> &Node<I, A> {
        (**self).node()
    }
}

/// One of Zave's named invariants (and ours, `KeysHeld`, which needs the set of stored keys and is
/// checked by [`keys_held`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Invariant {
    /// If there is a member, some members form a ring.
    AtLeastOneRing,
    /// There are never two disjoint rings.
    AtMostOneRing,
    /// The ring goes round the identifier space once, in order.
    OrderedRing,
    /// Every member off the ring reaches it.
    ConnectedAppendages,
    /// Successor lists are in clockwise order from their owner.
    OrderedSuccessorLists,
    /// No duplicate entries in a list; no two live members with one identifier.
    NoDuplicates,
}

impl Invariant {
    /// Every ring invariant, in Zave's order.
    pub const ALL: [Invariant; 6] = [
        Invariant::AtLeastOneRing,
        Invariant::AtMostOneRing,
        Invariant::OrderedRing,
        Invariant::ConnectedAppendages,
        Invariant::OrderedSuccessorLists,
        Invariant::NoDuplicates,
    ];

    /// The name used in the spec, the model, the fuzz targets and `ip2p-check`'s output.
    pub const fn name(self) -> &'static str {
        match self {
            Invariant::AtLeastOneRing => "AtLeastOneRing",
            Invariant::AtMostOneRing => "AtMostOneRing",
            Invariant::OrderedRing => "OrderedRing",
            Invariant::ConnectedAppendages => "ConnectedAppendages",
            Invariant::OrderedSuccessorLists => "OrderedSuccessorLists",
            Invariant::NoDuplicates => "NoDuplicates",
        }
    }
}

/// The name of the key invariant checked by [`keys_held`].
pub const KEYS_HELD: &str = "KeysHeld";

/// Node counts up to which the checks run without touching the heap (models have at most 12
/// nodes; simulations with more fall back to vectors). Same algorithm either way.
const SMALL: usize = 32;

/// The best-successor graph of the live members, and its rings.
pub struct Shape {
    /// `member[i]`: node `i` is alive and has joined.
    pub member: Vec<bool>,
    /// `best[i]`: node `i`'s best successor (its own index when alone), if it has one.
    pub best: Vec<Option<usize>>,
    /// `ring[i]`: node `i` lies on a cycle of best successors.
    pub on_ring: Vec<bool>,
    /// How many disjoint cycles there are.
    pub rings: usize,
    /// Members whose best-successor walk ends at a member with no live successor.
    pub stranded: usize,
}

/// A [`Shape`] whose per-node tables live in borrowed slices (the stack, for small rings).
#[derive(Clone, Copy)]
struct View<'a> {
    member: &'a [bool],
    best: &'a [Option<usize>],
    on_ring: &'a [bool],
    rings: usize,
}

/// Fill `member`, `best` and `on_ring` (each of length `nodes.len()`, `on_ring` all false) and
/// count rings and stranded members. `mark` (all 0) and `walk` are scratch space of the same
/// length.
fn compute<I: RingId, A: Indexed, N: AsNode<I, A>>(
    nodes: &[N],
    alive: &dyn Fn(usize) -> bool,
    member: &mut [bool],
    best: &mut [Option<usize>],
    on_ring: &mut [bool],
    mark: &mut [u8],
    walk: &mut [usize],
) -> (usize, usize) {
    let n = nodes.len();
    for i in 0..n {
        member[i] = alive(i) && nodes[i].node().phase() == Phase::Member;
    }
    for i in 0..n {
        best[i] = if !member[i] {
            None
        } else {
            let s = nodes[i].node().successors();
            if s.is_empty() {
                Some(i)
            } else {
                s.iter()
                    .map(|p| p.addr.index())
                    .find(|&j| j < n && member[j])
            }
        };
    }
    // cycles of a functional graph: 0 unvisited, 1 on the current walk, 2 finished
    let mut rings = 0;
    let mut stranded = 0;
    for start in 0..n {
        if !member[start] || mark[start] != 0 {
            continue;
        }
        let mut len = 0;
        let mut cur = Some(start);
        while let Some(c) = cur {
            if mark[c] == 2 {
                break;
            }
            if mark[c] == 1 {
                // closed a new cycle: everything on the walk from c on
                rings += 1;
                let from = walk[..len].iter().position(|&w| w == c).unwrap_or(0);
                for &w in &walk[from..len] {
                    on_ring[w] = true;
                }
                break;
            }
            mark[c] = 1;
            walk[len] = c;
            len += 1;
            cur = best[c];
            if cur.is_none() {
                stranded += 1;
            }
        }
        for &w in &walk[..len] {
            mark[w] = 2;
        }
    }
    (rings, stranded)
}

/// Compute the shape of `nodes` on the stack (`nodes.len() <= SMALL`) and hand it to `f`.
fn with_small_shape<I: RingId, A: Indexed, N: AsNode<I, A>, R>(
    nodes: &[N],
    alive: &dyn Fn(usize) -> bool,
    f: impl FnOnce(View<'_>) -> R,
) -> R {
    let n = nodes.len();
    debug_assert!(n <= SMALL);
    let mut member = [false; SMALL];
    let mut best = [None; SMALL];
    let mut on_ring = [false; SMALL];
    let mut mark = [0u8; SMALL];
    let mut walk = [0usize; SMALL];
    let (rings, _) = compute(
        nodes,
        alive,
        &mut member[..n],
        &mut best[..n],
        &mut on_ring[..n],
        &mut mark[..n],
        &mut walk[..n],
    );
    f(View {
        member: &member[..n],
        best: &best[..n],
        on_ring: &on_ring[..n],
        rings,
    })
}

impl Shape {
    /// Compute the shape of `nodes`, where `alive(i)` tells whether node `i` is up.
    pub fn of<I: RingId, A: Indexed, N: AsNode<I, A>>(
        nodes: &[N],
        alive: impl Fn(usize) -> bool,
    ) -> Shape {
        let n = nodes.len();
        let mut member = vec![false; n];
        let mut best = vec![None; n];
        let mut on_ring = vec![false; n];
        let mut mark = vec![0u8; n];
        let mut walk = vec![0usize; n];
        let (rings, stranded) = compute(
            nodes,
            &alive,
            &mut member,
            &mut best,
            &mut on_ring,
            &mut mark,
            &mut walk,
        );
        Shape {
            member,
            best,
            on_ring,
            rings,
            stranded,
        }
    }

    fn view(&self) -> View<'_> {
        View {
            member: &self.member,
            best: &self.best,
            on_ring: &self.on_ring,
            rings: self.rings,
        }
    }
}

impl View<'_> {
    fn reaches_ring(&self, mut i: usize) -> bool {
        // a walk of at most n steps either meets the ring or a dead end
        for _ in 0..=self.best.len() {
            if self.on_ring[i] {
                return true;
            }
            match self.best[i] {
                Some(j) => i = j,
                None => return false,
            }
        }
        false
    }
}

/// Does `inv` hold over `nodes`?
pub fn holds<I: RingId, A: Indexed, N: AsNode<I, A>>(
    inv: Invariant,
    nodes: &[N],
    alive: impl Fn(usize) -> bool,
) -> bool {
    match inv {
        Invariant::OrderedSuccessorLists => ordered_successor_lists(nodes, &alive),
        Invariant::NoDuplicates => no_duplicates(nodes, &alive),
        _ if nodes.len() <= SMALL => with_small_shape(nodes, &alive, |v| holds_view(inv, nodes, v)),
        _ => holds_on(inv, nodes, &Shape::of(nodes, &alive)),
    }
}

/// Does `inv` hold, given the [`Shape`] already computed (saves recomputing it per invariant)?
pub fn holds_on<I: RingId, A: Indexed, N: AsNode<I, A>>(
    inv: Invariant,
    nodes: &[N],
    shape: &Shape,
) -> bool {
    holds_view(inv, nodes, shape.view())
}

fn holds_view<I: RingId, A: Indexed, N: AsNode<I, A>>(
    inv: Invariant,
    nodes: &[N],
    shape: View<'_>,
) -> bool {
    match inv {
        Invariant::AtLeastOneRing => shape.rings >= 1 || !shape.member.iter().any(|&m| m),
        Invariant::AtMostOneRing => shape.rings <= 1,
        Invariant::OrderedRing => ordered_ring(nodes, shape),
        Invariant::ConnectedAppendages => {
            (0..nodes.len()).all(|i| !shape.member[i] || shape.on_ring[i] || shape.reaches_ring(i))
        }
        Invariant::OrderedSuccessorLists => ordered_successor_lists(nodes, &|i| shape.member[i]),
        Invariant::NoDuplicates => no_duplicates(nodes, &|i| shape.member[i]),
    }
}

/// The first invariant that fails, if any.
pub fn first_violation<I: RingId, A: Indexed, N: AsNode<I, A>>(
    nodes: &[N],
    alive: impl Fn(usize) -> bool,
) -> Option<Invariant> {
    let find = |v: View<'_>| {
        Invariant::ALL
            .into_iter()
            .find(|&inv| !holds_view(inv, nodes, v))
    };
    if nodes.len() <= SMALL {
        with_small_shape(nodes, &alive, find)
    } else {
        find(Shape::of(nodes, &alive).view())
    }
}

fn ordered_ring<I: RingId, A: Indexed, N: AsNode<I, A>>(nodes: &[N], shape: View<'_>) -> bool {
    // each ring member's best successor must be the next ring member in identifier order
    let on_ring = (0..nodes.len())
        .filter(|&i| shape.on_ring[i])
        .map(|i| (nodes[i].node().me().id, i));
    if nodes.len() <= SMALL {
        let mut ring: ArrayVec<(I, usize), SMALL> = on_ring.collect();
        ordered_ring_in(nodes, shape, &mut ring)
    } else {
        let mut ring: Vec<(I, usize)> = on_ring.collect();
        ordered_ring_in(nodes, shape, &mut ring)
    }
}

fn ordered_ring_in<I: RingId, A: Indexed, N: AsNode<I, A>>(
    nodes: &[N],
    shape: View<'_>,
    ring: &mut [(I, usize)],
) -> bool {
    if ring.len() <= 1 {
        return true;
    }
    ring.sort_unstable();
    let ring = &*ring;
    let pos = |i: usize| ring.iter().position(|&(_, j)| j == i);
    // with several rings, order each one among its own members
    if shape.rings > 1 {
        return (0..nodes.len()).filter(|&i| shape.on_ring[i]).all(|i| {
            let Some(s) = shape.best[i] else { return false };
            let (a, b) = (nodes[i].node().me().id, nodes[s].node().me().id);
            !(0..nodes.len()).any(|m| {
                m != i
                    && m != s
                    && shape.on_ring[m]
                    && same_cycle(shape, i, m)
                    && between(&a, &nodes[m].node().me().id, &b)
            })
        });
    }
    ring.iter().enumerate().all(|(k, &(_, i))| {
        let next = ring[(k + 1) % ring.len()].1;
        shape.best[i] == Some(next) && pos(next).is_some()
    })
}

fn same_cycle(shape: View<'_>, a: usize, b: usize) -> bool {
    let mut c = a;
    for _ in 0..shape.best.len() {
        match shape.best[c] {
            Some(n) if n == b => return true,
            Some(n) if n == a => return false,
            Some(n) => c = n,
            None => return false,
        }
    }
    false
}

fn ordered_successor_lists<I: RingId, A: Indexed, N: AsNode<I, A>>(
    nodes: &[N],
    alive: &dyn Fn(usize) -> bool,
) -> bool {
    nodes.iter().map(AsNode::node).enumerate().all(|(i, n)| {
        if !alive(i) || n.phase() != Phase::Member {
            return true;
        }
        let me = n.me().id;
        let s = n.successors();
        s.iter().all(|p| p.id != me) && s.windows(2).all(|w| between(&me, &w[0].id, &w[1].id))
    })
}

fn no_duplicates<I: RingId, A: Indexed, N: AsNode<I, A>>(
    nodes: &[N],
    alive: &dyn Fn(usize) -> bool,
) -> bool {
    let lists_ok = nodes.iter().map(AsNode::node).enumerate().all(|(i, n)| {
        let s = n.successors();
        !alive(i)
            || s.iter()
                .enumerate()
                .all(|(k, p)| s[..k].iter().all(|q| q.id != p.id && q.addr != p.addr))
    });
    if !lists_ok {
        return false;
    }
    let ids = (0..nodes.len())
        .filter(|&i| alive(i) && nodes[i].node().phase() == Phase::Member)
        .map(|i| nodes[i].node().me().id);
    if nodes.len() <= SMALL {
        let mut ids: ArrayVec<I, SMALL> = ids.collect();
        distinct(&mut ids)
    } else {
        let mut ids: Vec<I> = ids.collect();
        distinct(&mut ids)
    }
}

/// No two equal entries (sorts `ids`).
fn distinct<I: Ord>(ids: &mut [I]) -> bool {
    ids.sort_unstable();
    ids.windows(2).all(|w| w[0] != w[1])
}

/// `KeysHeld`: every key in `keys` is held by at least one live member.
pub fn keys_held<I: RingId, A: Indexed, N: AsNode<I, A>>(
    nodes: &[N],
    alive: impl Fn(usize) -> bool,
    keys: &[I],
) -> bool {
    keys.iter().all(|k| {
        nodes
            .iter()
            .map(AsNode::node)
            .enumerate()
            .any(|(i, n)| alive(i) && n.phase() == Phase::Member && n.store().contains_key(k))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::chord::{Config, Peer, SmallId};
    use crate::Time;

    type Id = SmallId<4>;

    fn p(id: u8, addr: u8) -> Peer<Id, u8> {
        Peer {
            id: SmallId(id),
            addr,
        }
    }

    fn node(idx: u8, id: u8, succs: &[Peer<Id, u8>]) -> Node<Id, u8> {
        let cfg = Config {
            successors: 2,
            fingers: false,
            ..Config::default()
        };
        Node::with_state(p(id, idx), cfg, None, succs, Time::ZERO)
    }

    #[test]
    fn ideal_ring_holds_everything() {
        // ids 1, 5, 9 at addresses 0, 1, 2
        let nodes = vec![
            node(0, 1, &[p(5, 1), p(9, 2)]),
            node(1, 5, &[p(9, 2), p(1, 0)]),
            node(2, 9, &[p(1, 0), p(5, 1)]),
        ];
        assert_eq!(first_violation(&nodes, |_| true), None);
        // node 1 dies: 0 skips to 9, which still closes one ordered ring
        assert_eq!(first_violation(&nodes, |i| i != 1), None);
    }

    #[test]
    fn two_rings_and_disorder_are_caught() {
        // 1 -> 9 -> 1 and 5 -> 12 -> 5: two rings
        let nodes = vec![
            node(0, 1, &[p(9, 2)]),
            node(1, 5, &[p(12, 3)]),
            node(2, 9, &[p(1, 0)]),
            node(3, 12, &[p(5, 1)]),
        ];
        assert!(!holds(Invariant::AtMostOneRing, &nodes, |_| true));
        assert!(holds(Invariant::AtLeastOneRing, &nodes, |_| true));
        // 1 -> 9 -> 5 -> 1: one ring, out of order (goes round twice)
        let nodes = vec![
            node(0, 1, &[p(9, 2)]),
            node(1, 5, &[p(1, 0)]),
            node(2, 9, &[p(5, 1)]),
        ];
        assert!(holds(Invariant::AtMostOneRing, &nodes, |_| true));
        assert!(!holds(Invariant::OrderedRing, &nodes, |_| true));
    }

    #[test]
    fn appendages_and_lists() {
        // 0 -> 1 -> 2 -> 0 ring; 3 (id 7) hangs off 2 (id 9): connected
        let mut nodes = vec![
            node(0, 1, &[p(5, 1)]),
            node(1, 5, &[p(9, 2)]),
            node(2, 9, &[p(1, 0)]),
            node(3, 7, &[p(9, 2)]),
        ];
        assert!(holds(Invariant::ConnectedAppendages, &nodes, |_| true));
        // with 2 dead, 3 has no live successor and 1 neither: no ring, stranded members
        assert!(!holds(Invariant::ConnectedAppendages, &nodes, |i| i != 2));
        assert!(!holds(Invariant::AtLeastOneRing, &nodes, |i| i != 2));
        // a list out of clockwise order
        nodes[0] = node(0, 1, &[p(9, 2), p(5, 1)]);
        assert!(!holds(Invariant::OrderedSuccessorLists, &nodes, |_| true));
    }

    #[test]
    fn keys_need_a_live_holder() {
        let mut a = node(0, 1, &[p(5, 1)]);
        let b = node(1, 5, &[p(1, 0)]);
        let _ = &mut a;
        let nodes = vec![a, b];
        assert!(keys_held(&nodes, |_| true, &[]));
        assert!(!keys_held(&nodes, |_| true, &[SmallId(3)]));
    }
}
