//! `ip2p-check`: model-check the ip2p machines.
//!
//! ```text
//! ip2p-check all [--json] [--threads N] [--out DIR]       every model at its CI bounds
//! ip2p-check run MODEL [--variant V] [bounds…] [--bfs] [--json] [--threads N] [--timeout SECS]
//! ip2p-check explore MODEL [--variant V] [--addr 127.0.0.1:3000] [bounds…]
//! ip2p-check list
//! ```
//!
//! The table (or, with `--json`, one JSON object per line) goes to stdout; progress and
//! counterexamples go to stderr. Exit status: 0 when every result is the expected one, 1 when
//! some is not, 2 when nothing could be checked (no model registered, unknown model or variant,
//! bounds a model refuses).

use clap::{Args, Parser, Subcommand};
use ip2p_models::check::{default_threads, Bounds, Row, RunOpts};
use ip2p_models::{find_model, registry, report, ModelSpec};
use std::io::Write;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

#[derive(Parser, Debug)]
#[command(
    name = "ip2p-check",
    version,
    about = "Model-check the ip2p protocol machines with stateright",
    long_about = "Model-check the ip2p protocol machines with stateright.\n\n\
                  Results go to stdout (a table, or JSON lines with --json); progress and \
                  counterexamples go to stderr, and each counterexample is also written as a \
                  Mermaid sequence diagram under --out.\n\n\
                  Exit status: 0 every result as expected, 1 some result not as expected, \
                  2 nothing could be checked."
)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand, Debug)]
enum Cmd {
    /// Run every model at its CI bounds and print the results table.
    All {
        #[command(flatten)]
        out: OutArgs,
    },
    /// Run one model (every variant unless --variant), at its CI bounds unless overridden.
    Run {
        /// The model (see `ip2p-check list`).
        model: String,
        /// Only this variant.
        #[arg(long)]
        variant: Option<String>,
        #[command(flatten)]
        bounds: BoundsArgs,
        /// Breadth-first search (more memory; depth-first is the default).
        #[arg(long)]
        bfs: bool,
        #[command(flatten)]
        out: OutArgs,
    },
    /// Serve stateright's Explorer for one model variant on a loopback address.
    Explore {
        /// The model (see `ip2p-check list`).
        model: String,
        /// The variant (default: the model's first).
        #[arg(long)]
        variant: Option<String>,
        /// Where to listen; loopback addresses only.
        #[arg(long, default_value = "127.0.0.1:3000")]
        addr: SocketAddr,
        #[command(flatten)]
        bounds: BoundsArgs,
    },
    /// List the models, their variants and CI bounds.
    List,
}

#[derive(Args, Debug)]
struct OutArgs {
    /// One JSON object per line instead of a table.
    #[arg(long)]
    json: bool,
    /// Checker threads [default: the number of available cores].
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u16).range(1..))]
    threads: Option<u16>,
    /// Directory for counterexample diagrams.
    #[arg(long, value_name = "DIR", default_value = "target/ip2p-check")]
    out: PathBuf,
    /// Stop each run after this many seconds; unanswered properties report `incomplete`.
    #[arg(long, value_name = "SECS", value_parser = parse_secs)]
    timeout: Option<Duration>,
    /// No progress lines on stderr.
    #[arg(long, short)]
    quiet: bool,
}

#[derive(Args, Debug, Default)]
struct BoundsArgs {
    /// Number of nodes.
    #[arg(long, value_name = "N")]
    nodes: Option<u8>,
    /// Successor-list length r.
    #[arg(long, value_name = "R")]
    successors: Option<u8>,
    /// Number of joins.
    #[arg(long, value_name = "J")]
    joins: Option<u8>,
    /// Number of fail-stop failures.
    #[arg(long, value_name = "F")]
    failures: Option<u8>,
    /// Number of keys.
    #[arg(long, value_name = "K")]
    keys: Option<u8>,
    /// Number of requests (iP2P).
    #[arg(long, value_name = "R")]
    requests: Option<u8>,
    /// Number of network faults, each a loss or a duplication (iP2P).
    #[arg(long, value_name = "F")]
    faults: Option<u8>,
    /// Number of calls placed (SAMP).
    #[arg(long, value_name = "C")]
    calls: Option<u8>,
    /// Explore paths of at most D steps.
    #[arg(long, value_name = "D")]
    depth: Option<usize>,
}

impl BoundsArgs {
    fn to_bounds(&self) -> Bounds {
        Bounds {
            nodes: self.nodes,
            successors: self.successors,
            joins: self.joins,
            failures: self.failures,
            depth: self.depth,
            keys: self.keys,
            requests: self.requests,
            faults: self.faults,
            calls: self.calls,
        }
    }
}

fn parse_secs(s: &str) -> Result<Duration, String> {
    let v: f64 = s
        .parse()
        .map_err(|_| format!("`{s}` is not a number of seconds"))?;
    if !v.is_finite() || v <= 0.0 || v > 1e9 {
        return Err(format!(
            "`{s}`: the time limit must be a positive number of seconds"
        ));
    }
    Ok(Duration::from_secs_f64(v))
}

