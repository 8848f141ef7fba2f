//! Replays every committed fuzz corpus (`fuzz/corpus/<target>/*`) through the very function the
//! cargo-fuzz target calls, on stable, under a plain `cargo test`: a regression found once by the
//! fuzzer fails CI forever after.
//!
//! The target bodies live in `fuzz/src/lib.rs`, included here as a module. To (re)write the seed
//! inputs: `cargo test --test fuzz_corpus -- --ignored write_seeds`.

#[path = "../fuzz/src/lib.rs"]
mod fuzz_lib;

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};

fn corpus_dir(target: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fuzz/corpus")
        .join(target)
}

/// Run `body` on every file of the target's corpus; fail naming every input that panics.
fn replay(target: &str, body: fn(&[u8])) {
    let dir = corpus_dir(target);
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("corpus {} unreadable: {e}", dir.display()))
        .map(|e| e.expect("corpus entry").path())
        .filter(|p| p.is_file())
        .collect();
    files.sort();
    let mut failed = Vec::new();
    for f in &files {
        let data = std::fs::read(f).expect("corpus file");
        if catch_unwind(AssertUnwindSafe(|| body(&data))).is_err() {
            failed.push(f.display().to_string());
        }
    }
    assert!(
        !files.is_empty(),
        "no corpus files for {target} in {}",
        dir.display()
    );
    assert!(
        failed.is_empty(),
        "{} of {} {target} inputs panicked: {failed:#?}",
        failed.len(),
        files.len()
    );
    eprintln!("{target}: replayed {} inputs", files.len());
}

#[test]
fn chord_wire_corpus() {
    replay("chord_wire", fuzz_lib::chord_wire);
}

#[test]
fn chord_node_corpus() {
    replay("chord_node", fuzz_lib::chord_node);
}

#[test]
fn chord_sim_corpus() {
    replay("chord_sim", fuzz_lib::chord_sim);
}

/// The seeds themselves pass (they are also in the corpora, under `seed-*`).
#[test]
fn seeds_pass() {
    for (_, s) in fuzz_lib::wire_seeds() {
        fuzz_lib::chord_wire(&s);
    }
    for (_, s) in fuzz_lib::node_seeds() {
        fuzz_lib::chord_node(&s);
    }
    for (_, s) in fuzz_lib::sim_seeds() {
        fuzz_lib::chord_sim(&s);
    }
}

/// Writes the seed inputs into the corpora (`seed-<name>`). Run by hand after changing the seeds.
#[test]
#[ignore = "writes files; run by hand"]
fn write_seeds() {
    for (target, seeds) in [
        ("chord_wire", fuzz_lib::wire_seeds()),
        ("chord_node", fuzz_lib::node_seeds()),
        ("chord_sim", fuzz_lib::sim_seeds()),
    ] {
        let dir = corpus_dir(target);
        std::fs::create_dir_all(&dir).expect("corpus dir");
        for (name, bytes) in seeds {
            std::fs::write(dir.join(format!("seed-{name}")), bytes).expect("write seed");
        }
    }
}
