//! The Chord paper's experiments (Stoica et al., SIGCOMM 2001 / IEEE/ACM ToN 2003), run on real
//! [`Node`](crate::chord::Node)s in the [`Sim`]. The `ip2p-sim` binary prints these; the numbers
//! and the commands that reproduce them are in `spec/chord-sim.md`.

use std::time::{Duration, Instant};

use super::{RingView, Sim, SimConfig};
use crate::chord::{Event, Id64, OpId, RingId};
use crate::time::Time;

/// Mean, extremes and percentiles of a sample.
#[derive(Clone, Debug, Default, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct Summary {
    /// Number of values.
    pub count: usize,
    /// Mean.
    pub mean: f64,
    /// 1st percentile (nearest rank).
    pub p1: f64,
    /// Median.
    pub p50: f64,
    /// 99th percentile (nearest rank).
    pub p99: f64,
    /// Smallest value.
    pub min: f64,
    /// Largest value.
    pub max: f64,
}

impl Summary {
    /// Summarize `values` (sorted here).
    pub fn of(mut values: Vec<f64>) -> Summary {
        if values.is_empty() {
            return Summary::default();
        }
        values.sort_by(f64::total_cmp);
        let n = values.len();
        let rank = |q: f64| values[((q * n as f64).ceil() as usize).clamp(1, n) - 1];
        Summary {
            count: n,
            mean: values.iter().sum::<f64>() / n as f64,
            p1: rank(0.01),
            p50: rank(0.5),
            p99: rank(0.99),
            min: values[0],
            max: values[n - 1],
        }
    }
}

/// How the lookups of one run ended.
#[derive(Clone, Debug, Default, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct LookupOutcomes {
    /// Lookups issued.
    pub lookups: u64,
    /// `LookupDone` naming the key's true owner among the live members at completion.
    pub correct: u64,
    /// `LookupDone` naming a live node that is not the key's owner.
    pub wrong_live: u64,
    /// `LookupDone` naming a crashed node (the lookup never contacts the owner it names).
    pub dead_owner: u64,
    /// `OpFailed` (every next hop timed out, or too many hops).
    pub failed: u64,
    /// Lookups that had not finished when the run ended.
    pub unfinished: u64,
    /// Hops of finished lookups ([`Event::LookupDone`]'s `hops`: nodes asked, timed-out ones
    /// included).
    pub hops: Summary,
}

/// Result of [`run`].
#[derive(Clone, Debug, Default, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct RunReport {
    /// Ring size before failures.
    pub nodes: usize,
    /// `r`.
    pub successors: u8,
    /// Seed.
    pub seed: u64,
    /// Fraction of nodes crashed at time zero.
    pub fail_fraction: f64,
    /// Nodes crashed.
    pub crashed: usize,
    /// Maintenance period in ms (0: off).
    pub stabilize_ms: u64,
    /// Outcomes.
    pub outcomes: LookupOutcomes,
    /// Messages delivered.
    pub delivered: u64,
    /// Simulated time at the end, ms.
    pub sim_ms: u64,
    /// Wall-clock seconds to build the ring.
    pub build_secs: f64,
    /// Wall-clock seconds to run the lookups.
    pub run_secs: f64,
    /// Mean [`Node::memory_bytes`](crate::chord::Node::memory_bytes) over all nodes.
    pub node_bytes_mean: f64,
    /// Largest events queue.
    pub peak_queue: usize,
}

/// A stabilized ring of `nodes` real nodes with `r` successors; crash `fail_fraction` of them at
/// time zero; issue `lookups` lookups of random keys from random live nodes, at most
/// `32 × nodes` (≤ 50 000) at once; count how they end. `stabilize_ms == 0` turns maintenance
/// off (static ring).
pub fn run(
    nodes: usize,
    lookups: u64,
    seed: u64,
    fail_fraction: f64,
    successors: u8,
    stabilize_ms: u64,
) -> RunReport {
    let mut cfg = SimConfig::default();
    cfg.chord.successors = successors;
    cfg = if stabilize_ms == 0 {
        cfg.without_maintenance()
    } else {
        cfg.chord.stabilize_every = Duration::from_millis(stabilize_ms);
        cfg
    };
    let t0 = Instant::now();
    let mut sim: Sim<Id64> = Sim::new(cfg, seed);
    sim.add_ring(nodes);
    let crashed = crash_fraction(&mut sim, fail_fraction);
    let build_secs = t0.elapsed().as_secs_f64();
    let t1 = Instant::now();
    let batch = (nodes as u64 * 32).clamp(1, 50_000);
    let outcomes = lookups_in_batches(&mut sim, lookups, batch);
    let run_secs = t1.elapsed().as_secs_f64();
    RunReport {
        nodes,
        successors: sim.config().chord.successors,
        seed,
        fail_fraction,
        crashed,
        stabilize_ms,
        outcomes,
        delivered: sim.stats().delivered,
        sim_ms: sim.now().as_millis(),
        build_secs,
        run_secs,
        node_bytes_mean: sim.memory_bytes() as f64 / nodes.max(1) as f64,
        peak_queue: sim.stats().peak_queue,
    }
}

