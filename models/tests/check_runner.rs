//! The `ip2p-check` machinery on a toy model whose answers are known by hand.
//!
//! Two counters `a` and `b`, each incremented by its own action up to `max`. With `max = 3` the
//! reachable states are the 16 pairs in `0..=3 × 0..=3`, reached by 24 transitions (12 states can
//! increment `a`, 12 can increment `b`), so a full run generates 1 + 24 = 25 states, 16 of them
//! unique, and its deepest state is `(3, 3)` after 6 steps.

use ip2p_models::check::{self, Bounds, Expect, Narrate, Outcome, Row, RunOpts, Step};
use ip2p_models::report;
use stateright::{Model, Property};
use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

#[derive(Clone, Debug)]
struct Counters {
    max: u32,
    /// Treat `a` and `b` as interchangeable (symmetry reduction).
    sym: bool,
}

impl Counters {
    fn new(max: u32) -> Self {
        Counters { max, sym: false }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
enum Act {
    IncA,
    IncB,
}

type State = (u32, u32);

const SUM_BELOW_5: &str = "sum below 5";
const SUM_AT_MOST_2MAX: &str = "sum at most 2*max";
const BOTH_FULL: &str = "both full";
const A_BEYOND_MAX: &str = "a beyond max";

impl Model for Counters {
    type State = State;
    type Action = Act;

    fn init_states(&self) -> Vec<State> {
        vec![(0, 0)]
    }

    fn actions(&self, s: &State, actions: &mut Vec<Act>) {
        if s.0 < self.max {
            actions.push(Act::IncA);
        }
        if s.1 < self.max {
            actions.push(Act::IncB);
        }
    }

    fn next_state(&self, s: &State, a: Act) -> Option<State> {
        Some(match a {
            Act::IncA => (s.0 + 1, s.1),
            Act::IncB => (s.0, s.1 + 1),
        })
    }

    fn properties(&self) -> Vec<Property<Self>> {
        vec![
            Property::always(SUM_BELOW_5, |_, s: &State| s.0 + s.1 < 5),
            Property::always(SUM_AT_MOST_2MAX, |m, s: &State| s.0 + s.1 <= 2 * m.max),
            Property::sometimes(BOTH_FULL, |m, s: &State| s.0 == m.max && s.1 == m.max),
            Property::sometimes(A_BEYOND_MAX, |m, s: &State| s.0 > m.max),
        ]
    }
}

impl Narrate for Counters {
    fn actors(&self) -> Vec<String> {
        vec!["alice".into(), "bob".into()]
    }

    fn narrate(&self, _before: &State, action: &Act, after: &State) -> Vec<Step> {
        match action {
            Act::IncA => vec![Step::send("alice", "bob", format!("a becomes {}", after.0))],
            Act::IncB => vec![Step::note("bob", format!("b becomes {}", after.1))],
        }
    }

    fn describe_state(&self, s: &State) -> String {
        format!("a={} b={} sum={}", s.0, s.1, s.0 + s.1)
    }

    fn symmetry(&self) -> Option<fn(&State) -> State> {
        fn sorted(s: &State) -> State {
            (s.0.min(s.1), s.0.max(s.1))
        }
        self.sym.then_some(sorted as fn(&State) -> State)
    }
}

fn expect_all(p: &str) -> Option<Expect> {
    match p {
        SUM_BELOW_5 => Some(Expect::Violate),
        SUM_AT_MOST_2MAX => Some(Expect::Hold),
        BOTH_FULL => Some(Expect::Hold),
        A_BEYOND_MAX => Some(Expect::Violate),
        _ => None,
    }
}

fn out_dir(test: &str) -> PathBuf {
    let d = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join("check_runner")
        .join(test);
    let _ = std::fs::remove_dir_all(&d);
    d
}

fn opts(test: &str, threads: usize, bfs: bool) -> RunOpts {
    RunOpts {
        threads,
        progress: false,
        out_dir: out_dir(test),
        bfs,
        timeout: None,
    }
}

fn row<'a>(rows: &'a [Row], property: &str) -> &'a Row {
    rows.iter()
        .find(|r| r.property == property)
        .unwrap_or_else(|| panic!("no row for {property}: {rows:?}"))
}

