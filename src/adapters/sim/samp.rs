//! The SAMP paper's simulation (Pack et al., IEEE Network 2007, "Simulation results", Fig. 4 and
//! Fig. 5), driving the real SAMP machines.
//!
//! A grid of `grid × grid` access routers (ARs) is cut into `block × block` domains; each domain
//! has one SIP server (SAMP) or MAP (HMIPv6) at its centre AR, and one HA (MIPv6) sits at the grid
//! centre. Mobile nodes (MNs) start at uniformly random ARs and move once per residence time:
//! towards a hotspot AR with probability α, else to a random 4-neighbour on the grid.
//!
//! **What runs.** Every SAMP number comes from the real machines: one
//! [`Server`] per domain on a stabilized Chord ring (built with
//! [`Node::with_state`] and [`Node::set_ideal_fingers`], [`Id64`] ids = SHA-1 of the server's
//! address, maintenance off because the ring is static), one
//! [`MobileNode`] per MN and one
//! [`Correspondent`] per MN (its caller, at a random
//! AR). Typed [`Message`]s and Chord messages are passed in memory, not encoded. A discrete-event
//! loop delivers every output after `hop_ms` per grid hop and fires the timers the machines ask
//! for, so δ decisions see response times derived from grid distance. MIPv6 and HMIPv6 are
//! analytic baselines computed from the same mobility traces and calls (no machines).
//!
//! **Hops.** The distance between two nodes is the Manhattan distance between their ARs (an MN
//! sits at its AR, a CN at its AR, a server or MAP at its domain's centre AR, the HA at the grid
//! centre). A SIP request sent from A to B costs that distance; a request a server forwards after
//! a Chord lookup ([`Route::Overlay`]) costs the recursive-equivalent overlay path instead:
//! server → every node the iterative lookup queried, in order → the home, each leg by grid
//! distance. See `spec/samp.md`, "Paper simulation".
//!
//! Results do not depend on the thread count: each MN's trace, draws and caller come from its own
//! seeded [`SplitMix64`], and all per-MN state on the servers is keyed by that MN's AOR.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::time::{Duration, Instant};

use super::SplitMix64;
use crate::chord::{self, Id64, Node, Peer};
use crate::machine::Machine;
use crate::samp::correspondent::{self, CallId, Correspondent, CorrespondentConfig, Path};
use crate::samp::mobile::{self, MobileConfig, MobileNode, Registration};
use crate::samp::server::{self, ProxyMode, Route, Server, ServerConfig, MCAST_GROUP, MCAST_HOST};
use crate::samp::Aor;
use crate::sip::{Message, Method, Request, SipUri, Via};
use crate::{Time, TransportAddr};

/// The set-up of one simulation (defaults: the paper's sizes).
#[derive(Clone, Debug, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct SampSimConfig {
    /// ARs per side of the square grid (≤ 255).
    pub grid: u16,
    /// ARs per side of one domain (one SIP server / MAP each); must divide `grid`.
    pub block: u16,
    /// Mobile nodes (≤ 60 000).
    pub mns: u32,
    /// Movements per MN.
    pub moves: u32,
    /// Hotspot parameter α: the chance that a movement goes towards the hotspot.
    pub alpha: f64,
    /// The hotspot AR (x, y).
    pub hotspot: (u16, u16),
    /// Seed of every random choice.
    pub seed: u64,
    /// One-way latency of one grid hop, in ms (response times for δ).
    pub hop_ms: u64,
    /// The MN's response-time threshold δ, in ms.
    pub delta_ms: u64,
    /// Time between two movements of an MN, in ms.
    pub residence_ms: u64,
    /// Calls happen after every `call_every`-th movement (0: no calls).
    pub call_every: u32,
    /// Calls in such a burst, from the MN's own caller.
    pub calls_per_burst: u32,
    /// Time between the calls of a burst, in ms.
    pub call_gap_ms: u64,
    /// Lifetime of TTC cache entries (CN and server), in ms.
    pub cache_lifetime_ms: u64,
    /// Worker threads (each runs its own copy of the ring and a share of the MNs).
    pub threads: usize,
}

impl Default for SampSimConfig {
    fn default() -> Self {
        SampSimConfig {
            grid: 150,
            block: 15,
            mns: 10_000,
            moves: 200,
            alpha: 0.4,
            hotspot: (112, 37),
            seed: 1,
            hop_ms: 1,
            delta_ms: 30,
            residence_ms: 60_000,
            call_every: 20,
            calls_per_burst: 2,
            call_gap_ms: 10_000,
            cache_lifetime_ms: 30_000,
            threads: 2,
        }
    }
}

impl SampSimConfig {
    /// Why this set-up cannot run, if it cannot.
    pub fn check(&self) -> Result<(), String> {
        if self.grid == 0 || self.grid > 255 {
            return Err(format!("grid must be 1..=255, not {}", self.grid));
        }
        if self.block == 0 || self.grid % self.block != 0 {
            return Err(format!(
                "block {} must divide grid {}",
                self.block, self.grid
            ));
        }
        if self.servers() > 60_000 {
            return Err("too many domains".into());
        }
        if self.mns == 0 || self.mns > 60_000 {
            return Err(format!("mns must be 1..=60000, not {}", self.mns));
        }
        if !(0.0..=1.0).contains(&self.alpha) {
            return Err(format!("alpha must lie in 0..=1, not {}", self.alpha));
        }
        if self.hotspot.0 >= self.grid || self.hotspot.1 >= self.grid {
            return Err("the hotspot must lie on the grid".into());
        }
        if self.residence_ms < 20_000 {
            return Err("residence must be at least 20 s (a registration must end first)".into());
        }
        if u64::from(self.calls_per_burst.saturating_sub(1)) * self.call_gap_ms + 10_000
            > self.residence_ms / 2
        {
            return Err("a burst of calls must end within half a residence".into());
        }
        if self.threads == 0 {
            return Err("threads must be at least 1".into());
        }
        Ok(())
    }

    /// Domains (SIP servers, MAPs).
    pub fn servers(&self) -> usize {
        let per = usize::from(self.grid / self.block);
        per * per
    }
}

/// Which SAMP options a pass runs with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct Pass {
    /// Hierarchical registration.
    pub hr: bool,
    /// Two-tier caching (CN phase I and the servers' phase II cache).
    pub ttc: bool,
    /// Place calls.
    pub calls: bool,
}