/// Crash `round(fraction × live nodes)` random live nodes; returns how many.
pub fn crash_fraction<I: RingId>(sim: &mut Sim<I>, fraction: f64) -> usize {
    let mut live: Vec<u32> = (0..sim.len() as u32).filter(|&i| sim.is_alive(i)).collect();
    let k = ((fraction.clamp(0.0, 1.0) * live.len() as f64).round() as usize).min(live.len());
    sim.rng().shuffle(&mut live);
    for &i in &live[..k] {
        let _ = sim.crash(i);
    }
    k
}

fn random_member<I: RingId>(sim: &mut Sim<I>, view: &RingView<I>) -> Option<u32> {
    if view.is_empty() {
        return None;
    }
    let k = sim.rng().below(view.len() as u64) as usize;
    Some(view.members[k].addr)
}

/// Issue `lookups` lookups from random live members in batches of `batch`, waiting for each
/// batch to finish (one simulated hour at most), and classify the answers against the live ring.
pub fn lookups_in_batches<I: RingId>(sim: &mut Sim<I>, lookups: u64, batch: u64) -> LookupOutcomes {
    let mut out = LookupOutcomes::default();
    let mut hops = Vec::with_capacity(lookups.min(1 << 24) as usize);
    let mut left = lookups;
    while left > 0 {
        let view = sim.ring_view();
        let b = left.min(batch.max(1));
        left -= b;
        let mut issued = 0;
        for _ in 0..b {
            let Some(from) = random_member(sim, &view) else {
                break;
            };
            let key = sim.random_key();
            if sim.lookup(from, key).is_ok() {
                issued += 1;
            }
        }
        out.lookups += issued;
        let limit = sim.now() + Duration::from_secs(3600);
        sim.run_until_ops_done(limit);
        let view = sim.ring_view();
        let mut finished = 0;
        for r in sim.take_events() {
            match r.event {
                Event::LookupDone {
                    key,
                    owner,
                    hops: h,
                    ..
                } => {
                    finished += 1;
                    hops.push(f64::from(h));
                    if !sim.is_alive(owner.addr) {
                        out.dead_owner += 1;
                    } else if view.owner(&key) == Some(owner) {
                        out.correct += 1;
                    } else {
                        out.wrong_live += 1;
                    }
                }
                Event::OpFailed { .. } => {
                    finished += 1;
                    out.failed += 1;
                }
                _ => {}
            }
        }
        out.unfinished += issued.saturating_sub(finished);
    }
    out.hops = Summary::of(hops);
    out
}

/// One row of the path-length experiment (paper: Fig. 10 of the ToN version).
#[derive(Clone, Debug, Default, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct PathLengthRow {
    /// N.
    pub nodes: usize,
    /// ½·log2 N, the paper's prediction of the mean.
    pub half_log2_n: f64,
    /// The lookups and their hop counts.
    pub outcomes: LookupOutcomes,
}

/// Mean lookup path length in a stabilized, static ring of `2^k` nodes for each `k` in `exps`.
pub fn path_length(exps: &[u32], lookups: u64, seed: u64, successors: u8) -> Vec<PathLengthRow> {
    exps.iter()
        .map(|&k| {
            let n = 1usize << k;
            let r = run(n, lookups, seed ^ u64::from(k), 0.0, successors, 0);
            PathLengthRow {
                nodes: n,
                half_log2_n: 0.5 * f64::from(k),
                outcomes: r.outcomes,
            }
        })
        .collect()
}

/// One row of the load-balance experiment (paper: Fig. 8(a)).
#[derive(Clone, Debug, Default, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct LoadRow {
    /// N.
    pub nodes: usize,
    /// Keys stored so far.
    pub keys: u64,
    /// Keys per node: mean, percentiles.
    pub per_node: Summary,
    /// Nodes that own no key.
    pub empty_nodes: usize,
    /// Puts that failed.
    pub failed_puts: u64,
}

