//! Drive a network of real Chord nodes through the deterministic simulator with an arbitrary
//! scenario (joins, crashes, leaves, puts, gets, time, loss) and check Zave's invariants after
//! every step. The body is `ip2p_fuzz::chord_sim`, shared with `tests/fuzz_corpus.rs`.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| ip2p_fuzz::chord_sim(data));