fn run_opts(out: &OutArgs, bfs: bool) -> RunOpts {
    RunOpts {
        threads: out.threads.map_or_else(default_threads, usize::from),
        progress: !out.quiet,
        out_dir: out.out.clone(),
        bfs,
        timeout: out.timeout,
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.cmd {
        Cmd::All { out } => {
            let models = registry();
            if models.is_empty() {
                return no_models();
            }
            let opts = run_opts(&out, false);
            let mut jobs = Vec::new();
            for m in &models {
                for (v, b) in (m.ci_runs)() {
                    jobs.push((*m, v.to_string(), b));
                }
            }
            run_jobs(jobs, &opts, out.json)
        }
        Cmd::Run {
            model,
            variant,
            bounds,
            bfs,
            out,
        } => {
            let spec = match lookup(&model) {
                Ok(s) => s,
                Err(code) => return code,
            };
            let variants: Vec<String> = match variant {
                Some(v) => match check_variant(&spec, &v) {
                    Ok(()) => vec![v],
                    Err(code) => return code,
                },
                None => spec.variants.iter().map(|v| v.to_string()).collect(),
            };
            let over = bounds.to_bounds();
            let mut jobs = Vec::new();
            for v in variants {
                let mut base = spec.ci_bounds(&v);
                if base.is_empty() {
                    base.push(Bounds::default());
                }
                let mut seen: Vec<Bounds> = Vec::new();
                for b in base {
                    let b = b.overridden_by(&over);
                    if !seen.contains(&b) {
                        seen.push(b.clone());
                        jobs.push((spec, v.clone(), b));
                    }
                }
            }
            run_jobs(jobs, &run_opts(&out, bfs), out.json)
        }
        Cmd::Explore {
            model,
            variant,
            addr,
            bounds,
        } => {
            let spec = match lookup(&model) {
                Ok(s) => s,
                Err(code) => return code,
            };
            let v = match variant {
                Some(v) => v,
                None => match spec.variants.first() {
                    Some(v) => v.to_string(),
                    None => {
                        eprintln!("error: model `{}` has no variants", spec.name);
                        return ExitCode::from(2);
                    }
                },
            };
            if let Err(code) = check_variant(&spec, &v) {
                return code;
            }
            let b = spec
                .ci_bounds(&v)
                .into_iter()
                .next()
                .unwrap_or_default()
                .overridden_by(&bounds.to_bounds());
            match (spec.explore)(&v, &b, addr) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("error: {e}");
                    ExitCode::from(2)
                }
            }
        }
        Cmd::List => {
            let models = registry();
            if models.is_empty() {
                println!("no model is registered (see models/src/lib.rs, `registry`)");
                return ExitCode::SUCCESS;
            }
            for m in &models {
                println!("{}  {}", m.name, m.about);
                for v in m.variants {
                    let ci: Vec<String> = m.ci_bounds(v).iter().map(|b| b.to_string()).collect();
                    if ci.is_empty() {
                        println!("  {v}  (not run by `all`)");
                    } else {
                        println!("  {v}  ci: {}", ci.join(" | "));
                    }
                }
            }
            ExitCode::SUCCESS
        }
    }
}

fn no_models() -> ExitCode {
    eprintln!(
        "error: no model is registered, so there is nothing to check \
         (models register in models/src/lib.rs, `registry`)"
    );
    ExitCode::from(2)
}

fn lookup(name: &str) -> Result<ModelSpec, ExitCode> {
    if let Some(spec) = find_model(name) {
        return Ok(spec);
    }
    let known: Vec<&str> = registry().iter().map(|m| m.name).collect();
    if known.is_empty() {
        return Err(no_models());
    }
    eprintln!(
        "error: unknown model `{name}`; known models: {}",
        known.join(", ")
    );
    Err(ExitCode::from(2))
}

fn check_variant(spec: &ModelSpec, v: &str) -> Result<(), ExitCode> {
    if spec.variants.contains(&v) {
        Ok(())
    } else {
        eprintln!(
            "error: model `{}` has no variant `{v}`; its variants: {}",
            spec.name,
            spec.variants.join(", ")
        );
        Err(ExitCode::from(2))
    }
}

/// Run every (model, variant, bounds) job, print the results, and say how it went.
fn run_jobs(jobs: Vec<(ModelSpec, String, Bounds)>, opts: &RunOpts, json: bool) -> ExitCode {
    let mut rows: Vec<Row> = Vec::new();
    let mut errors = 0usize;
    let stdout = std::io::stdout();
    for (spec, variant, bounds) in jobs {
        match (spec.run)(&variant, &bounds, opts) {
            Ok(new) => {
                if json {
                    let mut out = stdout.lock();
                    for r in &new {
                        let _ = writeln!(out, "{}", report::json_line(r));
                    }
                    let _ = out.flush();
                }
                rows.extend(new);
            }
            Err(e) => {
                errors += 1;
                eprintln!("error: {}/{variant} at {bounds}: {e}", spec.name);
            }
        }
    }
    let summary = report::summary(&rows);
    if json {
        eprintln!("{summary}");
    } else {
        print!("{}", report::table(&rows));
        println!("{summary}");
    }
    if errors > 0 {
        eprintln!("{errors} run(s) could not be checked");
        ExitCode::from(2)
    } else if rows.iter().all(Row::ok) {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    }
}