/// Everything one pass measured (sums; the figures divide them).
#[derive(Clone, Debug, Default, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct PassReport {
    /// The options.
    pub hr: bool,
    /// The options.
    pub ttc: bool,
    /// Movements that changed the AR (handoffs), and so registrations expected.
    pub handoffs: u64,
    /// Handoffs whose registration ended (`Registered` from the MN).
    pub registered: u64,
    /// Of those, HR's local registrations with the kept anchor.
    pub local: u64,
    /// Of those, registrations that went to the home (new anchor).
    pub home: u64,
    /// Registrations that failed (no anchor, error, time-out).
    pub reg_failed: u64,
    /// SAMP: hops of every REGISTER the machines sent for the registered handoffs.
    pub samp_reg_hops: u64,
    /// SAMP: hops of discovery (MN → chosen anchor, the ACK's path) for those handoffs.
    pub samp_disc_hops: u64,
    /// MIPv6: MN → HA per handoff, summed.
    pub mip_reg_hops: u64,
    /// HMIPv6: MN → MAP, plus MN → HA when the MAP changed, summed.
    pub hmip_reg_hops: u64,
    /// Chord lookups that ended in a forward, and the nodes they queried.
    pub lookups: u64,
    /// Nodes queried by those lookups (the machines' `hops`).
    pub lookup_hops: u64,
    /// Calls placed.
    pub calls: u64,
    /// Calls established.
    pub established: u64,
    /// Established by TTC phase I (straight to the cached care-of address).
    pub direct: u64,
    /// Phase I tries that failed (the cached address was stale) and fell back.
    pub fell_back: u64,
    /// Established calls that the CN's anchor served from its phase II cache.
    pub phase2_hits: u64,
    /// Calls that failed.
    pub call_failed: u64,
    /// Of those, failed for want of any final answer in time.
    pub call_timeouts: u64,
    /// INVITEs delivered to an address the MN had left (phase I tries and stale forwards).
    pub invites_lost: u64,
    /// INVITEs a server forwarded from its anchor binding although it was no longer the MN's
    /// anchor (the MN had re-anchored elsewhere; nothing removes the old binding).
    pub stale_anchor_forwards: u64,
    /// SAMP first data packet: INVITE hops (every INVITE the machines sent for the call) plus
    /// the direct CN → MN data packet, summed over established calls.
    pub samp_call_hops: u64,
    /// MIPv6: CN → HA → MN, summed over the same calls.
    pub mip_call_hops: u64,
    /// HMIPv6: CN → HA → MAP → MN, summed over the same calls.
    pub hmip_call_hops: u64,
    /// Per round after a movement (1..=moves), MNs per MAP (HMIPv6), flattened rounds × servers.
    pub hmip_load: Vec<u32>,
    /// Per round, MNs per SAMP anchor (the MN's current anchor), flattened rounds × servers.
    pub anchor_load: Vec<u32>,
    /// At the end, home bindings held per SIP server (from the servers themselves).
    pub home_load: Vec<u32>,
    /// SIP and Chord messages delivered.
    pub messages: u64,
    /// Wall-clock seconds of the pass.
    pub secs: f64,
}

impl PassReport {
    fn merge(&mut self, o: PassReport) {
        self.handoffs += o.handoffs;
        self.registered += o.registered;
        self.local += o.local;
        self.home += o.home;
        self.reg_failed += o.reg_failed;
        self.samp_reg_hops += o.samp_reg_hops;
        self.samp_disc_hops += o.samp_disc_hops;
        self.mip_reg_hops += o.mip_reg_hops;
        self.hmip_reg_hops += o.hmip_reg_hops;
        self.lookups += o.lookups;
        self.lookup_hops += o.lookup_hops;
        self.calls += o.calls;
        self.established += o.established;
        self.direct += o.direct;
        self.fell_back += o.fell_back;
        self.phase2_hits += o.phase2_hits;
        self.call_failed += o.call_failed;
        self.call_timeouts += o.call_timeouts;
        self.invites_lost += o.invites_lost;
        self.stale_anchor_forwards += o.stale_anchor_forwards;
        self.samp_call_hops += o.samp_call_hops;
        self.mip_call_hops += o.mip_call_hops;
        self.hmip_call_hops += o.hmip_call_hops;
        add_into(&mut self.hmip_load, &o.hmip_load);
        add_into(&mut self.anchor_load, &o.anchor_load);
        add_into(&mut self.home_load, &o.home_load);
        self.messages += o.messages;
    }
}

fn add_into(a: &mut Vec<u32>, b: &[u32]) {
    if a.is_empty() {
        a.extend_from_slice(b);
    } else {
        for (x, y) in a.iter_mut().zip(b) {
            *x += *y;
        }
    }
}

/// Population standard deviation of `counts`.
pub fn sigma(counts: &[u32]) -> f64 {
    if counts.is_empty() {
        return 0.0;
    }
    let n = counts.len() as f64;
    let mean = counts.iter().map(|&c| f64::from(c)).sum::<f64>() / n;
    let var = counts
        .iter()
        .map(|&c| (f64::from(c) - mean).powi(2))
        .sum::<f64>()
        / n;
    var.sqrt()
}

/// σ of each round's load (rows of `servers`), averaged over the rounds.
fn mean_sigma(load: &[u32], servers: usize) -> f64 {
    let rounds = load.len() / servers.max(1);
    if rounds == 0 {
        return 0.0;
    }
    load.chunks(servers).map(sigma).sum::<f64>() / rounds as f64
}

fn ratio(a: u64, b: u64) -> f64 {
    if b == 0 {
        0.0
    } else {
        a as f64 / b as f64
    }
}

/// One row of Fig. 4: σ of MNs served per mobility agent.
#[derive(Clone, Debug, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct Fig4Row {
    /// α.
    pub alpha: f64,
    /// MIPv6: the HA serves all MNs; σ over `servers` agent slots of which the HA is one and the
    /// others serve none.
    pub mipv6: f64,
    /// HMIPv6: σ over the MAPs of the MNs in their domains, after each movement round, averaged
    /// over the rounds.
    pub hmipv6: f64,
    /// HMIPv6 after the last round.
    pub hmipv6_last: f64,
    /// SAMP: σ over the SIP servers of home bindings held (the owner of H(home URI)); it does not
    /// move with the MNs.
    pub samp_home: f64,
    /// SAMP anchors: σ over the SIP servers of MNs anchored there, averaged over the rounds.
    pub samp_anchor: f64,
    /// SAMP anchors after the last round.
    pub samp_anchor_last: f64,
    /// Wall-clock seconds.
    pub secs: f64,
}

