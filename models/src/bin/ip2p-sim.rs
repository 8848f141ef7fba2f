//! `ip2p-sim`: run many real Chord machines in the deterministic simulator (`ip2p::sim`) and
//! reproduce the Chord paper's experiments. See `spec/chord-sim.md` for results.
//!
//! ```text
//! ip2p-sim chord --nodes 100000 --lookups 100000 --seed 1            # one run, human output
//! ip2p-sim chord --experiment pathlen --min-exp 3 --max-exp 16 --json
//! ip2p-sim chord --experiment load --nodes 10000
//! ip2p-sim chord --experiment failures --nodes 1000 --successors 16
//! ip2p-sim chord --experiment churn --nodes 1000 --rate 0.5 --secs 600
//! ip2p-sim samp --mns 10000 --moves 200 --alpha 0.4 --experiment all  # SAMP paper Fig. 4, 5
//! ip2p-sim samp --alphas 0,0.2,0.4,0.6,0.8,1 --experiment fig4 --json
//! ip2p-sim samp --experiment speed --passes hr,no-hr                   # per-pass wall/CPU, msgs/s
//! ```

use std::process::ExitCode;
use std::time::Instant;

use clap::{Parser, Subcommand, ValueEnum};

// The simulations allocate and free millions of small strings (every SIP message the machines
// build): mimalloc does that markedly faster than glibc's allocator (spec/samp.md, "Speed").
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;
use ip2p::sim::experiments::{self, Summary};
use ip2p::sim::samp::{self, SampSimConfig};

#[derive(Parser)]
#[command(
    name = "ip2p-sim",
    about = "Deterministic simulations of many real ip2p machines"
)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Chord rings of real `ip2p::chord::Node`s over a simulated network.
    Chord(ChordArgs),
    /// The SAMP paper's simulation (Fig. 4, Fig. 5) over real SAMP servers, MNs and CNs.
    Samp(SampArgs),
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum SampExperiment {
    /// σ of MNs per mobility agent (one pass per α).
    Fig4,
    /// Registration and first-packet hops (three passes per α).
    Fig5,
    /// Both.
    All,
    /// Speed: run the passes named by --passes one by one and report, per pass, wall and CPU
    /// seconds and messages (SIP and Chord) delivered per second.
    Speed,
}

/// One pass of the SAMP simulation (what fig4 and fig5 run).
#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum SampPass {
    /// Fig. 4's pass: HR, no calls.
    Hr,
    /// Fig. 5's first pass: HR and TTC, with calls.
    HrTtcCalls,
    /// Fig. 5's second pass: no HR, no calls.
    NoHr,
    /// Fig. 5's third pass: HR without TTC, with calls.
    HrNoTtcCalls,
}

impl SampPass {
    fn pass(self) -> samp::Pass {
        let (hr, ttc, calls) = match self {
            SampPass::Hr => (true, true, false),
            SampPass::HrTtcCalls => (true, true, true),
            SampPass::NoHr => (false, true, false),
            SampPass::HrNoTtcCalls => (true, false, true),
        };
        samp::Pass { hr, ttc, calls }
    }
    fn name(self) -> &'static str {
        match self {
            SampPass::Hr => "hr",
            SampPass::HrTtcCalls => "hr-ttc-calls",
            SampPass::NoHr => "no-hr",
            SampPass::HrNoTtcCalls => "hr-no-ttc-calls",
        }
    }
}

/// CPU seconds (user + system, every thread) this process has used so far, from
/// `/proc/self/stat` (Linux; `None` elsewhere). Clock ticks are taken as 1/100 s.
fn cpu_secs() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    let rest = &stat[stat.rfind(')')? + 2..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    // fields 14 and 15 of the file (utime, stime) are 11 and 12 after the command name
    let ticks: u64 = f.get(11)?.parse::<u64>().ok()? + f.get(12)?.parse::<u64>().ok()?;
    Some(ticks as f64 / 100.0)
}

#[derive(serde::Serialize)]
struct SpeedRow {
    alpha: f64,
    pass: &'static str,
    handoffs: u64,
    registered: u64,
    calls: u64,
    established: u64,
    messages: u64,
    wall_secs: f64,
    cpu_secs: Option<f64>,
    messages_per_wall_sec: f64,
    messages_per_cpu_sec: Option<f64>,
}

