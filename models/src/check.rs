//! Running stateright over a model and telling what it found.
//!
//! [`check`] runs the checker once and returns one [`Row`] per property the caller has an
//! expectation for. [`explore`] serves stateright's Explorer. A model implements [`Narrate`] so a
//! counterexample reads as a story in the paper's vocabulary (numbered steps on stderr) and as a
//! Mermaid `sequenceDiagram` file a person can render.
//!
//! # What a result means
//!
//! | property kind | discovery found | no discovery, search exhausted | no discovery, stopped by `--timeout` |
//! |---|---|---|---|
//! | `always` / `eventually` | [`Outcome::Violate`] (a counterexample) | [`Outcome::Hold`] | [`Outcome::Incomplete`] |
//! | `sometimes` | [`Outcome::Hold`] (an example) | [`Outcome::Violate`] (unreachable) | [`Outcome::Incomplete`] |
//!
//! A depth bound ([`Bounds::depth`]) makes the search exhaust a bounded space: an answer from
//! exhaustion is then an answer *up to that bound*, and [`Row::depth`] says how deep the search
//! went. Note that stateright skips a state it has seen before whatever the depth it was first
//! reached at, so under DFS a depth bound can leave out states that are reachable within the
//! bound along a shorter path; BFS with one thread does not have this gap.
//!
//! The run stops as soon as every reported property has its answer, so a run whose only reported
//! properties are expected violations stops at the first counterexample of each.

use crate::report;
use serde::Serialize;
use stateright::{Checker, Expectation, HasDiscoveries, Model, Path, Property};
use std::collections::BTreeSet;
use std::fmt;
use std::hash::Hash;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// What the model's author expects of a property.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Expect {
    /// The property holds: no counterexample to an `always`/`eventually` property, an example
    /// of a `sometimes` property.
    Hold,
    /// The property is violated: a counterexample exists (known-buggy variants), or a
    /// `sometimes` state is unreachable.
    Violate,
}

/// What the checker found for a property.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    /// The property holds (within the bounds of the run).
    Hold,
    /// The property is violated (within the bounds of the run).
    Violate,
    /// Stopped by the time limit before an answer, for a property whose answer needs exhaustion.
    Incomplete,
}

impl fmt::Display for Expect {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Expect::Hold => "hold",
            Expect::Violate => "violate",
        })
    }
}

impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Outcome::Hold => "hold",
            Outcome::Violate => "violate",
            Outcome::Incomplete => "incomplete",
        })
    }
}

/// One step of a counterexample told in the paper's vocabulary.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Step {
    /// Who acts (a participant of the diagram, normally one of [`Narrate::actors`]).
    pub actor: String,
    /// `Some(p)`: the actor sends something to `p` (an arrow `actor->>p`); `None`: something
    /// happens at the actor alone (a note over it).
    pub peer: Option<String>,
    /// What happened, in words (`"stabilize: asks n3 for its predecessor"`).
    pub text: String,
}

impl Step {
    /// Something `actor` does or suffers alone (a note over it in the diagram).
    pub fn note(actor: impl Into<String>, text: impl Into<String>) -> Self {
        Step {
            actor: actor.into(),
            peer: None,
            text: text.into(),
        }
    }

    /// `actor` sends something to `peer` (an arrow in the diagram).
    pub fn send(
        actor: impl Into<String>,
        peer: impl Into<String>,
        text: impl Into<String>,
    ) -> Self {
        Step {
            actor: actor.into(),
            peer: Some(peer.into()),
            text: text.into(),
        }
    }
}

/// Models implement this to turn a counterexample into a story and a Mermaid sequence diagram.
pub trait Narrate: Model {
    /// The participants, in the order the diagram should show them.
    fn actors(&self) -> Vec<String>;
    /// What happened in one transition. `peer: Some(p)` draws an arrow actor->>p, `None` a note
    /// over actor. An empty vector falls back to the action's `Debug` form as a note.
    fn narrate(
        &self,
        before: &Self::State,
        action: &Self::Action,
        after: &Self::State,
    ) -> Vec<Step>;
    /// Optional: a one-line description of a state (printed under the last step), default empty.
    fn describe_state(&self, _s: &Self::State) -> String {
        String::new()
    }
    /// Optional: symmetry reduction. A function mapping every state to the representative of its
    /// class (states equal up to renaming interchangeable nodes must map to the same state), which
    /// [`check`] hands to stateright's `symmetry_fn`. Counts then count representatives. Default:
    /// none. Only DFS honours it: stateright 0.31's BFS ignores symmetry (and [`check`] says so
    /// on stderr when asked for both).
    #[allow(clippy::type_complexity)]
    fn symmetry(&self) -> Option<fn(&Self::State) -> Self::State> {
        None
    }
}