/// Store `max(key_steps)` random keys with `put` from random nodes of a static ring of `nodes`
/// (r = 1, empty values) and, after each step's number of keys, count the keys each node owns
/// (by the owners named in `PutDone`). At the end the count is checked against every node's own
/// store (`verified`).
pub fn load_balance(nodes: usize, key_steps: &[u64], seed: u64) -> (Vec<LoadRow>, bool) {
    let mut cfg = SimConfig::default().without_maintenance();
    cfg.chord.successors = 1;
    cfg.chord.max_keys = u32::MAX;
    let mut sim: Sim<Id64> = Sim::new(cfg, seed);
    let ring = sim.add_ring(nodes);
    let view = sim.ring_view();
    let mut counts = vec![0u64; nodes];
    let mut rows = Vec::new();
    let mut stored = 0u64;
    let mut failed = 0u64;
    let mut steps: Vec<u64> = key_steps.to_vec();
    steps.sort_unstable();
    for &target in &steps {
        while stored + failed < target {
            let b = (target - stored - failed).min(50_000);
            for _ in 0..b {
                let Some(from) = random_member(&mut sim, &view) else {
                    break;
                };
                let key = sim.random_key();
                if sim.put(from, key, Vec::new()).is_err() {
                    failed += 1;
                }
            }
            let limit = sim.now() + Duration::from_secs(3600);
            sim.run_until_ops_done(limit);
            for r in sim.take_events() {
                match r.event {
                    Event::PutDone { owner, .. } => {
                        stored += 1;
                        counts[(owner.addr - ring.start) as usize] += 1;
                    }
                    Event::OpFailed { .. } => failed += 1,
                    _ => {}
                }
            }
        }
        rows.push(LoadRow {
            nodes,
            keys: stored,
            per_node: Summary::of(counts.iter().map(|&c| c as f64).collect()),
            empty_nodes: counts.iter().filter(|&&c| c == 0).count(),
            failed_puts: failed,
        });
    }
    let verified = ring.clone().all(|i| {
        let n = &sim.nodes()[i as usize];
        let own = n.store().keys().filter(|k| n.owns(k)).count() as u64;
        own == counts[(i - ring.start) as usize]
    });
    (rows, verified)
}

/// One row of the simultaneous-failures experiment (paper: ToN Table III / Fig. 11–12).
#[derive(Clone, Debug, Default, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct FailureRow {
    /// N before the failures.
    pub nodes: usize,
    /// `r`.
    pub successors: u8,
    /// p, the fraction of nodes crashed at once.
    pub fail_fraction: f64,
    /// How the lookups ended (against the live ring).
    pub outcomes: LookupOutcomes,
    /// Fraction of the looked-up keys whose owner *before* the failures crashed: the paper's
    /// "lookup failure" (keys lost without replication).
    pub owner_died: f64,
    /// Timeouts met by each lookup (requests to crashed nodes).
    pub timeouts: Summary,
}

/// A stabilized ring of `nodes`, maintenance stopped; crash a fraction `p` at once; then
/// `lookups` lookups one after the other from random live nodes, before any repair.
pub fn failures(nodes: usize, p: f64, lookups: u64, seed: u64, successors: u8) -> FailureRow {
    let mut cfg = SimConfig::default().without_maintenance();
    cfg.chord.successors = successors;
    let mut sim: Sim<Id64> = Sim::new(cfg, seed);
    sim.add_ring(nodes);
    let before = sim.ring_view();
    crash_fraction(&mut sim, p);
    let live = sim.ring_view();
    let mut out = LookupOutcomes::default();
    let mut hops = Vec::new();
    let mut timeouts = Vec::new();
    let mut owner_died = 0u64;
    for _ in 0..lookups {
        let Some(from) = random_member(&mut sim, &live) else {
            break;
        };
        let key = sim.random_key();
        if before.owner(&key).is_some_and(|o| !sim.is_alive(o.addr)) {
            owner_died += 1;
        }
        let t0 = sim.node(from).map_or(0, |n| n.stats().timeouts);
        let Ok(op) = sim.lookup(from, key) else {
            continue;
        };
        out.lookups += 1;
        let limit = sim.now() + Duration::from_secs(3600);
        if !sim.run_until_ops_done(limit) {
            out.unfinished += 1;
        }
        timeouts.push((sim.node(from).map_or(0, |n| n.stats().timeouts) - t0) as f64);
        for r in sim.take_events() {
            match r.event {
                Event::LookupDone {
                    op: o,
                    owner,
                    hops: h,
                    ..
                } if o == op => {
                    hops.push(f64::from(h));
                    if !sim.is_alive(owner.addr) {
                        out.dead_owner += 1;
                    } else if live.owner(&key) == Some(owner) {
                        out.correct += 1;
                    } else {
                        out.wrong_live += 1;
                    }
                }
                Event::OpFailed { op: o, .. } if o == op => out.failed += 1,
                _ => {}
            }
        }
    }
    out.hops = Summary::of(hops);
    FailureRow {
        nodes,
        successors: sim.config().chord.successors,
        fail_fraction: p,
        owner_died: owner_died as f64 / out.lookups.max(1) as f64,
        outcomes: out,
        timeouts: Summary::of(timeouts),
    }
}