#[derive(clap::Args)]
struct SampArgs {
    /// Which figure.
    #[arg(long, value_enum, default_value = "all")]
    experiment: SampExperiment,
    /// Mobile nodes.
    #[arg(long, default_value_t = 10_000)]
    mns: u32,
    /// Movements per MN.
    #[arg(long, default_value_t = 200)]
    moves: u32,
    /// Hotspot parameter α (ignored when --alphas is given).
    #[arg(long, default_value_t = 0.4)]
    alpha: f64,
    /// Several α values, one row each.
    #[arg(long, value_delimiter = ',')]
    alphas: Vec<f64>,
    /// Seed of every random choice.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// ARs per side of the grid.
    #[arg(long, default_value_t = 150)]
    grid: u16,
    /// ARs per side of one SIP server's / MAP's domain.
    #[arg(long, default_value_t = 15)]
    block: u16,
    /// The response-time threshold δ in ms (1 ms per grid hop one way).
    #[arg(long, default_value_t = 30)]
    delta_ms: u64,
    /// Calls after every N-th movement (0: none).
    #[arg(long, default_value_t = 20)]
    call_every: u32,
    /// Calls per burst (10 s apart, from the MN's own caller).
    #[arg(long, default_value_t = 2)]
    calls_per_burst: u32,
    /// Worker threads (results do not depend on it).
    #[arg(long, default_value_t = 2)]
    threads: usize,
    /// The passes `--experiment speed` runs.
    #[arg(long, value_enum, value_delimiter = ',', default_values_t = vec![SampPass::Hr, SampPass::HrTtcCalls, SampPass::NoHr, SampPass::HrNoTtcCalls])]
    passes: Vec<SampPass>,
    /// One JSON object per line instead of tables.
    #[arg(long)]
    json: bool,
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Experiment {
    /// One ring: crash a fraction, run lookups, report outcomes, timing and memory.
    Run,
    /// Mean path length for N = 2^min-exp .. 2^max-exp (paper Fig. 10).
    Pathlen,
    /// Keys per node for N nodes and growing numbers of keys (paper Fig. 8a).
    Load,
    /// Lookups right after a fraction of nodes failed at once (paper Table III, Fig. 11).
    Failures,
    /// Joins and crashes at a rate while lookups run, then quiet; is the ring ideal again?
    Churn,
}

#[derive(clap::Args)]
struct ChordArgs {
    /// Which experiment.
    #[arg(long, value_enum, default_value = "run")]
    experiment: Experiment,
    /// Nodes in the ring (run, load, failures, churn).
    #[arg(long, default_value_t = 1000)]
    nodes: usize,
    /// Lookups (per ring size for pathlen, per fraction for failures).
    #[arg(long, default_value_t = 10_000)]
    lookups: u64,
    /// Seed of every random choice.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Fraction of nodes that crash at once (run). For `failures`, see --fractions.
    #[arg(long, default_value_t = 0.0)]
    fail_fraction: f64,
    /// Fractions for `failures`.
    #[arg(long, value_delimiter = ',', default_values_t = vec![0.0, 0.1, 0.2, 0.3, 0.4, 0.5])]
    fractions: Vec<f64>,
    /// Successor-list length r (1..=16).
    #[arg(long, default_value_t = 8)]
    successors: u8,
    /// Maintenance period in ms; 0 turns stabilization off (run; churn uses 500 when 0).
    #[arg(long, default_value_t = 0)]
    stabilize_ms: u64,
    /// Smallest log2 N (pathlen).
    #[arg(long, default_value_t = 3)]
    min_exp: u32,
    /// Largest log2 N (pathlen).
    #[arg(long, default_value_t = 16)]
    max_exp: u32,
    /// Numbers of keys (load).
    #[arg(long, value_delimiter = ',', default_values_t = vec![100_000, 200_000, 500_000, 1_000_000])]
    keys: Vec<u64>,
    /// Joins per second and crashes per second (churn).
    #[arg(long, default_value_t = 0.5)]
    rate: f64,
    /// Seconds of churn (churn).
    #[arg(long, default_value_t = 300)]
    secs: u64,
    /// One JSON object per line instead of tables.
    #[arg(long)]
    json: bool,
}

fn json<T: serde::Serialize>(v: &T) -> Result<(), String> {
    let s = serde_json::to_string(v).map_err(|e| format!("cannot print JSON: {e}"))?;
    println!("{s}");
    Ok(())
}

fn fmt_summary(s: &Summary) -> String {
    format!("{:.2} ({}, {})", s.mean, s.p1, s.p99)
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let r = match cli.cmd {
        Cmd::Chord(a) => chord(&a),
        Cmd::Samp(a) => samp_cmd(&a),
    };
    match r {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("ip2p-sim: {e}");
            ExitCode::FAILURE
        }
    }
}

