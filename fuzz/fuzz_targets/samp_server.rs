//! The body is `ip2p_fuzz::samp_targets::samp_server`, shared with `tests/fuzz_corpus.rs`.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| ip2p_fuzz::samp_targets::samp_server(data));