/// Result of [`churn`].
#[derive(Clone, Debug, Default, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct ChurnReport {
    /// Ring size at the start.
    pub nodes: usize,
    /// Joins per second and crashes per second (each).
    pub rate: f64,
    /// Simulated seconds of churn.
    pub secs: u64,
    /// Joins started.
    pub joins: u64,
    /// Crashes.
    pub crashes: u64,
    /// Lookups during churn (N/100 per simulated second, at least one), each classified
    /// against the live ring at the first churn or lookup event after it finished.
    pub outcomes: LookupOutcomes,
    /// After the churn stopped and 60 s of quiet: did the live members form the ideal ring?
    pub ring_ideal_after: bool,
    /// Live members at the end.
    pub members_after: usize,
}

/// A stabilized ring of `nodes` (maintenance every `stabilize_ms`) under churn: new nodes join
/// and random members crash, each at `rate` per second (Poisson), for `secs` simulated
/// seconds, while lookups run; then 60 quiet seconds. Crashes are skipped while the ring has
/// `r + 1` members or fewer (Zave's assumption).
pub fn churn(
    nodes: usize,
    rate: f64,
    secs: u64,
    seed: u64,
    successors: u8,
    stabilize_ms: u64,
) -> ChurnReport {
    let mut cfg = SimConfig::default();
    cfg.chord.successors = successors;
    cfg.chord.stabilize_every = Duration::from_millis(stabilize_ms.max(1));
    let mut sim: Sim<Id64> = Sim::new(cfg, seed);
    sim.add_ring(nodes);
    let mut rep = ChurnReport {
        nodes,
        rate,
        secs,
        ..ChurnReport::default()
    };
    let end = Time::from_millis(secs * 1000);
    let lookup_rate = (nodes as f64 / 100.0).max(1.0);
    let exp = |sim: &mut Sim<Id64>, per_s: f64| -> Duration {
        if per_s <= 0.0 {
            return Duration::from_secs(u32::MAX as u64);
        }
        let u = 1.0 - sim.rng().unit();
        Duration::from_secs_f64((-u.ln() / per_s).min(1e9))
    };
    let mut next_join = Time::ZERO + exp(&mut sim, rate);
    let mut next_crash = Time::ZERO + exp(&mut sim, rate);
    let mut next_lookup = Time::ZERO + exp(&mut sim, lookup_rate);
    let mut hops = Vec::new();
    let mut pending: u64 = 0;
    loop {
        let t = next_join.min(next_crash).min(next_lookup);
        if t > end {
            break;
        }
        sim.run_until(t);
        classify(&mut sim, &mut rep.outcomes, &mut hops, &mut pending);
        let view = sim.ring_view();
        if t == next_join {
            next_join = t + exp(&mut sim, rate);
            if let (Some(via), Ok(i)) = (random_member(&mut sim, &view), sim.add_random_node()) {
                if sim.join(i, via).is_ok() {
                    rep.joins += 1;
                }
            }
        } else if t == next_crash {
            next_crash = t + exp(&mut sim, rate);
            // Zave's assumption: never fewer than r + 1 members
            if view.len() > successors as usize + 1 {
                if let Some(i) = random_member(&mut sim, &view) {
                    let _ = sim.crash(i);
                    rep.crashes += 1;
                }
            }
        } else {
            next_lookup = t + exp(&mut sim, lookup_rate);
            if let Some(from) = random_member(&mut sim, &view) {
                let key = sim.random_key();
                if sim.lookup(from, key).is_ok() {
                    rep.outcomes.lookups += 1;
                    pending += 1;
                }
            }
        }
    }
    sim.run_until(end + Duration::from_secs(60));
    classify(&mut sim, &mut rep.outcomes, &mut hops, &mut pending);
    rep.outcomes.unfinished = pending;
    rep.outcomes.hops = Summary::of(hops);
    rep.ring_ideal_after = sim.check_ring().is_ok();
    rep.members_after = sim.ring_view().len();
    rep
}

fn classify(sim: &mut Sim<Id64>, out: &mut LookupOutcomes, hops: &mut Vec<f64>, pending: &mut u64) {
    let events = sim.take_events();
    if events.is_empty() {
        return;
    }
    let view = sim.ring_view();
    for r in events {
        match r.event {
            Event::LookupDone {
                key,
                owner,
                hops: h,
                ..
            } => {
                *pending = pending.saturating_sub(1);
                hops.push(f64::from(h));
                if !sim.is_alive(owner.addr) {
                    out.dead_owner += 1;
                } else if view.owner(&key) == Some(owner) {
                    out.correct += 1;
                } else {
                    out.wrong_live += 1;
                }
            }
            Event::OpFailed { op: OpId(_), .. } => {
                *pending = pending.saturating_sub(1);
                out.failed += 1;
            }
            _ => {}
        }
    }
}
