//! Split messages and feed their parts, in a hostile order, with duplicates, forgeries and time, into a Reassembler: bounds hold, every message ends.
//! The body is `ip2p_fuzz::sms_targets::sms_concat`, shared with `tests/fuzz_corpus.rs`.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| ip2p_fuzz::sms_targets::sms_concat(data));