/// The bounds of one run. What each field means (and which it uses) is up to the model, except
/// [`Bounds::depth`], which [`check`] applies itself. `None` is the model's default.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct Bounds {
    /// Number of nodes (members plus joiners).
    pub nodes: Option<u8>,
    /// Successor-list length r.
    pub successors: Option<u8>,
    /// Number of joins the environment may perform.
    pub joins: Option<u8>,
    /// Number of (fail-stop) failures the environment may inject.
    pub failures: Option<u8>,
    /// Explore paths of at most this many steps (actions) from an initial state; `None`:
    /// unbounded.
    pub depth: Option<usize>,
    /// Number of keys stored.
    pub keys: Option<u8>,
    /// Number of requests the application may issue (iP2P).
    pub requests: Option<u8>,
    /// Number of network faults (each a loss or a duplication) the environment may inject.
    pub faults: Option<u8>,
    /// Number of calls placed (SAMP).
    pub calls: Option<u8>,
}

impl Bounds {
    /// `self` with every field that `over` sets replaced by `over`'s value.
    pub fn overridden_by(&self, over: &Bounds) -> Bounds {
        Bounds {
            nodes: over.nodes.or(self.nodes),
            successors: over.successors.or(self.successors),
            joins: over.joins.or(self.joins),
            failures: over.failures.or(self.failures),
            depth: over.depth.or(self.depth),
            keys: over.keys.or(self.keys),
            requests: over.requests.or(self.requests),
            calls: over.calls.or(self.calls),
            faults: over.faults.or(self.faults),
        }
    }
}

impl fmt::Display for Bounds {
    /// `nodes=4 successors=2 depth=30`; only the fields that are set; `default bounds` when
    /// none is.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut parts = Vec::new();
        let small = [
            ("nodes", self.nodes),
            ("successors", self.successors),
            ("joins", self.joins),
            ("failures", self.failures),
            ("keys", self.keys),
            ("requests", self.requests),
            ("faults", self.faults),
            ("calls", self.calls),
        ];
        for (name, v) in small {
            if let Some(v) = v {
                parts.push(format!("{name}={v}"));
            }
        }
        if let Some(d) = self.depth {
            parts.push(format!("depth={d}"));
        }
        if parts.is_empty() {
            f.write_str("default bounds")
        } else {
            f.write_str(&parts.join(" "))
        }
    }
}

/// How to run the checker.
#[derive(Clone, Debug)]
pub struct RunOpts {
    /// Checker threads (at least 1; 0 is taken as 1).
    pub threads: usize,
    /// Print progress (states, unique, states/s, depth) to stderr every ~2 s.
    pub progress: bool,
    /// Where counterexample diagrams (`<model>-<variant>-<property>.mmd`) are written.
    pub out_dir: PathBuf,
    /// Breadth-first instead of depth-first search (more memory; see DESIGN.md).
    pub bfs: bool,
    /// Stop after this long; properties still without an answer are [`Outcome::Incomplete`].
    pub timeout: Option<Duration>,
}

impl Default for RunOpts {
    /// One thread per available core, no progress, `target/ip2p-check`, DFS, no time limit.
    fn default() -> Self {
        RunOpts {
            threads: default_threads(),
            progress: false,
            out_dir: PathBuf::from("target/ip2p-check"),
            bfs: false,
            timeout: None,
        }
    }
}