#[test]
fn toy_model_outcomes_and_exact_counts() {
    for (threads, bfs) in [(1, false), (2, false), (1, true), (2, true)] {
        let name = format!("outcomes-{threads}-{bfs}");
        let o = opts(&name, threads, bfs);
        let rows = check::check(
            Counters::new(3),
            "toy",
            "v",
            expect_all,
            &Bounds::default(),
            &o,
        );
        assert_eq!(rows.len(), 4, "{rows:?}");
        let ctx = format!("threads={threads} bfs={bfs}");

        let violated = row(&rows, SUM_BELOW_5);
        assert_eq!(violated.result, Outcome::Violate, "{ctx}");
        assert!(violated.ok());
        let held = row(&rows, SUM_AT_MOST_2MAX);
        assert_eq!(held.result, Outcome::Hold, "{ctx}");
        assert!(held.ok());
        assert_eq!(row(&rows, BOTH_FULL).result, Outcome::Hold, "{ctx}");
        let unreachable = row(&rows, A_BEYOND_MAX);
        assert_eq!(unreachable.result, Outcome::Violate, "{ctx}");
        assert!(unreachable.counterexample.is_none(), "{ctx}");

        // the Hold answer needs the whole space: exact counts
        assert_eq!(held.unique, 16, "{ctx}");
        assert_eq!(held.states, 25, "{ctx}");
        assert_eq!(held.depth, 6, "{ctx}");
        assert!(held.secs >= 0.0 && held.states_per_sec >= 0.0);
        assert_eq!(held.model, "toy");
        assert_eq!(held.variant, "v");

        // the violation is told as a Mermaid diagram
        let file = violated
            .counterexample
            .as_ref()
            .unwrap_or_else(|| panic!("no diagram ({ctx})"));
        assert_eq!(
            PathBuf::from(file),
            o.out_dir.join("toy-v-sum_below_5.mmd"),
            "{ctx}"
        );
        let text = std::fs::read_to_string(file).expect("diagram written");
        assert!(text.contains("sequenceDiagram"), "{text}");
        assert!(text.contains("participant P0 as alice"), "{text}");
        assert!(text.contains("participant P1 as bob"), "{text}");
        assert!(
            text.contains("P0->>P1: 1. a becomes 1")
                || text.contains("Note over P1: 1. b becomes 1"),
            "{text}"
        );
        // the first violation found is kept (stateright alone would report the last one): five
        // increments, and the final state is described
        let steps = text
            .lines()
            .filter(|l| {
                l.contains("->>") || l.contains("Note over P0: ") || l.contains("Note over P1: ")
            })
            .count();
        assert_eq!(steps, 5, "{ctx}: {text}");
        assert!(text.contains("5. "), "{text}");
        assert!(text.contains("Note over P0,P1: a="), "{text}");
        assert!(text.contains("sum=5"), "{text}");
        // no other diagrams: the expected example of BOTH_FULL is not a counterexample
        let files: Vec<_> = std::fs::read_dir(&o.out_dir)
            .expect("out dir")
            .filter_map(Result::ok)
            .collect();
        assert_eq!(files.len(), 1, "{ctx}: {files:?}");
    }
}

#[test]
fn symmetry_counts_representatives() {
    for bfs in [false, true] {
        let rows = check::check(
            Counters { max: 3, sym: true },
            "toy",
            "sym",
            expect_all,
            &Bounds::default(),
            &opts(&format!("sym-{bfs}"), 1, bfs),
        );
        let held = row(&rows, SUM_AT_MOST_2MAX);
        assert_eq!(held.result, Outcome::Hold);
        // DFS: the 10 pairs a <= b of 0..=3; stateright 0.31's BFS ignores symmetry
        assert_eq!(held.unique, if bfs { 16 } else { 10 }, "bfs={bfs}");
        assert_eq!(row(&rows, SUM_BELOW_5).result, Outcome::Violate);
        assert_eq!(row(&rows, BOTH_FULL).result, Outcome::Hold);
    }
}

#[test]
fn the_first_counterexample_is_kept_in_a_long_run() {
    // 200 × 200 states must all be searched to answer the Hold property; the counterexample is
    // still the first found (5 steps), not the last state violating `sum below 5`
    let o = opts("first", 2, false);
    let rows = check::check(
        Counters::new(200),
        "toy",
        "v",
        expect_all,
        &Bounds::default(),
        &o,
    );
    assert_eq!(row(&rows, SUM_AT_MOST_2MAX).unique, 201 * 201);
    let text = std::fs::read_to_string(
        row(&rows, SUM_BELOW_5)
            .counterexample
            .as_ref()
            .expect("diagram"),
    )
    .expect("diagram written");
    assert!(text.contains("sum=5"), "{text}");
}