/// One row of Fig. 5: hops per registration (a) and of the first data packet (b).
#[derive(Clone, Debug, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct Fig5Row {
    /// α.
    pub alpha: f64,
    /// (a) MIPv6: MN → HA.
    pub reg_mipv6: f64,
    /// (a) HMIPv6: MN → MAP (+ MN → HA on a MAP change).
    pub reg_hmipv6: f64,
    /// (a) SAMP without HR: MN → anchor → overlay → home, every handoff.
    pub reg_samp_no_hr: f64,
    /// (a) SAMP with HR.
    pub reg_samp_hr: f64,
    /// SAMP without HR: discovery hops per handoff (not in `reg_samp_no_hr`).
    pub disc_samp_no_hr: f64,
    /// SAMP with HR: discovery hops per handoff (not in `reg_samp_hr`).
    pub disc_samp_hr: f64,
    /// HR: share of handoffs that re-anchored and updated the home.
    pub hr_reanchor_share: f64,
    /// Mean nodes queried per Chord lookup (no-HR pass).
    pub lookup_hops: f64,
    /// (b) MIPv6: CN → HA → MN.
    pub call_mipv6: f64,
    /// (b) HMIPv6: CN → HA → MAP → MN.
    pub call_hmipv6: f64,
    /// (b) SAMP without TTC.
    pub call_samp_no_ttc: f64,
    /// (b) SAMP with TTC.
    pub call_samp_ttc: f64,
    /// TTC: share of established calls that went straight (phase I hit).
    pub ttc_direct_share: f64,
    /// TTC: share of established calls the CN's anchor served from its cache (phase II hit).
    pub ttc_phase2_share: f64,
    /// Calls established / placed (TTC pass).
    pub calls_established: u64,
    /// Calls placed (TTC pass).
    pub calls_placed: u64,
    /// Registrations and calls that failed, over all three passes.
    pub failures: u64,
    /// Wall-clock seconds of the three passes: (HR+TTC, no HR, no TTC).
    pub secs: [f64; 3],
}

/// Fig. 4 for `cfg.alpha`: one pass with HR, no calls.
pub fn fig4(cfg: &SampSimConfig) -> Fig4Row {
    let r = run_pass(
        cfg,
        Pass {
            hr: true,
            ttc: true,
            calls: false,
        },
    );
    let s = cfg.servers();
    let mut mip = vec![0u32; s];
    mip[0] = cfg.mns;
    let last = |l: &[u32]| {
        if l.len() >= s {
            sigma(&l[l.len() - s..])
        } else {
            0.0
        }
    };
    Fig4Row {
        alpha: cfg.alpha,
        mipv6: sigma(&mip),
        hmipv6: mean_sigma(&r.hmip_load, s),
        hmipv6_last: last(&r.hmip_load),
        samp_home: sigma(&r.home_load),
        samp_anchor: mean_sigma(&r.anchor_load, s),
        samp_anchor_last: last(&r.anchor_load),
        secs: r.secs,
    }
}

/// Fig. 5 for `cfg.alpha`: three passes — HR + TTC (with calls), no HR (no calls), HR without
/// TTC (with calls).
pub fn fig5(cfg: &SampSimConfig) -> Fig5Row {
    let a = run_pass(
        cfg,
        Pass {
            hr: true,
            ttc: true,
            calls: true,
        },
    );
    let b = run_pass(
        cfg,
        Pass {
            hr: false,
            ttc: true,
            calls: false,
        },
    );
    let c = run_pass(
        cfg,
        Pass {
            hr: true,
            ttc: false,
            calls: true,
        },
    );
    Fig5Row {
        alpha: cfg.alpha,
        reg_mipv6: ratio(a.mip_reg_hops, a.handoffs),
        reg_hmipv6: ratio(a.hmip_reg_hops, a.handoffs),
        reg_samp_no_hr: ratio(b.samp_reg_hops, b.registered),
        reg_samp_hr: ratio(a.samp_reg_hops, a.registered),
        disc_samp_no_hr: ratio(b.samp_disc_hops, b.registered),
        disc_samp_hr: ratio(a.samp_disc_hops, a.registered),
        hr_reanchor_share: ratio(a.home, a.registered),
        lookup_hops: ratio(b.lookup_hops, b.lookups),
        call_mipv6: ratio(a.mip_call_hops, a.established),
        call_hmipv6: ratio(a.hmip_call_hops, a.established),
        call_samp_no_ttc: ratio(c.samp_call_hops, c.established),
        call_samp_ttc: ratio(a.samp_call_hops, a.established),
        ttc_direct_share: ratio(a.direct, a.established),
        ttc_phase2_share: ratio(a.phase2_hits, a.established),
        calls_established: a.established,
        calls_placed: a.calls,
        failures: a.reg_failed
            + b.reg_failed
            + c.reg_failed
            + a.call_failed
            + c.call_failed
            + (a.calls - a.established - a.call_failed)
            + (c.calls - c.established - c.call_failed),
        secs: [a.secs, b.secs, c.secs],
    }
}

/// Run one pass over all MNs, split over `cfg.threads` threads.
pub fn run_pass(cfg: &SampSimConfig, pass: Pass) -> PassReport {
    let t0 = Instant::now();
    let threads = cfg.threads.min(cfg.mns as usize).max(1);
    let mut total = PassReport {
        hr: pass.hr,
        ttc: pass.ttc,
        ..PassReport::default()
    };
    if threads == 1 {
        total.merge(World::new(cfg, pass, 0, 1).run());
    } else {
        let parts: Vec<PassReport> = std::thread::scope(|s| {
            let hs: Vec<_> = (0..threads)
                .map(|t| s.spawn(move || World::new(cfg, pass, t, threads).run()))
                .collect();
            hs.into_iter()
                .map(|h| h.join().expect("a simulation thread panicked"))
                .collect()
        });
        for p in parts {
            total.merge(p);
        }
    }
    total.secs = t0.elapsed().as_secs_f64();
    total
}