/// The number of available cores (1 if unknown).
pub fn default_threads() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// One line of the `ip2p-check` table: one property of one model variant at one set of bounds.
#[derive(Clone, Debug, Serialize)]
pub struct Row {
    /// The model (`chord`).
    pub model: String,
    /// The variant (`original`, `zave`).
    pub variant: String,
    /// The property, named as in the spec.
    pub property: String,
    /// What the model's author expects.
    pub expect: Expect,
    /// What the checker found.
    pub result: Outcome,
    /// States generated, counting repeats.
    pub states: usize,
    /// Distinct states generated.
    pub unique: usize,
    /// The most steps from an initial state among the states checked.
    pub depth: usize,
    /// Wall-clock seconds of the run (shared by every row of the run).
    pub secs: f64,
    /// `states / secs`.
    pub states_per_sec: f64,
    /// The bounds of the run, as [`Bounds`]' `Display` writes them.
    pub bounds: String,
    /// Path of the Mermaid file telling the counterexample (or the unexpected example), if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub counterexample: Option<String>,
}

impl Row {
    /// Whether the result is what was expected ([`Outcome::Incomplete`] never is).
    pub fn ok(&self) -> bool {
        matches!(
            (self.expect, self.result),
            (Expect::Hold, Outcome::Hold) | (Expect::Violate, Outcome::Violate)
        )
    }
}

/// The most properties one model may declare (the checker forwards each through a small table of
/// functions; see [`check`]).
pub const MAX_PROPERTIES: usize = 64;

/// The model as the checker runs it: the model itself, plus a switch that closes the boundary so
/// a run can be stopped at a time limit whatever the thread count (stateright's own timeout only
/// stops threads that share work, so a one-thread DFS would ignore it).
///
/// It also keeps the *first* discovery of each `always`/`sometimes` property: stateright 0.31
/// overwrites a property's discovery with every later state that violates (or satisfies) it, so
/// a run that goes on after a counterexample (to answer other properties) would report the last
/// and usually longest one. Once a property has its discovery, its condition here answers "fine"
/// for `always` and "not yet" for `sometimes`, which stateright never records.
struct Stoppable<M: Model> {
    inner: M,
    props: Vec<Property<M>>,
    found: Vec<AtomicBool>,
    stop: Arc<AtomicBool>,
}

fn forward_condition<M: Model, const I: usize>(m: &Stoppable<M>, s: &M::State) -> bool {
    let p = &m.props[I];
    match p.expectation {
        Expectation::Always => {
            if m.found[I].load(Ordering::Relaxed) {
                return true;
            }
            let holds = (p.condition)(&m.inner, s);
            if !holds {
                m.found[I].store(true, Ordering::Relaxed);
            }
            holds
        }
        Expectation::Sometimes => {
            if m.found[I].load(Ordering::Relaxed) {
                return false;
            }
            let holds = (p.condition)(&m.inner, s);
            if holds {
                m.found[I].store(true, Ordering::Relaxed);
            }
            holds
        }
        Expectation::Eventually => (p.condition)(&m.inner, s),
    }
}

macro_rules! condition_table {
    ($($i:literal)*) => {
        #[allow(clippy::type_complexity)]
        fn condition_at<M: Model>(i: usize) -> Option<fn(&Stoppable<M>, &M::State) -> bool> {
            match i {
                $($i => Some(forward_condition::<M, $i>),)*
                _ => None,
            }
        }
    };
}
condition_table!(
    0 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 20 21 22 23 24 25 26 27 28 29 30 31
    32 33 34 35 36 37 38 39 40 41 42 43 44 45 46 47 48 49 50 51 52 53 54 55 56 57 58 59 60 61 62 63
);

impl<M: Model> Model for Stoppable<M> {
    type State = M::State;
    type Action = M::Action;

    fn init_states(&self) -> Vec<Self::State> {
        self.inner.init_states()
    }

    fn actions(&self, state: &Self::State, actions: &mut Vec<Self::Action>) {
        self.inner.actions(state, actions)
    }

    fn next_state(&self, last_state: &Self::State, action: Self::Action) -> Option<Self::State> {
        self.inner.next_state(last_state, action)
    }

    fn properties(&self) -> Vec<Property<Self>> {
        self.props
            .iter()
            .enumerate()
            .filter_map(|(i, p)| {
                condition_at::<M>(i).map(|condition| Property {
                    expectation: p.expectation.clone(),
                    name: p.name,
                    condition,
                })
            })
            .collect()
    }

    fn within_boundary(&self, state: &Self::State) -> bool {
        !self.stop.load(Ordering::Relaxed) && self.inner.within_boundary(state)
    }
}

