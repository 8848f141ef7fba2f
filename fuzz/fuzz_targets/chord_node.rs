//! Drive one real Chord node with an arbitrary scenario and check its invariants after every step.
//! The body is `ip2p_fuzz::chord_node`, shared with `tests/fuzz_corpus.rs`.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| ip2p_fuzz::chord_node(data));
