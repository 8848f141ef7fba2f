//! Decode arbitrary bytes as Chord messages; whatever decodes must re-encode to the same bytes.
//! The body is `ip2p_fuzz::chord_wire`, shared with `tests/fuzz_corpus.rs`.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| ip2p_fuzz::chord_wire(data));