/// One reported property: its name, kind and expectation.
struct Reported {
    name: &'static str,
    kind: Expectation,
    expect: Expect,
}

/// Counts and timing of one finished run.
struct RunStats {
    states: usize,
    unique: usize,
    depth: usize,
    secs: f64,
    timed_out: bool,
}

/// Run the checker once over `model` and produce one [`Row`] per property of the model that
/// `expect` gives an expectation for (`expect` returns `None` => property not reported).
///
/// Uses DFS by default (`opts.bfs` for BFS), `opts.threads` threads, and `bounds.depth` as the
/// most steps from an initial state to explore. Stops early once every reported property has its
/// answer (for a Violate-expected `always` property: a discovery; for a Hold-expected one: only
/// exhaustion answers it). Prints progress (states, unique, states/s, depth) to stderr every ~2 s
/// when `opts.progress`.
///
/// For every discovery that is a counterexample (`always`/`eventually` property violated), and
/// for an example of a `sometimes` property expected to be unreachable, prints the path as
/// numbered steps of the model's narration to stderr and writes a Mermaid `sequenceDiagram` to
/// `opts.out_dir/<model>-<variant>-<property>.mmd` (creating the directories). A `sometimes`
/// property expected to be reachable but not found gets a line on stderr (there is no path).
///
/// # Panics
///
/// If the model declares more than [`MAX_PROPERTIES`] properties (a bug in the model).
pub fn check<M>(
    model: M,
    model_name: &str,
    variant: &str,
    expect: impl Fn(&str) -> Option<Expect>,
    bounds: &Bounds,
    opts: &RunOpts,
) -> Vec<Row>
where
    M: Narrate + Send + Sync + 'static,
    M::State: Hash + fmt::Debug + Send + Sync + Clone + PartialEq,
    M::Action: fmt::Debug + Send + Sync + Clone + PartialEq,
{
    let props = model.properties();
    assert!(
        props.len() <= MAX_PROPERTIES,
        "model {model_name} declares {} properties; ip2p-check supports at most {MAX_PROPERTIES}",
        props.len()
    );
    let reported: Vec<Reported> = props
        .iter()
        .filter_map(|p| {
            expect(p.name).map(|e| Reported {
                name: p.name,
                kind: p.expectation.clone(),
                expect: e,
            })
        })
        .collect();
    if reported.is_empty() {
        eprintln!("{model_name}/{variant}: no property has an expectation; nothing to check");
        return Vec::new();
    }

    let symmetry = model.symmetry();
    let stop = Arc::new(AtomicBool::new(false));
    let wrapped = Stoppable {
        inner: model,
        found: props.iter().map(|_| AtomicBool::new(false)).collect(),
        props,
        stop: Arc::clone(&stop),
    };
    let finish: BTreeSet<&'static str> = reported.iter().map(|r| r.name).collect();
    // stateright counts the initial state as depth 1 and skips (does not check) states at the
    // target depth, so "at most d steps" is a target of d + 2.
    let target = bounds.depth.map(|d| d.saturating_add(2));
    let mut builder = wrapped
        .checker()
        .threads(opts.threads.max(1))
        .finish_when(HasDiscoveries::AllOf(finish));
    if let Some(t) = target {
        builder = builder.target_max_depth(t);
    }
    if let Some(f) = symmetry {
        builder = builder.symmetry_fn(f);
    }
    let label = format!("{model_name}/{variant}");
    if opts.bfs && symmetry.is_some() {
        eprintln!("{label}: note: stateright's BFS ignores symmetry reduction; DFS uses it");
    }
    if opts.progress {
        eprintln!(
            "{label}: checking {} propert{} at {bounds} ({}, {} thread{}{})",
            reported.len(),
            if reported.len() == 1 { "y" } else { "ies" },
            if opts.bfs { "BFS" } else { "DFS" },
            opts.threads.max(1),
            if opts.threads > 1 { "s" } else { "" },
            if symmetry.is_some() && !opts.bfs {
                ", symmetry"
            } else {
                ""
            }
        );
    }
    let finish = |model: &M, discoveries: Found<M>, stats: RunStats| {
        conclude(
            model,
            model_name,
            variant,
            &reported,
            discoveries,
            &stats,
            bounds,
            opts,
        )
    };
    let start = Instant::now();
    if opts.bfs {
        watch(
            builder.spawn_bfs(),
            start,
            &label,
            target,
            &stop,
            opts,
            finish,
        )
    } else {
        watch(
            builder.spawn_dfs(),
            start,
            &label,
            target,
            &stop,
            opts,
            finish,
        )
    }
}

