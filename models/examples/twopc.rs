//! Two-phase commit (Gray; Lamport's TLA+ `TwoPhase`), checked with stateright: the side-by-side
//! baseline for `ip2p-check`'s throughput (spec/benchmarks.md, "Model checking").
//!
//! Our own model of the well-known protocol, written for this comparison (stateright's
//! `examples/2pc.rs` is not part of its library, so it cannot be imported). Its shape is the usual
//! one: a transaction manager, `n` resource managers, and a set of messages in flight.
//!
//! ```text
//! cargo run --release -p ip2p-models --example twopc -- [RMS=5] [THREADS=2] [--bfs]
//! ```

use std::collections::BTreeSet;
use std::time::Instant;

use stateright::{Checker, Model, Property};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
enum Rm {
    Working,
    Prepared,
    Committed,
    Aborted,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
enum Tm {
    Init,
    Committed,
    Aborted,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
enum Msg {
    Prepared(u8),
    Commit,
    Abort,
}

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
struct State {
    rm: Vec<Rm>,
    tm: Tm,
    tm_prepared: Vec<bool>,
    msgs: BTreeSet<Msg>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum Action {
    TmRcvPrepared(u8),
    TmCommit,
    TmAbort,
    RmPrepare(u8),
    RmChooseToAbort(u8),
    RmRcvCommit(u8),
    RmRcvAbort(u8),
}

struct TwoPc {
    rms: u8,
}

impl Model for TwoPc {
    type State = State;
    type Action = Action;

    fn init_states(&self) -> Vec<State> {
        let n = self.rms as usize;
        vec![State {
            rm: vec![Rm::Working; n],
            tm: Tm::Init,
            tm_prepared: vec![false; n],
            msgs: BTreeSet::new(),
        }]
    }

    fn actions(&self, s: &State, a: &mut Vec<Action>) {
        if s.tm == Tm::Init {
            if s.tm_prepared.iter().all(|&p| p) {
                a.push(Action::TmCommit);
            }
            a.push(Action::TmAbort);
        }
        for i in 0..self.rms {
            let r = s.rm[i as usize];
            if s.tm == Tm::Init && s.msgs.contains(&Msg::Prepared(i)) {
                a.push(Action::TmRcvPrepared(i));
            }
            if r == Rm::Working {
                a.push(Action::RmPrepare(i));
                a.push(Action::RmChooseToAbort(i));
            }
            if s.msgs.contains(&Msg::Commit) {
                a.push(Action::RmRcvCommit(i));
            }
            if s.msgs.contains(&Msg::Abort) {
                a.push(Action::RmRcvAbort(i));
            }
        }
    }

    fn next_state(&self, last: &State, action: Action) -> Option<State> {
        let mut s = last.clone();
        match action {
            Action::TmRcvPrepared(i) => s.tm_prepared[i as usize] = true,
            Action::TmCommit => {
                s.tm = Tm::Committed;
                s.msgs.insert(Msg::Commit);
            }
            Action::TmAbort => {
                s.tm = Tm::Aborted;
                s.msgs.insert(Msg::Abort);
            }
            Action::RmPrepare(i) => {
                s.rm[i as usize] = Rm::Prepared;
                s.msgs.insert(Msg::Prepared(i));
            }
            Action::RmChooseToAbort(i) => s.rm[i as usize] = Rm::Aborted,
            Action::RmRcvCommit(i) => s.rm[i as usize] = Rm::Committed,
            Action::RmRcvAbort(i) => s.rm[i as usize] = Rm::Aborted,
        }
        Some(s)
    }

    fn properties(&self) -> Vec<Property<Self>> {
        vec![
            Property::always("consistent", |_, s: &State| {
                !(s.rm.contains(&Rm::Committed) && s.rm.contains(&Rm::Aborted))
            }),
            Property::sometimes("all committed", |_, s: &State| {
                s.rm.iter().all(|&r| r == Rm::Committed)
            }),
            Property::sometimes("all aborted", |_, s: &State| {
                s.rm.iter().all(|&r| r == Rm::Aborted)
            }),
        ]
    }
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let bfs = args.iter().any(|a| a == "--bfs");
    let nums: Vec<usize> = args.iter().filter_map(|a| a.parse().ok()).collect();
    let rms = nums.first().copied().unwrap_or(5) as u8;
    let threads = nums.get(1).copied().unwrap_or(2);
    let start = Instant::now();
    let builder = TwoPc { rms }.checker().threads(threads);
    if bfs {
        report(builder.spawn_bfs().join(), "bfs", rms, threads, start);
    } else {
        report(builder.spawn_dfs().join(), "dfs", rms, threads, start);
    }
}

fn report(checker: impl Checker<TwoPc>, how: &str, rms: u8, threads: usize, start: Instant) {
    let secs = start.elapsed().as_secs_f64();
    let states = checker.state_count();
    println!(
        "2pc rms={rms} {how} threads={threads}: states {states} unique {} depth {} secs {secs:.2} states/s {:.0}",
        checker.unique_state_count(),
        checker.max_depth(),
        states as f64 / secs
    );
    checker.assert_properties();
}