// ----- the world ---------------------------------------------------------------------------

type Ar = (u16, u16);

fn dist(a: Ar, b: Ar) -> u32 {
    u32::from(a.0.abs_diff(b.0)) + u32::from(a.1.abs_diff(b.1))
}

fn server_addr(k: usize) -> TransportAddr {
    let k = k + 1;
    TransportAddr(SocketAddr::V4(SocketAddrV4::new(
        Ipv4Addr::new(10, 0, (k >> 8) as u8, (k & 0xff) as u8),
        5060,
    )))
}

fn ar_index(grid: u16, ar: Ar) -> u32 {
    u32::from(ar.1) * u32::from(grid) + u32::from(ar.0)
}

/// An MN's care-of address at an AR: the AR is the subnet, the port tells the MNs apart.
fn coa(grid: u16, ar: Ar, mn: u32) -> TransportAddr {
    let a = ar_index(grid, ar);
    TransportAddr(SocketAddr::V4(SocketAddrV4::new(
        Ipv4Addr::new(10, 1, (a >> 8) as u8, (a & 0xff) as u8),
        (1024 + mn) as u16,
    )))
}

fn cn_addr(mn: u32) -> TransportAddr {
    TransportAddr(SocketAddr::V4(SocketAddrV4::new(
        Ipv4Addr::new(10, 2, (mn >> 8) as u8, (mn & 0xff) as u8),
        5060,
    )))
}

