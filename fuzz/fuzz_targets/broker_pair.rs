//! The body is `ip2p_fuzz::ip2p_targets::broker_pair`, shared with `tests/fuzz_corpus.rs`.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| ip2p_fuzz::ip2p_targets::broker_pair(data));