#[test]
fn unexpected_results_are_not_ok() {
    let o = opts("unexpected", 1, false);
    let expect = |p: &str| match p {
        SUM_BELOW_5 => Some(Expect::Hold),
        A_BEYOND_MAX => Some(Expect::Hold),
        BOTH_FULL => Some(Expect::Violate),
        _ => None,
    };
    let rows = check::check(Counters::new(3), "toy", "v", expect, &Bounds::default(), &o);
    assert_eq!(
        rows.len(),
        3,
        "properties without an expectation are not reported"
    );
    assert!(rows.iter().all(|r| !r.ok()), "{rows:?}");
    assert_eq!(row(&rows, SUM_BELOW_5).result, Outcome::Violate);
    assert_eq!(row(&rows, A_BEYOND_MAX).result, Outcome::Violate);
    assert!(row(&rows, A_BEYOND_MAX).counterexample.is_none());
    // an example of a state expected unreachable is told like a counterexample
    let both = row(&rows, BOTH_FULL);
    assert_eq!(both.result, Outcome::Hold);
    let text = std::fs::read_to_string(both.counterexample.as_ref().expect("diagram"))
        .expect("diagram written");
    assert!(text.contains("sum=6"), "{text}");

    let table = report::table(&rows);
    assert_eq!(table.matches("UNEXPECTED").count(), 3, "{table}");
    assert_eq!(report::summary(&rows), "3 checks, 0 as expected");
}

#[test]
fn row_ok_truth_table() {
    let rows = check::check(
        Counters::new(1),
        "toy",
        "v",
        |p| (p == SUM_AT_MOST_2MAX).then_some(Expect::Hold),
        &Bounds::default(),
        &opts("ok", 1, false),
    );
    let base = rows[0].clone();
    assert_eq!(base.unique, 4);
    for (expect, result, ok) in [
        (Expect::Hold, Outcome::Hold, true),
        (Expect::Violate, Outcome::Violate, true),
        (Expect::Hold, Outcome::Violate, false),
        (Expect::Violate, Outcome::Hold, false),
        (Expect::Hold, Outcome::Incomplete, false),
        (Expect::Violate, Outcome::Incomplete, false),
    ] {
        let r = Row {
            expect,
            result,
            ..base.clone()
        };
        assert_eq!(r.ok(), ok, "{expect:?} {result:?}");
    }
}

#[test]
fn stops_at_the_first_answer_when_only_violations_are_reported() {
    // 10^10 states: only stopping early can finish this
    let started = Instant::now();
    let rows = check::check(
        Counters::new(100_000),
        "toy",
        "big",
        |p| (p == SUM_BELOW_5).then_some(Expect::Violate),
        &Bounds::default(),
        &opts("early", 2, false),
    );
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].result, Outcome::Violate);
    assert!(rows[0].counterexample.is_some());
    assert!(started.elapsed() < Duration::from_secs(30));
}

#[test]
fn timeout_gives_incomplete_even_with_one_thread() {
    for threads in [1, 2] {
        let mut o = opts(&format!("timeout-{threads}"), threads, false);
        o.timeout = Some(Duration::from_millis(300));
        let started = Instant::now();
        let rows = check::check(
            Counters::new(100_000),
            "toy",
            "big",
            expect_all,
            &Bounds::default(),
            &o,
        );
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "threads={threads}: the time limit did not stop the run"
        );
        // answered by a discovery: still answered
        assert_eq!(row(&rows, SUM_BELOW_5).result, Outcome::Violate);
        // answered only by exhaustion: incomplete
        assert_eq!(row(&rows, SUM_AT_MOST_2MAX).result, Outcome::Incomplete);
        assert_eq!(row(&rows, A_BEYOND_MAX).result, Outcome::Incomplete);
        assert!(!row(&rows, SUM_AT_MOST_2MAX).ok());
        assert!(row(&rows, SUM_AT_MOST_2MAX).states > 0);
    }
}