/// Turn what one run found into rows, telling every counterexample on the way.
#[allow(clippy::too_many_arguments)]
fn conclude<M>(
    model: &M,
    model_name: &str,
    variant: &str,
    reported: &[Reported],
    discoveries: Found<M>,
    stats: &RunStats,
    bounds: &Bounds,
    opts: &RunOpts,
) -> Vec<Row>
where
    M: Narrate,
    M::State: fmt::Debug + Clone,
    M::Action: fmt::Debug + Clone,
{
    let label = format!("{model_name}/{variant}");
    let states_per_sec = if stats.secs > 0.0 {
        stats.states as f64 / stats.secs
    } else {
        0.0
    };
    let mut rows = Vec::with_capacity(reported.len());
    for r in reported {
        let found = discoveries
            .iter()
            .find(|(n, _)| *n == r.name)
            .map(|(_, p)| p);
        let is_sometimes = r.kind == Expectation::Sometimes;
        let result = match (found.is_some(), is_sometimes) {
            (true, false) => Outcome::Violate,
            (true, true) => Outcome::Hold,
            (false, _) if stats.timed_out => Outcome::Incomplete,
            (false, false) => Outcome::Hold,
            (false, true) => Outcome::Violate,
        };
        let mut counterexample = None;
        match found {
            Some(path) if !is_sometimes || r.expect == Expect::Violate => {
                let what = if is_sometimes {
                    "example (expected unreachable)"
                } else {
                    "counterexample"
                };
                let story = Story {
                    model_name,
                    variant,
                    property: r.name,
                    what,
                    bounds,
                };
                counterexample = tell(model, &story, path.clone(), opts);
            }
            None if is_sometimes && r.expect == Expect::Hold && !stats.timed_out => {
                eprintln!(
                    "{label}: no reachable state satisfies `{}` ({} unique states searched at {bounds})",
                    r.name, stats.unique
                );
            }
            _ => {}
        }
        rows.push(Row {
            model: model_name.to_string(),
            variant: variant.to_string(),
            property: r.name.to_string(),
            expect: r.expect,
            result,
            states: stats.states,
            unique: stats.unique,
            depth: stats.depth,
            secs: stats.secs,
            states_per_sec,
            bounds: bounds.to_string(),
            counterexample,
        });
    }
    rows
}

type Found<M> = Vec<(
    &'static str,
    Path<<M as Model>::State, <M as Model>::Action>,
)>;

/// Watch a spawned checker (progress, time limit), join it, and hand what it found to `conclude`
/// while the checker (which owns the model) is still alive.
fn watch<M, C, R>(
    checker: C,
    start: Instant,
    label: &str,
    target: Option<usize>,
    stop: &AtomicBool,
    opts: &RunOpts,
    conclude: impl FnOnce(&M, Found<M>, RunStats) -> R,
) -> R
where
    M: Model,
    M::State: Clone + PartialEq,
    M::Action: Clone + PartialEq,
    C: Checker<Stoppable<M>>,
{
    let steps = |max_depth: usize| {
        // stateright's depth counts the initial state as 1; states at the target are not checked.
        let checked = match target {
            Some(t) => max_depth.min(t - 1),
            None => max_depth,
        };
        checked.saturating_sub(1)
    };
    let mut timed_out = false;
    let mut last_report = start;
    let mut last_states = 0usize;
    while !checker.is_done() {
        std::thread::sleep(Duration::from_millis(20));
        if let Some(limit) = opts.timeout {
            if !timed_out && start.elapsed() >= limit {
                timed_out = true;
                stop.store(true, Ordering::Relaxed);
                if opts.progress {
                    eprintln!(
                        "{label}: time limit of {:.1}s reached, stopping",
                        limit.as_secs_f64()
                    );
                }
            }
        }
        if opts.progress && last_report.elapsed() >= Duration::from_secs(2) {
            let states = checker.state_count();
            let rate = states.saturating_sub(last_states) as f64
                / last_report.elapsed().as_secs_f64().max(1e-9);
            eprintln!(
                "{label}: {} states, {} unique, {}/s, depth {}, {:.0}s",
                report::human(states as f64),
                report::human(checker.unique_state_count() as f64),
                report::human(rate),
                steps(checker.max_depth()),
                start.elapsed().as_secs_f64()
            );
            last_report = Instant::now();
            last_states = states;
        }
    }
    let checker = checker.join();
    let stats = RunStats {
        states: checker.state_count(),
        unique: checker.unique_state_count(),
        depth: steps(checker.max_depth()),
        secs: start.elapsed().as_secs_f64(),
        timed_out,
    };
    if opts.progress {
        eprintln!(
            "{label}: done: {} states, {} unique, depth {}, {:.2}s",
            stats.states, stats.unique, stats.depth, stats.secs
        );
    }
    let mut found: Found<M> = checker.discoveries().into_iter().collect();
    found.sort_by_key(|(n, _)| *n);
    conclude(&checker.model().inner, found, stats)
}