fn chord(a: &ChordArgs) -> Result<(), String> {
    if !(1..=16).contains(&a.successors) {
        return Err(format!("--successors must be 1..=16, not {}", a.successors));
    }
    if !(0.0..=1.0).contains(&a.fail_fraction)
        || a.fractions.iter().any(|f| !(0.0..=1.0).contains(f))
    {
        return Err("failure fractions must lie in 0..=1".into());
    }
    if a.max_exp > 24 || a.min_exp > a.max_exp {
        return Err("need --min-exp <= --max-exp <= 24".into());
    }
    match a.experiment {
        Experiment::Run => {
            if a.nodes == 0 {
                return Err("--nodes must be at least 1".into());
            }
            let r = experiments::run(
                a.nodes,
                a.lookups,
                a.seed,
                a.fail_fraction,
                a.successors,
                a.stabilize_ms,
            );
            if a.json {
                return json(&r);
            }
            let o = &r.outcomes;
            println!(
                "Chord ring of {} nodes (r = {}, seed {}), {} crashed at once, maintenance {}",
                r.nodes,
                r.successors,
                r.seed,
                r.crashed,
                if r.stabilize_ms == 0 {
                    "off".to_string()
                } else {
                    format!("every {} ms", r.stabilize_ms)
                }
            );
            println!("  lookups            {}", o.lookups);
            println!("  correct owner      {}", o.correct);
            println!("  wrong live owner   {}", o.wrong_live);
            println!("  crashed owner      {}", o.dead_owner);
            println!("  failed             {}", o.failed);
            println!("  unfinished         {}", o.unfinished);
            println!("  hops mean (1st, 99th pct)  {}", fmt_summary(&o.hops));
            println!("  messages delivered {}", r.delivered);
            println!("  simulated time     {} ms", r.sim_ms);
            println!("  build              {:.2} s", r.build_secs);
            println!("  run                {:.2} s", r.run_secs);
            println!("  node state (mean)  {:.0} bytes", r.node_bytes_mean);
            println!("  peak event queue   {}", r.peak_queue);
        }
        Experiment::Pathlen => {
            if !a.json {
                println!(
                    "{:>8} {:>8} {:>10} {:>6} {:>6} {:>8} {:>7} {:>7}",
                    "N", "lookups", "mean hops", "1st", "99th", "½log2N", "wrong", "secs"
                );
            }
            for k in a.min_exp..=a.max_exp {
                let t = Instant::now();
                let rows = experiments::path_length(&[k], a.lookups, a.seed, a.successors);
                for row in rows {
                    if a.json {
                        json(&row)?;
                    } else {
                        let o = &row.outcomes;
                        println!(
                            "{:>8} {:>8} {:>10.3} {:>6} {:>6} {:>8.1} {:>7} {:>7.2}",
                            row.nodes,
                            o.lookups,
                            o.hops.mean,
                            o.hops.p1,
                            o.hops.p99,
                            row.half_log2_n,
                            o.wrong_live + o.dead_owner + o.failed + o.unfinished,
                            t.elapsed().as_secs_f64()
                        );
                    }
                }
            }
        }
        Experiment::Load => {
            let t = Instant::now();
            let (rows, verified) = experiments::load_balance(a.nodes, &a.keys, a.seed);
            if a.json {
                for row in &rows {
                    json(row)?;
                }
                json(&serde_json::json!({ "verified_against_stores": verified }))?;
            } else {
                println!(
                    "{:>8} {:>9} {:>8} {:>6} {:>6} {:>6} {:>6} {:>7}",
                    "N", "keys", "mean", "1st", "99th", "max", "empty", "failed"
                );
                for r in &rows {
                    let s = &r.per_node;
                    println!(
                        "{:>8} {:>9} {:>8.1} {:>6} {:>6} {:>6} {:>6} {:>7}",
                        r.nodes, r.keys, s.mean, s.p1, s.p99, s.max, r.empty_nodes, r.failed_puts
                    );
                }
                println!(
                    "counts match every node's own store: {verified}; {:.1} s",
                    t.elapsed().as_secs_f64()
                );
            }
            if !verified {
                return Err("keys per node from PutDone differ from the nodes' stores".into());
            }
        }
        Experiment::Failures => {
            if !a.json {
                println!(
                    "{:>6} {:>3} {:>5} {:>8} {:>8} {:>8} {:>8} {:>7} {:>9} {:>18} {:>18}",
                    "N",
                    "r",
                    "p",
                    "lookups",
                    "correct",
                    "dead own",
                    "failed",
                    "wrong",
                    "own died",
                    "hops (1st, 99th)",
                    "timeouts (1st,99th)"
                );
            }
            for &p in &a.fractions {
                let row = experiments::failures(a.nodes, p, a.lookups, a.seed, a.successors);
                if a.json {
                    json(&row)?;
                } else {
                    let o = &row.outcomes;
                    println!(
                        "{:>6} {:>3} {:>5.2} {:>8} {:>8} {:>8} {:>8} {:>7} {:>9.4} {:>18} {:>18}",
                        row.nodes,
                        row.successors,
                        p,
                        o.lookups,
                        o.correct,
                        o.dead_owner,
                        o.failed,
                        o.wrong_live,
                        row.owner_died,
                        fmt_summary(&o.hops),
                        fmt_summary(&row.timeouts)
                    );
                }
            }
        }
        Experiment::Churn => {
            let stab = if a.stabilize_ms == 0 {
                500
            } else {
                a.stabilize_ms
            };
            let r = experiments::churn(a.nodes, a.rate, a.secs, a.seed, a.successors, stab);
            if a.json {
                return json(&r);
            }
            let o = &r.outcomes;
            println!("churn on {} nodes, {} joins/s and {} crashes/s for {} s (stabilize every {stab} ms)",
                r.nodes, r.rate, r.rate, r.secs);
            println!(
                "  joins {}, crashes {}, members after {}",
                r.joins, r.crashes, r.members_after
            );
            println!("  lookups {}: correct {}, wrong live {}, crashed owner {}, failed {}, unfinished {}",
                o.lookups, o.correct, o.wrong_live, o.dead_owner, o.failed, o.unfinished);
            println!("  hops {}", fmt_summary(&o.hops));
            println!(
                "  ideal ring 60 s after churn stopped: {}",
                r.ring_ideal_after
            );
        }
    }
    Ok(())
}