#[test]
fn depth_bound_answers_up_to_the_bound() {
    // within 2 steps the sum never reaches 5, and (3, 3) is out of reach
    let rows = check::check(
        Counters::new(3),
        "toy",
        "v",
        expect_all,
        &Bounds {
            depth: Some(2),
            ..Bounds::default()
        },
        &opts("depth", 1, true),
    );
    let r = row(&rows, SUM_BELOW_5);
    assert_eq!(r.result, Outcome::Hold);
    assert_eq!(r.depth, 2);
    assert_eq!(r.bounds, "depth=2");
    assert_eq!(row(&rows, BOTH_FULL).result, Outcome::Violate);
    // the 6 states within 2 steps are checked; the 4 at step 3 are generated, not checked
    assert_eq!(r.unique, 10);

    // at depth 5 the violation is in reach
    let rows = check::check(
        Counters::new(3),
        "toy",
        "v",
        expect_all,
        &Bounds {
            depth: Some(5),
            ..Bounds::default()
        },
        &opts("depth5", 1, true),
    );
    assert_eq!(row(&rows, SUM_BELOW_5).result, Outcome::Violate);
    assert_eq!(row(&rows, SUM_AT_MOST_2MAX).depth, 5);
}

#[test]
fn json_line_has_the_required_fields() {
    let rows = check::check(
        Counters::new(3),
        "toy",
        "v",
        expect_all,
        &Bounds::default(),
        &opts("json", 1, false),
    );
    for r in &rows {
        let line = report::json_line(r);
        assert!(!line.contains('\n'));
        let v: serde_json::Value = serde_json::from_str(&line).expect("valid JSON");
        for f in [
            "model", "variant", "property", "expect", "result", "states", "unique", "depth", "secs",
        ] {
            assert!(v.get(f).is_some(), "{f} missing in {line}");
        }
        assert_eq!(v["model"], "toy");
        assert_eq!(v["property"], r.property.as_str());
        assert_eq!(v["states"], r.states);
        assert_eq!(v["unique"], r.unique);
    }
    let v: serde_json::Value =
        serde_json::from_str(&report::json_line(row(&rows, SUM_BELOW_5))).expect("JSON");
    assert_eq!(v["expect"], "violate");
    assert_eq!(v["result"], "violate");
    assert!(v["counterexample"]
        .as_str()
        .is_some_and(|p| p.ends_with(".mmd")));
    let v: serde_json::Value =
        serde_json::from_str(&report::json_line(row(&rows, SUM_AT_MOST_2MAX))).expect("JSON");
    assert_eq!(v["expect"], "hold");
    assert_eq!(v["result"], "hold");
    assert!(v.get("counterexample").is_none());
}

#[test]
fn explorer_refuses_non_loopback_addresses() {
    let err = check::explore(Counters::new(3), "0.0.0.0:0".parse().expect("addr"))
        .expect_err("must refuse");
    assert!(err.contains("loopback"), "{err}");
    let err = check::explore(Counters::new(3), "192.0.2.1:3000".parse().expect("addr"))
        .expect_err("must refuse");
    assert!(err.contains("loopback"), "{err}");
}

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_ip2p-check"))
}

#[test]
fn binary_list_succeeds() {
    let out = bin().arg("list").output().expect("run ip2p-check");
    assert!(out.status.success(), "{out:?}");
    let stdout = String::from_utf8_lossy(&out.stdout);
    for m in ip2p_models::registry() {
        assert!(stdout.contains(m.name), "{stdout}");
    }
}

#[test]
fn binary_rejects_unknown_model_and_bad_flags() {
    let out = bin()
        .args(["run", "no-such-model"])
        .output()
        .expect("run ip2p-check");
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    assert!(String::from_utf8_lossy(&out.stderr).contains("error"));
    assert!(out.stdout.is_empty(), "errors go to stderr");

    let out = bin()
        .args(["run", "x", "--nodes", "many"])
        .output()
        .expect("run ip2p-check");
    assert_eq!(out.status.code(), Some(2), "{out:?}");

    let out = bin()
        .args(["run", "x", "--timeout", "-1"])
        .output()
        .expect("run ip2p-check");
    assert_eq!(out.status.code(), Some(2), "{out:?}");
}

#[test]
fn binary_all_without_models_says_so() {
    if !ip2p_models::registry().is_empty() {
        return; // `all` would run the real models: covered by `ip2p-check all` in CI
    }
    let out = bin().arg("all").output().expect("run ip2p-check");
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    assert!(String::from_utf8_lossy(&out.stderr).contains("no model is registered"));
}