/// Where a BYE from the host comes from; answers to it are dropped.
fn sink_addr() -> TransportAddr {
    TransportAddr(SocketAddr::V4(SocketAddrV4::new(
        Ipv4Addr::new(10, 3, 0, 1),
        5060,
    )))
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Who {
    Server(usize),
    /// An MN's address: (MN, AR it names).
    Mn(u32, Ar),
    Cn(u32),
    Sink,
}

fn mn_of_user(user: Option<&str>) -> Option<u32> {
    user?.strip_prefix("mn")?.parse().ok()
}

fn mn_of_aor(aor: &Aor) -> Option<u32> {
    let s = aor.as_str().strip_prefix("sip:mn")?;
    s.split('@').next()?.parse().ok()
}

/// One movement: towards the hotspot with probability α (to the neighbour nearest it, along the
/// longer axis, a tie drawn), else to a random 4-neighbour on the grid. At the hotspot, a move
/// towards it stays.
fn step(cfg: &SampSimConfig, m: &mut MnSim) -> Ar {
    let (x, y) = m.ar;
    let g = cfg.grid;
    if m.rng.chance(cfg.alpha) {
        let (hx, hy) = cfg.hotspot;
        let (dx, dy) = (x.abs_diff(hx), y.abs_diff(hy));
        if dx == 0 && dy == 0 {
            return m.ar;
        }
        let along_x = dx > dy || (dx == dy && m.rng.below(2) == 0);
        if along_x {
            (if hx > x { x + 1 } else { x - 1 }, y)
        } else {
            (x, if hy > y { y + 1 } else { y - 1 })
        }
    } else {
        let mut n = [(0u16, 0u16); 4];
        let mut c = 0;
        if x > 0 {
            n[c] = (x - 1, y);
            c += 1;
        }
        if x + 1 < g {
            n[c] = (x + 1, y);
            c += 1;
        }
        if y > 0 {
            n[c] = (x, y - 1);
            c += 1;
        }
        if y + 1 < g {
            n[c] = (x, y + 1);
            c += 1;
        }
        if c == 0 {
            return m.ar;
        }
        n[m.rng.below(c as u64) as usize]
    }
}

/// The domain (server / MAP index) of an AR.
fn domain_of(cfg: &SampSimConfig, ar: Ar) -> usize {
    let per = usize::from(cfg.grid / cfg.block);
    usize::from(ar.1 / cfg.block) * per + usize::from(ar.0 / cfg.block)
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
enum Mach {
    Server(usize),
    Mn(u32),
    Cn(u32),
}

enum Packet {
    Sip(Message),
    Chord(chord::Message<Id64, TransportAddr>),
}

// Events live in the slab and the queue holds their indices, so the size difference costs
// memory only (a few thousand slots), not copies through a heap.
#[allow(clippy::large_enum_variant)]
enum Ev {
    /// Held in the slab (the queue moves only its index), so no allocation per message.
    Deliver(TransportAddr, TransportAddr, Packet),
    Timer(Mach),
    Move(u32),
    Call(u32),
    Bye(u32, String),
}

/// The nodes a lookup queried so far, in order (server indices).
#[derive(Clone, Copy, Default)]
struct Chain {
    n: u8,
    at: [u16; 24],
}

impl Chain {
    fn push(mut self, k: usize) -> Chain {
        if usize::from(self.n) < self.at.len() {
            self.at[usize::from(self.n)] = k as u16;
            self.n += 1;
        }
        self
    }
    fn nodes(&self) -> &[u16] {
        &self.at[..usize::from(self.n)]
    }
}

/// The event queue: a timing wheel of 1 ms slots, exactly equivalent to a priority queue
/// ordered by (time, order of pushing) — what a `BinaryHeap` of `(time, seq)` gave before, at a
/// fraction of the cost (no sifting; one `Vec` push and one read per event).
///
/// An event due within `SLOTS` ms of the cursor goes into its slot, in push order; one due later
/// waits in `far` (pushed earlier than anything that later lands in the same slot, so it comes
/// first); one due before the cursor (never seen in practice: the machines ask for no deadline in
/// the past) goes into `late`, which is served before anything at the cursor.
struct Wheel {
    slots: Vec<Vec<u32>>,
    /// The slot time being served (ms) and how far into its slot.
    cursor: u64,
    pos: usize,
    far: BinaryHeap<Reverse<(Time, u64, u32)>>,
    late: BinaryHeap<Reverse<(Time, u64, u32)>>,
    seq: u64,
}

impl Wheel {
    const SLOTS: u64 = 1 << 16;

    fn new() -> Wheel {
        Wheel {
            slots: (0..Self::SLOTS).map(|_| Vec::new()).collect(),
            cursor: 0,
            pos: 0,
            far: BinaryHeap::new(),
            late: BinaryHeap::new(),
            seq: 0,
        }
    }

    fn push(&mut self, at: Time, i: u32) {
        let t = at.as_millis();
        self.seq += 1;
        if t < self.cursor {
            self.late.push(Reverse((at, self.seq, i)));
        } else if t - self.cursor < Self::SLOTS {
            self.slots[(t % Self::SLOTS) as usize].push(i);
        } else {
            self.far.push(Reverse((at, self.seq, i)));
        }
    }

    /// The next event due at or before `until`, in (time, push order).
    fn pop(&mut self, until: Time) -> Option<(Time, u32)> {
        if let Some(Reverse((at, _, i))) = self.late.pop() {
            return Some((at, i));
        }
        let until = until.as_millis();
        while self.cursor <= until {
            if let Some(&Reverse((at, _, i))) = self.far.peek() {
                if at.as_millis() == self.cursor {
                    self.far.pop();
                    return Some((at, i));
                }
            }
            let slot = &mut self.slots[(self.cursor % Self::SLOTS) as usize];
            if let Some(&i) = slot.get(self.pos) {
                self.pos += 1;
                return Some((Time::from_millis(self.cursor), i));
            }
            slot.clear();
            self.pos = 0;
            self.cursor += 1;
        }
        None
    }
}

struct MnSim {
    rng: SplitMix64,
    ar: Ar,
    cn_ar: Ar,
    /// Movements done (round 0 is the first attach).
    round: u32,
    /// The registration under way is a handoff's (not the first attach).
    counting: bool,
    offset: u64,
    reg_acc: u32,
    disc_acc: u32,
    call_acc: u32,
    call_mip: u32,
    call_hmip: u32,
    calls: u64,
    armed_mn: Option<Time>,
    armed_cn: Option<Time>,
}

struct World<'a> {
    cfg: &'a SampSimConfig,
    pass: Pass,
    per: u16,
    servers: Vec<Server<Id64>>,
    server_pos: Vec<Ar>,
    armed_server: Vec<Option<Time>>,
    /// Local MN slot → global MN number (MNs `first, first + stride, …`).
    first: u32,
    stride: u32,
    mns: Vec<MobileNode>,
    cns: Vec<Correspondent>,
    sim: Vec<MnSim>,
    uris: Vec<SipUri>,
    queue: Wheel,
    slab: Vec<Option<Ev>>,
    free: Vec<u32>,
    now: Time,
    chains: HashMap<(u16, u32), Chain>,
    r: PassReport,
}

impl<'a> World<'a> {
    fn new(cfg: &'a SampSimConfig, pass: Pass, thread: usize, threads: usize) -> World<'a> {
        let per = cfg.grid / cfg.block;
        let n = cfg.servers();
        let mut chord_cfg = chord::Config {
            max_pending: 4096,
            ..chord::Config::default()
        };
        // a static, stabilized ring: no maintenance traffic
        chord_cfg.stabilize_every = Duration::from_secs(u64::from(u32::MAX));
        // registrations outlive the run; TTC entries live `cache_lifetime_ms`
        let long: u32 = 1_000_000_000;
        let scfg = ServerConfig {
            mode: ProxyMode::Proxy,
            chord: chord_cfg.clone(),
            max_anchor_bindings: 1 << 20,
            max_home_bindings: 1 << 20,
            cache_entries: if pass.ttc { 1 << 16 } else { 0 },
            cache_lifetime: Duration::from_millis(cfg.cache_lifetime_ms),
            max_expires: long,
            default_expires: long,
            max_discoveries: 1 << 20,
            discovery_hold: Duration::from_secs(4),
            max_waiting: 1 << 16,
        };
        let mut members: Vec<(Peer<Id64, TransportAddr>, usize)> =
            (0..n).map(|k| (Peer::hashed(server_addr(k)), k)).collect();
        members.sort();
        let sorted: Vec<Peer<Id64, TransportAddr>> = members.iter().map(|(p, _)| *p).collect();
        let ring = Node::stabilized_ring(
            &sorted,
            &chord_cfg,
            usize::from(chord_cfg.successors),
            Time::ZERO,
        );
        let mut by_index: Vec<Option<Server<Id64>>> = (0..n).map(|_| None).collect();
        for ((_, k), node) in members.iter().zip(ring) {
            by_index[*k] = Some(Server::with_node(node, scfg.clone()));
        }
        let servers: Vec<Server<Id64>> = by_index.into_iter().flatten().collect();
        let half = cfg.block / 2;
        let server_pos = (0..n)
            .map(|k| {
                let (bx, by) = ((k % usize::from(per)) as u16, (k / usize::from(per)) as u16);
                (bx * cfg.block + half, by * cfg.block + half)
            })
            .collect();
        let first = thread as u32;
        let stride = threads as u32;
        let mut mns = Vec::new();
        let mut cns = Vec::new();
        let mut sim = Vec::new();
        let mut uris = Vec::new();
        let mcfg = MobileConfig {
            delta: Duration::from_millis(cfg.delta_ms),
            hr: pass.hr,
            gather: Duration::from_millis(200),
            register_timeout: Duration::from_secs(4),
            expires: long,
            update_home_on_reanchor: true,
        };
        let ccfg = CorrespondentConfig {
            ttc: pass.ttc,
            cache_entries: 64,
            cache_lifetime: Duration::from_millis(cfg.cache_lifetime_ms),
            direct_timeout: Duration::from_millis(500),
            call_timeout: Duration::from_secs(8),
            max_redirects: 3,
            max_calls: 8,
        };
        let mut g = first;
        while g < cfg.mns {
            let mut rng =
                SplitMix64::new(cfg.seed ^ (u64::from(g) + 1).wrapping_mul(0xd1b5_4a32_d192_ed03));
            let ar = (
                rng.below(u64::from(cfg.grid)) as u16,
                rng.below(u64::from(cfg.grid)) as u16,
            );
            let cn_ar = (
                rng.below(u64::from(cfg.grid)) as u16,
                rng.below(u64::from(cfg.grid)) as u16,
            );
            let offset = rng.below(cfg.residence_ms / 2);
            let mut uri = SipUri::new("samp.example");
            uri.user = Some(format!("mn{g}"));
            mns.push(MobileNode::new(uri.clone(), mcfg.clone()));
            let mut me = SipUri::new("caller.example");
            me.user = Some(format!("cn{g}"));
            let cn_anchor = domain_of(cfg, cn_ar);
            cns.push(Correspondent::new(
                me,
                cn_addr(g),
                server_addr(cn_anchor),
                ccfg.clone(),
            ));
            sim.push(MnSim {
                rng,
                ar,
                cn_ar,
                round: 0,
                counting: false,
                offset,
                reg_acc: 0,
                disc_acc: 0,
                call_acc: 0,
                call_mip: 0,
                call_hmip: 0,
                calls: 0,
                armed_mn: None,
                armed_cn: None,
            });
            uris.push(uri);
            g += stride;
        }
        World {
            cfg,
            pass,
            per,
            armed_server: vec![None; n],
            servers,
            server_pos,
            first,
            stride,
            mns,
            cns,
            sim,
            uris,
            queue: Wheel::new(),
            slab: Vec::new(),
            free: Vec::new(),
            now: Time::ZERO,
            chains: HashMap::new(),
            r: PassReport {
                hr: pass.hr,
                ttc: pass.ttc,
                ..PassReport::default()
            },
        }
    }

    fn ha(&self) -> Ar {
        (self.cfg.grid / 2, self.cfg.grid / 2)
    }

    fn slot(&self, global: u32) -> Option<usize> {
        if global < self.first || (global - self.first) % self.stride != 0 {
            return None;
        }
        let s = ((global - self.first) / self.stride) as usize;
        (s < self.mns.len()).then_some(s)
    }

    fn global(&self, slot: usize) -> u32 {
        self.first + slot as u32 * self.stride
    }

    fn who(&self, a: TransportAddr) -> Who {
        let (ip, port) = match a.0 {
            SocketAddr::V4(v4) => (*v4.ip(), v4.port()),
            SocketAddr::V6(_) => return Who::Sink,
        };
        let o = ip.octets();
        let hi = (usize::from(o[2]) << 8) | usize::from(o[3]);
        match o[1] {
            0 if hi >= 1 && hi <= self.servers.len() => Who::Server(hi - 1),
            1 => {
                let g = u32::from(self.cfg.grid) as usize;
                let ar = ((hi % g) as u16, (hi / g) as u16);
                Who::Mn(u32::from(port).saturating_sub(1024), ar)
            }
            2 => Who::Cn(hi as u32),
            _ => Who::Sink,
        }
    }

    fn pos(&self, w: Who) -> Option<Ar> {
        match w {
            Who::Server(k) => Some(self.server_pos[k]),
            Who::Mn(_, ar) => Some(ar),
            Who::Cn(g) => self.slot(g).map(|s| self.sim[s].cn_ar),
            Who::Sink => None,
        }
    }

    fn pos_of(&self, a: TransportAddr) -> Option<Ar> {
        self.pos(self.who(a))
    }

    fn push(&mut self, at: Time, ev: Ev) {
        let i = match self.free.pop() {
            Some(i) => {
                self.slab[i as usize] = Some(ev);
                i
            }
            None => {
                self.slab.push(Some(ev));
                (self.slab.len() - 1) as u32
            }
        };
        self.queue.push(at, i);
    }

    fn latency(&self, d: u32) -> Duration {
        Duration::from_millis(u64::from(d) * self.cfg.hop_ms)
    }

    /// Send `p` from `from` to `to`: count its hops for the MN it concerns and schedule it.
    fn send(&mut self, from: TransportAddr, to: TransportAddr, p: Packet) {
        let Some(a) = self.pos_of(from) else { return };
        if to == MCAST_GROUP {
            // the domain's multicast reaches the SIP servers of the MN's domain and its 8
            // neighbours
            let (bx, by) = (a.0 / self.cfg.block, a.1 / self.cfg.block);
            let Packet::Sip(msg) = p else { return };
            let mut reached = [0usize; 9];
            let mut n = 0;
            for y in by.saturating_sub(1)..=(by + 1).min(self.per - 1) {
                for x in bx.saturating_sub(1)..=(bx + 1).min(self.per - 1) {
                    reached[n] = usize::from(y) * usize::from(self.per) + usize::from(x);
                    n += 1;
                }
            }
            // a copy for every server but the last, which gets the message itself
            let mut msg = Some(msg);
            for (j, &k) in reached[..n].iter().enumerate() {
                let d = dist(a, self.server_pos[k]);
                let at = self.now + self.latency(d);
                let to = server_addr(k);
                let m = if j + 1 == n { msg.take() } else { msg.clone() };
                if let Some(m) = m {
                    self.push(at, Ev::Deliver(from, to, Packet::Sip(m)));
                }
            }
            return;
        }
        let Some(b) = self.pos_of(to) else { return };
        let d = dist(a, b);
        if let Packet::Sip(Message::Request(req)) = &p {
            self.count(req, d);
        }
        let at = self.now + self.latency(d);
        self.push(at, Ev::Deliver(from, to, p));
    }

    fn count(&mut self, req: &Request, d: u32) {
        let Some(g) = req
            .headers
            .to
            .as_ref()
            .and_then(|t| mn_of_user(t.uri.user.as_deref()))
        else {
            return;
        };
        let Some(s) = self.slot(g) else { return };
        let mcast = req.uri.host.eq_ignore_ascii_case(MCAST_HOST);
        let m = &mut self.sim[s];
        match req.method {
            Method::Register if !mcast => m.reg_acc += d,
            Method::Ack if mcast => m.disc_acc += d,
            Method::Invite => m.call_acc += d,
            _ => {}
        }
    }

    fn arm(&mut self, m: Mach) {
        let t = match m {
            Mach::Server(k) => self.servers[k].poll_timeout(),
            Mach::Mn(s) => self.mns[s as usize].poll_timeout(),
            Mach::Cn(s) => self.cns[s as usize].poll_timeout(),
        };
        let armed = match m {
            Mach::Server(k) => &mut self.armed_server[k],
            Mach::Mn(s) => &mut self.sim[s as usize].armed_mn,
            Mach::Cn(s) => &mut self.sim[s as usize].armed_cn,
        };
        if t != *armed {
            *armed = t;
            if let Some(t) = t {
                // the static ring's maintenance tick lies beyond the run
                if t.as_millis() < u64::MAX / 4 {
                    self.push(t, Ev::Timer(m));
                }
            }
        }
    }

    fn drain_server(&mut self, k: usize, chain: Chain) {
        let me = server_addr(k);
        while let Some(o) = self.servers[k].poll() {
            match o {
                server::Output::Sip { to, msg } => self.send(me, to, Packet::Sip(msg)),
                server::Output::Chord { to, msg } => {
                    if let chord::Message::FindSuccessor { nonce, .. } = &msg {
                        if let Who::Server(j) = self.who(to) {
                            self.chains.insert((k as u16, *nonce), chain.push(j));
                        }
                    }
                    self.send(me, to, Packet::Chord(msg));
                }
                server::Output::Event(server::Event::Forwarded {
                    method,
                    aor,
                    to,
                    route: Route::Overlay,
                    hops,
                }) => {
                    let (Some(g), Some(home)) = (mn_of_aor(&aor), self.pos_of(to)) else {
                        continue;
                    };
                    let Some(s) = self.slot(g) else { continue };
                    let mut at = self.server_pos[k];
                    let mut path = 0;
                    for &j in chain.nodes() {
                        let p = self.server_pos[usize::from(j)];
                        path += dist(at, p);
                        at = p;
                    }
                    path += dist(at, home);
                    let direct = dist(self.server_pos[k], home);
                    self.r.lookups += 1;
                    self.r.lookup_hops += u64::from(hops);
                    let m = &mut self.sim[s];
                    let extra = path.saturating_sub(direct);
                    match method {
                        Method::Register => m.reg_acc += extra,
                        Method::Invite => m.call_acc += extra,
                        _ => {}
                    }
                }
                server::Output::Event(server::Event::Forwarded {
                    method: Method::Invite,
                    aor,
                    route: Route::Anchor,
                    ..
                }) => {
                    let slot = mn_of_aor(&aor).and_then(|g| self.slot(g));
                    if let Some(s) = slot {
                        if self.mns[s].anchor() != Some(me) {
                            self.r.stale_anchor_forwards += 1;
                        }
                    }
                }
                server::Output::Event(_) => {}
            }
        }
        self.arm(Mach::Server(k));
    }

    fn drain_mn(&mut self, s: usize) {
        while let Some(o) = self.mns[s].poll() {
            match o {
                mobile::Output::Sip { to, msg } => {
                    let Some(from) = self.mns[s].coa() else {
                        continue;
                    };
                    self.send(from, to, Packet::Sip(msg));
                }
                mobile::Output::Event(e) => self.on_mn_event(s, e),
            }
        }
        self.arm(Mach::Mn(s as u32));
    }

    fn on_mn_event(&mut self, s: usize, e: mobile::Event) {
        let m = &mut self.sim[s];
        let counted = m.counting;
        match e {
            mobile::Event::Registered { how, .. } => {
                if counted {
                    self.r.registered += 1;
                    match how {
                        Registration::Local => self.r.local += 1,
                        Registration::Home => self.r.home += 1,
                    }
                    self.r.samp_reg_hops += u64::from(m.reg_acc);
                    self.r.samp_disc_hops += u64::from(m.disc_acc);
                }
                m.reg_acc = 0;
                m.disc_acc = 0;
            }
            mobile::Event::NoAnchor | mobile::Event::RegisterFailed { .. } => {
                self.r.reg_failed += 1;
                m.reg_acc = 0;
                m.disc_acc = 0;
            }
            mobile::Event::Answered { call_id, .. } => {
                // the session ends at once: no mid-session re-INVITEs on later moves
                let now = self.now;
                self.push(now, Ev::Bye(s as u32, call_id));
            }
        }
    }

    fn drain_cn(&mut self, s: usize) {
        let me = cn_addr(self.global(s));
        while let Some(o) = self.cns[s].poll() {
            match o {
                correspondent::Output::Sip { to, msg } => self.send(me, to, Packet::Sip(msg)),
                correspondent::Output::Event(e) => match e {
                    correspondent::Event::Established { at, path, .. } => {
                        let Some(mn_ar) = self.who_ar(at) else {
                            continue;
                        };
                        let m = &mut self.sim[s];
                        self.r.established += 1;
                        if path == Path::Direct {
                            self.r.direct += 1;
                        }
                        let data = dist(m.cn_ar, mn_ar);
                        self.r.samp_call_hops += u64::from(m.call_acc + data);
                        self.r.mip_call_hops += u64::from(m.call_mip);
                        self.r.hmip_call_hops += u64::from(m.call_hmip);
                        m.call_acc = 0;
                    }
                    correspondent::Event::Failed { reason, .. } => {
                        self.r.call_failed += 1;
                        if reason == correspondent::CallFailure::Timeout {
                            self.r.call_timeouts += 1;
                        }
                        self.sim[s].call_acc = 0;
                    }
                    correspondent::Event::FellBack { .. } => self.r.fell_back += 1,
                },
            }
        }
        self.arm(Mach::Cn(s as u32));
    }

    fn who_ar(&self, a: TransportAddr) -> Option<Ar> {
        match self.who(a) {
            Who::Mn(_, ar) => Some(ar),
            _ => None,
        }
    }

    fn deliver(&mut self, from: TransportAddr, to: TransportAddr, p: Packet) {
        self.r.messages += 1;
        let now = self.now;
        match (self.who(to), p) {
            (Who::Server(k), Packet::Sip(msg)) => {
                let hits = self.servers[k].stats().cache_hits;
                let _ = self.servers[k].handle(now, server::Input::Sip { from, msg });
                if self.servers[k].stats().cache_hits > hits {
                    self.r.phase2_hits += 1;
                }
                self.drain_server(k, Chain::default());
            }
            (Who::Server(k), Packet::Chord(msg)) => {
                let chain = match &msg {
                    chord::Message::Found { nonce, .. } | chord::Message::Closer { nonce, .. } => {
                        self.chains.remove(&(k as u16, *nonce)).unwrap_or_default()
                    }
                    _ => Chain::default(),
                };
                let _ = self.servers[k].handle(now, server::Input::Chord { from, msg });
                self.drain_server(k, chain);
            }
            (Who::Mn(g, _), Packet::Sip(msg)) => {
                let Some(s) = self.slot(g) else { return };
                // only if the MN is still at that address; else the packet is lost
                if self.mns[s].coa() == Some(to) {
                    let _ = self.mns[s].handle(now, mobile::Input::Sip { from, msg });
                    self.drain_mn(s);
                } else if matches!(&msg, Message::Request(r) if r.method == Method::Invite) {
                    self.r.invites_lost += 1;
                }
            }
            (Who::Cn(g), Packet::Sip(msg)) => {
                let Some(s) = self.slot(g) else { return };
                let _ = self.cns[s].handle(now, correspondent::Input::Sip { from, msg });
                self.drain_cn(s);
            }
            _ => {}
        }
    }

    fn on_move(&mut self, s: usize) {
        let cfg = self.cfg;
        let g = self.global(s);
        let ha = self.ha();
        let m = &mut self.sim[s];
        let round = m.round;
        let moved = if round == 0 {
            true
        } else {
            let old = m.ar;
            let new = step(cfg, m);
            if new != old {
                self.r.handoffs += 1;
                self.r.mip_reg_hops += u64::from(dist(new, ha));
                let (d_old, d_new) = (domain_of(cfg, old), domain_of(cfg, new));
                let mut h = dist(new, self.server_pos[d_new]);
                if d_old != d_new {
                    h += dist(new, ha);
                }
                self.r.hmip_reg_hops += u64::from(h);
                m.ar = new;
            }
            new != old
        };
        let random = m.rng.next_u64();
        let ar = m.ar;
        let next = Time::from_millis((u64::from(round) + 1) * cfg.residence_ms + m.offset);
        m.reg_acc = 0;
        m.disc_acc = 0;
        m.counting = round >= 1;
        m.round += 1;
        if moved {
            let now = self.now;
            let _ = self.mns[s].handle(
                now,
                mobile::Input::Attached {
                    coa: coa(cfg.grid, ar, g),
                    random,
                },
            );
            self.drain_mn(s);
        }
        if self.pass.calls && cfg.call_every > 0 && round >= 1 && round % cfg.call_every == 0 {
            for j in 0..cfg.calls_per_burst {
                let at = self.now + Duration::from_millis(10_000 + u64::from(j) * cfg.call_gap_ms);
                self.push(at, Ev::Call(s as u32));
            }
        }
        if round < cfg.moves {
            self.push(next, Ev::Move(s as u32));
        }
    }

    fn on_call(&mut self, s: usize) {
        let ha = self.ha();
        let m = &mut self.sim[s];
        m.calls += 1;
        let call = CallId(m.calls);
        let map = self.server_pos[domain_of(self.cfg, m.ar)];
        m.call_mip = dist(m.cn_ar, ha) + dist(ha, m.ar);
        m.call_hmip = dist(m.cn_ar, ha) + dist(ha, map) + dist(map, m.ar);
        m.call_acc = 0;
        self.r.calls += 1;
        let callee = self.uris[s].clone();
        let now = self.now;
        let _ = self.cns[s].handle(now, correspondent::Input::Call { call, callee });
        self.drain_cn(s);
    }

    fn on_bye(&mut self, s: usize, call_id: String) {
        let sink = sink_addr();
        let req = Request::new(Method::Bye, self.uris[s].clone())
            .with_via(Via::udp("10.3.0.1", Some(5060), "z9hG4bKbye"))
            .with_call_id(&call_id)
            .with_cseq(1)
            .with_to(crate::sip::NameAddr::new(self.uris[s].clone()));
        let now = self.now;
        let _ = self.mns[s].handle(
            now,
            mobile::Input::Sip {
                from: sink,
                msg: Message::Request(req),
            },
        );
        // its 200 OK goes to the sink
        while self.mns[s].poll().is_some() {}
        self.arm(Mach::Mn(s as u32));
    }

    fn timer(&mut self, m: Mach, at: Time) {
        let now = self.now;
        match m {
            Mach::Server(k) => {
                if self.armed_server[k] != Some(at) {
                    return;
                }
                self.armed_server[k] = None;
                self.servers[k].handle_timeout(now);
                self.drain_server(k, Chain::default());
            }
            Mach::Mn(s) => {
                let s = s as usize;
                if self.sim[s].armed_mn != Some(at) {
                    return;
                }
                self.sim[s].armed_mn = None;
                self.mns[s].handle_timeout(now);
                self.drain_mn(s);
            }
            Mach::Cn(s) => {
                let s = s as usize;
                if self.sim[s].armed_cn != Some(at) {
                    return;
                }
                self.sim[s].armed_cn = None;
                self.cns[s].handle_timeout(now);
                self.drain_cn(s);
            }
        }
    }

    fn run_until(&mut self, until: Time) {
        while let Some((at, i)) = self.queue.pop(until) {
            self.now = self.now.max(at);
            let Some(ev) = self.slab[i as usize].take() else {
                continue;
            };
            self.free.push(i);
            match ev {
                Ev::Deliver(from, to, p) => self.deliver(from, to, p),
                Ev::Timer(m) => self.timer(m, at),
                Ev::Move(s) => self.on_move(s as usize),
                Ev::Call(s) => self.on_call(s as usize),
                Ev::Bye(s, call_id) => self.on_bye(s as usize, call_id),
            }
        }
        self.now = self.now.max(until);
    }

    fn run(mut self) -> PassReport {
        let cfg = self.cfg;
        let n = self.servers.len();
        for s in 0..self.mns.len() {
            let at = Time::from_millis(self.sim[s].offset);
            self.push(at, Ev::Move(s as u32));
        }
        let mut hmip = Vec::with_capacity(n * cfg.moves as usize);
        let mut anchor = Vec::with_capacity(n * cfg.moves as usize);
        for round in 0..=cfg.moves {
            let end = Time::from_millis((u64::from(round) + 1) * cfg.residence_ms);
            self.run_until(end);
            if round == 0 {
                continue;
            }
            let base = hmip.len();
            hmip.resize(base + n, 0u32);
            anchor.resize(base + n, 0u32);
            for s in 0..self.mns.len() {
                hmip[base + domain_of(cfg, self.sim[s].ar)] += 1;
                if let Some(Who::Server(k)) = self.mns[s].anchor().map(|a| self.who(a)) {
                    anchor[base + k] += 1;
                }
            }
        }
        // let the last registrations and calls end
        let end = self.now + Duration::from_millis(cfg.residence_ms);
        self.run_until(end);
        self.r.hmip_load = hmip;
        self.r.anchor_load = anchor;
        self.r.home_load = self
            .servers
            .iter()
            .map(|s| s.binding_counts().1 as u32)
            .collect();
        self.r
    }
}