fn samp_cmd(a: &SampArgs) -> Result<(), String> {
    let alphas = if a.alphas.is_empty() {
        vec![a.alpha]
    } else {
        a.alphas.clone()
    };
    let base = SampSimConfig {
        mns: a.mns,
        moves: a.moves,
        seed: a.seed,
        grid: a.grid,
        block: a.block,
        delta_ms: a.delta_ms,
        call_every: a.call_every,
        calls_per_burst: a.calls_per_burst,
        threads: a.threads,
        ..SampSimConfig::default()
    };
    let mut cfgs = Vec::new();
    for &alpha in &alphas {
        let c = SampSimConfig {
            alpha,
            hotspot: (a.grid * 3 / 4, a.grid / 4),
            ..base.clone()
        };
        c.check()?;
        cfgs.push(c);
    }
    let t0 = Instant::now();
    if a.experiment == SampExperiment::Speed {
        if !a.json {
            println!(
                "SAMP simulation speed ({} MNs × {} moves, {} servers, {} threads, seed {})",
                a.mns,
                a.moves,
                base.servers(),
                a.threads,
                a.seed
            );
            println!(
                "{:>5} {:>16} {:>9} {:>8} {:>11} {:>8} {:>8} {:>12} {:>12}",
                "α",
                "pass",
                "handoffs",
                "calls",
                "messages",
                "wall s",
                "CPU s",
                "msgs/wall s",
                "msgs/CPU s"
            );
        }
        for c in &cfgs {
            for &p in &a.passes {
                let cpu0 = cpu_secs();
                let r = samp::run_pass(c, p.pass());
                let cpu = cpu_secs().zip(cpu0).map(|(b, a)| b - a);
                let row = SpeedRow {
                    alpha: c.alpha,
                    pass: p.name(),
                    handoffs: r.handoffs,
                    registered: r.registered,
                    calls: r.calls,
                    established: r.established,
                    messages: r.messages,
                    wall_secs: r.secs,
                    cpu_secs: cpu,
                    messages_per_wall_sec: r.messages as f64 / r.secs.max(1e-9),
                    messages_per_cpu_sec: cpu.map(|t| r.messages as f64 / t.max(1e-9)),
                };
                if a.json {
                    json(&row)?;
                } else {
                    println!(
                        "{:>5.2} {:>16} {:>9} {:>8} {:>11} {:>8.2} {:>8} {:>12.0} {:>12}",
                        row.alpha,
                        row.pass,
                        row.handoffs,
                        row.calls,
                        row.messages,
                        row.wall_secs,
                        row.cpu_secs.map_or("-".into(), |t| format!("{t:.2}")),
                        row.messages_per_wall_sec,
                        row.messages_per_cpu_sec
                            .map_or("-".into(), |m| format!("{m:.0}")),
                    );
                }
            }
        }
    }
    if matches!(a.experiment, SampExperiment::Fig4 | SampExperiment::All) {
        if !a.json {
            println!(
                "Fig. 4: σ of MNs per mobility agent ({} MNs × {} moves, {} agents, seed {})",
                a.mns,
                a.moves,
                base.servers(),
                a.seed
            );
            println!(
                "{:>5} {:>9} {:>9} {:>9} {:>10} {:>10} {:>10} {:>7}",
                "α", "MIPv6", "HMIPv6", "HMIP last", "SAMP home", "SAMP anch", "anch last", "secs"
            );
        }
        for c in &cfgs {
            let r = samp::fig4(c);
            if a.json {
                json(&r)?;
            } else {
                println!(
                    "{:>5.2} {:>9.1} {:>9.1} {:>9.1} {:>10.1} {:>10.1} {:>10.1} {:>7.2}",
                    r.alpha,
                    r.mipv6,
                    r.hmipv6,
                    r.hmipv6_last,
                    r.samp_home,
                    r.samp_anchor,
                    r.samp_anchor_last,
                    r.secs
                );
            }
        }
    }
    if matches!(a.experiment, SampExperiment::Fig5 | SampExperiment::All) {
        if !a.json {
            println!("Fig. 5a: hops per registration; 5b: hops of a session's first data packet");
            println!(
                "{:>5} | {:>6} {:>6} {:>8} {:>8} {:>7} {:>6} | {:>6} {:>6} {:>8} {:>8} {:>7} {:>6} | {:>5} {:>17}",
                "α",
                "MIPv6",
                "HMIPv6",
                "SAMP¬HR",
                "SAMP HR",
                "reanch",
                "lkup",
                "MIPv6",
                "HMIPv6",
                "SAMP¬TTC",
                "SAMP TTC",
                "direct",
                "ph.II",
                "fail",
                "secs (HR,¬HR,¬TTC)"
            );
        }
        for c in &cfgs {
            let r = samp::fig5(c);
            if a.json {
                json(&r)?;
            } else {
                println!(
                    "{:>5.2} | {:>6.1} {:>6.1} {:>8.1} {:>8.1} {:>7.3} {:>6.2} | {:>6.1} {:>6.1} {:>8.1} {:>8.1} {:>7.3} {:>6.3} | {:>5} {:>5.1} {:>5.1} {:>5.1}",
                    r.alpha,
                    r.reg_mipv6,
                    r.reg_hmipv6,
                    r.reg_samp_no_hr,
                    r.reg_samp_hr,
                    r.hr_reanchor_share,
                    r.lookup_hops,
                    r.call_mipv6,
                    r.call_hmipv6,
                    r.call_samp_no_ttc,
                    r.call_samp_ttc,
                    r.ttc_direct_share,
                    r.ttc_phase2_share,
                    r.failures,
                    r.secs[0],
                    r.secs[1],
                    r.secs[2]
                );
            }
        }
    }
    if !a.json {
        println!("total {:.2} s", t0.elapsed().as_secs_f64());
    }
    Ok(())
}