/// Which counterexample is being told.
struct Story<'a> {
    model_name: &'a str,
    variant: &'a str,
    property: &'a str,
    what: &'a str,
    bounds: &'a Bounds,
}

/// Print `path` as numbered steps to stderr and write it as a Mermaid diagram; the file's path.
fn tell<M>(
    model: &M,
    story: &Story<'_>,
    path: Path<M::State, M::Action>,
    opts: &RunOpts,
) -> Option<String>
where
    M: Narrate,
    M::State: fmt::Debug,
    M::Action: fmt::Debug,
{
    let pairs = path.into_vec();
    let mut transitions: Vec<Vec<Step>> = Vec::with_capacity(pairs.len());
    for w in pairs.windows(2) {
        let (before, action) = &w[0];
        let after = &w[1].0;
        let Some(action) = action else { continue };
        let mut steps = model.narrate(before, action, after);
        if steps.is_empty() {
            let actor = model
                .actors()
                .into_iter()
                .next()
                .unwrap_or_else(|| "model".into());
            steps.push(Step::note(actor, format!("{action:?}")));
        }
        transitions.push(steps);
    }
    let last = pairs
        .last()
        .map(|(s, _)| model.describe_state(s))
        .unwrap_or_default();
    let title = format!(
        "{}/{} `{}`: {} in {} steps at {}",
        story.model_name,
        story.variant,
        story.property,
        story.what,
        transitions.len(),
        story.bounds
    );
    eprint!("{}", report::story(&title, &transitions, &last));

    let file = opts.out_dir.join(format!(
        "{}-{}-{}.mmd",
        report::file_part(story.model_name),
        report::file_part(story.variant),
        report::file_part(story.property)
    ));
    let text = report::mermaid(&title, &model.actors(), &transitions, &last);
    let written = std::fs::create_dir_all(&opts.out_dir).and_then(|()| std::fs::write(&file, text));
    match written {
        Ok(()) => {
            eprintln!("  diagram: {}", file.display());
            Some(file.display().to_string())
        }
        Err(e) => {
            eprintln!("  could not write the diagram to {}: {e}", file.display());
            None
        }
    }
}

/// Serve stateright's Explorer for `model` on `addr` (blocks while serving).
///
/// `addr` must be a loopback address: the Explorer has no authentication, so it is never offered
/// to the network. Any other address, or one that cannot be bound, is refused with an error.
pub fn explore<M>(model: M, addr: std::net::SocketAddr) -> Result<(), String>
where
    M: Model + Send + Sync + 'static,
    M::State: Hash + fmt::Debug + Send + Sync + Clone + PartialEq,
    M::Action: fmt::Debug + Send + Sync + Clone + PartialEq,
{
    if !addr.ip().is_loopback() {
        return Err(format!(
            "refusing to serve the Explorer on {addr}: only loopback addresses (127.0.0.1, ::1) are allowed"
        ));
    }
    // stateright panics when it cannot bind; find out first and say why.
    drop(std::net::TcpListener::bind(addr).map_err(|e| format!("cannot listen on {addr}: {e}"))?);
    eprintln!("Explorer on http://{addr}/ (Ctrl-C to stop)");
    let _checker = model.checker().serve(addr);
    Ok(())
}
